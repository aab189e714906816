//! A `learning_runs` row: one per command that changes derived tables.

use crate::time::wall_clock;
use crate::{RunStatus, Timestamp};

/// One `learning_runs` row: a command that changed derived tables, with its counts and outcome.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRecord {
    /// Unique id: `run-` + start time + process id.
    pub run_id: String,
    /// The command (`run`, `materialize`, …).
    pub command: String,
    /// The as-of time the run resolved; `None` when it failed before resolving one.
    pub as_of: Option<Timestamp>,
    /// Wall-clock start.
    #[serde(serialize_with = "wall_clock::serialize")]
    pub started_at: Timestamp,
    /// Wall-clock end; `None` while running (or after a crash).
    #[serde(serialize_with = "wall_clock::serialize_option")]
    pub finished_at: Option<Timestamp>,
    /// Ok, rejected or failed.
    pub status: RunStatus,
    /// What the run did: its summary as JSON (stage counts, timings).
    pub counts: serde_json::Value,
    /// The effective configuration, echoed.
    pub config: Option<serde_json::Value>,
    /// The error, for a failed run.
    pub error: Option<String>,
}
