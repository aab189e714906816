//! Replay report: the lesson-evolution table (CSV and JSON) and the choice of the main lessons
//! that the chart (`chart.rs`) draws.

use learnloop_model::LessonStatus;
use std::collections::HashMap;
use std::io::Write as _;
use std::path::Path;

/// One lesson at one replay step (one row of `lesson_evolution`, with a readable label).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EvolutionPoint {
    /// Step time, RFC 3339.
    pub as_of: String,
    /// Step time, milliseconds since the Unix epoch (UTC); the chart's x coordinate.
    pub as_of_ms: i64,
    /// The lesson.
    pub lesson_key: String,
    /// Human-readable lesson, e.g. `uptrend.S2.add/add {macro_phase=Euphoria}`.
    pub label: String,
    /// Its status at the step.
    pub status: LessonStatus,
    /// Shrunk edge at the step.
    pub edge: Option<f64>,
    /// q-value at the step.
    pub q_value: Option<f64>,
    /// Half-life at the step, if estimated.
    pub half_life_hours: Option<f64>,
    /// Size multiplier of its override in the step's config, if any.
    pub size_mult: Option<f64>,
}

impl EvolutionPoint {
    /// The size multiplier the PM would see from this lesson: only an active lesson has one.
    pub(crate) fn active_size_mult(&self) -> Option<f64> {
        if self.status == LessonStatus::Active {
            self.size_mult.filter(|v| v.is_finite())
        } else {
            None
        }
    }
}

const CSV_HEADER: &str =
    "as_of,as_of_ms,lesson_key,label,status,edge,q_value,half_life_hours,size_mult";

/// Writes the evolution table as CSV: a header and one row per point, in the order given.
///
/// Fields containing a comma, a double quote, a line break or leading/trailing spaces are quoted
/// (RFC 4180, inner quotes doubled). `None` and non-finite numbers are written as empty fields;
/// finite numbers use the shortest representation that reads back to the same `f64`.
pub fn write_evolution_csv(path: &Path, points: &[EvolutionPoint]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "{CSV_HEADER}")?;
    for p in points {
        writeln!(
            out,
            "{},{},{},{},{},{},{},{},{}",
            csv_field(&p.as_of),
            p.as_of_ms,
            csv_field(&p.lesson_key),
            csv_field(&p.label),
            p.status.as_str(),
            csv_number(p.edge),
            csv_number(p.q_value),
            csv_number(p.half_life_hours),
            csv_number(p.size_mult),
        )?;
    }
    out.flush()
}

fn csv_field(s: &str) -> String {
    let needs_quotes = s.contains([',', '"', '\n', '\r']) || s.starts_with(' ') || s.ends_with(' ');
    if needs_quotes {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

fn csv_number(v: Option<f64>) -> String {
    match v {
        Some(x) if x.is_finite() => x.to_string(),
        _ => String::new(),
    }
}

/// Writes the evolution table as a pretty-printed JSON array of [`EvolutionPoint`] objects, in
/// the order given (non-finite numbers become `null`).
pub fn write_evolution_json(path: &Path, points: &[EvolutionPoint]) -> std::io::Result<()> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    serde_json::to_writer_pretty(&mut out, points)?;
    writeln!(out)?;
    out.flush()
}

/// The lesson keys whose size multiplier moved the most: ranked by the largest |size_mult − 1|
/// reached while active (ties by key), at most `max`. Lessons never active with a size multiplier
/// are not listed.
pub fn main_lessons(points: &[EvolutionPoint], max: usize) -> Vec<String> {
    let mut deviation: HashMap<&str, f64> = HashMap::new();
    for p in points {
        if let Some(m) = p.active_size_mult() {
            let d = (m - 1.0).abs();
            let entry = deviation.entry(p.lesson_key.as_str()).or_insert(d);
            if d > *entry {
                *entry = d;
            }
        }
    }
    let mut ranked: Vec<(&str, f64)> = deviation.into_iter().collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(b.0)));
    ranked
        .into_iter()
        .take(max)
        .map(|(k, _)| k.to_string())
        .collect()
}

/// Evolution points for the tests of the report and the chart.
#[cfg(test)]
pub(crate) mod fixtures {
    use super::{EvolutionPoint, LessonStatus};
    use crate::chart::{format_date, DAY_MS};

    pub(crate) const T0: i64 = 1_704_067_200_000; // 2024-01-01T00:00:00Z

    pub(crate) fn point(
        day: i64,
        key: &str,
        label: &str,
        status: LessonStatus,
        mult: Option<f64>,
    ) -> EvolutionPoint {
        let t = T0 + day * DAY_MS;
        EvolutionPoint {
            as_of: format!("{}T00:00:00Z", format_date(t)),
            as_of_ms: t,
            lesson_key: key.to_string(),
            label: label.to_string(),
            status,
            edge: mult.map(|m| (m - 1.0) / 0.5),
            q_value: Some(0.01),
            half_life_hours: None,
            size_mult: mult,
        }
    }

    /// Three lessons over 120 days: one rising to the upper bound, one sizing down, one active
    /// for the first half only, plus one that never becomes active.
    pub(crate) fn synthetic() -> Vec<EvolutionPoint> {
        let mut pts = Vec::new();
        for day in 0..120 {
            let x = day as f64 / 119.0;
            if day >= 10 {
                pts.push(point(
                    day,
                    "lesson-a",
                    "uptrend.S2.add/add {macro_phase=Euphoria}",
                    LessonStatus::Active,
                    Some((1.0 + 0.35 * (x * 3.0).min(1.0) + 0.02 * (day as f64).sin()).min(1.3)),
                ));
            } else {
                pts.push(point(
                    day,
                    "lesson-a",
                    "uptrend.S2.add/add {macro_phase=Euphoria}",
                    LessonStatus::Candidate,
                    None,
                ));
            }
            pts.push(point(
                day,
                "lesson-b",
                "breakdown.S1.exit/trim {regime=bear & vol<high, bucket=\"small\"}",
                LessonStatus::Active,
                Some(1.0 - 0.18 * x - 0.01 * (day as f64 * 0.7).cos()),
            ));
            let c_status = if day < 60 {
                LessonStatus::Active
            } else {
                LessonStatus::Retired
            };
            pts.push(point(
                day,
                "lesson-c",
                "range.S3.entry/entry {macro_phase=Recovery, session=asia, liquidity_bucket=thin, venue=binance-perp}",
                c_status,
                Some(1.08 + 0.03 * (day as f64 / 9.0).sin()),
            ));
            pts.push(point(
                day,
                "lesson-d",
                "never.S0/add {}",
                LessonStatus::Candidate,
                None,
            ));
        }
        pts
    }
}

#[cfg(test)]
mod tests {
    use super::fixtures::{point, synthetic};
    use super::*;

    #[test]
    fn main_lessons_ranked_by_largest_move_then_key() {
        let pts = synthetic();
        assert_eq!(
            main_lessons(&pts, 10),
            vec!["lesson-a", "lesson-b", "lesson-c"]
        );
        assert_eq!(main_lessons(&pts, 2), vec!["lesson-a", "lesson-b"]);
        assert!(main_lessons(&pts, 0).is_empty());
        let tie = vec![
            point(0, "z", "z", LessonStatus::Active, Some(1.25)),
            point(0, "y", "y", LessonStatus::Active, Some(0.75)),
            point(1, "x", "x", LessonStatus::Retired, Some(1.3)),
        ];
        assert_eq!(main_lessons(&tie, 5), vec!["y", "z"]);
    }

    #[test]
    fn csv_quotes_and_round_trips_numbers() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let mut p = point(
            0,
            "key,1",
            "a \"b\" {x=1, y=2}",
            LessonStatus::Active,
            Some(1.1),
        );
        p.half_life_hours = Some(f64::NAN);
        let q = point(1, "key2", "multi\nline", LessonStatus::Retired, None);
        let csv_path = dir.join("evolution.csv");
        write_evolution_csv(&csv_path, &[p.clone(), q.clone()]).unwrap();
        let text = std::fs::read_to_string(&csv_path).unwrap();
        let mut lines = text.split('\n');
        assert_eq!(lines.next().unwrap(), CSV_HEADER);
        assert_eq!(
            lines.next().unwrap(),
            "2024-01-01T00:00:00Z,1704067200000,\"key,1\",\"a \"\"b\"\" {x=1, y=2}\",active,0.20000000000000018,0.01,,1.1"
        );
        assert_eq!(
            lines.next().unwrap(),
            "2024-01-02T00:00:00Z,1704153600000,key2,\"multi"
        );
        assert_eq!(lines.next().unwrap(), "line\",retired,,0.01,,");

        let json_path = dir.join("evolution.json");
        write_evolution_json(&json_path, &[q.clone(), p.clone()]).unwrap();
        let back: Vec<EvolutionPoint> =
            serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
        assert_eq!(back[0], q);
        assert_eq!(back[1].half_life_hours, None); // NaN is written as null
        assert_eq!(back[1].label, p.label);
    }
}
