//! Every stored subset of a run, tested: support, significance against the module baseline,
//! incremental edge over each exact parent, and shrinkage toward the nearest parent.

use super::LessonKey;
use crate::shrinkage::{estimate_tau2, shrink, SiblingMean};
use crate::t_tests::{one_sample_t, welch_one_sided};
use learnloop_model::scope::{canonical_pairs_into, hashes_without_each};
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

/// (dim index, parent hash) for each dim of a subset: the exact key of the parent without it.
type ParentList = Box<[(usize, u64)]>;

/// The parent keys of subsets, kept by a caller that runs the stage again and again over mostly
/// the same subsets (the replay): they depend only on the subset's scope, i.e. its
/// `(scope_mask, scope_values_hash)`, in whatever group it appears.
#[derive(Debug, Default)]
pub struct ParentMemo {
    known: FxHashMap<(u64, u64), ParentList>,
}

impl ParentMemo {
    pub fn len(&self) -> usize {
        self.known.len()
    }

    pub fn is_empty(&self) -> bool {
        self.known.is_empty()
    }

    pub(crate) fn learn(&mut self, entries: Vec<((u64, u64), ParentList)>) {
        self.known.extend(entries);
    }
}

/// Finds subsets' parent keys. Canonical scope text (the aggregator's) is read without
/// allocating: its pairs are sorted by dimension name, so the mask's dims in name order name them.
struct ParentKeys<'a, 'm> {
    memo: Option<&'m ParentMemo>,
    /// Keys computed here that the memo did not have.
    learned: Vec<((u64, u64), ParentList)>,
    name_order: Vec<usize>,
    pairs: Vec<(&'a str, &'a str)>,
    hashes: Vec<u64>,
    keys: Vec<(usize, u64)>,
}

impl<'a, 'm> ParentKeys<'a, 'm> {
    fn new(dims: &DimensionList, memo: Option<&'m ParentMemo>) -> Self {
        let names = dims.names();
        let mut name_order: Vec<usize> = (0..names.len()).collect();
        name_order.sort_by(|&a, &b| names[a].cmp(&names[b]));
        Self {
            memo,
            learned: Vec::new(),
            name_order,
            pairs: Vec::new(),
            hashes: Vec::new(),
            keys: Vec::new(),
        }
    }

    fn of(&mut self, r: &'a StatsRow, dims: &DimensionList) -> &[(usize, u64)] {
        let id = (r.scope_mask, r.scope_values_hash);
        if let Some(known) = self.memo.and_then(|m| m.known.get(&id)) {
            self.keys.clear();
            self.keys.extend_from_slice(known);
            return &self.keys;
        }
        self.compute(r.scope_mask, &r.scope_values, dims);
        if self.memo.is_some() {
            self.learned.push((id, self.keys.as_slice().into()));
        }
        &self.keys
    }

    fn compute(&mut self, mask: u64, scope_values: &'a str, dims: &DimensionList) {
        self.keys.clear();
        if canonical_pairs_into(scope_values, &mut self.pairs)
            && self.pairs.len() == mask.count_ones() as usize
        {
            hashes_without_each(&self.pairs, &mut self.hashes);
            let in_name_order = self
                .name_order
                .iter()
                .copied()
                .filter(|&d| mask & (1u64 << d) != 0);
            self.keys
                .extend(in_name_order.zip(self.hashes.iter().copied()));
        } else {
            let owned = scope_pairs(scope_values);
            let p: Vec<(&str, &str)> = owned
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            hashes_without_each(&p, &mut self.hashes);
            let dim_of = |name: &str| dims.index_of(name).unwrap_or(usize::MAX);
            self.keys.extend(
                p.iter()
                    .map(|(k, _)| dim_of(k))
                    .zip(self.hashes.iter().copied()),
            );
        }
    }
}

/// A group's tests, and the parent keys it computed that the memo did not have.
pub struct GroupTests {
    pub tested: Vec<Tested>,
    pub learned: Vec<((u64, u64), ParentList)>,
}

/// Test every row of a group that has its minimum support.
pub fn evaluate_group(
    group: &GroupRows<'_>,
    dims: &DimensionList,
    cfg: &LoopConfig,
    baseline: Baseline,
    root_tau2: f64,
    memo: Option<&ParentMemo>,
) -> GroupTests {
    let rows = group.rows;
    let index: FxHashMap<(u64, u64), usize> = rows
        .iter()
        .enumerate()
        .map(|(i, r)| ((r.scope_mask, r.scope_values_hash), i))
        .collect();
    let mut parent_keys = ParentKeys::new(dims, memo);
    let Some(first) = rows.first() else {
        return GroupTests {
            tested: Vec::new(),
            learned: Vec::new(),
        };
    };
    let key_prefix = LessonKey::group_prefix(&first.module, &first.pattern_key, first.category);
    let mut out = Vec::new();
    // Tested rows that shrink toward a parent: (index in `out`, row, sibling key).
    let mut shrink_toward: Vec<(usize, usize, (u64, usize, u64))> = Vec::new();
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
            key: LessonKey::in_group(key_prefix, &r.scope_values),
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
        let mut nearest: Option<(f64, usize, usize, u64)> = None; // (gap, parent row, removed dim, parent hash)
        for &(dim, parent_hash) in parent_keys.of(r, dims) {
            let parent_mask = if dim < 64 {
                r.scope_mask & !(1u64 << dim)
            } else {
                r.scope_mask
            };
            match index.get(&(parent_mask, parent_hash)) {
                Some(&p) => {
                    let gap = (mean - rows[p].stats.r.mean) * direction;
                    if nearest.is_none_or(|(g, _, _, _)| gap < g) {
                        nearest = Some((gap, p, dim, parent_hash));
                    }
                }
                None => all_found = false,
            }
        }
        if let Some((gap, p, dim, parent_hash)) = nearest {
            tested.nearest_parent = Some(group.offset + p);
            tested.min_gap = Some(gap);
            tested.margin_ok = all_found && gap >= cfg.lessons.incremental_min;
            tested.p_incremental =
                welch_one_sided(&running(r), &running(&rows[p]), direction).map(|w| w.p_one_sided);
            if var.is_some() {
                shrink_toward.push((out.len(), i, (r.scope_mask, dim, parent_hash)));
            }
        }
        out.push(tested);
    }

    // Siblings share a mask and differ on exactly one dim, key (mask, dim, parent hash); only the
    // sibling sets some tested subset shrinks within are gathered.
    let needed: FxHashMap<(u64, usize, u64), usize> = shrink_toward
        .iter()
        .enumerate()
        .map(|(slot, &(_, _, key))| (key, slot))
        .collect();
    let needed_masks: rustc_hash::FxHashSet<u64> = needed.keys().map(|&(m, _, _)| m).collect();
    let mut siblings: Vec<Vec<SiblingMean>> = vec![Vec::new(); shrink_toward.len()];
    for r in rows {
        let Some(var) = variance(r) else { continue };
        if !needed_masks.contains(&r.scope_mask) {
            continue;
        }
        for &(dim, parent_hash) in parent_keys.of(r, dims) {
            if let Some(&slot) = needed.get(&(r.scope_mask, dim, parent_hash)) {
                siblings[slot].push(SiblingMean {
                    mean: r.stats.r.mean,
                    se2: var / r.stats.n_trades() as f64,
                });
            }
        }
    }
    for &(at, i, key) in &shrink_toward {
        let tau2 = estimate_tau2(&siblings[needed[&key]]);
        let r = &rows[i];
        let parent_mean = rows[out[at].nearest_parent.unwrap_or(group.offset + i) - group.offset]
            .stats
            .r
            .mean;
        let v = variance(r).unwrap_or(0.0);
        out[at].shrunk_edge =
            shrink(r.stats.r.mean, r.stats.n_trades(), v, parent_mean, tau2) - baseline.mean;
    }
    GroupTests {
        tested: out,
        learned: parent_keys.learned,
    }
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
