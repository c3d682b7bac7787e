//! Streams in SQLite, so they survive a restart.

use std::path::Path;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, params};

use crate::lifecycle::Status;

/// A stream as stored.
#[derive(Debug, Clone)]
pub struct StreamRow {
    /// Public id (also the room name).
    pub id: String,
    /// Title.
    pub title: String,
    /// SHA-256 of the stream key.
    pub key_hash: String,
    /// Lifecycle status.
    pub status: Status,
    /// Creation time, ms since the epoch.
    pub created_at: i64,
}

/// The database handle. SQLite calls are short; they run under a mutex on the caller's
/// thread (never on the media path).
#[derive(Clone)]
pub struct Db {
    conn: Arc<Mutex<Connection>>,
}

impl Db {
    /// Open (and migrate) `dir/fanout.db`.
    pub fn open(dir: &Path) -> rusqlite::Result<Db> {
        let conn = Connection::open(dir.join("fanout.db"))?;
        conn.execute_batch(
            "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS streams (
                 id TEXT PRIMARY KEY,
                 title TEXT NOT NULL,
                 key_hash TEXT NOT NULL,
                 status TEXT NOT NULL,
                 created_at INTEGER NOT NULL
             );",
        )?;
        Ok(Db {
            conn: Arc::new(Mutex::new(conn)),
        })
    }

    fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Insert a new stream.
    pub fn insert(&self, row: &StreamRow) -> rusqlite::Result<()> {
        self.conn().execute(
            "INSERT INTO streams (id, title, key_hash, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                row.id,
                row.title,
                row.key_hash,
                row.status.as_str(),
                row.created_at
            ],
        )?;
        Ok(())
    }

    /// The stream `id`, created with `title` and no usable stream key when it does not exist
    /// (streams fed from inside the server, like the test pattern).
    pub fn ensure(&self, id: &str, title: &str, now_ms: i64) -> rusqlite::Result<StreamRow> {
        self.conn().execute(
            "INSERT OR IGNORE INTO streams (id, title, key_hash, status, created_at) VALUES (?1, ?2, '', ?3, ?4)",
            params![id, title, Status::Created.as_str(), now_ms],
        )?;
        self.get(id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
    }

    /// One stream.
    pub fn get(&self, id: &str) -> rusqlite::Result<Option<StreamRow>> {
        self.conn()
            .query_row(
                "SELECT id, title, key_hash, status, created_at FROM streams WHERE id = ?1",
                params![id],
                |r| {
                    Ok(StreamRow {
                        id: r.get(0)?,
                        title: r.get(1)?,
                        key_hash: r.get(2)?,
                        status: Status::parse(&r.get::<_, String>(3)?),
                        created_at: r.get(4)?,
                    })
                },
            )
            .optional()
    }

    /// Record a status change.
    pub fn set_status(&self, id: &str, status: Status) -> rusqlite::Result<()> {
        self.conn().execute(
            "UPDATE streams SET status = ?2 WHERE id = ?1",
            params![id, status.as_str()],
        )?;
        Ok(())
    }

    /// After a restart nothing is live: streams that were live have ended.
    pub fn end_all_live(&self) -> rusqlite::Result<usize> {
        self.conn().execute(
            "UPDATE streams SET status = 'ended' WHERE status IN ('live', 'reconnecting')",
            [],
        )
    }

    /// A trivial query, for readiness checks.
    pub fn ping(&self) -> rusqlite::Result<()> {
        self.conn().query_row("SELECT 1", [], |_| Ok(()))
    }
}
