//! Shared vocabulary of learnloop. Pure data and arithmetic: no I/O, no clock.
#![warn(missing_docs)]

pub mod category;
pub mod config;
pub mod config_version;
pub mod dims;
pub mod hash;
pub mod lesson;
pub mod link;
pub mod pattern;
pub mod rng;
pub mod run;
pub mod scope;
pub mod stats;
pub mod stats_rows;
pub mod status;
pub mod stored_integer;
pub mod strand;
pub mod time;

pub use category::ActionCategory;
pub use config::LoopConfig;
pub use config_version::{ConfigInfo, ConfigVersion};
pub use dims::{DimensionList, MAX_DIMS};
pub use lesson::{CandidateRow, EdgePoint, EvolutionRow, FactorRow, LessonRow};
pub use link::{LinkAnomaly, LinkedTrade, TradeEvent};
pub use pattern::PatternKey;
pub use run::RunRecord;
pub use scope::{Scope, ScopeKey};
pub use stats::{OutcomeStats, RunningStats, WeightedStats};
pub use stats_rows::{StatsRow, StatsView};
pub use status::{AnomalyKind, CandidateVerdict, ConfigStatus, LessonStatus, RunStatus};
pub use strand::{PmAction, PositionClose, QuarantineReason, RawStrand, TypedStrand};
pub use time::Timestamp;

/// R is clamped to this magnitude before any statistic (the PM clamps its own R the same way).
pub const R_WINSOR_LIMIT: f64 = 10.0;

/// Winsorize an R multiple to `±R_WINSOR_LIMIT`.
pub fn winsorize_r(r: f64) -> f64 {
    r.clamp(-R_WINSOR_LIMIT, R_WINSOR_LIMIT)
}
