//! Load test: 10,000 WebSocket connections open at the same time against the
//! tokio echo server on loopback, each exchanging messages.
//!
//! ```text
//! cargo test --release --all-features --test load -- --ignored --nocapture
//! ```
//!
//! The test raises `RLIMIT_NOFILE` in-process. With the server in the same
//! process it needs about 20,100 descriptors (a client and a server socket
//! per connection). When the hard limit is lower and cannot be raised (no
//! `CAP_SYS_RESOURCE`), the server runs in a child process instead — this
//! test binary re-executed to run `echo_server_child_process` — so that each
//! process needs about 10,100. `WSPROTO_LOAD_SERVER=in-process` or `=child`
//! forces one mode (and fails clearly when the limit does not allow it).
#![cfg(all(feature = "tokio", target_os = "linux"))]

use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::sync::{Barrier, Semaphore};
use tokio::time::timeout;
use wsproto::handshake::{AcceptOptions, ClientRequest};
use wsproto::tokio::{accept_with, client_async, WebSocketStream};
use wsproto::{CloseCode, CloseFrame, CloseReason, Config, Initiator, Message, Utf8Bytes};

/// Connections open at the same time.
const CONNECTIONS: usize = 10_000;
/// Messages each connection sends (see [`message`]).
const MESSAGES: usize = 6;
/// Connects (TCP + WebSocket handshake) in flight at once, so the loopback
/// SYN and accept queues are never overrun.
const CONNECT_CONCURRENCY: usize = 500;
/// Listen backlog (the kernel caps it at `net.core.somaxconn`).
const BACKLOG: u32 = 8192;
/// The whole test, connect to last close.
const OVERALL_TIMEOUT: Duration = Duration::from_secs(120);
/// One send, one echo or one close.
const OP_TIMEOUT: Duration = Duration::from_secs(30);
/// Descriptors beyond the sockets: listener, epoll, eventfds, stdio, pipes.
const FD_HEADROOM: u64 = 100;
/// Set in the child process's environment: run the echo server.
const CHILD_ENV: &str = "WSPROTO_LOAD_CHILD_SERVER";
/// `in-process` or `child` forces where the server runs.
const MODE_ENV: &str = "WSPROTO_LOAD_SERVER";
/// First errors printed in full per process (the rest are only counted).
const MAX_NOTES: u64 = 20;
/// Worker threads per runtime (the CI machine has 2 cores).
const WORKERS: usize = 2;

// ------------------------------------------------------------ open files

/// The open-file limit, through the `libc` crate.
mod sys {
    use std::io;

    /// (soft, hard)
    pub fn nofile() -> io::Result<(u64, u64)> {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `r` is a valid, writable `struct rlimit`.
        if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // rlim_t is 32 bits on some targets
        #[allow(clippy::unnecessary_cast)]
        Ok((r.rlim_cur as u64, r.rlim_max as u64))
    }

    pub fn set_nofile(soft: u64, hard: u64) -> io::Result<()> {
        let r = libc::rlimit {
            rlim_cur: soft as libc::rlim_t,
            rlim_max: hard as libc::rlim_t,
        };
        // SAFETY: `r` is a valid `struct rlimit`.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &r) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

/// Raise the soft `RLIMIT_NOFILE` to the hard limit, first raising the hard
/// limit to `want` if it is lower and we are allowed to. Returns the new
/// (soft, hard).
fn raise_nofile(want: u64) -> (u64, u64) {
    let (soft, hard) = sys::nofile().expect("getrlimit(RLIMIT_NOFILE)");
    if hard < want {
        // needs CAP_SYS_RESOURCE; without it keep the hard limit we have
        let _ = sys::set_nofile(want, want);
    }
    let (_, hard) = sys::nofile().expect("getrlimit(RLIMIT_NOFILE)");
    if soft < hard && sys::set_nofile(hard, hard).is_err() {
        // e.g. an unlimited hard limit above fs.nr_open
        let _ = sys::set_nofile(want.min(hard), hard);
    }
    sys::nofile().expect("getrlimit(RLIMIT_NOFILE)")
}

// ---------------------------------------------------------------- memory

/// (VmRSS, VmHWM) in KiB of `pid`, or of this process.
fn memory_kib(pid: Option<u32>) -> (u64, u64) {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".to_owned(),
    };
    let status = std::fs::read_to_string(&path).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn open_fds(pid: Option<u32>) -> usize {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/fd"),
        None => "/proc/self/fd".to_owned(),
    };
    std::fs::read_dir(path).map(|d| d.count()).unwrap_or(0)
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

/// Return freed heap memory to the OS (glibc), so RSS shows what is live
/// rather than what the allocator keeps cached. `false` where unavailable.
fn trim_heap() -> bool {
    #[cfg(target_env = "gnu")]
    {
        // SAFETY: malloc_trim only takes a size and is thread-safe.
        unsafe { libc::malloc_trim(0) };
        true
    }
    #[cfg(not(target_env = "gnu"))]
    {
        false
    }
}

// ---------------------------------------------------------------- server

/// The server's counters.
#[derive(Default)]
struct ServerStats {
    accepted: AtomicU64,
    accept_errors: AtomicU64,
    handshakes: AtomicU64,
    handshake_errors: AtomicU64,
    open: AtomicU64,
    peak_open: AtomicU64,
    echoed: AtomicU64,
    serve_errors: AtomicU64,
    unclean_closes: AtomicU64,
    notes: AtomicU64,
}

impl ServerStats {
    fn note(&self, what: fmt::Arguments<'_>) {
        if self.notes.fetch_add(1, Relaxed) < MAX_NOTES {
            eprintln!("server: {what}");
        }
    }

    fn snapshot(&self) -> ServerSnapshot {
        ServerSnapshot {
            accepted: self.accepted.load(Relaxed),
            accept_errors: self.accept_errors.load(Relaxed),
            handshakes: self.handshakes.load(Relaxed),
            handshake_errors: self.handshake_errors.load(Relaxed),
            open: self.open.load(Relaxed),
            peak_open: self.peak_open.load(Relaxed),
            echoed: self.echoed.load(Relaxed),
            serve_errors: self.serve_errors.load(Relaxed),
            unclean_closes: self.unclean_closes.load(Relaxed),
        }
    }
}

/// The server's counters at one moment; crosses the pipe from a child
/// server as one `STATS name=value ...` line.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct ServerSnapshot {
    accepted: u64,
    accept_errors: u64,
    handshakes: u64,
    handshake_errors: u64,
    open: u64,
    peak_open: u64,
    echoed: u64,
    serve_errors: u64,
    unclean_closes: u64,
}

impl ServerSnapshot {
    fn fields(&mut self) -> [(&'static str, &mut u64); 9] {
        [
            ("accepted", &mut self.accepted),
            ("accept_errors", &mut self.accept_errors),
            ("handshakes", &mut self.handshakes),
            ("handshake_errors", &mut self.handshake_errors),
            ("open", &mut self.open),
            ("peak_open", &mut self.peak_open),
            ("echoed", &mut self.echoed),
            ("serve_errors", &mut self.serve_errors),
            ("unclean_closes", &mut self.unclean_closes),
        ]
    }

    fn parse(line: &str) -> Option<Self> {
        let rest = &line[line.find("STATS ")? + "STATS ".len()..];
        let mut snap = ServerSnapshot::default();
        let mut seen = 0;
        for pair in rest.split_whitespace() {
            let (name, value) = pair.split_once('=')?;
            let value: u64 = value.parse().ok()?;
            for (n, slot) in snap.fields() {
                if n == name {
                    *slot = value;
                    seen += 1;
                }
            }
        }
        (seen == 9).then_some(snap)
    }
}

impl fmt::Display for ServerSnapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("STATS")?;
        for (name, value) in self.clone().fields() {
            write!(f, " {name}={value}")?;
        }
        Ok(())
    }
}

/// `examples/tokio_echo_server.rs`'s configuration.
fn server_config() -> Config {
    let mut config = Config::default();
    config.limits.max_message = 64 << 20;
    config.limits.max_frame_payload = 64 << 20;
    config
}

/// A listener on 127.0.0.1:0 with a backlog of [`BACKLOG`].
fn listen() -> std::io::Result<TcpListener> {
    let socket = TcpSocket::new_v4()?;
    socket.set_reuseaddr(true)?;
    socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
    socket.listen(BACKLOG)
}

/// `examples/tokio_echo_server.rs`'s accept loop, counting.
async fn run_server(listener: TcpListener, stats: Arc<ServerStats>) {
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            // e.g. out of file descriptors: keep serving the others
            Err(e) => {
                stats.accept_errors.fetch_add(1, Relaxed);
                stats.note(format_args!("accept failed: {e}"));
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        stats.accepted.fetch_add(1, Relaxed);
        let _ = tcp.set_nodelay(true);
        let stats = stats.clone();
        tokio::spawn(async move { serve(tcp, &stats).await });
    }
}

/// `examples/tokio_echo_server.rs`'s connection loop, counting.
async fn serve(tcp: TcpStream, stats: &ServerStats) {
    let accepted = accept_with(tcp, server_config(), |req| {
        let mut opts = AcceptOptions::new();
        if req.protocols().iter().any(|p| p == "chat") {
            opts = opts.protocol("chat");
        }
        Ok(opts)
    })
    .await;
    let mut ws = match accepted {
        Ok(ws) => ws,
        Err(e) => {
            stats.handshake_errors.fetch_add(1, Relaxed);
            stats.note(format_args!("handshake failed: {e}"));
            return;
        }
    };
    stats.handshakes.fetch_add(1, Relaxed);
    let open = stats.open.fetch_add(1, Relaxed) + 1;
    stats.peak_open.fetch_max(open, Relaxed);

    let result = async {
        while let Some(msg) = ws.next().await {
            let msg = msg?;
            if msg.as_text() == Some("close-me") {
                ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "server closing")))
                    .await?;
                break;
            }
            ws.send(msg).await?;
            stats.echoed.fetch_add(1, Relaxed);
        }
        Ok::<_, wsproto::tokio::Error>(())
    }
    .await;
    match result {
        Err(e) => {
            stats.serve_errors.fetch_add(1, Relaxed);
            stats.note(format_args!("connection failed: {e}"));
        }
        Ok(()) => match ws.close_reason() {
            Some(CloseReason::Clean {
                initiator: Initiator::Peer,
                ..
            }) => {}
            other => {
                stats.unclean_closes.fetch_add(1, Relaxed);
                stats.note(format_args!("connection ended with {other:?}"));
            }
        },
    }
    stats.open.fetch_sub(1, Relaxed);
}

fn runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(WORKERS)
        .thread_name(name)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Where the echo server runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    InProcess,
    Child,
}

enum Server {
    InProcess {
        /// Runs the server; kept alive until the test ends.
        _rt: tokio::runtime::Runtime,
        stats: Arc<ServerStats>,
        addr: SocketAddr,
    },
    Child {
        child: Child,
        stdin: Option<ChildStdin>,
        stdout: BufReader<ChildStdout>,
        addr: SocketAddr,
    },
}

impl Server {
    fn start(mode: Mode) -> Server {
        match mode {
            Mode::InProcess => {
                let rt = runtime("echo-server");
                let stats = Arc::new(ServerStats::default());
                let listener = rt
                    .block_on(async { listen() })
                    .expect("listen on 127.0.0.1:0");
                let addr = listener.local_addr().expect("local_addr");
                rt.spawn(run_server(listener, stats.clone()));
                Server::InProcess {
                    _rt: rt,
                    stats,
                    addr,
                }
            }
            Mode::Child => {
                let exe = std::env::current_exe().expect("current_exe");
                let mut child = Command::new(exe)
                    .args([
                        "echo_server_child_process",
                        "--exact",
                        "--ignored",
                        "--nocapture",
                        "--test-threads=1",
                    ])
                    .env(CHILD_ENV, "1")
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::inherit())
                    .spawn()
                    .expect("spawn the echo server child process");
                let stdin = child.stdin.take();
                let mut stdout = BufReader::new(child.stdout.take().expect("child stdout"));
                let mut line = String::new();
                let addr = loop {
                    line.clear();
                    let n = stdout.read_line(&mut line).expect("read child stdout");
                    assert!(
                        n > 0,
                        "the echo server child process exited before listening"
                    );
                    if let Some(at) = line.find("LISTENING ") {
                        break line[at + "LISTENING ".len()..]
                            .trim()
                            .parse()
                            .expect("child listen address");
                    }
                };
                Server::Child {
                    child,
                    stdin,
                    stdout,
                    addr,
                }
            }
        }
    }

    fn addr(&self) -> SocketAddr {
        match self {
            Server::InProcess { addr, .. } | Server::Child { addr, .. } => *addr,
        }
    }

    /// The server's pid, `None` when it is this process.
    fn pid(&self) -> Option<u32> {
        match self {
            Server::InProcess { .. } => None,
            Server::Child { child, .. } => Some(child.id()),
        }
    }

    /// Send `command` to the child server and return its answer line.
    fn ask(
        stdin: &mut Option<ChildStdin>,
        stdout: &mut BufReader<ChildStdout>,
        command: &str,
        answer: &str,
    ) -> String {
        let stdin = stdin.as_mut().expect("child stdin open");
        stdin
            .write_all(format!("{command}\n").as_bytes())
            .and_then(|()| stdin.flush())
            .expect("write to the echo server child");
        let mut line = String::new();
        loop {
            line.clear();
            let n = stdout.read_line(&mut line).expect("read child stdout");
            assert!(n > 0, "the echo server child process exited");
            if let Some(at) = line.find(answer) {
                return line[at..].trim_end().to_owned();
            }
        }
    }

    fn stats(&mut self) -> ServerSnapshot {
        match self {
            Server::InProcess { stats, .. } => stats.snapshot(),
            Server::Child { stdin, stdout, .. } => {
                let line = Server::ask(stdin, stdout, "stats", "STATS ");
                ServerSnapshot::parse(&line).expect("a STATS line")
            }
        }
    }

    /// [`trim_heap`] in the server's process (and in this one).
    fn trim_heap(&mut self) -> bool {
        let here = trim_heap();
        match self {
            Server::InProcess { .. } => here,
            Server::Child { stdin, stdout, .. } => {
                Server::ask(stdin, stdout, "trim", "TRIMMED ") == "TRIMMED true" && here
            }
        }
    }

    /// Poll the counters until `done` holds or `limit` passes.
    fn stats_until(
        &mut self,
        limit: Duration,
        done: impl Fn(&ServerSnapshot) -> bool,
    ) -> ServerSnapshot {
        let deadline = Instant::now() + limit;
        loop {
            let snap = self.stats();
            if done(&snap) || Instant::now() >= deadline {
                return snap;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Server::Child { child, stdin, .. } = self {
            // EOF on its stdin ends the child; kill it in case it is stuck
            drop(stdin.take());
            let deadline = Instant::now() + Duration::from_secs(5);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The out-of-process echo server of the load test; does nothing unless the
/// load test started it (environment variable [`CHILD_ENV`]).
///
/// Protocol on stdio: prints `LISTENING <addr>`, then answers each `stats`
/// line on stdin with a `STATS ...` line and each `trim` line with
/// `TRIMMED <bool>` (see [`trim_heap`]), and exits at EOF.
#[test]
#[ignore = "helper process of ten_thousand_concurrent_connections"]
fn echo_server_child_process() {
    if std::env::var_os(CHILD_ENV).is_none() {
        return;
    }
    let want = CONNECTIONS as u64 + FD_HEADROOM;
    let (soft, hard) = raise_nofile(want);
    assert!(
        soft >= want,
        "echo server child: RLIMIT_NOFILE is {soft} (hard {hard}), need {want}"
    );
    let rt = runtime("echo-server");
    let stats = Arc::new(ServerStats::default());
    let listener = rt
        .block_on(async { listen() })
        .expect("listen on 127.0.0.1:0");
    let addr = listener.local_addr().expect("local_addr");
    rt.spawn(run_server(listener, stats.clone()));
    println!("LISTENING {addr}");
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "stats" => println!("{}", stats.snapshot()),
            "trim" => println!("TRIMMED {}", trim_heap()),
            _ => {}
        }
    }
    // the load test is done (or gone): exit without tearing down the tasks
    let _ = std::io::stdout().flush();
    std::process::exit(0);
}

// ---------------------------------------------------------------- client

/// The clients' counters.
#[derive(Default)]
struct ClientStats {
    handshakes: AtomicU64,
    handshake_errors: AtomicU64,
    sent: AtomicU64,
    echoed: AtomicU64,
    mismatched: AtomicU64,
    lost: AtomicU64,
    exchange_errors: AtomicU64,
    clean_closes: AtomicU64,
    close_errors: AtomicU64,
    finished: AtomicU64,
    notes: AtomicU64,
    first_notes: Mutex<Vec<String>>,
}

impl ClientStats {
    fn note(&self, conn: usize, what: fmt::Arguments<'_>) {
        if self.notes.fetch_add(1, Relaxed) < MAX_NOTES {
            let line = format!("client {conn}: {what}");
            eprintln!("{line}");
            self.first_notes
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(line);
        }
    }

    fn errors(&self) -> u64 {
        self.handshake_errors.load(Relaxed)
            + self.mismatched.load(Relaxed)
            + self.exchange_errors.load(Relaxed)
            + self.close_errors.load(Relaxed)
    }

    fn summary(&self) -> String {
        format!(
            "handshakes={} handshake_errors={} sent={} echoed={} mismatched={} lost={} \
             exchange_errors={} clean_closes={} close_errors={} finished={}",
            self.handshakes.load(Relaxed),
            self.handshake_errors.load(Relaxed),
            self.sent.load(Relaxed),
            self.echoed.load(Relaxed),
            self.mismatched.load(Relaxed),
            self.lost.load(Relaxed),
            self.exchange_errors.load(Relaxed),
            self.clean_closes.load(Relaxed),
            self.close_errors.load(Relaxed),
            self.finished.load(Relaxed),
        )
    }
}

/// Shared by the client tasks and the driver. Each barrier has
/// `CONNECTIONS + 1` parties: every client (failed or not) and the driver.
struct Clients {
    addr: SocketAddr,
    corpus: Corpus,
    stats: ClientStats,
    connect_slots: Semaphore,
    /// Every client has finished its handshake (or failed it).
    all_open: Barrier,
    /// The driver has taken its measurements: start exchanging.
    go: Barrier,
    /// Every client has finished exchanging.
    all_exchanged: Barrier,
    /// The driver has taken its measurements: close.
    close: Barrier,
}

/// Shared payload sources: every message is a zero-copy slice of one of
/// them, so the test's own copies do not dominate the memory figures.
struct Corpus {
    /// Pseudo-random bytes.
    binary: Bytes,
    /// Multi-byte UTF-8 text.
    text: Bytes,
}

const CORPUS_LEN: usize = 256 << 10;

impl Corpus {
    fn new() -> Corpus {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let binary: Vec<u8> = (0..CORPUS_LEN)
            .map(|_| {
                // xorshift64
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        // 16 bytes: 1-, 2-, 3- and 4-byte characters
        let unit = "h\u{e9}llo \u{2713} \u{1f980}w";
        let text = unit.repeat(CORPUS_LEN / unit.len());
        Corpus {
            binary: Bytes::from(binary),
            text: Bytes::from(text),
        }
    }

    /// `len` bytes, starting somewhere that depends on `seed`.
    fn binary(&self, seed: usize, len: usize) -> Message {
        let start = seed.wrapping_mul(7919) % (CORPUS_LEN - len + 1);
        Message::binary(self.binary.slice(start..start + len))
    }

    /// Exactly `len` bytes of text (`len` well below the corpus size),
    /// starting somewhere that depends on `seed`.
    fn text(&self, seed: usize, len: usize) -> Message {
        let s = std::str::from_utf8(&self.text).expect("UTF-8 corpus");
        let mut start = seed.wrapping_mul(7919) % (CORPUS_LEN / 2);
        while !(s.is_char_boundary(start) && s.is_char_boundary(start + len)) {
            start += 1;
        }
        let text = Utf8Bytes::try_from(self.text.slice(start..start + len)).expect("valid");
        Message::Text(text)
    }
}

/// Message `k` of connection `conn`: text and binary, every frame-length
/// encoding (7-bit, 16-bit, 64-bit) at and around its limits, sizes varying
/// per connection.
fn message(corpus: &Corpus, conn: usize, k: usize) -> Message {
    match k {
        0 => Message::text(format!("hello from connection {conn}")),
        1 => corpus.binary(conn, 125),
        2 => corpus.text(conn, 126 + conn % 4000),
        3 => corpus.binary(conn + 1, 64 << 10),
        4 => Message::binary(Bytes::new()),
        5 => corpus.text(conn + 1, 65_535 - conn % 1000),
        _ => unreachable!("MESSAGES is 6"),
    }
}

fn describe(m: &Message) -> String {
    format!("{:?} of {} bytes", m.kind(), m.len())
}

async fn handshake(addr: SocketAddr) -> Result<WebSocketStream<TcpStream>, String> {
    let request = ClientRequest::from_url(&format!("ws://{addr}/load"))
        .map_err(|e| format!("request: {e}"))?
        .protocol("chat");
    let tcp = timeout(OP_TIMEOUT, TcpStream::connect(addr))
        .await
        .map_err(|_| "TCP connect timed out".to_owned())?
        .map_err(|e| format!("TCP connect: {e}"))?;
    tcp.set_nodelay(true)
        .map_err(|e| format!("TCP_NODELAY: {e}"))?;
    let (ws, accepted) = client_async(&request, tcp, Config::default())
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    if accepted.protocol.as_deref() != Some("chat") {
        return Err(format!("server selected {:?}, not chat", accepted.protocol));
    }
    Ok(ws)
}

/// Send each message and check its echo. Returns whether the connection is
/// still usable.
async fn exchange(
    conn: usize,
    ws: &mut WebSocketStream<TcpStream>,
    corpus: &Corpus,
    stats: &ClientStats,
) -> bool {
    for k in 0..MESSAGES {
        let msg = &message(corpus, conn, k);
        let unanswered = (MESSAGES - k) as u64;
        match timeout(OP_TIMEOUT, ws.send(msg.clone())).await {
            Ok(Ok(())) => {
                stats.sent.fetch_add(1, Relaxed);
            }
            Ok(Err(e)) => {
                stats.exchange_errors.fetch_add(1, Relaxed);
                stats.lost.fetch_add(unanswered, Relaxed);
                stats.note(conn, format_args!("sending message {k}: {e}"));
                return false;
            }
            Err(_) => {
                stats.exchange_errors.fetch_add(1, Relaxed);
                stats.lost.fetch_add(unanswered, Relaxed);
                stats.note(conn, format_args!("sending message {k} timed out"));
                return false;
            }
        }
        match timeout(OP_TIMEOUT, ws.next()).await {
            Ok(Some(Ok(echo))) if echo == *msg => {
                stats.echoed.fetch_add(1, Relaxed);
            }
            Ok(Some(Ok(echo))) => {
                stats.mismatched.fetch_add(1, Relaxed);
                stats.note(
                    conn,
                    format_args!(
                        "message {k}: sent {}, echo is {}",
                        describe(msg),
                        describe(&echo)
                    ),
                );
            }
            Ok(Some(Err(e))) => {
                stats.exchange_errors.fetch_add(1, Relaxed);
                stats.lost.fetch_add(unanswered, Relaxed);
                stats.note(conn, format_args!("awaiting echo {k}: {e}"));
                return false;
            }
            Ok(None) => {
                stats.exchange_errors.fetch_add(1, Relaxed);
                stats.lost.fetch_add(unanswered, Relaxed);
                let reason = ws.close_reason();
                stats.note(conn, format_args!("ended awaiting echo {k}: {reason:?}"));
                return false;
            }
            Err(_) => {
                stats.exchange_errors.fetch_add(1, Relaxed);
                stats.lost.fetch_add(unanswered, Relaxed);
                stats.note(conn, format_args!("echo {k} timed out"));
                return false;
            }
        }
    }
    true
}

async fn close(conn: usize, mut ws: WebSocketStream<TcpStream>, stats: &ClientStats) {
    let frame = CloseFrame::new(CloseCode::NORMAL, "load test done");
    match timeout(OP_TIMEOUT, ws.close(Some(frame))).await {
        Ok(Ok(CloseReason::Clean {
            initiator: Initiator::Local,
            peer_frame,
        })) if peer_frame.as_ref().map(|f| f.code) == Some(CloseCode::NORMAL) => {
            match ws.next().await {
                None => {
                    stats.clean_closes.fetch_add(1, Relaxed);
                }
                Some(m) => {
                    stats.close_errors.fetch_add(1, Relaxed);
                    stats.note(conn, format_args!("after a clean close: {m:?}"));
                }
            }
        }
        Ok(Ok(reason)) => {
            stats.close_errors.fetch_add(1, Relaxed);
            stats.note(conn, format_args!("close ended with {reason:?}"));
        }
        Ok(Err(e)) => {
            stats.close_errors.fetch_add(1, Relaxed);
            stats.note(conn, format_args!("close failed: {e}"));
        }
        Err(_) => {
            stats.close_errors.fetch_add(1, Relaxed);
            stats.note(conn, format_args!("close timed out"));
        }
    }
}

/// One client. Always goes through every barrier, whatever fails, so the
/// others are never left waiting.
async fn client(conn: usize, clients: Arc<Clients>) {
    let stats = &clients.stats;
    let ws = {
        let _slot = clients.connect_slots.acquire().await.expect("not closed");
        handshake(clients.addr).await
    };
    let mut ws = match ws {
        Ok(ws) => {
            stats.handshakes.fetch_add(1, Relaxed);
            Some(ws)
        }
        Err(e) => {
            stats.handshake_errors.fetch_add(1, Relaxed);
            stats.lost.fetch_add(MESSAGES as u64, Relaxed);
            stats.note(conn, format_args!("{e}"));
            None
        }
    };
    clients.all_open.wait().await;
    clients.go.wait().await;
    if let Some(w) = &mut ws {
        if !exchange(conn, w, &clients.corpus, stats).await {
            ws = None;
        }
    }
    clients.all_exchanged.wait().await;
    clients.close.wait().await;
    if let Some(ws) = ws {
        close(conn, ws, stats).await;
    }
    stats.finished.fetch_add(1, Relaxed);
}

/// Phase timings and measurements.
#[derive(Default)]
struct Report {
    connect: Duration,
    exchange: Duration,
    close: Duration,
    at_open: Option<ServerSnapshot>,
    mem_open: ((u64, u64), (u64, u64)),
    fds_open: (usize, usize),
    mem_exchanged: ((u64, u64), (u64, u64)),
    /// After [`trim_heap`]; `None` where that is unavailable.
    mem_exchanged_trimmed: Option<((u64, u64), (u64, u64))>,
}

/// (client process, server process) memory; the same in-process.
fn memory(server: &Server) -> ((u64, u64), (u64, u64)) {
    (memory_kib(None), memory_kib(server.pid()))
}

async fn drive(clients: Arc<Clients>, server: &mut Server, report: &mut Report) {
    let start = Instant::now();
    let tasks: Vec<_> = (0..CONNECTIONS)
        .map(|conn| tokio::spawn(client(conn, clients.clone())))
        .collect();

    clients.all_open.wait().await;
    report.connect = start.elapsed();
    let handshakes = clients.stats.handshakes.load(Relaxed);
    // the server counts a connection just after writing its response
    report.at_open = Some(server.stats_until(Duration::from_secs(5), |s| s.open >= handshakes));
    report.mem_open = memory(server);
    report.fds_open = (open_fds(None), open_fds(server.pid()));
    clients.go.wait().await;

    let exchange_start = Instant::now();
    clients.all_exchanged.wait().await;
    report.exchange = exchange_start.elapsed();
    report.mem_exchanged = memory(server);
    report.mem_exchanged_trimmed = server.trim_heap().then(|| memory(server));
    clients.close.wait().await;

    let close_start = Instant::now();
    for (conn, task) in tasks.into_iter().enumerate() {
        if let Err(e) = task.await {
            // a panicking client would have hung the barriers; still report
            clients.stats.note(conn, format_args!("task failed: {e}"));
            clients.stats.close_errors.fetch_add(1, Relaxed);
        }
    }
    report.close = close_start.elapsed();
}

/// Raise the open-file limit and decide where the server runs.
fn choose_mode() -> Mode {
    let conns = CONNECTIONS as u64;
    let in_process = 2 * conns + FD_HEADROOM;
    let child = conns + FD_HEADROOM;
    let (soft, hard) = raise_nofile(in_process);
    let forced = std::env::var(MODE_ENV).ok();
    let mode = match forced.as_deref() {
        Some("in-process") => Mode::InProcess,
        Some("child") => Mode::Child,
        Some(other) => panic!("{MODE_ENV}={other}: expected in-process or child"),
        None if soft >= in_process => Mode::InProcess,
        None => Mode::Child,
    };
    let need = match mode {
        Mode::InProcess => in_process,
        Mode::Child => child,
    };
    assert!(
        soft >= need,
        "RLIMIT_NOFILE: soft limit {soft}, hard limit {hard}; {CONNECTIONS} connections need \
         {need} open files per process with the server {}. Raise the hard limit \
         (`ulimit -Hn {need}` as root, LimitNOFILE= for systemd, --ulimit nofile={need}:{need} \
         for docker) or run with CAP_SYS_RESOURCE.",
        match mode {
            Mode::InProcess => "in-process",
            Mode::Child => "in a child process",
        }
    );
    println!(
        "RLIMIT_NOFILE soft={soft} hard={hard}: echo server {}",
        match (mode, forced.is_some()) {
            (Mode::InProcess, _) => "in-process".to_owned(),
            (Mode::Child, true) => format!("in a child process ({MODE_ENV})"),
            (Mode::Child, false) => format!(
                "in a child process (in-process needs {in_process} open files, the hard \
                 limit is {hard})"
            ),
        }
    );
    mode
}

#[test]
#[ignore = "load test: run with --ignored (CI does)"]
fn ten_thousand_concurrent_connections() {
    let total = Instant::now();
    let mode = choose_mode();
    let mut server = Server::start(mode);
    let mem_before = memory(&server);

    // fail rather than hang even if the runtime wedges
    let (cancel_watchdog, watchdog) = mpsc::channel::<()>();
    std::thread::spawn(move || {
        if let Err(mpsc::RecvTimeoutError::Timeout) =
            watchdog.recv_timeout(OVERALL_TIMEOUT + Duration::from_secs(30))
        {
            eprintln!("load test: watchdog expired, the runtime is stuck; aborting");
            std::process::exit(101);
        }
    });

    let clients = Arc::new(Clients {
        addr: server.addr(),
        corpus: Corpus::new(),
        stats: ClientStats::default(),
        connect_slots: Semaphore::new(CONNECT_CONCURRENCY),
        all_open: Barrier::new(CONNECTIONS + 1),
        go: Barrier::new(CONNECTIONS + 1),
        all_exchanged: Barrier::new(CONNECTIONS + 1),
        close: Barrier::new(CONNECTIONS + 1),
    });
    let rt = runtime("load-client");
    let mut report = Report::default();
    let outcome = rt.block_on(async {
        timeout(
            OVERALL_TIMEOUT,
            drive(clients.clone(), &mut server, &mut report),
        )
        .await
    });
    let _ = cancel_watchdog.send(());
    let stats = &clients.stats;
    if outcome.is_err() {
        let snap = server.stats();
        let hint = if cfg!(debug_assertions) {
            " (a debug build is too slow for this test: use --release)"
        } else {
            ""
        };
        panic!(
            "load test timed out after {OVERALL_TIMEOUT:?}{hint}\n  clients: {}\n  server:  {snap}",
            stats.summary()
        );
    }
    // the server closes its side first, then finishes its task
    let end = server.stats_until(Duration::from_secs(10), |s| s.open == 0);
    let mem_after = memory(&server);
    let mem_after_trimmed = server.trim_heap().then(|| memory(&server));
    drop(rt);

    let per_process = mode == Mode::Child;
    let show = |label: &str, ((crss, chwm), (srss, shwm)): ((u64, u64), (u64, u64))| {
        if per_process {
            println!(
                "  {label:<28} server RSS {:>10} (peak {:>10})   clients RSS {:>10} (peak {:>10})",
                mib(srss),
                mib(shwm),
                mib(crss),
                mib(chwm)
            );
        } else {
            println!(
                "  {label:<28} process (server + clients) RSS {:>10} (peak {:>10})",
                mib(srss),
                mib(shwm)
            );
        }
    };
    println!(
        "load: {CONNECTIONS} connections, {MESSAGES} messages each, server {}",
        if per_process {
            "in a child process"
        } else {
            "in-process"
        }
    );
    println!(
        "  connect phase (all open)     {:>8.2?}  ({:.0} handshakes/s, {CONNECT_CONCURRENCY} in flight)",
        report.connect,
        CONNECTIONS as f64 / report.connect.as_secs_f64()
    );
    println!("  exchange phase               {:>8.2?}", report.exchange);
    println!("  close phase                  {:>8.2?}", report.close);
    println!("  total                        {:>8.2?}", total.elapsed());
    if per_process {
        println!(
            "  open files when all open:    server {}, clients {}",
            report.fds_open.1, report.fds_open.0
        );
    } else {
        println!(
            "  open files when all open:    {} (server + clients)",
            report.fds_open.0
        );
    }
    show("before connecting:", mem_before);
    show("all open, before exchange:", report.mem_open);
    show("all open, after exchange:", report.mem_exchanged);
    if let Some(m) = report.mem_exchanged_trimmed {
        show("  same, after malloc_trim:", m);
    }
    show("after all closed:", mem_after);
    if let Some(m) = mem_after_trimmed {
        show("  same, after malloc_trim:", m);
    }
    println!("  clients: {}", stats.summary());
    println!("  server:  {end}");

    let expected = (CONNECTIONS * MESSAGES) as u64;
    let notes = stats
        .first_notes
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .join("\n    ");
    assert_eq!(
        stats.handshakes.load(Relaxed),
        CONNECTIONS as u64,
        "not every handshake succeeded; first errors:\n    {notes}"
    );
    assert_eq!(stats.errors(), 0, "client errors; first:\n    {notes}");
    assert_eq!(stats.lost.load(Relaxed), 0, "messages lost:\n    {notes}");
    assert_eq!(stats.sent.load(Relaxed), expected, "messages sent");
    assert_eq!(stats.echoed.load(Relaxed), expected, "echoes verified");
    assert_eq!(
        stats.clean_closes.load(Relaxed),
        CONNECTIONS as u64,
        "clean closes"
    );
    assert_eq!(stats.finished.load(Relaxed), CONNECTIONS as u64);
    let at_open = report.at_open.expect("measured");
    assert_eq!(
        at_open.open, CONNECTIONS as u64,
        "server connections open when every client had finished its handshake"
    );
    assert_eq!(
        end,
        ServerSnapshot {
            accepted: CONNECTIONS as u64,
            handshakes: CONNECTIONS as u64,
            peak_open: CONNECTIONS as u64,
            echoed: expected,
            ..ServerSnapshot::default()
        },
        "server counters (accept/handshake/serve errors, unclean closes, open at the end)"
    );
}
