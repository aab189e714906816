//! What the linker makes of strands: closed trades, one event per trade × action (the
//! aggregator's and the lesson stage's input), and the anomalies it reports instead of guessing.

use crate::{ActionCategory, AnomalyKind, Timestamp};

/// A closed trade (`linked_trades`): its close and how many actions the link attached.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedTrade {
    /// The trade's identity: the close strand's trade id, else position and exit time.
    pub trade_key: String,
    /// Producing module.
    pub module: String,
    /// The position the trade belongs to.
    pub position_id: String,
    /// The producer's trade id, when given.
    pub trade_id: Option<String>,
    /// Id of the `position_closed` strand that ended the cycle.
    pub close_strand_id: String,
    /// Exit time of the position's previous close: actions after it belong to this cycle.
    pub cycle_start: Option<Timestamp>,
    /// When the cycle closed.
    pub exit_at: Timestamp,
    /// R multiple as reported.
    pub rr: f64,
    /// R clamped to `±R_WINSOR_LIMIT`, what the statistics use.
    pub rr_winsorized: f64,
    /// Actions the link attached to the trade.
    pub n_actions: i64,
    /// Of those, actions with the v5 fields (pattern and category): the aggregated ones.
    pub n_v5_actions: i64,
}

/// One action of a closed trade with the trade's outcome (`trade_events`).
#[derive(Debug, Clone, PartialEq)]
pub struct TradeEvent {
    /// The trade the action belongs to (see `LinkedTrade::trade_key`).
    pub trade_key: String,
    /// The position.
    pub position_id: String,
    /// The producer's trade id, when given.
    pub trade_id: Option<String>,
    /// Id of the action's `pm_action` strand.
    pub action_strand_id: String,
    /// Producing module.
    pub module: String,
    /// The pattern the action followed.
    pub pattern_key: String,
    /// The action's category.
    pub category: ActionCategory,
    /// Normalised scope JSON (sorted keys, string values).
    pub scope: String,
    /// The trade's R multiple as reported.
    pub rr: f64,
    /// The trade's R, winsorized.
    pub rr_winsorized: f64,
    /// The trade's profit or loss in US dollars, when reported.
    pub pnl_usd: Option<f64>,
    /// The trade's holding time in days, when reported.
    pub hold_days: Option<f64>,
    /// Hours from entry to S3, when reported.
    pub time_to_s3: Option<f64>,
    /// When the trade was entered, when reported.
    pub entry_at: Option<Timestamp>,
    /// When the trade closed (canonical order of events: exit time, trade key).
    pub exit_at: Timestamp,
    /// When the action was executed.
    pub action_at: Timestamp,
}

/// A strand the linker reported instead of linking (`link_anomalies`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAnomaly {
    /// What went wrong.
    pub kind: AnomalyKind,
    /// The strand concerned.
    pub strand_id: String,
    /// Its position.
    pub position_id: String,
    /// The specifics, in words (times, the other strand, …).
    pub detail: String,
}
