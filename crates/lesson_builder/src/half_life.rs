//! Half-life of a lesson's edge, from its history of shrunk edges.

/// Fit the half-life, in hours, of an edge that decays exponentially toward zero.
///
/// `points` are `(time in hours, shrunk edge)` in any order (they are sorted by time here). The fit
/// uses the most recent contiguous run of points sharing the sign of the latest point: an edge
/// that flipped sign is a different effect, and only its current stretch says how fast *it*
/// fades. Zero edges have no sign and end a run; non-finite points are ignored.
///
/// With at least `max(min_points, 2)` points in that run, ordinary least squares of
/// `ln|edge|` on time gives a slope b; if `b < 0` the half-life is `ln 2 / −b`, clamped to
/// `[clamp_min_h, clamp_max_h]`. A flat or growing edge (b ≥ 0), a run that is too short, or a
/// run whose points all share one time returns `None`.
pub fn fit_half_life(
    points: &[(f64, f64)],
    min_points: usize,
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
    if run_len < min_points.max(2) {
        return None;
    }
    let run = &pts[pts.len() - run_len..];
    let slope = ols_slope(run.iter().map(|&(t, e)| (t, e.abs().ln())))?;
    if slope.is_nan() || slope >= 0.0 {
        return None;
    }
    // max/min rather than f64::clamp, which panics on an inverted or NaN range.
    let hours = std::f64::consts::LN_2 / -slope;
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

/// Least-squares slope `Σ(x − x̄)(y − ȳ) / Σ(x − x̄)²`, centred so that epoch-sized times
/// (~5·10⁵ hours) lose no precision. `None` when x does not vary.
fn ols_slope(xy: impl Iterator<Item = (f64, f64)> + Clone) -> Option<f64> {
    let (n, sx, sy) = xy.clone().fold((0.0, 0.0, 0.0), |(n, sx, sy), (x, y)| {
        (n + 1.0, sx + x, sy + y)
    });
    if n < 2.0 {
        return None;
    }
    let (mx, my) = (sx / n, sy / n);
    let (sxx, sxy) = xy.fold((0.0, 0.0), |(sxx, sxy), (x, y)| {
        let dx = x - mx;
        (sxx + dx * dx, sxy + dx * (y - my))
    });
    (sxx > 0.0).then(|| sxy / sxx)
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
        let h = fit_half_life(&pts, 5, 1.0, 8760.0).unwrap();
        assert!((h - 100.0).abs() < 1e-9, "{h}");
        // Negative edges decay the same way; order of input does not matter.
        let mut neg: Vec<(f64, f64)> = pts.iter().map(|&(t, e)| (t, -e)).collect();
        neg.reverse();
        let h = fit_half_life(&neg, 5, 1.0, 8760.0).unwrap();
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
        let h = fit_half_life(&pts, 5, 1.0, 8760.0).unwrap();
        assert!((h - 250.0).abs() < 1e-6, "{h}");
    }

    #[test]
    fn growing_or_flat_edges_have_no_half_life() {
        let growing: Vec<(f64, f64)> = (0..6)
            .map(|i| (i as f64 * 24.0, 0.1 + 0.05 * i as f64))
            .collect();
        assert!(fit_half_life(&growing, 5, 1.0, 8760.0).is_none());
        let flat: Vec<(f64, f64)> = (0..6).map(|i| (i as f64 * 24.0, 0.2)).collect();
        assert!(fit_half_life(&flat, 5, 1.0, 8760.0).is_none());
    }

    #[test]
    fn uses_the_latest_run_of_one_sign() {
        // Three negative points, then six positive ones decaying with half-life 50 h: the fit
        // sees only the positive run.
        let mut pts = vec![(-72.0, -0.4), (-48.0, -0.3), (-24.0, -0.2)];
        pts.extend(exponential(0.5, 50.0, &[0.0, 10.0, 20.0, 30.0, 40.0, 50.0]));
        let h = fit_half_life(&pts, 5, 1.0, 8760.0).unwrap();
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
        assert!(fit_half_life(&mixed, 5, 1.0, 8760.0).is_none());
        // A zero edge ends a run, and a zero latest edge has no sign at all.
        let mut zero_last = exponential(0.5, 50.0, &[0.0, 10.0, 20.0, 30.0, 40.0]);
        zero_last.push((60.0, 0.0));
        assert!(fit_half_life(&zero_last, 5, 1.0, 8760.0).is_none());
    }

    #[test]
    fn needs_enough_points() {
        let pts = exponential(0.8, 100.0, &[0.0, 24.0, 48.0, 72.0]);
        assert!(fit_half_life(&pts, 5, 1.0, 8760.0).is_none());
        assert!(fit_half_life(&pts, 4, 1.0, 8760.0).is_some());
        assert!(fit_half_life(&[], 5, 1.0, 8760.0).is_none());
        // min_points below 2 still needs two points to define a slope.
        assert!(fit_half_life(&pts[..1], 0, 1.0, 8760.0).is_none());
        // All at one time: no slope.
        let same_time = vec![(5.0, 0.5), (5.0, 0.4), (5.0, 0.3)];
        assert!(fit_half_life(&same_time, 2, 1.0, 8760.0).is_none());
    }

    #[test]
    fn clamps_to_the_configured_range() {
        let fast = exponential(0.8, 0.1, &[0.0, 0.05, 0.1, 0.15, 0.2]);
        assert_eq!(fit_half_life(&fast, 5, 1.0, 8760.0), Some(1.0));
        let slow = exponential(0.8, 1e6, &[0.0, 100.0, 200.0, 300.0, 400.0]);
        assert_eq!(fit_half_life(&slow, 5, 1.0, 8760.0), Some(8760.0));
        // An inverted range does not panic.
        assert!(fit_half_life(&slow, 5, 9000.0, 10.0).is_some());
    }

    #[test]
    fn ignores_non_finite_points() {
        let mut pts = exponential(0.8, 100.0, &[0.0, 24.0, 48.0, 72.0, 96.0]);
        pts.push((f64::NAN, 0.3));
        pts.push((200.0, f64::INFINITY));
        let h = fit_half_life(&pts, 5, 1.0, 8760.0).unwrap();
        assert!((h - 100.0).abs() < 1e-9);
    }
}
