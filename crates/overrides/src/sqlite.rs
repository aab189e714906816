//! Loading the active config row from the learnloop SQLite store (feature `sqlite`).

use crate::error::ConfigError;
use crate::hash::config_checksum;
use crate::snapshot::Overrides;
use rusqlite::{Connection, OpenFlags, OptionalExtension};
use std::path::Path;

/// One `learning_configs` row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigRow {
    /// The module.
    pub module: String,
    /// Version number.
    pub version: i64,
    /// Status text (`active`, …).
    pub status: String,
    /// As-of time of the run that produced it (RFC 3339).
    pub as_of: Option<String>,
    /// The run that wrote it.
    pub run_id: Option<String>,
    /// Wall-clock time the row was written.
    pub created_at: Option<String>,
    /// `config_checksum(config_data)`; required for a row to load.
    pub checksum: Option<String>,
    /// The config JSON.
    pub config_data: String,
}

/// The `status = 'active'` row of `module`; the highest version if several are active.
pub fn read_active_row(conn: &Connection, module: &str) -> Result<ConfigRow, ConfigError> {
    conn.query_row(
        "SELECT module, version, status, as_of, run_id, created_at, checksum, config_data
           FROM learning_configs
          WHERE module = ?1 AND status = 'active'
          ORDER BY version DESC
          LIMIT 1",
        [module],
        |r| {
            Ok(ConfigRow {
                module: r.get(0)?,
                version: r.get(1)?,
                status: r.get(2)?,
                as_of: r.get(3)?,
                run_id: r.get(4)?,
                created_at: r.get(5)?,
                checksum: r.get(6)?,
                config_data: r.get(7)?,
            })
        },
    )
    .optional()?
    .ok_or_else(|| ConfigError::NoActiveConfig {
        module: module.to_string(),
    })
}

impl Overrides {
    /// Build from a row: verifies the checksum and that the row's module and version are the
    /// ones inside `config_data`. A missing or blank checksum is refused, not skipped. The
    /// checksum (FNV-1a 64) detects accidents (truncation, a partial copy, a stray edit); it is
    /// not a signature and cannot stop a deliberate edit by someone who can write the store.
    pub fn from_row(row: &ConfigRow) -> Result<Self, ConfigError> {
        let expected = row
            .checksum
            .as_deref()
            .map(str::trim)
            .filter(|c| !c.is_empty())
            .ok_or_else(|| ConfigError::MissingChecksum {
                module: row.module.clone(),
                version: row.version,
            })?;
        let actual = config_checksum(&row.config_data);
        if !expected.eq_ignore_ascii_case(&actual) {
            return Err(ConfigError::ChecksumMismatch {
                module: row.module.clone(),
                version: row.version,
                expected: expected.to_string(),
                actual,
            });
        }
        let overrides = Self::from_json(&row.config_data)?;
        if overrides.module() != row.module || overrides.version() != row.version {
            return Err(ConfigError::RowMismatch {
                row_module: row.module.clone(),
                row_version: row.version,
                data_module: overrides.module().to_string(),
                data_version: overrides.version(),
            });
        }
        Ok(overrides)
    }

    /// The active config of `module` from an open connection.
    pub fn from_sqlite(conn: &Connection, module: &str) -> Result<Self, ConfigError> {
        Self::from_row(&read_active_row(conn, module)?)
    }

    /// The active config of `module` from a database file, opened read-only.
    pub fn from_sqlite_path(path: impl AsRef<Path>, module: &str) -> Result<Self, ConfigError> {
        Self::from_sqlite(&open_read_only(path)?, module)
    }
}

/// Open a store for reading configs: read-only, so a mistyped path fails instead of creating
/// an empty database.
pub(crate) fn open_read_only(path: impl AsRef<Path>) -> Result<Connection, ConfigError> {
    Ok(Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?)
}
