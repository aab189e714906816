//! What a run changed, for its summary: the lessons it activated and retired, and the biggest
//! size multipliers of the config it leaves for the PM. Read from the store inside the run's
//! transaction (so a placebo reports what it found before it is rolled back).

use crate::output::{kv, scope_text, subset_label};
use learnloop_model::{LessonRow, LessonStatus};
use learnloop_overrides::{ConfigData, Lever};
use learnloop_store::lessons;
use learnloop_store::Connection;
use serde::Serialize;
use std::collections::BTreeMap;

/// How many lessons and multipliers the human summary lists (`--json` has them all but the
/// multipliers, which stop at this many too).
const SHOWN: usize = 10;

/// Each lesson's status before a run, by lesson key.
pub type LessonStatuses = BTreeMap<String, LessonStatus>;

pub fn lesson_statuses(conn: &Connection) -> anyhow::Result<LessonStatuses> {
    Ok(lessons::all_lessons(conn)?
        .into_iter()
        .map(|l| (l.lesson_key, l.status))
        .collect())
}

#[derive(Debug, Default, Serialize)]
pub struct WhatChanged {
    /// Active now and not before the run.
    pub new_lessons: Vec<LessonBrief>,
    /// Retired by the run (active or candidate before).
    pub retired_lessons: Vec<LessonBrief>,
    /// The config the run leaves (written, or the identical latest): its overrides with the
    /// largest |size_mult − 1|, largest first.
    pub top_multipliers: Vec<MultiplierBrief>,
    /// Per module, what the config's feature flags switch off (the PM applies nothing there).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub switched_off: Vec<(String, String)>,
}

#[derive(Debug, Serialize)]
pub struct LessonBrief {
    pub lesson_key: String,
    /// `uptrend.S2.add · add {bucket=micro}`.
    pub label: String,
    pub size_mult: Option<f64>,
    pub n_trades: u64,
    pub reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MultiplierBrief {
    pub module: String,
    pub version: i64,
    pub label: String,
    pub size_mult: f64,
    pub n_trades: u64,
}

/// Compare the lessons now with `before`, and read the top multipliers of `configs`, the
/// (module, version) pairs that materialize left.
pub fn what_changed(
    conn: &Connection,
    before: &LessonStatuses,
    configs: &[(String, i64)],
) -> anyhow::Result<WhatChanged> {
    let now = lessons::all_lessons(conn)?;
    let (new, retired) = transitions(before, &now);
    let mut changed = WhatChanged {
        new_lessons: new.into_iter().map(brief).collect(),
        retired_lessons: retired.into_iter().map(brief).collect(),
        top_multipliers: Vec::new(),
        switched_off: Vec::new(),
    };
    for (module, version) in configs {
        let Some(stored) = learnloop_store::configs::get_version(conn, module, *version)? else {
            continue;
        };
        if let Ok(data) = ConfigData::parse(&stored.config_data) {
            changed.top_multipliers.extend(multipliers(module, &data));
            if let Some(off) = data.feature_flags.switched_off() {
                changed.switched_off.push((module.clone(), off));
            }
        }
    }
    changed.top_multipliers.sort_by(|a, b| {
        (b.size_mult - 1.0)
            .abs()
            .total_cmp(&(a.size_mult - 1.0).abs())
    });
    changed.top_multipliers.truncate(SHOWN);
    Ok(changed)
}

/// Lessons that became active, and lessons that were retired, between `before` and `now`.
fn transitions<'a>(
    before: &LessonStatuses,
    now: &'a [LessonRow],
) -> (Vec<&'a LessonRow>, Vec<&'a LessonRow>) {
    let was = |l: &LessonRow| before.get(&l.lesson_key).copied();
    let new = now
        .iter()
        .filter(|l| l.status == LessonStatus::Active && was(l) != Some(LessonStatus::Active))
        .collect();
    let retired = now
        .iter()
        .filter(|l| {
            l.status == LessonStatus::Retired
                && matches!(was(l), Some(s) if s != LessonStatus::Retired)
        })
        .collect();
    (new, retired)
}

fn brief(l: &LessonRow) -> LessonBrief {
    LessonBrief {
        lesson_key: l.lesson_key.clone(),
        label: super::lessons::lesson_label(l),
        size_mult: super::lessons::size_mult(&l.levers),
        n_trades: l.n_trades,
        reason: l.status_reason.clone(),
    }
}

fn multipliers<'a>(
    module: &'a str,
    data: &'a ConfigData,
) -> impl Iterator<Item = MultiplierBrief> + 'a {
    data.overrides().filter_map(move |o| {
        Some(MultiplierBrief {
            module: module.to_string(),
            version: data.version,
            label: subset_label(&o.pattern_key, &o.action_category, &scope_text(&o.scope)),
            size_mult: o.levers.get(Lever::SizeMult)?,
            n_trades: o.n_trades,
        })
    })
}

/// The "what changed" block of the run summary.
pub fn human(w: &WhatChanged) -> String {
    let mut out = String::from("what changed\n");
    let mut lines = vec![
        ("new lessons", w.new_lessons.len().to_string()),
        ("retired lessons", w.retired_lessons.len().to_string()),
    ];
    if w.new_lessons.is_empty() && w.retired_lessons.is_empty() {
        lines.push(("", "the same lessons as before the run".to_string()));
    }
    out.push_str(&kv(&lines));
    for l in w.new_lessons.iter().take(SHOWN) {
        out.push_str(&format!(
            "    + {}  lesson's size × {}  ({} trades)  {}\n",
            l.label,
            l.size_mult.map_or("-".to_string(), |m| format!("{m:.2}")),
            l.n_trades,
            l.lesson_key
        ));
    }
    more(&mut out, w.new_lessons.len(), "lessons list");
    for l in w.retired_lessons.iter().take(SHOWN) {
        out.push_str(&format!(
            "    - {}  {}  ({})\n",
            l.label,
            l.lesson_key,
            l.reason.as_deref().unwrap_or("no reason recorded")
        ));
    }
    more(
        &mut out,
        w.retired_lessons.len(),
        "lessons list --status retired",
    );
    if !w.top_multipliers.is_empty() {
        // The lesson's own lever is a target: each version moves at most the rate limit towards it.
        out.push_str(
            "  top size multipliers of the config (what the PM applies once it is active)\n",
        );
    }
    for (module, off) in &w.switched_off {
        out.push_str(&format!(
            "    {module}: {off}: the PM applies none of these there\n"
        ));
    }
    for m in &w.top_multipliers {
        out.push_str(&format!(
            "    × {:.3}  {}  ({} trades; {} v{})\n",
            m.size_mult, m.label, m.n_trades, m.module, m.version
        ));
    }
    out
}

fn more(out: &mut String, total: usize, command: &str) {
    if total > SHOWN {
        out.push_str(&format!(
            "    … {} more (`learnloop {command}`)\n",
            total - SHOWN
        ));
    }
}

/// Lesson rows for the tests of the commands that read lessons.
#[cfg(test)]
pub(crate) mod test_rows {
    use learnloop_model::LessonRow;
    use learnloop_model::{ActionCategory, LessonStatus, Timestamp};
    use learnloop_overrides::{Lever, Levers};

    /// A lesson of `uptrend.S2.add` adds in `{bucket: micro}`, sizing × 0.8.
    pub fn row(key: &str, status: LessonStatus) -> LessonRow {
        LessonRow {
            lesson_key: key.into(),
            module: "pm".into(),
            pattern_key: "module=pm|pattern_key=uptrend.S2.add".into(),
            category: ActionCategory::Add,
            scope_mask: 0,
            scope_values: r#"{"bucket":"micro"}"#.into(),
            scope_values_hash: 0,
            n_trades: 40,
            mean_rr: 0.5,
            edge: 0.4,
            shrunk_edge: 0.3,
            t_stat: None,
            p_value: None,
            q_value: None,
            half_life_hours: None,
            latent_factor_id: None,
            levers: Levers::new().with(Lever::SizeMult, 0.8),
            status,
            status_reason: None,
            created_at: None,
            confirmed_at: None,
            confirmed_n_trades: None,
            confirmed_mean_rr: None,
            failed_runs: 0,
            updated_at: Timestamp::from_millis(0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_rows::row;
    use super::*;

    #[test]
    fn new_means_active_now_and_not_before_and_retired_means_retired_by_this_run() {
        let before: LessonStatuses = [
            ("kept", "active"),
            ("promoted", "candidate"),
            ("dropped", "active"),
            ("long-gone", "retired"),
            ("revived", "retired"),
            ("still-candidate", "candidate"),
        ]
        .map(|(k, s)| (k.to_string(), s.parse().unwrap()))
        .into();
        let now = [
            row("kept", LessonStatus::Active),
            row("promoted", LessonStatus::Active),
            row("dropped", LessonStatus::Retired),
            row("long-gone", LessonStatus::Retired),
            row("revived", LessonStatus::Active),
            row("still-candidate", LessonStatus::Candidate),
            row("fresh", LessonStatus::Active),
        ];
        let (new, retired) = transitions(&before, &now);
        let keys = |v: Vec<&LessonRow>| {
            v.into_iter()
                .map(|l| l.lesson_key.clone())
                .collect::<Vec<_>>()
        };
        assert_eq!(keys(new), ["promoted", "revived", "fresh"]);
        assert_eq!(keys(retired), ["dropped"]);
        let b = brief(&now[0]);
        assert_eq!(b.label, "uptrend.S2.add · add {bucket=micro}");
        assert_eq!(b.size_mult, Some(0.8));
    }
}
