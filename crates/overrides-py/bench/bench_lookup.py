"""Python lookup latency and throughput at 10k overrides with a 10-key dict scope.

    python crates/overrides-py/bench/bench_lookup.py [--lookups N]

Uses the Rust benchmark's synthetic config (10k overrides, 40 patterns × 4 categories, scopes of
0–4 of the 10 default dimensions) and actions whose scope dict carries all 10 dimensions, so the
figures sit beside `cargo run --release -p learnloop-overrides --example lookup_latency`.
Per-call latency is timed with perf_counter_ns around each call (the timer's own median cost
subtracted; the Rust row is timed with Instant inside the extension, same subtraction).
Throughput is a plain loop without timers, per CPU-second of the benchmark thread (what a loaded
machine does not distort) and per wall-clock second. 'hot' cycles through 16 actions, 'cold'
through 4096 spread over every group. Target: median ≤ 3 µs per lookup.
"""

from __future__ import annotations

import argparse
import statistics
import time

from learnloop_overrides import Overrides, OverridesHandle
from learnloop_overrides._native import (
    _rust_lookup_latencies,
    _synthetic_actions,
    _synthetic_config,
)

TARGET_MEDIAN_NS = 3_000


def timer_overhead() -> int:
    clock = time.perf_counter_ns
    samples = []
    for _ in range(200_000):
        t = clock()
        samples.append(clock() - t)
    return int(statistics.median(samples))


def latencies(lookup, actions, n: int, overhead: int, size_frac) -> list[int]:
    clock = time.perf_counter_ns
    out = []
    count = len(actions)
    for i in range(n):
        pattern, category, scope = actions[i % count]
        t = clock()
        lookup(pattern, category, scope, size_frac)
        out.append(clock() - t - overhead)
    out.sort()
    return out


def throughput(lookup, actions, n: int) -> tuple[float, float]:
    """Lookups per wall-clock second and per CPU-second of this thread (the second is what a
    loaded machine does not distort: time spent descheduled is not counted)."""
    count = len(actions)
    wall, cpu = time.perf_counter(), time.thread_time()
    for i in range(n):
        pattern, category, scope = actions[i % count]
        lookup(pattern, category, scope)
    return n / (time.perf_counter() - wall), n / (time.thread_time() - cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lookups", type=int, default=1_000_000)
    args = parser.parse_args()

    t = time.perf_counter()
    text = _synthetic_config()
    overrides = Overrides.from_json(text)
    print(f"config: {len(overrides)} overrides, {len(text) // 1024} KiB of JSON, "
          f"loaded in {(time.perf_counter() - t) * 1e3:.1f} ms")
    handle = OverridesHandle(overrides)
    overhead = timer_overhead()
    print(f"timer overhead (median, subtracted): {overhead} ns; {args.lookups} lookups per row")

    worst_median = 0
    for label, distinct in (("hot", 16), ("cold", 4096)):
        actions = _synthetic_actions(distinct, presence=1.0)
        assert all(len(scope) == 10 for _, _, scope in actions)
        for name, lookup, size_frac in (
            ("Overrides.lookup", overrides.lookup, None),
            ("OverridesHandle.lookup", handle.lookup, None),
            ("Overrides.lookup+size_frac", overrides.lookup, 0.25),
        ):
            latencies(lookup, actions, 100_000, overhead, size_frac)  # warm-up
            ns = latencies(lookup, actions, args.lookups, overhead, size_frac)
            wall_rate, cpu_rate = throughput(lookup, actions, args.lookups)
            median, p99, p999 = (ns[int((len(ns) - 1) * q)] for q in (0.5, 0.99, 0.999))
            worst_median = max(worst_median, median)
            print(f"{label:>4} {name:<27} median {median:>5} ns  p99 {p99:>6} ns  "
                  f"p99.9 {p999:>6} ns  | {cpu_rate / 1e6:.2f} M lookups/CPU-s "
                  f"({wall_rate / 1e6:.2f} M/s wall)")
        rust = sorted(_rust_lookup_latencies(overrides, actions, args.lookups))
        median, p99, p999 = (max(0, rust[int((len(rust) - 1) * q)] - overhead) for q in (0.5, 0.99, 0.999))
        print(f"{label:>4} {'Rust lookup_into (same run)':<27} median {median:>5} ns  p99 {p99:>6} ns  "
              f"p99.9 {p999:>6} ns")
        matches = statistics.mean(len(overrides.lookup(p, c, s).matches) for p, c, s in actions)
        print(f"     ({matches:.2f} matches per lookup)")
    verdict = "meets" if worst_median <= TARGET_MEDIAN_NS else "MISSES"
    print(f"worst median {worst_median} ns: {verdict} the {TARGET_MEDIAN_NS} ns target")


if __name__ == "__main__":
    main()
