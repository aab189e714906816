//! The planted effects: which actions carry them and how much R they add to their trade.

use crate::book::{Action, ActionKind, Cycle};
use crate::vocab::*;
use crate::PlantedEffect;
use learnloop_model::{PatternKey, Timestamp};
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
    /// Seconds after the period start; only trades entered at or before it carry the effect.
    pub stops_after_secs: Option<i64>,
    pub effect_kind: EffectKind,
    pub description: String,
    /// The effect belongs to the position, whatever its pattern: every (pattern, category) group
    /// with an action at `conditions` carries it (the family/state/kind fields are ignored).
    pub every_group: bool,
}

/// What a planted effect is meant to exercise (the calibration harness groups by it).
#[derive(
    Debug,
    Clone,
    Copy,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum EffectKind {
    /// The whole pattern (empty scope).
    Pattern,
    /// One dimension.
    #[default]
    OneDim,
    /// Two dimensions that only act together.
    Interaction,
    /// A bad parent scope, home of an exception.
    BadParent,
    /// A refinement of a bad parent that undoes it: less bad than its parent (a lesson that
    /// sizes *up* relative to the parent).
    Exception,
    /// An effect that switches on during the period.
    Started,
    /// An effect that stops during the period.
    Stopped,
}

/// Which effects a data set carries.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum EffectPlan {
    /// The four effects of the demo (whole pattern, 1 dim, 2 dims, one that starts halfway).
    #[default]
    Demo,
    /// No effect at all: every scope has the same expected R.
    Placebo,
    /// The calibration set (`calibration_rules`) with these effect sizes (R, positive).
    Calibration {
        /// The effect sizes (R) of the calibration rules.
        sizes: Vec<f64>,
    },
    /// Issue 11's interaction scenario: every trade of a micro cap on the 1h chart gains `size`
    /// R, so every (pattern, category) group carries the interaction at its exact scope.
    InteractionEverywhere {
        /// The effect (R) added to every such trade.
        size: f64,
    },
}

impl EffectRule {
    pub fn pattern_key(&self) -> String {
        pattern_key(self.family, self.state, self.kind)
    }

    /// A trade carries the effect once if any of its actions matches, however many do.
    pub fn applies_to(&self, cycle: &Cycle) -> bool {
        if !self.every_group && cycle.traits.family != self.family {
            return false;
        }
        if let Some(start) = self.starts_after_secs {
            if cycle.entry_secs <= start {
                return false;
            }
        }
        if let Some(stop) = self.stops_after_secs {
            if cycle.entry_secs > stop {
                return false;
            }
        }
        cycle.actions.iter().any(|a| {
            (self.every_group
                || (a.state == self.state && a.kind.category() == self.kind.category()))
                && self.matches_scope(a)
        })
    }

    fn matches_scope(&self, action: &Action) -> bool {
        self.conditions
            .iter()
            .all(|&(dim, value)| action.dim_value(dim) == Some(value))
    }

    /// The truth entries of this rule over the closed trades: one, or for an `every_group` rule
    /// one per (pattern, category) group with a matching action, all with `effect_id` = `id` (the
    /// rule's index) so that a trade counts the effect once.
    pub fn planted_entries(
        &self,
        id: usize,
        start_ms: i64,
        closed: &[&Cycle],
    ) -> Vec<PlantedEffect> {
        if !self.every_group {
            let matching = closed.iter().filter(|c| self.applies_to(c)).count();
            return vec![self.to_planted(start_ms, matching)];
        }
        // Per group, an action kind of its category and how many trades match there.
        let mut trades_per_group: BTreeMap<(u8, u8, &'static str), (ActionKind, usize)> =
            BTreeMap::new();
        for cycle in closed {
            let groups: BTreeMap<(u8, u8, &'static str), ActionKind> = cycle
                .actions
                .iter()
                .filter(|a| self.matches_scope(a))
                .map(|a| ((cycle.traits.family, a.state, a.kind.category()), a.kind))
                .collect();
            for (group, kind) in groups {
                trades_per_group.entry(group).or_insert((kind, 0)).1 += 1;
            }
        }
        trades_per_group
            .into_iter()
            .map(|((family, state, _), (kind, matching))| {
                let in_group = EffectRule {
                    family,
                    state,
                    kind,
                    every_group: false,
                    ..self.clone()
                };
                PlantedEffect {
                    effect_id: Some(id),
                    ..in_group.to_planted(start_ms, matching)
                }
            })
            .collect()
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
            stops_at: self
                .stops_after_secs
                .map(|s| Timestamp::from_millis(start_ms + s * 1000)),
            kind: self.effect_kind,
            matching_trades,
            description: self.description.clone(),
            effect_id: None,
        }
    }
}

pub fn pattern_key(family: u8, state: u8, kind: ActionKind) -> String {
    PatternKey::new(
        Some("pm"),
        PATTERN_FAMILIES[family as usize],
        STATES[state as usize],
        kind.category(),
    )
    .to_string()
}

/// The effects of a plan.
pub fn planted_rules(plan: &EffectPlan, period_secs: i64, seed: u64) -> Vec<EffectRule> {
    match plan {
        EffectPlan::Demo => demo_rules(period_secs),
        EffectPlan::Placebo => Vec::new(),
        EffectPlan::Calibration { sizes } => calibration_rules(sizes, period_secs, seed),
        EffectPlan::InteractionEverywhere { size } => vec![EffectRule {
            every_group: true,
            ..rule(
                (UPTREND, S1, ActionKind::Entry),
                vec![(DIM_BUCKET, MICRO_CAP), (DIM_TIMEFRAME, ONE_HOUR)],
                *size,
                EffectKind::Interaction,
                format!("micro caps on the 1h chart gain {size:+.2} R in every pattern (interaction of two dims)"),
            )
        }],
    }
}

fn rule(
    (family, state, kind): (u8, u8, ActionKind),
    conditions: Vec<(usize, u8)>,
    effect_r: f64,
    effect_kind: EffectKind,
    description: String,
) -> EffectRule {
    EffectRule {
        family,
        state,
        kind,
        conditions,
        effect_r,
        starts_after_secs: None,
        stops_after_secs: None,
        effect_kind,
        description,
        every_group: false,
    }
}

/// The effects planted in every demo data set, at increasing depth: a whole pattern, one
/// dimension, two dimensions, and one that only switches on halfway through the period.
fn demo_rules(period_secs: i64) -> Vec<EffectRule> {
    vec![
        rule(
            (BREAKOUT, S1, ActionKind::Entry),
            vec![],
            -0.6,
            EffectKind::Pattern,
            "early breakout entries are mostly false breakouts (whole pattern)".into(),
        ),
        rule(
            (UPTREND, S2, ActionKind::Add),
            vec![(DIM_MACRO, EUPHORIA)],
            0.9,
            EffectKind::OneDim,
            "adding to a maturing uptrend pays in a euphoric market (1 dim)".into(),
        ),
        rule(
            (UPTREND, S3, ActionKind::Add),
            vec![(DIM_BUCKET, MICRO_CAP), (DIM_TIMEFRAME, ONE_HOUR)],
            -1.1,
            EffectKind::Interaction,
            "late-uptrend adds on micro caps on the 1h chart get faded (2 dims)".into(),
        ),
        EffectRule {
            starts_after_secs: Some(period_secs / 2),
            ..rule(
                (RANGE, S2, ActionKind::Add),
                vec![(DIM_A_MODE, AGGRESSIVE)],
                0.8,
                EffectKind::Started,
                "aggressive range adds started paying halfway through the period".into(),
            )
        },
    ]
}

/// (pattern family, state, action kind) groups that carry calibration effects: entry groups
/// (one action per trade) and add groups of the common families, one effect group each.
const CALIBRATION_SLOTS: [(u8, u8, ActionKind); 16] = [
    (UPTREND, S1, ActionKind::Entry),
    (UPTREND, S2, ActionKind::Entry),
    (RANGE, S1, ActionKind::Entry),
    (BREAKOUT, S1, ActionKind::Entry),
    (RANGE, S2, ActionKind::Entry),
    (UPTREND, S3, ActionKind::Entry),
    (BREAKOUT, S2, ActionKind::Entry),
    (MEANREV, S1, ActionKind::Entry),
    (UPTREND, S1, ActionKind::Add),
    (UPTREND, S2, ActionKind::Add),
    (UPTREND, S3, ActionKind::Add),
    (RANGE, S1, ActionKind::Add),
    (RANGE, S2, ActionKind::Add),
    (BREAKOUT, S1, ActionKind::Add),
    (BREAKOUT, S2, ActionKind::Add),
    (MEANREV, S1, ActionKind::Add),
];

/// The calibration exception's effect, in units of its bad parent's loss: more than it loses,
/// so that the exception also differs from its other parent (see [`calibration_rules`]).
const EXCEPTION_REBOUND: f64 = 1.5;

/// More sizes than this would put two effects in one group.
pub const MAX_CALIBRATION_SIZES: usize = (CALIBRATION_SLOTS.len() - 2) / 2;

/// The calibration set (SPEC §4.9), every effect in a (pattern, category) group of its own, on
/// dimensions fixed for a position (so a scope is exactly the trades the effect touches):
/// - per size s: `{timeframe: 4h}` +s (one dim) and `{bucket: micro, timeframe: 1h}` +s (an
///   interaction: neither dimension alone carries anything), each in two groups;
/// - an exception inside a bad parent: `{timeframe: 1h}` −S with `{timeframe: 1h, bucket: mid}`
///   +1.5·S on top (net +S/2), S the largest size. SPEC §4.6 makes a subset a lesson only when it
///   differs from *each* parent, so the exception is planted to be less bad than its bad parent
///   `{timeframe: 1h}` and better than its other parent `{bucket: mid}` (a net-0 exception would
///   equal the rest of the mid caps, and the spec's every-parent rule would rightly reject it);
/// - an effect that stops halfway: `{timeframe: 15m}` +S for trades entered in the first half.
///
/// Which group gets which effect rotates with the seed, so that over many sets every size meets
/// groups of every size (power by effect size is not confounded with group size).
pub fn calibration_rules(sizes: &[f64], period_secs: i64, seed: u64) -> Vec<EffectRule> {
    let largest = sizes.iter().copied().fold(0.0f64, f64::max);
    // Each entry is one group's effects: (conditions, effect R, kind, description).
    type Planned = (Vec<(usize, u8)>, f64, EffectKind, String);
    let mut planned: Vec<Vec<Planned>> = Vec::new();
    // Two groups per size and kind while the slots last, else one.
    let copies = if sizes.len() * 4 + 2 <= CALIBRATION_SLOTS.len() {
        2
    } else {
        1
    };
    for &s in sizes.iter().take(MAX_CALIBRATION_SIZES) {
        for _ in 0..copies {
            planned.push(vec![(
                vec![(DIM_TIMEFRAME, FOUR_HOURS)],
                s,
                EffectKind::OneDim,
                format!("4h trades gain {s:+.2} R (one dim)"),
            )]);
            planned.push(vec![(
                vec![(DIM_BUCKET, MICRO_CAP), (DIM_TIMEFRAME, ONE_HOUR)],
                s,
                EffectKind::Interaction,
                format!("micro caps on the 1h chart gain {s:+.2} R (interaction of two dims)"),
            )]);
        }
    }
    planned.push(vec![
        (
            vec![(DIM_TIMEFRAME, ONE_HOUR)],
            -largest,
            EffectKind::BadParent,
            format!("1h trades lose {largest:.2} R (a bad parent)"),
        ),
        (
            vec![(DIM_TIMEFRAME, ONE_HOUR), (DIM_BUCKET, MID_CAP)],
            EXCEPTION_REBOUND * largest,
            EffectKind::Exception,
            format!(
                "except mid caps, which get {:+.2} R back (net {:+.2} R: an exception inside it)",
                EXCEPTION_REBOUND * largest,
                (EXCEPTION_REBOUND - 1.0) * largest
            ),
        ),
    ]);
    planned.push(vec![(
        vec![(DIM_TIMEFRAME, FIFTEEN_MINUTES)],
        largest,
        EffectKind::Stopped,
        format!("15m trades gained {largest:+.2} R until halfway through the period"),
    )]);
    let offset = (seed % CALIBRATION_SLOTS.len() as u64) as usize;
    let mut rules = Vec::new();
    for (j, effects) in planned.into_iter().enumerate() {
        let slot = CALIBRATION_SLOTS[(j + offset) % CALIBRATION_SLOTS.len()];
        for (conditions, effect_r, kind, description) in effects {
            let mut r = rule(slot, conditions, effect_r, kind, description);
            if kind == EffectKind::Stopped {
                r.stops_after_secs = Some(period_secs / 2);
            }
            rules.push(r);
        }
    }
    rules
}
