"""Interop checks with Python `websockets` as the CLIENT.

    INTEROP_DEFLATE=on|off|w10 python client.py ws://127.0.0.1:PORT

Runs every check against an echo server with the contract of
examples/tokio_echo_server.rs and prints one line per check:

    RESULT <check> PASS|FAIL|N/A [detail]

INTEROP_DEFLATE picks websockets' permessage-deflate settings for every
connection (see client_extensions); the `deflate` / `no-deflate` checks
verify what was negotiated and, frame by frame, what went out compressed
(RSV1) in each direction.

Exit status 0 when every check passed, 1 otherwise. Each check has its own
timeout, so a stuck peer fails that check instead of hanging the run.
"""

import asyncio
import os
import sys

import websockets
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
from websockets.extensions.permessage_deflate import ClientPerMessageDeflateFactory

from deflate_tap import Tap

MODE = os.environ.get("INTEROP_DEFLATE", "on")
if MODE not in ("on", "off", "w10"):
    sys.exit("INTEROP_DEFLATE must be on, off or w10")
# wsproto's own policy (64-byte threshold, plain at 8 bits, the exact
# response) is only expected of wsproto's server
WSPROTO = os.environ.get("INTEROP_SERVER", "wsproto") == "wsproto"

CHECK_TIMEOUT = 30
MAX = 64 << 20

TEXT_ASCII = "".join(chr(c) for c in range(128))
TEXT_MULTIBYTE = "héllo wörld — ÄÖÜß € 日本語 русский ελληνικά \u0080\u07ff\u0800\ufffd\uffff"
TEXT_EMOJI = "😀🎉👍🏽 🇩🇪 👨‍👩‍👧‍👦 \U00010000\U0010ffff"
SIZES = [0, 125, 126, 65535, 65536, 1 << 20, 16 << 20]
SIZE_NAMES = {1 << 20: "1MiB", 16 << 20: "16MiB"}
ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"
# about 1 MiB of 2-, 3- and 4-byte UTF-8 sequences
TEXT_MULTIBYTE_1MIB = (TEXT_MULTIBYTE + TEXT_EMOJI) * ((1 << 20) // len((TEXT_MULTIBYTE + TEXT_EMOJI).encode()) + 1)


def client_extensions(mode=None):
    """connect() arguments for a deflate mode: `on` is websockets' default
    (offers "permessage-deflate; client_max_window_bits", compresses every
    message), `w10` asks for 10-bit windows both ways and
    server_no_context_takeover, `off` offers nothing."""
    mode = mode or MODE
    if mode == "off":
        return {"compression": None}
    if mode == "w10":
        return {
            "compression": "deflate",
            "extensions": [
                ClientPerMessageDeflateFactory(
                    server_max_window_bits=10, client_max_window_bits=10, server_no_context_takeover=True
                )
            ],
        }
    if mode == "window-8":
        # the server's window limited to 8 bits (websockets' own zlib
        # cannot compress with 8 bits, so only the server's)
        return {"compression": "deflate", "extensions": [ClientPerMessageDeflateFactory(server_max_window_bits=8)]}
    return {"compression": "deflate"}


def chat_json(n, seed=0):
    """A chat-like JSON message of exactly `n` ASCII bytes, about as
    compressible as real chat traffic (words and ticket numbers drawn by a
    MINSTD generator; the same generator as the Node and browser clients)."""
    words = ["hello", "deploy", "the", "build", "is", "green", "lunch", "ship", "it", "p99",
             "latency", "ok", "review", "merge", "branch", "tests", "flaky", "again", "cache", "db"]
    x = seed * 7919 + 1
    s = '{"type":"message","room":"lobby","user":"u%d","ts":%d,"text":"' % (seed, 1700000000 + seed)
    while len(s) < n - 2:
        x = x * 48271 % 2147483647
        s += words[x % len(words)] + (" #%d" % ((x >> 4) % 10000) if x % 3 == 0 else "") + " "
    return s[: n - 2] + '"}'


def pattern_bytes(n):
    return (bytes(range(256)) * (n // 256 + 1))[:n]


def pattern_text(n):
    return (ALPHABET * (n // len(ALPHABET) + 1))[:n]


def describe(x):
    kind = "text" if isinstance(x, str) else "binary"
    return f"{kind}[{len(x)}] {x[:24]!r}{'...' if len(x) > 24 else ''}"


class Fail(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise Fail(msg)


async def open_ws(url, protocols=None, mode=None):
    ws = await connect(
        url,
        subprotocols=protocols,
        max_size=MAX,
        open_timeout=10,
        close_timeout=10,
        ping_interval=None,
        **client_extensions(mode),
    )
    ws.tap = Tap(ws)
    return ws


async def echo(ws, msg):
    await ws.send(msg)
    got = await ws.recv()
    expect(type(got) is type(msg), f"sent {describe(msg)}, got {describe(got)} back")
    expect(got == msg, f"sent {describe(msg)}, echo differs: {describe(got)}")


class Runner:
    def __init__(self, url):
        self.url = url
        self.failed = 0
        self.ws = None  # the shared connection for the data checks

    async def data_ws(self):
        if self.ws is None or self.ws.state is not websockets.State.OPEN:
            self.ws = await open_ws(self.url)
        return self.ws

    async def run(self, name, fn):
        try:
            detail = await asyncio.wait_for(fn(), CHECK_TIMEOUT)
            print(f"RESULT {name} PASS{' ' + detail if detail else ''}", flush=True)
        except asyncio.TimeoutError:
            self.failed += 1
            print(f"RESULT {name} FAIL timed out after {CHECK_TIMEOUT}s", flush=True)
            self.ws = None
        except Exception as e:  # noqa: BLE001 - report anything
            self.failed += 1
            print(f"RESULT {name} FAIL {type(e).__name__}: {e}", flush=True)
            self.ws = None


async def main(url):
    print(f"INFO peer python-websockets {websockets.__version__}, INTEROP_DEFLATE={MODE}", flush=True)
    r = Runner(url)

    async def no_deflate():
        # compression=None: nothing offered, nothing answered, and the
        # connection works uncompressed (a server frame with RSV1 would fail
        # it: websockets allows no RSV bits without an extension)
        ws = await r.data_ws()
        req = ws.request.headers.get("Sec-WebSocket-Extensions")
        expect(req is None, f"client offered {req!r}")
        resp = ws.response.headers.get("Sec-WebSocket-Extensions")
        expect(resp is None, f"server answered extensions {resp!r}")
        await echo(ws, "uncompressed " * 100)
        await echo(ws, pattern_bytes(100000))
        return "nothing offered, nothing answered, echoes uncompressed"

    async def deflate():
        ws = await open_ws(url)
        req = ws.request.headers.get("Sec-WebSocket-Extensions", "")
        resp = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        expect("permessage-deflate" in req, f"client did not offer permessage-deflate: {req!r}")
        expect(resp.startswith("permessage-deflate"), f"server answered {resp!r}")
        ext = ws.tap.ext
        expect(ext is not None, f"no PerMessageDeflate extension active: {ws.protocol.extensions}")
        if MODE == "w10":
            want = "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10"
            expect(resp == want or not WSPROTO, f"response {resp!r}, expected {want!r}")
            expect(
                (ext.remote_max_window_bits, ext.local_max_window_bits, ext.remote_no_context_takeover) == (10, 10, True),
                f"expected 10-bit windows and server_no_context_takeover, got {ext!r}",
            )
        big = chat_json(8000, 1)
        med = chat_json(600, 2)  # repeated within even a 10-bit window
        for m in (big, med, "tiny", med):
            await echo(ws, m)
        # compressed fragments, text split mid-code-point
        parts = [b"fragmented " * 50, "\u20ac".encode()[:2], "\u20ac".encode()[2:] + b" end " * 50]
        await ws.send(parts, text=True)
        got = await ws.recv()
        expect(got == b"".join(parts).decode(), "fragmented compressed message: echo differs")
        rx = Tap.messages(ws.tap.rx)[-5:]
        tx = Tap.messages(ws.tap.tx)[-5:]
        expect(len(rx) == 5 and len(tx) == 5, f"tapped {rx} / {tx}")
        expect(rx[0][0] and rx[0][1] < 8000 * 0.7, f"server's 8000-byte echo: {rx[0]}")
        expect(not any(m[2] for m in rx + tx), "RSV1 on a continuation frame")
        if WSPROTO:
            # wsproto: compressed from 64 bytes, with context takeover unless
            # server_no_context_takeover was asked for (w10)
            expect(rx[1][0] and rx[1][1] < 600, f"server's 600-byte echo: {rx[1]}")
            expect(not rx[2][0] and rx[2][1] == 4, f"server's 4-byte echo: {rx[2]}")
            if MODE == "w10":
                expect(rx[3][0] and rx[3][1] == rx[1][1], f"server's repeated 600-byte echo (no context takeover): {rx[3]}")
            else:
                expect(rx[3][0] and rx[3][1] < rx[1][1] // 2, f"server's repeated 600-byte echo (context takeover): {rx[3]}")
            expect(rx[4][0], f"server's echo of the fragmented message: {rx[4]}")
        # websockets -> server: every message compressed
        expect(all(m[0] for m in tx), f"websockets' frames: {tx}")
        await ws.close()
        return (
            f"{ext!r}; server sent 8000 B as {rx[0][1]} B, 600 B as {rx[1][1]} B then {rx[3][1]} B, "
            f"4 B as {rx[2][1]} B{'' if rx[2][0] else ' plain'}; "
            f"websockets sent 8000 B as {tx[0][1]} B, fragments compressed"
        )

    async def deflate_window_8():
        ws = await open_ws(url, mode="window-8")
        resp = ws.response.headers.get("Sec-WebSocket-Extensions", "")
        expect("server_max_window_bits=8" in resp, f"response {resp!r}")
        msg = chat_json(5000, 8)
        await echo(ws, msg)
        await echo(ws, msg)
        rx = Tap.messages(ws.tap.rx)[-2:]
        tx = Tap.messages(ws.tap.tx)[-2:]
        expect(all(not m[0] and m[1] == 5000 for m in rx), f"server sent {rx}")
        expect(all(m[0] for m in tx), f"websockets sent {tx}")
        await ws.close()
        return f"response {resp!r}: server -> websockets plain, websockets -> server compressed ({tx[0][1]} B)"

    async def text(s):
        await echo(await r.data_ws(), s)

    async def binary_256():
        await echo(await r.data_ws(), bytes(range(256)))

    def size_check(n):
        async def go():
            ws = await r.data_ws()
            await echo(ws, pattern_bytes(n))
            await echo(ws, pattern_text(n))
        return go

    async def text_multibyte_large():
        ws = await r.data_ws()
        await echo(ws, TEXT_MULTIBYTE_1MIB)
        # again as 4093-byte fragments: nearly every boundary splits a code point
        raw = TEXT_MULTIBYTE_1MIB.encode()
        await ws.send([raw[i : i + 4093] for i in range(0, len(raw), 4093)], text=True)
        got = await ws.recv()
        expect(got == TEXT_MULTIBYTE_1MIB, f"fragmented: echo differs: {describe(got)}")
        return f"{len(raw)} bytes, whole and in {len(raw) // 4093 + 1} fragments"

    async def fragmented():
        ws = await r.data_ws()
        # text fragments as raw UTF-8, split in the middle of code points;
        # websockets ends the message with an empty final continuation frame
        parts = [b"Hello, w", b"\xc3", b"\xb6rld \xe2\x82", b"\xac", b""]
        await ws.send(parts, text=True)
        got = await ws.recv()
        expect(got == "Hello, wörld €", f"text fragments: echo {got!r}")
        chunks = [bytes(range(256)), b"", pattern_bytes(70000)]
        await ws.send(chunks)
        got = await ws.recv()
        expect(got == b"".join(chunks), f"binary fragments: echo {describe(got)}")
        return "text split mid-code-point + binary incl. empty fragment"

    async def ping_pong():
        ws = await r.data_ws()
        payload = b"ping\x00\xff" + bytes(range(100))
        waiter = await ws.ping(payload)
        await asyncio.wait_for(waiter, 10)
        waiter = await ws.ping(b"")
        await asyncio.wait_for(waiter, 10)
        await echo(ws, "after ping")
        return "payload 106 B and empty"

    async def keepalive():
        # websockets' own keepalive: a ping every 0.1 s, the connection fails
        # if a pong takes more than 1 s; stay idle for 1.5 s
        ws = await connect(url, max_size=MAX, open_timeout=10, ping_interval=0.1, ping_timeout=1, **client_extensions())
        try:
            await asyncio.sleep(1.5)
            expect(ws.state is websockets.State.OPEN, f"connection {ws.state.name} after idle pings")
            await echo(ws, "still here")
        finally:
            await ws.close()
        return "websockets keepalive pings every 0.1 s, idle 1.5 s, still open"

    async def burst():
        ws = await r.data_ws()
        msgs = []
        for i in range(200):
            n = (i * 7919) % 70000 if i % 50 else (1 << 20)
            msgs.append(pattern_text(n) if i % 2 else pattern_bytes(n))

        async def sender():
            for m in msgs:
                await ws.send(m)

        task = asyncio.create_task(sender())
        for i, m in enumerate(msgs):
            got = await ws.recv()
            expect(got == m, f"burst message {i}: sent {describe(m)}, got {describe(got)}")
        await task
        return f"{len(msgs)} pipelined messages"

    async def subprotocol_chat():
        for offer in (["chat"], ["v2.other", "chat"]):
            async with await open_ws(url, offer) as ws:
                expect(ws.subprotocol == "chat", f"offered {offer}, selected {ws.subprotocol!r}")
                await echo(ws, "chat")
        return "['chat'] and ['v2.other', 'chat'] -> 'chat'"

    async def subprotocol_none():
        for offer in (None, ["other"]):
            async with await open_ws(url, offer) as ws:
                expect(ws.subprotocol is None, f"offered {offer}, selected {ws.subprotocol!r}")
                await echo(ws, "none")
        return "nothing / ['other'] offered -> none"

    async def close_4000():
        ws = await open_ws(url)
        await echo(ws, "before close")
        await ws.close(4000, "client bye")
        await asyncio.wait_for(ws.wait_closed(), 10)
        p = ws.protocol
        expect(p.close_rcvd is not None, "no close frame from the server")
        expect(p.close_rcvd.code == 4000, f"server answered code {p.close_rcvd.code}")
        expect(p.close_rcvd_then_sent is False, "server sent its close before ours")
        return f"server echoed {p.close_rcvd.code} {p.close_rcvd.reason!r}"

    async def close_nocode():
        ws = await open_ws(url)
        await echo(ws, "before close")
        await ws.close(None)  # a close frame without a status code
        await asyncio.wait_for(ws.wait_closed(), 10)
        p = ws.protocol
        expect(p.close_rcvd is not None, "no close frame from the server")
        expect(p.close_rcvd.code == 1005, f"server answered code {p.close_rcvd.code}")
        return "server answered without a code (1005)"

    async def close_busy():
        # close right after a 16 MiB message, while the server is still busy
        # echoing it
        ws = await open_ws(url)
        await ws.send(pattern_bytes(16 << 20))
        await ws.close(4000, "busy bye")
        await asyncio.wait_for(ws.wait_closed(), 20)
        p = ws.protocol
        expect(p.close_rcvd is not None, "no close frame from the server")
        expect(p.close_rcvd.code == 4000, f"server answered code {p.close_rcvd.code}")
        return "16 MiB in flight, then close 4000 -> 4000"

    async def concurrent():
        async def one(k):
            async with await open_ws(url) as ws:
                for i in range(20):
                    n = (k * 131 + i * 977) % 65536
                    await echo(ws, pattern_bytes(n) if i % 2 else (TEXT_EMOJI * (n // 40 + 1)))

        await asyncio.gather(*(one(k) for k in range(20)))
        return "20 connections x 20 echoes at once"

    async def close_me():
        ws = await open_ws(url)
        await ws.send("close-me")
        try:
            got = await ws.recv()
            raise Fail(f"expected a close, got message {describe(got)}")
        except ConnectionClosed as e:
            expect(isinstance(e, ConnectionClosedOK), f"not a clean close: {e!r}")
            expect(e.rcvd is not None, "no close frame received")
            expect(e.rcvd.code == 1000, f"close code {e.rcvd.code}")
            expect(e.rcvd.reason == "server closing", f"close reason {e.rcvd.reason!r}")
            expect(e.rcvd_then_sent is True, "close not initiated by the server")
        await asyncio.wait_for(ws.wait_closed(), 10)
        return "1000 'server closing'"

    if MODE == "off":
        await r.run("no-deflate", no_deflate)
        print("RESULT deflate N/A INTEROP_DEFLATE=off: websockets offers no permessage-deflate", flush=True)
    else:
        print(f"RESULT no-deflate N/A INTEROP_DEFLATE={MODE}: websockets offers permessage-deflate (see deflate)", flush=True)
        await r.run("deflate", deflate)
    if MODE == "on" and WSPROTO:
        await r.run("deflate-window-8", deflate_window_8)
    elif not WSPROTO:
        print("RESULT deflate-window-8 N/A checks wsproto's server", flush=True)
    else:
        print(f"RESULT deflate-window-8 N/A INTEROP_DEFLATE={MODE}: checked in the INTEROP_DEFLATE=on run", flush=True)
    await r.run("text-ascii", lambda: text(TEXT_ASCII))
    await r.run("text-multibyte", lambda: text(TEXT_MULTIBYTE))
    await r.run("text-emoji", lambda: text(TEXT_EMOJI))
    await r.run("binary-256", binary_256)
    for n in SIZES:
        await r.run(f"size-{SIZE_NAMES.get(n, n)}", size_check(n))
    await r.run("text-multibyte-1MiB", text_multibyte_large)
    await r.run("fragmented", fragmented)
    await r.run("ping-pong", ping_pong)
    await r.run("keepalive", keepalive)
    await r.run("burst", burst)
    if r.ws is not None:
        await r.ws.close()
    await r.run("subprotocol-chat", subprotocol_chat)
    await r.run("subprotocol-none", subprotocol_none)
    await r.run("close-4000", close_4000)
    await r.run("close-nocode", close_nocode)
    await r.run("close-busy", close_busy)
    await r.run("close-me", close_me)
    await r.run("concurrent", concurrent)
    return 1 if r.failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: client.py ws://HOST:PORT")
    sys.exit(asyncio.run(main(sys.argv[1])))
