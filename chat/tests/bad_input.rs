//! Bad input on one socket gets an error frame or a close code; every other socket keeps
//! working. Embedded mode (no Redis).

mod common;

use std::time::Duration;

use chat::{ChatConfig, Role};
use common::{Client, node, node_with, token};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

/// The bystanders: a writer and a reader that must keep working after each bad case.
struct Bystanders {
    writer: Client,
    reader: Client,
    n: u32,
}

impl Bystanders {
    async fn new(addr: std::net::SocketAddr, room: &str) -> Self {
        Bystanders {
            writer: Client::connect(addr, room, Some(&token("writer", Role::Moderator))).await,
            reader: Client::connect(addr, room, None).await,
            n: 0,
        }
    }

    async fn still_work(&mut self) {
        self.n += 1;
        let text = format!("still here {}", self.n);
        // The writer is rate limited like anyone (2/s).
        tokio::time::sleep(Duration::from_millis(510)).await;
        self.writer.say(&text).await;
        self.reader.expect_message(&text).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_input_is_refused_and_others_keep_working() {
    let server = node(None).await;
    let addr = server.local_addr();
    let room = "bad";
    let mut ok = Bystanders::new(addr, room).await;
    ok.still_work().await;

    // Invalid JSON: error frame, socket stays open.
    let mut bad = Client::connect(addr, room, Some(&token("bad", Role::Viewer))).await;
    bad.send_raw(Message::Text("{not json".into())).await;
    bad.expect_error("invalid_json").await;
    ok.still_work().await;

    // Unknown type and bad fields.
    bad.send(json!({"type": "dance"})).await;
    bad.expect_error("unknown_type").await;
    bad.send(json!({"type": "send", "text": 5})).await;
    bad.expect_error("bad_frame").await;
    bad.send(json!({"type": "timeout", "userId": "x", "seconds": 5}))
        .await;
    bad.expect_error("forbidden").await;
    bad.send(json!({"type": "ping", "nonce": 7})).await;
    let pong = bad.expect(|f| f["type"] == "pong", "pong").await;
    assert_eq!(pong["nonce"], 7);
    ok.still_work().await;

    // Content filters and the length cap.
    bad.say(&"x ".repeat(300)).await;
    bad.expect_error("rejected").await;
    bad.say("visit evil.com today").await;
    bad.expect_error("rejected").await;
    ok.still_work().await;

    // Anonymous sockets read but cannot write; a bad auth frame is refused; a good one works.
    let mut anon = Client::connect(addr, room, None).await;
    assert!(anon.hello["user"].is_null());
    anon.say("hi").await;
    anon.expect_error("unauthorized").await;
    anon.send(json!({"type": "auth", "token": "nope"})).await;
    anon.expect_error("unauthorized").await;
    anon.send(json!({"type": "auth", "token": token("late", Role::Viewer)}))
        .await;
    anon.expect(|f| f["type"] == "authenticated", "authenticated")
        .await;
    anon.say("now signed in").await;
    ok.reader.expect_message("now signed in").await;

    // Binary frame: error then close 1003.
    let mut bin = Client::connect(addr, room, None).await;
    bin.send_raw(Message::Binary(vec![1, 2, 3].into())).await;
    bin.expect_error("binary_not_supported").await;
    assert_eq!(bin.expect_close().await, 1003);
    ok.still_work().await;

    // Frame over 4 KiB: error then close 1009.
    let mut big = Client::connect(addr, room, None).await;
    big.send_raw(Message::Text("a".repeat(5000).into())).await;
    big.expect_error("frame_too_large").await;
    assert_eq!(big.expect_close().await, 1009);
    ok.still_work().await;

    // Flood: a flood error, then close 1008 if it goes on.
    let mut flood = Client::connect(addr, room, None).await;
    for _ in 0..400 {
        flood.send_raw(Message::Text(r#"{"type":"ping"}"#.into())).await;
    }
    flood.expect_error("flood").await;
    assert_eq!(flood.expect_close().await, 1008);
    ok.still_work().await;

    // Invalid token in the query: error then close 4001.
    let mut forged = Client::connect_raw(addr, room, Some("forged.token.here")).await;
    forged.expect_error("unauthorized").await;
    assert_eq!(forged.expect_close().await, 4001);
    ok.still_work().await;

    // A bad stream id is refused before the upgrade.
    let url = format!("ws://{addr}/v1/chat/bad%20id");
    assert!(tokio_tungstenite::connect_async(url).await.is_err());
    ok.still_work().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_reader_is_dropped_without_holding_others_back() {
    let mut config = common::config(None);
    config.outbox_frames = 128;
    // Its lag must be found on the ring, where it can still be told: a write that times out
    // (its TCP buffers full while this test is still sending) leaves no way to tell it. The
    // burst below takes several seconds on a busy machine.
    config.write_timeout = Duration::from_secs(60);
    config.batch_window = Duration::ZERO;
    config.inbound_per_sec = 1_000_000;
    config.ledger.rate = chat::rate_limit::RateLimit {
        messages: 100_000,
        window: Duration::from_secs(1),
    };
    let server = node_with(config).await;
    let addr = server.local_addr();
    let room = "slow";
    let mut writer = Client::connect(addr, room, Some(&token("w", Role::Moderator))).await;
    let mut reader = Client::connect(addr, room, None).await;
    // Never read from this one: its TCP buffers fill, then the ring laps it.
    let mut sleeper = Client::connect(addr, room, None).await;
    let text = "lorem ipsum ".repeat(33);
    let mut last = String::new();
    for i in 0..20_000 {
        last = format!("{text} {i}");
        writer.say(&last).await;
        if i % 20 == 0 {
            // Keep the active sockets drained (3 ms of quiet, not 1: on a busy machine a 1 ms
            // gap left the active reader a ring behind and it was dropped as slow).
            while reader.next(Duration::from_millis(3)).await.is_some() {}
            while writer.next(Duration::from_millis(3)).await.is_some() {}
            assert!(
                writer.closed.is_none() && reader.closed.is_none(),
                "an active socket was closed"
            );
        }
    }
    reader.expect_message(&last).await;
    // The sleeper was told it fell behind and closed (1008).
    let mut saw_slow = false;
    loop {
        match sleeper.next(Duration::from_secs(10)).await {
            Some(v) if v["code"] == "slow_consumer" => saw_slow = true,
            Some(_) => {}
            None => break,
        }
    }
    assert!(saw_slow, "slow consumer not told");
    assert_eq!(sleeper.closed, Some(1008));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_history_stream_time_replay_and_restart() {
    let config: ChatConfig = common::config(None);
    let dir = config.data_dir.clone();
    let server = node_with(config.clone()).await;
    let addr = server.local_addr();
    let live = std::time::SystemTime::now() - Duration::from_secs(5);
    server.set_stream_live("show", Some(live)).await.expect("live");
    let mut m = Client::connect(addr, "show", Some(&token("m", Role::Moderator))).await;
    m.say("first").await;
    let first = m.expect_message("first").await;
    let st = first["streamTime"].as_u64().expect("stream time");
    assert!((5_000..8_000).contains(&st), "{st}");
    m.send(json!({"type": "send", "text": ":wave: :wave:", "kind": "emote"}))
        .await;
    m.expect(|f| f["kind"] == "emote", "emote").await;
    m.send(json!({"type": "emoteOnly", "enabled": true})).await;
    m.expect(
        |f| f["type"] == "modes" && f["modes"]["emoteOnly"] == true,
        "modes",
    )
    .await;
    m.send(json!({"type": "ban", "userId": "troll"})).await;
    m.expect(|f| f["type"] == "moderation", "ban").await;

    // A late joiner gets recent history.
    let late = Client::connect_raw(addr, "show", None).await;
    let mut late = late;
    let hello = late.expect(|f| f["type"] == "hello", "hello").await;
    assert_eq!(hello["protocol"], 1);
    assert_eq!(hello["modes"]["emoteOnly"], true);
    let h = late.expect(|f| f["type"] == "history", "history").await;
    assert_eq!(h["messages"].as_array().map(Vec::len), Some(2));

    // Replay by stream time from the archive (written asynchronously: poll briefly).
    let mut replayed = vec![];
    for _ in 0..50 {
        replayed = server
            .state()
            .replay("show", Duration::ZERO, Duration::from_secs(60), 10)
            .await
            .expect("replay");
        if replayed.len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(replayed.len(), 2);
    assert!(replayed[0].contains("\"text\":\"first\""));

    // A second node on the same data dir (a restart) keeps ids, modes and bans.
    let mut config2 = config;
    config2.data_dir = dir;
    let again = node_with(config2).await;
    let mut troll = Client::connect(again.local_addr(), "show", Some(&token("troll", Role::Viewer))).await;
    assert_eq!(troll.hello["modes"]["emoteOnly"], true);
    troll.say(":kappa:").await;
    troll.expect_error("banned").await;
    let mut m2 = Client::connect(again.local_addr(), "show", Some(&token("m", Role::Moderator))).await;
    m2.say("after restart").await;
    let after = m2.expect_message("after restart").await;
    assert!(after["id"].as_u64() > first["id"].as_u64());
}
