//! With 5% random packet loss on the viewer's link, NACK/RTX keeps the picture: the decoded
//! frame rate stays within 10% of the same viewer's lossless frame rate.
//!
//! Loss is made with iptables' `statistic` match on the server side of a veth pair that
//! joins the test's namespace to the viewer's (netem is not available on these kernels).

mod common;

use std::time::{Duration, Instant};

use common::{NodeProc, PeerNetns, Server, create_stream, in_netns, sh, start_publisher};
use serde_json::Value;

/// What the viewer saw over one window.
struct Window {
    fps: f64,
    nacks: u64,
    retransmitted: u64,
    plis: u64,
}

/// Average fps, and the NACK/RTX/PLI counters at the end, of the samples during `window`.
fn measure(viewer: &NodeProc, window: Duration) -> Window {
    let end = Instant::now() + window;
    let mut fps = Vec::new();
    let mut last = Value::Null;
    while let Some(left) = end.checked_duration_since(Instant::now()) {
        match viewer.lines.recv_timeout(left) {
            Ok(v) => {
                if let Some(f) = v.get("fps").and_then(Value::as_f64) {
                    fps.push(f);
                    last = v;
                }
            }
            Err(_) => break,
        }
    }
    assert!(fps.len() >= 10, "too few samples: {fps:?}");
    Window {
        fps: fps.iter().sum::<f64>() / fps.len() as f64,
        nacks: last["nackCount"].as_u64().unwrap_or(0),
        retransmitted: last["retransmitted"].as_u64().unwrap_or(0),
        plis: last["pliCount"].as_u64().unwrap_or(0),
    }
}

#[test]
fn nack_rtx_keeps_frame_rate_under_five_percent_loss() {
    if !in_netns("nack_rtx_keeps_frame_rate_under_five_percent_loss") {
        return;
    }
    let peer = PeerNetns::create();
    let server = Server::start(&["--public-ip", "10.99.0.1"]);
    let (id, key) = create_stream(&server, "loss");
    let _publisher = start_publisher(&server, &id, &key, 120);
    let viewer = NodeProc::spawn(
        Some(&peer.name),
        "watch_timeline.mjs",
        &[
            "--base",
            "http://10.99.0.1:18080",
            "--stream",
            &id,
            "--seconds",
            "80",
        ],
    );
    viewer
        .wait_for(Duration::from_secs(30), |v| v.get("fps").is_some())
        .expect("viewer decodes");
    // Let the layer choice settle before measuring.
    std::thread::sleep(Duration::from_secs(6));
    let clean = measure(&viewer, Duration::from_secs(20));

    sh(&[
        "iptables",
        "-A",
        "OUTPUT",
        "-o",
        "fo-srv",
        "-p",
        "udp",
        "-m",
        "statistic",
        "--mode",
        "random",
        "--probability",
        "0.05",
        "-j",
        "DROP",
    ]);
    let lossy = measure(&viewer, Duration::from_secs(25));
    println!(
        "lossless: {:.1} fps; 5% loss: {:.1} fps; NACKs sent {} -> {}, packets repaired by RTX {} -> {}, PLIs {} -> {}",
        clean.fps,
        lossy.fps,
        clean.nacks,
        lossy.nacks,
        clean.retransmitted,
        lossy.retransmitted,
        clean.plis,
        lossy.plis
    );
    assert!(
        lossy.nacks > clean.nacks,
        "the viewer never had to NACK: was anything dropped?"
    );
    assert!(
        lossy.retransmitted > clean.retransmitted,
        "no packet was repaired by RTX"
    );
    assert!(
        lossy.fps >= 0.9 * clean.fps,
        "frame rate fell from {:.1} to {:.1} fps under 5% loss",
        clean.fps,
        lossy.fps
    );
}
