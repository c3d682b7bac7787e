//! A room's viewers on another worker: interest, one hand-off per packet, keyframe routing.

use std::time::Duration;

use super::sim::{ONE_LAYER, Sim};

#[test]
fn viewers_on_another_worker_get_each_packet_handed_over_once() {
    let mut sim = Sim::new(2);
    let home = sim.home("room");
    let other = 1 - home;
    sim.publish("room", &ONE_LAYER, 1_000);
    sim.run_for(Duration::from_secs(1));
    assert_eq!(
        sim.peer_counts.media, 0,
        "packets crossed workers before anyone there watched"
    );

    let before = sim.workers[home].stats().packets_in;
    let viewers: Vec<usize> = (0..3).map(|_| sim.view("room", other)).collect();
    assert!(
        sim.run_until(Duration::from_secs(10), |s| viewers
            .iter()
            .all(|v| super::video_count(s, *v, None) > 60)),
        "viewers on the other worker received no video"
    );
    let counts = sim.peer_counts;
    assert_eq!(
        counts.interest_on, 1,
        "one interest message per worker, not per viewer"
    );
    assert!(
        counts.keyframe_requests >= 1,
        "the joining viewers' keyframe request never reached the home worker"
    );
    // Each publisher packet crosses once, however many viewers the other worker has.
    let published = sim.workers[home].stats().packets_in - before;
    let handed = counts.media;
    assert!(
        handed <= published && handed + 5 >= published,
        "{handed} hand-offs for {published} packets published since the viewers joined"
    );
    super::assert_continuous_and_switched_at_keyframes(&sim, viewers[0]);

    for v in &viewers {
        sim.close(*v);
    }
    sim.run_for(Duration::from_millis(500));
    assert_eq!(
        sim.peer_counts.interest_off, 1,
        "the last viewer's exit withdraws the interest"
    );
    let after_exit = sim.peer_counts.media;
    sim.run_for(Duration::from_secs(1));
    assert_eq!(
        sim.peer_counts.media, after_exit,
        "packets still cross after the last viewer left"
    );
}
