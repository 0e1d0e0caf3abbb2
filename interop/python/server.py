"""Echo server on Python `websockets`, with the same contract as
examples/tokio_echo_server.rs: echoes text and binary; selects the subprotocol
`chat` when offered (and none otherwise, whatever else is offered); a text
message `close-me` closes with 1000 `server closing`; messages up to 64 MiB.

    INTEROP_DEFLATE=on|off|w10 python server.py [HOST] [PORT]   # PORT 0 (default): a free port

permessage-deflate as INTEROP_DEFLATE says (see server_extensions). A text
message `deflate-stats` is answered (not echoed) with JSON describing the
connection as seen on the wire: the negotiated extension and every data
message received (`rx`) and sent (`tx`) so far, as {op, rsv1, len}.

Prints `python-websockets ... echo server listening on ws://HOST:PORT` once
ready.
"""

import asyncio
import json
import os
import sys

import websockets
from websockets.asyncio.server import serve
from websockets.extensions.permessage_deflate import ServerPerMessageDeflateFactory

from deflate_tap import Tap

MAX = 64 << 20
MODE = os.environ.get("INTEROP_DEFLATE", "off")


def server_extensions():
    """serve() arguments: `on` is websockets' default (accepts offers with
    12-bit windows both ways, the client's only if it offered
    client_max_window_bits); `w10`: 10-bit windows, and requires
    client_no_context_takeover from the client; `off` declines every offer."""
    if MODE == "off":
        return {"compression": None}
    if MODE == "w10":
        return {
            "compression": None,
            "extensions": [
                ServerPerMessageDeflateFactory(
                    server_max_window_bits=10, client_max_window_bits=10, client_no_context_takeover=True
                )
            ],
        }
    if MODE == "on":
        return {"compression": "deflate"}
    sys.exit("INTEROP_DEFLATE must be on, off or w10")


def select_subprotocol(connection, offered):
    # The default logic rejects clients that offer no common subprotocol;
    # the contract is: `chat` if offered, otherwise no subprotocol.
    return "chat" if "chat" in offered else None


async def echo(ws):
    tap = Tap(ws)
    try:
        async for msg in ws:
            if msg == "close-me":
                await ws.close(1000, "server closing")
                return
            if msg == "deflate-stats":
                stats = tap.stats()
                stats["peer"] = f"python-websockets {websockets.__version__}"
                stats["offered"] = ws.request.headers.get("Sec-WebSocket-Extensions", "")
                stats["negotiated"] = ws.response.headers.get("Sec-WebSocket-Extensions", "")
                await ws.send(json.dumps(stats))
                continue
            await ws.send(msg)
    except websockets.ConnectionClosed:
        pass


async def main():
    host = sys.argv[1] if len(sys.argv) > 1 else "127.0.0.1"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    async with serve(
        echo,
        host,
        port,
        select_subprotocol=select_subprotocol,
        max_size=MAX,
        ping_interval=None,
        **server_extensions(),
    ) as server:
        sock = server.sockets[0]
        h, p = sock.getsockname()[:2]
        print(
            f"python-websockets {websockets.__version__} echo server (permessage-deflate {MODE}) "
            f"listening on ws://{h}:{p}",
            flush=True,
        )
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
