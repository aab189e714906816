use super::Outcome;
use crate::context::open_store_read_only;
use crate::Cli;
use anyhow::Context;
use clap::{Args, ValueEnum};
use learnloop_store::export::{check_table, write_table, Format};
use std::io::Write;
use std::path::{Path, PathBuf};

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    Csv,
    Json,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    /// Table name, e.g. pattern_scope_stats, trade_events, quarantine.
    #[arg(value_parser = crate::values::table_parser())]
    pub table: String,
    #[arg(long, value_enum, default_value_t = ExportFormat::Csv)]
    pub format: ExportFormat,
    /// Write to this file instead of standard output.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

pub fn execute(cli: &Cli, args: &ExportArgs) -> anyhow::Result<Outcome> {
    if let Some(out) = &args.out {
        crate::context::refuse_overwriting_a_store(cli, out)?;
    }
    let conn = open_store_read_only(cli)?;
    let format = match (args.format, cli.json) {
        (_, true) | (ExportFormat::Json, _) => Format::Json,
        (ExportFormat::Csv, false) => Format::Csv,
    };
    // Before any file is touched: a bad table name must not truncate --out.
    check_table(&conn, &args.table)?;
    let rows = match &args.out {
        Some(path) => export_to_file(&conn, &args.table, format, path)?,
        None => {
            let mut out = std::io::BufWriter::new(std::io::stdout().lock());
            let rows = write_table(&conn, &args.table, format, &mut out)?;
            out.flush()?;
            rows
        }
    };
    tracing::info!(table = %args.table, rows, "exported");
    Ok(Outcome::Ok)
}

/// Write beside `path` and rename over it once complete: a failed export (full disk, a read
/// error) leaves any earlier file intact, and no reader sees half a file.
fn export_to_file(
    conn: &learnloop_store::Connection,
    table: &str,
    format: Format,
    path: &Path,
) -> anyhow::Result<u64> {
    let mut partial = path.as_os_str().to_owned();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let written = (|| -> anyhow::Result<u64> {
        let file = std::fs::File::create(&partial)
            .with_context(|| format!("creating {}", partial.display()))?;
        let mut out = std::io::BufWriter::new(file);
        let rows = write_table(conn, table, format, &mut out)?;
        out.into_inner()
            .map_err(|e| e.into_error())?
            .sync_all()
            .with_context(|| format!("writing {}", partial.display()))?;
        std::fs::rename(&partial, path)
            .with_context(|| format!("renaming {} to {}", partial.display(), path.display()))?;
        Ok(rows)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    written
}
