//! The children of an explained discovery (docs/statistics.md, "The family and its error
//! rate"). A subset that passed the run's family but whose effect is gone without the trades of
//! a refinement that did not pass (self-sufficiency) is the disguise of an effect that lives
//! below it: teaching the parent would be a generalization, and teaching nothing loses an effect
//! the family did find. Its direct children (one more `dim = value` pair, tested in this run)
//! then form a Benjamini–Hochberg family of their own — the children family of a rejected
//! hypothesis in Yekutieli's (2008) hierarchical testing, opened only under the discoveries that
//! selection found to be disguises — weighted by [`CHILDREN_FAMILY_WEIGHT`].

use super::evaluate::{Family, Screen, Tested};
use super::family::group_ranges;
use super::rows::StageRows;
use super::verdict::{Judged, Reason, SecondLook, SecondLooks, Verdict};
use learnloop_model::scope::{parents_of_pairs, scope_pairs, scope_values_hash};
use learnloop_stats::{benjamini_hochberg, rejection_threshold};
use rustc_hash::{FxHashMap, FxHashSet};
use std::ops::Range;

/// The weight of every hypothesis of a children family: each family is tested at `fdr` on
/// `p / weight`, i.e. at half the run's `fdr`. Yekutieli (2008) approximates the FDR of a tree of
/// BH families, each at q, by q·(families + discoveries)/(discoveries + 1): every family opened
/// beyond the first adds about q/(discoveries + 1). Halving the level of the families opened
/// under explained discoveries halves what they add, while each parent's children are judged
/// among themselves rather than among every explained parent's children of the run.
pub const CHILDREN_FAMILY_WEIGHT: f64 = 0.5;

/// What the run's children families have done so far (tested indices).
#[derive(Default)]
pub struct ChildrenFamilies {
    /// Parents whose children were tested.
    opened: FxHashSet<usize>,
    /// Children tested in a family already: each is a member once.
    members: FxHashSet<usize>,
    /// Hypotheses of all the run's children families (a split counts once).
    hypotheses: u64,
}

impl ChildrenFamilies {
    /// How many hypotheses the run's children families tested (for the run's family size).
    pub fn hypotheses(&self) -> u64 {
        self.hypotheses
    }
}

/// Test the children of every explained discovery not opened yet, each parent's as a BH family
/// of its own at `fdr` with weight [`CHILDREN_FAMILY_WEIGHT`]. A child that passes and was not a
/// discovery of the run's family gets its family's q-value in `q`, the weight and the critical
/// value, and is no longer filtered; one it does not take gets its [`SecondLook`] in `looks`.
/// Returns how many children were taken.
pub fn test_children_of_explained(
    rows: &dyn StageRows,
    tested: &mut [Tested],
    judged: &[Judged],
    (q, looks): (&mut [Option<f64>], &mut SecondLooks),
    state: &mut ChildrenFamilies,
    fdr: f64,
) -> usize {
    let mut families: Vec<Vec<Hypothesis>> = Vec::new();
    for group in group_ranges(tested) {
        // A deep level already was the family of a discovery's children (Yekutieli's tree):
        // testing them again would be a second chance. (Its members still confirm an
        // explanation: that only ever rejects.)
        let opening: Vec<Opening> =
            explained_by_a_non_lesson(tested, judged, q, fdr, group.clone())
                .into_iter()
                .filter(|&(parent, _)| state.opened.insert(parent))
                .map(|(parent, explainer)| Opening {
                    parent,
                    explainer,
                    children: children_of(rows, tested, parent, group.clone())
                        .into_iter()
                        .filter(|&c| tested[c].family != Family::Deep)
                        .collect(),
                })
                .collect();
        let claimed = claims(rows, tested, &opening);
        for o in &opening {
            let own: Vec<usize> = o
                .children
                .iter()
                .copied()
                .filter(|c| claimed.get(c).is_none_or(|&p| p == o.parent))
                .collect();
            families.push(family_of(rows, tested, o.parent, &own, state));
        }
    }
    state.hypotheses += families.iter().map(|f| f.len() as u64).sum::<u64>();
    families
        .iter()
        .map(|family| test_children(rows, tested, family, (&mut *q, &mut *looks), fdr))
        .sum()
}

/// An explained discovery whose children family opens, its explainer and its children (tested
/// indices).
struct Opening {
    parent: usize,
    explainer: usize,
    children: Vec<usize>,
}

/// Children of several parents opening together (`{a, b}` under `{a}` and `{b}`), by the parent
/// they belong to: the first whose explainer they lie on the way to (every pair of the child is
/// one of the explainer's), since that family asks where the explainer's effect lives. The rest
/// go to the first parent that has them.
fn claims(rows: &dyn StageRows, tested: &[Tested], opening: &[Opening]) -> FxHashMap<usize, usize> {
    let mut claimed = FxHashMap::default();
    for o in opening {
        let below = scope_pairs(rows.row(tested[o.explainer].row).scope_values);
        for &c in &o.children {
            if lies_under(rows, tested, c, &below) {
                claimed.entry(c).or_insert(o.parent);
            }
        }
    }
    claimed
}

/// Whether every pair of subset `c` is one of `below`'s (a refinement's pairs): `c` lies on the
/// way from their common parent to that refinement.
fn lies_under(
    rows: &dyn StageRows,
    tested: &[Tested],
    c: usize,
    below: &[(String, String)],
) -> bool {
    scope_pairs(rows.row(tested[c].row).scope_values)
        .iter()
        .all(|pair| below.contains(pair))
}

/// The hypotheses of `parent`'s children family over `children`, each child a member of one
/// family of the run at most.
fn family_of(
    rows: &dyn StageRows,
    tested: &[Tested],
    parent: usize,
    children: &[usize],
    state: &mut ChildrenFamilies,
) -> Vec<Hypothesis> {
    let direction = tested[parent].t.get().unwrap_or(0.0).signum();
    let parent_mean = rows.row(tested[parent].row).r.mean;
    let mut family = Vec::new();
    for children in one_per_split(rows, tested, parent, children) {
        // A split whose other half is a member already is left out whole: marking the new half
        // a member here would keep it out of every family without a test.
        if children.iter().any(|c| state.members.contains(c)) {
            continue;
        }
        state.members.extend(children.iter().copied());
        family.push(Hypothesis {
            parent_row: tested[parent].row,
            children,
            direction,
            parent_mean,
        });
    }
    family
}

/// A member of the children family: its parent's row, the children it stands for (one, or the
/// two of a split), the way their parent's effect pulls and the parent's mean R.
struct Hypothesis {
    parent_row: usize,
    children: Vec<usize>,
    direction: f64,
    parent_mean: f64,
}

/// The group's subsets rejected as the disguise of a refinement that did not pass the run's
/// family (q above `fdr`) and is no lesson, with that refinement (tested indices).
fn explained_by_a_non_lesson(
    tested: &[Tested],
    judged: &[Judged],
    q: &[Option<f64>],
    fdr: f64,
    range: Range<usize>,
) -> Vec<(usize, usize)> {
    let index_of_row: FxHashMap<usize, usize> = range.clone().map(|i| (tested[i].row, i)).collect();
    let failed = |e: usize| judged[e].verdict != Verdict::Lesson && !q[e].is_some_and(|q| q <= fdr);
    range
        .filter_map(|i| match judged[i].reason {
            Reason::SelfSufficiency { by } => index_of_row.get(&by).map(|&e| (i, e)),
            _ => None,
        })
        .filter(|&(_, e)| failed(e))
        .collect()
}

/// The group's tested subsets with a p-value that refine `parent` by one pair.
fn children_of(
    rows: &dyn StageRows,
    tested: &[Tested],
    parent: usize,
    range: Range<usize>,
) -> Vec<usize> {
    let parent_row = rows.row(tested[parent].row);
    let dims = tested[parent].dims + 1;
    let (parent_mask, parent_hash) = (parent_row.scope_mask, parent_row.scope_values_hash);
    range
        .filter(|&i| tested[i].dims == dims && tested[i].p.get().is_some())
        .filter(|&i| matches!(tested[i].screen, Screen::Tested | Screen::Filtered { .. }))
        .filter(|&i| rows.row(tested[i].row).scope_mask & parent_mask == parent_mask)
        .filter(|&i| {
            let pairs = scope_pairs(rows.row(tested[i].row).scope_values);
            let refines = parents_of_pairs(&pairs)
                .any(|p| scope_values_hash(p.iter().copied()) == parent_hash);
            refines
        })
        .collect()
}

/// The children as hypotheses, each a list of the children it stands for: when the parent's
/// trades split into exactly two children along one dimension (a dimension of two values fixed
/// per position), the two are one question — which half carries the parent's effect — and
/// counted twice it would lower the family's bar for itself. Such a pair's p is the larger of
/// its two (their contrasts are against the rest of their weakest parents).
fn one_per_split(
    rows: &dyn StageRows,
    tested: &[Tested],
    parent: usize,
    children: &[usize],
) -> Vec<Vec<usize>> {
    let parent_row = rows.row(tested[parent].row);
    let mut by_dim: std::collections::BTreeMap<u64, Vec<usize>> = Default::default();
    for &c in children {
        let extra = rows.row(tested[c].row).scope_mask & !parent_row.scope_mask;
        by_dim.entry(extra).or_default().push(c);
    }
    let n = |i: usize| rows.row(tested[i].row).n_trades();
    let mut out = Vec::with_capacity(children.len());
    for (_, siblings) in by_dim {
        match siblings[..] {
            [a, b] if n(a) + n(b) == parent_row.n_trades() => out.push(siblings),
            _ => out.extend(siblings.into_iter().map(|c| vec![c])),
        }
    }
    out
}

/// The p of a hypothesis: the largest of the children it stands for.
fn p_of(tested: &[Tested], children: &[usize]) -> f64 {
    children
        .iter()
        .map(|&c| tested[c].p.get().filter(|p| !p.is_nan()).unwrap_or(1.0))
        .fold(0.0, f64::max)
}

/// Whether a child pulls `direction` relative to its parent (its mean R against the parent's).
fn pulls(
    rows: &dyn StageRows,
    tested: &[Tested],
    child: usize,
    parent_mean: f64,
    direction: f64,
) -> bool {
    let gap = rows.row(tested[child].row).r.mean - parent_mean;
    gap != 0.0 && gap.signum() == direction
}

/// One parent's children family; returns how many children it newly discovered. Only children
/// that pull their parent's way are taken: the family asks where the parent's effect lives, and
/// a child that differs the other way from the rest of the parent only looks good or bad against
/// the part that carries it (every child stays in the family's count).
fn test_children(
    rows: &dyn StageRows,
    tested: &mut [Tested],
    family: &[Hypothesis],
    (q, looks): (&mut [Option<f64>], &mut SecondLooks),
    fdr: f64,
) -> usize {
    let weighted_p: Vec<f64> = family
        .iter()
        .map(|h| (p_of(tested, &h.children) / CHILDREN_FAMILY_WEIGHT).min(1.0))
        .collect();
    let family_q = benjamini_hochberg(&weighted_p);
    let critical =
        rejection_threshold(&weighted_p, &family_q, fdr).map(|c| c * CHILDREN_FAMILY_WEIGHT);
    let mut found = 0;
    for (h, &qh) in family.iter().zip(&family_q) {
        for &i in &h.children {
            if tested[i].is_discovery(q[i], fdr) {
                continue;
            }
            let same_way = pulls(rows, tested, i, h.parent_mean, h.direction);
            match critical {
                Some(critical) if qh <= fdr && same_way => {
                    tested[i].admit_to(Family::Children, CHILDREN_FAMILY_WEIGHT, critical);
                    q[i] = Some(qh);
                    found += 1;
                }
                _ => {
                    let look = SecondLook::Child {
                        parent: h.parent_row,
                        q: qh,
                        other_way: qh <= fdr && !same_way,
                        split: h.children.len() == 2,
                    };
                    looks.entry(tested[i].row).or_default().push(look);
                }
            }
        }
    }
    found
}

/// The explanations of children-family discoveries checked so far: whether one holds depends
/// only on the tested p-values and trade sets, which no round changes, so each (subset,
/// refinement) pair is checked once per run.
#[derive(Default)]
pub struct ExplainerChecks {
    confirmed: FxHashSet<(usize, usize)>,
    unconfirmed: FxHashSet<(usize, usize)>,
}

impl ExplainerChecks {
    /// The (subset, refinement) pairs found unconfirmed: selection does not let the refinement
    /// explain the subset away.
    pub fn unconfirmed(&self) -> &FxHashSet<(usize, usize)> {
        &self.unconfirmed
    }
}

/// Refinements that explain a subset away without evidence that its effect lives there: the
/// family of the subset's own children (one BH family at `level`, as in Yekutieli's tree)
/// discovers no child on the way from the subset to the refinement pulling the subset's way. A
/// refinement among 90 that reaches p = 0.01 by chance is no such evidence. Checked for the
/// discoveries of a children family, and for every explanation by a deep subset its level did
/// not discover (that level was the family of the subset's children, and it said no: a
/// refinement holding most of an interaction's trades otherwise explained it away whenever the
/// few trades left happened to show less). Only the subset's rejection depends on this, never a
/// discovery, so a family of its own children (not the run's) errs toward rejecting. Records
/// every pair it checks in `checks`; returns how many newly unconfirmed pairs it found.
pub fn check_explainers(
    rows: &dyn StageRows,
    tested: &[Tested],
    judged: &[Judged],
    (q, fdr): (&[Option<f64>], f64),
    checks: &mut ExplainerChecks,
    level: f64,
) -> usize {
    let mut found = 0;
    for group in group_ranges(tested) {
        for pair in explained_by_a_non_lesson(tested, judged, q, fdr, group.clone()) {
            let (subset, explainer) = pair;
            let needs_confirming = tested[subset].family == Family::Children
                || tested[explainer].family == Family::Deep;
            if !needs_confirming
                || checks.confirmed.contains(&pair)
                || checks.unconfirmed.contains(&pair)
            {
                continue;
            }
            if confirmed(rows, tested, subset, explainer, group.clone(), level) {
                checks.confirmed.insert(pair);
            } else {
                checks.unconfirmed.insert(pair);
                found += 1;
            }
        }
    }
    found
}

/// Whether the family of `parent`'s children (BH at `level`) discovers one that contains
/// `explainer` and pulls the parent's way.
fn confirmed(
    rows: &dyn StageRows,
    tested: &[Tested],
    parent: usize,
    explainer: usize,
    range: Range<usize>,
    level: f64,
) -> bool {
    let children = children_of(rows, tested, parent, range);
    let hypotheses = one_per_split(rows, tested, parent, &children);
    let p: Vec<f64> = hypotheses.iter().map(|h| p_of(tested, h)).collect();
    let q = benjamini_hochberg(&p);
    let direction = tested[parent].t.get().unwrap_or(0.0).signum();
    let parent_mean = rows.row(tested[parent].row).r.mean;
    let below = scope_pairs(rows.row(tested[explainer].row).scope_values);
    hypotheses.iter().zip(&q).any(|(h, &qh)| {
        qh <= level
            && h.iter().any(|&c| {
                pulls(rows, tested, c, parent_mean, direction)
                    && lies_under(rows, tested, c, &below)
            })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::fixtures::{stats_row, tested_subset, Pairs};
    use crate::stage::LessonKey;
    use learnloop_model::{StatsRow, StatsView};

    /// One subset of group "p": its pairs, trades, p-value and the sign of its contrast (t).
    type Subset = (Pairs, u64, f64, f64);

    /// The first subset's mean R is 0, each other one's 0.1 on the side of its contrast.
    fn row(&(pairs, n, _, t): &Subset, first: bool) -> StatsRow {
        stats_row("p", pairs, n, if first { 0.0 } else { 0.1 * t.signum() })
    }

    fn tested(i: usize, &(pairs, _, p, t): &Subset) -> Tested {
        tested_subset(i, 0, pairs, p, t)
    }

    /// The group's rows and tests, every subset rejected by its q-value but the first, which
    /// passed and is explained away by the second (no lesson).
    fn explained_group(subsets: &[Subset]) -> (Vec<StatsRow>, Vec<Tested>, Vec<Judged>) {
        let rows: Vec<StatsRow> = subsets
            .iter()
            .enumerate()
            .map(|(i, s)| row(s, i == 0))
            .collect();
        let tested = subsets.iter().enumerate().map(|(i, s)| tested(i, s));
        let judged = (0..rows.len()).map(|i| Judged {
            verdict: Verdict::Rejected,
            reject: None,
            reason: match i {
                0 => Reason::SelfSufficiency { by: 1 },
                _ => Reason::Significance {
                    edge: 0.0,
                    second_looks: Vec::new(),
                },
            },
            q: None,
            p_retest: None,
        });
        (rows, tested.collect(), judged.collect())
    }

    /// The children families `state` has not opened yet, at fdr 0.1: how many children they
    /// took, and the looks at the ones they did not.
    fn open_families(
        rows: &[StatsRow],
        tested: &mut [Tested],
        judged: &[Judged],
        q: &mut [Option<f64>],
        state: &mut ChildrenFamilies,
    ) -> (usize, SecondLooks) {
        let view = StatsView::from(rows);
        let mut looks = SecondLooks::default();
        let found = test_children_of_explained(&view, tested, judged, (q, &mut looks), state, 0.1);
        (found, looks)
    }

    #[test]
    fn an_explained_discovery_opens_the_family_of_its_children() {
        // The root is explained away by {bucket: micro}. Its children: micro (the root's way),
        // small (the other way), the two halves of a two-valued dimension (one contrast), two more.
        let (rows, mut tested, judged) = explained_group(&[
            (&[], 600, 1e-5, 4.0),
            (&[("bucket", "micro")], 100, 0.004, 3.0),
            (&[("bucket", "small")], 100, 0.001, -3.5),
            (&[("bucket", "mid")], 100, 0.6, 0.5),
            (&[("E_mode", "normal")], 300, 0.02, 2.0),
            (&[("E_mode", "patient")], 300, 0.02, -2.0),
            (&[("timeframe", "1h")], 200, 0.3, 1.0),
        ]);
        let mut q: Vec<Option<f64>> = vec![Some(0.5); rows.len()];
        let mut opened = ChildrenFamilies::default();
        let (found, looks) = open_families(&rows, &mut tested, &judged, &mut q, &mut opened);
        // Five hypotheses (the two E_mode halves are one): p sorted 0.001, 0.004, 0.02, 0.3, 0.6.
        // Small pulls the other way: not taken.
        assert_eq!(found, 2, "{q:?}");
        // Weighted p (p / 0.5): 0.002, 0.008, 0.04, 0.6, 1; BH q 0.01, 0.02, 0.0667, 0.75, 1.
        assert!((q[1].unwrap() - 0.02).abs() < 1e-12);
        assert_eq!(tested[1].fdr_weight.get(), Some(CHILDREN_FAMILY_WEIGHT));
        assert_eq!(tested[1].family, Family::Children);
        assert_eq!(tested[1].p_threshold.get(), Some(0.02));
        assert_eq!(q[2], Some(0.5), "the other way");
        assert!((q[4].unwrap() - 0.04 * 5.0 / 3.0).abs() < 1e-12);
        assert_eq!(q[5], Some(0.5), "the half pulling the other way");
        assert_eq!(q[3], Some(0.5));
        // What the family did not take is a second look that explain shows.
        let other_way = |i: usize| {
            matches!(
                looks[&i][..],
                [SecondLook::Child {
                    parent: 0,
                    other_way: true,
                    ..
                }]
            )
        };
        assert!(other_way(2) && other_way(5), "{looks:?}");
        assert_eq!(
            looks[&6],
            [SecondLook::Child {
                parent: 0,
                q: 0.75,
                other_way: false,
                split: false
            }]
        );
        assert_eq!(
            looks.len(),
            4,
            "mid, small, patient and 1h; not the taken ones"
        );
        // A parent is opened once.
        let (again, _) = open_families(&rows, &mut tested, &judged, &mut q, &mut opened);
        assert_eq!(again, 0);
    }

    #[test]
    fn a_split_counted_once_no_longer_passes_on_its_own_double() {
        // The two halves of one dimension (one contrast, p = 0.03) and four others at p = 0.5.
        // Counted twice, the pair would get q = 0.06·6/2 = 0.18; once, 0.06·5 = 0.3 (weighted p
        // 0.03 / 0.5). Unweighted and counted twice it would pass: 0.03·6/2 = 0.09 ≤ 0.1.
        let (rows, mut tested, judged) = explained_group(&[
            (&[], 600, 1e-5, 4.0),
            (&[("E_mode", "normal")], 300, 0.03, 2.0),
            (&[("E_mode", "patient")], 300, 0.03, -2.0),
            (&[("bucket", "micro")], 100, 0.5, 1.0),
            (&[("bucket", "mid")], 100, 0.5, 1.0),
            (&[("timeframe", "1h")], 100, 0.5, 1.0),
            (&[("timeframe", "4h")], 100, 0.5, 1.0),
        ]);
        let mut q = vec![None; rows.len()];
        let mut opened = ChildrenFamilies::default();
        let (found, _) = open_families(&rows, &mut tested, &judged, &mut q, &mut opened);
        assert_eq!(found, 0, "{q:?}");
    }

    #[test]
    fn a_refinement_explains_a_children_discovery_only_when_its_children_family_confirms_it() {
        // {bucket: micro} was found by a children family; {micro, 1h} explains it away.
        let (rows, mut tested, judged) = explained_group(&[
            (&[("bucket", "micro")], 200, 1e-4, 4.0),
            (&[("bucket", "micro"), ("timeframe", "1h")], 50, 0.009, 2.7),
            (&[("bucket", "micro"), ("timeframe", "4h")], 50, 0.4, 0.8),
            (&[("E_mode", "normal"), ("bucket", "micro")], 60, 0.5, 0.7),
            (&[("bucket", "micro"), ("macro_phase", "Dip")], 40, 0.7, 0.3),
        ]);
        let view = StatsView::from(rows.as_slice());
        tested[0].family = Family::Children;
        let q = vec![None; rows.len()];
        let check = |tested: &[Tested], level: f64| {
            let mut checks = ExplainerChecks::default();
            let found = check_explainers(&view, tested, &judged, (&q, 0.1), &mut checks, level);
            assert_eq!(found, checks.unconfirmed().len());
            let unconfirmed: Vec<(usize, usize)> = checks.unconfirmed().iter().copied().collect();
            (unconfirmed, checks.confirmed.len())
        };
        // Four children: 0.009 · 4 = 0.036 ≤ 0.1: confirmed.
        assert_eq!(check(&tested, 0.1), (vec![], 1));
        // At 0.03 it is not: the explainer no longer counts for {bucket: micro}.
        assert_eq!(check(&tested, 0.03), (vec![(0, 1)], 0));
        // A discovery of the run's first family keeps the nominal rule: nothing to check.
        tested[0].family = Family::First;
        assert_eq!(check(&tested, 0.03), (vec![], 0));
    }

    /// Groups of pattern "p0", "p1", …, one after the other: in each, every subset is rejected
    /// by its q-value but the first, which is explained away by the second.
    fn explained_groups(groups: &[&[Subset]]) -> (Vec<StatsRow>, Vec<Tested>, Vec<Judged>) {
        let (mut rows, mut tested, mut judged) = (Vec::new(), Vec::new(), Vec::new());
        for (g, subsets) in groups.iter().enumerate() {
            let (r, t, j) = explained_group(subsets);
            let offset = rows.len();
            rows.extend(r.into_iter().map(|mut row| {
                row.pattern_key = format!("p{g}").into();
                row
            }));
            tested.extend(t.into_iter().map(|mut t| {
                t.row += offset;
                t.key = LessonKey(t.row as u64);
                t.group = LessonKey(g as u64);
                t
            }));
            judged.extend(j.into_iter().map(|mut j| {
                if let Reason::SelfSufficiency { by } = &mut j.reason {
                    *by += offset;
                }
                j
            }));
        }
        (rows, tested, judged)
    }

    #[test]
    fn each_explained_parent_opens_a_family_of_its_own_at_half_the_level() {
        let many_timeframes: Vec<Subset> = std::iter::once((&[][..], 600, 1e-5, 4.0))
            .chain(std::iter::once((&[("timeframe", "1h")][..], 100, 0.2, 1.0)))
            .chain(TIMEFRAMES.iter().map(|pairs| (*pairs, 100, 0.5, 1.0)))
            .collect();
        let (rows, mut tested, judged) = explained_groups(&[
            &[
                (&[], 600, 1e-5, 4.0),
                (&[("bucket", "micro")], 100, 0.01, 3.0),
                (&[("bucket", "mid")], 100, 0.5, 1.0),
                (&[("bucket", "small")], 100, 0.6, 1.0),
            ],
            &many_timeframes,
            &[
                (&[], 600, 1e-5, 4.0),
                (&[("bucket", "micro")], 100, 0.03, 3.0),
                (&[("bucket", "mid")], 100, 0.5, 1.0),
                (&[("bucket", "small")], 100, 0.6, 1.0),
            ],
        ]);
        let mut q = vec![None; rows.len()];
        let mut state = ChildrenFamilies::default();
        let (found, looks) = open_families(&rows, &mut tested, &judged, &mut q, &mut state);
        // The first group's micro: q = 0.02·3 = 0.06 among its own parent's three children
        // (pooled with the second group's twelve, 0.01·15 = 0.15 would fail). The third's:
        // 0.06·3 = 0.18 at half the level (0.09 at the whole level would pass).
        assert_eq!(found, 1, "{q:?}");
        assert!((q[1].unwrap() - 0.06).abs() < 1e-12);
        assert_eq!(tested[1].p_threshold.get(), Some(0.01));
        let third_micro = 4 + many_timeframes.len() + 1;
        assert_eq!(q[third_micro], None);
        let third_root = third_micro - 1;
        assert!(
            matches!(looks[&third_micro][..], [SecondLook::Child { parent, q, other_way: false, .. }]
                if parent == third_root && (q - 0.18).abs() < 1e-12),
            "{looks:?}"
        );
        assert_eq!(state.hypotheses(), 3 + 12 + 3);
    }

    #[test]
    fn a_child_of_two_explained_parents_joins_the_family_whose_explainer_it_lies_under() {
        // {micro} is explained away by {E_mode: normal, micro}, {1h} by {micro, 1h}: the child
        // {micro, 1h} of both belongs to {1h}'s family, although {micro} comes first.
        let (mut rows, mut tested, mut judged) = explained_group(&[
            (&[("bucket", "micro")], 300, 1e-5, 4.0),
            (
                &[("E_mode", "normal"), ("bucket", "micro")],
                100,
                0.009,
                3.0,
            ),
            (&[("timeframe", "1h")], 300, 1e-5, 4.0),
            (MICRO_1H, 100, 0.004, 3.0),
            (
                &[("bucket", "micro"), ("macro_phase", "Dip")],
                100,
                0.5,
                1.0,
            ),
            (&[("A_mode", "patient"), ("timeframe", "1h")], 100, 0.5, 1.0),
        ]);
        rows[2].stats.r.mean = 0.0;
        judged[2].reason = Reason::SelfSufficiency { by: 3 };
        let mut q = vec![Some(0.5); rows.len()];
        let mut state = ChildrenFamilies::default();
        let (found, _) = open_families(&rows, &mut tested, &judged, &mut q, &mut state);
        // {1h}'s family: {micro, 1h} and {A_mode: patient, 1h}, weighted p 0.008 and 1: the
        // critical value is 0.004. (In {micro}'s it would have been 0.018·0.5 = 0.009.)
        assert_eq!(found, 2, "{q:?}");
        assert_eq!(tested[3].p_threshold.get(), Some(0.004));
        assert_eq!(state.hypotheses(), 2 + 2);
    }

    const TIMEFRAMES: [Pairs; 11] = [
        &[("timeframe", "t01")],
        &[("timeframe", "t02")],
        &[("timeframe", "t03")],
        &[("timeframe", "t04")],
        &[("timeframe", "t05")],
        &[("timeframe", "t06")],
        &[("timeframe", "t07")],
        &[("timeframe", "t08")],
        &[("timeframe", "t09")],
        &[("timeframe", "t10")],
        &[("timeframe", "t11")],
    ];

    #[test]
    fn the_children_a_deep_level_tested_are_not_tested_again() {
        // {micro, 1h} is a discovery; the deep level of its children did not discover
        // {E_mode: normal, micro, 1h} (q 0.3), which then explains it away.
        let (rows, mut tested, judged) = explained_group(&[
            (&[("bucket", "micro"), ("timeframe", "1h")], 600, 1e-5, 4.0),
            (
                &[
                    ("E_mode", "normal"),
                    ("bucket", "micro"),
                    ("timeframe", "1h"),
                ],
                100,
                0.004,
                3.0,
            ),
            (
                &[
                    ("E_mode", "patient"),
                    ("bucket", "micro"),
                    ("timeframe", "1h"),
                ],
                120,
                0.5,
                1.0,
            ),
            (
                &[
                    ("bucket", "micro"),
                    ("macro_phase", "Dip"),
                    ("timeframe", "1h"),
                ],
                100,
                0.6,
                1.0,
            ),
        ]);
        for t in &mut tested[1..] {
            t.family = Family::Deep;
        }
        let mut q = vec![Some(0.001), Some(0.3), Some(0.9), Some(0.9)];
        let mut state = ChildrenFamilies::default();
        let (found, _) = open_families(&rows, &mut tested, &judged, &mut q, &mut state);
        // Alone in a family of three it would have q = 0.024 (weighted p 0.008).
        assert_eq!(found, 0);
        assert_eq!(q[1], Some(0.3));
    }

    const MICRO_1H: Pairs = &[("bucket", "micro"), ("timeframe", "1h")];
    const NOT_LEADER: Pairs = &[
        ("bucket", "micro"),
        ("bucket_leader", "false"),
        ("timeframe", "1h"),
    ];
    const LEADER: Pairs = &[
        ("bucket", "micro"),
        ("bucket_leader", "true"),
        ("timeframe", "1h"),
    ];
    const PATIENT: Pairs = &[
        ("A_mode", "patient"),
        ("bucket", "micro"),
        ("timeframe", "1h"),
    ];
    const NORMAL: Pairs = &[
        ("E_mode", "normal"),
        ("bucket", "micro"),
        ("timeframe", "1h"),
    ];

    /// How many explanations of the first-family discovery {micro, 1h} by a child of its deep
    /// level (`children`; the first is the explainer, which the level did not discover) are
    /// unconfirmed at `level`.
    fn unconfirmed_deep_explanations(children: &[Subset], level: f64) -> usize {
        let mut subsets = vec![(MICRO_1H, 209, 1e-6, 5.0)];
        subsets.extend_from_slice(children);
        let (rows, mut tested, judged) = explained_group(&subsets);
        for t in &mut tested[1..] {
            t.family = Family::Deep;
        }
        let view = StatsView::from(rows.as_slice());
        let q = vec![None; rows.len()];
        let mut checks = ExplainerChecks::default();
        check_explainers(&view, &tested, &judged, (&q, 0.1), &mut checks, level)
    }

    #[test]
    fn a_deep_refinement_its_level_did_not_discover_explains_only_when_confirmed() {
        let children = [
            (NOT_LEADER, 155, 0.005, 2.9),
            (PATIENT, 54, 0.46, 0.7),
            (NORMAL, 80, 0.3, 1.0),
        ];
        // Its children's BH: 0.005 · 3 = 0.015.
        assert_eq!(unconfirmed_deep_explanations(&children, 0.1), 0);
        assert_eq!(unconfirmed_deep_explanations(&children, 0.01), 1);
    }

    #[test]
    fn a_deep_refinement_that_is_half_of_a_split_is_confirmed_at_the_larger_p() {
        // The explainer and {leader: true} split {micro, 1h}'s 209 trades: one question, at
        // p = 0.46 — the few trades left showing less is no evidence the effect is elsewhere.
        let children = [(NOT_LEADER, 155, 0.005, 2.9), (LEADER, 54, 0.46, 0.7)];
        assert_eq!(unconfirmed_deep_explanations(&children, 0.1), 1);
    }

    #[test]
    fn an_explanation_is_checked_once_per_run() {
        let (rows, mut tested, judged) = explained_group(&[
            (&[("bucket", "micro")], 200, 1e-4, 4.0),
            (&[("bucket", "micro"), ("timeframe", "1h")], 50, 0.009, 2.7),
            (&[("bucket", "micro"), ("timeframe", "4h")], 50, 0.4, 0.8),
        ]);
        let view = StatsView::from(rows.as_slice());
        tested[0].family = Family::Children;
        let q = vec![None; rows.len()];
        let mut checks = ExplainerChecks::default();
        // Two children at 0.03: 0.009 · 2 = 0.018: confirmed, and remembered as such.
        assert_eq!(
            check_explainers(&view, &tested, &judged, (&q, 0.1), &mut checks, 0.03),
            0
        );
        assert!(checks.confirmed.contains(&(0, 1)));
        // A later round finds nothing new to check and keeps the verdict.
        assert_eq!(
            check_explainers(&view, &tested, &judged, (&q, 0.1), &mut checks, 0.001),
            0
        );
        assert!(checks.unconfirmed().is_empty());
    }
}
