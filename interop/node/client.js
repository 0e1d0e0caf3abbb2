'use strict';
// Interop checks with Node `ws` as the CLIENT.
//
//   INTEROP_DEFLATE=on|off|w10 node client.js ws://127.0.0.1:PORT
//
// Runs every check against an echo server with the contract of
// examples/tokio_echo_server.rs and prints one line per check:
//
//   RESULT <check> PASS|FAIL|N/A [detail]
//
// INTEROP_DEFLATE picks ws's permessage-deflate settings for every
// connection (see DEFLATE_MODES); the `deflate` / `no-deflate` checks verify
// on the wire (a frame tap on the socket) what was negotiated and which
// frames went out compressed. Exit status 0 when every check passed, 1
// otherwise. Every check has its own timeout, so a stuck peer fails that
// check instead of hanging the run.

const WebSocket = require('ws');
const wsVersion = require('ws/package.json').version;
const { FrameTap, tapWrites } = require('./wire');

// `on`: ws's defaults: offers "permessage-deflate; client_max_window_bits"
// and, keeping its context, compresses every message. `w10`: 10-bit windows
// both ways and client_no_context_takeover, which makes ws apply its
// threshold: only messages of 4096 bytes or more go out compressed.
const DEFLATE_MODES = {
  off: false,
  on: true,
  w10: { serverMaxWindowBits: 10, clientMaxWindowBits: 10, clientNoContextTakeover: true, threshold: 4096 },
};
const MODE = process.env.INTEROP_DEFLATE || 'on';
if (!(MODE in DEFLATE_MODES)) {
  console.error(`INTEROP_DEFLATE must be one of ${Object.keys(DEFLATE_MODES).join(', ')}`);
  process.exit(2);
}
const PMD = DEFLATE_MODES[MODE];
// wsproto's own policy (64-byte threshold, plain at 8 bits, the exact
// response) is only expected of wsproto's server
const WSPROTO = (process.env.INTEROP_SERVER || 'wsproto') === 'wsproto';
// ws compresses a message from this size (its threshold only applies
// without context takeover)
const COMPRESS_FROM = PMD === true ? 0 : PMD ? PMD.threshold : Infinity;

const CHECK_TIMEOUT_MS = 30000;
const MAX = 64 << 20;

let TEXT_ASCII = '';
for (let c = 0; c < 128; c++) TEXT_ASCII += String.fromCharCode(c);
const TEXT_MULTIBYTE = 'héllo wörld — ÄÖÜß € 日本語 русский ελληνικά \u0080\u07ff\u0800\ufffd\uffff';
const TEXT_EMOJI = '😀🎉👍🏽 🇩🇪 👨‍👩‍👧‍👦 \u{10000}\u{10ffff}';
const SIZES = [0, 125, 126, 65535, 65536, 1 << 20, 16 << 20];
const SIZE_NAMES = { [1 << 20]: '1MiB', [16 << 20]: '16MiB' };
const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
// about 1 MiB of 2-, 3- and 4-byte UTF-8 sequences
const TEXT_MULTIBYTE_1MIB = (TEXT_MULTIBYTE + TEXT_EMOJI).repeat(Math.floor((1 << 20) / Buffer.byteLength(TEXT_MULTIBYTE + TEXT_EMOJI)) + 1);

// A chat-like JSON message of exactly `n` ASCII bytes, about as compressible
// as real chat traffic (the same MINSTD-drawn words as the other clients).
function chatJson(n, seed = 0) {
  const words = ['hello', 'deploy', 'the', 'build', 'is', 'green', 'lunch', 'ship', 'it', 'p99',
    'latency', 'ok', 'review', 'merge', 'branch', 'tests', 'flaky', 'again', 'cache', 'db'];
  let x = seed * 7919 + 1;
  let s = `{"type":"message","room":"lobby","user":"u${seed}","ts":${1700000000 + seed},"text":"`;
  while (s.length < n - 2) {
    x = (x * 48271) % 2147483647;
    s += words[x % words.length] + (x % 3 === 0 ? ` #${(x >> 4) % 10000}` : '') + ' ';
  }
  return s.slice(0, n - 2) + '"}';
}

function patternBytes(n) {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = i & 0xff;
  return b;
}
function patternText(n) {
  return ALPHABET.repeat(Math.ceil(n / ALPHABET.length) + 1).slice(0, n);
}
function describe(x, isBinary) {
  const s = isBinary ? Buffer.from(x).subarray(0, 24).toString('hex') : JSON.stringify(String(x).slice(0, 24));
  return `${isBinary ? 'binary' : 'text'}[${x.length}] ${s}${x.length > 24 ? '...' : ''}`;
}

class Fail extends Error {}
function expect(cond, msg) {
  if (!cond) throw new Fail(msg);
}

// A client connection with an awaitable message queue.
class Peer {
  constructor(url, protocols, options = {}) {
    this.ws = new WebSocket(url, protocols, { maxPayload: MAX, handshakeTimeout: 10000, perMessageDeflate: PMD, ...options });
    // what the server sends (rx) and what ws sends (tx), frame by frame
    this.rx = new FrameTap();
    this.tx = new FrameTap();
    this.queue = [];
    this.waiters = [];
    this.pongs = [];
    this.offeredExtensions = undefined;
    this.responseExtensions = undefined;
    this.closed = new Promise((resolve) => {
      this.ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        this.push({ closed: this.closeInfo });
        resolve(this.closeInfo);
      });
    });
    this.ws.on('upgrade', (res) => {
      const req = res.req || this.ws._req;
      this.offeredExtensions = req && req.getHeader('sec-websocket-extensions');
      this.responseExtensions = res.headers['sec-websocket-extensions'];
      // ws takes the socket over after this event: tap it first
      res.socket.on('data', (b) => this.rx.push(b));
      tapWrites(res.socket, this.tx);
    });
    this.ws.on('message', (data, isBinary) => this.push({ data, isBinary }));
    this.ws.on('pong', (data) => this.pongs.push(Buffer.from(data)));
    this.ws.on('error', (err) => {
      this.error = err;
      this.push({ error: err });
    });
    this.opened = new Promise((resolve, reject) => {
      this.ws.once('open', resolve);
      this.ws.once('error', reject);
      this.ws.once('close', () => reject(new Error('closed before open')));
    });
  }
  push(item) {
    const w = this.waiters.shift();
    if (w) w(item);
    else this.queue.push(item);
  }
  next() {
    const item = this.queue.shift();
    if (item) return Promise.resolve(item);
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  async recv() {
    const item = await this.next();
    if (item.error) throw item.error;
    if (item.closed) throw new Fail(`connection closed: ${item.closed.code} ${JSON.stringify(item.closed.reason)}`);
    return item;
  }
  send(data, opts = {}) {
    return new Promise((resolve, reject) => this.ws.send(data, opts, (err) => (err ? reject(err) : resolve())));
  }
  async echo(msg) {
    const isBinary = typeof msg !== 'string';
    await this.send(msg, { binary: isBinary });
    const got = await this.recv();
    expect(got.isBinary === isBinary, `sent ${describe(msg, isBinary)}, got ${describe(got.data, got.isBinary)}`);
    const same = isBinary ? Buffer.compare(Buffer.from(msg), got.data) === 0 : got.data.toString() === msg;
    expect(same, `sent ${describe(msg, isBinary)}, echo differs: ${describe(got.data, got.isBinary)}`);
  }
  async close(code, reason) {
    this.ws.close(code, reason);
    return withTimeout(this.closed, 10000, 'close handshake');
  }
}

function withTimeout(p, ms, what) {
  let t;
  return Promise.race([
    p,
    new Promise((_, reject) => {
      t = setTimeout(() => reject(new Fail(`${what}: timed out after ${ms / 1000}s`)), ms);
    }),
  ]).finally(() => clearTimeout(t));
}

async function main(url) {
  console.log(`INFO peer node-ws ${wsVersion} (node ${process.version}), perMessageDeflate ${JSON.stringify(PMD)}`);
  let failed = 0;
  let shared = null;
  const dataPeer = async () => {
    if (!shared || shared.ws.readyState !== WebSocket.OPEN) {
      shared = new Peer(url);
      await shared.opened;
    }
    return shared;
  };
  const open = async (protocols, options) => {
    const p = new Peer(url, protocols, options);
    await p.opened;
    return p;
  };
  const run = async (name, fn) => {
    try {
      const detail = await withTimeout(fn(), CHECK_TIMEOUT_MS, 'check');
      console.log(`RESULT ${name} PASS${detail ? ' ' + detail : ''}`);
    } catch (e) {
      failed++;
      console.log(`RESULT ${name} FAIL ${e instanceof Fail ? '' : e.constructor.name + ': '}${e.message}`);
      if (shared) shared.ws.terminate();
      shared = null;
    }
  };

  const skip = (name, why) => console.log(`RESULT ${name} N/A ${why}`);
  if (PMD) {
    skip('no-deflate', `INTEROP_DEFLATE=${MODE}: ws offers permessage-deflate (see deflate)`);
    await run('deflate', () => deflateCheck(open));
  } else {
    await run('no-deflate', async () => {
      // perMessageDeflate: false: ws offers nothing; the server must answer
      // no extension and send nothing compressed.
      const p = await dataPeer();
      expect(p.offeredExtensions === undefined, `client offered ${p.offeredExtensions}`);
      expect(p.responseExtensions === undefined, `server answered extensions ${p.responseExtensions}`);
      await p.echo('uncompressed '.repeat(100));
      await p.echo(patternBytes(100000));
      const rsv1 = p.rx.dataFrames().filter((f) => f.rsv1).length;
      expect(rsv1 === 0, `${rsv1} server frames with RSV1 set`);
      return `nothing offered, nothing answered, ${p.rx.dataFrames().length} server frames all plain`;
    });
    skip('deflate', 'INTEROP_DEFLATE=off: ws offers no permessage-deflate');
  }
  if (MODE === 'on' && WSPROTO) {
    await run('deflate-window-8', async () => {
      // 8-bit windows both ways: wsproto cannot compress with a 256-byte
      // window and must send plain (valid); ws compresses (zlib uses 9 bits)
      const p = await open(undefined, { perMessageDeflate: { serverMaxWindowBits: 8, clientMaxWindowBits: 8, threshold: 0 } });
      const resp = p.responseExtensions || '';
      expect(/server_max_window_bits=8/.test(resp) && /client_max_window_bits=8/.test(resp), `response ${JSON.stringify(resp)}`);
      const msg = chatJson(5000, 8);
      await p.echo(msg);
      await p.echo(msg);
      const tx = p.tx.messages().slice(-2);
      const rx = p.rx.messages().slice(-2);
      expect(tx.every((m) => m.rsv1), `ws sent ${JSON.stringify(tx)}`);
      expect(rx.every((m) => !m.rsv1 && m.len === 5000), `server sent ${JSON.stringify(rx)}`);
      await p.close(1000, '');
      return `response '${resp}'; ws -> server compressed (${tx.map((m) => m.len).join(', ')} B), server -> ws plain`;
    });
  } else {
    skip('deflate-window-8', WSPROTO ? `INTEROP_DEFLATE=${MODE}: checked in the INTEROP_DEFLATE=on run` : 'checks wsproto\'s server');
  }
  await run('text-ascii', async () => (await dataPeer()).echo(TEXT_ASCII));
  await run('text-multibyte', async () => (await dataPeer()).echo(TEXT_MULTIBYTE));
  await run('text-emoji', async () => (await dataPeer()).echo(TEXT_EMOJI));
  await run('binary-256', async () => (await dataPeer()).echo(patternBytes(256)));
  for (const n of SIZES) {
    await run(`size-${SIZE_NAMES[n] || n}`, async () => {
      const p = await dataPeer();
      await p.echo(patternBytes(n));
      await p.echo(patternText(n));
    });
  }
  await run('text-multibyte-1MiB', async () => {
    const p = await dataPeer();
    await p.echo(TEXT_MULTIBYTE_1MIB);
    // again as 4093-byte fragments: nearly every boundary splits a code point
    const raw = Buffer.from(TEXT_MULTIBYTE_1MIB);
    let count = 0;
    for (let i = 0; i < raw.length; i += 4093, count++) {
      await p.send(raw.subarray(i, i + 4093), { binary: false, fin: i + 4093 >= raw.length });
    }
    const got = await p.recv();
    expect(!got.isBinary && got.data.toString() === TEXT_MULTIBYTE_1MIB, `fragmented: echo differs: ${describe(got.data, got.isBinary)}`);
    return `${raw.length} bytes, whole and in ${count} fragments`;
  });
  await run('fragmented', async () => {
    const p = await dataPeer();
    // text split in the middle of code points, with a ping between fragments
    const parts = [Buffer.from('Hello, w'), Buffer.from([0xc3]), Buffer.from([0xb6, 0x72, 0x6c, 0x64, 0x20, 0xe2, 0x82]), Buffer.from([0xac])];
    for (let i = 0; i < parts.length; i++) {
      await p.send(parts[i], { binary: false, fin: i === parts.length - 1 });
      if (i === 1) p.ws.ping(Buffer.from('mid-message ping'));
    }
    let got = await p.recv();
    expect(!got.isBinary && got.data.toString() === 'Hello, wörld €', `text fragments: echo ${describe(got.data, got.isBinary)}`);
    const chunks = [patternBytes(256), Buffer.alloc(0), patternBytes(70000)];
    for (let i = 0; i < chunks.length; i++) {
      await p.send(chunks[i], { binary: true, fin: i === chunks.length - 1 });
    }
    got = await p.recv();
    expect(got.isBinary && Buffer.compare(got.data, Buffer.concat(chunks)) === 0, `binary fragments: echo ${describe(got.data, got.isBinary)}`);
    expect(p.pongs.some((b) => b.toString() === 'mid-message ping'), 'no pong for the ping sent between fragments');
    return 'text split mid-code-point + ping between fragments, binary incl. empty fragment';
  });
  await run('ping-pong', async () => {
    const p = await dataPeer();
    for (const payload of [Buffer.concat([Buffer.from('ping\x00\xff', 'latin1'), patternBytes(100)]), Buffer.alloc(0), patternBytes(125)]) {
      p.pongs = [];
      const pong = new Promise((resolve) => p.ws.once('pong', resolve));
      p.ws.ping(payload);
      const got = Buffer.from(await withTimeout(pong, 10000, 'pong'));
      expect(Buffer.compare(got, payload) === 0, `pong payload ${got.toString('hex')} != ping ${payload.toString('hex')}`);
    }
    await p.echo('after ping');
    return 'payload 106 B, empty, 125 B';
  });
  console.log('RESULT keepalive N/A ws has no keepalive of its own (ping-pong covers pings)');
  await run('burst', async () => {
    const p = await dataPeer();
    const msgs = [];
    for (let i = 0; i < 200; i++) {
      const n = i % 50 ? (i * 7919) % 70000 : 1 << 20;
      msgs.push(i % 2 ? patternText(n) : patternBytes(n));
    }
    for (const m of msgs) p.ws.send(m, { binary: typeof m !== 'string' });
    for (let i = 0; i < msgs.length; i++) {
      const got = await p.recv();
      const m = msgs[i];
      const isBinary = typeof m !== 'string';
      const same = got.isBinary === isBinary && (isBinary ? Buffer.compare(m, got.data) === 0 : got.data.toString() === m);
      expect(same, `burst message ${i}: sent ${describe(m, isBinary)}, got ${describe(got.data, got.isBinary)}`);
    }
    return `${msgs.length} pipelined messages`;
  });
  if (shared) await shared.close(1000, '');
  shared = null;
  await run('subprotocol-chat', async () => {
    for (const offer of [['chat'], ['v2.other', 'chat']]) {
      const p = await open(offer);
      expect(p.ws.protocol === 'chat', `offered ${offer}, selected ${JSON.stringify(p.ws.protocol)}`);
      await p.echo('chat');
      await p.close(1000, '');
    }
    return "['chat'] and ['v2.other', 'chat'] -> 'chat'";
  });
  await run('subprotocol-none', async () => {
    const p = await open();
    expect(p.ws.protocol === '', `offered nothing, selected ${JSON.stringify(p.ws.protocol)}`);
    await p.echo('none');
    await p.close(1000, '');
    // Offering only ['other']: the server must answer 101 without a
    // subprotocol. ws is stricter than RFC 6455 (4.1) here and fails such a
    // connection itself with 'Server sent no subprotocol', which also proves
    // the server selected none.
    const q = new Peer(url, ['other']);
    const err = await q.opened.then(
      () => null,
      (e) => e,
    );
    expect(err && /Server sent no subprotocol/.test(err.message), `offered ['other']: expected ws's 'Server sent no subprotocol', got ${err ? err.message : 'protocol ' + JSON.stringify(q.ws.protocol)}`);
    return "nothing offered -> none; ['other'] -> none (ws then refuses: 'Server sent no subprotocol')";
  });
  await run('close-4000', async () => {
    const p = await open();
    await p.echo('before close');
    const info = await p.close(4000, 'client bye');
    expect(info.code === 4000, `server answered code ${info.code} ${JSON.stringify(info.reason)}`);
    return `server echoed ${info.code} ${JSON.stringify(info.reason)}`;
  });
  await run('close-nocode', async () => {
    const p = await open();
    await p.echo('before close');
    const info = await p.close(); // a close frame without a status code
    expect(info.code === 1005, `server answered code ${info.code} ${JSON.stringify(info.reason)}`);
    return 'server answered without a code (1005)';
  });
  await run('close-busy', async () => {
    // close right after a 16 MiB message, while the server is still busy
    // echoing it
    const p = await open();
    p.ws.send(patternBytes(16 << 20));
    const info = await withTimeout(p.close(4000, 'busy bye'), 20000, 'close');
    expect(info.code === 4000, `server answered code ${info.code} ${JSON.stringify(info.reason)}`);
    return '16 MiB in flight, then close 4000 -> 4000';
  });
  await run('close-me', async () => {
    const p = await open();
    await p.send('close-me');
    const item = await withTimeout(p.next(), 10000, 'server close');
    expect(!item.data, `expected a close, got message ${item.data && describe(item.data, item.isBinary)}`);
    expect(!item.error, `error: ${item.error}`);
    const info = item.closed;
    expect(info.code === 1000 && info.reason === 'server closing', `closed with ${info.code} ${JSON.stringify(info.reason)}`);
    return "1000 'server closing'";
  });
  await run('concurrent', async () => {
    const one = async (k) => {
      const p = await open();
      for (let i = 0; i < 20; i++) {
        const n = (k * 131 + i * 977) % 65536;
        await p.echo(i % 2 ? patternBytes(n) : TEXT_EMOJI.repeat(Math.floor(n / 40) + 1));
      }
      await p.close(1000, '');
    };
    await Promise.all(Array.from({ length: 20 }, (_, k) => one(k)));
    return '20 connections x 20 echoes at once';
  });
  return failed ? 1 : 0;
}

// permessage-deflate negotiated as INTEROP_DEFLATE says, and compressed
// frames on the wire both ways.
async function deflateCheck(open) {
  const p = await open();
  const resp = p.responseExtensions || '';
  expect(/permessage-deflate/.test(p.offeredExtensions || ''), `ws did not offer permessage-deflate: ${p.offeredExtensions}`);
  expect(/^permessage-deflate\b/.test(resp), `server answered ${JSON.stringify(resp)}`);
  if (MODE === 'w10') {
    const want = 'permessage-deflate; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10';
    expect(resp === want || (!WSPROTO && /server_max_window_bits=10/.test(resp) && /client_max_window_bits=10/.test(resp)),
      `response ${JSON.stringify(resp)}, expected ${JSON.stringify(want)}`);
  }
  const big = chatJson(8000, 1);
  const med = chatJson(600, 2); // repeated within even a 10-bit window
  const mid = chatJson(2000, 3); // under ws's 4096-byte threshold (w10)
  const tiny = 'tiny'; // under wsproto's 64-byte threshold
  for (const m of [big, med, tiny, med, mid]) await p.echo(m);
  const rx = p.rx.messages().slice(-5);
  const tx = p.tx.messages().slice(-5);
  expect(rx.length === 5 && tx.length === 5, `tapped ${rx.length} server and ${tx.length} client messages`);
  expect(rx[0].rsv1 && rx[0].len < 8000 * 0.7, `server's 8000-byte echo: ${JSON.stringify(rx[0])}`);
  expect(rx.every((m) => !m.contRsv1), 'RSV1 on a continuation frame');
  if (WSPROTO) {
    // wsproto: compressed from 64 bytes, with context takeover
    expect(rx[1].rsv1 && rx[1].len < 600, `server's 600-byte echo: ${JSON.stringify(rx[1])}`);
    expect(!rx[2].rsv1 && rx[2].len === 4, `server's 4-byte echo: ${JSON.stringify(rx[2])}`);
    expect(rx[3].rsv1 && rx[3].len < rx[1].len / 2, `server's repeated 600-byte echo (context takeover): ${JSON.stringify(rx[3])}`);
    expect(rx[4].rsv1, `server's 2000-byte echo: ${JSON.stringify(rx[4])}`);
  }
  // ws -> server: compressed from ws's threshold (none with context takeover)
  const lens = [8000, 600, 4, 600, 2000];
  expect(tx.every((m, i) => m.rsv1 === lens[i] >= COMPRESS_FROM), `ws's frames (compressing from ${COMPRESS_FROM} B): ${JSON.stringify(tx)}`);
  await p.close(1000, '');
  return `response '${resp}'; server sent 8000 B as ${rx[0].len} B, 600 B as ${rx[1].len} B then ${rx[3].len} B, 4 B as ${rx[2].len} B${rx[2].rsv1 ? '' : ' plain'}; ` +
    `ws sent 8000 B as ${tx[0].len} B, ${COMPRESS_FROM ? `messages under ${COMPRESS_FROM} B plain` : 'every message compressed'}`;
}

if (process.argv.length !== 3) {
  console.error('usage: node client.js ws://HOST:PORT');
  process.exit(2);
}
main(process.argv[2]).then(
  (code) => process.exit(code),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
