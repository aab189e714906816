//! `replay`: the loop as of each step over a past period, and the walk-forward evaluation.

use super::Outcome;
use crate::context::{load_config, open_existing_store, wall_clock_now};
use crate::output::{emit, kv};
use crate::Cli;
use anyhow::Context;
use clap::Args;
use learnloop_model::Timestamp;
use learnloop_replay::{
    record_evolution, replay, summarize, write_outputs, ReplayOptions, ReplaySummary,
};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ReplayArgs {
    /// First step (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = crate::values::parse_time)]
    pub from: Timestamp,
    /// Last step, inclusive (YYYY-MM-DD or RFC 3339).
    #[arg(long, value_parser = crate::values::parse_time)]
    pub to: Timestamp,
    /// Step length: a number with h, d or w (e.g. 12h, 1d, 1w).
    #[arg(long, default_value = "1d", value_parser = crate::values::parse_step)]
    pub step: i64,
    /// Output directory for evolution.csv, evolution.json, size_mult.svg (and size_mult.png when
    /// rsvg-convert is installed) and summary.json.
    #[arg(long, default_value = "replay-out")]
    pub out: PathBuf,
    /// Also replay with R shuffled within time clusters (weeks) and report the same figures under `placebo`.
    #[arg(long)]
    pub placebo_compare: bool,
    /// Write into a non-empty --out directory, replacing the replay files there.
    #[arg(long)]
    pub force: bool,
}

/// The files a replay writes into its output directory.
const OUTPUT_FILES: [&str; 6] = [
    "evolution.csv",
    "evolution.json",
    "size_mult.svg",
    "size_mult.png",
    "summary.json",
    "walk_forward.json",
];

/// Refuse to write into a non-empty directory unless `force`; with `force`, remove the previous
/// replay's files first, so that no stale file (a PNG of an older chart) is left beside new ones.
fn prepare_out_dir(out: &std::path::Path, force: bool) -> anyhow::Result<()> {
    let non_empty = std::fs::read_dir(out).is_ok_and(|mut entries| entries.next().is_some());
    if non_empty && !force {
        return Err(crate::errors::usage(format!(
            "--out {} is not empty: pass --force to replace the replay files there, or choose another directory",
            out.display()
        )));
    }
    for name in OUTPUT_FILES {
        match std::fs::remove_file(out.join(name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(e).with_context(|| format!("removing {}", out.join(name).display()))
            }
        }
    }
    Ok(())
}

pub fn execute(cli: &Cli, args: &ReplayArgs) -> anyhow::Result<Outcome> {
    let opts = ReplayOptions {
        from: args.from,
        to: args.to,
        step_ms: args.step,
        placebo_seed: None,
        now: wall_clock_now(),
    };
    // A window that makes no sense is bad usage, found before any store is opened.
    let n_steps = opts
        .steps()
        .map_err(|e| crate::errors::usage(e.to_string()))?
        .len() as u64;
    let cfg = load_config(cli)?;
    let conn = open_existing_store(cli)?;
    prepare_out_dir(&args.out, args.force)?;
    let runs = if args.placebo_compare { 2 } else { 1 };
    let bar = crate::terminal::progress_bar(
        cli,
        Some(n_steps * runs),
        "replay [{bar:30}] {pos}/{len} steps ({eta})",
    );
    let mut tick = |_: usize, _: usize| bar.inc(1);
    let run = replay(&cli.db, &cfg, &opts, &mut tick).context("replay")?;
    let placebo = if args.placebo_compare {
        let p_opts = ReplayOptions {
            placebo_seed: Some(cfg.lessons.placebo_seed),
            ..opts.clone()
        };
        Some(replay(&cli.db, &cfg, &p_opts, &mut tick).context("placebo replay")?)
    } else {
        None
    };
    bar.finish_and_clear();
    let summary = summarize(&opts, &run, placebo.as_ref());
    write_outputs(&args.out, &run, placebo.as_ref(), &summary)
        .with_context(|| format!("writing {}", args.out.display()))?;
    render_png(&args.out);
    record_evolution(&conn, &run)?;
    if let Some(p) = &placebo {
        record_evolution(&conn, p)?;
    }
    emit(cli.json, &summary, |s| human(s, &args.out))?;
    Ok(Outcome::Ok)
}

/// A PNG of the chart next to the SVG when librsvg's `rsvg-convert` is installed (a rasterizer is
/// too heavy a dependency for a picture the SVG already is); otherwise only the SVG, and a note.
fn render_png(out: &std::path::Path) {
    let svg = out.join("size_mult.svg");
    let png = out.join("size_mult.png");
    let converted = std::process::Command::new("rsvg-convert")
        .args(["--width", "1600", "--background-color", "white", "--output"])
        .arg(&png)
        .arg(&svg)
        .stderr(std::process::Stdio::null())
        .status();
    match converted {
        Ok(s) if s.success() => tracing::info!(png = %png.display(), "chart rendered as PNG"),
        Ok(s) => tracing::warn!(status = %s, "rsvg-convert failed: only the SVG chart was written"),
        Err(_) => tracing::info!("rsvg-convert not found: only the SVG chart was written"),
    }
}

fn ci(c: [f64; 2]) -> String {
    format!("[{:+.2}, {:+.2}]", c[0], c[1])
}

fn human(s: &ReplaySummary, out: &std::path::Path) -> String {
    let mut lines = vec![
        (
            "replay",
            format!(
                "{} step{} from {} to {} every {} h",
                s.steps,
                if s.steps == 1 { "" } else { "s" },
                s.from,
                s.to,
                s.step_hours
            ),
        ),
        ("lessons ever active", s.lessons_ever_active.to_string()),
        (
            "evaluated",
            format!(
                "{} trades, {} actions ({} resized)",
                s.uplift.trades, s.uplift.actions, s.uplift.adjusted_actions
            ),
        ),
        (
            "unadjusted total",
            format!("{:+.2} R", s.uplift.base_total_r),
        ),
    ];
    if s.uplift.actions == 0 {
        lines.push((
            "uplift",
            "none to measure: no action of the window was evaluated".to_string(),
        ));
    } else {
        lines.push((
            "uplift total",
            format!("{:+.2} R, 95% CI {}", s.uplift_total_r, ci(s.uplift_ci95)),
        ));
        lines.push(("uplift per trade", format!("{:+.4} R", s.uplift_mean_r)));
    }
    if let Some(p) = &s.placebo {
        lines.push((
            "placebo lessons ever active",
            p.lessons_ever_active.to_string(),
        ));
        lines.push((
            "placebo uplift total",
            format!("{:+.2} R, 95% CI {}", p.uplift_total_r, ci(p.uplift_ci95)),
        ));
    }
    lines.push((
        "time",
        format!(
            "{:.1} s ({:.0} ms per step)",
            s.replay_seconds, s.mean_step_ms
        ),
    ));
    lines.push(("written to", out.display().to_string()));
    let mut text = kv(&lines);
    text.push_str(&uplift_by_override(&s.uplift.by_override));
    if !s.first_active.is_empty() {
        text.push_str("first activations\n");
        for f in s.first_active.iter().take(20) {
            text.push_str(&format!("  {}  {}\n", f.as_of, f.label));
        }
        if s.first_active.len() > 20 {
            text.push_str(&format!(
                "  … {} more in summary.json\n",
                s.first_active.len() - 20
            ));
        }
    }
    text
}

/// The overrides that moved the uplift most, each with its share: where the total comes from.
fn uplift_by_override(by_override: &[learnloop_replay::OverrideUplift]) -> String {
    const SHOWN: usize = 10;
    if by_override.is_empty() {
        return String::new();
    }
    let mut text = String::from("uplift by override (largest first)\n");
    for o in by_override.iter().take(SHOWN) {
        text.push_str(&format!(
            "  {:+8.2} R  {:>6} actions  {}\n",
            o.uplift_r, o.actions, o.label
        ));
    }
    if by_override.len() > SHOWN {
        text.push_str(&format!(
            "  … {} more in summary.json\n",
            by_override.len() - SHOWN
        ));
    }
    text
}
