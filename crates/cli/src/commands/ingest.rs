use super::Outcome;
use crate::context::{open_store, wall_clock_now};
use crate::lines::DecodedLines;
use crate::output::{emit, kv};
use crate::Cli;
use anyhow::Context;
use clap::Args;
use learnloop_linker::{ingest_lines, IngestReport};
use learnloop_store::Connection;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct IngestArgs {
    /// JSON Lines files; `-` reads standard input. With --adapter: JSON or JSON Lines files, or
    /// directories of them.
    #[arg(required_unless_present = "from", conflicts_with = "from")]
    pub files: Vec<PathBuf>,
    /// Exit non-zero if any line was quarantined.
    #[arg(long)]
    pub strict: bool,
    /// Map another bot's JSON / JSON Lines records (files or directories) to strands with this
    /// adapter (docs/adapters.md).
    #[arg(long, conflicts_with = "from")]
    pub adapter: Option<PathBuf>,
    #[command(flatten)]
    pub postgres: super::pg::PgSourceArgs,
}

pub fn execute(cli: &Cli, args: &IngestArgs) -> anyhow::Result<Outcome> {
    if let Some(url) = &args.postgres.from {
        let quarantined = super::pg::execute_ingest(cli, &args.postgres, url)?;
        return Ok(strict_outcome(cli, args.strict, quarantined));
    }
    let ignored = args.postgres.flags_set();
    if !ignored.is_empty() {
        return Err(crate::errors::usage(format!(
            "PostgreSQL options without --from URL: {} (they only apply when reading from PostgreSQL)",
            ignored.join(", ")
        )));
    }
    if let Some(adapter) = &args.adapter {
        return super::ingest_adapter::execute(cli, adapter, &args.files, args.strict);
    }
    let mut conn = open_store(cli)?;
    let reports = ingest_files(cli, &mut conn, &args.files)?;
    let quarantined: u64 = reports
        .iter()
        .map(|(_, r)| r.normalized.quarantined_total())
        .sum();
    emit(cli.json, &reports, |reports| {
        reports
            .iter()
            .map(|(source, r)| format!("ingested {source}\n{}", human_ingest(r)))
            .collect()
    })?;
    Ok(strict_outcome(cli, args.strict, quarantined))
}

/// `--strict` with quarantined input fails the command (exit 1), saying why like any failure.
pub fn strict_outcome(cli: &Cli, strict: bool, quarantined: u64) -> Outcome {
    if strict && quarantined > 0 {
        let outcome = Outcome::StrictFailure;
        crate::errors::print_error(
            &format!("--strict: {quarantined} strand(s) were quarantined (see `learnloop status`)"),
            outcome.exit_code(),
            cli.log_format,
            crate::terminal::color_on_stderr(cli.color),
        );
        outcome
    } else {
        Outcome::Ok
    }
}

/// The name a file's bad records are quarantined under (`PATH line N`): its canonical path, so that
/// the same file named another way (`./x`, an absolute path, a symlink) is recognised as already
/// quarantined instead of quarantined again. Standard input is `-`.
pub fn record_source(path: &Path) -> String {
    if path == Path::new("-") {
        return "-".to_string();
    }
    std::fs::canonicalize(path)
        .map_or_else(|_| path.display().to_string(), |p| p.display().to_string())
}

/// Each file in its own transaction: a file is ingested entirely or not at all.
pub fn ingest_files(
    cli: &Cli,
    conn: &mut Connection,
    files: &[PathBuf],
) -> anyhow::Result<Vec<(String, IngestReport)>> {
    let mut reports = Vec::new();
    for path in files {
        let source = path.display().to_string();
        let (reader, size): (Box<dyn Read>, Option<u64>) = if path == Path::new("-") {
            (Box::new(std::io::stdin().lock()), None)
        } else {
            let f = std::fs::File::open(path).with_context(|| format!("opening {source}"))?;
            let size = f.metadata().ok().map(|m| m.len());
            (Box::new(f), size)
        };
        let bar = crate::terminal::progress_bar(
            cli,
            size,
            "{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})",
        );
        bar.set_message(format!("ingest {source}"));
        let reader = BufReader::with_capacity(1 << 20, bar.wrap_read(reader));
        let report = learnloop_store::load_transaction(conn, |tx| {
            ingest_lines(
                tx,
                DecodedLines::new(reader),
                &record_source(path),
                &wall_clock_now().to_rfc3339_millis(),
            )
            .with_context(|| format!("ingesting {source}"))
            .inspect(|_| crate::test_hooks::pause_point("ingest:before-commit"))
        })?;
        bar.finish_and_clear();
        reports.push((source, report));
    }
    Ok(reports)
}

pub fn human_ingest(r: &IngestReport) -> String {
    let mut lines = vec![
        ("lines", r.lines.to_string()),
        ("inserted", r.inserted.to_string()),
        ("already present", r.already_present.to_string()),
        ("id conflicts", r.id_conflicts.to_string()),
        ("actions", r.normalized.actions.to_string()),
        ("closes", r.normalized.closes.to_string()),
        ("quarantined", r.normalized.quarantined_total().to_string()),
    ];
    if r.normalized.already_quarantined > 0 {
        let seen = r.normalized.already_quarantined.to_string();
        lines.push(("already quarantined", seen));
    }
    for (code, n) in &r.normalized.quarantined {
        lines.push(("  quarantine reason", format!("{code}: {n}")));
    }
    kv(&lines)
}
