//! `ad_strands` (the input contract), `quarantine`, and the typed, normalised `pm_actions` and
//! `position_closes` derived from them.

use crate::Result;
use learnloop_model::scope::canonical_pairs;
use learnloop_model::strand::{PmAction, PositionClose, QuarantineReason, RawStrand};
use learnloop_model::{hash::stable_hash, ActionCategory, Scope, Timestamp};
use rusqlite::{params, Connection};

/// What storing a raw strand did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertOutcome {
    /// A new strand was stored.
    Inserted,
    /// The same id with the same fields was already stored (a re-ingest).
    AlreadyPresent,
    /// The same id with different fields: the stored strand wins, the newcomer is quarantined.
    Conflict,
}

const INSERT_RAW_SQL: &str = "INSERT OR IGNORE INTO ad_strands (id, module, kind, symbol, timeframe, position_id, trade_id, created_at, content, regime_context)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";

const UPSERT_ACTION_SQL: &str = "INSERT OR REPLACE INTO pm_actions (strand_id, module, position_id, trade_id, ts, ts_ms, created_at_ms,
     decision_type, size_frac, pattern_key, action_category, scope)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)";

const UPSERT_CLOSE_SQL: &str = "INSERT OR REPLACE INTO position_closes (strand_id, module, position_id, trade_id, created_at_ms, entry_at_ms,
     exit_at, exit_at_ms, rr, pnl_usd, hold_days, time_to_s3, outcome_class, exit_reason)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)";

/// Store a raw strand, idempotent by id (the same id with other content is a conflict).
pub fn insert_raw(conn: &Connection, s: &RawStrand) -> Result<InsertOutcome> {
    insert_raw_with(conn, &mut *conn.prepare_cached(INSERT_RAW_SQL)?, s)
}

fn insert_raw_with(
    conn: &Connection,
    insert: &mut rusqlite::Statement<'_>,
    s: &RawStrand,
) -> Result<InsertOutcome> {
    // Insert first: the common case (a new id) costs one index descent, not two.
    let inserted = insert.execute(params![
        s.id,
        s.module,
        s.kind,
        s.symbol,
        s.timeframe,
        s.position_id,
        s.trade_id,
        s.created_at,
        s.content,
        s.regime_context
    ])?;
    if inserted == 1 {
        return Ok(InsertOutcome::Inserted);
    }
    let existing: RawStrand = conn
        .prepare_cached(
            "SELECT id, module, kind, symbol, timeframe, position_id, trade_id, created_at, content, regime_context
             FROM ad_strands WHERE id = ?1",
        )?
        .query_row([&s.id], raw_from_row)?;
    Ok(if existing.same_strand(s) {
        InsertOutcome::AlreadyPresent
    } else {
        InsertOutcome::Conflict
    })
}

/// The statements a load runs for every strand, prepared once for the whole load (looking a
/// statement up in the connection's cache hashes its text: measured at ~4 % of a bulk load's
/// storing thread).
pub struct StrandWriter<'c> {
    conn: &'c Connection,
    insert_raw: rusqlite::Statement<'c>,
    upsert_action: rusqlite::Statement<'c>,
    upsert_close: rusqlite::Statement<'c>,
}

impl<'c> StrandWriter<'c> {
    /// Prepare the statements on `conn` (inside the caller's transaction, if any).
    pub fn new(conn: &'c Connection) -> Result<Self> {
        Ok(Self {
            conn,
            insert_raw: conn.prepare(INSERT_RAW_SQL)?,
            upsert_action: conn.prepare(UPSERT_ACTION_SQL)?,
            upsert_close: conn.prepare(UPSERT_CLOSE_SQL)?,
        })
    }

    /// The connection the writer writes to.
    pub fn conn(&self) -> &'c Connection {
        self.conn
    }

    /// [`insert_raw`] with the held statement.
    pub fn insert_raw(&mut self, s: &RawStrand) -> Result<InsertOutcome> {
        insert_raw_with(self.conn, &mut self.insert_raw, s)
    }

    /// [`upsert_action`] with the held statement and the action's text columns rendered by
    /// the caller (possibly on another thread).
    pub fn upsert_action(&mut self, a: &PmAction, text: &ActionText) -> Result<()> {
        execute_upsert_action(&mut self.upsert_action, a, text)
    }

    /// [`upsert_close`] with the held statement.
    pub fn upsert_close(&mut self, c: &PositionClose) -> Result<()> {
        execute_upsert_close(&mut self.upsert_close, c)
    }
}

/// The columns of a `pm_actions` row that take formatting: its time as RFC 3339 text and its
/// scope as canonical JSON. Rendered apart from the insert, so that a loader can render them on
/// the thread that validates while another writes (the scope's JSON was ~5 % of a bulk load's
/// storing thread).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionText {
    ts: String,
    scope: String,
}

impl ActionText {
    /// Render `a`'s text columns.
    pub fn of(a: &PmAction) -> Self {
        Self {
            ts: a.ts.to_rfc3339(),
            scope: a.scope.to_json(),
        }
    }
}

fn raw_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<RawStrand> {
    Ok(RawStrand {
        id: r.get(0)?,
        module: r.get(1)?,
        kind: r.get(2)?,
        symbol: r.get(3)?,
        timeframe: r.get(4)?,
        position_id: r.get(5)?,
        trade_id: r.get(6)?,
        created_at: r.get(7)?,
        content: r.get(8)?,
        regime_context: r.get(9)?,
    })
}

/// Strands stored after `after_rowid` (the normalisation watermark), in storage order.
pub fn raw_after(conn: &Connection, after_rowid: i64) -> Result<Vec<(i64, RawStrand)>> {
    let mut stmt = conn.prepare(
        "SELECT id, module, kind, symbol, timeframe, position_id, trade_id, created_at, content, regime_context, rowid
         FROM ad_strands WHERE rowid > ?1 ORDER BY rowid",
    )?;
    let rows = stmt
        .query_map([after_rowid], |r| {
            Ok((r.get::<_, i64>(10)?, raw_from_row(r)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// The highest `ad_strands` rowid (the normalisation watermark's scale).
pub fn max_rowid(conn: &Connection) -> Result<i64> {
    Ok(
        conn.query_row("SELECT COALESCE(MAX(rowid), 0) FROM ad_strands", [], |r| {
            r.get(0)
        })?,
    )
}

/// The latest `created_at` among the stored strands.
pub fn latest_created_at(conn: &Connection) -> Result<Option<Timestamp>> {
    // created_at is producer text; compare parsed values, not strings.
    let mut stmt = conn.prepare(
        "SELECT MAX(m) FROM (SELECT MAX(created_at_ms) AS m FROM pm_actions UNION ALL SELECT MAX(created_at_ms) FROM position_closes)",
    )?;
    let v: Option<i64> = stmt.query_row([], |r| r.get(0))?;
    Ok(v.map(Timestamp))
}

/// How close another strand's `created_at` must be for the latest one to count as corroborated.
pub const AS_OF_CORROBORATION_MS: i64 = learnloop_model::time::MS_PER_DAY;

/// The default as-of time of a run: the latest `created_at` that a strand of *another position*
/// corroborates, i.e. the latest one with a strand of another position created at most
/// [`AS_OF_CORROBORATION_MS`] before it.
///
/// The plain maximum would let one line with a wrong clock (a plausible but far-future
/// `created_at`) become every later run's as-of and decay everything learned to neutral. Here a
/// single strand, or a single position's strands (one producer's clock is wrong for a whole
/// position: its action and its close agree with each other), can move the as-of by at most a
/// day past the rest of the data; what is isolated beyond that waits (it is not lost) until later
/// data reaches it, or an explicit `--as-of` covers it. Strands stored together (a night's batch)
/// corroborate each other. How many strands it leaves for later is logged as a warning.
pub fn default_as_of(conn: &Connection) -> Result<Option<Timestamp>> {
    let as_of = corroborated_latest_created_at(conn)?;
    if let Some(t) = as_of {
        let waiting = count_created_after(conn, t)?;
        if waiting > 0 {
            tracing::warn!(
                as_of = %t,
                strands = waiting,
                "strands created after the as-of are left for a later run (created more than a day after all other positions' data: check the producer's clock, or pass --as-of)"
            );
        }
    }
    Ok(as_of)
}

fn corroborated_latest_created_at(conn: &Connection) -> Result<Option<Timestamp>> {
    // Each arm walks its created_at index backwards; the compound ORDER BY merges them lazily, so
    // a normal store reads a few rows.
    let mut stmt = conn.prepare(
        "SELECT created_at_ms, position_id FROM pm_actions
         UNION ALL SELECT created_at_ms, position_id FROM position_closes
         ORDER BY 1 DESC",
    )?;
    let mut rows = stmt.query([])?;
    let mut latest: Vec<i64> = Vec::with_capacity(2);
    // Later strands within a day of the current one, latest first: the candidates it may
    // corroborate.
    let mut later: std::collections::VecDeque<(i64, String)> = std::collections::VecDeque::new();
    while let Some(row) = rows.next()? {
        let t: i64 = row.get(0)?;
        let position: String = row.get(1)?;
        if latest.len() < 2 {
            latest.push(t);
        }
        while later
            .front()
            .is_some_and(|(c, _)| c - t > AS_OF_CORROBORATION_MS)
        {
            later.pop_front();
        }
        if let Some((candidate, _)) = later.iter().find(|(_, p)| *p != position) {
            return Ok(Some(Timestamp(*candidate)));
        }
        later.push_back((t, position));
    }
    // Sparse data, no strand within a day of another position's: the latest still counts, but
    // at most a day past the second latest.
    Ok(match latest[..] {
        [] => None,
        [only] => Some(Timestamp(only)),
        [first, second, ..] => Some(Timestamp(first.min(second + AS_OF_CORROBORATION_MS))),
    })
}

/// Typed strands created after `t`: the ones a run as of `t` leaves for later.
pub fn count_created_after(conn: &Connection, t: Timestamp) -> Result<i64> {
    Ok(conn.query_row(
        "SELECT (SELECT COUNT(*) FROM pm_actions WHERE created_at_ms > ?1)
              + (SELECT COUNT(*) FROM position_closes WHERE created_at_ms > ?1)",
        [t.millis()],
        |r| r.get(0),
    )?)
}

/// A quarantine row: what was refused, why, and where it came from.
pub struct QuarantineEntry<'a> {
    /// Id of the strand (or a line reference when it had none).
    pub strand_id: &'a str,
    /// Why it was refused.
    pub reason: &'a QuarantineReason,
    /// The input as received.
    pub raw: &'a str,
    /// The file or table it came from.
    pub source: Option<&'a str>,
    /// Wall-clock time of the ingest.
    pub ingested_at: &'a str,
}

/// Record an unusable strand. Idempotent: the same strand, reason and raw text is stored once.
pub fn quarantine(conn: &Connection, q: &QuarantineEntry<'_>) -> Result<bool> {
    let n = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO quarantine (strand_id, reason_code, reason, raw, raw_hash, source, ingested_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?
        .execute(params![
            q.strand_id,
            q.reason.code.as_str(),
            q.reason.to_string(),
            q.raw,
            format!("{:016x}", stable_hash(q.raw.as_bytes())),
            q.source,
            q.ingested_at
        ])?;
    Ok(n == 1)
}

/// Quarantined rows by reason code.
pub fn quarantine_counts(conn: &Connection) -> Result<Vec<(String, i64)>> {
    let mut stmt = conn.prepare(
        "SELECT reason_code, COUNT(*) FROM quarantine GROUP BY reason_code ORDER BY reason_code",
    )?;
    let rows = stmt
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Secondary indexes of the typed tables dropped for a bulk load (see [`defer_typed_indexes`]),
/// as the SQL that creates them again.
#[must_use = "the dropped indexes must be restored"]
#[derive(Debug, Default)]
pub struct DeferredIndexes(Vec<String>);

/// When `pm_actions` and `position_closes` are both empty (a first load), drop their secondary
/// indexes so that the load inserts into their primary keys only; [`DeferredIndexes::restore`]
/// builds them again, each in one sorted pass, which costs a fraction of maintaining them row by
/// row. Call it inside the load's transaction: if the load fails and is rolled back, the drop is
/// rolled back too. Indexes never change what a query returns, only how fast, so nothing read
/// during the load depends on them. With rows already present nothing is deferred.
pub fn defer_typed_indexes(conn: &Connection) -> Result<DeferredIndexes> {
    let empty: bool = conn.query_row(
        "SELECT NOT EXISTS (SELECT 1 FROM pm_actions) AND NOT EXISTS (SELECT 1 FROM position_closes)",
        [],
        |r| r.get(0),
    )?;
    if !empty {
        return Ok(DeferredIndexes::default());
    }
    // `sql IS NULL` for the primary keys' own indexes, which stay.
    let indexes = conn
        .prepare(
            "SELECT name, sql FROM sqlite_master
             WHERE type = 'index' AND tbl_name IN ('pm_actions', 'position_closes') AND sql IS NOT NULL
             ORDER BY name",
        )?
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    let mut deferred = DeferredIndexes::default();
    for (name, sql) in indexes {
        conn.execute_batch(&format!("DROP INDEX \"{}\"", name.replace('"', "\"\"")))?;
        deferred.0.push(sql);
    }
    Ok(deferred)
}

impl DeferredIndexes {
    /// Create the dropped indexes again.
    pub fn restore(self, conn: &Connection) -> Result<()> {
        for sql in &self.0 {
            conn.execute_batch(sql)?;
        }
        Ok(())
    }
}

/// Store a normalised action (replaces one with the same strand id).
pub fn upsert_action(conn: &Connection, a: &PmAction) -> Result<()> {
    execute_upsert_action(
        &mut *conn.prepare_cached(UPSERT_ACTION_SQL)?,
        a,
        &ActionText::of(a),
    )
}

fn execute_upsert_action(
    upsert: &mut rusqlite::Statement<'_>,
    a: &PmAction,
    text: &ActionText,
) -> Result<()> {
    upsert.execute(params![
        a.strand_id,
        a.module,
        a.position_id,
        a.trade_id,
        text.ts,
        a.ts.millis(),
        a.created_at.millis(),
        a.decision_type,
        a.size_frac,
        a.pattern_key,
        a.category.map(ActionCategory::as_str),
        text.scope
    ])?;
    Ok(())
}

/// Store a normalised close (replaces one with the same strand id).
pub fn upsert_close(conn: &Connection, c: &PositionClose) -> Result<()> {
    execute_upsert_close(&mut *conn.prepare_cached(UPSERT_CLOSE_SQL)?, c)
}

fn execute_upsert_close(upsert: &mut rusqlite::Statement<'_>, c: &PositionClose) -> Result<()> {
    upsert.execute(params![
        c.strand_id,
        c.module,
        c.position_id,
        c.trade_id,
        c.created_at.millis(),
        c.entry_at.map(Timestamp::millis),
        c.exit_at.to_rfc3339(),
        c.exit_at.millis(),
        c.rr,
        c.pnl_usd,
        c.hold_days,
        c.time_to_s3,
        c.outcome_class,
        c.exit_reason
    ])?;
    Ok(())
}

/// Positions with any typed strand created in `(from, to]`: the ones whose links change when the
/// as-of time moves across that interval.
pub fn positions_with_strands_created_between(
    conn: &Connection,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<String>> {
    crate::text_rows(
        conn,
        "SELECT position_id FROM pm_actions WHERE created_at_ms > ?1 AND created_at_ms <= ?2
         UNION SELECT position_id FROM position_closes WHERE created_at_ms > ?1 AND created_at_ms <= ?2",
        [from.millis(), to.millis()],
    )
}

/// Positions of the typed strands whose `ad_strands` row was stored after `rowid`.
pub fn positions_stored_after(conn: &Connection, rowid: i64) -> Result<Vec<String>> {
    crate::text_rows(
        conn,
        "SELECT a.position_id FROM pm_actions a JOIN ad_strands s ON s.id = a.strand_id WHERE s.rowid > ?1
         UNION SELECT c.position_id FROM position_closes c JOIN ad_strands s ON s.id = c.strand_id WHERE s.rowid > ?1",
        [rowid],
    )
}

/// The distinct values that `module`'s stored actions have for scope dimension `dim` (for
/// checking an operator's switch against what the data holds).
pub fn action_scope_values(conn: &Connection, module: &str, dim: &str) -> Result<Vec<String>> {
    crate::text_rows(
        conn,
        "SELECT DISTINCT CAST(json_extract(scope, '$.' || json_quote(?2)) AS TEXT) FROM pm_actions
         WHERE module = ?1 AND json_extract(scope, '$.' || json_quote(?2)) IS NOT NULL ORDER BY 1",
        [module, dim],
    )
}

/// Every module the store knows: of a stored action or close, or of a config version.
pub fn known_modules(conn: &Connection) -> Result<Vec<String>> {
    crate::text_rows(
        conn,
        "SELECT module FROM pm_actions UNION SELECT module FROM position_closes
         UNION SELECT module FROM learning_configs ORDER BY 1",
        [],
    )
}

/// The distinct pattern keys of `module`'s stored actions.
pub fn action_pattern_keys(conn: &Connection, module: &str) -> Result<Vec<String>> {
    crate::text_rows(
        conn,
        "SELECT DISTINCT pattern_key FROM pm_actions
         WHERE module = ?1 AND pattern_key IS NOT NULL ORDER BY 1",
        [module],
    )
}

/// Every position with an action or a close.
pub fn all_positions(conn: &Connection) -> Result<Vec<String>> {
    crate::text_rows(
        conn,
        "SELECT position_id FROM pm_actions UNION SELECT position_id FROM position_closes ORDER BY 1",
        [],
    )
}

/// Fill the temporary `dirty_positions` table that the per-position reads and deletes join on.
pub fn set_dirty_positions(conn: &Connection, positions: &[String]) -> Result<()> {
    conn.execute_batch(
        "CREATE TEMP TABLE IF NOT EXISTS dirty_positions (position_id TEXT PRIMARY KEY); DELETE FROM dirty_positions;",
    )?;
    let mut stmt =
        conn.prepare_cached("INSERT OR IGNORE INTO dirty_positions (position_id) VALUES (?1)")?;
    for p in positions {
        stmt.execute([p])?;
    }
    Ok(())
}

/// Hands `each` the actions of the dirty positions known at `as_of`, one at a time, ordered by
/// position (byte order of `position_id`), then time, then strand id. Streaming them lets the
/// caller link a position and drop its actions before the next: at 100k trades, holding them all
/// took a gigabyte, and freeing their millions of small allocations at the end took seconds.
pub fn for_each_action_of_dirty_positions<E: From<crate::StoreError>>(
    conn: &Connection,
    as_of: Timestamp,
    mut each: impl FnMut(PmAction) -> std::result::Result<(), E>,
) -> std::result::Result<(), E> {
    let mut stmt = conn
        .prepare(
            "SELECT a.strand_id, a.module, a.position_id, a.trade_id, a.ts_ms, a.created_at_ms, a.decision_type,
                    a.size_frac, a.pattern_key, a.action_category, a.scope
             FROM pm_actions a JOIN dirty_positions d ON d.position_id = a.position_id
             WHERE a.created_at_ms <= ?1
             ORDER BY a.position_id, a.ts_ms, a.strand_id",
        )
        .map_err(crate::StoreError::from)?;
    let mut rows = stmt
        .query([as_of.millis()])
        .map_err(crate::StoreError::from)?;
    while let Some(row) = rows.next().map_err(crate::StoreError::from)? {
        each(action_from_row(row)?)?;
    }
    Ok(())
}

fn action_from_row(r: &rusqlite::Row<'_>) -> Result<PmAction> {
    let mut a = PmAction {
        strand_id: r.get(0)?,
        module: r.get(1)?,
        position_id: r.get(2)?,
        trade_id: r.get(3)?,
        ts: Timestamp(r.get(4)?),
        created_at: Timestamp(r.get(5)?),
        decision_type: r.get(6)?,
        size_frac: r.get(7)?,
        pattern_key: r.get(8)?,
        category: None,
        scope: Scope::default(),
    };
    let category: Option<String> = r.get(9)?;
    a.category = category
        .map(|c| c.parse::<ActionCategory>())
        .transpose()
        .map_err(|e| crate::StoreError::Corrupt(format!("pm_actions {}: {e}", a.strand_id)))?;
    let scope_text: String = r.get(10)?;
    a.scope = match canonical_pairs(&scope_text) {
        Some(pairs) => Scope::from_string_pairs(pairs),
        None => {
            let corrupt = |e: &dyn std::fmt::Display| {
                crate::StoreError::Corrupt(format!("pm_actions {} scope: {e}", a.strand_id))
            };
            let v: serde_json::Value =
                serde_json::from_str(&scope_text).map_err(|e| corrupt(&e))?;
            Scope::from_json(&v).map_err(|e| corrupt(&e))?
        }
    };
    Ok(a)
}

/// Closes of the dirty positions known at `as_of`, ordered by position, then exit time.
pub fn closes_of_dirty_positions(
    conn: &Connection,
    as_of: Timestamp,
) -> Result<Vec<PositionClose>> {
    let mut stmt = conn.prepare(
        "SELECT c.strand_id, c.module, c.position_id, c.trade_id, c.created_at_ms, c.entry_at_ms, c.exit_at_ms,
                c.rr, c.pnl_usd, c.hold_days, c.time_to_s3, c.outcome_class, c.exit_reason
         FROM position_closes c JOIN dirty_positions d ON d.position_id = c.position_id
         WHERE c.created_at_ms <= ?1
         ORDER BY c.position_id, c.exit_at_ms, c.created_at_ms, c.strand_id",
    )?;
    let rows = stmt
        .query_map([as_of.millis()], |r| {
            Ok(PositionClose {
                strand_id: r.get(0)?,
                module: r.get(1)?,
                position_id: r.get(2)?,
                trade_id: r.get(3)?,
                created_at: Timestamp(r.get(4)?),
                entry_at: r.get::<_, Option<i64>>(5)?.map(Timestamp),
                exit_at: Timestamp(r.get(6)?),
                rr: r.get(7)?,
                pnl_usd: r.get(8)?,
                hold_days: r.get(9)?,
                time_to_s3: r.get(10)?,
                outcome_class: r.get(11)?,
                exit_reason: r.get(12)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Row counts of the input tables, for `status`.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct StrandCounts {
    /// Raw strands stored.
    pub strands: i64,
    /// Normalised actions.
    pub actions: i64,
    /// Of those, actions with the v5 fields.
    pub v5_actions: i64,
    /// Normalised closes.
    pub closes: i64,
    /// Quarantined rows.
    pub quarantined: i64,
}

/// The input tables' row counts.
pub fn counts(conn: &Connection) -> Result<StrandCounts> {
    let one = |sql: &str| -> Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    Ok(StrandCounts {
        strands: one("SELECT COUNT(*) FROM ad_strands")?,
        actions: one("SELECT COUNT(*) FROM pm_actions")?,
        v5_actions: one("SELECT COUNT(*) FROM pm_actions WHERE pattern_key IS NOT NULL")?,
        closes: one("SELECT COUNT(*) FROM position_closes")?,
        quarantined: one("SELECT COUNT(*) FROM quarantine")?,
    })
}

/// Copy the normalised inputs (`pm_actions`, `position_closes`) of the store at `source` into
/// `conn` (an empty scratch store with the same schema), e.g. for a replay that must not touch
/// the source's derived tables.
pub fn copy_typed_inputs_from(conn: &Connection, source: &std::path::Path) -> Result<()> {
    conn.execute("ATTACH DATABASE ?1 AS src", [source.to_string_lossy()])?;
    let copied = conn.execute_batch(
        "INSERT INTO pm_actions SELECT * FROM src.pm_actions;
         INSERT INTO position_closes SELECT * FROM src.position_closes;",
    );
    conn.execute_batch("DETACH DATABASE src")?;
    copied?;
    Ok(())
}

/// `size_frac` of every action that has one, by strand id.
pub fn action_sizes(conn: &Connection) -> Result<std::collections::BTreeMap<String, f64>> {
    let mut stmt =
        conn.prepare("SELECT strand_id, size_frac FROM pm_actions WHERE size_frac IS NOT NULL")?;
    let rows = stmt
        .query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, f64>(1)?)))?
        .collect::<rusqlite::Result<std::collections::BTreeMap<_, _>>>()?;
    Ok(rows)
}
