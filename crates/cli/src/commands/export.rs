use super::Outcome;
use crate::context::open_store;
use crate::Cli;
use anyhow::Context;
use clap::{Args, ValueEnum};
use learnloop_store::export::{write_table, Format};
use std::io::Write;
use std::path::PathBuf;

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Table name, e.g. pattern_scope_stats, trade_events, quarantine.
    pub table: String,
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn execute(cli: &Cli, args: &ExportArgs) -> anyhow::Result<Outcome> {
    let conn = open_store(cli)?;
    let format = match (args.format, cli.json) {
        (_, true) | (ExportFormat::Json, _) => Format::Json,
        (ExportFormat::Csv, false) => Format::Csv,
    };
    let mut out: Box<dyn Write> = match &args.out {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let rows = write_table(&conn, &args.table, format, &mut out)?;
    out.flush()?;
    tracing::info!(table = %args.table, rows, "exported");
    Ok(Outcome::Ok)
}
