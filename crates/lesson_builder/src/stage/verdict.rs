//! From test figures and q-values to a verdict with its reason, and simplest-first selection.

use super::evaluate::Tested;
use crate::selection::{select_simplest, SelectionCandidate};
use learnloop_model::LoopConfig;
use learnloop_store::stats::StatsRow;

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
    pub reason: String,
    pub reject: Option<RejectKind>,
    pub q: Option<f64>,
    pub q_incremental: Option<f64>,
}

fn fmt_q(q: Option<f64>) -> String {
    match q {
        None => "n/a".to_string(),
        Some(q) if q != 0.0 && q < 1e-3 => format!("{q:.2e}"),
        Some(q) => format!("{q:.3}"),
    }
}

/// Judge one tested subset given its q-values (selection comes after).
pub fn judge(
    t: &Tested,
    q: Option<f64>,
    q_incr: Option<f64>,
    rows: &[StatsRow],
    cfg: &LoopConfig,
) -> Judged {
    let fdr = cfg.lessons.fdr;
    let reject = |kind: RejectKind, reason: String| Judged {
        verdict: Verdict::Rejected,
        reason,
        reject: Some(kind),
        q,
        q_incremental: q_incr,
    };
    let Some(qv) = q else {
        return reject(
            RejectKind::Untestable,
            "untestable: no variance among the subset's trades".into(),
        );
    };
    if qv > fdr {
        return reject(
            RejectKind::Significance,
            format!(
                "q-value: edge {:+.3} R has q = {} > fdr {fdr}",
                t.edge,
                fmt_q(q)
            ),
        );
    }
    if t.dims > 0 {
        let parent = t
            .nearest_parent
            .map(|p| rows[p].scope_values.as_str())
            .unwrap_or("{}");
        if !t.margin_ok {
            let gap = t.min_gap.unwrap_or(f64::NAN);
            return reject(
                RejectKind::Incremental,
                format!(
                    "incremental: improves on parent {parent} by only {gap:+.3} R (needs {} R in the edge's direction); the parent already explains it",
                    cfg.lessons.incremental_min
                ),
            );
        }
        match q_incr {
            Some(qi) if qi <= fdr => {}
            _ => {
                return reject(
                    RejectKind::Incremental,
                    format!("incremental: the difference to parent {parent} is not significant (q = {} > fdr {fdr})", fmt_q(q_incr)),
                )
            }
        }
    }
    Judged {
        verdict: Verdict::Lesson,
        reason: "selected".into(),
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
    rows: &[StatsRow],
    keys: &[String],
    cfg: &LoopConfig,
) {
    let group_keys: Vec<String> = tested
        .iter()
        .map(|t| {
            let r = &rows[t.row];
            format!(
                "{}\u{1f}{}\u{1f}{}",
                r.module,
                r.pattern_key,
                r.category.as_str()
            )
        })
        .collect();
    let passing: Vec<SelectionCandidate<'_>> = tested
        .iter()
        .enumerate()
        .filter(|(i, _)| judged[*i].verdict == Verdict::Lesson)
        .map(|(i, t)| SelectionCandidate {
            group: &group_keys[i],
            dims: t.dims,
            abs_t: t.t.map_or(0.0, f64::abs),
            key: &keys[i],
        })
        .collect();
    let selected = select_simplest(&passing, cfg.lessons.max_lessons_per_pattern);
    for (i, j) in judged.iter_mut().enumerate() {
        if j.verdict == Verdict::Lesson && !selected.contains(keys[i].as_str()) {
            j.verdict = Verdict::Candidate;
            j.reason = format!(
                "limit: {} simpler or stronger lessons already selected for this pattern and category",
                cfg.lessons.max_lessons_per_pattern
            );
        }
    }
}
