//! The ledger in Redis (cluster mode): the same rules as [`crate::ledger::MemoryLedger`], run
//! atomically in one Lua script per message so that every node shares bans, timeouts, modes,
//! slow mode, rate windows, the id sequence and recent history.
//!
//! Keys (all prefixed `chat:<room>:`): `ban:<user>` (no TTL: ban, TTL: timeout), `modes`
//! (hash), `slow:<user>`, `rate:<user>` (sorted set of send times), `seq`, `live` (ms epoch
//! when the stream went live), `history` (stream, entry id `<message id>-1`), `presence` (hash
//! node -> `count:expires_ms`). The script also PUBLISHes the stamped message on `chat:<room>`,
//! so stamping, history and fan-out happen in one round trip and in id order.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncCommands, RedisError, Script};

use crate::ledger::{Admitted, Draft, LedgerRules, ModAction, Rejection};
use crate::protocol::Modes;
use crate::rate_limit::WINDOW_LUA;

/// A ledger call that did not complete.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The rules said no.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// Redis is unreachable or answered nonsense; nothing was posted.
    #[error("redis: {0}")]
    Unavailable(String),
}

impl From<RedisError> for LedgerError {
    fn from(e: RedisError) -> Self {
        LedgerError::Unavailable(e.to_string())
    }
}

/// The admit script, run after [`WINDOW_LUA`] (the rate limit's own rule, which defines
/// `window_wait` and `window_record`).
const ADMIT: &str = r#"
local now = tonumber(ARGV[1])
local rank = tonumber(ARGV[2])
local exempt = rank >= 3
local ban = redis.call('PTTL', KEYS[1])
if ban == -1 then return {'banned', 0} end
if ban > 0 then return {'timed_out', ban} end
local slow = 0
if not exempt then
  local modes = redis.call('HMGET', KEYS[2], 'slow', 'emoteOnly', 'subscribersOnly')
  if modes[3] == '1' and rank < 1 then return {'subscribers_only', 0} end
  if modes[2] == '1' and ARGV[3] ~= '1' then return {'emote_only', 0} end
  slow = tonumber(modes[1] or '0') or 0
  if slow > 0 then
    local left = redis.call('PTTL', KEYS[3])
    if left > 0 then return {'slow_mode', left} end
  end
end
local window = tonumber(ARGV[5])
local wait = window_wait(KEYS[4], now, tonumber(ARGV[4]), window)
if wait > 0 then return {'rate_limited', wait} end
if slow > 0 then redis.call('SET', KEYS[3], '1', 'PX', slow * 1000) end
local id = redis.call('INCR', KEYS[5])
local floor = tonumber(ARGV[9])
if id <= floor then
  id = floor + 1
  redis.call('SET', KEYS[5], id)
end
window_record(KEYS[4], now, id, window)
local st = 'null'
local live = redis.call('GET', KEYS[6])
if live then
  local d = now - tonumber(live)
  if d >= 0 then st = string.format('%d', d) end
end
local frame = '{"type":"message","id":' .. string.format('%d', id) .. ',"streamTime":' .. st .. ARGV[7]
redis.pcall('XADD', KEYS[7], 'MAXLEN', '~', ARGV[6], string.format('%d', id) .. '-1', 'f', frame)
redis.call('PUBLISH', ARGV[8], frame)
return {'ok', id, frame, st}
"#;

const PRESENCE: &str = r#"
local now = tonumber(ARGV[3])
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2] .. ':' .. (now + tonumber(ARGV[4])))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[4]) * 2)
local all = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #all, 2 do
  local c, exp = string.match(all[i + 1], '(%d+):(%d+)')
  if c and tonumber(exp) > now then total = total + tonumber(c)
  else redis.call('HDEL', KEYS[1], all[i]) end
end
return total
"#;

/// The pub/sub channel of a room.
pub fn channel(room: &str) -> String {
    format!("chat:{room}")
}

fn key(room: &str, rest: &str) -> String {
    format!("chat:{room}:{rest}")
}

/// Shared ledger in Redis. Cheap to clone.
#[derive(Clone)]
pub struct RedisLedger {
    conn: ConnectionManager,
    rules: LedgerRules,
    admit: Script,
    presence: Script,
}

impl std::fmt::Debug for RedisLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RedisLedger")
    }
}

/// Connection settings shared by the ledger and the bus: fail fast, reconnect forever.
pub(crate) fn manager_config() -> ConnectionManagerConfig {
    ConnectionManagerConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_millis(1000)))
        .set_number_of_retries(2)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(Duration::from_millis(500))
}

impl RedisLedger {
    /// Connect (lazily: a Redis that is down at start is retried on use).
    pub fn new(client: redis::Client, rules: LedgerRules) -> Result<Self, RedisError> {
        let conn = ConnectionManager::new_lazy_with_config(client, manager_config())?;
        Ok(RedisLedger {
            conn,
            rules,
            admit: Script::new(&[WINDOW_LUA, ADMIT].concat()),
            presence: Script::new(PRESENCE),
        })
    }

    /// Admit a draft: checks, stamp, history and publish, atomically. `floor` is the highest id
    /// this node has seen, so ids stay monotonic even if Redis lost its data.
    pub async fn admit(
        &self,
        room: &str,
        draft: &Draft,
        now_ms: u64,
        floor: u64,
    ) -> Result<Admitted, LedgerError> {
        let mut conn = self.conn.clone();
        let user = &draft.user_id;
        let reply: redis::Value = self
            .admit
            .key(key(room, &format!("ban:{user}")))
            .key(key(room, "modes"))
            .key(key(room, &format!("slow:{user}")))
            .key(key(room, &format!("rate:{user}")))
            .key(key(room, "seq"))
            .key(key(room, "live"))
            .key(key(room, "history"))
            .arg(now_ms)
            .arg(draft.role.rank())
            .arg(if draft.all_emotes { "1" } else { "0" })
            .arg(self.rules.rate.messages)
            .arg(self.rules.rate.window_ms())
            .arg(self.rules.history_len)
            .arg(&draft.tail)
            .arg(channel(room))
            .arg(floor)
            .invoke_async(&mut conn)
            .await?;
        parse_admit(reply)
    }

    /// Apply a moderator's action and publish its notice.
    pub async fn apply(&self, room: &str, action: &ModAction, notice: &str) -> Result<(), LedgerError> {
        let mut conn = self.conn.clone();
        let mut pipe = redis::pipe();
        match action {
            ModAction::Delete { id } => {
                pipe.cmd("XDEL")
                    .arg(key(room, "history"))
                    .arg(format!("{id}-1"))
                    .ignore();
            }
            ModAction::Ban { user_id, .. } => {
                pipe.set(key(room, &format!("ban:{user_id}")), "ban").ignore();
            }
            ModAction::Timeout { user_id, seconds, .. } => {
                pipe.pset_ex(key(room, &format!("ban:{user_id}")), "timeout", seconds * 1000)
                    .ignore();
            }
            ModAction::Unban { user_id } => {
                pipe.del(key(room, &format!("ban:{user_id}"))).ignore();
            }
            ModAction::SetModes(m) => {
                pipe.hset_multiple(
                    key(room, "modes"),
                    &[
                        ("slow", m.slow_seconds.to_string()),
                        ("emoteOnly", u8::from(m.emote_only).to_string()),
                        ("subscribersOnly", u8::from(m.subscribers_only).to_string()),
                    ],
                )
                .ignore();
            }
        }
        pipe.publish(channel(room), notice).ignore();
        let () = pipe.query_async(&mut conn).await?;
        Ok(())
    }

    /// Up to `limit` recent messages with id below `before`, oldest first.
    pub async fn recent(
        &self,
        room: &str,
        limit: usize,
        before: Option<u64>,
    ) -> Result<Vec<String>, LedgerError> {
        let mut conn = self.conn.clone();
        let end = match before {
            Some(b) => format!("({b}-0"),
            None => "+".to_string(),
        };
        let reply: redis::streams::StreamRangeReply = conn
            .xrevrange_count(key(room, "history"), end, "-", limit)
            .await?;
        let mut out: Vec<String> = reply
            .ids
            .into_iter()
            .filter_map(|e| e.get::<String>("f"))
            .collect();
        out.reverse();
        Ok(out)
    }

    /// The room's modes.
    pub async fn modes(&self, room: &str) -> Result<Modes, LedgerError> {
        let mut conn = self.conn.clone();
        let (slow, emote, subs): (Option<u64>, Option<u8>, Option<u8>) = redis::cmd("HMGET")
            .arg(key(room, "modes"))
            .arg("slow")
            .arg("emoteOnly")
            .arg("subscribersOnly")
            .query_async(&mut conn)
            .await?;
        Ok(Modes {
            slow_seconds: slow.unwrap_or(0),
            emote_only: emote == Some(1),
            subscribers_only: subs == Some(1),
        })
    }

    /// Record when the stream went live (None: not live).
    pub async fn set_live(&self, room: &str, since_ms: Option<u64>) -> Result<(), LedgerError> {
        let mut conn = self.conn.clone();
        match since_ms {
            Some(ms) => conn.set::<_, _, ()>(key(room, "live"), ms).await?,
            None => conn.del::<_, ()>(key(room, "live")).await?,
        }
        Ok(())
    }

    /// Record whether the stream is private, for every node.
    pub async fn set_private(&self, room: &str, private: bool) -> Result<(), LedgerError> {
        let mut conn = self.conn.clone();
        if private {
            conn.set::<_, _, ()>(key(room, "private"), 1).await?;
        } else {
            conn.del::<_, ()>(key(room, "private")).await?;
        }
        Ok(())
    }

    /// Whether the stream is private.
    pub async fn is_private(&self, room: &str) -> Result<bool, LedgerError> {
        let mut conn = self.conn.clone();
        Ok(conn.exists(key(room, "private")).await?)
    }

    /// Report this node's socket count for the room; returns the total over live nodes.
    pub async fn presence(
        &self,
        room: &str,
        node: &str,
        count: u64,
        now_ms: u64,
        ttl_ms: u64,
    ) -> Result<u64, LedgerError> {
        let mut conn = self.conn.clone();
        let total: u64 = self
            .presence
            .key(key(room, "presence"))
            .arg(node)
            .arg(count)
            .arg(now_ms)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(total)
    }
}

fn parse_admit(reply: redis::Value) -> Result<Admitted, LedgerError> {
    use redis::Value;
    let bad = || LedgerError::Unavailable("unexpected script reply".into());
    let Value::Array(items) = reply else {
        return Err(bad());
    };
    let status: String = items
        .first()
        .and_then(|v| redis::from_redis_value_ref(v).ok())
        .ok_or_else(bad)?;
    let n: u64 = items
        .get(1)
        .and_then(|v| redis::from_redis_value_ref(v).ok())
        .ok_or_else(bad)?;
    if status == "ok" {
        let frame: String = items
            .get(2)
            .and_then(|v| redis::from_redis_value_ref(v).ok())
            .ok_or_else(bad)?;
        let st: String = items
            .get(3)
            .and_then(|v| redis::from_redis_value_ref(v).ok())
            .ok_or_else(bad)?;
        return Ok(Admitted {
            id: n,
            stream_time: st.parse().ok(),
            frame,
        });
    }
    Err(Rejection::from_script(&status, n).ok_or_else(bad)?.into())
}
