//! Behaviour of the public `Connection` API, case by case: what a user sees
//! as events, errors, bytes on the wire and close codes.

mod common;

use std::time::Duration;

use bytes::Bytes;
use wsproto::frame::OpCode;
use wsproto::{
    ApiMisuse, CapacityError, CloseCode, CloseFrame, CloseReason, Config, Connection,
    ConnectionState, Error, Event, Initiator, Instant, Message, MessageKind, ProtocolError, Role,
    SendError, Timeout,
};

use common::{
    close_frames, decode_all, drain, endpoint, frame, frame_with_mask, poll_all, sole_close_code,
};

const ROLES: [Role; 2] = [Role::Client, Role::Server];

/// A client whose every masking key is `key`.
fn client_with_key(key: [u8; 4]) -> Connection {
    Connection::client_with_masks(
        Config::default(),
        Box::new(move |buf: &mut [u8]| {
            for (i, b) in buf.iter_mut().enumerate() {
                *b = key[i % 4];
            }
        }),
    )
}

/// Move everything `from` has queued into `to`.
fn pump(from: &mut Connection, to: &mut Connection) {
    let wire = drain(from);
    to.receive(&wire);
}

fn at(ms: u64) -> Instant {
    Instant::from_millis(ms)
}

// ------------------------------------------------------- RFC 6455 §5.7

const RFC_KEY: [u8; 4] = [0x37, 0xfa, 0x21, 0x3d];
const MASKED_HELLO: [u8; 11] = [
    0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];
const MASKED_PONG_HELLO: [u8; 11] = [
    0x8a, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
];

#[test]
fn rfc_5_7_examples_are_received() {
    let big256: Vec<u8> = (0..256).map(|i| i as u8).collect();
    let big64k: Vec<u8> = (0..65536).map(|i| (i % 251) as u8).collect();
    let mut wire256 = vec![0x82, 0x7E, 0x01, 0x00];
    wire256.extend_from_slice(&big256);
    let mut wire64k = vec![0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00];
    wire64k.extend_from_slice(&big64k);

    let cases: Vec<(&str, Role, Vec<u8>, Event)> = vec![
        (
            "single-frame unmasked text",
            Role::Client,
            vec![0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            Event::Message(Message::text("Hello")),
        ),
        (
            "single-frame masked text",
            Role::Server,
            MASKED_HELLO.to_vec(),
            Event::Message(Message::text("Hello")),
        ),
        (
            "fragmented unmasked text",
            Role::Client,
            vec![0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f],
            Event::Message(Message::text("Hello")),
        ),
        (
            "unmasked ping",
            Role::Client,
            vec![0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f],
            Event::Ping(Bytes::from_static(b"Hello")),
        ),
        (
            "masked pong",
            Role::Server,
            MASKED_PONG_HELLO.to_vec(),
            Event::Pong(Bytes::from_static(b"Hello")),
        ),
        (
            "256 bytes binary, 16-bit length",
            Role::Client,
            wire256,
            Event::Message(Message::binary(big256)),
        ),
        (
            "64 KiB binary, 64-bit length",
            Role::Client,
            wire64k,
            Event::Message(Message::binary(big64k)),
        ),
    ];
    for (name, role, wire, want) in cases {
        let mut conn = endpoint(role, Config::default());
        conn.receive(&wire);
        assert_eq!(poll_all(&mut conn).unwrap(), vec![want], "{name}");
        assert_eq!(conn.buffered_input(), 0, "{name}");
    }
}

#[test]
fn rfc_5_7_examples_are_sent() {
    // server side: unmasked, byte-exact
    let mut server = endpoint(Role::Server, Config::default());
    server.send(Message::text("Hello")).unwrap();
    assert_eq!(
        drain(&mut server),
        [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    server
        .send_fragment(MessageKind::Text, Bytes::from_static(b"Hel"), false)
        .unwrap();
    server
        .send_fragment(MessageKind::Text, Bytes::from_static(b"lo"), true)
        .unwrap();
    assert_eq!(
        drain(&mut server),
        [0x01, 0x03, 0x48, 0x65, 0x6c, 0x80, 0x02, 0x6c, 0x6f]
    );
    server.ping(Bytes::from_static(b"Hello")).unwrap();
    assert_eq!(
        drain(&mut server),
        [0x89, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
    );
    server.send(Message::binary(vec![7u8; 256])).unwrap();
    let wire = drain(&mut server);
    assert_eq!(wire[..4], [0x82, 0x7E, 0x01, 0x00]);
    assert_eq!(wire.len(), 4 + 256);
    server.send(Message::binary(vec![7u8; 65536])).unwrap();
    let wire = drain(&mut server);
    assert_eq!(wire[..10], [0x82, 0x7F, 0, 0, 0, 0, 0, 0x01, 0x00, 0x00]);
    assert_eq!(wire.len(), 10 + 65536);

    // client side: masked with the RFC's key
    let mut client = client_with_key(RFC_KEY);
    client.send(Message::text("Hello")).unwrap();
    assert_eq!(drain(&mut client), MASKED_HELLO);
    client.pong(Bytes::from_static(b"Hello")).unwrap();
    assert_eq!(drain(&mut client), MASKED_PONG_HELLO);
}

#[test]
fn client_uses_the_mask_source_for_every_frame() {
    let mut n = 0u8;
    let mut client = Connection::client_with_masks(
        Config::default(),
        Box::new(move |buf: &mut [u8]| {
            for b in buf {
                n = n.wrapping_add(1);
                *b = n;
            }
        }),
    );
    client.send(Message::text("a")).unwrap();
    client.send(Message::text("b")).unwrap();
    let frames = decode_all(&drain(&mut client), Role::Client);
    assert_eq!(frames[0].header.mask, Some([1, 2, 3, 4]));
    assert_eq!(frames[1].header.mask, Some([5, 6, 7, 8]));
    assert_eq!(&frames[1].payload[..], b"b");
}

// ------------------------------------------------------------------ limits

fn header_only(sender: Role, opcode: OpCode, fin: bool, declared: u64) -> Vec<u8> {
    let mut h = wsproto::frame::FrameHeader::new(opcode, declared);
    h.fin = fin;
    if sender == Role::Client {
        h.mask = Some(RFC_KEY);
    }
    let mut out = [0u8; wsproto::frame::FrameHeader::MAX_LEN];
    let n = h.encode(&mut out);
    out[..n].to_vec()
}

#[test]
fn frame_limit_fails_when_the_header_arrives() {
    for role in ROLES {
        let mut config = Config::default();
        config.limits.max_frame_payload = 1000;
        // exactly at the limit: fine
        let mut ok = endpoint(role, config.clone());
        ok.receive(&frame(role.peer(), OpCode::Binary, true, &[1; 1000]));
        assert_eq!(
            poll_all(&mut ok).unwrap(),
            vec![Event::Message(Message::binary(vec![1u8; 1000]))]
        );

        // one more: fails on the header alone, before any payload
        let mut conn = endpoint(role, config);
        conn.receive(&header_only(role.peer(), OpCode::Binary, true, 1001));
        let err = conn.poll_event().unwrap_err();
        assert_eq!(
            err,
            Error::Capacity(CapacityError::FrameTooLarge {
                size: 1001,
                limit: 1000
            })
        );
        assert_eq!(err.close_code(), Some(CloseCode::TOO_BIG));
        assert_eq!(sole_close_code(&drain(&mut conn), role), 1009, "{role:?}");
    }
}

#[test]
fn a_declared_length_of_2_pow_63_minus_1_fails_at_once_with_1009() {
    for role in ROLES {
        let mut conn = endpoint(role, Config::default());
        let wire = header_only(role.peer(), OpCode::Binary, true, (1 << 63) - 1);
        assert_eq!(wire.len(), if role == Role::Server { 14 } else { 10 });
        conn.receive(&wire);
        let err = conn.poll_event().unwrap_err();
        assert!(
            matches!(
                err,
                Error::Capacity(CapacityError::FrameTooLarge { size, .. }) if size == (1 << 63) - 1
            ),
            "{err:?}"
        );
        assert_eq!(err.close_code(), Some(CloseCode::TOO_BIG));
        assert_eq!(conn.buffered_input(), 0);
        assert_eq!(sole_close_code(&drain(&mut conn), role), 1009, "{role:?}");
    }
}

#[test]
fn message_limit_counts_all_fragments_and_fails_at_the_crossing_header() {
    for role in ROLES {
        for streaming in [false, true] {
            let mut config = Config::default();
            config.limits.max_message = 100;
            config.streaming = streaming;

            // 50 + 50 is exactly the limit
            let mut ok = endpoint(role, config.clone());
            ok.receive(&frame(role.peer(), OpCode::Binary, false, &[1; 50]));
            ok.receive(&frame(role.peer(), OpCode::Continuation, true, &[2; 50]));
            let got: usize = poll_all(&mut ok)
                .unwrap()
                .iter()
                .map(|e| match e {
                    Event::Message(m) => m.len(),
                    Event::Fragment { data, .. } => data.len(),
                    other => panic!("unexpected {other:?}"),
                })
                .sum();
            assert_eq!(got, 100);

            let mut conn = endpoint(role, config);
            conn.receive(&frame(role.peer(), OpCode::Text, false, &[b'a'; 60]));
            assert!(poll_all(&mut conn).is_ok());
            conn.receive(&header_only(role.peer(), OpCode::Continuation, true, 60));
            let err = poll_all(&mut conn).unwrap_err();
            assert_eq!(
                err,
                Error::Capacity(CapacityError::MessageTooLarge {
                    size: 120,
                    limit: 100
                }),
                "{role:?} streaming={streaming}"
            );
            assert_eq!(err.close_code(), Some(CloseCode::TOO_BIG));
            assert_eq!(sole_close_code(&drain(&mut conn), role), 1009);
        }
    }
}

#[test]
fn a_single_frame_over_the_message_limit_fails_with_1009() {
    let mut config = Config::default();
    config.limits.max_message = 10;
    let mut conn = endpoint(Role::Server, config);
    conn.receive(&header_only(Role::Client, OpCode::Text, true, 11));
    let err = conn.poll_event().unwrap_err();
    assert_eq!(err.close_code(), Some(CloseCode::TOO_BIG));
    assert_eq!(sole_close_code(&drain(&mut conn), Role::Server), 1009);
}

// ------------------------------------------------------- protocol errors

struct Violation {
    name: &'static str,
    /// Receiving role(s).
    roles: &'static [Role],
    /// Build the wire bytes the peer of `receiver` sends.
    wire: fn(sender: Role) -> Vec<u8>,
    error: Error,
}

fn with_rsv(bits: u8) -> fn(Role) -> Vec<u8> {
    match bits {
        0x40 => |s| {
            let mut w = frame(s, OpCode::Text, true, b"x");
            w[0] |= 0x40;
            w
        },
        0x20 => |s| {
            let mut w = frame(s, OpCode::Binary, true, b"x");
            w[0] |= 0x20;
            w
        },
        _ => |s| {
            let mut w = frame(s, OpCode::Ping, true, b"x");
            w[0] |= 0x10;
            w
        },
    }
}

fn close_with_code(sender: Role, code: u16) -> Vec<u8> {
    frame(sender, OpCode::Close, true, &code.to_be_bytes())
}

fn violations() -> Vec<Violation> {
    const BOTH: &[Role] = &[Role::Client, Role::Server];
    const SERVER: &[Role] = &[Role::Server];
    const CLIENT: &[Role] = &[Role::Client];
    let p = Error::Protocol;
    let mut v = vec![
        Violation {
            name: "RSV1 without extension",
            roles: BOTH,
            wire: with_rsv(0x40),
            error: p(ProtocolError::ReservedBits),
        },
        Violation {
            name: "RSV2 without extension",
            roles: BOTH,
            wire: with_rsv(0x20),
            error: p(ProtocolError::ReservedBits),
        },
        Violation {
            name: "RSV3 on a ping",
            roles: BOTH,
            wire: with_rsv(0x10),
            error: p(ProtocolError::ReservedBits),
        },
        Violation {
            name: "unmasked client frame",
            roles: SERVER,
            wire: |_| frame(Role::Server, OpCode::Text, true, b"hi"),
            error: p(ProtocolError::UnmaskedFrame),
        },
        Violation {
            name: "masked server frame",
            roles: CLIENT,
            wire: |_| frame(Role::Client, OpCode::Text, true, b"hi"),
            error: p(ProtocolError::MaskedFrame),
        },
        Violation {
            name: "fragmented ping",
            roles: BOTH,
            wire: |s| frame(s, OpCode::Ping, false, b"x"),
            error: p(ProtocolError::FragmentedControlFrame),
        },
        Violation {
            name: "fragmented close",
            roles: BOTH,
            wire: |s| frame(s, OpCode::Close, false, &[0x03, 0xE8]),
            error: p(ProtocolError::FragmentedControlFrame),
        },
        Violation {
            name: "126-byte ping",
            roles: BOTH,
            wire: |s| frame(s, OpCode::Ping, true, &[0; 126]),
            error: p(ProtocolError::ControlFrameTooLong),
        },
        Violation {
            name: "126-byte close",
            roles: BOTH,
            wire: |s| {
                let mut payload = vec![0x03, 0xE8];
                payload.extend_from_slice(&[b'r'; 124]);
                frame(s, OpCode::Close, true, &payload)
            },
            error: p(ProtocolError::ControlFrameTooLong),
        },
        Violation {
            name: "continuation without a start",
            roles: BOTH,
            wire: |s| frame(s, OpCode::Continuation, true, b"x"),
            error: p(ProtocolError::UnexpectedContinuation),
        },
        Violation {
            name: "continuation after a finished message",
            roles: BOTH,
            wire: |s| {
                let mut w = frame(s, OpCode::Text, true, b"done");
                w.extend(frame(s, OpCode::Continuation, true, b"x"));
                w
            },
            error: p(ProtocolError::UnexpectedContinuation),
        },
        Violation {
            name: "binary during a fragmented text message",
            roles: BOTH,
            wire: |s| {
                let mut w = frame(s, OpCode::Text, false, b"a");
                w.extend(frame(s, OpCode::Binary, true, b"b"));
                w
            },
            error: p(ProtocolError::ExpectedContinuation),
        },
        Violation {
            name: "text during a fragmented text message",
            roles: BOTH,
            wire: |s| {
                let mut w = frame(s, OpCode::Text, false, b"a");
                w.extend(frame(s, OpCode::Ping, true, b"in between is fine"));
                w.extend(frame(s, OpCode::Text, true, b"b"));
                w
            },
            error: p(ProtocolError::ExpectedContinuation),
        },
        Violation {
            name: "64-bit length with the MSB set",
            roles: BOTH,
            wire: |s| {
                let mut w = vec![0x82, 0x7F, 0x80, 0, 0, 0, 0, 0, 0, 5];
                if s == Role::Client {
                    w[1] |= 0x80;
                    w.extend_from_slice(&RFC_KEY);
                }
                w.extend_from_slice(b"hello");
                w
            },
            error: p(ProtocolError::InvalidLength),
        },
        Violation {
            name: "16-bit length for 5 bytes",
            roles: BOTH,
            wire: |s| {
                let mut w = vec![0x82, 0x7E, 0, 5];
                if s == Role::Client {
                    w[1] |= 0x80;
                    w.extend_from_slice(&RFC_KEY);
                }
                w.extend_from_slice(b"hello");
                w
            },
            error: p(ProtocolError::NonMinimalLength),
        },
        Violation {
            name: "1-byte close payload",
            roles: BOTH,
            wire: |s| frame(s, OpCode::Close, true, &[0x03]),
            error: p(ProtocolError::InvalidClosePayload),
        },
        Violation {
            name: "invalid UTF-8 text",
            roles: BOTH,
            wire: |s| frame(s, OpCode::Text, true, &[b'a', 0xC0, 0x80]),
            error: p(ProtocolError::InvalidUtf8),
        },
        Violation {
            name: "text ending inside a code point",
            roles: BOTH,
            wire: |s| {
                let mut w = frame(s, OpCode::Text, false, &[b'a', 0xE2]);
                w.extend(frame(s, OpCode::Continuation, true, &[0x82]));
                w
            },
            error: p(ProtocolError::InvalidUtf8),
        },
        Violation {
            name: "invalid UTF-8 close reason",
            roles: BOTH,
            wire: |s| frame(s, OpCode::Close, true, &[0x03, 0xE8, b'o', 0xFF]),
            error: p(ProtocolError::InvalidUtf8),
        },
    ];
    for op in [3u8, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF] {
        v.push(Violation {
            name: "reserved opcode",
            roles: BOTH,
            wire: match op {
                3 => |s| reserved_opcode(s, 3),
                4 => |s| reserved_opcode(s, 4),
                5 => |s| reserved_opcode(s, 5),
                6 => |s| reserved_opcode(s, 6),
                7 => |s| reserved_opcode(s, 7),
                0xB => |s| reserved_opcode(s, 0xB),
                0xC => |s| reserved_opcode(s, 0xC),
                0xD => |s| reserved_opcode(s, 0xD),
                0xE => |s| reserved_opcode(s, 0xE),
                _ => |s| reserved_opcode(s, 0xF),
            },
            error: p(ProtocolError::ReservedOpcode(op)),
        });
    }
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2999, 5000, 65535] {
        v.push(Violation {
            name: "unsendable close code",
            roles: BOTH,
            wire: match code {
                0 => |s| close_with_code(s, 0),
                999 => |s| close_with_code(s, 999),
                1004 => |s| close_with_code(s, 1004),
                1005 => |s| close_with_code(s, 1005),
                1006 => |s| close_with_code(s, 1006),
                1015 => |s| close_with_code(s, 1015),
                1016 => |s| close_with_code(s, 1016),
                2999 => |s| close_with_code(s, 2999),
                5000 => |s| close_with_code(s, 5000),
                _ => |s| close_with_code(s, 65535),
            },
            error: p(ProtocolError::InvalidCloseCode(code)),
        });
    }
    v
}

fn reserved_opcode(sender: Role, op: u8) -> Vec<u8> {
    let mut w = frame(sender, OpCode::Binary, true, b"x");
    w[0] = 0x80 | op;
    w
}

#[test]
fn protocol_violations_fail_with_the_right_close_code_on_the_wire() {
    for v in violations() {
        for &role in v.roles {
            let wire = (v.wire)(role.peer());
            let want_code = if v.error == Error::Protocol(ProtocolError::InvalidUtf8) {
                1007
            } else {
                1002
            };
            // whole, and byte by byte: same verdict
            for bytewise in [false, true] {
                let ctx = format!("{} ({role:?}, bytewise={bytewise})", v.name);
                let mut conn = endpoint(role, Config::default());
                let mut result = Ok(());
                if bytewise {
                    for b in &wire {
                        conn.receive(&[*b]);
                        result = poll_all(&mut conn).map(|_| ());
                        if result.is_err() {
                            break;
                        }
                    }
                } else {
                    conn.receive(&wire);
                    result = poll_all(&mut conn).map(|_| ());
                }
                let err = result.expect_err(&ctx);
                assert_eq!(err, v.error, "{ctx}");
                assert_eq!(err.close_code(), Some(CloseCode(want_code)), "{ctx}");
                assert_eq!(conn.state(), ConnectionState::Closed, "{ctx}");
                assert_eq!(conn.error(), Some(&err), "{ctx}");
                assert!(!conn.closed_cleanly(), "{ctx}");
                assert!(!conn.should_close_transport(), "{ctx}: close frame unsent");
                let out = drain(&mut conn);
                assert_eq!(sole_close_code(&out, role), want_code, "{ctx}");
                assert!(conn.should_close_transport(), "{ctx}");
            }
        }
    }
}

#[test]
fn errors_are_sticky_and_commands_are_refused() {
    for role in ROLES {
        let mut conn = endpoint(role, Config::default());
        let mut wire = frame(role.peer(), OpCode::Text, true, b"before");
        wire.extend(reserved_opcode(role.peer(), 3));
        wire.extend(frame(role.peer(), OpCode::Text, true, b"after"));
        conn.receive(&wire);
        assert_eq!(
            conn.poll_event(),
            Ok(Some(Event::Message(Message::text("before"))))
        );
        let err = conn.poll_event().unwrap_err();
        assert_eq!(err, Error::Protocol(ProtocolError::ReservedOpcode(3)));
        for _ in 0..3 {
            assert_eq!(conn.poll_event(), Err(err.clone()));
        }
        conn.receive(&frame(role.peer(), OpCode::Text, true, b"later"));
        conn.receive_eof();
        assert_eq!(conn.poll_event(), Err(err.clone()));

        let not_open = Error::Misuse(ApiMisuse::NotOpen);
        let msg = Message::text("refused");
        assert_eq!(
            conn.send(msg.clone()),
            Err(SendError {
                error: not_open.clone(),
                value: msg
            })
        );
        let b = Bytes::from_static(b"x");
        assert_eq!(
            conn.send_fragment(MessageKind::Binary, b.clone(), true)
                .unwrap_err()
                .error,
            not_open
        );
        assert_eq!(conn.ping(b.clone()).unwrap_err().into_inner(), b);
        assert_eq!(conn.pong(b.clone()).unwrap_err().error, not_open);
        assert_eq!(conn.close(None).unwrap_err().error, not_open);
        assert!(!conn.is_open());
        // only the one close frame went out
        assert_eq!(sole_close_code(&drain(&mut conn), role), 1002);
    }
}

#[test]
fn failing_mid_frame_finishes_the_frame_before_the_close() {
    // The server has handed out the header of a large frame when the client
    // breaks the protocol: the wire must stay a valid frame sequence.
    let mut server = endpoint(Role::Server, Config::default());
    let payload = vec![0xAB; 4000];
    server.send(Message::binary(payload.clone())).unwrap();
    server
        .send(Message::text("queued before the error"))
        .unwrap();
    let mut wire = Vec::new();
    let first = server.poll_transmit().unwrap();
    wire.extend_from_slice(&first);
    server.receive(&reserved_opcode(Role::Client, 0xB));
    assert!(server.poll_event().is_err());
    wire.extend(drain(&mut server));
    let frames = decode_all(&wire, Role::Server);
    let kinds: Vec<OpCode> = frames.iter().map(|f| f.header.opcode).collect();
    // what was queued before the error still goes out, then the close
    assert_eq!(kinds, [OpCode::Binary, OpCode::Text, OpCode::Close]);
    assert_eq!(&frames[0].payload[..], &payload[..]);
    assert_eq!(&frames[1].payload[..], b"queued before the error");
    assert_eq!(sole_close_code(&wire, Role::Server), 1002);
}

// ---------------------------------------------------------- close handshake

#[test]
fn client_initiated_close_handshake() {
    let mut client = endpoint(Role::Client, Config::default());
    let mut server = endpoint(Role::Server, Config::default());
    client
        .close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")))
        .unwrap();
    assert_eq!(client.state(), ConnectionState::Closing);
    assert!(!client.is_open());
    pump(&mut client, &mut server);

    assert_eq!(
        poll_all(&mut server).unwrap(),
        vec![Event::Closed(CloseReason::Clean {
            initiator: Initiator::Peer,
            peer_frame: Some(CloseFrame::new(1000u16, "bye")),
        })]
    );
    assert_eq!(server.state(), ConnectionState::Closed);
    assert!(server.closed_cleanly());
    // the reply is queued, not yet written: keep the transport
    assert!(server.wants_write());
    assert!(!server.should_close_transport());
    let reply = drain(&mut server);
    // §5.5.1: the reply echoes the status code
    assert_eq!(
        close_frames(&reply, Role::Server),
        vec![Some(CloseFrame::new(1000u16, ""))]
    );
    // §7.1.1: the server closes the TCP connection first, once flushed
    assert!(server.should_close_transport());

    client.receive(&reply);
    let events = poll_all(&mut client).unwrap();
    assert_eq!(
        events,
        vec![Event::Closed(CloseReason::Clean {
            initiator: Initiator::Local,
            peer_frame: Some(CloseFrame::new(1000u16, "")),
        })]
    );
    let Event::Closed(reason) = &events[0] else {
        unreachable!()
    };
    assert_eq!(reason.code(), CloseCode::NORMAL);
    assert!(reason.is_clean());
    assert!(client.closed_cleanly());
    // the client waits for the server's EOF...
    assert!(!client.should_close_transport());
    client.receive_eof();
    assert!(client.should_close_transport());
    assert_eq!(poll_all(&mut client).unwrap(), vec![]);
}

#[test]
fn client_stops_waiting_for_the_servers_eof_after_close_timeout() {
    let mut config = Config::default();
    config.close_timeout = Duration::from_secs(3);
    let mut client = endpoint(Role::Client, config);
    let mut server = endpoint(Role::Server, Config::default());
    client.close(None).unwrap();
    let t0 = at(1_000);
    client.poll_timeout(t0);
    pump(&mut client, &mut server);
    poll_all(&mut server).unwrap();
    pump(&mut server, &mut client);
    assert!(matches!(
        poll_all(&mut client).unwrap()[..],
        [Event::Closed(CloseReason::Clean { .. })]
    ));
    let t1 = at(2_000);
    let deadline = client.poll_timeout(t1).expect("a deadline for the EOF");
    assert!(deadline > t1 && deadline <= t1 + Duration::from_secs(3));
    // (no `Instant - Duration`: go through the Duration)
    client.handle_timeout(Instant::from_duration(
        deadline.as_duration() - Duration::from_millis(1),
    ));
    assert!(!client.should_close_transport());
    client.handle_timeout(deadline);
    assert!(client.should_close_transport());
    // no second Closed event
    assert_eq!(poll_all(&mut client).unwrap(), vec![]);
}

#[test]
fn server_initiated_close_handshake() {
    let mut client = endpoint(Role::Client, Config::default());
    let mut server = endpoint(Role::Server, Config::default());
    server
        .close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "restarting")))
        .unwrap();
    assert_eq!(server.state(), ConnectionState::Closing);
    pump(&mut server, &mut client);
    assert_eq!(
        poll_all(&mut client).unwrap(),
        vec![Event::Closed(CloseReason::Clean {
            initiator: Initiator::Peer,
            peer_frame: Some(CloseFrame::new(1001u16, "restarting")),
        })]
    );
    let reply = drain(&mut client);
    assert_eq!(
        close_frames(&reply, Role::Client),
        vec![Some(CloseFrame::new(1001u16, ""))]
    );
    // the client does not close first
    assert!(!client.should_close_transport());

    assert!(!server.should_close_transport());
    server.receive(&reply);
    assert_eq!(
        poll_all(&mut server).unwrap(),
        vec![Event::Closed(CloseReason::Clean {
            initiator: Initiator::Local,
            peer_frame: Some(CloseFrame::new(1001u16, "")),
        })]
    );
    assert!(server.should_close_transport());
    client.receive_eof();
    assert!(client.should_close_transport());
}

#[test]
fn close_without_status_code() {
    for role in ROLES {
        let mut a = endpoint(role, Config::default());
        let mut b = endpoint(role.peer(), Config::default());
        a.close(None).unwrap();
        let wire = drain(&mut a);
        assert_eq!(close_frames(&wire, role), vec![None]);
        b.receive(&wire);
        let events = poll_all(&mut b).unwrap();
        let [Event::Closed(reason)] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(
            reason,
            &CloseReason::Clean {
                initiator: Initiator::Peer,
                peer_frame: None
            }
        );
        assert_eq!(reason.code(), CloseCode::NO_STATUS);
        // the reply has no status either
        let reply = drain(&mut b);
        assert_eq!(close_frames(&reply, role.peer()), vec![None]);
        a.receive(&reply);
        assert!(matches!(
            poll_all(&mut a).unwrap()[..],
            [Event::Closed(CloseReason::Clean {
                initiator: Initiator::Local,
                peer_frame: None
            })]
        ));
    }
}

#[test]
fn simultaneous_close() {
    let mut client = endpoint(Role::Client, Config::default());
    let mut server = endpoint(Role::Server, Config::default());
    client.close(Some(CloseFrame::new(4000u16, "c"))).unwrap();
    server.close(Some(CloseFrame::new(4001u16, "s"))).unwrap();
    let from_client = drain(&mut client);
    let from_server = drain(&mut server);
    client.receive(&from_server);
    server.receive(&from_client);
    assert_eq!(
        poll_all(&mut client).unwrap(),
        vec![Event::Closed(CloseReason::Clean {
            initiator: Initiator::Local,
            peer_frame: Some(CloseFrame::new(4001u16, "s")),
        })]
    );
    assert_eq!(
        poll_all(&mut server).unwrap(),
        vec![Event::Closed(CloseReason::Clean {
            initiator: Initiator::Local,
            peer_frame: Some(CloseFrame::new(4000u16, "c")),
        })]
    );
    // neither sends a second close frame
    assert!(drain(&mut client).is_empty());
    assert!(drain(&mut server).is_empty());
    assert!(server.should_close_transport());
}

#[test]
fn messages_still_arrive_while_closing_and_data_precedes_the_close_frame() {
    let mut client = endpoint(Role::Client, Config::default());
    let mut server = endpoint(Role::Server, Config::default());
    // data queued before close() goes out before the close frame
    client.send(Message::text("last words")).unwrap();
    client.close(None).unwrap();
    let wire = drain(&mut client);
    let kinds: Vec<OpCode> = decode_all(&wire, Role::Client)
        .iter()
        .map(|f| f.header.opcode)
        .collect();
    assert_eq!(kinds, [OpCode::Text, OpCode::Close]);

    // the server sent a message before it saw our close
    server.send(Message::binary(vec![1, 2, 3])).unwrap();
    pump(&mut server, &mut client);
    assert_eq!(client.state(), ConnectionState::Closing);
    assert_eq!(
        poll_all(&mut client).unwrap(),
        vec![Event::Message(Message::binary(vec![1, 2, 3]))]
    );
    server.receive(&wire);
    let events = poll_all(&mut server).unwrap();
    assert_eq!(events[0], Event::Message(Message::text("last words")));
    assert!(matches!(events[1], Event::Closed(_)));
    // and nothing may be sent after the close frame
    assert_eq!(
        server.send(Message::text("x")).unwrap_err().error,
        Error::Misuse(ApiMisuse::NotOpen)
    );
}

#[test]
fn input_after_the_close_handshake_is_discarded() {
    let mut server = endpoint(Role::Server, Config::default());
    let mut wire = frame(Role::Client, OpCode::Close, true, &[0x03, 0xE8]);
    wire.extend(frame(Role::Client, OpCode::Text, true, b"too late"));
    wire.extend(reserved_opcode(Role::Client, 5));
    server.receive(&wire);
    assert!(matches!(
        poll_all(&mut server).unwrap()[..],
        [Event::Closed(_)]
    ));
    server.receive(&frame(Role::Client, OpCode::Text, true, b"later"));
    assert_eq!(poll_all(&mut server).unwrap(), vec![]);
    assert_eq!(server.error(), None);
    assert!(server.closed_cleanly());
}

// ------------------------------------------------------------------ ping/pong

#[test]
fn pings_are_answered_automatically() {
    for role in ROLES {
        let mut conn = endpoint(role, Config::default());
        conn.receive(&frame(role.peer(), OpCode::Ping, true, b"are you there"));
        assert_eq!(
            poll_all(&mut conn).unwrap(),
            vec![Event::Ping(Bytes::from_static(b"are you there"))]
        );
        let frames = decode_all(&drain(&mut conn), role);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].header.opcode, OpCode::Pong);
        assert_eq!(&frames[0].payload[..], b"are you there");
        // an unsolicited pong is reported and not answered
        conn.receive(&frame(role.peer(), OpCode::Pong, true, b"hb"));
        assert_eq!(
            poll_all(&mut conn).unwrap(),
            vec![Event::Pong(Bytes::from_static(b"hb"))]
        );
        assert!(!conn.wants_write());
    }
}

#[test]
fn without_auto_pong_the_application_answers() {
    for role in ROLES {
        let mut config = Config::default();
        config.auto_pong = false;
        let mut conn = endpoint(role, config);
        conn.receive(&frame(role.peer(), OpCode::Ping, true, b"p1"));
        assert_eq!(
            poll_all(&mut conn).unwrap(),
            vec![Event::Ping(Bytes::from_static(b"p1"))]
        );
        assert_eq!(conn.pending_output(), 0);
        assert!(!conn.wants_write());
        conn.pong(Bytes::from_static(b"p1")).unwrap();
        let frames = decode_all(&drain(&mut conn), role);
        assert_eq!(frames.len(), 1);
        assert_eq!(frames[0].header.opcode, OpCode::Pong);
        assert_eq!(&frames[0].payload[..], b"p1");
    }
}

#[test]
fn a_ping_is_answered_while_our_close_awaits_its_reply() {
    // RFC 6455 §5.5.2: a ping is answered "unless it already received a
    // Close frame"; our own close frame does not stop pongs (§5.5.1 only
    // forbids data frames after it).
    let mut server = endpoint(Role::Server, Config::default());
    server.close(None).unwrap();
    let _ = drain(&mut server); // our close frame is on the wire
    server.receive(&frame(Role::Client, OpCode::Ping, true, b"late ping"));
    assert_eq!(
        poll_all(&mut server).unwrap(),
        vec![Event::Ping(Bytes::from_static(b"late ping"))]
    );
    let frames = decode_all(&drain(&mut server), Role::Server);
    assert_eq!(frames.len(), 1);
    assert_eq!(frames[0].header.opcode, OpCode::Pong);
    assert_eq!(&frames[0].payload[..], b"late ping");
    // once the peer's close arrived, pings are no longer answered
    server.receive(&frame(Role::Client, OpCode::Close, true, b""));
    assert!(matches!(
        poll_all(&mut server).unwrap()[..],
        [Event::Closed(_)]
    ));
    server.receive(&frame(Role::Client, OpCode::Ping, true, b"after"));
    assert_eq!(poll_all(&mut server).unwrap(), vec![]);
    assert!(drain(&mut server).is_empty());
}

#[test]
fn a_ping_flood_without_draining_output_keeps_pending_output_bounded() {
    for role in ROLES {
        let mut conn = endpoint(role, Config::default());
        let n = 10_000;
        let mut wire = Vec::new();
        for i in 0..n {
            wire.extend(frame(
                role.peer(),
                OpCode::Ping,
                true,
                format!("{i}").as_bytes(),
            ));
        }
        // in modest reads, never writing anything out
        let mut pings = 0;
        for chunk in wire.chunks(997) {
            conn.receive(chunk);
            while let Some(ev) = conn.poll_event().unwrap() {
                assert!(matches!(ev, Event::Ping(_)));
                pings += 1;
                // at most 16 pending pongs: header (+mask) + payload each
                assert!(
                    conn.pending_output() <= 16 * (2 + 4 + 125),
                    "{}",
                    conn.pending_output()
                );
            }
        }
        assert_eq!(pings, n);
        let frames = decode_all(&drain(&mut conn), role);
        assert_eq!(frames.len(), 16, "only the latest 16 pongs are kept");
        for (k, f) in frames.iter().enumerate() {
            assert_eq!(f.header.opcode, OpCode::Pong);
            assert_eq!(f.payload, format!("{}", n - 16 + k).as_bytes());
        }
    }
}

#[test]
fn a_pong_is_interleaved_correctly_with_queued_data() {
    for role in ROLES {
        let mut conn = endpoint(role, Config::default());
        let big = vec![0x5A; 5000];
        conn.send(Message::binary(big.clone())).unwrap();
        conn.send_fragment(MessageKind::Text, Bytes::from_static(b"part"), false)
            .unwrap();
        // take part of the output, then a ping arrives
        let mut wire = conn.poll_transmit().unwrap().to_vec();
        conn.receive(&frame(role.peer(), OpCode::Ping, true, b"rtt"));
        poll_all(&mut conn).unwrap();
        conn.send_fragment(MessageKind::Text, Bytes::from_static(b"-end"), true)
            .unwrap();
        wire.extend(drain(&mut conn));
        // the wire is a valid frame sequence that a peer decodes fully; the
        // pong may come before or after the data, but comes exactly once
        let mut peer = endpoint(role.peer(), Config::default());
        peer.receive(&wire);
        let (pongs, data): (Vec<Event>, Vec<Event>) = poll_all(&mut peer)
            .unwrap()
            .into_iter()
            .partition(|e| matches!(e, Event::Pong(_)));
        assert_eq!(pongs, vec![Event::Pong(Bytes::from_static(b"rtt"))]);
        assert_eq!(
            data,
            vec![
                Event::Message(Message::binary(big)),
                Event::Message(Message::text("part-end")),
            ]
        );
    }
}

// ------------------------------------------------------------------ timers

fn keepalive_config() -> Config {
    let mut config = Config::default();
    config.keepalive_interval = Some(Duration::from_secs(30));
    config.keepalive_timeout = Duration::from_secs(20);
    config
}

fn opcodes(wire: &[u8], sender: Role) -> Vec<OpCode> {
    decode_all(wire, sender)
        .iter()
        .map(|f| f.header.opcode)
        .collect()
}

#[test]
fn no_timers_by_default() {
    for role in ROLES {
        let mut conn = endpoint(role, Config::default());
        assert_eq!(conn.poll_timeout(at(0)), None);
        conn.handle_timeout(at(10_000_000));
        assert_eq!(poll_all(&mut conn).unwrap(), vec![]);
        assert!(!conn.wants_write());
        assert!(conn.is_open());
    }
}

#[test]
fn keepalive_pings_then_times_out_when_nothing_arrives() {
    for role in ROLES {
        let mut conn = endpoint(role, keepalive_config());
        let t0 = at(5_000);
        assert_eq!(conn.poll_timeout(t0), Some(t0 + Duration::from_secs(30)));
        conn.handle_timeout(t0 + Duration::from_millis(29_999));
        assert!(!conn.wants_write(), "no ping before the interval");
        assert_eq!(poll_all(&mut conn).unwrap(), vec![]);

        let t_ping = t0 + Duration::from_secs(30);
        conn.handle_timeout(t_ping);
        assert_eq!(opcodes(&drain(&mut conn), role), [OpCode::Ping]);
        assert_eq!(
            conn.poll_timeout(t_ping),
            Some(t_ping + Duration::from_secs(20))
        );
        conn.handle_timeout(t_ping + Duration::from_millis(19_999));
        assert_eq!(poll_all(&mut conn).unwrap(), vec![]);
        assert!(conn.is_open());
        assert!(!conn.wants_write(), "one ping per interval");

        conn.handle_timeout(t_ping + Duration::from_secs(20));
        let events = poll_all(&mut conn).unwrap();
        assert_eq!(
            events,
            vec![Event::Closed(CloseReason::TimedOut(Timeout::Keepalive))]
        );
        let Event::Closed(reason) = &events[0] else {
            unreachable!()
        };
        assert_eq!(reason.code(), CloseCode::ABNORMAL);
        assert!(!reason.is_clean());
        assert_eq!(conn.state(), ConnectionState::Closed);
        assert!(conn.should_close_transport());
        // reported once
        conn.handle_timeout(t_ping + Duration::from_secs(100));
        assert_eq!(poll_all(&mut conn).unwrap(), vec![]);
    }
}

#[test]
fn keepalive_does_not_time_out_when_the_peer_answers() {
    for role in ROLES {
        let mut conn = endpoint(role, keepalive_config());
        let mut peer = endpoint(role.peer(), Config::default());
        let mut now = at(0);
        conn.poll_timeout(now);
        let mut pings = 0;
        for _ in 0..5 {
            let deadline = conn.poll_timeout(now).expect("keepalive deadline");
            now = deadline;
            conn.handle_timeout(now);
            assert!(conn.is_open());
            let wire = drain(&mut conn);
            assert_eq!(opcodes(&wire, role), [OpCode::Ping]);
            pings += 1;
            // the peer answers 5 s later
            peer.receive(&wire);
            assert!(matches!(poll_all(&mut peer).unwrap()[..], [Event::Ping(_)]));
            now = now + Duration::from_secs(5);
            conn.receive(&drain(&mut peer));
            assert!(matches!(poll_all(&mut conn).unwrap()[..], [Event::Pong(_)]));
            conn.handle_timeout(now);
            // well past the keepalive timeout of the ping just answered
            conn.handle_timeout(now + Duration::from_secs(25));
            assert_eq!(poll_all(&mut conn).unwrap(), vec![]);
            now = now + Duration::from_secs(25);
        }
        assert_eq!(pings, 5);
        assert!(conn.is_open());
    }
}

#[test]
fn keepalive_accepts_any_frame_as_a_sign_of_life() {
    let mut conn = endpoint(Role::Client, keepalive_config());
    conn.poll_timeout(at(0));
    conn.handle_timeout(at(30_000));
    assert_eq!(opcodes(&drain(&mut conn), Role::Client), [OpCode::Ping]);
    // a data message instead of a pong
    conn.receive(&frame(Role::Server, OpCode::Text, true, b"busy"));
    assert_eq!(
        poll_all(&mut conn).unwrap(),
        vec![Event::Message(Message::text("busy"))]
    );
    conn.handle_timeout(at(40_000));
    conn.handle_timeout(at(50_000));
    conn.handle_timeout(at(60_000));
    assert_eq!(poll_all(&mut conn).unwrap(), vec![]);
    assert!(conn.is_open());
}

#[test]
fn close_times_out_when_the_peer_never_replies() {
    for role in ROLES {
        let mut config = Config::default();
        config.close_timeout = Duration::from_secs(2);
        let mut conn = endpoint(role, config);
        let t0 = at(7_000);
        assert_eq!(conn.poll_timeout(t0), None);
        conn.close(Some(CloseFrame::new(1000u16, "done"))).unwrap();
        assert_eq!(conn.poll_timeout(t0), Some(t0 + Duration::from_secs(2)));
        assert_eq!(opcodes(&drain(&mut conn), role), [OpCode::Close]);
        conn.handle_timeout(t0 + Duration::from_millis(1_999));
        assert_eq!(poll_all(&mut conn).unwrap(), vec![]);
        assert!(!conn.should_close_transport());
        conn.handle_timeout(t0 + Duration::from_secs(2));
        assert_eq!(
            poll_all(&mut conn).unwrap(),
            vec![Event::Closed(CloseReason::TimedOut(
                Timeout::CloseHandshake
            ))]
        );
        assert!(conn.should_close_transport());
        assert!(!conn.closed_cleanly());
    }
}

#[test]
fn default_close_timeout_is_ten_seconds() {
    let mut conn = endpoint(Role::Server, Config::default());
    conn.close(None).unwrap();
    assert_eq!(conn.poll_timeout(at(0)), Some(at(10_000)));
}

#[test]
fn a_close_reply_within_the_timeout_ends_cleanly() {
    let mut config = Config::default();
    config.close_timeout = Duration::from_secs(2);
    let mut server = endpoint(Role::Server, config);
    let mut client = endpoint(Role::Client, Config::default());
    server.close(None).unwrap();
    server.poll_timeout(at(0));
    pump(&mut server, &mut client);
    poll_all(&mut client).unwrap();
    pump(&mut client, &mut server);
    server.handle_timeout(at(1_000));
    assert!(matches!(
        poll_all(&mut server).unwrap()[..],
        [Event::Closed(CloseReason::Clean { .. })]
    ));
    server.handle_timeout(at(5_000));
    assert_eq!(poll_all(&mut server).unwrap(), vec![]);
    assert!(server.closed_cleanly());
}

// ------------------------------------------------------------ backpressure

#[test]
fn a_full_outbound_queue_refuses_data_and_returns_it() {
    for role in ROLES {
        let mut config = Config::default();
        config.limits.max_outbound = 1000;
        let mut conn = endpoint(role, config);
        // an empty queue takes any message, even one over the limit
        let huge = Message::binary(vec![1u8; 5000]);
        conn.send(huge).unwrap();
        let queued = conn.pending_output();
        assert!(queued > 5000);
        let msg = Message::text("x".repeat(600));
        let err = conn.send(msg.clone()).unwrap_err();
        assert!(err.is_queue_full());
        assert_eq!(
            err.error,
            Error::Capacity(CapacityError::OutboundQueueFull {
                queued,
                limit: 1000
            })
        );
        assert_eq!(err.error.close_code(), None);
        assert_eq!(err.into_inner(), msg);
        let frag = Bytes::from_static(b"fragment");
        let err = conn
            .send_fragment(MessageKind::Binary, frag.clone(), false)
            .unwrap_err();
        assert!(err.is_queue_full());
        assert_eq!(err.value, frag);
        assert_eq!(conn.pending_output(), queued, "nothing was queued");
        // control frames are never refused
        conn.ping(Bytes::from_static(b"still alive")).unwrap();
        assert!(conn.is_open());

        // flush, and it fits again
        let wire = drain(&mut conn);
        conn.send(msg.clone()).unwrap();
        let mut peer = endpoint(role.peer(), Config::default());
        peer.receive(&wire);
        peer.receive(&drain(&mut conn));
        let events = poll_all(&mut peer).unwrap();
        assert_eq!(events.len(), 3);
        assert_eq!(events[2], Event::Message(msg));
    }
}

#[test]
fn small_messages_fill_the_queue_up_to_the_limit() {
    let mut config = Config::default();
    config.limits.max_outbound = 1000;
    let mut conn = endpoint(Role::Server, config);
    let mut accepted = 0;
    loop {
        match conn.send(Message::binary(vec![0u8; 98])) {
            Ok(()) => accepted += 1,
            Err(e) => {
                assert!(e.is_queue_full());
                break;
            }
        }
        assert!(accepted < 100, "the queue never filled up");
    }
    // 100 bytes per frame (2-byte header): exactly 10 fit in 1000
    assert_eq!(accepted, 10);
    assert_eq!(conn.pending_output(), 1000);
}

// ---------------------------------------------------------------- misuse

#[test]
fn control_payloads_over_125_bytes_are_refused() {
    for role in ROLES {
        let mut conn = endpoint(role, Config::default());
        let long = Bytes::from(vec![0u8; 126]);
        let err = conn.ping(long.clone()).unwrap_err();
        assert_eq!(err.error, Error::Misuse(ApiMisuse::ControlPayloadTooLong));
        assert_eq!(err.error.close_code(), None);
        assert_eq!(err.into_inner(), long);
        assert_eq!(
            conn.pong(long.clone()).unwrap_err().error,
            Error::Misuse(ApiMisuse::ControlPayloadTooLong)
        );
        assert!(!conn.wants_write());
        assert!(conn.is_open());
        conn.ping(Bytes::from(vec![0u8; 125])).unwrap();
        assert_eq!(opcodes(&drain(&mut conn), role), [OpCode::Ping]);
    }
}

#[test]
fn invalid_close_frames_are_refused_and_the_connection_stays_open() {
    for code in [0u16, 999, 1004, 1005, 1006, 1015, 1016, 2000, 2999, 5000] {
        let mut conn = endpoint(Role::Server, Config::default());
        let frame = Some(CloseFrame::new(code, "why"));
        let err = conn.close(frame.clone()).unwrap_err();
        assert_eq!(
            err.error,
            Error::Misuse(ApiMisuse::InvalidCloseCode(code)),
            "{code}"
        );
        assert_eq!(err.value, frame);
        assert!(conn.is_open());
        assert!(!conn.wants_write());
    }
    let mut conn = endpoint(Role::Client, Config::default());
    let too_long = Some(CloseFrame::new(1000u16, "r".repeat(124)));
    assert_eq!(
        conn.close(too_long).unwrap_err().error,
        Error::Misuse(ApiMisuse::CloseReasonTooLong)
    );
    assert!(conn.is_open());
    conn.send(Message::text("still usable")).unwrap();
    conn.close(Some(CloseFrame::new(1000u16, "é".repeat(61) + "x")))
        .unwrap();
    let closes = close_frames(&drain(&mut conn), Role::Client);
    assert_eq!(closes[0].as_ref().unwrap().reason.len(), 123);
}

#[test]
fn commands_after_close_are_refused_with_the_value() {
    for role in ROLES {
        let mut conn = endpoint(role, Config::default());
        conn.close(None).unwrap();
        let msg = Message::binary(vec![9u8; 10]);
        let err = conn.send(msg.clone()).unwrap_err();
        assert_eq!(err.error, Error::Misuse(ApiMisuse::NotOpen));
        assert_eq!(err.into_inner(), msg);
        let b = Bytes::from_static(b"x");
        for err in [
            conn.send_fragment(MessageKind::Text, b.clone(), true)
                .unwrap_err(),
            conn.ping(b.clone()).unwrap_err(),
        ] {
            assert_eq!(err.error, Error::Misuse(ApiMisuse::NotOpen));
            assert_eq!(err.value, b);
        }
        assert_eq!(
            conn.close(None).unwrap_err().error,
            Error::Misuse(ApiMisuse::NotOpen)
        );
        assert_eq!(opcodes(&drain(&mut conn), role), [OpCode::Close]);
    }
}

#[test]
fn invalid_utf8_text_fragments_are_refused() {
    for role in ROLES {
        let mut conn = endpoint(role, Config::default());
        let bad = Bytes::from_static(&[b'o', b'k', 0xFF]);
        let err = conn
            .send_fragment(MessageKind::Text, bad.clone(), false)
            .unwrap_err();
        assert_eq!(err.error, Error::Misuse(ApiMisuse::InvalidUtf8));
        assert_eq!(err.value, bad);
        assert!(!conn.wants_write());

        // a code point split across fragments is fine...
        let euro = "€".as_bytes();
        conn.send_fragment(MessageKind::Text, Bytes::from_static(b"1 "), false)
            .unwrap();
        conn.send_fragment(MessageKind::Text, Bytes::copy_from_slice(&euro[..1]), false)
            .unwrap();
        // ...but a continuation that cannot complete it is not
        let err = conn
            .send_fragment(MessageKind::Text, Bytes::from_static(b"A"), false)
            .unwrap_err();
        assert_eq!(err.error, Error::Misuse(ApiMisuse::InvalidUtf8));
        // nor is ending the message inside it
        let err = conn
            .send_fragment(MessageKind::Text, Bytes::copy_from_slice(&euro[1..2]), true)
            .unwrap_err();
        assert_eq!(err.error, Error::Misuse(ApiMisuse::InvalidUtf8));
        // the refusals changed nothing: finish the message properly
        conn.send_fragment(MessageKind::Text, Bytes::copy_from_slice(&euro[1..]), true)
            .unwrap();
        let mut peer = endpoint(role.peer(), Config::default());
        peer.receive(&drain(&mut conn));
        assert_eq!(
            poll_all(&mut peer).unwrap(),
            vec![Event::Message(Message::text("1 €"))]
        );
    }
}

#[test]
fn fragment_sequencing_misuse_is_refused() {
    for role in ROLES {
        let mut conn = endpoint(role, Config::default());
        conn.send_fragment(MessageKind::Text, Bytes::from_static(b"a"), false)
            .unwrap();
        let before = conn.pending_output();
        // a different kind in the middle of a message
        let err = conn
            .send_fragment(MessageKind::Binary, Bytes::from_static(b"b"), true)
            .unwrap_err();
        assert_eq!(err.error, Error::Misuse(ApiMisuse::FragmentKindMismatch));
        // a whole message in the middle of a fragmented one
        let msg = Message::text("whole");
        let err = conn.send(msg.clone()).unwrap_err();
        assert_eq!(err.error, Error::Misuse(ApiMisuse::MessageInProgress));
        assert_eq!(err.value, msg);
        assert_eq!(conn.pending_output(), before);
        // a ping in between is allowed (§5.4)
        conn.ping(Bytes::from_static(b"between")).unwrap();
        conn.send_fragment(MessageKind::Text, Bytes::from_static(b"c"), true)
            .unwrap();
        conn.send(msg.clone()).unwrap();
        let mut peer = endpoint(role.peer(), Config::default());
        peer.receive(&drain(&mut conn));
        assert_eq!(
            poll_all(&mut peer).unwrap(),
            vec![
                Event::Ping(Bytes::from_static(b"between")),
                Event::Message(Message::text("ac")),
                Event::Message(msg),
            ]
        );
    }
}

// -------------------------------------------------------------------- EOF

#[test]
fn eof_before_close_is_abnormal() {
    for role in ROLES {
        // while open, after a complete message
        let mut conn = endpoint(role, Config::default());
        conn.receive(&frame(role.peer(), OpCode::Text, true, b"hi"));
        conn.receive_eof();
        let events = poll_all(&mut conn).unwrap();
        assert_eq!(
            events,
            vec![
                Event::Message(Message::text("hi")),
                Event::Closed(CloseReason::Abnormal)
            ]
        );
        assert_eq!(CloseReason::Abnormal.code(), CloseCode::ABNORMAL);
        assert_eq!(conn.state(), ConnectionState::Closed);
        assert!(conn.should_close_transport());
        assert!(!conn.closed_cleanly());
        assert_eq!(conn.error(), None);
        assert_eq!(poll_all(&mut conn).unwrap(), vec![]);

        // in the middle of a frame
        let mut conn = endpoint(role, Config::default());
        let wire = frame(role.peer(), OpCode::Binary, true, &[1, 2, 3, 4, 5]);
        conn.receive(&wire[..wire.len() - 2]);
        assert_eq!(poll_all(&mut conn).unwrap(), vec![]);
        conn.receive_eof();
        assert_eq!(
            poll_all(&mut conn).unwrap(),
            vec![Event::Closed(CloseReason::Abnormal)]
        );

        // after our close frame, before the reply
        let mut conn = endpoint(role, Config::default());
        conn.close(None).unwrap();
        drain(&mut conn);
        conn.receive_eof();
        assert_eq!(
            poll_all(&mut conn).unwrap(),
            vec![Event::Closed(CloseReason::Abnormal)]
        );
        assert!(conn.should_close_transport());
    }
}

#[test]
fn eof_after_a_clean_close_adds_nothing() {
    let mut server = endpoint(Role::Server, Config::default());
    server.receive(&frame(Role::Client, OpCode::Close, true, &[0x03, 0xE8]));
    assert!(matches!(
        poll_all(&mut server).unwrap()[..],
        [Event::Closed(CloseReason::Clean { .. })]
    ));
    server.receive_eof();
    assert_eq!(poll_all(&mut server).unwrap(), vec![]);
    assert!(server.closed_cleanly());
}

#[test]
fn huge_timeouts_do_not_overflow() {
    let mut config = Config::default();
    config.keepalive_interval = Some(Duration::MAX);
    config.keepalive_timeout = Duration::MAX;
    config.close_timeout = Duration::MAX;
    let mut conn = endpoint(Role::Client, config);
    let late = Instant::from_duration(Duration::from_secs(u64::MAX / 2));
    assert!(conn.poll_timeout(late).is_some());
    conn.handle_timeout(late);
    conn.close(None).unwrap();
    let deadline = conn.poll_timeout(late).unwrap();
    assert!(deadline >= late);
    conn.handle_timeout(late);
    assert_eq!(poll_all(&mut conn).unwrap(), vec![]);
    assert_eq!(conn.state(), ConnectionState::Closing);
}

/// Many frames in one read, large enough that the server unmasks the later
/// ones while buffering them: whole messages, text, a ping in the middle of
/// a fragmented message, a key of zero, and a frame cut short at the end of
/// the read. Every message arrives intact and in order, whether the read is
/// one `receive` or is split anywhere.
#[test]
fn many_large_frames_in_one_read_arrive_intact() {
    let big: Vec<u8> = (0..3000u32).map(|i| (i * 7 + i / 256) as u8).collect();
    let text = "é€😀 wsproto ".repeat(40);
    let frames: [(OpCode, bool, &[u8], [u8; 4]); 8] = [
        (OpCode::Binary, true, &big[..1000], [1, 2, 3, 4]),
        (OpCode::Text, true, text.as_bytes(), [9, 8, 7, 6]),
        (OpCode::Binary, false, &big[..300], [5, 5, 5, 5]),
        (OpCode::Ping, true, b"in between", [7, 0, 0, 7]),
        (OpCode::Continuation, true, &big[300..900], [0xff, 0, 1, 2]),
        (OpCode::Binary, true, &big[..400], [0, 0, 0, 0]),
        (OpCode::Binary, true, &big[..256], [3, 1, 4, 1]),
        (OpCode::Binary, true, &big, [2, 7, 1, 8]),
    ];
    let wire: Vec<u8> = frames
        .iter()
        .flat_map(|&(op, fin, payload, key)| frame_with_mask(op, fin, payload, Some(key)))
        .collect();
    let expected = [
        Event::Message(Message::binary(big[..1000].to_vec())),
        Event::Message(Message::text(text.clone())),
        Event::Ping(Bytes::from_static(b"in between")),
        Event::Message(Message::binary(big[..900].to_vec())),
        Event::Message(Message::binary(big[..400].to_vec())),
        Event::Message(Message::binary(big[..256].to_vec())),
        Event::Message(Message::binary(big.clone())),
    ];
    // the last frame's payload comes in a later read
    let first_read = wire.len() - 1500;
    for cut in [0, 1, 7, 1006, 1010, 1500, first_read] {
        let mut server = endpoint(Role::Server, Config::default());
        server.receive(&wire[..cut]);
        let mut events = poll_all(&mut server).unwrap();
        server.receive(&wire[cut..first_read]);
        events.extend(poll_all(&mut server).unwrap());
        assert_eq!(events, expected[..6], "split at {cut}");
        server.receive(&wire[first_read..]);
        assert_eq!(
            poll_all(&mut server).unwrap(),
            expected[6..],
            "split at {cut}"
        );
    }
}

/// Invalid UTF-8 in a later frame of the same read: the messages before it
/// are delivered first, then the connection fails with 1007.
#[test]
fn invalid_text_later_in_a_read_fails_after_the_messages_before_it() {
    let good = vec![b'a'; 500];
    let mut bad = vec![b'b'; 500];
    bad[400] = 0xff;
    let mut wire = frame_with_mask(OpCode::Binary, true, &good, Some([1, 2, 3, 4]));
    wire.extend(frame_with_mask(
        OpCode::Text,
        true,
        &bad,
        Some([4, 3, 2, 1]),
    ));
    let mut server = endpoint(Role::Server, Config::default());
    server.receive(&wire);
    assert_eq!(
        server.poll_event().unwrap(),
        Some(Event::Message(Message::binary(good)))
    );
    let err = server.poll_event().unwrap_err();
    assert_eq!(err.close_code(), Some(CloseCode::INVALID_DATA));
    assert_eq!(sole_close_code(&drain(&mut server), Role::Server), 1007);
}

/// `has_timers` is what lets a driver skip the clock: false with no
/// keepalive and no close handshake, true from `close` on (the close timer
/// then bounds the handshake and the wait for the transport), false after
/// the transport ended abruptly; always true with keepalive configured.
#[test]
fn has_timers_follows_keepalive_and_the_close_handshake() {
    let t0 = Instant::from_duration(Duration::from_secs(1));
    for role in ROLES {
        let mut a = endpoint(role, Config::default());
        let mut b = endpoint(role.peer(), Config::default());
        assert!(!a.has_timers());
        assert_eq!(a.poll_timeout(t0), None);
        a.close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")))
            .unwrap();
        assert!(a.has_timers());
        assert!(a.poll_timeout(t0).is_some());

        assert!(!b.has_timers());
        b.receive_eof();
        assert_eq!(
            poll_all(&mut b).unwrap(),
            [Event::Closed(CloseReason::Abnormal)]
        );
        assert!(!b.has_timers(), "nothing left to wait for");
        assert_eq!(b.poll_timeout(t0), None);

        let mut config = Config::default();
        config.keepalive_interval = Some(Duration::from_secs(30));
        let mut k = endpoint(role, config);
        assert!(k.has_timers());
        assert!(k.poll_timeout(t0).is_some());
    }
}
