//! RTMP and SRT ingest with real encoders (ffmpeg) and real viewers (Chromium, webrtc-rs,
//! hls.js):
//!
//! - H.264 without B-frames over RTMP is passed through: Chromium decodes it over WHEP with
//!   the tone, and hls.js plays the stream's `hlsUrl`, whose one rendition is the source's
//!   H.264 as it is (no decode, no encode).
//! - H.264 with B-frames over RTMP is re-encoded once, and Chromium decodes it with audio; the
//!   LL-HLS top rung copies the re-encode and the rung below cuts its segments where it does.
//! - A source whose keyframes are too far apart for the segments gets an encoded top rung.
//! - SRT without a passphrase reaches a webrtc-rs viewer; against a server with a passphrase,
//!   the right one reaches Chromium, and none or a wrong one never makes the stream live.
//!
//! Refusals, key rotation and hostile input are in `ingest_refusals.rs`.

mod common;

use std::time::Duration;

use common::ingest::{self, Ffmpeg, LISTENERS, Push, RTMP_PORT, SRT_PORT, Shape, Video};
use common::{
    Server, fatal_hls_errors, http, in_netns, node_script, play_hls, runtime, wait_for_hls, webrtc_rs_viewer,
};
use fanout_tests::hls_load::playlist::unix_ms;
use serde_json::Value;

/// The tone ffmpeg sends (`sine=frequency=440`).
const TONE_HZ: i64 = 440;

/// Chromium's watch page (`web/test/watch.mjs`) on the stream: > 60 frames of 640x360 H.264
/// decoded, Opus audio louder than silence with ffmpeg's tone the loudest frequency in it, both
/// still arriving a second later. Returns its result line.
fn chromium_watches(server: &Server, id: &str) -> Value {
    chromium_watches_size(server, id, (640, 360))
}

/// [`chromium_watches`], for a picture of `size`.
fn chromium_watches_size(server: &Server, id: &str, size: (u64, u64)) -> Value {
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
        (Some(size.0), Some(size.1)),
        "{v}"
    );
    v
}

/// Waits for the LL-HLS bridge to run with `renditions`, the top one the source's H.264 as it
/// is (`copied`) or encoded; returns its health.
fn wait_bridge(server: &Server, id: &str, renditions: &[&str], copied: bool) -> Value {
    let v = ingest::wait_stream(
        server,
        id,
        Duration::from_secs(40),
        "the bridge's top rung",
        |v| {
            v["hls"]["state"] == "live"
                && v["hls"]["renditions"] == serde_json::json!(renditions)
                && v["hls"]["topRungCopied"] == copied
        },
    );
    v["hls"].clone()
}

/// hls.js (`web/hls.html`) plays the stream's `hlsUrl` for `seconds` with no fatal error;
/// returns its summary.
fn hls_plays(server: &Server, id: &str, seconds: u32) -> Value {
    let (ok, v) = play_hls(&server.base, id, seconds);
    assert!(ok && v["ok"] == true, "hls.js did not play the stream: {v}");
    let fatal = fatal_hls_errors(&v);
    assert!(fatal.is_empty(), "fatal hls.js errors: {fatal:?}");
    v
}

/// The segments a media playlist lists, oldest first: (when each ends, from
/// PROGRAM-DATE-TIME, in Unix milliseconds; its EXTINF duration in seconds).
fn segments(server: &Server, id: &str, rendition: &str) -> Vec<(f64, f64)> {
    let r = http(
        "GET",
        &format!("{}/hls/{id}/{rendition}/live.m3u8", server.base),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{rendition}: {}", r.body);
    let mut at = None;
    let mut out = Vec::new();
    for line in r.body.lines() {
        if let Some(date) = line.strip_prefix("#EXT-X-PROGRAM-DATE-TIME:") {
            at = unix_ms(date);
        } else if let Some(d) = line.strip_prefix("#EXTINF:") {
            let d: f64 = d.trim_end_matches(',').parse().expect("EXTINF duration");
            let end = at.expect("PROGRAM-DATE-TIME before the first segment") + d * 1000.0;
            out.push((end, d));
            at = Some(end);
        }
    }
    out
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
    // The source is no bigger than the ladder's lowest rung: its H.264 is the only rendition,
    // never decoded. Its AAC is the audio rendition as it came: ffmpeg's mono, where the
    // bridge's own encoder makes stereo.
    let hls = wait_bridge(&server, id, &["640x360"], true);
    assert_eq!(hls["audioCopied"], true, "{hls}");
    let master = http("GET", &format!("{}/hls/{id}/master.m3u8", server.base), &[], None);
    assert!(
        master.body.contains("CHANNELS=\"1\""),
        "not the source's mono AAC: {}",
        master.body
    );

    // hls.html plays `/hls/{id}/master.m3u8`, the hlsUrl checked above.
    let v = hls_plays(&server, id, 15);
    assert!(v["framesDecoded"].as_u64().unwrap_or(0) > 150, "{v}");
    assert_eq!(ingest::stream(&server, id)["status"], "live");
}

#[test]
fn rtmp_with_b_frames_is_reencoded_and_plays() {
    if !in_netns("rtmp_with_b_frames_is_reencoded_and_plays") {
        return;
    }
    let server = Server::start_bridged(&LISTENERS);
    let created = ingest::create(&server, "b-frames");
    let id = &created.id;
    let shape = Shape {
        width: 854,
        height: 480,
        ..Shape::default()
    };
    let _ffmpeg = Ffmpeg::push_shaped(Video::BFrames, Push::Rtmp(created.rtmp_url()), 150, shape);
    ingest::wait_live(&server, id);
    // Decoding in order at all needs the re-encode: WebRTC decoders take frames as they come.
    chromium_watches_size(&server, id, (854, 480));
    let stream = ingest::stream(&server, id);
    assert_eq!(
        stream["ingest"]["reencoding"], true,
        "B-frames re-encoded: {stream}"
    );
    assert_ingest_healthy(&stream);

    // LL-HLS: the re-encode is the top rung as it is; 360p is decoded and encoded from it,
    // with its keyframes where the copy has them.
    wait_bridge(&server, id, &["854x480", "640x360"], true);
    wait_for_hls(&server.base, id, "360p", 4);
    hls_plays(&server, id, 10);
    // The same segments on both rungs: each 360p segment ends where a 480p one does, to within
    // a frame. Not the first of each (the rungs of a run start on different frames: the copy
    // on the source's keyframe, the encoder on its first decoded frame, and the audio, copied
    // from the source, a little after both). Most are cut on the re-encode's two-second
    // keyframes (a keyframe lost to a busy machine makes a 2.4 s segment, on both rungs).
    let top = segments(&server, id, "480p");
    let lower = segments(&server, id, "360p");
    assert!(lower.len() >= 4, "480p {top:?} 360p {lower:?}");
    let newest_top = top.last().map_or(0.0, |s| s.0);
    for (end, _) in lower.iter().skip(1).filter(|s| s.0 <= newest_top) {
        assert!(
            top.iter().skip(1).any(|t| (t.0 - end).abs() < 40.0),
            "a 360p segment ends at {end} where no 480p one does: 480p {top:?} 360p {lower:?}"
        );
    }
    let on_keyframes = top.iter().filter(|s| (s.1 - 2.0).abs() < 0.05).count();
    assert!(
        on_keyframes * 2 >= top.len(),
        "not cut on the 2 s keyframes: {top:?}"
    );
    assert_eq!(ingest::stream(&server, id)["hls"]["topRungCopied"], true);
}

#[test]
fn a_source_with_keyframes_far_apart_gets_an_encoded_top_rung() {
    if !in_netns("a_source_with_keyframes_far_apart_gets_an_encoded_top_rung") {
        return;
    }
    let server = Server::start_bridged(&LISTENERS);
    let created = ingest::create(&server, "long-gop");
    let id = &created.id;
    // A keyframe every 3 s: after the longest segment (2.4 s), so no segment could end on one.
    let shape = Shape {
        gop: 90,
        ..Shape::default()
    };
    let _ffmpeg = Ffmpeg::push_shaped(Video::NoBFrames, Push::Rtmp(created.rtmp_url()), 120, shape);
    ingest::wait_live(&server, id);
    // Copied until the second keyframe shows the distance, then encoded on a new run.
    let hls = wait_bridge(&server, id, &["640x360"], false);
    assert_eq!(hls["restarts"], 0, "not a fault: {hls}");
    wait_for_hls(&server.base, id, "360p", 3);
    let (ok, v) = play_hls(&server.base, id, 8);
    assert!(ok && v["ok"] == true, "hls.js did not play: {v}");
    let durations: Vec<f64> = segments(&server, id, "360p").iter().map(|s| s.1).collect();
    let recent = &durations[durations.len().saturating_sub(3)..];
    assert!(
        recent.iter().any(|d| (d - 2.0).abs() < 0.05),
        "the encoded rung cuts on its own 2 s keyframes: {durations:?}"
    );
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
