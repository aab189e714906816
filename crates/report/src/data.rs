//! Everything the report shows, read once from the store (and a replay's output directory).

use learnloop_model::pattern::short_pattern_key;
use learnloop_model::{ConfigStatus, ConfigVersion, EdgePoint, LessonRow, LessonStatus, Timestamp};
use learnloop_overrides::{ConfigData, Lever, Override};
use learnloop_replay::{DayFigures, WalkForwardSeries};
use learnloop_store::configs;
use learnloop_store::lessons;
use learnloop_store::Connection;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Why a report could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] learnloop_store::StoreError),
    /// A file could not be read or written.
    #[error(transparent)]
    Io(#[from] std::io::Error),
    /// A replay output file is not what `learnloop replay` writes.
    #[error("{path}: {message}")]
    Replay {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
}

/// A config version as the report names it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfigSummary {
    /// Version number.
    pub version: i64,
    /// Its status.
    pub status: ConfigStatus,
    /// As-of time of the run that wrote it.
    pub as_of: Timestamp,
    /// Number of overrides.
    pub overrides: usize,
}

/// One lesson in plain terms, with the size multiplier the PM will use for it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LessonView {
    /// Stable lesson key.
    pub key: String,
    /// Pattern without the module prefix, e.g. `uptrend.S3.add`.
    pub pattern: String,
    /// Action category.
    pub category: String,
    /// The scope's `dim = value` pairs, sorted by dim.
    pub scope: Vec<(String, String)>,
    /// Trades behind the lesson.
    pub n_trades: u64,
    /// Calendar weeks between the first and the last exit of those trades (at least 1).
    pub weeks: Option<u64>,
    /// Mean R of the subset.
    pub mean_rr: f64,
    /// Raw edge against its baseline.
    pub edge: f64,
    /// Shrunk edge, what the levers use.
    pub shrunk_edge: f64,
    /// q-value of its test.
    pub q_value: Option<f64>,
    /// First activation (date).
    pub since: Option<String>,
    /// Last run whose fresh trades re-confirmed it (date).
    pub confirmed: Option<String>,
    /// Consecutive runs it has failed its tests while kept active (hysteresis).
    pub failed_runs: u32,
    /// Its lifecycle status.
    pub status: LessonStatus,
    /// Why it has that status.
    pub status_reason: Option<String>,
    /// The blended size multiplier of the override that carries this lesson in the config the
    /// PM reads (`None`: no override carries it, e.g. decayed to neutral).
    pub size_mult: Option<f64>,
    /// Its edge over time, with a 95 % band.
    pub history: Vec<EdgeBandPoint>,
}

/// One run's shrunk edge of a lesson and its 95 % band.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct EdgeBandPoint {
    /// The run's as-of, ms since the epoch.
    pub as_of_ms: i64,
    /// The shrunk edge.
    pub shrunk_edge: f64,
    /// Band low and high; `None` when the lesson has no test statistic to scale it by.
    pub band: Option<(f64, f64)>,
}

/// One override that differs between two config versions.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ConfigChange {
    /// Pattern, category and scope in words.
    pub label: String,
    /// Size multiplier before (`None`: the override is new).
    pub before: Option<f64>,
    /// Size multiplier after (`None`: the override is gone).
    pub after: Option<f64>,
    /// Why it changed.
    pub reason: String,
}

/// Coverage and data quality.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct Coverage {
    /// Strands stored.
    pub strands: i64,
    /// Actions normalised.
    pub actions: i64,
    /// Closes normalised.
    pub closes: i64,
    /// Closed trades linked to at least one action.
    pub linked_trades: i64,
    /// Quarantined strands by reason.
    pub quarantine: Vec<(String, i64)>,
    /// Link anomalies by kind.
    pub anomalies: Vec<(String, i64)>,
}

/// A replay's walk-forward figures.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReplayFigures {
    /// The replay's output directory.
    pub dir: String,
    /// Steps replayed.
    pub steps: u64,
    /// Total uplift of the overrides, in R.
    pub uplift_total_r: f64,
    /// Its 95 % bootstrap interval.
    pub uplift_ci95: [f64; 2],
    /// The placebo's total uplift and interval, when the replay ran one.
    pub placebo: Option<(f64, [f64; 2])>,
    /// Daily figures.
    pub days: Vec<DayFigures>,
    /// The placebo's daily figures.
    pub placebo_days: Option<Vec<DayFigures>>,
}

/// Everything the report shows.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReportData {
    /// The module reported on.
    pub module: String,
    /// Latest `created_at` among the stored strands.
    pub data_as_of: Option<String>,
    /// The version the PM reads.
    pub active: Option<ConfigSummary>,
    /// The newest version, when it is not the active one.
    pub newer: Option<ConfigSummary>,
    /// The versions the changes compare (from, to).
    pub compared: Option<(i64, i64)>,
    /// What to do next, as a command.
    pub next_step: Option<String>,
    /// Things that need a person's attention.
    pub warnings: Vec<String>,
    /// Active lessons, strongest evidence first.
    pub lessons: Vec<LessonView>,
    /// Lessons retired by the last run.
    pub retired: Vec<LessonView>,
    /// Overrides that changed between the compared versions.
    pub changes: Vec<ConfigChange>,
    /// Coverage and data quality.
    pub coverage: Coverage,
    /// The replay, when one was given.
    pub replay: Option<ReplayFigures>,
}

/// Read what the report shows for `module` (default: the first module with a config, else
/// `pm`), with the walk-forward figures of the replay written to `replay_dir`, if given.
pub fn gather(
    conn: &Connection,
    module: Option<&str>,
    replay_dir: Option<&Path>,
) -> Result<ReportData, ReportError> {
    let module = match module {
        Some(m) => m.to_string(),
        None => configs::modules(conn)?
            .into_iter()
            .next()
            .unwrap_or_else(|| "pm".to_string()),
    };
    let versions = configs::all_versions(conn, &module)?;
    let active = versions.iter().find(|v| v.status == ConfigStatus::Active);
    let latest = versions.iter().max_by_key(|v| v.version);
    let newer = latest.filter(|l| active.is_none_or(|a| l.version > a.version));
    let data_as_of = learnloop_store::strands::latest_created_at(conn)?;
    let active_data = active.and_then(parse_config);
    let all = lessons::all_lessons(conn)?;
    let last_run_as_of = all.iter().map(|l| l.updated_at).max();
    let mut lesson_views = Vec::new();
    let mut retired = Vec::new();
    for l in all.iter().filter(|l| l.module == module) {
        if l.status == LessonStatus::Active {
            lesson_views.push(lesson_view(conn, l, active_data.as_ref())?);
        } else if l.status == LessonStatus::Retired && Some(l.updated_at) == last_run_as_of {
            retired.push(lesson_view(conn, l, active_data.as_ref())?);
        }
    }
    lesson_views.sort_by(|a, b| {
        let strength = |l: &LessonView| l.q_value.unwrap_or(1.0);
        strength(a)
            .total_cmp(&strength(b))
            .then_with(|| b.shrunk_edge.abs().total_cmp(&a.shrunk_edge.abs()))
            .then_with(|| a.key.cmp(&b.key))
    });
    let (compared, changes) = changes(&versions, active, newer, &all);
    Ok(ReportData {
        warnings: warnings(&versions, active, data_as_of),
        next_step: next_step(active, newer),
        module,
        data_as_of: data_as_of.map(Timestamp::to_rfc3339),
        active: active.map(summary),
        newer: newer.map(summary),
        compared,
        lessons: lesson_views,
        retired,
        changes,
        coverage: coverage(conn)?,
        replay: replay_dir.map(read_replay).transpose()?,
    })
}

fn parse_config(v: &ConfigVersion) -> Option<ConfigData> {
    serde_json::from_str(&v.config_data).ok()
}

fn summary(v: &ConfigVersion) -> ConfigSummary {
    ConfigSummary {
        version: v.version,
        status: v.status,
        as_of: v.as_of,
        overrides: parse_config(v).map_or(0, |c| all_overrides(&c).count()),
    }
}

fn all_overrides(c: &ConfigData) -> impl Iterator<Item = &Override> {
    c.pattern_strength_overrides
        .iter()
        .chain(&c.pattern_overrides)
}

fn lesson_view(
    conn: &Connection,
    l: &LessonRow,
    config: Option<&ConfigData>,
) -> Result<LessonView, ReportError> {
    let scope = learnloop_model::scope::scope_pairs(&l.scope_values);
    let stats = learnloop_store::stats::get(
        conn,
        &l.module,
        &l.pattern_key,
        l.category,
        l.scope_mask,
        l.scope_values_hash,
    )?;
    let weeks = stats.and_then(|s| {
        let (first, last) = (s.stats.first_exit?, s.stats.last_exit?);
        Some(
            ((last.millis() - first.millis()) as f64 / WEEK_MS)
                .ceil()
                .max(1.0) as u64,
        )
    });
    let size_mult = config.and_then(|c| {
        all_overrides(c)
            .find(|o| o.lesson_keys.contains(&l.lesson_key))
            .map(|o| o.levers.get_or_neutral(Lever::SizeMult))
    });
    Ok(LessonView {
        key: l.lesson_key.clone(),
        pattern: short_pattern_key(&l.pattern_key),
        category: l.category.as_str().to_string(),
        scope,
        n_trades: l.n_trades,
        weeks,
        mean_rr: l.mean_rr,
        edge: l.edge,
        shrunk_edge: l.shrunk_edge,
        q_value: l.q_value,
        since: l.created_at.map(date),
        confirmed: l.confirmed_at.map(date),
        failed_runs: l.failed_runs,
        status: l.status,
        status_reason: l.status_reason.clone(),
        size_mult,
        history: band(l, &lessons::edge_points(conn, &l.lesson_key)?),
    })
}

const WEEK_MS: f64 = 7.0 * 86_400_000.0;

/// `YYYY-MM-DD` of a time.
fn date(t: Timestamp) -> String {
    t.to_rfc3339()[..10].to_string()
}

/// The edge history with a 95 % band. The history keeps each run's edge and trade count, not its
/// standard error, so the band scales the lesson's current dispersion (|edge / t|·√n, which
/// carries whatever dependence the test accounted for) by 1/√n of each point.
fn band(l: &LessonRow, points: &[EdgePoint]) -> Vec<EdgeBandPoint> {
    let dispersion = l
        .t_stat
        .filter(|t| t.abs() > 1e-12 && l.n_trades > 0)
        .map(|t| (l.edge / t).abs() * (l.n_trades as f64).sqrt());
    points
        .iter()
        .map(|p| EdgeBandPoint {
            as_of_ms: p.as_of.millis(),
            shrunk_edge: p.shrunk_edge,
            band: dispersion.filter(|_| p.n_trades > 0).map(|s| {
                let half = 1.96 * s / (p.n_trades as f64).sqrt();
                (p.shrunk_edge - half, p.shrunk_edge + half)
            }),
        })
        .collect()
}

/// The versions to compare: the active one against a newer proposal, else the active one
/// against the version before it.
fn changes(
    versions: &[ConfigVersion],
    active: Option<&ConfigVersion>,
    newer: Option<&ConfigVersion>,
    all: &[LessonRow],
) -> (Option<(i64, i64)>, Vec<ConfigChange>) {
    let (from, to) = match (active, newer) {
        (Some(a), Some(n)) => (Some(a), n),
        (None, Some(n)) => (None, n),
        (Some(a), None) => (
            versions
                .iter()
                .filter(|v| v.version < a.version)
                .max_by_key(|v| v.version),
            a,
        ),
        (None, None) => return (None, Vec::new()),
    };
    let Some(to_data) = parse_config(to) else {
        return (None, Vec::new());
    };
    let from_data = from.and_then(parse_config);
    let size_of = |c: &ConfigData| -> BTreeMap<String, (f64, String, Vec<String>)> {
        all_overrides(c)
            .map(|o| {
                (
                    override_identity(o),
                    (
                        o.levers.get_or_neutral(Lever::SizeMult),
                        override_label(o),
                        o.lesson_keys.clone(),
                    ),
                )
            })
            .collect()
    };
    let before = from_data.as_ref().map(size_of).unwrap_or_default();
    let after = size_of(&to_data);
    let lesson_reason = |keys: &[String]| -> Option<String> {
        all.iter()
            .find(|l| keys.contains(&l.lesson_key) && l.status == LessonStatus::Retired)
            .map(|l| {
                format!(
                    "lesson retired: {}",
                    l.status_reason.as_deref().unwrap_or("no reason recorded")
                )
            })
    };
    let max_step = to_data_max_step();
    let mut out = Vec::new();
    for (id, (b, label, keys)) in &before {
        match after.get(id) {
            None => out.push(ConfigChange {
                label: label.clone(),
                before: Some(*b),
                after: None,
                reason: lesson_reason(keys)
                    .unwrap_or_else(|| "decayed to neutral (evidence no longer fresh)".into()),
            }),
            Some((a, _, _)) if (a - b).abs() > 1e-9 => out.push(ConfigChange {
                label: label.clone(),
                before: Some(*b),
                after: Some(*a),
                reason: if ((a - b).abs() - max_step).abs() < 1e-9 {
                    format!("moved by the rate limit's full step ({max_step:.2}); more to come")
                } else if (a - 1.0).abs() < (b - 1.0).abs() {
                    "weaker: decay or less evidence".into()
                } else {
                    "stronger: fresh evidence".into()
                },
            }),
            Some(_) => {}
        }
    }
    for (id, (a, label, _)) in &after {
        if !before.contains_key(id) {
            out.push(ConfigChange {
                label: label.clone(),
                before: None,
                after: Some(*a),
                reason: "new lesson".into(),
            });
        }
    }
    (Some((from.map_or(0, |f| f.version), to.version)), out)
}

/// The materializer's default rate limit: the report cannot know the run's configuration, and a
/// change of exactly this size is the tell-tale of a capped move.
fn to_data_max_step() -> f64 {
    learnloop_model::LoopConfig::default().materialize.max_step
}

fn override_identity(o: &Override) -> String {
    format!(
        "{}\u{1f}{}\u{1f}{:?}",
        o.pattern_key, o.action_category, o.scope
    )
}

fn override_label(o: &Override) -> String {
    let scope: Vec<(String, String)> = o
        .scope
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    crate::words::lesson_label(
        &short_pattern_key(&o.pattern_key),
        &o.action_category,
        &scope,
    )
}

fn warnings(
    versions: &[ConfigVersion],
    active: Option<&ConfigVersion>,
    data_as_of: Option<Timestamp>,
) -> Vec<String> {
    let mut out = Vec::new();
    match active {
        None if !versions.is_empty() => {
            out.push("No config is active: the PM runs without overrides.".to_string())
        }
        Some(a) => {
            if let Some(off) = parse_config(a).and_then(|c| c.feature_flags.switched_off()) {
                out.push(format!(
                    "In the active config v{}, {off}: the PM applies no override there, whatever the lessons below say (`learnloop config flags`).",
                    a.version
                ));
            }
            if let Some(data) = data_as_of {
                if a.as_of < data {
                    out.push(format!(
                        "The active config v{} is as of {}, older than the data (latest strand {}).",
                        a.version,
                        a.as_of,
                        data.to_rfc3339()
                    ));
                }
            }
            if let Some(later) = versions
                .iter()
                .filter(|v| v.version != a.version && v.status != ConfigStatus::Proposed)
                .filter(|v| v.as_of > a.as_of)
                .max_by_key(|v| v.version)
            {
                out.push(format!(
                    "Activation went back in time: v{} (as of {}) is active although v{} (as of {}) was learned from later data.",
                    a.version, a.as_of, later.version, later.as_of
                ));
            }
        }
        None => {}
    }
    out
}

fn next_step(active: Option<&ConfigVersion>, newer: Option<&ConfigVersion>) -> Option<String> {
    match (active, newer) {
        (_, Some(n)) if n.status == ConfigStatus::Proposed => Some(format!(
            "v{} is proposed: `learnloop config activate {}`",
            n.version, n.version
        )),
        (None, None) => Some("No config yet: `learnloop run --activate`".to_string()),
        _ => None,
    }
}

fn coverage(conn: &Connection) -> Result<Coverage, ReportError> {
    let strands = learnloop_store::strands::counts(conn)?;
    let links = learnloop_store::events::link_counts(conn)?;
    Ok(Coverage {
        strands: strands.strands,
        actions: strands.actions,
        closes: strands.closes,
        linked_trades: links.linked_trades,
        quarantine: learnloop_store::strands::quarantine_counts(conn)?,
        anomalies: links
            .anomalies
            .into_iter()
            .map(|(kind, n)| (kind.to_string(), n))
            .collect(),
    })
}

/// A replay's `summary.json` and `walk_forward.json`.
fn read_replay(dir: &Path) -> Result<ReplayFigures, ReportError> {
    let read = |name: &str| -> Result<serde_json::Value, ReportError> {
        let path = dir.join(name);
        let text = std::fs::read_to_string(&path)?;
        serde_json::from_str(&text).map_err(|e| ReportError::Replay {
            path,
            message: e.to_string(),
        })
    };
    let summary = read("summary.json")?;
    let series: WalkForwardSeries =
        serde_json::from_value(read("walk_forward.json")?).map_err(|e| ReportError::Replay {
            path: dir.join("walk_forward.json"),
            message: e.to_string(),
        })?;
    let ci = |v: &serde_json::Value| -> [f64; 2] {
        [
            v[0].as_f64().unwrap_or(f64::NAN),
            v[1].as_f64().unwrap_or(f64::NAN),
        ]
    };
    let placebo = summary.get("placebo").filter(|p| !p.is_null()).map(|p| {
        (
            p["uplift_total_r"].as_f64().unwrap_or(f64::NAN),
            ci(&p["uplift_ci95"]),
        )
    });
    Ok(ReplayFigures {
        dir: dir.display().to_string(),
        steps: summary["steps"].as_u64().unwrap_or(0),
        uplift_total_r: summary["uplift_total_r"].as_f64().unwrap_or(f64::NAN),
        uplift_ci95: ci(&summary["uplift_ci95"]),
        placebo,
        days: series.days,
        placebo_days: series.placebo_days,
    })
}
