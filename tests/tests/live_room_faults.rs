//! A live room's LL-HLS through its publisher's absence and a broken bitstream, with hls.js
//! playing throughout (issue 15's fault proofs):
//!
//! - the publisher drops: the slate shows after ~1 s, the same key comes back within the
//!   grace period and the stream is live again; hls.js stalls at most once (at the drop) and
//!   reports no fatal error;
//! - a publisher sends broken VP8 (truncated frames): its bridge's decoder fails, the transcoder restarts
//!   from the next keyframe, the player recovers, and a second stream's bridge is untouched.

mod common;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use common::{NodeProc, Server, create_stream, http, in_netns, runtime, wait_for_hls, webrtc_rs_publisher};
use serde_json::Value;

/// One test at a time: each runs transcoders and a player, and on two cores two such tests
/// side by side starve each other's encoders and players into stalls that are the machine's.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// The stream's bridge health (`hls` in the stream resource).
fn bridge(server: &Server, id: &str) -> Value {
    let r = http("GET", &format!("{}/api/v1/streams/{id}", server.base), &[], None);
    serde_json::from_str::<Value>(&r.body).map_or(Value::Null, |v| v["hls"].clone())
}

fn wait_for_state(server: &Server, id: &str, state: &str, within: Duration) -> Duration {
    let started = Instant::now();
    loop {
        let h = bridge(server, id);
        if h["state"] == state {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < within,
            "{id} never {state} within {within:?}: {h}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The samples hls_play.mjs printed so far and its summary once it is done.
fn play(server: &Server, id: &str, seconds: u64) -> NodeProc {
    let seconds = seconds.to_string();
    NodeProc::spawn(
        None,
        "hls_play.mjs",
        &[
            "--base",
            &server.base,
            "--stream",
            id,
            "--seconds",
            &seconds,
            "--timeout",
            "20",
        ],
    )
}

/// hls_play.mjs's summary once it finishes: it played, and hls.js reported no fatal error.
fn played_without_fatal_errors(player: &NodeProc) -> Value {
    let summary = player
        .wait_for(Duration::from_secs(90), |v| v.get("ok").is_some())
        .expect("hls_play.mjs finishes");
    println!("summary: {summary}");
    assert_eq!(summary["ok"], true, "{summary}");
    let fatal = common::fatal_hls_errors(&summary);
    assert!(fatal.is_empty(), "fatal hls.js errors: {summary}");
    summary
}

#[test]
fn the_slate_covers_a_publisher_drop_and_the_room_goes_live_again() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !in_netns("the_slate_covers_a_publisher_drop_and_the_room_goes_live_again") {
        return;
    }
    let server = Server::start_bridged(&["--reconnect-grace", "30"]);
    let (id, key) = create_stream(&server, "drop");
    let rt = runtime();
    let publisher = rt.block_on(webrtc_rs_publisher(&server, &id, &key));
    wait_for_state(&server, &id, "live", Duration::from_secs(20));
    let rung = "360p";
    wait_for_hls(&server.base, &id, rung, 2);
    let player = play(&server, &id, 40);
    let first = player
        .wait_for(Duration::from_secs(30), |v| {
            v["event"] == "sample" && v["t"].as_f64().unwrap_or(0.0) > 10.0
        })
        .expect("hls.js plays");
    println!("playing: {first}");

    // The publisher leaves; its renditions switch to the slate.
    rt.block_on(async {
        let _ = publisher.stop().await;
    });
    let slate_after = wait_for_state(&server, &id, "slate", Duration::from_secs(10));
    println!("slate on {slate_after:?} after the publisher left");
    std::thread::sleep(Duration::from_secs(5));

    // The same key, back within the grace period: live again.
    let again = rt.block_on(webrtc_rs_publisher(&server, &id, &key));
    let live_after = wait_for_state(&server, &id, "live", Duration::from_secs(15));
    println!("live again {live_after:?} after the publisher came back");

    let summary = played_without_fatal_errors(&player);
    let stalls = summary["stalls"].as_u64().unwrap_or(u64::MAX);
    assert!(
        stalls <= 1,
        "hls.js stalled {stalls} times (at most once, at the drop): {summary}"
    );
    assert!(
        summary["framesDecoded"].as_u64().unwrap_or(0) > 900,
        "frames did not keep coming through the slate and after the return: {summary}"
    );
    let h = bridge(&server, &id);
    assert_eq!(h["restarts"], 0, "no fault, only a publisher away: {h}");
    let metrics = http("GET", &format!("{}/metrics", server.base), &[], None).body;
    assert!(metrics.contains("fanout_bridge_slates_total 1"), "{metrics}");
    rt.block_on(async {
        let _ = again.stop().await;
    });
}

#[test]
fn a_broken_bitstream_restarts_one_rooms_transcoder_and_spares_the_other() {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    if !in_netns("a_broken_bitstream_restarts_one_rooms_transcoder_and_spares_the_other") {
        return;
    }
    let server = Server::start_bridged(&[]);
    let (broken, broken_key) = create_stream(&server, "broken");
    let (healthy, healthy_key) = create_stream(&server, "healthy");
    let rt = runtime();
    let (a, b) = rt.block_on(async {
        (
            webrtc_rs_publisher(&server, &broken, &broken_key).await,
            webrtc_rs_publisher(&server, &healthy, &healthy_key).await,
        )
    });
    for id in [&broken, &healthy] {
        wait_for_state(&server, id, "live", Duration::from_secs(20));
        wait_for_hls(&server.base, id, "360p", 2);
    }
    let player = play(&server, &broken, 30);
    player
        .wait_for(Duration::from_secs(30), |v| {
            v["event"] == "sample" && v["t"].as_f64().unwrap_or(0.0) > 5.0
        })
        .expect("hls.js plays the stream about to break");

    // Two seconds of truncated VP8 frames from one publisher.
    a.scramble_video(60);
    let started = Instant::now();
    let h = loop {
        let h = bridge(&server, &broken);
        if h["restarts"].as_u64().unwrap_or(0) >= 1 {
            break h;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no restart: {h}");
        std::thread::sleep(Duration::from_millis(100));
    };
    println!("restarted after {:?}: {h}", started.elapsed());
    assert!(h["lastError"].as_str().is_some_and(|e| !e.is_empty()), "{h}");
    let back = wait_for_state(&server, &broken, "live", Duration::from_secs(15));
    println!("live again {back:?} later");

    let summary = played_without_fatal_errors(&player);
    assert!(summary["framesDecoded"].as_u64().unwrap_or(0) > 500, "{summary}");

    let other = bridge(&server, &healthy);
    assert_eq!(
        (other["state"].as_str(), other["restarts"].as_u64()),
        (Some("live"), Some(0)),
        "{other}"
    );
    let metrics = http("GET", &format!("{}/metrics", server.base), &[], None).body;
    assert!(metrics.contains("fanout_bridge_faults_total 1"), "{metrics}");
    assert!(
        metrics.contains("fanout_errors_total{source=\"bridge\",kind=\"pipeline\"} 1"),
        "{metrics}"
    );
    rt.block_on(async {
        let _ = a.stop().await;
        let _ = b.stop().await;
    });
}
