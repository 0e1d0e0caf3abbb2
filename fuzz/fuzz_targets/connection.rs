//! A `Connection` driven by an arbitrary sequence of operations.
//!
//! The input (decoded with `arbitrary`) picks a role, a small `Config` (small
//! limits, streaming, auto-pong, keepalive, zero-copy threshold) and a
//! list of operations: frames from the peer (mostly valid, built with
//! `encode_frame` and masked as the peer must, occasionally corrupted, each
//! received whole or in two pieces, or several in one chunk), raw byte
//! chunks, every command (`send`, `send_fragment`, `ping`, `pong`, `close`),
//! time passing (by an amount, or straight to the next deadline),
//! `receive_eof`, and partial or full draining of the output, either handed
//! over chunk by chunk (`poll_transmit`) or written in place with partial
//! writes (`peek_transmit` or a vectored `transmit_slices` of 1–8 slots,
//! then `advance_transmit(n)` for an arbitrary `n` up to what was shown,
//! including 0), mixed freely. After each operation the driver does what
//! the documentation asks of a driver: poll events until `Ok(None)` or
//! `Err` (each poll `poll_event` or `poll_event_ref`, picked by the seed's
//! bits, the borrowed event turned owned), then `poll_timeout(now)`.
//!
//! Invariants:
//! * no panic;
//! * after `Event::Closed`, no further event ever (`poll_event` is
//!   `Ok(None)`); after an `Err`, every later poll (either call) returns
//!   the same `Err`; never both;
//! * events fit the configuration: reassembled messages without streaming,
//!   fragments (each piece of text valid UTF-8, kind constant within a
//!   message) with it, messages at most `max_message`, control payloads at
//!   most 125 bytes; `Closed` reasons match what happened (a local close, an
//!   EOF, a timer);
//! * commands succeed exactly when they should (open, no message in
//!   progress or the right kind, room in the queue, valid text, legal close
//!   code and reason, control payload at most 125) and a refused value comes
//!   back untouched;
//! * everything written (chunks `poll_transmit` hands out and the first `n`
//!   bytes of what `peek_transmit`/`transmit_slices` showed before
//!   `advance_transmit(n)`), concatenated in the order written, decodes as a
//!   valid frame stream for the peer role (see `WireChecker`): at most one close
//!   frame, and after it nothing but pongs — and not even those when the
//!   close frame was a reply or a failure's (§5.5.1, §5.5.2); it ends on a
//!   frame boundary once drained; `pending_output` drops by exactly the
//!   chunk handed out (to at most a pending pong once the close frame is
//!   out) and by exactly `n` on `advance_transmit(n)` (plus at most a
//!   dropped keepalive ping when that write completes the close frame);
//!   `peek_transmit`/`transmit_slices` never show empty slices nor more than
//!   `pending_output()`, and show something whenever output is pending;
//!   the complete data messages on the wire are the ones sent, in
//!   order (all of them unless the connection failed);
//! * a close frame is written exactly when one is owed — after `close()`
//!   (with its code), in reply to the peer's (echoing its code), or on a
//!   failure while open (with the error's close code);
//! * `buffered_input()` never exceeds `max_frame_payload + 14` plus the
//!   chunk just received, and `max_frame_payload + 14` once the events are
//!   drained; `buffered_message()` never exceeds `max_message`;
//! * `should_close_transport()` is true with output still pending only after
//!   an EOF or a timeout ended the connection, or once `close_timeout` has
//!   passed since the close began (a peer that never reads);
//! * timers make progress: after `handle_timeout(now)` (repeated at most a
//!   few times) no deadline is at or before `now`, and a closed connection
//!   without a running timer wants its transport closed.
#![no_main]

use std::io::IoSlice;

use arbitrary::Arbitrary;
use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use wsproto::frame::{encode_frame, FrameHeader, OpCode};
use wsproto::{
    ApiMisuse, CapacityError, CloseCode, CloseFrame, CloseReason, Config, Connection,
    ConnectionState, Error, Event, Initiator, Instant, Message, MessageKind, Role, Timeout,
};
use wsproto_fuzz::{close_payload, counter_masks, truncate_str, WireChecker};

const CODES: [u16; 25] = [
    1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 3000, 4000, 4999, 0,
    999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535,
];

fn code(sel: u8) -> u16 {
    CODES[sel as usize % CODES.len()]
}

#[derive(Arbitrary, Debug)]
struct Input {
    role: Role,
    cfg: Cfg,
    mask_seed: u32,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
struct Cfg {
    max_frame: u16,
    max_message: u16,
    max_outbound: u16,
    streaming: bool,
    auto_pong: bool,
    keepalive: Option<u16>,
    keepalive_timeout: u16,
    close_timeout: u16,
    zero_copy: u8,
}

impl Cfg {
    fn config(&self) -> Config {
        let mut c = Config::default();
        c.limits.max_frame_payload = self.max_frame as usize % 4097;
        c.limits.max_message = self.max_message as usize % 8193;
        c.limits.max_outbound = self.max_outbound as usize % 8193;
        c.streaming = self.streaming;
        c.auto_pong = self.auto_pong;
        c.keepalive_interval = self
            .keepalive
            .map(|ms| core::time::Duration::from_millis(ms as u64));
        c.keepalive_timeout = core::time::Duration::from_millis(self.keepalive_timeout as u64);
        c.close_timeout = core::time::Duration::from_millis(self.close_timeout as u64);
        // both the copying and the zero-copy payload paths
        c.min_zero_copy = [0, 1, 126, 4096][self.zero_copy as usize % 4];
        c
    }
}

#[derive(Arbitrary, Debug)]
enum Payload {
    Text(String),
    Bin(Vec<u8>),
    Close(Option<u8>, String),
    /// `len % 5000` copies of an ASCII byte: large payloads (several output
    /// chunks, queue limits) without large inputs.
    Big(u16, u8),
}

#[derive(Arbitrary, Debug)]
struct FrameSpec {
    opcode: OpCode,
    fin: bool,
    payload: Payload,
    key: [u8; 4],
    /// Receive in two pieces, cut at `split/256` of the length.
    split: Option<u8>,
    /// 0..=239: a valid frame; otherwise one of a few corruptions.
    corrupt: u8,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Frame(FrameSpec),
    Batch(Vec<FrameSpec>),
    Raw(Vec<u8>),
    Send(Message),
    SendBig(MessageKind, Payload),
    SendFragment {
        kind: MessageKind,
        data: Payload,
        fin: bool,
    },
    Ping(Vec<u8>),
    Pong(Vec<u8>),
    Close(Option<(u8, String)>),
    Advance(u16),
    AdvanceToDeadline,
    Eof,
    /// Pull up to n chunks (0: all).
    Transmit(u8),
    /// A partial write in place: `peek_transmit` (slots 0) or
    /// `transmit_slices` into `slots % 9` slots, then
    /// `advance_transmit` by at most `limit` bytes.
    Write {
        slots: u8,
        limit: u16,
    },
}

fn payload_bytes(p: &Payload) -> Vec<u8> {
    match p {
        Payload::Text(s) => s.as_bytes().to_vec(),
        Payload::Bin(b) => b.clone(),
        Payload::Close(c, r) => close_payload(c.map(code), truncate_str(r, 123)),
        Payload::Big(len, fill) => vec![fill & 0x7F; *len as usize % 5000],
    }
}

/// The wire bytes of a frame the peer (of `role`) sends.
fn build_frame(role: Role, f: &FrameSpec) -> Vec<u8> {
    let mut payload = payload_bytes(&f.payload);
    let mut h = FrameHeader::new(f.opcode, 0);
    h.fin = f.fin;
    if f.opcode.is_control() {
        h.fin = true;
        payload.truncate(125);
    }
    let masked = role == Role::Server;
    h.mask = masked.then_some(f.key);
    let mut reserved_opcode = false;
    if f.corrupt >= 240 {
        match f.corrupt % 5 {
            0 => h.rsv1 = true,
            1 => h.mask = if masked { None } else { Some(f.key) },
            2 => h.fin = !h.fin,
            3 => payload.resize(126 + f.key[0] as usize, b'x'),
            _ => reserved_opcode = true,
        }
    }
    let mut out = BytesMut::new();
    encode_frame(&mut out, &h, &payload);
    if reserved_opcode {
        out[0] = (out[0] & 0xF0) | [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF][f.key[1] as usize % 10];
    }
    out.to_vec()
}

struct Driver {
    conn: Connection,
    role: Role,
    config: Config,
    now: u64,
    closed_event: bool,
    error: Option<Error>,
    eof: bool,
    local_close: bool,
    /// The close frame we owe the peer: `Some(code)` (`None` inside for an
    /// empty close payload).
    owed_close: Option<Option<u16>>,
    /// Whether the owed close frame is ours (`close()`): then pongs may
    /// follow it until the peer's close arrives. A reply to the peer's close
    /// or a failure's close frame is the very last frame.
    close_is_ours: bool,
    /// Kind of the fragmented message we are sending, and its bytes so far.
    sending: Option<(MessageKind, Vec<u8>)>,
    /// Complete messages sent, in order.
    sent: Vec<(bool, Vec<u8>)>,
    /// Streaming: the message being received (kind, bytes so far).
    receiving: Option<(MessageKind, usize)>,
    wire: WireChecker,
    /// Time the close began (our `close()`, the peer's close, a failure).
    ended_at: Option<u64>,
    /// Ended by EOF or a timeout: the transport closes at once.
    abrupt: bool,
    /// Bit `polls % 32`: whether the next poll is `poll_event_ref`.
    readers: u32,
    polls: u32,
}

impl Driver {
    fn open(&self) -> bool {
        !self.closed_event && self.error.is_none() && !self.local_close
    }

    fn frame_len(&self, payload: usize) -> usize {
        let mut h = FrameHeader::new(OpCode::Binary, payload as u64);
        if self.role == Role::Client {
            h.mask = Some([0; 4]);
        }
        h.encoded_len() + payload
    }

    fn queue_full(&self, payload: usize) -> bool {
        let queued = self.conn.pending_output();
        queued > 0 && queued + self.frame_len(payload) > self.config.limits.max_outbound
    }

    fn receive(&mut self, chunk: &[u8]) {
        let bound = self.config.limits.max_frame_payload + FrameHeader::MAX_LEN;
        assert!(self.conn.buffered_input() <= bound);
        self.conn.receive(chunk);
        assert!(
            self.conn.buffered_input() <= bound + chunk.len(),
            "input buffer {} > {} + {}",
            self.conn.buffered_input(),
            bound,
            chunk.len()
        );
        self.drain_events();
        assert!(
            self.conn.buffered_input() <= bound,
            "input buffer {} > {} after draining events",
            self.conn.buffered_input(),
            bound
        );
    }

    fn drain_events(&mut self) {
        loop {
            let was_open = self.conn.state() == ConnectionState::Open;
            let by_ref = (self.readers >> (self.polls % 32)) & 1 == 1;
            self.polls += 1;
            let polled = if by_ref {
                // borrowed: the same event as `poll_event`'s, once owned
                self.conn.poll_event_ref().map(|e| e.map(|e| e.to_event()))
            } else {
                self.conn.poll_event()
            };
            match polled {
                Ok(None) => break,
                Ok(Some(ev)) => {
                    assert!(!self.closed_event, "event after Closed: {ev:?}");
                    assert!(self.error.is_none(), "event after Err: {ev:?}");
                    self.on_event(ev);
                }
                Err(e) => {
                    match &self.error {
                        Some(prev) => assert_eq!(prev, &e, "error changed"),
                        None => {
                            assert!(!self.closed_event, "Err after Closed: {e:?}");
                            let code = e.close_code().expect("a failure has a close code");
                            if was_open {
                                assert!(self.owed_close.is_none());
                                self.owed_close = Some(Some(code.0));
                            }
                            self.error = Some(e.clone());
                            self.sending = None;
                            self.ended_at.get_or_insert(self.now);
                        }
                    }
                    assert_eq!(
                        self.conn.poll_event_ref().map(|e| e.map(|e| e.to_event())),
                        Err(e.clone()),
                        "error is not sticky (poll_event_ref)"
                    );
                    assert_eq!(self.conn.poll_event(), Err(e), "error is not sticky");
                    break;
                }
            }
        }
        self.check_state();
    }

    fn on_event(&mut self, ev: Event) {
        let limits = &self.config.limits;
        match ev {
            Event::Message(m) => {
                assert!(!self.config.streaming, "Message in streaming mode");
                assert!(m.len() <= limits.max_message);
                if let Message::Text(t) = &m {
                    // `as_str` trusts the validation (src/unchecked.rs): its
                    // debug assertion re-checks here, and so does this
                    let s = t.as_str();
                    assert!(std::str::from_utf8(s.as_bytes()).is_ok());
                    assert_eq!(s.as_bytes(), t.as_bytes());
                }
            }
            Event::Fragment { kind, data, fin } => {
                assert!(self.config.streaming, "Fragment without streaming");
                let (k, size) = self.receiving.get_or_insert((kind, 0));
                assert_eq!(*k, kind, "fragment kind changed within a message");
                *size += data.len();
                assert!(*size <= limits.max_message);
                if kind == MessageKind::Text {
                    assert!(
                        std::str::from_utf8(&data).is_ok(),
                        "text fragment is not UTF-8 on its own: {data:02x?}"
                    );
                }
                if fin {
                    self.receiving = None;
                }
            }
            Event::Ping(p) | Event::Pong(p) => assert!(p.len() <= 125),
            Event::Closed(reason) => {
                self.closed_event = true;
                self.sending = None;
                self.ended_at.get_or_insert(self.now);
                self.abrupt = matches!(reason, CloseReason::Abnormal | CloseReason::TimedOut(_));
                match reason {
                    CloseReason::Clean {
                        initiator: Initiator::Peer,
                        peer_frame,
                    } => {
                        assert!(!self.local_close && self.owed_close.is_none());
                        self.owed_close = Some(peer_frame.map(|f| f.code.0));
                    }
                    CloseReason::Clean {
                        initiator: Initiator::Local,
                        ..
                    } => assert!(self.local_close),
                    CloseReason::Abnormal => assert!(self.eof, "Abnormal without EOF"),
                    CloseReason::TimedOut(Timeout::Keepalive) => {
                        assert!(self.config.keepalive_interval.is_some());
                        assert!(!self.local_close);
                    }
                    CloseReason::TimedOut(Timeout::CloseHandshake) => {
                        assert!(self.local_close)
                    }
                }
            }
        }
    }

    fn check_state(&mut self) {
        let c = &self.conn;
        assert_eq!(c.is_open(), c.state() == ConnectionState::Open);
        assert_eq!(self.open(), c.is_open(), "model and connection disagree");
        if self.closed_event || self.error.is_some() {
            assert_eq!(c.state(), ConnectionState::Closed);
        } else if self.local_close {
            assert_eq!(c.state(), ConnectionState::Closing);
        }
        assert_eq!(c.error(), self.error.as_ref());
        if c.should_close_transport() {
            assert_eq!(c.state(), ConnectionState::Closed);
            if c.pending_output() > 0 {
                let timeout = self.config.close_timeout.as_millis() as u64;
                assert!(
                    self.abrupt || self.ended_at.is_some_and(|t| self.now >= t + timeout),
                    "transport to be closed with {} bytes not written",
                    c.pending_output()
                );
            }
        }
        assert_eq!(c.wants_write(), c.pending_output() > 0);
        assert!(c.buffered_message() <= self.config.limits.max_message);
    }

    fn transmit(&mut self, max: usize) {
        let mut n = 0;
        while max == 0 || n < max {
            let before = self.conn.pending_output();
            let had_close = self.wire.close.is_some();
            let Some(chunk) = self.conn.poll_transmit() else {
                assert_eq!(before, 0, "poll_transmit is None with bytes pending");
                assert!(!self.conn.wants_write());
                break;
            };
            n += 1;
            assert!(!chunk.is_empty(), "empty chunk");
            self.wire.feed(&chunk);
            let after = self.conn.pending_output();
            if !had_close && self.wire.close.is_some() {
                // everything but pending pongs (at most 16, the latest;
                // §5.5.2: pings are answered until the peer's close) is
                // dropped with the close
                assert!(
                    after <= 16 * (2 + 4 + 125),
                    "{after} bytes still queued after the close"
                );
            } else {
                assert_eq!(after + chunk.len(), before, "pending_output accounting");
            }
        }
        self.check_state();
    }

    /// One partial write in place: show the output (`peek_transmit`, or
    /// `transmit_slices` into `slots % 8` slots), "write" the first `limit`
    /// bytes of it, `advance_transmit` by that.
    fn write(&mut self, slots: u8, limit: usize) {
        let before = self.conn.pending_output();
        let had_close = self.wire.close.is_some();
        let mut written = Vec::new();
        let k = (slots % 9) as usize;
        if k == 0 {
            let Some(b) = self.conn.peek_transmit() else {
                assert_eq!(before, 0, "peek_transmit is None with bytes pending");
                return;
            };
            assert!(!b.is_empty(), "peek_transmit shows an empty chunk");
            assert!(b.len() <= before, "peek shows more than is pending");
            written.extend_from_slice(&b[..limit.min(b.len())]);
        } else {
            let mut bufs = [IoSlice::new(&[]); 8];
            let filled = self.conn.transmit_slices(&mut bufs[..k]);
            assert!(filled <= k);
            if filled == 0 {
                assert_eq!(before, 0, "transmit_slices is empty with bytes pending");
                return;
            }
            let total: usize = bufs[..filled].iter().map(|b| b.len()).sum();
            assert!(total <= before, "slices show more than is pending");
            // a short vectored write: the first `limit` bytes across them
            let mut left = limit.min(total);
            for b in &bufs[..filled] {
                assert!(!b.is_empty(), "an empty slice");
                let t = left.min(b.len());
                written.extend_from_slice(&b[..t]);
                left -= t;
            }
        }
        let n = written.len();
        self.conn.advance_transmit(n);
        self.wire.feed(&written);
        let after = self.conn.pending_output();
        if !had_close && self.wire.close.is_some() {
            // completing the close frame drops a keepalive ping not yet sent
            // (2 + 4 + 8 bytes at most), nothing else
            assert!(after <= before - n, "pending_output grew");
            assert!(
                before - n - after <= 14,
                "{} bytes dropped with the close frame",
                before - n - after
            );
        } else {
            assert_eq!(after, before - n, "advance_transmit({n}) accounting");
        }
        self.check_state();
    }

    fn timers(&mut self) {
        let now = Instant::from_millis(self.now);
        for _ in 0..4 {
            match self.conn.poll_timeout(now) {
                Some(d) if d <= now => {
                    self.conn.handle_timeout(now);
                    self.drain_events();
                }
                _ => break,
            }
        }
        let next = self.conn.poll_timeout(now);
        assert!(
            next.is_none_or(|d| d > now),
            "deadline {next:?} still due at {now:?} after handle_timeout"
        );
        if self.conn.state() == ConnectionState::Closed && next.is_none() {
            assert!(
                self.conn.should_close_transport(),
                "closed, no timer running, but the transport is kept open"
            );
        }
    }

    fn send(&mut self, m: Message) {
        let (open, busy, full) = (
            self.open(),
            self.sending.is_some(),
            self.queue_full(m.len()),
        );
        let r = self.conn.send(m.clone());
        match r {
            Ok(()) => {
                assert!(
                    open && !busy && !full,
                    "send accepted: {open} {busy} {full}"
                );
                self.sent
                    .push((m.kind() == MessageKind::Text, m.as_bytes().to_vec()));
            }
            Err(e) => {
                assert_eq!(e.value, m, "refused value changed");
                match e.error {
                    Error::Misuse(ApiMisuse::NotOpen) => assert!(!open),
                    Error::Misuse(ApiMisuse::MessageInProgress) => assert!(busy),
                    Error::Capacity(CapacityError::OutboundQueueFull { .. }) => assert!(full),
                    other => panic!("send refused with {other:?}"),
                }
            }
        }
    }

    fn send_fragment(&mut self, kind: MessageKind, data: Vec<u8>, fin: bool) {
        let open = self.open();
        let mismatch = self.sending.as_ref().is_some_and(|(k, _)| *k != kind);
        let full = self.queue_full(data.len());
        let bad_utf8 = kind == MessageKind::Text && {
            let mut all = match &self.sending {
                Some((_, b)) => b.clone(),
                None => Vec::new(),
            };
            all.extend_from_slice(&data);
            match std::str::from_utf8(&all) {
                Ok(_) => false,
                Err(e) => fin || e.error_len().is_some(),
            }
        };
        let value = Bytes::from(data.clone());
        match self.conn.send_fragment(kind, value.clone(), fin) {
            Ok(()) => {
                assert!(open && !mismatch && !full && !bad_utf8);
                let (_, buf) = self.sending.get_or_insert((kind, Vec::new()));
                buf.extend_from_slice(&data);
                if fin {
                    let (k, buf) = self.sending.take().expect("in progress");
                    self.sent.push((k == MessageKind::Text, buf));
                }
            }
            Err(e) => {
                assert_eq!(e.value, value);
                match e.error {
                    Error::Misuse(ApiMisuse::NotOpen) => assert!(!open),
                    Error::Misuse(ApiMisuse::FragmentKindMismatch) => assert!(mismatch),
                    Error::Capacity(CapacityError::OutboundQueueFull { .. }) => assert!(full),
                    Error::Misuse(ApiMisuse::InvalidUtf8) => assert!(bad_utf8),
                    other => panic!("send_fragment refused with {other:?}"),
                }
            }
        }
    }

    fn control(&mut self, ping: bool, p: Vec<u8>) {
        let open = self.open();
        let value = Bytes::from(p);
        let r = if ping {
            self.conn.ping(value.clone())
        } else {
            self.conn.pong(value.clone())
        };
        // A pong is also allowed while our close awaits its reply (§5.5.2);
        // a ping is not.
        let closing = self.local_close && !self.closed_event && self.error.is_none();
        match r {
            Ok(()) => assert!((open || (!ping && closing)) && value.len() <= 125),
            Err(e) => {
                assert_eq!(e.value, value);
                match e.error {
                    Error::Misuse(ApiMisuse::NotOpen) => assert!(!open),
                    Error::Misuse(ApiMisuse::ControlPayloadTooLong) => assert!(value.len() > 125),
                    other => panic!("ping/pong refused with {other:?}"),
                }
            }
        }
    }

    fn close(&mut self, spec: Option<(u8, String)>) {
        let open = self.open();
        let frame = spec.map(|(c, r)| CloseFrame::new(CloseCode(code(c)), r));
        let r = self.conn.close(frame.clone());
        match r {
            Ok(()) => {
                assert!(open);
                if let Some(f) = &frame {
                    assert!(f.code.is_sendable() && f.reason.len() <= 123);
                }
                self.local_close = true;
                self.close_is_ours = true;
                self.ended_at.get_or_insert(self.now);
                self.sending = None;
                assert!(self.owed_close.is_none());
                self.owed_close = Some(frame.map(|f| f.code.0));
            }
            Err(e) => {
                assert_eq!(e.value, frame);
                match e.error {
                    Error::Misuse(ApiMisuse::NotOpen) => assert!(!open),
                    Error::Misuse(ApiMisuse::InvalidCloseCode(c)) => {
                        assert!(!CloseCode(c).is_sendable())
                    }
                    Error::Misuse(ApiMisuse::CloseReasonTooLong) => {
                        assert!(frame.is_some_and(|f| f.reason.len() > 123))
                    }
                    other => panic!("close refused with {other:?}"),
                }
            }
        }
        self.check_state();
    }

    fn finish(mut self) {
        self.transmit(0);
        assert!(self.wire.at_frame_boundary(), "output stops inside a frame");
        match (&self.owed_close, &self.wire.close) {
            (None, None) => {}
            (Some(want), Some(got)) => {
                assert_eq!(
                    *want,
                    got.as_ref().map(|f| f.code.0),
                    "close code on the wire"
                );
            }
            (want, got) => panic!("close frame owed: {want:?}, written: {got:?}"),
        }
        if !self.close_is_ours {
            assert_eq!(
                self.wire.pongs_after_close, 0,
                "pong after a final close frame"
            );
        }
        let got = &self.wire.messages;
        assert!(got.len() <= self.sent.len());
        assert_eq!(got[..], self.sent[..got.len()], "messages on the wire");
        if self.error.is_none() {
            assert_eq!(got.len(), self.sent.len(), "a sent message never went out");
        }
    }
}

fuzz_target!(|input: Input| {
    let config = input.cfg.config();
    let conn = match input.role {
        Role::Client => {
            Connection::client_with_masks(config.clone(), counter_masks(input.mask_seed))
        }
        Role::Server => Connection::server(config.clone()),
    };
    let mut d = Driver {
        conn,
        role: input.role,
        config,
        now: 0,
        closed_event: false,
        error: None,
        eof: false,
        local_close: false,
        owed_close: None,
        close_is_ours: false,
        sending: None,
        sent: Vec::new(),
        receiving: None,
        wire: WireChecker::new(input.role),
        ended_at: None,
        abrupt: false,
        // from the seed, so the corpus keeps its meaning
        readers: input.mask_seed.rotate_left(13),
        polls: 0,
    };
    d.conn.poll_timeout(Instant::from_millis(0));
    for op in input.ops {
        match op {
            Op::Frame(f) => {
                let wire = build_frame(d.role, &f);
                match f.split {
                    Some(s) => {
                        let cut = wire.len() * s as usize / 256;
                        d.receive(&wire[..cut]);
                        d.receive(&wire[cut..]);
                    }
                    None => d.receive(&wire),
                }
            }
            Op::Batch(frames) => {
                let wire: Vec<u8> = frames.iter().flat_map(|f| build_frame(d.role, f)).collect();
                d.receive(&wire);
            }
            Op::Raw(bytes) => d.receive(&bytes),
            Op::Send(m) => d.send(m),
            Op::SendBig(kind, p) => {
                let bytes = payload_bytes(&p);
                d.send(match kind {
                    MessageKind::Text => match String::from_utf8(bytes) {
                        Ok(s) => Message::text(s),
                        Err(e) => Message::binary(e.into_bytes()),
                    },
                    MessageKind::Binary => Message::binary(bytes),
                })
            }
            Op::SendFragment { kind, data, fin } => {
                let bytes = payload_bytes(&data);
                d.send_fragment(kind, bytes, fin)
            }
            Op::Ping(p) => d.control(true, p),
            Op::Pong(p) => d.control(false, p),
            Op::Close(spec) => d.close(spec),
            Op::Advance(ms) => {
                d.now += ms as u64;
                d.conn.handle_timeout(Instant::from_millis(d.now));
                d.drain_events();
            }
            Op::AdvanceToDeadline => {
                if let Some(t) = d.conn.poll_timeout(Instant::from_millis(d.now)) {
                    d.now = d.now.max(t.as_duration().as_millis() as u64);
                    d.conn.handle_timeout(Instant::from_millis(d.now));
                    d.drain_events();
                }
            }
            Op::Eof => {
                let live = !d.closed_event && d.error.is_none();
                d.eof = true;
                d.conn.receive_eof();
                d.drain_events();
                if live {
                    assert!(d.closed_event || d.error.is_some(), "EOF did not end it");
                }
            }
            Op::Transmit(n) => d.transmit(n as usize),
            Op::Write { slots, limit } => d.write(slots, limit as usize),
        }
        d.timers();
        d.check_state();
    }
    d.finish();
});
