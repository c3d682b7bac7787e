//! The wire protocol: JSON text frames tagged by `type`, version [`PROTOCOL_VERSION`].
//!
//! Client frames are parsed once, size-capped, into [`ClientFrame`]; server frames are
//! [`ServerFrame`] values or pre-rendered JSON (chat messages are rendered once per room and the
//! same bytes go to every socket). `docs/chat.md` is the reference for clients.

use serde::{Deserialize, Serialize};

use crate::auth::{Identity, Role};

/// Version announced in the `hello` frame; bumped on any incompatible change.
pub const PROTOCOL_VERSION: u32 = 1;
/// Largest client frame accepted, in bytes. Larger frames close the socket with 1009.
pub const MAX_FRAME_BYTES: usize = 4096;

/// Why a client frame was refused by the parser.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProtocolError {
    /// The frame is larger than [`MAX_FRAME_BYTES`].
    #[error("frame of {0} bytes is over the {MAX_FRAME_BYTES} byte limit")]
    TooLarge(usize),
    /// The frame is not JSON.
    #[error("invalid JSON: {0}")]
    InvalidJson(String),
    /// The frame is JSON but its `type` is missing or unknown.
    #[error("unknown frame type: {0}")]
    UnknownType(String),
    /// The frame has a known `type` but bad or missing fields.
    #[error("bad frame: {0}")]
    BadFrame(String),
}

impl ProtocolError {
    /// The error code sent to the client for this error.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtocolError::TooLarge(_) => ErrorCode::FrameTooLarge,
            ProtocolError::InvalidJson(_) => ErrorCode::InvalidJson,
            ProtocolError::UnknownType(_) => ErrorCode::UnknownType,
            ProtocolError::BadFrame(_) => ErrorCode::BadFrame,
        }
    }
}

/// How a chat message is meant to be shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum MessageKind {
    /// Plain text.
    #[default]
    Text,
    /// Emote codes only (`:name:` tokens).
    Emote,
    /// A cheer: text plus `bits`.
    Cheer,
    /// Written by the server (never accepted from a client).
    System,
}

/// A frame sent by a client.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase",
    deny_unknown_fields
)]
pub enum ClientFrame {
    /// Authenticate (or re-authenticate) the socket with a JWT.
    Auth {
        /// The JWT.
        token: String,
    },
    /// Post a message.
    Send {
        /// Message text, at most 500 characters.
        text: String,
        /// `text` (default), `emote` or `cheer`.
        #[serde(default)]
        kind: MessageKind,
        /// Bits for a cheer.
        #[serde(default)]
        bits: Option<u32>,
    },
    /// Moderator: delete a message by id.
    Delete {
        /// Message id.
        id: u64,
    },
    /// Moderator: ban a user from the room until unbanned.
    Ban {
        /// The user's `sub`.
        user_id: String,
        /// Shown to the room.
        #[serde(default)]
        reason: Option<String>,
    },
    /// Moderator: silence a user for some seconds.
    Timeout {
        /// The user's `sub`.
        user_id: String,
        /// 1 to 1,209,600 (two weeks).
        seconds: u64,
        /// Shown to the room.
        #[serde(default)]
        reason: Option<String>,
    },
    /// Moderator: lift a ban or timeout.
    Unban {
        /// The user's `sub`.
        user_id: String,
    },
    /// Moderator: slow mode, one message per `seconds` per user; 0 turns it off.
    Slow {
        /// 0 to 86,400.
        seconds: u64,
    },
    /// Moderator: emote-only mode on or off.
    EmoteOnly {
        /// On or off.
        enabled: bool,
    },
    /// Moderator: subscribers-only mode on or off.
    SubscribersOnly {
        /// On or off.
        enabled: bool,
    },
    /// Ask for recent history.
    History {
        /// 1 to 100, default 50.
        #[serde(default)]
        limit: Option<u32>,
        /// Only messages with a smaller id.
        #[serde(default)]
        before: Option<u64>,
    },
    /// Keep-alive; answered with `pong`.
    Ping {
        /// Echoed back.
        #[serde(default)]
        nonce: Option<u64>,
    },
}

/// Parse one client text frame. Never panics; every failure is a [`ProtocolError`].
pub fn parse_client_frame(text: &str) -> Result<ClientFrame, ProtocolError> {
    if text.len() > MAX_FRAME_BYTES {
        return Err(ProtocolError::TooLarge(text.len()));
    }
    serde_json::from_str(text).map_err(|e| {
        use serde_json::error::Category;
        match e.classify() {
            Category::Syntax | Category::Eof | Category::Io => ProtocolError::InvalidJson(e.to_string()),
            Category::Data => {
                let msg = e.to_string();
                if msg.starts_with("unknown variant") || msg.starts_with("missing field `type`") {
                    ProtocolError::UnknownType(msg)
                } else {
                    ProtocolError::BadFrame(msg)
                }
            }
        }
    })
}

/// Machine-readable error codes of `error` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON.
    InvalidJson,
    /// Unknown `type`.
    UnknownType,
    /// Known `type`, bad fields.
    BadFrame,
    /// Over 4 KiB (the socket is closed with 1009).
    FrameTooLarge,
    /// Binary frames are not part of the protocol (the socket is closed with 1003).
    BinaryNotSupported,
    /// Too many frames per second on this socket.
    Flood,
    /// No valid token: the socket may read but not write.
    Unauthorized,
    /// The user's role may not do that.
    Forbidden,
    /// Per-user message rate exceeded; see `retryAfter`.
    RateLimited,
    /// Slow mode; see `retryAfter`.
    SlowMode,
    /// Banned from this room.
    Banned,
    /// Timed out; see `retryAfter`.
    TimedOut,
    /// Emote-only mode is on.
    EmoteOnly,
    /// Subscribers-only mode is on.
    SubscribersOnly,
    /// Refused by a content filter (length, banned word, link, caps, repeat).
    Rejected,
    /// The shared store (Redis) is unreachable; the message was not sent.
    Unavailable,
    /// The room is overloaded; try again.
    Busy,
    /// This socket fell too far behind and is being closed.
    SlowConsumer,
    /// The server is shutting down.
    ShuttingDown,
}

impl ErrorCode {
    /// Every code, in declaration order (`code as usize` indexes it).
    pub const ALL: [ErrorCode; 19] = [
        ErrorCode::InvalidJson,
        ErrorCode::UnknownType,
        ErrorCode::BadFrame,
        ErrorCode::FrameTooLarge,
        ErrorCode::BinaryNotSupported,
        ErrorCode::Flood,
        ErrorCode::Unauthorized,
        ErrorCode::Forbidden,
        ErrorCode::RateLimited,
        ErrorCode::SlowMode,
        ErrorCode::Banned,
        ErrorCode::TimedOut,
        ErrorCode::EmoteOnly,
        ErrorCode::SubscribersOnly,
        ErrorCode::Rejected,
        ErrorCode::Unavailable,
        ErrorCode::Busy,
        ErrorCode::SlowConsumer,
        ErrorCode::ShuttingDown,
    ];

    /// The wire name (`"rate_limited"`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidJson => "invalid_json",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::BadFrame => "bad_frame",
            ErrorCode::FrameTooLarge => "frame_too_large",
            ErrorCode::BinaryNotSupported => "binary_not_supported",
            ErrorCode::Flood => "flood",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::SlowMode => "slow_mode",
            ErrorCode::Banned => "banned",
            ErrorCode::TimedOut => "timed_out",
            ErrorCode::EmoteOnly => "emote_only",
            ErrorCode::SubscribersOnly => "subscribers_only",
            ErrorCode::Rejected => "rejected",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Busy => "busy",
            ErrorCode::SlowConsumer => "slow_consumer",
            ErrorCode::ShuttingDown => "shutting_down",
        }
    }
}

/// What clients see of a user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserInfo {
    /// Stable user id (the JWT `sub`).
    pub id: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: Role,
    /// Badge names, in display order.
    #[serde(default)]
    pub badges: Vec<String>,
    /// Name colour, e.g. `#ff8800`.
    #[serde(default)]
    pub color: Option<String>,
}

impl From<&Identity> for UserInfo {
    fn from(i: &Identity) -> Self {
        UserInfo {
            id: i.id.clone(),
            name: i.name.clone(),
            role: i.role,
            badges: i.badges.clone(),
            color: i.color.clone(),
        }
    }
}

/// A chat message as sent to clients (`{"type":"message", ...}`), also used to read one back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChatMessage {
    /// Monotonic per room.
    pub id: u64,
    /// Milliseconds since the stream went live, or null when unknown.
    pub stream_time: Option<u64>,
    /// The text.
    pub text: String,
    /// The author.
    pub user: UserInfo,
    /// How to show it.
    pub kind: MessageKind,
    /// Bits of a cheer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bits: Option<u32>,
    /// Server wall clock at acceptance, ms since the Unix epoch.
    pub server_time: u64,
}

/// The part of a message known before it is stamped: rendered once, then completed with the id
/// and stream time by [`render_message`] (in Rust or in the Redis script).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct MessageBody<'a> {
    /// The text.
    pub text: &'a str,
    /// The author.
    pub user: &'a UserInfo,
    /// How to show it.
    pub kind: MessageKind,
    /// Bits of a cheer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bits: Option<u32>,
    /// Server wall clock at acceptance.
    pub server_time: u64,
}

impl MessageBody<'_> {
    /// The body as the tail of a JSON object: `,"text":...}`.
    pub fn render_tail(&self) -> String {
        let mut json = serde_json::to_string(self).expect("a message body always serializes");
        json.replace_range(0..1, ",");
        json
    }
}

/// Complete a message frame from its id, stream time and [`MessageBody::render_tail`].
pub fn render_message(id: u64, stream_time: Option<u64>, tail: &str) -> String {
    match stream_time {
        Some(st) => format!(r#"{{"type":"message","id":{id},"streamTime":{st}{tail}"#),
        None => format!(r#"{{"type":"message","id":{id},"streamTime":null{tail}"#),
    }
}

/// Room modes, as shown in `hello` and `modes` frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Modes {
    /// Seconds between two messages of one user; 0 is off.
    pub slow_seconds: u64,
    /// Only emote codes may be sent.
    pub emote_only: bool,
    /// Only subscribers and above may send.
    pub subscribers_only: bool,
}

/// A frame sent by the server (other than chat messages, which are pre-rendered).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum ServerFrame {
    /// First frame on every socket.
    Hello {
        /// [`PROTOCOL_VERSION`].
        protocol: u32,
        /// The room (stream id).
        room: String,
        /// Who this socket is; null when anonymous (read-only).
        user: Option<UserInfo>,
        /// Current modes.
        modes: Modes,
        /// Sockets in the room (all nodes).
        presence: u64,
        /// Longest accepted message, in characters.
        max_chars: usize,
    },
    /// The `auth` frame was accepted.
    Authenticated {
        /// Who this socket now is.
        user: UserInfo,
    },
    /// A message was deleted; clients remove it.
    Deleted {
        /// The message id.
        id: u64,
        /// Moderator's user id.
        by: String,
    },
    /// A moderation action on a user.
    Moderation {
        /// `ban`, `timeout` or `unban`.
        action: String,
        /// The target.
        user_id: String,
        /// Timeout length.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        seconds: Option<u64>,
        /// Moderator's user id.
        by: String,
        /// Given by the moderator.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// The room's modes changed.
    Modes {
        /// New modes.
        modes: Modes,
        /// Moderator's user id.
        by: String,
    },
    /// Sockets in the room.
    Presence {
        /// Count across all nodes.
        count: u64,
    },
    /// Answer to `ping`.
    Pong {
        /// Echo of the ping's nonce.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        nonce: Option<u64>,
        /// Server wall clock, ms since the epoch.
        server_time: u64,
    },
    /// Something the client sent was refused.
    Error {
        /// Machine-readable.
        code: ErrorCode,
        /// Human-readable.
        message: String,
        /// When to try again, in ms.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    },
}

impl ServerFrame {
    /// An error frame.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Self {
        ServerFrame::Error {
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// The frame as JSON text.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("server frames always serialize")
    }
}

/// `{"type":"history","messages":[...]}` from rendered messages, oldest first.
pub fn render_history(messages: &[String]) -> String {
    render_list("history", messages)
}

/// `{"type":"batch","messages":[...]}`: several frames coalesced into one WebSocket frame.
pub fn render_batch(frames: &[impl AsRef<str>]) -> String {
    render_list("batch", frames)
}

fn render_list(kind: &str, items: &[impl AsRef<str>]) -> String {
    let len: usize = items.iter().map(|m| m.as_ref().len() + 1).sum();
    let mut out = String::with_capacity(len + 40);
    out.push_str(r#"{"type":""#);
    out.push_str(kind);
    out.push_str(r#"","messages":["#);
    for (i, m) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(m.as_ref());
    }
    out.push_str("]}");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_client_frame() {
        let cases = [
            r#"{"type":"auth","token":"x"}"#,
            r#"{"type":"send","text":"hi"}"#,
            r#"{"type":"send","text":"hi","kind":"cheer","bits":100}"#,
            r#"{"type":"delete","id":3}"#,
            r#"{"type":"ban","userId":"u"}"#,
            r#"{"type":"timeout","userId":"u","seconds":10,"reason":"x"}"#,
            r#"{"type":"unban","userId":"u"}"#,
            r#"{"type":"slow","seconds":5}"#,
            r#"{"type":"emoteOnly","enabled":true}"#,
            r#"{"type":"subscribersOnly","enabled":false}"#,
            r#"{"type":"history","limit":10}"#,
            r#"{"type":"ping"}"#,
        ];
        for c in cases {
            parse_client_frame(c).unwrap_or_else(|e| panic!("{c}: {e}"));
        }
    }

    #[test]
    fn classifies_errors() {
        assert!(matches!(
            parse_client_frame("{not json"),
            Err(ProtocolError::InvalidJson(_))
        ));
        assert!(matches!(
            parse_client_frame(r#"{"type":"dance"}"#),
            Err(ProtocolError::UnknownType(_))
        ));
        assert!(matches!(
            parse_client_frame(r#"{"text":"no type"}"#),
            Err(ProtocolError::UnknownType(_))
        ));
        assert!(matches!(
            parse_client_frame(r#"{"type":"send"}"#),
            Err(ProtocolError::BadFrame(_))
        ));
        let big = format!(r#"{{"type":"send","text":"{}"}}"#, "a".repeat(5000));
        assert!(matches!(
            parse_client_frame(&big),
            Err(ProtocolError::TooLarge(_))
        ));
    }

    #[test]
    fn rendered_message_reads_back() {
        let user = UserInfo {
            id: "u1".into(),
            name: "Ann \"quoted\"".into(),
            role: Role::Vip,
            badges: vec!["vip".into()],
            color: None,
        };
        let body = MessageBody {
            text: "hello \u{1F600}",
            user: &user,
            kind: MessageKind::Text,
            bits: None,
            server_time: 1_700_000_000_000,
        };
        let json = render_message(7, Some(1234), &body.render_tail());
        let v: serde_json::Value = serde_json::from_str(&json).expect("valid json");
        assert_eq!(v["type"], "message");
        let m: ChatMessage = serde_json::from_value(v).expect("a message");
        assert_eq!(m.id, 7);
        assert_eq!(m.stream_time, Some(1234));
        assert_eq!(m.user, user);
        let batch = render_batch(&[json.clone(), json]);
        let v: serde_json::Value = serde_json::from_str(&batch).expect("valid json");
        assert_eq!(v["messages"].as_array().map(Vec::len), Some(2));
    }
}
