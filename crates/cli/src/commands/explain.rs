//! `explain`: why a pattern/category/scope is or is not a lesson.

use super::Outcome;
use crate::context::{load_config, open_store_read_only};
use crate::errors::usage;
use crate::output::{emit, kv};
use crate::Cli;
use anyhow::Context;
use clap::Args;
use learnloop_lesson_builder::Explanation;
use learnloop_model::{ActionCategory, CandidateRow, LessonRow, LoopConfig, Scope};
use learnloop_store::stats::GroupKey;

#[derive(Args, Debug)]
pub struct ExplainArgs {
    /// Pattern key, full (`module=pm|pattern_key=uptrend.S2.add`) or bare (`uptrend.S2.add`).
    #[arg(long)]
    pub pattern: String,
    /// entry, add, trim or exit.
    #[arg(long, value_parser = crate::values::parse_category)]
    pub category: ActionCategory,
    /// The subset as `dim=value,dim=value` or a JSON object; empty for the pattern root.
    #[arg(long, default_value = "", value_parser = crate::values::parse_scope)]
    pub scope: Scope,
    #[arg(long, default_value = "pm")]
    pub module: String,
}

pub fn execute(cli: &Cli, args: &ExplainArgs) -> anyhow::Result<Outcome> {
    let given = load_config(cli)?;
    let conn = open_store_read_only(cli)?;
    // The scope is checked against the dims the stored results were made with, not --config's.
    let cfg = super::action_args::config_of_the_stored_results(&conn, given)?;
    check_dims(&cfg, &args.scope).map_err(|e| usage(format!("--scope: {e}")))?;
    let pattern_key = super::action_args::resolve_pattern(&conn, &args.pattern, &args.module)?;
    let subset = Subset {
        module: &args.module,
        pattern_key: &pattern_key,
        category: args.category,
        scope: &args.scope,
    };
    let e = explain(&conn, &cfg, &subset)?;
    emit(cli.json, &e, human)?;
    Ok(Outcome::Ok)
}

/// Every dimension of `scope` must be a configured one (else nothing could ever be stored there).
pub fn check_dims(cfg: &LoopConfig, scope: &Scope) -> Result<(), String> {
    match scope.iter().find(|(d, _)| cfg.dims.index_of(d).is_none()) {
        Some((dim, _)) => Err(format!(
            "{dim:?} is not a configured scope dimension ({})",
            cfg.dims.names().join(", ")
        )),
        None => Ok(()),
    }
}

/// The subset an explanation is about; `pattern_key` is the full key.
pub struct Subset<'a> {
    pub module: &'a str,
    pub pattern_key: &'a str,
    pub category: ActionCategory,
    pub scope: &'a Scope,
}

/// Why `subset` is or is not a lesson, from what the last runs stored (the verdict is the lesson
/// stage's: `learnloop_lesson_builder::explain`).
pub fn explain(
    conn: &learnloop_store::Connection,
    cfg: &LoopConfig,
    subset: &Subset<'_>,
) -> anyhow::Result<Explanation> {
    let key = subset.scope.key_for(&cfg.dims);
    let group = GroupKey {
        module: subset.module,
        pattern_key: subset.pattern_key,
        category: subset.category,
    };
    learnloop_lesson_builder::explain(conn, cfg, group, &key)
        .context("reading what the last run decided")
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
        lines.extend(test_lines(e, t));
    }
    if let Some(l) = &e.lesson {
        lines.extend(lesson_lines(l));
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
            if let (Some(verdict), Some(reason)) = (&p.verdict, &p.reason) {
                out.push_str(&format!("      {verdict}: {reason}\n"));
            }
        }
    }
    out
}

/// The last run's test of the subset, one line per figure.
fn test_lines(e: &Explanation, t: &CandidateRow) -> Vec<(&'static str, String)> {
    vec![
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
            family_text(
                t.fdr_weight,
                t.fdr_family.as_deref(),
                t.scope_mask.count_ones(),
            ),
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
    ]
}

/// Which family the subset's hypothesis was in (docs/statistics.md, "The family and its error
/// rate"): the run's roots, 1- and 2-dim subsets, the level of its size under discovered parents,
/// the children of explained discoveries, or the groups of a scope discovered across its module's
/// groups (stores before the `fdr_family` column: told by the
/// size).
fn family_text(weight: Option<f64>, family: Option<&str>, dims: u32) -> String {
    match weight {
        None => "not in the family".into(),
        Some(w) if family == Some("children") => format!(
            "the children of a discovery explained away by a refinement that is no lesson, BH \
             at half of fdr (weight {w:.3})"
        ),
        Some(_) if family == Some("shared") => {
            "the groups of a scope discovered across its module's groups (Simes, BH over the \
             run's shared scopes), BH"
                .into()
        }
        Some(w) if dims < learnloop_lesson_builder::FIRST_HIERARCHICAL_DIMS => {
            format!("the run's roots, 1- and 2-dim subsets, weighted BH (weight {w:.3})")
        }
        Some(_) => format!(
            "the run's {dims}-dim subsets under a discovered parent of {} dims, BH",
            dims - 1
        ),
    }
}

/// The subset's lesson: status, levers, lifecycle, half-life, factor.
fn lesson_lines(l: &LessonRow) -> Vec<(&'static str, String)> {
    vec![
        (
            "lesson status",
            format!(
                "{} ({})",
                l.status,
                l.status_reason.clone().unwrap_or_default()
            ),
        ),
        ("levers", super::lessons::levers_json(&l.levers)),
        (
            "active since",
            l.created_at.map_or("-".into(), |t| t.to_rfc3339()),
        ),
        (
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
        ),
        (
            "half-life",
            l.half_life_hours
                .map_or("default (no significant decline of the edge)".into(), |h| {
                    format!("{h:.0} h (fitted: the edge declines significantly)")
                }),
        ),
        (
            "latent factor",
            l.latent_factor_id.clone().unwrap_or_else(|| "-".into()),
        ),
    ]
}
