//! permessage-deflate cost on a chat-like JSON workload.
//!
//! ```text
//! cargo bench --features deflate --bench deflate -- --warm-up-time 1 --measurement-time 2
//! ```
//!
//! One client -> server connection pair, in memory: the client `send`s each
//! message (compress + mask + frame), the bytes go straight to the server,
//! which `receive`s and polls the event (unmask + inflate + UTF-8 check).
//! Throughput is MB/s of *uncompressed* payload, so the variants compare
//! directly:
//!
//! * `plain`: no extension (the baseline),
//! * `deflate-takeover`: permessage-deflate with context takeover (the
//!   default), level 6,
//! * `deflate-no-takeover`: `client_no_context_takeover` (the compressor is
//!   reset and released after every message),
//! * `deflate-takeover-level1`: context takeover at zlib level 1,
//! * `zlib-rs-only-takeover`: the same compress (sync flush, tail
//!   stripped) and inflate calls on flate2 directly, without wsproto: the
//!   floor for `deflate-takeover`.
//!
//! The compression ratio (wire bytes / payload bytes) is printed once per
//! variant before timing, after a correctness pass that checks every message
//! arrives intact.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress};
use wsproto::extension::deflate::DeflateConfig;
use wsproto::handshake::parse_extensions;
use wsproto::{Config, Connection, Event, Message, Role};

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const USERS: &[&str] = &[
    "alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi", "ivan", "judy", "mallory",
    "niaj", "olivia", "peggy", "rupert", "sybil", "trent", "victor", "walter", "xena", "yusuf",
    "zoe", "amir", "bea", "chen", "dmitri", "elena", "farah", "goran", "hana",
];
const ROOMS: &[&str] = &[
    "lobby",
    "lobby",
    "lobby",
    "dev",
    "random",
    "support",
    "ops-alerts",
];
const WORDS: &[&str] = &[
    "the",
    "a",
    "to",
    "and",
    "is",
    "it",
    "that",
    "for",
    "on",
    "with",
    "we",
    "you",
    "this",
    "be",
    "deploy",
    "build",
    "release",
    "merge",
    "branch",
    "review",
    "test",
    "tests",
    "flaky",
    "green",
    "red",
    "pipeline",
    "cache",
    "latency",
    "p99",
    "database",
    "migration",
    "rollback",
    "staging",
    "production",
    "customer",
    "ticket",
    "meeting",
    "lunch",
    "coffee",
    "tomorrow",
    "today",
    "yesterday",
    "afternoon",
    "please",
    "thanks",
    "sure",
    "maybe",
    "later",
    "now",
    "soon",
    "looks",
    "good",
    "great",
    "weird",
    "broken",
    "fixed",
    "again",
    "still",
    "should",
    "could",
    "would",
    "works",
    "failing",
    "timeout",
    "error",
    "warning",
    "config",
    "server",
    "client",
    "connection",
    "websocket",
    "compression",
    "memory",
    "cpu",
    "disk",
    "network",
    "dns",
    "tls",
    "certificate",
    "expired",
    "renewed",
    "on-call",
    "incident",
    "postmortem",
    "dashboard",
    "graph",
    "metric",
    "alert",
    "paged",
    "quiet",
    "weekend",
    "holiday",
    "sprint",
    "backlog",
    "estimate",
    "deadline",
    "friday",
    "monday",
    "v2.3.1",
    "v2.4.0-rc1",
    "#4821",
    "#4822",
    "ok",
    "lol",
    "+1",
    "ack",
    "brb",
    "afk",
    "ty",
    "np",
    "idk",
    "imo",
    "fyi",
    "eta",
];
const EXTRAS: &[&str] = &[
    " 🎉",
    " 👍",
    " — see https://ci.example.com/builds/48213/logs",
    " (cc @alice)",
    " ✅",
    " 🔥🔥",
    " 😅",
    " ¯\\\\_(ツ)_/¯",
    " über-cool café",
];

/// One chat line of about `target` bytes.
fn chat_line(rng: &mut Rng, ts: &mut u64, id: usize, target: usize) -> String {
    *ts += 200 + rng.below(20_000) as u64;
    let kind = match rng.below(20) {
        0 => "edit",
        1 => "reply",
        _ => "message",
    };
    let mut s = format!(
        "{{\"type\":\"{kind}\",\"id\":{id},\"room\":\"{}\",\"user\":\"{}\",\"ts\":{},\"text\":\"",
        rng.pick(ROOMS),
        rng.pick(USERS),
        *ts
    );
    let mut first = true;
    while s.len() + 40 < target {
        if !first {
            s.push(' ');
        }
        first = false;
        s.push_str(rng.pick(WORDS));
        match rng.below(40) {
            0 => s.push(','),
            1 => s.push('.'),
            2 => s.push('?'),
            3 => s.push_str(rng.pick(EXTRAS)),
            _ => {}
        }
    }
    s.push('"');
    if kind == "reply" {
        s.push_str(&format!(
            ",\"reply_to\":{}",
            id.saturating_sub(1 + rng.below(50))
        ));
    }
    s.push('}');
    s
}

/// About 1 MB of chat lines of 100-2000 bytes, most of them short.
fn workload() -> Vec<Message> {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut ts = 1_700_000_000_000;
    let mut out = Vec::new();
    let mut total = 0;
    let mut id = 0;
    while total < 1_000_000 {
        let target = match rng.below(20) {
            0 => 1200 + rng.below(800),    // 5%: 1200-2000
            1..=5 => 400 + rng.below(800), // 25%: 400-1200
            _ => 100 + rng.below(300),     // 70%: 100-400
        };
        let line = chat_line(&mut rng, &mut ts, id, target);
        total += line.len();
        out.push(Message::text(line));
        id += 1;
    }
    out
}

#[derive(Clone, Copy, Debug)]
enum Variant {
    Plain,
    Takeover,
    NoTakeover,
    TakeoverLevel1,
}

impl Variant {
    fn name(self) -> &'static str {
        match self {
            Variant::Plain => "plain",
            Variant::Takeover => "deflate-takeover",
            Variant::NoTakeover => "deflate-no-takeover",
            Variant::TakeoverLevel1 => "deflate-takeover-level1",
        }
    }
}

/// A client/server pair with what `variant` negotiates (as a server would
/// answer a default client offer).
fn pair(variant: Variant) -> (Connection, Connection) {
    let mut client = Connection::new(Role::Client, Config::default());
    let mut server = Connection::new(Role::Server, Config::default());
    let mut policy = DeflateConfig::default();
    match variant {
        Variant::Plain => return (client, server),
        Variant::Takeover => {}
        Variant::NoTakeover => policy.client_no_context_takeover = true,
        Variant::TakeoverLevel1 => policy.level = 1,
    }
    let offer = parse_extensions(&DeflateConfig::default().offer()).unwrap();
    let params = policy.accept_offer(&offer).expect("accepted");
    client.enable_deflate(params.clone());
    server.enable_deflate(params);
    (client, server)
}

/// Send every message client -> server; returns the bytes on the wire.
fn send_all(client: &mut Connection, server: &mut Connection, msgs: &[Message]) -> usize {
    let mut wire = 0;
    for m in msgs {
        client.send(m.clone()).unwrap();
        while let Some(chunk) = client.poll_transmit() {
            wire += chunk.len();
            server.receive(&chunk);
        }
        while let Some(ev) = server.poll_event().unwrap() {
            black_box(ev);
        }
    }
    wire
}

/// flate2 alone: what `send` + `receive` cost at least with context
/// takeover at level 6.
struct RawZlib {
    c: Compress,
    d: Decompress,
    wire: Vec<u8>,
    out: Vec<u8>,
}

impl RawZlib {
    fn new() -> Self {
        RawZlib {
            c: Compress::new_with_window_bits(Compression::new(6), false, 15),
            d: Decompress::new_with_window_bits(false, 15),
            wire: Vec::with_capacity(1 << 16),
            out: Vec::with_capacity(1 << 16),
        }
    }
    fn round(&mut self, msgs: &[Message]) -> usize {
        let mut total = 0;
        for m in msgs {
            self.wire.clear();
            self.c
                .compress_vec(m.as_bytes(), &mut self.wire, FlushCompress::Sync)
                .unwrap();
            total += self.wire.len() - 4;
            self.out.clear();
            self.d
                .decompress_vec(&self.wire, &mut self.out, FlushDecompress::Sync)
                .unwrap();
            assert_eq!(self.out.len(), m.len());
            black_box(&self.out);
        }
        total
    }
}

fn check_and_report(variant: Variant, msgs: &[Message], payload: usize) {
    let (mut client, mut server) = pair(variant);
    let mut wire = 0;
    for (i, m) in msgs.iter().enumerate() {
        client.send(m.clone()).unwrap();
        while let Some(chunk) = client.poll_transmit() {
            wire += chunk.len();
            server.receive(&chunk);
        }
        match server.poll_event().unwrap() {
            Some(Event::Message(got)) => {
                assert!(&got == m, "{}: message {i} differs", variant.name())
            }
            other => panic!("{}: message {i}: {other:?}", variant.name()),
        }
        assert_eq!(server.poll_event().unwrap(), None);
    }
    // a second pass: with context takeover the shared window is warm
    let second = send_all(&mut client, &mut server, msgs);
    println!(
        "deflate-bench ratio {:<24} wire/payload {:>6.3} (first pass, {} bytes for {} bytes), {:>6.3} (second pass)",
        variant.name(),
        wire as f64 / payload as f64,
        wire,
        payload,
        second as f64 / payload as f64,
    );
}

fn bench(c: &mut Criterion) {
    let msgs = workload();
    let payload: usize = msgs.iter().map(Message::len).sum();
    let sizes: Vec<usize> = msgs.iter().map(Message::len).collect();
    println!(
        "deflate-bench workload: {} chat messages, {} bytes, {}..{} bytes each (median {})",
        msgs.len(),
        payload,
        sizes.iter().min().unwrap(),
        sizes.iter().max().unwrap(),
        {
            let mut s = sizes.clone();
            s.sort_unstable();
            s[s.len() / 2]
        }
    );
    let variants = [
        Variant::Plain,
        Variant::Takeover,
        Variant::NoTakeover,
        Variant::TakeoverLevel1,
    ];
    for v in variants {
        check_and_report(v, &msgs, payload);
    }
    let mut group = c.benchmark_group("chat-client-to-server");
    group.throughput(Throughput::Bytes(payload as u64));
    group.sample_size(10);
    for v in variants {
        let (mut client, mut server) = pair(v);
        group.bench_function(v.name(), |b| {
            b.iter(|| send_all(&mut client, &mut server, &msgs))
        });
    }
    let mut raw = RawZlib::new();
    let wire = raw.round(&msgs);
    println!(
        "deflate-bench ratio {:<24} payload/payload {:>6.3} (compressed payload only, no frame headers)",
        "zlib-rs-only-takeover",
        wire as f64 / payload as f64
    );
    group.bench_function("zlib-rs-only-takeover", |b| b.iter(|| raw.round(&msgs)));
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
