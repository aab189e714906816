//! Why a pattern/category/scope is or is not a lesson: the stage's own verdict of its last run
//! when the subset was tested, else the reason it was not (support, or no statistics stored),
//! with its parents' figures. `learnloop explain` only prints this.

use crate::lesson_key_of;
use crate::stage::LessonError;
use learnloop_model::config::FIRST_HIERARCHICAL_DIMS;
use learnloop_model::{
    ActionCategory, CandidateRow, CandidateVerdict, DimensionList, LessonRow, LoopConfig, ScopeKey,
};
use learnloop_store::stats::GroupKey;
use learnloop_store::Connection;
use serde::Serialize;
use std::fmt;

/// What `explain` says about a subset: the last run's verdict when it was tested, else why it
/// was not. Serialized (and displayed) as one snake_case word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExplainVerdict {
    /// The last lessons run tested the subset and decided this.
    Tested(CandidateVerdict),
    /// Statistics are stored but the subset lacks the support the test needs.
    NotTested,
    /// Too few trades for the aggregate stage to store statistics at all.
    NotStored,
}

impl ExplainVerdict {
    /// The word recorded in `--json` output and printed by the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tested(v) => v.as_str(),
            Self::NotTested => "not_tested",
            Self::NotStored => "not_stored",
        }
    }
}

impl fmt::Display for ExplainVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl Serialize for ExplainVerdict {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One parent of the subset: the subset without one of its dims.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ParentFigures {
    /// The dimension dropped.
    pub removed_dim: String,
    /// The parent's sorted-key scope JSON.
    pub scope_values: String,
    /// Its trades, if statistics are stored.
    pub n_trades: Option<u64>,
    /// Its mean R, if statistics are stored.
    pub mean_rr: Option<f64>,
    /// The last run's verdict on the parent and why, if it was tested (a subset found in the
    /// family of an explained parent's children shows that parent's self-sufficiency reason).
    pub verdict: Option<String>,
    /// The reason of that verdict, in words.
    pub reason: Option<String>,
    /// Its q-value in the last run's family, if it was in one.
    pub q_value: Option<f64>,
    /// The family of that q-value (`lesson_candidates.fdr_family`).
    pub fdr_family: Option<String>,
}

/// What the store says about one subset, and the verdict on it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explanation {
    /// Producing module.
    pub module: String,
    /// The pattern.
    pub pattern_key: String,
    /// The action category (`action_category` in JSON, as in the tables).
    #[serde(rename = "action_category")]
    pub category: ActionCategory,
    /// Bit mask of the subset's dimensions.
    pub scope_mask: u64,
    /// Its sorted-key scope JSON.
    pub scope_values: String,
    /// The key its lesson has (or would have).
    pub lesson_key: String,
    /// The last run's verdict, or why there is none.
    pub verdict: ExplainVerdict,
    /// Why, in words.
    pub reason: String,
    /// Its trades, if statistics are stored.
    pub n_trades: Option<u64>,
    /// Its mean R, if statistics are stored.
    pub mean_rr: Option<f64>,
    /// The minimum support a subset of its size needs.
    pub min_support: u64,
    /// The last run's test of the subset, if tested.
    pub test: Option<CandidateRow>,
    /// Its lesson, if it ever was one.
    pub lesson: Option<LessonRow>,
    /// Its parents (the subset without one dimension each).
    pub parents: Vec<ParentFigures>,
}

/// Why a subset has no statistics row: no run yet, a pattern (or category) the store does not
/// know — most often a mistyped key — or too few trades with this scope.
fn not_stored_reason(
    conn: &Connection,
    cfg: &LoopConfig,
    group: GroupKey<'_>,
    key: &ScopeKey,
) -> Result<String, LessonError> {
    use learnloop_store::stats::{pattern_known, PatternKnown};
    let GroupKey {
        pattern_key,
        category,
        ..
    } = group;
    if learnloop_store::stats::aggregated_as_of(conn)?.is_none() {
        return Ok("no statistics stored: no run has aggregated this store yet".into());
    }
    Ok(match pattern_known(conn, pattern_key, category)? {
        PatternKnown::Unknown => format!(
            "no statistics stored for pattern {pattern_key:?}: no linked trade has an action of it \
             (check the key; `learnloop export pattern_scope_stats` lists the stored patterns)"
        ),
        PatternKnown::OtherCategories => format!(
            "no statistics stored: pattern {pattern_key:?} has no linked {category} action (it has \
             other categories)"
        ),
        PatternKnown::WithCategory => {
            let article = if category.as_str().starts_with(['a', 'e']) {
                "an"
            } else {
                "a"
            };
            format!(
                "no statistics stored: fewer than {} trades had {article} {category} action of \
                 this pattern with this scope",
                cfg.stored_min_trades(key.dims()),
            )
        }
    })
}

/// The subset `key` of `group`, as the last run left it.
pub fn explain(
    conn: &Connection,
    cfg: &LoopConfig,
    group: GroupKey<'_>,
    key: &ScopeKey,
) -> Result<Explanation, LessonError> {
    let GroupKey {
        module,
        pattern_key,
        category,
    } = group;
    let scope_values = key.values_json();
    let (mask, hash) = (key.mask, key.hash());
    let stats = learnloop_store::stats::get(conn, module, pattern_key, category, mask, hash)?;
    let test = learnloop_store::lessons::candidate(conn, group, mask, hash)?;
    let lesson_key = lesson_key_of(module, pattern_key, category, &scope_values);
    let lesson = learnloop_store::lessons::lesson(conn, &lesson_key)?;
    let parents = parents(conn, &cfg.dims, group, key)?;
    let min_support = cfg.lessons.min_support_for(key.dims());
    let n_trades = stats.as_ref().map(|s| s.stats.n_trades());
    let deep_reason = match (&test, key.dims() >= FIRST_HIERARCHICAL_DIMS) {
        (None, true) => untested_deep_reason(conn, cfg, group, key, &parents)?,
        _ => None,
    };
    let (verdict, reason) = match (&test, n_trades, deep_reason) {
        (Some(t), _, _) => (ExplainVerdict::Tested(t.verdict), t.reason.clone()),
        (None, Some(_), Some(reason)) => (ExplainVerdict::NotTested, reason),
        (None, Some(n), None) => (
            ExplainVerdict::NotTested,
            not_tested_reason(conn, n, min_support, key.dims())?,
        ),
        (None, None, Some(reason)) => (ExplainVerdict::NotStored, reason),
        (None, None, None) => (
            ExplainVerdict::NotStored,
            match duplicate_parent(conn, cfg, group, key)? {
                Some(parent) => format!(
                    "duplicate: the same actions as its parent {parent} (a dimension constant \
                     within it), stored and tested there"
                ),
                None => not_stored_reason(conn, cfg, group, key)?,
            },
        ),
    };
    Ok(Explanation {
        module: module.to_string(),
        pattern_key: pattern_key.to_string(),
        category,
        scope_mask: mask,
        scope_values,
        lesson_key,
        verdict,
        reason,
        n_trades,
        mean_rr: stats.as_ref().map(|s| s.stats.r.mean),
        min_support,
        test,
        lesson,
        parents,
    })
}

/// Why a stored subset was not tested: its support, or no lesson run since the statistics.
fn not_tested_reason(
    conn: &Connection,
    n: u64,
    min_support: u64,
    dims: u32,
) -> Result<String, LessonError> {
    let aggregated = learnloop_store::stats::aggregated_as_of(conn)?;
    let learned = learnloop_store::lessons::lesson_stage_as_of(conn)?;
    Ok(
        if n >= min_support || learned.is_none() || learned < aggregated {
            "not tested: no lesson run since these statistics were computed (run `learnloop run` or \
         `learnloop lessons`)"
            .to_string()
        } else {
            format!("support: {n} trades < {min_support}, the minimum for a {dims}-dim subset")
        },
    )
}

/// Why the last run did not test a subset of `FIRST_HIERARCHICAL_DIMS` dims or more, if it ran
/// (its lesson_candidates say so): the hierarchical family computes such a subset only as the
/// child of a discovery one dim smaller (`parents`, as [`parents`] read them), and then only with
/// its minimum support.
fn untested_deep_reason(
    conn: &Connection,
    cfg: &LoopConfig,
    group: GroupKey<'_>,
    key: &ScopeKey,
    parents: &[ParentFigures],
) -> Result<Option<String>, LessonError> {
    use learnloop_store::stats::{pattern_known, PatternKnown};
    // Before any lesson run, or for a pattern or category the store does not know, the general
    // reasons apply.
    let lessons_ran = learnloop_store::lessons::lesson_stage_as_of(conn)?.is_some();
    let known = pattern_known(conn, group.pattern_key, group.category)?;
    if !lessons_ran || known != PatternKnown::WithCategory {
        return Ok(None);
    }
    let fdr = cfg.lessons.fdr;
    let discovered = |p: &&ParentFigures| p.q_value.is_some_and(|q| q <= fdr);
    // A children family is tested after the deep levels: its discoveries' children are not.
    let opened_late = |p: &&ParentFigures| p.fdr_family.as_deref() == Some("children");
    let seeded = parents
        .iter()
        .filter(discovered)
        .find(|p| !opened_late(p))
        .map(|p| &p.scope_values);
    let late = parents.iter().filter(discovered).find(opened_late);
    let dims = key.dims();
    Ok(Some(match (seeded, late) {
        (None, Some(parent)) => format!(
            "hierarchy: its parent {} is a discovery of a children family, which is tested after \
             the deep levels: its children are not tested",
            parent.scope_values
        ),
        (Some(parent), _) => format!(
            "support: fewer than {} trades, the minimum for a {dims}-dim subset (its parent {parent} \
             is a discovery, and its children with that support were tested)",
            cfg.lessons.min_support_for(dims)
        ),
        (None, None) => format!(
            "hierarchy: a subset of {dims} dims is a hypothesis only under a parent of {} dims that \
             is a discovery of the run (q ≤ fdr {fdr}); none of its parents is",
            dims - 1
        ),
    }))
}

/// The parent whose actions the subset holds exactly (a dimension constant within that parent),
/// if any: the default enumeration stores such a subset once, as the parent (SPEC §4.4, §12).
/// Reads the group's action scopes: `explain` asks about one subset at a time.
fn duplicate_parent(
    conn: &Connection,
    cfg: &LoopConfig,
    group: GroupKey<'_>,
    key: &ScopeKey,
) -> Result<Option<String>, LessonError> {
    if key.values.is_empty() {
        return Ok(None);
    }
    let parents = parent_keys(&cfg.dims, key);
    let mut own = 0u64;
    let mut of_parent = vec![0u64; parents.len()];
    for scope in learnloop_store::events::scopes_of_group(conn, group)? {
        let pairs: std::collections::BTreeMap<String, String> =
            learnloop_model::scope::scope_pairs(&scope)
                .into_iter()
                .collect();
        let has = |k: &ScopeKey| k.values.iter().all(|(d, v)| pairs.get(d) == Some(v));
        own += u64::from(has(key));
        for (n, (_, parent)) in of_parent.iter_mut().zip(&parents) {
            *n += u64::from(has(parent));
        }
    }
    Ok(parents
        .iter()
        .zip(&of_parent)
        .find(|(_, &n)| own > 0 && n == own)
        .map(|((_, parent), _)| parent.values_json()))
}

/// Each parent of `key` (the subset without one of its dimensions), with the dimension dropped.
fn parent_keys(dims: &DimensionList, key: &ScopeKey) -> Vec<(String, ScopeKey)> {
    key.values
        .iter()
        .map(|(removed, _)| {
            let parent = ScopeKey::from_pairs(
                dims,
                key.values.iter().filter(|(d, _)| d != removed).cloned(),
            );
            (removed.clone(), parent)
        })
        .collect()
}

/// The figures of each parent of `key` (the subset without one of its dimensions).
fn parents(
    conn: &Connection,
    dims: &DimensionList,
    group: GroupKey<'_>,
    key: &ScopeKey,
) -> Result<Vec<ParentFigures>, LessonError> {
    let mut out = Vec::new();
    for (removed, parent) in parent_keys(dims, key) {
        let row = learnloop_store::stats::get(
            conn,
            group.module,
            group.pattern_key,
            group.category,
            parent.mask,
            parent.hash(),
        )?;
        let test = learnloop_store::lessons::candidate(conn, group, parent.mask, parent.hash())?;
        out.push(ParentFigures {
            removed_dim: removed,
            scope_values: parent.values_json(),
            n_trades: row.as_ref().map(|r| r.stats.n_trades()),
            mean_rr: row.as_ref().map(|r| r.stats.r.mean),
            verdict: test.as_ref().map(|t| t.verdict.as_str().to_string()),
            q_value: test.as_ref().and_then(|t| t.q_value),
            fdr_family: test.as_ref().and_then(|t| t.fdr_family.clone()),
            reason: test.map(|t| t.reason),
        });
    }
    Ok(out)
}
