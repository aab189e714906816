//! The lesson stage (SPEC §4): pattern_scope_stats → learning_lessons, lesson_candidates,
//! learning_edge_history and learning_latent_factors, inside the caller's transaction. The whole
//! stats table is read once; there is no database round trip per candidate.

mod across;
mod evaluate;
mod explained;
mod family;
#[cfg(test)]
mod fixtures;
mod lattice;
mod levers;
mod lifecycle;
mod rows;
mod shared_scopes;
mod support;
pub(crate) mod trades;
mod verdict;

pub use evaluate::Baseline;
pub use lattice::LatticeMemo;
pub use learnloop_model::config::FIRST_HIERARCHICAL_DIMS;
pub use levers::lesson_levers;
pub use verdict::Verdict;

use evaluate::{evaluate_group, root_tau2, GroupContext, GroupRows, Tested};
use lattice::Lattice;
use learnloop_model::hash::StableHasher;
use learnloop_model::{
    CandidateRow, LoopConfig, RunningStats, StatsRow, StatsView, Timestamp, TradeEvent,
};
use learnloop_store::lessons;
use learnloop_store::Connection;
use rayon::prelude::*;
use rows::{KeptRows, RowRef, StageRows, WithComputed};
use std::collections::BTreeMap;
use std::time::Instant;
use trades::{TradeIndex, TradeIndexBuilder};
use verdict::{judge, select, Judged, SecondLooks};

/// Why the lesson stage failed (the caller rolls back: nothing is written).
#[derive(Debug, thiserror::Error)]
pub enum LessonError {
    /// Reading or writing the store failed.
    #[error(transparent)]
    Store(#[from] learnloop_store::StoreError),
}

/// What a lesson run did, for the run summary.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct LessonReport {
    /// The run's as-of time.
    pub as_of: String,
    /// Each module's mean R over its linked trades.
    pub baselines: BTreeMap<String, Baseline>,
    /// Statistics rows read.
    pub stats_rows: u64,
    /// Subsets with their minimum support: the family of the run (with their incremental tests).
    pub tested: u64,
    /// Hypotheses in the run's families: the first (weighted BH), the shared scopes, the deep
    /// levels and the children families.
    pub family_size: u64,
    /// Two-dim subsets whose weakest contrast had fewer effective trades than this were left out
    /// of the first family by its independent filter (`None`: none left out).
    pub filter_threshold: Option<f64>,
    /// Subsets that passed every test.
    pub passed: u64,
    /// Active lessons after the run.
    pub lessons_active: u64,
    /// Passing subsets left as candidates by the per-pattern limit.
    pub candidates_over_limit: u64,
    /// Lessons that became active in this run.
    pub newly_active: u64,
    /// Lessons retired in this run.
    pub retired: u64,
    /// Latent factors among the active lessons.
    pub factors: u64,
    /// Active lessons with a fitted half-life.
    pub half_lives: u64,
    /// Rows of deep subsets this run tested (and their parents) added to `pattern_scope_stats`
    /// after the stage (SPEC §12; the pipeline's nightly path sets it).
    pub deep_subsets_stored: u64,
    /// Rejected subsets by the test or rule that rejected them.
    pub rejected_by: BTreeMap<String, u64>,
    /// Wall time of the stage, in ms.
    pub duration_ms: u64,
}

/// Stable across runs: derived from the subset's identity only.
pub fn lesson_key(r: &StatsRow) -> String {
    LessonKey::of(&r.module, &r.pattern_key, r.category, &r.scope_values).to_string()
}

/// The key text of the lesson on a subset (`L-` and 16 hex digits).
pub fn lesson_key_of(
    module: &str,
    pattern_key: &str,
    category: learnloop_model::ActionCategory,
    scope_values: &str,
) -> String {
    LessonKey::of(module, pattern_key, category, scope_values).to_string()
}

/// A lesson key as its hash; it is text (`L-` and 16 hex digits) only where a row records it, and
/// the text order is the numeric order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LessonKey(pub u64);

impl LessonKey {
    /// The key of the lesson on a subset.
    pub fn of(
        module: &str,
        pattern_key: &str,
        category: learnloop_model::ActionCategory,
        scope_values: &str,
    ) -> Self {
        Self::in_group(
            Self::group_prefix(module, pattern_key, category),
            scope_values,
        )
    }

    /// The hashing of a group's identity, shared by the keys of its subsets.
    pub(crate) fn group_prefix(
        module: &str,
        pattern_key: &str,
        category: learnloop_model::ActionCategory,
    ) -> StableHasher {
        let mut h = StableHasher::default();
        for part in [module, pattern_key, category.as_str()] {
            h.write(part.as_bytes());
            h.write(&[0x1f]);
        }
        h
    }

    pub(crate) fn in_group(mut prefix: StableHasher, scope_values: &str) -> Self {
        prefix.write(scope_values.as_bytes());
        Self(prefix.finish())
    }

    /// The key a stored text names, if it has the form this stage writes.
    pub fn parse(text: &str) -> Option<Self> {
        let hex = text.strip_prefix("L-")?;
        (hex.len() == 16)
            .then(|| u64::from_str_radix(hex, 16).ok().map(Self))
            .flatten()
    }
}

impl std::fmt::Display for LessonKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "L-{:016x}", self.0)
    }
}

/// Module baselines: mean winsorized R over the linked trades, one observation per trade.
pub fn baselines(conn: &Connection) -> Result<BTreeMap<String, Baseline>, LessonError> {
    let mut acc: BTreeMap<String, RunningStats> = BTreeMap::new();
    for (module, _, _, r) in learnloop_store::events::module_trades(conn)? {
        acc.entry(module).or_default().push(r);
    }
    Ok(acc
        .into_iter()
        .map(|(m, s)| {
            (
                m,
                Baseline {
                    n: s.n,
                    mean: s.mean,
                },
            )
        })
        .collect())
}

/// The lesson stage over the stored `pattern_scope_stats`, streamed a group at a time: only the
/// tested rows (and their nearest parents) are kept in memory. The trade events are read once
/// for the trade-level tests; with `placebo` their R is permuted within time clusters by that
/// seed, as the aggregation of a placebo run did.
pub fn build_lessons(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    placebo: Option<u64>,
) -> Result<LessonReport, LessonError> {
    // The stats are read once, in key order: a small cache serves, and the memory goes to the
    // stage.
    learnloop_store::with_page_cache_mib(conn, learnloop_store::READ_PAGE_CACHE_MIB, || {
        build_lessons_streamed(conn, cfg, as_of, placebo)
    })
}

fn build_lessons_streamed(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    placebo: Option<u64>,
) -> Result<LessonReport, LessonError> {
    let mut clock = PhaseClock::new("lessons");
    let baselines = baselines(conn)?;
    let tau2_roots = root_tau2(&learnloop_store::stats::root_rows(conn)?);
    // The events in canonical order, sorted in Rust: an `ORDER BY` had SQLite's sorter hold a
    // copy of every row as well (its sort and merge were ~12 % of the stage's CPU at 100k
    // trades; sorting here made the stage a fifth faster). A placebo permutes R over all of them
    // first.
    let index = match placebo {
        Some(seed) => {
            let mut events = learnloop_store::events::load_all_events(conn)?;
            crate::shuffle_r_within_clusters(&mut events, seed, cfg.lessons.cluster_days);
            TradeIndex::build(&events, cfg, as_of)
        }
        None => {
            let mut builder = TradeIndexBuilder::new(cfg, as_of);
            learnloop_store::events::for_each_index_event(conn, |e| {
                builder.push(e);
                Ok(())
            })?;
            builder.finish()
        }
    };
    clock.lap("baselines and trades");
    // Every stored row may be tested (by default the table holds only those and their parents):
    // room for all of them from the start, so that neither vector is copied as it grows.
    let stored = usize::try_from(learnloop_store::stats::count(conn)?).unwrap_or(0);
    let mut kept = KeptRows::with_capacity(stored);
    let mut tested: Vec<Tested> = Vec::with_capacity(stored);
    let mut seen = 0u64;
    // Groups are read in batches and tested in parallel; a batch is dropped once its tested
    // rows (and their nearest parents) are kept.
    let mut batch: Vec<Vec<StatsRow>> = Vec::new();
    let mut batch_rows = 0usize;
    let flush = |batch: &mut Vec<Vec<StatsRow>>, kept: &mut KeptRows, tested: &mut Vec<Tested>| {
        let results: Vec<Vec<Tested>> = batch
            .par_iter()
            .map(|rows| {
                let group = GroupRows { rows, offset: 0 };
                let prior = Prior {
                    cfg,
                    baselines: &baselines,
                    tau2_roots: &tau2_roots,
                    index: &index,
                };
                evaluate_one(&group, &prior, None, false).0
            })
            .collect();
        for (rows, local) in batch.iter().zip(results) {
            keep_tested(rows, local, kept, tested);
        }
        batch.clear();
    };
    learnloop_store::stats::for_each_group_of_moments(conn, |rows| {
        seen += rows.len() as u64;
        batch_rows += rows.len();
        batch.push(rows);
        if batch_rows >= LESSON_BATCH_ROWS {
            flush(&mut batch, &mut kept, &mut tested);
            batch_rows = 0;
        }
        Ok(())
    })?;
    flush(&mut batch, &mut kept, &mut tested);
    kept.shrink_to_fit();
    tested.shrink_to_fit();
    // The batches' rows, lattices and cluster sums were freed on the worker threads.
    learnloop_sys::release_freed_memory();
    clock.lap("tests");
    let inputs = Finish {
        rows: &kept,
        // The factors need only the trades' keys and scopes, which a placebo does not permute.
        events: None,
        index: &index,
        stats_rows: seen,
        write_candidates: true,
    };
    finish(conn, cfg, as_of, &inputs, tested, baselines, clock)
}

/// Rows per batch of groups tested in parallel while streaming the stats.
const LESSON_BATCH_ROWS: usize = 200_000;

/// Keep a group's tested rows and their nearest parents in `kept`, remapping the indices.
fn keep_tested(
    rows: &[StatsRow],
    local: Vec<Tested>,
    kept: &mut KeptRows,
    tested: &mut Vec<Tested>,
) {
    let mut remap: BTreeMap<usize, usize> = BTreeMap::new();
    for mut t in local {
        t.map_rows(|i| *remap.entry(i).or_insert_with(|| kept.push(&rows[i])));
        tested.push(t);
    }
}

/// What the caller already holds in memory (the replay): the stats rows (sorted by key) and the
/// trade events (canonical order), so that neither is read again. `lesson_candidates` is left
/// as it is: the replay's steps do not keep their tests.
pub struct InMemory<'a> {
    /// The statistics rows, sorted by key.
    pub rows: StatsView<'a>,
    /// The linked trade events, in canonical order.
    pub events: &'a [TradeEvent],
    /// The groups' lattices kept from the caller's previous step, updated by this one.
    pub lattices: &'a mut LatticeMemo,
}

/// The lesson stage over statistics the caller already holds, e.g. the replay's.
pub fn build_lessons_from(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    input: InMemory<'_>,
) -> Result<LessonReport, LessonError> {
    let rows = &input.rows;
    let mut clock = PhaseClock::new("lessons (in memory)");
    let baselines = baselines(conn)?;
    let all: Vec<GroupRows<'_>> = groups(rows).collect();
    let tau2_roots = root_tau2(all.iter().flat_map(|g| roots_of(g.rows)));
    let events = input.events;
    let index = TradeIndex::build(events, cfg, as_of);
    let prior = Prior {
        cfg,
        baselines: &baselines,
        tau2_roots: &tau2_roots,
        index: &index,
    };
    clock.lap("baselines and trades");
    // Room for every row from the start (see `build_lessons_streamed`).
    let mut tested: Vec<Tested> = Vec::with_capacity(rows.len());
    let memo = input.lattices;
    let mut previous: Vec<Option<Lattice>> = all.iter().map(|g| memo.take(&g.rows[0])).collect();
    memo.forget_rest();
    // Groups are independent: tested in parallel a batch at a time, keeping their order, so
    // that only one batch's results exist twice while they are appended.
    let mut start = 0;
    while start < all.len() {
        let end = batch_end(&all, start);
        let olds: Vec<Option<Lattice>> =
            previous[start..end].iter_mut().map(Option::take).collect();
        let per_group: Vec<(Vec<Tested>, Option<Lattice>)> = all[start..end]
            .par_iter()
            .zip(olds)
            .map(|(g, old)| evaluate_one(g, &prior, old, true))
            .collect();
        for (g, (group_tested, lattice)) in all[start..end].iter().zip(per_group) {
            tested.extend(group_tested);
            if let Some(l) = lattice {
                memo.keep(&g.rows[0], l);
            }
        }
        start = end;
    }
    clock.lap("tests");
    let inputs = Finish {
        rows,
        events: Some(events),
        index: &index,
        stats_rows: rows.len() as u64,
        write_candidates: false,
    };
    finish(conn, cfg, as_of, &inputs, tested, baselines, clock)
}

/// The end of the batch of groups that starts at `start`: at least one group, and groups while
/// the batch has fewer than `LESSON_BATCH_ROWS` rows.
fn batch_end(groups: &[GroupRows<'_>], start: usize) -> usize {
    let mut rows = 0;
    let mut end = start;
    while end < groups.len() && (end == start || rows < LESSON_BATCH_ROWS) {
        rows += groups[end].rows.len();
        end += 1;
    }
    end
}

/// What every group's tests share.
struct Prior<'a> {
    cfg: &'a LoopConfig,
    baselines: &'a BTreeMap<String, Baseline>,
    tau2_roots: &'a BTreeMap<String, f64>,
    index: &'a TradeIndex,
}

impl<'a> Prior<'a> {
    /// The test context of the group of `r`, if its module has a baseline and trades.
    fn context(&self, r: RowRef<'_>) -> Option<GroupContext<'a>> {
        let baseline = *self.baselines.get(r.module)?;
        let id = (r.module.to_string(), r.pattern_key.to_string(), r.category);
        Some(GroupContext {
            cfg: self.cfg,
            baseline,
            root_tau2: self.tau2_roots.get(r.module).copied().unwrap_or(0.0),
            trades: self.index.groups.get(&id)?,
            n_clusters: self.index.module_clusters.get(r.module).copied()?,
        })
    }
}

fn evaluate_one(
    group: &GroupRows<'_>,
    prior: &Prior<'_>,
    previous: Option<Lattice>,
    keep: bool,
) -> (Vec<Tested>, Option<Lattice>) {
    let Some(ctx) = prior.context(RowRef::from(&group.rows[0])) else {
        return (Vec::new(), previous);
    };
    let dims = &prior.cfg.dims;
    let lattice = match previous {
        Some(old) => old.update(group.rows, dims),
        None if keep => Lattice::build_keyed(group.rows, dims),
        None => Lattice::build(group.rows, dims),
    };
    let tested = evaluate_group(group, &lattice, &ctx, FIRST_HIERARCHICAL_DIMS - 1);
    (tested, Some(lattice))
}

/// Everything after the tests: q-values over the whole family, verdicts, selection, lifecycle,
/// factors, candidates. `rows[t.row]` (and `rows[t.nearest_parent]`) are the tested subsets.
struct Finish<'a> {
    rows: &'a dyn StageRows,
    /// The linked trade events when the caller holds them; otherwise the factors stream them.
    events: Option<&'a [TradeEvent]>,
    index: &'a TradeIndex,
    stats_rows: u64,
    write_candidates: bool,
}

fn finish(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    inputs: &Finish<'_>,
    mut tested: Vec<Tested>,
    baselines: BTreeMap<String, Baseline>,
    mut clock: PhaseClock,
) -> Result<LessonReport, LessonError> {
    let inputs_of_decide = DecideInputs {
        cfg,
        as_of,
        baselines: &baselines,
        index: inputs.index,
    };
    let decision = decide(&mut tested, inputs.rows, &inputs_of_decide);
    let (judged, family_size) = (decision.judged, decision.family_size);
    let filter_threshold = decision.filter_threshold;
    let with_computed = WithComputed {
        base: inputs.rows,
        extra: &decision.computed,
    };
    let rows: &dyn StageRows = &with_computed;
    let keys: Vec<LessonKey> = tested.iter().map(|t| t.key).collect();
    clock.lap("verdicts");

    let outcome = lifecycle::apply(conn, cfg, as_of, rows, &tested, &judged, &keys)?;
    clock.lap("lifecycle");
    let factors = support::assign_factors(conn, inputs.events, cfg, as_of, &outcome.active)?;
    clock.lap("factors");
    if inputs.write_candidates {
        write_candidate_rows(conn, cfg, as_of, rows, &tested, &judged, &keys)?;
        clock.lap("candidates");
    }

    let mut rejected_by: BTreeMap<String, u64> = BTreeMap::new();
    for j in judged.iter().filter(|j| j.verdict == Verdict::Rejected) {
        let kind = j.reason.kind().to_string();
        *rejected_by.entry(kind).or_default() += 1;
    }
    let report = LessonReport {
        as_of: as_of.to_rfc3339(),
        baselines,
        stats_rows: inputs.stats_rows,
        tested: tested.len() as u64,
        family_size,
        filter_threshold,
        passed: judged
            .iter()
            .filter(|j| j.verdict != Verdict::Rejected)
            .count() as u64,
        lessons_active: outcome.active.len() as u64,
        candidates_over_limit: judged
            .iter()
            .filter(|j| j.verdict == Verdict::Candidate)
            .count() as u64,
        newly_active: outcome.newly_active,
        retired: outcome.retired,
        factors,
        half_lives: outcome.half_lives,
        deep_subsets_stored: 0,
        rejected_by,
        duration_ms: clock.started.elapsed().as_millis() as u64,
    };
    tracing::info!(
        tested = report.tested,
        active = report.lessons_active,
        retired = report.retired,
        factors = report.factors,
        "lessons built"
    );
    Ok(report)
}

/// What [`decide`] needs besides the tests and rows.
struct DecideInputs<'a> {
    cfg: &'a LoopConfig,
    as_of: Timestamp,
    baselines: &'a BTreeMap<String, Baseline>,
    index: &'a TradeIndex,
}

/// The verdicts of a run, index for index with its tested subsets (deep ones included).
struct Decision {
    judged: Vec<Judged>,
    family_size: u64,
    filter_threshold: Option<f64>,
    /// The deep subsets the family computed: rows `rows.len()..` of the run.
    computed: Vec<StatsRow>,
}

/// The verdicts of a run's tested subsets: the run's family (`family.rs`: SPEC §4.5,
/// docs/statistics.md; it adds the deep subsets it admits to `tested`), each subset judged, then
/// selection within each group. Sets each tested subset's FDR weight and re-test threshold.
fn decide(tested: &mut Vec<Tested>, rows: &dyn StageRows, inputs: &DecideInputs<'_>) -> Decision {
    let cfg = inputs.cfg;
    let no_tau2 = BTreeMap::new();
    let prior = Prior {
        cfg,
        baselines: inputs.baselines,
        tau2_roots: &no_tau2,
        index: inputs.index,
    };
    let context_of = |r: RowRef<'_>| prior.context(r);
    let family_inputs = family::FamilyInputs {
        cfg,
        as_of: inputs.as_of,
        group_of: &context_of,
    };
    let family = family::test_family(tested, rows, &family_inputs);
    let rows = WithComputed {
        base: rows,
        extra: &family.computed,
    };
    let group_of = |t: &Tested| prior.context(rows.row(t.row));
    let (mut judged, children_hypotheses) = judge_and_select(
        tested,
        &rows,
        (family.q, family.second_looks),
        &group_of,
        cfg,
    );
    across::account_for_other_groups(&rows, tested, &mut judged, &prior);
    Decision {
        judged,
        family_size: family.size + children_hypotheses,
        filter_threshold: family.filter_threshold,
        computed: family.computed,
    }
}

/// Each tested subset judged by its q-value, then selection within each group; with
/// `lessons.children_families`, the children of discoveries explained away by a refinement that
/// is no lesson are tested and selection runs again, until no family opens and no explainer is
/// found unconfirmed (`explained.rs`; each parent opens once and each explanation is checked
/// once, so this ends). Returns the verdicts and how many hypotheses the children families tested.
fn judge_and_select<'g>(
    tested: &mut [Tested],
    rows: &dyn StageRows,
    (mut q, mut looks): (Vec<Option<f64>>, SecondLooks),
    group_of: &dyn Fn(&Tested) -> Option<GroupContext<'g>>,
    cfg: &LoopConfig,
) -> (Vec<Judged>, u64) {
    let keys: Vec<LessonKey> = tested.iter().map(|t| t.key).collect();
    let mut families = explained::ChildrenFamilies::default();
    let mut explainers = explained::ExplainerChecks::default();
    let fdr = cfg.lessons.fdr;
    loop {
        let mut judged: Vec<Judged> = tested
            .iter()
            .zip(&q)
            .map(|(t, &q)| judge(t, q, looks.get(&t.row).map_or(&[], Vec::as_slice), cfg))
            .collect();
        select(
            rows,
            tested,
            &mut judged,
            &keys,
            group_of,
            explainers.unconfirmed(),
            cfg,
        );
        if !cfg.lessons.children_families {
            return (judged, 0);
        }
        // First whether each explanation of a children family's discovery holds, then the
        // families of the explanations that do.
        let level = cfg.lessons.explainer_fdr;
        let newly_unconfirmed =
            explained::check_explainers(rows, tested, &judged, (&q, fdr), &mut explainers, level);
        if newly_unconfirmed > 0 {
            continue;
        }
        let found = explained::test_children_of_explained(
            rows,
            tested,
            &judged,
            (&mut q, &mut looks),
            &mut families,
            fdr,
        );
        if found == 0 {
            return (judged, families.hypotheses());
        }
    }
}

/// Wall time of the stage's phases, logged at debug level.
struct PhaseClock {
    what: &'static str,
    started: Instant,
    last: Instant,
    laps: Vec<(&'static str, u128)>,
}

impl PhaseClock {
    fn new(what: &'static str) -> Self {
        let now = Instant::now();
        Self {
            what,
            started: now,
            last: now,
            laps: Vec::new(),
        }
    }

    fn lap(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.laps.push((phase, (now - self.last).as_micros()));
        self.last = now;
    }
}

impl Drop for PhaseClock {
    fn drop(&mut self) {
        tracing::debug!(stage = self.what, phases_us = ?self.laps, "lesson stage phases");
    }
}

/// The root rows (no dims) of a key-sorted group: found by binary search, not a pass over it (the
/// masks order as signed integers, so a mask with bit 63 would sort first).
fn roots_of(rows: &[StatsRow]) -> impl Iterator<Item = &StatsRow> {
    let start = rows.partition_point(|r| (r.scope_mask as i64) < 0);
    rows[start..].iter().take_while(|r| r.scope_mask == 0)
}

/// Contiguous (module, pattern, category) runs of the key-sorted stats.
fn groups<'v, 'a>(rows: &'v StatsView<'a>) -> impl Iterator<Item = GroupRows<'a>> + 'v {
    let same_group = |a: &StatsRow, b: &StatsRow| {
        a.category == b.category && a.pattern_key == b.pattern_key && a.module == b.module
    };
    rows.parts().flat_map(move |(start, part)| {
        let mut offset = start;
        // A sorted part whose ends are one group is that group (the replay's parts are).
        let single = part.len() > 1 && same_group(&part[0], &part[part.len() - 1]);
        part.chunk_by(move |a, b| single || same_group(a, b))
            .map(move |chunk| {
                let g = GroupRows {
                    rows: chunk,
                    offset,
                };
                offset += chunk.len();
                g
            })
    })
}

fn write_candidate_rows(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    rows: &dyn StageRows,
    tested: &[Tested],
    judged: &[Judged],
    keys: &[LessonKey],
) -> Result<(), LessonError> {
    lessons::clear_candidates(conn)?;
    // A run may test millions of subsets: their rows are built and written a chunk at a time.
    for ((tested, judged), keys) in tested
        .chunks(CANDIDATE_CHUNK)
        .zip(judged.chunks(CANDIDATE_CHUNK))
        .zip(keys.chunks(CANDIDATE_CHUNK))
    {
        let decided = Decided {
            tested,
            judged,
            keys,
        };
        lessons::insert_candidates(conn, &candidate_rows(cfg, as_of, rows, decided))?;
    }
    Ok(())
}

/// Candidate rows built and written at once.
const CANDIDATE_CHUNK: usize = 8192;

/// Tested subsets with their verdicts and lesson keys, index for index.
struct Decided<'a> {
    tested: &'a [Tested],
    judged: &'a [Judged],
    keys: &'a [LessonKey],
}

fn candidate_rows(
    cfg: &LoopConfig,
    as_of: Timestamp,
    rows: &dyn StageRows,
    decided: Decided<'_>,
) -> Vec<CandidateRow> {
    decided
        .tested
        .iter()
        .zip(decided.judged)
        .zip(decided.keys)
        .map(|((t, j), key)| {
            let r = rows.row(t.row);
            let parent = t.nearest_parent_row().map(|p| rows.row(p));
            CandidateRow {
                module: r.module.to_string(),
                pattern_key: r.pattern_key.to_string(),
                category: r.category,
                scope_mask: r.scope_mask,
                scope_values_hash: r.scope_values_hash,
                scope_values: r.scope_values.to_string(),
                n_trades: r.n_trades(),
                mean_rr: r.r.mean,
                edge: t.edge,
                shrunk_edge: Some(t.shrunk_edge),
                t_stat: t.t.get(),
                p_value: t.p.get(),
                q_value: j.q,
                parent_scope_values: parent.map(|p| p.scope_values.to_string()),
                parent_mean_rr: parent.map(|p| p.r.mean),
                min_parent_gap: t.min_gap.get(),
                incremental_p_value: j.p_retest,
                // One hypothesis per subset: the incremental test is the hypothesis itself.
                incremental_q_value: None,
                verdict: j.verdict,
                reason: j.reason_text(rows, cfg),
                lesson_key: key.to_string(),
                as_of,
                clusters: Some(t.clusters),
                complement_trades: t.complement.map(u64::from),
                contrast: t.contrast.map(|c| c.as_str().to_string()),
                contrast_df: t.df.get(),
                fdr_weight: t.fdr_weight.get(),
                fdr_family: t.fdr_weight.get().map(|_| t.family.as_str().to_string()),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod key_tests {
    use super::*;
    use learnloop_model::hash::stable_hash;
    use learnloop_model::ActionCategory;

    #[test]
    fn lesson_key_is_the_hash_of_the_joined_identity_and_round_trips_as_text() {
        let scope = r#"{"bucket":"micro","timeframe":"1h"}"#;
        let key = LessonKey::of("dm", "uptrend.S3", ActionCategory::Add, scope);
        let joined = format!("dm\u{1f}uptrend.S3\u{1f}add\u{1f}{scope}");
        assert_eq!(key.0, stable_hash(joined.as_bytes()));
        let text = key.to_string();
        assert_eq!(text, format!("L-{:016x}", stable_hash(joined.as_bytes())));
        assert_eq!(LessonKey::parse(&text), Some(key));
        assert_eq!(LessonKey::parse("L-12"), None);
        assert_eq!(LessonKey::parse("X-0000000000000001"), None);
        // Text order is numeric order (selection breaks ties on the text).
        let (a, b) = (LessonKey(0x0f), LessonKey(0xf0));
        assert!(a < b && a.to_string() < b.to_string());
    }
}
