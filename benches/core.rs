//! Core benchmarks: wsproto against tungstenite 0.30, fastwebsockets 0.10 and a
//! memcpy baseline, **in the same benchmark group**, fed identical bytes.
//!
//! Groups (member names in brackets):
//!
//! * `decode_binary/<size>`, `decode_binary_frames/16B` — a server decoding
//!   client-masked binary messages, one frame each, many frames per wire
//!   buffer for small sizes (about 128 KiB per iteration).
//!   [memcpy, wsproto, tungstenite, fastwebsockets]
//! * `decode_text/<size>` — the same with text: ~20 % of the code points are
//!   2–4 byte ones; every member except memcpy validates UTF-8.
//!   `unmask_simdutf8` is the floor for a decoder built on simdutf8: each
//!   payload unmasked in place and validated, frames located beforehand.
//!   [memcpy, unmask_simdutf8, wsproto, wsproto_as_str, wsproto_ref,
//!   tungstenite, fastwebsockets]
//! * `decode_fragmented_text` — one 1 MiB text message in 64 masked fragments
//!   whose boundaries cut code points.
//!   [memcpy, wsproto, wsproto_as_str, tungstenite, fastwebsockets]
//! * `encode_client/<size>` (masked) and `encode_server/<size>` (unmasked):
//!   the wire bytes of one binary message. [memcpy, wsproto (a shared
//!   `Bytes`), wsproto_ref (a borrowed slice), tungstenite, fastwebsockets;
//!   clients also memcpy_owned, wsproto_owned, fastwebsockets_owned]
//! * `handshake_parse` — a Chrome-like upgrade request to a parsed request.
//!   [httparse, wsproto, tungstenite]
//! * `handshake_accept` — the same request to a `101` response.
//!   [httparse, wsproto, tungstenite, fastwebsockets]
//! * `unmask/<size>` [memcpy, wsproto, fastwebsockets]
//! * `utf8/<size>` [memcpy, std, simdutf8, wsproto, tungstenite, fastwebsockets]
//!
//! Every member's output is checked once before timing (payloads, lengths,
//! text, the mask bit, the accept key; invalid UTF-8 must be refused), so an
//! implementation that skips unmasking or validation shows up as wrong, not
//! fast. The wire bytes come from a small encoder in this file, and encoded
//! output is checked with a small decoder in this file: neither depends on
//! any of the implementations measured.
//!
//! The async implementation (fastwebsockets) runs over an in-memory stream
//! that is always ready, polled once with a no-op waker (`run`): no executor
//! cost at all. The sync one (tungstenite) gets the same stream through
//! `Read`/`Write`. Output goes to a sink that only counts bytes (written
//! bytes are collected only for the one-time checks).
//!
//! `cargo bench --bench core` takes about 5 minutes;
//! `cargo bench --bench core -- --test` runs every member once (smoke test).

use std::cell::Cell;
use std::future::Future;
use std::io::{self, IoSlice, Read, Write};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use fastwebsockets::{FragmentCollector, Frame as FwsFrame, OpCode as FwsOpCode, Payload};
use std::hint::black_box;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tungstenite::handshake::machine::TryParse;
use tungstenite::protocol::{Role as TRole, WebSocket as TWebSocket, WebSocketConfig};
use tungstenite::Message as TMessage;
use wsproto::handshake::{AcceptOptions, ServerHandshake, Status};
use wsproto::message::Utf8Validator;
use wsproto::{
    Config, Connection, Event, EventRef, Limits, Message, MessageKind, MessageRef, Role,
};

// ------------------------------------------------------------------ inputs

const DECODE_SIZES: [(&str, usize); 6] = [
    ("16B", 16),
    ("125B", 125),
    ("1KiB", 1 << 10),
    ("16KiB", 16 << 10),
    ("64KiB", 64 << 10),
    ("1MiB", 1 << 20),
];
const ENCODE_SIZES: [(&str, usize); 3] = [("125B", 125), ("16KiB", 16 << 10), ("64KiB", 64 << 10)];
const UNMASK_SIZES: [(&str, usize); 3] = [("16B", 16), ("1KiB", 1 << 10), ("64KiB", 64 << 10)];
const UTF8_SIZES: [(&str, usize); 4] = [
    ("16B", 16),
    ("1KiB", 1 << 10),
    ("64KiB", 64 << 10),
    ("1MiB", 1 << 20),
];
/// Payload bytes per decode iteration for small messages (so per-iteration
/// overhead is amortised: 8192 frames of 16 B, 1048 of 125 B, ...).
const BATCH_PAYLOAD: usize = 128 << 10;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CONTINUATION: u8 = 0x0;

/// splitmix64: deterministic, good enough for test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn mask(&mut self) -> [u8; 4] {
        (self.next() as u32).to_be_bytes()
    }
}

fn random_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut rng = Rng(seed);
    (0..len).map(|_| (rng.next() >> 56) as u8).collect()
}

/// Exactly `len` bytes of text; about one code point in five is a 2, 3 or
/// 4 byte one.
fn mixed_text(len: usize, seed: u64) -> String {
    const WIDE: [char; 8] = ['é', 'ß', 'π', '€', '中', 'ह', '😀', '𝄞'];
    let mut rng = Rng(seed);
    let mut s = String::with_capacity(len);
    while s.len() < len {
        let r = rng.next();
        let c = if r.is_multiple_of(5) {
            WIDE[(r >> 32) as usize % WIDE.len()]
        } else {
            (b'a' + ((r >> 32) % 26) as u8) as char
        };
        if s.len() + c.len_utf8() > len {
            break;
        }
        s.push(c);
    }
    while s.len() < len {
        s.push('.');
    }
    s
}

/// One frame, encoded independently of every implementation measured.
fn put_frame(out: &mut Vec<u8>, fin: bool, opcode: u8, mask: Option<[u8; 4]>, payload: &[u8]) {
    out.push(if fin { 0x80 } else { 0 } | opcode);
    let m = if mask.is_some() { 0x80 } else { 0 };
    let n = payload.len();
    if n < 126 {
        out.push(m | n as u8);
    } else if n <= 0xFFFF {
        out.push(m | 126);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(m | 127);
        out.extend_from_slice(&(n as u64).to_be_bytes());
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
}

/// A frame as the reference decoder sees it.
#[derive(Debug)]
struct RefFrame {
    fin: bool,
    opcode: u8,
    masked: bool,
    payload: Vec<u8>,
}

/// Every frame in `wire` (which must end at a frame boundary), unmasked.
fn ref_frames(mut wire: &[u8]) -> Vec<RefFrame> {
    let mut frames = Vec::new();
    while !wire.is_empty() {
        assert!(wire.len() >= 2, "truncated frame header");
        let (b0, b1) = (wire[0], wire[1]);
        assert_eq!(b0 & 0x70, 0, "RSV bits set");
        let (len, mut at) = match b1 & 0x7F {
            126 => (u16::from_be_bytes([wire[2], wire[3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(wire[2..10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        let masked = b1 & 0x80 != 0;
        let key = if masked {
            let k: [u8; 4] = wire[at..at + 4].try_into().unwrap();
            at += 4;
            k
        } else {
            [0; 4]
        };
        let payload = wire[at..at + len]
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        frames.push(RefFrame {
            fin: b0 & 0x80 != 0,
            opcode: b0 & 0x0F,
            masked,
            payload,
        });
        wire = &wire[at + len..];
    }
    frames
}

/// Where each masked frame's payload lies in `wire`: (start, length, key).
fn payload_spans(wire: &[u8]) -> Vec<(usize, usize, [u8; 4])> {
    let mut spans = Vec::new();
    let mut at = 0;
    while at < wire.len() {
        let (len, head) = match wire[at + 1] & 0x7F {
            126 => (u16::from_be_bytes([wire[at + 2], wire[at + 3]]) as usize, 4),
            127 => (
                u64::from_be_bytes(wire[at + 2..at + 10].try_into().unwrap()) as usize,
                10,
            ),
            n => (n as usize, 2),
        };
        assert!(wire[at + 1] & 0x80 != 0, "client frames are masked");
        let key: [u8; 4] = wire[at + head..at + head + 4].try_into().unwrap();
        let start = at + head + 4;
        spans.push((start, len, key));
        at = start + len;
    }
    spans
}

/// Client-to-server wire bytes and the messages they carry.
struct DecodeInput {
    wire: Vec<u8>,
    messages: Vec<Vec<u8>>,
    text: bool,
    payload_bytes: usize,
}

/// `BATCH_PAYLOAD / size` (at least one) single-frame messages of `size`
/// bytes, each with its own masking key.
fn decode_input(size: usize, text: bool) -> DecodeInput {
    let count = (BATCH_PAYLOAD / size).max(1);
    let mut rng = Rng(size as u64);
    let mut wire = Vec::new();
    let mut messages = Vec::with_capacity(count);
    for i in 0..count {
        let seed = (size * 1_000_003 + i) as u64;
        let payload = if text {
            mixed_text(size, seed).into_bytes()
        } else {
            random_bytes(size, seed)
        };
        let opcode = if text { OP_TEXT } else { OP_BINARY };
        put_frame(&mut wire, true, opcode, Some(rng.mask()), &payload);
        messages.push(payload);
    }
    DecodeInput {
        wire,
        messages,
        text,
        payload_bytes: count * size,
    }
}

/// One text message of `len` bytes in `fragments` masked frames; every
/// fragment boundary falls inside a multi-byte code point.
fn fragmented_input(len: usize, fragments: usize) -> DecodeInput {
    let text = mixed_text(len, 7);
    let mut cuts = vec![0];
    for k in 1..fragments {
        let mut at = k * len / fragments;
        while text.is_char_boundary(at) {
            at += 1;
        }
        assert!(at > *cuts.last().unwrap() && at < len);
        cuts.push(at);
    }
    cuts.push(len);
    let mut rng = Rng(99);
    let mut wire = Vec::new();
    for (i, w) in cuts.windows(2).enumerate() {
        let opcode = if i == 0 { OP_TEXT } else { OP_CONTINUATION };
        let fin = i + 2 == cuts.len();
        put_frame(
            &mut wire,
            fin,
            opcode,
            Some(rng.mask()),
            &text.as_bytes()[w[0]..w[1]],
        );
    }
    DecodeInput {
        wire,
        messages: vec![text.into_bytes()],
        text: true,
        payload_bytes: len,
    }
}

/// The input with the last byte of the last message replaced by 0xFF
/// (never valid UTF-8), same framing.
fn corrupt_last_byte(input: &DecodeInput) -> Vec<u8> {
    let mut wire = input.wire.clone();
    let frames = ref_frames(&wire);
    let last = frames.last().unwrap();
    let last_payload = *last.payload.last().unwrap();
    // the last wire byte is the last payload byte, masked with some key byte
    let n = wire.len();
    let key_byte = wire[n - 1] ^ last_payload;
    wire[n - 1] = 0xFF ^ key_byte;
    wire
}

// ------------------------------------------------------- in-memory streams

/// An in-memory transport: reads serve `input` (over and over if `cyclic`,
/// so a decoder can read the same batch every iteration without reaching
/// EOF), writes are counted and, if `collect` is set, kept.
struct MemStream<'a> {
    input: &'a [u8],
    pos: usize,
    cyclic: bool,
    written: Rc<Cell<usize>>,
    collected: Option<Vec<u8>>,
}

impl<'a> MemStream<'a> {
    fn reader(input: &'a [u8], cyclic: bool) -> Self {
        MemStream {
            input,
            pos: 0,
            cyclic,
            written: Rc::default(),
            collected: None,
        }
    }

    fn sink(collect: bool) -> Self {
        MemStream {
            input: &[],
            pos: 0,
            cyclic: false,
            written: Rc::default(),
            collected: collect.then(Vec::new),
        }
    }

    fn read_into(&mut self, dst: &mut [u8]) -> usize {
        if self.cyclic && self.pos == self.input.len() {
            self.pos = 0;
        }
        let n = dst.len().min(self.input.len() - self.pos);
        dst[..n].copy_from_slice(&self.input[self.pos..self.pos + n]);
        self.pos += n;
        n
    }

    fn take(&mut self, data: &[u8]) -> usize {
        self.written.set(self.written.get() + data.len());
        if let Some(v) = &mut self.collected {
            v.extend_from_slice(data);
        }
        data.len()
    }
}

impl Read for MemStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        Ok(self.read_into(buf))
    }
}

impl Write for MemStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(self.take(buf))
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        Ok(bufs.iter().map(|b| self.take(b)).sum())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl AsyncRead for MemStream<'_> {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let n = this.read_into(buf.initialize_unfilled());
        buf.advance(n);
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for MemStream<'_> {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(self.get_mut().take(buf)))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        Poll::Ready(Ok(bufs.iter().map(|b| this.take(b)).sum()))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Poll a future over a `MemStream` to completion: the stream is always
/// ready, so one poll must do (no executor in the measurement).
fn run<F: Future>(f: F) -> F::Output {
    let mut f = pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("an in-memory stream never blocks"),
    }
}

// ------------------------------------------------------ implementations

/// Limits that accept every workload here (1 MiB messages) on all three.
fn ws_config() -> Config {
    let mut c = Config::default();
    c.limits.max_message = 64 << 20;
    c.limits.max_frame_payload = 64 << 20;
    c
}

fn tung_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20))
}

type FwsSocket<'a> = fastwebsockets::WebSocket<MemStream<'a>>;

fn fws_server(stream: MemStream<'_>) -> FwsSocket<'_> {
    let mut ws = fastwebsockets::WebSocket::after_handshake(stream, fastwebsockets::Role::Server);
    ws.set_max_message_size(64 << 20);
    ws.set_auto_close(true);
    ws.set_auto_pong(true);
    ws
}

/// How the wsproto members read their messages.
#[derive(Clone, Copy)]
enum WsRead {
    /// `poll_event`: each message is an owned `Message`.
    Owned,
    /// `poll_event` and the text read through `as_text`.
    OwnedAsStr,
    /// `poll_event_ref`: messages read in place, borrowed (`&str` for text).
    Borrowed,
}

/// Feed `wire` to a wsproto server and hand every message to `on`.
fn wsproto_read(
    conn: &mut Connection,
    wire: &[u8],
    how: WsRead,
    on: &mut impl FnMut(bool, &[u8]),
) -> Result<(), wsproto::Error> {
    conn.receive(wire);
    if let WsRead::Borrowed = how {
        while let Some(ev) = conn.poll_event_ref()? {
            match ev {
                EventRef::Message(MessageRef::Text(t)) => on(true, t.as_bytes()),
                EventRef::Message(MessageRef::Binary(b)) => on(false, b),
                other => panic!("wsproto: unexpected event {other:?}"),
            }
        }
        return Ok(());
    }
    let as_str = matches!(how, WsRead::OwnedAsStr);
    while let Some(ev) = conn.poll_event()? {
        match ev {
            // `as_bytes` does not touch the text again; `as_text` is what
            // an application reading text calls.
            Event::Message(m) if as_str => on(true, m.as_text().expect("text").as_bytes()),
            Event::Message(m) => on(m.kind() == MessageKind::Text, m.as_bytes()),
            other => panic!("wsproto: unexpected event {other:?}"),
        }
    }
    Ok(())
}

/// Read `count` messages from a tungstenite socket.
fn tungstenite_read(
    ws: &mut TWebSocket<MemStream<'_>>,
    count: usize,
    on: &mut impl FnMut(bool, &[u8]),
) -> Result<(), tungstenite::Error> {
    for _ in 0..count {
        match ws.read()? {
            TMessage::Binary(b) => on(false, &b),
            TMessage::Text(t) => on(true, t.as_bytes()),
            other => panic!("tungstenite: unexpected message {other:?}"),
        }
    }
    Ok(())
}

/// Read `count` single-frame messages from a fastwebsockets socket.
fn fws_read(
    ws: &mut FwsSocket<'_>,
    count: usize,
    on: &mut impl FnMut(bool, &[u8]),
) -> Result<(), fastwebsockets::WebSocketError> {
    run(async {
        for _ in 0..count {
            let f = ws.read_frame().await?;
            assert!(
                f.fin,
                "fastwebsockets: a fragment where a message was expected"
            );
            match f.opcode {
                FwsOpCode::Text => on(true, &f.payload),
                FwsOpCode::Binary => on(false, &f.payload),
                other => panic!("fastwebsockets: unexpected opcode {other:?}"),
            }
        }
        Ok(())
    })
}

/// Read `count` (possibly fragmented) messages through fastwebsockets'
/// `FragmentCollector`, its reassembling reader.
fn fws_collect(
    ws: &mut FragmentCollector<MemStream<'_>>,
    count: usize,
    on: &mut impl FnMut(bool, &[u8]),
) -> Result<(), fastwebsockets::WebSocketError> {
    run(async {
        for _ in 0..count {
            let f = ws.read_frame().await?;
            match f.opcode {
                FwsOpCode::Text => on(true, &f.payload),
                FwsOpCode::Binary => on(false, &f.payload),
                other => panic!("fastwebsockets: unexpected opcode {other:?}"),
            }
        }
        Ok(())
    })
}

/// Checks what a decoder delivered against the input, once, before timing.
struct Expect<'a> {
    name: &'static str,
    input: &'a DecodeInput,
    next: usize,
}

impl<'a> Expect<'a> {
    fn new(name: &'static str, input: &'a DecodeInput) -> Self {
        Expect {
            name,
            input,
            next: 0,
        }
    }

    fn on(&mut self, text: bool, payload: &[u8]) {
        let name = self.name;
        let want = &self.input.messages[self.next];
        assert_eq!(text, self.input.text, "{name}: message kind");
        assert_eq!(
            payload.len(),
            want.len(),
            "{name}: message {} length",
            self.next
        );
        assert!(
            payload == &want[..],
            "{name}: message {} payload differs",
            self.next
        );
        if text {
            let got = std::str::from_utf8(payload).expect("delivered text is UTF-8");
            assert_eq!(got.as_bytes(), &want[..], "{name}: text differs");
        }
        self.next += 1;
    }

    fn done(&self) {
        assert_eq!(
            self.next,
            self.input.messages.len(),
            "{}: message count",
            self.name
        );
    }
}

/// Every implementation decodes `input` exactly, and refuses the same input
/// with invalid UTF-8 in its last text message.
fn verify_decode(input: &DecodeInput, fragmented: bool) {
    let n = input.messages.len();
    let bad = input.text.then(|| corrupt_last_byte(input));

    for how in [WsRead::Owned, WsRead::OwnedAsStr, WsRead::Borrowed] {
        if !input.text && matches!(how, WsRead::OwnedAsStr) {
            continue;
        }
        let mut e = Expect::new("wsproto", input);
        let mut conn = Connection::server(ws_config());
        wsproto_read(&mut conn, &input.wire, how, &mut |t, p| e.on(t, p)).expect("wsproto");
        e.done();
        assert_eq!(conn.buffered_input(), 0, "wsproto: bytes left over");
        if let Some(bad) = &bad {
            let mut conn = Connection::server(ws_config());
            assert!(
                wsproto_read(&mut conn, bad, how, &mut |_, _| {}).is_err(),
                "wsproto accepted invalid UTF-8"
            );
        }
    }

    let mut e = Expect::new("tungstenite", input);
    let mut ws = TWebSocket::from_raw_socket(
        MemStream::reader(&input.wire, false),
        TRole::Server,
        Some(tung_config()),
    );
    tungstenite_read(&mut ws, n, &mut |t, p| e.on(t, p)).expect("tungstenite");
    e.done();
    assert_eq!(
        ws.get_ref().pos,
        input.wire.len(),
        "tungstenite: bytes left over"
    );
    if let Some(bad) = &bad {
        let mut ws = TWebSocket::from_raw_socket(
            MemStream::reader(bad, false),
            TRole::Server,
            Some(tung_config()),
        );
        assert!(
            tungstenite_read(&mut ws, n, &mut |_, _| {}).is_err(),
            "tungstenite accepted invalid UTF-8"
        );
    }

    let mut e = Expect::new("fastwebsockets", input);
    if fragmented {
        let mut ws = FragmentCollector::new(fws_server(MemStream::reader(&input.wire, false)));
        fws_collect(&mut ws, n, &mut |t, p| e.on(t, p)).expect("fastwebsockets");
        if let Some(bad) = &bad {
            let mut ws = FragmentCollector::new(fws_server(MemStream::reader(bad, false)));
            assert!(
                fws_collect(&mut ws, n, &mut |_, _| {}).is_err(),
                "fastwebsockets accepted invalid UTF-8"
            );
        }
    } else {
        let mut ws = fws_server(MemStream::reader(&input.wire, false));
        fws_read(&mut ws, n, &mut |t, p| e.on(t, p)).expect("fastwebsockets");
        assert_eq!(
            ws.into_inner().pos,
            input.wire.len(),
            "fastwebsockets: bytes left over"
        );
        if let Some(bad) = &bad {
            let mut ws = fws_server(MemStream::reader(bad, false));
            assert!(
                fws_read(&mut ws, n, &mut |_, _| {}).is_err(),
                "fastwebsockets accepted invalid UTF-8"
            );
        }
    }
    e.done();
}

// ------------------------------------------------------------- decoding

/// Members `memcpy`, `wsproto`, (`wsproto_as_str`), `tungstenite`,
/// `fastwebsockets` for one decode input, in the group `group`.
fn decode_group(
    c: &mut Criterion,
    group: &str,
    input: &DecodeInput,
    throughput: Throughput,
    fragmented: bool,
) {
    let wire = &input.wire[..];
    let n = input.messages.len();
    let total = input.payload_bytes;
    let mut g = c.benchmark_group(group);
    g.throughput(throughput);

    // The yardstick: the wire bytes copied once, into a buffer that exists.
    g.bench_function("memcpy", |b| {
        let mut dst = vec![0u8; wire.len()];
        b.iter(|| {
            dst.copy_from_slice(black_box(wire));
            black_box(&mut dst);
        })
    });

    // The floor for any decoder built on simdutf8 (single-frame text only):
    // the batch copied in, each payload unmasked in place and validated,
    // with the frame positions found before timing.
    if input.text && !fragmented {
        let spans = payload_spans(wire);
        let floor = |buf: &mut Vec<u8>| {
            buf.clear();
            buf.extend_from_slice(wire);
            let mut got = 0;
            for &(at, len, key) in &spans {
                let p = &mut buf[at..at + len];
                wsproto::apply_mask(p, key, 0);
                assert!(simdutf8::basic::from_utf8(p).is_ok());
                got += len;
            }
            got
        };
        let mut buf = Vec::with_capacity(wire.len());
        assert_eq!(floor(&mut buf), total);
        for (&(at, len, _), want) in spans.iter().zip(&input.messages) {
            assert_eq!(&buf[at..at + len], &want[..], "unmask_simdutf8: payload");
        }
        g.bench_function("unmask_simdutf8", |b| {
            b.iter(|| assert_eq!(floor(black_box(&mut buf)), total))
        });
    }

    // One connection for the whole run: `receive` copies the batch into its
    // input buffer (as every member copies it into its own), `poll_event`
    // unmasks, validates and hands out each message.
    let variants: &[(&str, WsRead)] = if input.text {
        &[
            ("wsproto", WsRead::Owned),
            ("wsproto_as_str", WsRead::OwnedAsStr),
            ("wsproto_ref", WsRead::Borrowed),
        ]
    } else {
        &[
            ("wsproto", WsRead::Owned),
            ("wsproto_ref", WsRead::Borrowed),
        ]
    };
    for &(name, how) in variants {
        g.bench_function(name, |b| {
            let mut conn = Connection::server(ws_config());
            b.iter(|| {
                let mut got = 0;
                wsproto_read(&mut conn, black_box(wire), how, &mut |_, p| got += p.len()).unwrap();
                assert_eq!(got, total);
            })
        });
    }

    // The stream serves the batch over and over; each iteration reads one
    // batch's worth of messages.
    g.bench_function("tungstenite", |b| {
        let mut ws = TWebSocket::from_raw_socket(
            MemStream::reader(wire, true),
            TRole::Server,
            Some(tung_config()),
        );
        b.iter(|| {
            let mut got = 0;
            tungstenite_read(&mut ws, n, &mut |_, p| got += p.len()).unwrap();
            assert_eq!(got, total);
        })
    });

    // Single-frame messages: the plain `WebSocket` (validates complete text
    // frames); fragmented: `FragmentCollector`, which reassembles.
    g.bench_function("fastwebsockets", |b| {
        if fragmented {
            let mut ws = FragmentCollector::new(fws_server(MemStream::reader(wire, true)));
            b.iter(|| {
                let mut got = 0;
                fws_collect(&mut ws, n, &mut |_, p| got += p.len()).unwrap();
                assert_eq!(got, total);
            })
        } else {
            let mut ws = fws_server(MemStream::reader(wire, true));
            b.iter(|| {
                let mut got = 0;
                fws_read(&mut ws, n, &mut |_, p| got += p.len()).unwrap();
                assert_eq!(got, total);
            })
        }
    });
    g.finish();
}

fn bench_decode(c: &mut Criterion) {
    for text in [false, true] {
        let kind = if text { "decode_text" } else { "decode_binary" };
        for (label, size) in DECODE_SIZES {
            let input = decode_input(size, text);
            verify_decode(&input, false);
            let bytes = Throughput::Bytes(input.payload_bytes as u64);
            decode_group(c, &format!("{kind}/{label}"), &input, bytes, false);
            if !text && size == 16 {
                let frames = Throughput::Elements(input.messages.len() as u64);
                decode_group(c, "decode_binary_frames/16B", &input, frames, false);
            }
        }
    }
    let input = fragmented_input(1 << 20, 64);
    verify_decode(&input, true);
    let bytes = Throughput::Bytes(input.payload_bytes as u64);
    decode_group(c, "decode_fragmented_text", &input, bytes, true);
}

// ------------------------------------------------------------- encoding

fn header_len(len: usize, masked: bool) -> usize {
    let base = match len {
        0..=125 => 2,
        126..=0xFFFF => 4,
        _ => 10,
    };
    base + if masked { 4 } else { 0 }
}

/// Check that `wire` is exactly one binary frame carrying `payload`, masked
/// iff `masked`.
fn verify_encoded(name: &str, wire: &[u8], payload: &[u8], masked: bool) {
    assert_eq!(
        wire.len(),
        header_len(payload.len(), masked) + payload.len(),
        "{name}: wire length"
    );
    let frames = ref_frames(wire);
    assert_eq!(frames.len(), 1, "{name}: frame count");
    let f = &frames[0];
    assert!(f.fin && f.opcode == OP_BINARY, "{name}: header {f:?}");
    assert_eq!(f.masked, masked, "{name}: mask bit");
    assert!(f.payload == payload, "{name}: payload differs");
    if masked && payload.len() >= 16 {
        assert!(
            wire[wire.len() - payload.len()..] != *payload,
            "{name}: mask bit set but payload not masked"
        );
    }
}

fn wsproto_sender(client: bool) -> Connection {
    if client {
        // the real mask source (the thread-local ChaCha12), as the
        // others use their real generators (`rand`)
        Connection::new(Role::Client, ws_config())
    } else {
        Connection::server(ws_config())
    }
}

fn bench_encode(c: &mut Criterion) {
    for client in [true, false] {
        let group = if client {
            "encode_client"
        } else {
            "encode_server"
        };
        let trole = if client { TRole::Client } else { TRole::Server };
        let frole = || {
            if client {
                fastwebsockets::Role::Client
            } else {
                fastwebsockets::Role::Server
            }
        };
        for (label, size) in ENCODE_SIZES {
            let payload = Bytes::from(random_bytes(size, size as u64 + 17));
            let wire_len = header_len(size, client) + size;

            // -- checks, once
            let wsproto_wire = |m: Message| {
                let mut conn = wsproto_sender(client);
                conn.send(m).unwrap();
                let mut out = Vec::new();
                while let Some(chunk) = conn.poll_transmit() {
                    out.extend_from_slice(&chunk);
                }
                out
            };
            let fws_wire = |p: Payload| {
                let mut ws =
                    fastwebsockets::WebSocket::after_handshake(MemStream::sink(true), frole());
                run(ws.write_frame(FwsFrame::binary(p))).unwrap();
                ws.into_inner().collected.unwrap()
            };
            let out = wsproto_wire(Message::Binary(payload.clone()));
            verify_encoded("wsproto", &out, &payload, client);
            let mut conn = wsproto_sender(client);
            conn.send_ref(MessageRef::Binary(&payload)).unwrap();
            let out: Vec<u8> = std::iter::from_fn(|| conn.poll_transmit())
                .flatten()
                .collect();
            verify_encoded("wsproto_ref", &out, &payload, client);

            let mut ws =
                TWebSocket::from_raw_socket(MemStream::sink(true), trole, Some(tung_config()));
            ws.write(TMessage::Binary(payload.clone())).unwrap();
            ws.flush().unwrap();
            verify_encoded(
                "tungstenite",
                ws.get_ref().collected.as_ref().unwrap(),
                &payload,
                client,
            );

            let out = fws_wire(Payload::Borrowed(&payload));
            verify_encoded("fastwebsockets", &out, &payload, client);
            if client {
                // the owned-payload members: masked where they lie
                let out = wsproto_wire(Message::binary(payload.to_vec()));
                verify_encoded("wsproto_owned", &out, &payload, client);
                let out = fws_wire(Payload::Owned(payload.to_vec()));
                verify_encoded("fastwebsockets_owned", &out, &payload, client);
            }

            // -- timing
            let mut g = c.benchmark_group(format!("{group}/{label}"));
            g.throughput(Throughput::Bytes(size as u64));
            g.bench_function("memcpy", |b| {
                let mut dst = vec![0u8; size];
                b.iter(|| {
                    dst.copy_from_slice(black_box(&payload));
                    black_box(&mut dst);
                })
            });
            // `send` then hand every chunk out (server payloads over 256
            // bytes go out as their own chunk: a vectored write, no copy).
            g.bench_function("wsproto", |b| {
                let mut conn = wsproto_sender(client);
                b.iter(|| {
                    conn.send(Message::Binary(black_box(&payload).clone()))
                        .unwrap();
                    let mut n = 0;
                    while let Some(chunk) = conn.poll_transmit() {
                        n += chunk.len();
                    }
                    assert_eq!(n, wire_len);
                })
            });
            // `send_ref` of the borrowed payload (as fastwebsockets' member
            // below): the frame is built in a buffer the connection takes
            // back once the chunk is dropped; no reference count on the
            // payload.
            g.bench_function("wsproto_ref", |b| {
                let mut conn = wsproto_sender(client);
                b.iter(|| {
                    conn.send_ref(MessageRef::Binary(black_box(&payload)))
                        .unwrap();
                    let mut n = 0;
                    while let Some(chunk) = conn.poll_transmit() {
                        n += chunk.len();
                    }
                    assert_eq!(n, wire_len);
                })
            });
            // `write` + `flush` into a counting sink (the frame is built in
            // tungstenite's write buffer, masked there for a client).
            g.bench_function("tungstenite", |b| {
                let sink = MemStream::sink(false);
                let written = sink.written.clone();
                let mut ws = TWebSocket::from_raw_socket(sink, trole, Some(tung_config()));
                b.iter(|| {
                    let before = written.get();
                    ws.write(TMessage::Binary(black_box(&payload).clone()))
                        .unwrap();
                    ws.flush().unwrap();
                    assert_eq!(written.get() - before, wire_len);
                })
            });
            // `write_frame` of a borrowed payload (the sender keeps its
            // bytes, as with the others): a client copies it to mask it;
            // over 1 KiB the frame goes out as a vectored write.
            g.bench_function("fastwebsockets", |b| {
                let sink = MemStream::sink(false);
                let written = sink.written.clone();
                let mut ws = fastwebsockets::WebSocket::after_handshake(sink, frole());
                b.iter(|| {
                    let before = written.get();
                    run(ws.write_frame(FwsFrame::binary(Payload::Borrowed(black_box(&payload)))))
                        .unwrap();
                    assert_eq!(written.get() - before, wire_len);
                })
            });
            if client {
                // The application hands over a buffer it built (and no
                // longer needs): both mask it in place. Making the buffer
                // (a copy of the payload, so it is as hot in cache as the
                // others' source) is not timed; freeing it is. Per
                // iteration: a batch of buffers would be cold in cache.
                // The baseline in the same harness (one timing per call,
                // which costs ~20 ns on its own): copy the handed-over
                // buffer out, then free it.
                g.bench_function("memcpy_owned", |b| {
                    let mut dst = vec![0u8; size];
                    b.iter_batched(
                        || payload.to_vec(),
                        |owned| {
                            dst.copy_from_slice(&owned);
                            black_box(&mut dst);
                        },
                        BatchSize::PerIteration,
                    )
                });
                g.bench_function("wsproto_owned", |b| {
                    let mut conn = wsproto_sender(client);
                    b.iter_batched(
                        || payload.to_vec(),
                        |owned| {
                            conn.send(Message::binary(owned)).unwrap();
                            let mut n = 0;
                            while let Some(chunk) = conn.poll_transmit() {
                                n += chunk.len();
                            }
                            assert_eq!(n, wire_len);
                        },
                        BatchSize::PerIteration,
                    )
                });
                g.bench_function("fastwebsockets_owned", |b| {
                    let sink = MemStream::sink(false);
                    let written = sink.written.clone();
                    let mut ws = fastwebsockets::WebSocket::after_handshake(sink, frole());
                    b.iter_batched(
                        || payload.to_vec(),
                        |owned| {
                            let before = written.get();
                            run(ws.write_frame(FwsFrame::binary(Payload::Owned(owned)))).unwrap();
                            assert_eq!(written.get() - before, wire_len);
                        },
                        BatchSize::PerIteration,
                    )
                });
            }
            g.finish();
        }
    }
}

// ------------------------------------------------------------ handshake

/// What Chrome sends (about 500 bytes with a session cookie).
const BROWSER_REQUEST: &[u8] = b"GET /chat?room=lobby HTTP/1.1\r\n\
Host: chat.example.com\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: https://chat.example.com\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=3f9a1c7e5b2d4a6f8e0c1b3d5f7a9c2e; theme=dark\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
\r\n";
const EXPECTED_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

fn httparse_parse(req: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Request::new(&mut headers);
    match r.parse(req) {
        Ok(httparse::Status::Complete(n)) => {
            assert_eq!(r.headers.len(), 13);
            n
        }
        other => panic!("httparse: {other:?}"),
    }
}

/// wsproto's server handshake: parse, validate (§4.2.1), and with `accept`
/// write the `101` response and create the connection.
fn wsproto_handshake(mut input: BytesMut, accept: Option<&Config>, out: &mut Vec<u8>) -> usize {
    let mut hs = ServerHandshake::new(&Limits::default());
    let Status::Complete(req) = hs.receive(&mut input).unwrap() else {
        panic!("wsproto: partial")
    };
    if let Some(config) = accept {
        let conn = req
            .accept(AcceptOptions::new(), out, config.clone())
            .unwrap();
        black_box(&conn);
    } else {
        out.extend_from_slice(req.key().as_bytes());
    }
    out.len()
}

/// fastwebsockets has no HTTP parser: a server gets the request from hyper
/// (which parses with httparse) and calls `fastwebsockets::upgrade::upgrade`,
/// then hyper writes the response. This member does the same steps, with
/// httparse → `http::Request` standing in for hyper's request building and
/// a plain serialisation of the response head.
fn fws_accept(req: &[u8], out: &mut Vec<u8>) {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut r = httparse::Request::new(&mut headers);
    assert!(matches!(r.parse(req), Ok(httparse::Status::Complete(_))));
    let mut builder = http::Request::builder()
        .method(r.method.unwrap())
        .uri(r.path.unwrap())
        .version(http::Version::HTTP_11);
    for h in r.headers.iter() {
        builder = builder.header(h.name, h.value);
    }
    let mut request = builder.body(()).unwrap();
    assert!(fastwebsockets::upgrade::is_upgrade_request(&request));
    let (response, fut) = fastwebsockets::upgrade::upgrade(&mut request).unwrap();
    drop(fut);
    out.extend_from_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
    for (k, v) in response.headers() {
        out.extend_from_slice(k.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

fn verify_response(name: &str, response: &[u8]) {
    let text = std::str::from_utf8(response).unwrap().to_ascii_lowercase();
    assert!(text.starts_with("http/1.1 101 "), "{name}: {text}");
    let want = format!(
        "sec-websocket-accept: {}\r\n",
        EXPECTED_ACCEPT.to_ascii_lowercase()
    );
    assert!(text.contains(&want), "{name}: no accept key in {text}");
    assert!(text.ends_with("\r\n\r\n"), "{name}: unterminated response");
}

fn bench_handshake(c: &mut Criterion) {
    let req = BROWSER_REQUEST;
    assert!(
        (450..=600).contains(&req.len()),
        "request is {} bytes",
        req.len()
    );

    // -- checks, once
    assert_eq!(httparse_parse(req), req.len());
    let mut out = Vec::new();
    wsproto_handshake(BytesMut::from(req), None, &mut out);
    assert_eq!(out, b"dGhlIHNhbXBsZSBub25jZQ==");
    out.clear();
    wsproto_handshake(BytesMut::from(req), Some(&ws_config()), &mut out);
    verify_response("wsproto", &out);
    let (n, parsed) = tungstenite::handshake::server::Request::try_parse(req)
        .unwrap()
        .unwrap();
    assert_eq!(n, req.len());
    assert_eq!(
        parsed.headers()["sec-websocket-key"],
        "dGhlIHNhbXBsZSBub25jZQ=="
    );
    let ws =
        tungstenite::accept_with_config(MemStream::sink(true).with_input(req), Some(tung_config()))
            .unwrap();
    verify_response("tungstenite", ws.get_ref().collected.as_ref().unwrap());
    let mut out = Vec::new();
    fws_accept(req, &mut out);
    verify_response("fastwebsockets", &out);

    // -- request bytes to a parsed request
    let mut g = c.benchmark_group("handshake_parse");
    g.throughput(Throughput::Bytes(req.len() as u64));
    g.bench_function("httparse", |b| b.iter(|| httparse_parse(black_box(req))));
    // parse + §4.2.1 validation into an owned `IncomingRequest` (the copy
    // into a `BytesMut`, which `receive` consumes from, is not timed)
    g.bench_function("wsproto", |b| {
        let mut out = Vec::with_capacity(64);
        b.iter_batched(
            || BytesMut::from(req),
            |input| {
                out.clear();
                wsproto_handshake(input, None, &mut out)
            },
            BatchSize::SmallInput,
        )
    });
    // parse into an `http::Request` (method and version checked; the rest
    // of the validation happens when the response is built)
    g.bench_function("tungstenite", |b| {
        b.iter(|| {
            tungstenite::handshake::server::Request::try_parse(black_box(req))
                .unwrap()
                .unwrap()
        })
    });
    // fastwebsockets: no parser of its own (hyper parses), see `fws_accept`.
    g.finish();

    // -- request bytes to the `101` response (and a connection)
    let mut g = c.benchmark_group("handshake_accept");
    g.throughput(Throughput::Bytes(req.len() as u64));
    g.bench_function("httparse", |b| b.iter(|| httparse_parse(black_box(req))));
    g.bench_function("wsproto", |b| {
        let config = ws_config();
        let mut out = Vec::with_capacity(256);
        b.iter_batched(
            || BytesMut::from(req),
            |input| {
                out.clear();
                wsproto_handshake(input, Some(&config), &mut out)
            },
            BatchSize::SmallInput,
        )
    });
    // `tungstenite::accept` over an in-memory stream: reads the request,
    // validates it, writes the response and returns the `WebSocket`.
    g.bench_function("tungstenite", |b| {
        b.iter(|| {
            let ws = tungstenite::accept_with_config(
                MemStream::sink(false).with_input(black_box(req)),
                Some(tung_config()),
            )
            .unwrap();
            black_box(ws)
        })
    });
    g.bench_function("fastwebsockets", |b| {
        let mut out = Vec::with_capacity(256);
        b.iter(|| {
            out.clear();
            fws_accept(black_box(req), &mut out);
            out.len()
        })
    });
    g.finish();
}

impl<'a> MemStream<'a> {
    fn with_input(mut self, input: &'a [u8]) -> Self {
        self.input = input;
        self
    }
}

// ------------------------------------------------------- masking, UTF-8

fn bench_unmask(c: &mut Criterion) {
    let key = [0x37, 0xFA, 0x21, 0x3D];
    for (label, size) in UNMASK_SIZES {
        let data = random_bytes(size, 5);
        let want: Vec<u8> = data
            .iter()
            .enumerate()
            .map(|(i, b)| b ^ key[i % 4])
            .collect();
        let mut a = data.clone();
        wsproto::apply_mask(&mut a, key, 0);
        assert_eq!(a, want, "wsproto::apply_mask");
        let mut split = data.clone();
        let (x, y) = split.split_at_mut(size / 2 + 1);
        wsproto::apply_mask(x, key, 0);
        wsproto::apply_mask(y, key, size / 2 + 1);
        assert_eq!(split, want, "wsproto::apply_mask with an offset");
        let mut f = data.clone();
        fastwebsockets::unmask(&mut f, key);
        assert_eq!(f, want, "fastwebsockets::unmask");

        let mut g = c.benchmark_group(format!("unmask/{label}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("memcpy", |b| {
            let mut dst = vec![0u8; size];
            b.iter(|| {
                dst.copy_from_slice(black_box(&data));
                black_box(&mut dst);
            })
        });
        // in place, over and over (masking twice restores the data)
        g.bench_function("wsproto", |b| {
            let mut buf = data.clone();
            b.iter(|| wsproto::apply_mask(black_box(&mut buf), black_box(key), 0))
        });
        g.bench_function("fastwebsockets", |b| {
            let mut buf = data.clone();
            b.iter(|| fastwebsockets::unmask(black_box(&mut buf), black_box(key)))
        });
        // tungstenite: its `apply_mask` lives in a private module
        // (`protocol::frame::mask`) and no public function reaches it alone.
        g.finish();
    }
}

fn wsproto_utf8(data: &[u8]) -> bool {
    let mut v = Utf8Validator::new();
    data.chunks(4096).all(|piece| v.feed(piece).is_ok()) && v.finish().is_ok()
}

fn bench_utf8(c: &mut Criterion) {
    for (label, size) in UTF8_SIZES {
        let text = mixed_text(size, 11);
        let data = text.as_bytes();
        let bytes = Bytes::copy_from_slice(data);
        // 4 KiB pieces must cut code points for the carry to be exercised
        if size > 4096 {
            assert!((4096..size)
                .step_by(4096)
                .any(|at| !text.is_char_boundary(at)));
        }
        let mut invalid = data.to_vec();
        invalid[size / 2] = 0xFF;
        let truncated = &data[..text.char_indices().last().unwrap().0 + 1];
        let truncated = if std::str::from_utf8(truncated).is_err() {
            truncated
        } else {
            // last char is ASCII: cut a multi-byte one instead
            let at = text
                .char_indices()
                .rev()
                .find(|(_, c)| c.len_utf8() > 1)
                .unwrap()
                .0
                + 1;
            &data[..at]
        };
        let fws = |d: &[u8]| FwsFrame::text(Payload::Borrowed(d)).is_utf8();
        let tung = |d: &Bytes| tungstenite::Utf8Bytes::try_from(d.clone()).is_ok();
        for (name, ok, bad, cut) in [
            (
                "std",
                std::str::from_utf8(data).is_ok(),
                std::str::from_utf8(&invalid).is_ok(),
                std::str::from_utf8(truncated).is_ok(),
            ),
            (
                "simdutf8",
                simdutf8::basic::from_utf8(data).is_ok(),
                simdutf8::basic::from_utf8(&invalid).is_ok(),
                simdutf8::basic::from_utf8(truncated).is_ok(),
            ),
            (
                "wsproto",
                wsproto_utf8(data),
                wsproto_utf8(&invalid),
                wsproto_utf8(truncated),
            ),
            (
                "tungstenite",
                tung(&bytes),
                tung(&Bytes::from(invalid.clone())),
                tung(&Bytes::copy_from_slice(truncated)),
            ),
            ("fastwebsockets", fws(data), fws(&invalid), fws(truncated)),
        ] {
            assert!(
                ok && !bad && !cut,
                "{name}: valid {ok}, invalid {bad}, truncated {cut}"
            );
        }

        // One input, validated over and over: a branchy validator (std)
        // learns it when it is small; `decode_text` has varied messages.
        let mut g = c.benchmark_group(format!("utf8/{label}"));
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_function("memcpy", |b| {
            let mut dst = vec![0u8; size];
            b.iter(|| {
                dst.copy_from_slice(black_box(data));
                black_box(&mut dst);
            })
        });
        g.bench_function("std", |b| {
            b.iter(|| std::str::from_utf8(black_box(data)).is_ok())
        });
        g.bench_function("simdutf8", |b| {
            b.iter(|| simdutf8::basic::from_utf8(black_box(data)).is_ok())
        });
        // incremental, fed in 4 KiB pieces (as payload arrives)
        g.bench_function("wsproto", |b| b.iter(|| wsproto_utf8(black_box(data))));
        // what its text messages go through: `Utf8Bytes::try_from(Bytes)`
        g.bench_function("tungstenite", |b| b.iter(|| tung(black_box(&bytes))));
        // what its reader checks complete text frames with: `Frame::is_utf8`
        g.bench_function("fastwebsockets", |b| b.iter(|| fws(black_box(data))));
        g.finish();
    }
}

// ------------------------------------------------------------------- main

/// Short runs: the whole suite takes about 5 minutes. On a shared machine
/// the numbers are noisy; read them as ratios within a group.
fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_millis(1500))
        .sample_size(20)
}

criterion_group! {
    name = benches;
    config = criterion();
    targets = bench_decode, bench_encode, bench_handshake, bench_unmask, bench_utf8
}
criterion_main!(benches);
