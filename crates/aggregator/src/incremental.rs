//! Carrying statistics forward from one as-of time to the next (the replay's aggregation).
//!
//! Per (module, pattern, category) group, against the previous step:
//! - unchanged events: the rows are kept; only the decayed figures are rescaled by
//!   `0.5^(Δt/half_life)` (exact up to rounding, ~1e-15 relative);
//! - the old events are a prefix of the new ones (new trades closed after the old ones, the usual
//!   night): only the subsets of the new trades' scopes are touched. A stored subset folds the new
//!   trades after its old ones (the same sequence a full recomputation folds, so counts and
//!   moments are bit-identical); a subset not stored before is computed from the group's
//!   observations and kept if it now has enough trades. Only children of stored subsets are
//!   visited (a subset with enough trades has parents with enough trades), which bounds the walk;
//! - anything else (a late action changed an old trade, a trade disappeared): the group is
//!   recomputed from scratch.

use crate::engine::{compute_group, fold_observations, AggregateCounters, Limits};
use crate::prepare::{fold_event, Group, PrepareError, Prepared, FINGERPRINT_SEED};
use learnloop_model::hash::StableHasher;
use learnloop_model::scope::scope_values_json;
use learnloop_model::stats::{decay_weight, OutcomeStats};
use learnloop_model::{ActionCategory, LoopConfig, StatsRow, StatsView, Timestamp, TradeEvent};
use rustc_hash::FxHashMap;

use std::sync::Arc;

type GroupKey = (Arc<str>, Arc<str>, ActionCategory);

struct CachedGroup {
    /// Fingerprint of the group's events when the rows were computed, and how many there were.
    fingerprint: u64,
    events: usize,
    observations: usize,
    as_of: Timestamp,
    rows: Vec<StatsRow>,
}

/// What one incremental step did to the carried statistics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StepReport {
    /// Groups at the step.
    pub groups: u64,
    /// Groups recomputed from their events.
    pub recomputed: u64,
    /// Groups whose new trades were folded into their stored subsets.
    pub appended: u64,
    /// Groups only rescaled to the new as-of time.
    pub carried_forward: u64,
    /// Subsets evaluated, pruned and stored.
    pub counters: AggregateCounters,
}

/// Statistics carried from one as-of time to the next (the replay), group by group.
pub struct IncrementalAggregator {
    limits: Limits,
    half_life_hours: f64,
    dims: learnloop_model::DimensionList,
    cache: FxHashMap<GroupKey, CachedGroup>,
}

impl IncrementalAggregator {
    /// An aggregator holding nothing yet.
    pub fn new(cfg: &LoopConfig) -> Self {
        Self {
            limits: Limits::from_config(cfg),
            half_life_hours: cfg.aggregate.stats_half_life_hours,
            dims: cfg.dims.clone(),
            cache: FxHashMap::default(),
        }
    }

    /// The stats rows as of `as_of` for `events` (every linked trade event known then, in
    /// canonical order), sorted like the stored table. The rows stay here, one part per group,
    /// so that the next step carries them forward in place.
    pub fn step(
        &mut self,
        events: &[TradeEvent],
        as_of: Timestamp,
    ) -> Result<(StatsView<'_>, StepReport), PrepareError> {
        let p = Prepared::build(events, &self.dims, as_of, self.half_life_hours)?;
        let prints = self.fingerprints(events);
        let mut report = StepReport {
            groups: p.groups.len() as u64,
            ..StepReport::default()
        };
        let mut next: FxHashMap<GroupKey, CachedGroup> = FxHashMap::default();
        let mut order: Vec<GroupKey> = Vec::with_capacity(p.groups.len());
        for group in &p.groups {
            let key = (
                group.module.clone(),
                group.pattern_key.clone(),
                group.category,
            );
            let (events_now, full, prefix) = prints
                .get(&key)
                .map_or((0, 0, None), |g| (g.events, g.full, g.prefix));
            let cached = self.cache.remove(&key);
            let rows = match cached {
                Some(mut c) if c.fingerprint == full => {
                    carry_to(&mut c.rows, c.as_of, as_of, self.half_life_hours);
                    report.carried_forward += 1;
                    c.rows
                }
                // Appending folds new trades into the stored subsets and looks for new ones
                // among them; a skipped duplicate that the new trades make distinct may hold none
                // of them, so the default enumeration (cheap: two dims) recomputes instead.
                Some(mut c) if prefix == Some(c.fingerprint) && !self.limits.skips_duplicates() => {
                    carry_to(&mut c.rows, c.as_of, as_of, self.half_life_hours);
                    let mut append =
                        Append::new(&p, group, self.limits, c.observations, c.rows, as_of);
                    append.run();
                    report.appended += 1;
                    report.counters.subsets_evaluated += append.counters.subsets_evaluated;
                    report.counters.subset_updates += append.counters.subset_updates;
                    report.counters.subsets_pruned += append.counters.subsets_pruned;
                    append.finish()
                }
                _ => {
                    let (rows, counters) = compute_group(&p, group, self.limits);
                    report.recomputed += 1;
                    report.counters.subsets_evaluated += counters.subsets_evaluated;
                    report.counters.subset_updates += counters.subset_updates;
                    report.counters.subsets_pruned += counters.subsets_pruned;
                    rows.iter().map(|r| r.to_stats_row(group, as_of)).collect()
                }
            };
            report.counters.rows += rows.len() as u64;
            let cached = CachedGroup {
                fingerprint: full,
                events: events_now,
                observations: group.len(),
                as_of,
                rows,
            };
            next.insert(key.clone(), cached);
            order.push(key);
        }
        // Groups without events any more are forgotten.
        self.cache = next;
        let view = StatsView::new(order.iter().map(|k| self.cache[k].rows.as_slice()));
        Ok((view, report))
    }

    /// For each group: its event count now, the fingerprint of all its events, and the
    /// fingerprint of its first `n` events where `n` is the count cached from the previous step —
    /// `None` if it has fewer events now, or if the event after the prefix continues the prefix's
    /// last trade (a trade that gained an action is not an appended trade).
    fn fingerprints(&self, events: &[TradeEvent]) -> FxHashMap<GroupKey, GroupPrints> {
        struct Running<'e> {
            cached_events: Option<usize>,
            count: usize,
            hash: u64,
            prefix: Option<u64>,
            last_trade: &'e str,
        }
        let mut running: FxHashMap<(&str, &str, ActionCategory), Running<'_>> =
            FxHashMap::default();
        for e in events {
            let key = (e.module.as_str(), e.pattern_key.as_str(), e.category);
            let r = running.entry(key).or_insert_with(|| Running {
                cached_events: self
                    .cache
                    .get(&(
                        Arc::from(e.module.as_str()),
                        Arc::from(e.pattern_key.as_str()),
                        e.category,
                    ))
                    .map(|c| c.events),
                count: 0,
                hash: FINGERPRINT_SEED,
                prefix: None,
                last_trade: "",
            });
            if r.cached_events == Some(r.count) && r.last_trade != e.trade_key {
                r.prefix = Some(r.hash);
            }
            r.count += 1;
            r.hash = fold_event(r.hash, e);
            r.last_trade = &e.trade_key;
        }
        running
            .into_iter()
            .map(|((m, p, c), r)| {
                // A prefix as long as the whole group is the whole group.
                let prefix = if r.cached_events == Some(r.count) {
                    Some(r.hash)
                } else {
                    r.prefix
                };
                let prints = GroupPrints {
                    events: r.count,
                    full: r.hash,
                    prefix,
                };
                ((Arc::from(m), Arc::from(p), c), prints)
            })
            .collect()
    }
}

struct GroupPrints {
    events: usize,
    full: u64,
    prefix: Option<u64>,
}

/// A row's place in the table: the signed-integer key SQLite orders by.
fn row_key(r: &StatsRow) -> (i64, i64) {
    (r.scope_mask as i64, r.scope_values_hash as i64)
}

/// Rows as of `from` brought to `to`: the decayed figures rescaled (exact up to rounding, the
/// weights all shrink by one factor) and the as-of time set, in one pass over the rows.
fn carry_to(rows: &mut [StatsRow], from: Timestamp, to: Timestamp, half_life_hours: f64) {
    let factor = decay_weight(to.hours_since(from), half_life_hours);
    for r in rows {
        if from != to {
            r.stats.decayed.rescale(factor);
        }
        r.as_of = to;
    }
}

/// Folding a group's new observations (those from `old_obs` on) into its stored rows.
struct Append<'a> {
    p: &'a Prepared,
    group: &'a Group,
    limits: Limits,
    old_obs: usize,
    /// The group's rows: the old ones first, sorted by key, then the subsets added this step.
    rows: Vec<StatsRow>,
    old_rows: usize,
    /// The old rows' keys, compact for the binary searches.
    keys: Vec<(i64, i64)>,
    added: FxHashMap<(u64, u64), usize>,
    /// The as-of time of the rows added.
    as_of: Timestamp,
    path: Vec<(usize, u32)>,
    name_order: Vec<usize>,
    counters: AggregateCounters,
    /// postings[d][v]: bitset of the old observations whose dimension d has value id v (built on
    /// first need; empty when none has it), so that a subset's old trades are found by
    /// intersecting its values' bitsets, not by a scan.
    postings: Option<Vec<Vec<Vec<u64>>>>,
    scratch: Vec<u64>,
}

impl<'a> Append<'a> {
    fn new(
        p: &'a Prepared,
        group: &'a Group,
        limits: Limits,
        old_obs: usize,
        rows: Vec<StatsRow>,
        as_of: Timestamp,
    ) -> Self {
        let mut name_order: Vec<usize> = (0..p.dims).collect();
        name_order.sort_by(|&a, &b| p.dim_names[a].cmp(&p.dim_names[b]));
        Self {
            p,
            group,
            limits,
            old_obs,
            old_rows: rows.len(),
            keys: rows.iter().map(row_key).collect(),
            rows,
            added: FxHashMap::default(),
            as_of,
            path: Vec::new(),
            name_order,
            counters: AggregateCounters::default(),
            postings: None,
            scratch: Vec::new(),
        }
    }

    fn build_postings(&mut self) {
        if self.postings.is_some() {
            return;
        }
        let words = self.old_obs.div_ceil(64);
        let mut postings: Vec<Vec<Vec<u64>>> = (0..self.p.dims)
            .map(|d| vec![Vec::new(); self.p.value_names[d].len() + 1])
            .collect();
        for o in 0..self.old_obs {
            for (d, bitsets) in postings.iter_mut().enumerate() {
                let v = self.group.values[o * self.p.dims + d] as usize;
                if v != 0 {
                    let bits = &mut bitsets[v];
                    if bits.is_empty() {
                        bits.resize(words, 0);
                    }
                    bits[o / 64] |= 1u64 << (o % 64);
                }
            }
        }
        self.postings = Some(postings);
    }

    /// The old observations inside the current path's subset, in order: the intersection of its
    /// values' bitsets.
    fn old_matching(&mut self) -> Vec<u32> {
        self.build_postings();
        let postings = self.postings.as_ref().expect("built above");
        let Some((&(d0, v0), rest)) = self.path.split_first() else {
            return (0..self.old_obs as u32).collect();
        };
        let first = &postings[d0][v0 as usize];
        if first.is_empty()
            || rest
                .iter()
                .any(|&(d, v)| postings[d][v as usize].is_empty())
        {
            return Vec::new();
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(first);
        for &(d, v) in rest {
            for (acc, bits) in self.scratch.iter_mut().zip(&postings[d][v as usize]) {
                *acc &= bits;
            }
        }
        let mut out = Vec::new();
        for (w, &bits) in self.scratch.iter().enumerate() {
            let mut bits = bits;
            while bits != 0 {
                out.push((w * 64) as u32 + bits.trailing_zeros());
                bits &= bits - 1;
            }
        }
        out
    }

    fn value(&self, obs: u32, dim: usize) -> u32 {
        self.group.values[obs as usize * self.p.dims + dim]
    }

    fn run(&mut self) {
        let new: Vec<u32> = (self.old_obs as u32..self.group.len() as u32).collect();
        if !new.is_empty() {
            self.visit(&new, 0, 0, StableHasher::default());
        }
    }

    /// The stored row of a subset: the old rows are sorted by key, the new ones indexed.
    fn find(&self, mask: u64, hash: u64) -> Option<usize> {
        self.keys
            .binary_search(&(mask as i64, hash as i64))
            .ok()
            .or_else(|| self.added.get(&(mask, hash)).copied())
    }

    /// `node` holds the new observations inside the current path's subset. Dimensions are added
    /// in name order, so the path's pairs are already sorted and `key` (the hash of the pairs so
    /// far, as `scope_values_hash` computes it) extends by one pair per level.
    fn visit(&mut self, node: &[u32], mask: u64, next_rank: usize, key: StableHasher) {
        let hash = key.finish();
        let n_trades = match self.find(mask, hash) {
            Some(i) => {
                let mut stats = self.rows[i].stats;
                self.fold_into(&mut stats, node);
                self.rows[i].stats = stats;
                stats.n_trades()
            }
            None => {
                // Not stored before: its old trades are needed too.
                let old = self.old_matching();
                let mut stats = OutcomeStats::default();
                self.fold_into(&mut stats, &old);
                self.fold_into(&mut stats, node);
                if stats.n_trades() < self.limits.min_trades(self.path.len()) {
                    self.counters.subsets_pruned += 1;
                    return;
                }
                self.added.insert((mask, hash), self.rows.len());
                self.rows.push(StatsRow {
                    module: self.group.module.clone(),
                    pattern_key: self.group.pattern_key.clone(),
                    category: self.group.category,
                    scope_mask: mask,
                    scope_values: self.key_json(),
                    scope_values_hash: hash,
                    stats,
                    as_of: self.as_of,
                });
                stats.n_trades()
            }
        };
        let depth = self.path.len();
        if depth as u32 >= self.limits.k_max || n_trades < self.limits.min_trades(depth + 1) {
            return; // no refinement can reach its size's threshold
        }
        for rank in next_rank..self.p.dims {
            let d = self.name_order[rank];
            let first = self.value(node[0], d);
            if node.iter().all(|&o| self.value(o, d) == first) {
                // One value (the usual case: a night brings one or two trades per subset): the
                // child holds the same observations.
                if first != 0 {
                    self.visit_child(node, mask, rank, key, first);
                }
                continue;
            }
            let mut values: Vec<u32> = node
                .iter()
                .map(|&o| self.value(o, d))
                .filter(|&v| v != 0)
                .collect();
            values.sort_unstable();
            values.dedup();
            for v in values {
                let child: Vec<u32> = node
                    .iter()
                    .copied()
                    .filter(|&o| self.value(o, d) == v)
                    .collect();
                self.visit_child(&child, mask, rank, key, v);
            }
        }
    }

    /// Visit the subset of the current path plus dimension `name_order[rank]` = `v`.
    fn visit_child(&mut self, child: &[u32], mask: u64, rank: usize, key: StableHasher, v: u32) {
        let d = self.name_order[rank];
        let mut child_key = key;
        if !self.path.is_empty() {
            child_key.write(&[0x1f]);
        }
        child_key.write(self.p.dim_names[d].as_bytes());
        child_key.write(b"=");
        child_key.write(self.p.value_names[d][v as usize - 1].as_bytes());
        self.path.push((d, v));
        self.visit(child, mask | (1u64 << d), rank + 1, child_key);
        self.path.pop();
    }

    /// Fold the trades behind `obs` (canonical order) into `stats`.
    fn fold_into(&mut self, stats: &mut OutcomeStats, obs: &[u32]) {
        self.counters.subset_updates += fold_observations(self.p, self.group, obs, stats);
        self.counters.subsets_evaluated += 1;
    }

    /// The subset's `dim=value` pairs, sorted by dimension name.
    fn key_pairs(&self) -> Vec<(&str, &str)> {
        self.name_order
            .iter()
            .filter_map(|&d| {
                self.path.iter().find(|(pd, _)| *pd == d).map(|&(_, v)| {
                    (
                        self.p.dim_names[d].as_str(),
                        self.p.value_names[d][v as usize - 1].as_str(),
                    )
                })
            })
            .collect()
    }

    fn key_json(&self) -> String {
        let mut json = scope_values_json(self.key_pairs());
        json.shrink_to_fit();
        json
    }

    /// The rows in key order again: the few new rows are merged into the sorted old ones from the
    /// back, so only the old rows after the first insertion point move, each once.
    fn finish(mut self) -> Vec<StatsRow> {
        let old = self.old_rows;
        if self.rows.len() == old {
            return self.rows;
        }
        let mut added = self.rows.split_off(old);
        added.sort_unstable_by_key(row_key);
        let category = self.group.category;
        let (module, pattern_key) = (&self.group.module, &self.group.pattern_key);
        self.rows.resize_with(old + added.len(), || StatsRow {
            module: module.clone(),
            pattern_key: pattern_key.clone(),
            category,
            scope_mask: 0,
            scope_values: String::new(),
            scope_values_hash: 0,
            stats: OutcomeStats::default(),
            as_of: Timestamp(0),
        });
        // Invariant: rows[..i] are the old rows not yet placed, added[..j] the new ones, and
        // every slot from i + j up holds its final row; the placeholders end up in `added`.
        let (mut i, mut j) = (old, added.len());
        while j > 0 {
            let w = i + j - 1;
            if i > 0 && self.keys[i - 1] > row_key(&added[j - 1]) {
                self.rows.swap(w, i - 1);
                i -= 1;
            } else {
                std::mem::swap(&mut self.rows[w], &mut added[j - 1]);
                j -= 1;
            }
        }
        self.rows
    }
}

#[cfg(test)]
mod tests;
