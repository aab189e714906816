//! The decision record: what `learnloop lookup --json` prints and what the Python binding's
//! `Decision.to_dict()` returns (SPEC §9) — one definition, so the two cannot drift.

use crate::apply::AppliedAction;
use crate::decision::Match;
use crate::levers::Levers;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// The runtime decision for one action, with its explanation, in the `lookup --json` shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Version of the config that decided; `None` when none was loaded.
    pub config_version: Option<i64>,
    /// The blended size multiplier (1 on fallback).
    pub size_mult: f64,
    /// Every blended lever.
    pub levers: Levers,
    /// `None` when the caller gave no size fraction.
    pub size_frac_before: Option<f64>,
    /// `size_frac_before × size_mult`, clamped to [0, 1].
    pub size_frac_after: Option<f64>,
    /// The overrides that matched, strongest weight first.
    pub matches: Vec<MatchRecord>,
    /// Null unless the lookup failed open (or learning is switched off for this action).
    pub fallback_reason: Option<String>,
}

/// One matched override in a [`DecisionRecord`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchRecord {
    /// The override's scope.
    pub scope: BTreeMap<String, String>,
    /// Its blend weight (confidence × specificity).
    pub weight: f64,
    /// Its lever values.
    pub levers: Levers,
    /// The lessons behind it.
    pub lesson_keys: Vec<String>,
    /// Its latent factor, when merged from several lessons.
    pub factor_id: Option<String>,
}

impl From<&Match> for MatchRecord {
    fn from(m: &Match) -> Self {
        Self {
            scope: m.scope().clone(),
            weight: m.weight,
            levers: *m.levers(),
            lesson_keys: m.lesson_keys().to_vec(),
            factor_id: m.factor_id().map(str::to_string),
        }
    }
}

impl DecisionRecord {
    /// The record of `applied`; the size fractions are shown only when the caller gave one.
    pub fn new(applied: &AppliedAction, size_frac_given: bool) -> Self {
        let d = &applied.decision;
        Self {
            config_version: d.config_version,
            size_mult: d.size_mult,
            levers: d.levers,
            size_frac_before: size_frac_given.then_some(applied.size_frac_before),
            size_frac_after: size_frac_given.then_some(applied.size_frac_after),
            matches: d.matches.iter().map(MatchRecord::from).collect(),
            fallback_reason: d.fallback_reason.clone(),
        }
    }
}
