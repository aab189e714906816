//! Statistical core of the lesson stage (SPEC §4): pure functions, no I/O, no clock.
//!
//! - [`t_tests`]: one-sample t against the baseline; one-sided Welch of a subset against its
//!   parent's complement; the exact complement of a subset inside its parent.
//! - [`fdr`]: Benjamini–Hochberg q-values over the whole family of a run.
//! - [`shrinkage`]: empirical-Bayes τ² from sibling means, and the shrunk mean.
//! - [`half_life`]: half-life of an edge from its history (OLS of ln|edge| on time).
//! - [`factors`]: latent factors by Jaccard single linkage, with stable ids.
//! - [`selection`]: simplest-first selection per (pattern, category).
//! - [`placebo`]: the seeded same-day shuffle of R.

pub mod factors;
pub mod fdr;
pub mod half_life;
pub mod placebo;
pub mod selection;
pub mod shrinkage;
pub mod t_tests;

pub use factors::{
    assign_factor_ids, cluster_by_jaccard, fresh_factor_id, jaccard_sorted, Factor, JaccardPair,
    LessonTrades,
};
pub use fdr::{benjamini_hochberg, count_discoveries};
pub use half_life::fit_half_life;
pub use placebo::placebo_shuffle;
pub use selection::{select_simplest, SelectionCandidate};
pub use shrinkage::{estimate_tau2, shrink, shrink_weight, SiblingMean};
pub use t_tests::{
    complement_stats, one_sample_t, student_t_sf, welch_one_sided, TTest, WelchReference, WelchTest,
};
pub mod stage;

pub use stage::{
    build_lessons, build_lessons_from, lesson_key, lesson_key_of, InMemory, LatticeMemo,
    LessonError, LessonReport,
};
