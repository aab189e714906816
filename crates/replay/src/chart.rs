//! The chart of how the main lessons' size multipliers moved over a replay: a hand-written SVG,
//! no plotting crate.
//!
//! A lesson is drawn only at the steps where it is active with a size multiplier; where it is not
//! active its effective multiplier is 1.0 and the line has a gap (the chart's subtitle says so).

use crate::report::EvolutionPoint;
use learnloop_overrides::Lever;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;

const WIDTH: f64 = 960.0;
const PLOT_LEFT: f64 = 80.0;
const PLOT_RIGHT: f64 = WIDTH - 50.0;
const PLOT_TOP: f64 = 78.0;
const PLOT_BOTTOM: f64 = 418.0;
/// Top of the legend block, below the x-axis title.
const LEGEND_TOP: f64 = 490.0;
const LEGEND_ROW: f64 = 20.0;
const LEGEND_COLUMNS: usize = 2;
/// Longest legend label, in characters, before its middle is cut with an ellipsis (fits half the
/// width at 12 px).
const LEGEND_MAX_CHARS: usize = 56;
const MIN_HEIGHT: f64 = 540.0;
const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";

/// Distinct colours (Tableau-like, without grey, which is kept for axes and the 1.0 line).
const PALETTE: [&str; 12] = [
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#393b79", "#ad494a", "#637939",
];

pub(crate) const DAY_MS: i64 = 86_400_000;

/// One lesson's line: colour, legend label, and its value (if active) at every step.
struct Series {
    color: &'static str,
    dashed: bool,
    label: String,
    values: Vec<Option<f64>>,
}

impl Series {
    fn ever_active(&self) -> bool {
        self.values.iter().any(Option::is_some)
    }

    /// The stroke-dash attribute that tells apart series sharing a colour.
    fn dash_attribute(&self) -> &'static str {
        if self.dashed {
            r#" stroke-dasharray="8,3""#
        } else {
            ""
        }
    }
}

/// Renders a line chart of `size_mult` over time for `lessons` (keys, in legend order), using
/// the points of those lessons. One `<path class="series">` per lesson; a lesson is drawn only
/// while active, and the line has a gap where it is not (its effective multiplier is then 1.0).
/// A dashed line marks the neutral 1.0 and dotted lines the size lever's bounds (labelled in the
/// right margin, clear of the data); the y axis covers at least [0.85, 1.15] and the data, the x
/// axis shows dates (UTC, YYYY-MM-DD). The legend sits below the plot and says how many of the
/// lessons ever active are drawn. With no lesson active at any step, the SVG says "no lessons
/// became active".
pub fn render_size_mult_svg(points: &[EvolutionPoint], lessons: &[String], title: &str) -> String {
    let steps: Vec<i64> = points
        .iter()
        .map(|p| p.as_of_ms)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let series = series_of(points, lessons, &steps);
    if !series.iter().any(Series::ever_active) {
        return render_empty(title, &steps);
    }
    let frame = Frame::new(&steps, &series);
    let mut svg = String::with_capacity(16 * 1024);
    svg_open(&mut svg, frame.height);
    header(&mut svg, title, &steps);
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="58" font-size="12" fill="#555">Each line is drawn only while its lesson is active; a gap means not active (effective multiplier 1.0). Dashed grey: neutral 1.0.</text>"##,
        PLOT_LEFT
    );
    frame.y_grid(&mut svg);
    frame.x_ticks(&mut svg);
    frame.lever_bounds(&mut svg);
    frame.neutral_and_axes(&mut svg);
    for s in &series {
        frame.series(&mut svg, s, &steps);
    }
    let ever_active = points
        .iter()
        .filter(|p| p.active_size_mult().is_some())
        .map(|p| p.lesson_key.as_str())
        .collect::<BTreeSet<_>>()
        .len();
    frame.legend(&mut svg, &series, ever_active);
    svg.push_str("</svg>\n");
    svg
}

/// The series of `lessons`, in order, with their values at every step (the last point given wins
/// for a duplicate step) and the label of their latest point (else the key).
fn series_of(points: &[EvolutionPoint], lessons: &[String], steps: &[i64]) -> Vec<Series> {
    let step_index: HashMap<i64, usize> = steps.iter().enumerate().map(|(i, &t)| (t, i)).collect();
    let wanted: HashMap<&str, usize> = lessons
        .iter()
        .enumerate()
        .map(|(i, k)| (k.as_str(), i))
        .collect();
    let mut per_lesson: Vec<BTreeMap<usize, &EvolutionPoint>> =
        vec![BTreeMap::new(); lessons.len()];
    for p in points {
        if let Some(&li) = wanted.get(p.lesson_key.as_str()) {
            per_lesson[li].insert(step_index[&p.as_of_ms], p);
        }
    }
    let mut series: Vec<Series> = lessons
        .iter()
        .zip(&per_lesson)
        .enumerate()
        .map(|(i, (key, by_step))| {
            let mut values = vec![None; steps.len()];
            for (&si, p) in by_step {
                values[si] = p.active_size_mult();
            }
            let label = by_step
                .values()
                .rev()
                .map(|p| p.label.trim())
                .find(|l| !l.is_empty())
                .unwrap_or(key.as_str())
                .to_string();
            Series {
                color: PALETTE[i % PALETTE.len()],
                dashed: (i / PALETTE.len()) % 2 == 1,
                label,
                values,
            }
        })
        .collect();
    disambiguate_labels(&mut series, lessons);
    series
}

/// Two lessons may share a label (the same scope text of two patterns cut short, or an empty
/// label): such labels get the lesson key appended so that the legend tells them apart.
fn disambiguate_labels(series: &mut [Series], keys: &[String]) {
    let mut count: HashMap<String, usize> = HashMap::new();
    for s in series.iter() {
        *count.entry(legend_text(&s.label)).or_default() += 1;
    }
    for (s, key) in series.iter_mut().zip(keys) {
        if count[&legend_text(&s.label)] > 1 && s.label != *key {
            s.label = format!("{} [{key}]", s.label);
        }
    }
}

/// A label as the legend prints it: cut in the middle, so that both the pattern (its start) and
/// the most specific scope dimensions (its end) stay readable.
fn legend_text(label: &str) -> String {
    truncate_middle(label, LEGEND_MAX_CHARS)
}

/// The plot's geometry: time and value ranges mapped onto the canvas.
struct Frame {
    t_min: i64,
    t_max: i64,
    y_lo: f64,
    y_hi: f64,
    y_step: f64,
    legend_rows: usize,
    height: f64,
}

impl Frame {
    fn new(steps: &[i64], series: &[Series]) -> Self {
        let (t_min, t_max) = time_range(steps);
        let (y_lo, y_hi, y_step) = y_axis(series);
        let legend_rows = series.len().div_ceil(LEGEND_COLUMNS);
        // Legend rows, the line that counts the drawn lessons, and a margin.
        let height = (LEGEND_TOP + (legend_rows + 1) as f64 * LEGEND_ROW + 12.0).max(MIN_HEIGHT);
        Self {
            t_min,
            t_max,
            y_lo,
            y_hi,
            y_step,
            legend_rows,
            height,
        }
    }

    fn x_of(&self, t: i64) -> f64 {
        PLOT_LEFT
            + (t - self.t_min) as f64 / (self.t_max - self.t_min) as f64 * (PLOT_RIGHT - PLOT_LEFT)
    }

    fn y_of(&self, v: f64) -> f64 {
        PLOT_BOTTOM - (v - self.y_lo) / (self.y_hi - self.y_lo) * (PLOT_BOTTOM - PLOT_TOP)
    }

    fn y_grid(&self, svg: &mut String) {
        let decimals = decimals_for(self.y_step);
        let n_y = ((self.y_hi - self.y_lo) / self.y_step).round() as i64;
        for k in 0..=n_y {
            let v = self.y_lo + k as f64 * self.y_step;
            let y = self.y_of(v);
            let _ = writeln!(
                svg,
                r##"<line x1="{PLOT_LEFT:.1}" y1="{y:.1}" x2="{PLOT_RIGHT:.1}" y2="{y:.1}" stroke="#e6e6e6" stroke-width="1"/>"##
            );
            let _ = writeln!(
                svg,
                r##"<line x1="{:.1}" y1="{y:.1}" x2="{PLOT_LEFT:.1}" y2="{y:.1}" stroke="#444" stroke-width="1"/>"##,
                PLOT_LEFT - 5.0
            );
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" font-size="12" fill="#333" text-anchor="end">{v:.decimals$}</text>"##,
                PLOT_LEFT - 8.0,
                y + 4.0
            );
        }
    }

    fn x_ticks(&self, svg: &mut String) {
        let max_ticks = ((PLOT_RIGHT - PLOT_LEFT) / 100.0).floor().max(2.0) as usize;
        for (t, label) in x_ticks(self.t_min, self.t_max, max_ticks) {
            let x = self.x_of(t);
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{PLOT_TOP:.1}" x2="{x:.1}" y2="{PLOT_BOTTOM:.1}" stroke="#f0f0f0" stroke-width="1"/>"##
            );
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{PLOT_BOTTOM:.1}" x2="{x:.1}" y2="{:.1}" stroke="#444" stroke-width="1"/>"##,
                PLOT_BOTTOM + 5.0
            );
            // Keep labels inside the canvas: one near an edge is anchored at its tick instead.
            let half_width = label.len() as f64 * 3.6;
            let anchor = if x + half_width > WIDTH - 4.0 {
                "end"
            } else if x - half_width < 4.0 {
                "start"
            } else {
                "middle"
            };
            let _ = writeln!(
                svg,
                r##"<text x="{x:.1}" y="{:.1}" font-size="12" fill="#333" text-anchor="{anchor}">{label}</text>"##,
                PLOT_BOTTOM + 20.0
            );
        }
    }

    /// The size lever's bounds, when the axis reaches them, labelled in the right margin so that
    /// the label never sits on a line that runs along the bound.
    fn lever_bounds(&self, svg: &mut String) {
        let (low, high) = Lever::SizeMult.bounds();
        for bound in [low, high] {
            if bound < self.y_lo - 1e-9 || bound > self.y_hi + 1e-9 {
                continue;
            }
            let y = self.y_of(bound);
            let _ = writeln!(
                svg,
                r##"<line class="lever-bound" x1="{PLOT_LEFT:.1}" y1="{y:.1}" x2="{PLOT_RIGHT:.1}" y2="{y:.1}" stroke="#c98b8b" stroke-width="1" stroke-dasharray="2,3"/>"##
            );
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{:.1}" font-size="11" fill="#a05050">bound</text>"##,
                PLOT_RIGHT + 4.0,
                y + 4.0
            );
        }
    }

    fn neutral_and_axes(&self, svg: &mut String) {
        let y1 = self.y_of(1.0);
        let _ = writeln!(
            svg,
            r##"<line class="neutral" x1="{PLOT_LEFT:.1}" y1="{y1:.1}" x2="{PLOT_RIGHT:.1}" y2="{y1:.1}" stroke="#666" stroke-width="1.5" stroke-dasharray="6,4"/>"##
        );
        let _ = writeln!(
            svg,
            r##"<path d="M{PLOT_LEFT:.1},{PLOT_TOP:.1} L{PLOT_LEFT:.1},{PLOT_BOTTOM:.1} L{PLOT_RIGHT:.1},{PLOT_BOTTOM:.1}" fill="none" stroke="#444" stroke-width="1"/>"##
        );
        let mid_y = (PLOT_TOP + PLOT_BOTTOM) / 2.0;
        let _ = writeln!(
            svg,
            r##"<text x="22" y="{mid_y:.1}" font-size="13" fill="#222" text-anchor="middle" transform="rotate(-90 22 {mid_y:.1})">size multiplier</text>"##
        );
        let _ = writeln!(
            svg,
            r##"<text x="{:.1}" y="{:.1}" font-size="13" fill="#222" text-anchor="middle">as of (UTC)</text>"##,
            (PLOT_LEFT + PLOT_RIGHT) / 2.0,
            PLOT_BOTTOM + 42.0
        );
    }

    /// One path per series (gaps as new sub-paths), dots where a point stands alone or, when
    /// there are few steps, at every point.
    fn series(&self, svg: &mut String, s: &Series, steps: &[i64]) {
        let dots_everywhere = steps.len() <= 40;
        let mut d = String::new();
        let mut dots = Vec::new();
        for (i, v) in s.values.iter().enumerate() {
            let Some(v) = *v else { continue };
            let (x, y) = (self.x_of(steps[i]), self.y_of(v));
            let prev = i > 0 && s.values[i - 1].is_some();
            let next = s.values.get(i + 1).is_some_and(Option::is_some);
            let _ = write!(d, "{}{x:.1},{y:.1} ", if prev { "L" } else { "M" });
            if dots_everywhere || (!prev && !next) {
                dots.push((x, y));
            }
        }
        let _ = writeln!(
            svg,
            r#"<path class="series" d="{}" fill="none" stroke="{}" stroke-width="2" stroke-linejoin="round" stroke-linecap="round"{}><title>{}</title></path>"#,
            d.trim_end(),
            s.color,
            s.dash_attribute(),
            xml_escape(&s.label)
        );
        for (x, y) in dots {
            let _ = writeln!(
                svg,
                r#"<circle cx="{x:.1}" cy="{y:.1}" r="2.5" fill="{}"/>"#,
                s.color
            );
        }
    }

    /// The legend below the plot, in columns, with a line that says how many of the lessons ever
    /// active the chart draws.
    fn legend(&self, svg: &mut String, series: &[Series], ever_active: usize) {
        let drawn = series.iter().filter(|s| s.ever_active()).count();
        let _ = writeln!(
            svg,
            r##"<text x="{PLOT_LEFT:.1}" y="{:.1}" font-size="12" font-weight="bold" fill="#222">Lessons (largest size-multiplier move first): {drawn} of {ever_active} ever active drawn; all of them are in evolution.csv</text>"##,
            LEGEND_TOP - 8.0
        );
        let column_width = (WIDTH - PLOT_LEFT - 20.0) / LEGEND_COLUMNS as f64;
        for (i, s) in series.iter().enumerate() {
            let col = (i / self.legend_rows) as f64;
            let row = (i % self.legend_rows) as f64;
            let x = PLOT_LEFT + col * column_width;
            let y = LEGEND_TOP + row * LEGEND_ROW + 10.0;
            let _ = writeln!(
                svg,
                r#"<line x1="{x:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="3"{}/>"#,
                y - 4.0,
                x + 24.0,
                y - 4.0,
                s.color,
                s.dash_attribute()
            );
            let never = if s.ever_active() {
                ""
            } else {
                " (never active)"
            };
            let _ = writeln!(
                svg,
                r##"<text x="{:.1}" y="{y:.1}" font-size="12" fill="#222">{}{never}<title>{}</title></text>"##,
                x + 30.0,
                xml_escape(&legend_text(&s.label)),
                xml_escape(&s.label)
            );
        }
    }
}

fn svg_open(svg: &mut String, height: f64) {
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" viewBox="0 0 {WIDTH} {height}" font-family="{FONT}">"#
    );
    let _ = writeln!(
        svg,
        r#"<rect x="0" y="0" width="{WIDTH}" height="{height}" fill="white"/>"#
    );
}

/// Title line, with the replay's date range on the right.
fn header(svg: &mut String, title: &str, steps: &[i64]) {
    let _ = writeln!(
        svg,
        r##"<text x="{PLOT_LEFT:.1}" y="34" font-size="18" font-weight="bold" fill="#111">{}</text>"##,
        xml_escape(&truncate(title, 60))
    );
    if let (Some(first), Some(last)) = (steps.first(), steps.last()) {
        let range = if first == last {
            format!("{}, 1 step", format_date(*first))
        } else {
            format!(
                "{} to {}, {} steps",
                format_date(*first),
                format_date(*last),
                steps.len()
            )
        };
        let _ = writeln!(
            svg,
            r##"<text x="{PLOT_RIGHT:.1}" y="34" font-size="12" fill="#555" text-anchor="end">{range}</text>"##
        );
    }
}

fn render_empty(title: &str, steps: &[i64]) -> String {
    let mut svg = String::new();
    svg_open(&mut svg, MIN_HEIGHT);
    header(&mut svg, title, steps);
    let _ = writeln!(
        svg,
        r##"<rect x="{PLOT_LEFT:.1}" y="{PLOT_TOP:.1}" width="{:.1}" height="{:.1}" fill="none" stroke="#ccc"/>"##,
        PLOT_RIGHT - PLOT_LEFT,
        PLOT_BOTTOM - PLOT_TOP
    );
    let _ = writeln!(
        svg,
        r##"<text x="{:.1}" y="{:.1}" font-size="16" fill="#555" text-anchor="middle">no lessons became active</text>"##,
        (PLOT_LEFT + PLOT_RIGHT) / 2.0,
        (PLOT_TOP + PLOT_BOTTOM) / 2.0
    );
    svg.push_str("</svg>\n");
    svg
}

/// The x range in ms: the steps' span, or a day either side of a single step.
fn time_range(steps: &[i64]) -> (i64, i64) {
    let (first, last) = (steps[0], steps[steps.len() - 1]);
    if last > first {
        (first, last)
    } else {
        (first - DAY_MS, last + DAY_MS)
    }
}

/// Y axis `(low, high, tick step)`: covers [0.85, 1.15] and every drawn value, on round ticks.
fn y_axis(series: &[Series]) -> (f64, f64, f64) {
    let (mut lo, mut hi) = (0.85_f64, 1.15_f64);
    for v in series.iter().flat_map(|s| s.values.iter().flatten()) {
        lo = lo.min(*v);
        hi = hi.max(*v);
    }
    nice_axis(lo, hi)
}

/// An axis `(low, high, tick step)` on round ticks (6–10 of them) that covers `[lo, hi]`; a
/// degenerate range is widened so that it still has ticks.
pub fn nice_axis(lo: f64, hi: f64) -> (f64, f64, f64) {
    let (lo, hi) = if hi - lo > 1e-12 {
        (lo, hi)
    } else {
        (lo - 0.5, hi + 0.5)
    };
    let raw = (hi - lo) / 8.0;
    let magnitude = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * magnitude);
    let lo = (lo / step + 1e-6).floor() * step;
    let hi = (hi / step - 1e-6).ceil() * step;
    (lo, hi, step)
}

/// Decimals that print every multiple of `step` exactly.
pub fn decimals_for(step: f64) -> usize {
    let mut decimals = 0;
    let mut s = step;
    while decimals < 6 && (s - s.round()).abs() > 1e-9 {
        s *= 10.0;
        decimals += 1;
    }
    decimals
}

/// A tick interval on the calendar.
#[derive(Clone, Copy)]
enum TickStep {
    Days(i64),
    Months(i64),
}

/// Date ticks within [t_min, t_max], each with its label: the finest calendar step (1, 2, 7, 14 days; 1, 2, 3, 6
/// months; 1, 2, 5, 10… years) that gives at most `max_ticks` ticks. When the range does not
/// contain a midnight (sub-day replays), the two ends are labelled instead.
pub fn x_ticks(t_min: i64, t_max: i64, max_ticks: usize) -> Vec<(i64, String)> {
    let mut candidates = vec![
        TickStep::Days(1),
        TickStep::Days(2),
        TickStep::Days(7),
        TickStep::Days(14),
        TickStep::Months(1),
        TickStep::Months(2),
        TickStep::Months(3),
        TickStep::Months(6),
    ];
    let mut years = 1;
    while years <= 10_000 {
        for m in [1, 2, 5] {
            candidates.push(TickStep::Months(12 * years * m));
        }
        years *= 10;
    }
    for step in candidates {
        let ticks = ticks_for(step, t_min, t_max, max_ticks + 1);
        if ticks.len() <= max_ticks {
            if ticks.len() >= 2 || !matches!(step, TickStep::Days(1)) {
                return ticks.into_iter().map(|t| (t, format_date(t))).collect();
            }
            // Fewer than two midnights in range: label the ends with their time of day.
            return vec![
                (t_min, format_date_time(t_min)),
                (t_max, format_date_time(t_max)),
            ];
        }
    }
    Vec::new()
}

/// Ticks of `step` in [t_min, t_max] (UTC midnights), stopping after `limit`.
fn ticks_for(step: TickStep, t_min: i64, t_max: i64, limit: usize) -> Vec<i64> {
    let mut ticks = Vec::new();
    match step {
        TickStep::Days(d) => {
            // Weekly ticks fall on Mondays (1970-01-05 is day 4).
            let offset = if d % 7 == 0 { 4 } else { 0 };
            let first_day = t_min.div_euclid(DAY_MS) + i64::from(t_min.rem_euclid(DAY_MS) != 0);
            let mut day = first_day + (offset - first_day).rem_euclid(d);
            while day * DAY_MS <= t_max && ticks.len() < limit {
                ticks.push(day * DAY_MS);
                day += d;
            }
        }
        TickStep::Months(m) => {
            let (y, mo, _) = civil_from_days(t_min.div_euclid(DAY_MS));
            // Month index since year 0, rounded up to the step.
            let mut idx = y * 12 + (mo - 1);
            if days_from_civil(y, mo, 1) * DAY_MS < t_min {
                idx += 1;
            }
            idx += (-idx).rem_euclid(m);
            loop {
                let t = days_from_civil(idx.div_euclid(12), idx.rem_euclid(12) + 1, 1) * DAY_MS;
                if t > t_max || ticks.len() >= limit {
                    break;
                }
                ticks.push(t);
                idx += m;
            }
        }
    }
    ticks
}

/// `YYYY-MM-DD` (UTC) of a time in ms.
pub fn format_date(t_ms: i64) -> String {
    let (y, m, d) = civil_from_days(t_ms.div_euclid(DAY_MS));
    format!("{y:04}-{m:02}-{d:02}")
}

/// `YYYY-MM-DD HH:MM` (UTC) of a time in ms.
fn format_date_time(t_ms: i64) -> String {
    let minutes = t_ms.rem_euclid(DAY_MS) / 60_000;
    format!(
        "{} {:02}:{:02}",
        format_date(t_ms),
        minutes / 60,
        minutes % 60
    )
}

/// (year, month 1–12, day 1–31) of a day count since 1970-01-01 (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// Day count since 1970-01-01 of a civil date (inverse of [`civil_from_days`]).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 };
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// At most `max` characters, the middle replaced by an ellipsis when cut.
fn truncate_middle(s: &str, max: usize) -> String {
    let chars: Vec<char> = s.chars().collect();
    if chars.len() <= max {
        return s.to_string();
    }
    let keep = max.saturating_sub(1);
    let head = keep / 2;
    let tail = keep - head;
    let mut out: String = chars[..head].iter().collect();
    out.push('…');
    out.extend(&chars[chars.len() - tail..]);
    out
}

/// At most `max` characters, the last one an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_string()
    } else {
        let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
        out.push('…');
        out
    }
}

/// Text escaped for XML and HTML (control characters become spaces).
pub fn xml_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab/newline are not allowed in XML 1.0.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::fixtures::{point, synthetic, T0};
    use crate::report::main_lessons;
    use learnloop_model::LessonStatus;

    /// The `d` attribute of the series path whose tooltip contains `label`.
    fn series_d<'a>(svg: &'a str, label: &str) -> &'a str {
        let line = svg
            .lines()
            .find(|l| l.starts_with(r#"<path class="series""#) && l.contains(label))
            .unwrap();
        let start = line.find(" d=\"").unwrap() + 4;
        let len = line[start..].find('"').unwrap();
        &line[start..start + len]
    }

    #[test]
    fn svg_of_synthetic_evolution() {
        let pts = synthetic();
        let lessons = main_lessons(&pts, 8);
        let svg = render_size_mult_svg(&pts, &lessons, "Size multipliers <demo> & co");
        assert!(svg.starts_with("<svg "));
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches(r#"<path class="series""#).count(), 3);
        assert_eq!(svg.matches("<svg").count(), svg.matches("</svg>").count());
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
        assert!(svg.contains("Size multipliers &lt;demo&gt; &amp; co"));
        assert!(svg.contains("uptrend.S2.add/add {macro_phase=Euphoria}"));
        assert!(svg.contains("{regime=bear &amp; vol&lt;high, bucket=&quot;small&quot;}"));
        assert!(!svg.contains("vol<high"));
        // The long label is cut in the legend but kept whole in the tooltip.
        let long = "range.S3.entry/entry {macro_phase=Recovery, session=asia, liquidity_bucket=thin, venue=binance-perp}";
        let cut = truncate_middle(long, LEGEND_MAX_CHARS);
        assert!(cut.starts_with("range.S3.entry/entry {"));
        assert!(cut.ends_with("venue=binance-perp}") && cut.contains('…'));
        assert_eq!(cut.chars().count(), LEGEND_MAX_CHARS);
        assert!(svg.contains(&format!(">{cut}<title>")));
        assert!(svg.contains(
            "<title>range.S3.entry/entry {macro_phase=Recovery, session=asia, liquidity_bucket=thin, venue=binance-perp}</title>"
        ));
        // Lesson c stops halfway: its path is one sub-path ending on day 59.
        let c_path = series_d(&svg, "range.S3");
        assert_eq!(c_path.matches('M').count(), 1);
        assert_eq!(c_path.matches('L').count(), 59);
        // Axis furniture.
        assert!(svg.contains("size multiplier"));
        assert!(svg.contains("as of"));
        assert!(svg.contains(r#"class="neutral""#));
        assert!(svg.contains(">2024-02-01<"));
        assert!(svg.contains(">1.3<") && svg.contains(">0.8<") && !svg.contains(">1.4<"));
        assert!(svg.contains("gap means not active"));
        // Three of the three lessons ever active are drawn, and the legend says so.
        assert!(svg.contains("3 of 3 ever active drawn"));
        // The bound labels stand in the right margin, clear of the plot's lines.
        for line in svg.lines().filter(|l| l.contains(">bound<")) {
            let x: f64 = line
                .split("x=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap()
                .parse()
                .unwrap();
            assert!(x > PLOT_RIGHT, "{line}");
        }
        assert_eq!(svg.matches(r#"class="lever-bound""#).count(), 1); // 1.3 only: the axis stops at 0.8
    }

    #[test]
    fn legend_counts_the_lessons_it_leaves_out_and_tells_same_labels_apart() {
        let mut pts = Vec::new();
        for (i, key) in ["k1", "k2", "k3"].iter().enumerate() {
            for day in 0..5 {
                let label = "same.S1/add {a=1}";
                pts.push(point(
                    day,
                    key,
                    label,
                    LessonStatus::Active,
                    Some(1.0 + 0.05 * (i + 1) as f64),
                ));
            }
        }
        let svg = render_size_mult_svg(&pts, &["k1".to_string(), "k2".to_string()], "t");
        assert!(svg.contains("2 of 3 ever active drawn"));
        assert!(svg.contains("same.S1/add {a=1} [k1]") && svg.contains("same.S1/add {a=1} [k2]"));
    }

    #[test]
    fn svg_with_a_gap_in_the_middle() {
        let mut pts = Vec::new();
        for day in 0..10 {
            let status = if (3..6).contains(&day) {
                LessonStatus::Retired
            } else {
                LessonStatus::Active
            };
            pts.push(point(day, "k", "k", status, Some(1.1)));
        }
        let svg = render_size_mult_svg(&pts, &["k".to_string()], "t");
        let path = series_d(&svg, "k");
        assert_eq!(path.matches('M').count(), 2);
        assert_eq!(path.matches('L').count(), 5);
    }

    #[test]
    fn svg_without_active_lessons_says_so() {
        let svg = render_size_mult_svg(&[], &[], "Replay");
        assert!(svg.starts_with("<svg "));
        assert!(svg.contains("no lessons became active"));
        let pts = vec![point(0, "k", "k", LessonStatus::Candidate, None)];
        let svg = render_size_mult_svg(&pts, &["k".to_string()], "Replay");
        assert!(svg.contains("no lessons became active"));
        assert!(!svg.contains(r#"class="series""#));
    }

    #[test]
    fn svg_single_step() {
        let pts = vec![point(0, "k", "k", LessonStatus::Active, Some(1.05))];
        let svg = render_size_mult_svg(&pts, &["k".to_string()], "one step");
        assert!(svg.contains("<circle"));
        assert!(svg.contains(">2024-01-01<"));
        assert!(!svg.contains("NaN") && !svg.contains("inf"));
    }

    #[test]
    fn x_ticks_are_sensible_for_short_and_long_ranges() {
        for (days, max_ticks) in [
            (3, 9),
            (10, 9),
            (45, 9),
            (120, 9),
            (400, 9),
            (1100, 9),
            (20_000, 9),
        ] {
            let ticks = x_ticks(T0, T0 + days * DAY_MS, max_ticks);
            assert!(
                ticks.len() >= 2 && ticks.len() <= max_ticks,
                "{days}: {ticks:?}"
            );
            assert!(ticks.windows(2).all(|w| w[0].0 < w[1].0));
            assert!(ticks
                .iter()
                .all(|(t, l)| *t >= T0 && *t <= T0 + days * DAY_MS && l.len() == 10));
        }
        let ticks = x_ticks(T0 + 3_600_000, T0 + 7_200_000, 9);
        assert_eq!(ticks[0].1, "2024-01-01 01:00");
        let ticks = x_ticks(T0, T0 + 400 * DAY_MS, 9);
        assert_eq!(ticks[0].1, "2024-01-01");
        assert_eq!(ticks[1].1, "2024-03-01");
    }

    #[test]
    fn dates_round_trip() {
        assert_eq!(format_date(0), "1970-01-01");
        assert_eq!(format_date(T0), "2024-01-01");
        assert_eq!(format_date(T0 + 59 * DAY_MS), "2024-02-29");
        assert_eq!(format_date(-1), "1969-12-31");
        for day in [-800_000, -1, 0, 59, 11_016, 19_723, 2_932_896] {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }

    #[test]
    fn truncate_and_escape() {
        assert_eq!(truncate("abcdef", 4), "abc…");
        assert_eq!(truncate("abc", 4), "abc");
        assert_eq!(truncate("ééééé", 3), "éé…");
        assert_eq!(
            xml_escape(r#"<a & 'b' "c">"#),
            "&lt;a &amp; &apos;b&apos; &quot;c&quot;&gt;"
        );
    }

    /// Writes sample charts to /tmp for a look: `cargo test -p learnloop-replay -- --ignored`.
    #[test]
    #[ignore]
    fn write_sample_charts_to_tmp() {
        let pts = synthetic();
        let lessons = main_lessons(&pts, 8);
        let svg = render_size_mult_svg(&pts, &lessons, "Lesson size multipliers, replay 2024");
        std::fs::write("/tmp/learnloop_size_mult.svg", svg).unwrap();
        std::fs::write(
            "/tmp/learnloop_size_mult_empty.svg",
            render_size_mult_svg(&[], &[], "Lesson size multipliers"),
        )
        .unwrap();
    }
}
