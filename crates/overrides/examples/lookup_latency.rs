//! Per-lookup latency distribution (criterion reports means, not tails).
//!
//! `cargo run --release -p learnloop-overrides --example lookup_latency [-- LOOKUPS]`
//!
//! Builds the realistic synthetic config (10k overrides, 40 patterns × 4 categories, scopes of
//! 0–4 of the 10 default dims), then times each `lookup_into` with `Instant` and prints median,
//! p99, p99.9 and max in ns (timer overhead subtracted), the allocations counted by a global
//! allocator wrapper, and the ratio to a brute-force scan. `NO_SCAN=1` skips the scan.

use learnloop_overrides::synthetic::{synthetic_actions, synthetic_config, SyntheticSpec, DIMS};
use learnloop_overrides::{Decision, Overrides, ScopeView};
use std::alloc::{GlobalAlloc, Layout, System};
use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

struct CountingAllocator;
static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: delegates to the system allocator unchanged; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.alloc(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        System.realloc(ptr, layout, new_size)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

struct Summary {
    median: f64,
    p99: f64,
    p999: f64,
    max: f64,
    mean: f64,
}

fn summarize(mut ns: Vec<u64>, overhead: u64) -> Summary {
    ns.sort_unstable();
    let at =
        |q: f64| ns[((ns.len() - 1) as f64 * q).round() as usize].saturating_sub(overhead) as f64;
    Summary {
        median: at(0.5),
        p99: at(0.99),
        p999: at(0.999),
        max: *ns.last().unwrap() as f64,
        mean: ns.iter().sum::<u64>() as f64 / ns.len() as f64 - overhead as f64,
    }
}

fn timer_overhead() -> u64 {
    let mut ns: Vec<u64> = (0..100_000)
        .map(|_| {
            let t = Instant::now();
            black_box(());
            t.elapsed().as_nanos() as u64
        })
        .collect();
    ns.sort_unstable();
    ns[ns.len() / 2]
}

fn time_lookups<S: ScopeView>(
    o: &Overrides,
    actions: &[(String, &'static str, S)],
    n: usize,
    scan: bool,
    decision: &mut Decision,
) -> (Vec<u64>, u64, usize) {
    let mut ns = Vec::with_capacity(n);
    let mut matches = 0usize;
    let allocs_before = ALLOCATIONS.load(Ordering::Relaxed);
    for i in 0..n {
        let (pattern, category, scope) = &actions[i % actions.len()];
        let t = Instant::now();
        if scan {
            *decision = o.lookup_scan(pattern, category, scope);
        } else {
            o.lookup_into(pattern, category, scope, decision);
        }
        black_box(&*decision);
        ns.push(t.elapsed().as_nanos() as u64);
        matches += decision.matches.len();
    }
    let allocs = ALLOCATIONS.load(Ordering::Relaxed) - allocs_before;
    (ns, allocs, matches)
}

fn main() {
    let lookups: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);

    let t = Instant::now();
    let config = synthetic_config(SyntheticSpec::default());
    let text = config.to_json();
    let o = Overrides::from_json(&text).expect("valid synthetic config");
    println!(
        "config: {} overrides, {} KiB of JSON, parsed+validated+indexed in {:.1} ms; index {:?}",
        o.len(),
        text.len() / 1024,
        t.elapsed().as_secs_f64() * 1e3,
        o.index_stats()
    );

    let overhead = timer_overhead();
    println!("timer overhead (median, subtracted): {overhead} ns");
    println!("{lookups} lookups per row; 'hot' cycles through 16 actions (index and scope stay in L1), 'cold' through 4096 actions spread over all 160 groups (the index mostly out of L1/L2, as between PM ticks)");

    let mut cold_median = 0.0;
    let mut cold_p99 = 0.0;
    for (label, distinct) in [("hot", 16usize), ("cold", 4_096)] {
        let actions = synthetic_actions(40, distinct, 0.9, 2024);
        let as_maps: Vec<_> = actions
            .iter()
            .map(|a| (a.pattern_key.clone(), a.action_category, a.scope.clone()))
            .collect();
        // PM labels come from small fixed vocabularies: borrowed as static strings, the scope
        // costs what a PM passing interned labels pays, so the figure is the index's own.
        let interned = |dim: &str, value: &str| -> (&'static str, &'static str) {
            let (name, vocab) = DIMS.iter().find(|(d, _)| *d == dim).expect("synthetic dim");
            (
                name,
                vocab
                    .iter()
                    .find(|v| **v == value)
                    .expect("synthetic value"),
            )
        };
        let as_pairs: Vec<_> = actions
            .iter()
            .map(|a| {
                let pairs: Vec<(&'static str, &'static str)> =
                    a.scope.iter().map(|(d, v)| interned(d, v)).collect();
                (a.pattern_key.clone(), a.action_category, pairs)
            })
            .collect();

        // One decision reused by every lookup, as a PM tick loop would; the warm-up grows its
        // buffer to the working size, so the timed lookups should allocate nothing.
        let mut decision = Decision::default();
        time_lookups(&o, &as_maps, 100_000, false, &mut decision);
        let (ns, allocs, matches) = time_lookups(&o, &as_maps, lookups, false, &mut decision);
        let maps = summarize(ns, overhead);
        time_lookups(&o, &as_pairs, 100_000, false, &mut decision);
        let (ns, pair_allocs, _) = time_lookups(&o, &as_pairs, lookups, false, &mut decision);
        let pairs = summarize(ns, overhead);
        for (scope_kind, s, allocs) in [
            ("BTreeMap<String,String>", &maps, allocs),
            ("&[(&str, &str)]", &pairs, pair_allocs),
        ] {
            println!(
                "{label:>4} {scope_kind:<24} median {:>5.0} ns  p99 {:>5.0} ns  p99.9 {:>5.0} ns  mean {:>5.0} ns  max {:>8.0} ns  | {:.2} matches/lookup, {} allocations",
                s.median, s.p99, s.p999, s.mean, s.max, matches as f64 / lookups as f64, allocs
            );
        }
        if label == "cold" {
            cold_median = maps.median;
            cold_p99 = maps.p99;
        }
    }

    if std::env::var_os("NO_SCAN").is_some() {
        return;
    }
    let actions = synthetic_actions(40, 4_096, 0.9, 2024);
    let as_maps: Vec<_> = actions
        .iter()
        .map(|a| (a.pattern_key.clone(), a.action_category, a.scope.clone()))
        .collect();
    let scans = (lookups / 100).clamp(1_000, 20_000);
    let (ns, _, _) = time_lookups(&o, &as_maps, scans, true, &mut Decision::default());
    let scan = summarize(ns, overhead);
    println!(
        "brute-force scan (BTreeMap scope, {scans} lookups): median {:.0} ns  p99 {:.0} ns",
        scan.median, scan.p99
    );
    println!(
        "brute-force / indexed (cold, BTreeMap scope): {:.0}x at the median, {:.0}x at p99",
        scan.median / cold_median.max(1.0),
        scan.p99 / cold_p99.max(1.0)
    );
}
