//! Opening, migrating and writing a store from several connections at once, and reading one
//! that cannot be written.

use learnloop_store::{open, open_read_only, schema, StoreError};
use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// A fresh directory, removed when the guard drops.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("learnloop-store-{name}-"))
        .tempdir()
        .unwrap()
}

#[test]
fn processes_creating_one_new_file_at_once_all_succeed() {
    let scratch_dir = scratch("migrate-race");
    let dir = scratch_dir.path();
    for trial in 0..12 {
        let path = Arc::new(dir.join(format!("t{trial}.db")));
        let start = Arc::new(Barrier::new(4));
        let openers: Vec<_> = (0..4)
            .map(|_| {
                let (path, start) = (Arc::clone(&path), Arc::clone(&start));
                std::thread::spawn(move || {
                    start.wait();
                    open(&path).map(|c| schema::current_version(&c).unwrap())
                })
            })
            .collect();
        for opener in openers {
            let version = opener.join().unwrap();
            assert_eq!(version.unwrap(), schema::latest_version(), "trial {trial}");
        }
    }
}

#[test]
fn a_second_writer_waits_for_the_first_instead_of_failing() {
    let scratch_dir = scratch("writers");
    let dir = scratch_dir.path();
    let path = dir.join("t.db");
    open(&path).unwrap();
    let holding = Arc::new(Barrier::new(2));
    let first = {
        let (path, holding) = (path.clone(), Arc::clone(&holding));
        std::thread::spawn(move || {
            let mut conn = open(&path).unwrap();
            let tx = conn.transaction().unwrap();
            learnloop_store::meta::set(&tx, "writer", "first").unwrap();
            holding.wait();
            std::thread::sleep(Duration::from_millis(400));
            tx.commit().unwrap();
        })
    };
    holding.wait();
    // Read, then write, in one transaction: what every stage does. Deferred, the read snapshot
    // could never be upgraded once the first writer commits ("database is locked").
    let mut conn = open(&path).unwrap();
    let tx = conn.transaction().unwrap();
    let seen = learnloop_store::meta::get(&tx, "writer").unwrap();
    learnloop_store::meta::set(&tx, "writer", "second").unwrap();
    tx.commit().unwrap();
    first.join().unwrap();
    assert_eq!(
        seen.as_deref(),
        Some("first"),
        "the second began after the first"
    );
    assert_eq!(
        learnloop_store::meta::get(&conn, "writer")
            .unwrap()
            .as_deref(),
        Some("second")
    );
}

fn file_bytes(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

#[test]
fn a_missing_store_is_not_created_by_a_read_only_open() {
    let scratch_dir = scratch("missing");
    let dir = scratch_dir.path();
    let path = dir.join("typo.db");
    assert!(matches!(
        open_read_only(&path),
        Err(StoreError::NotFound(_))
    ));
    assert!(!path.exists());
    // An empty file is not a store either, and stays empty.
    std::fs::write(&path, b"").unwrap();
    let err = open_read_only(&path).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert!(file_bytes(&path).is_empty());
}

#[test]
fn a_store_whose_side_files_cannot_be_created_is_still_readable() {
    let scratch_dir = scratch("read-only");
    let dir = scratch_dir.path();
    let path = dir.join("t.db");
    {
        let conn = open(&path).unwrap();
        learnloop_store::meta::set(&conn, "k", "v").unwrap();
    }
    let before = file_bytes(&path);
    assert!(
        !dir.join("t.db-wal").exists(),
        "a clean close removes the WAL"
    );
    // What a read-only mount does to a WAL store: the -shm file cannot be created. (A directory
    // in its place also works for root, whom permissions do not stop.)
    std::fs::create_dir(dir.join("t.db-shm")).unwrap();
    let conn = open_read_only(&path).unwrap();
    assert_eq!(
        learnloop_store::meta::get(&conn, "k").unwrap().as_deref(),
        Some("v")
    );
    assert!(conn
        .execute("INSERT INTO meta (key, value) VALUES ('x', 'y')", [])
        .is_err());
    drop(conn);
    assert_eq!(file_bytes(&path), before, "not one byte written");
}

#[test]
fn tables_without_schema_migrations_are_refused_in_one_line() {
    let scratch_dir = scratch("foreign");
    let dir = scratch_dir.path();
    let path = dir.join("t.db");
    {
        let conn = open(&path).unwrap();
        conn.execute_batch("DROP TABLE schema_migrations").unwrap();
    }
    let err = open(&path).unwrap_err().to_string();
    assert!(err.contains("no schema_migrations table"), "{err}");
    assert!(err.len() < 300, "no SQL in the message: {err}");
    let err = open_read_only(&path).unwrap_err().to_string();
    assert!(err.contains("no schema_migrations table"), "{err}");
}

fn add_action(conn: &learnloop_store::Connection, id: &str, created_at: &str) {
    add_position_action(conn, id, &format!("p-{id}"), created_at);
}

fn add_position_action(
    conn: &learnloop_store::Connection,
    id: &str,
    position: &str,
    created_at: &str,
) {
    use learnloop_model::strand::{RawStrand, TypedStrand};
    let text = serde_json::json!({"id": id, "kind": "pm_action", "position_id": position,
        "created_at": created_at, "content": {}})
    .to_string();
    let typed = RawStrand::from_json_line(&text)
        .unwrap()
        .to_typed()
        .unwrap();
    let TypedStrand::Action(a) = typed else {
        panic!("{typed:?}")
    };
    learnloop_store::strands::upsert_action(conn, &a).unwrap();
}

#[test]
fn the_default_as_of_ignores_one_strand_with_a_wrong_clock() {
    let conn = learnloop_store::open_in_memory().unwrap();
    let add = |id: &str, created_at: &str| add_action(&conn, id, created_at);
    let default = || {
        learnloop_store::strands::default_as_of(&conn)
            .unwrap()
            .map(|t| t.to_rfc3339())
    };
    assert_eq!(default(), None);
    add("a", "2026-03-01T00:00:00Z");
    assert_eq!(default().as_deref(), Some("2026-03-01T00:00:00Z"));
    add("b", "2026-03-01T10:00:00Z");
    add("c", "2026-03-02T09:00:00Z");
    assert_eq!(default().as_deref(), Some("2026-03-02T09:00:00Z"));
    // One strand two years ahead (a plausible year, so validation lets it through).
    add("poison", "2028-01-01T00:00:00Z");
    assert_eq!(default().as_deref(), Some("2026-03-02T09:00:00Z"));
    let as_of = learnloop_model::Timestamp::parse("2026-03-02T09:00:00Z").unwrap();
    assert_eq!(
        learnloop_store::strands::count_created_after(&conn, as_of).unwrap(),
        1
    );
    // A second strand of the same position (its close, or another action: one producer's clock)
    // does not corroborate it.
    add_position_action(&conn, "poison-2", "p-poison", "2027-12-31T23:00:00Z");
    assert_eq!(default().as_deref(), Some("2026-03-02T09:00:00Z"));
    // Another position's data that reaches it does.
    add("d", "2027-12-31T12:00:00Z");
    assert_eq!(default().as_deref(), Some("2028-01-01T00:00:00Z"));
}

#[test]
fn sparse_data_moves_the_as_of_at_most_a_day_past_the_second_latest() {
    let conn = learnloop_store::open_in_memory().unwrap();
    add_action(&conn, "a", "2026-03-01T00:00:00Z");
    add_action(&conn, "b", "2026-03-05T00:00:00Z");
    let t = learnloop_store::strands::default_as_of(&conn)
        .unwrap()
        .unwrap();
    assert_eq!(t.to_rfc3339(), "2026-03-02T00:00:00Z");
}

#[test]
fn reads_in_one_snapshot_do_not_see_a_commit_made_between_them() {
    let scratch_dir = scratch("snapshot");
    let dir = scratch_dir.path();
    let path = dir.join("t.db");
    let writer = open(&path).unwrap();
    learnloop_store::meta::set(&writer, "config", "v1").unwrap();
    let reader = open_read_only(&path).unwrap();
    let (before, after) = learnloop_store::read_snapshot(&reader, |conn| {
        let before = learnloop_store::meta::get(conn, "config")?;
        // A nightly run commits between the status command's first and last read.
        learnloop_store::meta::set(&writer, "config", "v2")?;
        let after = learnloop_store::meta::get(conn, "config")?;
        Ok::<_, StoreError>((before, after))
    })
    .unwrap();
    assert_eq!(
        (before.as_deref(), after.as_deref()),
        (Some("v1"), Some("v1"))
    );
    assert_eq!(
        learnloop_store::meta::get(&reader, "config")
            .unwrap()
            .as_deref(),
        Some("v2"),
        "the next snapshot sees the commit"
    );
}
