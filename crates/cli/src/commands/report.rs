//! `learnloop report`: the morning page (SPEC §11.4).

use super::Outcome;
use crate::context::open_store_read_only;
use crate::output::{emit, kv};
use crate::Cli;
use anyhow::Context as _;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Directory for report.html and report.md (created if missing).
    #[arg(long, default_value = "report")]
    pub out: PathBuf,
    /// A replay's output directory (`learnloop replay --out DIR`): adds the walk-forward chart.
    #[arg(long)]
    pub replay: Option<PathBuf>,
    /// Module to report on (default: the first module with a config).
    #[arg(long)]
    pub module: Option<String>,
}

#[derive(serde::Serialize)]
struct Written {
    html: String,
    markdown: String,
    active_lessons: usize,
    changes: usize,
    warnings: Vec<String>,
}

pub fn execute(cli: &Cli, args: &ReportArgs) -> anyhow::Result<Outcome> {
    let conn = open_store_read_only(cli)?;
    if let Some(module) = &args.module {
        let known = learnloop_store::strands::known_modules(&conn)?;
        if !known.contains(module) {
            return Err(crate::errors::usage(format!(
                "--module {module:?}: the store has no data or config of that module (it has: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            )));
        }
    }
    if let Some(dir) = &args.replay {
        if !dir.join("summary.json").is_file() {
            return Err(crate::errors::usage(format!(
                "--replay {}: no replay output there (expected summary.json, as `learnloop replay --out DIR` writes)",
                dir.display()
            )));
        }
    }
    let data = learnloop_report::gather(&conn, args.module.as_deref(), args.replay.as_deref())
        .context("reading what the report shows")?;
    let [html, md] = learnloop_report::write_report(&args.out, &data)
        .with_context(|| format!("writing the report into {}", args.out.display()))?;
    let written = Written {
        html: html.display().to_string(),
        markdown: md.display().to_string(),
        active_lessons: data.lessons.len(),
        changes: data.changes.len(),
        warnings: data.warnings.clone(),
    };
    emit(cli.json, &written, |w| {
        let mut out = kv(&[
            ("report", w.html.clone()),
            ("markdown", w.markdown.clone()),
            ("active lessons", w.active_lessons.to_string()),
            ("changed overrides", w.changes.to_string()),
        ]);
        for warning in &w.warnings {
            out.push_str(&format!("warning: {warning}\n"));
        }
        out
    })?;
    Ok(Outcome::Ok)
}
