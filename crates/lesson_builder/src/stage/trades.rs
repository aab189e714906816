//! Trade-level access for the tests (SPEC §4.2): per (module, pattern, category) group, its trades
//! (winsorized R, time cluster, decay weight) and, per `dim = value` pair, the group's actions that
//! carry it. A trade is in a subset when one of its actions in the group has all the subset's
//! pairs, so a subset's trades are an AND of pair bitsets mapped to trades.

use learnloop_model::stats::{decay_weight, WeightedStats};
use learnloop_model::{ActionCategory, LoopConfig, Timestamp, TradeEvent};
use learnloop_stats::{time_cluster, ClusterCell};
use learnloop_store::events::IndexEventRef;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::ops::Range;

/// A set of indices as 64-bit words.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Bitset(pub Vec<u64>);

impl Bitset {
    pub fn empty(len: usize) -> Self {
        Self(vec![0; len.div_ceil(64)])
    }

    pub fn full(len: usize) -> Self {
        let mut s = Self(vec![u64::MAX; len.div_ceil(64)]);
        if !len.is_multiple_of(64) {
            if let Some(last) = s.0.last_mut() {
                *last = (1u64 << (len % 64)) - 1;
            }
        }
        s
    }

    pub fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1u64 << (i % 64);
    }

    pub fn count(&self) -> u64 {
        self.0.iter().map(|w| u64::from(w.count_ones())).sum()
    }

    pub fn and_assign(&mut self, other: &Bitset) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= b;
        }
    }

    pub fn or_assign(&mut self, other: &Bitset) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }

    /// `self \ other`.
    pub fn minus(&self, other: &Bitset) -> Bitset {
        Bitset(self.0.iter().zip(&other.0).map(|(a, b)| a & !b).collect())
    }

    pub fn is_subset_of(&self, other: &Bitset) -> bool {
        self.0.iter().zip(&other.0).all(|(a, b)| a & !b == 0)
    }

    pub fn intersects(&self, other: &Bitset) -> bool {
        self.0.iter().zip(&other.0).any(|(a, b)| a & b != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0.iter().all(|&w| w == 0)
    }

    /// A 64-bit hash of the set (equal sets hash alike; unequal ones almost never do).
    pub fn fingerprint(&self) -> u64 {
        use std::hash::{Hash, Hasher};
        let mut h = rustc_hash::FxHasher::default();
        self.0.hash(&mut h);
        h.finish()
    }

    pub fn iter(&self) -> impl Iterator<Item = usize> + '_ {
        self.0.iter().enumerate().flat_map(|(wi, &w)| {
            let mut w = w;
            std::iter::from_fn(move || {
                (w != 0).then(|| {
                    let bit = w.trailing_zeros() as usize;
                    w &= w - 1;
                    wi * 64 + bit
                })
            })
        })
    }
}

/// The trades of one group and its pair → actions index.
#[derive(Debug, Clone, Default)]
pub struct GroupTrades {
    /// Per trade: its time cluster (an index into the module's clusters).
    pub cluster: Vec<u32>,
    /// Per trade: winsorized R.
    pub r: Vec<f64>,
    /// Per trade: decay weight `0.5^(age/stats_half_life)`, age from the as-of time to its exit.
    pub weight: Vec<f64>,
    action_trade: Vec<u32>,
    /// dim → value → the actions with that pair.
    pairs: FxHashMap<String, FxHashMap<String, Bitset>>,
    /// Per module cluster: the module's trades outside this group (the root's comparison).
    pub rest: Vec<(u32, f64)>,
    /// Per trade: its index among the module's trades (`ModuleTrades`).
    pub module_trade: Vec<u32>,
}

impl GroupTrades {
    pub fn n_trades(&self) -> usize {
        self.r.len()
    }

    /// Record that action `action` (the group's latest) has these `dim = value` pairs; a pair's
    /// names are copied only the first time the group sees it.
    fn add_action_pairs(&mut self, action: usize, pairs: &[(&str, &str)]) {
        let words = (action + 1).div_ceil(64);
        for &(dim, value) in pairs {
            let set = named_entry(named_entry(&mut self.pairs, dim), value);
            if set.0.len() < words {
                set.0.resize(words, 0);
            }
            set.insert(action);
        }
    }

    /// The trades of the subset with these `dim = value` pairs (all trades for none).
    pub fn trades_of(&self, pairs: &[(&str, &str)]) -> Bitset {
        let n_actions = self.action_trade.len();
        let mut actions = Bitset::full(n_actions);
        for (dim, value) in pairs {
            match self.pairs.get(*dim).and_then(|values| values.get(*value)) {
                Some(with) => actions.and_assign(with),
                None => return Bitset::empty(self.n_trades()),
            }
        }
        let mut trades = Bitset::empty(self.n_trades());
        for a in actions.iter() {
            trades.insert(self.action_trade[a] as usize);
        }
        trades
    }

    /// Every `dim = value` pair some action of the group has, sorted.
    pub fn pairs_present(&self) -> Vec<(&str, &str)> {
        let mut pairs: Vec<(&str, &str)> = self
            .pairs
            .iter()
            .flat_map(|(dim, values)| values.keys().map(move |v| (dim.as_str(), v.as_str())))
            .collect();
        pairs.sort_unstable();
        pairs
    }

    /// Per-cluster cells of `a` against `b` (disjoint trade sets), in a buffer of the module's
    /// cluster count.
    pub fn cells(&self, a: &Bitset, b: &Bitset, n_clusters: usize) -> Vec<ClusterCell> {
        let mut cells = vec![ClusterCell::default(); n_clusters];
        for t in a.iter() {
            let c = &mut cells[self.cluster[t] as usize];
            c.n_a += 1;
            c.sum_a += self.r[t];
        }
        for t in b.iter() {
            let c = &mut cells[self.cluster[t] as usize];
            c.n_b += 1;
            c.sum_b += self.r[t];
        }
        cells
    }

    /// Distinct clusters of a trade set.
    pub fn clusters_of(&self, set: &Bitset) -> u32 {
        let mut seen: Vec<u32> = set.iter().map(|t| self.cluster[t]).collect();
        seen.sort_unstable();
        seen.dedup();
        seen.len() as u32
    }

    /// Decayed moments (SPEC §3's dmean, d_eff_n and variance) of a trade set, folded in trade order.
    pub fn decayed(&self, set: &Bitset) -> WeightedStats {
        let mut w = WeightedStats::default();
        for t in set.iter() {
            w.push(self.r[t], self.weight[t]);
        }
        w
    }

    /// Sum of R over a trade set.
    pub fn sum(&self, set: &Bitset) -> f64 {
        set.iter().map(|t| self.r[t]).sum()
    }
}

/// Every supported subset's count and sum of R per time cluster, for one group's tests: one arena
/// of sparse cells (only the clusters a set has trades in) instead of a vector per subset. A group
/// may hold hundreds of thousands of subsets at once; small vectors cost their capacity slack and
/// allocator headers, and freed they stay in the worker thread's heap, while one large arena goes
/// back to the system when the group is done.
#[derive(Debug)]
pub struct GroupClusterSums {
    /// The module's cluster count (the length of the dense cells).
    n_clusters: u32,
    /// (cluster, trades, sum of R), ascending by cluster within each set.
    cells: Vec<(u32, u32, f64)>,
    /// Per row of the group: its cells in `cells`, `None` for a row without a trade set.
    spans: Vec<Option<Range<usize>>>,
    /// Dense per-cluster counts and sums while a set is summed (all zero between sets).
    scratch: Vec<(u32, f64)>,
}

impl GroupClusterSums {
    /// An empty arena for a module of `n_clusters` clusters and a group of `rows` rows.
    pub fn new(n_clusters: usize, rows: usize) -> Self {
        Self {
            n_clusters: n_clusters as u32,
            cells: Vec::new(),
            spans: Vec::with_capacity(rows),
            scratch: vec![(0, 0.0); n_clusters],
        }
    }

    /// Sum the next row's trade set (`None`: the row has none) over its clusters.
    pub fn push(&mut self, trades: &GroupTrades, set: Option<&Bitset>) {
        let Some(set) = set else {
            self.spans.push(None);
            return;
        };
        for t in set.iter() {
            let cell = &mut self.scratch[trades.cluster[t] as usize];
            cell.0 += 1;
            cell.1 += trades.r[t];
        }
        let start = self.cells.len();
        for (c, cell) in self.scratch.iter_mut().enumerate() {
            if cell.0 > 0 {
                self.cells.push((c as u32, cell.0, cell.1));
                *cell = (0, 0.0);
            }
        }
        self.spans.push(Some(start..self.cells.len()));
    }

    /// Row `i`'s sums, if it has a trade set.
    pub fn get(&self, i: usize) -> Option<ClusterSums<'_>> {
        let span = self.spans.get(i)?.clone()?;
        Some(ClusterSums {
            n_clusters: self.n_clusters,
            cells: &self.cells[span],
        })
    }
}

/// One trade set's count and sum of R per time cluster, sparse (deep subsets touch few of the
/// module's clusters).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClusterSums<'a> {
    /// The module's cluster count (the length of the dense cells).
    n_clusters: u32,
    /// (cluster, trades, sum of R) of each cluster with trades, ascending by cluster.
    cells: &'a [(u32, u32, f64)],
}

impl ClusterSums<'_> {
    pub fn clusters(&self) -> u32 {
        self.cells.len() as u32
    }

    pub fn total(&self) -> u64 {
        self.cells.iter().map(|&(_, n, _)| u64::from(n)).sum()
    }

    /// Cells of this set against `parent \ self` (a superset's sums minus these), dense over the
    /// module's clusters.
    pub fn against_rest_of(&self, parent: &ClusterSums<'_>) -> Vec<ClusterCell> {
        let mut cells = vec![ClusterCell::default(); self.n_clusters as usize];
        for &(c, n, sum) in parent.cells {
            let cell = &mut cells[c as usize];
            cell.n_b = n;
            cell.sum_b = sum;
        }
        for &(c, n, sum) in self.cells {
            let cell = &mut cells[c as usize];
            cell.n_a = n;
            cell.sum_a = sum;
            cell.n_b -= n;
            cell.sum_b -= sum;
        }
        cells
    }
}

/// Every trade of one module, indexed in canonical order: what a pattern root's comparison is
/// made of, so that other groups' lessons can be taken out of it (SPEC §4.1).
#[derive(Debug, Clone, Default)]
pub struct ModuleTrades {
    /// Per trade: its time cluster (an index into the module's clusters).
    pub cluster: Vec<u32>,
    /// Per trade: winsorized R.
    pub r: Vec<f64>,
}

impl ModuleTrades {
    pub fn n_trades(&self) -> usize {
        self.r.len()
    }

    /// The module-level set of a group's trades `set`.
    pub fn of_group(&self, group: &GroupTrades, set: &Bitset) -> Bitset {
        let mut out = Bitset::empty(self.n_trades());
        for t in set.iter() {
            out.insert(group.module_trade[t] as usize);
        }
        out
    }
}

/// (module, pattern, category) of a group.
pub type GroupId = (String, String, ActionCategory);

/// A [`TradeIndex`] built from events handed one at a time in canonical order, borrowed: the
/// nightly caller needs no owned [`TradeEvent`]s (~0.7 M events of seven strings at 100k trades).
pub struct TradeIndexBuilder {
    days: u32,
    half_life: f64,
    as_of: Timestamp,
    /// Per module, its time clusters (ids; numbered in time order at the end).
    clusters_of: BTreeMap<String, BTreeMap<i64, u32>>,
    /// module → trade key → the trade's index among the module's trades.
    module_index: FxHashMap<String, FxHashMap<String, u32>>,
    /// Per module, each trade's (cluster id, R) from its first event.
    module_raw: FxHashMap<String, Vec<(i64, f64)>>,
    /// module → pattern → category → the group being built: nested so that an event finds its
    /// group by the names it borrows, without building an owned key per event.
    groups: FxHashMap<String, FxHashMap<String, FxHashMap<ActionCategory, GroupBuild>>>,
    /// The buffer an event's scope pairs are parsed into (empty between events; see
    /// [`reuse_pairs_buffer`]).
    pairs_buffer: Vec<(&'static str, &'static str)>,
}

/// A group's trades while the index is built.
#[derive(Default)]
struct GroupBuild {
    trades: GroupTrades,
    /// Per trade, its cluster id (numbered once every event is in).
    raw_clusters: Vec<i64>,
    /// The key of the group's last trade: a trade's events are contiguous in canonical order, so
    /// among its group's events too.
    last_key: String,
}

impl TradeIndexBuilder {
    pub fn new(cfg: &LoopConfig, as_of: Timestamp) -> Self {
        Self {
            days: cfg.lessons.cluster_days,
            half_life: cfg.aggregate.stats_half_life_hours,
            as_of,
            clusters_of: BTreeMap::new(),
            module_index: FxHashMap::default(),
            module_raw: FxHashMap::default(),
            groups: FxHashMap::default(),
            pairs_buffer: Vec::new(),
        }
    }

    /// The next event in canonical order.
    pub fn push(&mut self, e: IndexEventRef<'_>) {
        let at = e.entry_at.unwrap_or(e.exit_at).millis();
        let c = time_cluster(at, self.days);
        if let Some(ids) = self.clusters_of.get_mut(e.module) {
            ids.insert(c, 0);
        } else {
            self.clusters_of
                .insert(e.module.to_string(), BTreeMap::from([(c, 0)]));
        }
        let build = group_build(&mut self.groups, &e);
        let g = &mut build.trades;
        let trade = if !g.r.is_empty() && build.last_key == e.trade_key {
            g.r.len() - 1
        } else {
            // A trade's first event is always new to its group: it is numbered in its module here.
            let module_trade = module_trade(&mut self.module_index, &mut self.module_raw, &e, c);
            build.raw_clusters.push(c);
            g.r.push(e.rr_winsorized);
            g.weight.push(decay_weight(
                self.as_of.hours_since(e.exit_at),
                self.half_life,
            ));
            g.module_trade.push(module_trade);
            build.last_key.clear();
            build.last_key.push_str(e.trade_key);
            g.r.len() - 1
        };
        let action = g.action_trade.len();
        g.action_trade.push(trade as u32);
        let mut pairs = reuse_pairs_buffer(std::mem::take(&mut self.pairs_buffer));
        if learnloop_model::scope::canonical_pairs_into(e.scope, &mut pairs) {
            g.add_action_pairs(action, &pairs);
        } else {
            learnloop_model::scope::with_scope_pairs(e.scope, |scope| {
                g.add_action_pairs(action, scope)
            });
        }
        pairs.clear();
        self.pairs_buffer = reuse_pairs_buffer(pairs);
    }

    pub fn finish(mut self) -> TradeIndex {
        for ids in self.clusters_of.values_mut() {
            for (i, v) in ids.values_mut().enumerate() {
                *v = i as u32;
            }
        }
        let clusters_of = &self.clusters_of;
        let modules: FxHashMap<String, ModuleTrades> = self
            .module_raw
            .iter()
            .map(|(module, raw)| {
                let ids = &clusters_of[module];
                let trades = ModuleTrades {
                    cluster: raw.iter().map(|(c, _)| ids[c]).collect(),
                    r: raw.iter().map(|&(_, r)| r).collect(),
                };
                (module.clone(), trades)
            })
            .collect();
        let mut module_cells: FxHashMap<&str, Vec<(u32, f64)>> = FxHashMap::default();
        for (module, trades) in &modules {
            let (module, ids) = clusters_of.get_key_value(module).expect("seen");
            let mut cells = vec![(0, 0.0); ids.len()];
            for (&c, &r) in trades.cluster.iter().zip(&trades.r) {
                cells[c as usize].0 += 1;
                cells[c as usize].1 += r;
            }
            module_cells.insert(module, cells);
        }
        let mut groups: FxHashMap<GroupId, GroupTrades> = FxHashMap::default();
        for (module, patterns) in self.groups {
            let ids = &clusters_of[&module];
            for (pattern, categories) in patterns {
                for (category, build) in categories {
                    let mut trades = build.trades;
                    trades.cluster = build.raw_clusters.iter().map(|c| ids[c]).collect();
                    groups.insert((module.clone(), pattern.clone(), category), trades);
                }
            }
        }
        let clusters: BTreeMap<&str, BTreeMap<i64, u32>> = clusters_of
            .iter()
            .map(|(m, ids)| (m.as_str(), ids.clone()))
            .collect();
        let mut index = TradeIndex::finish(groups, module_cells, clusters);
        index.modules = modules;
        index
    }
}

/// The group `e` belongs to, made on its first event (the names are copied only then).
fn group_build<'g>(
    groups: &'g mut FxHashMap<String, FxHashMap<String, FxHashMap<ActionCategory, GroupBuild>>>,
    e: &IndexEventRef<'_>,
) -> &'g mut GroupBuild {
    let patterns = named_entry(groups, e.module);
    named_entry(patterns, e.pattern_key)
        .entry(e.category)
        .or_default()
}

/// The value of `name` in `map`, a default one made on its first use: the name is looked up
/// borrowed and copied only then (`entry` would take an owned key on every call).
fn named_entry<'m, V: Default>(map: &'m mut FxHashMap<String, V>, name: &str) -> &'m mut V {
    if !map.contains_key(name) {
        map.insert(name.to_string(), V::default());
    }
    map.get_mut(name).expect("inserted above")
}

/// An empty pairs buffer of any lifetime, keeping the allocation: one event's borrowed pairs must
/// not outlive it, but the memory can serve the next event. Collecting an empty vector into one
/// of the same layout reuses its allocation in place (std's in-place collection; without it this
/// would only allocate anew). No pair is ever mapped.
fn reuse_pairs_buffer<'a, 'b>(buffer: Vec<(&'a str, &'a str)>) -> Vec<(&'b str, &'b str)> {
    debug_assert!(buffer.is_empty());
    buffer.into_iter().map(|_| ("", "")).collect()
}

/// The index of `e`'s trade among its module's trades (in order of first appearance), numbering
/// it on its first event.
fn module_trade(
    module_index: &mut FxHashMap<String, FxHashMap<String, u32>>,
    module_raw: &mut FxHashMap<String, Vec<(i64, f64)>>,
    e: &IndexEventRef<'_>,
    cluster: i64,
) -> u32 {
    if let Some(&i) = module_index
        .get(e.module)
        .and_then(|trades| trades.get(e.trade_key))
    {
        return i;
    }
    let raw = named_entry(module_raw, e.module);
    raw.push((cluster, e.rr_winsorized));
    let i = (raw.len() - 1) as u32;
    named_entry(module_index, e.module).insert(e.trade_key.to_string(), i);
    i
}

/// The trade-level view of every group, and per module its cluster count.
#[derive(Debug, Default)]
pub struct TradeIndex {
    pub groups: FxHashMap<GroupId, GroupTrades>,
    pub module_clusters: FxHashMap<String, usize>,
    pub modules: FxHashMap<String, ModuleTrades>,
}

impl TradeIndex {
    /// From the trade events (canonical order: a trade's events are contiguous), at `as_of`.
    pub fn build(events: &[TradeEvent], cfg: &LoopConfig, as_of: Timestamp) -> Self {
        let mut builder = TradeIndexBuilder::new(cfg, as_of);
        for e in events {
            builder.push(e.into());
        }
        builder.finish()
    }

    fn finish(
        mut groups: FxHashMap<GroupId, GroupTrades>,
        module_cells: FxHashMap<&str, Vec<(u32, f64)>>,
        clusters_of: BTreeMap<&str, BTreeMap<i64, u32>>,
    ) -> Self {
        for (id, g) in groups.iter_mut() {
            let words = g.action_trade.len().div_ceil(64);
            for set in g.pairs.values_mut().flat_map(|values| values.values_mut()) {
                set.0.resize(words, 0);
            }
            // The module's trades outside the group, per cluster: the module's cells minus the
            // group's (a trade is in the group at most once).
            let mut rest = module_cells[id.0.as_str()].clone();
            for (t, &c) in g.cluster.iter().enumerate() {
                rest[c as usize].0 -= 1;
                rest[c as usize].1 -= g.r[t];
            }
            g.rest = rest;
        }
        let module_clusters = clusters_of
            .into_iter()
            .map(|(m, ids)| (m.to_string(), ids.len()))
            .collect();
        Self {
            groups,
            module_clusters,
            modules: FxHashMap::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set_of(n: usize, members: &[usize]) -> Bitset {
        let mut set = Bitset::empty(n);
        for &t in members {
            set.insert(t);
        }
        set
    }

    #[test]
    fn group_cluster_sums_keep_each_rows_sparse_cells_and_contrast_against_a_parent() {
        // Six trades over four clusters (cluster 2 has none).
        let trades = GroupTrades {
            cluster: vec![0, 0, 1, 3, 3, 3],
            r: vec![1.0, -0.5, 2.0, 0.25, 0.5, -1.0],
            ..Default::default()
        };
        let parent = set_of(6, &[0, 1, 2, 3, 4, 5]);
        let child = set_of(6, &[1, 4]);
        let mut sums = GroupClusterSums::new(4, 3);
        sums.push(&trades, Some(&parent));
        sums.push(&trades, None);
        sums.push(&trades, Some(&child));

        let p = sums.get(0).expect("the parent has sums");
        assert_eq!(p.cells, &[(0, 2, 0.5), (1, 1, 2.0), (3, 3, -0.25)]);
        assert_eq!((p.clusters(), p.total()), (3, 6));
        assert!(sums.get(1).is_none());
        assert!(sums.get(3).is_none());
        let c = sums.get(2).expect("the child has sums");
        assert_eq!(c.cells, &[(0, 1, -0.5), (3, 1, 0.5)]);
        assert_eq!((c.clusters(), c.total()), (2, 2));

        // Against the rest of the parent: the child's trades on one side, the others' on the other.
        let cells = c.against_rest_of(&p);
        let got: Vec<(u32, f64, u32, f64)> = cells
            .iter()
            .map(|x| (x.n_a, x.sum_a, x.n_b, x.sum_b))
            .collect();
        assert_eq!(
            got,
            vec![
                (1, -0.5, 1, 1.0),
                (0, 0.0, 1, 2.0),
                (0, 0.0, 0, 0.0),
                (1, 0.5, 2, -0.75)
            ]
        );
    }
}
