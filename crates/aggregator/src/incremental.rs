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
    rows: Vec<SubsetRow>,
}

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
    cache: FxHashMap<(String, String, ActionCategory), CachedGroup>,
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
        }
    }

    /// The stats rows as of `as_of` for `events` (every linked trade event known then, in
    /// canonical order), sorted like the stored table.
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
        let mut live = FxHashMap::default();
        for group in &p.groups {
            let key = (
                group.module.clone(),
                group.pattern_key.clone(),
                group.category,
            );
            let mut cached = match self.cache.remove(&key) {
                Some(mut c) if c.fingerprint == group.fingerprint => {
                    let factor = decay_weight(as_of.hours_since(c.as_of), self.half_life_hours);
                    if c.as_of != as_of {
                        for r in &mut c.rows {
                            r.stats.decayed.rescale(factor);
                        }
                    }
                    c.as_of = as_of;
                    report.carried_forward += 1;
                    c
                }
                _ => {
                    let (rows, counters) = compute_group(&p, group, self.limits);
                    report.recomputed += 1;
                    report.counters.subsets_evaluated += counters.subsets_evaluated;
                    report.counters.subset_updates += counters.subset_updates;
                    report.counters.subsets_pruned += counters.subsets_pruned;
                    CachedGroup {
                        fingerprint: group.fingerprint,
                        as_of,
                        rows,
                    }
                }
            };
            report.counters.rows += cached.rows.len() as u64;
            out.extend(cached.rows.iter().map(|r| StatsRow {
                module: group.module.clone(),
                pattern_key: group.pattern_key.clone(),
                category: group.category,
                scope_mask: r.mask,
                scope_values: r.scope_values.clone(),
                scope_values_hash: r.scope_values_hash,
                stats: r.stats,
                as_of,
            }));
            cached.rows.shrink_to_fit();
            live.insert(key, cached);
        }
        // Groups without events any more are dropped with the old cache.
        self.cache = live;
        Ok((out, report))
    }
}
