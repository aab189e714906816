//! `demo check --truth FILE`: for each effect the demo planted, did it become an active lesson
//! (at its scope, a refinement or a generalization of it), and if not, why — `explain`'s verdict
//! for the planted subset. It reports and does not judge: exit 0 whatever it finds.

use super::bench_calibrate::{carried_by_trades, contains, same_group, scope_of};
use super::explain::{check_dims, explain, Subset};
use super::Outcome;
use crate::context::{load_config, open_store_read_only};
use crate::errors::usage;
use crate::output::{emit, scope_text, subset_label};
use crate::Cli;
use clap::Args;
use learnloop_demo::packets::PacketTruth;
use learnloop_demo::{GroundTruth, PlantedEffect};
use learnloop_model::pattern::parse_pattern_key;
use learnloop_model::LessonRow;
use learnloop_model::{ActionCategory, LoopConfig, Scope};
use learnloop_store::Connection;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct CheckArgs {
    /// The truth file `learnloop demo --out FILE` wrote beside its strands (FILE.truth.json).
    #[arg(long)]
    pub truth: PathBuf,
}

/// How a planted effect shows among the active lessons, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Found {
    /// An active lesson at exactly the planted scope, with the planted sign.
    Exact,
    /// An active lesson at a narrower scope inside the planted one, with the planted sign.
    Refinement,
    /// An active lesson at a wider scope containing the planted one, with the planted sign.
    Generalization,
    /// Only lessons of the opposite sign at these scopes.
    WrongSign,
    /// No active lesson at, inside or around the planted scope.
    Missed,
}

impl Found {
    fn as_str(self) -> &'static str {
        match self {
            Found::Exact => "exact",
            Found::Refinement => "refinement",
            Found::Generalization => "generalization",
            Found::WrongSign => "wrong sign",
            Found::Missed => "missed",
        }
    }
}

#[derive(Debug, Serialize)]
pub struct LessonRef {
    pub lesson_key: String,
    /// `uptrend.S3.add · add {bucket=micro, timeframe=1h}`.
    pub label: String,
    pub scope: BTreeMap<String, String>,
    pub shrunk_edge: f64,
    pub size_mult: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct EffectCheck {
    pub effect: PlantedEffect,
    pub found: Found,
    /// The active lessons behind `found` (none when missed).
    pub lessons: Vec<LessonRef>,
    /// `explain`'s verdict and reason for the planted subset itself, unless it is a lesson.
    pub verdict: Option<learnloop_lesson_builder::ExplainVerdict>,
    pub reason: Option<String>,
}

/// How many of a truth file's clean trades the store has linked.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct TradesHeld {
    pub store: u64,
    pub truth: u64,
}

#[derive(Debug, Serialize)]
pub struct CheckReport {
    pub truth: String,
    /// Linked trades in the store against the truth file's (absent for a DecisionPackets truth).
    pub trades_held: Option<TradesHeld>,
    pub planted: usize,
    /// Planted effects found exactly or as a refinement or generalization.
    pub found: usize,
    pub effects: Vec<EffectCheck>,
    /// Active lessons at, inside or around no planted scope of their group.
    pub unplanted_lessons: Vec<Unplanted>,
}

#[derive(Debug, Serialize)]
pub struct Unplanted {
    #[serde(flatten)]
    pub lesson: LessonRef,
    /// At least 90 % of the trades it sizes carry planted effects of its sign (R belongs to the
    /// trade: an add of positions whose entry carries an effect); else a false discovery.
    pub carried_by_trades: bool,
}

pub fn execute(cli: &Cli, args: &CheckArgs) -> anyhow::Result<Outcome> {
    let planted = read_planted(&args.truth)?;
    let conn = open_store_read_only(cli)?;
    let trades_held = check_same_data_set(&conn, &args.truth)?;
    let cfg = super::action_args::config_of_the_stored_results(&conn, load_config(cli)?)?;
    let active = learnloop_store::lessons::active_lessons(&conn)?;
    let effects = planted
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let which = format!("{} effect {}", args.truth.display(), i + 1);
            check_effect(&conn, &cfg, &active, e, &which)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let report = CheckReport {
        truth: args.truth.display().to_string(),
        trades_held,
        planted: effects.len(),
        found: effects
            .iter()
            .filter(|e| e.found < Found::WrongSign)
            .count(),
        unplanted_lessons: unplanted(&conn, &active, &planted)?,
        effects,
    };
    emit(cli.json, &report, human)?;
    Ok(Outcome::Ok)
}

/// The planted effects of a truth file: `demo --out FILE`'s `FILE.truth.json` or
/// `demo --format decision-packets`' `truth.json` (the same effects, other figures beside them).
fn read_planted(path: &std::path::Path) -> anyhow::Result<Vec<PlantedEffect>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("--truth {}: {e}", path.display())))?;
    let strands = serde_json::from_str::<GroundTruth>(&text).map(|t| t.effects);
    let packets = || serde_json::from_str::<PacketTruth>(&text).map(|t| t.effects);
    strands.or_else(|e| packets().map_err(|_| e)).map_err(|e| {
        usage(format!(
            "--truth {}: not a demo truth file ({e}); `learnloop demo --out FILE` writes \
             FILE.truth.json, `demo --format decision-packets --out DIR` DIR/truth.json",
            path.display()
        ))
    })
}

/// A strands truth file records how many clean cycles its data set has and their mean winsorized
/// R (6 decimals), what a correct loop links: a store holding more linked trades, or as many with
/// another mean, holds another data set, and checking its lessons against this truth would report
/// nonsense: refused. A store holding fewer may be a partial ingest (or another, smaller data
/// set): the report says how many of the truth's trades the store holds. `None` for a truth file
/// without those figures (DecisionPackets').
fn check_same_data_set(
    conn: &Connection,
    path: &std::path::Path,
) -> anyhow::Result<Option<TradesHeld>> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| usage(format!("--truth {}: {e}", path.display())))?;
    let Ok(truth) = serde_json::from_str::<GroundTruth>(&text) else {
        return Ok(None);
    };
    let (linked, mean) = learnloop_store::events::linked_trades_summary(conn)?;
    let held = TradesHeld {
        store: u64::try_from(linked).unwrap_or(0),
        truth: truth.cycles as u64,
    };
    let same_mean = (mean - truth.baseline_mean_r).abs() < 1e-6;
    if held.store > held.truth || (held.store == held.truth && !same_mean) {
        return Err(usage(format!(
            "--truth {}: the store holds {linked} linked trades with mean winsorized R {mean:.6}; \
             the truth file's data set has {} with mean {:.6}: it describes another data set \
             (or the store holds more than that demo)",
            path.display(),
            truth.cycles,
            truth.baseline_mean_r
        )));
    }
    Ok(Some(held))
}

/// One effect against the active lessons; `which` names it in a usage error (an effect the truth
/// file gets wrong).
fn check_effect(
    conn: &Connection,
    cfg: &LoopConfig,
    active: &[LessonRow],
    effect: &PlantedEffect,
    which: &str,
) -> anyhow::Result<EffectCheck> {
    let bad = |why: String| usage(format!("{which}: {why}"));
    let category: ActionCategory = effect
        .action_category
        .parse()
        .map_err(|e: learnloop_model::category::UnknownCategory| bad(e.to_string()))?;
    let module = parse_pattern_key(&effect.pattern_key)
        .map_err(|e| bad(e.to_string()))?
        .module
        .unwrap_or("pm")
        .to_string();
    let scope =
        Scope::from_string_pairs(effect.scope.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    check_dims(cfg, &scope).map_err(bad)?;
    let (found, lessons) = classify(active, effect);
    let (verdict, reason) = if found == Found::Exact {
        (None, None)
    } else {
        let subset = Subset {
            module: &module,
            pattern_key: &effect.pattern_key,
            category,
            scope: &scope,
        };
        let e = explain(conn, cfg, &subset)?;
        (Some(e.verdict), Some(e.reason))
    };
    Ok(EffectCheck {
        effect: effect.clone(),
        found,
        lessons,
        verdict,
        reason,
    })
}

/// The best way `effect` shows among `active`, with the lessons that show it.
fn classify(active: &[LessonRow], effect: &PlantedEffect) -> (Found, Vec<LessonRef>) {
    let mut best: Option<(Found, Vec<LessonRef>)> = None;
    for l in active.iter().filter(|l| same_group(l, effect)) {
        let scope = scope_of(l);
        let relation = if scope == effect.scope {
            Found::Exact
        } else if contains(&scope, &effect.scope) {
            Found::Refinement
        } else if contains(&effect.scope, &scope) {
            Found::Generalization
        } else {
            continue;
        };
        let found = if l.shrunk_edge.signum() == effect.effect_r.signum() {
            relation
        } else {
            Found::WrongSign
        };
        let entry = best.get_or_insert_with(|| (found, Vec::new()));
        if found < entry.0 {
            *entry = (found, Vec::new());
        }
        if found == entry.0 {
            entry.1.push(lesson_ref(l));
        }
    }
    best.unwrap_or((Found::Missed, Vec::new()))
}

fn lesson_ref(l: &LessonRow) -> LessonRef {
    LessonRef {
        lesson_key: l.lesson_key.clone(),
        label: super::lessons::lesson_label(l),
        scope: scope_of(l),
        shrunk_edge: l.shrunk_edge,
        size_mult: super::lessons::size_mult(&l.levers),
    }
}

/// Active lessons related (equal, inside, around) to no planted scope of their group, and whether
/// their trades carry planted effects all the same.
fn unplanted(
    conn: &Connection,
    active: &[LessonRow],
    planted: &[PlantedEffect],
) -> anyhow::Result<Vec<Unplanted>> {
    let outside: Vec<LessonRow> = active
        .iter()
        .filter(|l| !near_a_planted_scope(l, planted))
        .cloned()
        .collect();
    if outside.is_empty() {
        return Ok(Vec::new());
    }
    let events = learnloop_store::events::load_all_events(conn)?;
    let carried = carried_by_trades(&outside, &events, planted);
    Ok(outside
        .iter()
        .zip(carried)
        .map(|(l, carried_by_trades)| Unplanted {
            lesson: lesson_ref(l),
            carried_by_trades,
        })
        .collect())
}

/// Is `l`'s scope a planted scope of its group, inside one or around one?
fn near_a_planted_scope(l: &LessonRow, planted: &[PlantedEffect]) -> bool {
    let scope = scope_of(l);
    planted
        .iter()
        .any(|e| same_group(l, e) && (contains(&scope, &e.scope) || contains(&e.scope, &scope)))
}

fn human(r: &CheckReport) -> String {
    let carried = r
        .unplanted_lessons
        .iter()
        .filter(|u| u.carried_by_trades)
        .count();
    let mut out = format!(
        "{}: {} planted effects, {} found as active lessons; {} active lessons at no planted scope \
         ({carried} of them on trades that carry a planted effect, {} false discoveries)\n",
        r.truth,
        r.planted,
        r.found,
        r.unplanted_lessons.len(),
        r.unplanted_lessons.len() - carried
    );
    if let Some(held) = r.trades_held.filter(|h| h.store < h.truth) {
        out.push_str(&format!(
            "  note: the store holds {} of the truth's {} trades (a partial ingest, or another data set)
",
            held.store, held.truth
        ));
    }
    for c in &r.effects {
        let e = &c.effect;
        out.push_str(&format!(
            "  {:<15} {:+.2} R  {}{}\n",
            c.found.as_str(),
            e.effect_r,
            subset_label(&e.pattern_key, &e.action_category, &scope_text(&e.scope)),
            e.stops_at
                .map_or(String::new(), |t| format!("  (planted until {t})"))
        ));
        for l in &c.lessons {
            out.push_str(&format!(
                "      lesson {} {}  edge {:+.2}  size × {}\n",
                l.lesson_key,
                scope_text(&l.scope),
                l.shrunk_edge,
                l.size_mult.map_or("-".to_string(), |m| format!("{m:.2}"))
            ));
        }
        if let (Some(verdict), Some(reason)) = (&c.verdict, &c.reason) {
            out.push_str(&format!("      planted scope: {verdict}: {reason}\n"));
        }
    }
    for u in &r.unplanted_lessons {
        let l = &u.lesson;
        out.push_str(&format!(
            "  {:<15}         lesson {} {}  edge {:+.2}  {}\n",
            "unplanted",
            l.lesson_key,
            l.label,
            l.shrunk_edge,
            if u.carried_by_trades {
                "(its trades carry a planted effect)"
            } else {
                "(false discovery)"
            }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn effect(scope: &[(&str, &str)], r: f64) -> PlantedEffect {
        serde_json::from_value(serde_json::json!({
            "pattern_key": "module=pm|pattern_key=uptrend.S3.add",
            "action_category": "add",
            "scope": scope.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<BTreeMap<_, _>>(),
            "effect_r": r,
            "starts_at": null,
        }))
        .unwrap()
    }

    fn lesson(key: &str, scope: &str, edge: f64) -> LessonRow {
        let mut l =
            super::super::run_changes::test_rows::row(key, learnloop_model::LessonStatus::Active);
        l.pattern_key = "module=pm|pattern_key=uptrend.S3.add".into();
        l.scope_values = scope.into();
        l.shrunk_edge = edge;
        l
    }

    #[test]
    fn the_best_relation_with_the_planted_sign_wins() {
        let planted = effect(&[("bucket", "micro"), ("timeframe", "1h")], -1.0);
        let exact = lesson("a", r#"{"bucket":"micro","timeframe":"1h"}"#, -0.8);
        let finer = lesson(
            "b",
            r#"{"bucket":"micro","side":"long","timeframe":"1h"}"#,
            -0.9,
        );
        let wider = lesson("c", r#"{"timeframe":"1h"}"#, -0.3);
        let wrong = lesson("d", r#"{"bucket":"micro"}"#, 0.2);
        let other = lesson("e", r#"{"bucket":"large"}"#, -0.5);

        let all = [
            exact.clone(),
            finer.clone(),
            wider.clone(),
            wrong.clone(),
            other.clone(),
        ];
        let (found, lessons) = classify(&all, &planted);
        assert_eq!(found, Found::Exact);
        assert_eq!(lessons.len(), 1);
        assert_eq!(lessons[0].lesson_key, "a");

        assert_eq!(classify(&all[1..], &planted).0, Found::Refinement);
        assert_eq!(classify(&all[2..], &planted).0, Found::Generalization);
        assert_eq!(classify(&all[3..], &planted).0, Found::WrongSign);
        assert_eq!(classify(&all[4..], &planted).0, Found::Missed);

        let near: Vec<&str> = all
            .iter()
            .filter(|l| near_a_planted_scope(l, std::slice::from_ref(&planted)))
            .map(|l| l.lesson_key.as_str())
            .collect();
        assert_eq!(near, ["a", "b", "c", "d"]);
    }
}
