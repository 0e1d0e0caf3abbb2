//! What the I/O drivers share: their error type, handshake rejections, and
//! the sans-IO handshake steps they run over their own transports.

use std::fmt;
use std::io;
use std::string::String;
use std::vec::Vec;

use bytes::BytesMut;

use crate::handshake::{
    AcceptOptions, Accepted, ClientHandshake, ClientRequest, IncomingRequest, ServerHandshake,
    Status,
};
use crate::mask::{MaskSource, OsMaskSource};
use crate::{Config, Connection};

/// Errors of the I/O drivers ([`blocking`](crate::blocking) and, with the
/// `tokio` feature, `tokio`).
#[derive(Debug)]
#[non_exhaustive]
pub enum Error {
    /// The transport failed.
    Io(io::Error),
    /// The protocol failed (the close frame was sent, the transport closed),
    /// or the handshake was invalid.
    Ws(crate::Error),
    /// The application rejected the handshake with this status (the response
    /// was sent).
    Rejected(u16),
    /// The opening handshake did not complete within
    /// [`Config::handshake_timeout`].
    HandshakeTimeout,
    /// The connection is closed: the end was already reported.
    Closed,
}

impl Error {
    /// The close code this error put on the wire, if any.
    pub fn close_code(&self) -> Option<crate::CloseCode> {
        match self {
            Error::Ws(e) => e.close_code(),
            _ => None,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Ws(e) => write!(f, "{e}"),
            Error::Rejected(s) => write!(f, "handshake rejected with status {s}"),
            Error::HandshakeTimeout => f.write_str("the WebSocket handshake timed out"),
            Error::Closed => f.write_str("the WebSocket connection is closed"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Io(e) => Some(e),
            Error::Ws(e) => Some(e),
            _ => None,
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Self {
        Error::Io(e)
    }
}

impl From<crate::Error> for Error {
    fn from(e: crate::Error) -> Self {
        Error::Ws(e)
    }
}

impl From<crate::HandshakeError> for Error {
    fn from(e: crate::HandshakeError) -> Self {
        Error::Ws(e.into())
    }
}

impl From<crate::ApiMisuse> for Error {
    fn from(e: crate::ApiMisuse) -> Self {
        Error::Ws(e.into())
    }
}

impl<T> From<crate::SendError<T>> for Error {
    fn from(e: crate::SendError<T>) -> Self {
        Error::Ws(e.error)
    }
}

impl From<Error> for io::Error {
    fn from(e: Error) -> io::Error {
        match e {
            Error::Io(e) => e,
            Error::HandshakeTimeout => io::Error::new(io::ErrorKind::TimedOut, e),
            Error::Closed => io::Error::new(io::ErrorKind::NotConnected, e),
            other => io::Error::new(io::ErrorKind::InvalidData, other),
        }
    }
}

/// A rejection of an incoming handshake: status, headers and body.
///
/// ```
/// use wsproto::blocking::Rejection;
/// let r = Rejection::status(401).header("WWW-Authenticate", "Bearer").body("token required");
/// assert_eq!(r.status, 401);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// HTTP status (e.g. 401, 403, 404).
    pub status: u16,
    /// Extra response headers.
    pub headers: Vec<(String, String)>,
    /// Response body.
    pub body: Vec<u8>,
}

impl Rejection {
    /// A rejection with `status` and an empty body.
    pub fn status(status: u16) -> Self {
        Rejection {
            status,
            headers: Vec::new(),
            body: Vec::new(),
        }
    }

    /// Add a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set the response body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// The server side of the handshake, minus the I/O: feed bytes, get what to
/// write and what happened.
pub(crate) struct ServerSide {
    hs: ServerHandshake,
    pub(crate) buf: BytesMut,
}

/// Outcome of feeding the server handshake.
pub(crate) enum ServerStep {
    /// Read more.
    Partial,
    /// Write `response`, then run `conn` (leftover input already handed over).
    Accepted {
        conn: std::boxed::Box<Connection>,
        response: Vec<u8>,
    },
    /// Write `response`, close the transport gracefully, report `error`.
    Refused { response: Vec<u8>, error: Error },
}

impl ServerSide {
    pub(crate) fn new(config: &Config) -> Self {
        ServerSide {
            hs: ServerHandshake::new(&config.limits),
            buf: BytesMut::with_capacity(1024),
        }
    }

    /// Parse what is in `buf`; on a complete request, ask `decide`.
    pub(crate) fn step<F>(&mut self, config: &Config, decide: &mut Option<F>) -> ServerStep
    where
        F: FnOnce(&IncomingRequest) -> Result<AcceptOptions, Rejection>,
    {
        let req = match self.hs.receive(&mut self.buf) {
            Ok(Status::Partial) => return ServerStep::Partial,
            Ok(Status::Complete(req)) => req,
            Err(e) => {
                let mut response = Vec::new();
                e.write_response(&mut response);
                return ServerStep::Refused {
                    response,
                    error: e.into(),
                };
            }
        };
        let decide = decide.take().expect("the handshake completes once");
        let mut response = Vec::new();
        match decide(&req) {
            Ok(opts) => match req.accept(opts, &mut response, config.clone()) {
                Ok(mut conn) => {
                    conn.receive(&self.buf);
                    self.buf.clear();
                    ServerStep::Accepted {
                        conn: std::boxed::Box::new(conn),
                        response,
                    }
                }
                Err(e) => {
                    // the application's choice was invalid; still answer
                    response.clear();
                    crate::handshake::write_response(500, &[], b"", &mut response)
                        .expect("a fixed response is valid");
                    ServerStep::Refused {
                        response,
                        error: e.into(),
                    }
                }
            },
            Err(rej) => {
                let headers: Vec<(&str, &str)> = rej
                    .headers
                    .iter()
                    .map(|(k, v)| (k.as_str(), v.as_str()))
                    .collect();
                let error = match req.reject(rej.status, &headers, &rej.body, &mut response) {
                    Ok(()) => Error::Rejected(rej.status),
                    Err(e) => {
                        response.clear();
                        crate::handshake::write_response(500, &[], b"", &mut response)
                            .expect("a fixed response is valid");
                        e.into()
                    }
                };
                ServerStep::Refused { response, error }
            }
        }
    }
}

/// The client side of the handshake, minus the I/O.
pub(crate) struct ClientSide {
    hs: ClientHandshake,
    masks: OsMaskSource,
    pub(crate) buf: BytesMut,
}

impl ClientSide {
    /// Start: returns the side and the request bytes to write.
    pub(crate) fn new(request: &ClientRequest, config: &Config) -> Result<(Self, Vec<u8>), Error> {
        let mut masks = OsMaskSource::new();
        let mut nonce = [0u8; 16];
        masks.fill(&mut nonce);
        let mut out = Vec::new();
        // Config::deflate is the offer when the request does not make its own
        #[cfg(feature = "deflate")]
        let with_offer;
        #[cfg(feature = "deflate")]
        let request = match &config.deflate {
            Some(cfg) if !request.offers_deflate() => {
                with_offer = request.clone().deflate(cfg.clone());
                &with_offer
            }
            _ => request,
        };
        let hs = ClientHandshake::new(request, nonce, &config.limits, &mut out)?;
        Ok((
            ClientSide {
                hs,
                masks,
                buf: BytesMut::with_capacity(1024),
            },
            out,
        ))
    }

    /// Parse what is in `buf`; `Some` once the response is complete and valid.
    pub(crate) fn step(&mut self) -> Result<Option<Accepted>, Error> {
        match self.hs.receive(&mut self.buf)? {
            Status::Partial => Ok(None),
            Status::Complete(a) => Ok(Some(a)),
        }
    }

    /// The connection, with what the handshake negotiated and the bytes
    /// that followed the response head.
    pub(crate) fn into_connection(self, config: Config, accepted: &Accepted) -> Connection {
        let mut conn = Connection::client_with_masks(config, std::boxed::Box::new(self.masks));
        #[cfg(feature = "deflate")]
        if let Some(p) = &accepted.deflate {
            conn.enable_deflate(p.clone());
        }
        let _ = accepted;
        conn.receive(&self.buf);
        conn
    }
}
