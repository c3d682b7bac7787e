//! The worker driven in simulated time against in-memory str0m peers (see [`sim`]): no
//! sockets, no threads, no wall clock. Each test names one behaviour of the worker and fails
//! when it breaks.

mod connect_deadline;
mod cross_worker;
mod keyframe_throttle;
mod late_media;
mod layer_switch;
mod publisher_reconnect;
mod publisher_video;
mod release;
mod room_tap;
mod sequence_wrap;
mod sim;
mod source;

use std::collections::BTreeMap;
use std::time::Duration;

use str0m::media::MediaKind;

use sim::{Received, Sim};

/// One worker, a publisher of `layers` and a viewer who has received `packets` video packets:
/// (simulation, publisher, viewer).
fn steady_viewer(layers: &[sim::LayerSpec], packets: usize) -> (Sim, usize, usize) {
    let mut sim = Sim::new(1);
    let publisher = sim.publish("room", layers, 1_000);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.clients[publisher].connected));
    let viewer = sim.view("room", 0);
    assert!(
        sim.run_until(Duration::from_secs(10), |s| video_count(s, viewer, None)
            > packets),
        "the viewer received no steady video"
    );
    (sim, publisher, viewer)
}

/// A viewer's video packets, one per sequence number (the first arrival), in sequence order.
fn video_by_seq(sim: &Sim, viewer: usize) -> Vec<Received> {
    let mut by_seq = BTreeMap::new();
    for r in &sim.clients[viewer].viewer().received {
        if r.kind == MediaKind::Video {
            by_seq.entry(r.seq).or_insert_with(|| r.clone());
        }
    }
    by_seq.into_values().collect()
}

/// How many video packets a viewer received from publisher session `tag` (any: `None`).
fn video_count(sim: &Sim, viewer: usize, tag: Option<u8>) -> usize {
    sim.clients[viewer]
        .viewer()
        .received
        .iter()
        .filter(|r| r.kind == MediaKind::Video && tag.is_none_or(|t| r.publisher == t))
        .count()
}

/// The layer of the newest video packet a viewer received.
fn last_layer(sim: &Sim, viewer: usize) -> Option<u8> {
    sim.clients[viewer]
        .viewer()
        .received
        .iter()
        .rev()
        .find(|r| r.kind == MediaKind::Video)
        .map(|r| r.layer)
}

/// Asserts the viewer's video is one continuous sequence (no number skipped) and that every
/// change of source (layer or publisher session) starts on the first packet of a keyframe.
/// Returns the sources in the order the viewer got them, as (publisher tag, layer).
fn assert_continuous_and_switched_at_keyframes(sim: &Sim, viewer: usize) -> Vec<(u8, u8)> {
    assert_sources_switch_at_keyframes(&video_by_seq(sim, viewer))
}

/// The check above on video packets in sequence order, from any consumer.
fn assert_sources_switch_at_keyframes(video: &[Received]) -> Vec<(u8, u8)> {
    assert!(!video.is_empty(), "the viewer received no video");
    assert!(
        video[0].keyframe,
        "the viewer's first packet is not the start of a keyframe"
    );
    let mut sources = vec![(video[0].publisher, video[0].layer)];
    for pair in video.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(
            b.seq,
            a.seq + 1,
            "sequence numbers jump from {} to {} (layer {} -> {})",
            a.seq,
            b.seq,
            a.layer,
            b.layer
        );
        if (a.publisher, a.layer) != (b.publisher, b.layer) {
            assert!(
                b.keyframe,
                "switched from publisher {} layer {} to publisher {} layer {} at seq {} without a keyframe",
                a.publisher, a.layer, b.publisher, b.layer, b.seq
            );
            sources.push((b.publisher, b.layer));
        }
    }
    sources
}
