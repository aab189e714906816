//! The planted effects: which actions carry them and how much R they add to their trade.

use crate::book::{ActionKind, Cycle};
use crate::vocab::*;
use crate::PlantedEffect;
use learnloop_model::Timestamp;
use std::collections::BTreeMap;

/// One planted effect in the simulation's own terms (indices instead of text).
#[derive(Debug, Clone)]
pub struct EffectRule {
    pub family: u8,
    pub state: u8,
    pub kind: ActionKind,
    /// (dimension, value index) pairs the action's scope must contain.
    pub conditions: Vec<(usize, u8)>,
    pub effect_r: f64,
    /// Seconds after the period start; only trades entered strictly later carry the effect.
    pub starts_after_secs: Option<i64>,
    pub description: &'static str,
}

impl EffectRule {
    pub fn pattern_key(&self) -> String {
        pattern_key(self.family, self.state, self.kind)
    }

    /// A trade carries the effect once if any of its actions matches, however many do.
    pub fn applies_to(&self, cycle: &Cycle) -> bool {
        if cycle.traits.family != self.family {
            return false;
        }
        if let Some(start) = self.starts_after_secs {
            if cycle.entry_secs <= start {
                return false;
            }
        }
        cycle.actions.iter().any(|a| {
            a.state == self.state
                && a.kind.category() == self.kind.category()
                && self
                    .conditions
                    .iter()
                    .all(|&(dim, value)| a.dim_value(dim) == Some(value))
        })
    }

    pub fn to_planted(&self, start_ms: i64, matching_trades: usize) -> PlantedEffect {
        let scope: BTreeMap<String, String> = self
            .conditions
            .iter()
            .map(|&(dim, value)| {
                (
                    dim_name(dim).to_string(),
                    dim_values(dim)[value as usize].to_string(),
                )
            })
            .collect();
        PlantedEffect {
            pattern_key: self.pattern_key(),
            action_category: self.kind.category().to_string(),
            scope,
            effect_r: self.effect_r,
            starts_at: self
                .starts_after_secs
                .map(|s| Timestamp::from_millis(start_ms + s * 1000)),
            matching_trades,
            description: self.description.to_string(),
        }
    }
}

pub fn pattern_key(family: u8, state: u8, kind: ActionKind) -> String {
    format!(
        "module=pm|pattern_key={}.{}.{}",
        PATTERN_FAMILIES[family as usize],
        STATES[state as usize],
        kind.category()
    )
}

/// The effects planted in every demo data set, at increasing depth: a whole pattern, one
/// dimension, two dimensions, and one that only switches on halfway through the period.
pub fn planted_rules(period_secs: i64) -> Vec<EffectRule> {
    vec![
        EffectRule {
            family: BREAKOUT,
            state: S1,
            kind: ActionKind::Entry,
            conditions: vec![],
            effect_r: -0.6,
            starts_after_secs: None,
            description: "early breakout entries are mostly false breakouts (whole pattern)",
        },
        EffectRule {
            family: UPTREND,
            state: S2,
            kind: ActionKind::Add,
            conditions: vec![(DIM_MACRO, EUPHORIA)],
            effect_r: 0.9,
            starts_after_secs: None,
            description: "adding to a maturing uptrend pays in a euphoric market (1 dim)",
        },
        EffectRule {
            family: UPTREND,
            state: S3,
            kind: ActionKind::Add,
            conditions: vec![(DIM_BUCKET, MICRO_CAP), (DIM_TIMEFRAME, ONE_HOUR)],
            effect_r: -1.1,
            starts_after_secs: None,
            description: "late-uptrend adds on micro caps on the 1h chart get faded (2 dims)",
        },
        EffectRule {
            family: RANGE,
            state: S2,
            kind: ActionKind::Add,
            conditions: vec![(DIM_A_MODE, AGGRESSIVE)],
            effect_r: 0.8,
            starts_after_secs: Some(period_secs / 2),
            description: "aggressive range adds started paying halfway through the period",
        },
    ]
}
