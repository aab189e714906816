//! Selection of lessons within one (pattern, category) group (SPEC §4.1, §4.6), over the subsets
//! that passed their tests, given their trade sets and a re-test:
//!
//! 1. **Self-sufficiency.** A subset is re-tested without the trades of its significant
//!    refinements (strict subsets of its trades): the passing ones, and the strongest
//!    *explainer* — a refinement significant on its own test but not after the run's
//!    multiple-testing correction, pulling the same way. If the effect is gone, it was the
//!    refinement in disguise (e.g. `{timeframe: 1h}` carried only by `{bucket: micro,
//!    timeframe: 1h}`): rejected, even when the refinement is not a lesson itself (a
//!    generalization is never taught in its place).
//! 2. **Explained by another.** Of two passing subsets that do not contain one another, one that
//!    fails once the other's trades are removed, while the other holds without its trades, is
//!    the other's shadow (e.g. `{bucket: big}` looking bad only because the rest of the pattern
//!    holds the good `{bucket: micro, timeframe: 1h}`): rejected. The same holds against a
//!    disjoint explainer that stays significant without the subset's trades.
//! 3. **Evidence and cover.** The rest are taken strongest first (smallest p, then most trades,
//!    then key). Each is re-tested with the trades of the lessons taken before it removed from
//!    itself and its comparisons — except a lesson that contains it (its ancestor, which it
//!    refines) — so an effect is estimated with the others accounted for and no subset becomes a
//!    lesson because another one pulls its baseline. At most `max_per_group` are taken; passing
//!    subsets beyond are "limit" candidates.

use crate::stage::trades::Bitset;
use rustc_hash::FxHashMap;

/// A subset's strength of evidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// Its p-value (smaller is stronger).
    pub p: f64,
    /// The sign of its effect against its parents (of its deciding contrast's t).
    pub direction: f64,
    /// Its number of trades.
    pub cover: u64,
    /// A stable tie-break (the lesson key).
    pub key: u64,
}

/// `retest(i, removal, bar)`: subset i (a passing subset, or `passing + j` for explainer j)
/// tested again without the trades of `removal`: its p (if still defined) and whether it still
/// passes `bar` (an explainer: still significant at its own level, whatever the bar).
pub type Retest<'a> = dyn Fn(usize, &Bitset, Bar) -> (Option<f64>, bool) + 'a;

/// The level a passing subset's re-test must reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bar {
    /// The family's critical value: the bar its own test passed.
    Family,
    /// Nominal significance (`lessons.self_sufficiency_p`, or the family's critical value when
    /// that is more lenient): used when an explainer — a refinement that is not a discovery —
    /// is removed. The explainer itself only had to be nominally significant, so the subset is
    /// its disguise only when what remains of it is not even that; a true one-dim effect with
    /// a chance-significant or partial refinement keeps a clearly significant remainder.
    Nominal,
}

/// What selection made of a passing subset; `by` and the order are indices into its inputs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Outcome {
    /// A lesson.
    Selected {
        /// p of the re-test without the trades of the removed refinements, when one was run.
        p_retest: Option<f64>,
    },
    /// Passed, but the per-pattern limit was filled by stronger lessons.
    Limit,
    /// Not self-sufficient: explained by this refinement (the strongest of those removed): an
    /// index into the passing subsets, or `passing + j` for explainer j.
    Explained {
        /// Index of the explaining subset.
        by: usize,
        /// p of the re-test without its trades.
        p_retest: Option<f64>,
    },
    /// No effect once this selected lesson (or, at `passing + j`, explainer j) is accounted
    /// for.
    AccountedFor {
        /// Index of the selected lesson.
        by: usize,
        /// p of the re-test without its trades.
        p_retest: Option<f64>,
    },
}

/// A refinement significant on its own test but not a passing subset: it can explain a passing
/// generalization away (self-sufficiency), never becomes a lesson here.
#[derive(Debug, Clone, Copy)]
pub struct Explainer<'a> {
    /// Its trades.
    pub set: &'a Bitset,
    /// Its own test's strength (its p is before the run's multiple-testing correction).
    pub evidence: Evidence,
}

/// `unconfirmed(i, j)`: explainer j may not explain passing subset i away (the family of i's
/// children did not confirm it; `stage/explained.rs`).
pub type Unconfirmed<'a> = dyn Fn(usize, usize) -> bool + 'a;

/// Selection over the passing subsets (`evidence`, `sets`), with the group's `explainers`;
/// `retest(i, removal)` re-tests passing subset i without the trades of `removal` and returns its
/// p (if still defined) and whether it still passes.
pub fn greedy_by_evidence(
    evidence: &[Evidence],
    sets: &[&Bitset],
    explainers: &[Explainer<'_>],
    max_per_group: usize,
    retest: &Retest<'_>,
) -> Vec<Outcome> {
    let all_count = |_: usize, _: usize| false;
    greedy_by_evidence_except(
        evidence,
        sets,
        (explainers, &all_count),
        max_per_group,
        retest,
    )
}

/// [`greedy_by_evidence`], where explainer j does not explain passing subset i away when
/// `unconfirmed(i, j)`.
pub fn greedy_by_evidence_except(
    evidence: &[Evidence],
    sets: &[&Bitset],
    (explainers, unconfirmed): (&[Explainer<'_>], &Unconfirmed<'_>),
    max_per_group: usize,
    retest: &Retest<'_>,
) -> Vec<Outcome> {
    let n = evidence.len();
    // Indices below n are passing subsets, n + j explainer j.
    let evidence_of = |a: usize| {
        evidence
            .get(a)
            .unwrap_or_else(|| &explainers[a - n].evidence)
    };
    let set_of = |a: usize| {
        sets.get(a)
            .copied()
            .unwrap_or_else(|| explainers[a - n].set)
    };
    let stronger = |a: usize, b: usize| {
        let (ea, eb) = (evidence_of(a), evidence_of(b));
        ea.p.total_cmp(&eb.p)
            .then(eb.cover.cmp(&ea.cover))
            .then(ea.key.cmp(&eb.key))
    };
    let mut outcomes: Vec<Option<Outcome>> = vec![None; n];
    let mut p_first: Vec<Option<f64>> = vec![None; n];
    for i in 0..n {
        let refines = |d: usize| d != i && set_of(d).is_subset_of(sets[i]) && set_of(d) != sets[i];
        // Every passing refinement (at the family's bar), then also the strongest explainer
        // pulling the same way (at the nominal bar): one explainer at a time, since removing
        // every explainer at once would take a true effect's chance-significant refinements
        // together and leave too little of it.
        let refinements: Vec<usize> = (0..n).filter(|&d| refines(d)).collect();
        let strongest_explainer = (n..n + explainers.len())
            .filter(|&d| refines(d) && evidence_of(d).direction == evidence[i].direction)
            .filter(|&d| !unconfirmed(i, d - n))
            .min_by(|&a, &b| stronger(a, b));
        // Each step adds to what is removed; a failed step names what explained the subset.
        let steps = [
            refinements
                .iter()
                .copied()
                .min_by(|&a, &b| stronger(a, b))
                .map(|strongest| (None, Bar::Family, strongest)),
            strongest_explainer.map(|e| (Some(e), Bar::Nominal, e)),
        ];
        if steps.iter().all(Option::is_none) {
            continue;
        }
        let mut removal = union(refinements.iter().map(|&d| set_of(d)), sets[i]);
        for (added, bar, by) in steps.into_iter().flatten() {
            if let Some(e) = added {
                removal.or_assign(set_of(e));
            }
            let (p, holds) = retest(i, &removal, bar);
            p_first[i] = p;
            if !holds {
                outcomes[i] = Some(Outcome::Explained { by, p_retest: p });
                break;
            }
        }
    }
    explained_by_another(sets, retest, &stronger, &mut outcomes);
    shadowed_by_explainers(sets, explainers, retest, &mut outcomes);
    let mut order: Vec<usize> = (0..n).filter(|&i| outcomes[i].is_none()).collect();
    order.sort_by(|&a, &b| stronger(a, b));
    let mut taken: Vec<usize> = Vec::new();
    for i in order {
        if taken.len() >= max_per_group {
            outcomes[i] = Some(Outcome::Limit);
            continue;
        }
        let others: Vec<usize> = taken
            .iter()
            .copied()
            .filter(|&a| !sets[i].is_subset_of(sets[a]))
            .collect();
        let outcome = if others.is_empty() {
            Outcome::Selected {
                p_retest: p_first[i],
            }
        } else {
            let removal = union(others.iter().map(|&a| sets[a]), sets[i]);
            match retest(i, &removal, Bar::Family) {
                (p, true) => Outcome::Selected { p_retest: p },
                (p, false) => Outcome::AccountedFor {
                    by: others
                        .iter()
                        .copied()
                        .find(|&a| sets[a].intersects(sets[i]))
                        .unwrap_or(others[0]),
                    p_retest: p,
                },
            }
        };
        if matches!(outcome, Outcome::Selected { .. }) {
            taken.push(i);
        }
        outcomes[i] = Some(outcome);
    }
    outcomes
        .into_iter()
        .map(|o| o.expect("every subset gets an outcome"))
        .collect()
}

/// Among non-nested passing subsets, `i` is explained by `a` when `i` fails without `a`'s trades
/// while `a` holds without `i`'s: e.g. `{bucket: big}` looks worse than the rest of the pattern
/// only because the rest holds the good `{bucket: micro, timeframe: 1h}`. Only a one-way
/// explanation counts; two effects that survive each other's removal both stay.
fn explained_by_another(
    sets: &[&Bitset],
    retest: &Retest<'_>,
    stronger: &dyn Fn(usize, usize) -> std::cmp::Ordering,
    outcomes: &mut [Option<Outcome>],
) {
    let n = sets.len();
    let open: Vec<usize> = (0..n).filter(|&i| outcomes[i].is_none()).collect();
    let nested =
        |a: usize, b: usize| sets[a].is_subset_of(sets[b]) || sets[b].is_subset_of(sets[a]);
    let mut holds_without: FxHashMap<(usize, usize), (Option<f64>, bool)> = FxHashMap::default();
    let mut check = |i: usize, a: usize| {
        *holds_without
            .entry((i, a))
            .or_insert_with(|| retest(i, sets[a], Bar::Family))
    };
    let mut found: Vec<(usize, usize, Option<f64>)> = Vec::new();
    for &i in &open {
        let mut by: Option<(usize, Option<f64>)> = None;
        for &a in open.iter().filter(|&&a| a != i && !nested(a, i)) {
            let (p, holds) = check(i, a);
            if holds || !check(a, i).1 {
                continue;
            }
            if by.is_none_or(|(b, _)| stronger(a, b).is_lt()) {
                by = Some((a, p));
            }
        }
        if let Some((a, p)) = by {
            found.push((i, a, p));
        }
    }
    for (i, by, p_retest) in found {
        outcomes[i] = Some(Outcome::AccountedFor { by, p_retest });
    }
}

/// A passing subset that fails once a disjoint explainer's trades are taken out of its
/// comparisons, while the explainer stays significant without the subset's trades, looked good
/// or bad only because the explainer sat in its comparison (e.g. `{bucket: xl}` looking bad
/// against a rest that holds the good `{bucket: micro, timeframe: 1h}`, significant on its own
/// test but not a lesson): rejected, accounted for by that explainer (index `n + j`), the
/// strongest such one. One-way only, as in `explained_by_another`: a true `{timeframe: 4h}` is
/// not the shadow of the `{timeframe: 1h}` that looks bad against it.
fn shadowed_by_explainers(
    sets: &[&Bitset],
    explainers: &[Explainer<'_>],
    retest: &Retest<'_>,
    outcomes: &mut [Option<Outcome>],
) {
    let n = sets.len();
    let mut by_strength: Vec<usize> = (0..explainers.len()).collect();
    by_strength.sort_by(|&a, &b| {
        let (ea, eb) = (&explainers[a].evidence, &explainers[b].evidence);
        ea.p.total_cmp(&eb.p).then(ea.key.cmp(&eb.key))
    });
    let open: Vec<usize> = (0..n).filter(|&i| outcomes[i].is_none()).collect();
    for i in open {
        for &j in &by_strength {
            let set = explainers[j].set;
            // Only an explainer outside the subset can shadow it; one that shares trades would
            // take part of its evidence with it.
            if set.intersects(sets[i]) {
                continue;
            }
            let (p, holds) = retest(i, set, Bar::Family);
            if !holds && retest(n + j, sets[i], Bar::Family).1 {
                outcomes[i] = Some(Outcome::AccountedFor {
                    by: n + j,
                    p_retest: p,
                });
                break;
            }
        }
    }
}

/// The union of `sets`, shaped like `like`.
fn union<'a>(sets: impl Iterator<Item = &'a Bitset>, like: &Bitset) -> Bitset {
    let mut out = Bitset(vec![0; like.0.len()]);
    for s in sets {
        out.or_assign(s);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(bits: &[usize]) -> Bitset {
        let mut s = Bitset::empty(64);
        for &b in bits {
            s.insert(b);
        }
        s
    }

    fn ev(p: f64, cover: u64, key: u64) -> Evidence {
        Evidence {
            p,
            direction: 1.0,
            cover,
            key,
        }
    }

    #[test]
    fn a_generalization_explained_by_its_refinement_is_rejected() {
        // 0 = {1h} (trades 0..20), 1 = {micro, 1h} (trades 0..8), 2 = {4h} (trades 30..40).
        let sets = [
            set(&(0..20).collect::<Vec<_>>()),
            set(&(0..8).collect::<Vec<_>>()),
            set(&(30..40).collect::<Vec<_>>()),
        ];
        let refs: Vec<&Bitset> = sets.iter().collect();
        // {1h} is the strongest, but without trades 0..8 nothing is left of it.
        let evidence = [ev(1e-6, 20, 1), ev(1e-4, 8, 2), ev(1e-3, 10, 3)];
        let retest = |i: usize, removal: &Bitset, _: Bar| match i {
            0 => (Some(0.4), !removal.intersects(&set(&[0]))),
            _ => (Some(1e-3), true),
        };
        let out = greedy_by_evidence(&evidence, &refs, &[], 3, &retest);
        assert_eq!(
            out[0],
            Outcome::Explained {
                by: 1,
                p_retest: Some(0.4)
            }
        );
        assert!(matches!(out[1], Outcome::Selected { .. }));
        assert!(matches!(out[2], Outcome::Selected { .. }));
    }

    fn explainer(set: &Bitset, p: f64, direction: f64, key: u64) -> Explainer<'_> {
        Explainer {
            set,
            evidence: Evidence {
                direction,
                ..ev(p, set.count(), key)
            },
        }
    }

    #[test]
    fn a_generalization_is_explained_by_a_significant_refinement_that_is_not_a_lesson() {
        // 0 = {1h} passes (trades 0..20); {micro, 1h} (0..8) is significant on its own test
        // only; {mid, 1h} (8..14) too, but pulls the other way.
        let sets = [set(&(0..20).collect::<Vec<_>>())];
        let refs: Vec<&Bitset> = sets.iter().collect();
        let micro = set(&(0..8).collect::<Vec<_>>());
        let mid = set(&(8..14).collect::<Vec<_>>());
        let evidence = [ev(1e-6, 20, 1)];
        // {1h} fails without the micro trades, holds without the mid ones.
        let retest = |i: usize, removal: &Bitset, _: Bar| match i {
            0 => (Some(0.3), !removal.intersects(&set(&[0]))),
            _ => (Some(1e-3), true),
        };
        let same_way = [
            explainer(&micro, 1e-3, 1.0, 2),
            explainer(&mid, 1e-4, -1.0, 3),
        ];
        let out = greedy_by_evidence(&evidence, &refs, &same_way, 3, &retest);
        assert_eq!(
            out[0],
            Outcome::Explained {
                by: 1,
                p_retest: Some(0.3)
            }
        );
        // Pulling the other way, the mid refinement cannot explain it.
        let other_way = [explainer(&mid, 1e-4, -1.0, 3)];
        let out = greedy_by_evidence(&evidence, &refs, &other_way, 3, &retest);
        assert!(matches!(out[0], Outcome::Selected { .. }));
    }

    #[test]
    fn without_an_explainer_a_subset_needs_only_a_nominally_significant_remainder() {
        // 0 = {1h} passes (trades 0..20); the explainer {micro, 1h} (0..8) carries part of a
        // true one-dim effect, so {1h} without it keeps p = 1e-3: short of the family's bar,
        // clearly significant. Explained only when a passing refinement is removed (family
        // bar) or when the remainder is not even nominally significant.
        let sets = [set(&(0..20).collect::<Vec<_>>())];
        let refs: Vec<&Bitset> = sets.iter().collect();
        let micro = set(&(0..8).collect::<Vec<_>>());
        let evidence = [ev(1e-6, 20, 1)];
        let explainers = [explainer(&micro, 1e-3, 1.0, 2)];
        let at = |p_remainder: f64| {
            move |i: usize, _: &Bitset, bar: Bar| match (i, bar) {
                (0, Bar::Family) => (Some(p_remainder), p_remainder <= 1e-4),
                (0, Bar::Nominal) => (Some(p_remainder), p_remainder <= 0.01),
                _ => (Some(1e-3), true),
            }
        };
        let out = greedy_by_evidence(&evidence, &refs, &explainers, 3, &at(1e-3));
        assert_eq!(
            out[0],
            Outcome::Selected {
                p_retest: Some(1e-3)
            }
        );
        let out = greedy_by_evidence(&evidence, &refs, &explainers, 3, &at(0.2));
        assert_eq!(
            out[0],
            Outcome::Explained {
                by: 1,
                p_retest: Some(0.2)
            }
        );
    }

    #[test]
    fn a_passing_subset_in_the_shadow_of_a_disjoint_explainer_is_accounted_for() {
        // 0 = {xl} (trades 20..30) looks bad only against a rest holding the good explainer
        // {micro, 1h} (0..8), which stays significant without {xl}'s trades.
        let sets = [set(&(20..30).collect::<Vec<_>>())];
        let refs: Vec<&Bitset> = sets.iter().collect();
        let good = set(&(0..8).collect::<Vec<_>>());
        let evidence = [ev(1e-4, 10, 1)];
        let explainers = [explainer(&good, 1e-3, 1.0, 2)];
        let shadow = |i: usize, removal: &Bitset, _: Bar| match i {
            0 => (Some(0.5), !removal.intersects(&good)),
            _ => (Some(1e-3), true),
        };
        let out = greedy_by_evidence(&evidence, &refs, &explainers, 3, &shadow);
        assert_eq!(
            out[0],
            Outcome::AccountedFor {
                by: 1,
                p_retest: Some(0.5)
            }
        );
        // One-way only: when the explainer does not hold without {xl}, {xl} stays (a true
        // effect is not the shadow of the subset that looks bad against it).
        let mutual = |i: usize, removal: &Bitset, _: Bar| match i {
            0 => (Some(0.5), !removal.intersects(&good)),
            _ => (Some(0.2), false),
        };
        let out = greedy_by_evidence(&evidence, &refs, &explainers, 3, &mutual);
        assert!(matches!(out[0], Outcome::Selected { .. }));
    }

    #[test]
    fn budget_goes_by_evidence_then_cover_and_others_are_accounted_for() {
        // Disjoint sets; 3 is explained once 0 is taken (its retest fails when 0's trades go).
        let sets = [
            set(&[0, 1]),
            set(&[2, 3]),
            set(&[4, 5]),
            set(&[1, 6]),
            set(&[7]),
        ];
        let refs: Vec<&Bitset> = sets.iter().collect();
        let evidence = [
            ev(0.001, 2, 5),
            ev(0.01, 2, 4),
            ev(0.01, 3, 3),
            ev(0.002, 2, 2),
            ev(0.05, 1, 1),
        ];
        let retest = |i: usize, removal: &Bitset, _: Bar| {
            let fails = i == 3 && removal.intersects(&set(&[1]));
            (Some(0.01), !fails)
        };
        let out = greedy_by_evidence(&evidence, &refs, &[], 2, &retest);
        assert!(matches!(out[0], Outcome::Selected { .. }));
        assert!(matches!(out[3], Outcome::AccountedFor { by: 0, .. }));
        // 1 and 2 tie on p: 2 has more cover, so it is taken; 1 and 4 hit the limit.
        assert!(matches!(out[2], Outcome::Selected { .. }));
        assert_eq!(out[1], Outcome::Limit);
        assert_eq!(out[4], Outcome::Limit);
    }

    #[test]
    fn a_refinement_of_a_lesson_keeps_its_ancestors_trades() {
        // 0 = {nano} (bad), 1 = {nano, 4h} (a less bad exception inside it).
        let sets = [
            set(&(0..30).collect::<Vec<_>>()),
            set(&(0..10).collect::<Vec<_>>()),
        ];
        let refs: Vec<&Bitset> = sets.iter().collect();
        let evidence = [ev(1e-5, 30, 1), ev(1e-3, 10, 2)];
        // The exception's re-test must never see its ancestor's trades removed.
        let retest = |i: usize, removal: &Bitset, _: Bar| {
            (Some(0.01), i == 0 || !removal.intersects(&set(&[0])))
        };
        let out = greedy_by_evidence(&evidence, &refs, &[], 3, &retest);
        assert!(matches!(out[0], Outcome::Selected { .. }));
        assert!(matches!(out[1], Outcome::Selected { .. }));
    }
}
