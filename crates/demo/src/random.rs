//! Sampling helpers on top of one seeded PCG stream. `rand` is used without `rand_distr`, so the
//! few distributions the generator needs are written out here.

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64;

/// Independent streams per concern, so that e.g. turning mess off leaves the clean trades unchanged.
#[derive(Debug, Clone, Copy)]
pub enum Stream {
    Regimes,
    Book,
    OpenCycles,
    Mess,
    Shocks,
    Packets,
}

impl Stream {
    fn salt(self) -> u64 {
        match self {
            Stream::Regimes => 0x5245_4749_4d45_0001,
            Stream::Book => 0x424f_4f4b_0000_0002,
            Stream::OpenCycles => 0x4f50_454e_0000_0003,
            Stream::Mess => 0x4d45_5353_0000_0004,
            Stream::Shocks => 0x5348_4f43_4b00_0005,
            Stream::Packets => 0x5041_434b_4554_0006,
        }
    }
}

pub struct Sampler {
    rng: Pcg64,
}

impl Sampler {
    pub fn new(seed: u64, stream: Stream) -> Self {
        Self {
            rng: Pcg64::seed_from_u64(seed ^ stream.salt()),
        }
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        self.rng.gen::<f64>()
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Uniform in [low, high).
    pub fn uniform(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Uniform integer in [low, high] (inclusive); `low` when the range is empty.
    pub fn int_between(&mut self, low: i64, high: i64) -> i64 {
        if high <= low {
            low
        } else {
            self.rng.gen_range(low..=high)
        }
    }

    /// Uniform index in [0, len); 0 when `len` is 0 (callers guard against empty ranges).
    pub fn index(&mut self, len: usize) -> usize {
        if len <= 1 {
            0
        } else {
            self.rng.gen_range(0..len)
        }
    }

    /// Index drawn with probability proportional to `weights`.
    pub fn weighted(&mut self, weights: &[f64]) -> usize {
        let total: f64 = weights.iter().sum();
        let mut target = self.unit() * total;
        for (i, w) in weights.iter().enumerate() {
            if target < *w {
                return i;
            }
            target -= w;
        }
        weights.len().saturating_sub(1)
    }

    /// Standard normal (Box–Muller; the second variate is dropped to keep the stream simple).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.unit(); // (0, 1], so ln is finite
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }

    /// Student-t with 4 degrees of freedom: fat-tailed like trade outcomes, variance 2.
    pub fn student_t4(&mut self) -> f64 {
        // χ²(4) is the sum of two exponential(1/2) draws: −2·ln(u1·u2).
        let u1 = 1.0 - self.unit();
        let u2 = 1.0 - self.unit();
        let chi2 = -2.0 * (u1 * u2).ln();
        self.normal() / (chi2 / 4.0).sqrt().max(1e-6)
    }

    /// Log-normal with the given median and log-scale spread.
    pub fn lognormal(&mut self, median: f64, sigma: f64) -> f64 {
        median * (sigma * self.normal()).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streams_are_reproducible_and_distinct() {
        let mut a = Sampler::new(7, Stream::Book);
        let mut b = Sampler::new(7, Stream::Book);
        let mut c = Sampler::new(7, Stream::Mess);
        let xs: Vec<f64> = (0..5).map(|_| a.unit()).collect();
        let ys: Vec<f64> = (0..5).map(|_| b.unit()).collect();
        let zs: Vec<f64> = (0..5).map(|_| c.unit()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn distributions_have_the_expected_moments() {
        let mut s = Sampler::new(1, Stream::Book);
        let n = 200_000;
        let t: Vec<f64> = (0..n).map(|_| s.student_t4()).collect();
        let mean = t.iter().sum::<f64>() / n as f64;
        let var = t.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.02, "{mean}");
        assert!((var - 2.0).abs() < 0.25, "{var}");
        let picks = (0..10_000).filter(|_| s.weighted(&[0.2, 0.8]) == 1).count();
        assert!((7_600..8_400).contains(&picks), "{picks}");
        assert_eq!(s.int_between(3, 3), 3);
        assert_eq!(s.index(0), 0);
    }
}
