//! `learnloop bench aggregate`: a synthetic book, ingested and linked into a scratch database, then
//! the aggregate stage timed end to end (load, compute, write) with its throughput and peak memory.

use super::Outcome;
use crate::context::wall_clock_now;
use crate::output::{emit, kv};
use crate::Cli;
use anyhow::Context;
use clap::{Args, ValueEnum};
use indicatif::ProgressBar;
use learnloop_aggregator::{compute_each, exploded_subset_updates, Limits, Prepared};
use learnloop_demo::{generate, DemoOptions};
use learnloop_model::LoopConfig;
use learnloop_pipeline::{step, Silent, Stage, StagesReport, StepOptions};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum BenchTarget {
    /// Aggregate (and the lesson stage) on one as-of time.
    Aggregate,
    /// A daily replay over the whole period against naive recomputation at sampled steps.
    Replay,
    /// The statistical calibration study (SPEC §4.9): many synthetic sets with known truth.
    Calibrate,
    /// `ingest --from` against a PostgreSQL server (--pg-url): strands per second.
    PgIngest,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(value_enum)]
    pub target: BenchTarget,
    /// Closed trades in the synthetic book (~7 actions each) [default: 100000; calibrate: 6000
    /// per set].
    #[arg(long)]
    pub trades: Option<usize>,
    #[arg(long, default_value_t = 11)]
    pub seed: u64,
    /// Keep the scratch database here instead of a temporary file.
    #[arg(long)]
    pub keep_db: Option<PathBuf>,
    /// Length of the synthetic period in days [default: 365; calibrate: 120].
    #[arg(long)]
    pub days: Option<u32>,
    /// Calibrate: synthetic sets of each kind (placebo, placebo with shocks, effects).
    #[arg(long, default_value_t = 4)]
    pub sets: usize,
    /// Calibrate: SD (R) of the common shock per regime period of the shocked placebo and of the
    /// effect sets.
    #[arg(long, default_value_t = 0.4, value_parser = super::demo::parse_shock_sd)]
    pub regime_shock: f64,
    /// Calibrate: effect sizes (R) of the effect sets, comma-separated.
    #[arg(long, value_delimiter = ',', num_args = 1..=learnloop_demo::MAX_CALIBRATION_SIZES,
          default_value = "0.3,0.6,1.0", value_parser = super::demo::parse_effect_size)]
    pub effect_sizes: Vec<f64>,
    /// Replay bench: replay only the last N days of the period (default: all but the first week).
    #[arg(long)]
    pub replay_days: Option<u32>,
    /// Replay bench: how many steps to time with naive from-scratch recomputation.
    #[arg(long, default_value_t = 6)]
    pub naive_samples: usize,
    /// Aggregate bench: scope dimensions of the book, the 10 standard ones plus synthetic
    /// categorical ones (2–5 values, some constant per position, some per action).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(10..=64))]
    pub dims: u32,
    /// Aggregate bench: the exhaustive enumeration up to this many dims (default: none, the
    /// nightly enumeration: subsets of at most two dims with their minimum support).
    #[arg(long)]
    pub k_max: Option<u32>,
    /// Aggregate bench: also keep every subset with at least this many trades, at any depth
    /// (with `--breakdown`, what a full-depth storage would keep).
    #[arg(long)]
    pub store_min_trades: Option<u64>,
    /// Aggregate bench: time the aggregate stage only, not the lesson stage after it.
    #[arg(long)]
    pub no_lessons: bool,
    /// Aggregate bench: only count the subsets the enumeration keeps by size and kind (same trades
    /// as a simpler subset, too few time clusters, a thin rest of a parent), storing nothing.
    #[arg(long)]
    pub breakdown: bool,
    /// Aggregate bench with --breakdown: count on this existing store's strands (linked in a
    /// transaction that is rolled back: the store is left as it was) with --config's dims and
    /// thresholds, instead of on a synthetic book.
    #[arg(long, requires = "breakdown", conflicts_with_all = ["trades", "dims", "days"])]
    pub book_db: Option<PathBuf>,
    /// Skip counting the updates of the unpruned problem (the like-for-like figure for a SQL explode).
    #[arg(long)]
    pub skip_exploded: bool,
    /// pg-ingest bench: a PostgreSQL server it may create (and drop) a scratch table on.
    #[arg(long, env = "LEARNLOOP_BENCH_PG_URL", hide_env_values = true)]
    pub pg_url: Option<String>,
    /// pg-ingest bench: rows per fetch (default: `ingest --from`'s).
    #[arg(long)]
    pub pg_batch: Option<usize>,
}

#[derive(Debug, Serialize)]
pub struct AggregateBench {
    pub trades: u64,
    pub trade_events: u64,
    pub dims: usize,
    /// Deepest subset size the enumeration may reach.
    pub k_max: u32,
    /// `--k-max` given: the exhaustive enumeration.
    pub exhaustive: bool,
    pub store_min_trades: u64,
    pub rows_stored: u64,
    /// Rows written per second of the aggregate stage.
    pub rows_per_s: f64,
    pub subsets_evaluated: u64,
    pub subset_updates_performed: u64,
    /// Trade × subset observations of the unpruned problem (what a SQL explode aggregates).
    pub exploded_updates: Option<u64>,
    pub generate_s: f64,
    pub ingest_link_s: f64,
    pub aggregate_s: f64,
    pub load_s: f64,
    /// Computing and writing overlap inside the stage.
    pub compute_write_s: f64,
    /// Committing the stage's transaction (the WAL write and its checkpoint).
    pub commit_s: f64,
    /// CPU seconds (all threads) of the aggregate stage: on a shared machine, the figure that
    /// does not count waiting for a core.
    pub aggregate_cpu_s: Option<f64>,
    /// The same computation alone, without writing (measured separately).
    pub compute_only_s: f64,
    pub compute_only_cpu_s: Option<f64>,
    pub performed_updates_per_s: f64,
    pub exploded_updates_per_s: Option<f64>,
    /// Peak resident memory of the process during the aggregate stage, in MiB.
    pub aggregate_peak_rss_mib: Option<f64>,
    /// The lesson stage on the same data (not run with `--no-lessons`).
    pub lessons: Option<LessonsBench>,
}

/// The lesson stage of the aggregate bench.
#[derive(Debug, Serialize)]
pub struct LessonsBench {
    /// Wall time of the stage (it reads every stats row once).
    pub seconds: f64,
    pub tested: u64,
    pub active: u64,
    pub peak_rss_mib: Option<f64>,
    /// Planted effects of the book found among the active lessons (at their scope, a parent or
    /// a child of it, with the planted sign), out of `planted`.
    pub planted_found: usize,
    /// Of those, found at their scope or a child of it (as `demo check` counts: a parent is a
    /// generalization, not the effect).
    pub planted_found_at_scope: usize,
    pub planted: usize,
}

/// Book size and period of the aggregate and replay benches.
pub const DEFAULT_TRADES: usize = 100_000;
pub const DEFAULT_DAYS: u32 = 365;

pub fn execute(cli: &Cli, args: &BenchArgs) -> anyhow::Result<Outcome> {
    let status = crate::terminal::spinner(cli, "bench");
    let measured = measure(cli, args, &status);
    status.finish_and_clear();
    measured?;
    Ok(Outcome::Ok)
}

/// Run the bench, telling `status` (a spinner on a terminal) which phase it is in.
fn measure(cli: &Cli, args: &BenchArgs, status: &ProgressBar) -> anyhow::Result<()> {
    match args.target {
        BenchTarget::Aggregate if args.breakdown => {
            let report = super::bench_breakdown::bench_breakdown(cli, args, status)?;
            status.finish_and_clear();
            emit(cli.json, &report, super::bench_breakdown::human)
        }
        BenchTarget::Aggregate => {
            let report = bench_aggregate(args, status)?;
            status.finish_and_clear();
            emit(cli.json, &report, human)
        }
        BenchTarget::Replay => {
            let report = super::bench_replay::bench_replay(args, status)?;
            status.finish_and_clear();
            emit(cli.json, &report, super::bench_replay::human)
        }
        BenchTarget::Calibrate => {
            let cfg = crate::context::load_config(cli)?;
            let report = super::bench_calibrate::calibrate(args, &cfg, status)?;
            status.finish_and_clear();
            emit(cli.json, &report, super::bench_calibrate::human)
        }
        BenchTarget::PgIngest => pg_ingest(cli, args),
    }
}

#[cfg(feature = "postgres")]
fn pg_ingest(cli: &Cli, args: &BenchArgs) -> anyhow::Result<()> {
    let report = super::bench_pg::bench_pg_ingest(args)?;
    emit(cli.json, &report, super::bench_pg::human)
}

#[cfg(not(feature = "postgres"))]
fn pg_ingest(_: &Cli, _: &BenchArgs) -> anyhow::Result<()> {
    anyhow::bail!("this learnloop was built without PostgreSQL support (cargo feature `postgres`)")
}

fn bench_config(args: &BenchArgs) -> anyhow::Result<LoopConfig> {
    let mut cfg = LoopConfig::default();
    let extra = (args.dims as usize).saturating_sub(cfg.dims.len());
    cfg.dims = super::bench_dims::with_extra_dims(&cfg.dims, extra)?;
    cfg.aggregate.k_max = args.k_max;
    cfg.aggregate.store_min_trades = args.store_min_trades;
    cfg.validate()?;
    Ok(cfg)
}

/// The synthetic book of the aggregate bench, ingested and linked into a scratch store.
pub(crate) struct LinkedBook {
    pub cfg: LoopConfig,
    pub conn: learnloop_store::Connection,
    pub scratch: PathBuf,
    pub options: StepOptions,
    pub truth: learnloop_demo::GroundTruth,
    pub generate_s: f64,
    pub ingest_link_s: f64,
}

impl LinkedBook {
    /// Remove the scratch store unless the caller asked to keep it.
    pub fn close(self, args: &BenchArgs) {
        drop(self.conn);
        if args.keep_db.is_none() {
            remove_db(&self.scratch);
        }
    }
}

/// Generate the bench's book (with `--dims` extra dimensions), ingest and link it.
pub(crate) fn linked_book(args: &BenchArgs, status: &ProgressBar) -> anyhow::Result<LinkedBook> {
    let cfg = bench_config(args)?;
    let extra = cfg.dims.len() - LoopConfig::default().dims.len();
    status.set_message("bench aggregate: generating the synthetic book");
    let t = Instant::now();
    let opts = DemoOptions {
        seed: args.seed,
        mess: false,
        days: args.days.unwrap_or(DEFAULT_DAYS),
        ..DemoOptions::default().with_cycles(args.trades.unwrap_or(DEFAULT_TRADES))
    };
    let (lines, truth) = generate(&opts);
    let lines = super::bench_dims::add_extra_dims(lines, extra)?;
    let generate_s = t.elapsed().as_secs_f64();

    let scratch = args.keep_db.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("learnloop-bench-{}.db", std::process::id()))
    });
    remove_db(&scratch);
    let mut conn = learnloop_store::open(&scratch)
        .with_context(|| format!("opening {}", scratch.display()))?;
    status.set_message("bench aggregate: ingesting and linking");
    let t = Instant::now();
    let tx = conn.transaction()?;
    learnloop_linker::ingest_lines(
        &tx,
        lines.into_iter().map(Ok),
        "bench",
        &wall_clock_now().to_rfc3339_millis(),
    )?;
    let as_of =
        learnloop_store::strands::latest_created_at(&tx)?.context("bench data has no strands")?;
    let options = StepOptions {
        as_of,
        rebuild: false,
        placebo: None,
        activate: false,
        run_id: None,
        now: wall_clock_now(),
    };
    let mut stages = StagesReport::default();
    step(
        &tx,
        &cfg,
        &options,
        &[Stage::Link],
        None,
        &Silent,
        &mut stages,
    )?;
    tx.commit()?;
    Ok(LinkedBook {
        cfg,
        conn,
        scratch,
        options,
        truth,
        generate_s,
        ingest_link_s: t.elapsed().as_secs_f64(),
    })
}

fn bench_aggregate(args: &BenchArgs, status: &ProgressBar) -> anyhow::Result<AggregateBench> {
    let LinkedBook {
        cfg,
        mut conn,
        scratch,
        options,
        truth,
        generate_s,
        ingest_link_s,
    } = linked_book(args, status)?;
    let as_of = options.as_of;
    // Each stage alone, through the pipeline's step, so that each is timed (and its peak memory
    // measured) on its own.
    let mut stages = StagesReport::default();
    status.set_message("bench aggregate: the aggregate stage");
    reset_peak_rss();
    let cpu = cpu_seconds("self");
    let t = Instant::now();
    let tx = conn.transaction()?;
    step(
        &tx,
        &cfg,
        &options,
        &[Stage::Aggregate],
        None,
        &Silent,
        &mut stages,
    )?;
    let commit_started = Instant::now();
    tx.commit()?;
    let commit_s = commit_started.elapsed().as_secs_f64();
    let aggregate_s = t.elapsed().as_secs_f64();
    let aggregate_cpu_s = cpu_since(cpu);
    let aggregate_peak_rss_mib = peak_rss_mib();
    let report = stages
        .aggregate
        .take()
        .context("the aggregate stage reported nothing")?;

    let lessons = if args.no_lessons {
        None
    } else {
        Some(bench_lessons(&mut conn, &cfg, &options, &truth, status)?)
    };

    let events = learnloop_store::events::load_all_events(&conn)?;
    let prepared = Prepared::build(
        &events,
        &cfg.dims,
        as_of,
        cfg.aggregate.stats_half_life_hours,
    )?;
    drop(events);
    status.set_message("bench aggregate: computing alone, without writing");
    let cpu = cpu_seconds("self");
    let t = Instant::now();
    let limits = Limits::from_config(&cfg);
    compute_each::<()>(&prepared, limits, |_, _| Ok(())).ok();
    let compute_only_s = t.elapsed().as_secs_f64();
    let compute_only_cpu_s = cpu_since(cpu);
    let exploded_updates =
        (!args.skip_exploded).then(|| exploded_subset_updates(&prepared, report.k_max));
    drop(conn);
    if args.keep_db.is_none() {
        remove_db(&scratch);
    }
    Ok(AggregateBench {
        trades: report.trades,
        trade_events: report.trade_events,
        dims: cfg.dims.len(),
        k_max: report.k_max,
        exhaustive: cfg.aggregate.k_max.is_some(),
        store_min_trades: report.store_min_trades,
        rows_stored: report.counters.rows,
        rows_per_s: report.counters.rows as f64 / aggregate_s,
        subsets_evaluated: report.counters.subsets_evaluated,
        subset_updates_performed: report.counters.subset_updates,
        exploded_updates,
        generate_s,
        ingest_link_s,
        aggregate_s,
        commit_s,
        load_s: report.load_ms as f64 / 1e3,
        compute_write_s: report.compute_write_ms as f64 / 1e3,
        aggregate_cpu_s,
        compute_only_s,
        compute_only_cpu_s,
        performed_updates_per_s: report.counters.subset_updates as f64 / aggregate_s,
        exploded_updates_per_s: exploded_updates.map(|u| u as f64 / aggregate_s),
        aggregate_peak_rss_mib,
        lessons,
    })
}

/// The lesson stage alone on the aggregated store, and the planted effects it finds.
fn bench_lessons(
    conn: &mut learnloop_store::Connection,
    cfg: &LoopConfig,
    options: &StepOptions,
    truth: &learnloop_demo::GroundTruth,
    status: &ProgressBar,
) -> anyhow::Result<LessonsBench> {
    status.set_message("bench aggregate: the lesson stage");
    reset_peak_rss();
    let t = Instant::now();
    let tx = conn.transaction()?;
    let mut stages = StagesReport::default();
    step(
        &tx,
        cfg,
        options,
        &[Stage::Lessons],
        None,
        &Silent,
        &mut stages,
    )?;
    tx.commit()?;
    let seconds = t.elapsed().as_secs_f64();
    let peak_rss_mib = peak_rss_mib();
    let report = stages
        .lessons
        .take()
        .context("the lesson stage reported nothing")?;
    let active = learnloop_store::lessons::active_lessons(conn)?;
    Ok(LessonsBench {
        seconds,
        tested: report.tested,
        active: report.lessons_active,
        peak_rss_mib,
        planted_found: truth
            .effects
            .iter()
            .filter(|e| planted_effect_found(e, &active, Reach::ParentsToo))
            .count(),
        planted_found_at_scope: truth
            .effects
            .iter()
            .filter(|e| planted_effect_found(e, &active, Reach::ScopeAndChildren))
            .count(),
        planted: truth.effects.len(),
    })
}

/// Which active lessons count as finding a planted effect.
#[derive(Clone, Copy, PartialEq)]
enum Reach {
    /// At its scope or a child of it.
    ScopeAndChildren,
    /// At a parent too.
    ParentsToo,
}

/// A planted effect is found by an active lesson of its pattern and category at its scope or a
/// child of it (with `Reach::ParentsToo`, a parent too), with the planted sign.
fn planted_effect_found(
    effect: &learnloop_demo::PlantedEffect,
    active: &[learnloop_model::LessonRow],
    reach: Reach,
) -> bool {
    let contains = |a: &std::collections::BTreeMap<String, String>,
                    b: &std::collections::BTreeMap<String, String>| {
        b.iter().all(|(k, v)| a.get(k) == Some(v))
    };
    active.iter().any(|l| {
        let scope = serde_json::from_str(&l.scope_values).unwrap_or_default();
        l.pattern_key == effect.pattern_key
            && l.category.as_str() == effect.action_category
            && (contains(&scope, &effect.scope)
                || (reach == Reach::ParentsToo && contains(&effect.scope, &scope)))
            && l.shrunk_edge.signum() == effect.effect_r.signum()
    })
}

pub fn remove_db(path: &std::path::Path) {
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}

fn cpu_text(seconds: Option<f64>) -> String {
    seconds.map_or_else(|| "n/a".into(), |s| format!("{s:.2} s"))
}

/// User + system CPU seconds of a process (`pid`: a process id, `self` or `thread-self`) so far
/// (Linux `/proc/PID/stat`, 100 ticks per second).
pub(crate) fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks: f64 = fields.get(11)?.parse::<f64>().ok()? + fields.get(12)?.parse::<f64>().ok()?;
    Some(ticks / 100.0)
}

/// CPU seconds this process spent since `before` (a `cpu_seconds("self")` reading).
fn cpu_since(before: Option<f64>) -> Option<f64> {
    cpu_seconds("self")
        .zip(before)
        .map(|(now, then)| now - then)
}

/// Linux: writing 5 to clear_refs resets the peak RSS (VmHWM), so the next read is this stage's.
pub(crate) fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

pub(crate) fn peak_rss_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn human(b: &AggregateBench) -> String {
    let mut lines = vec![
        ("trades", b.trades.to_string()),
        ("trade events (actions)", b.trade_events.to_string()),
        (
            "dims / stored depth / min trades",
            format!(
                "{} / {}{} / {}",
                b.dims,
                b.k_max,
                if b.exhaustive { " (exhaustive)" } else { "" },
                b.store_min_trades
            ),
        ),
        (
            "rows stored",
            format!("{} ({:.2} M/s)", b.rows_stored, b.rows_per_s / 1e6),
        ),
        ("subsets evaluated", b.subsets_evaluated.to_string()),
        (
            "subset updates performed",
            b.subset_updates_performed.to_string(),
        ),
        (
            "generate / ingest+link",
            format!("{:.2} s / {:.2} s", b.generate_s, b.ingest_link_s),
        ),
        (
            "aggregate (load / compute+write / commit)",
            format!(
                "{:.2} s ({:.2} / {:.2} / {:.2})",
                b.aggregate_s, b.load_s, b.compute_write_s, b.commit_s
            ),
        ),
        (
            "compute alone (no write)",
            format!("{:.2} s", b.compute_only_s),
        ),
        (
            "CPU: aggregate / compute alone",
            format!(
                "{} / {}",
                cpu_text(b.aggregate_cpu_s),
                cpu_text(b.compute_only_cpu_s)
            ),
        ),
        (
            "performed updates / s",
            format!("{:.2} M", b.performed_updates_per_s / 1e6),
        ),
    ];
    if let (Some(u), Some(r)) = (b.exploded_updates, b.exploded_updates_per_s) {
        lines.push(("exploded (unpruned) updates", u.to_string()));
        lines.push((
            "exploded-equivalent updates / s",
            format!("{:.2} M", r / 1e6),
        ));
    }
    if let Some(m) = b.aggregate_peak_rss_mib {
        lines.push(("peak RSS during aggregate", format!("{m:.0} MiB")));
    }
    if let Some(l) = &b.lessons {
        lines.push((
            "lesson stage",
            format!(
                "{:.2} s ({} subsets tested, {} active lessons)",
                l.seconds, l.tested, l.active
            ),
        ));
        if let Some(m) = l.peak_rss_mib {
            lines.push(("peak RSS during lessons", format!("{m:.0} MiB")));
        }
        lines.push((
            "planted effects found",
            match l.planted_found - l.planted_found_at_scope {
                0 => format!(
                    "{} of {}, at the planted scope or a child of it",
                    l.planted_found, l.planted
                ),
                at_parent => format!(
                    "{} of {} ({at_parent} only at a parent of the planted scope)",
                    l.planted_found, l.planted
                ),
            },
        ));
    }
    kv(&lines)
}
