//! Lesson lifecycle with hysteresis (SPEC §4.8): candidate → active → retired (with the reason),
//! keys stable across runs, `created_at` set at the first activation and never reset,
//! `confirmed_at` moved only when fresh trades re-confirm the lesson, one edge-history point per
//! run.
//!
//! A lesson becomes active as soon as it passes every test. It is retired only when its evidence
//! is clearly gone: it failed on `retire_after_failures` consecutive runs (default 2) — a failed
//! test, or fresh trades that significantly contradict it (the effect stopped) — or its shrunk
//! edge changed sign. In between it stays active, so a lesson near a threshold does not
//! flicker on and off from one night to the next. A lesson outranked by the per-pattern limit
//! becomes a candidate (its evidence is intact; it is merely not among the strongest), and a
//! lesson kept by hysteresis never takes a place in the limit from one that passed.
//!
//! Every transition depends on the stored state and this run's verdict only, and a run at the
//! as-of time of the stored state (a re-run) counts no new failure and sees no fresh trades, so
//! re-running a night on unchanged input leaves `learning_lessons` unchanged.

use super::evaluate::Tested;
use super::levers::lesson_levers;
use super::rows::StageRows;
use super::verdict::{Judged, RejectKind, Verdict};
use super::{LessonError, LessonKey};
use crate::half_life::fit_half_life;
use learnloop_model::scope::scope_pairs;
use learnloop_model::time::MS_PER_HOUR;
use learnloop_model::{LessonRow, LessonStatus, LoopConfig, Timestamp};
use learnloop_store::lessons;
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

fn failure_text(j: &Judged, rows: &dyn StageRows, cfg: &LoopConfig) -> String {
    let reason = j.reason_text(rows, cfg);
    match j.reject {
        Some(RejectKind::Incremental) => format!("superseded by parent: {reason}"),
        Some(RejectKind::Significance) | Some(RejectKind::Untestable) => {
            format!("lost significance: {reason}")
        }
        None => reason,
    }
}

const NOT_TESTED: &str = "below support: the subset no longer has its minimum number of trades";

/// Why a live lesson's subset was not tested this run: a deep one is a hypothesis only under a
/// discovered parent (the hierarchical family), any other lacks its minimum support.
fn not_tested_reason(prev: &LessonRow) -> String {
    let dims = scope_pairs(&prev.scope_values).len() as u32;
    if dims >= learnloop_model::config::FIRST_HIERARCHICAL_DIMS {
        format!(
            "not tested: a subset of {dims} dims is a hypothesis only under a parent of {} dims \
             that is a discovery of the run (or with its minimum support under one); this run has \
             neither",
            dims - 1
        )
    } else {
        NOT_TESTED.to_string()
    }
}

/// The subset's figures in this run, as the confirmation window needs them.
#[derive(Clone, Copy)]
struct Figures {
    n_trades: u64,
    mean_rr: f64,
    edge: f64,
    shrunk_edge: f64,
    dims: u32,
    /// Sample standard deviation of the subset's R (0 when undefined).
    sd_rr: f64,
}

/// What the trades since the last confirmation say about an active lesson.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Fresh {
    /// Fewer than the minimum support of the subset's size: wait for more.
    TooFew,
    /// They still show the effect: the lesson is re-confirmed.
    Confirm,
    /// They neither confirm nor clearly contradict it: the evidence ages.
    Unclear,
    /// Their mean lies significantly below the lesson's edge (one-sided z-test at 5 %): the
    /// effect has stopped, which counts as a failed run.
    Contradict { fresh_edge: f64, n_fresh: u64 },
}

/// One-sided 5 % normal quantile.
const Z_5_PERCENT: f64 = 1.644_853_626_951_472_2;

/// The fresh trades are those after the last confirmation: their mean is recovered from the
/// subset's count and mean now and at the confirmation. Against the lesson's reference level now
/// (its mean minus its edge: the parent or baseline it beats) they must show at least
/// `confirm_share` of the edge in the edge's direction, over at least the minimum support of the
/// subset's size (a handful of trades would re-confirm a stopped effect too often by chance).
fn fresh_trades(prev: &LessonRow, now: Figures, cfg: &LoopConfig) -> Fresh {
    let (Some(n_c), Some(mean_c)) = (prev.confirmed_n_trades, prev.confirmed_mean_rr) else {
        return Fresh::TooFew;
    };
    if now.n_trades <= n_c || now.n_trades - n_c < cfg.lessons.min_support_for(now.dims) {
        return Fresh::TooFew;
    }
    let n_fresh = now.n_trades - n_c;
    let fresh_mean = (now.n_trades as f64 * now.mean_rr - n_c as f64 * mean_c) / n_fresh as f64;
    let direction = now.shrunk_edge.signum();
    let fresh_edge = (fresh_mean - (now.mean_rr - now.edge)) * direction;
    if fresh_edge >= cfg.lessons.confirm_share * now.edge.abs() {
        return Fresh::Confirm;
    }
    let se = now.sd_rr / (n_fresh as f64).sqrt();
    if se > 0.0 && (fresh_edge - now.edge.abs()) / se < -Z_5_PERCENT {
        return Fresh::Contradict {
            fresh_edge,
            n_fresh,
        };
    }
    Fresh::Unclear
}

fn sign_changed(before: f64, now: f64) -> bool {
    before * now < 0.0
}

/// What this run does to one lesson.
#[derive(Debug, Clone, PartialEq)]
enum Transition {
    /// Passed every test and was selected; `confirm` when this run re-confirms it.
    Active {
        confirm: bool,
    },
    /// Failed while active, kept by hysteresis: `failed_runs` consecutive failures so far.
    Kept {
        failed_runs: u32,
        why: String,
    },
    Candidate,
    Retired {
        why: String,
        /// The consecutive failures that retired it, when that was the cause (else the stored
        /// count stands).
        failed_runs: Option<u32>,
    },
}

fn transition(
    prev: Option<&LessonRow>,
    j: &Judged,
    now: Figures,
    later_run: bool,
    rows: &dyn StageRows,
    cfg: &LoopConfig,
) -> Option<Transition> {
    let was_active = prev.is_some_and(|p| p.status == LessonStatus::Active);
    Some(match j.verdict {
        Verdict::Lesson => {
            let continuing = prev.filter(|p| {
                was_active
                    && p.confirmed_n_trades.is_some()
                    && !sign_changed(p.shrunk_edge, now.shrunk_edge)
            });
            let Some(p) = continuing else {
                return Some(Transition::Active { confirm: true });
            };
            match fresh_trades(p, now, cfg) {
                Fresh::Confirm => Transition::Active { confirm: true },
                Fresh::TooFew | Fresh::Unclear => Transition::Active { confirm: false },
                Fresh::Contradict {
                    fresh_edge,
                    n_fresh,
                } => {
                    let why = format!(
                        "stopped: the {n_fresh} trades since the last confirmation show \
                         {fresh_edge:+.3} R against an edge of {:+.3} R (significantly less)",
                        now.edge.abs()
                    );
                    kept_or_retired(p, why, later_run, cfg)
                }
            }
        }
        Verdict::Candidate => Transition::Candidate,
        Verdict::Rejected => {
            let p = prev?;
            if !was_active {
                let why = if p.status.is_live() {
                    failure_text(j, rows, cfg)
                } else {
                    p.status_reason.clone().unwrap_or_default()
                };
                return Some(Transition::Retired {
                    why,
                    failed_runs: None,
                });
            }
            if sign_changed(p.shrunk_edge, now.shrunk_edge) {
                return Some(Transition::Retired {
                    why: format!(
                        "edge changed sign: shrunk edge {:+.3} R, was {:+.3} R; {}",
                        now.shrunk_edge,
                        p.shrunk_edge,
                        failure_text(j, rows, cfg)
                    ),
                    failed_runs: None,
                });
            }
            kept_or_retired(p, failure_text(j, rows, cfg), later_run, cfg)
        }
    })
}

/// An active lesson that failed this run: kept until it has failed on
/// `retire_after_failures` consecutive runs. A re-run of the same as-of is not another run.
fn kept_or_retired(prev: &LessonRow, why: String, later_run: bool, cfg: &LoopConfig) -> Transition {
    let failed_runs = if later_run {
        prev.failed_runs.saturating_add(1)
    } else {
        prev.failed_runs.max(1)
    };
    let limit = cfg.lessons.retire_after_failures;
    if failed_runs >= limit {
        Transition::Retired {
            why: format!("failed on {failed_runs} consecutive runs: {why}"),
            failed_runs: Some(failed_runs),
        }
    } else {
        Transition::Kept {
            failed_runs,
            why: format!(
                "kept active (hysteresis: retired after {limit} consecutive failed runs, \
                 {failed_runs} so far): {why}"
            ),
        }
    }
}

/// One lesson's decision before the limit check: its row, and the figures of its test (`None`
/// when the subset was not tested this run).
struct Decision<'a> {
    key: LessonKey,
    prev: Option<&'a LessonRow>,
    tested: Option<(&'a Tested, &'a Judged)>,
    transition: Transition,
    abs_t: f64,
}

impl Decision<'_> {
    fn group(&self, rows: &dyn StageRows) -> (String, String, &'static str) {
        match (self.tested, self.prev) {
            (Some((t, _)), _) => {
                let r = rows.row(t.row);
                (
                    r.module.to_string(),
                    r.pattern_key.to_string(),
                    r.category.as_str(),
                )
            }
            (None, Some(p)) => (p.module.clone(), p.pattern_key.clone(), p.category.as_str()),
            (None, None) => Default::default(),
        }
    }
}

/// Lessons kept by hysteresis do not push the group over `max_lessons_per_pattern`: where the
/// selected lessons and the kept ones together exceed it, the kept ones with the weakest
/// evidence are retired first.
fn enforce_limit(decisions: &mut [Decision<'_>], rows: &dyn StageRows, cfg: &LoopConfig) {
    let max = cfg.lessons.max_lessons_per_pattern;
    let mut by_group: BTreeMap<(String, String, &'static str), (usize, Vec<usize>)> =
        BTreeMap::new();
    for (i, d) in decisions.iter().enumerate() {
        let entry = match d.transition {
            Transition::Active { .. } | Transition::Kept { .. } => {
                by_group.entry(d.group(rows)).or_default()
            }
            _ => continue,
        };
        match d.transition {
            Transition::Active { .. } => entry.0 += 1,
            _ => entry.1.push(i),
        }
    }
    for (_, (selected, mut kept)) in by_group {
        let room = max.saturating_sub(selected);
        if kept.len() <= room {
            continue;
        }
        kept.sort_by(|&a, &b| {
            decisions[b]
                .abs_t
                .total_cmp(&decisions[a].abs_t)
                .then(decisions[a].key.cmp(&decisions[b].key))
        });
        for &i in &kept[room..] {
            if let Transition::Kept { why, .. } = &decisions[i].transition {
                let why = format!(
                    "limit: failed while active and the {max} places of this pattern and \
                     category went to lessons that passed ({why})"
                );
                decisions[i].transition = Transition::Retired {
                    why,
                    failed_runs: None,
                };
            }
        }
    }
}

pub fn apply(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    rows: &dyn StageRows,
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
    let later = |p: Option<&LessonRow>| p.is_none_or(|p| as_of > p.updated_at);

    let mut decisions: Vec<Decision<'_>> = Vec::new();
    let mut seen: FxHashSet<LessonKey> = FxHashSet::default();
    for ((t, j), &key) in tested.iter().zip(judged).zip(keys) {
        seen.insert(key);
        let prev = previous_by_key.get(&key).copied();
        let r = rows.row(t.row);
        let now = Figures {
            n_trades: r.n_trades(),
            mean_rr: r.r.mean,
            edge: t.edge,
            shrunk_edge: t.shrunk_edge,
            dims: t.dims,
            sd_rr: r.r.sample_variance().map_or(0.0, f64::sqrt),
        };
        if let Some(transition) = transition(prev, j, now, later(prev), rows, cfg) {
            decisions.push(Decision {
                key,
                prev,
                tested: Some((t, j)),
                transition,
                abs_t: t.t.get().map_or(0.0, f64::abs),
            });
        }
    }
    // Live lessons whose subset was not tested this run (below its minimum support, or deep
    // with no discovered parent) fail too.
    for (key, prev) in &previous_by_key {
        if seen.contains(key) || !prev.status.is_live() {
            continue;
        }
        let why = not_tested_reason(prev);
        let transition = if prev.status == LessonStatus::Active {
            kept_or_retired(prev, why, later(Some(prev)), cfg)
        } else {
            Transition::Retired {
                why,
                failed_runs: None,
            }
        };
        decisions.push(Decision {
            key: *key,
            prev: Some(prev),
            tested: None,
            transition,
            abs_t: prev.t_stat.map_or(0.0, f64::abs),
        });
    }
    decisions.sort_by_key(|d| d.key);
    enforce_limit(&mut decisions, rows, cfg);

    let mut outcome = Outcome {
        active: Vec::new(),
        newly_active: 0,
        retired: 0,
        half_lives: 0,
    };
    for d in &decisions {
        write_decision(conn, cfg, as_of, rows, d, &mut outcome)?;
    }
    Ok(outcome)
}

fn write_decision(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    rows: &dyn StageRows,
    d: &Decision<'_>,
    outcome: &mut Outcome,
) -> Result<(), LessonError> {
    let was_active = d.prev.is_some_and(|p| p.status == LessonStatus::Active);
    let mut lesson = match (d.tested, d.prev) {
        (Some((t, j)), prev) => tested_row(cfg, as_of, rows, d.key, t, j, prev),
        (None, Some(prev)) => LessonRow {
            updated_at: as_of,
            ..prev.clone()
        },
        (None, None) => return Ok(()),
    };
    let key = lesson.lesson_key.clone();
    match &d.transition {
        Transition::Active { confirm } => {
            lesson.status = LessonStatus::Active;
            lesson.failed_runs = 0;
            lesson.created_at = lesson.created_at.or(Some(as_of));
            if *confirm {
                lesson.confirmed_at = Some(as_of);
                lesson.confirmed_n_trades = Some(lesson.n_trades);
                lesson.confirmed_mean_rr = Some(lesson.mean_rr);
            }
        }
        Transition::Kept { failed_runs, why } => {
            lesson.status = LessonStatus::Active;
            lesson.failed_runs = *failed_runs;
            lesson.status_reason = Some(why.clone());
        }
        Transition::Candidate => {
            lesson.status = LessonStatus::Candidate;
            lesson.failed_runs = 0;
        }
        Transition::Retired { why, failed_runs } => {
            lesson.status = LessonStatus::Retired;
            if let Some(n) = failed_runs {
                lesson.failed_runs = *n;
            }
            lesson.status_reason = Some(why.clone());
            lesson.latent_factor_id = None;
            lesson.half_life_hours = d.prev.and_then(|p| p.half_life_hours);
        }
    }
    let active = lesson.status == LessonStatus::Active;
    outcome.newly_active += u64::from(active && !was_active);
    outcome.retired += u64::from(
        lesson.status == LessonStatus::Retired && d.prev.is_some_and(|p| p.status.is_live()),
    );
    if active {
        if d.tested.is_some() {
            lessons::record_edge(
                conn,
                &key,
                as_of,
                lesson.edge,
                lesson.shrunk_edge,
                lesson.n_trades,
            )?;
            lesson.half_life_hours = half_life(conn, cfg, &key, as_of)?;
        }
        outcome.half_lives += u64::from(lesson.half_life_hours.is_some());
        outcome.active.push(ActiveLesson {
            key: key.clone(),
            module: lesson.module.clone(),
            pattern_key: lesson.pattern_key.clone(),
            category: lesson.category.as_str().to_string(),
            pairs: scope_pairs(&lesson.scope_values),
            abs_t: d.abs_t,
        });
    }
    lessons::upsert_lesson(conn, &lesson)?;
    Ok(())
}

/// The row of a tested subset with this run's figures; the lifecycle fields are carried over
/// from the previous row and set by the transition.
fn tested_row(
    cfg: &LoopConfig,
    as_of: Timestamp,
    rows: &dyn StageRows,
    key: LessonKey,
    t: &Tested,
    j: &Judged,
    prev: Option<&LessonRow>,
) -> LessonRow {
    let r = rows.row(t.row);
    LessonRow {
        lesson_key: key.to_string(),
        module: r.module.to_string(),
        pattern_key: r.pattern_key.to_string(),
        category: r.category,
        scope_mask: r.scope_mask,
        scope_values: r.scope_values.to_string(),
        scope_values_hash: r.scope_values_hash,
        n_trades: r.n_trades(),
        mean_rr: r.r.mean,
        edge: t.edge,
        shrunk_edge: t.shrunk_edge,
        t_stat: t.t.get(),
        p_value: t.p.get(),
        q_value: j.q,
        half_life_hours: None,
        latent_factor_id: None,
        levers: lesson_levers(r.category, t.shrunk_edge, cfg),
        // Decided by the transition that writes the row.
        status: LessonStatus::Candidate,
        status_reason: Some(j.reason_text(rows, cfg)),
        created_at: prev.and_then(|p| p.created_at),
        confirmed_at: prev.and_then(|p| p.confirmed_at),
        confirmed_n_trades: prev.and_then(|p| p.confirmed_n_trades),
        confirmed_mean_rr: prev.and_then(|p| p.confirmed_mean_rr),
        failed_runs: prev.map_or(0, |p| p.failed_runs),
        updated_at: as_of,
    }
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
        l.half_life_alpha,
        l.half_life_min_hours,
        l.half_life_max_hours,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnloop_model::ActionCategory;

    /// Confirmed when the subset had 40 trades with mean R 0.5.
    fn confirmed() -> LessonRow {
        confirmed_with_scope(r#"{"bucket":"micro"}"#)
    }

    /// An active lesson on `scope`, confirmed when the subset had 40 trades with mean R 0.5.
    fn confirmed_with_scope(scope: &str) -> LessonRow {
        LessonRow {
            lesson_key: "L-0000000000000001".into(),
            module: "pm".into(),
            pattern_key: "p".into(),
            category: ActionCategory::Add,
            scope_mask: 1,
            scope_values: scope.into(),
            scope_values_hash: 0,
            n_trades: 40,
            mean_rr: 0.5,
            edge: 0.4,
            shrunk_edge: 0.35,
            t_stat: Some(3.0),
            p_value: Some(0.001),
            q_value: Some(0.01),
            half_life_hours: None,
            latent_factor_id: None,
            levers: learnloop_overrides::Levers::EMPTY,
            status: LessonStatus::Active,
            status_reason: None,
            created_at: Some(Timestamp(0)),
            confirmed_at: Some(Timestamp(0)),
            confirmed_n_trades: Some(40),
            confirmed_mean_rr: Some(0.5),
            failed_runs: 0,
            updated_at: Timestamp(0),
        }
    }

    /// The subset now: 40 + `fresh` trades whose mean is `fresh_mean`; reference level 0.1
    /// (mean − edge), edge 0.4, sd 1.
    fn now(fresh: u64, fresh_mean: f64) -> Figures {
        let n = 40 + fresh;
        let mean = (40.0 * 0.5 + fresh as f64 * fresh_mean) / n as f64;
        Figures {
            n_trades: n,
            mean_rr: mean,
            edge: mean - 0.1,
            shrunk_edge: 0.3,
            dims: 1,
            sd_rr: 1.0,
        }
    }

    #[test]
    fn fresh_trades_confirm_age_or_contradict_by_hand() {
        let cfg = LoopConfig::default();
        let prev = confirmed();
        // Fewer than the minimum support (10) of a 1-dim subset: wait.
        assert_eq!(fresh_trades(&prev, now(9, 0.5), &cfg), Fresh::TooFew);
        assert_eq!(fresh_trades(&prev, now(0, 0.5), &cfg), Fresh::TooFew);
        // 20 fresh trades at mean 0.5: fresh edge 0.5 − 0.1 = 0.4 ≥ ½ · edge (0.4): confirmed.
        assert_eq!(fresh_trades(&prev, now(20, 0.5), &cfg), Fresh::Confirm);
        // Mean 0.2: the subset's mean is 0.4, so its edge is 0.3 and the reference 0.1; fresh
        // edge 0.1 < ½ · 0.3, and z = (0.1 − 0.3)/(1/√20) = −0.89: neither.
        assert_eq!(fresh_trades(&prev, now(20, 0.2), &cfg), Fresh::Unclear);
        // 40 fresh trades at the reference level (the effect stopped): subset mean 0.3, edge 0.2,
        // fresh edge 0, z = (0 − 0.2)/(1/√40) = −1.26: still unclear. With sd 0.5,
        // z = −0.2/(0.5/√40) = −2.53 < −1.645: contradicted.
        assert_eq!(fresh_trades(&prev, now(40, 0.1), &cfg), Fresh::Unclear);
        let sharp = Figures {
            sd_rr: 0.5,
            ..now(40, 0.1)
        };
        match fresh_trades(&prev, sharp, &cfg) {
            Fresh::Contradict {
                fresh_edge,
                n_fresh,
            } => {
                assert_eq!(n_fresh, 40);
                assert!(fresh_edge.abs() < 1e-12, "{fresh_edge}");
            }
            other => panic!("expected a contradiction, got {other:?}"),
        }
        // Nothing stored at the confirmation (a row from before migration 4): no window.
        let legacy = LessonRow {
            confirmed_n_trades: None,
            ..confirmed()
        };
        assert_eq!(fresh_trades(&legacy, now(20, 0.5), &cfg), Fresh::TooFew);
    }

    #[test]
    fn failures_count_once_per_as_of_and_retire_at_the_limit() {
        let cfg = LoopConfig::default();
        let prev = confirmed();
        let first = kept_or_retired(&prev, "x".into(), true, &cfg);
        assert!(matches!(first, Transition::Kept { failed_runs: 1, .. }));
        let once = LessonRow {
            failed_runs: 1,
            ..confirmed()
        };
        // A re-run of the same as-of is not a second failure.
        assert!(matches!(
            kept_or_retired(&once, "x".into(), false, &cfg),
            Transition::Kept { failed_runs: 1, .. }
        ));
        match kept_or_retired(&once, "x".into(), true, &cfg) {
            Transition::Retired { why, failed_runs } => {
                assert!(why.starts_with("failed on 2 consecutive"));
                assert_eq!(failed_runs, Some(2));
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_deep_lesson_left_untested_names_the_hierarchy_not_its_support() {
        let deep =
            confirmed_with_scope(r#"{"bucket":"micro","macro_phase":"Good","timeframe":"1h"}"#);
        let why = not_tested_reason(&deep);
        assert!(why.starts_with("not tested: a subset of 3 dims"), "{why}");
        let shallow = confirmed_with_scope(r#"{"bucket":"micro","timeframe":"1h"}"#);
        assert_eq!(not_tested_reason(&shallow), NOT_TESTED);
    }
}
