//! A small time-series line chart as inline SVG: lines, an optional shaded band, a reference
//! line, dated x ticks and a legend below the plot with whole labels (never cut).

use learnloop_replay::chart::{decimals_for, nice_axis, x_ticks, xml_escape};
use std::fmt::Write as _;

/// One line of the chart.
pub struct Line {
    /// Legend text, shown whole.
    pub label: String,
    /// CSS colour.
    pub color: &'static str,
    /// Dashed (e.g. a placebo).
    pub dashed: bool,
    /// (time in ms, value), in time order.
    pub points: Vec<(i64, f64)>,
}

/// A chart to draw.
pub struct LineChart {
    /// The y axis's title.
    pub y_label: String,
    /// The lines.
    pub lines: Vec<Line>,
    /// A shaded band (time, low, high), drawn under the lines.
    pub band: Vec<(i64, f64, f64)>,
    /// A labelled horizontal reference (value, label), e.g. (0, "no edge").
    pub reference: Option<(f64, &'static str)>,
    /// Canvas width and plot height, in px.
    pub width: f64,
    /// Height of the plot area, in px.
    pub plot_height: f64,
}

const LEFT: f64 = 64.0;
const RIGHT_MARGIN: f64 = 16.0;
const TOP: f64 = 12.0;
const LEGEND_ROW: f64 = 18.0;
const FONT: &str = "DejaVu Sans, Helvetica, Arial, sans-serif";

impl LineChart {
    /// The lines the legend lists: none for a single line, which its caption names.
    fn legend_lines(&self) -> &[Line] {
        if self.lines.len() > 1 {
            &self.lines
        } else {
            &[]
        }
    }

    /// The chart as an `<svg>` element; a chart with no point says so instead of drawing axes.
    pub fn to_svg(&self) -> String {
        let times: Vec<i64> = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.0))
            .chain(self.band.iter().map(|b| b.0))
            .collect();
        let (Some(&t_min), Some(&t_max)) = (times.iter().min(), times.iter().max()) else {
            return format!(
                r##"<svg class="chart empty" xmlns="http://www.w3.org/2000/svg" width="{w}" height="40" viewBox="0 0 {w} 40" font-family="{FONT}"><text x="8" y="24" font-size="13" fill="#666">no data yet</text></svg>"##,
                w = self.width
            );
        };
        let (t_min, t_max) = if t_max > t_min {
            (t_min, t_max)
        } else {
            (t_min - 86_400_000, t_max + 86_400_000)
        };
        let values = self
            .lines
            .iter()
            .flat_map(|l| l.points.iter().map(|p| p.1))
            .chain(self.band.iter().flat_map(|b| [b.1, b.2]))
            .chain(self.reference.map(|r| r.0))
            .filter(|v| v.is_finite());
        let (lo, hi) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let (y_lo, y_hi, y_step) = nice_axis(lo, hi);
        let plot = Plot {
            t_min,
            t_max,
            y_lo,
            y_hi,
            right: self.width - RIGHT_MARGIN,
            bottom: TOP + self.plot_height,
        };
        let height = plot.bottom + 24.0 + self.legend_lines().len() as f64 * LEGEND_ROW;
        let mut svg = String::with_capacity(8 * 1024);
        let _ = writeln!(
            svg,
            r#"<svg class="chart" xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" viewBox="0 0 {w} {height}" font-family="{FONT}" role="img">"#,
            w = self.width
        );
        plot.y_axis(&mut svg, y_step, &self.y_label);
        plot.x_axis(&mut svg);
        plot.band(&mut svg, &self.band);
        if let Some((value, label)) = self.reference {
            plot.reference(&mut svg, value, label);
        }
        for line in &self.lines {
            plot.line(&mut svg, line);
        }
        plot.legend(&mut svg, self.legend_lines());
        svg.push_str("</svg>");
        svg
    }
}

/// The plot area's mapping from data to pixels.
struct Plot {
    t_min: i64,
    t_max: i64,
    y_lo: f64,
    y_hi: f64,
    right: f64,
    bottom: f64,
}

impl Plot {
    fn x(&self, t: i64) -> f64 {
        LEFT + (t - self.t_min) as f64 / (self.t_max - self.t_min) as f64 * (self.right - LEFT)
    }

    fn y(&self, v: f64) -> f64 {
        self.bottom - (v - self.y_lo) / (self.y_hi - self.y_lo) * (self.bottom - TOP)
    }

    fn y_axis(&self, svg: &mut String, step: f64, label: &str) {
        let decimals = decimals_for(step);
        let ticks = ((self.y_hi - self.y_lo) / step).round() as i64;
        for k in 0..=ticks {
            let v = self.y_lo + k as f64 * step;
            let y = self.y(v);
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#eee"/><text x="{:.1}" y="{:.1}" font-size="11" fill="#444" text-anchor="end">{v:.decimals$}</text>"##,
                self.right,
                LEFT - 6.0,
                y + 4.0
            );
        }
        let mid = (TOP + self.bottom) / 2.0;
        let _ = writeln!(
            svg,
            r##"<text x="14" y="{mid:.1}" font-size="12" fill="#222" text-anchor="middle" transform="rotate(-90 14 {mid:.1})">{}</text>"##,
            xml_escape(label)
        );
    }

    fn x_axis(&self, svg: &mut String) {
        let max_ticks = ((self.right - LEFT) / 110.0).floor().max(2.0) as usize;
        for (t, label) in x_ticks(self.t_min, self.t_max, max_ticks) {
            let x = self.x(t);
            let anchor = if x + 35.0 > self.right + RIGHT_MARGIN {
                "end"
            } else {
                "middle"
            };
            let _ = writeln!(
                svg,
                r##"<line x1="{x:.1}" y1="{:.1}" x2="{x:.1}" y2="{:.1}" stroke="#444"/><text x="{x:.1}" y="{:.1}" font-size="11" fill="#444" text-anchor="{anchor}">{label}</text>"##,
                self.bottom,
                self.bottom + 4.0,
                self.bottom + 17.0
            );
        }
        let _ = writeln!(
            svg,
            r##"<path d="M{LEFT},{TOP} L{LEFT},{b:.1} L{r:.1},{b:.1}" fill="none" stroke="#444"/>"##,
            b = self.bottom,
            r = self.right
        );
    }

    fn band(&self, svg: &mut String, band: &[(i64, f64, f64)]) {
        if let [(t, lo, hi)] = band {
            // One point has no area: its interval is an error bar.
            let x = self.x(*t);
            let _ = writeln!(
                svg,
                r##"<path class="band" d="M{:.1},{:.1} L{:.1},{:.1} M{x:.1},{:.1} L{x:.1},{:.1} M{:.1},{:.1} L{:.1},{:.1}" stroke="#1f77b4" stroke-opacity="0.5" stroke-width="2" fill="none"/>"##,
                x - 5.0,
                self.y(*hi),
                x + 5.0,
                self.y(*hi),
                self.y(*hi),
                self.y(*lo),
                x - 5.0,
                self.y(*lo),
                x + 5.0,
                self.y(*lo)
            );
            return;
        }
        if band.is_empty() {
            return;
        }
        let mut d = String::new();
        for (i, (t, _, hi)) in band.iter().enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1} ",
                if i == 0 { "M" } else { "L" },
                self.x(*t),
                self.y(*hi)
            );
        }
        for (t, lo, _) in band.iter().rev() {
            let _ = write!(d, "L{:.1},{:.1} ", self.x(*t), self.y(*lo));
        }
        let _ = writeln!(
            svg,
            r##"<path class="band" d="{}Z" fill="#1f77b4" fill-opacity="0.15" stroke="none"/>"##,
            d
        );
    }

    /// A dashed reference line, labelled just above it at the left edge of the plot.
    fn reference(&self, svg: &mut String, value: f64, label: &str) {
        let y = self.y(value);
        let _ = writeln!(
            svg,
            r##"<line class="reference" x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#777" stroke-dasharray="5,4"/><text x="{:.1}" y="{:.1}" font-size="10" fill="#666">{}</text>"##,
            self.right,
            LEFT + 4.0,
            y - 4.0,
            xml_escape(label)
        );
    }

    fn line(&self, svg: &mut String, line: &Line) {
        let mut d = String::new();
        for (i, (t, v)) in line.points.iter().filter(|p| p.1.is_finite()).enumerate() {
            let _ = write!(
                d,
                "{}{:.1},{:.1} ",
                if i == 0 { "M" } else { "L" },
                self.x(*t),
                self.y(*v)
            );
        }
        let dash = if line.dashed {
            r#" stroke-dasharray="7,4""#
        } else {
            ""
        };
        let _ = writeln!(
            svg,
            r#"<path class="series" d="{}" fill="none" stroke="{}" stroke-width="2"{dash}><title>{}</title></path>"#,
            d.trim_end(),
            line.color,
            xml_escape(&line.label)
        );
        if line.points.len() == 1 {
            let (t, v) = line.points[0];
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                self.x(t),
                self.y(v),
                line.color
            );
        }
    }

    fn legend(&self, svg: &mut String, lines: &[Line]) {
        for (i, line) in lines.iter().enumerate() {
            let y = self.bottom + 36.0 + i as f64 * LEGEND_ROW;
            let dash = if line.dashed {
                r#" stroke-dasharray="7,4""#
            } else {
                ""
            };
            let _ = writeln!(
                svg,
                r##"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="{}" stroke-width="3"{dash}/><text x="{:.1}" y="{y:.1}" font-size="12" fill="#222">{}</text>"##,
                y - 4.0,
                LEFT + 22.0,
                y - 4.0,
                line.color,
                LEFT + 28.0,
                xml_escape(&line.label)
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chart(lines: Vec<Line>, band: Vec<(i64, f64, f64)>) -> LineChart {
        LineChart {
            y_label: "edge (R)".into(),
            lines,
            band,
            reference: Some((0.0, "no edge")),
            width: 600.0,
            plot_height: 180.0,
        }
    }

    #[test]
    fn a_chart_draws_every_line_its_band_and_whole_legend_labels() {
        let day = 86_400_000;
        let long = "uptrend.S3.add · add on bucket=micro, timeframe=1h, macro_phase=Euphoria, A_mode=aggressive".to_string();
        let svg = chart(
            vec![
                Line {
                    label: long.clone(),
                    color: "#1f77b4",
                    dashed: false,
                    points: (0..30).map(|i| (i * day, 0.1 * i as f64)).collect(),
                },
                Line {
                    label: "placebo".into(),
                    color: "#999",
                    dashed: true,
                    points: vec![(0, 0.0), (29 * day, -0.2)],
                },
            ],
            (0..30)
                .map(|i| (i * day, 0.1 * i as f64 - 0.5, 0.1 * i as f64 + 0.5))
                .collect(),
        )
        .to_svg();
        assert_eq!(svg.matches(r#"class="series""#).count(), 2);
        assert_eq!(svg.matches(r#"class="band""#).count(), 1);
        assert!(svg.contains(&format!(">{}</text>", xml_escape(&long))));
        assert!(!svg.contains('…'));
        assert!(svg.contains("no edge") && !svg.contains("NaN"));
        assert_eq!(svg.matches("<text").count(), svg.matches("</text>").count());
    }

    #[test]
    fn an_empty_chart_says_so() {
        assert!(chart(Vec::new(), Vec::new())
            .to_svg()
            .contains("no data yet"));
    }
}
