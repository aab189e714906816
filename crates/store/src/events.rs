//! Link output: `linked_trades`, `trade_events` (one row per trade × action) and `link_anomalies`.
//! Rows are replaced per position, so a position re-linked after new strands arrive never leaves
//! stale rows behind.

use crate::{text_column, Result};
use learnloop_model::stats::TradeOutcome;
use learnloop_model::{
    ActionCategory, AnomalyKind, LinkAnomaly, LinkedTrade, Timestamp, TradeEvent,
};
use rusqlite::{params, Connection};

/// Delete the links of positions marked dirty (re-linked next).
pub fn delete_links_of_dirty_positions(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "DELETE FROM trade_events WHERE position_id IN (SELECT position_id FROM dirty_positions);
         DELETE FROM linked_trades WHERE position_id IN (SELECT position_id FROM dirty_positions);
         DELETE FROM link_anomalies WHERE position_id IN (SELECT position_id FROM dirty_positions);",
    )?;
    Ok(())
}

/// Delete every link (a rebuild).
pub fn delete_all_links(conn: &Connection) -> Result<()> {
    conn.execute_batch(
        "DELETE FROM trade_events; DELETE FROM linked_trades; DELETE FROM link_anomalies;",
    )?;
    Ok(())
}

/// Store a linked trade.
pub fn insert_linked_trade(conn: &Connection, t: &LinkedTrade) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO linked_trades (trade_key, module, position_id, trade_id, close_strand_id, cycle_start_ms,
             exit_at_ms, rr, rr_winsorized, n_actions, n_v5_actions)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        t.trade_key,
        t.module,
        t.position_id,
        t.trade_id,
        t.close_strand_id,
        t.cycle_start.map(Timestamp::millis),
        t.exit_at.millis(),
        t.rr,
        t.rr_winsorized,
        t.n_actions,
        t.n_v5_actions
    ])?;
    Ok(())
}

/// Store one trade event.
pub fn insert_trade_event(conn: &Connection, e: &TradeEvent) -> Result<()> {
    conn.prepare_cached(
        "INSERT INTO trade_events (trade_key, position_id, trade_id, action_strand_id, module, pattern_key,
             action_category, scope, rr, rr_winsorized, pnl_usd, hold_days, time_to_s3, entry_at, exit_at,
             exit_at_ms, action_at_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
    )?
    .execute(params![
        e.trade_key,
        e.position_id,
        e.trade_id,
        e.action_strand_id,
        e.module,
        e.pattern_key,
        e.category.as_str(),
        e.scope,
        e.rr,
        e.rr_winsorized,
        e.pnl_usd,
        e.hold_days,
        e.time_to_s3,
        e.entry_at.map(|t| t.to_rfc3339()),
        e.exit_at.to_rfc3339(),
        e.exit_at.millis(),
        e.action_at.millis()
    ])?;
    Ok(())
}

/// Store a link anomaly.
pub fn insert_anomaly(conn: &Connection, a: &LinkAnomaly) -> Result<()> {
    conn.prepare_cached(
        "INSERT OR REPLACE INTO link_anomalies (kind, strand_id, position_id, detail) VALUES (?1, ?2, ?3, ?4)",
    )?
    .execute(params![a.kind.as_str(), a.strand_id, a.position_id, a.detail])?;
    Ok(())
}

/// Every trade event, in the canonical order the aggregator folds them: by exit time, trade, action.
pub fn load_all_events(conn: &Connection) -> Result<Vec<TradeEvent>> {
    let mut rows = Vec::new();
    for_each_event_unordered(conn, |e| {
        rows.push(e);
        Ok(())
    })?;
    // Sorted here rather than by an ORDER BY, which copied every wide row through SQLite's
    // sorter (~10 % of the aggregate stage on 8,000 trades). Bytewise string order, as SQLite's
    // BINARY collation; (trade_key, action_strand_id) is the primary key, so the order is total.
    rows.sort_unstable_by(|a, b| {
        (a.exit_at, &a.trade_key, &a.action_strand_id).cmp(&(
            b.exit_at,
            &b.trade_key,
            &b.action_strand_id,
        ))
    });
    Ok(rows)
}

/// The scope of every linked action of one (module, pattern, category) group.
pub fn scopes_of_group(
    conn: &Connection,
    group: crate::stats::GroupKey<'_>,
) -> Result<Vec<String>> {
    crate::text_rows(
        conn,
        "SELECT scope FROM trade_events
         WHERE module = ?1 AND pattern_key = ?2 AND action_category = ?3",
        rusqlite::params![group.module, group.pattern_key, group.category.as_str()],
    )
}

/// Every trade event in no particular order, for a caller that needs none: no sort of the whole
/// table (which SQLite holds in memory) before the first event.
pub fn for_each_event_unordered(
    conn: &Connection,
    visit: impl FnMut(TradeEvent) -> Result<()>,
) -> Result<()> {
    query_events(conn, "", visit)
}

fn query_events(
    conn: &Connection,
    order_by: &str,
    mut visit: impl FnMut(TradeEvent) -> Result<()>,
) -> Result<()> {
    let mut stmt = conn.prepare(&format!(
        "SELECT trade_key, position_id, trade_id, action_strand_id, module, pattern_key, action_category, scope,
                rr, rr_winsorized, pnl_usd, hold_days, time_to_s3, entry_at, exit_at_ms, action_at_ms
         FROM trade_events {order_by}"
    ))?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let entry_at: Option<String> = r.get(13)?;
        let trade_key: String = r.get(0)?;
        let category = event_category(text_column(r, 6)?, &trade_key)?;
        visit(TradeEvent {
            trade_key,
            position_id: r.get(1)?,
            trade_id: r.get(2)?,
            action_strand_id: r.get(3)?,
            module: r.get(4)?,
            pattern_key: r.get(5)?,
            category,
            scope: r.get(7)?,
            rr: r.get(8)?,
            rr_winsorized: r.get(9)?,
            pnl_usd: r.get(10)?,
            hold_days: r.get(11)?,
            time_to_s3: r.get(12)?,
            entry_at: entry_at.and_then(|t| Timestamp::parse(&t).ok()),
            exit_at: Timestamp(r.get(14)?),
            action_at: Timestamp(r.get(15)?),
        })?;
    }
    Ok(())
}

/// A stored event's category; text outside the closed set is a corrupt store, named by trade.
fn event_category(text: &str, trade_key: &str) -> Result<ActionCategory> {
    text.parse()
        .map_err(|err| crate::StoreError::Corrupt(format!("trade_events {trade_key}: {err}")))
}

/// What the aggregate reads of one trade event, borrowed from the row being read: its trade, its
/// group, its scope and its trade's outcome (no ids, times or raw R it does not use).
#[derive(Debug, Clone, Copy)]
pub struct FoldEventRef<'r> {
    /// The trade (its close's strand id).
    pub trade_key: &'r str,
    /// The action's strand id (orders a trade's actions).
    pub action_strand_id: &'r str,
    /// Producing module.
    pub module: &'r str,
    /// The action's pattern.
    pub pattern_key: &'r str,
    /// The action's category.
    pub category: ActionCategory,
    /// The action's scope JSON as stored.
    pub scope: &'r str,
    /// The trade's outcome.
    pub outcome: TradeOutcome,
}

/// Every trade event as [`FoldEventRef`], in no particular order, without an allocation per
/// event: a 100k-trade book's ~0.7 M events decoded into owned [`TradeEvent`]s cost three times
/// the read itself.
pub fn for_each_fold_event(
    conn: &Connection,
    mut visit: impl FnMut(FoldEventRef<'_>) -> Result<()>,
) -> Result<()> {
    let mut stmt = conn.prepare(
        "SELECT trade_key, action_strand_id, module, pattern_key, action_category, scope,
                rr_winsorized, pnl_usd, hold_days, time_to_s3, exit_at_ms
         FROM trade_events",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let text = |i: usize| text_column(r, i);
        let trade_key = text(0)?;
        let category = event_category(text(4)?, trade_key)?;
        visit(FoldEventRef {
            trade_key,
            action_strand_id: text(1)?,
            module: text(2)?,
            pattern_key: text(3)?,
            category,
            scope: text(5)?,
            outcome: TradeOutcome {
                r: r.get(6)?,
                pnl_usd: r.get(7)?,
                hold_days: r.get(8)?,
                time_to_s3: r.get(9)?,
                exit_at: Timestamp(r.get(10)?),
            },
        })?;
    }
    Ok(())
}

/// One observation per linked trade that has v5 actions (the population the statistics see):
/// (module, trade_key, exit time, winsorized R), by exit time then key.
pub fn module_trades(conn: &Connection) -> Result<Vec<(String, String, Timestamp, f64)>> {
    let mut stmt = conn.prepare(
        "SELECT module, trade_key, exit_at_ms, rr_winsorized FROM linked_trades WHERE n_v5_actions > 0
         ORDER BY exit_at_ms, trade_key",
    )?;
    let rows = stmt
        .query_map([], |r| {
            Ok((r.get(0)?, r.get(1)?, Timestamp(r.get(2)?), r.get(3)?))
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Row counts of the link tables, for `status`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LinkCounts {
    /// Linked trades.
    pub linked_trades: i64,
    /// Trade events.
    pub trade_events: i64,
    /// Link anomalies by kind.
    pub anomalies: Vec<(AnomalyKind, i64)>,
}

/// The number of linked trades and their mean winsorized R (0 when there are none): a data
/// set's fingerprint (`demo check` compares it with a truth file's).
pub fn linked_trades_summary(conn: &Connection) -> Result<(i64, f64)> {
    Ok(conn.query_row(
        "SELECT COUNT(*), COALESCE(AVG(rr_winsorized), 0.0) FROM linked_trades",
        [],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?)
}

/// The link tables' row counts.
pub fn link_counts(conn: &Connection) -> Result<LinkCounts> {
    let one = |sql: &str| -> Result<i64> { Ok(conn.query_row(sql, [], |r| r.get(0))?) };
    let mut stmt =
        conn.prepare("SELECT kind, COUNT(*) FROM link_anomalies GROUP BY kind ORDER BY kind")?;
    let anomalies = stmt
        .query_map([], |r| Ok((crate::parsed_column(r, 0)?, r.get(1)?)))?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(LinkCounts {
        linked_trades: one("SELECT COUNT(*) FROM linked_trades")?,
        trade_events: one("SELECT COUNT(*) FROM trade_events")?,
        anomalies,
    })
}
