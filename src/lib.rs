//! # wsproto: the WebSocket protocol as sans-IO state machines
//!
//! `wsproto` implements RFC 6455 without doing any I/O: it never opens a
//! socket, never reads a clock and never draws randomness on its own. You hand
//! it the bytes that arrived, the current time and (for clients) a source of
//! masking keys; it hands back events, bytes to send and the next deadline.
//! Same inputs, same outputs — so it runs on any I/O layer (a poll loop, mio,
//! tokio, an embedded stack, an HTTP server that already did the upgrade) and
//! every behaviour can be reproduced in a unit test.
//!
//! ## The pieces
//!
//! * [`handshake`] — the opening handshake: [`handshake::ClientHandshake`]
//!   and [`handshake::ServerHandshake`], [`handshake::accept_key`].
//! * [`Connection`] — one endpoint after the handshake: framing,
//!   fragmentation, fail-fast UTF-8 validation, ping/pong, the close
//!   handshake, limits and timers.
//! * [`frame`] — the wire format on its own.
//! * [`blocking`] (feature `std`) — a ready-made driver over any
//!   `std::io::Read + Write`.
//!
//! ## Driving a connection by hand
//!
//! ```
//! use wsproto::{Config, Connection, Event, Message, Role};
//!
//! let mut client = Connection::new(Role::Client, Config::default());
//! let mut server = Connection::new(Role::Server, Config::default());
//!
//! // Commands encode at once into the output queue...
//! client.send(Message::text("hello")).unwrap();
//! // ...which the driver writes to the transport, chunk by chunk.
//! while let Some(chunk) = client.poll_transmit() {
//!     server.receive(&chunk); // here the "transport" is a direct call
//! }
//! // The receiving side turns bytes into events.
//! match server.poll_event().unwrap() {
//!     Some(Event::Message(Message::Text(text))) => assert_eq!(text, "hello"),
//!     other => panic!("unexpected {other:?}"),
//! }
//!
//! // Closing: the server answers the client's close frame automatically.
//! client.close(None).unwrap();
//! while let Some(chunk) = client.poll_transmit() { server.receive(&chunk); }
//! assert!(matches!(server.poll_event().unwrap(), Some(Event::Closed(_))));
//! while let Some(chunk) = server.poll_transmit() { client.receive(&chunk); }
//! assert!(matches!(client.poll_event().unwrap(), Some(Event::Closed(r)) if r.is_clean()));
//! assert!(server.should_close_transport()); // the server closes TCP first (RFC 6455 §7.1.1)
//! ```
//!
//! ## Guarantees
//!
//! * Bad input never panics and never allocates past a [`Limits`] value: it
//!   yields an [`Error`] whose [`close_code`](Error::close_code) is on the
//!   wire (1002 protocol error, 1007 invalid UTF-8, 1009 too big), and the
//!   error is sticky.
//! * Any split of the same byte stream yields the same events (in streaming
//!   mode, the same data: fragment boundaries follow the reads).
//! * Text is validated incrementally and fails at the first impossible byte,
//!   even in the middle of a frame.
//! * `#![no_std]` with `alloc` when the default `std` feature is off.
//!
//! ## Features
//!
//! * `std` (default): `std::error::Error` impls, `From<Error> for io::Error`,
//!   [`OsMaskSource`] (masking keys from the OS RNG), [`Connection::new`] for
//!   clients, and the [`blocking`] adapter.
//! * `tokio`: the [`tokio`] adapter (`Stream` + `Sink`).
//! * `arbitrary`: `arbitrary::Arbitrary` for the value types, for fuzzing.

#![no_std]
#![deny(missing_docs)]
#![deny(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

mod config;
mod connection;
mod error;
mod mask;
mod role;
mod time;
mod unchecked;

pub mod extension;
pub mod frame;
pub mod handshake;
pub mod message;

#[cfg(feature = "std")]
mod adapter;
#[cfg(feature = "std")]
pub mod blocking;
#[cfg(feature = "tokio")]
pub mod tokio;

#[cfg(fuzzing)]
#[doc(hidden)]
pub mod fuzzing;

pub use config::{Config, Limits};
pub use connection::{
    CloseReason, Connection, ConnectionState, Event, EventRef, Initiator, Timeout,
};
pub use error::{ApiMisuse, CapacityError, Error, HandshakeError, ProtocolError, SendError};
pub use frame::{CloseCode, CloseFrame};
#[cfg(feature = "std")]
pub use mask::OsMaskSource;
pub use mask::{apply_mask, MaskSource};
pub use message::{Message, MessageKind, MessageRef, Utf8Bytes};
pub use role::Role;
pub use time::Instant;
