//! `config list | show | diff | activate | rollback` and `lookup`, against a store seeded with
//! lessons and materialized in-process.

use learnloop_materializer::{materialize, MaterializeOptions};
use learnloop_model::{ActionCategory, LessonRow, LessonStatus, LoopConfig, Timestamp};
use learnloop_store::lessons::upsert_lesson;
use serde_json::Value;
use std::collections::BTreeSet;
mod common;

use common::learnloop;
use std::path::{Path, PathBuf};
use std::process::Output;

const PATTERN: &str = "module=pm|pattern_key=uptrend.S2.add";

/// A store path in a fresh directory that is removed when the returned guard drops.
fn scratch(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::Builder::new()
        .prefix(&format!("learnloop-config-cli-{name}-"))
        .tempdir()
        .unwrap();
    let db = dir.path().join("t.db");
    (dir, db)
}

fn ok_json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("stdout is one JSON document")
}

fn fails_with(o: &Output, needle: &str) {
    assert_eq!(o.status.code(), Some(1), "{o:?}");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains(needle), "stderr lacks {needle:?}: {err}");
}

fn day(n: i64) -> Timestamp {
    Timestamp::parse("2026-03-01T00:00:00Z")
        .unwrap()
        .plus_hours(24.0 * n as f64)
}

fn lesson(
    key: &str,
    scope: &str,
    levers: &str,
    q: f64,
    n: u64,
    created_at: Timestamp,
) -> LessonRow {
    LessonRow {
        lesson_key: key.into(),
        module: "pm".into(),
        pattern_key: PATTERN.into(),
        category: ActionCategory::Add,
        scope_mask: 0,
        scope_values: scope.into(),
        scope_values_hash: 0,
        n_trades: n,
        mean_rr: 0.5,
        edge: 0.4,
        shrunk_edge: 0.35,
        t_stat: Some(4.0),
        p_value: Some(q / 2.0),
        q_value: Some(q),
        half_life_hours: None,
        latent_factor_id: Some(format!("f-{key}")),
        levers: serde_json::from_str(levers).expect("a lever object"),
        status: LessonStatus::Active,
        status_reason: None,
        created_at: Some(created_at),
        confirmed_at: Some(created_at),
        confirmed_n_trades: Some(n),
        confirmed_mean_rr: Some(0.5),
        failed_runs: 0,
        updated_at: created_at,
    }
}

/// Write lessons and materialize them, as the nightly job would.
fn seed(db: &Path, lessons: &[LessonRow], cfg: &LoopConfig, as_of: Timestamp, activate: bool) {
    let mut conn = learnloop_store::open(db).unwrap();
    let tx = conn.transaction().unwrap();
    for l in lessons {
        upsert_lesson(&tx, l).unwrap();
    }
    let opts = MaterializeOptions {
        activate,
        run_id: Some("run-test".into()),
        created_at: learnloop_model::Timestamp::parse("2030-01-01T00:00:00Z").unwrap(),
    };
    materialize(&tx, cfg, as_of, &opts).unwrap();
    tx.commit().unwrap();
}

fn statuses(db: &Path) -> Vec<(i64, String)> {
    let list = ok_json(&learnloop(db, &["config", "list", "--json"]));
    list["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            (
                v["version"].as_i64().unwrap(),
                v["status"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn config_list_show_activate_diff_and_rollback() {
    let (_dir, db) = scratch("lifecycle");
    // Read-only commands do not create a store (a mistyped --db is an error): make an empty one.
    drop(learnloop_store::open(&db).unwrap());
    let cfg = LoopConfig::default();
    let empty = ok_json(&learnloop(&db, &["config", "list", "--json"]));
    assert_eq!(empty["active"], Value::Null);
    assert!(
        String::from_utf8_lossy(&learnloop(&db, &["config", "list"]).stdout).contains("none yet")
    );

    let a = lesson(
        "lk-a",
        r#"{"macro_phase":"Good"}"#,
        r#"{"size_mult":1.2}"#,
        0.01,
        50,
        day(0),
    );
    seed(&db, std::slice::from_ref(&a), &cfg, day(1), false);
    assert_eq!(statuses(&db), [(1, "proposed".to_string())]);
    let list = ok_json(&learnloop(&db, &["config", "list", "--json"]));
    assert_eq!(list["module"], "pm");
    assert_eq!(list["versions"][0]["overrides"], 1);

    let act = ok_json(&learnloop(&db, &["config", "activate", "1", "--json"]));
    assert_eq!(
        (act["version"].as_i64(), act["changed"].as_bool()),
        (Some(1), Some(true))
    );
    let again = learnloop(&db, &["config", "activate", "1"]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already active"));

    let b = lesson(
        "lk-b",
        r#"{"bucket":"mid"}"#,
        r#"{"size_mult":0.8}"#,
        0.02,
        80,
        day(1),
    );
    seed(&db, &[a, b], &cfg, day(2), true);
    assert_eq!(
        statuses(&db),
        [(1, "superseded".to_string()), (2, "active".to_string())]
    );

    let diff = ok_json(&learnloop(&db, &["config", "diff", "1", "2", "--json"]));
    assert_eq!((diff["a"].as_i64(), diff["b"].as_i64()), (Some(1), Some(2)));
    assert_eq!(diff["added"][0]["override_id"], "f-lk-b");
    assert_eq!(diff["added"][0]["levers"]["size_mult"], 0.9);
    assert_eq!(diff["removed"].as_array().unwrap().len(), 0);
    let changed = &diff["changed"][0];
    assert_eq!(changed["override_id"], "f-lk-a");
    let delta = &changed["lever_deltas"][0];
    assert_eq!(delta["lever"], "size_mult");
    assert_eq!(delta["a"], 1.1);
    let step = delta["b"].as_f64().unwrap() - 1.1;
    assert!((step - delta["delta"].as_f64().unwrap()).abs() < 1e-12);
    assert!(step > 0.0 && step <= 0.1 + 1e-9, "rate limited: {step}");
    let human = String::from_utf8(learnloop(&db, &["config", "diff", "1", "2"]).stdout).unwrap();
    assert!(human.contains("1 added, 0 removed, 1 changed"), "{human}");
    assert!(
        human.contains("+ f-lk-b") && human.contains("~ f-lk-a"),
        "{human}"
    );

    let shown = ok_json(&learnloop(&db, &["config", "show", "--json"]));
    assert_eq!(
        (shown["version"].as_i64(), shown["status"].as_str()),
        (Some(2), Some("active"))
    );
    assert_eq!(shown["checksum_ok"], true);
    assert_eq!(shown["config_data"]["version"], 2);
    // Human `show V` is a table: the version's figures, then its overrides, biggest size first.
    let human = String::from_utf8(learnloop(&db, &["config", "show", "1"]).stdout).unwrap();
    assert!(human.starts_with("pm v1\n"), "{human}");
    assert!(human.contains("superseded"), "{human}");
    assert!(
        human.contains("checksum") && human.contains("(ok)"),
        "{human}"
    );
    assert!(human.contains("overrides  1"), "{human}");
    assert!(
        human.contains("uptrend.S2.add") && human.contains("1.100"),
        "{human}"
    );
    let v1 = ok_json(&learnloop(&db, &["config", "show", "1", "--json"]))["config_data"].clone();
    assert_eq!(
        (v1["version"].as_i64(), v1["module"].as_str()),
        (Some(1), Some("pm"))
    );
    let v1_bytes = {
        let conn = learnloop_store::open(&db).unwrap();
        learnloop_store::configs::get_version(&conn, "pm", 1)
            .unwrap()
            .unwrap()
            .config_data
    };

    let rb = ok_json(&learnloop(&db, &["config", "rollback", "--json"]));
    assert_eq!((rb["from"].as_i64(), rb["to"].as_i64()), (Some(2), Some(1)));
    assert_eq!(
        statuses(&db),
        [(1, "active".to_string()), (2, "rolled_back".to_string())]
    );
    {
        let conn = learnloop_store::open(&db).unwrap();
        let active = learnloop_store::configs::active_version(&conn, "pm")
            .unwrap()
            .unwrap();
        assert_eq!(
            active.config_data, v1_bytes,
            "rollback restores the exact bytes"
        );
    }
    let lookup = ok_json(&learnloop(
        &db,
        &[
            "lookup",
            "--pattern",
            PATTERN,
            "--category",
            "add",
            "--scope",
            r#"{"macro_phase":"Good"}"#,
            "--json",
        ],
    ));
    assert_eq!(lookup["config_version"], 1);

    fails_with(
        &learnloop(&db, &["config", "rollback"]),
        "nothing to roll back",
    );
    // A version that does not exist is bad usage, as an unknown lesson key is.
    let missing = learnloop(&db, &["config", "activate", "9"]);
    assert_eq!(missing.status.code(), Some(2), "{missing:?}");
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no config version 9"));
    fails_with(
        &learnloop(&db, &["config", "show", "--module", "other"]),
        "no config versions",
    );
    // A corrupt version is refused before it can reach the PM.
    {
        let conn = learnloop_store::open(&db).unwrap();
        conn.execute(
            "UPDATE learning_configs SET config_data = config_data || ' ' WHERE version = 2",
            [],
        )
        .unwrap();
    }
    fails_with(
        &learnloop(&db, &["config", "activate", "2"]),
        "checksum mismatch",
    );
    assert_eq!(statuses(&db)[0], (1, "active".to_string()));
}

#[test]
fn lookup_prints_the_decision_and_fails_open() {
    let (_dir, db) = scratch("lookup");
    // Read-only commands do not create a store (a mistyped --db is an error): make an empty one.
    drop(learnloop_store::open(&db).unwrap());
    let args = |scope: &str, extra: &[&str]| -> Vec<String> {
        let mut v: Vec<String> = [
            "lookup",
            "--pattern",
            PATTERN,
            "--category",
            "add",
            "--scope",
            scope,
            "--json",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        v.extend(extra.iter().map(|s| s.to_string()));
        v
    };
    let run = |a: Vec<String>| {
        let refs: Vec<&str> = a.iter().map(String::as_str).collect();
        learnloop(&db, &refs)
    };

    // No config yet: unchanged, with the reason.
    let open = ok_json(&run(args("{}", &["--size-frac", "0.4"])));
    assert_eq!(open["config_version"], Value::Null);
    assert_eq!(open["size_mult"], 1.0);
    assert_eq!(
        (
            open["size_frac_before"].as_f64(),
            open["size_frac_after"].as_f64()
        ),
        (Some(0.4), Some(0.4))
    );
    assert!(open["fallback_reason"]
        .as_str()
        .unwrap()
        .contains("no active learning config"));

    // A root lesson (0.9) and a scoped one (1.2); no rate limit, no decay, to check the blend.
    let mut cfg = LoopConfig::default();
    cfg.materialize.max_step = 1.0;
    let root = lesson("lk-root", "{}", r#"{"size_mult":0.9}"#, 0.02, 75, day(1));
    let good = lesson(
        "lk-good",
        r#"{"macro_phase":"Good"}"#,
        r#"{"size_mult":1.2,"entry_aggression_mult":1.1}"#,
        0.01,
        25,
        day(1),
    );
    seed(&db, &[root, good], &cfg, day(1), true);

    let out = ok_json(&run(args(
        r#"{"macro_phase":" Good ","bucket":"mid","micro_phase":null}"#,
        &["--size-frac", "0.5"],
    )));
    let keys: BTreeSet<&str> = out
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "config_version",
            "size_mult",
            "levers",
            "size_frac_before",
            "size_frac_after",
            "matches",
            "fallback_reason"
        ])
    );
    assert_eq!(out["config_version"], 1);
    assert_eq!(out["fallback_reason"], Value::Null);
    let matches = out["matches"].as_array().unwrap();
    assert_eq!(matches.len(), 2);
    let mkeys: BTreeSet<&str> = matches[0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        mkeys,
        BTreeSet::from(["scope", "weight", "levers", "lesson_keys", "factor_id"])
    );
    // Most specific first. weight = confidence · (1 + dims)^1.5, confidence = (1 − q)·n/(n + 25).
    assert_eq!(matches[0]["scope"]["macro_phase"], "Good");
    assert_eq!(matches[0]["lesson_keys"][0], "lk-good");
    assert_eq!(matches[0]["factor_id"], "f-lk-good");
    let w_good = 0.99 * 25.0 / 50.0 * 2f64.powf(1.5);
    let w_root = 0.98 * 75.0 / 100.0;
    assert!((matches[0]["weight"].as_f64().unwrap() - w_good).abs() < 1e-9);
    assert!((matches[1]["weight"].as_f64().unwrap() - w_root).abs() < 1e-9);
    let size_mult = (w_good * 1.2 + w_root * 0.9) / (w_good + w_root);
    assert!((out["size_mult"].as_f64().unwrap() - size_mult).abs() < 1e-9);
    assert_eq!(out["levers"]["size_mult"], out["size_mult"]);
    // Only the scoped override carries it: not diluted by the root one.
    assert_eq!(out["levers"]["entry_aggression_mult"], 1.1);
    assert!((out["size_frac_after"].as_f64().unwrap() - 0.5 * size_mult).abs() < 1e-9);

    // Another regime: only the root applies; without --size-frac the fractions are null.
    let bad = ok_json(&run(args(r#"{"macro_phase":"Bad"}"#, &[])));
    assert_eq!(bad["matches"].as_array().unwrap().len(), 1);
    assert_eq!(bad["size_mult"], 0.9);
    assert_eq!(bad["size_frac_before"], Value::Null);

    // Emergency exits are never resized.
    let exit = ok_json(&run(args(
        r#"{"macro_phase":"Good"}"#,
        &["--size-frac", "0.5", "--decision-type", "emergency_exit"],
    )));
    assert_eq!(exit["size_frac_after"], 0.5);
    assert!(exit["fallback_reason"]
        .as_str()
        .unwrap()
        .contains("emergency"));

    // Human output names the matches; a malformed scope is an error, not a silent fallback.
    let human = String::from_utf8(
        learnloop(
            &db,
            &[
                "lookup",
                "--pattern",
                PATTERN,
                "--category",
                "add",
                "--scope",
                r#"{"macro_phase":"Good"}"#,
            ],
        )
        .stdout,
    )
    .unwrap();
    assert!(
        human.contains("config v1") && human.contains("lk-good"),
        "{human}"
    );
    // A malformed scope is bad usage (SPEC §9): exit 2.
    let bad_scope = learnloop(
        &db,
        &[
            "lookup",
            "--pattern",
            PATTERN,
            "--category",
            "add",
            "--scope",
            "{oops",
        ],
    );
    assert_eq!(bad_scope.status.code(), Some(2), "{bad_scope:?}");
    assert!(String::from_utf8_lossy(&bad_scope.stderr).contains("--scope"));
}
