//! Messages survive the trip through two connections.
//!
//! An arbitrary list of text and binary messages, each sent whole (`send`,
//! or borrowed with `send_ref`) or
//! as arbitrary fragments (`send_fragment`, text cut anywhere, even inside a
//! code point), with pings interleaved between fragments, then a close. The
//! sender's wire bytes, concatenated, are fed in arbitrary chunk sizes to
//! the peer connection (reassembly mode, or streaming mode when the input
//! says so; payloads copied or zero-copy as `min_zero_copy` says). Done client → server, then server → client.
//!
//! Invariants:
//! * every command succeeds; the sender's output is a valid frame stream for
//!   the peer (see `WireChecker`) carrying exactly the messages sent;
//! * the receiver yields exactly the messages (or, streaming, fragments that
//!   concatenate to them, each text piece valid UTF-8) and pings, in order,
//!   then `Closed(Clean { Peer, frame })` with the sender's close frame;
//! * the receiver's answer (its pong and its close reply) fed back gives the
//!   sender a pong with the last ping's payload and `Closed(Clean { Local,
//!   .. })` echoing the code;
//! * afterwards neither side reports anything more, and both want their
//!   transport closed (the client once it sees EOF).
#![no_main]

use arbitrary::Arbitrary;
use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use wsproto::{
    CloseCode, CloseFrame, CloseReason, Config, Connection, Event, Initiator, Message, MessageKind,
    MessageRef, Role,
};
use wsproto_fuzz::{chunks, counter_masks, truncate_str, WireChecker};

#[derive(Arbitrary, Debug)]
struct MsgSpec {
    msg: Message,
    /// `None`: one `send`; `Some(cuts)`: fragments cut at these positions
    /// (modulo the length + 1).
    cuts: Option<Vec<u16>>,
    /// Bit i: a ping after fragment i (bit 0 for an unfragmented message:
    /// a ping before it).
    pings: u8,
}

#[derive(Arbitrary, Debug)]
struct Input {
    msgs: Vec<MsgSpec>,
    sizes: Vec<u8>,
    back_sizes: Vec<u8>,
    streaming: bool,
    /// Receiver's `min_zero_copy`: payloads copied or shared.
    zero_copy: u8,
    close: Option<(u8, String)>,
    mask_seed: u32,
}

#[derive(Debug, PartialEq)]
enum Expect {
    Msg(Message),
    Ping(Bytes),
}

fn endpoint(role: Role, config: Config, seed: u32) -> Connection {
    match role {
        Role::Client => Connection::client_with_masks(config, counter_masks(seed)),
        Role::Server => Connection::server(config),
    }
}

/// Drain every chunk of output.
fn output(c: &mut Connection) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(chunk) = c.poll_transmit() {
        out.extend_from_slice(&chunk);
    }
    assert_eq!(c.pending_output(), 0);
    out
}

/// Feed `wire` in chunks, collecting events; fragments are joined into
/// messages.
fn receive_all(c: &mut Connection, wire: &[u8], sizes: &[u8], streaming: bool) -> Vec<Event> {
    let mut events = Vec::new();
    let mut partial: Option<(MessageKind, Vec<u8>)> = None;
    for piece in chunks(sizes, wire) {
        c.receive(piece);
        loop {
            match c.poll_event() {
                Ok(None) => break,
                Ok(Some(Event::Fragment { kind, data, fin })) => {
                    assert!(streaming);
                    if kind == MessageKind::Text {
                        assert!(std::str::from_utf8(&data).is_ok(), "text piece not UTF-8");
                    }
                    let (k, buf) = partial.get_or_insert((kind, Vec::new()));
                    assert_eq!(*k, kind);
                    buf.extend_from_slice(&data);
                    if fin {
                        let (k, buf) = partial.take().expect("in progress");
                        events.push(Event::Message(match k {
                            MessageKind::Text => Message::text(
                                String::from_utf8(buf).expect("text message is UTF-8"),
                            ),
                            MessageKind::Binary => Message::binary(buf),
                        }));
                    }
                }
                Ok(Some(Event::Message(m))) => {
                    assert!(!streaming);
                    events.push(Event::Message(m));
                }
                Ok(Some(ev)) => events.push(ev),
                Err(e) => panic!("receiver failed on a valid stream: {e:?}"),
            }
        }
    }
    assert!(partial.is_none(), "a streamed message never finished");
    events
}

fn cut_points(len: usize, cuts: &[u16]) -> Vec<usize> {
    let mut v: Vec<usize> = cuts.iter().map(|&c| c as usize % (len + 1)).collect();
    v.sort_unstable();
    v
}

fn one_way(input: &Input, sender_role: Role) {
    let mut rx_config = Config::default();
    rx_config.streaming = input.streaming;
    rx_config.min_zero_copy = [0, 1, 4096][input.zero_copy as usize % 3];
    let mut tx = endpoint(sender_role, Config::default(), input.mask_seed);
    let mut rx = endpoint(sender_role.peer(), rx_config, input.mask_seed ^ 0x5555);

    let mut expect = Vec::new();
    let mut sent = Vec::new();
    // every ping sent; the receiver answers the latest 16 (older unsent
    // pongs are dropped, RFC 6455 §5.5.3)
    let mut pings_sent = Vec::new();
    let mut ping_no = 0u32;
    let mut ping = |tx: &mut Connection, expect: &mut Vec<Expect>| {
        ping_no += 1;
        let p = Bytes::from(format!("ping {ping_no}"));
        tx.ping(p.clone()).expect("ping");
        expect.push(Expect::Ping(p.clone()));
        p
    };
    for spec in &input.msgs {
        let m = &spec.msg;
        sent.push((m.kind() == MessageKind::Text, m.as_bytes().to_vec()));
        match &spec.cuts {
            None => {
                if spec.pings & 1 != 0 {
                    pings_sent.push(ping(&mut tx, &mut expect));
                }
                if spec.pings & 2 != 0 {
                    tx.send_ref(MessageRef::from(m)).expect("send_ref");
                } else {
                    tx.send(m.clone()).expect("send");
                }
                expect.push(Expect::Msg(m.clone()));
            }
            Some(cuts) => {
                let bytes = m.as_bytes();
                let points = cut_points(bytes.len(), cuts);
                let mut start = 0;
                for (i, end) in points.iter().copied().chain([bytes.len()]).enumerate() {
                    let fin = end == bytes.len() && i == points.len();
                    let piece = Bytes::copy_from_slice(&bytes[start..end]);
                    tx.send_fragment(m.kind(), piece, fin)
                        .expect("send_fragment of a valid message");
                    start = end;
                    if fin {
                        expect.push(Expect::Msg(m.clone()));
                    }
                    if i < 8 && spec.pings & (1 << i) != 0 {
                        pings_sent.push(ping(&mut tx, &mut expect));
                    }
                }
            }
        }
    }
    const CODES: [u16; 6] = [1000, 1001, 1003, 1008, 3000, 4999];
    let close = input.close.as_ref().map(|(c, r)| {
        CloseFrame::new(
            CloseCode(CODES[*c as usize % CODES.len()]),
            truncate_str(r, CloseFrame::MAX_REASON_LEN),
        )
    });
    tx.close(close.clone()).expect("close");

    let wire = output(&mut tx);
    let mut check = WireChecker::new(sender_role);
    check.feed(&wire);
    assert!(check.at_frame_boundary());
    assert_eq!(check.messages, sent, "messages on the wire");
    assert_eq!(check.close, Some(close.clone()));

    let events = receive_all(&mut rx, &wire, &input.sizes, input.streaming);
    let (last, events) = events.split_last().expect("at least the close");
    let got: Vec<Expect> = events
        .iter()
        .map(|e| match e {
            Event::Message(m) => Expect::Msg(m.clone()),
            Event::Ping(p) => Expect::Ping(p.clone()),
            other => panic!("unexpected event {other:?}"),
        })
        .collect();
    assert_eq!(got, expect, "received events");
    assert_eq!(
        last,
        &Event::Closed(CloseReason::Clean {
            initiator: Initiator::Peer,
            peer_frame: close.clone(),
        })
    );
    assert_eq!(rx.poll_event(), Ok(None));

    // The answer: the latest 16 pongs, then the close reply.
    let back = output(&mut rx);
    let mut check = WireChecker::new(sender_role.peer());
    check.feed(&back);
    assert!(check.at_frame_boundary());
    let events = receive_all(&mut tx, &back, &input.back_sizes, false);
    let mut want = Vec::new();
    let keep = pings_sent.len().saturating_sub(16);
    want.extend(pings_sent.into_iter().skip(keep).map(Event::Pong));
    want.push(Event::Closed(CloseReason::Clean {
        initiator: Initiator::Local,
        peer_frame: close.map(|f| CloseFrame::new(f.code, "")),
    }));
    assert_eq!(events, want, "sender's events");
    assert_eq!(tx.poll_event(), Ok(None));

    for c in [&mut tx, &mut rx] {
        if c.role() == Role::Client {
            assert!(!c.should_close_transport(), "client closes before EOF");
            c.receive_eof();
            assert_eq!(c.poll_event(), Ok(None), "event after Closed");
        }
        assert!(c.should_close_transport());
        assert!(c.closed_cleanly());
    }
}

fuzz_target!(|input: Input| {
    one_way(&input, Role::Client);
    one_way(&input, Role::Server);
});
