//! The opening handshake through the public API: the client's request, URL
//! parsing, response validation, the server's parsing of real browsers' and
//! libraries' requests, error responses, and the hand-over of bytes that
//! follow the head to the `Connection`.

mod common;

use bytes::BytesMut;
use wsproto::handshake::{
    accept_key, AcceptOptions, ClientHandshake, ClientRequest, IncomingRequest, ServerHandshake,
    Status,
};
use wsproto::{
    ApiMisuse, CapacityError, Config, Connection, Event, HandshakeError, Limits, Message, Role,
};

use common::{drain, endpoint, poll_all};

const RFC_NONCE: [u8; 16] = *b"the sample nonce";
const RFC_KEY: &str = "dGhlIHNhbXBsZSBub25jZQ==";
const RFC_ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

/// A parsed HTTP response: status, headers (name, value), body.
struct HttpResponse {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl HttpResponse {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn parse_response(bytes: &[u8]) -> HttpResponse {
    let mut slots = [httparse::EMPTY_HEADER; 32];
    let mut resp = httparse::Response::new(&mut slots);
    let httparse::Status::Complete(n) = resp.parse(bytes).expect("valid HTTP") else {
        panic!("incomplete response: {:?}", String::from_utf8_lossy(bytes))
    };
    let headers: Vec<(String, String)> = resp
        .headers
        .iter()
        .map(|h| {
            (
                h.name.to_string(),
                String::from_utf8(h.value.to_vec()).unwrap(),
            )
        })
        .collect();
    HttpResponse {
        status: resp.code.unwrap(),
        headers,
        body: bytes[n..].to_vec(),
    }
}

fn server_parse(head: impl AsRef<[u8]>) -> Result<Status<IncomingRequest>, HandshakeError> {
    ServerHandshake::new(&Limits::default()).receive(&mut BytesMut::from(head.as_ref()))
}

fn complete<T>(s: Status<T>) -> T {
    match s {
        Status::Complete(t) => t,
        Status::Partial => panic!("partial"),
    }
}

// ----------------------------------------------------------- client request

#[test]
fn client_request_bytes() {
    let req = ClientRequest::new("server.example.com", "/chat?room=1")
        .protocols(["chat", "superchat"])
        .extension("x-custom; mode=1")
        .header("Origin", "http://example.com")
        .header("Cookie", "a=b");
    let mut out = Vec::new();
    ClientHandshake::new(&req, RFC_NONCE, &Limits::default(), &mut out).unwrap();
    assert_eq!(
        String::from_utf8(out.clone()).unwrap(),
        "GET /chat?room=1 HTTP/1.1\r\n\
         Host: server.example.com\r\n\
         Upgrade: websocket\r\n\
         Connection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
         Sec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: chat, superchat\r\n\
         Sec-WebSocket-Extensions: x-custom; mode=1\r\n\
         Origin: http://example.com\r\n\
         Cookie: a=b\r\n\r\n"
    );
    // and our own server accepts it as is
    let incoming = complete(
        ServerHandshake::new(&Limits::default())
            .receive(&mut BytesMut::from(&out[..]))
            .unwrap(),
    );
    assert_eq!(incoming.path(), "/chat");
    assert_eq!(incoming.query(), Some("room=1"));
    assert_eq!(incoming.protocols(), ["chat", "superchat"]);
    assert_eq!(incoming.extensions()[0].name, "x-custom");
    assert_eq!(incoming.origin(), Some("http://example.com"));
    assert_eq!(incoming.header("cookie"), Some("a=b"));
    assert_eq!(incoming.key(), RFC_KEY);
}

#[test]
fn each_nonce_gives_its_own_key_and_accept() {
    let req = ClientRequest::new("h", "/");
    let mut keys = Vec::new();
    for i in 0..4u8 {
        let mut out = Vec::new();
        ClientHandshake::new(&req, [i; 16], &Limits::default(), &mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let key = text
            .lines()
            .find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))
            .unwrap()
            .to_string();
        keys.push(key);
    }
    keys.dedup();
    assert_eq!(keys.len(), 4);
}

#[test]
fn invalid_request_parts_are_refused_without_writing() {
    let bad = [
        (
            "reserved header",
            ClientRequest::new("h", "/").header("Sec-WebSocket-Key", "x"),
        ),
        (
            "reserved header, other case",
            ClientRequest::new("h", "/").header("host", "x"),
        ),
        (
            "CRLF injection",
            ClientRequest::new("h", "/").header("X-A", "1\r\nX-B: 2"),
        ),
        (
            "header name with space",
            ClientRequest::new("h", "/").header("X A", "1"),
        ),
        (
            "protocol not a token",
            ClientRequest::new("h", "/").protocol("a,b"),
        ),
        ("empty host", ClientRequest::new("", "/")),
        ("target with space", ClientRequest::new("h", "/a b")),
        ("relative target", ClientRequest::new("h", "chat")),
        (
            "malformed extension",
            ClientRequest::new("h", "/").extension("x; =1"),
        ),
    ];
    for (name, req) in bad {
        let mut out = Vec::new();
        assert_eq!(
            ClientHandshake::new(&req, RFC_NONCE, &Limits::default(), &mut out).unwrap_err(),
            ApiMisuse::InvalidHeader,
            "{name}"
        );
        assert!(out.is_empty(), "{name}");
    }
}

#[test]
fn url_parsing() {
    // (url, Host header, target, connect host, port, secure)
    let good: &[(&str, &str, &str, &str, u16, bool)] = &[
        (
            "ws://example.com",
            "example.com",
            "/",
            "example.com",
            80,
            false,
        ),
        (
            "ws://example.com/",
            "example.com",
            "/",
            "example.com",
            80,
            false,
        ),
        (
            "wss://example.com",
            "example.com",
            "/",
            "example.com",
            443,
            true,
        ),
        (
            "ws://example.com:80/x",
            "example.com",
            "/x",
            "example.com",
            80,
            false,
        ),
        (
            "wss://example.com:443/x",
            "example.com",
            "/x",
            "example.com",
            443,
            true,
        ),
        (
            "ws://example.com:443/x",
            "example.com:443",
            "/x",
            "example.com",
            443,
            false,
        ),
        (
            "wss://example.com:80/x",
            "example.com:80",
            "/x",
            "example.com",
            80,
            true,
        ),
        (
            "ws://127.0.0.1:9001/runCase?case=1&agent=a",
            "127.0.0.1:9001",
            "/runCase?case=1&agent=a",
            "127.0.0.1",
            9001,
            false,
        ),
        (
            "ws://example.com?q=1",
            "example.com",
            "/?q=1",
            "example.com",
            80,
            false,
        ),
        ("ws://[::1]/", "[::1]", "/", "::1", 80, false),
        (
            "wss://[2001:db8::1]:8443/p",
            "[2001:db8::1]:8443",
            "/p",
            "2001:db8::1",
            8443,
            true,
        ),
        (
            "WS://Example.COM/Path",
            "Example.COM",
            "/Path",
            "Example.COM",
            80,
            false,
        ),
        ("ws://h:65535/", "h:65535", "/", "h", 65535, false),
    ];
    for &(url, host, target, connect, port, secure) in good {
        let r = ClientRequest::from_url(url).unwrap_or_else(|e| panic!("{url}: {e}"));
        assert_eq!(r.host(), host, "{url}");
        assert_eq!(r.target(), target, "{url}");
        assert_eq!(r.connect_addr(), (connect, port), "{url}");
        assert_eq!(r.is_secure(), secure, "{url}");
    }
    let bad = [
        "http://example.com/",
        "https://example.com/",
        "example.com",
        "ws://",
        "ws:///path",
        "ws://example.com/#frag",
        "ws://user:pass@example.com/",
        "ws://example.com:65536/",
        "ws://example.com:-1/",
        "ws://example.com:/",
        "ws://example.com:http/",
        "ws://[::1/",
        "ws://[]/",
        "ws://[::1]x/",
        "ws://exa mple.com/",
        "ws://example.com/a\r\nX: y",
    ];
    for url in bad {
        assert_eq!(
            ClientRequest::from_url(url),
            Err(ApiMisuse::InvalidUrl),
            "{url:?}"
        );
    }
}

#[test]
fn url_with_extra_colons_in_the_authority_is_refused() {
    // RFC 3986 §3.2.2: an IPv6 literal in a URI must be in brackets, and a
    // host never contains ':'. Today "ws://::1/" gives connect_addr (":", 1)
    // and Host "::1"; "ws://h:1:2/" gives ("h:1", 2).
    for url in ["ws://::1/", "ws://2001:db8::1/", "ws://h:1:2/"] {
        assert_eq!(
            ClientRequest::from_url(url),
            Err(ApiMisuse::InvalidUrl),
            "{url}"
        );
    }
}

/// Build the request for `req` and parse it with our own server.
fn round_trip(req: &ClientRequest) -> Result<IncomingRequest, String> {
    let mut out = Vec::new();
    ClientHandshake::new(req, RFC_NONCE, &Limits::default(), &mut out)
        .map_err(|e| format!("builder refused: {e}"))?;
    match ServerHandshake::new(&Limits::default()).receive(&mut BytesMut::from(&out[..])) {
        Ok(Status::Complete(r)) => Ok(r),
        Ok(Status::Partial) => Err("partial".into()),
        Err(e) => Err(format!("server refused what the client wrote: {e}")),
    }
}

#[test]
fn what_the_client_writes_our_server_parses() {
    for url in [
        "ws://h/",
        "ws://h/ü?q=ä",
        "ws://h/a\"b",
        "ws://h/<x>",
        "ws://h/%20?a=%2F",
        "wss://[::1]:8443/x",
    ] {
        let req = ClientRequest::from_url(url).unwrap();
        let parsed = round_trip(&req).unwrap_or_else(|e| panic!("{url:?}: {e}"));
        assert_eq!(parsed.target(), req.target(), "{url:?}");
        assert_eq!(parsed.host(), req.host(), "{url:?}");
    }
    let req = ClientRequest::new("h", "/").header("X-A", "tab\there, ünïcode");
    assert_eq!(
        round_trip(&req).unwrap().header("x-a"),
        Some("tab\there, ünïcode")
    );
}

#[test]
fn the_client_refuses_what_would_corrupt_the_request_head() {
    // Either the builder refuses (InvalidUrl / InvalidHeader) or the request
    // it writes is valid HTTP. Today all of these are written as is and then
    // fail to parse with HandshakeError::MalformedHttp.
    for url in ["ws://h/a\tb", "ws://h/a\x01b", "ws://h/a\x7fb"] {
        if let Ok(req) = ClientRequest::from_url(url) {
            assert!(
                round_trip(&req).is_ok(),
                "{url:?}: {:?}",
                round_trip(&req).err()
            );
        }
    }
    for target in ["/a\tb", "/\x01"] {
        let req = ClientRequest::new("h", target);
        if let Err(e) = round_trip(&req) {
            assert!(e.starts_with("builder refused"), "{target:?}: {e}");
        }
    }
    for value in ["\x01", "a\x1bb", "\x7f"] {
        let req = ClientRequest::new("h", "/").header("X-A", value);
        if let Err(e) = round_trip(&req) {
            assert!(e.starts_with("builder refused"), "{value:?}: {e}");
        }
    }
}

// ------------------------------------------------------- response checks

fn client(req: &ClientRequest) -> ClientHandshake {
    ClientHandshake::new(req, RFC_NONCE, &Limits::default(), &mut Vec::new()).unwrap()
}

fn response_101(extra: &str) -> String {
    format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {RFC_ACCEPT}\r\n{extra}\r\n"
    )
}

#[test]
fn valid_responses_are_accepted() {
    let req = ClientRequest::new("h", "/")
        .protocols(["v2", "v1"])
        .extension("x-a; p=1");
    let cases: &[(&str, Option<&str>, &[&str])] = &[
        ("", None, &[]),
        ("Sec-WebSocket-Protocol: v1\r\n", Some("v1"), &[]),
        ("Sec-WebSocket-Extensions: x-a\r\n", None, &["x-a"]),
        (
            "Sec-WebSocket-Protocol: v2\r\nSec-WebSocket-Extensions: X-A; p=1\r\nSet-Cookie: s=1\r\n",
            Some("v2"),
            &["X-A"],
        ),
    ];
    for &(extra, protocol, extensions) in cases {
        let mut buf = BytesMut::from(response_101(extra).as_bytes());
        let accepted = complete(client(&req).receive(&mut buf).unwrap());
        assert_eq!(accepted.protocol.as_deref(), protocol, "{extra:?}");
        let names: Vec<&str> = accepted
            .extensions
            .iter()
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(names, extensions, "{extra:?}");
        assert!(accepted
            .headers
            .iter()
            .any(|(k, v)| k == "Sec-WebSocket-Accept" && v == RFC_ACCEPT.as_bytes()));
        assert!(buf.is_empty());
    }
    // header names and token values are case-insensitive
    let mut buf = BytesMut::from(
        format!(
            "HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nCONNECTION: upgrade\r\n\
             sec-websocket-accept: {RFC_ACCEPT}\r\n\r\n"
        )
        .as_bytes(),
    );
    assert!(matches!(
        client(&req).receive(&mut buf),
        Ok(Status::Complete(_))
    ));
}

#[test]
fn invalid_responses_are_rejected() {
    let req = ClientRequest::new("h", "/")
        .protocol("chat")
        .extension("x-a");
    let cases: Vec<(String, HandshakeError)> = vec![
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n".into(),
            HandshakeError::UnexpectedStatus(200),
        ),
        (
            "HTTP/1.1 403 Forbidden\r\n\r\n".into(),
            HandshakeError::UnexpectedStatus(403),
        ),
        (
            "HTTP/1.1 426 Upgrade Required\r\nSec-WebSocket-Version: 13\r\n\r\n".into(),
            HandshakeError::UnexpectedStatus(426),
        ),
        (
            response_101("").replace(RFC_ACCEPT, "AAAAAAAAAAAAAAAAAAAAAAAAAAA="),
            HandshakeError::InvalidAccept,
        ),
        (
            // the accept for another key
            response_101("").replace(
                RFC_ACCEPT,
                std::str::from_utf8(&accept_key(b"x3JJHMbDL1EzLkh9GBhXDw==")).unwrap(),
            ),
            HandshakeError::InvalidAccept,
        ),
        (
            response_101("").replace(&format!("Sec-WebSocket-Accept: {RFC_ACCEPT}\r\n"), ""),
            HandshakeError::InvalidAccept,
        ),
        (
            response_101("").replace("Upgrade: websocket\r\n", ""),
            HandshakeError::MissingUpgrade,
        ),
        (
            response_101("").replace("Connection: Upgrade\r\n", "Connection: close\r\n"),
            HandshakeError::MissingConnectionUpgrade,
        ),
        (
            response_101("Sec-WebSocket-Protocol: superchat\r\n"),
            HandshakeError::UnofferedProtocol,
        ),
        (
            response_101("Sec-WebSocket-Protocol: chat, chat\r\n"),
            HandshakeError::UnofferedProtocol,
        ),
        (
            response_101("Sec-WebSocket-Extensions: permessage-deflate\r\n"),
            HandshakeError::UnofferedExtension,
        ),
        (
            "SSH-2.0-OpenSSH_9.6\r\n\r\n".into(),
            HandshakeError::MalformedHttp,
        ),
    ];
    for (resp, err) in cases {
        let mut buf = BytesMut::from(resp.as_bytes());
        assert_eq!(client(&req).receive(&mut buf), Err(err), "{resp:?}");
    }
    // a protocol the client never offered at all
    let mut buf = BytesMut::from(response_101("Sec-WebSocket-Protocol: chat\r\n").as_bytes());
    assert_eq!(
        client(&ClientRequest::new("h", "/")).receive(&mut buf),
        Err(HandshakeError::UnofferedProtocol)
    );
}

#[test]
fn response_split_anywhere_and_followed_by_a_frame() {
    let req = ClientRequest::new("h", "/");
    let mut full = response_101("").into_bytes();
    let head_len = full.len();
    full.extend_from_slice(&[0x81, 0x02, b'h', b'i']);
    for cut in 0..full.len() {
        let mut hs = client(&req);
        let mut buf = BytesMut::from(&full[..cut]);
        let first = hs.receive(&mut buf).unwrap();
        let accepted = if cut >= head_len {
            first
        } else {
            assert_eq!(first, Status::Partial, "cut {cut}");
            buf.extend_from_slice(&full[cut..]);
            hs.receive(&mut buf).unwrap()
        };
        assert!(matches!(accepted, Status::Complete(_)));
        let mut conn = endpoint(Role::Client, Config::default());
        conn.receive(&buf);
        if cut >= head_len {
            conn.receive(&full[cut..]);
        }
        assert_eq!(
            poll_all(&mut conn).unwrap(),
            vec![Event::Message(Message::text("hi"))],
            "cut {cut}"
        );
    }
}

#[test]
fn oversized_response_head_is_refused() {
    // (Limits is non_exhaustive: no struct literal outside the crate)
    let mut limits = Limits::default();
    limits.max_handshake_bytes = 256;
    let mut hs = ClientHandshake::new(
        &ClientRequest::new("h", "/"),
        RFC_NONCE,
        &limits,
        &mut Vec::new(),
    )
    .unwrap();
    let resp = response_101(&format!("X-Pad: {}\r\n", "p".repeat(300)));
    let err = hs
        .receive(&mut BytesMut::from(resp.as_bytes()))
        .unwrap_err();
    assert!(matches!(
        err,
        HandshakeError::Capacity(CapacityError::HandshakeTooLarge { limit: 256 })
    ));
}

// --------------------------------------------------- real-world requests

const CHROMIUM: &str = "GET /chat HTTP/1.1\r\n\
Host: localhost:8080\r\n\
Connection: Upgrade\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36\r\n\
Upgrade: websocket\r\n\
Origin: http://localhost:8080\r\n\
Sec-WebSocket-Version: 13\r\n\
Accept-Encoding: gzip, deflate, br, zstd\r\n\
Accept-Language: en-US,en;q=0.9\r\n\
Cookie: session=abc123; theme=dark\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
Sec-WebSocket-Protocol: chat, superchat\r\n\
\r\n";

const FIREFOX: &str = "GET /socket?token=xyz HTTP/1.1\r\n\
Host: example.com\r\n\
User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0\r\n\
Accept: */*\r\n\
Accept-Language: en-US,en;q=0.5\r\n\
Accept-Encoding: gzip, deflate, br\r\n\
Sec-WebSocket-Version: 13\r\n\
Origin: https://example.com\r\n\
Sec-WebSocket-Extensions: permessage-deflate\r\n\
Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\n\
DNT: 1\r\n\
Connection: keep-alive, Upgrade\r\n\
Sec-Fetch-Dest: empty\r\n\
Sec-Fetch-Mode: websocket\r\n\
Sec-Fetch-Site: same-origin\r\n\
Pragma: no-cache\r\n\
Cache-Control: no-cache\r\n\
Upgrade: websocket\r\n\
\r\n";

const PYTHON_WEBSOCKETS: &str = "GET /ws HTTP/1.1\r\n\
Host: 127.0.0.1:8765\r\n\
Upgrade: websocket\r\n\
Connection: Upgrade\r\n\
Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
User-Agent: Python/3.12 websockets/12.0\r\n\
\r\n";

const NODE_WS: &str = "GET / HTTP/1.1\r\n\
Sec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
Connection: Upgrade\r\n\
Upgrade: websocket\r\n\
Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\
Sec-WebSocket-Protocol: graphql-ws\r\n\
Host: [::1]:3000\r\n\
\r\n";

struct RealWorld {
    name: &'static str,
    head: &'static str,
    path: &'static str,
    query: Option<&'static str>,
    host: &'static str,
    origin: Option<&'static str>,
    protocols: &'static [&'static str],
    extension: &'static str,
    accept: &'static str,
}

#[test]
fn real_world_requests_are_accepted() {
    let cases = [
        RealWorld {
            name: "Chromium",
            head: CHROMIUM,
            path: "/chat",
            query: None,
            host: "localhost:8080",
            origin: Some("http://localhost:8080"),
            protocols: &["chat", "superchat"],
            extension: "permessage-deflate",
            accept: RFC_ACCEPT,
        },
        RealWorld {
            name: "Firefox",
            head: FIREFOX,
            path: "/socket",
            query: Some("token=xyz"),
            host: "example.com",
            origin: Some("https://example.com"),
            protocols: &[],
            extension: "permessage-deflate",
            accept: "HSmrc0sMlYUkAGmm5OPpG2HaGWk=",
        },
        RealWorld {
            name: "Python websockets",
            head: PYTHON_WEBSOCKETS,
            path: "/ws",
            query: None,
            host: "127.0.0.1:8765",
            origin: None,
            protocols: &[],
            extension: "permessage-deflate",
            accept: std::str::from_utf8(&ACCEPT_PY).unwrap(),
        },
        RealWorld {
            name: "Node ws",
            head: NODE_WS,
            path: "/",
            query: None,
            host: "[::1]:3000",
            origin: None,
            protocols: &["graphql-ws"],
            extension: "permessage-deflate",
            accept: RFC_ACCEPT,
        },
    ];
    for c in cases {
        let req = complete(server_parse(c.head).unwrap_or_else(|e| panic!("{}: {e}", c.name)));
        assert_eq!(req.method(), "GET", "{}", c.name);
        assert_eq!(req.path(), c.path, "{}", c.name);
        assert_eq!(req.query(), c.query, "{}", c.name);
        assert_eq!(req.host(), c.host, "{}", c.name);
        assert_eq!(req.origin(), c.origin, "{}", c.name);
        assert_eq!(req.protocols(), c.protocols, "{}", c.name);
        assert_eq!(req.extensions()[0].name, c.extension, "{}", c.name);
        let n_headers = c.head.lines().filter(|l| l.contains(": ")).count();
        assert_eq!(req.headers().count(), n_headers, "{}", c.name);

        // accept with the first offered protocol, no extension
        let mut opts = AcceptOptions::new();
        if let Some(p) = c.protocols.first() {
            opts = opts.protocol(*p);
        }
        let mut out = Vec::new();
        let _conn = req.accept(opts, &mut out, Config::default()).unwrap();
        let resp = parse_response(&out);
        assert_eq!(resp.status, 101, "{}", c.name);
        assert_eq!(resp.header("Upgrade"), Some("websocket"), "{}", c.name);
        assert_eq!(resp.header("Connection"), Some("Upgrade"), "{}", c.name);
        assert_eq!(
            resp.header("Sec-WebSocket-Accept"),
            Some(c.accept),
            "{}",
            c.name
        );
        assert_eq!(
            resp.header("Sec-WebSocket-Protocol"),
            c.protocols.first().copied(),
            "{}",
            c.name
        );
        // permessage-deflate was offered but not accepted: not in the answer
        assert_eq!(resp.header("Sec-WebSocket-Extensions"), None, "{}", c.name);
        assert!(resp.body.is_empty());
    }
}

/// The accept value for the Python request's key (bytes 1..=16).
const ACCEPT_PY: [u8; 28] = *b"C/0nmHhBztSRGR1CwL6Tf4ZjwpY=";

#[test]
fn accept_values_match_the_published_examples() {
    assert_eq!(&accept_key(RFC_KEY.as_bytes()), RFC_ACCEPT.as_bytes());
    // Wikipedia's example
    assert_eq!(
        &accept_key(b"x3JJHMbDL1EzLkh9GBhXDw=="),
        b"HSmrc0sMlYUkAGmm5OPpG2HaGWk="
    );
    assert_eq!(accept_key(b"AQIDBAUGBwgJCgsMDQ4PEA=="), ACCEPT_PY);
}

#[test]
fn a_request_split_at_every_byte_parses_the_same() {
    let full = CHROMIUM.as_bytes();
    for cut in 1..full.len() {
        let mut hs = ServerHandshake::new(&Limits::default());
        let mut buf = BytesMut::from(&full[..cut]);
        assert_eq!(hs.receive(&mut buf), Ok(Status::Partial), "cut {cut}");
        buf.extend_from_slice(&full[cut..]);
        let req = complete(hs.receive(&mut buf).unwrap());
        assert_eq!(req.key(), RFC_KEY);
        assert!(buf.is_empty());
    }
}

// ------------------------------------------------------- error responses

#[test]
fn invalid_requests_get_the_right_error_and_status() {
    let base = PYTHON_WEBSOCKETS;
    let cases: Vec<(Vec<u8>, HandshakeError, u16)> = vec![
        (
            base.replace("GET", "POST").into_bytes(),
            HandshakeError::MethodNotGet,
            405,
        ),
        (
            base.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8")
                .into_bytes(),
            HandshakeError::UnsupportedVersion,
            426,
        ),
        (
            base.replace("Sec-WebSocket-Version: 13\r\n", "")
                .into_bytes(),
            HandshakeError::UnsupportedVersion,
            426,
        ),
        (
            base.replace("Host: 127.0.0.1:8765\r\n", "").into_bytes(),
            HandshakeError::MissingHost,
            400,
        ),
        (
            base.replace("Upgrade: websocket\r\n", "").into_bytes(),
            HandshakeError::MissingUpgrade,
            400,
        ),
        (
            base.replace("Upgrade: websocket\r\n", "Upgrade: h2c\r\n")
                .into_bytes(),
            HandshakeError::MissingUpgrade,
            400,
        ),
        (
            base.replace("Connection: Upgrade\r\n", "Connection: keep-alive\r\n")
                .into_bytes(),
            HandshakeError::MissingConnectionUpgrade,
            400,
        ),
        (
            base.replace("AQIDBAUGBwgJCgsMDQ4PEA==", "AQIDBAUGBwgJCgsMDQ4P")
                .into_bytes(),
            HandshakeError::InvalidKey,
            400,
        ),
        (
            base.replace("Sec-WebSocket-Key: AQIDBAUGBwgJCgsMDQ4PEA==\r\n", "")
                .into_bytes(),
            HandshakeError::InvalidKey,
            400,
        ),
        (
            // a TLS ClientHello on the plain port
            b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\r\n\r\n".to_vec(),
            HandshakeError::MalformedHttp,
            400,
        ),
        (
            // (status_hint's docs say "400 otherwise"; the code answers 505)
            base.replace("HTTP/1.1", "HTTP/1.0").into_bytes(),
            HandshakeError::UnsupportedHttpVersion,
            505,
        ),
        (
            b"HELLO\r\n\r\n".to_vec(),
            HandshakeError::MalformedHttp,
            400,
        ),
    ];
    for (head, err, status) in cases {
        let got = server_parse(&head).unwrap_err();
        let head = String::from_utf8_lossy(&head);
        assert_eq!(got, err, "{head:?}");
        assert_eq!(got.status_hint(), status, "{head:?}");
        let mut out = Vec::new();
        got.write_response(&mut out);
        let resp = parse_response(&out);
        assert_eq!(resp.status, status, "{head:?}");
        assert_eq!(resp.header("Connection"), Some("close"));
        let len: usize = resp.header("Content-Length").unwrap().parse().unwrap();
        assert_eq!(resp.body.len(), len);
        if status == 426 {
            assert_eq!(resp.header("Sec-WebSocket-Version"), Some("13"));
        }
        if status == 405 {
            assert_eq!(resp.header("Allow"), Some("GET"));
        }
    }
}

#[test]
fn oversized_requests_get_431() {
    let mut limits = Limits::default();
    limits.max_handshake_bytes = 512;
    limits.max_headers = 8;
    // too many bytes (a huge cookie)
    let big = PYTHON_WEBSOCKETS.replace(
        "User-Agent",
        &format!("Cookie: {}\r\nUser-Agent", "c".repeat(600)),
    );
    let err = ServerHandshake::new(&limits)
        .receive(&mut BytesMut::from(big.as_bytes()))
        .unwrap_err();
    assert_eq!(err.status_hint(), 431);
    // too many header fields (Chromium sends 14)
    let mut few_headers = Limits::default();
    few_headers.max_headers = 8;
    let err = ServerHandshake::new(&few_headers)
        .receive(&mut BytesMut::from(CHROMIUM.as_bytes()))
        .unwrap_err();
    assert_eq!(
        err,
        HandshakeError::Capacity(CapacityError::TooManyHeaders { limit: 8 })
    );
    // no end of head at all: refused once past the limit
    let mut hs = ServerHandshake::new(&limits);
    let mut buf = BytesMut::new();
    let mut result = Ok(Status::Partial);
    for _ in 0..100 {
        buf.extend_from_slice(b"X-Endless: aaaaaaaaaa\r\n");
        result = hs.receive(&mut buf);
        if result.is_err() {
            break;
        }
    }
    let err = result.unwrap_err();
    assert!(buf.len() <= 512 + 23, "buffered {} bytes", buf.len());
    let mut out = Vec::new();
    err.write_response(&mut out);
    assert_eq!(parse_response(&out).status, 431);
}

#[test]
fn rejecting_with_a_custom_status() {
    let req = complete(server_parse(CHROMIUM).unwrap());
    let mut out = Vec::new();
    req.reject(
        401,
        &[("WWW-Authenticate", "Bearer realm=\"ws\"")],
        b"login first",
        &mut out,
    )
    .unwrap();
    let resp = parse_response(&out);
    assert_eq!(resp.status, 401);
    assert_eq!(resp.header("WWW-Authenticate"), Some("Bearer realm=\"ws\""));
    assert_eq!(resp.body, b"login first");
    // a 101 "rejection" or a header that breaks the head is refused
    let req = complete(server_parse(CHROMIUM).unwrap());
    assert_eq!(
        req.clone().reject(101, &[], b"", &mut Vec::new()),
        Err(ApiMisuse::InvalidHeader)
    );
    assert_eq!(
        req.reject(403, &[("X", "a\r\nb")], b"", &mut Vec::new()),
        Err(ApiMisuse::InvalidHeader)
    );
}

#[test]
fn accept_refuses_a_protocol_the_client_did_not_offer() {
    let req = complete(server_parse(CHROMIUM).unwrap());
    let mut out = Vec::new();
    assert_eq!(
        req.accept(
            AcceptOptions::new().protocol("mqtt"),
            &mut out,
            Config::default()
        )
        .unwrap_err(),
        ApiMisuse::ProtocolNotOffered
    );
    assert!(out.is_empty());
}

// --------------------------------------- bytes after the head, other stacks

#[test]
fn a_frame_in_the_same_buffer_as_the_request_is_delivered_after_accept() {
    let mut input = BytesMut::from(NODE_WS.as_bytes());
    // a masked "Hello" (RFC 6455 §5.7) and half of a ping
    input.extend_from_slice(&[
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58, 0x89, 0x82,
    ]);
    let req = complete(
        ServerHandshake::new(&Limits::default())
            .receive(&mut input)
            .unwrap(),
    );
    assert_eq!(input.len(), 13);
    let mut out = Vec::new();
    let mut conn = req
        .accept(AcceptOptions::new(), &mut out, Config::default())
        .unwrap();
    assert_eq!(parse_response(&out).status, 101);
    conn.receive(&input);
    assert_eq!(
        poll_all(&mut conn).unwrap(),
        vec![Event::Message(Message::text("Hello"))]
    );
    conn.receive(&[1, 2, 3, 4, b'o' ^ 1, b'k' ^ 2]);
    assert_eq!(
        poll_all(&mut conn).unwrap(),
        vec![Event::Ping(bytes::Bytes::from_static(b"ok"))]
    );
}

#[test]
fn from_parts_and_after_handshake_as_another_http_stack_would_use_them() {
    // as hyper hands them over: lower-case names, raw values
    let headers: Vec<(&str, &[u8])> = vec![
        ("host", b"example.com"),
        ("upgrade", b"websocket"),
        ("connection", b"Upgrade"),
        ("sec-websocket-key", b"x3JJHMbDL1EzLkh9GBhXDw=="),
        ("sec-websocket-version", b"13"),
        ("sec-websocket-protocol", b"graphql-transport-ws"),
        ("origin", b"https://example.com"),
    ];
    let req = IncomingRequest::from_parts("GET", "/graphql", headers.iter().copied()).unwrap();
    assert_eq!(req.origin(), Some("https://example.com"));
    let response = req
        .response_headers(
            &AcceptOptions::new()
                .protocol("graphql-transport-ws")
                .header("X-Served-By", "test"),
        )
        .unwrap();
    let get = |name: &str| {
        response
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(get("Upgrade"), Some("websocket"));
    assert_eq!(get("Connection"), Some("Upgrade"));
    assert_eq!(
        get("Sec-WebSocket-Accept"),
        Some("HSmrc0sMlYUkAGmm5OPpG2HaGWk=")
    );
    assert_eq!(get("Sec-WebSocket-Protocol"), Some("graphql-transport-ws"));
    assert_eq!(get("X-Served-By"), Some("test"));
    assert_eq!(
        req.response_headers(&AcceptOptions::new().protocol("other")),
        Err(ApiMisuse::ProtocolNotOffered)
    );
    assert_eq!(
        req.response_headers(&AcceptOptions::new().header("X", "a\nb")),
        Err(ApiMisuse::InvalidHeader)
    );

    // the stack read a frame past the head: it goes to the connection
    let leftover = [
        0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58,
    ];
    let mut server = Connection::after_handshake(Role::Server, Config::default(), &leftover);
    assert_eq!(server.role(), Role::Server);
    assert_eq!(
        poll_all(&mut server).unwrap(),
        vec![Event::Message(Message::text("Hello"))]
    );
    server.send(Message::text("Hi")).unwrap();
    let mut client =
        Connection::after_handshake(Role::Client, Config::default(), &drain(&mut server));
    assert_eq!(
        poll_all(&mut client).unwrap(),
        vec![Event::Message(Message::text("Hi"))]
    );

    // and from_parts validates like the built-in parser
    let bad: Vec<(&str, &[u8])> = vec![("host", b"h"), ("upgrade", b"websocket")];
    assert_eq!(
        IncomingRequest::from_parts("GET", "/", bad.iter().copied()),
        Err(HandshakeError::MissingConnectionUpgrade)
    );
    assert_eq!(
        IncomingRequest::from_parts("POST", "/", headers.iter().copied()),
        Err(HandshakeError::MethodNotGet)
    );
}

#[test]
fn full_handshake_between_our_client_and_server_then_messages() {
    let request = ClientRequest::from_url("ws://127.0.0.1:9/echo")
        .unwrap()
        .protocols(["v2", "v1"]);
    let mut wire = Vec::new();
    let mut client_hs =
        ClientHandshake::new(&request, [42; 16], &Limits::default(), &mut wire).unwrap();
    let mut server_in = BytesMut::from(&wire[..]);
    let req = complete(
        ServerHandshake::new(&Limits::default())
            .receive(&mut server_in)
            .unwrap(),
    );
    assert_eq!(req.host(), "127.0.0.1:9");
    let mut response = Vec::new();
    let chosen = req.protocols().last().unwrap().clone();
    let mut server = req
        .accept(
            AcceptOptions::new().protocol(chosen),
            &mut response,
            Config::default(),
        )
        .unwrap();
    // the server greets right behind its response
    server.send(Message::text("welcome")).unwrap();
    response.extend(drain(&mut server));

    let mut client_in = BytesMut::from(&response[..]);
    let accepted = complete(client_hs.receive(&mut client_in).unwrap());
    assert_eq!(accepted.protocol.as_deref(), Some("v1"));
    let mut client = Connection::after_handshake(Role::Client, Config::default(), &client_in);
    assert_eq!(
        poll_all(&mut client).unwrap(),
        vec![Event::Message(Message::text("welcome"))]
    );
}
