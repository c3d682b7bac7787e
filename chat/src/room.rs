//! A chat room on one node, as a pure state machine: no I/O, no clock, no tokio.
//!
//! Feed it [`Input`]s with the current time ([`Room::handle`]), then drain [`Output`]s
//! ([`Room::poll_output`]). It knows the sockets of this node in the room and who they are, runs
//! the filter chain and the permission checks, and turns client frames into work for the driver:
//! replies to one socket, drafts to admit through the ledger, moderation actions, history reads.
//! What is shared between nodes (bans, rate windows, ids) lives in the ledger, not here.

use std::collections::{HashMap, VecDeque};

use crate::auth::Identity;
use crate::filters::{Candidate, FilterChain, FilterConfig, Verdict, all_emotes};
use crate::ledger::{Draft, ModAction};
use crate::protocol::{
    ClientFrame, ErrorCode, MessageBody, MessageKind, Modes, PROTOCOL_VERSION, ServerFrame, UserInfo,
};

/// A socket's id, unique on this node.
pub type ConnId = u64;

/// Longest timeout a moderator may give (two weeks).
pub const MAX_TIMEOUT_SECS: u64 = 14 * 24 * 3600;
/// Longest slow-mode interval (one day).
pub const MAX_SLOW_SECS: u64 = 24 * 3600;
/// Most messages one history request returns.
pub const MAX_HISTORY: usize = 100;
/// Most bits in one cheer.
pub const MAX_BITS: u32 = 100_000;

/// Room settings.
#[derive(Debug, Clone)]
pub struct RoomConfig {
    /// The built-in filters.
    pub filters: FilterConfig,
    /// Messages sent to a socket right after `hello` (0: none).
    pub join_history: usize,
}

impl Default for RoomConfig {
    fn default() -> Self {
        RoomConfig {
            filters: FilterConfig::default(),
            join_history: 50,
        }
    }
}

/// Something that happened to the room.
#[derive(Debug, Clone)]
pub enum Input {
    /// A socket joined, signed in or anonymous.
    Join {
        /// The socket.
        conn: ConnId,
        /// Who, if known.
        identity: Option<Identity>,
    },
    /// A socket left.
    Leave {
        /// The socket.
        conn: ConnId,
    },
    /// A socket proved an identity with an `auth` frame.
    Identify {
        /// The socket.
        conn: ConnId,
        /// Who.
        identity: Identity,
    },
    /// A socket sent a parsed frame.
    Frame {
        /// The socket.
        conn: ConnId,
        /// What it sent.
        frame: ClientFrame,
    },
    /// The room's modes are now these (from the ledger or another node).
    Modes(Modes),
    /// Sockets in the room across all nodes.
    Presence(u64),
    /// The ledger posted this draft (stateful filters learn from it).
    Posted(Draft),
}

/// Work for the driver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Output {
    /// Send this JSON frame to one socket.
    Reply {
        /// The socket.
        conn: ConnId,
        /// The frame.
        frame: String,
    },
    /// Admit this draft through the ledger, then publish it; errors go back to `conn`.
    Admit {
        /// The author's socket.
        conn: ConnId,
        /// The filtered message.
        draft: Draft,
    },
    /// Apply this action through the ledger, then publish the notice.
    Moderate {
        /// The moderator's socket.
        conn: ConnId,
        /// The moderator's user id.
        by: String,
        /// What to do.
        action: ModAction,
    },
    /// Read history and send it to `conn`.
    History {
        /// The socket.
        conn: ConnId,
        /// Most messages.
        limit: usize,
        /// Only ids below.
        before: Option<u64>,
    },
    /// The number of sockets on this node changed.
    LocalPresence(u64),
}

/// One room on one node.
#[derive(Debug)]
pub struct Room {
    id: String,
    config: RoomConfig,
    filters: FilterChain,
    conns: HashMap<ConnId, Option<Identity>>,
    modes: Modes,
    presence: u64,
    out: VecDeque<Output>,
}

impl Room {
    /// A room with no sockets.
    pub fn new(id: impl Into<String>, config: RoomConfig) -> Self {
        Room {
            id: id.into(),
            filters: FilterChain::standard(&config.filters),
            config,
            conns: HashMap::new(),
            modes: Modes::default(),
            presence: 0,
            out: VecDeque::new(),
        }
    }

    /// Add a filter (e.g. a classifier) at the end of the chain.
    pub fn filters_mut(&mut self) -> &mut FilterChain {
        &mut self.filters
    }

    /// Sockets of this node in the room.
    pub fn local_count(&self) -> usize {
        self.conns.len()
    }

    /// Current modes as this room knows them.
    pub fn modes(&self) -> Modes {
        self.modes
    }

    /// Next piece of work, if any.
    pub fn poll_output(&mut self) -> Option<Output> {
        self.out.pop_front()
    }

    /// Apply one input at `now_ms` (wall clock, ms since the epoch).
    pub fn handle(&mut self, now_ms: u64, input: Input) {
        match input {
            Input::Join { conn, identity } => {
                let user = identity.as_ref().map(UserInfo::from);
                self.conns.insert(conn, identity);
                self.presence = self.presence.max(self.conns.len() as u64);
                self.reply(
                    conn,
                    &ServerFrame::Hello {
                        protocol: PROTOCOL_VERSION,
                        room: self.id.clone(),
                        user,
                        modes: self.modes,
                        presence: self.presence,
                        max_chars: self.config.filters.max_chars,
                    },
                );
                if self.config.join_history > 0 {
                    self.out.push_back(Output::History {
                        conn,
                        limit: self.config.join_history,
                        before: None,
                    });
                }
                self.out.push_back(Output::LocalPresence(self.conns.len() as u64));
            }
            Input::Leave { conn } => {
                if self.conns.remove(&conn).is_some() {
                    self.out.push_back(Output::LocalPresence(self.conns.len() as u64));
                }
            }
            Input::Identify { conn, identity } => {
                if let Some(slot) = self.conns.get_mut(&conn) {
                    let user = UserInfo::from(&identity);
                    *slot = Some(identity);
                    self.reply(conn, &ServerFrame::Authenticated { user });
                }
            }
            Input::Frame { conn, frame } => self.on_frame(now_ms, conn, frame),
            Input::Modes(m) => self.modes = m,
            Input::Presence(n) => self.presence = n,
            Input::Posted(draft) => self.filters.posted(&Candidate {
                user_id: &draft.user_id,
                role: draft.role,
                kind: draft.kind,
                text: &draft.text,
                now_ms,
            }),
        }
    }

    fn reply(&mut self, conn: ConnId, frame: &ServerFrame) {
        self.out.push_back(Output::Reply {
            conn,
            frame: frame.to_json(),
        });
    }

    fn error(&mut self, conn: ConnId, code: ErrorCode, message: impl Into<String>) {
        self.reply(conn, &ServerFrame::error(code, message));
    }

    fn on_frame(&mut self, now_ms: u64, conn: ConnId, frame: ClientFrame) {
        let Some(identity) = self.conns.get(&conn) else {
            return;
        };
        let identity = identity.clone();
        match frame {
            ClientFrame::Ping { nonce } => self.reply(
                conn,
                &ServerFrame::Pong {
                    nonce,
                    server_time: now_ms,
                },
            ),
            ClientFrame::History { limit, before } => {
                let limit = (limit.unwrap_or(50) as usize).clamp(1, MAX_HISTORY);
                self.out.push_back(Output::History { conn, limit, before });
            }
            ClientFrame::Auth { .. } => {
                // The socket adapter verifies tokens; one reaching the room is a bug upstream,
                // but harmless: say so instead of panicking.
                self.error(conn, ErrorCode::BadFrame, "auth is handled by the socket");
            }
            ClientFrame::Send { text, kind, bits } => {
                let Some(identity) = self.writable(now_ms, conn, identity) else {
                    return;
                };
                self.on_send(now_ms, conn, &identity, text, kind, bits);
            }
            moderation => {
                let Some(identity) = self.writable(now_ms, conn, identity) else {
                    return;
                };
                if !identity.role.can_moderate() {
                    self.error(conn, ErrorCode::Forbidden, "only moderators may do that");
                    return;
                }
                match self.moderation_action(moderation) {
                    Ok(action) => self.out.push_back(Output::Moderate {
                        conn,
                        by: identity.id,
                        action,
                    }),
                    Err(msg) => self.error(conn, ErrorCode::BadFrame, msg),
                }
            }
        }
    }

    /// The identity of a socket that may write now, or an error reply.
    fn writable(&mut self, now_ms: u64, conn: ConnId, identity: Option<Identity>) -> Option<Identity> {
        match identity {
            None => {
                self.error(
                    conn,
                    ErrorCode::Unauthorized,
                    "sign in to chat: connect with ?token= or send an auth frame",
                );
                None
            }
            Some(i) if i.expires_at_ms <= now_ms => {
                self.error(
                    conn,
                    ErrorCode::Unauthorized,
                    "token expired: send an auth frame with a fresh token",
                );
                None
            }
            Some(i) => Some(i),
        }
    }

    fn on_send(
        &mut self,
        now_ms: u64,
        conn: ConnId,
        identity: &Identity,
        text: String,
        kind: MessageKind,
        bits: Option<u32>,
    ) {
        match (kind, bits) {
            (MessageKind::System, _) => {
                return self.error(conn, ErrorCode::BadFrame, "system messages are server-only");
            }
            (MessageKind::Cheer, Some(b)) if (1..=MAX_BITS).contains(&b) => {}
            (MessageKind::Cheer, _) => {
                return self.error(
                    conn,
                    ErrorCode::BadFrame,
                    format!("a cheer needs bits between 1 and {MAX_BITS}"),
                );
            }
            (_, Some(_)) => {
                return self.error(conn, ErrorCode::BadFrame, "only a cheer carries bits");
            }
            _ => {}
        }
        let verdict = self.filters.check(&Candidate {
            user_id: &identity.id,
            role: identity.role,
            kind,
            text: &text,
            now_ms,
        });
        if let Verdict::Reject(reason) = verdict {
            return self.error(conn, ErrorCode::Rejected, reason);
        }
        let user = UserInfo::from(identity);
        let tail = MessageBody {
            text: &text,
            user: &user,
            kind,
            bits,
            server_time: now_ms,
        }
        .render_tail();
        self.out.push_back(Output::Admit {
            conn,
            draft: Draft {
                user_id: identity.id.clone(),
                role: identity.role,
                kind,
                all_emotes: all_emotes(&text),
                tail,
                text,
            },
        });
    }

    fn moderation_action(&self, frame: ClientFrame) -> Result<ModAction, String> {
        let check_user = |u: &str| {
            if u.is_empty() || u.len() > 256 {
                Err("userId must be 1 to 256 bytes".to_string())
            } else {
                Ok(())
            }
        };
        let reason = |r: Option<String>| r.map(|r| r.chars().take(200).collect::<String>());
        Ok(match frame {
            ClientFrame::Delete { id } => ModAction::Delete { id },
            ClientFrame::Ban { user_id, reason: r } => {
                check_user(&user_id)?;
                ModAction::Ban {
                    user_id,
                    reason: reason(r),
                }
            }
            ClientFrame::Timeout {
                user_id,
                seconds,
                reason: r,
            } => {
                check_user(&user_id)?;
                if !(1..=MAX_TIMEOUT_SECS).contains(&seconds) {
                    return Err(format!("seconds must be 1 to {MAX_TIMEOUT_SECS}"));
                }
                ModAction::Timeout {
                    user_id,
                    seconds,
                    reason: reason(r),
                }
            }
            ClientFrame::Unban { user_id } => {
                check_user(&user_id)?;
                ModAction::Unban { user_id }
            }
            ClientFrame::Slow { seconds } => {
                if seconds > MAX_SLOW_SECS {
                    return Err(format!("seconds must be 0 to {MAX_SLOW_SECS}"));
                }
                ModAction::SetModes(Modes {
                    slow_seconds: seconds,
                    ..self.modes
                })
            }
            ClientFrame::EmoteOnly { enabled } => ModAction::SetModes(Modes {
                emote_only: enabled,
                ..self.modes
            }),
            ClientFrame::SubscribersOnly { enabled } => ModAction::SetModes(Modes {
                subscribers_only: enabled,
                ..self.modes
            }),
            other => return Err(format!("not a moderation frame: {other:?}")),
        })
    }
}

/// The notice published for a moderation action.
pub fn moderation_notice(by: &str, action: &ModAction) -> ServerFrame {
    let by = by.to_string();
    match action {
        ModAction::Delete { id } => ServerFrame::Deleted { id: *id, by },
        ModAction::Ban { user_id, reason } => ServerFrame::Moderation {
            action: "ban".into(),
            user_id: user_id.clone(),
            seconds: None,
            by,
            reason: reason.clone(),
        },
        ModAction::Timeout {
            user_id,
            seconds,
            reason,
        } => ServerFrame::Moderation {
            action: "timeout".into(),
            user_id: user_id.clone(),
            seconds: Some(*seconds),
            by,
            reason: reason.clone(),
        },
        ModAction::Unban { user_id } => ServerFrame::Moderation {
            action: "unban".into(),
            user_id: user_id.clone(),
            seconds: None,
            by,
            reason: None,
        },
        ModAction::SetModes(modes) => ServerFrame::Modes { modes: *modes, by },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Role;
    use crate::ledger::{LedgerRules, MemoryLedger, Rejection};
    use crate::protocol::parse_client_frame;

    fn ident(id: &str, role: Role) -> Identity {
        Identity {
            id: id.into(),
            name: id.into(),
            role,
            badges: vec![],
            color: None,
            expires_at_ms: 10_000_000,
        }
    }

    /// The room plus an embedded ledger, driven the way the driver drives them, in simulated
    /// time. Returns the frames each socket got and the messages published.
    struct Sim {
        room: Room,
        ledger: MemoryLedger,
        replies: Vec<(ConnId, String)>,
        published: Vec<String>,
    }

    impl Sim {
        fn new() -> Self {
            Sim {
                room: Room::new("r", RoomConfig::default()),
                ledger: MemoryLedger::new(LedgerRules::default()),
                replies: vec![],
                published: vec![],
            }
        }

        fn input(&mut self, now: u64, input: Input) {
            self.room.handle(now, input);
            while let Some(out) = self.room.poll_output() {
                match out {
                    Output::Reply { conn, frame } => self.replies.push((conn, frame)),
                    Output::Admit { conn, draft } => match self.ledger.admit(&draft, now, None) {
                        Ok(a) => {
                            self.published.push(a.frame);
                            self.room.handle(now, Input::Posted(draft));
                        }
                        Err(r) => self.replies.push((conn, format!("{:?}", r.code()))),
                    },
                    Output::Moderate { by, action, .. } => {
                        self.ledger.apply(&action, now);
                        self.room.handle(now, Input::Modes(self.ledger.modes()));
                        self.published.push(moderation_notice(&by, &action).to_json());
                    }
                    Output::History { conn, limit, before } => {
                        let h = self.ledger.recent(limit, before);
                        self.replies.push((conn, crate::protocol::render_history(&h)));
                    }
                    Output::LocalPresence(_) => {}
                }
            }
        }

        fn frame(&mut self, now: u64, conn: ConnId, json: &str) {
            let frame = parse_client_frame(json).expect("test frames parse");
            self.input(now, Input::Frame { conn, frame });
        }

        fn last_reply(&self, conn: ConnId) -> &str {
            self.replies
                .iter()
                .rev()
                .find(|(c, _)| *c == conn)
                .map(|(_, f)| f.as_str())
                .unwrap_or("")
        }
    }

    #[test]
    fn hello_then_history_on_join() {
        let mut s = Sim::new();
        s.input(
            0,
            Input::Join {
                conn: 1,
                identity: None,
            },
        );
        assert!(s.replies[0].1.contains(r#""type":"hello","protocol":1"#));
        assert!(s.replies[1].1.contains(r#""type":"history""#));
    }

    #[test]
    fn anonymous_reads_only() {
        let mut s = Sim::new();
        s.input(
            0,
            Input::Join {
                conn: 1,
                identity: None,
            },
        );
        s.frame(1, 1, r#"{"type":"send","text":"hi"}"#);
        assert!(s.last_reply(1).contains("unauthorized"));
        assert!(s.published.is_empty());
        s.input(
            2,
            Input::Identify {
                conn: 1,
                identity: ident("a", Role::Viewer),
            },
        );
        s.frame(3, 1, r#"{"type":"send","text":"hi"}"#);
        assert_eq!(s.published.len(), 1);
    }

    #[test]
    fn rate_limit_and_moderation_in_simulated_time() {
        let mut s = Sim::new();
        s.input(
            0,
            Input::Join {
                conn: 1,
                identity: Some(ident("v", Role::Viewer)),
            },
        );
        s.input(
            0,
            Input::Join {
                conn: 2,
                identity: Some(ident("m", Role::Moderator)),
            },
        );
        s.frame(1000, 1, r#"{"type":"send","text":"one"}"#);
        s.frame(1100, 1, r#"{"type":"send","text":"two"}"#);
        s.frame(1200, 1, r#"{"type":"send","text":"three"}"#);
        assert_eq!(s.last_reply(1), format!("{:?}", ErrorCode::RateLimited));
        assert_eq!(s.published.len(), 2);
        s.frame(2100, 1, r#"{"type":"send","text":"three"}"#);
        assert_eq!(s.published.len(), 3);
        // Viewers may not moderate.
        s.frame(2200, 1, r#"{"type":"ban","userId":"m"}"#);
        assert!(s.last_reply(1).contains("forbidden"));
        s.frame(2300, 2, r#"{"type":"timeout","userId":"v","seconds":5}"#);
        s.frame(3300, 1, r#"{"type":"send","text":"four"}"#);
        assert_eq!(s.last_reply(1), format!("{:?}", ErrorCode::TimedOut));
        s.frame(7400, 1, r#"{"type":"send","text":"four"}"#);
        assert!(s.published.last().is_some_and(|m| m.contains("four")));
        s.frame(7500, 2, r#"{"type":"delete","id":4}"#);
        assert!(
            s.published
                .last()
                .is_some_and(|m| m.contains(r#""type":"deleted","id":4"#))
        );
        assert!(s.ledger.recent(10, None).iter().all(|m| !m.contains("four")));
        s.frame(7600, 2, r#"{"type":"slow","seconds":30}"#);
        assert_eq!(s.room.modes().slow_seconds, 30);
        s.frame(9000, 1, r#"{"type":"send","text":"five"}"#);
        s.frame(11000, 1, r#"{"type":"send","text":"six"}"#);
        assert_eq!(s.last_reply(1), format!("{:?}", ErrorCode::SlowMode));
        assert_eq!(
            s.ledger.admit(
                &Draft {
                    user_id: "v".into(),
                    role: Role::Viewer,
                    kind: MessageKind::Text,
                    text: "x".into(),
                    all_emotes: false,
                    tail: "}".into(),
                },
                12_000,
                None
            ),
            Err(Rejection::SlowMode {
                retry_after_ms: 27_000
            })
        );
    }

    #[test]
    fn cheers_need_bits_and_expired_tokens_cannot_write() {
        let mut s = Sim::new();
        let mut old = ident("o", Role::Viewer);
        old.expires_at_ms = 500;
        s.input(
            0,
            Input::Join {
                conn: 1,
                identity: Some(ident("c", Role::Viewer)),
            },
        );
        s.input(
            0,
            Input::Join {
                conn: 2,
                identity: Some(old),
            },
        );
        s.frame(1000, 1, r#"{"type":"send","text":"yay","kind":"cheer"}"#);
        assert!(s.last_reply(1).contains("bad_frame"));
        s.frame(
            1000,
            1,
            r#"{"type":"send","text":"yay","kind":"cheer","bits":100}"#,
        );
        assert!(s.published.last().is_some_and(|m| m.contains(r#""bits":100"#)));
        s.frame(1000, 2, r#"{"type":"send","text":"hi"}"#);
        assert!(s.last_reply(2).contains("token expired"));
    }
}
