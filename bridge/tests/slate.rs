//! The slate against the real packager and real encoders. A live test source feeds a stream
//! through a gate; closing the gate is the publisher dropping (its media stops, nothing is
//! finished). The slate must then take over the renditions after a DISCONTINUITY, the live
//! source must come back on its next keyframe after another one when the gate opens, and the
//! live source finishing must end the stream with the slate gone. Needs GStreamer's
//! base/good/bad/ugly/libav plugins.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

mod gate;

use bridge::test_source::{Rendition, SpeedPreset, TestSourceConfig};
use hls::{Origin, OriginConfig};

const AFTER: Duration = Duration::from_secs(1);

/// One small rung and audio, keyframes every second: cheap enough for two at once.
fn ladder() -> TestSourceConfig {
    TestSourceConfig {
        renditions: vec![Rendition {
            width: 640,
            height: 360,
            bitrate: 600_000,
        }],
        keyframe_interval: Duration::from_secs(1),
        speed_preset: SpeedPreset::Ultrafast,
        ..Default::default()
    }
}

/// The live playlist (with parts) or the DVR playlist (whole segments, the whole run).
fn playlist(origin: &Origin, rendition: &str, dvr: bool) -> String {
    let view = origin.stream("s").map(|s| s.view());
    let Some(r) = view.as_ref().and_then(|v| v.rendition(rendition)) else {
        return String::new();
    };
    if dvr {
        r.dvr_playlist()
    } else {
        r.live_playlist(false, &[], true)
    }
}

/// Parts listed after the last DISCONTINUITY (or in all, without one).
fn parts_since_discontinuity(playlist: &str) -> usize {
    let tail = playlist.rsplit("#EXT-X-DISCONTINUITY\n").next().unwrap_or("");
    tail.lines().filter(|l| l.starts_with("#EXT-X-PART:")).count()
}

fn discontinuities(playlist: &str) -> usize {
    playlist.lines().filter(|l| *l == "#EXT-X-DISCONTINUITY").count()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
    start.elapsed()
}

#[test]
fn the_slate_covers_a_dropped_live_source_and_hands_back_on_a_keyframe() {
    let origin = Origin::new(OriginConfig::default()).expect("origin");
    let gate::Rig { slated, live, open } = gate::rig(&origin, AFTER, ladder());

    for rendition in ["360p", "audio"] {
        wait_until("live parts", Duration::from_secs(20), || {
            parts_since_discontinuity(&playlist(&origin, rendition, false)) >= 5
        });
    }
    assert_eq!(discontinuities(&playlist(&origin, "360p", false)), 0);
    assert!(!slated.showing_slate(), "no slate while the live source pushes");

    // The publisher drops.
    open.store(false, Ordering::Relaxed);
    let slate_on = wait_until("the slate", Duration::from_secs(5), || slated.showing_slate());
    let listed = wait_until("slate parts", Duration::from_secs(15), || {
        ["360p", "audio"].iter().all(|r| {
            let p = playlist(&origin, r, false);
            discontinuities(&p) == 1 && parts_since_discontinuity(&p) >= 3
        })
    });
    println!(
        "slate on {} ms after the drop; its parts listed {} ms after that",
        slate_on.as_millis(),
        listed.as_millis()
    );
    assert!(
        // Quiet is counted from the last access unit, up to a frame before the gate closed.
        slate_on >= AFTER - Duration::from_millis(100) && slate_on < AFTER + Duration::from_secs(1),
        "the slate came after {slate_on:?}, configured {AFTER:?}"
    );

    // The publisher is back: live again from its next keyframe, after a second DISCONTINUITY
    // whose first part is independent.
    open.store(true, Ordering::Relaxed);
    let back = wait_until("the live source back", Duration::from_secs(5), || {
        !slated.showing_slate()
    });
    wait_until("live parts after the slate", Duration::from_secs(15), || {
        ["360p", "audio"].iter().all(|r| {
            let p = playlist(&origin, r, false);
            discontinuities(&p) == 2 && parts_since_discontinuity(&p) >= 3
        })
    });
    println!("live again {} ms after its media resumed", back.as_millis());
    assert!(
        back < Duration::from_secs(2),
        "keyframes come every second: {back:?}"
    );
    let video = playlist(&origin, "360p", false);
    let after_slate = video.rsplit("#EXT-X-DISCONTINUITY\n").next().unwrap_or("");
    let first_part = after_slate
        .lines()
        .find(|l| l.starts_with("#EXT-X-PART:"))
        .expect("a part after the slate");
    assert!(first_part.contains("INDEPENDENT=YES"), "{first_part}");
    // Each source has its own init segment; the DVR playlist (whole segments) lists all three
    // once the live source's first segment after the slate is complete.
    wait_until(
        "three init segments in the DVR playlist",
        Duration::from_secs(10),
        || {
            let dvr = playlist(&origin, "360p", true);
            let maps: std::collections::BTreeSet<&str> =
                dvr.lines().filter(|l| l.starts_with("#EXT-X-MAP:")).collect();
            maps.len() == 3 && discontinuities(&dvr) == 2
        },
    );

    // The live source ends: the stream ends, and no slate follows.
    live.stop().expect("the live source stops cleanly");
    wait_until("the end of the stream", Duration::from_secs(10), || {
        playlist(&origin, "360p", false).contains("#EXT-X-ENDLIST")
    });
    std::thread::sleep(AFTER + Duration::from_millis(300));
    assert!(!slated.showing_slate(), "no slate after the end");
    assert_eq!(slated.slates_shown(), 1);
}
