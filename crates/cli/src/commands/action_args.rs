//! What `explain`, `lookup` and `demo check` resolve after parsing: the configuration of the stored
//! results; a pattern key that may be given short
//! (their `--scope` syntax is one value parser, `crate::values::parse_scope`).

use learnloop_model::PatternKey;

/// The full pattern key for `pattern`: as given when the store knows it or it is already full
/// (`module=…|pattern_key=…`), else `module=MODULE|pattern_key=PATTERN` when the store knows that.
/// An unknown short key is returned as given (the caller reports that nothing is known of it).
pub fn resolve_pattern(
    conn: &learnloop_store::Connection,
    pattern: &str,
    module: &str,
) -> anyhow::Result<String> {
    if pattern.contains('|') || learnloop_store::stats::has_pattern(conn, pattern)? {
        return Ok(pattern.to_string());
    }
    let Ok(bare) = PatternKey::parse(pattern) else {
        return Ok(pattern.to_string());
    };
    let full = bare.in_module(module).to_string();
    if learnloop_store::stats::has_pattern(conn, &full)? {
        return Ok(full);
    }
    Ok(pattern.to_string())
}

/// The configuration the stored statistics and verdicts were made with (the last learning run's),
/// when it differs from the one given: a subset's key (its mask follows the order of `dims`) and
/// the thresholds that `explain` and `demo check` report must be those of the run, or they would
/// state false facts about it.
pub fn config_of_the_stored_results(
    conn: &learnloop_store::Connection,
    given: learnloop_model::LoopConfig,
) -> anyhow::Result<learnloop_model::LoopConfig> {
    let Some(recorded) = learnloop_store::runs::last_learning_config(conn)? else {
        return Ok(given);
    };
    let Ok(recorded) = serde_json::from_value::<learnloop_model::LoopConfig>(recorded) else {
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
