//! Helpers shared by the integration tests.
#![allow(dead_code)]

use learnloop_overrides::{ConfigData, Lever, Levers, Override};
use std::collections::BTreeMap;

pub const P: &str = "module=pm|pattern_key=uptrend.S2.add";

pub fn scope(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

pub fn ov(
    id: &str,
    category: &str,
    pairs: &[(&str, &str)],
    levers: &[(Lever, f64)],
    confidence: f64,
) -> Override {
    Override {
        override_id: id.to_string(),
        pattern_key: P.to_string(),
        action_category: category.to_string(),
        scope: scope(pairs),
        levers: levers.iter().copied().collect::<Levers>(),
        confidence,
        q_value: 0.01,
        n_trades: 50,
        edge: Some(0.3),
        half_life_hours: None,
        created_at: Some("2024-05-01T00:00:00Z".to_string()),
        lesson_keys: vec![format!("lesson-{id}")],
        factor_id: None,
        members: Vec::new(),
    }
}

/// A config with `overrides` split like the materializer does: root scopes in
/// `pattern_strength_overrides`, the rest in `pattern_overrides`.
pub fn config(version: i64, overrides: Vec<Override>) -> ConfigData {
    let mut c = ConfigData::new("pm", version, "2024-06-01T00:00:00Z");
    for o in overrides {
        if o.scope.is_empty() {
            c.pattern_strength_overrides.push(o);
        } else {
            c.pattern_overrides.push(o);
        }
    }
    c
}
