//! `completions` and `man`: shell completion scripts and man pages generated from the command
//! definitions themselves, so they never drift from `--help`.

use super::Outcome;
use crate::Cli;
use anyhow::Context as _;
use clap::{Args, CommandFactory};
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

/// Write the man pages into `--out`.
pub fn man(args: &ManArgs) -> anyhow::Result<Outcome> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("creating {}", args.out.display()))?;
    let mut command = Cli::command();
    // Built, the subcommands carry the global options (--db, --json, …) and their full
    // invocation (`learnloop config activate`) for their synopsis.
    command.build();
    let pages = write_pages(&args.out, "learnloop", &command)?;
    println!("{pages} man pages written to {}", args.out.display());
    Ok(Outcome::Ok)
}

/// `command`'s page as `name`, then every subcommand's, at any depth (`learnloop-config-activate`,
/// as the pages' SEE ALSO sections name them). Returns how many were written.
fn write_pages(dir: &Path, name: &str, command: &clap::Command) -> anyhow::Result<usize> {
    write_page(dir, name, command.clone())?;
    let mut written = 1;
    for sub in command
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
    {
        written += write_pages(dir, &format!("{name}-{}", sub.get_name()), sub)?;
    }
    Ok(written)
}

fn write_page(dir: &Path, name: &str, command: clap::Command) -> anyhow::Result<()> {
    let path = dir.join(format!("{name}.1"));
    let mut page = Vec::new();
    clap_mangen::Man::new(command)
        .title(name.to_uppercase())
        .render(&mut page)
        .with_context(|| format!("rendering {name}.1"))?;
    std::fs::write(&path, page).with_context(|| format!("writing {}", path.display()))
}
