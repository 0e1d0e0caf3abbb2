//! An echo server on one thread and one `mio::Poll`, driving the sans-IO core
//! directly: the worked example of embedding wsproto in your own event loop
//! (walked through in `docs/adapters.md`).
//!
//! ```text
//! cargo run --release --example mio_echo_server -- 127.0.0.1:9001
//! ```
//!
//! Same contract as `echo_server`: echoes text and binary; selects the
//! subprotocol `chat` when offered; a text message `close-me` makes it close
//! with 1000 `server closing`; messages up to 64 MiB. Port 0 picks a free
//! port (printed on stdout).
//!
//! Each client is a small state machine (`Handshaking` → `Open` → `Closing`)
//! that is driven — read, parse, echo, write — whenever mio reports readiness
//! or its deadline passes. mio is edge-triggered, so a drive runs until the
//! socket says `WouldBlock`, or until we choose to stop (backpressure, the
//! fairness budget) and arrange to be driven again. The deadlines of all
//! clients live in one ordered set whose first entry is the `poll` timeout.

use std::collections::{BTreeSet, HashMap};
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use wsproto::handshake::{AcceptOptions, ServerHandshake, Status};
use wsproto::{
    CloseCode, CloseFrame, Config, Connection, ConnectionState, Event, Instant, Message,
};

const LISTENER: Token = Token(0);
/// Bytes asked for per `read` call.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes one client may read per drive before the others get their turn.
const READ_BUDGET: usize = 256 * 1024;
/// Chunks gathered into one `write_vectored` call.
const MAX_IOV: usize = 64;
/// How long a closing client gets to take our last bytes and send its EOF.
const LINGER: Duration = Duration::from_secs(2);

enum State {
    /// Reading the HTTP request. The sans-IO parser has no clock, so the
    /// deadline (`Config::handshake_timeout`) is ours to keep: a client that
    /// connects and never completes its request must not hold a slot.
    Handshaking {
        hs: ServerHandshake,
        buf: BytesMut,
        deadline: Instant,
    },
    /// The WebSocket proper. `backlog` holds an echo the connection refused
    /// (output queue full); no further event is taken until it is queued.
    Open {
        conn: Box<Connection>,
        backlog: Option<Message>,
    },
    /// Over: write what is left of an HTTP error response, send our FIN,
    /// then read until the peer's EOF. Closing a socket with unread input
    /// makes the kernel send a reset, which can destroy the close frame (or
    /// HTTP error) still in flight.
    Closing { deadline: Instant, shut: bool },
}

struct Client {
    tcp: TcpStream,
    state: State,
    /// The HTTP response (101 or an error) not yet written; it goes out
    /// before any frame. Frames stay in the connection until written.
    http_out: Bytes,
    /// Our entry in the timer set.
    timer: Option<Instant>,
}

/// What the event loop does with a client after driving it.
enum Next {
    /// Wait for readiness or the deadline.
    Wait,
    /// The read budget ran out: drive again after the others.
    Again,
    /// Deregister and drop the socket.
    Drop,
}

struct Server {
    poll: Poll,
    listener: TcpListener,
    config: Config,
    clients: HashMap<Token, Client>,
    /// Every client's deadline, earliest first (`now` for a client to drive
    /// again at once).
    timers: BTreeSet<(Instant, Token)>,
    next_token: usize,
    /// The core never reads a clock: its `Instant` is the time since an
    /// epoch of our choosing.
    epoch: std::time::Instant,
}

fn main() -> io::Result<()> {
    let addr = std::env::args().nth(1);
    let addr = addr.as_deref().unwrap_or("127.0.0.1:9001").parse();
    let addr = addr.map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let mut listener = TcpListener::bind(addr)?;
    println!(
        "mio_echo_server listening on ws://{}",
        listener.local_addr()?
    );

    let mut config = Config::default();
    config.limits.max_message = 64 << 20;
    config.limits.max_frame_payload = 64 << 20;
    // permessage-deflate when built with `--features deflate`
    #[cfg(feature = "deflate")]
    {
        config.deflate = Some(wsproto::extension::deflate::DeflateConfig::default());
    }
    // (`config.keepalive_interval` would also find dead peers: the timer set
    // runs every connection's timers.)

    let poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    Server {
        poll,
        listener,
        config,
        clients: HashMap::new(),
        timers: BTreeSet::new(),
        next_token: 1,
        epoch: std::time::Instant::now(),
    }
    .run()
}

impl Server {
    fn now(&self) -> Instant {
        Instant::from_duration(self.epoch.elapsed())
    }

    fn run(&mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(1024);
        loop {
            // (`Instant` subtraction saturates at zero)
            let timeout = self.timers.first().map(|&(at, _)| at - self.now());
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            let mut ready: Vec<Token> = events.iter().map(|e| e.token()).collect();
            // An expired deadline wakes its owner like readiness does.
            let now = self.now();
            while let Some(&(at, token)) = self.timers.first().filter(|(at, _)| *at <= now) {
                self.timers.remove(&(at, token));
                ready.push(token);
            }
            for token in ready {
                match token {
                    LISTENER => self.accept_all(),
                    token => self.drive(token),
                }
            }
        }
    }

    /// Accept until `WouldBlock` (edge-triggered: no second notice). Sockets
    /// are registered once for both directions, as tokio does: edges come
    /// when bytes arrive or room frees up after a write hit `WouldBlock`.
    fn accept_all(&mut self) {
        let now = self.now();
        loop {
            match self.listener.accept() {
                Ok((mut tcp, _)) => {
                    let token = Token(self.next_token);
                    self.next_token += 1;
                    let _ = tcp.set_nodelay(true);
                    let both = Interest::READABLE | Interest::WRITABLE;
                    if self.poll.registry().register(&mut tcp, token, both).is_ok() {
                        let client = Client::new(tcp, &self.config, now);
                        self.clients.insert(token, client);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    // e.g. out of file descriptors: the connections wait in
                    // the kernel's backlog; retry shortly
                    eprintln!("accept failed: {e}");
                    self.timers
                        .insert((now + Duration::from_millis(100), LISTENER));
                    return;
                }
            }
        }
    }

    /// Drive one client, then update its deadline, or drop it.
    fn drive(&mut self, token: Token) {
        let now = self.now();
        let Some(c) = self.clients.get_mut(&token) else {
            return; // dropped earlier in this turn
        };
        let next = c.drive(&self.config, now);
        if let Some(at) = c.timer.take() {
            self.timers.remove(&(at, token));
        }
        let deadline = c.deadline(now);
        c.timer = match next {
            Next::Wait => deadline,
            Next::Again => Some(now), // after the others
            Next::Drop => {
                let mut c = self.clients.remove(&token).expect("present");
                let _ = self.poll.registry().deregister(&mut c.tcp);
                return; // dropping the socket closes it
            }
        };
        if let Some(at) = c.timer {
            self.timers.insert((at, token));
        }
    }
}

impl Client {
    fn new(tcp: TcpStream, config: &Config, now: Instant) -> Self {
        let state = State::Handshaking {
            hs: ServerHandshake::new(&config.limits),
            buf: BytesMut::new(),
            deadline: now + config.handshake_timeout,
        };
        Client {
            tcp,
            state,
            http_out: Bytes::new(),
            timer: None,
        }
    }

    /// Run this client as far as it goes without blocking.
    fn drive(&mut self, config: &Config, now: Instant) -> Next {
        let mut budget = READ_BUDGET;
        loop {
            match &mut self.state {
                State::Handshaking { hs, buf, deadline } => {
                    if *deadline <= now {
                        return Next::Drop; // too slow or half-open: no answer owed
                    }
                    match read_into(&mut self.tcp, buf) {
                        Ok(Some(0)) | Err(_) => return Next::Drop,
                        Ok(Some(_)) => {}
                        Ok(None) => return Next::Wait,
                    }
                    let mut response = Vec::new();
                    self.state = match hs.receive(buf) {
                        Ok(Status::Partial) => continue,
                        Ok(Status::Complete(req)) => {
                            let mut opts = AcceptOptions::new();
                            if req.protocols().iter().any(|p| p == "chat") {
                                opts = opts.protocol("chat");
                            }
                            let mut conn = req
                                .accept(opts, &mut response, config.clone())
                                .expect("only an offered protocol is selected");
                            // frames the client sent right behind its request
                            conn.receive(buf);
                            let (conn, backlog) = (Box::new(conn), None);
                            State::Open { conn, backlog }
                        }
                        Err(e) => {
                            // 400, 426 with Sec-WebSocket-Version, 431, ...
                            e.write_response(&mut response);
                            closing(now)
                        }
                    };
                    self.http_out = response.into();
                }
                State::Open { conn, backlog } => {
                    // Cheap when nothing is due: every drive runs the timers,
                    // whether readiness or a deadline woke us.
                    conn.handle_timeout(now);
                    echo(conn, backlog);
                    if write_out(&mut self.tcp, &mut self.http_out, Some(conn)).is_err() {
                        return Next::Drop; // reset by the peer: nobody to talk to
                    }
                    if conn.should_close_transport() {
                        self.state = closing(now);
                        continue;
                    }
                    if backlog.is_some() {
                        if conn.wants_write() {
                            return Next::Wait; // until WRITABLE makes room
                        }
                        continue; // all written meanwhile: the echo fits now
                    }
                    // Backpressure: no reading while the output is over the
                    // limit (a single large echo can be), so a peer that never
                    // reads cannot grow our memory. Nor once the connection is
                    // over: the core discards input, and a read at EOF returns
                    // 0 forever. WRITABLE or the close timer drives us again.
                    let over = conn.pending_output() > conn.config().limits.max_outbound;
                    if over || conn.state() == ConnectionState::Closed {
                        return Next::Wait;
                    }
                    if budget == 0 {
                        return Next::Again;
                    }
                    match read_into(&mut self.tcp, conn.input_buffer()) {
                        Ok(Some(0)) => conn.receive_eof(), // → Closed(Abnormal)
                        Ok(Some(n)) => budget = budget.saturating_sub(n),
                        Ok(None) => return Next::Wait,
                        Err(_) => return Next::Drop, // e.g. reset mid-frame
                    }
                }
                State::Closing { deadline, shut } => {
                    let failed = write_out(&mut self.tcp, &mut self.http_out, None).is_err();
                    if failed || *deadline <= now {
                        return Next::Drop;
                    }
                    if !self.http_out.is_empty() {
                        return Next::Wait;
                    }
                    if !*shut {
                        *shut = true;
                        if self.tcp.shutdown(Shutdown::Write).is_err() {
                            return Next::Drop;
                        }
                    }
                    if budget == 0 {
                        return Next::Again;
                    }
                    match read_into(&mut self.tcp, &mut BytesMut::new()) {
                        Ok(Some(0)) | Err(_) => return Next::Drop, // the peer's EOF: done
                        Ok(Some(n)) => budget = budget.saturating_sub(n),
                        Ok(None) => return Next::Wait,
                    }
                }
            }
        }
    }

    /// The deadline this client waits for, if any. For an open connection,
    /// `poll_timeout` after every drive also arms the timers the drive
    /// started (close handshake, flush bound after a failure): the core has
    /// no clock, so it learns "now" only here and in `handle_timeout`.
    fn deadline(&mut self, now: Instant) -> Option<Instant> {
        match &mut self.state {
            State::Handshaking { deadline, .. } | State::Closing { deadline, .. } => {
                Some(*deadline)
            }
            State::Open { conn, .. } => conn.poll_timeout(now),
        }
    }
}

/// Hang up. Only an HTTP error response may be left to write: a connection
/// says `should_close_transport` once its frames are written (or its close
/// timer gave up on a peer that does not read).
fn closing(now: Instant) -> State {
    let deadline = now + LINGER;
    State::Closing {
        deadline,
        shut: false,
    }
}

/// Take events and queue echoes until the core needs more input or refuses
/// an echo for lack of room (it then waits in `backlog`). Writing once per
/// read rather than after every event is fine: the core keeps the latest 16
/// pongs, and frames queued before a protocol error still go out ahead of
/// the close frame.
fn echo(conn: &mut Connection, backlog: &mut Option<Message>) {
    loop {
        let msg = match backlog.take() {
            Some(m) => m,
            None => match conn.poll_event() {
                Ok(Some(Event::Message(m))) => m,
                // Pings are answered by the core (`auto_pong`); after `Closed`
                // or `Err` the close frame is queued (behind earlier echoes)
                // and `should_close_transport` says when to hang up.
                Ok(Some(_)) => continue,
                Ok(None) | Err(_) => return,
            },
        };
        if msg.as_text() == Some("close-me") {
            let _ = conn.close(Some(CloseFrame::new(CloseCode::NORMAL, "server closing")));
        } else if let Err(e) = conn.send(msg) {
            // Full: unwritten bytes plus this echo would pass `max_outbound`
            // (an empty queue takes any message). Else no longer open.
            if e.is_queue_full() {
                *backlog = Some(e.value);
                return;
            }
        }
    }
}

/// Write until everything is written or the socket is full: first the HTTP
/// response, then the connection's frames. Those are written in place: the
/// connection keeps every byte until `advance_transmit` says it was written,
/// so `pending_output`, `should_close_transport` and the `max_outbound`
/// check count exactly what the kernel has not taken.
fn write_out(
    tcp: &mut TcpStream,
    http: &mut Bytes,
    conn: Option<&mut Connection>,
) -> io::Result<()> {
    while !http.is_empty() {
        let Some(n) = written(tcp.write(http))? else {
            return Ok(());
        };
        http.advance(n);
    }
    *http = Bytes::new(); // an empty view still holds the response's buffer
    let Some(conn) = conn else { return Ok(()) };
    loop {
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        let k = conn.transmit_slices(&mut iov);
        if k == 0 {
            return Ok(());
        }
        // one buffer: `send` (a shorter kernel path than `writev`)
        let result = if k == 1 {
            tcp.write(&iov[0])
        } else {
            tcp.write_vectored(&iov[..k])
        };
        let Some(n) = written(result)? else {
            return Ok(());
        };
        conn.advance_transmit(n);
    }
}

/// A non-blocking write's outcome: `None` when the socket is full.
fn written(result: io::Result<usize>) -> io::Result<Option<usize>> {
    match result {
        Ok(0) => Err(io::ErrorKind::WriteZero.into()),
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::Interrupted => Ok(Some(0)),
        Err(e) => Err(e),
    }
}

/// One non-blocking read appended to `buf`: `Some(0)` is EOF, `None` means
/// `WouldBlock`.
fn read_into(tcp: &mut TcpStream, buf: &mut BytesMut) -> io::Result<Option<usize>> {
    let start = buf.len();
    // Reading into spare capacity without `unsafe`: grow with zeroes, read
    // into the new tail, cut back to what arrived.
    buf.resize(start + READ_CHUNK, 0);
    let result = loop {
        match tcp.read(&mut buf[start..]) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            result => break result,
        }
    };
    buf.truncate(start + *result.as_ref().unwrap_or(&0));
    match result {
        Ok(n) => Ok(Some(n)),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
            if buf.is_empty() {
                // An idle connection keeps no input buffer: 16 KiB each
                // would be most of the memory of 10k idle connections.
                *buf = BytesMut::new();
            }
            Ok(None)
        }
        Err(e) => Err(e),
    }
}
