use super::Outcome;
use crate::output::{emit, kv};
use crate::Cli;
use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use learnloop_demo::{write_jsonl, DemoOptions, EffectPlan, MAX_CALIBRATION_SIZES};
use learnloop_model::Timestamp;
use std::path::PathBuf;

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true, subcommand_negates_reqs = true)]
pub struct DemoArgs {
    #[command(subcommand)]
    pub action: Option<DemoAction>,
    #[command(flatten)]
    pub generate: GenerateArgs,
}

#[derive(Subcommand, Debug)]
pub enum DemoAction {
    /// Which planted effects of a demo's truth file became active lessons in the store, and why
    /// the others did not (explain's reason). Reports; exits 0 whatever it finds.
    Check(super::demo_check::CheckArgs),
}

/// `demo --out FILE`: generate the strands.
#[derive(Args, Debug)]
pub struct GenerateArgs {
    /// Output JSON Lines file; the ground truth goes to FILE.truth.json. With --format
    /// decision-packets, a directory (packets/DAY.json, closed_positions.jsonl, truth.json).
    #[arg(long, required = true)]
    pub out: Option<PathBuf>,
    /// What to generate: the PM's strands, or another bot's DecisionPackets with closed positions
    /// (ingest them with `--adapter adapters/decision_packets.json`).
    #[arg(long, value_enum, default_value_t = DemoFormat::Strands)]
    pub format: DemoFormat,
    /// Closed trade cycles to generate.
    #[arg(long, default_value_t = 3000)]
    pub cycles: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Length of the simulated period in days (at least 1).
    #[arg(long, default_value_t = 180, value_parser = clap::value_parser!(u32).range(1..=36_500))]
    pub days: u32,
    /// First day of the period (YYYY-MM-DD or RFC 3339).
    #[arg(long, default_value = "2026-01-01", value_parser = crate::values::parse_time)]
    pub start: Timestamp,
    /// Leave out the injected bad input (duplicates, malformed lines, NaN R, …).
    #[arg(long)]
    pub clean: bool,
    /// Which effects to plant: the demo's four, none (placebo), the calibration set (one dim,
    /// interaction, exception inside a bad parent, stopped effect, at each of --effect-sizes), or
    /// one interaction in every group (the largest size on {bucket: micro, timeframe: 1h}).
    #[arg(long, value_enum, default_value_t = EffectsArg::Demo)]
    pub effects: EffectsArg,
    /// Effect sizes (R) of the calibration set, comma-separated (1 to 7 sizes).
    #[arg(long, value_delimiter = ',', num_args = 1..=MAX_CALIBRATION_SIZES,
          default_value = "0.3,0.6,1.0", value_parser = parse_effect_size)]
    pub effect_sizes: Vec<f64>,
    /// SD (R) of a common shock per regime period of 3–9 days, added to every trade entered in it.
    #[arg(long, default_value_t = 0.0, value_parser = parse_shock_sd)]
    pub regime_shock: f64,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum DemoFormat {
    Strands,
    DecisionPackets,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum EffectsArg {
    Demo,
    Placebo,
    Calibration,
    /// Issue 11's interaction: +S (the largest `--effect-sizes`) on {bucket: micro, timeframe:
    /// 1h} in every (pattern, category) group.
    InteractionEverywhere,
}

/// An effect size in R: 0 < size <= 5.
pub fn parse_effect_size(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= 5.0 => Ok(s),
        _ => Err(format!(
            "{text:?} is not an effect size in R (expected 0 < size <= 5)"
        )),
    }
}

/// A shock standard deviation in R: finite and >= 0.
pub fn parse_shock_sd(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s >= 0.0 => Ok(s),
        _ => Err(format!(
            "{text:?} is not a standard deviation in R (expected a number >= 0)"
        )),
    }
}

/// The effect plan of `--effects` and `--effect-sizes`.
pub fn effect_plan(effects: EffectsArg, sizes: &[f64]) -> EffectPlan {
    match effects {
        EffectsArg::Demo => EffectPlan::Demo,
        EffectsArg::Placebo => EffectPlan::Placebo,
        EffectsArg::Calibration => EffectPlan::Calibration {
            sizes: sizes.to_vec(),
        },
        EffectsArg::InteractionEverywhere => EffectPlan::InteractionEverywhere {
            size: sizes.iter().copied().fold(0.0, f64::max),
        },
    }
}

pub fn execute(cli: &Cli, args: &DemoArgs) -> anyhow::Result<Outcome> {
    match &args.action {
        Some(DemoAction::Check(check)) => super::demo_check::execute(cli, check),
        None => generate(cli, &args.generate),
    }
}

/// The period must lie where ingest accepts event times (2000-01-01 .. 2100-01-01): a demo
/// whose strands ingest quarantines as out of range teaches nothing.
fn check_period(start: Timestamp, days: u32) -> anyhow::Result<()> {
    use learnloop_model::strand::{EARLIEST_PLAUSIBLE_MS, LATEST_PLAUSIBLE_MS};
    let end_ms = start.millis() + i64::from(days) * learnloop_model::time::MS_PER_DAY;
    if start.millis() < EARLIEST_PLAUSIBLE_MS || end_ms >= LATEST_PLAUSIBLE_MS {
        return Err(crate::errors::usage(format!(
            "--start {start} with --days {days} ends outside 2000-01-01 .. 2100-01-01, the event \
             times ingest accepts"
        )));
    }
    Ok(())
}

/// A demo replaces its own earlier output (a strands file with its truth file beside it, a
/// packets directory with its `truth.json`), never other data: one mistyped `--out` must not
/// replace a desk's real strands or decision log with synthetic ones.
fn refuse_replacing_other_data(out: &std::path::Path, format: DemoFormat) -> anyhow::Result<()> {
    let non_empty_file =
        |p: &std::path::Path| std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.len() > 0);
    let (holds_data, truth) = match format {
        DemoFormat::Strands => (non_empty_file(out), learnloop_demo::truth_path(out)),
        DemoFormat::DecisionPackets => {
            let has_packets = std::fs::read_dir(out.join("packets")).is_ok_and(|mut days| {
                days.any(|d| d.is_ok_and(|d| d.path().extension().is_some_and(|e| e == "json")))
            });
            let holds = non_empty_file(&out.join("closed_positions.jsonl")) || has_packets;
            (holds, out.join("truth.json"))
        }
    };
    if holds_data && !truth.exists() {
        return Err(crate::errors::usage(format!(
            "--out {} holds data that no demo wrote (there is no {} beside it): choose another \
             path, or remove it first",
            out.display(),
            truth.display()
        )));
    }
    Ok(())
}

fn generate(cli: &Cli, args: &GenerateArgs) -> anyhow::Result<Outcome> {
    let Some(out) = &args.out else {
        return Err(crate::errors::usage(
            "demo needs --out FILE (or `demo check`)",
        ));
    };
    crate::context::refuse_overwriting_a_store(cli, out)?;
    check_period(args.start, args.days)?;
    let effects = effect_plan(args.effects, &args.effect_sizes);
    let opts = DemoOptions {
        seed: args.seed,
        start: args.start,
        days: args.days,
        mess: !args.clean,
        effects,
        regime_shock_sd: args.regime_shock,
        ..DemoOptions::default().with_cycles(args.cycles)
    };
    refuse_replacing_other_data(out, args.format)?;
    if args.format == DemoFormat::DecisionPackets {
        return write_packets(cli, &opts, args, out);
    }
    let truth = write_jsonl(&opts, out).with_context(|| format!("writing {}", out.display()))?;
    emit(cli.json, &truth, |t| {
        let mut lines = vec![
            ("strands written to", out.display().to_string()),
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

fn write_packets(
    cli: &Cli,
    opts: &DemoOptions,
    args: &GenerateArgs,
    out: &std::path::Path,
) -> anyhow::Result<Outcome> {
    if args.effects == EffectsArg::Calibration {
        return Err(crate::errors::usage(
            "--format decision-packets plants its one effect (--effects demo) or none (--effects placebo)",
        ));
    }
    let truth = learnloop_demo::packets::write_packets(opts, out)
        .with_context(|| format!("writing packets into {}", out.display()))?;
    emit(cli.json, &truth, |t| {
        let mut lines = vec![
            ("packets written to", out.display().to_string()),
            ("packets", t.packets.to_string()),
            ("closed positions", t.closed_positions.to_string()),
        ];
        for e in &t.effects {
            lines.push((
                "planted effect",
                format!(
                    "{} / {} / {:?}: {:+.2} R on {} trades",
                    e.pattern_key, e.action_category, e.scope, e.effect_r, e.matching_trades
                ),
            ));
        }
        for (kind, n) in &t.bad_records {
            lines.push(("bad record", format!("{kind}: {n}")));
        }
        kv(&lines)
    })?;
    Ok(Outcome::Ok)
}
