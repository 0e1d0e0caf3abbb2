//! WebSocket extensions.
//!
//! Only permessage-deflate (RFC 7692) exists, behind the `deflate` feature.
//! Without it, every extension offer is declined and RSV bits from the peer
//! fail the connection (RFC 6455 §5.2).

#[cfg(feature = "deflate")]
pub mod deflate;
