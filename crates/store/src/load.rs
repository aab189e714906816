//! The transaction of an ingest, and how its pages reach the file.
//!
//! A store runs in WAL mode so that the PM can read while a nightly run writes. In that mode every
//! page a transaction writes is written twice: into the write-ahead log at the commit, then by the
//! checkpoint into the database file. For a nightly increment that is a few megabytes; for the
//! first load of a desk's history (hundreds of thousands of strands, half a gigabyte of pages) the
//! second copy was a third of the whole ingest (issue 15, docs/benchmarks.md). A first load
//! therefore runs under a rollback journal: pages beyond the file's size at the start need no
//! journal entry, so they are written once, into the database, and a failed load is still undone
//! (the file is cut back to its old size). This is PostgreSQL's own rule for a table created or
//! truncated in the loading transaction (`wal_level = minimal` skips its WAL).
//!
//! Every load, first or not, also runs under a page cache sized to the store's strand-id indexes
//! (`load_page_cache_mib`) instead of the writer's 1 GiB: only those indexes are revisited, so
//! the rest of the cache would only take fresh memory for pages written once.

use crate::{retry_while_busy, Result, StoreError, BUSY_TIMEOUT};
use rusqlite::{Connection, Transaction};
use std::time::Duration;

/// Run `load` in one transaction and commit it; an error from `load` rolls everything back.
///
/// When the store holds no strands yet (a first load), is a file and no other connection has it
/// open, the transaction runs under a rollback journal with `synchronous = FULL` (the rollback
/// journal's durable setting), and the store is switched back to WAL afterwards, committed or not.
/// Otherwise — an increment, or a store someone else has open — it is an ordinary WAL transaction.
/// The stored data are the same either way; only how the pages reach the file differs. A store
/// file's load runs under a page cache sized to its strand-id indexes ([`load_page_cache_mib`]),
/// and the connection's own bound is restored afterwards.
pub fn load_transaction<T, E>(
    conn: &mut Connection,
    load: impl FnOnce(&Transaction) -> std::result::Result<T, E>,
) -> std::result::Result<T, E>
where
    E: From<StoreError>,
{
    // Read before the journal may be left: nothing may fail between leaving WAL and the load.
    let cache_mib = load_page_cache_mib_of(conn)?;
    let journal_left = is_first_load(conn)? && leave_wal(conn)?;
    if journal_left {
        tracing::debug!("first load: rollback journal instead of the WAL");
    }
    // Under the writer's 1 GiB cache every new page took fresh memory until the commit (a
    // 100k-trade book peaked at ~1.1 GB); a cache sized to the strand-id indexes reuses the
    // buffers and writes the rest to the file as the load goes, no slower (docs/benchmarks.md,
    // twenty-third and -fourth sessions).
    let outcome = match cache_mib {
        Some(mib) => crate::with_page_cache_mib(conn, mib, || commit_load(conn, load)),
        None => commit_load(conn, load),
    };
    if journal_left {
        if let Err(e) = return_to_wal(conn) {
            // The load itself is settled (committed or rolled back); the next writer's open sets
            // WAL again, so this is worth a warning, not a failed load.
            tracing::warn!(error = %e, "could not switch the store back to WAL mode after a first load");
        }
    }
    outcome
}

fn commit_load<T, E>(
    conn: &Connection,
    load: impl FnOnce(&Transaction) -> std::result::Result<T, E>,
) -> std::result::Result<T, E>
where
    E: From<StoreError>,
{
    // Unchecked: `load_transaction` holds the connection mutably, so no other transaction can
    // be open on it.
    let tx = conn.unchecked_transaction().map_err(StoreError::from)?;
    let value = load(&tx)?;
    tx.commit().map_err(StoreError::from)?;
    Ok(value)
}

/// Page cache per stored strand an ingest is given: the two strand-id indexes take ~80 bytes a
/// strand (35 + 31 MB at 833k strands), and the position and time indexes' edges some more.
const LOAD_CACHE_BYTES_PER_STRAND: i64 = 128;

/// The page cache (MiB) an ingest into a store of `stored_strands` runs under: room for its
/// strand-id indexes, at least [`crate::LOAD_PAGE_CACHE_MIB`] (up to ~1 M strands) and at most
/// the writer's [`crate::WRITE_PAGE_CACHE_MIB`] (beyond ~8 M strands).
pub fn load_page_cache_mib(stored_strands: i64) -> i64 {
    let needed = stored_strands.saturating_mul(LOAD_CACHE_BYTES_PER_STRAND) >> 20;
    needed.clamp(crate::LOAD_PAGE_CACHE_MIB, crate::WRITE_PAGE_CACHE_MIB)
}

/// The bound for an ingest on this connection; none for an in-memory or scratch store, whose
/// pages have no file to go to.
fn load_page_cache_mib_of(conn: &Connection) -> Result<Option<i64>> {
    if !has_store_file(conn) {
        return Ok(None);
    }
    // The largest rowid: what the store holds, without counting it (strands are never deleted).
    let stored: i64 =
        conn.query_row("SELECT COALESCE(MAX(rowid), 0) FROM ad_strands", [], |r| {
            r.get(0)
        })?;
    Ok(Some(load_page_cache_mib(stored)))
}

/// Whether the connection's main database is a file (not in memory, not a temporary scratch).
fn has_store_file(conn: &Connection) -> bool {
    conn.path().is_some_and(|path| !path.is_empty())
}

/// No strands stored, a file on disk, in WAL mode (an in-memory or scratch store has nothing to
/// gain, and a store in another mode was put there by someone else).
fn is_first_load(conn: &Connection) -> Result<bool> {
    if !has_store_file(conn) {
        return Ok(false);
    }
    if journal_mode(conn)? != "wal" {
        return Ok(false);
    }
    let empty: bool = conn.query_row("SELECT NOT EXISTS (SELECT 1 FROM ad_strands)", [], |r| {
        r.get(0)
    })?;
    Ok(empty)
}

/// Switch to a rollback journal if no other connection has the store open (leaving WAL needs the
/// only lock on the file). Never waits: another connection means the load stays in WAL mode.
fn leave_wal(conn: &Connection) -> Result<bool> {
    conn.busy_timeout(Duration::ZERO)?;
    let switched =
        conn.pragma_update_and_check(None, "journal_mode", "DELETE", |r| r.get::<_, String>(0));
    conn.busy_timeout(BUSY_TIMEOUT)?;
    match switched {
        Ok(mode) if mode.eq_ignore_ascii_case("delete") => {
            conn.pragma_update(None, "synchronous", "FULL")?;
            Ok(true)
        }
        Ok(_) => Ok(false),
        Err(e) if is_busy(&e) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// Back to WAL and its `synchronous` setting (as `open` configures a store), waiting for a reader
/// that arrived during the load.
fn return_to_wal(conn: &Connection) -> Result<()> {
    retry_while_busy(|| Ok(conn.pragma_update(None, "journal_mode", "WAL")?))?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    Ok(())
}

fn is_busy(e: &rusqlite::Error) -> bool {
    matches!(
        e.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The store's journal mode, lower case (`wal` for a store `open` configured).
pub fn journal_mode(conn: &Connection) -> Result<String> {
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0))?;
    Ok(mode.to_ascii_lowercase())
}
