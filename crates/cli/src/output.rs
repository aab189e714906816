//! Reports are printed either as JSON (one document on stdout) or as human text.

use serde::Serialize;

pub fn emit<T: Serialize>(
    json: bool,
    value: &T,
    human: impl FnOnce(&T) -> String,
) -> anyhow::Result<()> {
    if json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        print!("{}", human(value));
    }
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
