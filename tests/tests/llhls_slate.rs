//! hls.js across a publisher drop. A live test source feeds an LL-HLS stream through the
//! slate (`bridge::slate`) and a gate, served in-process by the origin's router beside the web
//! pages. Mid-run the gate closes for a few seconds (the publisher drops: its media stops,
//! nothing finishes) and opens again. hls.js in low-latency mode (`web/hls.html` in headless
//! Chromium) must play through both DISCONTINUITYs: frames keep being decoded while the slate
//! is on and after the live source is back, the player stalls at the drop (until the slate's
//! first parts arrive), not while the slate plays nor at the return, ends within 4 s of live,
//! and hls.js reports no fatal error.
//!
//! The return once stalled hls.js in about one run in seven: the slate's audio ran up to a
//! frame past its picture, so the new source's audio was listed ~18 ms later than its media
//! landed (docs/llhls.md, "Segment boundaries and rounding"); the packager now ends a source's
//! audio exactly with its picture.

mod common;
#[path = "../../bridge/tests/gate/mod.rs"]
mod gate;

use std::sync::atomic::Ordering;
use std::time::Duration;

use bridge::test_source::{SpeedPreset, TestSourceConfig};
use common::{NodeProc, in_netns, workspace};
use hls::{Origin, OriginConfig};

const PLAY_SECONDS: u64 = 36;
/// The publisher drops after this many seconds of playback, for `DROP_SECONDS`.
const DROP_AT: usize = 10;
const DROP_SECONDS: u64 = 8;

/// The test pattern's 360p rung alone. Two ladders encode at once here (the live source keeps
/// encoding behind its closed gate while the slate runs) beside Chromium decoding; on two cores
/// bigger rungs starve the encoders and the player, and the stalls that follow are the
/// machine's, not the slate's. `bridge/tests/slate.rs` covers a ladder of several rungs.
fn ladder() -> TestSourceConfig {
    let mut config = TestSourceConfig {
        speed_preset: SpeedPreset::Ultrafast,
        ..Default::default()
    };
    config.renditions.drain(..2);
    config
}

#[test]
fn hls_js_plays_through_a_publisher_drop_on_the_slate() {
    if !in_netns("hls_js_plays_through_a_publisher_drop_on_the_slate") {
        return;
    }
    let rt = common::runtime();
    let origin = Origin::new(OriginConfig::default()).expect("origin");
    let gate::Rig { slated, live, open } = gate::rig(&origin, Duration::from_secs(1), ladder());

    let app = hls::router(origin.clone()).fallback_service(
        tower_http::services::ServeDir::new(workspace().join("web")).append_index_html_on_directories(true),
    );
    let listener = rt
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:18080"))
        .expect("port 18080");
    rt.spawn(async move { axum::serve(listener, app).await });
    // A viewer joins a stream that is already running: the player starts once two segments
    // are out, so what it measures is the drop, not the source's first seconds.
    common::wait_for_hls("http://127.0.0.1:18080", "s", "360p", 2);

    let seconds = PLAY_SECONDS.to_string();
    let player = NodeProc::spawn(
        None,
        "hls_play.mjs",
        &[
            "--base",
            "http://127.0.0.1:18080",
            "--stream",
            "s",
            "--seconds",
            &seconds,
            "--debug",
            if std::env::var_os("FANOUT_HLS_DEBUG").is_some() {
                "1"
            } else {
                ""
            },
        ],
    );
    let mut dropped_at: Option<usize> = None;
    let mut back_at: Option<usize> = None;
    let (samples, summary) =
        common::hls_play_samples(&player, Duration::from_secs(PLAY_SECONDS + 60), |samples| {
            let n = samples.len();
            if dropped_at.is_none() && n == DROP_AT {
                open.store(false, Ordering::Relaxed);
                dropped_at = Some(n);
            }
            if back_at.is_none() && dropped_at.is_some_and(|d| n == d + DROP_SECONDS as usize) {
                open.store(true, Ordering::Relaxed);
                back_at = Some(n);
            }
        });
    println!("summary: {summary}");
    assert_eq!(summary["ok"], true, "the player failed: {summary}");
    let (dropped_at, back_at) = (
        dropped_at.expect("the run reached the drop"),
        back_at.expect("the run reached the return"),
    );
    assert_eq!(slated.slates_shown(), 1, "the slate came on once");
    assert!(!slated.showing_slate(), "the live source did not come back");

    let frames = |i: usize| samples[i]["framesDecoded"].as_u64().unwrap_or(0);
    let clock = |i: usize| samples[i]["pdtLatencyMs"].as_f64();
    // While the publisher is away the slate plays, and after it is back the live source does,
    // at nearly their full 30 fps (6 s and 15 s windows).
    let slate_frames = frames(back_at - 1) - frames(dropped_at + 1);
    let last = samples.len() - 1;
    let live_frames = frames(last) - frames(back_at + 2);
    println!(
        "frames decoded: {slate_frames} while the slate was on ({} s), {live_frames} after the \
         return ({} s); stalls {} ({} ms); PDT latency at the end {:?} ms",
        back_at - 1 - (dropped_at + 1),
        last - (back_at + 2),
        summary["stalls"],
        summary["stalledMs"],
        clock(last)
    );
    assert!(
        slate_frames >= 120,
        "the slate did not play through: {slate_frames} frames"
    );
    assert!(
        live_frames >= 360,
        "the live source did not play through after the slate: {live_frames} frames"
    );
    // One stall, at the drop: the slate comes on `after` (1 s) past the last live media, and
    // the player's buffer is shorter than that. None before it, while the slate plays or at
    // the return.
    let at = |i: usize| samples[i]["at"].as_f64().unwrap_or(0.0);
    let stalls: Vec<f64> = summary["stallReports"]
        .as_array()
        .map(|r| r.iter().filter_map(|s| s["at"].as_f64()).collect())
        .unwrap_or_default();
    let reports = &summary["stallReports"];
    assert!(
        stalls.len() == 1 && summary["stalls"].as_u64() == Some(1),
        "stalls: {} ({reports})",
        summary["stalls"]
    );
    assert!(
        stalls[0] >= at(dropped_at - 1) && stalls[0] < at(back_at - 1),
        "the stall was not at the drop: {reports}"
    );
    let stalled = summary["stalledMs"].as_f64().unwrap_or(f64::MAX);
    assert!(stalled < 5_000.0, "stalled {stalled} ms in all");
    let end_latency = clock(last).expect("PDT latency at the end");
    assert!(
        end_latency < 4_000.0,
        "the player ended {end_latency} ms behind live"
    );
    let fatal = common::fatal_hls_errors(&summary);
    assert!(fatal.is_empty(), "fatal hls.js errors: {fatal:?}");

    live.stop().expect("the live source stops cleanly");
}
