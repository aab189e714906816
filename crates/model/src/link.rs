//! What the linker makes of strands: closed trades, one event per trade × action (the
//! aggregator's and the lesson stage's input), and the anomalies it reports instead of guessing.

use crate::{ActionCategory, AnomalyKind, Timestamp};

/// A closed trade (`linked_trades`): its close and how many actions the link attached.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedTrade {
    pub trade_key: String,
    pub module: String,
    pub position_id: String,
    pub trade_id: Option<String>,
    pub close_strand_id: String,
    pub cycle_start: Option<Timestamp>,
    pub exit_at: Timestamp,
    pub rr: f64,
    pub rr_winsorized: f64,
    pub n_actions: i64,
    pub n_v5_actions: i64,
}

/// One action of a closed trade with the trade's outcome (`trade_events`).
#[derive(Debug, Clone, PartialEq)]
pub struct TradeEvent {
    pub trade_key: String,
    pub position_id: String,
    pub trade_id: Option<String>,
    pub action_strand_id: String,
    pub module: String,
    pub pattern_key: String,
    pub category: ActionCategory,
    /// Normalised scope JSON (sorted keys, string values).
    pub scope: String,
    pub rr: f64,
    pub rr_winsorized: f64,
    pub pnl_usd: Option<f64>,
    pub hold_days: Option<f64>,
    pub time_to_s3: Option<f64>,
    pub entry_at: Option<Timestamp>,
    pub exit_at: Timestamp,
    pub action_at: Timestamp,
}

/// A strand the linker reported instead of linking (`link_anomalies`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkAnomaly {
    pub kind: AnomalyKind,
    pub strand_id: String,
    pub position_id: String,
    pub detail: String,
}
