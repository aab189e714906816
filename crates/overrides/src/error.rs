//! Why a config could not be loaded. Every variant says what to fix; the handle keeps serving
//! the previous config whenever one of these is returned.

use std::fmt;
use std::path::PathBuf;

/// One problem found by [`crate::ConfigData::validate`]: where (override id, field) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationIssue {
    /// `None` for config-level fields.
    pub override_id: Option<String>,
    /// The field, as named in the config schema.
    pub field: String,
    /// What is wrong with it, and what was expected.
    pub problem: String,
}

impl fmt::Display for ValidationIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.override_id {
            Some(id) => write!(f, "override {id:?}: {}: {}", self.field, self.problem),
            None => write!(f, "{}: {}", self.field, self.problem),
        }
    }
}

/// All the issues of one config, reported together so one fix round is enough.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationIssues(pub Vec<ValidationIssue>);

impl fmt::Display for ValidationIssues {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 10;
        for (i, issue) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{issue}")?;
        }
        if self.0.len() > SHOWN {
            write!(f, "; … and {} more", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// Why a config was refused (the handle keeps the previous one).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not JSON, or JSON that does not fit the schema's types.
    #[error("config_data is not valid JSON for the config schema: {0}")]
    Json(#[from] serde_json::Error),

    #[error("config_data has no schema_version (this build reads schema_version {supported})")]
    /// The config names no schema version.
    MissingSchemaVersion {
        /// The version this build reads.
        supported: u32,
    },

    #[error("config_data has schema_version {found}, this build reads only {supported}: upgrade the PM's overrides crate or re-materialize")]
    /// A schema version this build does not read.
    UnsupportedSchemaVersion {
        /// The version in the config.
        found: String,
        /// The version this build reads.
        supported: u32,
    },

    #[error("config_data is invalid ({} issue(s)): {issues}", issues.0.len())]
    /// Values out of their ranges or inconsistent (every issue listed).
    Invalid {
        /// The issues found.
        issues: ValidationIssues,
    },

    #[error("cannot read config file {path}: {source}")]
    /// The config file could not be read.
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },

    #[error("config {module} v{version}: checksum mismatch (row says {expected}, config_data hashes to {actual}); the row is corrupt or was edited by hand")]
    /// The row's checksum does not match its `config_data`.
    ChecksumMismatch {
        /// The row's module.
        module: String,
        /// The row's version.
        version: i64,
        /// The checksum the row carries.
        expected: String,
        /// The checksum of the `config_data` text.
        actual: String,
    },

    #[error("config {module} v{version}: the row has no checksum; a learnloop row always carries one, so it was written or edited by hand (re-run `learnloop materialize` or restore the row)")]
    /// The row carries no checksum.
    MissingChecksum {
        /// The row's module.
        module: String,
        /// The row's version.
        version: i64,
    },

    #[error("config row ({row_module} v{row_version}) disagrees with its config_data ({data_module} v{data_version})")]
    /// The row's module/version differ from those inside its `config_data`.
    RowMismatch {
        /// Module of the row.
        row_module: String,
        /// Version of the row.
        row_version: i64,
        /// Module inside `config_data`.
        data_module: String,
        /// Version inside `config_data`.
        data_version: i64,
    },

    #[error("no active learning config for module {module:?}")]
    /// The store has no active version for the module.
    NoActiveConfig {
        /// The module asked for.
        module: String,
    },

    /// Reading `learning_configs` failed.
    #[cfg(feature = "sqlite")]
    #[error("cannot read learning_configs: {0}")]
    Sqlite(#[from] rusqlite::Error),
}

impl ConfigError {
    /// The validation issues, when that is what went wrong.
    pub fn issues(&self) -> &[ValidationIssue] {
        match self {
            Self::Invalid { issues } => &issues.0,
            _ => &[],
        }
    }
}
