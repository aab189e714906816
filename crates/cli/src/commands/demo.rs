use super::Outcome;
use crate::output::{emit, kv};
use crate::Cli;
use anyhow::Context;
use clap::Args;
use learnloop_demo::{write_jsonl, DemoOptions};
use learnloop_model::Timestamp;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Output JSON Lines file; the ground truth goes to FILE.truth.json.
    #[arg(long)]
    pub out: PathBuf,
    /// Closed trade cycles to generate.
    #[arg(long, default_value_t = 3000)]
    pub cycles: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Length of the simulated period in days.
    #[arg(long, default_value_t = 180)]
    pub days: u32,
    /// First day of the period (RFC 3339).
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    pub start: String,
    /// Leave out the injected bad input (duplicates, malformed lines, NaN R, …).
    #[arg(long)]
    pub clean: bool,
}

pub fn execute(cli: &Cli, args: &DemoArgs) -> anyhow::Result<Outcome> {
    let start = Timestamp::parse(&args.start).map_err(|e| anyhow::anyhow!("--start: {e}"))?;
    let opts = DemoOptions {
        seed: args.seed,
        start,
        days: args.days,
        mess: !args.clean,
        ..DemoOptions::default().with_cycles(args.cycles)
    };
    let truth =
        write_jsonl(&opts, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    emit(cli.json, &truth, |t| {
        let mut lines = vec![
            ("strands written to", args.out.display().to_string()),
            ("closed cycles", t.cycles.to_string()),
            ("baseline mean R", format!("{:.3}", t.baseline_mean_r)),
        ];
        for e in &t.effects {
            lines.push((
                "planted effect",
                format!(
                    "{} / {} / {:?}: {:+.2} R",
                    e.pattern_key, e.action_category, e.scope, e.effect_r
                ),
            ));
        }
        kv(&lines)
    })?;
    Ok(Outcome::Ok)
}
