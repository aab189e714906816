//! `load_transaction`: a first load into a store file runs under a rollback journal and leaves the
//! store in WAL mode, committed or rolled back; an increment, a store another connection has
//! open, and an in-memory store load in their usual mode.

use learnloop_model::strand::RawStrand;
use learnloop_store::{load, load_transaction, strands, StoreError};
use rusqlite::Connection;
use std::path::Path;

fn strand(id: &str) -> RawStrand {
    RawStrand::from_json_line(&format!(
        r#"{{"id":"{id}","kind":"pm_action","created_at":"2026-01-01T00:00:00Z","position_id":"p-{id}","content":{{"scope":{{"bucket":"mid"}}}}}}"#
    ))
    .unwrap()
}

fn strand_count(conn: &Connection) -> i64 {
    conn.query_row("SELECT COUNT(*) FROM ad_strands", [], |r| r.get(0))
        .unwrap()
}

/// Store `ids` with `load_transaction`; the journal mode seen inside the transaction.
fn load_ids(conn: &mut Connection, ids: &[&str]) -> Result<String, StoreError> {
    load_transaction(conn, |tx| {
        for id in ids {
            strands::insert_raw(tx, &strand(id))?;
        }
        load::journal_mode(tx)
    })
}

fn journal_file(db: &Path) -> bool {
    db.with_file_name(format!(
        "{}-journal",
        db.file_name().unwrap().to_string_lossy()
    ))
    .exists()
}

#[test]
fn a_first_load_runs_under_a_rollback_journal_and_the_store_returns_to_wal() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut conn = learnloop_store::open(&db).unwrap();
    assert_eq!(load_ids(&mut conn, &["a", "b"]).unwrap(), "delete");
    assert_eq!(load::journal_mode(&conn).unwrap(), "wal");
    assert!(!journal_file(&db));
    assert_eq!(strand_count(&conn), 2);
    // The next load is an increment: WAL, as every other write.
    assert_eq!(load_ids(&mut conn, &["c"]).unwrap(), "wal");
    drop(conn);
    let reopened = learnloop_store::open_read_only(&db).unwrap();
    assert_eq!(strand_count(&reopened), 3);
    assert_eq!(load::journal_mode(&reopened).unwrap(), "wal");
}

#[test]
fn a_failed_first_load_leaves_the_store_empty_and_in_wal_mode() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut conn = learnloop_store::open(&db).unwrap();
    let failed: Result<(), StoreError> = load_transaction(&mut conn, |tx| {
        strands::insert_raw(tx, &strand("a"))?;
        Err(StoreError::Sql(rusqlite::Error::InvalidQuery))
    });
    assert!(failed.is_err());
    assert_eq!(strand_count(&conn), 0);
    assert_eq!(load::journal_mode(&conn).unwrap(), "wal");
    assert!(!journal_file(&db));
    // Still a first load afterwards.
    assert_eq!(load_ids(&mut conn, &["a"]).unwrap(), "delete");
}

#[test]
fn a_store_another_connection_has_open_is_loaded_in_wal_mode_without_waiting() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut conn = learnloop_store::open(&db).unwrap();
    let reader = learnloop_store::open_read_only(&db).unwrap();
    assert_eq!(strand_count(&reader), 0);
    let started = std::time::Instant::now();
    assert_eq!(load_ids(&mut conn, &["a"]).unwrap(), "wal");
    assert!(started.elapsed() < learnloop_store::BUSY_TIMEOUT / 2);
    assert_eq!(strand_count(&reader), 1);
}

#[test]
fn an_in_memory_store_loads_as_it_is() {
    let mut conn = learnloop_store::open_in_memory().unwrap();
    let mode = load::journal_mode(&conn).unwrap();
    assert_eq!(load_ids(&mut conn, &["a"]).unwrap(), mode);
    assert_eq!(strand_count(&conn), 1);
}

fn cache_kib(conn: &Connection) -> i64 {
    conn.pragma_query_value(None, "cache_size", |r| r.get(0))
        .unwrap()
}

/// An ingest runs under a page cache sized to the store (the load bound for a small one), a first
/// load and an increment alike; the writer's cache is back afterwards, also after a failed load.
#[test]
fn an_ingest_runs_under_the_load_page_cache_and_gives_the_writers_back() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("s.db");
    let mut conn = learnloop_store::open(&db).unwrap();
    let writer = -learnloop_store::WRITE_PAGE_CACHE_MIB * 1024;
    let load_bound = -learnloop_store::LOAD_PAGE_CACHE_MIB * 1024;
    assert_eq!(cache_kib(&conn), writer);
    let failed: Result<(), StoreError> = load_transaction(&mut conn, |tx| {
        assert_eq!(cache_kib(tx), load_bound);
        Err(StoreError::Sql(rusqlite::Error::InvalidQuery))
    });
    assert!(failed.is_err());
    assert_eq!(cache_kib(&conn), writer);
    for id in ["a", "b"] {
        let seen = load_transaction(&mut conn, |tx| {
            strands::insert_raw(tx, &strand(id))?;
            Ok::<_, StoreError>(cache_kib(tx))
        })
        .unwrap();
        assert_eq!(seen, load_bound, "loading {id}");
        assert_eq!(cache_kib(&conn), writer);
    }
    assert_eq!(strand_count(&conn), 2);
}

/// The bound grows with the store at 128 bytes a strand, between 128 MiB and the writer's 1 GiB.
#[test]
fn the_load_page_cache_grows_with_the_store_between_its_bounds() {
    assert_eq!(load::load_page_cache_mib(0), 128);
    // 833,071 strands (the 100k book): 101.7 MiB of indexes' room, below the floor.
    assert_eq!(load::load_page_cache_mib(833_071), 128);
    // 2,000,000 × 128 B = 244.1 MiB.
    assert_eq!(load::load_page_cache_mib(2_000_000), 244);
    assert_eq!(load::load_page_cache_mib(10_000_000), 1024);
    assert_eq!(load::load_page_cache_mib(i64::MAX), 1024);
}
