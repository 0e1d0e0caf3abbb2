//! Property tests of two `Connection`s talking to each other, in both
//! directions: chunking and fragmentation never change what is delivered,
//! streaming mode hands out valid pieces, and invalid UTF-8 fails fast.

mod common;

use bytes::Bytes;
use proptest::prelude::*;
use wsproto::frame::OpCode;
use wsproto::{
    CloseCode, CloseFrame, CloseReason, Config, Connection, Error, Event, Initiator, Message,
    MessageKind, MessageRef, ProtocolError, Role,
};

use common::{drain, endpoint, frame, sole_close_code};

// ---------------------------------------------------------------- strategies

#[derive(Debug, Clone)]
enum Op {
    /// `send` of a whole message.
    Whole(Message),
    /// `send_fragment` of the message cut at `cuts` (byte offsets, possibly
    /// inside a code point, possibly giving empty fragments), with a ping
    /// after fragment `i` when `pings[i]`.
    Fragmented {
        msg: Message,
        cuts: Vec<prop::sample::Index>,
        pings: Vec<bool>,
    },
    /// A ping.
    Ping(Vec<u8>),
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        "[ -~]{0,40}",
        prop::collection::vec(any::<char>(), 0..30).prop_map(|v| v.into_iter().collect()),
        prop::collection::vec(
            prop::sample::select(&['a', 'é', '€', '𝄞', '😀', '\u{10FFFF}', '\u{80}'][..]),
            0..60
        )
        .prop_map(|v| v.into_iter().collect()),
        // long enough for the 16-bit length encoding
        (120usize..200, any::<char>()).prop_map(|(n, c)| {
            let mut s = "x".repeat(n);
            s.push(c);
            s
        }),
    ]
}

fn message() -> impl Strategy<Value = Message> {
    prop_oneof![
        3 => text().prop_map(Message::text),
        2 => prop::collection::vec(any::<u8>(), 0..200).prop_map(Message::binary),
        // large enough to be unmasked while buffered behind another frame
        1 => prop::collection::vec(any::<u8>(), 250..1500).prop_map(Message::binary),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => message().prop_map(Op::Whole),
        3 => (
            message(),
            prop::collection::vec(any::<prop::sample::Index>(), 0..5),
            prop::collection::vec(any::<bool>(), 0..6),
        )
            .prop_map(|(msg, cuts, pings)| Op::Fragmented { msg, cuts, pings }),
        1 => prop::collection::vec(any::<u8>(), 0..=125).prop_map(Op::Ping),
    ]
}

#[derive(Debug, Clone)]
enum Chunking {
    Whole,
    Bytewise,
    Sizes(Vec<usize>),
}

fn chunking() -> impl Strategy<Value = Chunking> {
    prop_oneof![
        1 => Just(Chunking::Whole),
        1 => Just(Chunking::Bytewise),
        3 => prop::collection::vec(1usize..80, 1..20).prop_map(Chunking::Sizes),
        1 => prop::collection::vec(1usize..4000, 1..5).prop_map(Chunking::Sizes),
        1 => prop::collection::vec(prop::sample::select(&[1usize, 2, 3, 5, 7, 13][..]), 1..10)
            .prop_map(Chunking::Sizes),
    ]
}

/// Cut `wire` into chunks as `chunking` says: returns the end offsets.
fn chunk_ends(len: usize, chunking: &Chunking) -> Vec<usize> {
    let mut ends = Vec::new();
    let mut pos = 0;
    let mut i = 0;
    while pos < len {
        let step = match chunking {
            Chunking::Whole => len,
            Chunking::Bytewise => 1,
            Chunking::Sizes(s) => s[i % s.len()],
        };
        pos = (pos + step).min(len);
        ends.push(pos);
        i += 1;
    }
    ends
}

fn role() -> impl Strategy<Value = Role> {
    prop::sample::select(&[Role::Client, Role::Server][..])
}

// ------------------------------------------------------------------ helpers

fn cut_points(len: usize, cuts: &[prop::sample::Index]) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c.index(len + 1)).collect();
    points.sort_unstable();
    let mut all = vec![0];
    all.extend(points);
    all.push(len);
    all
}

/// Run `ops` (and an optional close) through `sender`; returns the wire bytes
/// and the events a receiver in reassembly mode must report for them.
fn send_ops(
    sender: &mut Connection,
    ops: &[Op],
    close: Option<&CloseFrame>,
) -> (Vec<u8>, Vec<Event>) {
    let mut expected = Vec::new();
    for (n, op) in ops.iter().enumerate() {
        match op {
            Op::Whole(msg) => {
                sender.send(msg.clone()).expect("send accepted");
                expected.push(Event::Message(msg.clone()));
            }
            Op::Fragmented { msg, cuts, pings } => {
                let bytes = msg.clone().into_bytes();
                let points = cut_points(bytes.len(), cuts);
                let pieces = points.len() - 1;
                for i in 0..pieces {
                    let fin = i + 1 == pieces;
                    let piece = bytes.slice(points[i]..points[i + 1]);
                    sender
                        .send_fragment(msg.kind(), piece, fin)
                        .expect("fragment accepted");
                    if fin {
                        expected.push(Event::Message(msg.clone()));
                    }
                    if pings.get(i).copied().unwrap_or(false) {
                        let payload = Bytes::from(format!("op{n}-ping{i}"));
                        sender.ping(payload.clone()).expect("ping accepted");
                        expected.push(Event::Ping(payload));
                    }
                }
            }
            Op::Ping(p) => {
                let payload = Bytes::from(p.clone());
                sender.ping(payload.clone()).expect("ping accepted");
                expected.push(Event::Ping(payload));
            }
        }
    }
    if let Some(frame) = close {
        sender.close(Some(frame.clone())).expect("close accepted");
        expected.push(Event::Closed(CloseReason::Clean {
            initiator: Initiator::Peer,
            peer_frame: Some(frame.clone()),
        }));
    }
    (drain(sender), expected)
}

/// Feed `wire` in the given chunks, polling every event after each chunk.
/// Returns the events, or the error with the index of the chunk that caused
/// it.
fn feed(
    receiver: &mut Connection,
    wire: &[u8],
    chunking: &Chunking,
) -> Result<Vec<Event>, (usize, Error, Vec<Event>)> {
    feed_with(receiver, wire, chunking, Reader::Owned)
}

/// How events are read: owned (`poll_event`), borrowed (`poll_event_ref`,
/// messages read in place), or alternating between the two.
#[derive(Debug, Clone, Copy)]
enum Reader {
    Owned,
    Borrowed,
    Alternating,
}

fn reader() -> impl Strategy<Value = Reader> {
    prop_oneof![
        Just(Reader::Owned),
        Just(Reader::Borrowed),
        Just(Reader::Alternating)
    ]
}

/// The next event as `reader` reads it (the `n`th of the run), owned.
fn next_event(receiver: &mut Connection, reader: Reader, n: usize) -> Result<Option<Event>, Error> {
    let borrowed = match reader {
        Reader::Owned => false,
        Reader::Borrowed => true,
        Reader::Alternating => n % 2 == 1,
    };
    if borrowed {
        Ok(receiver.poll_event_ref()?.map(|ev| ev.to_event()))
    } else {
        receiver.poll_event()
    }
}

/// `feed`, reading events as `reader` says.
fn feed_with(
    receiver: &mut Connection,
    wire: &[u8],
    chunking: &Chunking,
    reader: Reader,
) -> Result<Vec<Event>, (usize, Error, Vec<Event>)> {
    let mut events = Vec::new();
    let mut start = 0;
    let mut calls = 0;
    for (i, end) in chunk_ends(wire.len(), chunking).into_iter().enumerate() {
        receiver.receive(&wire[start..end]);
        start = end;
        loop {
            calls += 1;
            match next_event(receiver, reader, calls) {
                Ok(Some(ev)) => events.push(ev),
                Ok(None) => break,
                Err(e) => return Err((i, e, events)),
            }
        }
    }
    Ok(events)
}

fn close_frame() -> impl Strategy<Value = Option<CloseFrame>> {
    prop::option::of(
        (prop_oneof![1000u16..=1003, 3000u16..=4999], "[a-zé]{0,20}")
            .prop_map(|(c, r)| CloseFrame::new(c, r.as_str())),
    )
}

fn streaming_config() -> Config {
    let mut config = Config::default();
    config.streaming = true;
    config
}

/// Messages around the sizes where the receive path changes: the one-step
/// path for small whole frames (under 4 KiB), `Config::min_zero_copy`'s
/// default (4 KiB), the 16-bit and 64-bit length encodings.
fn sized_message() -> impl Strategy<Value = Message> {
    let len = prop_oneof![0usize..8, 120usize..130, 4090usize..4100, 65530usize..65540];
    (len, any::<u8>(), any::<bool>()).prop_map(|(n, b, text)| {
        if text {
            Message::text("é".repeat(n / 2) + &"x".repeat(n % 2))
        } else {
            Message::binary(vec![b; n])
        }
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// (a'') Sharing the input buffer or copying out (`min_zero_copy`) never
    /// changes what is delivered, for messages sent whole or fragmented and
    /// fed in any chunks.
    #[test]
    fn min_zero_copy_never_changes_the_messages(
        sender_role in role(),
        msgs in prop::collection::vec(
            (sized_message(), prop::option::of(prop::collection::vec(any::<prop::sample::Index>(), 1..4))),
            1..6,
        ),
        chunking in chunking(),
        reader in reader(),
    ) {
        let ops: Vec<Op> = msgs
            .into_iter()
            .map(|(msg, cuts)| match cuts {
                None => Op::Whole(msg),
                Some(cuts) => Op::Fragmented { msg, cuts, pings: vec![true] },
            })
            .collect();
        let mut sender = endpoint(sender_role, Config::default());
        let (wire, expected) = send_ops(&mut sender, &ops, None);
        for min_zero_copy in [0, 1, 4096, usize::MAX] {
            let mut config = Config::default();
            config.min_zero_copy = min_zero_copy;
            let mut receiver = endpoint(sender_role.peer(), config);
            let events = feed_with(&mut receiver, &wire, &chunking, reader).expect("valid stream");
            prop_assert_eq!(&events, &expected, "min_zero_copy {}", min_zero_copy);
        }
    }

    /// A message sent borrowed (`send_ref`) goes out as the same bytes as
    /// the message sent owned (the same keys), however many are sent in a
    /// row with frames held, and the peer reads each back, in any chunks.
    #[test]
    fn borrowed_sends_equal_owned_sends(
        sender_role in role(),
        msgs in prop::collection::vec(sized_message(), 1..6),
        chunking in chunking(),
        reader in reader(),
    ) {
        let mut by_ref = endpoint(sender_role, Config::default());
        let mut by_value = endpoint(sender_role, Config::default());
        let mut held = Vec::new();
        for m in &msgs {
            by_ref.send_ref(MessageRef::from(m)).unwrap();
            held.extend(std::iter::from_fn(|| by_ref.poll_transmit()));
            by_value.send(m.clone()).unwrap();
        }
        let wire = held.concat();
        prop_assert_eq!(&wire, &drain(&mut by_value));
        let mut receiver = endpoint(sender_role.peer(), Config::default());
        let events = feed_with(&mut receiver, &wire, &chunking, reader).expect("valid stream");
        let expected: Vec<Event> = msgs.into_iter().map(Event::Message).collect();
        prop_assert_eq!(events, expected);
    }

    /// (a) Any split of the input gives the same events (reassembly mode),
    /// read owned or borrowed.
    #[test]
    fn any_split_gives_the_same_events(
        sender_role in role(),
        ops in prop::collection::vec(op(), 1..8),
        close in close_frame(),
        chunking in chunking(),
        reader in reader(),
    ) {
        let mut sender = endpoint(sender_role, Config::default());
        let (wire, _) = send_ops(&mut sender, &ops, close.as_ref());

        let mut at_once = endpoint(sender_role.peer(), Config::default());
        let whole = feed(&mut at_once, &wire, &Chunking::Whole).expect("valid stream");
        let mut chunked = endpoint(sender_role.peer(), Config::default());
        let pieces = feed_with(&mut chunked, &wire, &chunking, reader).expect("valid stream");
        prop_assert_eq!(&pieces, &whole);
        // and the peers end up answering the same way (pongs, close reply)
        prop_assert_eq!(drain(&mut chunked), drain(&mut at_once));
    }

    /// (b) The received messages are exactly the sent ones whatever the
    /// fragmentation (and pings interleaved between fragments arrive in
    /// order).
    #[test]
    fn any_fragmentation_gives_the_same_message(
        sender_role in role(),
        ops in prop::collection::vec(op(), 1..8),
        close in close_frame(),
    ) {
        let mut sender = endpoint(sender_role, Config::default());
        let (wire, expected) = send_ops(&mut sender, &ops, close.as_ref());
        let mut receiver = endpoint(sender_role.peer(), Config::default());
        let events = feed(&mut receiver, &wire, &Chunking::Whole).expect("valid stream");
        prop_assert_eq!(events, expected);
    }

    /// (b') One message, fragmented arbitrarily, equals the same message sent
    /// whole.
    #[test]
    fn fragmented_equals_whole(
        sender_role in role(),
        msg in message(),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 1..10),
        chunking in chunking(),
    ) {
        let mut sender = endpoint(sender_role, Config::default());
        let (wire, _) = send_ops(&mut sender, &[Op::Fragmented { msg: msg.clone(), cuts, pings: vec![] }], None);
        let mut receiver = endpoint(sender_role.peer(), Config::default());
        let events = feed(&mut receiver, &wire, &chunking).expect("valid stream");
        prop_assert_eq!(events, vec![Event::Message(msg)]);
    }

    /// (c) Streaming mode: the pieces of each message concatenate to the sent
    /// message, each text piece is UTF-8 on its own (even when the sender
    /// split code points between fragments and the transport split them
    /// between reads), and `fin` is set exactly on the last piece.
    #[test]
    fn streaming_pieces_reassemble_to_the_message(
        sender_role in role(),
        ops in prop::collection::vec(op(), 1..8),
        chunking in chunking(),
        reader in reader(),
    ) {
        let mut sender = endpoint(sender_role, Config::default());
        let (wire, expected) = send_ops(&mut sender, &ops, None);
        let mut receiver = endpoint(sender_role.peer(), streaming_config());
        let events = feed_with(&mut receiver, &wire, &chunking, reader).expect("valid stream");

        let mut rebuilt = Vec::new();
        let mut current: Option<(MessageKind, Vec<u8>)> = None;
        for ev in events {
            match ev {
                Event::Fragment { kind, data, fin } => {
                    if kind == MessageKind::Text {
                        prop_assert!(
                            std::str::from_utf8(&data).is_ok(),
                            "text piece is not UTF-8 on its own: {:02x?}", &data[..]
                        );
                    }
                    let (k, buf) = current.get_or_insert_with(|| (kind, Vec::new()));
                    prop_assert_eq!(*k, kind, "kind changed inside a message");
                    buf.extend_from_slice(&data);
                    if fin {
                        let (k, buf) = current.take().unwrap();
                        rebuilt.push(Event::Message(match k {
                            MessageKind::Text => Message::text(String::from_utf8(buf).unwrap()),
                            MessageKind::Binary => Message::binary(buf),
                        }));
                    }
                }
                Event::Message(_) => prop_assert!(false, "Message event in streaming mode"),
                other => rebuilt.push(other),
            }
        }
        prop_assert!(current.is_none(), "the last message never got fin");
        // Pings between fragments are delivered as they arrive, possibly
        // before the message's last piece: compare messages and pings apart.
        let split = |evs: &[Event]| -> (Vec<Event>, Vec<Event>) {
            evs.iter().cloned().partition(|e| matches!(e, Event::Message(_)))
        };
        let (got_msgs, got_pings) = split(&rebuilt);
        let (want_msgs, want_pings) = split(&expected);
        prop_assert_eq!(got_msgs, want_msgs);
        prop_assert_eq!(got_pings, want_pings);
    }

    /// (d) Invalid UTF-8 anywhere in a text message fails the connection with
    /// 1007 on the very chunk that carries the first impossible byte (or the
    /// end of the message when the text is only truncated), however the
    /// message is fragmented and the bytes are split.
    #[test]
    fn invalid_utf8_fails_fast_with_1007(
        receiver_role in role(),
        streaming in any::<bool>(),
        prefix in text(),
        bad in prop::sample::select(BAD_SEQUENCES),
        suffix in prop_oneof!["", text()],
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        chunking in chunking(),
        reader in reader(),
    ) {
        let mut payload = prefix.into_bytes();
        payload.extend_from_slice(bad);
        payload.extend_from_slice(suffix.as_bytes());
        prop_assert!(std::str::from_utf8(&payload).is_err());
        let first_bad = first_impossible_byte(&payload);

        // Build the frames by hand (send_fragment refuses invalid text),
        // remembering where the first impossible byte lands on the wire.
        let sender = receiver_role.peer();
        let points = cut_points(payload.len(), &cuts);
        let mut wire = Vec::new();
        let mut fail_at = None;
        for (i, w) in points.windows(2).enumerate() {
            let opcode = if i == 0 { OpCode::Text } else { OpCode::Continuation };
            let fin = i + 2 == points.len();
            let f = frame(sender, opcode, fin, &payload[w[0]..w[1]]);
            let header_len = f.len() - (w[1] - w[0]);
            if let Some(k) = first_bad {
                if (w[0]..w[1]).contains(&k) {
                    fail_at = Some(wire.len() + header_len + (k - w[0]));
                }
            }
            wire.extend_from_slice(&f);
        }
        // truncated at the end: detectable only when the message ends
        let fail_at = fail_at.unwrap_or(wire.len() - 1);
        let ends = chunk_ends(wire.len(), &chunking);
        let fail_chunk = ends.iter().position(|&e| e > fail_at).unwrap();

        let config = if streaming { streaming_config() } else { Config::default() };
        let mut receiver = endpoint(receiver_role, config);
        match feed_with(&mut receiver, &wire, &chunking, reader) {
            Ok(events) => prop_assert!(false, "invalid text accepted: {:?}", events),
            Err((chunk, err, events)) => {
                prop_assert_eq!(chunk, fail_chunk, "failed on chunk {} instead of {}", chunk, fail_chunk);
                prop_assert_eq!(&err, &Error::Protocol(ProtocolError::InvalidUtf8));
                prop_assert_eq!(err.close_code(), Some(CloseCode::INVALID_DATA));
                // whatever was handed out before is valid text from the start
                // of the message
                let mut delivered = Vec::new();
                for ev in events {
                    match ev {
                        Event::Fragment { kind: MessageKind::Text, data, fin: false } => {
                            prop_assert!(std::str::from_utf8(&data).is_ok());
                            delivered.extend_from_slice(&data);
                        }
                        other => prop_assert!(false, "unexpected event {:?}", other),
                    }
                }
                prop_assert!(payload.starts_with(&delivered));
                prop_assert_eq!(receiver.poll_event(), Err(err));
                prop_assert_eq!(sole_close_code(&drain(&mut receiver), receiver_role), 1007);
            }
        }
    }
}

/// Byte sequences that make the text invalid, either at once or (the
/// truncated ones) depending on what follows.
const BAD_SEQUENCES: &[&[u8]] = &[
    &[0xFF],
    &[0xFE],
    &[0x80],
    &[0xBF],
    &[0xC0, 0x80],
    &[0xC1, 0xBF],
    &[0xE0, 0x80, 0x80],
    &[0xED, 0xA0, 0x80],
    &[0xF4, 0x90, 0x80, 0x80],
    &[0xF5, 0x80, 0x80, 0x80],
    &[0xE2, 0x82, 0x41],
    &[
        0xCE, 0xBA, 0xE1, 0xBD, 0xB9, 0xCF, 0x83, 0xCE, 0xBC, 0xCE, 0xB5, 0xED, 0xA0, 0x80,
    ],
    // truncated code points: invalid at the next byte, or at the end
    &[0xE2, 0x82],
    &[0xF0, 0x9F, 0x98],
    &[0xC3],
];

/// The index of the first byte after which `data[..=k]` can no longer be the
/// start of valid UTF-8, by std's own verdict.
fn first_impossible_byte(data: &[u8]) -> Option<usize> {
    (0..data.len())
        .find(|&k| matches!(std::str::from_utf8(&data[..=k]), Err(e) if e.error_len().is_some()))
}

// ------------------------------------------- arbitrary (often invalid) input

/// One frame described field by field, so that it may break any rule.
#[derive(Debug, Clone)]
struct RawFrame {
    opcode: u8,
    fin: bool,
    rsv: u8,
    /// Flip the masking bit relative to what the sender's role requires.
    wrong_mask: bool,
    len_encoding: LenEncoding,
    payload: Vec<u8>,
}

#[derive(Debug, Clone, Copy)]
enum LenEncoding {
    Minimal,
    Force16,
    Force64,
    Msb64,
}

fn raw_frame() -> impl Strategy<Value = RawFrame> {
    let opcode = prop_oneof![
        6 => prop::sample::select(&[0u8, 1, 2][..]),
        3 => prop::sample::select(&[8u8, 9, 10][..]),
        1 => 0u8..16,
    ];
    let payload = prop_oneof![
        3 => text().prop_map(String::into_bytes),
        2 => prop::collection::vec(any::<u8>(), 0..40),
        1 => (prop_oneof![Just(1000u16), Just(1005u16), 900u16..5100], "[a-z]{0,5}").prop_map(
            |(code, reason)| {
                let mut p = code.to_be_bytes().to_vec();
                p.extend_from_slice(reason.as_bytes());
                p
            }
        ),
        1 => prop::collection::vec(Just(b'p'), 120..140),
    ];
    let len_encoding = prop_oneof![
        20 => Just(LenEncoding::Minimal),
        1 => Just(LenEncoding::Force16),
        1 => Just(LenEncoding::Force64),
        1 => Just(LenEncoding::Msb64),
    ];
    (
        opcode,
        prop::bool::weighted(0.7),
        prop::sample::select(&[0u8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 1][..]),
        prop::bool::weighted(0.05),
        len_encoding,
        payload,
    )
        .prop_map(
            |(opcode, fin, rsv, wrong_mask, len_encoding, payload)| RawFrame {
                opcode,
                fin,
                rsv,
                wrong_mask,
                len_encoding,
                payload,
            },
        )
}

fn encode_raw(f: &RawFrame, sender: Role, key: [u8; 4]) -> Vec<u8> {
    let masked = (sender == Role::Client) != f.wrong_mask;
    let len = f.payload.len() as u64;
    let mut w = vec![(f.fin as u8) << 7 | (f.rsv & 7) << 4 | (f.opcode & 0xF)];
    let mask_bit = if masked { 0x80 } else { 0 };
    match f.len_encoding {
        LenEncoding::Minimal if len < 126 => w.push(mask_bit | len as u8),
        LenEncoding::Minimal | LenEncoding::Force16 if len <= 0xFFFF => {
            w.push(mask_bit | 126);
            w.extend_from_slice(&(len as u16).to_be_bytes());
        }
        LenEncoding::Msb64 => {
            w.push(mask_bit | 127);
            w.extend_from_slice(&(len | 1 << 63).to_be_bytes());
        }
        _ => {
            w.push(mask_bit | 127);
            w.extend_from_slice(&len.to_be_bytes());
        }
    }
    let mut payload = f.payload.clone();
    if masked {
        w.extend_from_slice(&key);
        wsproto::apply_mask(&mut payload, key, 0);
    }
    w.extend_from_slice(&payload);
    w
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    /// Any split of any byte stream, valid or not, gives the same events, the
    /// same error (if any) and the same bytes back on the wire, whether the
    /// events are read owned or borrowed, and never panics.
    #[test]
    fn any_split_of_any_stream_gives_the_same_outcome(
        receiver_role in role(),
        frames in prop::collection::vec(raw_frame(), 1..10),
        key in any::<[u8; 4]>(),
        chunking in chunking(),
        eof in any::<bool>(),
        reader in reader(),
    ) {
        let wire: Vec<u8> = frames.iter().flat_map(|f| encode_raw(f, receiver_role.peer(), key)).collect();
        let run = |chunking: &Chunking, reader: Reader| {
            let mut conn = endpoint(receiver_role, Config::default());
            let mut outcome = match feed_with(&mut conn, &wire, chunking, reader) {
                Ok(events) => (events, None),
                Err((_, e, events)) => (events, Some(e)),
            };
            if eof && outcome.1.is_none() {
                conn.receive_eof();
                match common::poll_all(&mut conn) {
                    Ok(evs) => outcome.0.extend(evs),
                    Err(e) => outcome.1 = Some(e),
                }
            }
            (outcome, drain(&mut conn), conn.state())
        };
        let whole = run(&Chunking::Whole, Reader::Owned);
        let split = run(&chunking, reader);
        prop_assert_eq!(&split, &whole);
        if let Some(err) = &whole.0 .1 {
            let code = err.close_code().expect("peer errors carry a close code");
            prop_assert!(code == CloseCode::PROTOCOL_ERROR || code == CloseCode::INVALID_DATA || code == CloseCode::TOO_BIG);
            prop_assert_eq!(sole_close_code(&whole.1, receiver_role), code.0);
        }
    }
}
