//! Empirical-Bayes shrinkage of a subset's mean toward its parent's mean.
//!
//! Model: each sibling subset (the parent plus one more dimension, each value of it) has a true
//! mean drawn around the parent with between-sibling variance τ²; its observed mean adds sampling
//! noise σ²/n. The posterior mean is the precision-weighted average of parent and observation.

/// One sibling's observed mean and the squared standard error of that mean (`var / n`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SiblingMean {
    /// The sibling's mean.
    pub mean: f64,
    /// Squared standard error of that mean.
    pub se2: f64,
}

/// Between-sibling variance τ², by the method of moments:
/// `τ² = max(0, var(means) − mean(se²))` with the sample variance (n − 1 denominator) of the
/// sibling means: the observed spread minus the part that sampling noise explains.
///
/// Siblings with a non-finite mean or a NaN/negative/infinite se² are ignored. With fewer than two
/// usable siblings the spread is unobservable, and a documented floor applies instead:
/// - one sibling: `τ² = its se²`, i.e. the prior is assumed as uncertain as the observation, so
///   [`shrink`] moves the mean half way to the parent (`n/(n + σ²/(σ²/n)) = ½`);
/// - none: `τ² = +∞`, i.e. no shrinkage ([`shrink`] returns the mean unchanged).
pub fn estimate_tau2(siblings: &[SiblingMean]) -> f64 {
    let usable: Vec<SiblingMean> = siblings
        .iter()
        .copied()
        .filter(|s| s.mean.is_finite() && s.se2.is_finite() && s.se2 >= 0.0)
        .collect();
    match usable.len() {
        0 => f64::INFINITY,
        1 => usable[0].se2,
        k => {
            let k = k as f64;
            let grand = usable.iter().map(|s| s.mean).sum::<f64>() / k;
            let spread = usable.iter().map(|s| (s.mean - grand).powi(2)).sum::<f64>() / (k - 1.0);
            let noise = usable.iter().map(|s| s.se2).sum::<f64>() / k;
            (spread - noise).max(0.0)
        }
    }
}

/// Weight of the subset's own mean in [`shrink`]: `n/(n + σ²/τ²)`, in [0, 1].
///
/// Rules, in order: an unusable input (n = 0, NaN or negative σ² or τ²) → 0 (trust the parent);
/// `τ² = 0` → 0 (siblings do not differ beyond noise: the parent explains the subset);
/// `σ² = 0` or `τ² = ∞` → 1 (the observation is exact, or the prior says nothing).
pub fn shrink_weight(n: f64, var: f64, tau2: f64) -> f64 {
    if n.is_nan() || n <= 0.0 || var.is_nan() || var < 0.0 || tau2.is_nan() || tau2 < 0.0 {
        return 0.0;
    }
    if tau2 == 0.0 {
        return 0.0;
    }
    if var == 0.0 || tau2 == f64::INFINITY {
        return 1.0;
    }
    if var == f64::INFINITY {
        return 0.0;
    }
    // n·τ²/(n·τ² + σ²) is the same ratio without dividing by a tiny τ².
    let n_tau2 = n * tau2;
    let w = n_tau2 / (n_tau2 + var);
    if w.is_nan() {
        // Only reachable when n·τ² overflows to ∞ with a finite σ²: the data dominate.
        1.0
    } else {
        w.clamp(0.0, 1.0)
    }
}

/// The shrunk mean, exactly the specification's
/// `shrunk = parent + n/(n + σ²/τ²)·(mean − parent)`,
/// with σ² the subset's per-trade sample variance, n its (effective) number of trades, τ² from [`estimate_tau2`];
/// see [`shrink_weight`] for the edge cases (τ² = 0 → parent; σ² = 0 → mean).
///
/// A non-finite `mean` returns `parent_mean`; a non-finite `parent_mean` returns `mean` (with no
/// parent there is nothing to shrink toward).
pub fn shrink(mean: f64, n: f64, var: f64, parent_mean: f64, tau2: f64) -> f64 {
    if !mean.is_finite() {
        return parent_mean;
    }
    if !parent_mean.is_finite() {
        return mean;
    }
    let w = shrink_weight(n, var, tau2);
    parent_mean + w * (mean - parent_mean)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn sib(mean: f64, se2: f64) -> SiblingMean {
        SiblingMean { mean, se2 }
    }

    #[test]
    fn tau2_by_hand() {
        // means 0, 1, 2: grand mean 1, sample variance (1 + 0 + 1)/2 = 1; mean se² = 0.1
        // → τ² = 0.9.
        let t = estimate_tau2(&[sib(0.0, 0.1), sib(1.0, 0.05), sib(2.0, 0.15)]);
        assert!((t - 0.9).abs() < 1e-12);
        // Spread smaller than the noise: τ² floors at 0.
        assert_eq!(estimate_tau2(&[sib(0.0, 1.0), sib(0.1, 1.0)]), 0.0);
        // Unusable siblings are ignored: this is the first case again.
        let t = estimate_tau2(&[
            sib(0.0, 0.1),
            sib(f64::NAN, 0.1),
            sib(1.0, 0.05),
            sib(5.0, -1.0),
            sib(2.0, 0.15),
        ]);
        assert!((t - 0.9).abs() < 1e-12);
    }

    #[test]
    fn tau2_floor_below_two_siblings() {
        assert_eq!(estimate_tau2(&[]), f64::INFINITY);
        assert_eq!(estimate_tau2(&[sib(0.4, 0.02)]), 0.02);
        // One sibling with its own se² as τ²: n = 50, σ² = 1 → se² = 0.02, weight ½.
        let s = shrink(0.4, 50.0, 1.0, 0.0, estimate_tau2(&[sib(0.4, 0.02)]));
        assert!((s - 0.2).abs() < 1e-12);
    }

    #[test]
    fn shrink_by_hand() {
        // n = 20, σ² = 1, τ² = 0.05: σ²/τ² = 20, weight 20/(20 + 20) = ½;
        // parent 0.1, mean 0.5 → 0.1 + ½·0.4 = 0.3.
        assert!((shrink(0.5, 20.0, 1.0, 0.1, 0.05) - 0.3).abs() < 1e-12);
        // n = 30, σ² = 2, τ² = 0.2: σ²/τ² = 10, weight 30/40 = 0.75;
        // parent −0.2, mean −1.0 → −0.2 + 0.75·(−0.8) = −0.8.
        assert!((shrink(-1.0, 30.0, 2.0, -0.2, 0.2) + 0.8).abs() < 1e-12);
    }

    #[test]
    fn shrink_edge_cases() {
        assert_eq!(shrink(0.5, 20.0, 1.0, 0.1, 0.0), 0.1);
        assert_eq!(shrink(0.5, 20.0, 0.0, 0.1, 0.3), 0.5);
        assert_eq!(shrink(0.5, 20.0, 1.0, 0.1, f64::INFINITY), 0.5);
        // τ² = 0 wins over σ² = 0: the siblings say the parent explains it.
        assert_eq!(shrink(0.5, 20.0, 0.0, 0.1, 0.0), 0.1);
        assert_eq!(shrink(0.5, 0.0, 1.0, 0.1, 0.3), 0.1);
        assert_eq!(shrink(0.5, 20.0, f64::NAN, 0.1, 0.3), 0.1);
        assert_eq!(shrink(0.5, 20.0, f64::INFINITY, 0.1, 0.3), 0.1);
        assert_eq!(shrink(f64::NAN, 20.0, 1.0, 0.1, 0.3), 0.1);
        assert_eq!(shrink(0.5, 20.0, 1.0, f64::NAN, 0.3), 0.5);
        assert_eq!(shrink_weight(f64::MAX, 1.0, f64::MAX), 1.0);
    }

    proptest! {
        #[test]
        fn shrunk_lies_between_parent_and_mean(
            mean in -10.0f64..10.0,
            parent in -10.0f64..10.0,
            n in 0.0f64..10_000.0,
            var in 0.0f64..100.0,
            tau2 in 0.0f64..10.0,
        ) {
            let s = shrink(mean, n, var, parent, tau2);
            let (lo, hi) = (mean.min(parent), mean.max(parent));
            prop_assert!(s >= lo - 1e-12 && s <= hi + 1e-12, "{s} not in [{lo}, {hi}]");
        }

        #[test]
        fn more_trades_shrink_less(
            var in 0.01f64..100.0,
            tau2 in 0.001f64..10.0,
            n in 1.0f64..10_000.0,
        ) {
            prop_assert!(shrink_weight(n + 1.0, var, tau2) >= shrink_weight(n, var, tau2));
        }

        #[test]
        fn tau2_is_never_negative_or_nan(
            ms in prop::collection::vec((prop::num::f64::ANY, prop::num::f64::ANY), 0..20),
        ) {
            let sibs: Vec<SiblingMean> = ms.into_iter().map(|(m, s)| sib(m, s)).collect();
            let t = estimate_tau2(&sibs);
            prop_assert!(t >= 0.0);
        }
    }
}
