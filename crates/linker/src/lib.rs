//! The first stage: strands in (`ingest`), normalised into typed rows (`normalize`), and every
//! action linked to the closed trade cycle it belonged to (`link`), producing `trade_events`.
#![warn(missing_docs)]

pub mod ingest;
#[cfg(feature = "postgres")]
pub mod ingest_pg;
pub mod link;
pub mod normalize;

pub use ingest::{ingest_adapted, ingest_lines, AdaptedRecord, IngestReport, UndecodableLine};
pub use link::{link, LinkOptions, LinkReport};
pub use normalize::{normalize_new, NormalizeReport};

/// Why ingesting or linking failed.
#[derive(Debug, thiserror::Error)]
pub enum LinkerError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] learnloop_store::StoreError),
    /// PostgreSQL failed.
    #[cfg(feature = "postgres")]
    #[error(transparent)]
    Pg(#[from] learnloop_store::pg::PgError),
    /// The input could not be read.
    #[error("reading input failed at line {line}: {source}")]
    Read {
        /// Line number where reading failed.
        line: u64,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// The result of an ingest or link.
pub type Result<T> = std::result::Result<T, LinkerError>;
