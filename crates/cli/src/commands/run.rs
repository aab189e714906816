//! `run` (every stage, one learning_runs row) and the single-stage commands.

use super::ingest::{ingest_files, strict_outcome};
use super::run_changes::{lesson_statuses, what_changed, WhatChanged};
use super::Outcome;
use crate::context::{load_config, open_store, wall_clock_now};
use crate::output::{emit, kv};
use crate::Cli;
use anyhow::Context;
use clap::Args;
use learnloop_model::{ConfigStatus, LoopConfig, RunRecord, RunStatus, Timestamp};
use learnloop_pipeline::{
    run_stages_into, run_stages_with_progress, Progress, RunOptions, Stage, StagesReport,
};
use learnloop_store::runs;
use learnloop_store::Connection;
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Args, Debug, Clone, Default)]
pub struct StageArgs {
    /// As-of time (YYYY-MM-DD or RFC 3339). Default: the latest created_at among ingested strands.
    #[arg(long, value_parser = crate::values::parse_time)]
    pub as_of: Option<Timestamp>,
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
    /// Seed of the placebo shuffle (default: the configuration's lessons.placebo_seed). Only with
    /// --placebo: alone it would leave a real run looking like a null one.
    #[arg(long, requires = "placebo")]
    pub placebo_seed: Option<u64>,
    /// Activate the new config version at once; without it the version stays `proposed` until
    /// `learnloop config activate V`.
    #[arg(long)]
    pub activate: bool,
    /// Enumerate every subset up to this size exhaustively (default: subsets of at most two dims
    /// with their minimum support; the lesson stage computes deeper ones under its discoveries).
    #[arg(long)]
    pub k_max: Option<u32>,
    /// Also store every subset with at least this many trades, at any depth, for analysts
    /// (default: only the subsets the lesson stage tests and their parents; with --k-max, the
    /// store threshold).
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
    #[command(flatten)]
    pub postgres: super::pg::PgSourceArgs,
    #[command(flatten)]
    pub publish: super::pg::PgPublishArgs,
}

#[derive(Debug, Default, Serialize)]
pub struct RunSummary {
    pub run_id: String,
    pub ingest: Vec<(String, learnloop_linker::IngestReport)>,
    /// `--from`: where the PostgreSQL read started and the watermark before and after it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub postgres_read: Option<serde_json::Value>,
    #[serde(flatten)]
    pub stages: StagesReport,
    /// `--publish`: what was written to PostgreSQL, per module.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub published: Vec<serde_json::Value>,
    /// Lessons activated and retired, and the biggest size multipliers (when the lesson or
    /// materialize stage ran).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed: Option<WhatChanged>,
}

fn effective_config(cli: &Cli, args: &StageArgs) -> anyhow::Result<LoopConfig> {
    let mut cfg = load_config(cli)?;
    if let Some(k) = args.k_max {
        cfg.aggregate.k_max = Some(k);
    }
    if let Some(m) = args.store_min_trades {
        cfg.aggregate.store_min_trades = Some(m);
    }
    cfg.validate()?;
    Ok(cfg)
}

pub fn execute_run(cli: &Cli, args: &RunArgs) -> anyhow::Result<Outcome> {
    let cfg = effective_config(cli, &args.stage)?;
    if let Some(url) = &args.postgres.from {
        super::pg::check_target(url, &args.postgres.table)?;
    }
    if let Some(url) = &args.publish.publish {
        super::pg::check_target(url, &args.publish.publish_table)?;
    }
    let mut conn = open_store(cli)?;
    let mut summary = RunSummary::default();
    let t = Instant::now();
    summary.ingest = ingest_files(cli, &mut conn, &args.inputs)?;
    if let Some(url) = &args.postgres.from {
        let (source, report, read) = super::pg::ingest_for_run(&mut conn, &args.postgres, url)?;
        summary.ingest.push((source, report));
        summary.postgres_read = Some(read);
    }
    let ingest_ms = t.elapsed().as_millis() as u64;
    crate::test_hooks::pause_point("run:after-ingest");
    let command = if args.stage.placebo {
        "run --placebo"
    } else {
        "run"
    };
    let ingest_quarantined = summary
        .ingest
        .iter()
        .map(|(_, r)| r.normalized.quarantined_total())
        .sum::<u64>();
    let progress = crate::terminal::StageProgress::new(cli, Stage::ALL.len());
    let job = Job {
        command,
        cfg: &cfg,
        args: &args.stage,
        stages: &Stage::ALL,
        quarantined_before: ingest_quarantined,
        progress: &progress,
    };
    let summary = recorded(&mut conn, &job, summary);
    progress.finish();
    let mut summary = summary?;
    if !summary.ingest.is_empty() {
        summary
            .stages
            .durations_ms
            .insert("ingest".into(), ingest_ms);
    }
    let quarantined = summary.stages.normalize.quarantined_total() + ingest_quarantined;
    if let Some(url) = &args.publish.publish {
        summary.published = publish_after_run(&conn, args, url)?;
    }
    emit(cli.json, &summary, human_summary)?;
    Ok(strict_outcome(cli, args.stage.strict, quarantined))
}

/// `run --publish`: each module's active config, once the run is committed and recorded (a failed
/// run returned before this; a placebo run publishes nothing).
fn publish_after_run(
    conn: &Connection,
    args: &RunArgs,
    url: &str,
) -> anyhow::Result<Vec<serde_json::Value>> {
    if args.stage.placebo {
        tracing::warn!("--placebo: nothing is published");
        return Ok(Vec::new());
    }
    let mut modules = Vec::new();
    for module in learnloop_store::configs::modules(conn)? {
        if learnloop_store::configs::active_version(conn, &module)?.is_some() {
            modules.push(module);
        } else {
            tracing::warn!(
                module,
                "no active config to publish (run with --activate, or `config activate V`)"
            );
        }
    }
    let outcomes = super::pg::publish(conn, &modules, url, &args.publish.publish_table)
        .context("the run is committed and recorded, but publishing failed; publishing again is safe (`learnloop config publish --to URL`)")?;
    outcomes
        .iter()
        .map(|o| Ok(serde_json::to_value(o)?))
        .collect()
}

pub fn execute_stage(cli: &Cli, args: &StageArgs, stage: Stage) -> anyhow::Result<Outcome> {
    let cfg = effective_config(cli, args)?;
    for (flag, acts_in) in flags_without_effect(args, stage) {
        tracing::warn!(
            "{flag} has no effect on the {} stage: {acts_in}",
            stage.name()
        );
    }
    // A stage needs what ingest and the stages before it stored: on a store that does not
    // exist (a mistyped --db) it could only fail, after creating an empty one.
    let mut conn = crate::context::open_existing_store(cli)?;
    let progress = crate::terminal::StageProgress::new(cli, 1);
    // A placebo is recorded as such, as `run --placebo` is: its results were rolled back.
    let command = if args.placebo {
        format!("{} --placebo", stage.name())
    } else {
        stage.name().to_string()
    };
    let job = Job {
        command: &command,
        cfg: &cfg,
        args,
        stages: &[stage],
        quarantined_before: 0,
        progress: &progress,
    };
    let summary = recorded(&mut conn, &job, RunSummary::default());
    progress.finish();
    let summary = summary?;
    emit(cli.json, &summary, human_summary)?;
    Ok(strict_outcome(
        cli,
        args.strict,
        summary.stages.normalize.quarantined_total(),
    ))
}

/// The flags given to a single stage that it takes, as every stage takes `run`'s (SPEC §9), but
/// does not use; each with where it acts. (`--rebuild` is not among them: the stages that keep no
/// watermark always compute from scratch, which is what it asks for.)
fn flags_without_effect(args: &StageArgs, stage: Stage) -> Vec<(&'static str, &'static str)> {
    let mut unused = Vec::new();
    if args.activate && stage != Stage::Materialize {
        unused.push((
            "--activate",
            "only materialize (or run) writes and activates a config version",
        ));
    }
    // The lesson stage's deep pass reads k_max when the aggregate recorded no depth.
    if !matches!(stage, Stage::Aggregate | Stage::Lessons) {
        let shapes = "it shapes the statistics that aggregate stores";
        if args.k_max.is_some() {
            unused.push(("--k-max", shapes));
        }
        if args.store_min_trades.is_some() {
            unused.push(("--store-min-trades", shapes));
        }
    }
    unused
}

/// One recorded command: which stages, with what configuration and flags.
struct Job<'a> {
    command: &'a str,
    cfg: &'a LoopConfig,
    args: &'a StageArgs,
    stages: &'a [Stage],
    /// Strands this command already quarantined before the stages (its ingest), for `--strict`.
    quarantined_before: u64,
    /// Told as the stages advance (a progress bar on a terminal).
    progress: &'a dyn Progress,
}

/// How the stages of a recorded command ended (recorded as a [`RunStatus`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunOutcome {
    Ok,
    /// `--strict` saw quarantined input: the results are kept, nothing is activated.
    Rejected,
    /// The null run: computed, reported, rolled back.
    Placebo,
}

/// Run the stages in one transaction and record the outcome as a `learning_runs` row written in
/// that same transaction, so a committed run always has its record and a crash leaves neither. A
/// failure rolls every stage back (the previous tables and config stay as they were) and is then
/// recorded in a transaction of its own.
fn recorded(
    conn: &mut Connection,
    job: &Job<'_>,
    mut summary: RunSummary,
) -> anyhow::Result<RunSummary> {
    let started_at = wall_clock_now();
    summary.run_id = format!(
        "run-{}-{}",
        started_at.to_rfc3339_millis().replace([':', '-', '.'], ""),
        std::process::id()
    );
    let mut record = RunRecord {
        run_id: summary.run_id.clone(),
        command: job.command.to_string(),
        as_of: None,
        started_at,
        finished_at: None,
        // Until the stages end: what a crash or an error leaves recorded.
        status: RunStatus::Failed,
        counts: serde_json::Value::Null,
        config: Some(serde_json::to_value(job.cfg)?),
        error: None,
    };
    let tx = conn
        .transaction()
        .context("starting the run's transaction")?;
    let outcome = run_stages(&tx, job, &mut summary);
    // The as-of asked for (`--as-of`) from the start, else the resolved one: a default as-of
    // that failed to resolve records none; a stage's failure records the as-of it ran at.
    record.as_of = Timestamp::parse(&summary.stages.as_of).ok();
    record.counts = serde_json::to_value(&summary)?;
    record.finished_at = Some(wall_clock_now());
    let status = match outcome {
        Ok(status) => status,
        Err(e) => {
            drop(tx);
            record_failure(conn, record, &e);
            return Err(e);
        }
    };
    record.status = match status {
        RunOutcome::Ok | RunOutcome::Placebo => RunStatus::Ok,
        RunOutcome::Rejected => RunStatus::Rejected,
    };
    if status == RunOutcome::Rejected {
        record.error = Some(format!(
            "--strict: {} strand(s) quarantined; nothing was activated",
            quarantined_total(job, &summary)
        ));
    }
    if status == RunOutcome::Placebo {
        // Dropping the transaction rolls the null run back: real tables stay as they were.
        drop(tx);
        runs::insert(conn, &record).context("recording the placebo run in learning_runs")?;
        return Ok(summary);
    }
    let committed = runs::insert(&tx, &record)
        .context("recording the run in learning_runs")
        .and_then(|()| {
            crate::test_hooks::pause_point("run:before-commit");
            tx.commit().context("committing the run")
        });
    if let Err(e) = committed {
        record_failure(conn, record, &e);
        return Err(e);
    }
    crate::test_hooks::pause_point("run:after-commit");
    Ok(summary)
}

/// Best effort after a rollback: a full disk that failed the run may fail this too, and then the
/// run's own error is still the one reported.
fn record_failure(conn: &Connection, mut record: RunRecord, error: &anyhow::Error) {
    record.status = RunStatus::Failed;
    record.error = Some(format!("{error:#}"));
    // The counts are those of the stages that ran before the failure, all rolled back: say so,
    // so that "+843 trades linked" is not read as stored.
    if let serde_json::Value::Object(counts) = &mut record.counts {
        counts.insert("rolled_back".into(), serde_json::Value::Bool(true));
    }
    if let Err(e) = runs::insert(conn, &record) {
        tracing::warn!(run_id = %record.run_id, "could not record the failed run in learning_runs: {e}");
    }
}

fn quarantined_total(job: &Job<'_>, summary: &RunSummary) -> u64 {
    job.quarantined_before + summary.stages.normalize.quarantined_total()
}

/// The stages, inside `tx`. Under `--strict` the materialize stage runs last and separately, so
/// that it activates only when nothing was quarantined (SPEC §5: a rejected run activates nothing).
fn run_stages(
    tx: &Connection,
    job: &Job<'_>,
    summary: &mut RunSummary,
) -> anyhow::Result<RunOutcome> {
    let args = job.args;
    let mut options = RunOptions {
        as_of: args.as_of,
        rebuild: args.rebuild,
        placebo: args
            .placebo
            .then(|| args.placebo_seed.unwrap_or(job.cfg.lessons.placebo_seed)),
        activate: args.activate,
        run_id: Some(summary.run_id.clone()),
    };
    let reports_changes = job
        .stages
        .iter()
        .any(|s| matches!(s, Stage::Lessons | Stage::Materialize));
    let statuses_before = if reports_changes {
        lesson_statuses(tx)?
    } else {
        Default::default()
    };
    let (before, materialize): (Vec<Stage>, Vec<Stage>) =
        job.stages.iter().partition(|s| **s != Stage::Materialize);
    let now = wall_clock_now();
    run_stages_into(
        tx,
        job.cfg,
        &options,
        &before,
        now,
        job.progress,
        &mut summary.stages,
    )?;
    crate::test_hooks::pause_point("run:after-lessons");
    let rejected = args.strict && quarantined_total(job, summary) > 0;
    if !materialize.is_empty() {
        options.activate &= !rejected;
        // Nothing new to normalise, and the same as-of: this call only materializes.
        options.as_of = Some(Timestamp::parse(&summary.stages.as_of)?);
        let m = run_stages_with_progress(tx, job.cfg, &options, &materialize, now, job.progress)?;
        summary.stages.materialize = m.materialize;
        summary.stages.durations_ms.extend(
            m.durations_ms
                .into_iter()
                .filter(|(stage, _)| stage != "normalize"),
        );
    }
    crate::test_hooks::pause_point("run:after-materialize");
    if reports_changes {
        let configs: Vec<(String, i64)> = summary
            .stages
            .materialize
            .iter()
            .flat_map(|m| &m.modules)
            .map(|r| (r.module.clone(), r.config_version))
            .collect();
        summary.changed = Some(what_changed(tx, &statuses_before, &configs)?);
    }
    Ok(if options.placebo.is_some() {
        RunOutcome::Placebo
    } else if rejected {
        RunOutcome::Rejected
    } else {
        RunOutcome::Ok
    })
}

fn human_summary(s: &RunSummary) -> String {
    let mut out = String::new();
    // A placebo says so before anything else: everything below was rolled back.
    if let Some(seed) = s.stages.placebo_seed {
        out.push_str(&format!(
            "PLACEBO run (R shuffled within time clusters, seed {seed}): rolled back, stored tables unchanged\n"
        ));
    }
    out.push_str(&format!("run {} as of {}\n", s.run_id, s.stages.as_of));
    for (source, r) in &s.ingest {
        out.push_str(&format!(
            "ingest {source}\n{}",
            super::ingest::human_ingest(r)
        ));
    }
    let n = &s.stages.normalize;
    if n.actions + n.closes + n.quarantined_total() > 0 {
        out.push_str(&format!(
            "normalized from ad_strands: {} actions, {} closes, {} quarantined\n",
            n.actions,
            n.closes,
            n.quarantined_total()
        ));
    }
    out.push_str(&human_link(&s.stages));
    out.push_str(&human_aggregate(&s.stages));
    out.push_str(&human_lessons(&s.stages));
    out.push_str(&human_materialize(&s.stages));
    if let Some(changed) = &s.changed {
        out.push_str(&super::run_changes::human(changed));
    }
    out.push_str(&human_published(&s.published));
    let total: u64 = s.stages.durations_ms.values().sum();
    out.push_str(&format!("done in {total} ms\n"));
    if let Some(next) = next_step(s) {
        out.push_str(&format!("next step: {next}\n"));
    }
    out
}

/// The link stage's lines of the summary.
fn human_link(stages: &StagesReport) -> String {
    let Some(l) = &stages.link else {
        return String::new();
    };
    let mut lines = vec![
        ("positions relinked", l.positions_relinked.to_string()),
        (
            "trades linked",
            format!(
                "{} ({} since the last link)",
                l.trades_linked_total,
                signed_count(l.trades_linked_new)
            ),
        ),
        ("trade events", l.trade_events_total.to_string()),
    ];
    for (kind, n) in &l.anomalies {
        lines.push(("anomaly", format!("{kind}: {n}")));
    }
    format!("link\n{}", kv(&lines))
}

/// A count change with its sign: `+35`, `−12` (a true minus sign, as the other reports), `0`.
fn signed_count(n: i64) -> String {
    match n.cmp(&0) {
        std::cmp::Ordering::Greater => format!("+{n}"),
        std::cmp::Ordering::Less => format!("\u{2212}{}", n.unsigned_abs()),
        std::cmp::Ordering::Equal => "0".into(),
    }
}

/// The aggregate stage's lines of the summary.
fn human_aggregate(stages: &StagesReport) -> String {
    let Some(a) = &stages.aggregate else {
        return String::new();
    };
    let lines = [
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
    ];
    format!("aggregate\n{}", kv(&lines))
}

/// The lesson stage's lines of the summary.
fn human_lessons(stages: &StagesReport) -> String {
    let Some(l) = &stages.lessons else {
        return String::new();
    };
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
            match l.filter_threshold {
                Some(t) => format!(
                    "{} (BH family {}; 2-dim subsets under {t:.1} effective trades filtered out)",
                    l.tested, l.family_size
                ),
                None => format!("{} (BH family {})", l.tested, l.family_size),
            },
        ),
        ("deep subsets stored", l.deep_subsets_stored.to_string()),
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
    format!("lessons\n{}", kv(&lines))
}

/// The materialize stage's lines of the summary.
fn human_materialize(stages: &StagesReport) -> String {
    let Some(m) = &stages.materialize else {
        return String::new();
    };
    let mut lines = Vec::new();
    // A placebo's version is rolled back with the rest of its run.
    let placebo = stages.placebo_seed.is_some();
    for r in &m.modules {
        let version = match r.version {
            Some(v) if placebo => format!("v{v} (rolled back with the placebo)"),
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
    format!("materialize\n{}", kv(&lines))
}

/// The publish lines of the summary (`--publish`), if anything was published.
fn human_published(published: &[serde_json::Value]) -> String {
    if published.is_empty() {
        return String::new();
    }
    let mut out = String::new();
    out.push_str("publish\n");
    for p in published {
        let field = |k: &str| p.get(k).map_or(String::new(), |v| v.to_string());
        out.push_str(&format!(
            "  {} v{} to {}: {}\n",
            field("module").trim_matches('"'),
            field("version"),
            field("table").trim_matches('"'),
            if p.get("changed") == Some(&serde_json::Value::Bool(true)) {
                "published, now active"
            } else {
                "already active, nothing written"
            }
        ));
    }
    out
}

/// What the person who ran this should do now: approve a proposed version (never after a placebo,
/// whose version was rolled back).
fn next_step(s: &RunSummary) -> Option<String> {
    if s.stages.placebo_seed.is_some() {
        return None;
    }
    let proposed: Vec<String> = s
        .stages
        .materialize
        .iter()
        .flat_map(|m| &m.modules)
        .filter(|r| r.status == ConfigStatus::Proposed)
        .filter_map(|r| {
            let v = r.version?;
            let module = if r.module == "pm" {
                String::new()
            } else {
                format!(" --module {}", r.module)
            };
            Some(format!("learnloop config{module} activate {v}"))
        })
        .collect();
    (!proposed.is_empty()).then(|| {
        format!(
            "{}   (review it first: `learnloop config show`, `learnloop report`; or run with --activate)",
            proposed.join("; ")
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Strands that link into trades: each position has one v5 action and one close.
    fn linked_lines(positions: usize) -> Vec<String> {
        (0..positions)
            .flat_map(|i| {
                let action = serde_json::json!({"id": format!("a{i}"), "kind": "pm_action",
                    "position_id": format!("p{i}"), "created_at": "2026-01-02T00:00:00Z",
                    "content": {"ts": "2026-01-02T00:00:00Z", "action_category": "add",
                        "pattern_key": "module=pm|pattern_key=uptrend.S2.add",
                        "scope": {"macro_phase": "Good"}}});
                let close = serde_json::json!({"id": format!("c{i}"), "kind": "position_closed",
                    "position_id": format!("p{i}"), "created_at": "2026-01-03T00:00:00Z",
                    "content": {"trade_summary": {"rr": 1.0,
                        "exit_timestamp": "2026-01-03T00:00:00Z"}}});
                [action.to_string(), close.to_string()]
            })
            .collect()
    }

    /// D6: on a full disk the stage's own error is reported, not the failure to record it.
    #[test]
    fn a_full_disk_reports_the_stage_error_not_the_run_record() {
        let mut conn = learnloop_store::open_in_memory().unwrap();
        let tx = conn.transaction().unwrap();
        // Enough trades that linking them needs pages beyond the 64 KiB ones the tables start with.
        let lines = linked_lines(3000).into_iter().map(Ok);
        learnloop_linker::ingest_lines(&tx, lines, "t", "2026-01-01T00:00:00Z").unwrap();
        tx.commit().unwrap();
        // No page beyond what is already used: the first stage that writes finds the disk full.
        let pages: i64 = conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        conn.pragma_update(None, "max_page_count", pages).unwrap();
        let cfg = LoopConfig::default();
        let job = Job {
            command: "run",
            cfg: &cfg,
            args: &StageArgs::default(),
            stages: &Stage::ALL,
            quarantined_before: 0,
            progress: &learnloop_pipeline::Silent,
        };
        let err = recorded(&mut conn, &job, RunSummary::default()).unwrap_err();
        let text = crate::errors::message(&err);
        assert!(text.contains("full"), "{text}");
        assert!(text.contains("stage"), "{text}");
        assert!(!text.contains("recording the run"), "{text}");
        let trades: i64 = conn
            .query_row("SELECT COUNT(*) FROM linked_trades", [], |r| r.get(0))
            .unwrap();
        assert_eq!(trades, 0, "rolled back");
    }
}
