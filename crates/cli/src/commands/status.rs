use super::Outcome;
use crate::context::open_store;
use crate::output::{emit, kv};
use crate::Cli;
use clap::Args;
use learnloop_store::events::LinkCounts;
use learnloop_store::runs::RunRecord;
use learnloop_store::strands::StrandCounts;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct StatusArgs {
    /// How many recent runs to show.
    #[arg(long, default_value_t = 5)]
    pub runs: usize,
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
    pub recent_runs: Vec<RunRecord>,
}

pub fn execute(cli: &Cli, args: &StatusArgs) -> anyhow::Result<Outcome> {
    let conn = open_store(cli)?;
    let strands = learnloop_store::strands::counts(&conn)?;
    let links = learnloop_store::events::link_counts(&conn)?;
    let anomaly = |kind: &str| {
        links
            .anomalies
            .iter()
            .find(|(k, _)| k == kind)
            .map_or(0, |(_, n)| *n)
    };
    let closes = strands.closes - anomaly("duplicate_close");
    let status = Status {
        db: cli.db.display().to_string(),
        closes_linked_share: ratio(links.linked_trades, closes),
        v5_actions_share: ratio(strands.v5_actions, strands.actions),
        quarantine_by_reason: learnloop_store::strands::quarantine_counts(&conn)?,
        stats_rows: learnloop_store::stats::count(&conn)?,
        recent_runs: learnloop_store::runs::recent(&conn, args.runs)?,
        strands,
        links,
    };
    emit(cli.json, &status, human)?;
    Ok(Outcome::Ok)
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
    out.push_str("recent runs\n");
    if s.recent_runs.is_empty() {
        out.push_str("  none yet\n");
    }
    for r in &s.recent_runs {
        out.push_str(&format!(
            "  {}  {:<9} {:<6} as of {}{}\n",
            r.started_at,
            r.command,
            r.status,
            r.as_of,
            r.error
                .as_ref()
                .map(|e| format!("  error: {e}"))
                .unwrap_or_default()
        ));
    }
    out
}
