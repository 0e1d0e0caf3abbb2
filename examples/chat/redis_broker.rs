//! Scale-out: Redis pub/sub fan-out, so that several chat instances share
//! rooms.
//!
//! Each room is the Redis channel `wsproto-chat:room:<name>`. An instance
//! subscribes to a room's channel while it has local members in that room
//! (and only then), publishes every room event with `PUBLISH`, and hands
//! what its subscription receives to its local [`Hub`]. Its own events come
//! back the same way, so every member of a room sees the same order.
//!
//! Both Redis connections reconnect by themselves. Pub/sub is fire and
//! forget: events published while an instance is resubscribing are not
//! replayed to it (a chat that needs history would keep it in a Redis
//! stream or a database).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use redis::aio::{MultiplexedConnection, PubSubSink, PubSubStream};
use tokio::sync::{mpsc, oneshot, Mutex};
use wsproto::Utf8Bytes;

use crate::broker::{BoxFuture, Broker, BrokerError, ConnId, Hub, Member};

/// Channel name prefix; the room name follows.
const PREFIX: &str = "wsproto-chat:room:";
/// Bound on every Redis round trip.
const REDIS_TIMEOUT: Duration = Duration::from_secs(3);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

enum SubCmd {
    /// Make sure the room's channel is subscribed; answer when it is.
    Ensure(String, oneshot::Sender<Result<(), BrokerError>>),
    /// Unsubscribe if the room has no local member any more.
    Release(String),
}

pub struct RedisBroker {
    client: redis::Client,
    hub: Arc<Hub>,
    publisher: Mutex<Option<MultiplexedConnection>>,
    subs: mpsc::Sender<SubCmd>,
}

fn err(context: &str, e: impl std::fmt::Display) -> BrokerError {
    BrokerError(format!("redis {context}: {e}"))
}

async fn timed<T>(
    context: &str,
    fut: impl std::future::Future<Output = redis::RedisResult<T>>,
) -> Result<T, BrokerError> {
    match tokio::time::timeout(REDIS_TIMEOUT, fut).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(err(context, e)),
        Err(_) => Err(err(context, "timed out")),
    }
}

impl RedisBroker {
    /// Connect (both connections must work now, so a wrong URL fails at
    /// startup rather than at the first message) and start the subscriber.
    pub async fn connect(url: &str) -> Result<Arc<Self>, BrokerError> {
        let client = redis::Client::open(url).map_err(|e| err("URL", e))?;
        let publisher = timed("connect", client.get_multiplexed_async_connection()).await?;
        let pubsub = timed("connect (pub/sub)", client.get_async_pubsub()).await?;
        let hub = Arc::new(Hub::default());
        let (tx, rx) = mpsc::channel(1024);
        tokio::spawn(subscriber(client.clone(), hub.clone(), rx, pubsub.split()));
        Ok(Arc::new(RedisBroker {
            client,
            hub,
            publisher: Mutex::new(Some(publisher)),
            subs: tx,
        }))
    }

    /// The publishing connection, reconnecting if the last one failed.
    async fn publisher(&self) -> Result<MultiplexedConnection, BrokerError> {
        let mut guard = self.publisher.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        let c = timed("connect", self.client.get_multiplexed_async_connection()).await?;
        eprintln!("redis: publisher reconnected");
        *guard = Some(c.clone());
        Ok(c)
    }
}

impl Broker for RedisBroker {
    fn kind(&self) -> &'static str {
        "redis"
    }

    fn join<'a>(&'a self, room: &'a str, member: Member) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            let id = member.id;
            self.hub.add(room, member);
            let (ack, done) = oneshot::channel();
            let result = match self.subs.send(SubCmd::Ensure(room.to_string(), ack)).await {
                Ok(()) => done
                    .await
                    .unwrap_or_else(|_| Err(BrokerError("redis subscriber stopped".into()))),
                Err(_) => Err(BrokerError("redis subscriber stopped".into())),
            };
            if result.is_err() {
                self.leave(room, id);
            }
            result
        })
    }

    fn leave(&self, room: &str, id: ConnId) {
        if self.hub.remove(room, id) {
            // the subscriber unsubscribes unless someone joined meanwhile;
            // if its queue is full it catches up on the next Release
            let _ = self.subs.try_send(SubCmd::Release(room.to_string()));
        }
    }

    fn publish<'a>(
        &'a self,
        room: &'a str,
        event: Utf8Bytes,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        Box::pin(async move {
            let mut conn = self.publisher().await?;
            let channel = format!("{PREFIX}{room}");
            let sent = timed(
                "PUBLISH",
                redis::cmd("PUBLISH")
                    .arg(&channel)
                    .arg(event.as_bytes())
                    .query_async::<i64>(&mut conn),
            )
            .await;
            if sent.is_err() {
                // reconnect on the next publish
                *self.publisher.lock().await = None;
            }
            sent.map(|_| ())
        })
    }
}

/// The subscriber task: owns the pub/sub connection, (un)subscribes as
/// rooms gain their first or lose their last local member, delivers
/// messages to the hub, and reconnects (resubscribing every local room)
/// when the connection drops.
async fn subscriber(
    client: redis::Client,
    hub: Arc<Hub>,
    mut cmds: mpsc::Receiver<SubCmd>,
    first: (PubSubSink, PubSubStream),
) {
    let mut conn = Some(first);
    let mut subscribed: HashSet<String> = HashSet::new();
    let mut backoff = Duration::from_millis(100);
    loop {
        let Some((sink, stream)) = conn.as_mut() else {
            // disconnected: answer joins with an error until Redis is back
            tokio::select! {
                cmd = cmds.recv() => match cmd {
                    None => return,
                    Some(SubCmd::Ensure(_, ack)) => {
                        let _ = ack.send(Err(BrokerError("redis is unavailable".into())));
                    }
                    Some(SubCmd::Release(_)) => {}
                },
                _ = tokio::time::sleep(backoff) => {
                    backoff = (backoff * 2).min(MAX_BACKOFF);
                    match resubscribe(&client, &hub).await {
                        Ok((c, rooms)) => {
                            eprintln!("redis: pub/sub reconnected ({} rooms)", rooms.len());
                            conn = Some(c);
                            subscribed = rooms;
                            backoff = Duration::from_millis(100);
                        }
                        Err(e) => eprintln!("{e}; retrying in {backoff:?}"),
                    }
                }
            }
            continue;
        };
        tokio::select! {
            cmd = cmds.recv() => match cmd {
                None => return,
                Some(SubCmd::Ensure(room, ack)) => {
                    if subscribed.contains(&room) {
                        let _ = ack.send(Ok(()));
                        continue;
                    }
                    match timed("SUBSCRIBE", sink.subscribe(format!("{PREFIX}{room}"))).await {
                        Ok(()) => {
                            subscribed.insert(room);
                            let _ = ack.send(Ok(()));
                        }
                        Err(e) => {
                            eprintln!("{e}");
                            let _ = ack.send(Err(e));
                            conn = None;
                            subscribed.clear();
                        }
                    }
                }
                Some(SubCmd::Release(room)) => {
                    if hub.has_room(&room) || !subscribed.remove(&room) {
                        continue;
                    }
                    if let Err(e) = timed("UNSUBSCRIBE", sink.unsubscribe(format!("{PREFIX}{room}"))).await {
                        eprintln!("{e}");
                        conn = None;
                        subscribed.clear();
                    }
                }
            },
            msg = stream.next() => match msg {
                None => {
                    eprintln!("redis: pub/sub connection lost");
                    conn = None;
                    subscribed.clear();
                }
                Some(msg) => {
                    let Some(room) = msg.get_channel_name().strip_prefix(PREFIX) else {
                        continue;
                    };
                    // events are JSON this server wrote; anything else on
                    // the channel is not ours to forward
                    match Utf8Bytes::try_from(msg.get_payload_bytes().to_vec()) {
                        Ok(event) => hub.deliver(room, &event),
                        Err(_) => eprintln!("redis: ignoring a non-UTF-8 message on {PREFIX}{room}"),
                    }
                }
            },
        }
    }
}

/// A new pub/sub connection subscribed to every room with local members.
async fn resubscribe(
    client: &redis::Client,
    hub: &Hub,
) -> Result<((PubSubSink, PubSubStream), HashSet<String>), BrokerError> {
    let pubsub = timed("connect (pub/sub)", client.get_async_pubsub()).await?;
    let (mut sink, stream) = pubsub.split();
    let rooms: HashSet<String> = hub.rooms().into_iter().collect();
    if !rooms.is_empty() {
        let channels: Vec<String> = rooms.iter().map(|r| format!("{PREFIX}{r}")).collect();
        timed("SUBSCRIBE", sink.subscribe(channels)).await?;
    }
    Ok(((sink, stream), rooms))
}
