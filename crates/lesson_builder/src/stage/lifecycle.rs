//! Lesson lifecycle: candidate → active → retired (with the reason), keys stable across runs,
//! `created_at` set at the first activation and never reset, one edge-history point per run.

use super::evaluate::{scope_pairs, Tested};
use super::levers::lesson_levers;
use super::verdict::{Judged, RejectKind, Verdict};
use super::{LessonError, LessonKey};
use crate::half_life::fit_half_life;
use learnloop_model::time::MS_PER_HOUR;
use learnloop_model::{LoopConfig, Timestamp};
use learnloop_store::lessons::{self, LessonRow, STATUS_ACTIVE, STATUS_CANDIDATE, STATUS_RETIRED};
use learnloop_store::stats::StatsView;
use learnloop_store::Connection;
use rustc_hash::{FxHashMap, FxHashSet};
use std::collections::BTreeMap;

/// An active lesson as the factor step needs it.
pub struct ActiveLesson {
    pub key: String,
    pub module: String,
    pub pattern_key: String,
    pub category: String,
    pub pairs: Vec<(String, String)>,
    pub abs_t: f64,
}

pub struct Outcome {
    pub active: Vec<ActiveLesson>,
    pub newly_active: u64,
    pub retired: u64,
    pub half_lives: u64,
}

fn is_live(status: &str) -> bool {
    status == STATUS_ACTIVE || status == STATUS_CANDIDATE
}

fn retire_reason(j: &Judged, rows: &StatsView<'_>, cfg: &LoopConfig) -> String {
    let reason = j.reason_text(rows, cfg);
    match j.reject {
        Some(RejectKind::Incremental) => format!("superseded by parent: {reason}"),
        Some(RejectKind::Significance) | Some(RejectKind::Untestable) => {
            format!("lost significance: {reason}")
        }
        None => reason,
    }
}

pub fn apply(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    rows: &StatsView<'_>,
    tested: &[Tested],
    judged: &[Judged],
    keys: &[LessonKey],
) -> Result<Outcome, LessonError> {
    let previous: BTreeMap<String, LessonRow> = lessons::all_lessons(conn)?
        .into_iter()
        .map(|l| (l.lesson_key.clone(), l))
        .collect();
    let previous_by_key: FxHashMap<LessonKey, &LessonRow> = previous
        .iter()
        .filter_map(|(k, l)| Some((LessonKey::parse(k)?, l)))
        .collect();
    let mut outcome = Outcome {
        active: Vec::new(),
        newly_active: 0,
        retired: 0,
        half_lives: 0,
    };
    let mut seen: FxHashSet<LessonKey> = FxHashSet::default();
    for ((t, j), &key) in tested.iter().zip(judged).zip(keys) {
        seen.insert(key);
        let prev = previous_by_key.get(&key).copied();
        let (status, reason) = match (j.verdict, prev) {
            (Verdict::Lesson, _) => (STATUS_ACTIVE, j.reason_text(rows, cfg)),
            (Verdict::Candidate, Some(p)) if p.status == STATUS_ACTIVE => {
                (STATUS_RETIRED, j.reason_text(rows, cfg))
            }
            (Verdict::Candidate, _) => (STATUS_CANDIDATE, j.reason_text(rows, cfg)),
            (Verdict::Rejected, Some(p)) if is_live(&p.status) => {
                (STATUS_RETIRED, retire_reason(j, rows, cfg))
            }
            (Verdict::Rejected, Some(p)) => {
                (STATUS_RETIRED, p.status_reason.clone().unwrap_or_default())
            }
            (Verdict::Rejected, None) => continue,
        };
        let key = &key.to_string();
        let r = &rows[t.row];
        if status == STATUS_ACTIVE && prev.is_none_or(|p| p.status != STATUS_ACTIVE) {
            outcome.newly_active += 1;
        }
        if status == STATUS_RETIRED && prev.is_some_and(|p| is_live(&p.status)) {
            outcome.retired += 1;
        }
        let mut lesson = LessonRow {
            lesson_key: key.clone(),
            module: r.module.clone(),
            pattern_key: r.pattern_key.clone(),
            category: r.category,
            scope_mask: r.scope_mask,
            scope_values: r.scope_values.clone(),
            scope_values_hash: r.scope_values_hash,
            n_trades: r.stats.n_trades(),
            mean_rr: r.stats.r.mean,
            edge: t.edge,
            shrunk_edge: t.shrunk_edge,
            t_stat: t.t,
            p_value: t.p,
            q_value: j.q,
            half_life_hours: None,
            latent_factor_id: None,
            levers: serde_json::to_string(&lesson_levers(r.category, t.shrunk_edge, cfg))
                .unwrap_or_default(),
            status: status.to_string(),
            status_reason: Some(reason),
            created_at: prev.and_then(|p| p.created_at),
            updated_at: as_of,
        };
        if status == STATUS_ACTIVE {
            lesson.created_at = lesson.created_at.or(Some(as_of));
            lessons::record_edge(conn, key, as_of, t.edge, t.shrunk_edge, lesson.n_trades)?;
            lesson.half_life_hours = half_life(conn, cfg, key, as_of)?;
            outcome.half_lives += u64::from(lesson.half_life_hours.is_some());
            outcome.active.push(ActiveLesson {
                key: key.clone(),
                module: r.module.clone(),
                pattern_key: r.pattern_key.clone(),
                category: r.category.as_str().to_string(),
                pairs: scope_pairs(&r.scope_values),
                abs_t: t.t.map_or(0.0, f64::abs),
            });
        } else if status == STATUS_RETIRED {
            lesson.half_life_hours = prev.and_then(|p| p.half_life_hours);
        }
        lessons::upsert_lesson(conn, &lesson)?;
    }
    // Lessons whose subset no longer reaches its minimum support were not tested this run.
    for (key, prev) in &previous {
        if LessonKey::parse(key).is_some_and(|k| seen.contains(&k)) || !is_live(&prev.status) {
            continue;
        }
        let mut retired = prev.clone();
        retired.status = STATUS_RETIRED.to_string();
        retired.status_reason = Some(
            "below support: the subset no longer has its minimum number of trades".to_string(),
        );
        retired.latent_factor_id = None;
        retired.updated_at = as_of;
        lessons::upsert_lesson(conn, &retired)?;
        outcome.retired += 1;
    }
    Ok(outcome)
}

fn half_life(
    conn: &Connection,
    cfg: &LoopConfig,
    key: &str,
    as_of: Timestamp,
) -> Result<Option<f64>, LessonError> {
    let points: Vec<(f64, f64)> = lessons::edge_history(conn, key, as_of)?
        .into_iter()
        .map(|(t, e)| (t.millis() as f64 / MS_PER_HOUR as f64, e))
        .collect();
    let l = &cfg.lessons;
    Ok(fit_half_life(
        &points,
        l.half_life_min_points,
        l.half_life_min_hours,
        l.half_life_max_hours,
    ))
}
