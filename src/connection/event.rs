//! What a connection reports to the application.

use bytes::Bytes;

use crate::frame::{CloseCode, CloseFrame};
use crate::message::{Message, MessageKind, MessageRef};

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

/// An [`Event`] borrowed from the connection, returned by
/// [`Connection::poll_event_ref`](crate::Connection::poll_event_ref): the
/// same events, with payloads lent in place instead of owned.
///
/// The borrow ends at the next call on the connection, so an application
/// that answers inside its `match` (say, `send` an echo) copies what it
/// needs first; [`to_event`](Self::to_event) makes the owned [`Event`].
///
/// ```
/// use wsproto::{Config, Connection, EventRef, MessageRef};
/// let mut server = Connection::server(Config::default());
/// // a masked "Hello" from a client (RFC 6455 §5.7)
/// server.receive(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// match server.poll_event_ref().unwrap() {
///     Some(EventRef::Message(MessageRef::Text(text))) => assert_eq!(text, "Hello"),
///     other => panic!("unexpected {other:?}"),
/// }
/// assert_eq!(server.poll_event_ref().unwrap(), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventRef<'a> {
    /// A complete data message ([`Event::Message`]).
    Message(MessageRef<'a>),
    /// A piece of a data message, in streaming mode ([`Event::Fragment`]).
    Fragment {
        /// Text or binary, the same for every piece of a message.
        kind: MessageKind,
        /// The next payload bytes (for text, valid UTF-8 on their own).
        data: &'a [u8],
        /// This is the last piece of the message.
        fin: bool,
    },
    /// A ping arrived ([`Event::Ping`]; the pong is already queued with
    /// `auto_pong`).
    Ping(&'a [u8]),
    /// A pong arrived ([`Event::Pong`]).
    Pong(&'a [u8]),
    /// The connection is over ([`Event::Closed`]).
    Closed(&'a CloseReason),
}

impl<'a> EventRef<'a> {
    /// A view of an owned event.
    pub fn from_event(event: &'a Event) -> Self {
        match event {
            Event::Message(m) => EventRef::Message(m.into()),
            Event::Fragment { kind, data, fin } => EventRef::Fragment {
                kind: *kind,
                data,
                fin: *fin,
            },
            Event::Ping(p) => EventRef::Ping(p),
            Event::Pong(p) => EventRef::Pong(p),
            Event::Closed(r) => EventRef::Closed(r),
        }
    }

    /// An owned copy of the event (payloads are copied).
    pub fn to_event(&self) -> Event {
        match *self {
            EventRef::Message(m) => Event::Message(m.to_message()),
            EventRef::Fragment { kind, data, fin } => Event::Fragment {
                kind,
                data: Bytes::copy_from_slice(data),
                fin,
            },
            EventRef::Ping(p) => Event::Ping(Bytes::copy_from_slice(p)),
            EventRef::Pong(p) => Event::Pong(Bytes::copy_from_slice(p)),
            EventRef::Closed(r) => Event::Closed(r.clone()),
        }
    }
}

impl PartialEq<Event> for EventRef<'_> {
    fn eq(&self, other: &Event) -> bool {
        *self == EventRef::from_event(other)
    }
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
