//! `learnloop bench calibrate`: the statistical calibration study of SPEC §4.9.
//!
//! For each of `--sets` seeds it generates three synthetic data sets with `demo` (no bad input):
//! placebo (no effect), placebo with regime shocks (a common shock per period of 3–9 days), and
//! the calibration effect set with the same shocks (one-dim effects and interactions at each
//! `--effect-sizes`, an exception inside a bad parent, an effect that stops halfway). Each set is
//! ingested into a scratch store and the whole nightly loop runs once as of the end of its period;
//! the active lessons are compared with the ground truth. On the effect sets a daily replay from
//! a week before the stopped effect's end to the end of the period measures how many days its
//! lever (the runtime's decision for a trade at the planted scope) takes to come back within 0.05
//! of 1.0. Sets run in parallel (one OS thread per rayon worker; the stages inside use rayon) and
//! every figure depends only on the seeds, so a re-run prints the same table.

use super::bench::{remove_db, BenchArgs};
use crate::output::kv;
use anyhow::Context;
use indicatif::ProgressBar;
use learnloop_demo::{generate, DemoOptions, EffectKind, EffectPlan, GroundTruth, PlantedEffect};
use learnloop_model::time::MS_PER_DAY;
use learnloop_model::TradeEvent;
use learnloop_model::{LessonRow, LoopConfig, Timestamp};
use learnloop_pipeline::{run_stages, RunOptions, Stage};
use learnloop_replay::{replay, ReplayOptions};
use learnloop_store::configs;
use learnloop_store::lessons;
use learnloop_store::Connection;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

/// Book size and period of one calibration set.
pub const DEFAULT_TRADES: usize = 6000;
pub const DEFAULT_DAYS: u32 = 120;
/// The stopped effect's lever counts as back when within this of 1.0.
const LEVER_BACK: f64 = 0.05;
/// The replay of an effect set starts this many days before the stopped effect's end.
const DAYS_BEFORE_STOP: i64 = 7;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SetKind {
    Placebo,
    PlaceboShocks,
    Effects,
    /// Issue 11's scenario: one interaction planted in every (pattern, category) group.
    Interaction,
}

/// The placebo rows of the table.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PlaceboRow {
    pub runs: usize,
    pub runs_with_a_lesson: usize,
    /// Target ≤ 0.10.
    pub share_with_a_lesson: f64,
    pub mean_active_lessons: f64,
    pub max_active_lessons: u64,
}

/// Detection of the one-dim effects and interactions of one size.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PowerRow {
    pub effect_r: f64,
    pub kind: EffectKind,
    pub planted: usize,
    /// An active lesson at the planted scope or a refinement of it, with the planted sign.
    pub found: usize,
    pub power: f64,
    /// An active lesson at exactly the planted scope.
    pub exact: usize,
    pub exact_share: f64,
}

/// Exact-scope share by kind of effect, over every size.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ExactRow {
    pub kind: EffectKind,
    pub planted: usize,
    pub exact: usize,
    pub exact_share: f64,
}

/// The stopped effect's lever after the stop.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StoppedRow {
    pub sets: usize,
    /// Its lever was further than 0.05 from 1.0 at the stop (the effect had been learned).
    pub learned_before_stop: usize,
    /// Days from the stop until the lever was back within 0.05 of 1.0, per learned set (`None`:
    /// not back by the end of the period).
    pub days_until_back: Vec<Option<f64>>,
    pub median_days_until_back: Option<f64>,
    pub not_back_by_end: usize,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct EffectRows {
    pub runs: usize,
    pub mean_active_lessons: f64,
    /// False discoveries over all active lessons of all effect sets (target ≤ 0.10).
    pub fdp_pooled: f64,
    /// Mean of each set's false-discovery proportion (sets with no lesson count 0).
    pub fdp_mean: f64,
    pub false_discoveries: usize,
    /// Active lessons outside every planted scope of their group counted true because their
    /// trades carry planted effects of their sign (e.g. the add of positions whose entry carries
    /// the effect), per set.
    pub mean_true_by_trades: f64,
    /// False discoveries whose trades' expected edge has their sign and at least 0.1 R (a
    /// diluted form of an effect of another action of the same positions), per set.
    pub mean_diluted: f64,
    /// The false-discovery proportion without those (pooled).
    pub fdp_pooled_without_diluted: f64,
    /// Active lessons in an effect's group at a strict generalization of its scope (e.g. {1h}
    /// for a {micro, 1h} interaction), per set.
    pub mean_generalizations: f64,
    pub power: Vec<PowerRow>,
    pub exact_by_kind: Vec<ExactRow>,
    pub stopped: StoppedRow,
}

/// Issue 11's interaction scenario: +S on {bucket: micro, timeframe: 1h} in every group, with
/// the same shocks (target: the exact scope is a lesson in ≥ 25 of 27 groups, ≤ 3
/// generalizations taught).
#[derive(Debug, Clone, Default, Serialize)]
pub struct InteractionRow {
    pub runs: usize,
    pub effect_r: f64,
    /// (set, group) pairs whose trades carry the interaction.
    pub groups: usize,
    /// Of those, groups where an active lesson sits at exactly {bucket: micro, timeframe: 1h}.
    pub exact: usize,
    pub exact_share: f64,
    /// Groups where an active lesson sits at the scope or a refinement, with the planted sign.
    pub found: usize,
    pub mean_active_lessons: f64,
    /// Active lessons at {bucket: micro} or {timeframe: 1h} (or the root) of a carrying group,
    /// per set.
    pub mean_generalizations: f64,
    pub false_discoveries: usize,
    pub fdp_pooled: f64,
    /// Groups whose planted scope holds at least `WELL_SUPPORTED_TRADES` trades, and of those,
    /// groups with the exact scope as a lesson (thin groups have little power at any level).
    pub groups_well_supported: usize,
    pub exact_well_supported: usize,
}

/// A carrying group counts as well supported with at least this many trades at the planted
/// scope.
pub const WELL_SUPPORTED_TRADES: usize = 100;

#[derive(Debug, Clone, Serialize)]
pub struct CalibrationReport {
    pub sets: usize,
    pub trades: usize,
    pub days: u32,
    pub seed: u64,
    pub regime_shock_sd: f64,
    pub effect_sizes: Vec<f64>,
    pub placebo: PlaceboRow,
    pub placebo_shocks: PlaceboRow,
    pub effects: EffectRows,
    pub interaction: InteractionRow,
    pub seconds: f64,
}

/// One data set's verdict against its truth.
#[derive(Debug, Clone)]
struct SetResult {
    kind: SetKind,
    active: u64,
    false_discoveries: usize,
    /// True discoveries outside every planted scope of their group, whose trades carry planted
    /// effects of their sign (another action of the same positions).
    true_by_trades: usize,
    /// Of the false discoveries, those true of their trades on average (expected edge of their
    /// sign, at least 0.1 R), not generalizations within their own group.
    diluted: usize,
    generalizations: usize,
    /// Per planted effect: (effect, found, exact).
    effects: Vec<(PlantedEffect, bool, bool)>,
    /// For the effect sets: `Some(None)` when the stopped effect was not learned before its stop,
    /// `Some(Some(d))` with d days until back (`None` inside: not back by the end).
    stopped: Option<Option<Option<f64>>>,
}

pub fn calibrate(
    args: &BenchArgs,
    cfg: &LoopConfig,
    status: &ProgressBar,
) -> anyhow::Result<CalibrationReport> {
    let started = Instant::now();
    let trades = args.trades.unwrap_or(DEFAULT_TRADES);
    let days = args.days.unwrap_or(DEFAULT_DAYS);
    if args.sets == 0 {
        anyhow::bail!("--sets must be at least 1");
    }
    let jobs: Vec<(SetKind, u64)> = (0..args.sets as u64)
        .flat_map(|i| {
            let seed = args.seed.wrapping_add(i);
            [
                (SetKind::Placebo, seed),
                (SetKind::PlaceboShocks, seed),
                (SetKind::Effects, seed),
                (SetKind::Interaction, seed),
            ]
        })
        .collect();
    let finished = AtomicUsize::new(0);
    status.set_message(format!("bench calibrate: 0/{} synthetic sets", jobs.len()));
    let results = run_parallel(&jobs, |&(kind, seed)| {
        let opts = set_options(kind, seed, trades, days, args);
        let result = run_set(kind, &opts, cfg)
            .with_context(|| format!("calibration set {kind:?} with seed {seed}"));
        let n = finished.fetch_add(1, Ordering::Relaxed) + 1;
        status.set_message(format!(
            "bench calibrate: {n}/{} synthetic sets",
            jobs.len()
        ));
        result
    })?;
    Ok(CalibrationReport {
        sets: args.sets,
        trades,
        days,
        seed: args.seed,
        regime_shock_sd: args.regime_shock,
        effect_sizes: args.effect_sizes.clone(),
        placebo: placebo_row(&results, SetKind::Placebo),
        placebo_shocks: placebo_row(&results, SetKind::PlaceboShocks),
        effects: effect_rows(&results),
        interaction: interaction_row(&results),
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Run `work` on every job, on as many OS threads as rayon has workers, results in job order.
/// Not on rayon's own pool: the stages inside use it, and the aggregator's writer waits on a
/// channel that a rayon worker busy with a whole set would never let its producers fill.
fn run_parallel<J: Sync, R: Send>(
    jobs: &[J],
    work: impl Fn(&J) -> anyhow::Result<R> + Sync,
) -> anyhow::Result<Vec<R>> {
    let next = AtomicUsize::new(0);
    let threads = rayon::current_num_threads().clamp(1, jobs.len().max(1));
    let mut done: Vec<(usize, anyhow::Result<R>)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(job) = jobs.get(i) else { break };
                        out.push((i, work(job)));
                    }
                    out
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().unwrap_or_default())
            .collect()
    });
    if done.len() != jobs.len() {
        anyhow::bail!("a calibration worker panicked");
    }
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, r)| r).collect()
}

fn set_options(
    kind: SetKind,
    seed: u64,
    trades: usize,
    days: u32,
    args: &BenchArgs,
) -> DemoOptions {
    let (effects, shock) = match kind {
        SetKind::Placebo => (EffectPlan::Placebo, 0.0),
        SetKind::PlaceboShocks => (EffectPlan::Placebo, args.regime_shock),
        SetKind::Effects => (
            EffectPlan::Calibration {
                sizes: args.effect_sizes.clone(),
            },
            args.regime_shock,
        ),
        SetKind::Interaction => (
            EffectPlan::InteractionEverywhere {
                size: args.effect_sizes.iter().copied().fold(0.0, f64::max),
            },
            args.regime_shock,
        ),
    };
    DemoOptions {
        seed,
        days,
        mess: false,
        effects,
        regime_shock_sd: shock,
        ..DemoOptions::default().with_cycles(trades)
    }
}

/// Generate one set, run the loop as of its end, and judge its active lessons.
fn run_set(kind: SetKind, opts: &DemoOptions, cfg: &LoopConfig) -> anyhow::Result<SetResult> {
    let (lines, truth) = generate(opts);
    // The effect sets are replayed from a file; the placebo sets need only memory.
    let db = std::env::temp_dir().join(format!(
        "learnloop-calibrate-{}-{:?}-{}.db",
        std::process::id(),
        kind,
        opts.seed
    ));
    let mut conn = if kind == SetKind::Effects {
        remove_db(&db);
        learnloop_store::open(&db)?
    } else {
        learnloop_store::open_in_memory()?
    };
    let tx = conn.transaction()?;
    learnloop_linker::ingest_lines(&tx, lines.into_iter().map(Ok), "calibrate", "calibrate")?;
    let options = RunOptions {
        activate: true,
        ..RunOptions::default()
    };
    // The study records no wall clock: its stores are scratch.
    run_stages(&tx, cfg, &options, &Stage::ALL, Timestamp(0))?;
    tx.commit()?;
    let active = lessons::active_lessons(&conn)?;
    let events = learnloop_store::events::load_all_events(&conn)?;
    let by_trades = truth_by_trades(&active, &events, &truth.effects);
    let mut result = judge(kind, &active, &by_trades, &truth);
    if kind == SetKind::Effects {
        drop(conn);
        let stopped = stopped_lever_days(&db, cfg, &truth);
        remove_db(&db);
        result.stopped = Some(stopped?);
    }
    Ok(result)
}

pub(crate) fn scope_of(l: &LessonRow) -> BTreeMap<String, String> {
    learnloop_model::scope::parse_scope_map(&l.scope_values).unwrap_or_default()
}

/// Does `outer` contain every pair of `inner`?
pub(crate) fn contains(outer: &BTreeMap<String, String>, inner: &BTreeMap<String, String>) -> bool {
    inner.iter().all(|(k, v)| outer.get(k) == Some(v))
}

pub(crate) fn same_group(l: &LessonRow, e: &PlantedEffect) -> bool {
    l.pattern_key == e.pattern_key && l.category.as_str() == e.action_category
}

/// Share of a lesson's trades that must carry planted effects of its sign for it to be true by
/// its trades.
const CARRIED_SHARE: f64 = 0.9;
/// The smallest expected edge (R) that makes a lesson true by its expected edge.
const MATERIAL_EDGE: f64 = 0.1;

/// What the truth says of the trades an active lesson sizes (those with an action in its
/// pattern and category whose scope contains its scope).
#[derive(Debug, Clone, Copy)]
pub(crate) struct TradeTruth {
    /// Share of them carrying planted effects whose sum has the sign of the lesson's edge.
    pub carried_share: f64,
    /// Their mean planted effect minus the module's: the edge the lesson should find.
    pub expected_edge: f64,
}

/// R belongs to the trade, so a lesson on another action of the same positions (an add or an
/// exit of trades whose entry carries an effect) says something true of its trades.
pub(crate) fn truth_by_trades(
    active: &[LessonRow],
    events: &[TradeEvent],
    planted: &[PlantedEffect],
) -> Vec<TradeTruth> {
    // Per trade, the planted effects it carries (the demo adds each once per trade: entries of
    // one position-wide effect share an id).
    let mut effects_of_trade: BTreeMap<&str, BTreeMap<usize, f64>> = BTreeMap::new();
    let scopes: Vec<BTreeMap<String, String>> = events
        .iter()
        .map(|e| serde_json::from_str(&e.scope).unwrap_or_default())
        .collect();
    for (e, scope) in events.iter().zip(&scopes) {
        let entered = e.entry_at.unwrap_or(e.exit_at);
        let carried = effects_of_trade.entry(&e.trade_key).or_default();
        for (i, p) in planted.iter().enumerate() {
            let applies = p.starts_at.is_none_or(|t| entered > t)
                && p.stops_at.is_none_or(|t| entered <= t)
                && e.pattern_key == p.pattern_key
                && e.category.as_str() == p.action_category
                && contains(scope, &p.scope);
            if applies {
                carried.insert(p.effect_id.unwrap_or(i), p.effect_r);
            }
        }
    }
    let planted_r = |trade: &str| -> f64 {
        effects_of_trade
            .get(trade)
            .map_or(0.0, |carried| carried.values().sum())
    };
    let module_mean = effects_of_trade.keys().map(|t| planted_r(t)).sum::<f64>()
        / effects_of_trade.len().max(1) as f64;
    active
        .iter()
        .map(|l| {
            let scope = scope_of(l);
            let mut trades: Vec<&str> = events
                .iter()
                .zip(&scopes)
                .filter(|(e, s)| {
                    e.pattern_key == l.pattern_key
                        && e.category == l.category
                        && contains(s, &scope)
                })
                .map(|(e, _)| e.trade_key.as_str())
                .collect();
            trades.sort_unstable();
            trades.dedup();
            let n = trades.len().max(1) as f64;
            let sign = l.shrunk_edge.signum();
            let effects: Vec<f64> = trades.iter().map(|t| planted_r(t)).collect();
            let carrying = effects
                .iter()
                .filter(|r| **r != 0.0 && r.signum() == sign)
                .count();
            TradeTruth {
                carried_share: carrying as f64 / n,
                expected_edge: effects.iter().sum::<f64>() / n - module_mean,
            }
        })
        .collect()
}

/// Per active lesson: do at least 90 % of the trades it sizes carry planted effects whose sum
/// has the sign of its edge?
pub(crate) fn carried_by_trades(
    active: &[LessonRow],
    events: &[TradeEvent],
    planted: &[PlantedEffect],
) -> Vec<bool> {
    truth_by_trades(active, events, planted)
        .iter()
        .map(|t| t.carried_share >= CARRIED_SHARE)
        .collect()
}

/// A lesson is a true discovery when its scope is a planted scope of its group or a refinement
/// of one (every trade it sizes carries that effect), or when at least 90 % of its trades carry
/// planted effects of its sign (e.g. the add of positions whose entry carries the effect);
/// anything else — a scope outside every effect, a generalization — is false. Of the false ones
/// that are not generalizations in their own group, those whose trades' expected edge has their
/// sign and at least 0.1 R are counted apart: true of their trades on average, but a diluted
/// form of an effect that lives in a narrower scope of another action of the same positions.
fn judge(
    kind: SetKind,
    active: &[LessonRow],
    by_trades: &[TradeTruth],
    truth: &GroundTruth,
) -> SetResult {
    let scopes: Vec<BTreeMap<String, String>> = active.iter().map(scope_of).collect();
    let mut false_discoveries = 0;
    let mut generalizations = 0;
    let mut true_by_trades = 0;
    let mut diluted = 0;
    for ((l, scope), t) in active.iter().zip(&scopes).zip(by_trades) {
        let planted = || truth.effects.iter().filter(|e| same_group(l, e));
        if planted().any(|e| contains(scope, &e.scope)) {
            continue;
        }
        if t.carried_share >= CARRIED_SHARE {
            true_by_trades += 1;
            continue;
        }
        false_discoveries += 1;
        let generalization = planted().any(|e| contains(&e.scope, scope));
        generalizations += usize::from(generalization);
        let material = t.expected_edge.signum() == l.shrunk_edge.signum()
            && t.expected_edge.abs() >= MATERIAL_EDGE;
        diluted += usize::from(!generalization && material);
    }
    let effects = truth
        .effects
        .iter()
        .map(|e| {
            let in_group = || active.iter().zip(&scopes).filter(|(l, _)| same_group(l, e));
            let found = in_group().any(|(l, s)| {
                contains(s, &e.scope) && l.shrunk_edge.signum() == e.effect_r.signum()
            });
            let exact = in_group().any(|(_, s)| *s == e.scope);
            (e.clone(), found, exact)
        })
        .collect();
    SetResult {
        kind,
        active: active.len() as u64,
        false_discoveries,
        true_by_trades,
        diluted,
        generalizations,
        effects,
        stopped: None,
    }
}

/// Replay the effect set daily from a week before the stopped effect's end; the days from its
/// end until the runtime's size multiplier for a trade at its scope is back within 0.05 of 1.
fn stopped_lever_days(
    db: &std::path::Path,
    cfg: &LoopConfig,
    truth: &GroundTruth,
) -> anyhow::Result<Option<Option<f64>>> {
    let Some(effect) = truth.effects.iter().find(|e| e.kind == EffectKind::Stopped) else {
        return Ok(None);
    };
    let (Some(stop), Some(end)) = (effect.stops_at, truth.period_end) else {
        return Ok(None);
    };
    let opts = ReplayOptions {
        from: Timestamp(stop.millis() - DAYS_BEFORE_STOP * MS_PER_DAY),
        to: end,
        step_ms: MS_PER_DAY,
        placebo_seed: None,
        now: Timestamp(0),
    };
    let run = replay(db, cfg, &opts, &mut |_, _| {})?;
    let levers = size_mult_per_step(&run.scratch, &opts.steps()?, effect)?;
    let at_stop = levers
        .iter()
        .rev()
        .find(|(t, _)| *t <= stop)
        .map_or(1.0, |(_, m)| *m);
    if (at_stop - 1.0).abs() <= LEVER_BACK {
        return Ok(None);
    }
    Ok(Some(
        levers
            .iter()
            .find(|(t, m)| *t >= stop && (m - 1.0).abs() <= LEVER_BACK)
            .map(|(t, _)| (t.millis() - stop.millis()) as f64 / MS_PER_DAY as f64),
    ))
}

/// The size multiplier the config in force at each step gives a trade at the effect's scope.
fn size_mult_per_step(
    scratch: &Connection,
    steps: &[Timestamp],
    effect: &PlantedEffect,
) -> anyhow::Result<Vec<(Timestamp, f64)>> {
    let mut versions: Vec<(Timestamp, learnloop_overrides::Overrides)> = Vec::new();
    for module in configs::modules(scratch)? {
        for v in configs::all_versions(scratch, &module)? {
            let at = v.as_of;
            versions.push((
                at,
                learnloop_overrides::Overrides::from_json(&v.config_data)?,
            ));
        }
    }
    versions.sort_by_key(|(t, _)| *t);
    Ok(steps
        .iter()
        .map(|&t| {
            let in_force = versions.partition_point(|(at, _)| *at <= t);
            let size = match in_force.checked_sub(1) {
                Some(i) => {
                    versions[i]
                        .1
                        .lookup(&effect.pattern_key, &effect.action_category, &effect.scope)
                        .size_mult
                }
                None => 1.0,
            };
            (t, size)
        })
        .collect())
}

fn placebo_row(results: &[SetResult], kind: SetKind) -> PlaceboRow {
    let runs: Vec<&SetResult> = results.iter().filter(|r| r.kind == kind).collect();
    let n = runs.len().max(1) as f64;
    let with = runs.iter().filter(|r| r.active > 0).count();
    PlaceboRow {
        runs: runs.len(),
        runs_with_a_lesson: with,
        share_with_a_lesson: with as f64 / n,
        mean_active_lessons: runs.iter().map(|r| r.active as f64).sum::<f64>() / n,
        max_active_lessons: runs.iter().map(|r| r.active).max().unwrap_or(0),
    }
}

fn share(part: usize, whole: usize) -> f64 {
    if whole == 0 {
        0.0
    } else {
        part as f64 / whole as f64
    }
}

fn effect_rows(results: &[SetResult]) -> EffectRows {
    let runs: Vec<&SetResult> = results
        .iter()
        .filter(|r| r.kind == SetKind::Effects)
        .collect();
    let n = runs.len().max(1) as f64;
    let active: u64 = runs.iter().map(|r| r.active).sum();
    let false_discoveries: usize = runs.iter().map(|r| r.false_discoveries).sum();
    let all: Vec<&(PlantedEffect, bool, bool)> = runs.iter().flat_map(|r| &r.effects).collect();

    // Power by (kind, size) for the effects planted at every size.
    let mut by_size: BTreeMap<(EffectKind, i64), PowerRow> = BTreeMap::new();
    for (e, found, exact) in all
        .iter()
        .filter(|(e, _, _)| matches!(e.kind, EffectKind::OneDim | EffectKind::Interaction))
    {
        let row = by_size
            .entry((e.kind, (e.effect_r * 1e6).round() as i64))
            .or_insert_with(|| PowerRow {
                effect_r: e.effect_r,
                kind: e.kind,
                ..PowerRow::default()
            });
        row.planted += 1;
        row.found += usize::from(*found);
        row.exact += usize::from(*exact);
    }
    let power = by_size
        .into_values()
        .map(|mut r| {
            r.power = share(r.found, r.planted);
            r.exact_share = share(r.exact, r.planted);
            r
        })
        .collect();
    let mut by_kind: BTreeMap<EffectKind, ExactRow> = BTreeMap::new();
    for (e, _, exact) in &all {
        let row = by_kind.entry(e.kind).or_insert_with(|| ExactRow {
            kind: e.kind,
            ..ExactRow::default()
        });
        row.planted += 1;
        row.exact += usize::from(*exact);
    }
    let exact_by_kind = by_kind
        .into_values()
        .map(|mut r| {
            r.exact_share = share(r.exact, r.planted);
            r
        })
        .collect();
    EffectRows {
        runs: runs.len(),
        mean_active_lessons: active as f64 / n,
        fdp_pooled: share(false_discoveries, active as usize),
        fdp_mean: runs
            .iter()
            .map(|r| share(r.false_discoveries, r.active as usize))
            .sum::<f64>()
            / n,
        false_discoveries,
        mean_true_by_trades: runs.iter().map(|r| r.true_by_trades as f64).sum::<f64>() / n,
        mean_diluted: runs.iter().map(|r| r.diluted as f64).sum::<f64>() / n,
        fdp_pooled_without_diluted: share(
            false_discoveries - runs.iter().map(|r| r.diluted).sum::<usize>(),
            active as usize,
        ),
        mean_generalizations: runs.iter().map(|r| r.generalizations as f64).sum::<f64>() / n,
        power,
        exact_by_kind,
        stopped: stopped_row(&runs),
    }
}

fn interaction_row(results: &[SetResult]) -> InteractionRow {
    let runs: Vec<&SetResult> = results
        .iter()
        .filter(|r| r.kind == SetKind::Interaction)
        .collect();
    let n = runs.len().max(1) as f64;
    let all: Vec<&(PlantedEffect, bool, bool)> = runs.iter().flat_map(|r| &r.effects).collect();
    let active: u64 = runs.iter().map(|r| r.active).sum();
    let false_discoveries: usize = runs.iter().map(|r| r.false_discoveries).sum();
    let exact = all.iter().filter(|(_, _, exact)| *exact).count();
    let well_supported = || {
        all.iter()
            .filter(|(e, _, _)| e.matching_trades >= WELL_SUPPORTED_TRADES)
    };
    InteractionRow {
        groups_well_supported: well_supported().count(),
        exact_well_supported: well_supported().filter(|(_, _, exact)| *exact).count(),
        runs: runs.len(),
        effect_r: all.first().map_or(0.0, |(e, _, _)| e.effect_r),
        groups: all.len(),
        exact,
        exact_share: share(exact, all.len()),
        found: all.iter().filter(|(_, found, _)| *found).count(),
        mean_active_lessons: active as f64 / n,
        mean_generalizations: runs.iter().map(|r| r.generalizations as f64).sum::<f64>() / n,
        false_discoveries,
        fdp_pooled: share(false_discoveries, active as usize),
    }
}

fn stopped_row(runs: &[&SetResult]) -> StoppedRow {
    let learned: Vec<Option<f64>> = runs.iter().filter_map(|r| r.stopped.flatten()).collect();
    let mut back: Vec<f64> = learned.iter().flatten().copied().collect();
    back.sort_by(f64::total_cmp);
    // The median over every learned set, counting "not back by the end" as longest.
    let median = if learned.is_empty() || back.len() * 2 <= learned.len() {
        None
    } else {
        let mid = learned.len() / 2;
        Some(if learned.len() % 2 == 1 {
            back[mid]
        } else {
            (back[mid - 1] + back[mid]) / 2.0
        })
    };
    StoppedRow {
        sets: runs.len(),
        learned_before_stop: learned.len(),
        not_back_by_end: learned.iter().filter(|d| d.is_none()).count(),
        days_until_back: learned,
        median_days_until_back: median,
    }
}

fn kind_name(kind: EffectKind) -> &'static str {
    match kind {
        EffectKind::Pattern => "whole pattern",
        EffectKind::OneDim => "one dim",
        EffectKind::Interaction => "interaction",
        EffectKind::BadParent => "bad parent",
        EffectKind::Exception => "exception in a bad parent",
        EffectKind::Started => "started effect",
        EffectKind::Stopped => "stopped effect",
    }
}

pub fn human(r: &CalibrationReport) -> String {
    let placebo = |p: &PlaceboRow| {
        format!(
            "{}/{} runs ({:.0} %), mean {:.2}, max {} active lessons",
            p.runs_with_a_lesson,
            p.runs,
            100.0 * p.share_with_a_lesson,
            p.mean_active_lessons,
            p.max_active_lessons
        )
    };
    let e = &r.effects;
    let mut lines = vec![
        (
            "sets × trades × days".to_string(),
            format!(
                "{} × {} × {} (seed {}, shock sd {} R)",
                r.sets, r.trades, r.days, r.seed, r.regime_shock_sd
            ),
        ),
        ("placebo with ≥ 1 lesson".into(), placebo(&r.placebo)),
        (
            "placebo + shocks with ≥ 1 lesson".into(),
            placebo(&r.placebo_shocks),
        ),
        (
            "effect sets: active lessons".into(),
            format!("mean {:.1} per set", e.mean_active_lessons),
        ),
        (
            "false-discovery proportion".into(),
            format!(
                "{:.3} pooled ({} false), {:.3} mean per set",
                e.fdp_pooled, e.false_discoveries, e.fdp_mean
            ),
        ),
        (
            "true by their trades (other actions)".into(),
            format!("mean {:.2} per set", e.mean_true_by_trades),
        ),
        (
            "false but true on average (diluted)".into(),
            format!(
                "mean {:.2} per set; FDP without them {:.3} pooled",
                e.mean_diluted, e.fdp_pooled_without_diluted
            ),
        ),
        (
            "generalizations taught".into(),
            format!("mean {:.2} per set", e.mean_generalizations),
        ),
    ];
    for p in &e.power {
        lines.push((
            format!("power {} {:+.2} R", kind_name(p.kind), p.effect_r),
            format!(
                "{}/{} found ({:.0} %), exact scope {}/{} ({:.0} %)",
                p.found,
                p.planted,
                100.0 * p.power,
                p.exact,
                p.planted,
                100.0 * p.exact_share
            ),
        ));
    }
    for x in &e.exact_by_kind {
        lines.push((
            format!("exact scope: {}", kind_name(x.kind)),
            format!(
                "{}/{} groups ({:.0} %)",
                x.exact,
                x.planted,
                100.0 * x.exact_share
            ),
        ));
    }
    let s = &e.stopped;
    lines.push((
        "stopped effect: lever back within 0.05".into(),
        format!(
            "median {} days after the stop (learned in {}/{} sets, not back by the end in {})",
            s.median_days_until_back
                .map_or("n/a".to_string(), |d| format!("{d:.0}")),
            s.learned_before_stop,
            s.sets,
            s.not_back_by_end
        ),
    ));
    let i = &r.interaction;
    lines.push((
        format!("interaction {:+.2} R in every group", i.effect_r),
        format!(
            "exact scope in {}/{} groups ({:.0} %; {}/{} of those with ≥ {} trades there), found \
             in {}; generalizations {:.2} per set; {:.1} active lessons per set, FDP {:.3} \
             pooled ({} false)",
            i.exact,
            i.groups,
            100.0 * i.exact_share,
            i.exact_well_supported,
            i.groups_well_supported,
            WELL_SUPPORTED_TRADES,
            i.found,
            i.mean_generalizations,
            i.mean_active_lessons,
            i.fdp_pooled,
            i.false_discoveries
        ),
    ));
    lines.push(("wall time".into(), format!("{:.1} s", r.seconds)));
    let borrowed: Vec<(&str, String)> =
        lines.iter().map(|(k, v)| (k.as_str(), v.clone())).collect();
    kv(&borrowed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(stopped: Option<Option<Option<f64>>>) -> SetResult {
        SetResult {
            kind: SetKind::Effects,
            active: 0,
            false_discoveries: 0,
            true_by_trades: 0,
            diluted: 0,
            generalizations: 0,
            effects: Vec::new(),
            stopped,
        }
    }

    #[test]
    fn the_median_counts_sets_whose_lever_never_came_back_as_longest() {
        let runs = [
            set(Some(Some(Some(10.0)))),
            set(Some(Some(None))),
            set(Some(Some(Some(4.0)))),
            set(Some(None)),
        ];
        let refs: Vec<&SetResult> = runs.iter().collect();
        let row = stopped_row(&refs);
        assert_eq!(
            (row.sets, row.learned_before_stop, row.not_back_by_end),
            (4, 3, 1)
        );
        assert_eq!(row.median_days_until_back, Some(10.0));
        let never = [set(Some(Some(None))), set(Some(Some(Some(3.0))))];
        let refs: Vec<&SetResult> = never.iter().collect();
        assert_eq!(stopped_row(&refs).median_days_until_back, None);
    }
}
