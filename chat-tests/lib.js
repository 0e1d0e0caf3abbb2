'use strict';
// Small helpers for the chat tests: a chat.v1 client on Node's `ws`, a
// handshake-status probe, and a check runner that prints
// `RESULT <name> PASS|FAIL <detail>` lines (collected by run.sh).

const WebSocket = require('ws');

const CHECK_TIMEOUT_MS = Number(process.env.CHECK_TIMEOUT_MS || 20000);

let passed = 0;
let failed = 0;

async function check(name, fn) {
  let timer;
  const limit = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${CHECK_TIMEOUT_MS} ms`)), CHECK_TIMEOUT_MS);
  });
  try {
    const detail = await Promise.race([fn(), limit]);
    passed++;
    console.log(`RESULT ${name} PASS${detail ? ' ' + detail : ''}`);
  } catch (e) {
    failed++;
    console.log(`RESULT ${name} FAIL ${String((e && e.message) || e).replace(/\s+/g, ' ')}`);
  } finally {
    clearTimeout(timer);
  }
}

function summary() {
  return failed === 0 && passed > 0 ? 0 : 1;
}

function assert(cond, msg) {
  if (!cond) throw new Error(msg);
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A chat.v1 client that records every event.
class Client {
  constructor(ws, label) {
    this.ws = ws;
    this.label = label;
    this.events = [];
    this.closed = null;
    this.waiters = new Set();
    ws.on('message', (data, isBinary) => {
      let ev;
      try {
        ev = JSON.parse(data.toString());
      } catch (_) {
        ev = { type: '?unparsable', raw: data.toString(), isBinary };
      }
      this.events.push(ev);
      this.poke();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      this.poke();
    });
    ws.on('error', () => {});
  }

  poke() {
    for (const w of [...this.waiters]) w();
  }

  get hello() {
    return this.events.find((e) => e.type === 'hello');
  }

  // Resolve with the first result of `check()` that is not undefined,
  // checked now and on every event; reject if it throws, or after `ms` with
  // `timeoutMessage()`.
  wait(check, timeoutMessage, ms) {
    return new Promise((resolve, reject) => {
      const done = () => {
        let value;
        try {
          value = check();
        } catch (e) {
          cleanup();
          reject(e);
          return;
        }
        if (value !== undefined) {
          cleanup();
          resolve(value);
        }
      };
      const timer = setTimeout(() => {
        cleanup();
        reject(new Error(timeoutMessage()));
      }, ms);
      const cleanup = () => {
        clearTimeout(timer);
        this.waiters.delete(done);
      };
      this.waiters.add(done);
      done();
    });
  }

  // Resolve with the first recorded event matching `pred` (recorded before
  // or after the call).
  waitFor(pred, what, ms = 5000) {
    return this.wait(
      () => {
        const ev = this.events.find(pred);
        if (ev) return ev;
        if (this.closed) {
          throw new Error(`${this.label}: closed (${this.closed.code}) while waiting for ${what}`);
        }
        return undefined;
      },
      () => {
        const last = this.events.slice(-3).map((e) => JSON.stringify(e)).join(' ');
        return `${this.label}: no ${what} within ${ms} ms (last events: ${last})`;
      },
      ms,
    );
  }

  waitClose(ms = 5000) {
    return this.wait(
      () => this.closed || undefined,
      () => `${this.label}: not closed within ${ms} ms`,
      ms,
    );
  }

  send(obj) {
    this.ws.send(typeof obj === 'string' || Buffer.isBuffer(obj) ? obj : JSON.stringify(obj));
  }

  // Events recorded from now on (the predicate's second argument is the
  // event's index).
  since() {
    const start = this.events.length;
    return (pred) => (e, i) => i >= start && pred(e);
  }

  // Send a request and wait for the error event it causes.
  async expectError(obj, code) {
    const after = this.since();
    this.send(obj);
    const what = `an error event for ${(typeof obj === 'string' ? obj : JSON.stringify(obj) || '').slice(0, 60)}`;
    const ev = await this.waitFor(after((e) => e.type === 'error'), what);
    assert(ev.code === code, `expected error ${code}, got ${JSON.stringify(ev)}`);
    return ev;
  }

  async join(room, user) {
    this.send({ type: 'join', room, user });
    await this.waitFor((e) => e.type === 'joined' && e.room === room && e.user === user, `joined ${room} as ${user}`);
  }

  async roundTrip() {
    const after = this.since();
    this.send({ type: 'ping' });
    await this.waitFor(after((e) => e.type === 'pong'), 'pong');
  }

  close() {
    try {
      this.ws.close(1000, 'bye');
    } catch (_) {}
  }
}

// Connect with the chat.v1 subprotocol; resolves after the hello event.
function connect(url, label, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols || ['chat.v1'], {
      headers: options.headers || {},
      origin: options.origin,
      ca: options.ca,
      handshakeTimeout: 5000,
    });
    const client = new Client(ws, label);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`${label}: handshake answered ${res.statusCode}`)));
    ws.once('error', (e) => reject(new Error(`${label}: ${e.message}`)));
    ws.once('open', () => {
      client.waitFor((e) => e.type === 'hello', 'hello').then(() => resolve(client), reject);
    });
  });
}

// The status of a WebSocket handshake: 101, or the refusal's status,
// headers and body.
function handshakeStatus(url, options = {}) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, options.protocols === undefined ? ['chat.v1'] : options.protocols, {
      headers: options.headers || {},
      origin: options.origin,
      handshakeTimeout: 5000,
    });
    ws.once('unexpected-response', (_req, res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
      res.on('error', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    ws.once('upgrade', (res) => {
      ws.once('open', () => ws.close());
      resolve({ status: res.statusCode, headers: res.headers, body: '', protocol: res.headers['sec-websocket-protocol'] });
    });
    ws.once('error', (e) => reject(e));
  });
}

// A plain HTTP(S) GET: { status, headers, body }.
function get(url, options = {}) {
  const mod = url.startsWith('https:') ? require('https') : require('http');
  return new Promise((resolve, reject) => {
    const req = mod.get(url, { headers: options.headers || {}, ca: options.ca, timeout: 5000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error(`GET ${url} timed out`)));
    req.on('error', reject);
  });
}

module.exports = { check, summary, assert, sleep, connect, handshakeStatus, get, Client };
