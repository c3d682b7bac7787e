//! Sending one event to one endpoint: a signed POST, retried with exponential backoff.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::header;
use reqwest::{Client, Url};
use tracing::{debug, warn};

use super::event::Event;
use super::signature::sign;

/// Waits between attempts: six attempts over about half a minute, then the event is dropped.
pub(crate) const RETRY_DELAYS: [Duration; 5] = [
    Duration::from_secs(1),
    Duration::from_secs(2),
    Duration::from_secs(4),
    Duration::from_secs(8),
    Duration::from_secs(16),
];

/// One attempt, from connecting to the response status.
pub(crate) const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

/// Attempt outcomes, for `/metrics`.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) ok: AtomicU64,
    pub(crate) retry: AtomicU64,
    pub(crate) failed: AtomicU64,
}

/// A receiver's URL and how logs name it (scheme, host and port: paths and queries may
/// carry the receiver's own secrets).
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) url: Url,
    pub(crate) label: String,
}

impl Endpoint {
    pub(crate) fn new(url: Url) -> Endpoint {
        let label = format!(
            "{}://{}{}",
            url.scheme(),
            url.host_str().unwrap_or("?"),
            url.port().map(|p| format!(":{p}")).unwrap_or_default()
        );
        Endpoint { url, label }
    }
}

/// The HTTP client every endpoint shares. Redirects are not followed: a receiver answers
/// 2xx itself, and a signed body is not sent on to somewhere else.
pub(crate) fn client() -> Client {
    Client::builder()
        .user_agent(concat!("fanout-webhooks/", env!("CARGO_PKG_VERSION")))
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(ATTEMPT_TIMEOUT)
        .build()
        .expect("a client with no TLS and no proxy settings always builds")
}

/// Deliver `event`, retrying after each of `delays`; true once a 2xx came back.
pub(crate) async fn deliver(
    client: &Client,
    endpoint: &Endpoint,
    secret: &[u8],
    event: &Event,
    delays: &[Duration],
    counters: &Counters,
) -> bool {
    for attempt in 0..=delays.len() {
        match send(client, endpoint, secret, event).await {
            Ok(()) => {
                counters.ok.fetch_add(1, Ordering::Relaxed);
                debug!(endpoint = %endpoint.label, event = %event.id, attempt, "webhook delivered");
                return true;
            }
            Err(why) => match delays.get(attempt) {
                Some(wait) => {
                    counters.retry.fetch_add(1, Ordering::Relaxed);
                    debug!(
                        endpoint = %endpoint.label,
                        event = %event.id,
                        attempt,
                        "webhook attempt failed ({why}); retrying in {wait:?}"
                    );
                    tokio::time::sleep(*wait).await;
                }
                None => {
                    counters.failed.fetch_add(1, Ordering::Relaxed);
                    warn!(
                        endpoint = %endpoint.label,
                        event = %event.id,
                        "webhook {} not delivered after {} attempts ({why}); giving up",
                        event.kind.as_str(),
                        attempt + 1
                    );
                }
            },
        }
    }
    false
}

async fn send(client: &Client, endpoint: &Endpoint, secret: &[u8], event: &Event) -> Result<(), String> {
    let t = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let res = client
        .post(endpoint.url.clone())
        .timeout(ATTEMPT_TIMEOUT)
        .header(header::CONTENT_TYPE, "application/json")
        .header("fanout-event", event.kind.as_str())
        .header("fanout-delivery", &event.id)
        .header("fanout-signature", sign(secret, t, &event.body))
        .body(event.body.clone())
        .send()
        .await
        // The URL stays out of the message (see `Endpoint`).
        .map_err(|e| e.without_url().to_string())?;
    if res.status().is_success() {
        Ok(())
    } else {
        Err(format!("HTTP {}", res.status().as_u16()))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::Mutex;
    use std::time::Instant;

    use axum::Router;
    use axum::body::Bytes;
    use axum::http::{HeaderMap, StatusCode};
    use axum::routing::post;

    use super::*;
    use crate::lifecycle::Status;
    use crate::webhook::event::{EventKind, StreamInfo};
    use crate::webhook::verify_signature;

    type Seen = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

    /// A receiver on loopback answering with `statuses` in turn (then 200).
    async fn receiver(statuses: Vec<StatusCode>) -> (Url, Seen) {
        let seen: Seen = Arc::default();
        let answers = Arc::new(Mutex::new(statuses.into_iter()));
        let app = Router::new().route(
            "/hook",
            post({
                let seen = seen.clone();
                move |headers: HeaderMap, body: Bytes| async move {
                    seen.lock().expect("not poisoned").push((headers, body));
                    answers
                        .lock()
                        .expect("not poisoned")
                        .next()
                        .unwrap_or(StatusCode::OK)
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback port");
        let addr = listener.local_addr().expect("bound");
        tokio::spawn(async move { axum::serve(listener, app).await });
        let url = Url::parse(&format!("http://{addr}/hook")).expect("valid URL");
        (url, seen)
    }

    fn event() -> Event {
        let s = StreamInfo {
            id: "s1".into(),
            title: "t".into(),
            status: Status::Live,
            reconnecting: false,
        };
        Event::new(EventKind::Live, &s, 1)
    }

    #[tokio::test]
    async fn retries_until_2xx_with_fresh_signatures() {
        let (url, seen) = receiver(vec![StatusCode::INTERNAL_SERVER_ERROR, StatusCode::BAD_GATEWAY]).await;
        let counters = Counters::default();
        let e = event();
        let delays = [Duration::from_millis(10); 5];
        let started = Instant::now();
        assert!(deliver(&client(), &Endpoint::new(url), b"s3cret", &e, &delays, &counters).await);
        assert!(
            started.elapsed() >= Duration::from_millis(20),
            "waited between attempts"
        );
        assert_eq!(counters.ok.load(Ordering::Relaxed), 1);
        assert_eq!(counters.retry.load(Ordering::Relaxed), 2);
        assert_eq!(counters.failed.load(Ordering::Relaxed), 0);
        let seen = seen.lock().expect("not poisoned");
        assert_eq!(seen.len(), 3);
        for (headers, body) in seen.iter() {
            assert_eq!(body, &e.body, "the same body on every attempt");
            assert_eq!(headers["fanout-event"], "stream.live");
            assert_eq!(headers["fanout-delivery"], e.id.as_str());
            assert_eq!(headers["content-type"], "application/json");
            let sig = headers["fanout-signature"].to_str().expect("ASCII");
            verify_signature(b"s3cret", sig, body, SystemTime::now(), Duration::from_secs(60))
                .expect("valid signature");
        }
    }

    #[tokio::test]
    async fn gives_up_after_the_last_delay() {
        let (url, seen) = receiver(vec![StatusCode::SERVICE_UNAVAILABLE; 10]).await;
        let counters = Counters::default();
        let delays = [Duration::from_millis(5); 2];
        let ok = deliver(&client(), &Endpoint::new(url), b"k", &event(), &delays, &counters).await;
        assert!(!ok);
        assert_eq!(seen.lock().expect("not poisoned").len(), 3);
        assert_eq!(counters.retry.load(Ordering::Relaxed), 2);
        assert_eq!(counters.failed.load(Ordering::Relaxed), 1);
        assert_eq!(counters.ok.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn logs_name_the_host_only() {
        let e = Endpoint::new(Url::parse("http://hooks.example:9000/t/SECRET?k=v").expect("URL"));
        assert_eq!(e.label, "http://hooks.example:9000");
    }
}
