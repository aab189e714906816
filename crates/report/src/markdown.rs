//! The report as Markdown, for chat and e-mail: the same facts as the page, without charts.

use crate::data::ReportData;
use crate::words::{lesson_label, lesson_sentence, uplift_verdict};
use std::fmt::Write as _;

/// The Markdown twin of the page.
pub fn render_markdown(d: &ReportData) -> String {
    let mut m = String::new();
    let _ = writeln!(m, "# What the loop learned tonight — module {}\n", d.module);
    let config = d
        .active
        .as_ref()
        .map_or("no config is active".to_string(), |a| {
            format!("the PM reads config v{} (as of {})", a.version, a.as_of)
        });
    let _ = writeln!(
        m,
        "Data up to {}; {config}.\n",
        d.data_as_of.as_deref().unwrap_or("(no data)")
    );
    if let Some(next) = &d.next_step {
        let _ = writeln!(m, "**Next step:** {next}\n");
    }
    for w in &d.warnings {
        let _ = writeln!(m, "> ⚠ {w}");
    }
    let _ = writeln!(m, "\n## Active lessons ({})\n", d.lessons.len());
    if d.lessons.is_empty() {
        m.push_str("No lesson is active.\n");
    }
    for l in &d.lessons {
        let _ = writeln!(m, "- {}", lesson_sentence(l));
    }
    if !d.changes.is_empty() || !d.retired.is_empty() {
        m.push_str("\n## What changed\n\n");
        let num = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
        for c in &d.changes {
            let _ = writeln!(
                m,
                "- {}: {} → {} ({})",
                c.label,
                num(c.before),
                num(c.after),
                c.reason
            );
        }
        for l in &d.retired {
            let _ = writeln!(
                m,
                "- retired: {} ({})",
                lesson_label(&l.pattern, &l.category, &l.scope),
                l.status_reason.as_deref().unwrap_or("no reason recorded")
            );
        }
    }
    if let Some(r) = &d.replay {
        let _ = writeln!(m, "\n## Does the loop help?\n\n{}", uplift_verdict(r));
    }
    let c = &d.coverage;
    let _ = writeln!(
        m,
        "\n## Data quality\n\n{} strands, {} actions, {} closes, {} trades linked; {} quarantined, {} link anomalies.",
        c.strands,
        c.actions,
        c.closes,
        c.linked_trades,
        c.quarantine.iter().map(|q| q.1).sum::<i64>(),
        c.anomalies.iter().map(|a| a.1).sum::<i64>()
    );
    m
}
