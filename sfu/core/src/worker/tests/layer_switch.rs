//! The bandwidth estimate moves a viewer between simulcast layers, at keyframes only.

use std::time::Duration;

use super::sim::{SIMULCAST, Shaper, Sim};
use super::{assert_continuous_and_switched_at_keyframes, last_layer};

const TOP: u8 = 2;

#[test]
fn the_estimate_moves_a_viewer_down_and_back_up_at_keyframes() {
    let mut sim = Sim::new(1);
    sim.publish("room", &SIMULCAST, 1_000);
    let viewer = sim.view("room", 0);

    // An open link: the estimate grows until the top layer fits.
    assert!(
        sim.run_until(Duration::from_secs(40), |s| last_layer(s, viewer) == Some(TOP)),
        "the viewer never reached the top layer on an open link (at {:?})",
        last_layer(&sim, viewer)
    );
    sim.run_for(Duration::from_secs(2));
    let open = sim.layer_state(viewer).expect("the viewer's layer state");
    assert_eq!(open.current.as_deref(), Some("f"), "{open:?}");

    // 700 kbit/s carries the middle layer (~500 kbit/s) but not the top one (~1.5 Mbit/s).
    // The queue is deep enough that nothing is lost: the estimate falls on delay alone.
    sim.clients[viewer].downlink = Some(Shaper {
        bps: 700_000,
        max_queue: Duration::from_secs(30),
    });
    assert!(
        sim.run_until(Duration::from_secs(20), |s| last_layer(s, viewer)
            .is_some_and(|l| l < TOP)),
        "the viewer stayed on the top layer behind a 700 kbit/s link"
    );
    sim.run_for(Duration::from_secs(5));
    assert!(
        last_layer(&sim, viewer).is_some_and(|l| l < TOP),
        "the viewer went back up while the link was still 700 kbit/s"
    );
    let shaped = sim.layer_state(viewer).expect("the viewer's layer state");
    assert!(
        shaped.estimate_bps < open.estimate_bps && shaped.estimate_bps < 1_000_000,
        "the estimate did not follow the link down: {} -> {} bit/s",
        open.estimate_bps,
        shaped.estimate_bps
    );

    // The link opens again: the viewer climbs back.
    sim.clients[viewer].downlink = None;
    assert!(
        sim.run_until(Duration::from_secs(60), |s| last_layer(s, viewer) == Some(TOP)),
        "the viewer did not return to the top layer after the link opened (at {:?})",
        last_layer(&sim, viewer)
    );
    sim.run_for(Duration::from_secs(1));

    assert_eq!(
        sim.clients[viewer].downlink_dropped, 0,
        "the shaped link lost packets"
    );
    let sources = assert_continuous_and_switched_at_keyframes(&sim, viewer);
    let layers: Vec<u8> = sources.iter().map(|(_, l)| *l).collect();
    let down = layers.windows(2).position(|w| w[0] == TOP && w[1] < TOP);
    let up_after = down.and_then(|d| layers[d + 1..].iter().position(|l| *l == TOP));
    assert!(
        down.is_some() && up_after.is_some(),
        "expected the top layer, a lower one, then the top again: {layers:?}"
    );
}
