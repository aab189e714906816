//! `learning_runs`: one row per command that changes derived tables, with its counts and outcome.

use crate::{parsed_column, Result};
use learnloop_model::{RunRecord, Timestamp};
use rusqlite::OptionalExtension;
use rusqlite::{params, Connection};

/// Insert (or replace) a run record.
pub fn insert(conn: &Connection, r: &RunRecord) -> Result<()> {
    conn.execute(
        "INSERT OR REPLACE INTO learning_runs (run_id, command, as_of, started_at, finished_at, status, counts, config, error)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        params![
            r.run_id,
            r.command,
            // Empty when the run failed before resolving its as-of (the column is NOT NULL).
            r.as_of.map(Timestamp::to_rfc3339).unwrap_or_default(),
            r.started_at.to_rfc3339_millis(),
            r.finished_at.map(Timestamp::to_rfc3339_millis),
            r.status.as_str(),
            r.counts.to_string(),
            r.config.as_ref().map(|c| c.to_string()),
            r.error
        ],
    )?;
    Ok(())
}

/// A time column that may be NULL or empty (no time), else RFC 3339 text.
fn optional_timestamp(r: &rusqlite::Row<'_>, idx: usize) -> rusqlite::Result<Option<Timestamp>> {
    match r.get::<_, Option<String>>(idx)?.as_deref() {
        None | Some("") => Ok(None),
        Some(_) => parsed_column(r, idx).map(Some),
    }
}

fn from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunRecord> {
    let counts: String = r.get(6)?;
    let config: Option<String> = r.get(7)?;
    Ok(RunRecord {
        run_id: r.get(0)?,
        command: r.get(1)?,
        as_of: optional_timestamp(r, 2)?,
        started_at: parsed_column(r, 3)?,
        finished_at: optional_timestamp(r, 4)?,
        status: parsed_column(r, 5)?,
        counts: serde_json::from_str(&counts).unwrap_or(serde_json::Value::Null),
        config: config.and_then(|c| serde_json::from_str(&c).ok()),
        error: r.get(8)?,
    })
}

/// The configuration echoed by the latest committed run that built the stored lessons (`run` or
/// `lessons`, ok or rejected by `--strict`, which keeps its results; not a placebo, which is
/// recorded as `… --placebo`), if any: what the stored statistics and verdicts were made with.
pub fn last_learning_config(conn: &Connection) -> Result<Option<serde_json::Value>> {
    let text: Option<Option<String>> = conn
        .query_row(
            "SELECT config FROM learning_runs
             WHERE status IN ('ok', 'rejected') AND command IN ('run', 'lessons')
             ORDER BY started_at DESC, run_id DESC LIMIT 1",
            [],
            |r| r.get(0),
        )
        .optional()?;
    Ok(text.flatten().and_then(|c| serde_json::from_str(&c).ok()))
}

/// The `limit` most recent runs, newest first.
pub fn recent(conn: &Connection, limit: usize) -> Result<Vec<RunRecord>> {
    let mut stmt = conn.prepare(
        "SELECT run_id, command, as_of, started_at, finished_at, status, counts, config, error
         FROM learning_runs ORDER BY started_at DESC, run_id DESC LIMIT ?1",
    )?;
    let rows = stmt
        .query_map([limit as i64], from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
