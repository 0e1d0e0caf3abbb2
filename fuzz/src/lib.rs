//! Helpers shared by the fuzz targets.
//!
//! Everything here is written independently of the crate's internals so the
//! targets can check the crate against it: a reference frame-header parser
//! ([`reference_step`]), an HTTP token-list matcher, a strict base64 check,
//! and a validator for the byte stream a [`Connection`](wsproto::Connection)
//! writes ([`WireChecker`]).

use bytes::BytesMut;
use wsproto::frame::{CloseFrame, Frame, FrameDecoder, FrameHeader, OpCode};
use wsproto::{CapacityError, Error, MaskSource, ProtocolError, Role};

// ------------------------------------------------------------------ chunking

/// Split `data` into consecutive chunks whose sizes cycle through `sizes`
/// (a size byte is the chunk length, 0 gives an empty chunk). With no
/// non-zero size the whole input is one chunk. The chunks always cover
/// `data` exactly, in order.
pub fn chunks<'a>(sizes: &[u8], data: &'a [u8]) -> Vec<&'a [u8]> {
    if sizes.iter().all(|&s| s == 0) {
        return vec![data];
    }
    let mut out = Vec::new();
    let mut rest = data;
    let mut i = 0;
    while !rest.is_empty() {
        let n = (sizes[i % sizes.len()] as usize).min(rest.len());
        let (a, b) = rest.split_at(n);
        out.push(a);
        rest = b;
        i += 1;
    }
    out
}

/// Cut `data` into 1–3 pieces at positions given as fractions (`/256`) of
/// its length.
pub fn split_in_up_to_three(data: &[u8], count: u8, a: u8, b: u8) -> Vec<&[u8]> {
    let count = 1 + (count % 3) as usize;
    let mut cuts: Vec<usize> = [a, b]
        .iter()
        .take(count - 1)
        .map(|&f| data.len() * f as usize / 256)
        .collect();
    cuts.sort_unstable();
    let mut out = Vec::with_capacity(count);
    let mut start = 0;
    for c in cuts {
        out.push(&data[start..c]);
        start = c;
    }
    out.push(&data[start..]);
    out
}

// ------------------------------------------------------------------- masking

/// A deterministic mask source (a counter): fuzz runs must be reproducible.
pub fn counter_masks(seed: u32) -> Box<dyn MaskSource> {
    let mut state = seed;
    Box::new(move |buf: &mut [u8]| {
        for b in buf {
            state = state.wrapping_mul(1_103_515_245).wrapping_add(12_345);
            *b = (state >> 16) as u8;
        }
    })
}

/// Plain XOR unmasking, written independently of `wsproto::apply_mask`.
pub fn xor_mask(data: &mut [u8], key: [u8; 4], offset: usize) {
    for (i, b) in data.iter_mut().enumerate() {
        *b ^= key[(offset + i) % 4];
    }
}

// ------------------------------------------------------- reference decoding

/// What the reference decoder says about the bytes at the front of a buffer.
#[derive(Debug)]
pub enum RefStep {
    /// Not enough bytes for a header (and none of the bytes present carries a
    /// violation the decoder must already report).
    NeedHeader,
    /// The decoder must fail with one of these errors (never empty).
    Fail(Vec<Error>),
    /// A valid header of `len` bytes; `avail` payload bytes are present.
    Header {
        header: FrameHeader,
        len: usize,
        payload_avail: usize,
    },
}

/// Reference decision for the bytes at the front of `buf`, for a decoder
/// playing `role` with payload limit `max` (RFC 6455 §5.1, §5.2, §5.5).
///
/// A header-level violation (reserved opcode, most significant bit of the
/// 64-bit length, non-minimal length) must be reported as soon as the bytes
/// that carry it are present; the rules that need the whole header (RSV
/// bits, masking direction, control-frame rules, the payload limit) once the
/// whole header is present. When several rules are broken, any of them may
/// be reported.
pub fn reference_step(buf: &[u8], role: Role, max: u64) -> RefStep {
    let mut early = Vec::new();
    let Some(&b0) = buf.first() else {
        return RefStep::NeedHeader;
    };
    let op = b0 & 0x0F;
    let opcode = match op {
        0x0 => Some(OpCode::Continuation),
        0x1 => Some(OpCode::Text),
        0x2 => Some(OpCode::Binary),
        0x8 => Some(OpCode::Close),
        0x9 => Some(OpCode::Ping),
        0xA => Some(OpCode::Pong),
        _ => None,
    };
    if opcode.is_none() {
        early.push(Error::Protocol(ProtocolError::ReservedOpcode(op)));
    }
    let Some(&b1) = buf.get(1) else {
        return fail_or(early, RefStep::NeedHeader);
    };
    let masked = b1 & 0x80 != 0;
    let len7 = b1 & 0x7F;
    let (payload_len, mut pos) = match len7 {
        126 => {
            if buf.len() < 4 {
                return fail_or(early, RefStep::NeedHeader);
            }
            let l = (buf[2] as u64) << 8 | buf[3] as u64;
            if l < 126 {
                early.push(Error::Protocol(ProtocolError::NonMinimalLength));
            }
            (l, 4)
        }
        127 => {
            if buf.len() < 3 {
                return fail_or(early, RefStep::NeedHeader);
            }
            if buf[2] & 0x80 != 0 {
                early.push(Error::Protocol(ProtocolError::InvalidLength));
            }
            if buf.len() < 10 {
                return fail_or(early, RefStep::NeedHeader);
            }
            let mut l = 0u64;
            for &b in &buf[2..10] {
                l = l << 8 | b as u64;
            }
            if l <= 0xFFFF {
                early.push(Error::Protocol(ProtocolError::NonMinimalLength));
            }
            (l, 10)
        }
        n => (n as u64, 2),
    };
    let mask = if masked {
        if buf.len() < pos + 4 {
            return fail_or(early, RefStep::NeedHeader);
        }
        let k = [buf[pos], buf[pos + 1], buf[pos + 2], buf[pos + 3]];
        pos += 4;
        Some(k)
    } else {
        None
    };
    // The whole header is present: every rule applies.
    let mut errs = early;
    let rsv = (b0 >> 4) & 0x7;
    if rsv != 0 {
        errs.push(Error::Protocol(ProtocolError::ReservedBits));
    }
    match (role, masked) {
        (Role::Server, false) => errs.push(Error::Protocol(ProtocolError::UnmaskedFrame)),
        (Role::Client, true) => errs.push(Error::Protocol(ProtocolError::MaskedFrame)),
        _ => {}
    }
    let fin = b0 & 0x80 != 0;
    if op & 0x8 != 0 {
        if payload_len > 125 {
            errs.push(Error::Protocol(ProtocolError::ControlFrameTooLong));
        }
        if !fin {
            errs.push(Error::Protocol(ProtocolError::FragmentedControlFrame));
        }
    }
    if payload_len > max && payload_len < 1 << 63 {
        errs.push(Error::Capacity(CapacityError::FrameTooLarge {
            size: payload_len,
            limit: max as usize,
        }));
    }
    if !errs.is_empty() {
        return RefStep::Fail(errs);
    }
    let header = FrameHeader {
        fin,
        rsv1: false,
        rsv2: false,
        rsv3: false,
        opcode: opcode.expect("reserved opcodes fail above"),
        mask,
        payload_len,
    };
    let avail = (buf.len() - pos).min(payload_len as usize);
    RefStep::Header {
        header,
        len: pos,
        payload_avail: avail,
    }
}

fn fail_or(errs: Vec<Error>, otherwise: RefStep) -> RefStep {
    if errs.is_empty() {
        otherwise
    } else {
        RefStep::Fail(errs)
    }
}

/// The outcome of decoding a whole stream with the reference rules.
#[derive(Debug)]
pub struct RefDecode {
    /// Complete frames, payloads unmasked, with their header lengths.
    pub frames: Vec<(Frame, usize)>,
    /// How the stream ends after the frames.
    pub end: RefEnd,
}

/// How a reference decode ended.
#[derive(Debug)]
pub enum RefEnd {
    /// The remaining bytes hold part of a header.
    NeedHeader,
    /// A valid header was read but its payload is incomplete.
    InFrame {
        header: FrameHeader,
        header_len: usize,
    },
    /// The decoder must fail with one of these errors.
    Fail(Vec<Error>),
}

/// Decode `stream` with the reference rules.
pub fn reference_decode(stream: &[u8], role: Role, max: u64) -> RefDecode {
    let mut frames = Vec::new();
    let mut rest = stream;
    loop {
        match reference_step(rest, role, max) {
            RefStep::NeedHeader => {
                return RefDecode {
                    frames,
                    end: RefEnd::NeedHeader,
                }
            }
            RefStep::Fail(e) => {
                return RefDecode {
                    frames,
                    end: RefEnd::Fail(e),
                }
            }
            RefStep::Header {
                header,
                len,
                payload_avail,
            } => {
                if (payload_avail as u64) < header.payload_len {
                    return RefDecode {
                        frames,
                        end: RefEnd::InFrame {
                            header,
                            header_len: len,
                        },
                    };
                }
                let mut payload = rest[len..len + payload_avail].to_vec();
                if let Some(k) = header.mask {
                    xor_mask(&mut payload, k, 0);
                }
                frames.push((
                    Frame {
                        header,
                        payload: payload.into(),
                    },
                    len,
                ));
                rest = &rest[len + payload_avail..];
            }
        }
    }
}

// ---------------------------------------------------------------------- HTTP

/// HTTP optional whitespace trim (SP / HTAB only, RFC 7230 §3.2.3).
pub fn ows_trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|&b| b != b' ' && b != b'\t')
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|&b| b != b' ' && b != b'\t')
        .map_or(start, |e| e + 1);
    &v[start..end]
}

/// Whether a comma-separated header value lists `token` (ASCII
/// case-insensitive), RFC 7230 §7.
pub fn list_contains(value: &[u8], token: &str) -> bool {
    value
        .split(|&b| b == b',')
        .map(ows_trim)
        .any(|t| t.eq_ignore_ascii_case(token.as_bytes()))
}

/// Values of every header called `name` (case-insensitive).
pub fn header_values<'h>(headers: &[httparse::Header<'h>], name: &str) -> Vec<&'h [u8]> {
    headers
        .iter()
        .filter(|h| h.name.eq_ignore_ascii_case(name))
        .map(|h| h.value)
        .collect()
}

/// Strict base64 (RFC 4648, standard alphabet, padded, canonical) that
/// decodes to exactly 16 bytes: 22 alphabet characters, the last with its
/// low 4 bits zero, then `==`.
pub fn is_base64_of_16(v: &[u8]) -> bool {
    fn val(c: u8) -> Option<u8> {
        Some(match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            _ => return None,
        })
    }
    v.len() == 24
        && v[22..] == *b"=="
        && v[..22].iter().all(|&c| val(c).is_some())
        && val(v[21]).is_some_and(|x| x & 0x0F == 0)
}

/// RFC 7230 `tchar`.
pub fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

/// Parse a complete HTTP response and return (status, version, headers as
/// owned pairs, head length). Panics if `bytes` is not a complete response.
pub fn parse_response(bytes: &[u8]) -> (u16, u8, Vec<(String, Vec<u8>)>, usize) {
    let mut slots = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut slots);
    let n = match resp.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => n,
        other => panic!("response does not parse as HTTP: {other:?}\n{bytes:?}"),
    };
    let headers = resp
        .headers
        .iter()
        .map(|h| (h.name.to_string(), h.value.to_vec()))
        .collect();
    (
        resp.code.expect("complete"),
        resp.version.expect("complete"),
        headers,
        n,
    )
}

// ------------------------------------------------------ output stream check

/// Validates the byte stream one endpoint writes, chunk by chunk, as its peer
/// would read it: every frame decodes for the peer role (masked iff the
/// sender is a client, no RSV bits, control frames short and unfragmented),
/// data frames follow the fragmentation rules (§5.4), every complete text
/// message is UTF-8, a close frame carries a valid payload (§5.5.1), there is
/// at most one close frame, and after it only pongs (§5.5.1 forbids data
/// frames after a close; §5.5.2 still requires answering pings until the
/// peer's close arrives), which are counted in `pongs_after_close`.
pub struct WireChecker {
    decoder: FrameDecoder,
    buf: BytesMut,
    /// Kind of the data message being written (Text/Binary) and its bytes.
    message: Option<(OpCode, Vec<u8>)>,
    /// The close frame, once seen (its parsed payload).
    pub close: Option<Option<CloseFrame>>,
    /// Pong frames written after the close frame.
    pub pongs_after_close: usize,
    /// Every frame seen, in order.
    pub frames: Vec<Frame>,
    /// Complete data messages, in order: (is_text, payload).
    pub messages: Vec<(bool, Vec<u8>)>,
    /// Bytes seen in total.
    pub total: usize,
}

impl WireChecker {
    /// A checker for what an endpoint playing `sender` writes.
    pub fn new(sender: Role) -> Self {
        WireChecker {
            decoder: FrameDecoder::new(sender.peer(), usize::MAX),
            buf: BytesMut::new(),
            message: None,
            close: None,
            pongs_after_close: 0,
            frames: Vec::new(),
            messages: Vec::new(),
            total: 0,
        }
    }

    /// Feed the next chunk written; returns the number of frames it
    /// completed. Panics on any violation.
    pub fn feed(&mut self, chunk: &[u8]) -> usize {
        self.total += chunk.len();
        self.buf.extend_from_slice(chunk);
        let mut done = 0;
        loop {
            let frame = match self.decoder.decode(&mut self.buf) {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => panic!("output does not decode as a frame stream: {e:?}"),
            };
            done += 1;
            self.on_frame(&frame);
            self.frames.push(frame);
        }
        if self.close.is_some() {
            // only (the start of) a pong may follow the close frame: a
            // partial write can stop inside its header or inside its payload
            if let Some(h) = self.decoder.current() {
                assert_eq!(
                    h.opcode,
                    OpCode::Pong,
                    "a frame after the close frame: {h:?}"
                );
            } else if let Some(&b0) = self.buf.first() {
                assert_eq!(
                    b0 & 0x0F,
                    OpCode::Pong.as_u8(),
                    "bytes after the close frame: {:02x?}",
                    &self.buf[..]
                );
            }
        }
        done
    }

    fn on_frame(&mut self, f: &Frame) {
        let h = &f.header;
        if self.close.is_some() {
            assert_eq!(
                h.opcode,
                OpCode::Pong,
                "a frame after the close frame: {f:?}"
            );
            self.pongs_after_close += 1;
        }
        match h.opcode {
            OpCode::Text | OpCode::Binary => {
                assert!(
                    self.message.is_none(),
                    "a new data frame inside a fragmented message: {h:?}"
                );
                self.message = Some((h.opcode, f.payload.to_vec()));
                if h.fin {
                    self.end_message();
                }
            }
            OpCode::Continuation => {
                let (_, data) = self
                    .message
                    .as_mut()
                    .expect("a continuation frame with no message in progress");
                data.extend_from_slice(&f.payload);
                if h.fin {
                    self.end_message();
                }
            }
            OpCode::Close => {
                let parsed = CloseFrame::parse(&f.payload)
                    .unwrap_or_else(|e| panic!("invalid close payload written: {e:?} {f:?}"));
                if let Some(cf) = &parsed {
                    assert!(cf.code.is_sendable(), "unsendable close code written");
                    assert!(cf.reason.len() <= CloseFrame::MAX_REASON_LEN);
                }
                self.close = Some(parsed);
            }
            OpCode::Ping | OpCode::Pong => {
                assert!(f.payload.len() <= 125);
            }
        }
    }

    fn end_message(&mut self) {
        let (op, data) = self.message.take().expect("a message is in progress");
        let text = op == OpCode::Text;
        if text {
            assert!(
                std::str::from_utf8(&data).is_ok(),
                "a text message that is not UTF-8 was written: {data:02x?}"
            );
        }
        self.messages.push((text, data));
    }

    /// Whether the stream stops on a frame boundary.
    pub fn at_frame_boundary(&self) -> bool {
        self.buf.is_empty() && self.decoder.current().is_none()
    }
}

/// The payload of a close frame for `code` and `reason` (for building input).
pub fn close_payload(code: Option<u16>, reason: &str) -> Vec<u8> {
    match code {
        None => Vec::new(),
        Some(c) => {
            let mut v = c.to_be_bytes().to_vec();
            v.extend_from_slice(reason.as_bytes());
            v
        }
    }
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char
/// boundary.
pub fn truncate_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

// ------------------------------------------------------ frame decoder target

/// Everything one decoder run produced.
#[derive(Debug, PartialEq)]
struct DecodeRun {
    frames: Vec<Frame>,
    error: Option<Error>,
    /// Header of the frame in progress at the end, if any.
    current: Option<FrameHeader>,
    /// Bytes of the stream consumed at the end.
    consumed: usize,
}

/// The shared body of `frame_decoder_server` and `frame_decoder_client`.
///
/// Input layout: `flags, k, size_1..size_k, stream...`. `flags` bit 0
/// chooses the API (whole frames with `decode`, or `read_header` /
/// `unmask_available` / `take` or `advance` in pieces whose sizes come from
/// the size bytes, an odd size meaning `advance`), bits 1–2 the payload
/// limit. The stream is fed in chunks whose
/// sizes cycle through the size bytes.
///
/// Invariants, checked after every chunk:
/// * no panic; the decoder never consumes more than it was given, and the
///   bytes it has consumed are exactly the headers and payloads of the
///   frames it produced plus the header (and payload taken) of the frame in
///   progress;
/// * the unconsumed bytes are the stream's, except the front of the frame in
///   progress, which is the stream's XOR the masking key (unmasked in
///   place);
/// * every frame obeys the role rules and the limit, and its payload is the
///   unmasked wire payload;
/// * the same stream in one chunk (with `decode`) gives the same frames, the
///   same error, the same frame in progress;
/// * the reference decoder (`reference_decode`) agrees: same frames, and an
///   error exactly when it demands one, chosen among the rules it finds
///   broken.
pub fn decoder_target(role: Role, data: &[u8]) {
    let (Some(&flags), Some(&k)) = (data.first(), data.get(1)) else {
        return;
    };
    let k = (k % 8) as usize;
    let Some(sizes) = data.get(2..2 + k) else {
        return;
    };
    let stream = &data[2 + k..];
    let max = [65536usize, 125, 0, 300][((flags >> 1) & 3) as usize];
    let piecewise = flags & 1 == 1;

    let pieces = chunks(sizes, stream);
    let chunked = if piecewise {
        run_piecewise(role, max, &pieces, sizes, stream)
    } else {
        run_decode(role, max, &pieces, stream)
    };
    let whole = run_decode(role, max, &[stream], stream);
    assert_eq!(chunked, whole, "chunked and one-shot decoding differ");

    let reference = reference_decode(stream, role, max as u64);
    assert_eq!(
        whole.frames.len(),
        reference.frames.len(),
        "frame count differs from the reference: {:?} vs {:?}",
        whole,
        reference
    );
    for (got, (want, _)) in whole.frames.iter().zip(&reference.frames) {
        assert_eq!(got, want);
    }
    match (&reference.end, &whole.error, &whole.current) {
        (RefEnd::Fail(errs), Some(e), None) => {
            assert!(errs.contains(e), "{e:?} is not among {errs:?}")
        }
        (RefEnd::InFrame { header, .. }, None, Some(h)) => assert_eq!(header, h),
        (RefEnd::NeedHeader, None, None) => {}
        (r, e, c) => panic!("reference ends with {r:?}, decoder with error {e:?}, current {c:?}"),
    }
}

/// Check the frame against the role rules and the limit.
fn check_frame(role: Role, max: usize, f: &Frame) {
    let h = &f.header;
    assert_eq!(h.payload_len, f.payload.len() as u64);
    assert!(h.payload_len <= max as u64);
    assert_eq!(h.rsv_bits(), 0);
    assert_eq!(h.mask.is_some(), role == Role::Server);
    if h.opcode.is_control() {
        assert!(h.fin && h.payload_len <= 125);
    }
}

/// Check the accounting and the untouched/unmasked buffer contents.
fn check_buffer(
    dec: &FrameDecoder,
    buf: &BytesMut,
    stream: &[u8],
    fed: usize,
    done: usize,
    cur_taken: usize,
) {
    assert!(buf.len() <= fed, "more bytes buffered than fed");
    let consumed = fed - buf.len();
    let cur = dec.current().map_or(0, |h| h.encoded_len() + cur_taken);
    assert_eq!(
        consumed,
        done + cur,
        "consumed bytes are not the frames' headers and payloads"
    );
    let u = dec.unmasked_len();
    assert!(u <= buf.len());
    assert!(u as u64 <= dec.remaining());
    assert_eq!(
        &buf[u..],
        &stream[consumed + u..fed],
        "unread bytes modified"
    );
    let mut front = stream[consumed..consumed + u].to_vec();
    if let Some(k) = dec.current().and_then(|h| h.mask) {
        xor_mask(&mut front, k, cur_taken);
    }
    assert_eq!(&buf[..u], &front[..], "unmasked bytes wrong");
}

fn run_decode(role: Role, max: usize, pieces: &[&[u8]], stream: &[u8]) -> DecodeRun {
    let mut dec = FrameDecoder::new(role, max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let (mut fed, mut done) = (0, 0);
    let mut error = None;
    'outer: for piece in pieces {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            match dec.decode(&mut buf) {
                Ok(Some(f)) => {
                    check_frame(role, max, &f);
                    done += f.header.encoded_len() + f.payload.len();
                    frames.push(f);
                }
                Ok(None) => break,
                Err(e) => {
                    assert!(dec.current().is_none());
                    error = Some(e);
                    check_buffer(&dec, &buf, stream, fed, done, 0);
                    break 'outer;
                }
            }
        }
        check_buffer(&dec, &buf, stream, fed, done, 0);
    }
    DecodeRun {
        frames,
        error,
        current: dec.current().copied(),
        consumed: fed - buf.len(),
    }
}

fn run_piecewise(
    role: Role,
    max: usize,
    pieces: &[&[u8]],
    sizes: &[u8],
    stream: &[u8],
) -> DecodeRun {
    let mut dec = FrameDecoder::new(role, max);
    let mut buf = BytesMut::new();
    let mut frames = Vec::new();
    let (mut fed, mut done) = (0, 0);
    let mut error = None;
    // the frame being assembled: header and payload taken so far
    let mut cur: Option<(FrameHeader, Vec<u8>)> = None;
    let mut take_i = 0;
    'outer: for piece in pieces {
        buf.extend_from_slice(piece);
        fed += piece.len();
        loop {
            if cur.is_none() {
                match dec.read_header(&mut buf) {
                    Ok(Some(h)) => {
                        assert_eq!(dec.current(), Some(&h));
                        assert_eq!(dec.remaining(), h.payload_len);
                        assert_eq!(dec.unmasked_len(), 0);
                        cur = Some((h, Vec::new()));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        error = Some(e);
                        check_buffer(&dec, &buf, stream, fed, done, 0);
                        break 'outer;
                    }
                }
            } else {
                // a frame in progress: read_header must not touch anything
                let before = buf.len();
                assert_eq!(dec.read_header(&mut buf), Ok(None));
                assert_eq!(buf.len(), before);
            }
            let (h, taken) = cur.as_mut().expect("a frame is in progress");
            let prev = dec.unmasked_len();
            let r = dec.unmask_available(&mut buf);
            assert_eq!(r.start, prev);
            assert_eq!(r.end, dec.unmasked_len());
            assert_eq!(
                r.end as u64,
                (buf.len() as u64).min(dec.remaining()),
                "not everything available was unmasked"
            );
            let u = dec.unmasked_len();
            if u == 0 && !dec.frame_complete() {
                break; // need more payload
            }
            let want = sizes.get(take_i % sizes.len().max(1)).copied().unwrap_or(0);
            take_i += 1;
            let n = if u == 0 {
                0
            } else {
                (want as usize).clamp(1, u)
            };
            let remaining = dec.remaining();
            if want & 1 == 0 {
                let data = dec.take(&mut buf, n);
                assert_eq!(data.len(), n);
                taken.extend_from_slice(&data);
            } else {
                // `advance`: the caller copies the bytes out itself
                taken.extend_from_slice(&buf[..n]);
                let before = buf.len();
                dec.advance(&mut buf, n);
                assert_eq!(buf.len(), before - n);
            }
            if remaining == n as u64 {
                assert!(dec.current().is_none(), "frame did not end");
                let (h, payload) = cur.take().expect("in progress");
                let f = Frame {
                    header: h,
                    payload: payload.into(),
                };
                check_frame(role, max, &f);
                done += f.header.encoded_len() + f.payload.len();
                frames.push(f);
            } else {
                assert_eq!(dec.remaining(), remaining - n as u64);
                assert_eq!(dec.current(), Some(&*h));
            }
        }
        let taken = cur.as_ref().map_or(0, |(_, t)| t.len());
        check_buffer(&dec, &buf, stream, fed, done, taken);
    }
    // `decode` consumes nothing of a frame's payload until the frame is
    // complete; report the consumption as it would.
    let partial = cur.as_ref().map_or(0, |(_, t)| t.len());
    DecodeRun {
        frames,
        error,
        current: dec.current().copied(),
        consumed: fed - buf.len() - partial,
    }
}
