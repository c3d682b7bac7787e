//! The database actor: one thread owns the [`Db`] and runs queries in the order they were
//! asked for; async callers queue a query and await its answer.
//!
//! SQLite calls block (disk, fsync, the write lock). On a thread of their own they never hold
//! up the tokio threads that serve HTTP and follow the SFU, and the connection needs no lock:
//! only this thread touches it.

use std::thread;

use thiserror::Error;
use tokio::sync::{mpsc, oneshot};

use super::{Db, StreamMeta, StreamRow};
use crate::lifecycle::Status;

/// Queries waiting for the database thread before callers wait to queue more: enough for a
/// burst of API calls, small enough that a stuck disk shows as slow requests, not memory.
const QUEUE: usize = 256;

/// A query, run on the database thread.
type Job = Box<dyn FnOnce(&Db) + Send>;

/// Why a query has no answer.
#[derive(Debug, Error)]
pub enum DbError {
    /// SQLite refused or failed.
    #[error("database: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The database thread is gone (it panicked); nothing more can be stored.
    #[error("the database thread has stopped")]
    Stopped,
}

/// A handle to the database thread. Cheap to clone; the thread ends with the last handle.
#[derive(Clone)]
pub struct Database {
    jobs: mpsc::Sender<Job>,
}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Database").finish_non_exhaustive()
    }
}

impl Database {
    /// Move `db` to a thread of its own.
    pub fn start(db: Db) -> Database {
        let (jobs, mut queue) = mpsc::channel::<Job>(QUEUE);
        thread::Builder::new()
            .name("fanout-db".into())
            .spawn(move || {
                while let Some(job) = queue.blocking_recv() {
                    job(&db);
                }
            })
            .expect("the OS lets a process start one more thread");
        Database { jobs }
    }

    /// Run `query` on the database thread and wait for its answer.
    async fn call<R: Send + 'static>(
        &self,
        query: impl FnOnce(&Db) -> rusqlite::Result<R> + Send + 'static,
    ) -> Result<R, DbError> {
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move |db| {
            // The caller may have given up waiting (a request that timed out): nothing to do.
            let _ = reply.send(query(db));
        });
        self.jobs.send(job).await.map_err(|_| DbError::Stopped)?;
        Ok(answer.await.map_err(|_| DbError::Stopped)??)
    }

    /// See [`Db::insert`].
    pub async fn insert(&self, row: StreamRow) -> Result<(), DbError> {
        self.call(move |db| db.insert(&row)).await
    }

    /// See [`Db::update_meta`].
    pub async fn update_meta(&self, id: &str, meta: StreamMeta, now_ms: i64) -> Result<bool, DbError> {
        let id = id.to_owned();
        self.call(move |db| db.update_meta(&id, &meta, now_ms)).await
    }

    /// See [`Db::set_key_hash`].
    pub async fn set_key_hash(&self, id: &str, key_hash: String, now_ms: i64) -> Result<bool, DbError> {
        let id = id.to_owned();
        self.call(move |db| db.set_key_hash(&id, &key_hash, now_ms)).await
    }

    /// See [`Db::delete`].
    pub async fn delete(&self, id: &str) -> Result<bool, DbError> {
        let id = id.to_owned();
        self.call(move |db| db.delete(&id)).await
    }

    /// See [`Db::list`].
    pub async fn list(
        &self,
        status: Option<Status>,
        public_only: bool,
        category: Option<String>,
        limit: usize,
    ) -> Result<Vec<StreamRow>, DbError> {
        self.call(move |db| db.list(status, public_only, category.as_deref(), limit))
            .await
    }

    /// See [`Db::private_ids`].
    pub async fn private_ids(&self) -> Result<Vec<String>, DbError> {
        self.call(|db| db.private_ids()).await
    }

    /// See [`Db::ensure`].
    pub async fn ensure(&self, id: &str, title: &str, now_ms: i64) -> Result<StreamRow, DbError> {
        let (id, title) = (id.to_owned(), title.to_owned());
        self.call(move |db| db.ensure(&id, &title, now_ms)).await
    }

    /// See [`Db::get`].
    pub async fn get(&self, id: &str) -> Result<Option<StreamRow>, DbError> {
        let id = id.to_owned();
        self.call(move |db| db.get(&id)).await
    }

    /// See [`Db::pulled`].
    pub async fn pulled(&self) -> Result<Vec<(String, String)>, DbError> {
        self.call(|db| db.pulled()).await
    }

    /// See [`Db::find_by_key_hash`].
    pub async fn find_by_key_hash(&self, key_hash: String) -> Result<Option<StreamRow>, DbError> {
        self.call(move |db| db.find_by_key_hash(&key_hash)).await
    }

    /// See [`Db::set_status`].
    pub async fn set_status(&self, id: &str, status: Status) -> Result<(), DbError> {
        let id = id.to_owned();
        self.call(move |db| db.set_status(&id, status)).await
    }

    /// See [`Db::store_audience`].
    pub async fn store_audience(&self, id: &str, peak: u64, total_views: u64) -> Result<(), DbError> {
        let id = id.to_owned();
        self.call(move |db| db.store_audience(&id, peak, total_views))
            .await
    }

    /// See [`Db::store_audience_record`].
    pub async fn store_audience_record(
        &self,
        id: &str,
        record: audience::AudienceRecord,
    ) -> Result<(), DbError> {
        let id = id.to_owned();
        self.call(move |db| db.store_audience_record(&id, &record)).await
    }

    /// See [`Db::audience_record`].
    pub async fn audience_record(&self, id: &str) -> Result<Option<audience::AudienceRecord>, DbError> {
        let id = id.to_owned();
        self.call(move |db| db.audience_record(&id)).await
    }

    /// See [`Db::audience`].
    pub async fn audience(&self, id: &str) -> Result<Option<(u64, u64)>, DbError> {
        let id = id.to_owned();
        self.call(move |db| db.audience(&id)).await
    }

    /// See [`Db::end_all_live`].
    pub async fn end_all_live(&self) -> Result<usize, DbError> {
        self.call(|db| db.end_all_live()).await
    }

    /// See [`Db::ping`].
    pub async fn ping(&self) -> Result<(), DbError> {
        self.call(|db| db.ping()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn queries_run_in_order_on_the_database_thread() {
        let db = Database::start(Db::in_memory().expect("in-memory database"));
        let row = db.ensure("s1", "First", 1).await.expect("created");
        assert_eq!(row.status, Status::Created);
        // Queued one after the other without waiting in between: the write lands first.
        let write = db.set_status("s1", Status::Live);
        let read = db.get("s1");
        let (written, read) = tokio::join!(write, read);
        written.expect("stored");
        assert_eq!(read.expect("read").expect("exists").status, Status::Live);
        let on_thread = db
            .call(|_| Ok(thread::current().name().map(str::to_owned)))
            .await
            .expect("answered");
        assert_eq!(on_thread.as_deref(), Some("fanout-db"));
    }
}
