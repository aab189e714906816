//! Lessons and figures in plain words.

use crate::data::{LessonView, ReplayFigures};

/// `uptrend.S3.add · add on bucket=micro, timeframe=1h` (`… · add, every trade` for a root).
pub fn lesson_label(pattern: &str, category: &str, scope: &[(String, String)]) -> String {
    if scope.is_empty() {
        format!("{pattern} · {category}, every trade")
    } else {
        let pairs: Vec<String> = scope.iter().map(|(k, v)| format!("{k}={v}")).collect();
        format!("{pattern} · {category} on {}", pairs.join(", "))
    }
}

/// The one-line sentence of a lesson, e.g. `uptrend.S3.add · add on bucket=micro, timeframe=1h:
/// size × 0.72 — 87 trades over 14 weeks, −1.10 R, q 0.002, since 2026-03-09`.
pub fn lesson_sentence(l: &LessonView) -> String {
    let size = match l.size_mult {
        Some(m) => format!("size × {m:.2}"),
        None => "no override (decayed to neutral)".to_string(),
    };
    let mut facts = vec![format!("{} trades", l.n_trades)];
    if let Some(w) = l.weeks {
        facts[0].push_str(&format!(" over {w} week{}", if w == 1 { "" } else { "s" }));
    }
    facts.push(format!("{} R", signed(l.shrunk_edge)));
    if let Some(q) = l.q_value {
        facts.push(format!("q {}", q_text(q)));
    }
    if let Some(since) = &l.since {
        facts.push(format!("since {since}"));
    }
    if let Some(confirmed) = l
        .confirmed
        .as_ref()
        .filter(|c| l.since.as_ref() != Some(*c))
    {
        facts.push(format!("last confirmed {confirmed}"));
    }
    if l.failed_runs > 0 {
        facts.push(format!(
            "failed its tests on the last {} run{} (kept until the evidence is clearly gone)",
            l.failed_runs,
            if l.failed_runs == 1 { "" } else { "s" }
        ));
    }
    format!(
        "{}: {size} — {}",
        lesson_label(&l.pattern, &l.category, &l.scope),
        facts.join(", ")
    )
}

/// A signed number with a real minus sign and two decimals; one that rounds to zero (−0.0,
/// −0.001) has no sign.
pub fn signed(v: f64) -> String {
    let digits = format!("{:.2}", v.abs());
    if digits == "0.00" {
        digits
    } else if v < 0.0 {
        format!("−{digits}")
    } else {
        format!("+{digits}")
    }
}

/// A q-value with the precision a reader needs.
pub fn q_text(q: f64) -> String {
    if q < 0.001 {
        format!("{q:.0e}")
    } else {
        format!("{q:.3}")
    }
}

/// Evaluated days (days with replayed actions) below which the uplift's interval is not read as
/// evidence: the interval is a bootstrap over days, whatever the step.
pub const MIN_DAYS_FOR_EVIDENCE: usize = 10;

/// The walk-forward uplift read out: what it means for the question "does the loop help?".
pub fn uplift_verdict(r: &ReplayFigures) -> String {
    let [lo, hi] = r.uplift_ci95;
    let days = r.days.iter().filter(|d| d.actions > 0).count();
    let plural = |n: usize| if n == 1 { "" } else { "s" };
    let head = format!(
        "The overrides changed the replayed P&L by {} R over {} step{} and {days} evaluated day{} (95 % interval {} to {} R)",
        signed(r.uplift_total_r),
        r.steps,
        plural(r.steps as usize),
        plural(days),
        signed(lo),
        signed(hi)
    );
    // A bootstrap over a handful of days has a narrow, meaningless interval (one day: zero width).
    let verdict = if days < MIN_DAYS_FOR_EVIDENCE {
        "too few evaluated days for the interval to be evidence either way."
    } else if lo > 0.0 {
        "the interval is above 0: evidence that they help."
    } else if hi < 0.0 {
        "the interval is below 0: evidence that they hurt."
    } else {
        "the interval includes 0: no evidence it helps yet."
    };
    let placebo = match r.placebo {
        Some((total, [plo, phi])) => format!(
            " The placebo (outcomes shuffled) gives {} R ({} to {}){}",
            signed(total),
            signed(plo),
            signed(phi),
            if plo <= 0.0 && phi >= 0.0 {
                ", as it should: its interval covers 0."
            } else {
                ": its interval excludes 0, so treat the uplift with suspicion."
            }
        ),
        None => String::new(),
    };
    format!("{head}; {verdict}{placebo}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnloop_replay::DayFigures;

    fn lesson() -> LessonView {
        LessonView {
            key: "L-1".into(),
            pattern: "uptrend.S3.add".into(),
            category: "add".into(),
            scope: vec![
                ("bucket".into(), "micro".into()),
                ("timeframe".into(), "1h".into()),
            ],
            n_trades: 87,
            weeks: Some(14),
            mean_rr: -0.9,
            edge: -1.2,
            shrunk_edge: -1.1,
            q_value: Some(0.002),
            since: Some("2026-03-09".into()),
            confirmed: Some("2026-03-09".into()),
            failed_runs: 0,
            status: learnloop_model::LessonStatus::Active,
            status_reason: None,
            size_mult: Some(0.72),
            history: Vec::new(),
        }
    }

    #[test]
    fn a_lesson_reads_as_the_spec_example() {
        assert_eq!(
            lesson_sentence(&lesson()),
            "uptrend.S3.add · add on bucket=micro, timeframe=1h: size × 0.72 — 87 trades over 14 weeks, −1.10 R, q 0.002, since 2026-03-09"
        );
        let mut stale = lesson();
        stale.confirmed = Some("2026-05-01".into());
        stale.failed_runs = 1;
        assert!(lesson_sentence(&stale).ends_with(
            "since 2026-03-09, last confirmed 2026-05-01, failed its tests on the last 1 run (kept until the evidence is clearly gone)"
        ));
        let mut root = lesson();
        root.scope.clear();
        root.size_mult = None;
        root.weeks = Some(1);
        assert!(lesson_sentence(&root).starts_with(
            "uptrend.S3.add · add, every trade: no override (decayed to neutral) — 87 trades over 1 week,"
        ));
    }

    #[test]
    fn the_uplift_interval_is_read_out() {
        let mut r = ReplayFigures {
            dir: "out".into(),
            steps: 10,
            uplift_total_r: 7.18,
            uplift_ci95: [3.51, 11.14],
            placebo: Some((0.0, [0.0, 0.0])),
            days: (0..14)
                .map(|i| DayFigures {
                    day_ms: i * 86_400_000,
                    actions: u64::from(i != 3),
                    adjusted_actions: 0,
                    base_r: 0.0,
                    uplift_r: 0.0,
                })
                .collect(),
            placebo_days: None,
        };
        let text = uplift_verdict(&r);
        assert!(
            text.contains(
                "+7.18 R over 10 steps and 13 evaluated days (95 % interval +3.51 to +11.14 R)"
            ),
            "{text}"
        );
        assert!(text.contains("evidence that they help") && text.contains("covers 0"));
        r.uplift_ci95 = [-1.0, 2.0];
        assert!(uplift_verdict(&r).contains("no evidence it helps yet"));
        // Evidence is judged by evaluated days, not steps: two weekly steps over 13 days are.
        r.steps = 2;
        r.uplift_ci95 = [0.3, 0.7];
        assert!(uplift_verdict(&r).contains("evidence that they help"));
        // One replayed day: its interval has no width, and says nothing.
        r.steps = 1;
        r.days.truncate(1);
        r.uplift_ci95 = [0.1, 0.1];
        let one_day = uplift_verdict(&r);
        assert!(
            one_day.contains("over 1 step and 1 evaluated day (")
                && one_day.contains("too few evaluated days"),
            "{one_day}"
        );
        assert_eq!(q_text(0.0004), "4e-4");
        assert_eq!(signed(-0.5), "−0.50");
        assert_eq!(signed(0.5), "+0.50");
        for zero in [0.0, -0.0, -0.001, 0.004] {
            assert_eq!(signed(zero), "0.00", "{zero}");
        }
    }
}
