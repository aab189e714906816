//! `explain`: why a pattern/category/scope is or is not a lesson.

use super::Outcome;
use crate::context::{load_config, open_store_read_only};
use crate::errors::usage;
use crate::output::{emit, kv};
use crate::Cli;
use anyhow::Context;
use clap::Args;
use learnloop_lesson_builder::lesson_key_of;
use learnloop_model::{ActionCategory, ScopeKey};
use learnloop_store::lessons::{CandidateRow, LessonRow};
use learnloop_store::stats::StatsRow;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Pattern key, full (`module=pm|pattern_key=uptrend.S2.add`) or bare (`uptrend.S2.add`).
    #[arg(long)]
    pub pattern: String,
    /// entry, add, trim or exit.
    #[arg(long)]
    pub category: String,
    /// The subset as `dim=value,dim=value`; empty for the pattern root.
    #[arg(long, default_value = "")]
    pub scope: String,
    #[arg(long, default_value = "pm")]
    pub module: String,
}

#[derive(Debug, Serialize)]
pub struct ParentFigures {
    pub removed_dim: String,
    pub scope_values: String,
    pub n_trades: Option<u64>,
    pub mean_rr: Option<f64>,
}

#[derive(Debug, Serialize)]
pub struct Explanation {
    pub module: String,
    pub pattern_key: String,
    pub category: ActionCategory,
    pub scope_mask: u64,
    pub scope_values: String,
    pub lesson_key: String,
    /// lesson | candidate | rejected | not_tested | not_stored
    pub verdict: String,
    pub reason: String,
    pub n_trades: Option<u64>,
    pub mean_rr: Option<f64>,
    pub min_support: u64,
    pub test: Option<CandidateRow>,
    pub lesson: Option<LessonRow>,
    pub parents: Vec<ParentFigures>,
}

pub fn execute(cli: &Cli, args: &ExplainArgs) -> anyhow::Result<Outcome> {
    let cfg = load_config(cli)?;
    let category: ActionCategory = args
        .category
        .parse()
        .map_err(|e| usage(format!("--category: {e}")))?;
    let scope = super::action_args::parse_scope(&args.scope)?;
    if let Some((dim, _)) = scope.iter().find(|(d, _)| cfg.dims.index_of(d).is_none()) {
        return Err(usage(format!(
            "--scope: {dim:?} is not a configured scope dimension ({})",
            cfg.dims.names().join(", ")
        )));
    }
    let conn = open_store_read_only(cli)?;
    let pattern_key = super::action_args::resolve_pattern(&conn, &args.pattern, &args.module)?;
    let key = scope.key_for(&cfg.dims);
    let scope_values = key.values_json();
    let stats = learnloop_store::stats::get(
        &conn,
        &args.module,
        &pattern_key,
        category,
        key.mask,
        key.hash(),
    )?;
    let test = learnloop_store::lessons::candidate(
        &conn,
        &args.module,
        &pattern_key,
        category,
        key.mask,
        key.hash(),
    )?;
    let lesson_key = lesson_key_of(&args.module, &pattern_key, category, &scope_values);
    let lesson = learnloop_store::lessons::lesson(&conn, &lesson_key)?;
    let parents = parents(&conn, &cfg.dims, &args.module, &pattern_key, category, &key)?;
    let min_support = cfg.lessons.min_support_for(key.dims());
    let (verdict, reason) = match (&test, &stats) {
        (Some(t), _) => (t.verdict.clone(), t.reason.clone()),
        (None, Some(s)) => (
            "not_tested".to_string(),
            format!(
                "support: {} trades < {min_support}, the minimum for a {}-dim subset (or no lessons run since)",
                s.stats.n_trades(),
                key.dims()
            ),
        ),
        (None, None) => (
            "not_stored".to_string(),
            format!(
                "no statistics stored: fewer than {} trades had a {} action of this pattern with this scope (or no run yet)",
                learnloop_aggregator::Limits::from_config(&cfg).min_trades(key.dims() as usize),
                category
            ),
        ),
    };
    let e = Explanation {
        module: args.module.clone(),
        pattern_key,
        category,
        scope_mask: key.mask,
        scope_values,
        lesson_key,
        verdict,
        reason,
        n_trades: stats.as_ref().map(|s| s.stats.n_trades()),
        mean_rr: stats.as_ref().map(|s| s.stats.r.mean),
        min_support,
        test,
        lesson,
        parents,
    };
    emit(cli.json, &e, human)?;
    Ok(Outcome::Ok)
}

fn parents(
    conn: &learnloop_store::Connection,
    dims: &learnloop_model::DimensionList,
    module: &str,
    pattern_key: &str,
    category: ActionCategory,
    key: &ScopeKey,
) -> anyhow::Result<Vec<ParentFigures>> {
    let mut out = Vec::new();
    for (removed, _) in &key.values {
        let parent = ScopeKey::from_pairs(
            dims,
            key.values.iter().filter(|(d, _)| d != removed).cloned(),
        );
        let row: Option<StatsRow> = learnloop_store::stats::get(
            conn,
            module,
            pattern_key,
            category,
            parent.mask,
            parent.hash(),
        )
        .context("reading a parent's statistics")?;
        out.push(ParentFigures {
            removed_dim: removed.clone(),
            scope_values: parent.values_json(),
            n_trades: row.as_ref().map(|r| r.stats.n_trades()),
            mean_rr: row.as_ref().map(|r| r.stats.r.mean),
        });
    }
    Ok(out)
}

fn fmt_opt(v: Option<f64>, digits: usize) -> String {
    v.map_or("-".to_string(), |v| format!("{v:.digits$}"))
}

/// A probability: small ones in scientific notation, so they never print as 0.
fn fmt_p(v: Option<f64>) -> String {
    match v {
        Some(p) if p != 0.0 && p < 1e-3 => format!("{p:.2e}"),
        other => fmt_opt(other, 5),
    }
}

fn human(e: &Explanation) -> String {
    let mut out = format!(
        "{} / {} / {}\n  verdict: {}\n  reason:  {}\n",
        e.pattern_key, e.category, e.scope_values, e.verdict, e.reason
    );
    let mut lines = vec![
        ("lesson key", e.lesson_key.clone()),
        (
            "trades",
            e.n_trades
                .map_or("-".into(), |n| format!("{n} (minimum {})", e.min_support)),
        ),
        ("mean R", fmt_opt(e.mean_rr, 3)),
    ];
    if let Some(t) = &e.test {
        lines.extend([
            (
                "edge vs baseline",
                format!("{:+.3} R (shrunk {})", t.edge, fmt_opt(t.shrunk_edge, 3)),
            ),
            (
                "time clusters",
                t.clusters.map_or("-".into(), |g| g.to_string()),
            ),
            (
                "complement",
                t.complement_trades.map_or("-".into(), |n| {
                    let of = if t.parent_scope_values.is_some() || e.scope_values != "{}" {
                        "the rest of its smallest parent"
                    } else {
                        "the rest of the module"
                    };
                    format!("{n} trades in {of}")
                }),
            ),
            (
                "contrast",
                t.contrast.as_deref().map_or("-".into(), |c| {
                    format!(
                        "{c} clusters, cluster-robust (CR1), t with {} df",
                        fmt_opt(t.contrast_df, 0)
                    )
                }),
            ),
            (
                "t / p / q",
                format!(
                    "{} / {} / {}",
                    fmt_opt(t.t_stat, 2),
                    fmt_p(t.p_value),
                    fmt_p(t.q_value)
                ),
            ),
            (
                "family",
                t.fdr_weight.map_or("not in the family".into(), |w| {
                    format!("all hypotheses of the run, weighted BH (weight {w:.3})")
                }),
            ),
            (
                "weakest parent",
                t.parent_scope_values
                    .clone()
                    .unwrap_or_else(|| "(rest of the module)".into()),
            ),
            ("smallest gap to a parent", fmt_opt(t.min_parent_gap, 3)),
            (
                "re-test p (self-sufficiency / others)",
                fmt_p(t.incremental_p_value),
            ),
        ]);
    }
    if let Some(l) = &e.lesson {
        lines.push((
            "lesson status",
            format!(
                "{} ({})",
                l.status,
                l.status_reason.clone().unwrap_or_default()
            ),
        ));
        lines.push(("levers", l.levers.clone()));
        lines.push((
            "active since",
            l.created_at.map_or("-".into(), |t| t.to_rfc3339()),
        ));
        lines.push((
            "confirmed at",
            match l.confirmed_at {
                Some(t) => format!(
                    "{} (last run whose fresh trades re-confirmed it; decay counts from here){}",
                    t.to_rfc3339(),
                    if l.failed_runs > 0 {
                        format!("; failed {} consecutive run(s)", l.failed_runs)
                    } else {
                        String::new()
                    }
                ),
                None => "-".into(),
            },
        ));
        lines.push((
            "half-life",
            l.half_life_hours
                .map_or("default (no significant decline of the edge)".into(), |h| {
                    format!("{h:.0} h (fitted: the edge declines significantly)")
                }),
        ));
        lines.push((
            "latent factor",
            l.latent_factor_id.clone().unwrap_or_else(|| "-".into()),
        ));
    }
    out.push_str(&kv(&lines));
    if !e.parents.is_empty() {
        out.push_str("  parents\n");
        for p in &e.parents {
            out.push_str(&format!(
                "    without {:<22} {}  n={}  mean R {}\n",
                p.removed_dim,
                p.scope_values,
                p.n_trades.map_or("-".into(), |n| n.to_string()),
                fmt_opt(p.mean_rr, 3)
            ));
        }
    }
    out
}
