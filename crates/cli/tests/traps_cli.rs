//! The traps a scheduler falls into: every usage error exits 2 before anything is touched, one
//! date syntax, errors printed once (JSON under `--log-format json`), no colour or progress bar
//! into a pipe, `-q`/`-v` and `LEARNLOOP_LOG`.

mod common;

use common::{learnloop, learnloop_command, scratch, stderr, stdout_json};
use std::process::Output;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../data/sample_strands.jsonl"
);

fn assert_usage_error(out: &Output, names: &str) {
    let text = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains(names), "the message names {names:?}: {text}");
    assert!(out.stdout.is_empty(), "nothing on stdout");
}

#[test]
fn malformed_dates_steps_categories_scopes_and_tables_exit_2_before_the_store_is_touched() {
    let dir = scratch("usage");
    let db = dir.join("never-created.db");
    let replay = |from: &str, step: &str| {
        let out = dir.join("replay");
        learnloop(
            &db,
            &[
                "replay",
                "--from",
                from,
                "--to",
                "2026-02-01",
                "--step",
                step,
                "--out",
                out.to_str().unwrap(),
            ],
        )
    };
    let demo_out = dir.join("x.jsonl");
    let cases: Vec<(Output, &str)> = vec![
        (learnloop(&db, &["run", "--as-of", "2026-13-01"]), "--as-of"),
        (
            learnloop(&db, &["aggregate", "--as-of", "01/03/2026"]),
            "--as-of",
        ),
        (
            learnloop(&db, &["lessons", "build", "--as-of", "soon"]),
            "--as-of",
        ),
        (replay("yesterday", "1d"), "--from"),
        (replay("2026-01-01", "1m"), "--step"),
        (replay("2026-01-01", "0d"), "--step"),
        (replay("2026-03-01", "1d"), "is before --from"),
        (
            learnloop(
                &db,
                &[
                    "demo",
                    "--out",
                    demo_out.to_str().unwrap(),
                    "--start",
                    "2026-02-30",
                ],
            ),
            "--start",
        ),
        (
            learnloop(
                &db,
                &[
                    "demo",
                    "--out",
                    demo_out.to_str().unwrap(),
                    "--start",
                    "1999-06-01",
                ],
            ),
            "--start",
        ),
        (
            learnloop(
                &db,
                &["demo", "--out", demo_out.to_str().unwrap(), "--days", "0"],
            ),
            "--days",
        ),
        (
            learnloop(
                &db,
                &[
                    "explain",
                    "--pattern",
                    "uptrend.S2.add",
                    "--category",
                    "adds",
                ],
            ),
            "--category",
        ),
        (
            learnloop(
                &db,
                &[
                    "explain",
                    "--pattern",
                    "p",
                    "--category",
                    "add",
                    "--scope",
                    "bucket",
                ],
            ),
            "--scope",
        ),
        (
            learnloop(
                &db,
                &[
                    "lookup",
                    "--pattern",
                    "p",
                    "--category",
                    "add",
                    "--scope",
                    "{not json",
                ],
            ),
            "--scope",
        ),
        (
            learnloop(&db, &["lookup", "--pattern", "p", "--category", "Buy"]),
            "--category",
        ),
        (
            learnloop(
                &db,
                &[
                    "explain",
                    "--pattern",
                    "p",
                    "--category",
                    "add",
                    "--scope",
                    "bucket=micro,bucket=mid",
                ],
            ),
            "given twice",
        ),
        (
            learnloop(
                &db,
                &[
                    "lookup",
                    "--pattern",
                    "p",
                    "--category",
                    "add",
                    "--scope",
                    r#"{"bucket":"micro","bucket":"mid"}"#,
                ],
            ),
            "twice",
        ),
        (learnloop(&db, &["export", "lesons"]), "learning_lessons"),
        // Alone it would run a real run that looks like a null one.
        (learnloop(&db, &["run", "--placebo-seed", "5"]), "--placebo"),
        (learnloop(&db, &["link"]), "does not create"),
        (learnloop(&db, &["materialize"]), "does not create"),
    ];
    for (out, names) in &cases {
        assert_usage_error(out, names);
    }
    assert!(!db.exists(), "a usage error creates no store");
    assert!(!dir.join("replay").exists() && !demo_out.exists());
}

#[test]
fn a_single_stage_warns_of_the_flags_it_takes_but_does_not_use() {
    let dir = scratch("unused-flags");
    let db = dir.join("t.db");
    let ingest = learnloop(&db, &["ingest", SAMPLE]);
    assert!(ingest.status.success(), "{}", stderr(&ingest));
    let warnings = |args: &[&str]| {
        let out = learnloop(&db, args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        stderr(&out)
            .lines()
            .filter(|l| l.contains("WARN") && l.contains("has no effect"))
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    let link = warnings(&[
        "link",
        "--activate",
        "--k-max",
        "2",
        "--store-min-trades",
        "5",
    ]);
    assert_eq!(link.len(), 3, "{link:?}");
    for flag in ["--activate", "--k-max", "--store-min-trades"] {
        assert!(
            link.iter()
                .any(|l| l.contains(&format!("{flag} has no effect on the link stage"))),
            "{flag}: {link:?}"
        );
    }
    assert_eq!(
        warnings(&["aggregate", "--k-max", "2"]),
        Vec::<String>::new()
    );
    let lessons = warnings(&["lessons", "--activate", "--store-min-trades", "5"]);
    assert_eq!(lessons.len(), 1, "{lessons:?}");
    assert!(lessons[0].contains("only materialize (or run) writes and activates"));
    assert_eq!(
        warnings(&["materialize", "--activate"]),
        Vec::<String>::new()
    );
    let materialize = warnings(&["materialize", "--k-max", "2"]);
    assert_eq!(materialize.len(), 1, "{materialize:?}");
    // `run` uses every flag: it warns of none.
    assert_eq!(
        warnings(&["run", "--k-max", "2", "--activate"]),
        Vec::<String>::new()
    );
}

#[test]
fn a_date_and_its_rfc3339_midnight_are_the_same_as_of_everywhere() {
    let dir = scratch("dates");
    let db = dir.join("t.db");
    let ingest = learnloop(&db, &["ingest", SAMPLE]);
    assert!(ingest.status.success(), "{}", stderr(&ingest));
    let as_of = |text: &str| {
        let run = stdout_json(&learnloop(&db, &["link", "--as-of", text, "--json"]));
        run["as_of"].as_str().unwrap().to_string()
    };
    assert_eq!(as_of("2026-01-20"), "2026-01-20T00:00:00Z");
    assert_eq!(as_of("2026-01-20T00:00:00Z"), "2026-01-20T00:00:00Z");
    assert_eq!(as_of("2026-01-20T01:00:00+01:00"), "2026-01-20T00:00:00Z");
}

#[test]
fn errors_are_printed_once_and_as_one_json_line_under_log_format_json() {
    let dir = scratch("json-errors");
    let db = dir.join("t.db");
    // A failure (exit 1): nothing ingested yet. Even with every log on, the error appears once.
    let failed = learnloop_command(&db)
        .env("LEARNLOOP_LOG", "trace")
        .args(["run"])
        .output()
        .unwrap();
    assert_eq!(failed.status.code(), Some(1));
    assert_eq!(
        stderr(&failed).matches("no strands ingested").count(),
        1,
        "{}",
        stderr(&failed)
    );

    // An invalid filter is said, not ignored silently.
    let bad_filter = learnloop_command(&db)
        .env("LEARNLOOP_LOG", "garbage[[")
        .args(["status"])
        .output()
        .unwrap();
    assert!(
        stderr(&bad_filter).contains("not a valid log filter"),
        "{}",
        stderr(&bad_filter)
    );

    for (args, code) in [
        (&["--log-format", "json", "run"][..], 1),
        (&["--log-format", "json", "run", "--as-of", "never"][..], 2),
        (&["--log-format=json", "no-such-command"][..], 2),
    ] {
        // Not even LEARNLOOP_LOG=off may swallow the error.
        let out = learnloop_command(&db)
            .env("LEARNLOOP_LOG", "off")
            .args(args)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        let text = stderr(&out);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1, "one line: {text}");
        let event: serde_json::Value = serde_json::from_str(lines[0]).expect("a JSON line");
        assert_eq!(event["level"], "ERROR");
        assert_eq!(event["fields"]["exit_code"], code);
        assert!(!event["fields"]["error"].as_str().unwrap().is_empty());
    }

    // `--strict` failing on quarantined input says so the same way.
    let bad = dir.join("bad.jsonl");
    std::fs::write(&bad, "not json\n").unwrap();
    let strict = learnloop(
        &db,
        &[
            "--log-format",
            "json",
            "ingest",
            "--strict",
            bad.to_str().unwrap(),
        ],
    );
    assert_eq!(strict.status.code(), Some(1));
    let event: serde_json::Value =
        serde_json::from_str(stderr(&strict).trim()).expect("one JSON line");
    assert!(event["fields"]["error"]
        .as_str()
        .unwrap()
        .contains("quarantined"));
    assert_eq!(event["fields"]["exit_code"], 1);
}

#[test]
fn no_colour_into_a_pipe_unless_asked_and_quiet_verbose_and_learnloop_log_set_the_level() {
    let dir = scratch("colour");
    let db = dir.join("t.db");
    let run = |env: &[(&str, &str)], args: &[&str]| {
        let mut cmd = learnloop_command(&db);
        cmd.env_remove("LEARNLOOP_LOG").env_remove("NO_COLOR");
        for (k, v) in env {
            cmd.env(k, v);
        }
        let out = cmd.args(args).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        stderr(&out)
    };
    run(&[], &["ingest", SAMPLE]);
    let export = |flags: &[&'static str]| [flags, &["export", "meta"][..]].concat();
    let verbose = run(&[], &export(&["-v"]));
    assert!(
        verbose.contains("INFO") && verbose.contains("exported"),
        "-v logs info: {verbose}"
    );
    assert!(
        !verbose.contains('\x1b'),
        "no colour codes into a pipe: {verbose:?}"
    );
    assert!(run(&[], &export(&["--color", "always", "-v"])).contains('\x1b'));
    assert!(!run(&[("NO_COLOR", "1")], &export(&["-v"])).contains('\x1b'));
    assert!(
        !run(&[], &export(&[])).contains("INFO"),
        "warnings and errors only by default"
    );
    // LEARNLOOP_LOG wins over -q.
    assert!(run(&[("LEARNLOOP_LOG", "info")], &export(&["-q"])).contains("exported"));
    // A lookup without any config fails open with a warning, which -q silences.
    let lookup = |flags: &[&'static str]| {
        [
            flags,
            &["lookup", "--pattern", "uptrend.S2.add", "--category", "add"][..],
        ]
        .concat()
    };
    assert!(run(&[], &lookup(&[])).contains("WARN"));
    assert_eq!(run(&[], &lookup(&["-q"])), "");

    let help = String::from_utf8(learnloop(&db, &["--help"]).stdout).unwrap();
    assert!(
        help.contains("LEARNLOOP_LOG") && help.contains("NO_COLOR"),
        "{help}"
    );
    assert_eq!(
        learnloop(&db, &["-q", "-v", "status"]).status.code(),
        Some(2)
    );
}

#[test]
fn progress_bars_reach_a_terminal_only_and_not_under_quiet() {
    let dir = scratch("progress");
    let db = dir.join("t.db");
    let piped = learnloop(&db, &["run", "--input", SAMPLE]);
    assert!(piped.status.success(), "{}", stderr(&piped));
    let text = stderr(&piped);
    assert!(
        !text.contains('\r') && !text.contains("(1/4)"),
        "no bar into a pipe: {text:?}"
    );

    // Under a pseudo-terminal (util-linux `script`), the run's stages are drawn on stderr.
    let has_script = std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !has_script {
        eprintln!("SKIPPED the terminal half: util-linux `script` is not installed");
        return;
    }
    let on_terminal = |extra: &str| {
        let command = format!(
            "{} --db {} {extra} run --rebuild",
            env!("CARGO_BIN_EXE_learnloop"),
            db.display()
        );
        let out = std::process::Command::new("script")
            .args(["-qec", &command, "/dev/null"])
            .env_remove("LEARNLOOP_LOG")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let drawn = on_terminal("");
    assert!(
        drawn.contains("(1/4)") && drawn.contains("link"),
        "{drawn:?}"
    );
    let quiet = on_terminal("-q");
    assert!(!quiet.contains("(1/4)"), "-q draws no bar: {quiet:?}");
    assert!(
        quiet.contains("what changed"),
        "the summary itself still prints: {quiet:?}"
    );
}

/// `export --out` or `demo --out` naming the store (or any SQLite database) would replace every
/// lesson and config with a CSV or JSON Lines file.
#[test]
fn an_out_file_that_is_a_store_is_refused_and_the_store_kept() {
    let dir = scratch("out-store");
    let db = dir.join("t.db");
    let ok = learnloop(&db, &["ingest", SAMPLE]);
    assert_eq!(ok.status.code(), Some(0), "{}", stderr(&ok));
    let before = std::fs::read(&db).unwrap();
    let copy = dir.join("copy.db");
    std::fs::copy(&db, &copy).unwrap();
    for out in [&db, &copy] {
        let path = out.to_str().unwrap();
        assert_usage_error(
            &learnloop(&db, &["export", "meta", "--out", path]),
            "refusing to overwrite",
        );
        assert_usage_error(
            &learnloop(&db, &["demo", "--out", path, "--cycles", "20"]),
            "refusing to overwrite",
        );
    }
    // A demo replaces its own earlier output, never a strands file it did not write.
    let real = dir.join("real.jsonl");
    std::fs::copy(SAMPLE, &real).unwrap();
    let real_path = real.to_str().unwrap();
    assert_usage_error(
        &learnloop(&db, &["demo", "--out", real_path, "--cycles", "20"]),
        "that no demo wrote",
    );
    assert_eq!(
        std::fs::read(&real).unwrap(),
        std::fs::read(SAMPLE).unwrap()
    );
    // The same for a directory of another bot's decision log.
    let log = dir.join("desk-log");
    std::fs::create_dir_all(log.join("packets")).unwrap();
    std::fs::write(log.join("packets/2026-01-02.json"), "[]").unwrap();
    let log_path = log.to_str().unwrap();
    let packets = ["demo", "--format", "decision-packets", "--out", log_path];
    assert_usage_error(&learnloop(&db, &packets), "that no demo wrote");
    assert!(log.join("packets/2026-01-02.json").exists());
    let demo = dir.join("demo.jsonl");
    let demo_path = demo.to_str().unwrap();
    for _ in 0..2 {
        let again = learnloop(&db, &["demo", "--out", demo_path, "--cycles", "20"]);
        assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    }
    // A report for a module the store does not have, or from a replay directory that is not
    // one, is bad usage: nothing is written.
    let report = dir.join("report");
    let report_path = report.to_str().unwrap();
    assert_usage_error(
        &learnloop(&db, &["report", "--out", report_path, "--module", "nosuch"]),
        "--module",
    );
    assert_usage_error(
        &learnloop(
            &db,
            &["report", "--out", report_path, "--replay", "no-such-dir"],
        ),
        "no-such-dir",
    );
    assert!(!report.exists());
    assert_eq!(std::fs::read(&db).unwrap(), before);
    let status = learnloop(&db, &["status"]);
    assert_eq!(status.status.code(), Some(0), "{}", stderr(&status));
}
