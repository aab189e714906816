#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot open database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: rusqlite::Error,
    },
    #[error("no learnloop store at {0} (a read-only command does not create one; check --db or LEARNLOOP_DB)")]
    NotFound(String),
    #[error("{path} is not a learnloop store: {why}")]
    NotAStore { path: String, why: String },
    #[error("database schema version {found} is older than this learnloop's ({supported}); run a writing command (e.g. `learnloop run`) once to upgrade it")]
    SchemaTooOld { found: i64, supported: i64 },
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database schema version {found} is newer than this learnloop understands ({supported}); upgrade learnloop")]
    SchemaTooNew { found: i64, supported: i64 },
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    #[error("unknown table {0:?}: expected one of {1}")]
    UnknownTable(String, String),
}
