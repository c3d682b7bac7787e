//! Many viewers asking for keyframes at once reach the publisher as one request per layer
//! per throttle interval.

use std::collections::HashMap;
use std::time::Duration;

use str0m::media::{MediaKind, Rid};

use super::sim::{SIMULCAST, Sim};

/// The room's throttle interval.
const INTERVAL: Duration = Duration::from_millis(250);

#[test]
fn keyframe_requests_from_many_viewers_are_throttled_per_layer() {
    let mut sim = Sim::new(1);
    let publisher = sim.publish("room", &SIMULCAST, 1_000);
    sim.run_for(Duration::from_secs(3));
    let viewers: Vec<usize> = (0..8).map(|_| sim.view("room", 0)).collect();
    assert!(
        sim.run_until(Duration::from_secs(10), |s| viewers.iter().all(|v| {
            s.clients[*v]
                .viewer()
                .received
                .iter()
                .any(|r| r.kind == MediaKind::Video)
        })),
        "not every viewer got video"
    );
    sim.run_for(Duration::from_secs(1));

    let requests = &sim.clients[publisher].sender().requests;
    assert!(
        !requests.is_empty(),
        "eight joining viewers caused no keyframe request"
    );
    let mut last: HashMap<Option<Rid>, std::time::Instant> = HashMap::new();
    for (at, rid) in requests {
        if let Some(prev) = last.insert(*rid, *at) {
            assert!(
                at.duration_since(prev) >= INTERVAL - Duration::from_millis(1),
                "two keyframe requests for {rid:?} {:?} apart",
                at.duration_since(prev)
            );
        }
    }
}
