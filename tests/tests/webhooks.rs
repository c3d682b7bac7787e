//! Webhooks and the SIGTERM drain, against the real binary and a real WebRTC publisher
//! (webrtc-rs), with a receiver in the test that checks every signature with the verifier
//! the `signaling` crate exports and answers 500 to each event's first attempt.
//!
//! - A stream goes live, its publisher leaves, the grace runs out: `stream.live`,
//!   `stream.reconnecting`, `stream.ended` arrive in that order, each retried once, all
//!   signed; a tampered body fails verification.
//! - SIGTERM with a publisher on: `/readyz` turns 503, a new WHEP offer gets 503 +
//!   `Retry-After`, the open session goes on; once it leaves the stream ends, its
//!   `stream.ended` still goes out, and the process exits 0 within the drain window.
//! - The built-in test pattern (a source outside the SFU) sends `stream.live` when it starts
//!   and `stream.ended` at the shutdown, like a publisher.

mod common;

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use common::{
    ChatSocket, Server, chat_socket, create_stream, http, in_netns, runtime, webrtc_rs_publisher, whep_offer,
};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use signaling::{SignatureError, verify_signature};
use tokio_tungstenite::tungstenite::Message;

const SECRET: &str = "whsec_e2e_test_secret";
const TOLERANCE: Duration = Duration::from_secs(300);

/// One attempt as the receiver saw it.
#[derive(Debug, Clone)]
struct Attempt {
    event: String,
    delivery: String,
    signature: String,
    body: Bytes,
    verified: Result<(), SignatureError>,
    answered: StatusCode,
}

impl Attempt {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("webhook body is JSON")
    }
}

#[derive(Default)]
struct Seen {
    attempts: Vec<Attempt>,
    first_attempts: HashSet<String>,
}

/// A webhook receiver on loopback, in the test's runtime.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

impl Receiver {
    fn start(rt: &tokio::runtime::Runtime) -> Receiver {
        let seen: Arc<Mutex<Seen>> = Arc::default();
        let handler_seen = seen.clone();
        let app = Router::new().route(
            "/hook",
            post(move |headers: HeaderMap, body: Bytes| {
                let seen = handler_seen.clone();
                async move {
                    let h = |name: &str| {
                        headers
                            .get(name)
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or_default()
                            .to_string()
                    };
                    let signature = h("fanout-signature");
                    let verified =
                        verify_signature(SECRET.as_bytes(), &signature, &body, SystemTime::now(), TOLERANCE);
                    let mut seen = seen.lock().expect("not poisoned");
                    let delivery = h("fanout-delivery");
                    // The first attempt of every event fails, so every event is retried.
                    let answered = if seen.first_attempts.insert(delivery.clone()) {
                        StatusCode::INTERNAL_SERVER_ERROR
                    } else if verified.is_ok() {
                        StatusCode::NO_CONTENT
                    } else {
                        StatusCode::UNAUTHORIZED
                    };
                    seen.attempts.push(Attempt {
                        event: h("fanout-event"),
                        delivery,
                        signature,
                        body,
                        verified,
                        answered,
                    });
                    answered
                }
            }),
        );
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .expect("a loopback port");
        let addr: SocketAddr = listener.local_addr().expect("bound");
        rt.spawn(async move { axum::serve(listener, app).await });
        Receiver {
            url: format!("http://{addr}/hook"),
            seen,
        }
    }

    /// A server that sends its webhooks here, signed with [`SECRET`], with `extra` flags.
    fn server(&self, extra: &[&str]) -> Server {
        let mut args = vec!["--webhook-url", self.url.as_str(), "--webhook-secret", SECRET];
        args.extend_from_slice(extra);
        Server::start(&args)
    }

    /// Attempts for stream `id` that were accepted (2xx).
    fn accepted(&self, id: &str) -> Vec<Attempt> {
        self.seen
            .lock()
            .expect("not poisoned")
            .attempts
            .iter()
            .filter(|a| a.answered.is_success() && a.json()["stream"]["id"] == id)
            .cloned()
            .collect()
    }

    /// Every attempt of one delivery.
    fn attempts_of(&self, delivery: &str) -> Vec<Attempt> {
        self.seen
            .lock()
            .expect("not poisoned")
            .attempts
            .iter()
            .filter(|a| a.delivery == delivery)
            .cloned()
            .collect()
    }

    /// Wait until `event` for stream `id` was accepted.
    fn wait_accepted(&self, id: &str, event: &str, timeout: Duration) -> Attempt {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(a) = self.accepted(id).into_iter().find(|a| a.event == event) {
                return a;
            }
            assert!(
                Instant::now() < deadline,
                "no accepted {event} within {timeout:?}; attempts so far: {:#?}",
                self.seen.lock().expect("not poisoned").attempts
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn lifecycle_webhooks_are_signed_retried_and_in_order() {
    if !in_netns("lifecycle_webhooks_are_signed_retried_and_in_order") {
        return;
    }
    let rt = runtime();
    let receiver = Receiver::start(&rt);
    let server = receiver.server(&["--reconnect-grace", "2"]);
    let (id, key) = create_stream(&server, "Webhook show");
    rt.block_on(async {
        let publisher = webrtc_rs_publisher(&server, &id, &key).await;
        receiver.wait_accepted(&id, "stream.live", Duration::from_secs(20));
        let status = publisher.stop().await.expect("publisher DELETE");
        assert_eq!(status.as_u16(), 200);
    });
    // The grace (2 s) runs out, then the ended event is retried once (1 s).
    receiver.wait_accepted(&id, "stream.ended", Duration::from_secs(20));

    let accepted = receiver.accepted(&id);
    let order: Vec<&str> = accepted.iter().map(|a| a.event.as_str()).collect();
    assert_eq!(
        order,
        ["stream.live", "stream.reconnecting", "stream.ended"],
        "one of each, in lifecycle order"
    );
    for a in &accepted {
        let v = a.json();
        assert_eq!(v["type"], a.event.as_str(), "Fanout-Event matches the body");
        assert_eq!(v["id"], a.delivery.as_str(), "Fanout-Delivery is the event id");
        assert!(a.delivery.starts_with("evt_"));
        assert!(v["createdAt"].as_i64().is_some_and(|t| t > 1_600_000_000_000));
        assert_eq!(v["stream"]["title"], "Webhook show");
        let expected_status = if a.event == "stream.ended" {
            "ended"
        } else {
            "live"
        };
        assert_eq!(v["stream"]["status"], expected_status, "{v}");
        assert_eq!(v["stream"]["reconnecting"], a.event == "stream.reconnecting");

        let attempts = receiver.attempts_of(&a.delivery);
        assert_eq!(attempts.len(), 2, "500 first, then accepted: {attempts:#?}");
        assert_eq!(attempts[0].answered, StatusCode::INTERNAL_SERVER_ERROR);
        for attempt in &attempts {
            assert_eq!(attempt.verified, Ok(()), "every attempt is signed: {attempt:?}");
            assert_eq!(attempt.body, a.body, "the same body on every attempt");
        }
    }

    // A receiver that checks signatures refuses a tampered body or another secret.
    let live = &accepted[0];
    let tampered = String::from_utf8_lossy(&live.body).replace("stream.live", "stream.ended");
    assert_eq!(
        verify_signature(
            SECRET.as_bytes(),
            &live.signature,
            tampered.as_bytes(),
            SystemTime::now(),
            TOLERANCE
        ),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        verify_signature(
            b"another secret",
            &live.signature,
            &live.body,
            SystemTime::now(),
            TOLERANCE
        ),
        Err(SignatureError::Mismatch)
    );

    // The server counts the last delivery once its answer is back: allow it a moment.
    let deadline = Instant::now() + Duration::from_secs(5);
    let metrics = loop {
        let m = http("GET", &format!("{}/metrics", server.base), &[], None).body;
        if m.contains("fanout_webhook_deliveries_total{result=\"ok\"} 3\n") || Instant::now() > deadline {
            break m;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(
        metrics.contains("fanout_webhook_deliveries_total{result=\"ok\"} 3\n")
            && metrics.contains("fanout_webhook_deliveries_total{result=\"retry\"} 3\n")
            && metrics.contains("fanout_webhook_deliveries_total{result=\"failed\"} 0\n"),
        "{metrics}"
    );
}

#[test]
fn sigterm_drains_sessions_then_ends_streams_and_exits() {
    if !in_netns("sigterm_drains_sessions_then_ends_streams_and_exits") {
        return;
    }
    const DRAIN_SECS: u64 = 8;
    let rt = runtime();
    let receiver = Receiver::start(&rt);
    let drain = DRAIN_SECS.to_string();
    let mut server = receiver.server(&["--drain-secs", &drain]);
    let (id, key) = create_stream(&server, "Drained show");
    let publisher = rt.block_on(webrtc_rs_publisher(&server, &id, &key));
    receiver.wait_accepted(&id, "stream.live", Duration::from_secs(20));
    let ready = http("GET", &format!("{}/readyz", server.base), &[], None);
    assert_eq!((ready.status, ready.body.as_str()), (200, "ready"));
    let mut chat = rt.block_on(chat_socket(&server, &id));

    let sigterm = Instant::now();
    server.terminate();
    let deadline = sigterm + Duration::from_secs(2);
    let readyz = loop {
        let r = http("GET", &format!("{}/readyz", server.base), &[], None);
        if r.status == 503 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(readyz.status, 503, "readyz after SIGTERM: {readyz:?}");
    assert_eq!(readyz.body, "not ready: draining");

    let offer = whep_offer();
    let whep = http(
        "POST",
        &format!("{}/whep/{id}", server.base),
        &[("Content-Type", "application/sdp")],
        Some(offer.as_bytes()),
    );
    assert_eq!(whep.status, 503, "no new viewers while draining: {whep:?}");
    assert!(whep.header("retry-after").is_some(), "{whep:?}");
    assert!(whep.body.contains("\"draining\""), "{whep:?}");

    // The open session goes on during the drain: the stream is still live.
    let stream = http("GET", &format!("{}/api/v1/streams/{id}", server.base), &[], None);
    let v: Value = serde_json::from_str(&stream.body).expect("stream JSON");
    assert_eq!(v["status"], "live", "still live while draining: {v}");
    // So does chat: a message sent while draining reaches its room.
    rt.block_on(async {
        chat.send(Message::Text(r#"{"type":"send","text":"still here"}"#.into()))
            .await
            .expect("chat send while draining");
        next_text(&mut chat, "still here").await;
    });
    assert!(
        server.wait_exit(Duration::ZERO).is_none(),
        "waiting for the session"
    );

    // The publisher leaves: nothing is open, the drain ends the stream and exits.
    let status = rt.block_on(publisher.stop()).expect("publisher DELETE");
    assert_eq!(status.as_u16(), 200, "DELETE still works while draining");
    let left = (sigterm + Duration::from_secs(DRAIN_SECS + 2)).saturating_duration_since(Instant::now());
    let exit = server
        .wait_exit(left)
        .unwrap_or_else(|| panic!("still running {} s after SIGTERM", DRAIN_SECS + 2));
    assert!(exit.success(), "exit status after SIGTERM: {exit}");
    let took = sigterm.elapsed();
    println!("exited {took:?} after SIGTERM");
    assert!(
        took < Duration::from_secs(DRAIN_SECS),
        "the drain ends when the last session does, not at the end of the window ({took:?})"
    );

    // Its end was told before the process went away (the first attempts of its
    // reconnecting and ended events failed; the retries made it within the drain window).
    let ended = receiver.wait_accepted(&id, "stream.ended", Duration::ZERO);
    assert_eq!(ended.json()["stream"]["status"], "ended");
    assert_eq!(ended.verified, Ok(()));
    // Chat was closed at the end of the drain, with a reason.
    rt.block_on(next_text(&mut chat, "\"shutting_down\""));
}

#[test]
fn the_test_pattern_goes_live_and_ends_with_webhooks() {
    if !in_netns("the_test_pattern_goes_live_and_ends_with_webhooks") {
        return;
    }
    let rt = runtime();
    let receiver = Receiver::start(&rt);
    let mut server = receiver.server(&["--test-pattern"]);
    // A source outside the SFU goes through the same lifecycle as a WHIP publisher.
    let live = receiver.wait_accepted("test", "stream.live", Duration::from_secs(20));
    assert_eq!(live.json()["stream"]["status"], "live");
    assert_eq!(live.verified, Ok(()));
    let stream = http("GET", &format!("{}/api/v1/streams/test", server.base), &[], None);
    let v: Value = serde_json::from_str(&stream.body).expect("stream JSON");
    assert_eq!(v["status"], "live", "{v}");

    server.terminate();
    let exit = server
        .wait_exit(Duration::from_secs(15))
        .expect("exits after SIGTERM");
    assert!(exit.success(), "exit status after SIGTERM: {exit}");
    let ended = receiver.wait_accepted("test", "stream.ended", Duration::ZERO);
    assert_eq!(ended.json()["stream"]["status"], "ended");
    let order: Vec<String> = receiver.accepted("test").into_iter().map(|a| a.event).collect();
    assert_eq!(order, ["stream.live", "stream.ended"]);
}

/// Read frames until a text frame containing `needle` (5 s at most).
async fn next_text(ws: &mut ChatSocket, needle: &str) {
    let found = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(Ok(frame)) = ws.next().await {
            if let Message::Text(t) = frame
                && t.contains(needle)
            {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(found, Ok(true), "no chat frame with {needle}");
}
