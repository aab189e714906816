//! The lesson stage end to end on the demo data: planted effects found, placebo clean,
//! lifecycle stable across runs.

use learnloop_model::{LoopConfig, Timestamp};
use learnloop_pipeline::RunOptions;
use learnloop_store::lessons::{self, LessonRow};
use learnloop_store::open_in_memory;
use learnloop_tests::{demo_lines_over, dump, ingest, run, run_with};
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

#[test]
fn planted_effects_become_lessons_and_a_placebo_finds_nothing() {
    let (mut conn, truth, cfg) = demo_run();
    let active = lessons::active_lessons(&conn).unwrap();
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
        if effect.starts_at.is_some() && found.is_none() {
            // An effect that starts halfway through carries half its size over the period: with
            // weekly clusters and the run's whole family it may stay below the bar. Then the
            // exact scope must be in the candidates with an honest reason (SPEC acceptance).
            let mask = effect
                .scope
                .keys()
                .map(|k| 1u64 << cfg.dims.index_of(k).unwrap())
                .sum::<u64>();
            let hash = learnloop_model::scope::scope_values_hash(
                effect.scope.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            );
            let category = effect.action_category.parse().unwrap();
            let c = lessons::candidate(&conn, "pm", &effect.pattern_key, category, mask, hash)
                .unwrap()
                .expect("the late effect's scope is tested");
            assert!(
                c.reason.starts_with("q-value") && c.edge.signum() == effect.effect_r.signum(),
                "late effect {effect:?}: {c:?}"
            );
            continue;
        }
        assert!(
            found.is_some(),
            "planted effect {effect:?} not found among {} active lessons",
            active.len()
        );
    }

    let placebo = RunOptions {
        as_of: None,
        rebuild: false,
        placebo: Some(cfg.lessons.placebo_seed),
        ..RunOptions::default()
    };
    let tx = conn.transaction().unwrap();
    let report =
        learnloop_pipeline::run_stages(&tx, &cfg, &placebo, &learnloop_pipeline::Stage::ALL, "x")
            .unwrap();
    drop(tx);
    let placebo_active = report.lessons.unwrap().lessons_active;
    // Under the null, BH at fdr 0.10 makes any discovery at all a < 10% event; allow one.
    assert!(
        placebo_active <= 1,
        "placebo found {placebo_active} lessons"
    );
}

#[test]
fn reruns_change_nothing_and_a_later_as_of_keeps_keys_and_created_at() {
    let (lines, _) = demo_lines_over(3000, 3, 180);
    let cfg = LoopConfig::default();
    let mut conn = open_in_memory().unwrap();
    ingest(&mut conn, &lines);
    let end = learnloop_store::strands::latest_created_at(&conn)
        .unwrap()
        .unwrap();
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
        if now.status == "active" {
            let history = lessons::edge_history(&conn, key, end).unwrap();
            assert_eq!(history.len(), 2, "one edge-history point per run");
            assert_eq!(history[0].0, earlier);
            assert_eq!(history[1].0, end);
        } else {
            assert!(now.status_reason.is_some(), "a retired lesson says why");
        }
    }
}
