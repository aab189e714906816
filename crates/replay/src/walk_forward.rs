//! Walk-forward evaluation: the overrides active at T applied to the actions taken in
//! (T, T + step], scored with the real outcomes of their trades.
//!
//! Each action's share of its trade is its `size_frac` over the trade's total (equal shares where
//! sizes are missing), so a trade counts once. The uplift of an action is
//! `(size_mult − 1) · share · R`: what the adjusted sizing would have added to the trade's R.

use crate::bootstrap::{default_block_len, stationary_bootstrap_ci, Bootstrap, Statistic};
use learnloop_model::scope::parse_scope_map;
use learnloop_model::{time::MS_PER_DAY, Timestamp, TradeEvent};
use learnloop_overrides::Overrides;
use std::collections::BTreeMap;

/// One action to evaluate, with its trade's real outcome.
#[derive(Debug, Clone)]
pub struct EvalAction {
    /// Producing module.
    pub module: String,
    /// The pattern followed.
    pub pattern_key: String,
    /// The action category.
    pub category: String,
    /// The action's scope.
    pub scope: BTreeMap<String, String>,
    /// When the action was taken (the config in force then decides).
    pub at: Timestamp,
    /// Its trade.
    pub trade_key: String,
    /// Its share of the trade's outcome (by size fraction, else equal).
    pub share: f64,
    /// The trade's winsorized R.
    pub r: f64,
}

/// Every linked action of the full history, by time.
pub fn evaluation_actions(events: &[TradeEvent], sizes: &BTreeMap<String, f64>) -> Vec<EvalAction> {
    let mut out = Vec::with_capacity(events.len());
    let mut start = 0;
    while start < events.len() {
        let mut end = start + 1;
        while end < events.len() && events[end].trade_key == events[start].trade_key {
            end += 1;
        }
        let trade = &events[start..end];
        let size = |e: &TradeEvent| sizes.get(&e.action_strand_id).copied().filter(|s| *s > 0.0);
        let total: f64 = trade.iter().filter_map(size).sum();
        for e in trade {
            let share = match size(e) {
                Some(s) if total > 0.0 => s / total,
                _ => 1.0 / trade.len() as f64,
            };
            out.push(EvalAction {
                module: e.module.clone(),
                pattern_key: e.pattern_key.clone(),
                category: e.category.as_str().to_string(),
                scope: parse_scope_map(&e.scope).unwrap_or_default(),
                at: e.action_at,
                trade_key: e.trade_key.clone(),
                share,
                r: e.rr_winsorized,
            });
        }
        start = end;
    }
    out.sort_by(|a, b| (a.at, &a.trade_key).cmp(&(b.at, &b.trade_key)));
    out
}

/// The walk-forward figures of one UTC day.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct DayFigures {
    /// The day, as milliseconds since the Unix epoch at its UTC midnight.
    pub day_ms: i64,
    /// Actions evaluated that day.
    pub actions: u64,
    /// Of those, actions whose size multiplier was not 1.
    pub adjusted_actions: u64,
    /// Σ share·R: the unadjusted outcome of the day's actions.
    pub base_r: f64,
    /// Σ (size_mult − 1)·share·R.
    pub uplift_r: f64,
}

/// The walk-forward evaluation in progress: daily figures and the trades seen.
#[derive(Debug, Default)]
pub struct WalkForward {
    /// Figures by day index (days since the epoch).
    pub days: BTreeMap<i64, DayFigures>,
    /// Trade keys evaluated.
    pub trades: std::collections::BTreeSet<String>,
}

impl WalkForward {
    /// Score the actions in `window` with the configs active at its start (by module).
    pub fn score(&mut self, window: &[EvalAction], configs: &BTreeMap<String, Overrides>) {
        for a in window {
            let size_mult = configs.get(&a.module).map_or(1.0, |o| {
                o.lookup(&a.pattern_key, &a.category, &a.scope).size_mult
            });
            let day_index = a.at.millis().div_euclid(MS_PER_DAY);
            let day = self.days.entry(day_index).or_insert_with(|| DayFigures {
                day_ms: day_index * MS_PER_DAY,
                ..DayFigures::default()
            });
            day.actions += 1;
            day.base_r += a.share * a.r;
            if size_mult != 1.0 {
                day.adjusted_actions += 1;
                day.uplift_r += (size_mult - 1.0) * a.share * a.r;
            }
            self.trades.insert(a.trade_key.clone());
        }
    }

    /// Totals with a 95 % stationary-bootstrap interval of the total uplift (seeded: reproducible).
    pub fn summary(&self, seed: u64) -> UpliftSummary {
        let series: Vec<f64> = self.days.values().map(|d| d.uplift_r).collect();
        let total: f64 = series.iter().sum();
        let trades = self.trades.len() as u64;
        let ci = stationary_bootstrap_ci(
            &series,
            &Bootstrap {
                mean_block_len: default_block_len(series.len()),
                resamples: 2000,
                seed,
                level: 0.95,
            },
            Statistic::Sum,
        )
        .map(|(lo, hi)| [lo, hi])
        .unwrap_or([0.0, 0.0]);
        UpliftSummary {
            days: series.len() as u64,
            trades,
            actions: self.days.values().map(|d| d.actions).sum(),
            adjusted_actions: self.days.values().map(|d| d.adjusted_actions).sum(),
            base_total_r: self.days.values().map(|d| d.base_r).sum(),
            uplift_total_r: total,
            uplift_mean_r: if trades > 0 {
                total / trades as f64
            } else {
                0.0
            },
            uplift_ci95: ci,
        }
    }
}

/// Walk-forward uplift over the replay window.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct UpliftSummary {
    /// Days with actions.
    pub days: u64,
    /// Trades evaluated.
    pub trades: u64,
    /// Actions evaluated.
    pub actions: u64,
    /// Actions whose size multiplier was not 1.
    pub adjusted_actions: u64,
    /// Σ R of the evaluated trades at unadjusted sizing.
    pub base_total_r: f64,
    /// Σ over actions of (size_mult − 1)·share·R.
    pub uplift_total_r: f64,
    /// Uplift per evaluated trade.
    pub uplift_mean_r: f64,
    /// Stationary-bootstrap 95% interval of the total uplift over the daily series.
    pub uplift_ci95: [f64; 2],
}
