//! `--client URL`: a terminal client on `wsproto::tokio::client_async`,
//! over plain TCP or rustls (`wss://`, trusting `--ca`).
//!
//! Interactive: joins `--room`, sends each stdin line as a message, prints
//! room events. Scripted (`--say TEXT`, used by the tests): sends each
//! text, waits until the server broadcasts it back, leaves, closes cleanly,
//! and exits 0 (1 on any error or after `--timeout`).

use std::collections::VecDeque;

use futures_util::{SinkExt, StreamExt};
use rustls::pki_types::ServerName;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, BufReader};
use tokio::net::TcpStream;
use wsproto::handshake::{Accepted, ClientRequest};
use wsproto::tokio::{client_async, WebSocketStream};
use wsproto::{CloseCode, CloseFrame, Config, Message};

use crate::cli::ClientOpts;
use crate::protocol::SUBPROTOCOL;

pub async fn run(opts: ClientOpts) -> Result<(), String> {
    let deadline = opts.timeout.map(|t| tokio::time::Instant::now() + t);
    let work = connect_and_chat(&opts);
    match deadline {
        Some(d) => tokio::time::timeout_at(d, work)
            .await
            .map_err(|_| format!("timed out after {:?}", opts.timeout.unwrap_or_default()))?,
        None => work.await,
    }
}

async fn connect_and_chat(opts: &ClientOpts) -> Result<(), String> {
    let mut request = ClientRequest::from_url(&opts.url)
        .map_err(|e| format!("{}: {e}", opts.url))?
        .protocol(SUBPROTOCOL);
    if let Some(t) = &opts.token {
        request = request.header("Authorization", format!("Bearer {t}"));
    }
    if let Some(o) = &opts.origin {
        request = request.header("Origin", o.clone());
    }
    let mut config = Config::default();
    config.keepalive_interval = Some(std::time::Duration::from_secs(20));
    // check the TLS settings before connecting
    let connector = match (request.is_secure(), &opts.ca) {
        (false, _) => None,
        (true, Some(ca)) => Some(crate::tls::connector(ca)?),
        (true, None) => {
            return Err(
                "wss:// needs --ca PEM (the certificate to trust, e.g. from --gen-cert)".into(),
            )
        }
    };
    let (host, port) = request.connect_addr();
    let tcp = tokio::time::timeout(config.handshake_timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| format!("connecting to {host}:{port} timed out"))?
        .map_err(|e| format!("connecting to {host}:{port}: {e}"))?;
    let _ = tcp.set_nodelay(true);
    if let Some(connector) = connector {
        // IPv6 literals come bracketed from the URL
        let name = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        let name = ServerName::try_from(name).map_err(|e| format!("{host}: {e}"))?;
        let tls = tokio::time::timeout(config.handshake_timeout, connector.connect(name, tcp))
            .await
            .map_err(|_| "TLS handshake timed out".to_string())?
            .map_err(|e| format!("TLS handshake: {e}"))?;
        let (ws, accepted) = client_async(&request, tls, config)
            .await
            .map_err(|e| format!("WebSocket handshake: {e}"))?;
        chat(ws, accepted, opts, "TLS").await
    } else {
        let (ws, accepted) = client_async(&request, tcp, config)
            .await
            .map_err(|e| format!("WebSocket handshake: {e}"))?;
        chat(ws, accepted, opts, "plain TCP").await
    }
}

async fn send<S>(ws: &mut WebSocketStream<S>, v: Value) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    ws.send(Message::text(v.to_string()))
        .await
        .map_err(|e| format!("send: {e}"))
}

async fn chat<S>(
    mut ws: WebSocketStream<S>,
    accepted: Accepted,
    opts: &ClientOpts,
    transport: &str,
) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    println!(
        "connected to {} over {transport} (subprotocol {})",
        opts.url,
        accepted.protocol.as_deref().unwrap_or("none")
    );
    let scripted = !opts.say.is_empty();
    let mut to_say: VecDeque<String> = opts.say.iter().cloned().collect();
    let mut joined = false;
    let mut stdin = BufReader::new(tokio::io::stdin()).lines();
    let stdin_open = !scripted;
    send(
        &mut ws,
        json!({"type": "join", "room": opts.room, "user": opts.user}),
    )
    .await?;
    loop {
        tokio::select! {
            line = stdin.next_line(), if stdin_open && joined => match line {
                Ok(Some(line)) if line.trim().is_empty() => {}
                Ok(Some(line)) => {
                    send(&mut ws, json!({"type": "message", "room": opts.room, "text": line})).await?;
                }
                // end of input: leave and close
                Ok(None) | Err(_) => return finish(ws, opts).await,
            },
            incoming = ws.next() => {
                let msg = match incoming {
                    None => return Err(format!("the server closed the connection ({:?})", ws.close_reason())),
                    Some(Err(e)) => return Err(format!("connection failed: {e}")),
                    Some(Ok(m)) => m,
                };
                let Some(text) = msg.as_text() else { continue };
                let Ok(event) = serde_json::from_str::<Value>(text) else {
                    println!("? {text}");
                    continue;
                };
                println!("{}", render(&event));
                let kind = event["type"].as_str().unwrap_or("");
                let mine = event["user"].as_str() == Some(opts.user.as_str())
                    && event["room"].as_str() == Some(opts.room.as_str());
                match kind {
                    "joined" if mine && !joined => {
                        joined = true;
                        if let Some(first) = to_say.front() {
                            let text = first.clone();
                            send(&mut ws, json!({"type": "message", "room": opts.room, "text": text})).await?;
                        }
                    }
                    "message" if mine && to_say.front().map(String::as_str) == event["text"].as_str() => {
                        to_say.pop_front();
                        match to_say.front() {
                            Some(next) => {
                                let text = next.clone();
                                send(&mut ws, json!({"type": "message", "room": opts.room, "text": text})).await?;
                            }
                            None if scripted => return finish(ws, opts).await,
                            None => {}
                        }
                    }
                    "error" if scripted => {
                        return Err(format!("server error: {}", event["message"]));
                    }
                    _ => {}
                }
            }
        }
    }
}

/// Leave the room and close with 1000.
async fn finish<S>(mut ws: WebSocketStream<S>, opts: &ClientOpts) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    send(&mut ws, json!({"type": "leave", "room": opts.room})).await?;
    let reason = ws
        .close(Some(CloseFrame::new(CloseCode::NORMAL, "bye")))
        .await
        .map_err(|e| format!("close: {e}"))?;
    println!("closed ({})", reason.code().0);
    Ok(())
}

/// One event as a line of text.
fn render(e: &Value) -> String {
    let s = |k: &str| e[k].as_str().unwrap_or("?").to_string();
    let time = e["ts"].as_u64().map(clock).unwrap_or_default();
    match e["type"].as_str().unwrap_or("") {
        "hello" => format!("* server {} ({})", s("server"), s("protocol")),
        "joined" => format!("{time} * {} joined {}", s("user"), s("room")),
        "left" => format!(
            "{time} * {} left {} ({})",
            s("user"),
            s("room"),
            s("reason")
        ),
        "message" => format!("{time} [{}] {}: {}", s("room"), s("user"), s("text")),
        "pong" => "* pong".into(),
        "error" => format!("! error {}: {}", s("code"), s("message")),
        _ => format!("? {e}"),
    }
}

/// `HH:MM:SS` (UTC) of a millisecond timestamp.
fn clock(ms: u64) -> String {
    let s = ms / 1000;
    format!("{:02}:{:02}:{:02}", s / 3600 % 24, s / 60 % 60, s % 60)
}
