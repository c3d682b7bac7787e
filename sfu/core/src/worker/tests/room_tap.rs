//! The LL-HLS bridge's room tap: the top layer and audio, following the publisher, never
//! holding up a worker.

use std::time::Duration;

use str0m::media::MediaKind;

use super::sim::{ONE_LAYER, Received, SIMULCAST, Sim, TestQueue};
use super::{assert_continuous_and_switched_at_keyframes, assert_sources_switch_at_keyframes};

/// The tap's video in its sequence order (it gets each packet once).
fn tap_video(queue: &TestQueue) -> Vec<Received> {
    let mut video: Vec<Received> = queue
        .received()
        .into_iter()
        .filter(|r| r.kind == MediaKind::Video)
        .collect();
    video.sort_by_key(|r| r.seq);
    video
}

fn tap_layer(queue: &TestQueue) -> Option<u8> {
    queue
        .received()
        .iter()
        .rev()
        .find(|r| r.kind == MediaKind::Video)
        .map(|r| r.layer)
}

/// Run for `d`, the consumer taking everything every 50 ms.
fn run_draining(sim: &mut Sim, queue: &TestQueue, d: Duration) {
    let until = sim.now + d;
    while sim.now < until {
        sim.run_for(Duration::from_millis(50));
        queue.drain();
    }
}

#[test]
fn a_tap_gets_the_top_layer_and_follows_the_publisher_down_and_back_up() {
    let mut sim = Sim::new(2);
    let publisher = sim.publish("room", &SIMULCAST, 1_000);
    sim.run_for(Duration::from_secs(2));
    let queue = sim.tap("room", 1_000);
    run_draining(&mut sim, &queue, Duration::from_secs(3));
    assert_eq!(tap_layer(&queue), Some(2), "the tap is not on the top layer");

    // The publisher stops its top layer (as a browser short of uplink does).
    sim.clients[publisher].sender().layer_on[2] = false;
    run_draining(&mut sim, &queue, Duration::from_secs(4));
    assert_eq!(
        tap_layer(&queue),
        Some(1),
        "the tap did not follow the publisher down"
    );

    sim.clients[publisher].sender().layer_on[2] = true;
    run_draining(&mut sim, &queue, Duration::from_secs(4));
    assert_eq!(
        tap_layer(&queue),
        Some(2),
        "the tap did not climb back to the top layer"
    );

    let video = tap_video(&queue);
    for pair in video.windows(2) {
        assert_eq!(pair[1].seq, pair[0].seq + 1, "the tap's video skips a number");
    }
    let layers: Vec<u8> = assert_sources_switch_at_keyframes(&video)
        .iter()
        .map(|(_, l)| *l)
        .collect();
    assert_eq!(layers, [2, 1, 2], "the tap's layers");
    let audio = queue
        .received()
        .iter()
        .filter(|r| r.kind == MediaKind::Audio)
        .count();
    assert!(audio > 400, "the tap got {audio} audio packets in 11 s");
    assert_eq!(sim.workers[sim.home("room")].stats().tap_drops, 0);
}

#[test]
fn a_tap_that_falls_behind_drops_to_the_next_keyframe_and_viewers_never_notice() {
    let mut sim = Sim::new(1);
    let publisher = sim.publish("room", &ONE_LAYER, 1_000);
    let viewer = sim.view("room", 0);
    sim.run_for(Duration::from_secs(1));
    // A consumer that stops taking packets for two seconds: its 50 packets fill up.
    let queue = sim.tap("room", 50);
    sim.run_for(Duration::from_secs(2));
    let stalled_at = sim.now;
    let drops = sim.workers[0].stats().tap_drops;
    assert!(drops > 0, "a full queue dropped nothing");
    run_draining(&mut sim, &queue, Duration::from_secs(3));

    let asked = sim.clients[publisher]
        .sender()
        .requests
        .iter()
        .filter(|(at, _)| *at >= stalled_at - Duration::from_secs(2))
        .count();
    assert!(
        asked >= 1,
        "the overflow did not ask the publisher for a keyframe"
    );

    // After the gap the tap's video restarts on a keyframe, and runs on without another gap.
    let video = tap_video(&queue);
    let gaps: Vec<usize> = video
        .windows(2)
        .enumerate()
        .filter(|(_, w)| w[1].seq != w[0].seq + 1)
        .map(|(i, _)| i + 1)
        .collect();
    assert_eq!(
        gaps.len(),
        1,
        "expected one gap in the tap's video, at the overflow: {gaps:?}"
    );
    assert!(
        video[gaps[0]].keyframe,
        "the tap's video resumes without a keyframe"
    );
    assert!(
        video.len() - gaps[0] > 100,
        "the tap got {} packets after the overflow",
        video.len() - gaps[0]
    );

    // The viewer saw none of it: one continuous stream, ~60 packets a second.
    let sources = assert_continuous_and_switched_at_keyframes(&sim, viewer);
    assert_eq!(sources.len(), 1);
    assert!(super::video_count(&sim, viewer, None) > 300);
}
