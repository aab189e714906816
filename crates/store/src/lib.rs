//! The SQLite store: schema with versioned migrations, and typed reads and writes for each table.
//! Stages never write SQL of their own; they call these functions inside the caller's transaction.

pub mod configs;
pub mod error;
pub mod events;
pub mod export;
pub mod lessons;
pub mod meta;
#[cfg(feature = "postgres")]
pub mod pg;
pub mod runs;
pub mod schema;
pub mod stats;
mod stats_view;
pub mod strands;

pub use error::StoreError;
pub use rusqlite::{Connection, Transaction};

use std::path::Path;

pub type Result<T> = std::result::Result<T, StoreError>;

/// Open (creating if needed) a store and bring its schema up to date.
pub fn open(path: &Path) -> Result<Connection> {
    let conn = Connection::open(path).map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        source: e,
    })?;
    configure(&conn)?;
    schema::migrate(&conn)?;
    Ok(conn)
}

/// An in-memory store, for tests and replays.
pub fn open_in_memory() -> Result<Connection> {
    let conn = Connection::open_in_memory()?;
    configure(&conn)?;
    schema::migrate(&conn)?;
    Ok(conn)
}

fn configure(conn: &Connection) -> Result<()> {
    // Larger pages suit the wide stats rows; only takes effect when the file is created.
    conn.pragma_update(None, "page_size", 8192)?;
    // 256 MiB of page cache keeps the b-trees of a nightly write in memory.
    conn.pragma_update(None, "cache_size", -1_048_576)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // WAL lets the PM read the active config while a nightly run writes.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    Ok(())
}

/// Bit-cast helpers: masks and hashes are u64 in Rust and INTEGER (i64) in SQLite.
pub fn u64_to_sql(v: u64) -> i64 {
    v as i64
}

pub fn u64_from_sql(v: i64) -> u64 {
    v as u64
}
