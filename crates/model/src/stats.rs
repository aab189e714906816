//! Mergeable, numerically stable accumulators (Welford updates, Chan merges).

use crate::time::Timestamp;

/// Count, mean and sum of squared deviations of an unweighted sample.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct RunningStats {
    /// Observations.
    pub n: u64,
    /// Their mean.
    pub mean: f64,
    /// Sum of squared deviations from the mean.
    pub m2: f64,
}

impl RunningStats {
    /// Add one observation (Welford's update).
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Chan et al.'s pairwise merge.
    pub fn merge(&mut self, other: &RunningStats) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        let (na, nb, nf) = (self.n as f64, other.n as f64, n as f64);
        self.mean += delta * nb / nf;
        self.m2 += other.m2 + delta * delta * na * nb / nf;
        self.n = n;
    }

    /// Sample variance (n − 1 denominator); `None` below two observations.
    pub fn sample_variance(&self) -> Option<f64> {
        (self.n >= 2).then(|| (self.m2 / (self.n - 1) as f64).max(0.0))
    }
}

/// Weighted mean and M2 (West's algorithm), with Σw and Σw² for the effective sample size.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WeightedStats {
    /// Sum of weights.
    pub w: f64,
    /// Sum of squared weights (Kish's effective size is `w² / w2`).
    pub w2: f64,
    /// Weighted mean.
    pub mean: f64,
    /// Weighted sum of squared deviations.
    pub m2: f64,
}

impl WeightedStats {
    /// Add one observation of `weight` (West's update); non-positive weights are ignored.
    pub fn push(&mut self, x: f64, weight: f64) {
        if weight <= 0.0 {
            return;
        }
        self.w += weight;
        self.w2 += weight * weight;
        let delta = x - self.mean;
        self.mean += delta * weight / self.w;
        self.m2 += weight * delta * (x - self.mean);
    }

    /// Merge the statistics of a disjoint sample (Chan's weighted merge).
    pub fn merge(&mut self, other: &WeightedStats) {
        if other.w <= 0.0 {
            return;
        }
        if self.w <= 0.0 {
            *self = *other;
            return;
        }
        let w = self.w + other.w;
        let delta = other.mean - self.mean;
        self.mean += delta * other.w / w;
        self.m2 += other.m2 + delta * delta * self.w * other.w / w;
        self.w = w;
        self.w2 += other.w2;
    }

    /// Multiply every weight by `factor` (e.g. `0.5^(Δt/half_life)` when the as-of time moves on):
    /// the mean is unchanged, Σw and M2 scale by `factor`, Σw² by its square.
    pub fn rescale(&mut self, factor: f64) {
        self.w *= factor;
        self.w2 *= factor * factor;
        self.m2 *= factor;
    }

    /// Kish's effective sample size (Σw)²/Σw².
    pub fn effective_n(&self) -> f64 {
        if self.w2 > 0.0 {
            self.w * self.w / self.w2
        } else {
            0.0
        }
    }

    /// Unbiased variance with reliability weights: M2 / (Σw − Σw²/Σw).
    pub fn variance(&self) -> Option<f64> {
        if self.w <= 0.0 {
            return None;
        }
        let denom = self.w - self.w2 / self.w;
        (denom > 0.0).then(|| (self.m2 / denom).max(0.0))
    }
}

/// Decay weight of an observation `age_hours` old: `0.5^(age/half_life)`; future ages count as 0.
pub fn decay_weight(age_hours: f64, half_life_hours: f64) -> f64 {
    0.5f64.powf(age_hours.max(0.0) / half_life_hours)
}

/// One trade's outcome as the statistics see it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TradeOutcome {
    /// Winsorized R multiple.
    pub r: f64,
    /// Profit or loss in US dollars, when reported.
    pub pnl_usd: Option<f64>,
    /// Holding time in days, when reported.
    pub hold_days: Option<f64>,
    /// Hours from entry to S3, when reported (time efficiency).
    pub time_to_s3: Option<f64>,
    /// When the trade closed (decay and first/last exit).
    pub exit_at: Timestamp,
}

impl TradeOutcome {
    /// `1 / (1 + time_to_s3)`; trades that never reached S3 carry no time efficiency.
    pub fn time_efficiency(&self) -> Option<f64> {
        self.time_to_s3
            .filter(|t| t.is_finite() && *t >= 0.0)
            .map(|t| 1.0 / (1.0 + t))
    }
}

/// What folding a trade into a row reads, resolved once per trade rather than once per row: the
/// aggregate folds each trade into hundreds of subsets, and each fold would otherwise filter the
/// PnL, recompute `1 / (1 + time_to_s3)` and look the decay weight up apart.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FoldTrade {
    r: f64,
    /// The reported PnL, 0 when absent or not finite.
    pnl: f64,
    hold_days: Option<f64>,
    time_eff: Option<f64>,
    exit_at: Timestamp,
    weight: f64,
}

impl FoldTrade {
    /// `t`'s figures as a fold reads them, with its decay weight.
    pub fn new(t: &TradeOutcome, weight: f64) -> Self {
        Self {
            r: t.r,
            pnl: t.pnl_usd.filter(|p| p.is_finite()).unwrap_or(0.0),
            hold_days: t.hold_days,
            time_eff: t.time_efficiency(),
            exit_at: t.exit_at,
            weight,
        }
    }
}

/// Mean of the values that are present, mergeable.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct PresentMean {
    /// Values present.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
}

impl PresentMean {
    /// Add a value, if present and finite.
    pub fn push(&mut self, v: Option<f64>) {
        if let Some(v) = v.filter(|v| v.is_finite()) {
            self.count += 1;
            self.sum += v;
        }
    }

    /// Merge another set of values.
    pub fn merge(&mut self, o: &PresentMean) {
        self.count += o.count;
        self.sum += o.sum;
    }

    /// The mean of the present values; `None` when there were none.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }
}

/// Everything a `pattern_scope_stats` row holds, one observation per trade.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OutcomeStats {
    /// Actions behind the row's trades (a trade counts once however many actions it had).
    pub n_actions: u64,
    /// Winsorized R, one observation per trade.
    pub r: RunningStats,
    /// Trades with R > 0.
    pub wins: u64,
    /// Sum of reported PnL (USD).
    pub sum_pnl: f64,
    /// Mean holding time, over trades that report it.
    pub hold_days: PresentMean,
    /// Mean time efficiency `1 / (1 + time_to_s3)`, over trades that reached S3.
    pub time_eff: PresentMean,
    /// Earliest exit among the trades.
    pub first_exit: Option<Timestamp>,
    /// Latest exit among the trades.
    pub last_exit: Option<Timestamp>,
    /// R weighted by decay toward the as-of time (`decay_weight`).
    pub decayed: WeightedStats,
}

impl OutcomeStats {
    /// Trades behind the row (one observation each).
    pub fn n_trades(&self) -> u64 {
        self.r.n
    }

    /// Add one trade that `n_actions` actions of this row share; `weight` is its decay weight.
    pub fn push_trade(&mut self, t: &TradeOutcome, n_actions: u64, weight: f64) {
        self.push_fold(&FoldTrade::new(t, weight), n_actions);
    }

    /// [`Self::push_trade`] with the trade's figures resolved beforehand (see [`FoldTrade`]).
    pub fn push_fold(&mut self, t: &FoldTrade, n_actions: u64) {
        self.n_actions += n_actions;
        self.r.push(t.r);
        if t.r > 0.0 {
            self.wins += 1;
        }
        self.sum_pnl += t.pnl;
        self.hold_days.push(t.hold_days);
        self.time_eff.push(t.time_eff);
        self.first_exit = Some(self.first_exit.map_or(t.exit_at, |f| f.min(t.exit_at)));
        self.last_exit = Some(self.last_exit.map_or(t.exit_at, |l| l.max(t.exit_at)));
        self.decayed.push(t.r, t.weight);
    }

    /// Merge statistics of a disjoint set of trades.
    pub fn merge(&mut self, o: &OutcomeStats) {
        self.n_actions += o.n_actions;
        self.r.merge(&o.r);
        self.wins += o.wins;
        self.sum_pnl += o.sum_pnl;
        self.hold_days.merge(&o.hold_days);
        self.time_eff.merge(&o.time_eff);
        self.first_exit = match (self.first_exit, o.first_exit) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
        self.last_exit = match (self.last_exit, o.last_exit) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        self.decayed.merge(&o.decayed);
    }

    /// Share of trades with R > 0 (0 without trades).
    pub fn win_rate(&self) -> f64 {
        if self.r.n == 0 {
            0.0
        } else {
            self.wins as f64 / self.r.n as f64
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        let scale = a.abs().max(b.abs()).max(1.0);
        (a - b).abs() <= 1e-9 * scale
    }

    #[test]
    fn hand_computed_sample() {
        let mut s = RunningStats::default();
        for x in [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0] {
            s.push(x);
        }
        assert_eq!(s.n, 8);
        assert!(close(s.mean, 5.0));
        assert!(close(s.m2, 32.0));
        assert!(close(s.sample_variance().unwrap(), 32.0 / 7.0));
    }

    #[test]
    fn stable_for_large_offsets() {
        // Σx² − n·mean² would lose every digit here.
        let mut s = RunningStats::default();
        for x in [1e9 + 4.0, 1e9 + 7.0, 1e9 + 13.0, 1e9 + 16.0] {
            s.push(x);
        }
        assert!(close(s.sample_variance().unwrap(), 30.0));
    }

    #[test]
    fn weighted_hand_computed_and_effective_n() {
        let mut w = WeightedStats::default();
        w.push(1.0, 1.0);
        w.push(3.0, 3.0);
        assert!(close(w.mean, 2.5));
        // M2 = 1·(1−2.5)² + 3·(3−2.5)² = 2.25 + 0.75
        assert!(close(w.m2, 3.0));
        assert!(close(w.effective_n(), 16.0 / 10.0));
        assert!(close(w.variance().unwrap(), 3.0 / (4.0 - 10.0 / 4.0)));
    }

    #[test]
    fn decay_weight_halves_per_half_life() {
        assert!(close(decay_weight(0.0, 24.0), 1.0));
        assert!(close(decay_weight(24.0, 24.0), 0.5));
        assert!(close(decay_weight(72.0, 24.0), 0.125));
        assert!(close(decay_weight(-5.0, 24.0), 1.0));
    }

    fn outcome(r: f64, i: usize) -> TradeOutcome {
        TradeOutcome {
            r,
            pnl_usd: (!i.is_multiple_of(3)).then_some(r * 100.0),
            hold_days: Some(i as f64 * 0.5),
            time_to_s3: i.is_multiple_of(2).then_some(i as f64),
            exit_at: Timestamp((i as i64 * 7919) % 1000 * 3_600_000),
        }
    }

    fn assert_same(a: &OutcomeStats, b: &OutcomeStats) {
        assert_eq!(a.n_trades(), b.n_trades());
        assert_eq!(a.n_actions, b.n_actions);
        assert_eq!(a.wins, b.wins);
        assert_eq!((a.first_exit, a.last_exit), (b.first_exit, b.last_exit));
        assert_eq!(
            (a.hold_days.count, a.time_eff.count),
            (b.hold_days.count, b.time_eff.count)
        );
        for (x, y) in [
            (a.r.mean, b.r.mean),
            (a.r.m2, b.r.m2),
            (a.sum_pnl, b.sum_pnl),
            (a.hold_days.sum, b.hold_days.sum),
            (a.time_eff.sum, b.time_eff.sum),
            (a.decayed.w, b.decayed.w),
            (a.decayed.w2, b.decayed.w2),
            (a.decayed.mean, b.decayed.mean),
            (a.decayed.m2, b.decayed.m2),
        ] {
            assert!(close(x, y), "{x} vs {y}");
        }
    }

    proptest! {
        #[test]
        fn merging_any_split_equals_one_pass(
            rs in prop::collection::vec(-10.0f64..10.0, 1..80),
            cuts in prop::collection::vec(0usize..80, 0..5),
        ) {
            let weight = |i: usize| decay_weight((i % 17) as f64 * 13.0, 90.0 * 24.0);
            let mut one = OutcomeStats::default();
            for (i, r) in rs.iter().enumerate() {
                one.push_trade(&outcome(*r, i), 1 + (i % 3) as u64, weight(i));
            }
            let mut bounds: Vec<usize> = cuts.into_iter().map(|c| c % (rs.len() + 1)).collect();
            bounds.push(0);
            bounds.push(rs.len());
            bounds.sort_unstable();
            let mut merged = OutcomeStats::default();
            for w in bounds.windows(2) {
                let mut part = OutcomeStats::default();
                for (i, r) in rs.iter().enumerate().take(w[1]).skip(w[0]) {
                    part.push_trade(&outcome(*r, i), 1 + (i % 3) as u64, weight(i));
                }
                merged.merge(&part);
            }
            assert_same(&one, &merged);
        }

        #[test]
        fn rescaling_equals_reweighting(
            rs in prop::collection::vec(-10.0f64..10.0, 1..50),
            shift in 0.0f64..500.0,
        ) {
            let hl = 240.0;
            let mut early = WeightedStats::default();
            let mut late = WeightedStats::default();
            for (i, r) in rs.iter().enumerate() {
                let age = i as f64 * 5.0;
                early.push(*r, decay_weight(age, hl));
                late.push(*r, decay_weight(age + shift, hl));
            }
            early.rescale(decay_weight(shift, hl));
            prop_assert!(close(early.w, late.w));
            prop_assert!(close(early.w2, late.w2));
            prop_assert!(close(early.mean, late.mean));
            prop_assert!(close(early.m2, late.m2));
        }
    }
}
