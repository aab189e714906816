mod common;

use common::{config, ov, P};
use learnloop_overrides::{
    ActionInput, AppliedAction, Decision, Lever, Overrides, OverridesHandle,
};

const GOOD_MID: [(&str, &str); 3] = [
    ("macro_phase", "Good"),
    ("bucket", "mid"),
    ("timeframe", "1h"),
];

/// Root (0 dims), one-dim and two-dim overrides that all match `GOOD_MID`.
fn three_members(alpha: f64) -> Overrides {
    let mut c = config(
        7,
        vec![
            ov(
                "root",
                "add",
                &[],
                &[(Lever::SizeMult, 1.2), (Lever::TrailMult, 1.5)],
                0.5,
            ),
            ov(
                "phase",
                "add",
                &[("macro_phase", "Good")],
                &[(Lever::SizeMult, 0.9), (Lever::EntryAggressionMult, 1.1)],
                0.4,
            ),
            ov(
                "phase_bucket",
                "add",
                &[("macro_phase", "Good"), ("bucket", "mid")],
                &[(Lever::SizeMult, 1.3)],
                0.25,
            ),
            // Not matching: other value, other dim the action lacks, other category, other pattern.
            ov(
                "other_phase",
                "add",
                &[("macro_phase", "Dip")],
                &[(Lever::SizeMult, 0.7)],
                0.9,
            ),
            ov(
                "lacks_dim",
                "add",
                &[("A_mode", "patient")],
                &[(Lever::SizeMult, 0.7)],
                0.9,
            ),
            ov("other_cat", "trim", &[], &[(Lever::SizeMult, 0.7)], 0.9),
            {
                let mut o = ov("other_pattern", "add", &[], &[(Lever::SizeMult, 0.7)], 0.9);
                o.pattern_key = "module=pm|pattern_key=range.S1.add".into();
                o
            },
        ],
    );
    c.specificity_alpha = alpha;
    Overrides::from_config(c).unwrap()
}

fn ids(d: &Decision) -> Vec<&str> {
    d.matches.iter().map(|m| m.override_id()).collect()
}

#[test]
fn blend_is_the_confidence_and_specificity_weighted_mean_not_a_product() {
    let o = three_members(1.5);
    let d = o.lookup(P, "add", &GOOD_MID);
    assert_eq!(
        ids(&d),
        ["phase_bucket", "phase", "root"],
        "most specific first"
    );
    // weights: 0.25·3^1.5, 0.4·2^1.5, 0.5·1^1.5
    let w = [1.299_038_105_676_658, 1.131_370_849_898_476_2, 0.5];
    for (m, w) in d.matches.iter().zip(w) {
        assert!(
            (m.weight - w).abs() < 1e-12,
            "{} weight {}",
            m.override_id(),
            m.weight
        );
    }
    // (1.2990·1.3 + 1.1314·0.9 + 0.5·1.2) / 2.9304 — a product would be 1.404 (clamped 1.3).
    assert!(
        (d.size_mult - 1.128_505_731_596_510_8).abs() < 1e-12,
        "{}",
        d.size_mult
    );
    assert_eq!(d.levers.get(Lever::SizeMult), Some(d.size_mult));
    // Levers only some members carry are their carriers' mean, not diluted by the others.
    assert!((d.lever(Lever::EntryAggressionMult) - 1.1).abs() < 1e-12);
    assert!((d.lever(Lever::TrailMult) - 1.5).abs() < 1e-12);
    assert_eq!(d.levers.get(Lever::ExitAggressionMult), None);
    assert_eq!(d.lever(Lever::ExitAggressionMult), 1.0);
    assert_eq!(d.config_version, Some(7));
    assert_eq!(d.fallback_reason, None);
    assert_eq!(o.lookup_scan(P, "add", &GOOD_MID), d);
}

#[test]
fn specificity_alpha_shifts_weight_to_specific_scopes() {
    let flat = three_members(0.0).lookup(P, "add", &GOOD_MID);
    // alpha 0: plain confidence-weighted mean (0.25·1.3 + 0.4·0.9 + 0.5·1.2) / 1.15
    assert!((flat.size_mult - (0.25 * 1.3 + 0.4 * 0.9 + 0.5 * 1.2) / 1.15).abs() < 1e-12);
    let steep = three_members(4.0).lookup(P, "add", &GOOD_MID);
    let mid = three_members(1.5).lookup(P, "add", &GOOD_MID);
    // The most specific override says 1.3: more alpha, closer to it.
    assert!(flat.size_mult < mid.size_mult && mid.size_mult < steep.size_mult);
    assert!(steep.size_mult < 1.3);
}

#[test]
fn scope_must_contain_the_override_scope() {
    let o = three_members(1.5);
    assert_eq!(
        ids(&o.lookup(P, "add", &[("macro_phase", "Good")])),
        ["phase", "root"]
    );
    assert_eq!(ids(&o.lookup(P, "add", &[("bucket", "mid")])), ["root"]);
    assert_eq!(
        ids(&o.lookup(P, "add", &[("macro_phase", "Dip"), ("A_mode", "patient")])),
        ["lacks_dim", "other_phase", "root"]
    );
    let none = o.lookup("module=pm|pattern_key=unknown", "add", &GOOD_MID);
    assert!(none.matches.is_empty() && none.levers.is_empty() && none.size_mult == 1.0);
    assert_eq!(none.fallback_reason, None, "no match is not a failure");
    assert_eq!(
        ids(&o.lookup(P, "ADD", &[("bucket", "mid")])),
        ["root"],
        "category is case-insensitive"
    );
}

fn action<'a>(
    decision_type: &'a str,
    scope: &'a dyn learnloop_overrides::ScopeView,
    size_frac: f64,
) -> ActionInput<'a> {
    ActionInput {
        pattern_key: P,
        action_category: "add",
        decision_type,
        scope,
        size_frac,
        a_value: Some(0.5),
        e_value: Some(0.5),
    }
}

#[test]
fn apply_scales_size_and_aggression_and_clamps_size() {
    let o = three_members(1.5);
    let a = o.apply(&action("add", &GOOD_MID, 0.4));
    assert!((a.size_frac_after - 0.4 * 1.128_505_731_596_510_8).abs() < 1e-12);
    assert!((a.a_value_after.unwrap() - 0.55).abs() < 1e-12);
    assert_eq!(a.e_value_after, Some(0.5), "no exit lever: unchanged");
    assert!(a.changed());
    let full = o.apply(&action("add", &GOOD_MID, 0.95));
    assert_eq!(full.size_frac_after, 1.0, "clamped to [0, 1]");
}

#[test]
fn an_out_of_range_size_frac_is_left_unchanged_with_the_reason() {
    let o = three_members(1.5);
    for size in [1.5, -0.5] {
        let unknown = [("macro_phase", "Unknown")];
        let scopes: [&[(&str, &str)]; 2] = [&GOOD_MID, &unknown];
        for scope in scopes {
            let a = o.apply(&action("add", &scope, size));
            assert_eq!(a.size_frac_after, size, "not clamped behind the PM's back");
            assert!(!a.changed());
            let why = a.decision.fallback_reason.unwrap();
            assert!(why.contains("outside [0, 1]"), "{why}");
        }
    }
}

#[test]
fn emergency_exits_are_never_resized() {
    let o = three_members(1.5);
    for t in ["emergency_exit", "EMERGENCY_EXIT", " emergency_exit "] {
        let a = o.apply(&action(t, &GOOD_MID, 0.4));
        assert_eq!(a.size_frac_after, 0.4);
        assert_eq!(a.a_value_after, Some(0.5));
        assert!(!a.changed());
        assert!(a.decision.matches.is_empty());
        assert!(a.decision.fallback_reason.unwrap().contains("emergency"));
    }
}

#[test]
fn feature_flags_switch_learning_off_with_the_reason() {
    let base = three_members(1.5).config().clone();
    type Flip = fn(&mut learnloop_overrides::FeatureFlags);
    let cases: [(Flip, &str); 5] = [
        (|f| f.learning_enabled = false, "learning_enabled=false"),
        (
            |f| f.disabled_regimes = vec!["good".into()],
            "regime macro_phase=Good",
        ),
        (
            |f| f.disabled_buckets = vec!["mid".into()],
            "bucket bucket=mid",
        ),
        (|f| f.disabled_patterns = vec![P.into()], "pattern"),
        (
            |f| f.disabled_categories = vec!["add".into()],
            "category add",
        ),
    ];
    for (flip, reason) in cases {
        let mut c = base.clone();
        flip(&mut c.feature_flags);
        let o = Overrides::from_config(c).unwrap();
        let a = o.apply(&action("add", &GOOD_MID, 0.4));
        assert!(!a.changed(), "{reason}");
        let why = a.decision.fallback_reason.clone().unwrap();
        assert!(why.contains(reason), "{why} lacks {reason}");
        assert_eq!(a.decision.config_version, Some(7));
    }
    // A regime flag leaves other regimes alone.
    let mut c = base;
    c.feature_flags.disabled_regimes = vec!["Dip".into()];
    let o = Overrides::from_config(c).unwrap();
    assert!(o.apply(&action("add", &GOOD_MID, 0.4)).changed());
}

#[test]
fn failures_fail_open_with_a_reason() {
    let o = three_members(1.5);
    let mut bad = action("add", &GOOD_MID, f64::NAN);
    let a = o.apply(&bad);
    assert!(
        a.size_frac_after.is_nan()
            && a.decision
                .fallback_reason
                .unwrap()
                .contains("invalid action input")
    );
    bad.size_frac = 0.3;
    bad.a_value = Some(f64::INFINITY);
    assert_eq!(o.apply(&bad).size_frac_after, 0.3);
    bad.a_value = None;
    bad.action_category = "hold";
    let a = o.apply(&bad);
    assert_eq!(a.size_frac_after, 0.3);
    assert!(a
        .decision
        .fallback_reason
        .unwrap()
        .contains("unknown action category"));

    let empty = OverridesHandle::new();
    let a = empty.apply(&action("add", &GOOD_MID, 0.3));
    assert_eq!((a.size_frac_after, a.decision.config_version), (0.3, None));
    assert_eq!(
        a.decision.fallback_reason.as_deref(),
        Some("no learning config loaded")
    );
}

#[test]
fn apply_into_reuses_the_output_across_calls() {
    let o = three_members(1.5);
    let mut out = AppliedAction::default();
    o.apply_into(&action("add", &GOOD_MID, 0.4), &mut out);
    assert_eq!(out.decision.matches.len(), 3);
    o.apply_into(&action("emergency_exit", &GOOD_MID, 0.4), &mut out);
    assert!(out.decision.matches.is_empty() && out.decision.levers.is_empty());
    o.apply_into(&action("add", &[("bucket", "mid")], 0.4), &mut out);
    assert_eq!(ids(&out.decision), ["root"]);
    assert_eq!(out.decision.fallback_reason, None);
}

#[test]
fn the_applied_action_serializes_as_the_lookup_json_record_and_round_trips() {
    let o = three_members(1.5);
    let a = o.apply(&action("add", &GOOD_MID, 0.4));
    let v: serde_json::Value = serde_json::to_value(&a).unwrap();
    for key in [
        "config_version",
        "size_mult",
        "levers",
        "size_frac_before",
        "size_frac_after",
        "matches",
        "fallback_reason",
    ] {
        assert!(v.get(key).is_some(), "missing {key} in {v}");
    }
    assert!(v["fallback_reason"].is_null());
    assert_eq!(v["levers"]["size_mult"], v["size_mult"]);
    let m = &v["matches"][0];
    for key in [
        "override_id",
        "scope",
        "weight",
        "levers",
        "lesson_keys",
        "factor_id",
    ] {
        assert!(m.get(key).is_some(), "missing {key} in match {m}");
    }
    assert_eq!(m["scope"]["bucket"], "mid");
    let back: AppliedAction = serde_json::from_value(v).unwrap();
    assert_eq!(back, a);
}

/// A PM may pass the bare pattern (`uptrend.S2.add`), as `learnloop lookup` accepts it: it is the
/// config module's full key, and gets the same decision instead of a silent 1.0.
#[test]
fn a_bare_pattern_key_is_the_config_modules_full_key() {
    let mut other_module = ov("elsewhere", "add", &[], &[(Lever::SizeMult, 0.8)], 0.5);
    other_module.pattern_key = "module=other|pattern_key=breakout.S1.add".into();
    let mut c = config(
        1,
        vec![
            ov("root", "add", &[], &[(Lever::SizeMult, 1.2)], 0.5),
            other_module,
        ],
    );
    let scope = [("bucket", "micro")];
    let o = Overrides::from_config(c.clone()).unwrap();
    let full = o.lookup(P, "add", &scope);
    assert_eq!(full.size_mult, 1.2);
    assert_eq!(o.lookup("uptrend.S2.add", "add", &scope), full);
    assert_eq!(o.lookup_scan("uptrend.S2.add", "add", &scope), full);
    // Another module's pattern is not this config's: its bare key matches nothing.
    assert_eq!(o.lookup("breakout.S1.add", "add", &scope).size_mult, 1.0);
    assert!(o
        .lookup("breakout.S1.add", "add", &scope)
        .matches
        .is_empty());

    // Overrides stored under the bare key itself keep it: it is not redirected to the full key.
    let mut bare_too = c.clone();
    let mut own = ov("bare", "add", &[], &[(Lever::SizeMult, 0.9)], 0.5);
    own.pattern_key = "uptrend.S2.add".into();
    bare_too.pattern_strength_overrides.push(own);
    let both = Overrides::from_config(bare_too).unwrap();
    assert_eq!(both.lookup("uptrend.S2.add", "add", &scope).size_mult, 0.9);
    assert_eq!(both.lookup(P, "add", &scope).size_mult, 1.2);

    // A feature flag may name the pattern either way, and the lookup either way obeys it.
    c.feature_flags.disabled_patterns = vec!["uptrend.S2.add".into()];
    let o = Overrides::from_config(c).unwrap();
    for key in [P, "uptrend.S2.add"] {
        let d = o.lookup(key, "add", &scope);
        assert_eq!(d.size_mult, 1.0, "{key}");
        assert!(d.fallback_reason.is_some(), "{key}");
    }
}
