//! The archive: every message of a stream kept in SQLite (`<data_dir>/chat.sqlite3`) for replay
//! keyed by stream time, plus the embedded ledger's durable state (last id, bans, modes).
//!
//! Writes go through a bounded queue to one writer thread that batches them in transactions,
//! so a room never waits on the disk. Reads (room restore, replay) are blocking calls meant for
//! `spawn_blocking`.

use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};

use parking_lot::{Mutex, MutexGuard};
use rusqlite::{Connection, OptionalExtension, params};

use crate::protocol::Modes;

/// Archive failures.
#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    /// SQLite said no.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The data directory could not be created.
    #[error("data dir: {0}")]
    Io(#[from] std::io::Error),
    /// The writer thread is gone.
    #[error("archive writer stopped")]
    Stopped,
}

/// One change to record.
#[derive(Debug)]
pub enum Record {
    /// A posted message.
    Message {
        /// Room.
        room: String,
        /// Id.
        id: u64,
        /// Ms since live.
        stream_time: Option<u64>,
        /// Ms since the epoch.
        server_time: u64,
        /// The rendered frame.
        frame: String,
    },
    /// A deletion.
    Deleted {
        /// Room.
        room: String,
        /// Id.
        id: u64,
    },
    /// A ban (`until_ms` None) or timeout.
    Sanction {
        /// Room.
        room: String,
        /// Target.
        user_id: String,
        /// End of a timeout; None for a ban.
        until_ms: Option<u64>,
    },
    /// An unban.
    Unsanction {
        /// Room.
        room: String,
        /// Target.
        user_id: String,
    },
    /// New modes.
    Modes {
        /// Room.
        room: String,
        /// Modes.
        modes: Modes,
    },
    /// Reply once everything before it is committed.
    Flush(SyncSender<()>),
}

/// What the embedded ledger restores when a room starts.
#[derive(Debug, Default)]
pub struct RoomSnapshot {
    /// Highest id ever given.
    pub last_id: u64,
    /// Recent messages not deleted, oldest first.
    pub recent: Vec<(u64, String)>,
    /// Bans (None) and timeouts.
    pub sanctions: Vec<(String, Option<u64>)>,
    /// Modes.
    pub modes: Modes,
}

/// Handle to the archive. Clones share the writer and the reader connection.
#[derive(Clone)]
pub struct Archive {
    writer: SyncSender<Record>,
    reader: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Archive {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Archive")
    }
}

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS messages (
    room TEXT NOT NULL, id INTEGER NOT NULL, stream_time INTEGER, server_time INTEGER NOT NULL,
    frame TEXT NOT NULL, deleted INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (room, id));
CREATE INDEX IF NOT EXISTS messages_stream_time ON messages (room, stream_time);
CREATE TABLE IF NOT EXISTS sanctions (
    room TEXT NOT NULL, user_id TEXT NOT NULL, until_ms INTEGER, PRIMARY KEY (room, user_id));
CREATE TABLE IF NOT EXISTS modes (
    room TEXT PRIMARY KEY, slow INTEGER NOT NULL, emote_only INTEGER NOT NULL,
    subscribers_only INTEGER NOT NULL);
";

impl Archive {
    /// Open (or create) `<dir>/chat.sqlite3` and start the writer thread.
    pub fn open(dir: &Path) -> Result<Self, HistoryError> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join("chat.sqlite3");
        let writer_conn = Connection::open(&path)?;
        writer_conn.execute_batch(SCHEMA)?;
        let reader = Connection::open(&path)?;
        let (tx, rx) = sync_channel(16_384);
        std::thread::Builder::new()
            .name("chat-archive".into())
            .spawn(move || write_loop(writer_conn, rx))?;
        Ok(Archive {
            writer: tx,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// Queue a record without blocking. A full queue drops it with a warning: the archive is
    /// behind the disk, and live chat must not wait for it.
    pub fn record(&self, record: Record) {
        match self.writer.try_send(record) {
            Ok(()) => {}
            Err(TrySendError::Full(r)) => {
                tracing::warn!(?r, "chat archive queue full; record dropped");
            }
            Err(TrySendError::Disconnected(_)) => {
                tracing::error!("chat archive writer stopped");
            }
        }
    }

    /// Wait until everything queued so far is committed (blocking).
    pub fn flush(&self) -> Result<(), HistoryError> {
        let (tx, rx) = sync_channel(1);
        self.writer
            .send(Record::Flush(tx))
            .map_err(|_| HistoryError::Stopped)?;
        rx.recv().map_err(|_| HistoryError::Stopped)
    }

    fn reader(&self) -> MutexGuard<'_, Connection> {
        // parking_lot does not poison: a panic while holding the lock leaves the connection
        // usable by the next reader.
        self.reader.lock()
    }

    /// Load a room's durable state (blocking).
    pub fn load_room(&self, room: &str, recent: usize) -> Result<RoomSnapshot, HistoryError> {
        let db = self.reader();
        let last_id: Option<i64> = db.query_row(
            "SELECT MAX(id) FROM messages WHERE room = ?1",
            params![room],
            |r| r.get(0),
        )?;
        let mut stmt = db.prepare(
            "SELECT id, frame FROM messages WHERE room = ?1 AND deleted = 0 ORDER BY id DESC LIMIT ?2",
        )?;
        let mut recent_rows: Vec<(u64, String)> = stmt
            .query_map(params![room, recent as i64], |r| {
                Ok((r.get::<_, i64>(0)? as u64, r.get(1)?))
            })?
            .collect::<Result<_, _>>()?;
        recent_rows.reverse();
        let mut stmt = db.prepare("SELECT user_id, until_ms FROM sanctions WHERE room = ?1")?;
        let sanctions = stmt
            .query_map(params![room], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, Option<i64>>(1)?.map(|v| v as u64),
                ))
            })?
            .collect::<Result<_, _>>()?;
        let modes = db
            .query_row(
                "SELECT slow, emote_only, subscribers_only FROM modes WHERE room = ?1",
                params![room],
                |r| {
                    Ok(Modes {
                        slow_seconds: r.get::<_, i64>(0)? as u64,
                        emote_only: r.get(1)?,
                        subscribers_only: r.get(2)?,
                    })
                },
            )
            .optional()?
            .unwrap_or_default();
        Ok(RoomSnapshot {
            last_id: last_id.unwrap_or(0) as u64,
            recent: recent_rows,
            sanctions,
            modes,
        })
    }

    /// Messages of a room with stream time in `[from_ms, to_ms)`, oldest first, deleted ones
    /// left out (blocking).
    pub fn replay(
        &self,
        room: &str,
        from_ms: u64,
        to_ms: u64,
        limit: usize,
    ) -> Result<Vec<String>, HistoryError> {
        let db = self.reader();
        let mut stmt = db.prepare(
            "SELECT frame FROM messages WHERE room = ?1 AND deleted = 0 AND stream_time >= ?2 \
             AND stream_time < ?3 ORDER BY stream_time, id LIMIT ?4",
        )?;
        let rows = stmt
            .query_map(
                params![
                    room,
                    from_ms as i64,
                    to_ms.min(i64::MAX as u64) as i64,
                    limit as i64
                ],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
        Ok(rows)
    }
}

fn write_loop(mut db: Connection, rx: Receiver<Record>) {
    while let Ok(first) = rx.recv() {
        let mut acks = Vec::new();
        let mut batch = vec![first];
        while batch.len() < 1000 {
            match rx.try_recv() {
                Ok(r) => batch.push(r),
                Err(_) => break,
            }
        }
        if let Err(e) = write_batch(&mut db, batch, &mut acks) {
            tracing::error!(error = %e, "chat archive write failed");
        }
        for ack in acks {
            let _ = ack.send(());
        }
    }
}

fn write_batch(
    db: &mut Connection,
    batch: Vec<Record>,
    acks: &mut Vec<SyncSender<()>>,
) -> Result<(), rusqlite::Error> {
    let tx = db.transaction()?;
    for record in batch {
        match record {
            Record::Message {
                room,
                id,
                stream_time,
                server_time,
                frame,
            } => {
                tx.execute(
                    "INSERT OR REPLACE INTO messages (room, id, stream_time, server_time, frame) \
                     VALUES (?1, ?2, ?3, ?4, ?5)",
                    params![
                        room,
                        id as i64,
                        stream_time.map(|v| v as i64),
                        server_time as i64,
                        frame
                    ],
                )?;
            }
            Record::Deleted { room, id } => {
                tx.execute(
                    "UPDATE messages SET deleted = 1 WHERE room = ?1 AND id = ?2",
                    params![room, id as i64],
                )?;
            }
            Record::Sanction {
                room,
                user_id,
                until_ms,
            } => {
                tx.execute(
                    "INSERT OR REPLACE INTO sanctions (room, user_id, until_ms) VALUES (?1, ?2, ?3)",
                    params![room, user_id, until_ms.map(|v| v as i64)],
                )?;
            }
            Record::Unsanction { room, user_id } => {
                tx.execute(
                    "DELETE FROM sanctions WHERE room = ?1 AND user_id = ?2",
                    params![room, user_id],
                )?;
            }
            Record::Modes { room, modes } => {
                tx.execute(
                    "INSERT OR REPLACE INTO modes (room, slow, emote_only, subscribers_only) \
                     VALUES (?1, ?2, ?3, ?4)",
                    params![
                        room,
                        modes.slow_seconds as i64,
                        modes.emote_only,
                        modes.subscribers_only
                    ],
                )?;
            }
            Record::Flush(ack) => acks.push(ack),
        }
    }
    tx.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_restore_and_replay() {
        let dir = std::env::temp_dir().join(format!("chat-archive-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let a = Archive::open(&dir).expect("open");
        for id in 1..=5u64 {
            a.record(Record::Message {
                room: "r".into(),
                id,
                stream_time: Some(id * 1000),
                server_time: id,
                frame: format!("m{id}"),
            });
        }
        a.record(Record::Deleted {
            room: "r".into(),
            id: 2,
        });
        a.record(Record::Sanction {
            room: "r".into(),
            user_id: "u".into(),
            until_ms: None,
        });
        a.record(Record::Modes {
            room: "r".into(),
            modes: Modes {
                slow_seconds: 3,
                emote_only: true,
                subscribers_only: false,
            },
        });
        a.flush().expect("flush");
        let snap = a.load_room("r", 3).expect("load");
        assert_eq!(snap.last_id, 5);
        assert_eq!(snap.recent.iter().map(|r| r.0).collect::<Vec<_>>(), vec![3, 4, 5]);
        assert_eq!(snap.sanctions, vec![("u".to_string(), None)]);
        assert_eq!(snap.modes.slow_seconds, 3);
        assert_eq!(a.replay("r", 1000, 4000, 10).expect("replay"), vec!["m1", "m3"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
