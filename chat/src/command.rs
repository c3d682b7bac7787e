//! What a socket's task tells its room, and the handle a node keeps of a loaded room: its
//! bounded command queue, through which every socket talks to the room's driver.

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::auth::Identity;
use crate::protocol::ClientFrame;
use crate::room::ConnId;
use crate::socket::Socket;

/// Commands from sockets to their room.
#[derive(Debug)]
pub(crate) enum Command {
    Join {
        conn: ConnId,
        identity: Option<Identity>,
        socket: Arc<Socket>,
    },
    Leave {
        conn: ConnId,
    },
    Identify {
        conn: ConnId,
        identity: Identity,
    },
    Frame {
        conn: ConnId,
        frame: ClientFrame,
    },
}

/// What the node's registry holds of a loaded room.
#[derive(Debug, Clone)]
pub(crate) struct RoomHandle {
    pub commands: mpsc::Sender<Command>,
    /// Tells this loading of the room from a later one under the same name.
    pub generation: u64,
}
