//! Commands around the nightly job: `replay --out` is refused on a non-empty directory without
//! `--force` (and leaves no stale file with it); `--version`, completions and man pages; `lessons
//! list` / `lessons show`; `lookup` with a short pattern key and either scope syntax.

mod common;

use common::{learnloop, scratch, stderr, Scratch};
use std::path::PathBuf;
use std::process::Output;

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}", stderr(&o));
    o
}

/// A scratch store with the default demo (3000 cycles, or `cycles`) ingested and run once.
fn demo_store(test: &str, cycles: Option<&str>, run: &[&str]) -> (Scratch, PathBuf) {
    let dir = scratch(test);
    let db = dir.join("t.db");
    let data = dir.join("d.jsonl");
    let mut demo = vec!["demo", "--out", data.to_str().unwrap()];
    if let Some(n) = cycles {
        demo.extend(["--cycles", n]);
    }
    ok(learnloop(&db, &demo));
    let mut args = vec!["run", "--input", data.to_str().unwrap()];
    args.extend_from_slice(run);
    ok(learnloop(&db, &args));
    (dir, db)
}

#[test]
fn replay_refuses_a_non_empty_out_dir_without_force_and_replaces_its_files_with_it() {
    let (dir, db) = demo_store("replay-out", Some("300"), &[]);
    let out = dir.join("replay");
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "replay",
            "--from",
            "2026-02-01",
            "--to",
            "2026-02-15",
            "--step",
            "7d",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        learnloop(&db, &args)
    };
    ok(replay(&[]));
    assert!(out.join("summary.json").is_file() && out.join("walk_forward.json").is_file());

    let refused = replay(&[]);
    assert_eq!(refused.status.code(), Some(2), "a usage error");
    let message = stderr(&refused);
    assert!(
        message.contains("is not empty") && message.contains("--force"),
        "{message}"
    );

    std::fs::write(out.join("size_mult.png"), b"stale").unwrap();
    std::fs::write(out.join("notes.txt"), b"mine").unwrap();
    ok(replay(&["--force"]));
    let png = std::fs::read(out.join("size_mult.png")).unwrap_or_default();
    assert_ne!(png, b"stale", "a stale PNG was left beside the new chart");
    assert_eq!(std::fs::read(out.join("notes.txt")).unwrap(), b"mine");
}

#[test]
fn version_names_the_commit_and_completions_and_man_pages_are_generated() {
    let dir = scratch("man");
    let db = dir.join("unused.db");
    let version = learnloop(&db, &["--version"]);
    let text = String::from_utf8_lossy(&version.stdout);
    assert!(
        text.starts_with("learnloop ") && text.contains("(commit "),
        "{text}"
    );
    let bash = learnloop(&db, &["completions", "bash"]);
    assert!(bash.status.success());
    let script = String::from_utf8_lossy(&bash.stdout);
    assert!(script.contains("_learnloop()") && script.contains("replay"));
    let man = learnloop(&db, &["man", "--out", dir.to_str().unwrap()]);
    assert!(man.status.success(), "{}", stderr(&man));
    let page = std::fs::read_to_string(dir.join("learnloop-run.1")).unwrap();
    assert!(page.contains(".TH LEARNLOOP-RUN") && page.contains("nightly job"));
    assert!(dir.join("learnloop.1").is_file());
    assert!(!db.exists(), "no store is created for these commands");
}

#[test]
fn lessons_list_and_show_print_what_the_stage_stored_and_bare_lessons_runs_the_stage() {
    let (_dir, db) = demo_store("lessons", None, &[]);
    let listed: serde_json::Value =
        serde_json::from_slice(&ok(learnloop(&db, &["--json", "lessons", "list"])).stdout).unwrap();
    let listed = listed.as_array().unwrap();
    assert!(
        !listed.is_empty(),
        "the demo's planted effects give active lessons"
    );
    assert!(listed.iter().all(|l| l["status"] == "active"));
    let q: Vec<f64> = listed
        .iter()
        .map(|l| l["q_value"].as_f64().unwrap())
        .collect();
    assert!(
        q.windows(2).all(|w| w[0] <= w[1]),
        "strongest evidence first: {q:?}"
    );

    let key = listed[0]["lesson_key"].as_str().unwrap();
    let shown: serde_json::Value =
        serde_json::from_slice(&ok(learnloop(&db, &["--json", "lessons", "show", key])).stdout)
            .unwrap();
    assert_eq!(shown["lesson"]["lesson_key"], key);
    assert_eq!(shown["edge_history"].as_array().unwrap().len(), 1);
    let human = ok(learnloop(&db, &["lessons", "list"]));
    assert!(String::from_utf8_lossy(&human.stdout).contains(key));

    let missing = learnloop(&db, &["lessons", "show", "L-0000000000000000"]);
    assert_eq!(missing.status.code(), Some(2), "a usage error");
    assert!(stderr(&missing).contains("lessons list --status all"));
    // Bare `lessons` is still the stage (SPEC §9), and so is `lessons build`.
    ok(learnloop(&db, &["lessons"]));
    ok(learnloop(&db, &["lessons", "build"]));
}

#[test]
fn lookup_takes_the_short_pattern_key_and_both_scope_syntaxes_like_explain() {
    let (_dir, db) = demo_store("lookup", None, &["--activate"]);
    let lookup = |pattern: &str, scope: &str| -> serde_json::Value {
        let out = ok(learnloop(
            &db,
            &[
                "--json",
                "lookup",
                "--pattern",
                pattern,
                "--category",
                "add",
                "--scope",
                scope,
                "--size-frac",
                "0.2",
            ],
        ));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let full = lookup(
        "module=pm|pattern_key=uptrend.S3.add",
        r#"{"bucket":"micro","timeframe":"1h"}"#,
    );
    assert!(
        full["size_mult"].as_f64().unwrap() < 1.0,
        "the demo's planted micro/1h adds are sized down: {full}"
    );
    assert_eq!(
        lookup("uptrend.S3.add", r#"{"bucket":"micro","timeframe":"1h"}"#),
        full
    );
    assert_eq!(lookup("uptrend.S3.add", "bucket=micro,timeframe=1h"), full);
    let misspelt = learnloop(
        &db,
        &[
            "lookup",
            "--pattern",
            "uptrend.S3.add",
            "--category",
            "adds",
        ],
    );
    assert_eq!(
        misspelt.status.code(),
        Some(2),
        "an unknown category is bad usage"
    );
}

#[test]
fn the_run_summary_names_the_next_step_and_a_placebo_says_so_first() {
    let dir = scratch("summary");
    let db = dir.join("t.db");
    let sample = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../data/sample_strands.jsonl"
    );
    let run = ok(learnloop(&db, &["run", "--input", sample]));
    let text = String::from_utf8_lossy(&run.stdout);
    assert!(
        text.contains("v1 written (proposed)") && text.contains("learnloop config activate 1"),
        "{text}"
    );
    let placebo = ok(learnloop(&db, &["run", "--placebo"]));
    let text = String::from_utf8_lossy(&placebo.stdout);
    assert!(text.starts_with("PLACEBO run"), "{text}");
    assert!(
        !text.contains("next step"),
        "a placebo writes nothing to activate: {text}"
    );
}
