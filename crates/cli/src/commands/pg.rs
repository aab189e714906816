//! PostgreSQL at the command line (SPEC §11.2): `ingest --from URL`, `config publish --to URL`,
//! and both inside `run --from URL --publish URL`. Built with the cargo feature `postgres` (on by
//! default); without it these flags exist but say so. URLs are only ever shown redacted.

use crate::Cli;
use clap::Args;
use learnloop_linker::IngestReport;
use learnloop_store::Connection;

/// Defaults of `--table`, `--batch` and `--lookback-hours` (also how [`PgSourceArgs::flags_set`]
/// tells that one was given).
const DEFAULT_TABLE: &str = "ad_strands";
const DEFAULT_BATCH: usize = 1_000;
const DEFAULT_LOOKBACK_HOURS: u32 = 72;

#[derive(Args, Debug, Clone)]
pub struct PgSourceArgs {
    /// Read new strands from PostgreSQL instead of files:
    /// postgresql://USER:PASSWORD@HOST:PORT/DB?sslmode=require (password and sslmode optional; the password may come from
    /// PGPASSWORD instead; it is never printed or stored).
    #[arg(long, value_name = "URL")]
    pub from: Option<String>,
    /// Table (or schema.table) holding the strands.
    #[arg(long, default_value = DEFAULT_TABLE, requires = "from")]
    pub table: String,
    /// Rows fetched per round trip (1,000 measured fastest against a local server; a larger batch
    /// saves round trips to a distant one).
    #[arg(long, default_value_t = DEFAULT_BATCH, requires = "from")]
    pub batch: usize,
    /// Re-read this many hours before the stored watermark, so rows committed late with an older
    /// created_at are not missed (already stored rows are skipped by id); 0: strictly after it.
    #[arg(
        long,
        default_value_t = DEFAULT_LOOKBACK_HOURS,
        value_parser = clap::value_parser!(u32).range(0..=87_600),
        requires = "from"
    )]
    pub lookback_hours: u32,
    /// Read the whole table whatever the watermark (idempotent: only unseen rows are stored).
    #[arg(long, requires = "from")]
    pub full: bool,
}

impl PgSourceArgs {
    /// The PostgreSQL-only flags given with another value than their default: without `--from`
    /// they would be ignored silently, so `ingest` refuses them (`run` has clap check it).
    pub fn flags_set(&self) -> Vec<&'static str> {
        let mut set = Vec::new();
        if self.table != DEFAULT_TABLE {
            set.push("--table");
        }
        if self.batch != DEFAULT_BATCH {
            set.push("--batch");
        }
        if self.lookback_hours != DEFAULT_LOOKBACK_HOURS {
            set.push("--lookback-hours");
        }
        if self.full {
            set.push("--full");
        }
        set
    }
}

#[derive(Args, Debug, Clone)]
pub struct PgPublishArgs {
    /// After a successful run, publish each module's active config to this PostgreSQL URL.
    #[arg(long, value_name = "URL")]
    pub publish: Option<String>,
    /// Table the PM reads its config from (created when absent).
    #[arg(long, default_value = "learning_configs", requires = "publish")]
    pub publish_table: String,
}

#[cfg(feature = "postgres")]
mod enabled {
    use super::*;
    use crate::commands::config::check_loadable;
    use crate::context::{open_store, open_store_read_only, wall_clock_now};
    use crate::errors::usage;
    use crate::output::{emit, kv};
    use anyhow::Context;
    use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
    use learnloop_linker::ingest_pg::{ingest_postgres, PgIngestOptions, PgIngestReport};
    use learnloop_store::configs;
    use learnloop_store::pg::{self, PgTarget, PublishOutcome, TableName};
    use std::io::IsTerminal;

    /// A malformed URL or table name is a usage error (exit 2), found before the store is opened
    /// or a run starts (`run --publish` would otherwise find it after committing the run).
    pub fn check_target(url: &str, table: &str) -> anyhow::Result<()> {
        PgTarget::parse(url).map_err(|e| usage(e.to_string()))?;
        TableName::parse(table).map_err(|e| usage(e.to_string()))?;
        Ok(())
    }

    pub fn target(url: &str) -> anyhow::Result<PgTarget> {
        Ok(PgTarget::parse(url)?.with_default_password(std::env::var("PGPASSWORD").ok()))
    }

    pub fn connect(target: &PgTarget) -> anyhow::Result<pg::Client> {
        Ok(pg::connect(target)?)
    }

    fn spinner(label: &str) -> ProgressBar {
        if !std::io::stderr().is_terminal() {
            return ProgressBar::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template("{spinner} {msg}: {pos} rows ({per_sec})") {
            bar.set_style(style);
        }
        bar.set_message(format!("ingest {label}"));
        bar
    }

    /// Read new rows into the store in one SQLite transaction: any failure, a dropped
    /// connection included, leaves the store exactly as it was.
    pub fn ingest(
        conn: &mut Connection,
        args: &PgSourceArgs,
        url: &str,
    ) -> anyhow::Result<PgIngestReport> {
        let target = target(url)?;
        let mut client = connect(&target)?;
        let options = PgIngestOptions {
            table: args.table.clone(),
            batch: args.batch,
            lookback: Some(chrono::Duration::hours(i64::from(args.lookback_hours))),
            full: args.full,
        };
        let bar = spinner(&target.key);
        let report = learnloop_store::load_transaction(conn, |tx| {
            ingest_postgres(
                tx,
                &mut client,
                &target,
                &options,
                &wall_clock_now().to_rfc3339_millis(),
                |n| bar.set_position(n),
            )
            .with_context(|| format!("ingesting {} from {}", args.table, target.redacted))
        })?;
        bar.finish_and_clear();
        Ok(report)
    }

    pub fn execute_ingest(cli: &Cli, args: &PgSourceArgs, url: &str) -> anyhow::Result<u64> {
        check_target(url, &args.table)?;
        let mut conn = open_store(cli)?;
        let report = ingest(&mut conn, args, url)?;
        emit(cli.json, &report, |r| {
            format!(
                "ingested {} ({}){}\n{}",
                r.source,
                if r.read_from == "start" {
                    "whole table"
                } else {
                    &r.read_from
                },
                if r.quarantined_before > 0 {
                    format!(
                        ", {} bad row(s) seen again, already quarantined",
                        r.quarantined_before
                    )
                } else {
                    String::new()
                },
                crate::commands::ingest::human_ingest(&r.ingest)
            )
        })?;
        Ok(report.ingest.normalized.quarantined_total())
    }

    pub fn ingest_for_run(
        conn: &mut Connection,
        args: &PgSourceArgs,
        url: &str,
    ) -> anyhow::Result<(String, IngestReport, serde_json::Value)> {
        let report = ingest(conn, args, url)?;
        // Where the read started and where the watermark now stands, for the run's record.
        let read = serde_json::json!({
            "source": report.source,
            "read_from": report.read_from,
            "watermark_before": report.watermark_before,
            "watermark_after": report.watermark_after,
            "quarantined_before": report.quarantined_before,
        });
        Ok((report.source, report.ingest, read))
    }

    /// Publish the active version of each of `modules` (checked loadable first).
    pub fn publish(
        conn: &Connection,
        modules: &[String],
        url: &str,
        table: &str,
    ) -> anyhow::Result<Vec<PublishOutcome>> {
        let target = target(url)?;
        let table = TableName::parse(table)?;
        let mut client = connect(&target)?;
        let mut outcomes = Vec::new();
        for module in modules {
            let active = configs::active_version(conn, module)?.with_context(|| {
                format!("module {module:?} has no active config to publish (see `learnloop config list`, `config activate V`)")
            })?;
            check_loadable(&active)?;
            let outcome = pg::publish_config(&mut client, &table, &active).with_context(|| {
                format!(
                    "publishing {module} v{} to {}",
                    active.version, target.redacted
                )
            })?;
            tracing::info!(module, version = active.version, changed = outcome.changed, target = %target.redacted, table = %table.display, "config published");
            outcomes.push(outcome);
        }
        Ok(outcomes)
    }

    fn human_publish(outcomes: &[PublishOutcome]) -> String {
        outcomes
            .iter()
            .map(|o| {
                let what = if !o.changed {
                    "already the active row: nothing written".to_string()
                } else if o.superseded.is_empty() {
                    "published, now active".to_string()
                } else {
                    let s: Vec<String> = o.superseded.iter().map(|v| format!("v{v}")).collect();
                    format!("published, now active ({} superseded)", s.join(", "))
                };
                let mut lines = vec![(o.module.as_str(), format!("v{} {what}", o.version))];
                if o.created_table {
                    lines.push(("table", format!("{} created", o.table)));
                }
                kv(&lines)
            })
            .collect()
    }

    pub fn execute_publish(cli: &Cli, module: &str, url: &str, table: &str) -> anyhow::Result<()> {
        check_target(url, table)?;
        let conn = open_store_read_only(cli)?;
        let outcomes = publish(&conn, &[module.to_string()], url, table)?;
        emit(cli.json, &outcomes, |o| human_publish(o))
    }
}

#[cfg(not(feature = "postgres"))]
mod enabled {
    use super::*;

    fn unsupported<T>() -> anyhow::Result<T> {
        anyhow::bail!(
            "this learnloop was built without PostgreSQL support (cargo feature `postgres`)"
        )
    }

    pub fn check_target(_: &str, _: &str) -> anyhow::Result<()> {
        unsupported()
    }

    pub fn execute_ingest(_: &Cli, _: &PgSourceArgs, _: &str) -> anyhow::Result<u64> {
        unsupported()
    }

    pub fn ingest_for_run(
        _: &mut Connection,
        _: &PgSourceArgs,
        _: &str,
    ) -> anyhow::Result<(String, IngestReport, serde_json::Value)> {
        unsupported()
    }

    pub fn publish(
        _: &Connection,
        _: &[String],
        _: &str,
        _: &str,
    ) -> anyhow::Result<Vec<serde_json::Value>> {
        unsupported()
    }

    pub fn execute_publish(_: &Cli, _: &str, _: &str, _: &str) -> anyhow::Result<()> {
        unsupported()
    }
}

#[cfg(feature = "postgres")]
pub use enabled::target;
pub use enabled::{check_target, execute_ingest, execute_publish, ingest_for_run, publish};
