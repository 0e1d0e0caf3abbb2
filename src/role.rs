//! Which end of the connection we are.

/// The side of a WebSocket connection this endpoint plays.
///
/// The role decides the masking rules (RFC 6455 §5.1): a client masks every
/// frame it sends and rejects masked frames from the server; a server never
/// masks and rejects unmasked frames from the client. It also decides who
/// closes the TCP connection first after the close handshake (§7.1.1: the
/// server).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "arbitrary", derive(arbitrary::Arbitrary))]
pub enum Role {
    /// The endpoint that sent the opening handshake request.
    Client,
    /// The endpoint that accepted the opening handshake request.
    Server,
}

impl Role {
    /// The role of the other endpoint.
    pub fn peer(self) -> Role {
        match self {
            Role::Client => Role::Server,
            Role::Server => Role::Client,
        }
    }

    /// Whether frames this role *sends* carry a masking key.
    pub fn masks_outgoing(self) -> bool {
        matches!(self, Role::Client)
    }
}
