//! Every stored subset of a run, tested: support, significance against the module baseline,
//! incremental edge over each exact parent, and shrinkage toward the nearest parent.

use crate::shrinkage::{estimate_tau2, shrink, SiblingMean};
use crate::t_tests::{one_sample_t, welch_one_sided};
use learnloop_model::scope::{canonical_pairs, scope_values_hash};
use learnloop_model::{DimensionList, LoopConfig, RunningStats};
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

/// (dim index, parent hash) for each dim of a subset: the exact key of the parent without it.
fn parent_keys_of(scope_values: &str, dims: &DimensionList) -> Vec<(usize, u64)> {
    let keys = |p: &[(&str, &str)]| -> Vec<(usize, u64)> {
        (0..p.len())
            .map(|j| {
                let dim = dims.index_of(p[j].0).unwrap_or(usize::MAX);
                let without = p
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| *i != j)
                    .map(|(_, kv)| *kv);
                (dim, scope_values_hash(without))
            })
            .collect()
    };
    match canonical_pairs(scope_values) {
        Some(p) => keys(&p),
        None => {
            let owned = scope_pairs(scope_values);
            let p: Vec<(&str, &str)> = owned
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            keys(&p)
        }
    }
}

/// What a tested subset's incremental test and shrinkage depend on, given the sign of its edge:
/// the nearest parent in that direction, the gap to it, the Welch p-value against it, and τ² of
/// the siblings across it. None of it depends on the baseline, so it can be reused while the
/// group's rows are unchanged.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Toward {
    pub parent: usize,
    pub gap: f64,
    pub p_incremental: Option<f64>,
    pub tau2: f64,
}

/// The baseline-independent facts of a subset with its minimum support.
#[derive(Debug, Clone, PartialEq)]
pub struct Structure {
    /// Index in the group's rows.
    pub row: usize,
    pub dims: u32,
    pub all_parents_found: bool,
    /// For a positive edge, then for a negative (or zero) one.
    pub toward: [Option<Toward>; 2],
}

const DIRECTIONS: [f64; 2] = [1.0, -1.0];

/// Structures of the rows of a group that have their minimum support.
pub fn group_structure(
    rows: &[StatsRow],
    dims: &DimensionList,
    cfg: &LoopConfig,
) -> Vec<Structure> {
    let index: FxHashMap<(u64, u64), usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.scope_mask, r.scope_values_hash), i))
        .collect();
    let mut out = Vec::new();
    // (structure, direction) pairs that shrink within a sibling set, and that set's key.
    let mut shrink_within: Vec<(usize, usize, (u64, usize, u64))> = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        let dims_k = r.scope_mask.count_ones();
        if r.stats.n_trades() < cfg.lessons.min_support_for(dims_k) {
            continue;
        }
        let mut s = Structure {
            row: i,
            dims: dims_k,
            all_parents_found: dims_k == 0,
            toward: [None, None],
        };
        if dims_k > 0 {
            let mean = r.stats.r.mean;
            let mut all_found = true;
            let mut nearest: [Option<(f64, usize, usize, u64)>; 2] = [None, None];
            for (dim, parent_hash) in parent_keys_of(&r.scope_values, dims) {
                let parent_mask = if dim < 64 {
                    r.scope_mask & !(1u64 << dim)
                } else {
                    r.scope_mask
                };
                match index.get(&(parent_mask, parent_hash)) {
                    Some(&p) => {
                        for (slot, dir) in DIRECTIONS.iter().enumerate() {
                            let gap = (mean - rows[p].stats.r.mean) * dir;
                            if nearest[slot].is_none_or(|(g, _, _, _)| gap < g) {
                                nearest[slot] = Some((gap, p, dim, parent_hash));
                            }
                        }
                    }
                    None => all_found = false,
                }
            }
            s.all_parents_found = all_found;
            for (slot, dir) in DIRECTIONS.iter().enumerate() {
                if let Some((gap, p, dim, parent_hash)) = nearest[slot] {
                    s.toward[slot] = Some(Toward {
                        parent: p,
                        gap,
                        p_incremental: welch_one_sided(&running(r), &running(&rows[p]), *dir)
                            .map(|w| w.p_one_sided),
                        tau2: f64::INFINITY,
                    });
                    if variance(r).is_some() {
                        shrink_within.push((out.len(), slot, (r.scope_mask, dim, parent_hash)));
                    }
                }
            }
        }
        out.push(s);
    }

    // Siblings share a mask and differ on exactly one dim, key (mask, dim, parent hash); only the
    // sibling sets some tested subset shrinks within are gathered.
    let mut slot_of: FxHashMap<(u64, usize, u64), usize> = FxHashMap::default();
    for &(_, _, key) in &shrink_within {
        let next = slot_of.len();
        slot_of.entry(key).or_insert(next);
    }
    let needed_masks: rustc_hash::FxHashSet<u64> = slot_of.keys().map(|&(m, _, _)| m).collect();
    let mut siblings: Vec<Vec<SiblingMean>> = vec![Vec::new(); slot_of.len()];
    for r in rows {
        let Some(var) = variance(r) else { continue };
        if !needed_masks.contains(&r.scope_mask) {
            continue;
        }
        for (dim, parent_hash) in parent_keys_of(&r.scope_values, dims) {
            if let Some(&slot) = slot_of.get(&(r.scope_mask, dim, parent_hash)) {
                siblings[slot].push(SiblingMean {
                    mean: r.stats.r.mean,
                    se2: var / r.stats.n_trades() as f64,
                });
            }
        }
    }
    let tau2: Vec<f64> = siblings.iter().map(|s| estimate_tau2(s)).collect();
    for (at, slot, key) in shrink_within {
        if let Some(t) = out[at].toward[slot].as_mut() {
            t.tau2 = tau2[slot_of[&key]];
        }
    }
    out
}

/// The baseline-dependent tests of a group's tested subsets, from their structures.
pub fn tests_from_structure(
    group: &GroupRows<'_>,
    structure: &[Structure],
    cfg: &LoopConfig,
    baseline: Baseline,
    root_tau2: f64,
) -> Vec<Tested> {
    let rows = group.rows;
    structure
        .iter()
        .map(|s| {
            let r = &rows[s.row];
            let n = r.stats.n_trades();
            let mean = r.stats.r.mean;
            let var = variance(r);
            let edge = mean - baseline.mean;
            let test = var.and_then(|v| one_sample_t(n, mean, v, baseline.mean));
            let mut tested = Tested {
                row: group.offset + s.row,
                dims: s.dims,
                edge,
                t: test.map(|t| t.t),
                p: test.map(|t| t.p_two_sided),
                nearest_parent: None,
                min_gap: None,
                margin_ok: s.dims == 0,
                p_incremental: None,
                shrunk_edge: edge,
            };
            if s.dims == 0 {
                if let Some(v) = var {
                    tested.shrunk_edge =
                        shrink(mean, n, v, baseline.mean, root_tau2) - baseline.mean;
                }
                return tested;
            }
            let slot = if edge > 0.0 { 0 } else { 1 };
            if let Some(t) = s.toward[slot] {
                tested.nearest_parent = Some(group.offset + t.parent);
                tested.min_gap = Some(t.gap);
                tested.margin_ok = s.all_parents_found && t.gap >= cfg.lessons.incremental_min;
                tested.p_incremental = t.p_incremental;
                if let Some(v) = var {
                    let parent_mean = rows[t.parent].stats.r.mean;
                    tested.shrunk_edge = shrink(mean, n, v, parent_mean, t.tau2) - baseline.mean;
                }
            }
            tested
        })
        .collect()
}

/// Test every row of a group that has its minimum support.
pub fn evaluate_group(
    group: &GroupRows<'_>,
    dims: &DimensionList,
    cfg: &LoopConfig,
    baseline: Baseline,
    root_tau2: f64,
) -> Vec<Tested> {
    let structure = group_structure(group.rows, dims, cfg);
    tests_from_structure(group, &structure, cfg, baseline, root_tau2)
}

/// τ² of pattern roots around the baseline, per module: the spread of all roots' means.
pub fn root_tau2(rows: &[StatsRow]) -> BTreeMap<String, f64> {
    let mut by_module: BTreeMap<String, Vec<SiblingMean>> = BTreeMap::new();
    for r in rows.iter().filter(|r| r.scope_mask == 0) {
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
