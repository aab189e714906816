//! `learning_configs` versions as the loop handles them (the `config_data` text is the
//! `overrides` crate's to parse).

use crate::time::wall_clock;
use crate::{ConfigStatus, Timestamp};

/// One `learning_configs` row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigVersion {
    /// The module the config is for (`pm`).
    pub module: String,
    /// Version number, 1 and up per module.
    pub version: i64,
    /// Proposed, active, superseded or rolled back.
    pub status: ConfigStatus,
    /// As-of time of the run that produced it.
    pub as_of: Timestamp,
    /// The `learning_runs` row of the run that wrote it.
    pub run_id: Option<String>,
    /// Wall-clock time the row was written; `None` only for a row read from a PostgreSQL table
    /// without the column.
    #[serde(serialize_with = "wall_clock::serialize_option")]
    pub created_at: Option<Timestamp>,
    /// `overrides::config_checksum(config_data)`.
    pub checksum: String,
    /// The config the PM reads (JSON text, the `overrides` crate's schema).
    pub config_data: String,
}

/// A version without its `config_data`, for listings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigInfo {
    /// The module.
    pub module: String,
    /// Version number.
    pub version: i64,
    /// Its status.
    pub status: ConfigStatus,
    /// As-of time of the run that produced it.
    pub as_of: Timestamp,
    /// The run that wrote it.
    pub run_id: Option<String>,
    /// Wall-clock time the row was written.
    #[serde(serialize_with = "wall_clock::serialize")]
    pub created_at: Timestamp,
    /// `overrides::config_checksum(config_data)`.
    pub checksum: String,
    /// Number of overrides (both lists); `None` when `config_data` is not valid JSON.
    pub overrides: Option<i64>,
    /// Length of `config_data` in bytes.
    pub bytes: i64,
}
