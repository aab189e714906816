//! Readers looking up while a writer swaps configs must always see one whole config.

use learnloop_overrides::synthetic::{synthetic_actions, synthetic_config, SyntheticSpec};
use learnloop_overrides::{ConfigData, Lever, Levers, OverridesHandle};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread;

/// The synthetic config with every override's levers set to `size`/`trail` and ids prefixed,
/// so any decision says by itself which config produced it.
fn marked(version: i64, prefix: &str, size: f64, trail: f64, seed: u64) -> String {
    let mut c: ConfigData = synthetic_config(SyntheticSpec {
        overrides: 3_000,
        seed,
        ..SyntheticSpec::default()
    });
    c.version = version;
    for o in c
        .pattern_overrides
        .iter_mut()
        .chain(c.pattern_strength_overrides.iter_mut())
    {
        o.override_id = format!("{prefix}{}", o.override_id);
        o.levers = Levers::new()
            .with(Lever::SizeMult, size)
            .with(Lever::TrailMult, trail);
    }
    c.to_json()
}

#[test]
fn readers_never_see_a_torn_config() {
    let config_a = marked(1, "a-", 0.8, 0.6, 1);
    let config_b = marked(2, "b-", 1.2, 1.8, 2);
    let handle = OverridesHandle::new();
    handle.load_json(&config_a).unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let seen = [Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0))];
    let readers: Vec<_> = (0..3)
        .map(|r| {
            let handle = handle.clone();
            let stop = Arc::clone(&stop);
            let seen = seen.clone();
            thread::spawn(move || {
                let actions = synthetic_actions(40, 500, 0.9, 100 + r);
                let mut lookups = 0u64;
                while !stop.load(Ordering::Relaxed) || lookups < 1_000 {
                    for a in &actions {
                        let d = handle.lookup(&a.pattern_key, a.action_category, &a.scope);
                        lookups += 1;
                        let (prefix, size, trail) = match d.config_version {
                            Some(1) => ("a-", 0.8, 0.6),
                            Some(2) => ("b-", 1.2, 1.8),
                            other => panic!("unexpected version {other:?}"),
                        };
                        assert_eq!(d.fallback_reason, None);
                        for m in &d.matches {
                            assert!(
                                m.override_id().starts_with(prefix),
                                "{} in v{:?}",
                                m.override_id(),
                                d.config_version
                            );
                            assert_eq!(m.levers().get(Lever::SizeMult), Some(size));
                        }
                        if !d.matches.is_empty() {
                            assert!(
                                (d.size_mult - size).abs() < 1e-12,
                                "v{:?} size {}",
                                d.config_version,
                                d.size_mult
                            );
                            assert!((d.lever(Lever::TrailMult) - trail).abs() < 1e-12);
                            seen[(d.config_version.unwrap() - 1) as usize]
                                .fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                lookups
            })
        })
        .collect();

    for i in 0..40 {
        let (text, version) = if i % 2 == 0 {
            (&config_b, 2)
        } else {
            (&config_a, 1)
        };
        assert_eq!(handle.load_json(text).unwrap(), version);
        // A bad config in between must change nothing.
        assert!(handle.load_json("{\"schema_version\": 1}").is_err());
        assert_eq!(handle.version(), Some(version));
    }
    stop.store(true, Ordering::Relaxed);
    let total: u64 = readers
        .into_iter()
        .map(|r| r.join().expect("reader panicked"))
        .sum();
    assert!(total >= 3_000);
    assert!(
        seen[0].load(Ordering::Relaxed) > 0 && seen[1].load(Ordering::Relaxed) > 0,
        "both versions observed"
    );
}

#[test]
fn a_pinned_snapshot_outlives_a_swap() {
    let handle = OverridesHandle::new();
    handle.load_json(&marked(1, "a-", 0.8, 0.6, 1)).unwrap();
    let pinned = handle.snapshot().unwrap();
    handle.load_json(&marked(2, "b-", 1.2, 1.8, 2)).unwrap();
    assert_eq!(pinned.version(), 1);
    assert_eq!(handle.version(), Some(2));
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<OverridesHandle>();
}
