//! `learning_configs` versions as the loop handles them (the `config_data` text is the
//! `overrides` crate's to parse).

use crate::ConfigStatus;

/// One `learning_configs` row.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigVersion {
    pub module: String,
    pub version: i64,
    pub status: ConfigStatus,
    /// RFC 3339 as-of time of the run that produced it.
    pub as_of: String,
    pub run_id: Option<String>,
    /// Wall-clock time the row was written (RFC 3339).
    pub created_at: String,
    /// `overrides::config_checksum(config_data)`.
    pub checksum: String,
    pub config_data: String,
}

/// A version without its `config_data`, for listings.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ConfigInfo {
    pub module: String,
    pub version: i64,
    pub status: ConfigStatus,
    pub as_of: String,
    pub run_id: Option<String>,
    pub created_at: String,
    pub checksum: String,
    /// Number of overrides (both lists); `None` when `config_data` is not valid JSON.
    pub overrides: Option<i64>,
    /// Length of `config_data` in bytes.
    pub bytes: i64,
}
