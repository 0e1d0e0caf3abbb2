//! The outbound queue: frames encoded at command time, handed out as chunks
//! in wire order.
//!
//! Two ways out: `poll_transmit` hands a chunk over for good (the driver
//! keeps what it could not write), while `peek`/`fill_slices` + `advance`
//! leave bytes here until they are written, so "everything is flushed"
//! (`should_close_transport`) and the `max_outbound` limit count exactly
//! what has not reached the transport.

use alloc::boxed::Box;
use alloc::collections::VecDeque;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use crate::frame::{CloseFrame, FrameHeader, OpCode};
use crate::mask::{apply_mask, extend_masked, MaskSource};
use crate::Role;

/// Payloads up to this size are copied next to their header so a small frame
/// is one chunk (one write); larger server payloads stay zero-copy.
const COALESCE_MAX: usize = 256;
/// Size of the arena small headers and frames are carved from.
const SCRATCH_BLOCK: usize = 2048;
/// A client copies a shared payload to mask it, and either side copies a
/// borrowed one (`send_ref`); frames up to this size (a 64 KiB payload and
/// its header) are built in one buffer the connection keeps and takes back
/// once the caller has dropped the chunk, so a steady stream of them costs
/// no allocation. Larger frames get a buffer of their own, freed with the
/// chunk: an idle connection keeps at most this much (about the input
/// buffer's bound).
const REUSE_MAX: usize = 64 * 1024 + FrameHeader::MAX_LEN;
/// Pongs waiting to go out. Beyond this the oldest is dropped: RFC 6455
/// §5.5.3 lets an endpoint answer only the latest ping, so a ping flood from
/// a peer that does not read costs at most this many small frames, while a
/// burst of pings (Autobahn 2.10) still gets one pong each.
const MAX_PENDING_PONGS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Data,
    Close,
    Pong,
    KeepalivePing,
}

/// An encoded frame header.
struct Head {
    bytes: [u8; FrameHeader::MAX_LEN],
    len: usize,
}

impl Head {
    fn as_slice(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

#[derive(Debug)]
struct Chunk {
    data: Bytes,
    /// Last chunk of a frame.
    frame_end: bool,
    kind: Kind,
}

#[derive(Debug)]
pub(crate) struct Outbound {
    role: Role,
    chunks: VecDeque<Chunk>,
    /// Bytes in `chunks`.
    queued: usize,
    scratch: BytesMut,
    /// Where frames are built from copied payloads (`framed_copy`).
    frames: BytesMut,
    /// A frame has started going out and is not finished: nothing may be
    /// inserted before its end.
    mid_frame: bool,
    /// Pongs not yet in the queue; they jump it at the next frame boundary.
    pongs: VecDeque<Bytes>,
    /// A keepalive ping not yet in the queue; it jumps it too, so its answer
    /// is not delayed by our own backlog.
    pending_ping: Option<Bytes>,
    /// The keepalive ping went out since the last check.
    ping_went_out: bool,
    close_transmitted: bool,
}

impl Outbound {
    pub(crate) fn new(role: Role) -> Self {
        Outbound {
            role,
            chunks: VecDeque::new(),
            queued: 0,
            scratch: BytesMut::new(),
            frames: BytesMut::new(),
            mid_frame: false,
            pongs: VecDeque::new(),
            pending_ping: None,
            ping_went_out: false,
            close_transmitted: false,
        }
    }

    /// Bytes not yet written.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.queued
            + self.pongs.iter().map(Bytes::len).sum::<usize>()
            + self.pending_ping.as_ref().map_or(0, Bytes::len)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.pongs.is_empty() && self.pending_ping.is_none()
    }

    /// Wire size of a frame with this payload length.
    pub(crate) fn frame_len(&self, payload_len: usize) -> usize {
        let mut h = FrameHeader::new(OpCode::Binary, payload_len as u64);
        if self.role.masks_outgoing() {
            h.mask = Some([0; 4]);
        }
        h.encoded_len() + payload_len
    }

    fn carve(&mut self, len: usize) -> &mut BytesMut {
        // once every chunk carved from the arena is dropped, it is reused
        if !self.scratch.try_reclaim(len) {
            self.scratch = BytesMut::with_capacity(SCRATCH_BLOCK.max(len));
        }
        &mut self.scratch
    }

    /// A small frame, carved from the scratch arena: `head` and then
    /// `payload` (masked with `key`, if given).
    fn coalesced(&mut self, head: &[u8], payload: &[u8], key: Option<[u8; 4]>) -> Bytes {
        let buf = self.carve(head.len() + payload.len());
        buf.put_slice(head);
        let start = buf.len();
        buf.put_slice(payload);
        if let Some(key) = key {
            apply_mask(&mut buf[start..], key, 0);
        }
        buf.split().freeze()
    }

    /// `head` and then `payload` (masked with `key`, if given), as one chunk.
    fn framed_copy(&mut self, head: &[u8], payload: &[u8], key: Option<[u8; 4]>) -> Bytes {
        let total = head.len() + payload.len();
        let mut own = BytesMut::new();
        let buf = if total > REUSE_MAX {
            // freed with the chunk: nothing here keeps a share of it
            own.reserve(total);
            &mut own
        } else {
            // taken back only once the caller has dropped the last frame
            if !self.frames.try_reclaim(total) {
                self.frames = BytesMut::with_capacity(total);
            }
            &mut self.frames
        };
        buf.put_slice(head);
        match key {
            Some(key) => extend_masked(buf, payload, key, 0),
            None => buf.put_slice(payload),
        }
        buf.split().freeze()
    }

    /// The header of a frame of `len` payload bytes, and its masking key
    /// when this side masks (§5.3: a fresh, unpredictable key for every
    /// frame).
    fn header(
        &self,
        opcode: OpCode,
        fin: bool,
        rsv1: bool,
        len: usize,
        masks: Option<&mut Box<dyn MaskSource>>,
    ) -> (Head, Option<[u8; 4]>) {
        let mut h = FrameHeader::new(opcode, len as u64);
        h.fin = fin;
        h.rsv1 = rsv1;
        h.mask = self.role.masks_outgoing().then(|| {
            masks
                .expect("client connections always have a mask source")
                .next_mask()
        });
        let mut head = Head {
            bytes: [0; FrameHeader::MAX_LEN],
            len: 0,
        };
        head.len = h.encode(&mut head.bytes);
        (head, h.mask)
    }

    /// Queue a frame of a borrowed payload behind everything already
    /// queued: the frame is built in one buffer, as for a shared payload a
    /// client must copy to mask (and the same for a server's, which must
    /// copy it to keep it), so the caller's payload takes no reference
    /// count and no allocation of its own.
    pub(crate) fn push_frame_slice(
        &mut self,
        opcode: OpCode,
        payload: &[u8],
        masks: Option<&mut Box<dyn MaskSource>>,
    ) {
        let (head, key) = self.header(opcode, true, false, payload.len(), masks);
        let head = head.as_slice();
        let data = if head.len() + payload.len() <= COALESCE_MAX {
            self.coalesced(head, payload, key)
        } else {
            self.framed_copy(head, payload, key)
        };
        self.enqueue(data, None, Kind::Data);
    }

    /// Encode a frame into one or two standalone buffers.
    fn encode(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: Bytes,
        masks: Option<&mut Box<dyn MaskSource>>,
    ) -> (Bytes, Option<Bytes>) {
        self.encode_rsv(opcode, fin, false, payload, masks)
    }

    fn encode_rsv(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv1: bool,
        payload: Bytes,
        masks: Option<&mut Box<dyn MaskSource>>,
    ) -> (Bytes, Option<Bytes>) {
        let (head, key) = self.header(opcode, fin, rsv1, payload.len(), masks);
        let head = head.as_slice();
        match key {
            Some(key) if head.len() + payload.len() > COALESCE_MAX => {
                // A payload nothing else holds (the `Vec` or `String` the
                // application built and handed over, a compressed message)
                // is masked where it lies: no allocation, one pass, the
                // header a chunk of its own (`encode_client/16KiB`, member
                // `wsproto_owned`).
                match payload.try_into_mut() {
                    Ok(mut owned) => {
                        apply_mask(&mut owned, key, 0);
                        (self.coalesced(head, &[], None), Some(owned.freeze()))
                    }
                    // not in the scratch arena: a large frame would pin it
                    // (or it the frame)
                    Err(shared) => (self.framed_copy(head, &shared, Some(key)), None),
                }
            }
            Some(key) => (self.coalesced(head, &payload, Some(key)), None),
            None if payload.len() <= COALESCE_MAX => (self.coalesced(head, &payload, None), None),
            // a server's larger payload goes out as it is, zero-copy
            None => (self.coalesced(head, &[], None), Some(payload)),
        }
    }

    /// Queue a frame behind everything already queued.
    pub(crate) fn push_frame(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: Bytes,
        masks: Option<&mut Box<dyn MaskSource>>,
    ) {
        self.push_frame_rsv(opcode, fin, false, payload, masks)
    }

    /// Queue a frame with RSV1 as given (a compressed message's first frame,
    /// RFC 7692 §6).
    pub(crate) fn push_frame_rsv(
        &mut self,
        opcode: OpCode,
        fin: bool,
        rsv1: bool,
        payload: Bytes,
        masks: Option<&mut Box<dyn MaskSource>>,
    ) {
        let kind = match opcode {
            OpCode::Close => Kind::Close,
            _ => Kind::Data,
        };
        let (a, b) = self.encode_rsv(opcode, fin, rsv1, payload, masks);
        self.enqueue(a, b, kind);
    }

    /// Put a frame's one or two chunks behind everything already queued.
    fn enqueue(&mut self, a: Bytes, b: Option<Bytes>, kind: Kind) {
        debug_assert!(
            !self.close_transmitted,
            "nothing is queued after a close frame"
        );
        self.queued += a.len() + b.as_ref().map_or(0, Bytes::len);
        self.chunks.push_back(Chunk {
            data: a,
            frame_end: b.is_none(),
            kind,
        });
        if let Some(b) = b {
            self.chunks.push_back(Chunk {
                data: b,
                frame_end: true,
                kind,
            });
        }
    }

    /// Queue a close frame behind everything already queued.
    pub(crate) fn push_close(
        &mut self,
        frame: Option<&CloseFrame>,
        masks: Option<&mut Box<dyn MaskSource>>,
    ) {
        let payload = match frame {
            None => Bytes::new(),
            Some(f) => {
                let mut b = BytesMut::with_capacity(f.encoded_len());
                f.encode(&mut b);
                b.freeze()
            }
        };
        self.push_frame(OpCode::Close, true, payload, masks);
    }

    /// Queue a pong to jump the queue at the next frame boundary.
    pub(crate) fn push_pong(&mut self, payload: Bytes, masks: Option<&mut Box<dyn MaskSource>>) {
        let (a, b) = self.encode(OpCode::Pong, true, payload, masks);
        debug_assert!(b.is_none(), "control payloads are always coalesced");
        if self.pongs.len() == MAX_PENDING_PONGS {
            self.pongs.pop_front();
        }
        self.pongs.push_back(a);
    }

    /// Queue a keepalive ping to jump the queue.
    pub(crate) fn set_keepalive_ping(
        &mut self,
        payload: Bytes,
        masks: Option<&mut Box<dyn MaskSource>>,
    ) {
        let (a, b) = self.encode(OpCode::Ping, true, payload, masks);
        debug_assert!(b.is_none(), "control payloads are always coalesced");
        self.pending_ping = Some(a);
    }

    /// Whether the keepalive ping went out since the last call.
    pub(crate) fn take_ping_went_out(&mut self) -> bool {
        core::mem::take(&mut self.ping_went_out)
    }

    /// The connection failed: a keepalive ping is moot. Frames already queued
    /// (echoes of messages received before the error, say) still go out
    /// ahead of the close frame.
    pub(crate) fn drop_keepalive(&mut self) {
        self.pending_ping = None;
    }

    /// At a frame boundary, move the oldest pong (or else the keepalive
    /// ping) to the front of the queue: control frames may go between any
    /// two frames (§5.4). One at a time: what is in `chunks` is committed
    /// (a driver may be writing it), so promoting everything would let a
    /// flood of pings grow the queue while our writes are blocked.
    fn promote(&mut self) {
        // the usual case, first: nothing waits
        if self.pongs.is_empty() && self.pending_ping.is_none() {
            return;
        }
        if self.mid_frame
            || matches!(self.chunks.front(), Some(c) if matches!(c.kind, Kind::Pong | Kind::KeepalivePing))
        {
            return;
        }
        let (data, kind) = if let Some(pong) = self.pongs.pop_front() {
            (pong, Kind::Pong)
        } else {
            match self.pending_ping.take() {
                // §5.5.1: nothing but a pong after our close frame
                Some(ping) if !self.close_transmitted => (ping, Kind::KeepalivePing),
                _ => return,
            }
        };
        self.queued += data.len();
        self.chunks.push_front(Chunk {
            data,
            frame_end: true,
            kind,
        });
    }

    /// Bookkeeping when a chunk has been written completely.
    fn finished(&mut self, c: &Chunk) {
        self.queued -= c.data.len();
        self.mid_frame = !c.frame_end;
        if c.frame_end {
            match c.kind {
                Kind::Close => {
                    self.close_transmitted = true;
                    self.pending_ping = None;
                }
                Kind::KeepalivePing => self.ping_went_out = true,
                Kind::Data | Kind::Pong => {}
            }
        }
    }

    /// Next chunk to write, in wire order, handed over for good.
    pub(crate) fn poll_transmit(&mut self) -> Option<Bytes> {
        self.promote();
        let c = self.chunks.pop_front()?;
        self.finished(&c);
        Some(c.data)
    }

    /// The next bytes to write, left in place until `advance`.
    pub(crate) fn peek(&mut self) -> Option<&[u8]> {
        self.promote();
        self.chunks.front().map(|c| &c.data[..])
    }

    /// The next chunks to write, as many as fit `dst`.
    #[cfg(feature = "std")]
    pub(crate) fn fill_slices<'a>(&'a mut self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
        self.promote();
        // Control frames waiting to jump the queue go at the next frame
        // boundary: stop there, the next call promotes them.
        let control_waiting =
            !self.pongs.is_empty() || (self.pending_ping.is_some() && !self.close_transmitted);
        let mut n = 0;
        for (slot, c) in dst.iter_mut().zip(self.chunks.iter()) {
            *slot = std::io::IoSlice::new(&c.data);
            n += 1;
            if c.frame_end && control_waiting {
                break;
            }
        }
        n
    }

    /// `n` bytes from the front were written.
    ///
    /// # Panics
    /// If more bytes are advanced than are queued.
    pub(crate) fn advance(&mut self, mut n: usize) {
        while n > 0 {
            let front = self
                .chunks
                .front_mut()
                .expect("advanced past the queued bytes");
            if n < front.data.len() {
                front.data.advance(n);
                self.queued -= n;
                self.mid_frame = true;
                return;
            }
            n -= front.data.len();
            let c = self.chunks.pop_front().expect("checked above");
            self.finished(&c);
        }
    }
}
