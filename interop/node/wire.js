'use strict';
// A passive WebSocket frame parser for the interop checks: it watches the
// bytes one direction of a connection carries and records every frame's
// header (opcode, FIN, RSV1, payload length), so a check can see on the wire
// whether a message went out compressed (RFC 7692: RSV1 on its first frame)
// instead of trusting either endpoint's own account.
//
//   const tap = new FrameTap();
//   socket.on('data', (b) => tap.push(b));     // or wrap socket.write
//   tap.dataFrames()  // [{ op, fin, rsv1, len }] for text/binary/continuation
//
// `skipHttpHead` makes it ignore bytes up to the end of an HTTP head first
// (for a proxy that sees the handshake too).

const OPCODES = { 0: 'cont', 1: 'text', 2: 'binary', 8: 'close', 9: 'ping', 10: 'pong' };

class FrameTap {
  constructor({ skipHttpHead = false, keep = 4096 } = {}) {
    this.buf = Buffer.alloc(0);
    this.inHead = skipHttpHead;
    this.head = '';
    this.frames = [];
    this.keep = keep;
    this.skip = 0; // payload bytes of the current frame still to skip
    this.bytes = 0;
  }

  push(chunk) {
    if (typeof chunk === 'string') chunk = Buffer.from(chunk);
    else if (!Buffer.isBuffer(chunk)) chunk = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    this.bytes += chunk.length;
    if (this.inHead) {
      this.head += chunk.toString('latin1');
      const end = this.head.indexOf('\r\n\r\n');
      if (end < 0) return;
      chunk = Buffer.from(this.head.slice(end + 4), 'latin1');
      this.head = this.head.slice(0, end);
      this.inHead = false;
    }
    if (this.skip > 0) {
      const n = Math.min(this.skip, chunk.length);
      this.skip -= n;
      chunk = chunk.subarray(n);
    }
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const b = this.buf;
      if (b.length < 2) return;
      let len = b[1] & 0x7f;
      let off = 2;
      if (len === 126) {
        if (b.length < 4) return;
        len = b.readUInt16BE(2);
        off = 4;
      } else if (len === 127) {
        if (b.length < 10) return;
        len = Number(b.readBigUInt64BE(2));
        off = 10;
      }
      if (b[1] & 0x80) off += 4; // masking key
      if (b.length < off) return;
      const op = b[0] & 0x0f;
      this.frames.push({ op: OPCODES[op] || String(op), fin: !!(b[0] & 0x80), rsv1: !!(b[0] & 0x40), len });
      if (this.frames.length > this.keep) this.frames.splice(0, this.frames.length - this.keep);
      const avail = b.length - off;
      if (avail >= len) {
        this.buf = b.subarray(off + len);
      } else {
        this.skip = len - avail;
        this.buf = Buffer.alloc(0);
        return;
      }
    }
  }

  /** Data frames (text, binary, continuation) seen so far. */
  dataFrames() {
    return this.frames.filter((f) => f.op === 'text' || f.op === 'binary' || f.op === 'cont');
  }

  /** The first frame of each data message: [{ op, rsv1, len }]. */
  messages() {
    const out = [];
    let cur = null;
    for (const f of this.dataFrames()) {
      if (f.op !== 'cont') cur = { op: f.op, rsv1: f.rsv1, len: 0, frames: 0, contRsv1: false };
      if (!cur) continue;
      cur.len += f.len;
      cur.frames += 1;
      if (f.op === 'cont' && f.rsv1) cur.contRsv1 = true;
      if (f.fin) {
        out.push(cur);
        cur = null;
      }
    }
    return out;
  }
}

/** Tap what `socket.write` sends (wraps the method on this instance). */
function tapWrites(socket, tap) {
  const write = socket.write;
  socket.write = function (chunk, ...rest) {
    if (chunk && typeof chunk !== 'function') tap.push(typeof chunk === 'string' ? Buffer.from(chunk, rest[0] === 'latin1' ? 'latin1' : 'utf8') : chunk);
    return write.call(this, chunk, ...rest);
  };
}

/** A header value from an HTTP head (case-insensitive), or ''. */
function headerOf(head, name) {
  for (const line of head.split('\r\n')) {
    const i = line.indexOf(':');
    if (i > 0 && line.slice(0, i).trim().toLowerCase() === name.toLowerCase()) return line.slice(i + 1).trim();
  }
  return '';
}

module.exports = { FrameTap, tapWrites, headerOf };
