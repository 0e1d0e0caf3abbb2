//! Incremental frame decoding with role rules and payload limits.

use bytes::{Buf, Bytes, BytesMut};

use super::FrameHeader;
use crate::error::{CapacityError, Error, ProtocolError};
use crate::mask::{apply_mask, extend_masked};
use crate::Role;

/// A complete frame with its payload unmasked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// The header as it was on the wire (including the masking key, if any).
    pub header: FrameHeader,
    /// The unmasked payload.
    pub payload: Bytes,
}

#[derive(Debug, Clone)]
struct InFrame {
    header: FrameHeader,
    /// Payload bytes of this frame not yet taken out of the buffer.
    remaining: u64,
    /// How many bytes at the front of the buffer are already unmasked (all
    /// belong to this frame; at most `remaining`).
    unmasked: usize,
    /// Payload bytes already taken, for the mask offset.
    taken: u64,
    /// Bytes right after the `unmasked` ones that were unmasked while being
    /// copied in ([`FrameDecoder::extend_payload`]) but not yet reported by
    /// `unmask_available` (which must still hand them out as new).
    premasked: usize,
}

/// Decodes frames from a byte buffer for one [`Role`], enforcing the rules
/// that need no message context: masking direction (§5.1), RSV bits (§5.2),
/// control frame rules (§5.5) and the payload limit.
///
/// It never copies a payload on its own: payloads are unmasked in place (or
/// while the caller copies them in, [`extend_payload`](Self::extend_payload))
/// and split off the input buffer. It can also hand out a frame's payload
/// piece by piece as it arrives ([`unmask_available`](Self::unmask_available) /
/// [`take`](Self::take)), which is how the connection validates text
/// fail-fast and streams large messages with bounded memory.
///
/// ```
/// use bytes::BytesMut;
/// use wsproto::{frame::{FrameDecoder, OpCode}, Role};
///
/// // A masked "Hello" from a client (RFC 6455 §5.7), received by a server.
/// let mut buf = BytesMut::from(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58][..]);
/// let mut decoder = FrameDecoder::new(Role::Server, 1 << 20);
/// let frame = decoder.decode(&mut buf).unwrap().unwrap();
/// assert_eq!(frame.header.opcode, OpCode::Text);
/// assert_eq!(&frame.payload[..], b"Hello");
/// assert!(buf.is_empty());
/// ```
#[derive(Debug, Clone)]
pub struct FrameDecoder {
    role: Role,
    max_payload: u64,
    allowed_rsv: u8,
    current: Option<InFrame>,
}

impl FrameDecoder {
    /// A decoder for an endpoint playing `role` (so a `Server` expects masked
    /// frames), accepting payloads up to `max_payload` bytes.
    pub fn new(role: Role, max_payload: usize) -> Self {
        FrameDecoder {
            role,
            max_payload: max_payload as u64,
            allowed_rsv: 0,
            current: None,
        }
    }

    /// Allow the RSV bits in `bits` (RSV1 = 0b100), as claimed by a negotiated
    /// extension. By default none are allowed.
    pub fn set_allowed_rsv(&mut self, bits: u8) {
        self.allowed_rsv = bits & 0b111;
    }

    /// Change the payload limit; applies from the next header.
    pub fn set_max_payload(&mut self, max_payload: usize) {
        self.max_payload = max_payload as u64;
    }

    /// The header of the frame whose payload is being read, if any.
    pub fn current(&self) -> Option<&FrameHeader> {
        self.current.as_ref().map(|f| &f.header)
    }

    /// Payload bytes of the current frame not yet taken.
    pub fn remaining(&self) -> u64 {
        self.current.as_ref().map_or(0, |f| f.remaining)
    }

    /// Bytes at the front of the buffer already unmasked and ready to
    /// [`take`](Self::take).
    pub fn unmasked_len(&self) -> usize {
        self.current.as_ref().map_or(0, |f| f.unmasked)
    }

    /// Whether the whole remaining payload of the current frame is unmasked
    /// and in the buffer (true for an empty payload).
    pub fn frame_complete(&self) -> bool {
        self.current
            .as_ref()
            .is_some_and(|f| f.unmasked as u64 == f.remaining)
    }

    /// If no frame is in progress, parse the next header from `buf`, check it
    /// and consume it. Returns `Ok(None)` when a frame is already in progress
    /// or `buf` holds only part of a header.
    pub fn read_header(&mut self, buf: &mut BytesMut) -> Result<Option<FrameHeader>, Error> {
        if self.current.is_some() {
            return Ok(None);
        }
        let Some((header, len)) = FrameHeader::parse(buf)? else {
            return Ok(None);
        };
        self.check(&header)?;
        buf.advance(len);
        self.begin(header);
        Ok(Some(header))
    }

    /// Start reading the payload of a frame whose header the caller parsed,
    /// [`check`](Self::check)ed and removed from the buffer itself (the
    /// connection does, to parse each header once).
    pub(crate) fn begin(&mut self, header: FrameHeader) {
        debug_assert!(self.current.is_none(), "a frame is in progress");
        self.current = Some(InFrame {
            header,
            remaining: header.payload_len,
            unmasked: 0,
            taken: 0,
            premasked: 0,
        });
    }

    pub(crate) fn check(&self, h: &FrameHeader) -> Result<(), Error> {
        // §5.2: "MUST be 0 unless an extension is negotiated that defines
        // meanings for non-zero values".
        if h.rsv_bits() & !self.allowed_rsv != 0 {
            return Err(ProtocolError::ReservedBits.into());
        }
        // §5.1: a server MUST close on an unmasked frame; a client MUST close
        // on a masked one.
        match (self.role, h.mask.is_some()) {
            (Role::Server, false) => return Err(ProtocolError::UnmaskedFrame.into()),
            (Role::Client, true) => return Err(ProtocolError::MaskedFrame.into()),
            _ => {}
        }
        if h.opcode.is_control() {
            // §5.5: "All control frames MUST have a payload length of 125
            // bytes or less and MUST NOT be fragmented."
            if h.payload_len > 125 {
                return Err(ProtocolError::ControlFrameTooLong.into());
            }
            if !h.fin {
                return Err(ProtocolError::FragmentedControlFrame.into());
            }
            // §5.2: RSV bits on control frames are never claimed by
            // permessage-deflate (RFC 7692 §6.1).
            if h.rsv_bits() != 0 {
                return Err(ProtocolError::ReservedBits.into());
            }
        }
        if h.payload_len > self.max_payload {
            return Err(CapacityError::FrameTooLarge {
                size: h.payload_len,
                limit: self.max_payload as usize,
            }
            .into());
        }
        Ok(())
    }

    /// Unmask whatever payload of the current frame has arrived since the last
    /// call and return the range of `buf` that was newly unmasked (empty when
    /// nothing new arrived or no frame is in progress).
    pub fn unmask_available(&mut self, buf: &mut BytesMut) -> core::ops::Range<usize> {
        let Some(f) = self.current.as_mut() else {
            return 0..0;
        };
        let avail = (buf.len() as u64).min(f.remaining) as usize;
        let start = f.unmasked;
        if avail > start {
            // bytes appended by `extend_payload` are unmasked already
            let raw = start + f.premasked;
            if let (Some(key), true) = (f.header.mask, avail > raw) {
                // the mask offset is the payload position of buf[raw]
                let offset = (f.taken as usize).wrapping_add(raw);
                apply_mask(&mut buf[raw..avail], key, offset);
            }
            f.unmasked = avail;
            f.premasked = 0;
        }
        start..avail.max(start)
    }

    /// Append to `buf` the part of `data` that continues the payload of the
    /// frame in progress, unmasking it while it is copied (one pass over
    /// the bytes instead of a copy and then an unmask), and return how many
    /// bytes of `data` that was. Appends nothing (returns 0) when no frame
    /// is in progress, its payload is all in `buf` already, or `buf` holds
    /// bytes not yet unmasked; the caller appends the rest of `data` itself.
    ///
    /// The bytes appended count as new for the next
    /// [`unmask_available`](Self::unmask_available), exactly as if they had
    /// been appended raw.
    pub fn extend_payload(&mut self, buf: &mut BytesMut, data: &[u8]) -> usize {
        let Some(f) = self.current.as_mut() else {
            return 0;
        };
        let processed = f.unmasked + f.premasked;
        if buf.len() != processed {
            return 0;
        }
        let wanted = f.remaining - processed as u64;
        let n = wanted.min(data.len() as u64) as usize;
        if n == 0 {
            return 0;
        }
        match f.header.mask {
            Some(key) => {
                let offset = (f.taken as usize).wrapping_add(processed);
                extend_masked(buf, &data[..n], key, offset);
            }
            None => buf.extend_from_slice(&data[..n]),
        }
        f.premasked += n;
        n
    }

    /// Split `n` unmasked payload bytes off the front of `buf`. When the
    /// current frame's payload is exhausted the frame ends and the next call
    /// to [`read_header`](Self::read_header) reads a new header.
    ///
    /// # Panics
    /// If `n` is more than [`unmasked_len`](Self::unmasked_len).
    pub fn take(&mut self, buf: &mut BytesMut, n: usize) -> Bytes {
        self.consume(n);
        buf.split_to(n).freeze()
    }

    /// Discard `n` unmasked payload bytes from the front of `buf` (the caller
    /// copied them); like [`take`](Self::take) without the split.
    ///
    /// # Panics
    /// If `n` is more than [`unmasked_len`](Self::unmasked_len).
    pub fn advance(&mut self, buf: &mut BytesMut, n: usize) {
        self.consume(n);
        buf.advance(n);
    }

    /// The bookkeeping of `take` and `advance`: `n` unmasked payload bytes
    /// left the front of the buffer (the caller moved them).
    pub(crate) fn consume(&mut self, n: usize) {
        let f = self.current.as_mut().expect("no frame in progress");
        assert!(n <= f.unmasked, "taking bytes that are not unmasked yet");
        f.unmasked -= n;
        f.remaining -= n as u64;
        f.taken += n as u64;
        if f.remaining == 0 {
            self.current = None;
        }
    }

    /// Decode one whole frame, waiting until its full payload is in `buf`.
    /// Returns `Ok(None)` when more bytes are needed; nothing is lost between
    /// calls. Message-level rules (continuation order, UTF-8) are the
    /// connection's job, not the decoder's.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Error> {
        self.read_header(buf)?;
        let Some(f) = self.current.as_ref() else {
            return Ok(None);
        };
        let header = f.header;
        self.unmask_available(buf);
        if !self.frame_complete() {
            return Ok(None);
        }
        let n = self.unmasked_len();
        // `take` ends the frame, also for an empty payload
        let payload = self.take(buf, n);
        Ok(Some(Frame { header, payload }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::encoder::encode_frame;
    use crate::frame::OpCode;
    use alloc::vec::Vec;

    fn frame_bytes(opcode: OpCode, fin: bool, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
        let mut h = FrameHeader::new(opcode, payload.len() as u64);
        h.fin = fin;
        h.mask = mask;
        let mut out = BytesMut::new();
        encode_frame(&mut out, &h, payload);
        out.to_vec()
    }

    #[test]
    fn role_masking_rules() {
        let masked = frame_bytes(OpCode::Binary, true, Some([1, 2, 3, 4]), b"abc");
        let unmasked = frame_bytes(OpCode::Binary, true, None, b"abc");
        let mut d = FrameDecoder::new(Role::Client, 100);
        assert_eq!(
            d.decode(&mut BytesMut::from(&masked[..])),
            Err(ProtocolError::MaskedFrame.into())
        );
        let mut d = FrameDecoder::new(Role::Server, 100);
        assert_eq!(
            d.decode(&mut BytesMut::from(&unmasked[..])),
            Err(ProtocolError::UnmaskedFrame.into())
        );
        let f = d.decode(&mut BytesMut::from(&masked[..])).unwrap().unwrap();
        assert_eq!(&f.payload[..], b"abc");
    }

    #[test]
    fn control_frame_rules() {
        let mut d = FrameDecoder::new(Role::Client, 1000);
        let long = frame_bytes(OpCode::Ping, true, None, &[0; 126]);
        assert_eq!(
            d.decode(&mut BytesMut::from(&long[..])),
            Err(ProtocolError::ControlFrameTooLong.into())
        );
        let frag = frame_bytes(OpCode::Pong, false, None, b"x");
        assert_eq!(
            d.decode(&mut BytesMut::from(&frag[..])),
            Err(ProtocolError::FragmentedControlFrame.into())
        );
    }

    #[test]
    fn rsv_bits_need_an_extension() {
        let mut wire = frame_bytes(OpCode::Text, true, None, b"x");
        wire[0] |= 0x40;
        let mut d = FrameDecoder::new(Role::Client, 1000);
        assert_eq!(
            d.decode(&mut BytesMut::from(&wire[..])),
            Err(ProtocolError::ReservedBits.into())
        );
        let mut d = FrameDecoder::new(Role::Client, 1000);
        d.set_allowed_rsv(0b100);
        assert!(d.decode(&mut BytesMut::from(&wire[..])).unwrap().is_some());
    }

    #[test]
    fn huge_declared_length_fails_before_payload() {
        // 2^63 - 1 bytes declared, none sent: fails at once with 1009.
        let wire = [
            0x82, 0xFF, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 1, 2, 3, 4,
        ];
        let mut buf = BytesMut::from(&wire[..]);
        let mut d = FrameDecoder::new(Role::Server, 1 << 20);
        let err = d.decode(&mut buf).unwrap_err();
        assert_eq!(
            err,
            Error::Capacity(CapacityError::FrameTooLarge {
                size: (1 << 63) - 1,
                limit: 1 << 20
            })
        );
        assert_eq!(err.close_code(), Some(crate::CloseCode::TOO_BIG));
        assert!(buf.capacity() < 1024);
    }

    #[test]
    fn byte_at_a_time_yields_the_same_frame() {
        let wire = frame_bytes(
            OpCode::Text,
            true,
            Some([9, 8, 7, 6]),
            b"hello world, in pieces",
        );
        let mut d = FrameDecoder::new(Role::Server, 1000);
        let mut buf = BytesMut::new();
        let mut got = None;
        for (i, b) in wire.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            if let Some(f) = d.decode(&mut buf).unwrap() {
                assert_eq!(i, wire.len() - 1);
                got = Some(f);
            }
        }
        assert_eq!(&got.unwrap().payload[..], b"hello world, in pieces");
    }

    #[test]
    fn partial_take_unmasks_with_the_right_offset() {
        let payload: Vec<u8> = (0..50).collect();
        let wire = frame_bytes(
            OpCode::Binary,
            true,
            Some([0xA1, 0xB2, 0xC3, 0xD4]),
            &payload,
        );
        let mut d = FrameDecoder::new(Role::Server, 1000);
        let mut buf = BytesMut::from(&wire[..9]);
        d.read_header(&mut buf).unwrap().unwrap();
        let r = d.unmask_available(&mut buf);
        assert_eq!(r, 0..3);
        let first = d.take(&mut buf, 3);
        buf.extend_from_slice(&wire[9..]);
        let r = d.unmask_available(&mut buf);
        assert_eq!(r, 0..47);
        let rest = d.take(&mut buf, 47);
        assert_eq!([&first[..], &rest[..]].concat(), payload);
        assert!(d.current().is_none());
    }

    /// Feeding through `extend_payload` (copy and unmask in one pass) where it
    /// applies and raw appends elsewhere, at every split point, decodes the
    /// same frames and reports every payload byte as new exactly once.
    #[test]
    fn extend_payload_matches_raw_appends_at_every_split() {
        let payload: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        let mut wire = frame_bytes(OpCode::Binary, false, Some([9, 8, 7, 6]), &payload);
        wire.extend(frame_bytes(OpCode::Ping, true, Some([1, 2, 3, 4]), b"hi"));
        wire.extend(frame_bytes(
            OpCode::Continuation,
            true,
            Some([5, 6, 7, 8]),
            &payload[..77],
        ));
        let expect: Vec<Vec<u8>> =
            alloc::vec![payload.clone(), b"hi".to_vec(), payload[..77].to_vec()];
        for a in 0..wire.len() {
            for b in [a, (a + 5).min(wire.len()), (a + 150).min(wire.len())] {
                let mut d = FrameDecoder::new(Role::Server, 1 << 20);
                let mut buf = BytesMut::new();
                let mut got: Vec<Vec<u8>> = Vec::new();
                let mut cur: Vec<u8> = Vec::new();
                for piece in [&wire[..a], &wire[a..b], &wire[b..]] {
                    let n = d.extend_payload(&mut buf, piece);
                    buf.extend_from_slice(&piece[n..]);
                    loop {
                        if d.current().is_none() && d.read_header(&mut buf).unwrap().is_none() {
                            break;
                        }
                        let new = d.unmask_available(&mut buf);
                        cur.extend_from_slice(&buf[new]);
                        if !d.frame_complete() {
                            break;
                        }
                        let n = d.unmasked_len();
                        d.advance(&mut buf, n);
                        got.push(core::mem::take(&mut cur));
                    }
                }
                assert_eq!(got, expect, "splits at {a} and {b}");
            }
        }
    }
}
