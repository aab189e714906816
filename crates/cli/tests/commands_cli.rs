//! Commands around the nightly job: `replay --out` is refused on a non-empty directory without
//! `--force` (and leaves no stale file with it); `--version`, completions and man pages; `lessons
//! list` / `lessons show`; `lookup` with a short pattern key and either scope syntax; a later
//! family's look at a subset, told on that subset's own row.

mod common;

use common::{learnloop, scratch, stderr, table, Scratch};
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

    // A window without data says so, and its total is a plain zero.
    let empty = dir.join("empty");
    let nothing = ok(learnloop(
        &db,
        &[
            "replay",
            "--from",
            "2025-01-01",
            "--to",
            "2025-01-10",
            "--out",
            empty.to_str().unwrap(),
        ],
    ));
    assert!(String::from_utf8_lossy(&nothing.stdout).contains("none to measure"));
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(empty.join("summary.json")).unwrap())
            .unwrap();
    assert_eq!(summary["uplift_total_r"].to_string(), "0.0");

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
    // Nested subcommands have pages too, with their full invocation and the global options in
    // the synopsis; the generated `help` subcommands have none.
    let pages: Vec<String> = std::fs::read_dir(&*dir)
        .unwrap()
        .filter_map(|e| e.unwrap().file_name().into_string().ok())
        .filter(|n| n.ends_with(".1"))
        .collect();
    let activate = std::fs::read_to_string(dir.join("learnloop-config-activate.1")).unwrap();
    assert!(activate.contains("learnloop config activate") && activate.contains("db"));
    let config = std::fs::read_to_string(dir.join("learnloop-config.1")).unwrap();
    for sub in ["activate", "flags", "rollback", "show"] {
        assert!(config.contains(sub), "{sub}");
        assert!(
            pages.contains(&format!("learnloop-config-{sub}.1")),
            "{sub}: {pages:?}"
        );
    }
    assert!(!pages.iter().any(|p| p.contains("-help")), "{pages:?}");
    // With --json, the pages written: every file in the directory, the top page first.
    let json = learnloop(&db, &["--json", "man", "--out", dir.to_str().unwrap()]);
    assert!(json.status.success(), "{}", stderr(&json));
    let listed: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let mut files: Vec<String> = listed["pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let path = std::path::Path::new(p.as_str().unwrap());
            assert_eq!(path.parent(), Some(&*dir), "{p}");
            path.file_name().unwrap().to_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(files[0], "learnloop.1");
    files.sort();
    let mut on_disk = pages.clone();
    on_disk.sort();
    assert_eq!(files, on_disk);
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
    // A short key the store does not know cannot be resolved: bad usage with the closest known
    // keys (SPEC §9), not a silent "no override matches". A full key is taken as given.
    for command in ["lookup", "explain"] {
        let typo = learnloop(
            &db,
            &[command, "--pattern", "uptrend.S3.ad", "--category", "add"],
        );
        assert_eq!(typo.status.code(), Some(2), "{command}: {}", stderr(&typo));
        assert!(
            stderr(&typo).contains("Did you mean uptrend.S3.add"),
            "{command}: {}",
            stderr(&typo)
        );
        assert!(typo.stdout.is_empty());
        let not_a_key = learnloop(&db, &[command, "--pattern", "S3", "--category", "add"]);
        assert_eq!(not_a_key.status.code(), Some(2));
        assert!(stderr(&not_a_key).contains("is not a pattern key"));
    }
    let unknown_dim = learnloop(
        &db,
        &[
            "lookup",
            "--pattern",
            "uptrend.S3.add",
            "--category",
            "add",
            "--scope",
            "bukcet=micro",
        ],
    );
    assert_eq!(
        unknown_dim.status.code(),
        Some(0),
        "the runtime takes any scope"
    );
    assert!(
        stderr(&unknown_dim).contains("\"bukcet\" is not a configured scope dimension"),
        "{}",
        stderr(&unknown_dim)
    );
    let full_typo = lookup("module=pm|pattern_key=uptrend.S3.ad", "{}");
    assert_eq!(full_typo["size_mult"], 1.0, "{full_typo}");
    assert!(full_typo["matches"].as_array().unwrap().is_empty());

    // explain says why a subset has no row: a pattern the store does not know (a typo), a
    // category the pattern never had, or too few trades.
    let reason = |pattern: &str, category: &str, scope: &str| -> String {
        let out = ok(learnloop(
            &db,
            &[
                "--json",
                "explain",
                "--pattern",
                pattern,
                "--category",
                category,
                "--scope",
                scope,
            ],
        ));
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        v["reason"].as_str().unwrap().to_string()
    };
    // The same for a deep scope (before the hierarchy's reasons, which need a known group).
    for scope in ["", "bucket=micro,timeframe=1h,macro_phase=Dip"] {
        let typo = reason("module=pm|pattern_key=uptrend.S3.ad", "add", scope);
        assert!(typo.contains("check the key"), "{typo}");
        let category = reason("uptrend.S3.add", "trim", scope);
        assert!(category.contains("has no linked trim action"), "{category}");
    }
    let thin = reason(
        "uptrend.S3.add",
        "add",
        "bucket=micro,timeframe=1h,macro_phase=Nope",
    );
    assert!(thin.contains("fewer than"), "{thin}");

    // Under another --config (dims in another order), explain still reads the stored subset the
    // run made: its key and thresholds are the run's.
    let explained = |config: Option<&std::path::Path>| -> serde_json::Value {
        let mut args = vec![];
        if let Some(c) = config {
            args.extend(["--config", c.to_str().unwrap()]);
        }
        args.extend([
            "--json",
            "explain",
            "--pattern",
            "uptrend.S3.add",
            "--category",
            "add",
            "--scope",
            "bucket=micro",
        ]);
        serde_json::from_slice(&ok(learnloop(&db, &args)).stdout).unwrap()
    };
    let mut cfg: serde_json::Value =
        serde_json::from_slice(&ok(learnloop(&db, &["show-config"])).stdout).unwrap();
    cfg["dims"].as_array_mut().unwrap().reverse();
    cfg["lessons"]["min_support"] = serde_json::json!([100]);
    let reversed = db.with_file_name("reversed.json");
    std::fs::write(&reversed, cfg.to_string()).unwrap();
    let plain = explained(None);
    assert!(plain["n_trades"].as_u64().is_some(), "{plain}");
    assert_eq!(explained(Some(&reversed)), plain);
    // A placebo under that config was rolled back: the stored results are still the run's.
    ok(learnloop(
        &db,
        &[
            "--config",
            reversed.to_str().unwrap(),
            "lessons",
            "build",
            "--placebo",
        ],
    ));
    assert_eq!(explained(None), plain);
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
    assert!(
        text.contains("(rolled back with the placebo)") && !text.contains(" written (proposed)"),
        "{text}"
    );
    // A --config that cannot be read fails every command, also one that does not use it.
    let missing = db.with_file_name("no-such-config.json");
    let status = learnloop(&db, &["--config", missing.to_str().unwrap(), "status"]);
    assert_eq!(status.status.code(), Some(1), "{}", stderr(&status));
    assert!(stderr(&status).contains("no-such-config.json"));
}

#[test]
fn the_run_summary_lists_new_lessons_and_the_biggest_multipliers_and_a_rerun_changes_nothing() {
    let dir = scratch("changes");
    let db = dir.join("t.db");
    let data = dir.join("d.jsonl");
    ok(learnloop(&db, &["demo", "--out", data.to_str().unwrap()]));
    let run: serde_json::Value = serde_json::from_slice(
        &ok(learnloop(
            &db,
            &["run", "--input", data.to_str().unwrap(), "--json"],
        ))
        .stdout,
    )
    .unwrap();
    let changed = &run["changed"];
    let active: serde_json::Value =
        serde_json::from_slice(&ok(learnloop(&db, &["--json", "lessons", "list"])).stdout).unwrap();
    let mut active_keys: Vec<&str> = active
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lesson_key"].as_str().unwrap())
        .collect();
    let mut new_keys: Vec<&str> = changed["new_lessons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["lesson_key"].as_str().unwrap())
        .collect();
    active_keys.sort();
    new_keys.sort();
    assert!(!new_keys.is_empty());
    assert_eq!(
        new_keys, active_keys,
        "on a first run every active lesson is new"
    );
    assert_eq!(changed["retired_lessons"].as_array().unwrap().len(), 0);

    // The multipliers: the config's size levers, largest |m − 1| first, read independently.
    let shown: serde_json::Value =
        serde_json::from_slice(&ok(learnloop(&db, &["--json", "config", "show"])).stdout).unwrap();
    let data = &shown["config_data"];
    let mut expected: Vec<f64> = ["pattern_overrides", "pattern_strength_overrides"]
        .iter()
        .flat_map(|k| data[k].as_array().unwrap())
        .filter_map(|o| o["levers"]["size_mult"].as_f64())
        .collect();
    expected.sort_by(|a, b| (b - 1.0).abs().total_cmp(&(a - 1.0).abs()));
    expected.truncate(10);
    let top: Vec<f64> = changed["top_multipliers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["size_mult"].as_f64().unwrap())
        .collect();
    assert_eq!(top, expected);

    let again = ok(learnloop(&db, &["run"]));
    let text = String::from_utf8_lossy(&again.stdout);
    assert!(
        text.contains("new lessons  0") && text.contains("the same lessons as before the run"),
        "{text}"
    );
    assert!(text.contains("top size multipliers"), "{text}");
}

#[test]
fn demo_check_says_which_planted_effects_became_lessons_and_why_the_others_did_not() {
    let (dir, db) = demo_store("demo-check", Some("1500"), &[]);
    let truth_file = dir.join("d.jsonl.truth.json");
    let truth: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&truth_file).unwrap()).unwrap();
    let check = |json: bool| {
        let mut args = vec!["demo", "check", "--truth", truth_file.to_str().unwrap()];
        if json {
            args.push("--json");
        }
        ok(learnloop(&db, &args))
    };
    let report: serde_json::Value = serde_json::from_slice(&check(true).stdout).unwrap();
    let planted = truth["effects"].as_array().unwrap();
    assert_eq!(report["planted"].as_u64().unwrap() as usize, planted.len());
    let active: serde_json::Value =
        serde_json::from_slice(&ok(learnloop(&db, &["--json", "lessons", "list"])).stdout).unwrap();
    for (effect, checked) in planted.iter().zip(report["effects"].as_array().unwrap()) {
        // Independently: is there an active lesson at exactly the planted scope, same sign?
        let exact = active.as_array().unwrap().iter().any(|l| {
            l["pattern_key"] == effect["pattern_key"]
                && l["action_category"] == effect["action_category"]
                && serde_json::from_str::<serde_json::Value>(l["scope_values"].as_str().unwrap())
                    .unwrap()
                    == effect["scope"]
                && l["shrunk_edge"].as_f64().unwrap().signum()
                    == effect["effect_r"].as_f64().unwrap().signum()
        });
        assert_eq!(checked["found"] == "exact", exact, "{checked}");
        if exact {
            assert!(checked["verdict"].is_null());
            continue;
        }
        // Not a lesson at its scope: explain's verdict and reason, word for word.
        let scope = serde_json::to_string(&effect["scope"]).unwrap();
        let explained: serde_json::Value = serde_json::from_slice(
            &ok(learnloop(
                &db,
                &[
                    "--json",
                    "explain",
                    "--pattern",
                    effect["pattern_key"].as_str().unwrap(),
                    "--category",
                    effect["action_category"].as_str().unwrap(),
                    "--scope",
                    &scope,
                ],
            ))
            .stdout,
        )
        .unwrap();
        assert_eq!(checked["verdict"], explained["verdict"]);
        assert_eq!(checked["reason"], explained["reason"]);
        assert_eq!(explained["action_category"], effect["action_category"]);
        // Its parents carry the last run's verdict on them, with the reason (the pattern root,
        // a parent of every planted scope, is always tested).
        let parents = explained["parents"].as_array().unwrap();
        for parent in parents {
            assert_eq!(
                parent["verdict"].is_null(),
                parent["reason"].is_null(),
                "{parent}"
            );
        }
        assert!(
            parents.iter().any(|p| p["verdict"].is_string()),
            "{explained}"
        );
    }
    let human = String::from_utf8(check(false).stdout).unwrap();
    assert!(
        human.contains("planted effects") && human.contains("uptrend."),
        "{human}"
    );

    std::fs::write(dir.join("bad.json"), "{\"not\": \"a truth file\"}").unwrap();
    let bad = learnloop(
        &db,
        &[
            "demo",
            "check",
            "--truth",
            dir.join("bad.json").to_str().unwrap(),
        ],
    );
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    assert!(stderr(&bad).contains("not a demo truth file"));

    // The store holds the whole data set: its linked trades are the truth's clean cycles.
    let cycles = truth["cycles"].as_u64().unwrap();
    assert_eq!(report["trades_held"]["store"].as_u64(), Some(cycles));
    assert_eq!(report["trades_held"]["truth"].as_u64(), Some(cycles));
    let check_with = |name: &str, edit: &dyn Fn(&mut serde_json::Value)| {
        let mut other = truth.clone();
        edit(&mut other);
        let path = dir.join(name);
        std::fs::write(&path, other.to_string()).unwrap();
        learnloop(&db, &["demo", "check", "--truth", path.to_str().unwrap()])
    };
    // Another data set of the same size (another mean R) is refused, naming both figures.
    let other = check_with("other.json", &|t| {
        t["baseline_mean_r"] = serde_json::json!(t["baseline_mean_r"].as_f64().unwrap() + 0.05)
    });
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("another data set")
            && stderr(&other).contains(&format!("holds {cycles} linked trades")),
        "{}",
        stderr(&other)
    );
    // A smaller data set than the truth's may be a partial ingest: reported, not refused.
    let larger = check_with("larger.json", &|t| {
        t["cycles"] = serde_json::json!(cycles + 500)
    });
    let text = String::from_utf8(ok(larger).stdout).unwrap();
    assert!(
        text.contains(&format!(
            "the store holds {cycles} of the truth's {} trades",
            cycles + 500
        )),
        "{text}"
    );
}

#[test]
fn config_flags_switches_learning_in_a_new_active_version_that_the_nightly_run_keeps() {
    let (_dir, db) = demo_store("flags", None, &["--activate"]);
    let flags = |args: &[&str]| -> serde_json::Value {
        let mut all = vec!["--json", "config", "flags"];
        all.extend_from_slice(args);
        serde_json::from_slice(&ok(learnloop(&db, &all)).stdout).unwrap()
    };
    let shown = flags(&[]);
    assert_eq!(shown["feature_flags"]["learning_enabled"], true);
    let v1 = shown["version"].as_i64().unwrap();

    let off = flags(&["--learning", "off", "--disable-regime", "Double-Dip"]);
    assert_eq!(off["changed"], true);
    assert_eq!(off["previous_version"], v1);
    let v2 = off["version"].as_i64().unwrap();
    assert!(v2 > v1);
    assert_eq!(off["feature_flags"]["disabled_regimes"][0], "Double-Dip");
    let again = flags(&["--learning", "off", "--disable-regime", "double-dip"]);
    assert_eq!(
        (again["changed"].as_bool(), again["version"].as_i64()),
        (Some(false), Some(v2))
    );

    let lookup: serde_json::Value = serde_json::from_slice(
        &ok(learnloop(
            &db,
            &[
                "--json",
                "lookup",
                "--pattern",
                "uptrend.S3.add",
                "--category",
                "add",
                "--scope",
                "bucket=micro,timeframe=1h",
            ],
        ))
        .stdout,
    )
    .unwrap();
    assert_eq!(lookup["config_version"], v2);
    assert!(lookup["fallback_reason"]
        .as_str()
        .unwrap()
        .contains("learning disabled"));

    // What the operator switched off is visible where the PM's config is described.
    let status: serde_json::Value =
        serde_json::from_slice(&ok(learnloop(&db, &["--json", "status"])).stdout).unwrap();
    let off_text = status["active_configs"][0]["switched_off"]
        .as_str()
        .unwrap();
    assert!(off_text.contains("learning switched off"), "{status}");

    // The next nightly run writes its version with the served flags, not the defaults.
    ok(learnloop(&db, &["run", "--activate", "--rebuild"]));
    let after = flags(&[]);
    assert_eq!(after["feature_flags"]["learning_enabled"], false, "{after}");
    assert_eq!(after["feature_flags"]["disabled_regimes"][0], "Double-Dip");

    let bad = learnloop(&db, &["config", "flags", "--disable-category", "adds"]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
    // A switch for a value no stored action has is most likely a typo: refused unless asked.
    let typo = learnloop(&db, &["config", "flags", "--disable-regime", "DoubleDip"]);
    assert_eq!(typo.status.code(), Some(2), "{}", stderr(&typo));
    assert!(
        stderr(&typo).contains("Double-Dip"),
        "lists the stored values: {}",
        stderr(&typo)
    );
    let ahead = flags(&["--disable-regime", "Meltdown", "--allow-unseen"]);
    assert_eq!(ahead["changed"], true);
}

#[test]
fn a_later_familys_look_at_a_subset_is_told_on_that_subsets_own_row() {
    // +1.0 R on {bucket: micro, timeframe: 1h} in every group: the scope is discovered across
    // the module's groups, and a group whose subset that family did not take says so after its
    // q-value reason. The look is kept by the subset's row: the tested subsets move when a deep
    // level's are inserted into their groups, and a look kept by position landed on others.
    let dir = scratch("second-looks");
    let db = dir.join("t.db");
    let data = dir.join("d.jsonl");
    let demo = [
        "demo",
        "--out",
        data.to_str().unwrap(),
        "--cycles",
        "3000",
        "--clean",
        "--effects",
        "interaction-everywhere",
        "--effect-sizes",
        "1.0",
        "--regime-shock",
        "0.4",
        "--seed",
        "11",
    ];
    ok(learnloop(&db, &demo));
    ok(learnloop(&db, &["run", "--input", data.to_str().unwrap()]));
    let rows = table(&db, "lesson_candidates");
    let looked: Vec<_> = rows
        .iter()
        .filter(|r| {
            r["reason"]
                .as_str()
                .unwrap()
                .contains("of the module, is discovered across them")
        })
        .collect();
    assert!(
        !looked.is_empty(),
        "no group was left out by its scope's family"
    );
    for r in looked {
        assert_eq!(r["scope_dims"], 2, "{r}");
        let scope_discovered_elsewhere = rows.iter().any(|o| {
            o["module"] == r["module"]
                && o["scope_values"] == r["scope_values"]
                && o["fdr_family"] == "shared"
        });
        assert!(scope_discovered_elsewhere, "{r}");
        assert_ne!(r["verdict"], "lesson", "{r}");
    }
}
