//! The `chat.v1` JSON protocol: what clients send, what the server sends,
//! and the validation between the two.
//!
//! Every client message is one WebSocket text message holding one JSON
//! object with a `"type"`. Anything that is not a valid request is answered
//! with an [`ServerEvent::Error`] naming what was wrong; nothing is dropped
//! silently and nothing on this path can panic.

use serde::{Deserialize, Serialize};
use wsproto::Utf8Bytes;

/// The WebSocket subprotocol this server speaks.
pub const SUBPROTOCOL: &str = "chat.v1";
/// Longest room name, in characters.
pub const MAX_ROOM: usize = 64;
/// Longest user name, in characters.
pub const MAX_USER: usize = 32;

/// A request from a client, after [`parse`] checked it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Join { room: String, user: String },
    Message { room: String, text: String },
    Leave { room: String },
    Ping,
}

/// The wire form of a request; [`parse`] validates it into a [`Request`].
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Wire {
    Join { room: String, user: String },
    Message { room: String, text: String },
    Leave { room: String },
    Ping,
}

/// Error codes of [`ServerEvent::Error`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or JSON that is not an object.
    BadJson,
    /// The object has no string `"type"`, or an unknown one.
    UnknownType,
    /// A required field is absent.
    MissingField,
    /// A field has the wrong JSON type or an invalid value.
    InvalidField,
    /// `text` is longer than the server's limit.
    TextTooLong,
    /// A binary WebSocket message (the protocol is text only).
    BinaryNotSupported,
    /// `message` or `leave` for a room this connection has not joined.
    NotJoined,
    /// `join` for a room this connection is already in.
    AlreadyJoined,
    /// More rooms than one connection may join at once.
    TooManyRooms,
    /// Too many requests in a short time; this one was not processed.
    RateLimited,
    /// The broker (e.g. Redis) is unreachable; try again.
    Unavailable,
}

/// What the server sends. Serialized with `"type"` as the tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ServerEvent {
    /// First message on every connection.
    Hello {
        /// Which server instance this connection landed on.
        server: String,
        protocol: &'static str,
        /// Longest accepted `text`, in characters.
        max_text: usize,
        /// Largest accepted WebSocket message, in bytes.
        max_message: usize,
    },
    /// Someone joined a room (also the acknowledgement of one's own join).
    Joined { room: String, user: String, ts: u64 },
    /// Someone left a room: `reason` is `leave`, `disconnect`, `timeout`
    /// (the server dropped a peer that stopped answering keepalive pings)
    /// or `shutdown` (the peer's server instance is stopping; the page
    /// reconnects, possibly to another instance).
    Left {
        room: String,
        user: String,
        ts: u64,
        reason: &'static str,
    },
    /// A chat message, stamped by the server.
    Message {
        room: String,
        user: String,
        text: String,
        ts: u64,
    },
    /// The answer to `{"type":"ping"}`.
    Pong,
    /// The request could not be processed.
    Error {
        code: ErrorCode,
        message: String,
        /// The request's `type`, when it could be read.
        #[serde(skip_serializing_if = "Option::is_none")]
        request: Option<String>,
    },
}

impl ServerEvent {
    /// The JSON text of this event.
    pub fn to_text(&self) -> Utf8Bytes {
        // Serializing these plain structs cannot fail (no maps with
        // non-string keys, no custom Serialize impls).
        match serde_json::to_string(self) {
            Ok(s) => Utf8Bytes::from(s),
            Err(e) => Utf8Bytes::from(format!(
                r#"{{"type":"error","code":"invalid_field","message":"internal: {e}"}}"#
            )),
        }
    }

    pub fn error(code: ErrorCode, message: impl Into<String>, request: Option<&str>) -> Self {
        ServerEvent::Error {
            code,
            message: message.into(),
            request: request.map(str::to_string),
        }
    }
}

/// A rejected request: the error event to send back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalid {
    pub code: ErrorCode,
    pub message: String,
    pub request: Option<String>,
}

impl Invalid {
    fn new(code: ErrorCode, message: impl Into<String>, request: Option<&str>) -> Self {
        Invalid {
            code,
            message: message.into(),
            request: request.map(str::to_string),
        }
    }

    pub fn into_event(self) -> ServerEvent {
        ServerEvent::Error {
            code: self.code,
            message: self.message,
            request: self.request,
        }
    }
}

const TYPES: [&str; 4] = ["join", "message", "leave", "ping"];

/// Parse and validate one text message. `max_text` bounds `text` in
/// characters.
pub fn parse(text: &str, max_text: usize) -> Result<Request, Invalid> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Invalid::new(ErrorCode::BadJson, format!("not valid JSON: {e}"), None))?;
    let Some(obj) = value.as_object() else {
        return Err(Invalid::new(
            ErrorCode::BadJson,
            "expected a JSON object",
            None,
        ));
    };
    let kind = match obj.get("type") {
        None => {
            return Err(Invalid::new(
                ErrorCode::MissingField,
                "missing field `type`",
                None,
            ))
        }
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(_) => {
            return Err(Invalid::new(
                ErrorCode::InvalidField,
                "`type` must be a string",
                None,
            ))
        }
    };
    if !TYPES.contains(&kind.as_str()) {
        return Err(Invalid::new(
            ErrorCode::UnknownType,
            format!(
                "unknown type {:?}; expected one of {}",
                truncate(&kind, 40),
                TYPES.join(", ")
            ),
            None,
        ));
    }
    let req = Some(kind.as_str());
    let wire: Wire = serde_json::from_value(value).map_err(|e| {
        let msg = e.to_string();
        let code = if msg.starts_with("missing field") {
            ErrorCode::MissingField
        } else {
            ErrorCode::InvalidField
        };
        Invalid::new(code, msg, req)
    })?;
    Ok(match wire {
        Wire::Join { room, user } => Request::Join {
            room: check_room(room, req)?,
            user: check_user(user, req)?,
        },
        Wire::Message { room, text } => {
            let room = check_room(room, req)?;
            let chars = text.chars().count();
            if chars > max_text {
                return Err(Invalid::new(
                    ErrorCode::TextTooLong,
                    format!("text has {chars} characters; the limit is {max_text}"),
                    req,
                ));
            }
            if text.trim().is_empty() {
                return Err(Invalid::new(ErrorCode::InvalidField, "text is empty", req));
            }
            Request::Message { room, text }
        }
        Wire::Leave { room } => Request::Leave {
            room: check_room(room, req)?,
        },
        Wire::Ping => Request::Ping,
    })
}

/// Room names: 1 to 64 of `A-Z a-z 0-9 - _ .` (they become Redis channel
/// names and appear in logs, so keep them plain).
fn check_room(room: String, req: Option<&str>) -> Result<String, Invalid> {
    let ok = !room.is_empty()
        && room.len() <= MAX_ROOM
        && room
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(room)
    } else {
        Err(Invalid::new(
            ErrorCode::InvalidField,
            format!("room must be 1-{MAX_ROOM} characters of A-Z, a-z, 0-9, '-', '_', '.'"),
            req,
        ))
    }
}

/// User names: 1 to 32 characters, no control characters, not blank.
fn check_user(user: String, req: Option<&str>) -> Result<String, Invalid> {
    let user = user.trim().to_string();
    let n = user.chars().count();
    if n == 0 || n > MAX_USER || user.chars().any(char::is_control) {
        return Err(Invalid::new(
            ErrorCode::InvalidField,
            format!("user must be 1-{MAX_USER} characters without control characters"),
            req,
        ));
    }
    Ok(user)
}

fn truncate(s: &str, max: usize) -> String {
    s.chars().take(max).collect()
}

/// Milliseconds since the Unix epoch, for `ts`.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> ErrorCode {
        parse(text, 10).unwrap_err().code
    }

    #[test]
    fn valid_requests() {
        assert_eq!(
            parse(r#"{"type":"join","room":"lobby","user":" ann "}"#, 10),
            Ok(Request::Join {
                room: "lobby".into(),
                user: "ann".into()
            })
        );
        assert_eq!(parse(r#"{"type":"ping","extra":1}"#, 10), Ok(Request::Ping));
        assert_eq!(
            parse(r#"{"type":"message","room":"a","text":"héllo"}"#, 5),
            Ok(Request::Message {
                room: "a".into(),
                text: "héllo".into()
            })
        );
    }

    #[test]
    fn invalid_requests() {
        assert_eq!(code("{"), ErrorCode::BadJson);
        assert_eq!(code("[1]"), ErrorCode::BadJson);
        assert_eq!(code(r#"{"room":"a"}"#), ErrorCode::MissingField);
        assert_eq!(code(r#"{"type":5}"#), ErrorCode::InvalidField);
        assert_eq!(code(r#"{"type":"shout"}"#), ErrorCode::UnknownType);
        assert_eq!(
            code(r#"{"type":"join","room":"a"}"#),
            ErrorCode::MissingField
        );
        assert_eq!(
            code(r#"{"type":"join","room":"a b","user":"x"}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"type":"message","room":"a","text":7}"#),
            ErrorCode::InvalidField
        );
        assert_eq!(
            code(r#"{"type":"message","room":"a","text":"12345678901"}"#),
            ErrorCode::TextTooLong
        );
    }
}
