#![cfg(feature = "tokio")]
//! Integration tests of the tokio adapter (`wsproto::tokio`), through its
//! public API only: `WebSocketStream` against another `WebSocketStream` or
//! against a "raw peer" (wsproto's sans-IO `Connection`, or hand-written
//! bytes) over `tokio::io::duplex` or real TCP on 127.0.0.1.
//!
//! The dev-dependency on tokio does not enable `test-util`, so
//! `tokio::time::pause()` is unavailable: timer tests use real time with
//! short configured durations and loose upper bounds. Every wait is bounded
//! (`within`), and the one test that can spin without yielding runs under a
//! thread watchdog.

mod common;

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{stream, Sink, SinkExt, StreamExt};
use tokio::io::{
    duplex, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf,
};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::{sleep, timeout, Instant};
use wsproto::frame::{FrameDecoder, OpCode};
use wsproto::handshake::{AcceptOptions, ClientHandshake, ClientRequest, ServerHandshake, Status};
use wsproto::tokio::{
    accept, accept_with, client_async, connect, Error, Rejection, WebSocketStream,
};
use wsproto::{
    ApiMisuse, CapacityError, CloseCode, CloseFrame, CloseReason, Config, Connection,
    ConnectionState, Event, HandshakeError, Initiator, Message, ProtocolError, Role, Timeout,
};

use common::frame;

// ------------------------------------------------------------------ helpers

/// Upper bound for any single wait in these tests; far above what is needed.
const LIMIT: Duration = Duration::from_secs(20);

/// Await `fut`, failing the test if it takes longer than [`LIMIT`].
async fn within<F: Future>(fut: F) -> F::Output {
    match timeout(LIMIT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("timed out after {LIMIT:?}: hang or deadlock"),
    }
}

/// Await a wait that only a timer of the stream can end: it must finish
/// well within `PROMPT` (an outer timeout also wakes the task, which would
/// otherwise hide a timer that never wakes it).
async fn prompt<F: Future>(fut: F) -> F::Output {
    match timeout(PROMPT, fut).await {
        Ok(v) => v,
        Err(_) => panic!("not done after {PROMPT:?}: a timer did not wake the stream"),
    }
}

const PROMPT: Duration = Duration::from_secs(3);

/// `Some(output)` if `fut` finishes within `d`, `None` if it is still pending.
async fn finishes_within<F: Future>(d: Duration, fut: F) -> Option<F::Output> {
    timeout(d, fut).await.ok()
}

fn cfg() -> Config {
    Config::default()
}

fn big_cfg() -> Config {
    let mut c = Config::default();
    c.limits.max_message = 32 << 20;
    c.limits.max_frame_payload = 32 << 20;
    c.limits.max_outbound = 32 << 20;
    c
}

fn request() -> ClientRequest {
    ClientRequest::from_url("ws://localhost/").unwrap()
}

type Ws<S> = WebSocketStream<S>;

/// A client and a server `WebSocketStream` over an in-memory duplex pipe
/// with `buf` bytes of buffering per direction.
async fn duplex_pair(
    client: Config,
    server: Config,
    buf: usize,
) -> (Ws<DuplexStream>, Ws<DuplexStream>) {
    let (a, b) = duplex(buf);
    let req = request();
    let (c, s) =
        within(async { tokio::join!(client_async(&req, a, client), accept(b, server)) }).await;
    (c.expect("client handshake").0, s.expect("server handshake"))
}

/// A client (from `connect`) and a server (`accept`) over real TCP.
async fn tcp_pair(client: Config, server: Config) -> (Ws<TcpStream>, Ws<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("ws://{}/", listener.local_addr().unwrap());
    let srv = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        tcp.set_nodelay(true).unwrap();
        accept(tcp, server).await
    });
    let (c, _) = within(connect(&url, client)).await.expect("connect");
    let s = within(srv).await.unwrap().expect("accept");
    (c, s)
}

/// Echo every message until the stream ends; returns how it ended.
fn spawn_echo<S>(mut ws: Ws<S>) -> tokio::task::JoinHandle<Option<CloseReason>>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        while let Some(m) = ws.next().await {
            match m {
                Ok(m) => {
                    if ws.send(m).await.is_err() {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        ws.close_reason()
    })
}

/// The other end driven by hand with wsproto's sans-IO [`Connection`].
struct RawPeer<S> {
    io: S,
    conn: Connection,
}

impl<S: AsyncRead + AsyncWrite + Unpin> RawPeer<S> {
    /// Run the client handshake by hand.
    async fn client(mut io: S, config: Config) -> Self {
        let mut out = Vec::new();
        let mut hs =
            ClientHandshake::new(&request(), *b"raw-peer-nonce!!", &config.limits, &mut out)
                .unwrap();
        io.write_all(&out).await.unwrap();
        let mut buf = BytesMut::new();
        loop {
            let n = io.read_buf(&mut buf).await.unwrap();
            assert!(n > 0, "EOF during the handshake");
            if let Status::Complete(_) = hs.receive(&mut buf).unwrap() {
                break;
            }
        }
        let conn = Connection::after_handshake(Role::Client, config, &buf);
        RawPeer { io, conn }
    }

    /// Run the server handshake by hand (accepting anything valid).
    async fn server(mut io: S, config: Config) -> Self {
        let mut hs = ServerHandshake::new(&config.limits);
        let mut buf = BytesMut::new();
        let req = loop {
            let n = io.read_buf(&mut buf).await.unwrap();
            assert!(n > 0, "EOF during the handshake");
            if let Status::Complete(r) = hs.receive(&mut buf).unwrap() {
                break r;
            }
        };
        let mut response = Vec::new();
        let mut conn = req
            .accept(AcceptOptions::new(), &mut response, config)
            .unwrap();
        conn.receive(&buf);
        io.write_all(&response).await.unwrap();
        RawPeer { io, conn }
    }

    async fn flush(&mut self) {
        while let Some(chunk) = self.conn.poll_transmit() {
            self.io.write_all(&chunk).await.unwrap();
        }
        self.io.flush().await.unwrap();
    }

    async fn send(&mut self, m: Message) {
        self.conn.send(m).unwrap();
        self.flush().await;
    }

    async fn write_raw(&mut self, bytes: &[u8]) {
        self.io.write_all(bytes).await.unwrap();
        self.io.flush().await.unwrap();
    }

    /// The next event (replies such as pongs and close replies are written
    /// before it is returned); `None` once the connection is closed.
    async fn next_event(&mut self) -> Option<Event> {
        loop {
            match self.conn.poll_event() {
                Ok(Some(ev)) => {
                    self.flush().await;
                    return Some(ev);
                }
                Ok(None) => {}
                Err(e) => panic!("raw peer saw a protocol error: {e}"),
            }
            if self.conn.state() == ConnectionState::Closed {
                return None;
            }
            let n = self
                .io
                .read_buf(self.conn.input_buffer())
                .await
                .expect("raw peer read");
            if n == 0 {
                self.conn.receive_eof();
            }
        }
    }

    /// Like `next_event`, skipping pings and pongs.
    async fn next_non_control(&mut self) -> Option<Event> {
        loop {
            match self.next_event().await? {
                Event::Ping(_) | Event::Pong(_) => {}
                ev => return Some(ev),
            }
        }
    }

    /// Read until the transport's EOF. Panics on a reset: the other side
    /// must close gracefully.
    async fn expect_eof(&mut self) {
        let mut rest = Vec::new();
        let r = self.io.read_to_end(&mut rest).await;
        assert!(r.is_ok(), "expected a clean EOF, got {r:?}");
        assert!(rest.is_empty(), "bytes after the close frame: {rest:02x?}");
    }
}

/// Masked client frame with a raw first byte (FIN/RSV/opcode) and payload.
fn raw_client_frame(first: u8, payload: &[u8]) -> Vec<u8> {
    assert!(payload.len() < 126);
    let key = [0x11, 0x22, 0x33, 0x44];
    let mut out = vec![first, 0x80 | payload.len() as u8];
    out.extend_from_slice(&key);
    out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    out
}

fn assert_close_code(reason: &CloseReason, code: u16) {
    match reason {
        CloseReason::Clean {
            peer_frame: Some(f),
            ..
        } => assert_eq!(f.code, CloseCode(code), "{reason:?}"),
        other => panic!("expected a clean close with code {code}, got {other:?}"),
    }
}

fn texts() -> Vec<String> {
    vec![
        String::new(),
        "hello".into(),
        "héllo wörld — ½ ∑ 日本語".into(),
        "🦀🎉👍🏽 👨‍👩‍👧‍👦".into(),
        "x🦀".repeat(10_000),
        "日本".repeat(40_000),
    ]
}

fn all_bytes() -> Vec<u8> {
    (0..=255u8).cycle().take(256 * 17).collect()
}

// ----------------------------------------------------------------- echoes

#[tokio::test]
async fn echo_text_and_binary_round_trip() {
    let (mut client, server) = duplex_pair(cfg(), cfg(), 64 * 1024).await;
    let echo = spawn_echo(server);
    for t in texts() {
        let m = Message::text(t);
        within(client.send(m.clone())).await.unwrap();
        assert_eq!(within(client.next()).await.unwrap().unwrap(), m);
    }
    for b in [vec![], all_bytes(), vec![0u8; 1], vec![0xff; 3]] {
        let m = Message::binary(b);
        within(client.send(m.clone())).await.unwrap();
        assert_eq!(within(client.next()).await.unwrap().unwrap(), m);
    }
    let reason = within(client.close(None)).await.unwrap();
    assert_eq!(
        reason,
        CloseReason::Clean {
            initiator: Initiator::Local,
            peer_frame: None
        }
    );
    let server_reason = within(echo).await.unwrap();
    assert_eq!(
        server_reason,
        Some(CloseReason::Clean {
            initiator: Initiator::Peer,
            peer_frame: None
        })
    );
}

#[tokio::test]
async fn echo_boundary_sizes_over_tcp() {
    let (mut client, server) = tcp_pair(cfg(), cfg()).await;
    let echo = spawn_echo(server);
    for size in [0usize, 1, 125, 126, 127, 65535, 65536, 65537, 1 << 20] {
        let bin = Message::binary((0..size).map(|i| (i * 31 % 251) as u8).collect::<Vec<_>>());
        within(client.send(bin.clone())).await.unwrap();
        let got = within(client.next()).await.unwrap().unwrap();
        assert_eq!(got.len(), size);
        assert_eq!(got, bin, "binary of {size} bytes");

        let text = Message::text("a".repeat(size));
        within(client.send(text.clone())).await.unwrap();
        assert_eq!(
            within(client.next()).await.unwrap().unwrap(),
            text,
            "text of {size} bytes"
        );
    }
    within(client.close(None)).await.unwrap();
    assert!(within(echo).await.unwrap().unwrap().is_clean());
}

#[tokio::test]
async fn echo_16_mib_with_raised_limits() {
    let (mut client, server) = tcp_pair(big_cfg(), big_cfg()).await;
    let echo = spawn_echo(server);
    let payload: Vec<u8> = (0..16usize << 20).map(|i| (i ^ (i >> 8)) as u8).collect();
    let m = Message::binary(payload);
    within(client.send(m.clone())).await.unwrap();
    assert_eq!(within(client.next()).await.unwrap().unwrap(), m);
    // 16 MiB + 1 with raised limits still fine
    let m = Message::text("z".repeat((16 << 20) + 1));
    within(client.send(m.clone())).await.unwrap();
    assert_eq!(within(client.next()).await.unwrap().unwrap(), m);
    within(client.close(None)).await.unwrap();
    within(echo).await.unwrap();
}

#[tokio::test]
async fn over_default_limit_is_refused_with_1009_and_sender_sees_it() {
    // The client allows 32 MiB, the server keeps the 16 MiB default: one
    // byte over is refused at the frame header with 1009, while most of the
    // payload is still in flight (the server's lingering close drains it).
    let (client, server) = tcp_pair(big_cfg(), cfg()).await;
    let srv = tokio::spawn(async move {
        let mut server = server;
        let first = server.next().await;
        (first, server.next().await.is_none())
    });
    let (mut tx, mut rx) = client.split();
    let big = Message::binary(vec![1u8; (16 << 20) + 1]);
    let (sent, got) = within(async { tokio::join!(tx.send(big), rx.next()) }).await;
    // the payload went out (the server drained it) or the transport broke
    // after the close frame was read; either way the reader saw the close
    let _ = sent;
    assert!(got.is_none(), "no message expected, got {got:?}");
    assert_close_code(&rx.close_reason().expect("ended"), 1009);
    let (first, ended) = within(srv).await.unwrap();
    match first {
        Some(Err(e)) => {
            assert_eq!(e.close_code(), Some(CloseCode::TOO_BIG), "{e:?}");
            assert!(matches!(
                e,
                Error::Ws(wsproto::Error::Capacity(
                    CapacityError::MessageTooLarge { .. }
                )) | Error::Ws(wsproto::Error::Capacity(
                    CapacityError::FrameTooLarge { .. }
                ))
            ));
        }
        other => panic!("expected a 1009 error, got {other:?}"),
    }
    assert!(ended);
}

#[tokio::test]
async fn pipelined_send_all_and_feed_flush() {
    // buffers large enough that the echo server never blocks on a client
    // that is not reading yet
    let (mut client, server) = duplex_pair(cfg(), cfg(), 4 << 20).await;
    let echo = spawn_echo(server);
    let msgs: Vec<Message> = (0..1000)
        .map(|i| Message::text(format!("msg {i}")))
        .collect();
    let mut s = stream::iter(msgs.clone().into_iter().map(Ok));
    within(client.send_all(&mut s)).await.unwrap();
    for m in &msgs {
        within(client.feed(Message::binary(m.as_bytes().to_vec())))
            .await
            .unwrap();
    }
    within(client.flush()).await.unwrap();
    for m in &msgs {
        assert_eq!(&within(client.next()).await.unwrap().unwrap(), m);
    }
    for m in &msgs {
        let got = within(client.next()).await.unwrap().unwrap();
        assert_eq!(got, Message::binary(m.as_bytes().to_vec()));
    }
    within(client.close(None)).await.unwrap();
    within(echo).await.unwrap();
}

#[tokio::test]
async fn leftover_bytes_after_handshake_heads_are_kept() {
    // The client's first frame rides in the same write as its request, and
    // the server's first frame in the same write as its 101 response.
    let (a, b) = duplex(64 * 1024);
    let client = tokio::spawn(async move {
        let mut io = a;
        let mut out = Vec::new();
        let mut hs =
            ClientHandshake::new(&request(), *b"0123456789abcdef", &cfg().limits, &mut out)
                .unwrap();
        out.extend_from_slice(&frame(Role::Client, OpCode::Text, true, b"early bird"));
        io.write_all(&out).await.unwrap();
        let mut buf = BytesMut::new();
        loop {
            assert!(io.read_buf(&mut buf).await.unwrap() > 0);
            if let Status::Complete(_) = hs.receive(&mut buf).unwrap() {
                break;
            }
        }
        let mut peer = RawPeer {
            conn: Connection::after_handshake(Role::Client, cfg(), &buf),
            io,
        };
        peer.next_event().await
    });
    let mut server = within(accept(b, cfg())).await.unwrap();
    assert_eq!(
        within(server.next()).await.unwrap().unwrap(),
        Message::text("early bird")
    );
    within(server.send(Message::text("reply"))).await.unwrap();
    assert_eq!(
        within(client).await.unwrap(),
        Some(Event::Message(Message::text("reply")))
    );

    // and the other way round: a raw server writes 101 + a frame at once
    let (a, b) = duplex(64 * 1024);
    let raw_server = tokio::spawn(async move {
        let mut io = b;
        let mut hs = ServerHandshake::new(&cfg().limits);
        let mut buf = BytesMut::new();
        let req = loop {
            assert!(io.read_buf(&mut buf).await.unwrap() > 0);
            if let Status::Complete(r) = hs.receive(&mut buf).unwrap() {
                break r;
            }
        };
        let mut out = Vec::new();
        let conn = req.accept(AcceptOptions::new(), &mut out, cfg()).unwrap();
        out.extend_from_slice(&frame(Role::Server, OpCode::Binary, true, b"\x00\x01\x02"));
        io.write_all(&out).await.unwrap();
        RawPeer { io, conn }
    });
    let (mut client, _) = within(client_async(&request(), a, cfg())).await.unwrap();
    assert_eq!(
        within(client.next()).await.unwrap().unwrap(),
        Message::binary(vec![0u8, 1, 2])
    );
    drop(raw_server);
}

#[tokio::test]
async fn subprotocol_is_negotiated() {
    let (a, b) = duplex(64 * 1024);
    let req = request().protocols(["v2", "chat"]);
    let (c, s) = within(async {
        tokio::join!(
            client_async(&req, a, cfg()),
            accept_with(b, cfg(), |r| {
                assert_eq!(r.protocols(), ["v2", "chat"]);
                Ok(AcceptOptions::new().protocol("chat"))
            })
        )
    })
    .await;
    let (_ws, accepted) = c.unwrap();
    s.unwrap();
    assert_eq!(accepted.protocol.as_deref(), Some("chat"));
}

// ------------------------------------------------------------------- split

async fn split_round(client: Ws<DuplexStream>, n: usize) -> Ws<DuplexStream> {
    let (mut tx, mut rx) = client.split();
    let writer = tokio::spawn(async move {
        for i in 0..n {
            tx.send(Message::text(format!("{i}"))).await.unwrap();
        }
        tx
    });
    let reader = tokio::spawn(async move {
        for i in 0..n {
            let m = rx.next().await.expect("stream ended").unwrap();
            assert_eq!(m.as_text(), Some(format!("{i}").as_str()));
        }
        rx
    });
    let (tx, rx) = within(async { tokio::join!(writer, reader) }).await;
    rx.unwrap().reunite(tx.unwrap()).expect("same stream")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn split_reader_and_writer_tasks_never_deadlock() {
    for round in 0..30 {
        // a tiny pipe forces both directions to block often
        let buf = [64, 512, 4096][round % 3];
        let (client, server) = duplex_pair(cfg(), cfg(), buf).await;
        let echo = spawn_echo(server);
        let mut client = split_round(client, 1000).await;
        // the reunited stream still works as one
        within(client.send(Message::text("after reunite")))
            .await
            .unwrap();
        assert_eq!(
            within(client.next()).await.unwrap().unwrap(),
            Message::text("after reunite")
        );
        let reason = within(client.close(None)).await.unwrap();
        assert!(reason.is_clean(), "round {round}: {reason:?}");
        assert!(within(echo).await.unwrap().unwrap().is_clean());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn split_over_tcp_with_send_all() {
    for _ in 0..5 {
        let (client, server) = tcp_pair(cfg(), cfg()).await;
        let echo = spawn_echo(server);
        let (mut tx, mut rx) = client.split();
        let n = 2000;
        let writer = tokio::spawn(async move {
            let mut s = stream::iter(
                (0..n).map(|i| Ok(Message::binary(vec![(i % 256) as u8; 1 + i % 3000]))),
            );
            tx.send_all(&mut s).await.unwrap();
            tx
        });
        let reader = tokio::spawn(async move {
            for i in 0..n {
                let m = rx.next().await.expect("ended").unwrap();
                assert_eq!(m.len(), 1 + i % 3000);
                assert!(m.as_bytes().iter().all(|&b| b == (i % 256) as u8));
            }
            rx
        });
        let (tx, rx) = within(async { tokio::join!(writer, reader) }).await;
        let (mut tx, mut rx) = (tx.unwrap(), rx.unwrap());
        // close from the write half; the read half sees the handshake end
        within(tx.close_with(Some(CloseFrame::new(CloseCode::NORMAL, "done"))))
            .await
            .unwrap();
        assert!(within(rx.next()).await.is_none());
        assert_eq!(
            rx.close_reason(),
            Some(CloseReason::Clean {
                initiator: Initiator::Local,
                peer_frame: Some(CloseFrame::new(CloseCode::NORMAL, ""))
            })
        );
        assert!(within(echo).await.unwrap().unwrap().is_clean());
    }
}

#[tokio::test]
async fn reunite_rejects_halves_of_different_streams() {
    let (c1, _s1) = duplex_pair(cfg(), cfg(), 1024).await;
    let (c2, _s2) = duplex_pair(cfg(), cfg(), 1024).await;
    let (tx1, rx1) = c1.split();
    let (tx2, rx2) = c2.split();
    let (rx1, tx2) = rx1.reunite(tx2).expect_err("different streams");
    assert!(rx1.reunite(tx1).is_ok());
    assert!(rx2.reunite(tx2).is_ok());
}

// ----------------------------------------------- replies while only reading

#[tokio::test]
async fn pong_is_sent_while_the_server_only_reads() {
    let (a, b) = duplex(64 * 1024);
    let (server, peer) =
        within(async { tokio::join!(accept(b, cfg()), RawPeer::client(a, cfg())) }).await;
    let mut server = server.unwrap();
    let mut peer = peer;
    // the application only ever reads
    let app = tokio::spawn(async move { server.next().await.map(|m| m.unwrap()) });
    peer.conn
        .ping(Bytes::from_static(b"are you there"))
        .unwrap();
    peer.flush().await;
    assert_eq!(
        within(peer.next_event()).await,
        Some(Event::Pong(Bytes::from_static(b"are you there")))
    );
    // still open: a message gets through afterwards
    peer.send(Message::text("still here")).await;
    assert_eq!(
        within(app).await.unwrap(),
        Some(Message::text("still here"))
    );
}

#[tokio::test]
async fn pong_is_sent_while_the_client_only_reads() {
    let (a, b) = duplex(64 * 1024);
    let req = request();
    let (client, peer) =
        within(async { tokio::join!(client_async(&req, a, cfg()), RawPeer::server(b, cfg())) })
            .await;
    let (mut client, _) = client.unwrap();
    let mut peer = peer;
    let app = tokio::spawn(async move {
        let m = client.next().await.map(|m| m.unwrap());
        (m, client)
    });
    peer.conn.ping(Bytes::from_static(b"\x00\xffping")).unwrap();
    peer.flush().await;
    assert_eq!(
        within(peer.next_event()).await,
        Some(Event::Pong(Bytes::from_static(b"\x00\xffping")))
    );
    peer.send(Message::binary(vec![9u8; 300])).await;
    let (m, _client) = within(app).await.unwrap();
    assert_eq!(m, Some(Message::binary(vec![9u8; 300])));
}

#[tokio::test]
async fn close_reply_is_sent_while_only_reading_and_server_closes_first() {
    let (a, b) = duplex(64 * 1024);
    let (server, peer) =
        within(async { tokio::join!(accept(b, cfg()), RawPeer::client(a, cfg())) }).await;
    let mut server = server.unwrap();
    let mut peer = peer;
    let app = tokio::spawn(async move {
        let end = server.next().await.map(|m| m.unwrap());
        (end, server.close_reason(), server)
    });
    peer.conn
        .close(Some(CloseFrame::new(CloseCode::GOING_AWAY, "bye")))
        .unwrap();
    peer.flush().await;
    assert_eq!(
        within(peer.next_event()).await,
        Some(Event::Closed(CloseReason::Clean {
            initiator: Initiator::Local,
            peer_frame: Some(CloseFrame::new(CloseCode::GOING_AWAY, ""))
        }))
    );
    // the server closes its side first (RFC 6455 §7.1.1) while the peer
    // still holds its end open
    within(peer.expect_eof()).await;
    let (end, reason, mut server) = within(app).await.unwrap();
    assert_eq!(end, None);
    assert_eq!(
        reason,
        Some(CloseReason::Clean {
            initiator: Initiator::Peer,
            peer_frame: Some(CloseFrame::new(CloseCode::GOING_AWAY, "bye"))
        })
    );
    // after the end
    assert!(within(server.next()).await.is_none());
    assert!(matches!(
        within(server.send(Message::text("late"))).await,
        Err(Error::Closed)
    ));
}

// --------------------------------------------------------------- keepalive

fn keepalive_cfg(interval_ms: u64, timeout_ms: u64) -> Config {
    let mut c = cfg();
    c.keepalive_interval = Some(Duration::from_millis(interval_ms));
    c.keepalive_timeout = Duration::from_millis(timeout_ms);
    c
}

#[tokio::test]
async fn keepalive_pings_an_idle_peer_that_answers() {
    let (a, b) = duplex(64 * 1024);
    let (server, peer) = within(async {
        tokio::join!(accept(b, keepalive_cfg(50, 200)), RawPeer::client(a, cfg()))
    })
    .await;
    let mut server = server.unwrap();
    let mut peer = peer;
    let app = tokio::spawn(async move {
        let r = server.next().await.map(|m| m.unwrap());
        (r, server.close_reason())
    });
    // the peer never sends data; its connection answers every ping
    let start = Instant::now();
    let mut pings = 0;
    while pings < 6 {
        match prompt(peer.next_event()).await {
            Some(Event::Ping(_)) => pings += 1,
            other => panic!("expected a keepalive ping, got {other:?}"),
        }
    }
    // six pings need at least six intervals, and the connection survived
    // well past interval + timeout thanks to the pongs
    assert!(
        start.elapsed() >= Duration::from_millis(250),
        "{:?}",
        start.elapsed()
    );
    assert!(!app.is_finished(), "the connection should still be open");
    peer.send(Message::text("alive")).await;
    let (m, reason) = within(app).await.unwrap();
    assert_eq!(m, Some(Message::text("alive")));
    assert_eq!(reason, None);
}

#[tokio::test]
async fn keepalive_gives_up_on_a_silent_peer() {
    let (a, b) = duplex(64 * 1024);
    let (server, peer) = within(async {
        tokio::join!(
            accept(b, keepalive_cfg(100, 200)),
            RawPeer::client(a, cfg())
        )
    })
    .await;
    let mut server = server.unwrap();
    let start = Instant::now();
    // the peer never reads nor writes
    let end = prompt(server.next()).await;
    let elapsed = start.elapsed();
    assert!(end.is_none(), "{end:?}");
    assert_eq!(
        server.close_reason(),
        Some(CloseReason::TimedOut(Timeout::Keepalive))
    );
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(within(server.next()).await.is_none());
    // the peer saw at least one ping, then the transport closed
    let mut peer = peer;
    let mut pings = 0;
    while let Some(ev) = within(peer.next_event()).await {
        match ev {
            Event::Ping(_) => pings += 1,
            Event::Closed(CloseReason::Abnormal) => break,
            other => panic!("unexpected {other:?}"),
        }
    }
    assert!(pings >= 1);
}

// ------------------------------------------------------------------- close

#[tokio::test]
async fn close_returns_clean_with_peer_frame_and_server_closes_tcp_first() {
    let mut ccfg = cfg();
    // a client that did not observe the server's EOF would wait this long
    ccfg.close_timeout = Duration::from_secs(30);
    let (mut client, server) = tcp_pair(ccfg, cfg()).await;
    let echo = spawn_echo(server);
    let start = Instant::now();
    let reason = within(client.close(Some(CloseFrame::new(CloseCode::NORMAL, "bye"))))
        .await
        .unwrap();
    assert!(start.elapsed() < Duration::from_secs(5));
    assert_eq!(
        reason,
        CloseReason::Clean {
            initiator: Initiator::Local,
            peer_frame: Some(CloseFrame::new(CloseCode::NORMAL, ""))
        }
    );
    assert_eq!(client.close_reason(), Some(reason));
    assert_eq!(
        within(echo).await.unwrap(),
        Some(CloseReason::Clean {
            initiator: Initiator::Peer,
            peer_frame: Some(CloseFrame::new(CloseCode::NORMAL, "bye"))
        })
    );
    assert!(within(client.next()).await.is_none());
    assert!(matches!(
        within(client.send(Message::text("x"))).await,
        Err(Error::Closed)
    ));
    // closing again reports the same end
    assert!(within(client.close(None)).await.unwrap().is_clean());
}

#[tokio::test]
async fn raw_client_over_tcp_sees_close_reply_then_eof() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = accept(tcp, cfg()).await.unwrap();
        let r = ws.next().await;
        (r.is_none(), ws.close_reason())
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut peer = within(RawPeer::client(tcp, cfg())).await;
    peer.conn.close(None).unwrap();
    peer.flush().await;
    assert_eq!(
        within(peer.next_event()).await,
        Some(Event::Closed(CloseReason::Clean {
            initiator: Initiator::Local,
            peer_frame: None
        }))
    );
    within(peer.expect_eof()).await;
    let (ended, reason) = within(srv).await.unwrap();
    assert!(ended);
    assert_eq!(
        reason,
        Some(CloseReason::Clean {
            initiator: Initiator::Peer,
            peer_frame: None
        })
    );
}

#[tokio::test]
async fn client_waits_for_the_server_to_close_tcp() {
    let (a, b) = duplex(64 * 1024);
    let mut ccfg = cfg();
    ccfg.close_timeout = Duration::from_secs(30);
    let req = request();
    let (client, peer) =
        within(async { tokio::join!(client_async(&req, a, ccfg), RawPeer::server(b, cfg())) })
            .await;
    let (mut client, _) = client.unwrap();
    let mut peer = peer;
    let app = tokio::spawn(async move {
        let r = client.next().await;
        (r.is_none(), client.close_reason(), Instant::now())
    });
    peer.conn
        .close(Some(CloseFrame::new(4000, "server done")))
        .unwrap();
    peer.flush().await;
    // the client's reply arrives...
    assert!(matches!(
        within(peer.next_event()).await,
        Some(Event::Closed(CloseReason::Clean { .. }))
    ));
    // ...but the client keeps the transport open for the server to close
    sleep(Duration::from_millis(300)).await;
    assert!(
        !app.is_finished(),
        "the client must wait for the server's EOF"
    );
    let dropped_at = Instant::now();
    drop(peer);
    let (ended, reason, at) = within(app).await.unwrap();
    assert!(ended);
    assert!(at >= dropped_at);
    assert_eq!(
        reason,
        Some(CloseReason::Clean {
            initiator: Initiator::Peer,
            peer_frame: Some(CloseFrame::new(4000, "server done"))
        })
    );
}

#[tokio::test]
async fn client_gives_up_waiting_for_server_eof_after_close_timeout() {
    let (a, b) = duplex(64 * 1024);
    let mut ccfg = cfg();
    ccfg.close_timeout = Duration::from_millis(300);
    let req = request();
    let (client, peer) =
        within(async { tokio::join!(client_async(&req, a, ccfg), RawPeer::server(b, cfg())) })
            .await;
    let (mut client, _) = client.unwrap();
    let mut peer = peer;
    peer.conn.close(None).unwrap();
    peer.flush().await;
    let start = Instant::now();
    assert!(prompt(client.next()).await.is_none());
    let elapsed = start.elapsed();
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    assert!(client.close_reason().unwrap().is_clean());
}

#[tokio::test]
async fn close_times_out_when_peer_never_replies() {
    let (a, b) = duplex(64 * 1024);
    let mut scfg = cfg();
    scfg.close_timeout = Duration::from_millis(300);
    let (server, _peer) =
        within(async { tokio::join!(accept(b, scfg), RawPeer::client(a, cfg())) }).await;
    let mut server = server.unwrap();
    let start = Instant::now();
    let reason = prompt(server.close(None)).await.unwrap();
    assert_eq!(reason, CloseReason::TimedOut(Timeout::CloseHandshake));
    assert!(start.elapsed() >= Duration::from_millis(250));
    assert!(
        start.elapsed() < Duration::from_secs(2),
        "{:?}",
        start.elapsed()
    );
}

#[tokio::test]
async fn sink_close_sends_a_close_frame() {
    let (a, b) = duplex(64 * 1024);
    let (server, peer) =
        within(async { tokio::join!(accept(b, cfg()), RawPeer::client(a, cfg())) }).await;
    let mut server = server.unwrap();
    let mut peer = peer;
    within(SinkExt::close(&mut server)).await.unwrap();
    // closing is started: sending is refused as "not open"
    match within(server.send(Message::text("late"))).await {
        Err(Error::Ws(wsproto::Error::Misuse(ApiMisuse::NotOpen))) => {}
        other => panic!("expected NotOpen, got {other:?}"),
    }
    // the peer sees a close frame without a status and replies
    assert_eq!(
        within(peer.next_event()).await,
        Some(Event::Closed(CloseReason::Clean {
            initiator: Initiator::Peer,
            peer_frame: None
        }))
    );
    // the handshake completes while the stream is read
    assert!(within(server.next()).await.is_none());
    assert_eq!(
        server.close_reason(),
        Some(CloseReason::Clean {
            initiator: Initiator::Local,
            peer_frame: None
        })
    );
    within(peer.expect_eof()).await;
    assert!(within(server.next()).await.is_none());
    assert!(matches!(
        within(server.send(Message::text("later"))).await,
        Err(Error::Closed)
    ));
    // Sink::close after the end is harmless
    within(SinkExt::close(&mut server)).await.unwrap();
}

#[tokio::test]
async fn messages_in_flight_are_delivered_before_the_close() {
    let (a, b) = duplex(64 * 1024);
    let (server, peer) =
        within(async { tokio::join!(accept(b, cfg()), RawPeer::client(a, cfg())) }).await;
    let mut server = server.unwrap();
    let mut peer = peer;
    peer.conn.send(Message::text("one")).unwrap();
    peer.conn.send(Message::text("two")).unwrap();
    peer.conn
        .close(Some(CloseFrame::new(CloseCode::NORMAL, "")))
        .unwrap();
    peer.flush().await;
    assert_eq!(
        within(server.next()).await.unwrap().unwrap(),
        Message::text("one")
    );
    assert_eq!(
        within(server.next()).await.unwrap().unwrap(),
        Message::text("two")
    );
    assert!(within(server.next()).await.is_none());
    assert_close_code(&server.close_reason().unwrap(), 1000);
}

#[tokio::test]
async fn peer_eof_without_close_is_abnormal() {
    let (a, b) = duplex(64 * 1024);
    let (server, peer) =
        within(async { tokio::join!(accept(b, cfg()), RawPeer::client(a, cfg())) }).await;
    let mut server = server.unwrap();
    drop(peer);
    assert!(within(server.next()).await.is_none());
    assert_eq!(server.close_reason(), Some(CloseReason::Abnormal));
    assert!(within(server.send(Message::text("x"))).await.is_err());
}

// ---------------------------------------------------------- protocol errors

/// Send `bad` from a raw client; the server must yield an error with
/// `code`, the peer must get a close frame with `code` and then EOF.
async fn protocol_error_case(server_cfg: Config, bad: Vec<u8>, code: u16) -> Error {
    let (a, b) = duplex(64 * 1024);
    let (server, peer) =
        within(async { tokio::join!(accept(b, server_cfg), RawPeer::client(a, cfg())) }).await;
    let mut server = server.unwrap();
    let mut peer = peer;
    let app = tokio::spawn(async move {
        let first = server.next().await;
        let second = server.next().await;
        (first, second.is_none(), server)
    });
    peer.write_raw(&bad).await;
    let ev = within(peer.next_event()).await.expect("a close frame");
    match &ev {
        Event::Closed(r) => assert_close_code(r, code),
        other => panic!("expected a close frame, got {other:?}"),
    }
    within(peer.expect_eof()).await;
    drop(peer);
    let (first, ended, mut server) = within(app).await.unwrap();
    assert!(ended, "the stream ends after the error");
    let err = match first {
        Some(Err(e)) => e,
        other => panic!("expected an error, got {other:?}"),
    };
    assert_eq!(err.close_code(), Some(CloseCode(code)), "{err:?}");
    // a failure is reported as the error, not as a close reason
    assert_eq!(server.close_reason(), None);
    // sends report why the connection ended
    match within(server.send(Message::text("x"))).await {
        Err(Error::Ws(e)) => assert_eq!(e.close_code(), Some(CloseCode(code))),
        other => panic!("expected the connection's error, got {other:?}"),
    }
    err
}

#[tokio::test]
async fn reserved_opcode_fails_with_1002() {
    let err = protocol_error_case(cfg(), raw_client_frame(0x83, b""), 1002).await;
    assert!(matches!(
        err,
        Error::Ws(wsproto::Error::Protocol(ProtocolError::ReservedOpcode(3)))
    ));
}

#[tokio::test]
async fn unmasked_client_frame_fails_with_1002() {
    let err =
        protocol_error_case(cfg(), frame(Role::Server, OpCode::Text, true, b"hi"), 1002).await;
    assert!(matches!(
        err,
        Error::Ws(wsproto::Error::Protocol(ProtocolError::UnmaskedFrame))
    ));
}

#[tokio::test]
async fn invalid_utf8_fails_with_1007() {
    let err = protocol_error_case(
        cfg(),
        frame(Role::Client, OpCode::Text, true, b"ok \xff\xfe"),
        1007,
    )
    .await;
    assert!(matches!(
        err,
        Error::Ws(wsproto::Error::Protocol(ProtocolError::InvalidUtf8))
    ));
}

#[tokio::test]
async fn oversized_message_fails_with_1009() {
    let mut scfg = cfg();
    scfg.limits.max_message = 1000;
    let err = protocol_error_case(
        scfg,
        frame(Role::Client, OpCode::Binary, true, &[0u8; 1001]),
        1009,
    )
    .await;
    assert!(matches!(
        err,
        Error::Ws(wsproto::Error::Capacity(
            CapacityError::MessageTooLarge { .. }
        ))
    ));
}

#[tokio::test]
async fn lingering_close_delivers_the_close_frame_despite_unread_data() {
    // Over real TCP: closing a socket with unread input sends a RST, which
    // can destroy the close frame before the peer reads it. The peer keeps
    // sending 8 MiB after its bad frame and must still get the 1002 close
    // frame and a clean EOF.
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let mut ws = accept(tcp, cfg()).await.unwrap();
        let first = ws.next().await;
        (first, ws.next().await.is_none())
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let peer = within(RawPeer::client(tcp, cfg())).await;
    let (mut rd, mut wr) = peer.io.into_split();
    let writer = tokio::spawn(async move {
        let mut data = raw_client_frame(0x83, b"");
        let chunk = frame(Role::Client, OpCode::Binary, true, &[0x5a; 64 * 1024]);
        for _ in 0..128 {
            data.extend_from_slice(&chunk);
        }
        let r = wr.write_all(&data).await;
        (r, wr)
    });
    let mut got = Vec::new();
    let read = within(rd.read_to_end(&mut got)).await;
    assert!(read.is_ok(), "expected a clean EOF, got {read:?}");
    let frames = common::decode_all(&got, Role::Server);
    assert_eq!(frames.len(), 1, "{frames:?}");
    assert_eq!(common::sole_close_code(&got, Role::Server), 1002);
    let (written, wr) = within(writer).await.unwrap();
    assert!(written.is_ok(), "the server drained our data: {written:?}");
    drop(wr);
    let (first, ended) = within(srv).await.unwrap();
    assert_eq!(
        first.unwrap().unwrap_err().close_code(),
        Some(CloseCode::PROTOCOL_ERROR)
    );
    assert!(ended);
}

// --------------------------------------------------------------- handshake

async fn raw_http(request: &[u8], server_cfg: Config) -> (String, Result<Ws<DuplexStream>, Error>) {
    let (mut a, b) = duplex(64 * 1024);
    let srv = tokio::spawn(accept_with(b, server_cfg, |req| {
        if req.header("Authorization").is_none() {
            return Err(Rejection::status(401)
                .header("WWW-Authenticate", "Bearer realm=\"ws\"")
                .body("token required"));
        }
        Ok(AcceptOptions::new())
    }));
    a.write_all(request).await.unwrap();
    let mut response = Vec::new();
    within(a.read_to_end(&mut response)).await.unwrap();
    drop(a);
    let r = within(srv).await.unwrap();
    (String::from_utf8(response).unwrap(), r)
}

const GOOD_REQUEST: &str = "GET /chat HTTP/1.1\r\nHost: localhost\r\nUpgrade: websocket\r\n\
    Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
    Sec-WebSocket-Version: 13\r\n";

#[tokio::test]
async fn accept_with_rejection_sends_status_headers_and_body() {
    let req = format!("{GOOD_REQUEST}\r\n");
    let (response, result) = raw_http(req.as_bytes(), cfg()).await;
    assert!(response.starts_with("HTTP/1.1 401 "), "{response}");
    assert!(
        response.contains("\r\nWWW-Authenticate: Bearer realm=\"ws\"\r\n"),
        "{response}"
    );
    assert!(response.ends_with("\r\n\r\ntoken required"), "{response}");
    assert!(matches!(result, Err(Error::Rejected(401))), "{result:?}");

    // with the header, the same request is accepted
    let req = format!("{GOOD_REQUEST}Authorization: Bearer x\r\n\r\n");
    let (a, b) = duplex(64 * 1024);
    let srv = tokio::spawn(accept_with(b, cfg(), |req| {
        assert_eq!(req.path(), "/chat");
        assert_eq!(req.header("authorization"), Some("Bearer x"));
        Ok(AcceptOptions::new().header("X-Hello", "yes"))
    }));
    let mut a = a;
    a.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 1024];
    let n = within(a.read(&mut buf)).await.unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    assert!(head.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
    assert!(head.contains("X-Hello: yes\r\n"));
    assert!(within(srv).await.unwrap().is_ok());
}

#[tokio::test]
async fn invalid_request_gets_400() {
    let req = "GET / HTTP/1.1\r\nHost: localhost\r\n\r\n";
    let (response, result) = raw_http(req.as_bytes(), cfg()).await;
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    assert!(
        matches!(result, Err(Error::Ws(wsproto::Error::Handshake(_)))),
        "{result:?}"
    );

    let (response, _) = raw_http(b"\x16\x03\x01\x02\x00garbage\r\n\r\n", cfg()).await;
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
}

#[tokio::test]
async fn wrong_version_gets_426() {
    let req = GOOD_REQUEST.replace("Version: 13", "Version: 8") + "\r\n";
    let (response, result) = raw_http(req.as_bytes(), cfg()).await;
    assert!(response.starts_with("HTTP/1.1 426 "), "{response}");
    assert!(
        response.contains("Sec-WebSocket-Version: 13\r\n"),
        "{response}"
    );
    assert!(
        matches!(
            result,
            Err(Error::Ws(wsproto::Error::Handshake(
                HandshakeError::UnsupportedVersion
            )))
        ),
        "{result:?}"
    );
}

#[tokio::test]
async fn oversized_request_gets_431() {
    let mut scfg = cfg();
    scfg.limits.max_handshake_bytes = 512;
    let req = format!("{GOOD_REQUEST}Cookie: {}\r\n\r\n", "c".repeat(2000));
    let (response, result) = raw_http(req.as_bytes(), scfg).await;
    assert!(response.starts_with("HTTP/1.1 431 "), "{response}");
    assert!(result.is_err());
}

fn short_handshake_cfg() -> Config {
    let mut c = cfg();
    c.handshake_timeout = Duration::from_millis(300);
    c
}

#[tokio::test]
async fn handshake_timeout_drops_a_silent_tcp_client() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let start = Instant::now();
        let r = accept(tcp, short_handshake_cfg()).await;
        (r, start.elapsed())
    });
    let mut tcp = TcpStream::connect(addr).await.unwrap();
    let (r, elapsed) = within(srv).await.unwrap();
    assert!(matches!(r, Err(Error::HandshakeTimeout)), "{r:?}");
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(5), "{elapsed:?}");
    // the connection was dropped
    let mut buf = [0u8; 16];
    let n = within(tcp.read(&mut buf)).await;
    assert!(matches!(n, Ok(0) | Err(_)), "{n:?}");
}

#[tokio::test]
async fn handshake_timeout_bounds_the_whole_request_not_each_read() {
    // one byte every 50 ms: each read is quick, the request never completes
    let (mut a, b) = duplex(64 * 1024);
    let start = Instant::now();
    let srv = tokio::spawn(accept(b, short_handshake_cfg()));
    let trickle = tokio::spawn(async move {
        for &byte in GOOD_REQUEST.as_bytes() {
            if a.write_all(&[byte]).await.is_err() {
                return a;
            }
            sleep(Duration::from_millis(50)).await;
        }
        a
    });
    let r = within(srv).await.unwrap();
    let elapsed = start.elapsed();
    assert!(matches!(r, Err(Error::HandshakeTimeout)), "{r:?}");
    assert!(elapsed >= Duration::from_millis(250), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
    // the server's end is gone: the trickler's next write fails
    let mut a = within(trickle).await.unwrap();
    assert!(a.write_all(b"x").await.is_err());
}

#[tokio::test]
async fn client_handshake_timeout_when_server_is_silent() {
    let (a, _b) = duplex(64 * 1024);
    let start = Instant::now();
    let r = within(client_async(&request(), a, short_handshake_cfg())).await;
    assert!(matches!(r, Err(Error::HandshakeTimeout)), "{r:?}");
    assert!(start.elapsed() >= Duration::from_millis(250));
}

#[tokio::test]
async fn connect_to_a_non_websocket_server_reports_unexpected_status() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = tokio::spawn(async move {
        let (mut tcp, _) = listener.accept().await.unwrap();
        let mut buf = BytesMut::new();
        while !buf.ends_with(b"\r\n\r\n") {
            assert!(tcp.read_buf(&mut buf).await.unwrap() > 0);
        }
        tcp.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot here!")
            .await
            .unwrap();
        let _ = tcp.read(&mut [0u8; 1]).await;
    });
    let r = within(connect(&format!("ws://{addr}/nope"), cfg())).await;
    match r {
        Err(Error::Ws(wsproto::Error::Handshake(HandshakeError::UnexpectedStatus(404)))) => {}
        other => panic!(
            "expected UnexpectedStatus(404), got {:?}",
            other.map(|_| ())
        ),
    }
    within(srv).await.unwrap();
}

#[tokio::test]
async fn connect_rejects_wss_and_bad_urls() {
    let r = connect("wss://localhost/", cfg()).await;
    assert!(
        matches!(&r, Err(Error::Io(e)) if e.kind() == io::ErrorKind::Unsupported),
        "{:?}",
        r.map(|_| ())
    );
    let r = connect("http://localhost/", cfg()).await;
    assert!(
        matches!(
            r,
            Err(Error::Ws(wsproto::Error::Misuse(ApiMisuse::InvalidUrl)))
        ),
        "{:?}",
        r.map(|_| ())
    );
}

// ----------------------------------------------------------- backpressure

#[tokio::test]
async fn backpressure_when_the_peer_does_not_read() {
    let mut ccfg = cfg();
    ccfg.limits.max_outbound = 16 * 1024;
    // a 4 KiB pipe: the peer (an unpolled stream) does not read
    let (mut client, mut server) = duplex_pair(ccfg, cfg(), 4 * 1024).await;
    let msg = |i: usize| Message::binary(vec![(i % 256) as u8; 1024]);
    let mut sent = 0;
    loop {
        match finishes_within(Duration::from_millis(50), client.feed(msg(sent))).await {
            Some(Ok(())) => sent += 1,
            Some(Err(e)) => panic!("feed failed: {e}"),
            None => break,
        }
        assert!(sent < 10_000, "no backpressure");
    }
    // bounded: queue limit + pipe + one message, give or take headers
    assert!(sent <= 16 + 4 + 2, "sent {sent} before blocking");
    let pending = client.with_connection(|c| c.pending_output());
    assert!(pending <= 16 * 1024 + 1100, "pending {pending}");
    // it stays pending and memory does not grow
    for _ in 0..5 {
        let r = finishes_within(
            Duration::from_millis(20),
            poll_fn(|cx| Pin::new(&mut client).poll_ready(cx)),
        )
        .await;
        assert!(r.is_none(), "poll_ready should stay pending");
        assert_eq!(client.with_connection(|c| c.pending_output()), pending);
    }
    // once the peer reads, everything goes through in order
    let reader = tokio::spawn(async move {
        for i in 0..sent + 10 {
            let m = server.next().await.unwrap().unwrap();
            assert_eq!(
                m,
                Message::binary(vec![(i % 256) as u8; 1024]),
                "message {i}"
            );
        }
        server
    });
    within(client.flush()).await.unwrap();
    for i in sent..sent + 10 {
        within(client.send(msg(i))).await.unwrap();
    }
    assert_eq!(client.with_connection(|c| c.pending_output()), 0);
    let _server = within(reader).await.unwrap();
}

#[tokio::test]
async fn a_ping_flood_cannot_grow_our_output() {
    let (a, b) = duplex(4 * 1024);
    let (server, peer) =
        within(async { tokio::join!(accept(b, cfg()), RawPeer::client(a, cfg())) }).await;
    let mut server = server.unwrap();
    let RawPeer { io, conn: _ } = peer;
    let (mut rd, mut wr) = tokio::io::split(io);
    let n: u32 = 20_000;
    let flood = tokio::spawn(async move {
        // 20 000 pings of 125 bytes (2.6 MB) while never reading
        let mut batch = Vec::new();
        for i in 0..n {
            let mut payload = vec![0u8; 125];
            payload[..4].copy_from_slice(&i.to_be_bytes());
            batch.extend_from_slice(&frame(Role::Client, OpCode::Ping, true, &payload));
            if batch.len() > 32 * 1024 {
                wr.write_all(&batch).await.unwrap();
                batch.clear();
            }
        }
        batch.extend_from_slice(&frame(Role::Client, OpCode::Text, true, b"done"));
        wr.write_all(&batch).await.unwrap();
        wr
    });
    // the server reads the whole flood while its writes are blocked; sample
    // its queue while it does (cancelling `next` between polls is harmless)
    let mut max_pending = 0;
    let mut samples = 0;
    let m = within(async {
        loop {
            if let Some(m) = finishes_within(Duration::from_millis(1), server.next()).await {
                break m;
            }
            samples += 1;
            max_pending = max_pending.max(server.with_connection(|c| c.pending_output()));
        }
    })
    .await;
    assert_eq!(m.unwrap().unwrap(), Message::text("done"));
    max_pending = max_pending.max(server.with_connection(|c| c.pending_output()));
    // at most 16 pending pongs plus the one being written (2 + 125 bytes
    // each)
    assert!(
        max_pending <= 17 * 127,
        "pending output {max_pending} ({samples} samples)"
    );
    let _wr = within(flood).await.unwrap();
    // now the peer reads: some pongs, the last one answering the last ping,
    // then our reply
    let srv = tokio::spawn(async move {
        server.send(Message::text("ack")).await.unwrap();
        server
    });
    let mut dec = FrameDecoder::new(Role::Client, 1 << 20);
    let mut buf = BytesMut::new();
    let mut pongs = Vec::new();
    'outer: loop {
        assert!(within(rd.read_buf(&mut buf)).await.unwrap() > 0);
        while let Some(f) = dec.decode(&mut buf).unwrap() {
            match f.header.opcode {
                OpCode::Pong => pongs.push(f.payload),
                OpCode::Text => {
                    assert_eq!(&f.payload[..], b"ack");
                    break 'outer;
                }
                other => panic!("unexpected {other:?}"),
            }
        }
    }
    assert!(!pongs.is_empty());
    assert!(
        pongs.len() < n as usize,
        "pongs were coalesced: {}",
        pongs.len()
    );
    let last = pongs.last().unwrap();
    assert_eq!(
        &last[..4],
        &(n - 1).to_be_bytes(),
        "the latest ping is answered"
    );
    let _server = within(srv).await.unwrap();
}

// ------------------------------------------------------------------ resets

async fn reset_case(server_sends: bool) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let srv = tokio::spawn(async move {
        let (tcp, _) = listener.accept().await.unwrap();
        let ws = accept(tcp, cfg()).await.unwrap();
        let (mut tx, mut rx) = ws.split();
        let writer = tokio::spawn(async move {
            if server_sends {
                // far more than the socket buffers hold
                for _ in 0..64 {
                    if tx.send(Message::binary(vec![0u8; 1 << 20])).await.is_err() {
                        return true;
                    }
                }
                false
            } else {
                true
            }
        });
        let mut results = Vec::new();
        while let Some(r) = rx.next().await {
            let is_err = r.is_err();
            results.push(r.map(|_| ()));
            if is_err {
                break;
            }
        }
        let after = rx.next().await.is_none();
        (results, after, writer.await.unwrap())
    });
    let tcp = TcpStream::connect(addr).await.unwrap();
    let mut peer = within(RawPeer::client(tcp, cfg())).await;
    // half a frame: header announcing 1000 bytes, then 10 of them
    let whole = frame(Role::Client, OpCode::Binary, true, &[7u8; 1000]);
    peer.write_raw(&whole[..18]).await;
    sleep(Duration::from_millis(50)).await;
    peer.io.set_zero_linger().unwrap();
    drop(peer); // RST
    let (results, ended, writer_failed) = within(srv).await.unwrap();
    assert!(ended, "the stream ends after the reset");
    assert!(writer_failed, "sends fail after the reset");
    match results.as_slice() {
        [] => {}
        [Err(Error::Io(_))] => {}
        other => panic!("expected an I/O error or the end, got {other:?}"),
    }
}

#[tokio::test]
async fn reset_mid_frame_while_reading() {
    reset_case(false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reset_mid_frame_while_writing() {
    reset_case(true).await;
}

// ------------------------------------------------------- suspected bugs

#[tokio::test]
async fn split_close_with_times_out_when_peer_never_replies() {
    // The write half starts the close; the read half is already parked in a
    // read. The close timer must still fire.
    let (a, b) = duplex(64 * 1024);
    let mut scfg = cfg();
    scfg.close_timeout = Duration::from_millis(300);
    let (server, _peer) =
        within(async { tokio::join!(accept(b, scfg), RawPeer::client(a, cfg())) }).await;
    let (mut tx, mut rx) = server.unwrap().split();
    let reader = tokio::spawn(async move {
        let r = rx.next().await;
        (r.is_none(), rx.close_reason())
    });
    sleep(Duration::from_millis(50)).await; // the reader is parked
    within(tx.close_with(None)).await.unwrap();
    let (ended, reason) = prompt(reader).await.unwrap();
    assert!(ended);
    assert_eq!(reason, Some(CloseReason::TimedOut(Timeout::CloseHandshake)));
}

/// A server with `queued` bytes of one binary message queued (not yet
/// written) over a 16 KiB pipe, and a raw client peer.
async fn write_blocked_server(
    queued: usize,
) -> (
    tokio::task::JoinHandle<(Option<Result<Message, Error>>, Option<CloseReason>)>,
    RawPeer<DuplexStream>,
) {
    let (a, b) = duplex(16 * 1024);
    let (server, peer) =
        within(async { tokio::join!(accept(b, cfg()), RawPeer::client(a, cfg())) }).await;
    let mut server = server.unwrap();
    within(server.feed(Message::binary(vec![7u8; queued])))
        .await
        .unwrap();
    let app = tokio::spawn(async move {
        let first = server.next().await;
        let _ = server.next().await;
        (first, server.close_reason())
    });
    // let the server fill the pipe and park
    sleep(Duration::from_millis(50)).await;
    (app, peer)
}

#[tokio::test]
async fn close_reply_is_not_lost_when_the_transport_is_write_blocked() {
    // The server has 256 KiB queued when the peer's close arrives, and the
    // 16 KiB pipe is full. The peer must still get the whole message and the
    // close reply (not a truncated frame followed by EOF).
    let (app, mut peer) = write_blocked_server(256 * 1024).await;
    peer.conn
        .close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")))
        .unwrap();
    peer.flush().await;
    sleep(Duration::from_millis(50)).await;
    match within(peer.next_non_control()).await {
        Some(Event::Message(m)) => assert!(m == Message::binary(vec![7u8; 256 * 1024])),
        other => panic!("expected the 256 KiB message, got {other:?}"),
    }
    assert!(matches!(
        within(peer.next_event()).await,
        Some(Event::Closed(CloseReason::Clean { .. }))
    ));
    let (first, reason) = within(app).await.unwrap();
    assert!(first.is_none());
    assert!(reason.unwrap().is_clean());
}

#[tokio::test]
async fn error_close_frame_is_not_lost_when_the_transport_is_write_blocked() {
    let (app, mut peer) = write_blocked_server(256 * 1024).await;
    peer.write_raw(&raw_client_frame(0x83, b"")).await;
    sleep(Duration::from_millis(50)).await;
    // the frame that had started going out is completed, then the close
    // frame follows (RFC 6455 §7.1.7)
    match within(peer.next_non_control()).await {
        Some(Event::Message(m)) => assert_eq!(m.len(), 256 * 1024),
        Some(Event::Closed(r)) => assert_close_code(&r, 1002),
        other => panic!("expected the message or the close frame, got {other:?}"),
    }
    if peer.conn.state() != ConnectionState::Closed {
        match within(peer.next_non_control()).await {
            Some(Event::Closed(r)) => assert_close_code(&r, 1002),
            other => panic!("expected the 1002 close frame, got {other:?}"),
        }
    }
    within(peer.expect_eof()).await;
    drop(peer);
    let (first, _) = within(app).await.unwrap();
    assert_eq!(
        first.unwrap().unwrap_err().close_code(),
        Some(CloseCode::PROTOCOL_ERROR)
    );
}

/// A transport that counts reads (to detect busy polling) and records
/// each write: `"write"` for `poll_write`, `"writev N"` for N buffers.
/// It offers vectored writes only when `vectored` is set.
struct Instrumented<S> {
    inner: S,
    reads: Arc<AtomicUsize>,
    writes: Arc<std::sync::Mutex<Vec<String>>>,
    vectored: bool,
}

impl<S> Instrumented<S> {
    fn new(inner: S, vectored: bool) -> Self {
        Instrumented {
            inner,
            reads: Arc::default(),
            writes: Arc::default(),
            vectored,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Instrumented<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        self.reads.fetch_add(1, Ordering::Relaxed);
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Instrumented<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.writes.lock().unwrap().push("write".into());
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.writes
            .lock()
            .unwrap()
            .push(format!("writev {}", bufs.len()));
        // all of them, as a socket's writev would take them
        let all: Vec<u8> = bufs.iter().flat_map(|b| b.iter().copied()).collect();
        Pin::new(&mut self.inner).poll_write(cx, &all)
    }
    fn is_write_vectored(&self) -> bool {
        self.vectored
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The peer sends a close frame, half-closes (EOF) and stops reading while
/// more than 64 frames are still queued on our side (so the Connection's
/// queue is not empty and the transport cannot be closed yet). Returns
/// whether the stream ended, how, and how many reads it made meanwhile.
async fn finishing_after_peer_eof() -> (bool, Option<CloseReason>, usize, Duration) {
    let (a, b) = duplex(1024);
    let io = Instrumented::new(b, false);
    let reads = io.reads.clone();
    let mut scfg = cfg();
    scfg.close_timeout = Duration::from_millis(500);
    let (server, peer) = tokio::join!(accept(io, scfg), RawPeer::client(a, cfg()));
    let mut server = server.unwrap();
    let mut peer = peer;
    for i in 0..200 {
        server
            .feed(Message::text(format!("{i:0>90}")))
            .await
            .unwrap();
    }
    peer.conn.close(None).unwrap();
    peer.flush().await;
    peer.io.shutdown().await.unwrap(); // EOF for the server
    reads.store(0, Ordering::Relaxed);
    let start = Instant::now();
    let end = server.next().await;
    let elapsed = start.elapsed();
    (
        end.is_none(),
        server.close_reason(),
        reads.load(Ordering::Relaxed),
        elapsed,
    )
}

#[test]
fn finishing_after_peer_eof_does_not_hang() {
    // A spin that never yields would hang a current-thread runtime for good
    // (its timers could not fire), so this runs under a thread watchdog.
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _ = done_tx.send(rt.block_on(finishing_after_peer_eof()));
    });
    match done_rx.recv_timeout(Duration::from_secs(10)) {
        Ok((ended, reason, _, elapsed)) => {
            assert!(ended);
            assert!(reason.unwrap().is_clean());
            // the peer never reads: we give up after close_timeout
            assert!(elapsed >= Duration::from_millis(400), "{elapsed:?}");
        }
        Err(_) => panic!("the stream hung after the peer's EOF"),
    }
}

#[tokio::test]
async fn finishing_after_peer_eof_does_not_busy_poll() {
    let (ended, _, reads, elapsed) = within(finishing_after_peer_eof()).await;
    assert!(ended);
    assert!(
        reads < 100,
        "{reads} reads of an EOF'd transport in {elapsed:?}: busy polling"
    );
}

/// Reads are sized to the frame: the first read has room for a 16 KiB
/// message whole, later ones for what the frame still owes
/// (`Connection::wanted_input`), so a large message does not arrive in many
/// small reads.
#[tokio::test]
async fn reads_are_sized_to_the_frame() {
    for (size, max_reads) in [(16 * 1024, 1), (300 * 1024, 2)] {
        let (mut peer, b) = duplex(1 << 20);
        let io = Instrumented::new(b, false);
        let reads = io.reads.clone();
        let mut server = WebSocketStream::from_connection(io, Connection::server(cfg()));
        let payload = vec![7u8; size];
        peer.write_all(&frame(Role::Client, OpCode::Binary, true, &payload))
            .await
            .unwrap();
        let got = within(server.next()).await.unwrap().unwrap();
        assert_eq!(got, Message::binary(payload));
        let n = reads.load(Ordering::Relaxed);
        assert!(n <= max_reads, "{size} bytes took {n} reads");
    }
}

/// On a transport with vectored writes, a small message (one buffer: header
/// and payload together) goes out in one plain write, and a large one
/// (header and the payload, zero-copy) in one write of two buffers; the
/// peer gets both intact.
#[tokio::test]
async fn one_buffer_is_one_plain_write_and_two_are_one_vectored_write() {
    let (mut a, b) = duplex(1 << 20);
    let io = Instrumented::new(b, true);
    let writes = io.writes.clone();
    let mut server = WebSocketStream::from_connection(io, Connection::server(cfg()));
    let sent = [
        Message::text("hello"),
        Message::binary(vec![9u8; 16 * 1024]),
    ];
    for (msg, write) in sent.iter().zip(["write", "writev 2"]) {
        within(server.send(msg.clone())).await.unwrap();
        let recorded = std::mem::take(&mut *writes.lock().unwrap());
        assert_eq!(recorded, [write], "writes for {msg:?}");
    }
    let mut peer = Connection::new(Role::Client, big_cfg());
    let mut got = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while got.len() < sent.len() {
        let n = within(a.read(&mut buf)).await.unwrap();
        assert!(n > 0, "EOF before both messages");
        peer.receive(&buf[..n]);
        while let Some(ev) = peer.poll_event().unwrap() {
            if let Event::Message(m) = ev {
                got.push(m);
            }
        }
    }
    assert_eq!(got, sent);
}

/// The handshake's state lives in a box that is freed when it completes:
/// a connection's task does not keep it for its whole life (about 2 KiB per
/// connection otherwise).
#[test]
fn handshake_futures_stay_small() {
    let (a, b) = duplex(64);
    let server = accept_with(b, cfg(), |_| Ok(AcceptOptions::new()));
    let request = ClientRequest::new("localhost", "/");
    let client = client_async(&request, a, cfg());
    // what the future holds before it is polled: its arguments and a box
    let limit = 2 * std::mem::size_of::<Config>() + 256;
    assert!(
        std::mem::size_of_val(&server) <= limit,
        "{}",
        std::mem::size_of_val(&server)
    );
    assert!(
        std::mem::size_of_val(&client) <= limit,
        "{}",
        std::mem::size_of_val(&client)
    );
}
