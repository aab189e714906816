//! From test figures and q-values to a verdict with its reason, and simplest-first selection.

use super::evaluate::Tested;
use super::LessonKey;
use crate::selection::{select_simplest, SelectionCandidate};
use learnloop_model::LoopConfig;
use learnloop_store::stats::StatsView;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Selected: an active lesson.
    Lesson,
    /// Passed every test but the per-pattern limit was reached by simpler or stronger lessons.
    Candidate,
    Rejected,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Lesson => "lesson",
            Verdict::Candidate => "candidate",
            Verdict::Rejected => "rejected",
        }
    }
}

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
    pub q_incremental: Option<f64>,
}

/// Why a subset got its verdict; rendered to text only where a row records it (most rejected
/// subsets of a replay step never are).
#[derive(Debug, Clone, PartialEq)]
pub enum Reason {
    Selected,
    Limit,
    Untestable,
    Significance {
        edge: f64,
    },
    /// Improves on its nearest parent (a row index) by less than the minimum.
    Margin {
        parent: Option<usize>,
        gap: f64,
    },
    /// The difference to its nearest parent is not significant.
    NotIncremental {
        parent: Option<usize>,
    },
}

impl Reason {
    /// The word before the colon in the rendered text (how reports group rejections).
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Selected => "selected",
            Reason::Limit => "limit",
            Reason::Untestable => "untestable",
            Reason::Significance { .. } => "q-value",
            Reason::Margin { .. } | Reason::NotIncremental { .. } => "incremental",
        }
    }
}

impl Judged {
    pub fn reason_text(&self, rows: &StatsView<'_>, cfg: &LoopConfig) -> String {
        let fdr = cfg.lessons.fdr;
        let parent_text = |p: &Option<usize>| {
            p.map(|p| rows[p].scope_values.as_str())
                .unwrap_or("{}")
                .to_string()
        };
        match &self.reason {
            Reason::Selected => "selected".into(),
            Reason::Limit => format!(
                "limit: {} simpler or stronger lessons already selected for this pattern and category",
                cfg.lessons.max_lessons_per_pattern
            ),
            Reason::Untestable => "untestable: no variance among the subset's trades".into(),
            Reason::Significance { edge } => {
                format!("q-value: edge {edge:+.3} R has q = {} > fdr {fdr}", fmt_q(self.q))
            }
            Reason::Margin { parent, gap } => format!(
                "incremental: improves on parent {} by only {gap:+.3} R (needs {} R in the edge's direction); the parent already explains it",
                parent_text(parent),
                cfg.lessons.incremental_min
            ),
            Reason::NotIncremental { parent } => format!(
                "incremental: the difference to parent {} is not significant (q = {} > fdr {fdr})",
                parent_text(parent),
                fmt_q(self.q_incremental)
            ),
        }
    }
}

fn fmt_q(q: Option<f64>) -> String {
    match q {
        None => "n/a".to_string(),
        Some(q) if q != 0.0 && q < 1e-3 => format!("{q:.2e}"),
        Some(q) => format!("{q:.3}"),
    }
}

/// Judge one tested subset given its q-values (selection comes after).
pub fn judge(t: &Tested, q: Option<f64>, q_incr: Option<f64>, cfg: &LoopConfig) -> Judged {
    let fdr = cfg.lessons.fdr;
    let reject = |kind: RejectKind, reason: Reason| Judged {
        verdict: Verdict::Rejected,
        reason,
        reject: Some(kind),
        q,
        q_incremental: q_incr,
    };
    let Some(qv) = q else {
        return reject(RejectKind::Untestable, Reason::Untestable);
    };
    if qv > fdr {
        return reject(
            RejectKind::Significance,
            Reason::Significance { edge: t.edge },
        );
    }
    if t.dims > 0 {
        if !t.margin_ok {
            let gap = t.min_gap.unwrap_or(f64::NAN);
            return reject(
                RejectKind::Incremental,
                Reason::Margin {
                    parent: t.nearest_parent,
                    gap,
                },
            );
        }
        match q_incr {
            Some(qi) if qi <= fdr => {}
            _ => {
                return reject(
                    RejectKind::Incremental,
                    Reason::NotIncremental {
                        parent: t.nearest_parent,
                    },
                )
            }
        }
    }
    Judged {
        verdict: Verdict::Lesson,
        reason: Reason::Selected,
        reject: None,
        q,
        q_incremental: q_incr,
    }
}

/// Simplest first (fewest dims, then largest |t|) at most `max_lessons_per_pattern` per group:
/// passing subsets beyond the limit become candidates.
pub fn select(
    tested: &[Tested],
    judged: &mut [Judged],
    rows: &StatsView<'_>,
    keys: &[LessonKey],
    cfg: &LoopConfig,
) {
    let passing_idx: Vec<usize> = (0..tested.len())
        .filter(|&i| judged[i].verdict == Verdict::Lesson)
        .collect();
    let group_keys: Vec<String> = passing_idx
        .iter()
        .map(|&i| {
            let r = &rows[tested[i].row];
            format!(
                "{}\u{1f}{}\u{1f}{}",
                r.module,
                r.pattern_key,
                r.category.as_str()
            )
        })
        .collect();
    let key_texts: Vec<String> = passing_idx.iter().map(|&i| keys[i].to_string()).collect();
    let passing: Vec<SelectionCandidate<'_>> = passing_idx
        .iter()
        .zip(&group_keys)
        .zip(&key_texts)
        .map(|((&i, group), key)| SelectionCandidate {
            group,
            dims: tested[i].dims,
            abs_t: tested[i].t.map_or(0.0, f64::abs),
            key,
        })
        .collect();
    let selected: std::collections::BTreeSet<LessonKey> =
        select_simplest(&passing, cfg.lessons.max_lessons_per_pattern)
            .into_iter()
            .filter_map(LessonKey::parse)
            .collect();
    for (i, j) in judged.iter_mut().enumerate() {
        if j.verdict == Verdict::Lesson && !selected.contains(&keys[i]) {
            j.verdict = Verdict::Candidate;
            j.reason = Reason::Limit;
        }
    }
}
