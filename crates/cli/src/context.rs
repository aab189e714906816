//! What every command needs: the open store, the effective configuration, and the
//! wall clock (read here, in the binary, and never inside a stage).

use crate::Cli;
use anyhow::Context;
use learnloop_model::{LoopConfig, Timestamp};
use learnloop_store::Connection;

pub fn open_store(cli: &Cli) -> anyhow::Result<Connection> {
    learnloop_store::open(&cli.db)
        .with_context(|| format!("opening the store {}", cli.db.display()))
}

/// Open an existing store for a command that changes what is in it but has nothing to add to a
/// new one (`config activate`, `config rollback`, `replay`): a mistyped `--db` is an error (exit
/// 2), not a new empty store.
pub fn open_existing_store(cli: &Cli) -> anyhow::Result<Connection> {
    learnloop_store::open_existing(&cli.db)
        .with_context(|| format!("opening the store {}", cli.db.display()))
}

/// Open the store for a command that only reads: never creates, migrates or writes it, so it
/// works on a read-only mount and a mistyped `--db` is an error (exit 2), not a new empty store.
pub fn open_store_read_only(cli: &Cli) -> anyhow::Result<Connection> {
    learnloop_store::open_read_only(&cli.db)
        .with_context(|| format!("opening the store {} read-only", cli.db.display()))
}

pub fn load_config(cli: &Cli) -> anyhow::Result<LoopConfig> {
    match &cli.config {
        None => Ok(LoopConfig::default()),
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("reading config {}", path.display()))?;
            LoopConfig::from_json(&text).with_context(|| format!("config {}", path.display()))
        }
    }
}

/// The wall clock, to the millisecond: the one place the binary reads it (run records, quarantine
/// rows, a config version's `created_at`, log lines); the stages are handed this value.
pub fn wall_clock_now() -> Timestamp {
    Timestamp::from_millis(chrono::Utc::now().timestamp_millis())
}

/// Refuses an output file that is the store (`--db`, its `-wal` or `-shm`) or any other SQLite
/// database: one mistyped `--out` must not replace every lesson and config with a CSV.
pub fn refuse_overwriting_a_store(cli: &Cli, out: &std::path::Path) -> anyhow::Result<()> {
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    let Some(target) = canonical(out) else {
        return Ok(()); // a new file
    };
    let store_files = ["", "-wal", "-shm"].map(|suffix| {
        let mut name = cli.db.as_os_str().to_owned();
        name.push(suffix);
        std::path::PathBuf::from(name)
    });
    if store_files
        .iter()
        .any(|f| canonical(f).as_ref() == Some(&target))
    {
        return Err(crate::errors::usage(format!(
            "{} is the store (--db): refusing to overwrite it",
            out.display()
        )));
    }
    let mut header = [0u8; 16];
    let is_sqlite = std::fs::File::open(&target)
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut header))
        .is_ok()
        && &header == b"SQLite format 3\0";
    if is_sqlite {
        return Err(crate::errors::usage(format!(
            "{} is an SQLite database: refusing to overwrite it (choose another --out)",
            out.display()
        )));
    }
    Ok(())
}
