//! What the reliability and crash-safety tests share: running the binary on a scratch store.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn learnloop_command(db: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_learnloop"));
    cmd.arg("--db")
        .arg(db)
        .env_remove("LEARNLOOP_DB")
        .env_remove("LEARNLOOP_PAUSE_AT");
    cmd
}

pub fn learnloop(db: &Path, args: &[&str]) -> Output {
    learnloop_command(db)
        .args(args)
        .output()
        .expect("the binary runs")
}

/// A fresh, empty directory for one test, removed when dropped (the crash tests alone leave
/// hundreds of megabytes of database copies behind otherwise).
pub struct Scratch(tempfile::TempDir);

impl std::ops::Deref for Scratch {
    type Target = Path;
    fn deref(&self) -> &Path {
        self.0.path()
    }
}

/// A fresh, empty directory for one test, named after it for when a failing test is inspected.
pub fn scratch(test: &str) -> Scratch {
    let dir = tempfile::Builder::new()
        .prefix(&format!("learnloop-{test}-"))
        .tempdir()
        .expect("a scratch directory can be created in the temp dir");
    Scratch(dir)
}

pub fn stdout_json(o: &Output) -> Value {
    assert!(
        o.status.success(),
        "failed ({:?}): {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stderr)
    );
    serde_json::from_slice(&o.stdout).expect("stdout is one JSON document")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Synthetic strands with planted effects: with 800 cycles or more, small enough for a debug
/// build yet large enough that a run activates a config with several overrides.
pub fn demo_file(dir: &Path, cycles: u32) -> PathBuf {
    let data = dir.join("demo.jsonl");
    let out = learnloop(
        &dir.join("unused.db"),
        &[
            "demo",
            "--out",
            data.to_str().unwrap(),
            "--cycles",
            &cycles.to_string(),
        ],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    data
}

/// A minimal valid strand line (a legacy action: no v5 fields needed).
pub fn action_line(id: &str, created_at: &str) -> String {
    serde_json::json!({"id": id, "kind": "pm_action", "position_id": "p1",
        "created_at": created_at, "content": {}})
    .to_string()
}

/// `dir/t.db` holding one ingested action.
pub fn store_with_one_action(dir: &Path) -> PathBuf {
    let db = dir.join("t.db");
    let file = dir.join("one-action.jsonl");
    std::fs::write(&file, action_line("a1", "2026-01-02T00:00:00Z") + "\n").unwrap();
    let out = learnloop(&db, &["ingest", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    db
}

/// Every row of a table through `export --format json`.
pub fn table(db: &Path, name: &str) -> Vec<Value> {
    let rows = stdout_json(&learnloop(db, &["export", name, "--format", "json"]));
    rows.as_array().unwrap().clone()
}

/// The active config's version and its number of overrides.
pub fn active_config(db: &Path) -> Option<(i64, usize)> {
    table(db, "learning_configs")
        .into_iter()
        .find(|c| c["status"] == "active")
        .map(|c| {
            let data: Value = serde_json::from_str(c["config_data"].as_str().unwrap()).unwrap();
            let n = data["pattern_overrides"].as_array().unwrap().len()
                + data["pattern_strength_overrides"].as_array().unwrap().len();
            (c["version"].as_i64().unwrap(), n)
        })
}
