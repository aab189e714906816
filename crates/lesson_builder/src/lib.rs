//! The lesson stage (SPEC §4) and the parts of its core that are about lessons; the statistics
//! themselves (cluster-robust contrasts, FDR, shrinkage, the placebo permutation) live in the pure
//! crate `learnloop-stats` and are re-exported here.
//!
//! - [`half_life`]: half-life of an edge from its history (OLS of ln|edge| on time).
//! - [`factors`]: latent factors by Jaccard single linkage, with stable ids.
//! - [`selection`]: selection per (pattern, category) by strength of evidence and cover.
//! - [`shuffle`]: the placebo permutation of the trade events' R within time clusters.
//! - [`mod@explain`]: why a subset is or is not a lesson, as the last run decided (`learnloop explain`).
#![warn(missing_docs)]

pub mod explain;
pub mod factors;
pub mod half_life;
pub mod selection;
pub mod shuffle;

pub use explain::{explain, ExplainVerdict, Explanation, ParentFigures};
pub use factors::{
    assign_factor_ids, cluster_by_jaccard, fresh_factor_id, jaccard_sorted, Factor, JaccardPair,
    LessonTrades,
};
pub use half_life::fit_half_life;
pub use selection::{greedy_by_evidence, Bar, Evidence, Outcome};
pub use shuffle::shuffle_r_within_clusters;
pub mod stage;

pub use stage::{
    build_lessons, build_lessons_from, lesson_key, lesson_key_of, InMemory, LatticeMemo,
    LessonError, LessonReport, FIRST_HIERARCHICAL_DIMS,
};
