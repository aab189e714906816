//! PostgreSQL as source and sink (SPEC §11.2), behind the cargo feature `postgres`: the desk's
//! `ad_strands` read in created_at order from a watermark, and the active config published into
//! the `learning_configs` table the PM reads. Every statement sent to PostgreSQL lives here.

mod configs;
mod strands;
mod target;

pub use configs::{publish_config, read_active_config, read_active_version, PublishOutcome};
pub use strands::{
    copy_strands_in, create_strands_table, read_strands, ReadFrom, StrandBatch, Watermark,
};
pub use target::{connect, redact_url, PgTarget, TlsPolicy};

pub use postgres::Client;

/// What went wrong talking to PostgreSQL (passwords never appear: URLs are redacted).
#[derive(Debug, thiserror::Error)]
pub enum PgError {
    #[error("bad PostgreSQL URL {url}: {why}")]
    /// The URL does not parse, or names an unknown option.
    Url {
        /// The URL, password redacted.
        url: String,
        /// What is wrong with it.
        why: String,
    },
    /// TLS could not be set up.
    #[error("setting up TLS for {target}: {source}")]
    Tls {
        /// The server (redacted URL).
        target: String,
        /// The TLS error.
        #[source]
        source: native_tls::Error,
    },
    /// The `sslrootcert` file could not be read.
    #[error("reading sslrootcert {path}: {source}")]
    RootCert {
        /// The file.
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The connection failed.
    #[error("cannot connect to {target}: {source}")]
    Connect {
        /// The server (redacted URL).
        target: String,
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },
    /// A statement failed.
    #[error("{what}: {source}")]
    Query {
        /// What was being done.
        what: String,
        /// The driver's error.
        #[source]
        source: postgres::Error,
    },
    #[error("table {table}: {why}")]
    /// The table cannot be used (missing columns, wrong types, …).
    Table {
        /// The table.
        table: String,
        /// What is wrong with it.
        why: String,
    },
    /// The version exists there with another checksum: a different store published it.
    #[error("{table} already holds {module} v{version} with checksum {theirs}, not {ours}: another store published a different config under the same version; refusing to overwrite it")]
    VersionConflict {
        /// The table.
        table: String,
        /// The module.
        module: String,
        /// The version.
        version: i64,
        /// The checksum already in the table.
        theirs: String,
        /// The checksum of the config being published.
        ours: String,
    },
}

/// The result of a PostgreSQL operation.
pub type PgResult<T> = std::result::Result<T, PgError>;

/// Attach a description of what was being done to a PostgreSQL error.
pub(crate) fn query_err(what: impl Into<String>) -> impl FnOnce(postgres::Error) -> PgError {
    let what = what.into();
    move |source| PgError::Query { what, source }
}

/// A table name as given on the command line (`table` or `schema.table`), checked and quoted so
/// that it can be spliced into SQL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// As given, for messages.
    pub display: String,
    /// Double-quoted, for SQL.
    pub quoted: String,
    /// The unqualified name, for deriving index names.
    pub base: String,
}

impl TableName {
    /// Check a `table` or `schema.table` name (identifier characters only) and quote it.
    pub fn parse(name: &str) -> PgResult<Self> {
        let parts: Vec<&str> = name.split('.').collect();
        let valid = |p: &&str| {
            let mut chars = p.chars();
            matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
                && p.len() <= 63
        };
        if parts.len() > 2 || !parts.iter().all(valid) {
            return Err(PgError::Table {
                table: name.to_string(),
                why: "expected a table name or schema.table of letters, digits and _".into(),
            });
        }
        Ok(Self {
            display: name.to_string(),
            quoted: parts
                .iter()
                .map(|p| format!("\"{p}\""))
                .collect::<Vec<_>>()
                .join("."),
            base: parts[parts.len() - 1].to_string(),
        })
    }
}

/// Column name → SQL type (`format_type`) of `table`, or `None` when the table does not exist or
/// the user cannot see it.
pub(crate) fn table_columns(
    client: &mut impl postgres::GenericClient,
    table: &TableName,
) -> PgResult<Option<std::collections::BTreeMap<String, String>>> {
    let exists = client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table.quoted])
        .map_err(query_err(format!("looking up table {}", table.display)))?;
    if !exists.get::<_, bool>(0) {
        return Ok(None);
    }
    let rows = client
        .query(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute
              WHERE attrelid = to_regclass($1) AND attnum > 0 AND NOT attisdropped",
            &[&table.quoted],
        )
        .map_err(query_err(format!(
            "reading the columns of {}",
            table.display
        )))?;
    Ok(Some(rows.iter().map(|r| (r.get(0), r.get(1))).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names_are_checked_and_quoted() {
        let t = TableName::parse("public.ad_strands").unwrap();
        assert_eq!(t.quoted, "\"public\".\"ad_strands\"");
        assert_eq!(t.base, "ad_strands");
        assert_eq!(
            TableName::parse("learning_configs").unwrap().quoted,
            "\"learning_configs\""
        );
        for bad in ["", "a.b.c", "x; DROP TABLE y", "1abc", "a-b", "\"q\""] {
            assert!(TableName::parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
