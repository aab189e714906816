//! `learnloop bench aggregate --breakdown`: where the rows the enumeration keeps come from, by
//! subset size and kind (docs/scale.md), on the aggregate bench's book or on an existing store's
//! (`--book-db`, e.g. an adapter's packets), without storing them.

use super::bench::{linked_book, BenchArgs};
use crate::context::wall_clock_now;
use crate::errors::usage;
use crate::Cli;
use anyhow::Context;
use indicatif::ProgressBar;
use learnloop_aggregator::breakdown::{breakdown, BreakdownRules, SizeBreakdown};
use learnloop_aggregator::{Limits, Prepared};
use learnloop_model::{LoopConfig, Timestamp, TradeEvent};
use learnloop_pipeline::{resolve_as_of, run_stages, RunOptions, Stage};
use serde::Serialize;
use std::collections::HashMap;
use std::path::Path;
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct BreakdownBench {
    pub trades: u64,
    pub dims: usize,
    pub exhaustive: bool,
    pub min_clusters: u32,
    /// Per subset size with any kept subset.
    pub sizes: Vec<SizeBreakdown>,
    pub total: SizeBreakdown,
    pub breakdown_s: f64,
}

pub fn bench_breakdown(
    cli: &Cli,
    args: &BenchArgs,
    status: &ProgressBar,
) -> anyhow::Result<BreakdownBench> {
    match &args.book_db {
        Some(path) => {
            let mut cfg = crate::context::load_config(cli)?;
            if args.k_max.is_some() {
                cfg.aggregate.k_max = args.k_max;
            }
            if args.store_min_trades.is_some() {
                cfg.aggregate.store_min_trades = args.store_min_trades;
            }
            cfg.validate()?;
            status.set_message("bench aggregate: linking the store's strands (rolled back)");
            let (events, as_of) = linked_events_of_store(path, &cfg)?;
            count_kept_subsets(events, &cfg, as_of, status)
        }
        None => {
            let book = linked_book(args, status)?;
            let events = learnloop_store::events::load_all_events(&book.conn)?;
            let report = count_kept_subsets(events, &book.cfg, book.options.as_of, status);
            book.close(args);
            report
        }
    }
}

/// The trade events a nightly run of `cfg` on the store at `path` would link (every position, as
/// of the run's default as-of), read back inside a transaction that is then rolled back.
fn linked_events_of_store(
    path: &Path,
    cfg: &LoopConfig,
) -> anyhow::Result<(Vec<TradeEvent>, Timestamp)> {
    // `open` would create a mistyped store and count nothing in it.
    if !path.is_file() {
        return Err(usage(format!(
            "--book-db {}: no such store",
            path.display()
        )));
    }
    let mut conn = learnloop_store::open(path)
        .with_context(|| format!("opening the store {}", path.display()))?;
    let tx = conn.transaction()?;
    let options = RunOptions {
        rebuild: true,
        ..RunOptions::default()
    };
    run_stages(&tx, cfg, &options, &[Stage::Link], wall_clock_now())
        .with_context(|| format!("linking the strands of {}", path.display()))?;
    let as_of = resolve_as_of(&tx, None)?;
    let events = learnloop_store::events::load_all_events(&tx)?;
    tx.rollback()?;
    Ok((events, as_of))
}

/// Count the subsets the enumeration of `cfg` keeps on `events`, by size and kind.
fn count_kept_subsets(
    events: Vec<TradeEvent>,
    cfg: &LoopConfig,
    as_of: Timestamp,
    status: &ProgressBar,
) -> anyhow::Result<BreakdownBench> {
    status.set_message("bench aggregate: counting the kept subsets by kind");
    let prepared = Prepared::build(
        &events,
        &cfg.dims,
        as_of,
        cfg.aggregate.stats_half_life_hours,
    )?;
    let trade_cluster = trade_clusters(&events, cfg.lessons.cluster_days);
    drop(events);
    let min_support = |dims: u32| cfg.lessons.min_support_for(dims);
    let rules = BreakdownRules {
        trade_cluster: &trade_cluster,
        min_clusters: cfg.lessons.min_clusters,
        min_support: &min_support,
    };
    let t = Instant::now();
    let sizes: Vec<SizeBreakdown> = breakdown(&prepared, Limits::from_config(cfg), &rules)
        .into_iter()
        .filter(|s| s.rows > 0)
        .collect();
    let breakdown_s = t.elapsed().as_secs_f64();
    Ok(BreakdownBench {
        trades: prepared.trades.len() as u64,
        dims: cfg.dims.len(),
        exhaustive: cfg.aggregate.k_max.is_some(),
        min_clusters: cfg.lessons.min_clusters,
        total: total_of(&sizes),
        sizes,
        breakdown_s,
    })
}

/// Each trade's time cluster (the lesson stage's: the entry's, else the exit's), in the canonical
/// trade order of `events` (the prepared book's).
fn trade_clusters(events: &[TradeEvent], cluster_days: u32) -> Vec<u32> {
    let mut ids: HashMap<i64, u32> = HashMap::new();
    let mut out = Vec::new();
    let mut last: Option<&str> = None;
    for e in events {
        if last == Some(e.trade_key.as_str()) {
            continue;
        }
        last = Some(e.trade_key.as_str());
        let at = e.entry_at.unwrap_or(e.exit_at).millis();
        let next = ids.len() as u32;
        out.push(
            *ids.entry(learnloop_stats::time_cluster(at, cluster_days))
                .or_insert(next),
        );
    }
    out
}

fn total_of(sizes: &[SizeBreakdown]) -> SizeBreakdown {
    let mut t = SizeBreakdown::default();
    for s in sizes {
        t.dims = t.dims.max(s.dims);
        t.rows += s.rows;
        t.supported += s.supported;
        t.duplicate += s.duplicate;
        t.duplicate_of_parent += s.duplicate_of_parent;
        t.few_clusters += s.few_clusters;
        t.below_a_few_cluster_subset += s.below_a_few_cluster_subset;
        t.thin_complement += s.thin_complement;
        t.testable += s.testable;
    }
    t
}

pub fn human(b: &BreakdownBench) -> String {
    let mut out = format!(
        "{} trades, {} dims{}: kept subsets by size and kind (kinds overlap; min_clusters {})\n",
        b.trades,
        b.dims,
        if b.exhaustive { " (exhaustive)" } else { "" },
        b.min_clusters
    );
    out.push_str(&format!(
        "{:>5} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}\n",
        "dims",
        "rows",
        "supported",
        "duplicate",
        "dup.parent",
        "<clusters",
        "under<cl.",
        "thin rest",
        "testable"
    ));
    let line = |label: String, s: &SizeBreakdown| {
        format!(
            "{label:>5} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11} {:>11}\n",
            s.rows,
            s.supported,
            s.duplicate,
            s.duplicate_of_parent,
            s.few_clusters,
            s.below_a_few_cluster_subset,
            s.thin_complement,
            s.testable
        )
    };
    for s in &b.sizes {
        out.push_str(&line(s.dims.to_string(), s));
    }
    out.push_str(&line("all".into(), &b.total));
    out.push_str(&format!("counted in {:.2} s\n", b.breakdown_s));
    out
}
