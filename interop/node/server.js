'use strict';
// Echo server on Node `ws`, with the same contract as
// examples/tokio_echo_server.rs: echoes text and binary; selects the
// subprotocol `chat` when offered (none otherwise); a text message `close-me`
// closes with 1000 `server closing`; messages up to 64 MiB.
//
//   INTEROP_DEFLATE=on|off|w10 node server.js [HOST] [PORT]   # PORT 0 (default): a free port
//
// permessage-deflate as INTEROP_DEFLATE says (see DEFLATE_MODES). A text
// message `deflate-stats` is answered (not echoed) with JSON describing the
// connection as seen on the wire: the negotiated extension and every data
// message received (`rx`) and sent (`tx`) so far, as {op, rsv1, len} of its
// frames (so a client can check what it sent was compressed). Prints
// `node-ws ... echo server listening on ws://HOST:PORT` once ready.

const { WebSocketServer } = require('ws');
const wsVersion = require('ws/package.json').version;
const { FrameTap, tapWrites } = require('./wire');

const host = process.argv[2] || '127.0.0.1';
const port = Number(process.argv[3] || 0);

// `on`: ws's defaults (accepts any offer, compresses every message).
// `w10`: 10-bit windows both ways (the client's only if it offered
// client_max_window_bits) and server_no_context_takeover, which makes ws
// apply its threshold: only messages of 4096 bytes or more go out
// compressed. `off`: declines.
const DEFLATE_MODES = {
  off: false,
  on: true,
  w10: { serverMaxWindowBits: 10, clientMaxWindowBits: 10, serverNoContextTakeover: true, threshold: 4096 },
};
const MODE = process.env.INTEROP_DEFLATE || 'off';
if (!(MODE in DEFLATE_MODES)) {
  console.error(`INTEROP_DEFLATE must be one of ${Object.keys(DEFLATE_MODES).join(', ')}`);
  process.exit(2);
}

const wss = new WebSocketServer({
  host,
  port,
  maxPayload: 64 << 20,
  perMessageDeflate: DEFLATE_MODES[MODE],
  handleProtocols: (offered) => (offered.has('chat') ? 'chat' : false),
});

// the Sec-WebSocket-Extensions line ws answers with, per request
wss.on('headers', (headers, req) => {
  const line = headers.find((h) => /^sec-websocket-extensions:/i.test(h));
  req.interopResponseExtensions = line ? line.slice(line.indexOf(':') + 1).trim() : '';
});

wss.on('listening', () => {
  const a = wss.address();
  console.log(`node-ws ${wsVersion} echo server (permessage-deflate ${MODE}) listening on ws://${a.address}:${a.port}`);
});

wss.on('connection', (ws, req) => {
  // ahead of ws's own listener, so a message's frames are tapped before ws
  // emits it (our clients send nothing before the handshake completes, so
  // no leftover handshake bytes are missed either)
  const rx = new FrameTap();
  const tx = new FrameTap();
  ws._socket.prependListener('data', (b) => rx.push(b));
  tapWrites(ws._socket, tx);
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.length < 32) {
      const text = data.toString();
      if (text === 'close-me') {
        ws.close(1000, 'server closing');
        return;
      }
      if (text === 'deflate-stats') {
        ws.send(JSON.stringify({
          peer: `node-ws ${wsVersion}`,
          offered: req.headers['sec-websocket-extensions'] || '',
          negotiated: req.interopResponseExtensions,
          rx: rx.messages().slice(-32),
          tx: tx.messages().slice(-32),
        }));
        return;
      }
    }
    ws.send(data, { binary: isBinary });
  });
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}
