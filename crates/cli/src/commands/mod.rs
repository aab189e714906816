pub mod action_args;
pub mod bench;
pub mod bench_breakdown;
pub mod bench_calibrate;
pub mod bench_dims;
#[cfg(feature = "postgres")]
pub mod bench_pg;
pub mod bench_replay;
pub mod completions;
pub mod config;
pub mod config_flags;
pub mod demo;
pub mod demo_check;
pub mod explain;
pub mod export;
pub mod ingest;
pub mod ingest_adapter;
pub mod lessons;
pub mod lookup;
pub mod pg;
pub mod replay;
pub mod report;
pub mod run;
pub mod run_changes;
pub mod status;

use crate::{Cli, Command};

/// How a successful command ends: `Strict` means it worked but `--strict` saw quarantined input.
pub enum Outcome {
    Ok,
    StrictFailure,
}

impl Outcome {
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Ok => 0,
            Outcome::StrictFailure => 1,
        }
    }
}

pub fn dispatch(cli: &Cli) -> anyhow::Result<Outcome> {
    if cli.config.is_some() {
        // Checked for every command, not only those that read it: a scheduler line whose
        // --config is missing or malformed must fail the first time it runs, whatever it runs.
        crate::context::load_config(cli)?;
    }
    match &cli.command {
        Command::Ingest(a) => ingest::execute(cli, a),
        Command::Run(a) => run::execute_run(cli, a),
        Command::Link(a) => run::execute_stage(cli, a, learnloop_pipeline::Stage::Link),
        Command::Aggregate(a) => run::execute_stage(cli, a, learnloop_pipeline::Stage::Aggregate),
        Command::Lessons(a) => lessons::execute(cli, a),
        Command::Materialize(a) => {
            run::execute_stage(cli, a, learnloop_pipeline::Stage::Materialize)
        }
        Command::Explain(a) => explain::execute(cli, a),
        Command::Replay(a) => replay::execute(cli, a),
        Command::Completions(a) => completions::completions(a),
        Command::Man(a) => completions::man(cli, a),
        Command::Report(a) => report::execute(cli, a),
        Command::Lookup(a) => lookup::execute(cli, a),
        Command::Config(a) => config::execute(cli, a),
        Command::Status(a) => status::execute(cli, a),
        Command::Export(a) => export::execute(cli, a),
        Command::Demo(a) => demo::execute(cli, a),
        Command::Bench(a) => bench::execute(cli, a),
        Command::ShowConfig => {
            config::show_effective(cli)?;
            Ok(Outcome::Ok)
        }
    }
}
