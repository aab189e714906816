//! The `aggregate` stage: trade_events → pattern_scope_stats, inside the caller's transaction.

use crate::engine::{compute, AggregateCounters};
use crate::prepare::Prepared;
use crate::AggregateError;
use learnloop_model::{LoopConfig, Timestamp};
use learnloop_store::events::{self, TradeEvent};
use learnloop_store::{stats, Connection};
use std::time::Instant;

#[derive(Debug, Clone, Default)]
pub struct AggregateOptions {
    /// Replace each trade's R before aggregation (the placebo run); `None` aggregates real R.
    pub transform: Option<fn(&mut [TradeEvent], u64)>,
    pub seed: u64,
}

#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct AggregateReport {
    pub as_of: String,
    pub trades: u64,
    pub trade_events: u64,
    pub groups: u64,
    pub store_min_trades: u64,
    pub k_max: u32,
    pub counters: AggregateCounters,
    pub load_ms: u64,
    pub compute_ms: u64,
    pub write_ms: u64,
}

pub fn aggregate(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    options: &AggregateOptions,
) -> Result<AggregateReport, AggregateError> {
    let t0 = Instant::now();
    let mut events = events::load_all_events(conn)?;
    if let Some(transform) = options.transform {
        transform(&mut events, options.seed);
    }
    let prepared = Prepared::build(
        &events,
        &cfg.dims,
        as_of,
        cfg.aggregate.stats_half_life_hours,
    )?;
    let t1 = Instant::now();
    let min_trades = cfg.store_min_trades();
    let out = compute(&prepared, cfg.aggregate.k_max, min_trades, as_of);
    let t2 = Instant::now();
    stats::replace_all(conn, &out.rows)?;
    let t3 = Instant::now();
    let report = AggregateReport {
        as_of: as_of.to_rfc3339(),
        trades: prepared.trades.len() as u64,
        trade_events: events.len() as u64,
        groups: prepared.groups.len() as u64,
        store_min_trades: min_trades,
        k_max: cfg.aggregate.k_max,
        counters: out.counters,
        load_ms: (t1 - t0).as_millis() as u64,
        compute_ms: (t2 - t1).as_millis() as u64,
        write_ms: (t3 - t2).as_millis() as u64,
    };
    tracing::info!(
        trades = report.trades,
        rows = report.counters.rows,
        updates = report.counters.subset_updates,
        compute_ms = report.compute_ms,
        "aggregated"
    );
    Ok(report)
}
