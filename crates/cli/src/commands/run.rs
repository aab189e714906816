//! `run` (every stage, one learning_runs row) and the single-stage commands.

use super::ingest::{ingest_files, strict_outcome};
use super::Outcome;
use crate::context::{load_config, open_store, wall_clock_now};
use crate::output::{emit, kv};
use crate::Cli;
use anyhow::Context;
use clap::Args;
use learnloop_model::{LoopConfig, Timestamp};
use learnloop_pipeline::{run_stages as run_pipeline_stages, RunOptions, Stage, StagesReport};
use learnloop_store::runs::{self, RunRecord};
use learnloop_store::Connection;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug, Clone, Default)]
pub struct StageArgs {
    /// As-of time (RFC 3339). Default: the latest created_at among ingested strands.
    #[arg(long)]
    pub as_of: Option<String>,
    /// Recompute from scratch instead of from the last watermark (must give the same tables).
    #[arg(long)]
    pub rebuild: bool,
    /// Exit non-zero if any strand was quarantined by this command.
    #[arg(long)]
    pub strict: bool,
    /// Null run: shuffle R among the trades of each time cluster (week of entry) before the tests, report, and roll back
    /// (the stored tables are left untouched). A sound loop finds almost nothing.
    #[arg(long)]
    pub placebo: bool,
    /// Seed of the placebo shuffle (default: the configuration's lessons.placebo_seed).
    #[arg(long)]
    pub placebo_seed: Option<u64>,
    /// Activate the new config version at once; without it the version stays `proposed` until
    /// `learnloop config activate V`.
    #[arg(long)]
    pub activate: bool,
    /// Largest subset size aggregated (default 10).
    #[arg(long)]
    pub k_max: Option<u32>,
    /// Store (and expand) only subsets with at least this many trades (default: smallest minimum support).
    #[arg(long)]
    pub store_min_trades: Option<u64>,
}

#[derive(Args, Debug)]
pub struct RunArgs {
    #[command(flatten)]
    pub stage: StageArgs,
    /// Ingest these JSON Lines files first.
    #[arg(long = "input")]
    pub inputs: Vec<PathBuf>,
}

#[derive(Debug, Default, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub ingest: Vec<(String, learnloop_linker::IngestReport)>,
    #[serde(flatten)]
    pub stages: StagesReport,
}

fn effective_config(cli: &Cli, args: &StageArgs) -> anyhow::Result<LoopConfig> {
    let mut cfg = load_config(cli)?;
    if let Some(k) = args.k_max {
        cfg.aggregate.k_max = k;
    }
    if let Some(m) = args.store_min_trades {
        cfg.aggregate.store_min_trades = Some(m);
    }
    cfg.validate()?;
    Ok(cfg)
}

pub fn execute_run(cli: &Cli, args: &RunArgs) -> anyhow::Result<Outcome> {
    let cfg = effective_config(cli, &args.stage)?;
    let mut conn = open_store(cli)?;
    let mut summary = RunSummary::default();
    let t = Instant::now();
    summary.ingest = ingest_files(&mut conn, &args.inputs)?;
    let ingest_ms = t.elapsed().as_millis() as u64;
    let command = if args.stage.placebo {
        "run --placebo"
    } else {
        "run"
    };
    let mut summary = recorded(&mut conn, command, &cfg, &args.stage, &Stage::ALL, summary)?;
    if !args.inputs.is_empty() {
        summary
            .stages
            .durations_ms
            .insert("ingest".into(), ingest_ms);
    }
    let quarantined = summary.stages.normalize.quarantined_total()
        + summary
            .ingest
            .iter()
            .map(|(_, r)| r.normalized.quarantined_total())
            .sum::<u64>();
    emit(cli.json, &summary, human_summary)?;
    Ok(strict_outcome(args.stage.strict, quarantined))
}

pub fn execute_stage(cli: &Cli, args: &StageArgs, stage: Stage) -> anyhow::Result<Outcome> {
    let cfg = effective_config(cli, args)?;
    let mut conn = open_store(cli)?;
    let summary = recorded(
        &mut conn,
        stage.name(),
        &cfg,
        args,
        &[stage],
        RunSummary::default(),
    )?;
    emit(cli.json, &summary, human_summary)?;
    Ok(strict_outcome(
        args.strict,
        summary.stages.normalize.quarantined_total(),
    ))
}

/// Run the stages in one transaction and record the outcome as a learning_runs row. A failure
/// rolls every stage back, so the previous tables stay as they were.
fn recorded(
    conn: &mut Connection,
    command: &str,
    cfg: &LoopConfig,
    args: &StageArgs,
    stages: &[Stage],
    mut summary: RunSummary,
) -> anyhow::Result<RunSummary> {
    let started_at = wall_clock_now();
    summary.run_id = format!(
        "run-{}-{}",
        started_at.replace([':', '-', '.'], ""),
        std::process::id()
    );
    let result = run_stages(conn, cfg, args, stages, &started_at, &mut summary);
    let record = RunRecord {
        run_id: summary.run_id.clone(),
        command: command.to_string(),
        as_of: summary.stages.as_of.clone(),
        started_at,
        finished_at: Some(wall_clock_now()),
        status: if result.is_ok() { "ok" } else { "failed" }.to_string(),
        counts: serde_json::to_value(&summary)?,
        config: Some(serde_json::to_value(cfg)?),
        error: result.as_ref().err().map(|e| format!("{e:#}")),
    };
    runs::insert(conn, &record).context("recording the run in learning_runs")?;
    result.map(|_| summary)
}

fn run_stages(
    conn: &mut Connection,
    cfg: &LoopConfig,
    args: &StageArgs,
    stages: &[Stage],
    now: &str,
    summary: &mut RunSummary,
) -> anyhow::Result<()> {
    let options = RunOptions {
        as_of: args
            .as_of
            .as_deref()
            .map(Timestamp::parse)
            .transpose()
            .map_err(|e| anyhow::anyhow!("--as-of: {e}"))?,
        rebuild: args.rebuild,
        placebo: args
            .placebo
            .then(|| args.placebo_seed.unwrap_or(cfg.lessons.placebo_seed)),
        activate: args.activate,
        run_id: Some(summary.run_id.clone()),
    };
    let tx = conn.transaction()?;
    summary.stages = run_pipeline_stages(&tx, cfg, &options, stages, now)?;
    if options.placebo.is_some() {
        // Dropping the transaction rolls the null run back: real tables stay as they were.
        drop(tx);
    } else {
        tx.commit()?;
    }
    Ok(())
}

fn human_summary(s: &RunSummary) -> String {
    let mut out = format!("run {} as of {}\n", s.run_id, s.stages.as_of);
    for (source, r) in &s.ingest {
        out.push_str(&format!(
            "ingest {source}\n{}",
            super::ingest::human_ingest(r)
        ));
    }
    let (n, l, a) = (&s.stages.normalize, &s.stages.link, &s.stages.aggregate);
    if n.actions + n.closes + n.quarantined_total() > 0 {
        out.push_str(&format!(
            "normalized from ad_strands: {} actions, {} closes, {} quarantined\n",
            n.actions,
            n.closes,
            n.quarantined_total()
        ));
    }
    if let Some(l) = l {
        out.push_str("link\n");
        let mut lines = vec![
            ("positions relinked", l.positions_relinked.to_string()),
            (
                "trades linked",
                format!("{} ({} new)", l.trades_linked_total, l.trades_linked_new),
            ),
            ("trade events", l.trade_events_total.to_string()),
        ];
        for (kind, n) in &l.anomalies {
            lines.push(("anomaly", format!("{kind}: {n}")));
        }
        out.push_str(&kv(&lines));
    }
    if let Some(a) = a {
        out.push_str("aggregate\n");
        out.push_str(&kv(&[
            ("trades", a.trades.to_string()),
            ("pattern groups", a.groups.to_string()),
            ("rows stored", a.counters.rows.to_string()),
            (
                "subsets evaluated",
                a.counters.subsets_evaluated.to_string(),
            ),
            ("subset updates", a.counters.subset_updates.to_string()),
            (
                "pruned (< min trades)",
                format!("{} (min {})", a.counters.subsets_pruned, a.store_min_trades),
            ),
            (
                "load / compute+write ms",
                format!("{} / {}", a.load_ms, a.compute_write_ms),
            ),
        ]));
    }
    if let Some(l) = &s.stages.lessons {
        out.push_str("lessons\n");
        let mut lines = vec![
            (
                "baseline mean R",
                l.baselines
                    .iter()
                    .map(|(m, b)| format!("{m}: {:+.3} ({} trades)", b.mean, b.n))
                    .collect::<Vec<_>>()
                    .join(", "),
            ),
            (
                "subsets tested",
                format!("{} (BH family {})", l.tested, l.family_size),
            ),
            ("passed all tests", l.passed.to_string()),
            (
                "active lessons",
                format!("{} ({} new)", l.lessons_active, l.newly_active),
            ),
            (
                "over the per-pattern limit",
                l.candidates_over_limit.to_string(),
            ),
            ("retired this run", l.retired.to_string()),
            ("latent factors", l.factors.to_string()),
            ("half-lives fitted", l.half_lives.to_string()),
        ];
        for (why, n) in &l.rejected_by {
            lines.push(("rejected", format!("{why}: {n}")));
        }
        out.push_str(&kv(&lines));
    }
    if let Some(m) = &s.stages.materialize {
        out.push_str("materialize\n");
        let mut lines = Vec::new();
        for r in &m.modules {
            let version = match r.version {
                Some(v) => format!("v{v} written ({})", r.status),
                None => format!("unchanged (latest v{}, {})", r.config_version, r.status),
            };
            lines.push(("config", format!("{}: {version}", r.module)));
            lines.push((
                "overrides",
                format!(
                    "{} from {} lessons in {} factors ({} near-neutral dropped, {} levers rate-limited)",
                    r.overrides, r.lessons, r.factors, r.dropped_neutral, r.rate_limited
                ),
            ));
        }
        if m.modules.is_empty() {
            lines.push((
                "config",
                "no active lessons and no earlier config: nothing written".to_string(),
            ));
        }
        out.push_str(&kv(&lines));
    }
    if let Some(seed) = s.stages.placebo_seed {
        out.push_str(&format!(
            "PLACEBO run (R shuffled within time clusters, seed {seed}): rolled back, stored tables unchanged\n"
        ));
    }
    let total: u64 = s.stages.durations_ms.values().sum();
    out.push_str(&format!("done in {total} ms\n"));
    out
}
