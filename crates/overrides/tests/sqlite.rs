#![cfg(feature = "sqlite")]
mod common;

use common::{config, ov};
use learnloop_overrides::{
    config_checksum, ConfigError, Lever, Overrides, OverridesHandle, Reload,
};
use rusqlite::{params, Connection};

fn store() -> Connection {
    let conn = Connection::open_in_memory().unwrap();
    conn.execute_batch(
        "CREATE TABLE learning_configs(module TEXT, version INTEGER, status TEXT, as_of TEXT,
            run_id TEXT, created_at TEXT, checksum TEXT, config_data TEXT)",
    )
    .unwrap();
    conn
}

fn text(version: i64, size: f64) -> String {
    config(
        version,
        vec![ov("a", "add", &[], &[(Lever::SizeMult, size)], 0.5)],
    )
    .to_json()
}

fn insert(
    conn: &Connection,
    module: &str,
    version: i64,
    status: &str,
    checksum: Option<&str>,
    data: &str,
) {
    conn.execute(
        "INSERT INTO learning_configs VALUES (?1, ?2, ?3, '2024-06-01T00:00:00Z', 'run', '2024-06-01T01:00:00Z', ?4, ?5)",
        params![module, version, status, checksum, data],
    )
    .unwrap();
}

#[test]
fn loads_the_active_row_highest_version_first_and_verifies_it() {
    let conn = store();
    let err = Overrides::from_sqlite(&conn, "pm").unwrap_err();
    assert!(matches!(err, ConfigError::NoActiveConfig { .. }), "{err}");

    insert(&conn, "pm", 1, "superseded", None, &text(1, 0.9));
    insert(
        &conn,
        "pm",
        2,
        "active",
        Some(&config_checksum(&text(2, 1.1))),
        &text(2, 1.1),
    );
    insert(&conn, "pm", 3, "proposed", None, &text(3, 1.2));
    insert(&conn, "other", 9, "active", None, &text(9, 1.3));
    let o = Overrides::from_sqlite(&conn, "pm").unwrap();
    assert_eq!(o.version(), 2);
    assert_eq!(o.checksum(), config_checksum(&text(2, 1.1)));

    // Two active rows (e.g. a crash between activate and supersede): the highest wins.
    insert(
        &conn,
        "pm",
        4,
        "active",
        Some(&config_checksum(&text(4, 1.2))),
        &text(4, 1.2),
    );
    assert_eq!(Overrides::from_sqlite(&conn, "pm").unwrap().version(), 4);
}

#[test]
fn a_corrupt_or_mislabelled_row_is_refused_and_the_previous_config_kept() {
    let conn = store();
    insert(
        &conn,
        "pm",
        1,
        "active",
        Some(&config_checksum(&text(1, 1.1))),
        &text(1, 1.1),
    );
    let handle = OverridesHandle::new();
    assert_eq!(
        handle.load_sqlite(&conn, "pm").unwrap(),
        Reload {
            version: 1,
            changed: true
        }
    );
    assert_eq!(
        handle.load_sqlite(&conn, "pm").unwrap(),
        Reload {
            version: 1,
            changed: false
        }
    );

    conn.execute("UPDATE learning_configs SET status = 'superseded'", [])
        .unwrap();
    insert(
        &conn,
        "pm",
        2,
        "active",
        Some("0000000000000000"),
        &text(2, 1.2),
    );
    let err = handle.load_sqlite(&conn, "pm").unwrap_err();
    assert!(
        matches!(err, ConfigError::ChecksumMismatch { version: 2, .. }),
        "{err}"
    );

    conn.execute("DELETE FROM learning_configs WHERE version = 2", [])
        .unwrap();
    // A blank or missing checksum is refused, not a reason to skip the check.
    for blank in [None, Some(""), Some("  ")] {
        insert(&conn, "pm", 3, "active", blank, &text(3, 1.2));
        let err = handle.load_sqlite(&conn, "pm").unwrap_err();
        assert!(
            matches!(err, ConfigError::MissingChecksum { version: 3, .. }),
            "{err}"
        );
        conn.execute("DELETE FROM learning_configs WHERE version = 3", [])
            .unwrap();
    }

    insert(
        &conn,
        "pm",
        3,
        "active",
        Some(&config_checksum(&text(2, 1.2))),
        &text(2, 1.2),
    );
    let err = handle.load_sqlite(&conn, "pm").unwrap_err();
    assert!(
        matches!(
            err,
            ConfigError::RowMismatch {
                row_version: 3,
                data_version: 2,
                ..
            }
        ),
        "{err}"
    );

    assert_eq!(handle.version(), Some(1));
    assert!(
        (handle
            .lookup(common::P, "add", &[("bucket", "mid")])
            .size_mult
            - 1.1)
            .abs()
            < 1e-12
    );
}

#[test]
fn reads_a_database_file_read_only() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let path = dir.join("store.db");
    let _ = std::fs::remove_file(&path);
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE learning_configs(module TEXT, version INTEGER, status TEXT, as_of TEXT,
                run_id TEXT, created_at TEXT, checksum TEXT, config_data TEXT)",
        )
        .unwrap();
        insert(
            &conn,
            "pm",
            5,
            "active",
            Some(&config_checksum(&text(5, 1.1))),
            &text(5, 1.1),
        );
    }
    assert_eq!(
        Overrides::from_sqlite_path(&path, "pm").unwrap().version(),
        5
    );
}
