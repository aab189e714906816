/// Why a store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database file could not be opened.
    #[error("cannot open database {path}: {source}")]
    Open {
        /// The file.
        path: String,
        /// SQLite's error.
        #[source]
        source: rusqlite::Error,
    },
    /// A command that never creates a store (a read-only one, `config activate`, `replay`) found
    /// none at the path.
    #[error(
        "no learnloop store at {0} (this command does not create one; check --db or LEARNLOOP_DB)"
    )]
    NotFound(String),
    #[error("{path} is not a learnloop store: {why}")]
    /// The file is a database, but not a learnloop store.
    NotAStore {
        /// The file.
        path: String,
        /// What gave it away.
        why: String,
    },
    #[error("database schema version {found} is older than this learnloop's ({supported}); run a writing command (e.g. `learnloop run`) once to upgrade it")]
    /// A read-only command found a store of an older schema.
    SchemaTooOld {
        /// The store's schema version.
        found: i64,
        /// This build's.
        supported: i64,
    },
    /// A statement failed.
    #[error("database error: {0}")]
    Sql(#[from] rusqlite::Error),
    #[error("database schema version {found} is newer than this learnloop understands ({supported}); upgrade learnloop")]
    /// The store was written by a newer learnloop.
    SchemaTooNew {
        /// The store's schema version.
        found: i64,
        /// This build's.
        supported: i64,
    },
    /// Writing an export failed.
    #[error("writing the export failed: {0}")]
    Io(#[from] std::io::Error),
    /// A stored value does not parse (the row and column are named).
    #[error("stored row is corrupt: {0}")]
    Corrupt(String),
    /// A caller broke a contract of the store's API (a bug in learnloop, not in the data).
    #[error("learnloop misused its store: {0}")]
    Misuse(String),
    /// `export` of a table it does not know (the name, then the known ones).
    #[error("unknown table {0:?}: expected one of {1}")]
    UnknownTable(String, String),
}
