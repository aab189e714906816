//! Depth-first subset enumeration with support pruning, parallel over (group, first dimension).

use crate::prepare::{Group, Prepared};
use learnloop_model::scope::{scope_values_hash, scope_values_json};
use learnloop_model::stats::OutcomeStats;
use learnloop_model::Timestamp;
use learnloop_store::stats::StatsRow;
use rayon::prelude::*;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AggregateCounters {
    /// Subsets whose statistics were computed (stored or pruned).
    pub subsets_evaluated: u64,
    /// Trade observations folded into those subsets: the subset updates actually performed.
    pub subset_updates: u64,
    /// Subsets below the support threshold, neither stored nor expanded.
    pub subsets_pruned: u64,
    pub rows: u64,
}

impl AggregateCounters {
    fn add(&mut self, o: &AggregateCounters) {
        self.subsets_evaluated += o.subsets_evaluated;
        self.subset_updates += o.subset_updates;
        self.subsets_pruned += o.subsets_pruned;
        self.rows += o.rows;
    }
}

pub struct ComputeOutput {
    pub rows: Vec<StatsRow>,
    pub counters: AggregateCounters,
}

struct Settings {
    k_max: u32,
    min_trades: u64,
}

/// A subset found by the walk, before its key text is rendered.
struct FoundSubset {
    mask: u64,
    path: Vec<(u8, u32)>,
    stats: OutcomeStats,
}

/// Compute every stored row. Deterministic: output sorted by key whatever the thread schedule.
pub fn compute(p: &Prepared, k_max: u32, min_trades: u64, as_of: Timestamp) -> ComputeOutput {
    let settings = Settings {
        k_max: k_max.min(p.dims as u32),
        min_trades: min_trades.max(1),
    };
    // One task per (group, lowest dimension of the subset); the root row is its own task.
    let tasks: Vec<(usize, Option<usize>)> = (0..p.groups.len())
        .flat_map(|g| std::iter::once((g, None)).chain((0..p.dims).map(move |d| (g, Some(d)))))
        .collect();
    let per_task: Vec<(usize, Vec<FoundSubset>, AggregateCounters)> = tasks
        .par_iter()
        .map(|&(g, first_dim)| {
            let group = &p.groups[g];
            let mut walk = Walk::new(p, group, &settings);
            match first_dim {
                None => walk.root(),
                Some(d) if settings.k_max > 0 => walk.subtree(d),
                Some(_) => {}
            }
            (g, walk.found, walk.counters)
        })
        .collect();
    let mut counters = AggregateCounters::default();
    let mut rows = Vec::new();
    let name_order = dims_by_name(p);
    for (g, found, c) in per_task {
        counters.add(&c);
        let group = &p.groups[g];
        rows.extend(
            found
                .into_iter()
                .map(|f| render(p, group, &name_order, f, as_of)),
        );
    }
    rows.sort_by(|a, b| {
        (
            &a.module,
            &a.pattern_key,
            a.category,
            a.scope_mask,
            a.scope_values_hash,
        )
            .cmp(&(
                &b.module,
                &b.pattern_key,
                b.category,
                b.scope_mask,
                b.scope_values_hash,
            ))
    });
    counters.rows = rows.len() as u64;
    ComputeOutput { rows, counters }
}

fn dims_by_name(p: &Prepared) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.dims).collect();
    order.sort_by(|&a, &b| p.dim_names[a].cmp(&p.dim_names[b]));
    order
}

fn render(
    p: &Prepared,
    group: &Group,
    name_order: &[usize],
    f: FoundSubset,
    as_of: Timestamp,
) -> StatsRow {
    let mut pairs: Vec<(&str, &str)> = Vec::with_capacity(f.path.len());
    for &d in name_order {
        if let Some(&(_, v)) = f.path.iter().find(|(pd, _)| *pd as usize == d) {
            pairs.push((
                p.dim_names[d].as_str(),
                p.value_names[d][v as usize - 1].as_str(),
            ));
        }
    }
    StatsRow {
        module: group.module.clone(),
        pattern_key: group.pattern_key.clone(),
        category: group.category,
        scope_mask: f.mask,
        scope_values: scope_values_json(pairs.iter().copied()),
        scope_values_hash: scope_values_hash(pairs.iter().copied()),
        stats: f.stats,
        as_of,
    }
}

struct Walk<'a> {
    p: &'a Prepared,
    group: &'a Group,
    settings: &'a Settings,
    found: Vec<FoundSubset>,
    counters: AggregateCounters,
    path: Vec<(u8, u32)>,
}

impl<'a> Walk<'a> {
    fn new(p: &'a Prepared, group: &'a Group, settings: &'a Settings) -> Self {
        Self {
            p,
            group,
            settings,
            found: Vec::new(),
            counters: AggregateCounters::default(),
            path: Vec::new(),
        }
    }

    fn root(&mut self) {
        let all: Vec<u32> = (0..self.group.len() as u32).collect();
        let stats = self.fold(&all);
        self.found.push(FoundSubset {
            mask: 0,
            path: Vec::new(),
            stats,
        });
    }

    /// Every subset whose lowest dimension is `d`.
    fn subtree(&mut self, d: usize) {
        let all: Vec<u32> = (0..self.group.len() as u32).collect();
        let depth_budget = self.settings.k_max as usize;
        let mut buffers: Vec<Vec<u32>> = vec![Vec::new(); depth_budget + 1];
        self.expand_dim(&all, d, 0, &mut buffers);
    }

    /// Split `node` by its value on dimension `d` and visit each value's subset.
    fn expand_dim(&mut self, node: &[u32], d: usize, mask: u64, buffers: &mut [Vec<u32>]) {
        let Some((mine, deeper)) = buffers.split_first_mut() else {
            return;
        };
        let dims = self.p.dims;
        let values = &self.group.values;
        mine.clear();
        mine.extend(
            node.iter()
                .copied()
                .filter(|&o| values[o as usize * dims + d] != 0),
        );
        if (mine.len() as u64) < self.settings.min_trades {
            return;
        }
        // Stable sort keeps canonical trade order inside each value's run.
        mine.sort_by_key(|&o| values[o as usize * dims + d]);
        let mut start = 0;
        while start < mine.len() {
            let v = values[mine[start] as usize * dims + d];
            let mut end = start + 1;
            while end < mine.len() && values[mine[end] as usize * dims + d] == v {
                end += 1;
            }
            if (end - start) as u64 >= self.settings.min_trades {
                self.path.push((d as u8, v));
                self.visit(&mine[start..end], mask | (1u64 << d), d + 1, deeper);
                self.path.pop();
            } else {
                self.counters.subsets_pruned += 1;
            }
            start = end;
        }
    }

    fn visit(&mut self, node: &[u32], mask: u64, next_dim: usize, buffers: &mut [Vec<u32>]) {
        let stats = self.fold(node);
        if stats.n_trades() < self.settings.min_trades {
            self.counters.subsets_pruned += 1;
            return;
        }
        self.found.push(FoundSubset {
            mask,
            path: self.path.clone(),
            stats,
        });
        if self.path.len() as u32 >= self.settings.k_max {
            return;
        }
        for d in next_dim..self.p.dims {
            self.expand_dim(node, d, mask, buffers);
        }
    }

    /// Statistics of the trades behind `node` (observations in canonical trade order).
    fn fold(&mut self, node: &[u32]) -> OutcomeStats {
        let mut stats = OutcomeStats::default();
        let mut i = 0;
        while i < node.len() {
            let trade = self.group.trade[node[i] as usize];
            let mut n_actions = 0u64;
            while i < node.len() && self.group.trade[node[i] as usize] == trade {
                n_actions += u64::from(self.group.n_actions[node[i] as usize]);
                i += 1;
            }
            let t = trade as usize;
            stats.push_trade(&self.p.trades[t], n_actions, self.p.weights[t]);
        }
        self.counters.subsets_evaluated += 1;
        self.counters.subset_updates += stats.n_trades();
        stats
    }
}

/// The number of (trade, subset) observations an unpruned enumeration folds: for each group and
/// trade, the distinct subsets (at most `k_max` dims) of the trade's action scopes. It is the row
/// count of the "exploded" table a SQL engine aggregates, so `updates / second` figures compare
/// like with like, whatever pruning skipped. Inclusion–exclusion over the trade's distinct
/// scopes: the subsets shared by a set of scopes are the subsets of the dimensions they agree on.
pub fn exploded_subset_updates(p: &Prepared, k_max: u32) -> u64 {
    let k_max = k_max.min(p.dims as u32) as usize;
    let binom = binomial_table(p.dims);
    let subsets_of = |a: usize| -> u64 { (0..=a.min(k_max)).map(|k| binom[a][k]).sum() };
    let mut total = 0u64;
    for g in &p.groups {
        let rows = |o: usize| &g.values[o * p.dims..(o + 1) * p.dims];
        let mut i = 0;
        while i < g.len() {
            let start = i;
            while i < g.len() && g.trade[i] == g.trade[start] {
                i += 1;
            }
            let scopes: Vec<&[u32]> = (start..i).map(rows).collect();
            total += union_of_subsets(&scopes, &subsets_of, k_max);
        }
    }
    total
}

fn union_of_subsets(scopes: &[&[u32]], subsets_of: &dyn Fn(usize) -> u64, k_max: usize) -> u64 {
    let m = scopes.len();
    if m > 12 {
        return union_by_enumeration(scopes, k_max);
    }
    let mut total: i64 = 0;
    for chosen in 1u32..(1 << m) {
        let members: Vec<&[u32]> = (0..m).filter(|j| chosen & (1 << j) != 0).map(|j| scopes[j]).collect();
        let agree = (0..members[0].len())
            .filter(|&d| members[0][d] != 0 && members.iter().all(|s| s[d] == members[0][d]))
            .count();
        let sign = if chosen.count_ones() % 2 == 1 { 1 } else { -1 };
        total += sign * subsets_of(agree) as i64;
    }
    total as u64
}

fn union_by_enumeration(scopes: &[&[u32]], k_max: usize) -> u64 {
    let mut seen = rustc_hash::FxHashSet::default();
    for s in scopes {
        let present: Vec<usize> = (0..s.len()).filter(|&d| s[d] != 0).collect();
        for bits in 0u64..(1u64 << present.len()) {
            if bits.count_ones() as usize > k_max {
                continue;
            }
            let key: Vec<(usize, u32)> = present
                .iter()
                .enumerate()
                .filter(|(j, _)| bits & (1 << j) != 0)
                .map(|(_, &d)| (d, s[d]))
                .collect();
            seen.insert(key);
        }
    }
    seen.len() as u64
}

fn binomial_table(n: usize) -> Vec<Vec<u64>> {
    let mut t = vec![vec![0u64; n + 1]; n + 1];
    for i in 0..=n {
        t[i][0] = 1;
        for k in 1..=i {
            t[i][k] = t[i - 1][k - 1] + if k < i { t[i - 1][k] } else { 0 };
        }
    }
    t
}
