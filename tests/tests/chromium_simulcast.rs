//! Headless Chromium publishes 3-layer simulcast over WHIP; a second Chromium page plays
//! it over WHEP, decodes video and receives audio, and reports its latency to `/metrics`;
//! pinning the low layer shrinks the decoded picture.

mod common;

use common::{Server, create_stream, in_netns, node_script};

#[test]
fn chromium_simulcast_publish_and_watch() {
    if !in_netns("chromium_simulcast_publish_and_watch") {
        return;
    }
    let server = Server::start(&[]);
    let (id, key) = create_stream(&server, "chromium");
    let (ok, v) = node_script(
        "publish_watch.mjs",
        &[
            "--base",
            &server.base,
            "--stream",
            &id,
            "--key",
            &key,
            "--seconds",
            "3",
        ],
    );
    assert!(ok, "publish/watch failed: {v}");
    assert!(v["framesDecoded"].as_u64().unwrap_or(0) > 30, "{v}");
    assert!(v["frameWidth"].as_u64().unwrap_or(0) > 0, "{v}");
    assert!(v["audioPacketsReceived"].as_u64().unwrap_or(0) > 0, "{v}");
    let layers = v["publisherLayers"].as_array().map(|a| a.len()).unwrap_or(0);
    assert_eq!(layers, 3, "publisher sends three layers: {v}");

    // The watch page measures how far behind the server it plays (half the ICE round trip
    // plus the presented frames' wait from arrival to display) and reports it.
    let latency = v["latencyMs"].as_u64().unwrap_or(u64::MAX);
    assert!((1..1_000).contains(&latency), "server to screen on loopback: {v}");
    let metrics = common::http("GET", &format!("{}/metrics", server.base), &[], None).body;
    let exposition = fanout_tests::prometheus::parse(&metrics)
        .unwrap_or_else(|e| panic!("/metrics is not valid Prometheus text: {e}"));
    let reports = exposition
        .value("fanout_glass_to_glass_seconds_count", &[("protocol", "webrtc")])
        .unwrap_or(0.0);
    assert!(
        reports >= 1.0,
        "the page's latency report reached /metrics:\n{metrics}"
    );
}

#[test]
fn chromium_viewer_pins_low_layer() {
    if !in_netns("chromium_viewer_pins_low_layer") {
        return;
    }
    let server = Server::start(&[]);
    let (id, key) = create_stream(&server, "chromium");
    let (ok, v) = node_script(
        "publish_watch.mjs",
        &[
            "--base",
            &server.base,
            "--stream",
            &id,
            "--key",
            &key,
            "--pin",
            "q",
        ],
    );
    assert!(ok, "pinning failed: {v}");
    let pin = &v["pin"];
    assert_eq!(
        pin["widthAfter"].as_u64(),
        Some(320),
        "the q layer is 1/4 of 1280: {v}"
    );
    assert_ne!(
        pin["widthBefore"], pin["widthAfter"],
        "the picture changed size: {v}"
    );
    assert_eq!(pin["layer"]["mode"], "pinned", "{v}");
    assert_eq!(pin["layer"]["rid"], "q", "{v}");
}
