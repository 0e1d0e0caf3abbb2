//! permessage-deflate (RFC 7692) through the public API: negotiation
//! (§7.1), the connection's compression and decompression (§7.2), the
//! message limit applied to the inflated size (decompression bombs, with a
//! counting allocator), RSV1 rules (§6), and an independent peer built
//! directly on flate2.
#![cfg(feature = "deflate")]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use bytes::{Bytes, BytesMut};
use flate2::{
    Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status as ZStatus,
};
use proptest::prelude::*;
use wsproto::extension::deflate::{DeflateConfig, DeflateParams};
use wsproto::frame::{encode_frame, Frame, FrameHeader, OpCode};
use wsproto::handshake::{
    parse_extensions, AcceptOptions, Accepted, ClientHandshake, ClientRequest, ServerHandshake,
    Status,
};
use wsproto::{
    CapacityError, CloseCode, Config, Connection, Error, Event, HandshakeError, Limits, Message,
    MessageKind, MessageRef, ProtocolError, Role,
};

use common::{drain, poll_all, sole_close_code, test_masks};

// ------------------------------------------------------ counting allocator

/// Counts the bytes allocated by the current thread (tests run on parallel
/// threads; each measures only its own allocations).
struct Counting;

thread_local! {
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn account(delta: isize) {
    let _ = CURRENT.try_with(|c| {
        let now = c.get() + delta;
        c.set(now);
        let _ = PEAK.try_with(|p| {
            if now > p.get() {
                p.set(now)
            }
        });
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            account(layout.size() as isize);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        account(-(layout.size() as isize));
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            account(new_size as isize - layout.size() as isize);
        }
        p
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// Bytes currently allocated by this thread.
fn allocated() -> isize {
    CURRENT.with(Cell::get)
}

/// Start a peak measurement: returns the baseline.
fn peak_reset() -> isize {
    let now = allocated();
    PEAK.with(|p| p.set(now));
    now
}

fn peak() -> isize {
    PEAK.with(Cell::get)
}

// ----------------------------------------------------------------- helpers

const KIB: usize = 1024;
const MIB: usize = 1024 * 1024;

fn cfg() -> DeflateConfig {
    DeflateConfig::default()
}

/// A DeflateConfig changed by `f`.
fn cfg_with(f: impl FnOnce(&mut DeflateConfig)) -> DeflateConfig {
    let mut c = DeflateConfig::default();
    f(&mut c);
    c
}

fn offers(s: &str) -> Vec<wsproto::handshake::ExtensionOffer> {
    parse_extensions(s).unwrap_or_else(|e| panic!("{s:?} does not parse: {e}"))
}

/// What a server configured with `server` answers to the header value
/// `offer` (`None`: declined).
fn server_answer(server: &DeflateConfig, offer: &str) -> Option<String> {
    server.accept_offer(&offers(offer)).map(|p| p.response())
}

/// The client's verdict on a response element.
fn client_verdict(client: &DeflateConfig, response: &str) -> Result<DeflateParams, HandshakeError> {
    let r = offers(response);
    assert_eq!(r.len(), 1, "one element: {response:?}");
    client.accept_response(&r[0])
}

/// A connected pair, after a real opening handshake.
struct Pair {
    client: Connection,
    server: Connection,
    /// The server's `Sec-WebSocket-Extensions` response value, if any.
    response: Option<String>,
    /// The request's `Sec-WebSocket-Extensions` value, if any.
    request: Option<String>,
    accepted: Accepted,
}

fn header_value(head: &[u8], name: &str) -> Option<String> {
    let head = std::str::from_utf8(head).unwrap();
    head.split("\r\n")
        .filter_map(|l| l.split_once(": "))
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.to_string())
}

/// Handshake a client offering `client_offers` (in order) with a server
/// whose `Config::deflate` is `server`; both use `config` otherwise.
fn handshake_with(
    client_offers: &[DeflateConfig],
    server: Option<DeflateConfig>,
    config: &Config,
) -> Result<Pair, HandshakeError> {
    let mut req = ClientRequest::new("example.com", "/chat");
    for o in client_offers {
        req = req.deflate(o.clone());
    }
    let mut request = Vec::new();
    let mut hs =
        ClientHandshake::new(&req, *b"the sample nonce", &Limits::default(), &mut request).unwrap();
    let request_ext = header_value(&request, "Sec-WebSocket-Extensions");
    let mut buf = BytesMut::from(&request[..]);
    let Status::Complete(incoming) = ServerHandshake::new(&Limits::default()).receive(&mut buf)?
    else {
        panic!("partial request")
    };
    let mut server_config = config.clone();
    server_config.deflate = server;
    let mut response = Vec::new();
    let server = incoming
        .accept(AcceptOptions::new(), &mut response, server_config)
        .unwrap();
    let response_ext = header_value(&response, "Sec-WebSocket-Extensions");
    let mut buf = BytesMut::from(&response[..]);
    let Status::Complete(accepted) = hs.receive(&mut buf)? else {
        panic!("partial response")
    };
    let mut client_config = config.clone();
    client_config.deflate = client_offers.first().cloned();
    let mut client = Connection::client_with_masks(client_config, test_masks());
    if let Some(p) = &accepted.deflate {
        client.enable_deflate(p.clone());
    }
    Ok(Pair {
        client,
        server,
        response: response_ext,
        request: request_ext,
        accepted,
    })
}

fn handshake(client: DeflateConfig, server: DeflateConfig) -> Pair {
    handshake_with(&[client], Some(server), &Config::default()).unwrap()
}

/// Feed a hand-written 101 response with `extensions` to a client that
/// offered `client_offers`.
fn client_gets_response(
    client_offers: &[DeflateConfig],
    extensions: &[&str],
) -> Result<Accepted, HandshakeError> {
    let mut req = ClientRequest::new("example.com", "/");
    for o in client_offers {
        req = req.deflate(o.clone());
    }
    let mut out = Vec::new();
    let mut hs =
        ClientHandshake::new(&req, *b"the sample nonce", &Limits::default(), &mut out).unwrap();
    let mut resp = String::from(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n",
    );
    for e in extensions {
        resp.push_str(&format!("Sec-WebSocket-Extensions: {e}\r\n"));
    }
    resp.push_str("\r\n");
    let mut buf = BytesMut::from(resp.as_bytes());
    match hs.receive(&mut buf)? {
        Status::Complete(a) => Ok(a),
        Status::Partial => panic!("partial"),
    }
}

/// A connection with deflate enabled from a server-side negotiation of
/// `offer` against `server` (the way another HTTP stack would do it).
fn conn_with(role: Role, offer: &str, server: &DeflateConfig, config: Config) -> Connection {
    let params = server.accept_offer(&offers(offer)).expect("offer accepted");
    let mut c = match role {
        Role::Client => Connection::client_with_masks(config, test_masks()),
        Role::Server => Connection::server(config),
    };
    c.enable_deflate(params);
    c
}

fn streaming() -> Config {
    let mut c = Config::default();
    c.streaming = true;
    c
}

/// Decode every frame `sender` wrote (RSV1 allowed).
fn frames(wire: &[u8], sender: Role) -> Vec<Frame> {
    common::decode_all_rsv(wire, sender, 0b100)
}

/// Move what `from` queued into `to`; return the frames for inspection.
fn pump(from: &mut Connection, to: &mut Connection) -> Vec<Frame> {
    let wire = drain(from);
    to.receive(&wire);
    frames(&wire, from.role())
}

/// Send `msg` from `from`, deliver it, and return (frames, received events).
fn transfer(from: &mut Connection, to: &mut Connection, msg: Message) -> (Vec<Frame>, Vec<Event>) {
    from.send(msg).unwrap();
    let f = pump(from, to);
    (f, poll_all(to).unwrap())
}

/// Encode a frame from `sender` (clients mask with a fixed key).
fn raw_frame(sender: Role, opcode: OpCode, fin: bool, rsv1: bool, payload: &[u8]) -> Vec<u8> {
    let mut h = FrameHeader::new(opcode, payload.len() as u64);
    h.fin = fin;
    h.rsv1 = rsv1;
    if sender == Role::Client {
        h.mask = Some([0x37, 0xfa, 0x21, 0x3d]);
    }
    let mut out = BytesMut::new();
    encode_frame(&mut out, &h, payload);
    out.to_vec()
}

/// Poll until the connection fails; returns the error.
fn failure(conn: &mut Connection) -> Error {
    loop {
        match conn.poll_event() {
            Ok(Some(_)) => {}
            Ok(None) => panic!("no failure: the connection waits for more input"),
            Err(e) => return e,
        }
    }
}

/// JSON chat lines of exactly `len` bytes (at least the header's length):
/// compressible, varied, all ASCII.
fn chat_text(i: usize, len: usize) -> String {
    let users = ["alice", "bob", "carol", "dave"];
    let words = [
        "hello",
        "deploy",
        "lunch",
        "the build is green",
        "ok",
        "see you",
        "ship it",
    ];
    let header = format!(
        "{{\"type\":\"message\",\"room\":\"lobby\",\"user\":\"{}\",\"ts\":{},\"text\":\"",
        users[i % users.len()],
        1_700_000_000 + i * 37
    );
    let mut s = header.clone();
    let mut k = i;
    while s.len() + 2 < len {
        s.push_str(words[k % words.len()]);
        s.push(' ');
        k = k.wrapping_mul(31).wrapping_add(7);
    }
    s.truncate(len.saturating_sub(2).max(header.len()));
    s.push_str("\"}");
    s
}

/// Deterministic pseudo-random bytes.
fn noise(n: usize, seed: u32) -> Vec<u8> {
    let mut x = seed | 1;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 11) as u8
        })
        .collect()
}

/// An independent permessage-deflate peer on flate2: raw deflate, sync
/// flush, tail stripped (§7.2.1).
fn peer_compress(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut input = data;
    loop {
        if out.capacity() - out.len() < 64 {
            out.reserve(out.capacity().max(256));
        }
        let before = c.total_in();
        c.compress_vec(input, &mut out, FlushCompress::Sync)
            .unwrap();
        input = &input[(c.total_in() - before) as usize..];
        if input.is_empty() && out.len() < out.capacity() {
            break;
        }
    }
    assert!(
        out.ends_with(&[0, 0, 0xff, 0xff]),
        "sync flush ends with the empty stored block"
    );
    out.truncate(out.len() - 4);
    out
}

/// A non-final piece of a message from the independent peer: flushed, the
/// tail kept (only the message's end loses it).
fn peer_compress_part(c: &mut Compress, data: &[u8]) -> Vec<u8> {
    let mut out = peer_compress(c, data);
    out.extend_from_slice(&[0, 0, 0xff, 0xff]);
    out
}

/// The independent receiver: append the tail and inflate (§7.2.2), in
/// output steps of at most `step` bytes (small steps make zlib check every
/// back-reference against its window instead of the output buffer).
fn peer_inflate(d: &mut Decompress, payload: &[u8], step: usize) -> Result<Vec<u8>, String> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::new();
    let mut pos = 0;
    loop {
        let mut chunk = Vec::with_capacity(step);
        let before = d.total_in();
        d.decompress_vec(&input[pos..], &mut chunk, FlushDecompress::None)
            .map_err(|e| e.to_string())?;
        let consumed = (d.total_in() - before) as usize;
        pos += consumed;
        out.extend_from_slice(&chunk);
        if pos == input.len() && chunk.len() < step {
            return Ok(out);
        }
        if consumed == 0 && chunk.is_empty() {
            return Err(format!("stuck at input byte {pos} of {}", input.len()));
        }
    }
}

/// Concatenate a data message's frames as the receiver sees them: kind,
/// compressed flag (RSV1 of the first frame), payload.
fn reassemble(frames: &[Frame]) -> Vec<(OpCode, bool, Vec<u8>)> {
    let mut out = Vec::new();
    let mut cur: Option<(OpCode, bool, Vec<u8>)> = None;
    for f in frames {
        match f.header.opcode {
            OpCode::Text | OpCode::Binary => {
                assert!(cur.is_none(), "a new message inside a message");
                cur = Some((f.header.opcode, f.header.rsv1, f.payload.to_vec()));
            }
            OpCode::Continuation => {
                assert!(!f.header.rsv1, "RSV1 on a continuation frame");
                cur.as_mut()
                    .expect("continuation without a message")
                    .2
                    .extend_from_slice(&f.payload);
            }
            _ => continue,
        }
        if f.header.fin {
            out.push(cur.take().unwrap());
        }
    }
    assert!(cur.is_none(), "unfinished message on the wire");
    out
}

// ===================================================== negotiation (§7.1)

#[test]
fn client_offers_render_every_parameter() {
    let cases: &[(DeflateConfig, &str)] = &[
        (cfg(), "permessage-deflate; client_max_window_bits"),
        (
            cfg_with(|c| c.server_no_context_takeover = true),
            "permessage-deflate; server_no_context_takeover; client_max_window_bits",
        ),
        (
            cfg_with(|c| c.client_no_context_takeover = true),
            "permessage-deflate; client_no_context_takeover; client_max_window_bits",
        ),
        (
            cfg_with(|c| c.server_max_window_bits = 10),
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits",
        ),
        (
            cfg_with(|c| c.client_max_window_bits = 9),
            "permessage-deflate; client_max_window_bits=9",
        ),
        (
            cfg_with(|c| {
                c.server_no_context_takeover = true;
                c.client_no_context_takeover = true;
                c.server_max_window_bits = 8;
                c.client_max_window_bits = 12;
            }),
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=8; client_max_window_bits=12",
        ),
        // out-of-range values are clamped to 8..=15
        (
            cfg_with(|c| {
                c.server_max_window_bits = 3;
                c.client_max_window_bits = 40;
            }),
            "permessage-deflate; server_max_window_bits=8; client_max_window_bits",
        ),
    ];
    for (c, want) in cases {
        assert_eq!(c.offer(), *want);
        // every offer is one our own server accepts
        assert!(cfg().accept_offer(&offers(&c.offer())).is_some(), "{want}");
    }
}

#[test]
fn server_answers_offers_per_rfc_7692_section_7() {
    let server = cfg();
    let cases: &[(&str, Option<&str>)] = &[
        ("permessage-deflate", Some("permessage-deflate")),
        // a bare client_max_window_bits only says the client could be limited
        (
            "permessage-deflate; client_max_window_bits",
            Some("permessage-deflate"),
        ),
        (
            "permessage-deflate; server_no_context_takeover",
            Some("permessage-deflate; server_no_context_takeover"),
        ),
        (
            "permessage-deflate; client_no_context_takeover",
            Some("permessage-deflate; client_no_context_takeover"),
        ),
        (
            "permessage-deflate; server_max_window_bits=10",
            Some("permessage-deflate; server_max_window_bits=10"),
        ),
        (
            "permessage-deflate; server_max_window_bits=15",
            Some("permessage-deflate; server_max_window_bits=15"),
        ),
        (
            "permessage-deflate; client_max_window_bits=11",
            Some("permessage-deflate; client_max_window_bits=11"),
        ),
        (
            "permessage-deflate; server_max_window_bits=8",
            Some("permessage-deflate; server_max_window_bits=8"),
        ),
        // all four parameters
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
             server_max_window_bits=9; client_max_window_bits=12",
            Some(
                "permessage-deflate; server_no_context_takeover; client_no_context_takeover; \
                 server_max_window_bits=9; client_max_window_bits=12",
            ),
        ),
        // quoted values are unquoted first (§7.1: after unescaping)
        (
            "permessage-deflate; server_max_window_bits=\"12\"",
            Some("permessage-deflate; server_max_window_bits=12"),
        ),
        // parameter names are matched case-insensitively
        (
            "permessage-deflate; Server_No_Context_Takeover",
            Some("permessage-deflate; server_no_context_takeover"),
        ),
        // --- declined (§7.1: unknown, duplicate or invalid parameters)
        ("permessage-deflate; foo", None),
        ("permessage-deflate; foo=1", None),
        (
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
            None,
        ),
        (
            "permessage-deflate; client_no_context_takeover; CLIENT_NO_CONTEXT_TAKEOVER",
            None,
        ),
        (
            "permessage-deflate; server_max_window_bits=10; server_max_window_bits=11",
            None,
        ),
        (
            "permessage-deflate; client_max_window_bits; client_max_window_bits=10",
            None,
        ),
        ("permessage-deflate; server_no_context_takeover=1", None),
        ("permessage-deflate; client_no_context_takeover=true", None),
        ("permessage-deflate; server_max_window_bits", None),
        ("permessage-deflate; server_max_window_bits=7", None),
        ("permessage-deflate; server_max_window_bits=16", None),
        ("permessage-deflate; server_max_window_bits=08", None),
        ("permessage-deflate; server_max_window_bits=010", None),
        ("permessage-deflate; server_max_window_bits=abc", None),
        ("permessage-deflate; client_max_window_bits=0", None),
        ("permessage-deflate; client_max_window_bits=16", None),
        // other extensions are not ours to accept
        ("x-webkit-deflate-frame", None),
        ("deflate-frame; no_context_takeover", None),
    ];
    for (offer, want) in cases {
        assert_eq!(
            server_answer(&server, offer).as_deref(),
            *want,
            "offer {offer:?}"
        );
    }
}

#[test]
fn server_takes_the_first_acceptable_offer_in_preference_order() {
    let server = cfg();
    let cases: &[(&str, Option<&str>)] = &[
        (
            "permessage-deflate; server_max_window_bits=10, permessage-deflate",
            Some("permessage-deflate; server_max_window_bits=10"),
        ),
        (
            "permessage-deflate, permessage-deflate; server_max_window_bits=10",
            Some("permessage-deflate"),
        ),
        // invalid offers are skipped, not fatal
        (
            "permessage-deflate; foo, permessage-deflate; client_no_context_takeover",
            Some("permessage-deflate; client_no_context_takeover"),
        ),
        (
            "permessage-deflate; server_max_window_bits=16, permessage-deflate; server_max_window_bits=9",
            Some("permessage-deflate; server_max_window_bits=9"),
        ),
        (
            "x-webkit-deflate-frame, permessage-deflate; client_max_window_bits",
            Some("permessage-deflate"),
        ),
        (
            "permessage-deflate; a, permessage-deflate; b, permessage-deflate; c",
            None,
        ),
    ];
    for (offer, want) in cases {
        assert_eq!(server_answer(&server, offer).as_deref(), *want, "{offer:?}");
    }
    // over a real handshake, two ClientRequest::deflate offers
    let strict = cfg_with(|c| {
        c.server_no_context_takeover = true;
        c.server_max_window_bits = 9;
    });
    let p = handshake_with(&[strict.clone(), cfg()], Some(cfg()), &Config::default()).unwrap();
    assert_eq!(
        p.request.as_deref(),
        Some(
            "permessage-deflate; server_no_context_takeover; server_max_window_bits=9; \
             client_max_window_bits, permessage-deflate; client_max_window_bits"
        )
    );
    assert_eq!(
        p.response.as_deref(),
        Some("permessage-deflate; server_no_context_takeover; server_max_window_bits=9")
    );
    let params = p.accepted.deflate.clone().unwrap();
    assert!(params.server_no_context_takeover);
    assert_eq!(params.server_max_window_bits, 9);
    assert_eq!(p.server.deflate_params(), Some(&params));
    assert_eq!(p.client.deflate_params(), Some(&params));
    // a server that limits the client's window answers the first offer
    let limit_client = cfg_with(|c| c.client_max_window_bits = 10);
    let p = handshake_with(&[cfg(), strict], Some(limit_client), &Config::default()).unwrap();
    assert_eq!(
        p.response.as_deref(),
        Some("permessage-deflate; client_max_window_bits=10")
    );
}

#[test]
fn server_policy_is_applied_to_the_answer() {
    let offer_all = "permessage-deflate; client_max_window_bits";
    let cases: &[(DeflateConfig, &str, &str)] = &[
        // the server's own context takeover and window
        (
            cfg_with(|c| c.server_no_context_takeover = true),
            "permessage-deflate",
            "permessage-deflate; server_no_context_takeover",
        ),
        (
            cfg_with(|c| c.server_max_window_bits = 12),
            "permessage-deflate",
            "permessage-deflate; server_max_window_bits=12",
        ),
        // the smaller of the offer and the policy
        (
            cfg_with(|c| c.server_max_window_bits = 12),
            "permessage-deflate; server_max_window_bits=10",
            "permessage-deflate; server_max_window_bits=10",
        ),
        (
            cfg_with(|c| c.server_max_window_bits = 10),
            "permessage-deflate; server_max_window_bits=12",
            "permessage-deflate; server_max_window_bits=10",
        ),
        // the client is limited only if it offered client_max_window_bits
        (
            cfg_with(|c| c.client_max_window_bits = 10),
            offer_all,
            "permessage-deflate; client_max_window_bits=10",
        ),
        (
            cfg_with(|c| c.client_max_window_bits = 10),
            "permessage-deflate; client_max_window_bits=9",
            "permessage-deflate; client_max_window_bits=9",
        ),
        (
            cfg_with(|c| c.client_max_window_bits = 10),
            "permessage-deflate",
            "permessage-deflate",
        ),
        // requiring client_no_context_takeover
        (
            cfg_with(|c| c.client_no_context_takeover = true),
            offer_all,
            "permessage-deflate; client_no_context_takeover",
        ),
    ];
    for (server, offer, want) in cases {
        assert_eq!(
            server_answer(server, offer).as_deref(),
            Some(*want),
            "{server:?} / {offer}"
        );
    }
    // what was answered is what the connection uses
    let p = cfg_with(|c| c.client_max_window_bits = 10)
        .accept_offer(&offers("permessage-deflate"))
        .unwrap();
    assert_eq!(
        p.client_max_window_bits, 15,
        "not offered: the client keeps 15"
    );
}

#[test]
fn client_accepts_only_responses_that_fit_its_offer() {
    let default = cfg();
    let limited = cfg_with(|c| {
        c.server_max_window_bits = 10;
        c.client_max_window_bits = 11;
    });
    let wants_snct = cfg_with(|c| c.server_no_context_takeover = true);
    let ok: &[(&DeflateConfig, &str)] = &[
        (&default, "permessage-deflate"),
        // the server may add these on its own (§7.1.1.1, §7.1.1.2, §7.1.2.1)
        (&default, "permessage-deflate; server_no_context_takeover"),
        (&default, "permessage-deflate; client_no_context_takeover"),
        (&default, "permessage-deflate; server_max_window_bits=10"),
        (&default, "permessage-deflate; client_max_window_bits=9"),
        (&default, "permessage-deflate; client_max_window_bits=15"),
        (&limited, "permessage-deflate; server_max_window_bits=10"),
        (
            &limited,
            "permessage-deflate; server_max_window_bits=9; client_max_window_bits=11",
        ),
        (
            &wants_snct,
            "permessage-deflate; server_no_context_takeover",
        ),
    ];
    for (c, r) in ok {
        assert!(client_verdict(c, r).is_ok(), "{c:?} must accept {r:?}");
    }
    let bad: &[(&DeflateConfig, &str)] = &[
        (&default, "permessage-deflate; foo"),
        (
            &default,
            "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        ),
        // §7.1.2.2: a response carries client_max_window_bits with a value
        (&default, "permessage-deflate; client_max_window_bits"),
        (&default, "permessage-deflate; client_max_window_bits=16"),
        (&default, "permessage-deflate; server_max_window_bits=16"),
        (&default, "permessage-deflate; server_max_window_bits=07"),
        (&default, "permessage-deflate; server_max_window_bits"),
        (&default, "permessage-deflate; client_no_context_takeover=1"),
        // larger than offered
        (&limited, "permessage-deflate; server_max_window_bits=11"),
        (
            &limited,
            "permessage-deflate; server_max_window_bits=10; client_max_window_bits=12",
        ),
        // we asked for server_no_context_takeover: an acceptance carries it
        (&wants_snct, "permessage-deflate"),
    ];
    for (c, r) in bad {
        assert!(client_verdict(c, r).is_err(), "{c:?} must refuse {r:?}");
    }
    // what the accepted response says is what the connection uses
    let p = client_verdict(
        &default,
        "permessage-deflate; server_max_window_bits=10; client_max_window_bits=9",
    )
    .unwrap();
    assert_eq!(
        (p.server_max_window_bits, p.client_max_window_bits),
        (10, 9)
    );
    // a client that offered a window value uses it if the server says nothing
    let p = client_verdict(&limited, "permessage-deflate; server_max_window_bits=10").unwrap();
    assert_eq!(p.client_max_window_bits, 11);
}

#[test]
fn client_refuses_a_response_that_drops_an_offered_server_window() {
    let limited = cfg_with(|c| c.server_max_window_bits = 10);
    assert!(client_verdict(&limited, "permessage-deflate").is_err());
}

#[test]
fn client_handshake_fails_on_responses_it_did_not_offer() {
    // no offer at all
    let e = client_gets_response(&[], &["permessage-deflate"]).unwrap_err();
    assert_eq!(e, HandshakeError::UnofferedExtension);
    // two permessage-deflate elements (in one header or two)
    assert!(client_gets_response(&[cfg()], &["permessage-deflate, permessage-deflate"]).is_err());
    assert!(client_gets_response(&[cfg()], &["permessage-deflate", "permessage-deflate"]).is_err());
    // a response that fits none of several offers
    let a = cfg_with(|c| c.server_max_window_bits = 10);
    let b = cfg_with(|c| c.server_max_window_bits = 12);
    assert!(client_gets_response(
        &[a.clone(), b.clone()],
        &["permessage-deflate; server_max_window_bits=13"]
    )
    .is_err());
    // one that fits the second offer
    let ok =
        client_gets_response(&[a, b], &["permessage-deflate; server_max_window_bits=11"]).unwrap();
    assert_eq!(ok.deflate.unwrap().server_max_window_bits, 11);
    // no answer: no compression
    let none = client_gets_response(&[cfg()], &[]).unwrap();
    assert_eq!(none.deflate, None);
    assert!(none.extensions.is_empty());
}

#[test]
fn server_without_deflate_declines_and_rsv1_stays_a_protocol_error() {
    let p = handshake_with(&[cfg()], None, &Config::default()).unwrap();
    assert_eq!(
        p.request.as_deref(),
        Some("permessage-deflate; client_max_window_bits")
    );
    assert_eq!(p.response, None);
    assert_eq!(p.accepted.deflate, None);
    let Pair {
        mut client,
        mut server,
        ..
    } = p;
    assert_eq!(server.deflate_params(), None);
    // messages flow uncompressed
    let (f, ev) = transfer(&mut client, &mut server, Message::text("x".repeat(1000)));
    assert!(!f[0].header.rsv1);
    assert_eq!(ev, [Event::Message(Message::text("x".repeat(1000)))]);
    // RSV1 without negotiation: 1002
    server.receive(&raw_frame(
        Role::Client,
        OpCode::Text,
        true,
        true,
        &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00],
    ));
    let e = failure(&mut server);
    assert_eq!(e, Error::Protocol(ProtocolError::ReservedBits));
    assert_eq!(e.close_code(), Some(CloseCode::PROTOCOL_ERROR));
    assert_eq!(sole_close_code(&drain(&mut server), Role::Server), 1002);
}

#[test]
fn server_no_context_takeover_is_honoured() {
    let client = cfg_with(|c| {
        c.server_no_context_takeover = true;
        c.threshold = 0;
    });
    let Pair {
        mut client,
        mut server,
        response,
        ..
    } = handshake(client, cfg());
    assert_eq!(
        response.as_deref(),
        Some("permessage-deflate; server_no_context_takeover")
    );
    let msg = chat_text(1, 600);
    let mut payloads = Vec::new();
    for _ in 0..3 {
        let (f, ev) = transfer(&mut server, &mut client, Message::text(msg.as_str()));
        assert_eq!(ev, [Event::Message(Message::text(msg.as_str()))]);
        assert!(f[0].header.rsv1);
        payloads.push(f[0].payload.clone());
    }
    // no shared window: every copy compresses to the same bytes
    assert_eq!(payloads[0], payloads[1]);
    assert_eq!(payloads[1], payloads[2]);
    // while the client (context takeover) gets shorter each time
    let mut sizes = Vec::new();
    for _ in 0..2 {
        let (f, _) = transfer(&mut client, &mut server, Message::text(msg.as_str()));
        sizes.push(f[0].payload.len());
    }
    assert!(sizes[1] * 4 < sizes[0], "context takeover: {sizes:?}");
}

// ======================================================= round trips (§7.2)

/// Every message both ways over a negotiated pair, each arriving intact.
fn round_trip(pair: &mut Pair, msgs: &[Message]) {
    for m in msgs {
        let (_, ev) = transfer(&mut pair.client, &mut pair.server, m.clone());
        assert_eq!(ev, [Event::Message(m.clone())], "client -> server");
        let (_, ev) = transfer(&mut pair.server, &mut pair.client, m.clone());
        assert_eq!(ev, [Event::Message(m.clone())], "server -> client");
    }
}

fn sample_messages() -> Vec<Message> {
    let mut v = vec![
        Message::text(""),
        Message::binary(Bytes::new()),
        Message::text("Hello"),
        Message::text(chat_text(0, 100)),
        Message::text(chat_text(0, 100)),
        Message::text(chat_text(7, 2000)),
        Message::binary(noise(3000, 1)),
        Message::text("€uro ✓ 日本語 😀 ".repeat(300)),
        Message::binary(vec![0u8; 70_000]),
    ];
    v.push(v[3].clone());
    v
}

#[test]
fn round_trips_with_and_without_context_takeover_on_each_side() {
    for snct in [false, true] {
        for cnct in [false, true] {
            let client = cfg_with(|c| {
                c.server_no_context_takeover = snct;
                c.client_no_context_takeover = cnct;
            });
            let mut pair = handshake(client, cfg());
            let p = pair.accepted.deflate.clone().unwrap();
            assert_eq!(
                (p.server_no_context_takeover, p.client_no_context_takeover),
                (snct, cnct)
            );
            round_trip(&mut pair, &sample_messages());
            // the same message twice: identical payloads exactly when the
            // sender keeps no context
            let m = Message::text(chat_text(3, 800));
            for (from_client, nct) in [(true, cnct), (false, snct)] {
                let mut sizes = Vec::new();
                for _ in 0..2 {
                    let (from, to) = if from_client {
                        (&mut pair.client, &mut pair.server)
                    } else {
                        (&mut pair.server, &mut pair.client)
                    };
                    let (f, ev) = transfer(from, to, m.clone());
                    assert_eq!(ev, [Event::Message(m.clone())]);
                    assert!(f[0].header.rsv1);
                    sizes.push(f[0].payload.clone());
                }
                if nct {
                    assert_eq!(sizes[0], sizes[1], "no context takeover: same bytes");
                } else {
                    assert!(
                        sizes[1].len() * 4 < sizes[0].len(),
                        "context takeover shrinks the repeat"
                    );
                }
            }
        }
    }
}

#[test]
fn window_bits_8_to_15_on_each_side() {
    for bits in 8..=15u8 {
        let client = cfg_with(|c| {
            c.server_max_window_bits = bits;
            c.client_max_window_bits = bits;
        });
        let mut pair = handshake(client, cfg());
        // 15 is the default: nothing to say
        let want = if bits == 15 {
            "permessage-deflate".to_string()
        } else {
            format!(
                "permessage-deflate; server_max_window_bits={bits}; client_max_window_bits={bits}"
            )
        };
        assert_eq!(pair.response.as_deref(), Some(want.as_str()));
        round_trip(&mut pair, &sample_messages());
        // a random chunk repeated at 1/4 of the window (in reach) and at
        // 1.5 windows (out of reach): both sides' output must decode with an
        // inflater of exactly `bits` (every back-reference checked against
        // the window), and reach back only as far as allowed
        let w = 1usize << bits.max(9);
        let near = noise(w / 4, bits as u32);
        let far = noise(w * 3 / 2, bits as u32 + 100);
        let mut msg = Vec::new();
        msg.extend_from_slice(&near);
        msg.extend_from_slice(&near);
        msg.extend_from_slice(&far);
        msg.extend_from_slice(&far);
        for from_client in [true, false] {
            let mut inflater = Decompress::new_with_window_bits(false, bits.max(9));
            for round in 0..2 {
                let (from, to) = if from_client {
                    (&mut pair.client, &mut pair.server)
                } else {
                    (&mut pair.server, &mut pair.client)
                };
                let (f, ev) = transfer(from, to, Message::binary(msg.clone()));
                assert_eq!(ev, [Event::Message(Message::binary(msg.clone()))]);
                if bits == 8 {
                    // zlib cannot compress with a 256-byte window: sent plain
                    assert!(!f[0].header.rsv1, "8 bits: uncompressed");
                    assert_eq!(&f[0].payload[..], &msg[..]);
                    continue;
                }
                assert!(f[0].header.rsv1);
                let out = peer_inflate(&mut inflater, &f[0].payload, 64)
                    .unwrap_or_else(|e| panic!("{bits} bits, round {round}: {e}"));
                assert_eq!(out, msg, "{bits} bits");
                // the near repeat was found; the far one could not be
                let len = f[0].payload.len();
                assert!(len < near.len() + 2 * far.len() + 500, "{bits}: {len}");
                assert!(
                    len > near.len() + 2 * far.len() - far.len() / 8,
                    "{bits}: reached too far: {len}"
                );
            }
        }
    }
}

#[test]
fn eight_bit_windows_mean_our_side_sends_plain() {
    // the client limits the server to 8 bits: the server sends plain, the
    // client still compresses
    let client = cfg_with(|c| c.server_max_window_bits = 8);
    let mut pair = handshake(client, cfg());
    let m = Message::text(chat_text(1, 1500));
    let (f, ev) = transfer(&mut pair.server, &mut pair.client, m.clone());
    assert_eq!(ev, [Event::Message(m.clone())]);
    assert!(!f[0].header.rsv1);
    let (f, ev) = transfer(&mut pair.client, &mut pair.server, m.clone());
    assert_eq!(ev, [Event::Message(m.clone())]);
    assert!(f[0].header.rsv1);
    // fragmented sends decide the same way
    pair.server
        .send_fragment(MessageKind::Text, Bytes::from(chat_text(2, 300)), false)
        .unwrap();
    pair.server
        .send_fragment(MessageKind::Text, Bytes::from(chat_text(3, 300)), true)
        .unwrap();
    let f = pump(&mut pair.server, &mut pair.client);
    assert!(f.iter().all(|f| !f.header.rsv1));
    assert_eq!(
        poll_all(&mut pair.client).unwrap(),
        [Event::Message(Message::text(
            chat_text(2, 300) + &chat_text(3, 300)
        ))]
    );
    // a peer compressing with an 8-bit window (zlib really uses 9 bits;
    // here an independent encoder at 9) is inflated fine
    let mut server = conn_with(
        Role::Server,
        "permessage-deflate; client_max_window_bits=8",
        &cfg(),
        Config::default(),
    );
    assert_eq!(server.deflate_params().unwrap().client_max_window_bits, 8);
    let mut c = Compress::new_with_window_bits(Compression::default(), false, 9);
    let text = chat_text(9, 3000);
    server.receive(&raw_frame(
        Role::Client,
        OpCode::Text,
        true,
        true,
        &peer_compress(&mut c, text.as_bytes()),
    ));
    assert_eq!(
        poll_all(&mut server).unwrap(),
        [Event::Message(Message::text(text))]
    );
}

// ------------------------------------------------- RFC 7692 §7.2.3 examples

/// Receive `wire` (server frames) on a client whose parameters come from
/// the default server policy answering `params_offer`.
fn client_receives(wire: &[&[u8]], params_offer: &str) -> Result<Vec<Event>, Error> {
    let mut client = conn_with(Role::Client, params_offer, &cfg(), Config::default());
    let mut events = Vec::new();
    for w in wire {
        client.receive(w);
        events.extend(poll_all(&mut client)?);
    }
    Ok(events)
}

#[test]
fn rfc_7692_examples_are_received_byte_exact() {
    let hello = || Event::Message(Message::text("Hello"));
    let pmd = "permessage-deflate";
    // §7.2.3.1: one compressed block, whole and fragmented
    let one = [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(client_receives(&[&one], pmd).unwrap(), [hello()]);
    let frag1 = [0x41, 0x03, 0xf2, 0x48, 0xcd];
    let frag2 = [0x80, 0x04, 0xc9, 0xc9, 0x07, 0x00];
    assert_eq!(client_receives(&[&frag1, &frag2], pmd).unwrap(), [hello()]);
    // byte by byte
    let mut all = frag1.to_vec();
    all.extend_from_slice(&frag2);
    let bytes: Vec<&[u8]> = all.chunks(1).collect();
    assert_eq!(client_receives(&bytes, pmd).unwrap(), [hello()]);
    // §7.2.3.2: the second "Hello" refers back into the first message
    let second = [0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00];
    assert_eq!(
        client_receives(&[&one, &second], pmd).unwrap(),
        [hello(), hello()]
    );
    // ... which is invalid without the first (distance too far back): 1007
    let e = client_receives(&[&second], pmd).unwrap_err();
    assert_eq!(e, Error::Protocol(ProtocolError::InvalidCompressedData));
    assert_eq!(e.close_code(), Some(CloseCode::INVALID_DATA));
    // §7.2.3.3: a stored block
    let stored = [
        0xc1, 0x0b, 0x00, 0x05, 0x00, 0xfa, 0xff, 0x48, 0x65, 0x6c, 0x6c, 0x6f, 0x00,
    ];
    assert_eq!(client_receives(&[&stored], pmd).unwrap(), [hello()]);
    // §7.2.3.4: BFINAL set; the next message starts a fresh stream
    let bfinal = [0xc1, 0x08, 0xf3, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00, 0x00];
    assert_eq!(
        client_receives(&[&bfinal, &bfinal, &one], pmd).unwrap(),
        [hello(), hello(), hello()]
    );
    // §7.2.3.5: two blocks in one message
    let two = [
        0xc1, 0x0d, 0xf2, 0x48, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xca, 0xc9, 0xc9, 0x07, 0x00,
    ];
    assert_eq!(client_receives(&[&two], pmd).unwrap(), [hello()]);
    // §7.2.3.6: an empty message as a lone 0x00, and as an empty payload
    let empty = [0xc1, 0x01, 0x00];
    assert_eq!(
        client_receives(&[&empty], pmd).unwrap(),
        [Event::Message(Message::text(""))]
    );
    let empty_payload = [0xc2, 0x00];
    assert_eq!(
        client_receives(&[&empty_payload], pmd).unwrap(),
        [Event::Message(Message::binary(Bytes::new()))]
    );
    // and a compressed message fragmented with an empty final fragment
    let frag_empty_end = [0x80, 0x00];
    let mut first_all = vec![0x41, 0x07];
    first_all.extend_from_slice(&one[2..]);
    assert_eq!(
        client_receives(&[&first_all, &frag_empty_end], pmd).unwrap(),
        [hello()]
    );
    // with no_context_takeover the examples decode the same
    let nct = "permessage-deflate; server_no_context_takeover";
    assert_eq!(
        client_receives(&[&one, &one], nct).unwrap(),
        [hello(), hello()]
    );
    // and in streaming mode
    let mut client = conn_with(Role::Client, pmd, &cfg(), streaming());
    client.receive(&one);
    client.receive(&second);
    let ev = poll_all(&mut client).unwrap();
    let text: Vec<u8> = ev
        .iter()
        .flat_map(|e| match e {
            Event::Fragment {
                kind: MessageKind::Text,
                data,
                ..
            } => data.to_vec(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(text, b"HelloHello");
}

#[test]
fn rfc_7692_hello_is_sent_byte_exact() {
    let low = cfg_with(|c| c.threshold = 0);
    let mut server = conn_with(Role::Server, "permessage-deflate", &low, Config::default());
    server.send(Message::text("Hello")).unwrap();
    assert_eq!(
        drain(&mut server),
        [0xc1, 0x07, 0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
    );
    server.send(Message::text("Hello")).unwrap();
    assert_eq!(
        drain(&mut server),
        [0xc1, 0x05, 0xf2, 0x00, 0x11, 0x00, 0x00]
    );
    // an empty message: the lone 0x00 of §7.2.3.6 (both the first time and
    // later, when zlib has nothing left to flush)
    server.send(Message::text("")).unwrap();
    assert_eq!(drain(&mut server), [0xc1, 0x01, 0x00]);
    server.send(Message::text("")).unwrap();
    assert_eq!(drain(&mut server), [0xc1, 0x01, 0x00]);
    // from a client: masked, the same payload
    let mut client = conn_with(Role::Client, "permessage-deflate", &low, Config::default());
    client.send(Message::text("Hello")).unwrap();
    let f = frames(&drain(&mut client), Role::Client);
    assert!(f[0].header.rsv1 && f[0].header.fin && f[0].header.mask.is_some());
    assert_eq!(
        &f[0].payload[..],
        [0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]
    );
}

// ------------------------------------------------------------ RSV1 rules (§6)

#[test]
fn rsv1_is_set_on_the_first_frame_only() {
    let low = cfg_with(|c| c.threshold = 0);
    let mut pair = handshake(low.clone(), low);
    let parts = ["Hel", "lo, w", "\u{f6}rld", "", " \u{20ac}"];
    for (i, p) in parts.iter().enumerate() {
        pair.client
            .send_fragment(MessageKind::Text, Bytes::from(*p), i == parts.len() - 1)
            .unwrap();
        if i == 1 {
            pair.client.ping(Bytes::from_static(b"mid")).unwrap();
        }
    }
    let f = pump(&mut pair.client, &mut pair.server);
    let data: Vec<&Frame> = f.iter().filter(|f| !f.header.opcode.is_control()).collect();
    assert_eq!(data.len(), parts.len());
    assert!(data[0].header.rsv1 && data[0].header.opcode == OpCode::Text);
    for d in &data[1..] {
        assert!(!d.header.rsv1, "continuation frames carry no RSV1");
        assert_eq!(d.header.opcode, OpCode::Continuation);
    }
    assert!(f
        .iter()
        .filter(|f| f.header.opcode.is_control())
        .all(|f| !f.header.rsv1));
    let ev = poll_all(&mut pair.server).unwrap();
    assert_eq!(
        ev,
        [
            Event::Ping(Bytes::from_static(b"mid")),
            Event::Message(Message::text("Hello, w\u{f6}rld \u{20ac}"))
        ]
    );
    // the reassembled payload is one deflate stream, as a peer decodes it
    let msgs = reassemble(&f);
    let mut d = Decompress::new(false);
    assert_eq!(
        peer_inflate(&mut d, &msgs[0].2, 1 << 16).unwrap(),
        "Hello, w\u{f6}rld \u{20ac}".as_bytes()
    );
}

#[test]
fn rsv1_on_a_continuation_frame_fails_with_1002() {
    for compressed_first in [true, false] {
        let mut server = conn_with(
            Role::Server,
            "permessage-deflate",
            &cfg(),
            Config::default(),
        );
        let first: &[u8] = if compressed_first {
            &[0xf2, 0x48, 0xcd]
        } else {
            b"Hel"
        };
        server.receive(&raw_frame(
            Role::Client,
            OpCode::Text,
            false,
            compressed_first,
            first,
        ));
        server.receive(&raw_frame(
            Role::Client,
            OpCode::Continuation,
            true,
            true,
            &[0xc9, 0xc9, 0x07, 0x00],
        ));
        let e = failure(&mut server);
        assert_eq!(
            e,
            Error::Protocol(ProtocolError::ReservedBits),
            "compressed first: {compressed_first}"
        );
        assert_eq!(sole_close_code(&drain(&mut server), Role::Server), 1002);
    }
}

#[test]
fn rsv1_on_control_frames_and_rsv2_rsv3_fail_with_1002() {
    for opcode in [OpCode::Ping, OpCode::Pong, OpCode::Close] {
        let mut server = conn_with(
            Role::Server,
            "permessage-deflate",
            &cfg(),
            Config::default(),
        );
        let payload: &[u8] = if opcode == OpCode::Close {
            &[0x03, 0xe8]
        } else {
            b"x"
        };
        server.receive(&raw_frame(Role::Client, opcode, true, true, payload));
        let e = failure(&mut server);
        assert_eq!(
            e,
            Error::Protocol(ProtocolError::ReservedBits),
            "{opcode:?}"
        );
        assert_eq!(e.close_code(), Some(CloseCode::PROTOCOL_ERROR));
    }
    // RSV2 / RSV3 stay unclaimed
    for (rsv2, rsv3) in [(true, false), (false, true)] {
        let mut client = conn_with(
            Role::Client,
            "permessage-deflate",
            &cfg(),
            Config::default(),
        );
        let mut h = FrameHeader::new(OpCode::Text, 0);
        h.rsv1 = true;
        h.rsv2 = rsv2;
        h.rsv3 = rsv3;
        let mut out = BytesMut::new();
        encode_frame(&mut out, &h, &[0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]);
        client.receive(&out);
        assert_eq!(
            failure(&mut client),
            Error::Protocol(ProtocolError::ReservedBits)
        );
    }
}

// --------------------------------------------------- invalid data: 1007

#[test]
fn invalid_compressed_data_fails_with_1007() {
    // a fixed-Huffman block whose first symbol is a match (length 3, code
    // 257 = 0000001, distance 1): there is nothing to copy from
    let mut w = Bits::new();
    w.put(0, 1);
    w.put(1, 2);
    w.code(1, 7);
    w.code(0, 5);
    let too_far = w.pad();
    let cases: &[(&str, Vec<u8>)] = &[
        ("reserved block type 11", vec![0xff, 0xff, 0xff]),
        (
            "stored block LEN/NLEN mismatch",
            vec![0x00, 0x05, 0x00, 0x00, 0x00, b'H'],
        ),
        ("distance too far back", too_far),
    ];
    for streaming_mode in [false, true] {
        for (what, payload) in cases {
            let config = if streaming_mode {
                streaming()
            } else {
                Config::default()
            };
            let mut server = conn_with(Role::Server, "permessage-deflate", &cfg(), config);
            server.receive(&raw_frame(
                Role::Client,
                OpCode::Binary,
                true,
                true,
                payload,
            ));
            let e = failure(&mut server);
            assert_eq!(
                e,
                Error::Protocol(ProtocolError::InvalidCompressedData),
                "{what}"
            );
            assert_eq!(e.close_code(), Some(CloseCode::INVALID_DATA), "{what}");
            assert_eq!(
                sole_close_code(&drain(&mut server), Role::Server),
                1007,
                "{what}"
            );
        }
    }
}

#[test]
fn invalid_utf8_after_inflating_fails_fast_with_1007() {
    // "valid text, then 0xff" is flushed as its own deflate block, followed
    // by 100 KB more: the connection must fail on the first part alone
    for streaming_mode in [false, true] {
        let mut c = Compress::new(Compression::default(), false);
        let mut head = b"{\"text\":\"fine so far ".to_vec();
        head.push(0xff);
        let mut payload = peer_compress_part(&mut c, &head);
        let cut = payload.len();
        payload.extend(peer_compress(&mut c, chat_text(1, 100_000).as_bytes()));
        let frame = raw_frame(Role::Client, OpCode::Text, true, true, &payload);
        let header_len = frame.len() - payload.len();
        let config = if streaming_mode {
            streaming()
        } else {
            Config::default()
        };
        let mut server = conn_with(Role::Server, "permessage-deflate", &cfg(), config);
        server.receive(&frame[..header_len + cut]);
        let e = server.poll_event().unwrap_err();
        assert_eq!(
            e,
            Error::Protocol(ProtocolError::InvalidUtf8),
            "streaming {streaming_mode}"
        );
        assert_eq!(sole_close_code(&drain(&mut server), Role::Server), 1007);
    }
    // an invalid sequence split across deflate blocks and frames
    let mut c = Compress::new(Compression::default(), false);
    let p1 = peer_compress_part(&mut c, b"ok \xe2\x82");
    let p2 = peer_compress(&mut c, b"\x28 nope");
    let mut server = conn_with(
        Role::Server,
        "permessage-deflate",
        &cfg(),
        Config::default(),
    );
    server.receive(&raw_frame(Role::Client, OpCode::Text, false, true, &p1));
    assert_eq!(
        server.poll_event().unwrap(),
        None,
        "an incomplete sequence is fine so far"
    );
    server.receive(&raw_frame(
        Role::Client,
        OpCode::Continuation,
        true,
        false,
        &p2,
    ));
    assert_eq!(
        server.poll_event().unwrap_err(),
        Error::Protocol(ProtocolError::InvalidUtf8)
    );
    // a truncated sequence at the end of the message
    let mut c = Compress::new(Compression::default(), false);
    let mut server = conn_with(
        Role::Server,
        "permessage-deflate",
        &cfg(),
        Config::default(),
    );
    server.receive(&raw_frame(
        Role::Client,
        OpCode::Text,
        true,
        true,
        &peer_compress(&mut c, b"end \xf0\x9f\x98"),
    ));
    assert_eq!(
        server.poll_event().unwrap_err(),
        Error::Protocol(ProtocolError::InvalidUtf8)
    );
}

// ---------------------------------------------------- bombs and the limit

/// Writes a raw deflate stream bit by bit (RFC 1951 §3.1.1: fields LSB
/// first, Huffman codes MSB first).
struct Bits {
    out: Vec<u8>,
    acc: u64,
    n: u32,
}

impl Bits {
    fn new() -> Self {
        Bits {
            out: Vec::new(),
            acc: 0,
            n: 0,
        }
    }
    fn put(&mut self, value: u64, bits: u32) {
        self.acc |= value << self.n;
        self.n += bits;
        while self.n >= 8 {
            self.out.push(self.acc as u8);
            self.acc >>= 8;
            self.n -= 8;
        }
    }
    fn code(&mut self, code: u32, len: u32) {
        let rev = code.reverse_bits() >> (32 - len);
        self.put(rev as u64, len);
    }
    /// `count` zero bits, fast.
    fn zeros(&mut self, mut count: u64) {
        while count > 0 && self.n != 0 {
            self.put(0, 1);
            count -= 1;
        }
        self.out.resize(self.out.len() + (count / 8) as usize, 0);
        self.put(0, (count % 8) as u32);
    }
    fn pad(&mut self) -> Vec<u8> {
        if self.n > 0 {
            self.put(0, 8 - self.n);
        }
        std::mem::take(&mut self.out)
    }
}

/// Canonical Huffman codes from code lengths (RFC 1951 §3.2.2).
fn canonical(lengths: &[u32]) -> Vec<u32> {
    let max = *lengths.iter().max().unwrap() as usize;
    let mut count = vec![0u32; max + 1];
    for &l in lengths {
        if l > 0 {
            count[l as usize] += 1;
        }
    }
    let mut next = vec![0u32; max + 2];
    let mut code = 0;
    for bits in 1..=max {
        code = (code + count[bits - 1]) << 1;
        next[bits] = code;
    }
    lengths
        .iter()
        .map(|&l| {
            if l == 0 {
                0
            } else {
                let c = next[l as usize];
                next[l as usize] += 1;
                c
            }
        })
        .collect()
}

/// A permessage-deflate payload (tail stripped) that inflates to `prefix`
/// followed by `repeats` copies of the 258 bytes before each copy: one
/// dynamic-Huffman block where a 258-byte match at distance `prefix.len()`
/// costs 2 bits (the maximum ratio of DEFLATE, about 1:1032).
fn bomb(prefix: &[u8], repeats: u64) -> Vec<u8> {
    let dist = prefix.len();
    assert!((1..=4).contains(&dist));
    // distance codes 0..=3 are the distances 1..=4, no extra bits
    let dist_code = dist - 1;
    let mut lit: Vec<u32> = vec![0; 286];
    // 285 (length 258) gets a 1-bit code; the literals and end-of-block
    // share the other half of the code space
    lit[285] = 1;
    let mut others: Vec<usize> = prefix.iter().map(|&b| b as usize).collect();
    others.sort_unstable();
    others.dedup();
    others.push(256);
    // a complete code of n leaves: 2^m <= n < 2^(m+1), 2(n - 2^m) of them
    // one level deeper; plus one bit for the half they live in
    let n = others.len();
    let m = usize::BITS - 1 - n.leading_zeros();
    let deep = 2 * (n - (1 << m));
    for (i, &s) in others.iter().enumerate() {
        lit[s] = 1 + m + u32::from(i >= n - deep);
    }
    let mut dists: Vec<u32> = vec![0; dist_code + 1];
    dists[dist_code] = 1;
    let lit_codes = canonical(&lit);
    let dist_codes = canonical(&dists);

    // code lengths, run-length encoded with the code-length alphabet
    let all: Vec<u32> = lit.iter().chain(dists.iter()).copied().collect();
    let mut cl_syms: Vec<(u32, u32, u32)> = Vec::new(); // (symbol, extra value, extra bits)
    let mut i = 0;
    while i < all.len() {
        if all[i] == 0 {
            let mut run = 1;
            while i + run < all.len() && all[i + run] == 0 && run < 138 {
                run += 1;
            }
            if run >= 11 {
                cl_syms.push((18, (run - 11) as u32, 7));
            } else if run >= 3 {
                cl_syms.push((17, (run - 3) as u32, 3));
            } else {
                for _ in 0..run {
                    cl_syms.push((0, 0, 0));
                }
            }
            i += run;
        } else {
            cl_syms.push((all[i], 0, 0));
            i += 1;
        }
    }
    // a code for the code-length symbols in use: all get 3 bits, filled up
    // to a complete code with unused symbols (zlib wants it complete)
    let mut cl_len = [0u32; 19];
    let mut used: Vec<u32> = cl_syms.iter().map(|s| s.0).collect();
    used.sort_unstable();
    used.dedup();
    assert!(used.len() <= 8);
    for s in 0..19u32 {
        if used.len() < 8 && !used.contains(&s) {
            used.push(s);
        }
    }
    for &s in &used {
        cl_len[s as usize] = 3;
    }
    let cl_codes = canonical(&cl_len);
    const ORDER: [usize; 19] = [
        16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15,
    ];
    let hclen = ORDER.iter().rposition(|&s| cl_len[s] != 0).unwrap() + 1;

    let mut w = Bits::new();
    w.put(0, 1); // BFINAL
    w.put(2, 2); // dynamic Huffman
    w.put(286 - 257, 5);
    w.put(dists.len() as u64 - 1, 5);
    w.put(hclen as u64 - 4, 4);
    for &s in &ORDER[..hclen] {
        w.put(cl_len[s] as u64, 3);
    }
    for (s, extra, bits) in cl_syms {
        w.code(cl_codes[s as usize], cl_len[s as usize]);
        w.put(extra as u64, bits);
    }
    for &b in prefix {
        w.code(lit_codes[b as usize], lit[b as usize]);
    }
    // each repeat: length code 285 and the distance code, both all-zero
    // 1-bit codes
    assert_eq!((lit_codes[285], dist_codes[dist_code]), (0, 0));
    w.zeros(2 * repeats);
    w.code(lit_codes[256], lit[256]);
    // the sync flush's empty stored block, minus its stripped 00 00 ff ff
    w.put(0, 3);
    w.pad()
}

#[test]
fn the_bomb_builder_makes_valid_deflate() {
    for prefix in [&b"\0"[..], b"ab", "€".as_bytes(), b"xyzw"] {
        let p = bomb(prefix, 1000);
        let mut d = Decompress::new(false);
        let out = peer_inflate(&mut d, &p, 1 << 20).unwrap();
        assert_eq!(out.len(), prefix.len() + 258 * 1000);
        for (i, b) in out.iter().enumerate() {
            assert_eq!(*b, prefix[i % prefix.len()]);
        }
    }
}

const GIB: u64 = 1 << 30;

/// Split a compressed payload into frames of at most `frame` bytes (RSV1
/// on the first), as a client sends them.
fn fragment_frames(kind: OpCode, payload: &[u8], frame: usize) -> Vec<u8> {
    let chunks: Vec<&[u8]> = payload.chunks(frame).collect();
    let mut wire = Vec::new();
    for (i, c) in chunks.iter().enumerate() {
        let op = if i == 0 { kind } else { OpCode::Continuation };
        wire.extend(raw_frame(
            Role::Client,
            op,
            i == chunks.len() - 1,
            i == 0,
            c,
        ));
    }
    wire
}

#[test]
fn a_bomb_fails_with_1009_and_memory_stays_near_the_limit() {
    // 1 GiB of zeros in about 1 MiB of deflate; the message limit is 1 MiB,
    // so about 1 KiB of input is enough to cross it
    let payload = bomb(b"\0", GIB / 258);
    assert!(payload.len() < 1_100_000, "{}", payload.len());
    let wire = fragment_frames(OpCode::Binary, &payload, 64 * KIB);
    let mut config = Config::default();
    config.limits.max_message = MIB;
    let base = peak_reset();
    let mut server = conn_with(Role::Server, "permessage-deflate", &cfg(), config);
    let mut fed = 0;
    let err = loop {
        let chunk = &wire[fed..(fed + KIB).min(wire.len())];
        fed += chunk.len();
        server.receive(chunk);
        match server.poll_event() {
            Ok(None) => assert!(fed < wire.len(), "the whole bomb was accepted"),
            Ok(Some(ev)) => panic!("unexpected {ev:?}"),
            Err(e) => break e,
        }
    };
    let grew = peak() - base;
    match &err {
        Error::Capacity(CapacityError::MessageTooLarge { size, limit }) => {
            assert_eq!(*limit, MIB);
            assert!(*size as usize <= MIB + 1, "inflated past the limit: {size}");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(err.close_code(), Some(CloseCode::TOO_BIG));
    assert_eq!(sole_close_code(&drain(&mut server), Role::Server), 1009);
    assert!(fed <= 3 * KIB, "failed only after {fed} input bytes");
    eprintln!(
        "bomb (reassembling): failed after {fed} input bytes; peak growth {} KiB",
        grew / 1024
    );
    assert!(grew < 2 * MIB as isize, "peak growth {grew} bytes");
}

#[test]
fn a_bomb_in_one_frame_and_one_read_is_bounded_too() {
    // the whole 1 MiB frame arrives at once (its declared size passes a
    // 2 MiB limit): inflating stops at the limit
    let payload = bomb(b"ab", GIB / 258);
    let wire = raw_frame(Role::Client, OpCode::Binary, true, true, &payload);
    let mut config = Config::default();
    config.limits.max_message = 2 * MIB;
    let base = peak_reset();
    let mut server = conn_with(Role::Server, "permessage-deflate", &cfg(), config);
    server.receive(&wire);
    let e = failure(&mut server);
    let grew = peak() - base;
    assert_eq!(e.close_code(), Some(CloseCode::TOO_BIG));
    // input buffer (~1 MiB) + the message buffer (2 MiB) + inflater state
    eprintln!("bomb (one read): peak growth {} KiB", grew / 1024);
    assert!(
        grew < (2 * MIB + wire.len() + MIB / 2) as isize,
        "peak growth {grew} bytes"
    );
}

#[test]
fn a_bomb_in_streaming_mode_delivers_bounded_valid_fragments_then_1009() {
    // text this time, "€" repeated: 64 KiB pieces split code points, which
    // must be held back
    let payload = bomb("€".as_bytes(), GIB / 258);
    let wire = fragment_frames(OpCode::Text, &payload, 16 * KIB);
    let mut config = streaming();
    config.limits.max_message = MIB;
    let base = peak_reset();
    let mut server = conn_with(Role::Server, "permessage-deflate", &cfg(), config);
    let (mut delivered, mut pieces, mut fed) = (0usize, 0, 0);
    let err = 'outer: loop {
        let chunk = &wire[fed..(fed + 4 * KIB).min(wire.len())];
        fed += chunk.len();
        server.receive(chunk);
        loop {
            match server.poll_event() {
                Ok(None) => break,
                Ok(Some(Event::Fragment { kind, data, fin })) => {
                    assert_eq!(kind, MessageKind::Text);
                    assert!(!fin);
                    // a 64 KiB chunk plus up to 3 bytes of a code point
                    // held back from the previous piece
                    assert!(data.len() <= 64 * KIB + 3, "piece of {} bytes", data.len());
                    let s = std::str::from_utf8(&data).expect("each text piece is valid UTF-8");
                    assert!(s.chars().all(|c| c == '€'));
                    delivered += data.len();
                    pieces += 1;
                }
                Ok(Some(other)) => panic!("{other:?}"),
                Err(e) => break 'outer e,
            }
        }
        assert!(fed < wire.len(), "the whole bomb was accepted");
    };
    let grew = peak() - base;
    assert_eq!(err.close_code(), Some(CloseCode::TOO_BIG), "{err:?}");
    assert!(
        delivered <= MIB && delivered > MIB - 64 * KIB,
        "delivered {delivered}"
    );
    assert!(pieces >= 16);
    eprintln!("bomb (streaming): {pieces} pieces, {delivered} bytes, {fed} input bytes; peak growth {} KiB", grew / 1024);
    assert!(grew < MIB as isize / 2, "peak growth {grew} bytes");
}

#[test]
fn the_limit_applies_to_the_inflated_size_exactly() {
    for streaming_mode in [false, true] {
        for (len, ok) in [(100_000usize, true), (100_001, false)] {
            let mut config = if streaming_mode {
                streaming()
            } else {
                Config::default()
            };
            config.limits.max_message = 100_000;
            let mut server = conn_with(Role::Server, "permessage-deflate", &cfg(), config);
            let mut c = Compress::new(Compression::default(), false);
            let text = chat_text(5, len);
            assert_eq!(text.len(), len);
            server.receive(&raw_frame(
                Role::Client,
                OpCode::Text,
                true,
                true,
                &peer_compress(&mut c, text.as_bytes()),
            ));
            let mut got = Vec::new();
            let res = loop {
                match server.poll_event() {
                    Ok(Some(Event::Message(m))) => got.extend_from_slice(m.as_bytes()),
                    Ok(Some(Event::Fragment { data, .. })) => got.extend_from_slice(&data),
                    Ok(Some(other)) => panic!("{other:?}"),
                    Ok(None) => break Ok(()),
                    Err(e) => break Err(e),
                }
            };
            if ok {
                res.unwrap();
                assert_eq!(got, text.as_bytes());
            } else {
                assert_eq!(
                    res.unwrap_err().close_code(),
                    Some(CloseCode::TOO_BIG),
                    "{len} streaming {streaming_mode}"
                );
            }
        }
    }
}

// -------------------------------------------------- compression policy

#[test]
fn messages_under_the_threshold_go_out_plain() {
    let mut pair = handshake(cfg(), cfg());
    assert_eq!(pair.accepted.deflate.as_ref().unwrap().threshold, 64);
    for (len, compressed) in [
        (0, false),
        (1, false),
        (63, false),
        (64, true),
        (1000, true),
    ] {
        let m = Message::text("a".repeat(len));
        for from_client in [true, false] {
            let (from, to) = if from_client {
                (&mut pair.client, &mut pair.server)
            } else {
                (&mut pair.server, &mut pair.client)
            };
            let (f, ev) = transfer(from, to, m.clone());
            assert_eq!(ev, [Event::Message(m.clone())]);
            assert_eq!(f[0].header.rsv1, compressed, "{len} bytes");
            if !compressed {
                assert_eq!(&f[0].payload[..], m.as_bytes());
            }
        }
    }
    // threshold 0 compresses everything, even empty messages; a large one
    // sends all messages plain
    let t0 = cfg_with(|c| c.threshold = 0);
    let big = cfg_with(|c| c.threshold = usize::MAX);
    let mut pair = handshake(t0, big);
    let (f, ev) = transfer(
        &mut pair.client,
        &mut pair.server,
        Message::binary(Bytes::new()),
    );
    assert!(f[0].header.rsv1);
    assert_eq!(&f[0].payload[..], [0x00]);
    assert_eq!(ev, [Event::Message(Message::binary(Bytes::new()))]);
    let (f, _) = transfer(
        &mut pair.server,
        &mut pair.client,
        Message::text("x".repeat(100_000)),
    );
    assert!(!f[0].header.rsv1);
}

#[test]
fn send_uncompressed_skips_compression_and_keeps_the_context() {
    let mut pair = handshake(cfg(), cfg());
    let m = Message::text(chat_text(2, 1000));
    let (f, _) = transfer(&mut pair.client, &mut pair.server, m.clone());
    assert!(f[0].header.rsv1);
    let first = f[0].payload.len();
    pair.client.send_uncompressed(m.clone()).unwrap();
    let f = pump(&mut pair.client, &mut pair.server);
    assert!(!f[0].header.rsv1);
    assert_eq!(&f[0].payload[..], m.as_bytes());
    assert_eq!(
        poll_all(&mut pair.server).unwrap(),
        [Event::Message(m.clone())]
    );
    // the compressor's context is untouched: the next copy still refers back
    let (f, ev) = transfer(&mut pair.client, &mut pair.server, m.clone());
    assert_eq!(ev, [Event::Message(m.clone())]);
    assert!(f[0].header.rsv1 && f[0].payload.len() * 4 < first);
    // without deflate it is a plain send
    let mut plain = handshake_with(&[], None, &Config::default()).unwrap();
    plain.server.send_uncompressed(m.clone()).unwrap();
    let f = pump(&mut plain.server, &mut plain.client);
    assert!(!f[0].header.rsv1);
    assert_eq!(poll_all(&mut plain.client).unwrap(), [Event::Message(m)]);
}

/// The sending and the receiving side of a pair.
fn sides(p: &mut Pair, from_client: bool) -> (&mut Connection, &mut Connection) {
    let Pair { client, server, .. } = p;
    if from_client {
        (client, server)
    } else {
        (server, client)
    }
}

/// A borrowed message is compressed like an owned one (the same compressed
/// payload, under the threshold plain) and the receiver reads it back.
#[test]
fn borrowed_messages_are_compressed_like_owned_ones() {
    let mut by_ref = handshake(cfg(), cfg());
    let mut owned = handshake(cfg(), cfg());
    let long = chat_text(3, 1000);
    for text in ["short", long.as_str(), long.as_str()] {
        for from_client in [true, false] {
            let (from, to) = sides(&mut by_ref, from_client);
            from.send_ref(MessageRef::Text(text)).unwrap();
            let got = pump(from, to);
            assert_eq!(poll_all(to).unwrap(), [Event::Message(Message::text(text))]);
            let (from, to) = sides(&mut owned, from_client);
            let (want, _) = transfer(from, to, Message::text(text));
            assert_eq!(got.len(), 1);
            assert_eq!(got[0].header.rsv1, text.len() >= 64, "{} bytes", text.len());
            assert_eq!(got[0].payload, want[0].payload, "{} bytes", text.len());
        }
    }
}

#[test]
fn fragmented_compressed_sends_are_reassembled_in_both_modes() {
    let text = "€uro ✓ 日本語 😀 ".repeat(500);
    let bytes = text.as_bytes();
    // chunk boundaries that split code points, and an empty fragment
    let cuts = [0, 1, 2, 7, 7, 3000, 3001, bytes.len() - 1, bytes.len()];
    for streaming_mode in [false, true] {
        let config = if streaming_mode {
            streaming()
        } else {
            Config::default()
        };
        let mut pair = handshake_with(&[cfg()], Some(cfg()), &config).unwrap();
        for w in cuts.windows(2) {
            let fin = w[1] == bytes.len();
            pair.server
                .send_fragment(
                    MessageKind::Text,
                    Bytes::copy_from_slice(&bytes[w[0]..w[1]]),
                    fin,
                )
                .unwrap();
        }
        let f = pump(&mut pair.server, &mut pair.client);
        assert_eq!(f.len(), cuts.len() - 1);
        assert!(f[0].header.rsv1 && f[1..].iter().all(|f| !f.header.rsv1));
        let ev = poll_all(&mut pair.client).unwrap();
        if streaming_mode {
            let mut got = String::new();
            for e in &ev {
                let Event::Fragment {
                    kind: MessageKind::Text,
                    data,
                    ..
                } = e
                else {
                    panic!("{e:?}")
                };
                got.push_str(std::str::from_utf8(data).expect("pieces are valid UTF-8"));
            }
            assert!(matches!(ev.last(), Some(Event::Fragment { fin: true, .. })));
            assert_eq!(got, text);
        } else {
            assert_eq!(ev, [Event::Message(Message::text(text.as_str()))]);
        }
        // a send_fragment message, then a whole one: the stream continues
        let (_, ev) = transfer(
            &mut pair.server,
            &mut pair.client,
            Message::text(text.as_str()),
        );
        let got: Vec<u8> = ev
            .iter()
            .flat_map(|e| match e {
                Event::Message(m) => m.as_bytes().to_vec(),
                Event::Fragment { data, .. } => data.to_vec(),
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(got, bytes);
    }
}

#[test]
fn control_frames_between_compressed_fragments() {
    let mut server = conn_with(
        Role::Server,
        "permessage-deflate",
        &cfg(),
        Config::default(),
    );
    let mut c = Compress::new(Compression::default(), false);
    let p = peer_compress(&mut c, chat_text(4, 5000).as_bytes());
    let (a, b) = p.split_at(p.len() / 2);
    server.receive(&raw_frame(Role::Client, OpCode::Text, false, true, a));
    server.receive(&raw_frame(Role::Client, OpCode::Ping, true, false, b"p"));
    server.receive(&raw_frame(
        Role::Client,
        OpCode::Continuation,
        true,
        false,
        b,
    ));
    assert_eq!(
        poll_all(&mut server).unwrap(),
        [
            Event::Ping(Bytes::from_static(b"p")),
            Event::Message(Message::text(chat_text(4, 5000)))
        ]
    );
    // the pong is not compressed
    let f = frames(&drain(&mut server), Role::Server);
    assert_eq!(f[0].header.opcode, OpCode::Pong);
    assert!(!f[0].header.rsv1);
}

#[test]
fn every_level_round_trips() {
    for level in [0, 1, 6, 9, 42] {
        let policy = cfg_with(|c| c.level = level);
        let mut pair = handshake(cfg_with(|c| c.level = level), policy);
        assert_eq!(pair.accepted.deflate.as_ref().unwrap().level, level.min(9));
        round_trip(&mut pair, &sample_messages());
    }
}

#[test]
fn zlib_state_exists_only_once_used() {
    // a deflate connection exchanging only messages under the threshold
    // allocates no zlib state at all
    let tiny = Message::text("under the threshold");
    let measure = |deflate: bool| {
        let (_, grew) = retained(|| {
            let mut pair = if deflate {
                handshake(cfg(), cfg())
            } else {
                handshake_with(&[], None, &Config::default()).unwrap()
            };
            for _ in 0..3 {
                transfer(&mut pair.client, &mut pair.server, tiny.clone());
                transfer(&mut pair.server, &mut pair.client, tiny.clone());
            }
            (pair.client, pair.server)
        });
        grew
    };
    let (plain, deflate) = (measure(false), measure(true));
    assert!((deflate - plain).abs() < 2 * 1024, "{deflate} vs {plain}");
}

// ------------------------------------------ streaming: inflated chunk edge

/// Streaming mode, a compressed message whose last input step fills the
/// 64 KiB output chunk exactly: the message must still finish.
fn streaming_message_of(len: usize) -> (usize, bool, Result<Vec<Event>, Error>) {
    let mut pair = handshake_with(&[cfg()], Some(cfg()), &streaming()).unwrap();
    let msg: Vec<u8> = (0..len).map(|i| (i % 7) as u8).collect();
    pair.client.send(Message::binary(msg)).unwrap();
    pump(&mut pair.client, &mut pair.server);
    let mut got = 0;
    let mut fin = false;
    while let Some(ev) = pair.server.poll_event().unwrap() {
        if let Event::Fragment { data, fin: f, .. } = ev {
            got += data.len();
            fin = f;
        }
    }
    // the next message must come through as well
    pair.client.send(Message::text(chat_text(1, 200))).unwrap();
    pump(&mut pair.client, &mut pair.server);
    (got, fin, poll_all(&mut pair.server))
}

#[test]
fn streaming_compressed_messages_of_many_sizes_complete() {
    // sizes away from multiples of the 64 KiB output chunk
    for len in [0, 1, 1000, 65_535, 70_000, 200_000] {
        let (got, fin, next) = streaming_message_of(len);
        assert_eq!((got, fin), (len, true), "{len}");
        assert!(matches!(
            next.unwrap()[..],
            [Event::Fragment { fin: true, .. }]
        ));
    }
}

#[test]
fn streaming_compressed_message_ending_on_a_chunk_boundary_completes() {
    for len in [65_536, 65_537, 131_072] {
        let (got, fin, next) = streaming_message_of(len);
        assert_eq!((got, fin), (len, true), "{len}");
        next.unwrap();
    }
}

// ------------------------------------------- independent peer on flate2

#[test]
fn flate2_peer_to_wsproto_with_context_takeover() {
    let mut server = conn_with(
        Role::Server,
        "permessage-deflate",
        &cfg(),
        Config::default(),
    );
    let mut c = Compress::new(Compression::new(9), false);
    let texts: Vec<String> = (0..20).map(|i| chat_text(i, 100 + i * 97)).collect();
    for (i, t) in texts.iter().enumerate() {
        let payload = peer_compress(&mut c, t.as_bytes());
        if i % 3 == 2 {
            // fragmented by hand at arbitrary points
            server.receive(&fragment_frames(OpCode::Text, &payload, 1 + i * 5));
        } else {
            server.receive(&raw_frame(Role::Client, OpCode::Text, true, true, &payload));
        }
        // and an uncompressed message in between (RSV1 clear)
        server.receive(&raw_frame(
            Role::Client,
            OpCode::Binary,
            true,
            false,
            b"plain",
        ));
    }
    let ev = poll_all(&mut server).unwrap();
    let want: Vec<Event> = texts
        .iter()
        .flat_map(|t| {
            [
                Event::Message(Message::text(t.as_str())),
                Event::Message(Message::binary(&b"plain"[..])),
            ]
        })
        .collect();
    assert_eq!(ev, want);
    // a peer that ends a message with BFINAL (Finish), then starts a new
    // stream for the next
    // (§7.2.1: the data does not end with an empty stored block, so one is
    // appended and its last 4 octets removed: a 0x00 remains, as in the
    // example of §7.2.3.4)
    let mut c = Compress::new(Compression::default(), false);
    let mut payload = Vec::with_capacity(256);
    assert_eq!(
        c.compress_vec(b"final block", &mut payload, FlushCompress::Finish)
            .unwrap(),
        ZStatus::StreamEnd
    );
    payload.push(0x00);
    server.receive(&raw_frame(Role::Client, OpCode::Text, true, true, &payload));
    let mut c = Compress::new(Compression::default(), false);
    server.receive(&raw_frame(
        Role::Client,
        OpCode::Text,
        true,
        true,
        &peer_compress(&mut c, b"fresh stream"),
    ));
    assert_eq!(
        poll_all(&mut server).unwrap(),
        [
            Event::Message(Message::text("final block")),
            Event::Message(Message::text("fresh stream"))
        ]
    );
    // a full flush (ends with 00 00 ff ff too; resets the peer's dictionary)
    let mut c = Compress::new(Compression::default(), false);
    let mut p = Vec::with_capacity(256);
    c.compress_vec(b"full flush message", &mut p, FlushCompress::Full)
        .unwrap();
    assert!(p.ends_with(&[0, 0, 0xff, 0xff]));
    p.truncate(p.len() - 4);
    server.receive(&raw_frame(Role::Client, OpCode::Text, true, true, &p));
    assert_eq!(
        poll_all(&mut server).unwrap(),
        [Event::Message(Message::text("full flush message"))]
    );
}

#[test]
fn wsproto_to_flate2_peer_with_and_without_context_takeover() {
    for nct in [false, true] {
        let offer = if nct {
            "permessage-deflate; client_no_context_takeover"
        } else {
            "permessage-deflate"
        };
        let mut client = conn_with(Role::Client, offer, &cfg(), Config::default());
        let texts: Vec<String> = (0..20).map(|i| chat_text(i, 100 + i * 97)).collect();
        for (i, t) in texts.iter().enumerate() {
            if i % 4 == 3 {
                let b = t.as_bytes();
                client
                    .send_fragment(
                        MessageKind::Text,
                        Bytes::copy_from_slice(&b[..b.len() / 3]),
                        false,
                    )
                    .unwrap();
                client
                    .send_fragment(
                        MessageKind::Text,
                        Bytes::copy_from_slice(&b[b.len() / 3..]),
                        true,
                    )
                    .unwrap();
            } else {
                client.send(Message::text(t.as_str())).unwrap();
            }
        }
        let msgs = reassemble(&frames(&drain(&mut client), Role::Client));
        let mut d = Decompress::new(false);
        for (i, (op, rsv1, payload)) in msgs.iter().enumerate() {
            assert_eq!(*op, OpCode::Text);
            assert!(*rsv1);
            if nct {
                d = Decompress::new(false);
            }
            let out = peer_inflate(&mut d, payload, 1 << 16).unwrap();
            assert_eq!(out, texts[i].as_bytes(), "message {i}");
        }
    }
}

// ------------------------------------------------------------ proptests

fn arb_message() -> impl Strategy<Value = (bool, Vec<u8>)> {
    // compressible text (a few words, some multi-byte) or binary
    let words = prop::sample::select(vec!["ab", "hello ", "€", "日本", "😀", "{\"t\":1}", "\n"]);
    prop_oneof![
        prop::collection::vec(words, 0..400).prop_map(|w| (true, w.concat().into_bytes())),
        prop::collection::vec(prop::sample::select(vec![0u8, 1, 2, 255]), 0..3000)
            .prop_map(|b| (false, b)),
    ]
}

#[derive(Debug, Clone)]
enum How {
    Send,
    Uncompressed,
    Fragments(Vec<usize>),
}

fn arb_how() -> impl Strategy<Value = How> {
    prop_oneof![
        3 => Just(How::Send),
        1 => Just(How::Uncompressed),
        2 => prop::collection::vec(0usize..2000, 0..5).prop_map(How::Fragments),
    ]
}

fn send_how(conn: &mut Connection, text: bool, data: &[u8], how: &How) {
    let kind = if text {
        MessageKind::Text
    } else {
        MessageKind::Binary
    };
    let msg = || {
        if text {
            Message::text(std::str::from_utf8(data).unwrap())
        } else {
            Message::binary(data.to_vec())
        }
    };
    match how {
        How::Send => conn.send(msg()).unwrap(),
        How::Uncompressed => conn.send_uncompressed(msg()).unwrap(),
        How::Fragments(cuts) => {
            let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (data.len() + 1)).collect();
            cuts.sort_unstable();
            let mut start = 0;
            for c in cuts {
                conn.send_fragment(kind, Bytes::copy_from_slice(&data[start..c]), false)
                    .unwrap();
                start = c;
            }
            conn.send_fragment(kind, Bytes::copy_from_slice(&data[start..]), true)
                .unwrap();
        }
    }
}

/// Feed `wire` split at `cuts`, polling after each piece; collect the
/// messages (streaming pieces joined; each text piece must be UTF-8).
fn receive_split(
    conn: &mut Connection,
    wire: &[u8],
    cuts: &[usize],
) -> Vec<(MessageKind, Vec<u8>)> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (wire.len() + 1)).collect();
    cuts.push(wire.len());
    cuts.sort_unstable();
    let mut out = Vec::new();
    let mut cur: Option<(MessageKind, Vec<u8>)> = None;
    let mut start = 0;
    for c in cuts {
        conn.receive(&wire[start..c]);
        start = c;
        while let Some(ev) = conn.poll_event().unwrap() {
            match ev {
                Event::Message(m) => out.push((m.kind(), m.as_bytes().to_vec())),
                Event::Fragment { kind, data, fin } => {
                    assert!(data.len() <= 64 * KIB + 3);
                    if kind == MessageKind::Text {
                        assert!(std::str::from_utf8(&data).is_ok(), "text piece not UTF-8");
                    }
                    let m = cur.get_or_insert_with(|| (kind, Vec::new()));
                    assert_eq!(m.0, kind);
                    m.1.extend_from_slice(&data);
                    if fin {
                        out.push(cur.take().unwrap());
                    }
                }
                other => panic!("{other:?}"),
            }
        }
    }
    assert!(cur.is_none());
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    /// Whatever the sender does (compressed, plain, fragmented, with or
    /// without context takeover), any split of the wire gives the same
    /// messages as feeding it at once, in both receive modes.
    #[test]
    fn any_split_of_the_input_gives_the_same_events(
        msgs in prop::collection::vec((arb_message(), arb_how()), 1..8),
        cuts in prop::collection::vec(any::<usize>(), 0..12),
        nct in any::<bool>(),
        threshold in prop::sample::select(vec![0usize, 64, 512]),
        bits in 9u8..=15,
    ) {
        let server_cfg = cfg_with(|c| {
            c.threshold = threshold;
            c.server_no_context_takeover = nct;
            c.server_max_window_bits = bits;
        });
        let mut sender = conn_with(Role::Server, "permessage-deflate; client_max_window_bits", &server_cfg, Config::default());
        for ((text, data), how) in &msgs {
            send_how(&mut sender, *text, data, how);
        }
        let wire = drain(&mut sender);
        let want: Vec<(MessageKind, Vec<u8>)> = msgs
            .iter()
            .map(|((text, data), _)| (if *text { MessageKind::Text } else { MessageKind::Binary }, data.clone()))
            .collect();
        for streaming_mode in [false, true] {
            let config = if streaming_mode { streaming() } else { Config::default() };
            let mut whole = conn_with(Role::Client, "permessage-deflate; client_max_window_bits", &server_cfg, config.clone());
            let at_once = receive_split(&mut whole, &wire, &[]);
            prop_assert_eq!(&at_once, &want);
            let mut split = conn_with(Role::Client, "permessage-deflate; client_max_window_bits", &server_cfg, config.clone());
            prop_assert_eq!(&receive_split(&mut split, &wire, &cuts), &want);
            let mut bytewise = conn_with(Role::Client, "permessage-deflate; client_max_window_bits", &server_cfg, config);
            if wire.len() < 4000 {
                let all: Vec<usize> = (0..wire.len()).collect();
                prop_assert_eq!(&receive_split(&mut bytewise, &wire, &all), &want);
            }
        }
    }

    /// Any fragmentation of a compressed message gives the same message,
    /// with RSV1 on the first frame only.
    #[test]
    fn any_fragmentation_gives_the_same_message(
        (text, data) in arb_message(),
        cuts in prop::collection::vec(0usize..4000, 0..8),
        nct in any::<bool>(),
    ) {
        let server_cfg = cfg_with(|c| {
            c.client_no_context_takeover = nct;
            c.threshold = 0;
        });
        let mut client = conn_with(Role::Client, "permessage-deflate", &server_cfg, Config::default());
        for _ in 0..2 {
            send_how(&mut client, text, &data, &How::Fragments(cuts.clone()));
        }
        let wire = drain(&mut client);
        let f = frames(&wire, Role::Client);
        let data_frames: Vec<&Frame> = f.iter().filter(|f| !f.header.opcode.is_control()).collect();
        for fr in &data_frames {
            prop_assert_eq!(fr.header.rsv1, fr.header.opcode != OpCode::Continuation);
        }
        let kind = if text { MessageKind::Text } else { MessageKind::Binary };
        for streaming_mode in [false, true] {
            let config = if streaming_mode { streaming() } else { Config::default() };
            let mut server = conn_with(Role::Server, "permessage-deflate", &server_cfg, config);
            let got = receive_split(&mut server, &wire, &[]);
            prop_assert_eq!(got, vec![(kind, data.clone()), (kind, data.clone())]);
        }
    }
}

// ------------------------------------------------------ memory per connection

/// Allocation growth of `f`, net (what stays allocated after it returns).
fn retained<T>(f: impl FnOnce() -> T) -> (T, isize) {
    let before = allocated();
    let t = f();
    (t, allocated() - before)
}

/// What a server connection holds while idle after receiving one 2000-byte
/// chat message and sending one back, negotiated with `offer` (`None`: no
/// deflate). Returns (the whole idle connection, growth from receiving,
/// growth from sending).
fn idle_server(offer: Option<&str>) -> (isize, isize, isize) {
    let msg = Message::text(chat_text(1, 2000));
    let echo = msg.clone();
    let wire = {
        let mut c = match offer {
            Some(o) => conn_with(Role::Client, o, &cfg(), Config::default()),
            None => Connection::client_with_masks(Config::default(), test_masks()),
        };
        c.send(msg).unwrap();
        drain(&mut c)
    };
    let before = allocated();
    let mut server = match offer {
        Some(o) => conn_with(Role::Server, o, &cfg(), Config::default()),
        None => Connection::server(Config::default()),
    };
    let ((), recv) = retained(|| {
        server.receive(&wire);
        drop(poll_all(&mut server).unwrap());
    });
    let ((), send) = retained(|| {
        server.send(echo).unwrap();
        drop(drain(&mut server));
    });
    let total = allocated() - before;
    drop(server);
    (total, recv, send)
}

#[test]
fn memory_per_connection_with_and_without_context_takeover() {
    let plain = idle_server(None);
    let takeover = idle_server(Some("permessage-deflate"));
    let nine = idle_server(Some(
        "permessage-deflate; server_max_window_bits=9; client_max_window_bits=9",
    ));
    let reset = idle_server(Some(
        "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
    ));
    // the first message compresses to the same bytes with or without
    // context takeover, so the differences are the kept zlib state
    let compressor = takeover.2 - reset.2;
    let decompressor = takeover.1 - reset.1;
    let compressor9 = nine.2 - reset.2;
    let decompressor9 = nine.1 - reset.1;
    let kib = |b: isize| b as f64 / 1024.0;
    eprintln!(
        "idle server connection after one message each way: no deflate {:.1} KiB; \
         context takeover {:.1} KiB (15 bits), {:.1} KiB (9 bits); no context takeover {:.1} KiB\n\
         kept state: compressor {:.1} KiB (15 bits) / {:.1} KiB (9 bits); \
         decompressor {:.1} KiB (15 bits) / {:.1} KiB (9 bits)",
        kib(plain.0),
        kib(takeover.0),
        kib(nine.0),
        kib(reset.0),
        kib(compressor),
        kib(compressor9),
        kib(decompressor),
        kib(decompressor9),
    );
    assert!(
        (200 * 1024..600 * 1024).contains(&compressor),
        "{compressor}"
    );
    assert!(
        compressor9 < compressor - 64 * 1024,
        "9 bits: {compressor9}"
    );
    assert!(
        (32 * 1024..96 * 1024).contains(&decompressor),
        "{decompressor}"
    );
    // zlib-rs allocates the full 32 KiB window whatever the window bits
    assert!(
        decompressor9 <= decompressor + 1024,
        "9 bits: {decompressor9}"
    );
    // without context takeover nothing is kept between messages: the idle
    // connection is as small as one without deflate (give or take the
    // input buffer, sized by the shorter compressed frame)
    assert!(
        (reset.0 - plain.0).abs() < 4 * 1024,
        "{reset:?} vs {plain:?}"
    );
}

/// Bytes still allocated for 100 received 100-byte chat messages that the
/// application keeps (a chat server's history).
fn kept_messages(streaming_mode: bool, compressed: bool) -> isize {
    let config = if streaming_mode {
        streaming()
    } else {
        Config::default()
    };
    let mut server = conn_with(Role::Server, "permessage-deflate", &cfg(), config);
    let mut c = Compress::new(Compression::default(), false);
    let wire: Vec<Vec<u8>> = (0..101)
        .map(|i| {
            let t = chat_text(i, 100);
            if compressed {
                raw_frame(
                    Role::Client,
                    OpCode::Text,
                    true,
                    true,
                    &peer_compress(&mut c, t.as_bytes()),
                )
            } else {
                raw_frame(Role::Client, OpCode::Text, true, false, t.as_bytes())
            }
        })
        .collect();
    // the first message sets up the inflater (its 32 KiB window is a
    // per-connection cost, measured elsewhere): not counted here
    server.receive(&wire[0]);
    assert_eq!(poll_all(&mut server).unwrap().len(), 1);
    let mut kept = Vec::with_capacity(200);
    let ((), grew) = retained(|| {
        for f in &wire[1..] {
            server.receive(f);
            kept.extend(poll_all(&mut server).unwrap());
        }
    });
    assert_eq!(kept.len(), 100);
    grew
}

#[test]
fn kept_compressed_messages_do_not_pin_large_buffers() {
    for streaming_mode in [false, true] {
        let plain = kept_messages(streaming_mode, false);
        let compressed = kept_messages(streaming_mode, true);
        eprintln!(
            "streaming {streaming_mode}: 100 kept 100-byte messages hold {} KiB uncompressed, {} KiB compressed",
            plain / 1024,
            compressed / 1024
        );
        assert!(
            compressed < 2 * plain + 16 * 1024,
            "{compressed} vs {plain}"
        );
    }
}

#[test]
fn queued_compressed_frames_hold_about_what_pending_output_says() {
    let mut config = Config::default();
    config.limits.max_outbound = 512 * KIB;
    let mut server = conn_with(Role::Server, "permessage-deflate", &cfg(), config);
    let msg = Message::text(chat_text(1, 128 * KIB));
    let before = allocated();
    let mut queued = 0;
    while server.send(msg.clone()).is_ok() && queued < 500 {
        queued += 1;
    }
    let held = allocated() - before;
    let pending = server.pending_output() as isize;
    eprintln!(
        "{queued} queued 128 KiB messages: pending_output {} KiB, allocated {} KiB",
        pending / 1024,
        held / 1024
    );
    // the compressor's own state (~370 KiB) and some slack on top
    assert!(
        held < 2 * pending + 512 * KIB as isize,
        "{held} bytes held for {pending} pending"
    );
}
