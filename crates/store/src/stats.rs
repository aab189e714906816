//! `pattern_scope_stats`: one row per (module, pattern, category, scope subset).

use crate::{u64_from_sql, u64_to_sql, Result};
use learnloop_model::stats::{OutcomeStats, PresentMean, RunningStats, WeightedStats};
use learnloop_model::{ActionCategory, Timestamp};
use rusqlite::{params, Connection};

#[derive(Debug, Clone, PartialEq)]
pub struct StatsRow {
    pub module: String,
    pub pattern_key: String,
    pub category: ActionCategory,
    pub scope_mask: u64,
    /// Sorted-key JSON object of the subset's `dim: value` pairs.
    pub scope_values: String,
    pub scope_values_hash: u64,
    pub stats: OutcomeStats,
    pub as_of: Timestamp,
}

/// Replace the whole table (the aggregator recomputes every row of a run).
pub fn replace_all(conn: &Connection, rows: &[StatsRow]) -> Result<()> {
    conn.execute("DELETE FROM pattern_scope_stats", [])?;
    let mut stmt = conn.prepare_cached(
        "INSERT INTO pattern_scope_stats (module, pattern_key, action_category, scope_mask, scope_values,
             scope_values_hash, scope_dims, n_trades, n_actions, mean_rr, m2_rr, var_rr, wins, win_rate, sum_pnl,
             mean_hold_days, mean_time_eff, first_exit_at, last_exit_at, dw, dw2, dmean, dm2, d_eff_n, as_of)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,
             ?22, ?23, ?24, ?25)",
    )?;
    // Every row of a run shares its as-of time: format it once, not per row.
    let mut as_of_text = (i64::MIN, String::new());
    for r in rows {
        if as_of_text.0 != r.as_of.millis() {
            as_of_text = (r.as_of.millis(), r.as_of.to_rfc3339());
        }
        let s = &r.stats;
        stmt.execute(params![
            r.module,
            r.pattern_key,
            r.category.as_str(),
            u64_to_sql(r.scope_mask),
            r.scope_values,
            u64_to_sql(r.scope_values_hash),
            r.scope_mask.count_ones(),
            s.r.n as i64,
            s.n_actions as i64,
            s.r.mean,
            s.r.m2,
            s.r.sample_variance(),
            s.wins as i64,
            s.win_rate(),
            s.sum_pnl,
            s.hold_days.mean(),
            s.time_eff.mean(),
            s.first_exit.map(|t| t.to_rfc3339()),
            s.last_exit.map(|t| t.to_rfc3339()),
            s.decayed.w,
            s.decayed.w2,
            s.decayed.mean,
            s.decayed.m2,
            s.decayed.effective_n(),
            as_of_text.1,
        ])?;
    }
    Ok(())
}

/// All rows, ordered by key. Means of hold days and time efficiency come back as single-count
/// means (their counts are not part of the contract), which is all readers need.
pub fn load_all(conn: &Connection) -> Result<Vec<StatsRow>> {
    let mut stmt = conn.prepare(
        "SELECT module, pattern_key, action_category, scope_mask, scope_values, scope_values_hash, n_trades,
                n_actions, mean_rr, m2_rr, wins, sum_pnl, mean_hold_days, mean_time_eff, first_exit_at,
                last_exit_at, dw, dw2, dmean, dm2, as_of
         FROM pattern_scope_stats
         ORDER BY module, pattern_key, action_category, scope_mask, scope_values_hash",
    )?;
    let rows = stmt
        .query_map([], |r| {
            let category: String = r.get(2)?;
            let ts = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
                Ok(r.get::<_, Option<String>>(i)?
                    .and_then(|t| Timestamp::parse(&t).ok()))
            };
            let mean_of = |v: Option<f64>| PresentMean {
                count: u64::from(v.is_some()),
                sum: v.unwrap_or(0.0),
            };
            Ok((
                category,
                StatsRow {
                    module: r.get(0)?,
                    pattern_key: r.get(1)?,
                    category: ActionCategory::Entry,
                    scope_mask: u64_from_sql(r.get(3)?),
                    scope_values: r.get(4)?,
                    scope_values_hash: u64_from_sql(r.get(5)?),
                    stats: OutcomeStats {
                        n_actions: r.get::<_, i64>(7)? as u64,
                        r: RunningStats {
                            n: r.get::<_, i64>(6)? as u64,
                            mean: r.get(8)?,
                            m2: r.get(9)?,
                        },
                        wins: r.get::<_, i64>(10)? as u64,
                        sum_pnl: r.get(11)?,
                        hold_days: mean_of(r.get(12)?),
                        time_eff: mean_of(r.get(13)?),
                        first_exit: ts(14)?,
                        last_exit: ts(15)?,
                        decayed: WeightedStats {
                            w: r.get(16)?,
                            w2: r.get(17)?,
                            mean: r.get(18)?,
                            m2: r.get(19)?,
                        },
                    },
                    as_of: ts(20)?.unwrap_or(Timestamp(0)),
                },
            ))
        })?
        .map(|row| {
            let (category, mut row) = row?;
            row.category = category.parse().map_err(|e| {
                crate::StoreError::Corrupt(format!("pattern_scope_stats {}: {e}", row.pattern_key))
            })?;
            Ok(row)
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(rows)
}

pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM pattern_scope_stats", [], |r| r.get(0))?)
}
