//! The loop run as of each step over a historical period, on a scratch copy of the inputs, using
//! only what was known at each step (strands by `created_at`, trades by their close): links move
//! forward incrementally, statistics are carried forward (only changed groups recomputed), and
//! lessons, edge history, half-lives, factors and configs evolve exactly as nightly runs at those
//! times would have made them.

use crate::report::EvolutionPoint;
use crate::walk_forward::{evaluation_actions, DayFigures, EvalAction, UpliftSummary, WalkForward};
use learnloop_aggregator::StepReport;
use learnloop_model::pattern::short_pattern_key;
use learnloop_model::{LessonStatus, LoopConfig, Timestamp};
use learnloop_overrides::Overrides;
use learnloop_pipeline::{step, Carried, PipelineError, Stage, StagesReport, StepOptions};
use learnloop_store::Connection;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

/// Why a replay stopped.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// Reading or writing the scratch store failed.
    #[error(transparent)]
    Store(#[from] learnloop_store::StoreError),
    /// A stage failed at one step.
    #[error("step {as_of}: {stage}: {message}")]
    Step {
        /// The step's as-of time.
        as_of: String,
        /// The stage that failed.
        stage: &'static str,
        /// Its error.
        message: String,
    },
    /// `--from`/`--to`/`--step` do not make a window of steps.
    #[error("bad replay window: {0}")]
    Window(String),
    /// Nothing to replay: the source store has no linked trades.
    #[error(
        "the source store has no closed trade to evaluate: ingest actions and their closes first"
    )]
    NothingLinked,
}

/// The window and step of a replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// First step's as-of time.
    pub from: Timestamp,
    /// Last as-of time (included when on the step grid).
    pub to: Timestamp,
    /// Step length in milliseconds.
    pub step_ms: i64,
    /// Learn from R shuffled within days (the null replay); evaluation always uses real R.
    pub placebo_seed: Option<u64>,
    /// Wall-clock time for config rows' created_at (the stage itself never reads the clock).
    pub now: Timestamp,
}

impl ReplayOptions {
    /// The as-of times of the steps, `from` then every `step_ms` up to `to` (at most 100 000).
    pub fn steps(&self) -> Result<Vec<Timestamp>, ReplayError> {
        if self.step_ms <= 0 {
            return Err(ReplayError::Window("the step must be positive".into()));
        }
        if self.to < self.from {
            return Err(ReplayError::Window(format!(
                "--to {} is before --from {}",
                self.to, self.from
            )));
        }
        let n = ((self.to.millis() - self.from.millis()) / self.step_ms) as usize + 1;
        if n > 100_000 {
            return Err(ReplayError::Window(format!(
                "{n} steps is too many; use a larger --step"
            )));
        }
        Ok((0..n)
            .map(|i| Timestamp(self.from.millis() + i as i64 * self.step_ms))
            .collect())
    }

    /// The id recorded on the replay's config versions (window, step, placebo seed).
    pub fn replay_id(&self) -> String {
        let placebo = self
            .placebo_seed
            .map_or(String::new(), |s| format!(":placebo{s}"));
        format!(
            "replay:{}:{}:{}h{placebo}",
            self.from,
            self.to,
            self.step_ms / 3_600_000
        )
    }
}

/// What one step did.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StepSummary {
    /// The step's as-of time.
    pub as_of: String,
    /// Trades linked by then.
    pub trades_linked: i64,
    /// Active lessons after the step.
    pub active_lessons: u64,
    /// The config version the step wrote, if any.
    pub config_version: Option<i64>,
    /// What the aggregate stage recomputed, carried or rescaled.
    pub aggregate: StepReport,
    /// Wall time of each stage of the step, in ms.
    pub stage_ms: BTreeMap<&'static str, f64>,
    /// Wall time of the whole step, in ms.
    pub ms: u64,
}

/// The first step at which a lesson became active.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FirstActivation {
    /// The lesson.
    pub lesson_key: String,
    /// Its pattern/category/scope in words.
    pub label: String,
    /// The step's as-of time.
    pub as_of: String,
}

/// A finished replay: per-step summaries, the lessons' evolution, the walk-forward evaluation.
pub struct ReplayRun {
    /// Id of the replay (see [`ReplayOptions::replay_id`]).
    pub replay_id: String,
    /// One summary per step.
    pub steps: Vec<StepSummary>,
    /// Every lesson's state at every step.
    pub evolution: Vec<EvolutionPoint>,
    /// When each lesson first became active.
    pub first_active: Vec<FirstActivation>,
    /// Walk-forward uplift of the configs over the window.
    pub uplift: UpliftSummary,
    /// The walk-forward figures of each day that had actions, oldest first.
    pub days: Vec<DayFigures>,
    /// The scratch store as of the last step (lessons, history, factors, configs).
    pub scratch: Connection,
    /// Wall time of the whole replay, in ms.
    pub total_ms: u64,
}

fn step_err(as_of: Timestamp, stage: &'static str) -> impl FnOnce(String) -> ReplayError {
    move |message| ReplayError::Step {
        as_of: as_of.to_rfc3339(),
        stage,
        message,
    }
}

/// Replay the loop over `opts`' window on a scratch copy of `source`'s inputs.
pub fn replay(
    source_path: &Path,
    cfg: &LoopConfig,
    opts: &ReplayOptions,
    on_step: &mut dyn FnMut(usize, usize),
) -> Result<ReplayRun, ReplayError> {
    let started = Instant::now();
    let steps = opts.steps()?;
    let mut scratch = learnloop_store::open_scratch()?;
    learnloop_store::strands::copy_typed_inputs_from(&scratch, source_path)?;
    let actions = actions_to_score(&mut scratch, cfg, opts)?;
    let mut carried = Carried::new(cfg);
    let mut walk = WalkForward::default();
    let mut evolution = Vec::new();
    let mut summaries = Vec::with_capacity(steps.len());
    let mut first_active: BTreeMap<String, FirstActivation> = BTreeMap::new();
    let mut next_action = actions.partition_point(|a| a.at <= steps[0]);
    for (i, &as_of) in steps.iter().enumerate() {
        let t = Instant::now();
        let (summary, configs) = run_step(&mut scratch, cfg, opts, as_of, &mut carried)?;
        let points = snapshot(&scratch, as_of, &configs)?;
        for p in points.iter().filter(|p| p.status == LessonStatus::Active) {
            first_active
                .entry(p.lesson_key.clone())
                .or_insert_with(|| FirstActivation {
                    lesson_key: p.lesson_key.clone(),
                    label: p.label.clone(),
                    as_of: p.as_of.clone(),
                });
        }
        evolution.extend(points);
        // Actions of (T, T + step] are decided under the config active at T.
        let window_end = Timestamp(as_of.millis() + opts.step_ms);
        let end = actions.partition_point(|a| a.at <= window_end);
        let window: &[EvalAction] = &actions[next_action.min(end)..end];
        walk.score(window, &configs);
        next_action = end;
        summaries.push(StepSummary {
            ms: t.elapsed().as_millis() as u64,
            ..summary
        });
        on_step(i + 1, steps.len());
    }
    let mut first: Vec<FirstActivation> = first_active.into_values().collect();
    first.sort_by(|a, b| (&a.as_of, &a.lesson_key).cmp(&(&b.as_of, &b.lesson_key)));
    Ok(ReplayRun {
        replay_id: opts.replay_id(),
        steps: summaries,
        evolution,
        first_active: first,
        uplift: walk.summary(opts.placebo_seed.unwrap_or(0) ^ 0x5eed),
        days: walk.days.values().copied().collect(),
        scratch,
        total_ms: started.elapsed().as_millis() as u64,
    })
}

/// One nightly run as of `as_of` on the scratch store (the pipeline's step, with the state the
/// replay carries between steps); returns the configs then active.
/// The actions the walk-forward scores, with their trades' outcomes: everything in the inputs,
/// linked in the scratch copy as of the latest stored strand, in a transaction that is rolled
/// back (each step then links as of its own time). Linking here, not reading the source store's
/// links, makes the evaluation independent of when the source store was last `run` (a store run
/// before the window used to evaluate no trade at all).
fn actions_to_score(
    scratch: &mut Connection,
    cfg: &LoopConfig,
    opts: &ReplayOptions,
) -> Result<Vec<EvalAction>, ReplayError> {
    let tx = scratch
        .transaction()
        .map_err(learnloop_store::StoreError::from)?;
    let Some(end) = learnloop_store::strands::latest_created_at(&tx)? else {
        return Err(ReplayError::NothingLinked);
    };
    let link_all = StepOptions {
        as_of: end,
        rebuild: true,
        placebo: None,
        activate: false,
        run_id: None,
        now: opts.now,
    };
    step(
        &tx,
        cfg,
        &link_all,
        &[Stage::Link],
        None,
        &learnloop_pipeline::Silent,
        &mut StagesReport::default(),
    )
    .map_err(|e| step_err(end, "link")(e.to_string()))?;
    let events = learnloop_store::events::load_all_events(&tx)?;
    if events.is_empty() {
        return Err(ReplayError::NothingLinked);
    }
    let sizes = learnloop_store::strands::action_sizes(&tx)?;
    Ok(evaluation_actions(&events, &sizes))
}

fn run_step(
    scratch: &mut Connection,
    cfg: &LoopConfig,
    opts: &ReplayOptions,
    as_of: Timestamp,
    carried: &mut Carried,
) -> Result<(StepSummary, BTreeMap<String, Overrides>), ReplayError> {
    let tx = scratch
        .transaction()
        .map_err(learnloop_store::StoreError::from)?;
    let step_options = StepOptions {
        as_of,
        rebuild: false,
        placebo: opts.placebo_seed,
        activate: true,
        run_id: Some(opts.replay_id()),
        now: opts.now,
    };
    let mut report = StagesReport::default();
    step(
        &tx,
        cfg,
        &step_options,
        &Stage::ALL,
        Some(carried),
        &learnloop_pipeline::Silent,
        &mut report,
    )
    .map_err(|e| match e {
        PipelineError::Stage { stage, source } => step_err(as_of, stage)(source.to_string()),
        PipelineError::Store(e) => ReplayError::Store(e),
        other => step_err(as_of, "step")(other.to_string()),
    })?;
    tx.commit().map_err(learnloop_store::StoreError::from)?;
    let materialized = report.materialize.unwrap_or_default();
    let mut configs = BTreeMap::new();
    for module in materialized.modules.iter().map(|r| r.module.clone()) {
        if let Ok(o) = Overrides::from_sqlite(scratch, &module) {
            configs.insert(module, o);
        }
    }
    let summary = StepSummary {
        as_of: as_of.to_rfc3339(),
        trades_linked: report.link.map_or(0, |l| l.trades_linked_total),
        active_lessons: report.lessons.map_or(0, |l| l.lessons_active),
        config_version: materialized.modules.first().map(|r| r.config_version),
        aggregate: report.carried_aggregate.unwrap_or_default(),
        stage_ms: report.stage_ms,
        ms: 0,
    };
    Ok((summary, configs))
}

/// Every lesson that is not retired, or was active before, as of `as_of`, with the size
/// multiplier the PM would have used for its factor (1.0 when its override was dropped).
fn snapshot(
    scratch: &Connection,
    as_of: Timestamp,
    configs: &BTreeMap<String, Overrides>,
) -> Result<Vec<EvolutionPoint>, ReplayError> {
    let mut size_by_lesson: BTreeMap<&str, f64> = BTreeMap::new();
    for o in configs.values() {
        for ov in o.config().overrides() {
            let size = ov
                .levers
                .get_or_neutral(learnloop_overrides::Lever::SizeMult);
            for k in &ov.lesson_keys {
                size_by_lesson.insert(k.as_str(), size);
            }
        }
    }
    let lessons = learnloop_store::lessons::all_lessons(scratch)?;
    Ok(lessons
        .into_iter()
        .filter(|l| l.status != LessonStatus::Retired || l.created_at.is_some())
        .map(|l| {
            let active = l.status == LessonStatus::Active;
            let short = short_pattern_key(&l.pattern_key);
            EvolutionPoint {
                as_of: as_of.to_rfc3339(),
                as_of_ms: as_of.millis(),
                label: format!("{short}/{} {}", l.category, l.scope_values),
                status: l.status,
                edge: Some(l.shrunk_edge),
                q_value: l.q_value,
                half_life_hours: l.half_life_hours,
                size_mult: active.then(|| {
                    size_by_lesson
                        .get(l.lesson_key.as_str())
                        .copied()
                        .unwrap_or(1.0)
                }),
                lesson_key: l.lesson_key,
            }
        })
        .collect())
}
