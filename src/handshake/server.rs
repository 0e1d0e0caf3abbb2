//! Server side of the opening handshake (RFC 6455 §4.2).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use base64::Engine;
use bytes::{Buf, BufMut, BytesMut};

use super::headers::{has_token, is_safe_value, is_token, tokens};
use super::{accept_key, find_head_end, parse_extensions, ExtensionOffer, Status};
use crate::connection::Connection;
use crate::error::{ApiMisuse, CapacityError, HandshakeError};
use crate::{Config, Limits};

/// Parses a client's opening handshake request (§4.2.1).
///
/// ```
/// use bytes::BytesMut;
/// use wsproto::handshake::{AcceptOptions, ServerHandshake, Status};
/// use wsproto::{Config, Limits};
///
/// let mut input = BytesMut::from(&b"GET /chat?room=1 HTTP/1.1\r\nHost: server.example.com\r\n\
///     Upgrade: websocket\r\nConnection: Upgrade\r\n\
///     Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\n\
///     Sec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n"[..]);
/// let mut hs = ServerHandshake::new(&Limits::default());
/// let Status::Complete(req) = hs.receive(&mut input).unwrap() else { panic!("partial") };
/// assert_eq!(req.path(), "/chat");
/// assert_eq!(req.query(), Some("room=1"));
/// assert_eq!(req.origin(), Some("http://example.com"));
/// assert_eq!(req.protocols(), ["chat", "superchat"]);
///
/// let mut out = Vec::new();
/// let conn = req.accept(AcceptOptions::new().protocol("chat"), &mut out, Config::default()).unwrap();
/// let response = String::from_utf8(out).unwrap();
/// assert!(response.starts_with("HTTP/1.1 101 Switching Protocols\r\n"));
/// assert!(response.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"));
/// assert!(response.contains("Sec-WebSocket-Protocol: chat\r\n"));
/// # let _ = conn;
/// ```
///
/// On an error, answer with
/// [`HandshakeError::write_response`] (400, 426 with
/// `Sec-WebSocket-Version: 13`, 431, ...) and close the connection.
#[derive(Debug, Clone)]
pub struct ServerHandshake {
    max_bytes: usize,
    max_headers: usize,
    scanned: usize,
}

impl ServerHandshake {
    /// A parser enforcing `limits.max_handshake_bytes` and
    /// `limits.max_headers`.
    pub fn new(limits: &Limits) -> Self {
        ServerHandshake {
            max_bytes: limits.max_handshake_bytes,
            max_headers: limits.max_headers,
            scanned: 0,
        }
    }

    /// Feed the request bytes received so far. On `Complete`, the head is
    /// consumed from `buf`; whatever follows belongs to the connection.
    /// Scanning is incremental: a client sending one byte at a time costs
    /// linear time.
    pub fn receive(
        &mut self,
        buf: &mut BytesMut,
    ) -> Result<Status<IncomingRequest>, HandshakeError> {
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
        // on the stack for the usual limit (64 slots, 2 KiB)
        let mut stack = [httparse::EMPTY_HEADER; 64];
        let mut heap = Vec::new();
        let slots: &mut [httparse::Header<'_>] = if self.max_headers <= stack.len() {
            &mut stack[..self.max_headers]
        } else {
            heap.resize(self.max_headers, httparse::EMPTY_HEADER);
            &mut heap
        };
        let mut req = httparse::Request::new(slots);
        match req.parse(&buf[..end]) {
            Ok(httparse::Status::Complete(n)) if n == end => {}
            Err(httparse::Error::TooManyHeaders) => {
                return Err(HandshakeError::Capacity(CapacityError::TooManyHeaders {
                    limit: self.max_headers,
                }))
            }
            _ => return Err(HandshakeError::MalformedHttp),
        }
        let method = req.method.unwrap_or("");
        let target = req.path.unwrap_or("");
        // §4.2.1 item 1: "An HTTP/1.1 or higher GET request".
        if req.version != Some(1) {
            return Err(HandshakeError::UnsupportedHttpVersion);
        }
        let incoming = IncomingRequest::from_parts(
            method,
            target,
            req.headers.iter().map(|h| (h.name, h.value)),
        )?;
        buf.advance(end);
        Ok(Status::Complete(incoming))
    }
}

/// Every header of a request, in order, in two shared buffers (names and
/// values) instead of two allocations per header.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct HeaderList {
    names: String,
    values: Vec<u8>,
    /// (name end, value end) per header; each starts where the previous
    /// one ended.
    ends: Vec<(u32, u32)>,
}

impl HeaderList {
    fn push(&mut self, name: &str, value: &[u8]) {
        if self.ends.is_empty() {
            // a browser's request: about 15 headers, 1 KiB
            self.names.reserve(256);
            self.values.reserve(1024);
            self.ends.reserve(16);
        }
        self.names.push_str(name);
        self.values.extend_from_slice(value);
        // heads are limited to far less than 4 GiB (Limits::max_handshake_bytes)
        self.ends
            .push((self.names.len() as u32, self.values.len() as u32));
    }

    fn iter(&self) -> impl Iterator<Item = (&str, &[u8])> {
        let mut start = (0usize, 0usize);
        self.ends.iter().map(move |&(n, v)| {
            let (n, v) = (n as usize, v as usize);
            let item = (&self.names[start.0..n], &self.values[start.1..v]);
            start = (n, v);
            item
        })
    }
}

/// A valid WebSocket upgrade request, waiting for the application's decision.
///
/// Everything the application may want to check before accepting is here:
/// path and query, `Host`, `Origin` (browsers always send it; check it
/// against an allow-list, §10.2), offered subprotocols and extensions, and
/// every header (cookies, `Authorization`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IncomingRequest {
    method: String,
    target: String,
    /// Where the resource name (path and query) starts in `target`: 0 for
    /// origin-form, after the authority for absolute-form.
    resource_start: usize,
    headers: HeaderList,
    host: String,
    origin: Option<String>,
    key: String,
    protocols: Vec<String>,
    extensions: Vec<ExtensionOffer>,
}

impl IncomingRequest {
    /// Validate a request parsed by another HTTP stack (which must have
    /// checked the HTTP version is 1.1 or later). `headers` are (name, value)
    /// pairs in order; duplicates are allowed where HTTP allows them.
    ///
    /// ```
    /// use wsproto::handshake::IncomingRequest;
    /// let headers = [
    ///     ("host", &b"example.com"[..]),
    ///     ("upgrade", b"websocket"),
    ///     ("connection", b"upgrade"),
    ///     ("sec-websocket-key", b"dGhlIHNhbXBsZSBub25jZQ=="),
    ///     ("sec-websocket-version", b"13"),
    /// ];
    /// let req = IncomingRequest::from_parts("GET", "/ws", headers).unwrap();
    /// let accept = req.response_headers(&Default::default()).unwrap();
    /// assert!(accept.contains(&("Sec-WebSocket-Accept".to_string(), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=".to_string())));
    /// ```
    pub fn from_parts<'a>(
        method: &str,
        target: &str,
        headers: impl IntoIterator<Item = (&'a str, &'a [u8])>,
    ) -> Result<Self, HandshakeError> {
        if method != "GET" {
            return Err(HandshakeError::MethodNotGet);
        }
        // §4.2.1 item 1: a "Request-URI ... that should be interpreted as a
        // /resource name/ or an absolute HTTP/HTTPS URI containing the
        // /resource name/" (and RFC 7230 §5.3.2: servers MUST accept the
        // absolute form).
        let resource_start = resource_offset(target).ok_or(HandshakeError::MalformedHttp)?;
        let mut host: Option<String> = None;
        let mut host_count = 0;
        let mut upgrade = false;
        let mut connection = false;
        let mut key: Option<String> = None;
        let mut key_count = 0;
        let mut version_ok = None::<bool>;
        let mut origin = None;
        let mut protocols = Vec::new();
        let mut extensions = Vec::new();
        let mut all = HeaderList::default();
        for (name, value) in headers {
            all.push(name, value);
            let text = core::str::from_utf8(value).ok().map(str::trim);
            if name.eq_ignore_ascii_case("host") {
                host_count += 1;
                host = text.map(str::to_string);
            } else if name.eq_ignore_ascii_case("upgrade") {
                upgrade |= text.is_some_and(|v| has_token(v, "websocket"));
            } else if name.eq_ignore_ascii_case("connection") {
                connection |= text.is_some_and(|v| has_token(v, "upgrade"));
            } else if name.eq_ignore_ascii_case("sec-websocket-key") {
                key_count += 1;
                key = text.map(str::to_string);
            } else if name.eq_ignore_ascii_case("sec-websocket-version") {
                // a repeated header must agree; any non-13 value fails
                let this = text == Some("13");
                version_ok = Some(version_ok.unwrap_or(true) && this);
            } else if name.eq_ignore_ascii_case("origin") {
                if origin.is_some() {
                    return Err(HandshakeError::InvalidHeader("Origin"));
                }
                origin = Some(
                    text.ok_or(HandshakeError::InvalidHeader("Origin"))?
                        .to_string(),
                );
            } else if name.eq_ignore_ascii_case("sec-websocket-protocol") {
                let v = text.ok_or(HandshakeError::InvalidHeader("Sec-WebSocket-Protocol"))?;
                for p in tokens(v) {
                    if !is_token(p) {
                        return Err(HandshakeError::InvalidHeader("Sec-WebSocket-Protocol"));
                    }
                    protocols.push(p.to_string());
                }
            } else if name.eq_ignore_ascii_case("sec-websocket-extensions") {
                let v = text.ok_or(HandshakeError::InvalidHeader("Sec-WebSocket-Extensions"))?;
                extensions.extend(parse_extensions(v)?);
            }
        }
        // §4.2.1 item 2: a |Host| header field.
        let host = match (host, host_count) {
            (Some(h), 1) if !h.is_empty() => h,
            _ => return Err(HandshakeError::MissingHost),
        };
        // item 3
        if !upgrade {
            return Err(HandshakeError::MissingUpgrade);
        }
        // item 4
        if !connection {
            return Err(HandshakeError::MissingConnectionUpgrade);
        }
        // item 5: "a base64-encoded value that, when decoded, is 16 bytes".
        let key = match (key, key_count) {
            (Some(k), 1) if decodes_to_16(&k) => k,
            _ => return Err(HandshakeError::InvalidKey),
        };
        // item 6, and §4.4 for the answer.
        if version_ok != Some(true) {
            return Err(HandshakeError::UnsupportedVersion);
        }
        Ok(IncomingRequest {
            method: method.to_string(),
            target: target.to_string(),
            resource_start,
            headers: all,
            host,
            origin,
            key,
            protocols,
            extensions,
        })
    }

    /// The request method (always `GET`).
    pub fn method(&self) -> &str {
        &self.method
    }

    /// The request target as sent (usually path and query; an absolute URI
    /// if the client sent one).
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The resource name: path and query, also for an absolute-URI target.
    pub fn resource(&self) -> &str {
        match &self.target[self.resource_start..] {
            "" => "/",
            r => r,
        }
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        let r = self.resource();
        r.split_once('?').map_or(r, |(p, _)| p)
    }

    /// The query string (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.resource().split_once('?').map(|(_, q)| q)
    }

    /// The `Host` header.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The `Origin` header (sent by browsers; §10.2).
    pub fn origin(&self) -> Option<&str> {
        self.origin.as_deref()
    }

    /// The `Sec-WebSocket-Key` header.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// Offered subprotocols, in the client's preference order.
    pub fn protocols(&self) -> &[String] {
        &self.protocols
    }

    /// Offered extensions, in order.
    pub fn extensions(&self) -> &[ExtensionOffer] {
        &self.extensions
    }

    /// Every header, in order, as (name, raw value).
    pub fn headers(&self) -> impl Iterator<Item = (&str, &[u8])> {
        self.headers.iter()
    }

    /// The first header called `name` (case-insensitive), if it is valid
    /// UTF-8.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| core::str::from_utf8(v).ok())
    }

    /// The headers of the `101 Switching Protocols` response for `opts`, for
    /// an HTTP stack that writes the response itself.
    pub fn response_headers(
        &self,
        opts: &AcceptOptions,
    ) -> Result<Vec<(String, String)>, ApiMisuse> {
        if let Some(p) = &opts.protocol {
            // §4.2.2 item 5.4: the selected value MUST be one the client offered.
            if !self.protocols.iter().any(|o| o == p) {
                return Err(ApiMisuse::ProtocolNotOffered);
            }
        }
        for (k, v) in &opts.headers {
            if !is_token(k) || !is_safe_value(v) {
                return Err(ApiMisuse::InvalidHeader);
            }
        }
        for e in &opts.extensions {
            if !is_safe_value(e) {
                return Err(ApiMisuse::InvalidHeader);
            }
        }
        let accept = accept_key(self.key.as_bytes());
        let mut h = Vec::with_capacity(4 + opts.headers.len());
        h.push(("Upgrade".to_string(), "websocket".to_string()));
        h.push(("Connection".to_string(), "Upgrade".to_string()));
        h.push((
            "Sec-WebSocket-Accept".to_string(),
            core::str::from_utf8(&accept)
                .expect("base64 is ASCII")
                .to_string(),
        ));
        if let Some(p) = &opts.protocol {
            h.push(("Sec-WebSocket-Protocol".to_string(), p.clone()));
        }
        if !opts.extensions.is_empty() {
            h.push((
                "Sec-WebSocket-Extensions".to_string(),
                opts.extensions.join(", "),
            ));
        }
        h.extend(opts.headers.iter().cloned());
        Ok(h)
    }

    /// Accept: write the `101` response into `out` and return the server
    /// [`Connection`]. Pass it any bytes left in the input buffer after the
    /// head (with [`Connection::receive`]). With the `deflate` feature and
    /// [`Config::deflate`] set, permessage-deflate is negotiated here.
    pub fn accept(
        self,
        opts: AcceptOptions,
        out: &mut impl BufMut,
        config: Config,
    ) -> Result<Connection, ApiMisuse> {
        #[allow(unused_mut)]
        let mut opts = opts;
        // permessage-deflate, when the configuration allows it and the client
        // offered it (RFC 7692 §5: the first acceptable offer wins)
        #[cfg(feature = "deflate")]
        let deflate = config
            .deflate
            .as_ref()
            .and_then(|cfg| cfg.accept_offer(&self.extensions));
        #[cfg(feature = "deflate")]
        if let Some(p) = &deflate {
            opts.extensions.push(p.response());
        }
        let headers = self.response_headers(&opts)?;
        out.put_slice(b"HTTP/1.1 101 Switching Protocols\r\n");
        for (k, v) in &headers {
            put_header(out, k, v);
        }
        out.put_slice(b"\r\n");
        #[allow(unused_mut)]
        let mut conn = Connection::server(config);
        #[cfg(feature = "deflate")]
        if let Some(p) = deflate {
            conn.enable_deflate(p);
        }
        Ok(conn)
    }

    /// Reject with any status (e.g. 401, 403, 404): write a complete response
    /// with `headers` and `body` (a `Content-Length` and `Connection: close`
    /// are added) into `out`. Close the transport once it is written.
    pub fn reject(
        self,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
        out: &mut impl BufMut,
    ) -> Result<(), ApiMisuse> {
        write_response(status, headers, body, out)
    }
}

/// Where the resource name starts in a request target: origin-form
/// (`/path?q`) or absolute-form with an http, https, ws or wss scheme
/// (`http://host/path?q`, or no path at all). `None` for anything else.
fn resource_offset(target: &str) -> Option<usize> {
    if target.starts_with('/') {
        return Some(0);
    }
    let (scheme, rest) = target.split_once("://")?;
    if !["http", "https", "ws", "wss"]
        .iter()
        .any(|s| s.eq_ignore_ascii_case(scheme))
    {
        return None;
    }
    let authority_len = rest.find(['/', '?']).unwrap_or(rest.len());
    if authority_len == 0 {
        return None;
    }
    let start = scheme.len() + 3 + authority_len;
    match &target[start..] {
        r if r.starts_with('?') => None,
        _ => Some(start),
    }
}

fn decodes_to_16(key: &str) -> bool {
    let mut buf = [0u8; 18];
    key.len() == 24
        && matches!(
            base64::engine::general_purpose::STANDARD.decode_slice(key, &mut buf),
            Ok(16)
        )
}

fn put_header(out: &mut impl BufMut, k: &str, v: &str) {
    out.put_slice(k.as_bytes());
    out.put_slice(b": ");
    out.put_slice(v.as_bytes());
    out.put_slice(b"\r\n");
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        426 => "Upgrade Required",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        505 => "HTTP Version Not Supported",
        _ => "Error",
    }
}

pub(crate) fn write_response(
    status: u16,
    headers: &[(&str, &str)],
    body: &[u8],
    out: &mut impl BufMut,
) -> Result<(), ApiMisuse> {
    if !(100..=999).contains(&status) || status == 101 {
        return Err(ApiMisuse::InvalidHeader);
    }
    if headers
        .iter()
        .any(|(k, v)| !is_token(k) || !is_safe_value(v))
    {
        return Err(ApiMisuse::InvalidHeader);
    }
    out.put_slice(b"HTTP/1.1 ");
    out.put_slice(status.to_string().as_bytes());
    out.put_u8(b' ');
    out.put_slice(reason_phrase(status).as_bytes());
    out.put_slice(b"\r\n");
    for (k, v) in headers {
        put_header(out, k, v);
    }
    put_header(out, "Content-Length", &body.len().to_string());
    put_header(out, "Connection", "close");
    out.put_slice(b"\r\n");
    out.put_slice(body);
    Ok(())
}

impl HandshakeError {
    /// Write the HTTP response a server should send for this error:
    /// [`status_hint`](Self::status_hint) with a short text body, plus
    /// `Sec-WebSocket-Version: 13` for a version mismatch (§4.4) and
    /// `Allow: GET` for a wrong method. Close the transport once it is
    /// written.
    ///
    /// ```
    /// let mut out = Vec::new();
    /// wsproto::HandshakeError::UnsupportedVersion.write_response(&mut out);
    /// let text = String::from_utf8(out).unwrap();
    /// assert!(text.starts_with("HTTP/1.1 426 Upgrade Required\r\n"));
    /// assert!(text.contains("Sec-WebSocket-Version: 13\r\n"));
    /// ```
    pub fn write_response(&self, out: &mut impl BufMut) {
        let (status, headers, body) = self.response_parts();
        write_response(status, &headers, body.as_bytes(), out).expect("fixed headers are valid");
    }

    /// The parts of the response [`write_response`](Self::write_response)
    /// writes — status, headers, body — for an HTTP stack (hyper, axum)
    /// that builds responses itself.
    ///
    /// ```
    /// let (status, headers, _body) = wsproto::HandshakeError::UnsupportedVersion.response_parts();
    /// assert_eq!(status, 426);
    /// assert!(headers.contains(&("Sec-WebSocket-Version", "13")));
    /// ```
    pub fn response_parts(&self) -> (u16, Vec<(&'static str, &'static str)>, String) {
        let mut headers = match self {
            HandshakeError::UnsupportedVersion => alloc::vec![("Sec-WebSocket-Version", "13")],
            HandshakeError::MethodNotGet => alloc::vec![("Allow", "GET")],
            _ => Vec::new(),
        };
        headers.push(("Content-Type", "text/plain; charset=utf-8"));
        (self.status_hint(), headers, alloc::format!("{self}\n"))
    }
}

/// The application's answer to an [`IncomingRequest`].
///
/// ```
/// use wsproto::handshake::AcceptOptions;
/// let opts = AcceptOptions::new().protocol("chat").header("X-Server", "wsproto");
/// # let _ = opts;
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AcceptOptions {
    /// The selected subprotocol: must be one the client offered.
    pub protocol: Option<String>,
    /// Accepted extensions, written verbatim into `Sec-WebSocket-Extensions`.
    pub extensions: Vec<String>,
    /// Extra response headers (e.g. `Set-Cookie`).
    pub headers: Vec<(String, String)>,
}

impl AcceptOptions {
    /// Accept with no subprotocol, extension or extra header.
    pub fn new() -> Self {
        Self::default()
    }

    /// Select a subprotocol.
    pub fn protocol(mut self, p: impl Into<String>) -> Self {
        self.protocol = Some(p.into());
        self
    }

    /// Accept an extension: its response parameters, written verbatim into
    /// `Sec-WebSocket-Extensions`. The connection implements no extension
    /// yet (frames with RSV bits still fail it with 1002), so only accept
    /// extensions that do not touch frames.
    pub fn extension(mut self, ext: impl Into<String>) -> Self {
        self.extensions.push(ext.into());
        self
    }

    /// Add a response header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::format;

    fn request(extra: &str, skip: &str) -> BytesMut {
        let mut s = String::from("GET /chat HTTP/1.1\r\n");
        for h in [
            "Host: server.example.com",
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version: 13",
        ] {
            if skip.is_empty() || !h.starts_with(skip) {
                s.push_str(h);
                s.push_str("\r\n");
            }
        }
        s.push_str(extra);
        s.push_str("\r\n");
        BytesMut::from(s.as_bytes())
    }

    fn parse(buf: &mut BytesMut) -> Result<Status<IncomingRequest>, HandshakeError> {
        ServerHandshake::new(&Limits::default()).receive(buf)
    }

    #[test]
    fn rfc_4_2_1_requirements() {
        let cases: &[(&str, &str, HandshakeError)] = &[
            ("", "Host", HandshakeError::MissingHost),
            ("Host: other\r\n", "", HandshakeError::MissingHost),
            ("", "Upgrade", HandshakeError::MissingUpgrade),
            ("", "Connection", HandshakeError::MissingConnectionUpgrade),
            ("", "Sec-WebSocket-Key", HandshakeError::InvalidKey),
            (
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n",
                "",
                HandshakeError::InvalidKey,
            ),
            (
                "",
                "Sec-WebSocket-Version",
                HandshakeError::UnsupportedVersion,
            ),
            (
                "Sec-WebSocket-Version: 8\r\n",
                "",
                HandshakeError::UnsupportedVersion,
            ),
        ];
        for (extra, skip, err) in cases {
            assert_eq!(
                parse(&mut request(extra, skip)),
                Err(err.clone()),
                "{extra:?} without {skip:?}"
            );
        }
        for key in [
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25jZXg=",
            "!!!!!!!!!!!!!!!!!!!!!!==",
            "AAAAAAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            let mut s = request("", "Sec-WebSocket-Key");
            s.truncate(s.len() - 2);
            s.extend_from_slice(format!("Sec-WebSocket-Key: {key}\r\n\r\n").as_bytes());
            assert_eq!(parse(&mut s), Err(HandshakeError::InvalidKey), "{key}");
        }
    }

    #[test]
    fn method_version_and_garbage() {
        let mut post = BytesMut::from(&request("", "")[..]);
        post[..3].copy_from_slice(b"PUT");
        assert_eq!(parse(&mut post), Err(HandshakeError::MethodNotGet));
        let mut old = BytesMut::from(&b"GET / HTTP/1.0\r\nHost: x\r\n\r\n"[..]);
        assert_eq!(parse(&mut old), Err(HandshakeError::UnsupportedHttpVersion));
        let mut junk = BytesMut::from(&b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"[..]);
        assert_eq!(parse(&mut junk), Err(HandshakeError::MalformedHttp));
        let mut rel = BytesMut::from(&b"GET chat HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
        assert_eq!(parse(&mut rel), Err(HandshakeError::MalformedHttp));
        let mut ftp = BytesMut::from(&b"GET ftp://h/chat HTTP/1.1\r\nHost: x\r\n\r\n"[..]);
        assert_eq!(parse(&mut ftp), Err(HandshakeError::MalformedHttp));
    }

    #[test]
    fn absolute_form_targets() {
        for (target, path, query) in [
            ("http://example.com/chat?x=1", "/chat", Some("x=1")),
            ("wss://example.com:443/a/b", "/a/b", None),
            ("HTTP://example.com", "/", None),
        ] {
            let mut r = request("", "");
            let head = String::from_utf8(r.to_vec())
                .unwrap()
                .replacen("/chat", target, 1);
            r = BytesMut::from(head.as_bytes());
            let Status::Complete(req) = parse(&mut r).unwrap() else {
                panic!()
            };
            assert_eq!((req.path(), req.query()), (path, query), "{target}");
            assert_eq!(req.target(), target);
        }
    }

    #[test]
    fn case_insensitive_and_token_lists() {
        let mut r = BytesMut::from(
            &b"GET / HTTP/1.1\r\nhost: h\r\nUPGRADE: WebSocket\r\nconnection: keep-alive, Upgrade\r\n\
               sec-websocket-key: dGhlIHNhbXBsZSBub25jZQ==\r\nsec-websocket-version: 13\r\n\
               Sec-WebSocket-Protocol: a, b\r\nSec-WebSocket-Protocol: c\r\n\
               Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n"[..],
        );
        let Status::Complete(req) = parse(&mut r).unwrap() else {
            panic!()
        };
        assert_eq!(req.protocols(), ["a", "b", "c"]);
        assert_eq!(req.extensions()[0].name, "permessage-deflate");
        assert_eq!(req.header("HOST"), Some("h"));
        assert_eq!(req.query(), None);
    }

    #[test]
    fn leftover_bytes_stay_in_the_buffer() {
        let mut r = request("", "");
        r.extend_from_slice(b"\x81\x80abcd");
        let Status::Complete(_) = parse(&mut r).unwrap() else {
            panic!()
        };
        assert_eq!(&r[..], b"\x81\x80abcd");
    }

    #[test]
    fn limits() {
        let limits = Limits {
            max_headers: 4,
            max_handshake_bytes: 300,
            ..Limits::default()
        };
        let mut hs = ServerHandshake::new(&limits);
        assert_eq!(
            hs.receive(&mut request("", "")),
            Err(HandshakeError::Capacity(CapacityError::TooManyHeaders {
                limit: 4
            }))
        );
        let mut hs = ServerHandshake::new(&limits);
        let mut big = request(&format!("X-Pad: {}\r\n", "a".repeat(300)), "");
        assert_eq!(hs.receive(&mut big).unwrap_err().status_hint(), 431);
        // no terminator at all: refused once past the limit, not buffered forever
        let mut hs = ServerHandshake::new(&limits);
        let mut endless = BytesMut::from(&[b'a'; 301][..]);
        assert_eq!(hs.receive(&mut endless).unwrap_err().status_hint(), 431);
    }

    #[test]
    fn byte_at_a_time() {
        let full = request("", "");
        let mut hs = ServerHandshake::new(&Limits::default());
        let mut buf = BytesMut::new();
        for (i, b) in full.iter().enumerate() {
            buf.extend_from_slice(&[*b]);
            match hs.receive(&mut buf).unwrap() {
                Status::Partial => assert!(i < full.len() - 1),
                Status::Complete(req) => {
                    assert_eq!(i, full.len() - 1);
                    assert_eq!(req.path(), "/chat");
                }
            }
        }
    }

    #[test]
    fn accept_and_reject_responses() {
        let Status::Complete(req) =
            parse(&mut request("Sec-WebSocket-Protocol: chat\r\n", "")).unwrap()
        else {
            panic!()
        };
        assert_eq!(
            req.clone()
                .accept(
                    AcceptOptions::new().protocol("other"),
                    &mut Vec::new(),
                    Config::default()
                )
                .unwrap_err(),
            ApiMisuse::ProtocolNotOffered
        );
        assert_eq!(
            req.clone()
                .accept(
                    AcceptOptions::new().header("X", "a\r\nb"),
                    &mut Vec::new(),
                    Config::default()
                )
                .unwrap_err(),
            ApiMisuse::InvalidHeader
        );
        let mut out = Vec::new();
        req.reject(401, &[("WWW-Authenticate", "Bearer")], b"no", &mut out)
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer\r\nContent-Length: 2\r\nConnection: close\r\n\r\nno"
        );
    }

    #[test]
    fn error_responses_parse_as_http() {
        for e in [
            HandshakeError::MalformedHttp,
            HandshakeError::UnsupportedVersion,
            HandshakeError::MethodNotGet,
            HandshakeError::Capacity(CapacityError::HandshakeTooLarge { limit: 1 }),
        ] {
            let mut out = Vec::new();
            e.write_response(&mut out);
            let mut slots = [httparse::EMPTY_HEADER; 16];
            let mut resp = httparse::Response::new(&mut slots);
            let httparse::Status::Complete(n) = resp.parse(&out).unwrap() else {
                panic!()
            };
            assert_eq!(resp.code, Some(e.status_hint()));
            let len: usize = resp
                .headers
                .iter()
                .find(|h| h.name == "Content-Length")
                .map(|h| core::str::from_utf8(h.value).unwrap().parse().unwrap())
                .unwrap();
            assert_eq!(out.len() - n, len);
        }
    }
}
