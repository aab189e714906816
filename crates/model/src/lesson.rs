//! The lesson stage's records: lessons with their lifecycle, the candidates a run tested, edge
//! history points, latent factors, and a replay's evolution rows.

use crate::{ActionCategory, CandidateVerdict, LessonStatus, Timestamp};
use learnloop_overrides::Levers;

/// A `learning_lessons` row: a lesson, its figures at the last run, levers and lifecycle.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LessonRow {
    /// Stable key: module, pattern, category and scope values (`lesson_key_of`).
    pub lesson_key: String,
    /// Producing module.
    pub module: String,
    /// The pattern the lesson is about.
    pub pattern_key: String,
    /// The action category it sizes (`action_category` in JSON, as in the table).
    #[serde(rename = "action_category")]
    pub category: ActionCategory,
    /// Bit mask of the scope's dimensions (`DimensionList` order).
    pub scope_mask: u64,
    /// Sorted-key JSON of the subset's `dim: value` pairs.
    pub scope_values: String,
    /// Stable FNV-1a hash of `scope_values` (with the mask, the subset's identity). Serialized
    /// as the store holds it (its bits as a signed 64-bit integer), so that JSON outputs join
    /// with exported tables.
    #[serde(serialize_with = "crate::stored_integer::serialize")]
    pub scope_values_hash: u64,
    /// Trades in the subset at the last run.
    pub n_trades: u64,
    /// Mean winsorized R of those trades.
    pub mean_rr: f64,
    /// Raw edge: the subset's mean R against its baseline (R).
    pub edge: f64,
    /// Edge after empirical-Bayes shrinkage (what the levers use).
    pub shrunk_edge: f64,
    /// t statistic of the lesson's test at the last run.
    pub t_stat: Option<f64>,
    /// Two-sided p-value of that test.
    pub p_value: Option<f64>,
    /// Its weighted-BH q-value within the run's family.
    pub q_value: Option<f64>,
    /// Estimated half-life of the edge, when a significant decline was found.
    pub half_life_hours: Option<f64>,
    /// The latent factor the lesson belongs to, if its trades overlap other lessons'.
    pub latent_factor_id: Option<String>,
    /// Lever values (the `overrides` crate's vocabulary), before decay; stored as a JSON object
    /// of lever name → value.
    pub levers: Levers,
    /// Candidate, active or retired.
    pub status: LessonStatus,
    /// Why the status is what it is (retirement reason, …).
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
    /// The subset's mean R at `confirmed_at`.
    pub confirmed_mean_rr: Option<f64>,
    /// Consecutive runs (distinct as-of times) in which the active lesson failed a test.
    pub failed_runs: u32,
    /// As-of time of the last run that wrote the row.
    pub updated_at: Timestamp,
}

/// One tested subset of the last run, with its verdict.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CandidateRow {
    /// Producing module.
    pub module: String,
    /// The pattern tested.
    pub pattern_key: String,
    /// The action category tested (`action_category` in JSON, as in the table).
    #[serde(rename = "action_category")]
    pub category: ActionCategory,
    /// Bit mask of the subset's dimensions.
    pub scope_mask: u64,
    /// Stable hash of `scope_values`, serialized as the store holds it.
    #[serde(serialize_with = "crate::stored_integer::serialize")]
    pub scope_values_hash: u64,
    /// Sorted-key JSON of the subset's `dim: value` pairs.
    pub scope_values: String,
    /// Trades in the subset.
    pub n_trades: u64,
    /// Mean winsorized R of those trades.
    pub mean_rr: f64,
    /// Raw edge against the rest of the parents (R).
    pub edge: f64,
    /// Edge after shrinkage.
    pub shrunk_edge: Option<f64>,
    /// t statistic of the contrast.
    pub t_stat: Option<f64>,
    /// Two-sided p-value of the hypothesis (intersection–union over the parents).
    pub p_value: Option<f64>,
    /// Weighted-BH q-value within the run's family.
    pub q_value: Option<f64>,
    /// The nearest parent (smallest improvement in the edge's direction), for the incremental test.
    pub parent_scope_values: Option<String>,
    /// Mean R of that parent.
    pub parent_mean_rr: Option<f64>,
    /// Smallest improvement over any parent, in the edge's direction (R).
    pub min_parent_gap: Option<f64>,
    /// p-value of the re-test against the explaining subsets, when one was run.
    pub incremental_p_value: Option<f64>,
    /// q-value of the incremental test (none: the hypothesis is the subset's own test).
    pub incremental_q_value: Option<f64>,
    /// Lesson, candidate (passed but over the per-pattern limit) or rejected.
    pub verdict: CandidateVerdict,
    /// Why: the test or selection rule behind the verdict, in words.
    pub reason: String,
    /// The lesson key the subset would have.
    pub lesson_key: String,
    /// The run's as-of time.
    pub as_of: Timestamp,
    /// Distinct time clusters of the subset's trades.
    pub clusters: Option<u32>,
    /// Smallest number of trades in the rest of a parent (the root: in the rest of the module).
    pub complement_trades: Option<u64>,
    /// `within` or `between` clusters: the contrast behind the p-value.
    pub contrast: Option<String>,
    /// Degrees of freedom of the contrast's t distribution (clusters − 1).
    pub contrast_df: Option<f64>,
    /// The hypothesis' weight in the run's weighted-BH family (its q is of p / weight).
    pub fdr_weight: Option<f64>,
    /// The family behind `q_value`: `first` (roots, one- and two-dim subsets, weighted), `deep`
    /// (a level under discovered parents) or `children` (of discoveries explained away by a
    /// refinement that is no lesson); docs/statistics.md.
    pub fdr_family: Option<String>,
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
    /// Stable id (from the representative's key), so a factor keeps its id across runs.
    pub factor_id: String,
    /// Lesson keys of the members.
    pub members: Vec<String>,
    /// The member whose scope the merged override carries.
    pub representative: String,
    /// JSON array of {a, b, jaccard} pairs at or above the threshold.
    pub jaccard: String,
    /// As-of time of the run that wrote the row.
    pub updated_at: Timestamp,
}

/// One lesson's state at one replay step.
#[derive(Debug, Clone, PartialEq)]
pub struct EvolutionRow<'a> {
    /// The step's as-of time.
    pub as_of: Timestamp,
    /// The lesson.
    pub lesson_key: &'a str,
    /// Its status at that step.
    pub status: LessonStatus,
    /// Shrunk edge at that step, if the lesson was tested.
    pub edge: Option<f64>,
    /// q-value at that step.
    pub q_value: Option<f64>,
    /// Half-life at that step, if estimated.
    pub half_life_hours: Option<f64>,
    /// The size multiplier its override gave at that step, if in the config.
    pub size_mult: Option<f64>,
}
