//! Media a worker gets to too late is not sent: viewers skip to the next keyframe instead of
//! falling further and further behind.

use std::time::Duration;

use str0m::media::MediaKind;

use super::sim::ONE_LAYER;
use crate::worker::VIDEO_AGE_BUDGET;

#[test]
fn late_video_is_skipped_to_the_next_keyframe_and_audio_keeps_flowing() {
    let (mut sim, publisher, viewer) = super::steady_viewer(&ONE_LAYER, 60);
    let requests_before = sim.clients[publisher].sender().requests.len();
    let received_before = sim.clients[viewer].viewer().received.len();

    // The worker falls behind: everything it reads waited in its socket past the video budget.
    sim.socket_wait = VIDEO_AGE_BUDGET + Duration::from_millis(40);
    sim.run_for(Duration::from_secs(1));
    let during = sim.clients[viewer].viewer().received[received_before..].to_vec();
    let video_during = during.iter().filter(|r| r.kind == MediaKind::Video).count();
    let audio_during = during.iter().filter(|r| r.kind == MediaKind::Audio).count();
    assert!(
        video_during <= 4,
        "{video_during} video packets older than the budget reached the viewer"
    );
    assert!(
        audio_during >= 40,
        "audio (within its own budget) should keep flowing: {audio_during} packets in 1 s"
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
        sim.run_until(Duration::from_secs(3), |s| {
            s.clients[viewer].viewer().received[resumed_from..]
                .iter()
                .filter(|r| r.kind == MediaKind::Video)
                .count()
                > 30
        }),
        "video did not come back once the worker caught up"
    );
    let first_back = sim.clients[viewer].viewer().received[resumed_from..]
        .iter()
        .find(|r| r.kind == MediaKind::Video)
        .expect("video came back")
        .clone();
    assert!(
        first_back.keyframe,
        "video resumed on a delta frame: {first_back:?}"
    );
    super::assert_continuous_and_switched_at_keyframes(&sim, viewer);
}
