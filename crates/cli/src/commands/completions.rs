//! `completions` and `man`: shell completion scripts and man pages generated from the command
//! definitions themselves, so they never drift from `--help`.

use super::Outcome;
use crate::output::emit;
use crate::Cli;
use anyhow::Context as _;
use clap::{Args, CommandFactory};
use serde::Serialize;
use std::path::{Path, PathBuf};

#[derive(Args, Debug)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Args, Debug)]
pub struct ManArgs {
    /// Directory for `learnloop.1` and one page per subcommand (`learnloop-run.1`, …).
    #[arg(long, default_value = "man")]
    pub out: PathBuf,
}

/// Print the completion script for the shell on stdout.
pub fn completions(args: &CompletionsArgs) -> anyhow::Result<Outcome> {
    let mut command = Cli::command();
    // Into a buffer first: the generator panics on a write error, and a closed pipe
    // (`learnloop completions bash | head`) is a quiet end, not a failure.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut command, "learnloop", &mut script);
    match std::io::Write::write_all(&mut std::io::stdout().lock(), &script) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(e).context("writing the completion script")
        }
        _ => Ok(Outcome::Ok),
    }
}

/// What `man` wrote (`--json`).
#[derive(Serialize)]
struct ManPages {
    /// The directory the pages are in.
    dir: PathBuf,
    /// Each page's file, in the order written (the top page first, then depth first).
    pages: Vec<PathBuf>,
}

/// Write the man pages into `--out`.
pub fn man(cli: &Cli, args: &ManArgs) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut command = Cli::command();
    // Built, the subcommands carry the global options (--db, --json, …) and their full
    // invocation (`learnloop config activate`) for their synopsis.
    command.build();
    let mut pages = Vec::new();
    write_pages(&args.out, "learnloop", &command, &mut pages)?;
    let written = ManPages {
        dir: args.out.clone(),
        pages,
    };
    emit(cli.json, &written, |w| {
        format!(
            "{} man pages written to {}\n",
            w.pages.len(),
            w.dir.display()
        )
    })?;
    Ok(Outcome::Ok)
}

/// `command`'s page as `name`, then every subcommand's, at any depth (`learnloop-config-activate`,
/// as the pages' SEE ALSO sections name them), each path added to `written`.
fn write_pages(
    dir: &Path,
    name: &str,
    command: &clap::Command,
    written: &mut Vec<PathBuf>,
) -> anyhow::Result<()> {
    written.push(write_page(dir, name, command.clone())?);
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        write_pages(dir, &format!("{name}-{}", sub.get_name()), sub, written)?;
    }
    Ok(())
}

/// Write `name`'s page into `dir`; returns its path.
fn write_page(dir: &Path, name: &str, command: clap::Command) -> anyhow::Result<PathBuf> {
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .title(name.to_uppercase())
        .render(&mut page)
        .with_context(|| format!("rendering {name}.1"))?;
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))?;
    Ok(path)
}
