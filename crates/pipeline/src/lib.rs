//! The nightly job as a library: normalise new strands, then each requested stage in order, all
//! inside the caller's transaction, so that a failure anywhere leaves every table as it was.

pub mod placebo;

use learnloop_aggregator::{aggregate_with_progress, AggregateOptions, AggregateReport};
use learnloop_lesson_builder::{build_lessons_with, LessonReport};
use learnloop_linker::{link, normalize_new, LinkReport, NormalizeReport};
use learnloop_materializer::{materialize, MaterializeOptions, MaterializeReport};
use learnloop_model::{LoopConfig, Timestamp};
use learnloop_store::Connection;
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    Link,
    Aggregate,
    Lessons,
    Materialize,
}

impl Stage {
    pub const ALL: [Stage; 4] = [
        Stage::Link,
        Stage::Aggregate,
        Stage::Lessons,
        Stage::Materialize,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Stage::Link => "link",
            Stage::Aggregate => "aggregate",
            Stage::Lessons => "lessons",
            Stage::Materialize => "materialize",
        }
    }
}

#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    /// `None`: the latest created_at among the ingested strands.
    pub as_of: Option<Timestamp>,
    pub rebuild: bool,
    /// Shuffle R among the trades of each day (seeded) before aggregation: the null run.
    pub placebo: Option<u64>,
    /// Activate the new config version at once instead of leaving it `proposed`.
    pub activate: bool,
    /// Recorded on the config version the run writes.
    pub run_id: Option<String>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct StagesReport {
    pub as_of: String,
    pub normalize: NormalizeReport,
    pub link: Option<LinkReport>,
    pub aggregate: Option<AggregateReport>,
    pub lessons: Option<LessonReport>,
    pub materialize: Option<MaterializeReport>,
    pub placebo_seed: Option<u64>,
    pub durations_ms: BTreeMap<String, u64>,
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("no strands ingested yet: ingest a JSON Lines file first, or give an as-of time")]
    NoData,
    #[error("{stage} stage: {source}")]
    Stage {
        stage: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
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
pub fn resolve_as_of(
    conn: &Connection,
    as_of: Option<Timestamp>,
) -> Result<Timestamp, PipelineError> {
    match as_of {
        Some(t) => Ok(t),
        None => learnloop_store::strands::default_as_of(conn)?.ok_or(PipelineError::NoData),
    }
}

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

/// Run `stages` in order. `now` is the wall-clock text recorded on quarantine rows and on a new
/// config version's `created_at` (the only places the clock appears).
pub fn run_stages(
    conn: &Connection,
    cfg: &LoopConfig,
    options: &RunOptions,
    stages: &[Stage],
    now: &str,
) -> Result<StagesReport, PipelineError> {
    run_stages_with_progress(conn, cfg, options, stages, now, &Silent)
}

/// [`run_stages`], telling `progress` as each stage starts and as the aggregate stage advances.
pub fn run_stages_with_progress(
    conn: &Connection,
    cfg: &LoopConfig,
    options: &RunOptions,
    stages: &[Stage],
    now: &str,
    progress: &dyn Progress,
) -> Result<StagesReport, PipelineError> {
    let mut report = StagesReport {
        placebo_seed: options.placebo,
        ..StagesReport::default()
    };
    let t = Instant::now();
    report.normalize = normalize_new(conn, now).map_err(stage_err("normalize"))?;
    let as_of = resolve_as_of(conn, options.as_of)?;
    report.as_of = as_of.to_rfc3339();
    report
        .durations_ms
        .insert("normalize".into(), t.elapsed().as_millis() as u64);
    for (index, &stage) in stages.iter().enumerate() {
        progress.stage(stage, index, stages.len());
        let t = Instant::now();
        match stage {
            Stage::Link => {
                report.link = Some(link(conn, as_of, options.rebuild).map_err(stage_err("link"))?);
            }
            Stage::Aggregate => {
                let opts = AggregateOptions {
                    transform: options
                        .placebo
                        .map(|_| placebo::shuffle_r_within_clusters as fn(&mut [_], u64, u32)),
                    seed: options.placebo.unwrap_or_default(),
                    cluster_days: cfg.lessons.cluster_days,
                };
                let mut on_group = |done, total| progress.advance(done, total);
                report.aggregate = Some(
                    aggregate_with_progress(conn, cfg, as_of, &opts, &mut on_group)
                        .map_err(stage_err("aggregate"))?,
                );
            }
            Stage::Lessons => {
                if options.placebo.is_some() {
                    // A placebo asks what the shuffled data alone teaches: lessons remembered
                    // from real runs (kept by hysteresis) must not carry over into it.
                    learnloop_store::lessons::forget_all_lessons(conn)
                        .map_err(stage_err("lessons"))?;
                }
                report.lessons = Some(
                    build_lessons_with(conn, cfg, as_of, options.placebo)
                        .map_err(stage_err("lessons"))?,
                );
            }
            Stage::Materialize => {
                let opts = MaterializeOptions {
                    activate: options.activate,
                    run_id: options.run_id.clone(),
                    created_at: now.to_string(),
                };
                report.materialize =
                    Some(materialize(conn, cfg, as_of, &opts).map_err(stage_err("materialize"))?);
            }
        }
        report
            .durations_ms
            .insert(stage.name().into(), t.elapsed().as_millis() as u64);
    }
    Ok(report)
}
