//! The message-level state machine.

mod event;
mod outbound;
mod state;
mod timers;

use alloc::boxed::Box;
use alloc::collections::VecDeque;
use alloc::vec::Vec;

use bytes::{Bytes, BytesMut};

pub use event::{CloseReason, Event, EventRef, Initiator, Timeout};

use crate::error::{ApiMisuse, CapacityError, Error, ProtocolError, SendError};
use crate::frame::{CloseFrame, FrameDecoder, FrameHeader, OpCode};
use crate::mask::MaskSource;
use crate::message::{Message, MessageKind, MessageRef, Utf8Bytes, Utf8Validator};
use crate::time::Instant;
use crate::{Config, Role};
use outbound::Outbound;
use state::{End, State};
use timers::Timers;

/// The state of a connection, as the application sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionState {
    /// Messages flow both ways.
    Open,
    /// We sent a close frame and wait for the peer's; incoming messages are
    /// still delivered, nothing more can be sent.
    Closing,
    /// Finished ([`Event::Closed`] was or is about to be reported, or the
    /// connection failed).
    Closed,
}

/// A WebSocket connection after the opening handshake: a sans-IO state
/// machine for one endpoint.
///
/// It owns an input buffer and an output queue, and never touches a socket
/// or a clock. Methods come in families; a driver calls them in this order:
///
/// 1. **Input** — bytes that arrived: [`receive`](Self::receive) (copies) or
///    [`input_buffer`](Self::input_buffer) (read straight into it), and
///    [`receive_eof`](Self::receive_eof) when the transport's read side ends.
/// 2. **Events** — [`poll_event`](Self::poll_event) until it returns
///    `Ok(None)`; an `Err` is fatal and sticky (the close frame is queued).
/// 3. **Commands** — [`send`](Self::send), [`send_fragment`](Self::send_fragment),
///    [`ping`](Self::ping), [`pong`](Self::pong), [`close`](Self::close). They
///    encode at once into the output queue; a refused command returns its
///    value in a [`SendError`].
/// 4. **Output** — [`transmit_slices`](Self::transmit_slices) or
///    [`peek_transmit`](Self::peek_transmit) and
///    [`advance_transmit`](Self::advance_transmit) with what was written
///    (bytes stay queued until written), or [`poll_transmit`](Self::poll_transmit)
///    until `None`, writing
///    each chunk fully and in order; then, if
///    [`should_close_transport`](Self::should_close_transport), close the
///    transport.
/// 5. **Time** — [`handle_timeout`](Self::handle_timeout) when the deadline
///    from [`poll_timeout`](Self::poll_timeout) passes (then poll events and
///    output again), and `poll_timeout(now)` after every batch to learn the
///    next deadline.
///
/// Getters ([`state`](Self::state), [`pending_output`](Self::pending_output),
/// ...) can be called at any time.
///
/// ```
/// use wsproto::{Config, Connection, Event, Message, Role};
///
/// let mut server = Connection::new(Role::Server, Config::default());
/// // A masked text frame "Hello" from a client (RFC 6455 §5.7).
/// server.receive(&[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]);
/// let event = server.poll_event().unwrap();
/// assert_eq!(event, Some(Event::Message(Message::text("Hello"))));
/// assert_eq!(server.poll_event().unwrap(), None); // needs more bytes
///
/// // Echo it: the output is an unmasked frame.
/// server.send(Message::text("Hello")).unwrap();
/// let mut wire = Vec::new();
/// while let Some(chunk) = server.poll_transmit() {
///     wire.extend_from_slice(&chunk);
/// }
/// assert_eq!(wire, [0x81, 0x05, b'H', b'e', b'l', b'l', b'o']);
/// ```
pub struct Connection {
    role: Role,
    config: Config,
    input: BytesMut,
    decoder: FrameDecoder,
    rx: Receive,
    state: State,
    out: Outbound,
    /// Kind of the fragmented message we are sending, if any.
    sending: Option<MessageKind>,
    /// Validates text fragments we send, across calls.
    send_utf8: Utf8Validator,
    timers: Timers,
    events: VecDeque<Event>,
    error: Option<Error>,
    eof: bool,
    masks: Option<Box<dyn MaskSource>>,
    /// Boxed: an uncompressed connection pays one pointer for it.
    #[cfg(feature = "deflate")]
    deflate: Option<alloc::boxed::Box<crate::extension::deflate::DeflateState>>,
    /// The fragmented message being sent is compressed.
    #[cfg(feature = "deflate")]
    sending_compressed: bool,
    ping_counter: u64,
    /// Input length after the last `poll_event`, to notice bytes appended
    /// through `input_buffer()`.
    input_seen: usize,
    /// Bytes at the front of `input` already consumed but not yet removed:
    /// messages read in place (`poll_event_ref` lends them until the next
    /// call) and small messages taken by the fast path, removed in one
    /// `advance` when anything else needs the input (`flush_consumed`).
    consumed: usize,
    /// The event `poll_event_ref` lends when it is not a message read in
    /// place; dropped at the next call.
    lent: Option<Event>,
}

/// Receive-side message state.
#[derive(Debug, Default)]
struct Receive {
    /// Kind of the message being received, if one is in progress.
    kind: Option<MessageKind>,
    /// Declared size of the message so far (sum of its frames' lengths).
    len: u64,
    /// Whether a frame of this message was already completed (so the message
    /// is fragmented and must be reassembled).
    fragmented: bool,
    /// Reassembly buffer (reassembling mode, fragmented messages only).
    parts: Vec<u8>,
    utf8: Utf8Validator,
    /// Streaming text: bytes of an incomplete code point that ended a frame.
    carry: Vec<u8>,
    /// The message is compressed (RSV1 on its first frame, RFC 7692 §6).
    compressed: bool,
    /// Bytes of the 4-byte deflate tail fed to the inflater so far.
    tail_fed: usize,
    /// Decompressed bytes produced for this message (streaming mode).
    inflated: usize,
    /// The final frame's payload is consumed; the deflate tail is not yet
    /// fully inflated (the output filled up first).
    tail_owed: bool,
}

impl core::fmt::Debug for Connection {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Connection")
            .field("role", &self.role)
            .field("state", &self.state)
            .field("buffered_input", &self.buffered_input())
            .field("pending_output", &self.out.pending_bytes())
            .field("error", &self.error)
            .finish_non_exhaustive()
    }
}

/// An input buffer with more spare room than this after a frame is replaced
/// by a fresh, small one.
const SHRINK_ABOVE: usize = 64 * 1024;
/// Leftover input up to this size is copied into a fresh buffer to release
/// a large allocation (larger leftovers keep it: it is still in use).
const DETACH_MAX: usize = 16 * 1024;

/// A finished buffer without its spare capacity, so a message the
/// application keeps (or a queued frame) holds about its own size.
pub(crate) fn exact(mut v: Vec<u8>) -> Vec<u8> {
    if v.capacity() - v.len() > v.len() / 16 + 64 {
        v.shrink_to_fit();
    }
    v
}

/// Messages up to this size take `small_message`'s single-step path when
/// they arrive whole; larger ones are unmasked as they arrive and leave the
/// input without a copy.
const SMALL_MESSAGE: usize = 4096;
/// Frames from this payload size up are unmasked while being appended to the
/// input even when they cannot be decoded yet (`append_frames`): below it,
/// reading their header twice costs more than the second pass saves.
const PREUNMASK_MIN: usize = 256;

enum Step {
    Event(Event),
    /// A message left in the input for `poll_event_ref` to lend.
    Lent(Lent),
    Continue,
    NeedMore,
}

/// What `poll_next` found.
enum Next {
    Event(Event),
    Lent(Lent),
}

/// A message at `input[start..start + len]`, unmasked and validated; the
/// input up to its end is `consumed`.
#[derive(Clone, Copy)]
struct Lent {
    text: bool,
    start: usize,
    len: usize,
}

/// A whole small data frame found by `whole_small_message`, still masked:
/// its payload is `input[start..start + len]`.
#[derive(Clone, Copy)]
struct SmallFrame {
    text: bool,
    start: usize,
    len: usize,
    key: Option<[u8; 4]>,
}

impl Connection {
    /// A connection for `role` right after a successful opening handshake.
    /// Clients get an [`OsMaskSource`](crate::OsMaskSource).
    #[cfg(feature = "std")]
    pub fn new(role: Role, config: Config) -> Self {
        let masks: Option<Box<dyn MaskSource>> = match role {
            Role::Client => Some(Box::new(crate::mask::OsMaskSource::new())),
            Role::Server => None,
        };
        Self::build(role, config, masks)
    }

    /// A server connection (no masking keys needed; available without `std`).
    pub fn server(config: Config) -> Self {
        Self::build(Role::Server, config, None)
    }

    /// A client connection taking its masking keys from `masks` (available
    /// without `std`; RFC 6455 §10.3 requires the keys to be unpredictable).
    pub fn client_with_masks(config: Config, masks: Box<dyn MaskSource>) -> Self {
        Self::build(Role::Client, config, Some(masks))
    }

    /// A connection for a handshake done by another HTTP stack (hyper, axum,
    /// ...), with the bytes the stack read past the handshake head. Same as
    /// [`new`](Self::new) followed by [`receive`](Self::receive).
    #[cfg(feature = "std")]
    pub fn after_handshake(role: Role, config: Config, leftover: &[u8]) -> Self {
        let mut c = Self::new(role, config);
        c.receive(leftover);
        c
    }

    fn build(role: Role, config: Config, masks: Option<Box<dyn MaskSource>>) -> Self {
        let max_frame = config.limits.max_frame_payload;
        Connection {
            role,
            timers: Timers::new(&config),
            config,
            input: BytesMut::new(),
            decoder: FrameDecoder::new(role, max_frame),
            rx: Receive::default(),
            state: State::Open,
            out: Outbound::new(role),
            sending: None,
            send_utf8: Utf8Validator::new(),
            events: VecDeque::new(),
            error: None,
            eof: false,
            masks,
            #[cfg(feature = "deflate")]
            deflate: None,
            #[cfg(feature = "deflate")]
            sending_compressed: false,
            ping_counter: 0,
            input_seen: 0,
            consumed: 0,
            lent: None,
        }
    }

    // ----------------------------------------------------------------- input

    /// Hand over bytes that arrived from the peer (copied into the input
    /// buffer). Call [`poll_event`](Self::poll_event) afterwards. Bytes that
    /// arrive after the connection ended are discarded.
    pub fn receive(&mut self, data: &[u8]) {
        if data.is_empty() || matches!(self.state, State::Closed(_)) {
            return;
        }
        self.lent = None;
        self.flush_consumed();
        self.timers.note_rx();
        // all of it, at once: growing in steps would copy what is in already
        self.input.reserve(data.len());
        let mut data = data;
        loop {
            // payload of the frame in progress: unmasked as it is copied in
            let n = self.decoder.extend_payload(&mut self.input, data);
            data = &data[n..];
            if data.is_empty() {
                return;
            }
            // A new frame starts at a clean point (nothing buffered, nothing
            // queued): read its header now so that its payload, too, is
            // unmasked on the way in. Elsewhere the order of events needs the
            // header to wait for `poll_event`.
            if n == 0 && !self.header_at_clean_point(&mut data) {
                break;
            }
        }
        self.append_frames(data);
    }

    /// Append `data` to the input. Whole masked frames at its front of at
    /// least `PREUNMASK_MIN` payload bytes go in unmasked, with their key
    /// zeroed so the decoder's unmask has nothing left to do: frames after
    /// the first of a read are unmasked while copied too, one pass instead of
    /// a copy and a second pass over the buffer. The frames themselves are
    /// only decoded later, in order, by `poll_event` (zeroing the key changes
    /// nothing a caller can see: the payload is what unmasking yields).
    fn append_frames(&mut self, mut data: &[u8]) {
        while let Ok(Some((h, hlen))) = FrameHeader::parse(data) {
            let (Some(key), Ok(n)) = (h.mask, usize::try_from(h.payload_len)) else {
                break;
            };
            if n < PREUNMASK_MIN || n > data.len() - hlen {
                break;
            }
            // a masked header ends with its 4-byte key
            self.input.extend_from_slice(&data[..hlen - 4]);
            self.input.extend_from_slice(&[0; 4]);
            crate::mask::extend_masked(&mut self.input, &data[hlen..hlen + n], key, 0);
            data = &data[hlen + n..];
        }
        self.input.extend_from_slice(data);
    }

    /// `receive`'s early header: when nothing is buffered or pending, take
    /// a complete, valid header off the front of `data` and process it as
    /// `step` would. Returns whether it did.
    fn header_at_clean_point(&mut self, data: &mut &[u8]) -> bool {
        let clean = self.input.is_empty()
            && self.decoder.current().is_none()
            && self.events.is_empty()
            && self.error.is_none()
            && matches!(self.state, State::Open | State::CloseSent);
        #[cfg(feature = "deflate")]
        let clean = clean && !self.rx.tail_owed;
        if !clean {
            return false;
        }
        let Ok(Some((h, len))) = FrameHeader::parse(data) else {
            return false;
        };
        // A header that fails is left for `poll_event` to report, so the
        // failure happens in order with everything else the caller does.
        if self.start_frame(h).is_err() {
            return false;
        }
        *data = &data[len..];
        true
    }

    /// Check a parsed frame header and start reading its payload; the caller
    /// removes the header's bytes. On failure nothing has changed.
    fn start_frame(&mut self, h: FrameHeader) -> Result<(), Error> {
        self.decoder.check(&h)?;
        let size = self.check_header(&h)?;
        self.apply_header(&h, size);
        self.decoder.begin(h);
        Ok(())
    }

    /// The input buffer, for reading from the transport straight into it
    /// (append only; do not modify what is already there). Call
    /// [`poll_event`](Self::poll_event) afterwards.
    pub fn input_buffer(&mut self) -> &mut BytesMut {
        self.flush_consumed();
        &mut self.input
    }

    /// Remove the consumed bytes from the front of the input.
    fn flush_consumed(&mut self) {
        if self.consumed > 0 {
            bytes::Buf::advance(&mut self.input, self.consumed);
            self.input_seen = self.input_seen.saturating_sub(self.consumed);
            self.consumed = 0;
            self.shrink_input();
        }
    }

    /// The transport's read side ended (EOF). Call
    /// [`poll_event`](Self::poll_event) afterwards: the connection reports
    /// [`CloseReason::Abnormal`] unless the close handshake was already done.
    pub fn receive_eof(&mut self) {
        self.eof = true;
    }

    // ---------------------------------------------------------------- events

    /// The next event, `Ok(None)` if more input is needed (or the connection
    /// is closed and every event was reported).
    ///
    /// An `Err` means the connection failed: the close frame with the error's
    /// [`close_code`](Error::close_code) is queued, and every later call
    /// returns the same error.
    pub fn poll_event(&mut self) -> Result<Option<Event>, Error> {
        self.lent = None;
        self.notice_input();
        if let Some(f) = self.whole_small_message() {
            return self.take_small_message(f).map(Some);
        }
        match self.poll_next(false)? {
            Some(Next::Event(ev)) => Ok(Some(ev)),
            Some(Next::Lent(_)) => unreachable!("only poll_event_ref lends"),
            None => Ok(None),
        }
    }

    /// The next event with its payload borrowed from the connection instead
    /// of owned: the same events as [`poll_event`](Self::poll_event), in the
    /// same order, with the same errors. Mixing the two calls is fine.
    ///
    /// A message that arrived in one frame is read **in place**: unmasked
    /// where it lies in the input buffer and lent until the next call on the
    /// connection — no allocation and no copy, whatever its size. Other
    /// events (fragmented or compressed messages, control frames) are lent
    /// from where the connection keeps them until then. Use it when the
    /// application processes each message at once (parses it, forwards it)
    /// rather than keeping it; [`MessageRef::to_message`] copies one out.
    ///
    /// ```
    /// use wsproto::{Config, Connection, EventRef, Message, MessageRef};
    /// let mut server = Connection::server(Config::default());
    /// // two masked frames: "Hi" (text) and [1, 2, 3] (binary)
    /// server.receive(&[0x81, 0x82, 1, 2, 3, 4, b'H' ^ 1, b'i' ^ 2]);
    /// server.receive(&[0x82, 0x83, 9, 9, 9, 9, 1 ^ 9, 2 ^ 9, 3 ^ 9]);
    /// let mut total = 0;
    /// while let Some(event) = server.poll_event_ref().unwrap() {
    ///     match event {
    ///         EventRef::Message(MessageRef::Text(text)) => {
    ///             assert_eq!(text, "Hi");
    ///             // the borrow ends here: the connection can be used again
    ///             let reply = Message::text(text.to_uppercase());
    ///             server.send(reply).unwrap();
    ///         }
    ///         EventRef::Message(m) => total += m.len(),
    ///         _ => {}
    ///     }
    /// }
    /// assert_eq!(total, 3);
    /// ```
    pub fn poll_event_ref(&mut self) -> Result<Option<EventRef<'_>>, Error> {
        self.lent = None;
        self.notice_input();
        let lent = match self.whole_small_message() {
            Some(f) => self.lend_small_message(f)?,
            None => match self.poll_next(true)? {
                Some(Next::Lent(l)) => l,
                Some(Next::Event(ev)) => {
                    let ev = self.lent.insert(ev);
                    return Ok(Some(EventRef::from_event(ev)));
                }
                None => return Ok(None),
            },
        };
        let data = &self.input[lent.start..lent.start + lent.len];
        Ok(Some(EventRef::Message(if lent.text {
            // validated on receipt (see src/unchecked.rs)
            MessageRef::Text(crate::unchecked::str_from_validated(data))
        } else {
            MessageRef::Binary(data)
        })))
    }

    /// The frame-by-frame machinery behind both `poll_event`s; `lend` lets
    /// a single-frame message stay in the input (`Next::Lent`).
    fn poll_next(&mut self, lend: bool) -> Result<Option<Next>, Error> {
        if let Some(ev) = self.events.pop_front() {
            return Ok(Some(Next::Event(ev)));
        }
        if let Some(e) = &self.error {
            return Err(e.clone());
        }
        if matches!(self.state, State::Closed(_)) {
            return Ok(None);
        }
        self.flush_consumed();
        loop {
            match self.step(lend) {
                Ok(Step::Event(ev)) => {
                    self.input_seen = self.input.len();
                    return Ok(Some(Next::Event(ev)));
                }
                Ok(Step::Lent(l)) => {
                    self.input_seen = self.input.len();
                    return Ok(Some(Next::Lent(l)));
                }
                Ok(Step::Continue) => {}
                Ok(Step::NeedMore) => break,
                Err(e) => return Err(self.on_failure(e)),
            }
        }
        self.input_seen = self.input.len();
        if self.eof {
            self.on_eof();
        }
        Ok(self.events.pop_front().map(Next::Event))
    }

    /// Account for bytes appended through `input_buffer()` since we last
    /// looked.
    fn notice_input(&mut self) {
        if matches!(self.state, State::Closed(_)) {
            // Bytes read after the end are dropped here (`receive` drops them
            // at once): a peer must not grow our memory while we wait for its
            // EOF.
            self.input.clear();
            self.consumed = 0;
        } else if self.input.len() != self.input_seen {
            // any new byte, even part of a header, proves the peer alive
            self.timers.note_rx();
            self.input_seen = self.input.len();
        }
    }

    fn step(&mut self, lend: bool) -> Result<Step, Error> {
        #[cfg(feature = "deflate")]
        if self.rx.tail_owed {
            return self.inflate_step(true);
        }
        let header = match self.decoder.current() {
            Some(h) => *h,
            None => {
                let Some((h, len)) = FrameHeader::parse(&self.input)? else {
                    return Ok(Step::NeedMore);
                };
                self.start_frame(h)?;
                bytes::Buf::advance(&mut self.input, len);
                h
            }
        };
        let new = self.decoder.unmask_available(&mut self.input);
        if header.opcode.is_control() {
            if !self.decoder.frame_complete() {
                return Ok(Step::NeedMore);
            }
            // ≤125 bytes: copied, so a kept ping payload pins nothing
            let n = header.payload_len as usize;
            let payload = Bytes::copy_from_slice(&self.input[..n]);
            self.decoder.advance(&mut self.input, n);
            return self.on_control(header.opcode, payload);
        }
        #[cfg(feature = "deflate")]
        if self.rx.compressed {
            return self.inflate_step(header.fin);
        }
        if self.rx.kind == Some(MessageKind::Text) {
            // §8.1 and Autobahn 6.4.*: fail at the first invalid byte, even
            // before the frame is complete.
            self.rx
                .utf8
                .feed(&self.input[new])
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if self.config.streaming {
            self.stream_data(header.fin)
        } else {
            self.reassemble(header.fin, lend)
        }
    }

    /// The hot path: a whole unfragmented, uncompressed data frame under
    /// `SMALL_MESSAGE` bytes, all in the input, between messages, in a
    /// connection with nothing else to report. Anything else — including
    /// every header that breaks a rule — is left to the frame-by-frame
    /// machinery (`poll_next`), which reports errors in order; so this reads
    /// only the common header shapes and checks only what makes a frame
    /// acceptable. It reads them itself rather than through
    /// `FrameHeader::parse`: with the parser, `decode_binary_frames/16B`
    /// took 72 instead of 56 µs for `wsproto_ref` (interleaved runs; the
    /// owned reader did not move).
    #[inline(always)]
    fn whole_small_message(&self) -> Option<SmallFrame> {
        if !self.events.is_empty()
            || self.error.is_some()
            || self.rx.kind.is_some()
            || self.decoder.current().is_some()
            || self.config.streaming
            || !matches!(self.state, State::Open | State::CloseSent)
        {
            return None;
        }
        let buf = &self.input[self.consumed..];
        let (&b0, &b1) = (buf.first()?, buf.get(1)?);
        // FIN, no RSV bit (so not compressed), text or binary
        let text = match b0 {
            0x81 => true,
            0x82 => false,
            _ => return None,
        };
        // §5.1: masked exactly when a client sent it
        let masked = b1 & 0x80 != 0;
        if masked != (self.role == Role::Server) {
            return None;
        }
        let (len, mut hlen) = match b1 & 0x7F {
            126 => {
                let len = u16::from_be_bytes([*buf.get(2)?, *buf.get(3)?]) as usize;
                // §5.2: the minimal encoding (else the slow path fails it)
                if len < 126 {
                    return None;
                }
                (len, 4)
            }
            127 => return None,
            len => (len as usize, 2),
        };
        let key = if masked {
            let k = buf.get(hlen..hlen + 4)?;
            hlen += 4;
            Some([k[0], k[1], k[2], k[3]])
        } else {
            None
        };
        if len >= SMALL_MESSAGE
            || len > buf.len() - hlen
            || len > self.config.limits.max_message
            || len > self.config.limits.max_frame_payload
        {
            return None;
        }
        Some(SmallFrame {
            text,
            start: self.consumed + hlen,
            len,
            key,
        })
    }

    /// `poll_event`'s share of the hot path: the message leaves as its own
    /// `Bytes` (see `split_payload` for when it is a copy).
    #[inline(always)]
    fn take_small_message(&mut self, f: SmallFrame) -> Result<Event, Error> {
        let payload = if !self.zero_copy(f.len) {
            // the input is not advanced: a read of many small frames moves
            // it once (`flush_consumed`)
            self.consumed = f.start + f.len;
            self.unmasked_copy(f.start, f.len, f.key)
        } else {
            let skip = f.start - self.consumed;
            self.flush_consumed();
            self.split_payload(skip, f.len, f.key)
        };
        Ok(Event::Message(if f.text {
            if !crate::message::utf8::is_valid(&payload) {
                return Err(self.on_failure(ProtocolError::InvalidUtf8.into()));
            }
            Message::Text(Utf8Bytes::from_validated(payload))
        } else {
            Message::Binary(payload)
        }))
    }

    /// `poll_event_ref`'s share: unmask in place and lend.
    #[inline(always)]
    fn lend_small_message(&mut self, f: SmallFrame) -> Result<Lent, Error> {
        let data = &mut self.input[f.start..f.start + f.len];
        if let Some(key) = f.key {
            crate::mask::apply_mask(data, key, 0);
        }
        if f.text && !crate::message::utf8::is_valid(data) {
            return Err(self.on_failure(ProtocolError::InvalidUtf8.into()));
        }
        self.consumed = f.start + f.len;
        Ok(Lent {
            text: f.text,
            start: f.start,
            len: f.len,
        })
    }

    /// The receive state for a header that passed `check_header` (which
    /// returned `size`).
    fn apply_header(&mut self, h: &FrameHeader, size: u64) {
        match h.opcode {
            OpCode::Text | OpCode::Binary => {
                self.rx_reset();
                self.rx.kind = Some(if h.opcode == OpCode::Text {
                    MessageKind::Text
                } else {
                    MessageKind::Binary
                });
                // the decoder lets RSV1 through only when deflate was
                // negotiated
                self.rx.compressed = h.rsv1;
            }
            OpCode::Continuation => {}
            _ => return,
        }
        self.rx.len = size;
    }

    /// Message-level checks when a header arrives (§5.4, limits), changing
    /// nothing; returns the message size so far including this frame.
    fn check_header(&self, h: &FrameHeader) -> Result<u64, Error> {
        let (size, compressed) = match h.opcode {
            OpCode::Continuation => {
                if self.rx.kind.is_none() {
                    return Err(ProtocolError::UnexpectedContinuation.into());
                }
                if h.rsv1 {
                    // RFC 7692 §6.1: RSV1 is set on the first frame of a
                    // message only
                    return Err(ProtocolError::ReservedBits.into());
                }
                (self.rx.len + h.payload_len, self.rx.compressed)
            }
            OpCode::Text | OpCode::Binary => {
                if self.rx.kind.is_some() {
                    return Err(ProtocolError::ExpectedContinuation.into());
                }
                (h.payload_len, h.rsv1)
            }
            _ => return Ok(0),
        };
        let limit = self.config.limits.max_message;
        // A compressed message is limited by its inflated size (checked while
        // inflating); on the wire it may be a little larger than that when
        // the data does not compress (deflate adds ~0.03%), so allow 2x.
        let wire_limit = if compressed {
            (limit as u64).saturating_mul(2)
        } else {
            limit as u64
        };
        if size > wire_limit {
            return Err(CapacityError::MessageTooLarge { size, limit }.into());
        }
        Ok(size)
    }

    fn on_control(&mut self, opcode: OpCode, payload: Bytes) -> Result<Step, Error> {
        Ok(Step::Event(match opcode {
            OpCode::Ping => {
                // §5.5.2: answer "unless it already received a Close frame",
                // so also while our own close awaits its reply (§5.5.1 only
                // forbids data frames after a close).
                if self.config.auto_pong && matches!(self.state, State::Open | State::CloseSent) {
                    self.out.push_pong(payload.clone(), self.masks.as_mut());
                }
                Event::Ping(payload)
            }
            OpCode::Pong => Event::Pong(payload),
            OpCode::Close => {
                let frame = CloseFrame::parse(&payload)?;
                self.on_peer_close(frame)
            }
            _ => unreachable!("not a control opcode"),
        }))
    }

    fn reassemble(&mut self, fin: bool, lend: bool) -> Result<Step, Error> {
        if !self.decoder.frame_complete() {
            return Ok(Step::NeedMore);
        }
        let n = self.decoder.unmasked_len();
        if !fin {
            self.append_part(n);
            self.rx.fragmented = true;
            return Ok(Step::Continue);
        }
        let data = if self.rx.fragmented {
            self.append_part(n);
            Bytes::from(exact(core::mem::take(&mut self.rx.parts)))
        } else if lend {
            // read in place: the payload stays where it is until the next
            // call (`consumed`)
            self.decoder.consume(n);
            self.consumed = n;
            let text = self.finish_message()? == MessageKind::Text;
            return Ok(Step::Lent(Lent {
                text,
                start: 0,
                len: n,
            }));
        } else {
            // single-frame message: large payloads leave the input buffer
            // without a copy
            self.take_payload(n)
        };
        let kind = self.finish_message()?;
        Ok(Step::Event(Event::Message(match kind {
            MessageKind::Text => Message::Text(Utf8Bytes::from_validated(data)),
            MessageKind::Binary => Message::Binary(data),
        })))
    }

    /// Take `n` unmasked payload bytes of the current frame (see
    /// `split_payload`).
    fn take_payload(&mut self, n: usize) -> Bytes {
        self.decoder.consume(n);
        self.split_payload(0, n, None)
    }

    /// Split `n` payload bytes off the input after dropping the `skip`
    /// bytes before them (a header already read), unmasking them with `key`
    /// if they are still masked: shared with the input buffer when large
    /// (zero copy), copied when small so that a retained message does not
    /// pin a large buffer (see `Config::min_zero_copy`).
    fn split_payload(&mut self, skip: usize, n: usize, key: Option<[u8; 4]>) -> Bytes {
        if self.zero_copy(n) {
            if let Some(key) = key {
                crate::mask::apply_mask(&mut self.input[skip..skip + n], key, 0);
            }
            bytes::Buf::advance(&mut self.input, skip);
            let data = self.input.split_to(n).freeze();
            // What is left still points into the allocation the message now
            // owns: detach it (cheap while it is small) so the allocation
            // lives exactly as long as the message.
            // (Not after a small message: copying up to DETACH_MAX per message
            // would cost more than it saves; a caller who shares small
            // payloads chose to.)
            if n >= SMALL_MESSAGE && self.input.len() <= DETACH_MAX {
                self.input = BytesMut::from(&self.input[..]);
            }
            data
        } else {
            let copy = self.unmasked_copy(skip, n, key);
            bytes::Buf::advance(&mut self.input, skip + n);
            self.shrink_input();
            copy
        }
    }

    /// Whether an `n`-byte payload leaves the input shared rather than
    /// copied (`Config::min_zero_copy`; an empty one is never shared).
    #[inline(always)]
    fn zero_copy(&self, n: usize) -> bool {
        n >= self.config.min_zero_copy && n > 0
    }

    /// `input[start..start + n]` copied out, unmasked with `key` if given.
    #[inline(always)]
    fn unmasked_copy(&self, start: usize, n: usize, key: Option<[u8; 4]>) -> Bytes {
        let mut copy = self.input[start..start + n].to_vec();
        // Unmask the copy rather than the input: writing the input back
        // dirties every cache line of a read full of small frames
        // (callgrind: D1 write misses 76k -> 46k per 120k frames).
        if let Some(key) = key {
            crate::mask::apply_mask(&mut copy, key, 0);
        }
        Bytes::from(copy)
    }

    /// After a large frame, move what is left into a small buffer so the
    /// large allocation is released instead of serving every later read.
    fn shrink_input(&mut self) {
        if self.input.capacity() > SHRINK_ABOVE && self.input.len() <= DETACH_MAX {
            self.input = BytesMut::from(&self.input[..]);
        }
    }

    /// Move `n` unmasked payload bytes into the reassembly buffer, growing
    /// it geometrically but never past the message limit (which `check_header`
    /// already checked).
    fn append_part(&mut self, n: usize) {
        let parts = &mut self.rx.parts;
        let need = parts.len() + n;
        if need > parts.capacity() {
            let target = (parts.capacity() * 2)
                .max(need)
                .min(self.config.limits.max_message.max(need));
            parts.reserve_exact(target - parts.len());
        }
        parts.extend_from_slice(&self.input[..n]);
        self.decoder.advance(&mut self.input, n);
        self.shrink_input();
    }

    /// End of a message: final UTF-8 check, reset receive state.
    fn finish_message(&mut self) -> Result<MessageKind, Error> {
        let kind = self.rx.kind.expect("a message is in progress");
        if kind == MessageKind::Text {
            self.rx
                .utf8
                .finish()
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        self.rx_reset();
        Ok(kind)
    }

    fn rx_reset(&mut self) {
        let rx = &mut self.rx;
        rx.kind = None;
        rx.len = 0;
        rx.fragmented = false;
        rx.parts = Vec::new();
        rx.utf8.reset();
        rx.carry.clear();
        rx.compressed = false;
        rx.tail_fed = 0;
        rx.inflated = 0;
        rx.tail_owed = false;
    }

    /// Streaming mode: hand out whatever payload has arrived.
    fn stream_data(&mut self, fin: bool) -> Result<Step, Error> {
        let kind = self.rx.kind.expect("a message is in progress");
        let avail = self.decoder.unmasked_len();
        let complete = self.decoder.frame_complete();
        let end = complete && fin;
        // Text pieces must be valid UTF-8 on their own: hold back the bytes of
        // an incomplete code point at the end (they are all in this frame's
        // unmasked bytes or in `carry`).
        let hold = match kind {
            MessageKind::Text => {
                if end {
                    self.rx
                        .utf8
                        .finish()
                        .map_err(|_| ProtocolError::InvalidUtf8)?;
                }
                self.rx.utf8.pending().min(avail)
            }
            MessageKind::Binary => 0,
        };
        let emit = avail - hold;
        if emit == 0 && !end {
            if complete {
                // the frame ended inside a code point: carry it over
                self.rx.carry.extend_from_slice(&self.input[..avail]);
                self.decoder.advance(&mut self.input, avail);
                return Ok(Step::Continue);
            }
            return Ok(Step::NeedMore);
        }
        let data = if self.rx.carry.is_empty() {
            self.take_payload(emit)
        } else {
            // a code point straddled frames: join it to what follows (rare)
            let mut joined = core::mem::take(&mut self.rx.carry);
            joined.extend_from_slice(&self.input[..emit]);
            self.decoder.advance(&mut self.input, emit);
            Bytes::from(joined)
        };
        if complete && hold > 0 {
            self.rx.carry.extend_from_slice(&self.input[..hold]);
            self.decoder.advance(&mut self.input, hold);
        }
        if end {
            self.rx_reset();
        }
        Ok(Step::Event(Event::Fragment {
            kind,
            data,
            fin: end,
        }))
    }

    /// A compressed message (RFC 7692): inflate the payload that has
    /// arrived, bounded by the message limit, validate text on the inflated
    /// bytes (still fail-fast), and deliver as the mode says.
    #[cfg(feature = "deflate")]
    fn inflate_step(&mut self, fin: bool) -> Result<Step, Error> {
        use crate::extension::deflate::INFLATE_CHUNK;
        let max = self.config.limits.max_message;
        let kind = self.rx.kind.expect("a message is in progress");
        let avail = self.decoder.unmasked_len();
        // The final frame may be fully consumed while the tail is still owed
        // (the output filled up first): then there is no frame any more.
        let complete = self.rx.tail_owed || self.decoder.frame_complete();
        let fin = fin || self.rx.tail_owed;
        let bad = |_| Error::from(ProtocolError::InvalidCompressedData);
        let st = self
            .deflate
            .as_mut()
            .expect("RSV1 passes only when deflate is on");
        // Reassembling: inflate straight into the message buffer, allowing one
        // byte past the limit to notice a bomb. Streaming: at most a chunk
        // per event.
        let mut fresh = Vec::new();
        let (out, max_len, produced_before) = if self.config.streaming {
            let room = (max + 1)
                .saturating_sub(self.rx.inflated)
                .min(INFLATE_CHUNK);
            (&mut fresh, room, self.rx.inflated)
        } else {
            let before = self.rx.parts.len();
            (&mut self.rx.parts, max + 1, before)
        };
        let start = out.len();
        let (n, full) = st
            .inflate(&self.input[..avail], out, max_len)
            .map_err(bad)?;
        let mut done = false;
        if n == avail && complete && fin {
            // every payload byte is in; what remains is the tail (§7.2.2)
            self.rx.tail_owed = true;
            if !full {
                done = st
                    .inflate_tail(&mut self.rx.tail_fed, out, max_len)
                    .map_err(bad)?;
            }
        }
        let produced = out.len() - start;
        if self.decoder.current().is_some() {
            // (resuming an owed tail, the frame is already gone)
            self.decoder.advance(&mut self.input, n);
        }
        let total = if self.config.streaming {
            self.rx.inflated += produced;
            self.rx.inflated
        } else {
            produced_before + produced
        };
        if total > max {
            // §7.2.2 / RFC 6455 §7.4.1: 1009, after producing at most the limit
            return Err(CapacityError::MessageTooLarge {
                size: total as u64,
                limit: max,
            }
            .into());
        }
        if kind == MessageKind::Text {
            let new = if self.config.streaming {
                &fresh[..]
            } else {
                &self.rx.parts[start..]
            };
            self.rx
                .utf8
                .feed(new)
                .map_err(|_| ProtocolError::InvalidUtf8)?;
        }
        if done {
            self.deflate.as_mut().expect("checked above").end_inflate();
        }
        if self.config.streaming {
            return self.emit_inflated(kind, fresh, done);
        }
        if done {
            let data = Bytes::from(exact(core::mem::take(&mut self.rx.parts)));
            let kind = self.finish_message()?;
            return Ok(Step::Event(Event::Message(match kind {
                MessageKind::Text => Message::Text(Utf8Bytes::from_validated(data)),
                MessageKind::Binary => Message::Binary(data),
            })));
        }
        if n == avail && complete {
            // this frame is consumed; the message continues in the next
            return Ok(Step::Continue);
        }
        if n == 0 && produced == 0 {
            return Ok(Step::NeedMore);
        }
        Ok(Step::Continue)
    }

    /// Streaming a compressed message: hand out what was inflated, holding
    /// back an incomplete code point at the end of text.
    #[cfg(feature = "deflate")]
    fn emit_inflated(
        &mut self,
        kind: MessageKind,
        data: Vec<u8>,
        done: bool,
    ) -> Result<Step, Error> {
        let mut data = if self.rx.carry.is_empty() {
            data
        } else {
            let mut joined = core::mem::take(&mut self.rx.carry);
            joined.extend_from_slice(&data);
            joined
        };
        if kind == MessageKind::Text {
            if done {
                self.rx
                    .utf8
                    .finish()
                    .map_err(|_| ProtocolError::InvalidUtf8)?;
            }
            let hold = self.rx.utf8.pending().min(data.len());
            self.rx.carry = data.split_off(data.len() - hold);
        }
        if data.is_empty() && !done {
            // nothing to hand out yet: more input, or the next frame
            return Ok(if self.decoder.current().is_none() {
                Step::Continue
            } else {
                Step::NeedMore
            });
        }
        if done {
            self.rx_reset();
        }
        Ok(Step::Event(Event::Fragment {
            kind,
            data: Bytes::from(exact(data)),
            fin: done,
        }))
    }

    // -------------------------------------------------------------- commands

    fn check_open<T>(&self, value: T) -> Result<T, SendError<T>> {
        if self.state != State::Open {
            return Err(SendError {
                error: ApiMisuse::NotOpen.into(),
                value,
            });
        }
        Ok(value)
    }

    fn check_room<T>(&self, payload_len: usize, value: T) -> Result<T, SendError<T>> {
        let queued = self.out.pending_bytes();
        let limit = self.config.limits.max_outbound;
        if queued > 0 && queued + self.out.frame_len(payload_len) > limit {
            return Err(SendError {
                error: CapacityError::OutboundQueueFull { queued, limit }.into(),
                value,
            });
        }
        Ok(value)
    }

    /// Queue a whole message as one frame (compressed when permessage-deflate
    /// was negotiated and the message reaches the threshold).
    ///
    /// Refused (value returned) when the connection is not open, a fragmented
    /// message is in progress, or the output queue is full
    /// ([`SendError::is_queue_full`]: flush and retry).
    pub fn send(&mut self, message: Message) -> Result<(), SendError<Message>> {
        self.send_message(message, true)
    }

    /// Like [`send`](Self::send), but never compressed: for payloads that
    /// are already compressed (images, archives) or that mix secrets with
    /// attacker-controlled text (compression leaks their length: CRIME,
    /// BREACH).
    pub fn send_uncompressed(&mut self, message: Message) -> Result<(), SendError<Message>> {
        self.send_message(message, false)
    }

    /// Whether a whole message of `kind` and `len` bytes may be queued now
    /// (open, no fragmented message in progress, room in the queue), and
    /// its opcode; refused with `value` given back.
    fn admit_whole<T>(
        &self,
        kind: MessageKind,
        len: usize,
        value: T,
    ) -> Result<(T, OpCode), SendError<T>> {
        let value = self.check_open(value)?;
        if self.sending.is_some() {
            return Err(SendError {
                error: ApiMisuse::MessageInProgress.into(),
                value,
            });
        }
        let value = self.check_room(len, value)?;
        Ok((value, data_opcode(kind)))
    }

    fn send_message(&mut self, message: Message, compress: bool) -> Result<(), SendError<Message>> {
        let (message, opcode) = self.admit_whole(message.kind(), message.len(), message)?;
        if compress && self.queue_compressed(opcode, message.as_bytes()) {
            return Ok(());
        }
        self.out
            .push_frame(opcode, true, message.into_bytes(), self.masks.as_mut());
        Ok(())
    }

    /// Queue a whole message compressed, as one frame, when
    /// permessage-deflate was negotiated and it reaches the threshold;
    /// `false` when it must go out as it is.
    fn queue_compressed(&mut self, opcode: OpCode, payload: &[u8]) -> bool {
        #[cfg(feature = "deflate")]
        if let Some(st) = self.deflate.as_mut() {
            if st.should_compress(payload.len()) {
                let payload = Bytes::from(st.compress(payload, true));
                self.out
                    .push_frame_rsv(opcode, true, true, payload, self.masks.as_mut());
                return true;
            }
        }
        let _ = (opcode, payload);
        false
    }

    /// Queue a whole message from borrowed bytes, like [`send`](Self::send)
    /// (compressed the same way when permessage-deflate was negotiated).
    ///
    /// The frame is built in a buffer the connection keeps and takes back
    /// once the chunk handed out by [`poll_transmit`](Self::poll_transmit)
    /// is dropped, so sending from a buffer the application reuses (or
    /// from a `&'static str`) costs no allocation, and no reference count
    /// on the payload: one pass that copies it (and masks it, for a
    /// client). Frames over 64 KiB get a buffer of their own; the one kept
    /// is as large as the largest frame under that, so an idle connection
    /// holds at most 64 KiB for it. A server
    /// sending a large payload it already holds as [`Bytes`] should use
    /// [`send`](Self::send), which hands it out without copying.
    ///
    /// ```
    /// use wsproto::{Config, Connection, MessageRef, Role};
    /// let mut conn = Connection::server(Config::default());
    /// let mut line = String::new();
    /// for n in 0..3 {
    ///     line.clear();
    ///     line.push_str(&format!("tick {n}"));
    ///     conn.send_ref(MessageRef::Text(&line)).unwrap();
    /// }
    /// let wire: Vec<u8> = std::iter::from_fn(|| conn.poll_transmit()).flatten().collect();
    /// assert_eq!(&wire[..8], [0x81, 6, b't', b'i', b'c', b'k', b' ', b'0']);
    /// ```
    pub fn send_ref<'a>(
        &mut self,
        message: MessageRef<'a>,
    ) -> Result<(), SendError<MessageRef<'a>>> {
        let (message, opcode) = self.admit_whole(message.kind(), message.len(), message)?;
        if self.queue_compressed(opcode, message.as_bytes()) {
            return Ok(());
        }
        self.out
            .push_frame_slice(opcode, message.as_bytes(), self.masks.as_mut());
        Ok(())
    }

    /// Queue one fragment of a message (§5.4). The first call starts a message
    /// of `kind`; later calls must pass the same `kind`; `fin` ends it. Text
    /// fragments may split code points, but their concatenation must be
    /// UTF-8 (checked incrementally: an invalid fragment is refused).
    ///
    /// ```
    /// use wsproto::{Config, Connection, MessageKind, Role};
    /// let mut conn = Connection::new(Role::Server, Config::default());
    /// conn.send_fragment(MessageKind::Text, "Hel".into(), false).unwrap();
    /// conn.send_fragment(MessageKind::Text, "lo".into(), true).unwrap();
    /// let wire: Vec<u8> = std::iter::from_fn(|| conn.poll_transmit()).flatten().collect();
    /// assert_eq!(wire, [0x01, 0x03, b'H', b'e', b'l', 0x80, 0x02, b'l', b'o']); // RFC 6455 §5.7
    /// ```
    pub fn send_fragment(
        &mut self,
        kind: MessageKind,
        data: Bytes,
        fin: bool,
    ) -> Result<(), SendError<Bytes>> {
        let data = self.check_open(data)?;
        let opcode = match self.sending {
            None => data_opcode(kind),
            Some(k) if k == kind => OpCode::Continuation,
            Some(_) => {
                return Err(SendError {
                    error: ApiMisuse::FragmentKindMismatch.into(),
                    value: data,
                })
            }
        };
        let data = self.check_room(data.len(), data)?;
        if kind == MessageKind::Text {
            let mut v = if self.sending.is_none() {
                Utf8Validator::new()
            } else {
                self.send_utf8.clone()
            };
            let ok = v.feed(&data).is_ok() && (!fin || v.finish().is_ok());
            if !ok {
                return Err(SendError {
                    error: ApiMisuse::InvalidUtf8.into(),
                    value: data,
                });
            }
            self.send_utf8 = v;
        }
        let first = self.sending.is_none();
        #[cfg(feature = "deflate")]
        {
            if first {
                // the first fragment decides for the whole message (RSV1 on
                // the first frame only, RFC 7692 §6.1)
                self.sending_compressed = self.deflate.as_ref().is_some_and(|st| st.compresses());
            }
            if self.sending_compressed {
                let st = self.deflate.as_mut().expect("compressing implies deflate");
                let payload = Bytes::from(st.compress(&data, fin));
                self.out
                    .push_frame_rsv(opcode, fin, first, payload, self.masks.as_mut());
                self.sending = if fin { None } else { Some(kind) };
                return Ok(());
            }
        }
        let _ = first;
        self.out.push_frame(opcode, fin, data, self.masks.as_mut());
        self.sending = if fin { None } else { Some(kind) };
        Ok(())
    }

    /// Queue a ping (payload at most 125 bytes). It may go out between the
    /// fragments of a message being sent.
    pub fn ping(&mut self, payload: Bytes) -> Result<(), SendError<Bytes>> {
        let payload = self.check_control(payload)?;
        self.out
            .push_frame(OpCode::Ping, true, payload, self.masks.as_mut());
        Ok(())
    }

    /// Queue a pong (payload at most 125 bytes): the answer to a ping when
    /// [`Config::auto_pong`] is off, or an unsolicited heartbeat (§5.5.3).
    /// Pongs jump the data queue; of many pongs not yet sent, only the
    /// latest 16 are kept.
    pub fn pong(&mut self, payload: Bytes) -> Result<(), SendError<Bytes>> {
        // allowed while closing, as the automatic pong is (§5.5.2)
        if matches!(self.state, State::Closed(_)) {
            return Err(SendError {
                error: ApiMisuse::NotOpen.into(),
                value: payload,
            });
        }
        if payload.len() > 125 {
            return Err(SendError {
                error: ApiMisuse::ControlPayloadTooLong.into(),
                value: payload,
            });
        }
        self.out.push_pong(payload, self.masks.as_mut());
        Ok(())
    }

    fn check_control(&self, payload: Bytes) -> Result<Bytes, SendError<Bytes>> {
        let payload = self.check_open(payload)?;
        if payload.len() > 125 {
            return Err(SendError {
                error: ApiMisuse::ControlPayloadTooLong.into(),
                value: payload,
            });
        }
        Ok(payload)
    }

    /// Start the close handshake (§7.1.2): queue a close frame after any data
    /// already queued. `None` sends a close frame without a status code.
    /// Incoming messages are still delivered until the peer's close frame
    /// arrives ([`Event::Closed`]), or [`Config::close_timeout`] passes.
    pub fn close(
        &mut self,
        frame: Option<CloseFrame>,
    ) -> Result<(), SendError<Option<CloseFrame>>> {
        let frame = self.check_open(frame)?;
        if let Some(f) = &frame {
            if let Err(e) = f.validate() {
                return Err(SendError {
                    error: e.into(),
                    value: frame,
                });
            }
        }
        self.on_local_close(frame.as_ref());
        Ok(())
    }

    // ---------------------------------------------------------------- output

    /// The next chunk of bytes to write, in wire order, handed over for
    /// good; `None` when nothing is queued. Write each chunk completely
    /// before asking for the next, keeping the unwritten rest of a partial
    /// write yourself — the connection counts the chunk as sent. Drivers that
    /// can write in place should prefer [`peek_transmit`](Self::peek_transmit)
    /// or [`transmit_slices`](Self::transmit_slices) with
    /// [`advance_transmit`](Self::advance_transmit): then
    /// [`pending_output`](Self::pending_output),
    /// [`should_close_transport`](Self::should_close_transport) and the
    /// [`Limits::max_outbound`](crate::Limits::max_outbound) check count
    /// exactly what has not reached the transport.
    ///
    /// Call it after every event (or at least before handling many): pongs
    /// queue up (the latest 16 are kept), and echoes queued before a later
    /// protocol error still go out ahead of the close frame.
    pub fn poll_transmit(&mut self) -> Option<Bytes> {
        let chunk = self.out.poll_transmit();
        self.note_ping_out();
        chunk
    }

    /// The next bytes to write, left queued until
    /// [`advance_transmit`](Self::advance_transmit) says how many were
    /// written; `None` when nothing is queued.
    ///
    /// ```
    /// use wsproto::{Config, Connection, Message, Role};
    /// let mut conn = Connection::new(Role::Server, Config::default());
    /// conn.send(Message::text("hi")).unwrap();
    /// let written = conn.peek_transmit().map(|b| b.len().min(3)).unwrap(); // a short write
    /// conn.advance_transmit(written);
    /// assert_eq!(conn.peek_transmit(), Some(&b"i"[..]));
    /// conn.advance_transmit(1);
    /// assert!(!conn.wants_write());
    /// ```
    pub fn peek_transmit(&mut self) -> Option<&[u8]> {
        self.out.peek()
    }

    /// Fill `dst` with the next chunks to write, for one vectored write;
    /// returns how many slots were filled. Nothing is removed until
    /// [`advance_transmit`](Self::advance_transmit).
    #[cfg(feature = "std")]
    pub fn transmit_slices<'a>(&'a mut self, dst: &mut [std::io::IoSlice<'a>]) -> usize {
        self.out.fill_slices(dst)
    }

    /// `n` bytes of what [`peek_transmit`](Self::peek_transmit) or
    /// [`transmit_slices`](Self::transmit_slices) showed were written.
    ///
    /// # Panics
    /// If `n` is more than [`pending_output`](Self::pending_output).
    pub fn advance_transmit(&mut self, n: usize) {
        self.out.advance(n);
        self.note_ping_out();
    }

    fn note_ping_out(&mut self) {
        if self.out.take_ping_went_out() {
            self.timers.ping_went_out();
        }
    }

    /// Bytes queued for sending (not counting chunks already handed out by
    /// [`poll_transmit`](Self::poll_transmit)).
    pub fn pending_output(&self) -> usize {
        self.out.pending_bytes()
    }

    /// Whether anything is queued for sending.
    pub fn wants_write(&self) -> bool {
        !self.out.is_empty()
    }

    /// Whether the transport should now be closed: after a clean close
    /// handshake once our frames are flushed (the server closes first,
    /// §7.1.1; a client waits for the server's EOF up to
    /// [`Config::close_timeout`]), right after an abnormal end or a timeout,
    /// and after a failure once the close frame is flushed.
    ///
    /// Closing gracefully (shut down the write side, then read until EOF or a
    /// short timeout) avoids a TCP reset destroying a close frame the peer has
    /// not read yet.
    pub fn should_close_transport(&self) -> bool {
        self.transport_done()
    }

    // ------------------------------------------------------------------ time

    /// Run the timers up to `now`: may queue a keepalive ping or end the
    /// connection ([`Event::Closed`] with [`CloseReason::TimedOut`]). Poll
    /// events and output afterwards.
    pub fn handle_timeout(&mut self, now: Instant) {
        self.notice_input();
        self.timers.sync(now);
        if self.state == State::Open {
            if self.timers.pong_deadline.is_some_and(|d| d <= now) {
                self.on_timeout(Timeout::Keepalive);
            } else if self.timers.pong_deadline.is_none()
                && !self.timers.ping_queued
                && self.timers.next_ping.is_some_and(|d| d <= now)
            {
                self.ping_counter = self.ping_counter.wrapping_add(1);
                let payload = Bytes::copy_from_slice(&self.ping_counter.to_be_bytes());
                self.out.set_keepalive_ping(payload, self.masks.as_mut());
                self.timers.ping_queued();
            }
        }
        if !self.timers.close_expired && self.timers.close_deadline.is_some_and(|d| d <= now) {
            self.timers.close_expired = true;
            self.on_timeout(Timeout::CloseHandshake);
        }
    }

    /// Whether any timer is running or about to start (keepalive is
    /// configured, or a close handshake is under way). When `false`,
    /// [`poll_timeout`](Self::poll_timeout) returns `None` whatever the
    /// time, so a driver may skip reading the clock.
    ///
    /// ```
    /// use std::time::Duration;
    /// use wsproto::{CloseCode, CloseFrame, Config, Connection, Role};
    /// let mut conn = Connection::new(Role::Server, Config::default());
    /// assert!(!conn.has_timers()); // no keepalive by default
    /// conn.close(Some(CloseFrame::new(CloseCode::NORMAL, "bye"))).unwrap();
    /// assert!(conn.has_timers()); // the close handshake has a deadline
    ///
    /// let mut config = Config::default();
    /// config.keepalive_interval = Some(Duration::from_secs(30));
    /// assert!(Connection::new(Role::Server, config).has_timers());
    /// ```
    pub fn has_timers(&self) -> bool {
        self.timers.running()
    }

    /// The next deadline, given the current time: call
    /// [`handle_timeout`](Self::handle_timeout) when it passes. `None` means
    /// no timer is running.
    pub fn poll_timeout(&mut self, now: Instant) -> Option<Instant> {
        self.notice_input();
        self.timers.sync(now);
        self.timers.next_deadline()
    }

    // ------------------------------------------------------------ extensions

    /// Use permessage-deflate with the parameters the handshake agreed on.
    /// The handshake helpers do this for you; call it yourself only after a
    /// handshake done by another HTTP stack (see
    /// [`DeflateConfig::accept_offer`](crate::extension::deflate::DeflateConfig::accept_offer)),
    /// before any data flows.
    #[cfg(feature = "deflate")]
    pub fn enable_deflate(&mut self, params: crate::extension::deflate::DeflateParams) {
        // RFC 7692 §6: the extension claims RSV1
        self.decoder.set_allowed_rsv(0b100);
        self.deflate = Some(alloc::boxed::Box::new(
            crate::extension::deflate::DeflateState::new(params, self.role),
        ));
    }

    /// The negotiated permessage-deflate parameters, if any.
    #[cfg(feature = "deflate")]
    pub fn deflate_params(&self) -> Option<&crate::extension::deflate::DeflateParams> {
        self.deflate.as_ref().map(|st| st.params())
    }

    // --------------------------------------------------------------- getters

    /// Our role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The configuration.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Where the connection is in its life.
    pub fn state(&self) -> ConnectionState {
        match self.state {
            State::Open => ConnectionState::Open,
            State::CloseSent => ConnectionState::Closing,
            State::Closed(_) => ConnectionState::Closed,
        }
    }

    /// Whether messages can still be sent.
    pub fn is_open(&self) -> bool {
        self.state == State::Open
    }

    /// The error that failed the connection, if any.
    pub fn error(&self) -> Option<&Error> {
        self.error.as_ref()
    }

    /// Bytes received but not yet consumed (at most one frame's worth plus
    /// whatever was handed over since the last [`poll_event`](Self::poll_event)).
    pub fn buffered_input(&self) -> usize {
        self.input.len() - self.consumed
    }

    /// How many more input bytes the frame being read still needs beyond
    /// what is buffered (0 between frames): a hint for sizing the next read,
    /// so a large frame arrives in one read instead of many small ones.
    ///
    /// ```
    /// use wsproto::{Config, Connection};
    /// let mut server = Connection::server(Config::default());
    /// // a masked binary frame declaring 70,000 bytes, of which 4 arrived
    /// server.receive(&[0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0x11, 0x70, 1, 2, 3, 4, 9, 9, 9, 9]);
    /// assert_eq!(server.poll_event(), Ok(None));
    /// assert_eq!(server.wanted_input(), 70_000 - 4);
    /// ```
    pub fn wanted_input(&self) -> usize {
        let owed = self.decoder.remaining();
        let have = self.buffered_input() as u64;
        usize::try_from(owed.saturating_sub(have)).unwrap_or(usize::MAX)
    }

    /// Bytes held for a fragmented message being reassembled.
    pub fn buffered_message(&self) -> usize {
        self.rx.parts.len() + self.rx.carry.len()
    }

    /// Whether the connection ended with a completed close handshake.
    pub fn closed_cleanly(&self) -> bool {
        self.state == State::Closed(End::Clean)
    }
}

/// The opcode that starts a data message of `kind`.
fn data_opcode(kind: MessageKind) -> OpCode {
    match kind {
        MessageKind::Text => OpCode::Text,
        MessageKind::Binary => OpCode::Binary,
    }
}

#[cfg(test)]
mod tests;
