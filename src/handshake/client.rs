//! Client side of the opening handshake (RFC 6455 §4.1).

use alloc::format;
use alloc::string::{String, ToString};
use alloc::vec::Vec;

use bytes::{Buf, BufMut, BytesMut};

use super::headers::{has_token, is_safe_value, is_token, is_visible, tokens};
use super::{accept_key, encode_key, find_head_end, parse_extensions, ExtensionOffer, Status};
use crate::error::{ApiMisuse, CapacityError, HandshakeError};
use crate::Limits;

/// Headers the handshake writes itself; callers may not set them.
const RESERVED: &[&str] = &[
    "host",
    "upgrade",
    "connection",
    "sec-websocket-key",
    "sec-websocket-version",
    "sec-websocket-protocol",
    "sec-websocket-extensions",
];

/// What the client asks for: where, which subprotocols and extensions, and
/// any extra headers (cookies, `Authorization`, `Origin`).
///
/// ```
/// use wsproto::handshake::ClientRequest;
/// let req = ClientRequest::from_url("wss://example.com:8443/chat?room=1")
///     .unwrap()
///     .protocol("chat")
///     .header("Authorization", "Bearer s3cret");
/// assert_eq!(req.host(), "example.com:8443");
/// assert_eq!(req.target(), "/chat?room=1");
/// assert!(req.is_secure());
/// assert_eq!(req.connect_addr(), ("example.com", 8443));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientRequest {
    host_header: String,
    connect_host: String,
    port: u16,
    secure: bool,
    target: String,
    protocols: Vec<String>,
    extensions: Vec<String>,
    headers: Vec<(String, String)>,
    invalid: bool,
    #[cfg(feature = "deflate")]
    deflate: Vec<crate::extension::deflate::DeflateConfig>,
}

impl ClientRequest {
    /// A request for `target` (path and query, e.g. `/chat?x=1`) on `host`
    /// (the `Host` header value, with a port if it is not 80). Connects to
    /// the host and port in `host` (port 80 when absent; IPv6 in brackets).
    /// [`from_url`](Self::from_url) also handles `wss://` and default ports.
    pub fn new(host: impl Into<String>, target: impl Into<String>) -> Self {
        let host_header: String = host.into();
        let mut target: String = target.into();
        if target.is_empty() {
            target.push('/');
        }
        let (connect_host, port) = split_host_port(&host_header, 80);
        let invalid = host_header.is_empty()
            || connect_host.is_none()
            || !is_visible(&host_header)
            || !is_visible(&target)
            || !target.starts_with('/');
        ClientRequest {
            connect_host: connect_host.unwrap_or_default(),
            host_header,
            port,
            secure: false,
            target,
            protocols: Vec::new(),
            extensions: Vec::new(),
            headers: Vec::new(),
            invalid,
            #[cfg(feature = "deflate")]
            deflate: Vec::new(),
        }
    }

    /// A request from a `ws://` or `wss://` URL (§3). Fragments (`#...`) and
    /// user info are refused.
    pub fn from_url(url: &str) -> Result<Self, ApiMisuse> {
        let (secure, rest) = if let Some(r) = strip_prefix_ci(url, "ws://") {
            (false, r)
        } else if let Some(r) = strip_prefix_ci(url, "wss://") {
            (true, r)
        } else {
            return Err(ApiMisuse::InvalidUrl);
        };
        // §3: "Fragment identifiers are meaningless in the context of
        // WebSocket URIs and MUST NOT be used on these URIs."
        if rest.contains('#') || !is_visible(rest) {
            return Err(ApiMisuse::InvalidUrl);
        }
        let split = rest.find(['/', '?']).unwrap_or(rest.len());
        let (authority, path) = rest.split_at(split);
        if authority.is_empty() || authority.contains('@') {
            return Err(ApiMisuse::InvalidUrl);
        }
        let default_port = if secure { 443 } else { 80 };
        let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
            let (h, after) = v6.split_once(']').ok_or(ApiMisuse::InvalidUrl)?;
            let port = match after {
                "" => default_port,
                p => parse_port(p.strip_prefix(':').ok_or(ApiMisuse::InvalidUrl)?)?,
            };
            (&authority[..h.len() + 2], port)
        } else {
            match authority.rsplit_once(':') {
                // a bare host never contains ':' (IPv6 needs brackets)
                Some((h, _)) if h.contains(':') => return Err(ApiMisuse::InvalidUrl),
                Some((h, p)) => (h, parse_port(p)?),
                None => (authority, default_port),
            }
        };
        if host.is_empty() || host == "[]" {
            return Err(ApiMisuse::InvalidUrl);
        }
        let host_header = if port == default_port {
            host.to_string()
        } else {
            format!("{host}:{port}")
        };
        let target = match path {
            "" => "/".to_string(),
            p if p.starts_with('?') => format!("/{p}"),
            p => p.to_string(),
        };
        let connect_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        Ok(ClientRequest {
            host_header,
            connect_host,
            port,
            secure,
            target,
            protocols: Vec::new(),
            extensions: Vec::new(),
            headers: Vec::new(),
            invalid: false,
            #[cfg(feature = "deflate")]
            deflate: Vec::new(),
        })
    }

    /// Offer a subprotocol (in preference order, §4.1 item 10: tokens, each
    /// offered once).
    pub fn protocol(mut self, name: impl Into<String>) -> Self {
        let name = name.into();
        self.invalid |= !is_token(&name) || self.protocols.contains(&name);
        self.protocols.push(name);
        self
    }

    /// Offer several subprotocols.
    pub fn protocols<I, S>(mut self, names: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        for n in names {
            self = self.protocol(n);
        }
        self
    }

    /// Offer an extension, written verbatim into `Sec-WebSocket-Extensions`
    /// (e.g. `"x-custom; mode=1"`), and accept a server that selects it.
    ///
    /// The connection itself implements no extension yet: frames with RSV
    /// bits set still fail it with 1002, so this is only useful for
    /// extensions that do not touch frames. permessage-deflate is coming as
    /// the `deflate` feature.
    pub fn extension(mut self, offer: impl Into<String>) -> Self {
        let offer = offer.into();
        self.invalid |= !is_safe_value(&offer) || parse_extensions(&offer).is_err();
        self.extensions.push(offer);
        self
    }

    /// Offer permessage-deflate (RFC 7692) with these parameters. Call it
    /// several times for several offers in preference order (§5.1). The
    /// negotiated parameters come back in [`Accepted::deflate`].
    #[cfg(feature = "deflate")]
    pub fn deflate(mut self, cfg: crate::extension::deflate::DeflateConfig) -> Self {
        self.extensions.push(cfg.offer());
        self.deflate.push(cfg);
        self
    }

    /// Whether permessage-deflate is offered.
    #[cfg(feature = "deflate")]
    pub fn offers_deflate(&self) -> bool {
        !self.deflate.is_empty()
    }

    /// Add a header (e.g. `Authorization`, `Cookie`, `Origin`). The handshake
    /// headers themselves (`Host`, `Upgrade`, `Connection`,
    /// `Sec-WebSocket-*`) cannot be set this way.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        let (name, value) = (name.into(), value.into());
        self.invalid |= !is_token(&name)
            || !is_safe_value(&value)
            || RESERVED.iter().any(|r| r.eq_ignore_ascii_case(&name));
        self.headers.push((name, value));
        self
    }

    /// The `Host` header value.
    pub fn host(&self) -> &str {
        &self.host_header
    }

    /// The request target (path and query).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// Host and port to open the TCP connection to.
    pub fn connect_addr(&self) -> (&str, u16) {
        (&self.connect_host, self.port)
    }

    /// Whether the URL was `wss://` (the caller provides the TLS layer).
    pub fn is_secure(&self) -> bool {
        self.secure
    }

    /// Offered subprotocols.
    pub fn offered_protocols(&self) -> &[String] {
        &self.protocols
    }
}

/// Host (without brackets) and port of a `Host`-style value; the host is
/// `None` when the value is malformed.
fn split_host_port(authority: &str, default_port: u16) -> (Option<String>, u16) {
    if let Some(v6) = authority.strip_prefix('[') {
        let Some((h, after)) = v6.split_once(']') else {
            return (None, default_port);
        };
        return match after {
            "" => (Some(h.to_string()), default_port),
            p => match p.strip_prefix(':').map(parse_port) {
                Some(Ok(port)) => (Some(h.to_string()), port),
                _ => (None, default_port),
            },
        };
    }
    match authority.rsplit_once(':') {
        Some((h, _)) if h.contains(':') => (None, default_port),
        Some((h, p)) => match parse_port(p) {
            Ok(port) => (Some(h.to_string()), port),
            Err(_) => (None, default_port),
        },
        None => (Some(authority.to_string()), default_port),
    }
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn parse_port(p: &str) -> Result<u16, ApiMisuse> {
    if p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ApiMisuse::InvalidUrl);
    }
    p.parse().map_err(|_| ApiMisuse::InvalidUrl)
}

/// The server accepted the handshake.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Accepted {
    /// The subprotocol the server selected (always one we offered).
    pub protocol: Option<String>,
    /// The permessage-deflate parameters the server agreed to (pass them to
    /// [`Connection::enable_deflate`](crate::Connection::enable_deflate); the
    /// I/O drivers do).
    #[cfg(feature = "deflate")]
    pub deflate: Option<crate::extension::deflate::DeflateParams>,
    /// The extensions the server selected (always ones we offered).
    pub extensions: Vec<ExtensionOffer>,
    /// Every response header, in order.
    pub headers: Vec<(String, Vec<u8>)>,
}

/// Writes a client request and validates the server's response (§4.1).
///
/// ```
/// use bytes::BytesMut;
/// use wsproto::handshake::{ClientHandshake, ClientRequest, Status};
/// use wsproto::Limits;
///
/// let req = ClientRequest::new("server.example.com", "/chat").protocol("chat");
/// let mut out = Vec::new();
/// // RFC 6455 §4.1 sample nonce; use random bytes in real code.
/// let mut hs = ClientHandshake::new(&req, *b"the sample nonce", &Limits::default(), &mut out).unwrap();
/// assert!(out.starts_with(b"GET /chat HTTP/1.1\r\n"));
///
/// let mut input = BytesMut::from(&b"HTTP/1.1 101 Switching Protocols\r\n\
///     Upgrade: websocket\r\nConnection: Upgrade\r\n\
///     Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\
///     Sec-WebSocket-Protocol: chat\r\n\r\n\x81\x02hi"[..]);
/// let Status::Complete(accepted) = hs.receive(&mut input).unwrap() else { panic!() };
/// assert_eq!(accepted.protocol.as_deref(), Some("chat"));
/// assert_eq!(&input[..], b"\x81\x02hi"); // a frame right behind the head stays for the connection
/// ```
#[derive(Debug, Clone)]
pub struct ClientHandshake {
    expected_accept: [u8; 28],
    protocols: Vec<String>,
    extension_names: Vec<String>,
    #[cfg(feature = "deflate")]
    deflate: Vec<crate::extension::deflate::DeflateConfig>,
    max_bytes: usize,
    max_headers: usize,
    scanned: usize,
}

impl ClientHandshake {
    /// Write the request for `req` into `out`, with `Sec-WebSocket-Key` made
    /// from `nonce` (16 unpredictable bytes, §4.1 item 7).
    pub fn new(
        req: &ClientRequest,
        nonce: [u8; 16],
        limits: &Limits,
        out: &mut impl BufMut,
    ) -> Result<Self, ApiMisuse> {
        if req.invalid {
            return Err(ApiMisuse::InvalidHeader);
        }
        let key = encode_key(&nonce);
        let mut put = |s: &str| out.put_slice(s.as_bytes());
        put("GET ");
        put(&req.target);
        put(" HTTP/1.1\r\nHost: ");
        put(&req.host_header);
        put("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
        put(core::str::from_utf8(&key).expect("base64 is ASCII"));
        put("\r\nSec-WebSocket-Version: 13\r\n");
        if !req.protocols.is_empty() {
            put("Sec-WebSocket-Protocol: ");
            put(&req.protocols.join(", "));
            put("\r\n");
        }
        if !req.extensions.is_empty() {
            put("Sec-WebSocket-Extensions: ");
            put(&req.extensions.join(", "));
            put("\r\n");
        }
        for (k, v) in &req.headers {
            put(k);
            put(": ");
            put(v);
            put("\r\n");
        }
        put("\r\n");
        let extension_names = req
            .extensions
            .iter()
            .filter_map(|e| parse_extensions(e).ok())
            .flatten()
            .map(|e| e.name)
            .collect();
        Ok(ClientHandshake {
            expected_accept: accept_key(&key),
            protocols: req.protocols.clone(),
            extension_names,
            #[cfg(feature = "deflate")]
            deflate: req.deflate.clone(),
            max_bytes: limits.max_handshake_bytes,
            max_headers: limits.max_headers,
            scanned: 0,
        })
    }

    /// Feed the response bytes received so far. On `Complete`, the head is
    /// consumed from `buf`; whatever follows belongs to the connection.
    pub fn receive(&mut self, buf: &mut BytesMut) -> Result<Status<Accepted>, HandshakeError> {
        let too_big = HandshakeError::Capacity(CapacityError::HandshakeTooLarge {
            limit: self.max_bytes,
        });
        let Some(end) = find_head_end(buf, self.scanned) else {
            if buf.len() > self.max_bytes {
                return Err(too_big);
            }
            self.scanned = buf.len();
            return Ok(Status::Partial);
        };
        if end > self.max_bytes {
            return Err(too_big);
        }
        let mut slots = alloc::vec![httparse::EMPTY_HEADER; self.max_headers];
        let mut resp = httparse::Response::new(&mut slots);
        match resp.parse(&buf[..end]) {
            Ok(httparse::Status::Complete(n)) if n == end => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HandshakeError::Capacity(CapacityError::TooManyHeaders {
                    limit: self.max_headers,
                }))
            }
            _ => return Err(HandshakeError::MalformedHttp),
        }
        let accepted = self.validate(&resp)?;
        buf.advance(end);
        Ok(Status::Complete(accepted))
    }

    fn validate(&self, resp: &httparse::Response<'_, '_>) -> Result<Accepted, HandshakeError> {
        // §4.1 item 1 of the response checks: "If the status code received
        // from the server is not 101, the client handles the response per
        // HTTP procedures" — for us, a failure the caller can inspect.
        let code = resp.code.unwrap_or(0);
        if code != 101 {
            return Err(HandshakeError::UnexpectedStatus(code));
        }
        let mut upgrade = false;
        let mut connection = false;
        let mut accept_ok = false;
        let mut accept_seen = false;
        let mut protocol: Option<String> = None;
        #[cfg(feature = "deflate")]
        let mut deflate = None;
        let mut extensions = Vec::new();
        let mut headers = Vec::with_capacity(resp.headers.len());
        for h in resp.headers.iter() {
            headers.push((h.name.to_string(), h.value.to_vec()));
            let text = core::str::from_utf8(h.value).ok();
            let name = h.name;
            if name.eq_ignore_ascii_case("upgrade") {
                upgrade |= text.is_some_and(|v| has_token(v, "websocket"));
            } else if name.eq_ignore_ascii_case("connection") {
                connection |= text.is_some_and(|v| has_token(v, "upgrade"));
            } else if name.eq_ignore_ascii_case("sec-websocket-accept") {
                // a duplicate, even an identical one, is malformed
                accept_ok = !accept_seen && trim(h.value) == self.expected_accept;
                accept_seen = true;
            } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                // §4.1: the server selects exactly one of the offered values.
                let v = text.ok_or(HandshakeError::UnofferedProtocol)?;
                let mut list = tokens(v);
                let chosen = list.next().ok_or(HandshakeError::UnofferedProtocol)?;
                if list.next().is_some()
                    || protocol.is_some()
                    || !self.protocols.iter().any(|p| p == chosen)
                {
                    return Err(HandshakeError::UnofferedProtocol);
                }
                protocol = Some(chosen.to_string());
            } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
                let v = text.ok_or(HandshakeError::InvalidHeader("Sec-WebSocket-Extensions"))?;
                for e in parse_extensions(v)? {
                    // §4.1: "the use of an extension that was not present in
                    // the client's handshake ... MUST _Fail_".
                    if !self
                        .extension_names
                        .iter()
                        .any(|n| n.eq_ignore_ascii_case(&e.name))
                    {
                        return Err(HandshakeError::UnofferedExtension);
                    }
                    #[cfg(feature = "deflate")]
                    if e.name.eq_ignore_ascii_case(crate::extension::deflate::NAME) {
                        // §7.1: exactly one accepted element, matching one of
                        // our offers (RFC 7692 §5.1)
                        if deflate.is_some() {
                            return Err(HandshakeError::InvalidHeader("Sec-WebSocket-Extensions"));
                        }
                        let mut result = Err(HandshakeError::UnofferedExtension);
                        for offer in &self.deflate {
                            result = offer.accept_response(&e);
                            if result.is_ok() {
                                break;
                            }
                        }
                        deflate = Some(result?);
                    }
                    extensions.push(e);
                }
            }
        }
        if !upgrade {
            return Err(HandshakeError::MissingUpgrade);
        }
        if !connection {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        if !accept_ok {
            return Err(HandshakeError::InvalidAccept);
        }
        Ok(Accepted {
            protocol,
            #[cfg(feature = "deflate")]
            deflate,
            extensions,
            headers,
        })
    }
}

fn trim(v: &[u8]) -> &[u8] {
    let start = v
        .iter()
        .position(|b| !matches!(b, b' ' | b'\t'))
        .unwrap_or(v.len());
    let end = v
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t'))
        .map_or(start, |e| e + 1);
    &v[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: [u8; 16] = *b"the sample nonce";
    const ACCEPT: &str = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";

    fn start(req: &ClientRequest) -> (ClientHandshake, Vec<u8>) {
        let mut out = Vec::new();
        let hs = ClientHandshake::new(req, NONCE, &Limits::default(), &mut out).unwrap();
        (hs, out)
    }

    fn response(extra: &str) -> BytesMut {
        BytesMut::from(
            format!(
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n{extra}\r\n"
            )
            .as_bytes(),
        )
    }

    #[test]
    fn request_bytes() {
        let req = ClientRequest::new("server.example.com", "/chat")
            .protocols(["chat", "superchat"])
            .header("Origin", "http://example.com");
        let (_, out) = start(&req);
        assert_eq!(
            core::str::from_utf8(&out).unwrap(),
            "GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: chat, superchat\r\n\
             Origin: http://example.com\r\n\r\n"
        );
    }

    #[test]
    fn accepts_valid_response_split_anywhere() {
        let req = ClientRequest::new("h", "/").protocol("chat");
        let full = response("Sec-WebSocket-Protocol: chat\r\n");
        for cut in 0..full.len() {
            let (mut hs, _) = start(&req);
            let mut buf = BytesMut::from(&full[..cut]);
            assert_eq!(hs.receive(&mut buf), Ok(Status::Partial), "cut {cut}");
            buf.extend_from_slice(&full[cut..]);
            let Status::Complete(a) = hs.receive(&mut buf).unwrap() else {
                panic!("incomplete at {cut}")
            };
            assert_eq!(a.protocol.as_deref(), Some("chat"));
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn rejects_bad_responses() {
        let req = ClientRequest::new("h", "/")
            .protocol("chat")
            .extension("x-a");
        let cases: Vec<(BytesMut, HandshakeError)> = alloc::vec![
            (
                BytesMut::from(&b"HTTP/1.1 200 OK\r\n\r\n"[..]),
                HandshakeError::UnexpectedStatus(200),
            ),
            (
                BytesMut::from(
                    format!("HTTP/1.1 101 X\r\nConnection: upgrade\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n").as_bytes(),
                ),
                HandshakeError::MissingUpgrade,
            ),
            (
                BytesMut::from(
                    format!("HTTP/1.1 101 X\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: {ACCEPT}\r\n\r\n").as_bytes(),
                ),
                HandshakeError::MissingConnectionUpgrade,
            ),
            (
                BytesMut::from(&b"HTTP/1.1 101 X\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n"[..]),
                HandshakeError::InvalidAccept,
            ),
            (response("Sec-WebSocket-Protocol: other\r\n"), HandshakeError::UnofferedProtocol),
            (response("Sec-WebSocket-Protocol: chat, chat\r\n"), HandshakeError::UnofferedProtocol),
            (response("Sec-WebSocket-Extensions: x-b\r\n"), HandshakeError::UnofferedExtension),
            (
                response(&format!("Sec-WebSocket-Accept: {ACCEPT}\r\n")),
                HandshakeError::InvalidAccept,
            ),
            (BytesMut::from(&b"HTTP/1.1 101\r\nBad Header\r\n\r\n"[..]), HandshakeError::MalformedHttp),
        ];
        for (mut resp, err) in cases {
            let (mut hs, _) = start(&req);
            assert_eq!(
                hs.receive(&mut resp),
                Err(err),
                "{:?}",
                core::str::from_utf8(&resp)
            );
        }
    }

    #[test]
    fn case_insensitive_tokens_and_selected_extension() {
        let req = ClientRequest::new("h", "/").extension("x-a; p=1");
        let (mut hs, _) = start(&req);
        let mut resp = BytesMut::from(
            format!("HTTP/1.1 101 OK\r\nupgrade: WebSocket\r\nconnection: keep-alive, UPGRADE\r\nsec-websocket-accept:  {ACCEPT} \r\nSec-WebSocket-Extensions: x-a\r\n\r\n")
                .as_bytes(),
        );
        let Status::Complete(a) = hs.receive(&mut resp).unwrap() else {
            panic!()
        };
        assert_eq!(a.extensions[0].name, "x-a");
        assert_eq!(a.protocol, None);
    }

    #[test]
    fn oversized_response_is_refused() {
        let limits = Limits {
            max_handshake_bytes: 64,
            ..Limits::default()
        };
        let mut out = Vec::new();
        let mut hs =
            ClientHandshake::new(&ClientRequest::new("h", "/"), NONCE, &limits, &mut out).unwrap();
        let mut buf = BytesMut::from(&[b'a'; 65][..]);
        assert!(matches!(
            hs.receive(&mut buf),
            Err(HandshakeError::Capacity(_))
        ));
    }

    #[test]
    fn urls() {
        let r = ClientRequest::from_url("ws://127.0.0.1:9001").unwrap();
        assert_eq!(
            (r.host(), r.target(), r.connect_addr()),
            ("127.0.0.1:9001", "/", ("127.0.0.1", 9001))
        );
        let r = ClientRequest::from_url("ws://[::1]:9001/runCase?case=1&agent=x").unwrap();
        assert_eq!(
            (r.host(), r.target(), r.connect_addr()),
            ("[::1]:9001", "/runCase?case=1&agent=x", ("::1", 9001))
        );
        let r = ClientRequest::from_url("WSS://example.com?x=1").unwrap();
        assert_eq!(
            (r.host(), r.target(), r.connect_addr()),
            ("example.com", "/?x=1", ("example.com", 443))
        );
        for bad in [
            "http://x/",
            "ws://",
            "ws://h/#frag",
            "ws://u@h/",
            "ws://h:99999/",
            "ws://h:/",
            "ws://h/a b",
            "ws://[::1/",
        ] {
            assert_eq!(
                ClientRequest::from_url(bad),
                Err(ApiMisuse::InvalidUrl),
                "{bad}"
            );
        }
    }

    #[test]
    fn invalid_request_parts_are_refused() {
        let limits = Limits::default();
        let bad = [
            ClientRequest::new("h", "/").header("Upgrade", "x"),
            ClientRequest::new("h", "/").header("X-A", "a\r\nInjected: 1"),
            ClientRequest::new("h", "/").header("Bad Name", "1"),
            ClientRequest::new("h", "/").protocol("has space"),
            ClientRequest::new("h\r\n", "/"),
        ];
        for req in bad {
            let mut out = Vec::new();
            assert_eq!(
                ClientHandshake::new(&req, NONCE, &limits, &mut out).unwrap_err(),
                ApiMisuse::InvalidHeader
            );
            assert!(out.is_empty());
        }
    }
}
