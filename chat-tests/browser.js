'use strict';
// Test (a): headless Chromium drives the chat page (examples/chat/static/
// index.html, served by the chat server) in two browser contexts.
//
//   node browser.js CHAT_BINARY ARTIFACT_DIR [CHROMIUM]
//
// Starts its own chat server on a free port (so it can restart it), then:
// alice and bob join one room; joins and messages show up on both pages;
// the server restarts (SIGTERM: close 1001), both pages show the drop,
// reconnect with backoff and rejoin the room by themselves, and still talk;
// bob leaves and both pages show it. Screenshots go to ARTIFACT_DIR
// (chat.png: the conversation; chat-reconnected.png: after the restart).
// Prints RESULT lines; exit status 0 when every check passed.

const { spawn } = require('child_process');
const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');
const { check, summary, assert } = require('./lib');

// `--via URL` instead of the binary: no server of its own; two pages
// through URL (nginx in front of two instances) must land on different
// instances and talk.
const argv = process.argv.slice(2);
const via = argv[0] === '--via' ? argv.splice(0, 2)[1] : null;
const [bin, artifacts, chromiumPath = process.env.CHROMIUM || '/usr/bin/chromium'] = via ? [null, ...argv] : argv;
if ((!bin && !via) || !artifacts) {
  console.error('usage: node browser.js CHAT_BINARY ARTIFACT_DIR [CHROMIUM]\n       node browser.js --via URL ARTIFACT_DIR [CHROMIUM]');
  process.exit(2);
}
fs.mkdirSync(artifacts, { recursive: true });
const WAIT = 10000;

let server = null;
const serverLog = via ? null : fs.createWriteStream(path.join(artifacts, 'browser-server.log'));

// Start the chat server; resolves with its http:// URL.
function startServer(addr, extra = []) {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, ['--addr', addr, '--keepalive', '5', ...extra], { stdio: ['ignore', 'pipe', 'pipe'] });
    server = child;
    let out = '';
    const timer = setTimeout(() => reject(new Error(`the chat server did not start: ${out}`)), WAIT);
    child.stdout.on('data', (d) => {
      serverLog.write(d);
      out += d;
      const m = /listening on (http:\/\/[0-9.]+:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(m[1]);
      }
    });
    child.stderr.on('data', (d) => serverLog.write(d));
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the chat server exited (${code}): ${out}`));
    });
  });
}

function stopServer() {
  return new Promise((resolve) => {
    if (!server || server.exitCode !== null) return resolve(null);
    const child = server;
    const kill = setTimeout(() => child.kill('SIGKILL'), 8000);
    child.once('exit', (code, signal) => {
      clearTimeout(kill);
      resolve(code === null ? signal : code);
    });
    child.kill('SIGTERM');
  });
}

// Resolves once the page's message list has a line containing `text`
// (at least `count` of them).
async function seeLine(page, text, count = 1) {
  await page.waitForFunction(
    ([t, n]) => [...document.querySelectorAll('#messages li')].filter((li) => li.textContent.includes(t)).length >= n,
    [text, count],
    { timeout: WAIT },
  );
}

async function state(page) {
  return page.$eval('#status', (el) => el.dataset.state);
}

async function waitState(page, wanted) {
  await page.waitForFunction((w) => document.getElementById('status').dataset.state === w, wanted, { timeout: WAIT });
}

function launch() {
  return chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

async function throughProxy(url) {
  const browser = await launch();
  try {
    await check('browser-via-nginx', async () => {
      const pages = [];
      for (const user of ['ann', 'ben']) {
        const ctx = await browser.newContext({ viewport: { width: 860, height: 470 } });
        const page = await ctx.newPage();
        await page.goto(url + '/', { timeout: WAIT });
        await waitState(page, 'open');
        await page.fill('#user', user);
        await page.fill('#room', 'via-nginx');
        await page.click('#join');
        await waitState(page, 'joined');
        pages.push(page);
      }
      const servers = await Promise.all(pages.map((p) => p.$eval('#server', (el) => el.textContent)));
      assert(servers[0] !== servers[1], `both pages on ${servers[0]}`);
      await pages[0].fill('#text', 'hello through nginx');
      await pages[0].click('#send');
      await seeLine(pages[1], 'hello through nginx');
      await pages[1].screenshot({ path: path.join(artifacts, 'chat-nginx.png') });
      return `pages from ${url}/ on "${servers[0]}" and "${servers[1]}" (Origin allowed, WebSocket proxied) talk`;
    });
  } finally {
    await browser.close().catch(() => {});
  }
}

async function main() {
  if (via) return throughProxy(via);
  let url = await startServer('127.0.0.1:0');
  const port = new URL(url).port;
  const browser = await launch();
  const version = browser.version();
  const pages = {};
  const room = 'lobby'; // a fresh server: no one else is there
  try {
    for (const who of ['alice', 'bob']) {
      const ctx = await browser.newContext({ viewport: { width: 860, height: 470 }, deviceScaleFactor: 1 });
      const page = await ctx.newPage();
      page.on('console', (m) => { if (m.type() === 'error') console.error(`[${who} console] ${m.text()}`); });
      page.on('pageerror', (e) => console.error(`[${who} page error] ${e.message}`));
      pages[who] = page;
    }
    const { alice, bob } = pages;

    await check('browser-page-connects', async () => {
      for (const page of [alice, bob]) {
        await page.goto(url + '/', { timeout: WAIT });
        await waitState(page, 'open');
      }
      const server = await alice.$eval('#server', (el) => el.textContent);
      assert(server.includes(`127.0.0.1:${port}`), `#server shows ${server}`);
      return `${version}: both pages "connected" (${server})`;
    });

    await check('browser-joins-on-both', async () => {
      for (const [page, user] of [[alice, 'alice'], [bob, 'bob']]) {
        await page.fill('#user', user);
        await page.fill('#room', room);
        await page.click('#join');
        await waitState(page, 'joined');
      }
      await seeLine(alice, `bob joined #${room}`);
      await seeLine(bob, `bob joined #${room}`);
      await seeLine(alice, `alice joined #${room}`);
      return `status "joined" on both; alice sees bob join`;
    });

    await check('browser-messages-on-both', async () => {
      await alice.fill('#text', 'Hi Bob! This message went through wsproto.');
      await alice.click('#send');
      await bob.fill('#text', 'Grüße, Alice — same room, two browsers.');
      await bob.press('#text', 'Enter');
      for (const page of [alice, bob]) {
        await seeLine(page, 'Hi Bob! This message went through wsproto.');
        await seeLine(page, 'Grüße, Alice — same room, two browsers.');
      }
      const mine = await alice.$$eval('#messages li.mine', (l) => l.length);
      assert(mine === 1, `alice has ${mine} own messages highlighted`);
      await alice.fill('#text', 'Stop the server and I will reconnect by myself.');
      await alice.click('#send');
      await seeLine(bob, 'Stop the server and I will reconnect by myself.');
    });

    await check('browser-screenshot', async () => {
      const file = path.join(artifacts, 'chat.png');
      await alice.screenshot({ path: file });
      await bob.screenshot({ path: path.join(artifacts, 'chat-bob.png') });
      return file;
    });

    await check('browser-reconnects-and-rejoins', async () => {
      const code = await stopServer();
      for (const page of [alice, bob]) {
        await seeLine(page, 'disconnected (1001: server shutting down)');
        await waitState(page, 'reconnecting');
      }
      const shown = await alice.$eval('#status', (el) => el.textContent);
      url = await startServer(`127.0.0.1:${port}`);
      for (const page of [alice, bob]) await waitState(page, 'joined');
      // both rejoined by themselves: a second "joined" line of their own
      // (who rejoins first does not see the other one's join)
      await seeLine(alice, `alice joined #${room}`, 2);
      await seeLine(bob, `bob joined #${room}`, 2);
      await bob.fill('#text', 'Back again, after the restart.');
      await bob.click('#send');
      await seeLine(alice, 'Back again, after the restart.');
      await alice.screenshot({ path: path.join(artifacts, 'chat-reconnected.png') });
      return `server stopped (${code}); pages showed "${shown}", then rejoined #${room} and talk again`;
    });

    await check('browser-leave-on-both', async () => {
      await bob.click('#leave');
      await seeLine(alice, `bob left #${room}`);
      await seeLine(bob, `bob left #${room}`);
      assert((await state(bob)) === 'open', `bob's status is ${await state(bob)}`);
      assert(await bob.$eval('#send', (b) => b.disabled), 'bob can still send after leaving');
      await alice.screenshot({ path: path.join(artifacts, 'chat-final.png') });
    });

    await check('browser-tab-close-announced', async () => {
      await bob.fill('#room', room);
      await bob.click('#join');
      await waitState(bob, 'joined');
      await bob.context().close();
      await seeLine(alice, `bob left #${room} (disconnected)`);
    });

    await check('browser-token-required', async () => {
      await stopServer();
      const tokenUrl = await startServer('127.0.0.1:0', ['--token', 'let-me-in']);
      const ctx = await browser.newContext({ viewport: { width: 860, height: 470 } });
      const page = await ctx.newPage();
      await page.goto(tokenUrl + '/', { timeout: WAIT });
      await waitState(page, 'unauthorized');
      const shown = await page.$eval('#status', (el) => el.textContent);
      await page.screenshot({ path: path.join(artifacts, 'chat-unauthorized.png') });
      await page.goto(tokenUrl + '/?token=let-me-in', { timeout: WAIT });
      await waitState(page, 'open');
      await ctx.close();
      return `without a token the page shows "${shown}"; with ?token= it connects`;
    });
  } finally {
    await browser.close().catch(() => {});
    await stopServer();
  }
}

// run.sh's timeout sends SIGTERM: do not leave the server behind
// (playwright closes its browser on SIGTERM by itself)
process.on('SIGTERM', async () => {
  console.log('RESULT browser-suite FAIL terminated (timeout?)');
  await stopServer();
  process.exit(1);
});

main()
  .then(() => process.exit(summary()))
  .catch(async (e) => {
    console.log(`RESULT browser-crashed FAIL ${e && e.message}`);
    await stopServer();
    process.exit(1);
  });
