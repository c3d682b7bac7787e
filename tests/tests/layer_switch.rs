//! A viewer behind a 500 kbit/s link settles on the low simulcast layer, and climbs back to
//! the top layer once the limit is lifted; asserted on the decoded frame width in Chromium.
//!
//! The publisher runs in the test's namespace; the viewer in a second namespace joined by a
//! veth pair, whose server-side end is shaped with `tc ... tbf` (server -> viewer).

mod common;

use std::time::Duration;

use common::{NodeProc, PeerNetns, Server, create_stream, in_netns, sh, start_publisher};

#[test]
fn viewer_follows_its_link_between_layers() {
    if !in_netns("viewer_follows_its_link_between_layers") {
        return;
    }
    let peer = PeerNetns::create();
    let server = Server::start(&["--public-ip", "10.99.0.1"]);
    let (id, key) = create_stream(&server, "layers");

    let publisher = start_publisher(&server, &id, &key, 150);

    sh(&[
        "tc", "qdisc", "add", "dev", "fo-srv", "root", "tbf", "rate", "500kbit", "burst", "32kbit",
        "latency", "400ms",
    ]);
    let viewer = NodeProc::spawn(
        Some(&peer.name),
        "watch_timeline.mjs",
        &[
            "--base",
            "http://10.99.0.1:18080",
            "--stream",
            &id,
            "--seconds",
            "120",
        ],
    );

    // Limited: the viewer must settle on the 320 px layer and stay there.
    let mut low_streak = 0;
    let settled = viewer.wait_for(Duration::from_secs(45), |v| {
        if v["frameWidth"] == 320 {
            low_streak += 1;
        } else if v.get("frameWidth").is_some() {
            low_streak = 0;
        }
        low_streak >= 6
    });
    assert!(
        settled.is_some(),
        "viewer never settled on the low layer behind 500 kbit/s"
    );

    // Lifted: it must climb back to the full 1280 px layer.
    sh(&["tc", "qdisc", "del", "dev", "fo-srv", "root"]);
    let top = viewer.wait_for(Duration::from_secs(60), |v| v["frameWidth"] == 1280);
    assert!(
        top.is_some(),
        "viewer did not climb back to the top layer after the limit was lifted"
    );
    drop(viewer);
    drop(publisher);
    drop(server);
}
