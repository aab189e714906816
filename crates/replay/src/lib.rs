//! Backtest replay of lesson evolution (SPEC §7): the loop as of each step over a past period,
//! the lessons' evolution, and a walk-forward answer to "would these overrides have helped?".
#![warn(missing_docs)]

pub mod bootstrap;
pub mod chart;
pub mod engine;
pub mod report;
pub mod walk_forward;

pub use engine::{replay, FirstActivation, ReplayError, ReplayOptions, ReplayRun, StepSummary};
pub use walk_forward::{DayFigures, OverrideUplift, UpliftSummary};

use learnloop_model::{EvolutionRow, Timestamp};
use learnloop_store::lessons::replace_evolution;
use learnloop_store::Connection;
use serde::Serialize;
use std::path::Path;

/// The placebo replay's headline figures, beside the real ones in `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct PlaceboFigures {
    /// Lessons that were active at some step.
    pub lessons_ever_active: u64,
    /// Σ of the daily uplift (R).
    pub uplift_total_r: f64,
    /// Uplift per evaluated trade (R).
    pub uplift_mean_r: f64,
    /// 95 % stationary-bootstrap interval of the total uplift.
    pub uplift_ci95: [f64; 2],
}

/// `summary.json`.
#[derive(Debug, Clone, Serialize)]
pub struct ReplaySummary {
    /// Id of the replay.
    pub replay_id: String,
    /// First step's as-of time.
    pub from: String,
    /// Last as-of time.
    pub to: String,
    /// Step length in hours.
    pub step_hours: f64,
    /// Number of steps.
    pub steps: u64,
    /// Lessons that were active at some step.
    pub lessons_ever_active: u64,
    /// Σ of the daily uplift (R): what the overrides would have added.
    pub uplift_total_r: f64,
    /// Uplift per evaluated trade (R).
    pub uplift_mean_r: f64,
    /// 95 % stationary-bootstrap interval of the total uplift.
    pub uplift_ci95: [f64; 2],
    /// The full walk-forward figures.
    pub uplift: UpliftSummary,
    /// When each lesson first became active.
    pub first_active: Vec<FirstActivation>,
    /// The placebo replay's figures, when one was run.
    pub placebo: Option<PlaceboFigures>,
    /// Wall time of the replay and of its placebo, when run.
    pub replay_seconds: f64,
    /// Mean wall time of a step, over the replay's and the placebo's steps.
    pub mean_step_ms: f64,
}

/// The `summary.json` of a replay and, when run, its placebo.
pub fn summarize(
    opts: &ReplayOptions,
    run: &ReplayRun,
    placebo: Option<&ReplayRun>,
) -> ReplaySummary {
    let steps = run.steps.len() as u64;
    // The time reported covers the placebo half too: it is part of what the command cost.
    let total_ms = run.total_ms + placebo.map_or(0, |p| p.total_ms);
    let replayed_steps = steps + placebo.map_or(0, |p| p.steps.len() as u64);
    ReplaySummary {
        replay_id: run.replay_id.clone(),
        from: opts.from.to_rfc3339(),
        to: opts.to.to_rfc3339(),
        step_hours: opts.step_ms as f64 / 3_600_000.0,
        steps,
        lessons_ever_active: run.first_active.len() as u64,
        uplift_total_r: run.uplift.uplift_total_r,
        uplift_mean_r: run.uplift.uplift_mean_r,
        uplift_ci95: run.uplift.uplift_ci95,
        uplift: run.uplift.clone(),
        first_active: run.first_active.clone(),
        placebo: placebo.map(|p| PlaceboFigures {
            lessons_ever_active: p.first_active.len() as u64,
            uplift_total_r: p.uplift.uplift_total_r,
            uplift_mean_r: p.uplift.uplift_mean_r,
            uplift_ci95: p.uplift.uplift_ci95,
        }),
        replay_seconds: total_ms as f64 / 1e3,
        mean_step_ms: if replayed_steps > 0 {
            total_ms as f64 / replayed_steps as f64
        } else {
            0.0
        },
    }
}

/// `walk_forward.json`: the daily walk-forward figures of the replay and of its placebo, from
/// which a report draws the cumulative R with and without the overrides.
#[derive(Debug, Clone, Default, PartialEq, Serialize, serde::Deserialize)]
pub struct WalkForwardSeries {
    /// The replay's daily figures.
    pub days: Vec<DayFigures>,
    /// The placebo's daily figures, when one was run.
    pub placebo_days: Option<Vec<DayFigures>>,
}

/// Write `evolution.csv`, `evolution.json`, `size_mult.svg`, `walk_forward.json` and
/// `summary.json` into `out_dir`.
pub fn write_outputs(
    out_dir: &Path,
    run: &ReplayRun,
    placebo: Option<&ReplayRun>,
    summary: &ReplaySummary,
) -> std::io::Result<()> {
    std::fs::create_dir_all(out_dir)?;
    report::write_evolution_csv(&out_dir.join("evolution.csv"), &run.evolution)?;
    report::write_evolution_json(&out_dir.join("evolution.json"), &run.evolution)?;
    let main = report::main_lessons(&run.evolution, 8);
    // The chart prints the period itself; a short title keeps clear of it.
    std::fs::write(
        out_dir.join("size_mult.svg"),
        chart::render_size_mult_svg(
            &run.evolution,
            &main,
            "Size multipliers of the main lessons",
        ),
    )?;
    let series = WalkForwardSeries {
        days: run.days.clone(),
        placebo_days: placebo.map(|p| p.days.clone()),
    };
    let json = serde_json::to_string_pretty(&series).map_err(std::io::Error::other)?;
    std::fs::write(out_dir.join("walk_forward.json"), json + "\n")?;
    let json = serde_json::to_string_pretty(summary).map_err(std::io::Error::other)?;
    std::fs::write(out_dir.join("summary.json"), json + "\n")
}

/// Record the replay's evolution in `lesson_evolution` of the user's store.
pub fn record_evolution(
    conn: &Connection,
    run: &ReplayRun,
) -> Result<(), learnloop_store::StoreError> {
    let rows: Vec<EvolutionRow<'_>> = run
        .evolution
        .iter()
        .map(|p| EvolutionRow {
            as_of: Timestamp::from_millis(p.as_of_ms),
            lesson_key: &p.lesson_key,
            status: p.status,
            edge: p.edge,
            q_value: p.q_value,
            half_life_hours: p.half_life_hours,
            size_mult: p.size_mult,
        })
        .collect();
    replace_evolution(conn, &run.replay_id, &rows)
}
