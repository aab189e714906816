//! Adapters: other bots' decision logs as strands (SPEC §11.3).
//!
//! An adapter file (JSON, see docs/adapters.md) says which records are decisions and which are
//! outcomes, and where each strand field comes from: ids, times, a pattern-key template such as
//! `{strategy}.{entry_timing}.{side}`, the category (with a value map), the R multiple, and the
//! scope dimensions — categorical fields as they are, numeric fields cut into bins whose edges are
//! fixed in the adapter or learned as quantiles once and then frozen.
//!
//! Pure: the caller reads the files ([`split_records`] cuts their text into records), loads and
//! stores the frozen edges ([`Adapter::bins_to_freeze`]), and stores the strands
//! [`Adapter::to_strand`] makes, which then pass the native validation, linking and everything
//! after it unchanged.
#![warn(missing_docs)]

mod bins;
mod input;
mod record;
mod spec;
mod template;

pub use bins::{bin_set, quantile_edges, BinSet, NewBins, MIN_VALUES_PER_QUANTILE_BIN};
pub use input::{
    is_json_document, record_of_line, records_of_document, split_records, InputRecord,
};
pub use spec::{Adapter, BinsText, MAX_QUANTILE_BINS};
pub use template::Template;

/// Why an adapter cannot be used (a usage error: nothing was ingested).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdapterError {
    #[error("adapter {what}: {problem}")]
    /// The adapter file is invalid.
    Spec {
        /// The part of the file (a field path).
        what: String,
        /// What is wrong and what was expected.
        problem: String,
    },
    /// The adapter's edges for a dimension differ from the bins frozen in the store.
    #[error("bins of {dim} were frozen as {stored:?}, the adapter now declares {declared:?}: stored labels would change meaning; name a new dimension for new edges")]
    EdgesChanged {
        /// The dimension.
        dim: String,
        /// The edges frozen in the store.
        stored: Vec<f64>,
        /// The edges the adapter declares.
        declared: Vec<f64>,
    },
    #[error("cannot learn the quantile bins of {dim}: {why}")]
    /// The first batch cannot give quantile bins (too few distinct values, …).
    CannotLearnBins {
        /// The dimension.
        dim: String,
        /// Why not.
        why: String,
    },
}

impl AdapterError {
    pub(crate) fn spec(what: &str, problem: impl std::fmt::Display) -> Self {
        Self::Spec {
            what: what.to_string(),
            problem: problem.to_string(),
        }
    }
}
