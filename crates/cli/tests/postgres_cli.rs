//! `run --from URL --publish URL`, `ingest --from`, `config publish --to` as a scheduler calls
//! them, against the real server `.ci/run` starts (LEARNLOOP_TEST_PG_URL): exit codes, JSON, and
//! the password never printed nor stored.
#![cfg(feature = "postgres")]

use learnloop_model::strand::RawStrand;
use learnloop_store::pg::{self, PgTarget, TableName};
use learnloop_tests::{postgres_test_url, url_password};
use std::path::Path;
use std::process::{Command, Output};

fn learnloop(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_learnloop"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("LEARNLOOP_DB")
        .env_remove("PGPASSWORD")
        .output()
        .expect("the binary runs")
}

/// A fresh directory, removed when the guard drops.
fn scratch(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("learnloop-pgcli-{name}-"))
        .tempdir()
        .unwrap()
}

/// Nothing the command printed contains the password.
fn assert_no_password(o: &Output, secret: &str) {
    for (stream, bytes) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        let text = String::from_utf8_lossy(bytes);
        assert!(
            !text.contains(secret),
            "the password leaked on {stream}: {text}"
        );
    }
}

fn json(o: &Output) -> serde_json::Value {
    assert!(
        o.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("stdout is one JSON document")
}

#[test]
fn nightly_run_from_postgres_publishes_to_postgres_and_never_shows_the_password() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    let secret = url_password(&url);
    let target = PgTarget::parse(&url).unwrap();
    let mut client = pg::connect(&target).unwrap();
    let strands = TableName::parse(&format!("cli_strands_{}", std::process::id())).unwrap();
    let configs = format!("cli_configs_{}", std::process::id());
    client
        .batch_execute(&format!(
            "DROP TABLE IF EXISTS {}; DROP TABLE IF EXISTS \"{configs}\"",
            strands.quoted
        ))
        .unwrap();
    pg::create_strands_table(&mut client, &strands).unwrap();
    let opts = learnloop_demo::DemoOptions {
        mess: false,
        ..learnloop_demo::DemoOptions::default()
    };
    let (lines, _) = learnloop_demo::generate(&opts);
    let raws: Vec<RawStrand> = lines
        .iter()
        .map(|l| RawStrand::from_json_line(l).unwrap())
        .collect();
    pg::copy_strands_in(&mut client, &strands, &raws).unwrap();

    let scratch_dir = scratch("nightly");
    let dir = scratch_dir.path();
    let db = dir.join("t.db");
    let run = learnloop(
        &db,
        &[
            "run",
            "--from",
            &url,
            "--table",
            &strands.display,
            "--activate",
            "--publish",
            &url,
            "--publish-table",
            &configs,
            "--json",
        ],
    );
    assert_no_password(&run, &secret);
    let summary = json(&run);
    assert_eq!(summary["ingest"][0][1]["inserted"], raws.len() as u64);
    let read = &summary["postgres_read"];
    assert_eq!(
        (read["read_from"].as_str(), &read["watermark_before"]),
        (Some("start"), &serde_json::Value::Null)
    );
    assert!(read["watermark_after"].is_string(), "{read}");
    // The run's record keeps where the read left the watermark.
    let runs: serde_json::Value = serde_json::from_slice(
        &learnloop(&db, &["export", "learning_runs", "--format", "json"]).stdout,
    )
    .unwrap();
    let counts: serde_json::Value =
        serde_json::from_str(runs[0]["counts"].as_str().unwrap()).unwrap();
    assert_eq!(
        counts["postgres_read"]["watermark_after"],
        read["watermark_after"]
    );
    let published = &summary["published"][0];
    assert_eq!(
        (published["module"].as_str(), published["changed"].as_bool()),
        (Some("pm"), Some(true))
    );
    let version = published["version"].as_i64().unwrap();

    let stored = TableName::parse(&configs).unwrap();
    let row = pg::read_active_config(&mut client, &stored, "pm")
        .unwrap()
        .unwrap();
    assert_eq!(row.version, version);

    // The same again: nothing new read, nothing new published.
    let again = json(&learnloop(
        &db,
        &[
            "ingest",
            "--from",
            &url,
            "--table",
            &strands.display,
            "--json",
        ],
    ));
    assert_eq!(again["inserted"], 0);
    let republish = learnloop(
        &db,
        &[
            "config", "publish", "--to", &url, "--table", &configs, "--json",
        ],
    );
    assert_no_password(&republish, &secret);
    assert_eq!(json(&republish)[0]["changed"], false);

    // Nothing stored locally holds the password either.
    for table in ["learning_runs", "quarantine", "meta"] {
        let export = learnloop(&db, &["export", table, "--format", "json"]);
        if export.status.success() {
            assert_no_password(&export, &secret);
        }
    }
    let raw_db = std::fs::read(&db).unwrap();
    assert!(
        !raw_db.windows(secret.len()).any(|w| w == secret.as_bytes()),
        "the password is in the store file"
    );
}

#[test]
fn postgres_failures_exit_1_with_a_reason_and_no_password() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    let secret = url_password(&url);
    let scratch_dir = scratch("failures");
    let dir = scratch_dir.path();
    let db = dir.join("t.db");

    let missing = learnloop(&db, &["ingest", "--from", &url, "--table", "no_such_table"]);
    assert_eq!(missing.status.code(), Some(1));
    assert_no_password(&missing, &secret);
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("no_such_table") && stderr.contains("does not exist"),
        "{stderr}"
    );

    let wrong = url.replacen(&secret, "not-the-password", 1);
    let denied = learnloop(&db, &["ingest", "--from", &wrong]);
    assert_eq!(denied.status.code(), Some(1));
    assert_no_password(&denied, "not-the-password");
    assert!(String::from_utf8_lossy(&denied.stderr).contains("cannot connect"));

    let no_config = learnloop(&db, &["config", "publish", "--to", &url]);
    assert_eq!(no_config.status.code(), Some(1));
    assert_no_password(&no_config, &secret);

    let both = learnloop(&db, &["ingest", "x.jsonl", "--from", &url]);
    assert_eq!(
        both.status.code(),
        Some(2),
        "files and --from together are bad usage"
    );

    // A malformed URL or table name is bad usage, found before any store is created.
    let fresh = dir.join("never-created.db");
    for args in [
        &["ingest", "--from", "mysql://u:hunter2@h/db"][..],
        &["ingest", "--from", &url, "--table", "x;drop"],
        &["config", "publish", "--to", &url, "--table", "a.b.c"],
        &["run", "--from", "postgresql://u:hunter2@h/db?sslmode=bogus"],
    ] {
        let o = learnloop(&fresh, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        assert_no_password(&o, "hunter2");
        assert!(!fresh.exists(), "{args:?} created the store");
    }
    // `config publish` reads the store: a mistyped --db is not created.
    let o = learnloop(&fresh, &["config", "publish", "--to", &url]);
    assert_eq!(o.status.code(), Some(2));
    assert!(!fresh.exists());
    // The driver ends a password at the first `@`, so unencoded `/` and `?` belong to it.
    for password in ["S3cr/et", "Ab?Cd9"] {
        let o = learnloop(
            &db,
            &[
                "ingest",
                "--from",
                &format!("postgresql://u:{password}@127.0.0.1:1/db"),
            ],
        );
        assert_eq!(o.status.code(), Some(1));
        assert_no_password(&o, password);
    }
}
