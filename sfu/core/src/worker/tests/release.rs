//! Everything written to a viewer leaves in the same pass: str0m's pacer hands out one queued
//! packet per time update, and a worker that left the rest to its next loop sent a big frame
//! one packet per loop iteration (under CPU load, a queue that grew without bound).

use std::collections::BTreeMap;
use std::time::Duration;

use str0m::media::MediaKind;

use super::sim::LayerSpec;

/// One layer whose every frame is 24 packets, the size of a 720p keyframe's first slice.
const BIG_FRAMES: [LayerSpec; 1] = [LayerSpec {
    rid: "",
    frame_bytes: 24_000,
}];

#[test]
fn a_frame_written_to_a_viewer_leaves_in_one_pass() {
    let (sim, _, viewer) = super::steady_viewer(&BIG_FRAMES, 24 * 30);

    // The publisher sends each frame's packets at one instant; the viewer must get them at
    // one instant too (the simulated network has a fixed latency and no rate limit).
    let mut arrivals: BTreeMap<u32, Vec<_>> = BTreeMap::new();
    for r in &sim.clients[viewer].viewer().received {
        if r.kind == MediaKind::Video {
            arrivals.entry(r.rtp_time).or_default().push(r.at);
        }
    }
    let spread: Vec<Duration> = arrivals
        .values()
        .filter(|at| at.len() == 24)
        .map(|at| *at.iter().max().expect("24") - *at.iter().min().expect("24"))
        .collect();
    assert!(spread.len() >= 25, "only {} whole frames arrived", spread.len());
    let worst = spread.iter().max().expect("frames");
    assert_eq!(
        *worst,
        Duration::ZERO,
        "a frame's packets reached the viewer spread over {worst:?}"
    );
}
