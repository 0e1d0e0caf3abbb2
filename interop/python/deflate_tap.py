"""A frame tap for the interop checks: records, per connection, the frames
websockets' permessage-deflate extension handles, as they are on the wire:
incoming before inflating (`rx`), outgoing after compressing (`tx`), so a
check can see whether a message went out compressed (RFC 7692: RSV1 on its
first frame) instead of trusting either endpoint's account. Without a
negotiated extension there is nothing to tap (and websockets then fails any
frame with RSV1 set by itself).
"""

from websockets.extensions.permessage_deflate import PerMessageDeflate


class Tap:
    """Frames as (opcode, fin, rsv1, payload length), in `rx` and `tx`;
    `ext` is the negotiated PerMessageDeflate (None without one)."""

    def __init__(self, ws):
        self.rx = []
        self.tx = []
        self.ext = None
        for ext in ws.protocol.extensions:
            if isinstance(ext, PerMessageDeflate):
                self.ext = ext
                decode, encode = ext.decode, ext.encode

                def tapped_decode(frame, *, max_size=None, decode=decode):
                    self.rx.append((frame.opcode.name, frame.fin, frame.rsv1, len(frame.data)))
                    return decode(frame, max_size=max_size)

                def tapped_encode(frame, encode=encode):
                    out = encode(frame)
                    self.tx.append((out.opcode.name, out.fin, out.rsv1, len(out.data)))
                    return out

                ext.decode = tapped_decode
                ext.encode = tapped_encode

    @staticmethod
    def messages(frames):
        """One (rsv1 of the first frame, total length, RSV1 on a
        continuation) per data message."""
        out, cur = [], None
        for op, fin, rsv1, n in frames:
            if op in ("TEXT", "BINARY"):
                cur = [rsv1, 0, False]
            elif op != "CONT" or cur is None:
                continue
            elif rsv1:
                cur[2] = True
            cur[1] += n
            if fin:
                out.append(tuple(cur))
                cur = None
        return out

    def stats(self):
        """`rx` and `tx` as lists of {"op", "rsv1", "len"} per message."""

        def conv(frames):
            out, cur = [], None
            for op, fin, rsv1, n in frames:
                if op in ("TEXT", "BINARY"):
                    cur = {"op": op.lower(), "rsv1": rsv1, "len": 0, "frames": 0, "contRsv1": False}
                elif op != "CONT" or cur is None:
                    continue
                elif rsv1:
                    cur["contRsv1"] = True
                cur["len"] += n
                cur["frames"] += 1
                if fin:
                    out.append(cur)
                    cur = None
            return out[-32:]

        return {"rx": conv(self.rx), "tx": conv(self.tx)}
