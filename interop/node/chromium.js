'use strict';
// Runs interop/browser/checks.html in headless Chromium against a WebSocket
// echo server, and prints the page's `RESULT ...` lines.
//
//   node chromium.js ws://127.0.0.1:PORT [CHROMIUM_BINARY]
//
// No test framework and no CDP: a small HTTP server on 127.0.0.1:0 serves
// the page, receives its results (POST /result, POST /done) and offers a
// tapping proxy: a WebSocket to ws://<this server>/tap is forwarded byte for
// byte to the echo server while both directions are parsed into frame
// headers (GET /tap-stats), so the page can check what went over the wire
// compressed (RSV1) — which the browser API does not show. Chromium runs in
// its own process group with a fresh profile and is killed when done or on
// timeout. Exit status 0 when every check passed.

const http = require('http');
const net = require('net');
const { FrameTap, headerOf } = require('./wire');
const fs = require('fs');
const os = require('os');
const path = require('path');
const { spawn } = require('child_process');

const TOTAL_TIMEOUT_MS = Number(process.env.BROWSER_TIMEOUT_MS || 110000);
const wsUrl = process.argv[2];
const chromium = process.argv[3] || process.env.CHROMIUM || '/usr/bin/chromium';
if (!wsUrl) {
  console.error('usage: node chromium.js ws://HOST:PORT [CHROMIUM_BINARY]');
  process.exit(2);
}
const page = fs.readFileSync(path.join(__dirname, '..', 'browser', 'checks.html'));

let failed = 0;
let passed = 0;
let tap = null; // the last /tap connection: { request, c2s, s2c }
let child = null;
let finished = false;
const profile = fs.mkdtempSync(path.join(os.tmpdir(), 'wsproto-interop-chromium-'));
const chromiumLog = path.join(profile, 'chromium.log');

function readBody(req) {
  return new Promise((resolve) => {
    const parts = [];
    req.on('data', (c) => parts.push(c));
    req.on('end', () => resolve(Buffer.concat(parts).toString('utf8')));
  });
}

const server = http.createServer(async (req, res) => {
  const u = new URL(req.url, 'http://localhost');
  if (req.method === 'GET' && u.pathname === '/checks.html') {
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(page);
  } else if (req.method === 'GET' && u.pathname === '/tap-stats') {
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
    res.end(JSON.stringify(tap && {
      offered: tap.request,
      answered: headerOf(tap.s2c.head, 'sec-websocket-extensions'),
      c2s: tap.c2s.messages(),
      s2c: tap.s2c.messages(),
    }));
  } else if (req.method === 'POST' && u.pathname === '/result') {
    const line = (await readBody(req)).replace(/\s+/g, ' ').trim();
    console.log(line);
    if (/^RESULT \S+ FAIL/.test(line)) failed++;
    if (/^RESULT \S+ PASS/.test(line)) passed++;
    res.end();
  } else if (req.method === 'POST' && u.pathname === '/done') {
    await readBody(req);
    res.end();
    finish(failed || !passed ? 1 : 0);
  } else {
    res.writeHead(404);
    res.end();
  }
});

// The tap: forward the browser's WebSocket to the echo server unchanged,
// parsing the frames both ways.
server.on('upgrade', (req, socket, head) => {
  if (!req.url.startsWith('/tap')) {
    socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n');
    return;
  }
  const target = new URL(wsUrl);
  const t = { request: req.headers['sec-websocket-extensions'] || '', c2s: new FrameTap(), s2c: new FrameTap({ skipHttpHead: true }) };
  tap = t;
  let lines = `GET ${target.pathname || '/'} HTTP/1.1\r\n`;
  for (let i = 0; i < req.rawHeaders.length; i += 2) lines += `${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}\r\n`;
  const up = net.connect(Number(target.port), target.hostname, () => {
    up.write(lines + '\r\n');
    if (head.length) {
      t.c2s.push(head);
      up.write(head);
    }
  });
  up.setNoDelay(true);
  socket.setNoDelay(true);
  socket.on('data', (b) => {
    t.c2s.push(b);
    up.write(b);
  });
  up.on('data', (b) => {
    t.s2c.push(b);
    socket.write(b);
  });
  socket.on('end', () => up.end());
  up.on('end', () => socket.end());
  socket.on('error', () => up.destroy());
  up.on('error', () => socket.destroy());
  socket.on('close', () => up.destroy());
  up.on('close', () => socket.destroy());
});

function groupAlive(pgid) {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (_) {
    return false;
  }
}

// Chromium and its helpers (zygote, renderer, utility) share the process
// group we started it in: SIGTERM the group, wait up to 5 s for all of it to
// go, then SIGKILL whatever is left.
async function killChromium() {
  if (!child || !child.pid) return;
  const pgid = child.pid;
  try { process.kill(-pgid, 'SIGTERM'); } catch (_) { return; }
  for (let i = 0; i < 50 && groupAlive(pgid); i++) await new Promise((r) => setTimeout(r, 100));
  try { process.kill(-pgid, 'SIGKILL'); } catch (_) {}
}

async function finish(code) {
  if (finished) return;
  finished = true;
  await killChromium();
  server.close();
  if (code !== 0) {
    try {
      const log = fs.readFileSync(chromiumLog, 'utf8').split('\n').filter((l) => l && !/dbus|zygote|unexpected operator/.test(l)).slice(-20);
      if (log.length) console.error('--- last lines of chromium stderr ---\n' + log.join('\n'));
    } catch (_) {}
  }
  fs.rmSync(profile, { recursive: true, force: true });
  process.exit(code);
}

for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => finish(1));

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const serverName = process.env.INTEROP_SERVER || 'wsproto';
  const pageUrl = `http://127.0.0.1:${port}/checks.html?ws=${encodeURIComponent(wsUrl)}&server=${encodeURIComponent(serverName)}`;
  const args = [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--disable-dev-shm-usage', '--no-default-browser-check', '--mute-audio',
    `--user-data-dir=${profile}`, pageUrl,
  ];
  const log = fs.openSync(chromiumLog, 'w');
  child = spawn(chromium, args, { detached: true, stdio: ['ignore', log, log] });
  child.on('error', (e) => {
    console.log(`RESULT browser FAIL cannot start ${chromium}: ${e.message}`);
    finish(1);
  });
  child.on('exit', (code, sig) => {
    if (!finished) {
      console.log(`RESULT browser FAIL chromium exited early (code ${code}, signal ${sig})`);
      finish(1);
    }
  });
});

setTimeout(() => {
  console.log(`RESULT browser FAIL no /done from the page within ${TOTAL_TIMEOUT_MS / 1000}s`);
  finish(1);
}, TOTAL_TIMEOUT_MS).unref();
