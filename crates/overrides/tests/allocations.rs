//! The hot path allocates nothing beyond the result. A counting global allocator counts the
//! allocations made by the current thread only, so parallel tests do not disturb each other.

use learnloop_overrides::synthetic::{synthetic_actions, synthetic_config, SyntheticSpec};
use learnloop_overrides::{ActionInput, AppliedAction, Decision, Overrides, OverridesHandle};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct CountingAllocator;

thread_local! {
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

// SAFETY: delegates every call to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|c| c.set(c.get() + 1));
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

fn setup() -> (
    Overrides,
    Vec<learnloop_overrides::synthetic::SyntheticAction>,
) {
    let o = Overrides::from_config(synthetic_config(SyntheticSpec::default())).unwrap();
    (o, synthetic_actions(40, 2_000, 0.9, 11))
}

#[test]
fn a_lookup_that_matches_nothing_allocates_nothing() {
    let (o, actions) = setup();
    let misses: Vec<_> = actions
        .iter()
        .filter(|a| {
            o.lookup_scan(&a.pattern_key, a.action_category, &a.scope)
                .matches
                .is_empty()
        })
        .collect();
    assert!(
        misses.len() > 20,
        "need misses to test, got {}",
        misses.len()
    );
    let n = allocations_during(|| {
        for a in &misses {
            let d = o.lookup(&a.pattern_key, a.action_category, &a.scope);
            assert!(d.matches.is_empty());
        }
    });
    assert_eq!(n, 0);
}

#[test]
fn a_matching_lookup_allocates_only_the_result_vector() {
    let (o, actions) = setup();
    for a in actions.iter().take(500) {
        let mut d = Decision::default();
        let n = allocations_during(|| {
            o.lookup_into(&a.pattern_key, a.action_category, &a.scope, &mut d)
        });
        // Growing the empty matches vector (amortised doubling): at most ⌈log2(matches)⌉ + 1.
        let bound = if d.matches.is_empty() {
            0
        } else {
            1 + d.matches.len().ilog2() as u64 + 1
        };
        assert!(
            n <= bound,
            "{n} allocations for {} matches",
            d.matches.len()
        );
    }
}

#[test]
fn lookup_into_and_apply_into_allocate_nothing_once_warm() {
    let (o, actions) = setup();
    let handle = OverridesHandle::with(o);
    let mut decision = Decision::default();
    let mut applied = AppliedAction::default();
    let run = |decision: &mut Decision, applied: &mut AppliedAction| {
        let mut matched = 0;
        for a in &actions {
            handle.lookup_into(&a.pattern_key, a.action_category, &a.scope, decision);
            matched += decision.matches.len();
            handle.apply_into(
                &ActionInput {
                    pattern_key: &a.pattern_key,
                    action_category: a.action_category,
                    decision_type: a.action_category,
                    scope: &a.scope,
                    size_frac: 0.5,
                    a_value: Some(0.5),
                    e_value: Some(0.5),
                },
                applied,
            );
            assert!(applied.decision.fallback_reason.is_none());
        }
        matched
    };
    let warm = run(&mut decision, &mut applied);
    assert!(warm > 1_000, "the test must exercise matches, got {warm}");
    let n = allocations_during(|| {
        run(&mut decision, &mut applied);
    });
    assert_eq!(n, 0, "allocations after warm-up");
}
