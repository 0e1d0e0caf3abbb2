//! `ClientHandshake::receive` on any bytes, as the server's answer to a
//! fixed request (fixed nonce: the RFC 6455 §4.1 sample, so the expected
//! `Sec-WebSocket-Accept` is `s3pPLMBiTxaQ9kYGzzhZRbK+xOo=`). The request
//! offers the subprotocols `chat` and `superchat` and the extension
//! `permessage-deflate`.
//!
//! Input layout: `flags, cut_a, cut_b, response...` (as `server_handshake`).
//!
//! Invariants:
//! * never panics; the outcome does not depend on the chunking;
//! * on `Complete`: the consumed length never exceeds the input, the rest of
//!   the buffer is the input's tail, and the consumed head — parsed
//!   independently with httparse — is a 101 with Upgrade listing websocket,
//!   Connection listing upgrade, exactly one Sec-WebSocket-Accept equal to
//!   the expected value, at most one offered subprotocol (the one reported)
//!   and only offered extensions; the reported headers are the head's;
//! * on `Err(UnexpectedStatus(c))`, `c` is the status httparse reads;
//! * conversely, a complete 101 head within the limits that meets those
//!   rules, with UTF-8 header values and no subprotocol or extension header,
//!   is accepted.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use wsproto::handshake::{Accepted, ClientHandshake, ClientRequest, Status};
use wsproto::{HandshakeError, Limits};
use wsproto_fuzz::{header_values, list_contains, ows_trim, split_in_up_to_three};

const NONCE: [u8; 16] = *b"the sample nonce";
const ACCEPT: &[u8] = b"s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
const OFFERED: [&str; 2] = ["chat", "superchat"];

type Outcome = Result<Status<Accepted>, HandshakeError>;

fn run(limits: &Limits, pieces: &[&[u8]]) -> (Outcome, BytesMut, usize) {
    let req = ClientRequest::new("server.example.com", "/chat")
        .protocols(OFFERED)
        .extension("permessage-deflate; client_max_window_bits");
    let mut request = Vec::new();
    let mut hs = ClientHandshake::new(&req, NONCE, limits, &mut request).expect("valid request");
    assert!(request.starts_with(b"GET /chat HTTP/1.1\r\n"));
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
        (Ok(Status::Partial), Ok(Status::Partial)) => {}
        (a, b) => assert_eq!(a, b, "chunked and one-shot parsing differ"),
    }

    let must = must_accept(stream, &limits);
    match result {
        Ok(Status::Partial) => {
            assert!(must.is_none(), "valid response left partial");
            assert!(stream.len() <= limits.max_handshake_bytes);
        }
        Ok(Status::Complete(acc)) => {
            assert!(buf.len() <= fed);
            let consumed = fed - buf.len();
            assert_eq!(&buf[..], &stream[consumed..fed], "leftover bytes modified");
            if let Some(n) = must {
                assert_eq!(n, consumed);
            }
            check_complete(&stream[..consumed], &acc, &limits);
        }
        Err(e) => {
            assert!(must.is_none(), "a valid response was refused with {e:?}");
            if let HandshakeError::UnexpectedStatus(c) = e {
                let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
                let mut r = httparse::Response::new(&mut slots);
                let _ = r.parse(stream);
                assert_eq!(r.code, Some(c));
                assert_ne!(c, 101);
            }
        }
    }
});

fn check_complete(head: &[u8], acc: &Accepted, limits: &Limits) {
    assert!(head.len() <= limits.max_handshake_bytes);
    let mut slots = vec![httparse::EMPTY_HEADER; limits.max_headers];
    let mut r = httparse::Response::new(&mut slots);
    match r.parse(head) {
        Ok(httparse::Status::Complete(n)) => assert_eq!(n, head.len()),
        other => panic!("accepted head does not parse as HTTP: {other:?}"),
    }
    assert_eq!(r.code, Some(101));
    let h = r.headers;
    let reported: Vec<(String, Vec<u8>)> = h
        .iter()
        .map(|x| (x.name.to_string(), x.value.to_vec()))
        .collect();
    assert_eq!(acc.headers, reported);
    assert!(header_values(h, "upgrade")
        .iter()
        .any(|v| list_contains(v, "websocket")));
    assert!(header_values(h, "connection")
        .iter()
        .any(|v| list_contains(v, "upgrade")));
    let accepts = header_values(h, "sec-websocket-accept");
    assert_eq!(accepts.len(), 1, "exactly one Sec-WebSocket-Accept");
    assert_eq!(ows_trim(accepts[0]), ACCEPT);
    let protos = header_values(h, "sec-websocket-protocol");
    match &acc.protocol {
        None => assert!(protos.is_empty()),
        Some(p) => {
            assert!(OFFERED.contains(&p.as_str()));
            assert_eq!(protos.len(), 1);
            let listed: Vec<&[u8]> = protos[0]
                .split(|&b| b == b',')
                .map(ows_trim)
                .filter(|t| !t.is_empty())
                .collect();
            assert_eq!(listed, [p.as_bytes()]);
        }
    }
    for v in header_values(h, "sec-websocket-extensions") {
        for ext in v.split(|&b| b == b',') {
            let name = ows_trim(ext.split(|&b| b == b';').next().unwrap_or(b""));
            assert!(
                name.is_empty() || name.eq_ignore_ascii_case(b"permessage-deflate"),
                "unoffered extension {name:?} accepted"
            );
        }
    }
    for e in &acc.extensions {
        assert!(e.name.eq_ignore_ascii_case("permessage-deflate"));
    }
}

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
    let mut r = httparse::Response::new(&mut slots);
    let n = match r.parse(stream) {
        Ok(httparse::Status::Complete(n)) => n,
        _ => return None,
    };
    if n > limits.max_handshake_bytes || r.code != Some(101) {
        return None;
    }
    let h = r.headers;
    if h.iter().any(|x| {
        std::str::from_utf8(x.value).is_err()
            || ["sec-websocket-protocol", "sec-websocket-extensions"]
                .iter()
                .any(|n| x.name.eq_ignore_ascii_case(n))
    }) {
        return None;
    }
    let accepts = header_values(h, "sec-websocket-accept");
    let ok = header_values(h, "upgrade")
        .iter()
        .any(|v| list_contains(v, "websocket"))
        && header_values(h, "connection")
            .iter()
            .any(|v| list_contains(v, "upgrade"))
        && accepts.len() == 1
        && ows_trim(accepts[0]) == ACCEPT;
    ok.then_some(n)
}
