//! A neutral WebSocket load generator for comparing echo servers
//! (`tokio_echo_server`, `tungstenite_echo_server`,
//! `fastwebsockets_echo_server`); `perf/loadgen.sh` drives it.
//!
//! ```text
//! cargo run --release --example loadgen -- ws://127.0.0.1:9001/ \
//!     --conns 64 --size 32 --binary --duration 5 --warmup 1 \
//!     --server-pid PID --server-name wsproto
//! cargo run --release --example loadgen -- ws://127.0.0.1:9001/ \
//!     --idle 5000 --server-pid PID --server-name wsproto
//! ```
//!
//! It favours no server: the client side uses no WebSocket library (not
//! wsproto either). It writes the HTTP upgrade request itself and checks the
//! `101` and the `Sec-WebSocket-Accept` of the fixed RFC 6455 sample key; each
//! connection encodes its masked client frame once and writes the same bytes
//! for every message; a minimal parser reads the server's (unmasked) frames
//! and compares the echoed payload with what was sent.
//!
//! **Load mode** (default): `--conns` connections in a closed loop, each
//! sends one message of `--size` bytes (`--binary`, the default, or
//! `--text`: valid UTF-8, mostly ASCII with some 2-, 3- and 4-byte
//! characters), waits for its whole echo, and repeats. After `--warmup`
//! seconds it measures for `--duration` seconds: messages per second, p50 and
//! p99 round-trip latency, and with `--server-pid` the server process's CPU
//! time (utime + stime from `/proc/PID/stat`) per message. The generator's
//! own CPU per message is reported too: if it nears one core per generator
//! thread, the generator, not the server, is the bottleneck.
//!
//! **Idle-memory mode** (`--idle N`, needs `--server-pid`): opens N
//! connections and completes the handshake on each, waits, and reads the
//! server's `VmRSS` (from `/proc/PID/status`) before and after: KiB per
//! connection after the handshake. Then it sends one `--idle-msg-size`
//! (16 KiB) binary message on each connection (`--idle-concurrency` at a
//! time), reads the echo, waits, and reads `VmRSS` again: KiB per connection
//! after one echo. A few connections (`--idle-warmup`) open, echo and close
//! before the baseline reading, so the allocator and runtime are warm. It
//! raises its own `RLIMIT_NOFILE` to the hard limit; the server needs N file
//! descriptors as well (`ulimit -n`).
//!
//! Output: one machine-readable line starting with `RESULT ` (space-separated
//! `key=value`), and one line for humans.

use std::io;
use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::stream::{self, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const USAGE: &str = "\
usage: loadgen ws://HOST:PORT[/PATH] [options]
  --conns N            connections in load mode (64)
  --size BYTES         message size in load mode (32)
  --binary | --text    message type in load mode (binary)
  --duration SECS      measured window (5)
  --warmup SECS        unmeasured warm-up before the window (1)
  --server-pid PID     server process: CPU per message, RSS in idle mode
  --server-name NAME   label for the RESULT line (server)
  --threads N          generator worker threads (available cores)
  --idle N             idle-memory mode with N connections
  --idle-wait SECS     settle time before each RSS reading (2)
  --idle-msg-size B    message echoed once per idle connection (16384)
  --idle-concurrency N connections echoing at once in idle mode (64)
  --idle-warmup N      connections opened, echoed and closed first (4)
  --connect-concurrency N  handshakes in flight at once (256)";

/// The sample key of RFC 6455 §1.3 and its accept value.
const WS_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const WS_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

const OP_CONT: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;

const PHASE_WARMUP: u8 = 0;
const PHASE_MEASURE: u8 = 1;
const PHASE_STOP: u8 = 2;

#[derive(Clone, Debug)]
struct Args {
    addr: SocketAddr,
    host: String,
    path: String,
    conns: usize,
    size: usize,
    text: bool,
    duration: f64,
    warmup: f64,
    server_pid: Option<i32>,
    server_name: String,
    threads: Option<usize>,
    idle: Option<usize>,
    idle_wait: f64,
    idle_msg_size: usize,
    idle_concurrency: usize,
    idle_warmup: usize,
    connect_concurrency: usize,
}

fn parse_args() -> Result<Args, String> {
    let mut url = None;
    let mut a = Args {
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        host: String::new(),
        path: "/".into(),
        conns: 64,
        size: 32,
        text: false,
        duration: 5.0,
        warmup: 1.0,
        server_pid: None,
        server_name: "server".into(),
        threads: None,
        idle: None,
        idle_wait: 2.0,
        idle_msg_size: 16 << 10,
        idle_concurrency: 64,
        idle_warmup: 4,
        connect_concurrency: 256,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        fn num<T: std::str::FromStr>(name: &str, v: String) -> Result<T, String> {
            v.parse().map_err(|_| format!("{name}: bad value {v:?}"))
        }
        match arg.as_str() {
            "--conns" => a.conns = num(&arg, value(&arg)?)?,
            "--size" => a.size = num(&arg, value(&arg)?)?,
            "--binary" => a.text = false,
            "--text" => a.text = true,
            "--duration" => a.duration = num(&arg, value(&arg)?)?,
            "--warmup" => a.warmup = num(&arg, value(&arg)?)?,
            "--server-pid" => a.server_pid = Some(num(&arg, value(&arg)?)?),
            "--server-name" => a.server_name = value(&arg)?,
            "--threads" => a.threads = Some(num(&arg, value(&arg)?)?),
            "--idle" => a.idle = Some(num(&arg, value(&arg)?)?),
            "--idle-wait" => a.idle_wait = num(&arg, value(&arg)?)?,
            "--idle-msg-size" => a.idle_msg_size = num(&arg, value(&arg)?)?,
            "--idle-concurrency" => a.idle_concurrency = num(&arg, value(&arg)?)?,
            "--idle-warmup" => a.idle_warmup = num(&arg, value(&arg)?)?,
            "--connect-concurrency" => a.connect_concurrency = num(&arg, value(&arg)?)?,
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            s if s.starts_with("--") => return Err(format!("unknown option {s}")),
            _ if url.is_none() => url = Some(arg),
            _ => return Err(format!("unexpected argument {arg:?}")),
        }
    }
    let url = url.ok_or("missing the server address (ws://HOST:PORT/)")?;
    let rest = url.strip_prefix("ws://").unwrap_or(&url);
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    a.host = authority.to_string();
    a.path = path.to_string();
    a.addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("{authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority}: no address"))?;
    if a.conns == 0 || a.duration <= 0.0 || a.warmup < 0.0 {
        return Err("--conns and --duration must be positive".into());
    }
    if a.idle_concurrency == 0 || a.connect_concurrency == 0 {
        return Err("concurrency limits must be positive".into());
    }
    if a.idle.is_some() && a.server_pid.is_none() {
        return Err("--idle needs --server-pid (it reads the server's RSS)".into());
    }
    Ok(a)
}

fn main() {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("loadgen: {e}\n{USAGE}");
            std::process::exit(2);
        }
    };
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let result = if let Some(n) = args.idle {
        rt.block_on(idle_mode(&args, n))
    } else {
        rt.block_on(load_mode(&args, threads))
    };
    // do not wait for stray tasks (a server that stopped answering)
    rt.shutdown_timeout(Duration::from_millis(100));
    if let Err(e) = result {
        eprintln!("loadgen: {e}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------
// Frames

/// A small xorshift generator: payloads and masking keys, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
}

/// `size` bytes: random for binary; for text valid UTF-8, mostly ASCII with
/// some multi-byte characters.
fn make_payload(size: usize, text: bool, rng: &mut Rng) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    if !text {
        while out.len() < size {
            let bytes = rng.next().to_le_bytes();
            let n = (size - out.len()).min(8);
            out.extend_from_slice(&bytes[..n]);
        }
        return out;
    }
    const WORDS: [&str; 8] = [
        "hello ",
        "websocket ",
        "échange ",
        "données ",
        "日本語 ",
        "echo ",
        "🦀 ",
        "sans-io ",
    ];
    while out.len() < size {
        let w = WORDS[(rng.next() % WORDS.len() as u64) as usize].as_bytes();
        if out.len() + w.len() <= size {
            out.extend_from_slice(w);
        } else {
            out.push(b'.');
        }
    }
    debug_assert!(std::str::from_utf8(&out).is_ok());
    out
}

/// One masked client frame with FIN set.
fn encode_client_frame(opcode: u8, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
    let mut f = Vec::with_capacity(payload.len() + 14);
    f.push(0x80 | opcode);
    let len = payload.len();
    if len < 126 {
        f.push(0x80 | len as u8);
    } else if len <= 0xFFFF {
        f.push(0x80 | 126);
        f.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        f.push(0x80 | 127);
        f.extend_from_slice(&(len as u64).to_be_bytes());
    }
    f.extend_from_slice(&mask);
    f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i & 3]));
    f
}

fn close_frame(mask: [u8; 4]) -> Vec<u8> {
    encode_client_frame(OP_CLOSE, &1000u16.to_be_bytes(), mask)
}

fn invalid(msg: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.into())
}

/// Reads the server's frames from a fixed buffer, without copying payloads
/// out of it.
struct Reader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

impl Reader {
    fn new(capacity: usize, leftover: &[u8]) -> Self {
        let mut buf = vec![0; capacity.max(leftover.len()).max(64)];
        buf[..leftover.len()].copy_from_slice(leftover);
        Reader {
            buf,
            start: 0,
            end: leftover.len(),
        }
    }

    fn available(&self) -> &[u8] {
        &self.buf[self.start..self.end]
    }

    /// Reads more bytes; keeps the unconsumed ones (moved to the front when
    /// fewer than `want` contiguous bytes would otherwise fit).
    async fn fill(&mut self, tcp: &mut TcpStream, want: usize) -> io::Result<()> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() || self.buf.len() - self.start < want {
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let n = tcp.read(&mut self.buf[self.end..]).await?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        self.end += n;
        Ok(())
    }

    /// Reads one frame header: (fin, opcode, payload length).
    async fn header(&mut self, tcp: &mut TcpStream) -> io::Result<(bool, u8, u64)> {
        loop {
            let b = self.available();
            if b.len() >= 2 {
                if b[1] & 0x80 != 0 {
                    return Err(invalid("masked frame from the server"));
                }
                let (hlen, len) = match b[1] & 0x7F {
                    126 if b.len() >= 4 => (4, u16::from_be_bytes([b[2], b[3]]) as u64),
                    127 if b.len() >= 10 => {
                        let mut l = [0; 8];
                        l.copy_from_slice(&b[2..10]);
                        (10, u64::from_be_bytes(l))
                    }
                    126 | 127 => (0, 0),
                    n => (2, n as u64),
                };
                if hlen > 0 {
                    let (fin, opcode) = (b[0] & 0x80 != 0, b[0] & 0x0F);
                    self.start += hlen;
                    return Ok((fin, opcode, len));
                }
            }
            self.fill(tcp, 14).await?;
        }
    }

    /// Consumes `len` payload bytes; compares them with `expect` (or only
    /// skips them when `expect` is `None`).
    async fn payload(
        &mut self,
        tcp: &mut TcpStream,
        mut len: u64,
        mut expect: Option<&[u8]>,
    ) -> io::Result<()> {
        while len > 0 {
            if self.start == self.end {
                self.fill(tcp, 1).await?;
            }
            let n = (self.end - self.start).min(len.min(usize::MAX as u64) as usize);
            if let Some(e) = expect {
                if self.buf[self.start..self.start + n] != e[..n] {
                    return Err(invalid("echo differs from the message sent"));
                }
                expect = Some(&e[n..]);
            }
            self.start += n;
            len -= n as u64;
        }
        Ok(())
    }

    /// Reads one whole message (possibly fragmented) and checks that it is
    /// the echo of `sent` with opcode `opcode`. Control frames from the
    /// server are skipped; a close frame is an error.
    async fn echo(&mut self, tcp: &mut TcpStream, opcode: u8, sent: &[u8]) -> io::Result<()> {
        let mut got = 0usize;
        let mut started = false;
        loop {
            let (fin, op, len) = self.header(tcp).await?;
            if op >= 8 {
                self.payload(tcp, len, None).await?;
                if op == OP_CLOSE {
                    return Err(invalid("the server closed the connection"));
                }
                continue;
            }
            let expected_op = if started { OP_CONT } else { opcode };
            if op != expected_op {
                return Err(invalid(format!(
                    "opcode {op} in the echo, expected {expected_op}"
                )));
            }
            started = true;
            if len > (sent.len() - got) as u64 {
                return Err(invalid("echo longer than the message sent"));
            }
            let len = len as usize;
            self.payload(tcp, len as u64, Some(&sent[got..got + len]))
                .await?;
            got += len;
            if fin {
                if got != sent.len() {
                    return Err(invalid(format!("echo of {got} bytes, sent {}", sent.len())));
                }
                return Ok(());
            }
        }
    }
}

/// Connects and performs the opening handshake; returns the stream and any
/// bytes read past the response head.
async fn connect(args: &Args) -> io::Result<(TcpStream, Vec<u8>)> {
    let mut tcp = TcpStream::connect(args.addr).await?;
    tcp.set_nodelay(true)?;
    let request = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: {WS_KEY}\r\nSec-WebSocket-Version: 13\r\n\r\n",
        args.path, args.host
    );
    tcp.write_all(request.as_bytes()).await?;
    let mut buf = Vec::with_capacity(512);
    let mut chunk = [0u8; 1024];
    let head_end = loop {
        let n = tcp.read(&mut chunk).await?;
        if n == 0 {
            return Err(invalid("EOF during the handshake"));
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        if buf.len() > 16 << 10 {
            return Err(invalid("handshake response head too long"));
        }
    };
    let head = std::str::from_utf8(&buf[..head_end])
        .map_err(|_| invalid("handshake response is not UTF-8"))?;
    let mut lines = head.split("\r\n");
    let status = lines.next().unwrap_or("");
    if !status.starts_with("HTTP/1.1 101") {
        return Err(invalid(format!("handshake refused: {status:?}")));
    }
    let accept = lines.find_map(|l| {
        let (name, value) = l.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("sec-websocket-accept")
            .then(|| value.trim())
    });
    if accept != Some(WS_ACCEPT) {
        return Err(invalid(format!("bad Sec-WebSocket-Accept: {accept:?}")));
    }
    Ok((tcp, buf[head_end..].to_vec()))
}

/// Sends a close frame and waits (briefly) for the server to end the
/// connection. Errors do not matter here.
async fn goodbye(mut tcp: TcpStream, mask: [u8; 4]) {
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        tcp.write_all(&close_frame(mask)).await?;
        let mut sink = [0u8; 256];
        while tcp.read(&mut sink).await? > 0 {}
        Ok::<_, io::Error>(())
    })
    .await;
}

// ---------------------------------------------------------------------------
// /proc readings

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let t = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if t > 0 {
        t as f64
    } else {
        100.0
    }
}

/// utime + stime of a process (all its threads), in clock ticks.
fn cpu_ticks(pid: &str) -> io::Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e} (did the server exit?)")))?;
    // the command name may contain spaces and parentheses: skip past the last ')'
    let rest = &stat[stat.rfind(')').ok_or_else(|| invalid("bad /proc stat"))? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields after the name start at field 3 (state); utime is 14, stime 15
    let field = |i: usize| -> io::Result<u64> {
        fields
            .get(i - 3)
            .and_then(|f| f.parse().ok())
            .ok_or_else(|| invalid("bad /proc stat"))
    };
    Ok(field(14)? + field(15)?)
}

fn rss_kib(pid: i32) -> io::Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path)
        .map_err(|e| io::Error::new(e.kind(), format!("{path}: {e} (did the server exit?)")))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .ok_or_else(|| invalid("no VmRSS in /proc status"))
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    // nearest rank
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1] as f64
}

// ---------------------------------------------------------------------------
// Load mode

struct Shared {
    phase: AtomicU8,
    count: AtomicU64,
}

async fn load_conn(
    mut tcp: TcpStream,
    leftover: Vec<u8>,
    index: usize,
    args: Arc<Args>,
    shared: Arc<Shared>,
) -> io::Result<Vec<u32>> {
    let mut rng = Rng::new(index as u64 + 1);
    let opcode = if args.text { OP_TEXT } else { OP_BINARY };
    let payload = make_payload(args.size, args.text, &mut rng);
    let mask = (rng.next() as u32).to_le_bytes();
    // encoded once, written for every message
    let frame = encode_client_frame(opcode, &payload, mask);
    let mut reader = Reader::new((args.size + 14).clamp(4 << 10, 64 << 10), &leftover);
    let mut latencies = Vec::with_capacity(1 << 14);
    while shared.phase.load(Ordering::Relaxed) != PHASE_STOP {
        let t0 = Instant::now();
        tcp.write_all(&frame).await?;
        reader.echo(&mut tcp, opcode, &payload).await?;
        let rtt = t0.elapsed();
        shared.count.fetch_add(1, Ordering::Relaxed);
        if shared.phase.load(Ordering::Relaxed) == PHASE_MEASURE {
            latencies.push(rtt.as_nanos().min(u32::MAX as u128) as u32);
        }
    }
    goodbye(tcp, mask).await;
    Ok(latencies)
}

async fn load_mode(args: &Args, threads: usize) -> io::Result<()> {
    let args = Arc::new(args.clone());
    // all connections are established before the clock starts
    let conns: Vec<io::Result<(TcpStream, Vec<u8>)>> = stream::iter(0..args.conns)
        .map(|_| connect(&args))
        .buffer_unordered(args.connect_concurrency)
        .collect()
        .await;
    let mut streams = Vec::with_capacity(conns.len());
    for c in conns {
        streams.push(c.map_err(|e| io::Error::new(e.kind(), format!("connect: {e}")))?);
    }
    let shared = Arc::new(Shared {
        phase: AtomicU8::new(PHASE_WARMUP),
        count: AtomicU64::new(0),
    });
    let mut tasks = tokio::task::JoinSet::new();
    for (i, (tcp, leftover)) in streams.into_iter().enumerate() {
        tasks.spawn(load_conn(tcp, leftover, i, args.clone(), shared.clone()));
    }
    let server_pid = args.server_pid.map(|p| p.to_string());
    let server_cpu = || server_pid.as_deref().map(cpu_ticks).transpose();

    tokio::time::sleep(Duration::from_secs_f64(args.warmup)).await;
    let (srv0, own0) = (server_cpu()?, cpu_ticks("self")?);
    let count0 = shared.count.load(Ordering::Relaxed);
    let t0 = Instant::now();
    shared.phase.store(PHASE_MEASURE, Ordering::Relaxed);

    tokio::time::sleep(Duration::from_secs_f64(args.duration)).await;
    let (srv1, own1) = (server_cpu()?, cpu_ticks("self")?);
    let count1 = shared.count.load(Ordering::Relaxed);
    let elapsed = t0.elapsed().as_secs_f64();
    shared.phase.store(PHASE_STOP, Ordering::Relaxed);

    let mut latencies: Vec<u64> = Vec::new();
    let mut errors = 0usize;
    let mut first_error = None;
    let collect = async {
        while let Some(r) = tasks.join_next().await {
            match r {
                Ok(Ok(l)) => latencies.extend(l.into_iter().map(u64::from)),
                Ok(Err(e)) => {
                    errors += 1;
                    first_error.get_or_insert(e.to_string());
                }
                Err(e) => {
                    errors += 1;
                    first_error.get_or_insert(e.to_string());
                }
            }
        }
    };
    if tokio::time::timeout(Duration::from_secs(10), collect)
        .await
        .is_err()
    {
        errors += tasks.len();
        first_error.get_or_insert("no echo within 10 s after the window".into());
        tasks.abort_all();
    }
    latencies.sort_unstable();

    let msgs = count1 - count0;
    let ticks = clock_ticks();
    let per_msg = |cpu: Option<(u64, u64)>| -> Option<f64> {
        let (a, b) = cpu?;
        (msgs > 0).then(|| (b - a) as f64 / ticks * 1e6 / msgs as f64)
    };
    let srv = srv0.zip(srv1);
    let server_us = per_msg(srv);
    let server_cores = srv.map(|(a, b)| (b - a) as f64 / ticks / elapsed);
    let own_us = per_msg(Some((own0, own1)));
    let own_cores = (own1 - own0) as f64 / ticks / elapsed;
    let rate = msgs as f64 / elapsed;
    let p50 = percentile(&latencies, 50.0) / 1e3;
    let p99 = percentile(&latencies, 99.0) / 1e3;
    let kind = if args.text { "text" } else { "binary" };
    let fmt = |v: Option<f64>, prec: usize| match v {
        Some(v) if v.is_finite() => format!("{v:.prec$}"),
        _ => "NA".into(),
    };
    println!(
        "RESULT server={} mode=load conns={} size={} kind={kind} threads={threads} \
         duration_s={elapsed:.2} msgs={msgs} msgs_per_s={rate:.0} p50_us={p50:.1} p99_us={p99:.1} \
         cpu_us_per_msg={} server_cpu_cores={} loadgen_cpu_us_per_msg={} \
         loadgen_cpu_cores={own_cores:.2} errors={errors}",
        args.server_name,
        args.conns,
        args.size,
        fmt(server_us, 2),
        fmt(server_cores, 2),
        fmt(own_us, 2),
    );
    println!(
        "{}: {} conns x {} B {kind}: {rate:.0} msg/s, RTT p50 {p50:.1} us p99 {p99:.1} us, \
         server CPU {} us/msg ({} cores), loadgen CPU {} us/msg ({own_cores:.2} cores)",
        args.server_name,
        args.conns,
        args.size,
        fmt(server_us, 2),
        fmt(server_cores, 2),
        fmt(own_us, 2),
    );
    if errors > 0 {
        return Err(io::Error::other(format!(
            "{errors} connection(s) failed; first: {}",
            first_error.unwrap_or_default()
        )));
    }
    if msgs == 0 {
        return Err(io::Error::other("no message completed in the window"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Idle-memory mode

/// Raises the soft `RLIMIT_NOFILE` to the hard limit; returns the new soft
/// limit.
fn raise_nofile_limit() -> io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(io::Error::last_os_error());
    }
    if lim.rlim_cur < lim.rlim_max {
        lim.rlim_cur = lim.rlim_max;
        // SAFETY: `lim` is a valid rlimit, cur <= max.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &lim) } != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    // rlim_t is u64 on 64-bit Linux, not everywhere
    #[allow(clippy::unnecessary_cast)]
    Ok(lim.rlim_cur as u64)
}

struct IdleConn {
    tcp: TcpStream,
    leftover: Vec<u8>,
}

/// Sends `frame` and reads its echo (a fresh reader: idle connections hold
/// no buffer on our side).
async fn echo_once(conn: &mut IdleConn, frame: &[u8], payload: &[u8]) -> io::Result<()> {
    let leftover = std::mem::take(&mut conn.leftover);
    let mut reader = Reader::new(payload.len() + 14, &leftover);
    conn.tcp.write_all(frame).await?;
    reader.echo(&mut conn.tcp, OP_BINARY, payload).await?;
    conn.leftover = reader.available().to_vec();
    Ok(())
}

async fn open_all(args: &Args, n: usize) -> (Vec<IdleConn>, Vec<io::Error>) {
    let results: Vec<io::Result<IdleConn>> = stream::iter(0..n)
        .map(|_| async {
            let (tcp, leftover) = tokio::time::timeout(Duration::from_secs(30), connect(args))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "handshake timed out"))??;
            Ok(IdleConn { tcp, leftover })
        })
        .buffer_unordered(args.connect_concurrency)
        .collect()
        .await;
    let mut ok = Vec::with_capacity(n);
    let mut errs = Vec::new();
    for r in results {
        match r {
            Ok(c) => ok.push(c),
            Err(e) => errs.push(e),
        }
    }
    (ok, errs)
}

/// One echo on every connection, `concurrency` at a time; returns the
/// connections and the number of failures.
async fn echo_all(
    conns: Vec<IdleConn>,
    concurrency: usize,
    frame: &[u8],
    payload: &[u8],
) -> (Vec<IdleConn>, usize, Option<io::Error>) {
    let results: Vec<(IdleConn, io::Result<()>)> = stream::iter(conns)
        .map(|mut c| async move {
            let r =
                tokio::time::timeout(Duration::from_secs(30), echo_once(&mut c, frame, payload))
                    .await
                    .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "no echo")));
            (c, r)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let mut failed = 0;
    let mut first = None;
    let mut conns = Vec::with_capacity(results.len());
    for (c, r) in results {
        if let Err(e) = r {
            failed += 1;
            first.get_or_insert(e);
        }
        conns.push(c);
    }
    (conns, failed, first)
}

async fn close_all(conns: Vec<IdleConn>) {
    stream::iter(conns)
        .for_each_concurrent(512, |c| goodbye(c.tcp, [1, 2, 3, 4]))
        .await;
}

async fn idle_mode(args: &Args, n: usize) -> io::Result<()> {
    let pid = args.server_pid.expect("checked in parse_args");
    let limit = raise_nofile_limit()?;
    // our sockets + a margin for stdio, the runtime and the warm-up ones
    if (n as u64).saturating_add(args.idle_warmup as u64 + 64) > limit {
        return Err(io::Error::other(format!(
            "{n} connections are not reachable: RLIMIT_NOFILE hard limit is {limit} \
             (raise it with `ulimit -Hn` as root, or lower --idle)"
        )));
    }
    let mut rng = Rng::new(0x1d1e);
    let payload = make_payload(args.idle_msg_size, false, &mut rng);
    let frame = encode_client_frame(OP_BINARY, &payload, [0x37, 0xfa, 0x21, 0x3d]);

    // warm-up: the allocator and the runtime's first-use costs are not per connection
    if args.idle_warmup > 0 {
        let (warm, errs) = open_all(args, args.idle_warmup).await;
        if let Some(e) = errs.into_iter().next() {
            return Err(io::Error::new(e.kind(), format!("warm-up connect: {e}")));
        }
        let (warm, failed, first) = echo_all(warm, args.idle_concurrency, &frame, &payload).await;
        if failed > 0 {
            return Err(io::Error::other(format!(
                "warm-up echo: {}",
                first.map(|e| e.to_string()).unwrap_or_default()
            )));
        }
        close_all(warm).await;
    }
    let settle = Duration::from_secs_f64(args.idle_wait);
    tokio::time::sleep(settle).await;
    let rss0 = rss_kib(pid)?;

    let t = Instant::now();
    let (conns, errs) = open_all(args, n).await;
    let connect_s = t.elapsed().as_secs_f64();
    if !errs.is_empty() {
        let msg = format!(
            "{n} connections are not reachable: {} of {n} completed the handshake, {} failed \
             (first error: {}); check the server's `ulimit -n` and the ephemeral port range",
            conns.len(),
            errs.len(),
            errs[0]
        );
        close_all(conns).await;
        return Err(io::Error::other(msg));
    }
    tokio::time::sleep(settle).await;
    let rss1 = rss_kib(pid)?;

    let t = Instant::now();
    let (conns, failed, first) = echo_all(conns, args.idle_concurrency, &frame, &payload).await;
    let echo_s = t.elapsed().as_secs_f64();
    tokio::time::sleep(settle).await;
    let rss2 = rss_kib(pid)?;
    close_all(conns).await;
    if failed > 0 {
        return Err(io::Error::other(format!(
            "{failed} of {n} echoes failed (first: {})",
            first.map(|e| e.to_string()).unwrap_or_default()
        )));
    }

    let per = |a: u64, b: u64| (b as f64 - a as f64) / n as f64;
    let (hs, echo) = (per(rss0, rss1), per(rss0, rss2));
    println!(
        "RESULT server={} mode=idle conns={n} msg_size={} rss_base_kib={rss0} \
         rss_handshake_kib={rss1} rss_echo_kib={rss2} kib_per_conn_handshake={hs:.2} \
         kib_per_conn_echo={echo:.2} connect_s={connect_s:.2} echo_s={echo_s:.2}",
        args.server_name, args.idle_msg_size,
    );
    println!(
        "{}: {n} idle connections: {hs:.2} KiB/conn after the handshake, {echo:.2} KiB/conn \
         after one {} B echo (RSS {rss0} -> {rss1} -> {rss2} KiB)",
        args.server_name, args.idle_msg_size,
    );
    Ok(())
}
