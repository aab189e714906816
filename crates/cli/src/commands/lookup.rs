//! `lookup`: the runtime decision for one action, exactly as the PM's overrides crate makes it
//! from the active config, with its explanation (SPEC §6, §9). Fails open: without a usable
//! active config the action comes back unchanged with the reason.

use super::Outcome;
use crate::context::open_store_read_only;
use crate::errors::usage;
use crate::output::emit;
use crate::Cli;
use clap::Args;
use learnloop_model::Scope;
use learnloop_overrides::{ActionInput, AppliedAction, Levers, Overrides, OverridesHandle};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Args, Debug)]
pub struct LookupArgs {
    /// Pattern key, exactly as the PM logs it (e.g. module=pm|pattern_key=uptrend.S2.add).
    #[arg(long)]
    pub pattern: String,
    /// Action category: entry, add, trim or exit.
    #[arg(long)]
    pub category: String,
    /// The action's scope as a JSON object of dimension → value (normalised like ingest).
    #[arg(long, default_value = "{}")]
    pub scope: String,
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

/// The `lookup --json` object (SPEC §9).
#[derive(Debug, Serialize)]
pub struct LookupOutput {
    pub config_version: Option<i64>,
    pub size_mult: f64,
    /// Every blended lever.
    pub levers: Levers,
    pub size_frac_before: Option<f64>,
    pub size_frac_after: Option<f64>,
    pub matches: Vec<MatchOutput>,
    /// Null unless the lookup failed open (or learning is switched off for this action).
    pub fallback_reason: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct MatchOutput {
    pub scope: BTreeMap<String, String>,
    pub weight: f64,
    pub levers: Levers,
    pub lesson_keys: Vec<String>,
    pub factor_id: Option<String>,
}

impl LookupOutput {
    fn new(applied: &AppliedAction, size_frac_given: bool) -> Self {
        let d = &applied.decision;
        Self {
            config_version: d.config_version,
            size_mult: d.size_mult,
            levers: d.levers,
            size_frac_before: size_frac_given.then_some(applied.size_frac_before),
            size_frac_after: size_frac_given.then_some(applied.size_frac_after),
            matches: d
                .matches
                .iter()
                .map(|m| MatchOutput {
                    scope: m.scope().clone(),
                    weight: m.weight,
                    levers: *m.levers(),
                    lesson_keys: m.lesson_keys().to_vec(),
                    factor_id: m.factor_id().map(str::to_string),
                })
                .collect(),
            fallback_reason: d.fallback_reason.clone(),
        }
    }
}

pub fn execute(cli: &Cli, args: &LookupArgs) -> anyhow::Result<Outcome> {
    let value: serde_json::Value = serde_json::from_str(&args.scope)
        .map_err(|e| usage(format!("--scope {:?} is not JSON: {e}", args.scope)))?;
    let scope = Scope::from_json(&value).map_err(|e| usage(format!("--scope: {e}")))?;
    args.category
        .parse::<learnloop_model::ActionCategory>()
        .map_err(|e| usage(format!("--category: {e}")))?;
    let pairs: Vec<(&str, &str)> = scope.iter().collect();
    let action = ActionInput {
        pattern_key: &args.pattern,
        action_category: &args.category,
        decision_type: args.decision_type.as_deref().unwrap_or(&args.category),
        scope: &pairs,
        size_frac: args.size_frac.unwrap_or(0.0),
        a_value: None,
        e_value: None,
    };
    let conn = open_store_read_only(cli)?;
    let applied = match Overrides::from_sqlite(&conn, &args.module) {
        Ok(overrides) => overrides.apply(&action),
        Err(e) => {
            tracing::warn!(module = %args.module, "failing open: {e}");
            let mut applied = OverridesHandle::new().apply(&action);
            applied.decision.fallback_reason = Some(e.to_string());
            applied
        }
    };
    let output = LookupOutput::new(&applied, args.size_frac.is_some());
    emit(cli.json, &output, human)?;
    Ok(Outcome::Ok)
}

fn levers_text(levers: &Levers) -> String {
    if levers.is_empty() {
        return "none".to_string();
    }
    let parts: Vec<String> = levers.iter().map(|(l, v)| format!("{l}={v}")).collect();
    parts.join(" ")
}

fn human(o: &LookupOutput) -> String {
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
