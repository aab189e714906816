//! The `aggregate` stage: trade_events → pattern_scope_stats, inside the caller's transaction.

use crate::engine::{compute_each_annotated_after, AggregateCounters, Limits, SubsetRowRef};
use crate::prepare::{Group, Prepared};
use crate::AggregateError;
use learnloop_model::stats::OutcomeStats;
use learnloop_model::{ActionCategory, LoopConfig, Timestamp, TradeEvent};
use learnloop_store::events;
use learnloop_store::scopes::StoredScopes;
use learnloop_store::stats::{GroupKey, StatsWriter, SubsetKey};
use learnloop_store::Connection;
use std::time::Instant;

/// How the aggregate stage runs.
#[derive(Debug, Clone, Default)]
pub struct AggregateOptions {
    /// Replace each trade's R before aggregation (the placebo run: events, seed, cluster days);
    /// `None` aggregates real R.
    pub transform: Option<fn(&mut [TradeEvent], u64, u32)>,
    /// Seed of the transform (the placebo seed).
    pub seed: u64,
    /// Length of the placebo's time clusters in days.
    pub cluster_days: u32,
}

/// What the aggregate stage did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AggregateReport {
    /// The as-of time.
    pub as_of: String,
    /// Trades aggregated.
    pub trades: u64,
    /// Trade events read.
    pub trade_events: u64,
    /// (module, pattern, category) groups.
    pub groups: u64,
    /// The smallest number of trades of a stored subset (that of the root and 1-dim subsets).
    pub store_min_trades: u64,
    /// Deepest subset size the enumeration may reach (the dimension count without `k_max`).
    pub k_max: u32,
    /// Subsets evaluated, pruned and stored.
    pub counters: AggregateCounters,
    /// Time reading and preparing the events, in ms.
    pub load_ms: u64,
    /// Computing and writing overlap (one group is written while the next is computed).
    pub compute_write_ms: u64,
}

/// The stored events prepared for the enumeration, and how many there were. A placebo's
/// transform rewrites whole events, so it loads them; the nightly path reads them without.
pub(crate) fn prepare(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    options: &AggregateOptions,
) -> Result<(Prepared, u64), AggregateError> {
    prepare_groups(conn, cfg, as_of, options, &|_, _, _| true)
}

/// [`prepare`] for the (module, pattern, category) groups `keep` accepts (the others may be
/// prepared too: a transform, which is applied to every event, prepares them all).
pub(crate) fn prepare_groups(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    options: &AggregateOptions,
    keep: &dyn Fn(&str, &str, ActionCategory) -> bool,
) -> Result<(Prepared, u64), AggregateError> {
    let half_life = cfg.aggregate.stats_half_life_hours;
    let Some(transform) = options.transform else {
        let prepared = Prepared::from_store_of_groups(conn, &cfg.dims, as_of, half_life, keep)?;
        let events = prepared.event_count();
        return Ok((prepared, events));
    };
    let mut events = events::load_all_events(conn)?;
    transform(&mut events, options.seed, options.cluster_days);
    let prepared = Prepared::build(&events, &cfg.dims, as_of, half_life)?;
    Ok((prepared, events.len() as u64))
}

/// Recompute `pattern_scope_stats` from `trade_events` as of `as_of`, replacing the table.
pub fn aggregate(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    options: &AggregateOptions,
) -> Result<AggregateReport, AggregateError> {
    aggregate_with_progress(conn, cfg, as_of, options, &mut |_, _| {})
}

/// [`aggregate`], calling `on_group(done, total)` as each pattern group reaches the writer (for a
/// progress bar; the stage draws nothing itself).
pub fn aggregate_with_progress(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    options: &AggregateOptions,
    on_group: &mut dyn FnMut(u64, u64),
) -> Result<AggregateReport, AggregateError> {
    // No page is needed twice: a bounded cache reuses its buffers (`ONE_PASS_PAGE_CACHE_MIB`).
    learnloop_store::with_page_cache_mib(conn, learnloop_store::ONE_PASS_PAGE_CACHE_MIB, || {
        let t0 = Instant::now();
        let (prepared, trade_events) = prepare(conn, cfg, as_of, options)?;
        let t1 = Instant::now();
        let limits = Limits::from_config(cfg);
        let counters = write_all_groups(conn, &prepared, limits, as_of, on_group)?;
        let depth = limits.k_max.min(cfg.dims.len() as u32);
        learnloop_store::stats::set_enumerated_depth(conn, depth)?;
        let t2 = Instant::now();
        let report = AggregateReport {
            as_of: as_of.to_rfc3339(),
            trades: prepared.trades.len() as u64,
            trade_events,
            groups: prepared.groups.len() as u64,
            store_min_trades: limits.min_trades(0),
            k_max: depth,
            counters,
            load_ms: (t1 - t0).as_millis() as u64,
            compute_write_ms: (t2 - t1).as_millis() as u64,
        };
        tracing::info!(
            trades = report.trades,
            rows = report.counters.rows,
            updates = report.counters.subset_updates,
            compute_write_ms = report.compute_write_ms,
            "aggregated"
        );
        Ok(report)
    })
}

/// Replace the stored rows by every group's, computed under `limits` while earlier groups are
/// written.
fn write_all_groups(
    conn: &Connection,
    prepared: &Prepared,
    limits: Limits,
    as_of: Timestamp,
    on_group: &mut dyn FnMut(u64, u64),
) -> Result<AggregateCounters, AggregateError> {
    let total_groups = prepared.groups.len() as u64;
    let mut groups_done = 0;
    let stored = StoredScopes::load(conn)?;
    let (writer, counters) = compute_each_annotated_after(
        prepared,
        limits,
        |_, rows| stored.classify(rows),
        // Clearing last night's rows reads every page of them (~0.1 s on an exhaustive
        // 8,000-trade store): done once the first group is computed, while the next ones are,
        // not before the computing starts.
        || StatsWriter::replace_all(conn, as_of, &stored),
        |writer, group, rows, scopes| {
            groups_done += 1;
            on_group(groups_done, total_groups);
            writer.write_group(group_key(group), rows, &scopes)
        },
    )?;
    writer.finish()?;
    Ok(counters)
}

/// The store's key of a group.
pub(crate) fn group_key(group: &Group) -> GroupKey<'_> {
    GroupKey {
        module: &group.module,
        pattern_key: &group.pattern_key,
        category: group.category,
    }
}

/// Computed rows as the store's writer takes them.
pub(crate) fn subset_keys<'r>(
    rows: impl Iterator<Item = SubsetRowRef<'r>>,
) -> Vec<(SubsetKey<'r>, &'r OutcomeStats)> {
    rows.map(|r| {
        let key = SubsetKey {
            scope_mask: r.mask,
            scope_values: r.scope_values,
            scope_values_hash: r.scope_values_hash,
        };
        (key, r.stats)
    })
    .collect()
}
