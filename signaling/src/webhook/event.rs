//! What a webhook says: one stream lifecycle event, serialised once when it happens.

use axum::body::Bytes;
use serde_json::json;

use crate::auth::new_secret;
use crate::lifecycle::Status;

/// The stream lifecycle events sent to webhooks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventKind {
    /// A publisher connected: the stream is live.
    Live,
    /// The publisher left; the stream stays live while the reconnect grace runs.
    Reconnecting,
    /// The stream ended (grace over, or the server shut down).
    Ended,
}

impl EventKind {
    /// The `type` field and the `Fanout-Event` header.
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Live => "stream.live",
            EventKind::Reconnecting => "stream.reconnecting",
            EventKind::Ended => "stream.ended",
        }
    }

    /// The event a stored status change means, if any.
    pub(crate) fn for_status(s: Status) -> Option<EventKind> {
        match s {
            Status::Live => Some(EventKind::Live),
            Status::Ended => Some(EventKind::Ended),
            Status::Created => None,
        }
    }
}

/// The stream as an event describes it.
#[derive(Debug, Clone)]
pub(crate) struct StreamInfo {
    pub(crate) id: String,
    pub(crate) title: String,
    pub(crate) status: Status,
    pub(crate) reconnecting: bool,
}

/// One event, ready to send to every endpoint.
#[derive(Debug, Clone)]
pub(crate) struct Event {
    /// `evt_...`, also the `Fanout-Delivery` header: the same on every attempt, so receivers
    /// can drop duplicates.
    pub(crate) id: String,
    pub(crate) kind: EventKind,
    pub(crate) body: Bytes,
}

impl Event {
    pub(crate) fn new(kind: EventKind, stream: &StreamInfo, created_at_ms: i64) -> Event {
        let id = new_secret("evt_");
        let body = json!({
            "id": id,
            "type": kind.as_str(),
            "createdAt": created_at_ms,
            "stream": {
                "id": stream.id,
                "title": stream.title,
                "status": stream.status.as_str(),
                "reconnecting": stream.reconnecting,
            },
        });
        Event {
            id,
            kind,
            body: body.to_string().into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_shape() {
        let s = StreamInfo {
            id: "abc".into(),
            title: "My \"show\"".into(),
            status: Status::Live,
            reconnecting: true,
        };
        let e = Event::new(EventKind::Reconnecting, &s, 1_700_000_000_123);
        let v: serde_json::Value = serde_json::from_slice(&e.body).expect("JSON body");
        assert_eq!(v["id"], e.id.as_str());
        assert!(e.id.starts_with("evt_"));
        assert_eq!(v["type"], "stream.reconnecting");
        assert_eq!(v["createdAt"], 1_700_000_000_123_i64);
        assert_eq!(v["stream"]["id"], "abc");
        assert_eq!(v["stream"]["title"], "My \"show\"");
        assert_eq!(v["stream"]["status"], "live");
        assert_eq!(v["stream"]["reconnecting"], true);
    }

    #[test]
    fn statuses_map_to_events() {
        assert_eq!(EventKind::for_status(Status::Live), Some(EventKind::Live));
        assert_eq!(EventKind::for_status(Status::Ended), Some(EventKind::Ended));
        assert_eq!(EventKind::for_status(Status::Created), None);
    }
}
