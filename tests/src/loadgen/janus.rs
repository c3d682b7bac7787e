//! A subscriber's side of the Janus API over plain HTTP, for the streaming plugin: a session
//! with one handle that watches a mountpoint.
//!
//! Janus offers and the subscriber answers, the other way round from WHEP: `create` a session,
//! `attach` the handle, send `watch`, read the offer from the session's event long poll, send
//! `start` with the answer. Janus ends a session after 60 s without a request (its default
//! `session_timeout`), so the load generator sends `keepalive` every [`KEEPALIVE_EVERY`];
//! `destroy` ends the session and its PeerConnection, like a WHEP DELETE.
//!
//! The replies are read by pure functions ([`created_id`], [`check_ack`], [`offer_in`]), tested
//! below on messages shaped as Janus sends them.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::signal::{REQUEST_TIMEOUT, Url};

/// The plugin package name Janus knows the streaming plugin by.
const STREAMING_PLUGIN: &str = "janus.plugin.streaming";

/// How often a session is kept alive: well within Janus's default 60 s session timeout.
pub(crate) const KEEPALIVE_EVERY: Duration = Duration::from_secs(20);

/// Why a Janus exchange failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum JanusError {
    /// The request did not complete.
    #[error("{what}: {source}")]
    Http {
        /// The request.
        what: &'static str,
        /// The transport error.
        source: reqwest::Error,
    },
    /// Janus refused the request (`"janus": "error"`).
    #[error("{what}: Janus error {code}: {reason}")]
    Refused {
        /// The request.
        what: &'static str,
        /// Janus's error code.
        code: i64,
        /// Janus's reason.
        reason: String,
    },
    /// The streaming plugin refused the request.
    #[error("{what}: streaming plugin error {code}: {reason}")]
    Plugin {
        /// The request.
        what: &'static str,
        /// The plugin's error code.
        code: i64,
        /// The plugin's reason.
        reason: String,
    },
    /// Janus hung the handle up before it sent an offer.
    #[error("Janus hung up: {0}")]
    HungUp(String),
    /// A reply that is not what the API promises.
    #[error("{what}: unexpected reply: {reply}")]
    Unexpected {
        /// The request.
        what: &'static str,
        /// The start of the reply.
        reply: String,
    },
    /// No offer arrived in time.
    #[error("no offer from Janus within {0:?}")]
    NoOffer(Duration),
}

/// One Janus session with a streaming-plugin handle.
pub(crate) struct JanusSession {
    session: Url,
    handle: Url,
    handle_id: u64,
}

impl JanusSession {
    /// Creates a session on the Janus API at `api` and attaches a streaming-plugin handle.
    pub(crate) async fn create(http: &reqwest::Client, api: &Url) -> Result<Self, JanusError> {
        let reply = post(http, api, "create", json!({ "janus": "create" })).await?;
        let session = child(api, created_id("create", &reply)?);
        let attach = json!({ "janus": "attach", "plugin": STREAMING_PLUGIN });
        let reply = match post(http, &session, "attach", attach).await {
            Ok(reply) => reply,
            Err(e) => {
                destroy(http, &session).await;
                return Err(e);
            }
        };
        let handle_id = match created_id("attach", &reply) {
            Ok(id) => id,
            Err(e) => {
                destroy(http, &session).await;
                return Err(e);
            }
        };
        Ok(Self {
            handle: child(&session, handle_id),
            session,
            handle_id,
        })
    }

    /// The session's URL: what keepalives and `destroy` go to.
    pub(crate) fn url(&self) -> &Url {
        &self.session
    }

    /// Asks to watch `mountpoint` and waits for Janus's SDP offer.
    pub(crate) async fn watch(&self, http: &reqwest::Client, mountpoint: u64) -> Result<String, JanusError> {
        let watch = json!({
            "janus": "message",
            "body": { "request": "watch", "id": mountpoint },
        });
        check_ack("watch", &post(http, &self.handle, "watch", watch).await?)?;
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        let mut poll = self.session.clone();
        poll.query_pairs_mut().append_pair("maxev", "1");
        while Instant::now() < deadline {
            let reply = http
                .get(poll.clone())
                .send()
                .await
                .map_err(|source| JanusError::Http {
                    what: "event poll",
                    source,
                })?
                .json::<Value>()
                .await
                .map_err(|source| JanusError::Http {
                    what: "event poll",
                    source,
                })?;
            if let Some(sdp) = offer_in(&reply, self.handle_id)? {
                return Ok(sdp);
            }
        }
        Err(JanusError::NoOffer(REQUEST_TIMEOUT))
    }

    /// Answers the offer: Janus starts ICE and DTLS, then sends media.
    ///
    /// The answer carries every candidate of the subscriber and nothing is trickled after it;
    /// `"trickle": false` tells Janus so (otherwise it waits for trickled candidates before
    /// its connectivity checks, and the subscriber's checks go unanswered).
    pub(crate) async fn start(&self, http: &reqwest::Client, answer_sdp: &str) -> Result<(), JanusError> {
        let start = json!({
            "janus": "message",
            "body": { "request": "start" },
            "jsep": { "type": "answer", "sdp": answer_sdp, "trickle": false },
        });
        check_ack("start", &post(http, &self.handle, "start", start).await?)
    }
}

/// Keeps the session at `session` alive for another session timeout.
pub(crate) async fn keepalive(http: &reqwest::Client, session: &Url) -> Result<(), JanusError> {
    check_ack(
        "keepalive",
        &post(http, session, "keepalive", json!({ "janus": "keepalive" })).await?,
    )
}

/// Ends the session at `session` (its handles and PeerConnections with it); best effort.
pub(crate) async fn destroy(http: &reqwest::Client, session: &Url) {
    if let Err(e) = post(http, session, "destroy", json!({ "janus": "destroy" })).await {
        tracing::debug!(%session, error = %e, "destroy failed");
    }
}

/// POSTs one Janus request with a fresh transaction id and returns the reply.
async fn post(
    http: &reqwest::Client,
    url: &Url,
    what: &'static str,
    mut request: Value,
) -> Result<Value, JanusError> {
    static TRANSACTIONS: AtomicU64 = AtomicU64::new(0);
    request["transaction"] = json!(format!("t{}", TRANSACTIONS.fetch_add(1, Ordering::Relaxed)));
    http.post(url.clone())
        .json(&request)
        .send()
        .await
        .map_err(|source| JanusError::Http { what, source })?
        .json::<Value>()
        .await
        .map_err(|source| JanusError::Http { what, source })
}

/// `base/id`: a session under the API root, a handle under its session.
fn child(base: &Url, id: u64) -> Url {
    let mut url = base.clone();
    url.path_segments_mut()
        .expect("an http URL always has path segments")
        .pop_if_empty()
        .push(&id.to_string());
    url
}

/// The id in a `success` reply to `create` or `attach`.
pub(crate) fn created_id(what: &'static str, reply: &Value) -> Result<u64, JanusError> {
    refused(what, reply)?;
    match (reply["janus"].as_str(), reply["data"]["id"].as_u64()) {
        (Some("success"), Some(id)) => Ok(id),
        _ => Err(unexpected(what, reply)),
    }
}

/// A request answered `ack` (or `success`): the plugin took it; its outcome comes as an event.
pub(crate) fn check_ack(what: &'static str, reply: &Value) -> Result<(), JanusError> {
    refused(what, reply)?;
    match reply["janus"].as_str() {
        Some("ack" | "success") => Ok(()),
        _ => Err(unexpected(what, reply)),
    }
}

/// The offer for `handle` in a long-poll reply (one event, or an array of them), `None` when the
/// reply holds none (a keepalive, another event); an error when the plugin refused the watch or
/// Janus hung up.
pub(crate) fn offer_in(reply: &Value, handle: u64) -> Result<Option<String>, JanusError> {
    let events = match reply {
        Value::Array(events) => events.as_slice(),
        single => std::slice::from_ref(single),
    };
    for event in events {
        if event["sender"].as_u64() != Some(handle) {
            continue;
        }
        match event["janus"].as_str() {
            Some("hangup") => {
                let reason = event["reason"].as_str().unwrap_or("no reason given");
                return Err(JanusError::HungUp(reason.to_owned()));
            }
            Some("event") => {
                let data = &event["plugindata"]["data"];
                if let Some(reason) = data["error"].as_str() {
                    return Err(JanusError::Plugin {
                        what: "watch",
                        code: data["error_code"].as_i64().unwrap_or(0),
                        reason: reason.to_owned(),
                    });
                }
                let jsep = &event["jsep"];
                if jsep["type"].as_str() == Some("offer")
                    && let Some(sdp) = jsep["sdp"].as_str()
                {
                    return Ok(Some(sdp.to_owned()));
                }
            }
            _ => {}
        }
    }
    Ok(None)
}

fn refused(what: &'static str, reply: &Value) -> Result<(), JanusError> {
    if reply["janus"].as_str() == Some("error") {
        let error = &reply["error"];
        return Err(JanusError::Refused {
            what,
            code: error["code"].as_i64().unwrap_or(0),
            reason: error["reason"].as_str().unwrap_or("no reason given").to_owned(),
        });
    }
    Ok(())
}

fn unexpected(what: &'static str, reply: &Value) -> JanusError {
    JanusError::Unexpected {
        what,
        reply: reply.to_string().chars().take(300).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HANDLE: u64 = 4_501_234_567_890_123;

    fn event(handle: u64, data: Value, jsep: Option<Value>) -> Value {
        let mut event = json!({
            "janus": "event",
            "session_id": 77,
            "sender": handle,
            "transaction": "t3",
            "plugindata": { "plugin": STREAMING_PLUGIN, "data": data },
        });
        if let Some(jsep) = jsep {
            event["jsep"] = jsep;
        }
        event
    }

    #[test]
    fn reads_ids_of_created_sessions_and_handles() {
        let reply =
            json!({ "janus": "success", "transaction": "t0", "data": { "id": 8_812_345_678_901_234u64 } });
        assert_eq!(created_id("create", &reply).expect("id"), 8_812_345_678_901_234);
        let error = json!({ "janus": "error", "error": { "code": 460, "reason": "No such plugin" } });
        let refused = created_id("attach", &error).expect_err("refused");
        assert!(refused.to_string().contains("460: No such plugin"), "{refused}");
        assert!(matches!(
            created_id("create", &json!({ "janus": "ack" })),
            Err(JanusError::Unexpected { .. })
        ));
    }

    #[test]
    fn acks_pass_and_errors_do_not() {
        assert!(check_ack("watch", &json!({ "janus": "ack", "transaction": "t1" })).is_ok());
        assert!(check_ack("keepalive", &json!({ "janus": "ack" })).is_ok());
        let gone = json!({ "janus": "error", "error": { "code": 458, "reason": "No such session" } });
        assert!(matches!(
            check_ack("keepalive", &gone),
            Err(JanusError::Refused { code: 458, .. })
        ));
    }

    #[test]
    fn finds_the_offer_for_its_handle_in_a_poll() {
        let offer = json!({ "type": "offer", "sdp": "v=0\r\n" });
        let preparing = json!({ "streaming": "event", "result": { "status": "preparing" } });
        // maxev replies are arrays; another handle's offer is not ours.
        let reply = json!([event(HANDLE + 1, preparing.clone(), Some(offer.clone()))]);
        assert_eq!(offer_in(&reply, HANDLE).expect("no error"), None);
        let reply = json!([
            { "janus": "keepalive" },
            event(HANDLE, preparing.clone(), Some(offer.clone())),
        ]);
        assert_eq!(
            offer_in(&reply, HANDLE).expect("offer").as_deref(),
            Some("v=0\r\n")
        );
        // A single object (no maxev) works the same.
        let single = event(HANDLE, preparing, Some(offer));
        assert!(offer_in(&single, HANDLE).expect("offer").is_some());
    }

    #[test]
    fn a_refused_watch_or_a_hangup_is_an_error() {
        let missing =
            json!({ "streaming": "event", "error_code": 455, "error": "No such mountpoint/stream 9" });
        let error = offer_in(&event(HANDLE, missing, None), HANDLE).expect_err("refused");
        assert!(matches!(error, JanusError::Plugin { code: 455, .. }), "{error}");
        let hangup = json!({ "janus": "hangup", "sender": HANDLE, "reason": "Gathering error" });
        assert!(matches!(offer_in(&hangup, HANDLE), Err(JanusError::HungUp(r)) if r == "Gathering error"));
    }

    #[test]
    fn sessions_and_handles_are_path_children() {
        let api = Url::parse("http://127.0.0.1:8088/janus").expect("url");
        let session = child(&api, 12);
        assert_eq!(session.as_str(), "http://127.0.0.1:8088/janus/12");
        assert_eq!(child(&session, 34).as_str(), "http://127.0.0.1:8088/janus/12/34");
        let slash = Url::parse("http://127.0.0.1:8088/janus/").expect("url");
        assert_eq!(child(&slash, 12).as_str(), "http://127.0.0.1:8088/janus/12");
    }
}
