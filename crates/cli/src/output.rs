//! Reports are printed either as JSON (one document on stdout) or as human text.

use learnloop_model::pattern::short_pattern_key;
use serde::Serialize;
use std::collections::BTreeMap;

pub fn emit<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        print_stdout(&format!("{}\n", serde_json::to_string_pretty(value)?))
    } else {
        print_stdout(&human(value))
    }
}

/// Write to stdout, returning the error instead of panicking as `print!` does: a reader that
/// stops early (`| head`) is a broken pipe, which `main` turns into a quiet exit.
pub fn print_stdout(text: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Right-aligned `label: value` lines, for human reports.
pub fn kv(lines: &[(&str, String)]) -> String {
    let width = lines.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    lines
        .iter()
        .map(|(k, v)| format!("  {k:>width$}  {v}\n"))
        .collect()
}

/// A scope for people: `{bucket=micro, timeframe=1h}`, the pattern root as `{root}`.
pub fn scope_text(scope: &BTreeMap<String, String>) -> String {
    if scope.is_empty() {
        return "{root}".to_string();
    }
    let pairs: Vec<String> = scope.iter().map(|(k, v)| format!("{k}={v}")).collect();
    format!("{{{}}}", pairs.join(", "))
}

/// [`scope_text`] of a stored sorted-key JSON scope (shown as it is when it does not parse).
pub fn stored_scope_text(scope_values: &str) -> String {
    serde_json::from_str::<BTreeMap<String, String>>(scope_values)
        .map_or_else(|_| scope_values.to_string(), |m| scope_text(&m))
}

/// A subset for people: `uptrend.S3.add · add {bucket=micro, timeframe=1h}`.
pub fn subset_label(pattern_key: &str, category: &str, scope: &str) -> String {
    format!("{} · {category} {scope}", short_pattern_key(pattern_key))
}
