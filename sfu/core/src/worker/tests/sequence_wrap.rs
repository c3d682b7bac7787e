//! A viewer who joins after the publisher's sequence numbers wrapped still gets media.

use std::time::Duration;

use super::sim::{ONE_LAYER, Sim};

#[test]
fn a_viewer_joining_after_the_publishers_wrap_gets_media() {
    let mut sim = Sim::new(1);
    // Two packets a frame at 30 frames a second: the numbering wraps within the first second.
    let publisher = sim.publish("room", &ONE_LAYER, 65_536 - 20);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.clients[publisher].connected));
    sim.run_for(Duration::from_secs(2));

    let viewer = sim.view("room", 0);
    assert!(
        sim.run_until(Duration::from_secs(10), |s| super::video_count(s, viewer, None)
            > 60),
        "a viewer that joined after the publisher's numbering wrapped received no video"
    );
    let first = super::video_by_seq(&sim, viewer)[0].seq;
    assert!(
        first < 65_536,
        "the viewer's numbering starts at rollover {}",
        first >> 16
    );
    super::assert_continuous_and_switched_at_keyframes(&sim, viewer);
}
