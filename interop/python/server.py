"""Echo server on Python `websockets`, with the same contract as
examples/tokio_echo_server.rs: echoes text and binary; selects the subprotocol
`chat` when offered (and none otherwise, whatever else is offered); a text
message `close-me` closes with 1000 `server closing`; messages up to 64 MiB;
no extensions (permessage-deflate is declined).

    python server.py [HOST] [PORT]      # PORT 0 (default) picks a free port

Prints `python-websockets echo server listening on ws://HOST:PORT` once ready.
"""

import asyncio
import sys

import websockets
from websockets.asyncio.server import serve

MAX = 64 << 20


def select_subprotocol(connection, offered):
    # The default logic rejects clients that offer no common subprotocol;
    # the contract is: `chat` if offered, otherwise no subprotocol.
    return "chat" if "chat" in offered else None


async def echo(ws):
    try:
        async for msg in ws:
            if msg == "close-me":
                await ws.close(1000, "server closing")
                return
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
        # no permessage-deflate: the same as the Rust echo server
        compression=None,
        ping_interval=None,
    ) as server:
        sock = server.sockets[0]
        h, p = sock.getsockname()[:2]
        print(
            f"python-websockets {websockets.__version__} echo server listening on ws://{h}:{p}",
            flush=True,
        )
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
