//! RTSP cameras pulled into streams: one [`RtspPull`] per stream with a `pullUrl`, started at
//! boot and whenever the URL is set or changed, stopped when it is cleared or the stream is
//! deleted. A pull publishes through the same [`IngestGate`] as pushed sources, so the camera
//! going away is a publisher drop (grace, slate, `stream.reconnecting`) and its return within
//! the grace keeps the viewers.

use std::collections::HashMap;
use std::sync::Arc;

use ingest::rtsp::{PullConfig, PullState, RtspPull};
use parking_lot::Mutex;
use serde_json::{Value, json};
use tracing::info;

use crate::ingest_gate::IngestGate;

/// The running pulls.
#[derive(Clone)]
pub(crate) struct Pulls {
    gate: Arc<IngestGate>,
    running: Arc<Mutex<HashMap<String, (String, RtspPull)>>>,
}

impl Pulls {
    pub(crate) fn new(gate: IngestGate) -> Pulls {
        Pulls {
            gate: Arc::new(gate),
            running: Arc::default(),
        }
    }

    /// Make `stream`'s pull match `url`: start, restart on a new URL, or stop.
    pub(crate) fn sync(&self, stream: &str, url: Option<&str>) {
        let mut running = self.running.lock();
        if running.get(stream).map(|(u, _)| u.as_str()) == url {
            return;
        }
        if let Some((_, old)) = running.remove(stream) {
            info!(%stream, "RTSP pull stopped");
            tokio::spawn(old.stop());
        }
        if let Some(url) = url {
            info!(%stream, camera = %redact(url), "RTSP pull starting");
            let gate: Arc<dyn ingest::Gate> = self.gate.clone();
            let pull = RtspPull::start(url.to_string(), stream.to_string(), gate, PullConfig::default());
            running.insert(stream.to_string(), (url.to_string(), pull));
        }
    }

    /// The pull's state for the stream's resource, `None` when it has none.
    pub(crate) fn status(&self, stream: &str) -> Option<Value> {
        let running = self.running.lock();
        let (_, pull) = running.get(stream)?;
        let s = pull.status();
        let state = match s.state {
            PullState::Connecting => "connecting",
            PullState::Playing { .. } => "playing",
            PullState::Backoff { .. } => "backoff",
            PullState::Stopped => "stopped",
        };
        Some(json!({ "state": state, "lastError": s.last_error }))
    }
}

/// A URL with its credentials replaced by `***` (for logs and responses).
pub(crate) fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((_, host)) => format!("{scheme}://***@{host}{path}"),
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact("rtsp://admin:secret@10.0.0.5:554/live"),
            "rtsp://***@10.0.0.5:554/live"
        );
        assert_eq!(redact("rtsp://cam.local/stream1"), "rtsp://cam.local/stream1");
        assert_eq!(redact("rtsp://u:p@a@b/x"), "rtsp://***@b/x");
    }
}
