//! End-to-end properties of ingest → link → aggregate on generated data.

use learnloop_model::{AnomalyKind, LoopConfig, Timestamp};
use learnloop_store::open_in_memory;
use learnloop_tests::{demo_lines, dump, dump_stats, ingest, run};

fn small_config() -> LoopConfig {
    let mut cfg = LoopConfig::default();
    cfg.aggregate.store_min_trades = Some(5);
    cfg
}

#[test]
fn running_twice_changes_no_derived_table() {
    let (lines, _) = demo_lines(400, 3);
    let mut conn = open_in_memory().unwrap();
    ingest(&mut conn, &lines);
    let first = run(&mut conn, &small_config(), None, false);
    let before = dump(&conn);
    let second = run(&mut conn, &small_config(), None, false);
    assert_eq!(before, dump(&conn));
    assert_eq!(first.as_of, second.as_of);
    let second = second.link.unwrap();
    assert_eq!((second.trades_linked_new, second.rebuild), (0, false));
    // A store linked by older linking rules is re-linked whole once, with the same result here.
    conn.execute("DELETE FROM meta WHERE key = 'link_rules_version'", [])
        .unwrap();
    let upgraded = run(&mut conn, &small_config(), None, false);
    assert!(upgraded.link.unwrap().rebuild);
    assert_eq!(before, dump(&conn));
    let after = run(&mut conn, &small_config(), None, false);
    assert!(!after.link.unwrap().rebuild);
    // Re-ingesting the same file adds nothing either.
    let again = ingest(&mut conn, &lines);
    assert_eq!(again.inserted, 0);
    run(&mut conn, &small_config(), None, false);
    assert_eq!(before, dump(&conn));
}

#[test]
fn two_halves_with_a_run_after_each_equal_one_run_over_everything() {
    let (lines, _) = demo_lines(400, 4);
    let cfg = small_config();
    let mut whole = open_in_memory().unwrap();
    ingest(&mut whole, &lines);
    run(&mut whole, &cfg, None, false);

    let mut halves = open_in_memory().unwrap();
    let (a, b) = lines.split_at(lines.len() / 2);
    ingest(&mut halves, a);
    let early = run(&mut halves, &cfg, None, false);
    ingest(&mut halves, b);
    run(&mut halves, &cfg, None, false);
    assert!(
        early.link.unwrap().trades_linked_total > 0,
        "the first half links trades on its own"
    );
    assert_eq!(dump_stats(&whole), dump_stats(&halves));
}

#[test]
fn rebuild_equals_the_incremental_result() {
    let (lines, _) = demo_lines(300, 5);
    let cfg = small_config();
    let mut conn = open_in_memory().unwrap();
    let (a, b) = lines.split_at(lines.len() / 3);
    ingest(&mut conn, a);
    run(&mut conn, &cfg, None, false);
    ingest(&mut conn, b);
    run(&mut conn, &cfg, None, false);
    let incremental = dump(&conn);
    let report = run(&mut conn, &cfg, None, true);
    assert!(report.link.unwrap().rebuild);
    assert_eq!(incremental, dump(&conn));
}

#[test]
fn an_earlier_as_of_sees_only_what_was_known_then() {
    let (lines, _) = demo_lines(300, 6);
    let cfg = small_config();
    let mut conn = open_in_memory().unwrap();
    ingest(&mut conn, &lines);
    let full = run(&mut conn, &cfg, None, false);
    let end = Timestamp::parse(&full.as_of).unwrap();
    let mid = Timestamp(end.millis() - 30 * 86_400_000);
    let partial = run(&mut conn, &cfg, Some(mid), false);
    let n_mid = partial.link.unwrap().trades_linked_total;
    assert!(n_mid > 0 && n_mid < full.link.unwrap().trades_linked_total);
    let latest_exit: Option<i64> = conn
        .query_row("SELECT MAX(exit_at_ms) FROM trade_events", [], |r| r.get(0))
        .unwrap();
    assert!(latest_exit.unwrap() <= mid.millis());
    // Moving the as-of forward again restores exactly the full result.
    let mut fresh = open_in_memory().unwrap();
    ingest(&mut fresh, &lines);
    run(&mut fresh, &cfg, Some(end), false);
    run(&mut conn, &cfg, Some(end), false);
    assert_eq!(dump_stats(&fresh), dump_stats(&conn));
}

#[test]
fn injected_mess_is_quarantined_or_reported_exactly() {
    let (lines, truth) = demo_lines(400, 8);
    let mut conn = open_in_memory().unwrap();
    let ingested = ingest(&mut conn, &lines);
    let report = run(&mut conn, &small_config(), None, false);
    let link = report.link.unwrap();
    let m = &truth.mess;
    assert_eq!(
        link.trades_linked_total as usize, truth.cycles,
        "every clean cycle links"
    );
    let anomaly = |k: AnomalyKind| link.anomalies.get(&k).copied().unwrap_or(0) as usize;
    assert_eq!(anomaly(AnomalyKind::LateAction), m.late_actions);
    assert_eq!(anomaly(AnomalyKind::TradeIdMismatch), m.trade_id_mismatches);
    assert_eq!(anomaly(AnomalyKind::CloseWithoutActions), m.orphan_closes);
    assert_eq!(anomaly(AnomalyKind::DuplicateClose), m.duplicate_closes);
    assert_eq!(anomaly(AnomalyKind::OpenCycle), m.open_cycle_actions);
    assert_eq!(ingested.already_present as usize, m.duplicate_lines);
    assert_eq!(ingested.id_conflicts as usize, m.conflicting_duplicates);
    let quarantined = |code: &str| {
        ingested
            .normalized
            .quarantined
            .get(code)
            .copied()
            .unwrap_or(0) as usize
    };
    assert_eq!(quarantined("malformed_json"), m.malformed_lines);
    assert_eq!(quarantined("rr_not_finite"), m.nan_rr_closes);
    assert_eq!(quarantined("unknown_category"), m.unknown_category_actions);
    assert_eq!(quarantined("missing_field"), m.missing_position_id_closes);
    assert_eq!(
        quarantined("duplicate_id_conflict"),
        m.conflicting_duplicates
    );
    // The same lines again (a re-sent file, PostgreSQL's look-back window): every conflict and
    // bad line was counted the first time.
    let again = ingest(&mut conn, &lines);
    assert!(m.conflicting_duplicates > 0);
    assert_eq!(again.id_conflicts, 0);
    assert_eq!(again.normalized.quarantined_total(), 0);
    assert!(again.normalized.already_quarantined as usize >= m.conflicting_duplicates);
}

/// Records what a run tells its progress observer.
#[derive(Default)]
struct Recorder {
    stages: std::cell::RefCell<Vec<(learnloop_pipeline::Stage, usize, usize)>>,
    advances: std::cell::RefCell<Vec<(learnloop_pipeline::Stage, u64, u64)>>,
}

impl learnloop_pipeline::Progress for Recorder {
    fn stage(&self, stage: learnloop_pipeline::Stage, index: usize, count: usize) {
        self.stages.borrow_mut().push((stage, index, count));
    }
    fn advance(&self, done: u64, total: u64) {
        let stage = self
            .stages
            .borrow()
            .last()
            .expect("advance inside a stage")
            .0;
        self.advances.borrow_mut().push((stage, done, total));
    }
}

#[test]
fn progress_is_told_each_stage_and_every_aggregate_group_and_changes_nothing() {
    use learnloop_pipeline::{run_stages_with_progress, RunOptions, Stage};
    let (lines, _) = demo_lines(400, 5);
    let cfg = small_config();
    let mut silent = open_in_memory().unwrap();
    ingest(&mut silent, &lines);
    let quiet_report = run(&mut silent, &cfg, None, false);

    let mut observed = open_in_memory().unwrap();
    ingest(&mut observed, &lines);
    let recorder = Recorder::default();
    let options = RunOptions {
        activate: true,
        ..RunOptions::default()
    };
    let tx = observed.transaction().unwrap();
    let report = run_stages_with_progress(
        &tx,
        &cfg,
        &options,
        &Stage::ALL,
        learnloop_tests::now(),
        &recorder,
    )
    .unwrap();
    tx.commit().unwrap();

    assert_eq!(dump(&silent), dump(&observed), "observing changes no table");
    assert_eq!(
        recorder.stages.into_inner(),
        [
            (Stage::Link, 0, 4),
            (Stage::Aggregate, 1, 4),
            (Stage::Lessons, 2, 4),
            (Stage::Materialize, 3, 4)
        ]
    );
    let groups = report.aggregate.unwrap().groups;
    assert_eq!(groups, quiet_report.aggregate.unwrap().groups);
    let expected: Vec<_> = (1..=groups)
        .map(|g| (Stage::Aggregate, g, groups))
        .collect();
    assert!(groups > 1);
    assert_eq!(
        recorder.advances.into_inner(),
        expected,
        "one tick per pattern group"
    );
}

#[test]
fn a_run_gives_a_scratch_store_back_its_own_page_cache_bound() {
    // The stages bound the page cache for their passes; a replay's scratch store must keep its
    // small bound afterwards, not a writer's gigabyte.
    let (lines, _) = demo_lines(200, 5);
    let mut conn = learnloop_store::open_scratch().unwrap();
    let bound = |conn: &learnloop_store::Connection| -> i64 {
        conn.pragma_query_value(None, "cache_size", |r| r.get(0))
            .unwrap()
    };
    let scratch_bound = -learnloop_store::SCRATCH_PAGE_CACHE_MIB * 1024;
    assert_eq!(bound(&conn), scratch_bound);
    ingest(&mut conn, &lines);
    let report = run(&mut conn, &LoopConfig::default(), None, false);
    assert!(report.aggregate.is_some() && report.lessons.is_some());
    assert_eq!(bound(&conn), scratch_bound);
}
