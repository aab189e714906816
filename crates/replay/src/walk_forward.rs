//! Walk-forward evaluation: the overrides active at T applied to the actions taken in
//! (T, T + step], scored with the real outcomes of their trades.
//!
//! Each action's share of its trade is its `size_frac` over the trade's total (equal shares where
//! sizes are missing), so a trade counts once. The uplift of an action is
//! `(size_mult − 1) · share · R`: what the adjusted sizing would have added to the trade's R.

use crate::bootstrap::{default_block_len, stationary_bootstrap_ci, Bootstrap, Statistic};
use learnloop_model::scope::parse_scope_map;
use learnloop_model::{time::MS_PER_DAY, Timestamp, TradeEvent};
use learnloop_overrides::{Decision, Lever, Overrides};
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
    /// The action's scope JSON, parsed only when the action is scored (once per replay): a
    /// year of a 100k-trade book is ~0.7 M actions, and a parsed map costs ~1 KB each.
    pub scope: String,
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
                scope: e.scope.clone(),
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
    /// Uplift attributed to each override that resized an action, by override label.
    pub by_override: BTreeMap<String, OverrideUplift>,
}

/// The walk-forward uplift attributed to one override (pattern, category and scope).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct OverrideUplift {
    /// `pattern/category {"dim":"value", …}`, as the evolution table labels lessons.
    pub label: String,
    /// Actions it took part in resizing.
    pub actions: u64,
    /// Its share of their uplift (R); the shares of one action sum to the action's uplift.
    pub uplift_r: f64,
}

impl WalkForward {
    /// Score the actions in `window` with the configs active at its start (by module).
    pub fn score(&mut self, window: &[EvalAction], configs: &BTreeMap<String, Overrides>) {
        for a in window {
            let decision = configs.get(&a.module).map(|o| {
                let scope = parse_scope_map(&a.scope).unwrap_or_default();
                o.lookup(&a.pattern_key, &a.category, &scope)
            });
            let size_mult = decision.as_ref().map_or(1.0, |d| d.size_mult);
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
                if let Some(d) = &decision {
                    self.attribute(a, d);
                }
            }
            self.trades.insert(a.trade_key.clone());
        }
    }

    /// Splits an action's uplift over the overrides that set its size: the blend is a weighted
    /// mean, so `blend − 1 = Σ w_i (lever_i − 1) / Σ w_i` exactly, and each override's share of
    /// it is `w_i (lever_i − 1) / Σ_j w_j (lever_j − 1)` (the total weight cancels). A clamp to
    /// the lever's bounds keeps the sign, so the shares of the clamped blend still sum to it.
    fn attribute(&mut self, a: &EvalAction, d: &Decision) {
        let pulls: Vec<(&learnloop_overrides::Match, f64)> = d
            .matches
            .iter()
            .filter(|m| m.weight.is_finite() && m.weight > 0.0)
            .filter_map(|m| {
                m.levers()
                    .get(Lever::SizeMult)
                    .map(|v| (m, m.weight * (v - 1.0)))
            })
            .collect();
        let total_pull: f64 = pulls.iter().map(|(_, pull)| pull).sum();
        if total_pull == 0.0 {
            return;
        }
        let uplift = (d.size_mult - 1.0) * a.share * a.r;
        for (m, pull) in pulls {
            let label = format!(
                "{}/{} {}",
                learnloop_model::pattern::short_pattern_key(&a.pattern_key),
                a.category,
                serde_json::to_string(m.scope()).unwrap_or_default()
            );
            let entry = self
                .by_override
                .entry(label.clone())
                .or_insert_with(|| OverrideUplift {
                    label,
                    ..OverrideUplift::default()
                });
            entry.actions += 1;
            entry.uplift_r += uplift * pull / total_pull;
        }
    }

    /// Totals with a 95 % stationary-bootstrap interval of the total uplift (seeded: reproducible).
    pub fn summary(&self, seed: u64) -> UpliftSummary {
        let series: Vec<f64> = self.days.values().map(|d| d.uplift_r).collect();
        // `+ 0.0`: a sum of negative zeros (multipliers of exactly 1 on losing trades) is 0.
        let total: f64 = series.iter().sum::<f64>() + 0.0;
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
            base_total_r: self.days.values().map(|d| d.base_r).sum::<f64>() + 0.0,
            uplift_total_r: total,
            uplift_mean_r: if trades > 0 {
                total / trades as f64
            } else {
                0.0
            },
            uplift_ci95: ci,
            by_override: self.overrides_by_uplift(),
        }
    }

    /// The attributed uplifts, largest in absolute value first (then by label).
    fn overrides_by_uplift(&self) -> Vec<OverrideUplift> {
        let mut out: Vec<OverrideUplift> = self.by_override.values().cloned().collect();
        out.sort_by(|a, b| {
            b.uplift_r
                .abs()
                .total_cmp(&a.uplift_r.abs())
                .then_with(|| a.label.cmp(&b.label))
        });
        out
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
    /// The uplift attributed to each override, largest in absolute value first.
    pub by_override: Vec<OverrideUplift>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnloop_overrides::{ConfigData, Levers, Override};

    const PATTERN: &str = "module=pm|pattern_key=uptrend.S2.add";

    fn size_override(id: &str, scope: &[(&str, &str)], size_mult: f64) -> Override {
        Override {
            override_id: id.into(),
            pattern_key: PATTERN.into(),
            action_category: "add".into(),
            scope: scope
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            levers: Levers::new().with(Lever::SizeMult, size_mult),
            confidence: 0.5,
            q_value: 0.01,
            n_trades: 50,
            edge: None,
            half_life_hours: None,
            created_at: None,
            lesson_keys: vec![],
            factor_id: None,
            members: vec![],
        }
    }

    /// A root override (× 0.8) and a one-dim one (× 1.2) both match an action: the blend's
    /// weights are confidence × (1 + dims)^1.5 = 0.5 and 0.5·2^1.5, so by hand the action's
    /// uplift (blend − 1)·R and each override's share of it are known.
    #[test]
    fn an_actions_uplift_is_split_over_its_overrides_by_blend_weight() {
        let mut config = ConfigData::new("pm", 1, "2026-01-01T00:00:00Z");
        config
            .pattern_strength_overrides
            .push(size_override("root", &[], 0.8));
        let phase = [("macro_phase", "Euphoria")];
        config
            .pattern_overrides
            .push(size_override("euphoria", &phase, 1.2));
        let configs = BTreeMap::from([("pm".to_string(), Overrides::from_config(config).unwrap())]);
        let action = EvalAction {
            module: "pm".into(),
            pattern_key: PATTERN.into(),
            category: "add".into(),
            scope: r#"{"macro_phase":"Euphoria"}"#.into(),
            at: Timestamp(0),
            trade_key: "t1".into(),
            share: 1.0,
            r: 2.0,
        };
        let mut walk = WalkForward::default();
        walk.score(&[action], &configs);

        let (w_root, w_dim) = (0.5, 0.5 * 2f64.powf(1.5));
        let blend = (w_root * 0.8 + w_dim * 1.2) / (w_root + w_dim);
        let summary = walk.summary(1);
        assert!((summary.uplift_total_r - (blend - 1.0) * 2.0).abs() < 1e-12);
        let shares: BTreeMap<&str, f64> = summary
            .by_override
            .iter()
            .map(|o| (o.label.as_str(), o.uplift_r))
            .collect();
        let expected_dim = w_dim / (w_root + w_dim) * 0.2 * 2.0;
        let expected_root = w_root / (w_root + w_dim) * -0.2 * 2.0;
        let dim_label = "uptrend.S2.add/add {\"macro_phase\":\"Euphoria\"}";
        assert!(
            (shares[dim_label] - expected_dim).abs() < 1e-12,
            "{shares:?}"
        );
        assert!((shares["uptrend.S2.add/add {}"] - expected_root).abs() < 1e-12);
        assert_eq!(summary.by_override[0].label, dim_label, "largest first");
        assert!(summary.by_override.iter().all(|o| o.actions == 1));
    }
}
