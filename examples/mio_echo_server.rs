//! An echo server on one thread and one `mio::Poll`, driving the sans-IO core
//! directly: the worked example of writing your own adapter.
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
//! Each connection is a small state machine (`Handshaking` → `Open` →
//! `Closing`) that is driven — read, parse, echo, write — whenever mio reports
//! readiness or its deadline passes. mio is edge-triggered, so a drive runs
//! until the socket says `WouldBlock`, or until we choose to stop (output
//! backpressure, the fairness budget) and arrange to be driven again. The
//! deadlines of all connections live in one ordered set whose first entry is
//! the `poll` timeout.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::io::{self, IoSlice, Read, Write};
use std::net::Shutdown;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token};
use wsproto::handshake::{AcceptOptions, ServerHandshake, Status};
use wsproto::{CloseCode, CloseFrame, Config, Connection, Event, Instant, Message};

const LISTENER: Token = Token(0);
/// Bytes asked for per `read` call.
const READ_CHUNK: usize = 16 * 1024;
/// Bytes one connection may read per turn before the others get theirs.
const READ_BUDGET: usize = 256 * 1024;
/// Chunks gathered into one `write_vectored` call.
const MAX_IOV: usize = 64;
/// How long we wait for the peer's EOF after sending ours.
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
    /// The WebSocket proper. `backlog` holds an echo the output had no room
    /// for; no further event is taken until it is queued.
    Open {
        conn: Box<Connection>,
        backlog: Option<Message>,
    },
    /// Over: flush `out`, send our FIN, then read until the peer's EOF.
    /// Closing a socket with unread input makes the kernel send a reset,
    /// which can destroy the close frame (or HTTP error) still in flight.
    Closing { deadline: Instant, shut: bool },
}

struct Client {
    tcp: TcpStream,
    state: State,
    /// Output taken from the connection (or an HTTP response) that the
    /// kernel has not accepted yet. `poll_transmit` hands each chunk out
    /// once: the unwritten rest of a partial write is ours to keep.
    out: VecDeque<Bytes>,
    interest: Interest,
    /// Our entry in the timer set.
    timer: Option<Instant>,
}

/// What the event loop does with a client after driving it.
enum Next {
    /// Wait for readiness or the deadline.
    Wait,
    /// The read budget ran out with input possibly left: drive again soon.
    Again,
    /// Deregister and drop the socket.
    Drop,
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
    // (`config.keepalive_interval` would also find dead peers: the timer set
    // below runs every connection's timers.)

    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)?;
    // The core never reads a clock: its `Instant` is the time since an epoch
    // of our choosing.
    let epoch = std::time::Instant::now();
    let now = || Instant::from_duration(epoch.elapsed());

    let mut clients: HashMap<Token, Client> = HashMap::new();
    let mut timers: BTreeSet<(Instant, Token)> = BTreeSet::new();
    let mut again: Vec<Token> = Vec::new();
    let mut next_token = 1;
    let mut events = Events::with_capacity(1024);
    loop {
        let timeout = match (again.is_empty(), timers.first()) {
            (false, _) => Some(Duration::ZERO),
            (true, Some(&(at, _))) => Some(at - now()), // saturates at zero
            (true, None) => None,
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let mut ready = std::mem::take(&mut again);
        ready.extend(events.iter().map(|e| e.token()));
        // An expired deadline wakes its owner like readiness does: the drive
        // runs the connection's timers, or gives up (handshake, linger).
        let t = now();
        while timers.first().is_some_and(|&(at, _)| at <= t) {
            let (_, token) = timers.pop_first().expect("not empty");
            if let Some(c) = clients.get_mut(&token) {
                c.timer = None;
            }
            ready.push(token);
        }
        for token in ready {
            if token == LISTENER {
                // Accept until `WouldBlock` (edge-triggered: no second notice).
                loop {
                    match listener.accept() {
                        Ok((mut tcp, _)) => {
                            let token = Token(next_token);
                            next_token += 1;
                            let _ = tcp.set_nodelay(true);
                            if poll
                                .registry()
                                .register(&mut tcp, token, Interest::READABLE)
                                .is_ok()
                            {
                                clients.insert(token, Client::new(tcp, &config, t));
                                again.push(token); // its request may be waiting
                            }
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(e) => {
                            // e.g. out of file descriptors: the connections
                            // wait in the kernel's backlog; retry shortly
                            eprintln!("accept failed: {e}");
                            timers.insert((t + Duration::from_millis(100), LISTENER));
                            break;
                        }
                    }
                }
                continue;
            }
            let Some(c) = clients.get_mut(&token) else {
                continue; // dropped earlier in this turn
            };
            let now = now();
            let next = c.drive(&config, now);
            if let Some(at) = c.timer.take() {
                timers.remove(&(at, token));
            }
            // WRITABLE only while output is pending, or every ACK from the
            // peer would wake us for nothing.
            let want = match c.out.is_empty() {
                true => Interest::READABLE,
                false => Interest::READABLE | Interest::WRITABLE,
            };
            if matches!(next, Next::Drop)
                || (want != c.interest
                    && poll.registry().reregister(&mut c.tcp, token, want).is_err())
            {
                let mut c = clients.remove(&token).expect("present");
                let _ = poll.registry().deregister(&mut c.tcp);
                continue; // dropping the socket closes it
            }
            c.interest = want;
            if matches!(next, Next::Again) {
                again.push(token);
            }
            c.timer = c.deadline(now);
            if let Some(at) = c.timer {
                timers.insert((at, token));
            }
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
        let (out, interest, timer) = (VecDeque::new(), Interest::READABLE, None);
        Client {
            tcp,
            state,
            out,
            interest,
            timer,
        }
    }

    /// Run this connection as far as it goes without blocking.
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
                            let conn = Box::new(conn);
                            State::Open {
                                conn,
                                backlog: None,
                            }
                        }
                        Err(e) => {
                            // 400, 426 with Sec-WebSocket-Version, 431, ...
                            e.write_response(&mut response);
                            closing(config, now)
                        }
                    };
                    self.out.push_back(response.into());
                }
                State::Open { conn, backlog } => {
                    // Events first: they queue echoes, pongs, close replies.
                    take_events(conn, backlog, &mut self.out, now);
                    if write_out(&mut self.tcp, &mut self.out).is_err() {
                        return Next::Drop; // reset by the peer: nobody to talk to
                    }
                    if conn.should_close_transport() {
                        self.state = closing(config, now);
                        continue;
                    }
                    // Backpressure: a peer that sends but never reads must not
                    // make us buffer without bound. Stop reading until the
                    // output drains (the WRITABLE event drives us again).
                    let pending: usize = self.out.iter().map(Bytes::len).sum();
                    if backlog.is_some() || pending > config.limits.max_outbound {
                        if pending > 0 {
                            return Next::Wait;
                        }
                        continue; // all written meanwhile: the backlog fits now
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
                    if *deadline <= now || write_out(&mut self.tcp, &mut self.out).is_err() {
                        return Next::Drop;
                    }
                    if !self.out.is_empty() {
                        return Next::Wait;
                    }
                    if !*shut {
                        *shut = true;
                        *deadline = now + LINGER;
                        if self.tcp.shutdown(Shutdown::Write).is_err() {
                            return Next::Drop;
                        }
                    }
                    if budget == 0 {
                        return Next::Again;
                    }
                    match self.tcp.read(&mut [0u8; 4096]) {
                        Ok(0) => return Next::Drop, // the peer's EOF: done
                        Ok(n) => budget = budget.saturating_sub(n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Next::Wait,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => return Next::Drop,
                    }
                }
            }
        }
    }

    /// The deadline this client waits for, if any.
    fn deadline(&mut self, now: Instant) -> Option<Instant> {
        match &mut self.state {
            State::Handshaking { deadline, .. } | State::Closing { deadline, .. } => {
                Some(*deadline)
            }
            // the connection's own timers (keepalive, close handshake), if armed
            State::Open { conn, .. } => conn.poll_timeout(now),
        }
    }
}

/// Hang up: the rest of `out` gets the close timeout to drain (the core has
/// handed us everything, so its own flush bound no longer applies).
fn closing(config: &Config, now: Instant) -> State {
    let deadline = now + config.close_timeout;
    State::Closing {
        deadline,
        shut: false,
    }
}

/// Take events and echo messages, until the core needs input or `out` has
/// no room for the next echo (which then waits in `backlog`).
fn take_events(
    conn: &mut Connection,
    backlog: &mut Option<Message>,
    out: &mut VecDeque<Bytes>,
    now: Instant,
) {
    // Cheap when nothing is due, so every drive may run the timers without
    // knowing whether a deadline or readiness woke us.
    conn.handle_timeout(now);
    let mut queued: usize = out.iter().map(Bytes::len).sum();
    loop {
        // Move what the last step queued (echo, pong, close frame) into
        // `out` at once. The core keeps one pending pong (a newer ping
        // replaces it), and when a later frame fails the connection it drops
        // data frames not yet handed out: an echo must not be lost because a
        // bad frame arrived in the same read.
        while let Some(chunk) = conn.poll_transmit() {
            queued += chunk.len();
            out.push_back(chunk);
        }
        let msg = match backlog.take() {
            Some(m) => m,
            None => match conn.poll_event() {
                Ok(Some(Event::Message(m))) => m,
                // Pings are answered by the core (`auto_pong`), `Closed`
                // means any close reply is queued, and `Err` means the close
                // frame with the error's code is: `should_close_transport`
                // says when to hang up in every case.
                Ok(Some(_)) => continue,
                // (the close frame a failure queued is still to be moved)
                Ok(None) | Err(_) => {
                    return out.extend(std::iter::from_fn(|| conn.poll_transmit()))
                }
            },
        };
        if msg.as_text() == Some("close-me") {
            let _ = conn.close(Some(CloseFrame::new(CloseCode::NORMAL, "server closing")));
            continue;
        }
        // All output is ours, so `Limits::max_outbound` is ours to apply
        // (the core's check only sees its own queue, which we keep empty).
        // Like the core, an empty queue takes any message.
        if queued > 0 && queued + msg.len() > conn.config().limits.max_outbound {
            *backlog = Some(msg);
            return;
        }
        // Refused only when no longer open (we are closing): nothing to echo to.
        let _ = conn.send(msg);
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

/// Write `out` until all is written or the socket is full (the unwritten
/// rest stays in `out`).
fn write_out(tcp: &mut TcpStream, out: &mut VecDeque<Bytes>) -> io::Result<()> {
    while !out.is_empty() {
        let mut iov = [IoSlice::new(&[]); MAX_IOV];
        for (slot, chunk) in iov.iter_mut().zip(out.iter()) {
            *slot = IoSlice::new(chunk);
        }
        let mut n = match tcp.write_vectored(&iov[..out.len().min(MAX_IOV)]) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e),
        };
        while n > 0 {
            let front = out.front_mut().expect("wrote no more than was queued");
            if n < front.len() {
                let _ = front.split_to(n); // keep the unwritten rest
                break;
            }
            n -= front.len();
            out.pop_front();
        }
    }
    Ok(())
}
