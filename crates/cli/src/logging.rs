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
pub fn init(format: LogFormat, default_filter: &str, color: bool) {
    let filter =
        EnvFilter::try_from_env("LEARNLOOP_LOG").unwrap_or_else(|_| EnvFilter::new(default_filter));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(color)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
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
