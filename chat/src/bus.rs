//! The bus carries stamped frames (messages, deletions, moderation notices) to every node's
//! room drivers, which fan them out to their own sockets.
//!
//! - In-process ([`Bus::local`]): a map from room to the driver's inbox; publishing is a
//!   channel send.
//! - Redis ([`Bus::redis`]): one pub/sub connection per node, subscribed once per room that has
//!   sockets here (channel `chat:<room>`), never once per socket. Publishing happens inside the
//!   ledger's script. When the connection drops, the subscriber reconnects with backoff and
//!   resubscribes every room; messages published meanwhile are lost to this node, but sends
//!   during an outage fail loudly in the ledger, so nothing is silently dropped for a sender.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use parking_lot::Mutex;
use tokio::sync::{mpsc, oneshot};

use crate::redis_ledger::channel;

/// A room driver's inbox for bus frames.
pub type Inbox = mpsc::Sender<String>;

/// The fan-out bus between nodes.
#[derive(Clone, Debug)]
pub struct Bus {
    inner: Inner,
}

#[derive(Clone, Debug)]
enum Inner {
    Local(Arc<Mutex<HashMap<String, Inbox>>>),
    Redis(mpsc::UnboundedSender<Subscription>),
}

#[derive(Debug)]
enum Subscription {
    Add {
        room: String,
        inbox: Inbox,
        ack: oneshot::Sender<()>,
    },
    Remove {
        room: String,
    },
}

impl Bus {
    /// In-process bus (one node).
    pub fn local() -> Self {
        Bus {
            inner: Inner::Local(Arc::default()),
        }
    }

    /// Redis bus; spawns the node's subscriber task (needs a tokio runtime).
    pub fn redis(client: redis::Client) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(subscriber(client, rx));
        Bus {
            inner: Inner::Redis(tx),
        }
    }

    /// Whether this bus goes through Redis.
    pub fn is_redis(&self) -> bool {
        matches!(self.inner, Inner::Redis(_))
    }

    /// Route a room's frames to `inbox`. Returns once the subscription is active, or after
    /// 2 s when Redis is down (it is then made on reconnect).
    pub async fn subscribe(&self, room: &str, inbox: Inbox) {
        match &self.inner {
            Inner::Local(map) => {
                map.lock().insert(room.to_string(), inbox);
            }
            Inner::Redis(tx) => {
                let (ack, done) = oneshot::channel();
                let sub = Subscription::Add {
                    room: room.to_string(),
                    inbox,
                    ack,
                };
                if tx.send(sub).is_ok() {
                    let _ = tokio::time::timeout(Duration::from_secs(2), done).await;
                }
            }
        }
    }

    /// Stop routing a room's frames here.
    pub fn unsubscribe(&self, room: &str) {
        match &self.inner {
            Inner::Local(map) => {
                map.lock().remove(room);
            }
            Inner::Redis(tx) => {
                let _ = tx.send(Subscription::Remove {
                    room: room.to_string(),
                });
            }
        }
    }

    /// Publish a frame on the in-process bus. On the Redis bus frames are published by the
    /// ledger (atomically with stamping), so this is a no-op there.
    pub fn publish_local(&self, room: &str, frame: String) {
        if let Inner::Local(map) = &self.inner {
            let inbox = map.lock().get(room).cloned();
            if let Some(inbox) = inbox {
                deliver(&inbox, room, frame);
            }
        }
    }
}

fn deliver(inbox: &Inbox, room: &str, frame: String) {
    if let Err(mpsc::error::TrySendError::Full(_)) = inbox.try_send(frame) {
        // The room driver is more than a whole inbox behind: it is overloaded. Dropping here
        // keeps memory bounded; the warning makes it visible.
        tracing::warn!(room, "chat room inbox full; frame dropped");
    }
}

async fn subscriber(client: redis::Client, mut subs: mpsc::UnboundedReceiver<Subscription>) {
    let mut routes: HashMap<String, (String, Inbox)> = HashMap::new();
    let mut backoff = Duration::from_millis(50);
    loop {
        let connected = tokio::time::timeout(Duration::from_secs(1), client.get_async_pubsub())
            .await
            .map_err(|_| "connect timed out".to_string())
            .and_then(|r| r.map_err(|e| e.to_string()));
        let pubsub = match connected {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, "chat bus: redis unreachable, retrying");
                // Keep taking (un)subscriptions while down; they apply on reconnect.
                let wait = tokio::time::sleep(backoff);
                tokio::pin!(wait);
                loop {
                    tokio::select! {
                        _ = &mut wait => break,
                        sub = subs.recv() => match sub {
                            None => return,
                            Some(s) => apply_offline(&mut routes, s),
                        },
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(1));
                continue;
            }
        };
        let (mut sink, mut stream) = pubsub.split();
        let channels: Vec<String> = routes.keys().cloned().collect();
        if !channels.is_empty() && sink.subscribe(&channels).await.is_err() {
            continue;
        }
        tracing::info!(rooms = channels.len(), "chat bus: subscribed to redis");
        backoff = Duration::from_millis(50);
        loop {
            tokio::select! {
                msg = stream.next() => match msg {
                    Some(msg) => {
                        let Some((room, inbox)) = routes.get(msg.get_channel_name()) else {
                            continue;
                        };
                        match msg.get_payload::<String>() {
                            Ok(frame) => deliver(inbox, room, frame),
                            Err(e) => tracing::warn!(error = %e, "chat bus: bad payload"),
                        }
                    }
                    None => {
                        tracing::warn!("chat bus: redis connection lost, reconnecting");
                        break;
                    }
                },
                sub = subs.recv() => match sub {
                    None => return,
                    Some(Subscription::Add { room, inbox, ack }) => {
                        let ch = channel(&room);
                        routes.insert(ch.clone(), (room, inbox));
                        let ok = sink.subscribe(&ch).await.is_ok();
                        let _ = ack.send(());
                        if !ok {
                            break;
                        }
                    }
                    Some(Subscription::Remove { room }) => {
                        let ch = channel(&room);
                        routes.remove(&ch);
                        if sink.unsubscribe(&ch).await.is_err() {
                            break;
                        }
                    }
                },
            }
        }
    }
}

fn apply_offline(routes: &mut HashMap<String, (String, Inbox)>, sub: Subscription) {
    match sub {
        Subscription::Add { room, inbox, ack } => {
            routes.insert(channel(&room), (room, inbox));
            let _ = ack.send(());
        }
        Subscription::Remove { room } => {
            routes.remove(&channel(&room));
        }
    }
}
