//! The index must find exactly what a brute-force scan finds.
mod common;

use learnloop_overrides::synthetic::{synthetic_actions, synthetic_config, SyntheticSpec};
use learnloop_overrides::{ConfigData, Decision, Lever, Levers, Override, Overrides};
use proptest::prelude::*;
use std::collections::BTreeMap;

const DIMS: [&str; 6] = [
    "macro_phase",
    "bucket",
    "timeframe",
    "A_mode",
    "E_mode",
    "chain",
];
const VALUES: [&str; 3] = ["x", "y", "zz"];
const PATTERNS: [&str; 3] = ["p.a", "p.b", "p.c"];
const CATEGORIES: [&str; 4] = ["entry", "add", "trim", "exit"];

type ScopeSpec = Vec<Option<usize>>;
/// (pattern, category, scope, size_mult, trail_mult, confidence)
type OverrideSpec = (usize, usize, ScopeSpec, Option<f64>, Option<f64>, f64);

fn scope_of(spec: &ScopeSpec) -> BTreeMap<String, String> {
    spec.iter()
        .enumerate()
        .filter_map(|(d, v)| v.map(|v| (DIMS[d].to_string(), VALUES[v].to_string())))
        .collect()
}

fn scope_spec(presence: f64) -> impl Strategy<Value = ScopeSpec> {
    prop::collection::vec(
        prop::option::weighted(presence, 0..VALUES.len()),
        DIMS.len(),
    )
}

fn override_spec() -> impl Strategy<Value = OverrideSpec> {
    (
        0..PATTERNS.len(),
        0..CATEGORIES.len(),
        scope_spec(0.3),
        prop::option::of(0.7f64..=1.3),
        prop::option::of(0.5f64..=2.0),
        0.0f64..=1.0,
    )
}

fn build(specs: &[OverrideSpec], alpha: f64) -> Overrides {
    let mut c = ConfigData::new("pm", 1, "2024-06-01T00:00:00Z");
    c.specificity_alpha = alpha;
    for (i, (p, cat, scope, size, trail, conf)) in specs.iter().enumerate() {
        let mut levers = Levers::new();
        if let Some(s) = size {
            levers.set(Lever::SizeMult, *s);
        }
        if let Some(t) = trail {
            levers.set(Lever::TrailMult, *t);
        }
        let o = Override {
            override_id: format!("o{i}"),
            pattern_key: PATTERNS[*p].to_string(),
            action_category: CATEGORIES[*cat].to_string(),
            scope: scope_of(scope),
            levers,
            confidence: *conf,
            q_value: 0.05,
            n_trades: 30,
            edge: None,
            half_life_hours: None,
            created_at: None,
            lesson_keys: vec![],
            factor_id: None,
            members: vec![],
        };
        // Both lists are loaded alike; put some scoped ones in the strength list too.
        if i % 5 == 0 {
            c.pattern_strength_overrides.push(o);
        } else {
            c.pattern_overrides.push(o);
        }
    }
    Overrides::from_config(c).expect("generated configs are valid")
}

fn assert_same(indexed: &Decision, scanned: &Decision) {
    let ids = |d: &Decision| {
        d.matches
            .iter()
            .map(|m| m.override_id().to_string())
            .collect::<Vec<_>>()
    };
    assert_eq!(ids(indexed), ids(scanned));
    for lever in Lever::ALL {
        match (indexed.levers.get(lever), scanned.levers.get(lever)) {
            (Some(a), Some(b)) => assert!((a - b).abs() <= 1e-12, "{lever}: {a} vs {b}"),
            (a, b) => assert_eq!(a, b, "{lever}"),
        }
    }
    assert!((indexed.size_mult - scanned.size_mult).abs() <= 1e-12);
    assert_eq!(indexed.fallback_reason, scanned.fallback_reason);
}

/// Brute force written independently of the crate: every override of the same pattern and
/// category whose scope is a subset of the action's.
fn naive_ids(
    o: &Overrides,
    pattern: &str,
    category: &str,
    scope: &BTreeMap<String, String>,
) -> Vec<String> {
    let mut hits: Vec<&Override> = o
        .config()
        .overrides()
        .filter(|ov| ov.pattern_key == pattern && ov.action_category == category)
        .filter(|ov| ov.scope.iter().all(|(d, v)| scope.get(d) == Some(v)))
        .collect();
    hits.sort_by(|a, b| {
        b.scope
            .len()
            .cmp(&a.scope.len())
            .then(a.override_id.cmp(&b.override_id))
    });
    hits.into_iter().map(|o| o.override_id.clone()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn indexed_lookup_equals_brute_force(
        specs in prop::collection::vec(override_spec(), 0..60),
        actions in prop::collection::vec((0..PATTERNS.len() + 1, 0..CATEGORIES.len(), scope_spec(0.7)), 1..20),
        alpha in prop_oneof![Just(1.5), 0.0f64..4.0],
    ) {
        let o = build(&specs, alpha);
        for (p, cat, scope) in &actions {
            let pattern = PATTERNS.get(*p).copied().unwrap_or("p.unknown");
            let scope = scope_of(scope);
            let indexed = o.lookup(pattern, CATEGORIES[*cat], &scope);
            let scanned = o.lookup_scan(pattern, CATEGORIES[*cat], &scope);
            assert_same(&indexed, &scanned);
            let ids: Vec<String> = indexed.matches.iter().map(|m| m.override_id().to_string()).collect();
            prop_assert_eq!(ids, naive_ids(&o, pattern, CATEGORIES[*cat], &scope));
        }
    }
}

#[test]
fn realistic_config_matches_brute_force() {
    let o = Overrides::from_config(synthetic_config(SyntheticSpec::default())).unwrap();
    assert!(o.len() >= 9_000, "{}", o.len());
    let mut matched = 0;
    for a in synthetic_actions(40, 3_000, 0.9, 7) {
        let indexed = o.lookup(&a.pattern_key, a.action_category, &a.scope);
        let scanned = o.lookup_scan(&a.pattern_key, a.action_category, &a.scope);
        assert_same(&indexed, &scanned);
        matched += indexed.matches.len();
    }
    assert!(
        matched > 3_000,
        "the test must exercise matches, got {matched}"
    );
}

#[test]
fn groups_with_hundreds_of_masks_match_brute_force() {
    // One pattern, 2 000 overrides of up to 6 dims: hundreds of masks per group, so the
    // candidate bitsets span several words.
    let o = Overrides::from_config(synthetic_config(SyntheticSpec {
        patterns: 1,
        overrides: 2_000,
        max_dims: 6,
        seed: 9,
    }))
    .unwrap();
    let stats = o.index_stats();
    assert!(stats.max_masks_per_group > 128, "{stats:?}");
    let mut matched = 0;
    for a in synthetic_actions(1, 2_000, 0.8, 3) {
        let indexed = o.lookup(&a.pattern_key, a.action_category, &a.scope);
        assert_same(
            &indexed,
            &o.lookup_scan(&a.pattern_key, a.action_category, &a.scope),
        );
        matched += indexed.matches.len();
    }
    assert!(matched > 2_000, "{matched}");
}

#[test]
fn a_group_of_root_overrides_only_matches_every_scope() {
    let o = build(
        &[
            (0, 1, vec![None; 6], Some(1.1), None, 0.5),
            (0, 1, vec![None; 6], Some(0.9), None, 0.25),
        ],
        1.5,
    );
    let empty = BTreeMap::new();
    let full = scope_of(&vec![Some(0); 6]);
    for scope in [&empty, &full] {
        let d = o.lookup("p.a", "add", scope);
        assert_eq!(d.matches.len(), 2);
        assert!((d.size_mult - (0.5 * 1.1 + 0.25 * 0.9) / 0.75).abs() < 1e-12);
        assert_same(&d, &o.lookup_scan("p.a", "add", scope));
    }
}
