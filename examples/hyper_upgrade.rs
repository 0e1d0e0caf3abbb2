//! WebSocket inside an existing HTTP server: hyper 1.x serves the HTTP side
//! and performs the upgrade, wsproto validates the request, computes the
//! `101` headers, and runs the connection afterwards.
//!
//! ```text
//! cargo run --release --features tokio --example hyper_upgrade -- 127.0.0.1:9001
//! ```
//!
//! `GET /` without an upgrade returns a short text page; a WebSocket upgrade
//! request is accepted on any path. Invalid upgrade requests get the status
//! the core chooses (400, 405, 426 with `Sec-WebSocket-Version: 13`, ...).
//! WebSocket side: the `echo_server` contract (echoes text and binary;
//! selects the subprotocol `chat` when offered; a text message `close-me`
//! makes it close with 1000 `server closing`; messages up to 64 MiB). Port 0
//! picks a free port (printed on stdout).

use std::convert::Infallible;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::upgrade::Upgraded;
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::rt::{TokioIo, TokioTimer};
use wsproto::handshake::{AcceptOptions, IncomingRequest};
use wsproto::tokio::WebSocketStream;
use wsproto::{CloseCode, CloseFrame, Config, Connection, HandshakeError, Role};

const PAGE: &str = "wsproto hyper_upgrade example\n\n\
    This is hyper answering a plain HTTP request. Connect a WebSocket client\n\
    to ws://<this host>/<any path>: the upgrade is validated by wsproto and\n\
    text and binary messages are echoed.\n";

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9001".into());
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("hyper_upgrade listening on ws://{}", listener.local_addr()?);
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            // e.g. out of file descriptors: keep serving the others
            Err(e) => {
                eprintln!("accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = tcp.set_nodelay(true);
        tokio::spawn(async move {
            let http = http1::Builder::new()
                // hyper's own guard against clients that connect and never
                // finish a request head, in the role of
                // `Config::handshake_timeout` (needs a timer).
                .timer(TokioTimer::new())
                .header_read_timeout(config().handshake_timeout)
                .serve_connection(TokioIo::new(tcp), service_fn(handle))
                // Without this, hyper sends the 101 and then closes the
                // connection instead of handing it over.
                .with_upgrades();
            // Errors here are a peer's business (resets, timeouts): quiet.
            let _ = http.await;
        });
    }
}

fn config() -> Config {
    let mut config = Config::default();
    config.limits.max_message = 64 << 20;
    config.limits.max_frame_payload = 64 << 20;
    config
}

async fn handle(mut req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    if !wants_websocket(req.headers()) {
        return Ok(match (req.method(), req.uri().path()) {
            (&Method::GET, "/") => text(StatusCode::OK, PAGE),
            _ => text(StatusCode::NOT_FOUND, "not found\n"),
        });
    }
    // `from_parts` leaves the HTTP version to the stack that parsed it.
    if req.version() < Version::HTTP_11 {
        return Ok(refuse(&HandshakeError::UnsupportedHttpVersion));
    }
    // The same validation the core's own `ServerHandshake` runs: method,
    // Host, Upgrade, Connection, key, version, subprotocol syntax.
    let target = req.uri().to_string();
    let headers = req.headers().iter();
    let headers = headers.map(|(name, value)| (name.as_str(), value.as_bytes()));
    let ws_req = match IncomingRequest::from_parts(req.method().as_str(), &target, headers) {
        Ok(ws_req) => ws_req,
        Err(e) => return Ok(refuse(&e)),
    };
    let mut opts = AcceptOptions::new();
    if ws_req.protocols().iter().any(|p| p == "chat") {
        opts = opts.protocol("chat");
    }
    // permessage-deflate (with `--features deflate`): the core picks the
    // first acceptable offer; its answer goes into the 101 and its
    // parameters into the connection.
    #[cfg(feature = "deflate")]
    let deflate =
        wsproto::extension::deflate::DeflateConfig::default().accept_offer(ws_req.extensions());
    #[cfg(feature = "deflate")]
    if let Some(params) = &deflate {
        opts = opts.extension(params.response());
    }
    #[cfg(not(feature = "deflate"))]
    let deflate = ();
    // Upgrade, Connection, Sec-WebSocket-Accept (the core's accept-key
    // code) and the selected subprotocol.
    let accept = ws_req
        .response_headers(&opts)
        .expect("only an offered protocol is selected");
    let mut response = Response::builder().status(StatusCode::SWITCHING_PROTOCOLS);
    for (name, value) in &accept {
        response = response.header(name.as_str(), value.as_str());
    }
    // hyper hands over the connection once the 101 has been written.
    let on_upgrade = hyper::upgrade::on(&mut req);
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            let _ = echo(TokioIo::new(upgraded), deflate).await;
        }
    });
    Ok(response
        .body(Full::default())
        .expect("the core produces valid header names and values"))
}

/// Whether the client asks for a WebSocket: such a request is answered by
/// the WebSocket validation (with its specific errors), whatever its path.
fn wants_websocket(headers: &HeaderMap) -> bool {
    let upgrade = headers.get_all(header::UPGRADE).iter();
    upgrade.filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',')
            .any(|t| t.trim().eq_ignore_ascii_case("websocket"))
    }) || headers.contains_key(header::SEC_WEBSOCKET_KEY)
        || headers.contains_key(header::SEC_WEBSOCKET_VERSION)
}

/// The HTTP answer to an invalid upgrade request: the status, headers
/// (`Sec-WebSocket-Version: 13` for a version mismatch, §4.4; `Allow: GET`
/// for a wrong method) and body the core's own server would send.
fn refuse(e: &HandshakeError) -> Response<Full<Bytes>> {
    let (status, headers, body) = e.response_parts();
    let mut response = Response::builder().status(status);
    for (name, value) in headers {
        response = response.header(name, value);
    }
    response
        .body(Full::new(Bytes::from(body)))
        .expect("the core produces a valid status and headers")
}

fn text(status: StatusCode, body: &str) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_owned())));
    *response.status_mut() = status;
    let content_type = HeaderValue::from_static("text/plain; charset=utf-8");
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, content_type);
    response
}

#[cfg(feature = "deflate")]
type Deflate = Option<wsproto::extension::deflate::DeflateParams>;
#[cfg(not(feature = "deflate"))]
type Deflate = ();

/// The WebSocket side: the connection starts right after the 101.
async fn echo(io: TokioIo<Upgraded>, deflate: Deflate) -> Result<(), wsproto::tokio::Error> {
    // Bytes the client sent behind its request (a pipelined first frame)
    // are not lost: hyper replays them through `Upgraded`'s reads before
    // touching the socket, so the connection starts with no leftover.
    #[allow(unused_mut)]
    let mut conn = Connection::after_handshake(Role::Server, config(), &[]);
    #[cfg(feature = "deflate")]
    if let Some(params) = deflate {
        conn.enable_deflate(params);
    }
    #[cfg(not(feature = "deflate"))]
    let () = deflate;
    let mut ws = WebSocketStream::from_connection(io, conn);
    while let Some(msg) = ws.next().await {
        let msg = msg?;
        if msg.as_text() == Some("close-me") {
            ws.close(Some(CloseFrame::new(CloseCode::NORMAL, "server closing")))
                .await?;
            break;
        }
        ws.send(msg).await?;
    }
    Ok(())
}
