//! The control plane hears a publisher's video codec and whether it has simulcast layers at
//! its first video packet: viewers are answered with that codec, and get a bandwidth estimate
//! only when there are layers to choose from.

use std::time::Duration;

use str0m::format::Codec;

use super::super::SfuEvent;
use super::sim::{LayerSpec, ONE_LAYER, SIMULCAST, Sim};

fn announced(layers: &[LayerSpec]) -> Vec<(Codec, bool)> {
    let mut sim = Sim::new(1);
    let publisher = sim.publish("room", layers, 1_000);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.clients[publisher].connected));
    sim.run_for(Duration::from_secs(1));
    sim.events
        .iter()
        .filter_map(|e| match e {
            SfuEvent::PublisherVideo { codec, simulcast, .. } => Some((*codec, *simulcast)),
            _ => None,
        })
        .collect()
}

#[test]
fn a_publishers_first_video_packet_announces_its_codec_and_layers_once() {
    assert_eq!(announced(&ONE_LAYER), [(Codec::Vp8, false)]);
    assert_eq!(announced(&SIMULCAST), [(Codec::Vp8, true)]);
}
