//! Hostile peers against the echo servers, in process.
//!
//! The servers are the echo logic of `examples/echo_server.rs` (blocking,
//! `wsproto::blocking::WebSocket::accept_with`, a thread per connection) and
//! of `examples/tokio_echo_server.rs` (`wsproto::tokio::accept_with`, a task
//! per connection; with the `tokio` feature), on 127.0.0.1:0, with the
//! limits of [`config`]. The attackers are raw TCP clients writing bytes by
//! hand.
//!
//! Every test checks three things, for each server:
//! * the wire outcome (the HTTP status or the close code the attacker gets);
//! * that the server keeps serving a well-behaved client promptly while (or
//!   right after) the attack runs;
//! * that memory stays within a bound derived from the `Config` limits,
//!   measured with a counting global allocator: the peak of live heap bytes
//!   in the whole process during the attack, above the level when the
//!   attack started. Tests hold a global lock so that no other test
//!   allocates meanwhile. `cargo test --test hostile -- --nocapture` prints
//!   the measured peaks.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use wsproto::blocking::WebSocket;
use wsproto::handshake::AcceptOptions;
use wsproto::{Config, Event};

// ------------------------------------------------------- counting allocator

/// Counts live heap bytes (and their peak) for the whole process.
struct Counting;

static CURRENT: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(n: usize) {
    let now = CURRENT.fetch_add(n, Ordering::Relaxed) + n;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

fn shrank(n: usize) {
    CURRENT.fetch_sub(n, Ordering::Relaxed);
}

// SAFETY: every call is forwarded to the system allocator unchanged; the
// counters are only bookkeeping.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size > layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A measurement window: the peak of live heap bytes above the level at
/// its start.
struct Window {
    base: usize,
    name: String,
}

impl Window {
    fn start(name: impl Into<String>) -> Self {
        let base = CURRENT.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        Window {
            base,
            name: name.into(),
        }
    }

    /// Peak bytes above the start, printed for the record, checked
    /// against `bound`.
    fn check(&self, bound: usize) -> usize {
        let peak = PEAK.load(Ordering::Relaxed).saturating_sub(self.base);
        println!(
            "memory: {:<55} peak {:>9} B (bound {:>9} B)",
            self.name, peak, bound
        );
        assert!(
            peak <= bound,
            "{}: heap peak {peak} B above the start exceeds the bound {bound} B",
            self.name
        );
        peak
    }
}

/// Tests run one at a time: the allocator counts the whole process.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

// ------------------------------------------------------------------ config

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

/// The servers' configuration: tighter than the defaults so the tests are
/// fast, with the same shape (every bound below is derived from it).
fn config() -> Config {
    let mut c = Config::default();
    c.limits.max_message = MIB;
    c.limits.max_frame_payload = 256 * KIB;
    c.limits.max_outbound = 256 * KIB;
    // max_handshake_bytes (16 KiB) and max_headers (64): the defaults
    c.handshake_timeout = Duration::from_secs(1);
    c.close_timeout = Duration::from_secs(1);
    // as the echo examples do when built with the feature
    #[cfg(feature = "deflate")]
    {
        c.deflate = Some(wsproto::extension::deflate::DeflateConfig::default());
    }
    c
}

/// Allowance for what any connection holds besides its payload buffers:
/// read buffers (16 KiB blocking, 8 KiB tokio), output arena, task or
/// thread bookkeeping, and the attacker's own small allocations.
const SLACK: usize = 128 * KIB;

// ----------------------------------------------------------------- servers

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    Blocking,
    #[cfg(feature = "tokio")]
    Tokio,
}

fn kinds() -> Vec<Kind> {
    vec![
        Kind::Blocking,
        #[cfg(feature = "tokio")]
        Kind::Tokio,
    ]
}

/// How a connection ended, as the server saw it.
#[derive(Clone, Debug, PartialEq)]
enum Outcome {
    /// Refused in the handshake with this status.
    Refused(u16),
    HandshakeTimeout,
    /// Transport error or EOF before or after the handshake.
    Io,
    /// The connection failed with this close code.
    Failed(u16),
    /// Closed normally (close handshake or EOF).
    Closed,
}

fn classify(e: &wsproto::blocking::Error) -> Outcome {
    use wsproto::blocking::Error as E;
    match e {
        E::Ws(wsproto::Error::Handshake(h)) => Outcome::Refused(h.status_hint()),
        E::Ws(e) => Outcome::Failed(e.close_code().map_or(0, |c| c.0)),
        E::Rejected(s) => Outcome::Refused(*s),
        E::HandshakeTimeout => Outcome::HandshakeTimeout,
        _ => Outcome::Io,
    }
}

#[derive(Default)]
struct Stats {
    /// Connections accepted.
    accepted: AtomicUsize,
    /// Connections being served (threads or tasks alive).
    active: AtomicUsize,
    /// Most bytes a connection had queued for sending, seen after an event.
    max_pending: AtomicUsize,
    outcomes: Mutex<Vec<Outcome>>,
}

impl Stats {
    fn enter(self: &Arc<Self>) -> ActiveGuard {
        self.active.fetch_add(1, Ordering::SeqCst);
        ActiveGuard(self.clone())
    }

    fn record(&self, o: Outcome) {
        self.outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(o);
    }

    fn outcomes(&self) -> Vec<Outcome> {
        self.outcomes
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn pending(&self, n: usize) {
        self.max_pending.fetch_max(n, Ordering::SeqCst);
    }
}

struct ActiveGuard(Arc<Stats>);

impl Drop for ActiveGuard {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::SeqCst);
    }
}

struct Server {
    kind: Kind,
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    #[cfg(feature = "tokio")]
    stop_tokio: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    fn start(kind: Kind) -> Server {
        Server::start_with(kind, config())
    }

    fn start_with(kind: Kind, config: Config) -> Server {
        Server::start_full(kind, config, None)
    }

    /// `write_timeout`: how long the echo may block on a peer that does not
    /// read (the application's choice; the examples have none).
    fn start_full(kind: Kind, config: Config, write_timeout: Option<Duration>) -> Server {
        match kind {
            Kind::Blocking => start_blocking(config, write_timeout),
            #[cfg(feature = "tokio")]
            Kind::Tokio => start_tokio(config, write_timeout),
        }
    }

    /// Wait until every connection the server accepted has finished.
    fn wait_idle(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.stats.active.load(Ordering::SeqCst) > 0 {
            assert!(
                Instant::now() < deadline,
                "{:?}: {} connections still active after {limit:?}",
                self.kind,
                self.stats.active.load(Ordering::SeqCst)
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// A well-behaved client gets its echo promptly.
    fn assert_serves(&self, what: &str) -> Duration {
        let t0 = Instant::now();
        let mut c = open(self.addr);
        send_frame(&mut c, 0x81, b"still here?");
        let (op, payload) = read_frame(&mut c).expect("echo");
        assert_eq!((op, &payload[..]), (0x1, &b"still here?"[..]), "{what}");
        send_frame(&mut c, 0x88, &1000u16.to_be_bytes());
        let (op, _) = read_frame(&mut c).expect("close reply");
        assert_eq!(op, 0x8);
        let took = t0.elapsed();
        assert!(
            took < Duration::from_secs(2),
            "{:?}: a well-behaved client waited {took:?} ({what})",
            self.kind
        );
        took
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        #[cfg(feature = "tokio")]
        if let Some(tx) = self.stop_tokio.take() {
            let _ = tx.send(());
        }
        // wake a blocking accept
        let _ = TcpStream::connect(self.addr);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn start_blocking(config: Config, write_timeout: Option<Duration>) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let stats = Arc::new(Stats::default());
    let stop = Arc::new(AtomicBool::new(false));
    let (st, sp) = (stats.clone(), stop.clone());
    let thread = thread::spawn(move || {
        for tcp in listener.incoming() {
            if sp.load(Ordering::SeqCst) {
                break;
            }
            let Ok(tcp) = tcp else { continue };
            st.accepted.fetch_add(1, Ordering::SeqCst);
            let (config, st) = (config.clone(), st.clone());
            let _ = tcp.set_write_timeout(write_timeout);
            thread::spawn(move || serve_blocking(tcp, config, st));
        }
    });
    Server {
        kind: Kind::Blocking,
        addr,
        stats,
        stop,
        #[cfg(feature = "tokio")]
        stop_tokio: None,
        thread: Some(thread),
    }
}

/// `examples/echo_server.rs`, instrumented.
fn serve_blocking(tcp: TcpStream, config: Config, stats: Arc<Stats>) {
    let _active = stats.enter();
    let _ = tcp.set_nodelay(true);
    let mut ws = match WebSocket::accept_with(tcp, config, |_| Ok(AcceptOptions::new())) {
        Ok(ws) => ws,
        Err(e) => return stats.record(classify(&e)),
    };
    loop {
        let r = ws.read();
        stats.pending(ws.connection().pending_output());
        match r {
            Ok(Event::Message(m)) => {
                if let Err(e) = ws.send(m) {
                    return stats.record(classify(&e));
                }
            }
            Ok(Event::Closed(_)) => return stats.record(Outcome::Closed),
            Ok(_) => {}
            Err(e) => return stats.record(classify(&e)),
        }
    }
}

#[cfg(feature = "tokio")]
fn start_tokio(config: Config, write_timeout: Option<Duration>) -> Server {
    let stats = Arc::new(Stats::default());
    let (addr_tx, addr_rx) = std::sync::mpsc::channel();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let st = stats.clone();
    let thread = thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            addr_tx.send(listener.local_addr().expect("addr")).unwrap();
            let mut stop_rx = stop_rx;
            loop {
                tokio::select! {
                    _ = &mut stop_rx => break,
                    r = listener.accept() => {
                        if let Ok((tcp, _)) = r {
                            st.accepted.fetch_add(1, Ordering::SeqCst);
                            let _ = tcp.set_nodelay(true);
                            tokio::spawn(serve_tokio(tcp, config.clone(), st.clone(), write_timeout));
                        }
                    }
                }
            }
        });
        rt.shutdown_timeout(Duration::from_millis(200));
    });
    let addr = addr_rx.recv().expect("tokio server address");
    Server {
        kind: Kind::Tokio,
        addr,
        stats,
        stop: Arc::new(AtomicBool::new(false)),
        stop_tokio: Some(stop_tx),
        thread: Some(thread),
    }
}

/// `examples/tokio_echo_server.rs`, instrumented.
#[cfg(feature = "tokio")]
async fn serve_tokio(
    tcp: tokio::net::TcpStream,
    config: Config,
    stats: Arc<Stats>,
    write_timeout: Option<Duration>,
) {
    let _active = stats.enter();
    let mut ws = match wsproto::tokio::accept_with(tcp, config, |_| Ok(AcceptOptions::new())).await
    {
        Ok(ws) => ws,
        Err(e) => return stats.record(classify(&e)),
    };
    while let Some(r) = ws.next_event().await {
        stats.pending(ws.with_connection(|c| c.pending_output()));
        match r {
            Ok(Event::Message(m)) => {
                let sent = match write_timeout {
                    None => ws.send_message(m).await,
                    Some(d) => match tokio::time::timeout(d, ws.send_message(m)).await {
                        Ok(r) => r,
                        Err(_) => return stats.record(Outcome::Io),
                    },
                };
                if let Err(e) = sent {
                    return stats.record(classify(&e));
                }
            }
            Ok(Event::Closed(_)) => return stats.record(Outcome::Closed),
            Ok(_) => {}
            Err(e) => return stats.record(classify(&e)),
        }
    }
    stats.record(Outcome::Closed)
}

// ----------------------------------------------------------- raw clients

const REQUEST: &str = "GET /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n\
Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Version: 13\r\n\r\n";

fn connect(addr: SocketAddr) -> TcpStream {
    let tcp = TcpStream::connect(addr).expect("connect");
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
    tcp
}

/// Read an HTTP response head; return its status.
fn read_status(tcp: &mut TcpStream) -> io::Result<u16> {
    let mut head = Vec::new();
    let mut b = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if tcp.read(&mut b)? == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        head.push(b[0]);
    }
    let line = String::from_utf8_lossy(&head);
    let status = line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {line:?}"));
    Ok(status)
}

/// A connection after a successful handshake.
fn open(addr: SocketAddr) -> TcpStream {
    let mut tcp = connect(addr);
    tcp.write_all(REQUEST.as_bytes()).unwrap();
    assert_eq!(read_status(&mut tcp).expect("handshake response"), 101);
    tcp
}

const KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];

/// The bytes of a masked frame (as a client sends it).
fn frame_bytes(b0: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = vec![b0];
    match payload.len() {
        n if n < 126 => out.push(0x80 | n as u8),
        n if n < 65536 => {
            out.push(0x80 | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(0x80 | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    out.extend_from_slice(&KEY);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ KEY[i % 4]));
    out
}

fn send_frame(tcp: &mut TcpStream, b0: u8, payload: &[u8]) {
    tcp.write_all(&frame_bytes(b0, payload))
        .expect("send frame");
}

/// Read one (unmasked, server) frame: opcode and payload.
fn read_frame(tcp: &mut TcpStream) -> io::Result<(u8, Vec<u8>)> {
    let mut h = [0u8; 2];
    tcp.read_exact(&mut h)?;
    assert_eq!(h[1] & 0x80, 0, "a server frame is masked");
    let len = match h[1] & 0x7F {
        126 => {
            let mut l = [0u8; 2];
            tcp.read_exact(&mut l)?;
            u16::from_be_bytes(l) as usize
        }
        127 => {
            let mut l = [0u8; 8];
            tcp.read_exact(&mut l)?;
            u64::from_be_bytes(l) as usize
        }
        n => n as usize,
    };
    let mut payload = vec![0u8; len];
    tcp.read_exact(&mut payload)?;
    Ok((h[0] & 0x0F, payload))
}

/// Read frames until the close frame; its code (skipping pongs).
fn read_close_code(tcp: &mut TcpStream) -> u16 {
    loop {
        let (op, p) = read_frame(tcp).expect("a close frame");
        match op {
            0x8 => return u16::from_be_bytes([p[0], p[1]]),
            0xA => {}
            other => panic!("unexpected frame {other:#x} before the close"),
        }
    }
}

/// Whether the peer has closed the connection (EOF or reset) within `d`.
fn closed_within(tcp: &mut TcpStream, d: Duration) -> bool {
    tcp.set_read_timeout(Some(d)).unwrap();
    let mut b = [0u8; 256];
    loop {
        match tcp.read(&mut b) {
            Ok(0) => return true,
            Ok(_) => {}
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                return false
            }
            Err(_) => return true,
        }
    }
}

/// Abort the connection with a TCP reset (SO_LINGER 0).
#[cfg(unix)]
fn reset(tcp: TcpStream) {
    use std::os::fd::AsRawFd;
    let l = libc::linger {
        l_onoff: 1,
        l_linger: 0,
    };
    // SAFETY: a valid socket and a correctly sized option value.
    let r = unsafe {
        libc::setsockopt(
            tcp.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            (&l as *const libc::linger).cast(),
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
    assert_eq!(r, 0, "SO_LINGER");
    drop(tcp);
}

#[cfg(not(unix))]
fn reset(tcp: TcpStream) {
    let _ = tcp.shutdown(std::net::Shutdown::Both);
}

// ============================================================ handshakes

#[test]
fn header_flood_gets_431() {
    let _g = serial();
    for kind in kinds() {
        let server = Server::start(kind);
        let mut req = String::from("GET / HTTP/1.1\r\nHost: x\r\n");
        for i in 0..200 {
            req.push_str(&format!("X-Flood-{i}: {i}\r\n"));
        }
        req.push_str("\r\n");
        assert!(req.len() < config().limits.max_handshake_bytes);
        let w = Window::start(format!("{kind:?}: 200 header fields"));
        let mut c = connect(server.addr);
        c.write_all(req.as_bytes()).unwrap();
        assert_eq!(read_status(&mut c).unwrap(), 431, "{kind:?}");
        assert!(closed_within(&mut c, Duration::from_secs(3)));
        server.assert_serves("after a header flood");
        w.check(config().limits.max_handshake_bytes + SLACK);
        drop(c);
        server.wait_idle(Duration::from_secs(5));
        assert!(server.stats.outcomes().contains(&Outcome::Refused(431)));
    }
}

#[test]
fn enormous_header_line_gets_431() {
    let _g = serial();
    let line = format!("X-Huge: {}\r\n", "a".repeat(256 * KIB));
    for kind in kinds() {
        let server = Server::start(kind);
        let w = Window::start(format!("{kind:?}: a 256 KiB header line"));
        let mut c = connect(server.addr);
        c.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n").unwrap();
        // the server answers once 16 KiB have arrived; it may reset the rest
        let _ = c.write_all(line.as_bytes());
        assert_eq!(read_status(&mut c).unwrap(), 431, "{kind:?}");
        server.assert_serves("after an enormous header line");
        // the head is never buffered beyond the limit (plus one read)
        w.check(config().limits.max_handshake_bytes + SLACK);
        drop(c);
        server.wait_idle(Duration::from_secs(5));
        assert!(server.stats.outcomes().contains(&Outcome::Refused(431)));
    }
}

#[test]
fn malformed_requests_are_refused() {
    let _g = serial();
    let cases: [(&[u8], u16); 6] = [
        (b"POST / HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (b"GET / HTTP/1.0\r\nHost: x\r\n\r\n", 505),
        (
            b"GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
              Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 8\r\n\r\n",
            426,
        ),
        (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n", 400),
    ];
    for kind in kinds() {
        let server = Server::start(kind);
        let w = Window::start(format!("{kind:?}: malformed requests"));
        for (req, status) in cases {
            let mut c = connect(server.addr);
            c.write_all(req).unwrap();
            assert_eq!(
                read_status(&mut c).unwrap(),
                status,
                "{kind:?}: {:?}",
                String::from_utf8_lossy(req)
            );
            assert!(closed_within(&mut c, Duration::from_secs(3)));
        }
        server.assert_serves("after malformed requests");
        w.check(config().limits.max_handshake_bytes + SLACK);
    }
}

#[test]
fn byte_at_a_time_within_the_timeout_is_served() {
    let _g = serial();
    for kind in kinds() {
        let server = Server::start(kind);
        let w = Window::start(format!("{kind:?}: a request sent a byte at a time"));
        let t0 = Instant::now();
        let mut c = connect(server.addr);
        // ~190 bytes, 2 ms apart: well within the 1 s handshake timeout
        for (i, b) in REQUEST.as_bytes().iter().enumerate() {
            c.write_all(&[*b]).unwrap();
            thread::sleep(Duration::from_millis(2));
            if i == 20 {
                server.assert_serves("while a slow client sends its request");
            }
        }
        assert_eq!(read_status(&mut c).unwrap(), 101, "{kind:?}");
        assert!(t0.elapsed() < config().handshake_timeout);
        // and the frame, a byte at a time too
        for b in frame_bytes(0x81, b"slow") {
            c.write_all(&[b]).unwrap();
            thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(read_frame(&mut c).unwrap(), (0x1, b"slow".to_vec()));
        // two connections (the slow one and the well-behaved one)
        w.check(2 * config().limits.max_handshake_bytes + SLACK);
    }
}

#[test]
fn too_slow_handshake_is_dropped() {
    let _g = serial();
    let timeout = config().handshake_timeout;
    for kind in kinds() {
        let server = Server::start(kind);
        let w = Window::start(format!("{kind:?}: a request too slow to finish"));
        let mut c = connect(server.addr);
        let t0 = Instant::now();
        // one byte every 150 ms: the request would take ~30 s
        let mut dropped = None;
        for (i, b) in REQUEST.as_bytes().iter().enumerate() {
            if c.write_all(&[*b]).is_err() || closed_within(&mut c, Duration::from_millis(150)) {
                dropped = Some(t0.elapsed());
                break;
            }
            if i == 1 {
                server.assert_serves("while a too slow client trickles");
            }
        }
        let took = dropped.expect("the slow client was never dropped");
        assert!(
            took >= timeout - Duration::from_millis(100) && took < timeout * 3,
            "{kind:?}: dropped after {took:?}, handshake_timeout is {timeout:?}"
        );
        server.assert_serves("after dropping a slow client");
        w.check(2 * config().limits.max_handshake_bytes + SLACK);
        server.wait_idle(Duration::from_secs(5));
        assert!(server.stats.outcomes().contains(&Outcome::HandshakeTimeout));
    }
}

#[test]
fn half_open_connections_do_not_starve_others() {
    let _g = serial();
    const N: usize = 200;
    // long enough for 200 connects even when the accept backlog overflows
    // and a SYN is retried after 1 s
    let mut config = config();
    config.handshake_timeout = Duration::from_secs(3);
    for kind in kinds() {
        let server = Server::start_with(kind, config.clone());
        let w = Window::start(format!("{kind:?}: {N} silent connections"));
        let silent: Vec<TcpStream> = (0..N).map(|_| connect(server.addr)).collect();
        // let the server accept them all
        let deadline = Instant::now() + Duration::from_secs(5);
        while server.stats.active.load(Ordering::SeqCst) < N {
            assert!(
                Instant::now() < deadline,
                "{kind:?}: {} of {N} connections accepted, {} served",
                server.stats.accepted.load(Ordering::SeqCst),
                server.stats.active.load(Ordering::SeqCst)
            );
            thread::sleep(Duration::from_millis(5));
        }
        let took = server.assert_serves("with 200 silent connections open");
        assert!(took < Duration::from_secs(1), "{kind:?}: {took:?}");
        // a connection waiting for its request holds only its small head buffer
        let per_conn = w.check(N * 8 * KIB + SLACK) / N;
        println!("memory: {kind:?}: about {per_conn} B per silent connection");
        // all of them are dropped once the handshake timeout passes
        let t0 = Instant::now();
        for mut c in silent {
            let left = (config.handshake_timeout + Duration::from_secs(2))
                .saturating_sub(t0.elapsed())
                .max(Duration::from_millis(10));
            assert!(
                closed_within(&mut c, left),
                "{kind:?}: a silent client kept"
            );
        }
        server.wait_idle(Duration::from_secs(5));
        let timeouts = server
            .stats
            .outcomes()
            .iter()
            .filter(|o| **o == Outcome::HandshakeTimeout)
            .count();
        assert_eq!(timeouts, N, "{kind:?}");
    }
}

// ================================================================ frames

#[test]
fn giant_declared_length_closes_1009_without_allocating() {
    let _g = serial();
    for kind in kinds() {
        let server = Server::start(kind);
        let mut c = open(server.addr);
        // binary, masked, 64-bit length 2^63 - 1, a key, and no payload
        let mut h = vec![0x82, 0xFF];
        h.extend_from_slice(&(i64::MAX as u64).to_be_bytes());
        h.extend_from_slice(&KEY);
        let w = Window::start(format!("{kind:?}: declared length 2^63-1"));
        let t0 = Instant::now();
        c.write_all(&h).unwrap();
        assert_eq!(read_close_code(&mut c), 1009, "{kind:?}");
        assert!(
            t0.elapsed() < Duration::from_secs(1),
            "{kind:?}: not at once"
        );
        w.check(64 * KIB);
        assert!(closed_within(&mut c, Duration::from_secs(3)));
        server.assert_serves("after a 2^63-1 declaration");
        drop(c);
        server.wait_idle(Duration::from_secs(5));
        assert!(server.stats.outcomes().contains(&Outcome::Failed(1009)));
    }
}

#[test]
fn control_frame_flood_while_not_reading_stays_bounded() {
    let _g = serial();
    const PINGS: usize = 200_000;
    const BATCH: usize = 100;
    let mut batch = Vec::new();
    for _ in 0..BATCH {
        batch.extend_from_slice(&frame_bytes(0x89, &[b'p'; 125]));
    }
    for kind in kinds() {
        let server = Server::start(kind);
        let mut c = open(server.addr);
        c.set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let w = Window::start(format!("{kind:?}: ping flood, never reading"));
        // write pings until the server stops reading (its pongs fill the
        // socket buffers: we never read them) or PINGS were sent
        let mut flood_bytes = 0;
        while flood_bytes < PINGS * 131 {
            let start = flood_bytes % batch.len();
            match c.write(&batch[start..]) {
                Ok(n) => flood_bytes += n,
                Err(_) => break,
            }
        }
        let sent = flood_bytes / 131;
        // the server holds at most 16 pending pongs plus buffers, however
        // many pings arrived (PINGS * 131 B = 6.5 MB)
        w.check(SLACK + 16 * 131 + 32 * KIB);
        println!("{kind:?}: {sent} pings ({flood_bytes} B) written before the server pushed back");
        // a different client is served meanwhile
        server.assert_serves("during a ping flood");
        // now read: pongs, then the echo of a message sent after the flood
        c.set_write_timeout(Some(Duration::from_secs(5))).unwrap();
        let reader = {
            let mut r = c.try_clone().unwrap();
            thread::spawn(move || {
                let mut pongs = 0usize;
                loop {
                    match read_frame(&mut r) {
                        Ok((0xA, p)) => {
                            assert_eq!(p, [b'p'; 125]);
                            pongs += 1;
                        }
                        Ok((0x1, p)) => return (pongs, p),
                        other => panic!("unexpected {other:?}"),
                    }
                }
            })
        };
        // finish a partially written ping, then the message
        let rest = (131 - flood_bytes % 131) % 131;
        let start = flood_bytes % batch.len();
        c.write_all(&batch[start..start + rest]).unwrap();
        send_frame(&mut c, 0x81, b"after the flood");
        let (pongs, echo) = reader.join().expect("reader");
        assert_eq!(echo, b"after the flood");
        assert!(
            pongs <= sent + 1 && pongs > 0,
            "{kind:?}: {pongs} pongs for {sent} pings"
        );
        let max_pending = server.stats.max_pending.load(Ordering::SeqCst);
        println!(
            "{kind:?}: {pongs} pongs received, server pending output peaked at {max_pending} B"
        );
        // 16 pongs waiting plus the one being written (2 + 125 B each)
        assert!(max_pending <= 17 * 127, "{kind:?}: {max_pending} B queued");
    }
}

#[test]
fn oversized_fragmented_message_closes_1009() {
    let _g = serial();
    let limits = config().limits;
    const FRAG: usize = 16 * KIB;
    const DECLARED: usize = 100 * MIB;
    let first = frame_bytes(0x02, &[b'x'; FRAG]); // binary, not final
    let next = frame_bytes(0x00, &[b'x'; FRAG]); // continuation, not final
    for kind in kinds() {
        let server = Server::start(kind);
        let mut c = open(server.addr);
        let w = Window::start(format!("{kind:?}: 100 MB message in 16 KiB fragments"));
        c.write_all(&first).unwrap();
        let mut sent = FRAG;
        let mut peek = [0u8; 1];
        c.set_nonblocking(true).unwrap();
        while sent < DECLARED {
            if sent == limits.max_message / 2 {
                server.assert_serves("while a large message arrives");
            }
            // stop as soon as the server answers
            if matches!(c.peek(&mut peek), Ok(n) if n > 0) {
                break;
            }
            c.set_nonblocking(false).unwrap();
            if c.write_all(&next).is_err() {
                break;
            }
            c.set_nonblocking(true).unwrap();
            sent += FRAG;
        }
        c.set_nonblocking(false).unwrap();
        assert_eq!(read_close_code(&mut c), 1009, "{kind:?}");
        println!("{kind:?}: close 1009 after {sent} payload bytes were written");
        assert!(sent > limits.max_message, "{kind:?}: closed too early");
        assert!(sent < 8 * limits.max_message, "{kind:?}: closed late");
        // reassembly is bounded by max_message, the input by one frame
        w.check(limits.max_message + limits.max_frame_payload + SLACK);
        server.assert_serves("after an oversized message");
        drop(c);
        server.wait_idle(Duration::from_secs(5));
        assert!(server.stats.outcomes().contains(&Outcome::Failed(1009)));
    }
}

/// A compressed message of ~100 KB that inflates to 100 MB of zeros
/// (permessage-deflate, RFC 7692): inflating is bounded by `max_message`.
#[cfg(feature = "deflate")]
#[test]
fn deflate_bomb_closes_1009() {
    use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
    let _g = serial();
    let limits = config().limits;
    const INFLATED: usize = 100 * MIB;
    // Raw deflate of 1 MiB of zeros at a time, each sync-flushed. Once the
    // window is full of zeros every further MiB compresses to the same
    // bytes, so the bomb is the first MiB's block plus 99 copies of the
    // steady-state block (compressing 100 MB in a debug build is slow).
    let zeros = vec![0u8; MIB];
    let mut z = Compress::new(Compression::best(), false);
    let mut mib = || {
        let mut out = Vec::with_capacity(16 * KIB);
        let mut input = &zeros[..];
        loop {
            let before = z.total_in();
            z.compress_vec(input, &mut out, FlushCompress::Sync)
                .unwrap();
            input = &input[(z.total_in() - before) as usize..];
            if input.is_empty() && out.len() < out.capacity() {
                return out;
            }
            out.reserve(16 * KIB);
        }
    };
    let first = mib();
    let steady = mib();
    assert_eq!(
        mib(),
        steady,
        "zeros compress to the same block once the window is full"
    );
    {
        // check the construction: first + 2 x steady inflate to 3 MiB of zeros
        let mut probe = first.clone();
        probe.extend_from_slice(&steady);
        probe.extend_from_slice(&steady);
        let mut d = Decompress::new(false);
        let mut out = Vec::with_capacity(3 * MIB + 1);
        d.decompress_vec(&probe, &mut out, FlushDecompress::Sync)
            .unwrap();
        assert_eq!(out.len(), 3 * MIB);
        assert!(out.iter().all(|&b| b == 0));
    }
    let mut bomb = first;
    for _ in 1..INFLATED / MIB {
        bomb.extend_from_slice(&steady);
    }
    // the tail of the last block is left out (RFC 7692 §7.2.1)
    assert!(bomb.ends_with(&[0, 0, 0xff, 0xff]));
    bomb.truncate(bomb.len() - 4);
    println!("deflate bomb: {} B inflating to {INFLATED} B", bomb.len());
    assert!(bomb.len() < limits.max_frame_payload);
    let frame = frame_bytes(0xC2, &bomb); // FIN, RSV1 (compressed), binary
    for kind in kinds() {
        let server = Server::start(kind);
        let mut c = connect(server.addr);
        let req = REQUEST.replace(
            "\r\n\r\n",
            "\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
        );
        c.write_all(req.as_bytes()).unwrap();
        assert_eq!(read_status(&mut c).unwrap(), 101);
        let w = Window::start(format!("{kind:?}: deflate bomb (100 MB inflated)"));
        let t0 = Instant::now();
        let _ = c.write_all(&frame);
        assert_eq!(read_close_code(&mut c), 1009, "{kind:?}");
        println!("{kind:?}: 1009 after {:?}", t0.elapsed());
        // at most max_message (+1 byte) is ever inflated
        w.check(limits.max_message + limits.max_frame_payload + SLACK);
        server.assert_serves("after a deflate bomb");
        drop(c);
        server.wait_idle(Duration::from_secs(5));
        assert!(server.stats.outcomes().contains(&Outcome::Failed(1009)));
    }
}

#[test]
fn connections_reset_mid_frame_do_not_disturb_the_server() {
    let _g = serial();
    const RESETS: usize = 30;
    let frame = frame_bytes(0x82, &[7u8; 4000]);
    for kind in kinds() {
        let server = Server::start(kind);
        server.assert_serves("before");
        server.wait_idle(Duration::from_secs(5));
        let w = Window::start(format!("{kind:?}: {RESETS} resets mid-frame"));
        let before = CURRENT.load(Ordering::Relaxed);
        for i in 0..RESETS {
            let mut c = open(server.addr);
            // part of a header, or part of the payload
            let cut = [1, 5, 9, 100, 2000][i % 5];
            c.write_all(&frame[..cut]).unwrap();
            thread::sleep(Duration::from_millis(2));
            reset(c);
        }
        server.assert_serves("after resets mid-frame");
        server.wait_idle(Duration::from_secs(5));
        w.check(RESETS * 32 * KIB + SLACK);
        // nothing of the aborted connections is left behind
        let after = CURRENT.load(Ordering::Relaxed);
        assert!(
            after <= before + 16 * KIB,
            "{kind:?}: {} B still allocated after the resets",
            after.saturating_sub(before)
        );
        let outcomes = server.stats.outcomes();
        let aborted = outcomes.iter().filter(|o| **o == Outcome::Io).count();
        println!("{kind:?}: outcomes after resets: {aborted} I/O errors, {outcomes:?}");
        assert!(!outcomes.iter().any(|o| matches!(o, Outcome::Failed(_))));
    }
}

/// A peer that sends but never reads: the echo blocks once the socket
/// buffers are full, and keepalive cannot help (every byte it sends proves
/// it alive). The crate's queue stays bounded (`max_outbound`), but only a
/// write timeout chosen by the application frees the connection: a
/// `TcpStream` write timeout for the blocking driver, `tokio::time::timeout`
/// around `send` for tokio (docs/security.md).
#[test]
fn peer_that_never_reads_is_dropped_by_a_write_timeout() {
    let _g = serial();
    let limits = config().limits;
    let msg = frame_bytes(0x82, &[9u8; 64 * KIB]);
    for kind in kinds() {
        let server = Server::start_full(kind, config(), Some(Duration::from_millis(300)));
        let mut c = open(server.addr);
        c.set_write_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let w = Window::start(format!("{kind:?}: echo to a peer that never reads"));
        let t0 = Instant::now();
        let mut sent = 0usize;
        while server.stats.outcomes().is_empty() {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{kind:?}: the server still writes to a peer that never reads"
            );
            // keep sending (and never read) until the server gives up
            if c.write_all(&msg).is_ok() {
                sent += 1;
            } else {
                thread::sleep(Duration::from_millis(20));
            }
        }
        println!(
            "{kind:?}: server gave up after {:?} ({sent} x 64 KiB sent, none read)",
            t0.elapsed()
        );
        w.check(limits.max_outbound + limits.max_message + limits.max_frame_payload + SLACK);
        assert_eq!(server.stats.outcomes(), vec![Outcome::Io], "{kind:?}");
        drop(c);
        server.assert_serves("after dropping a peer that never reads");
        server.wait_idle(Duration::from_secs(5));
    }
}

// ============================================== findings (sans-IO repros)

/// Regression (found by the `deflate` fuzz target, see docs/fuzzing.md):
/// `max_message` limits the *inflated* size of a compressed message. A
/// message that inflates to exactly `max_message` bytes but is sent as a
/// 105-byte stored deflate block (incompressible data grows by 5 bytes per
/// block) must be accepted, not refused with 1009 for its wire size.
#[cfg(feature = "deflate")]
#[test]
fn compressed_message_of_exactly_max_message_is_accepted() {
    use wsproto::extension::deflate::DeflateConfig;
    use wsproto::handshake::parse_extensions;
    use wsproto::{Connection, Message};
    let server = |max_message| {
        let mut config = Config::default();
        config.limits.max_message = max_message;
        let mut server = Connection::server(config);
        let offers = parse_extensions("permessage-deflate").unwrap();
        server.enable_deflate(DeflateConfig::default().accept_offer(&offers).unwrap());
        server
    };
    // a stored block (BFINAL 0, BTYPE 00, LEN 100, NLEN !100) of 100 'a's
    let mut payload = vec![0x00, 0x64, 0x00, 0x9b, 0xff];
    payload.extend_from_slice(&[b'a'; 100]);
    // FIN + RSV1 + text, masked
    let wire = frame_bytes(0xC1, &payload);
    assert_eq!(&wire[..2], &[0xC1, 0x80 | 105]); // 105 bytes declared
    let want = Ok(Some(Event::Message(Message::text("a".repeat(100)))));
    // with max_message = 105 the message arrives (the bytes are valid) ...
    let mut roomy = server(105);
    roomy.receive(&wire);
    assert_eq!(roomy.poll_event().map_err(|e| e.close_code()), want);
    // ... with max_message = 100, which the message fits exactly, it fails
    let mut exact = server(100);
    exact.receive(&wire);
    assert_eq!(exact.poll_event().map_err(|e| e.close_code()), want);
}
