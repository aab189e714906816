use crate::LogFormat;
use tracing_subscriber::EnvFilter;

/// Logs go to stderr so that stdout stays clean for `--json` output.
pub fn init(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("LEARNLOOP_LOG").unwrap_or_else(|_| EnvFilter::new("warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}
