//! The placebo transform: see [`learnloop_lesson_builder::shuffle_r_within_clusters`] (the lesson
//! stage applies the same permutation to the trades it tests).

pub use learnloop_lesson_builder::shuffle_r_within_clusters;
