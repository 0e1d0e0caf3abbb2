//! What a connection reports to the application.

use bytes::Bytes;

use crate::frame::{CloseCode, CloseFrame};
use crate::message::{Message, MessageKind};

/// Something that happened on the connection, returned by
/// [`Connection::poll_event`](crate::Connection::poll_event).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A complete, reassembled data message (the default mode).
    Message(Message),
    /// A piece of a data message, in streaming mode
    /// ([`Config::streaming`](crate::Config::streaming)). Pieces arrive in
    /// order; `fin` marks the last piece of a message. Text pieces are each
    /// valid UTF-8 on their own: a code point split across frames is held
    /// back until it is complete.
    Fragment {
        /// Text or binary, the same for every piece of a message.
        kind: MessageKind,
        /// The next payload bytes.
        data: Bytes,
        /// This is the last piece of the message.
        fin: bool,
    },
    /// A ping arrived. With [`Config::auto_pong`](crate::Config::auto_pong)
    /// (the default) the pong is already queued (also while our close frame
    /// awaits its reply: RFC 6455 §5.5.2).
    Ping(Bytes),
    /// A pong arrived (an answer to our ping, or unsolicited).
    Pong(Bytes),
    /// The connection is over; no further events follow. Any reply close frame
    /// is already queued: keep calling
    /// [`poll_transmit`](crate::Connection::poll_transmit) and close the
    /// transport when
    /// [`should_close_transport`](crate::Connection::should_close_transport)
    /// says so. A client must keep reading until EOF (and keep calling
    /// [`handle_timeout`](crate::Connection::handle_timeout)): the server
    /// closes the TCP connection first (RFC 6455 §7.1.1), and the client
    /// gives up waiting only after
    /// [`Config::close_timeout`](crate::Config::close_timeout).
    Closed(CloseReason),
}

/// Who sent the first close frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Initiator {
    /// We called [`close`](crate::Connection::close) first.
    Local,
    /// The peer's close frame came first; ours was the reply.
    Peer,
}

/// Which timer ended the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Timeout {
    /// A keepalive ping got no answer (no frame at all) within
    /// [`Config::keepalive_timeout`](crate::Config::keepalive_timeout).
    Keepalive,
    /// Our close frame got no reply within
    /// [`Config::close_timeout`](crate::Config::close_timeout).
    CloseHandshake,
}

/// Why a connection ended (see [`Event::Closed`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseReason {
    /// The close handshake completed (RFC 6455 §7.1.4: "The WebSocket
    /// Connection is Closed" cleanly).
    Clean {
        /// Who started it.
        initiator: Initiator,
        /// The peer's close frame; `None` if it carried no status code.
        peer_frame: Option<CloseFrame>,
    },
    /// The transport ended without a close handshake (close code 1006).
    Abnormal,
    /// A timer expired.
    TimedOut(Timeout),
}

impl CloseReason {
    /// The status code as RFC 6455 §7.1.5 defines it: the peer's code, 1005
    /// if its close frame had none, 1006 if there was no close frame.
    pub fn code(&self) -> CloseCode {
        match self {
            CloseReason::Clean {
                peer_frame: Some(f),
                ..
            } => f.code,
            CloseReason::Clean {
                peer_frame: None, ..
            } => CloseCode::NO_STATUS,
            CloseReason::Abnormal | CloseReason::TimedOut(_) => CloseCode::ABNORMAL,
        }
    }

    /// Whether the close handshake completed.
    pub fn is_clean(&self) -> bool {
        matches!(self, CloseReason::Clean { .. })
    }
}
