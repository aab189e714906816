//! The statistics of the lesson stage (SPEC §4): pure functions, no I/O, no clock, no store.
//!
//! - [`cluster`]: contrasts of two disjoint samples with cluster-robust (CR1) standard errors over
//!   time clusters, within-cluster (fixed effects) or between clusters, and t(G − 1) tails.
//! - [`means`]: Student's t tails via `sf`, the one-sample and Welch tests, exact complements.
//! - [`fdr`]: Benjamini–Hochberg q-values over the whole family of a run.
//! - [`shrinkage`]: empirical-Bayes τ² from sibling means, and the shrunk mean.
//! - [`placebo`]: the seeded permutation of R within time clusters.
#![warn(missing_docs)]

pub mod cluster;
pub mod fdr;
pub mod means;
pub mod placebo;
pub mod shrinkage;

pub use cluster::{cluster_contrast, time_cluster, ClusterCell, Contrast, ContrastKind};
pub use fdr::{
    benjamini_hochberg, choose_independent_filter, count_discoveries, equal_share_weights,
    rejection_threshold, simes, weighted_benjamini_hochberg, weighted_p, FilterChoice,
};
pub use means::{
    complement_stats, one_sample_t, student_t_sf, welch_one_sided, TTest, WelchReference, WelchTest,
};
pub use placebo::placebo_shuffle;
pub use shrinkage::{estimate_tau2, shrink, shrink_weight, SiblingMean};
