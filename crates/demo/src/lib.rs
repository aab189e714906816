//! Deterministic synthetic PM strands with planted effects, and the ground truth about them.
//!
//! `generate` simulates a book of positions over a period: each position trades several cycles
//! one after another (entry, adds, trims, exit, then a `position_closed`), scopes follow drifting
//! market regimes, and the R of every trade is noise plus the planted effects its actions carry.
//! With `mess` on, the usual bad input of a production log is added on top (duplicates, a cut-off
//! line, a NaN R, late and mismatched actions, orphan closes, …) and counted in the truth, so a
//! test can check that the loop reports exactly what was injected and finds exactly what was
//! planted. The same options always give byte-identical output.
#![warn(missing_docs)]

mod book;
mod effects;
mod mess;
pub mod packets;
mod random;
mod regime;
mod render;
mod shocks;
mod vocab;

pub use effects::{EffectKind, EffectPlan, MAX_CALIBRATION_SIZES};
pub use shocks::ShockPeriod;

use learnloop_model::{winsorize_r, Timestamp};
use random::{Sampler, Stream};
use regime::{RegimeTimeline, SECS_PER_DAY};
use render::Renderer;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

/// 2026-01-01T00:00:00Z in milliseconds.
const DEFAULT_START_MS: i64 = 1_767_225_600_000;

/// What to generate: size, seed, period, planted effects, mess, shocks.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoOptions {
    /// Closed trade cycles (open cycles and mess come on top).
    pub cycles: usize,
    /// Seed: the same options give byte-identical output.
    pub seed: u64,
    /// Start of the period.
    pub start: Timestamp,
    /// Length of the period in days.
    pub days: u32,
    /// Distinct position ids, each reused for several cycles; 0 means `cycles / 4`.
    pub positions: usize,
    /// Inject bad input (see `MessCounts`).
    pub mess: bool,
    /// Positions whose last cycle is still open at the end of the period.
    pub open_cycles: usize,
    /// Which effects are planted.
    pub effects: EffectPlan,
    /// Standard deviation (R) of a common shock per regime period of several days, added to the
    /// R of every trade entered in it; 0 = no shocks.
    pub regime_shock_sd: f64,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            cycles: 3000,
            seed: 7,
            start: Timestamp::from_millis(DEFAULT_START_MS),
            days: 180,
            positions: 750,
            mess: true,
            open_cycles: 30,
            effects: EffectPlan::Demo,
            regime_shock_sd: 0.0,
        }
    }
}

impl DemoOptions {
    /// Set the number of cycles and scale positions (cycles / 4) and open cycles (1 %) with it.
    pub fn with_cycles(mut self, cycles: usize) -> Self {
        self.cycles = cycles;
        self.positions = (cycles / 4).max(1);
        self.open_cycles = cycles / 100;
        self
    }

    fn effective_positions(&self) -> usize {
        if self.positions == 0 {
            (self.cycles / 4).max(1)
        } else {
            self.positions
        }
    }

    fn period_secs(&self) -> i64 {
        i64::from(self.days.max(1)) * SECS_PER_DAY
    }
}

/// An effect planted in the synthetic data: the truth `demo check` compares lessons with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlantedEffect {
    /// Full key, e.g. `module=pm|pattern_key=uptrend.S2.add`.
    pub pattern_key: String,
    /// The action category it applies to.
    pub action_category: String,
    /// The scope subset where the effect lives (normalised values; empty = the whole pattern).
    pub scope: BTreeMap<String, String>,
    /// Added once to the R of every trade with at least one matching action.
    pub effect_r: f64,
    /// The effect applies only to trades entered after this time; `None` = the whole period.
    pub starts_at: Option<Timestamp>,
    /// The effect applies only to trades entered at or before this time; `None` = to the end.
    #[serde(default)]
    pub stops_at: Option<Timestamp>,
    /// What the effect exercises (one dim, interaction, exception, …).
    #[serde(default)]
    pub kind: EffectKind,
    /// Closed trades of the generated sample that carry the effect.
    #[serde(default)]
    pub matching_trades: usize,
    /// In words, for reports.
    #[serde(default)]
    pub description: String,
    /// Entries with the same id are one effect planted in several groups (a position-wide
    /// effect): a trade carries it once, however many of its groups list it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub effect_id: Option<usize>,
}

/// How many bad or incomplete items were injected. Everything is added on top of the clean
/// closed cycles; nothing clean is changed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessCounts {
    /// Lines repeated verbatim (same id, same text), arriving later than the original.
    pub duplicate_lines: usize,
    /// Lines re-using an existing action's id with different content (size_frac, price).
    pub conflicting_duplicates: usize,
    /// A second close of an already closed trade, under a new strand id.
    pub duplicate_closes: usize,
    /// Lines cut off mid-way (not JSON).
    pub malformed_lines: usize,
    /// Closes whose `rr` is a bare `NaN`.
    pub nan_rr_closes: usize,
    /// Closes with no position_id anywhere.
    pub missing_position_id_closes: usize,
    /// Actions whose `action_category` is outside entry | add | trim | exit.
    pub unknown_category_actions: usize,
    /// Actions stamped after their cycle's close, carrying that cycle's trade_id.
    pub late_actions: usize,
    /// Actions inside a cycle's window carrying the next cycle's trade_id.
    pub trade_id_mismatches: usize,
    /// Valid closes of positions that logged no actions.
    pub orphan_closes: usize,
    /// Cycles with actions but no close yet (written whether or not `mess` is on).
    pub open_cycles: usize,
    /// Actions of those open cycles.
    pub open_cycle_actions: usize,
}

impl MessCounts {
    /// Lines a correct ingest/link puts into quarantine: malformed, conflicting duplicates,
    /// NaN R, missing position_id, unknown category and duplicate closes.
    pub fn quarantine_worthy(&self) -> usize {
        self.malformed_lines
            + self.conflicting_duplicates
            + self.nan_rr_closes
            + self.missing_position_id_closes
            + self.unknown_category_actions
            + self.duplicate_closes
    }
}

/// What was generated: planted effects, injected mess and figures a correct loop reproduces.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GroundTruth {
    /// The seed the data came from.
    pub seed: u64,
    /// Clean closed cycles: what a correct loop links.
    pub cycles: usize,
    /// The planted effects.
    pub effects: Vec<PlantedEffect>,
    /// Mean winsorized R over the clean closed cycles (6 decimals): the baseline a correct loop
    /// computes.
    pub baseline_mean_r: f64,
    /// The bad input injected.
    pub mess: MessCounts,
    /// Mean of the R noise before effects.
    #[serde(default)]
    pub noise_mean_r: f64,
    /// Closed trades with |R| > 10 (moonshots and rugs, to exercise winsorization).
    #[serde(default)]
    pub extreme_trades: usize,
    /// Lines written.
    #[serde(default)]
    pub lines: usize,
    /// Start of the period.
    pub period_start: Option<Timestamp>,
    /// End of the period.
    pub period_end: Option<Timestamp>,
    /// The common shocks added to every trade entered in each period (empty without shocks).
    #[serde(default)]
    pub regime_shocks: Vec<ShockPeriod>,
}

/// Generate the strands (JSON Lines, ordered by time; re-sent lines arrive a little late).
pub fn generate(opts: &DemoOptions) -> (Vec<String>, GroundTruth) {
    let mut lines = Vec::with_capacity(opts.cycles * 9);
    let truth = generate_into(opts, |line| {
        lines.push(line.to_string());
        Ok::<(), Infallible>(())
    });
    match truth {
        Ok(truth) => (lines, truth),
        Err(never) => match never {},
    }
}

/// Write the strands to `out` and the ground truth as pretty JSON to `<out>.truth.json`.
pub fn write_jsonl(opts: &DemoOptions, out: &Path) -> io::Result<GroundTruth> {
    let mut writer = BufWriter::with_capacity(1 << 20, std::fs::File::create(out)?);
    let truth = generate_into(opts, |line| {
        writer.write_all(line.as_bytes())?;
        writer.write_all(b"\n")
    })?;
    writer.flush()?;
    let truth_json = serde_json::to_string_pretty(&truth).map_err(io::Error::other)?;
    std::fs::write(truth_path(out), truth_json + "\n")?;
    Ok(truth)
}

/// Where `write_jsonl` puts the ground truth for `out`.
pub fn truth_path(out: &Path) -> PathBuf {
    let mut name = out.as_os_str().to_owned();
    name.push(".truth.json");
    PathBuf::from(name)
}

/// Where a line comes from, so that lines are rendered only once they are in order.
#[derive(Clone, Copy)]
enum Source {
    Action { cycle: u32, index: u32 },
    Close { cycle: u32 },
    Extra(u32),
}

/// Generate, handing each line (in output order) to `sink`; stops at the sink's first error.
fn generate_into<E>(
    opts: &DemoOptions,
    mut sink: impl FnMut(&str) -> Result<(), E>,
) -> Result<GroundTruth, E> {
    let period_secs = opts.period_secs();
    let start_ms = opts.start.millis();
    let rules = effects::planted_rules(&opts.effects, period_secs, opts.seed);

    let mut regime_sampler = Sampler::new(opts.seed, Stream::Regimes);
    let regimes = RegimeTimeline::build(
        &mut regime_sampler,
        period_secs,
        vocab::MARKET_FAMILIES.len(),
    );
    let mut book = book::build_closed_book(
        &mut Sampler::new(opts.seed, Stream::Book),
        &regimes,
        &rules,
        opts.cycles,
        opts.effective_positions(),
        period_secs,
    );
    // Shocks come from their own stream: the same seed gives the same book with or without them.
    let shocks = shocks::draw(
        &mut Sampler::new(opts.seed, Stream::Shocks),
        period_secs,
        opts.regime_shock_sd,
    );
    shocks::apply(&shocks, &mut book);
    let open_hosts = book::add_open_cycles(
        &mut book,
        &mut Sampler::new(opts.seed, Stream::OpenCycles),
        &regimes,
        opts.open_cycles,
    );
    let mut mess_sampler = Sampler::new(opts.seed, Stream::Mess);
    let ghosts = opts
        .mess
        .then(|| mess::add_ghosts(&mut book, &mut mess_sampler, &regimes));

    let renderer = Renderer::new(&book, &regimes, start_ms);
    let (extras, mut counts) = match &ghosts {
        Some(g) => mess::render_mess(&renderer, &mut mess_sampler, &regimes, g, &open_hosts),
        None => (Vec::new(), MessCounts::default()),
    };
    counts.open_cycles = open_hosts.len();
    counts.open_cycle_actions = open_hosts
        .iter()
        .map(|&c| book.cycles[c].actions.len())
        .sum();

    let mut events = Vec::with_capacity(book.cycles.len() * 9 + extras.len());
    for (ci, cycle) in book.cycles.iter().enumerate() {
        for (ai, action) in cycle.actions.iter().enumerate() {
            events.push((
                renderer.millis(action.secs),
                Source::Action {
                    cycle: ci as u32,
                    index: ai as u32,
                },
            ));
        }
        if cycle.closed {
            events.push((
                renderer.millis(cycle.close_secs),
                Source::Close { cycle: ci as u32 },
            ));
        }
    }
    for (i, e) in extras.iter().enumerate() {
        events.push((e.sort_ms, Source::Extra(i as u32)));
    }
    // Stable sort: lines with equal times keep their creation order, so output is reproducible.
    events.sort_by_key(|(ms, _)| *ms);

    let mut line = String::with_capacity(2048);
    for (_, source) in &events {
        line.clear();
        match *source {
            Source::Action { cycle, index } => {
                renderer.clean_action(&mut line, &book.cycles[cycle as usize], index as usize)
            }
            Source::Close { cycle } => {
                renderer.clean_close(&mut line, &book.cycles[cycle as usize])
            }
            Source::Extra(i) => line.push_str(&extras[i as usize].text),
        }
        sink(&line)?;
    }

    let closed: Vec<&book::Cycle> = book.closed_cycles().collect();
    let planted = rules
        .iter()
        .enumerate()
        .flat_map(|(id, rule)| rule.planted_entries(id, start_ms, &closed))
        .collect();
    let baseline_mean_r = if closed.is_empty() {
        0.0
    } else {
        // Rounded so that the value survives a JSON round trip exactly.
        let mean = closed.iter().map(|c| winsorize_r(c.rr)).sum::<f64>() / closed.len() as f64;
        (mean * 1e6).round() / 1e6
    };
    Ok(GroundTruth {
        seed: opts.seed,
        cycles: closed.len(),
        effects: planted,
        baseline_mean_r,
        mess: counts,
        noise_mean_r: book::noise_mean_r(),
        extreme_trades: closed.iter().filter(|c| c.rr.abs() > 10.0).count(),
        lines: events.len(),
        period_start: Some(opts.start),
        period_end: Some(Timestamp::from_millis(start_ms + period_secs * 1000)),
        regime_shocks: shocks::to_truth(&shocks, start_ms),
    })
}
