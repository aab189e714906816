//! Regime shocks: the period is cut into stretches of several days, and every trade entered in a
//! stretch gets the same random shock added to its R, as trades of the same days share a market
//! (a squeeze, a crash). Scope does not predict the shock, so it adds no effect; it only makes
//! trades of the same days dependent, which naive tests mistake for evidence.

use crate::book::Book;
use crate::random::Sampler;
use crate::regime::SECS_PER_DAY;
use learnloop_model::Timestamp;
use serde::{Deserialize, Serialize};

/// Length of a shock period, in days (uniform between these, inclusive).
const PERIOD_DAYS: (i64, i64) = (3, 9);

/// One stretch of the period and the shock its trades share.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShockPeriod {
    /// First entry time of the stretch.
    pub start: Timestamp,
    /// End of the stretch (exclusive).
    pub end: Timestamp,
    /// R added to every trade entered in it.
    pub shock_r: f64,
}

/// `(start secs, end secs, shock)` covering [0, period); empty when `sd` is 0.
pub fn draw(sampler: &mut Sampler, period_secs: i64, sd: f64) -> Vec<(i64, i64, f64)> {
    if !(sd.is_finite() && sd > 0.0) {
        return Vec::new();
    }
    let mut periods = Vec::new();
    let mut start = 0;
    while start < period_secs {
        let days = sampler.int_between(PERIOD_DAYS.0, PERIOD_DAYS.1);
        let end = (start + days * SECS_PER_DAY).min(period_secs);
        periods.push((start, end, sd * sampler.normal()));
        start = end;
    }
    periods
}

/// Add each closed trade's shock, by its entry time.
pub fn apply(shocks: &[(i64, i64, f64)], book: &mut Book) {
    if shocks.is_empty() {
        return;
    }
    for cycle in book.cycles.iter_mut().filter(|c| c.closed) {
        let i = shocks.partition_point(|&(_, end, _)| end <= cycle.entry_secs);
        if let Some(&(_, _, shock)) = shocks.get(i) {
            cycle.rr += shock;
        }
    }
}

pub fn to_truth(shocks: &[(i64, i64, f64)], start_ms: i64) -> Vec<ShockPeriod> {
    shocks
        .iter()
        .map(|&(start, end, shock)| ShockPeriod {
            start: Timestamp::from_millis(start_ms + start * 1000),
            end: Timestamp::from_millis(start_ms + end * 1000),
            shock_r: (shock * 1e6).round() / 1e6,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Stream;

    #[test]
    fn periods_tile_the_period_and_have_the_asked_spread() {
        let mut s = Sampler::new(3, Stream::Shocks);
        let period = 2000 * SECS_PER_DAY;
        let shocks = draw(&mut s, period, 0.4);
        assert_eq!(shocks[0].0, 0);
        assert_eq!(shocks.last().unwrap().1, period);
        assert!(shocks.windows(2).all(|w| w[0].1 == w[1].0));
        assert!(shocks
            .iter()
            .all(|&(a, b, _)| b - a <= PERIOD_DAYS.1 * SECS_PER_DAY && b > a));
        let n = shocks.len() as f64;
        let mean = shocks.iter().map(|p| p.2).sum::<f64>() / n;
        let sd = (shocks.iter().map(|p| (p.2 - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
        // ~330 periods: the sample sd is within ~4 standard errors (0.4/√(2·330) ≈ 0.016).
        assert!((sd - 0.4).abs() < 0.07, "sd {sd}");
        assert!(draw(&mut s, period, 0.0).is_empty());
    }
}
