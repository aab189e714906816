//! Logs go to stderr so that stdout stays clean for `--json` output.

use crate::LogFormat;
use tracing_subscriber::EnvFilter;

/// The log filter of `-q` / `-v` (none: warnings and errors).
pub fn verbosity(quiet: bool, verbose: u8) -> &'static str {
    match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    }
}

/// `LEARNLOOP_LOG`, when set and valid, wins over `default_filter` (the one of `-q` / `-v`), so
/// that a scheduler's environment decides what its logs hold whatever flags a script passes.
/// An invalid `LEARNLOOP_LOG` is reported (once the logger exists) instead of being ignored
/// silently: the scheduler's operator believes it applies.
pub fn init(format: LogFormat, default_filter: &str, color: bool) {
    let (filter, invalid) = match std::env::var("LEARNLOOP_LOG") {
        Ok(text) if !text.trim().is_empty() => match EnvFilter::try_new(&text) {
            Ok(filter) => (filter, None),
            Err(e) => (EnvFilter::new(default_filter), Some((text, e))),
        },
        _ => (EnvFilter::new(default_filter), None),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
    if let Some((text, e)) = invalid {
        // At error level: it must reach a scheduler's log even under -q, which the operator
        // meant LEARNLOOP_LOG to override.
        tracing::error!(
            "LEARNLOOP_LOG={text:?} is not a valid log filter ({e}); using {default_filter:?}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_and_verbose_map_onto_the_log_level() {
        assert_eq!(verbosity(true, 0), "error");
        assert_eq!(verbosity(false, 0), "warn");
        assert_eq!(verbosity(false, 1), "info");
        assert_eq!(verbosity(false, 2), "debug");
        assert_eq!(verbosity(false, 7), "trace");
    }
}
