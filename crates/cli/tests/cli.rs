//! The command line contract: exit codes, --json output, --strict, errors that name the problem.

mod common;

use common::{learnloop, scratch, stdout_json};
use std::process::Command;

#[test]
fn demo_then_run_then_status_with_json_and_strict() {
    let dir = scratch("e2e");
    let db = dir.join("t.db");
    let data = dir.join("s.jsonl");
    let demo = learnloop(
        &db,
        &[
            "demo",
            "--out",
            data.to_str().unwrap(),
            "--cycles",
            "300",
            "--json",
        ],
    );
    let truth = stdout_json(&demo);
    assert!(!truth["effects"].as_array().unwrap().is_empty());
    assert!(dir.join("s.jsonl.truth.json").exists());

    // The demo data carries bad lines: --strict ingests the good ones and still fails.
    let strict = learnloop(&db, &["ingest", "--strict", data.to_str().unwrap()]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&strict.stderr).contains("quarantined"));

    let run = stdout_json(&learnloop(
        &db,
        &["run", "--json", "--store-min-trades", "5"],
    ));
    assert!(run["link"]["trades_linked_total"].as_i64().unwrap() > 250);
    assert!(run["aggregate"]["counters"]["rows"].as_u64().unwrap() > 0);

    let status = stdout_json(&learnloop(&db, &["status", "--json"]));
    assert!(status["strands"]["quarantined"].as_i64().unwrap() > 0);
    assert_eq!(status["recent_runs"][0]["status"], "ok");
    assert!(status["quarantine_by_reason"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r[0] == "malformed_json"));

    let csv = learnloop(&db, &["export", "pattern_scope_stats"]);
    assert!(csv.status.success());
    let text = String::from_utf8(csv.stdout).unwrap();
    assert!(text.starts_with("module,pattern_key,action_category,scope_mask,scope_values"));
}

#[test]
fn bad_usage_exits_2_and_failures_exit_1_with_a_reason() {
    let dir = scratch("errors");
    let db = dir.join("t.db");
    assert_eq!(learnloop(&db, &["no-such-command"]).status.code(), Some(2));
    assert_eq!(learnloop(&db, &["run", "--as-of"]).status.code(), Some(2));

    let empty = learnloop(&db, &["run"]);
    assert_eq!(empty.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no strands ingested"));

    let bad_table = learnloop(&db, &["export", "nope"]);
    assert_eq!(bad_table.status.code(), Some(2));
    let message = String::from_utf8_lossy(&bad_table.stderr);
    assert!(
        message.contains("'nope'") && message.contains("pattern_scope_stats"),
        "names the table and the ones there are: {message}"
    );

    // PostgreSQL-only options without --from would be ignored silently.
    for args in [
        &["ingest", "x.jsonl", "--table", "t"][..],
        &["ingest", "x.jsonl", "--full"],
        &["run", "--lookback-hours", "1"],
        &["run", "--publish-table", "t"],
    ] {
        let o = learnloop(&db, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
    }

    let bad_as_of = learnloop(&db, &["run", "--as-of", "yesterday"]);
    assert_eq!(bad_as_of.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad_as_of.stderr).contains("--as-of"));

    // A failed run is still recorded, with its error.
    let status = stdout_json(&learnloop(&db, &["status", "--json"]));
    assert_eq!(status["recent_runs"][0]["status"], "failed");
}

#[test]
fn stdin_ingest_quarantines_a_bad_line_with_its_line_number() {
    let dir = scratch("stdin");
    let db = dir.join("t.db");
    let mut child = Command::new(env!("CARGO_BIN_EXE_learnloop"))
        .args(["--db", db.to_str().unwrap(), "ingest", "-", "--json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"id\": \"x\", \"kind\": \"pm_action\"\nnot json\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let report = stdout_json(&out);
    assert_eq!(
        report[0][1]["normalized"]["quarantined"]["malformed_json"],
        2
    );
    let q = learnloop(&db, &["export", "quarantine", "--format", "json"]);
    let rows: serde_json::Value = serde_json::from_slice(&q.stdout).unwrap();
    let reasons: Vec<&str> = rows
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("- line 2")),
        "{reasons:?}"
    );
}

/// A file's bad lines are quarantined once, however the file is named on a later call: before,
/// `dir/./bad.jsonl` after `dir/bad.jsonl` quarantined every bad line again, and `--strict`
/// failed on a file it had already accepted.
#[test]
fn a_file_named_another_way_is_not_quarantined_again() {
    let dir = scratch("respelt");
    let db = dir.join("t.db");
    let file = dir.join("bad.jsonl");
    std::fs::write(&file, "not json\n{\"id\": \"x\"}\n").unwrap();
    let respelt = dir.join(".").join("bad.jsonl");
    let quarantined = |path: &std::path::Path| {
        let out = learnloop(&db, &["--json", "ingest", path.to_str().unwrap()]);
        stdout_json(&out)[0][1]["normalized"]["quarantined"]
            .as_object()
            .map_or(0, |q| q.values().map(|n| n.as_u64().unwrap()).sum::<u64>())
    };
    assert_eq!(quarantined(&file), 2);
    assert_eq!(quarantined(&respelt), 0);
    let strict = learnloop(&db, &["ingest", "--strict", respelt.to_str().unwrap()]);
    assert_eq!(strict.status.code(), Some(0));
    assert_eq!(common::table(&db, "quarantine").len(), 2);
}

#[test]
fn run_activate_then_lookup_in_a_planted_scope_sizes_in_the_planted_direction() {
    let dir = scratch("planted");
    let db = dir.join("t.db");
    let data = dir.join("demo.jsonl");
    let truth = stdout_json(&learnloop(
        &db,
        &["demo", "--out", data.to_str().unwrap(), "--json"],
    ));
    let run = stdout_json(&learnloop(
        &db,
        &[
            "run",
            "--input",
            data.to_str().unwrap(),
            "--activate",
            "--json",
        ],
    ));
    assert_eq!(run["materialize"]["modules"][0]["status"], "active");

    let mut checked = 0;
    for effect in truth["effects"].as_array().unwrap() {
        let sign = effect["effect_r"].as_f64().unwrap().signum();
        // An action inside the planted scope, plus a dimension the effect does not constrain.
        let mut scope = effect["scope"].as_object().unwrap().clone();
        scope.entry("E_mode").or_insert("normal".into());
        let out = learnloop(
            &db,
            &[
                "lookup",
                "--pattern",
                effect["pattern_key"].as_str().unwrap(),
                "--category",
                effect["action_category"].as_str().unwrap(),
                "--scope",
                &serde_json::Value::Object(scope).to_string(),
                "--size-frac",
                "0.2",
                "--json",
            ],
        );
        let decision = stdout_json(&out);
        let unmatched = decision["matches"].as_array().is_none_or(|m| m.is_empty());
        if unmatched {
            // The late and the Euphoria effects may stay below the family's bar (see
            // tests/lessons.rs); then the PM's size is left alone, never moved the wrong way.
            assert!(
                decision["size_mult"].as_f64().is_none_or(|m| m == 1.0),
                "{decision}"
            );
            continue;
        }
        assert!(decision["fallback_reason"].is_null(), "{decision}");
        let size_mult = decision["size_mult"].as_f64().unwrap();
        assert!(
            (size_mult - 1.0) * sign > 0.0,
            "effect {effect}: size_mult {size_mult}"
        );
        let matches = decision["matches"].as_array().unwrap();
        assert!(!matches.is_empty());
        assert!(matches
            .iter()
            .all(|m| !m["lesson_keys"].as_array().unwrap().is_empty()));
        let after = decision["size_frac_after"].as_f64().unwrap();
        assert!((after - 0.2 * size_mult).abs() < 1e-9);
        checked += 1;
    }
    assert!(checked >= 2, "{checked} planted effects size the PM");
}

/// `bench calibrate` on tiny data: the table's shape and its bookkeeping, not its figures (the
/// study itself is a benchmark, docs/statistics.md). Twice the same seed prints the same table.
#[test]
fn bench_calibrate_runs_on_tiny_data_and_is_deterministic() {
    let dir = scratch("calibrate");
    let db = dir.join("unused.db");
    let args = [
        "bench",
        "calibrate",
        "--sets",
        "2",
        "--trades",
        "500",
        "--days",
        "30",
        "--effect-sizes",
        "0.5,1.0",
        "--json",
    ];
    let mut report = stdout_json(&learnloop(&db, &args));
    let mut again = stdout_json(&learnloop(&db, &args));
    report["seconds"] = serde_json::Value::Null;
    again["seconds"] = serde_json::Value::Null;
    assert_eq!(report, again, "same seeds, same table");
    for kind in ["placebo", "placebo_shocks"] {
        let p = &report[kind];
        assert_eq!(p["runs"], 2);
        let share = p["share_with_a_lesson"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&share));
    }
    let e = &report["effects"];
    assert_eq!(e["runs"], 2);
    // Two sizes × (one dim, interaction), two groups each, per set.
    let power = e["power"].as_array().unwrap();
    assert_eq!(power.len(), 4);
    for row in power {
        assert_eq!(row["planted"], 4);
        assert!(row["found"].as_u64().unwrap() <= 4 && row["exact"].as_u64().unwrap() <= 4);
    }
    let kinds: Vec<&str> = e["exact_by_kind"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(
        kinds,
        [
            "one_dim",
            "interaction",
            "bad_parent",
            "exception",
            "stopped"
        ]
    );
    assert_eq!(e["stopped"]["sets"], 2);
    let fdp = e["fdp_pooled"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&fdp));
    // The interaction in every group, at the largest size.
    let i = &report["interaction"];
    assert_eq!(
        (i["runs"].as_u64(), i["effect_r"].as_f64()),
        (Some(2), Some(1.0))
    );
    let groups = i["groups"].as_u64().unwrap();
    assert!(groups >= 10, "{groups} carrying groups over two sets");
    assert!(i["exact"].as_u64().unwrap() <= i["found"].as_u64().unwrap());
    assert!(i["found"].as_u64().unwrap() <= groups);
}
