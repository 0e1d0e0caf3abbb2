'use strict';
// Node `ws` checks against running chat servers (started by run.sh).
//
//   node checks.js protocol ws://HOST:PORT/ws        invalid input, ping, limits, dead peers
//   node checks.js auth ws://HOST:PORT/ws TOKEN      401 / 403 / 400 before the upgrade
//   node checks.js scale A_URL B_URL NGINX_URL       Redis fan-out, room isolation, nginx
//   node checks.js tls wss://HOST:PORT/ws CA.pem     wss:// and https:// with the test CA
//
// Prints RESULT lines; exit status 0 when every check passed.

const fs = require('fs');
const { check, summary, assert, sleep, connect, handshakeStatus, get } = require('./lib');

const uniq = () => Math.random().toString(36).slice(2, 8);
const httpOf = (wsUrl) => wsUrl.replace(/^ws/, 'http').replace(/\/ws(\?.*)?$/, '');

async function protocol(url) {
  let c;
  await check('protocol-hello', async () => {
    c = await connect(url, 'c');
    const h = c.hello;
    assert(h.protocol === 'chat.v1' && h.server && h.max_text > 0, `hello: ${JSON.stringify(h)}`);
    return `server ${h.server}, max_text ${h.max_text}, max_message ${h.max_message}`;
  });
  await check('protocol-ping-pong', async () => {
    await c.roundTrip();
  });
  await check('protocol-invalid-input', async () => {
    const cases = [
      ['{not json', 'bad_json'],
      ['[1,2]', 'bad_json'],
      ['"just a string"', 'bad_json'],
      [{ room: 'x' }, 'missing_field'],
      [{ type: 42 }, 'invalid_field'],
      [{ type: 'shout', room: 'x' }, 'unknown_type'],
      [{ type: 'join', room: 'x' }, 'missing_field'],
      [{ type: 'join', user: 'u' }, 'missing_field'],
      [{ type: 'join', room: 'no spaces', user: 'u' }, 'invalid_field'],
      [{ type: 'join', room: 'x', user: '' }, 'invalid_field'],
      [{ type: 'join', room: 'x', user: 'u'.repeat(33) }, 'invalid_field'],
      [{ type: 'message', room: 'x' }, 'missing_field'],
      [{ type: 'message', room: 'x', text: 5 }, 'invalid_field'],
      [{ type: 'message', room: 'x', text: 'not joined yet' }, 'not_joined'],
      [{ type: 'leave', room: 'x' }, 'not_joined'],
      [Buffer.from([1, 2, 3]), 'binary_not_supported'],
    ];
    for (const [req, code] of cases) await c.expectError(req, code);
    return `${cases.length} invalid requests, ${cases.length} error events`;
  });
  await check('protocol-oversize-text', async () => {
    const max = c.hello.max_text;
    const room = 'big-' + uniq();
    await c.join(room, 'sizer');
    const e = await c.expectError({ type: 'message', room, text: 'x'.repeat(max + 1) }, 'text_too_long');
    // exactly at the limit (in characters, multi-byte) is fine
    const text = 'é'.repeat(max);
    const after = c.since();
    c.send({ type: 'message', room, text });
    await c.waitFor(after((ev) => ev.type === 'message' && ev.text === text), 'the max-size message back');
    return `${max + 1} characters: ${e.message}`;
  });
  await check('protocol-join-twice-and-leave', async () => {
    const room = 'dup-' + uniq();
    await c.join(room, 'twice');
    await c.expectError({ type: 'join', room, user: 'twice' }, 'already_joined');
    const after = c.since();
    c.send({ type: 'leave', room });
    const left = await c.waitFor(after((e) => e.type === 'left' && e.room === room), 'left ack');
    assert(left.reason === 'leave' && left.user === 'twice', JSON.stringify(left));
  });
  await check('protocol-still-serving', async () => {
    await c.roundTrip();
    const d = await connect(url, 'd');
    await d.roundTrip();
    d.close();
    return 'the connection that sent all the invalid input still works, and new ones too';
  });
  await check('protocol-rate-limit', async () => {
    const room = 'rl-' + uniq();
    const r = await connect(url, 'r');
    await r.join(room, 'flood');
    for (let i = 0; i < 40; i++) r.send({ type: 'message', room, text: 'm' + i });
    const e = await r.waitFor((ev) => ev.type === 'error', 'a rate_limited error');
    assert(e.code === 'rate_limited', JSON.stringify(e));
    const got = r.events.filter((ev) => ev.type === 'message').length;
    r.close();
    return `40 messages at once: ${got} broadcast so far, the rest answered rate_limited`;
  });
  await check('protocol-max-message-1009', async () => {
    const big = await connect(url, 'big');
    big.send('x'.repeat(c.hello.max_message + 1));
    const closed = await big.waitClose();
    assert(closed.code === 1009, `close code ${closed.code}`);
    return `a ${c.hello.max_message + 1}-byte message: closed with 1009`;
  });
  await check('protocol-keepalive-drops-dead-peer', async () => {
    const room = 'ka-' + uniq();
    const watcher = await connect(url, 'watcher');
    await watcher.join(room, 'watcher');
    const dead = await connect(url, 'dead');
    await dead.join(room, 'zombie');
    // stop reading: the server's pings go unanswered (the kernel still
    // ACKs, so only the WebSocket keepalive can tell)
    dead.ws._socket.pause();
    const t0 = Date.now();
    // keep the watcher busy so that only the dead peer is idle
    const busy = setInterval(() => watcher.send({ type: 'ping' }), 200);
    try {
      const left = await watcher.waitFor((e) => e.type === 'left' && e.user === 'zombie', 'zombie left (timeout)', 15000);
      assert(left.reason === 'timeout', JSON.stringify(left));
    } finally {
      clearInterval(busy);
    }
    dead.ws.terminate();
    watcher.close();
    return `dropped after ${((Date.now() - t0) / 1000).toFixed(1)} s; the room saw "left" with reason timeout`;
  });
  c.close();
}

async function auth(url, token) {
  const base = httpOf(url);
  const own = base; // the server's own origin
  await check('auth-no-token-401', async () => {
    const r = await handshakeStatus(url);
    assert(r.status === 401, `status ${r.status}`);
    assert(/bearer/i.test(r.headers['www-authenticate'] || ''), `WWW-Authenticate: ${r.headers['www-authenticate']}`);
    return '401 with WWW-Authenticate: Bearer';
  });
  await check('auth-bad-token-401', async () => {
    const r1 = await handshakeStatus(url, { headers: { Authorization: 'Bearer wrong' } });
    const r2 = await handshakeStatus(url + '?token=wrong');
    const r3 = await handshakeStatus(url, { headers: { Authorization: 'Basic ' + Buffer.from('a:' + token).toString('base64') } });
    assert(r1.status === 401 && r2.status === 401 && r3.status === 401, `statuses ${r1.status} ${r2.status} ${r3.status}`);
    return 'wrong bearer, wrong ?token=, Basic scheme: 401';
  });
  await check('auth-token-header-101', async () => {
    const r = await handshakeStatus(url, { headers: { Authorization: `Bearer ${token}` } });
    assert(r.status === 101 && r.protocol === 'chat.v1', `status ${r.status}, protocol ${r.protocol}`);
    return '101, subprotocol chat.v1';
  });
  await check('auth-token-query-101', async () => {
    const r = await handshakeStatus(`${url}?token=${encodeURIComponent(token)}`, { origin: own });
    assert(r.status === 101, `status ${r.status}`);
    const c = await connect(`${url}?token=${encodeURIComponent(token)}`, 'browser-like', { origin: own });
    await c.roundTrip();
    c.close();
    return `101 with ?token= and Origin ${own}`;
  });
  await check('origin-disallowed-403', async () => {
    const headers = { Authorization: `Bearer ${token}` };
    const r1 = await handshakeStatus(url, { headers, origin: 'http://evil.example' });
    const r2 = await handshakeStatus(url, { headers, origin: own.replace(/:(\d+)$/, (_, p) => ':' + (Number(p) + 1)) });
    const r3 = await handshakeStatus(url, { headers, origin: 'null' });
    assert(r1.status === 403 && r2.status === 403 && r3.status === 403, `statuses ${r1.status} ${r2.status} ${r3.status}`);
    return 'another site, another port of the same host, and "null": 403';
  });
  await check('origin-checked-before-token', async () => {
    const r = await handshakeStatus(url, { origin: 'http://evil.example' });
    assert(r.status === 403, `status ${r.status}`);
  });
  await check('subprotocol-required-400', async () => {
    const r = await handshakeStatus(url, { headers: { Authorization: `Bearer ${token}` }, protocols: [] });
    const r2 = await handshakeStatus(url, { headers: { Authorization: `Bearer ${token}` }, protocols: ['chat.v0'] });
    assert(r.status === 400 && r2.status === 400, `statuses ${r.status} ${r2.status}`);
    return 'no subprotocol or only chat.v0: 400';
  });
  await check('auth-plain-get', async () => {
    const page = await get(base + '/');
    const probe = await get(base + '/ws');
    const probeOk = await get(base + '/ws?token=' + encodeURIComponent(token));
    const missing = await get(base + '/nope');
    assert(page.status === 200 && /<title>wsproto chat<\/title>/.test(page.body), `page ${page.status}`);
    assert(probe.status === 401 && probeOk.status === 426 && missing.status === 404,
      `GET /ws ${probe.status}, with token ${probeOk.status}, /nope ${missing.status}`);
    return 'GET / 200 (the page is public), GET /ws 401 without token, 426 with it; 404 elsewhere';
  });
}

async function scale(urlA, urlB, urlNginx) {
  const room = 'shared-' + uniq();
  const other = 'other-' + uniq();
  let a, b, x, y;
  await check('redis-two-instances', async () => {
    a = await connect(urlA, 'a');
    b = await connect(urlB, 'b');
    assert(a.hello.server !== b.hello.server, `both on ${a.hello.server}`);
    return `${a.hello.server} and ${b.hello.server}`;
  });
  await check('redis-join-seen-across', async () => {
    await a.join(room, 'ann');
    await b.join(room, 'bob');
    await a.waitFor((e) => e.type === 'joined' && e.user === 'bob' && e.room === room, 'bob joined (via B)');
  });
  await check('redis-message-b-to-a', async () => {
    b.send({ type: 'message', room, text: 'hello from B' });
    const m = await a.waitFor((e) => e.type === 'message' && e.text === 'hello from B', 'the message from B');
    assert(m.user === 'bob' && m.room === room && m.ts > 0, JSON.stringify(m));
    return `A got ${JSON.stringify(m)}`;
  });
  await check('redis-message-a-to-b', async () => {
    a.send({ type: 'message', room, text: 'hello from A' });
    await b.waitFor((e) => e.type === 'message' && e.text === 'hello from A', 'the message from A');
  });
  await check('redis-no-leak-across-rooms', async () => {
    x = await connect(urlB, 'x');
    await x.join(other, 'xena');
    y = await connect(urlA, 'y');
    await y.join(other, 'yuri');
    x.send({ type: 'message', room: other, text: 'only for ' + other });
    // y (on A) gets it through Redis; a (on A, other room) must not
    await y.waitFor((e) => e.type === 'message' && e.text === 'only for ' + other, 'the other room message');
    a.send({ type: 'message', room, text: 'only for ' + room });
    await b.waitFor((e) => e.type === 'message' && e.text === 'only for ' + room, 'the shared room message');
    await sleep(300);
    await Promise.all([a.roundTrip(), b.roundTrip(), x.roundTrip(), y.roundTrip()]);
    const leakedToA = a.events.filter((e) => e.room === other);
    const leakedToB = b.events.filter((e) => e.room === other);
    const leakedToX = x.events.filter((e) => e.room === room);
    const leakedToY = y.events.filter((e) => e.room === room);
    const leaks = [...leakedToA, ...leakedToB, ...leakedToX, ...leakedToY];
    assert(leaks.length === 0, `leaked: ${JSON.stringify(leaks)}`);
    return `rooms ${room} and ${other} on both instances: no event crossed`;
  });
  await check('redis-leave-seen-across', async () => {
    b.send({ type: 'leave', room });
    await a.waitFor((e) => e.type === 'left' && e.user === 'bob' && e.reason === 'leave', 'bob left');
    x.ws.terminate(); // vanishes without a close frame
    await y.waitFor((e) => e.type === 'left' && e.user === 'xena' && e.reason === 'disconnect', 'xena left (disconnect)');
    return 'a leave and an abrupt disconnect on B, both announced on A';
  });
  for (const c of [a, b, x, y]) if (c) c.close();

  if (!urlNginx) return;
  const viaRoom = 'nginx-' + uniq();
  let clients = [];
  await check('nginx-spreads-connections', async () => {
    // as a page served by nginx would: with nginx's origin (the script
    // allows it on both instances)
    const origin = httpOf(urlNginx);
    for (let i = 0; i < 4; i++) clients.push(await connect(urlNginx, 'n' + i, { origin }));
    const servers = new Set(clients.map((c) => c.hello.server));
    assert(servers.size >= 2, `all on ${[...servers]}`);
    return `4 connections through nginx (Origin ${origin}) landed on ${[...servers].join(' and ')}`;
  });
  await check('nginx-clients-talk', async () => {
    for (let i = 0; i < clients.length; i++) await clients[i].join(viaRoom, 'user' + i);
    clients[0].send({ type: 'message', room: viaRoom, text: 'through nginx' });
    for (const c of clients) await c.waitFor((e) => e.type === 'message' && e.text === 'through nginx', 'the message through nginx');
    const [first, ...rest] = clients.map((c) => c.hello.server);
    const other = rest.find((s) => s !== first);
    return `sent on ${first}, received on ${first} and ${other}`;
  });
  await check('nginx-serves-page', async () => {
    const base = httpOf(urlNginx);
    const page = await get(base + '/');
    const health = await get(base + '/healthz');
    assert(page.status === 200 && page.body.includes('wsproto chat'), `GET / ${page.status}`);
    assert(health.status === 200 && JSON.parse(health.body).broker === 'redis', `GET /healthz ${health.status} ${health.body}`);
  });
  for (const c of clients) c.close();
}

async function tls(url, caFile) {
  const ca = fs.readFileSync(caFile);
  const base = httpOf(url);
  await check('tls-https-page', async () => {
    const page = await get(base + '/', { ca });
    assert(page.status === 200 && page.body.includes('wsproto chat'), `GET / ${page.status}`);
    return `${base}/ 200 with the test CA`;
  });
  await check('tls-wss-node-ws', async () => {
    const room = 'tls-' + uniq();
    const c1 = await connect(url, 'tls1', { ca, origin: base });
    const c2 = await connect(url, 'tls2', { ca });
    await c1.join(room, 'ann');
    await c2.join(room, 'bob');
    c2.send({ type: 'message', room, text: 'over wss' });
    await c1.waitFor((e) => e.type === 'message' && e.text === 'over wss', 'the message over wss');
    c1.close();
    c2.close();
    return `node ws over wss (Origin ${base} allowed)`;
  });
  await check('tls-untrusted-rejected', async () => {
    let err = null;
    try {
      const c = await connect(url, 'untrusted');
      c.close();
    } catch (e) {
      err = e;
    }
    assert(err && /certificate/i.test(err.message), `expected a certificate error, got ${err && err.message}`);
    return 'without the CA: ' + err.message;
  });
}

async function main() {
  const [cmd, ...args] = process.argv.slice(2);
  switch (cmd) {
    case 'protocol': await protocol(args[0]); break;
    case 'auth': await auth(args[0], args[1]); break;
    case 'scale': await scale(args[0], args[1], args[2]); break;
    case 'tls': await tls(args[0], args[1]); break;
    default:
      console.error('usage: node checks.js protocol|auth|scale|tls ...');
      process.exit(2);
  }
  process.exit(summary());
}

main().catch((e) => {
  console.log(`RESULT checks-crashed FAIL ${e && e.stack}`);
  process.exit(1);
});
