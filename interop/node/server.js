'use strict';
// Echo server on Node `ws`, with the same contract as
// examples/tokio_echo_server.rs: echoes text and binary; selects the
// subprotocol `chat` when offered (none otherwise); a text message `close-me`
// closes with 1000 `server closing`; messages up to 64 MiB.
//
//   node server.js [HOST] [PORT]     # PORT 0 (default) picks a free port
//
// Prints `node-ws ... echo server listening on ws://HOST:PORT` once ready.

const { WebSocketServer } = require('ws');
const wsVersion = require('ws/package.json').version;

const host = process.argv[2] || '127.0.0.1';
const port = Number(process.argv[3] || 0);

const wss = new WebSocketServer({
  host,
  port,
  maxPayload: 64 << 20,
  // the server's own default is perMessageDeflate: false; keep it explicit
  perMessageDeflate: false,
  handleProtocols: (offered) => (offered.has('chat') ? 'chat' : false),
});

wss.on('listening', () => {
  const a = wss.address();
  console.log(`node-ws ${wsVersion} echo server listening on ws://${a.address}:${a.port}`);
});

wss.on('connection', (ws) => {
  ws.on('error', () => {});
  ws.on('message', (data, isBinary) => {
    if (!isBinary && data.toString() === 'close-me') {
      ws.close(1000, 'server closing');
      return;
    }
    ws.send(data, { binary: isBinary });
  });
});

for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => process.exit(0));
}
