//! An async driver for tokio (feature `tokio`).
//!
//! [`WebSocketStream`] runs a [`Connection`] over any
//! `AsyncRead + AsyncWrite + Unpin` transport — a `TcpStream`, a TLS stream,
//! hyper's upgraded connection — and implements the ecosystem's traits:
//! [`Stream`]`<Item = Result<Message, Error>>` and [`Sink`]`<Message>`.
//!
//! What it does for you:
//! * pongs and close replies are written while you read, even if you never
//!   write;
//! * keepalive and close deadlines run on `tokio::time` from the core's
//!   `poll_timeout`;
//! * queued chunks go out with vectored writes;
//! * `poll_ready` waits while the outbound queue is over
//!   [`Limits::max_outbound`](crate::Limits::max_outbound) (backpressure);
//! * the transport is closed the way RFC 6455 §7.1.1 asks (server first,
//!   and after an error a lingering close so the peer still gets our close
//!   frame);
//! * [`split`](WebSocketStream::split) gives a read half and a write half
//!   that keep all of the above.
//!
//! The handshake helpers ([`connect`], [`client_async`], [`accept`],
//! [`accept_with`]) are bounded by
//! [`Config::handshake_timeout`](crate::Config::handshake_timeout).
//!
//! ```no_run
//! use futures_util::{SinkExt, StreamExt};
//! use wsproto::{Config, Message};
//!
//! # async fn run() -> Result<(), wsproto::tokio::Error> {
//! // server: echo every message
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:9001").await?;
//! tokio::spawn(async move {
//!     while let Ok((tcp, _)) = listener.accept().await {
//!         tokio::spawn(async move {
//!             let mut ws = wsproto::tokio::accept(tcp, Config::default()).await?;
//!             while let Some(msg) = ws.next().await {
//!                 ws.send(msg?).await?;
//!             }
//!             Ok::<_, wsproto::tokio::Error>(())
//!         });
//!     }
//! });
//!
//! // client
//! let (mut ws, _) = wsproto::tokio::connect("ws://127.0.0.1:9001/", Config::default()).await?;
//! ws.send(Message::text("hello")).await?;
//! assert_eq!(ws.next().await.transpose()?, Some(Message::text("hello")));
//! ws.close(None).await?;
//! # Ok(()) }
//! ```

use std::boxed::Box;
use std::fmt;
use std::future::{poll_fn, Future};
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{ready, Context, Poll, Wake, Waker};
use std::time::Duration;

use ::tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use ::tokio::net::TcpStream;
use ::tokio::time::{sleep_until, Sleep};
use bytes::Bytes;
use futures_core::Stream;
use futures_sink::Sink;

use crate::adapter::{ClientSide, ServerSide, ServerStep};
pub use crate::adapter::{Error, Rejection};
use crate::handshake::{AcceptOptions, Accepted, ClientRequest, IncomingRequest};
use crate::{
    ApiMisuse, CapacityError, CloseFrame, CloseReason, Config, Connection, Event, Instant, Message,
    MessageKind,
};

/// How much to read at a time into the connection's input buffer.
const READ_SIZE: usize = 32 * 1024;
/// The most a single read reserves for a large frame.
const MAX_READ: usize = 1 << 20;
/// Chunks gathered for one vectored write.
const MAX_IOV: usize = 64;
/// How long to drain a peer after a failure before closing anyway.
const LINGER: Duration = Duration::from_secs(2);

// ------------------------------------------------------------- handshakes

/// Connect to a `ws://` URL over plain TCP (with `TCP_NODELAY`) and run the
/// client handshake. For `wss://`, open the TLS stream yourself and use
/// [`client_async`].
pub async fn connect(
    url: &str,
    config: Config,
) -> Result<(WebSocketStream<TcpStream>, Accepted), Error> {
    let request = ClientRequest::from_url(url)?;
    if request.is_secure() {
        return Err(Error::Io(io::Error::new(
            io::ErrorKind::Unsupported,
            "wss:// needs a TLS stream: connect it yourself and use client_async",
        )));
    }
    let (host, port) = request.connect_addr();
    let tcp = ::tokio::time::timeout(config.handshake_timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| Error::HandshakeTimeout)??;
    tcp.set_nodelay(true)?;
    client_async(&request, tcp, config).await
}

/// Run the client handshake for `request` over an already connected stream
/// (plain or TLS).
pub async fn client_async<S>(
    request: &ClientRequest,
    stream: S,
    config: Config,
) -> Result<(WebSocketStream<S>, Accepted), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    // Boxed: the handshake's state is dead once it is done, and inline it
    // would stay part of the caller's future (a connection's task) for good.
    Box::pin(client_handshake(request, stream, config)).await
}

async fn client_handshake<S>(
    request: &ClientRequest,
    mut stream: S,
    config: Config,
) -> Result<(WebSocketStream<S>, Accepted), Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (mut side, out) = ClientSide::new(request, &config)?;
    let handshake = async {
        stream.write_all(&out).await?;
        stream.flush().await?;
        loop {
            if stream.read_buf(&mut side.buf).await? == 0 {
                return Err(eof_in_handshake());
            }
            if let Some(accepted) = side.step()? {
                return Ok(accepted);
            }
        }
    };
    let accepted = ::tokio::time::timeout(config.handshake_timeout, handshake)
        .await
        .map_err(|_| Error::HandshakeTimeout)??;
    let conn = side.into_connection(config, &accepted);
    Ok((WebSocketStream::from_connection(stream, conn), accepted))
}

/// Run the server handshake, accepting any valid request without a
/// subprotocol.
pub async fn accept<S>(stream: S, config: Config) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    accept_with(stream, config, |_| Ok(AcceptOptions::new())).await
}

/// Run the server handshake. `decide` sees the request (path, query, origin,
/// subprotocols, headers) and accepts it with [`AcceptOptions`] or rejects it
/// with any status. Invalid requests get their 400/426/431 answer without
/// `decide` being called; a client that does not complete its request within
/// [`Config::handshake_timeout`] is dropped ([`Error::HandshakeTimeout`]).
pub async fn accept_with<S, F>(
    stream: S,
    config: Config,
    decide: F,
) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&IncomingRequest) -> Result<AcceptOptions, Rejection>,
{
    // Boxed: the handshake's state (about 2 KiB) is dead once it is done,
    // and inline it would stay part of the caller's future (a connection's
    // task) for good.
    Box::pin(server_handshake(stream, config, decide)).await
}

async fn server_handshake<S, F>(
    mut stream: S,
    config: Config,
    decide: F,
) -> Result<WebSocketStream<S>, Error>
where
    S: AsyncRead + AsyncWrite + Unpin,
    F: FnOnce(&IncomingRequest) -> Result<AcceptOptions, Rejection>,
{
    let mut side = ServerSide::new(&config);
    let mut decide = Some(decide);
    let handshake = async {
        loop {
            if stream.read_buf(&mut side.buf).await? == 0 {
                return Err(eof_in_handshake());
            }
            match side.step(&config, &mut decide) {
                ServerStep::Partial => {}
                ServerStep::Accepted { conn, response } => {
                    stream.write_all(&response).await?;
                    stream.flush().await?;
                    return Ok(Ok(*conn));
                }
                ServerStep::Refused { response, error } => {
                    let _ = stream.write_all(&response).await;
                    let _ = stream.flush().await;
                    return Ok(Err(error));
                }
            }
        }
    };
    match ::tokio::time::timeout(config.handshake_timeout, handshake).await {
        Err(_) => Err(Error::HandshakeTimeout),
        Ok(Err(e)) => Err(e),
        Ok(Ok(Ok(conn))) => Ok(WebSocketStream::from_connection(stream, conn)),
        Ok(Ok(Err(error))) => {
            linger(&mut stream).await;
            Err(error)
        }
    }
}

fn eof_in_handshake() -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        "EOF during the WebSocket handshake",
    ))
}

/// Half-close, then drain for a short while so a reset does not destroy the
/// response we just wrote.
async fn linger<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S) {
    let _ = stream.shutdown().await;
    let drain = async {
        let mut sink = [0u8; 1024];
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = ::tokio::time::timeout(LINGER, drain).await;
}

// ----------------------------------------------------------------- wakers

/// Both halves of a split stream drive the same transport, which keeps one
/// waker per direction. Every transport poll registers this proxy, which
/// wakes the reader and the writer, so neither misses a readiness change the
/// other one registered for.
#[derive(Default)]
struct Wakers {
    slots: Mutex<[Option<Waker>; 2]>,
}

const READER: usize = 0;
const WRITER: usize = 1;

impl Wakers {
    /// Wake the reader: a command from the write half (a close, a ping)
    /// started a timer that only a polled reader arms.
    fn wake_reader(&self) {
        let w = self.slots.lock().unwrap_or_else(|p| p.into_inner())[READER].take();
        if let Some(w) = w {
            w.wake();
        }
    }

    fn register(&self, who: usize, waker: &Waker) {
        let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
        match &slots[who] {
            Some(w) if w.will_wake(waker) => {}
            _ => slots[who] = Some(waker.clone()),
        }
    }
}

impl Wake for Wakers {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref()
    }
    fn wake_by_ref(self: &Arc<Self>) {
        let woken = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            [slots[0].take(), slots[1].take()]
        };
        for w in woken.into_iter().flatten() {
            w.wake();
        }
    }
}

// ------------------------------------------------------------------ inner

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Normal operation.
    Open,
    /// The connection ended; flushing and waiting for the transport rules.
    Finishing,
    /// Shutting down our write half.
    ShuttingDown,
    /// After a failure: reading until EOF or the linger deadline.
    Lingering,
    /// Over: the end was (or is about to be) reported.
    Done,
}

struct Inner<S> {
    io: S,
    conn: Connection,
    epoch: ::tokio::time::Instant,
    sleep: Option<Pin<Box<Sleep>>>,
    /// The deadline `sleep` is set to.
    armed: Option<Instant>,
    /// Bounds the whole finishing phase (flush, wait for EOF).
    finish_deadline: Option<Pin<Box<Sleep>>>,
    phase: Phase,
    /// What the reader reports once the transport is finished.
    end: Option<Result<Event, Error>>,
    end_reported: bool,
    close_reason: Option<CloseReason>,
    /// A message `start_send` took while the queue was full.
    backlog: Option<Message>,
    /// The connection failed (lingering close needed).
    failed: bool,
    /// The transport's read side reached EOF.
    read_eof: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Inner<S> {
    fn now(&self) -> Instant {
        Instant::from_duration(self.epoch.elapsed())
    }

    /// Write queued output straight from the connection's queue (vectored).
    /// `Ready(Ok)` once everything is written and flushed.
    fn poll_write_out(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let n = if self.io.is_write_vectored() {
                let mut slices = [IoSlice::new(&[]); MAX_IOV];
                match self.conn.transmit_slices(&mut slices) {
                    0 => return Pin::new(&mut self.io).poll_flush(cx),
                    // One buffer: a plain write. On a TCP socket that is
                    // `send` rather than `writev`, a shorter kernel path:
                    // the 32 B loopback echo took 6.3-7.0 instead of
                    // 6.7-8.3 us of server CPU per message (perf/loadgen.sh).
                    1 => ready!(Pin::new(&mut self.io).poll_write(cx, &slices[0]))?,
                    k => ready!(Pin::new(&mut self.io).poll_write_vectored(cx, &slices[..k]))?,
                }
            } else {
                let Some(chunk) = self.conn.peek_transmit() else {
                    return Pin::new(&mut self.io).poll_flush(cx);
                };
                ready!(Pin::new(&mut self.io).poll_write(cx, chunk))?
            };
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.conn.advance_transmit(n);
        }
    }

    fn out_pending(&self) -> usize {
        self.conn.pending_output()
    }

    /// One read into the connection. `Ready(Ok(0))` is EOF (already handed
    /// to the connection).
    fn poll_read_in(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<usize>> {
        // room for the rest of the frame being read (up to a cap), so a
        // large message comes in one read rather than many
        let want = self.conn.wanted_input().clamp(READ_SIZE, MAX_READ);
        let buf = self.conn.input_buffer();
        buf.reserve(want);
        let n = match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, buf) {
            Poll::Ready(r) => r?,
            Poll::Pending => {
                // An idle connection should not hold a read buffer: release
                // it while nothing is buffered (the next read allocates).
                let buf = self.conn.input_buffer();
                if buf.is_empty() {
                    *buf = bytes::BytesMut::new();
                }
                return Poll::Pending;
            }
        };
        if n == 0 {
            self.read_eof = true;
            self.conn.receive_eof();
        }
        Poll::Ready(Ok(n))
    }

    /// Run the connection's timers: `true` if a deadline was due and handled
    /// (the caller must poll events and output again), else the sleep is
    /// armed for the next deadline and registered with `cx`.
    fn poll_timers(&mut self, cx: &mut Context<'_>) -> bool {
        loop {
            let next = if self.conn.has_timers() {
                let now = self.now();
                self.conn.poll_timeout(now).map(|deadline| (now, deadline))
            } else {
                // no deadline whatever the time: skip the clock read (about
                // 1% of the server's CPU in the 32 B echo)
                None
            };
            let Some((now, deadline)) = next else {
                self.sleep = None;
                self.armed = None;
                return false;
            };
            if deadline <= now {
                self.conn.handle_timeout(now);
                return true;
            }
            if self.armed != Some(deadline) {
                self.armed = Some(deadline);
                let at = self.epoch + deadline.as_duration();
                match &mut self.sleep {
                    Some(s) => s.as_mut().reset(at),
                    None => self.sleep = Some(Box::pin(sleep_until(at))),
                }
            }
            let sleep = self.sleep.as_mut().expect("armed above");
            if sleep.as_mut().poll(cx).is_pending() {
                return false;
            }
            // The sleep fired (tokio never completes one early): loop to
            // handle the deadline at the new `now`.
            self.armed = None;
            self.sleep = None;
        }
    }

    /// The next event, driving reads, writes and timers as needed.
    fn poll_event(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Event, Error>>> {
        loop {
            if self.phase == Phase::Open {
                match self.conn.poll_event() {
                    Ok(Some(Event::Closed(reason))) => {
                        self.close_reason = Some(reason.clone());
                        self.end = Some(Ok(Event::Closed(reason)));
                        self.phase = Phase::Finishing;
                    }
                    Ok(Some(ev)) => {
                        // get pongs and close replies out promptly; a
                        // pending write is finished on the next poll
                        if let Poll::Ready(Err(e)) = self.poll_write_out(cx) {
                            self.io_failed();
                            return Poll::Ready(Some(Err(e.into())));
                        }
                        return Poll::Ready(Some(Ok(ev)));
                    }
                    Ok(None) => {}
                    Err(e) => {
                        self.failed = true;
                        self.end = Some(Err(e.into()));
                        self.phase = Phase::Finishing;
                    }
                }
            }
            if self.phase != Phase::Open {
                ready!(self.poll_finish(cx));
                if self.end_reported {
                    return Poll::Ready(None);
                }
                self.end_reported = true;
                return Poll::Ready(self.end.take());
            }
            if let Poll::Ready(Err(e)) = self.poll_write_out(cx) {
                self.io_failed();
                return Poll::Ready(Some(Err(e.into())));
            }
            if self.poll_timers(cx) {
                continue;
            }
            match self.poll_read_in(cx) {
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    self.io_failed();
                    return Poll::Ready(Some(Err(e.into())));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    /// The transport broke: nothing more can be done on it.
    fn io_failed(&mut self) {
        self.phase = Phase::Done;
        self.end_reported = true;
    }

    /// Close the transport as the state machine says: flush, wait for
    /// `should_close_transport`, shut down our half, and after a failure
    /// drain the peer for a short while.
    fn poll_finish(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        loop {
            match self.phase {
                Phase::Open => unreachable!("finishing an open connection"),
                Phase::Finishing => {
                    // Our own bound on the whole finish (flush, wait for
                    // EOF), independent of the core's close timer.
                    let give_up = self.finish_deadline.get_or_insert_with(|| {
                        let t = ::tokio::time::Instant::now() + self.conn.config().close_timeout;
                        Box::pin(sleep_until(t))
                    });
                    if give_up.as_mut().poll(cx).is_ready() {
                        self.phase = Phase::ShuttingDown;
                        continue;
                    }
                    let flushed = match self.poll_write_out(cx) {
                        Poll::Ready(Ok(())) => true,
                        Poll::Ready(Err(_)) => {
                            self.phase = Phase::Done;
                            continue;
                        }
                        Poll::Pending => false,
                    };
                    // Only once our buffered chunks are written too: the
                    // core counts them as sent when they leave its queue.
                    if flushed && self.conn.should_close_transport() {
                        self.phase = Phase::ShuttingDown;
                        continue;
                    }
                    if self.poll_timers(cx) {
                        continue;
                    }
                    if self.read_eof {
                        // nothing more to read: wait for the write, a timer
                        // or the give-up deadline (all registered above)
                        return Poll::Pending;
                    }
                    // A client waits for the server's EOF (§7.1.1); whatever
                    // arrives meanwhile is discarded by the connection.
                    match self.poll_read_in(cx) {
                        Poll::Ready(Ok(_)) => while let Ok(Some(_)) = self.conn.poll_event() {},
                        Poll::Ready(Err(_)) => self.phase = Phase::Done,
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Phase::ShuttingDown => {
                    let _ = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
                    if self.failed && !self.read_eof {
                        self.phase = Phase::Lingering;
                        let at = ::tokio::time::Instant::now() + LINGER;
                        self.sleep = Some(Box::pin(sleep_until(at)));
                        self.armed = None;
                    } else {
                        self.phase = Phase::Done;
                    }
                }
                Phase::Lingering => {
                    if let Some(s) = &mut self.sleep {
                        if s.as_mut().poll(cx).is_ready() {
                            self.phase = Phase::Done;
                            continue;
                        }
                    }
                    let buf = self.conn.input_buffer();
                    buf.clear();
                    buf.reserve(READ_SIZE);
                    match tokio_util::io::poll_read_buf(Pin::new(&mut self.io), cx, buf) {
                        Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => self.phase = Phase::Done,
                        Poll::Ready(Ok(_)) => {}
                        Poll::Pending => return Poll::Pending,
                    }
                }
                Phase::Done => {
                    self.sleep = None;
                    self.finish_deadline = None;
                    self.conn.input_buffer().clear();
                    return Poll::Ready(());
                }
            }
        }
    }

    /// Backpressure for senders: `Ready(Ok)` when a message may be queued.
    fn poll_ready_to_send(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if self.phase != Phase::Open || !self.conn.is_open() {
                return Poll::Ready(Err(self.send_error()));
            }
            if let Some(m) = self.backlog.take() {
                match self.conn.send(m) {
                    Ok(()) => {}
                    Err(e) if e.is_queue_full() => self.backlog = Some(e.value),
                    Err(e) => return Poll::Ready(Err(e.error.into())),
                }
            }
            let limit = self.conn.config().limits.max_outbound;
            if self.backlog.is_none() && self.out_pending() <= limit {
                return Poll::Ready(Ok(()));
            }
            match self.poll_write_out(cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => {
                    self.io_failed();
                    return Poll::Ready(Err(e.into()));
                }
                Poll::Pending => {
                    if self.backlog.is_none() && self.out_pending() <= limit {
                        return Poll::Ready(Ok(()));
                    }
                    return Poll::Pending;
                }
            }
        }
    }

    fn send_error(&self) -> Error {
        match self.conn.error() {
            Some(e) => Error::Ws(e.clone()),
            None if self.phase == Phase::Open => Error::Ws(ApiMisuse::NotOpen.into()),
            None => Error::Closed,
        }
    }

    fn queue(&mut self, message: Message) -> Result<(), Error> {
        if self.backlog.is_some() {
            // `poll_ready` was not awaited: refuse rather than grow
            let queued = self.out_pending();
            let limit = self.conn.config().limits.max_outbound;
            return Err(Error::Ws(
                CapacityError::OutboundQueueFull { queued, limit }.into(),
            ));
        }
        match self.conn.send(message) {
            Ok(()) => Ok(()),
            Err(e) if e.is_queue_full() => {
                self.backlog = Some(e.value);
                Ok(())
            }
            Err(e) => match self.conn.error() {
                // report why the connection ended rather than "not open"
                Some(fatal) => Err(Error::Ws(fatal.clone())),
                None => Err(e.into()),
            },
        }
    }

    fn poll_flush_all(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        loop {
            if let Some(m) = self.backlog.take() {
                match self.conn.send(m) {
                    Ok(()) => {}
                    Err(e) if e.is_queue_full() => self.backlog = Some(e.value),
                    Err(e) => return Poll::Ready(Err(e.error.into())),
                }
            }
            if let Err(e) = ready!(self.poll_write_out(cx)) {
                self.io_failed();
                return Poll::Ready(Err(e.into()));
            }
            if self.backlog.is_none() {
                return Poll::Ready(Ok(()));
            }
        }
    }
}

// -------------------------------------------------------- WebSocketStream

struct Shared<S> {
    inner: Mutex<Inner<S>>,
    wakers: Arc<Wakers>,
}

impl<S> Shared<S> {
    fn lock(&self) -> MutexGuard<'_, Inner<S>> {
        // a panic while holding the lock leaves a consistent Connection (it
        // never panics mid-transition); keep going
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A context whose waker wakes both halves, registering `cx`'s waker as
    /// `who`.
    fn proxy(&self, who: usize, cx: &Context<'_>) -> Waker {
        self.wakers.register(who, cx.waker());
        Waker::from(self.wakers.clone())
    }
}

/// A WebSocket over an async transport. See the [module docs](self).
///
/// Read with [`StreamExt::next`](futures_core::Stream) (messages; pings and
/// pongs are handled for you) or [`next_event`](Self::next_event) (every
/// event, required in streaming mode); write with
/// [`SinkExt::send`](futures_sink::Sink) or the inherent methods. Keep
/// reading: timers, pongs and the close handshake progress while the stream
/// is polled.
pub struct WebSocketStream<S> {
    shared: Arc<Shared<S>>,
}

impl<S> fmt::Debug for WebSocketStream<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.shared.lock();
        f.debug_struct("WebSocketStream")
            .field("conn", &inner.conn)
            .field("phase", &inner.phase)
            .finish_non_exhaustive()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WebSocketStream<S> {
    /// Drive `conn` over `io` — for a handshake done elsewhere (hyper, axum):
    /// build `conn` with [`Connection::after_handshake`].
    pub fn from_connection(io: S, conn: Connection) -> Self {
        let inner = Inner {
            io,
            conn,
            epoch: ::tokio::time::Instant::now(),
            sleep: None,
            armed: None,
            finish_deadline: None,
            phase: Phase::Open,
            end: None,
            end_reported: false,
            close_reason: None,
            backlog: None,
            failed: false,
            read_eof: false,
        };
        WebSocketStream {
            shared: Arc::new(Shared {
                inner: Mutex::new(inner),
                wakers: Arc::default(),
            }),
        }
    }

    fn poll_event_as(
        &self,
        who: usize,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Event, Error>>> {
        let waker = self.shared.proxy(who, cx);
        let mut cx = Context::from_waker(&waker);
        self.shared.lock().poll_event(&mut cx)
    }

    /// The next event: messages, fragments (streaming mode), pings, pongs,
    /// and finally [`Event::Closed`] (once the transport is closed too).
    /// `None` after the end was reported.
    pub async fn next_event(&mut self) -> Option<Result<Event, Error>> {
        poll_fn(|cx| self.poll_event_as(READER, cx)).await
    }

    /// Send a message and flush it.
    pub async fn send_message(&mut self, message: Message) -> Result<(), Error> {
        poll_fn(|cx| self.poll_send_ready(WRITER, cx)).await?;
        self.shared.lock().queue(message)?;
        poll_fn(|cx| self.poll_flush_as(WRITER, cx)).await
    }

    /// Send one fragment of a message and flush it (see
    /// [`Connection::send_fragment`]).
    pub async fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: Bytes,
        fin: bool,
    ) -> Result<(), Error> {
        poll_fn(|cx| self.poll_send_ready(WRITER, cx)).await?;
        self.shared.lock().conn.send_fragment(kind, data, fin)?;
        poll_fn(|cx| self.poll_flush_as(WRITER, cx)).await
    }

    /// Send a ping and flush it. The pong arrives as [`Event::Pong`] from
    /// [`next_event`](Self::next_event).
    pub async fn ping(&mut self, payload: Bytes) -> Result<(), Error> {
        self.shared.lock().conn.ping(payload)?;
        poll_fn(|cx| self.poll_flush_as(WRITER, cx)).await
    }

    /// Start the close handshake and wait for it to finish (reading and
    /// discarding any messages still in flight), bounded by
    /// [`Config::close_timeout`]. Returns how the connection ended.
    pub async fn close(&mut self, frame: Option<CloseFrame>) -> Result<CloseReason, Error> {
        {
            let mut inner = self.shared.lock();
            if inner.phase == Phase::Open && inner.conn.is_open() {
                inner.conn.close(frame)?;
            }
        }
        while let Some(ev) = self.next_event().await {
            if let Event::Closed(reason) = ev? {
                return Ok(reason);
            }
        }
        self.close_reason().ok_or(Error::Closed)
    }

    /// How the connection ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.shared.lock().close_reason.clone()
    }

    /// Run `f` with the connection (state, pending output, config). Do not
    /// feed it input; commands queued here are written on the next poll.
    pub fn with_connection<R>(&self, f: impl FnOnce(&mut Connection) -> R) -> R {
        f(&mut self.shared.lock().conn)
    }

    fn poll_send_ready(&self, who: usize, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let waker = self.shared.proxy(who, cx);
        let mut cx = Context::from_waker(&waker);
        self.shared.lock().poll_ready_to_send(&mut cx)
    }

    fn poll_flush_as(&self, who: usize, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        let waker = self.shared.proxy(who, cx);
        let mut cx = Context::from_waker(&waker);
        self.shared.lock().poll_flush_all(&mut cx)
    }

    fn poll_close_as(&self, who: usize, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        {
            let mut inner = self.shared.lock();
            if inner.phase == Phase::Open && inner.conn.is_open() {
                inner.conn.close(None)?;
                drop(inner);
                self.shared.wakers.wake_reader();
            }
        }
        match ready!(self.poll_flush_as(who, cx)) {
            Ok(()) | Err(Error::Closed) => Poll::Ready(Ok(())),
            Err(e) => Poll::Ready(Err(e)),
        }
    }

    /// Split into a read half ([`Stream`]) and a write half ([`Sink`]) that
    /// can live in different tasks. Both drive the same connection: pongs,
    /// close replies and timers keep working as long as the read half is
    /// polled.
    pub fn split(self) -> (WriteHalf<S>, ReadHalf<S>) {
        (
            WriteHalf {
                ws: WebSocketStream {
                    shared: self.shared.clone(),
                },
            },
            ReadHalf { ws: self },
        )
    }
}

fn message_of(ev: Result<Event, Error>) -> Option<Result<Message, Error>> {
    match ev {
        Ok(Event::Message(m)) => Some(Ok(m)),
        Ok(Event::Fragment { .. }) => Some(Err(Error::Ws(ApiMisuse::StreamingMode.into()))),
        Ok(_) => None,
        Err(e) => Some(Err(e)),
    }
}

fn poll_next_message<S: AsyncRead + AsyncWrite + Unpin>(
    ws: &WebSocketStream<S>,
    cx: &mut Context<'_>,
) -> Poll<Option<Result<Message, Error>>> {
    loop {
        match ready!(ws.poll_event_as(READER, cx)) {
            None => return Poll::Ready(None),
            Some(ev) => {
                if let Some(m) = message_of(ev) {
                    return Poll::Ready(Some(m));
                }
            }
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for WebSocketStream<S> {
    type Item = Result<Message, Error>;

    /// Messages; pings, pongs and the close handshake are handled inside.
    /// Ends (`None`) when the connection is closed;
    /// [`close_reason`](WebSocketStream::close_reason) says how.
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        poll_next_message(&self, cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WebSocketStream<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_send_ready(WRITER, cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.shared.lock().queue(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_flush_as(WRITER, cx)
    }

    /// Queue a close frame (no status code) and flush. The handshake
    /// completes while the stream (or read half) is read.
    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.poll_close_as(WRITER, cx)
    }
}

/// The read half of a split [`WebSocketStream`].
pub struct ReadHalf<S> {
    ws: WebSocketStream<S>,
}

/// The write half of a split [`WebSocketStream`].
pub struct WriteHalf<S> {
    ws: WebSocketStream<S>,
}

impl<S> fmt::Debug for ReadHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ReadHalf").field(&self.ws).finish()
    }
}

impl<S> fmt::Debug for WriteHalf<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("WriteHalf").field(&self.ws).finish()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> ReadHalf<S> {
    /// The next event (see [`WebSocketStream::next_event`]).
    pub async fn next_event(&mut self) -> Option<Result<Event, Error>> {
        self.ws.next_event().await
    }

    /// How the connection ended, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        self.ws.close_reason()
    }

    /// Put the halves back together. Returns them unchanged if they come from
    /// different streams.
    pub fn reunite(
        self,
        write: WriteHalf<S>,
    ) -> Result<WebSocketStream<S>, (ReadHalf<S>, WriteHalf<S>)> {
        if Arc::ptr_eq(&self.ws.shared, &write.ws.shared) {
            drop(write);
            Ok(self.ws)
        } else {
            Err((self, write))
        }
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> WriteHalf<S> {
    /// Send a message and flush it.
    pub async fn send_message(&mut self, message: Message) -> Result<(), Error> {
        poll_fn(|cx| self.ws.poll_send_ready(WRITER, cx)).await?;
        self.ws.shared.lock().queue(message)?;
        poll_fn(|cx| self.ws.poll_flush_as(WRITER, cx)).await
    }

    /// Send a ping and flush it.
    pub async fn ping(&mut self, payload: Bytes) -> Result<(), Error> {
        self.ws.shared.lock().conn.ping(payload)?;
        poll_fn(|cx| self.ws.poll_flush_as(WRITER, cx)).await
    }

    /// Queue a close frame and flush it; the read half sees the handshake
    /// complete (or time out after [`Config::close_timeout`]).
    pub async fn close_with(&mut self, frame: Option<CloseFrame>) -> Result<(), Error> {
        self.ws.shared.lock().conn.close(frame)?;
        self.ws.shared.wakers.wake_reader();
        poll_fn(|cx| self.ws.poll_flush_as(WRITER, cx)).await
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for ReadHalf<S> {
    type Item = Result<Message, Error>;
    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        poll_next_message(&self.ws, cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Message> for WriteHalf<S> {
    type Error = Error;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.ws.poll_send_ready(WRITER, cx)
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), Error> {
        self.ws.shared.lock().queue(item)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.ws.poll_flush_as(WRITER, cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.ws.poll_close_as(WRITER, cx)
    }
}
