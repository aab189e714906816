//! End-to-end checks of the demo data: read it back with the model's own parser, link it with a
//! small reference linker, and compare what the data shows with what the ground truth claims.

use learnloop_demo::{generate, write_jsonl, DemoOptions, GroundTruth};
use learnloop_model::strand::QuarantineCode;
use learnloop_model::{winsorize_r, PmAction, PositionClose, RawStrand, TypedStrand};
use std::collections::{BTreeMap, BTreeSet};

/// What reading the lines in order reveals.
#[derive(Default)]
struct Ingested {
    actions: Vec<PmAction>,
    closes: Vec<PositionClose>,
    failures: BTreeMap<QuarantineCode, usize>,
    exact_duplicates: usize,
    conflicting_duplicates: usize,
}

fn ingest(lines: &[String]) -> Ingested {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    let mut out = Ingested::default();
    for line in lines {
        let raw = match RawStrand::from_json_line(line) {
            Ok(raw) => raw,
            Err(e) => {
                *out.failures.entry(e.code).or_default() += 1;
                continue;
            }
        };
        if let Some(first) = seen.get(&raw.id) {
            if *first == line.as_str() {
                out.exact_duplicates += 1;
            } else {
                out.conflicting_duplicates += 1;
            }
            continue;
        }
        seen.insert(raw.id.clone(), line);
        match raw.to_typed() {
            Ok(TypedStrand::Action(a)) => out.actions.push(a),
            Ok(TypedStrand::Close(c)) => out.closes.push(c),
            Err(e) => *out.failures.entry(e.code).or_default() += 1,
        }
    }
    out
}

/// A linked trade: its close and the actions in its window.
struct Trade<'a> {
    close: &'a PositionClose,
    actions: Vec<&'a PmAction>,
}

#[derive(Default)]
struct LinkReport<'a> {
    trades: Vec<Trade<'a>>,
    duplicate_closes: usize,
    mismatched: usize,
    late: usize,
    open: usize,
    open_positions: BTreeSet<String>,
    orphans: usize,
}

/// The spec's linking rule: an action belongs to the close of its position whose window
/// (after the previous close, at or before this close) contains it; trade ids must agree.
fn link(ing: &Ingested) -> LinkReport<'_> {
    let mut report = LinkReport::default();
    let mut by_position: BTreeMap<&str, Vec<&PositionClose>> = BTreeMap::new();
    let mut seen_trades = BTreeSet::new();
    for c in &ing.closes {
        if !seen_trades.insert((c.position_id.as_str(), c.trade_id.as_deref())) {
            report.duplicate_closes += 1;
            continue;
        }
        by_position.entry(&c.position_id).or_default().push(c);
    }
    let mut linked: BTreeMap<&str, Vec<&PmAction>> = BTreeMap::new();
    for closes in by_position.values_mut() {
        closes.sort_by_key(|c| c.created_at);
    }
    for a in &ing.actions {
        let closes = by_position.get(a.position_id.as_str());
        let window = closes.and_then(|cs| cs.iter().find(|c| c.created_at >= a.ts));
        match window {
            Some(close) => match (&a.trade_id, &close.trade_id) {
                (Some(x), Some(y)) if x != y => report.mismatched += 1,
                _ => linked.entry(&close.strand_id).or_default().push(a),
            },
            None => {
                let known = closes.is_some_and(|cs| cs.iter().any(|c| c.trade_id == a.trade_id));
                if a.trade_id.is_some() && known {
                    report.late += 1;
                } else {
                    report.open += 1;
                    report.open_positions.insert(a.position_id.clone());
                }
            }
        }
    }
    for closes in by_position.values() {
        for c in closes {
            match linked.remove(c.strand_id.as_str()) {
                Some(actions) => report.trades.push(Trade { close: c, actions }),
                None => report.orphans += 1,
            }
        }
    }
    report
}

fn default_sample() -> (Vec<String>, GroundTruth) {
    generate(&DemoOptions::default())
}

#[test]
fn same_options_give_identical_output_and_seeds_differ() {
    let opts = DemoOptions {
        seed: 11,
        ..DemoOptions::default().with_cycles(300)
    };
    let (a, truth_a) = generate(&opts);
    let (b, truth_b) = generate(&opts);
    assert_eq!(a, b);
    assert_eq!(truth_a, truth_b);
    let (c, _) = generate(&DemoOptions { seed: 12, ..opts });
    assert_ne!(a, c);
}

#[test]
fn mess_is_added_on_top_of_unchanged_clean_trades() {
    let opts = DemoOptions::default().with_cycles(300);
    let (messy, truth) = generate(&opts);
    let (clean, clean_truth) = generate(&DemoOptions {
        mess: false,
        ..opts
    });
    assert_eq!(clean_truth.effects, truth.effects);
    assert_eq!(clean_truth.baseline_mean_r, truth.baseline_mean_r);
    let messy_set: BTreeSet<&String> = messy.iter().collect();
    assert!(clean.iter().all(|l| messy_set.contains(l)));
    let ing = ingest(&clean);
    assert!(ing.failures.is_empty(), "{:?}", ing.failures);
    assert_eq!(ing.exact_duplicates + ing.conflicting_duplicates, 0);
}

#[test]
fn bad_input_is_exactly_what_the_truth_says() {
    let (lines, truth) = default_sample();
    assert_eq!(truth.lines, lines.len());
    let ing = ingest(&lines);
    let m = &truth.mess;
    let expect = BTreeMap::from([
        (QuarantineCode::MalformedJson, m.malformed_lines),
        (QuarantineCode::RrNotFinite, m.nan_rr_closes),
        (QuarantineCode::MissingField, m.missing_position_id_closes),
        (QuarantineCode::UnknownCategory, m.unknown_category_actions),
    ]);
    assert_eq!(ing.failures, expect);
    assert_eq!(ing.exact_duplicates, m.duplicate_lines);
    assert_eq!(ing.conflicting_duplicates, m.conflicting_duplicates);
    assert!(m.duplicate_lines >= 3 && m.conflicting_duplicates >= 1);

    let report = link(&ing);
    assert_eq!(report.trades.len(), truth.cycles);
    assert_eq!(truth.cycles, DemoOptions::default().cycles);
    assert_eq!(report.duplicate_closes, m.duplicate_closes);
    assert_eq!(report.mismatched, m.trade_id_mismatches);
    assert_eq!(report.late, m.late_actions);
    assert_eq!(report.orphans, m.orphan_closes);
    assert_eq!(report.open, m.open_cycle_actions);
    assert_eq!(report.open_positions.len(), m.open_cycles);
    assert_eq!(m.open_cycles, DemoOptions::default().open_cycles);
    assert_eq!(
        m.quarantine_worthy(),
        ing.failures.values().sum::<usize>() + ing.conflicting_duplicates + report.duplicate_closes
    );

    // The linked trades are exactly the clean ones, so their mean R is the stated baseline.
    let mean = report
        .trades
        .iter()
        .map(|t| winsorize_r(t.close.rr))
        .sum::<f64>()
        / report.trades.len() as f64;
    assert!((mean - truth.baseline_mean_r).abs() < 1e-4);
}

#[test]
fn trades_look_like_the_pm_trades() {
    let (lines, truth) = default_sample();
    let ing = ingest(&lines);
    let report = link(&ing);
    let actions: usize = report.trades.iter().map(|t| t.actions.len()).sum();
    let per_trade = actions as f64 / report.trades.len() as f64;
    assert!((5.0..=9.0).contains(&per_trade), "{per_trade}");
    assert!(truth.extreme_trades >= 2, "{}", truth.extreme_trades);
    let extreme = report.trades.iter().filter(|t| t.close.rr.abs() > 10.0);
    assert_eq!(extreme.count(), truth.extreme_trades);

    let with_trade_id = ing.actions.iter().filter(|a| a.trade_id.is_some()).count();
    let share = with_trade_id as f64 / ing.actions.len() as f64;
    assert!((0.85..0.95).contains(&share), "{share}");
    assert!(ing.actions.iter().all(|a| a.is_v5()));
    let scope_sizes: Vec<usize> = ing.actions.iter().map(|a| a.scope.len()).collect();
    assert!(scope_sizes.iter().all(|n| *n <= 10));
    assert!(
        scope_sizes.iter().any(|n| *n < 10),
        "some dims must be absent"
    );

    // Positions are reused and the adds of a trade mostly share one pattern key.
    let positions: BTreeSet<&str> = report
        .trades
        .iter()
        .map(|t| t.close.position_id.as_str())
        .collect();
    assert!(positions.len() * 3 <= report.trades.len());
    let mut shared = 0;
    for t in &report.trades {
        let adds: Vec<&str> = t
            .actions
            .iter()
            .filter(|a| a.decision_type.as_deref() == Some("add"))
            .filter_map(|a| a.pattern_key.as_deref())
            .collect();
        let distinct: BTreeSet<&str> = adds.iter().copied().collect();
        if distinct.len() <= 2 {
            shared += 1;
        }
    }
    assert!(shared * 10 >= report.trades.len() * 9);
}

#[test]
fn planted_effects_are_visible_in_the_raw_data() {
    let (lines, truth) = default_sample();
    let ing = ingest(&lines);
    let report = link(&ing);
    assert_eq!(truth.effects.len(), 4);
    assert!(truth.effects.iter().any(|e| e.scope.is_empty()));
    assert!(truth.effects.iter().any(|e| e.starts_at.is_some()));

    // Which effects each trade carries, read from its actions.
    let carries: Vec<Vec<bool>> = report
        .trades
        .iter()
        .map(|t| {
            truth
                .effects
                .iter()
                .map(|e| {
                    let entered_after = match (e.starts_at, t.close.entry_at) {
                        (Some(s), Some(entry)) => entry > s,
                        (Some(_), None) => false,
                        (None, _) => true,
                    };
                    entered_after
                        && t.actions.iter().any(|a| {
                            a.pattern_key.as_deref() == Some(e.pattern_key.as_str())
                                && a.category.map(|c| c.as_str())
                                    == Some(e.action_category.as_str())
                                && e.scope
                                    .iter()
                                    .all(|(k, v)| a.scope.get(k) == Some(v.as_str()))
                        })
                })
                .collect()
        })
        .collect();

    for (i, effect) in truth.effects.iter().enumerate() {
        let matching = carries.iter().filter(|c| c[i]).count();
        assert_eq!(matching, effect.matching_trades, "{effect:?}");
        assert!(matching >= 80, "too few trades carry {effect:?}");
        // Compare with/without this effect after removing the other effects' known share.
        let (mut with, mut without) = (Vec::new(), Vec::new());
        for (t, c) in report.trades.iter().zip(&carries) {
            let others: f64 = truth
                .effects
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i && c[*j])
                .map(|(_, e)| e.effect_r)
                .sum();
            let r = winsorize_r(t.close.rr) - others;
            if c[i] {
                with.push(r);
            } else {
                without.push(r);
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        let seen = mean(&with) - mean(&without);
        println!(
            "{} {:?} planted {} seen {seen:.3} n {}",
            effect.pattern_key,
            effect.scope,
            effect.effect_r,
            with.len()
        );
        assert!(
            (seen - effect.effect_r).abs() < 0.35,
            "{}: planted {} but the data shows {seen:.3}",
            effect.pattern_key,
            effect.effect_r
        );
    }
}

#[test]
fn effects_have_enough_trades_for_other_seeds_too() {
    for seed in [1u64, 2, 3] {
        let opts = DemoOptions {
            seed,
            mess: false,
            ..DemoOptions::default()
        };
        let (_, truth) = generate(&opts);
        for e in &truth.effects {
            assert!(e.matching_trades >= 60, "seed {seed}: {e:?}");
        }
    }
}

#[test]
fn writes_lines_and_a_readable_truth_file() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let out = dir.join("demo.jsonl");
    let opts = DemoOptions::default().with_cycles(200);
    let truth = write_jsonl(&opts, &out).unwrap();
    let text = std::fs::read_to_string(&out).unwrap();
    let (lines, expected) = generate(&opts);
    assert_eq!(text.lines().collect::<Vec<_>>(), lines);
    assert_eq!(truth, expected);
    let stored: GroundTruth =
        serde_json::from_str(&std::fs::read_to_string(dir.join("demo.jsonl.truth.json")).unwrap())
            .unwrap();
    assert_eq!(stored, truth);
}

#[test]
fn tiny_and_degenerate_options_do_not_panic() {
    for (cycles, positions, days) in [(0, 0, 180), (1, 5, 1), (50, 50, 0), (40, 1, 2)] {
        let opts = DemoOptions {
            cycles,
            positions,
            days,
            open_cycles: 3,
            ..DemoOptions::default()
        };
        let (lines, truth) = generate(&opts);
        assert_eq!(truth.cycles, cycles);
        let ing = ingest(&lines);
        assert_eq!(link(&ing).trades.len(), cycles);
    }
}

/// `cargo test --release -p learnloop-demo -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_100k_cycles() {
    let opts = DemoOptions::default().with_cycles(100_000);
    let started = std::time::Instant::now();
    let (lines, truth) = generate(&opts);
    let elapsed = started.elapsed();
    let bytes: usize = lines.iter().map(|l| l.len() + 1).sum();
    println!(
        "100k cycles: {} lines, {:.0} MB, {:.2?} ({:.0} lines/s); effects {:?}",
        lines.len(),
        bytes as f64 / 1e6,
        elapsed,
        lines.len() as f64 / elapsed.as_secs_f64(),
        truth
            .effects
            .iter()
            .map(|e| e.matching_trades)
            .collect::<Vec<_>>()
    );
    assert_eq!(truth.cycles, 100_000);
}

/// The interaction planted everywhere: one truth entry per (pattern, category) group, all of one
/// effect id, and each micro-cap 1h trade gains the size once, not once per matching action
/// (every trade has an entry and an exit that match: counted per action it would gain ≥ 2 R).
#[test]
fn the_interaction_everywhere_plan_adds_its_size_once_to_every_matching_trade() {
    use learnloop_demo::{EffectKind, EffectPlan};
    let opts = DemoOptions {
        mess: false,
        days: 90,
        effects: EffectPlan::InteractionEverywhere { size: 1.0 },
        ..DemoOptions::default().with_cycles(4000)
    };
    let (lines, truth) = generate(&opts);
    let groups: BTreeSet<(&str, &str)> = truth
        .effects
        .iter()
        .map(|e| (e.pattern_key.as_str(), e.action_category.as_str()))
        .collect();
    assert_eq!(groups.len(), truth.effects.len(), "one entry per group");
    assert!(groups.len() >= 20, "{} groups", groups.len());
    for e in &truth.effects {
        assert_eq!(
            (e.effect_id, e.kind, e.effect_r),
            (Some(0), EffectKind::Interaction, 1.0)
        );
        assert_eq!(e.scope.get("bucket").map(String::as_str), Some("micro"));
        assert_eq!(e.scope.get("timeframe").map(String::as_str), Some("1h"));
        assert!(e.matching_trades > 0);
    }
    // Mean winsorized R of micro-cap 1h trades against the others.
    let (mut inside, mut outside) = (Vec::new(), Vec::new());
    for line in &lines {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        if v["kind"] != "position_closed" {
            continue;
        }
        let c = &v["content"];
        let rr = winsorize_r(c["trade_summary"]["rr"].as_f64().unwrap());
        if c["entry_context"]["mcap_bucket"] == "micro" && v["timeframe"] == "1h" {
            inside.push(rr);
        } else {
            outside.push(rr);
        }
    }
    let mean = |x: &[f64]| x.iter().sum::<f64>() / x.len() as f64;
    let gain = mean(&inside) - mean(&outside);
    assert!(inside.len() > 100, "{} micro-cap 1h trades", inside.len());
    assert!((0.5..1.5).contains(&gain), "gain {gain:.3} R");
}

/// The calibration plan: one group per effect (the exception shares its bad parent's group and
/// lies inside its scope), sizes as asked, the stopped effect stops halfway; the placebo plan has
/// no effect; regime shocks change R only, and the truth lists them.
#[test]
fn calibration_and_placebo_plans_and_regime_shocks() {
    use learnloop_demo::{EffectKind, EffectPlan};
    let base = DemoOptions {
        mess: false,
        days: 60,
        ..DemoOptions::default().with_cycles(800)
    };
    let calibration = DemoOptions {
        effects: EffectPlan::Calibration {
            sizes: vec![0.5, 1.0],
        },
        ..base.clone()
    };
    let (_, truth) = generate(&calibration);
    let mut groups: BTreeMap<(&str, &str), Vec<EffectKind>> = BTreeMap::new();
    for e in &truth.effects {
        groups
            .entry((e.pattern_key.as_str(), e.action_category.as_str()))
            .or_default()
            .push(e.kind);
    }
    // 2 sizes × (one dim, interaction) × 2 groups, the bad parent with its exception, the stop.
    assert_eq!(truth.effects.len(), 11);
    assert_eq!(groups.len(), 10);
    let shared: Vec<&Vec<EffectKind>> = groups.values().filter(|k| k.len() > 1).collect();
    assert_eq!(
        shared,
        [&vec![EffectKind::BadParent, EffectKind::Exception]]
    );
    let parent = truth
        .effects
        .iter()
        .find(|e| e.kind == EffectKind::BadParent)
        .unwrap();
    let exception = truth
        .effects
        .iter()
        .find(|e| e.kind == EffectKind::Exception)
        .unwrap();
    assert!(parent
        .scope
        .iter()
        .all(|(k, v)| exception.scope.get(k) == Some(v)));
    // Less bad than its parent and better than the rest of its other parent: net +S/2.
    assert!((parent.effect_r + exception.effect_r - (-parent.effect_r / 2.0)).abs() < 1e-12);
    let stopped = truth
        .effects
        .iter()
        .find(|e| e.kind == EffectKind::Stopped)
        .unwrap();
    let (start, end) = (truth.period_start.unwrap(), truth.period_end.unwrap());
    assert_eq!(
        stopped.stops_at.unwrap().millis(),
        start.millis() + (end.millis() - start.millis()) / 2
    );
    let sizes: BTreeSet<i64> = truth
        .effects
        .iter()
        .filter(|e| e.kind == EffectKind::OneDim)
        .map(|e| (e.effect_r * 10.0) as i64)
        .collect();
    assert_eq!(sizes, BTreeSet::from([5, 10]));

    let placebo = DemoOptions {
        effects: EffectPlan::Placebo,
        ..base.clone()
    };
    let (lines, truth) = generate(&placebo);
    assert!(truth.effects.is_empty() && truth.regime_shocks.is_empty());
    let shocked = DemoOptions {
        regime_shock_sd: 0.4,
        ..placebo
    };
    let (shocked_lines, shocked_truth) = generate(&shocked);
    assert!(shocked_truth.regime_shocks.len() >= 60 / 9);
    assert_eq!(lines.len(), shocked_lines.len());
    let differing = lines
        .iter()
        .zip(&shocked_lines)
        .filter(|(a, b)| a != b)
        .count();
    // Only closes carry R (and their price drift is drawn before the shock): exactly the
    // closed trades differ.
    assert_eq!(differing, truth.cycles, "only the closes' R changes");
}
