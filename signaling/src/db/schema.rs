//! The tables, and the columns older databases gain when they are opened.

use rusqlite::Connection;

/// Columns added after the first release, with their definitions (older databases gain them).
const ADDED_COLUMNS: &[(&str, &str)] = &[
    ("updated_at", "INTEGER NOT NULL DEFAULT 0"),
    ("category", "TEXT"),
    ("language", "TEXT"),
    ("tags", "TEXT NOT NULL DEFAULT '[]'"),
    ("enable_dvr", "INTEGER NOT NULL DEFAULT 1"),
    ("low_latency", "INTEGER NOT NULL DEFAULT 1"),
    ("visibility", "TEXT NOT NULL DEFAULT 'public'"),
    ("hls_ladder", "TEXT"),
    ("pull_url", "TEXT"),
];

/// Columns added to `stream_audience` after its first release.
const ADDED_AUDIENCE_COLUMNS: &[(&str, &str)] = &[
    // The lifetime viewer sketch (HyperLogLog registers) of an in-process counter.
    ("sketch", "BLOB"),
];

/// Add the columns of `added` that `table` lacks (older databases).
fn add_missing_columns(conn: &Connection, table: &str, added: &[(&str, &str)]) -> rusqlite::Result<()> {
    let existing: Vec<String> = conn
        .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))?
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<_>>()?;
    for (name, definition) in added {
        if !existing.iter().any(|c| c == name) {
            conn.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {name} {definition};"))?;
        }
    }
    Ok(())
}

/// Create the tables a new database lacks and add the columns an older one lacks.
pub(super) fn migrate(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(
        "PRAGMA journal_mode=WAL;
             CREATE TABLE IF NOT EXISTS streams (
                 id TEXT PRIMARY KEY,
                 title TEXT NOT NULL,
                 key_hash TEXT NOT NULL,
                 status TEXT NOT NULL,
                 created_at INTEGER NOT NULL
             );
             CREATE TABLE IF NOT EXISTS stream_audience (
                 id TEXT PRIMARY KEY,
                 peak INTEGER NOT NULL,
                 total_views INTEGER NOT NULL
             );
             -- Private streams that were deleted: their recordings and chat stay private.
             CREATE TABLE IF NOT EXISTS deleted_private (id TEXT PRIMARY KEY);",
    )?;
    add_missing_columns(conn, "streams", ADDED_COLUMNS)?;
    add_missing_columns(conn, "stream_audience", ADDED_AUDIENCE_COLUMNS)?;
    conn.execute_batch(
        "CREATE INDEX IF NOT EXISTS streams_status ON streams (status, visibility, category);
         CREATE INDEX IF NOT EXISTS streams_key_hash ON streams (key_hash);",
    )?;
    Ok(())
}
