//! The close frame payload: status code and reason (RFC 6455 §5.5.1, §7.4).

use core::fmt;

use bytes::{BufMut, Bytes};

use crate::error::{ApiMisuse, ProtocolError};
use crate::message::{utf8, Utf8Bytes};

/// A close status code (RFC 6455 §7.4).
///
/// ```
/// use wsproto::CloseCode;
/// assert!(CloseCode::NORMAL.is_sendable());
/// assert!(!CloseCode::ABNORMAL.is_sendable()); // 1006 never goes on the wire
/// assert!(CloseCode::from(4000).is_sendable()); // private use
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub struct CloseCode(pub u16);

impl CloseCode {
    /// 1000: normal closure.
    pub const NORMAL: CloseCode = CloseCode(1000);
    /// 1001: the endpoint is going away (server shutdown, page navigation).
    pub const GOING_AWAY: CloseCode = CloseCode(1001);
    /// 1002: protocol error.
    pub const PROTOCOL_ERROR: CloseCode = CloseCode(1002);
    /// 1003: a data type the endpoint cannot accept.
    pub const UNSUPPORTED_DATA: CloseCode = CloseCode(1003);
    /// 1005: no status code was present (never sent on the wire).
    pub const NO_STATUS: CloseCode = CloseCode(1005);
    /// 1006: closed without a close frame (never sent on the wire).
    pub const ABNORMAL: CloseCode = CloseCode(1006);
    /// 1007: data inconsistent with the message type (e.g. invalid UTF-8).
    pub const INVALID_DATA: CloseCode = CloseCode(1007);
    /// 1008: policy violation.
    pub const POLICY_VIOLATION: CloseCode = CloseCode(1008);
    /// 1009: message too big.
    pub const TOO_BIG: CloseCode = CloseCode(1009);
    /// 1010: the client expected an extension the server did not negotiate.
    pub const MANDATORY_EXTENSION: CloseCode = CloseCode(1010);
    /// 1011: internal server error.
    pub const INTERNAL_ERROR: CloseCode = CloseCode(1011);
    /// 1012: service restart.
    pub const SERVICE_RESTART: CloseCode = CloseCode(1012);
    /// 1013: try again later.
    pub const TRY_AGAIN_LATER: CloseCode = CloseCode(1013);
    /// 1014: bad gateway.
    pub const BAD_GATEWAY: CloseCode = CloseCode(1014);
    /// 1015: TLS handshake failure (never sent on the wire).
    pub const TLS_HANDSHAKE: CloseCode = CloseCode(1015);

    /// Whether this code may appear in a close frame: 1000–1003, 1007–1014
    /// (registered, §7.4.1 and the IANA registry) and 3000–4999 (libraries
    /// and private use, §7.4.2). 1004–1006 and 1015 are reserved or
    /// designated for local use only; 0–999, 1016–2999 and 5000+ are not
    /// defined.
    pub fn is_sendable(self) -> bool {
        matches!(self.0, 1000..=1003 | 1007..=1014 | 3000..=4999)
    }
}

impl From<u16> for CloseCode {
    fn from(v: u16) -> Self {
        CloseCode(v)
    }
}

impl From<CloseCode> for u16 {
    fn from(c: CloseCode) -> u16 {
        c.0
    }
}

impl fmt::Display for CloseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// The payload of a close frame: a code and an optional UTF-8 reason.
///
/// ```
/// use wsproto::{CloseCode, CloseFrame};
/// let frame = CloseFrame::new(CloseCode::NORMAL, "server closing");
/// assert_eq!(frame.reason.as_str(), "server closing");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CloseFrame {
    /// The status code.
    pub code: CloseCode,
    /// Human-readable reason, at most 123 bytes (may be empty).
    pub reason: Utf8Bytes,
}

impl CloseFrame {
    /// The largest reason that fits a 125-byte control frame.
    pub const MAX_REASON_LEN: usize = 123;

    /// A close frame with `code` and `reason`.
    pub fn new(code: impl Into<CloseCode>, reason: impl Into<Utf8Bytes>) -> Self {
        CloseFrame {
            code: code.into(),
            reason: reason.into(),
        }
    }

    /// Parse a close frame payload: `Ok(None)` for an empty payload (no
    /// status), else the code and reason. Fails on a one-byte payload or an
    /// unsendable code (1002) and on a reason that is not UTF-8 (1007).
    pub fn parse(payload: &Bytes) -> Result<Option<CloseFrame>, ProtocolError> {
        match payload.len() {
            0 => Ok(None),
            // §5.5.1: if there is a body, the first two bytes are the code.
            1 => Err(ProtocolError::InvalidClosePayload),
            _ => {
                let code = CloseCode(u16::from_be_bytes([payload[0], payload[1]]));
                if !code.is_sendable() {
                    return Err(ProtocolError::InvalidCloseCode(code.0));
                }
                let reason = payload.slice(2..);
                if !utf8::is_valid(&reason) {
                    return Err(ProtocolError::InvalidUtf8);
                }
                Ok(Some(CloseFrame {
                    code,
                    reason: Utf8Bytes::from_validated(reason),
                }))
            }
        }
    }

    /// Check that this frame may be sent: a sendable code and a reason of at
    /// most 123 bytes.
    pub fn validate(&self) -> Result<(), ApiMisuse> {
        if !self.code.is_sendable() {
            return Err(ApiMisuse::InvalidCloseCode(self.code.0));
        }
        if self.reason.len() > Self::MAX_REASON_LEN {
            return Err(ApiMisuse::CloseReasonTooLong);
        }
        Ok(())
    }

    /// Append the payload encoding (code, then reason) to `out`.
    pub fn encode(&self, out: &mut impl BufMut) {
        out.put_u16(self.code.0);
        out.put_slice(self.reason.as_bytes());
    }

    /// Encoded payload length.
    pub fn encoded_len(&self) -> usize {
        2 + self.reason.len()
    }
}

impl fmt::Display for CloseFrame {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.reason.is_empty() {
            write!(f, "{}", self.code)
        } else {
            write!(f, "{} ({})", self.code, self.reason.as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec::Vec;

    #[test]
    fn sendable_ranges() {
        for code in 0u16..=u16::MAX {
            let expect = matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999);
            assert_eq!(CloseCode(code).is_sendable(), expect, "{code}");
        }
    }

    #[test]
    fn parse_cases() {
        assert_eq!(CloseFrame::parse(&Bytes::new()), Ok(None));
        assert_eq!(
            CloseFrame::parse(&Bytes::from_static(&[0x03])),
            Err(ProtocolError::InvalidClosePayload)
        );
        assert_eq!(
            CloseFrame::parse(&Bytes::from_static(&[0x03, 0xED])),
            Err(ProtocolError::InvalidCloseCode(1005))
        );
        assert_eq!(
            CloseFrame::parse(&Bytes::from_static(&[0x03, 0xE8, 0xFF])),
            Err(ProtocolError::InvalidUtf8)
        );
        let f = CloseFrame::parse(&Bytes::from_static(b"\x03\xe8bye"))
            .unwrap()
            .unwrap();
        assert_eq!(f, CloseFrame::new(CloseCode::NORMAL, "bye"));
    }

    #[test]
    fn encode_round_trip_and_validate() {
        let f = CloseFrame::new(4000u16, "é");
        let mut out = Vec::new();
        f.encode(&mut out);
        assert_eq!(out.len(), f.encoded_len());
        assert_eq!(CloseFrame::parse(&Bytes::from(out)).unwrap().unwrap(), f);
        assert_eq!(
            CloseFrame::new(1006u16, "").validate(),
            Err(ApiMisuse::InvalidCloseCode(1006))
        );
        let long = "x".repeat(124);
        assert_eq!(
            CloseFrame::new(1000u16, long).validate(),
            Err(ApiMisuse::CloseReasonTooLong)
        );
    }
}
