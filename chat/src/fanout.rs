//! A room's fan-out on one node: its sockets split into shards, each written by its own task.
//!
//! The room driver hands every fan-out frame to each shard and goes back to admitting
//! messages; it never waits for socket writes. A shard writes the frame into each of its
//! sockets with one non-blocking write ([`Socket::send`]). Shards run in parallel on the
//! runtime's threads, and a shard that is still writing when more frames arrive writes them
//! all at once next time (back to back in one buffer, one write per socket): when writes are
//! slow a room sends fewer, larger writes instead of falling further behind.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use tokio::sync::mpsc;

use crate::node::Node;
use crate::room::ConnId;
use crate::socket::Socket;

/// Sockets one shard writes at most.
pub(crate) const SHARD_SOCKETS: usize = 1024;

enum ShardMsg {
    Add(ConnId, Arc<Socket>),
    Remove(ConnId),
    /// One encoded WebSocket frame for every socket of the shard.
    Frame(Bytes),
}

struct Shard {
    tx: mpsc::UnboundedSender<ShardMsg>,
    sockets: usize,
}

/// The driver's side: the room's sockets on this node, each with the shard it is in.
pub(crate) struct Fanout {
    node: Arc<Node>,
    shards: Vec<Shard>,
    members: HashMap<ConnId, (Arc<Socket>, usize)>,
}

impl Fanout {
    pub(crate) fn new(node: Arc<Node>) -> Self {
        Fanout {
            node,
            shards: Vec::new(),
            members: HashMap::new(),
        }
    }

    /// Put a socket in the emptiest shard with room, or in a new one.
    pub(crate) fn add(&mut self, conn: ConnId, socket: Arc<Socket>) {
        let home = match self
            .shards
            .iter()
            .enumerate()
            .filter(|(_, s)| s.sockets < SHARD_SOCKETS)
            .min_by_key(|(_, s)| s.sockets)
        {
            Some((i, _)) => i,
            None => {
                let (tx, rx) = mpsc::unbounded_channel();
                tokio::spawn(run_shard(rx, self.node.clone()));
                self.shards.push(Shard { tx, sockets: 0 });
                self.shards.len() - 1
            }
        };
        let shard = &mut self.shards[home];
        shard.sockets += 1;
        let _ = shard.tx.send(ShardMsg::Add(conn, socket.clone()));
        self.members.insert(conn, (socket, home));
    }

    pub(crate) fn remove(&mut self, conn: ConnId) {
        if let Some((_, home)) = self.members.remove(&conn) {
            let shard = &mut self.shards[home];
            shard.sockets -= 1;
            let _ = shard.tx.send(ShardMsg::Remove(conn));
        }
    }

    /// A socket of the room, for a reply to it alone.
    pub(crate) fn socket(&self, conn: ConnId) -> Option<&Arc<Socket>> {
        self.members.get(&conn).map(|(socket, _)| socket)
    }

    /// Hand one encoded frame to every shard that has sockets.
    pub(crate) fn send(&self, frame: &Bytes) {
        for shard in self.shards.iter().filter(|s| s.sockets > 0) {
            let _ = shard.tx.send(ShardMsg::Frame(frame.clone()));
        }
    }
}

/// One shard: apply what the driver sent since the last turn, then write the frames that came
/// with it to every socket, together. Ends when the room's driver goes.
async fn run_shard(mut rx: mpsc::UnboundedReceiver<ShardMsg>, node: Arc<Node>) {
    let mut sockets: HashMap<ConnId, Arc<Socket>> = HashMap::new();
    let mut frames: Vec<Bytes> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                ShardMsg::Add(conn, socket) => {
                    sockets.insert(conn, socket);
                }
                ShardMsg::Remove(conn) => {
                    sockets.remove(&conn);
                }
                ShardMsg::Frame(f) => frames.push(f),
            }
            next = rx.try_recv().ok();
        }
        let count = frames.len();
        let frame = match count {
            0 => continue,
            1 => frames.pop().expect("one frame"),
            _ => {
                let mut all = BytesMut::with_capacity(frames.iter().map(Bytes::len).sum());
                for f in frames.drain(..) {
                    all.extend_from_slice(&f);
                }
                all.freeze()
            }
        };
        // A socket that cannot take it wakes its own task, which closes it and leaves.
        for socket in sockets.values() {
            socket.send(&frame, count);
        }
        node.stats.socket_writes(sockets.len() as u64);
    }
}
