//! How a failed command ends: its message printed once (on stderr, or as one JSON log event with
//! `--log-format json`), each cause once, and exit status 2 for bad usage, 1 for failures.

use crate::LogFormat;
use learnloop_store::StoreError;

/// Bad usage detected after parsing (a malformed scope, an unknown table, a mistyped `--db` of a
/// read-only command): exits 2 like a clap error.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct UsageError(pub String);

/// Shorthand for returning a [`UsageError`].
pub fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

pub fn exit_code(e: &anyhow::Error) -> u8 {
    let is_usage = e.chain().any(|cause| {
        cause.is::<UsageError>()
            || matches!(
                cause.downcast_ref::<StoreError>(),
                Some(StoreError::NotFound(_) | StoreError::UnknownTable(..))
            )
    });
    if is_usage {
        2
    } else {
        1
    }
}

pub fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|cause| {
        let io = cause.downcast_ref::<std::io::Error>().or_else(|| {
            match cause.downcast_ref::<StoreError>() {
                Some(StoreError::Io(io)) => Some(io),
                _ => None,
            }
        });
        io.is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The error and its causes joined by ": ", leaving out a cause whose text the previous message
/// already ends with (errors that print their source and also return it from `source()`).
pub fn message(e: &anyhow::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if parts.last().is_some_and(|prev| prev.ends_with(&text)) {
            continue;
        }
        parts.push(text);
    }
    parts.join(": ")
}

pub fn report(e: &anyhow::Error, format: LogFormat) {
    let text = message(e);
    match format {
        LogFormat::Json => tracing::error!(error = %text, "command failed"),
        LogFormat::Human => eprintln!("error: {text}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("database error: {0}")]
    struct Repeats(#[source] std::io::Error);

    #[test]
    fn a_cause_already_in_the_message_is_printed_once() {
        let inner = std::io::Error::other("disk I/O error");
        let e = anyhow::Error::new(Repeats(inner)).context("opening the store x.db");
        assert_eq!(
            message(&e),
            "opening the store x.db: database error: disk I/O error"
        );
    }

    #[test]
    fn usage_errors_exit_2_and_broken_pipes_are_quiet() {
        let e = usage("--scope is not JSON").context("lookup");
        assert_eq!(exit_code(&e), 2);
        assert_eq!(exit_code(&anyhow::anyhow!("boom")), 1);
        let pipe = anyhow::Error::new(StoreError::Io(std::io::Error::from(
            std::io::ErrorKind::BrokenPipe,
        )));
        assert!(is_broken_pipe(&pipe));
    }
}
