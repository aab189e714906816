//! Benjamini–Hochberg false discovery rate control across the whole family of tests of a run.

use rayon::iter::{IntoParallelRefIterator, ParallelIterator};
use rayon::slice::ParallelSliceMut;

/// Benjamini–Hochberg q-values (adjusted p-values), in the order of `p_values`.
///
/// With the m p-values sorted ascending, `p₍₁₎ ≤ … ≤ p₍ₘ₎`:
/// `q₍ᵢ₎ = min(1, min_{j ≥ i} m·p₍ⱼ₎ / j)` — the step-up procedure, made monotone by the running
/// minimum from the largest p downwards. Rejecting every test with `q ≤ α` is exactly BH at
/// level α. This is R's `p.adjust(p, method = "BH")`.
///
/// A NaN p-value counts as 1 (a test that could not be computed is still part of the family and
/// must not be dropped, or the correction would be too lenient); values outside [0, 1] are
/// clamped into it. Tied p-values get the same q.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let clean: Vec<f64> = p_values
        .iter()
        .map(|&p| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) })
        .collect();
    // Ascending by p, ties by position, so the order is total and deterministic. The keys are
    // `f64::total_cmp`'s integer form, sorted in parallel (the family of a run is large).
    let mut order: Vec<(i64, usize)> = clean
        .iter()
        .enumerate()
        .map(|(i, p)| (total_order_key(*p), i))
        .collect();
    order.par_sort_unstable();
    let mut q = vec![1.0; m];
    let mut running_min = 1.0f64;
    for (rank0, &(_, idx)) in order.iter().enumerate().rev() {
        let rank = (rank0 + 1) as f64;
        running_min = running_min.min(clean[idx] * m as f64 / rank);
        q[idx] = running_min;
    }
    q
}

/// Simes' combination of `p_values` into one p for their intersection (no hypothesis among them
/// false): `min_i m·p₍ᵢ₎ / i`, capped at 1 — the smallest BH q-value. Valid when the tests are
/// independent or positively dependent (PRDS: Sarkar 1998), as tests sharing trades and weeks
/// are. 1 for no p-values; NaN counts as 1, as in [`benjamini_hochberg`].
pub fn simes(p_values: &[f64]) -> f64 {
    let mut clean: Vec<f64> = p_values
        .iter()
        .map(|&p| if p.is_nan() { 1.0 } else { p.clamp(0.0, 1.0) })
        .collect();
    clean.sort_unstable_by(f64::total_cmp);
    let m = clean.len() as f64;
    clean
        .iter()
        .enumerate()
        .map(|(i, &p)| p * m / (i + 1) as f64)
        .fold(1.0, f64::min)
}

/// An integer that orders like `f64::total_cmp` (the transformation it documents).
fn total_order_key(x: f64) -> i64 {
    let bits = x.to_bits() as i64;
    bits ^ ((((bits >> 63) as u64) >> 1) as i64)
}

/// Weights that give each stratum (e.g. the subsets of one size) an equal share of the error
/// budget: `w_i = m / (L·m_s)` for a hypothesis of stratum s with `m_s` members, L strata. They
/// average 1, as weighted BH requires, and depend only on the design (how many hypotheses of
/// each size), never on the outcomes.
pub fn equal_share_weights(strata: &[u32]) -> Vec<f64> {
    let mut counts: std::collections::BTreeMap<u32, usize> = std::collections::BTreeMap::new();
    for &s in strata {
        *counts.entry(s).or_default() += 1;
    }
    let (m, l) = (strata.len() as f64, counts.len() as f64);
    strata.iter().map(|s| m / (l * counts[s] as f64)).collect()
}

/// Weighted Benjamini–Hochberg (Genovese, Roeder & Wasserman 2006): BH applied to `p_i / w_i`
/// (capped at 1), with weights of mean 1 fixed before the data are seen. Returns the q-values of
/// the weighted p-values; rejecting `q ≤ α` controls the FDR at α under independence or PRDS.
/// A non-positive or NaN weight counts as a hypothesis that can never be rejected (p/w = 1).
pub fn weighted_benjamini_hochberg(p_values: &[f64], weights: &[f64]) -> Vec<f64> {
    benjamini_hochberg(&weighted_p(p_values, weights))
}

/// `p_i / w_i`, capped at 1 (NaN and non-positive weights give 1).
pub fn weighted_p(p_values: &[f64], weights: &[f64]) -> Vec<f64> {
    p_values
        .iter()
        .zip(weights)
        .map(|(&p, &w)| weighted_one(p, w))
        .collect()
}

fn weighted_one(p: f64, w: f64) -> f64 {
    if w > 0.0 {
        (p / w).min(1.0)
    } else {
        1.0
    }
}

/// The largest p-value BH rejects at level `alpha` (the step-up critical value), if any: a test
/// re-run later in the same family (e.g. with other lessons' trades removed) is significant at
/// the family's level when its p is at most this.
pub fn rejection_threshold(p_values: &[f64], q_values: &[f64], alpha: f64) -> Option<f64> {
    p_values
        .iter()
        .zip(q_values)
        .filter(|(_, &q)| q <= alpha)
        .map(|(&p, _)| p)
        .max_by(f64::total_cmp)
}

/// How many tests BH rejects at level `alpha`: the count of q-values `≤ alpha`.
pub fn count_discoveries(q_values: &[f64], alpha: f64) -> usize {
    q_values.iter().filter(|&&q| q <= alpha).count()
}

/// Candidate filter thresholds: the quantiles 0, 1/20, …, 19/20 of the filter statistic.
const FILTER_QUANTILES: usize = 20;

/// The threshold chosen by [`choose_independent_filter`] and what it gave.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FilterChoice {
    /// Hypotheses whose filter statistic is below this are left out of the family (the lowest
    /// candidate, the smallest statistic, leaves none out).
    pub threshold: f64,
    /// Hypotheses kept.
    pub kept: usize,
    /// Discoveries of the kept family at level `alpha`.
    pub discoveries: usize,
}

/// Independent filtering (Bourgon, Gentleman & Huber 2010; the automatic filter of DESeq2, Love,
/// Huber & Anders 2014): hypotheses with too little information to be rejected (a small
/// `filter_stat`, e.g. the effective number of observations of a contrast) only dilute a BH
/// family, so the family keeps the hypotheses whose statistic is at least a threshold. The
/// statistic must be independent of the p-values under the null — a function of the design
/// alone is. Each candidate threshold (the quantiles 0, 5 %, …, 95 % of the statistic) is tried
/// with the strata's equal-share weights ([`equal_share_weights`]) recomputed over the hypotheses
/// it keeps; the one with the most discoveries at `alpha` wins, the lowest on a tie (the
/// largest family). Choosing the threshold from the outcomes is the one data-dependent step, so
/// it is gated: a filter is only considered when the whole family already has a discovery.
/// Under the global null (no effect anywhere) the chance of any discovery is then that of the
/// unfiltered BH, at most `alpha`; what the choice costs in false discoveries otherwise, the
/// calibration study measures.
///
/// A threshold that would keep fewer than `min_kept` of the filterable hypotheses is not a
/// candidate: the strata's shares are recomputed over what is kept, so a stratum thinned to a
/// handful would give each survivor a large share of the error budget, which the choice by
/// discoveries would exploit.
///
/// `p_values`, `strata` and `filter_stat` are index for index; an infinite statistic marks a
/// hypothesis that is never left out (the quantiles are those of the finite ones). `None` when
/// no statistic is finite.
pub fn choose_independent_filter(
    p_values: &[f64],
    strata: &[u32],
    filter_stat: &[f64],
    alpha: f64,
    min_kept: usize,
) -> Option<FilterChoice> {
    let mut sorted: Vec<f64> = filter_stat
        .iter()
        .copied()
        .filter(|s| s.is_finite())
        .collect();
    sorted.sort_by(f64::total_cmp);
    let mut candidates: Vec<f64> = (0..FILTER_QUANTILES)
        .map(|j| j * sorted.len() / FILTER_QUANTILES)
        .filter(|&first_kept| first_kept == 0 || sorted.len() - first_kept >= min_kept)
        .filter_map(|first_kept| sorted.get(first_kept).copied())
        .collect();
    candidates.dedup();
    let by_stratum = sorted_by_stratum(p_values, strata, filter_stat);
    let choices: Vec<FilterChoice> = candidates
        .par_iter()
        .map(|&threshold| {
            let (kept, discoveries) = filtered_discoveries(&by_stratum, threshold, alpha);
            FilterChoice {
                threshold,
                kept,
                discoveries,
            }
        })
        .collect();
    let mut best: Option<FilterChoice> = None;
    for choice in choices {
        match best {
            // Nothing discovered without a filter: stay there (the gate).
            Some(b) if b.discoveries == 0 => return best,
            Some(b) if choice.discoveries <= b.discoveries => {}
            _ => best = Some(choice),
        }
    }
    best
}

/// Per stratum (in stratum order), its hypotheses' (p, filter statistic), ascending by p (a NaN
/// p last): for any threshold, a stratum's kept members are a subsequence in the same order.
fn sorted_by_stratum(
    p_values: &[f64],
    strata: &[u32],
    filter_stat: &[f64],
) -> Vec<Vec<(f64, f64)>> {
    let mut by_stratum: std::collections::BTreeMap<u32, Vec<(f64, f64)>> = Default::default();
    for ((&p, &s), &stat) in p_values.iter().zip(strata).zip(filter_stat) {
        by_stratum.entry(s).or_default().push((p, stat));
    }
    let key = |p: f64| if p.is_nan() { f64::INFINITY } else { p };
    by_stratum
        .into_values()
        .map(|mut members| {
            members.sort_by(|a, b| key(a.0).total_cmp(&key(b.0)));
            members
        })
        .collect()
}

/// The hypotheses with a statistic of at least `threshold`, and how many of them weighted BH
/// with equal shares per stratum rejects at `alpha`: the count of
/// `weighted_benjamini_hochberg(p, equal_share_weights(strata)) ≤ alpha` over them, found by
/// merging the strata's sorted p-values (skipping the members left out) instead of sorting
/// again.
fn filtered_discoveries(
    by_stratum: &[Vec<(f64, f64)>],
    threshold: f64,
    alpha: f64,
) -> (usize, usize) {
    // A NaN statistic is never kept.
    let keeps = |stat: f64| stat >= threshold;
    let kept = |members: &Vec<(f64, f64)>| members.iter().filter(|(_, stat)| keeps(*stat)).count();
    let counts: Vec<usize> = by_stratum.iter().map(kept).collect();
    let m: usize = counts.iter().sum();
    let mf = m as f64;
    let strata = counts.iter().filter(|&&c| c > 0).count() as f64;
    // The same arithmetic as `equal_share_weights`, `weighted_p` and `benjamini_hochberg`.
    let weights: Vec<f64> = counts.iter().map(|&c| mf / (strata * c as f64)).collect();
    let weighted = |p: f64, w: f64| {
        let wp = weighted_one(p, w);
        if wp.is_nan() {
            1.0
        } else {
            wp.clamp(0.0, 1.0)
        }
    };
    let mut heads = vec![0usize; by_stratum.len()];
    let mut discoveries = 0;
    for rank in 1..=m {
        let mut smallest: Option<(usize, f64)> = None;
        for (s, members) in by_stratum.iter().enumerate() {
            while members.get(heads[s]).is_some_and(|(_, stat)| !keeps(*stat)) {
                heads[s] += 1;
            }
            if let Some(&(p, _)) = members.get(heads[s]) {
                let wp = weighted(p, weights[s]);
                if smallest.is_none_or(|(_, best)| wp.total_cmp(&best).is_lt()) {
                    smallest = Some((s, wp));
                }
            }
        }
        let (s, wp) = smallest.expect("m counts the members left");
        heads[s] += 1;
        if wp * mf / rank as f64 <= alpha {
            discoveries = rank;
        }
    }
    (m, discoveries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simes_is_the_smallest_bh_q_value() {
        // Hand-computed: sorted 0.01, 0.02, 0.04, 0.5 → 0.04, 0.04, 0.0533, 0.5.
        let p = [0.5, 0.02, 0.04, 0.01];
        assert!((simes(&p) - 0.04).abs() < 1e-15);
        let q = benjamini_hochberg(&p);
        assert_eq!(simes(&p), q.iter().copied().fold(1.0, f64::min));
        assert_eq!(simes(&[]), 1.0);
        assert_eq!(simes(&[f64::NAN, 0.3]), 0.6);
    }
    use proptest::prelude::*;

    /// The 15 p-values of Benjamini & Hochberg (1995), section 4.
    const BH1995: [f64; 15] = [
        0.0001, 0.0004, 0.0019, 0.0095, 0.0201, 0.0278, 0.0298, 0.0344, 0.0459, 0.3240, 0.4262,
        0.5719, 0.6528, 0.7590, 1.000,
    ];

    #[test]
    fn equal_shares_and_weighted_bh_by_hand() {
        // Strata sizes 1 and 3: w = 4/(2·1) = 2 and 4/(2·3) = 2/3; mean 1.
        let w = equal_share_weights(&[0, 1, 1, 1]);
        assert_eq!(w, vec![2.0, 2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0]);
        // p/w = 0.01, 0.03, 0.06, 1.0 (capped); BH over 4: 0.04, 0.06, 0.08, 1.
        let q = weighted_benjamini_hochberg(&[0.02, 0.02, 0.04, 0.9], &w);
        let expected = [0.04, 0.06, 0.08, 1.0];
        for (a, b) in q.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{q:?}");
        }
        // Equal weights are plain BH.
        let p = [0.01, 0.2, 0.03];
        assert_eq!(
            weighted_benjamini_hochberg(&p, &[1.0; 3]),
            benjamini_hochberg(&p)
        );
    }

    #[test]
    fn the_sort_key_orders_like_total_cmp() {
        let xs = [
            f64::NEG_INFINITY,
            -1.5,
            -0.0,
            0.0,
            1e-300,
            0.5,
            1.0,
            f64::INFINITY,
            f64::NAN,
            -f64::NAN,
        ];
        for a in xs {
            for b in xs {
                assert_eq!(
                    total_order_key(a).cmp(&total_order_key(b)),
                    a.total_cmp(&b),
                    "{a} {b}"
                );
            }
        }
    }

    #[test]
    fn published_example_rejects_four_at_five_percent() {
        // Thresholds i·0.05/15: p₍₄₎ = 0.0095 ≤ 4/300 = 0.01333, and no later p₍ᵢ₎ is below its
        // threshold (0.0201 > 5/300, 0.0278 > 6/300, …, 0.0459 > 9/300), so 4 rejections.
        let q = benjamini_hochberg(&BH1995);
        assert_eq!(count_discoveries(&q, 0.05), 4);
    }

    #[test]
    fn published_example_matches_r_p_adjust() {
        // 15·p₍ⱼ₎/j, then the running minimum from the top (what p.adjust(method="BH") prints):
        //  j=1 0.0015   j=2 0.003   j=3 0.0095   j=4 0.035625   j=5 0.0603
        //  j=6 0.0695 → min with j=7's 0.0638571428… (15·0.0298/7)
        //  j=8 0.0645   j=9 0.0765   j=10 0.486   j=11 0.5811818…   j=12 0.714875
        //  j=13 0.7532307…   j=14 0.8132142…   j=15 1
        let expected = [
            0.0015,
            0.003,
            0.0095,
            0.035625,
            0.0603,
            15.0 * 0.0298 / 7.0,
            15.0 * 0.0298 / 7.0,
            0.0645,
            0.0765,
            0.486,
            15.0 * 0.4262 / 11.0,
            0.714875,
            15.0 * 0.6528 / 13.0,
            15.0 * 0.7590 / 14.0,
            1.0,
        ];
        // Reverse the input to check that q comes back in input order.
        let reversed: Vec<f64> = BH1995.iter().rev().copied().collect();
        let q = benjamini_hochberg(&reversed);
        for (i, e) in expected.iter().rev().enumerate() {
            assert!((q[i] - e).abs() < 1e-12, "q[{i}] = {} vs {e}", q[i]);
        }
    }

    #[test]
    fn small_hand_example_with_ties_nan_and_cap() {
        // p = [0.04, NaN→1, 0.01, 0.04, 0.03], m = 5, sorted: 0.01, 0.03, 0.04, 0.04, 1.
        // 5p/j: 0.05, 0.075, 0.0666…, 0.05, 1 → running min from the top:
        //  j=5 1, j=4 0.05, j=3 0.05, j=2 0.05, j=1 0.05.
        let q = benjamini_hochberg(&[0.04, f64::NAN, 0.01, 0.04, 0.03]);
        let expected = [0.05, 1.0, 0.05, 0.05, 0.05];
        for (a, b) in q.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{q:?}");
        }
        // Capped at 1: m·p/j can exceed 1.
        assert_eq!(benjamini_hochberg(&[0.9, 0.95]), vec![0.95, 0.95]);
        assert!(benjamini_hochberg(&[]).is_empty());
        assert_eq!(benjamini_hochberg(&[-0.5, 2.0]), vec![0.0, 1.0]);
    }

    #[test]
    fn the_filter_drops_hypotheses_that_only_dilute_the_family() {
        // Two informative hypotheses (statistic 100) with p = 0.002 and 0.008, and 38
        // uninformative ones (statistic 5) with p = 0.5. Unfiltered BH over 40: 40·0.002/1 =
        // 0.08 rejects the first, 40·0.008/2 = 0.16 not the second. Keeping only the two: q =
        // 0.004, 0.008: both.
        let mut p = vec![0.002, 0.008];
        p.extend(std::iter::repeat_n(0.5, 38));
        let mut stat = vec![100.0, 100.0];
        stat.extend(std::iter::repeat_n(5.0, 38));
        let strata = vec![0; 40];
        let choice = choose_independent_filter(&p, &strata, &stat, 0.1, 0).unwrap();
        assert_eq!(
            choice,
            FilterChoice {
                threshold: 100.0,
                kept: 2,
                discoveries: 2
            }
        );
        // Keeping at least 3 of the 40: the two alone are not a candidate, and no threshold
        // keeping more gains anything, so the whole family stays.
        let floor = choose_independent_filter(&p, &strata, &stat, 0.1, 3).unwrap();
        assert_eq!(
            (floor.threshold, floor.kept, floor.discoveries),
            (5.0, 40, 1)
        );
        // The gate: the whole family discovers nothing, so no filter is tried, although
        // keeping the two informative ones alone would reject both (q = 0.024, 0.02 → 0.02).
        let mut gated_p = vec![0.012, 0.02];
        gated_p.extend(std::iter::repeat_n(0.5, 38));
        let gated = choose_independent_filter(&gated_p, &strata, &stat, 0.1, 0).unwrap();
        assert_eq!(
            (gated.threshold, gated.kept, gated.discoveries),
            (5.0, 40, 0)
        );
        // Nothing to gain: the lowest threshold (the whole family) is kept.
        let flat =
            choose_independent_filter(&[0.001, 0.5], &[0, 0], &[5.0, 100.0], 0.1, 0).unwrap();
        assert_eq!((flat.threshold, flat.kept, flat.discoveries), (5.0, 2, 1));
        assert_eq!(choose_independent_filter(&[], &[], &[], 0.1, 0), None);
    }

    proptest! {
        #[test]
        fn q_is_at_least_p_at_most_one_and_monotone(
            ps in prop::collection::vec(0.0f64..=1.0, 0..80),
        ) {
            let q = benjamini_hochberg(&ps);
            prop_assert_eq!(q.len(), ps.len());
            for i in 0..ps.len() {
                prop_assert!(q[i] >= ps[i] - 1e-15 && q[i] <= 1.0);
                for j in 0..ps.len() {
                    if ps[i] <= ps[j] {
                        prop_assert!(q[i] <= q[j]);
                    }
                }
            }
        }

        #[test]
        fn the_chosen_filter_is_the_best_candidate_and_its_count_is_bh_on_the_kept(
            cases in prop::collection::vec((0.0f64..=1.0, 0u32..3, 1.0f64..200.0), 1..120),
            alpha in 0.01f64..0.3,
            min_kept in 0usize..60,
        ) {
            let p: Vec<f64> = cases.iter().map(|c| c.0).collect();
            let strata: Vec<u32> = cases.iter().map(|c| c.1).collect();
            let stat: Vec<f64> = cases.iter().map(|c| c.2).collect();
            let discoveries_at = |threshold: f64| {
                let kept: Vec<usize> = (0..p.len()).filter(|&i| stat[i] >= threshold).collect();
                let kp: Vec<f64> = kept.iter().map(|&i| p[i]).collect();
                let ks: Vec<u32> = kept.iter().map(|&i| strata[i]).collect();
                (kept.len(), count_discoveries(&weighted_benjamini_hochberg(&kp, &equal_share_weights(&ks)), alpha))
            };
            let choice = choose_independent_filter(&p, &strata, &stat, alpha, min_kept).unwrap();
            prop_assert!(choice.kept >= min_kept.min(p.len()));
            prop_assert_eq!((choice.kept, choice.discoveries), discoveries_at(choice.threshold));
            // No threshold at or below the chosen one finds more (the lowest threshold, no
            // filter at all, included).
            let lowest = stat.iter().copied().fold(f64::INFINITY, f64::min);
            prop_assert!(discoveries_at(lowest).1 <= choice.discoveries);
            if discoveries_at(lowest).1 == 0 {
                prop_assert_eq!(choice.threshold, lowest);
            }
            prop_assert!(stat.contains(&choice.threshold));
        }

        #[test]
        fn rejections_equal_the_step_up_rule(
            ps in prop::collection::vec(0.0f64..=0.2, 1..60),
            alpha in 0.01f64..0.3,
        ) {
            // The largest i with p₍ᵢ₎ ≤ i·α/m is the number of rejections.
            let mut sorted = ps.clone();
            sorted.sort_by(f64::total_cmp);
            let m = ps.len() as f64;
            let k = (1..=ps.len())
                .filter(|&i| sorted[i - 1] <= i as f64 * alpha / m)
                .max()
                .unwrap_or(0);
            let q = benjamini_hochberg(&ps);
            // q = m·p/i can differ from the threshold comparison by one rounding step; skip the
            // (measure-zero) boundary cases.
            let boundary = (1..=ps.len())
                .any(|i| (sorted[i - 1] - i as f64 * alpha / m).abs() < 1e-12);
            if !boundary {
                prop_assert_eq!(count_discoveries(&q, alpha), k);
            }
        }
    }
}
