//! `/metrics` of a running server while every part of it is used: a webrtc-rs publisher and
//! viewer, LL-HLS requests on the test pattern, a chat socket, a player heartbeat with its
//! latency, and a few refused requests. The exposition must parse strictly as Prometheus text
//! (tests/src/prometheus.rs), list exactly the families of `tests/fixtures/metrics-families.txt`
//! (name, type, label names) and each family must have moved with what was done. The same
//! activity is counted in the streams' audiences: a WHEP viewer, a chat socket, heartbeating
//! players and an HLS playlist request with a `sid` are each one viewer.

mod common;

use std::time::Duration;

use common::{ADMIN, Server, create_stream, http, in_netns, runtime, webrtc_rs_publisher, webrtc_rs_viewer};
use fanout_tests::prometheus::{self, Exposition};
use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::tungstenite::Message;

fn scrape(server: &Server) -> Exposition {
    let r = http("GET", &format!("{}/metrics", server.base), &[], None);
    assert_eq!(r.status, 200);
    let content_type = r
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str());
    assert_eq!(content_type, Some("text/plain; version=0.0.4; charset=utf-8"));
    prometheus::parse(&r.body).unwrap_or_else(|e| panic!("/metrics is not valid Prometheus text: {e}"))
}

#[test]
fn metrics_move_with_media_hls_chat_heartbeats_and_errors() {
    if !in_netns("metrics_move_with_media_hls_chat_heartbeats_and_errors") {
        return;
    }
    let server = Server::start_bridged(&["--test-pattern"]);
    let (id, key) = create_stream(&server, "metrics");
    let before = scrape(&server);
    let auth = format!("Bearer {ADMIN}");

    // Refusals of three kinds: an unknown stream (API), an unknown HLS stream, bad heartbeats.
    let r = http(
        "GET",
        &format!("{}/api/v1/streams/no-such-stream", server.base),
        &[("Authorization", &auth)],
        None,
    );
    assert_eq!(r.status, 404);
    let r = http(
        "GET",
        &format!("{}/hls/no-such-stream/master.m3u8", server.base),
        &[],
        None,
    );
    assert_eq!(r.status, 404);
    let beat = format!("{}/api/v1/streams/{id}/heartbeat", server.base);
    let json = [("Content-Type", "application/json")];
    let r = http(
        "POST",
        &beat,
        &json,
        Some(br#"{"sid":"player-0001","latencyMs":900}"#),
    );
    assert_eq!(r.status, 422, "latencyMs without protocol: {}", r.body);
    let r = http(
        "POST",
        &beat,
        &json,
        Some(br#"{"sid":"player-0001","latencyMs":-5,"protocol":"hls"}"#),
    );
    assert_eq!(r.status, 422, "negative latency: {}", r.body);
    // Two players report how far behind they are.
    for (sid, ms) in [("player-0001", 950), ("player-0002", 1400)] {
        let body = format!(r#"{{"sid":"{sid}","latencyMs":{ms},"protocol":"hls"}}"#);
        let r = http("POST", &beat, &json, Some(body.as_bytes()));
        assert_eq!(r.status, 204, "{}", r.body);
    }

    // LL-HLS: the test pattern's playlists and a part.
    let hls = format!("{}/hls/test", server.base);
    let mut playlist = String::new();
    for _ in 0..100 {
        let r = http("GET", &format!("{hls}/720p/live.m3u8"), &[], None);
        if r.status == 200 && r.body.contains("#EXT-X-PART:") {
            playlist = r.body;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let part = playlist
        .lines()
        .filter_map(|l| l.strip_prefix("#EXT-X-PART:"))
        .find_map(|attrs| attrs.split("URI=\"").nth(1)?.split('"').next())
        .unwrap_or_else(|| panic!("no part in the test pattern's playlist: {playlist}"))
        .to_string();
    // A player's playlist request with its sid counts it as a viewer of the test stream.
    let r = http(
        "GET",
        &format!("{hls}/720p/live.m3u8?sid=hls-player-01"),
        &[],
        None,
    );
    assert_eq!(r.status, 200);
    let r = http("GET", &format!("{hls}/720p/{part}"), &[], None);
    assert_eq!(r.status, 200);
    let part_bytes: f64 = r
        .headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .expect("a part has a Content-Length");

    let rt = runtime();
    rt.block_on(async {
        // Chat: a guest sends one message and one frame that is not JSON.
        let token = common::guest_token(&server, &id);
        let r = http("GET", &format!("{}/api/v1/streams/{id}", server.base), &[], None);
        let stream: serde_json::Value = serde_json::from_str(&r.body).expect("stream JSON");
        let chat_url = stream["chatUrl"].as_str().expect("chatUrl");
        let (mut ws, _) = tokio_tungstenite::connect_async(format!("{chat_url}?token={token}"))
            .await
            .expect("chat socket");
        ws.send(Message::Text(r#"{"type":"send","text":"hello metrics"}"#.into()))
            .await
            .expect("send");
        ws.send(Message::Text("not json".into())).await.expect("send");
        let mut saw = (false, false);
        while saw != (true, true) {
            let frame = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("chat answers within 5 s")
                .expect("socket open")
                .expect("frame");
            if let Message::Text(t) = frame {
                saw.0 |= t.contains("hello metrics");
                saw.1 |= t.contains("\"invalid_json\"");
            }
        }

        // Media: a webrtc-rs publisher and viewer.
        let publisher = webrtc_rs_publisher(&server, &id, &key).await;
        let viewer = webrtc_rs_viewer(&server, &id).await;
        viewer
            .wait_for(Duration::from_secs(20), |s| {
                s.video.frames > 60 && s.audio.packets > 100
            })
            .await
            .unwrap_or_else(|s| panic!("viewer did not receive enough media: {s:?}"));

        let after = scrape(&server);
        let grew = |name: &str, labels: &[(&str, &str)], by: f64| {
            let (a, b) = (
                before.value(name, labels).unwrap_or(0.0),
                after
                    .value(name, labels)
                    .unwrap_or_else(|| panic!("{name}{labels:?} missing")),
            );
            assert!(
                b - a >= by,
                "{name}{labels:?} went from {a} to {b}, expected +{by}"
            );
        };
        // A dashboard keeps working: every family, with its type and label names, as listed
        // (the list was taken from the hand-written writers before prometheus-client replaced
        // them; a new family is added to it on purpose).
        let expected: Vec<&str> = include_str!("../fixtures/metrics-families.txt").lines().collect();
        let families = after.families();
        let missing: Vec<&&str> = expected
            .iter()
            .filter(|f| !families.iter().any(|g| g == *f))
            .collect();
        let unlisted: Vec<&String> = families
            .iter()
            .filter(|f| !expected.contains(&f.as_str()))
            .collect();
        assert!(
            missing.is_empty() && unlisted.is_empty(),
            "/metrics families changed: missing or changed {missing:#?}, \
             not in tests/fixtures/metrics-families.txt {unlisted:#?}"
        );
        // SFU: packets, bytes, one viewer with a bandwidth estimate.
        grew("fanout_sfu_packets_out_total", &[], 100.0);
        grew("fanout_sfu_bytes_in_total", &[], 50_000.0);
        grew("fanout_sfu_bytes_out_total", &[], 50_000.0);
        assert_eq!(
            after.value("fanout_sfu_viewers_by_estimate", &[("le", "+Inf")]),
            Some(1.0)
        );
        assert!(
            after
                .value("fanout_sfu_bandwidth_estimate_bps_sum", &[])
                .unwrap_or(0.0)
                > 0.0
        );
        assert_eq!(after.types["fanout_sfu_forward_delay_seconds"], "histogram");
        // Players' latency: two reports, 0.95 and 1.4 s.
        let g2g = "fanout_glass_to_glass_seconds";
        grew(&format!("{g2g}_count"), &[("protocol", "hls")], 2.0);
        grew(&format!("{g2g}_bucket"), &[("protocol", "hls"), ("le", "1")], 1.0);
        grew(&format!("{g2g}_sum"), &[("protocol", "hls")], 2.35);
        // LL-HLS: playlists, the part and its bytes, the refusal.
        grew("fanout_hls_requests_total", &[("kind", "playlist")], 1.0);
        grew("fanout_hls_requests_total", &[("kind", "part")], 1.0);
        grew("fanout_hls_bytes_total", &[("kind", "part")], part_bytes);
        assert!(after.value("fanout_hls_held_requests", &[]).is_some());
        // Chat: the socket, its message, the frame it got refused.
        assert_eq!(after.value("fanout_chat_sockets", &[]), Some(1.0));
        grew("fanout_chat_messages_total", &[], 1.0);
        grew("fanout_chat_socket_writes_total", &[], 1.0);
        // Errors by source and kind.
        let errors = "fanout_errors_total";
        grew(errors, &[("source", "api"), ("kind", "not_found")], 1.0);
        grew(errors, &[("source", "api"), ("kind", "unprocessable")], 2.0);
        grew(errors, &[("source", "hls"), ("kind", "not_found")], 1.0);
        grew(errors, &[("source", "chat"), ("kind", "invalid_json")], 1.0);

        // Viewer counts: the two heartbeating players, the WHEP viewer and the chat socket
        // watch `id`; the HLS player watches the test stream.
        let current = |stream: &str| {
            let r = http(
                "GET",
                &format!("{}/api/v1/streams/{stream}", server.base),
                &[],
                None,
            );
            let v: serde_json::Value = serde_json::from_str(&r.body).expect("stream JSON");
            v["audience"]["current"]
                .as_u64()
                .unwrap_or_else(|| panic!("audience in {v}"))
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while (current(&id), current("test")) != (4, 1) && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert_eq!(
            (current(&id), current("test")),
            (4, 1),
            "viewers of the stream (2 players, WHEP, chat) and of the test pattern (1 HLS sid)"
        );

        drop(ws);
        viewer.stop().await.expect("viewer DELETE");
        publisher.stop().await.expect("publisher DELETE");
    });
}
