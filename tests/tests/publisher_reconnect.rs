//! The publisher drops (its browser is killed, no DELETE) and a new one comes back with the
//! same key within 5 s: the viewer's existing WHEP session keeps decoding, without
//! renegotiating, and the stream never stops being live.

mod common;

use std::time::Duration;

use common::{NodeProc, Server, create_stream, http, in_netns, start_publisher};
use serde_json::Value;

#[test]
fn viewer_session_survives_publisher_reconnect() {
    if !in_netns("viewer_session_survives_publisher_reconnect") {
        return;
    }
    let server = Server::start(&[]);
    let (id, key) = create_stream(&server, "reconnect");
    let publish = |seconds: u32| start_publisher(&server, &id, &key, seconds);

    let first = publish(120);
    let viewer = NodeProc::spawn(
        None,
        "watch_timeline.mjs",
        &["--base", &server.base, "--stream", &id, "--seconds", "60"],
    );
    let before = viewer
        .wait_for(Duration::from_secs(30), |v| {
            v["framesDecoded"].as_u64().unwrap_or(0) > 60
        })
        .expect("viewer decodes before the drop");

    // The publisher vanishes without a DELETE, as a crashed encoder or a lost link would.
    drop(first);
    std::thread::sleep(Duration::from_secs(2));
    let status = http("GET", &format!("{}/api/v1/streams/{id}", server.base), &[], None);
    let v: Value = serde_json::from_str(&status.body).expect("stream JSON");
    assert_eq!(v["status"], "live", "still live while the publisher is away: {v}");

    let _second = publish(120);
    let base_frames = before["framesDecoded"].as_u64().unwrap_or(0);
    let mut last_frames = base_frames;
    let resumed = viewer.wait_for(Duration::from_secs(30), |v| {
        let frames = v["framesDecoded"].as_u64().unwrap_or(0);
        // The same RTCPeerConnection keeps counting: a renegotiated or new session would
        // start again from zero.
        assert!(
            frames >= last_frames,
            "frame counter went back: {last_frames} -> {frames}"
        );
        last_frames = frames;
        v["fps"].as_f64().unwrap_or(0.0) > 10.0 && frames > base_frames + 100
    });
    assert!(
        resumed.is_some(),
        "the viewer did not resume decoding after the publisher came back"
    );
    let status = http("GET", &format!("{}/api/v1/streams/{id}", server.base), &[], None);
    let v: Value = serde_json::from_str(&status.body).expect("stream JSON");
    assert_eq!(v["status"], "live");
    assert_eq!(v["viewers"], 1, "one viewer session throughout: {v}");
}
