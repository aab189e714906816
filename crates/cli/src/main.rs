//! `learnloop`: the learning loop of the PM. Exit status 0 on success, 1 on failure, 2 on bad usage.

mod commands;
mod context;
mod errors;
mod lines;
mod logging;
mod output;
mod terminal;
mod test_hooks;
mod values;

use clap::{ArgAction, Parser, Subcommand, ValueEnum};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "learnloop",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("LEARNLOOP_GIT_COMMIT"), ")"),
    about = "The learning loop of the trading portfolio manager",
    after_help = "Environment:
  LEARNLOOP_DB   the store, when --db is not given
  LEARNLOOP_LOG  the log filter on stderr (error, warn, info, debug, trace, or per crate such as
                 learnloop_aggregator=debug); when set it wins over -q and -v
  NO_COLOR       no colour with --color auto (the default)"
)]
pub struct Cli {
    /// SQLite database (created on first use).
    #[arg(
        long,
        global = true,
        env = "LEARNLOOP_DB",
        default_value = "learnloop.db"
    )]
    pub db: PathBuf,
    /// Log format on stderr; with json, a failed command's error is one JSON line too.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Human)]
    pub log_format: LogFormat,
    /// Colour on stderr: auto = only on a terminal and when NO_COLOR is not set.
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
    /// Errors only: no warnings, no progress bars (LEARNLOOP_LOG, when set, still decides the logs).
    #[arg(short, long, global = true, conflicts_with = "verbose")]
    pub quiet: bool,
    /// More log output on stderr: -v info, -vv debug, -vvv trace (LEARNLOOP_LOG, when set, wins).
    #[arg(short, long, global = true, action = ArgAction::Count)]
    pub verbose: u8,
    /// Machine-readable output on stdout.
    #[arg(long, global = true)]
    pub json: bool,
    /// Configuration file (JSON; any subset of the defaults, see `learnloop show-config`).
    #[arg(long, global = true)]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Human,
    Json,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Load strands from JSON Lines files (or - for stdin); idempotent by strand id.
    Ingest(commands::ingest::IngestArgs),
    /// The nightly job: link → aggregate → lessons → materialize, recorded as one learning_runs row.
    Run(commands::run::RunArgs),
    /// Link actions to their closed trades (trade_events).
    Link(commands::run::StageArgs),
    /// Aggregate trade outcomes over every scope subset (pattern_scope_stats).
    Aggregate(commands::run::StageArgs),
    /// See the lessons (`lessons list`, `lessons show KEY`), or build them (`lessons build`; bare
    /// `lessons` with the stage's flags also runs the stage).
    Lessons(commands::lessons::LessonsArgs),
    /// Turn active lessons into a new learning_configs version (proposed, or active with --activate).
    Materialize(commands::run::StageArgs),
    /// Replay the loop as of each step over a past period; lesson evolution and walk-forward uplift.
    Replay(commands::replay::ReplayArgs),
    /// What the loop learned tonight: a self-contained HTML page and a Markdown twin.
    Report(commands::report::ReportArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    Completions(commands::completions::CompletionsArgs),
    /// Write man pages (learnloop.1 and one per subcommand) into a directory.
    Man(commands::completions::ManArgs),
    /// Why a pattern/scope is or is not a lesson: its figures, parents, q-values and verdict.
    Explain(commands::explain::ExplainArgs),
    /// The runtime decision for one action under the active config, with its explanation.
    Lookup(commands::lookup::LookupArgs),
    /// Config versions: list, show (a version, default the active one), diff A B, activate V, rollback.
    Config(commands::config::ConfigArgs),
    /// Coverage, quarantine by reason, link anomalies, last runs.
    Status(commands::status::StatusArgs),
    /// Write any table as CSV or JSON.
    Export(commands::export::ExportArgs),
    /// Generate realistic synthetic strands with planted effects and their ground truth
    /// (`demo check --truth FILE`: which planted effects the store learned).
    Demo(commands::demo::DemoArgs),
    /// Measure a stage on a synthetic data set and print the figures.
    Bench(commands::bench::BenchArgs),
    /// Print the effective configuration (defaults merged with --config).
    ShowConfig,
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => return errors::report_parse_error(&e),
    };
    let color = terminal::color_on_stderr(cli.color);
    logging::init(
        cli.log_format,
        logging::verbosity(cli.quiet, cli.verbose),
        color,
    );
    match commands::dispatch(&cli) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) if errors::is_broken_pipe(&e) => ExitCode::SUCCESS,
        Err(e) => {
            errors::report(&e, cli.log_format, color);
            ExitCode::from(errors::exit_code(&e))
        }
    }
}
