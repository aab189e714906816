//! The aggregate stage's computing alone, without SQLite: the best of several runs of the walk
//! over a store's trade events, all rows computed and dropped. The stage's own time mixes the
//! walk with the writer on a 2-core machine whose speed drifts by ±15 % within minutes; the
//! minimum of repeated in-process runs separates changes to the walk of a few per cent.
//!
//! ```text
//! cargo run --release -p learnloop-aggregator --example compute_only -- STORE [K_MAX] [MIN_TRADES] [REPS]
//! ```
//!
//! Defaults: `K_MAX` 10, `MIN_TRADES` 10 (the exhaustive enumeration of `bench/compare_duckdb.sh`),
//! `REPS` 5; the as-of time is the store's default (its latest close), the dimensions and
//! half-life those of the default configuration. Prints the rows, the subset updates and the
//! best time.

use learnloop_aggregator::{compute_each, Limits, Prepared};
use learnloop_model::LoopConfig;
use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("compute_only: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let store = args
        .next()
        .ok_or("usage: compute_only STORE [K_MAX] [MIN_TRADES] [REPS]")?;
    let mut number = |default: u64| -> Result<u64, Box<dyn std::error::Error>> {
        Ok(args.next().map_or(Ok(default), |a| a.parse())?)
    };
    let (k_max, min_trades, reps) = (number(10)?, number(10)?, number(5)?);
    let conn = learnloop_store::open_read_only(Path::new(&store))?;
    let as_of = learnloop_store::strands::default_as_of(&conn)?.ok_or("the store has no closes")?;
    let cfg = LoopConfig::default();
    let half_life = cfg.aggregate.stats_half_life_hours;
    let prepared = Prepared::from_store(&conn, &cfg.dims, as_of, half_life)?;
    let limits = Limits::flat(u32::try_from(k_max)?, min_trades);
    let mut best = f64::INFINITY;
    let mut rows = 0;
    let mut updates = 0;
    for _ in 0..reps.max(1) {
        let start = Instant::now();
        rows = 0;
        let counters = compute_each::<()>(&prepared, limits, |_, group_rows| {
            rows += group_rows.len();
            Ok(())
        })
        .unwrap_or_default();
        best = best.min(start.elapsed().as_secs_f64());
        updates = counters.subset_updates;
    }
    println!(
        "rows {rows} updates {updates} best {:.1} ms of {reps}",
        best * 1e3
    );
    Ok(())
}
