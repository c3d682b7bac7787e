//! Live rooms reach LL-HLS through the bridge (issue 15's proofs): a stream created by the
//! API, published over WHIP, is watched at once over WHEP and over LL-HLS.
//!
//! - Chromium publishes 3-layer VP8 simulcast with audio; hls.js (low-latency mode) plays the
//!   stream's `hlsUrl` for 30 s with no stall and no fatal error while a WHEP viewer keeps
//!   playing; the multivariant playlist lists the rungs the source gets; ffprobe shows every
//!   rung's segments starting with an IDR at the same PTS; the stream's health names the
//!   bridge's encoder.
//! - An OBS-shaped H.264 publisher (webrtc-rs) reaches LL-HLS the same way.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{NodeProc, Server, create_stream, http, in_netns, play_hls, runtime, wait_for_hls};
use serde_json::Value;

/// What Chromium publishes: its top simulcast layer is 960x540, so the default ladder
/// (720, 480, 360) gives the source's own size on top, then 480p and 360p.
const WIDTH: &str = "960";
const HEIGHT: &str = "540";
const RUNGS: [&str; 3] = ["540p", "480p", "360p"];

fn get_json(url: &str) -> Value {
    let r = http("GET", url, &[], None);
    assert_eq!(r.status, 200, "GET {url}: {}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|e| panic!("GET {url}: {e}: {}", r.body))
}

/// Waits until the stream's master playlist lists video variants; returns it and how long
/// that took.
fn wait_for_master(base: &str, id: &str, within: Duration) -> (String, Duration) {
    let started = Instant::now();
    loop {
        let r = http("GET", &format!("{base}/hls/{id}/master.m3u8"), &[], None);
        if r.status == 200 && r.body.contains("#EXT-X-STREAM-INF") {
            return (r.body, started.elapsed());
        }
        assert!(
            started.elapsed() < within,
            "no LL-HLS renditions within {within:?}: {} {}",
            r.status,
            r.body
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The media sequence number and URI of each complete segment in a live playlist, with the
/// init segment's URI.
fn segments(playlist: &str) -> (String, Vec<(u64, String)>) {
    let mut msn: u64 = playlist
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|n| n.trim().parse().ok())
        .expect("a media sequence number");
    let mut init = String::new();
    let mut out = Vec::new();
    let mut after_extinf = false;
    for line in playlist.lines() {
        if let Some(map) = line.strip_prefix("#EXT-X-MAP:URI=\"") {
            init = map.trim_end_matches('"').to_string();
        } else if line.starts_with("#EXTINF:") {
            after_extinf = true;
        } else if after_extinf && !line.starts_with('#') && !line.is_empty() {
            out.push((msn, line.to_string()));
            msn += 1;
            after_extinf = false;
        }
    }
    (init, out)
}

/// (key frame, picture type, pts in seconds) of the first video frame of init + segment.
fn first_frame(base: &str, id: &str, rendition: &str, init: &str, segment: &str) -> (bool, String, f64) {
    let dir = std::env::temp_dir().join(format!("fanout-idr-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let file = dir.join(format!("{rendition}.mp4"));
    let mut bytes = Vec::new();
    for uri in [init, segment] {
        let out = Command::new("curl")
            .args(["-sf", &format!("{base}/hls/{id}/{rendition}/{uri}")])
            .output()
            .expect("curl runs");
        assert!(out.status.success(), "GET {rendition}/{uri} failed");
        bytes.extend_from_slice(&out.stdout);
    }
    std::fs::write(&file, &bytes).expect("write the segment");
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "frame=key_frame,pict_type,pts_time",
            "-read_intervals",
            "%+#1",
            "-of",
            "csv=p=0",
        ])
        .arg(&file)
        .output()
        .expect("ffprobe runs");
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or_else(|| {
        panic!(
            "ffprobe read no frame of {rendition}/{segment}: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let fields: Vec<&str> = line.split(',').collect();
    let [key, pts, kind] = fields[..] else {
        panic!("unexpected ffprobe line {line:?}");
    };
    (key == "1", kind.to_string(), pts.parse().expect("pts_time"))
}

/// Every rung's segment of one media sequence number starts with an IDR at the same PTS.
fn assert_segments_start_with_aligned_idrs(base: &str, id: &str, rungs: &[&str]) {
    let playlists: Vec<(String, Vec<(u64, String)>)> = rungs
        .iter()
        .map(|r| segments(&http("GET", &format!("{base}/hls/{id}/{r}/live.m3u8"), &[], None).body))
        .collect();
    // The newest segment every rung lists complete, less one (its parts are surely all out).
    let msn = playlists
        .iter()
        .map(|(_, s)| s.last().map_or(0, |(n, _)| *n))
        .min()
        .expect("rungs")
        .saturating_sub(1);
    let mut first = Vec::new();
    for (rung, (init, segs)) in rungs.iter().zip(&playlists) {
        let (_, uri) = segs
            .iter()
            .find(|(n, _)| *n == msn)
            .unwrap_or_else(|| panic!("{rung} does not list segment {msn}: {segs:?}"));
        let (key, kind, pts) = first_frame(base, id, rung, init, uri);
        assert!(
            key && kind == "I",
            "{rung} segment {msn} starts with {kind} (key frame: {key})"
        );
        first.push(pts);
    }
    for (rung, pts) in rungs.iter().zip(&first) {
        assert!(
            (pts - first[0]).abs() < 0.002,
            "segment {msn}: {rung} starts at {pts} s, {} at {} s",
            rungs[0],
            first[0]
        );
    }
    println!("segment {msn}: every rung starts with an IDR at {} s", first[0]);
}

#[test]
fn a_chromium_simulcast_room_plays_in_hls_js_while_a_whep_viewer_watches() {
    if !in_netns("a_chromium_simulcast_room_plays_in_hls_js_while_a_whep_viewer_watches") {
        return;
    }
    let server = Server::start_bridged(&[]);
    let (id, key) = create_stream(&server, "live room");
    let stream = get_json(&format!("{}/api/v1/streams/{id}", server.base));
    let hls_url = stream["hlsUrl"].as_str().expect("hlsUrl").to_string();
    assert!(hls_url.ends_with(&format!("/hls/{id}/master.m3u8")), "{hls_url}");
    assert_eq!(
        http("GET", &hls_url, &[], None).status,
        404,
        "renditions before anyone published"
    );

    // The publisher and a WHEP viewer, for the whole run (the script checks the viewer still
    // decodes at its end).
    let publisher = NodeProc::spawn(
        None,
        "publish_watch.mjs",
        &[
            "--base",
            &server.base,
            "--stream",
            &id,
            "--key",
            &key,
            "--width",
            WIDTH,
            "--height",
            HEIGHT,
            "--seconds",
            "50",
            "--timeout",
            "30",
        ],
    );
    let (master, after) = wait_for_master(&server.base, &id, Duration::from_secs(30));
    println!("renditions listed {after:?} after the publish started:\n{master}");
    for rung in RUNGS {
        assert!(
            master.contains(&format!("{rung}/live.m3u8")),
            "no {rung}: {master}"
        );
    }
    assert_eq!(
        master.matches("#EXT-X-STREAM-INF").count(),
        RUNGS.len(),
        "{master}"
    );
    assert!(
        master.contains("RESOLUTION=960x540") && master.contains("TYPE=AUDIO"),
        "{master}"
    );

    // As a viewer joining a running stream: two segments out.
    wait_for_hls(&server.base, &id, RUNGS[0], 2);
    let (ok, v) = play_hls(&server.base, &id, 30);
    assert!(ok && v["ok"] == true, "hls.js did not play: {v}");
    assert_eq!(v["stalls"], 0, "stalls: {v}");
    let fatal = common::fatal_hls_errors(&v);
    assert!(fatal.is_empty(), "fatal hls.js errors: {fatal:?}");
    assert!(
        v["framesDecoded"].as_u64().unwrap_or(0) > 600,
        "frames decoded: {v}"
    );
    assert!(
        v["minFramesPerSecond"].as_u64().unwrap_or(0) >= 15,
        "the picture froze for a while: {v}"
    );
    let pdt_p95 = v["pdtLatency"]["p95Ms"].as_f64().expect("PDT latency");
    assert!(pdt_p95 < 4000.0, "PDT latency p95 {pdt_p95} ms: {v}");

    assert_segments_start_with_aligned_idrs(&server.base, &id, &RUNGS);

    let health = get_json(&format!("{}/api/v1/streams/{id}", server.base))["hls"].clone();
    assert_eq!(health["state"], "live", "{health}");
    assert_eq!(health["videoCodec"], "Vp8", "{health}");
    assert!(
        health["encoder"].as_str().is_some_and(|e| e.starts_with("x264")),
        "{health}"
    );
    assert_eq!(
        health["renditions"],
        serde_json::json!(["960x540", "854x480", "640x360"]),
        "{health}"
    );

    let viewer = publisher
        .wait_for(Duration::from_secs(60), |v| v.get("ok").is_some())
        .expect("the publish/watch script finishes");
    assert_eq!(viewer["ok"], true, "the WebRTC side failed: {viewer}");
    assert!(
        viewer["run"]["fps"].as_f64().unwrap_or(0.0) > 10.0,
        "the WHEP viewer did not keep playing: {viewer}"
    );
}

#[test]
fn an_obs_shaped_h264_publisher_reaches_ll_hls() {
    if !in_netns("an_obs_shaped_h264_publisher_reaches_ll_hls") {
        return;
    }
    let server = Server::start_bridged(&[]);
    let (id, key) = create_stream(&server, "obs");
    let rt = runtime();
    let publisher = rt.block_on(common::obs_h264_publisher(&server, &id, &key));
    let (master, after) = wait_for_master(&server.base, &id, Duration::from_secs(30));
    println!("renditions listed {after:?} after the publish:\n{master}");
    let health = get_json(&format!("{}/api/v1/streams/{id}", server.base))["hls"].clone();
    assert_eq!(health["videoCodec"], "H264", "{health}");
    let rung = master
        .lines()
        .find(|l| l.ends_with("/live.m3u8") && !l.starts_with('#'))
        .and_then(|l| l.split('/').next())
        .expect("a video rung")
        .to_string();
    wait_for_hls(&server.base, &id, &rung, 2);
    let (ok, v) = play_hls(&server.base, &id, 10);
    assert!(ok && v["ok"] == true, "hls.js did not play the H.264 room: {v}");
    assert!(v["framesDecoded"].as_u64().unwrap_or(0) > 150, "{v}");
    rt.block_on(async {
        let _ = publisher.stop().await;
    });
}

/// AV1 from Chromium (its libaom encoder, one layer): GStreamer 1.22 has no AV1 depayloader,
/// so the bridge's own depacketizer turns the RTP into temporal units for av1dec.
#[test]
fn a_chromium_av1_room_reaches_ll_hls() {
    if !in_netns("a_chromium_av1_room_reaches_ll_hls") {
        return;
    }
    let server = Server::start_bridged(&[]);
    let (id, key) = create_stream(&server, "av1");
    let publisher = NodeProc::spawn(
        None,
        "publish.mjs",
        &[
            "--base",
            &server.base,
            "--stream",
            &id,
            "--key",
            &key,
            "--codec",
            "av1",
            "--no-simulcast",
            "--width",
            "640",
            "--height",
            "360",
            "--seconds",
            "40",
            "--timeout",
            "30",
        ],
    );
    let (master, after) = wait_for_master(&server.base, &id, Duration::from_secs(40));
    println!("renditions listed {after:?} after the publish started:\n{master}");
    let health = get_json(&format!("{}/api/v1/streams/{id}", server.base))["hls"].clone();
    assert_eq!(health["videoCodec"], "Av1", "{health}");
    assert_eq!(health["renditions"], serde_json::json!(["640x360"]), "{health}");
    wait_for_hls(&server.base, &id, "360p", 2);
    let (ok, v) = play_hls(&server.base, &id, 10);
    assert!(ok && v["ok"] == true, "hls.js did not play the AV1 room: {v}");
    assert!(v["framesDecoded"].as_u64().unwrap_or(0) > 150, "{v}");
    drop(publisher);
}

#[test]
fn a_stream_without_low_latency_mode_gets_plain_hls_and_its_own_ladder() {
    if !in_netns("a_stream_without_low_latency_mode_gets_plain_hls_and_its_own_ladder") {
        return;
    }
    let server = Server::start_bridged(&[]);
    let (id, key) = create_stream(&server, "plain");
    let r = http(
        "PATCH",
        &format!("{}/api/v1/streams/{id}", server.base),
        &[("Authorization", &format!("Bearer {}", server.admin))],
        Some(br#"{"lowLatencyMode": false, "hlsLadder": [240]}"#),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let rt = runtime();
    let publisher = rt.block_on(common::webrtc_rs_publisher(&server, &id, &key));
    let (master, _) = wait_for_master(&server.base, &id, Duration::from_secs(30));
    // The stream's ladder, not the server's: one 240p rung from the 360p source.
    assert!(
        master.contains("RESOLUTION=426x240") && master.contains("240p/live.m3u8"),
        "{master}"
    );
    assert_eq!(master.matches("#EXT-X-STREAM-INF").count(), 1, "{master}");
    let started = Instant::now();
    let playlist = loop {
        let p = http(
            "GET",
            &format!("{}/hls/{id}/240p/live.m3u8", server.base),
            &[],
            None,
        )
        .body;
        if p.matches("#EXTINF:").count() >= 2 {
            break p;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no segments: {p}");
        std::thread::sleep(Duration::from_millis(200));
    };
    for tag in ["#EXT-X-PART", "#EXT-X-PRELOAD-HINT", "PART-HOLD-BACK"] {
        assert!(
            !playlist.contains(tag),
            "{tag} without lowLatencyMode:\n{playlist}"
        );
    }
    rt.block_on(async {
        let _ = publisher.stop().await;
    });
}
