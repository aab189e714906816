//! The lesson stage's records: lessons with their lifecycle, the candidates a run tested, edge
//! history points, latent factors, and a replay's evolution rows.

use crate::{ActionCategory, LessonStatus, Timestamp};
use learnloop_overrides::Levers;

/// A `learning_lessons` row: a lesson, its figures at the last run, levers and lifecycle.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LessonRow {
    pub lesson_key: String,
    pub module: String,
    pub pattern_key: String,
    pub category: ActionCategory,
    pub scope_mask: u64,
    /// Sorted-key JSON of the subset's `dim: value` pairs.
    pub scope_values: String,
    pub scope_values_hash: u64,
    pub n_trades: u64,
    pub mean_rr: f64,
    pub edge: f64,
    pub shrunk_edge: f64,
    pub t_stat: Option<f64>,
    pub p_value: Option<f64>,
    pub q_value: Option<f64>,
    pub half_life_hours: Option<f64>,
    pub latent_factor_id: Option<String>,
    /// Lever values (the `overrides` crate's vocabulary), before decay; stored as a JSON object
    /// of lever name → value.
    pub levers: Levers,
    pub status: LessonStatus,
    pub status_reason: Option<String>,
    /// As-of time of the first activation; never reset.
    pub created_at: Option<Timestamp>,
    /// As-of time of the last run whose fresh trades re-confirmed the lesson (its first
    /// activation, a re-activation, or a run whose trades since the previous confirmation still
    /// show the effect). Decay counts the lesson's age from here.
    pub confirmed_at: Option<Timestamp>,
    /// The subset's trade count and mean R at `confirmed_at`: the trades after it are the fresh
    /// ones the next confirmation looks at.
    pub confirmed_n_trades: Option<u64>,
    pub confirmed_mean_rr: Option<f64>,
    /// Consecutive runs (distinct as-of times) in which the active lesson failed a test.
    pub failed_runs: u32,
    pub updated_at: Timestamp,
}

/// One tested subset of the last run, with its verdict.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CandidateRow {
    pub module: String,
    pub pattern_key: String,
    pub category: ActionCategory,
    pub scope_mask: u64,
    pub scope_values_hash: u64,
    pub scope_values: String,
    pub n_trades: u64,
    pub mean_rr: f64,
    pub edge: f64,
    pub shrunk_edge: Option<f64>,
    pub t_stat: Option<f64>,
    pub p_value: Option<f64>,
    pub q_value: Option<f64>,
    /// The nearest parent (smallest improvement in the edge's direction), for the incremental test.
    pub parent_scope_values: Option<String>,
    pub parent_mean_rr: Option<f64>,
    /// Smallest improvement over any parent, in the edge's direction (R).
    pub min_parent_gap: Option<f64>,
    pub incremental_p_value: Option<f64>,
    pub incremental_q_value: Option<f64>,
    /// `lesson`, `candidate` (passed but over the per-pattern limit) or `rejected`.
    pub verdict: String,
    pub reason: String,
    pub lesson_key: String,
    pub as_of: Timestamp,
    /// Distinct time clusters of the subset's trades.
    pub clusters: Option<u32>,
    /// Smallest number of trades in the rest of a parent (the root: in the rest of the module).
    pub complement_trades: Option<u64>,
    /// `within` or `between` clusters: the contrast behind the p-value.
    pub contrast: Option<String>,
    pub contrast_df: Option<f64>,
    /// The hypothesis' weight in the run's weighted-BH family (its q is of p / weight).
    pub fdr_weight: Option<f64>,
}

/// One point of a lesson's `learning_edge_history`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EdgePoint {
    /// The run's as-of time.
    pub as_of: Timestamp,
    /// Raw edge against the lesson's baseline.
    pub edge: f64,
    /// Shrunk edge (what the levers use).
    pub shrunk_edge: f64,
    /// Trades behind the point.
    pub n_trades: u64,
}

/// A `learning_latent_factors` row: lessons whose trade sets overlap, merged as one override.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct FactorRow {
    pub factor_id: String,
    pub members: Vec<String>,
    pub representative: String,
    /// JSON array of {a, b, jaccard} pairs at or above the threshold.
    pub jaccard: String,
    pub updated_at: Timestamp,
}

/// One lesson's state at one replay step.
#[derive(Debug, Clone, PartialEq)]
pub struct EvolutionRow<'a> {
    pub as_of: &'a str,
    pub lesson_key: &'a str,
    pub status: LessonStatus,
    pub edge: Option<f64>,
    pub q_value: Option<f64>,
    pub half_life_hours: Option<f64>,
    pub size_mult: Option<f64>,
}
