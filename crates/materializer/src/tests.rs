use super::*;
use learnloop_model::ActionCategory;
use learnloop_model::{ConfigStatus, LessonStatus};
use learnloop_overrides::ConfigData;
use learnloop_store::lessons::upsert_lesson;

const PATTERN: &str = "module=pm|pattern_key=uptrend.S2.add";

fn ts(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn t0() -> Timestamp {
    ts("2026-03-01T00:00:00Z")
}

fn day(n: i64) -> Timestamp {
    t0().plus_hours(24.0 * n as f64)
}

struct L {
    key: &'static str,
    factor: Option<&'static str>,
    scope: &'static str,
    levers: &'static str,
    q: f64,
    n: u64,
    t: f64,
    half_life: Option<f64>,
    created_at: Timestamp,
    /// `None`: confirmed at its creation.
    confirmed_at: Option<Timestamp>,
    pattern: &'static str,
}

impl Default for L {
    fn default() -> Self {
        Self {
            key: "lk-a",
            factor: None,
            scope: r#"{"macro_phase":"Good"}"#,
            levers: r#"{"size_mult":1.2}"#,
            q: 0.01,
            n: 50,
            t: 4.0,
            half_life: None,
            created_at: t0(),
            confirmed_at: None,
            pattern: PATTERN,
        }
    }
}

impl L {
    fn row(&self) -> LessonRow {
        let scope: BTreeMap<String, String> = serde_json::from_str(self.scope).unwrap();
        LessonRow {
            lesson_key: self.key.to_string(),
            module: "pm".into(),
            pattern_key: self.pattern.into(),
            category: ActionCategory::Add,
            scope_mask: (1u64 << scope.len()) - 1,
            scope_values: self.scope.to_string(),
            scope_values_hash: 0,
            n_trades: self.n,
            mean_rr: 0.5,
            edge: 0.4,
            shrunk_edge: 0.35,
            t_stat: Some(self.t),
            p_value: Some(self.q / 2.0),
            q_value: Some(self.q),
            half_life_hours: self.half_life,
            latent_factor_id: Some(self.factor.unwrap_or(self.key).to_string()),
            levers: serde_json::from_str(self.levers).expect("a lever object"),
            status: LessonStatus::Active,
            status_reason: None,
            created_at: Some(self.created_at),
            confirmed_at: Some(self.confirmed_at.unwrap_or(self.created_at)),
            confirmed_n_trades: Some(self.n),
            confirmed_mean_rr: Some(0.5),
            failed_runs: 0,
            updated_at: self.created_at,
        }
    }

    fn insert(self, conn: &Connection) -> LessonRow {
        let row = self.row();
        upsert_lesson(conn, &row).unwrap();
        row
    }
}

/// Defaults, with a rate limit wide enough not to interfere.
fn free_cfg() -> LoopConfig {
    let mut cfg = LoopConfig::default();
    cfg.materialize.max_step = 1.0;
    cfg
}

fn opts(activate: bool) -> MaterializeOptions {
    MaterializeOptions {
        activate,
        run_id: Some("run-test".into()),
        created_at: Timestamp::parse("2030-01-01T00:00:00Z").unwrap(),
    }
}

fn run(conn: &Connection, cfg: &LoopConfig, as_of: Timestamp, activate: bool) -> ModuleReport {
    let report = materialize(conn, cfg, as_of, &opts(activate)).unwrap();
    assert_eq!(report.modules.len(), 1, "{report:?}");
    report.modules[0].clone()
}

fn config(conn: &Connection, version: i64) -> ConfigData {
    let row = configs::get_version(conn, "pm", version).unwrap().unwrap();
    assert_eq!(row.checksum, config_checksum(&row.config_data));
    let data = ConfigData::from_json(&row.config_data).unwrap();
    assert_eq!(data.version, row.version, "version inside config_data");
    data
}

fn only_override(data: &ConfigData) -> &Override {
    let all: Vec<&Override> = data.overrides().collect();
    assert_eq!(all.len(), 1, "{data:?}");
    all[0]
}

fn size(data: &ConfigData, id: &str) -> Option<f64> {
    data.overrides()
        .find(|o| o.override_id == id)
        .and_then(|o| o.levers.get(Lever::SizeMult))
}

#[test]
fn decay_formula() {
    assert_eq!(decay_lever(Lever::SizeMult, 1.2, 720.0, 720.0), 1.1);
    assert_eq!(decay_lever(Lever::SizeMult, 0.8, 1440.0, 720.0), 0.95);
    assert_eq!(decay_lever(Lever::EntryDelayBars, 4.0, 10.0, 10.0), 2.0);
    assert_eq!(decay_lever(Lever::SizeMult, 1.2, -5.0, 10.0), 1.2);
    assert_eq!(decay_lever(Lever::SizeMult, 1.2, 0.0, 10.0), 1.2);
}

#[test]
fn decay_at_one_half_life_halves_the_distance_to_neutral() {
    let conn = learnloop_store::open_in_memory().unwrap();
    let as_of = t0().plus_hours(720.0);
    // Default half-life (720 h) and an estimated one (100 h, created 100 h before the as-of).
    L {
        key: "lk-default",
        levers: r#"{"size_mult":1.2,"entry_delay_bars":2}"#,
        ..L::default()
    }
    .insert(&conn);
    L {
        key: "lk-fitted",
        scope: r#"{"macro_phase":"Bad"}"#,
        levers: r#"{"size_mult":0.8}"#,
        half_life: Some(100.0),
        created_at: as_of.plus_hours(-100.0),
        ..L::default()
    }
    .insert(&conn);
    let r = run(&conn, &free_cfg(), as_of, false);
    assert_eq!((r.rate_limited, r.dropped_neutral), (0, 0));
    let data = config(&conn, 1);
    let o = data
        .overrides()
        .find(|o| o.override_id == "lk-default")
        .unwrap();
    assert_eq!(o.levers.get(Lever::SizeMult), Some(1.1));
    assert_eq!(o.levers.get(Lever::EntryDelayBars), Some(1.0));
    assert_eq!(size(&data, "lk-fitted"), Some(0.9));
}

#[test]
fn decay_counts_from_the_last_confirmation_not_the_first_activation() {
    let conn = learnloop_store::open_in_memory().unwrap();
    let as_of = t0().plus_hours(2000.0);
    // Active for 2000 h, re-confirmed by fresh trades 720 h ago (one default half-life): the
    // lever is halfway back, not 0.5^(2000/720) of the way.
    L {
        key: "lk-confirmed",
        levers: r#"{"size_mult":1.2}"#,
        confirmed_at: Some(as_of.plus_hours(-720.0)),
        ..L::default()
    }
    .insert(&conn);
    // Re-confirmed by this very run: not decayed at all.
    L {
        key: "lk-fresh",
        scope: r#"{"bucket":"micro"}"#,
        levers: r#"{"size_mult":0.8}"#,
        confirmed_at: Some(as_of),
        ..L::default()
    }
    .insert(&conn);
    run(&conn, &free_cfg(), as_of, false);
    let data = config(&conn, 1);
    assert_eq!(size(&data, "lk-confirmed"), Some(1.1));
    assert_eq!(size(&data, "lk-fresh"), Some(0.8));
}

#[test]
fn a_factor_id_shared_across_groups_removes_no_group_s_override() {
    let conn = learnloop_store::open_in_memory().unwrap();
    // Rows written before factors were per group: one factor id over two patterns.
    L {
        key: "lk-a",
        factor: Some("f-shared"),
        t: 6.0,
        ..L::default()
    }
    .insert(&conn);
    L {
        key: "lk-b",
        factor: Some("f-shared"),
        pattern: "module=pm|pattern_key=range.S2.add",
        levers: r#"{"size_mult":0.9}"#,
        t: 3.0,
        ..L::default()
    }
    .insert(&conn);
    let r = run(&conn, &free_cfg(), t0(), false);
    assert_eq!((r.factors, r.overrides), (2, 2));
    let data = config(&conn, 1);
    let by_pattern: BTreeMap<&str, (&str, Option<f64>)> = data
        .overrides()
        .map(|o| {
            (
                o.pattern_key.as_str(),
                (o.override_id.as_str(), o.levers.get(Lever::SizeMult)),
            )
        })
        .collect();
    // Groups are visited in (pattern, category) order: range keeps the id, uptrend's override
    // takes its representative's key.
    assert_eq!(
        by_pattern["module=pm|pattern_key=range.S2.add"],
        ("f-shared", Some(0.9))
    );
    assert_eq!(by_pattern[PATTERN], ("lk-a", Some(1.2)));
}

#[test]
fn a_factor_of_three_is_the_confidence_weighted_mean_not_the_product() {
    let conn = learnloop_store::open_in_memory().unwrap();
    // confidence = (1 − q)·n/(n + 25)
    //   a: 0.99·50/75  = 0.66    size 1.2
    //   b: 0.96·100/125 = 0.768  size 1.1  (largest |t|: the representative)
    //   c: 0.98·25/50  = 0.49    size 1.3
    // mean = (0.66·1.2 + 0.768·1.1 + 0.49·1.3) / (0.66 + 0.768 + 0.49) = 2.2738 / 1.918
    L {
        key: "lk-a",
        factor: Some("f-1"),
        levers: r#"{"size_mult":1.2}"#,
        q: 0.01,
        n: 50,
        t: 4.0,
        ..L::default()
    }
    .insert(&conn);
    L {
        key: "lk-b",
        factor: Some("f-1"),
        scope: r#"{"bucket":"mid","macro_phase":"Good"}"#,
        levers: r#"{"size_mult":1.1}"#,
        q: 0.04,
        n: 100,
        t: -5.0,
        ..L::default()
    }
    .insert(&conn);
    L {
        key: "lk-c",
        factor: Some("f-1"),
        scope: r#"{"timeframe":"1h"}"#,
        levers: r#"{"size_mult":1.3}"#,
        q: 0.02,
        n: 25,
        t: 3.0,
        ..L::default()
    }
    .insert(&conn);
    let r = run(&conn, &free_cfg(), t0(), false);
    assert_eq!((r.lessons, r.factors, r.overrides), (3, 1, 1));
    let data = config(&conn, 1);
    let o = only_override(&data);
    let expected: f64 = 2.2738 / 1.918;
    assert!((expected - 1.185_505_735).abs() < 1e-9);
    assert!((o.levers.get(Lever::SizeMult).unwrap() - expected).abs() < 1e-6);
    assert_eq!(o.levers.get(Lever::SizeMult), Some(1.185506));
    // The representative's scope and figures; every member listed, representative first.
    assert_eq!(o.override_id, "f-1");
    assert_eq!(o.factor_id.as_deref(), Some("f-1"));
    assert_eq!(
        o.scope,
        BTreeMap::from([
            ("bucket".to_string(), "mid".to_string()),
            ("macro_phase".to_string(), "Good".to_string())
        ])
    );
    assert!((o.confidence - 0.768).abs() < 1e-12);
    assert_eq!((o.q_value, o.n_trades), (0.04, 100));
    assert_eq!(o.confidence, confidence_from(o.q_value, o.n_trades));
    assert_eq!(o.lesson_keys, ["lk-b", "lk-a", "lk-c"]);
    assert_eq!(o.members, o.lesson_keys);
    assert_eq!(data.pattern_overrides.len(), 1);
}

#[test]
fn members_without_a_lever_do_not_dilute_it() {
    let conn = learnloop_store::open_in_memory().unwrap();
    L {
        key: "lk-a",
        factor: Some("f-1"),
        levers: r#"{"size_mult":1.2,"entry_aggression_mult":1.1}"#,
        ..L::default()
    }
    .insert(&conn);
    L {
        key: "lk-b",
        factor: Some("f-1"),
        levers: r#"{"size_mult":1.2}"#,
        q: 0.001,
        n: 500,
        t: 9.0,
        ..L::default()
    }
    .insert(&conn);
    run(&conn, &free_cfg(), t0(), false);
    let data = config(&conn, 1);
    let o = only_override(&data);
    assert_eq!(o.levers.get(Lever::SizeMult), Some(1.2));
    assert_eq!(o.levers.get(Lever::EntryAggressionMult), Some(1.1));
    assert_eq!(o.levers.get(Lever::ExitAggressionMult), None);
}

#[test]
fn levers_are_clamped_to_their_bounds() {
    let conn = learnloop_store::open_in_memory().unwrap();
    L {
        levers: r#"{"size_mult":1.9,"trail_mult":0.1}"#,
        ..L::default()
    }
    .insert(&conn);
    run(&conn, &free_cfg(), t0(), false);
    let data = config(&conn, 1);
    let o = only_override(&data);
    assert_eq!(o.levers.get(Lever::SizeMult), Some(1.3));
    assert_eq!(o.levers.get(Lever::TrailMult), Some(0.5));
}

#[test]
fn the_rate_limit_holds_across_versions() {
    let conn = learnloop_store::open_in_memory().unwrap();
    let cfg = LoopConfig::default();
    assert_eq!(cfg.materialize.max_step, 0.10);
    // Wants 1.3 with (practically) no decay; nothing active yet, so it starts from neutral 1.0.
    L {
        levers: r#"{"size_mult":1.3,"entry_aggression_mult":1.05}"#,
        half_life: Some(1e12),
        ..L::default()
    }
    .insert(&conn);
    let r1 = run(&conn, &cfg, day(1), true);
    assert_eq!(
        (r1.version, r1.rate_limited, r1.rate_limit_base),
        (Some(1), 1, None)
    );
    assert_eq!(size(&config(&conn, 1), "lk-a"), Some(1.1));
    assert_eq!(
        only_override(&config(&conn, 1))
            .levers
            .get(Lever::EntryAggressionMult),
        Some(1.05)
    );

    // Re-running the same night does not step again.
    let again = run(&conn, &cfg, day(1), true);
    assert!(again.unchanged && again.version.is_none());
    assert_eq!((again.config_version, again.rate_limit_base), (1, None));

    let r2 = run(&conn, &cfg, day(2), true);
    assert_eq!(
        (r2.version, r2.rate_limit_base, r2.superseded),
        (Some(2), Some(1), Some(1))
    );
    assert_eq!(size(&config(&conn, 2), "lk-a"), Some(1.2));
    // A proposed version does not move the base: without --activate, the next night is still
    // measured from v2.
    let r3 = run(&conn, &cfg, day(3), false);
    assert_eq!((r3.version, r3.status.as_str()), (Some(3), "proposed"));
    assert_eq!(size(&config(&conn, 3), "lk-a"), Some(1.3));
    assert_eq!(r3.rate_limited, 0);

    // The edge turns: the lever wants 0.8, and steps down by 0.1 from the active 1.2.
    L {
        levers: r#"{"size_mult":0.8}"#,
        half_life: Some(1e12),
        ..L::default()
    }
    .insert(&conn);
    let r4 = run(&conn, &cfg, day(4), true);
    assert_eq!((r4.version, r4.rate_limit_base), (Some(4), Some(2)));
    let data = config(&conn, 4);
    assert_eq!(size(&data, "lk-a"), Some(1.1));
    assert_eq!(
        only_override(&data).levers.get(Lever::EntryAggressionMult),
        None
    );
    assert_eq!(
        configs::active_version(&conn, "pm")
            .unwrap()
            .unwrap()
            .version,
        4
    );
    assert_eq!(
        configs::get_version(&conn, "pm", 2)
            .unwrap()
            .unwrap()
            .status,
        ConfigStatus::Superseded
    );
}

#[test]
fn near_neutral_overrides_are_dropped() {
    let conn = learnloop_store::open_in_memory().unwrap();
    L {
        key: "lk-flat",
        levers: r#"{"size_mult":1.004,"entry_aggression_mult":0.997}"#,
        ..L::default()
    }
    .insert(&conn);
    L {
        key: "lk-empty",
        levers: "{}",
        ..L::default()
    }
    .insert(&conn);
    L {
        key: "lk-real",
        levers: r#"{"size_mult":1.006,"entry_aggression_mult":1.0}"#,
        ..L::default()
    }
    .insert(&conn);
    // Decayed to near neutral: 1.3 after ten half-lives is 1.0003.
    L {
        key: "lk-old",
        levers: r#"{"size_mult":1.3}"#,
        half_life: Some(10.0),
        created_at: t0().plus_hours(-100.0),
        ..L::default()
    }
    .insert(&conn);
    let r = run(&conn, &free_cfg(), t0(), false);
    assert_eq!(
        (r.lessons, r.factors, r.dropped_neutral, r.overrides),
        (4, 4, 3, 1)
    );
    let data = config(&conn, 1);
    let o = only_override(&data);
    assert_eq!(o.override_id, "lk-real");
    assert_eq!(o.levers.get(Lever::EntryAggressionMult), Some(1.0));
}

#[test]
fn rerunning_with_the_same_inputs_creates_no_new_version() {
    let conn = learnloop_store::open_in_memory().unwrap();
    L::default().insert(&conn);
    L {
        key: "lk-root",
        scope: "{}",
        levers: r#"{"size_mult":0.9}"#,
        ..L::default()
    }
    .insert(&conn);
    let cfg = LoopConfig::default();
    let first = run(&conn, &cfg, day(1), false);
    assert_eq!(
        (first.version, first.status.as_str(), first.unchanged),
        (Some(1), "proposed", false)
    );
    assert_eq!(
        (first.pattern_overrides, first.pattern_strength_overrides),
        (1, 1)
    );
    let bytes = configs::get_version(&conn, "pm", 1)
        .unwrap()
        .unwrap()
        .config_data;

    let second = run(&conn, &cfg, day(1), false);
    assert!(second.unchanged);
    assert_eq!((second.version, second.config_version), (None, 1));
    assert_eq!(second.checksum, first.checksum);
    assert_eq!(configs::next_version(&conn, "pm").unwrap(), 2);

    // --activate on an unchanged, still proposed version activates it.
    let third = run(&conn, &cfg, day(1), true);
    assert!(third.unchanged && third.activated);
    assert_eq!((third.config_version, third.status.as_str()), (1, "active"));
    let fourth = run(&conn, &cfg, day(1), true);
    assert!(fourth.unchanged && !fourth.activated);
    assert_eq!(
        configs::get_version(&conn, "pm", 1)
            .unwrap()
            .unwrap()
            .config_data,
        bytes
    );

    // The text is canonical: both lists sorted by id, the root one in pattern_strength_overrides.
    let data = config(&conn, 1);
    assert_eq!(data.pattern_strength_overrides[0].override_id, "lk-root");
    assert!(data.pattern_strength_overrides[0].scope.is_empty());
    assert_eq!(data.pattern_overrides[0].override_id, "lk-a");
    assert_eq!(data.as_of, "2026-03-02T00:00:00Z");
    assert_eq!(data.specificity_alpha, 1.5);
    assert!(data.feature_flags.learning_enabled);
    assert_eq!(data.to_json(), bytes);

    // A new as-of changes the config (decay, as_of) and writes version 2.
    let later = run(&conn, &cfg, day(2), false);
    assert_eq!(later.version, Some(2));
}

#[test]
fn build_is_deterministic_whatever_the_row_order() {
    let rows: Vec<LessonRow> = ["lk-c", "lk-a", "lk-b", "lk-d"]
        .into_iter()
        .enumerate()
        .map(|(i, key)| {
            L {
                key,
                factor: Some(if i % 2 == 0 { "f-1" } else { "f-2" }),
                levers: if i < 2 {
                    r#"{"size_mult":1.25}"#
                } else {
                    r#"{"size_mult":1.1,"trail_mult":1.3}"#
                },
                t: 3.0,
                n: 40 + i as u64,
                ..L::default()
            }
            .row()
        })
        .collect();
    let cfg = free_cfg();
    let a = build_config(
        ConfigTarget {
            module: "pm",
            version: 3,
            as_of: day(5),
        },
        &rows,
        None,
        &cfg,
    )
    .unwrap();
    let mut reversed = rows.clone();
    reversed.reverse();
    let b = build_config(
        ConfigTarget {
            module: "pm",
            version: 3,
            as_of: day(5),
        },
        &reversed,
        None,
        &cfg,
    )
    .unwrap();
    assert_eq!(a.config.to_json(), b.config.to_json());
    // Equal |t|: the smallest key represents the factor.
    assert_eq!(a.config.pattern_overrides[0].lesson_keys, ["lk-b", "lk-c"]);
    assert_eq!(a.config.pattern_overrides[1].lesson_keys, ["lk-a", "lk-d"]);
}

/// Feature flags an operator set on the served version are kept by the next one (before, every
/// nightly run switched learning back on).
#[test]
fn a_new_version_keeps_the_feature_flags_of_the_served_one() {
    let cfg = free_cfg();
    let rows = vec![L::default().row()];
    let target = ConfigTarget {
        module: "pm",
        version: 2,
        as_of: day(5),
    };
    let mut served = build_config(target, &rows, None, &cfg).unwrap().config;
    assert!(served.feature_flags.learning_enabled);
    served.feature_flags.learning_enabled = false;
    served.feature_flags.disabled_buckets = vec!["micro".into()];
    let next = build_config(target, &rows, Some(&served), &cfg)
        .unwrap()
        .config;
    assert_eq!(next.feature_flags, served.feature_flags);
}

#[test]
fn a_retired_lesson_disappears_from_the_next_version() {
    let conn = learnloop_store::open_in_memory().unwrap();
    let cfg = LoopConfig::default();
    L::default().insert(&conn);
    let mut gone = L {
        key: "lk-gone",
        scope: r#"{"macro_phase":"Bad"}"#,
        ..L::default()
    }
    .insert(&conn);
    run(&conn, &cfg, day(1), true);
    assert_eq!(config(&conn, 1).overrides().count(), 2);
    gone.status = LessonStatus::Retired;
    upsert_lesson(&conn, &gone).unwrap();
    let r = run(&conn, &cfg, day(2), true);
    assert_eq!((r.version, r.overrides), (Some(2), 1));
    assert_eq!(size(&config(&conn, 2), "lk-gone"), None);
}

#[test]
fn rollback_restores_the_exact_previous_config() {
    let conn = learnloop_store::open_in_memory().unwrap();
    let cfg = LoopConfig::default();
    L::default().insert(&conn);
    run(&conn, &cfg, day(1), true);
    let v1 = configs::get_version(&conn, "pm", 1).unwrap().unwrap();
    L {
        key: "lk-new",
        scope: r#"{"bucket":"mid"}"#,
        levers: r#"{"size_mult":0.75}"#,
        ..L::default()
    }
    .insert(&conn);
    let r2 = run(&conn, &cfg, day(2), true);
    assert_eq!((r2.version, r2.superseded), (Some(2), Some(1)));
    let loaded = Overrides::from_sqlite(&conn, "pm").unwrap();
    assert_eq!(loaded.version(), 2);

    let back = configs::rollback(&conn, "pm").unwrap();
    assert_eq!((back.from, back.to), (2, 1));
    let active = configs::active_version(&conn, "pm").unwrap().unwrap();
    assert_eq!(
        active,
        ConfigVersion {
            status: ConfigStatus::Active,
            ..v1.clone()
        }
    );
    assert_eq!(active.config_data, v1.config_data);
    let loaded = Overrides::from_sqlite(&conn, "pm").unwrap();
    assert_eq!(
        (loaded.version(), loaded.checksum()),
        (1, v1.checksum.as_str())
    );
    assert_eq!(
        configs::get_version(&conn, "pm", 2)
            .unwrap()
            .unwrap()
            .status,
        ConfigStatus::RolledBack
    );

    // The next night measures its rate limit from the version the PM serves again (v1).
    let r3 = run(&conn, &cfg, day(3), true);
    assert_eq!((r3.version, r3.rate_limit_base), (Some(3), Some(1)));
}

#[test]
fn modules_get_their_own_versions_and_a_module_without_lessons_gets_an_empty_config() {
    let conn = learnloop_store::open_in_memory().unwrap();
    let cfg = LoopConfig::default();
    L::default().insert(&conn);
    let mut other = L {
        key: "lk-other",
        ..L::default()
    }
    .row();
    other.module = "scalper".into();
    upsert_lesson(&conn, &other).unwrap();
    let report = materialize(&conn, &cfg, day(1), &opts(true)).unwrap();
    let names: Vec<&str> = report.modules.iter().map(|m| m.module.as_str()).collect();
    assert_eq!(names, ["pm", "scalper"]);
    assert_eq!(report.module("scalper").unwrap().version, Some(1));
    let scalper = configs::get_version(&conn, "scalper", 1).unwrap().unwrap();
    assert_eq!(
        ConfigData::from_json(&scalper.config_data).unwrap().module,
        "scalper"
    );

    other.status = LessonStatus::Retired;
    upsert_lesson(&conn, &other).unwrap();
    let report = materialize(&conn, &cfg, day(2), &opts(true)).unwrap();
    let s = report.module("scalper").unwrap();
    assert_eq!((s.version, s.overrides, s.lessons), (Some(2), 0, 0));
}

#[test]
fn an_unreadable_base_config_fails_the_stage_without_writing() {
    let conn = learnloop_store::open_in_memory().unwrap();
    L::default().insert(&conn);
    configs::insert_version(
        &conn,
        &ConfigVersion {
            module: "pm".into(),
            version: 1,
            status: ConfigStatus::Active,
            as_of: Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
            run_id: None,
            created_at: Timestamp::parse("2026-01-01T00:00:00Z").ok(),
            checksum: "x".into(),
            config_data: "{not json".into(),
        },
    )
    .unwrap();
    let err = materialize(&conn, &LoopConfig::default(), day(1), &opts(true)).unwrap_err();
    assert!(
        matches!(err, MaterializeError::BaseConfig { version: 1, .. }),
        "{err}"
    );
    assert_eq!(configs::next_version(&conn, "pm").unwrap(), 2);
}

#[test]
fn bad_lesson_levers_name_the_lesson() {
    let conn = learnloop_store::open_in_memory().unwrap();
    L::default().insert(&conn);
    // A row written by something else than the lesson stage, with a misspelt lever.
    conn.execute(
        r#"UPDATE learning_lessons SET levers = '{"size_mul":1.2}' WHERE lesson_key = 'lk-a'"#,
        [],
    )
    .unwrap();
    let err = materialize(&conn, &LoopConfig::default(), day(1), &opts(false)).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("lk-a") && text.contains("size_mul"), "{text}");
}

#[test]
fn errors_can_cross_threads_and_reports_serialize() {
    fn boxed<E: std::error::Error + Send + Sync + 'static>() {}
    boxed::<MaterializeError>();
    let report = MaterializeReport {
        as_of: "2026-03-01T00:00:00Z".into(),
        modules: vec![ModuleReport::default()],
    };
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["modules"][0]["unchanged"], false);
    assert_eq!(json["modules"][0]["version"], serde_json::Value::Null);
}
