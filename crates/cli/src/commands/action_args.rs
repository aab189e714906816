//! What `explain`, `lookup` and `demo check` resolve after parsing: the configuration of the stored
//! results; a pattern key that may be given short
//! (their `--scope` syntax is one value parser, `crate::values::parse_scope`).

use learnloop_model::PatternKey;

/// The full pattern key for `pattern`: as given when it is already full (`module=…|pattern_key=…`)
/// or the store knows it, else `module=MODULE|pattern_key=PATTERN` when the store knows that.
/// A short key the store's statistics do not know is bad usage (SPEC §9), with the closest known
/// keys as suggestions: a mistyped key would otherwise match nothing and look like a pattern
/// without lessons. On a store no run has aggregated yet nothing can be resolved, and the key is
/// returned as given for the command to say so.
pub fn resolve_pattern(
    conn: &learnloop_store::Connection,
    pattern: &str,
    module: &str,
) -> anyhow::Result<String> {
    use learnloop_store::stats::{aggregated_as_of, has_pattern};
    if pattern.contains('|') || has_pattern(conn, pattern)? {
        return Ok(pattern.to_string());
    }
    let full = PatternKey::parse(pattern)
        .ok()
        .map(|bare| bare.in_module(module).to_string());
    if let Some(full) = &full {
        if has_pattern(conn, full)? {
            return Ok(full.clone());
        }
    }
    if aggregated_as_of(conn)?.is_none() {
        return Ok(pattern.to_string());
    }
    let problem = match full {
        Some(full) => format!(
            "pattern {pattern:?} is not known in this store (nor as {full:?}): no linked action \
             has it"
        ),
        None => format!(
            "{pattern:?} is not a pattern key: give `family.state.motif` (read in --module) or \
             `module=…|pattern_key=…`"
        ),
    };
    Err(crate::errors::usage(format!(
        "{problem}. {}",
        suggestions(conn, pattern, module)?
    )))
}

/// "Did you mean …" for a short pattern key: the stored keys of `module` closest to it.
fn suggestions(
    conn: &learnloop_store::Connection,
    pattern: &str,
    module: &str,
) -> anyhow::Result<String> {
    const SIMILAR: f64 = 0.8;
    let stored: Vec<PatternKey> = learnloop_store::stats::pattern_keys(conn)?
        .iter()
        .filter_map(|key| PatternKey::parse(key).ok())
        .collect();
    // The likeliest slip: the right pattern of another module without --module.
    let elsewhere = stored
        .iter()
        .filter(|key| key.short() == pattern)
        .filter_map(PatternKey::module)
        .find(|m| *m != module);
    if let Some(other) = elsewhere {
        return Ok(format!(
            "It is a pattern of module {other}: pass --module {other}"
        ));
    }
    let known: Vec<String> = stored
        .iter()
        .filter(|key| key.module().unwrap_or(module) == module)
        .map(PatternKey::short)
        .collect();
    let mut close: Vec<(f64, &str)> = known
        .iter()
        .map(|bare| (strsim::jaro_winkler(pattern, bare), bare.as_str()))
        .filter(|(score, _)| *score >= SIMILAR)
        .collect();
    close.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(b.1)));
    let names: Vec<&str> = close.iter().take(3).map(|(_, bare)| *bare).collect();
    Ok(if names.is_empty() {
        format!(
            "Module {module} has {} stored patterns (`learnloop export pattern_scope_stats` lists them); \
             give one of them, or the full key `module=…|pattern_key=…`",
            known.len()
        )
    } else {
        format!("Did you mean {}?", names.join(", "))
    })
}

/// The configuration the stored statistics and verdicts were made with (the last learning run's),
/// when it differs from the one given: a subset's key (its mask follows the order of `dims`) and
/// the thresholds that `explain` and `demo check` report must be those of the run, or they would
/// state false facts about it.
pub fn config_of_the_stored_results(
    conn: &learnloop_store::Connection,
    given: learnloop_model::LoopConfig,
) -> anyhow::Result<learnloop_model::LoopConfig> {
    let Some(recorded) = recorded_learning_config(conn)? else {
        return Ok(given);
    };
    if recorded != given {
        tracing::warn!(
            "using the configuration of the last learning run, which differs from the one given: \
             the stored results were made with it"
        );
        return Ok(recorded);
    }
    Ok(given)
}

/// The configuration the last learning run recorded, when there is one this build can read.
pub fn recorded_learning_config(
    conn: &learnloop_store::Connection,
) -> anyhow::Result<Option<learnloop_model::LoopConfig>> {
    Ok(learnloop_store::runs::last_learning_config(conn)?
        .and_then(|c| serde_json::from_value::<learnloop_model::LoopConfig>(c).ok()))
}
