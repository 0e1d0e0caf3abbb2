//! Deadlines, computed from caller-supplied time only.
//!
//! The connection cannot know the time at which bytes arrive or commands are
//! issued, so timers are *armed lazily*: a transition sets a flag, and the next
//! [`Connection::poll_timeout`](crate::Connection::poll_timeout) or
//! [`handle_timeout`](crate::Connection::handle_timeout) turns the flag into a
//! deadline relative to the `now` it is given. An adapter that calls
//! `poll_timeout` after every batch of work (the documented loop) gets
//! deadlines accurate to that batch.

use core::time::Duration;

use crate::time::Instant;
use crate::Config;

#[derive(Debug, Clone)]
pub(crate) struct Timers {
    keepalive_interval: Option<Duration>,
    keepalive_timeout: Duration,
    close_timeout: Duration,
    /// Bytes arrived since the last sync.
    pub(crate) rx_activity: bool,
    started: bool,
    /// When to send the next keepalive ping (Open state only).
    pub(crate) next_ping: Option<Instant>,
    /// A keepalive ping is queued but not yet handed out.
    pub(crate) ping_queued: bool,
    /// The keepalive ping was handed out; its deadline starts at the next
    /// sync.
    pub(crate) ping_transmitted: bool,
    /// A keepalive ping is outstanding; the peer must send something by then.
    pub(crate) pong_deadline: Option<Instant>,
    /// A close-related deadline should start at the next sync.
    close_arm: bool,
    pub(crate) close_deadline: Option<Instant>,
    /// The close deadline has passed.
    pub(crate) close_expired: bool,
}

impl Timers {
    pub(crate) fn new(config: &Config) -> Self {
        Timers {
            // a zero interval would ping in a busy loop: treat it as "off"
            keepalive_interval: config.keepalive_interval.filter(|d| !d.is_zero()),
            keepalive_timeout: config.keepalive_timeout,
            close_timeout: config.close_timeout,
            rx_activity: false,
            started: false,
            next_ping: None,
            ping_queued: false,
            ping_transmitted: false,
            pong_deadline: None,
            close_arm: false,
            close_deadline: None,
            close_expired: false,
        }
    }

    /// Turn pending arm requests into deadlines relative to `now`.
    pub(crate) fn sync(&mut self, now: Instant) {
        if self.rx_activity || !self.started {
            self.started = true;
            self.rx_activity = false;
            self.pong_deadline = None;
            // while a ping waits to go out, the next one is not due: a
            // deadline in the past that nothing can act on would make a
            // driver spin
            self.next_ping = match self.ping_queued {
                true => None,
                false => self.keepalive_interval.map(|iv| now + iv),
            };
        }
        if self.ping_transmitted {
            // The answer cannot come before the ping left: the deadline runs
            // from then, not from when it was queued behind our backlog.
            self.ping_transmitted = false;
            if self.keepalive_interval.is_some() {
                self.pong_deadline = Some(now + self.keepalive_timeout);
            }
        }
        if self.close_arm {
            self.close_arm = false;
            self.close_deadline = Some(now + self.close_timeout);
            self.close_expired = false;
        }
    }

    /// Bytes arrived. A keepalive ping handed out earlier in this batch is
    /// answered by them: the peer is alive, no pong deadline is needed.
    pub(crate) fn note_rx(&mut self) {
        self.rx_activity = true;
        self.ping_transmitted = false;
    }

    /// The keepalive ping was handed out; its deadline starts at the next
    /// sync (bytes noted after this still cancel it).
    pub(crate) fn ping_went_out(&mut self) {
        self.ping_queued = false;
        self.ping_transmitted = true;
    }

    /// A keepalive ping was just queued.
    pub(crate) fn ping_queued(&mut self) {
        self.next_ping = None;
        self.ping_queued = true;
    }

    /// (Re)start the close deadline at the next sync and stop keepalive.
    pub(crate) fn arm_close(&mut self) {
        self.close_arm = true;
        self.close_expired = false;
        self.close_deadline = None;
        self.stop_keepalive();
    }

    pub(crate) fn stop_keepalive(&mut self) {
        self.keepalive_interval = None;
        self.next_ping = None;
        self.ping_queued = false;
        self.ping_transmitted = false;
        self.pong_deadline = None;
    }

    /// Stop everything (the connection is finished and the transport may
    /// close at once).
    pub(crate) fn stop_all(&mut self) {
        self.stop_keepalive();
        self.close_arm = false;
        self.close_deadline = None;
    }

    /// Whether a deadline exists or could be set by the next `sync`: without
    /// keepalive and outside a close handshake there is none, whatever the
    /// time.
    pub(crate) fn running(&self) -> bool {
        self.keepalive_interval.is_some() || self.close_arm || self.next_deadline().is_some()
    }

    /// The earliest pending deadline.
    pub(crate) fn next_deadline(&self) -> Option<Instant> {
        let close = if self.close_expired {
            None
        } else {
            self.close_deadline
        };
        [self.next_ping, self.pong_deadline, close]
            .into_iter()
            .flatten()
            .min()
    }
}
