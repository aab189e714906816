//! The lesson stage end to end on the demo data: planted effects found, placebo clean,
//! lifecycle stable across runs.

use learnloop_model::{LessonRow, LessonStatus, LoopConfig, Timestamp};
use learnloop_pipeline::{RunOptions, Stage};
use learnloop_store::lessons;
use learnloop_store::open_in_memory;
use learnloop_tests::{demo_lines_over, dump, ingest, run, run_rolled_back, run_with};
use std::collections::BTreeMap;

fn scope_of(l: &LessonRow) -> BTreeMap<String, String> {
    serde_json::from_str(&l.scope_values).unwrap()
}

/// The default demo (3000 cycles over 180 days), run once and shared by the assertions below.
fn demo_run() -> (
    learnloop_store::Connection,
    learnloop_demo::GroundTruth,
    LoopConfig,
) {
    let (lines, truth) = demo_lines_over(3000, 7, 180);
    let mut conn = open_in_memory().unwrap();
    ingest(&mut conn, &lines);
    let cfg = LoopConfig::default();
    run(&mut conn, &cfg, None, false);
    (conn, truth, cfg)
}

/// A demo of 3000 cycles over 180 days ingested (not run), the defaults, and its latest as-of.
fn ingested_demo(seed: u64) -> (learnloop_store::Connection, LoopConfig, Timestamp) {
    let (lines, _) = demo_lines_over(3000, seed, 180);
    let mut conn = open_in_memory().unwrap();
    ingest(&mut conn, &lines);
    let end = learnloop_store::strands::latest_created_at(&conn)
        .unwrap()
        .unwrap();
    (conn, LoopConfig::default(), end)
}

#[test]
fn planted_effects_become_lessons_and_a_placebo_finds_nothing() {
    let (mut conn, truth, cfg) = demo_run();
    let active = lessons::active_lessons(&conn).unwrap();
    let mut missed = 0;
    for effect in &truth.effects {
        // Found at its scope, or at a parent or child of it (one scope contains the other),
        // with the planted sign.
        let found = active.iter().find(|l| {
            let scope = scope_of(l);
            let contains = |a: &BTreeMap<String, String>, b: &BTreeMap<String, String>| {
                b.iter().all(|(k, v)| a.get(k) == Some(v))
            };
            l.pattern_key == effect.pattern_key
                && l.category.as_str() == effect.action_category
                && (contains(&scope, &effect.scope) || contains(&effect.scope, &scope))
                && l.shrunk_edge.signum() == effect.effect_r.signum()
        });
        if found.is_none() {
            // An effect that starts halfway through carries half its size over the period, and
            // the 1-dim Euphoria effect lives in few weekly clusters: with cluster-robust tests
            // and the run's whole family either may stay below the bar (and the Euphoria root no
            // longer carries it once the bad breakout roots are out of its comparison, SPEC
            // §4.1). Then the exact scope must be in the candidates with an honest reason (SPEC
            // acceptance: found, or explain gives an honest reason).
            missed += 1;
            let mask = effect
                .scope
                .keys()
                .map(|k| 1u64 << cfg.dims.index_of(k).unwrap())
                .sum::<u64>();
            let hash = learnloop_model::scope::scope_values_hash(
                effect.scope.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            let category = effect.action_category.parse().unwrap();
            let group = learnloop_store::stats::GroupKey {
                module: "pm",
                pattern_key: &effect.pattern_key,
                category,
            };
            let c = lessons::candidate(&conn, group, mask, hash)
                .unwrap()
                .expect("the late effect's scope is tested");
            assert!(
                c.reason.starts_with("q-value") && c.edge.signum() == effect.effect_r.signum(),
                "missed effect {effect:?}: {c:?}"
            );
            continue;
        }
        assert!(
            found.is_some(),
            "planted effect {effect:?} not found among {} active lessons",
            active.len()
        );
    }
    // The whole-pattern and the interaction effects are found.
    assert!(missed <= 2, "{missed} of 4 planted effects missed");

    let placebo = RunOptions {
        as_of: None,
        rebuild: false,
        placebo: Some(cfg.lessons.placebo_seed),
        ..RunOptions::default()
    };
    let report = run_rolled_back(&mut conn, &cfg, &placebo, &Stage::ALL).unwrap();
    let placebo_active = report.lessons.unwrap().lessons_active;
    // Under the null, BH at fdr 0.10 makes any discovery at all a < 10% event; allow one.
    assert!(
        placebo_active <= 1,
        "placebo found {placebo_active} lessons"
    );
}

#[test]
fn reruns_change_nothing_and_a_later_as_of_keeps_keys_and_created_at() {
    let (mut conn, cfg, end) = ingested_demo(3);
    let earlier = Timestamp(end.millis() - 7 * 86_400_000);

    run(&mut conn, &cfg, Some(earlier), false);
    let first = dump(&conn);
    run(&mut conn, &cfg, Some(earlier), false);
    assert_eq!(first, dump(&conn), "the same as-of twice changes nothing");
    let before: BTreeMap<String, LessonRow> = lessons::active_lessons(&conn)
        .unwrap()
        .into_iter()
        .map(|l| (l.lesson_key.clone(), l))
        .collect();
    assert!(!before.is_empty());

    run_with(
        &mut conn,
        &cfg,
        &RunOptions {
            as_of: Some(end),
            rebuild: false,
            placebo: None,
            activate: true,
            run_id: None,
        },
    );
    let after = lessons::all_lessons(&conn).unwrap();
    for (key, old) in &before {
        let now = after
            .iter()
            .find(|l| &l.lesson_key == key)
            .expect("lesson keys are kept");
        assert_eq!(now.created_at, old.created_at, "created_at is never reset");
        if now.status == LessonStatus::Active {
            let history = lessons::edge_history(&conn, key, end).unwrap();
            assert_eq!(history.len(), 2, "one edge-history point per run");
            assert_eq!(history[0].0, earlier);
            assert_eq!(history[1].0, end);
        } else {
            assert!(now.status_reason.is_some(), "a retired lesson says why");
        }
    }
}

/// A run as of a time before what the store has learned is refused and changes nothing: run
/// anyway, it would leave lessons of the past active in the present (hysteresis keeps them) and
/// count confirmations and decay backwards. A placebo run (rolled back) may look at the past.
#[test]
fn a_run_as_of_before_the_learned_state_is_refused_and_changes_nothing() {
    let (mut conn, cfg, end) = ingested_demo(3);
    let earlier = Timestamp(end.millis() - 60 * 86_400_000);
    run(&mut conn, &cfg, Some(end), false);
    let learned = dump(&conn);

    let options = RunOptions {
        as_of: Some(earlier),
        activate: true,
        ..RunOptions::default()
    };
    match run_rolled_back(&mut conn, &cfg, &options, &Stage::ALL) {
        Err(learnloop_pipeline::PipelineError::AsOfBeforeLearned { as_of, learned }) => {
            assert_eq!((as_of, learned), (earlier, end));
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        learned,
        dump(&conn),
        "a refused run changed a derived table"
    );

    let placebo = RunOptions {
        placebo: Some(1),
        ..options
    };
    run_rolled_back(&mut conn, &cfg, &placebo, &Stage::ALL)
        .expect("a placebo may look at the past");
    run(&mut conn, &cfg, Some(end), false);
    assert_eq!(learned, dump(&conn), "the same as-of again changes nothing");
}

/// A stage run on its own reads what the stage before it stored: statistics aggregated as of
/// one day are not judged as of another, nor lessons of one day materialized as of another.
#[test]
fn a_stage_alone_is_refused_when_its_input_is_of_another_as_of() {
    let (mut conn, cfg, end) = ingested_demo(3);
    let earlier = Timestamp(end.millis() - 30 * 86_400_000);
    run(&mut conn, &cfg, Some(earlier), false);
    let learned = dump(&conn);
    let at_end = RunOptions {
        as_of: Some(end),
        activate: true,
        ..RunOptions::default()
    };
    for (stage, input, stored) in [
        (Stage::Aggregate, "link", earlier),
        (Stage::Lessons, "link", earlier),
        (Stage::Materialize, "lessons", earlier),
    ] {
        match run_rolled_back(&mut conn, &cfg, &at_end, &[stage]) {
            Err(learnloop_pipeline::PipelineError::StageInputAsOf {
                stage: s,
                input: i,
                stored: t,
                as_of,
            }) => assert_eq!((s, i, t, as_of), (stage.name(), input, stored, end)),
            other => panic!("{stage:?} alone: expected a refusal, got {other:?}"),
        }
    }
    assert_eq!(learned, dump(&conn), "a refused stage changed a table");

    // Links moved on alone: lessons as of the statistics' time would read later trades.
    let tx = conn.transaction().unwrap();
    learnloop_pipeline::run_stages(&tx, &cfg, &at_end, &[Stage::Link], learnloop_tests::now())
        .unwrap();
    tx.commit().unwrap();
    let at_earlier = RunOptions {
        as_of: Some(earlier),
        ..at_end.clone()
    };
    match run_rolled_back(&mut conn, &cfg, &at_earlier, &[Stage::Lessons]) {
        Err(learnloop_pipeline::PipelineError::StageInputAsOf { input, stored, .. }) => {
            assert_eq!((input, stored), ("link", end))
        }
        other => panic!("lessons on later links: expected a refusal, got {other:?}"),
    }

    // Each stage in turn, as of the same time, is what the nightly run does in one call.
    for stage in Stage::ALL {
        let tx = conn.transaction().unwrap();
        learnloop_pipeline::run_stages(&tx, &cfg, &at_end, &[stage], learnloop_tests::now())
            .unwrap_or_else(|e| panic!("{stage:?} after its input, as of the same time: {e}"));
        tx.commit().unwrap();
    }
    let staged = dump(&conn);
    let (mut whole, _, _) = ingested_demo(3);
    run(&mut whole, &cfg, Some(earlier), false);
    run(&mut whole, &cfg, Some(end), false);
    assert_eq!(staged, dump(&whole), "stage by stage differs from the run");
}

/// Issue 9 D4: a run on the first part of a file, a run on the whole, and the same run again:
/// the third run changes nothing in `learning_lessons` (nor any derived table).
#[test]
fn a_rerun_on_unchanged_input_leaves_the_lessons_unchanged() {
    let (lines, _) = demo_lines_over(3000, 5, 180);
    let cfg = LoopConfig::default();
    let mut conn = open_in_memory().unwrap();
    ingest(&mut conn, &lines[..lines.len() * 2 / 3]);
    run(&mut conn, &cfg, None, false);
    ingest(&mut conn, &lines);
    run(&mut conn, &cfg, None, false);
    let lessons_before = lessons::all_lessons(&conn).unwrap();
    let before = dump(&conn);
    run(&mut conn, &cfg, None, false);
    assert_eq!(lessons_before, lessons::all_lessons(&conn).unwrap());
    assert_eq!(before, dump(&conn), "a re-run changed a derived table");
}

/// SPEC §4.8: run nightly over the last weeks of the demo. A lesson is retired only when its
/// evidence is clearly gone (two consecutive failed runs, a sign change, or no place left in the
/// per-pattern limit for a failing lesson), `created_at` never moves, `confirmed_at` never goes
/// back and lies between `created_at` and the run's as-of.
#[test]
fn nightly_runs_retire_only_on_clear_evidence_and_keep_their_dates() {
    let (mut conn, cfg, end) = ingested_demo(11);
    let mut seen: BTreeMap<String, LessonRow> = BTreeMap::new();
    let mut retirements = 0;
    for day in (0..12).rev() {
        let as_of = Timestamp(end.millis() - day * 86_400_000);
        run(&mut conn, &cfg, Some(as_of), false);
        for l in lessons::all_lessons(&conn).unwrap() {
            if let Some(old) = seen.get(&l.lesson_key) {
                if old.created_at.is_some() {
                    assert_eq!(l.created_at, old.created_at, "created_at moved");
                }
                assert!(l.confirmed_at >= old.confirmed_at, "confirmed_at went back");
                if old.status == LessonStatus::Active && l.status == LessonStatus::Retired {
                    retirements += 1;
                    let why = l.status_reason.clone().unwrap_or_default();
                    assert!(
                        why.starts_with("failed on 2 consecutive runs")
                            || why.starts_with("edge changed sign")
                            || why.starts_with("limit: failed while active"),
                        "retired on one bad night: {why}"
                    );
                    assert!(
                        old.failed_runs == 1 || why.starts_with("edge changed sign"),
                        "retired without a failed run before: {old:?}"
                    );
                }
            }
            if l.status == LessonStatus::Active {
                let confirmed = l.confirmed_at.expect("an active lesson has confirmed_at");
                assert!(confirmed <= as_of && Some(confirmed) >= l.created_at);
            }
            seen.insert(l.lesson_key.clone(), l);
        }
    }
    eprintln!("retirements over 12 nights: {retirements}");
}
