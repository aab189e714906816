//! Linking rule (SPEC §1): an action belongs to the closed trade of the same position whose cycle
//! window `(previous close, this close]` contains it, and where both carry a trade_id they must
//! agree. Everything that does not fit is reported as a `link_anomalies` row, never guessed.
//!
//! A position is re-linked as a whole whenever any of its strands is new (or crosses the as-of
//! time), so late-arriving strands repair earlier cycles instead of leaving stale links behind.

use crate::Result;
use learnloop_model::strand::{PmAction, PositionClose};
use learnloop_model::{winsorize_r, AnomalyKind, LinkAnomaly, LinkedTrade, Timestamp, TradeEvent};
use learnloop_store::events;
use learnloop_store::{meta, strands, Connection};
use std::collections::BTreeMap;

const LINKED_ROWID_KEY: &str = "linked_rowid";
const LINKED_AS_OF_KEY: &str = "linked_as_of_ms";
const LINK_RULES_KEY: &str = "link_rules_version";
/// The version of the linking rules. Raised when a change of [`link_position`] links stored
/// strands differently (2: of duplicate closes the first written is kept), so that the next link
/// of a store linked by the old rules re-links every position once, as `--rebuild` would.
const LINK_RULES_VERSION: i64 = 2;

/// The as-of time of the store's links (`None` before the first link stage).
pub fn linked_as_of(conn: &Connection) -> Result<Option<Timestamp>> {
    Ok(meta::get_i64(conn, LINKED_AS_OF_KEY)?.map(Timestamp))
}

/// What the link stage did.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LinkReport {
    /// The as-of time.
    pub as_of: String,
    /// Whether every position was re-linked.
    pub rebuild: bool,
    /// Positions re-linked.
    pub positions_relinked: u64,
    /// Linked trades after the stage.
    pub trades_linked_total: i64,
    /// Net change in linked trades by this run: negative when re-linking removed trades (a
    /// link as of an earlier time, or a late close that merged two cycles).
    pub trades_linked_new: i64,
    /// Trade events after the stage.
    pub trade_events_total: i64,
    /// Link anomalies by kind.
    pub anomalies: BTreeMap<AnomalyKind, i64>,
    /// The positions re-linked (all of them after a rebuild), for callers that keep the links
    /// in memory.
    #[serde(skip)]
    pub relinked: Vec<String>,
    /// The trade events of the re-linked positions, when asked for ([`LinkOptions::keep_events`]).
    #[serde(skip)]
    pub events: Vec<TradeEvent>,
}

/// The links of one position, computed from its actions and closes known at the as-of time.
#[derive(Debug, Default, PartialEq)]
pub struct PositionLinks {
    /// The position's closed trades.
    pub trades: Vec<LinkedTrade>,
    /// One event per trade and action.
    pub events: Vec<TradeEvent>,
    /// What could not be linked, and why.
    pub anomalies: Vec<LinkAnomaly>,
}

/// Link one position. `actions` sorted by time, `closes` by exit time (then created_at, id).
pub fn link_position(actions: &[&PmAction], closes: &[&PositionClose]) -> PositionLinks {
    let mut out = PositionLinks::default();
    let kept = drop_duplicate_closes(closes, &mut out.anomalies);
    let mut per_close: Vec<Vec<&PmAction>> = vec![Vec::new(); kept.len()];
    for a in actions {
        // First close whose exit is at or after the action: its window contains the action.
        let i = kept.partition_point(|c| c.exit_at < a.ts);
        let carried_close = a
            .trade_id
            .as_ref()
            .and_then(|tid| kept.iter().position(|c| c.trade_id.as_ref() == Some(tid)));
        let anomaly = |kind: AnomalyKind, detail: String| LinkAnomaly {
            kind,
            strand_id: a.strand_id.clone(),
            position_id: a.position_id.clone(),
            detail,
        };
        match (kept.get(i), carried_close) {
            (_, Some(j)) if j < i => out.anomalies.push(anomaly(
                AnomalyKind::LateAction,
                format!(
                    "action at {} carries trade_id {:?} whose close {} was at {}",
                    a.ts,
                    kept[j].trade_id.as_deref().unwrap_or_default(),
                    kept[j].strand_id,
                    kept[j].exit_at
                ),
            )),
            (None, _) => out.anomalies.push(anomaly(
                AnomalyKind::OpenCycle,
                format!(
                    "action at {} is after the position's last close; its cycle is still open",
                    a.ts
                ),
            )),
            (Some(c), _) if trade_ids_disagree(a.trade_id.as_deref(), c.trade_id.as_deref()) => {
                out.anomalies.push(anomaly(
                    AnomalyKind::TradeIdMismatch,
                    format!(
                        "action trade_id {:?} but the cycle ending {} at {} has trade_id {:?}",
                        a.trade_id.as_deref().unwrap_or_default(),
                        c.strand_id,
                        c.exit_at,
                        c.trade_id.as_deref().unwrap_or_default()
                    ),
                ))
            }
            (Some(_), _) => per_close[i].push(a),
        }
    }
    for (i, close) in kept.iter().enumerate() {
        let linked = &per_close[i];
        if linked.is_empty() {
            out.anomalies.push(LinkAnomaly {
                kind: AnomalyKind::CloseWithoutActions,
                strand_id: close.strand_id.clone(),
                position_id: close.position_id.clone(),
                detail: format!(
                    "no action of this position falls in the cycle ending at {}",
                    close.exit_at
                ),
            });
            continue;
        }
        push_trade(
            &mut out,
            close,
            i.checked_sub(1).map(|p| kept[p].exit_at),
            linked,
        );
    }
    out
}

fn trade_ids_disagree(action: Option<&str>, close: Option<&str>) -> bool {
    matches!((action, close), (Some(a), Some(c)) if a != c)
}

/// The closes of distinct cycles, in exit order. Of closes with one exit time or one trade_id the
/// first *written* (created_at, then id) is the original: a re-sent copy with another exit time
/// must not displace it, whichever exit sorts first.
fn drop_duplicate_closes<'a>(
    closes: &[&'a PositionClose],
    anomalies: &mut Vec<LinkAnomaly>,
) -> Vec<&'a PositionClose> {
    let mut by_arrival = closes.to_vec();
    by_arrival.sort_by(|a, b| (a.created_at, &a.strand_id).cmp(&(b.created_at, &b.strand_id)));
    let mut kept: Vec<&PositionClose> = Vec::with_capacity(closes.len());
    for c in by_arrival {
        let original = kept
            .iter()
            .find(|k| k.exit_at == c.exit_at || (k.trade_id.is_some() && k.trade_id == c.trade_id));
        match original {
            Some(k) => anomalies.push(LinkAnomaly {
                kind: AnomalyKind::DuplicateClose,
                strand_id: c.strand_id.clone(),
                position_id: c.position_id.clone(),
                detail: format!(
                    "duplicate of close {} (same trade_id or exit time); the first is kept",
                    k.strand_id
                ),
            }),
            None => kept.push(c),
        }
    }
    kept.sort_by(|a, b| {
        (a.exit_at, a.created_at, &a.strand_id).cmp(&(b.exit_at, b.created_at, &b.strand_id))
    });
    kept
}

fn push_trade(
    out: &mut PositionLinks,
    close: &PositionClose,
    cycle_start: Option<Timestamp>,
    actions: &[&PmAction],
) {
    let trade_key = close.strand_id.clone();
    let rr_w = winsorize_r(close.rr);
    let mut n_v5 = 0;
    for a in actions {
        let (Some(pattern_key), Some(category)) = (&a.pattern_key, a.category) else {
            out.anomalies.push(LinkAnomaly {
                kind: AnomalyKind::LegacyAction,
                strand_id: a.strand_id.clone(),
                position_id: a.position_id.clone(),
                detail: format!(
                    "linked to {trade_key} but has no pattern_key/action_category (pre-v5)"
                ),
            });
            continue;
        };
        n_v5 += 1;
        out.events.push(TradeEvent {
            trade_key: trade_key.clone(),
            position_id: close.position_id.clone(),
            trade_id: close.trade_id.clone().or_else(|| a.trade_id.clone()),
            action_strand_id: a.strand_id.clone(),
            module: close.module.clone(),
            pattern_key: pattern_key.clone(),
            category,
            scope: a.scope.to_json(),
            rr: close.rr,
            rr_winsorized: rr_w,
            pnl_usd: close.pnl_usd,
            hold_days: close.hold_days,
            time_to_s3: close.time_to_s3,
            entry_at: close.entry_at,
            exit_at: close.exit_at,
            action_at: a.ts,
        });
    }
    out.trades.push(LinkedTrade {
        trade_key,
        module: close.module.clone(),
        position_id: close.position_id.clone(),
        trade_id: close.trade_id.clone(),
        close_strand_id: close.strand_id.clone(),
        cycle_start,
        exit_at: close.exit_at,
        rr: close.rr,
        rr_winsorized: rr_w,
        n_actions: actions.len() as i64,
        n_v5_actions: n_v5,
    });
}

/// How [`link`] runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkOptions {
    /// Re-link every position, not only those touched since the last link.
    pub rebuild: bool,
    /// Hand back the re-linked positions' trade events in [`LinkReport::events`] (for a caller
    /// that keeps the events in memory, the replay, instead of reading them back).
    pub keep_events: bool,
}

/// Link everything known at `as_of`: only positions touched since the last link, or all of them
/// with `rebuild`.
pub fn link(conn: &Connection, as_of: Timestamp, options: LinkOptions) -> Result<LinkReport> {
    // The strands of the positions to link are read once and their links written position by
    // position: a bounded cache reuses its buffers (`ONE_PASS_PAGE_CACHE_MIB`).
    learnloop_store::with_page_cache_mib(conn, learnloop_store::ONE_PASS_PAGE_CACHE_MIB, || {
        link_inner(conn, as_of, options.rebuild, options.keep_events)
    })
}

fn link_inner(
    conn: &Connection,
    as_of: Timestamp,
    rebuild: bool,
    keep_events: bool,
) -> Result<LinkReport> {
    let last_rowid = meta::get_i64(conn, LINKED_ROWID_KEY)?;
    let last_as_of = meta::get_i64(conn, LINKED_AS_OF_KEY)?.map(Timestamp);
    let before = events::link_counts(conn)?.linked_trades;
    let old_rules = meta::get_i64(conn, LINK_RULES_KEY)? != Some(LINK_RULES_VERSION);
    let full = rebuild || last_rowid.is_none() || last_as_of.is_none() || old_rules;
    let dirty = if full {
        events::delete_all_links(conn)?;
        strands::all_positions(conn)?
    } else {
        let mut dirty = strands::positions_stored_after(conn, last_rowid.unwrap_or(0))?;
        let prev = last_as_of.unwrap_or(as_of);
        let (lo, hi) = if prev <= as_of {
            (prev, as_of)
        } else {
            (as_of, prev)
        };
        dirty.extend(strands::positions_with_strands_created_between(
            conn, lo, hi,
        )?);
        dirty.sort();
        dirty.dedup();
        dirty
    };
    strands::set_dirty_positions(conn, &dirty)?;
    if !full {
        events::delete_links_of_dirty_positions(conn)?;
    }
    let mut kept_events = Vec::new();
    link_dirty_positions(conn, as_of, |links| {
        write_links(conn, &links)?;
        if keep_events {
            kept_events.extend(links.events);
        }
        Ok(())
    })?;
    meta::set(
        conn,
        LINKED_ROWID_KEY,
        &strands::max_rowid(conn)?.to_string(),
    )?;
    meta::set(conn, LINKED_AS_OF_KEY, &as_of.millis().to_string())?;
    meta::set(conn, LINK_RULES_KEY, &LINK_RULES_VERSION.to_string())?;
    let counts = events::link_counts(conn)?;
    let report = LinkReport {
        as_of: as_of.to_rfc3339(),
        rebuild: full,
        positions_relinked: dirty.len() as u64,
        relinked: dirty.clone(),
        trades_linked_total: counts.linked_trades,
        trades_linked_new: counts.linked_trades - before,
        trade_events_total: counts.trade_events,
        anomalies: counts.anomalies.into_iter().collect(),
        events: kept_events,
    };
    tracing::info!(
        positions = report.positions_relinked,
        trades = report.trades_linked_total,
        new_trades = report.trades_linked_new,
        "linked"
    );
    Ok(report)
}

/// Link every dirty position known at `as_of`, in position order, handing each one's links to
/// `write`. Actions and closes come in byte order of their position ids from both queries, so
/// the two are merged with one position's actions in memory at a time.
fn link_dirty_positions(
    conn: &Connection,
    as_of: Timestamp,
    mut write: impl FnMut(PositionLinks) -> Result<()>,
) -> Result<()> {
    let closes = strands::closes_of_dirty_positions(conn, as_of)?;
    let mut closes_ahead = ClosesByPosition::new(&closes)?;
    let mut link = |actions: &[PmAction], closes: &[PositionClose]| {
        let actions: Vec<&PmAction> = actions.iter().collect();
        let closes: Vec<&PositionClose> = closes.iter().collect();
        write(link_position(&actions, &closes))
    };
    // Links the positions with closes only that come before `position`, then `position`.
    let mut link_through = |position: &mut Vec<PmAction>| -> Result<()> {
        let id = position[0].position_id.as_str();
        while let Some(only_closes) = closes_ahead.take_before(id) {
            link(&[], only_closes)?;
        }
        link(position, closes_ahead.take_of(id))?;
        position.clear();
        Ok(())
    };
    let mut position: Vec<PmAction> = Vec::new();
    strands::for_each_action_of_dirty_positions(conn, as_of, |action| -> Result<()> {
        if let Some(last) = position.last() {
            if last.position_id > action.position_id {
                return Err(out_of_order(
                    "pm_actions",
                    &last.position_id,
                    &action.position_id,
                ));
            }
            if last.position_id != action.position_id {
                link_through(&mut position)?;
            }
        }
        position.push(action);
        Ok(())
    })?;
    if !position.is_empty() {
        link_through(&mut position)?;
    }
    while let Some(only_closes) = closes_ahead.take_next() {
        link(&[], only_closes)?;
    }
    Ok(())
}

fn write_links(conn: &Connection, links: &PositionLinks) -> Result<()> {
    for t in &links.trades {
        events::insert_linked_trade(conn, t)?;
    }
    for e in &links.events {
        events::insert_trade_event(conn, e)?;
    }
    for a in &links.anomalies {
        events::insert_anomaly(conn, a)?;
    }
    Ok(())
}

fn out_of_order(table: &str, before: &str, after: &str) -> crate::LinkerError {
    learnloop_store::StoreError::Corrupt(format!(
        "{table} came out of position order ({before:?} before {after:?})"
    ))
    .into()
}

/// The closes of the positions to link, sorted by position, taken a position at a time in step
/// with the actions.
struct ClosesByPosition<'a> {
    rest: &'a [PositionClose],
}

impl<'a> ClosesByPosition<'a> {
    fn new(closes: &'a [PositionClose]) -> Result<Self> {
        if let Some(w) = closes
            .windows(2)
            .find(|w| w[0].position_id > w[1].position_id)
        {
            return Err(out_of_order(
                "position_closes",
                &w[0].position_id,
                &w[1].position_id,
            ));
        }
        Ok(Self { rest: closes })
    }

    /// The next position's closes, if that position comes before `position` (it has no actions).
    fn take_before(&mut self, position: &str) -> Option<&'a [PositionClose]> {
        let next: &'a PositionClose = self.rest.first()?;
        (next.position_id.as_str() < position).then(|| self.take_of(&next.position_id))
    }

    /// The next position's closes, whatever its id (once every action is linked).
    fn take_next(&mut self) -> Option<&'a [PositionClose]> {
        let next: &'a PositionClose = self.rest.first()?;
        Some(self.take_of(&next.position_id))
    }

    /// The closes of `position` (none if the next closes are of a later position).
    fn take_of(&mut self, position: &str) -> &'a [PositionClose] {
        let n = self
            .rest
            .iter()
            .take_while(|c| c.position_id == position)
            .count();
        let (taken, rest) = self.rest.split_at(n);
        self.rest = rest;
        taken
    }
}

#[cfg(test)]
mod tests;
