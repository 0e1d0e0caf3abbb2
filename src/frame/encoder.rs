//! Frame encoding.

use bytes::{BufMut, BytesMut};

use super::FrameHeader;
use crate::mask::extend_masked;

/// Append a whole frame to `out`: the header, then `payload`, masked with
/// `header.mask` if present. `header.payload_len` is set from `payload`.
///
/// ```
/// use bytes::BytesMut;
/// use wsproto::frame::{encode_frame, FrameHeader, OpCode};
/// let mut out = BytesMut::new();
/// encode_frame(&mut out, &FrameHeader::new(OpCode::Text, 0), b"Hello");
/// assert_eq!(&out[..], &[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]);
/// ```
pub fn encode_frame(out: &mut BytesMut, header: &FrameHeader, payload: &[u8]) {
    let mut h = *header;
    h.payload_len = payload.len() as u64;
    let mut head = [0u8; FrameHeader::MAX_LEN];
    let n = h.encode(&mut head);
    out.reserve(n + payload.len());
    out.put_slice(&head[..n]);
    match h.mask {
        Some(key) => extend_masked(out, payload, key, 0),
        None => out.put_slice(payload),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::OpCode;

    #[test]
    fn rfc_5_7_masked_hello() {
        let mut h = FrameHeader::new(OpCode::Text, 0);
        h.mask = Some([0x37, 0xfa, 0x21, 0x3d]);
        let mut out = BytesMut::new();
        encode_frame(&mut out, &h, b"Hello");
        assert_eq!(
            &out[..],
            &[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]
        );
    }

    #[test]
    fn length_encodings() {
        for (len, head) in [(125usize, 2usize), (126, 4), (65535, 4), (65536, 10)] {
            let mut out = BytesMut::new();
            encode_frame(
                &mut out,
                &FrameHeader::new(OpCode::Binary, 0),
                &alloc::vec![0u8; len],
            );
            assert_eq!(out.len(), head + len, "payload {len}");
        }
    }
}
