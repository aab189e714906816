//! Aggregation (SPEC §3, §12): for every (module, pattern, category) and every subset of an
//! action's present dimensions that the lesson stage can test, outcome statistics with one
//! observation per trade.
//!
//! The engine enumerates subsets depth-first, adding dimensions in name order (so that each row's
//! scope key is its parent's plus one pair; masks stay by dimension index), and
//! partitions the observations by value at each step. [`Limits`] says what is kept: by default a
//! k-dim subset is stored when it has the minimum support of its size and expanded when it has that
//! of the next size; every subset below is a refinement with at most as many trades (Apriori), so
//! pruning never changes a stored row nor drops one the lesson stage tests (docs/scale.md). By
//! default the enumeration stops at two dims: the lesson stage computes deeper subsets itself,
//! under its discoveries, and [`store_tested_deep_subsets`] adds the ones it tested. With
//! `store_min_trades` set, every depth; with `k_max` set, the exhaustive enumeration up to k_max
//! dims with a flat `store_min_trades`.
//!
//! State between runs is `trade_events` itself (SPEC §3 allows recomputation from it): each run
//! folds every linked trade in the canonical order (exit time, trade key), so an incremental run,
//! a `--rebuild` and a run over the same data ingested in halves give bit-identical rows.
#![warn(missing_docs)]

pub mod breakdown;
mod deep;
mod engine;
pub mod incremental;
mod prepare;
mod prepare_stored;
pub mod stage;

pub use deep::store_tested_deep_subsets;
pub use engine::{
    compute, compute_each, compute_each_after, compute_each_annotated_after,
    exploded_subset_updates, AggregateCounters, ComputeOutput, GroupRows, Limits, SubsetRow,
    SubsetRowRef,
};
pub use incremental::{IncrementalAggregator, StepReport};
pub use prepare::{Group, PrepareError, Prepared};
pub use stage::{aggregate, aggregate_with_progress, AggregateOptions, AggregateReport};

/// Why the aggregate stage failed.
#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    /// Reading or writing the store failed.
    #[error(transparent)]
    Store(#[from] learnloop_store::StoreError),
    /// The stored events cannot be prepared.
    #[error(transparent)]
    Prepare(#[from] PrepareError),
}
