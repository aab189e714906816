//! Contrasts of two disjoint samples (a subset against the rest of its parent) whose observations
//! are dependent within time clusters (trades of the same week share the market).
//!
//! The contrast is the coefficient of a dummy `D = 1{a}` in a least-squares regression with
//! cluster-robust standard errors (Liang–Zeger sandwich with the CR1 small-sample factor
//! `G/(G−1)·(N−1)/(N−K)`, K = 2, as Stata's `vce(cluster)`), and the tail is Student's t with
//! `G − 1` degrees of freedom (Cameron, Gelbach & Miller 2008; Cameron & Miller 2015):
//!
//! - **within** clusters (cluster fixed effects): `y = α_g + β·D + ε`. Each cluster holding both
//!   samples contributes the difference of its two means, weighted by `n_a·n_b/n_g`; a shock common
//!   to a cluster cancels. Used when at least `min_within` clusters hold both samples.
//! - **between** clusters otherwise: `y = α + β·D + ε`, β the raw difference of the means; a shock
//!   common to a cluster is part of each cluster's score, so the standard error carries it. The
//!   degrees of freedom are those of the side with fewer clusters, `min(G_a, G_b) − 1`: with few
//!   "treated" clusters CR1 over-rejects (MacKinnon & Webb 2017), and this is the conservative end.
//!
//! Everything is computed from per-cluster counts and sums: the scores are linear in them.

use crate::means::student_t_sf;

const MS_PER_DAY: i64 = 86_400_000;
/// 1970-01-05, the first Monday after the Unix epoch: periods of 7 days are ISO weeks.
const FIRST_MONDAY_MS: i64 = 4 * MS_PER_DAY;

/// The time cluster of an instant (Unix milliseconds): consecutive periods of `days` days counted
/// from a Monday, so `days = 7` is the ISO week (Monday 00:00 UTC to Sunday). `days = 0` counts as 1.
pub fn time_cluster(millis: i64, days: u32) -> i64 {
    (millis - FIRST_MONDAY_MS).div_euclid(MS_PER_DAY * i64::from(days.max(1)))
}

/// One time cluster's share of two disjoint samples `a` and `b`: count and sum of each.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct ClusterCell {
    /// Observations of `a` in the cluster.
    pub n_a: u32,
    /// Their sum.
    pub sum_a: f64,
    /// Observations of `b` in the cluster.
    pub n_b: u32,
    /// Their sum.
    pub sum_b: f64,
}

/// Which regression the contrast came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ContrastKind {
    /// Cluster fixed effects: the gap within clusters that hold both samples.
    Within,
    /// The raw gap, with the cluster shocks in its standard error.
    Between,
}

impl ContrastKind {
    /// The text recorded in `lesson_candidates.contrast`.
    pub fn as_str(self) -> &'static str {
        match self {
            ContrastKind::Within => "within",
            ContrastKind::Between => "between",
        }
    }
}

/// A cluster-robust contrast of `a` against `b`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Contrast {
    /// `mean(a) − mean(b)` over all their observations.
    pub gap: f64,
    /// What is tested: the within-cluster gap (fixed effects) or `gap`.
    pub estimate: f64,
    /// Its cluster-robust (CR1) standard error.
    pub se: f64,
    /// `estimate / se`.
    pub t: f64,
    /// Degrees of freedom: clusters − 1.
    pub df: f64,
    /// `P(|T| ≥ |t|)` under t(df), via the upper tail `sf`.
    pub p_two_sided: f64,
    /// Within or between clusters.
    pub kind: ContrastKind,
    /// Clusters whose scores enter the variance.
    pub clusters: u32,
}

/// Totals of a slice of cells.
#[derive(Debug, Clone, Copy, Default)]
struct Totals {
    n_a: f64,
    sum_a: f64,
    n_b: f64,
    sum_b: f64,
    clusters_a: u32,
    clusters_b: u32,
    clusters_both: u32,
    clusters_any: u32,
}

fn totals<'c>(cells: impl IntoIterator<Item = &'c ClusterCell>) -> Totals {
    let mut t = Totals::default();
    for c in cells {
        t.n_a += f64::from(c.n_a);
        t.sum_a += c.sum_a;
        t.n_b += f64::from(c.n_b);
        t.sum_b += c.sum_b;
        t.clusters_a += u32::from(c.n_a > 0);
        t.clusters_b += u32::from(c.n_b > 0);
        t.clusters_both += u32::from(c.n_a > 0 && c.n_b > 0);
        t.clusters_any += u32::from(c.n_a > 0 || c.n_b > 0);
    }
    t
}

/// The contrast of `a` against `b` over `cells` (one per cluster, in any order): within clusters
/// when at least `min_within` (and at least 2) clusters hold both samples, else between clusters.
///
/// `None` when it is undefined: an empty side, fewer than 2 clusters on a side (between: df = 0),
/// N ≤ 2, a non-finite sum, or no spread at all (se = 0 with a zero estimate). With se = 0 and a
/// non-zero estimate the difference is certain: t = ±∞, p = 0.
pub fn cluster_contrast(cells: &[ClusterCell], min_within: u32) -> Option<Contrast> {
    let all = totals(cells);
    if all.n_a < 1.0 || all.n_b < 1.0 || !(all.sum_a.is_finite() && all.sum_b.is_finite()) {
        return None;
    }
    let gap = all.sum_a / all.n_a - all.sum_b / all.n_b;
    if all.clusters_both >= min_within.max(2) {
        within(cells, gap)
    } else {
        between(cells, &all, gap)
    }
}

/// CR1 factor `G/(G−1)·(N−1)/(N−K)` with K = 2.
fn cr1(clusters: u32, n: f64) -> Option<f64> {
    let g = f64::from(clusters);
    (clusters >= 2 && n > 2.0).then(|| g / (g - 1.0) * (n - 1.0) / (n - 2.0))
}

fn between(cells: &[ClusterCell], all: &Totals, gap: f64) -> Option<Contrast> {
    let df_clusters = all.clusters_a.min(all.clusters_b);
    if df_clusters < 2 {
        return None;
    }
    let (mean_a, mean_b) = (all.sum_a / all.n_a, all.sum_b / all.n_b);
    // The score of cluster g for β = mean_a − mean_b: its residuals' share of each mean.
    let meat: f64 = cells
        .iter()
        .map(|c| {
            let s = (c.sum_a - f64::from(c.n_a) * mean_a) / all.n_a
                - (c.sum_b - f64::from(c.n_b) * mean_b) / all.n_b;
            s * s
        })
        .sum();
    let factor = cr1(all.clusters_any, all.n_a + all.n_b)?;
    finish(
        gap,
        gap,
        (factor * meat).sqrt(),
        f64::from(df_clusters - 1),
        ContrastKind::Between,
        all.clusters_any,
    )
}

fn within(cells: &[ClusterCell], gap: f64) -> Option<Contrast> {
    let both = || cells.iter().filter(|c| c.n_a > 0 && c.n_b > 0);
    let t = totals(both());
    // With D demeaned within cluster g (p_g = n_a/n_g): Σ d̃² = n_a·n_b/n_g and
    // Σ d̃·y = (n_b·sum_a − n_a·sum_b)/n_g; the cluster's score is Σ d̃·y − β·Σ d̃².
    let moments = |c: &ClusterCell| {
        let (na, nb) = (f64::from(c.n_a), f64::from(c.n_b));
        let ng = na + nb;
        (na * nb / ng, (nb * c.sum_a - na * c.sum_b) / ng)
    };
    let (sxx, sxy) = both()
        .map(moments)
        .fold((0.0, 0.0), |(x, y), (dx, dy)| (x + dx, y + dy));
    let beta = sxy / sxx;
    let meat: f64 = both()
        .map(|c| {
            let (xx, xy) = moments(c);
            (xy - beta * xx).powi(2)
        })
        .sum();
    let factor = cr1(t.clusters_both, t.n_a + t.n_b)?;
    finish(
        gap,
        beta,
        (factor * meat).sqrt() / sxx,
        f64::from(t.clusters_both - 1),
        ContrastKind::Within,
        t.clusters_both,
    )
}

fn finish(
    gap: f64,
    estimate: f64,
    se: f64,
    df: f64,
    kind: ContrastKind,
    clusters: u32,
) -> Option<Contrast> {
    if !(estimate.is_finite() && se.is_finite()) {
        return None;
    }
    let t = if se == 0.0 {
        if estimate == 0.0 {
            return None;
        }
        f64::INFINITY.copysign(estimate)
    } else {
        estimate / se
    };
    let p = (2.0 * student_t_sf(t.abs(), df)?).min(1.0);
    Some(Contrast {
        gap,
        estimate,
        se,
        t,
        df,
        p_two_sided: p,
        kind,
        clusters,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (cluster, in a, y)
    type Obs = (usize, bool, f64);

    fn cells_of(obs: &[Obs]) -> Vec<ClusterCell> {
        let g = obs.iter().map(|o| o.0).max().map_or(0, |m| m + 1);
        let mut cells = vec![ClusterCell::default(); g];
        for &(c, in_a, y) in obs {
            if in_a {
                cells[c].n_a += 1;
                cells[c].sum_a += y;
            } else {
                cells[c].n_b += 1;
                cells[c].sum_b += y;
            }
        }
        cells
    }

    /// The sandwich of a one-regressor OLS after the caller's transformation of x and y, done
    /// observation by observation: (Σx̃²)⁻¹ Σ_g (Σ_{i∈g} x̃ᵢ eᵢ)² (Σx̃²)⁻¹ with the CR1 factor.
    fn brute_force(obs: &[Obs], fixed_effects: bool) -> (f64, f64) {
        let used: Vec<Obs> = if fixed_effects {
            obs.iter()
                .copied()
                .filter(|o| obs.iter().any(|p| p.0 == o.0 && p.1 != o.1))
                .collect()
        } else {
            obs.to_vec()
        };
        let mean_where = |f: &dyn Fn(&Obs) -> bool, v: &dyn Fn(&Obs) -> f64| {
            let sel: Vec<f64> = used.iter().filter(|o| f(o)).map(v).collect();
            sel.iter().sum::<f64>() / sel.len() as f64
        };
        let d = |o: &Obs| if o.1 { 1.0 } else { 0.0 };
        // x̃ and ỹ: demeaned within the cluster (fixed effects) or over all (intercept).
        let centre = |o: &Obs, v: &dyn Fn(&Obs) -> f64| {
            if fixed_effects {
                mean_where(&|p: &Obs| p.0 == o.0, v)
            } else {
                mean_where(&|_| true, v)
            }
        };
        let xs: Vec<f64> = used.iter().map(|o| d(o) - centre(o, &d)).collect();
        let ys: Vec<f64> = used.iter().map(|o| o.2 - centre(o, &|p| p.2)).collect();
        let sxx: f64 = xs.iter().map(|x| x * x).sum();
        let beta = xs.iter().zip(&ys).map(|(x, y)| x * y).sum::<f64>() / sxx;
        let clusters: std::collections::BTreeSet<usize> = used.iter().map(|o| o.0).collect();
        let meat: f64 = clusters
            .iter()
            .map(|&g| {
                used.iter()
                    .zip(xs.iter().zip(&ys))
                    .filter(|(o, _)| o.0 == g)
                    .map(|(_, (x, y))| x * (y - beta * x))
                    .sum::<f64>()
                    .powi(2)
            })
            .sum();
        let (g, n) = (clusters.len() as f64, used.len() as f64);
        let factor = g / (g - 1.0) * (n - 1.0) / (n - 2.0);
        (beta, (factor * meat).sqrt() / sxx)
    }

    #[test]
    fn weeks_start_on_monday() {
        let day = |d: i64| d * MS_PER_DAY;
        // 2026-01-04 is a Sunday, 2026-01-05 a Monday (day 20458 since the epoch).
        let sunday = day(20457) + 23 * 3_600_000;
        let monday = day(20458);
        assert_eq!(time_cluster(monday, 7), time_cluster(sunday, 7) + 1);
        assert_eq!(time_cluster(monday + day(6), 7), time_cluster(monday, 7));
        assert_eq!(time_cluster(day(0), 7), -1);
        assert_eq!(time_cluster(day(3), 1), time_cluster(day(2), 1) + 1);
        assert_eq!(time_cluster(day(3), 0), time_cluster(day(3), 1));
    }

    #[test]
    fn between_by_hand() {
        // a: cluster 0 {1, 4}, cluster 1 {1}; b: cluster 1 {0}, cluster 2 {2, −1}.
        let obs: Vec<Obs> = vec![
            (0, true, 1.0),
            (0, true, 4.0),
            (1, true, 1.0),
            (1, false, 0.0),
            (2, false, 2.0),
            (2, false, -1.0),
        ];
        // mean_a = 2, mean_b = 1/3. Scores (a part − b part):
        // g0: (5 − 4)/3 = 1/3; g1: (1 − 2)/3 − (0 − 1/3)/3 = −1/3 + 1/9 = −2/9;
        // g2: −(1 − 2/3)/3 = −1/9. meat = 1/9 + 4/81 + 1/81 = 14/81.
        // CR1 = 3/2 · 5/4 = 15/8; se = sqrt(15/8 · 14/81) = sqrt(210/648).
        let c = cluster_contrast(&cells_of(&obs), 6).unwrap();
        assert_eq!(c.kind, ContrastKind::Between);
        assert!((c.gap - 5.0 / 3.0).abs() < 1e-12);
        assert!((c.se - (210.0f64 / 648.0).sqrt()).abs() < 1e-12);
        // Both sides have 2 clusters: df 1.
        assert_eq!(c.df, 1.0);
        let (beta, se) = brute_force(&obs, false);
        assert!((beta - c.estimate).abs() < 1e-12 && (se - c.se).abs() < 1e-12);
    }

    #[test]
    fn within_removes_a_common_shock() {
        // Every cluster holds both samples; b = a − 1 inside a cluster, plus a large shock per
        // cluster: the within estimate is exactly 1 with no spread (t = ∞), whatever the shocks.
        let mut obs = Vec::new();
        for g in 0..8 {
            let shock = [5.0, -3.0, 0.5, 9.0, -7.0, 2.0, 0.0, -1.0][g];
            obs.push((g, true, shock + 1.0));
            obs.push((g, false, shock));
            obs.push((g, false, shock));
        }
        let c = cluster_contrast(&cells_of(&obs), 6).unwrap();
        assert_eq!(c.kind, ContrastKind::Within);
        assert!((c.estimate - 1.0).abs() < 1e-12);
        assert_eq!(c.p_two_sided, 0.0);
        assert_eq!(c.df, 7.0);
    }

    #[test]
    fn a_single_cluster_side_is_not_tested_and_an_empty_side_neither() {
        let obs: Vec<Obs> = vec![
            (0, true, 1.0),
            (0, true, 2.0),
            (1, false, 0.0),
            (2, false, 1.0),
        ];
        assert!(cluster_contrast(&cells_of(&obs), 6).is_none());
        let only_a: Vec<Obs> = vec![(0, true, 1.0), (1, true, 2.0), (2, true, 0.0)];
        assert!(cluster_contrast(&cells_of(&only_a), 6).is_none());
    }

    fn observations() -> impl Strategy<Value = Vec<Obs>> {
        prop::collection::vec((0usize..9, any::<bool>(), -3.0f64..3.0), 12..60)
    }

    proptest! {
        #[test]
        fn matches_the_observation_level_sandwich(obs in observations(), min_within in 2u32..8) {
            let cells = cells_of(&obs);
            if let Some(c) = cluster_contrast(&cells, min_within) {
                let (beta, se) = brute_force(&obs, c.kind == ContrastKind::Within);
                prop_assert!((beta - c.estimate).abs() < 1e-9 * (1.0 + beta.abs()));
                prop_assert!((se - c.se).abs() < 1e-9 * (1.0 + se));
                prop_assert!((0.0..=1.0).contains(&c.p_two_sided));
            }
        }
    }
}
