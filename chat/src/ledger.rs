//! The ledger: the state that decides whether a filtered message may be posted and stamps it —
//! bans, timeouts, modes, slow mode, rate windows, the id sequence and recent history.
//!
//! [`MemoryLedger`] is the embedded implementation: one per room, pure, time passed in.
//! `RedisLedger` (in `redis_ledger.rs`) applies exactly the same rules in one Lua script so
//! that every node shares them. Keep the two in step. The rate rule is not theirs: both hold
//! per-user windows of [`crate::rate_limit`] (the Redis one through its Lua twin).

use std::collections::{HashMap, VecDeque};

use crate::auth::Role;
use crate::protocol::{ErrorCode, Modes, render_message};
use crate::rate_limit::{RateLimit, SlidingWindow};

/// A message that passed the room's filters, ready to be admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Draft {
    /// Author id.
    pub user_id: String,
    /// Author role.
    pub role: Role,
    /// Message kind.
    pub kind: crate::protocol::MessageKind,
    /// The text (for stateful filters once posted).
    pub text: String,
    /// Whether the text is emote codes only (for emote-only mode).
    pub all_emotes: bool,
    /// [`crate::protocol::MessageBody::render_tail`].
    pub tail: String,
}

/// A posted message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    /// Its id.
    pub id: u64,
    /// Milliseconds since the stream went live.
    pub stream_time: Option<u64>,
    /// The rendered `message` frame.
    pub frame: String,
}

/// Why a draft was not posted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// Banned.
    #[error("you are banned from this chat")]
    Banned,
    /// Timed out for `retry_after_ms` more.
    #[error("you are timed out")]
    TimedOut {
        /// Remaining.
        retry_after_ms: u64,
    },
    /// Subscribers-only mode.
    #[error("this chat is in subscribers-only mode")]
    SubscribersOnly,
    /// Emote-only mode.
    #[error("this chat is in emote-only mode")]
    EmoteOnly,
    /// Slow mode.
    #[error("slow mode is on")]
    SlowMode {
        /// Remaining.
        retry_after_ms: u64,
    },
    /// Rate limit.
    #[error("you are sending messages too fast")]
    RateLimited {
        /// Remaining.
        retry_after_ms: u64,
    },
}

impl Rejection {
    /// The error code for the client.
    pub fn code(&self) -> ErrorCode {
        match self {
            Rejection::Banned => ErrorCode::Banned,
            Rejection::TimedOut { .. } => ErrorCode::TimedOut,
            Rejection::SubscribersOnly => ErrorCode::SubscribersOnly,
            Rejection::EmoteOnly => ErrorCode::EmoteOnly,
            Rejection::SlowMode { .. } => ErrorCode::SlowMode,
            Rejection::RateLimited { .. } => ErrorCode::RateLimited,
        }
    }

    /// When to try again, if that helps.
    pub fn retry_after_ms(&self) -> Option<u64> {
        match self {
            Rejection::TimedOut { retry_after_ms }
            | Rejection::SlowMode { retry_after_ms }
            | Rejection::RateLimited { retry_after_ms } => Some(*retry_after_ms),
            _ => None,
        }
    }

    /// Parse the status string of the Redis script.
    pub(crate) fn from_script(status: &str, retry_after_ms: u64) -> Option<Self> {
        Some(match status {
            "banned" => Rejection::Banned,
            "timed_out" => Rejection::TimedOut { retry_after_ms },
            "subscribers_only" => Rejection::SubscribersOnly,
            "emote_only" => Rejection::EmoteOnly,
            "slow_mode" => Rejection::SlowMode { retry_after_ms },
            "rate_limited" => Rejection::RateLimited { retry_after_ms },
            _ => return None,
        })
    }
}

/// A moderator's action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModAction {
    /// Remove a message from history; clients are told.
    Delete {
        /// Message id.
        id: u64,
    },
    /// Ban until unbanned.
    Ban {
        /// Target.
        user_id: String,
        /// Shown to the room.
        reason: Option<String>,
    },
    /// Silence for some seconds.
    Timeout {
        /// Target.
        user_id: String,
        /// Length.
        seconds: u64,
        /// Shown to the room.
        reason: Option<String>,
    },
    /// Lift a ban or timeout.
    Unban {
        /// Target.
        user_id: String,
    },
    /// Change one or more modes (the room passes the full new set).
    SetModes(Modes),
}

/// Ledger limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LedgerRules {
    /// Per-user rate limit.
    pub rate: RateLimit,
    /// Recent messages kept for late joiners.
    pub history_len: usize,
}

impl Default for LedgerRules {
    fn default() -> Self {
        LedgerRules {
            rate: RateLimit::default(),
            history_len: 100,
        }
    }
}

/// Until when a user may not post: `None` is a ban.
type Sanction = Option<u64>;

/// One room's ledger in memory (embedded mode).
#[derive(Debug, Default)]
pub struct MemoryLedger {
    rules: LedgerRules,
    sanctions: HashMap<String, Sanction>,
    modes: Modes,
    slow_until: HashMap<String, u64>,
    windows: HashMap<String, SlidingWindow>,
    seq: u64,
    recent: VecDeque<(u64, String)>,
}

impl MemoryLedger {
    /// An empty ledger.
    pub fn new(rules: LedgerRules) -> Self {
        MemoryLedger {
            rules,
            ..Default::default()
        }
    }

    /// Restore persisted state: last id, recent messages (oldest first), sanctions, modes.
    pub fn restore(
        &mut self,
        last_id: u64,
        recent: Vec<(u64, String)>,
        sanctions: Vec<(String, Option<u64>)>,
        modes: Modes,
    ) {
        self.seq = self.seq.max(last_id);
        self.recent = recent.into();
        while self.recent.len() > self.rules.history_len {
            self.recent.pop_front();
        }
        self.sanctions.extend(sanctions);
        self.modes = modes;
    }

    /// Current modes.
    pub fn modes(&self) -> Modes {
        self.modes
    }

    /// Decide on a draft at `now_ms`; on success it is stamped and kept in recent history.
    pub fn admit(
        &mut self,
        draft: &Draft,
        now_ms: u64,
        live_since_ms: Option<u64>,
    ) -> Result<Admitted, Rejection> {
        match self.sanctions.get(&draft.user_id) {
            Some(None) => return Err(Rejection::Banned),
            Some(Some(until)) if *until > now_ms => {
                return Err(Rejection::TimedOut {
                    retry_after_ms: until - now_ms,
                });
            }
            Some(Some(_)) => {
                self.sanctions.remove(&draft.user_id);
            }
            None => {}
        }
        let exempt = draft.role.can_moderate();
        if !exempt {
            if self.modes.subscribers_only && draft.role < Role::Subscriber {
                return Err(Rejection::SubscribersOnly);
            }
            if self.modes.emote_only && !draft.all_emotes {
                return Err(Rejection::EmoteOnly);
            }
            if self.modes.slow_seconds > 0
                && let Some(&until) = self.slow_until.get(&draft.user_id)
                && until > now_ms
            {
                return Err(Rejection::SlowMode {
                    retry_after_ms: until - now_ms,
                });
            }
        }
        self.windows
            .entry(draft.user_id.clone())
            .or_default()
            .try_acquire(self.rules.rate, now_ms)
            .map_err(|retry_after_ms| Rejection::RateLimited { retry_after_ms })?;
        if !exempt && self.modes.slow_seconds > 0 {
            self.slow_until
                .insert(draft.user_id.clone(), now_ms + self.modes.slow_seconds * 1000);
        }
        self.seq += 1;
        let stream_time = live_since_ms.and_then(|l| now_ms.checked_sub(l));
        let frame = render_message(self.seq, stream_time, &draft.tail);
        self.recent.push_back((self.seq, frame.clone()));
        if self.recent.len() > self.rules.history_len {
            self.recent.pop_front();
        }
        Ok(Admitted {
            id: self.seq,
            stream_time,
            frame,
        })
    }

    /// Apply a moderator's action at `now_ms`.
    pub fn apply(&mut self, action: &ModAction, now_ms: u64) {
        match action {
            ModAction::Delete { id } => self.recent.retain(|(i, _)| i != id),
            ModAction::Ban { user_id, .. } => {
                self.sanctions.insert(user_id.clone(), None);
            }
            ModAction::Timeout { user_id, seconds, .. } => {
                self.sanctions
                    .insert(user_id.clone(), Some(now_ms + seconds * 1000));
            }
            ModAction::Unban { user_id } => {
                self.sanctions.remove(user_id);
            }
            ModAction::SetModes(m) => self.modes = *m,
        }
    }

    /// Up to `limit` recent messages older than `before`, oldest first.
    pub fn recent(&self, limit: usize, before: Option<u64>) -> Vec<String> {
        let mut out: Vec<String> = self
            .recent
            .iter()
            .rev()
            .filter(|(id, _)| before.is_none_or(|b| *id < b))
            .take(limit)
            .map(|(_, f)| f.clone())
            .collect();
        out.reverse();
        out
    }

    /// Drop expired per-user state so memory follows active users, not all users ever seen.
    pub fn prune(&mut self, now_ms: u64) {
        let rate = self.rules.rate;
        self.windows.retain(|_, w| !w.expire(rate, now_ms));
        self.slow_until.retain(|_, until| *until > now_ms);
        self.sanctions.retain(|_, s| s.is_none_or(|until| until > now_ms));
    }

    /// Last id handed out.
    pub fn last_id(&self) -> u64 {
        self.seq
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draft(user: &str, role: Role) -> Draft {
        Draft {
            user_id: user.into(),
            role,
            kind: crate::protocol::MessageKind::Text,
            text: "x".into(),
            all_emotes: false,
            tail: r#","text":"x"}"#.into(),
        }
    }

    #[test]
    fn stamps_monotonic_ids_and_stream_time() {
        let mut l = MemoryLedger::new(LedgerRules::default());
        let a = l
            .admit(&draft("a", Role::Viewer), 10_000, Some(4_000))
            .expect("ok");
        let b = l.admit(&draft("b", Role::Viewer), 10_001, None).expect("ok");
        assert_eq!((a.id, b.id), (1, 2));
        assert_eq!(a.stream_time, Some(6_000));
        assert_eq!(b.stream_time, None);
        assert!(
            a.frame
                .starts_with(r#"{"type":"message","id":1,"streamTime":6000,"text""#)
        );
        assert_eq!(l.recent(10, None).len(), 2);
        assert_eq!(l.recent(10, Some(2)), vec![a.frame]);
    }

    #[test]
    fn ban_timeout_unban_in_simulated_time() {
        let mut l = MemoryLedger::new(LedgerRules::default());
        let d = draft("a", Role::Viewer);
        l.apply(
            &ModAction::Ban {
                user_id: "a".into(),
                reason: None,
            },
            0,
        );
        assert_eq!(l.admit(&d, 1, None), Err(Rejection::Banned));
        l.apply(&ModAction::Unban { user_id: "a".into() }, 2);
        assert!(l.admit(&d, 3, None).is_ok());
        l.apply(
            &ModAction::Timeout {
                user_id: "a".into(),
                seconds: 10,
                reason: None,
            },
            5_000,
        );
        assert_eq!(
            l.admit(&d, 6_000, None),
            Err(Rejection::TimedOut {
                retry_after_ms: 9_000
            })
        );
        assert!(l.admit(&d, 15_000, None).is_ok());
    }

    #[test]
    fn modes_and_exemptions() {
        let mut l = MemoryLedger::new(LedgerRules::default());
        l.apply(
            &ModAction::SetModes(Modes {
                slow_seconds: 5,
                emote_only: false,
                subscribers_only: true,
            }),
            0,
        );
        assert_eq!(
            l.admit(&draft("v", Role::Viewer), 0, None),
            Err(Rejection::SubscribersOnly)
        );
        assert!(l.admit(&draft("s", Role::Subscriber), 0, None).is_ok());
        assert_eq!(
            l.admit(&draft("s", Role::Subscriber), 2_000, None),
            Err(Rejection::SlowMode {
                retry_after_ms: 3_000
            })
        );
        assert!(l.admit(&draft("s", Role::Subscriber), 5_000, None).is_ok());
        // Moderators skip modes but not the rate limit.
        assert!(l.admit(&draft("m", Role::Moderator), 5_000, None).is_ok());
        assert!(l.admit(&draft("m", Role::Moderator), 5_001, None).is_ok());
        assert!(matches!(
            l.admit(&draft("m", Role::Moderator), 5_002, None),
            Err(Rejection::RateLimited { .. })
        ));
        l.apply(
            &ModAction::SetModes(Modes {
                emote_only: true,
                ..Default::default()
            }),
            6_000,
        );
        assert_eq!(
            l.admit(&draft("v", Role::Viewer), 7_000, None),
            Err(Rejection::EmoteOnly)
        );
        let mut e = draft("v", Role::Viewer);
        e.all_emotes = true;
        assert!(l.admit(&e, 7_000, None).is_ok());
    }

    #[test]
    fn delete_leaves_history_and_prune_forgets() {
        let mut l = MemoryLedger::new(LedgerRules {
            history_len: 2,
            ..Default::default()
        });
        for (i, u) in ["a", "b", "c"].iter().enumerate() {
            l.admit(&draft(u, Role::Viewer), i as u64, None).expect("ok");
        }
        assert_eq!(l.recent(10, None).len(), 2);
        l.apply(&ModAction::Delete { id: 3 }, 10);
        assert_eq!(l.recent(10, None).len(), 1);
        l.prune(100_000);
        assert!(l.windows.is_empty());
    }
}
