//! One WebSocket session: requests in, room events out.
//!
//! One task per connection runs a `select!` over three sources: the
//! client's messages (`StreamExt::next`, which also drives wsproto's
//! keepalive pings, pong replies and the close handshake), the connection's
//! outbox (room events from the broker), and the server's shutdown signal.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use wsproto::tokio::{Error as WsError, WebSocketStream};
use wsproto::{CloseCode, CloseFrame, CloseReason, Message, Timeout, Utf8Bytes};

use crate::broker::{Member, OUTBOX};
use crate::protocol::{self, now_ms, ErrorCode, Request, ServerEvent, SUBPROTOCOL};
use crate::server::Server;

/// Rooms one connection may be in at once.
const MAX_ROOMS: usize = 16;
/// Longest wait for one event to be written (see [`send`]).
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Request rate limit: a burst of this many ...
const BURST: f64 = 20.0;
/// ... refilled at this many per second.
const RATE: f64 = 10.0;

/// Why the loop ended.
enum End {
    /// The connection closed (`close_reason` says how) or failed.
    Closed,
    Failed(WsError),
    Shutdown,
    TooSlow,
}

pub async fn run<S>(mut ws: WebSocketStream<S>, server: Arc<Server>, peer: SocketAddr)
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let id = server.next_id();
    let (tx, mut outbox) = mpsc::channel(OUTBOX);
    let overflow = Arc::new(Notify::new());
    let mut session = Session {
        member: Member {
            id,
            tx,
            overflow: overflow.clone(),
        },
        server: server.clone(),
        rooms: BTreeMap::new(),
        bucket: Bucket::new(),
    };
    server.log(format_args!("#{id} {peer} connected"));
    let hello = ServerEvent::Hello {
        server: server.name.clone(),
        protocol: SUBPROTOCOL,
        max_text: server.max_text,
        max_message: server.config.limits.max_message,
    };
    let stop = stopping(server.shutdown.clone());
    tokio::pin!(stop);
    let end = if let Err(end) = send(&mut ws, hello.to_text()).await {
        end
    } else {
        loop {
            tokio::select! {
                () = &mut stop => break End::Shutdown,
                _ = overflow.notified() => break End::TooSlow,
                Some(event) = outbox.recv() => {
                    if let Err(end) = send(&mut ws, event).await {
                        break end;
                    }
                }
                incoming = ws.next() => match incoming {
                    None => break End::Closed,
                    Some(Err(e)) => break End::Failed(e),
                    Some(Ok(msg)) => {
                        if let Some(reply) = session.handle(msg).await {
                            if let Err(end) = send(&mut ws, reply.to_text()).await {
                                break end;
                            }
                        }
                    }
                },
            }
        }
    };

    let timed_out = matches!(
        ws.close_reason(),
        Some(CloseReason::TimedOut(Timeout::Keepalive))
    );
    let reason = match end {
        End::Shutdown => "shutdown",
        _ if timed_out => "timeout",
        _ => "disconnect",
    };
    // tell the rooms first, then finish the close handshake
    session.leave_all(reason).await;
    let how = match end {
        End::Closed => describe(ws.close_reason()),
        End::Failed(e) => format!("failed: {e}"),
        End::Shutdown => {
            close(&mut ws, CloseCode::GOING_AWAY, "server shutting down").await;
            "closed by the server (shutting down)".into()
        }
        End::TooSlow => {
            close(
                &mut ws,
                CloseCode::POLICY_VIOLATION,
                "too slow: messages were not read",
            )
            .await;
            "closed by the server: too slow to read its messages".into()
        }
    };
    server.log(format_args!("#{id} {peer} {how}"));
}

/// Send one event. Bounded in time: while a send waits, this session reads
/// nothing (so neither its keepalive nor its outbox's overflow signal is
/// looked at), and a peer that stopped reading must not hold it forever.
async fn send<S>(ws: &mut WebSocketStream<S>, text: Utf8Bytes) -> Result<(), End>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(SEND_TIMEOUT, ws.send(Message::text(text))).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(End::Failed(e)),
        Err(_) => Err(End::TooSlow),
    }
}

/// Resolves when the server shuts down (or is gone).
async fn stopping(mut shutdown: tokio::sync::watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

async fn close<S>(ws: &mut WebSocketStream<S>, code: CloseCode, reason: &str)
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let frame = CloseFrame::new(code, reason);
    let _ = tokio::time::timeout(Duration::from_secs(3), ws.close(Some(frame))).await;
}

fn describe(reason: Option<CloseReason>) -> String {
    match reason {
        Some(CloseReason::TimedOut(Timeout::Keepalive)) => {
            "dropped: no answer to keepalive ping (dead peer)".into()
        }
        Some(CloseReason::TimedOut(Timeout::CloseHandshake)) => {
            "closed: the close handshake timed out".into()
        }
        Some(CloseReason::Abnormal) => "disconnected without a close frame (1006)".into(),
        Some(r @ CloseReason::Clean { .. }) => format!("closed cleanly ({})", r.code().0),
        None => "closed".into(),
    }
}

struct Session {
    member: Member,
    server: Arc<Server>,
    /// Joined rooms and the user name used in each.
    rooms: BTreeMap<String, String>,
    bucket: Bucket,
}

impl Session {
    /// Handle one client message; returns the direct reply, if any (room
    /// events come back through the outbox).
    async fn handle(&mut self, msg: Message) -> Option<ServerEvent> {
        let Some(text) = msg.as_text() else {
            return Some(ServerEvent::error(
                ErrorCode::BinaryNotSupported,
                "chat.v1 is JSON text; binary messages are not supported",
                None,
            ));
        };
        let request = match protocol::parse(text, self.server.max_text) {
            Ok(r) => r,
            Err(invalid) => return Some(invalid.into_event()),
        };
        // only requests that reach a room are rate limited: pings and
        // invalid input cost nobody but the sender
        if !matches!(request, Request::Ping) && !self.bucket.take() {
            return Some(ServerEvent::error(
                ErrorCode::RateLimited,
                format!("too many requests: at most {RATE} per second (bursts of {BURST}); this one was not processed"),
                Some(kind(&request)),
            ));
        }
        let broker = &self.server.broker;
        match request {
            Request::Ping => Some(ServerEvent::Pong),
            Request::Join { room, user } => {
                if self.rooms.contains_key(&room) {
                    return Some(ServerEvent::error(
                        ErrorCode::AlreadyJoined,
                        format!("already in room {room}"),
                        Some("join"),
                    ));
                }
                if self.rooms.len() >= MAX_ROOMS {
                    return Some(ServerEvent::error(
                        ErrorCode::TooManyRooms,
                        format!("at most {MAX_ROOMS} rooms per connection"),
                        Some("join"),
                    ));
                }
                if let Err(e) = broker.join(&room, self.member.clone()).await {
                    return Some(unavailable(e, "join"));
                }
                self.rooms.insert(room.clone(), user.clone());
                let event = ServerEvent::Joined {
                    room: room.clone(),
                    user,
                    ts: now_ms(),
                };
                // the joiner gets this broadcast too: it is the acknowledgement
                match broker.publish(&room, event.to_text()).await {
                    Ok(()) => None,
                    Err(e) => Some(unavailable(e, "join")),
                }
            }
            Request::Message { room, text } => {
                let Some(user) = self.rooms.get(&room) else {
                    return Some(not_joined(&room, "message"));
                };
                let event = ServerEvent::Message {
                    room: room.clone(),
                    user: user.clone(),
                    text,
                    ts: now_ms(),
                };
                // the sender sees its own message come back: that is its
                // acknowledgement, in the order everyone else sees
                match broker.publish(&room, event.to_text()).await {
                    Ok(()) => None,
                    Err(e) => Some(unavailable(e, "message")),
                }
            }
            Request::Leave { room } => {
                let Some(user) = self.rooms.remove(&room) else {
                    return Some(not_joined(&room, "leave"));
                };
                broker.leave(&room, self.member.id);
                let event = ServerEvent::Left {
                    room: room.clone(),
                    user,
                    ts: now_ms(),
                    reason: "leave",
                };
                if let Err(e) = broker.publish(&room, event.to_text()).await {
                    self.server.log(format_args!("announcing a leave: {e}"));
                }
                // no longer a member: acknowledge directly
                Some(event)
            }
        }
    }

    /// Leave every room (the connection is ending), announcing it.
    async fn leave_all(&mut self, reason: &'static str) {
        for (room, user) in std::mem::take(&mut self.rooms) {
            self.server.broker.leave(&room, self.member.id);
            let event = ServerEvent::Left {
                room: room.clone(),
                user,
                ts: now_ms(),
                reason,
            };
            if let Err(e) = self.server.broker.publish(&room, event.to_text()).await {
                self.server.log(format_args!("announcing a leave: {e}"));
            }
        }
    }
}

fn kind(r: &Request) -> &'static str {
    match r {
        Request::Join { .. } => "join",
        Request::Message { .. } => "message",
        Request::Leave { .. } => "leave",
        Request::Ping => "ping",
    }
}

fn not_joined(room: &str, request: &str) -> ServerEvent {
    ServerEvent::error(
        ErrorCode::NotJoined,
        format!("not in room {room}: join it first"),
        Some(request),
    )
}

fn unavailable(e: crate::broker::BrokerError, request: &str) -> ServerEvent {
    ServerEvent::error(
        ErrorCode::Unavailable,
        format!("the message broker is unavailable ({e}); try again"),
        Some(request),
    )
}

/// A token bucket: `BURST` requests at once, `RATE` per second after that.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn new() -> Self {
        Bucket {
            tokens: BURST,
            at: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * RATE;
        self.tokens = (self.tokens + refill).min(BURST);
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}
