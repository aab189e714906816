//! Every stored subset of a run, tested: support, significance against the module baseline,
//! incremental edge over each exact parent, and shrinkage toward the nearest parent.

use super::lattice::{Lattice, NOT_STORED};
use super::LessonKey;
use crate::shrinkage::{estimate_tau2, shrink, SiblingMean};
use crate::t_tests::{one_sample_t, welch_one_sided};
use learnloop_model::{LoopConfig, RunningStats};
use learnloop_store::stats::StatsRow;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Mean R of a module over its linked trades, one observation per trade.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Baseline {
    pub n: u64,
    pub mean: f64,
}

/// The figures of one tested subset (a stats row with at least its minimum support).
#[derive(Debug, Clone, PartialEq)]
pub struct Tested {
    /// Index into the run's stats rows.
    pub row: usize,
    pub key: LessonKey,
    pub dims: u32,
    pub edge: f64,
    pub t: Option<f64>,
    pub p: Option<f64>,
    /// The parent the subset improves on least (its closest explanation), for k ≥ 1.
    pub nearest_parent: Option<usize>,
    /// Smallest improvement over any parent, in the edge's direction.
    pub min_gap: Option<f64>,
    /// Every parent was found and beaten by at least `incremental_min`.
    pub margin_ok: bool,
    pub p_incremental: Option<f64>,
    pub shrunk_edge: f64,
}

/// Rows of one (module, pattern, category), contiguous in the key-sorted stats.
pub struct GroupRows<'a> {
    pub rows: &'a [StatsRow],
    /// Index of `rows[0]` in the run's stats.
    pub offset: usize,
}

fn running(r: &StatsRow) -> RunningStats {
    r.stats.r
}

fn variance(r: &StatsRow) -> Option<f64> {
    r.stats.r.sample_variance()
}

/// Parse a row's sorted-key scope JSON into pairs.
pub fn scope_pairs(scope_values: &str) -> Vec<(String, String)> {
    serde_json::from_str::<BTreeMap<String, String>>(scope_values)
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

/// A group's tests.
pub struct GroupTests {
    pub tested: Vec<Tested>,
}

/// Test every row of a group that has its minimum support; `lattice` holds the group's
/// parent and child links (built for exactly these rows).
pub fn evaluate_group(
    group: &GroupRows<'_>,
    lattice: &Lattice,
    cfg: &LoopConfig,
    baseline: Baseline,
    root_tau2: f64,
) -> GroupTests {
    let rows = group.rows;
    let Some(first) = rows.first() else {
        return GroupTests { tested: Vec::new() };
    };
    let key_prefix = LessonKey::group_prefix(&first.module, &first.pattern_key, first.category);
    let mut out = Vec::new();
    // Tested rows that shrink toward a parent: (index in `out`, row, (parent row, removed dim)).
    let mut shrink_toward: Vec<(usize, usize, (u32, u32))> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let dims_k = r.scope_mask.count_ones();
        let n = r.stats.n_trades();
        if n < cfg.lessons.min_support_for(dims_k) {
            continue;
        }
        let mean = r.stats.r.mean;
        let var = variance(r);
        let edge = mean - baseline.mean;
        let test = var.and_then(|v| one_sample_t(n, mean, v, baseline.mean));
        let direction = if edge > 0.0 { 1.0 } else { -1.0 };
        let mut tested = Tested {
            row: group.offset + i,
            key: lattice
                .key(i)
                .unwrap_or_else(|| LessonKey::in_group(key_prefix, &r.scope_values)),
            dims: dims_k,
            edge,
            t: test.map(|t| t.t),
            p: test.map(|t| t.p_two_sided),
            nearest_parent: None,
            min_gap: None,
            margin_ok: dims_k == 0,
            p_incremental: None,
            shrunk_edge: edge,
        };
        if dims_k == 0 {
            if let Some(v) = var {
                tested.shrunk_edge = shrink(mean, n, v, baseline.mean, root_tau2) - baseline.mean;
            }
            out.push(tested);
            continue;
        }
        let mut all_found = true;
        let mut nearest: Option<(f64, u32, u32)> = None; // (gap, parent row, removed dim)
        for link in lattice.parents(i) {
            if link.row == NOT_STORED {
                all_found = false;
                continue;
            }
            let gap = (mean - rows[link.row as usize].stats.r.mean) * direction;
            if nearest.is_none_or(|(g, _, _)| gap < g) {
                nearest = Some((gap, link.row, link.dim));
            }
        }
        if let Some((gap, p, dim)) = nearest {
            let parent = &rows[p as usize];
            tested.nearest_parent = Some(group.offset + p as usize);
            tested.min_gap = Some(gap);
            tested.margin_ok = all_found && gap >= cfg.lessons.incremental_min;
            tested.p_incremental =
                welch_one_sided(&running(r), &running(parent), direction).map(|w| w.p_one_sided);
            if var.is_some() {
                shrink_toward.push((out.len(), i, (p, dim)));
            }
        }
        out.push(tested);
    }

    // The siblings of a subset within its parent: the parent's children along the same dim, in
    // row order. τ² is estimated once per sibling set.
    let mut tau2_of: FxHashMap<(u32, u32), f64> = FxHashMap::default();
    for &(at, i, (p, dim)) in &shrink_toward {
        let tau2 = *tau2_of.entry((p, dim)).or_insert_with(|| {
            let siblings: Vec<SiblingMean> = lattice
                .children(p as usize)
                .iter()
                .filter(|c| c.dim == dim)
                .filter_map(|c| {
                    let s = &rows[c.row as usize];
                    variance(s).map(|var| SiblingMean {
                        mean: s.stats.r.mean,
                        se2: var / s.stats.n_trades() as f64,
                    })
                })
                .collect();
            estimate_tau2(&siblings)
        });
        let r = &rows[i];
        let parent_mean = rows[p as usize].stats.r.mean;
        let v = variance(r).unwrap_or(0.0);
        out[at].shrunk_edge =
            shrink(r.stats.r.mean, r.stats.n_trades(), v, parent_mean, tau2) - baseline.mean;
    }
    GroupTests { tested: out }
}

/// τ² of pattern roots around the baseline, per module: the spread of all roots' means.
pub fn root_tau2<'r>(rows: impl IntoIterator<Item = &'r StatsRow>) -> BTreeMap<String, f64> {
    let mut by_module: BTreeMap<String, Vec<SiblingMean>> = BTreeMap::new();
    for r in rows.into_iter().filter(|r| r.scope_mask == 0) {
        if let Some(v) = variance(r) {
            by_module
                .entry(r.module.clone())
                .or_default()
                .push(SiblingMean {
                    mean: r.stats.r.mean,
                    se2: v / r.stats.n_trades() as f64,
                });
        }
    }
    by_module
        .into_iter()
        .map(|(m, s)| (m, estimate_tau2(&s)))
        .collect()
}
