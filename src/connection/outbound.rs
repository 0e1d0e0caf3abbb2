//! The outbound queue: frames encoded at command time, handed out as chunks
//! in wire order.

use alloc::collections::VecDeque;

use alloc::boxed::Box;

use bytes::{BufMut, Bytes, BytesMut};

use crate::frame::{CloseFrame, FrameHeader, OpCode};
use crate::mask::{apply_mask, MaskSource};
use crate::Role;

/// Payloads up to this size are copied next to their header so a small frame
/// is one chunk (one write); larger server payloads stay zero-copy.
const COALESCE_MAX: usize = 256;
/// Size of the arena small headers and frames are carved from.
const SCRATCH_BLOCK: usize = 2048;

#[derive(Debug)]
struct Chunk {
    data: Bytes,
    /// Last chunk of a frame.
    frame_end: bool,
    /// Part of a close frame.
    close: bool,
}

#[derive(Debug)]
pub(crate) struct Outbound {
    role: Role,
    chunks: VecDeque<Chunk>,
    queued: usize,
    scratch: BytesMut,
    /// The last chunk handed out did not end its frame: nothing may be
    /// inserted until the frame is finished.
    mid_frame: bool,
    /// A pong waiting to be sent, fully encoded; a newer one replaces it
    /// (RFC 6455 §5.5.3 lets an endpoint answer only the latest ping).
    pending_pong: Option<Bytes>,
    /// A keepalive ping waiting to be sent; like the pong it jumps the queue,
    /// so its answer is not delayed by our own backlog.
    pending_ping: Option<Bytes>,
    /// The keepalive ping was handed out since the last check.
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
            mid_frame: false,
            pending_pong: None,
            pending_ping: None,
            ping_went_out: false,
            close_transmitted: false,
        }
    }

    /// Bytes waiting to be handed out.
    pub(crate) fn pending_bytes(&self) -> usize {
        self.queued
            + self.pending_pong.as_ref().map_or(0, Bytes::len)
            + self.pending_ping.as_ref().map_or(0, Bytes::len)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.chunks.is_empty() && self.pending_pong.is_none() && self.pending_ping.is_none()
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
        if self.scratch.capacity() - self.scratch.len() < len {
            self.scratch = BytesMut::with_capacity(SCRATCH_BLOCK.max(len));
        }
        &mut self.scratch
    }

    /// Encode a frame into one or two standalone buffers.
    fn encode(
        &mut self,
        opcode: OpCode,
        fin: bool,
        payload: Bytes,
        masks: Option<&mut Box<dyn MaskSource>>,
    ) -> (Bytes, Option<Bytes>) {
        let mut h = FrameHeader::new(opcode, payload.len() as u64);
        h.fin = fin;
        let mut head = [0u8; FrameHeader::MAX_LEN];
        if self.role.masks_outgoing() {
            // §5.3: a fresh, unpredictable key for every frame.
            let key = masks
                .expect("client connections always have a mask source")
                .next_mask();
            h.mask = Some(key);
            let n = h.encode(&mut head);
            let total = n + payload.len();
            if total > COALESCE_MAX {
                // a buffer of its own, so a large frame never pins the
                // scratch arena (nor the arena it)
                let mut buf = BytesMut::with_capacity(total);
                buf.put_slice(&head[..n]);
                buf.put_slice(&payload);
                apply_mask(&mut buf[n..], key, 0);
                return (buf.freeze(), None);
            }
            let buf = self.carve(total);
            buf.put_slice(&head[..n]);
            let start = buf.len();
            buf.put_slice(&payload);
            apply_mask(&mut buf[start..], key, 0);
            (buf.split().freeze(), None)
        } else {
            let n = h.encode(&mut head);
            if payload.len() <= COALESCE_MAX {
                let buf = self.carve(n + payload.len());
                buf.put_slice(&head[..n]);
                buf.put_slice(&payload);
                (buf.split().freeze(), None)
            } else {
                let buf = self.carve(n);
                buf.put_slice(&head[..n]);
                (buf.split().freeze(), Some(payload))
            }
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
        let close = opcode == OpCode::Close;
        let (a, b) = self.encode(opcode, fin, payload, masks);
        self.queued += a.len() + b.as_ref().map_or(0, Bytes::len);
        self.chunks.push_back(Chunk {
            data: a,
            frame_end: b.is_none(),
            close,
        });
        if let Some(b) = b {
            self.chunks.push_back(Chunk {
                data: b,
                frame_end: true,
                close,
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

    /// Replace any pending pong with one carrying `payload`.
    pub(crate) fn set_pong(&mut self, payload: Bytes, masks: Option<&mut Box<dyn MaskSource>>) {
        let (a, b) = self.encode(OpCode::Pong, true, payload, masks);
        debug_assert!(b.is_none(), "control payloads are always coalesced");
        self.pending_pong = Some(a);
    }

    /// Queue a keepalive ping ahead of the data queue.
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

    /// Drop every queued frame that has not started going out (the
    /// connection failed: only the close frame matters now). A frame already
    /// partly handed out is completed so the stream stays well-formed.
    pub(crate) fn drop_unsent(&mut self) {
        self.pending_pong = None;
        self.pending_ping = None;
        if self.mid_frame {
            let keep = self
                .chunks
                .iter()
                .position(|c| c.frame_end)
                .map_or(self.chunks.len(), |i| i + 1);
            self.chunks.truncate(keep);
        } else {
            self.chunks.clear();
        }
        self.queued = self.chunks.iter().map(|c| c.data.len()).sum();
    }

    /// Next chunk to write, in wire order.
    pub(crate) fn poll_transmit(&mut self) -> Option<Bytes> {
        // Control frames may be injected between any two frames (§5.4), and a
        // pong jumps the queue so latency probes stay accurate under load.
        if !self.mid_frame {
            // a pong may follow our close frame (§5.5.2: ping answered until
            // the peer's close arrives); nothing else may
            if let Some(p) = self.pending_pong.take() {
                return Some(p);
            }
        }
        if !self.mid_frame && !self.close_transmitted {
            if let Some(p) = self.pending_ping.take() {
                self.ping_went_out = true;
                return Some(p);
            }
        }
        let c = self.chunks.pop_front()?;
        self.queued -= c.data.len();
        self.mid_frame = !c.frame_end;
        if c.close && c.frame_end {
            // §5.5.1: nothing may follow a close frame.
            self.close_transmitted = true;
            self.pending_ping = None;
            self.chunks.clear();
            self.queued = 0;
        }
        Some(c.data)
    }
}
