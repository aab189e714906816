//! Replay semantics: each step sees only what was known then, and evolves exactly as nightly
//! runs at the same as-of times would have.

use learnloop_model::{LoopConfig, Timestamp};
use learnloop_pipeline::RunOptions;
use learnloop_replay::{replay, ReplayOptions};
use learnloop_tests::{demo_lines_over, ingest, query_rows, run, run_with};
use std::path::Path;

const DAY: i64 = 86_400_000;

/// A fresh directory, removed when the guard drops.
fn scratch_dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("learnloop-replay-{name}-"))
        .tempdir()
        .unwrap()
}

fn small_config() -> LoopConfig {
    let mut cfg = LoopConfig::default();
    cfg.lessons.min_support = vec![8, 8, 8, 12, 12, 16, 16, 20];
    // The windows are a few weeks long: daily time clusters leave enough of them to learn from.
    cfg.lessons.cluster_days = 1;
    cfg
}

/// A file store with `lines` ingested and linked (what `learnloop run` leaves behind).
fn source_store(path: &Path, lines: &[String], cfg: &LoopConfig) {
    let mut conn = learnloop_store::open(path).unwrap();
    ingest(&mut conn, lines);
    run(&mut conn, cfg, None, false);
}

fn options(from: Timestamp, steps: i64, step_days: i64) -> ReplayOptions {
    ReplayOptions {
        from,
        to: Timestamp(from.millis() + (steps - 1) * step_days * DAY),
        step_ms: step_days * DAY,
        placebo_seed: None,
        now: learnloop_tests::now(),
    }
}

/// What nightly runs and a replay must agree on (configs without run_id, which names the run).
const COMPARED: &[&str] = &[
    "SELECT * FROM learning_lessons ORDER BY lesson_key",
    "SELECT * FROM learning_edge_history ORDER BY lesson_key, as_of_ms",
    "SELECT * FROM learning_latent_factors ORDER BY factor_id",
    "SELECT module, version, status, as_of, created_at, checksum, config_data FROM learning_configs ORDER BY module, version",
];

#[test]
fn a_replay_step_equals_nightly_runs_at_the_same_times() {
    let scratch = scratch_dir("nightly");
    let dir = scratch.path();
    let cfg = small_config();
    let (lines, _) = demo_lines_over(2000, 21, 60);
    let source = dir.join("source.db");
    source_store(&source, &lines, &cfg);
    let from = Timestamp::parse("2026-02-08T00:00:00Z").unwrap();
    let opts = options(from, 6, 4);
    let replayed = replay(&source, &cfg, &opts, &mut |_, _| {}).unwrap();
    assert!(
        replayed.steps.iter().any(|s| s.active_lessons > 0),
        "the window is long enough to learn something"
    );

    let mut nightly = learnloop_store::open_in_memory().unwrap();
    ingest(&mut nightly, &lines);
    for step in opts.steps().unwrap() {
        let o = RunOptions {
            as_of: Some(step),
            activate: true,
            ..RunOptions::default()
        };
        run_with(&mut nightly, &cfg, &o);
    }
    for sql in COMPARED {
        assert_eq!(
            query_rows(&replayed.scratch, sql),
            query_rows(&nightly, sql),
            "{sql}"
        );
    }
    // Carried-forward groups really were carried forward, not recomputed.
    assert!(replayed
        .steps
        .iter()
        .skip(1)
        .any(|s| s.aggregate.carried_forward > 0));
}

/// Move every strand of one position to a late arrival time (its trades closed long before).
fn arrive_late(lines: &[String], position: &str, at: Timestamp) -> Vec<String> {
    lines
        .iter()
        .map(|l| match serde_json::from_str::<serde_json::Value>(l) {
            Ok(mut v) if v["position_id"] == position => {
                v["created_at"] = at.to_rfc3339().into();
                v.to_string()
            }
            _ => l.clone(),
        })
        .collect()
}

#[test]
fn a_late_arriving_trade_cannot_influence_any_step_before_it_arrived() {
    let scratch = scratch_dir("late");
    let dir = scratch.path();
    let cfg = small_config();
    let (lines, _) = demo_lines_over(800, 22, 60);
    let from = Timestamp::parse("2026-01-20T00:00:00Z").unwrap();
    let opts = options(from, 8, 5);
    let arrival = Timestamp(from.millis() + 22 * DAY);

    // The same book, once without position pos-00007 and once with it arriving late.
    let without: Vec<String> = lines
        .iter()
        .filter(|l| !l.contains("\"position_id\":\"pos-00007\""))
        .cloned()
        .collect();
    let with_late = arrive_late(&lines, "pos-00007", arrival);
    assert!(
        with_late.len() > without.len(),
        "the position exists in the demo book"
    );
    let (a, b) = (dir.join("without.db"), dir.join("late.db"));
    source_store(&a, &without, &cfg);
    source_store(&b, &with_late, &cfg);
    let ra = replay(&a, &cfg, &opts, &mut |_, _| {}).unwrap();
    let rb = replay(&b, &cfg, &opts, &mut |_, _| {}).unwrap();

    let before = |r: &learnloop_replay::ReplayRun| -> Vec<String> {
        r.evolution
            .iter()
            .filter(|p| p.as_of_ms < arrival.millis())
            .map(|p| format!("{p:?}"))
            .collect()
    };
    assert_eq!(
        before(&ra),
        before(&rb),
        "no step before the arrival sees the late trades"
    );
    for (sa, sb) in ra.steps.iter().zip(&rb.steps) {
        let at = Timestamp::parse(&sa.as_of).unwrap();
        if at < arrival {
            assert_eq!(sa.trades_linked, sb.trades_linked, "{}", sa.as_of);
        } else {
            assert!(
                sb.trades_linked > sa.trades_linked,
                "after arrival the trades count ({})",
                sa.as_of
            );
        }
    }
}

/// The walk-forward scores the inputs' trades whatever the source store last did: a store only
/// ingested, one run as of a week before the window, and one run as of the end give the same
/// uplift and days (before, the first failed and the second scored no trade at all).
#[test]
fn the_walk_forward_does_not_depend_on_when_the_source_was_last_run() {
    let scratch = scratch_dir("source-runs");
    let dir = scratch.path();
    let cfg = small_config();
    let (lines, _) = demo_lines_over(2000, 21, 60);
    let from = Timestamp::parse("2026-02-08T00:00:00Z").unwrap();
    let opts = options(from, 6, 4);
    let store = |name: &str, run_as_of: Option<Option<Timestamp>>| {
        let path = dir.join(name);
        let mut conn = learnloop_store::open(&path).unwrap();
        ingest(&mut conn, &lines);
        if let Some(as_of) = run_as_of {
            run(&mut conn, &cfg, as_of, false);
        }
        path
    };
    let early = Timestamp(from.millis() - 7 * DAY);
    let scored = [
        store("ingested.db", None),
        store("early.db", Some(Some(early))),
        store("end.db", Some(None)),
    ]
    .map(|source| {
        let r = replay(&source, &cfg, &opts, &mut |_, _| {}).unwrap();
        (format!("{:?}", r.uplift), format!("{:?}", r.days))
    });
    assert!(
        !scored[2].1.is_empty() && scored[2].1 != "[]",
        "the window has trades to score"
    );
    assert_eq!(scored[0], scored[2]);
    assert_eq!(scored[1], scored[2]);
}
