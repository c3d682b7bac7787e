//! Two chat nodes in one process sharing a real redis-server: fan-out across nodes, bans and
//! rate limits shared, deletes everywhere, and a Redis restart mid-test.

mod common;

use std::time::{Duration, Instant};

use chat::Role;
use common::{Client, Redis, node, token};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn message_ban_delete_and_rate_limit_cross_nodes() {
    let Some(redis) = Redis::start() else { return };
    let a = node(Some(redis.url())).await;
    let b = node(Some(redis.url())).await;
    let room = "cross";

    let mut alice_a = Client::connect(a.local_addr(), room, Some(&token("alice", Role::Viewer))).await;
    let mut alice_b = Client::connect(b.local_addr(), room, Some(&token("alice", Role::Viewer))).await;
    let mut bob_b = Client::connect(b.local_addr(), room, Some(&token("bob", Role::Viewer))).await;
    let mut moder = Client::connect(a.local_addr(), room, Some(&token("mod", Role::Moderator))).await;

    // A message posted on A reaches a socket on B.
    alice_a.say("hello from A").await;
    let m = bob_b.expect_message("hello from A").await;
    assert_eq!(m["user"]["id"], "alice");
    assert_eq!(m["user"]["role"], "viewer");
    assert_eq!(m["kind"], "text");
    assert!(m["serverTime"].as_u64().is_some());
    let first_id = m["id"].as_u64().expect("id");

    // The rate limit is shared: alice has sent 1 on A; one more on B, then a third on A is over
    // 2 per second even though each node saw fewer.
    alice_b.say("second, from B").await;
    bob_b.expect_message("second, from B").await;
    alice_a.say("third, from A").await;
    let e = alice_a.expect_error("rate_limited").await;
    assert!(
        e["retryAfter"].as_u64().is_some_and(|r| r > 0 && r <= 1000),
        "{e}"
    );

    // Ids are monotonic per room across nodes.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    bob_b.say("bob on B").await;
    let m2 = moder.expect_message("bob on B").await;
    assert!(m2["id"].as_u64().expect("id") > first_id);

    // A delete issued on A reaches B and leaves history everywhere.
    let del_id = m2["id"].as_u64().expect("id");
    moder.send(json!({"type": "delete", "id": del_id})).await;
    let d = bob_b.expect(|f| f["type"] == "deleted", "deleted").await;
    assert_eq!(d["id"], del_id);
    bob_b.send(json!({"type": "history", "limit": 50})).await;
    let h = bob_b.expect(|f| f["type"] == "history", "history").await;
    let ids: Vec<u64> = h["messages"]
        .as_array()
        .expect("list")
        .iter()
        .filter_map(|m| m["id"].as_u64())
        .collect();
    assert!(ids.contains(&first_id) && !ids.contains(&del_id), "{ids:?}");

    // A ban issued on A stops alice on B within 1 s.
    let banned_at = Instant::now();
    moder
        .send(json!({"type": "ban", "userId": "alice", "reason": "spam"}))
        .await;
    let n = bob_b.expect(|f| f["type"] == "moderation", "ban notice").await;
    assert_eq!(n["action"], "ban");
    alice_b.say("am I banned?").await;
    alice_b.expect_error("banned").await;
    assert!(
        banned_at.elapsed() < Duration::from_secs(1),
        "{:?}",
        banned_at.elapsed()
    );

    // Timeouts too, and unban lifts them.
    moder.send(json!({"type": "unban", "userId": "alice"})).await;
    bob_b
        .expect(|f| f["type"] == "moderation" && f["action"] == "unban", "unban")
        .await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    alice_b.say("back again").await;
    bob_b.expect_message("back again").await;
    moder
        .send(json!({"type": "timeout", "userId": "alice", "seconds": 60}))
        .await;
    bob_b
        .expect(
            |f| f["type"] == "moderation" && f["action"] == "timeout",
            "timeout",
        )
        .await;
    alice_b.say("silenced?").await;
    let e = alice_b.expect_error("timed_out").await;
    assert!(e["retryAfter"].as_u64().is_some_and(|r| r > 50_000));

    // Modes are shared: subscribers-only set on A refuses a viewer on B.
    moder
        .send(json!({"type": "subscribersOnly", "enabled": true}))
        .await;
    bob_b.expect(|f| f["type"] == "modes", "modes").await;
    bob_b.say("viewer here").await;
    bob_b.expect_error("subscribers_only").await;

    // Presence counts sockets on both nodes: a fifth socket sees the total go to 5.
    let mut late = Client::connect(b.local_addr(), room, None).await;
    assert!(
        late.hello["presence"].as_u64().is_some_and(|p| p >= 3),
        "{}",
        late.hello
    );
    late.expect_within(
        |f| f["type"] == "presence" && f["count"] == 5,
        "presence 5",
        Duration::from_secs(5),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restart_errors_then_resumes() {
    let Some(mut redis) = Redis::start() else { return };
    let a = node(Some(redis.url())).await;
    let b = node(Some(redis.url())).await;
    let room = "restart";
    let mut carol = Client::connect(a.local_addr(), room, Some(&token("carol", Role::Viewer))).await;
    let mut dave = Client::connect(b.local_addr(), room, Some(&token("dave", Role::Viewer))).await;
    carol.say("before").await;
    dave.expect_message("before").await;

    redis.kill();
    // Sends during the outage are answered with an error frame, never dropped silently.
    carol.say("during outage").await;
    let e = carol.expect_error("unavailable").await;
    assert!(e["retryAfter"].as_u64().is_some());

    redis.restart();
    // Fan-out resumes: keep sending until a message crosses from A to B (the nodes reconnect
    // and resubscribe with backoff of at most 1 s).
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut n = 0;
    loop {
        assert!(
            Instant::now() < deadline,
            "fan-out did not resume after the Redis restart"
        );
        n += 1;
        let text = format!("after restart {n}");
        carol.say(&text).await;
        if let Some(v) = dave.next(Duration::from_millis(700)).await
            && v["type"] == "message"
            && v["text"].as_str().is_some_and(|t| t.starts_with("after restart"))
        {
            break;
        }
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    // And both sides keep working.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    dave.say("dave after restart").await;
    carol.expect_message("dave after restart").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_time_is_shared_through_redis() {
    let Some(redis) = Redis::start() else { return };
    let a = node(Some(redis.url())).await;
    let b = node(Some(redis.url())).await;
    let live = std::time::SystemTime::now() - Duration::from_secs(60);
    a.set_stream_live("timed", Some(live)).await.expect("set live");
    let mut erin = Client::connect(b.local_addr(), "timed", Some(&token("erin", Role::Viewer))).await;
    erin.say("when?").await;
    let m = erin.expect_message("when?").await;
    let st = m["streamTime"].as_u64().expect("stream time set");
    assert!((60_000..70_000).contains(&st), "{st}");
}
