//! The LL-HLS origin plays in real players: `fanout serve --test-pattern` publishes the built-in
//! ladder (the wall clock burnt into every frame) as stream `test`, and
//!
//! - hls.js in headless Chromium (`web/hls.html` through `web/test/hls_play.mjs`) plays it for
//!   60 s without a stall, within 2 s of live by hls.js's own estimate and by
//!   PROGRAM-DATE-TIME, decoding frames every second and reading the clock back from them,
//!   while bad requests (unknown stream, malformed `_HLS_msn`, path traversal) are refused
//!   beside it; the newest media is under 1 s old (p95) when its playlist arrives, which
//!   tells a source starved of CPU from a slow player;
//! - ffmpeg reads the live multivariant URL and decodes 10 s of it;
//! - curl fetches the multivariant playlist, a blocking reload and the preload-hinted part over
//!   HTTP/2 cleartext (prior knowledge, as an edge or a CDN shield speaks it) and HTTP/1.1;
//! - hls-parser in strict mode accepts every playlist: live (plain, blocking, delta), DVR, and
//!   after a graceful stop (SIGTERM) the VOD playlists, on disk and served after a restart.
//!
//! The tests share the machine's two cores with the source's three encoders, so they run one
//! at a time (a lock, whatever `--test-threads` says).

mod common;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{NodeProc, Server, fanout_bin, http, in_netns, node_script, workspace};
use fanout_tests::hls_load::{player::now_unix_ms, playlist::parse_media};

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Seconds hls_play.mjs watches; the first `STARTUP` after the first frame are not judged.
const PLAY_SECONDS: u64 = 60;
const STARTUP_S: f64 = 5.0;
/// "Near live": hls.js's latency and PROGRAM-DATE-TIME latency both under this.
const MAX_LATENCY_S: f64 = 2.0;
/// Capture to listed in a playlist, p95: encode (~20 ms), one part (200 ms) and a frame.
const MAX_EDGE_AGE_MS: f64 = 1000.0;

/// Waits (up to 60 s) until the test source's newest part is under 500 ms old at three reads
/// in a row, so the player starts against a source that keeps up with the clock.
///
/// Three x264 encoders and a Chromium starting up can starve a 2-core machine for a few
/// seconds; the source then falls behind and catches up later, which is the machine's doing,
/// not the player's or the origin's. The run itself still holds the source to
/// `MAX_EDGE_AGE_MS`.
fn source_runs_in_real_time(base: &str) {
    let url = format!("{base}/hls/test/720p/live.m3u8");
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut fresh_in_a_row = 0;
    let mut ages = Vec::new();
    while fresh_in_a_row < 3 {
        let reply = http("GET", &url, &[], None);
        let newest = parse_media(&reply.body).and_then(|p| p.parts.last().and_then(|part| part.end_ms));
        let age = newest.map(|end| now_unix_ms() - end);
        ages.push(age.map(|a| a.round()));
        fresh_in_a_row = if age.is_some_and(|a| a < 500.0) {
            fresh_in_a_row + 1
        } else {
            0
        };
        assert!(
            Instant::now() < deadline,
            "the test source did not keep up with the clock within 60 s (newest part ages, ms: \
             {ages:?}; load average {})",
            std::fs::read_to_string("/proc/loadavg")
                .unwrap_or_default()
                .trim()
        );
        std::thread::sleep(Duration::from_millis(300));
    }
}

#[test]
fn hls_js_plays_the_test_pattern_near_live() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !in_netns("hls_js_plays_the_test_pattern_near_live") {
        return;
    }
    let server = Server::start(&["--test-pattern"]);

    // The script must be able to fail: a stream that does not exist never plays.
    let (ok, v) = node_script(
        "hls_play.mjs",
        &[
            "--base",
            &server.base,
            "--stream",
            "no-such-stream",
            "--seconds",
            "1",
            "--timeout",
            "5",
        ],
    );
    assert!(!ok && v["ok"] == false, "an unknown stream played: {v}");
    source_runs_in_real_time(&server.base);

    let seconds = PLAY_SECONDS.to_string();
    let player = NodeProc::spawn(
        None,
        "hls_play.mjs",
        &["--base", &server.base, "--seconds", &seconds],
    );
    let mut refused: Option<f64> = None;
    let (samples, summary) =
        common::hls_play_samples(&player, Duration::from_secs(PLAY_SECONDS + 60), |samples| {
            // Mid-run, bad requests beside the player: they are refused and it plays on.
            if refused.is_none() && samples.len() > 20 {
                refused = samples.last().and_then(|s| s["t"].as_f64());
                bad_requests_are_refused(&server.base);
            }
        });
    assert_eq!(summary["ok"], true, "the player failed: {summary}");
    assert!(
        refused.is_some(),
        "the run ended before the bad requests were sent"
    );
    println!("summary: {summary}");
    let refused_at = refused.expect("checked above");
    let after = samples
        .iter()
        .filter(|s| s["t"].as_f64().is_some_and(|t| t > refused_at))
        .count();
    assert!(after >= 30, "only {after} samples after the bad requests");

    // First the source's share, so that a machine too busy to encode in real time is named as
    // the cause rather than the player: the newest media must be fresh when it is listed.
    let edge_p95 = summary["edgeLag"]["p95Ms"].as_f64().expect("edge lag p95");
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    assert!(
        edge_p95 < MAX_EDGE_AGE_MS,
        "the newest part was {edge_p95:.0} ms old (p95) when listed: the test source is not encoding \
         in real time (load average {}); {summary}",
        load.trim()
    );
    assert_eq!(summary["stalls"], 0, "stalls after playback started: {summary}");
    let start = samples.first().and_then(|s| s["t"].as_f64()).expect("samples") + STARTUP_S;
    let mut previous_frames = 0;
    for s in &samples {
        let t = s["t"].as_f64().expect("t");
        let frames = s["framesDecoded"].as_u64().expect("framesDecoded");
        assert!(
            frames > previous_frames,
            "no frame decoded in the second before t={t}: {s}"
        );
        previous_frames = frames;
        assert_eq!(s["stalls"], 0, "stalled at t={t}: {s}");
        if t < start {
            continue;
        }
        let latency = s["latencyS"].as_f64().unwrap_or(f64::INFINITY);
        let pdt = s["pdtLatencyMs"].as_f64().unwrap_or(f64::INFINITY) / 1000.0;
        assert!(
            latency <= MAX_LATENCY_S,
            "hls.latency {latency:.2} s at t={t}: {s}"
        );
        assert!(
            pdt <= MAX_LATENCY_S,
            "PROGRAM-DATE-TIME latency {pdt:.2} s at t={t}: {s}"
        );
        assert!(s["g2gMs"].is_number(), "no clock code read by t={t}: {s}");
    }
    // The clock code comes back from (nearly) every frame, and agrees with the PDT latency:
    // both are "now minus the time the frame was captured".
    let reads = summary["g2g"]["samples"].as_u64().expect("g2g samples");
    let expected = (PLAY_SECONDS - STARTUP_S as u64) * 25;
    assert!(
        reads >= expected,
        "only {reads} clock codes read (want >= {expected}): {summary}"
    );
    let g2g_p50 = summary["g2g"]["p50Ms"].as_f64().expect("g2g p50");
    let pdt_p50 = summary["pdtLatency"]["p50Ms"].as_f64().expect("pdt p50");
    assert!(
        (g2g_p50 - pdt_p50).abs() < 300.0,
        "the clock in the picture ({g2g_p50} ms) and PROGRAM-DATE-TIME ({pdt_p50} ms) disagree"
    );
}

/// Requests a player must never see succeed; each is refused with a 4xx and no file content.
fn bad_requests_are_refused(base: &str) {
    let cases = [
        ("/hls/no-such-stream/master.m3u8", &[404][..]),
        ("/hls/test/720p/live.m3u8?_HLS_msn=abc", &[400]),
        ("/hls/test/720p/live.m3u8?_HLS_part=1", &[400]),
        ("/hls/test/../../etc/passwd", &[400, 404]),
        ("/hls/test/720p/..%2f..%2f..%2fetc%2fpasswd", &[400, 404]),
        ("/hls/test/%2e%2e/%2e%2e/%2e%2e/etc/passwd", &[400, 404]),
        ("/hls/%2e%2e/%2e%2e/etc/passwd", &[400, 404]),
    ];
    for (path, allowed) in cases {
        // --path-as-is: curl would otherwise resolve the dot segments itself.
        let out = Command::new("curl")
            .args(["-s", "--path-as-is", "--max-time", "10", "-w", "\n%{http_code}"])
            .arg(format!("{base}{path}"))
            .output()
            .expect("curl runs");
        let text = String::from_utf8_lossy(&out.stdout);
        let (body, code) = text.rsplit_once('\n').expect("status line");
        let code: u16 = code.trim().parse().expect("status code");
        assert!(allowed.contains(&code), "{path}: status {code}, body {body:?}");
        assert!(!body.contains("root:"), "{path} leaked a file: {body:?}");
        println!("refused {path}: {code} {}", body.trim());
    }
}

/// `curl` (HTTP/2 with prior knowledge when `h2`): "<http version> <status> <bytes>".
fn fetch_version(url: &str, h2: bool) -> String {
    let mut cmd = Command::new("curl");
    if h2 {
        cmd.arg("--http2-prior-knowledge");
    }
    let out = cmd
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version} %{http_code} %{size_download}",
            "--max-time",
            "10",
            url,
        ])
        .output()
        .expect("curl runs");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[test]
fn the_origin_speaks_http2_cleartext_and_http1() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !in_netns("the_origin_speaks_http2_cleartext_and_http1") {
        return;
    }
    let server = Server::start(&["--test-pattern"]);
    common::wait_for_hls(&server.base, "test", "720p", 0);
    let rendition = format!("{}/hls/test/720p", server.base);
    let playlist = parse_media(&http("GET", &format!("{rendition}/live.m3u8"), &[], None).body)
        .expect("a media playlist");
    // The hinted part: its blocking reload and the part itself are held until it is
    // published, then answered.
    let hint = playlist.preload_hint.expect("a preload hint");
    let (msn, part) = playlist.next;
    let blocking = format!("{rendition}/live.m3u8?_HLS_msn={msn}&_HLS_part={part}");
    for (url, what) in [
        (format!("{}/hls/test/master.m3u8", server.base), "multivariant"),
        (blocking, "blocking reload"),
        (format!("{rendition}/{hint}"), "hinted part"),
    ] {
        for (h2, version) in [(true, "2"), (false, "1.1")] {
            let got = fetch_version(&url, h2);
            let fields: Vec<&str> = got.split(' ').collect();
            assert_eq!(
                fields.get(..2),
                Some(&[version, "200"][..]),
                "{what} over HTTP/{version}: {got}"
            );
            assert!(
                fields[2].parse::<u64>().is_ok_and(|n| n > 0),
                "{what}: empty body ({got})"
            );
        }
    }
}

#[test]
fn ffmpeg_decodes_ten_seconds_of_the_live_url() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !in_netns("ffmpeg_decodes_ten_seconds_of_the_live_url") {
        return;
    }
    let server = Server::start(&["--test-pattern"]);
    // A few segments to start from, as a viewer arriving at a running stream finds.
    std::thread::sleep(Duration::from_secs(4));
    let url = format!("{}/hls/test/master.m3u8", server.base);
    let started = Instant::now();
    let out = Command::new("ffmpeg")
        .args(["-hide_banner", "-nostdin", "-rw_timeout", "10000000", "-i", &url])
        .args(["-t", "10", "-f", "null", "-"])
        .stdout(Stdio::null())
        .output()
        .expect("ffmpeg runs (Debian package ffmpeg)");
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "ffmpeg failed: {log}");
    let frames = last_frame_count(&log).unwrap_or_else(|| panic!("no frame count in: {log}"));
    println!(
        "ffmpeg decoded {frames} frames in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    // 10 s at 30 fps.
    assert!((290..=310).contains(&frames), "{frames} frames decoded: {log}");
    assert!(log.contains("Video: h264") && log.contains("Audio: aac"), "{log}");
}

/// The last `frame=  N` of ffmpeg's progress lines.
fn last_frame_count(log: &str) -> Option<u64> {
    log.rsplit("frame=")
        .next()
        .filter(|_| log.contains("frame="))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[test]
fn playlists_pass_hls_parser_strict_mode_live_and_after_the_end() {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !in_netns("playlists_pass_hls_parser_strict_mode_live_and_after_the_end") {
        return;
    }
    let data_dir = std::env::temp_dir().join(format!("fanout-llhls-playback-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data_dir);
    std::fs::create_dir_all(&data_dir).expect("data dir");
    let mut server = GracefulServer::start(&data_dir);
    let base = "http://127.0.0.1:18080";

    // The checker must be able to fail: an unknown stream is 404 everywhere.
    let (ok, v) = node_script(
        "hls_validate.mjs",
        &["--phase", "live", "--base", base, "--stream", "nope"],
    );
    assert!(!ok && !v["errors"].as_array().is_none_or(|e| e.is_empty()), "{v}");

    // Long enough for delta updates to skip segments (CAN-SKIP-UNTIL is 12 s).
    std::thread::sleep(Duration::from_secs(20));
    let (ok, live) = node_script("hls_validate.mjs", &["--phase", "live", "--base", base]);
    assert!(ok, "live playlists: {live}");
    let checked = live["checked"].as_array().expect("checked");
    let kinds = |k: &str| checked.iter().filter(|c| c["kind"] == k).collect::<Vec<_>>();
    assert_eq!(kinds("live").len(), 4, "720p, 480p, 360p, audio: {live}");
    for kind in [
        "live-blocking-part",
        "live-blocking-segment",
        "live-delta",
        "live-blocking-delta",
        "dvr",
    ] {
        assert_eq!(kinds(kind).len(), 4, "{kind}: {live}");
    }
    for delta in kinds("live-delta") {
        assert!(
            delta["skip"].as_u64().unwrap_or(0) > 0,
            "nothing skipped: {delta}"
        );
    }

    // SIGTERM: the source drains, the stream ends, the VOD playlists are written.
    server.terminate();
    for rendition in ["720p", "480p", "360p", "audio"] {
        let vod = data_dir.join("hls/test").join(rendition).join("vod.m3u8");
        assert!(vod.is_file(), "{} missing after SIGTERM", vod.display());
    }
    let dir = data_dir.join("hls/test");
    let (ok, on_disk) = node_script(
        "hls_validate.mjs",
        &["--phase", "vod", "--dir", dir.to_str().expect("utf-8 path")],
    );
    assert!(ok, "VOD on disk: {on_disk}");

    // Served again by a server that no longer runs the source.
    let restarted = Server::start_in(data_dir.clone(), &[]);
    let (ok, served) = node_script("hls_validate.mjs", &["--phase", "vod", "--base", &restarted.base]);
    assert!(ok, "VOD served after a restart: {served}");
    for vod in served["checked"]
        .as_array()
        .expect("checked")
        .iter()
        .filter(|c| c["kind"] == "vod")
    {
        assert!(
            vod["segments"].as_u64().unwrap_or(0) >= 10,
            "a 20 s+ stream, 2 s segments: {vod}"
        );
    }
    drop(restarted);
    let _ = std::fs::remove_dir_all(&data_dir);
}

/// `fanout serve --test-pattern` that can be stopped the way an operator stops it (SIGTERM),
/// unlike [`Server`], which kills.
struct GracefulServer {
    child: Child,
    log: PathBuf,
}

impl GracefulServer {
    fn start(data_dir: &std::path::Path) -> GracefulServer {
        let log = data_dir.join("server-1.log");
        let child = Command::new(fanout_bin())
            .args(["serve", "--http-addr", "127.0.0.1:18080", "--udp-port", "18189"])
            .args(["--ice-loopback", "--test-pattern", "--admin-token", common::ADMIN])
            .arg("--data-dir")
            .arg(data_dir)
            .arg("--web-dir")
            .arg(workspace().join("web"))
            .env("RUST_LOG", "info,str0m=warn")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .expect("fanout starts");
        let server = GracefulServer { child, log };
        let deadline = Instant::now() + Duration::from_secs(20);
        while !Command::new("curl")
            .args([
                "-sf",
                "http://127.0.0.1:18080/hls/test/master.m3u8",
                "-o",
                "/dev/null",
            ])
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(
                Instant::now() < deadline,
                "no master playlist; log:\n{}",
                server.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        server
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM, then wait (at most 15 s) for a clean exit.
    fn terminate(&mut self) {
        let pid = self.child.id().to_string();
        assert!(
            Command::new("kill")
                .args(["-TERM", &pid])
                .status()
                .is_ok_and(|s| s.success())
        );
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                assert!(
                    status.success(),
                    "exit {status} after SIGTERM; log:\n{}",
                    self.log()
                );
                return;
            }
            assert!(
                Instant::now() < deadline,
                "still running 15 s after SIGTERM; log:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for GracefulServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
