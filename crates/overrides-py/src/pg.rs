//! The active config that `learnloop config publish --to URL` wrote into PostgreSQL, read as the
//! CLI reads it: the URL parsed with libpq's `sslmode` semantics (TLS when it asks), the password
//! taken from the URL or `PGPASSWORD` and never shown (errors name the server by its redacted URL),
//! and the row verified like a SQLite one (checksum, module, version).

use learnloop_overrides as rt;
use learnloop_store::pg::{self, PgTarget, TableName};

/// The table `config publish --to` writes by default.
pub(crate) const DEFAULT_TABLE: &str = "learning_configs";

/// Why a config could not be read from PostgreSQL, with the server named without its password.
pub(crate) struct PgLoadError(String);

impl std::fmt::Display for PgLoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// One connection to the server behind `url`, and where to read.
struct Source {
    target: PgTarget,
    table: TableName,
    client: pg::Client,
}

impl Source {
    fn open(url: &str, table: &str) -> Result<Self, PgLoadError> {
        let target = PgTarget::parse(url)
            .map_err(|e| PgLoadError(e.to_string()))?
            .with_default_password(std::env::var("PGPASSWORD").ok());
        let table = TableName::parse(table).map_err(|e| PgLoadError(e.to_string()))?;
        let client = pg::connect(&target).map_err(|e| PgLoadError(e.to_string()))?;
        Ok(Self {
            target,
            table,
            client,
        })
    }

    fn fail(&self, why: impl std::fmt::Display) -> PgLoadError {
        PgLoadError(format!(
            "{} at {}: {why}",
            self.table.display, self.target.redacted
        ))
    }

    /// The active row of `module`, as the overrides runtime verifies rows.
    fn active_row(&mut self, module: &str) -> Result<rt::ConfigRow, PgLoadError> {
        let row = pg::read_active_config(&mut self.client, &self.table, module)
            .map_err(|e| self.fail(e))?
            .ok_or_else(|| {
                self.fail(rt::ConfigError::NoActiveConfig {
                    module: module.to_string(),
                })
            })?;
        Ok(rt::ConfigRow {
            module: row.module,
            version: row.version,
            status: row.status.to_string(),
            as_of: Some(row.as_of.to_rfc3339()),
            run_id: row.run_id,
            created_at: row.created_at.map(|t| t.to_rfc3339_millis()),
            checksum: Some(row.checksum),
            config_data: row.config_data,
        })
    }
}

/// The active config of `module` in `table` on the server at `url`.
pub(crate) fn load(url: &str, module: &str, table: &str) -> Result<rt::Overrides, PgLoadError> {
    let mut source = Source::open(url, table)?;
    let row = source.active_row(module)?;
    rt::Overrides::from_row(&row).map_err(|e| source.fail(e))
}

/// Swap the active config of `module` into `handle`, unless the active row's (version, checksum)
/// is the config already served: then only that pair is read, so polling is cheap.
pub(crate) fn reload(
    handle: &rt::OverridesHandle,
    url: &str,
    module: &str,
    table: &str,
) -> Result<rt::Reload, PgLoadError> {
    let mut source = Source::open(url, table)?;
    let active = pg::read_active_version(&mut source.client, &source.table, module)
        .map_err(|e| source.fail(e))?;
    if let Some((version, checksum)) = active {
        if handle.is_serving(module, version, &checksum) {
            return Ok(rt::Reload {
                version,
                changed: false,
            });
        }
    }
    let row = source.active_row(module)?;
    handle.load_row(&row).map_err(|e| source.fail(e))
}
