//! The SQLite store: schema with versioned migrations, and typed reads and writes for each table.
//! Stages never write SQL of their own; they call these functions inside the caller's transaction.
#![warn(missing_docs)]

pub mod adapter_bins;
pub mod configs;
/// Typed store errors.
pub mod error;
pub mod events;
pub mod export;
pub mod lessons;
pub mod load;
pub mod meta;
#[cfg(feature = "postgres")]
pub mod pg;
mod raw_insert;
pub mod runs;
pub mod schema;
pub mod scopes;
pub mod stats;
pub mod strands;

pub use error::StoreError;
pub use load::load_transaction;
pub use rusqlite::{Connection, Transaction};

use std::path::Path;

/// The result of a store operation.
pub type Result<T> = std::result::Result<T, StoreError>;

/// How long a connection waits for another writer (or a checkpoint) before giving up.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Open (creating if needed) a store for writing and bring its schema up to date.
///
/// Every transaction of the returned connection starts with `BEGIN IMMEDIATE`: a writer takes
/// the write lock before its first read, so two writers queue behind the busy timeout instead of
/// one failing with "database is locked" when its deferred read lock cannot be upgraded.
pub fn open(path: &Path) -> Result<Connection> {
    let mut conn = Connection::open(path).map_err(|e| StoreError::Open {
        path: path.display().to_string(),
        source: e,
    })?;
    configure_waiting(&conn)?;
    schema::migrate(&conn)?;
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    Ok(conn)
}

/// [`open`] a store that must already exist (a command that changes a store but has nothing to
/// add to a new one): a missing file is [`StoreError::NotFound`], not a new empty store.
pub fn open_existing(path: &Path) -> Result<Connection> {
    require_file(path)?;
    open(path)
}

/// A missing store is [`StoreError::NotFound`] (a mistyped `--db`), for the opens that never
/// create one.
fn require_file(path: &Path) -> Result<()> {
    if path.is_file() {
        Ok(())
    } else {
        Err(StoreError::NotFound(path.display().to_string()))
    }
}

/// Open an existing store for reading only: no file is created, nothing is written (no journal
/// mode change, no migration), so it works on a read-only mount and while a writer runs.
///
/// A missing file is [`StoreError::NotFound`]; a file that is not a learnloop store, or whose
/// schema is older or newer than this build's, is refused with the reason.
pub fn open_read_only(path: &Path) -> Result<Connection> {
    require_file(path)?;
    let open_err = |source| StoreError::Open {
        path: path.display().to_string(),
        source,
    };
    let conn = match open_read_only_shared(path) {
        Ok(conn) => conn,
        // A WAL store whose -shm/-wal files cannot be created (read-only directory or mount):
        // nobody can be writing it, so reading it as immutable is exact.
        Err(e) if is_cannot_open(&e) => open_immutable(path).map_err(open_err)?,
        Err(e) => return Err(open_err(e)),
    };
    schema::check_readable(&conn)?;
    Ok(conn)
}

fn open_read_only_shared(path: &Path) -> rusqlite::Result<Connection> {
    use rusqlite::OpenFlags;
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Opening is lazy: the first read is where a missing -shm or a read-only WAL shows up.
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))?;
    Ok(conn)
}

fn open_immutable(path: &Path) -> rusqlite::Result<Connection> {
    use rusqlite::OpenFlags;
    let uri = format!("file:{}?immutable=1", uri_path(path));
    let conn = Connection::open_with_flags(
        uri,
        OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.query_row("SELECT COUNT(*) FROM sqlite_master", [], |_| Ok(()))?;
    Ok(conn)
}

/// Percent-encode the characters that would end or alter a URI path.
fn uri_path(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '%' | '?' | '#' => out.push_str(&format!("%{:02X}", ch as u32)),
            _ => out.push(ch),
        }
    }
    out
}

fn is_cannot_open(e: &rusqlite::Error) -> bool {
    use rusqlite::ErrorCode;
    matches!(
        e.sqlite_error_code(),
        Some(ErrorCode::CannotOpen | ErrorCode::ReadOnly)
    )
}

/// Run `read` inside one read transaction, so that everything it reads comes from one snapshot
/// even while a writer commits (WAL readers see the database as of their first read).
pub fn read_snapshot<T, E: From<StoreError>>(
    conn: &Connection,
    read: impl FnOnce(&Connection) -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    conn.execute_batch("BEGIN DEFERRED")
        .map_err(|e| E::from(StoreError::Sql(e)))?;
    let result = read(conn);
    // A read transaction has nothing to keep: ending it cannot lose work.
    let _ = conn.execute_batch("COMMIT");
    result
}

/// An in-memory store, for tests and replays.
pub fn open_in_memory() -> Result<Connection> {
    let mut conn = Connection::open_in_memory()?;
    configure_waiting(&conn)?;
    schema::migrate(&conn)?;
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    Ok(conn)
}

/// A scratch store in a temporary file that SQLite deletes when the connection closes (on Unix it
/// is unlinked at once, so nothing is left behind even by a killed process). Unlike
/// [`open_in_memory`], only its page cache (`SCRATCH_PAGE_CACHE_MIB`) is held in memory: a
/// replay's copy of a 100k-trade book's inputs and links is gigabytes of pages.
pub fn open_scratch() -> Result<Connection> {
    let mut conn = Connection::open("")?;
    configure_waiting(&conn)?;
    // Nothing in it outlives the process: no durability to pay for.
    conn.pragma_update(None, "synchronous", "OFF")?;
    set_page_cache_mib(&conn, SCRATCH_PAGE_CACHE_MIB)?;
    schema::migrate(&conn)?;
    conn.set_transaction_behavior(rusqlite::TransactionBehavior::Immediate);
    Ok(conn)
}

/// The page cache of a scratch store (see [`open_scratch`]).
pub const SCRATCH_PAGE_CACHE_MIB: i64 = 64;

/// [`configure`], retried while the file is busy (see [`retry_while_busy`]). The pragmas are
/// idempotent.
fn configure_waiting(conn: &Connection) -> Result<()> {
    retry_while_busy(|| configure(conn))
}

/// `attempt` again every 10 ms while it fails with "database is busy", until [`BUSY_TIMEOUT`]:
/// switching a file into WAL mode takes an exclusive lock for which SQLite does not always call
/// the busy handler (several processes creating one store at once, or a reader that arrived
/// during a first load, then see "database is locked" at once).
pub(crate) fn retry_while_busy<T>(mut attempt: impl FnMut() -> Result<T>) -> Result<T> {
    let deadline = std::time::Instant::now() + BUSY_TIMEOUT;
    loop {
        match attempt() {
            Err(StoreError::Sql(rusqlite::Error::SqliteFailure(e, _)))
                if e.code == rusqlite::ErrorCode::DatabaseBusy
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other,
        }
    }
}

/// The page size of a new store: SQLite's largest. Every page written costs a system call or two
/// (the WAL's frame header and page, the checkpoint's read and write), and the bulk writes here —
/// an ingest's strands, a night's stats rows — are hundreds of megabytes: with 64 KiB pages a
/// first load of 416k strands made 8× fewer calls and took ~25 % less time than with 8 KiB
/// (docs/benchmarks.md, issue 15). Point reads (the PM's config lookup) read one page either way.
pub const PAGE_SIZE: i64 = 65536;

/// The page cache of a connection that writes the stats table (what `open` sets).
pub const WRITE_PAGE_CACHE_MIB: i64 = 1024;

/// The page cache of a stage that only streams the stats table once (the lesson stage): pages
/// past it are released (written ones spill to the WAL first), and the memory goes to the stage.
pub const READ_PAGE_CACHE_MIB: i64 = 64;

/// The page cache of the passes that read their inputs once and write their rows in about key
/// order: the link, the aggregate stage and the lesson stage's deep-subset pass. No page is
/// needed twice, so a larger cache only takes fresh memory, page-faulted in, for every page read;
/// under this one the buffers are reused, and written pages beyond it spill to the WAL, which the
/// commit writes anyway. At 100k trades the aggregate's load took 1.6-2.1 s under the 1 GiB write
/// cache and 0.6-1.2 s under 8-64 MiB; a first link of 100k trades peaked at 1.87 GB under 1 GiB
/// and 1.25 GB under this bound (docs/benchmarks.md, twenty-second session).
pub const ONE_PASS_PAGE_CACHE_MIB: i64 = 32;

/// The smallest page cache an ingest runs under (`load_transaction`, which sizes it to the store:
/// `load::load_page_cache_mib`). Its table pages are appended and written once, so a large cache
/// only takes fresh memory for each; but its indexes by strand id (`ad_strands`' key and
/// `pm_actions`' `strand_id`, ~80 bytes a strand together) take inserts in no key order when a
/// producer's ids are random (UUIDs), and must stay cached or each insert re-reads a dropped page.
/// On the 100k book (833k strands) with random ids, a first load took 11.8–14.0 s and 178 MB
/// under 128 MiB, a median of 20.0 s and 79 MB under 32 MiB, and a median of 17.4 s and 1.1 GB
/// under the writer's 1 GiB (docs/benchmarks.md, twenty-fourth session).
pub const LOAD_PAGE_CACHE_MIB: i64 = 128;

/// Bound the connection's page cache to `mib` MiB and release the cached pages above it now,
/// back to the OS: freed on this thread, they would otherwise stay in its heap, where a stage
/// that allocates on worker threads (the lesson stage's tests) never reuses them. Changes no
/// data; within a write transaction, dirty pages above the bound spill to the WAL as the cache
/// needs room.
pub fn set_page_cache_mib(conn: &Connection, mib: i64) -> Result<()> {
    set_cache_size(conn, -mib * 1024).map(drop)
}

/// Run `f` with the connection's page cache bounded to `mib` MiB (as [`set_page_cache_mib`]), then
/// give it back the bound it had, whether `f` succeeded or not (a stage run on a scratch store
/// must not leave it with a writer's cache). An error of `f` wins over one restoring the bound.
pub fn with_page_cache_mib<T, E: From<StoreError>>(
    conn: &Connection,
    mib: i64,
    f: impl FnOnce() -> std::result::Result<T, E>,
) -> std::result::Result<T, E> {
    let previous = set_cache_size(conn, -mib * 1024)?;
    let result = f();
    let restored = set_cache_size(conn, previous);
    let value = result?;
    restored?;
    Ok(value)
}

/// Set `PRAGMA cache_size` (negative: KiB; positive: pages) and return the previous setting,
/// releasing what a smaller bound frees. On failure the previous setting stays (or is put back).
fn set_cache_size(conn: &Connection, size: i64) -> Result<i64> {
    let previous = cache_size(conn)?;
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    conn.pragma_update(None, "cache_size", size)?;
    // Drops the connection's clean cached pages, whatever the bound.
    if let Err(e) = conn.execute_batch("PRAGMA shrink_memory") {
        let _ = conn.pragma_update(None, "cache_size", previous);
        return Err(e.into());
    }
    let bytes = |size: i64| {
        if size < 0 {
            size.saturating_mul(-1024)
        } else {
            size.saturating_mul(page_size)
        }
    };
    // Handing freed heap back to the OS walks the process's heaps: only when the bound shrinks
    // (not when a store is opened, nor when a stage gives a larger bound back).
    if bytes(size) < bytes(previous) {
        learnloop_sys::release_freed_memory();
    }
    Ok(previous)
}

/// The connection's `PRAGMA cache_size` (negative: KiB; positive: pages).
fn cache_size(conn: &Connection) -> Result<i64> {
    Ok(conn.pragma_query_value(None, "cache_size", |r| r.get(0))?)
}

fn configure(conn: &Connection) -> Result<()> {
    // First, so that the pragmas below also wait for a concurrent writer or creator.
    conn.busy_timeout(BUSY_TIMEOUT)?;
    // Only takes effect when the file is created (a store keeps the page size it was made with).
    conn.pragma_update(None, "page_size", PAGE_SIZE)?;
    // A large page cache keeps the b-trees of a nightly write in memory.
    set_page_cache_mib(conn, WRITE_PAGE_CACHE_MIB)?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // WAL lets the PM read the active config while a nightly run writes.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// A text column read in place, borrowed from the row (no copy).
pub(crate) fn text_column<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str> {
    r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
            .into()
    })
}

/// A stored RFC 3339 time (`None` for NULL), a parse error reported as a conversion failure
/// naming `what`.
pub(crate) fn parse_ts(
    text: Option<String>,
    what: &str,
) -> rusqlite::Result<Option<learnloop_model::Timestamp>> {
    text.map(|t| {
        learnloop_model::Timestamp::parse(&t).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("{what}: {e}").into(),
            )
        })
    })
    .transpose()
}

/// The first column of the rows `sql` gives, as text, in the query's order.
pub(crate) fn text_rows(
    conn: &Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<String>> {
    let mut stmt = conn.prepare(sql)?;
    let rows = stmt
        .query_map(params, |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(rows)
}

/// Read a text column into a type that parses from its stored text (statuses, categories), the
/// parse error reported as a conversion failure of that column.
pub(crate) fn parsed_column<T>(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<T>
where
    T: std::str::FromStr,
    T::Err: std::error::Error + Send + Sync + 'static,
{
    let text: String = r.get(idx)?;
    text.parse().map_err(|e: T::Err| {
        rusqlite::Error::FromSqlConversionFailure(idx, rusqlite::types::Type::Text, Box::new(e))
    })
}

/// Bit-cast helpers: masks and hashes are u64 in Rust and INTEGER (i64) in SQLite.
pub fn u64_to_sql(v: u64) -> i64 {
    v as i64
}

/// The `u64` a mask or hash was stored from (bit-cast back).
pub fn u64_from_sql(v: i64) -> u64 {
    v as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scoped_page_cache_gives_back_the_bound_the_connection_had_also_after_a_failure() {
        let scratch = open_scratch().unwrap();
        assert_eq!(
            cache_size(&scratch).unwrap(),
            -SCRATCH_PAGE_CACHE_MIB * 1024
        );
        let seen = with_page_cache_mib(&scratch, 8, || cache_size(&scratch)).unwrap();
        assert_eq!(seen, -8 * 1024);
        assert_eq!(
            cache_size(&scratch).unwrap(),
            -SCRATCH_PAGE_CACHE_MIB * 1024
        );

        // A bound in pages (positive) comes back as pages; the closure's error is the one returned.
        scratch.pragma_update(None, "cache_size", 300).unwrap();
        let failed: std::result::Result<(), StoreError> =
            with_page_cache_mib(&scratch, 2, || Err(rusqlite::Error::InvalidQuery.into()));
        assert!(matches!(
            failed,
            Err(StoreError::Sql(rusqlite::Error::InvalidQuery))
        ));
        assert_eq!(cache_size(&scratch).unwrap(), 300);
    }

    #[test]
    fn rows_a_scoped_page_cache_spills_to_the_wal_are_committed_with_the_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("spill.db");
        let conn = open(&path).unwrap();
        conn.execute_batch("CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB); BEGIN IMMEDIATE;")
            .unwrap();
        let wal = path.with_extension("db-wal");
        let wal_bytes = || std::fs::metadata(&wal).map_or(0, |m| m.len());
        let before = wal_bytes();
        // ~6 MiB of dirty pages under a 1 MiB bound: most must go to the WAL before the commit.
        with_page_cache_mib(&conn, 1, || {
            conn.execute(
                "WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 1500)
                 INSERT INTO t SELECT k, randomblob(4096) FROM n",
                [],
            )
            .map_err(StoreError::from)
        })
        .unwrap();
        assert!(
            wal_bytes() >= before + 4 * 1024 * 1024,
            "the spilled pages are in the WAL before the commit ({} -> {} bytes)",
            before,
            wal_bytes()
        );
        conn.execute_batch("COMMIT").unwrap();
        assert_eq!(cache_size(&conn).unwrap(), -WRITE_PAGE_CACHE_MIB * 1024);
        drop(conn);
        let reopened = open(&path).unwrap();
        let (rows, bytes): (i64, i64) = reopened
            .query_row("SELECT COUNT(*), SUM(length(v)) FROM t", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .unwrap();
        assert_eq!((rows, bytes), (1500, 1500 * 4096));
    }
}
