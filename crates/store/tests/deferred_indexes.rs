//! The typed tables' secondary indexes are dropped for a first (bulk) load and restored exactly,
//! whether the load commits or rolls back; with rows already present nothing is dropped.

use learnloop_model::strand::{RawStrand, TypedStrand};
use learnloop_store::strands;
use rusqlite::Connection;

fn typed_indexes(conn: &Connection) -> Vec<(String, String)> {
    conn.prepare(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL
         AND tbl_name IN ('pm_actions', 'position_closes') ORDER BY name",
    )
    .unwrap()
    .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
    .unwrap()
    .collect::<rusqlite::Result<_>>()
    .unwrap()
}

fn store_action(conn: &Connection, id: &str) {
    let raw = RawStrand::from_json_line(&format!(
        r#"{{"id":"{id}","kind":"pm_action","created_at":"2026-01-01T00:00:00Z","position_id":"p-{id}","content":{{"scope":{{"bucket":"mid"}}}}}}"#
    ))
    .unwrap();
    let TypedStrand::Action(a) = raw.to_typed().unwrap() else {
        panic!("an action")
    };
    strands::upsert_action(conn, &a).unwrap();
}

#[test]
fn a_first_load_drops_the_secondary_indexes_and_restores_them() {
    let mut conn = learnloop_store::open_in_memory().unwrap();
    let before = typed_indexes(&conn);
    assert_eq!(before.len(), 4, "{before:?}");

    let tx = conn.transaction().unwrap();
    let deferred = strands::defer_typed_indexes(&tx).unwrap();
    assert!(typed_indexes(&tx).is_empty());
    store_action(&tx, "a1");
    deferred.restore(&tx).unwrap();
    tx.commit().unwrap();
    assert_eq!(typed_indexes(&conn), before);
    let by_position: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM pm_actions INDEXED BY pm_actions_position WHERE position_id = 'p-a1'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(by_position, 1, "the rebuilt index holds the loaded row");

    // Rows present: nothing is dropped.
    let tx = conn.transaction().unwrap();
    let deferred = strands::defer_typed_indexes(&tx).unwrap();
    assert_eq!(typed_indexes(&tx), before);
    deferred.restore(&tx).unwrap();
    tx.commit().unwrap();
    assert_eq!(typed_indexes(&conn), before);
}

#[test]
fn a_failed_first_load_rolls_the_drop_back() {
    let mut conn = learnloop_store::open_in_memory().unwrap();
    let before = typed_indexes(&conn);
    let tx = conn.transaction().unwrap();
    let _deferred = strands::defer_typed_indexes(&tx).unwrap();
    store_action(&tx, "a1");
    drop(tx); // the load failed: rolled back without restoring
    assert_eq!(typed_indexes(&conn), before);
    let rows: i64 = conn
        .query_row("SELECT COUNT(*) FROM pm_actions", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 0);
}
