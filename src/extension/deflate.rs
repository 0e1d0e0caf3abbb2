//! permessage-deflate (RFC 7692), feature `deflate`.
//!
//! * Negotiation: [`DeflateConfig`] says what an endpoint offers (client) or
//!   accepts (server) and how it compresses; the handshake turns it into
//!   [`DeflateParams`], the values both sides agreed on.
//! * Compression is per message and optional: messages smaller than
//!   [`DeflateConfig::threshold`] and messages sent with
//!   [`Connection::send_uncompressed`](crate::Connection::send_uncompressed)
//!   go out plain (RSV1 clear), which RFC 7692 allows at any time.
//! * Decompression is streaming and bounded: the message limit applies to the
//!   decompressed size while inflating, so a small message that inflates to
//!   gigabytes fails with 1009 after producing at most the limit.
//!
//! Window sizes: zlib (and so flate2's zlib-rs backend) cannot compress with
//! an 8-bit (256-byte) window. When a peer limits our compression window to
//! 8 bits we accept, and send our messages uncompressed: that is always
//! valid, and a peer asking for 256-byte windows is asking for almost no
//! compression anyway. Inflating an 8-bit stream with a 9-bit window is
//! exact (a larger window decodes any smaller one).

use alloc::format;
use alloc::string::String;
use alloc::vec::Vec;

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use crate::error::HandshakeError;
use crate::handshake::ExtensionOffer;
use crate::Role;

/// The extension token.
pub const NAME: &str = "permessage-deflate";

const SERVER_NO_CONTEXT_TAKEOVER: &str = "server_no_context_takeover";
const CLIENT_NO_CONTEXT_TAKEOVER: &str = "client_no_context_takeover";
const SERVER_MAX_WINDOW_BITS: &str = "server_max_window_bits";
const CLIENT_MAX_WINDOW_BITS: &str = "client_max_window_bits";

/// The tail a sender strips from every compressed message and a receiver
/// appends before inflating (RFC 7692 §7.2.1, §7.2.2).
const TAIL: [u8; 4] = [0x00, 0x00, 0xFF, 0xFF];

/// How an endpoint negotiates and uses permessage-deflate.
///
/// As a **client** it is the offer: the parameters below are requested from
/// the server. As a **server** it is the policy for accepting offers: the
/// server's own window and context takeover, and the most it lets a client
/// use.
///
/// ```
/// use wsproto::extension::deflate::DeflateConfig;
/// let mut cfg = DeflateConfig::default();
/// cfg.client_no_context_takeover = true; // save memory: no state kept between messages
/// assert_eq!(cfg.offer(), "permessage-deflate; client_no_context_takeover; client_max_window_bits");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeflateConfig {
    /// The server does not keep its compression state between messages.
    /// A client requests it; a server applies it to itself (and always
    /// honours a client's request). Default `false`.
    pub server_no_context_takeover: bool,
    /// The client does not keep its compression state between messages.
    /// A client declares it; a server requires it of the client. Default
    /// `false`.
    pub client_no_context_takeover: bool,
    /// The largest LZ77 window (8–15 bits) the server compresses with: a
    /// client requests it, a server uses at most it. Default 15.
    pub server_max_window_bits: u8,
    /// The largest window (8–15 bits) the client compresses with: a client
    /// announces it, a server limits the client to it (when the client
    /// offered the parameter). Default 15.
    pub client_max_window_bits: u8,
    /// zlib compression level, 0–9. Default 6 (zlib's default). On chat-like
    /// JSON, level 1 measured 4.7× faster for 21% more bytes
    /// (docs/deflate.md).
    pub level: u32,
    /// Messages shorter than this are sent uncompressed: tiny payloads grow
    /// when compressed and cost a compressor call. Default 64 bytes.
    pub threshold: usize,
}

impl Default for DeflateConfig {
    fn default() -> Self {
        DeflateConfig {
            server_no_context_takeover: false,
            client_no_context_takeover: false,
            server_max_window_bits: 15,
            client_max_window_bits: 15,
            level: 6,
            threshold: 64,
        }
    }
}

/// A `permessage-deflate` element (an offer or a response) with these
/// parameters; for `client_bits`, `Some(None)` is the parameter without a
/// value.
fn element(
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_bits: Option<u8>,
    client_bits: Option<Option<u8>>,
) -> String {
    let mut s = String::from(NAME);
    if server_no_context_takeover {
        s.push_str("; ");
        s.push_str(SERVER_NO_CONTEXT_TAKEOVER);
    }
    if client_no_context_takeover {
        s.push_str("; ");
        s.push_str(CLIENT_NO_CONTEXT_TAKEOVER);
    }
    if let Some(b) = server_bits {
        s.push_str(&format!("; {SERVER_MAX_WINDOW_BITS}={b}"));
    }
    match client_bits {
        Some(Some(b)) => s.push_str(&format!("; {CLIENT_MAX_WINDOW_BITS}={b}")),
        Some(None) => {
            s.push_str("; ");
            s.push_str(CLIENT_MAX_WINDOW_BITS);
        }
        None => {}
    }
    s
}

impl DeflateConfig {
    /// The `Sec-WebSocket-Extensions` element a client offers (§7.1):
    /// `client_max_window_bits` is always offered (without a value when 15)
    /// so the server may lower it.
    pub fn offer(&self) -> String {
        let bits = |b: u8| (b < 15).then(|| clamp_bits(b));
        element(
            self.server_no_context_takeover,
            self.client_no_context_takeover,
            bits(self.server_max_window_bits),
            Some(bits(self.client_max_window_bits)),
        )
    }

    /// Server side: answer the first acceptable `permessage-deflate` offer
    /// among `offers` (in the client's preference order, §5.1). Offers with
    /// unknown, duplicate or invalid parameters are declined (§7.1); `None`
    /// if every offer is declined (the connection then runs uncompressed).
    pub fn accept_offer(&self, offers: &[ExtensionOffer]) -> Option<DeflateParams> {
        offers
            .iter()
            .filter(|o| o.name.eq_ignore_ascii_case(NAME))
            .find_map(|o| self.accept_one(o))
    }

    fn accept_one(&self, offer: &ExtensionOffer) -> Option<DeflateParams> {
        let p = OfferParams::parse(offer).ok()?;
        // §7.1.2.1: the server window is at most what the client asked for.
        let server_bits =
            clamp_bits(self.server_max_window_bits).min(p.server_max_window_bits.unwrap_or(15));
        // §7.1.2.2: the client window can only be limited if the client
        // offered the parameter (with or without a value).
        let client_bits = match p.client_max_window_bits {
            None => 15,
            Some(offered) => clamp_bits(self.client_max_window_bits).min(offered.unwrap_or(15)),
        };
        Some(DeflateParams {
            // §7.1.1.1: a server MUST honour server_no_context_takeover.
            server_no_context_takeover: p.server_no_context_takeover
                || self.server_no_context_takeover,
            client_no_context_takeover: p.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
            // the response echoes a window parameter when it was offered or
            // when the server limits its own window
            announce_server_bits: p.server_max_window_bits.is_some() || server_bits < 15,
            announce_client_bits: p.client_max_window_bits.is_some() && client_bits < 15,
            level: self.level.min(9),
            threshold: self.threshold,
        })
    }

    /// Client side: check the server's response element against this offer
    /// (§7.1). A response that does not fit the offer fails the handshake.
    pub fn accept_response(
        &self,
        response: &ExtensionOffer,
    ) -> Result<DeflateParams, HandshakeError> {
        let bad = HandshakeError::InvalidHeader("Sec-WebSocket-Extensions");
        let p = OfferParams::parse(response).map_err(|_| bad.clone())?;
        // §7.1.1.1: if we asked for server_no_context_takeover, a response
        // accepting this offer carries it.
        if self.server_no_context_takeover && !p.server_no_context_takeover {
            return Err(bad);
        }
        // §7.1.2.1: a server accepts an offer with server_max_window_bits
        // by including it, with the same or a smaller value (and may limit
        // its window on its own when we did not ask).
        let offered_server_bits = clamp_bits(self.server_max_window_bits);
        let server_bits = match p.server_max_window_bits {
            None if offered_server_bits < 15 => return Err(bad),
            None => 15,
            Some(b) if b > offered_server_bits => return Err(bad),
            Some(b) => b,
        };
        // §7.1.2.2: client_max_window_bits only if we offered it (we always
        // do), with a value no larger than ours.
        let client_bits = match p.client_max_window_bits {
            None => clamp_bits(self.client_max_window_bits),
            Some(None) => return Err(bad), // the response must carry a value
            Some(Some(b)) if b > clamp_bits(self.client_max_window_bits) => return Err(bad),
            Some(Some(b)) => b,
        };
        Ok(DeflateParams {
            server_no_context_takeover: p.server_no_context_takeover,
            client_no_context_takeover: p.client_no_context_takeover
                || self.client_no_context_takeover,
            server_max_window_bits: server_bits,
            client_max_window_bits: client_bits,
            announce_server_bits: p.server_max_window_bits.is_some(),
            announce_client_bits: p.client_max_window_bits.is_some(),
            level: self.level.min(9),
            threshold: self.threshold,
        })
    }
}

fn clamp_bits(b: u8) -> u8 {
    b.clamp(8, 15)
}

/// What both sides agreed on, plus how this endpoint compresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeflateParams {
    /// The server resets its compression state after each message.
    pub server_no_context_takeover: bool,
    /// The client resets its compression state after each message.
    pub client_no_context_takeover: bool,
    /// The server's LZ77 window, in bits.
    pub server_max_window_bits: u8,
    /// The client's LZ77 window, in bits.
    pub client_max_window_bits: u8,
    announce_server_bits: bool,
    announce_client_bits: bool,
    /// Our compression level.
    pub level: u32,
    /// Our compression threshold.
    pub threshold: usize,
}

impl DeflateParams {
    /// The `Sec-WebSocket-Extensions` value a server answers with.
    ///
    /// ```
    /// use wsproto::extension::deflate::DeflateConfig;
    /// use wsproto::handshake::parse_extensions;
    /// let offers = parse_extensions("permessage-deflate; server_max_window_bits=10; client_max_window_bits").unwrap();
    /// let params = DeflateConfig::default().accept_offer(&offers).unwrap();
    /// assert_eq!(params.response(), "permessage-deflate; server_max_window_bits=10");
    /// ```
    pub fn response(&self) -> String {
        element(
            self.server_no_context_takeover,
            self.client_no_context_takeover,
            self.announce_server_bits
                .then_some(self.server_max_window_bits),
            self.announce_client_bits
                .then_some(Some(self.client_max_window_bits)),
        )
    }

    /// (our window bits, our no-context-takeover, the peer's window bits,
    /// the peer's no-context-takeover) for an endpoint playing `role`.
    fn sides(&self, role: Role) -> (u8, bool, u8, bool) {
        match role {
            Role::Server => (
                self.server_max_window_bits,
                self.server_no_context_takeover,
                self.client_max_window_bits,
                self.client_no_context_takeover,
            ),
            Role::Client => (
                self.client_max_window_bits,
                self.client_no_context_takeover,
                self.server_max_window_bits,
                self.server_no_context_takeover,
            ),
        }
    }
}

/// The parameters of one element, validated (§7.1: each at most once,
/// values as the grammar says).
#[derive(Default)]
struct OfferParams {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    server_max_window_bits: Option<u8>,
    /// `Some(None)`: present without a value.
    client_max_window_bits: Option<Option<u8>>,
}

impl OfferParams {
    fn parse(e: &ExtensionOffer) -> Result<Self, ()> {
        let mut p = OfferParams::default();
        let mut seen: Vec<&str> = Vec::new();
        for (k, v) in &e.params {
            let k = k.as_str();
            if seen.iter().any(|s| s.eq_ignore_ascii_case(k)) {
                return Err(()); // §7.1: a parameter appears at most once
            }
            seen.push(k);
            if k.eq_ignore_ascii_case(SERVER_NO_CONTEXT_TAKEOVER) && v.is_none() {
                p.server_no_context_takeover = true;
            } else if k.eq_ignore_ascii_case(CLIENT_NO_CONTEXT_TAKEOVER) && v.is_none() {
                p.client_no_context_takeover = true;
            } else if k.eq_ignore_ascii_case(SERVER_MAX_WINDOW_BITS) {
                p.server_max_window_bits = Some(window_bits(v.as_deref().ok_or(())?)?);
            } else if k.eq_ignore_ascii_case(CLIENT_MAX_WINDOW_BITS) {
                p.client_max_window_bits = Some(match v {
                    None => None,
                    Some(v) => Some(window_bits(v)?),
                });
            } else {
                return Err(()); // unknown parameter, or a value where none belongs
            }
        }
        Ok(p)
    }
}

/// §7.1.2.1: "a decimal integer value without leading zeroes between 8 to
/// 15, inclusive".
fn window_bits(v: &str) -> Result<u8, ()> {
    match v.as_bytes() {
        [d @ b'8'..=b'9'] => Ok(d - b'0'),
        [b'1', d @ b'0'..=b'5'] => Ok(10 + d - b'0'),
        _ => Err(()),
    }
}

// ------------------------------------------------------------ codec state

/// Per-connection compression state.
pub(crate) struct DeflateState {
    params: DeflateParams,
    /// Our compression window; 8 means "do not compress" (zlib cannot).
    our_bits: u8,
    our_no_takeover: bool,
    peer_bits: u8,
    peer_no_takeover: bool,
    compressor: Option<Compress>,
    decompressor: Option<Decompress>,
}

impl core::fmt::Debug for DeflateState {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("DeflateState")
            .field("params", &self.params)
            .field("compressor", &self.compressor.is_some())
            .field("decompressor", &self.decompressor.is_some())
            .finish()
    }
}

/// Invalid compressed data from the peer.
#[derive(Debug)]
pub(crate) struct InflateError;

impl DeflateState {
    pub(crate) fn new(params: DeflateParams, role: Role) -> Self {
        let (our_bits, our_no_takeover, peer_bits, peer_no_takeover) = params.sides(role);
        DeflateState {
            params,
            our_bits,
            our_no_takeover,
            peer_bits,
            peer_no_takeover,
            compressor: None,
            decompressor: None,
        }
    }

    pub(crate) fn params(&self) -> &DeflateParams {
        &self.params
    }

    /// Whether a message of `len` bytes should be compressed.
    pub(crate) fn should_compress(&self, len: usize) -> bool {
        self.compresses() && len >= self.params.threshold
    }

    /// Whether we compress at all (fragmented sends decide up front).
    pub(crate) fn compresses(&self) -> bool {
        self.our_bits >= 9
    }

    /// Compress one piece of a message; `fin` ends the message (§7.2.1:
    /// flush, then drop the trailing empty stored block).
    pub(crate) fn compress(&mut self, data: &[u8], fin: bool) -> Vec<u8> {
        let (bits, level) = (self.our_bits, self.params.level);
        let c = self.compressor.get_or_insert_with(|| {
            Compress::new_with_window_bits(Compression::new(level), false, bits)
        });
        let mut out = Vec::with_capacity(data.len() / 2 + 64);
        let mut input = data;
        loop {
            if out.capacity() - out.len() < 64 {
                out.reserve(out.capacity().max(256));
            }
            let before = c.total_in();
            // Sync flush: everything so far becomes decodable, ending with
            // an empty stored block (00 00 FF FF).
            c.compress_vec(input, &mut out, FlushCompress::Sync)
                .expect("deflate with valid parameters does not fail");
            input = &input[(c.total_in() - before) as usize..];
            // done once all input is in and the flush fit in the buffer
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
        }
        // the queued frame keeps this buffer: let it hold about what
        // `pending_output` counts, not the reservation
        let mut out = crate::connection::exact(out);
        if fin {
            if out.ends_with(&TAIL) {
                out.truncate(out.len() - TAIL.len());
            } else {
                // Nothing was pending (an empty message): zlib wrote no
                // flush block. A lone 0x00 is the start of an empty stored
                // block that the receiver's appended tail completes
                // (§7.2.3.6).
                debug_assert!(out.is_empty());
                out.push(0x00);
            }
            if self.our_no_takeover {
                // no state between messages: release it (memory per idle
                // connection matters more than re-initialising)
                self.compressor = None;
            }
        }
        out
    }

    /// Inflate `input`, appending to `out` but never past `max_len` bytes
    /// in total (the allocation stays within `max_len` too). Returns the
    /// input consumed and whether `out` reached `max_len` (then call again
    /// with more room: the inflater may hold more output).
    pub(crate) fn inflate(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        max_len: usize,
    ) -> Result<(usize, bool), InflateError> {
        let bits = self.peer_bits.max(9);
        let d = self
            .decompressor
            .get_or_insert_with(|| Decompress::new_with_window_bits(false, bits));
        let mut consumed = 0;
        loop {
            if out.len() >= max_len {
                return Ok((consumed, true));
            }
            if out.capacity() == out.len() {
                // grow geometrically from a small start (most messages are
                // small, and a kept message should not pin a large buffer),
                // never past the limit
                let grow = out.len().max(4096).min(max_len - out.len());
                out.reserve_exact(grow);
            }
            if out.capacity() > max_len {
                // the allocator rounded up: do not let the inflater use it
                out.shrink_to(max_len);
            }
            let (in_before, out_before) = (d.total_in(), out.len());
            let status = d
                .decompress_vec(&input[consumed..], out, FlushDecompress::None)
                .map_err(|_| InflateError)?;
            consumed += (d.total_in() - in_before) as usize;
            if status == Status::StreamEnd {
                // A final block (BFINAL) ends the stream: start a fresh one
                // for whatever follows.
                d.reset(false);
            }
            let progressed = d.total_in() != in_before || out.len() != out_before;
            // Done when the input is used up and the inflater stopped short
            // of filling the buffer (so it holds nothing more), or when it
            // cannot move at all (it needs more input).
            if !progressed || (consumed == input.len() && out.len() < out.capacity()) {
                return Ok((consumed, out.len() >= max_len));
            }
        }
    }

    /// Feed the stripped tail at the end of a message (§7.2.2), resuming at
    /// `*tail_fed`. Returns `true` once the whole message is inflated;
    /// `false` when `out` reached `max_len` first (call again with room).
    pub(crate) fn inflate_tail(
        &mut self,
        tail_fed: &mut usize,
        out: &mut Vec<u8>,
        max_len: usize,
    ) -> Result<bool, InflateError> {
        let (n, full) = self.inflate(&TAIL[*tail_fed..], out, max_len)?;
        *tail_fed += n;
        Ok(*tail_fed == TAIL.len() && !full)
    }

    /// The message ended: drop the peer's context if it does not keep one.
    pub(crate) fn end_inflate(&mut self) {
        if self.peer_no_takeover {
            self.decompressor = None;
        }
    }
}

/// Output is produced in chunks of at most this many bytes at a time.
pub(crate) const INFLATE_CHUNK: usize = 64 * 1024;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::handshake::parse_extensions;

    fn offers(s: &str) -> Vec<ExtensionOffer> {
        parse_extensions(s).unwrap()
    }

    #[test]
    fn window_bits_grammar() {
        for (v, ok) in [
            ("8", Some(8)),
            ("9", Some(9)),
            ("10", Some(10)),
            ("15", Some(15)),
            ("16", None),
            ("7", None),
            ("08", None),
            ("", None),
            ("1", None),
            ("+9", None),
        ] {
            assert_eq!(window_bits(v).ok(), ok, "{v:?}");
        }
    }

    #[test]
    fn server_accepts_the_first_valid_offer() {
        let cfg = DeflateConfig::default();
        // first offer invalid (duplicate), second unknown param, third fine
        let o = offers("permessage-deflate; server_no_context_takeover; server_no_context_takeover, permessage-deflate; foo, permessage-deflate; client_max_window_bits=10");
        let p = cfg.accept_offer(&o).unwrap();
        assert_eq!(p.client_max_window_bits, 10);
        assert_eq!(
            p.response(),
            "permessage-deflate; client_max_window_bits=10"
        );
        assert_eq!(
            cfg.accept_offer(&offers(
                "x-other, permessage-deflate; server_max_window_bits"
            )),
            None
        );
        assert_eq!(
            cfg.accept_offer(&offers("permessage-deflate; client_no_context_takeover=1")),
            None
        );
    }

    #[test]
    fn server_honours_and_limits() {
        let cfg = DeflateConfig {
            server_max_window_bits: 12,
            client_max_window_bits: 11,
            client_no_context_takeover: true,
            ..DeflateConfig::default()
        };
        let p = cfg
            .accept_offer(&offers(
                "permessage-deflate; server_no_context_takeover; client_max_window_bits",
            ))
            .unwrap();
        assert!(p.server_no_context_takeover && p.client_no_context_takeover);
        assert_eq!(
            (p.server_max_window_bits, p.client_max_window_bits),
            (12, 11)
        );
        assert_eq!(
            p.response(),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=12; client_max_window_bits=11"
        );
        // without client_max_window_bits in the offer the client keeps 15
        let p = cfg.accept_offer(&offers("permessage-deflate")).unwrap();
        assert_eq!(p.client_max_window_bits, 15);
        assert!(!p.response().contains("client_max_window_bits"));
    }

    #[test]
    fn client_checks_the_response() {
        let cfg = DeflateConfig::default();
        let ok = |s: &str| cfg.accept_response(&offers(s)[0]);
        assert!(ok("permessage-deflate").is_ok());
        assert!(ok("permessage-deflate; server_no_context_takeover").is_ok());
        assert_eq!(
            ok("permessage-deflate; client_max_window_bits=9")
                .unwrap()
                .client_max_window_bits,
            9
        );
        assert!(
            ok("permessage-deflate; client_max_window_bits").is_err(),
            "value required"
        );
        assert!(ok("permessage-deflate; server_max_window_bits=16").is_err());
        assert!(ok("permessage-deflate; foo").is_err());
        let strict = DeflateConfig {
            server_no_context_takeover: true,
            server_max_window_bits: 10,
            ..DeflateConfig::default()
        };
        assert!(strict
            .accept_response(&offers("permessage-deflate")[0])
            .is_err());
        assert!(strict
            .accept_response(
                &offers(
                    "permessage-deflate; server_no_context_takeover; server_max_window_bits=11"
                )[0]
            )
            .is_err());
        assert!(strict
            .accept_response(
                &offers("permessage-deflate; server_no_context_takeover; server_max_window_bits=9")
                    [0]
            )
            .is_ok());
    }

    #[test]
    fn compress_inflate_round_trip_with_context_takeover() {
        let params = DeflateConfig::default()
            .accept_offer(&offers("permessage-deflate"))
            .unwrap();
        let mut tx = DeflateState::new(params.clone(), Role::Server);
        let mut rx = DeflateState::new(params, Role::Client);
        for msg in [
            &b"hello hello hello hello"[..],
            b"hello hello hello hello",
            b"",
            &[7u8; 100_000],
        ] {
            let wire = tx.compress(msg, true);
            let mut out = Vec::new();
            let (n, full) = rx.inflate(&wire, &mut out, usize::MAX).unwrap();
            assert_eq!((n, full), (wire.len(), false));
            let mut fed = 0;
            assert!(rx.inflate_tail(&mut fed, &mut out, usize::MAX).unwrap());
            rx.end_inflate();
            assert_eq!(out, msg);
        }
    }

    #[test]
    fn rfc_7692_examples() {
        // §7.2.3.1: "Hello" compressed
        let params = DeflateConfig::default()
            .accept_offer(&offers("permessage-deflate"))
            .unwrap();
        let mut rx = DeflateState::new(params, Role::Client);
        let mut out = Vec::new();
        rx.inflate(&[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00], &mut out, 100)
            .unwrap();
        let mut fed = 0;
        rx.inflate_tail(&mut fed, &mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
        // §7.2.3.2: the same again with context takeover: shorter
        let mut out = Vec::new();
        rx.inflate(&[0xf2, 0x00, 0x11, 0x00, 0x00], &mut out, 100)
            .unwrap();
        let mut fed = 0;
        rx.inflate_tail(&mut fed, &mut out, 100).unwrap();
        assert_eq!(out, b"Hello");
    }

    #[test]
    fn inflation_is_bounded() {
        let params = DeflateConfig::default()
            .accept_offer(&offers("permessage-deflate"))
            .unwrap();
        let mut tx = DeflateState::new(params.clone(), Role::Server);
        let bomb = tx.compress(&alloc::vec![0u8; 10 << 20], true);
        assert!(bomb.len() < 20_000, "{}", bomb.len());
        let mut rx = DeflateState::new(params, Role::Client);
        let mut out = Vec::new();
        let (_, full) = rx.inflate(&bomb, &mut out, (1 << 20) + 1).unwrap();
        assert!(full);
        assert_eq!(out.len(), (1 << 20) + 1);
        assert!(out.capacity() <= (1 << 20) + 1);
    }

    #[test]
    fn eight_bit_windows_mean_no_compression_on_our_side() {
        let params = DeflateConfig::default()
            .accept_offer(&offers("permessage-deflate; server_max_window_bits=8"))
            .unwrap();
        assert_eq!(
            params.response(),
            "permessage-deflate; server_max_window_bits=8"
        );
        let server = DeflateState::new(params.clone(), Role::Server);
        assert!(!server.should_compress(1000));
        let client = DeflateState::new(params, Role::Client);
        assert!(client.should_compress(1000));
    }

    #[test]
    fn offers_render() {
        let mut cfg = DeflateConfig::default();
        assert_eq!(cfg.offer(), "permessage-deflate; client_max_window_bits");
        cfg.server_no_context_takeover = true;
        cfg.server_max_window_bits = 10;
        cfg.client_max_window_bits = 12;
        assert_eq!(
            cfg.offer(),
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12"
        );
        let round = parse_extensions(&cfg.offer()).unwrap();
        assert!(DeflateConfig::default().accept_offer(&round).is_some());
    }
}
