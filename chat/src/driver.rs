//! The room driver: one tokio task per loaded room per node, owning the pure [`Room`], the
//! embedded ledger (or a handle to the Redis one) and the room's fan-out.
//!
//! Its loop takes one input — a socket command, a frame from the bus, the batch deadline, a
//! housekeeping tick — applies it, and executes the room's outputs. Frames from the bus are
//! coalesced for `batch_window` into one WebSocket frame (a `batch` when there are several),
//! rendered and encoded once, and handed to the room's fan-out shards ([`crate::fanout`]),
//! which write it straight into every local socket with a non-blocking write
//! ([`crate::socket::Socket::send`]); a socket that would block queues it in its bounded outbox, and one that
//! falls `outbox_frames` behind is told and closed, so a slow reader never grows memory.
//! Replies go straight into their one socket from here.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::command::{Command, RoomHandle};
use crate::config::ChatConfig;
use crate::fanout::Fanout;
use crate::history::Record;
use crate::ledger::{MemoryLedger, ModAction, Rejection};
use crate::node::{Backend, Node};
use crate::protocol::{ErrorCode, ServerFrame, render_batch, render_history};
use crate::redis_ledger::{LedgerError, RedisLedger};
use crate::room::{ConnId, Input, Output, Room, moderation_notice};
use crate::wire;

const COMMAND_QUEUE: usize = 4096;
const BUS_QUEUE: usize = 8192;

/// Start a room's driver; the node's registry keeps the handle.
pub(crate) fn spawn(node: Arc<Node>, room: String, generation: u64) -> RoomHandle {
    let (commands, rx) = mpsc::channel(COMMAND_QUEUE);
    let handle = RoomHandle { commands, generation };
    tokio::spawn(async move {
        let mut driver = Driver::start(node, room).await;
        driver.run(rx, generation).await;
    });
    handle
}

enum Ledger {
    Memory(Box<MemoryLedger>),
    Redis(RedisLedger),
}

struct Driver {
    node: Arc<Node>,
    id: String,
    room: Room,
    ledger: Ledger,
    /// This node's sockets in the room: fan-out frames through its shards, replies directly.
    fanout: Fanout,
    bus_rx: mpsc::Receiver<String>,
    pending: Vec<String>,
    deadline: Option<Instant>,
    last_flush: Option<Instant>,
    /// Highest id admitted here, so Redis ids stay monotonic across a Redis data loss.
    floor: u64,
    local: u64,
    presence_sent: u64,
    presence_dirty: bool,
}

impl Driver {
    async fn start(node: Arc<Node>, id: String) -> Self {
        let (bus_tx, bus_rx) = mpsc::channel(BUS_QUEUE);
        node.bus.subscribe(&id, bus_tx).await;
        let mut room = Room::new(id.clone(), node.config.room.clone());
        let ledger = match &node.backend {
            Backend::Memory => {
                let mut ledger = MemoryLedger::new(node.config.ledger);
                let archive = node.archive.clone();
                let (rid, len) = (id.clone(), node.config.ledger.history_len);
                match tokio::task::spawn_blocking(move || archive.load_room(&rid, len)).await {
                    Ok(Ok(s)) => ledger.restore(s.last_id, s.recent, s.sanctions, s.modes),
                    Ok(Err(e)) => tracing::error!(error = %e, room = %id, "chat room restore failed"),
                    Err(e) => tracing::error!(error = %e, room = %id, "chat room restore panicked"),
                }
                room.handle(now_ms(), Input::Modes(ledger.modes()));
                Ledger::Memory(Box::new(ledger))
            }
            Backend::Redis(l) => {
                match l.modes(&id).await {
                    Ok(m) => room.handle(now_ms(), Input::Modes(m)),
                    Err(e) => tracing::warn!(error = %e, room = %id, "chat modes unavailable"),
                }
                Ledger::Redis(l.clone())
            }
        };
        Driver {
            fanout: Fanout::new(node.clone()),
            node,
            id,
            room,
            ledger,
            bus_rx,
            pending: Vec::new(),
            deadline: None,
            last_flush: None,
            floor: 0,
            local: 0,
            presence_sent: 0,
            presence_dirty: false,
        }
    }

    async fn run(&mut self, mut commands: mpsc::Receiver<Command>, generation: u64) {
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut idle_since: Option<Instant> = None;
        let mut last_prune = Instant::now();
        loop {
            tokio::select! {
                biased;
                frame = self.bus_rx.recv() => {
                    let Some(frame) = frame else { continue };
                    self.on_bus(frame);
                }
                _ = sleep_until(self.deadline), if self.deadline.is_some() => self.flush(),
                cmd = commands.recv() => {
                    let Some(cmd) = cmd else { return };
                    self.on_command(cmd).await;
                }
                _ = tick.tick() => {
                    self.presence().await;
                    if last_prune.elapsed() > Duration::from_secs(10) {
                        last_prune = Instant::now();
                        if let Ledger::Memory(l) = &mut self.ledger {
                            l.prune(now_ms());
                        }
                    }
                    if self.room.local_count() > 0 {
                        idle_since = None;
                    } else {
                        let since = *idle_since.get_or_insert_with(Instant::now);
                        if since.elapsed() >= self.node.config.room_idle
                            && self.node.try_unload(&self.id, generation, || commands.is_empty())
                        {
                            tracing::debug!(room = %self.id, "chat room unloaded");
                            return;
                        }
                    }
                }
            }
        }
    }

    fn on_bus(&mut self, frame: String) {
        if frame.starts_with(r#"{"type":"modes""#)
            && let Ok(ServerFrame::Modes { modes, .. }) = serde_json::from_str(&frame)
        {
            self.room.handle(now_ms(), Input::Modes(modes));
        }
        self.pending.push(frame);
        if self.deadline.is_some() {
            return;
        }
        let gap = batch_gap(&self.node.config, self.room.local_count());
        let now = Instant::now();
        match self.last_flush.map(|t| t + gap) {
            Some(due) if due > now => self.deadline = Some(due),
            _ => self.flush(),
        }
    }

    fn flush(&mut self) {
        self.deadline = None;
        self.last_flush = Some(Instant::now());
        let frame = match self.pending.len() {
            0 => return,
            1 => self.pending.pop().expect("one pending frame"),
            _ => render_batch(&self.pending),
        };
        self.pending.clear();
        self.node.stats.fanout_frame();
        self.fanout.send(&wire::text(&frame));
    }

    async fn on_command(&mut self, cmd: Command) {
        let now = now_ms();
        let input = match cmd {
            Command::Join {
                conn,
                identity,
                socket,
            } => {
                self.fanout.add(conn, socket);
                Input::Join { conn, identity }
            }
            Command::Leave { conn } => {
                self.fanout.remove(conn);
                Input::Leave { conn }
            }
            Command::Identify { conn, identity } => Input::Identify { conn, identity },
            Command::Frame { conn, frame } => Input::Frame { conn, frame },
        };
        self.room.handle(now, input);
        while let Some(out) = self.room.poll_output() {
            self.execute(now, out).await;
        }
    }

    fn reply(&mut self, conn: ConnId, frame: String) {
        if let Some(socket) = self.fanout.socket(conn) {
            // Refused when its outbox is full: its task closes it as a slow consumer.
            socket.send(&wire::text(&frame), 1);
            self.node.stats.socket_writes(1);
        }
    }

    fn reply_error(&mut self, conn: ConnId, code: ErrorCode, message: String, retry: Option<u64>) {
        self.node.stats.error(code);
        let frame = ServerFrame::Error {
            code,
            message,
            retry_after: retry,
        };
        self.reply(conn, frame.to_json());
    }

    fn rejected(&mut self, conn: ConnId, r: Rejection) {
        self.reply_error(conn, r.code(), r.to_string(), r.retry_after_ms());
    }

    fn unavailable(&mut self, conn: ConnId, e: impl std::fmt::Display) {
        tracing::warn!(room = %self.id, error = %e, "chat ledger unavailable");
        self.reply_error(
            conn,
            ErrorCode::Unavailable,
            "chat is temporarily unavailable; your message was not sent".into(),
            Some(1000),
        );
    }

    async fn execute(&mut self, now: u64, out: Output) {
        match out {
            Output::Reply { conn, frame } => self.reply(conn, frame),
            Output::Admit { conn, draft } => {
                let result = match &mut self.ledger {
                    Ledger::Memory(l) => l
                        .admit(&draft, now, self.node.live_since(&self.id))
                        .map_err(LedgerError::Rejected),
                    Ledger::Redis(l) => l.admit(&self.id, &draft, now, self.floor).await,
                };
                match result {
                    Ok(a) => {
                        self.floor = self.floor.max(a.id);
                        self.node.archive.record(Record::Message {
                            room: self.id.clone(),
                            id: a.id,
                            stream_time: a.stream_time,
                            server_time: now,
                            frame: a.frame.clone(),
                        });
                        self.node.bus.publish_local(&self.id, a.frame);
                        self.node.stats.message();
                        self.room.handle(now, Input::Posted(draft));
                    }
                    Err(LedgerError::Rejected(r)) => self.rejected(conn, r),
                    Err(e @ LedgerError::Unavailable(_)) => self.unavailable(conn, e),
                }
            }
            Output::Moderate { conn, by, action } => {
                let notice = moderation_notice(&by, &action).to_json();
                let result = match &mut self.ledger {
                    Ledger::Memory(l) => {
                        l.apply(&action, now);
                        Ok(())
                    }
                    Ledger::Redis(l) => l.apply(&self.id, &action, &notice).await,
                };
                match result {
                    Ok(()) => {
                        self.archive_action(now, &action);
                        if let ModAction::SetModes(m) = action {
                            self.room.handle(now, Input::Modes(m));
                        }
                        self.node.bus.publish_local(&self.id, notice);
                    }
                    Err(e) => self.unavailable(conn, e),
                }
            }
            Output::History { conn, limit, before } => {
                let result = match &self.ledger {
                    Ledger::Memory(l) => Ok(l.recent(limit, before)),
                    Ledger::Redis(l) => l.recent(&self.id, limit, before).await,
                };
                match result {
                    Ok(messages) => self.reply(conn, render_history(&messages)),
                    Err(e) => self.unavailable(conn, e),
                }
            }
            Output::LocalPresence(n) => {
                self.local = n;
                self.presence_dirty = true;
            }
        }
    }

    fn archive_action(&self, now: u64, action: &ModAction) {
        let room = self.id.clone();
        let record = match action {
            ModAction::Delete { id } => Record::Deleted { room, id: *id },
            ModAction::Ban { user_id, .. } => Record::Sanction {
                room,
                user_id: user_id.clone(),
                until_ms: None,
            },
            ModAction::Timeout { user_id, seconds, .. } => Record::Sanction {
                room,
                user_id: user_id.clone(),
                until_ms: Some(now + seconds * 1000),
            },
            ModAction::Unban { user_id } => Record::Unsanction {
                room,
                user_id: user_id.clone(),
            },
            ModAction::SetModes(modes) => Record::Modes { room, modes: *modes },
        };
        self.node.archive.record(record);
    }

    /// Once a second: publish the room's socket count when it changed (all nodes in cluster
    /// mode, refreshed every few seconds so dead nodes age out).
    async fn presence(&mut self) {
        let total = match &self.ledger {
            Ledger::Memory(_) => {
                if !self.presence_dirty {
                    return;
                }
                self.local
            }
            Ledger::Redis(l) => {
                match l
                    .presence(&self.id, &self.node.node_id, self.local, now_ms(), 15_000)
                    .await
                {
                    Ok(t) => t,
                    Err(_) => return,
                }
            }
        };
        self.presence_dirty = false;
        self.room.handle(now_ms(), Input::Presence(total));
        if total != self.presence_sent {
            self.presence_sent = total;
            self.on_bus(ServerFrame::Presence { count: total }.to_json());
        }
    }
}

/// The shortest gap between two fan-out frames of a room with `sockets` local sockets: the
/// configured window, stretched so the room's socket writes stay near `room_writes_per_sec`.
fn batch_gap(config: &ChatConfig, sockets: usize) -> Duration {
    let base = config.batch_window;
    if base.is_zero() {
        return base;
    }
    let budget = f64::from(config.room_writes_per_sec.max(1));
    let stretched = Duration::from_secs_f64(sockets as f64 / budget);
    stretched.min(config.max_batch_window).max(base)
}

/// Wall clock in ms since the epoch: the time rooms and ledgers are driven with.
fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_gap_grows_with_the_room_between_its_bounds() {
        let config = ChatConfig::default();
        let ms = |n| batch_gap(&config, n).as_secs_f64() * 1000.0;
        // Small rooms: the configured window.
        assert_eq!(ms(1), 10.0);
        assert_eq!(ms(1_000), 10.0);
        // 100,000 writes/s: 6,000 sockets get a frame every 60 ms at most.
        assert!((ms(6_000) - 60.0).abs() < 1e-9);
        // Never beyond the ceiling.
        assert_eq!(ms(10_000), 100.0);
        assert_eq!(ms(1_000_000), 100.0);
        // No batching stays no batching.
        let none = ChatConfig {
            batch_window: Duration::ZERO,
            ..Default::default()
        };
        assert!(batch_gap(&none, 1_000_000).is_zero());
    }
}
