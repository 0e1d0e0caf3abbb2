//! Connection configuration and resource limits.
//!
//! Every default is chosen so that a server exposed to the open internet is
//! safe without tuning: a hostile peer can make one connection hold at most
//! about `max_frame_payload + max_message` bytes of input, 17 pending pongs,
//! and nothing at all for a declared-but-unsent payload (limits are checked
//! as soon as a frame header parses, before any payload is buffered).

use core::time::Duration;

/// Resource limits, all enforced by the core.
///
/// ```
/// let mut limits = wsproto::Limits::default();
/// limits.max_message = 64 << 20; // accept messages up to 64 MiB
/// assert!(limits.max_frame_payload <= 16 << 20);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Largest payload accepted in one frame, checked when its header
    /// parses. Default 16 MiB: enough for any real application frame, small
    /// enough that a header declaring 2^63 bytes fails at once with close
    /// code 1009 instead of allocating.
    pub max_frame_payload: usize,
    /// Largest message, the sum of its fragments' payloads, checked when each
    /// frame header parses. Default 16 MiB. In streaming mode messages are
    /// never buffered whole, so this only bounds the declared total. A
    /// compressed message (permessage-deflate) is limited by its inflated
    /// size, enforced while inflating; its wire size may be up to twice this
    /// (deflate slightly expands incompressible data) before it is refused
    /// unread.
    pub max_message: usize,
    /// Largest opening-handshake head (request or response line plus
    /// headers), in bytes. Default 16 KiB: browsers with many cookies send a
    /// few KiB; more than this is refused with `431`.
    pub max_handshake_bytes: usize,
    /// Most header fields accepted in a handshake head. Default 64 (browsers
    /// send about 15).
    pub max_headers: usize,
    /// Most bytes queued for sending before `send` refuses new data messages
    /// (returning them to the caller, see [`SendError`](crate::SendError)).
    /// An empty queue always accepts one message, however large: the caller
    /// already holds that memory. Control frames are never refused, and at
    /// most 16 unsent pongs are kept (the latest), so a ping flood cannot
    /// grow the queue. Default 8 MiB.
    pub max_outbound: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_frame_payload: 16 << 20,
            max_message: 16 << 20,
            max_handshake_bytes: 16 << 10,
            max_headers: 64,
            max_outbound: 8 << 20,
        }
    }
}

/// Behaviour of a [`Connection`](crate::Connection).
///
/// ```
/// use core::time::Duration;
/// let mut config = wsproto::Config::default();
/// config.keepalive_interval = Some(Duration::from_secs(30));
/// config.limits.max_message = 1 << 20;
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// Resource limits.
    pub limits: Limits,
    /// Answer every ping with a pong automatically (RFC 6455 §5.5.2). When
    /// more than 16 pongs wait to be sent, only the latest 16 are kept
    /// (§5.5.3 allows answering only the latest ping; it bounds memory under
    /// a ping flood).
    /// Default `true`. When `false`, the application answers with
    /// [`Connection::pong`](crate::Connection::pong).
    pub auto_pong: bool,
    /// Deliver data as [`Event::Fragment`](crate::Event::Fragment)s as soon as
    /// payload bytes arrive instead of reassembled
    /// [`Event::Message`](crate::Event::Message)s. Memory then stays bounded by
    /// the input buffer whatever the message size. Default `false`.
    pub streaming: bool,
    /// Send a ping when nothing has been received for this long. Default
    /// `None` (no keepalive).
    pub keepalive_interval: Option<Duration>,
    /// After a keepalive ping has been handed out, how long to wait for any
    /// byte from the peer before giving up on it
    /// ([`CloseReason::TimedOut`](crate::CloseReason)). Default 20 s.
    pub keepalive_timeout: Duration,
    /// How long to wait for the peer's close frame after sending ours, and, as
    /// a client, for the server to close the TCP connection after the close
    /// handshake (RFC 6455 §7.1.1). Default 10 s.
    pub close_timeout: Duration,
    /// How long the I/O drivers (`blocking`, `tokio`) give the opening
    /// handshake before dropping the transport: a client that connects and
    /// never sends its request (or sends it a byte a minute) must not hold a
    /// connection slot. The sans-IO handshake parsers themselves have no
    /// timers. Default 10 s.
    pub handshake_timeout: Duration,
    /// Payloads at least this large leave the input buffer without a copy
    /// (they share its allocation); smaller ones are copied out. Sharing is
    /// faster, but a message the application keeps pins the whole buffer it
    /// came from: a peer mixing large frames with tiny messages that a chat
    /// server stores as history could pin megabytes per retained byte. The
    /// default, 4 KiB, bounds that amplification (the input buffer also
    /// shrinks back after large frames) while keeping large payloads
    /// zero-copy. Set it to 0 if you never retain messages.
    pub min_zero_copy: usize,
    /// permessage-deflate (RFC 7692): what a client offers and what a server
    /// accepts. Default `None`: compression costs memory (with context
    /// takeover about 370 KiB for our compressor and 46 KiB for the peer's
    /// decompressor, kept for the life of the connection; without it, only
    /// while a message is processed — see docs/deflate.md) and CPU, and can
    /// leak secrets mixed with attacker-chosen text (CRIME/BREACH), so it is
    /// opt-in.
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::extension::deflate::DeflateConfig>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            limits: Limits::default(),
            auto_pong: true,
            streaming: false,
            keepalive_interval: None,
            keepalive_timeout: Duration::from_secs(20),
            close_timeout: Duration::from_secs(10),
            handshake_timeout: Duration::from_secs(10),
            min_zero_copy: 4096,
            #[cfg(feature = "deflate")]
            deflate: None,
        }
    }
}
