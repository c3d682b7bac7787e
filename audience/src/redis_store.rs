//! Viewer counts in Redis, shared by every node: the same model as
//! [`crate::counter::ViewerCounter`], with Redis's own HyperLogLogs.
//!
//! Keys (the `{stream}` braces are literal: a Redis Cluster hash tag, so one stream's keys
//! share a slot and PFCOUNT can take several of them):
//!
//! | key | what | expiry |
//! |---|---|---|
//! | `fanout:aud:{<stream>}:<bucket secs>s:<bucket>` | PFADD of the viewers seen in a bucket | three buckets |
//! | `fanout:aud:{<stream>}:all` | PFADD of every viewer (total views) | a week after the last add |
//! | `fanout:aud:{<stream>}:peak` | largest current count computed | a week after it last rose |
//!
//! Marks are collected in memory and sent every [`FLUSH_EVERY`] as one pipeline of PFADDs, so
//! a heartbeat or a playlist request never waits on Redis and a busy stream costs Redis a
//! few commands a second, not one per request.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::{Duration, SystemTime};

use parking_lot::Mutex;
use redis::Script;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use crate::counter::AudienceStats;
use crate::window::Window;

/// How often collected marks go to Redis.
pub const FLUSH_EVERY: Duration = Duration::from_millis(250);
/// How long the total and the peak of a stream nobody watches are kept.
const LIFETIME_TTL_SECS: u64 = 7 * 24 * 3600;
/// Ids per PFADD, so that one command stays small.
const IDS_PER_COMMAND: usize = 1_000;

/// Current count of the two live buckets, the peak raised to it, and the total, in one
/// round trip.
const STATS: &str = r#"
local current = redis.call('PFCOUNT', KEYS[1], KEYS[2])
local peak = tonumber(redis.call('GET', KEYS[3]) or '0') or 0
if current > peak then
  peak = current
  redis.call('SET', KEYS[3], peak, 'EX', tonumber(ARGV[1]))
end
local total = redis.call('PFCOUNT', KEYS[4])
return {current, peak, total}
"#;

/// A Redis call that did not complete.
#[derive(Debug, thiserror::Error)]
#[error("redis: {0}")]
pub struct RedisStoreError(#[from] redis::RedisError);

/// Marks not sent yet: (stream, bucket) -> viewer ids.
type Pending = HashMap<(String, u64), HashSet<String>>;

struct Inner {
    conn: ConnectionManager,
    window: Window,
    pending: Mutex<Pending>,
    /// One flush at a time, so that a read after a flush sees every earlier mark.
    flushing: tokio::sync::Mutex<()>,
    stats: Script,
}

/// Viewer counts in Redis. Cheap to clone; the flusher stops when the last clone is dropped.
#[derive(Clone)]
pub struct RedisStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("window", &self.inner.window)
            .finish_non_exhaustive()
    }
}

fn bucket_key(stream: &str, window: Window, bucket: u64) -> String {
    format!(
        "fanout:aud:{{{stream}}}:{}s:{bucket}",
        window.bucket_length().as_secs()
    )
}

fn key(stream: &str, what: &str) -> String {
    format!("fanout:aud:{{{stream}}}:{what}")
}

impl RedisStore {
    /// Connect lazily (a Redis that is down at start is retried on use) and start the
    /// flusher. Needs a tokio runtime.
    pub fn new(url: &str, window: Window) -> Result<Self, RedisStoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(1000)))
            .set_number_of_retries(2)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        let store = RedisStore {
            inner: Arc::new(Inner {
                conn,
                window,
                pending: Mutex::new(HashMap::new()),
                flushing: tokio::sync::Mutex::new(()),
                stats: Script::new(STATS),
            }),
        };
        tokio::spawn(flusher(Arc::downgrade(&store.inner)));
        Ok(store)
    }

    /// The window it counts over.
    pub fn window(&self) -> Window {
        self.inner.window
    }

    /// `viewer` is watching `stream` at `now`; sent to Redis with the next flush.
    pub fn seen(&self, stream: &str, viewer: &str, now: SystemTime) {
        let bucket = self.inner.window.bucket(now);
        let mut pending = self.inner.pending.lock();
        let ids = match pending.get_mut(&(stream.to_string(), bucket)) {
            Some(ids) => ids,
            None => pending.entry((stream.to_string(), bucket)).or_default(),
        };
        if !ids.contains(viewer) {
            ids.insert(viewer.to_string());
        }
    }

    /// Send the collected marks now.
    pub async fn flush(&self) -> Result<(), RedisStoreError> {
        flush(&self.inner).await
    }

    /// Current (raising the shared peak), peak and total of `stream` at `now`, after sending
    /// this node's marks.
    pub async fn stats(&self, stream: &str, now: SystemTime) -> Result<AudienceStats, RedisStoreError> {
        if let Err(e) = self.flush().await {
            tracing::warn!("cannot send viewer marks to redis: {e}");
        }
        let window = self.inner.window;
        let [previous, this] = window.live_buckets(now);
        let mut conn = self.inner.conn.clone();
        let (current, peak, total): (u64, u64, u64) = self
            .inner
            .stats
            .key(bucket_key(stream, window, previous))
            .key(bucket_key(stream, window, this))
            .key(key(stream, "peak"))
            .key(key(stream, "all"))
            .arg(LIFETIME_TTL_SECS)
            .invoke_async(&mut conn)
            .await?;
        Ok(AudienceStats { current, peak, total })
    }
}

async fn flusher(inner: Weak<Inner>) {
    let mut tick = tokio::time::interval(FLUSH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        if let Err(e) = flush(&inner).await {
            tracing::warn!("cannot send viewer marks to redis: {e}");
        }
    }
}

async fn flush(inner: &Inner) -> Result<(), RedisStoreError> {
    let _one_at_a_time = inner.flushing.lock().await;
    let pending = std::mem::take(&mut *inner.pending.lock());
    if pending.is_empty() {
        return Ok(());
    }
    let window = inner.window;
    // A bucket is read until the end of the next one; a third bucket of slack for clocks.
    let bucket_ttl = window.bucket_length().as_secs() * 3;
    let mut pipe = redis::pipe();
    for ((stream, bucket), ids) in &pending {
        let ids: Vec<&String> = ids.iter().collect();
        let bucket_key = bucket_key(stream, window, *bucket);
        let all = key(stream, "all");
        for chunk in ids.chunks(IDS_PER_COMMAND) {
            pipe.cmd("PFADD").arg(&bucket_key).arg(chunk).ignore();
            pipe.cmd("PFADD").arg(&all).arg(chunk).ignore();
        }
        pipe.expire(&bucket_key, bucket_ttl as i64).ignore();
        pipe.expire(&all, LIFETIME_TTL_SECS as i64).ignore();
    }
    let mut conn = inner.conn.clone();
    // Marks that did not make it are lost: viewers that are still there mark again.
    let () = pipe.query_async(&mut conn).await?;
    Ok(())
}
