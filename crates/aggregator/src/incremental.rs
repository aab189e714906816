//! Carrying statistics forward from one as-of time to the next (the replay's aggregation).
//!
//! A group whose events are unchanged since the previous step keeps its rows: counts, moments and
//! every other per-trade figure are identical by construction, and the decayed figures only need
//! their weights rescaled by `0.5^(Δt/half_life)` (exact up to rounding, ~1e-15 relative). Only
//! groups that gained, lost or changed events are recomputed, from the in-memory observations.

use crate::engine::{compute_group, AggregateCounters, Limits, SubsetRow};
use crate::prepare::{PrepareError, Prepared};
use learnloop_model::stats::decay_weight;
use learnloop_model::{ActionCategory, LoopConfig, Timestamp};
use learnloop_store::events::TradeEvent;
use learnloop_store::stats::StatsRow;
use rustc_hash::FxHashMap;

struct CachedGroup {
    fingerprint: u64,
    as_of: Timestamp,
    rows: Vec<StatsRow>,
}

type GroupKey = (String, String, ActionCategory);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct StepReport {
    pub groups: u64,
    pub recomputed: u64,
    pub carried_forward: u64,
    pub counters: AggregateCounters,
}

pub struct IncrementalAggregator {
    limits: Limits,
    half_life_hours: f64,
    dims: learnloop_model::DimensionList,
    cache: FxHashMap<GroupKey, CachedGroup>,
    /// Groups of the rows last handed out, in order, to take them back in [`Self::restore`].
    lent: Vec<(GroupKey, u64, usize)>,
    lent_as_of: Timestamp,
}

impl IncrementalAggregator {
    pub fn new(cfg: &LoopConfig) -> Self {
        Self {
            limits: Limits {
                k_max: cfg.aggregate.k_max,
                min_trades: cfg.store_min_trades(),
            },
            half_life_hours: cfg.aggregate.stats_half_life_hours,
            dims: cfg.dims.clone(),
            cache: FxHashMap::default(),
            lent: Vec::new(),
            lent_as_of: Timestamp(0),
        }
    }

    /// The stats rows as of `as_of` for `events` (every linked trade event known then, in
    /// canonical order), sorted like the stored table. Hand the rows back with
    /// [`Self::restore`] so that the next step can carry them forward instead of recomputing.
    pub fn step(
        &mut self,
        events: &[TradeEvent],
        as_of: Timestamp,
    ) -> Result<(Vec<StatsRow>, StepReport), PrepareError> {
        let p = Prepared::build(events, &self.dims, as_of, self.half_life_hours)?;
        let mut report = StepReport {
            groups: p.groups.len() as u64,
            ..StepReport::default()
        };
        let mut out = Vec::new();
        self.lent.clear();
        self.lent_as_of = as_of;
        for group in &p.groups {
            let key = (
                group.module.clone(),
                group.pattern_key.clone(),
                group.category,
            );
            let rows = match self.cache.remove(&key) {
                Some(mut c) if c.fingerprint == group.fingerprint => {
                    if c.as_of != as_of {
                        let factor = decay_weight(as_of.hours_since(c.as_of), self.half_life_hours);
                        for r in &mut c.rows {
                            r.stats.decayed.rescale(factor);
                            r.as_of = as_of;
                        }
                    }
                    report.carried_forward += 1;
                    c.rows
                }
                _ => {
                    let (rows, counters) = compute_group(&p, group, self.limits);
                    report.recomputed += 1;
                    report.counters.subsets_evaluated += counters.subsets_evaluated;
                    report.counters.subset_updates += counters.subset_updates;
                    report.counters.subsets_pruned += counters.subsets_pruned;
                    rows.into_iter()
                        .map(|r| to_stats_row(group, r, as_of))
                        .collect()
                }
            };
            report.counters.rows += rows.len() as u64;
            self.lent.push((key, group.fingerprint, rows.len()));
            out.extend(rows);
        }
        // Groups without events any more are forgotten.
        self.cache.clear();
        Ok((out, report))
    }

    /// Take back the rows of the last [`Self::step`], unchanged, for the next step.
    pub fn restore(&mut self, rows: Vec<StatsRow>) {
        let mut rows = rows.into_iter();
        for (key, fingerprint, len) in self.lent.drain(..) {
            let group_rows: Vec<StatsRow> = rows.by_ref().take(len).collect();
            self.cache.insert(
                key,
                CachedGroup {
                    fingerprint,
                    as_of: self.lent_as_of,
                    rows: group_rows,
                },
            );
        }
    }
}

fn to_stats_row(group: &crate::prepare::Group, r: SubsetRow, as_of: Timestamp) -> StatsRow {
    StatsRow {
        module: group.module.clone(),
        pattern_key: group.pattern_key.clone(),
        category: group.category,
        scope_mask: r.mask,
        scope_values: r.scope_values,
        scope_values_hash: r.scope_values_hash,
        stats: r.stats,
        as_of,
    }
}
