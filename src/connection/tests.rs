//! A client↔server pair simulator, and scenario tests that drive two
//! [`Connection`]s against each other through it.
//!
//! The simulator is the driver of both ends (the documented call order:
//! input → events → output → transport decision → next deadline) and the
//! network between them: two one-way wires whose delivery each test
//! controls (chunk sizes, bytes held back, writes blocked, the transport cut).
//! Time is a fake clock that moves only in [`Sim::advance`], which wakes the
//! ends at their exact deadlines the way an event loop would, so a test can
//! assert that something happened *exactly* at a deadline and not before.
//!
//! Tests assert what an application and a packet capture would see: the
//! events each side reported (with the time they were reported), the frames
//! that crossed each wire, who closed the transport and when. The simulator
//! also checks, on every step, invariants that hold in any scenario:
//! nothing is reported after the end, errors are sticky, text fragments are
//! valid UTF-8 on their own, `should_close_transport` never goes back to
//! `false`, a well-behaved side never puts a frame after its close frame or a
//! frame its peer would reject.

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec;
use alloc::vec::Vec;
use core::time::Duration;

use bytes::{Bytes, BytesMut};

use super::state::{End, State};
use super::{CloseReason, Connection, ConnectionState, Event, Initiator, Timeout};
use crate::error::{ApiMisuse, CapacityError, Error, ProtocolError, SendError};
use crate::frame::{encode_frame, CloseFrame, FrameDecoder, FrameHeader, OpCode};
use crate::mask::MaskSource;
use crate::message::{Message, MessageKind};
use crate::{Config, Instant, Role};

// ============================================================================
// The simulator
// ============================================================================

/// Start of simulated time. Not zero, so that an accidental "time since the
/// epoch" computation cannot pass for a correct deadline.
const T0: Instant = Instant::from_duration(Duration::from_secs(1_000));

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// One end of the pair. A wire is named after the side that writes to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Client,
    Server,
}

use Side::{Client, Server};

impl Side {
    fn idx(self) -> usize {
        self as usize
    }

    fn peer(self) -> Side {
        match self {
            Client => Server,
            Server => Client,
        }
    }
}

/// How a wire cuts the byte stream into `receive` calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunking {
    /// Everything in flight at once (several frames per `receive`).
    Whole,
    /// Chunks of this many bytes.
    Fixed(usize),
    /// Chunks of 1..=17 bytes drawn from this seed.
    Seeded(u64),
}

/// The splittings every split-sensitive scenario runs under. The crate
/// promises "any split of the same byte stream yields the same events".
const SPLITS: [Chunking; 4] = [
    Chunking::Whole,
    Chunking::Fixed(1),
    Chunking::Fixed(3),
    Chunking::Seeded(0x9e37_79b9_7f4a_7c15),
];

fn xorshift(mut x: u64) -> u64 {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    x
}

/// Deterministic masking keys: a failing run can be replayed byte for byte.
fn test_masks(seed: u64) -> Box<dyn MaskSource> {
    let mut state = seed | 1;
    Box::new(move |buf: &mut [u8]| {
        for b in buf.iter_mut() {
            state = xorshift(state);
            *b = (state >> 24) as u8;
        }
    })
}

/// A frame as a packet capture of one wire shows it (payload unmasked).
#[derive(Debug, Clone)]
struct WireFrame {
    at: Instant,
    opcode: OpCode,
    fin: bool,
    payload: Bytes,
}

/// One direction of the transport.
struct Wire {
    chunking: Chunking,
    rng: u64,
    /// Written by the sender, not yet delivered.
    in_flight: VecDeque<u8>,
    /// `None`: deliver freely. `Some(n)`: at most `n` more bytes, and no EOF
    /// (`Some(0)` holds everything back: a slow or stalled network).
    budget: Option<usize>,
    /// The sender's socket is not writable: its connection keeps its output.
    write_blocked: bool,
    /// The sender's socket takes this many more chunks, then blocks (a driver
    /// that stops polling in the middle of its queue, even mid-frame).
    chunk_quota: Option<usize>,
    /// The sender's side of the transport is gone (closed or cut): EOF once
    /// `in_flight` is delivered, and later writes go nowhere.
    fin: bool,
    eof_delivered: bool,
    /// Raw bytes were injected: the wire no longer carries only what a
    /// well-behaved connection wrote, so its invariants are not checked.
    injected: bool,
    /// Decodes the transcript as the receiver's role would.
    spy: FrameDecoder,
    spy_buf: BytesMut,
    spy_broken: bool,
    close_seen: bool,
    frames: Vec<WireFrame>,
}

impl Wire {
    fn new(receiver: Role, chunking: Chunking, salt: u64) -> Self {
        let seed = match chunking {
            Chunking::Seeded(s) => s,
            _ => 1,
        };
        Wire {
            chunking,
            rng: (seed ^ salt.wrapping_mul(0x2545_f491_4f6c_dd1d)) | 1,
            in_flight: VecDeque::new(),
            budget: None,
            write_blocked: false,
            chunk_quota: None,
            fin: false,
            eof_delivered: false,
            injected: false,
            spy: FrameDecoder::new(receiver, usize::MAX),
            spy_buf: BytesMut::new(),
            spy_broken: false,
            close_seen: false,
            frames: Vec::new(),
        }
    }

    fn next_chunk_len(&mut self) -> usize {
        match self.chunking {
            Chunking::Whole => usize::MAX,
            Chunking::Fixed(n) => n.max(1),
            Chunking::Seeded(_) => {
                self.rng = xorshift(self.rng);
                1 + (self.rng % 17) as usize
            }
        }
    }

    fn write(&mut self, now: Instant, data: &[u8]) {
        if self.fin {
            return;
        }
        self.in_flight.extend(data.iter().copied());
        self.record(now, data);
    }

    fn record(&mut self, now: Instant, data: &[u8]) {
        if self.spy_broken {
            return;
        }
        self.spy_buf.extend_from_slice(data);
        loop {
            match self.spy.decode(&mut self.spy_buf) {
                Ok(Some(f)) => {
                    // §5.5.1: no data after a close frame; §5.5.2: a pong
                    // still answers a ping that crossed it
                    assert!(
                        self.injected || !self.close_seen || f.header.opcode == OpCode::Pong,
                        "a frame ({:?}) followed the close frame (RFC 6455 §5.5.1)",
                        f.header.opcode
                    );
                    self.close_seen |= f.header.opcode == OpCode::Close;
                    self.frames.push(WireFrame {
                        at: now,
                        opcode: f.header.opcode,
                        fin: f.header.fin,
                        payload: f.payload,
                    });
                }
                Ok(None) => return,
                Err(e) => {
                    assert!(self.injected, "the peer would reject this wire: {e:?}");
                    self.spy_broken = true;
                    return;
                }
            }
        }
    }
}

/// One end: its connection, what it reported, and its transport.
struct Endpoint {
    side: Side,
    conn: Connection,
    events: Vec<(Instant, Event)>,
    error: Option<(Instant, Error)>,
    /// `Event::Closed` or the first `Err` was reported.
    ended: bool,
    should_close_seen: bool,
    /// Whether the driver obeys `should_close_transport` (a test can play a
    /// server that never closes TCP).
    honours_close: bool,
    transport_closed: Option<Instant>,
    deadline: Option<Instant>,
    /// Hand input over through `input_buffer()` instead of `receive()`.
    reads_into_buffer: bool,
}

impl Endpoint {
    fn new(side: Side, conn: Connection) -> Self {
        Endpoint {
            side,
            conn,
            events: Vec::new(),
            error: None,
            ended: false,
            should_close_seen: false,
            honours_close: true,
            transport_closed: None,
            deadline: None,
            reads_into_buffer: false,
        }
    }

    /// `poll_event` until `None`, checking what may be reported when.
    fn drain_events(&mut self, now: Instant) {
        let side = self.side;
        loop {
            match self.conn.poll_event() {
                Ok(Some(ev)) => {
                    assert!(!self.ended, "{side:?}: {ev:?} reported after the end");
                    if let Event::Fragment {
                        kind: MessageKind::Text,
                        data,
                        ..
                    } = &ev
                    {
                        assert!(
                            core::str::from_utf8(data).is_ok(),
                            "{side:?}: text fragment {data:?} is not UTF-8 on its own"
                        );
                    }
                    if let Event::Closed(_) = ev {
                        self.ended = true;
                        assert!(matches!(self.conn.state, State::Closed(_)));
                        assert_eq!(self.conn.state(), ConnectionState::Closed);
                    }
                    self.events.push((now, ev));
                }
                Ok(None) => return,
                Err(e) => {
                    match &self.error {
                        Some((_, first)) => assert_eq!(&e, first, "{side:?}: errors are sticky"),
                        None => {
                            assert!(!self.ended, "{side:?}: error {e:?} after the end");
                            assert_eq!(self.conn.state, State::Closed(End::Failed));
                            assert_eq!(self.conn.error(), Some(&e));
                            self.ended = true;
                            self.error = Some((now, e));
                        }
                    }
                    return;
                }
            }
        }
    }
}

/// Two connections, two wires, one clock.
struct Sim {
    now: Instant,
    ends: [Endpoint; 2],
    /// Indexed by the writing side.
    wires: [Wire; 2],
    /// Sides in the order their transports closed.
    transport_closes: Vec<Side>,
}

impl Sim {
    fn new(chunking: Chunking) -> Self {
        Self::with(Config::default(), Config::default(), chunking)
    }

    fn with(client: Config, server: Config, chunking: Chunking) -> Self {
        let mut sim = Sim {
            now: T0,
            ends: [
                Endpoint::new(
                    Client,
                    Connection::client_with_masks(client, test_masks(0x5eed)),
                ),
                Endpoint::new(Server, Connection::server(server)),
            ],
            wires: [
                Wire::new(Role::Server, chunking, 1),
                Wire::new(Role::Client, chunking, 2),
            ],
            transport_closes: Vec::new(),
        };
        // The first poll_timeout starts the timers: "connected at T0".
        sim.run();
        sim
    }

    // ---------------------------------------------------------------- driving

    /// Everything a driver does for one side after something happened to it.
    /// Returns whether anything observable changed on the network.
    fn service(&mut self, side: Side) -> bool {
        let now = self.now;
        let end = &mut self.ends[side.idx()];
        if end.transport_closed.is_some() {
            // A driver drops the connection with its transport.
            return false;
        }
        end.drain_events(now);
        let wire = &mut self.wires[side.idx()];
        let mut progressed = false;
        while !wire.write_blocked && wire.chunk_quota != Some(0) {
            let Some(chunk) = end.conn.poll_transmit() else {
                break;
            };
            assert!(
                !chunk.is_empty(),
                "{side:?}: empty chunk from poll_transmit"
            );
            wire.write(now, &chunk);
            if let Some(q) = &mut wire.chunk_quota {
                *q -= 1;
            }
            progressed = true;
        }
        end.deadline = end.conn.poll_timeout(now);
        let done = end.conn.should_close_transport();
        assert!(
            done || !end.should_close_seen,
            "{side:?}: should_close_transport went back to false"
        );
        end.should_close_seen = done;
        if done && end.honours_close {
            end.transport_closed = Some(now);
            wire.fin = true;
            self.transport_closes.push(side);
            // Our socket is gone: what the peer still sends us is lost.
            self.wires[side.peer().idx()].in_flight.clear();
            progressed = true;
        }
        progressed
    }

    /// Deliver the next chunk (or the EOF) of the wire written by `from`.
    fn deliver(&mut self, from: Side) -> bool {
        let to = from.peer();
        let wire = &mut self.wires[from.idx()];
        if self.ends[to.idx()].transport_closed.is_some() {
            wire.in_flight.clear();
            return false;
        }
        let receiver = &mut self.ends[to.idx()];
        if !wire.in_flight.is_empty() && wire.budget != Some(0) {
            let mut n = wire.next_chunk_len().min(wire.in_flight.len());
            if let Some(b) = &mut wire.budget {
                n = n.min(*b);
                *b -= n;
            }
            let chunk: Vec<u8> = wire.in_flight.drain(..n).collect();
            if receiver.reads_into_buffer {
                receiver.conn.input_buffer().extend_from_slice(&chunk);
            } else {
                receiver.conn.receive(&chunk);
            }
        } else if wire.in_flight.is_empty()
            && wire.fin
            && !wire.eof_delivered
            && wire.budget.is_none()
        {
            wire.eof_delivered = true;
            receiver.conn.receive_eof();
        } else {
            return false;
        }
        self.service(to);
        true
    }

    /// Let both ends and the network run until nothing moves (time stands
    /// still). Call after issuing commands.
    fn run(&mut self) {
        for _ in 0..2_000_000 {
            let mut progressed = false;
            for s in [Client, Server] {
                progressed |= self.service(s);
            }
            for s in [Client, Server] {
                progressed |= self.deliver(s);
            }
            if !progressed {
                return;
            }
        }
        panic!("the pair never went quiet");
    }

    /// Move the clock forward by `d`, waking each end at every deadline it
    /// reported on the way (as an event loop sleeping on `poll_timeout`
    /// would), then at the target time.
    fn advance(&mut self, d: Duration) {
        self.run();
        let target = self.now + d;
        for _ in 0..10_000 {
            let due = self
                .ends
                .iter()
                .filter(|e| e.transport_closed.is_none())
                .filter_map(|e| e.deadline)
                .filter(|t| *t <= target)
                .min();
            match due {
                Some(t) => {
                    self.now = self.now.max(t);
                    self.fire();
                }
                None => {
                    self.now = target;
                    self.fire();
                    return;
                }
            }
        }
        panic!("timers keep firing at {:?}", self.now);
    }

    fn fire(&mut self) {
        for s in [Client, Server] {
            let end = &mut self.ends[s.idx()];
            if end.transport_closed.is_none() {
                end.conn.handle_timeout(self.now);
            }
            self.service(s);
        }
        self.run();
    }

    // ----------------------------------------------------- network controls

    /// Hold back everything `from` writes (it stays in flight).
    fn hold(&mut self, from: Side) {
        self.wires[from.idx()].budget = Some(0);
    }

    /// Deliver freely again (including a pending EOF).
    fn release(&mut self, from: Side) {
        self.wires[from.idx()].budget = None;
        self.run();
    }

    /// Deliver `n` more bytes, then hold again (no EOF).
    fn release_bytes(&mut self, from: Side, n: usize) {
        let w = &mut self.wires[from.idx()];
        w.budget = Some(w.budget.unwrap_or(0) + n);
        self.run();
    }

    /// `from`'s socket stops being writable.
    fn block_writes(&mut self, from: Side) {
        self.wires[from.idx()].write_blocked = true;
    }

    fn unblock_writes(&mut self, from: Side) {
        let w = &mut self.wires[from.idx()];
        w.write_blocked = false;
        w.chunk_quota = None;
        self.run();
    }

    /// `from`'s socket takes `n` more chunks, then blocks.
    fn allow_chunks(&mut self, from: Side, n: usize) {
        let w = &mut self.wires[from.idx()];
        w.write_blocked = false;
        w.chunk_quota = Some(n);
        self.run();
    }

    /// The transport from `from` breaks: bytes in flight are lost, the
    /// receiver sees EOF, and later writes go nowhere.
    fn cut(&mut self, from: Side) {
        let w = &mut self.wires[from.idx()];
        w.in_flight.clear();
        w.fin = true;
        w.budget = None;
        self.run();
    }

    /// `side`'s application drops its socket without a close handshake (the
    /// bytes already written are still delivered, then EOF).
    fn drop_transport(&mut self, side: Side) {
        self.ends[side.idx()].transport_closed = Some(self.now);
        self.wires[side.idx()].fin = true;
        self.transport_closes.push(side);
        self.run();
    }

    /// Put raw bytes on the wire as if `from` had written them (a buggy or
    /// hostile peer).
    fn inject(&mut self, from: Side, bytes: &[u8]) {
        let now = self.now;
        let w = &mut self.wires[from.idx()];
        w.injected = true;
        w.write(now, bytes);
        self.run();
    }

    /// Drive `side`'s input through `input_buffer()` (read straight into the
    /// connection's buffer) instead of `receive()`.
    fn read_into_buffer(&mut self, side: Side) {
        self.ends[side.idx()].reads_into_buffer = true;
    }

    /// Play a driver for `side` that never closes its transport on its own.
    fn ignore_should_close(&mut self, side: Side) {
        self.ends[side.idx()].honours_close = false;
    }

    // ------------------------------------------------------------ observing

    fn conn(&mut self, side: Side) -> &mut Connection {
        &mut self.ends[side.idx()].conn
    }

    fn client(&mut self) -> &mut Connection {
        self.conn(Client)
    }

    fn server(&mut self) -> &mut Connection {
        self.conn(Server)
    }

    fn events(&self, side: Side) -> Vec<Event> {
        self.ends[side.idx()]
            .events
            .iter()
            .map(|(_, e)| e.clone())
            .collect()
    }

    fn timed_events(&self, side: Side) -> &[(Instant, Event)] {
        &self.ends[side.idx()].events
    }

    fn error(&self, side: Side) -> Option<&Error> {
        self.ends[side.idx()].error.as_ref().map(|(_, e)| e)
    }

    /// When `side` reported its end (`Closed` or the first error).
    fn ended_at(&self, side: Side) -> Option<Instant> {
        let end = &self.ends[side.idx()];
        end.events
            .iter()
            .find(|(_, e)| matches!(e, Event::Closed(_)))
            .map(|(t, _)| *t)
            .or(end.error.as_ref().map(|(t, _)| *t))
    }

    fn deadline(&self, side: Side) -> Option<Instant> {
        self.ends[side.idx()].deadline
    }

    fn transport_closed(&self, side: Side) -> Option<Instant> {
        self.ends[side.idx()].transport_closed
    }

    fn frames(&self, from: Side) -> &[WireFrame] {
        &self.wires[from.idx()].frames
    }

    /// Opcode and FIN of every frame `from` put on the wire.
    fn shape(&self, from: Side) -> Vec<(OpCode, bool)> {
        self.frames(from)
            .iter()
            .map(|f| (f.opcode, f.fin))
            .collect()
    }

    fn frames_of(&self, from: Side, opcode: OpCode) -> Vec<WireFrame> {
        self.frames(from)
            .iter()
            .filter(|f| f.opcode == opcode)
            .cloned()
            .collect()
    }

    /// The close frames `from` put on the wire, parsed.
    fn close_frames(&self, from: Side) -> Vec<Option<CloseFrame>> {
        self.frames_of(from, OpCode::Close)
            .iter()
            .map(|f| CloseFrame::parse(&f.payload).expect("a valid close payload"))
            .collect()
    }

    /// Every scenario: each side reported its end exactly once (one
    /// `Closed`, or one sticky error), and `Closed` was its last event.
    fn assert_ended_once(&self) {
        self.assert_side_ended_once(Client);
        self.assert_side_ended_once(Server);
    }

    /// For a side whose peer abandoned the connection (`drop_transport`),
    /// which therefore reports nothing itself.
    fn assert_side_ended_once(&self, side: Side) {
        let end = &self.ends[side.idx()];
        let closed = end
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::Closed(_)))
            .count();
        let failed = usize::from(end.error.is_some());
        assert_eq!(
            closed + failed,
            1,
            "{side:?} must end exactly once; events {:?}, error {:?}",
            end.events,
            end.error
        );
        if closed == 1 {
            assert!(matches!(end.events.last(), Some((_, Event::Closed(_)))));
        }
    }

    /// Close an open pair cleanly from the client, then check the end-of-
    /// scenario invariants.
    fn finish(&mut self) {
        if self.client().is_open() {
            self.client().close(None).unwrap();
            self.run();
        }
        self.assert_ended_once();
    }
}

// ---------------------------------------------------------------- helpers

fn config(edit: impl FnOnce(&mut Config)) -> Config {
    let mut c = Config::default();
    edit(&mut c);
    c
}

fn keepalive(interval: Duration, timeout: Duration) -> Config {
    config(|c| {
        c.keepalive_interval = Some(interval);
        c.keepalive_timeout = timeout;
    })
}

fn cf(code: u16, reason: &str) -> CloseFrame {
    CloseFrame::new(code, reason)
}

fn clean(initiator: Initiator, peer_frame: Option<CloseFrame>) -> Event {
    Event::Closed(CloseReason::Clean {
        initiator,
        peer_frame,
    })
}

fn bytes(b: &'static [u8]) -> Bytes {
    Bytes::from_static(b)
}

fn frag(kind: MessageKind, data: &[u8], fin: bool) -> Event {
    Event::Fragment {
        kind,
        data: Bytes::copy_from_slice(data),
        fin,
    }
}

fn pattern(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i * 31 % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Streaming mode reports whatever arrived, so how fragments are cut depends
/// on the split; their concatenation per message does not. Merge runs of
/// fragments so events can be compared across splits.
fn coalesce(events: &[Event]) -> Vec<Event> {
    let mut out = Vec::new();
    let mut pending: Option<(MessageKind, Vec<u8>)> = None;
    for ev in events {
        match ev {
            Event::Fragment { kind, data, fin } => {
                let (k, buf) = pending.get_or_insert_with(|| (*kind, Vec::new()));
                assert_eq!(k, kind, "the kind changed within a message");
                buf.extend_from_slice(data);
                if *fin {
                    let (kind, buf) = pending.take().unwrap();
                    out.push(frag(kind, &buf, true));
                }
            }
            other => {
                if let Some((kind, buf)) = pending.take() {
                    out.push(frag(kind, &buf, false));
                }
                out.push(other.clone());
            }
        }
    }
    if let Some((kind, buf)) = pending {
        out.push(frag(kind, &buf, false));
    }
    out
}

/// What a receiver should report for `messages` in either mode.
fn data_events(messages: &[Message], streaming: bool) -> Vec<Event> {
    messages
        .iter()
        .map(|m| {
            if streaming {
                frag(m.kind(), m.as_bytes(), true)
            } else {
                Event::Message(m.clone())
            }
        })
        .collect()
}

/// An unmasked frame, as a server writes it.
fn server_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    raw_frame(opcode, fin, None, payload)
}

/// A masked frame, as a client writes it.
fn client_frame(opcode: OpCode, fin: bool, payload: &[u8]) -> Vec<u8> {
    raw_frame(opcode, fin, Some([0xA5, 0x5A, 0x12, 0x34]), payload)
}

fn raw_frame(opcode: OpCode, fin: bool, mask: Option<[u8; 4]>, payload: &[u8]) -> Vec<u8> {
    let mut h = FrameHeader::new(opcode, 0);
    h.fin = fin;
    h.mask = mask;
    let mut out = BytesMut::new();
    encode_frame(&mut out, &h, payload);
    out.to_vec()
}

fn assert_not_open<T: core::fmt::Debug + PartialEq>(r: Result<(), SendError<T>>, value: T) {
    let e = r.expect_err("a command after the close must be refused");
    assert_eq!(e.error, Error::Misuse(ApiMisuse::NotOpen));
    assert_eq!(e.value, value, "the refused value comes back");
}

/// Every command refuses with `NotOpen` and gives the value back.
fn assert_all_commands_refused(conn: &mut Connection) {
    assert_not_open(conn.send(Message::text("late")), Message::text("late"));
    assert_not_open(
        conn.send_fragment(MessageKind::Binary, bytes(b"x"), true),
        bytes(b"x"),
    );
    assert_not_open(conn.ping(bytes(b"p")), bytes(b"p"));
    // a pong may still answer a ping while our close awaits its reply
    // (§5.5.2); once closed, nothing goes out
    if conn.state() == ConnectionState::Closed {
        assert_not_open(conn.pong(bytes(b"q")), bytes(b"q"));
    }
    assert_not_open(conn.close(Some(cf(1000, ""))), Some(cf(1000, "")));
}

// ============================================================================
// The simulator itself
// ============================================================================

mod simulator {
    use super::*;

    #[test]
    fn chunk_patterns_cut_the_stream_as_asked() {
        let mut w = Wire::new(Role::Server, Chunking::Fixed(3), 1);
        assert_eq!(w.next_chunk_len(), 3);
        let mut w = Wire::new(Role::Server, Chunking::Seeded(42), 1);
        let sizes: Vec<usize> = (0..200).map(|_| w.next_chunk_len()).collect();
        assert!(sizes.iter().all(|n| (1..=17).contains(n)));
        assert!(sizes.contains(&1) && sizes.iter().any(|n| *n > 8));
    }

    #[test]
    fn held_bytes_are_delivered_on_release_and_budget_excludes_eof() {
        let mut sim = Sim::new(Chunking::Whole);
        sim.hold(Client);
        sim.client().send(Message::text("abc")).unwrap();
        sim.run();
        assert!(sim.events(Server).is_empty());
        assert_eq!(sim.shape(Client), [(OpCode::Text, true)]);
        sim.drop_transport(Client);
        // the frame is 2 + 4 + 3 bytes; one short of it delivers nothing
        sim.release_bytes(Client, 8);
        assert!(sim.events(Server).is_empty());
        sim.release_bytes(Client, 1);
        assert_eq!(sim.events(Server), [Event::Message(Message::text("abc"))]);
        sim.release(Client);
        assert_eq!(
            sim.events(Server),
            [
                Event::Message(Message::text("abc")),
                Event::Closed(CloseReason::Abnormal)
            ]
        );
    }

    #[test]
    fn advance_wakes_at_each_deadline_not_just_at_the_target() {
        // One big jump must still see the ping at +30 s and the timeout at
        // +40 s, each at its own time.
        let mut sim = Sim::with(
            keepalive(secs(30), secs(10)),
            Config::default(),
            Chunking::Whole,
        );
        sim.hold(Server);
        sim.advance(secs(3600));
        let pings = sim.frames_of(Client, OpCode::Ping);
        assert_eq!(pings.len(), 1);
        assert_eq!(pings[0].at, T0 + secs(30));
        assert_eq!(sim.ended_at(Client), Some(T0 + secs(40)));
    }
}

// ============================================================================
// Messages, fragments, ping/pong
// ============================================================================

mod messages {
    use super::*;

    fn samples() -> Vec<Message> {
        vec![
            Message::text(""),
            Message::text("hello"),
            Message::text("héllo wörld — ✓ 𝄞"),
            Message::binary(Bytes::new()),
            Message::binary(pattern(125)),
            // 16-bit length
            Message::binary(pattern(126)),
            // above the 256-byte coalescing threshold: header and payload are
            // separate chunks on the server side
            Message::binary(pattern(300)),
            // 64-bit length, multi-byte code points straddling every chunk
            Message::text("é€𝄞".repeat(7_000).as_str()),
        ]
    }

    #[test]
    fn messages_flow_both_ways_in_both_modes_under_every_split() {
        let messages = samples();
        for streaming in [false, true] {
            for split in SPLITS {
                let cfg = config(|c| c.streaming = streaming);
                let mut sim = Sim::with(cfg.clone(), cfg, split);
                for m in &messages {
                    sim.client().send(m.clone()).unwrap();
                    sim.server().send(m.clone()).unwrap();
                }
                sim.run();
                let want = data_events(&messages, streaming);
                let label = (streaming, split);
                assert_eq!(coalesce(&sim.events(Server)), want, "server {label:?}");
                assert_eq!(coalesce(&sim.events(Client)), want, "client {label:?}");
                sim.finish();
            }
        }
    }

    #[test]
    fn fragmented_sends_reassemble_or_stream() {
        // "€" (e2 82 ac) is split across fragments: legal for the sender,
        // and a streaming receiver must not hand out half a code point.
        let pieces: [&'static [u8]; 5] = [b"Hello, ", b"\xE2\x82", b"", b"\xAC", b"!"];
        for streaming in [false, true] {
            for split in SPLITS {
                let cfg = config(|c| c.streaming = streaming);
                let mut sim = Sim::with(cfg.clone(), cfg, split);
                for (i, p) in pieces.iter().enumerate() {
                    let fin = i == pieces.len() - 1;
                    sim.client()
                        .send_fragment(MessageKind::Text, bytes(p), fin)
                        .unwrap();
                }
                sim.run();
                let shape = sim.shape(Client);
                assert_eq!(shape.len(), 5);
                assert_eq!(shape[0], (OpCode::Text, false));
                assert_eq!(shape[4], (OpCode::Continuation, true));
                let want = data_events(&[Message::text("Hello, €!")], streaming);
                assert_eq!(coalesce(&sim.events(Server)), want, "{streaming} {split:?}");
                sim.finish();
            }
        }
    }

    #[test]
    fn our_ping_between_our_fragments_is_delivered_in_order_and_answered() {
        for streaming in [false, true] {
            for split in SPLITS {
                let cfg = config(|c| c.streaming = streaming);
                let mut sim = Sim::with(cfg.clone(), cfg, split);
                let c = sim.client();
                c.send_fragment(MessageKind::Text, bytes(b"Hel"), false)
                    .unwrap();
                c.ping(bytes(b"p1")).unwrap();
                c.send_fragment(MessageKind::Text, bytes(b"lo"), true)
                    .unwrap();
                sim.run();
                assert_eq!(
                    sim.shape(Client),
                    [
                        (OpCode::Text, false),
                        (OpCode::Ping, true),
                        (OpCode::Continuation, true)
                    ]
                );
                let want = if streaming {
                    vec![
                        frag(MessageKind::Text, b"Hel", false),
                        Event::Ping(bytes(b"p1")),
                        frag(MessageKind::Text, b"lo", true),
                    ]
                } else {
                    vec![
                        Event::Ping(bytes(b"p1")),
                        Event::Message(Message::text("Hello")),
                    ]
                };
                assert_eq!(coalesce(&sim.events(Server)), want, "{streaming} {split:?}");
                assert_eq!(sim.shape(Server), [(OpCode::Pong, true)]);
                assert_eq!(sim.events(Client), [Event::Pong(bytes(b"p1"))]);
                sim.finish();
            }
        }
    }

    #[test]
    fn peer_ping_mid_message_is_answered_between_our_fragments() {
        for split in SPLITS {
            let mut sim = Sim::new(split);
            sim.client()
                .send_fragment(MessageKind::Binary, bytes(&[1, 2, 3]), false)
                .unwrap();
            sim.run();
            sim.server().ping(bytes(b"mid")).unwrap();
            sim.run();
            sim.client()
                .send_fragment(MessageKind::Binary, bytes(&[4, 5]), true)
                .unwrap();
            sim.run();
            assert_eq!(
                sim.shape(Client),
                [
                    (OpCode::Binary, false),
                    (OpCode::Pong, true),
                    (OpCode::Continuation, true)
                ]
            );
            assert_eq!(sim.events(Client), [Event::Ping(bytes(b"mid"))]);
            assert_eq!(
                sim.events(Server),
                [
                    Event::Pong(bytes(b"mid")),
                    Event::Message(Message::binary(vec![1, 2, 3, 4, 5]))
                ]
            );
            sim.finish();
        }
    }

    #[test]
    fn pings_that_arrive_together_get_a_pong_each_up_to_sixteen() {
        // A burst of pings handled before any output is taken still gets one
        // pong per ping, in order (Autobahn 2.10 checks this). Beyond 16
        // unsent pongs only the latest are kept (§5.5.3 allows answering
        // only the latest ping), so a flood cannot grow memory.
        let mut sim = Sim::new(Chunking::Whole);
        let payloads: Vec<Vec<u8>> = (0..20u8).map(|i| vec![i]).collect();
        for p in &payloads {
            sim.client().ping(Bytes::copy_from_slice(p)).unwrap();
        }
        sim.run();
        assert_eq!(sim.events(Server).len(), 20, "every ping is reported");
        let pongs: Vec<Bytes> = sim
            .frames_of(Server, OpCode::Pong)
            .into_iter()
            .map(|f| f.payload)
            .collect();
        let latest: Vec<Bytes> = payloads[4..]
            .iter()
            .map(|p| Bytes::copy_from_slice(p))
            .collect();
        assert_eq!(pongs, latest);
        sim.finish();
    }

    #[test]
    fn without_auto_pong_the_application_answers() {
        let mut sim = Sim::with(
            Config::default(),
            config(|c| c.auto_pong = false),
            Chunking::Fixed(1),
        );
        sim.client().ping(bytes(b"are you there")).unwrap();
        sim.run();
        assert_eq!(sim.events(Server), [Event::Ping(bytes(b"are you there"))]);
        assert!(sim.frames(Server).is_empty());
        sim.server().pong(bytes(b"yes")).unwrap();
        sim.run();
        assert_eq!(sim.events(Client), [Event::Pong(bytes(b"yes"))]);
        sim.finish();
    }

    #[test]
    fn a_ping_crossing_our_close_frame_is_still_answered() {
        // §5.5.2: a ping is answered "unless it already received a Close
        // frame"; §5.5.1 only forbids data frames after our close.
        let mut sim = Sim::new(Chunking::Whole);
        sim.hold(Client);
        sim.client().close(None).unwrap();
        sim.server().ping(bytes(b"late")).unwrap();
        sim.run();
        assert_eq!(sim.events(Client), [Event::Ping(bytes(b"late"))]);
        assert_eq!(
            sim.shape(Client),
            [(OpCode::Close, true), (OpCode::Pong, true)]
        );
        sim.release(Client);
        assert_eq!(
            sim.events(Client),
            [Event::Ping(bytes(b"late")), clean(Initiator::Local, None)]
        );
        sim.assert_ended_once();
    }
}

// ============================================================================
// The close handshake
// ============================================================================

mod close {
    use super::*;

    #[test]
    fn client_initiated_close() {
        for split in SPLITS {
            let mut sim = Sim::new(split);
            sim.client().close(Some(cf(1000, "bye"))).unwrap();
            assert_eq!(sim.client().state(), ConnectionState::Closing);
            sim.run();
            assert_eq!(
                sim.events(Server),
                [clean(Initiator::Peer, Some(cf(1000, "bye")))]
            );
            // the reply echoes the code (§5.5.1), without the reason
            assert_eq!(
                sim.events(Client),
                [clean(Initiator::Local, Some(cf(1000, "")))]
            );
            assert_eq!(sim.close_frames(Client), [Some(cf(1000, "bye"))]);
            assert_eq!(sim.close_frames(Server), [Some(cf(1000, ""))]);
            assert_eq!(sim.transport_closes, [Server, Client]);
            assert!(sim.client().closed_cleanly() && sim.server().closed_cleanly());
            assert!(sim.client().should_close_transport());
            assert!(sim.server().should_close_transport());
            sim.assert_ended_once();
        }
    }

    #[test]
    fn server_initiated_close() {
        for split in SPLITS {
            let mut sim = Sim::new(split);
            sim.server().close(Some(cf(1001, "going away"))).unwrap();
            sim.run();
            assert_eq!(
                sim.events(Client),
                [clean(Initiator::Peer, Some(cf(1001, "going away")))]
            );
            assert_eq!(
                sim.events(Server),
                [clean(Initiator::Local, Some(cf(1001, "")))]
            );
            assert_eq!(sim.close_frames(Server), [Some(cf(1001, "going away"))]);
            assert_eq!(sim.close_frames(Client), [Some(cf(1001, ""))]);
            // the server closes TCP first even though it started the close
            assert_eq!(sim.transport_closes, [Server, Client]);
            sim.assert_ended_once();
        }
    }

    #[test]
    fn close_without_status_code() {
        for initiator in [Client, Server] {
            let mut sim = Sim::new(Chunking::Fixed(1));
            sim.conn(initiator).close(None).unwrap();
            sim.run();
            assert_eq!(sim.close_frames(Client), [None]);
            assert_eq!(sim.close_frames(Server), [None]);
            for side in [Client, Server] {
                let who = if side == initiator {
                    Initiator::Local
                } else {
                    Initiator::Peer
                };
                assert_eq!(sim.events(side), [clean(who, None)]);
                let Event::Closed(reason) = &sim.events(side)[0] else {
                    unreachable!()
                };
                assert_eq!(reason.code(), crate::CloseCode::NO_STATUS);
            }
            sim.assert_ended_once();
        }
    }

    #[test]
    fn both_sides_close_at_once() {
        // Both call close() before either has received the other's close
        // frame: both are "Local", nobody replies, one close frame each.
        for delayed in [false, true] {
            for split in SPLITS {
                let mut sim = Sim::new(split);
                if delayed {
                    sim.hold(Client);
                    sim.hold(Server);
                }
                sim.client().close(Some(cf(1000, "client"))).unwrap();
                sim.server().close(Some(cf(4000, "server"))).unwrap();
                sim.run();
                if delayed {
                    assert!(sim.events(Client).is_empty() && sim.events(Server).is_empty());
                    sim.release(Server);
                    sim.release(Client);
                }
                let label = (delayed, split);
                assert_eq!(
                    sim.events(Client),
                    [clean(Initiator::Local, Some(cf(4000, "server")))],
                    "{label:?}"
                );
                assert_eq!(
                    sim.events(Server),
                    [clean(Initiator::Local, Some(cf(1000, "client")))],
                    "{label:?}"
                );
                assert_eq!(sim.close_frames(Client), [Some(cf(1000, "client"))]);
                assert_eq!(sim.close_frames(Server), [Some(cf(4000, "server"))]);
                assert_eq!(sim.transport_closes, [Server, Client], "{label:?}");
                assert!(
                    sim.wires[Server.idx()].eof_delivered,
                    "client closed on EOF"
                );
                sim.assert_ended_once();
            }
        }
    }

    #[test]
    fn data_sent_before_close_is_delivered_and_data_after_is_refused() {
        for split in SPLITS {
            let mut sim = Sim::new(split);
            sim.client().send(Message::text("one")).unwrap();
            sim.client().send(Message::binary(pattern(400))).unwrap();
            sim.client().close(Some(cf(1000, ""))).unwrap();
            assert_all_commands_refused(sim.client());
            // The server has not seen the close yet: it may still send.
            sim.server().send(Message::text("crossing")).unwrap();
            sim.run();
            assert_eq!(
                sim.events(Server),
                [
                    Event::Message(Message::text("one")),
                    Event::Message(Message::binary(pattern(400))),
                    clean(Initiator::Peer, Some(cf(1000, "")))
                ]
            );
            assert_eq!(
                sim.events(Client),
                [
                    Event::Message(Message::text("crossing")),
                    clean(Initiator::Local, Some(cf(1000, "")))
                ]
            );
            assert_all_commands_refused(sim.server());
            assert_all_commands_refused(sim.client());
            sim.assert_ended_once();
        }
    }

    #[test]
    fn closing_side_still_receives_until_the_peer_closes() {
        for split in SPLITS {
            let mut sim = Sim::new(split);
            sim.hold(Client);
            sim.client().close(None).unwrap();
            sim.run();
            sim.server().send(Message::text("still here")).unwrap();
            sim.server()
                .send_fragment(MessageKind::Binary, bytes(b"ab"), false)
                .unwrap();
            sim.server()
                .send_fragment(MessageKind::Binary, bytes(b"cd"), true)
                .unwrap();
            sim.run();
            assert_eq!(sim.client().state(), ConnectionState::Closing);
            assert_eq!(
                sim.events(Client),
                [
                    Event::Message(Message::text("still here")),
                    Event::Message(Message::binary(&b"abcd"[..]))
                ]
            );
            sim.release(Client);
            assert_eq!(sim.events(Client).len(), 3);
            assert_eq!(sim.events(Client)[2], clean(Initiator::Local, None));
            sim.assert_ended_once();
        }
    }

    #[test]
    fn close_reply_follows_data_the_peer_had_queued() {
        // The server's queued message goes out before its close reply.
        let mut sim = Sim::new(Chunking::Fixed(3));
        sim.block_writes(Server);
        sim.server().send(Message::text("queued")).unwrap();
        sim.client().close(None).unwrap();
        sim.run();
        assert_eq!(sim.events(Server), [clean(Initiator::Peer, None)]);
        sim.unblock_writes(Server);
        assert_eq!(
            sim.shape(Server),
            [(OpCode::Text, true), (OpCode::Close, true)]
        );
        assert_eq!(
            sim.events(Client),
            [
                Event::Message(Message::text("queued")),
                clean(Initiator::Local, None)
            ]
        );
        sim.assert_ended_once();
    }
}

// ============================================================================
// Who closes the transport, and when (§7.1.1)
// ============================================================================

mod transport {
    use super::*;

    #[test]
    fn client_closes_only_after_the_servers_eof() {
        for split in SPLITS {
            let mut sim = Sim::new(split);
            sim.hold(Server);
            sim.client().close(None).unwrap();
            sim.run();
            // the server got the close, replied into the held wire and
            // closed its transport once the reply was written
            assert_eq!(sim.transport_closed(Server), Some(T0));
            assert!(sim.events(Client).is_empty());
            // the reply is an empty unmasked close frame: 2 bytes
            sim.release_bytes(Server, 2);
            assert_eq!(sim.events(Client), [clean(Initiator::Local, None)]);
            assert!(!sim.client().should_close_transport());
            assert_eq!(sim.transport_closed(Client), None);
            sim.release(Server);
            assert!(sim.client().should_close_transport());
            assert_eq!(sim.transport_closes, [Server, Client]);
            sim.assert_ended_once();
        }
    }

    #[test]
    fn client_gives_up_on_a_server_that_never_closes_tcp() {
        for initiator in [Client, Server] {
            let mut sim = Sim::new(Chunking::Whole);
            sim.ignore_should_close(Server);
            sim.advance(secs(1));
            let t = T0 + secs(1);
            sim.conn(initiator).close(None).unwrap();
            sim.run();
            assert_eq!(sim.ended_at(Client), Some(t));
            assert!(sim.server().should_close_transport());
            assert!(!sim.client().should_close_transport());
            assert_eq!(sim.deadline(Client), Some(t + secs(10)));
            sim.advance(secs(10) - ms(1));
            assert_eq!(sim.transport_closed(Client), None);
            sim.advance(ms(1));
            assert_eq!(sim.transport_closed(Client), Some(t + secs(10)));
            let now = sim.now;
            assert_eq!(sim.client().poll_timeout(now), None);
            assert_eq!(sim.events(Client).len(), 1, "no event for the give-up");
            sim.assert_ended_once();
        }
    }

    #[test]
    fn server_closes_once_its_reply_is_flushed() {
        let mut sim = Sim::new(Chunking::Whole);
        sim.block_writes(Server);
        sim.client().close(None).unwrap();
        sim.run();
        assert_eq!(sim.events(Server), [clean(Initiator::Peer, None)]);
        assert!(sim.server().wants_write());
        assert!(!sim.server().should_close_transport());
        sim.unblock_writes(Server);
        assert_eq!(sim.transport_closed(Server), Some(T0));
        assert_eq!(sim.transport_closes, [Server, Client]);
        sim.assert_ended_once();
    }

    #[test]
    fn server_that_cannot_flush_gives_up_after_close_timeout() {
        // The client waits longer than the server, so it sees the server's
        // EOF without a close reply: abnormal (1006).
        let client = config(|c| c.close_timeout = secs(20));
        let mut sim = Sim::with(client, Config::default(), Chunking::Whole);
        sim.block_writes(Server);
        sim.client().close(None).unwrap();
        sim.run();
        assert_eq!(sim.ended_at(Server), Some(T0));
        assert_eq!(sim.deadline(Server), Some(T0 + secs(10)));
        sim.advance(secs(10) - ms(1));
        assert!(!sim.server().should_close_transport());
        sim.advance(ms(1));
        assert_eq!(sim.transport_closed(Server), Some(T0 + secs(10)));
        assert!(sim.frames(Server).is_empty());
        assert_eq!(
            sim.timed_events(Client),
            [(T0 + secs(10), Event::Closed(CloseReason::Abnormal))]
        );
        sim.assert_ended_once();
    }
}

// ============================================================================
// Timers on the fake clock
// ============================================================================

mod timers {
    use super::*;

    /// Configs for a pair where only `side` runs keepalive.
    fn keepalive_on(side: Side, interval: Duration, timeout: Duration) -> (Config, Config) {
        let ka = keepalive(interval, timeout);
        match side {
            Client => (ka, Config::default()),
            Server => (Config::default(), ka),
        }
    }

    #[test]
    fn no_timer_runs_without_keepalive_or_close() {
        let mut sim = Sim::new(Chunking::Whole);
        assert_eq!(sim.deadline(Client), None);
        assert_eq!(sim.deadline(Server), None);
        sim.client().send(Message::text("x")).unwrap();
        sim.server().ping(bytes(b"y")).unwrap();
        sim.advance(secs(86_400));
        assert_eq!(sim.deadline(Client), None);
        assert_eq!(sim.deadline(Server), None);
        assert!(sim.client().is_open() && sim.server().is_open());
        sim.finish();
    }

    #[test]
    fn keepalive_ping_goes_out_exactly_when_the_interval_elapses() {
        for side in [Client, Server] {
            let (c, s) = keepalive_on(side, secs(30), secs(10));
            let mut sim = Sim::with(c, s, Chunking::Whole);
            assert_eq!(sim.deadline(side), Some(T0 + secs(30)));
            assert_eq!(sim.deadline(side.peer()), None);
            sim.advance(secs(30) - ms(1));
            assert!(sim.frames(side).is_empty(), "{side:?}: no ping before");
            sim.advance(ms(1));
            let pings = sim.frames_of(side, OpCode::Ping);
            assert_eq!(pings.len(), 1);
            assert_eq!(pings[0].at, T0 + secs(30));
            let first = pings[0].payload.clone();
            assert_eq!(
                sim.timed_events(side.peer()),
                [(T0 + secs(30), Event::Ping(first.clone()))]
            );
            assert_eq!(
                sim.timed_events(side),
                [(T0 + secs(30), Event::Pong(first.clone()))]
            );
            // the pong was traffic: the next ping is an interval after it
            assert_eq!(sim.deadline(side), Some(T0 + secs(60)));
            sim.advance(secs(30));
            let pings = sim.frames_of(side, OpCode::Ping);
            assert_eq!(pings.len(), 2);
            assert_eq!(pings[1].at, T0 + secs(60));
            assert_ne!(pings[1].payload, first, "each keepalive ping is distinct");
            sim.finish();
        }
    }

    #[test]
    fn incoming_traffic_postpones_the_keepalive_ping() {
        let mut sim = Sim::with(
            keepalive(secs(30), secs(10)),
            Config::default(),
            Chunking::Fixed(2),
        );
        sim.advance(secs(20));
        sim.server().send(Message::text("tick")).unwrap();
        sim.run();
        assert_eq!(sim.deadline(Client), Some(T0 + secs(50)));
        sim.advance(secs(30) - ms(1));
        assert!(sim.frames_of(Client, OpCode::Ping).is_empty());
        sim.advance(ms(1));
        let pings = sim.frames_of(Client, OpCode::Ping);
        assert_eq!(pings.len(), 1);
        assert_eq!(pings[0].at, T0 + secs(50));
        sim.finish();
    }

    #[test]
    fn outgoing_traffic_does_not_postpone_the_keepalive_ping() {
        // Config::keepalive_interval: "when nothing has been received".
        let mut sim = Sim::with(
            keepalive(secs(30), secs(10)),
            Config::default(),
            Chunking::Whole,
        );
        sim.advance(secs(20));
        sim.client()
            .send(Message::text("talking, not listening"))
            .unwrap();
        sim.run();
        assert_eq!(sim.deadline(Client), Some(T0 + secs(30)));
        sim.advance(secs(10));
        let pings = sim.frames_of(Client, OpCode::Ping);
        assert_eq!(pings.len(), 1);
        assert_eq!(pings[0].at, T0 + secs(30));
        sim.finish();
    }

    #[test]
    fn pong_clears_the_pong_deadline() {
        let mut sim = Sim::with(
            keepalive(secs(30), secs(10)),
            Config::default(),
            Chunking::Whole,
        );
        sim.hold(Server);
        sim.advance(secs(30));
        assert_eq!(sim.deadline(Client), Some(T0 + secs(40)));
        sim.advance(secs(9));
        sim.release(Server);
        assert_eq!(sim.timed_events(Client).len(), 1);
        assert!(matches!(
            sim.timed_events(Client)[0],
            (t, Event::Pong(_)) if t == T0 + secs(39)
        ));
        assert_eq!(sim.deadline(Client), Some(T0 + secs(69)));
        sim.advance(secs(5));
        assert!(sim.client().is_open());
        sim.finish();
    }

    #[test]
    fn any_frame_clears_the_pong_deadline() {
        let server = config(|c| c.auto_pong = false);
        let mut sim = Sim::with(keepalive(secs(30), secs(10)), server, Chunking::Fixed(1));
        sim.advance(secs(30));
        assert!(sim.frames(Server).is_empty(), "no pong without auto_pong");
        assert_eq!(sim.deadline(Client), Some(T0 + secs(40)));
        sim.advance(secs(10) - ms(1));
        sim.server().send(Message::text("late but alive")).unwrap();
        sim.run();
        let t = T0 + (secs(40) - ms(1));
        assert_eq!(
            sim.timed_events(Client),
            [(t, Event::Message(Message::text("late but alive")))]
        );
        assert_eq!(sim.deadline(Client), Some(t + secs(30)));
        sim.advance(secs(5));
        assert!(sim.client().is_open());
        sim.finish();
    }

    #[test]
    fn unanswered_keepalive_times_out_exactly_at_ping_plus_timeout() {
        for side in [Client, Server] {
            let (c, s) = keepalive_on(side, secs(30), secs(10));
            let mut sim = Sim::with(c, s, Chunking::Whole);
            // the peer answers, but nothing it sends ever arrives
            sim.hold(side.peer());
            sim.advance(secs(30));
            let ping = sim.frames_of(side, OpCode::Ping)[0].payload.clone();
            assert_eq!(sim.deadline(side), Some(T0 + secs(40)));
            sim.advance(secs(10) - ms(1));
            assert!(sim.conn(side).is_open());
            sim.advance(ms(1));
            assert_eq!(
                sim.timed_events(side),
                [(
                    T0 + secs(40),
                    Event::Closed(CloseReason::TimedOut(Timeout::Keepalive))
                )]
            );
            assert!(sim.conn(side).should_close_transport());
            assert_eq!(sim.transport_closed(side), Some(T0 + secs(40)));
            let now = sim.now;
            assert_eq!(sim.conn(side).poll_timeout(now), None);
            assert!(
                sim.close_frames(side).is_empty(),
                "a dead peer gets no close frame"
            );
            assert!(!sim.conn(side).closed_cleanly());
            assert_eq!(sim.conn(side).state, State::Closed(End::TimedOut));
            // the peer sees the transport end without a close frame
            assert_eq!(
                sim.events(side.peer()),
                [Event::Ping(ping), Event::Closed(CloseReason::Abnormal)]
            );
            sim.assert_ended_once();
        }
    }

    #[test]
    fn close_handshake_times_out_when_the_peer_never_answers() {
        for side in [Client, Server] {
            let mut sim = Sim::new(Chunking::Whole);
            // our close frame is written but never reaches the peer
            sim.hold(side);
            sim.advance(secs(5));
            let t = T0 + secs(5);
            sim.conn(side).close(Some(cf(1001, "bye"))).unwrap();
            sim.run();
            assert_eq!(sim.deadline(side), Some(t + secs(10)));
            sim.advance(secs(10) - ms(1));
            assert_eq!(sim.conn(side).state(), ConnectionState::Closing);
            assert!(sim.events(side).is_empty());
            sim.advance(ms(1));
            assert_eq!(
                sim.timed_events(side),
                [(
                    t + secs(10),
                    Event::Closed(CloseReason::TimedOut(Timeout::CloseHandshake))
                )]
            );
            assert!(sim.conn(side).should_close_transport());
            assert_eq!(sim.transport_closed(side), Some(t + secs(10)));
            let now = sim.now;
            assert_eq!(sim.conn(side).poll_timeout(now), None);
            // the frame was on the wire: it still arrives, late, then EOF
            sim.release(side);
            assert_eq!(
                sim.events(side.peer()),
                [clean(Initiator::Peer, Some(cf(1001, "bye")))]
            );
            assert_eq!(sim.close_frames(side), [Some(cf(1001, "bye"))]);
            sim.assert_ended_once();
        }
    }

    #[test]
    fn poll_timeout_follows_the_state() {
        let client = config(|c| {
            c.keepalive_interval = Some(secs(30));
            c.keepalive_timeout = secs(10);
            c.close_timeout = secs(5);
        });
        let mut sim = Sim::with(client, Config::default(), Chunking::Whole);
        sim.ignore_should_close(Server);
        // open, keepalive armed
        assert_eq!(sim.deadline(Client), Some(T0 + secs(30)));
        assert_eq!(sim.deadline(Server), None);
        // ping answered at once: next ping an interval later
        sim.advance(secs(30));
        assert_eq!(sim.deadline(Client), Some(T0 + secs(60)));
        // ping outstanding: the pong deadline
        sim.hold(Server);
        sim.advance(secs(30));
        assert_eq!(sim.deadline(Client), Some(T0 + secs(70)));
        sim.advance(secs(4));
        sim.release(Server);
        assert_eq!(sim.deadline(Client), Some(T0 + secs(94)));
        // closing: only the close deadline, keepalive is off
        sim.hold(Client);
        sim.client().close(None).unwrap();
        sim.run();
        assert_eq!(sim.deadline(Client), Some(T0 + secs(69)));
        // closed cleanly, waiting for the server's EOF
        sim.advance(secs(2));
        sim.release(Client);
        assert_eq!(sim.ended_at(Client), Some(T0 + secs(66)));
        assert_eq!(sim.deadline(Client), Some(T0 + secs(71)));
        // given up waiting: nothing left to time
        sim.advance(secs(5));
        assert_eq!(sim.transport_closed(Client), Some(T0 + secs(71)));
        let now = sim.now;
        assert_eq!(sim.client().poll_timeout(now), None);
        sim.assert_ended_once();
    }

    #[test]
    fn huge_durations_saturate_instead_of_panicking() {
        let huge = config(|c| {
            c.keepalive_interval = Some(Duration::MAX);
            c.keepalive_timeout = Duration::MAX;
            c.close_timeout = Duration::MAX;
        });
        let end_of_time = Instant::from_duration(Duration::MAX);
        let mut sim = Sim::with(huge.clone(), huge.clone(), Chunking::Whole);
        assert_eq!(sim.deadline(Client), Some(end_of_time));
        assert_eq!(sim.deadline(Server), Some(end_of_time));
        sim.client().send(Message::text("x")).unwrap();
        sim.advance(secs(3600));
        assert_eq!(sim.deadline(Server), Some(end_of_time));
        sim.hold(Client);
        sim.client().close(None).unwrap();
        sim.run();
        assert_eq!(sim.deadline(Client), Some(end_of_time));
        sim.advance(Duration::MAX);
        assert_eq!(sim.now, end_of_time);
        // at the end of time every timer has expired
        assert_eq!(
            sim.timed_events(Client),
            [(
                end_of_time,
                Event::Closed(CloseReason::TimedOut(Timeout::CloseHandshake))
            )]
        );
        assert_eq!(
            sim.events(Server).last(),
            Some(&Event::Closed(CloseReason::TimedOut(Timeout::Keepalive)))
        );
        sim.assert_ended_once();

        // Driven by hand, straight at the end of time.
        let mut conn = Connection::server(huge);
        assert_eq!(conn.poll_timeout(end_of_time), Some(end_of_time));
        conn.handle_timeout(end_of_time);
        // the pong deadline runs from when the ping is handed out
        assert!(conn.poll_transmit().is_some());
        conn.handle_timeout(end_of_time);
        assert_eq!(
            conn.poll_event(),
            Ok(Some(Event::Closed(CloseReason::TimedOut(
                Timeout::Keepalive
            ))))
        );
        assert_eq!(conn.poll_timeout(end_of_time), None);
    }
    #[test]
    fn keepalive_does_not_kill_a_peer_that_is_reading_a_backlog() {
        // A one-way download over a slow link: the server's socket takes 5
        // chunks a second, the client reads everything and sends nothing.
        // The keepalive ping due at +30 s must not wait behind the backlog
        // (it jumps the queue like a pong), and its deadline runs from when
        // it is handed out, so the reading client is never declared dead.
        let mut sim = Sim::with(
            Config::default(),
            keepalive(secs(30), secs(10)),
            Chunking::Whole,
        );
        sim.block_writes(Server);
        for _ in 0..300 {
            sim.server().send(Message::binary(pattern(1000))).unwrap();
        }
        for _ in 0..45 {
            sim.allow_chunks(Server, 5);
            sim.advance(secs(1));
        }
        let pings = sim.frames_of(Server, OpCode::Ping);
        assert!(
            pings.first().is_some_and(|p| p.at <= T0 + secs(31)),
            "the ping went out right when due, ahead of the backlog: {pings:?}"
        );
        let reading = sim
            .timed_events(Client)
            .iter()
            .filter(|(t, e)| matches!(e, Event::Message(_)) && *t > T0 + secs(30))
            .count();
        assert!(reading > 0, "the client was reading all along");
        assert!(
            sim.server().is_open(),
            "server gave up at {:?}: {:?}",
            sim.ended_at(Server),
            sim.events(Server)
        );
    }
}

// ============================================================================
// Failing the connection (§7.1.7)
// ============================================================================

mod failure {
    use super::*;

    struct BadInput {
        name: &'static str,
        /// Who writes the bad bytes; the other side fails.
        from: Side,
        bytes: Vec<u8>,
        error: Error,
        code: u16,
    }

    fn bad(name: &'static str, from: Side, bytes: Vec<u8>, error: ProtocolError) -> BadInput {
        let code = if error == ProtocolError::InvalidUtf8 {
            1007
        } else {
            1002
        };
        BadInput {
            name,
            from,
            bytes,
            error: error.into(),
            code,
        }
    }

    fn bad_inputs() -> Vec<BadInput> {
        use OpCode::*;
        use ProtocolError as P;
        let mut long_ping = vec![0x89, 126, 0, 126];
        long_ping.extend_from_slice(&[0; 126]);
        let mut double_start = server_frame(Text, false, b"a");
        double_start.extend(server_frame(Text, true, b"b"));
        vec![
            bad(
                "invalid UTF-8 text",
                Server,
                server_frame(Text, true, b"\xC3\x28"),
                P::InvalidUtf8,
            ),
            // fail-fast: the frame never completes, the error comes anyway
            bad(
                "invalid UTF-8, frame incomplete",
                Server,
                vec![0x81, 5, b'a', 0xFF],
                P::InvalidUtf8,
            ),
            bad(
                "masked server frame",
                Server,
                client_frame(Binary, true, b"x"),
                P::MaskedFrame,
            ),
            bad(
                "reserved opcode",
                Server,
                vec![0x83, 0],
                P::ReservedOpcode(3),
            ),
            bad(
                "RSV1 without extension",
                Server,
                vec![0xC2, 0],
                P::ReservedBits,
            ),
            bad(
                "continuation out of nowhere",
                Server,
                vec![0x80, 0],
                P::UnexpectedContinuation,
            ),
            bad(
                "new message mid-message",
                Server,
                double_start,
                P::ExpectedContinuation,
            ),
            bad(
                "fragmented ping",
                Server,
                vec![0x09, 0],
                P::FragmentedControlFrame,
            ),
            bad("126-byte ping", Server, long_ping, P::ControlFrameTooLong),
            bad(
                "non-minimal length",
                Server,
                vec![0x82, 126, 0, 5],
                P::NonMinimalLength,
            ),
            bad(
                "length MSB set",
                Server,
                vec![0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 0],
                P::InvalidLength,
            ),
            bad(
                "one-byte close payload",
                Server,
                server_frame(Close, true, &[3]),
                P::InvalidClosePayload,
            ),
            bad(
                "close code 1005 on the wire",
                Server,
                server_frame(Close, true, &[3, 0xED]),
                P::InvalidCloseCode(1005),
            ),
            bad(
                "close reason not UTF-8",
                Server,
                server_frame(Close, true, &[3, 0xE8, 0xFF]),
                P::InvalidUtf8,
            ),
            bad(
                "unmasked client frame",
                Client,
                server_frame(Text, true, b"a"),
                P::UnmaskedFrame,
            ),
            bad(
                "invalid UTF-8 from client",
                Client,
                client_frame(Text, true, b"ok\xED\xA0\x80"),
                P::InvalidUtf8,
            ),
            bad(
                "reserved opcode from client",
                Client,
                client_frame(Binary, true, b"")[..]
                    .iter()
                    .enumerate()
                    .map(|(i, b)| if i == 0 { 0x8B } else { *b })
                    .collect(),
                P::ReservedOpcode(0xB),
            ),
        ]
    }

    #[test]
    fn protocol_error_sends_one_close_frame_and_the_peer_closes_cleanly() {
        for input in bad_inputs() {
            for split in SPLITS {
                let label = (input.name, split);
                let failing = input.from.peer();
                let mut sim = Sim::new(split);
                sim.inject(input.from, &input.bytes);
                assert_eq!(sim.error(failing), Some(&input.error), "{label:?}");
                assert!(sim.events(failing).is_empty(), "{label:?}");
                let reason = match &input.error {
                    Error::Protocol(p) => p.reason(),
                    _ => unreachable!(),
                };
                let frame = cf(input.code, reason);
                assert_eq!(
                    sim.close_frames(failing),
                    [Some(frame.clone())],
                    "{label:?}"
                );
                assert_eq!(
                    sim.events(input.from),
                    [clean(Initiator::Peer, Some(frame))],
                    "{label:?}"
                );
                // flushed, so the failing side closes without waiting
                assert_eq!(sim.transport_closed(failing), Some(T0), "{label:?}");
                assert!(sim.transport_closed(input.from).is_some(), "{label:?}");
                // sticky
                let c = sim.conn(failing);
                for _ in 0..2 {
                    assert_eq!(c.poll_event(), Err(input.error.clone()), "{label:?}");
                }
                assert_eq!(c.error(), Some(&input.error));
                assert_eq!(c.state(), ConnectionState::Closed);
                assert!(!c.closed_cleanly());
                assert_all_commands_refused(c);
                sim.assert_ended_once();
            }
        }
    }

    /// A message over a limit: 1009 from the receiver.
    struct TooBig {
        name: &'static str,
        limits: fn(&mut Config),
        streaming: bool,
        /// Fragment sizes the sender uses (one entry: a single frame).
        fragments: &'static [usize],
        error: CapacityError,
        /// Data events the receiver reports before failing (coalesced).
        before: usize,
    }

    fn too_big_cases() -> Vec<TooBig> {
        vec![
            TooBig {
                name: "single frame over max_message",
                limits: |c| c.limits.max_message = 1000,
                streaming: false,
                fragments: &[1001],
                error: CapacityError::MessageTooLarge {
                    size: 1001,
                    limit: 1000,
                },
                before: 0,
            },
            TooBig {
                name: "frame over max_frame_payload",
                limits: |c| c.limits.max_frame_payload = 1000,
                streaming: false,
                fragments: &[1001],
                error: CapacityError::FrameTooLarge {
                    size: 1001,
                    limit: 1000,
                },
                before: 0,
            },
            TooBig {
                name: "fragments adding up past max_message",
                limits: |c| c.limits.max_message = 1000,
                streaming: false,
                fragments: &[600, 600],
                error: CapacityError::MessageTooLarge {
                    size: 1200,
                    limit: 1000,
                },
                before: 0,
            },
            TooBig {
                name: "streaming: declared total past max_message",
                limits: |c| c.limits.max_message = 1000,
                streaming: true,
                fragments: &[600, 600],
                error: CapacityError::MessageTooLarge {
                    size: 1200,
                    limit: 1000,
                },
                before: 1,
            },
        ]
    }

    #[test]
    fn oversized_messages_fail_with_1009() {
        for case in too_big_cases() {
            for receiver in [Client, Server] {
                for split in [Chunking::Whole, Chunking::Fixed(7)] {
                    let label = (case.name, receiver, split);
                    let limited = config(|c| {
                        (case.limits)(c);
                        c.streaming = case.streaming;
                    });
                    let (c, s) = match receiver {
                        Client => (limited, Config::default()),
                        Server => (Config::default(), limited),
                    };
                    let mut sim = Sim::with(c, s, split);
                    let sender = receiver.peer();
                    let n = case.fragments.len();
                    for (i, len) in case.fragments.iter().enumerate() {
                        sim.conn(sender)
                            .send_fragment(MessageKind::Binary, pattern(*len), i == n - 1)
                            .unwrap();
                    }
                    sim.run();
                    let error = Error::Capacity(case.error);
                    assert_eq!(sim.error(receiver), Some(&error), "{label:?}");
                    assert_eq!(
                        coalesce(&sim.events(receiver)).len(),
                        case.before,
                        "{label:?}"
                    );
                    let frame = cf(1009, "message too big");
                    assert_eq!(
                        sim.close_frames(receiver),
                        [Some(frame.clone())],
                        "{label:?}"
                    );
                    assert_eq!(
                        sim.events(sender),
                        [clean(Initiator::Peer, Some(frame))],
                        "{label:?}"
                    );
                    sim.assert_ended_once();
                }
            }
        }
    }

    #[test]
    fn a_message_exactly_at_the_limit_is_accepted() {
        let limited = config(|c| {
            c.limits.max_message = 1000;
            c.limits.max_frame_payload = 1000;
        });
        let mut sim = Sim::with(Config::default(), limited, Chunking::Fixed(5));
        sim.client().send(Message::binary(pattern(1000))).unwrap();
        sim.run();
        assert_eq!(
            sim.events(Server),
            [Event::Message(Message::binary(pattern(1000)))]
        );
        sim.finish();
    }

    #[test]
    fn failure_sends_what_was_already_queued_then_the_close_frame() {
        // Frames queued before the error (an echo of an earlier valid
        // message, say) still go out, ahead of the close frame.
        let mut sim = Sim::new(Chunking::Whole);
        sim.block_writes(Client);
        sim.client().send(Message::text("queued before")).unwrap();
        sim.client().ping(bytes(b"this too")).unwrap();
        sim.inject(Server, &server_frame(OpCode::Text, true, b"\xFF"));
        assert_eq!(sim.error(Client), Some(&ProtocolError::InvalidUtf8.into()));
        sim.unblock_writes(Client);
        assert_eq!(
            sim.shape(Client),
            [
                (OpCode::Text, true),
                (OpCode::Ping, true),
                (OpCode::Close, true)
            ]
        );
        assert_eq!(
            sim.events(Server),
            [
                Event::Message(Message::text("queued before")),
                Event::Ping(bytes(b"this too")),
                clean(Initiator::Peer, Some(cf(1007, "invalid UTF-8")))
            ]
        );
        sim.assert_ended_once();
    }

    #[test]
    fn failure_while_closing_sends_no_second_close_frame() {
        let mut sim = Sim::new(Chunking::Fixed(1));
        sim.hold(Client);
        sim.client().close(Some(cf(1000, "done"))).unwrap();
        sim.run();
        sim.inject(Server, &server_frame(OpCode::Text, true, b"\xC0"));
        assert_eq!(sim.error(Client), Some(&ProtocolError::InvalidUtf8.into()));
        assert_eq!(sim.close_frames(Client), [Some(cf(1000, "done"))]);
        assert!(sim.transport_closed(Client).is_some());
        sim.release(Client);
        assert_eq!(
            sim.events(Server),
            [clean(Initiator::Peer, Some(cf(1000, "done")))]
        );
        sim.assert_ended_once();
    }

    #[test]
    fn failing_side_that_cannot_flush_closes_after_close_timeout() {
        let mut sim = Sim::new(Chunking::Whole);
        sim.advance(secs(3));
        let t = T0 + secs(3);
        sim.block_writes(Client);
        sim.inject(Server, &[0x8F, 0]);
        assert_eq!(
            sim.error(Client),
            Some(&ProtocolError::ReservedOpcode(0xF).into())
        );
        assert!(!sim.client().should_close_transport());
        assert_eq!(sim.deadline(Client), Some(t + secs(10)));
        sim.advance(secs(10) - ms(1));
        assert_eq!(sim.transport_closed(Client), None);
        sim.advance(ms(1));
        assert_eq!(sim.transport_closed(Client), Some(t + secs(10)));
        assert!(sim.frames(Client).is_empty());
        // no close frame ever arrived: abnormal for the server
        assert_eq!(
            sim.timed_events(Server),
            [(t + secs(10), Event::Closed(CloseReason::Abnormal))]
        );
        sim.assert_ended_once();
    }

    #[test]
    fn both_sides_fail_at_once() {
        for split in SPLITS {
            let mut sim = Sim::new(split);
            sim.hold(Client);
            sim.hold(Server);
            sim.inject(Server, &server_frame(OpCode::Text, true, b"\xFF"));
            sim.inject(Client, &client_frame(OpCode::Text, true, b"\xFE"));
            sim.release(Server);
            sim.release(Client);
            let utf8: Error = ProtocolError::InvalidUtf8.into();
            assert_eq!(sim.error(Client), Some(&utf8), "{split:?}");
            assert_eq!(sim.error(Server), Some(&utf8), "{split:?}");
            // each sent exactly one close frame; neither reported the other's
            let frame = [Some(cf(1007, "invalid UTF-8"))];
            assert_eq!(sim.close_frames(Client), frame);
            assert_eq!(sim.close_frames(Server), frame);
            assert!(sim.events(Client).is_empty() && sim.events(Server).is_empty());
            assert!(sim.transport_closed(Client).is_some());
            assert!(sim.transport_closed(Server).is_some());
            sim.assert_ended_once();
        }
    }

    #[test]
    fn failure_crossing_the_peers_close_frame() {
        // The server's close frame follows bad bytes: the client fails on
        // the bad bytes (its close frame carries 1007) and never sees the
        // server's; the server, closing, takes the client's 1007 as the
        // reply.
        for split in SPLITS {
            let mut sim = Sim::new(split);
            sim.hold(Server);
            sim.inject(Server, &server_frame(OpCode::Text, true, b"\xC0\xAF"));
            sim.server().close(Some(cf(1000, "bye"))).unwrap();
            sim.run();
            sim.release(Server);
            assert_eq!(
                sim.error(Client),
                Some(&ProtocolError::InvalidUtf8.into()),
                "{split:?}"
            );
            assert_eq!(sim.close_frames(Client), [Some(cf(1007, "invalid UTF-8"))]);
            assert_eq!(
                sim.events(Server),
                [clean(Initiator::Local, Some(cf(1007, "invalid UTF-8")))],
                "{split:?}"
            );
            sim.assert_ended_once();
        }
    }
}

// ============================================================================
// The transport ending (EOF)
// ============================================================================

mod eof {
    use super::*;

    #[test]
    fn eof_in_the_middle_of_a_frame_is_abnormal() {
        // 300-byte binary from the client: 2 + 2 (length) + 4 (mask) + 300.
        for cut_after in [0, 1, 2, 3, 5, 8, 9, 307] {
            for split in SPLITS {
                let label = (cut_after, split);
                let mut sim = Sim::new(split);
                sim.hold(Client);
                sim.client().send(Message::binary(pattern(300))).unwrap();
                sim.run();
                sim.release_bytes(Client, cut_after);
                sim.cut(Client);
                assert_eq!(
                    sim.events(Server),
                    [Event::Closed(CloseReason::Abnormal)],
                    "{label:?}"
                );
                assert!(sim.transport_closed(Server).is_some(), "{label:?}");
                assert!(sim.frames(Server).is_empty(), "no close frame: {label:?}");
                assert_eq!(
                    sim.events(Client),
                    [Event::Closed(CloseReason::Abnormal)],
                    "{label:?}"
                );
                sim.assert_ended_once();
            }
        }
    }

    #[test]
    fn eof_between_fragments_is_abnormal_and_drops_the_partial_message() {
        for streaming in [false, true] {
            let cfg = config(|c| c.streaming = streaming);
            let mut sim = Sim::with(cfg.clone(), cfg, Chunking::Fixed(3));
            sim.client()
                .send_fragment(MessageKind::Text, bytes(b"half"), false)
                .unwrap();
            sim.run();
            sim.drop_transport(Client);
            let mut want = Vec::new();
            if streaming {
                want.push(frag(MessageKind::Text, b"half", false));
            }
            want.push(Event::Closed(CloseReason::Abnormal));
            assert_eq!(coalesce(&sim.events(Server)), want);
            sim.assert_side_ended_once(Server);
        }
    }

    #[test]
    fn messages_before_eof_are_delivered_first() {
        for split in SPLITS {
            let mut sim = Sim::new(split);
            sim.client().send(Message::text("m1")).unwrap();
            sim.client().send(Message::binary(pattern(200))).unwrap();
            sim.run();
            sim.drop_transport(Client);
            assert_eq!(
                sim.events(Server),
                [
                    Event::Message(Message::text("m1")),
                    Event::Message(Message::binary(pattern(200))),
                    Event::Closed(CloseReason::Abnormal)
                ]
            );
            assert_eq!(sim.transport_closes, [Client, Server]);
            sim.assert_side_ended_once(Server);
        }
    }

    #[test]
    fn eof_while_waiting_for_the_close_reply_is_abnormal() {
        for split in SPLITS {
            let mut sim = Sim::new(split);
            sim.hold(Server);
            sim.client().close(None).unwrap();
            sim.run();
            // the reply is lost with the transport
            sim.cut(Server);
            assert_eq!(sim.events(Client), [Event::Closed(CloseReason::Abnormal)]);
            assert!(sim.client().should_close_transport());
            assert_eq!(sim.client().state, State::Closed(End::Abnormal));
            sim.assert_ended_once();
        }
    }

    #[test]
    fn eof_after_a_clean_close_adds_no_event() {
        let mut sim = Sim::new(Chunking::Whole);
        sim.server().close(None).unwrap();
        sim.run();
        assert!(sim.wires[Server.idx()].eof_delivered);
        assert_eq!(sim.events(Client), [clean(Initiator::Peer, None)]);
        // a second EOF, and more bytes, change nothing
        let c = sim.client();
        c.receive_eof();
        c.receive(&server_frame(OpCode::Text, true, b"ghost"));
        assert_eq!(c.poll_event(), Ok(None));
        assert!(c.closed_cleanly());
        sim.assert_ended_once();
    }
}

// ============================================================================
// Drivers that write part of the queue, or read into `input_buffer()`
// ============================================================================

mod partial_io {
    use super::*;

    #[test]
    fn pong_waits_for_the_frame_being_written() {
        // A 1000-byte server frame is two chunks (header, payload). A driver
        // that wrote only the header must not get a pong before the payload.
        let mut sim = Sim::new(Chunking::Whole);
        sim.allow_chunks(Server, 1);
        sim.server().send(Message::binary(pattern(1000))).unwrap();
        sim.run();
        sim.client().ping(bytes(b"now")).unwrap();
        sim.run();
        assert_eq!(sim.events(Server), [Event::Ping(bytes(b"now"))]);
        sim.unblock_writes(Server);
        assert_eq!(
            sim.shape(Server),
            [(OpCode::Binary, true), (OpCode::Pong, true)]
        );
        assert_eq!(
            sim.events(Client),
            [
                Event::Message(Message::binary(pattern(1000))),
                Event::Pong(bytes(b"now"))
            ]
        );
        sim.finish();
    }

    #[test]
    fn failure_mid_frame_finishes_the_queue_then_closes() {
        let mut sim = Sim::new(Chunking::Fixed(5));
        sim.allow_chunks(Server, 1);
        sim.server().send(Message::binary(pattern(1000))).unwrap();
        sim.server().send(Message::text("queued")).unwrap();
        sim.run();
        sim.inject(Client, &server_frame(OpCode::Text, true, b"unmasked"));
        assert_eq!(
            sim.error(Server),
            Some(&ProtocolError::UnmaskedFrame.into())
        );
        sim.unblock_writes(Server);
        assert_eq!(
            sim.shape(Server),
            [
                (OpCode::Binary, true),
                (OpCode::Text, true),
                (OpCode::Close, true)
            ]
        );
        assert_eq!(
            sim.events(Client),
            [
                Event::Message(Message::binary(pattern(1000))),
                Event::Message(Message::text("queued")),
                clean(Initiator::Peer, Some(cf(1002, "unmasked client frame")))
            ]
        );
        sim.assert_ended_once();
    }

    #[test]
    fn a_driver_writing_one_chunk_at_a_time_sees_the_same_stream() {
        let mut sim = Sim::new(Chunking::Seeded(99));
        let messages = [
            Message::binary(pattern(5000)),
            Message::text("small"),
            Message::binary(pattern(257)),
        ];
        for m in &messages {
            sim.server().send(m.clone()).unwrap();
        }
        sim.server().ping(bytes(b"p")).unwrap();
        sim.server().close(Some(cf(1000, "done"))).unwrap();
        for _ in 0..20 {
            sim.allow_chunks(Server, 1);
        }
        let mut want = data_events(&messages, false);
        want.push(Event::Ping(bytes(b"p")));
        want.push(clean(Initiator::Peer, Some(cf(1000, "done"))));
        assert_eq!(sim.events(Client), want);
        sim.assert_ended_once();
    }

    #[test]
    fn bytes_after_the_end_are_discarded_whatever_the_input_path() {
        // A hostile server that keeps sending after the close handshake
        // while the client waits (up to close_timeout) for its EOF.
        for via_buffer in [false, true] {
            let mut sim = Sim::new(Chunking::Whole);
            if via_buffer {
                sim.read_into_buffer(Client);
            }
            sim.ignore_should_close(Server);
            sim.client().close(None).unwrap();
            sim.run();
            assert_eq!(sim.events(Client), [clean(Initiator::Local, None)]);
            assert_eq!(sim.transport_closed(Client), None, "waiting for EOF");
            for _ in 0..16 {
                sim.inject(Server, &[0u8; 64 * 1024]);
            }
            assert_eq!(
                sim.client().buffered_input(),
                0,
                "via_buffer={via_buffer}: input after the end must not pile up"
            );
            sim.assert_ended_once();
        }
    }
}

// ============================================================================
// Every scenario, under every split
// ============================================================================

mod splits {
    use super::*;

    /// What a scenario's outcome looks like from outside.
    #[derive(Debug, PartialEq)]
    struct Outcome {
        events: [Vec<Event>; 2],
        errors: [Option<Error>; 2],
        ended_at: [Option<Instant>; 2],
        wires: [Vec<(OpCode, bool)>; 2],
        transport_closes: Vec<Side>,
    }

    fn outcome(sim: &Sim) -> Outcome {
        Outcome {
            events: [coalesce(&sim.events(Client)), coalesce(&sim.events(Server))],
            errors: [sim.error(Client).cloned(), sim.error(Server).cloned()],
            ended_at: [sim.ended_at(Client), sim.ended_at(Server)],
            wires: [sim.shape(Client), sim.shape(Server)],
            transport_closes: sim.transport_closes.clone(),
        }
    }

    /// How a scenario's pair is set up: the split, and whether both drivers
    /// read into `input_buffer()` instead of calling `receive()`.
    #[derive(Debug, Clone, Copy)]
    struct Setup {
        split: Chunking,
        via_buffer: bool,
    }

    impl Setup {
        fn sim(self, client: Config, server: Config) -> Sim {
            let mut sim = Sim::with(client, server, self.split);
            if self.via_buffer {
                sim.read_into_buffer(Client);
                sim.read_into_buffer(Server);
            }
            sim
        }

        fn default_sim(self) -> Sim {
            self.sim(Config::default(), Config::default())
        }
    }

    type Scenario = fn(Setup) -> Sim;

    fn messages_then_close(setup: Setup) -> Sim {
        let mut sim = setup.default_sim();
        sim.client().send(Message::text("ça va? 𝄞")).unwrap();
        sim.server().send(Message::binary(pattern(1000))).unwrap();
        sim.run();
        sim.server().close(Some(cf(1000, "ok"))).unwrap();
        sim.run();
        sim
    }

    fn streaming_with_pings(setup: Setup) -> Sim {
        let cfg = config(|c| c.streaming = true);
        let mut sim = setup.sim(cfg.clone(), cfg);
        let c = sim.client();
        c.send_fragment(MessageKind::Text, bytes("né".as_bytes()), false)
            .unwrap();
        c.ping(bytes(b"between")).unwrap();
        c.send_fragment(MessageKind::Text, bytes("e€".as_bytes()), true)
            .unwrap();
        sim.run();
        sim.client().close(None).unwrap();
        sim.run();
        sim
    }

    fn simultaneous_close(setup: Setup) -> Sim {
        let mut sim = setup.default_sim();
        sim.client().send(Message::text("last words")).unwrap();
        sim.client().close(Some(cf(1000, "c"))).unwrap();
        sim.server().close(Some(cf(1001, "s"))).unwrap();
        sim.run();
        sim
    }

    fn protocol_error(setup: Setup) -> Sim {
        let mut sim = setup.default_sim();
        sim.client().send(Message::text("before")).unwrap();
        sim.run();
        sim.inject(Server, &server_frame(OpCode::Text, true, b"ok \xF5 bad"));
        sim
    }

    fn eof_mid_frame(setup: Setup) -> Sim {
        let mut sim = setup.default_sim();
        sim.hold(Server);
        sim.server().send(Message::binary(pattern(5000))).unwrap();
        sim.run();
        sim.release_bytes(Server, 2500);
        sim.cut(Server);
        sim
    }

    fn streaming_eof_mid_frame(setup: Setup) -> Sim {
        let cfg = config(|c| c.streaming = true);
        let mut sim = setup.sim(cfg.clone(), cfg);
        sim.hold(Client);
        sim.client()
            .send(Message::text("ü".repeat(2000).as_str()))
            .unwrap();
        sim.run();
        // stop inside a code point: the held-back half must not leak out
        sim.release_bytes(Client, 2 + 2 + 4 + 1001);
        sim.cut(Client);
        sim
    }

    fn keepalive_timeout(setup: Setup) -> Sim {
        let mut sim = setup.sim(Config::default(), keepalive(secs(30), secs(10)));
        sim.hold(Client);
        sim.advance(secs(60));
        sim
    }

    fn close_timeout(setup: Setup) -> Sim {
        let mut sim = setup.default_sim();
        sim.hold(Server);
        sim.server().close(None).unwrap();
        sim.advance(secs(30));
        sim.release(Server);
        sim
    }

    #[test]
    fn every_scenario_gives_the_same_outcome_under_every_split() {
        let scenarios: [(&str, Scenario); 8] = [
            ("messages then close", messages_then_close),
            ("streaming with pings", streaming_with_pings),
            ("simultaneous close", simultaneous_close),
            ("protocol error", protocol_error),
            ("eof mid frame", eof_mid_frame),
            ("streaming eof mid frame", streaming_eof_mid_frame),
            ("keepalive timeout", keepalive_timeout),
            ("close timeout", close_timeout),
        ];
        let more = [
            Chunking::Fixed(2),
            Chunking::Seeded(7),
            Chunking::Seeded(12345),
        ];
        for (name, scenario) in scenarios {
            let reference = scenario(Setup {
                split: Chunking::Whole,
                via_buffer: false,
            });
            reference.assert_ended_once();
            let want = outcome(&reference);
            for split in SPLITS.iter().chain(more.iter()) {
                for via_buffer in [false, true] {
                    let setup = Setup {
                        split: *split,
                        via_buffer,
                    };
                    let sim = scenario(setup);
                    sim.assert_ended_once();
                    assert_eq!(outcome(&sim), want, "{name} under {setup:?}");
                }
            }
        }
    }
}

/// `poll_event_ref`: single-frame messages lent from the input in place,
/// everything else lent from the connection, the same events and errors
/// as `poll_event`.
mod lend {
    use super::*;
    use crate::connection::EventRef;
    use crate::message::MessageRef;

    fn server() -> Connection {
        Connection::server(Config::default())
    }

    fn text(s: &str) -> Vec<u8> {
        client_frame(OpCode::Text, true, s.as_bytes())
    }

    fn binary(b: &[u8]) -> Vec<u8> {
        client_frame(OpCode::Binary, true, b)
    }

    /// The next event is `want`, lent.
    #[track_caller]
    fn expect_lent(conn: &mut Connection, want: MessageRef<'_>) {
        assert_eq!(
            conn.poll_event_ref().unwrap(),
            Some(EventRef::Message(want))
        );
    }

    #[test]
    fn a_lent_message_then_more_input_then_the_next() {
        let mut conn = server();
        conn.receive(&text("first"));
        expect_lent(&mut conn, MessageRef::Text("first"));
        conn.receive(&binary(&[1, 2, 3]));
        expect_lent(&mut conn, MessageRef::Binary(&[1, 2, 3]));
        assert_eq!(conn.poll_event_ref().unwrap(), None);
        assert_eq!(conn.buffered_input(), 0);
    }

    #[test]
    fn consumed_bytes_are_not_buffered_input() {
        let mut conn = server();
        let (a, b) = (text("hello"), binary(&[9; 40]));
        let mut input = a.clone();
        input.extend_from_slice(&b);
        conn.receive(&input);
        // (a header already parsed on receipt no longer counts)
        assert!(conn.buffered_input() > b.len());
        assert!(conn.poll_event_ref().unwrap().is_some());
        let left = conn.buffered_input();
        assert!(left > 0 && left <= b.len(), "{left}");
        assert!(conn.poll_event_ref().unwrap().is_some());
        assert_eq!(conn.buffered_input(), 0);
    }

    #[test]
    fn mixing_both_calls_keeps_the_order() {
        let mut conn = server();
        let mut input = Vec::new();
        for i in 0..6u8 {
            input.extend_from_slice(&binary(&[i; 3]));
        }
        conn.receive(&input);
        for i in 0..6u8 {
            if i % 2 == 0 {
                let ev = conn.poll_event_ref().unwrap().unwrap();
                assert_eq!(ev, EventRef::Message(MessageRef::Binary(&[i; 3])));
            } else {
                let ev = conn.poll_event().unwrap().unwrap();
                assert_eq!(ev, Event::Message(Message::binary(vec![i; 3])));
            }
        }
        assert_eq!(conn.poll_event().unwrap(), None);
    }

    #[test]
    fn large_single_frame_messages_are_unmasked_in_place() {
        for len in [4096, 5000, 65_536, 200_000] {
            let payload = pattern(len);
            let mut conn = server();
            // in pieces, so part of the frame is buffered before the rest
            let wire = binary(&payload);
            let (a, b) = wire.split_at(wire.len() / 3);
            conn.receive(a);
            assert_eq!(conn.poll_event_ref().unwrap(), None);
            conn.receive(b);
            match conn.poll_event_ref().unwrap() {
                Some(EventRef::Message(MessageRef::Binary(got))) => {
                    assert_eq!(got, &payload[..], "len {len}")
                }
                other => panic!("len {len}: {other:?}"),
            }
            assert_eq!(conn.poll_event_ref().unwrap(), None);
        }
    }

    #[test]
    fn fragmented_messages_and_control_frames_are_lent_too() {
        let mut conn = server();
        let mut input = client_frame(OpCode::Text, false, "frag".as_bytes());
        input.extend_from_slice(&client_frame(OpCode::Ping, true, b"are you there"));
        input.extend_from_slice(&client_frame(
            OpCode::Continuation,
            true,
            "mented ✓".as_bytes(),
        ));
        conn.receive(&input);
        assert_eq!(
            conn.poll_event_ref().unwrap(),
            Some(EventRef::Ping(b"are you there"))
        );
        expect_lent(&mut conn, MessageRef::Text("fragmented ✓"));
        assert_eq!(conn.poll_event_ref().unwrap(), None);
    }

    #[test]
    fn invalid_utf8_fails_alike_and_stays_failed() {
        for size in [5, 300, 5000] {
            let mut bad = vec![b'a'; size];
            bad[size - 2] = 0xff;
            let wire = client_frame(OpCode::Text, true, &bad);
            let mut by_ref = server();
            let mut owned = server();
            by_ref.receive(&wire);
            owned.receive(&wire);
            let e = by_ref.poll_event_ref().unwrap_err();
            assert_eq!(e, owned.poll_event().unwrap_err(), "size {size}");
            assert_eq!(e.close_code(), Some(crate::CloseCode::INVALID_DATA));
            // sticky, whichever call comes next
            assert_eq!(by_ref.poll_event().unwrap_err(), e);
            assert_eq!(by_ref.poll_event_ref().unwrap_err(), e);
            // and the close frame went out the same
            assert_eq!(by_ref.pending_output(), owned.pending_output());
            assert!(by_ref.pending_output() > 0);
        }
    }

    #[test]
    fn input_appended_in_place_after_a_lend_is_read_next() {
        let mut conn = server();
        conn.receive(&text("one"));
        expect_lent(&mut conn, MessageRef::Text("one"));
        conn.input_buffer().extend_from_slice(&text("two"));
        expect_lent(&mut conn, MessageRef::Text("two"));
        conn.input_buffer().extend_from_slice(&binary(b"three"));
        assert_eq!(
            conn.poll_event().unwrap(),
            Some(Event::Message(Message::binary(&b"three"[..])))
        );
    }
}

/// A client payload nothing else holds is masked in place (its header a
/// chunk of its own); the wire is the same as for a shared payload.
mod owned_payloads {
    use super::*;

    fn wire(m: Message) -> Vec<Bytes> {
        let mut client = Connection::client_with_masks(Config::default(), test_masks(7));
        client.send(m).unwrap();
        core::iter::from_fn(|| client.poll_transmit()).collect()
    }

    #[test]
    fn owned_and_shared_payloads_give_the_same_frame() {
        for len in [257, 300, 4096, 70_000] {
            let payload = pattern(len);
            let shared = payload.clone();
            let held = wire(Message::Binary(shared));
            let owned = wire(Message::binary(payload.to_vec()));
            assert_eq!(held.concat(), owned.concat(), "len {len}");
            // in place: the payload goes out as its own chunk
            assert_eq!(owned.len(), 2, "len {len}");
            assert_eq!(owned[1].len(), len);
            // and the server reads back the payload
            let mut server = Connection::server(Config::default());
            server.receive(&owned.concat());
            assert_eq!(
                server.poll_event().unwrap(),
                Some(Event::Message(Message::Binary(payload.clone())))
            );
            // the caller's other handle never saw the mask
            assert_eq!(payload, pattern(len));
        }
    }

    /// Shared payloads are masked into a buffer the client takes back once
    /// the last frame is dropped: a frame still held is never written over,
    /// and each frame reads back as its own payload.
    #[test]
    fn held_frames_are_not_reused() {
        let mut client = Connection::client_with_masks(Config::default(), test_masks(3));
        let mut server = Connection::server(Config::default());
        for len in [300, 16 << 10, 64 << 10, 70_000] {
            let a = pattern(len);
            let b = Bytes::from(a.iter().map(|x| !x).collect::<Vec<u8>>());
            client.send(Message::Binary(a.clone())).unwrap();
            let held: Vec<Bytes> = core::iter::from_fn(|| client.poll_transmit()).collect();
            let before = held.concat();
            // sent while the first frame is held, then again after it is gone
            client.send(Message::Binary(b.clone())).unwrap();
            let second: Vec<Bytes> = core::iter::from_fn(|| client.poll_transmit()).collect();
            assert_eq!(held.concat(), before, "len {len}: a held frame changed");
            server.receive(&before);
            server.receive(&second.concat());
            drop((held, second));
            client.send(Message::Binary(a.clone())).unwrap();
            let third: Vec<u8> = core::iter::from_fn(|| client.poll_transmit())
                .flat_map(|c| c.to_vec())
                .collect();
            server.receive(&third);
            for want in [&a, &b, &a] {
                assert_eq!(
                    server.poll_event().unwrap(),
                    Some(Event::Message(Message::Binary(want.clone()))),
                    "len {len}"
                );
            }
        }
    }
}

mod borrowed_payloads {
    use super::*;
    use crate::MessageRef;
    use alloc::string::String;

    fn sender(role: Role, config: Config) -> Connection {
        match role {
            Role::Client => Connection::client_with_masks(config, test_masks(11)),
            Role::Server => Connection::server(config),
        }
    }

    /// `send_ref` writes the same bytes as `send` (with the same keys), at
    /// every header length and on both sides of the coalescing and reuse
    /// thresholds, and a frame still held is not written over by the next.
    #[test]
    fn borrowed_and_owned_messages_give_the_same_wire() {
        let lens = [
            0,
            5,
            125,
            126,
            248,
            249,
            250,
            300,
            16 << 10,
            65_521,
            64 << 10,
            70_000,
        ];
        for role in [Role::Client, Role::Server] {
            let mut by_ref = sender(role, Config::default());
            let mut by_value = sender(role, Config::default());
            let mut held = Vec::new();
            for len in lens {
                let payload = pattern(len);
                let text: String = (0..len)
                    .map(|i| char::from(b'a' + (i % 26) as u8))
                    .collect();
                for (r, v) in [
                    (
                        MessageRef::Binary(&payload),
                        Message::Binary(payload.clone()),
                    ),
                    (MessageRef::Text(&text), Message::text(text.clone())),
                ] {
                    by_ref.send_ref(r).unwrap();
                    let got: Vec<Bytes> = core::iter::from_fn(|| by_ref.poll_transmit()).collect();
                    by_value.send(v).unwrap();
                    let want: Vec<u8> = core::iter::from_fn(|| by_value.poll_transmit())
                        .flat_map(|c| c.to_vec())
                        .collect();
                    assert_eq!(got.concat(), want, "{role:?} len {len}");
                    held.push((got.concat(), got));
                }
            }
            for (copy, chunks) in &held {
                assert_eq!(&chunks.concat(), copy, "{role:?}: a held frame changed");
            }
        }
    }

    /// The peer reads back every borrowed message, text and binary.
    #[test]
    fn the_peer_reads_borrowed_messages_back() {
        for (role, peer) in [(Role::Client, Role::Server), (Role::Server, Role::Client)] {
            let mut from = sender(role, Config::default());
            let mut to = sender(peer, Config::default());
            for len in [0, 100, 300, 20_000, 70_000] {
                let text = "é".repeat(len / 2);
                let bin = pattern(len);
                from.send_ref(MessageRef::Text(&text)).unwrap();
                from.send_ref(MessageRef::Binary(&bin)).unwrap();
                while let Some(c) = from.poll_transmit() {
                    to.receive(&c);
                }
                assert_eq!(
                    to.poll_event().unwrap(),
                    Some(Event::Message(Message::text(text.clone())))
                );
                assert_eq!(
                    to.poll_event().unwrap(),
                    Some(Event::Message(Message::Binary(bin)))
                );
            }
        }
    }

    /// Refused the way `send` is, with the borrowed message given back.
    #[test]
    fn refusals_give_the_message_back() {
        let m = MessageRef::Text("late");
        // a fragmented message in progress
        let mut conn = sender(Role::Client, Config::default());
        conn.send_fragment(MessageKind::Binary, bytes(b"ab"), false)
            .unwrap();
        let e = conn.send_ref(m).unwrap_err();
        assert_eq!(e.error, Error::Misuse(ApiMisuse::MessageInProgress));
        assert_eq!(e.into_inner(), m);
        // the queue is full
        let mut config = Config::default();
        config.limits.max_outbound = 1000;
        let mut conn = sender(Role::Server, config);
        conn.send_ref(MessageRef::Binary(&[1; 995])).unwrap();
        let e = conn.send_ref(m).unwrap_err();
        assert!(e.is_queue_full());
        assert_eq!(e.value, m);
        assert_eq!(conn.pending_output(), 999, "nothing was queued");
        // after the close
        conn.close(None).unwrap();
        assert_not_open(conn.send_ref(m), m);
    }
}
