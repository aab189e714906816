//! The report as one self-contained HTML page: inline CSS and SVG, no script, no network.

use crate::data::{ConfigChange, LessonView, ReplayFigures, ReportData};
use crate::line_chart::{Line, LineChart};
use crate::words::{lesson_label, lesson_sentence, q_text, signed, uplift_verdict};
use learnloop_replay::chart::xml_escape;
use learnloop_replay::DayFigures;
use std::fmt::Write as _;

const STYLE: &str = "body{font-family:'DejaVu Sans',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1000px;color:#1a1a1a;line-height:1.4}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:28px 0 8px;border-bottom:1px solid #ddd;padding-bottom:4px}
.sub{color:#555;font-size:13px}.box{border:1px solid #ccc;border-radius:6px;padding:10px 14px;margin:12px 0;background:#fafafa}
.next{border-color:#4a7;background:#f1faf4}.warn{border-color:#d9a400;background:#fff8e1}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{text-align:left;padding:5px 8px;border-bottom:1px solid #eee;vertical-align:top}
th{background:#f3f3f3}td.num{text-align:right;font-variant-numeric:tabular-nums}.down{color:#b22}.up{color:#171}
.lessons{display:flex;flex-wrap:wrap;gap:10px 20px}.lesson{width:470px}.lesson p{margin:2px 0 4px;font-size:12px;min-height:32px}td.date{white-space:nowrap}code{background:#f0f0f0;padding:1px 4px;border-radius:3px}";

/// The whole page.
pub fn render_html(d: &ReportData) -> String {
    let mut h = String::with_capacity(64 * 1024);
    let _ = writeln!(
            h,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>learnloop report: {}</title><style>{STYLE}</style></head><body>",
        esc(&d.module)
    );
    header(&mut h, d);
    attention(&mut h, d);
    lessons_table(&mut h, d);
    changes(&mut h, d);
    evidence(&mut h, &d.lessons);
    walk_forward(&mut h, d.replay.as_ref());
    data_quality(&mut h, d);
    h.push_str("</body></html>\n");
    h
}

fn esc(s: &str) -> String {
    xml_escape(s)
}

fn header(h: &mut String, d: &ReportData) {
    let config = match &d.active {
        Some(a) => format!(
            "the PM reads config v{} (as of {}, {} overrides)",
            a.version, a.as_of, a.overrides
        ),
        None => "no config is active".to_string(),
    };
    let _ = writeln!(
            h,
            "<h1>What the loop learned tonight — module {}</h1>\n<p class=\"sub\">Data up to {}; {}.</p>",
        esc(&d.module),
        esc(d.data_as_of.as_deref().unwrap_or("(no data)")),
        esc(&config)
    );
}

/// What to do next and what needs attention, at the top.
fn attention(h: &mut String, d: &ReportData) {
    if let Some(next) = &d.next_step {
        let _ = writeln!(
            h,
            "<div class=\"box next\" id=\"next-step\"><b>Next step:</b> {}</div>",
            code_spans(next)
        );
    }
    if !d.warnings.is_empty() {
        h.push_str("<div class=\"box warn\" id=\"warnings\"><b>Attention:</b><ul>");
        for w in &d.warnings {
            let _ = write!(h, "<li>{}</li>", esc(w));
        }
        h.push_str("</ul></div>\n");
    }
}

/// Text with `code` spans, escaped.
fn code_spans(text: &str) -> String {
    esc(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

fn lessons_table(h: &mut String, d: &ReportData) {
    let _ = writeln!(h, "<h2>Active lessons ({})</h2>", d.lessons.len());
    if d.lessons.is_empty() {
        h.push_str(
            "<p>No lesson is active: the PM sizes every action as it would without the loop.</p>\n",
        );
        return;
    }
    h.push_str("<table id=\"lessons\"><tr><th>Lesson</th><th>PM's size ×</th><th>Trades</th><th>Weeks</th><th>Edge (R)</th><th>q</th><th>Since</th><th>Confirmed</th></tr>\n");
    for l in &d.lessons {
        let size = l
            .size_mult
            .map_or("— (neutral)".to_string(), |m| format!("{m:.2}"));
        let class = if l.shrunk_edge < 0.0 { "down" } else { "up" };
        let _ = writeln!(
            h,
            "<tr title=\"{}\"><td>{}</td><td class=\"num {class}\">{size}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num {class}\">{}</td><td class=\"num\">{}</td><td class=\"date\">{}</td><td class=\"date\">{}</td></tr>",
            esc(&lesson_sentence(l)),
            esc(&lesson_label(&l.pattern, &l.category, &l.scope)),
            l.n_trades,
            l.weeks.map_or("—".into(), |w| w.to_string()),
            signed(l.shrunk_edge),
            l.q_value.map_or("—".into(), q_text),
            esc(l.since.as_deref().unwrap_or("—")),
            esc(l.confirmed.as_deref().unwrap_or("—"))
        );
    }
    h.push_str("</table>\n");
}

fn changes(h: &mut String, d: &ReportData) {
    let title = match d.compared {
        Some((0, to)) => format!("What v{to} sets up"),
        Some((from, to)) => format!("What changed from v{from} to v{to}"),
        None => "What changed".to_string(),
    };
    let _ = writeln!(h, "<h2>{}</h2>", esc(&title));
    if d.changes.is_empty() && d.retired.is_empty() {
        h.push_str("<p>No override changed.</p>\n");
        return;
    }
    if !d.changes.is_empty() {
        h.push_str("<table id=\"changes\"><tr><th>Override</th><th>Size × before</th><th>after</th><th>Why</th></tr>\n");
        for c in &d.changes {
            change_row(h, c);
        }
        h.push_str("</table>\n");
    }
    if !d.retired.is_empty() {
        h.push_str("<p><b>Retired tonight:</b></p><ul>");
        for l in &d.retired {
            let _ = write!(
                h,
                "<li>{} — {}</li>",
                esc(&lesson_label(&l.pattern, &l.category, &l.scope)),
                esc(l.status_reason.as_deref().unwrap_or("no reason recorded"))
            );
        }
        h.push_str("</ul>\n");
    }
}

fn change_row(h: &mut String, c: &ConfigChange) {
    let cell = |v: Option<f64>| v.map_or("—".to_string(), |v| format!("{v:.2}"));
    let _ = writeln!(
        h,
        "<tr><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
        esc(&c.label),
        cell(c.before),
        cell(c.after),
        esc(&c.reason)
    );
}

/// Each active lesson's shrunk edge over the runs, with its 95 % band.
fn evidence(h: &mut String, lessons: &[LessonView]) {
    if lessons.is_empty() {
        return;
    }
    h.push_str("<h2 id=\"evidence\">Evidence over time</h2>\n<p class=\"sub\">Shrunk edge of each active lesson at every run, with a 95 % band (the lesson's current dispersion over √trades of each run).</p>\n<div class=\"lessons\">\n");
    for l in lessons {
        let chart = LineChart {
            y_label: "edge (R)".into(),
            lines: vec![Line {
                label: format!(
                    "{} (shrunk edge)",
                    lesson_label(&l.pattern, &l.category, &l.scope)
                ),
                color: if l.shrunk_edge < 0.0 {
                    "#c0392b"
                } else {
                    "#1e8449"
                },
                dashed: false,
                points: l
                    .history
                    .iter()
                    .map(|p| (p.as_of_ms, p.shrunk_edge))
                    .collect(),
            }],
            band: l
                .history
                .iter()
                .filter_map(|p| p.band.map(|(lo, hi)| (p.as_of_ms, lo, hi)))
                .collect(),
            reference: Some((0.0, "no edge")),
            width: 470.0,
            plot_height: 110.0,
        };
        let _ = writeln!(
            h,
            "<div class=\"lesson\"><p>{}</p>{}</div>",
            esc(&lesson_sentence(l)),
            chart.to_svg()
        );
    }
    h.push_str("</div>\n");
}

/// Cumulative R of the replayed actions with and without the overrides, and the placebo's.
fn walk_forward(h: &mut String, replay: Option<&ReplayFigures>) {
    h.push_str("<h2 id=\"walk-forward\">Does the loop help? (walk-forward replay)</h2>\n");
    let Some(r) = replay else {
        h.push_str("<p>No replay given. Run <code>learnloop replay --from D --to D --step 1d --out DIR --placebo-compare</code> and pass <code>--replay DIR</code> to see the cumulative R with and without the overrides.</p>\n");
        return;
    };
    let _ = writeln!(h, "<p id=\"uplift\">{}</p>", esc(&uplift_verdict(r)));
    let mut uplift = vec![cumulative(
        "uplift of the overrides",
        "#1f77b4",
        false,
        &r.days,
        |d| d.uplift_r,
    )];
    let mut totals = vec![
        cumulative("without overrides", "#7f7f7f", false, &r.days, |d| d.base_r),
        cumulative("with the overrides", "#1f77b4", false, &r.days, |d| {
            d.base_r + d.uplift_r
        }),
    ];
    if let Some(p) = &r.placebo_days {
        let label = "placebo: overrides learned from shuffled outcomes";
        uplift.push(cumulative(label, "#ff7f0e", true, p, |d| d.uplift_r));
        totals.push(cumulative(label, "#ff7f0e", true, p, |d| {
            d.base_r + d.uplift_r
        }));
    }
    h.push_str("<p class=\"sub\">What the overrides added, summed day by day (the difference between sizing with and without them):</p>\n");
    h.push_str(&wide_chart(
        "cumulative uplift (R)",
        uplift,
        Some((0.0, "no uplift")),
    ));
    h.push_str("<p class=\"sub\">Cumulative R of the replayed actions, with and without the overrides:</p>\n");
    h.push_str(&wide_chart("cumulative R", totals, None));
}

fn wide_chart(y_label: &str, lines: Vec<Line>, reference: Option<(f64, &'static str)>) -> String {
    let chart = LineChart {
        y_label: y_label.into(),
        lines,
        band: Vec::new(),
        reference,
        width: 960.0,
        plot_height: 200.0,
    };
    chart.to_svg() + "\n"
}

fn cumulative(
    label: &str,
    color: &'static str,
    dashed: bool,
    days: &[DayFigures],
    value: impl Fn(&DayFigures) -> f64,
) -> Line {
    let mut total = 0.0;
    Line {
        label: label.to_string(),
        color,
        dashed,
        points: days
            .iter()
            .map(|d| {
                total += value(d);
                (d.day_ms, total)
            })
            .collect(),
    }
}

fn data_quality(h: &mut String, d: &ReportData) {
    let c = &d.coverage;
    let share = if c.closes > 0 {
        100.0 * c.linked_trades as f64 / c.closes as f64
    } else {
        0.0
    };
    let _ = write!(
        h,
        "<h2>Coverage and data quality</h2>\n<div class=\"box\" id=\"quality\">{} strands: {} actions, {} closes; {} trades linked ({share:.0} % of closes).",
        c.strands, c.actions, c.closes, c.linked_trades
    );
    let list = |title: &str, rows: &[(String, i64)]| -> String {
        if rows.is_empty() {
            format!("<br>{title}: none.")
        } else {
            let items: Vec<String> = rows
                .iter()
                .map(|(k, n)| format!("{} {n}", esc(k)))
                .collect();
            format!("<br>{title}: {}.", items.join(", "))
        }
    };
    h.push_str(&list("Quarantined by reason", &c.quarantine));
    h.push_str(&list("Link anomalies", &c.anomalies));
    h.push_str("</div>\n");
}
