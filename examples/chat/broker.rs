//! Room fan-out: the [`Broker`] trait, the local [`Hub`] every instance
//! keeps, and the in-process broker. The Redis broker is in
//! `redis_broker.rs`.
//!
//! A connection registers a [`Member`] (its outbox) in each room it joins.
//! Publishing an event hands it to every member of the room, on this
//! instance (in-process) or on every instance (Redis). Outboxes are bounded:
//! a client that stops reading while its room is busy is not buffered
//! without limit, it is told to go (see [`Member::overflow`]).

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::{mpsc, Notify};
use wsproto::Utf8Bytes;

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A connection's id, unique within one server instance.
pub type ConnId = u64;

/// Events queued for one connection before it is considered too slow.
pub const OUTBOX: usize = 256;

/// The broker could not do what was asked (e.g. Redis is down).
#[derive(Debug, Clone)]
pub struct BrokerError(pub String);

impl fmt::Display for BrokerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Where room events go.
pub trait Broker: Send + Sync + 'static {
    /// For the startup banner and `/healthz`: `in-process` or `redis`.
    fn kind(&self) -> &'static str;

    /// Add a local member to `room`. Resolves once the member will receive
    /// every event published to the room afterwards, from any instance.
    fn join<'a>(&'a self, room: &'a str, member: Member) -> BoxFuture<'a, Result<(), BrokerError>>;

    /// Remove a local member from `room`.
    fn leave(&self, room: &str, id: ConnId);

    /// Deliver `event` to every member of `room`, on every instance.
    fn publish<'a>(
        &'a self,
        room: &'a str,
        event: Utf8Bytes,
    ) -> BoxFuture<'a, Result<(), BrokerError>>;
}

/// One connection's registration in a room.
#[derive(Clone)]
pub struct Member {
    pub id: ConnId,
    /// The connection's outbox.
    pub tx: mpsc::Sender<Utf8Bytes>,
    /// Notified when the outbox was full: the connection closes itself
    /// (the client is not reading fast enough).
    pub overflow: Arc<Notify>,
}

/// The rooms with members on this instance.
#[derive(Default)]
pub struct Hub {
    rooms: Mutex<HashMap<String, HashMap<ConnId, Member>>>,
}

impl Hub {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, HashMap<ConnId, Member>>> {
        // nothing panics while holding the lock; keep going if it did
        self.rooms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Add `member` to `room`; `true` if it is the room's first local member.
    pub fn add(&self, room: &str, member: Member) -> bool {
        let mut rooms = self.lock();
        let members = rooms.entry(room.to_string()).or_default();
        let first = members.is_empty();
        members.insert(member.id, member);
        first
    }

    /// Remove member `id` from `room`; `true` if the room has no local
    /// member left.
    pub fn remove(&self, room: &str, id: ConnId) -> bool {
        let mut rooms = self.lock();
        let Some(members) = rooms.get_mut(room) else {
            return true;
        };
        members.remove(&id);
        if members.is_empty() {
            rooms.remove(room);
            true
        } else {
            false
        }
    }

    /// Whether `room` has local members.
    pub fn has_room(&self, room: &str) -> bool {
        self.lock().contains_key(room)
    }

    /// The rooms with local members.
    pub fn rooms(&self) -> Vec<String> {
        self.lock().keys().cloned().collect()
    }

    /// Hand `event` to every local member of `room`. Never blocks: a full
    /// outbox marks its connection as too slow instead.
    pub fn deliver(&self, room: &str, event: &Utf8Bytes) {
        let rooms = self.lock();
        let Some(members) = rooms.get(room) else {
            return;
        };
        for m in members.values() {
            match m.tx.try_send(event.clone()) {
                Ok(()) => {}
                Err(mpsc::error::TrySendError::Full(_)) => m.overflow.notify_one(),
                // the connection is ending and will leave the room itself
                Err(mpsc::error::TrySendError::Closed(_)) => {}
            }
        }
    }
}

/// One instance, no dependencies: rooms live in this process.
pub struct InProcess {
    hub: Hub,
}

impl InProcess {
    pub fn new() -> Self {
        InProcess {
            hub: Hub::default(),
        }
    }
}

impl Broker for InProcess {
    fn kind(&self) -> &'static str {
        "in-process"
    }

    fn join<'a>(&'a self, room: &'a str, member: Member) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.hub.add(room, member);
        Box::pin(async { Ok(()) })
    }

    fn leave(&self, room: &str, id: ConnId) {
        self.hub.remove(room, id);
    }

    fn publish<'a>(
        &'a self,
        room: &'a str,
        event: Utf8Bytes,
    ) -> BoxFuture<'a, Result<(), BrokerError>> {
        self.hub.deliver(room, &event);
        Box::pin(async { Ok(()) })
    }
}
