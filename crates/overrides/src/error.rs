//! Why a config could not be loaded. Every variant says what to fix; the handle keeps serving
//! the previous config whenever one of these is returned.

use std::fmt;
use std::path::PathBuf;

/// One problem found by [`crate::ConfigData::validate`]: where (override id, field) and what.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidationIssue {
    /// `None` for config-level fields.
    pub override_id: Option<String>,
    pub field: String,
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

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config_data is not valid JSON for the config schema: {0}")]
    Json(#[from] serde_json::Error),

    #[error("config_data has no schema_version (this build reads schema_version {supported})")]
    MissingSchemaVersion { supported: u32 },

    #[error("config_data has schema_version {found}, this build reads only {supported}: upgrade the PM's overrides crate or re-materialize")]
    UnsupportedSchemaVersion { found: String, supported: u32 },

    #[error("config_data is invalid ({} issue(s)): {issues}", issues.0.len())]
    Invalid { issues: ValidationIssues },

    #[error("cannot read config file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("config {module} v{version}: checksum mismatch (row says {expected}, config_data hashes to {actual}); the row is corrupt or was edited by hand")]
    ChecksumMismatch {
        module: String,
        version: i64,
        expected: String,
        actual: String,
    },

    #[error("config {module} v{version}: the row has no checksum; a learnloop row always carries one, so it was written or edited by hand (re-run `learnloop materialize` or restore the row)")]
    MissingChecksum { module: String, version: i64 },

    #[error("config row ({row_module} v{row_version}) disagrees with its config_data ({data_module} v{data_version})")]
    RowMismatch {
        row_module: String,
        row_version: i64,
        data_module: String,
        data_version: i64,
    },

    #[error("no active learning config for module {module:?}")]
    NoActiveConfig { module: String },

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
