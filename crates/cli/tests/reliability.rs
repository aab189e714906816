//! Issue 9: nothing lost to one bad line, writers wait, read-only stores readable, runs that
//! fail or that --strict rejects activate nothing, errors printed once, broken pipes quiet.

mod common;

use common::*;
use serde_json::Value;
use std::io::{BufRead, BufReader, Read};
use std::process::Stdio;

/// D1: one line with a far-future created_at neither becomes the as-of nor wipes the config.
#[test]
fn a_far_future_strand_neither_moves_the_as_of_nor_wipes_what_was_learned() {
    let dir = scratch("future");
    let db = dir.join("t.db");
    let data = demo_file(&dir, 800);
    let first = stdout_json(&learnloop(
        &db,
        &[
            "run",
            "--input",
            data.to_str().unwrap(),
            "--activate",
            "--json",
        ],
    ));
    let (version, overrides) = active_config(&db).expect("the demo activates a config");
    assert!(overrides > 0);

    let text = std::fs::read_to_string(&data).unwrap();
    let template: Value = text
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|v| v["kind"] == "pm_action" && v["content"]["pattern_key"].is_string())
        .unwrap();
    let poison = dir.join("poison.jsonl");
    let mut lines = String::new();
    for (id, created_at) in [
        ("poison-9999", "9999-12-31T23:59:59Z"),
        // A plausible year that validation accepts: only the as-of rule stops this one.
        ("poison-2030", "2030-06-01T00:00:00Z"),
        // Another strand of the same position five hours later (one producer's clock is wrong
        // for the whole position): it does not corroborate the first.
        ("poison-2030-later", "2030-06-01T05:00:00Z"),
    ] {
        let mut v = template.clone();
        v["id"] = id.into();
        v["created_at"] = created_at.into();
        lines.push_str(&format!("{v}\n"));
    }
    std::fs::write(&poison, lines).unwrap();
    let second = stdout_json(&learnloop(
        &db,
        &[
            "run",
            "--input",
            poison.to_str().unwrap(),
            "--activate",
            "--json",
        ],
    ));
    assert_eq!(second["as_of"], first["as_of"]);
    let ingest = &second["ingest"][0][1];
    assert_eq!(ingest["normalized"]["quarantined"]["out_of_range"], 1);
    assert_eq!(active_config(&db), Some((version, overrides)));
    // Later runs are not stuck in the future either.
    let third = stdout_json(&learnloop(&db, &["run", "--json"]));
    assert_eq!(third["as_of"], first["as_of"]);
    // Nor can a mistyped --as-of, years past the data, decay everything and lock the store.
    let typo = learnloop(&db, &["run", "--as-of", "2062-06-30", "--activate"]);
    assert_eq!(typo.status.code(), Some(1));
    assert!(
        stderr(&typo).contains("days after the latest stored strand"),
        "{}",
        stderr(&typo)
    );
    assert_eq!(active_config(&db), Some((version, overrides)));
    // Its failed row records the as-of that was refused.
    let runs = table(&db, "learning_runs");
    let refused = runs.iter().find(|r| r["status"] == "failed").unwrap();
    assert_eq!(refused["as_of"], "2062-06-30T00:00:00Z");
    let fourth = stdout_json(&learnloop(&db, &["run", "--json"]));
    assert_eq!(fourth["as_of"], first["as_of"]);
}

/// D2: an invalid UTF-8 line is quarantined alone; a BOM is skipped; UTF-16 is read.
#[test]
fn one_undecodable_line_is_quarantined_and_the_rest_of_the_file_kept() {
    let dir = scratch("encoding");
    let db = dir.join("t.db");
    let file = dir.join("mixed.jsonl");
    let mut bytes = b"\xEF\xBB\xBF".to_vec();
    bytes.extend(action_line("a1", "2026-01-02T00:00:00Z").as_bytes());
    bytes.extend(b"\n{\"id\":\"a2\",\"kind\":\"pm_action\",\"symbol\":\"\xC3\x28\"}\n");
    bytes.extend(action_line("a3", "2026-01-02T01:00:00Z").as_bytes());
    bytes.push(b'\n');
    std::fs::write(&file, &bytes).unwrap();
    let report = stdout_json(&learnloop(
        &db,
        &["ingest", file.to_str().unwrap(), "--json"],
    ));
    let r = &report[0][1];
    assert_eq!(
        (r["lines"].as_u64(), r["inserted"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(
        r["normalized"]["quarantined"],
        serde_json::json!({"bad_encoding": 1})
    );
    let q = table(&db, "quarantine");
    assert_eq!(q.len(), 1);
    assert!(q[0]["raw"].as_str().unwrap().contains("\\xC3("), "{}", q[0]);
    assert!(
        q[0]["reason"].as_str().unwrap().contains("line 2"),
        "{}",
        q[0]
    );

    let utf16 = dir.join("utf16.jsonl");
    let text = format!(
        "\u{FEFF}{}\r\n{}\r\n",
        action_line("b1", "2026-01-03T00:00:00Z"),
        action_line("b2", "2026-01-03T01:00:00Z")
    );
    let le: Vec<u8> = text.encode_utf16().flat_map(u16::to_le_bytes).collect();
    std::fs::write(&utf16, le).unwrap();
    let report = stdout_json(&learnloop(
        &db,
        &["ingest", utf16.to_str().unwrap(), "--json"],
    ));
    assert_eq!(report[0][1]["inserted"], 2);
    assert_eq!(
        report[0][1]["normalized"]["quarantined"],
        serde_json::json!({})
    );
}

/// SPEC §5: a run that --strict rejects activates nothing, and is recorded as rejected.
#[test]
fn a_strict_run_that_saw_quarantined_input_activates_nothing() {
    let dir = scratch("strict");
    let db = dir.join("t.db");
    let data = demo_file(&dir, 800); // the demo carries bad lines
    let out = learnloop(
        &db,
        &[
            "run",
            "--input",
            data.to_str().unwrap(),
            "--strict",
            "--activate",
            "--json",
        ],
    );
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let run: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(run["materialize"]["modules"][0]["status"], "proposed");
    assert_eq!(active_config(&db), None);
    let runs = table(&db, "learning_runs");
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["status"], "rejected");
    assert!(runs[0]["error"].as_str().unwrap().contains("--strict"));
    // The proposed version can still be approved by hand.
    let v = run["materialize"]["modules"][0]["config_version"].to_string();
    assert!(learnloop(&db, &["config", "activate", &v]).status.success());
    assert!(active_config(&db).is_some());
}

/// D7: read-only commands never create a store, and read one that cannot be written.
#[test]
fn read_only_commands_neither_create_nor_write_a_store() {
    let dir = scratch("read-only");
    let typo = dir.join("typo.db");
    for args in [
        &["status"][..],
        &["lookup", "--pattern", "a.b.c", "--category", "add"],
        &["config", "list"],
        &["export", "quarantine"],
        &["explain", "--pattern", "a.b.c", "--category", "add"],
        // These write, but only into a store that exists.
        &["config", "activate", "1"],
        &["config", "rollback"],
        &["replay", "--from", "2026-01-01", "--to", "2026-01-02"],
    ] {
        let out = learnloop(&typo, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("no learnloop store"),
            "{}",
            stderr(&out)
        );
        assert!(!typo.exists(), "{args:?} created the store");
    }

    let db = store_with_one_action(&dir);
    let before = std::fs::read(&db).unwrap();
    // A read-only mount: the WAL's shared-memory file cannot be created (a directory in its
    // place stops root too).
    std::fs::create_dir(dir.join("t.db-shm")).unwrap();
    let status = stdout_json(&learnloop(&db, &["status", "--json"]));
    assert_eq!(status["strands"]["strands"], 1);
    for args in [
        &["config", "list"][..],
        &["export", "ad_strands"],
        &[
            "lookup",
            "--pattern",
            "a.b.c",
            "--category",
            "add",
            "--json",
        ],
    ] {
        let out = learnloop(&db, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(std::fs::read(&db).unwrap(), before);
}

/// D10: a rejected table name leaves --out as it was.
#[test]
fn export_of_an_unknown_table_does_not_touch_the_output_file() {
    let dir = scratch("export");
    let db = store_with_one_action(&dir);
    let out_file = dir.join("keep.csv");
    std::fs::write(&out_file, "precious\n").unwrap();
    let out = learnloop(
        &db,
        &["export", "nope", "--out", out_file.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("'nope'"), "{}", stderr(&out));
    assert_eq!(std::fs::read_to_string(&out_file).unwrap(), "precious\n");
    let out = learnloop(
        &db,
        &["export", "ad_strands", "--out", out_file.to_str().unwrap()],
    );
    assert!(out.status.success());
    assert!(std::fs::read_to_string(&out_file).unwrap().contains("a1"));
    assert!(!dir.join("keep.csv.partial").exists());
}

/// D15: each error once, usage errors exit 2, negative numbers are values, CSV cells that a
/// spreadsheet would run are neutralised.
#[test]
fn errors_are_printed_once_and_usage_errors_exit_2() {
    let dir = scratch("papercuts");
    let db = dir.join("t.db");
    let empty = learnloop(&db, &["run"]);
    assert_eq!(empty.status.code(), Some(1));
    let err = stderr(&empty);
    assert_eq!(err.matches("no strands ingested").count(), 1, "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");

    let bad_scope = learnloop(
        &db,
        &[
            "lookup",
            "--pattern",
            "a.b.c",
            "--category",
            "add",
            "--scope",
            "{nope",
        ],
    );
    assert_eq!(bad_scope.status.code(), Some(2), "{}", stderr(&bad_scope));
    let bad_category = learnloop(
        &db,
        &["explain", "--pattern", "a.b.c", "--category", "hold"],
    );
    assert_eq!(
        bad_category.status.code(),
        Some(2),
        "{}",
        stderr(&bad_category)
    );

    let negative = stdout_json(&learnloop(
        &db,
        &[
            "lookup",
            "--pattern",
            "a.b.c",
            "--category",
            "add",
            "--size-frac",
            "-0.5",
            "--json",
        ],
    ));
    assert_eq!(negative["size_frac_after"], -0.5);
    assert!(negative["fallback_reason"].as_str().is_some());

    let file = dir.join("formula.jsonl");
    let mut v: Value = serde_json::from_str(&action_line("=1+2", "2026-01-02T00:00:00Z")).unwrap();
    v["symbol"] = "@SUM(A1)".into();
    std::fs::write(&file, format!("{v}\n")).unwrap();
    assert!(learnloop(&db, &["ingest", file.to_str().unwrap()])
        .status
        .success());
    let csv = String::from_utf8(learnloop(&db, &["export", "ad_strands"]).stdout).unwrap();
    let row = csv.lines().nth(1).unwrap();
    assert!(row.starts_with("'=1+2,"), "{row}");
    assert!(row.contains(",'@SUM(A1),"), "{row}");

    let store = learnloop_store::open(&db).unwrap();
    store.execute_batch("DROP TABLE schema_migrations").unwrap();
    drop(store);
    let foreign = learnloop(&db, &["status"]);
    assert_eq!(foreign.status.code(), Some(1));
    assert!(stderr(&foreign).len() < 400, "{}", stderr(&foreign));
    assert!(!stderr(&foreign).contains("CREATE TABLE"));
}

/// D15: a reader that stops early (`| head`) ends the command quietly, not with a panic.
#[test]
fn a_closed_stdout_is_a_quiet_exit() {
    let dir = scratch("pipe");
    let db = dir.join("t.db");
    let data = dir.join("many.jsonl");
    let lines: String = (0..5000)
        .map(|i| action_line(&format!("a{i}"), "2026-01-02T00:00:00Z") + "\n")
        .collect();
    std::fs::write(&data, lines).unwrap();
    assert!(learnloop(&db, &["ingest", data.to_str().unwrap()])
        .status
        .success());
    for args in [&["export", "ad_strands"][..], &["--json", "status"]] {
        let mut child = learnloop_command(&db)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap(); // `head -1`: one line, then the pipe closes
        let mut err = String::new();
        child
            .stderr
            .take()
            .unwrap()
            .read_to_string(&mut err)
            .unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: {err}");
    }
}

/// D6: the run and its learning_runs row commit together; a failure is recorded after the
/// rollback with the stage's own error.
#[test]
fn a_failed_run_keeps_its_own_error_and_leaves_no_trace_but_its_record() {
    let dir = scratch("failed");
    let db = dir.join("t.db");
    // Bad usage is no run: refused while parsing, before the store is even opened.
    let bad = learnloop(&db, &["run", "--as-of", "yesterday"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(!db.exists());
    let failed = learnloop(&db, &["run"]);
    assert_eq!(failed.status.code(), Some(1), "{}", stderr(&failed));
    let file = dir.join("one-action.jsonl");
    std::fs::write(&file, action_line("a1", "2026-01-02T00:00:00Z") + "\n").unwrap();
    stdout_json(&learnloop(
        &db,
        &["ingest", file.to_str().unwrap(), "--json"],
    ));
    let ok = stdout_json(&learnloop(&db, &["run", "--json"]));
    let runs = table(&db, "learning_runs");
    let statuses: Vec<&str> = runs.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.iter().filter(|s| **s == "failed").count(), 1);
    let failed = runs.iter().find(|r| r["status"] == "failed").unwrap();
    assert!(failed["error"]
        .as_str()
        .unwrap()
        .contains("no strands ingested"));
    let recorded = runs.iter().find(|r| r["status"] == "ok").unwrap();
    assert_eq!(recorded["run_id"], ok["run_id"]);

    // A stage that fails after the as-of is resolved records that as-of with its error (here
    // an aggregate alone, as of a time its links were not made at).
    let stage = learnloop(&db, &["aggregate", "--as-of", "2026-01-01T12:00:00Z"]);
    assert_eq!(stage.status.code(), Some(1), "{}", stderr(&stage));
    // The advice is to run every stage as of one time, never one stage as of another.
    assert!(
        stderr(&stage).contains("learnloop run --as-of 2026-01-01T12:00:00Z"),
        "{}",
        stderr(&stage)
    );
    let runs = table(&db, "learning_runs");
    let failed: Vec<_> = runs.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), 2);
    let stage_failure = failed.iter().find(|r| r["command"] == "aggregate").unwrap();
    assert_eq!(stage_failure["as_of"], "2026-01-01T12:00:00Z");
    let counts: serde_json::Value =
        serde_json::from_str(stage_failure["counts"].as_str().unwrap()).unwrap();
    assert_eq!(counts["rolled_back"], true, "{counts}");
    assert!(stage_failure["error"]
        .as_str()
        .unwrap()
        .contains("link stage stored"));
}

/// D15: a re-ingest reports (and --strict judges) what this ingest quarantined, apart from the
/// bad lines that an earlier ingest already quarantined.
#[test]
fn a_strict_re_ingest_is_judged_on_new_quarantines_only() {
    let dir = scratch("reingest");
    let db = dir.join("t.db");
    let file = dir.join("bad.jsonl");
    std::fs::write(
        &file,
        action_line("a1", "2026-01-02T00:00:00Z") + "\nnot json\n",
    )
    .unwrap();
    let path = file.to_str().unwrap();
    let first = learnloop(&db, &["ingest", "--strict", "--json", path]);
    assert_eq!(first.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(
        report[0][1]["normalized"]["quarantined"]["malformed_json"],
        1
    );

    let again = learnloop(&db, &["ingest", "--strict", "--json", path]);
    let report = stdout_json(&again);
    let normalized = &report[0][1]["normalized"];
    assert_eq!(normalized["quarantined"], serde_json::json!({}));
    assert_eq!(normalized["already_quarantined"], 1);
    assert_eq!(report[0][1]["already_present"], 1);
    assert_eq!(table(&db, "quarantine").len(), 1);
}

/// D3: a writer started during a run waits for it instead of failing with "database is locked",
/// also when the run commits while it waits (what a deferred transaction cannot survive).
#[test]
fn config_activate_during_a_run_waits_for_it() {
    let dir = scratch("writers");
    let db = dir.join("t.db");
    let data = demo_file(&dir, 800);
    stdout_json(&learnloop(
        &db,
        &[
            "run",
            "--input",
            data.to_str().unwrap(),
            "--activate",
            "--json",
        ],
    ));
    // A second run, stopped while it holds the write lock (its stages done, nothing committed).
    let mut run = learnloop_command(&db)
        .args(["run", "--rebuild"])
        .env("LEARNLOOP_PAUSE_AT", "run:after-lessons")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(run.stderr.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert!(line.contains("paused at run:after-lessons"), "{line}");
    let activate = learnloop_command(&db)
        .args(["config", "activate", "1"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Well past the moment a deferred transaction would have given up; then the run goes on
    // and commits while the activation waits.
    std::thread::sleep(std::time::Duration::from_millis(1500));
    drop(run.stdin.take());
    assert!(run.wait().unwrap().success());
    let out = activate.wait_with_output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(active_config(&db).map(|c| c.0), Some(1));
    let runs = table(&db, "learning_runs");
    assert_eq!(runs.iter().filter(|r| r["status"] == "ok").count(), 2);
}
