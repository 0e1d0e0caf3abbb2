//! The frame header: parse and encode side by side (RFC 6455 §5.2).

use super::OpCode;
use crate::error::ProtocolError;

/// A parsed or to-be-encoded frame header.
///
/// ```
/// use wsproto::frame::{FrameHeader, OpCode};
/// // RFC 6455 §5.7: a single-frame unmasked text message "Hello".
/// let wire = [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f];
/// let (header, len) = FrameHeader::parse(&wire).unwrap().unwrap();
/// assert_eq!(len, 2);
/// assert!(header.fin);
/// assert_eq!(header.opcode, OpCode::Text);
/// assert_eq!(header.payload_len, 5);
///
/// let mut out = [0u8; FrameHeader::MAX_LEN];
/// let n = header.encode(&mut out);
/// assert_eq!(&out[..n], &wire[..2]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct FrameHeader {
    /// Final fragment of a message.
    pub fin: bool,
    /// RSV1 (claimed by permessage-deflate, RFC 7692).
    pub rsv1: bool,
    /// RSV2.
    pub rsv2: bool,
    /// RSV3.
    pub rsv3: bool,
    /// The opcode.
    pub opcode: OpCode,
    /// The masking key, present on every client-to-server frame.
    pub mask: Option<[u8; 4]>,
    /// Payload length in bytes (at most 2^63 - 1 on the wire).
    pub payload_len: u64,
}

impl FrameHeader {
    /// The longest header: 2 bytes, 8-byte extended length, 4-byte mask.
    pub const MAX_LEN: usize = 14;

    /// A header with FIN set, no RSV bits and no mask.
    pub fn new(opcode: OpCode, payload_len: u64) -> Self {
        FrameHeader {
            fin: true,
            rsv1: false,
            rsv2: false,
            rsv3: false,
            opcode,
            mask: None,
            payload_len,
        }
    }

    /// The RSV bits as a 3-bit value (RSV1 is 0b100).
    pub fn rsv_bits(&self) -> u8 {
        (self.rsv1 as u8) << 2 | (self.rsv2 as u8) << 1 | self.rsv3 as u8
    }

    /// Parse a header from the start of `buf`.
    ///
    /// Returns `Ok(None)` when `buf` does not yet hold the whole header (a
    /// partial header is never an error), or the header and its length in
    /// bytes. Wire-level violations are reported as soon as the byte that
    /// carries them is present, so the same bytes fail the same way however
    /// they are split.
    pub fn parse(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        let Some(&b0) = buf.first() else {
            return Ok(None);
        };
        // §5.2: "If an unknown opcode is received, the receiving endpoint MUST
        // _Fail the WebSocket Connection_."
        let opcode = OpCode::from_u8(b0 & 0x0F).ok_or(ProtocolError::ReservedOpcode(b0 & 0x0F))?;
        let Some(&b1) = buf.get(1) else {
            return Ok(None);
        };
        let masked = b1 & 0x80 != 0;
        let (payload_len, mut pos) = match b1 & 0x7F {
            126 => {
                let Some(b) = buf.get(2..4) else {
                    return Ok(None);
                };
                let len = u16::from_be_bytes([b[0], b[1]]) as u64;
                // §5.2: "the minimal number of bytes MUST be used to encode
                // the length".
                if len < 126 {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (len, 4)
            }
            127 => {
                // §5.2: "the most significant bit MUST be 0". Checked on the
                // first length byte so it fails however the bytes are split.
                match buf.get(2) {
                    None => return Ok(None),
                    Some(b) if b & 0x80 != 0 => return Err(ProtocolError::InvalidLength),
                    Some(_) => {}
                }
                let Some(b) = buf.get(2..10) else {
                    return Ok(None);
                };
                let mut arr = [0u8; 8];
                arr.copy_from_slice(b);
                let len = u64::from_be_bytes(arr);
                if len <= 0xFFFF {
                    return Err(ProtocolError::NonMinimalLength);
                }
                (len, 10)
            }
            n => (n as u64, 2),
        };
        let mask = if masked {
            let Some(b) = buf.get(pos..pos + 4) else {
                return Ok(None);
            };
            pos += 4;
            Some([b[0], b[1], b[2], b[3]])
        } else {
            None
        };
        let header = FrameHeader {
            fin: b0 & 0x80 != 0,
            rsv1: b0 & 0x40 != 0,
            rsv2: b0 & 0x20 != 0,
            rsv3: b0 & 0x10 != 0,
            opcode,
            mask,
            payload_len,
        };
        Ok(Some((header, pos)))
    }

    /// Bytes [`encode`](Self::encode) writes.
    pub fn encoded_len(&self) -> usize {
        let len = match self.payload_len {
            0..=125 => 2,
            126..=0xFFFF => 4,
            _ => 10,
        };
        len + if self.mask.is_some() { 4 } else { 0 }
    }

    /// Write the header into `out` using the minimal length encoding; returns
    /// the number of bytes written.
    ///
    /// # Panics
    /// If `payload_len` is 2^63 or more (no valid frame has such a length).
    pub fn encode(&self, out: &mut [u8; Self::MAX_LEN]) -> usize {
        assert!(
            self.payload_len < 1 << 63,
            "payload length exceeds 2^63 - 1"
        );
        out[0] = (self.fin as u8) << 7 | self.rsv_bits() << 4 | self.opcode.as_u8();
        let mask_bit = if self.mask.is_some() { 0x80 } else { 0 };
        let mut pos = match self.payload_len {
            n @ 0..=125 => {
                out[1] = mask_bit | n as u8;
                2
            }
            n @ 126..=0xFFFF => {
                out[1] = mask_bit | 126;
                out[2..4].copy_from_slice(&(n as u16).to_be_bytes());
                4
            }
            n => {
                out[1] = mask_bit | 127;
                out[2..10].copy_from_slice(&n.to_be_bytes());
                10
            }
        };
        if let Some(key) = self.mask {
            out[pos..pos + 4].copy_from_slice(&key);
            pos += 4;
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(buf: &[u8]) -> Result<Option<(FrameHeader, usize)>, ProtocolError> {
        FrameHeader::parse(buf)
    }

    #[test]
    fn rfc_5_7_examples() {
        // (wire bytes, fin, opcode, masked, payload length)
        let cases: &[(&[u8], bool, OpCode, bool, u64)] = &[
            (&[0x81, 0x05], true, OpCode::Text, false, 5),
            (
                &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d],
                true,
                OpCode::Text,
                true,
                5,
            ),
            (&[0x01, 0x03], false, OpCode::Text, false, 3),
            (&[0x80, 0x02], true, OpCode::Continuation, false, 2),
            (&[0x89, 0x05], true, OpCode::Ping, false, 5),
            (
                &[0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d],
                true,
                OpCode::Pong,
                true,
                5,
            ),
            (&[0x82, 0x7E, 0x01, 0x00], true, OpCode::Binary, false, 256),
            (
                &[0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00],
                true,
                OpCode::Binary,
                false,
                65536,
            ),
        ];
        for &(wire, fin, opcode, masked, len) in cases {
            let (h, n) = parse_all(wire).unwrap().unwrap();
            assert_eq!(n, wire.len());
            assert_eq!(
                (h.fin, h.opcode, h.mask.is_some(), h.payload_len),
                (fin, opcode, masked, len)
            );
            let mut out = [0u8; FrameHeader::MAX_LEN];
            let m = h.encode(&mut out);
            assert_eq!(&out[..m], wire, "re-encoding {wire:02x?}");
            assert_eq!(h.encoded_len(), m);
            // every strict prefix is "need more", never an error
            for cut in 0..wire.len() {
                assert_eq!(
                    parse_all(&wire[..cut]),
                    Ok(None),
                    "prefix {cut} of {wire:02x?}"
                );
            }
        }
    }

    #[test]
    fn wire_violations() {
        let cases: &[(&[u8], ProtocolError)] = &[
            (&[0x83], ProtocolError::ReservedOpcode(3)),
            (&[0x8B, 0x00], ProtocolError::ReservedOpcode(0xB)),
            (&[0x82, 0x7F, 0x80], ProtocolError::InvalidLength),
            (
                &[0x82, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF],
                ProtocolError::InvalidLength,
            ),
            (&[0x82, 0x7E, 0x00, 0x7D], ProtocolError::NonMinimalLength),
            (
                &[0x82, 0x7F, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF],
                ProtocolError::NonMinimalLength,
            ),
        ];
        for &(wire, err) in cases {
            assert_eq!(parse_all(wire), Err(err), "{wire:02x?}");
        }
    }

    #[test]
    fn largest_legal_length_parses_without_allocating() {
        let wire = [0x82, 0x7F, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF];
        let (h, _) = parse_all(&wire).unwrap().unwrap();
        assert_eq!(h.payload_len, (1 << 63) - 1);
    }

    #[test]
    fn rsv_bits_are_reported() {
        let (h, _) = parse_all(&[0xF2, 0x00]).unwrap().unwrap();
        assert!(h.rsv1 && h.rsv2 && h.rsv3);
        assert_eq!(h.rsv_bits(), 0b111);
    }
}
