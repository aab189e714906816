//! Crash safety: a `learnloop run` killed (SIGKILL, by its PID) at named points of its work and
//! after varied delays. Afterwards the store opens, `integrity_check` is ok, the active config is
//! the previous one untouched or the new one complete (with its run record, never one without
//! the other), and re-running gives exactly the tables of a run that was never interrupted
//! (every derived and input table, and the config versions, minus the wall-clock columns).

mod common;

use common::*;
use learnloop_store::Connection;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

/// Besides the derived tables: the raw input and the engine's watermarks.
const INPUT_TABLES: &[&str] = &["ad_strands", "meta"];

fn run_args(data: &Path) -> Vec<String> {
    [
        "run",
        "--input",
        data.to_str().unwrap(),
        "--activate",
        "--json",
    ]
    .map(String::from)
    .to_vec()
}

fn run_ok(db: &Path, data: &Path) {
    let args = run_args(data);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    stdout_json(&learnloop(db, &args));
}

/// Everything a re-run must reproduce, as text.
fn fingerprint(db: &Path) -> String {
    let conn = learnloop_store::open(db).unwrap();
    let tables = [learnloop_store::schema::DERIVED_TABLES, INPUT_TABLES].concat();
    let mut text = learnloop_store::export::dump_tables(&conn, &tables).unwrap();
    text.push_str(&rows(
        &conn,
        "SELECT module, version, status, as_of, checksum, config_data FROM learning_configs ORDER BY 1, 2",
    ));
    text.push_str(&rows(
        &conn,
        "SELECT strand_id, reason_code, raw_hash, source FROM quarantine ORDER BY 1, 2, 3",
    ));
    text
}

fn rows(conn: &Connection, sql: &str) -> String {
    let mut out = format!("== {sql}\n");
    for row in learnloop_tests::query_rows(conn, sql) {
        out.push_str(&row);
        out.push('\n');
    }
    out
}

/// The committed state a kill may leave: the store opens, is intact, and its active config is
/// either `previous` exactly or a newer version that loads (checksum, schema) and that the run
/// records (status ok) name. Returns how many runs committed.
fn check_consistent(db: &Path, previous: &(i64, String)) -> usize {
    let conn = learnloop_store::open(db).expect("the store opens after a kill");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    let active = learnloop_overrides::Overrides::from_sqlite(&conn, "pm")
        .expect("the active config loads: complete and checksummed");
    let committed_runs: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM learning_runs WHERE status = 'ok'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    let newest: i64 = conn
        .query_row("SELECT MAX(version) FROM learning_configs", [], |r| {
            r.get(0)
        })
        .unwrap();
    let (prev_version, prev_data) = previous;
    if active.version() == *prev_version {
        let data: String = conn
            .query_row(
                "SELECT config_data FROM learning_configs WHERE version = ?1",
                [prev_version],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(&data, prev_data, "the previous config is intact");
    }
    // A version exists exactly when the run that wrote it is recorded: never one without the other.
    let versions_by_recorded_runs: i64 = conn
        .query_row(
            "SELECT COUNT(*) FROM learning_configs c JOIN learning_runs r ON r.run_id = c.run_id AND r.status = 'ok'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(
        versions_by_recorded_runs, newest,
        "a config version without its run record"
    );
    committed_runs as usize
}

struct Fixture {
    dir: Scratch,
    whole: PathBuf,
    /// A store after the first run (on the first part of the data): the config a crash must keep.
    after_first: PathBuf,
    previous: (i64, String),
    /// Fingerprints of clean histories: first part then whole; and then the whole once more.
    clean_two_runs: String,
    clean_three_runs: String,
}

fn fixture() -> Fixture {
    let dir = scratch("crash");
    // The first two thirds already yield a config (2 overrides); the whole, a different one.
    let whole = demo_file(&dir, 1600);
    let text = std::fs::read_to_string(&whole).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let part = dir.join("part.jsonl");
    std::fs::write(&part, lines[..lines.len() * 2 / 3].join("\n") + "\n").unwrap();

    let after_first = dir.join("after_first.db");
    run_ok(&after_first, &part);
    let conn = learnloop_store::open(&after_first).unwrap();
    let previous: (i64, String) = conn
        .query_row(
            "SELECT version, config_data FROM learning_configs WHERE status = 'active'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("the first run activates a config");
    drop(conn);

    let clean = dir.join("clean.db");
    std::fs::copy(&after_first, &clean).unwrap();
    run_ok(&clean, &whole);
    let clean_two_runs = fingerprint(&clean);
    run_ok(&clean, &whole);
    let clean_three_runs = fingerprint(&clean);
    Fixture {
        dir,
        whole,
        after_first,
        previous,
        clean_two_runs,
        clean_three_runs,
    }
}

enum KillAt {
    Point(&'static str),
    After(Duration),
}

/// Run `learnloop ARGS` on `db` and SIGKILL it (its own PID) at `at`.
fn kill_at(db: &Path, args: &[String], at: KillAt) {
    let mut cmd = learnloop_command(db);
    cmd.args(args)
        .stdin(Stdio::piped()) // held open: a paused command waits on it until killed
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let KillAt::Point(point) = at {
        cmd.env("LEARNLOOP_PAUSE_AT", point);
    }
    let mut child = cmd.spawn().unwrap();
    match at {
        KillAt::Point(point) => {
            let mut line = String::new();
            BufReader::new(child.stderr.take().unwrap())
                .read_line(&mut line)
                .unwrap();
            assert_eq!(line.trim(), format!("learnloop: paused at {point}"));
        }
        KillAt::After(delay) => std::thread::sleep(delay),
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Start the second run on a copy of the first run's store and kill it; then check, re-run,
/// and compare with the clean history that matches what had committed.
fn kill_and_recover(f: &Fixture, name: &str, at: KillAt) {
    let db = f.dir.join(format!("{name}.db"));
    std::fs::copy(&f.after_first, &db).unwrap();
    kill_at(&db, &run_args(&f.whole), at);

    let committed = check_consistent(&db, &f.previous);
    assert!((1..=2).contains(&committed), "{name}: {committed} runs");
    run_ok(&db, &f.whole);
    let expected = if committed == 1 {
        &f.clean_two_runs
    } else {
        &f.clean_three_runs
    };
    assert!(
        fingerprint(&db) == *expected,
        "{name}: re-run after the kill differs from a clean history"
    );
}

#[test]
fn a_run_killed_anywhere_leaves_a_consistent_store_and_a_rerun_equals_a_clean_run() {
    let f = fixture();
    for point in [
        "run:after-ingest",
        "run:after-lessons",
        "run:after-materialize",
        "run:before-commit",
        "run:after-commit",
    ] {
        kill_and_recover(&f, point.trim_start_matches("run:"), KillAt::Point(point));
    }
    for ms in [40, 600, 2500] {
        kill_and_recover(
            &f,
            &format!("after-{ms}ms"),
            KillAt::After(Duration::from_millis(ms)),
        );
    }
}

/// `ingest FILE` into a new store, killed at `at`; afterwards the store is intact, in WAL mode,
/// and either empty or complete. Returns the strands it holds.
fn kill_first_load(db: &Path, data: &Path, at: KillAt) -> i64 {
    kill_at(db, &["ingest".to_string(), data.display().to_string()], at);
    let conn = learnloop_store::open(db).expect("the store opens after a kill");
    let integrity: String = conn
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(integrity, "ok");
    assert_eq!(learnloop_store::load::journal_mode(&conn).unwrap(), "wal");
    conn.query_row("SELECT COUNT(*) FROM ad_strands", [], |r| r.get(0))
        .unwrap()
}

/// A first load runs under a rollback journal (learnloop_store::load): killed inside it, the
/// new store is left empty or complete, never half-written, and back in WAL mode; loading again
/// gives what a load never interrupted gives. That load, and one made while another connection
/// holds the store open (so in WAL mode), store the same tables.
#[test]
fn a_first_load_killed_leaves_an_empty_or_complete_store_and_equals_a_wal_load() {
    let dir = scratch("first-load");
    let data = demo_file(&dir, 1600);
    let ingest = |db: &Path| {
        let out = learnloop(db, &["ingest", data.to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
    };
    let clean = dir.join("clean.db");
    ingest(&clean);
    let expected = fingerprint(&clean);

    let held = dir.join("held.db");
    let reader = learnloop_store::open(&held).unwrap();
    ingest(&held);
    drop(reader);
    assert!(fingerprint(&held) == expected, "a WAL load differs");

    let whole: i64 = learnloop_store::open(&clean)
        .unwrap()
        .query_row("SELECT COUNT(*) FROM ad_strands", [], |r| r.get(0))
        .unwrap();
    let mut cases = vec![("point".to_string(), KillAt::Point("ingest:before-commit"))];
    for ms in [20, 60, 150] {
        cases.push((
            format!("after-{ms}ms"),
            KillAt::After(Duration::from_millis(ms)),
        ));
    }
    for (name, at) in cases {
        let db = dir.join(format!("{name}.db"));
        let left = kill_first_load(&db, &data, at);
        assert!(
            left == 0 || left == whole,
            "{name}: {left} of {whole} strands"
        );
        if name == "point" {
            assert_eq!(left, 0, "killed before its commit");
        }
        ingest(&db);
        assert!(
            fingerprint(&db) == expected,
            "{name}: a load after the kill differs"
        );
    }
}
