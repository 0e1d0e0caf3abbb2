//! Every state transition of a [`Connection`] lives here.
//!
//! ```text
//!            close() ─────────────┐
//!   Open ────────────────────▶ CloseSent ──peer close──▶ Closed(Clean)
//!    │  peer close (reply queued)                │ close timeout
//!    ├───────────────────────▶ Closed(Clean)     └──────▶ Closed(TimedOut)
//!    ├── keepalive unanswered ─▶ Closed(TimedOut)
//!    ├── transport EOF ────────▶ Closed(Abnormal)   (also from CloseSent)
//!    └── peer error ───────────▶ Closed(Failed)     (also from CloseSent)
//! ```
//!
//! `Closed` is terminal: [`Event::Closed`] is emitted exactly once on entry
//! (except for `Failed`, which is reported as a sticky `Err` instead), input
//! is discarded from then on, and only the transport-closing decision
//! ([`Connection::should_close_transport`]) still evolves.

use super::{CloseReason, Connection, Event, Initiator, Timeout};
use crate::error::Error;
use crate::frame::{CloseCode, CloseFrame};
use crate::message::Utf8Bytes;
use crate::Role;

/// Protocol state of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    /// Data flows both ways.
    Open,
    /// We queued a close frame and wait for the peer's (§7.1.2). Incoming
    /// data is still delivered; nothing more may be sent.
    CloseSent,
    /// Terminal.
    Closed(End),
}

/// How a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum End {
    Clean,
    Abnormal,
    TimedOut,
    Failed,
}

impl Connection {
    /// The peer's close frame arrived (already validated).
    pub(super) fn on_peer_close(&mut self, frame: Option<CloseFrame>) -> Event {
        let initiator = match self.state {
            State::Open => {
                // §5.5.1: "If an endpoint receives a Close frame and did not
                // previously send a Close frame, the endpoint MUST send a
                // Close frame in response ... typically echos the status code
                // it received."
                let reply = frame.as_ref().map(|f| CloseFrame {
                    code: f.code,
                    reason: Utf8Bytes::new(),
                });
                self.out.push_close(reply.as_ref(), self.masks.as_mut());
                Initiator::Peer
            }
            State::CloseSent => Initiator::Local,
            State::Closed(_) => unreachable!("input is discarded once closed"),
        };
        self.sending = None;
        self.enter_closed(End::Clean);
        Event::Closed(CloseReason::Clean {
            initiator,
            peer_frame: frame,
        })
    }

    /// The application called `close`. The caller has checked the state is
    /// `Open` and the frame is valid.
    pub(super) fn on_local_close(&mut self, frame: Option<&CloseFrame>) {
        debug_assert_eq!(self.state, State::Open);
        self.out.push_close(frame, self.masks.as_mut());
        self.sending = None;
        self.state = State::CloseSent;
        // §7.1.1/§7.1.2: wait a bounded time for the peer's close.
        self.timers.arm_close();
    }

    /// The transport delivered EOF.
    pub(super) fn on_eof(&mut self) {
        match self.state {
            // §7.1.5: closed without a close frame: 1006.
            State::Open | State::CloseSent => {
                self.enter_closed(End::Abnormal);
                self.events.push_back(Event::Closed(CloseReason::Abnormal));
            }
            State::Closed(_) => {}
        }
    }

    /// The peer broke the protocol or a limit: fail the connection (§7.1.7).
    /// Returns the error for the caller to report; it stays sticky.
    pub(super) fn on_failure(&mut self, err: Error) -> Error {
        if self.state == State::Open {
            // §7.1.7: "the endpoint SHOULD send a Close frame with an
            // appropriate status code", after the frames already queued
            // (echoes of what was valid before the error).
            self.out.drop_keepalive();
            let code = err.close_code().unwrap_or(CloseCode::INTERNAL_ERROR);
            let reason = match &err {
                Error::Protocol(p) => p.reason(),
                Error::Capacity(_) => "message too big",
                _ => "",
            };
            let frame = CloseFrame::new(code, Utf8Bytes::from_static(reason));
            self.out.push_close(Some(&frame), self.masks.as_mut());
        }
        self.sending = None;
        self.error = Some(err.clone());
        self.enter_closed(End::Failed);
        err
    }

    /// A timer expired at the time of the last `handle_timeout`.
    pub(super) fn on_timeout(&mut self, which: Timeout) {
        match (self.state, which) {
            (State::Open, Timeout::Keepalive) | (State::CloseSent, Timeout::CloseHandshake) => {
                self.enter_closed(End::TimedOut);
                self.events
                    .push_back(Event::Closed(CloseReason::TimedOut(which)));
            }
            // After the end, the close timer only bounds how long we wait
            // for the transport (see should_close_transport).
            _ => {}
        }
    }

    fn enter_closed(&mut self, end: End) {
        self.state = State::Closed(end);
        // release the buffer, not just its contents: the connection is over
        self.input = bytes::BytesMut::new();
        self.consumed = 0;
        self.rx_reset();
        match end {
            // Bound the wait for the flush (a peer that never reads) and, as
            // a client, for the server's TCP close (§7.1.1).
            End::Clean | End::Failed => self.timers.arm_close(),
            // the transport closes at once: no timer has anything to wait for
            End::Abnormal | End::TimedOut => self.timers.stop_all(),
        }
    }

    /// Whether the transport should be closed now (see the public method).
    pub(super) fn transport_done(&self) -> bool {
        match self.state {
            State::Open | State::CloseSent => false,
            State::Closed(End::Abnormal) | State::Closed(End::TimedOut) => true,
            State::Closed(End::Clean) => match self.role {
                // §7.1.1: "the server SHOULD close first"; the client waits
                // for the server's TCP close, but not forever.
                Role::Server => self.out.is_empty() || self.timers.close_expired,
                Role::Client => (self.out.is_empty() && self.eof) || self.timers.close_expired,
            },
            State::Closed(End::Failed) => self.out.is_empty() || self.timers.close_expired,
        }
    }
}
