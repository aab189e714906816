//! Half-life of a lesson's edge, from its history of shrunk edges (SPEC §4.10): only an edge that
//! declines *significantly* gets a fitted half-life; a flat, growing or merely noisy one keeps the
//! default.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Fit the half-life, in hours, of an edge that decays exponentially toward zero, if its decline
/// is significant.
///
/// `points` are `(time in hours, shrunk edge)` in any order (they are sorted by time here). The fit
/// uses the most recent contiguous run of points sharing the sign of the latest point: an edge
/// that flipped sign is a different effect, and only its current stretch says how fast *it*
/// fades. Zero edges have no sign and end a run; non-finite points are ignored.
///
/// With at least `max(min_points, 3)` points in that run, ordinary least squares of
/// `ln|edge|` on time gives a slope b. The decline must be significant: a one-sided t-test of
/// b < 0 at level `alpha`. Successive points of a lesson's history share most of their trades,
/// so their residuals are strongly autocorrelated and a naive t-test would find "declines" in
/// noise; the test therefore uses the effective sample size of AR(1) residuals,
/// `n_eff = n·(1 − r₁)/(1 + r₁)` with r₁ the lag-1 autocorrelation of the residuals (≥ 0),
/// residual variance over `n_eff − 2` and `n_eff − 2` degrees of freedom (Santer et al. 2000,
/// "Statistical significance of trends and trend differences in layer-average atmospheric
/// temperature time series", JGR 105(D6)). A significant decline gives `ln 2 / −b`, clamped to
/// `[clamp_min_h, clamp_max_h]`; anything else (no decline, not significant, too few points,
/// all at one time, n_eff ≤ 2) returns `None`.
pub fn fit_half_life(
    points: &[(f64, f64)],
    min_points: usize,
    alpha: f64,
    clamp_min_h: f64,
    clamp_max_h: f64,
) -> Option<f64> {
    let mut pts: Vec<(f64, f64)> = points
        .iter()
        .copied()
        .filter(|(t, e)| t.is_finite() && e.is_finite())
        .collect();
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let latest_sign = sign(pts.last()?.1);
    if latest_sign == 0 {
        return None;
    }
    let run_len = pts
        .iter()
        .rev()
        .take_while(|(_, e)| sign(*e) == latest_sign)
        .count();
    if run_len < min_points.max(3) {
        return None;
    }
    let run: Vec<(f64, f64)> = pts[pts.len() - run_len..]
        .iter()
        .map(|&(t, e)| (t, e.abs().ln()))
        .collect();
    let fit = ols(&run)?;
    if fit.slope.is_nan() || fit.slope >= 0.0 || decline_p_value(&fit)? >= alpha {
        return None;
    }
    // max/min rather than f64::clamp, which panics on an inverted or NaN range.
    let hours = std::f64::consts::LN_2 / -fit.slope;
    Some(hours.max(clamp_min_h).min(clamp_max_h))
}

fn sign(x: f64) -> i8 {
    if x > 0.0 {
        1
    } else if x < 0.0 {
        -1
    } else {
        0
    }
}

/// A least-squares line and the residuals it leaves, in time order.
struct Fit {
    slope: f64,
    sxx: f64,
    residuals: Vec<f64>,
    /// Σ(y − ȳ)², to tell an exact fit from rounding noise.
    syy: f64,
}

/// Least squares of y on x, centred so that epoch-sized times (~5·10⁵ hours) lose no precision.
/// `None` when x does not vary.
fn ols(xy: &[(f64, f64)]) -> Option<Fit> {
    let n = xy.len() as f64;
    if xy.len() < 2 {
        return None;
    }
    let mx = xy.iter().map(|p| p.0).sum::<f64>() / n;
    let my = xy.iter().map(|p| p.1).sum::<f64>() / n;
    let (sxx, sxy, syy) = xy.iter().fold((0.0, 0.0, 0.0), |(sxx, sxy, syy), &(x, y)| {
        let (dx, dy) = (x - mx, y - my);
        (sxx + dx * dx, sxy + dx * dy, syy + dy * dy)
    });
    if sxx <= 0.0 {
        return None;
    }
    let slope = sxy / sxx;
    let residuals = xy
        .iter()
        .map(|&(x, y)| (y - my) - slope * (x - mx))
        .collect();
    Some(Fit {
        slope,
        sxx,
        residuals,
        syy,
    })
}

/// One-sided p-value of "the slope is negative", with the AR(1) effective sample size.
fn decline_p_value(fit: &Fit) -> Option<f64> {
    let n = fit.residuals.len() as f64;
    let sse: f64 = fit.residuals.iter().map(|e| e * e).sum();
    if sse <= 1e-24 * fit.syy.max(f64::MIN_POSITIVE) {
        return Some(0.0); // an exact exponential: no doubt about its direction
    }
    let lag1: f64 = fit.residuals.windows(2).map(|w| w[0] * w[1]).sum::<f64>() / sse;
    let r1 = lag1.clamp(0.0, 0.999);
    let n_eff = n * (1.0 - r1) / (1.0 + r1);
    if n_eff <= 2.0 {
        return None;
    }
    let se = (sse / (n_eff - 2.0) / fit.sxx).sqrt();
    let t = fit.slope / se;
    let dist = StudentsT::new(0.0, 1.0, n_eff - 2.0).ok()?;
    let p = dist.cdf(t);
    p.is_finite().then_some(p)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exponential(amplitude: f64, half_life: f64, times: &[f64]) -> Vec<(f64, f64)> {
        times
            .iter()
            .map(|&t| (t, amplitude * 0.5f64.powf(t / half_life)))
            .collect()
    }

    #[test]
    fn recovers_an_exact_exponential() {
        // edge = 0.8·0.5^(t/100): ln|edge| = ln 0.8 − t·ln2/100, slope −ln2/100 → 100 h.
        let pts = exponential(0.8, 100.0, &[0.0, 24.0, 48.0, 72.0, 96.0, 120.0]);
        let h = fit_half_life(&pts, 5, 0.05, 1.0, 8760.0).unwrap();
        assert!((h - 100.0).abs() < 1e-9, "{h}");
        // Negative edges decay the same way; order of input does not matter.
        let mut neg: Vec<(f64, f64)> = pts.iter().map(|&(t, e)| (t, -e)).collect();
        neg.reverse();
        let h = fit_half_life(&neg, 5, 0.05, 1.0, 8760.0).unwrap();
        assert!((h - 100.0).abs() < 1e-9, "{h}");
    }

    #[test]
    fn precise_at_epoch_sized_times() {
        // Hours since 1970 are ~4.9·10⁵; centring keeps the fit exact.
        let times: Vec<f64> = (0..8).map(|i| 490_000.0 + 24.0 * i as f64).collect();
        let pts: Vec<(f64, f64)> = times
            .iter()
            .map(|&t| (t, 0.3 * 0.5f64.powf((t - 490_000.0) / 250.0)))
            .collect();
        let h = fit_half_life(&pts, 5, 0.05, 1.0, 8760.0).unwrap();
        assert!((h - 250.0).abs() < 1e-6, "{h}");
    }

    #[test]
    fn growing_or_flat_edges_have_no_half_life() {
        let growing: Vec<(f64, f64)> = (0..6)
            .map(|i| (i as f64 * 24.0, 0.1 + 0.05 * i as f64))
            .collect();
        assert!(fit_half_life(&growing, 5, 0.05, 1.0, 8760.0).is_none());
        let flat: Vec<(f64, f64)> = (0..6).map(|i| (i as f64 * 24.0, 0.2)).collect();
        assert!(fit_half_life(&flat, 5, 0.05, 1.0, 8760.0).is_none());
    }

    #[test]
    fn uses_the_latest_run_of_one_sign() {
        // Three negative points, then six positive ones decaying with half-life 50 h: the fit
        // sees only the positive run.
        let mut pts = vec![(-72.0, -0.4), (-48.0, -0.3), (-24.0, -0.2)];
        pts.extend(exponential(0.5, 50.0, &[0.0, 10.0, 20.0, 30.0, 40.0, 50.0]));
        let h = fit_half_life(&pts, 5, 0.05, 1.0, 8760.0).unwrap();
        assert!((h - 50.0).abs() < 1e-9, "{h}");
        // Mixed signs at the end: the latest run has only 2 points.
        let mixed = vec![
            (0.0, 0.5),
            (1.0, 0.4),
            (2.0, 0.3),
            (3.0, 0.2),
            (4.0, -0.1),
            (5.0, 0.1),
            (6.0, 0.05),
        ];
        assert!(fit_half_life(&mixed, 5, 0.05, 1.0, 8760.0).is_none());
        // A zero edge ends a run, and a zero latest edge has no sign at all.
        let mut zero_last = exponential(0.5, 50.0, &[0.0, 10.0, 20.0, 30.0, 40.0]);
        zero_last.push((60.0, 0.0));
        assert!(fit_half_life(&zero_last, 5, 0.05, 1.0, 8760.0).is_none());
    }

    #[test]
    fn needs_enough_points() {
        let pts = exponential(0.8, 100.0, &[0.0, 24.0, 48.0, 72.0]);
        assert!(fit_half_life(&pts, 5, 0.05, 1.0, 8760.0).is_none());
        assert!(fit_half_life(&pts, 4, 0.05, 1.0, 8760.0).is_some());
        assert!(fit_half_life(&[], 5, 0.05, 1.0, 8760.0).is_none());
        // min_points below 2 still needs two points to define a slope.
        assert!(fit_half_life(&pts[..1], 0, 0.05, 1.0, 8760.0).is_none());
        // All at one time: no slope.
        let same_time = vec![(5.0, 0.5), (5.0, 0.4), (5.0, 0.3)];
        assert!(fit_half_life(&same_time, 2, 0.05, 1.0, 8760.0).is_none());
    }

    #[test]
    fn clamps_to_the_configured_range() {
        let fast = exponential(0.8, 0.1, &[0.0, 0.05, 0.1, 0.15, 0.2]);
        assert_eq!(fit_half_life(&fast, 5, 0.05, 1.0, 8760.0), Some(1.0));
        let slow = exponential(0.8, 1e6, &[0.0, 100.0, 200.0, 300.0, 400.0]);
        assert_eq!(fit_half_life(&slow, 5, 0.05, 1.0, 8760.0), Some(8760.0));
        // An inverted range does not panic.
        assert!(fit_half_life(&slow, 5, 0.05, 9000.0, 10.0).is_some());
    }

    #[test]
    fn ignores_non_finite_points() {
        let mut pts = exponential(0.8, 100.0, &[0.0, 24.0, 48.0, 72.0, 96.0]);
        pts.push((f64::NAN, 0.3));
        pts.push((200.0, f64::INFINITY));
        let h = fit_half_life(&pts, 5, 0.05, 1.0, 8760.0).unwrap();
        assert!((h - 100.0).abs() < 1e-9);
    }

    #[test]
    fn a_chance_decline_in_noise_gets_no_half_life() {
        // ln|edge| = ln 0.5 + alternating noise ±0.15, with a drift of −0.01 per day: the
        // slope is negative, but nowhere near significant.
        let pts: Vec<(f64, f64)> = (0..12)
            .map(|i| {
                let noise: f64 = if i % 2 == 0 { 0.15 } else { -0.15 };
                let t = 24.0 * i as f64;
                (t, 0.5 * (noise - 0.01 * i as f64).exp())
            })
            .collect();
        assert!(fit_half_life(&pts, 5, 0.05, 1.0, 8760.0).is_none());
    }

    #[test]
    fn a_clear_decline_in_noise_is_fitted() {
        // Half-life 100 h with ±0.05 alternating noise on ln|edge|: slope −ln2/100 per hour.
        let pts: Vec<(f64, f64)> = (0..10)
            .map(|i| {
                let t = 24.0 * i as f64;
                let noise: f64 = if i % 2 == 0 { 0.05 } else { -0.05 };
                (t, 0.8 * 0.5f64.powf(t / 100.0) * noise.exp())
            })
            .collect();
        let h = fit_half_life(&pts, 5, 0.05, 1.0, 8760.0).unwrap();
        assert!((h - 100.0).abs() < 10.0, "{h}");
    }

    #[test]
    fn a_smooth_wiggle_is_not_a_significant_decline() {
        // Overlapping cumulative edges drift smoothly: ln|edge| = ln 0.4 + 0.3·sin(t/50) over
        // 0–300 h rises, falls and turns again, with a negative OLS slope whose residuals are
        // long swings (lag-1 autocorrelation ≈ 0.56, n_eff ≈ 3.7 of 13): no evidence of an
        // exponential decline. A naive OLS t-test (n − 2 df) would call it significant.
        let pts: Vec<(f64, f64)> = (0..13)
            .map(|i| {
                let t = 25.0 * i as f64;
                (t, 0.4 * (0.3 * (t / 50.0).sin()).exp())
            })
            .collect();
        let fit = ols(&pts.iter().map(|&(t, e)| (t, e.ln())).collect::<Vec<_>>()).unwrap();
        let sse: f64 = fit.residuals.iter().map(|e| e * e).sum();
        let naive_t = fit.slope / (sse / (pts.len() as f64 - 2.0) / fit.sxx).sqrt();
        assert!(naive_t < -3.0, "the naive test would fit it: t = {naive_t}");
        assert!(fit_half_life(&pts, 5, 0.05, 1.0, 8760.0).is_none());
    }
}
