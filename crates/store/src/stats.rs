//! `pattern_scope_stats`: one row per (module, pattern, category, scope subset).

use crate::{u64_from_sql, u64_to_sql, Result};
use learnloop_model::stats::{OutcomeStats, PresentMean, RunningStats, WeightedStats};
use learnloop_model::{ActionCategory, StatsRow, Timestamp};
use rusqlite::{Connection, Statement};
use std::sync::Arc;

/// Parameters bound per row: every column but the four a statement binds once (module,
/// pattern_key, action_category, as_of).
const ROW_PARAMS: usize = 21;
/// The shared parameters come first: ?1 module, ?2 pattern_key, ?3 action_category, ?4 as_of.
const SHARED_PARAMS: usize = 4;
/// Rows per multi-row INSERT: fewer statement executions, well under SQLite's variable limit.
const BATCH: usize = 200;

fn insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let first = SHARED_PARAMS + r * ROW_PARAMS + 1;
            let own: Vec<String> = (first..first + ROW_PARAMS)
                .map(|i| format!("?{i}"))
                .collect();
            let (key, rest) = own.split_at(3);
            format!("(?1,?2,?3,{},{},?4)", key.join(","), rest.join(","))
        })
        .collect();
    format!(
        "INSERT INTO pattern_scope_stats (module, pattern_key, action_category, scope_mask, scope_values,
             scope_values_hash, scope_dims, n_trades, n_actions, mean_rr, m2_rr, var_rr, wins, win_rate, sum_pnl,
             mean_hold_days, mean_time_eff, first_exit_at, last_exit_at, dw, dw2, dmean, dm2, d_eff_n, as_of)
         VALUES {}",
        values.join(",")
    )
}

/// Replaces the whole table with rows streamed in key order, a group at a time, binding each row
/// straight from the caller's data into multi-row INSERTs.
pub struct StatsWriter<'c> {
    conn: &'c Connection,
    /// The INSERT of each chunk size (power-of-two remainders, then `BATCH`), prepared once: its
    /// text has thousands of parameters, too long to format or look up per chunk.
    inserts: Vec<Option<Statement<'c>>>,
    as_of: String,
    written: u64,
    /// Exit times repeat across the subsets of a trade: format each once.
    time_text: TimeText,
}

#[derive(Default)]
struct TimeText(std::collections::HashMap<i64, String>);

impl TimeText {
    fn get(&mut self, t: Option<Timestamp>) -> Option<&str> {
        let t = t?;
        Some(
            self.0
                .entry(t.millis())
                .or_insert_with(|| t.to_rfc3339())
                .as_str(),
        )
    }
}

/// One row of a group: everything but the group's (module, pattern, category).
#[derive(Debug, Clone, Copy)]
pub struct SubsetKey<'a> {
    /// Bit mask of the subset's dimensions.
    pub scope_mask: u64,
    /// Sorted-key JSON of its pairs.
    pub scope_values: &'a str,
    /// Stable hash of `scope_values`.
    pub scope_values_hash: u64,
}

/// Module, pattern and category shared by every row of a group.
#[derive(Debug, Clone, Copy)]
pub struct GroupKey<'a> {
    /// Producing module.
    pub module: &'a str,
    /// The pattern.
    pub pattern_key: &'a str,
    /// The action category.
    pub category: ActionCategory,
}

impl<'c> StatsWriter<'c> {
    /// Deletes every stored row; the caller's transaction makes the replacement atomic.
    pub fn replace_all(conn: &'c Connection, as_of: Timestamp) -> Result<Self> {
        conn.execute("DELETE FROM pattern_scope_stats", [])?;
        Ok(Self {
            conn,
            inserts: Vec::new(),
            as_of: as_of.to_rfc3339(),
            written: 0,
            time_text: TimeText::default(),
        })
    }

    /// Write the rows of one group (in key order).
    pub fn write_group<'r>(
        &mut self,
        group: GroupKey<'_>,
        rows: &[(SubsetKey<'r>, &'r OutcomeStats)],
    ) -> Result<()> {
        let mut rest = rows;
        while !rest.is_empty() {
            let chunk = if rest.len() >= BATCH {
                BATCH
            } else {
                1 << rest.len().ilog2()
            };
            let (now, later) = rest.split_at(chunk);
            // Remainders come in power-of-two chunks, so there are few sizes.
            let slot = if chunk == BATCH {
                0
            } else {
                1 + chunk.ilog2() as usize
            };
            if self.inserts.len() <= slot {
                self.inserts.resize_with(slot + 1, || None);
            }
            let stmt = match &mut self.inserts[slot] {
                Some(stmt) => stmt,
                empty => empty.insert(self.conn.prepare(&insert_sql(chunk))?),
            };
            bind_group(stmt, group, &self.as_of)?;
            for (i, (key, stats)) in now.iter().enumerate() {
                bind_row(
                    stmt,
                    SHARED_PARAMS + i * ROW_PARAMS,
                    key,
                    stats,
                    &mut self.time_text,
                )?;
            }
            stmt.raw_execute()?;
            self.written += chunk as u64;
            rest = later;
        }
        Ok(())
    }

    /// The number of rows written in all.
    pub fn finish(self) -> u64 {
        self.written
    }
}

/// The parameters every row of a statement shares.
fn bind_group(stmt: &mut Statement<'_>, g: GroupKey<'_>, as_of: &str) -> Result<()> {
    stmt.raw_bind_parameter(1, g.module)?;
    stmt.raw_bind_parameter(2, g.pattern_key)?;
    stmt.raw_bind_parameter(3, g.category.as_str())?;
    stmt.raw_bind_parameter(4, as_of)?;
    Ok(())
}

fn bind_row(
    stmt: &mut Statement<'_>,
    offset: usize,
    k: &SubsetKey<'_>,
    s: &OutcomeStats,
    time_text: &mut TimeText,
) -> Result<()> {
    let mut i = offset;
    let mut bind = |v: &dyn rusqlite::ToSql| -> Result<()> {
        i += 1;
        stmt.raw_bind_parameter(i, v)?;
        Ok(())
    };
    bind(&u64_to_sql(k.scope_mask))?;
    bind(&k.scope_values)?;
    bind(&u64_to_sql(k.scope_values_hash))?;
    bind(&k.scope_mask.count_ones())?;
    bind(&(s.r.n as i64))?;
    bind(&(s.n_actions as i64))?;
    bind(&s.r.mean)?;
    bind(&s.r.m2)?;
    bind(&s.r.sample_variance())?;
    bind(&(s.wins as i64))?;
    bind(&s.win_rate())?;
    bind(&s.sum_pnl)?;
    bind(&s.hold_days.mean())?;
    bind(&s.time_eff.mean())?;
    bind(&time_text.get(s.first_exit))?;
    bind(&time_text.get(s.last_exit))?;
    bind(&s.decayed.w)?;
    bind(&s.decayed.w2)?;
    bind(&s.decayed.mean)?;
    bind(&s.decayed.m2)?;
    bind(&s.decayed.effective_n())?;
    Ok(())
}

/// The module and pattern of the rows read last: rows come in key order, so a group's rows share
/// one copy of each name.
#[derive(Default)]
struct GroupNames {
    module: Option<Arc<str>>,
    pattern_key: Option<Arc<str>>,
}

impl GroupNames {
    fn share(slot: &mut Option<Arc<str>>, text: &str) -> Arc<str> {
        match slot {
            Some(name) if &**name == text => name.clone(),
            _ => slot.insert(Arc::from(text)).clone(),
        }
    }
}

/// A text column read in place (no copy: its text is shared or dropped right away).
fn text_column<'r>(r: &'r rusqlite::Row<'_>, i: usize) -> Result<&'r str> {
    r.get_ref(i)?.as_str().map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
            .into()
    })
}

/// The key and moments: the first eleven columns of every stats query (module, pattern_key,
/// action_category, scope_mask, scope_values, scope_values_hash, n_trades, n_actions, mean_rr,
/// m2_rr, wins); other figures are left at their defaults.
fn moments_from_sql(r: &rusqlite::Row<'_>, names: &mut GroupNames) -> Result<StatsRow> {
    let pattern_key = GroupNames::share(&mut names.pattern_key, text_column(r, 1)?);
    Ok(StatsRow {
        module: GroupNames::share(&mut names.module, text_column(r, 0)?),
        category: r.get::<_, String>(2)?.parse().map_err(|e| {
            crate::StoreError::Corrupt(format!("pattern_scope_stats {pattern_key}: {e}"))
        })?,
        pattern_key,
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
            ..OutcomeStats::default()
        },
        as_of: Timestamp(0),
    })
}

/// A whole row: the moments, then sum_pnl, mean_hold_days, mean_time_eff, first/last exit, the
/// decayed figures and as_of (columns 11 to 20).
fn row_from_sql(r: &rusqlite::Row<'_>) -> Result<StatsRow> {
    let ts = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(r.get::<_, Option<String>>(i)?
            .and_then(|t| Timestamp::parse(&t).ok()))
    };
    let mean_of = |v: Option<f64>| PresentMean {
        count: u64::from(v.is_some()),
        sum: v.unwrap_or(0.0),
    };
    let mut row = moments_from_sql(r, &mut GroupNames::default())?;
    let s = &mut row.stats;
    s.sum_pnl = r.get(11)?;
    s.hold_days = mean_of(r.get(12)?);
    s.time_eff = mean_of(r.get(13)?);
    s.first_exit = ts(14)?;
    s.last_exit = ts(15)?;
    s.decayed = WeightedStats {
        w: r.get(16)?,
        w2: r.get(17)?,
        mean: r.get(18)?,
        m2: r.get(19)?,
    };
    row.as_of = ts(20)?.unwrap_or(Timestamp(0));
    Ok(row)
}

/// Number of stored statistics rows.
pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM pattern_scope_stats", [], |r| r.get(0))?)
}

/// One row by key, if stored.
pub fn get(
    conn: &Connection,
    module: &str,
    pattern_key: &str,
    category: ActionCategory,
    scope_mask: u64,
    scope_values_hash: u64,
) -> Result<Option<StatsRow>> {
    // Few rows per key prefix: filter the key-ordered read rather than duplicating the decoder.
    let mut stmt = conn.prepare_cached(
        "SELECT module, pattern_key, action_category, scope_mask, scope_values, scope_values_hash, n_trades,
                n_actions, mean_rr, m2_rr, wins, sum_pnl, mean_hold_days, mean_time_eff, first_exit_at,
                last_exit_at, dw, dw2, dmean, dm2, as_of
         FROM pattern_scope_stats WHERE module = ?1 AND pattern_key = ?2 AND action_category = ?3
           AND scope_mask = ?4 AND scope_values_hash = ?5",
    )?;
    let mut rows = stmt.query(rusqlite::params![
        module,
        pattern_key,
        category.as_str(),
        u64_to_sql(scope_mask),
        u64_to_sql(scope_values_hash)
    ])?;
    match rows.next()? {
        Some(r) => Ok(Some(row_from_sql(r)?)),
        None => Ok(None),
    }
}

/// Whether any row exists for this pattern (any module, category or scope).
pub fn has_pattern(conn: &Connection, pattern_key: &str) -> Result<bool> {
    Ok(conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM pattern_scope_stats WHERE pattern_key = ?1)",
        [pattern_key],
        |r| r.get(0),
    )?)
}

/// Rows in key order with their moments only: key, counts, mean and M2 (other figures are left
/// at their defaults), filtered by `filter` (an SQL `WHERE` clause or "").
fn for_each_moments_row(
    conn: &Connection,
    filter: &str,
    mut f: impl FnMut(StatsRow) -> Result<()>,
) -> Result<()> {
    let mut stmt = conn.prepare(&format!(
        "SELECT module, pattern_key, action_category, scope_mask, scope_values, scope_values_hash, n_trades,
                n_actions, mean_rr, m2_rr, wins
         FROM pattern_scope_stats {filter}
         ORDER BY module, pattern_key, action_category, scope_mask, scope_values_hash"
    ))?;
    let mut rows = stmt.query([])?;
    let mut names = GroupNames::default();
    while let Some(r) = rows.next()? {
        f(moments_from_sql(r, &mut names)?)?;
    }
    Ok(())
}

/// Stream the table a (module, pattern, category) group at a time, in key order, with moments
/// only (see `for_each_moments_row`). Memory stays bounded by the largest group.
pub fn for_each_group_of_moments(
    conn: &Connection,
    mut f: impl FnMut(Vec<StatsRow>) -> Result<()>,
) -> Result<()> {
    let mut group: Vec<StatsRow> = Vec::new();
    for_each_moments_row(conn, "", |row| {
        let same = group.last().is_some_and(|g| {
            g.module == row.module && g.pattern_key == row.pattern_key && g.category == row.category
        });
        if !same && !group.is_empty() {
            f(std::mem::take(&mut group))?;
        }
        group.push(row);
        Ok(())
    })?;
    if !group.is_empty() {
        f(group)?;
    }
    Ok(())
}

/// The pattern roots (mask 0), with their moments only.
pub fn root_rows(conn: &Connection) -> Result<Vec<StatsRow>> {
    let mut out = Vec::new();
    for_each_moments_row(conn, "WHERE scope_mask = 0", |row| {
        out.push(row);
        Ok(())
    })?;
    Ok(out)
}
