//! A blocking driver over any `std::io::Read + Write` stream.
//!
//! [`WebSocket`] runs the handshake, then drives a [`Connection`] with
//! blocking reads and writes: pongs and close replies are flushed as soon as
//! they are queued, timers run from the stream's read timeout, and the
//! transport is closed the way RFC 6455 §7.1.1 asks (the server first; after
//! an error, a lingering close so the peer still receives our close frame).
//!
//! ```no_run
//! use std::net::{TcpListener, TcpStream};
//! use wsproto::blocking::WebSocket;
//! use wsproto::handshake::ClientRequest;
//! use wsproto::{Config, Event, Message};
//!
//! // server
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! std::thread::spawn(move || -> Result<(), wsproto::blocking::Error> {
//!     let (tcp, _) = listener.accept()?;
//!     let mut ws = WebSocket::accept(tcp, Config::default())?;
//!     while let Event::Message(m) = ws.read()? {
//!         ws.send(m)?; // echo
//!     }
//!     Ok(())
//! });
//!
//! // client
//! let tcp = TcpStream::connect(addr)?;
//! let request = ClientRequest::from_url(&format!("ws://{addr}/"))?;
//! let (mut ws, _accepted) = WebSocket::connect(tcp, &request, Config::default())?;
//! ws.send(Message::text("hello"))?;
//! assert_eq!(ws.read()?, Event::Message(Message::text("hello")));
//! ws.close(None)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::boxed::Box;
use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Duration;
use std::vec;

use bytes::{Bytes, BytesMut};

use crate::handshake::{AcceptOptions, Accepted, ClientRequest, IncomingRequest};
use crate::{CloseFrame, Config, Connection, Event, Instant, Message, MessageKind};

/// A byte stream the blocking driver can run on.
///
/// Implemented for [`TcpStream`] and, on Unix, `UnixStream`. For other
/// streams (TLS wrappers, in-memory pipes) implement it with the defaults,
/// which make timers fire only when bytes arrive and skip the half-close.
pub trait Stream: Read + Write {
    /// Close the write half (TCP FIN) so the peer sees EOF. Default: flush.
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.flush()
    }

    /// Bound the next read; `None` blocks indefinitely. After the handshake
    /// the driver owns the read timeout: it sets it to the connection's next
    /// deadline (use [`Config::keepalive_interval`] for idle detection).
    /// Default: ignored.
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }

    /// Bound writes; the driver sets it only while closing (so a peer that
    /// stopped reading cannot hold the close forever). Default: ignored.
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let _ = timeout;
        Ok(())
    }
}

impl Stream for TcpStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_write_timeout(self, timeout)
    }
}

#[cfg(unix)]
impl Stream for std::os::unix::net::UnixStream {
    fn shutdown_write(&mut self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_read_timeout(self, timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        std::os::unix::net::UnixStream::set_write_timeout(self, timeout)
    }
}

impl<S: Stream + ?Sized> Stream for &mut S {
    fn shutdown_write(&mut self) -> io::Result<()> {
        (**self).shutdown_write()
    }
    fn set_read_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_read_timeout(timeout)
    }
    fn set_write_timeout(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        (**self).set_write_timeout(timeout)
    }
}

use crate::adapter::{ClientSide, ServerSide, ServerStep};
pub use crate::adapter::{Error, Rejection};

const READ_CHUNK: usize = 16 * 1024;

/// A WebSocket over a blocking stream. See the [module docs](self).
pub struct WebSocket<S: Stream> {
    stream: S,
    conn: Connection,
    epoch: std::time::Instant,
    finished: bool,
    read_buf: Box<[u8]>,
}

impl<S: Stream> fmt::Debug for WebSocket<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WebSocket")
            .field("conn", &self.conn)
            .finish_non_exhaustive()
    }
}

impl<S: Stream> WebSocket<S> {
    /// Run the client handshake for `request` over `stream` (which the caller
    /// connected to [`ClientRequest::connect_addr`], with TLS for `wss://`).
    /// The whole handshake is bounded by [`Config::handshake_timeout`] when
    /// the stream supports read timeouts.
    pub fn connect(
        mut stream: S,
        request: &ClientRequest,
        config: Config,
    ) -> Result<(Self, Accepted), Error> {
        let deadline = std::time::Instant::now() + config.handshake_timeout;
        let (mut side, out) = ClientSide::new(request, &config)?;
        stream.write_all(&out)?;
        stream.flush()?;
        let accepted = loop {
            read_handshake(&mut stream, &mut side.buf, deadline)?;
            if let Some(a) = side.step()? {
                break a;
            }
        };
        let conn = side.into_connection(config, &accepted);
        Ok((Self::from_connection(stream, conn), accepted))
    }

    /// Run the server handshake, accepting any valid request without a
    /// subprotocol.
    pub fn accept(stream: S, config: Config) -> Result<Self, Error> {
        Self::accept_with(stream, config, |_| Ok(AcceptOptions::new()))
    }

    /// Run the server handshake; `decide` sees the request (path, origin,
    /// subprotocols, headers) and accepts or rejects it. Invalid requests are
    /// answered (400, 426, ...) without calling `decide`; a client that does
    /// not complete its request within [`Config::handshake_timeout`] is
    /// dropped ([`Error::HandshakeTimeout`]).
    pub fn accept_with<F>(mut stream: S, config: Config, decide: F) -> Result<Self, Error>
    where
        F: FnOnce(&IncomingRequest) -> Result<AcceptOptions, Rejection>,
    {
        let deadline = std::time::Instant::now() + config.handshake_timeout;
        let mut side = ServerSide::new(&config);
        let mut decide = Some(decide);
        loop {
            read_handshake(&mut stream, &mut side.buf, deadline)?;
            match side.step(&config, &mut decide) {
                ServerStep::Partial => {}
                ServerStep::Accepted { conn, response } => {
                    stream.write_all(&response)?;
                    stream.flush()?;
                    return Ok(Self::from_connection(stream, *conn));
                }
                ServerStep::Refused { response, error } => {
                    let _ = stream.write_all(&response).and_then(|_| stream.flush());
                    linger(&mut stream);
                    return Err(error);
                }
            }
        }
    }

    /// Drive an existing connection (e.g. after a handshake done elsewhere).
    pub fn from_connection(stream: S, conn: Connection) -> Self {
        WebSocket {
            stream,
            conn,
            epoch: std::time::Instant::now(),
            finished: false,
            read_buf: vec![0u8; READ_CHUNK].into_boxed_slice(),
        }
    }

    fn now(&self) -> Instant {
        Instant::from_duration(self.epoch.elapsed())
    }

    /// Block until the next event. Pongs and close replies are flushed before
    /// it returns. After [`Event::Closed`] the transport is done (shut down
    /// as §7.1.1 asks) and further calls return [`Error::Closed`]; after an
    /// `Err`, the close frame was sent and the transport shut down.
    pub fn read(&mut self) -> Result<Event, Error> {
        if self.finished {
            return Err(Error::Closed);
        }
        let mut buf = core::mem::take(&mut self.read_buf);
        let result = self.read_with(&mut buf);
        self.read_buf = buf;
        result
    }

    fn read_with(&mut self, buf: &mut [u8]) -> Result<Event, Error> {
        loop {
            match self.conn.poll_event() {
                Ok(Some(ev)) => {
                    if matches!(ev, Event::Closed(_)) {
                        self.finish(buf);
                    } else {
                        // Get pongs out promptly. A failure here must not
                        // lose the event: what was not written stays queued
                        // and the next call reports the error.
                        let _ = self.flush();
                    }
                    return Ok(ev);
                }
                Ok(None) => {}
                Err(e) => {
                    self.finish(buf);
                    return Err(e.into());
                }
            }
            self.flush()?;
            self.read_once(buf)?;
        }
    }

    /// Block until the next data message, skipping pings and pongs. `None`
    /// once the connection is closed.
    pub fn read_message(&mut self) -> Result<Option<Message>, Error> {
        loop {
            match self.read()? {
                Event::Message(m) => return Ok(Some(m)),
                Event::Closed(_) => return Ok(None),
                _ => {}
            }
        }
    }

    /// One read from the stream into the connection, bounded by the next
    /// deadline; runs the timers.
    fn read_once(&mut self, buf: &mut [u8]) -> Result<(), Error> {
        let now = self.now();
        self.conn.handle_timeout(now);
        let timeout = self.conn.poll_timeout(now).map(|d| {
            // a zero timeout means "block" to the OS: use 1 ms instead
            (d - now).max(Duration::from_millis(1))
        });
        self.stream.set_read_timeout(timeout)?;
        match self.stream.read(buf) {
            Ok(0) => self.conn.receive_eof(),
            Ok(n) => self.conn.receive(&buf[..n]),
            Err(e) if is_timeout(&e) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
        let now = self.now();
        self.conn.handle_timeout(now);
        Ok(())
    }

    /// The connection ended: flush our frames and close the transport the way
    /// the state machine says. Errors are ignored: the peer may be gone.
    fn finish(&mut self, buf: &mut [u8]) {
        self.finished = true;
        // A peer that never reads must not block us forever.
        let close_timeout = self.conn.config().close_timeout;
        let _ = self
            .stream
            .set_write_timeout(Some(close_timeout.max(Duration::from_millis(1))));
        let _ = self.flush();
        let failed = self.conn.error().is_some();
        // A client waits for the server to close first (§7.1.1), bounded by
        // the close timeout.
        while !self.conn.should_close_transport() {
            if self.read_once(buf).is_err() {
                break;
            }
            while let Ok(Some(_)) = self.conn.poll_event() {}
            if self.flush().is_err() {
                break;
            }
        }
        if failed {
            linger(&mut self.stream);
        } else {
            let _ = self.stream.shutdown_write();
        }
    }

    /// Write everything the connection has queued (vectored writes). What a
    /// failed or timed-out write leaves stays queued in the connection and
    /// goes out first on the next call, so the frame stream is never
    /// corrupted.
    pub fn flush(&mut self) -> Result<(), Error> {
        loop {
            let mut slices = [IoSlice::new(&[]); 64];
            let k = self.conn.transmit_slices(&mut slices);
            if k == 0 {
                break;
            }
            // one buffer: a plain write (`send` on a socket, a shorter
            // kernel path than `writev`; see the tokio adapter)
            let written = if k == 1 {
                self.stream.write(&slices[0])
            } else {
                self.stream.write_vectored(&slices[..k])
            };
            let n = match written {
                Ok(0) => return Err(io::Error::from(io::ErrorKind::WriteZero).into()),
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e.into()),
            };
            self.conn.advance_transmit(n);
        }
        self.stream.flush()?;
        Ok(())
    }

    /// Send a message and flush.
    pub fn send(&mut self, message: Message) -> Result<(), Error> {
        self.ensure_open()?;
        match self.conn.send(message) {
            Ok(()) => {}
            // The queue empties on flush, and an empty queue takes any message.
            Err(e) if e.is_queue_full() => {
                self.flush()?;
                self.conn.send(e.value)?;
            }
            Err(e) => return Err(e.into()),
        }
        self.flush()
    }

    /// Send one fragment of a message and flush (see
    /// [`Connection::send_fragment`]).
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: Bytes,
        fin: bool,
    ) -> Result<(), Error> {
        self.ensure_open()?;
        match self.conn.send_fragment(kind, data, fin) {
            Ok(()) => {}
            Err(e) if e.is_queue_full() => {
                self.flush()?;
                self.conn.send_fragment(kind, e.value, fin)?;
            }
            Err(e) => return Err(e.into()),
        }
        self.flush()
    }

    /// Send a ping and flush.
    pub fn ping(&mut self, payload: Bytes) -> Result<(), Error> {
        self.ensure_open()?;
        self.conn.ping(payload)?;
        self.flush()
    }

    /// Start the close handshake and flush. Keep calling [`read`](Self::read)
    /// until it returns [`Event::Closed`] to complete the handshake.
    pub fn close(&mut self, frame: Option<CloseFrame>) -> Result<(), Error> {
        self.ensure_open()?;
        self.conn.close(frame)?;
        self.flush()
    }

    fn ensure_open(&self) -> Result<(), Error> {
        if self.finished {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// The underlying connection (state, pending output, ...).
    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    /// The underlying connection, mutably.
    pub fn connection_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    /// The stream.
    pub fn get_ref(&self) -> &S {
        &self.stream
    }

    /// The stream, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Give back the stream.
    pub fn into_inner(self) -> S {
        self.stream
    }
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

/// One read during the handshake, bounded by `deadline`.
fn read_handshake<S: Stream>(
    stream: &mut S,
    buf: &mut BytesMut,
    deadline: std::time::Instant,
) -> Result<(), Error> {
    let mut chunk = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return Err(Error::HandshakeTimeout);
        }
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut chunk) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "EOF during the WebSocket handshake",
                )
                .into())
            }
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                return Ok(());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if is_timeout(&e) => {}
            Err(e) => return Err(e.into()),
        }
    }
}

/// Half-close, then drain what the peer still sends for a short while, so the
/// kernel does not answer unread data with a reset that would destroy the
/// response or close frame we just wrote.
fn linger<S: Stream>(stream: &mut S) {
    let _ = stream.shutdown_write();
    let deadline = std::time::Instant::now() + Duration::from_secs(2);
    let mut sink = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        match stream.read(&mut sink) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return,
        }
    }
}
