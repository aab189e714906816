//! The nightly job as a library: normalise new strands, then each requested stage in order, all
//! inside the caller's transaction, so that a failure anywhere leaves every table as it was.
#![warn(missing_docs)]

use learnloop_aggregator::{
    aggregate_with_progress, store_tested_deep_subsets, AggregateOptions, AggregateReport,
    IncrementalAggregator,
};
use learnloop_lesson_builder::{
    build_lessons, build_lessons_from, shuffle_r_within_clusters, InMemory, LatticeMemo,
    LessonReport,
};
use learnloop_linker::{link, normalize_new, LinkOptions, LinkReport, NormalizeReport};
use learnloop_materializer::{materialize, MaterializeOptions, MaterializeReport};
use learnloop_model::{LoopConfig, StatsView, Timestamp, TradeEvent};
use learnloop_store::Connection;
use rustc_hash::FxHashSet;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A stage of the loop, in the order [`step`] runs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Link actions to closed trades (`trade_events`).
    Link,
    /// Per-subset statistics (`pattern_scope_stats`).
    Aggregate,
    /// Tests, selection and lifecycle (`learning_lessons`).
    Lessons,
    /// A new config version from the active lessons.
    Materialize,
}

impl Stage {
    /// Every stage, in the loop's order.
    pub const ALL: [Stage; 4] = [
        Stage::Link,
        Stage::Aggregate,
        Stage::Lessons,
        Stage::Materialize,
    ];

    /// The stage's name in reports and timings.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Link => "link",
            Stage::Aggregate => "aggregate",
            Stage::Lessons => "lessons",
            Stage::Materialize => "materialize",
        }
    }
}

/// How a nightly run is asked to run.
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `None`: the latest created_at among the ingested strands.
    pub as_of: Option<Timestamp>,
    /// Re-link every position, not only those touched since the last link.
    pub rebuild: bool,
    /// Shuffle R among the trades of each day (seeded) before aggregation: the null run.
    pub placebo: Option<u64>,
    /// Activate the new config version at once instead of leaving it `proposed`.
    pub activate: bool,
    /// Recorded on the config version the run writes.
    pub run_id: Option<String>,
}

/// What each stage of a run did, for `run --json` and the run record.
#[derive(Debug, Clone, Default, Serialize)]
pub struct StagesReport {
    /// The as-of time: the resolved one, or, when a run fails before resolving it, the one asked
    /// for (empty if none was).
    pub as_of: String,
    /// Strands normalised since the watermark.
    pub normalize: NormalizeReport,
    /// The link stage, when run.
    pub link: Option<LinkReport>,
    /// The aggregate stage, when run without carried statistics.
    pub aggregate: Option<AggregateReport>,
    /// The lesson stage, when run.
    pub lessons: Option<LessonReport>,
    /// The materialize stage, when run.
    pub materialize: Option<MaterializeReport>,
    /// The aggregate stage of a step with carried statistics (the replay's).
    #[serde(skip)]
    pub carried_aggregate: Option<learnloop_aggregator::StepReport>,
    /// The placebo seed, for a placebo run.
    pub placebo_seed: Option<u64>,
    /// Wall time of each stage, whole milliseconds (what `run --json` prints).
    pub durations_ms: BTreeMap<String, u64>,
    /// The same, to the microsecond, by stage name (the replay's per-step figures).
    #[serde(skip)]
    pub stage_ms: BTreeMap<&'static str, f64>,
}

impl StagesReport {
    fn timed(&mut self, stage: &'static str, took: Duration) {
        self.durations_ms
            .insert(stage.to_string(), took.as_millis() as u64);
        self.stage_ms.insert(stage, took.as_secs_f64() * 1e3);
    }
}

/// Why a run failed (the caller rolls its transaction back).
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// No strands and no as-of time: nothing to run on.
    #[error("no strands ingested yet: ingest a JSON Lines file first, or give an as-of time")]
    NoData,
    /// A stage failed.
    #[error("{stage} stage: {source}")]
    Stage {
        /// The stage.
        stage: &'static str,
        /// Its error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The as-of is earlier than what the store has already learned: the lessons' lifecycle
    /// (hysteresis, confirmations, decay) only moves forward, so an older run would leave
    /// lessons of the past active in the present.
    #[error(
        "as-of {as_of} is before the store's last learning run (as of {learned}): lessons and \
         configs only move forward in time; to see the past, use `learnloop replay` (it learns in a \
         scratch store) or run on a copy of the store"
    )]
    AsOfBeforeLearned {
        /// The as-of asked for.
        as_of: Timestamp,
        /// The latest as-of of the stored lessons and config versions.
        learned: Timestamp,
    },
    /// The as-of asked for is far past every stored strand (see [`resolve_as_of`]).
    #[error(
        "as-of {as_of} is more than {AS_OF_MAX_AHEAD_DAYS} days after the latest stored strand \
         ({latest}): every lesson would decay as if its evidence had stopped, and learning cannot \
         move back afterwards; check the date (or ingest the missing data first)"
    )]
    AsOfBeyondData {
        /// The as-of asked for.
        as_of: Timestamp,
        /// The latest created_at among the stored strands.
        latest: Timestamp,
    },
    /// A stage run without the stage before it would read that stage's output of another
    /// as-of (statistics of last week judged as of today, say).
    #[error(
        "the {stage} stage reads what the {input} stage stored as of {stored}, not as of {as_of}: {}",
        stage_input_fix(*.as_of)
    )]
    StageInputAsOf {
        /// The stage asked for.
        stage: &'static str,
        /// The stage whose stored output it reads.
        input: &'static str,
        /// The as-of of that stored output.
        stored: Timestamp,
        /// The as-of asked for.
        as_of: Timestamp,
    },
    /// The store failed outside a stage (normalise, as-of).
    #[error(transparent)]
    Store(#[from] learnloop_store::StoreError),
}

fn stage_err<E: std::error::Error + Send + Sync + 'static>(
    stage: &'static str,
) -> impl FnOnce(E) -> PipelineError {
    move |e| PipelineError::Stage {
        stage,
        source: Box::new(e),
    }
}

/// The as-of time a run uses: the given one, else the latest created_at among the stored
/// strands that another strand corroborates (see `learnloop_store::strands::default_as_of`), so
/// that one strand with a wrong clock cannot become the as-of.
///
/// A given as-of more than [`AS_OF_MAX_AHEAD_DAYS`] past the latest stored strand is refused: a
/// typo (2062 for 2026) would decay every lesson to neutral and, since learning only moves
/// forward, leave the store unable to run at the real date again.
pub fn resolve_as_of(
    conn: &Connection,
    as_of: Option<Timestamp>,
) -> Result<Timestamp, PipelineError> {
    match as_of {
        Some(t) => {
            let latest = learnloop_store::strands::latest_created_at(conn)?;
            match latest {
                Some(latest)
                    if t.millis() - latest.millis() > AS_OF_MAX_AHEAD_DAYS * MS_PER_DAY =>
                {
                    Err(PipelineError::AsOfBeyondData { as_of: t, latest })
                }
                _ => Ok(t),
            }
        }
        None => learnloop_store::strands::default_as_of(conn)?.ok_or(PipelineError::NoData),
    }
}

/// How far past the latest stored strand a given as-of may be (days).
pub const AS_OF_MAX_AHEAD_DAYS: i64 = 31;
const MS_PER_DAY: i64 = learnloop_model::time::MS_PER_DAY;

/// Told as a run advances, so that a caller can show progress; the pipeline draws nothing itself
/// and works the same whatever the observer does.
pub trait Progress {
    /// `stage` starts: the `index`-th (from 0) of `count` stages of this call.
    fn stage(&self, _stage: Stage, _index: usize, _count: usize) {}
    /// Within the current stage: `done` of `total` units (pattern groups, for aggregate).
    fn advance(&self, _done: u64, _total: u64) {}
}

/// Shows nothing.
pub struct Silent;

impl Progress for Silent {}

/// Run `stages` in order. `now` is the wall-clock time recorded on quarantine rows and on a new
/// config version's `created_at` (the only places the clock appears).
pub fn run_stages(
    conn: &Connection,
    cfg: &LoopConfig,
    options: &RunOptions,
    stages: &[Stage],
    now: Timestamp,
) -> Result<StagesReport, PipelineError> {
    run_stages_with_progress(conn, cfg, options, stages, now, &Silent)
}

/// [`run_stages`], telling `progress` as each stage starts and as the aggregate stage advances.
pub fn run_stages_with_progress(
    conn: &Connection,
    cfg: &LoopConfig,
    options: &RunOptions,
    stages: &[Stage],
    now: Timestamp,
    progress: &dyn Progress,
) -> Result<StagesReport, PipelineError> {
    let mut report = StagesReport::default();
    run_stages_into(conn, cfg, options, stages, now, progress, &mut report)?;
    Ok(report)
}

/// [`run_stages_with_progress`] into `report`, which keeps what was done when a stage fails: the
/// resolved as-of and the reports of the stages before it, for the failed run's record.
pub fn run_stages_into(
    conn: &Connection,
    cfg: &LoopConfig,
    options: &RunOptions,
    stages: &[Stage],
    now: Timestamp,
    progress: &dyn Progress,
    report: &mut StagesReport,
) -> Result<(), PipelineError> {
    *report = StagesReport {
        placebo_seed: options.placebo,
        // The as-of asked for, until it is resolved: a refused one is recorded too.
        as_of: options.as_of.map(Timestamp::to_rfc3339).unwrap_or_default(),
        ..StagesReport::default()
    };
    let t = Instant::now();
    report.normalize =
        normalize_new(conn, &now.to_rfc3339_millis()).map_err(stage_err("normalize"))?;
    let as_of = resolve_as_of(conn, options.as_of)?;
    report
        .durations_ms
        .insert("normalize".into(), t.elapsed().as_millis() as u64);
    let step_options = StepOptions {
        as_of,
        rebuild: options.rebuild,
        placebo: options.placebo,
        activate: options.activate,
        run_id: options.run_id.clone(),
        now,
    };
    step(conn, cfg, &step_options, stages, None, progress, report)
}

/// One step of the loop at a resolved as-of time.
#[derive(Debug, Clone)]
pub struct StepOptions {
    /// The as-of time of the step.
    pub as_of: Timestamp,
    /// Re-link every position, not only those touched since the last link.
    pub rebuild: bool,
    /// Learn from R permuted within time clusters by this seed (the null run).
    pub placebo: Option<u64>,
    /// Activate the new config version at once instead of leaving it `proposed`.
    pub activate: bool,
    /// Recorded on the config version the step writes.
    pub run_id: Option<String>,
    /// Wall-clock time for a new config version's `created_at`.
    pub now: Timestamp,
}

/// What a caller stepping the loop through time (the replay) keeps in memory between steps
/// instead of reading it back from the store: the linked events in canonical order, the
/// statistics carried forward group by group, and each group's subset lattice.
pub struct Carried {
    events: Vec<TradeEvent>,
    aggregator: IncrementalAggregator,
    lattices: LatticeMemo,
}

impl Carried {
    /// Nothing known yet: the first step links and aggregates everything up to its as-of.
    pub fn new(cfg: &LoopConfig) -> Self {
        Self {
            events: Vec::new(),
            aggregator: IncrementalAggregator::new(cfg),
            lattices: LatticeMemo::default(),
        }
    }
}

/// Bring the carried events up to date with the link just made: the re-linked positions' events
/// replace theirs, in canonical order (what reading the table back would give).
fn refresh_events(known: &mut Vec<TradeEvent>, link: &mut LinkReport) {
    if link.rebuild {
        known.clear();
    } else if link.relinked.is_empty() {
        return;
    } else {
        let relinked: FxHashSet<&str> = link.relinked.iter().map(String::as_str).collect();
        known.retain(|e| !relinked.contains(e.position_id.as_str()));
    }
    known.append(&mut link.events);
    // Stable: the kept events are one sorted run, which the sort merges with the new ones.
    known.sort_by(|a, b| {
        (a.exit_at, &a.trade_key, &a.action_strand_id).cmp(&(
            b.exit_at,
            &b.trade_key,
            &b.action_strand_id,
        ))
    });
}

/// The one place the stage order is written: run the requested `stages` (in the loop's order,
/// whatever order they are given in) as of `opts.as_of`, on the caller's transaction, filling
/// `report`. The nightly run and the benchmarks pass no `carried` state: each stage reads what
/// the previous one stored. The replay passes its [`Carried`] state: links hand their events
/// back, statistics are carried forward in memory, and the lesson stage tests them in place.
pub fn step(
    conn: &Connection,
    cfg: &LoopConfig,
    opts: &StepOptions,
    stages: &[Stage],
    carried: Option<&mut Carried>,
    progress: &dyn Progress,
    report: &mut StagesReport,
) -> Result<(), PipelineError> {
    report.as_of = opts.as_of.to_rfc3339();
    if carried.is_none() {
        if opts.placebo.is_none() {
            check_as_of_moves_forward(conn, opts.as_of, stages)?;
        }
        check_stage_inputs(conn, opts.as_of, stages)?;
    }
    let mut run = StepRun {
        conn,
        cfg,
        opts,
        progress,
        memory: carried.map(InMemoryStep::new),
    };
    let count = Stage::ALL.iter().filter(|s| stages.contains(s)).count();
    for (index, stage) in Stage::ALL
        .into_iter()
        .filter(|s| stages.contains(s))
        .enumerate()
    {
        progress.stage(stage, index, count);
        let t = Instant::now();
        match stage {
            Stage::Link => run.link(report)?,
            Stage::Aggregate => run.aggregate(report)?,
            Stage::Lessons => run.lessons(report)?,
            Stage::Materialize => run.materialize(report)?,
        }
        // An in-memory link times itself (its event refresh apart).
        if !(stage == Stage::Link && run.memory.is_some()) {
            report.timed(stage.name(), t.elapsed());
        }
        // What the stage freed goes back to the OS before the next stage's peak.
        learnloop_sys::release_freed_memory();
    }
    Ok(())
}

/// Refuses a lessons or materialize stage as of a time before the store's learned state. A
/// placebo run (rolled back) and a replay (its own scratch store) are not checked.
fn check_as_of_moves_forward(
    conn: &Connection,
    as_of: Timestamp,
    stages: &[Stage],
) -> Result<(), PipelineError> {
    if !stages
        .iter()
        .any(|s| matches!(s, Stage::Lessons | Stage::Materialize))
    {
        return Ok(());
    }
    match learnloop_store::lessons::latest_learned_as_of(conn)? {
        Some(learned) if learned > as_of => {
            Err(PipelineError::AsOfBeforeLearned { as_of, learned })
        }
        _ => Ok(()),
    }
}

/// What to do about a [`PipelineError::StageInputAsOf`]: run every stage as of one time. Never
/// a single earlier stage as of an earlier time: the stages before the lessons have no
/// forward-only guard, so that would leave links and statistics older than the lessons.
fn stage_input_fix(as_of: Timestamp) -> String {
    // Only `run` is sound advice: another single stage as of another time can meet the next
    // input's as-of, or the forward-only rule, in turn.
    format!(
        "run the stages together as of one time with `learnloop run --as-of {as_of}` (or \
         `learnloop run` for the latest data; learning only moves forward)"
    )
}

/// Refuses a stage whose input stage is not part of this call and stored its output as of
/// another time: each stage's as-of must be its inputs'. The lesson stage reads the links
/// (trade events, module baselines) as well as the statistics.
fn check_stage_inputs(
    conn: &Connection,
    as_of: Timestamp,
    stages: &[Stage],
) -> Result<(), PipelineError> {
    let inputs = [
        (Stage::Link, Stage::Aggregate),
        (Stage::Link, Stage::Lessons),
        (Stage::Aggregate, Stage::Lessons),
        (Stage::Lessons, Stage::Materialize),
    ];
    for (input, stage) in inputs {
        if !stages.contains(&stage) || stages.contains(&input) {
            continue;
        }
        let stored = match input {
            Stage::Link => learnloop_linker::link::linked_as_of(conn).map_err(stage_err("link"))?,
            Stage::Aggregate => learnloop_store::stats::aggregated_as_of(conn)?,
            _ => learnloop_store::lessons::lesson_stage_as_of(conn)?,
        };
        match stored {
            Some(stored) if stored != as_of => {
                return Err(PipelineError::StageInputAsOf {
                    stage: stage.name(),
                    input: input.name(),
                    stored,
                    as_of,
                })
            }
            _ => {}
        }
    }
    Ok(())
}

/// One call of [`step`]: what every stage reads, and the caller's carried state, if any.
struct StepRun<'a> {
    conn: &'a Connection,
    cfg: &'a LoopConfig,
    opts: &'a StepOptions,
    progress: &'a dyn Progress,
    memory: Option<InMemoryStep<'a>>,
}

/// The carried state during one step, handed from stage to stage.
struct InMemoryStep<'a> {
    events: &'a mut Vec<TradeEvent>,
    aggregator: Option<&'a mut IncrementalAggregator>,
    lattices: Option<&'a mut LatticeMemo>,
    /// A placebo step learns from a shuffled copy of the carried events.
    shuffled: Option<Vec<TradeEvent>>,
    /// The statistics the aggregate stage carried forward, for the lesson stage.
    rows: Option<StatsView<'a>>,
}

impl<'a> InMemoryStep<'a> {
    fn new(carried: &'a mut Carried) -> Self {
        Self {
            events: &mut carried.events,
            aggregator: Some(&mut carried.aggregator),
            lattices: Some(&mut carried.lattices),
            shuffled: None,
            rows: None,
        }
    }
}

impl<'a> StepRun<'a> {
    fn link(&mut self, report: &mut StagesReport) -> Result<(), PipelineError> {
        let t = Instant::now();
        let link_options = LinkOptions {
            rebuild: self.opts.rebuild,
            keep_events: self.memory.is_some(),
        };
        let mut linked =
            link(self.conn, self.opts.as_of, link_options).map_err(stage_err("link"))?;
        if let Some(memory) = self.memory.as_mut() {
            report.timed("link", t.elapsed());
            let t = Instant::now();
            refresh_events(memory.events, &mut linked);
            report.timed("load_events", t.elapsed());
        }
        report.link = Some(linked);
        Ok(())
    }

    fn aggregate(&mut self, report: &mut StagesReport) -> Result<(), PipelineError> {
        let (opts, cfg) = (self.opts, self.cfg);
        if let Some(memory) = self.memory.as_mut() {
            if let Some(aggregator) = memory.aggregator.take() {
                let events: &[TradeEvent] = match opts.placebo {
                    Some(seed) => {
                        let mut copy = memory.events.clone();
                        shuffle_r_within_clusters(&mut copy, seed, cfg.lessons.cluster_days);
                        memory.shuffled.insert(copy)
                    }
                    None => memory.events.as_slice(),
                };
                let (rows, stepped) = aggregator
                    .step(events, opts.as_of)
                    .map_err(stage_err("aggregate"))?;
                report.carried_aggregate = Some(stepped);
                memory.rows = Some(rows);
                return Ok(());
            }
        }
        let aggregate_options = self.aggregate_options();
        let progress = self.progress;
        let mut on_group = |done, total| progress.advance(done, total);
        let aggregated = aggregate_with_progress(
            self.conn,
            cfg,
            opts.as_of,
            &aggregate_options,
            &mut on_group,
        )
        .map_err(stage_err("aggregate"))?;
        report.aggregate = Some(aggregated);
        Ok(())
    }

    /// How the aggregate stage (and the deep subsets' statistics after the lessons) read R: a
    /// placebo shuffles it within clusters.
    fn aggregate_options(&self) -> AggregateOptions {
        AggregateOptions {
            transform: self
                .opts
                .placebo
                .map(|_| shuffle_r_within_clusters as fn(&mut [_], u64, u32)),
            seed: self.opts.placebo.unwrap_or_default(),
            cluster_days: self.cfg.lessons.cluster_days,
        }
    }

    fn lessons(&mut self, report: &mut StagesReport) -> Result<(), PipelineError> {
        let (conn, cfg, opts) = (self.conn, self.cfg, self.opts);
        let in_memory = self.memory.is_some();
        let carried = self.memory.as_mut().and_then(|m| {
            let rows = m.rows.take()?;
            let lattices = m.lattices.take()?;
            let events = m.shuffled.as_deref().unwrap_or(m.events.as_slice());
            Some(InMemory {
                rows,
                events,
                lattices,
            })
        });
        let lessons = match carried {
            Some(input) => build_lessons_from(conn, cfg, opts.as_of, input),
            None => {
                if opts.placebo.is_some() && !in_memory {
                    // A placebo asks what the shuffled data alone teaches: lessons
                    // remembered from real runs (kept by hysteresis) must not carry
                    // over into it. (A placebo replay's lessons come from shuffled
                    // data only, so it keeps them from step to step.)
                    learnloop_store::lessons::forget_all_lessons(conn)
                        .map_err(stage_err("lessons"))?;
                }
                build_lessons(conn, cfg, opts.as_of, opts.placebo)
            }
        };
        let mut lessons = lessons.map_err(stage_err("lessons"))?;
        if !in_memory {
            // The replay's steps keep no candidates, so they store no deep subsets either.
            lessons.deep_subsets_stored =
                store_tested_deep_subsets(conn, cfg, opts.as_of, &self.aggregate_options())
                    .map_err(stage_err("lessons"))?;
        }
        report.lessons = Some(lessons);
        learnloop_store::lessons::set_lesson_stage_as_of(conn, opts.as_of)?;
        Ok(())
    }

    fn materialize(&self, report: &mut StagesReport) -> Result<(), PipelineError> {
        let materialize_options = MaterializeOptions {
            activate: self.opts.activate,
            run_id: self.opts.run_id.clone(),
            created_at: self.opts.now,
        };
        let materialized = materialize(self.conn, self.cfg, self.opts.as_of, &materialize_options)
            .map_err(stage_err("materialize"))?;
        report.materialize = Some(materialized);
        Ok(())
    }
}
