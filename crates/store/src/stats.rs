//! `pattern_scope_stats`: one row per (module, pattern, category, scope subset).

use crate::raw_insert::{Params, RawInsert, Value};
use crate::scopes::{ScopeLedger, ScopeTextLookup, ScopeTexts, ScopeUse, StoredScopes};
use crate::{text_column, u64_from_sql, u64_to_sql, Result};
use learnloop_model::stats::{OutcomeStats, PresentMean, RunningStats, WeightedStats};
use learnloop_model::{ActionCategory, StatsRow, Timestamp};
use rusqlite::{Connection, OptionalExtension};
use std::sync::Arc;

/// Parameters bound per row: every column of `stats_subsets` but the group id.
const ROW_PARAMS: usize = 16;
/// The group id comes first (?1), shared by every row of a statement.
const SHARED_PARAMS: usize = 1;
/// Rows ahead whose statistics the writer asks the cache for: the aggregate hands its rows
/// in key order from where its threads computed them, scattered over megabytes.
const PREFETCH_AHEAD: usize = 8;
/// Rows per multi-row INSERT: fewer statement executions, well under SQLite's variable limit.
const BATCH: usize = 200;

/// `OR FAIL`: a conflicting key (never expected: each subset is written once per group) stops the
/// statement with an error that fails the whole transaction, as `ABORT` would; but SQLite need not
/// keep a statement journal to undo the statement's earlier rows, which with `ABORT` copied every
/// page the multi-row INSERT touched (~9 % of an exhaustive aggregate's time, docs/benchmarks.md).
fn insert_sql(rows: usize) -> String {
    let values: Vec<String> = (0..rows)
        .map(|r| {
            let first = SHARED_PARAMS + r * ROW_PARAMS + 1;
            let own: Vec<String> = (first..first + ROW_PARAMS)
                .map(|i| format!("?{i}"))
                .collect();
            format!("(?1,{})", own.join(","))
        })
        .collect();
    format!(
        "INSERT OR FAIL INTO stats_subsets (group_id, scope_mask, scope_values_hash,
             n_trades, n_actions, mean_rr, m2_rr, wins, sum_pnl, mean_hold_days, mean_time_eff,
             first_exit_ms, last_exit_ms, dw, dw2, dmean, dm2)
         VALUES {}",
        values.join(",")
    )
}

/// Replaces the whole table with rows streamed in key order, a group at a time, binding each row
/// straight from the caller's data into multi-row INSERTs. `pattern_scope_stats` is a view over
/// `stats_groups` (a group's names and the as-of, once), `stats_subsets` (its rows, keyed by the
/// group's id) and `stats_scopes` (each scope text once); see schema migrations 8 and 11.
pub struct StatsWriter<'c> {
    conn: &'c Connection,
    /// The INSERT of each chunk size (power-of-two remainders, then `BATCH`), prepared once: its
    /// text has thousands of parameters, too long to format or look up per chunk.
    inserts: Vec<Option<RawInsert<'c>>>,
    as_of: String,
    /// The id the next group gets: groups are numbered in the order they are written.
    next_group_id: i64,
    written: u64,
    /// The scope texts stored when the writer started, and what its rows did with them.
    stored: &'c StoredScopes,
    ledger: ScopeLedger<'c>,
    /// Whether this writer replaced every row, so that scopes it wrote no row of are unused.
    replaced_all: bool,
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

/// A group's rows as the writer reads them, in key order. The writer reads each row's key and
/// statistics once, and its scope text only when the store has no text for it: the aggregate's
/// rows lie where its threads computed them, so every extra pass over them is a cache miss a row
/// on the writing thread.
pub trait SubsetRows {
    /// The number of rows.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Row `i`'s scope mask and hash.
    fn key(&self, i: usize) -> (u64, u64);
    /// Row `i`'s statistics.
    fn stats(&self, i: usize) -> &OutcomeStats;
    /// Row `i`'s scope text.
    fn scope_values(&self, i: usize) -> &str;
}

impl SubsetRows for [(SubsetKey<'_>, &OutcomeStats)] {
    fn len(&self) -> usize {
        <[_]>::len(self)
    }
    fn key(&self, i: usize) -> (u64, u64) {
        (self[i].0.scope_mask, self[i].0.scope_values_hash)
    }
    fn stats(&self, i: usize) -> &OutcomeStats {
        self[i].1
    }
    fn scope_values(&self, i: usize) -> &str {
        self[i].0.scope_values
    }
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

/// `meta` key: the deepest subset size the last aggregate stage enumerated (the rows deeper than
/// it are the lesson stage's, SPEC §12).
const ENUMERATED_DEPTH_KEY: &str = "stats_enumerated_depth";

/// Record the deepest subset size the aggregate stage enumerated.
pub fn set_enumerated_depth(conn: &Connection, depth: u32) -> Result<()> {
    crate::meta::set(conn, ENUMERATED_DEPTH_KEY, &depth.to_string())
}

/// The deepest subset size the last aggregate stage enumerated, if recorded.
pub fn enumerated_depth(conn: &Connection) -> Result<Option<u32>> {
    Ok(crate::meta::get_i64(conn, ENUMERATED_DEPTH_KEY)?.and_then(|d| u32::try_from(d).ok()))
}

impl<'c> StatsWriter<'c> {
    /// Deletes every stored row; the caller's transaction makes the replacement atomic.
    /// `stored` is [`StoredScopes::load`] of this transaction, by which the caller classifies
    /// each group's rows.
    pub fn replace_all(
        conn: &'c Connection,
        as_of: Timestamp,
        stored: &'c StoredScopes,
    ) -> Result<Self> {
        conn.execute_batch("DELETE FROM stats_subsets; DELETE FROM stats_groups;")?;
        Ok(Self {
            conn,
            inserts: Vec::new(),
            as_of: as_of.to_rfc3339(),
            next_group_id: 1,
            written: 0,
            stored,
            ledger: ScopeLedger::default(),
            replaced_all: true,
        })
    }

    /// Adds rows to the stored table after deleting its subsets of more than `dims` dims (the
    /// deep subsets a previous lesson stage added: SPEC §12); the caller's transaction makes it
    /// atomic. `stored` as for [`StatsWriter::replace_all`].
    pub fn replace_deeper_than(
        conn: &'c Connection,
        dims: u32,
        as_of: Timestamp,
        stored: &'c StoredScopes,
    ) -> Result<Self> {
        conn.execute(
            "DELETE FROM stats_subsets WHERE (scope_mask, scope_values_hash) IN
                 (SELECT scope_mask, scope_values_hash FROM stats_scopes WHERE scope_dims > ?1)",
            [dims],
        )?;
        let next_group_id: i64 = conn.query_row(
            "SELECT COALESCE(MAX(group_id), 0) + 1 FROM stats_groups",
            [],
            |r| r.get(0),
        )?;
        Ok(Self {
            conn,
            inserts: Vec::new(),
            as_of: as_of.to_rfc3339(),
            next_group_id,
            written: 0,
            stored,
            ledger: ScopeLedger::default(),
            replaced_all: false,
        })
    }

    /// Write the rows of one group (in key order); `scopes` is the writer's [`StoredScopes`]
    /// classification of their keys, in this order.
    pub fn write_group(
        &mut self,
        group: GroupKey<'_>,
        rows: &(impl SubsetRows + ?Sized),
        scopes: &ScopeUse,
    ) -> Result<()> {
        let group_id = self.insert_group(group)?;
        self.write_rows(group_id, rows, scopes)
    }

    /// Write more rows of a stored group (a new group if it has none yet).
    pub fn add_to_group(
        &mut self,
        group: GroupKey<'_>,
        rows: &(impl SubsetRows + ?Sized),
        scopes: &ScopeUse,
    ) -> Result<()> {
        let stored: Option<i64> = self
            .conn
            .prepare_cached(
                "SELECT group_id FROM stats_groups
                 WHERE module = ?1 AND pattern_key = ?2 AND action_category = ?3",
            )?
            .query_row(
                rusqlite::params![group.module, group.pattern_key, group.category.as_str()],
                |r| r.get(0),
            )
            .optional()?;
        let group_id = match stored {
            Some(id) => id,
            None => self.insert_group(group)?,
        };
        self.write_rows(group_id, rows, scopes)
    }

    fn write_rows(
        &mut self,
        group_id: i64,
        rows: &(impl SubsetRows + ?Sized),
        scopes: &ScopeUse,
    ) -> Result<()> {
        self.ledger.record(self.conn, self.stored, rows, scopes)?;
        let (mut start, total) = (0, rows.len());
        while start < total {
            let left = total - start;
            let chunk = if left >= BATCH {
                BATCH
            } else {
                1 << left.ilog2()
            };
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
                empty => empty.insert(RawInsert::prepare(self.conn, &insert_sql(chunk))?),
            };
            stmt.execute(|params| {
                params.push(Value::Integer(group_id))?;
                for i in start..start + chunk {
                    if i + PREFETCH_AHEAD < total {
                        learnloop_sys::prefetch_all(rows.stats(i + PREFETCH_AHEAD));
                    }
                    bind_row(params, rows.key(i), rows.stats(i))?;
                }
                Ok(())
            })?;
            self.written += chunk as u64;
            start += chunk;
        }
        Ok(())
    }

    fn insert_group(&mut self, g: GroupKey<'_>) -> Result<i64> {
        let group_id = self.next_group_id;
        self.conn
            .prepare_cached(
                "INSERT INTO stats_groups (group_id, module, pattern_key, action_category, as_of)
                 VALUES (?1, ?2, ?3, ?4, ?5)",
            )?
            .execute(rusqlite::params![
                group_id,
                g.module,
                g.pattern_key,
                g.category.as_str(),
                self.as_of
            ])?;
        self.next_group_id += 1;
        Ok(group_id)
    }

    /// The number of rows written in all. A writer that replaced every row also deletes the
    /// stored scope texts no row uses any more (a writer that only added rows leaves them: the
    /// next full replacement does it).
    pub fn finish(self) -> Result<u64> {
        if self.replaced_all {
            self.ledger.delete_unused(self.conn, self.stored)?;
        }
        Ok(self.written)
    }
}

fn bind_row(
    params: &mut Params<'_, '_, '_>,
    (mask, hash): (u64, u64),
    s: &OutcomeStats,
) -> Result<()> {
    let integer = |v: u64| Value::Integer(v as i64);
    let time = |t: Option<Timestamp>| t.map_or(Value::Null, |t| Value::Integer(t.millis()));
    for value in [
        Value::Integer(u64_to_sql(mask)),
        Value::Integer(u64_to_sql(hash)),
        integer(s.r.n),
        integer(s.n_actions),
        Value::Real(s.r.mean),
        Value::Real(s.r.m2),
        integer(s.wins),
        Value::Real(s.sum_pnl),
        real_or_null(s.hold_days.mean()),
        real_or_null(s.time_eff.mean()),
        time(s.first_exit),
        time(s.last_exit),
        Value::Real(s.decayed.w),
        Value::Real(s.decayed.w2),
        Value::Real(s.decayed.mean),
        Value::Real(s.decayed.m2),
    ] {
        params.push(value)?;
    }
    Ok(())
}

fn real_or_null(v: Option<f64>) -> Value<'static> {
    v.map_or(Value::Null, Value::Real)
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

/// The columns `moments_from_sql` reads, from [`FROM_GROUPS_AND_SUBSETS`] joined to
/// [`JOIN_SCOPES`] (or with `NULL` for the text, which the reader then looks up).
fn moment_columns(scope_text: &str) -> String {
    format!(
        "g.module, g.pattern_key, g.action_category, s.scope_mask, {scope_text},
         s.scope_values_hash, s.n_trades, s.n_actions, s.mean_rr, s.m2_rr, s.wins"
    )
}

/// The stored rows with their group's names, read from the tables directly (exit times as
/// stored, in epoch milliseconds); with [`JOIN_SCOPES`], what the `pattern_scope_stats` view
/// shows (a row without its scope text would not show there).
const FROM_GROUPS_AND_SUBSETS: &str =
    "FROM stats_groups g JOIN stats_subsets s ON s.group_id = g.group_id";

/// Each row's scope text, for reads of a few rows. A read of every row looks the texts up in a
/// [`ScopeTexts`] instead: a join seeks the scopes' index once per row, which made the lesson
/// stage's read of an exhaustive store ~0.5 s slower.
const JOIN_SCOPES: &str = "JOIN stats_scopes c
     ON c.scope_mask = s.scope_mask AND c.scope_values_hash = s.scope_values_hash";

/// The key and moments: the first eleven columns of every stats query (module, pattern_key,
/// action_category, scope_mask, scope_values, scope_values_hash, n_trades, n_actions, mean_rr,
/// m2_rr, wins); other figures are left at their defaults. The scope text is looked up in
/// `texts` when given, else read.
fn moments_from_sql(
    r: &rusqlite::Row<'_>,
    names: &mut GroupNames,
    texts: Option<&mut ScopeTextLookup<'_>>,
) -> Result<StatsRow> {
    let pattern_key = GroupNames::share(&mut names.pattern_key, text_column(r, 1)?);
    let scope_mask = u64_from_sql(r.get(3)?);
    let scope_values_hash = u64_from_sql(r.get(5)?);
    let scope_values = match texts {
        Some(texts) => texts.get(scope_mask, scope_values_hash)?.to_owned(),
        None => r.get(4)?,
    };
    Ok(StatsRow {
        module: GroupNames::share(&mut names.module, text_column(r, 0)?),
        category: r.get::<_, String>(2)?.parse().map_err(|e| {
            crate::StoreError::Corrupt(format!("pattern_scope_stats {pattern_key}: {e}"))
        })?,
        pattern_key,
        scope_mask,
        scope_values,
        scope_values_hash,
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

/// A whole row: the moments, then sum_pnl, mean_hold_days, mean_time_eff, first/last exit (epoch
/// milliseconds), the decayed figures and as_of (columns 11 to 20).
fn row_from_sql(r: &rusqlite::Row<'_>) -> Result<StatsRow> {
    let ms = |i: usize| -> rusqlite::Result<Option<Timestamp>> {
        Ok(r.get::<_, Option<i64>>(i)?.map(Timestamp))
    };
    let mean_of = |v: Option<f64>| PresentMean {
        count: u64::from(v.is_some()),
        sum: v.unwrap_or(0.0),
    };
    let mut row = moments_from_sql(r, &mut GroupNames::default(), None)?;
    let s = &mut row.stats;
    s.sum_pnl = r.get(11)?;
    s.hold_days = mean_of(r.get(12)?);
    s.time_eff = mean_of(r.get(13)?);
    s.first_exit = ms(14)?;
    s.last_exit = ms(15)?;
    s.decayed = WeightedStats {
        w: r.get(16)?,
        w2: r.get(17)?,
        mean: r.get(18)?,
        m2: r.get(19)?,
    };
    row.as_of = r
        .get::<_, Option<String>>(20)?
        .and_then(|t| Timestamp::parse(&t).ok())
        .unwrap_or(Timestamp(0));
    Ok(row)
}

/// The as-of time the stored statistics were aggregated at (`None` before the first aggregate).
pub fn aggregated_as_of(conn: &Connection) -> Result<Option<Timestamp>> {
    let mut stmt = conn.prepare("SELECT DISTINCT as_of FROM stats_groups")?;
    let times = stmt
        .query_map([], |r| crate::parse_ts(r.get(0)?, "stats_groups.as_of"))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(times.into_iter().flatten().max())
}

/// Number of stored statistics rows.
pub fn count(conn: &Connection) -> Result<i64> {
    Ok(conn.query_row("SELECT COUNT(*) FROM stats_subsets", [], |r| r.get(0))?)
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
    let mut stmt = conn.prepare_cached(&format!(
        "SELECT {}, s.sum_pnl, s.mean_hold_days, s.mean_time_eff, s.first_exit_ms,
                s.last_exit_ms, s.dw, s.dw2, s.dmean, s.dm2, g.as_of
         {FROM_GROUPS_AND_SUBSETS} {JOIN_SCOPES} WHERE g.module = ?1 AND g.pattern_key = ?2 AND g.action_category = ?3
           AND s.scope_mask = ?4 AND s.scope_values_hash = ?5",
        moment_columns("c.scope_values")
    ))?;
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
        "SELECT EXISTS (SELECT 1 FROM stats_groups WHERE pattern_key = ?1)",
        [pattern_key],
        |r| r.get(0),
    )?)
}

/// Every pattern key the stored statistics have, sorted.
pub fn pattern_keys(conn: &Connection) -> Result<Vec<String>> {
    let mut stmt =
        conn.prepare("SELECT DISTINCT pattern_key FROM stats_groups ORDER BY pattern_key")?;
    let keys = stmt
        .query_map([], |r| r.get(0))?
        .collect::<rusqlite::Result<Vec<String>>>()?;
    Ok(keys)
}

/// What the stored statistics know of a pattern: nothing, the pattern under other categories
/// only, or the pattern with this category (explain's reason for a subset without a row).
pub fn pattern_known(
    conn: &Connection,
    pattern_key: &str,
    category: ActionCategory,
) -> Result<PatternKnown> {
    let (any, with_category): (bool, bool) = conn.query_row(
        "SELECT EXISTS (SELECT 1 FROM stats_groups WHERE pattern_key = ?1),
                EXISTS (SELECT 1 FROM stats_groups WHERE pattern_key = ?1 AND action_category = ?2)",
        rusqlite::params![pattern_key, category.as_str()],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    Ok(match (any, with_category) {
        (_, true) => PatternKnown::WithCategory,
        (true, false) => PatternKnown::OtherCategories,
        (false, _) => PatternKnown::Unknown,
    })
}

/// See [`pattern_known`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatternKnown {
    /// No stored group has this pattern key.
    Unknown,
    /// The pattern is stored, but not with the category asked for.
    OtherCategories,
    /// A group of this pattern and category is stored.
    WithCategory,
}

/// Rows in key order with their moments only: key, counts, mean and M2 (other figures are left
/// at their defaults), filtered by `filter` (an SQL `WHERE` clause or "").
/// With `texts`, the scope texts are looked up there (a read of every row); without, joined.
fn for_each_moments_row(
    conn: &Connection,
    filter: &str,
    texts: Option<&ScopeTexts>,
    mut f: impl FnMut(StatsRow) -> Result<()>,
) -> Result<()> {
    let (columns, join) = match texts {
        Some(_) => (moment_columns("NULL"), ""),
        None => (moment_columns("c.scope_values"), JOIN_SCOPES),
    };
    let mut stmt = conn.prepare(&format!(
        "SELECT {columns} {FROM_GROUPS_AND_SUBSETS} {join} {filter}
         ORDER BY g.module, g.pattern_key, g.action_category, s.scope_mask, s.scope_values_hash"
    ))?;
    let mut rows = stmt.query([])?;
    let mut names = GroupNames::default();
    let mut lookup = texts.map(ScopeTexts::lookup);
    while let Some(r) = rows.next()? {
        f(moments_from_sql(r, &mut names, lookup.as_mut())?)?;
    }
    Ok(())
}

/// Stream the table a (module, pattern, category) group at a time, in key order, with moments
/// only (see `for_each_moments_row`). Memory stays bounded by the largest group and the store's
/// scope texts (each once: 7.7 MB for an exhaustive 8,000-trade store). A row without its text
/// is an error, not a row left out.
pub fn for_each_group_of_moments(
    conn: &Connection,
    mut f: impl FnMut(Vec<StatsRow>) -> Result<()>,
) -> Result<()> {
    let mut group: Vec<StatsRow> = Vec::new();
    let texts = ScopeTexts::load(conn)?;
    for_each_moments_row(conn, "", Some(&texts), |row| {
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
    for_each_moments_row(conn, "WHERE s.scope_mask = 0", None, |row| {
        out.push(row);
        Ok(())
    })?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnloop_model::ActionCategory;

    fn stats(n: u64, first_exit: Option<i64>, last_exit: Option<i64>, w2: f64) -> OutcomeStats {
        OutcomeStats {
            n_actions: n + 2,
            r: RunningStats {
                n,
                mean: 0.37,
                m2: 1.3 * n as f64,
            },
            wins: n / 3,
            sum_pnl: -12.5,
            hold_days: PresentMean { count: 3, sum: 7.0 },
            time_eff: PresentMean::default(),
            first_exit: first_exit.map(Timestamp),
            last_exit: last_exit.map(Timestamp),
            decayed: WeightedStats {
                w: 2.7,
                w2,
                mean: 0.31,
                m2: 0.9,
            },
        }
    }

    type Rows<'r> = Vec<(SubsetKey<'r>, &'r OutcomeStats)>;

    /// Replace every stored row by `groups`' as the aggregate stage does; the rows written.
    fn replace_all(
        conn: &Connection,
        as_of: Timestamp,
        groups: &[(GroupKey<'_>, Rows<'_>)],
    ) -> u64 {
        let stored = StoredScopes::load(conn).unwrap();
        let mut writer = StatsWriter::replace_all(conn, as_of, &stored).unwrap();
        for (group, rows) in groups {
            let scopes = stored.classify(rows.as_slice());
            writer
                .write_group(*group, rows.as_slice(), &scopes)
                .unwrap();
        }
        writer.finish().unwrap()
    }

    /// One column of the view's row for `mask`.
    fn view_column<T: rusqlite::types::FromSql>(conn: &Connection, column: &str, mask: u64) -> T {
        conn.query_row(
            &format!("SELECT {column} FROM pattern_scope_stats WHERE scope_mask = ?1"),
            [u64_to_sql(mask)],
            |r| r.get(0),
        )
        .unwrap()
    }

    #[test]
    fn the_view_shows_the_derived_figures_as_outcome_stats_computes_them() {
        let conn = crate::open_in_memory().unwrap();
        let as_of = Timestamp::parse("2026-03-01T00:00:00Z").unwrap();
        let cases = [
            (0u64, stats(0, None, None, 0.0)),
            (
                1,
                stats(1, Some(1_767_225_600_000), Some(1_767_225_600_250), 1.5),
            ),
            (2, stats(7, Some(-1_500), Some(-86_400_000), 2.25)),
            (4, stats(30, Some(999), Some(1_000), 0.75)),
        ];
        let texts: Vec<String> = cases
            .iter()
            .map(|(m, _)| format!("{{\"m\":\"{m}\"}}"))
            .collect();
        let rows: Vec<(SubsetKey<'_>, &OutcomeStats)> = cases
            .iter()
            .zip(&texts)
            .map(|((mask, s), text)| {
                let key = SubsetKey {
                    scope_mask: *mask,
                    scope_values: text,
                    scope_values_hash: mask * 7,
                };
                (key, s)
            })
            .collect();
        let group = GroupKey {
            module: "pm",
            pattern_key: "p.S1",
            category: ActionCategory::Add,
        };
        assert_eq!(replace_all(&conn, as_of, &[(group, rows)]), 4);
        for (mask, s) in &cases {
            let (m, text) = (*mask, |t: Option<Timestamp>| t.map(Timestamp::to_rfc3339));
            let at = |c: &str| view_column::<Option<String>>(&conn, c, m);
            let real = |c: &str| view_column::<Option<f64>>(&conn, c, m);
            assert_eq!(at("first_exit_at"), text(s.first_exit), "mask {m}");
            assert_eq!(at("last_exit_at"), text(s.last_exit), "mask {m}");
            assert_eq!(at("as_of"), Some(as_of.to_rfc3339()));
            // Bit for bit: the view divides as `OutcomeStats` does.
            assert_eq!(real("var_rr"), s.r.sample_variance(), "mask {m}");
            assert_eq!(real("win_rate"), Some(s.win_rate()), "mask {m}");
            assert_eq!(real("d_eff_n"), Some(s.decayed.effective_n()), "mask {m}");
            assert_eq!(real("mean_hold_days"), s.hold_days.mean());
            assert_eq!(real("mean_time_eff"), None);
            let dims: i64 = view_column(&conn, "scope_dims", m);
            assert_eq!(dims, i64::from(m.count_ones()));
            let read = get(&conn, "pm", "p.S1", ActionCategory::Add, *mask, mask * 7)
                .unwrap()
                .unwrap();
            // The table keeps the present values' mean, not their count and sum.
            let stored_hold = PresentMean {
                count: 1,
                sum: 7.0 / 3.0,
            };
            let expected = OutcomeStats {
                hold_days: stored_hold,
                ..*s
            };
            assert_eq!(
                read.stats, expected,
                "mask {mask}: what was written reads back"
            );
            assert_eq!(read.as_of, as_of);
        }
        assert_eq!(count(&conn).unwrap(), 4);
        assert!(has_pattern(&conn, "p.S1").unwrap());
        assert!(!has_pattern(&conn, "p.S2").unwrap());
    }

    /// Every row of `stats_scopes` (a duplicate would show twice), in key order.
    fn stored_texts(conn: &Connection) -> Vec<(u64, u64, String)> {
        conn.prepare(
            "SELECT scope_mask, scope_values_hash, scope_values FROM stats_scopes ORDER BY 1, 2",
        )
        .unwrap()
        .query_map([], |r| {
            Ok((u64_from_sql(r.get(0)?), u64_from_sql(r.get(1)?), r.get(2)?))
        })
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
    }

    /// Every row as the full read gives it: (pattern, mask, text).
    fn read_back(conn: &Connection) -> Vec<(String, u64, String)> {
        let mut read = Vec::new();
        for_each_group_of_moments(conn, |rows| {
            read.extend(
                rows.into_iter()
                    .map(|r| (r.pattern_key.to_string(), r.scope_mask, r.scope_values)),
            );
            Ok(())
        })
        .unwrap();
        read
    }

    fn entry(pattern_key: &str) -> GroupKey<'_> {
        GroupKey {
            module: "pm",
            pattern_key,
            category: ActionCategory::Entry,
        }
    }

    fn key(scope_mask: u64, scope_values: &str, scope_values_hash: u64) -> SubsetKey<'_> {
        SubsetKey {
            scope_mask,
            scope_values,
            scope_values_hash,
        }
    }

    #[test]
    fn each_scope_text_is_stored_once_and_only_while_a_row_uses_it() {
        let conn = crate::open_in_memory().unwrap();
        let s = stats(12, Some(0), Some(5_000), 1.0);
        let (root, a1, b2, c3) = (
            key(0, "{}", 1),
            key(1, r#"{"a":"1"}"#, 11),
            key(2, r#"{"b":"2"}"#, 22),
            key(4, r#"{"c":"3"}"#, 44),
        );
        let first = [
            (entry("p"), vec![(root, &s), (a1, &s)]),
            (entry("q"), vec![(root, &s), (a1, &s), (b2, &s)]),
        ];
        assert_eq!(replace_all(&conn, Timestamp(0), &first), 5);
        let text = |k: &SubsetKey<'_>| (k.scope_mask, k.scope_values_hash, k.scope_values.into());
        assert_eq!(stored_texts(&conn), [text(&root), text(&a1), text(&b2)]);
        let row = |p: &str, k: &SubsetKey<'_>| (p.to_string(), k.scope_mask, k.scope_values.into());
        assert_eq!(
            read_back(&conn),
            [
                row("p", &root),
                row("p", &a1),
                row("q", &root),
                row("q", &a1),
                row("q", &b2)
            ]
        );
        let view: i64 = conn
            .query_row(
                r#"SELECT COUNT(*) FROM pattern_scope_stats WHERE scope_values = '{"a":"1"}'"#,
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(view, 2, "the view shows the shared text on both rows");

        // The next night: {"a":"1"} and {"b":"2"} are gone, {"c":"3"} is new.
        let second = [(entry("p"), vec![(root, &s), (c3, &s)])];
        assert_eq!(replace_all(&conn, Timestamp(0), &second), 2);
        assert_eq!(stored_texts(&conn), [text(&root), text(&c3)]);
        assert_eq!(read_back(&conn), [row("p", &root), row("p", &c3)]);
    }

    #[test]
    fn rows_added_later_bring_their_texts_and_keep_the_others() {
        let conn = crate::open_in_memory().unwrap();
        let s = stats(12, Some(0), Some(5_000), 1.0);
        let (root, a1, deep) = (
            key(0, "{}", 1),
            key(1, r#"{"a":"1"}"#, 11),
            key(7, r#"{"a":"1","b":"2","c":"3"}"#, 77),
        );
        replace_all(
            &conn,
            Timestamp(0),
            &[(entry("p"), vec![(root, &s), (a1, &s)])],
        );
        // Twice, as two lesson stages after one aggregate: the second replaces the first's rows.
        for _ in 0..2 {
            let stored = StoredScopes::load(&conn).unwrap();
            let mut writer =
                StatsWriter::replace_deeper_than(&conn, 2, Timestamp(0), &stored).unwrap();
            for (group, rows) in [
                (entry("p"), vec![(deep, &s)]),
                (entry("z"), vec![(deep, &s)]),
            ] {
                writer
                    .add_to_group(group, rows.as_slice(), &stored.classify(rows.as_slice()))
                    .unwrap();
            }
            assert_eq!(writer.finish().unwrap(), 2);
        }
        let texts: Vec<u64> = stored_texts(&conn).iter().map(|t| t.0).collect();
        assert_eq!(texts, [0, 1, 7], "the deep text once, the others kept");
        let masks: Vec<(String, u64)> = read_back(&conn)
            .into_iter()
            .map(|(p, m, _)| (p, m))
            .collect();
        let expected = [("p", 0), ("p", 1), ("p", 7), ("z", 7)].map(|(p, m)| (p.to_string(), m));
        assert_eq!(masks, expected);
    }

    #[test]
    fn a_full_read_reports_a_row_without_its_scope_text() {
        let conn = crate::open_in_memory().unwrap();
        let s = stats(12, Some(0), Some(5_000), 1.0);
        let rows = vec![(key(0, "{}", 1), &s), (key(1, r#"{"a":"1"}"#, 11), &s)];
        replace_all(&conn, Timestamp(0), &[(entry("p"), rows)]);
        conn.execute("DELETE FROM stats_scopes WHERE scope_mask = 1", [])
            .unwrap();
        let err = for_each_group_of_moments(&conn, |_| Ok(())).unwrap_err();
        assert!(
            matches!(err, crate::StoreError::Corrupt(_))
                && err.to_string().contains("stats_scopes"),
            "{err}"
        );
    }

    #[test]
    fn a_rewrite_replaces_every_group_and_reads_back_in_key_order() {
        let conn = crate::open_in_memory().unwrap();
        let s = stats(12, Some(0), Some(5_000), 1.0);
        let write = |names: &[&str]| {
            let key = SubsetKey {
                scope_mask: 0,
                scope_values: "{}",
                scope_values_hash: 1,
            };
            let groups: Vec<_> = names
                .iter()
                .map(|name| {
                    let group = GroupKey {
                        module: "pm",
                        pattern_key: name,
                        category: ActionCategory::Entry,
                    };
                    (group, vec![(key, &s)])
                })
                .collect();
            replace_all(&conn, Timestamp(0), &groups);
        };
        write(&["a", "b", "c"]);
        // Written out of key order: the reader still sorts by names.
        write(&["z", "m"]);
        let mut read = Vec::new();
        for_each_group_of_moments(&conn, |rows| {
            read.extend(rows.iter().map(|r| r.pattern_key.to_string()));
            Ok(())
        })
        .unwrap();
        assert_eq!(read, ["m", "z"]);
        assert_eq!(root_rows(&conn).unwrap().len(), 2);
    }
}
