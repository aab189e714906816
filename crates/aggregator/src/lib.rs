//! Aggregation (SPEC §3): for every (module, pattern, category) and every subset of at most
//! `k_max` of an action's present dimensions, outcome statistics with one observation per trade.
//!
//! The engine enumerates subsets depth-first, adding dimensions in increasing index order, and
//! partitions the observations by value at each step. A subset with fewer than `store_min_trades`
//! trades is neither stored nor expanded: every subset below it in the enumeration is a superset
//! with at most as many trades (Apriori), so pruning never changes a stored row.
//!
//! State between runs is `trade_events` itself (SPEC §3 allows recomputation from it): each run
//! folds every linked trade in the canonical order (exit time, trade key), so an incremental run,
//! a `--rebuild` and a run over the same data ingested in halves give bit-identical rows.

mod engine;
pub mod incremental;
mod prepare;
pub mod stage;

pub use engine::{
    compute, compute_each, exploded_subset_updates, AggregateCounters, ComputeOutput, Limits,
    SubsetRow,
};
pub use incremental::{IncrementalAggregator, StepReport};
pub use prepare::{PrepareError, Prepared};
pub use stage::{aggregate, aggregate_with_progress, AggregateOptions, AggregateReport};

#[derive(Debug, thiserror::Error)]
pub enum AggregateError {
    #[error(transparent)]
    Store(#[from] learnloop_store::StoreError),
    #[error(transparent)]
    Prepare(#[from] PrepareError),
}
