//! What every command needs: the open store, the effective configuration, the as-of time, and the
//! wall clock (read here, in the binary, and never inside a stage).

use crate::Cli;
use anyhow::{bail, Context};
use learnloop_model::{LoopConfig, Timestamp};
use learnloop_store::Connection;

pub fn open_store(cli: &Cli) -> anyhow::Result<Connection> {
    learnloop_store::open(&cli.db).with_context(|| format!("opening the store {}", cli.db.display()))
}

pub fn load_config(cli: &Cli) -> anyhow::Result<LoopConfig> {
    match &cli.config {
        None => Ok(LoopConfig::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("reading config {}", path.display()))?;
            LoopConfig::from_json(&text).with_context(|| format!("config {}", path.display()))
        }
    }
}

/// `--as-of` if given, else the latest created_at among the ingested strands (never the clock).
pub fn resolve_as_of(conn: &Connection, as_of: Option<&str>) -> anyhow::Result<Timestamp> {
    match as_of {
        Some(text) => Timestamp::parse(text).map_err(|e| anyhow::anyhow!("--as-of: {e}")),
        None => match learnloop_store::strands::latest_created_at(conn)? {
            Some(t) => Ok(t),
            None => bail!("no strands ingested yet: run `learnloop ingest FILE.jsonl` first, or pass --as-of"),
        },
    }
}

pub fn wall_clock_now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}
