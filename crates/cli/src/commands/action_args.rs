//! What `explain` and `lookup` both resolve after parsing: a pattern key that may be given short
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
