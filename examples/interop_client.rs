//! Interop checks with wsproto's tokio client against any echo server that
//! follows the contract of `tokio_echo_server` (echo text and binary, select
//! `chat` when offered, `close-me` → close 1000 `server closing`, messages up
//! to 64 MiB). `interop/run.sh` runs it against Python `websockets` and Node
//! `ws` echo servers.
//!
//! ```text
//! cargo run --release --features tokio --example interop_client -- ws://127.0.0.1:9001
//! ```
//!
//! Prints `RESULT <check> PASS [detail]` per check and stops at the first
//! failure with `RESULT <check> FAIL <what went wrong>` and exit status 1.
//! Every check is bounded by a timeout, so a stuck peer fails instead of
//! hanging.
//!
//! `INTEROP_DEFLATE=on` offers permessage-deflate (`DeflateConfig::default()`)
//! on every connection (needs the `deflate` feature); `INTEROP_DEFLATE_EXPECT`
//! (`SERVER_BITS/CLIENT_BITS/SERVER_NO_CONTEXT_TAKEOVER/CLIENT_NO_CONTEXT_TAKEOVER`,
//! e.g. `12/12/0/0`) is what the server must agree to.

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use tokio::net::TcpStream;
use wsproto::handshake::{Accepted, ClientRequest};
use wsproto::tokio::{client_async, WebSocketStream};
use wsproto::{CloseFrame, CloseReason, Config, Event, Initiator, Message, MessageKind};

type Ws = WebSocketStream<TcpStream>;
type Check = Result<String, String>;

const CHECK_TIMEOUT: Duration = Duration::from_secs(30);
const SIZES: [usize; 7] = [0, 125, 126, 65535, 65536, 1 << 20, 16 << 20];
const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
const TEXT_MULTIBYTE: &str =
    "héllo wörld — ÄÖÜß € 日本語 русский ελληνικά \u{80}\u{7ff}\u{800}\u{fffd}\u{ffff}";
const TEXT_EMOJI: &str = "😀🎉👍🏽 🇩🇪 👨‍👩‍👧‍👦 \u{10000}\u{10ffff}";

/// About 1 MiB of 2-, 3- and 4-byte UTF-8 sequences.
fn text_multibyte_1mib() -> String {
    let unit = format!("{TEXT_MULTIBYTE}{TEXT_EMOJI}");
    unit.repeat((1 << 20) / unit.len() + 1)
}

fn config() -> Config {
    let mut config = Config::default();
    config.limits.max_message = 64 << 20;
    config.limits.max_frame_payload = 64 << 20;
    config.close_timeout = Duration::from_secs(10);
    #[cfg(feature = "deflate")]
    if deflate_offered() {
        config.deflate = Some(wsproto::extension::deflate::DeflateConfig::default());
    }
    config
}

/// Whether to offer permessage-deflate (`INTEROP_DEFLATE=on`).
fn deflate_offered() -> bool {
    cfg!(feature = "deflate") && std::env::var("INTEROP_DEFLATE").is_ok_and(|m| m == "on")
}

/// A chat-like JSON message of exactly `n` ASCII bytes, about as
/// compressible as real chat traffic (the generator of the other interop
/// clients).
#[cfg(feature = "deflate")]
fn chat_json(n: usize, seed: u64) -> String {
    const WORDS: [&str; 20] = [
        "hello", "deploy", "the", "build", "is", "green", "lunch", "ship", "it", "p99", "latency",
        "ok", "review", "merge", "branch", "tests", "flaky", "again", "cache", "db",
    ];
    let mut x = seed * 7919 + 1;
    let mut s = format!(
        "{{\"type\":\"message\",\"room\":\"lobby\",\"user\":\"u{seed}\",\"ts\":{},\"text\":\"",
        1_700_000_000 + seed
    );
    while s.len() < n - 2 {
        x = x * 48271 % 2_147_483_647;
        s.push_str(WORDS[(x % 20) as usize]);
        if x.is_multiple_of(3) {
            s.push_str(&format!(" #{}", (x >> 4) % 10000));
        }
        s.push(' ');
    }
    s.truncate(n - 2);
    s.push_str("\"}");
    s
}

/// permessage-deflate as negotiated (against `INTEROP_DEFLATE_EXPECT`), and
/// on the wire as the server saw it: interop/'s echo servers answer
/// `deflate-stats` with JSON listing, per data message received (`rx`) and
/// sent (`tx`), RSV1 of its first frame and its payload length; wsproto's
/// own echo server just echoes it.
#[cfg(feature = "deflate")]
async fn deflate(ws: &mut Ws, accepted: &Accepted) -> Check {
    use serde_json::Value;
    let p = accepted
        .deflate
        .as_ref()
        .ok_or("permessage-deflate not negotiated")?;
    let got = format!(
        "{}/{}/{}/{}",
        p.server_max_window_bits,
        p.client_max_window_bits,
        u8::from(p.server_no_context_takeover),
        u8::from(p.client_no_context_takeover)
    );
    if let Ok(want) = std::env::var("INTEROP_DEFLATE_EXPECT") {
        ensure(want.is_empty() || got == want, || {
            format!("negotiated {got}, expected {want} (server bits/client bits/server_no_context_takeover/client_no_context_takeover)")
        })?;
    }
    let (big, med) = (chat_json(8000, 1), chat_json(600, 2));
    for m in [big.as_str(), med.as_str(), "tiny", med.as_str()] {
        echo(ws, Message::text(m)).await?;
    }
    ws.send_message(Message::text("deflate-stats"))
        .await
        .map_err(|e| format!("send deflate-stats: {e}"))?;
    let reply = recv(ws).await?;
    let summary = format!("negotiated '{}' ({got})", p.response());
    let text = reply.as_text().ok_or("binary answer to deflate-stats")?;
    if text == "deflate-stats" {
        return Ok(format!(
            "{summary}; echoes intact (this server gives no wire account)"
        ));
    }
    let v: Value =
        serde_json::from_str(text).map_err(|e| format!("deflate-stats answer: {e}: {text}"))?;
    let list = |k: &str| v[k].as_array().cloned().unwrap_or_default();
    let (rx, tx) = (list("rx"), list("tx"));
    ensure(rx.len() >= 5 && tx.len() >= 4, || {
        format!("deflate-stats: {text}")
    })?;
    // what the server received from us: big, med, tiny, med, deflate-stats
    let rx = &rx[rx.len() - 5..];
    let tx = &tx[tx.len() - 4..];
    let rsv1 = |m: &Value| m["rsv1"].as_bool() == Some(true);
    let len = |m: &Value| m["len"].as_u64().unwrap_or(u64::MAX);
    let seen = || format!("server saw {}", Value::Array(rx.to_vec()));
    ensure(rsv1(&rx[0]) && len(&rx[0]) < 8000 * 7 / 10, seen)?;
    ensure(rsv1(&rx[1]) && len(&rx[1]) < 600, seen)?;
    ensure(!rsv1(&rx[2]) && len(&rx[2]) == 4, seen)?; // under our 64-byte threshold
    if p.client_no_context_takeover {
        ensure(rsv1(&rx[3]) && len(&rx[3]) == len(&rx[1]), seen)?;
    } else {
        ensure(rsv1(&rx[3]) && len(&rx[3]) < len(&rx[1]) / 2, seen)?;
    }
    ensure(!rsv1(&rx[4]), seen)?;
    ensure(
        rx.iter()
            .chain(tx)
            .all(|m| m["contRsv1"].as_bool() != Some(true)),
        || "RSV1 on a continuation frame".into(),
    )?;
    let describe =
        |m: &Value| format!("{} B{}", len(m), if rsv1(m) { " (RSV1)" } else { " plain" });
    Ok(format!(
        "{summary}; {} saw: wsproto sent 8000 B as {}, 600 B as {} then {}, 4 B as {}; the server sent 8000 B as {}, 600 B as {} then {}",
        v["peer"].as_str().unwrap_or("server"),
        describe(&rx[0]),
        describe(&rx[1]),
        describe(&rx[3]),
        describe(&rx[2]),
        describe(&tx[0]),
        describe(&tx[1]),
        describe(&tx[3]),
    ))
}

fn pattern_bytes(n: usize) -> Bytes {
    (0..n).map(|i| i as u8).collect::<Vec<u8>>().into()
}

fn pattern_text(n: usize) -> String {
    (0..n)
        .map(|i| ALPHABET[i % ALPHABET.len()] as char)
        .collect()
}

fn size_name(n: usize) -> String {
    match n {
        n if n == 1 << 20 => "1MiB".into(),
        n if n == 16 << 20 => "16MiB".into(),
        n => n.to_string(),
    }
}

fn describe(m: &Message) -> String {
    let (kind, b) = match m {
        Message::Text(t) => ("text", t.as_bytes()),
        Message::Binary(b) => ("binary", &b[..]),
    };
    let head = &b[..b.len().min(24)];
    let more = if b.len() > 24 { "..." } else { "" };
    match m {
        Message::Text(_) => format!(
            "{kind}[{}] {:?}{more}",
            b.len(),
            String::from_utf8_lossy(head)
        ),
        Message::Binary(_) => format!("{kind}[{}] {head:02x?}{more}", b.len()),
    }
}

fn ensure(cond: bool, msg: impl FnOnce() -> String) -> Result<(), String> {
    if cond {
        Ok(())
    } else {
        Err(msg())
    }
}

async fn open(url: &str, protocols: &[&str]) -> Result<(Ws, Accepted), String> {
    let mut request = ClientRequest::from_url(url).map_err(|e| format!("bad url {url}: {e}"))?;
    for p in protocols {
        request = request.protocol(*p);
    }
    let (host, port) = request.connect_addr();
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect {host}:{port}: {e}"))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    client_async(&request, tcp, config())
        .await
        .map_err(|e| format!("handshake (offering {protocols:?}): {e}"))
}

/// The next data message, skipping pings and pongs.
async fn recv(ws: &mut Ws) -> Result<Message, String> {
    loop {
        match ws.next_event().await {
            Some(Ok(Event::Message(m))) => return Ok(m),
            Some(Ok(Event::Ping(_) | Event::Pong(_))) => {}
            Some(Ok(Event::Closed(r))) => return Err(format!("connection closed: {r:?}")),
            Some(Ok(other)) => return Err(format!("unexpected event {other:?}")),
            Some(Err(e)) => return Err(format!("read failed: {e}")),
            None => return Err("connection ended".into()),
        }
    }
}

async fn echo(ws: &mut Ws, msg: Message) -> Result<(), String> {
    ws.send_message(msg.clone())
        .await
        .map_err(|e| format!("send {}: {e}", describe(&msg)))?;
    let got = recv(ws).await?;
    ensure(got == msg, || {
        format!("sent {}, echo differs: {}", describe(&msg), describe(&got))
    })
}

async fn send_fragment(
    ws: &mut Ws,
    kind: MessageKind,
    data: &[u8],
    fin: bool,
) -> Result<(), String> {
    ws.send_fragment(kind, Bytes::copy_from_slice(data), fin)
        .await
        .map_err(|e| {
            format!(
                "send_fragment({kind:?}, {} bytes, fin={fin}): {e}",
                data.len()
            )
        })
}

async fn text_multibyte_large(ws: &mut Ws) -> Check {
    let text = text_multibyte_1mib();
    echo(ws, Message::text(text.as_str())).await?;
    // again as 4093-byte fragments: nearly every boundary splits a code point
    let chunks: Vec<&[u8]> = text.as_bytes().chunks(4093).collect();
    for (i, chunk) in chunks.iter().enumerate() {
        send_fragment(ws, MessageKind::Text, chunk, i == chunks.len() - 1).await?;
    }
    let got = recv(ws).await?;
    ensure(got == Message::text(text.as_str()), || {
        format!("fragmented: echo differs: {}", describe(&got))
    })?;
    Ok(format!(
        "{} bytes, whole and in {} fragments",
        text.len(),
        chunks.len()
    ))
}

async fn fragmented(ws: &mut Ws) -> Check {
    // "Hello, wörld €" as four text fragments, split in the middle of the
    // code points ö and €, with a ping between the second and the third.
    let parts: [&[u8]; 4] = [b"Hello, w", b"\xc3", b"\xb6rld \xe2\x82", b"\xac"];
    for (i, part) in parts.iter().enumerate() {
        send_fragment(ws, MessageKind::Text, part, i == parts.len() - 1).await?;
        if i == 1 {
            ws.ping(Bytes::from_static(b"mid-message ping"))
                .await
                .map_err(|e| format!("ping between fragments: {e}"))?;
        }
    }
    let mut pong = false;
    let got = loop {
        match ws.next_event().await {
            Some(Ok(Event::Pong(p))) => {
                ensure(&p[..] == b"mid-message ping", || {
                    format!("pong payload {p:?}")
                })?;
                pong = true;
            }
            Some(Ok(Event::Ping(_))) => {}
            Some(Ok(Event::Message(m))) => break m,
            other => return Err(format!("waiting for the echo: {other:?}")),
        }
    };
    ensure(got == Message::text("Hello, wörld €"), || {
        format!("text fragments: echo {}", describe(&got))
    })?;
    let binary = [pattern_bytes(256), Bytes::new(), pattern_bytes(70000)];
    for (i, part) in binary.iter().enumerate() {
        send_fragment(ws, MessageKind::Binary, part, i == binary.len() - 1).await?;
    }
    let whole: Vec<u8> = binary.concat();
    let got = recv(ws).await?;
    ensure(got == Message::binary(whole), || {
        format!("binary fragments: echo {}", describe(&got))
    })?;
    if !pong {
        // the pong may come after the echo
        match ws.next_event().await {
            Some(Ok(Event::Pong(p))) if &p[..] == b"mid-message ping" => {}
            other => return Err(format!("no pong for the ping between fragments: {other:?}")),
        }
    }
    Ok("send_fragment: text split mid-code-point + ping between fragments, binary incl. empty fragment".into())
}

async fn ping_pong(ws: &mut Ws) -> Check {
    let mut long = b"ping\x00\xff".to_vec();
    long.extend((0..100u8).collect::<Vec<_>>());
    for payload in [Bytes::from(long), Bytes::new(), pattern_bytes(125)] {
        ws.ping(payload.clone())
            .await
            .map_err(|e| format!("ping: {e}"))?;
        loop {
            match ws.next_event().await {
                Some(Ok(Event::Pong(p))) => {
                    ensure(p == payload, || {
                        format!("pong payload {p:02x?} != ping {payload:02x?}")
                    })?;
                    break;
                }
                Some(Ok(Event::Ping(_))) => {}
                other => return Err(format!("waiting for a pong: {other:?}")),
            }
        }
    }
    echo(ws, Message::text("after ping")).await?;
    Ok("next_event: Pong for payload 106 B, empty, 125 B".into())
}

/// wsproto's keepalive timer against the peer: a ping whenever nothing was
/// received for 100 ms; idle for 1.5 s, the pongs must keep it open.
async fn keepalive(url: &str) -> Check {
    let mut request = ClientRequest::from_url(url).map_err(|e| e.to_string())?;
    request = request.header("X-Interop", "keepalive");
    let (host, port) = request.connect_addr();
    let tcp = TcpStream::connect((host, port))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut config = config();
    config.keepalive_interval = Some(Duration::from_millis(100));
    config.keepalive_timeout = Duration::from_secs(1);
    let (mut ws, _) = client_async(&request, tcp, config)
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let mut pongs = 0;
    let idle = tokio::time::sleep(Duration::from_millis(1500));
    tokio::pin!(idle);
    loop {
        tokio::select! {
            _ = &mut idle => break,
            ev = ws.next_event() => match ev {
                Some(Ok(Event::Pong(_))) => pongs += 1,
                Some(Ok(Event::Ping(_))) => {}
                other => return Err(format!("while idle: {other:?}")),
            },
        }
    }
    ensure(pongs >= 5, || {
        format!("only {pongs} keepalive pongs in 1.5 s")
    })?;
    echo(&mut ws, Message::text("still here")).await?;
    let reason = ws.close(None).await.map_err(|e| format!("close: {e}"))?;
    ensure(reason.is_clean(), || format!("close: {reason:?}"))?;
    Ok(format!(
        "Config::keepalive_interval 100 ms, idle 1.5 s: {pongs} pongs, still open"
    ))
}

/// 200 messages written by one half of a split stream while the other half
/// reads the echoes, so neither side's buffers have to hold the whole burst.
async fn burst(ws: Ws) -> Check {
    let msgs: Vec<Message> = (0..200usize)
        .map(|i| {
            let n = if i % 50 != 0 {
                (i * 7919) % 70000
            } else {
                1 << 20
            };
            if i % 2 == 1 {
                Message::text(pattern_text(n))
            } else {
                Message::binary(pattern_bytes(n))
            }
        })
        .collect();
    let (mut tx, mut rx) = ws.split();
    let writer = async {
        for m in &msgs {
            tx.send_message(m.clone())
                .await
                .map_err(|e| format!("burst send: {e}"))?;
        }
        Ok::<_, String>(())
    };
    let reader = async {
        for (i, m) in msgs.iter().enumerate() {
            let got = loop {
                match rx.next_event().await {
                    Some(Ok(Event::Message(got))) => break got,
                    Some(Ok(Event::Ping(_) | Event::Pong(_))) => {}
                    other => return Err(format!("burst message {i}: {other:?}")),
                }
            };
            ensure(&got == m, || {
                format!(
                    "burst message {i}: sent {}, got {}",
                    describe(m),
                    describe(&got)
                )
            })?;
        }
        Ok(())
    };
    tokio::try_join!(writer, reader)?;
    let mut ws = rx.reunite(tx).map_err(|_| "reunite failed".to_string())?;
    let reason = ws
        .close(None)
        .await
        .map_err(|e| format!("close after burst: {e}"))?;
    ensure(reason.is_clean(), || {
        format!("close after burst: {reason:?}")
    })?;
    Ok(format!(
        "{} pipelined messages over split halves",
        msgs.len()
    ))
}

async fn subprotocol(url: &str, offer: &[&str], want: Option<&str>) -> Result<(), String> {
    let (mut ws, accepted) = open(url, offer).await?;
    ensure(accepted.protocol.as_deref() == want, || {
        format!("offered {offer:?}, selected {:?}", accepted.protocol)
    })?;
    echo(&mut ws, Message::text("subprotocol")).await?;
    let reason = ws.close(None).await.map_err(|e| format!("close: {e}"))?;
    ensure(reason.is_clean(), || format!("close: {reason:?}"))
}

async fn close_4000(url: &str) -> Check {
    let (mut ws, _) = open(url, &[]).await?;
    echo(&mut ws, Message::text("before close")).await?;
    let reason = ws
        .close(Some(CloseFrame::new(4000u16, "client bye")))
        .await
        .map_err(|e| format!("close: {e}"))?;
    match &reason {
        CloseReason::Clean {
            initiator: Initiator::Local,
            peer_frame: Some(f),
        } if f.code.0 == 4000 => Ok(format!(
            "server echoed {} {:?}, clean",
            f.code.0,
            f.reason.as_str()
        )),
        other => Err(format!(
            "expected a clean close with the server echoing 4000, got {other:?}"
        )),
    }
}

async fn close_nocode(url: &str) -> Check {
    let (mut ws, _) = open(url, &[]).await?;
    echo(&mut ws, Message::text("before close")).await?;
    let reason = ws.close(None).await.map_err(|e| format!("close: {e}"))?;
    match &reason {
        CloseReason::Clean {
            initiator: Initiator::Local,
            peer_frame: None,
        } => Ok("server answered without a code (1005), clean".into()),
        other => Err(format!(
            "expected a clean close with no code from the server, got {other:?}"
        )),
    }
}

/// Close right after a 16 MiB message, while the server is still busy
/// echoing it (`close` reads and discards the echo).
async fn close_busy(url: &str) -> Check {
    let (mut ws, _) = open(url, &[]).await?;
    ws.send_message(Message::binary(pattern_bytes(16 << 20)))
        .await
        .map_err(|e| format!("send 16 MiB: {e}"))?;
    let reason = ws
        .close(Some(CloseFrame::new(4000u16, "busy bye")))
        .await
        .map_err(|e| format!("close: {e}"))?;
    match &reason {
        CloseReason::Clean {
            initiator: Initiator::Local,
            peer_frame: Some(f),
        } if f.code.0 == 4000 => Ok("16 MiB in flight, then close 4000 -> 4000, clean".into()),
        other => Err(format!(
            "expected a clean close with the server echoing 4000, got {other:?}"
        )),
    }
}

async fn concurrent(url: &str) -> Check {
    let mut set = tokio::task::JoinSet::new();
    for k in 0..20usize {
        let url = url.to_string();
        set.spawn(async move {
            let (mut ws, _) = open(&url, &[]).await?;
            for i in 0..20usize {
                let n = (k * 131 + i * 977) % 65536;
                let msg = if i % 2 == 1 {
                    Message::binary(pattern_bytes(n))
                } else {
                    Message::text(TEXT_EMOJI.repeat(n / 40 + 1))
                };
                echo(&mut ws, msg)
                    .await
                    .map_err(|e| format!("connection {k}: {e}"))?;
            }
            let reason = ws.close(None).await.map_err(|e| format!("close: {e}"))?;
            ensure(reason.is_clean(), || format!("connection {k}: {reason:?}"))
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.map_err(|e| format!("task: {e}"))??;
    }
    Ok("20 connections x 20 echoes at once".into())
}

async fn close_me(url: &str) -> Check {
    let (mut ws, _) = open(url, &[]).await?;
    ws.send_message(Message::text("close-me"))
        .await
        .map_err(|e| format!("send close-me: {e}"))?;
    let reason = loop {
        match ws.next_event().await {
            Some(Ok(Event::Closed(r))) => break r,
            Some(Ok(Event::Ping(_) | Event::Pong(_))) => {}
            other => return Err(format!("expected the server's close, got {other:?}")),
        }
    };
    match &reason {
        CloseReason::Clean {
            initiator: Initiator::Peer,
            peer_frame: Some(f),
        } if f.code.0 == 1000 && f.reason == "server closing" => {}
        other => {
            return Err(format!(
                "expected a clean close 1000 'server closing' by the server, got {other:?}"
            ))
        }
    }
    // Event::Closed comes once the transport is closed too: the end follows
    match ws.next_event().await {
        None => Ok("1000 'server closing', clean".into()),
        other => Err(format!("after Closed: {other:?}")),
    }
}

async fn run<F: Future<Output = Check>>(name: &str, check: F) {
    let outcome = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(outcome) => outcome,
        Err(_) => Err(format!("timed out after {}s", CHECK_TIMEOUT.as_secs())),
    };
    match outcome {
        Ok(detail) if detail.is_empty() => println!("RESULT {name} PASS"),
        Ok(detail) => println!("RESULT {name} PASS {detail}"),
        Err(e) => {
            println!("RESULT {name} FAIL {e}");
            eprintln!("interop_client: check '{name}' failed: {e}");
            std::process::exit(1);
        }
    }
}

#[tokio::main]
async fn main() {
    let url = match std::env::args().nth(1) {
        Some(url) => url,
        None => {
            eprintln!("usage: interop_client ws://HOST:PORT");
            std::process::exit(2);
        }
    };
    println!(
        "INFO peer wsproto {} tokio client",
        env!("CARGO_PKG_VERSION")
    );

    let (mut ws, accepted) = match tokio::time::timeout(CHECK_TIMEOUT, open(&url, &[])).await {
        Ok(Ok(ok)) => ok,
        Ok(Err(e)) => {
            println!("RESULT connect FAIL {e}");
            eprintln!("interop_client: cannot connect: {e}");
            std::process::exit(1);
        }
        Err(_) => {
            println!("RESULT connect FAIL timed out");
            eprintln!("interop_client: connect timed out");
            std::process::exit(1);
        }
    };
    // permessage-deflate: `deflate` when the server accepted our offer,
    // `no-deflate` when it declined it (or when we offered nothing)
    #[cfg(feature = "deflate")]
    let negotiated = accepted.deflate.is_some();
    #[cfg(not(feature = "deflate"))]
    let negotiated = false;
    if !deflate_offered() {
        if accepted.extensions.is_empty() {
            println!("RESULT no-deflate N/A wsproto offers no extensions without INTEROP_DEFLATE=on (and none was answered)");
            println!("RESULT deflate N/A wsproto offers no permessage-deflate without INTEROP_DEFLATE=on");
        } else {
            run("no-deflate", async {
                Err(format!(
                    "server answered extensions {:?} that were not offered",
                    accepted.extensions
                ))
            })
            .await;
        }
    } else if !negotiated {
        run("no-deflate", async {
            ensure(accepted.extensions.is_empty(), || {
                format!("server answered {:?}", accepted.extensions)
            })?;
            echo(&mut ws, Message::text("uncompressed ".repeat(100))).await?;
            echo(&mut ws, Message::binary(pattern_bytes(100_000))).await?;
            Ok("offered 'permessage-deflate; client_max_window_bits', the server declined".into())
        })
        .await;
        println!("RESULT deflate N/A the server declined permessage-deflate");
    } else {
        println!("RESULT no-deflate N/A permessage-deflate negotiated (see deflate)");
        #[cfg(feature = "deflate")]
        run("deflate", deflate(&mut ws, &accepted)).await;
    }

    let ascii: String = (0u8..128).map(char::from).collect();
    run("text-ascii", async {
        echo(&mut ws, Message::text(ascii))
            .await
            .map(|_| String::new())
    })
    .await;
    run("text-multibyte", async {
        echo(&mut ws, Message::text(TEXT_MULTIBYTE))
            .await
            .map(|_| String::new())
    })
    .await;
    run("text-emoji", async {
        echo(&mut ws, Message::text(TEXT_EMOJI))
            .await
            .map(|_| String::new())
    })
    .await;
    run("binary-256", async {
        echo(&mut ws, Message::binary(pattern_bytes(256)))
            .await
            .map(|_| String::new())
    })
    .await;
    for n in SIZES {
        run(&format!("size-{}", size_name(n)), async {
            echo(&mut ws, Message::binary(pattern_bytes(n))).await?;
            echo(&mut ws, Message::text(pattern_text(n))).await?;
            Ok(String::new())
        })
        .await;
    }
    run("text-multibyte-1MiB", text_multibyte_large(&mut ws)).await;
    run("fragmented", fragmented(&mut ws)).await;
    run("ping-pong", ping_pong(&mut ws)).await;
    run("burst", burst(ws)).await;

    run("subprotocol-chat", async {
        subprotocol(&url, &["chat"], Some("chat")).await?;
        subprotocol(&url, &["v2.other", "chat"], Some("chat")).await?;
        Ok("['chat'] and ['v2.other', 'chat'] -> 'chat'".into())
    })
    .await;
    run("subprotocol-none", async {
        subprotocol(&url, &[], None).await?;
        subprotocol(&url, &["other"], None).await?;
        Ok("nothing / ['other'] offered -> none".into())
    })
    .await;
    run("close-4000", close_4000(&url)).await;
    run("close-nocode", close_nocode(&url)).await;
    run("close-busy", close_busy(&url)).await;
    run("close-me", close_me(&url)).await;
    run("concurrent", concurrent(&url)).await;
    run("keepalive", keepalive(&url)).await;
}
