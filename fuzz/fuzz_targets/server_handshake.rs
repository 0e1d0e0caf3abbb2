//! `ServerHandshake::receive` on any bytes, fed in 1–3 chunks.
//!
//! Input layout: `flags, cut_a, cut_b, request...`. `flags % 3 + 1` is the
//! number of chunks (cut at `cut_a/256` and `cut_b/256` of the length);
//! `flags & 4` selects small limits (512-byte head, 8 headers) so the
//! capacity errors are reachable.
//!
//! Invariants:
//! * never panics; the outcome does not depend on the chunking (same result
//!   as one `receive` of everything);
//! * on `Complete`: the consumed length never exceeds the input, the bytes
//!   left in the buffer are exactly the input's tail, and the consumed head
//!   — parsed independently with httparse — satisfies RFC 6455 §4.2.1 (GET,
//!   HTTP/1.1, one non-empty Host, Upgrade lists websocket, Connection lists
//!   upgrade, exactly one key that is canonical base64 of 16 bytes, every
//!   Sec-WebSocket-Version is 13), and the accessors report what is on the
//!   wire;
//! * `accept()` writes a response httparse reads as `HTTP/1.1 101` with
//!   `Upgrade: websocket`, `Connection: Upgrade` and `Sec-WebSocket-Accept`
//!   equal to `accept_key(key)` (and the selected subprotocol, if any), which
//!   the crate's own `ClientHandshake` — built with the nonce the key
//!   encodes — accepts;
//! * on `Err(e)`: `write_response` parses as HTTP with status
//!   `e.status_hint()`, a correct `Content-Length`, and
//!   `Sec-WebSocket-Version: 13` for a version mismatch;
//! * conversely, a head that httparse parses completely within the limits
//!   and that meets §4.2.1 without any header needing further validation
//!   (Origin, subprotocols, extensions) is accepted.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsproto::handshake::{
    accept_key, AcceptOptions, ClientHandshake, ClientRequest, IncomingRequest, ServerHandshake,
    Status,
};
use wsproto::{Config, HandshakeError, Limits};
use wsproto_fuzz::{
    header_values, is_base64_of_16, list_contains, ows_trim, parse_response, split_in_up_to_three,
};

type Outcome = Result<Status<IncomingRequest>, HandshakeError>;

fn run(limits: &Limits, pieces: &[&[u8]]) -> (Outcome, BytesMut, usize) {
    let mut hs = ServerHandshake::new(limits);
    let mut buf = BytesMut::new();
    let mut fed = 0;
    let mut result = Ok(Status::Partial);
    for p in pieces {
        buf.extend_from_slice(p);
        fed += p.len();
        result = hs.receive(&mut buf);
        if !matches!(result, Ok(Status::Partial)) {
            break;
        }
    }
    (result, buf, fed)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 3 {
        return;
    }
    let (flags, stream) = (data[0], &data[3..]);
    let mut limits = Limits::default();
    if flags & 4 != 0 {
        limits.max_handshake_bytes = 512;
        limits.max_headers = 8;
    }
    let pieces = split_in_up_to_three(stream, flags, data[1], data[2]);
    let (result, buf, fed) = run(&limits, &pieces);
    let (whole, whole_buf, _) = run(&limits, &[stream]);
    match (&result, &whole) {
        (Ok(Status::Complete(a)), Ok(Status::Complete(b))) => {
            assert_eq!(a, b);
            assert_eq!(fed - buf.len(), stream.len() - whole_buf.len());
        }
        // a partial result only differs by the bytes not fed yet
        (Ok(Status::Partial), Ok(Status::Partial)) => {}
        (a, b) => assert_eq!(a, b, "chunked and one-shot parsing differ"),
    }

    let must_accept = must_accept(stream, &limits);
    match result {
        Ok(Status::Partial) => {
            assert!(must_accept.is_none(), "valid request left partial");
            assert!(stream.len() <= limits.max_handshake_bytes);
        }
        Ok(Status::Complete(req)) => {
            assert!(buf.len() <= fed);
            let consumed = fed - buf.len();
            assert_eq!(&buf[..], &stream[consumed..fed], "leftover bytes modified");
            if let Some(n) = must_accept {
                assert_eq!(n, consumed, "head length differs from httparse's");
            }
            check_complete(&stream[..consumed], &req, &limits);
        }
        Err(e) => {
            assert!(
                must_accept.is_none(),
                "a valid request was refused with {e:?}"
            );
            let mut out = Vec::new();
            e.write_response(&mut out);
            let (code, version, headers, n) = parse_response(&out);
            assert_eq!(code, e.status_hint());
            assert_eq!(version, 1);
            let len: usize = headers
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
                .and_then(|(_, v)| std::str::from_utf8(v).ok()?.parse().ok())
                .expect("Content-Length");
            assert_eq!(out.len() - n, len);
            if e == HandshakeError::UnsupportedVersion {
                assert!(headers
                    .iter()
                    .any(|(k, v)| k.eq_ignore_ascii_case("sec-websocket-version") && v == b"13"));
            }
        }
    }
});

/// The §4.2.1 checks on the consumed head, done independently.
fn check_complete(head: &[u8], req: &IncomingRequest, limits: &Limits) {
    assert!(head.len() <= limits.max_handshake_bytes);
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut r = httparse::Request::new(&mut slots);
    match r.parse(head) {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, head.len(), "head length"),
        other => panic!("accepted head does not parse as HTTP: {other:?}"),
    }
    assert_eq!(r.method, Some("GET"));
    assert_eq!(r.version, Some(1), "HTTP/1.1");
    assert_eq!(req.method(), "GET");
    assert_eq!(Some(req.target()), r.path);
    // §4.2.1 item 1: a resource name, or an absolute http(s)/ws(s) URI
    // containing one
    let target = req.target();
    if !target.starts_with('/') {
        let (scheme, rest) = target.split_once("://").expect("absolute-form target");
        assert!(
            ["http", "https", "ws", "wss"]
                .iter()
                .any(|s| s.eq_ignore_ascii_case(scheme)),
            "target scheme {scheme:?}"
        );
        assert!(
            !rest.is_empty() && !rest.starts_with(['/', '?']),
            "no authority"
        );
    }
    assert!(req.path().starts_with('/'), "path {:?}", req.path());
    let h = r.headers;

    let hosts = header_values(h, "host");
    assert_eq!(hosts.len(), 1, "exactly one Host");
    let host = ows_trim(hosts[0]);
    assert!(!host.is_empty());
    assert_eq!(req.host().as_bytes(), host, "Host accessor");

    assert!(
        header_values(h, "upgrade")
            .iter()
            .any(|v| list_contains(v, "websocket")),
        "Upgrade must list websocket"
    );
    assert!(
        header_values(h, "connection")
            .iter()
            .any(|v| list_contains(v, "upgrade")),
        "Connection must list upgrade"
    );
    let keys = header_values(h, "sec-websocket-key");
    assert_eq!(keys.len(), 1, "exactly one Sec-WebSocket-Key");
    let key = ows_trim(keys[0]);
    assert!(
        is_base64_of_16(key),
        "key {key:?} is not base64 of 16 bytes"
    );
    assert_eq!(req.key().as_bytes(), key, "key accessor");
    let versions = header_values(h, "sec-websocket-version");
    assert!(!versions.is_empty());
    assert!(
        versions.iter().all(|v| ows_trim(v) == b"13"),
        "version {versions:?}"
    );

    // Accept, optionally selecting the first offered subprotocol.
    let protocol = req.protocols().first().cloned();
    let mut opts = AcceptOptions::new();
    if let Some(p) = &protocol {
        opts = opts.protocol(p.clone());
    }
    let mut out = Vec::new();
    req.clone()
        .accept(opts, &mut out, Config::default())
        .expect("accepting a valid request");
    let (code, version, headers, n) = parse_response(&out);
    assert_eq!((code, version, n), (101, 1, out.len()));
    let get = |name: &str| -> Vec<&[u8]> {
        headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| &v[..])
            .collect()
    };
    assert!(get("upgrade").iter().any(|v| list_contains(v, "websocket")));
    assert!(get("connection")
        .iter()
        .any(|v| list_contains(v, "upgrade")));
    assert_eq!(get("sec-websocket-accept"), [&accept_key(key)[..]]);
    match &protocol {
        Some(p) => assert_eq!(get("sec-websocket-protocol"), [p.as_bytes()]),
        None => assert!(get("sec-websocket-protocol").is_empty()),
    }

    // The crate's own client, given the nonce behind the key, accepts it.
    let nonce = decode_nonce(key);
    // (a client offers each subprotocol once; the server tolerates repeats)
    let mut offered: Vec<String> = Vec::new();
    for p in req.protocols() {
        if !offered.contains(p) {
            offered.push(p.clone());
        }
    }
    let creq = ClientRequest::new("example.com", "/").protocols(offered);
    let mut sink = Vec::new();
    let mut client = ClientHandshake::new(&creq, nonce, &Limits::default(), &mut sink)
        .expect("offered protocols are tokens");
    let mut resp = BytesMut::from(&out[..]);
    match client.receive(&mut resp) {
        Ok(Status::Complete(acc)) => assert_eq!(acc.protocol, protocol),
        other => panic!("the crate's client refuses the crate's 101: {other:?}"),
    }
    assert!(resp.is_empty());
}

fn decode_nonce(key: &[u8]) -> [u8; 16] {
    let val = |c: u8| -> u32 {
        match c {
            b'A'..=b'Z' => (c - b'A') as u32,
            b'a'..=b'z' => (c - b'a' + 26) as u32,
            b'0'..=b'9' => (c - b'0' + 52) as u32,
            b'+' => 62,
            _ => 63,
        }
    };
    let mut bits = Vec::with_capacity(18);
    for quad in key[..24].chunks(4) {
        let mut acc = 0u32;
        for &c in quad {
            acc = acc << 6 | if c == b'=' { 0 } else { val(c) };
        }
        bits.extend_from_slice(&acc.to_be_bytes()[1..]);
    }
    let mut n = [0u8; 16];
    n.copy_from_slice(&bits[..16]);
    n
}

/// `Some(head length)` if the stream starts with a request that must be
/// accepted: httparse parses it completely within the limits, and it meets
/// §4.2.1 with plain UTF-8 header values and none of the headers the crate
/// validates beyond §4.2.1 (Origin, Sec-WebSocket-Protocol,
/// Sec-WebSocket-Extensions).
fn must_accept(stream: &[u8], limits: &Limits) -> Option<usize> {
    // RFC 7230 §3.5: a recipient SHOULD ignore at least one empty line
    // before the start line; httparse skips any number, the crate (like
    // most servers) one. Require acceptance only with at most one.
    let rest = stream
        .strip_prefix(b"\r\n")
        .or_else(|| stream.strip_prefix(b"\n"))
        .unwrap_or(stream);
    if rest.first().is_some_and(|&b| b == b'\r' || b == b'\n') {
        return None;
    }
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut r = httparse::Request::new(&mut slots);
    let n = match r.parse(stream) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return None,
    };
    if n > limits.max_handshake_bytes
        || r.method != Some("GET")
        || r.version != Some(1)
        || !r.path.is_some_and(|p| p.starts_with('/'))
    {
        return None;
    }
    let h = r.headers;
    if h.iter().any(|x| {
        std::str::from_utf8(x.value).is_err()
            || [
                "origin",
                "sec-websocket-protocol",
                "sec-websocket-extensions",
            ]
            .iter()
            .any(|n| x.name.eq_ignore_ascii_case(n))
    }) {
        return None;
    }
    let hosts = header_values(h, "host");
    let keys = header_values(h, "sec-websocket-key");
    let versions = header_values(h, "sec-websocket-version");
    let ok = hosts.len() == 1
        && !ows_trim(hosts[0]).is_empty()
        && header_values(h, "upgrade")
            .iter()
            .any(|v| list_contains(v, "websocket"))
        && header_values(h, "connection")
            .iter()
            .any(|v| list_contains(v, "upgrade"))
        && keys.len() == 1
        && is_base64_of_16(ows_trim(keys[0]))
        && !versions.is_empty()
        && versions.iter().all(|v| ows_trim(v) == b"13");
    ok.then_some(n)
}
