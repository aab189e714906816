//! `learning_lessons`, `lesson_candidates`, `learning_edge_history`, `learning_latent_factors`.

use crate::stats::GroupKey;
use crate::{parse_ts, parsed_column, u64_from_sql, u64_to_sql, Result, StoreError};
use learnloop_model::{
    ActionCategory, CandidateRow, EdgePoint, EvolutionRow, FactorRow, LessonRow, Timestamp,
};
use learnloop_overrides::Levers;
use rusqlite::{params, Connection, OptionalExtension, Row};

const LESSON_COLUMNS: &str = "lesson_key, module, pattern_key, action_category, scope_mask, scope_values,
    scope_values_hash, n_trades, mean_rr, edge, shrunk_edge, t_stat, p_value, q_value, half_life_hours,
    latent_factor_id, levers, status, status_reason, created_at, updated_at, confirmed_at,
    confirmed_n_trades, confirmed_mean_rr, failed_runs";

/// The `levers` column: a JSON object of the overrides crate's lever names (a misspelt lever is
/// refused there rather than silently lost).
fn levers_column(r: &Row<'_>, lesson_key: &str) -> rusqlite::Result<Levers> {
    let text: String = r.get(16)?;
    serde_json::from_str(&text).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(
            16,
            rusqlite::types::Type::Text,
            format!("lesson {lesson_key}: levers {text:?} are not a lever object of the overrides vocabulary: {e}").into(),
        )
    })
}

fn lesson_from_row(r: &Row<'_>) -> rusqlite::Result<LessonRow> {
    let lesson_key: String = r.get(0)?;
    Ok(LessonRow {
        levers: levers_column(r, &lesson_key)?,
        lesson_key,
        module: r.get(1)?,
        pattern_key: r.get(2)?,
        category: parsed_column(r, 3)?,
        scope_mask: u64_from_sql(r.get(4)?),
        scope_values: r.get(5)?,
        scope_values_hash: u64_from_sql(r.get(6)?),
        n_trades: r.get::<_, i64>(7)? as u64,
        mean_rr: r.get(8)?,
        edge: r.get(9)?,
        shrunk_edge: r.get(10)?,
        t_stat: r.get(11)?,
        p_value: r.get(12)?,
        q_value: r.get(13)?,
        half_life_hours: r.get(14)?,
        latent_factor_id: r.get(15)?,
        status: parsed_column(r, 17)?,
        status_reason: r.get(18)?,
        created_at: parse_ts(r.get(19)?, "created_at")?,
        updated_at: parse_ts(r.get(20)?, "updated_at")?.unwrap_or(Timestamp(0)),
        confirmed_at: parse_ts(r.get(21)?, "confirmed_at")?,
        confirmed_n_trades: r.get::<_, Option<i64>>(22)?.map(|n| n.max(0) as u64),
        confirmed_mean_rr: r.get(23)?,
        failed_runs: r.get::<_, i64>(24)?.clamp(0, i64::from(u32::MAX)) as u32,
    })
}

/// Every lesson ever recorded, by key.
pub fn all_lessons(conn: &Connection) -> Result<Vec<LessonRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {LESSON_COLUMNS} FROM learning_lessons ORDER BY lesson_key"
    ))?;
    let rows = stmt
        .query_map([], lesson_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Active lessons, by key (what the materializer reads).
pub fn active_lessons(conn: &Connection) -> Result<Vec<LessonRow>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {LESSON_COLUMNS} FROM learning_lessons WHERE status = 'active' ORDER BY lesson_key"
    ))?;
    let rows = stmt
        .query_map([], lesson_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The lesson `lesson_key`, if stored.
pub fn lesson(conn: &Connection, lesson_key: &str) -> Result<Option<LessonRow>> {
    Ok(conn
        .query_row(
            &format!("SELECT {LESSON_COLUMNS} FROM learning_lessons WHERE lesson_key = ?1"),
            [lesson_key],
            lesson_from_row,
        )
        .optional()?)
}

/// Insert or replace a lesson.
pub fn upsert_lesson(conn: &Connection, l: &LessonRow) -> Result<()> {
    conn.prepare_cached(&format!(
        "INSERT OR REPLACE INTO learning_lessons ({LESSON_COLUMNS}, scope_dims)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)"
    ))?
    .execute(params![
        l.lesson_key,
        l.module,
        l.pattern_key,
        l.category.as_str(),
        u64_to_sql(l.scope_mask),
        l.scope_values,
        u64_to_sql(l.scope_values_hash),
        l.n_trades as i64,
        l.mean_rr,
        l.edge,
        l.shrunk_edge,
        l.t_stat,
        l.p_value,
        l.q_value,
        l.half_life_hours,
        l.latent_factor_id,
        // A map of finite numbers: serializing cannot fail.
        serde_json::to_string(&l.levers).unwrap_or_default(),
        l.status.as_str(),
        l.status_reason,
        l.created_at.map(|t| t.to_rfc3339()),
        l.updated_at.to_rfc3339(),
        l.confirmed_at.map(|t| t.to_rfc3339()),
        l.confirmed_n_trades.map(|n| n as i64),
        l.confirmed_mean_rr,
        i64::from(l.failed_runs),
        l.scope_mask.count_ones(),
    ])?;
    Ok(())
}

/// The latest as-of at which lessons or a config version were written: what the store has
/// learned up to. `None` for a store that has never learned anything.
///
/// Read by parsing each distinct stored time, not by `MAX` over the text: RFC 3339 texts with
/// and without fractional seconds do not sort as the times they name.
pub fn latest_learned_as_of(conn: &Connection) -> Result<Option<Timestamp>> {
    let mut stmt = conn.prepare(
        "SELECT DISTINCT updated_at FROM learning_lessons
         UNION SELECT DISTINCT as_of FROM learning_configs",
    )?;
    let times = stmt
        .query_map([], |r| parse_ts(r.get(0)?, "learned as-of"))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(times.into_iter().flatten().max())
}

const LESSON_STAGE_AS_OF_KEY: &str = "lesson_stage_as_of_ms";

/// Record the as-of time of the lesson stage that just ran (what a later materialize reads).
pub fn set_lesson_stage_as_of(conn: &Connection, as_of: Timestamp) -> Result<()> {
    crate::meta::set(conn, LESSON_STAGE_AS_OF_KEY, &as_of.millis().to_string())
}

/// The as-of time of the last lesson stage (`None` before the first one, or in a store written
/// before it was recorded).
pub fn lesson_stage_as_of(conn: &Connection) -> Result<Option<Timestamp>> {
    Ok(crate::meta::get_i64(conn, LESSON_STAGE_AS_OF_KEY)?.map(Timestamp))
}

/// Forget every lesson, its edge history and the factors (a placebo run starts from nothing;
/// the caller's transaction is rolled back afterwards).
pub fn forget_all_lessons(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "DELETE FROM learning_lessons; DELETE FROM learning_edge_history;
         DELETE FROM learning_latent_factors;",
    )?;
    Ok(())
}

const CANDIDATE_COLUMNS: &str = "module, pattern_key, action_category, scope_mask, scope_values_hash, scope_values,
    scope_dims, n_trades, mean_rr, edge, shrunk_edge, t_stat, p_value, q_value, parent_scope_values, parent_mean_rr,
    min_parent_gap, incremental_p_value, incremental_q_value, verdict, reason, lesson_key, as_of, clusters,
    complement_trades, contrast, contrast_df, fdr_weight, fdr_family";

/// Replace the candidates of the previous run with these (sorted by key).
pub fn replace_candidates(conn: &Connection, rows: &[CandidateRow]) -> Result<()> {
    clear_candidates(conn)?;
    insert_candidates(conn, rows)
}

/// Delete the candidates of the previous run (a run replacing them then inserts its own in
/// chunks, [`insert_candidates`], inside the same transaction).
pub fn clear_candidates(conn: &Connection) -> Result<()> {
    conn.execute("DELETE FROM lesson_candidates", [])?;
    Ok(())
}

/// Add candidates (after [`clear_candidates`]; a run's millions of candidate rows are built and
/// written a chunk at a time, never all held at once).
pub fn insert_candidates(conn: &Connection, rows: &[CandidateRow]) -> Result<()> {
    let mut stmt = conn.prepare_cached(&format!(
        "INSERT INTO lesson_candidates ({CANDIDATE_COLUMNS})
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23,
                 ?24, ?25, ?26, ?27, ?28, ?29)"
    ))?;
    let mut as_of_text = (i64::MIN, String::new());
    for c in rows {
        if as_of_text.0 != c.as_of.millis() {
            as_of_text = (c.as_of.millis(), c.as_of.to_rfc3339());
        }
        stmt.execute(params![
            c.module,
            c.pattern_key,
            c.category.as_str(),
            u64_to_sql(c.scope_mask),
            u64_to_sql(c.scope_values_hash),
            c.scope_values,
            c.scope_mask.count_ones(),
            c.n_trades as i64,
            c.mean_rr,
            c.edge,
            c.shrunk_edge,
            c.t_stat,
            c.p_value,
            c.q_value,
            c.parent_scope_values,
            c.parent_mean_rr,
            c.min_parent_gap,
            c.incremental_p_value,
            c.incremental_q_value,
            c.verdict.as_str(),
            c.reason,
            c.lesson_key,
            as_of_text.1,
            c.clusters,
            c.complement_trades.map(|n| n as i64),
            c.contrast,
            c.contrast_df,
            c.fdr_weight,
            c.fdr_family,
        ])?;
    }
    Ok(())
}

/// The group and scope text of every subset of more than `dims` dims the last run tested, in key
/// order (the deep subsets the lesson stage computed itself: SPEC §12), but those with the same
/// trades as a simpler subset (stored once, as that one).
pub fn candidate_scopes_deeper_than(
    conn: &Connection,
    dims: u32,
) -> Result<Vec<(String, String, ActionCategory, String)>> {
    let mut stmt = conn.prepare(
        "SELECT module, pattern_key, action_category, scope_values FROM lesson_candidates
         WHERE scope_dims > ?1 AND reason NOT LIKE 'duplicate:%'
         ORDER BY module, pattern_key, action_category, scope_values",
    )?;
    let rows = stmt.query_map([dims], |r| {
        Ok((r.get(0)?, r.get(1)?, parsed_column(r, 2)?, r.get(3)?))
    })?;
    Ok(rows.collect::<rusqlite::Result<Vec<_>>>()?)
}

/// The last run's test of one subset, if it was tested.
pub fn candidate(
    conn: &Connection,
    group: GroupKey<'_>,
    scope_mask: u64,
    scope_values_hash: u64,
) -> Result<Option<CandidateRow>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {CANDIDATE_COLUMNS} FROM lesson_candidates WHERE module = ?1 AND pattern_key = ?2
                 AND action_category = ?3 AND scope_mask = ?4 AND scope_values_hash = ?5"
            ),
            params![group.module, group.pattern_key, group.category.as_str(), u64_to_sql(scope_mask), u64_to_sql(scope_values_hash)],
            |r| {
                Ok(CandidateRow {
                    module: r.get(0)?,
                    pattern_key: r.get(1)?,
                    category: parsed_column(r, 2)?,
                    scope_mask: u64_from_sql(r.get(3)?),
                    scope_values_hash: u64_from_sql(r.get(4)?),
                    scope_values: r.get(5)?,
                    n_trades: r.get::<_, i64>(7)? as u64,
                    mean_rr: r.get(8)?,
                    edge: r.get(9)?,
                    shrunk_edge: r.get(10)?,
                    t_stat: r.get(11)?,
                    p_value: r.get(12)?,
                    q_value: r.get(13)?,
                    parent_scope_values: r.get(14)?,
                    parent_mean_rr: r.get(15)?,
                    min_parent_gap: r.get(16)?,
                    incremental_p_value: r.get(17)?,
                    incremental_q_value: r.get(18)?,
                    verdict: parsed_column(r, 19)?,
                    reason: r.get(20)?,
                    lesson_key: r.get(21)?,
                    as_of: parse_ts(r.get(22)?, "as_of")?.unwrap_or(Timestamp(0)),
                    clusters: r.get(23)?,
                    complement_trades: r.get::<_, Option<i64>>(24)?.map(|n| n as u64),
                    contrast: r.get(25)?,
                    contrast_df: r.get(26)?,
                    fdr_weight: r.get(27)?,
                    fdr_family: r.get(28)?,
                })
            },
        )
        .optional()?)
}

/// Record a lesson's edge as of a run; re-running the same as-of replaces the point (idempotent).
pub fn record_edge(
    conn: &Connection,
    lesson_key: &str,
    as_of: Timestamp,
    edge: f64,
    shrunk_edge: f64,
    n_trades: u64,
) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO learning_edge_history (lesson_key, as_of, as_of_ms, edge, shrunk_edge, n_trades)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![lesson_key, as_of.to_rfc3339(), as_of.millis(), edge, shrunk_edge, n_trades as i64])?;
    Ok(())
}

/// A lesson's (as-of, shrunk edge) points up to and including `as_of`, oldest first.
pub fn edge_history(
    conn: &Connection,
    lesson_key: &str,
    as_of: Timestamp,
) -> Result<Vec<(Timestamp, f64)>> {
    let mut stmt = conn.prepare_cached(
        "SELECT as_of_ms, shrunk_edge FROM learning_edge_history WHERE lesson_key = ?1 AND as_of_ms <= ?2
         ORDER BY as_of_ms",
    )?;
    let rows = stmt
        .query_map(params![lesson_key, as_of.millis()], |r| {
            Ok((Timestamp(r.get(0)?), r.get(1)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Every recorded point of a lesson's edge, oldest first.
pub fn edge_points(conn: &Connection, lesson_key: &str) -> Result<Vec<EdgePoint>> {
    let mut stmt = conn.prepare_cached(
        "SELECT as_of_ms, edge, shrunk_edge, n_trades FROM learning_edge_history WHERE lesson_key = ?1
         ORDER BY as_of_ms",
    )?;
    let rows = stmt
        .query_map(params![lesson_key], |r| {
            Ok(EdgePoint {
                as_of: Timestamp(r.get(0)?),
                edge: r.get(1)?,
                shrunk_edge: r.get(2)?,
                n_trades: r.get::<_, i64>(3)?.max(0) as u64,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Every latent factor.
pub fn factors(conn: &Connection) -> Result<Vec<FactorRow>> {
    let mut stmt = conn.prepare(
        "SELECT factor_id, members, representative, jaccard, updated_at FROM learning_latent_factors ORDER BY factor_id",
    )?;
    let rows = stmt
        .query_map([], |r| {
            let members: String = r.get(1)?;
            Ok((
                r.get::<_, String>(0)?,
                members,
                r.get(2)?,
                r.get(3)?,
                r.get::<_, String>(4)?,
            ))
        })?
        .map(|row| {
            let (factor_id, members, representative, jaccard, updated_at) = row?;
            Ok(FactorRow {
                members: serde_json::from_str(&members).map_err(|e| {
                    StoreError::Corrupt(format!("learning_latent_factors {factor_id}: {e}"))
                })?,
                factor_id,
                representative,
                jaccard,
                updated_at: Timestamp::parse(&updated_at).unwrap_or(Timestamp(0)),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(rows)
}

/// Replace every latent factor with `rows`.
pub fn replace_factors(conn: &Connection, rows: &[FactorRow]) -> Result<()> {
    conn.execute("DELETE FROM learning_latent_factors", [])?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO learning_latent_factors (factor_id, members, representative, jaccard, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for f in rows {
        stmt.execute(params![
            f.factor_id,
            serde_json::to_string(&f.members).unwrap_or_default(),
            f.representative,
            f.jaccard,
            f.updated_at.to_rfc3339()
        ])?;
    }
    Ok(())
}

/// Set (or clear) the factor a lesson belongs to.
pub fn set_lesson_factor(
    conn: &Connection,
    lesson_key: &str,
    factor_id: Option<&str>,
) -> Result<()> {
    conn.prepare_cached("UPDATE learning_lessons SET latent_factor_id = ?2 WHERE lesson_key = ?1")?
        .execute(params![lesson_key, factor_id])?;
    Ok(())
}

/// Replace a replay's rows in `lesson_evolution` (re-running the same replay is idempotent).
pub fn replace_evolution(
    conn: &Connection,
    replay_id: &str,
    rows: &[EvolutionRow<'_>],
) -> Result<()> {
    conn.execute(
        "DELETE FROM lesson_evolution WHERE replay_id = ?1",
        [replay_id],
    )?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO lesson_evolution (replay_id, as_of, lesson_key, status, edge, q_value, half_life_hours, size_mult)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
    )?;
    for r in rows {
        stmt.execute(params![
            replay_id,
            r.as_of.to_rfc3339(),
            r.lesson_key,
            r.status.as_str(),
            r.edge,
            r.q_value,
            r.half_life_hours,
            r.size_mult
        ])?;
    }
    Ok(())
}

/// Lessons by status.
pub fn status_counts(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn
        .prepare("SELECT status, COUNT(*) FROM learning_lessons GROUP BY status ORDER BY status")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}
