//! The stage's statistical properties on small synthetic groups with known truth: the stats rows
//! are computed here by brute force (every subset of every action's scope), independently of the
//! aggregator.

use super::evaluate::{evaluate_group, GroupContext, GroupRows, Screen, Tested};
use super::lattice::Lattice;
use super::trades::TradeIndex;
use super::verdict::{Judged, Verdict};
use super::{decide, Baseline, DecideInputs};
use learnloop_model::rng::SplitMix64;
use learnloop_model::scope::{scope_values_hash, scope_values_json};
use learnloop_model::stats::{OutcomeStats, TradeOutcome};
use learnloop_model::{ActionCategory, LoopConfig, StatsRow, StatsView, Timestamp, TradeEvent};
use std::collections::BTreeMap;

const DAY_MS: i64 = 86_400_000;
/// 2026-01-05, a Monday.
const START_MS: i64 = 20_458 * DAY_MS;

/// One synthetic trade of the tested group ("p") or of the module's other group ("other").
struct Trade {
    pattern: &'static str,
    week: i64,
    scope: Vec<(&'static str, String)>,
    r: f64,
}

fn normal(rng: &mut SplitMix64) -> f64 {
    // Box–Muller.
    let (u, v) = (rng.next_f64().max(1e-300), rng.next_f64());
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

/// `weeks` weeks of `per_week` trades in "p" and as many in "other": bucket and timeframe vary
/// within the week, `macro_phase` is the week's regime; R = noise + the week's shock + `effect`
/// (for "p" only).
fn market(
    seed: u64,
    weeks: i64,
    per_week: usize,
    shock_sd: f64,
    effect: impl Fn(&str, &str, &str) -> f64,
) -> Vec<Trade> {
    let planted = |pattern: &str, bucket: &str, timeframe: &str, regime: &str| {
        if pattern == "p" {
            effect(bucket, timeframe, regime)
        } else {
            0.0
        }
    };
    market_of(seed, weeks, per_week, shock_sd, &["p", "other"], planted)
}

/// As `market`, over these patterns, with `effect(pattern, bucket, timeframe, regime)`.
fn market_of(
    seed: u64,
    weeks: i64,
    per_week: usize,
    shock_sd: f64,
    patterns: &[&'static str],
    effect: impl Fn(&str, &str, &str, &str) -> f64,
) -> Vec<Trade> {
    let mut rng = SplitMix64::new(seed);
    let mut trades = Vec::new();
    for week in 0..weeks {
        let shock = shock_sd * normal(&mut rng);
        let regime = ["Good", "Dip", "Chop"][rng.below(3)];
        for &pattern in patterns {
            for _ in 0..per_week {
                let bucket = ["micro", "big"][rng.below(2)];
                let timeframe = ["1h", "4h"][rng.below(2)];
                let scope = vec![
                    ("bucket", bucket.to_string()),
                    ("macro_phase", regime.to_string()),
                    ("timeframe", timeframe.to_string()),
                ];
                let r = normal(&mut rng) + shock + effect(pattern, bucket, timeframe, regime);
                trades.push(Trade {
                    pattern,
                    week,
                    scope,
                    r,
                });
            }
        }
    }
    trades
}

fn events_of(trades: &[Trade]) -> Vec<TradeEvent> {
    let mut events: Vec<TradeEvent> = trades
        .iter()
        .enumerate()
        .map(|(i, t)| {
            let entry = Timestamp(START_MS + t.week * 7 * DAY_MS + (i as i64 % 5) * DAY_MS);
            TradeEvent {
                trade_key: format!("t{i:06}"),
                position_id: format!("pos{i}"),
                trade_id: None,
                action_strand_id: format!("a{i}"),
                module: "pm".into(),
                pattern_key: t.pattern.into(),
                category: ActionCategory::Add,
                scope: scope_values_json(t.scope.iter().map(|(k, v)| (*k, v.as_str()))),
                rr: t.r,
                rr_winsorized: t.r.clamp(-10.0, 10.0),
                pnl_usd: None,
                hold_days: None,
                time_to_s3: None,
                entry_at: Some(entry),
                exit_at: Timestamp(entry.0 + DAY_MS),
                action_at: entry,
            }
        })
        .collect();
    events.sort_by(|a, b| (a.exit_at, &a.trade_key).cmp(&(b.exit_at, &b.trade_key)));
    events
}

/// Every subset of one pattern's trades' scopes with at least `min` trades, as sorted stats rows.
fn rows_of(
    events: &[TradeEvent],
    cfg: &LoopConfig,
    as_of: Timestamp,
    min: u64,
    pattern: &str,
) -> Vec<StatsRow> {
    let mut acc: BTreeMap<(u64, String), OutcomeStats> = BTreeMap::new();
    for e in events.iter().filter(|e| e.pattern_key == pattern) {
        let pairs = learnloop_model::scope::canonical_pairs(&e.scope).unwrap();
        for subset in 0..(1u32 << pairs.len()) {
            let chosen: Vec<(&str, &str)> = (0..pairs.len())
                .filter(|b| subset & (1 << b) != 0)
                .map(|b| pairs[b])
                .collect();
            let mask = chosen
                .iter()
                .map(|(k, _)| 1u64 << cfg.dims.index_of(k).unwrap())
                .sum::<u64>();
            let outcome = TradeOutcome {
                r: e.rr_winsorized,
                pnl_usd: None,
                hold_days: None,
                time_to_s3: None,
                exit_at: e.exit_at,
            };
            let weight = learnloop_model::stats::decay_weight(
                as_of.hours_since(e.exit_at),
                cfg.aggregate.stats_half_life_hours,
            );
            acc.entry((mask, scope_values_json(chosen.iter().copied())))
                .or_default()
                .push_trade(&outcome, 1, weight);
        }
    }
    let mut rows: Vec<StatsRow> = acc
        .into_iter()
        .filter(|(_, s)| s.n_trades() >= min)
        .map(|((mask, values), stats)| StatsRow {
            module: "pm".into(),
            pattern_key: pattern.into(),
            category: ActionCategory::Add,
            scope_mask: mask,
            scope_values_hash: scope_values_hash(
                learnloop_model::scope::canonical_pairs(&values).unwrap(),
            ),
            scope_values: values,
            stats,
            as_of,
        })
        .collect();
    rows.sort_by_key(|r| (r.scope_mask as i64, r.scope_values_hash as i64));
    rows
}

/// The "p" group's tests and verdicts, as a run over these trades would make them.
fn run(trades: &[Trade]) -> (Vec<StatsRow>, Vec<Tested>, Vec<Judged>) {
    run_groups(trades, &["p"])
}

/// The tests and verdicts of these patterns' groups (in this order, which must be key order),
/// as a run over these trades would make them.
fn run_groups(trades: &[Trade], patterns: &[&str]) -> (Vec<StatsRow>, Vec<Tested>, Vec<Judged>) {
    let cfg = LoopConfig::default();
    let events = events_of(trades);
    let as_of = Timestamp(events.last().unwrap().exit_at.0 + DAY_MS);
    let index = TradeIndex::build(&events, &cfg, as_of);
    let n = trades.len() as f64;
    let baseline = Baseline {
        n: trades.len() as u64,
        mean: trades.iter().map(|t| t.r.clamp(-10.0, 10.0)).sum::<f64>() / n,
    };
    let mut rows: Vec<StatsRow> = Vec::new();
    let mut tested: Vec<Tested> = Vec::new();
    for &pattern in patterns {
        let group_rows = rows_of(&events, &cfg, as_of, 10, pattern);
        let ctx = GroupContext {
            cfg: &cfg,
            baseline,
            root_tau2: f64::INFINITY,
            trades: &index.groups[&("pm".into(), pattern.into(), ActionCategory::Add)],
            n_clusters: index.module_clusters["pm"],
        };
        let lattice = Lattice::build(&group_rows, &cfg.dims);
        let group = GroupRows {
            rows: &group_rows,
            offset: rows.len(),
        };
        tested.extend(evaluate_group(
            &group,
            &lattice,
            &ctx,
            super::FIRST_HIERARCHICAL_DIMS - 1,
        ));
        rows.extend(group_rows);
    }
    let baselines: BTreeMap<String, Baseline> = [("pm".to_string(), baseline)].into();
    let view = StatsView::from(rows.as_slice());
    let inputs = DecideInputs {
        cfg: &cfg,
        as_of,
        baselines: &baselines,
        index: &index,
    };
    let decision = decide(&mut tested, &view, &inputs);
    // The deep subsets the family computed are the rows after the stored ones.
    rows.extend(decision.computed);
    (rows, tested, decision.judged)
}

fn verdict_of<'a>(
    rows: &[StatsRow],
    tested: &[Tested],
    judged: &'a [Judged],
    scope: &str,
) -> &'a Judged {
    let i = tested
        .iter()
        .position(|t| rows[t.row].scope_values == scope)
        .unwrap_or_else(|| panic!("{scope} not tested"));
    &judged[i]
}

fn lessons(rows: &[StatsRow], tested: &[Tested], judged: &[Judged]) -> Vec<String> {
    tested
        .iter()
        .zip(judged)
        .filter(|(_, j)| j.verdict == Verdict::Lesson)
        .map(|(t, _)| rows[t.row].scope_values.clone())
        .collect()
}

#[test]
fn a_planted_interaction_is_the_lesson_and_its_generalizations_are_not() {
    let trades = market(11, 30, 24, 0.4, |bucket, timeframe, _| {
        if bucket == "micro" && timeframe == "1h" {
            1.0
        } else {
            0.0
        }
    });
    let (rows, tested, judged) = run(&trades);
    let found = lessons(&rows, &tested, &judged);
    assert!(
        found.contains(&r#"{"bucket":"micro","timeframe":"1h"}"#.to_string()),
        "{found:?}"
    );
    for general in [r#"{"timeframe":"1h"}"#, r#"{"bucket":"micro"}"#, "{}"] {
        let j = verdict_of(&rows, &tested, &judged, general);
        assert_ne!(j.verdict, Verdict::Lesson, "{general}: {:?}", j.reason);
    }
}

#[test]
fn a_two_trade_complement_is_never_tested() {
    // Every trade of the group is on 4h but two: {timeframe: 4h} is its parent (the root) minus
    // two trades, and a large gap to those two must not become a test.
    let mut trades = market(5, 20, 12, 0.0, |_, _, _| 0.0);
    for (i, t) in trades.iter_mut().filter(|t| t.pattern == "p").enumerate() {
        let tf = if i < 2 { "1h" } else { "4h" };
        t.scope[2].1 = tf.to_string();
        if tf == "1h" {
            t.r = -8.0;
        }
    }
    let (rows, tested, judged) = run(&trades);
    let i = tested
        .iter()
        .position(|t| rows[t.row].scope_values == r#"{"timeframe":"4h"}"#)
        .unwrap();
    assert_eq!(
        tested[i].screen,
        Screen::Complement {
            parent: Some(tested.iter().find(|t| t.dims == 0).unwrap().row as u32),
            n: 2
        }
    );
    assert_eq!(judged[i].reason.kind(), "complement");
    assert_ne!(judged[i].verdict, Verdict::Lesson);
}

#[test]
fn week_shocks_alone_give_no_lesson() {
    // Strong common shocks per week and a regime dimension constant within the week: an iid test
    // would find `macro_phase` lessons; the cluster-robust tests must not (≤ 1 over 10 sets).
    let mut found = 0;
    for seed in 0..10 {
        let trades = market(100 + seed, 26, 16, 0.6, |_, _, _| 0.0);
        let (rows, tested, judged) = run(&trades);
        found += lessons(&rows, &tested, &judged).len();
    }
    assert!(
        found <= 1,
        "{found} lessons on placebo data with week shocks"
    );
}

#[test]
fn a_subset_in_too_few_weeks_is_not_tested() {
    let trades = market(3, 20, 12, 0.0, |_, _, _| 0.0);
    let (rows, tested, judged) = run(&trades);
    for (t, j) in tested.iter().zip(&judged) {
        if t.clusters < 6 && !matches!(t.screen, Screen::Duplicate { .. }) {
            assert_eq!(t.screen, Screen::Clusters, "{}", rows[t.row].scope_values);
            assert_eq!(j.reason.kind(), "clusters");
        }
    }
}

#[test]
fn an_effect_free_pattern_is_no_lesson_because_another_pattern_is_good() {
    // "good" pays +0.8 R on every trade; "p" and "plain" pay nothing. Against the rest of the
    // module (mostly "good"), "p" and "plain" look 0.4 R worse: only "good" is a lesson.
    let trades = market_of(
        21,
        30,
        20,
        0.3,
        &["good", "p", "plain"],
        |pattern, _, _, _| {
            if pattern == "good" {
                0.8
            } else {
                0.0
            }
        },
    );
    let (rows, tested, judged) = run_groups(&trades, &["good", "p", "plain"]);
    let root = |pattern: &str| {
        let i = tested
            .iter()
            .position(|t| t.dims == 0 && &*rows[t.row].pattern_key == pattern)
            .unwrap();
        (&tested[i], &judged[i])
    };
    let (good, good_verdict) = root("good");
    assert!(good.edge > 0.3, "{good:?}");
    assert_eq!(good_verdict.verdict, Verdict::Lesson, "{good_verdict:?}");
    for pattern in ["p", "plain"] {
        let (t, j) = root(pattern);
        // Without the cross-group re-test these roots pass: they differ from the module rest.
        assert!(t.p.get().unwrap() < 1e-3, "{pattern}: {t:?}");
        assert_eq!(j.verdict, Verdict::Rejected, "{pattern}: {j:?}");
        assert_eq!(
            j.reason,
            super::verdict::Reason::OtherPatterns { lessons: 1 },
            "{pattern}"
        );
    }
}

/// The pairs of a stored scope text, as a set (parents are found by removing one).
fn pair_set(scope: &str) -> std::collections::BTreeSet<(String, String)> {
    learnloop_model::scope::canonical_pairs(scope)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// BH q-values by the textbook formula: q(i) = min over j ≥ rank(i) of p(j)·m/j.
fn bh_by_hand(p: &[f64]) -> Vec<f64> {
    let m = p.len();
    let mut order: Vec<usize> = (0..m).collect();
    order.sort_by(|&a, &b| p[a].total_cmp(&p[b]).then(a.cmp(&b)));
    let mut q = vec![0.0; m];
    let mut running = 1.0f64;
    for (rank, &i) in order.iter().enumerate().rev() {
        running = running.min(p[i] * m as f64 / (rank + 1) as f64);
        q[i] = running;
    }
    q
}

#[test]
fn the_deep_subsets_tested_are_the_supported_children_of_discoveries() {
    // +2 R on micro caps on the 1h chart in Good weeks: the three-dim scope's two-dim parents
    // carry a diluted effect and are discoveries, so it is a hypothesis; three-dim subsets under
    // no discovered parent are not computed at all.
    let trades = market(5, 30, 24, 0.4, |bucket, timeframe, regime| {
        if bucket == "micro" && timeframe == "1h" && regime == "Good" {
            2.0
        } else {
            0.0
        }
    });
    let (rows, tested, judged) = run(&trades);
    let cfg = LoopConfig::default();
    let fdr = cfg.lessons.fdr;
    let discovered: Vec<_> = tested
        .iter()
        .zip(&judged)
        .filter(|(t, j)| t.dims == 2 && j.q.is_some_and(|q| q <= fdr))
        .map(|(t, _)| pair_set(&rows[t.row].scope_values))
        .collect();
    assert!(!discovered.is_empty());
    // Brute force: every three-dim subset with its minimum support, and which of them are
    // children of a discovery.
    let events = events_of(&trades);
    let as_of = Timestamp(events.last().unwrap().exit_at.0 + DAY_MS);
    let min_support = cfg.lessons.min_support_for(3);
    let expected: BTreeMap<String, (u64, f64)> = rows_of(&events, &cfg, as_of, min_support, "p")
        .into_iter()
        .filter(|r| r.scope_mask.count_ones() == 3)
        .filter(|r| {
            let pairs = pair_set(&r.scope_values);
            pairs.iter().any(|pair| {
                let mut parent = pairs.clone();
                parent.remove(pair);
                discovered.contains(&parent)
            })
        })
        .map(|r| (r.scope_values.clone(), (r.stats.n_trades(), r.stats.r.mean)))
        .collect();
    let deep: Vec<usize> = (0..tested.len()).filter(|&i| tested[i].dims == 3).collect();
    let got: BTreeMap<String, (u64, f64)> = deep
        .iter()
        .map(|&i| {
            let r = &rows[tested[i].row];
            (r.scope_values.clone(), (r.stats.n_trades(), r.stats.r.mean))
        })
        .collect();
    assert_eq!(got.len(), deep.len(), "a deep subset tested twice");
    assert_eq!(
        got.keys().collect::<Vec<_>>(),
        expected.keys().collect::<Vec<_>>()
    );
    for (scope, (n, mean)) in &got {
        let (n_ref, mean_ref) = expected[scope];
        assert_eq!(*n, n_ref, "{scope}");
        assert!(
            (mean - mean_ref).abs() < 1e-12,
            "{scope}: {mean} vs {mean_ref}"
        );
    }
    // The ones that pass the screens are one plain BH family of their own.
    let members: Vec<usize> = deep
        .iter()
        .copied()
        .filter(|&i| tested[i].screen == Screen::Tested)
        .collect();
    assert!(!members.is_empty());
    let p: Vec<f64> = members
        .iter()
        .map(|&i| tested[i].p.get().unwrap())
        .collect();
    for (&i, q) in members.iter().zip(bh_by_hand(&p)) {
        assert_eq!(tested[i].fdr_weight.get(), Some(1.0));
        let got = judged[i].q.unwrap();
        assert!((got - q).abs() <= 1e-12 * q.max(1e-300), "{got} vs {q}");
    }
    let planted = r#"{"bucket":"micro","macro_phase":"Good","timeframe":"1h"}"#;
    let j = verdict_of(&rows, &tested, &judged, planted);
    assert!(j.q.is_some_and(|q| q <= fdr), "{j:?}");
    // Tested subsets stay contiguous by group, the deep ones after the group's stored ones.
    assert!(tested.windows(2).all(|w| w[0].dims < 3 || w[1].dims >= 3));
}

#[test]
fn without_a_discovery_no_deep_subset_is_tested() {
    let trades = market(8, 26, 16, 0.6, |_, _, _| 0.0);
    let (_, tested, judged) = run(&trades);
    let fdr = LoopConfig::default().lessons.fdr;
    assert!(!judged.iter().any(|j| j.q.is_some_and(|q| q <= fdr)));
    assert!(tested.iter().all(|t| t.dims < 3));
}

#[test]
fn the_first_family_is_weighted_bh_over_the_hypotheses_its_filter_keeps() {
    // An interaction among many small two-dim subsets: the filter leaves out the hypotheses
    // with the fewest effective trades; the members' q-values are weighted BH (equal shares per
    // size) over exactly the kept ones, and keeping them finds at least what the whole family
    // would.
    let trades = market(3, 26, 20, 0.4, |bucket, timeframe, _| {
        if bucket == "micro" && timeframe == "1h" {
            0.8
        } else {
            0.0
        }
    });
    let (rows, tested, judged) = run(&trades);
    let fdr = LoopConfig::default().lessons.fdr;
    let view = StatsView::from(rows.as_slice());
    let first: Vec<usize> = (0..tested.len())
        .filter(|&i| tested[i].dims < super::FIRST_HIERARCHICAL_DIMS)
        .filter(|&i| matches!(tested[i].screen, Screen::Tested | Screen::Filtered { .. }))
        .collect();
    let kept: Vec<usize> = first
        .iter()
        .copied()
        .filter(|&i| tested[i].screen == Screen::Tested)
        .collect();
    let effective = |i: usize| super::family::effective_trades(&tested[i], &view);
    let lowest_kept = kept
        .iter()
        .map(|&i| effective(i))
        .fold(f64::INFINITY, f64::min);
    for &i in &first {
        if let Screen::Filtered {
            effective_trades,
            threshold,
        } = tested[i].screen
        {
            assert!(f64::from(effective_trades) < f64::from(threshold));
            assert!(effective(i) < lowest_kept);
            assert_eq!(judged[i].q, None);
        }
    }
    let weighted_q = |members: &[usize]| {
        let mut by_size: BTreeMap<u32, f64> = BTreeMap::new();
        for &i in members {
            *by_size.entry(tested[i].dims).or_default() += 1.0;
        }
        let m = members.len() as f64;
        let w = |i: usize| m / (by_size.len() as f64 * by_size[&tested[i].dims]);
        let p: Vec<f64> = members
            .iter()
            .map(|&i| (tested[i].p.get().unwrap() / w(i)).min(1.0))
            .collect();
        bh_by_hand(&p)
    };
    for (&i, q) in kept.iter().zip(weighted_q(&kept)) {
        let got = judged[i].q.unwrap();
        assert!((got - q).abs() <= 1e-12 * q.max(1e-300), "{got} vs {q}");
    }
    let discoveries = |q: Vec<f64>| q.iter().filter(|&&q| q <= fdr).count();
    assert!(discoveries(weighted_q(&kept)) >= discoveries(weighted_q(&first)));
    let planted = r#"{"bucket":"micro","timeframe":"1h"}"#;
    assert!(lessons(&rows, &tested, &judged).contains(&planted.to_string()));
}
