//! Runtime side of learnloop, embedded in the PM's tick.
//!
//! - [`Lever`] / [`Levers`]: the one lever vocabulary (names, neutral values, bounds) shared with
//!   the lesson builder and the materializer;
//! - [`ConfigData`]: the versioned `config_data` JSON of a `learning_configs` row, with
//!   [`ConfigData::validate`];
//! - [`Overrides`]: one validated, indexed config version; `lookup` returns the blended
//!   [`Decision`] for an action's (pattern, category, scope), `apply` adjusts the action;
//! - [`OverridesHandle`]: the config the PM serves, swapped atomically on reload;
//! - [`DecisionRecord`]: a decision with its explanation, as `learnloop lookup --json` prints it.
//!
//! Lookups do no I/O and, through [`Overrides::lookup_into`], no allocation once warm. Every
//! failure fails open: the PM gets its action back unchanged, with the reason.
//!
//! ```
//! use learnloop_overrides::{OverridesHandle, ActionInput};
//! let handle = OverridesHandle::new();
//! handle.load_json(r#"{
//!   "schema_version": 1, "module": "pm", "version": 7, "as_of": "2024-06-01T00:00:00Z",
//!   "pattern_overrides": [{
//!     "override_id": "ov-1", "pattern_key": "module=pm|pattern_key=uptrend.S2.add",
//!     "action_category": "add", "scope": {"macro_phase": "Good"},
//!     "levers": {"size_mult": 1.2}, "confidence": 0.6, "q_value": 0.02, "n_trades": 40
//!   }]
//! }"#).unwrap();
//! let scope = [("macro_phase", "Good"), ("bucket", "mid")];
//! let applied = handle.apply(&ActionInput {
//!     pattern_key: "module=pm|pattern_key=uptrend.S2.add",
//!     action_category: "add",
//!     decision_type: "add",
//!     scope: &scope,
//!     size_frac: 0.5,
//!     a_value: Some(0.4),
//!     e_value: None,
//! });
//! assert!((applied.size_frac_after - 0.6).abs() < 1e-12);
//! assert_eq!(applied.decision.config_version, Some(7));
//! ```
#![warn(missing_docs)]

mod apply;
mod bins;
mod blend;
mod decision;
mod error;
mod handle;
mod hash;
mod index;
mod levers;
mod record;
mod schema;
mod scope;
mod snapshot;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "synthetic")]
pub mod synthetic;

pub use apply::{ActionInput, AppliedAction, EMERGENCY_EXIT};
pub use bins::{check_edges, edge_text, NumericBins, MAX_BIN_EDGES};
pub use blend::weighted_mean_levers;
pub use decision::{Decision, Match};
pub use error::{ConfigError, ValidationIssue, ValidationIssues};
pub use handle::{OverridesHandle, Reload};
pub use hash::{config_checksum, fnv1a64};
pub use index::{IndexStats, MAX_GROUP_DIMS};
pub use levers::{Lever, Levers};
pub use record::{DecisionRecord, MatchRecord};
pub use schema::{
    confidence_from, is_rfc3339, specificity_weight, ConfigData, FeatureFlags, Override,
    ACTION_CATEGORIES, BUCKET_DIM, CONFIDENCE_PSEUDO_TRADES, CURRENT_SCHEMA_VERSION,
    DEFAULT_SPECIFICITY_ALPHA, REGIME_DIM,
};
pub use scope::{FnScope, ScopeView};
pub use snapshot::Overrides;
#[cfg(feature = "sqlite")]
pub use sqlite::{read_active_row, ConfigRow};
