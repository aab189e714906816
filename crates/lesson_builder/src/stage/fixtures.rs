//! Hand-made stats rows and tests for the stage's unit tests.

use super::evaluate::{Family, Screen, Tested};
use super::LessonKey;
use learnloop_model::scope::{scope_values_hash, scope_values_json};
use learnloop_model::stats::{OutcomeStats, RunningStats};
use learnloop_model::{ActionCategory, LoopConfig, StatsRow, Timestamp};

/// A subset's sorted pairs.
pub type Pairs = &'static [(&'static str, &'static str)];

/// The stats row of `pairs` in module "pm", pattern `pattern` (adds): `n` trades, mean R `mean`.
pub fn stats_row(pattern: &str, pairs: Pairs, n: u64, mean: f64) -> StatsRow {
    let dims = LoopConfig::default().dims;
    StatsRow {
        module: "pm".into(),
        pattern_key: pattern.into(),
        category: ActionCategory::Add,
        scope_mask: pairs
            .iter()
            .map(|(d, _)| 1u64 << dims.index_of(d).unwrap())
            .sum(),
        scope_values: scope_values_json(pairs.iter().copied()),
        scope_values_hash: scope_values_hash(pairs.iter().copied()),
        stats: OutcomeStats {
            r: RunningStats {
                n,
                mean,
                ..RunningStats::default()
            },
            ..OutcomeStats::default()
        },
        as_of: Timestamp(0),
    }
}

/// A first-family test of row `row` in group `group`: p-value `p`, contrast t `t`.
pub fn tested_subset(row: usize, group: u64, pairs: Pairs, p: f64, t: f64) -> Tested {
    Tested {
        row,
        key: LessonKey(row as u64),
        group: LessonKey(group),
        edge: 0.0,
        shrunk_edge: 0.0,
        t: Some(t).into(),
        p: Some(p).into(),
        min_gap: None.into(),
        df: None.into(),
        p_threshold: None.into(),
        fdr_weight: Some(1.0).into(),
        nearest_parent: None,
        complement: None,
        screen: Screen::Tested,
        clusters: 20,
        dims: pairs.len() as u32,
        margin_ok: true,
        contrast: None,
        family: Family::First,
    }
}
