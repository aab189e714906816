//! Every stored subset of a run with its minimum support, tested at the trade level (SPEC §4.2–4.4,
//! §4.7): the subset against the rest of each exact parent (the pattern root against the rest of
//! its module) by a cluster-robust contrast over time clusters, one p per hypothesis (the largest
//! over its parents: it must differ from every one), screens for clusters, complement support and
//! identical trade sets, and shrinkage of the decayed mean toward the parent.

use super::lattice::{Lattice, NOT_STORED};
use super::trades::{Bitset, GroupClusterSums, GroupTrades, ModuleTrades};
use super::LessonKey;
use learnloop_model::scope::with_scope_pairs;
use learnloop_model::stats::WeightedStats;
use learnloop_model::{LoopConfig, StatsRow};
use learnloop_stats::{
    cluster_contrast, estimate_tau2, shrink, ClusterCell, Contrast, ContrastKind, SiblingMean,
};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Mean R of a module over its linked trades, one observation per trade.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Baseline {
    /// Trades of the module.
    pub n: u64,
    /// Their mean winsorized R.
    pub mean: f64,
}

/// Why a subset with its minimum support is not a hypothesis of the run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Screen {
    /// Tested: it has a p-value in the family.
    Tested,
    /// Spread over fewer time clusters than `min_clusters`.
    Clusters,
    /// The rest of a parent (a row index; `None`: the rest of the module) is below the subset's
    /// minimum support: the subset is its parent.
    Complement { parent: Option<u32>, n: u32 },
    /// The same trades as a simpler subset (a row index): one hypothesis, reported there.
    Duplicate { of: u32 },
    /// A parent is not among the stored subsets.
    MissingParent,
    /// No contrast is defined (no spread, or a side in a single cluster).
    Untestable,
    /// Tested, but left out of the run's family by its independent filter: its weakest contrast
    /// has fewer effective trades than the run's threshold (docs/statistics.md).
    Filtered {
        effective_trades: f32,
        threshold: f32,
    },
}

/// What a re-test needs (selection, SPEC §4.1 and §4.6): the subset's trades and, per parent,
/// the parent's other trades (for the root: none, its comparison is the rest of the module).
#[derive(Debug, Clone, PartialEq)]
pub struct Retest {
    pub own: Bitset,
    pub complements: Vec<Bitset>,
    /// Per parent (root: the module rest), the sign of the subset's gap to it: a re-test must
    /// keep it.
    pub directions: Vec<f64>,
}

/// The figures of one subset with its minimum support. A run holds one per tested subset
/// (millions at 100k trades), so optional figures are `OptF64` and row links `u32`.
#[derive(Debug, Clone, PartialEq)]
pub struct Tested {
    /// Index into the run's stats rows.
    pub row: usize,
    pub key: LessonKey,
    /// The group's identity (its root's lesson key): a group's subsets are contiguous.
    pub group: LessonKey,
    /// Mean R minus the module baseline.
    pub edge: f64,
    /// Shrunk decayed mean minus the module baseline: what the levers carry.
    pub shrunk_edge: f64,
    /// t of the contrast that decides the hypothesis (the weakest parent's).
    pub t: OptF64,
    /// The hypothesis' p: the largest two-sided p over its parents (intersection–union).
    pub p: OptF64,
    /// Smallest |mean − parent mean| over the parents.
    pub min_gap: OptF64,
    /// Degrees of freedom of the contrast behind `p`.
    pub df: OptF64,
    /// The largest p at which this hypothesis is rejected in the run's family (set with the
    /// q-values; a re-test must reach it).
    pub p_threshold: OptF64,
    /// Its weight in the run's weighted-BH family (set with the q-values).
    pub fdr_weight: OptF64,
    /// The parent (a row index) whose contrast is weakest (largest p), for k ≥ 1.
    pub nearest_parent: Option<u32>,
    /// Smallest number of trades in the rest of a parent (root: the rest of the module).
    pub complement: Option<u32>,
    pub screen: Screen,
    /// Distinct time clusters of the subset's trades.
    pub clusters: u32,
    pub dims: u32,
    /// Every parent differs by at least `incremental_min` (always true for the root).
    pub margin_ok: bool,
    /// The contrast behind `p`.
    pub contrast: Option<ContrastKind>,
    /// The family its q-value is from (set with the q-values).
    pub family: Family,
}

/// Which of the run's BH families a hypothesis' q-value is from (docs/statistics.md, "The family
/// and its error rate").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// The roots, one- and two-dim subsets, weighted.
    First,
    /// A level of deeper subsets under discovered parents.
    Deep,
    /// The children of discoveries explained away by a refinement that is no lesson.
    Children,
    /// The groups of a two-dim scope discovered across its module's groups.
    Shared,
}

impl Family {
    /// The name stored in `lesson_candidates.fdr_family`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::First => "first",
            Family::Deep => "deep",
            Family::Children => "children",
            Family::Shared => "shared",
        }
    }
}

impl Tested {
    /// Whether a family of the run discovered it already: q-value `q` within `fdr`, in a family
    /// (not left out by the independent filter).
    pub fn is_discovery(&self, q: Option<f64>, fdr: f64) -> bool {
        q.is_some_and(|q| q <= fdr) && self.screen == Screen::Tested
    }

    /// Make it a discovery of a family tested after the first (no longer filtered), with that
    /// family's weight and critical value (the largest raw p it rejected).
    pub fn admit_to(&mut self, family: Family, weight: f64, critical: f64) {
        self.screen = Screen::Tested;
        self.fdr_weight = Some(weight).into();
        self.family = family;
        self.p_threshold = Some(critical).into();
    }

    /// The row of the nearest parent, if any.
    pub fn nearest_parent_row(&self) -> Option<usize> {
        self.nearest_parent.map(|p| p as usize)
    }

    /// Move every row this test names (its own, its nearest parent's, its screen's) to `to(row)`.
    pub fn map_rows(&mut self, mut to: impl FnMut(usize) -> usize) {
        self.row = to(self.row);
        let mut link = |row: u32| row_link(to(row as usize));
        self.nearest_parent = self.nearest_parent.map(&mut link);
        self.screen = match self.screen {
            Screen::Complement { parent: Some(p), n } => Screen::Complement {
                parent: Some(link(p)),
                n,
            },
            Screen::Duplicate { of } => Screen::Duplicate { of: link(of) },
            other => other,
        };
    }
}

/// An `Option<f64>` in 8 bytes instead of 16: `None` is a NaN with a payload that arithmetic
/// never produces, so a computed NaN stays `Some(NaN)`.
#[derive(Clone, Copy)]
pub struct OptF64(u64);

impl OptF64 {
    /// A quiet NaN whose payload spells "none".
    const NONE_BITS: u64 = 0x7ff8_006e_6f6e_6500;
    pub const NONE: Self = Self(Self::NONE_BITS);

    pub fn get(self) -> Option<f64> {
        (self.0 != Self::NONE_BITS).then(|| f64::from_bits(self.0))
    }
}

impl From<Option<f64>> for OptF64 {
    fn from(v: Option<f64>) -> Self {
        v.map_or(Self::NONE, |x| Self(x.to_bits()))
    }
}

impl PartialEq for OptF64 {
    fn eq(&self, other: &Self) -> bool {
        self.get() == other.get()
    }
}

impl std::fmt::Debug for OptF64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.get().fmt(f)
    }
}

/// A row index as a `Tested` link: a run's stats rows are far fewer than 2³².
pub fn row_link(row: usize) -> u32 {
    u32::try_from(row).expect("fewer than 2^32 stats rows")
}

/// A trade count as a `Tested` figure (saturating; a group's trades are far fewer than 2³²).
pub fn count_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Rows of one (module, pattern, category), contiguous in the key-sorted stats.
pub struct GroupRows<'a> {
    pub rows: &'a [StatsRow],
    /// Index of `rows[0]` in the run's stats.
    pub offset: usize,
}

/// The trades of the subset of row `r` in its group.
pub fn trades_of_row(trades: &GroupTrades, r: &StatsRow) -> Bitset {
    trades_of_scope(trades, &r.scope_values)
}

/// The trades of the subset with this scope text in its group.
pub fn trades_of_scope(trades: &GroupTrades, scope_values: &str) -> Bitset {
    with_scope_pairs(scope_values, |pairs| trades.trades_of(pairs))
}

/// The group's context for its tests.
pub struct GroupContext<'a> {
    pub cfg: &'a LoopConfig,
    pub baseline: Baseline,
    pub root_tau2: f64,
    pub trades: &'a GroupTrades,
    /// Time clusters of the group's module.
    pub n_clusters: usize,
}

/// The contrast of a subset's trades against the rest of its module (the pattern root's test).
pub fn contrast_with_module_rest(ctx: &GroupContext<'_>, own: &Bitset) -> (Option<Contrast>, u64) {
    contrast_with_rest_cells(ctx, own, &ctx.trades.rest)
}

/// The contrast of a subset's trades against the module trades outside the group, without the
/// module trades in `removed` (SPEC §4.1: other groups' lessons taken out of the root's
/// comparison). Returns the contrast and the number of trades left in the comparison.
pub fn contrast_with_module_rest_without(
    ctx: &GroupContext<'_>,
    module: &ModuleTrades,
    own: &Bitset,
    removed: &Bitset,
) -> (Option<Contrast>, u64) {
    let mut in_group = Bitset::empty(module.n_trades());
    for &t in &ctx.trades.module_trade {
        in_group.insert(t as usize);
    }
    let mut rest = ctx.trades.rest.clone();
    for t in removed.minus(&in_group).iter() {
        let cell = &mut rest[module.cluster[t] as usize];
        cell.0 -= 1;
        cell.1 -= module.r[t];
    }
    contrast_with_rest_cells(ctx, own, &rest)
}

/// `own` against per-cluster (count, sum of R) cells of trades outside the group.
fn contrast_with_rest_cells(
    ctx: &GroupContext<'_>,
    own: &Bitset,
    rest_cells: &[(u32, f64)],
) -> (Option<Contrast>, u64) {
    let mut cells = ctx
        .trades
        .cells(own, &Bitset::empty(ctx.trades.n_trades()), ctx.n_clusters);
    let mut rest = 0u64;
    for (cell, &(n, sum)) in cells.iter_mut().zip(rest_cells) {
        cell.n_b = n;
        cell.sum_b = sum;
        rest += u64::from(n);
    }
    (cluster_contrast(&cells, ctx.cfg.lessons.min_clusters), rest)
}

/// The contrast of `own` against `other` (disjoint trades of the group).
pub fn contrast(ctx: &GroupContext<'_>, own: &Bitset, other: &Bitset) -> Option<Contrast> {
    let cells: Vec<ClusterCell> = ctx.trades.cells(own, other, ctx.n_clusters);
    cluster_contrast(&cells, ctx.cfg.lessons.min_clusters)
}

/// Test every row of a group of at most `max_dims` dims that has its minimum support (deeper
/// rows, which an analyst's storage may hold, are left to the hierarchical family); `lattice`
/// holds the group's parent and child links (built for exactly these rows).
pub fn evaluate_group(
    group: &GroupRows<'_>,
    lattice: &Lattice,
    ctx: &GroupContext<'_>,
    max_dims: u32,
) -> Vec<Tested> {
    let rows = group.rows;
    let Some(first) = rows.first() else {
        return Vec::new();
    };
    let cfg = ctx.cfg;
    let key_prefix = LessonKey::group_prefix(&first.module, &first.pattern_key, first.category);
    let group_key = LessonKey::in_group(key_prefix, "{}");
    let supported = |r: &StatsRow| {
        let dims = r.scope_mask.count_ones();
        dims <= max_dims && r.stats.n_trades() >= cfg.lessons.min_support_for(dims)
    };
    // Each supported subset's trades are summarised as soon as they are found (a trade set is as
    // large as the group, and a group may have a million subsets): only the summaries are kept.
    let mut decayed: Vec<Option<WeightedStats>> = Vec::with_capacity(rows.len());
    let mut sums = GroupClusterSums::new(ctx.n_clusters, rows.len());
    let mut prints: Vec<Option<u64>> = Vec::with_capacity(rows.len());
    for r in rows {
        let set = supported(r).then(|| trades_of_row(ctx.trades, r));
        decayed.push(set.as_ref().map(|s| ctx.trades.decayed(s)));
        sums.push(ctx.trades, set.as_ref());
        prints.push(set.as_ref().map(Bitset::fingerprint));
    }
    let duplicate_of = duplicates(rows, &prints, ctx.trades);
    let mut out = Vec::new();
    for (i, r) in rows.iter().enumerate() {
        if sums.get(i).is_none() {
            continue;
        }
        let mut t = test_subset(i, rows, lattice, &sums, ctx, group.offset);
        t.group = group_key;
        t.key = lattice
            .key(i)
            .unwrap_or_else(|| LessonKey::in_group(key_prefix, &r.scope_values));
        if let Some(of) = duplicate_of[i] {
            t.screen = Screen::Duplicate {
                of: row_link(group.offset + of),
            };
        }
        t.shrunk_edge = shrunk_edge(i, r, lattice, &decayed, &duplicate_of, ctx, t.edge);
        out.push(t);
    }
    out
}

/// For each subset with the same trades as a simpler one (fewer dims, then scope text), that one.
/// `prints` holds each supported subset's trade-set fingerprint; subsets whose fingerprints agree
/// have their trade sets recomputed and compared, so a hash collision never makes a duplicate.
fn duplicates(
    rows: &[StatsRow],
    prints: &[Option<u64>],
    trades: &GroupTrades,
) -> Vec<Option<usize>> {
    let mut order: Vec<usize> = (0..rows.len()).filter(|&i| prints[i].is_some()).collect();
    order.sort_by(|&a, &b| {
        let (ra, rb) = (&rows[a], &rows[b]);
        (ra.scope_mask.count_ones(), &ra.scope_values)
            .cmp(&(rb.scope_mask.count_ones(), &rb.scope_values))
    });
    // Per fingerprint, the first subset of each distinct trade set with it (nearly always one).
    let mut first_with: FxHashMap<u64, Vec<usize>> = FxHashMap::default();
    let mut out = vec![None; rows.len()];
    for i in order {
        let Some(print) = prints[i] else { continue };
        let firsts = first_with.entry(print).or_default();
        let same = if firsts.is_empty() {
            None
        } else {
            let set = trades_of_row(trades, &rows[i]);
            firsts
                .iter()
                .copied()
                .find(|&rep| trades_of_row(trades, &rows[rep]) == set)
        };
        match same {
            Some(rep) => out[i] = Some(rep),
            None => firsts.push(i),
        }
    }
    out
}

/// The contrasts of one subset: against the rest of the module (root) or of each exact parent.
fn test_subset(
    i: usize,
    rows: &[StatsRow],
    lattice: &Lattice,
    sums: &GroupClusterSums,
    ctx: &GroupContext<'_>,
    offset: usize,
) -> Tested {
    let own_sums = sums.get(i).expect("a tested subset has its sums");
    let cfg = ctx.cfg;
    let r = &rows[i];
    let dims = r.scope_mask.count_ones();
    let mean = r.stats.r.mean;
    let mut t = Tested {
        row: offset + i,
        key: LessonKey(0),
        group: LessonKey(0),
        edge: mean - ctx.baseline.mean,
        shrunk_edge: mean - ctx.baseline.mean,
        t: OptF64::NONE,
        p: OptF64::NONE,
        min_gap: OptF64::NONE,
        df: OptF64::NONE,
        p_threshold: OptF64::NONE,
        fdr_weight: OptF64::NONE,
        nearest_parent: None,
        complement: None,
        screen: Screen::Tested,
        clusters: own_sums.clusters(),
        dims,
        margin_ok: dims == 0,
        contrast: None,
        family: Family::First,
    };
    let min_support = cfg.lessons.min_support_for(dims);

    let mut weakest: Option<(Contrast, Option<usize>)> = None;
    let mut screen = (t.clusters < cfg.lessons.min_clusters).then_some(Screen::Clusters);
    if dims == 0 {
        let own = trades_of_row(ctx.trades, r);
        let (c, rest) = contrast_with_module_rest(ctx, &own);
        t.complement = Some(count_u32(rest));
        if rest < min_support {
            screen = screen.or(Some(Screen::Complement {
                parent: None,
                n: count_u32(rest),
            }));
        }
        weakest = c.map(|c| (c, None));
    } else {
        let mut min_gap = f64::INFINITY;
        for link in lattice.parents(i) {
            let parent_sums = (link.row != NOT_STORED)
                .then(|| sums.get(link.row as usize))
                .flatten();
            let Some(parent_sums) = parent_sums else {
                screen = screen.or(Some(Screen::MissingParent));
                continue;
            };
            let parent_row = offset + link.row as usize;
            let n_rest = parent_sums.total() - own_sums.total();
            let n_rest_u32 = count_u32(n_rest);
            t.complement = Some(t.complement.map_or(n_rest_u32, |c| c.min(n_rest_u32)));
            if n_rest < min_support {
                screen = screen.or(Some(Screen::Complement {
                    parent: Some(row_link(parent_row)),
                    n: n_rest_u32,
                }));
                continue;
            }
            let parent_mean = rows[link.row as usize].stats.r.mean;
            min_gap = min_gap.min((mean - parent_mean).abs());
            let cells = own_sums.against_rest_of(&parent_sums);
            match cluster_contrast(&cells, cfg.lessons.min_clusters) {
                Some(c) if weakest.is_none_or(|(w, _)| c.p_two_sided > w.p_two_sided) => {
                    weakest = Some((c, Some(parent_row)));
                }
                Some(_) => {}
                None => screen = screen.or(Some(Screen::Untestable)),
            }
        }
        if min_gap.is_finite() {
            t.min_gap = Some(min_gap).into();
            t.margin_ok = min_gap >= cfg.lessons.incremental_min;
        }
    }
    if let Some((c, parent)) = weakest {
        t.t = Some(c.t).into();
        t.p = Some(c.p_two_sided).into();
        t.contrast = Some(c.kind);
        t.df = Some(c.df).into();
        t.nearest_parent = parent.map(row_link);
    }
    t.screen = match (screen, t.p.get()) {
        (Some(s), _) => s,
        (None, None) => Screen::Untestable,
        (None, Some(_)) => Screen::Tested,
    };
    t
}

/// The decayed mean shrunk toward the nearest parent's decayed mean (the root: toward the
/// baseline), τ² from the spread of the siblings along the same dimension — each distinct trade
/// set once: a sibling with the same trades as a simpler subset (`duplicate_of`) is that subset,
/// and the default enumeration does not even store it; minus the baseline.
fn shrunk_edge(
    i: usize,
    r: &StatsRow,
    lattice: &Lattice,
    decayed: &[Option<WeightedStats>],
    duplicate_of: &[Option<usize>],
    ctx: &GroupContext<'_>,
    edge: f64,
) -> f64 {
    let Some(own) = decayed[i] else { return edge };
    let Some(var) = own.variance() else {
        return edge;
    };
    let n = own.effective_n();
    if r.scope_mask == 0 {
        return shrink(own.mean, n, var, ctx.baseline.mean, ctx.root_tau2) - ctx.baseline.mean;
    }
    // The stored parent whose decayed mean is closest: the subset's most conservative anchor.
    let parent = lattice
        .parents(i)
        .iter()
        .filter(|l| l.row != NOT_STORED)
        .filter_map(|l| decayed[l.row as usize].map(|d| (l, d)))
        .min_by(|a, b| {
            (own.mean - a.1.mean)
                .abs()
                .total_cmp(&(own.mean - b.1.mean).abs())
        });
    let Some((link, parent)) = parent else {
        return edge;
    };
    let siblings: Vec<SiblingMean> = lattice
        .children(link.row as usize)
        .iter()
        .filter(|c| c.dim == link.dim && duplicate_of[c.row as usize].is_none())
        .filter_map(|c| decayed[c.row as usize])
        .filter_map(|d| {
            d.variance().map(|v| SiblingMean {
                mean: d.mean,
                se2: v / d.effective_n(),
            })
        })
        .collect();
    let tau2 = estimate_tau2(&siblings);
    shrink(own.mean, n, var, parent.mean, tau2) - ctx.baseline.mean
}

/// τ² of pattern roots around the baseline, per module: the spread of all roots' means.
pub fn root_tau2<'r>(rows: impl IntoIterator<Item = &'r StatsRow>) -> BTreeMap<String, f64> {
    let mut by_module: BTreeMap<String, Vec<SiblingMean>> = BTreeMap::new();
    for r in rows.into_iter().filter(|r| r.scope_mask == 0) {
        if let Some(v) = r.stats.r.sample_variance() {
            by_module
                .entry(r.module.to_string())
                .or_default()
                .push(SiblingMean {
                    mean: r.stats.r.mean,
                    se2: v / r.stats.n_trades() as f64,
                });
        }
    }
    by_module
        .into_iter()
        .map(|(m, s)| (m, estimate_tau2(&s)))
        .collect()
}

/// A subset tested again with some trades removed from it and from its comparisons.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Retested {
    /// The largest p over its parents.
    pub p: f64,
    /// Every parent still differs by at least `incremental_min`, in the original direction.
    pub holds: bool,
}

/// Test `t` again without the trades of `removal` (SPEC §4.1, §4.6): the same contrasts, screens
/// and margin against every parent whose rest keeps its minimum support; `None` when the subset
/// no longer has its minimum support or clusters, no parent is left to compare with, or a
/// contrast is undefined — the removed trades explain the subset.
pub fn retest(
    ctx: &GroupContext<'_>,
    t: &Tested,
    base: &Retest,
    removal: &Bitset,
) -> Option<Retested> {
    let cfg = ctx.cfg;
    let own = base.own.minus(removal);
    let min_support = cfg.lessons.min_support_for(t.dims);
    if own.count() < min_support || ctx.trades.clusters_of(&own) < cfg.lessons.min_clusters {
        return None;
    }
    let (n_own, sum_own) = (own.count() as f64, ctx.trades.sum(&own));
    let mut p = 0.0f64;
    let mut holds = true;
    if t.dims == 0 {
        let c = contrast_with_module_rest(ctx, &own).0?;
        p = c.p_two_sided;
        holds = base.directions.first() == Some(&c.gap.signum());
    }
    let mut compared = t.dims == 0;
    for (rest, &direction) in base.complements.iter().zip(&base.directions) {
        let rest = rest.minus(removal);
        if rest.count() < min_support {
            // The removed trades were this parent's rest: no comparison left against it (the
            // other parents still hold the subset to account).
            continue;
        }
        compared = true;
        let c = contrast(ctx, &own, &rest)?;
        p = p.max(c.p_two_sided);
        let parent_mean = (sum_own + ctx.trades.sum(&rest)) / (n_own + rest.count() as f64);
        let gap = sum_own / n_own - parent_mean;
        holds &= gap.signum() == direction && gap.abs() >= cfg.lessons.incremental_min;
    }
    compared.then_some(Retested { p, holds })
}

/// The trades a re-test of the subset with this scope text starts from, recomputed from its
/// scope: a parent's trades are those of the scope without one of its pairs.
pub fn retest_basis(ctx: &GroupContext<'_>, scope_values: &str) -> Retest {
    with_scope_pairs(scope_values, |pairs| basis_of_pairs(ctx, pairs))
}

fn basis_of_pairs(ctx: &GroupContext<'_>, pairs: &[(&str, &str)]) -> Retest {
    let own = ctx.trades.trades_of(pairs);
    let (n_own, sum_own) = (own.count() as f64, ctx.trades.sum(&own));
    let mut complements = Vec::with_capacity(pairs.len());
    let mut directions = Vec::with_capacity(pairs.len().max(1));
    if pairs.is_empty() {
        let (n_rest, sum_rest) = ctx
            .trades
            .rest
            .iter()
            .fold((0.0, 0.0), |(n, s), &(cn, cs)| (n + f64::from(cn), s + cs));
        directions.push((sum_own / n_own - sum_rest / n_rest).signum());
    }
    for skip in 0..pairs.len() {
        let parent: Vec<(&str, &str)> = pairs
            .iter()
            .enumerate()
            .filter(|&(i, _)| i != skip)
            .map(|(_, p)| *p)
            .collect();
        let rest = ctx.trades.trades_of(&parent).minus(&own);
        let (n_rest, sum_rest) = (rest.count() as f64, ctx.trades.sum(&rest));
        let parent_mean = (sum_own + sum_rest) / (n_own + n_rest);
        directions.push((sum_own / n_own - parent_mean).signum());
        complements.push(rest);
    }
    Retest {
        own,
        complements,
        directions,
    }
}

#[cfg(test)]
mod compact_tests {
    use super::*;

    #[test]
    fn opt_f64_round_trips_none_values_and_computed_nans() {
        for v in [
            None,
            Some(0.0),
            Some(-0.0),
            Some(1e-300),
            Some(f64::INFINITY),
        ] {
            let back = OptF64::from(v).get();
            assert_eq!(back.map(f64::to_bits), v.map(f64::to_bits));
        }
        // Whatever NaN arithmetic produces is a value, not a missing one.
        let zero = std::hint::black_box(0.0f64);
        for x in [
            zero / zero,
            -(zero / zero),
            f64::INFINITY - f64::INFINITY,
            f64::NAN,
        ] {
            assert!(OptF64::from(Some(x)).get().is_some_and(f64::is_nan));
        }
    }

    #[test]
    fn a_tested_record_stays_compact() {
        // One per tested subset: ~3 M at 100k trades (216 bytes before compaction).
        assert!(
            std::mem::size_of::<Tested>() <= 128,
            "{}",
            std::mem::size_of::<Tested>()
        );
    }
}
