//! `lessons`: see what the loop learned (`lessons list`, `lessons show KEY`), or run the lesson
//! stage (`lessons build`, or bare `lessons` with the stage's flags, as SPEC §9 lists it).

use super::run::{execute_stage, StageArgs};
use super::Outcome;
use crate::context::open_store_read_only;
use crate::output::{emit, stored_scope_text, subset_label};
use crate::Cli;
use clap::{Args, Subcommand, ValueEnum};
use learnloop_model::pattern::short_pattern_key;
use learnloop_model::{EdgePoint, LessonRow, LessonStatus};
use learnloop_overrides::{Lever, Levers};

#[derive(Args, Debug)]
#[command(args_conflicts_with_subcommands = true)]
pub struct LessonsArgs {
    #[command(subcommand)]
    pub action: Option<LessonsAction>,
    /// Without a subcommand: run the lesson stage with these flags.
    #[command(flatten)]
    pub stage: StageArgs,
}

#[derive(Subcommand, Debug)]
pub enum LessonsAction {
    /// Run the lesson stage (learning_lessons, lesson_candidates, factors, edge history).
    Build(StageArgs),
    /// The lessons, strongest evidence first (default: the active ones).
    List(ListArgs),
    /// One lesson in full, with its edge history.
    Show(ShowArgs),
}

#[derive(Args, Debug)]
pub struct ListArgs {
    /// Which lessons.
    #[arg(long, value_enum, default_value_t = StatusFilter::Active)]
    pub status: StatusFilter,
    /// Only this pattern (short `uptrend.S2.add` or full key).
    #[arg(long)]
    pub pattern: Option<String>,
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    /// The lesson key (`L-` and 16 hex digits, as `lessons list` prints it).
    pub key: String,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, ValueEnum)]
pub enum StatusFilter {
    Active,
    Candidate,
    Retired,
    All,
}

impl StatusFilter {
    fn admits(self, status: LessonStatus) -> bool {
        match self {
            StatusFilter::All => true,
            StatusFilter::Active => status == LessonStatus::Active,
            StatusFilter::Candidate => status == LessonStatus::Candidate,
            StatusFilter::Retired => status == LessonStatus::Retired,
        }
    }
}

pub fn execute(cli: &Cli, args: &LessonsArgs) -> anyhow::Result<Outcome> {
    match &args.action {
        None => execute_stage(cli, &args.stage, learnloop_pipeline::Stage::Lessons),
        Some(LessonsAction::Build(stage)) => {
            execute_stage(cli, stage, learnloop_pipeline::Stage::Lessons)
        }
        Some(LessonsAction::List(list)) => execute_list(cli, list),
        Some(LessonsAction::Show(show)) => execute_show(cli, show),
    }
}

fn execute_list(cli: &Cli, args: &ListArgs) -> anyhow::Result<Outcome> {
    let conn = open_store_read_only(cli)?;
    let mut rows: Vec<LessonRow> = learnloop_store::lessons::all_lessons(&conn)?
        .into_iter()
        .filter(|l| args.status.admits(l.status))
        .filter(|l| {
            args.pattern
                .as_deref()
                .is_none_or(|p| l.pattern_key == p || short_pattern_key(&l.pattern_key) == p)
        })
        .collect();
    rows.sort_by(|a, b| {
        a.q_value
            .unwrap_or(1.0)
            .total_cmp(&b.q_value.unwrap_or(1.0))
            .then_with(|| a.lesson_key.cmp(&b.lesson_key))
    });
    emit(cli.json, &rows, |rows| table(rows))?;
    Ok(Outcome::Ok)
}

#[derive(serde::Serialize)]
struct Shown {
    lesson: LessonRow,
    edge_history: Vec<EdgePoint>,
}

fn execute_show(cli: &Cli, args: &ShowArgs) -> anyhow::Result<Outcome> {
    let conn = open_store_read_only(cli)?;
    let Some(lesson) = learnloop_store::lessons::lesson(&conn, &args.key)? else {
        return Err(crate::errors::usage(format!(
            "no lesson {:?} in this store (`learnloop lessons list --status all` lists them)",
            args.key
        )));
    };
    let shown = Shown {
        edge_history: learnloop_store::lessons::edge_points(&conn, &lesson.lesson_key)?,
        lesson,
    };
    emit(cli.json, &shown, detail)?;
    Ok(Outcome::Ok)
}

/// `uptrend.S3.add · add {bucket=micro, timeframe=1h}`.
pub(crate) fn lesson_label(l: &LessonRow) -> String {
    subset_label(
        &l.pattern_key,
        l.category.as_str(),
        &stored_scope_text(&l.scope_values),
    )
}

fn number(v: Option<f64>, decimals: usize) -> String {
    v.map_or("—".to_string(), |v| format!("{v:.decimals$}"))
}

/// Levers as stored: a JSON object of lever name → value.
pub(crate) fn levers_json(levers: &Levers) -> String {
    serde_json::to_string(levers).unwrap_or_default()
}

/// The size multiplier among the levers, if any.
pub(crate) fn size_mult(levers: &Levers) -> Option<f64> {
    levers.get(learnloop_overrides::Lever::SizeMult)
}

fn table(rows: &[LessonRow]) -> String {
    if rows.is_empty() {
        return "no lessons\n".to_string();
    }
    let mut out = format!(
        "{:<18} {:<9} {:>6} {:>7} {:>7} {:>8} {:>5}  {:<10}  lesson\n",
        "key", "status", "trades", "edge", "shrunk", "q", "lever", "since"
    );
    for l in rows {
        out.push_str(&format!(
            "{:<18} {:<9} {:>6} {:>+7.2} {:>+7.2} {:>8} {:>5}  {:<10}  {}\n",
            l.lesson_key,
            l.status,
            l.n_trades,
            l.edge,
            l.shrunk_edge,
            l.q_value.map_or("—".into(), |q| format!("{q:.2e}")),
            number(l.levers.get(Lever::SizeMult), 2),
            l.created_at
                .map_or("—".to_string(), |t| t.to_rfc3339()[..10].to_string()),
            lesson_label(l),
        ));
    }
    out
}

fn detail(s: &Shown) -> String {
    let l = &s.lesson;
    let mut out = crate::output::kv(&[
        ("lesson", l.lesson_key.clone()),
        ("scope", lesson_label(l)),
        (
            "status",
            match &l.status_reason {
                Some(r) => format!("{} ({r})", l.status),
                None => l.status.to_string(),
            },
        ),
        ("trades", l.n_trades.to_string()),
        ("mean R", format!("{:+.3}", l.mean_rr)),
        (
            "edge",
            format!("{:+.3} (shrunk {:+.3})", l.edge, l.shrunk_edge),
        ),
        (
            "t / p / q",
            format!(
                "{} / {} / {}",
                number(l.t_stat, 2),
                l.p_value.map_or("—".into(), |p| format!("{p:.2e}")),
                l.q_value.map_or("—".into(), |q| format!("{q:.2e}"))
            ),
        ),
        (
            "half-life",
            // SPEC §4.10: only a significant decline is fitted; otherwise the config's default.
            l.half_life_hours.map_or_else(
                || {
                    "the default (materialize.default_half_life_hours): no significant decline"
                        .into()
                },
                |h| format!("{h:.0} h (fitted to a significant decline)"),
            ),
        ),
        ("levers", levers_json(&l.levers)),
        (
            "factor",
            l.latent_factor_id.clone().unwrap_or_else(|| "—".into()),
        ),
        (
            "first active",
            l.created_at.map_or("—".into(), |t| t.to_rfc3339()),
        ),
        ("updated", l.updated_at.to_rfc3339()),
    ]);
    if !s.edge_history.is_empty() {
        out.push_str("edge history (as of, edge, shrunk, trades)\n");
        for p in &s.edge_history {
            out.push_str(&format!(
                "  {}  {:+.3}  {:+.3}  {}\n",
                p.as_of.to_rfc3339(),
                p.edge,
                p.shrunk_edge,
                p.n_trades
            ));
        }
    }
    out
}
