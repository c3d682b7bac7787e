//! A session whose client never finishes ICE and DTLS is closed at its deadline, and only it.

use std::time::Duration;

use super::super::SfuEvent;
use super::sim::{CONNECT_TIMEOUT, ONE_LAYER, Sim};

fn closed(sim: &Sim, client: usize) -> bool {
    let id = sim.clients[client].session;
    sim.events
        .iter()
        .any(|e| matches!(e, SfuEvent::Closed { session, .. } if *session == id))
}

#[test]
fn a_session_that_never_connects_is_closed_at_its_deadline() {
    let mut sim = Sim::new(1);
    let publisher = sim.publish("room", &ONE_LAYER, 1_000);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.clients[publisher].connected));

    // An offer whose client then goes quiet: not one STUN packet.
    let created = sim.now;
    let silent = sim.view("room", 0);
    sim.clients[silent].rtc.disconnect();
    let viewer = sim.view("room", 0);
    assert!(sim.run_until(Duration::from_secs(5), |s| s.clients[viewer].connected));
    assert_eq!(sim.workers[0].stats().sessions, 3);

    let before = created + CONNECT_TIMEOUT - Duration::from_secs(1);
    sim.run_for(before - sim.now);
    assert!(!closed(&sim, silent), "closed before its deadline");

    assert!(
        sim.run_until(Duration::from_secs(2), |s| closed(s, silent)),
        "not closed within a tick of its deadline"
    );
    let stats = sim.workers[0].stats();
    assert_eq!((stats.sessions, stats.sessions_reaped), (2, 1));
    assert!(
        !closed(&sim, viewer) && !closed(&sim, publisher),
        "connected sessions stay"
    );
    // The connected viewer is still being served.
    let received = super::video_count(&sim, viewer, None);
    sim.run_for(Duration::from_secs(1));
    assert!(super::video_count(&sim, viewer, None) > received);
}
