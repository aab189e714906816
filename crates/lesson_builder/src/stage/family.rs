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
//! support an effect of their own: testing them only under a discovered parent keeps their
//! hypotheses few, so the bar for the simple ones is not set by them, and a subtree under no
//! discovery never needs to be tested (SPEC §12).

use super::evaluate::{Screen, Tested};
use super::lattice::ParentKeys;
use super::rows::StageRows;
use super::LessonKey;
use learnloop_model::LoopConfig;
use learnloop_stats::{benjamini_hochberg, equal_share_weights, rejection_threshold, weighted_p};
use rustc_hash::FxHashSet;

/// Subsets of this many dims and more are hypotheses only under a discovered parent.
pub const FIRST_HIERARCHICAL_DIMS: u32 = 3;

/// The family's decisions: each tested subset's q-value (`None`: not in the family) and how many
/// hypotheses the family had.
pub struct FamilyOutcome {
    /// Index for index with the run's tested subsets.
    pub q: Vec<Option<f64>>,
    /// Hypotheses in the family, over all levels.
    pub size: u64,
}

/// A subset's identity within the run: its group and its stored key.
type SubsetId = (LessonKey, u64, u64);

/// Test the run's family: sets each member's q-value, FDR weight and re-test threshold, and
/// screens the deep subsets that no discovered parent admits (`Screen::Hierarchy`).
pub fn test_family(tested: &mut [Tested], rows: &dyn StageRows, cfg: &LoopConfig) -> FamilyOutcome {
    let fdr = cfg.lessons.fdr;
    let mut q = vec![None; tested.len()];
    let candidate = |t: &Tested| t.screen == Screen::Tested && t.p.get().is_some();
    let base: Vec<usize> = (0..tested.len())
        .filter(|&i| candidate(&tested[i]) && tested[i].dims < FIRST_HIERARCHICAL_DIMS)
        .collect();
    let strata: Vec<u32> = base.iter().map(|&i| tested[i].dims).collect();
    test_level(tested, &base, &equal_share_weights(&strata), fdr, &mut q);
    let mut size = base.len() as u64;
    let id_of = |t: &Tested| {
        let r = rows.row(t.row);
        (t.group, r.scope_mask, r.scope_values_hash)
    };
    let discovered_at = |dims: u32, tested: &[Tested], q: &[Option<f64>]| -> FxHashSet<SubsetId> {
        (0..tested.len())
            .filter(|&i| tested[i].dims == dims && q[i].is_some_and(|q| q <= fdr))
            .map(|i| id_of(&tested[i]))
            .collect()
    };
    let deepest = tested.iter().map(|t| t.dims).max().unwrap_or(0);
    let mut parents = ParentKeys::new(&cfg.dims);
    let mut discovered = discovered_at(FIRST_HIERARCHICAL_DIMS - 1, tested, &q);
    for dims in FIRST_HIERARCHICAL_DIMS..=deepest {
        let mut members = Vec::new();
        for (i, t) in tested.iter_mut().enumerate() {
            if t.dims != dims || !candidate(t) {
                continue;
            }
            let r = rows.row(t.row);
            let admitted = parents
                .ids_of(r.scope_mask, r.scope_values)
                .any(|(mask, hash)| discovered.contains(&(t.group, mask, hash)));
            if admitted {
                members.push(i);
            } else {
                t.screen = Screen::Hierarchy;
            }
        }
        test_level(tested, &members, &vec![1.0; members.len()], fdr, &mut q);
        size += members.len() as u64;
        discovered = discovered_at(dims, tested, &q);
    }
    FamilyOutcome { q, size }
}

/// One BH family (weighted by `weights`, index for index with `members`) at `fdr`: the members'
/// q-values, weights and re-test thresholds (a re-test passes at the family's critical value,
/// scaled by its weight).
fn test_level(
    tested: &mut [Tested],
    members: &[usize],
    weights: &[f64],
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
        tested[i].p_threshold = critical.map(|c| c * w).into();
        q[i] = Some(qi);
    }
}
