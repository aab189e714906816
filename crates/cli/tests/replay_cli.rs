//! `replay --out`: a non-empty directory is refused without `--force`, and `--force` leaves no
//! stale file of an earlier replay beside the new ones.

use std::path::Path;
use std::process::{Command, Output};

fn learnloop(db: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_learnloop"))
        .arg("--db")
        .arg(db)
        .args(args)
        .env_remove("LEARNLOOP_DB")
        .output()
        .expect("the binary runs")
}

#[test]
fn replay_refuses_a_non_empty_out_dir_without_force_and_replaces_its_files_with_it() {
    let dir = std::env::temp_dir().join(format!("learnloop-replay-out-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("t.db");
    let data = dir.join("d.jsonl");
    let ok = |o: Output| {
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        o
    };
    ok(learnloop(
        &db,
        &["demo", "--out", data.to_str().unwrap(), "--cycles", "300"],
    ));
    ok(learnloop(&db, &["ingest", data.to_str().unwrap()]));
    ok(learnloop(&db, &["run"]));
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
    assert!(!refused.status.success());
    let message = String::from_utf8_lossy(&refused.stderr);
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
    std::fs::remove_dir_all(&dir).unwrap();
}
