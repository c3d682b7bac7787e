//! Chat sockets reach the viewer-count hook: on join and again while they stay, by user id
//! when signed in and by connection otherwise; nothing after they leave.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use chat::{Role, ViewerMarks};
use common::{Client, config, node_with, token};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sockets_are_marked_on_join_and_while_they_stay() {
    let marks: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let mut cfg = config(None);
    let sink = marks.clone();
    cfg.viewer_marks = Some(ViewerMarks::new(Duration::from_millis(200), move |s, v| {
        sink.lock().expect("marks").push((s.to_string(), v.to_string()));
    }));
    let node = node_with(cfg).await;
    let signed_in = Client::connect(node.local_addr(), "room1", Some(&token("alice", Role::Viewer))).await;
    let anonymous = Client::connect(node.local_addr(), "room1", None).await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    drop(signed_in);
    drop(anonymous);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let taken = std::mem::take(&mut *marks.lock().expect("marks"));
    let alice = taken
        .iter()
        .filter(|(s, v)| s == "room1" && v == "chat:user:alice")
        .count();
    let anon: Vec<&String> = taken
        .iter()
        .filter(|(s, v)| s == "room1" && v.starts_with("chat:") && !v.starts_with("chat:user:"))
        .map(|(_, v)| v)
        .collect();
    assert!(alice >= 3, "joined and re-marked every 200 ms: {taken:?}");
    assert!(
        anon.len() >= 3,
        "anonymous socket marked by connection: {taken:?}"
    );
    assert!(
        anon.iter().all(|v| *v == anon[0]),
        "one id per connection: {taken:?}"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        marks.lock().expect("marks").is_empty(),
        "closed sockets are not marked"
    );
}
