//! The placebo (SPEC §4.12): R shuffled among the trades of the same time cluster (the week of
//! entry by default), so that a cluster-level market shock survives but the link between a
//! trade's scope and its outcome is broken. A loop that still finds lessons on placebo data is
//! mining noise.

use learnloop_model::rng::SplitMix64;

/// Permute the R values among trades of the same cluster ("day" below: any integer index of a
/// time cluster), deterministically.
///
/// `trades` are `(day index, R)`. Each day is shuffled (Fisher–Yates) by its own generator seeded
/// from `seed` and the day, so adding trades on one day never changes another day's shuffle.
/// Within a day the result depends on the order of that day's trades in the slice: pass them in
/// a canonical order (e.g. by trade key) for a reproducible placebo. Day indices stay where they
/// are; only R moves.
pub fn placebo_shuffle(trades: &mut [(i64, f64)], seed: u64) {
    // Positions grouped by day, in slice order within a day (stable sort).
    let days: Vec<i64> = trades.iter().map(|t| t.0).collect();
    let mut order: Vec<usize> = (0..trades.len()).collect();
    order.sort_by_key(|&i| days[i]);
    for day_positions in order.chunk_by(|&a, &b| days[a] == days[b]) {
        let day = days[day_positions[0]];
        let mut rng = SplitMix64::new(seed ^ SplitMix64::new(day as u64).next_u64());
        let mut values: Vec<f64> = day_positions.iter().map(|&i| trades[i].1).collect();
        for i in (1..values.len()).rev() {
            let j = rng.below(i + 1);
            values.swap(i, j);
        }
        for (&pos, v) in day_positions.iter().zip(values) {
            trades[pos].1 = v;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn sample() -> Vec<(i64, f64)> {
        // Three days, interleaved, distinct R values.
        (0..30)
            .map(|i| ((i % 3) as i64 - 1, i as f64 * 0.25 - 2.0))
            .collect()
    }

    fn per_day(trades: &[(i64, f64)]) -> BTreeMap<i64, Vec<u64>> {
        let mut m: BTreeMap<i64, Vec<u64>> = BTreeMap::new();
        for &(d, r) in trades {
            m.entry(d).or_default().push(r.to_bits());
        }
        for v in m.values_mut() {
            v.sort_unstable();
        }
        m
    }

    #[test]
    fn preserves_each_days_multiset_and_the_days() {
        let before = sample();
        let mut after = before.clone();
        placebo_shuffle(&mut after, 42);
        assert_eq!(per_day(&before), per_day(&after));
        for (b, a) in before.iter().zip(&after) {
            assert_eq!(b.0, a.0);
        }
    }

    #[test]
    fn is_deterministic_and_actually_permutes() {
        let mut a = sample();
        let mut b = sample();
        placebo_shuffle(&mut a, 42);
        placebo_shuffle(&mut b, 42);
        assert_eq!(a, b);
        // Ten distinct values per day: the chance that a day stays in place is 1/10!.
        assert_ne!(a, sample());
        let mut c = sample();
        placebo_shuffle(&mut c, 43);
        assert_ne!(a, c);
    }

    #[test]
    fn other_days_do_not_change_a_days_shuffle() {
        let mut a = sample();
        placebo_shuffle(&mut a, 7);
        let mut extended = sample();
        extended.extend((0..5).map(|i| (99, i as f64)));
        placebo_shuffle(&mut extended, 7);
        assert_eq!(&extended[..30], &a[..]);
    }

    #[test]
    fn degenerate_inputs() {
        let mut empty: Vec<(i64, f64)> = vec![];
        placebo_shuffle(&mut empty, 1);
        let mut single = vec![(5, 1.5)];
        placebo_shuffle(&mut single, 1);
        assert_eq!(single, vec![(5, 1.5)]);
        let mut nan = vec![(0, f64::NAN), (0, 1.0), (i64::MIN, 2.0), (i64::MAX, 3.0)];
        placebo_shuffle(&mut nan, u64::MAX);
        assert_eq!(nan.iter().filter(|t| t.1.is_nan()).count(), 1);
    }
}
