//! Errors, split by whose fault they are.
//!
//! * [`ProtocolError`]: the peer broke RFC 6455. The connection is failed with
//!   the close code from [`ProtocolError::close_code`] (1002 or 1007).
//! * [`CapacityError`]: the peer (or the caller) exceeded a configured
//!   [`Limits`](crate::Limits) value; close code 1009 for frames and messages.
//! * [`ApiMisuse`]: the caller asked for something the protocol forbids
//!   (e.g. a 126-byte ping). Nothing is sent and the connection is unchanged.
//! * [`HandshakeError`]: the opening handshake failed; its
//!   [`status_hint`](HandshakeError::status_hint) is the HTTP status a server
//!   should answer with.

use core::fmt;

use crate::frame::CloseCode;

/// Any error the crate reports.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The peer violated the protocol.
    Protocol(ProtocolError),
    /// A configured limit was exceeded.
    Capacity(CapacityError),
    /// The caller used the API in a way the protocol forbids.
    Misuse(ApiMisuse),
    /// The opening handshake failed.
    Handshake(HandshakeError),
}

impl Error {
    /// The close code this error puts on the wire when it fails a connection,
    /// or `None` for errors that never do (misuse, handshake).
    pub fn close_code(&self) -> Option<CloseCode> {
        match self {
            Error::Protocol(e) => Some(e.close_code()),
            Error::Capacity(e) => e.close_code(),
            Error::Misuse(_) | Error::Handshake(_) => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Protocol(e) => write!(f, "WebSocket protocol error: {e}"),
            Error::Capacity(e) => write!(f, "WebSocket limit exceeded: {e}"),
            Error::Misuse(e) => write!(f, "WebSocket API misuse: {e}"),
            Error::Handshake(e) => write!(f, "WebSocket handshake failed: {e}"),
        }
    }
}

impl From<ProtocolError> for Error {
    fn from(e: ProtocolError) -> Self {
        Error::Protocol(e)
    }
}
impl From<CapacityError> for Error {
    fn from(e: CapacityError) -> Self {
        Error::Capacity(e)
    }
}
impl From<ApiMisuse> for Error {
    fn from(e: ApiMisuse) -> Self {
        Error::Misuse(e)
    }
}
impl From<HandshakeError> for Error {
    fn from(e: HandshakeError) -> Self {
        Error::Handshake(e)
    }
}

/// The peer sent something RFC 6455 forbids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProtocolError {
    /// Opcode 3–7 or 0xB–0xF (§5.2).
    ReservedOpcode(u8),
    /// An RSV bit that no negotiated extension claims (§5.2).
    ReservedBits,
    /// A client sent an unmasked frame (§5.1).
    UnmaskedFrame,
    /// A server sent a masked frame (§5.1).
    MaskedFrame,
    /// The 64-bit payload length had its most significant bit set (§5.2).
    InvalidLength,
    /// The payload length was not encoded in the minimal number of bytes
    /// (§5.2: "the minimal number of bytes MUST be used").
    NonMinimalLength,
    /// A control frame with a payload over 125 bytes (§5.5).
    ControlFrameTooLong,
    /// A control frame without FIN (§5.5: control frames are never
    /// fragmented).
    FragmentedControlFrame,
    /// A continuation frame with no message in progress (§5.4).
    UnexpectedContinuation,
    /// A new text or binary frame while a fragmented message was still in
    /// progress (§5.4).
    ExpectedContinuation,
    /// Text (or a close reason) that is not UTF-8 (§8.1); close code 1007.
    InvalidUtf8,
    /// A close frame with a one-byte payload (§5.5.1).
    InvalidClosePayload,
    /// A close code that may not appear on the wire (§7.4).
    InvalidCloseCode(u16),
    /// A compressed message (RFC 7692) that does not inflate; close code
    /// 1007, as for other payloads inconsistent with their message.
    InvalidCompressedData,
}

impl ProtocolError {
    /// The close code for this violation: 1007 for invalid UTF-8, else 1002.
    pub fn close_code(self) -> CloseCode {
        match self {
            ProtocolError::InvalidUtf8 | ProtocolError::InvalidCompressedData => {
                CloseCode::INVALID_DATA
            }
            _ => CloseCode::PROTOCOL_ERROR,
        }
    }

    /// A short reason suitable for the close frame.
    pub(crate) fn reason(self) -> &'static str {
        match self {
            ProtocolError::ReservedOpcode(_) => "reserved opcode",
            ProtocolError::ReservedBits => "reserved bits set",
            ProtocolError::UnmaskedFrame => "unmasked client frame",
            ProtocolError::MaskedFrame => "masked server frame",
            ProtocolError::InvalidLength => "invalid payload length",
            ProtocolError::NonMinimalLength => "non-minimal payload length",
            ProtocolError::ControlFrameTooLong => "control frame too long",
            ProtocolError::FragmentedControlFrame => "fragmented control frame",
            ProtocolError::UnexpectedContinuation => "unexpected continuation frame",
            ProtocolError::ExpectedContinuation => "expected continuation frame",
            ProtocolError::InvalidUtf8 => "invalid UTF-8",
            ProtocolError::InvalidClosePayload => "invalid close payload",
            ProtocolError::InvalidCloseCode(_) => "invalid close code",
            ProtocolError::InvalidCompressedData => "invalid compressed data",
        }
    }
}

impl fmt::Display for ProtocolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ProtocolError::ReservedOpcode(op) => write!(f, "reserved opcode {op:#x}"),
            ProtocolError::InvalidCloseCode(c) => write!(f, "invalid close code {c}"),
            other => f.write_str(other.reason()),
        }
    }
}

/// A configured limit was exceeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CapacityError {
    /// A frame header declared a payload larger than
    /// [`Limits::max_frame_payload`](crate::Limits::max_frame_payload).
    FrameTooLarge {
        /// Declared payload length.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// A message would grow past
    /// [`Limits::max_message`](crate::Limits::max_message).
    MessageTooLarge {
        /// Message size including the frame that crossed the limit.
        size: u64,
        /// The configured limit.
        limit: usize,
    },
    /// The handshake head is larger than
    /// [`Limits::max_handshake_bytes`](crate::Limits::max_handshake_bytes).
    HandshakeTooLarge {
        /// The configured limit.
        limit: usize,
    },
    /// The handshake has more header fields than
    /// [`Limits::max_headers`](crate::Limits::max_headers).
    TooManyHeaders {
        /// The configured limit.
        limit: usize,
    },
    /// Queuing this frame would take the outbound queue past
    /// [`Limits::max_outbound`](crate::Limits::max_outbound); not fatal:
    /// flush and retry.
    OutboundQueueFull {
        /// Bytes queued right now.
        queued: usize,
        /// The configured limit.
        limit: usize,
    },
}

impl CapacityError {
    /// 1009 ("message too big") for frame and message limits; `None` for the
    /// limits that never fail an open connection.
    pub fn close_code(self) -> Option<CloseCode> {
        match self {
            CapacityError::FrameTooLarge { .. } | CapacityError::MessageTooLarge { .. } => {
                Some(CloseCode::TOO_BIG)
            }
            _ => None,
        }
    }
}

impl fmt::Display for CapacityError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CapacityError::FrameTooLarge { size, limit } => {
                write!(
                    f,
                    "frame payload of {size} bytes exceeds the limit of {limit}"
                )
            }
            CapacityError::MessageTooLarge { size, limit } => {
                write!(f, "message of {size} bytes exceeds the limit of {limit}")
            }
            CapacityError::HandshakeTooLarge { limit } => {
                write!(f, "handshake head exceeds {limit} bytes")
            }
            CapacityError::TooManyHeaders { limit } => {
                write!(f, "handshake has more than {limit} header fields")
            }
            CapacityError::OutboundQueueFull { queued, limit } => {
                write!(f, "{queued} bytes already queued (limit {limit})")
            }
        }
    }
}

/// The caller asked for something the protocol or the connection's state
/// forbids. Nothing was queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ApiMisuse {
    /// The connection is closing or closed: no more data or pings may be sent
    /// (§5.5.1: nothing after a close frame).
    NotOpen,
    /// A new message was started while a fragmented one is still being sent.
    MessageInProgress,
    /// A fragment of a different kind than the message being sent.
    FragmentKindMismatch,
    /// A control frame payload over 125 bytes (§5.5).
    ControlPayloadTooLong,
    /// A close code that may not be sent (1005, 1006, 1015 and reserved
    /// ranges; §7.4).
    InvalidCloseCode(u16),
    /// A close reason over 123 bytes (it must fit a 125-byte control frame).
    CloseReasonTooLong,
    /// Text fragments that are not valid UTF-8.
    InvalidUtf8,
    /// The accepted subprotocol was not one the client offered.
    ProtocolNotOffered,
    /// A header name or value that would corrupt the HTTP head (CR, LF, or an
    /// invalid token).
    InvalidHeader,
    /// A URL that is not `ws://` or `wss://`, or has no host.
    InvalidUrl,
    /// A message-only API (an async `Stream` of messages) was used on a
    /// connection in streaming mode, which produces fragments.
    StreamingMode,
}

impl fmt::Display for ApiMisuse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ApiMisuse::NotOpen => f.write_str("the connection is closing or closed"),
            ApiMisuse::MessageInProgress => f.write_str("a fragmented message is still being sent"),
            ApiMisuse::FragmentKindMismatch => {
                f.write_str("fragment kind differs from the message being sent")
            }
            ApiMisuse::ControlPayloadTooLong => {
                f.write_str("control frame payload longer than 125 bytes")
            }
            ApiMisuse::InvalidCloseCode(c) => write!(f, "close code {c} may not be sent"),
            ApiMisuse::CloseReasonTooLong => f.write_str("close reason longer than 123 bytes"),
            ApiMisuse::InvalidUtf8 => f.write_str("text is not valid UTF-8"),
            ApiMisuse::ProtocolNotOffered => {
                f.write_str("the chosen subprotocol was not offered by the client")
            }
            ApiMisuse::InvalidHeader => f.write_str("invalid header name or value"),
            ApiMisuse::InvalidUrl => f.write_str("not a ws:// or wss:// URL with a host"),
            ApiMisuse::StreamingMode => {
                f.write_str("streaming mode delivers fragments: read events, not messages")
            }
        }
    }
}

/// The opening handshake failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HandshakeError {
    /// The head is not valid HTTP/1.1.
    MalformedHttp,
    /// The head exceeds a configured limit.
    Capacity(CapacityError),
    /// A request method other than GET (§4.2.1 item 1).
    MethodNotGet,
    /// An HTTP version before 1.1 (§4.2.1 item 1).
    UnsupportedHttpVersion,
    /// No `Host` header, or more than one (§4.2.1 item 2).
    MissingHost,
    /// `Upgrade` does not list `websocket` (§4.2.1 item 3, §4.1 item 2).
    MissingUpgrade,
    /// `Connection` does not list `Upgrade` (§4.2.1 item 4, §4.1 item 3).
    MissingConnectionUpgrade,
    /// `Sec-WebSocket-Key` missing or not base64 of 16 bytes (§4.2.1 item 5).
    InvalidKey,
    /// `Sec-WebSocket-Version` missing or not 13 (§4.2.1 item 6): answer 426
    /// with `Sec-WebSocket-Version: 13` (§4.4).
    UnsupportedVersion,
    /// A header the handshake needs appears more than once with conflicting
    /// values, or is not valid text.
    InvalidHeader(&'static str),
    /// The server answered with a status other than 101 (§4.1 item 1).
    UnexpectedStatus(u16),
    /// `Sec-WebSocket-Accept` missing or wrong (§4.1 item 4).
    InvalidAccept,
    /// The server selected a subprotocol the client did not offer (§4.1 item 6).
    UnofferedProtocol,
    /// The server selected an extension the client did not offer (§4.1 item 5).
    UnofferedExtension,
}

impl HandshakeError {
    /// The HTTP status a server should answer this error with: 426 for a
    /// wrong WebSocket version (§4.4), 431 for oversized heads, 405 for a
    /// non-GET method, 505 for HTTP before 1.1, 400 otherwise.
    pub fn status_hint(&self) -> u16 {
        match self {
            HandshakeError::UnsupportedVersion => 426,
            HandshakeError::Capacity(_) => 431,
            HandshakeError::MethodNotGet => 405,
            HandshakeError::UnsupportedHttpVersion => 505,
            _ => 400,
        }
    }
}

impl fmt::Display for HandshakeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HandshakeError::MalformedHttp => f.write_str("malformed HTTP head"),
            HandshakeError::Capacity(e) => write!(f, "{e}"),
            HandshakeError::MethodNotGet => f.write_str("request method is not GET"),
            HandshakeError::UnsupportedHttpVersion => f.write_str("HTTP version is not 1.1"),
            HandshakeError::MissingHost => f.write_str("missing or duplicate Host header"),
            HandshakeError::MissingUpgrade => f.write_str("Upgrade header does not name websocket"),
            HandshakeError::MissingConnectionUpgrade => {
                f.write_str("Connection header does not contain Upgrade")
            }
            HandshakeError::InvalidKey => f.write_str("missing or invalid Sec-WebSocket-Key"),
            HandshakeError::UnsupportedVersion => {
                f.write_str("missing or unsupported Sec-WebSocket-Version (need 13)")
            }
            HandshakeError::InvalidHeader(h) => write!(f, "invalid {h} header"),
            HandshakeError::UnexpectedStatus(s) => write!(f, "unexpected HTTP status {s}"),
            HandshakeError::InvalidAccept => f.write_str("missing or wrong Sec-WebSocket-Accept"),
            HandshakeError::UnofferedProtocol => {
                f.write_str("server selected a subprotocol that was not offered")
            }
            HandshakeError::UnofferedExtension => {
                f.write_str("server selected an extension that was not offered")
            }
        }
    }
}

/// A send command was refused; the value comes back to the caller.
///
/// ```
/// use wsproto::{Connection, Config, Role, Message};
/// let mut conn = Connection::new(Role::Server, Config::default());
/// conn.close(None).unwrap();
/// let err = conn.send(Message::text("too late")).unwrap_err();
/// assert_eq!(err.into_inner(), Message::text("too late"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendError<T> {
    /// Why the command was refused.
    pub error: Error,
    /// What the caller tried to send, returned untouched.
    pub value: T,
}

impl<T> SendError<T> {
    /// Give back the value that could not be sent.
    pub fn into_inner(self) -> T {
        self.value
    }

    /// Whether the refusal is only backpressure (the outbound queue is full):
    /// flush the transport and try again.
    pub fn is_queue_full(&self) -> bool {
        matches!(
            self.error,
            Error::Capacity(CapacityError::OutboundQueueFull { .. })
        )
    }
}

impl<T> fmt::Display for SendError<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "send refused: {}", self.error)
    }
}

#[cfg(feature = "std")]
mod std_impls {
    use super::*;
    use std::io;

    impl std::error::Error for Error {}
    impl std::error::Error for ProtocolError {}
    impl std::error::Error for CapacityError {}
    impl std::error::Error for ApiMisuse {}
    impl std::error::Error for HandshakeError {}
    impl<T: fmt::Debug> std::error::Error for SendError<T> {}

    impl From<Error> for io::Error {
        fn from(e: Error) -> io::Error {
            let kind = match &e {
                Error::Misuse(_) => io::ErrorKind::InvalidInput,
                _ => io::ErrorKind::InvalidData,
            };
            io::Error::new(kind, e)
        }
    }
}
