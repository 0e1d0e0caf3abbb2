//! The opening handshake (RFC 6455 §4).
//!
//! * [`accept_key`]: the `Sec-WebSocket-Accept` value, without allocating.
//! * Client: [`ClientRequest`] builds the request, [`ClientHandshake`] writes
//!   it and validates the response.
//! * Server: [`ServerHandshake`] parses the request into an
//!   [`IncomingRequest`], which the application accepts (getting a
//!   [`Connection`](crate::Connection)) or rejects with any status.
//! * Another HTTP stack (hyper, axum) that did the upgrade itself can still
//!   use the validation: [`IncomingRequest::from_parts`] and
//!   [`IncomingRequest::response_headers`], then
//!   [`Connection::after_handshake`](crate::Connection::after_handshake).
//!
//! Bytes that arrive after the handshake head in the same read (a frame sent
//! right behind the request or response) stay in the caller's buffer: pass
//! them to the connection.

mod client;
mod headers;
mod server;

use sha1_smol::Sha1;

pub use client::{Accepted, ClientHandshake, ClientRequest};
pub use headers::{parse_extensions, ExtensionOffer};
#[cfg(feature = "std")]
pub(crate) use server::write_response;
pub use server::{AcceptOptions, IncomingRequest, ServerHandshake};

/// The GUID of RFC 6455 §1.3.
pub const WEBSOCKET_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/// Progress of a handshake parser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status<T> {
    /// The head is not complete yet: read more bytes and call again.
    Partial,
    /// The head was parsed and consumed from the buffer.
    Complete(T),
}

/// `Sec-WebSocket-Accept` for a `Sec-WebSocket-Key` (§1.3, §4.2.2): base64 of
/// the SHA-1 of the key followed by the GUID. Returns the 28 ASCII bytes; no
/// allocation.
///
/// ```
/// // The example of RFC 6455 §1.3.
/// let accept = wsproto::handshake::accept_key(b"dGhlIHNhbXBsZSBub25jZQ==");
/// assert_eq!(&accept, b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
/// ```
pub fn accept_key(key: &[u8]) -> [u8; 28] {
    use base64::Engine;
    let mut sha = Sha1::new();
    sha.update(key);
    sha.update(WEBSOCKET_GUID.as_bytes());
    let digest = sha.digest().bytes();
    let mut out = [0u8; 28];
    let n = base64::engine::general_purpose::STANDARD
        .encode_slice(digest, &mut out)
        .expect("20 bytes encode to exactly 28");
    debug_assert_eq!(n, 28);
    out
}

/// A fresh `Sec-WebSocket-Key`: base64 of 16 unpredictable bytes (§4.1).
pub(crate) fn encode_key(nonce: &[u8; 16]) -> [u8; 24] {
    use base64::Engine;
    let mut out = [0u8; 24];
    base64::engine::general_purpose::STANDARD
        .encode_slice(nonce, &mut out)
        .expect("16 bytes encode to exactly 24");
    out
}

/// Find the end of an HTTP head (the byte after the empty line), scanning
/// from `from` so a byte-at-a-time sender costs linear time overall.
pub(crate) fn find_head_end(buf: &[u8], from: usize) -> Option<usize> {
    let start = from.saturating_sub(3);
    let hay = buf.get(start..)?;
    let mut i = 0;
    while i < hay.len() {
        if hay[i] == b'\n' {
            match hay.get(i + 1..i + 3) {
                Some([b'\r', b'\n']) => return Some(start + i + 3),
                Some([b'\n', _]) => return Some(start + i + 2),
                None if hay.get(i + 1) == Some(&b'\n') => return Some(start + i + 2),
                _ => {}
            }
        }
        i += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_end_found_however_split() {
        let head = b"GET / HTTP/1.1\r\nHost: x\r\n\r\nrest";
        let end = head.len() - 4;
        for cut in 0..=head.len() {
            let first = find_head_end(&head[..cut], 0);
            if cut < end {
                assert_eq!(first, None, "cut {cut}");
                assert_eq!(find_head_end(head, cut), Some(end), "resume at {cut}");
            } else {
                assert_eq!(first, Some(end));
            }
        }
        assert_eq!(find_head_end(b"GET / HTTP/1.1\nHost: x\n\nX", 0), Some(24));
    }

    #[test]
    fn key_encoding() {
        // RFC 6455 §4.1 example nonce
        let nonce = *b"the sample nonce";
        assert_eq!(&encode_key(&nonce), b"dGhlIHNhbXBsZSBub25jZQ==");
    }
}
