//! Stationary bootstrap (Politis & Romano, 1994) for a daily series.
//!
//! Resamples keep the serial dependence of the series: a resample is a concatenation of blocks of
//! consecutive days whose lengths are geometric with mean `mean_block_len`, each block starting at
//! a uniformly drawn day and wrapping around the end of the series. The confidence interval is the
//! percentile interval of the statistic over the resamples.
//!
//! Deterministic: the shared SplitMix64 generator, seeded by the caller, drives every draw, so the
//! same inputs always give the same interval (no external RNG crate).

use learnloop_model::rng::SplitMix64;

/// The statistic whose sampling distribution is bootstrapped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Statistic {
    /// Sum of the series (e.g. total uplift in R over the replay).
    Sum,
    /// Arithmetic mean of the series (e.g. mean daily uplift in R).
    Mean,
}

impl Statistic {
    fn of(self, values: &[f64]) -> f64 {
        let sum: f64 = values.iter().sum();
        match self {
            Statistic::Sum => sum,
            Statistic::Mean => sum / values.len() as f64,
        }
    }
}

/// Default mean block length for a series of `n` days: `n^(1/3)`, at least 1.
///
/// The cube-root rate is the optimal order for the block length of block bootstraps of a mean;
/// it gives ~4 days for a quarter, ~7 for a year and ~10 for three years.
pub fn default_block_len(n: usize) -> f64 {
    (n as f64).cbrt().max(1.0)
}

/// How a stationary-bootstrap interval is drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bootstrap {
    /// Mean of the geometric block lengths, in days (values below 1 or not finite are treated
    /// as 1, i.e. the i.i.d. bootstrap); see [`default_block_len`].
    pub mean_block_len: f64,
    /// Number of resamples.
    pub resamples: usize,
    /// The same seed gives the same interval.
    pub seed: u64,
    /// Coverage, e.g. `0.95` for the 2.5 % and 97.5 % percentiles (linear interpolation between
    /// order statistics).
    pub level: f64,
}

/// Percentile confidence interval `(low, high)` of `stat` of `series`, from `spec.resamples`
/// stationary-bootstrap resamples of the same length as the series.
///
/// Returns `None` for an empty series, for `resamples == 0`, and for a `level` outside (0, 1).
/// Non-finite values in the series propagate into the statistic (the caller should not pass them).
pub fn stationary_bootstrap_ci(
    series: &[f64],
    spec: &Bootstrap,
    stat: Statistic,
) -> Option<(f64, f64)> {
    let Bootstrap {
        mean_block_len,
        resamples,
        seed,
        level,
    } = *spec;
    let n = series.len();
    if n == 0 || resamples == 0 || !(level > 0.0 && level < 1.0) {
        return None;
    }
    let block_len = if mean_block_len.is_finite() && mean_block_len >= 1.0 {
        mean_block_len
    } else {
        1.0
    };
    // Probability of starting a new block at each position after the first.
    let p_new_block = 1.0 / block_len;

    let mut rng = SplitMix64::new(seed);
    let mut resample = vec![0.0; n];
    let mut stats = Vec::with_capacity(resamples);
    for _ in 0..resamples {
        let mut idx = rng.below(n);
        for (k, slot) in resample.iter_mut().enumerate() {
            if k > 0 {
                idx = if rng.next_f64() < p_new_block {
                    rng.below(n)
                } else {
                    (idx + 1) % n
                };
            }
            *slot = series[idx];
        }
        stats.push(stat.of(&resample));
    }
    stats.sort_by(f64::total_cmp);

    let alpha = (1.0 - level) / 2.0;
    Some((
        quantile_sorted(&stats, alpha),
        quantile_sorted(&stats, 1.0 - alpha),
    ))
}

/// Quantile `q` in [0, 1] of an ascending, non-empty slice (linear interpolation between order
/// statistics, "type 7").
fn quantile_sorted(sorted: &[f64], q: f64) -> f64 {
    let h = (sorted.len() - 1) as f64 * q.clamp(0.0, 1.0);
    let lo = h.floor() as usize;
    let hi = (lo + 1).min(sorted.len() - 1);
    let frac = h - lo as f64;
    if frac == 0.0 || lo == hi {
        sorted[lo]
    } else {
        sorted[lo] + frac * (sorted[hi] - sorted[lo])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Standard normal draws by Box–Muller from the module's PRNG.
    fn normal_series(n: usize, seed: u64) -> Vec<f64> {
        let mut rng = SplitMix64::new(seed);
        let mut out = Vec::with_capacity(n);
        while out.len() < n {
            // 1 - u is in (0, 1], so the logarithm is finite.
            let u1 = 1.0 - rng.next_f64();
            let u2 = rng.next_f64();
            let r = (-2.0 * u1.ln()).sqrt();
            let theta = 2.0 * std::f64::consts::PI * u2;
            out.push(r * theta.cos());
            if out.len() < n {
                out.push(r * theta.sin());
            }
        }
        out
    }

    #[test]
    fn empty_series_and_bad_arguments_give_none() {
        let spec = |resamples: usize, level: f64| Bootstrap {
            mean_block_len: 3.0,
            resamples,
            seed: 1,
            level,
        };
        let cases: [(&[f64], Bootstrap); 4] = [
            (&[], spec(1000, 0.95)),
            (&[1.0], spec(0, 0.95)),
            (&[1.0], spec(10, 1.0)),
            (&[1.0], spec(10, f64::NAN)),
        ];
        for (series, bootstrap) in &cases {
            assert_eq!(
                stationary_bootstrap_ci(series, bootstrap, Statistic::Mean),
                None,
                "{series:?} {bootstrap:?}"
            );
        }
    }

    #[test]
    fn constant_series_gives_degenerate_interval() {
        let series = vec![0.25; 90];
        let spec = Bootstrap {
            mean_block_len: 4.0,
            resamples: 500,
            seed: 7,
            level: 0.95,
        };
        for (statistic, value, tolerance) in
            [(Statistic::Mean, 0.25, 1e-12), (Statistic::Sum, 22.5, 1e-9)]
        {
            let (lo, hi) = stationary_bootstrap_ci(&series, &spec, statistic).unwrap();
            assert!(
                (lo - value).abs() < tolerance && (hi - value).abs() < tolerance,
                "{lo} {hi}"
            );
        }
    }

    #[test]
    fn single_value_series() {
        let (lo, hi) = stationary_bootstrap_ci(
            &[-1.5],
            &Bootstrap {
                mean_block_len: 1.0,
                resamples: 100,
                seed: 3,
                level: 0.9,
            },
            Statistic::Sum,
        )
        .unwrap();
        assert_eq!((lo, hi), (-1.5, -1.5));
    }

    #[test]
    fn iid_normal_mean_interval_covers_zero_with_expected_width() {
        let n = 500;
        let series = normal_series(n, 42);
        let (lo, hi) = stationary_bootstrap_ci(
            &series,
            &Bootstrap {
                mean_block_len: default_block_len(n),
                resamples: 4000,
                seed: 11,
                level: 0.95,
            },
            Statistic::Mean,
        )
        .unwrap();
        assert!(lo < 0.0 && hi > 0.0, "interval [{lo}, {hi}] should cover 0");
        let expected = 2.0 * 1.96 / (n as f64).sqrt();
        let width = hi - lo;
        assert!(
            (width / expected - 1.0).abs() < 0.3,
            "width {width} vs expected {expected}"
        );
    }

    #[test]
    fn sum_interval_is_n_times_mean_interval() {
        let series = normal_series(200, 5);
        let spec = Bootstrap {
            mean_block_len: 5.0,
            resamples: 999,
            seed: 9,
            level: 0.95,
        };
        let (ml, mh) = stationary_bootstrap_ci(&series, &spec, Statistic::Mean).unwrap();
        let (sl, sh) = stationary_bootstrap_ci(&series, &spec, Statistic::Sum).unwrap();
        assert!((sl - 200.0 * ml).abs() < 1e-9 && (sh - 200.0 * mh).abs() < 1e-9);
    }

    #[test]
    fn shifted_series_interval_excludes_zero() {
        let series: Vec<f64> = normal_series(250, 8)
            .iter()
            .map(|z| 1.0 + 0.1 * z)
            .collect();
        let (lo, hi) = stationary_bootstrap_ci(
            &series,
            &Bootstrap {
                mean_block_len: default_block_len(series.len()),
                resamples: 2000,
                seed: 13,
                level: 0.95,
            },
            Statistic::Mean,
        )
        .unwrap();
        assert!(lo > 0.0, "interval [{lo}, {hi}] should exclude 0");
        assert!(lo < 1.0 && hi > 1.0, "interval [{lo}, {hi}] should cover 1");
    }

    #[test]
    fn blocks_widen_the_interval_of_an_autocorrelated_series() {
        // AR(1) with phi = 0.8: the variance of the mean is ~(1 + phi)/(1 - phi) = 9 times the
        // i.i.d. one, which an i.i.d. bootstrap (block length 1) misses and blocks partly recover.
        let noise = normal_series(1000, 21);
        let mut series = Vec::with_capacity(noise.len());
        let mut x = 0.0;
        for z in noise {
            x = 0.8 * x + z;
            series.push(x);
        }
        let width = |block: f64| {
            let (lo, hi) = stationary_bootstrap_ci(
                &series,
                &Bootstrap {
                    mean_block_len: block,
                    resamples: 2000,
                    seed: 4,
                    level: 0.95,
                },
                Statistic::Mean,
            )
            .unwrap();
            hi - lo
        };
        assert!(
            width(20.0) > 1.8 * width(1.0),
            "{} vs {}",
            width(20.0),
            width(1.0)
        );
    }

    #[test]
    fn deterministic_for_a_seed() {
        let series = normal_series(300, 99);
        let spec = Bootstrap {
            mean_block_len: 6.0,
            resamples: 1000,
            seed: 2024,
            level: 0.9,
        };
        let a = stationary_bootstrap_ci(&series, &spec, Statistic::Sum);
        let b = stationary_bootstrap_ci(&series, &spec, Statistic::Sum);
        assert_eq!(a, b);
        let other_seed = Bootstrap { seed: 2025, ..spec };
        let c = stationary_bootstrap_ci(&series, &other_seed, Statistic::Sum);
        assert_ne!(a, c);
    }

    #[test]
    fn default_block_len_is_cube_root_at_least_one() {
        assert_eq!(default_block_len(0), 1.0);
        assert_eq!(default_block_len(1), 1.0);
        assert!((default_block_len(1000) - 10.0).abs() < 1e-12);
        assert!((default_block_len(365) - 365f64.cbrt()).abs() < 1e-12);
    }

    #[test]
    fn prng_uniforms_are_in_range_and_spread() {
        let mut rng = SplitMix64::new(0);
        let mut counts = [0usize; 10];
        for _ in 0..10_000 {
            let u = rng.next_f64();
            assert!((0.0..1.0).contains(&u));
            counts[rng.below(10)] += 1;
        }
        assert!(
            counts.iter().all(|&c| (800..1200).contains(&c)),
            "{counts:?}"
        );
    }
}
