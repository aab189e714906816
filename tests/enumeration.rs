//! The enumeration without k_max (SPEC §12) against the exhaustive one: on the demo's 10
//! dimensions, every lesson, every tested candidate and every config come out the same, while
//! fewer statistics rows are stored.

use learnloop_model::LoopConfig;
use learnloop_store::open_in_memory;
use learnloop_tests::{demo_lines_over, ingest, run};

/// The demo run with `cfg`: (stats rows stored, the lesson-stage tables and configs as text).
fn lessons_of(lines: &[String], cfg: &LoopConfig) -> (u64, String) {
    let mut conn = open_in_memory().unwrap();
    ingest(&mut conn, lines);
    run(&mut conn, cfg, None, false);
    let rows = learnloop_store::export::dump_tables(&conn, &["pattern_scope_stats"])
        .unwrap()
        .lines()
        .count() as u64;
    let tables = learnloop_store::export::dump_tables(
        &conn,
        &[
            "learning_lessons",
            "lesson_candidates",
            "learning_edge_history",
            "learning_latent_factors",
        ],
    )
    .unwrap();
    let configs: Vec<(String, String)> = learnloop_store::configs::all_versions(&conn, "pm")
        .unwrap()
        .into_iter()
        .map(|c| (c.checksum, c.config_data))
        .collect();
    (rows, format!("{tables}\n{configs:?}"))
}

#[test]
fn pruned_enumeration_gives_the_lessons_of_the_exhaustive_one() {
    let (lines, _) = demo_lines_over(3000, 7, 180);
    let pruned = LoopConfig::default();
    assert_eq!(pruned.aggregate.k_max, None);
    let mut exhaustive = LoopConfig::default();
    exhaustive.aggregate.k_max = Some(exhaustive.dims.len() as u32);

    let (pruned_rows, pruned_lessons) = lessons_of(&lines, &pruned);
    let (all_rows, all_lessons) = lessons_of(&lines, &exhaustive);
    assert!(
        pruned_rows < all_rows,
        "pruning stores fewer rows: {pruned_rows} vs {all_rows}"
    );
    assert!(pruned_lessons.contains("active"), "the demo has lessons");
    assert!(
        pruned_lessons == all_lessons,
        "lessons differ between the pruned and the exhaustive enumeration"
    );
}
