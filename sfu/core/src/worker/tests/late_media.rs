//! Media a worker gets to too late is not sent once the worker has stayed behind: viewers skip
//! whole frames to the next keyframe instead of falling further and further behind. A short
//! burst of lateness (a keyframe handed to a big room) is not skipped.

use std::collections::BTreeMap;
use std::time::Duration;

use str0m::media::MediaKind;

use super::sim::{ONE_LAYER, Received, Sim};
use crate::worker::{BURST_ALLOWANCE, VIDEO_AGE_BUDGET};

/// Video packets received from index `from` on.
fn video_since(sim: &Sim, viewer: usize, from: usize) -> Vec<Received> {
    sim.clients[viewer].viewer().received[from..]
        .iter()
        .filter(|r| r.kind == MediaKind::Video)
        .cloned()
        .collect()
}

/// Asserts every frame the viewer got is whole (both packets of a [`ONE_LAYER`] frame).
fn assert_whole_frames(sim: &Sim, viewer: usize) {
    let mut frames: BTreeMap<u32, usize> = BTreeMap::new();
    for r in super::video_by_seq(sim, viewer) {
        *frames.entry(r.rtp_time).or_default() += 1;
    }
    let broken: Vec<_> = frames.iter().filter(|(_, n)| **n != 2).collect();
    assert!(broken.is_empty(), "frames not received whole: {broken:?}");
}

#[test]
fn media_late_for_longer_than_a_burst_is_skipped_to_the_next_keyframe_and_audio_keeps_flowing() {
    let (mut sim, publisher, viewer) = super::steady_viewer(&ONE_LAYER, 60);
    let requests_before = sim.clients[publisher].sender().requests.len();
    let from = sim.clients[viewer].viewer().received.len();

    // The worker falls behind: everything it reads waited in its socket past the video budget.
    let behind_at = sim.now;
    sim.socket_wait = VIDEO_AGE_BUDGET + Duration::from_millis(40);
    sim.run_for(Duration::from_secs(1));
    let video = video_since(&sim, viewer, from);
    let last = video.last().map_or(behind_at, |r| r.at);
    assert!(
        last <= behind_at + BURST_ALLOWANCE + Duration::from_millis(100),
        "late video still reached the viewer {:?} after the worker fell behind",
        last - behind_at
    );
    let audio = sim.clients[viewer].viewer().received[from..]
        .iter()
        .filter(|r| r.kind == MediaKind::Audio)
        .count();
    assert!(
        audio >= 40,
        "audio (within its own budget) should keep flowing: {audio} packets in 1 s"
    );
    let stats = sim.workers[0].stats();
    assert!(stats.late_drops >= 25, "late drops counted: {}", stats.late_drops);
    assert!(stats.late_restarts >= 1);
    assert!(
        sim.clients[publisher].sender().requests.len() > requests_before,
        "no keyframe was asked for to restart the viewer"
    );

    // Caught up: video comes back, starting on a keyframe, with no hole in the numbering.
    sim.socket_wait = Duration::ZERO;
    let resumed_from = sim.clients[viewer].viewer().received.len();
    assert!(
        sim.run_until(Duration::from_secs(3), |s| video_since(s, viewer, resumed_from)
            .len()
            > 30),
        "video did not come back once the worker caught up"
    );
    let first_back = video_since(&sim, viewer, resumed_from)[0].clone();
    assert!(
        first_back.keyframe,
        "video resumed on a delta frame: {first_back:?}"
    );
    super::assert_continuous_and_switched_at_keyframes(&sim, viewer);
    assert_whole_frames(&sim, viewer);
}

#[test]
fn a_burst_of_lateness_shorter_than_the_allowance_loses_nothing() {
    let (mut sim, _, viewer) = super::steady_viewer(&ONE_LAYER, 60);
    let from = sim.clients[viewer].viewer().received.len();
    sim.socket_wait = VIDEO_AGE_BUDGET + Duration::from_millis(40);
    sim.run_for(BURST_ALLOWANCE - Duration::from_millis(100));
    sim.socket_wait = Duration::ZERO;
    sim.run_for(Duration::from_secs(1));
    let stats = sim.workers[0].stats();
    assert_eq!((stats.late_drops, stats.late_restarts), (0, 0));
    assert!(video_since(&sim, viewer, from).len() >= 60);
    super::assert_continuous_and_switched_at_keyframes(&sim, viewer);
    assert_whole_frames(&sim, viewer);
}
