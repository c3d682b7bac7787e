//! Shared helpers for the chat integration tests: a real redis-server, real chat nodes on
//! 127.0.0.1:0, and a tokio-tungstenite client that flattens `batch` frames.
#![allow(dead_code, missing_docs)]

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use chat::auth::Claims;
use chat::{ChatConfig, ChatHandle, JwtConfig, Role};
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

pub const SECRET: &[u8] = b"test-secret";

pub fn token(sub: &str, role: Role) -> String {
    let exp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        + 3600;
    chat::mint_token(
        SECRET,
        &Claims {
            sub: sub.into(),
            name: Some(sub.into()),
            role,
            badges: vec![],
            color: Some("#00ff00".into()),
            exp,
            // These tests use many rooms; scope is tested in `auth.rs` and `private_chat.rs`.
            stream: Some(chat::auth::ALL_ROOMS.into()),
            aud: None,
        },
    )
}

/// A new data dir, `fanout-chat-<pid>-<tag>-<n>` under the system's temp dir. The first call
/// of a test process removes the dirs of test processes that have ended (nodes are stopped by
/// dropping them, so a test cannot tell when its node's files are free to delete).
pub fn temp_dir(tag: &str) -> PathBuf {
    static SWEEP: std::sync::Once = std::sync::Once::new();
    SWEEP.call_once(remove_dirs_of_ended_runs);
    let n: u64 = rand::random();
    let pid = std::process::id();
    let dir = std::env::temp_dir().join(format!("fanout-chat-{pid}-{tag}-{n:x}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

fn remove_dirs_of_ended_runs() {
    let Ok(entries) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name.to_str().and_then(|n| n.strip_prefix("fanout-chat-")) else {
            continue;
        };
        let pid = rest.split('-').next().and_then(|p| p.parse::<u32>().ok());
        // Dirs of the old naming (no pid) and of processes that are gone.
        if pid.is_none_or(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

pub fn config(redis_url: Option<String>) -> ChatConfig {
    ChatConfig {
        addr: "127.0.0.1:0".parse().expect("addr"),
        redis_url,
        jwt: JwtConfig::hs256(SECRET.to_vec()),
        data_dir: temp_dir("node"),
        batch_window: Duration::from_millis(5),
        ..Default::default()
    }
}

pub async fn node(redis_url: Option<String>) -> ChatHandle {
    node_with(config(redis_url)).await
}

pub async fn node_with(config: ChatConfig) -> ChatHandle {
    chat::serve(config, std::future::pending())
        .await
        .expect("chat node starts")
}

// One copy of the redis-server helper for every crate's tests.
#[path = "../../../tests/src/redis_server.rs"]
mod redis_server;
#[allow(unused_imports)]
pub use redis_server::Redis;

pub type Ws = WebSocketStream<MaybeTlsStream<TcpStream>>;

pub struct Client {
    pub ws: Ws,
    queue: VecDeque<Value>,
    pub closed: Option<u16>,
    pub hello: Value,
}

impl Client {
    pub async fn connect(addr: SocketAddr, room: &str, token: Option<&str>) -> Client {
        let mut c = Client::connect_raw(addr, room, token).await;
        c.hello = c.expect(|f| f["type"] == "hello", "hello").await;
        // Join history comes right after hello.
        c.expect(|f| f["type"] == "history", "join history").await;
        c
    }

    pub async fn connect_raw(addr: SocketAddr, room: &str, token: Option<&str>) -> Client {
        let url = match token {
            Some(t) => format!("ws://{addr}/v1/chat/{room}?token={t}"),
            None => format!("ws://{addr}/v1/chat/{room}"),
        };
        let (ws, _) = tokio_tungstenite::connect_async(url).await.expect("ws connect");
        Client {
            ws,
            queue: VecDeque::new(),
            closed: None,
            hello: Value::Null,
        }
    }

    pub async fn send(&mut self, json: Value) {
        self.ws
            .send(Message::Text(json.to_string().into()))
            .await
            .expect("ws send");
    }

    pub async fn send_raw(&mut self, msg: Message) {
        let _ = self.ws.send(msg).await;
    }

    pub async fn say(&mut self, text: &str) {
        self.send(serde_json::json!({"type": "send", "text": text})).await;
    }

    /// The next frame (batches flattened), or None on close / timeout.
    pub async fn next(&mut self, within: Duration) -> Option<Value> {
        if let Some(v) = self.queue.pop_front() {
            return Some(v);
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let msg = tokio::time::timeout_at(deadline, self.ws.next()).await.ok()??;
            match msg {
                Ok(Message::Text(t)) => {
                    let v: Value = serde_json::from_str(&t).expect("server sends JSON");
                    if v["type"] == "batch" {
                        let items = v["messages"].as_array().expect("batch has messages");
                        self.queue.extend(items.iter().cloned());
                    } else {
                        self.queue.push_back(v);
                    }
                    if let Some(v) = self.queue.pop_front() {
                        return Some(v);
                    }
                }
                Ok(Message::Close(frame)) => {
                    self.closed = Some(frame.map(|f| u16::from(f.code)).unwrap_or(1005));
                    return None;
                }
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Read until a frame matches (panics after 5 s).
    pub async fn expect(&mut self, pred: impl Fn(&Value) -> bool, what: &str) -> Value {
        self.expect_within(pred, what, Duration::from_secs(5)).await
    }

    pub async fn expect_within(
        &mut self,
        pred: impl Fn(&Value) -> bool,
        what: &str,
        within: Duration,
    ) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(left).await {
                Some(v) if pred(&v) => return v,
                Some(_) => {}
                None => panic!("no {what} within {within:?} (closed: {:?})", self.closed),
            }
        }
    }

    pub async fn expect_error(&mut self, code: &str) -> Value {
        self.expect(|f| f["type"] == "error" && f["code"] == code, code)
            .await
    }

    pub async fn expect_message(&mut self, text: &str) -> Value {
        self.expect(|f| f["type"] == "message" && f["text"] == text, text)
            .await
    }

    /// Read until the server closes; returns the close code.
    pub async fn expect_close(&mut self) -> u16 {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if self.next(Duration::from_secs(10)).await.is_none() {
                return self.closed.unwrap_or(1006);
            }
        }
        panic!("socket not closed");
    }
}
