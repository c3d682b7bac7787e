//! A viewer's stream stays continuous when the room's publisher is replaced.

use std::time::Duration;

use str0m::media::MediaKind;

use super::sim::{ONE_LAYER, Sim};
use super::{assert_continuous_and_switched_at_keyframes, video_count};

#[test]
fn a_new_publisher_session_continues_the_viewers_numbering() {
    let mut sim = Sim::new(1);
    let first = sim.publish("room", &ONE_LAYER, 1_000);
    let viewer = sim.view("room", 0);
    assert!(
        sim.run_until(Duration::from_secs(10), |s| video_count(s, viewer, Some(0)) > 100),
        "the viewer received nothing from the first publisher"
    );

    // The publisher drops and comes back as a new session whose numbering starts elsewhere.
    sim.close(first);
    sim.run_for(Duration::from_millis(500));
    let second = sim.publish("room", &ONE_LAYER, 40_000);
    let tag = 1;
    assert!(
        sim.run_until(Duration::from_secs(10), |s| video_count(s, viewer, Some(tag))
            > 100),
        "the viewer received nothing from the second publisher"
    );
    assert!(sim.clients[second].connected);

    let sources = assert_continuous_and_switched_at_keyframes(&sim, viewer);
    assert_eq!(sources, vec![(0, 0), (1, 0)], "the viewer's sources");

    // Timestamps keep advancing across the change, by about the time that passed.
    let video = super::video_by_seq(&sim, viewer);
    let at = video
        .iter()
        .position(|r| r.publisher == tag)
        .expect("the second publisher's packets");
    let (last, next) = (&video[at - 1], &video[at]);
    let ticks = next.rtp_time.wrapping_sub(last.rtp_time);
    let wall = next.at.duration_since(last.at).as_secs_f64() * 90_000.0;
    assert!(
        ticks > 0 && ticks < 1 << 31,
        "the RTP timestamp went back at the new publisher: {} -> {}",
        last.rtp_time,
        next.rtp_time
    );
    assert!(
        (f64::from(ticks) - wall).abs() < 0.2 * 90_000.0,
        "the timestamp advanced {ticks} ticks over {wall:.0} ticks of wall time"
    );

    // Audio too continues from the viewer's own numbering.
    let mut audio: Vec<u64> = sim.clients[viewer]
        .viewer()
        .received
        .iter()
        .filter(|r| r.kind == MediaKind::Audio)
        .map(|r| r.seq)
        .collect();
    audio.sort_unstable();
    audio.dedup();
    assert!(
        audio.windows(2).all(|w| w[1] == w[0] + 1),
        "audio sequence numbers jump across the publisher change"
    );
}
