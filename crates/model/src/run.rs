//! A `learning_runs` row: one per command that changes derived tables.

use crate::RunStatus;

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RunRecord {
    pub run_id: String,
    pub command: String,
    pub as_of: String,
    pub started_at: String,
    pub finished_at: Option<String>,
    pub status: RunStatus,
    pub counts: serde_json::Value,
    pub config: Option<serde_json::Value>,
    pub error: Option<String>,
}
