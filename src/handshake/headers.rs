//! Header value helpers: token lists and extension offers (RFC 6455 §4.3,
//! §9.1; RFC 7230 §3.2.6, §7).

use alloc::string::{String, ToString};
use alloc::vec::Vec;

use crate::error::HandshakeError;

/// Elements of a comma-separated header value, trimmed, empties dropped
/// (RFC 7230 §7 "#rule").
pub(crate) fn tokens(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(|t| t.trim_matches(|c| c == ' ' || c == '\t'))
        .filter(|t| !t.is_empty())
}

/// Whether a token list contains `want`, ASCII case-insensitively.
pub(crate) fn has_token(value: &str, want: &str) -> bool {
    tokens(value).any(|t| t.eq_ignore_ascii_case(want))
}

/// RFC 7230 `tchar`.
pub(crate) fn is_tchar(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&c)
}

pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(is_tchar)
}

/// A header value that cannot break the head: RFC 7230 field-content, i.e.
/// visible characters, space, tab and non-ASCII (obs-text); no other control
/// characters.
pub(crate) fn is_safe_value(s: &str) -> bool {
    s.bytes()
        .all(|b| b == b'\t' || (0x20..0x7F).contains(&b) || b >= 0x80)
}

/// A request target or host: visible characters only — no space, tab or
/// other control character that would break the request line. UTF-8 is let
/// through as HTTP parsers (and browsers' servers) accept it.
pub(crate) fn is_visible(s: &str) -> bool {
    s.bytes().all(|b| (0x21..0x7F).contains(&b) || b >= 0x80)
}

/// One extension in a `Sec-WebSocket-Extensions` header: a name and its
/// parameters (§9.1).
///
/// ```
/// use wsproto::handshake::parse_extensions;
/// let offers = parse_extensions("permessage-deflate; client_max_window_bits, x-foo; a=\"b\"").unwrap();
/// assert_eq!(offers[0].name, "permessage-deflate");
/// assert_eq!(offers[0].params, [("client_max_window_bits".to_string(), None)]);
/// assert_eq!(offers[1].params, [("a".to_string(), Some("b".to_string()))]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtensionOffer {
    /// Extension token, e.g. `permessage-deflate`.
    pub name: String,
    /// Parameters in order: name and value (unquoted), if any.
    pub params: Vec<(String, Option<String>)>,
}

/// Parse a `Sec-WebSocket-Extensions` value (§9.1 grammar; quoted-string
/// parameter values are unquoted).
pub fn parse_extensions(value: &str) -> Result<Vec<ExtensionOffer>, HandshakeError> {
    let bad = HandshakeError::InvalidHeader("Sec-WebSocket-Extensions");
    let mut out = Vec::new();
    for ext in split_outside_quotes(value, b',') {
        let ext = ext.trim();
        if ext.is_empty() {
            continue;
        }
        let mut parts = split_outside_quotes(ext, b';').into_iter();
        let name = parts.next().unwrap_or("").trim();
        if !is_token(name) {
            return Err(bad);
        }
        let mut params = Vec::new();
        for p in parts {
            let p = p.trim();
            let (k, v) = match p.split_once('=') {
                None => (p, None),
                Some((k, v)) => (k.trim(), Some(unquote(v.trim()).ok_or(bad.clone())?)),
            };
            if !is_token(k) {
                return Err(bad);
            }
            params.push((k.to_string(), v));
        }
        out.push(ExtensionOffer {
            name: name.to_string(),
            params,
        });
    }
    Ok(out)
}

fn split_outside_quotes(s: &str, sep: u8) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, b) in s.bytes().enumerate() {
        if escaped {
            escaped = false;
        } else if quoted && b == b'\\' {
            escaped = true;
        } else if b == b'"' {
            quoted = !quoted;
        } else if b == sep && !quoted {
            parts.push(&s[start..i]);
            start = i + 1;
        }
    }
    parts.push(&s[start..]);
    parts
}

/// A token, or a quoted-string whose content is a token (§9.1: "the value
/// MUST conform to the token ABNF" after unquoting).
fn unquote(v: &str) -> Option<String> {
    let inner = if let Some(rest) = v.strip_prefix('"') {
        let rest = rest.strip_suffix('"')?;
        let mut s = String::new();
        let mut esc = false;
        for c in rest.chars() {
            if esc {
                s.push(c);
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else {
                s.push(c);
            }
        }
        s
    } else {
        v.to_string()
    };
    is_token(&inner).then_some(inner)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_lists() {
        assert!(has_token("keep-alive, Upgrade", "upgrade"));
        assert!(has_token("  WebSocket ", "websocket"));
        assert!(!has_token("keep-alive", "upgrade"));
        assert!(!has_token("upgrade2", "upgrade"));
        assert_eq!(tokens("a,,b , c").collect::<Vec<_>>(), ["a", "b", "c"]);
    }

    #[test]
    fn extension_parsing() {
        assert_eq!(parse_extensions("").unwrap(), []);
        let e = parse_extensions("foo, bar; baz=2").unwrap();
        assert_eq!(e.len(), 2);
        assert_eq!(e[1].params, [("baz".into(), Some("2".into()))]);
        assert!(parse_extensions("foo; =x").is_err());
        assert!(parse_extensions("fo o").is_err());
        assert!(parse_extensions("foo; a=\"b c\"").is_err());
        let q = parse_extensions("foo; a=\"1,2\"");
        assert!(
            q.is_err(),
            "comma inside quotes is kept together but is not a token"
        );
    }
}
