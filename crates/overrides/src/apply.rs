//! Applying a decision to the PM's action. Fails open: whatever goes wrong, the PM gets its
//! own action back, unchanged, with the reason.

use crate::decision::Decision;
use crate::levers::Lever;
use crate::scope::ScopeView;
use crate::snapshot::Overrides;
use serde::{Deserialize, Serialize};

/// `decision_type` of the exits the learning loop must never touch.
pub const EMERGENCY_EXIT: &str = "emergency_exit";

/// The PM's action as it is about to be executed. Borrowed: building one costs nothing.
#[derive(Clone, Copy)]
pub struct ActionInput<'a> {
    /// The pattern the PM followed.
    pub pattern_key: &'a str,
    /// entry | add | trim | exit.
    pub action_category: &'a str,
    /// The PM's decision type (entry, add, trim, emergency_exit, …).
    pub decision_type: &'a str,
    /// The action's scope (any map-like type, see [`ScopeView`]).
    pub scope: &'a dyn ScopeView,
    /// Fraction of the position/allocation the action trades, in [0, 1].
    pub size_frac: f64,
    /// Entry aggression (`a_value`), scaled by `entry_aggression_mult`.
    pub a_value: Option<f64>,
    /// Exit aggression (`e_value`), scaled by `exit_aggression_mult`.
    pub e_value: Option<f64>,
}

impl std::fmt::Debug for ActionInput<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionInput")
            .field("pattern_key", &self.pattern_key)
            .field("action_category", &self.action_category)
            .field("decision_type", &self.decision_type)
            .field("size_frac", &self.size_frac)
            .field("a_value", &self.a_value)
            .field("e_value", &self.e_value)
            .finish_non_exhaustive()
    }
}

/// The action after learning, with the decision that explains it. Serializes flat: the
/// decision's fields next to the before/after values (the `lookup --json` object).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AppliedAction {
    /// The size fraction the PM chose.
    pub size_frac_before: f64,
    /// `clamp(size_frac × size_mult, 0, 1)`; equal to `size_frac_before` on fallback.
    pub size_frac_after: f64,
    /// Entry aggression the PM chose.
    pub a_value_before: Option<f64>,
    /// Entry aggression after `entry_aggression_mult`.
    pub a_value_after: Option<f64>,
    /// Exit aggression the PM chose.
    pub e_value_before: Option<f64>,
    /// Exit aggression after `exit_aggression_mult`.
    pub e_value_after: Option<f64>,
    /// The decision behind the new values (serialized flat).
    #[serde(flatten)]
    pub decision: Decision,
}

impl Default for AppliedAction {
    fn default() -> Self {
        Self {
            size_frac_before: 0.0,
            size_frac_after: 0.0,
            a_value_before: None,
            a_value_after: None,
            e_value_before: None,
            e_value_after: None,
            decision: Decision::default(),
        }
    }
}

impl AppliedAction {
    /// True when the action was changed in any way. Compares bit patterns, so an input passed
    /// through unchanged (NaN included) is never reported as changed.
    pub fn changed(&self) -> bool {
        let bits = |v: Option<f64>| v.map(f64::to_bits);
        self.size_frac_after.to_bits() != self.size_frac_before.to_bits()
            || bits(self.a_value_after) != bits(self.a_value_before)
            || bits(self.e_value_after) != bits(self.e_value_before)
    }
}

/// Apply the current config (if any) to `action`, reusing `out`'s buffers.
pub(crate) fn apply_into(
    config: Option<&Overrides>,
    action: &ActionInput<'_>,
    out: &mut AppliedAction,
) {
    out.decision.reset();
    out.size_frac_before = action.size_frac;
    out.size_frac_after = action.size_frac;
    out.a_value_before = action.a_value;
    out.a_value_after = action.a_value;
    out.e_value_before = action.e_value;
    out.e_value_after = action.e_value;
    out.decision.config_version = config.map(Overrides::version);

    if action
        .decision_type
        .trim()
        .eq_ignore_ascii_case(EMERGENCY_EXIT)
    {
        out.decision.fall_back("emergency exits are never resized");
        return;
    }
    let finite = |v: Option<f64>| v.is_none_or(f64::is_finite);
    if !(action.size_frac.is_finite() && finite(action.a_value) && finite(action.e_value)) {
        out.decision.fall_back(format!(
            "invalid action input (size_frac={}, a_value={:?}, e_value={:?}): left unchanged",
            action.size_frac, action.a_value, action.e_value
        ));
        return;
    }
    // Clamping a size the PM got wrong would hide its bug behind a plausible number.
    if !(0.0..=1.0).contains(&action.size_frac) {
        out.decision.fall_back(format!(
            "size_frac {} is outside [0, 1]: left unchanged",
            action.size_frac
        ));
        return;
    }
    let Some(config) = config else {
        out.decision.fall_back("no learning config loaded");
        return;
    };
    config.lookup_into(
        action.pattern_key,
        action.action_category,
        action.scope,
        &mut out.decision,
    );
    let decision = &out.decision;
    if decision.fell_back() {
        return;
    }
    out.size_frac_after = (action.size_frac * decision.size_mult).clamp(0.0, 1.0);
    out.a_value_after = action
        .a_value
        .map(|a| a * decision.lever(Lever::EntryAggressionMult));
    out.e_value_after = action
        .e_value
        .map(|e| e * decision.lever(Lever::ExitAggressionMult));
}

impl Overrides {
    /// Apply this config to `action`. Never panics; on any problem the action comes back
    /// unchanged with `decision.fallback_reason` set.
    pub fn apply(&self, action: &ActionInput<'_>) -> AppliedAction {
        let mut out = AppliedAction::default();
        apply_into(Some(self), action, &mut out);
        out
    }

    /// As [`Overrides::apply`], reusing `out`'s buffers (no allocation after warm-up).
    pub fn apply_into(&self, action: &ActionInput<'_>, out: &mut AppliedAction) {
        apply_into(Some(self), action, out);
    }
}
