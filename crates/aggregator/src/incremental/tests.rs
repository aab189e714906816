//! Carrying forward must give what a full recomputation gives: counts and moments bit for bit,
//! decayed figures to rounding.

use super::*;
use crate::engine::compute;
use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

fn dims() -> learnloop_model::DimensionList {
    learnloop_model::DimensionList::new(
        ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect(),
    )
    .unwrap()
}

fn config() -> LoopConfig {
    let mut cfg = LoopConfig {
        dims: dims(),
        ..LoopConfig::default()
    };
    cfg.aggregate.store_min_trades = Some(3);
    cfg
}

/// Trades closing one per hour, a few actions each, over a few patterns.
fn events(seed: u64, trades: usize) -> Vec<TradeEvent> {
    let mut rng = Pcg64::seed_from_u64(seed);
    let mut out = Vec::new();
    for t in 0..trades {
        let exit = Timestamp(1_700_000_000_000 + t as i64 * 3_600_000);
        let rr: f64 = rng.gen_range(-3.0..3.0);
        let pattern = format!("fam{}.S1.add", rng.gen_range(0..3));
        for a in 0..rng.gen_range(1..4) {
            let mut scope = std::collections::BTreeMap::new();
            for d in ["a", "b", "c", "d"] {
                if rng.gen_bool(0.85) {
                    scope.insert(d.to_string(), format!("v{}", rng.gen_range(0..3)));
                }
            }
            out.push(TradeEvent {
                trade_key: format!("t{t:04}"),
                position_id: format!("p{t}"),
                trade_id: None,
                action_strand_id: format!("t{t:04}-a{a}"),
                module: "pm".into(),
                pattern_key: pattern.clone(),
                category: ActionCategory::Add,
                scope: serde_json::to_string(&scope).unwrap(),
                rr,
                rr_winsorized: rr,
                pnl_usd: Some(rr * 10.0),
                hold_days: Some(1.0),
                time_to_s3: None,
                entry_at: None,
                exit_at: exit,
                action_at: exit,
            });
        }
    }
    out
}

fn assert_rows_match(incremental: &[StatsRow], full: &[StatsRow]) {
    assert_eq!(incremental.len(), full.len());
    for (a, b) in incremental.iter().zip(full) {
        assert_eq!(
            (
                &a.pattern_key,
                a.scope_mask,
                &a.scope_values,
                a.scope_values_hash
            ),
            (
                &b.pattern_key,
                b.scope_mask,
                &b.scope_values,
                b.scope_values_hash
            )
        );
        let (x, y) = (&a.stats, &b.stats);
        assert_eq!(
            (x.r, x.n_actions, x.wins, x.sum_pnl),
            (y.r, y.n_actions, y.wins, y.sum_pnl),
            "{}",
            a.scope_values
        );
        assert_eq!((x.first_exit, x.last_exit), (y.first_exit, y.last_exit));
        for (u, v) in [
            (x.decayed.w, y.decayed.w),
            (x.decayed.w2, y.decayed.w2),
            (x.decayed.mean, y.decayed.mean),
            (x.decayed.m2, y.decayed.m2),
        ] {
            assert!(
                (u - v).abs() <= 1e-9 * u.abs().max(v.abs()).max(1e-12),
                "{u} vs {v}"
            );
        }
    }
}

#[test]
fn stepping_forward_equals_recomputing_at_every_step() {
    let cfg = config();
    for seed in 0..6 {
        let all = events(seed, 160);
        let mut inc = IncrementalAggregator::new(&cfg);
        let mut appended = 0;
        for step in 1..=16 {
            let known = &all[..all.partition_point(|e| {
                e.exit_at.millis() < 1_700_000_000_000 + step * 10 * 3_600_000
            })];
            let as_of = Timestamp(1_700_000_000_000 + step * 10 * 3_600_000);
            let (rows, report) = inc.step(known, as_of).unwrap();
            appended += report.appended;
            let p = Prepared::build(known, &cfg.dims, as_of, cfg.aggregate.stats_half_life_hours)
                .unwrap();
            let full = compute(&p, Limits::from_config(&cfg), as_of).rows;
            assert_rows_match(&rows.to_vec(), &full);
        }
        assert!(appended > 0, "the append path was exercised");
    }
}

#[test]
fn a_changed_old_trade_falls_back_to_recomputation() {
    let cfg = config();
    let all = events(42, 80);
    let as_of = Timestamp(1_700_000_000_000 + 100 * 3_600_000);
    let mut inc = IncrementalAggregator::new(&cfg);
    inc.step(&all[..100], as_of).unwrap();
    // Change the outcome of an old trade, and add the rest.
    let mut changed = all.clone();
    changed[0].rr_winsorized += 1.0;
    let (rows, report) = inc.step(&changed, as_of).unwrap();
    assert!(report.recomputed >= 1);
    let p = Prepared::build(
        &changed,
        &cfg.dims,
        as_of,
        cfg.aggregate.stats_half_life_hours,
    )
    .unwrap();
    assert_rows_match(
        &rows.to_vec(),
        &compute(&p, Limits::from_config(&cfg), as_of).rows,
    );
}
