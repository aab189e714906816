//! Lookup latency on the realistic synthetic config: 10k overrides over the 10 default dims,
//! 40 patterns × 4 categories, scopes of 0–4 dims from small vocabularies.
//!
//! `cargo bench -p learnloop-overrides --bench lookup`. For median/p99 per lookup, run the
//! `lookup_latency` example (criterion reports means).

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use learnloop_overrides::synthetic::{synthetic_actions, synthetic_config, SyntheticSpec};
use learnloop_overrides::{ActionInput, AppliedAction, Decision, Overrides, OverridesHandle};

fn lookups(c: &mut Criterion) {
    let config = synthetic_config(SyntheticSpec::default());
    let text = config.to_json();
    let overrides = Overrides::from_json(&text).expect("valid synthetic config");
    let actions = synthetic_actions(40, 4_096, 0.9, 2024);
    let pairs: Vec<Vec<(&str, &str)>> = actions
        .iter()
        .map(|a| {
            a.scope
                .iter()
                .map(|(d, v)| (d.as_str(), v.as_str()))
                .collect()
        })
        .collect();

    let mut group = c.benchmark_group("lookup_10k_overrides");
    group.throughput(Throughput::Elements(1));

    let mut i = 0usize;
    let mut decision = Decision::default();
    group.bench_function("indexed_lookup_into_btreemap_scope", |b| {
        b.iter(|| {
            let a = &actions[i % actions.len()];
            i += 1;
            overrides.lookup_into(&a.pattern_key, a.action_category, &a.scope, &mut decision);
            black_box(decision.size_mult)
        })
    });
    group.bench_function("indexed_lookup_into_pairs_scope", |b| {
        b.iter(|| {
            let k = i % actions.len();
            i += 1;
            let a = &actions[k];
            overrides.lookup_into(
                &a.pattern_key,
                a.action_category,
                &pairs[k][..],
                &mut decision,
            );
            black_box(decision.size_mult)
        })
    });
    group.bench_function("indexed_lookup_allocating", |b| {
        b.iter(|| {
            let a = &actions[i % actions.len()];
            i += 1;
            black_box(overrides.lookup(&a.pattern_key, a.action_category, &a.scope))
        })
    });
    let handle = OverridesHandle::with(overrides.clone());
    let mut applied = AppliedAction::default();
    group.bench_function("handle_apply_into", |b| {
        b.iter(|| {
            let a = &actions[i % actions.len()];
            i += 1;
            let action = ActionInput {
                pattern_key: &a.pattern_key,
                action_category: a.action_category,
                decision_type: a.action_category,
                scope: &a.scope,
                size_frac: 0.5,
                a_value: Some(0.5),
                e_value: Some(0.5),
            };
            handle.apply_into(&action, &mut applied);
            black_box(applied.size_frac_after)
        })
    });
    group.bench_function("brute_force_scan", |b| {
        b.iter(|| {
            let a = &actions[i % actions.len()];
            i += 1;
            black_box(overrides.lookup_scan(&a.pattern_key, a.action_category, &a.scope))
        })
    });
    group.finish();

    let mut load = c.benchmark_group("load_10k_overrides");
    load.sample_size(10);
    load.bench_function("parse_validate_index", |b| {
        b.iter_batched(
            || text.clone(),
            |t| black_box(Overrides::from_json(&t).unwrap().len()),
            BatchSize::LargeInput,
        )
    });
    load.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
