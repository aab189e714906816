//! The engine against a brute-force reference: plain loops over trades and every subset of each
//! action's scope, two-pass moments and direct decayed sums, on randomized small datasets.

use learnloop_aggregator::{
    compute, compute_each_after, compute_each_annotated_after, Limits, Prepared,
};
use learnloop_model::scope::{scope_values_hash, scope_values_json};
use learnloop_model::stats::decay_weight;
use learnloop_model::{ActionCategory, DimensionList, StatsRow, Timestamp, TradeEvent};
use learnloop_store::stats::SubsetRows;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;
use std::collections::BTreeMap;

const HALF_LIFE_H: f64 = 240.0;

/// Dimension names out of name order (the engine walks them by name, masks stay by index), some
/// of them, like some values, needing JSON escapes.
fn dims() -> DimensionList {
    DimensionList::new(
        ["e\"q", "c\\z", "a", "d\u{1}", "B"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )
    .unwrap()
}

/// Values of the random scopes.
const VALUES: [&str; 3] = ["v0", "v\"1", "v\\\u{2}é"];

fn random_events(seed: u64) -> Vec<TradeEvent> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let dims = dims();
    let trades = rng.gen_range(5..60);
    let mut events = Vec::new();
    for t in 0..trades {
        let exit = Timestamp(1_700_000_000_000 + rng.gen_range(0..400) * 3_600_000);
        let rr: f64 = if rng.gen_bool(0.05) {
            25.0
        } else {
            rng.gen_range(-3.0..3.0)
        };
        let pnl_usd = rng.gen_bool(0.8).then_some(rr * 50.0);
        let hold_days = Some(rng.gen_range(0.1..9.0));
        let time_to_s3 = rng.gen_bool(0.5).then(|| rng.gen_range(0.0..5.0));
        for a in 0..rng.gen_range(1..6) {
            let mut scope = BTreeMap::new();
            for d in dims.names() {
                if rng.gen_bool(0.8) {
                    scope.insert(d.clone(), VALUES[rng.gen_range(0..3)].to_string());
                }
            }
            if rng.gen_bool(0.2) {
                scope.insert("not_a_dim".to_string(), "x".to_string());
            }
            events.push(TradeEvent {
                trade_key: format!("t{t:03}"),
                position_id: format!("p{t}"),
                trade_id: None,
                action_strand_id: format!("t{t:03}-a{a}"),
                module: "pm".into(),
                pattern_key: format!("fam{}.S1.add", rng.gen_range(0..2)),
                category: if rng.gen_bool(0.7) {
                    ActionCategory::Add
                } else {
                    ActionCategory::Entry
                },
                scope: serde_json::to_string(&scope).unwrap(),
                rr,
                rr_winsorized: rr.clamp(-10.0, 10.0),
                pnl_usd,
                hold_days,
                time_to_s3,
                entry_at: None,
                exit_at: exit,
                action_at: exit,
            });
        }
    }
    in_canonical_order(&mut events);
    events
}

/// Exit time, trade, action: the order `Prepared::build` takes its events in.
fn in_canonical_order(events: &mut [TradeEvent]) {
    events.sort_by(|a, b| {
        (a.exit_at, &a.trade_key, &a.action_strand_id).cmp(&(
            b.exit_at,
            &b.trade_key,
            &b.action_strand_id,
        ))
    });
}

/// (trade key, winsorized R, pnl, hold days, time to S3, exit time) of one trade.
type RefTrade = (
    String,
    f64,
    Option<f64>,
    Option<f64>,
    Option<f64>,
    Timestamp,
);

#[derive(Default)]
struct RefRow {
    trades: Vec<RefTrade>,
    n_actions: u64,
}

/// Plain loops: each action's scope restricted to the configured dims, every subset of at most
/// k_max dims, one observation per trade.
fn brute_force(
    events: &[TradeEvent],
    k_max: u32,
    min_trades: u64,
) -> BTreeMap<(String, String, u64, u64), (String, RefRow)> {
    let dims = dims();
    let mut rows: BTreeMap<(String, String, u64, u64), (String, RefRow)> = BTreeMap::new();
    for e in events {
        let scope: BTreeMap<String, String> = serde_json::from_str(&e.scope).unwrap();
        let present: Vec<(usize, &String, &String)> = scope
            .iter()
            .filter_map(|(k, v)| dims.index_of(k).map(|i| (i, k, v)))
            .collect();
        for subset in 0u32..(1 << present.len()) {
            if subset.count_ones() > k_max {
                continue;
            }
            let chosen: Vec<&(usize, &String, &String)> = present
                .iter()
                .enumerate()
                .filter(|(j, _)| subset & (1 << j) != 0)
                .map(|(_, p)| p)
                .collect();
            let mask = chosen.iter().fold(0u64, |m, (i, _, _)| m | (1 << i));
            let pairs: Vec<(&str, &str)> = chosen
                .iter()
                .map(|(_, k, v)| (k.as_str(), v.as_str()))
                .collect();
            let key = (
                e.pattern_key.clone(),
                e.category.as_str().to_string(),
                mask,
                scope_values_hash(pairs.iter().copied()),
            );
            let (_, row) = rows
                .entry(key)
                .or_insert_with(|| (scope_values_json(pairs.iter().copied()), RefRow::default()));
            row.n_actions += 1;
            if row.trades.last().map(|t| &t.0) != Some(&e.trade_key) {
                row.trades.push((
                    e.trade_key.clone(),
                    e.rr_winsorized,
                    e.pnl_usd,
                    e.hold_days,
                    e.time_to_s3,
                    e.exit_at,
                ));
            }
        }
    }
    rows.retain(|k, (_, r)| k.2 == 0 || r.trades.len() as u64 >= min_trades);
    rows
}

fn close(a: f64, b: f64, what: &str) {
    let scale = a.abs().max(b.abs()).max(1.0);
    assert!(
        (a - b).abs() <= 1e-9 * scale,
        "{what}: engine {a} vs reference {b}"
    );
}

fn compare(
    engine: &[StatsRow],
    reference: &BTreeMap<(String, String, u64, u64), (String, RefRow)>,
    as_of: Timestamp,
) {
    assert_eq!(engine.len(), reference.len(), "row count");
    for row in engine {
        let key = (
            row.pattern_key.to_string(),
            row.category.as_str().to_string(),
            row.scope_mask,
            row.scope_values_hash,
        );
        let (json, r) = reference
            .get(&key)
            .unwrap_or_else(|| panic!("engine row {key:?} not in reference"));
        assert_eq!(&row.scope_values, json);
        let s = &row.stats;
        let n = r.trades.len() as f64;
        assert_eq!(s.n_trades(), r.trades.len() as u64);
        assert_eq!(s.n_actions, r.n_actions);
        let mean = r.trades.iter().map(|t| t.1).sum::<f64>() / n;
        let m2 = r.trades.iter().map(|t| (t.1 - mean).powi(2)).sum::<f64>();
        close(s.r.mean, mean, "mean");
        close(s.r.m2, m2, "m2");
        assert_eq!(s.wins, r.trades.iter().filter(|t| t.1 > 0.0).count() as u64);
        close(
            s.sum_pnl,
            r.trades.iter().filter_map(|t| t.2).sum(),
            "sum_pnl",
        );
        let holds: Vec<f64> = r.trades.iter().filter_map(|t| t.3).collect();
        close(
            s.hold_days.mean().unwrap_or(0.0),
            holds.iter().sum::<f64>() / holds.len().max(1) as f64,
            "hold",
        );
        let effs: Vec<f64> = r
            .trades
            .iter()
            .filter_map(|t| t.4)
            .map(|x| 1.0 / (1.0 + x))
            .collect();
        assert_eq!(s.time_eff.count, effs.len() as u64);
        close(
            s.time_eff.mean().unwrap_or(0.0),
            effs.iter().sum::<f64>() / effs.len().max(1) as f64,
            "time_eff",
        );
        assert_eq!(s.first_exit, r.trades.iter().map(|t| t.5).min());
        assert_eq!(s.last_exit, r.trades.iter().map(|t| t.5).max());
        let w: Vec<f64> = r
            .trades
            .iter()
            .map(|t| decay_weight(as_of.hours_since(t.5), HALF_LIFE_H))
            .collect();
        let sw: f64 = w.iter().sum();
        let dmean = r.trades.iter().zip(&w).map(|(t, w)| w * t.1).sum::<f64>() / sw;
        close(s.decayed.w, sw, "dw");
        close(s.decayed.w2, w.iter().map(|w| w * w).sum(), "dw2");
        close(s.decayed.mean, dmean, "dmean");
        close(
            s.decayed.m2,
            r.trades
                .iter()
                .zip(&w)
                .map(|(t, w)| w * (t.1 - dmean).powi(2))
                .sum(),
            "dm2",
        );
    }
}

#[test]
fn engine_matches_brute_force_on_random_data() {
    let dims = dims();
    for seed in 0..40u64 {
        let events = random_events(seed);
        let as_of = Timestamp(1_700_000_000_000 + 500 * 3_600_000);
        let prepared = Prepared::build(&events, &dims, as_of, HALF_LIFE_H).unwrap();
        for (k_max, min_trades) in [(5, 1), (2, 1), (5, 3), (3, 6), (0, 1)] {
            let out = compute(&prepared, Limits::flat(k_max, min_trades), as_of);
            compare(&out.rows, &brute_force(&events, k_max, min_trades), as_of);
        }
    }
}

#[test]
fn pruning_never_changes_a_stored_row() {
    let dims = dims();
    for seed in 100..120u64 {
        let events = random_events(seed);
        let as_of = Timestamp(1_700_000_000_000 + 500 * 3_600_000);
        let prepared = Prepared::build(&events, &dims, as_of, HALF_LIFE_H).unwrap();
        let all = compute(&prepared, Limits::flat(5, 1), as_of).rows;
        let pruned = compute(&prepared, Limits::flat(5, 4), as_of).rows;
        let expected: Vec<&StatsRow> = all
            .iter()
            .filter(|r| r.scope_mask == 0 || r.stats.n_trades() >= 4)
            .collect();
        assert_eq!(pruned.iter().collect::<Vec<_>>(), expected);
    }
}

#[test]
fn exploded_update_count_equals_the_unpruned_row_total() {
    let dims = dims();
    for seed in 200..230u64 {
        let events = random_events(seed);
        let as_of = Timestamp(1_700_000_000_000);
        let prepared = Prepared::build(&events, &dims, as_of, HALF_LIFE_H).unwrap();
        for k_max in [0, 2, 5] {
            let rows = compute(&prepared, Limits::flat(k_max, 1), as_of).rows;
            let total: u64 = rows.iter().map(|r| r.stats.n_trades()).sum();
            assert_eq!(
                learnloop_aggregator::exploded_subset_updates(&prepared, k_max),
                total
            );
        }
    }
}

#[test]
fn thresholds_by_size_keep_exactly_the_subsets_with_their_sizes_support() {
    let dims = dims();
    // Non-monotone on purpose: a 2-dim subset needs 2 trades, a 1-dim one 5; the running
    // minimum from the top makes 1-dim subsets with 2 trades stored too (they are parents).
    let per_size = |k: u32| [1u64, 5, 2, 4, 6][k.min(4) as usize];
    let threshold = |k: u32| (k..=64).map(per_size).min().unwrap();
    assert_eq!(
        (0..6).map(threshold).collect::<Vec<_>>(),
        [1, 2, 2, 4, 6, 6]
    );
    for seed in 300..330u64 {
        let events = random_events(seed);
        let as_of = Timestamp(1_700_000_000_000 + 500 * 3_600_000);
        let prepared = Prepared::build(&events, &dims, as_of, HALF_LIFE_H).unwrap();
        let all = compute(&prepared, Limits::flat(64, 1), as_of).rows;
        let expected: Vec<&StatsRow> = all
            .iter()
            .filter(|r| r.stats.n_trades() >= threshold(r.scope_mask.count_ones()))
            .collect();
        let pruned = compute(&prepared, Limits::by_size(per_size), as_of).rows;
        assert_eq!(pruned.iter().collect::<Vec<_>>(), expected, "seed {seed}");
    }
}

/// The breakdown's counts by brute force: every subset of each action's scope with its trade set,
/// then the kinds straight from their definitions.
fn brute_force_breakdown(
    events: &[TradeEvent],
    cluster_of: &dyn Fn(&str) -> u32,
    min_clusters: u32,
    min_support: &dyn Fn(u32) -> u64,
) -> Vec<learnloop_aggregator::breakdown::SizeBreakdown> {
    use std::collections::BTreeSet;
    type Scope = BTreeMap<usize, String>;
    let dims = dims();
    let mut sets: BTreeMap<(String, ActionCategory, Scope), BTreeSet<String>> = BTreeMap::new();
    for e in events {
        let scope: BTreeMap<String, String> = serde_json::from_str(&e.scope).unwrap();
        let present: Vec<(usize, String)> = scope
            .iter()
            .filter_map(|(k, v)| dims.index_of(k).map(|d| (d, v.clone())))
            .collect();
        for bits in 0u32..(1 << present.len()) {
            let subset: Scope = (0..present.len())
                .filter(|j| bits & (1 << j) != 0)
                .map(|j| present[j].clone())
                .collect();
            sets.entry((e.pattern_key.clone(), e.category, subset))
                .or_default()
                .insert(e.trade_key.clone());
        }
    }
    let mut sizes: Vec<learnloop_aggregator::breakdown::SizeBreakdown> = (0..=dims.len() as u32)
        .map(|dims| learnloop_aggregator::breakdown::SizeBreakdown {
            dims,
            ..Default::default()
        })
        .collect();
    let few = |trades: &BTreeSet<String>| {
        let clusters: BTreeSet<u32> = trades.iter().map(|t| cluster_of(t)).collect();
        (clusters.len() as u32) < min_clusters
    };
    // Per group and trade set: the fewest dims of a subset with it.
    let mut simplest: BTreeMap<(String, ActionCategory, &BTreeSet<String>), usize> =
        BTreeMap::new();
    for ((pattern, category, scope), trades) in &sets {
        let e = simplest
            .entry((pattern.clone(), *category, trades))
            .or_insert(usize::MAX);
        *e = (*e).min(scope.len());
    }
    let mut kept_once: BTreeSet<(String, ActionCategory, &BTreeSet<String>)> = BTreeSet::new();
    for ((pattern, category, scope), trades) in &sets {
        let k = scope.len();
        let s = &mut sizes[k];
        let support = min_support(k as u32);
        let parent_sets: Vec<&BTreeSet<String>> = scope
            .keys()
            .map(|d| {
                let mut parent = scope.clone();
                parent.remove(d);
                &sets[&(pattern.clone(), *category, parent)]
            })
            .collect();
        let class = (pattern.clone(), *category, trades);
        let duplicate = !(simplest[&class] == k && kept_once.insert(class));
        let thin = parent_sets
            .iter()
            .any(|p| ((p.len() - trades.len()) as u64) < support);
        let walk_parent = scope.keys().last().map(|d| {
            let mut parent = scope.clone();
            parent.remove(d);
            &sets[&(pattern.clone(), *category, parent)]
        });
        let supported = trades.len() as u64 >= support;
        s.rows += 1;
        s.supported += u64::from(supported);
        s.duplicate += u64::from(duplicate);
        s.duplicate_of_parent += u64::from(parent_sets.iter().any(|p| p.len() == trades.len()));
        s.few_clusters += u64::from(few(trades));
        s.below_a_few_cluster_subset += u64::from(few(trades) && walk_parent.is_some_and(few));
        s.thin_complement += u64::from(thin);
        s.testable += u64::from(supported && !duplicate && !few(trades) && !thin);
    }
    sizes
}

#[test]
fn breakdown_counts_each_kind_as_a_brute_force_does() {
    use learnloop_aggregator::breakdown::{breakdown, BreakdownRules};
    let dims = dims();
    let cluster_of = |trade_key: &str| trade_key[1..].parse::<u32>().unwrap() % 7;
    let min_support = |k: u32| [2u64, 3, 3, 4, 5][k.min(4) as usize];
    for seed in 400..430u64 {
        let events = random_events(seed);
        let as_of = Timestamp(1_700_000_000_000 + 500 * 3_600_000);
        let prepared = Prepared::build(&events, &dims, as_of, HALF_LIFE_H).unwrap();
        let trade_cluster: Vec<u32> = prepared.trade_keys.iter().map(|t| cluster_of(t)).collect();
        let rules = BreakdownRules {
            trade_cluster: &trade_cluster,
            min_clusters: 3,
            min_support: &min_support,
        };
        let got = breakdown(&prepared, Limits::flat(5, 1), &rules);
        let expected = brute_force_breakdown(&events, &cluster_of, 3, &min_support);
        assert_eq!(got, expected, "seed {seed}");
        assert!(got.iter().any(|s| s.duplicate > 0 && s.thin_complement > 0));
    }
}

/// An in-memory store holding `events` as its trade events, inserted in the order given.
fn store_with<'e>(events: impl IntoIterator<Item = &'e TradeEvent>) -> learnloop_store::Connection {
    let conn = learnloop_store::open_in_memory().unwrap();
    for e in events {
        learnloop_store::events::insert_trade_event(&conn, e).unwrap();
    }
    conn
}

/// Two preparations hold the same trades, groups, observations and value ids.
fn assert_same_preparation(a: &Prepared, b: &Prepared, what: &str) {
    assert_eq!(a.dims, b.dims, "{what}");
    assert_eq!(a.trades, b.trades, "{what}: trades");
    assert_eq!(a.trade_keys, b.trade_keys, "{what}: trade keys");
    assert_eq!(a.value_names, b.value_names, "{what}: value ids");
    assert_eq!(a.dim_names, b.dim_names, "{what}");
    assert_eq!(a.groups.len(), b.groups.len(), "{what}: groups");
    for (ga, gb) in a.groups.iter().zip(&b.groups) {
        let key = |g: &learnloop_aggregator::Group| {
            (g.module.to_string(), g.pattern_key.to_string(), g.category)
        };
        assert_eq!(key(ga), key(gb), "{what}");
        assert_eq!(ga.trade, gb.trade, "{what}: observations' trades");
        assert_eq!(ga.n_actions, gb.n_actions, "{what}: observations' actions");
        assert_eq!(ga.values, gb.values, "{what}: observations' values");
    }
}

#[test]
fn preparing_from_the_store_equals_preparing_the_loaded_events() {
    let dims = dims();
    for seed in 500..520u64 {
        let events = random_events(seed);
        let as_of = Timestamp(1_700_000_000_000 + 500 * 3_600_000);
        // Stored in a shuffled order, so that reading order is not the canonical one.
        let mut shuffled = events.clone();
        let mut rng = Pcg64::seed_from_u64(seed);
        for i in (1..shuffled.len()).rev() {
            shuffled.swap(i, rng.gen_range(0..=i));
        }
        let conn = store_with(&shuffled);
        let expected = Prepared::build(&events, &dims, as_of, HALF_LIFE_H).unwrap();
        let loaded = learnloop_store::events::load_all_events(&conn).unwrap();
        assert_eq!(loaded, events, "seed {seed}: the store keeps the events");
        let from_store = Prepared::from_store(&conn, &dims, as_of, HALF_LIFE_H).unwrap();
        assert_same_preparation(&from_store, &expected, &format!("seed {seed}"));
        let rows = |p: &Prepared| compute(p, Limits::flat(5, 1), as_of).rows;
        assert_eq!(rows(&from_store), rows(&expected), "seed {seed}");
    }
}

#[test]
fn preparing_some_groups_equals_preparing_their_events_alone() {
    let dims = dims();
    type Keep = fn(&str, &str, ActionCategory) -> bool;
    let predicates: [(&str, Keep); 2] = [
        ("all but one group", |_, p, c| {
            !(p == "fam1.S1.add" && c == ActionCategory::Add)
        }),
        ("one group", |_, p, c| {
            p == "fam0.S1.add" && c == ActionCategory::Entry
        }),
    ];
    for seed in 520..530u64 {
        let events = random_events(seed);
        let as_of = Timestamp(1_700_000_000_000 + 500 * 3_600_000);
        let conn = store_with(events.iter().rev());
        let full = Prepared::from_store(&conn, &dims, as_of, HALF_LIFE_H).unwrap();
        let rows = |p: &Prepared| compute(p, Limits::flat(5, 1), as_of).rows;
        for (what, keep) in predicates {
            let what = format!("seed {seed}, {what}");
            let alone: Vec<TradeEvent> = events
                .iter()
                .filter(|e| keep(&e.module, &e.pattern_key, e.category))
                .cloned()
                .collect();
            let expected = Prepared::build(&alone, &dims, as_of, HALF_LIFE_H).unwrap();
            let some =
                Prepared::from_store_of_groups(&conn, &dims, as_of, HALF_LIFE_H, &keep).unwrap();
            assert_same_preparation(&some, &expected, &what);
            // The kept groups' rows are those of the whole preparation, bit for bit.
            let kept_rows: Vec<StatsRow> = rows(&full)
                .into_iter()
                .filter(|r| keep(&r.module, &r.pattern_key, r.category))
                .collect();
            assert_eq!(rows(&some), kept_rows, "{what}");
        }
    }
}

#[test]
fn a_bad_stored_scope_is_reported_with_its_trade_and_action() {
    let mut events = random_events(7);
    events[3].scope = "[1, 2]".into();
    let conn = store_with(&events);
    let err = Prepared::from_store(&conn, &dims(), Timestamp(0), HALF_LIFE_H)
        .err()
        .expect("a scope that is not an object of strings is refused");
    let text = err.to_string();
    assert!(
        text.contains(&events[3].trade_key) && text.contains(&events[3].action_strand_id),
        "{text}"
    );
}

/// Events of many random data sets, their keys kept apart, in canonical order: a load of several
/// of `from_store`'s batches (4,096 events).
fn many_events() -> Vec<TradeEvent> {
    let mut events = Vec::new();
    for seed in 1000..1140u64 {
        for mut e in random_events(seed) {
            e.trade_key = format!("s{seed}-{}", e.trade_key);
            e.position_id = format!("s{seed}-{}", e.position_id);
            e.action_strand_id = format!("s{seed}-{}", e.action_strand_id);
            events.push(e);
        }
    }
    assert!(events.len() > 3 * 4096, "{} events", events.len());
    in_canonical_order(&mut events);
    events
}

#[test]
fn a_load_of_many_batches_equals_the_preparation() {
    let dims = dims();
    let as_of = Timestamp(1_700_000_000_000 + 500 * 3_600_000);
    let events = many_events();
    let conn = store_with(&events);
    let expected = Prepared::build(&events, &dims, as_of, HALF_LIFE_H).unwrap();
    let from_store = Prepared::from_store(&conn, &dims, as_of, HALF_LIFE_H).unwrap();
    assert_same_preparation(&from_store, &expected, "many batches");
}

#[test]
fn the_first_bad_scope_of_a_late_batch_is_the_one_reported() {
    let mut events = many_events();
    let first_bad = events.len() - 500;
    events[first_bad].scope = "[1, 2]".into();
    events[first_bad + 1].scope = "7".into();
    let conn = store_with(&events);
    let err = Prepared::from_store(&conn, &dims(), Timestamp(0), HALF_LIFE_H)
        .err()
        .expect("a scope that is not an object of strings is refused");
    let text = err.to_string();
    let bad = &events[first_bad];
    assert!(
        text.contains(&bad.trade_key) && text.contains(&bad.action_strand_id),
        "{text}"
    );
}

#[test]
fn the_consumer_starts_once_even_without_groups_and_stops_at_its_error() {
    let dims = dims();
    let as_of = Timestamp(1_700_000_000_000 + 500 * 3_600_000);
    let limits = Limits::flat(5, 1);
    let none = Prepared::build(&[], &dims, as_of, HALF_LIFE_H).unwrap();
    let mut sunk = 0;
    let (started, counters) = compute_each_after::<_, ()>(
        &none,
        limits,
        || Ok("started"),
        |_, _, _| {
            sunk += 1;
            Ok(())
        },
    )
    .unwrap();
    assert_eq!((started, sunk, counters.rows), ("started", 0, 0));

    let some = Prepared::build(&random_events(5), &dims, as_of, HALF_LIFE_H).unwrap();
    assert!(some.groups.len() > 1);
    let refused = compute_each_after(
        &some,
        limits,
        || Err::<(), _>("no"),
        |_, _, _| panic!("no group reaches the sink after `start` failed"),
    );
    assert_eq!(refused.err(), Some("no"));
    let mut groups = 0;
    let stopped = compute_each_after(
        &some,
        limits,
        || Ok(()),
        |_, _, _| {
            groups += 1;
            Err("full")
        },
    );
    assert_eq!((stopped.err(), groups), (Some("full"), 1));
}

#[test]
fn each_group_reaches_the_sink_with_its_own_annotation() {
    let dims = dims();
    let as_of = Timestamp(1_700_000_000_000 + 500 * 3_600_000);
    let some = Prepared::build(&random_events(9), &dims, as_of, HALF_LIFE_H).unwrap();
    assert!(some.groups.len() > 1);
    let annotate = |g: &learnloop_aggregator::Group, rows: &learnloop_aggregator::GroupRows| {
        let keys: Vec<(u64, u64)> = (0..SubsetRows::len(rows)).map(|i| rows.key(i)).collect();
        (g.pattern_key.to_string(), keys)
    };
    let mut seen = Vec::new();
    let ((), _) = compute_each_annotated_after::<_, _, ()>(
        &some,
        Limits::flat(3, 1),
        annotate,
        || Ok(()),
        |(), g, rows, (pattern, keys)| {
            // The keys the annotation read on the computing side are the rows' own, in their
            // order, and the store's writer reads each row as the iterator gives it.
            let from_rows: Vec<(u64, u64)> =
                rows.iter().map(|r| (r.mask, r.scope_values_hash)).collect();
            assert_eq!(keys, from_rows);
            assert_eq!(SubsetRows::len(rows), rows.len());
            for (i, r) in rows.iter().enumerate() {
                assert_eq!(rows.key(i), (r.mask, r.scope_values_hash));
                assert_eq!(
                    (rows.stats(i), rows.scope_values(i)),
                    (r.stats, r.scope_values)
                );
            }
            seen.push((pattern, g.pattern_key.to_string()));
            Ok(())
        },
    )
    .unwrap();
    assert_eq!(seen.len(), some.groups.len());
    assert!(seen.iter().all(|(annotated, sunk)| annotated == sunk));
}

#[test]
fn groups_whose_names_join_to_the_same_text_stay_apart() {
    let dims = dims();
    let as_of = Timestamp(1_700_000_000_000 + 500 * 3_600_000);
    let mut events = random_events(31);
    // Joined with any separator (or with "1:" length marks), the two groups read alike.
    let names = [
        ("x\u{1f}y", "f.S1.entry"),
        ("x", "y\u{1f}f.S1.entry"),
        ("1:x", "1:y.S1.add"),
    ];
    for (i, e) in events.iter_mut().enumerate() {
        let (module, pattern) = names[i % names.len()];
        e.module = module.into();
        e.pattern_key = pattern.into();
    }
    let conn = store_with(events.iter().rev());
    let expected = Prepared::build(&events, &dims, as_of, HALF_LIFE_H).unwrap();
    assert_eq!(expected.groups.len(), 6, "three names × two categories");
    let from_store = Prepared::from_store(&conn, &dims, as_of, HALF_LIFE_H).unwrap();
    assert_same_preparation(&from_store, &expected, "colliding names");
}

#[test]
fn the_default_enumeration_stores_each_action_set_once() {
    let dims = dims();
    let mut cfg = learnloop_model::LoopConfig {
        dims: dims.clone(),
        ..Default::default()
    };
    cfg.lessons.min_support = vec![1];
    let mut skipped = 0;
    for seed in 400..430u64 {
        let events = random_events(seed);
        let as_of = Timestamp(1_700_000_000_000 + 500 * 3_600_000);
        let prepared = Prepared::build(&events, &dims, as_of, HALF_LIFE_H).unwrap();
        let all = compute(&prepared, Limits::flat(2, 1), as_of).rows;
        // A subset holds exactly a parent's actions when it has as many: it is a subset of them.
        let actions: BTreeMap<(String, ActionCategory, String), u64> = all
            .iter()
            .map(|r| {
                let key = (
                    r.pattern_key.to_string(),
                    r.category,
                    r.scope_values.clone(),
                );
                (key, r.stats.n_actions)
            })
            .collect();
        let duplicate = |r: &StatsRow| {
            let pairs = learnloop_model::scope::scope_pairs(&r.scope_values);
            let same_as_a_parent = learnloop_model::scope::parents_of_pairs(&pairs).any(|parent| {
                let key = (
                    r.pattern_key.to_string(),
                    r.category,
                    scope_values_json(parent),
                );
                actions.get(&key) == Some(&r.stats.n_actions)
            });
            same_as_a_parent
        };
        let expected: Vec<&StatsRow> = all.iter().filter(|r| !duplicate(r)).collect();
        skipped += all.len() - expected.len();
        let stored = compute(&prepared, Limits::from_config(&cfg), as_of).rows;
        assert_eq!(stored.iter().collect::<Vec<_>>(), expected, "seed {seed}");
    }
    assert!(skipped > 0, "the random books have duplicates to skip");
}
