//! The server: listener, TLS, routing of the one port (page, `/healthz`,
//! `/ws`), the handshake policy (Origin allow-list, bearer token,
//! subprotocol) and graceful shutdown.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::watch;
use wsproto::handshake::{AcceptOptions, IncomingRequest};
use wsproto::tokio::{accept_with, Error as WsError, Rejection};
use wsproto::Config;

use crate::broker::{Broker, InProcess};
use crate::cli::ServerOpts;
use crate::http::{self, query_param, ReadHead, Response, Rewind};
use crate::protocol::SUBPROTOCOL;
use crate::redis_broker::RedisBroker;
use crate::session;

/// The page, embedded in the binary.
const INDEX_HTML: &str = include_str!("static/index.html");
/// How long shutdown waits for connections to finish their close handshake.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What every connection task shares.
pub struct Server {
    /// This instance's name, shown to clients (`hello.server`).
    pub name: String,
    pub config: Config,
    pub broker: Arc<dyn Broker>,
    pub policy: Policy,
    pub max_text: usize,
    max_connections: usize,
    /// Open WebSocket sessions.
    pub sessions: AtomicUsize,
    next_id: AtomicU64,
    /// Becomes `true` when the server shuts down.
    pub shutdown: watch::Receiver<bool>,
}

impl Server {
    pub fn next_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub fn log(&self, msg: impl std::fmt::Display) {
        eprintln!("[{}] {msg}", self.name);
    }
}

/// Who may open a WebSocket: checked on the upgrade request, before the
/// `101`, so a refused client never holds a session.
pub struct Policy {
    /// Allowed `Origin` values, lower case, without a trailing slash.
    origins: Vec<String>,
    any_origin: bool,
    token: Option<String>,
}

impl Policy {
    fn origin_allowed(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/');
        self.any_origin || self.origins.iter().any(|o| o.eq_ignore_ascii_case(origin))
    }

    /// `true` when no token is configured, or the request carries it as
    /// `Authorization: Bearer ...` or `?token=...`.
    fn token_ok(&self, authorization: Option<&str>, query: Option<&str>) -> bool {
        let Some(expected) = &self.token else {
            return true;
        };
        let bearer = authorization.and_then(|v| {
            let (scheme, rest) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| rest.trim().to_string())
        });
        let given = bearer.or_else(|| query_param(query, "token"));
        given.is_some_and(|g| constant_time_eq(g.as_bytes(), expected.as_bytes()))
    }

    /// The `accept_with` decision: 403 for a page from another origin
    /// (cross-site WebSocket hijacking), 401 without the token, 400 without
    /// the subprotocol; else accept with `chat.v1`.
    pub fn decide(&self, req: &IncomingRequest) -> Result<AcceptOptions, (Rejection, String)> {
        if let Some(origin) = req.origin() {
            if !self.origin_allowed(origin) {
                return Err((
                    Rejection::status(403).body("origin not allowed\n"),
                    format!("origin {origin:?} not allowed"),
                ));
            }
        }
        if !self.token_ok(req.header("authorization"), req.query()) {
            return Err((unauthorized(), "missing or wrong token".into()));
        }
        if !req.protocols().iter().any(|p| p == SUBPROTOCOL) {
            return Err((
                Rejection::status(400)
                    .header("Content-Type", "text/plain; charset=utf-8")
                    .body(format!("offer the WebSocket subprotocol {SUBPROTOCOL}\n")),
                format!("subprotocol {SUBPROTOCOL} not offered"),
            ));
        }
        Ok(AcceptOptions::new().protocol(SUBPROTOCOL))
    }
}

fn unauthorized() -> Rejection {
    Rejection::status(401)
        .header("WWW-Authenticate", "Bearer realm=\"chat\"")
        .header("Content-Type", "text/plain; charset=utf-8")
        .body("a bearer token is required: Authorization: Bearer TOKEN, or ?token=TOKEN\n")
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// The origins of the pages this server serves itself: its scheme, its
/// address and, on loopback, `localhost`.
fn own_origins(local: SocketAddr, scheme: &str) -> Vec<String> {
    let port = local.port();
    let ip = local.ip();
    let mut hosts = Vec::new();
    if ip.is_unspecified() {
        hosts.extend(["localhost".to_string(), "127.0.0.1".into(), "[::1]".into()]);
    } else {
        hosts.push(match local {
            SocketAddr::V4(a) => a.ip().to_string(),
            SocketAddr::V6(a) => format!("[{}]", a.ip()),
        });
        if ip.is_loopback() {
            hosts.push("localhost".into());
        }
    }
    let default_port = if scheme == "https" { 443 } else { 80 };
    let mut origins = Vec::new();
    for h in hosts {
        origins.push(format!("{scheme}://{h}:{port}"));
        if port == default_port {
            origins.push(format!("{scheme}://{h}"));
        }
    }
    origins
}

/// Run the server until Ctrl-C or SIGTERM.
pub async fn run(opts: ServerOpts) -> Result<(), String> {
    let tls = match &opts.tls {
        Some((cert, key)) => Some(crate::tls::acceptor(cert, key)?),
        None => None,
    };
    let listener = TcpListener::bind(&opts.addr)
        .await
        .map_err(|e| format!("cannot listen on {}: {e}", opts.addr))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let (scheme, ws_scheme) = if tls.is_some() {
        ("https", "wss")
    } else {
        ("http", "ws")
    };
    let name = opts.name.clone().unwrap_or_else(|| local.to_string());

    let broker: Arc<dyn Broker> = match &opts.redis {
        Some(url) => RedisBroker::connect(url)
            .await
            .map_err(|e| format!("--redis {url}: {e}"))?,
        None => Arc::new(InProcess::new()),
    };

    let mut origins = own_origins(local, scheme);
    let any_origin = opts.allowed_origins.iter().any(|o| o == "*");
    origins.extend(opts.allowed_origins.iter().filter(|o| *o != "*").cloned());
    let policy = Policy {
        origins: origins.clone(),
        any_origin,
        token: opts.token.clone(),
    };

    let mut config = Config::default();
    config.limits.max_message = opts.max_message;
    config.limits.max_frame_payload = opts.max_message;
    // a chat client needs little: bound what a slow reader can queue
    config.limits.max_outbound = 1 << 20;
    config.keepalive_interval = opts.keepalive;
    config.keepalive_timeout = opts.keepalive_timeout;
    config.handshake_timeout = Duration::from_secs(10);
    config.close_timeout = Duration::from_secs(5);

    let (stop_tx, stop_rx) = watch::channel(false);
    let server = Arc::new(Server {
        name,
        config,
        broker,
        policy,
        max_text: opts.max_text,
        max_connections: opts.max_connections,
        sessions: AtomicUsize::new(0),
        next_id: AtomicU64::new(1),
        shutdown: stop_rx,
    });

    println!("chat listening on {scheme}://{local}/ (WebSocket {ws_scheme}://{local}/ws, subprotocol {SUBPROTOCOL})");
    println!("  instance: {}", server.name);
    match &opts.redis {
        Some(url) => {
            println!("  broker: redis pub/sub at {url} (rooms shared with other instances)")
        }
        None => println!("  broker: in-process (use --redis URL to share rooms between instances)"),
    }
    let mut allowed = origins.join(", ");
    if any_origin {
        allowed = "any (--allowed-origin '*')".into();
    }
    println!("  allowed origins: {allowed} (and clients that send none)");
    if local.ip().is_unspecified() && opts.allowed_origins.is_empty() {
        println!(
            "  note: listening on all interfaces; add --allowed-origin for the URL browsers use"
        );
    }
    println!(
        "  auth: {}",
        if opts.token.is_some() {
            "bearer token required (Authorization header or ?token=)"
        } else {
            "off (use --token to require one)"
        }
    );
    match opts.keepalive {
        Some(k) => println!(
            "  keepalive: ping after {} idle, drop the peer {} later if nothing came back",
            secs(k),
            secs(opts.keepalive_timeout)
        ),
        None => println!("  keepalive: off"),
    }
    println!(
        "  limits: messages up to {} bytes, texts up to {} characters",
        opts.max_message, opts.max_text
    );
    println!("open {scheme}://{local}/ in two browser tabs and chat between them; Ctrl-C stops");

    // every connection task holds a clone; shutdown waits for them
    let tasks = Arc::new(());
    let stop = shutdown_signal();
    tokio::pin!(stop);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    // e.g. out of file descriptors: keep serving the others
                    server.log(format_args!("accept failed: {e}"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let server = server.clone();
        let tls = tls.clone();
        let task = tasks.clone();
        tokio::spawn(async move {
            let _task = task;
            match tls {
                None => serve(tcp, peer, server).await,
                Some(acceptor) => {
                    let timeout = server.config.handshake_timeout;
                    match tokio::time::timeout(timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => serve(stream, peer, server).await,
                        Ok(Err(e)) => server.log(format_args!("{peer}: TLS handshake failed: {e}")),
                        Err(_) => server.log(format_args!("{peer}: TLS handshake timed out")),
                    }
                }
            }
        });
    }

    drop(listener);
    let open = server.sessions.load(Ordering::Relaxed);
    server.log(format_args!(
        "shutting down: closing {open} WebSocket session(s) with 1001"
    ));
    let _ = stop_tx.send(true);
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    while Arc::strong_count(&tasks) > 1 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.log("stopped");
    Ok(())
}

/// `20 s`, `0.5 s`.
fn secs(d: Duration) -> String {
    format!("{} s", d.as_secs_f64())
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// One TCP (or TLS) connection: one HTTP request, or one WebSocket.
async fn serve<S>(mut stream: S, peer: SocketAddr, server: Arc<Server>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let limit = server.config.limits.max_handshake_bytes;
    let read = tokio::time::timeout(
        server.config.handshake_timeout,
        http::read_head(&mut stream, limit),
    )
    .await;
    let (head, raw) = match read {
        Ok(Ok(ReadHead::Head(head, raw))) => (head, raw),
        Ok(Ok(ReadHead::TooLarge)) => {
            let _ = Response::text(431, "request head too large")
                .send(&mut stream, false)
                .await;
            return;
        }
        Ok(Ok(ReadHead::Malformed)) => {
            let _ = Response::text(400, "malformed HTTP request")
                .send(&mut stream, false)
                .await;
            return;
        }
        // gone, or too slow to send a request head: just drop it
        Ok(Ok(ReadHead::Eof)) | Ok(Err(_)) | Err(_) => return,
    };
    let get = matches!(head.method.as_str(), "GET" | "HEAD");
    let response = match head.path.as_str() {
        "/ws" if head.is_upgrade() => return websocket(stream, raw, peer, server).await,
        // a plain GET: say what is wrong, checking the token first so the
        // page can tell "unauthorized" apart (browsers hide a failed
        // WebSocket handshake's status from scripts)
        "/ws" if get => {
            if server.policy.token_ok(head.header("authorization"), head.query.as_deref()) {
                Response::text(426, format!("this is the WebSocket endpoint: connect with the subprotocol {SUBPROTOCOL}"))
                    .header("Upgrade", "websocket")
            } else {
                Response::text(401, "a bearer token is required: Authorization: Bearer TOKEN, or ?token=TOKEN")
                    .header("WWW-Authenticate", "Bearer realm=\"chat\"")
            }
        }
        "/" | "/index.html" if get => Response::new(200, "text/html; charset=utf-8", INDEX_HTML)
            .header(
                "Content-Security-Policy",
                "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                 connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
            )
            .header("Referrer-Policy", "no-referrer"),
        "/healthz" if get => Response::new(
            200,
            "application/json",
            format!(
                "{{\"status\":\"ok\",\"server\":{},\"broker\":\"{}\",\"sessions\":{}}}\n",
                serde_json::Value::from(server.name.as_str()),
                server.broker.kind(),
                server.sessions.load(Ordering::Relaxed)
            ),
        ),
        "/" | "/index.html" | "/healthz" | "/ws" => {
            Response::text(405, "method not allowed").header("Allow", "GET, HEAD")
        }
        _ => Response::text(404, "not found"),
    };
    let _ = tokio::time::timeout(
        Duration::from_secs(10),
        response.send(&mut stream, head.method == "HEAD"),
    )
    .await;
}

/// Decrements the session count when a session ends, however it ends.
struct SessionSlot<'a>(&'a AtomicUsize);

impl Drop for SessionSlot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn websocket<S>(mut stream: S, raw: bytes::BytesMut, peer: SocketAddr, server: Arc<Server>)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let slot = SessionSlot(&server.sessions);
    if server.sessions.fetch_add(1, Ordering::Relaxed) >= server.max_connections {
        server.log(format_args!(
            "{peer}: refused (503): {} sessions open",
            server.max_connections
        ));
        let _ = Response::text(503, "too many connections; try again later")
            .header("Retry-After", "5")
            .send(&mut stream, false)
            .await;
        return;
    }
    // accept_with parses the head again from the bytes we already read
    let stream = Rewind::new(raw.freeze(), stream);
    let mut refused = None;
    let result = accept_with(stream, server.config.clone(), |req| {
        server.policy.decide(req).map_err(|(rejection, why)| {
            refused = Some(why);
            rejection
        })
    })
    .await;
    match result {
        Ok(ws) => session::run(ws, server.clone(), peer).await,
        Err(WsError::Rejected(status)) => server.log(format_args!(
            "{peer}: refused ({status}): {}",
            refused.unwrap_or_default()
        )),
        Err(e) => server.log(format_args!("{peer}: WebSocket handshake failed: {e}")),
    }
    drop(slot);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(target: &str, extra: &[(&'static str, &'static str)]) -> IncomingRequest {
        let mut headers: Vec<(&str, &[u8])> = vec![
            ("Host", b"127.0.0.1:8080"),
            ("Upgrade", b"websocket"),
            ("Connection", b"Upgrade"),
            ("Sec-WebSocket-Key", b"dGhlIHNhbXBsZSBub25jZQ=="),
            ("Sec-WebSocket-Version", b"13"),
        ];
        headers.extend(extra.iter().map(|(k, v)| (*k, v.as_bytes())));
        IncomingRequest::from_parts("GET", target, headers).expect("a valid request")
    }

    fn status(policy: &Policy, target: &str, extra: &[(&'static str, &'static str)]) -> u16 {
        match policy.decide(&request(target, extra)) {
            Ok(opts) => {
                assert_eq!(opts.protocol.as_deref(), Some(SUBPROTOCOL));
                101
            }
            Err((rejection, _)) => rejection.status,
        }
    }

    #[test]
    fn handshake_policy() {
        let local: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let policy = Policy {
            origins: own_origins(local, "http"),
            any_origin: false,
            token: Some("s3cret".into()),
        };
        let proto = ("Sec-WebSocket-Protocol", "chat.v1");
        let bearer = ("Authorization", "Bearer s3cret");
        assert_eq!(status(&policy, "/ws", &[proto, bearer]), 101);
        assert_eq!(status(&policy, "/ws?a=1&token=s3cret", &[proto]), 101);
        assert_eq!(status(&policy, "/ws", &[proto]), 401);
        assert_eq!(status(&policy, "/ws?token=s3cre", &[proto]), 401);
        assert_eq!(
            status(&policy, "/ws", &[proto, ("Authorization", "Bearer wrong")]),
            401
        );
        for ok in [
            "http://127.0.0.1:8080",
            "http://localhost:8080/",
            "HTTP://LOCALHOST:8080",
        ] {
            assert_eq!(
                status(&policy, "/ws", &[proto, bearer, ("Origin", ok)]),
                101,
                "{ok}"
            );
        }
        for bad in [
            "http://127.0.0.1:8081",
            "https://127.0.0.1:8080",
            "null",
            "http://evil.example",
        ] {
            assert_eq!(
                status(&policy, "/ws", &[proto, bearer, ("Origin", bad)]),
                403,
                "{bad}"
            );
        }
        assert_eq!(status(&policy, "/ws", &[bearer]), 400);
        assert_eq!(
            status(
                &policy,
                "/ws",
                &[("Sec-WebSocket-Protocol", "chat.v0"), bearer]
            ),
            400
        );
    }

    #[test]
    fn origins_of_an_address() {
        let v6: SocketAddr = "[::1]:443".parse().unwrap();
        assert_eq!(
            own_origins(v6, "https"),
            [
                "https://[::1]:443",
                "https://[::1]",
                "https://localhost:443",
                "https://localhost"
            ]
        );
        let any: SocketAddr = "0.0.0.0:9000".parse().unwrap();
        assert_eq!(own_origins(any, "http").len(), 3);
    }
}
