//! Depth-first subset enumeration with support pruning.
//!
//! Work is split per group into one task per child of the root (a first dimension and one of its
//! values), run in parallel; each task walks its subtree, partitioning observations with a
//! counting sort by the next dimension's value and skipping values with too few observations
//! before any statistic is computed. Groups are produced one at a time, so memory is bounded by
//! the largest group, and a consumer can write one group while the next is computed.

use crate::prepare::{Group, Prepared};
use learnloop_model::config::FIRST_HIERARCHICAL_DIMS;
use learnloop_model::scope::ScopeKeyPath;
use learnloop_model::stats::OutcomeStats;
use learnloop_model::{LoopConfig, StatsRow, Timestamp};
use rayon::prelude::*;

/// What the subset enumeration did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct AggregateCounters {
    /// Subsets whose statistics were computed (stored or pruned).
    pub subsets_evaluated: u64,
    /// Trade observations folded into those subsets: the subset updates actually performed.
    pub subset_updates: u64,
    /// Subsets skipped for having fewer than `store_min_trades` trades (not stored, not expanded).
    pub subsets_pruned: u64,
    /// Subsets skipped for holding exactly the actions of a parent (a dimension constant within
    /// it: SPEC §4.4, §12, stored once, as the parent).
    #[serde(default)]
    pub duplicates_skipped: u64,
    /// Rows stored.
    pub rows: u64,
}

impl AggregateCounters {
    fn add(&mut self, o: &AggregateCounters) {
        self.subsets_evaluated += o.subsets_evaluated;
        self.subset_updates += o.subset_updates;
        self.subsets_pruned += o.subsets_pruned;
        self.duplicates_skipped += o.duplicates_skipped;
        self.rows += o.rows;
    }
}

/// One stored subset of a group, with its key rendered.
#[derive(Debug, Clone, PartialEq)]
pub struct SubsetRow {
    /// Bit mask of the subset's dimensions.
    pub mask: u64,
    /// Sorted-key JSON of its pairs.
    pub scope_values: String,
    /// Stable hash of `scope_values`.
    pub scope_values_hash: u64,
    /// Its statistics.
    pub stats: OutcomeStats,
}

impl SubsetRow {
    /// The row, borrowed.
    pub fn as_ref(&self) -> SubsetRowRef<'_> {
        SubsetRowRef {
            mask: self.mask,
            scope_values: &self.scope_values,
            scope_values_hash: self.scope_values_hash,
            stats: &self.stats,
        }
    }
}

/// The stored subsets of one group, read in the table's key order. They stay in the parts the
/// walk's tasks built, with an index that orders them: copying half a million wide rows (and
/// their texts) into key order cost a pass over ~85 MB of fresh memory per exhaustive aggregate
/// (docs/benchmarks.md, session 20).
#[derive(Debug, Default)]
pub struct GroupRows {
    parts: Vec<RowPart>,
    /// Each row's (mask, hash) as SQLite orders them (signed), then its part and place in it.
    order: Vec<(i64, i64, u32, u32)>,
}

/// The rows one task of the walk produced, in its order, their scope texts back to back in one
/// buffer: one allocation per part instead of one per row. An exhaustive aggregate keeps half a
/// million rows, and allocating each text on a computing thread and freeing it on the writing
/// one cost ~0.2 CPU-s, an eighth of the stage (docs/benchmarks.md, session 18).
#[derive(Debug, Default)]
struct RowPart {
    texts: String,
    rows: Vec<KeyedStats>,
}

/// A row of a [`RowPart`]: its key, with its scope text's place in the part's buffer.
#[derive(Debug)]
struct KeyedStats {
    mask: u64,
    scope_values_hash: u64,
    text: std::ops::Range<usize>,
    stats: OutcomeStats,
}

/// One row of [`GroupRows`], borrowed.
#[derive(Debug, Clone, Copy)]
pub struct SubsetRowRef<'a> {
    /// Bit mask of the subset's dimensions.
    pub mask: u64,
    /// Sorted-key JSON of its pairs.
    pub scope_values: &'a str,
    /// Stable hash of `scope_values`.
    pub scope_values_hash: u64,
    /// Its statistics.
    pub stats: &'a OutcomeStats,
}

impl GroupRows {
    /// The rows of `parts`, to be read in the table's key order. SQLite orders the INTEGER
    /// columns as signed: sort the same way so inserts append. Sorting small keys beats moving
    /// the wide rows.
    fn in_key_order(parts: Vec<RowPart>) -> Self {
        let mut order: Vec<(i64, i64, u32, u32)> = parts
            .iter()
            .enumerate()
            .flat_map(|(p, part)| {
                part.rows.iter().enumerate().map(move |(i, r)| {
                    (
                        r.mask as i64,
                        r.scope_values_hash as i64,
                        p as u32,
                        i as u32,
                    )
                })
            })
            .collect();
        order.sort_unstable();
        Self { parts, order }
    }

    /// The number of rows.
    pub fn len(&self) -> usize {
        self.order.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.order.is_empty()
    }

    /// The rows in key order.
    pub fn iter(&self) -> impl ExactSizeIterator<Item = SubsetRowRef<'_>> {
        self.order.iter().map(|&(_, _, p, i)| {
            let (part, r) = self.place(p, i);
            SubsetRowRef {
                mask: r.mask,
                scope_values: &part.texts[r.text.clone()],
                scope_values_hash: r.scope_values_hash,
                stats: &r.stats,
            }
        })
    }

    /// Row `i` of part `p`, with its part (which holds its text).
    fn place(&self, p: u32, i: u32) -> (&RowPart, &KeyedStats) {
        let part = &self.parts[p as usize];
        (part, &part.rows[i as usize])
    }
}

impl learnloop_store::stats::SubsetRows for GroupRows {
    fn len(&self) -> usize {
        self.order.len()
    }
    /// Read from the index alone, without visiting the row (the rows lie scattered over the
    /// parts, a cache miss each).
    fn key(&self, i: usize) -> (u64, u64) {
        let (mask, hash, _, _) = self.order[i];
        (mask as u64, hash as u64)
    }
    fn stats(&self, i: usize) -> &OutcomeStats {
        let (_, _, p, r) = self.order[i];
        &self.place(p, r).1.stats
    }
    fn scope_values(&self, i: usize) -> &str {
        let (_, _, p, r) = self.order[i];
        let (part, row) = self.place(p, r);
        &part.texts[row.text.clone()]
    }
}

impl SubsetRowRef<'_> {
    /// The row as a table row of `group` as of `as_of`, owning its text.
    pub fn to_stats_row(self, group: &Group, as_of: Timestamp) -> StatsRow {
        StatsRow {
            module: group.module.clone(),
            pattern_key: group.pattern_key.clone(),
            category: group.category,
            scope_mask: self.mask,
            scope_values: self.scope_values.to_owned(),
            scope_values_hash: self.scope_values_hash,
            stats: *self.stats,
            as_of,
        }
    }
}

/// What the enumeration stores and expands: subsets up to `k_max` dims, a k-dim subset stored
/// when it has at least `min_trades(k)` trades. The thresholds never decrease with k, so a subset
/// below its threshold has no stored refinement (a refinement has at most its trades) and its
/// subtree is skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest subset size enumerated.
    pub k_max: u32,
    /// Index k: the threshold of k-dim subsets.
    min_trades: [u64; MAX_SIZE + 1],
    /// Skip (do not store, do not expand) a subset whose actions are exactly a parent's: the
    /// default enumeration, which stops at two dims (SPEC §12: identical trade sets stored once).
    skip_duplicates: bool,
}

const MAX_SIZE: usize = learnloop_model::dims::MAX_DIMS;

impl Limits {
    /// Every subset of at most `k_max` dims with at least `min_trades` trades (the exhaustive
    /// enumeration).
    pub fn flat(k_max: u32, min_trades: u64) -> Self {
        Self {
            k_max,
            min_trades: [min_trades.max(1); MAX_SIZE + 1],
            skip_duplicates: false,
        }
    }

    /// Subsets of any size, a k-dim one stored when it has at least `per_size(j)` trades for some
    /// j ≥ k (the running minimum from the largest size down, so thresholds never decrease and
    /// every subset with `per_size(k)` trades is kept together with its parents).
    pub fn by_size(per_size: impl Fn(u32) -> u64) -> Self {
        let mut min_trades = [0u64; MAX_SIZE + 1];
        let mut running = u64::MAX;
        for k in (0..=MAX_SIZE).rev() {
            running = running.min(per_size(k as u32).max(1));
            min_trades[k] = running;
        }
        Self {
            k_max: MAX_SIZE as u32,
            min_trades,
            skip_duplicates: false,
        }
    }

    /// The configured enumeration (SPEC §3, §12): with `aggregate.k_max` set, the exhaustive one
    /// (every subset up to k_max dims with `store_min_trades`); with `store_min_trades` (for
    /// analysts), every subset of any size with the lesson stage's minimum support for its size or
    /// that many trades; by default, the subsets of fewer than `FIRST_HIERARCHICAL_DIMS` dims
    /// with their minimum support (the lesson stage computes deeper ones under its discoveries).
    pub fn from_config(cfg: &LoopConfig) -> Self {
        match (cfg.aggregate.k_max, cfg.aggregate.store_min_trades) {
            (Some(k_max), _) => Self::flat(k_max, cfg.store_min_trades()),
            (None, Some(_)) => Self::by_size(|k| cfg.stored_min_trades(k)),
            // The lesson stage computes deeper subsets itself, under its discoveries only.
            (None, None) => Self {
                k_max: FIRST_HIERARCHICAL_DIMS - 1,
                skip_duplicates: true,
                ..Self::by_size(|k| cfg.stored_min_trades(k))
            },
        }
    }

    /// Whether a subset holding exactly a parent's actions is skipped (the default enumeration).
    pub fn skips_duplicates(&self) -> bool {
        self.skip_duplicates
    }

    /// The fewest trades a stored subset of `dims` dimensions has.
    pub fn min_trades(&self, dims: usize) -> u64 {
        self.min_trades[dims.min(MAX_SIZE)]
    }

    /// The same limits, no deeper than `dims` (there are no larger subsets).
    fn within(self, dims: usize) -> Self {
        Self {
            k_max: self.k_max.min(dims as u32),
            ..self
        }
    }
}

/// Rows the computing thread may hold ahead of the sink (beyond the group being consumed): enough
/// for both threads to stay busy across groups of very uneven size (measured on 8,000 trades: the
/// compute-and-write phase 15-25 % shorter than with one group ahead), few enough that a large
/// book's rows are never all held at once.
const ROWS_AHEAD: usize = 250_000;

/// Compute the rows of every group in key order and hand each group's rows, sorted by
/// (mask, hash), to `sink`. Later groups are computed while `sink` consumes earlier ones, up to
/// 250,000 rows ahead (`ROWS_AHEAD`).
pub fn compute_each<E: Send>(
    p: &Prepared,
    limits: Limits,
    mut sink: impl FnMut(&Group, &GroupRows) -> Result<(), E>,
) -> Result<AggregateCounters, E> {
    let ((), counters) = compute_each_after(p, limits, || Ok(()), |(), g, rows| sink(g, rows))?;
    Ok(counters)
}

/// [`compute_each`], the consumer running `start` once the first group is computed, while the
/// next ones are (the stage clears the stored rows then, so that the clearing overlaps the
/// computing), then handing what `start` made to `sink` with each group. Returns it with the
/// counters. `start` runs even when there are no groups.
pub fn compute_each_after<W, E: Send>(
    p: &Prepared,
    limits: Limits,
    start: impl FnOnce() -> Result<W, E>,
    mut sink: impl FnMut(&mut W, &Group, &GroupRows) -> Result<(), E>,
) -> Result<(W, AggregateCounters), E> {
    compute_each_annotated_after(
        p,
        limits,
        |_, _| (),
        start,
        |made, g, rows, ()| sink(made, g, rows),
    )
}

/// [`compute_each_after`], with `annotate` run on each group's rows on the computing side (not on
/// the consumer's thread, which the stage's writer keeps busy) and its result handed to `sink`
/// with them.
pub fn compute_each_annotated_after<A: Send, W, E: Send>(
    p: &Prepared,
    limits: Limits,
    annotate: impl Fn(&Group, &GroupRows) -> A + Sync,
    start: impl FnOnce() -> Result<W, E>,
    mut sink: impl FnMut(&mut W, &Group, &GroupRows, A) -> Result<(), E>,
) -> Result<(W, AggregateCounters), E> {
    let limits = limits.within(p.dims);
    let (tx, rx) = std::sync::mpsc::channel::<(usize, GroupRows, A, AggregateCounters)>();
    let annotate = &annotate;
    let rows_ahead = RowsAhead::default();
    let ahead = &rows_ahead;
    std::thread::scope(|scope| {
        // `tx` moves in, so that the receiving loop below ends if this thread does (a panic).
        scope.spawn(move || {
            for g in 0..p.groups.len() {
                let (rows, counters) = compute_group(p, &p.groups[g], limits);
                let annotation = annotate(&p.groups[g], &rows);
                if !ahead.add(rows.len()) || tx.send((g, rows, annotation, counters)).is_err() {
                    return; // the consumer stopped on an error
                }
            }
        });
        // Dropped last, also when `start` or the sink panics: a producer waiting for room would
        // otherwise wait forever, and the scope for it.
        let _release = ReleaseOnDrop(ahead);
        let consumed = (|| {
            let mut rx = rx.into_iter().peekable();
            // Once the first group is computed: its computing has the machine to itself.
            rx.peek();
            let mut made = start()?;
            let mut total = AggregateCounters::default();
            for (g, rows, annotation, counters) in rx {
                ahead.remove(rows.len());
                total.add(&counters);
                sink(&mut made, &p.groups[g], &rows, annotation)?;
            }
            Ok((made, total))
        })();
        consumed
    })
}

/// Stops [`RowsAhead`] when dropped (see [`compute_each_after`]).
struct ReleaseOnDrop<'a>(&'a RowsAhead);

impl Drop for ReleaseOnDrop<'_> {
    fn drop(&mut self) {
        self.0.stop();
    }
}

/// The rows computed and not yet taken by the sink, which the computing thread waits on.
#[derive(Default)]
struct RowsAhead {
    held: std::sync::Mutex<(usize, bool)>,
    changed: std::sync::Condvar,
}

impl RowsAhead {
    /// Wait until fewer than [`ROWS_AHEAD`] rows are held, then count `n` more; false once the
    /// consumer has stopped.
    fn add(&self, n: usize) -> bool {
        let held = self
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let mut held = self
            .changed
            .wait_while(held, |(rows, stopped)| *rows >= ROWS_AHEAD && !*stopped)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        held.0 += n;
        !held.1
    }

    fn remove(&self, n: usize) {
        self.update(|held| held.0 -= n);
    }

    /// The consumer is done (or failed): release a waiting producer for good.
    fn stop(&self) {
        self.update(|held| held.1 = true);
    }

    fn update(&self, change: impl FnOnce(&mut (usize, bool))) {
        change(
            &mut self
                .held
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        );
        self.changed.notify_all();
    }
}

/// Every row, collected (for tests and in-memory callers).
pub struct ComputeOutput {
    /// The rows, in group then subset order.
    pub rows: Vec<StatsRow>,
    /// What the enumeration did.
    pub counters: AggregateCounters,
}

/// Enumerate every group of `p` under `limits` and collect the rows (no store).
pub fn compute(p: &Prepared, limits: Limits, as_of: Timestamp) -> ComputeOutput {
    let mut rows = Vec::new();
    let counters = compute_each::<()>(p, limits, |g, subset_rows: &GroupRows| {
        rows.extend(subset_rows.iter().map(|r| r.to_stats_row(g, as_of)));
        Ok(())
    })
    .unwrap_or_default();
    ComputeOutput { rows, counters }
}

pub(crate) fn compute_group(
    p: &Prepared,
    group: &Group,
    limits: Limits,
) -> (GroupRows, AggregateCounters) {
    let order = dims_by_name(p);
    let (parts, mut counters) = walk_group(p, group, limits, &order, || RowSink::new(p));
    let parts: Vec<RowPart> = parts.into_iter().map(|s| s.rows).collect();
    let rows = GroupRows::in_key_order(parts);
    counters.rows = rows.len() as u64;
    (rows, counters)
}

/// Walk every subset of `group` that `limits` keeps, adding dimensions in `order` (a
/// permutation of them), the root's children in parallel, each task handing its subsets to a sink
/// of its own (the root's is first). Returns the sinks in task order and the walk's counters,
/// which depend on the order: a subset is evaluated when its parent in that order is kept.
pub(crate) fn walk_group<S: NodeSink + Send>(
    p: &Prepared,
    group: &Group,
    limits: Limits,
    order: &[usize],
    new_sink: impl Fn() -> S + Sync,
) -> (Vec<S>, AggregateCounters) {
    let limits = limits.within(p.dims);
    let all: Vec<u32> = (0..group.len() as u32).collect();
    let counts = limits.skip_duplicates.then(|| PairCounts::of(p, group));
    let counts = counts.as_ref();
    let mut root_walk = Walk::new(p, group, limits, new_sink(), counts, order);
    root_walk.emit_root(&all);
    let tasks = if limits.k_max == 0 {
        Vec::new()
    } else {
        root_walk.first_level_tasks(&all)
    };
    let results: Vec<(S, AggregateCounters)> = tasks
        .par_iter()
        .map(|(at, obs)| {
            let mut walk = Walk::new(p, group, limits, new_sink(), counts, order);
            let d = order[*at];
            walk.path
                .push((d as u8, group.values[obs[0] as usize * p.dims + d]));
            walk.visit(obs, 1u64 << d, at + 1);
            (walk.sink, walk.counters)
        })
        .collect();
    let mut counters = root_walk.counters;
    let mut sinks = vec![root_walk.sink];
    for (sink, c) in results {
        counters.add(&c);
        sinks.push(sink);
    }
    (sinks, counters)
}

/// The dimensions sorted by name: the walk adds them to a subset in this order, the order of a
/// scope key's pairs, so that a subset's key is its parent's with one pair appended.
fn dims_by_name(p: &Prepared) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p.dims).collect();
    order.sort_by(|&a, &b| p.dim_names[a].cmp(&p.dim_names[b]));
    order
}

/// Scratch buffers of one recursion depth.
#[derive(Default)]
struct Scratch {
    obs: Vec<u32>,
    counts: Vec<u32>,
    offsets: Vec<u32>,
}

/// One subset the walk keeps: its (dim, value id) pairs in the order the walk added them, mask,
/// observations (canonical trade order) and statistics.
pub(crate) struct Node<'n> {
    pub path: &'n [(u8, u32)],
    pub mask: u64,
    pub obs: &'n [u32],
    pub stats: OutcomeStats,
}

/// What the walk hands each kept subset to.
pub(crate) trait NodeSink {
    fn node(&mut self, node: Node<'_>);
}

/// The stored rows, with their keys rendered.
struct RowSink<'a> {
    p: &'a Prepared,
    rows: RowPart,
    /// The key of the last node's path, and that path: the walk hands a node after its parent,
    /// with the parent's pairs and one more, so a node's key is its parent's plus one pair.
    key: ScopeKeyPath,
    key_pairs: Vec<(u8, u32)>,
}

impl<'a> RowSink<'a> {
    fn new(p: &'a Prepared) -> Self {
        Self {
            p,
            rows: RowPart::default(),
            key: ScopeKeyPath::default(),
            key_pairs: Vec::new(),
        }
    }
}

impl NodeSink for RowSink<'_> {
    fn node(&mut self, node: Node<'_>) {
        let shared = self
            .key_pairs
            .iter()
            .zip(node.path)
            .take_while(|(a, b)| a == b)
            .count();
        self.key.truncate(shared);
        self.key_pairs.truncate(shared);
        for &(d, v) in &node.path[shared..] {
            let du = d as usize;
            debug_assert!(
                self.key_pairs.last().is_none_or(|&(last, _)| {
                    self.p.dim_names[last as usize] < self.p.dim_names[du]
                }),
                "the walk adds dimensions in name order"
            );
            self.key.push(
                &self.p.dim_names[du],
                &self.p.value_names[du][v as usize - 1],
            );
            self.key_pairs.push((d, v));
        }
        let texts = &mut self.rows.texts;
        let start = texts.len();
        self.key.push_json_to(texts);
        self.rows.rows.push(KeyedStats {
            mask: node.mask,
            scope_values_hash: self.key.hash(),
            text: start..texts.len(),
            stats: node.stats,
        });
    }
}

/// How many observations of a group have each `dim = value` pair: a subset of two dims with as
/// many observations as one of its one-dim parents holds exactly that parent's actions.
struct PairCounts {
    /// Index `d * stride + value id`.
    counts: Vec<u32>,
    stride: usize,
}

impl PairCounts {
    fn of(p: &Prepared, group: &Group) -> Self {
        let stride = p.value_names.iter().map(Vec::len).max().unwrap_or(0) + 1;
        let mut counts = vec![0u32; p.dims * stride];
        for obs in group.values.chunks_exact(p.dims.max(1)) {
            for (d, &v) in obs.iter().enumerate() {
                counts[d * stride + v as usize] += 1;
            }
        }
        Self { counts, stride }
    }

    fn get(&self, d: u8, v: u32) -> usize {
        self.counts[d as usize * self.stride + v as usize] as usize
    }
}

struct Walk<'a, S> {
    p: &'a Prepared,
    group: &'a Group,
    limits: Limits,
    /// With `limits.skip_duplicates`: the group's observations per pair.
    pair_counts: Option<&'a PairCounts>,
    sink: S,
    counters: AggregateCounters,
    path: Vec<(u8, u32)>,
    scratch: Vec<Scratch>,
    /// The dimensions in the order the walk adds them (a permutation; [`dims_by_name`] for the
    /// stored rows).
    order: &'a [usize],
}

impl<'a, S: NodeSink> Walk<'a, S> {
    fn new(
        p: &'a Prepared,
        group: &'a Group,
        limits: Limits,
        sink: S,
        pair_counts: Option<&'a PairCounts>,
        order: &'a [usize],
    ) -> Self {
        Self {
            p,
            group,
            limits,
            pair_counts,
            sink,
            counters: AggregateCounters::default(),
            path: Vec::with_capacity(limits.k_max as usize),
            scratch: (0..=limits.k_max).map(|_| Scratch::default()).collect(),
            order,
        }
    }

    fn emit_root(&mut self, all: &[u32]) {
        let stats = self.fold(all);
        self.emit(all, 0, stats);
    }

    /// The root's children: for each dimension (its position in the walk's order), each value
    /// carried by enough observations.
    fn first_level_tasks(&mut self, all: &[u32]) -> Vec<(usize, Vec<u32>)> {
        let mut tasks = Vec::new();
        for (at, &d) in self.order.iter().enumerate() {
            let mut scratch = std::mem::take(&mut self.scratch[0]);
            let buckets = self.partition(all, d, self.limits.min_trades(1), &mut scratch);
            for (start, len) in buckets {
                tasks.push((at, scratch.obs[start..start + len].to_vec()));
            }
            self.scratch[0] = scratch;
        }
        tasks
    }

    /// Counting sort of `node` by its value on `d`, keeping only values with at least
    /// `min` observations (fewer observations cannot hold `min` trades). Returns the
    /// (start, len) of each kept value's run in `scratch.obs`; runs keep canonical trade order.
    fn partition(
        &mut self,
        node: &[u32],
        d: usize,
        min: u64,
        scratch: &mut Scratch,
    ) -> Vec<(usize, usize)> {
        let (dims, values) = (self.p.dims, &self.group.values);
        let value_of = |o: u32| values[o as usize * dims + d] as usize;
        let card = self.p.value_names[d].len() + 1;
        scratch.counts.clear();
        scratch.counts.resize(card, 0);
        for &o in node {
            scratch.counts[value_of(o)] += 1;
        }
        // The observations of pruned values and of the absent value 0 go past the kept runs (from
        // the end backwards), to be cut off: a scatter without a branch on whether a value is
        // kept, which deep subsets mispredict (most of their values are pruned; 9 % less
        // computing on an exhaustive 8,000-trade book).
        let mut runs = Vec::new();
        let (mut kept_at, mut pruned_from) = (0u32, node.len() as u32);
        scratch.offsets.clear();
        for (v, &c) in scratch.counts.iter().enumerate() {
            let present = v != 0 && c != 0;
            if present && u64::from(c) >= min {
                runs.push((kept_at as usize, c as usize));
                scratch.offsets.push(kept_at);
                kept_at += c;
            } else {
                if present {
                    self.counters.subsets_pruned += 1;
                }
                pruned_from -= c;
                scratch.offsets.push(pruned_from);
            }
        }
        if runs.is_empty() {
            return runs;
        }
        scratch.obs.clear();
        scratch.obs.resize(node.len(), 0);
        for &o in node {
            let at = &mut scratch.offsets[value_of(o)];
            scratch.obs[*at as usize] = o;
            *at += 1;
        }
        scratch.obs.truncate(kept_at as usize);
        runs
    }

    /// Whether the subset on the current path, with `observations`, holds exactly the actions of
    /// one of its parents (the subset without one of its pairs). Only the default enumeration
    /// asks, and it stops at two dims.
    fn is_duplicate(&self, observations: usize) -> bool {
        let Some(counts) = self.pair_counts else {
            return false;
        };
        match self.path.as_slice() {
            [_] => observations == self.group.trade.len(),
            [(d1, v1), (d2, v2)] => {
                observations == counts.get(*d1, *v1) || observations == counts.get(*d2, *v2)
            }
            _ => false,
        }
    }

    /// A subset and its refinements by the dimensions from position `next` of the walk's order.
    fn visit(&mut self, node: &[u32], mask: u64, next: usize) {
        if self.is_duplicate(node.len()) {
            // Its subtree holds only duplicates too: each refinement has the actions of the
            // same refinement of that parent.
            self.counters.duplicates_skipped += 1;
            return;
        }
        let stats = self.fold(node);
        let depth = self.path.len();
        if stats.n_trades() < self.limits.min_trades(depth) {
            self.counters.subsets_pruned += 1;
            return;
        }
        self.emit(node, mask, stats);
        if depth as u32 >= self.limits.k_max {
            return;
        }
        let child_min = self.limits.min_trades(depth + 1);
        if stats.n_trades() < child_min {
            return; // no refinement can reach its size's threshold
        }
        let mut scratch = std::mem::take(&mut self.scratch[depth]);
        for at in next..self.p.dims {
            let d = self.order[at];
            let runs = self.partition(node, d, child_min, &mut scratch);
            for (start, len) in runs {
                let child = &scratch.obs[start..start + len];
                let v = self.group.values[child[0] as usize * self.p.dims + d];
                self.path.push((d as u8, v));
                self.visit(child, mask | (1u64 << d), at + 1);
                self.path.pop();
            }
        }
        self.scratch[depth] = scratch;
    }

    fn emit(&mut self, obs: &[u32], mask: u64, stats: OutcomeStats) {
        self.sink.node(Node {
            path: &self.path,
            mask,
            obs,
            stats,
        });
    }

    /// Statistics of the trades behind `node` (observations in canonical trade order).
    fn fold(&mut self, node: &[u32]) -> OutcomeStats {
        let mut stats = OutcomeStats::default();
        self.counters.subset_updates += fold_observations(self.p, self.group, node, &mut stats);
        self.counters.subsets_evaluated += 1;
        stats
    }
}

/// Fold the trades behind `obs` (observations of `group`, in canonical trade order) into
/// `stats`: one observation per trade, carrying how many of its actions are in `obs`.
/// Returns the number of trades folded.
pub(crate) fn fold_observations(
    p: &Prepared,
    group: &Group,
    obs: &[u32],
    stats: &mut OutcomeStats,
) -> u64 {
    let mut trades = 0;
    let mut i = 0;
    while i < obs.len() {
        if let Some(&ahead) = obs.get(i + PREFETCH_AHEAD) {
            learnloop_sys::prefetch(&p.trades[group.trade[ahead as usize] as usize]);
        }
        let trade = group.trade[obs[i] as usize];
        let mut n_actions = 0u64;
        while i < obs.len() && group.trade[obs[i] as usize] == trade {
            n_actions += u64::from(group.n_actions[obs[i] as usize]);
            i += 1;
        }
        let t = trade as usize;
        stats.push_fold(&p.trades[t], n_actions);
        trades += 1;
    }
    trades
}

/// Observations ahead whose trade `fold_observations` asks the cache for: a deep subset's trades
/// are scattered over the book's trade array (megabytes at 100k trades), which the hardware
/// prefetcher cannot follow through the indices; each fold step waits on the previous step's
/// divisions, so the next trades' loads can be in flight meanwhile.
const PREFETCH_AHEAD: usize = 8;

/// The number of (trade, subset) observations an unpruned enumeration folds: for each group and
/// trade, the distinct subsets (at most `k_max` dims) of the trade's action scopes. It is the row
/// count of the "exploded" table a SQL engine aggregates, so `updates / second` figures compare
/// like with like, whatever pruning skipped. Inclusion–exclusion over the trade's distinct
/// scopes: the subsets shared by a set of scopes are the subsets of the dimensions they agree on.
pub fn exploded_subset_updates(p: &Prepared, k_max: u32) -> u64 {
    let k_max = k_max.min(p.dims as u32) as usize;
    let binom = binomial_table(p.dims);
    let subsets_of = |a: usize| -> u64 { (0..=a.min(k_max)).map(|k| binom[a][k]).sum() };
    let mut total = 0u64;
    for g in &p.groups {
        let rows = |o: usize| &g.values[o * p.dims..(o + 1) * p.dims];
        let mut i = 0;
        while i < g.len() {
            let start = i;
            while i < g.len() && g.trade[i] == g.trade[start] {
                i += 1;
            }
            let scopes: Vec<&[u32]> = (start..i).map(rows).collect();
            total += union_of_subsets(&scopes, &subsets_of, k_max);
        }
    }
    total
}

fn union_of_subsets(scopes: &[&[u32]], subsets_of: &dyn Fn(usize) -> u64, k_max: usize) -> u64 {
    let m = scopes.len();
    if m > 12 {
        return union_by_enumeration(scopes, k_max);
    }
    let mut total: i64 = 0;
    for chosen in 1u32..(1 << m) {
        let members: Vec<&[u32]> = (0..m)
            .filter(|j| chosen & (1 << j) != 0)
            .map(|j| scopes[j])
            .collect();
        let agree = (0..members[0].len())
            .filter(|&d| members[0][d] != 0 && members.iter().all(|s| s[d] == members[0][d]))
            .count();
        let sign = if chosen.count_ones() % 2 == 1 { 1 } else { -1 };
        total += sign * subsets_of(agree) as i64;
    }
    total as u64
}

fn union_by_enumeration(scopes: &[&[u32]], k_max: usize) -> u64 {
    let mut seen = rustc_hash::FxHashSet::default();
    for s in scopes {
        let present: Vec<usize> = (0..s.len()).filter(|&d| s[d] != 0).collect();
        for bits in 0u64..(1u64 << present.len()) {
            if bits.count_ones() as usize > k_max {
                continue;
            }
            let key: Vec<(usize, u32)> = present
                .iter()
                .enumerate()
                .filter(|(j, _)| bits & (1 << j) != 0)
                .map(|(_, &d)| (d, s[d]))
                .collect();
            seen.insert(key);
        }
    }
    seen.len() as u64
}

fn binomial_table(n: usize) -> Vec<Vec<u64>> {
    let mut t = vec![vec![0u64; n + 1]; n + 1];
    for i in 0..=n {
        t[i][0] = 1;
        for k in 1..=i {
            t[i][k] = t[i - 1][k - 1] + if k < i { t[i - 1][k] } else { 0 };
        }
    }
    t
}
