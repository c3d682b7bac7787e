//! Viewer counts through the HTTP API of real `fanout serve` processes: 10,000 synthetic
//! players heartbeating are counted within 2 %, players who stop drop out within the
//! counting window, two nodes sharing a real redis-server both count everyone, and total
//! views and peak survive a crash and restart (each viewer still counted once).

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{Ports, Server, create_stream, http, in_netns};
use fanout_tests::redis_server::Redis;
use serde_json::Value;

const VIEWERS: usize = 10_000;
const CONCURRENCY: usize = 50;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime")
}

fn sid(i: usize) -> String {
    format!("player-{i:08}")
}

/// POST a heartbeat for every sid in `sids`, `CONCURRENCY` at a time, round-robin over
/// `bases` (the nodes); every one must be answered 204.
async fn heartbeats(bases: &[String], stream: &str, sids: &[String]) {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(CONCURRENCY)
        .build()
        .expect("http client");
    let next = Arc::new(AtomicUsize::new(0));
    let sids = Arc::new(sids.to_vec());
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (client, next, sids) = (client.clone(), next.clone(), sids.clone());
        let urls: Vec<String> = bases
            .iter()
            .map(|b| format!("{b}/api/v1/streams/{stream}/heartbeat"))
            .collect();
        workers.spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let Some(sid) = sids.get(i) else { return };
                let res = client
                    .post(&urls[i % urls.len()])
                    .header("content-type", "application/json")
                    .body(format!(r#"{{"sid":"{sid}"}}"#))
                    .send()
                    .await
                    .expect("heartbeat sent");
                assert_eq!(res.status().as_u16(), 204, "heartbeat {sid}");
            }
        });
    }
    while let Some(done) = workers.join_next().await {
        done.expect("heartbeat worker");
    }
}

fn audience(server: &Server, stream: &str) -> Value {
    let r = http(
        "GET",
        &format!("{}/api/v1/streams/{stream}", server.base),
        &[],
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let v: Value = serde_json::from_str(&r.body).expect("stream JSON");
    v["audience"].clone()
}

fn count(a: &Value, field: &str) -> u64 {
    a[field]
        .as_u64()
        .unwrap_or_else(|| panic!("audience.{field} in {a}"))
}

fn error(n: u64, truth: usize) -> f64 {
    (n as f64 - truth as f64).abs() / truth as f64
}

/// Poll the stream until `pred` holds on its audience, or panic after `within`.
fn wait_for(
    server: &Server,
    stream: &str,
    within: Duration,
    what: &str,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let a = audience(server, stream);
        if pred(&a) {
            return a;
        }
        assert!(Instant::now() < deadline, "{what}: last audience {a}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The synthetic players all come from one address; real ones come from many, each far under
/// the per-client API limit.
const NO_LIMIT: [&str; 2] = ["--api-rate-limit", "0"];

#[test]
fn ten_thousand_heartbeating_players_are_counted_within_two_percent() {
    if !in_netns("ten_thousand_heartbeating_players_are_counted_within_two_percent") {
        return;
    }
    let server = Server::start(&NO_LIMIT);
    let (id, _) = create_stream(&server, "viewer counts");
    let fresh = audience(&server, &id);
    assert_eq!(
        fresh,
        serde_json::json!({"current": 0, "peak": 0, "totalViews": 0})
    );

    let beat = format!("{}/api/v1/streams/{id}/heartbeat", server.base);
    let json = ("Content-Type", "application/json");
    assert_eq!(
        http("POST", &beat, &[json], Some(br#"{"sid":"short"}"#)).status,
        400
    );
    assert_eq!(
        http("POST", &beat, &[json], Some(br#"{"sid":"has spaces in it"}"#)).status,
        400
    );
    assert_eq!(http("POST", &beat, &[json], Some(b"not json")).status, 400);
    assert_eq!(
        http("POST", &beat, &[json], Some(b"{}")).status,
        400,
        "neither sid nor latencyMs"
    );
    // A WebRTC page's latency report has no sid: accepted, and counts no viewer.
    let report = br#"{"latencyMs":40,"protocol":"webrtc"}"#;
    assert_eq!(http("POST", &beat, &[json], Some(report)).status, 204);
    let unknown = format!("{}/api/v1/streams/nosuchstream/heartbeat", server.base);
    assert_eq!(
        http("POST", &unknown, &[json], Some(br#"{"sid":"abcdefgh"}"#)).status,
        404
    );

    let sids: Vec<String> = (0..VIEWERS).map(sid).collect();
    let started = Instant::now();
    runtime().block_on(heartbeats(std::slice::from_ref(&server.base), &id, &sids));
    let took = started.elapsed();
    // Each player beats twice: repeats do not count.
    runtime().block_on(heartbeats(
        std::slice::from_ref(&server.base),
        &id,
        &sids[..VIEWERS / 2],
    ));

    let a = audience(&server, &id);
    let current = count(&a, "current");
    println!(
        "in process: {VIEWERS} players ({took:.1?} for the heartbeats) counted {current} ({:.2} % off); {a}",
        error(current, VIEWERS) * 100.0
    );
    assert!(error(current, VIEWERS) < 0.02, "current {a}");
    assert!(error(count(&a, "totalViews"), VIEWERS) < 0.02, "total {a}");
    assert!(count(&a, "peak") >= current, "peak {a}");
}

#[test]
fn players_who_stop_heartbeating_drop_out_within_the_window() {
    if !in_netns("players_who_stop_heartbeating_drop_out_within_the_window") {
        return;
    }
    // A 4 s window (2 s buckets) instead of two minutes, so the drop-out happens for real.
    let window = Duration::from_secs(4);
    let server = Server::start(&["--audience-window-secs", "4", "--api-rate-limit", "0"]);
    let (id, _) = create_stream(&server, "drop out");
    let stayers: Vec<String> = (0..300).map(sid).collect();
    let leavers: Vec<String> = (300..600).map(sid).collect();
    let rt = runtime();
    let bases = [server.base.clone()];
    rt.block_on(heartbeats(&bases, &id, &leavers));
    rt.block_on(heartbeats(&bases, &id, &stayers));
    let a = audience(&server, &id);
    assert!(error(count(&a, "current"), 600) < 0.02, "everyone first: {a}");

    // The stayers beat every 500 ms; the leavers stopped. They are gone within the window.
    let stopped = Instant::now();
    let left = loop {
        rt.block_on(heartbeats(&bases, &id, &stayers));
        let a = audience(&server, &id);
        if error(count(&a, "current"), 300) < 0.02 {
            break stopped.elapsed();
        }
        assert!(
            stopped.elapsed() < window + Duration::from_secs(2),
            "leavers still counted: {a}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    println!("300 of 600 players stopped; counted out after {left:.1?} (window {window:?})");
    let a = audience(&server, &id);
    assert!(error(count(&a, "peak"), 600) < 0.02, "the peak stays: {a}");
    assert!(
        error(count(&a, "totalViews"), 600) < 0.02,
        "the total keeps everyone: {a}"
    );

    // Then everyone stops.
    let stopped = Instant::now();
    wait_for(
        &server,
        &id,
        window + Duration::from_secs(2),
        "everyone stopped",
        |a| a["current"] == 0,
    );
    println!("all stopped; counted out after {:.1?}", stopped.elapsed());
}

#[test]
fn two_nodes_sharing_redis_both_count_every_player() {
    if !in_netns("two_nodes_sharing_redis_both_count_every_player") {
        return;
    }
    let Some(redis) = Redis::start() else {
        panic!("redis-server is needed for this test");
    };
    let url = redis.url();
    // Two nodes on one data dir: the streams table (SQLite) is shared like it would be in a
    // cluster; viewer counts are shared only through Redis.
    let a = Server::start(&["--redis-url", &url, "--api-rate-limit", "0"]);
    let b = Server::start_on(
        a.data_dir.clone(),
        Ports {
            http: 18090,
            udp: 18289,
            chat: Some(18091),
        },
        &[
            "--redis-url",
            &url,
            "--api-rate-limit",
            "0",
            // The first node holds the default ingest ports.
            "--rtmp-addr",
            "127.0.0.1:11936",
            "--srt-addr",
            "127.0.0.1:18891",
        ],
    );
    let (id, _) = create_stream(&a, "two nodes");
    let sids: Vec<String> = (0..VIEWERS).map(sid).collect();
    // Half the players on each node (alternating).
    runtime().block_on(heartbeats(&[a.base.clone(), b.base.clone()], &id, &sids));

    // Each node sends its marks to Redis within 250 ms and before it reads.
    for node in [&a, &b] {
        let got = wait_for(node, &id, Duration::from_secs(5), "both halves", |a| {
            error(count(a, "current"), VIEWERS) < 0.02
        });
        let current = count(&got, "current");
        println!(
            "redis, node {}: {VIEWERS} players counted {current} ({:.2} % off); {got}",
            node.base,
            error(current, VIEWERS) * 100.0
        );
        assert!(error(count(&got, "totalViews"), VIEWERS) < 0.02, "{got}");
    }
}

#[test]
fn total_views_and_peak_survive_a_crash_and_restart() {
    if !in_netns("total_views_and_peak_survive_a_crash_and_restart") {
        return;
    }
    // A 4 s window: the server sweeps (and stores the viewer record) about every 0.7 s.
    let args = ["--audience-window-secs", "4", "--api-rate-limit", "0"];
    let mut server = Server::start(&args);
    let (id, _) = create_stream(&server, "restart");
    let rt = runtime();
    let first: Vec<String> = (0..1_000).map(sid).collect();
    rt.block_on(heartbeats(std::slice::from_ref(&server.base), &id, &first));
    let before = wait_for(&server, &id, Duration::from_secs(5), "first players", |a| {
        error(count(a, "current"), 1_000) < 0.02
    });
    // Wait until a sweep has stored the viewer record (read from the server's own database),
    // then kill the server outright (no drain, nothing at exit).
    let db = signaling::Db::open(&server.data_dir).expect("the server's database opens");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let record = db.audience_record(&id).expect("the record reads");
        if record
            .as_ref()
            .is_some_and(|r| error(r.total.count(), 1_000) < 0.02 && r.peak >= count(&before, "current"))
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no viewer record stored within 5 s: {record:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    drop(db);
    let data_dir = server.data_dir.clone();
    server.keep_data_dir();
    server.stop();
    drop(server);

    let server = Server::start_in(data_dir, &args);
    let stored = audience(&server, &id);
    assert!(
        count(&stored, "peak") >= count(&before, "current")
            && error(count(&stored, "totalViews"), 1_000) < 0.02,
        "numbers before the first mark after the restart: {stored} (before: {before})"
    );
    // Half the players come back, 500 new ones arrive: 1,500 distinct in all, not 2,000
    // (the returning ones counted twice) nor 1,000 (the earlier ones forgotten).
    let second: Vec<String> = (500..1_500).map(sid).collect();
    rt.block_on(heartbeats(std::slice::from_ref(&server.base), &id, &second));
    let after = wait_for(&server, &id, Duration::from_secs(5), "second players", |a| {
        error(count(a, "current"), 1_000) < 0.02
    });
    println!("before the crash {before}; after the restart {after}");
    assert!(error(count(&after, "totalViews"), 1_500) < 0.02, "total {after}");
    assert!(count(&after, "peak") >= count(&before, "peak"), "peak {after}");
}
