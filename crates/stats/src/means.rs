//! Student's t tests of a subset's mean R: one-sample against the module baseline, and one-sided
//! Welch against a parent subset.
//!
//! Tail probabilities come from `ContinuousCDF::sf` (the regularized incomplete beta of the upper
//! tail), never `1 − cdf`, so a p-value of 1e-30 stays 1e-30 instead of rounding to 0 — BH ranks
//! on these figures and a tie at 0 would lose information.

use learnloop_model::RunningStats;
use statrs::distribution::{ContinuousCDF, StudentsT};

/// Result of a one-sample t test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    /// `(mean − baseline) / sqrt(var / n)`; ±∞ when the sample has no spread but differs.
    pub t: f64,
    /// Degrees of freedom, `n − 1`.
    pub df: f64,
    /// `P(|T| ≥ |t|)` under Student's t with `df` degrees of freedom.
    pub p_two_sided: f64,
}

/// One-sample t test of a subset's mean against the baseline.
///
/// `t = (mean − baseline) / sqrt(var / n)`, `df = n − 1`, `p = 2·sf(|t|)` (capped at 1).
///
/// `var` is the sample variance (n − 1 denominator). Returns `None` when the test is undefined:
/// `n < 2`, a non-finite `mean`/`baseline`, a NaN, infinite or negative `var`, or `var == 0`
/// with `mean == baseline` (t = 0/0). With `var == 0` and `mean != baseline` every trade has the
/// same R (typically all clipped at the ±10 winsor limit): the difference is certain, so
/// `t = ±∞` and `p = 0`.
pub fn one_sample_t(n: u64, mean: f64, var: f64, baseline: f64) -> Option<TTest> {
    if n < 2 || !mean.is_finite() || !baseline.is_finite() || !var.is_finite() || var < 0.0 {
        return None;
    }
    let df = (n - 1) as f64;
    let diff = mean - baseline;
    let t = if var == 0.0 {
        if diff == 0.0 {
            return None;
        }
        f64::INFINITY.copysign(diff)
    } else {
        diff / (var / n as f64).sqrt()
    };
    let p = (2.0 * student_t_sf(t.abs(), df)?).min(1.0);
    Some(TTest {
        t,
        df,
        p_two_sided: p,
    })
}

/// Above this many degrees of freedom the normal tail is used: t(10⁷) and the normal differ by
/// ~10⁻⁷ relative, while statrs' incomplete-beta continued fraction (capped at 140 terms) starts
/// to lose accuracy near 10¹⁰ degrees of freedom.
const NORMAL_TAIL_ABOVE_DF: f64 = 1e7;

/// `P(T > t)` for Student's t with `df` degrees of freedom; `None` for a NaN `t` or a `df` that
/// is not positive (statrs would panic inside the incomplete beta on a NaN argument).
pub fn student_t_sf(t: f64, df: f64) -> Option<f64> {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return None;
    }
    if t == f64::INFINITY {
        return Some(0.0);
    }
    if t == f64::NEG_INFINITY {
        return Some(1.0);
    }
    let df = if df > NORMAL_TAIL_ABOVE_DF {
        f64::INFINITY
    } else {
        df
    };
    let dist = StudentsT::new(0.0, 1.0, df).ok()?;
    Some(dist.sf(t).clamp(0.0, 1.0))
}

/// The trades of `parent` that are not in `child`, as exact count/mean/M2, when `child`'s trades
/// are a subset of `parent`'s (always true for a scope subset and its parent).
///
/// Inverts Chan's merge `parent = child ⊕ rest`:
/// - `n_r = n_p − n_c`
/// - `mean_r = mean_p + (mean_p − mean_c)·n_c / n_r` (from `n_p·mean_p = n_c·mean_c + n_r·mean_r`,
///   written around `mean_p` so that it does not subtract two large sums)
/// - `M2_r = M2_p − M2_c − (mean_r − mean_c)²·n_c·n_r / n_p`, floored at 0 against rounding.
///
/// `None` when `child.n > parent.n` (not a subset) or a figure is not finite. An empty complement
/// is returned as `RunningStats::default()`.
pub fn complement_stats(parent: &RunningStats, child: &RunningStats) -> Option<RunningStats> {
    if child.n > parent.n
        || !(parent.mean.is_finite()
            && parent.m2.is_finite()
            && child.mean.is_finite()
            && child.m2.is_finite())
    {
        return None;
    }
    let n_rest = parent.n - child.n;
    if n_rest == 0 {
        return Some(RunningStats::default());
    }
    if child.n == 0 {
        return Some(*parent);
    }
    let (np, nc, nr) = (parent.n as f64, child.n as f64, n_rest as f64);
    let mean_rest = parent.mean + (parent.mean - child.mean) * nc / nr;
    let delta = mean_rest - child.mean;
    let m2_rest = (parent.m2 - child.m2 - delta * delta * nc * nr / np).max(0.0);
    Some(RunningStats {
        n: n_rest,
        mean: mean_rest,
        m2: m2_rest,
    })
}

/// What the child was compared against in [`welch_one_sided`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WelchReference {
    /// The parent's trades outside the child (independent samples: the honest test).
    Complement,
    /// The whole parent, because its complement had fewer than two trades. The samples overlap,
    /// which understates significance: a conservative fallback.
    WholeParent,
}

/// Result of a one-sided Welch test of a child subset against its parent.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WelchTest {
    /// `mean_child − mean_reference` (not multiplied by the direction).
    pub diff: f64,
    /// `diff / sqrt(var_c/n_c + var_r/n_r)`; ±∞ when neither sample has spread.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// `P(T ≥ t·direction)`: the probability of a child at least this far beyond the reference,
    /// in the direction of the child's edge, if the two means were equal.
    pub p_one_sided: f64,
    /// What the child was compared with.
    pub reference: WelchReference,
    /// Trades in the reference sample.
    pub n_reference: u64,
    /// Mean R of the reference sample.
    pub mean_reference: f64,
}

/// One-sided Welch test that the child's mean lies beyond the parent's in `direction` (the sign
/// of the child's edge: positive edges must be higher, negative edges lower).
///
/// The child is compared with the parent's complement ([`complement_stats`]) when that has at
/// least two trades, else with the whole parent ([`WelchReference::WholeParent`]).
///
/// With `v = var`, `s = v/n` per sample:
/// `t = (mean_c − mean_r)/sqrt(s_c + s_r)`,
/// `df = (s_c + s_r)² / (s_c²/(n_c − 1) + s_r²/(n_r − 1))`,
/// `p = sf(direction·t)` with Student's t(df).
///
/// `None` when `direction` is 0 or NaN, the child has fewer than two trades, the inputs are
/// inconsistent (child larger than parent, non-finite figures), or both samples have zero
/// variance and equal means. Zero variance on both sides with different means gives `t = ±∞`
/// and `p` 0 or 1, and `df = n_c + n_r − 2`.
pub fn welch_one_sided(
    child: &RunningStats,
    parent: &RunningStats,
    direction: f64,
) -> Option<WelchTest> {
    if direction.is_nan() || direction == 0.0 || child.n < 2 {
        return None;
    }
    let complement = complement_stats(parent, child)?;
    let (reference, kind) = if complement.n >= 2 {
        (complement, WelchReference::Complement)
    } else {
        (*parent, WelchReference::WholeParent)
    };
    let var_c = child.sample_variance()?;
    let var_r = reference.sample_variance()?;
    let (nc, nr) = (child.n as f64, reference.n as f64);
    let (s_c, s_r) = (var_c / nc, var_r / nr);
    let se2 = s_c + s_r;
    let diff = child.mean - reference.mean;
    let (t, df) = if se2 > 0.0 {
        let df = se2 * se2 / (s_c * s_c / (nc - 1.0) + s_r * s_r / (nr - 1.0));
        (diff / se2.sqrt(), df)
    } else if diff != 0.0 {
        (f64::INFINITY.copysign(diff), nc + nr - 2.0)
    } else {
        return None;
    };
    if t.is_nan() {
        return None;
    }
    let p = student_t_sf(t * direction.signum(), df)?;
    Some(WelchTest {
        diff,
        t,
        df,
        p_one_sided: p,
        reference: kind,
        n_reference: reference.n,
        mean_reference: reference.mean,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol * a.abs().max(b.abs()).max(1e-300)
    }

    fn stats_of(xs: &[f64]) -> RunningStats {
        let mut s = RunningStats::default();
        for &x in xs {
            s.push(x);
        }
        s
    }

    #[test]
    fn one_sample_matches_t_table() {
        // n = 25, mean 0.5, sd 1: se = 1/√25 = 0.2, t = 0.5/0.2 = 2.5, df = 24.
        // The 0.99 quantile of t(24) is 2.492 and the 0.995 quantile 2.797, so the one-sided tail
        // is just under 0.01 and the two-sided p ≈ 0.01965 (R: 2*pt(2.5, 24, lower=FALSE));
        // 0.0196541751 by numerical integration of the t(24) density over [2.5, ∞).
        let r = one_sample_t(25, 0.5, 1.0, 0.0).unwrap();
        assert_eq!(r.t, 2.5);
        assert_eq!(r.df, 24.0);
        assert!(
            close(r.p_two_sided, 0.019_654_175_1, 1e-8),
            "{}",
            r.p_two_sided
        );
        assert!(r.p_two_sided < 0.02 && r.p_two_sided > 0.01);
        // The baseline shifts the mean: mean 0.2 vs baseline −0.3 is the same test.
        let s = one_sample_t(25, 0.2, 1.0, -0.3).unwrap();
        assert!(close(s.t, 2.5, 1e-12));
        // Symmetric in sign.
        let neg = one_sample_t(25, -0.5, 1.0, 0.0).unwrap();
        assert_eq!(neg.t, -2.5);
        assert_eq!(neg.p_two_sided, r.p_two_sided);
    }

    #[test]
    fn t_table_quantiles_give_their_tail_probabilities() {
        // Classic table: t(10) 0.975 quantile 2.228; t(5) 0.95 quantile 2.015; t(1) is Cauchy,
        // whose tail beyond 1 is exactly 1/4.
        assert!(close(student_t_sf(2.228, 10.0).unwrap(), 0.025, 1e-3));
        assert!(close(student_t_sf(2.015, 5.0).unwrap(), 0.05, 1e-3));
        assert!(close(student_t_sf(1.0, 1.0).unwrap(), 0.25, 1e-12));
        assert!(close(student_t_sf(0.0, 7.0).unwrap(), 0.5, 1e-12));
        assert!(close(student_t_sf(-1.0, 1.0).unwrap(), 0.75, 1e-12));
    }

    #[test]
    fn tiny_p_values_do_not_round_to_zero() {
        // t = 40 on 999 df: 1 − cdf would be exactly 0 in f64; sf keeps a positive figure far
        // below any BH threshold.
        let r = one_sample_t(1000, 1.0, 0.625, 0.0).unwrap();
        assert!(close(r.t, 40.0, 1e-12));
        assert!(
            r.p_two_sided > 0.0 && r.p_two_sided < 1e-100,
            "{}",
            r.p_two_sided
        );
    }

    #[test]
    fn large_df_approaches_the_normal_tail() {
        // Φ̄(3) = 0.001349898031630; t(10⁶) differs from it by O(1/df).
        let p = student_t_sf(3.0, 1e6).unwrap();
        assert!(close(p, 0.001_349_898_031_630, 1e-4), "{p}");
        let p = student_t_sf(3.0, f64::INFINITY).unwrap();
        assert!(close(p, 0.001_349_898_031_630, 1e-9), "{p}");
        // Far past the continued fraction's range: the normal tail, Φ̄(0.5) = 0.3085375387.
        let p = student_t_sf(0.5, 1e12).unwrap();
        assert!(close(p, 0.308_537_538_725_987, 1e-9), "{p}");
    }

    #[test]
    fn undefined_one_sample_tests_are_none() {
        assert!(one_sample_t(0, 1.0, 1.0, 0.0).is_none());
        assert!(one_sample_t(1, 1.0, 1.0, 0.0).is_none());
        assert!(one_sample_t(10, f64::NAN, 1.0, 0.0).is_none());
        assert!(one_sample_t(10, 1.0, f64::NAN, 0.0).is_none());
        assert!(one_sample_t(10, 1.0, -1.0, 0.0).is_none());
        assert!(one_sample_t(10, 1.0, 1.0, f64::INFINITY).is_none());
        assert!(one_sample_t(10, 0.3, 0.0, 0.3).is_none());
    }

    #[test]
    fn zero_variance_with_a_difference_is_certain() {
        let up = one_sample_t(10, 10.0, 0.0, 0.2).unwrap();
        assert_eq!(up.t, f64::INFINITY);
        assert_eq!(up.p_two_sided, 0.0);
        assert_eq!(up.df, 9.0);
        let down = one_sample_t(10, -10.0, 0.0, 0.2).unwrap();
        assert_eq!(down.t, f64::NEG_INFINITY);
        assert_eq!(down.p_two_sided, 0.0);
    }

    #[test]
    fn complement_is_exact_on_a_hand_example() {
        // parent = {1, 2, 3, 4, 10}: n 5, mean 4, M2 = 9+4+1+0+36 = 50.
        // child  = {2, 10}:          n 2, mean 6, M2 = 16+16 = 32.
        // rest   = {1, 3, 4}:        n 3, mean 8/3, M2 = (25+1+16)/9 = 42/9 = 14/3.
        let parent = stats_of(&[1.0, 2.0, 3.0, 4.0, 10.0]);
        let child = stats_of(&[2.0, 10.0]);
        let rest = complement_stats(&parent, &child).unwrap();
        assert_eq!(rest.n, 3);
        assert!(close(rest.mean, 8.0 / 3.0, 1e-12));
        assert!(close(rest.m2, 14.0 / 3.0, 1e-12));
        // Edge cases: whole parent, empty child, child larger than parent.
        assert_eq!(
            complement_stats(&parent, &parent).unwrap(),
            RunningStats::default()
        );
        assert_eq!(
            complement_stats(&parent, &RunningStats::default()).unwrap(),
            parent
        );
        assert!(complement_stats(&child, &parent).is_none());
    }

    #[test]
    fn welch_against_the_complement_by_hand() {
        // child = {1, 2, 3, 4, 5}: mean 3, var 2.5.  rest = {0, 0, 1, 1}: mean 0.5, var 1/3.
        // s_c = 2.5/5 = 0.5, s_r = (1/3)/4 = 1/12; se² = 7/12;
        // t = 2.5/√(7/12) = 3.273268...;
        // df = (7/12)² / (0.5²/4 + (1/12)²/3) = 0.340278 / (0.0625 + 0.0023148) = 5.2500...
        let child = stats_of(&[1.0, 2.0, 3.0, 4.0, 5.0]);
        let parent = stats_of(&[1.0, 2.0, 3.0, 4.0, 5.0, 0.0, 0.0, 1.0, 1.0]);
        let w = welch_one_sided(&child, &parent, 1.0).unwrap();
        assert_eq!(w.reference, WelchReference::Complement);
        assert_eq!(w.n_reference, 4);
        assert!(close(w.mean_reference, 0.5, 1e-12));
        assert!(close(w.diff, 2.5, 1e-12));
        let t = 2.5 / (7.0f64 / 12.0).sqrt();
        assert!(close(w.t, t, 1e-12));
        let df = (49.0 / 144.0) / (0.0625 + 1.0 / 432.0);
        assert!(close(w.df, df, 1e-12));
        assert!(close(w.df, 5.25, 1e-3));
        // t ≈ 3.27 on ~5.25 df: between the t(5) 0.99 quantile (3.365) and 0.975 (2.571).
        assert!(
            w.p_one_sided > 0.01 && w.p_one_sided < 0.025,
            "{}",
            w.p_one_sided
        );
        // 0.0102975953 by numerical integration of the t(5.25) density over [t, ∞).
        assert!(
            close(w.p_one_sided, 0.010_297_595_3, 1e-8),
            "{}",
            w.p_one_sided
        );
        assert!(close(w.p_one_sided, student_t_sf(t, df).unwrap(), 1e-9));
        // The other direction asks whether the child is *below* the parent: p = 1 − above.
        let opposite = welch_one_sided(&child, &parent, -1.0).unwrap();
        assert!(close(opposite.p_one_sided, 1.0 - w.p_one_sided, 1e-12));
    }

    #[test]
    fn welch_falls_back_to_the_whole_parent() {
        // The complement is {7}: a single trade has no variance, so compare with the parent.
        // child {1,2,3}: mean 2, var 1; parent {1,2,3,7}: mean 3.25, var (5.0625+1.5625+0.0625
        // +14.0625)/3 = 20.75/3.
        let child = stats_of(&[1.0, 2.0, 3.0]);
        let parent = stats_of(&[1.0, 2.0, 3.0, 7.0]);
        let w = welch_one_sided(&child, &parent, -1.0).unwrap();
        assert_eq!(w.reference, WelchReference::WholeParent);
        assert_eq!(w.n_reference, 4);
        assert!(close(w.diff, -1.25, 1e-12));
        let se2: f64 = 1.0 / 3.0 + 20.75 / 3.0 / 4.0;
        assert!(close(w.t, -1.25 / se2.sqrt(), 1e-12));
        // A child equal to its parent is no evidence at all: t = 0, p = ½.
        let same = welch_one_sided(&parent, &parent, 1.0).unwrap();
        assert_eq!(same.t, 0.0);
        assert!(close(same.p_one_sided, 0.5, 1e-12));
    }

    #[test]
    fn welch_undefined_inputs_are_none() {
        let child = stats_of(&[1.0, 2.0, 3.0]);
        let parent = stats_of(&[1.0, 2.0, 3.0, 0.0, 0.5]);
        assert!(welch_one_sided(&child, &parent, 0.0).is_none());
        assert!(welch_one_sided(&child, &parent, f64::NAN).is_none());
        assert!(welch_one_sided(&stats_of(&[1.0]), &parent, 1.0).is_none());
        assert!(welch_one_sided(&parent, &child, 1.0).is_none());
        let flat = stats_of(&[1.0, 1.0]);
        assert!(welch_one_sided(&flat, &stats_of(&[1.0; 4]), 1.0).is_none());
        // No spread anywhere but different means: certain.
        let w = welch_one_sided(&flat, &stats_of(&[1.0, 1.0, 0.0, 0.0]), 1.0).unwrap();
        assert_eq!(w.t, f64::INFINITY);
        assert_eq!(w.p_one_sided, 0.0);
    }

    proptest! {
        #[test]
        fn complement_equals_direct_computation(
            xs in prop::collection::vec(-10.0f64..10.0, 2..60),
            split in 0usize..60,
        ) {
            let k = split % (xs.len() + 1);
            let parent = stats_of(&xs);
            let child = stats_of(&xs[..k]);
            let direct = stats_of(&xs[k..]);
            let derived = complement_stats(&parent, &child).unwrap();
            prop_assert_eq!(derived.n, direct.n);
            let tol = 1e-9 * (1.0 + parent.m2);
            prop_assert!((derived.mean - direct.mean).abs() <= 1e-9 * (1.0 + direct.mean.abs()) * xs.len() as f64);
            prop_assert!((derived.m2 - direct.m2).abs() <= tol * xs.len() as f64);
        }

        #[test]
        fn tests_never_panic_and_p_is_a_probability(
            n in 0u64..200,
            mean in prop::num::f64::ANY,
            var in prop::num::f64::ANY,
            baseline in prop::num::f64::ANY,
        ) {
            if let Some(r) = one_sample_t(n, mean, var, baseline) {
                prop_assert!((0.0..=1.0).contains(&r.p_two_sided));
            }
        }
    }
}
