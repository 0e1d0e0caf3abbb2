//! End-to-end over real TCP on 127.0.0.1 with `wsproto::blocking::WebSocket`
//! on both ends (and raw TCP clients for what a WebSocket client would never
//! send). Every test runs under a watchdog so a hang fails instead of
//! blocking the suite.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use wsproto::blocking::{self, Rejection, WebSocket};
use wsproto::frame::{FrameDecoder, OpCode};
use wsproto::handshake::{AcceptOptions, ClientRequest};
use wsproto::{
    CloseCode, CloseFrame, CloseReason, Config, Event, HandshakeError, Initiator, Message,
    ProtocolError, Role,
};

/// Upper bound for one test; far above what any of them needs.
const WATCHDOG: Duration = Duration::from_secs(60);

/// Run `f` on a thread and fail if it does not finish within the watchdog.
fn with_watchdog<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let r = f();
        let _ = tx.send(());
        r
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(()) | Err(mpsc::RecvTimeoutError::Disconnected) => match handle.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => panic!("test did not finish within {WATCHDOG:?}"),
    }
}

/// Listen on an ephemeral port and run `serve` on the first connection.
fn server<T: Send + 'static>(
    serve: impl FnOnce(TcpStream) -> T + Send + 'static,
) -> (SocketAddr, thread::JoinHandle<T>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let handle = thread::spawn(move || {
        let (tcp, _) = listener.accept().unwrap();
        tcp.set_nodelay(true).unwrap();
        serve(tcp)
    });
    (addr, handle)
}

fn join<T>(h: thread::JoinHandle<T>) -> T {
    match h.join() {
        Ok(r) => r,
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

fn connect(addr: SocketAddr, request: &ClientRequest) -> WebSocket<TcpStream> {
    let tcp = TcpStream::connect(addr).unwrap();
    tcp.set_nodelay(true).unwrap();
    let (ws, _) = WebSocket::connect(tcp, request, big_config()).unwrap();
    ws
}

fn big_config() -> Config {
    let mut config = Config::default();
    config.limits.max_message = 4 << 20;
    config.limits.max_frame_payload = 4 << 20;
    config
}

fn url(addr: SocketAddr) -> ClientRequest {
    ClientRequest::from_url(&format!("ws://{addr}/echo")).unwrap()
}

/// Echo every message until the connection ends; return how it ended.
fn echo_server(tcp: TcpStream) -> Result<CloseReason, blocking::Error> {
    let mut ws = WebSocket::accept(tcp, big_config())?;
    loop {
        match ws.read()? {
            Event::Message(m) => ws.send(m)?,
            Event::Closed(reason) => return Ok(reason),
            _ => {}
        }
    }
}

/// Text of exactly `len` bytes made of `unit` repeated, padded with ASCII.
fn text_of_len(unit: &str, len: usize) -> String {
    let mut s = unit.repeat(len / unit.len());
    s.push_str(&"z".repeat(len - s.len()));
    assert_eq!(s.len(), len);
    s
}

const SIZES: [usize; 6] = [0, 125, 126, 65535, 65536, 1 << 20];

#[test]
fn echo_text_and_binary_at_boundary_sizes() {
    with_watchdog(|| {
        let (addr, handle) = server(echo_server);
        let mut ws = connect(addr, &url(addr));
        let mut sent = 0;
        for len in SIZES {
            let mut messages = vec![
                Message::text(text_of_len("a", len)),
                Message::text(text_of_len("é", len)),
                Message::text(text_of_len("😀", len)),
                Message::binary((0..len).map(|i| i as u8).collect::<Vec<u8>>()),
            ];
            if len >= 256 {
                // every byte value, in every position mod 256
                messages.push(Message::binary(
                    (0..len)
                        .map(|i| (i * 7 + i / 256) as u8)
                        .collect::<Vec<u8>>(),
                ));
            }
            for msg in messages {
                ws.send(msg.clone()).unwrap();
                let got = ws.read_message().unwrap().expect("an echo");
                assert_eq!(got.kind(), msg.kind(), "size {len}");
                assert!(got == msg, "echo of {len} bytes differs");
                sent += 1;
            }
        }
        assert!(sent >= 24);
        ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "done")))
            .unwrap();
        assert_eq!(
            ws.read().unwrap(),
            Event::Closed(CloseReason::Clean {
                initiator: Initiator::Local,
                peer_frame: Some(CloseFrame::new(1000u16, "")),
            })
        );
        assert!(matches!(ws.read(), Err(blocking::Error::Closed)));
        assert_eq!(
            join(handle).unwrap(),
            CloseReason::Clean {
                initiator: Initiator::Peer,
                peer_frame: Some(CloseFrame::new(1000u16, "done")),
            }
        );
    });
}

#[test]
fn fragmented_send_and_ping_over_tcp() {
    with_watchdog(|| {
        let (addr, handle) = server(echo_server);
        let mut ws = connect(addr, &url(addr));
        let euro = "€".as_bytes();
        ws.send_fragment(
            wsproto::MessageKind::Text,
            Bytes::from_static(b"price: "),
            false,
        )
        .unwrap();
        ws.send_fragment(
            wsproto::MessageKind::Text,
            Bytes::copy_from_slice(&euro[..2]),
            false,
        )
        .unwrap();
        ws.ping(Bytes::from_static(b"rtt")).unwrap();
        ws.send_fragment(
            wsproto::MessageKind::Text,
            Bytes::copy_from_slice(&euro[2..]),
            true,
        )
        .unwrap();
        let mut events = Vec::new();
        while events.len() < 2 {
            events.push(ws.read().unwrap());
        }
        assert!(events.contains(&Event::Pong(Bytes::from_static(b"rtt"))));
        assert!(events.contains(&Event::Message(Message::text("price: €"))));
        ws.close(None).unwrap();
        assert!(matches!(ws.read().unwrap(), Event::Closed(r) if r.is_clean()));
        let reason = join(handle).unwrap();
        assert_eq!(reason.code(), CloseCode::NO_STATUS);
    });
}

#[test]
fn subprotocol_selection() {
    with_watchdog(|| {
        let (addr, handle) = server(|tcp| {
            let supported = ["v1", "v2"];
            let mut offered = Vec::new();
            let mut ws = WebSocket::accept_with(tcp, Config::default(), |req| {
                offered = req.protocols().to_vec();
                let mut opts = AcceptOptions::new();
                // the client's preference order decides
                if let Some(p) = req
                    .protocols()
                    .iter()
                    .find(|p| supported.contains(&p.as_str()))
                {
                    opts = opts.protocol(p.clone());
                }
                Ok(opts)
            })
            .unwrap();
            while ws.read_message().unwrap().is_some() {}
            offered
        });
        let tcp = TcpStream::connect(addr).unwrap();
        let request = url(addr).protocols(["v3", "v2", "v1"]);
        let (mut ws, accepted) = WebSocket::connect(tcp, &request, Config::default()).unwrap();
        assert_eq!(accepted.protocol.as_deref(), Some("v2"));
        ws.close(None).unwrap();
        while !matches!(ws.read().unwrap(), Event::Closed(_)) {}
        assert_eq!(join(handle), ["v3", "v2", "v1"]);
    });
}

fn rejecting_server(tcp: TcpStream) -> blocking::Error {
    WebSocket::accept_with(tcp, Config::default(), |req| {
        assert_eq!(req.header("Authorization"), None);
        Err(Rejection {
            status: 401,
            headers: vec![("WWW-Authenticate".into(), "Bearer realm=\"test\"".into())],
            body: b"token required".to_vec(),
        })
    })
    .unwrap_err()
}

#[test]
fn server_rejects_with_401_and_the_client_sees_the_status() {
    with_watchdog(|| {
        let (addr, handle) = server(rejecting_server);
        let tcp = TcpStream::connect(addr).unwrap();
        let err = WebSocket::connect(tcp, &url(addr), Config::default()).unwrap_err();
        assert!(
            matches!(
                err,
                blocking::Error::Ws(wsproto::Error::Handshake(HandshakeError::UnexpectedStatus(
                    401
                )))
            ),
            "{err:?}"
        );
        assert!(matches!(join(handle), blocking::Error::Rejected(401)));
    });
}

// ------------------------------------------------------------- raw clients

/// Write `bytes`, then read until EOF.
fn raw_exchange(addr: SocketAddr, bytes: &[u8]) -> Vec<u8> {
    let mut tcp = TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    tcp.write_all(bytes).unwrap();
    let mut out = Vec::new();
    tcp.read_to_end(&mut out)
        .expect("the server closes the connection");
    out
}

struct RawResponse {
    status: u16,
    headers: Vec<(String, String)>,
    /// Everything after the head.
    rest: Vec<u8>,
}

impl RawResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_head(bytes: &[u8]) -> RawResponse {
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut slots);
    let httparse::Status::Complete(n) = resp.parse(bytes).expect("an HTTP response") else {
        panic!("incomplete response: {:?}", String::from_utf8_lossy(bytes))
    };
    RawResponse {
        status: resp.code.unwrap(),
        headers: resp
            .headers
            .iter()
            .map(|h| {
                (
                    h.name.to_string(),
                    String::from_utf8_lossy(h.value).into_owned(),
                )
            })
            .collect(),
        rest: bytes[n..].to_vec(),
    }
}

fn request_head(version: &str) -> String {
    format!(
        "GET /chat HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: {version}\r\n\r\n"
    )
}

#[test]
fn rejection_response_carries_the_custom_header_and_body() {
    with_watchdog(|| {
        let (addr, handle) = server(rejecting_server);
        let resp = parse_head(&raw_exchange(addr, request_head("13").as_bytes()));
        assert_eq!(resp.status, 401);
        assert_eq!(
            resp.header("WWW-Authenticate"),
            Some("Bearer realm=\"test\"")
        );
        assert_eq!(resp.rest, b"token required");
        assert!(matches!(join(handle), blocking::Error::Rejected(401)));
    });
}

#[test]
fn wrong_version_gets_426_with_the_supported_version() {
    with_watchdog(|| {
        let (addr, handle) = server(|tcp| WebSocket::accept(tcp, Config::default()).unwrap_err());
        let resp = parse_head(&raw_exchange(addr, request_head("8").as_bytes()));
        assert_eq!(resp.status, 426);
        assert_eq!(resp.header("Sec-WebSocket-Version"), Some("13"));
        let err = join(handle);
        assert!(
            matches!(
                err,
                blocking::Error::Ws(wsproto::Error::Handshake(
                    HandshakeError::UnsupportedVersion
                ))
            ),
            "{err:?}"
        );
    });
}

#[test]
fn garbage_gets_400() {
    with_watchdog(|| {
        let (addr, handle) = server(|tcp| WebSocket::accept(tcp, Config::default()).unwrap_err());
        let resp = parse_head(&raw_exchange(addr, b"\x00\x01garbage\xff\xfe\r\n\r\n"));
        assert_eq!(resp.status, 400);
        let len: usize = resp.header("Content-Length").unwrap().parse().unwrap();
        assert_eq!(resp.rest.len(), len);
        assert!(matches!(
            join(handle),
            blocking::Error::Ws(wsproto::Error::Handshake(HandshakeError::MalformedHttp))
        ));
    });
}

#[test]
fn an_invalid_frame_after_the_handshake_gets_1002_then_eof() {
    with_watchdog(|| {
        let (addr, handle) = server(|tcp| {
            let mut ws = WebSocket::accept(tcp, Config::default()).unwrap();
            ws.read().unwrap_err()
        });
        // a valid handshake, then an unmasked (client-to-server) text frame
        let mut bytes = request_head("13").into_bytes();
        bytes.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
        let resp = parse_head(&raw_exchange(addr, &bytes));
        assert_eq!(resp.status, 101);
        assert_eq!(
            resp.header("Sec-WebSocket-Accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        // after the head: exactly one close frame, then EOF (read_to_end)
        let mut buf = BytesMut::from(&resp.rest[..]);
        let frame = FrameDecoder::new(Role::Client, 1 << 20)
            .decode(&mut buf)
            .unwrap()
            .expect("a whole close frame");
        assert_eq!(frame.header.opcode, OpCode::Close);
        let close = CloseFrame::parse(&frame.payload).unwrap().unwrap();
        assert_eq!(close.code, CloseCode::PROTOCOL_ERROR);
        assert!(buf.is_empty(), "nothing after the close frame");
        let err = join(handle);
        assert!(
            matches!(
                err,
                blocking::Error::Ws(wsproto::Error::Protocol(ProtocolError::UnmaskedFrame))
            ),
            "{err:?}"
        );
    });
}

#[test]
fn server_initiated_close_is_seen_by_the_client() {
    with_watchdog(|| {
        let (addr, handle) = server(|tcp| {
            let mut ws = WebSocket::accept(tcp, Config::default()).unwrap();
            assert_eq!(
                ws.read_message().unwrap(),
                Some(Message::text("please close"))
            );
            ws.close(Some(CloseFrame::new(
                CloseCode::GOING_AWAY,
                "shutting down",
            )))
            .unwrap();
            loop {
                if let Event::Closed(reason) = ws.read().unwrap() {
                    return reason;
                }
            }
        });
        let mut ws = connect(addr, &url(addr));
        ws.send(Message::text("please close")).unwrap();
        assert_eq!(
            ws.read().unwrap(),
            Event::Closed(CloseReason::Clean {
                initiator: Initiator::Peer,
                peer_frame: Some(CloseFrame::new(1001u16, "shutting down")),
            })
        );
        assert!(matches!(ws.read(), Err(blocking::Error::Closed)));
        assert!(matches!(
            ws.send(Message::text("late")),
            Err(blocking::Error::Closed)
        ));
        assert_eq!(
            join(handle),
            CloseReason::Clean {
                initiator: Initiator::Local,
                peer_frame: Some(CloseFrame::new(1001u16, "")),
            }
        );
    });
}

#[test]
fn client_initiated_close_with_code_and_reason() {
    with_watchdog(|| {
        let (addr, handle) = server(echo_server);
        let mut ws = connect(addr, &url(addr));
        ws.close(Some(CloseFrame::new(4001u16, "client says bye ✓")))
            .unwrap();
        let Event::Closed(reason) = ws.read().unwrap() else {
            panic!("expected Closed")
        };
        assert_eq!(reason.code(), CloseCode(4001));
        assert_eq!(
            join(handle).unwrap(),
            CloseReason::Clean {
                initiator: Initiator::Peer,
                peer_frame: Some(CloseFrame::new(4001u16, "client says bye ✓")),
            }
        );
        // the server closed the TCP connection first
        let mut tcp = ws.into_inner();
        tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert_eq!(tcp.read(&mut [0u8; 16]).unwrap(), 0);
    });
}

// ------------------------------------------------------------------ timers
//
// These run on the wall clock (the blocking driver's timers come from the
// stream's read timeout) but assert only on outcomes, never on how long
// anything took.

/// Complete the server handshake, then hand back the raw stream: from here
/// on the "server" never answers anything by itself.
fn mute_server(tcp: TcpStream) -> TcpStream {
    WebSocket::accept(tcp, Config::default())
        .unwrap()
        .into_inner()
}

/// Read client frames from a raw stream until one with `opcode` arrives.
fn read_until(tcp: &mut TcpStream, opcode: OpCode) -> Vec<OpCode> {
    let mut dec = FrameDecoder::new(Role::Server, 1 << 20);
    let mut buf = BytesMut::new();
    let mut seen = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            seen.push(f.header.opcode);
            if f.header.opcode == opcode {
                return seen;
            }
        }
        let n = tcp.read(&mut chunk).unwrap();
        assert!(n > 0, "EOF before a {opcode:?} frame");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn keepalive_times_out_when_the_server_never_answers() {
    with_watchdog(|| {
        let (addr, handle) = server(|tcp| {
            let mut raw = mute_server(tcp);
            let seen = read_until(&mut raw, OpCode::Ping);
            // then wait for the client to give up and close the connection
            let mut rest = Vec::new();
            raw.read_to_end(&mut rest).unwrap();
            seen
        });
        let mut config = Config::default();
        config.keepalive_interval = Some(Duration::from_millis(30));
        config.keepalive_timeout = Duration::from_millis(150);
        let tcp = TcpStream::connect(addr).unwrap();
        let (mut ws, _) = WebSocket::connect(tcp, &url(addr), config).unwrap();
        assert_eq!(
            ws.read().unwrap(),
            Event::Closed(CloseReason::TimedOut(wsproto::Timeout::Keepalive))
        );
        assert!(matches!(ws.read(), Err(blocking::Error::Closed)));
        assert_eq!(join(handle), [OpCode::Ping]);
    });
}

#[test]
fn keepalive_pings_are_answered_and_the_connection_stays_open() {
    with_watchdog(|| {
        let (addr, handle) = server(echo_server);
        let mut config = Config::default();
        config.keepalive_interval = Some(Duration::from_millis(20));
        config.keepalive_timeout = Duration::from_secs(30);
        let tcp = TcpStream::connect(addr).unwrap();
        let (mut ws, _) = WebSocket::connect(tcp, &url(addr), config).unwrap();
        for _ in 0..3 {
            assert!(matches!(ws.read().unwrap(), Event::Pong(p) if p.len() == 8));
        }
        assert!(ws.connection().is_open());
        ws.send(Message::text("still here")).unwrap();
        loop {
            match ws.read().unwrap() {
                Event::Pong(_) => {}
                ev => {
                    assert_eq!(ev, Event::Message(Message::text("still here")));
                    break;
                }
            }
        }
        ws.close(None).unwrap();
        while !matches!(ws.read().unwrap(), Event::Closed(_)) {}
        assert!(join(handle).unwrap().is_clean());
    });
}

#[test]
fn close_times_out_when_the_server_never_replies() {
    with_watchdog(|| {
        let (addr, handle) = server(|tcp| {
            let mut raw = mute_server(tcp);
            let seen = read_until(&mut raw, OpCode::Close);
            let mut rest = Vec::new();
            raw.read_to_end(&mut rest).unwrap();
            seen
        });
        let mut config = Config::default();
        config.close_timeout = Duration::from_millis(100);
        let tcp = TcpStream::connect(addr).unwrap();
        let (mut ws, _) = WebSocket::connect(tcp, &url(addr), config).unwrap();
        ws.close(Some(CloseFrame::new(1000u16, "bye"))).unwrap();
        assert_eq!(
            ws.read().unwrap(),
            Event::Closed(CloseReason::TimedOut(wsproto::Timeout::CloseHandshake))
        );
        assert_eq!(join(handle), [OpCode::Close]);
    });
}

#[test]
fn client_waits_for_the_servers_tcp_close_but_not_forever() {
    with_watchdog(|| {
        let (addr, handle) = server(|tcp| {
            let mut raw = mute_server(tcp);
            read_until(&mut raw, OpCode::Close);
            // reply, but keep the TCP connection open (a misbehaving server)
            raw.write_all(&[0x88, 0x02, 0x03, 0xE8]).unwrap();
            let mut rest = Vec::new();
            raw.read_to_end(&mut rest).unwrap();
            rest
        });
        let mut config = Config::default();
        config.close_timeout = Duration::from_millis(100);
        let tcp = TcpStream::connect(addr).unwrap();
        let (mut ws, _) = WebSocket::connect(tcp, &url(addr), config).unwrap();
        ws.close(Some(CloseFrame::new(1000u16, "bye"))).unwrap();
        assert_eq!(
            ws.read().unwrap(),
            Event::Closed(CloseReason::Clean {
                initiator: Initiator::Local,
                peer_frame: Some(CloseFrame::new(1000u16, "")),
            })
        );
        // the client gave up waiting and closed its side: the server got EOF
        // with nothing after the close frame
        assert!(join(handle).is_empty());
    });
}

// ------------------------------------------- bytes right behind the head

#[test]
fn a_frame_pipelined_behind_the_request_is_served() {
    with_watchdog(|| {
        let (addr, handle) = server(echo_server);
        let mut tcp = TcpStream::connect(addr).unwrap();
        tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        // request, masked "Hello" (RFC 6455 §5.7) and a masked close 1000,
        // all in one write
        let mut bytes = request_head("13").into_bytes();
        bytes.extend_from_slice(&[
            0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
        ]);
        bytes.extend_from_slice(&[0x88, 0x82, 1, 2, 3, 4, 0x03 ^ 1, 0xE8 ^ 2]);
        tcp.write_all(&bytes).unwrap();
        let mut out = Vec::new();
        tcp.read_to_end(&mut out).unwrap();
        let resp = parse_head(&out);
        assert_eq!(resp.status, 101);
        assert_eq!(
            resp.rest,
            [0x81, 0x05, b'H', b'e', b'l', b'l', b'o', 0x88, 0x02, 0x03, 0xE8]
        );
        drop(tcp);
        assert!(join(handle).unwrap().is_clean());
    });
}

#[test]
fn a_frame_right_behind_the_101_reaches_the_client() {
    with_watchdog(|| {
        let (addr, handle) = server(|mut tcp| {
            // a server that greets in the same write as its 101
            let mut hs = wsproto::handshake::ServerHandshake::new(&wsproto::Limits::default());
            let mut buf = BytesMut::new();
            let req = loop {
                let mut chunk = [0u8; 1024];
                let n = tcp.read(&mut chunk).unwrap();
                assert!(n > 0);
                buf.extend_from_slice(&chunk[..n]);
                if let wsproto::handshake::Status::Complete(r) = hs.receive(&mut buf).unwrap() {
                    break r;
                }
            };
            let mut out = Vec::new();
            let mut conn = req
                .accept(AcceptOptions::new(), &mut out, Config::default())
                .unwrap();
            conn.send(Message::text("welcome")).unwrap();
            while let Some(c) = conn.poll_transmit() {
                out.extend_from_slice(&c);
            }
            tcp.write_all(&out).unwrap();
            // then behave: run the rest with the blocking driver
            let mut ws = WebSocket::from_connection(tcp, conn);
            loop {
                if let Event::Closed(r) = ws.read().unwrap() {
                    return r;
                }
            }
        });
        let mut ws = connect(addr, &url(addr));
        assert_eq!(ws.read().unwrap(), Event::Message(Message::text("welcome")));
        ws.close(None).unwrap();
        while !matches!(ws.read().unwrap(), Event::Closed(_)) {}
        assert!(join(handle).is_clean());
    });
}

#[test]
fn the_server_vanishing_without_a_close_frame_is_abnormal() {
    with_watchdog(|| {
        let (addr, handle) = server(|tcp| {
            let mut raw = mute_server(tcp);
            // half a frame, then the connection goes away
            raw.write_all(&[0x82, 0x05, 1, 2]).unwrap();
        });
        let mut ws = connect(addr, &url(addr));
        join(handle);
        let ev = ws.read().unwrap();
        assert_eq!(ev, Event::Closed(CloseReason::Abnormal));
        let Event::Closed(reason) = ev else {
            unreachable!()
        };
        assert_eq!(reason.code(), CloseCode::ABNORMAL);
        assert!(matches!(ws.read(), Err(blocking::Error::Closed)));
    });
}
