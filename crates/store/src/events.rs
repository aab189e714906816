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

/// What the lesson stage's trade index reads of one trade event, borrowed.
#[derive(Debug, Clone, Copy)]
pub struct IndexEventRef<'r> {
    /// The trade (its close's strand id).
    pub trade_key: &'r str,
    /// Producing module.
    pub module: &'r str,
    /// The action's pattern.
    pub pattern_key: &'r str,
    /// The action's category.
    pub category: ActionCategory,
    /// The action's scope JSON as stored.
    pub scope: &'r str,
    /// The trade's winsorized R.
    pub rr_winsorized: f64,
    /// When the trade opened, when known (its time cluster; the exit time otherwise).
    pub entry_at: Option<Timestamp>,
    /// When the trade closed (its decay weight).
    pub exit_at: Timestamp,
}

impl<'e> From<&'e TradeEvent> for IndexEventRef<'e> {
    fn from(e: &'e TradeEvent) -> Self {
        Self {
            trade_key: &e.trade_key,
            module: &e.module,
            pattern_key: &e.pattern_key,
            category: e.category,
            scope: &e.scope,
            rr_winsorized: e.rr_winsorized,
            entry_at: e.entry_at,
            exit_at: e.exit_at,
        }
    }
}

/// One event's place in [`for_each_index_event`]'s text buffer, and its figures.
struct StoredEvent {
    /// Where its texts start: trade key, action strand id, module, pattern, scope, back to back.
    start: usize,
    /// The lengths of those five texts.
    lengths: [u32; 5],
    category: ActionCategory,
    rr_winsorized: f64,
    entry_at: Option<Timestamp>,
    exit_at: Timestamp,
}

impl StoredEvent {
    /// The trade key and action strand id, the order's texts.
    fn sort_texts<'t>(&self, buffer: &'t str) -> (&'t str, &'t str) {
        let trade_end = self.start + self.lengths[0] as usize;
        let action_end = trade_end + self.lengths[1] as usize;
        (
            &buffer[self.start..trade_end],
            &buffer[trade_end..action_end],
        )
    }

    /// The five texts (see `start`).
    fn texts<'t>(&self, buffer: &'t str) -> [&'t str; 5] {
        let mut at = self.start;
        self.lengths.map(|len| {
            let text = &buffer[at..at + len as usize];
            at += len as usize;
            text
        })
    }
}

/// Every trade event in canonical order (as [`load_all_events`]) as an [`IndexEventRef`]: the
/// rows are read once, their texts into one buffer rather than a string per field, and sorted
/// there. Both are freed on return.
pub fn for_each_index_event(
    conn: &Connection,
    mut visit: impl FnMut(IndexEventRef<'_>) -> Result<()>,
) -> Result<()> {
    let mut buffer = String::new();
    let mut events: Vec<StoredEvent> = Vec::new();
    let mut stmt = conn.prepare(
        "SELECT trade_key, action_strand_id, module, pattern_key, action_category, scope,
                rr_winsorized, entry_at, exit_at_ms
         FROM trade_events",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let trade_key = text_column(r, 0)?;
        let category = event_category(text_column(r, 4)?, trade_key)?;
        let start = buffer.len();
        let mut lengths = [0u32; 5];
        for (length, column) in lengths.iter_mut().zip([0, 1, 2, 3, 5]) {
            let text = text_column(r, column)?;
            *length = u32::try_from(text.len()).map_err(|_| {
                crate::StoreError::Corrupt(format!("trade_events {trade_key}: a text over 4 GiB"))
            })?;
            buffer.push_str(text);
        }
        let entry_at = r.get_ref(7)?.as_str_or_null().map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e))
        })?;
        events.push(StoredEvent {
            start,
            lengths,
            category,
            rr_winsorized: r.get(6)?,
            entry_at: entry_at.and_then(|t| Timestamp::parse(t).ok()),
            exit_at: Timestamp(r.get(8)?),
        });
    }
    // The order of `load_all_events`: exit time, then trade key and action strand id bytewise
    // (the texts are only read on a tie: a trade's events share its exit time).
    events.sort_unstable_by(|a, b| {
        a.exit_at
            .cmp(&b.exit_at)
            .then_with(|| a.sort_texts(&buffer).cmp(&b.sort_texts(&buffer)))
    });
    for e in &events {
        let [trade_key, _, module, pattern_key, scope] = e.texts(&buffer);
        visit(IndexEventRef {
            trade_key,
            module,
            pattern_key,
            category: e.category,
            scope,
            rr_winsorized: e.rr_winsorized,
            entry_at: e.entry_at,
            exit_at: e.exit_at,
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

#[cfg(test)]
mod tests {
    use super::*;

    fn event(
        trade: &str,
        action: &str,
        exit_ms: i64,
        entry_ms: Option<i64>,
        i: usize,
    ) -> TradeEvent {
        TradeEvent {
            trade_key: trade.to_string(),
            position_id: format!("pos-{trade}"),
            trade_id: None,
            action_strand_id: action.to_string(),
            module: if i.is_multiple_of(2) { "pm" } else { "other" }.to_string(),
            pattern_key: format!("p.S{}", i % 3),
            category: if i.is_multiple_of(4) {
                ActionCategory::Entry
            } else {
                ActionCategory::Add
            },
            scope: format!("{{\"a\":\"{i}\",\"b\":\"ü{}\"}}", i % 5),
            rr: i as f64 - 3.5,
            rr_winsorized: i as f64 * 0.25 - 1.0,
            pnl_usd: None,
            hold_days: Some(1.5),
            time_to_s3: None,
            entry_at: entry_ms.map(Timestamp),
            exit_at: Timestamp(exit_ms),
            action_at: Timestamp(exit_ms - 10),
        }
    }

    type Projection = (
        String,
        String,
        String,
        ActionCategory,
        String,
        u64,
        Option<i64>,
        i64,
    );

    fn project(e: IndexEventRef<'_>) -> Projection {
        (
            e.trade_key.to_string(),
            e.module.to_string(),
            e.pattern_key.to_string(),
            e.category,
            e.scope.to_string(),
            e.rr_winsorized.to_bits(),
            e.entry_at.map(|t| t.0),
            e.exit_at.0,
        )
    }

    #[test]
    fn the_index_events_come_in_the_order_and_with_the_fields_of_the_loaded_events() {
        let conn = crate::open_in_memory().unwrap();
        // Stored out of order, with ties on the exit time (a trade's events, and two trades
        // closing at once), keys that sort differently as bytes and as numbers, and a missing
        // entry time.
        let events = [
            event("t10", "a2", 5_000, Some(1_000), 0),
            event("t9", "a1", 5_000, Some(2_000), 1),
            event("t10", "a10", 5_000, Some(1_000), 2),
            event("t2", "a1", -7_000, None, 3),
            event("t10", "a1", 5_000, Some(1_000), 4),
            event("t3", "b", 9_000_000, Some(8_000_000), 5),
            event("t1", "z", 5_000, None, 6),
        ];
        for e in &events {
            insert_trade_event(&conn, e).unwrap();
        }
        let expected: Vec<Projection> = load_all_events(&conn)
            .unwrap()
            .iter()
            .map(|e| project(e.into()))
            .collect();
        let mut seen = Vec::new();
        for_each_index_event(&conn, |e| {
            seen.push(project(e));
            Ok(())
        })
        .unwrap();
        assert_eq!(seen, expected);
        let keys: Vec<&str> = seen.iter().map(|p| p.0.as_str()).collect();
        assert_eq!(keys, ["t2", "t1", "t10", "t10", "t10", "t9", "t3"]);
    }
}
