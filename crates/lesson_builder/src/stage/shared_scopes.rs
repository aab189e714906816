//! Interactions shared by a module's groups (docs/statistics.md, "The family and its error
//! rate"). A market condition such as `{bucket: micro, timeframe: 1h}` tends to act on every
//! pattern of a module at once; in each (pattern, category) group it is one of thousands of
//! two-dim hypotheses of the run's first family, the stratum where that family's budget is
//! thinnest, and a group with 60 trades there rarely reaches its bar however many other groups
//! show the same effect. So each two-dim scope tested in two or more groups of a module is also
//! one hypothesis of a tree (Yekutieli 2008), two levels deep:
//! - the scope: "no group has an effect there", Simes' combination of its groups' p-values
//!   (valid under positive dependence, PRDS, as of groups that share positions and weeks; for
//!   two-sided p-values that is proved only in special cases, so the placebo calibration is the
//!   check), one BH family at `fdr` over the run's shared two-dim scopes;
//! - under each discovered scope, its groups: one BH family at `fdr`.
//!
//! A group's subset discovered there and not by the first family takes this family's q-value.
//! Under the global null a scope is discovered with probability at most `fdr`, so the placebo's
//! chance of any lesson grows by at most that; the error rate on effect data is measured
//! (`learnloop bench calibrate`). One-dim scopes are left to the first family, whose one-dim
//! stratum is small: shared across groups they were mostly one effect seen through the other
//! actions of the same positions, and opening their groups taught its diluted forms (measured:
//! docs/statistics.md).

use super::evaluate::{Family, Screen, Tested};
use super::rows::StageRows;
use super::verdict::{SecondLook, SecondLooks};
use learnloop_stats::{benjamini_hochberg, rejection_threshold, simes};
use rustc_hash::FxHashMap;

/// The size of the scopes the tree covers.
const SHARED_DIMS: u32 = 2;

/// Test the run's shared scopes and, under each discovered one, its groups (a group it does not
/// discover gets its [`SecondLook`] in `looks`); returns how many scopes were tested (the
/// hypotheses this adds to the run).
pub(super) fn test_shared_scopes(
    tested: &mut [Tested],
    rows: &dyn StageRows,
    (q, looks): (&mut [Option<f64>], &mut SecondLooks),
    fdr: f64,
) -> u64 {
    let scopes = shared_scopes(tested, rows);
    let p_of = |i: usize| tested[i].p.get().unwrap_or(1.0);
    let scope_p: Vec<f64> = scopes
        .iter()
        .map(|members| simes(&members.iter().map(|&i| p_of(i)).collect::<Vec<_>>()))
        .collect();
    let scope_q = benjamini_hochberg(&scope_p);
    for (members, &sq) in scopes.iter().zip(&scope_q) {
        if sq <= fdr {
            for (i, group_q) in test_groups_of_scope(tested, members, q, fdr) {
                let look = SecondLook::SharedScope {
                    groups: members.len(),
                    scope_q: sq,
                    q: group_q,
                };
                looks.entry(tested[i].row).or_default().push(look);
            }
        }
    }
    scopes.len() as u64
}

/// Per (module, two-dim scope) tested in at least two groups, the tested indices of its subsets,
/// in the order of (module, scope) text. A scope of one group would only test its subset again.
fn shared_scopes(tested: &[Tested], rows: &dyn StageRows) -> Vec<Vec<usize>> {
    let mut by_scope: FxHashMap<(&str, &str), Vec<usize>> = FxHashMap::default();
    for (i, t) in tested.iter().enumerate() {
        let testable = matches!(t.screen, Screen::Tested | Screen::Filtered { .. });
        if testable && t.dims == SHARED_DIMS && t.p.get().is_some() {
            let r = rows.row(t.row);
            by_scope
                .entry((r.module, r.scope_values))
                .or_default()
                .push(i);
        }
    }
    let mut scopes: Vec<((&str, &str), Vec<usize>)> = by_scope
        .into_iter()
        .filter(|(_, members)| members.len() >= 2)
        .collect();
    scopes.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    scopes.into_iter().map(|(_, members)| members).collect()
}

/// BH at `fdr` over the groups of one discovered scope: a member it discovers that the first
/// family did not gets this family's q-value, weight 1 and critical value, and is no longer
/// filtered. Returns the members neither family discovered, with their q among the groups.
fn test_groups_of_scope(
    tested: &mut [Tested],
    members: &[usize],
    q: &mut [Option<f64>],
    fdr: f64,
) -> Vec<(usize, f64)> {
    let p: Vec<f64> = members
        .iter()
        .map(|&i| tested[i].p.get().unwrap_or(1.0))
        .collect();
    let member_q = benjamini_hochberg(&p);
    let critical = rejection_threshold(&p, &member_q, fdr);
    let mut not_taken = Vec::new();
    for (&i, &qi) in members.iter().zip(&member_q) {
        match critical {
            _ if tested[i].is_discovery(q[i], fdr) => {}
            Some(critical) if qi <= fdr => {
                tested[i].admit_to(Family::Shared, 1.0, critical);
                q[i] = Some(qi);
            }
            _ => not_taken.push((i, qi)),
        }
    }
    not_taken
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stage::fixtures::{stats_row, tested_subset, Pairs};
    use learnloop_model::{StatsRow, StatsView};

    const MICRO: Pairs = &[("bucket", "micro")];
    const MICRO_1H: Pairs = &[("bucket", "micro"), ("timeframe", "1h")];
    const BIG_4H: Pairs = &[("bucket", "big"), ("timeframe", "4h")];

    /// Subsets of groups p0, p1, … (the group is the first field), each with its p-value, after
    /// a first family that discovered nothing.
    fn run(subsets: &[(u64, Pairs, f64)]) -> (Vec<Tested>, Vec<Option<f64>>, SecondLooks) {
        let (tested, q, _, looks) = run_after(subsets, vec![Some(0.5); subsets.len()]);
        (tested, q, looks)
    }

    /// [`run`] after a first family that gave `q`; also returns how many scopes were tested.
    fn run_after(
        subsets: &[(u64, Pairs, f64)],
        mut q: Vec<Option<f64>>,
    ) -> (Vec<Tested>, Vec<Option<f64>>, u64, SecondLooks) {
        let rows: Vec<StatsRow> = subsets
            .iter()
            .map(|&(g, pairs, _)| stats_row(&format!("p{g}"), pairs, 50, 0.5))
            .collect();
        let mut tested: Vec<Tested> = subsets
            .iter()
            .enumerate()
            .map(|(i, &(g, pairs, p))| tested_subset(i, g, pairs, p, 2.0))
            .collect();
        let view = StatsView::from(rows.as_slice());
        let mut looks = SecondLooks::default();
        let scopes = test_shared_scopes(&mut tested, &view, (&mut q, &mut looks), 0.1);
        (tested, q, scopes, looks)
    }

    #[test]
    fn the_groups_of_a_discovered_scope_form_a_family() {
        // {micro, 1h} across four groups: Simes min(4·0.001/1, 4·0.01/2, 4·0.03/3, 4·0.6/4)
        // = 0.004; {big, 4h} across two: min(2·0.2, 2·0.7/2) = 0.4. BH over the two scopes:
        // 0.008 and 0.4. Under {micro, 1h}, BH over its groups: 0.004, 0.02, 0.04, 0.6.
        let (tested, q, looks) = run(&[
            (0, MICRO_1H, 0.001),
            (1, MICRO_1H, 0.01),
            (2, MICRO_1H, 0.03),
            (3, MICRO_1H, 0.6),
            (0, BIG_4H, 0.2),
            (1, BIG_4H, 0.7),
        ]);
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-12;
        assert!(close(q[0], 0.004) && close(q[1], 0.02) && close(q[2], 0.04));
        assert!(tested[..3].iter().all(|t| t.family == Family::Shared));
        // The critical value is the largest p rejected.
        assert_eq!(tested[0].p_threshold.get(), Some(0.03));
        // Not discovered, or under a scope that is not: unchanged.
        assert_eq!((q[3], tested[3].family), (Some(0.5), Family::First));
        assert_eq!((q[4], q[5]), (Some(0.5), Some(0.5)));
        // The group the scope's family did not take is a second look; the other scope's are not.
        let [SecondLook::SharedScope { groups, scope_q, q }] = looks[&3][..] else {
            panic!("{looks:?}");
        };
        assert!(groups == 4 && (scope_q - 0.008).abs() < 1e-12 && (q - 0.6).abs() < 1e-12);
        assert_eq!(looks.len(), 1);
    }

    #[test]
    fn one_dim_scopes_are_left_to_the_first_family() {
        let (tested, q, _) = run(&[(0, MICRO, 0.0001), (1, MICRO, 0.0002), (2, MICRO, 0.001)]);
        assert!(tested.iter().all(|t| t.family == Family::First));
        assert!(q.iter().all(|&q| q == Some(0.5)));
    }

    #[test]
    fn a_scope_of_one_group_is_not_tested_again_nor_a_first_family_discovery() {
        // The first family discovered {big, 4h} in group 0 (q 0.05).
        let (tested, q, scopes, _) = run_after(
            &[
                (0, MICRO_1H, 0.0001),
                (0, BIG_4H, 0.001),
                (1, BIG_4H, 0.002),
            ],
            vec![Some(0.5), Some(0.05), Some(0.5)],
        );
        assert_eq!(scopes, 1);
        assert_eq!(q[0], Some(0.5));
        // {big, 4h}: Simes 0.002; its groups' BH 0.002, 0.002: group 0 keeps the first family's q.
        assert_eq!((q[1], tested[1].family), (Some(0.05), Family::First));
        assert_eq!((q[2], tested[2].family), (Some(0.002), Family::Shared));
    }
}
