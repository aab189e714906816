//! What `explain` and `lookup` both read from the command line: a scope in either syntax, and a
//! pattern key that may be given short.

use crate::errors::usage;
use learnloop_model::{PatternKey, Scope};

/// `--scope` as a JSON object (`{"bucket":"micro","timeframe":"1h"}`) or as pairs
/// (`bucket=micro,timeframe=1h`); values are normalised like ingest.
pub fn parse_scope(text: &str) -> anyhow::Result<Scope> {
    let scope = if text.trim_start().starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| usage(format!("--scope {text:?} is not a JSON object: {e}")))?;
        Scope::from_json(&value)
    } else {
        Scope::from_pairs_text(text)
    };
    scope.map_err(|e| usage(format!("--scope: {e}")))
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_scope_syntaxes_give_the_same_scope() {
        let json = parse_scope(r#"{"timeframe":"1h","bucket":" micro "}"#).unwrap();
        let pairs = parse_scope("bucket=micro, timeframe=1h").unwrap();
        assert_eq!(json, pairs);
        assert_eq!(parse_scope("").unwrap(), parse_scope("{}").unwrap());
        assert!(parse_scope("{not json").is_err());
        assert!(parse_scope("bucket").is_err());
    }
}
