//! The active config published into the PostgreSQL `learning_configs` table the PM reads: one row
//! per (module, version), at most one `active` per module, changed in one transaction.

use super::{query_err, table_columns, Client, PgError, PgResult, TableName};
use learnloop_model::{ConfigStatus, ConfigVersion, Timestamp};

/// What a publish did.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PublishOutcome {
    /// The table written.
    pub table: String,
    /// The module published.
    pub module: String,
    /// The version published.
    pub version: i64,
    /// Its checksum.
    pub checksum: String,
    /// False when that version was already the active row (nothing was written).
    pub changed: bool,
    /// The table did not exist and was created.
    pub created_table: bool,
    /// Versions that were active before and are now `superseded`.
    pub superseded: Vec<i64>,
}

/// Columns the publish writes; `run_id`, `created_at` and `config_text` are written when present.
const REQUIRED: [&str; 7] = [
    "module",
    "version",
    "status",
    "as_of",
    "checksum",
    "config_data",
    "updated_at",
];

fn create_sql(table: &TableName) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {t} (
             module text NOT NULL,
             version bigint NOT NULL,
             status text NOT NULL,
             as_of timestamptz NOT NULL,
             run_id text,
             created_at timestamptz,
             checksum text NOT NULL,
             config_data jsonb NOT NULL,
             config_text text,
             updated_at timestamptz NOT NULL DEFAULT now(),
             PRIMARY KEY (module, version)
         );
         CREATE UNIQUE INDEX IF NOT EXISTS \"{b}_one_active\" ON {t} (module) WHERE status = 'active';
         COMMENT ON COLUMN {t}.config_text IS
             'config_data exactly as learnloop wrote it: checksum is FNV-1a 64 of this text (jsonb reorders keys)';",
        t = table.quoted,
        b = table.base
    )
}

/// Make `v` the active row of its module in `table`: created when absent, the previously active
/// rows superseded, in one transaction that holds a lock excluding other publishers (readers go
/// on and see the old active row or the new one, never both or neither). Publishing the active
/// version again writes nothing. A row of the same version with another checksum is an error.
pub fn publish_config(
    client: &mut Client,
    table: &TableName,
    v: &ConfigVersion,
) -> PgResult<PublishOutcome> {
    let doing = |what: &str| query_err(format!("{what} {}", table.display));
    let mut tx = client.transaction().map_err(doing("publishing to"))?;
    // Publishers of one table take turns from the start: two creating a missing table at once
    // would otherwise race in the catalog (CREATE TABLE IF NOT EXISTS is not safe against that).
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext($1))",
        &[&format!("learnloop publish {}", table.display)],
    )
    .map_err(doing("waiting for other publishers of"))?;
    let mut created_table = false;
    let columns = match table_columns(&mut tx, table)? {
        Some(columns) => columns,
        None => {
            tx.batch_execute(&create_sql(table))
                .map_err(doing("creating"))?;
            created_table = true;
            table_columns(&mut tx, table)?.unwrap_or_default()
        }
    };
    if let Some(absent) = REQUIRED.iter().find(|c| !columns.contains_key(**c)) {
        return Err(PgError::Table {
            table: table.display.clone(),
            why: format!("has no column {absent}: expected {}", REQUIRED.join(", ")),
        });
    }
    tx.batch_execute(&format!(
        "LOCK TABLE {} IN SHARE ROW EXCLUSIVE MODE",
        table.quoted
    ))
    .map_err(doing("locking"))?;
    let t = &table.quoted;
    let existing = tx
        .query_opt(
            &format!("SELECT status, checksum FROM {t} WHERE module = $1 AND version = $2"),
            &[&v.module, &v.version],
        )
        .map_err(doing("reading"))?
        .map(|r| Ok::<_, postgres::Error>((r.try_get::<_, String>(0)?, r.try_get::<_, String>(1)?)))
        .transpose()
        .map_err(|e| PgError::Table {
            table: table.display.clone(),
            why: format!("status and checksum must be text columns: {e}"),
        })?;
    if let Some((_, theirs)) = &existing {
        if !theirs.eq_ignore_ascii_case(&v.checksum) {
            return Err(PgError::VersionConflict {
                table: table.display.clone(),
                module: v.module.clone(),
                version: v.version,
                theirs: theirs.clone(),
                ours: v.checksum.clone(),
            });
        }
    }
    let superseded: Vec<i64> = tx
        .query(
            &format!(
                "UPDATE {t} SET status = 'superseded', updated_at = now()
                  WHERE module = $1 AND status = 'active' AND version <> $2 RETURNING version"
            ),
            &[&v.module, &v.version],
        )
        .map_err(doing("superseding the active row of"))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let already_active =
        matches!(&existing, Some((status, _)) if status == ConfigStatus::Active.as_str());
    let changed = !already_active || !superseded.is_empty();
    if existing.is_some() {
        if !already_active {
            tx.execute(
                &format!(
                    "UPDATE {t} SET status = 'active', updated_at = now() WHERE module = $1 AND version = $2"
                ),
                &[&v.module, &v.version],
            )
            .map_err(doing("activating in"))?;
        }
    } else {
        insert_active(&mut tx, table, &columns, v)?;
    }
    if changed {
        tx.commit().map_err(doing("committing to"))?;
    }
    Ok(PublishOutcome {
        table: table.display.clone(),
        module: v.module.clone(),
        version: v.version,
        checksum: v.checksum.clone(),
        changed,
        created_table,
        superseded,
    })
}

fn insert_active(
    tx: &mut postgres::Transaction<'_>,
    table: &TableName,
    columns: &std::collections::BTreeMap<String, String>,
    v: &ConfigVersion,
) -> PgResult<()> {
    type Param<'a> = &'a (dyn postgres::types::ToSql + Sync);
    let active = ConfigStatus::Active.as_str();
    // Sent as the text the SQLite row holds, cast by the server.
    let as_of = v.as_of.to_rfc3339();
    let created_at = v.created_at.map(Timestamp::to_rfc3339_millis);
    // (column, cast of the text parameter, value); optional columns only when the table has them.
    let all: [(&str, &str, Param<'_>, bool); 9] = [
        ("module", "", &v.module, true),
        ("version", "", &v.version, true),
        ("status", "", &active, true),
        ("as_of", "::text::timestamptz", &as_of, true),
        ("checksum", "", &v.checksum, true),
        ("config_data", "::text::jsonb", &v.config_data, true),
        ("run_id", "::text", &v.run_id, false),
        ("created_at", "::text::timestamptz", &created_at, false),
        ("config_text", "::text", &v.config_data, false),
    ];
    let written: Vec<_> = all
        .into_iter()
        .filter(|(name, _, _, required)| *required || columns.contains_key(*name))
        .collect();
    let names: Vec<&str> = written.iter().map(|w| w.0).collect();
    let values: Vec<String> = written
        .iter()
        .enumerate()
        .map(|(i, w)| format!("${}{}", i + 1, w.1))
        .collect();
    let params: Vec<Param<'_>> = written.iter().map(|w| w.2).collect();
    tx.execute(
        &format!(
            "INSERT INTO {} ({}, updated_at) VALUES ({}, now())",
            table.quoted,
            names.join(", "),
            values.join(", ")
        ),
        &params,
    )
    .map_err(query_err(format!("inserting into {}", table.display)))?;
    Ok(())
}

/// The active row of `module` in `table`, with `config_data` as the exact published text
/// (`config_text` when the table has it, else jsonb's rendering), as the PM reads it; times in
/// RFC 3339 UTC.
pub fn read_active_config(
    client: &mut Client,
    table: &TableName,
    module: &str,
) -> PgResult<Option<ConfigVersion>> {
    let Some(columns) = table_columns(client, table)? else {
        return Ok(None);
    };
    let text = if columns.contains_key("config_text") {
        "COALESCE(config_text, config_data::text)"
    } else {
        "config_data::text"
    };
    let optional = |c: &str| {
        if columns.contains_key(c) {
            c.to_string()
        } else {
            format!(
                "NULL::{}",
                if c == "created_at" {
                    "timestamptz"
                } else {
                    "text"
                }
            )
        }
    };
    let sql = format!(
        "SELECT module, version, status,
                as_of,
                {run_id}, {created_at}, checksum, {text}
           FROM {t} WHERE module = $1 AND status = 'active'",
        run_id = optional("run_id"),
        created_at = optional("created_at"),
        t = table.quoted
    );
    let row = client
        .query_opt(&sql, &[&module])
        .map_err(query_err(format!("reading {}", table.display)))?;
    let timestamp = |t: chrono::DateTime<chrono::Utc>| Timestamp::from_millis(t.timestamp_millis());
    Ok(row.map(|r| ConfigVersion {
        module: r.get(0),
        version: r.get(1),
        // The query selects the active row only.
        status: ConfigStatus::Active,
        as_of: timestamp(r.get(3)),
        run_id: r.get(4),
        created_at: r
            .get::<_, Option<chrono::DateTime<chrono::Utc>>>(5)
            .map(timestamp),
        checksum: r.get(6),
        config_data: r.get(7),
    }))
}

/// (version, checksum) of the active row of `module` in `table`, without its config text: what a
/// PM polling for a new version reads before deciding whether to fetch the whole row. `None` when
/// the table or an active row is absent.
pub fn read_active_version(
    client: &mut Client,
    table: &TableName,
    module: &str,
) -> PgResult<Option<(i64, String)>> {
    let sql = format!(
        "SELECT version, checksum FROM {} WHERE module = $1 AND status = 'active'",
        table.quoted
    );
    match client.query_opt(&sql, &[&module]) {
        Ok(row) => Ok(row.map(|r| (r.get(0), r.get(1)))),
        Err(e) if e.code() == Some(&postgres::error::SqlState::UNDEFINED_TABLE) => Ok(None),
        Err(e) => Err(query_err(format!("reading {}", table.display))(e)),
    }
}
