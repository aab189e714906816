mod common;

use common::{config, ov};
use learnloop_overrides::{ConfigData, ConfigError, Lever, Overrides, OverridesHandle};

fn issues_of(c: &ConfigData) -> Vec<String> {
    match c.validate() {
        Err(e @ ConfigError::Invalid { .. }) => e.issues().iter().map(|i| i.to_string()).collect(),
        other => panic!("expected validation issues, got {other:?}"),
    }
}

#[test]
fn a_valid_config_round_trips_through_json() {
    let c = config(
        3,
        vec![ov(
            "a",
            "add",
            &[("macro_phase", "Good")],
            &[(Lever::SizeMult, 1.1)],
            0.5,
        )],
    );
    c.validate().unwrap();
    let text = c.to_json();
    let back = ConfigData::from_json(&text).unwrap();
    assert_eq!(back, c);
    assert_eq!(back.to_json(), text, "serialization is deterministic");
}

#[test]
fn every_bad_field_is_reported_with_its_override_and_field() {
    let mut bad_bounds = ov(
        "bounds",
        "add",
        &[],
        &[(Lever::SizeMult, 1.5), (Lever::TrailMult, 0.5)],
        0.5,
    );
    bad_bounds.levers.set(Lever::EntryAggressionMult, f64::NAN);
    let bad_conf = ov("conf", "add", &[], &[], 1.2);
    let mut bad_pattern = ov("pattern", "add", &[], &[], 0.5);
    bad_pattern.pattern_key = " ".into();
    let bad_category = ov("category", "hold", &[], &[], 0.5);
    let dup1 = ov("dup", "add", &[], &[], 0.5);
    let dup2 = ov("dup", "trim", &[("bucket", "mid")], &[], 0.5);
    let c = config(
        1,
        vec![bad_bounds, bad_conf, bad_pattern, bad_category, dup1, dup2],
    );
    let issues = issues_of(&c);
    let has = |needle: &str| issues.iter().any(|i| i.contains(needle));
    assert!(
        has(r#"override "bounds": levers.size_mult: 1.5 is outside [0.7, 1.3]"#),
        "{issues:#?}"
    );
    assert!(
        has(r#"override "bounds": levers.entry_aggression_mult: NaN is outside"#),
        "{issues:#?}"
    );
    assert!(
        !has("levers.trail_mult"),
        "0.5 is the trail lower bound, inclusive"
    );
    assert!(
        has(r#"override "conf": confidence: must lie in [0, 1], got 1.2"#),
        "{issues:#?}"
    );
    assert!(
        has(r#"override "pattern": pattern_key: must not be empty"#),
        "{issues:#?}"
    );
    assert!(
        has(r#"override "category": action_category: unknown category "hold""#),
        "{issues:#?}"
    );
    assert!(
        has(r#"override "dup": override_id: duplicate id"#),
        "{issues:#?}"
    );
    assert_eq!(issues.len(), 6, "{issues:#?}");
}

#[test]
fn config_level_fields_are_checked() {
    let mut c = config(0, vec![]);
    c.as_of = "yesterday".into();
    c.specificity_alpha = f64::INFINITY;
    c.module = String::new();
    let issues = issues_of(&c);
    assert_eq!(issues.len(), 4, "{issues:#?}");
    assert!(issues.iter().any(|i| i.starts_with("as_of:")));
}

#[test]
fn unknown_or_missing_schema_version_is_refused_before_anything_else() {
    let err = Overrides::from_json(r#"{"schema_version": 2, "whatever": true}"#).unwrap_err();
    assert!(
        matches!(err, ConfigError::UnsupportedSchemaVersion { .. }),
        "{err}"
    );
    assert!(err.to_string().contains("schema_version 2"), "{err}");
    let err = Overrides::from_json(r#"{"module": "pm"}"#).unwrap_err();
    assert!(
        matches!(err, ConfigError::MissingSchemaVersion { .. }),
        "{err}"
    );
    let err = Overrides::from_json("not json").unwrap_err();
    assert!(matches!(err, ConfigError::Json(_)), "{err}");
}

#[test]
fn unknown_levers_are_refused_unknown_fields_are_ignored() {
    let text = r#"{"schema_version":1,"module":"pm","version":1,"as_of":"2024-06-01T00:00:00Z",
        "future_field": [1,2],
        "pattern_overrides":[{"override_id":"a","pattern_key":"p","action_category":"add",
          "scope":{},"levers":{"size_mul":1.1},"confidence":0.5,"q_value":0.01,"n_trades":30}]}"#;
    let err = Overrides::from_json(text).unwrap_err();
    assert!(
        err.to_string().contains("unknown lever \"size_mul\""),
        "{err}"
    );
    let ok = text.replace("size_mul\"", "size_mult\"");
    let loaded = Overrides::from_json(&ok).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(
        loaded.config().specificity_alpha,
        1.5,
        "alpha defaults to 1.5"
    );
    assert!(
        loaded.config().feature_flags.learning_enabled,
        "learning on by default"
    );
}

#[test]
fn a_rejected_config_keeps_the_previous_one_served() {
    let handle = OverridesHandle::new();
    let good = config(4, vec![ov("a", "add", &[], &[(Lever::SizeMult, 1.2)], 0.5)]);
    assert_eq!(handle.load_json(&good.to_json()).unwrap(), 4);
    let mut bad = config(5, vec![ov("a", "add", &[], &[(Lever::SizeMult, 9.0)], 0.5)]);
    assert!(handle.load_json(&bad.to_json()).is_err());
    bad.schema_version = 9;
    assert!(handle.load_json(&bad.to_json()).is_err());
    assert!(handle.load_file("/nonexistent/config.json").is_err());
    assert_eq!(handle.version(), Some(4));
    let d = handle.lookup(common::P, "add", &[("macro_phase", "Good")]);
    assert_eq!(d.config_version, Some(4));
    assert!((d.size_mult - 1.2).abs() < 1e-12);
}

/// A hand-edited config: a misspelt `scope` must not widen an override to every action of its
/// pattern, and a misspelt feature flag must not leave the operator's switch silently off.
#[test]
fn a_misspelt_scope_or_feature_flag_is_refused_not_ignored() {
    let good = config(
        1,
        vec![ov(
            "o",
            "add",
            &[("bucket", "micro")],
            &[(Lever::SizeMult, 1.2)],
            0.5,
        )],
    )
    .to_json();
    assert!(Overrides::from_json(&good).is_ok());
    for (from, to, needle) in [
        (r#""scope":"#, r#""scpoe":"#, "missing field `scope`"),
        (
            r#""disabled_regimes":"#,
            r#""disabled_regime":"#,
            "unknown field `disabled_regime`",
        ),
    ] {
        assert!(good.contains(from), "{good}");
        let typo = good.replacen(from, to, 1);
        match Overrides::from_json(&typo) {
            Err(e) => assert!(e.to_string().contains(needle), "{e}"),
            Ok(_) => panic!("{to} was accepted"),
        }
    }
    // Unknown optional fields elsewhere stay readable (a newer materializer may add some).
    let extra = good.replacen(r#""confidence":"#, r#""audit_note":"x","confidence":"#, 1);
    assert!(Overrides::from_json(&extra).is_ok());
}
