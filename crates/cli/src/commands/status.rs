use super::Outcome;
use crate::context::open_store_read_only;
use crate::output::{emit, kv};
use crate::Cli;
use clap::Args;
use learnloop_model::RunRecord;
use learnloop_store::events::LinkCounts;
use learnloop_store::strands::StrandCounts;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// How many recent runs to show (at least 1).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub runs: u32,
}

#[derive(Debug, Serialize)]
pub struct Status {
    pub db: String,
    pub strands: StrandCounts,
    pub links: LinkCounts,
    /// Share of (non-duplicate) closes linked to at least one action.
    pub closes_linked_share: f64,
    /// Share of actions carrying the v5 fields (pattern_key, action_category).
    pub v5_actions_share: f64,
    pub quarantine_by_reason: Vec<(String, i64)>,
    pub stats_rows: i64,
    /// Lessons by status (candidate, active, retired).
    pub lessons: Vec<(String, i64)>,
    /// The active config version of each module (None: nothing activated yet).
    pub active_configs: Vec<ActiveConfig>,
    pub recent_runs: Vec<RunRecord>,
}

#[derive(Debug, Serialize)]
pub struct ActiveConfig {
    pub module: String,
    pub version: Option<i64>,
    pub as_of: Option<learnloop_model::Timestamp>,
    pub latest_version: Option<i64>,
    /// What the active version's feature flags switch off (absent: nothing).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub switched_off: Option<String>,
}

pub fn execute(cli: &Cli, args: &StatusArgs) -> anyhow::Result<Outcome> {
    let conn = open_store_read_only(cli)?;
    // One snapshot: counts, configs and runs all as of the same commit, even during a run.
    let status = learnloop_store::read_snapshot(&conn, |conn| read_status(cli, args, conn))?;
    emit(cli.json, &status, human)?;
    Ok(Outcome::Ok)
}

fn read_status(
    cli: &Cli,
    args: &StatusArgs,
    conn: &learnloop_store::Connection,
) -> anyhow::Result<Status> {
    let strands = learnloop_store::strands::counts(conn)?;
    let links = learnloop_store::events::link_counts(conn)?;
    let anomaly = |kind: learnloop_model::AnomalyKind| {
        links
            .anomalies
            .iter()
            .find(|(k, _)| *k == kind)
            .map_or(0, |(_, n)| *n)
    };
    let closes = strands.closes - anomaly(learnloop_model::AnomalyKind::DuplicateClose);
    Ok(Status {
        db: cli.db.display().to_string(),
        closes_linked_share: ratio(links.linked_trades, closes),
        v5_actions_share: ratio(strands.v5_actions, strands.actions),
        quarantine_by_reason: learnloop_store::strands::quarantine_counts(conn)?,
        stats_rows: learnloop_store::stats::count(conn)?,
        lessons: learnloop_store::lessons::status_counts(conn)?,
        active_configs: active_configs(conn)?,
        recent_runs: learnloop_store::runs::recent(conn, args.runs as usize)?,
        strands,
        links,
    })
}

fn active_configs(conn: &learnloop_store::Connection) -> anyhow::Result<Vec<ActiveConfig>> {
    let mut out = Vec::new();
    for module in learnloop_store::configs::modules(conn)? {
        let active = learnloop_store::configs::active_version(conn, &module)?;
        let latest = learnloop_store::configs::latest_version(conn, &module)?;
        let switched_off = active.as_ref().and_then(|v| {
            learnloop_overrides::ConfigData::parse(&v.config_data)
                .ok()?
                .feature_flags
                .switched_off()
        });
        out.push(ActiveConfig {
            switched_off,
            version: active.as_ref().map(|v| v.version),
            as_of: active.map(|v| v.as_of),
            latest_version: latest.map(|v| v.version),
            module,
        });
    }
    Ok(out)
}

fn ratio(a: i64, b: i64) -> f64 {
    if b > 0 {
        a as f64 / b as f64
    } else {
        0.0
    }
}

fn human(s: &Status) -> String {
    let mut out = format!("learnloop store {}\n", s.db);
    out.push_str(&kv(&[
        ("strands", s.strands.strands.to_string()),
        (
            "actions",
            format!(
                "{} ({:.1}% with v5 fields)",
                s.strands.actions,
                100.0 * s.v5_actions_share
            ),
        ),
        ("closes", s.strands.closes.to_string()),
        (
            "linked trades",
            format!(
                "{} ({:.1}% of closes)",
                s.links.linked_trades,
                100.0 * s.closes_linked_share
            ),
        ),
        ("trade events", s.links.trade_events.to_string()),
        ("stats rows", s.stats_rows.to_string()),
        (
            "lessons",
            if s.lessons.is_empty() {
                "none yet".to_string()
            } else {
                s.lessons
                    .iter()
                    .map(|(k, n)| format!("{n} {k}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
        ("quarantined", s.strands.quarantined.to_string()),
    ]));
    if !s.quarantine_by_reason.is_empty() {
        out.push_str("quarantine by reason\n");
        out.push_str(&kv(&s
            .quarantine_by_reason
            .iter()
            .map(|(k, n)| (k.as_str(), n.to_string()))
            .collect::<Vec<_>>()));
    }
    if !s.links.anomalies.is_empty() {
        out.push_str("link anomalies (reported, not linked)\n");
        out.push_str(&kv(&s
            .links
            .anomalies
            .iter()
            .map(|(k, n)| (k.as_str(), n.to_string()))
            .collect::<Vec<_>>()));
    }
    out.push_str("active config\n");
    if s.active_configs.is_empty() {
        out.push_str("  none yet (`learnloop run --activate`, or `learnloop config activate V`)\n");
    }
    for c in &s.active_configs {
        let active = match (&c.version, &c.as_of) {
            (Some(v), Some(a)) => format!("v{v} (as of {a})"),
            _ => "none active".to_string(),
        };
        out.push_str(&format!(
            "  {}: {active}; latest v{}\n",
            c.module,
            c.latest_version.map_or("-".to_string(), |v| v.to_string())
        ));
        if let Some(off) = &c.switched_off {
            out.push_str(&format!("    {off}\n"));
        }
    }
    out.push_str("recent runs\n");
    if s.recent_runs.is_empty() {
        out.push_str("  none yet\n");
    }
    for r in &s.recent_runs {
        out.push_str(&format!(
            "  {}  {:<9} {:<6} as of {}{}\n",
            r.started_at.to_rfc3339_millis(),
            r.command,
            r.status,
            r.as_of.map(|t| t.to_rfc3339()).unwrap_or_default(),
            r.error
                .as_ref()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        ));
    }
    out
}
