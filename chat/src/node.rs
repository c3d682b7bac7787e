//! The node: what every room and socket of one chat process shares — configuration, token
//! verifier, bus, ledger backend, archive, counters — and the registry of loaded rooms.
//!
//! It knows rooms only by their command queue ([`RoomHandle`]); whoever joins a room that is
//! not loaded says how to start it, so the node does not depend on the room driver that
//! depends on it.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use parking_lot::Mutex;
use tokio::sync::{mpsc, watch};

use crate::auth::{Identity, Verifier};
use crate::bus::Bus;
use crate::command::{Command, RoomHandle};
use crate::config::ChatConfig;
use crate::history::Archive;
use crate::redis_ledger::RedisLedger;
use crate::room::ConnId;
use crate::socket::Socket;
use crate::stats::Stats;

/// Where the shared state lives.
#[derive(Debug, Clone)]
pub(crate) enum Backend {
    /// Embedded: each room's ledger in memory, durable bits in the archive.
    Memory,
    /// Cluster: the ledger in Redis.
    Redis(RedisLedger),
}

/// Everything the rooms and sockets of one node share.
#[derive(Debug)]
pub(crate) struct Node {
    pub config: ChatConfig,
    pub verifier: Verifier,
    pub bus: Bus,
    pub backend: Backend,
    pub archive: Archive,
    pub node_id: String,
    pub stats: Stats,
    rooms: Mutex<HashMap<String, RoomHandle>>,
    /// When each stream went live (embedded mode; Redis keeps it in cluster mode).
    live: Mutex<HashMap<String, u64>>,
    /// Private streams (embedded mode; Redis keeps them in cluster mode).
    private: Mutex<HashSet<String>>,
    next_conn: AtomicU64,
    next_generation: AtomicU64,
    shutdown: watch::Sender<bool>,
}

impl Node {
    pub fn new(
        config: ChatConfig,
        verifier: Verifier,
        bus: Bus,
        backend: Backend,
        archive: Archive,
        node_id: String,
    ) -> Self {
        let (shutdown, _) = watch::channel(false);
        Node {
            config,
            verifier,
            bus,
            backend,
            archive,
            node_id,
            stats: Stats::default(),
            rooms: Mutex::default(),
            live: Mutex::default(),
            private: Mutex::default(),
            next_conn: AtomicU64::new(1),
            next_generation: AtomicU64::new(1),
            shutdown,
        }
    }

    pub fn next_conn(&self) -> ConnId {
        self.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        self.shutdown.subscribe()
    }

    /// Tell every socket to close (1001).
    pub fn shut_down(&self) {
        let _ = self.shutdown.send(true);
    }

    /// When the stream went live (embedded mode).
    pub fn live_since(&self, room: &str) -> Option<u64> {
        self.live.lock().get(room).copied()
    }

    /// Record when the stream went live, or that it is not live (embedded mode).
    pub fn set_live_since(&self, room: &str, since_ms: Option<u64>) {
        let mut live = self.live.lock();
        match since_ms {
            Some(ms) => live.insert(room.to_string(), ms),
            None => live.remove(room),
        };
    }

    /// Whether the stream is private (embedded mode).
    pub fn is_private(&self, room: &str) -> bool {
        self.private.lock().contains(room)
    }

    /// Record whether the stream is private (embedded mode).
    pub fn set_private(&self, room: &str, private: bool) {
        let mut set = self.private.lock();
        if private {
            set.insert(room.to_string());
        } else {
            set.remove(room);
        }
    }

    /// Join a room and send the `Join` command, under the registry lock so that a room never
    /// unloads between the two. A room that is not loaded is started with `start(generation)`.
    /// Returns the room's command queue; None when the room is overloaded.
    pub fn join(
        &self,
        room: &str,
        conn: ConnId,
        identity: Option<Identity>,
        socket: Arc<Socket>,
        start: impl FnOnce(u64) -> RoomHandle,
    ) -> Option<mpsc::Sender<Command>> {
        let mut rooms = self.rooms.lock();
        let handle = rooms
            .entry(room.to_string())
            .or_insert_with(|| start(self.next_generation.fetch_add(1, Ordering::Relaxed)))
            .clone();
        handle
            .commands
            .try_send(Command::Join {
                conn,
                identity,
                socket,
            })
            .ok()?;
        Some(handle.commands)
    }

    /// Called by an idle room driver: unload it unless a socket joined meanwhile.
    pub fn try_unload(&self, room: &str, generation: u64, inbox_empty: impl Fn() -> bool) -> bool {
        let mut rooms = self.rooms.lock();
        let ours = rooms.get(room).is_some_and(|h| h.generation == generation);
        if ours && inbox_empty() {
            rooms.remove(room);
            self.bus.unsubscribe(room);
            true
        } else {
            !ours
        }
    }

    /// Rooms loaded on this node.
    pub fn room_count(&self) -> usize {
        self.rooms.lock().len()
    }
}
