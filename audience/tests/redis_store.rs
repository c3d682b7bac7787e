//! The Redis backend against a real redis-server: the same counts as in process, shared by
//! two handles (two nodes), and viewers dropping out of the window in simulated time.

#[path = "../../tests/src/redis_server.rs"]
mod redis_server;

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use audience::{Audience, Window};
use redis_server::Redis;

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
}

fn error(estimate: u64, truth: u64) -> f64 {
    (estimate as f64 - truth as f64).abs() / truth as f64
}

#[tokio::test]
async fn two_nodes_count_ten_thousand_viewers_within_two_percent() {
    let Some(redis) = Redis::start() else { return };
    let a = Audience::redis(&redis.url(), Window::default()).expect("node a");
    let b = Audience::redis(&redis.url(), Window::default()).expect("node b");
    for v in 0..10_000u64 {
        let node = if v % 2 == 0 { &a } else { &b };
        node.seen("s1", &format!("sid-{v:08x}"), at(v % 50));
    }
    // Each node sends its own marks before it reads; the other's go with its flusher.
    b.stats("s1", at(55)).await.expect("b flushes");
    let sa = a.stats("s1", at(55)).await.expect("stats a");
    let sb = b.stats("s1", at(55)).await.expect("stats b");
    for s in [sa, sb] {
        assert!(error(s.current, 10_000) < 0.02, "{s:?}");
        assert!(error(s.total, 10_000) < 0.02, "{s:?}");
        assert!(s.peak >= s.current, "{s:?}");
    }
    println!(
        "redis: 10,000 viewers on two nodes counted {} ({:.2} % off)",
        sa.current,
        error(sa.current, 10_000) * 100.0
    );
    assert_eq!(sa, sb, "both nodes read the same keys");
    let other = a.stats("s2", at(55)).await.expect("stats s2");
    assert_eq!(other.current, 0, "streams are counted apart");
}

#[tokio::test]
async fn viewers_who_stop_drop_out_within_two_minutes_in_redis() {
    let Some(redis) = Redis::start() else { return };
    let node = Audience::redis(&redis.url(), Window::default()).expect("node");
    for v in 0..1_000u64 {
        node.seen("s", &format!("gone-{v}"), at(0));
        node.seen("s", &format!("stays-{v}"), at(0));
    }
    let start = node.stats("s", at(0)).await.expect("stats");
    assert!(error(start.current, 2_000) < 0.02, "{start:?}");
    for beat in 1..=4 {
        for v in 0..1_000u64 {
            node.seen("s", &format!("stays-{v}"), at(beat * 30));
        }
    }
    let later = node.stats("s", at(120)).await.expect("stats");
    assert!(
        error(later.current, 1_000) < 0.02,
        "leavers gone at +120 s: {later:?}"
    );
    assert!(error(later.peak, 2_000) < 0.02, "the peak stays: {later:?}");
    assert!(
        error(later.total, 2_000) < 0.02,
        "the total keeps everyone: {later:?}"
    );
    let end = node.stats("s", at(240)).await.expect("stats");
    assert_eq!(end.current, 0, "everyone gone two minutes after the last beat");
}
