//! wsproto and tungstenite (an independent implementation) receive the same
//! bytes and must agree — and both must agree with a small reference model
//! of RFC 6455 written here.
//!
//! The input describes a frame stream a peer sends to an endpoint of either
//! role: messages (text or binary, whole or cut into fragments anywhere,
//! even inside a code point, with pings and pongs between the fragments),
//! standalone pings and pongs, then a close frame (followed by bytes both
//! must ignore) or EOF. At most one fault is injected: reserved bits, the
//! wrong masking, a reserved opcode, a flipped FIN, an oversized control
//! frame, invalid UTF-8 in a text fragment, a non-minimal length encoding, a
//! stray continuation or data frame, or an invalid close payload (one byte,
//! a code that must not be sent, a reason that is not UTF-8). The payload
//! limits (frame and message) are small or large, and the same for both
//! implementations. The stream is cut into arbitrary chunks; wsproto
//! (reassembling or streaming) gets them through `receive` and is read with
//! `poll_event` or `poll_event_ref` (an arbitrary choice per poll, so lent
//! messages are checked against the model too), tungstenite
//! (`WebSocket::from_raw_socket`) through an in-memory reader returning the
//! same chunks.
//!
//! Invariants:
//! * wsproto delivers exactly the model's messages, pings and pongs, in
//!   order, then ends as the model does: the peer's close frame (code and
//!   reason), EOF (`Closed(Abnormal)`), or an error whose close code is one
//!   the model allows for the first offending frame (1002, 1007, 1009);
//!   its output is one pong per ping (same payload, in order), then the
//!   echo of the peer's close code, or its failure close frame with the
//!   error's code;
//! * tungstenite delivers the same messages, pings, pongs and close frame,
//!   or fails with an error of the same class (`Protocol` = 1002, `Utf8` =
//!   1007, `Capacity` = 1009), and writes the same pongs and close reply.
//!
//! Where tungstenite knowingly departs from RFC 6455 the comparison is
//! normalised, and the departure itself is asserted (so a change on either
//! side shows up); see docs/fuzzing.md:
//! * non-minimal length encodings (§5.2 "the minimal number of bytes MUST
//!   be used"): wsproto fails with 1002, tungstenite accepts the frame; the
//!   tungstenite side is checked against the model run without that rule;
//! * a received close frame with a code that must not be sent (§7.4.1: 1005,
//!   1006, 1015, < 1000, 1016–2999, ≥ 5000, unassigned 1004): tungstenite
//!   returns it as `Message::Close` and replies 1002, wsproto fails with
//!   1002; counted as the same rejection;
//! * close code 1014 (registered by IANA after RFC 6455): wsproto accepts and
//!   echoes it, tungstenite returns it but replies 1002; the reply code is
//!   not compared for it;
//! * after the peer's close frame nothing is compared (wsproto discards
//!   later input; a tungstenite client reports later frames as an error);
//! * fail-fast UTF-8 inside a frame: wsproto fails at the first impossible
//!   byte, tungstenite once the frame is complete; the generated streams
//!   only contain complete frames, so both fail at the same frame.
#![no_main]

use std::collections::VecDeque;
use std::io::{self, Read, Write};

use arbitrary::Arbitrary;
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tungstenite::error::ProtocolError as TProtocolError;
use tungstenite::protocol::{Role as TRole, WebSocket, WebSocketConfig};
use tungstenite::{Error as TError, Message as TMessage};
use wsproto::frame::{FrameDecoder, OpCode};
use wsproto::{CloseReason, Config, Connection, Event, MaskSource, MessageKind, Role};
use wsproto_fuzz::{chunks, counter_masks, truncate_str, xor_mask};

/// Payload limits (frame and message), each picked from this table.
const LIMITS: [usize; 10] = [
    0,
    1,
    125,
    126,
    1000,
    65535,
    65536,
    1 << 20,
    1 << 20,
    1 << 20,
];
/// Close codes both implementations accept (1014: see the module docs).
const GOOD_CODES: [u16; 16] = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 3999, 4000, 4999,
];
/// Close codes that must not appear in a close frame (§7.4.1, §7.4.2).
const BAD_CODES: [u16; 11] = [
    0, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000, 65535,
];
const RESERVED_OPCODES: [u8; 10] = [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF];
/// Byte sequences that are invalid UTF-8 or become so depending on what
/// follows (the model decides from the bytes actually sent).
const BAD_UTF8: [&[u8]; 9] = [
    b"\xff",
    b"\x80",
    b"\xc0\xaf",
    b"\xed\xa0\x80",
    b"\xf4\x90\x80\x80",
    b"\xf8\x88\x80\x80\x80",
    b"\xe2\x82",
    b"\xf0\x9f\x98",
    b"\xce",
];
/// The generated stream stops growing past this size (keeps runs fast).
const MAX_STREAM: usize = 300_000;

#[derive(Arbitrary, Debug)]
enum Body {
    Text(String),
    Bin(Vec<u8>),
    /// `n * 300` copies of a byte (ASCII for text): 16- and 64-bit lengths.
    Big(u8, u8),
}

#[derive(Arbitrary, Debug)]
enum Ctl {
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

#[derive(Arbitrary, Debug)]
enum Item {
    Msg {
        text: bool,
        body: Body,
        /// Fragment sizes, cycled (empty: one frame; 0: an empty fragment).
        cuts: Vec<u8>,
        /// Control frames after fragment `i` (not after the last).
        ctls: Vec<(u8, Ctl)>,
    },
    Ctl(Ctl),
}

#[derive(Arbitrary, Debug)]
enum Fault {
    Rsv(u8),
    WrongMask,
    ReservedOpcode(u8),
    FlipFin,
    ControlTooLong(u8),
    BadUtf8(u8, u16),
    NonMinimal(bool),
    InsertContinuation(bool),
    InsertData(bool, bool),
    BadClose(u8),
}

#[derive(Arbitrary, Debug)]
struct Input {
    role: Role,
    max_frame: u8,
    max_message: u8,
    streaming: bool,
    items: Vec<Item>,
    /// `None`: the stream ends with EOF; `Some(None)`: an empty close frame.
    close: Option<Option<(u8, String)>>,
    /// Bytes after the close frame: both must ignore them.
    trailing: Vec<u8>,
    fault: Option<(u16, Fault)>,
    sizes: Vec<u8>,
    seed: u32,
    /// Bit `i % 32`: whether wsproto's `i`-th poll is `poll_event_ref`.
    readers: u32,
}

// ------------------------------------------------------------------ frames

#[derive(Clone, Copy, Debug, PartialEq)]
enum LenForm {
    Minimal,
    Sixteen,
    SixtyFour,
}

/// A frame as the peer sends it; encoded here, independently of wsproto.
#[derive(Clone, Debug)]
struct WireFrame {
    /// FIN, RSV and opcode bits.
    b0: u8,
    masked: bool,
    len_form: LenForm,
    payload: Vec<u8>,
    key: [u8; 4],
    /// Part of a text message (for the UTF-8 fault).
    text: bool,
}

impl WireFrame {
    fn new(op: u8, fin: bool, payload: Vec<u8>, masked: bool, key: [u8; 4]) -> Self {
        WireFrame {
            b0: op | if fin { 0x80 } else { 0 },
            masked,
            len_form: LenForm::Minimal,
            payload,
            key,
            text: false,
        }
    }

    fn opcode(&self) -> u8 {
        self.b0 & 0x0F
    }

    fn fin(&self) -> bool {
        self.b0 & 0x80 != 0
    }

    /// Whether the length is encoded with the minimal number of bytes.
    fn minimal(&self) -> bool {
        let len = self.payload.len();
        match self.len_form {
            LenForm::Minimal => true,
            LenForm::Sixteen => len >= 126,
            LenForm::SixtyFour => len >= 65536,
        }
    }

    fn encode(&self, out: &mut Vec<u8>) {
        let len = self.payload.len();
        let mask_bit = if self.masked { 0x80 } else { 0 };
        out.push(self.b0);
        let form = match self.len_form {
            LenForm::Minimal if len < 126 => LenForm::Minimal,
            LenForm::Minimal if len < 65536 => LenForm::Sixteen,
            LenForm::Minimal => LenForm::SixtyFour,
            LenForm::Sixteen if len >= 65536 => LenForm::SixtyFour,
            f => f,
        };
        match form {
            LenForm::Minimal => out.push(mask_bit | len as u8),
            LenForm::Sixteen => {
                out.push(mask_bit | 126);
                out.extend_from_slice(&(len as u16).to_be_bytes());
            }
            LenForm::SixtyFour => {
                out.push(mask_bit | 127);
                out.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        if self.masked {
            out.extend_from_slice(&self.key);
        }
        let start = out.len();
        out.extend_from_slice(&self.payload);
        if self.masked {
            xor_mask(&mut out[start..], self.key, 0);
        }
    }
}

fn body_bytes(text: bool, b: &Body) -> Vec<u8> {
    match b {
        Body::Text(s) => s.as_bytes().to_vec(),
        Body::Bin(v) => v.clone(),
        Body::Big(n, fill) => {
            let fill = if text { fill & 0x7F } else { *fill };
            vec![fill; *n as usize * 300]
        }
    }
}

fn ctl_frame(c: &Ctl, masked: bool, key: [u8; 4]) -> WireFrame {
    let (op, p) = match c {
        Ctl::Ping(p) => (0x9, p),
        Ctl::Pong(p) => (0xA, p),
    };
    WireFrame::new(op, true, p[..p.len().min(125)].to_vec(), masked, key)
}

/// The frames the input describes, with its fault applied.
fn build(input: &Input) -> Vec<WireFrame> {
    let masked = input.role == Role::Server;
    let mut keys = counter_masks(input.seed);
    let mut key = || {
        let mut k = [0u8; 4];
        keys.fill(&mut k);
        k
    };
    let mut frames = Vec::new();
    let mut size = 0;
    for item in &input.items {
        if size > MAX_STREAM {
            break;
        }
        match item {
            Item::Ctl(c) => frames.push(ctl_frame(c, masked, key())),
            Item::Msg {
                text,
                body,
                cuts,
                ctls,
            } => {
                let data = body_bytes(*text, body);
                size += data.len();
                let mut pieces = Vec::new();
                if cuts.is_empty() {
                    pieces.push(&data[..]);
                } else {
                    let mut rest = &data[..];
                    let mut i = 0;
                    loop {
                        let n = (cuts[i % cuts.len()] as usize).min(rest.len());
                        let (a, b) = rest.split_at(n);
                        pieces.push(a);
                        rest = b;
                        i += 1;
                        if rest.is_empty() || i >= 64 {
                            if !rest.is_empty() {
                                pieces.push(rest);
                            }
                            break;
                        }
                    }
                }
                let last = pieces.len() - 1;
                for (i, p) in pieces.iter().enumerate() {
                    let op = match (i, text) {
                        (0, true) => 0x1,
                        (0, false) => 0x2,
                        _ => 0x0,
                    };
                    let mut f = WireFrame::new(op, i == last, p.to_vec(), masked, key());
                    f.text = *text;
                    frames.push(f);
                    if i < last {
                        for (at, c) in ctls {
                            if *at as usize % pieces.len() == i {
                                frames.push(ctl_frame(c, masked, key()));
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some(close) = &input.close {
        let payload = match close {
            None => Vec::new(),
            Some((c, reason)) => {
                let mut p = GOOD_CODES[*c as usize % GOOD_CODES.len()]
                    .to_be_bytes()
                    .to_vec();
                p.extend_from_slice(truncate_str(reason, 123).as_bytes());
                p
            }
        };
        frames.push(WireFrame::new(0x8, true, payload, masked, key()));
    }
    if let Some((at, fault)) = &input.fault {
        let i = *at as usize % (frames.len() + 1);
        apply_fault(&mut frames, i, fault, masked, key());
    }
    frames
}

fn apply_fault(frames: &mut Vec<WireFrame>, i: usize, fault: &Fault, masked: bool, key: [u8; 4]) {
    let insert = |frames: &mut Vec<WireFrame>, f: WireFrame| frames.insert(i, f);
    match fault {
        Fault::InsertContinuation(fin) => insert(
            frames,
            WireFrame::new(0x0, *fin, b"xy".to_vec(), masked, key),
        ),
        Fault::InsertData(text, fin) => {
            let op = if *text { 0x1 } else { 0x2 };
            insert(
                frames,
                WireFrame::new(op, *fin, b"hi".to_vec(), masked, key),
            )
        }
        Fault::BadClose(sel) => {
            let payload = match sel % 3 {
                0 => vec![0x03],
                1 => {
                    let mut p = BAD_CODES[(*sel / 3) as usize % BAD_CODES.len()]
                        .to_be_bytes()
                        .to_vec();
                    p.push(b'r');
                    p
                }
                _ => b"\x03\xe8bad \xff\xfe".to_vec(),
            };
            insert(frames, WireFrame::new(0x8, true, payload, masked, key))
        }
        _ => {
            let Some(f) = frames.get_mut(i) else { return };
            match fault {
                Fault::Rsv(b) => f.b0 |= ((b % 7) + 1) << 4,
                Fault::WrongMask => f.masked = !f.masked,
                Fault::ReservedOpcode(o) => {
                    f.b0 = (f.b0 & 0xF0) | RESERVED_OPCODES[*o as usize % RESERVED_OPCODES.len()]
                }
                Fault::FlipFin => f.b0 ^= 0x80,
                Fault::ControlTooLong(n) => {
                    if f.opcode() & 0x8 != 0 {
                        f.payload.resize(126 + *n as usize, b'x');
                    }
                }
                Fault::BadUtf8(which, pos) => {
                    if f.text {
                        let bad = BAD_UTF8[*which as usize % BAD_UTF8.len()];
                        let at = *pos as usize % (f.payload.len() + 1);
                        f.payload.splice(at..at, bad.iter().copied());
                    }
                }
                Fault::NonMinimal(wide) => {
                    f.len_form = if *wide || f.payload.len() >= 126 {
                        LenForm::SixtyFour
                    } else {
                        LenForm::Sixteen
                    }
                }
                _ => unreachable!("handled above"),
            }
        }
    }
}

// ------------------------------------------------------------------- model

#[derive(Clone, Debug, PartialEq)]
enum Ev {
    Msg(bool, Vec<u8>),
    Ping(Vec<u8>),
    Pong(Vec<u8>),
}

#[derive(Clone, Debug, PartialEq)]
enum End {
    /// The peer's close frame: code and reason.
    Closed(Option<(u16, Vec<u8>)>),
    /// EOF without a close frame.
    Eof,
    /// The connection fails with one of these close codes.
    Reject(Vec<u16>),
}

#[derive(Debug, PartialEq)]
struct Outcome {
    events: Vec<Ev>,
    end: End,
    /// (model only) the end is a close frame with a code that must not be
    /// sent, or with 1014.
    odd_close_code: bool,
}

fn sendable(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

/// What RFC 6455 says the receiver (of `role`) makes of `frames`; with
/// `strict == false` non-minimal lengths are tolerated (tungstenite).
fn model(
    frames: &[WireFrame],
    role: Role,
    max_frame: usize,
    max_msg: usize,
    strict: bool,
) -> Outcome {
    let mut events = Vec::new();
    // message in progress: (text, bytes)
    let mut msg: Option<(bool, Vec<u8>)> = None;
    for f in frames {
        let mut codes = Vec::new();
        let op = f.opcode();
        let len = f.payload.len();
        let control = op & 0x8 != 0;
        if f.b0 & 0x70 != 0 {
            codes.push(1002);
        }
        if !matches!(op, 0x0 | 0x1 | 0x2 | 0x8 | 0x9 | 0xA) {
            codes.push(1002);
        }
        if f.masked != (role == Role::Server) {
            codes.push(1002);
        }
        if strict && !f.minimal() {
            codes.push(1002);
        }
        if len > max_frame {
            codes.push(1009);
        }
        if control && (!f.fin() || len > 125) {
            codes.push(1002);
        }
        if !codes.is_empty() {
            return Outcome {
                events,
                end: End::Reject(codes),
                odd_close_code: false,
            };
        }
        match op {
            0x0..=0x2 => {
                if (op == 0) != msg.is_some() {
                    return Outcome {
                        events,
                        end: End::Reject(vec![1002]),
                        odd_close_code: false,
                    };
                }
                let (text, data) = msg.get_or_insert_with(|| (op == 1, Vec::new()));
                if data.len() + len > max_msg {
                    return Outcome {
                        events,
                        end: End::Reject(vec![1009]),
                        odd_close_code: false,
                    };
                }
                data.extend_from_slice(&f.payload);
                if *text {
                    let bad = match std::str::from_utf8(data) {
                        Ok(_) => false,
                        Err(e) => e.error_len().is_some() || f.fin(),
                    };
                    if bad {
                        return Outcome {
                            events,
                            end: End::Reject(vec![1007]),
                            odd_close_code: false,
                        };
                    }
                }
                if f.fin() {
                    let (text, data) = msg.take().expect("in progress");
                    events.push(Ev::Msg(text, data));
                }
            }
            0x9 => events.push(Ev::Ping(f.payload.clone())),
            0xA => events.push(Ev::Pong(f.payload.clone())),
            0x8 => {
                let p = &f.payload;
                let odd_close_code = p.len() >= 2 && {
                    let code = u16::from_be_bytes([p[0], p[1]]);
                    code == 1014 || !sendable(code)
                };
                let end = match p.len() {
                    0 => End::Closed(None),
                    1 => End::Reject(vec![1002]),
                    _ => {
                        let code = u16::from_be_bytes([p[0], p[1]]);
                        let utf8 = std::str::from_utf8(&p[2..]).is_ok();
                        match (sendable(code), utf8) {
                            (true, true) => End::Closed(Some((code, p[2..].to_vec()))),
                            (true, false) => End::Reject(vec![1007]),
                            (false, true) => End::Reject(vec![1002]),
                            (false, false) => End::Reject(vec![1002, 1007]),
                        }
                    }
                };
                return Outcome {
                    events,
                    end,
                    odd_close_code,
                };
            }
            _ => unreachable!("reserved opcodes are rejected above"),
        }
    }
    Outcome {
        events,
        end: End::Eof,
        odd_close_code: false,
    }
}

/// What the receiver writes back: one pong per ping, then the close echo.
fn expected_output(o: &Outcome) -> Vec<(u8, Vec<u8>)> {
    let mut out: Vec<(u8, Vec<u8>)> = o
        .events
        .iter()
        .filter_map(|e| match e {
            Ev::Ping(p) => Some((0xA, p.clone())),
            _ => None,
        })
        .collect();
    if let End::Closed(frame) = &o.end {
        out.push((
            0x8,
            frame
                .as_ref()
                .map_or(vec![], |(c, _)| c.to_be_bytes().to_vec()),
        ));
    }
    out
}

/// Decode what an endpoint of `role` wrote: (opcode, payload) per frame,
/// close payloads reduced to their code.
fn decode_output(role: Role, bytes: &[u8]) -> Vec<(u8, Vec<u8>)> {
    let peer = match role {
        Role::Server => Role::Client,
        Role::Client => Role::Server,
    };
    let mut dec = FrameDecoder::new(peer, 1 << 20);
    let mut buf = BytesMut::from(bytes);
    let mut out = Vec::new();
    while let Some(f) = dec
        .decode(&mut buf)
        .unwrap_or_else(|e| panic!("{role:?} output is not a frame stream: {e:?}"))
    {
        let mut p = f.payload.to_vec();
        if f.header.opcode == OpCode::Close {
            p.truncate(2);
        }
        out.push((f.header.opcode.as_u8(), p));
    }
    assert!(buf.is_empty(), "{role:?} output ends inside a frame");
    out
}

// --------------------------------------------------------------- wsproto

fn run_wsproto(
    input: &Input,
    pieces: &[&[u8]],
    max_frame: usize,
    max_msg: usize,
) -> (Outcome, Vec<u8>) {
    let mut config = Config::default();
    config.limits.max_frame_payload = max_frame;
    config.limits.max_message = max_msg;
    config.streaming = input.streaming;
    let mut conn = match input.role {
        Role::Server => Connection::server(config),
        Role::Client => Connection::client_with_masks(config, counter_masks(!input.seed)),
    };
    let mut events = Vec::new();
    let mut out = Vec::new();
    let mut partial: Option<(bool, Vec<u8>)> = None;
    let mut end = None;
    let mut polls = 0u32;
    let n = pieces.len();
    'feed: for i in 0..=n {
        match pieces.get(i) {
            Some(p) => conn.receive(p),
            None => conn.receive_eof(),
        }
        loop {
            let by_ref = (input.readers >> (polls % 32)) & 1 == 1;
            polls += 1;
            let polled = if by_ref {
                // the borrowed view must be the event `poll_event` gives
                conn.poll_event_ref().map(|e| e.map(|e| e.to_event()))
            } else {
                conn.poll_event()
            };
            let ev = match polled {
                Ok(Some(ev)) => ev,
                Ok(None) => break,
                Err(e) => {
                    let code = e.close_code().expect("a failure has a close code").0;
                    end = Some(End::Reject(vec![code]));
                    break 'feed;
                }
            };
            match ev {
                Event::Message(m) => {
                    assert!(!input.streaming);
                    let text = m.kind() == MessageKind::Text;
                    events.push(Ev::Msg(text, m.as_bytes().to_vec()));
                }
                Event::Fragment { kind, data, fin } => {
                    assert!(input.streaming);
                    let text = kind == MessageKind::Text;
                    if text {
                        assert!(std::str::from_utf8(&data).is_ok(), "text piece not UTF-8");
                    }
                    let (k, buf) = partial.get_or_insert_with(|| (text, Vec::new()));
                    assert_eq!(*k, text, "fragment kind changed");
                    buf.extend_from_slice(&data);
                    if fin {
                        let (k, buf) = partial.take().expect("in progress");
                        events.push(Ev::Msg(k, buf));
                    }
                }
                Event::Ping(p) => events.push(Ev::Ping(p.to_vec())),
                Event::Pong(p) => events.push(Ev::Pong(p.to_vec())),
                Event::Closed(CloseReason::Clean { peer_frame, .. }) => {
                    end = Some(End::Closed(
                        peer_frame.map(|f| (f.code.0, f.reason.as_bytes().to_vec())),
                    ));
                }
                Event::Closed(CloseReason::Abnormal) => {
                    assert_eq!(i, n, "Abnormal before EOF");
                    end = Some(End::Eof);
                }
                Event::Closed(other) => panic!("unexpected close reason {other:?}"),
            }
            // drain after every event, as a driver that writes at once does
            while let Some(c) = conn.poll_transmit() {
                out.extend_from_slice(&c);
            }
            if end.is_some() {
                break 'feed;
            }
        }
    }
    while let Some(c) = conn.poll_transmit() {
        out.extend_from_slice(&c);
    }
    let end = end.expect("EOF always ends the connection");
    (
        Outcome {
            events,
            end,
            odd_close_code: false,
        },
        out,
    )
}

// ------------------------------------------------------------ tungstenite

/// An in-memory transport: reads return the given chunks in order (at most
/// one chunk per read), then EOF; writes are collected.
struct Pipe {
    chunks: VecDeque<Vec<u8>>,
    out: Vec<u8>,
}

impl Read for Pipe {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while let Some(front) = self.chunks.front_mut() {
            if front.is_empty() {
                self.chunks.pop_front();
                continue;
            }
            let n = front.len().min(buf.len());
            buf[..n].copy_from_slice(&front[..n]);
            front.drain(..n);
            return Ok(n);
        }
        Ok(0)
    }
}

impl Write for Pipe {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn run_tungstenite(
    role: Role,
    pieces: &[&[u8]],
    max_frame: usize,
    max_msg: usize,
) -> (Outcome, Vec<u8>) {
    let pipe = Pipe {
        chunks: pieces.iter().map(|p| p.to_vec()).collect(),
        out: Vec::new(),
    };
    let config = WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
        .max_frame_size(Some(max_frame))
        .max_message_size(Some(max_msg));
    let trole = match role {
        Role::Server => TRole::Server,
        Role::Client => TRole::Client,
    };
    let mut ws = WebSocket::from_raw_socket(pipe, trole, Some(config));
    let mut events = Vec::new();
    let end = loop {
        match ws.read() {
            Ok(TMessage::Text(t)) => events.push(Ev::Msg(true, t.as_bytes().to_vec())),
            Ok(TMessage::Binary(b)) => events.push(Ev::Msg(false, b.to_vec())),
            Ok(TMessage::Ping(p)) => events.push(Ev::Ping(p.to_vec())),
            Ok(TMessage::Pong(p)) => events.push(Ev::Pong(p.to_vec())),
            Ok(TMessage::Close(f)) => {
                // get the reply out; nothing after the close is compared
                let _ = ws.flush();
                break End::Closed(f.map(|f| (u16::from(f.code), f.reason.as_bytes().to_vec())));
            }
            Ok(TMessage::Frame(_)) => unreachable!("read never returns raw frames"),
            Err(TError::Protocol(TProtocolError::ResetWithoutClosingHandshake)) => break End::Eof,
            Err(TError::Protocol(_)) => break End::Reject(vec![1002]),
            Err(TError::Utf8(_)) => break End::Reject(vec![1007]),
            Err(TError::Capacity(_)) => break End::Reject(vec![1009]),
            Err(e) => panic!("unexpected tungstenite error {e:?}"),
        }
    };
    let out = std::mem::take(&mut ws.get_mut().out);
    (
        Outcome {
            events,
            end,
            odd_close_code: false,
        },
        out,
    )
}

// ----------------------------------------------------------------- compare

fn check(who: &str, got: &Outcome, want: &Outcome) {
    assert_eq!(
        got.events, want.events,
        "{who}: events differ from the model"
    );
    match (&got.end, &want.end) {
        (End::Reject(g), End::Reject(w)) => {
            assert_eq!(g.len(), 1);
            assert!(
                w.contains(&g[0]),
                "{who}: failed with {g:?}, model allows {w:?}"
            );
        }
        (g, w) => assert_eq!(g, w, "{who}: end differs from the model"),
    }
}

fuzz_target!(|input: Input| {
    let max_frame = LIMITS[input.max_frame as usize % LIMITS.len()];
    let max_msg = LIMITS[input.max_message as usize % LIMITS.len()];
    let frames = build(&input);
    let mut stream = Vec::new();
    for f in &frames {
        f.encode(&mut stream);
    }
    if input.close.is_some() {
        stream.extend_from_slice(&input.trailing);
    }
    let pieces = chunks(&input.sizes, &stream);

    let strict = model(&frames, input.role, max_frame, max_msg, true);
    let lenient = model(&frames, input.role, max_frame, max_msg, false);

    // wsproto against the model
    let (ws, ws_out) = run_wsproto(&input, &pieces, max_frame, max_msg);
    check("wsproto", &ws, &strict);
    let mut ws_frames = decode_output(input.role, &ws_out);
    if let End::Reject(codes) = &ws.end {
        let (op, p) = ws_frames.pop().expect("a failure writes a close frame");
        assert_eq!(op, 0x8, "the failure's frame is a close frame");
        assert_eq!(p, codes[0].to_be_bytes(), "close code of the failure");
    }
    assert_eq!(ws_frames, expected_output(&strict), "wsproto output");

    // tungstenite against the model (without the minimal-length rule)
    let (mut tg, tg_out) = run_tungstenite(input.role, &pieces, max_frame, max_msg);
    let mut tg_frames = decode_output(input.role, &tg_out);
    let mut want = expected_output(&lenient);
    // tungstenite hands out a refused close code (and 1014) as
    // `Close(1002 "Protocol violation")` and replies with that frame
    let refused = End::Closed(Some((1002, b"Protocol violation".to_vec())));
    if lenient.odd_close_code && tg.end == refused {
        let (op, p) = tg_frames.pop().expect("a close reply");
        assert_eq!((op, p), (0x8, 1002u16.to_be_bytes().to_vec()));
        tg.end = lenient.end.clone();
        if matches!(lenient.end, End::Closed(_)) {
            want.pop(); // 1014: wsproto echoes it
        }
    }
    check("tungstenite", &tg, &lenient);
    assert_eq!(tg_frames, want, "tungstenite output");

    // The only departure allowed between the two: a non-minimal length.
    if strict != lenient {
        assert!(frames.iter().any(|f| !f.minimal()));
        assert_eq!(
            ws.end,
            End::Reject(vec![1002]),
            "wsproto refuses non-minimal lengths"
        );
    }
});
