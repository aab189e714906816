//! The enumeration without k_max (SPEC §12) against the exhaustive one: on the demo's 10
//! dimensions, every lesson, every tested candidate and every config come out the same, while
//! fewer statistics rows are stored.

use learnloop_model::LoopConfig;
use learnloop_store::open_in_memory;
use learnloop_tests::{demo_lines_over, ingest, query_rows, run};
use std::collections::BTreeSet;

/// What one demo run stored.
struct Stored {
    /// Every `pattern_scope_stats` row, as text.
    stats: BTreeSet<String>,
    /// The deep (≥ 3-dim) subsets the lesson stage tested, and how many of them are stored.
    deep_tested: (u64, u64),
    /// The lesson-stage tables and configs, as text.
    lessons: String,
}

/// The demo run with `cfg`.
fn lessons_of(lines: &[String], cfg: &LoopConfig) -> Stored {
    let mut conn = open_in_memory().unwrap();
    ingest(&mut conn, lines);
    run(&mut conn, cfg, None, false);
    let stats = learnloop_store::export::dump_tables(&conn, &["pattern_scope_stats"])
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let deep_tested = conn
        .query_row(
            "SELECT COUNT(*), COUNT(s.n_trades) FROM lesson_candidates c
             LEFT JOIN pattern_scope_stats s USING
                 (module, pattern_key, action_category, scope_mask, scope_values_hash)
             WHERE c.scope_dims >= 3",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let tables = learnloop_store::export::dump_tables(
        &conn,
        &[
            "learning_lessons",
            "learning_edge_history",
            "learning_latent_factors",
        ],
    )
    .unwrap();
    // Subsets with the same actions as a parent are stored once by default (as the parent); the
    // exhaustive table keeps them and the stage reports them as duplicates.
    let candidates = query_rows(
        &conn,
        "SELECT * FROM lesson_candidates WHERE reason NOT LIKE 'duplicate:%'
         ORDER BY module, pattern_key, action_category, scope_mask, scope_values_hash",
    );
    let configs: Vec<(String, String)> = learnloop_store::configs::all_versions(&conn, "pm")
        .unwrap()
        .into_iter()
        .map(|c| (c.checksum, c.config_data))
        .collect();
    Stored {
        stats,
        deep_tested,
        lessons: format!("{tables}\n{candidates:?}\n{configs:?}"),
    }
}

#[test]
fn pruned_enumeration_gives_the_lessons_of_the_exhaustive_one() {
    let (lines, _) = demo_lines_over(3000, 7, 180);
    let pruned = LoopConfig::default();
    assert_eq!(pruned.aggregate.k_max, None);
    let mut exhaustive = LoopConfig::default();
    exhaustive.aggregate.k_max = Some(exhaustive.dims.len() as u32);

    let pruned = lessons_of(&lines, &pruned);
    let all = lessons_of(&lines, &exhaustive);
    assert!(
        pruned.stats.len() < all.stats.len(),
        "pruning stores fewer rows: {} vs {}",
        pruned.stats.len(),
        all.stats.len()
    );
    assert!(pruned.lessons.contains("active"), "the demo has lessons");
    assert!(
        pruned.lessons == all.lessons,
        "lessons differ between the pruned and the exhaustive enumeration"
    );
    // Every row the default stores is the exhaustive one, bit for bit: the deep subsets the
    // lesson stage tested are folded after it exactly as the enumeration folds them.
    let (tested, stored) = pruned.deep_tested;
    assert!(tested > 0, "the demo tests deep subsets");
    assert_eq!(stored, tested, "every deep subset tested is stored");
    let missing: Vec<&String> = pruned.stats.difference(&all.stats).collect();
    assert!(
        missing.is_empty(),
        "rows not in the exhaustive table: {missing:?}"
    );
}

/// The stored rows of more than two dims, as text.
fn deep_rows(conn: &learnloop_store::Connection) -> Vec<String> {
    query_rows(
        conn,
        "SELECT module, pattern_key, action_category, scope_values, n_trades, mean_rr
         FROM pattern_scope_stats WHERE scope_dims > 2 ORDER BY 1, 2, 3, 4",
    )
}

#[test]
fn a_lessons_run_under_another_config_keeps_an_analysts_deep_rows() {
    let (lines, _) = demo_lines_over(1500, 9, 120);
    let mut analyst = LoopConfig::default();
    analyst.aggregate.store_min_trades = Some(10);
    let mut conn = open_in_memory().unwrap();
    ingest(&mut conn, &lines);
    run(&mut conn, &analyst, None, false);
    let stored = deep_rows(&conn);
    assert!(stored.len() > 100, "the analyst's storage holds deep rows");
    // The lesson stage alone, under the default configuration: it stores the deep subsets it
    // tests only below the depth the aggregate enumerated, which here is every depth.
    let options = learnloop_pipeline::RunOptions {
        as_of: learnloop_store::stats::aggregated_as_of(&conn).unwrap(),
        ..Default::default()
    };
    let tx = conn.transaction().unwrap();
    learnloop_pipeline::run_stages(
        &tx,
        &LoopConfig::default(),
        &options,
        &[learnloop_pipeline::Stage::Lessons],
        learnloop_tests::now(),
    )
    .unwrap();
    tx.commit().unwrap();
    assert_eq!(deep_rows(&conn), stored);
}
