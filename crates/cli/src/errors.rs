//! How a failed command ends: its message printed once (on stderr, or as one JSON log event with
//! `--log-format json`), each cause once, and exit status 2 for bad usage, 1 for failures.

use crate::{ColorChoice, LogFormat};
use learnloop_store::StoreError;
use std::process::ExitCode;

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

/// Print a failed command's error once: `error: …` on stderr (red on a colour terminal), or under
/// `--log-format json` one JSON line shaped like the log events, whatever LEARNLOOP_LOG filters.
pub fn report(e: &anyhow::Error, format: LogFormat, color: bool) {
    print_error(&message(e), exit_code(e), format, color);
}

/// One error line on stderr for a command ending with exit status `code`, in the `--log-format`.
pub fn print_error(text: &str, code: u8, format: LogFormat, color: bool) {
    match format {
        LogFormat::Json => eprintln!("{}", json_error("command failed", text, code)),
        LogFormat::Human if color => eprintln!("\x1b[1;31merror:\x1b[0m {text}"),
        LogFormat::Human => eprintln!("error: {text}"),
    }
}

/// One log-event-shaped JSON line (as `tracing`'s JSON format writes them) for an error.
fn json_error(what: &str, text: &str, exit_code: u8) -> String {
    serde_json::json!({
        "timestamp": crate::context::wall_clock_now().to_rfc3339_millis(),
        "level": "ERROR",
        "fields": {"message": what, "error": text, "exit_code": exit_code},
        "target": "learnloop",
    })
    .to_string()
}

/// A command line clap refused (exit 2), or `--help` / `--version` (exit 0, on stdout). The usage
/// error honours `--log-format json` and `--color` although parsing failed: they are read from the
/// raw arguments.
pub fn report_parse_error(e: &clap::Error) -> ExitCode {
    if !e.use_stderr() {
        let _ = e.print();
        return ExitCode::SUCCESS;
    }
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let rendered = e.render();
    if raw_flag(&args, "--log-format") == Some("json") {
        let text = rendered.to_string();
        // The hint to try --help is for a person at a terminal, not for a log line.
        let text = text
            .split("\n\nFor more information")
            .next()
            .unwrap_or_default()
            .trim_end()
            .trim_start_matches("error: ");
        eprintln!("{}", json_error("usage error", text, 2));
    } else {
        let choice = match raw_flag(&args, "--color") {
            Some("always") => ColorChoice::Always,
            Some("never") => ColorChoice::Never,
            _ => ColorChoice::Auto,
        };
        if crate::terminal::color_on_stderr(choice) {
            eprint!("{}", rendered.ansi());
        } else {
            eprint!("{rendered}");
        }
    }
    ExitCode::from(2)
}

/// The value of `--flag VALUE` or `--flag=VALUE` among raw arguments (the last one wins, as clap
/// would take it).
fn raw_flag<'a>(args: &'a [String], flag: &str) -> Option<&'a str> {
    let mut found = None;
    let mut iter = args.iter().take_while(|a| *a != "--");
    while let Some(arg) = iter.next() {
        if arg == flag {
            found = iter.next().map(String::as_str);
        } else if let Some(value) = arg.strip_prefix(flag).and_then(|r| r.strip_prefix('=')) {
            found = Some(value);
        }
    }
    found
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

    #[test]
    fn raw_flags_are_found_in_both_spellings_and_not_after_a_double_dash() {
        let args: Vec<String> = [
            "learnloop",
            "--color=never",
            "x",
            "--log-format",
            "json",
            "--",
            "--color",
            "always",
        ]
        .map(String::from)
        .to_vec();
        assert_eq!(raw_flag(&args, "--color"), Some("never"));
        assert_eq!(raw_flag(&args, "--log-format"), Some("json"));
        assert_eq!(raw_flag(&args, "--db"), None);
    }

    #[test]
    fn a_json_error_is_one_line_with_the_message_and_exit_code() {
        let line = json_error("command failed", "no \"store\"\nhere", 2);
        assert!(!line.contains('\n'));
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["level"], "ERROR");
        assert_eq!(v["fields"]["error"], "no \"store\"\nhere");
        assert_eq!(v["fields"]["exit_code"], 2);
    }
}
