//! Webhooks: stream lifecycle events POSTed, signed, to the operator's endpoints.
//!
//! ```text
//! lifecycle change -----send-----> one Outbox per endpoint --one task each--> signed POST
//!                                  (bounded, drops the oldest)                 retried 1,2,4,8,16 s
//! ```
//! Sending never blocks signaling: an event is serialised once and queued. Each endpoint
//! has its own queue and task, so one slow receiver does not delay another, and an
//! endpoint receives events in the order they happened (the next event waits while one
//! is retried).

mod delivery;
mod event;
mod outbox;
mod signature;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use reqwest::Url;
use thiserror::Error;
use tracing::warn;

use crate::lifecycle::Status;
use delivery::{Counters, Endpoint, RETRY_DELAYS};
pub use event::EventKind;
use event::{Event, StreamInfo};
use outbox::Outbox;
pub use signature::{SignatureError, verify_signature};

/// Events waiting per endpoint before the oldest are dropped.
const QUEUE: usize = 1024;

/// Where webhooks go and the secret they are signed with.
#[derive(Clone)]
pub struct WebhookConfig {
    endpoints: Vec<Url>,
    secret: Vec<u8>,
}

/// A webhook setting that cannot work.
#[derive(Debug, Error)]
pub enum WebhookError {
    /// Not a URL at all.
    #[error("webhook URL #{index} is not a URL: {reason}")]
    InvalidUrl {
        /// 1-based position among the configured URLs.
        index: usize,
        /// What the parser said.
        reason: String,
    },
    /// Only plain `http://` is supported (no TLS client is built in).
    #[error("webhook URL #{0} is not http:// (https is not supported; use a local TLS proxy)")]
    UnsupportedScheme(usize),
    /// An empty secret would sign nothing.
    #[error("the webhook secret is empty")]
    EmptySecret,
}

impl WebhookConfig {
    /// Check the URLs (plain `http://` only) and keep the signing secret.
    pub fn new(urls: &[String], secret: &str) -> Result<WebhookConfig, WebhookError> {
        if secret.is_empty() {
            return Err(WebhookError::EmptySecret);
        }
        let endpoints = urls
            .iter()
            .enumerate()
            .map(|(i, u)| {
                let url = Url::parse(u.trim()).map_err(|e| WebhookError::InvalidUrl {
                    index: i + 1,
                    reason: e.to_string(),
                })?;
                if url.scheme() != "http" {
                    return Err(WebhookError::UnsupportedScheme(i + 1));
                }
                Ok(url)
            })
            .collect::<Result<_, _>>()?;
        Ok(WebhookConfig {
            endpoints,
            secret: secret.as_bytes().to_vec(),
        })
    }

    /// How many endpoints receive events.
    pub fn endpoints(&self) -> usize {
        self.endpoints.len()
    }
}

impl fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let endpoints: Vec<String> = self
            .endpoints
            .iter()
            .map(|u| Endpoint::new(u.clone()).label)
            .collect();
        f.debug_struct("WebhookConfig")
            .field("endpoints", &endpoints)
            .field("secret", &"<redacted>")
            .finish()
    }
}

/// The running senders. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Webhooks {
    outboxes: Arc<Vec<(Endpoint, Arc<Outbox<Event>>)>>,
    counters: Arc<Counters>,
}

impl Webhooks {
    /// Start one sending task per endpoint (needs a tokio runtime).
    pub(crate) fn start(config: &WebhookConfig) -> Webhooks {
        let client = delivery::client();
        let counters = Arc::new(Counters::default());
        let secret: Arc<[u8]> = config.secret.clone().into();
        let mut outboxes = Vec::new();
        for url in &config.endpoints {
            let endpoint = Endpoint::new(url.clone());
            let outbox = Arc::new(Outbox::new(QUEUE));
            outboxes.push((endpoint.clone(), outbox.clone()));
            let (client, counters, secret) = (client.clone(), counters.clone(), secret.clone());
            tokio::spawn(async move {
                loop {
                    let event = outbox.next().await;
                    delivery::deliver(&client, &endpoint, &secret, &event, &RETRY_DELAYS, &counters).await;
                    outbox.finished();
                }
            });
        }
        Webhooks {
            outboxes: Arc::new(outboxes),
            counters,
        }
    }

    /// Queue `kind` for stream `id` (titled `title`) to every endpoint. Never waits: a full
    /// queue drops its oldest event.
    pub(crate) fn stream_event(&self, id: &str, title: String, kind: EventKind) {
        let (status, reconnecting) = match kind {
            EventKind::Live => (Status::Live, false),
            EventKind::Reconnecting => (Status::Live, true),
            EventKind::Ended => (Status::Ended, false),
        };
        let stream = StreamInfo {
            id: id.to_string(),
            title,
            status,
            reconnecting,
        };
        self.send(Event::new(kind, &stream, now_ms()));
    }

    fn send(&self, event: Event) {
        for (endpoint, outbox) in self.outboxes.iter() {
            if let Some(dropped) = outbox.push(event.clone()) {
                warn!(
                    endpoint = %endpoint.label,
                    "webhook queue full ({QUEUE}); dropped {} {}",
                    dropped.kind.as_str(),
                    dropped.id
                );
            }
        }
    }

    /// Wait until every queued event was delivered or given up, or `deadline` passed.
    /// Returns whether everything went out.
    pub(crate) async fn flush(&self, deadline: Instant) -> bool {
        let all = async {
            for (_, outbox) in self.outboxes.iter() {
                outbox.wait_idle().await;
            }
        };
        tokio::time::timeout_at(deadline.into(), all).await.is_ok()
    }

    /// Attempts so far: (delivered, failed and retried, given up).
    pub(crate) fn counts(&self) -> (u64, u64, u64) {
        let c = &self.counters;
        (
            c.ok.load(Ordering::Relaxed),
            c.retry.load(Ordering::Relaxed),
            c.failed.load(Ordering::Relaxed),
        )
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_accepts_http_only() {
        let ok = WebhookConfig::new(&["http://127.0.0.1:9000/hook".into()], "s").expect("valid");
        assert_eq!(ok.endpoints(), 1);
        assert!(matches!(
            WebhookConfig::new(&["https://example.com/".into()], "s"),
            Err(WebhookError::UnsupportedScheme(1))
        ));
        assert!(matches!(
            WebhookConfig::new(&["http://ok/".into(), "not a url".into()], "s"),
            Err(WebhookError::InvalidUrl { index: 2, .. })
        ));
        assert!(matches!(
            WebhookConfig::new(&["http://ok/".into()], ""),
            Err(WebhookError::EmptySecret)
        ));
    }

    #[test]
    fn debug_hides_the_secret_and_paths() {
        let c = WebhookConfig::new(&["http://h:1/path/TOKEN".into()], "whsec_abc").expect("valid");
        let d = format!("{c:?}");
        assert!(!d.contains("whsec_abc") && !d.contains("TOKEN"), "{d}");
    }
}
