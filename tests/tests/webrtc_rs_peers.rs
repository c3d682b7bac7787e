//! An independent WebRTC stack (webrtc-rs) as publisher and as viewer.
//!
//! - VP8 + Opus publisher -> webrtc-rs viewer: one SSRC per track, keyframes, continuous
//!   sequence numbers, audio; the stream resource and `/metrics` report the ingest health.
//! - The OBS shape: H.264 (constrained baseline) + Opus, non-trickle offer, `Bearer` stream
//!   key, DELETE on stop -> a Chromium viewer decodes it, and a webrtc-rs viewer gets H.264.

mod common;

use std::time::Duration;

use common::{
    NodeProc, Server, create_stream, http, in_netns, runtime, webrtc_rs_publisher, webrtc_rs_viewer,
};

#[test]
fn webrtc_rs_vp8_publisher_to_webrtc_rs_viewer() {
    if !in_netns("webrtc_rs_vp8_publisher_to_webrtc_rs_viewer") {
        return;
    }
    let server = Server::start(&[]);
    let (id, key) = create_stream(&server, "webrtc-rs");
    runtime().block_on(async {
        let publisher = webrtc_rs_publisher(&server, &id, &key).await;
        let viewer = webrtc_rs_viewer(&server, &id).await;
        let stats = viewer
            .wait_for(Duration::from_secs(20), |s| {
                s.video.frames > 60 && s.video.keyframes > 0 && s.audio.packets > 100
            })
            .await
            .unwrap_or_else(|s| panic!("viewer did not receive enough media: {s:?}"));
        assert_eq!(
            stats.video.ssrcs.len(),
            1,
            "one outgoing video SSRC: {:?}",
            stats.video
        );
        assert_eq!(
            stats.audio.ssrcs.len(),
            1,
            "one outgoing audio SSRC: {:?}",
            stats.audio
        );
        assert_eq!(stats.video.codec.as_deref(), Some("video/VP8"));
        assert_eq!(
            stats.video.discontinuities, 0,
            "sequence numbers continuous: {:?}",
            stats.video
        );
        assert_eq!(stats.video.lost, 0, "nothing lost on loopback: {:?}", stats.video);
        let first = stats.video.first_keyframe.expect("a keyframe arrived");
        println!("webrtc-rs viewer: first keyframe after {first:?}");

        // Stream health: the publisher's tracks as the SFU sees them arrive.
        let r = http("GET", &format!("{}/api/v1/streams/{id}", server.base), &[], None);
        let v: serde_json::Value = serde_json::from_str(&r.body).expect("stream JSON");
        let tracks = v["health"]["tracks"].as_array().cloned().unwrap_or_default();
        let video = tracks
            .iter()
            .find(|t| t["track"] == "video")
            .unwrap_or_else(|| panic!("no video track in health: {v}"));
        assert!(video["bitrateBps"].as_u64().unwrap_or(0) > 10_000, "{video}");
        assert!(video["fps"].as_f64().unwrap_or(0.0) >= 10.0, "{video}");
        assert_eq!(video["loss"], 0.0, "{video}");
        assert!(tracks.iter().any(|t| t["track"] == "audio"), "{v}");
        let metrics = http("GET", &format!("{}/metrics", server.base), &[], None).body;
        assert!(
            metrics.contains(&format!("fanout_ingest_fps{{stream=\"{id}\",track=\"video\"}}")),
            "{metrics}"
        );

        let status = viewer.stop().await.expect("viewer DELETE");
        assert_eq!(status.as_u16(), 200);
        let status = publisher.stop().await.expect("publisher DELETE");
        assert_eq!(status.as_u16(), 200);
    });
}

#[test]
fn obs_shaped_h264_publisher_plays_in_chromium() {
    if !in_netns("obs_shaped_h264_publisher_plays_in_chromium") {
        return;
    }
    let server = Server::start(&[]);
    let (id, key) = create_stream(&server, "obs");
    let rt = runtime();
    let publisher = rt.block_on(common::obs_h264_publisher(&server, &id, &key));

    // A real decoder: Chromium must decode the H.264 stream.
    let chromium = NodeProc::spawn(
        None,
        "watch_timeline.mjs",
        &["--base", &server.base, "--stream", &id, "--seconds", "8"],
    );
    let decoding = chromium.wait_for(Duration::from_secs(30), |v| {
        v["framesDecoded"].as_u64().unwrap_or(0) > 60 && v["frameWidth"].as_u64().unwrap_or(0) > 0
    });
    assert!(
        decoding.is_some(),
        "Chromium did not decode the OBS-shaped H.264 stream"
    );

    rt.block_on(async {
        let viewer = webrtc_rs_viewer(&server, &id).await;
        let stats = viewer
            .wait_for(Duration::from_secs(20), |s| {
                s.video.keyframes > 0 && s.audio.packets > 50
            })
            .await
            .unwrap_or_else(|s| panic!("no H.264 keyframe or audio: {s:?}"));
        assert_eq!(stats.video.codec.as_deref(), Some("video/H264"));
        let _ = viewer.stop().await;

        // OBS stops with a DELETE; the stream then waits out its grace and ends.
        let status = publisher.stop().await.expect("DELETE");
        assert_eq!(status.as_u16(), 200);
    });
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = http("GET", &format!("{}/api/v1/streams/{id}", server.base), &[], None);
        if r.body.contains("\"status\":\"ended\"") {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "stream did not end after DELETE + grace: {}",
            r.body
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}
