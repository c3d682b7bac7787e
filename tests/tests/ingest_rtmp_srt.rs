//! RTMP and SRT ingest with real encoders (ffmpeg) and real viewers (Chromium, webrtc-rs,
//! hls.js):
//!
//! - H.264 without B-frames over RTMP is passed through: Chromium decodes it over WHEP with
//!   the tone, and hls.js plays the stream's `hlsUrl`.
//! - H.264 with B-frames over RTMP is re-encoded once, and Chromium decodes it with audio.
//! - SRT without a passphrase reaches a webrtc-rs viewer; against a server with a passphrase,
//!   the right one reaches Chromium, and none or a wrong one never makes the stream live.
//!
//! Refusals, key rotation and hostile input are in `ingest_refusals.rs`.

mod common;

use std::time::Duration;

use common::ingest::{self, Ffmpeg, LISTENERS, Push, RTMP_PORT, SRT_PORT, Video};
use common::{Server, fatal_hls_errors, in_netns, node_script, play_hls, runtime, webrtc_rs_viewer};
use serde_json::Value;

/// The tone ffmpeg sends (`sine=frequency=440`).
const TONE_HZ: i64 = 440;

/// Chromium's watch page (`web/test/watch.mjs`) on the stream: > 60 frames of 640x360 H.264
/// decoded, Opus audio louder than silence with ffmpeg's tone the loudest frequency in it, both
/// still arriving a second later. Returns its result line.
fn chromium_watches(server: &Server, id: &str) -> Value {
    let (ok, v) = node_script(
        "watch.mjs",
        &[
            "--base",
            &server.base,
            "--stream",
            id,
            "--frames",
            "60",
            "--timeout",
            "40",
        ],
    );
    assert!(ok && v["ok"] == true, "Chromium did not play the stream: {v}");
    assert_eq!(v["videoCodec"], "video/H264", "{v}");
    assert_eq!(v["audioCodec"], "audio/opus", "{v}");
    // The analyser's bins are about 23 Hz wide.
    let peak = v["audioPeakHz"].as_i64().unwrap_or(0);
    assert!((peak - TONE_HZ).abs() < 40, "not the tone: {v}");
    assert_eq!(
        (v["frameWidth"].as_u64(), v["frameHeight"].as_u64()),
        (Some(640), Some(360)),
        "{v}"
    );
    v
}

/// The source's health as the stream resource shows it while it publishes: the SFU sees a video
/// and an audio track arrive, and the ingest reports no problem.
fn assert_ingest_healthy(stream: &Value) {
    let tracks = stream["health"]["tracks"].as_array().cloned().unwrap_or_default();
    let video = tracks
        .iter()
        .find(|t| t["track"] == "video")
        .unwrap_or_else(|| panic!("no video track in the health: {stream}"));
    assert!(video["fps"].as_f64().unwrap_or(0.0) > 0.0, "{video}");
    assert!(
        tracks.iter().any(|t| t["track"] == "audio"),
        "no audio track: {stream}"
    );
    assert_eq!(stream["ingest"]["problems"], serde_json::json!([]), "{stream}");
}

#[test]
fn rtmp_without_b_frames_reaches_whep_and_hls() {
    if !in_netns("rtmp_without_b_frames_reaches_whep_and_hls") {
        return;
    }
    let server = Server::start_bridged(&LISTENERS);
    let created = ingest::create(&server, "rtmp");
    let (id, key) = (&created.id, &created.key);
    // The complete publishing URLs, on the host the API was asked on.
    assert_eq!(
        created.rtmp_url(),
        format!("rtmp://127.0.0.1:{RTMP_PORT}/live/{key}"),
        "{}",
        created.body
    );
    assert_eq!(
        created.body["rtmpServer"],
        format!("rtmp://127.0.0.1:{RTMP_PORT}/live")
    );
    assert_eq!(
        created.srt_url(),
        format!("srt://127.0.0.1:{SRT_PORT}?streamid=publish:{key}")
    );

    let _ffmpeg = Ffmpeg::push(Video::NoBFrames, Push::Rtmp(created.rtmp_url()), 150);
    let live = ingest::wait_live(&server, id);
    let hls_url = live["hlsUrl"].as_str().expect("hlsUrl");
    assert!(hls_url.ends_with(&format!("/hls/{id}/master.m3u8")), "{hls_url}");

    chromium_watches(&server, id);
    let stream = ingest::stream(&server, id);
    assert_eq!(stream["ingest"]["reencoding"], false, "passed through: {stream}");
    assert_ingest_healthy(&stream);

    // hls.html plays `/hls/{id}/master.m3u8`, the hlsUrl checked above.
    let (ok, v) = play_hls(&server.base, id, 15);
    assert!(ok && v["ok"] == true, "hls.js did not play the RTMP stream: {v}");
    let fatal = fatal_hls_errors(&v);
    assert!(fatal.is_empty(), "fatal hls.js errors: {fatal:?}");
    assert!(v["framesDecoded"].as_u64().unwrap_or(0) > 150, "{v}");
    assert_eq!(ingest::stream(&server, id)["status"], "live");
}

#[test]
fn rtmp_with_b_frames_is_reencoded_and_plays() {
    if !in_netns("rtmp_with_b_frames_is_reencoded_and_plays") {
        return;
    }
    let server = Server::start(&LISTENERS);
    let created = ingest::create(&server, "b-frames");
    let _ffmpeg = Ffmpeg::push(Video::BFrames, Push::Rtmp(created.rtmp_url()), 120);
    ingest::wait_live(&server, &created.id);
    // Decoding in order at all needs the re-encode: WebRTC decoders take frames as they come.
    chromium_watches(&server, &created.id);
    let stream = ingest::stream(&server, &created.id);
    assert_eq!(
        stream["ingest"]["reencoding"], true,
        "B-frames re-encoded: {stream}"
    );
    assert_ingest_healthy(&stream);
}

#[test]
fn srt_with_and_without_passphrase() {
    if !in_netns("srt_with_and_without_passphrase") {
        return;
    }
    const PASSPHRASE: &str = "correct-horse-battery";
    {
        let server = Server::start(&LISTENERS);
        let created = ingest::create(&server, "srt");
        // An encrypting caller where the server has no passphrase is refused.
        let mut encrypted = Ffmpeg::push(
            Video::NoBFrames,
            Push::Srt {
                url: created.srt_url(),
                passphrase: Some(PASSPHRASE.into()),
            },
            30,
        );
        encrypted.assert_refused("SRT with a passphrase the server does not have");
        ingest::assert_never_live(&server, &created.id, Duration::from_secs(2));

        let _ffmpeg = Ffmpeg::push(
            Video::NoBFrames,
            Push::Srt {
                url: created.srt_url(),
                passphrase: None,
            },
            120,
        );
        ingest::wait_live(&server, &created.id);
        let rt = runtime();
        rt.block_on(async {
            let viewer = webrtc_rs_viewer(&server, &created.id).await;
            let stats = viewer
                .wait_for(Duration::from_secs(40), |s| {
                    s.video.frames > 60 && s.video.keyframes > 0 && s.audio.packets > 100
                })
                .await
                .unwrap_or_else(|s| panic!("the webrtc-rs viewer got too little over SRT: {s:?}"));
            assert_eq!(stats.video.codec.as_deref(), Some("video/H264"), "{stats:?}");
            assert_eq!(stats.audio.codec.as_deref(), Some("audio/opus"), "{stats:?}");
            let _ = viewer.stop().await;
        });
        let stream = ingest::stream(&server, &created.id);
        assert_eq!(stream["ingest"]["reencoding"], false, "{stream}");
        assert_ingest_healthy(&stream);
    }

    let server = Server::start(&[&LISTENERS[..], &["--srt-passphrase", PASSPHRASE]].concat());
    let live = ingest::create(&server, "srt encrypted");
    let mut publisher = Ffmpeg::push(
        Video::NoBFrames,
        Push::Srt {
            url: live.srt_url(),
            passphrase: Some(PASSPHRASE.into()),
        },
        150,
    );
    ingest::wait_live(&server, &live.id);
    let idle = ingest::create(&server, "srt refused");
    for (what, passphrase) in [
        ("SRT without the passphrase", None),
        ("SRT with a wrong passphrase", Some("wrong-horse-battery")),
    ] {
        // On a stream nobody publishes: it does not go live.
        let mut ffmpeg = Ffmpeg::push(
            Video::NoBFrames,
            Push::Srt {
                url: idle.srt_url(),
                passphrase: passphrase.map(String::from),
            },
            30,
        );
        ffmpeg.assert_refused(what);
        ingest::assert_never_live(&server, &idle.id, Duration::from_secs(2));
        // On the live stream: the publisher with the passphrase stays its publisher.
        let mut ffmpeg = Ffmpeg::push(
            Video::NoBFrames,
            Push::Srt {
                url: live.srt_url(),
                passphrase: passphrase.map(String::from),
            },
            30,
        );
        ffmpeg.assert_refused(what);
        ingest::assert_throughout(
            &server,
            &live.id,
            Duration::from_secs(2),
            &format!("live with its publisher after {what}"),
            |v| v["status"] == "live" && v["reconnecting"] == false,
        );
        assert!(publisher.running(), "{what} disconnected the publisher");
    }
    chromium_watches(&server, &live.id);
}
