//! `lookup`: the runtime decision for one action, exactly as the PM's overrides crate makes it
//! from the active config, with its explanation (SPEC §6, §9). Fails open: without a usable
//! active config the action comes back unchanged with the reason.

use super::Outcome;
use crate::context::{load_config, open_store_read_only};
use crate::output::emit;
use crate::Cli;
use clap::Args;
use learnloop_model::{ActionCategory, Scope};
use learnloop_overrides::{ActionInput, DecisionRecord, Levers, Overrides, OverridesHandle};

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// Pattern key, full (`module=pm|pattern_key=uptrend.S2.add`) or bare (`uptrend.S2.add`,
    /// resolved against --module as `explain` does).
    #[arg(long)]
    pub pattern: String,
    /// Action category: entry, add, trim or exit.
    #[arg(long, value_parser = crate::values::parse_category)]
    pub category: ActionCategory,
    /// The action's scope: a JSON object of dimension → value, or `dim=value,dim=value` (as
    /// `explain` takes it); normalised like ingest.
    #[arg(long, default_value = "{}", value_parser = crate::values::parse_scope)]
    pub scope: Scope,
    /// The action's size fraction; shows it before and after the size multiplier.
    #[arg(long, allow_negative_numbers = true)]
    pub size_frac: Option<f64>,
    /// The PM's decision type (default: the category); emergency_exit is never resized.
    #[arg(long)]
    pub decision_type: Option<String>,
    /// PM module whose active config to use.
    #[arg(long, default_value = "pm")]
    pub module: String,
}

pub fn execute(cli: &Cli, args: &LookupArgs) -> anyhow::Result<Outcome> {
    let conn = open_store_read_only(cli)?;
    let pattern_key = super::action_args::resolve_pattern(&conn, &args.pattern, &args.module)?;
    warn_of_likely_typos(&conn, cli, &pattern_key, &args.scope);
    let pairs: Vec<(&str, &str)> = args.scope.iter().collect();
    let action = ActionInput {
        pattern_key: &pattern_key,
        action_category: args.category.as_str(),
        decision_type: args
            .decision_type
            .as_deref()
            .unwrap_or(args.category.as_str()),
        scope: &pairs,
        size_frac: args.size_frac.unwrap_or(0.0),
        a_value: None,
        e_value: None,
    };
    let applied = match Overrides::from_sqlite(&conn, &args.module) {
        Ok(overrides) => overrides.apply(&action),
        Err(e) => {
            tracing::warn!(module = %args.module, "failing open: {e}");
            let mut applied = OverridesHandle::new().apply(&action);
            applied.decision.fallback_reason = Some(e.to_string());
            applied
        }
    };
    let output = DecisionRecord::new(&applied, args.size_frac.is_some());
    emit(cli.json, &output, human)?;
    Ok(Outcome::Ok)
}

/// Warnings for what most likely is a typo: a scope dimension the stored results do not have, a
/// full pattern key without statistics. Best effort: lookup fails open, so a store it cannot read
/// for these checks only loses the warnings.
fn warn_of_likely_typos(
    conn: &learnloop_store::Connection,
    cli: &Cli,
    pattern_key: &str,
    scope: &Scope,
) {
    // The dims the stored results were made with (quietly: a lookup reports no configuration).
    let recorded = super::action_args::recorded_learning_config(conn)
        .ok()
        .flatten();
    if let Some(cfg) = recorded.or_else(|| load_config(cli).ok()) {
        if let Err(unknown) = super::explain::check_dims(&cfg, scope) {
            // The PM's scopes may carry dimensions the loop does not learn from, so this is no
            // error; but a mistyped one silently matches nothing.
            tracing::warn!("--scope: {unknown}: no override can use it");
        }
    }
    let aggregated = learnloop_store::stats::aggregated_as_of(conn).is_ok_and(|a| a.is_some());
    if aggregated && !learnloop_store::stats::has_pattern(conn, pattern_key).unwrap_or(true) {
        // A full key is taken as given (the PM's own lookups never fail on one), but a person
        // asking about a key no linked action has most likely mistyped it.
        tracing::warn!(
            "pattern {pattern_key:?} has no stored statistics: no override can match it"
        );
    }
}

fn levers_text(levers: &Levers) -> String {
    if levers.is_empty() {
        return "none".to_string();
    }
    let parts: Vec<String> = levers.iter().map(|(l, v)| format!("{l}={v}")).collect();
    parts.join(" ")
}

fn human(o: &DecisionRecord) -> String {
    let mut out = match o.config_version {
        Some(v) => format!("config v{v}: size_mult {}\n", o.size_mult),
        None => format!("no config: size_mult {}\n", o.size_mult),
    };
    if let (Some(before), Some(after)) = (o.size_frac_before, o.size_frac_after) {
        out.push_str(&format!("  size_frac {before} → {after}\n"));
    }
    out.push_str(&format!("  levers {}\n", levers_text(&o.levers)));
    if let Some(reason) = &o.fallback_reason {
        out.push_str(&format!("  unchanged: {reason}\n"));
    }
    if o.matches.is_empty() && o.fallback_reason.is_none() {
        out.push_str("  no override matches this action\n");
    }
    for m in &o.matches {
        let scope: Vec<String> = m.scope.iter().map(|(k, v)| format!("{k}={v}")).collect();
        out.push_str(&format!(
            "  match {{{}}} weight {:.4}: {}  factor {}  lessons {}\n",
            scope.join(","),
            m.weight,
            levers_text(&m.levers),
            m.factor_id.as_deref().unwrap_or("-"),
            m.lesson_keys.join(",")
        ));
    }
    out
}
