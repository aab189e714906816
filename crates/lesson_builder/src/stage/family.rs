//! The run's multiple-testing family (SPEC §4.5; the reasoning is in docs/statistics.md, "The
//! family and its error rate"). Hierarchical over the lattice:
//!
//! - the pattern roots and the subsets of one and two dims are one weighted Benjamini–Hochberg
//!   family at `fdr`, each of the three sizes with an equal share of the error budget;
//! - a subset of k ≥ 3 dims is a hypothesis only when one of its parents of k − 1 dims is a
//!   discovery of the level above (weak heredity); the hypotheses of each such level are one BH
//!   family at `fdr`, tested after the level above (Yekutieli 2008, families of the children of
//!   rejected hypotheses).
//!
//! Deep subsets are where the lattice explodes (millions at 28 dims) and where the data rarely
//! support an effect of their own. The stage computes them itself, from the group's trades, only
//! under its discoveries (SPEC §12: a subtree under no discovery holds no hypothesis, so it is
//! never enumerated); the aggregate stage stores none by default, and subsets an analyst's
//! storage holds (`store_min_trades`, `k_max`) are not read for the tests, so the lessons do not
//! depend on what is stored as long as every subset of fewer dims with its minimum support is.

use super::evaluate::{evaluate_group, Family, GroupContext, GroupRows, Screen, Tested};
use super::lattice::Lattice;
use super::rows::{RowRef, StageRows, WithComputed};
use super::shared_scopes;
use super::trades::Bitset;
use super::verdict::SecondLooks;
use learnloop_model::config::FIRST_HIERARCHICAL_DIMS;
use learnloop_model::scope::{parents_of_pairs, scope_pairs, scope_values_hash, scope_values_json};
use learnloop_model::stats::{OutcomeStats, RunningStats};
use learnloop_model::{LoopConfig, StatsRow, Timestamp};
use learnloop_stats::{
    benjamini_hochberg, choose_independent_filter, equal_share_weights, rejection_threshold,
    weighted_p,
};
use rustc_hash::FxHashMap;
use std::ops::Range;
use std::sync::Arc;

/// The family's decisions: each tested subset's q-value (`None`: not in the family), how many
/// hypotheses the family had, and the deep subsets computed for it.
pub struct FamilyOutcome {
    /// Index for index with the run's tested subsets (deep ones included).
    pub q: Vec<Option<f64>>,
    /// Hypotheses in the family, over all levels.
    pub size: u64,
    /// The independent filter's threshold when it left hypotheses out.
    pub filter_threshold: Option<f64>,
    /// The deep subsets computed from the trades, and parents of theirs the run's rows lack: rows
    /// `rows.len()..` of the run (see [`WithComputed`]).
    pub computed: Vec<StatsRow>,
    /// Subsets a later family tested without discovering them (the shared scopes' groups).
    pub second_looks: SecondLooks,
}

/// What the family needs besides the tests: the run's configuration and as-of, and each group's
/// test context (from one of its rows).
pub struct FamilyInputs<'c, 'g> {
    pub cfg: &'c LoopConfig,
    pub as_of: Timestamp,
    pub group_of: &'c dyn Fn(RowRef<'_>) -> Option<GroupContext<'g>>,
}

/// Test the run's family. `tested` holds the tests of the stored subsets of fewer than
/// `FIRST_HIERARCHICAL_DIMS` dims, contiguous by group; the deep subsets the hierarchy admits are
/// computed, tested and inserted after their group's. Sets each member's q-value, FDR weight and
/// re-test threshold.
pub fn test_family(
    tested: &mut Vec<Tested>,
    rows: &dyn StageRows,
    inputs: &FamilyInputs<'_, '_>,
) -> FamilyOutcome {
    let fdr = inputs.cfg.lessons.fdr;
    let mut q = vec![None; tested.len()];
    let candidates: Vec<usize> = (0..tested.len())
        .filter(|&i| in_family(&tested[i]))
        .collect();
    let (base, filter_threshold) = filter_first_family(tested, rows, candidates, inputs.cfg);
    let strata: Vec<u32> = base.iter().map(|&i| tested[i].dims).collect();
    let weights = equal_share_weights(&strata);
    test_level(tested, &base, (&weights, Family::First), fdr, &mut q);
    let mut second_looks = SecondLooks::default();
    let shared = if inputs.cfg.lessons.shared_scopes {
        shared_scopes::test_shared_scopes(tested, rows, (&mut q, &mut second_looks), fdr)
    } else {
        0
    };
    let groups = group_ranges(tested);
    let discovered: Vec<Vec<usize>> = groups
        .iter()
        .map(|g| {
            g.clone()
                .filter(|&i| tested[i].dims == FIRST_HIERARCHICAL_DIMS - 1)
                .filter(|&i| q[i].is_some_and(|q| q <= fdr))
                .map(|i| tested[i].row)
                .collect()
        })
        .collect();
    let mut deep = DeepLevels {
        rows,
        inputs,
        known: groups
            .iter()
            .map(|g| g.clone().map(|i| tested[i].row).collect())
            .collect(),
        first_tested: groups.iter().map(|g| tested[g.start].row).collect(),
        computed: Vec::new(),
        found: vec![Vec::new(); groups.len()],
        size: base.len() as u64 + shared,
    };
    deep.test_levels(discovered);
    insert_by_group(tested, &mut q, &groups, std::mem::take(&mut deep.found));
    FamilyOutcome {
        q,
        size: deep.size,
        filter_threshold,
        computed: deep.computed,
        second_looks,
    }
}

/// Independent filtering of the first family (`lessons.independent_filtering`;
/// docs/statistics.md): the two-dim members whose contrast has the fewest effective trades are
/// left out when that gives the family more discoveries. The statistic depends only on which
/// trades are where, never on their outcomes. Roots and one-dim subsets are few and always
/// stay: the two-dim stratum is where the lattice explodes; it keeps at least as many members
/// as the one-dim stratum, so that no kept two-dim hypothesis gets a larger share of the error
/// budget than a one-dim one. Those left out get
/// [`Screen::Filtered`]; returns the members kept and the threshold when some were left out.
fn filter_first_family(
    tested: &mut [Tested],
    rows: &dyn StageRows,
    members: Vec<usize>,
    cfg: &LoopConfig,
) -> (Vec<usize>, Option<f64>) {
    if !cfg.lessons.independent_filtering {
        return (members, None);
    }
    let p: Vec<f64> = members
        .iter()
        .map(|&i| tested[i].p.get().unwrap_or(1.0))
        .collect();
    let strata: Vec<u32> = members.iter().map(|&i| tested[i].dims).collect();
    let stat: Vec<f64> = members
        .iter()
        .map(|&i| match tested[i].dims {
            FILTERED_DIMS => effective_trades(&tested[i], rows),
            _ => f64::INFINITY,
        })
        .collect();
    // A kept two-dim hypothesis never gets a larger share of the budget than a one-dim one.
    let one_dim = strata.iter().filter(|&&d| d == FILTERED_DIMS - 1).count();
    let Some(choice) = choose_independent_filter(&p, &strata, &stat, cfg.lessons.fdr, one_dim)
    else {
        return (members, None);
    };
    let filtered = choice.kept < members.len();
    let mut kept = Vec::with_capacity(choice.kept);
    for (i, s) in members.into_iter().zip(stat) {
        if s >= choice.threshold {
            kept.push(i);
        } else {
            tested[i].screen = Screen::Filtered {
                effective_trades: s as f32,
                threshold: choice.threshold as f32,
            };
        }
    }
    (kept, filtered.then_some(choice.threshold))
}

/// The subsets the independent filter can leave out: the largest stratum of the first family.
const FILTERED_DIMS: u32 = FIRST_HIERARCHICAL_DIMS - 1;

/// The effective number of trades of a hypothesis' weakest contrast, `n·c / (n + c)` with `n`
/// its trades and `c` the smallest rest of a parent (the root: the rest of the module): the
/// variance of a difference of two means is proportional to `1/n + 1/c`.
pub fn effective_trades(t: &Tested, rows: &dyn StageRows) -> f64 {
    let n = rows.row(t.row).n_trades() as f64;
    let c = t.complement.map_or(f64::INFINITY, f64::from);
    if c.is_infinite() {
        n
    } else {
        n * c / (n + c)
    }
}

/// A tested subset that is a hypothesis: it passed the screens and has a p-value.
fn in_family(t: &Tested) -> bool {
    t.screen == Screen::Tested && t.p.get().is_some()
}

/// The ranges of `tested` that hold one group each.
pub(super) fn group_ranges(tested: &[Tested]) -> Vec<Range<usize>> {
    let mut out: Vec<Range<usize>> = Vec::new();
    for (i, t) in tested.iter().enumerate() {
        match out.last_mut() {
            Some(last) if tested[last.start].group == t.group => last.end = i + 1,
            _ => out.push(i..i + 1),
        }
    }
    out
}

/// The deep levels of the family, one size at a time.
struct DeepLevels<'r, 'i, 'c, 'g> {
    rows: &'r dyn StageRows,
    inputs: &'i FamilyInputs<'c, 'g>,
    /// Per group: the rows of its subsets known so far (stored, then computed).
    known: Vec<Vec<usize>>,
    /// Per group: the row of its first tested subset (for its test context).
    first_tested: Vec<usize>,
    computed: Vec<StatsRow>,
    /// Per group: its deep subsets' tests with their q-values.
    found: Vec<Vec<(Tested, Option<f64>)>>,
    size: u64,
}

impl DeepLevels<'_, '_, '_, '_> {
    /// From the discoveries one dim smaller (per group, their rows), each level in turn until a
    /// level discovers nothing.
    fn test_levels(&mut self, mut discovered: Vec<Vec<usize>>) {
        let fdr = self.inputs.cfg.lessons.fdr;
        let mut dims = FIRST_HIERARCHICAL_DIMS;
        while discovered.iter().any(|d| !d.is_empty()) {
            let mut level: Vec<Tested> = Vec::new();
            let mut level_group: Vec<usize> = Vec::new();
            for (g, parents) in discovered.iter().enumerate() {
                if parents.is_empty() {
                    continue;
                }
                let tests = self.children_of(g, parents, dims);
                level_group.extend(std::iter::repeat_n(g, tests.len()));
                level.extend(tests);
            }
            let members: Vec<usize> = (0..level.len()).filter(|&i| in_family(&level[i])).collect();
            let mut level_q = vec![None; level.len()];
            let weights = vec![1.0; members.len()];
            test_level(
                &mut level,
                &members,
                (&weights, Family::Deep),
                fdr,
                &mut level_q,
            );
            self.size += members.len() as u64;
            discovered = vec![Vec::new(); discovered.len()];
            for ((t, q), g) in level.into_iter().zip(level_q).zip(level_group) {
                if q.is_some_and(|q| q <= fdr) {
                    discovered[g].push(t.row);
                }
                self.found[g].push((t, q));
            }
            dims += 1;
        }
    }

    /// The tests of group `g`'s subsets of `dims` dims under its discoveries `parents` (rows):
    /// every child of one with its minimum support, computed from the group's trades.
    fn children_of(&mut self, g: usize, parents: &[usize], dims: u32) -> Vec<Tested> {
        let all = WithComputed {
            base: self.rows,
            extra: &self.computed,
        };
        let Some(ctx) = (self.inputs.group_of)(all.row(self.first_tested[g])) else {
            return Vec::new();
        };
        let mut subsets = GroupSubsets::new(&all, &self.known[g], self.inputs.as_of);
        let children = subsets.children(&all, parents, &ctx, dims);
        subsets.add_missing_parents(&children, &ctx);
        let lattice = Lattice::build(&subsets.rows, &self.inputs.cfg.dims);
        let group = GroupRows {
            rows: &subsets.rows,
            offset: 0,
        };
        let known = self.known[g].len();
        let first_new = self.rows.len() + self.computed.len();
        let global = |local: usize| match local.checked_sub(known) {
            Some(j) => first_new + j,
            None => self.known[g][local],
        };
        let mut is_child = vec![false; subsets.rows.len()];
        for &c in &children {
            is_child[c] = true;
        }
        let mut tests: Vec<Tested> = evaluate_group(&group, &lattice, &ctx, u32::MAX)
            .into_iter()
            .filter(|t| is_child[t.row])
            .collect();
        for t in &mut tests {
            t.map_rows(global);
        }
        let added = subsets.rows.split_off(known);
        self.known[g].extend(first_new..first_new + added.len());
        self.computed.extend(added);
        tests
    }
}

/// One group's subsets while a level is computed: the known ones, then the new ones, as rows
/// the stage's tests read.
struct GroupSubsets {
    rows: Vec<StatsRow>,
    ids: FxHashMap<(u64, u64), usize>,
    module: Arc<str>,
    pattern_key: Arc<str>,
    category: learnloop_model::ActionCategory,
    as_of: Timestamp,
}

impl GroupSubsets {
    fn new(all: &dyn StageRows, known: &[usize], as_of: Timestamp) -> Self {
        let first = all.row(known[0]);
        let mut out = Self {
            rows: Vec::with_capacity(known.len()),
            ids: FxHashMap::default(),
            module: Arc::from(first.module),
            pattern_key: Arc::from(first.pattern_key),
            category: first.category,
            as_of,
        };
        for &i in known {
            let r = all.row(i);
            out.push(
                r.scope_mask,
                r.scope_values.to_string(),
                r.scope_values_hash,
                r.r,
            );
        }
        out
    }

    fn push(&mut self, mask: u64, scope_values: String, hash: u64, r: RunningStats) -> usize {
        self.ids.insert((mask, hash), self.rows.len());
        self.rows.push(StatsRow {
            module: self.module.clone(),
            pattern_key: self.pattern_key.clone(),
            category: self.category,
            scope_mask: mask,
            scope_values,
            scope_values_hash: hash,
            stats: OutcomeStats {
                r,
                ..OutcomeStats::default()
            },
            as_of: self.as_of,
        });
        self.rows.len() - 1
    }

    /// Add the subset with these pairs (sorted by dimension) unless it is known; `min_trades`:
    /// the fewest trades it must have to be added. Returns its row if added.
    fn add(
        &mut self,
        pairs: &[(&str, &str)],
        ctx: &GroupContext<'_>,
        min_trades: u64,
    ) -> Option<usize> {
        let dims = &ctx.cfg.dims;
        let mut mask = 0u64;
        for (dim, _) in pairs {
            mask |= 1u64 << dims.index_of(dim)?;
        }
        let hash = scope_values_hash(pairs.iter().copied());
        if self.ids.contains_key(&(mask, hash)) {
            return None;
        }
        let own = ctx.trades.trades_of(pairs);
        if own.count() < min_trades.max(1) {
            return None;
        }
        let json = scope_values_json(pairs.iter().copied());
        Some(self.push(mask, json, hash, r_of(ctx, &own)))
    }

    /// Every child of the rows `parents` (one more `dim = value` pair that some action of the
    /// group has) with the minimum support of `dims` dims; returns their rows.
    fn children(
        &mut self,
        all: &dyn StageRows,
        parents: &[usize],
        ctx: &GroupContext<'_>,
        dims: u32,
    ) -> Vec<usize> {
        let present = ctx.trades.pairs_present();
        let min_support = ctx.cfg.lessons.min_support_for(dims);
        let mut out = Vec::new();
        for &p in parents {
            let pairs = scope_pairs(all.row(p).scope_values);
            for &(dim, value) in &present {
                if pairs.iter().any(|(d, _)| d == dim) {
                    continue;
                }
                let mut child: Vec<(&str, &str)> = pairs
                    .iter()
                    .map(|(d, v)| (d.as_str(), v.as_str()))
                    .collect();
                child.push((dim, value));
                child.sort_unstable();
                out.extend(self.add(&child, ctx, min_support));
            }
        }
        out
    }

    /// The parents of `children` that are not known yet (another parent's children share them),
    /// so that every child is contrasted with each of its parents.
    fn add_missing_parents(&mut self, children: &[usize], ctx: &GroupContext<'_>) {
        for &c in children {
            let pairs = scope_pairs(&self.rows[c].scope_values);
            for parent in parents_of_pairs(&pairs) {
                self.add(&parent, ctx, 1);
            }
        }
    }
}

/// Count, mean and spread of R over a trade set, in trade order.
fn r_of(ctx: &GroupContext<'_>, own: &Bitset) -> RunningStats {
    let mut r = RunningStats::default();
    for t in own.iter() {
        r.push(ctx.trades.r[t]);
    }
    r
}

/// Insert each group's deep tests (with their q-values) after the group's range of `tested`,
/// moving the entries in place (a run may hold millions).
fn insert_by_group<T: Clone>(
    tested: &mut Vec<T>,
    q: &mut Vec<Option<f64>>,
    groups: &[Range<usize>],
    mut found: Vec<Vec<(T, Option<f64>)>>,
) {
    let added: usize = found.iter().map(Vec::len).sum();
    let (Some(filler), true) = (tested.first().cloned(), added > 0) else {
        return;
    };
    tested.resize(tested.len() + added, filler);
    q.resize(q.len() + added, None);
    let mut write = tested.len();
    for (g, range) in groups.iter().enumerate().rev() {
        for (t, qt) in found[g].drain(..).rev() {
            write -= 1;
            tested[write] = t;
            q[write] = qt;
        }
        for i in range.clone().rev() {
            write -= 1;
            tested.swap(i, write);
            q.swap(i, write);
        }
    }
}

/// One BH family (weighted by `weights`, index for index with `members`) at `fdr`: the members'
/// q-values, family, weights and re-test thresholds (a re-test passes at the family's critical
/// value, scaled by its weight).
fn test_level(
    tested: &mut [Tested],
    members: &[usize],
    (weights, family): (&[f64], Family),
    fdr: f64,
    q: &mut [Option<f64>],
) {
    let p: Vec<f64> = members
        .iter()
        .map(|&i| tested[i].p.get().unwrap_or(1.0))
        .collect();
    let weighted = weighted_p(&p, weights);
    let level_q = benjamini_hochberg(&weighted);
    let critical = rejection_threshold(&weighted, &level_q, fdr);
    for ((&i, &w), &qi) in members.iter().zip(weights).zip(&level_q) {
        tested[i].fdr_weight = Some(w).into();
        tested[i].family = family;
        tested[i].p_threshold = critical.map(|c| c * w).into();
        q[i] = Some(qi);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_tests_go_after_their_group_in_place() {
        let mut items = vec!["a0", "a1", "b0", "c0", "c1", "c2"];
        let mut q: Vec<Option<f64>> = (0..6).map(|i| Some(f64::from(i))).collect();
        let groups = [0..2, 2..3, 3..6];
        let found = vec![
            vec![("a-deep0", Some(10.0)), ("a-deep1", None)],
            vec![],
            vec![("c-deep0", Some(12.0))],
        ];
        insert_by_group(&mut items, &mut q, &groups, found);
        assert_eq!(
            items,
            ["a0", "a1", "a-deep0", "a-deep1", "b0", "c0", "c1", "c2", "c-deep0"]
        );
        let q_of = |x: f64| Some(x);
        assert_eq!(
            q,
            [
                q_of(0.0),
                q_of(1.0),
                q_of(10.0),
                None,
                q_of(2.0),
                q_of(3.0),
                q_of(4.0),
                q_of(5.0),
                q_of(12.0)
            ]
        );
        // Nothing found: nothing moves.
        let mut same = vec![1, 2];
        let mut q2 = vec![None, None];
        let one_group: Vec<Range<usize>> = vec![Range { start: 0, end: 2 }];
        insert_by_group(&mut same, &mut q2, &one_group, vec![vec![]]);
        assert_eq!(same, [1, 2]);
    }
}
