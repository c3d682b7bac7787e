//! Streams in SQLite, so they survive a restart.
//!
//! [`Db`] is the store, called synchronously on whatever thread holds it. The server never
//! calls it from an async thread: it hands it to a [`Database`], a thread of its own that
//! runs the queries in turn from a bounded queue while async callers await the answers.

mod database;
mod schema;
mod stream_row;

use std::path::Path;

use rusqlite::{Connection, OptionalExtension, params};

use crate::lifecycle::Status;
pub use database::{Database, DbError};
use stream_row::{COLUMNS, ladder_text, row_from, tags_json};
pub use stream_row::{StreamMeta, StreamRow, Visibility};

/// The store: one SQLite connection, called synchronously. The server owns it through a
/// [`Database`] (its own thread); tools and tests may open one directly.
pub struct Db {
    conn: Connection,
}

impl Db {
    /// Open (and migrate) `dir/fanout.db`.
    pub fn open(dir: &Path) -> rusqlite::Result<Db> {
        Self::migrate(Connection::open(dir.join("fanout.db"))?)
    }

    /// A database that lives in memory and ends when it is dropped (tests, throwaway nodes).
    pub fn in_memory() -> rusqlite::Result<Db> {
        Self::migrate(Connection::open_in_memory()?)
    }

    fn migrate(conn: Connection) -> rusqlite::Result<Db> {
        schema::migrate(&conn)?;
        Ok(Db { conn })
    }

    /// Insert a new stream.
    pub fn insert(&self, row: &StreamRow) -> rusqlite::Result<()> {
        let m = &row.meta;
        self.conn.execute(
            &format!(
                "INSERT INTO streams ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)"
            ),
            params![
                row.id,
                m.title,
                row.key_hash,
                row.status.as_str(),
                row.created_at,
                row.updated_at,
                m.category,
                m.language,
                tags_json(&m.tags),
                m.enable_dvr,
                m.low_latency,
                m.visibility.as_str(),
                ladder_text(&m.hls_ladder),
                m.pull_url,
            ],
        )?;
        Ok(())
    }

    /// Replace a stream's metadata. False when there is no such stream.
    pub fn update_meta(&self, id: &str, meta: &StreamMeta, now_ms: i64) -> rusqlite::Result<bool> {
        let n = self.conn.execute(
            "UPDATE streams SET title = ?2, category = ?3, language = ?4, tags = ?5, enable_dvr = ?6,
                 low_latency = ?7, visibility = ?8, updated_at = ?9, hls_ladder = ?10,
                 pull_url = ?11 WHERE id = ?1",
            params![
                id,
                meta.title,
                meta.category,
                meta.language,
                tags_json(&meta.tags),
                meta.enable_dvr,
                meta.low_latency,
                meta.visibility.as_str(),
                now_ms,
                ladder_text(&meta.hls_ladder),
                meta.pull_url,
            ],
        )?;
        Ok(n == 1)
    }

    /// Store a new key hash (the old key stops working). False when there is no such stream.
    pub fn set_key_hash(&self, id: &str, key_hash: &str, now_ms: i64) -> rusqlite::Result<bool> {
        let n = self.conn.execute(
            "UPDATE streams SET key_hash = ?2, updated_at = ?3 WHERE id = ?1",
            params![id, key_hash, now_ms],
        )?;
        Ok(n == 1)
    }

    /// Delete a stream. False when there was no such stream.
    pub fn delete(&self, id: &str) -> rusqlite::Result<bool> {
        // A private stream leaves its id behind, so that what it recorded stays private
        // (`private_ids`) after a restart too.
        self.conn.execute(
            "INSERT OR IGNORE INTO deleted_private (id)
             SELECT id FROM streams WHERE id = ?1 AND visibility = 'private'",
            params![id],
        )?;
        Ok(self
            .conn
            .execute("DELETE FROM streams WHERE id = ?1", params![id])?
            == 1)
    }

    /// Streams in `status` (any when `None`), optionally only public ones and of one category,
    /// newest first, at most `limit`.
    pub fn list(
        &self,
        status: Option<Status>,
        public_only: bool,
        category: Option<&str>,
        limit: usize,
    ) -> rusqlite::Result<Vec<StreamRow>> {
        let conn = &self.conn;
        let mut stmt = conn.prepare(&format!(
            "SELECT {COLUMNS} FROM streams
             WHERE (?1 IS NULL OR status = ?1) AND (?2 = 0 OR visibility = 'public')
               AND (?3 IS NULL OR category = ?3)
             ORDER BY created_at DESC, id LIMIT ?4"
        ))?;
        let rows = stmt.query_map(
            params![
                status.map(Status::as_str),
                public_only,
                category,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            row_from,
        )?;
        rows.collect()
    }

    /// Ids of the private streams (the HLS guard keeps them in memory).
    pub fn private_ids(&self) -> rusqlite::Result<Vec<String>> {
        let conn = &self.conn;
        let mut stmt = conn.prepare(
            "SELECT id FROM streams WHERE visibility = 'private' UNION SELECT id FROM deleted_private",
        )?;
        let rows = stmt.query_map([], |r| r.get(0))?;
        rows.collect()
    }

    /// The stream `id`, created with `title` and no usable stream key when it does not exist
    /// (streams fed from inside the server, like the test pattern).
    pub fn ensure(&self, id: &str, title: &str, now_ms: i64) -> rusqlite::Result<StreamRow> {
        self.conn.execute(
            "INSERT OR IGNORE INTO streams (id, title, key_hash, status, created_at, updated_at)
             VALUES (?1, ?2, '', ?3, ?4, ?4)",
            params![id, title, Status::Created.as_str(), now_ms],
        )?;
        self.get(id)?.ok_or(rusqlite::Error::QueryReturnedNoRows)
    }

    /// One stream.
    pub fn get(&self, id: &str) -> rusqlite::Result<Option<StreamRow>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM streams WHERE id = ?1"),
                params![id],
                row_from,
            )
            .optional()
    }

    /// The streams pulled from a camera (`pull_url` set): (id, url).
    pub fn pulled(&self) -> rusqlite::Result<Vec<(String, String)>> {
        let mut q = self
            .conn
            .prepare("SELECT id, pull_url FROM streams WHERE pull_url IS NOT NULL")?;
        q.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?.collect()
    }

    /// The stream whose key hashes to `key_hash`.
    pub fn find_by_key_hash(&self, key_hash: &str) -> rusqlite::Result<Option<StreamRow>> {
        self.conn
            .query_row(
                &format!("SELECT {COLUMNS} FROM streams WHERE key_hash = ?1"),
                params![key_hash],
                row_from,
            )
            .optional()
    }

    /// Record a status change.
    pub fn set_status(&self, id: &str, status: Status) -> rusqlite::Result<()> {
        self.conn.execute(
            "UPDATE streams SET status = ?2 WHERE id = ?1",
            params![id, status.as_str()],
        )?;
        Ok(())
    }

    /// Keep a stream's peak viewers and total views (the larger of these and what is stored:
    /// a stream that ends twice keeps its best numbers).
    pub fn store_audience(&self, id: &str, peak: u64, total_views: u64) -> rusqlite::Result<()> {
        self.upsert_audience(id, peak, total_views, None)
    }

    /// Keep a stream's viewer record (lifetime sketch and peak) with its total views; the
    /// peak and total never go down.
    pub fn store_audience_record(&self, id: &str, record: &audience::AudienceRecord) -> rusqlite::Result<()> {
        self.upsert_audience(
            id,
            record.peak,
            record.total.count(),
            Some(record.total.registers()),
        )
    }

    /// Raise the stored peak and total to at least these; replace the sketch when one is given.
    fn upsert_audience(
        &self,
        id: &str,
        peak: u64,
        total_views: u64,
        sketch: Option<&[u8]>,
    ) -> rusqlite::Result<()> {
        let clamp = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        self.conn.execute(
            "INSERT INTO stream_audience (id, peak, total_views, sketch) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(id) DO UPDATE SET peak = MAX(peak, excluded.peak),
                 total_views = MAX(total_views, excluded.total_views),
                 sketch = COALESCE(excluded.sketch, sketch)",
            params![id, clamp(peak), clamp(total_views), sketch],
        )?;
        Ok(())
    }

    /// A stream's stored viewer record, if one was kept (and is readable).
    pub fn audience_record(&self, id: &str) -> rusqlite::Result<Option<audience::AudienceRecord>> {
        let row = self
            .conn
            .query_row(
                "SELECT peak, sketch FROM stream_audience WHERE id = ?1 AND sketch IS NOT NULL",
                params![id],
                |r| Ok((r.get::<_, i64>(0)?.max(0) as u64, r.get::<_, Vec<u8>>(1)?)),
            )
            .optional()?;
        Ok(row.and_then(|(peak, sketch)| {
            Some(audience::AudienceRecord {
                total: audience::HyperLogLog::from_registers(&sketch)?,
                peak,
            })
        }))
    }

    /// A stream's stored (peak viewers, total views), if it ended with any.
    pub fn audience(&self, id: &str) -> rusqlite::Result<Option<(u64, u64)>> {
        self.conn
            .query_row(
                "SELECT peak, total_views FROM stream_audience WHERE id = ?1",
                params![id],
                |r| {
                    Ok((
                        r.get::<_, i64>(0)?.max(0) as u64,
                        r.get::<_, i64>(1)?.max(0) as u64,
                    ))
                },
            )
            .optional()
    }

    /// After a restart nothing is live: streams that were live have ended.
    pub fn end_all_live(&self) -> rusqlite::Result<usize> {
        self.conn.execute(
            "UPDATE streams SET status = 'ended' WHERE status IN ('live', 'reconnecting')",
            [],
        )
    }

    /// A trivial query, for readiness checks.
    pub fn ping(&self) -> rusqlite::Result<()> {
        self.conn.query_row("SELECT 1", [], |_| Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!("fanout-db-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir
    }

    #[test]
    fn a_database_from_before_the_stream_fields_is_migrated() {
        let dir = temp_dir("migrate");
        {
            let old = Connection::open(dir.join("fanout.db")).expect("open");
            old.execute_batch(
                "CREATE TABLE streams (id TEXT PRIMARY KEY, title TEXT NOT NULL, key_hash TEXT NOT NULL,
                     status TEXT NOT NULL, created_at INTEGER NOT NULL);
                 INSERT INTO streams VALUES ('old', 'Old stream', 'h', 'ended', 5);",
            )
            .expect("old schema");
        }
        let db = Db::open(&dir).expect("migrates");
        let row = db.get("old").expect("reads").expect("kept");
        assert_eq!(row.meta.title, "Old stream");
        assert_eq!(row.meta.visibility, Visibility::Public);
        assert!(row.meta.enable_dvr && row.meta.low_latency && row.meta.tags.is_empty());
        // Opening again finds the columns there.
        drop(db);
        let db = Db::open(&dir).expect("reopens");
        let mut meta = row.meta.clone();
        meta.tags = vec!["a".into()];
        meta.visibility = Visibility::Private;
        assert!(db.update_meta("old", &meta, 9).expect("updates"));
        assert_eq!(db.get("old").expect("reads").expect("kept").meta, meta);
        assert_eq!(db.private_ids().expect("lists"), ["old"]);
        assert!(db.delete("old").expect("deletes"));
        assert!(!db.delete("old").expect("deletes nothing"));
        // Deleted, it stays private: across a restart too.
        drop(db);
        let db = Db::open(&dir).expect("reopens");
        assert_eq!(db.private_ids().expect("lists"), ["old"]);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
