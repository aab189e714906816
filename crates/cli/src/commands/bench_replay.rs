//! `learnloop bench replay`: the incremental replay against naive recomputation from scratch.
//!
//! Naive: at a step T, a fresh store with the inputs, and the whole nightly job as of T (link all,
//! aggregate all with its table write, lessons with candidates, materialize). It is timed at a few
//! evenly spaced steps and extrapolated to every step, since running it at all of them is what
//! the incremental replay exists to avoid.

use super::bench::{remove_db, BenchArgs, DEFAULT_DAYS, DEFAULT_TRADES};
use crate::context::wall_clock_now;
use crate::output::kv;
use anyhow::Context;
use indicatif::ProgressBar;
use learnloop_demo::{generate, DemoOptions};
use learnloop_model::time::MS_PER_DAY;
use learnloop_model::{LoopConfig, Timestamp};
use learnloop_pipeline::{run_stages, RunOptions, Stage};
use learnloop_replay::{replay, ReplayOptions};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct ReplayBench {
    pub trades: usize,
    pub days: u32,
    pub steps: usize,
    pub replay_s: f64,
    pub replay_ms_per_step: f64,
    /// The first step builds everything from scratch (full link, aggregation, lattices).
    pub first_step_ms: f64,
    /// What each further step costs: the mean over the steps after the first.
    pub later_ms_per_step: f64,
    pub groups_recomputed_share: f64,
    /// Mean wall time of each stage over the steps after the first, in ms.
    pub later_stage_ms: std::collections::BTreeMap<String, f64>,
    /// Peak resident memory of the process during the replay, in MiB.
    pub replay_peak_rss_mib: Option<f64>,
    pub naive_sampled_steps: usize,
    pub naive_ms_per_step: f64,
    pub naive_extrapolated_s: f64,
    pub speedup: f64,
    /// Naive time per step over the incremental time of a further step.
    pub later_step_speedup: f64,
    pub lessons_ever_active: usize,
}

pub fn bench_replay(args: &BenchArgs, status: &ProgressBar) -> anyhow::Result<ReplayBench> {
    let cfg = LoopConfig::default();
    status.set_message("bench replay: generating, ingesting and linking the synthetic book");
    let opts = DemoOptions {
        seed: args.seed,
        mess: false,
        days: args.days.unwrap_or(DEFAULT_DAYS),
        ..DemoOptions::default().with_cycles(args.trades.unwrap_or(DEFAULT_TRADES))
    };
    let (lines, _) = generate(&opts);
    let db = args.keep_db.clone().unwrap_or_else(|| {
        std::env::temp_dir().join(format!("learnloop-bench-replay-{}.db", std::process::id()))
    });
    remove_db(&db);
    let mut conn = learnloop_store::open(&db)?;
    let now = wall_clock_now();
    let tx = conn.transaction()?;
    learnloop_linker::ingest_lines(
        &tx,
        lines.into_iter().map(Ok),
        "bench",
        &now.to_rfc3339_millis(),
    )?;
    let end = learnloop_store::strands::latest_created_at(&tx)?.context("no strands")?;
    run_stages(&tx, &cfg, &RunOptions::default(), &[Stage::Link], now)?;
    tx.commit()?;
    drop(conn);

    // Daily steps over the period after its first week (nothing can be learnt before).
    let to = Timestamp(end.millis().div_euclid(MS_PER_DAY) * MS_PER_DAY);
    let from = match args.replay_days {
        Some(days) => Timestamp(to.millis() - (i64::from(days.max(1)) - 1) * MS_PER_DAY),
        None => Timestamp(opts.start.millis() + 7 * MS_PER_DAY),
    };
    let r_opts = ReplayOptions {
        from,
        to,
        step_ms: MS_PER_DAY,
        placebo_seed: None,
        now,
    };
    let steps = r_opts.steps()?;
    super::bench::reset_peak_rss();
    let t = Instant::now();
    let mut on_step = |done: usize, total: usize| {
        status.set_message(format!("bench replay: step {done}/{total}"));
    };
    let run = replay(&db, &cfg, &r_opts, &mut on_step)?;
    let replay_s = t.elapsed().as_secs_f64();
    let replay_peak_rss_mib = super::bench::peak_rss_mib();
    let (recomputed, groups) = run.steps.iter().fold((0u64, 0u64), |(r, g), s| {
        (r + s.aggregate.recomputed, g + s.aggregate.groups)
    });

    let first_step_ms = run.steps.first().map_or(0.0, |s| s.ms as f64);
    let later = &run.steps[1.min(run.steps.len())..];
    let later_ms_per_step = if later.is_empty() {
        first_step_ms
    } else {
        later.iter().map(|s| s.ms as f64).sum::<f64>() / later.len() as f64
    };
    let mut later_stage_ms: std::collections::BTreeMap<String, f64> = Default::default();
    for s in later {
        for (stage, ms) in &s.stage_ms {
            *later_stage_ms.entry(stage.to_string()).or_default() += ms / later.len() as f64;
        }
    }
    let samples = args.naive_samples.clamp(1, steps.len());
    let mut naive_ms = Vec::new();
    for k in 0..samples {
        let at = steps[(k + 1) * steps.len() / (samples + 1)];
        let t = Instant::now();
        let mut scratch = learnloop_store::open_scratch()?;
        learnloop_store::strands::copy_typed_inputs_from(&scratch, &db)?;
        let tx = scratch.transaction()?;
        let o = RunOptions {
            as_of: Some(at),
            activate: true,
            ..RunOptions::default()
        };
        run_stages(&tx, &cfg, &o, &Stage::ALL, now)?;
        tx.commit()?;
        naive_ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    if args.keep_db.is_none() {
        remove_db(&db);
    }
    let naive_ms_per_step = naive_ms.iter().sum::<f64>() / naive_ms.len() as f64;
    let naive_extrapolated_s = naive_ms_per_step * steps.len() as f64 / 1e3;
    Ok(ReplayBench {
        trades: args.trades.unwrap_or(DEFAULT_TRADES),
        days: args.days.unwrap_or(DEFAULT_DAYS),
        steps: steps.len(),
        replay_s,
        replay_ms_per_step: replay_s * 1e3 / steps.len() as f64,
        first_step_ms,
        later_ms_per_step,
        later_stage_ms,
        replay_peak_rss_mib,
        groups_recomputed_share: if groups > 0 {
            recomputed as f64 / groups as f64
        } else {
            0.0
        },
        naive_sampled_steps: naive_ms.len(),
        naive_ms_per_step,
        naive_extrapolated_s,
        speedup: naive_extrapolated_s / replay_s,
        later_step_speedup: naive_ms_per_step / later_ms_per_step,
        lessons_ever_active: run.first_active.len(),
    })
}

pub fn human(b: &ReplayBench) -> String {
    kv(&[
        (
            "trades / days / daily steps",
            format!("{} / {} / {}", b.trades, b.days, b.steps),
        ),
        (
            "incremental replay",
            format!(
                "{:.1} s ({:.0} ms per step)",
                b.replay_s, b.replay_ms_per_step
            ),
        ),
        (
            "first step / each further step",
            format!(
                "{:.0} ms / {:.0} ms ({})",
                b.first_step_ms,
                b.later_ms_per_step,
                b.later_stage_ms
                    .iter()
                    .map(|(stage, ms)| format!("{stage} {ms:.0}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        ),
        (
            "groups recomputed per step",
            format!("{:.0}%", 100.0 * b.groups_recomputed_share),
        ),
        (
            "naive recomputation",
            format!(
                "{:.0} ms per step (mean of {} sampled steps) → {:.1} s for all steps",
                b.naive_ms_per_step, b.naive_sampled_steps, b.naive_extrapolated_s
            ),
        ),
        (
            "speed-up",
            format!(
                "{:.1}× overall, {:.1}× per further step",
                b.speedup, b.later_step_speedup
            ),
        ),
        (
            "peak memory",
            b.replay_peak_rss_mib
                .map_or("n/a".into(), |m| format!("{m:.0} MiB")),
        ),
        ("lessons ever active", b.lessons_ever_active.to_string()),
    ])
}
