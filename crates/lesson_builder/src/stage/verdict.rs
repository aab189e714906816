//! From test figures and q-values to a verdict with its reason (SPEC §4.3–§4.6), and the
//! selection within each (pattern, category): self-sufficiency, other lessons accounted for, and
//! the budget by strength of evidence and cover.

use super::evaluate::{retest, retest_basis, GroupContext, Retest, Screen, Tested};
use super::explained::CHILDREN_FAMILY_WEIGHT;
use super::rows::StageRows;
use super::trades::Bitset;
use super::LessonKey;
use crate::selection::{greedy_by_evidence_except, Bar, Evidence, Explainer, Outcome};
use learnloop_model::LoopConfig;
use rustc_hash::{FxHashMap, FxHashSet};

/// What the run decided about a tested subset: the record's own type, so that the stage and
/// `lesson_candidates` cannot disagree.
pub use learnloop_model::CandidateVerdict as Verdict;

/// Why a lesson was retired, from the verdict that retired it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectKind {
    Untestable,
    Significance,
    Incremental,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Judged {
    pub verdict: Verdict,
    pub reason: Reason,
    pub reject: Option<RejectKind>,
    pub q: Option<f64>,
    /// p of the re-test in selection (self-sufficiency, other lessons accounted for).
    pub p_retest: Option<f64>,
}

/// A later family that tested a subset the first family did not discover, and did not discover it
/// either: `explain` shows it after the q-value reason, so that a subset's second chance is seen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SecondLook {
    /// A child of the discovery at row `parent`, explained away by a refinement that is no
    /// lesson: the q-value in that parent's children family (with `split`, of the one question
    /// it and the other half of its split ask), or not taken because the child pulls the other
    /// way from its parent.
    Child {
        parent: usize,
        q: f64,
        other_way: bool,
        split: bool,
    },
    /// One group of its two-dim scope, tested in `groups` groups of the module and discovered
    /// across them (the scope's q-value `scope_q`): the q-value among those groups.
    SharedScope { groups: usize, scope_q: f64, q: f64 },
}

/// The run's second looks (in the order the families tested), by the subset's row (tested indices move when a deep level's subsets
/// are inserted into their groups).
pub type SecondLooks = FxHashMap<usize, Vec<SecondLook>>;

/// Why a subset got its verdict; rendered to text only where a row records it (most rejected
/// subsets of a replay step never are). Row indices point into the run's stats rows.
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    Selected,
    Limit,
    Untestable,
    /// Spread over too few time clusters.
    Clusters {
        clusters: u32,
    },
    /// The rest of a parent (`None`: of the module) is below the minimum support.
    Complement {
        parent: Option<usize>,
        n: u64,
    },
    /// The same trades as a simpler subset.
    Duplicate {
        of: usize,
    },
    MissingParent,
    /// Left out of the family by the run's independent filter.
    Filtered {
        effective_trades: f64,
        threshold: f64,
        second_looks: Vec<SecondLook>,
    },
    Significance {
        edge: f64,
        second_looks: Vec<SecondLook>,
    },
    /// Differs from its nearest parent by less than the minimum.
    Margin {
        parent: Option<usize>,
        gap: f64,
    },
    /// Its effect is gone once the trades of significant refinements are removed.
    SelfSufficiency {
        by: usize,
    },
    /// Its effect is gone once the trades of a selected lesson are accounted for.
    AccountedFor {
        by: usize,
    },
    /// A pattern root whose effect is gone once the trades of this many selected lessons of
    /// other patterns are taken out of its module comparison.
    OtherPatterns {
        lessons: usize,
    },
}

impl Reason {
    /// The word before the colon in the rendered text (how reports group rejections).
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Selected => "selected",
            Reason::Limit => "limit",
            Reason::Untestable | Reason::MissingParent => "untestable",
            Reason::Clusters { .. } => "clusters",
            Reason::Complement { .. } => "complement",
            Reason::Duplicate { .. } => "duplicate",
            Reason::Significance { .. } | Reason::Filtered { .. } => "q-value",
            Reason::Margin { .. } | Reason::AccountedFor { .. } | Reason::OtherPatterns { .. } => {
                "incremental"
            }
            Reason::SelfSufficiency { .. } => "self-sufficiency",
        }
    }

    fn reject_kind(&self) -> RejectKind {
        match self {
            Reason::Significance { .. } | Reason::Filtered { .. } => RejectKind::Significance,
            Reason::Margin { .. }
            | Reason::SelfSufficiency { .. }
            | Reason::AccountedFor { .. }
            | Reason::OtherPatterns { .. } => RejectKind::Incremental,
            _ => RejectKind::Untestable,
        }
    }
}

impl Judged {
    pub fn reason_text(&self, rows: &dyn StageRows, cfg: &LoopConfig) -> String {
        let l = &cfg.lessons;
        let fdr = l.fdr;
        let scope = |p: &Option<usize>| {
            p.map(|p| rows.row(p).scope_values)
                .unwrap_or("{}")
                .to_string()
        };
        match &self.reason {
            Reason::Selected => "selected".into(),
            Reason::Limit => format!(
                "limit: {} lessons with stronger evidence already selected for this pattern and category",
                l.max_lessons_per_pattern
            ),
            Reason::Untestable => {
                "untestable: no cluster-robust contrast (no spread, or a side in one time cluster)".into()
            }
            Reason::MissingParent => "untestable: a parent subset is not stored".into(),
            Reason::Clusters { clusters } => format!(
                "clusters: the trades fall in {clusters} time clusters of {} days (needs {})",
                l.cluster_days, l.min_clusters
            ),
            Reason::Complement { parent: None, n } => format!(
                "complement: the rest of the module has {n} trades (below the minimum support): the pattern is the module"
            ),
            Reason::Complement { parent, n } => format!(
                "complement: the rest of parent {} has {n} trades (below the minimum support): the subset is its parent",
                scope(parent)
            ),
            Reason::Duplicate { of } => format!(
                "duplicate: the same trades as {}, tested there",
                rows.row(*of).scope_values
            ),
            Reason::Filtered { effective_trades, threshold, second_looks } => with_second_looks(
                format!(
                    "q-value: not in the family: its weakest contrast has {effective_trades:.1} effective trades, below this run's independent filter ({threshold:.1}; the threshold that gave the family the most discoveries)"
                ),
                second_looks,
                rows,
                fdr,
            ),
            Reason::Significance { edge, second_looks } => with_second_looks(
                format!("q-value: edge {edge:+.3} R has q = {} > fdr {fdr}", fmt_q(self.q)),
                second_looks,
                rows,
                fdr,
            ),
            Reason::Margin { parent, gap } => format!(
                "incremental: differs from parent {} by only {gap:.3} R (needs {} R); the parent already explains it",
                scope(parent),
                l.incremental_min
            ),
            Reason::SelfSufficiency { by } => format!(
                "self-sufficiency: explained by {}: without the trades of its significant refinements the effect is gone (re-test p = {})",
                rows.row(*by).scope_values,
                fmt_q(self.p_retest)
            ),
            Reason::AccountedFor { by } => format!(
                "incremental: not significant at the family's bar once {} is accounted for (re-test p = {})",
                rows.row(*by).scope_values,
                fmt_q(self.p_retest)
            ),
            Reason::OtherPatterns { lessons } => format!(
                "incremental: not significant at the family's bar against the rest of the module once the trades of {lessons} lessons of other patterns are taken out of it (re-test p = {})",
                fmt_q(self.p_retest)
            ),
        }
    }
}

/// A q-value reason, followed by what each later family that tested the subset found.
fn with_second_looks(
    reason: String,
    looks: &[SecondLook],
    rows: &dyn StageRows,
    fdr: f64,
) -> String {
    looks.iter().fold(reason, |text, look| {
        format!("{text}; {}", second_look_text(look, rows, fdr))
    })
}

fn second_look_text(look: &SecondLook, rows: &dyn StageRows, fdr: f64) -> String {
    match *look {
        SecondLook::Child {
            parent,
            other_way: true,
            ..
        } => format!(
            "also a child of the explained discovery {}: not taken there, it pulls the other way",
            rows.row(parent).scope_values
        ),
        SecondLook::Child { parent, q, split, .. } => format!(
            "also a child of the explained discovery {}: q = {} > fdr {fdr} in that discovery's children family (weight {CHILDREN_FAMILY_WEIGHT}){}",
            rows.row(parent).scope_values,
            fmt_q(Some(q)),
            if split { ", one question with the other half of its split" } else { "" }
        ),
        SecondLook::SharedScope { groups, scope_q, q } => format!(
            "its scope, tested in {groups} groups of the module, is discovered across them (q = {}), but here q = {} > fdr {fdr} among those groups",
            fmt_q(Some(scope_q)),
            fmt_q(Some(q))
        ),
    }
}

fn fmt_q(q: Option<f64>) -> String {
    match q {
        None => "n/a".to_string(),
        Some(q) if q != 0.0 && q < 1e-3 => format!("{q:.2e}"),
        Some(q) => format!("{q:.3}"),
    }
}

/// Judge one tested subset given its q-value and later families' looks at it (selection comes
/// after).
pub fn judge(t: &Tested, q: Option<f64>, second_looks: &[SecondLook], cfg: &LoopConfig) -> Judged {
    let reason = match t.screen {
        Screen::Clusters => Some(Reason::Clusters {
            clusters: t.clusters,
        }),
        Screen::Complement { parent, n } => Some(Reason::Complement {
            parent: parent.map(|p| p as usize),
            n: u64::from(n),
        }),
        Screen::Duplicate { of } => Some(Reason::Duplicate { of: of as usize }),
        Screen::MissingParent => Some(Reason::MissingParent),
        Screen::Untestable => Some(Reason::Untestable),
        Screen::Filtered {
            effective_trades,
            threshold,
        } => Some(Reason::Filtered {
            effective_trades: f64::from(effective_trades),
            threshold: f64::from(threshold),
            second_looks: second_looks.to_vec(),
        }),
        Screen::Tested => match q {
            None => Some(Reason::Untestable),
            Some(q) if q > cfg.lessons.fdr => Some(Reason::Significance {
                edge: t.edge,
                second_looks: second_looks.to_vec(),
            }),
            Some(_) if !t.margin_ok => Some(Reason::Margin {
                parent: t.nearest_parent_row(),
                gap: t.min_gap.get().unwrap_or(f64::NAN),
            }),
            Some(_) => None,
        },
    };
    match reason {
        Some(reason) => Judged {
            verdict: Verdict::Rejected,
            reject: Some(reason.reject_kind()),
            reason,
            q,
            p_retest: None,
        },
        None => Judged {
            verdict: Verdict::Lesson,
            reason: Reason::Selected,
            reject: None,
            q,
            p_retest: None,
        },
    }
}

/// Selection within each group (SPEC §4.1, §4.6), over the subsets that passed their tests:
/// a subset whose effect is gone without the trades of its significant refinements is rejected
/// (self-sufficiency); the rest are taken by strength of evidence (p, then cover), each re-tested
/// with the trades of the lessons taken before it removed (except those of its ancestors), up to
/// `max_lessons_per_pattern`. A re-test passes at the family's critical value (its `p_threshold`).
/// `unconfirmed` ((subset, refinement) indices): a refinement that cannot explain that subset
/// away, since the family of the subset's children did not confirm it (`explained.rs`).
pub fn select<'g>(
    rows: &dyn StageRows,
    tested: &[Tested],
    judged: &mut [Judged],
    keys: &[LessonKey],
    group_of: &dyn Fn(&Tested) -> Option<GroupContext<'g>>,
    unconfirmed: &FxHashSet<(usize, usize)>,
    cfg: &LoopConfig,
) {
    let mut start = 0;
    while start < tested.len() {
        // Tested subsets of one group are contiguous; find the group's end by its key prefix.
        let end = group_end(tested, start);
        let passing: Vec<usize> = (start..end)
            .filter(|&i| judged[i].verdict == Verdict::Lesson)
            .collect();
        if !passing.is_empty() {
            let explainers = explainers_of(&passing, start..end, tested, judged, cfg);
            let subsets = GroupSubsets {
                passing: &passing,
                explainers: &explainers,
                unconfirmed,
            };
            match group_of(&tested[start]) {
                Some(ctx) => select_group(&subsets, rows, tested, judged, keys, &ctx, cfg),
                None => {
                    for &i in &passing {
                        judged[i].verdict = Verdict::Rejected;
                        judged[i].reason = Reason::Untestable;
                        judged[i].reject = Some(RejectKind::Untestable);
                    }
                }
            }
        }
        start = end;
    }
}

fn group_end(tested: &[Tested], start: usize) -> usize {
    let group = tested[start].group;
    tested[start..]
        .iter()
        .position(|t| t.group != group)
        .map_or(tested.len(), |n| start + n)
}

/// A group's subsets that selection looks at (indices into the run's tested subsets).
struct GroupSubsets<'s> {
    /// Those that passed their tests.
    passing: &'s [usize],
    /// Deeper subsets significant on their own test (`lessons.self_sufficiency_p`) that did not
    /// pass: they can only explain a passing generalization away.
    explainers: &'s [usize],
    /// (subset, explainer) pairs where the explainer does not count.
    unconfirmed: &'s FxHashSet<(usize, usize)>,
}

/// The group's tested subsets (in `range`) that did not pass, are not roots, and whose own p is
/// at most `lessons.self_sufficiency_p`, deeper than the shallowest passing subset.
fn explainers_of(
    passing: &[usize],
    range: std::ops::Range<usize>,
    tested: &[Tested],
    judged: &[Judged],
    cfg: &LoopConfig,
) -> Vec<usize> {
    let shallowest = passing.iter().map(|&i| tested[i].dims).min().unwrap_or(0);
    range
        .filter(|&i| {
            let t = &tested[i];
            judged[i].verdict != Verdict::Lesson
                && matches!(t.screen, Screen::Tested | Screen::Filtered { .. })
                && t.dims > shallowest
                && t.p
                    .get()
                    .is_some_and(|p| p <= cfg.lessons.self_sufficiency_p)
        })
        .collect()
}

fn evidence_of(i: usize, tested: &[Tested], own: &Bitset, keys: &[LessonKey]) -> Evidence {
    Evidence {
        p: tested[i].p.get().unwrap_or(1.0),
        direction: tested[i].t.get().unwrap_or(0.0).signum(),
        cover: own.count(),
        key: keys[i].0,
    }
}

fn select_group(
    subsets: &GroupSubsets<'_>,
    rows: &dyn StageRows,
    tested: &[Tested],
    judged: &mut [Judged],
    keys: &[LessonKey],
    ctx: &GroupContext<'_>,
    cfg: &LoopConfig,
) {
    let passing = subsets.passing;
    let basis = |i: usize| retest_basis(ctx, rows.row(tested[i].row).scope_values);
    let bases: Vec<Retest> = passing.iter().map(|&i| basis(i)).collect();
    let evidence: Vec<Evidence> = passing
        .iter()
        .zip(&bases)
        .map(|(&i, b)| evidence_of(i, tested, &b.own, keys))
        .collect();
    let sets: Vec<&Bitset> = bases.iter().map(|b| &b.own).collect();
    let explainer_bases: Vec<Retest> = subsets.explainers.iter().map(|&i| basis(i)).collect();
    let explainers: Vec<Explainer> = subsets
        .explainers
        .iter()
        .zip(&explainer_bases)
        .map(|(&i, b)| Explainer {
            set: &b.own,
            evidence: evidence_of(i, tested, &b.own, keys),
        })
        .collect();
    let row_of = |k: usize| match passing.get(k) {
        Some(&i) => tested[i].row,
        None => tested[subsets.explainers[k - passing.len()]].row,
    };
    // A passing subset holds at its family's critical value (or, at the nominal bar, at
    // `self_sufficiency_p` when that is more lenient), an explainer at its own level.
    let nominal = |c: Option<f64>| c.map(|c| c.max(cfg.lessons.self_sufficiency_p));
    let retest_at = |k: usize, removal: &Bitset, bar: Bar| {
        let (t, base, threshold) = match passing.get(k) {
            Some(&i) if bar == Bar::Nominal => {
                (&tested[i], &bases[k], nominal(tested[i].p_threshold.get()))
            }
            Some(&i) => (&tested[i], &bases[k], tested[i].p_threshold.get()),
            None => {
                let j = k - passing.len();
                let t = &tested[subsets.explainers[j]];
                (t, &explainer_bases[j], Some(cfg.lessons.self_sufficiency_p))
            }
        };
        let r = retest(ctx, t, base, removal);
        let passes = |p: f64| threshold.is_some_and(|c| p <= c);
        (r.map(|r| r.p), r.is_some_and(|r| r.holds && passes(r.p)))
    };
    let unconfirmed = |k: usize, j: usize| {
        let pair = (passing[k], subsets.explainers[j]);
        subsets.unconfirmed.contains(&pair)
    };
    let outcomes = greedy_by_evidence_except(
        &evidence,
        &sets,
        (&explainers, &unconfirmed),
        cfg.lessons.max_lessons_per_pattern,
        &retest_at,
    );
    for (k, outcome) in outcomes.into_iter().enumerate() {
        let j = &mut judged[passing[k]];
        let (verdict, reason, p_retest) = match outcome {
            Outcome::Selected { p_retest } => (Verdict::Lesson, Reason::Selected, p_retest),
            Outcome::Limit => (Verdict::Candidate, Reason::Limit, None),
            Outcome::Explained { by, p_retest } => (
                Verdict::Rejected,
                Reason::SelfSufficiency { by: row_of(by) },
                p_retest,
            ),
            Outcome::AccountedFor { by, p_retest } => (
                Verdict::Rejected,
                Reason::AccountedFor { by: row_of(by) },
                p_retest,
            ),
        };
        j.reject = (verdict == Verdict::Rejected).then(|| reason.reject_kind());
        j.verdict = verdict;
        j.reason = reason;
        j.p_retest = p_retest;
    }
}
