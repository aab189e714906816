//! Blending overlapping overrides. Each lever is the weighted mean over the overrides that
//! carry it — never a product: two overlapping 1.2 lessons that describe one effect must give
//! 1.2, not 1.44. Overrides without a lever do not dilute it.

use crate::decision::Match;
use crate::levers::{Lever, Levers};

/// Weighted mean per lever over the items that carry it, clamped to the lever's bounds.
/// Levers with no carrier or zero total weight stay absent (neutral). The materializer merges
/// a latent factor's members with this same function.
pub fn weighted_mean_levers<'a>(items: impl IntoIterator<Item = (f64, &'a Levers)>) -> Levers {
    let mut sum = [0.0f64; Lever::COUNT];
    let mut weight = [0.0f64; Lever::COUNT];
    for (w, levers) in items {
        // A bad weight must not poison the sum; validation keeps this from happening.
        if !(w.is_finite() && w > 0.0) {
            continue;
        }
        for (lever, value) in levers.iter() {
            sum[lever.index()] += w * value;
            weight[lever.index()] += w;
        }
    }
    let mut out = Levers::EMPTY;
    for lever in Lever::ALL {
        let w = weight[lever.index()];
        if w > 0.0 {
            out.set(lever, lever.clamp(sum[lever.index()] / w));
        }
    }
    out
}

/// Deterministic order for the decision record, independent of how the index found them:
/// most specific first, then by override id (ids are unique within a config).
pub(crate) fn sort_matches(matches: &mut [Match]) {
    // The rank encodes that order (precomputed per config); unstable sort does not allocate.
    matches.sort_unstable_by_key(Match::rank);
}

pub(crate) fn blend_matches(matches: &[Match]) -> Levers {
    weighted_mean_levers(matches.iter().map(|m| (m.weight, m.levers())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_not_product_and_absent_levers_do_not_dilute() {
        let a = Levers::new().with(Lever::SizeMult, 1.2);
        let b = Levers::new()
            .with(Lever::SizeMult, 1.2)
            .with(Lever::TrailMult, 1.5);
        let c = Levers::new();
        let out = weighted_mean_levers([(1.0, &a), (3.0, &b), (5.0, &c)]);
        assert!((out.get(Lever::SizeMult).unwrap() - 1.2).abs() < 1e-15);
        assert_eq!(out.get(Lever::TrailMult), Some(1.5));
        assert_eq!(out.get(Lever::ExitAggressionMult), None);
    }

    #[test]
    fn zero_or_bad_weights_leave_levers_absent() {
        let a = Levers::new().with(Lever::SizeMult, 1.2);
        let out = weighted_mean_levers([(0.0, &a), (f64::NAN, &a)]);
        assert!(out.is_empty());
    }
}
