//! Pattern roots with the other groups' lessons accounted for (SPEC §4.1). A root is contrasted
//! with the rest of its module, and planted or real effects of *other* groups move that rest: with
//! mostly good lessons elsewhere, an effect-free pattern looks bad against it. After selection
//! within every group, the selected roots of a module are taken strongest first, each tested
//! again against the module's rest without the trades of the other groups' selected non-root
//! lessons and of the roots taken before it; a root whose effect is gone then was the others'
//! shadow. The other groups' lessons are not re-judged in turn (they are taken out
//! only of the comparison, never of a root's own trades): trades shared with another group's
//! lesson (an entry and an add of one position) carry that lesson's R, which is true of them.

use super::evaluate::{
    contrast_with_module_rest, contrast_with_module_rest_without, trades_of_scope, Tested,
};
use super::rows::{RowRef, StageRows};
use super::trades::Bitset;
use super::verdict::{Judged, Reason, RejectKind, Verdict};
use super::Prior;
use std::collections::BTreeMap;

/// A selected root that fails once other groups' lessons are out of its comparison.
struct Shadow {
    tested: usize,
    p_retest: Option<f64>,
    other_lessons: usize,
}

/// Reject every selected pattern root whose contrast with its module's rest does not hold once
/// the trades of the other groups' selected non-root lessons, and of the roots taken before it
/// (strongest first), are removed from that rest: same direction, a p within the family's
/// critical value for it, and the minimum support left to compare with.
pub(super) fn account_for_other_groups(
    rows: &dyn StageRows,
    tested: &[Tested],
    judged: &mut [Judged],
    prior: &Prior<'_>,
) {
    let selected = selected_by_module(rows, tested, judged, prior);
    let mut shadows: Vec<Shadow> = Vec::new();
    for (module_name, lessons) in &selected {
        let module = &prior.index.modules[*module_name];
        // Roots strongest first: a root is compared without the other groups' non-root lessons
        // (their tests never involve the module rest) and without the roots taken before it, so
        // a strong real root is not judged against the shadows it casts on weaker ones.
        let mut roots: Vec<usize> = (0..lessons.len())
            .filter(|&k| tested[lessons[k].0].dims == 0)
            .collect();
        roots.sort_by(|&a, &b| {
            let (ta, tb) = (&tested[lessons[a].0], &tested[lessons[b].0]);
            let p = |t: &Tested| t.p.get().unwrap_or(1.0);
            p(ta).total_cmp(&p(tb)).then(ta.key.cmp(&tb.key))
        });
        let mut taken: Vec<usize> = Vec::new();
        for k in roots {
            let t = &tested[lessons[k].0];
            let mut removed = Bitset::empty(module.n_trades());
            let mut other_lessons = 0;
            for (j, (i, set)) in lessons.iter().enumerate() {
                let other_group = tested[*i].group != t.group;
                if other_group && (tested[*i].dims > 0 || taken.contains(&j)) {
                    removed.or_assign(set);
                    other_lessons += 1;
                }
            }
            if other_lessons == 0 {
                taken.push(k);
                continue;
            }
            match root_without(prior, rows.row(t.row), t, &removed) {
                (true, _) => taken.push(k),
                (false, p_retest) => shadows.push(Shadow {
                    tested: lessons[k].0,
                    p_retest,
                    other_lessons,
                }),
            }
        }
    }
    for s in shadows {
        let j = &mut judged[s.tested];
        j.verdict = Verdict::Rejected;
        j.reason = Reason::OtherPatterns {
            lessons: s.other_lessons,
        };
        j.reject = Some(RejectKind::Incremental);
        j.p_retest = s.p_retest;
    }
}

/// Does root `t` still hold against its module's rest without the module trades `removed`: the
/// same direction, a p within the family's critical value for it, and the minimum support left
/// to compare with? Also returns the re-test's p.
fn root_without(
    prior: &Prior<'_>,
    r: RowRef<'_>,
    t: &Tested,
    removed: &Bitset,
) -> (bool, Option<f64>) {
    let ctx = prior.context(r).expect("a selected subset has its context");
    let module = &prior.index.modules[r.module];
    let own = ctx.trades.trades_of(&[]);
    let before = contrast_with_module_rest(&ctx, &own).0;
    let (after, n_rest) = contrast_with_module_rest_without(&ctx, module, &own, removed);
    let holds = match (before, after) {
        (Some(b), Some(a)) => {
            n_rest >= prior.cfg.lessons.min_support_for(0)
                && a.gap.signum() == b.gap.signum()
                && t.p_threshold.get().is_some_and(|c| a.p_two_sided <= c)
        }
        _ => false,
    };
    (holds, after.map(|a| a.p_two_sided))
}

/// Per module, its selected subsets (indices into `tested`) with their trades as module-level
/// sets.
fn selected_by_module<'r>(
    rows: &'r dyn StageRows,
    tested: &[Tested],
    judged: &[Judged],
    prior: &Prior<'_>,
) -> BTreeMap<&'r str, Vec<(usize, Bitset)>> {
    let mut by_module: BTreeMap<&str, Vec<(usize, Bitset)>> = BTreeMap::new();
    for (i, t) in tested.iter().enumerate() {
        if judged[i].verdict != Verdict::Lesson {
            continue;
        }
        let r = rows.row(t.row);
        let (Some(ctx), Some(module)) = (prior.context(r), prior.index.modules.get(r.module))
        else {
            continue;
        };
        let own = trades_of_scope(ctx.trades, r.scope_values);
        by_module
            .entry(r.module)
            .or_default()
            .push((i, module.of_group(ctx.trades, &own)));
    }
    by_module
}
