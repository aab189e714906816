//! Reports are printed either as JSON (one document on stdout) or as human text.

use serde::Serialize;

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
