//! [`Prepared`] read straight from the store's trade events, without holding them as
//! [`learnloop_model::TradeEvent`]s: the nightly aggregate's load. Events arrive in no order and
//! are put into the canonical one (exit time, trade key, action) by sorting small records, so the
//! result equals [`Prepared::build`] over `load_all_events` field for field (tested), with value
//! ids renumbered in order of first appearance in that canonical order.

use crate::prepare::{in_key_order, permuted, EventId, Group, Interner, PrepareError, Prepared};
use crate::AggregateError;
use learnloop_model::stats::{decay_weight, FoldTrade, TradeOutcome};
use learnloop_model::{ActionCategory, DimensionList, Timestamp};
use learnloop_store::events::{for_each_fold_event, FoldEventRef};
use learnloop_store::Connection;
use rustc_hash::FxHashMap;

/// One event as read: its trade and group (ids in reading order) and where its action id is in
/// [`Streamed::action_ids`]; its value ids are `dims` entries of [`Streamed::values`].
struct StreamedEvent {
    trade: u32,
    group: u32,
    action: (u32, u32),
}

/// A trade as read: its key, and the outcome of its first action (the smallest action id, as in
/// the canonical order).
struct StreamedTrade {
    key: String,
    first_action: (u32, u32),
    outcome: TradeOutcome,
}

/// The events in reading order, with everything interned.
#[derive(Default)]
struct Streamed {
    events: Vec<StreamedEvent>,
    values: Vec<u32>,
    /// Every event's action id, back to back (one allocation, not one per event).
    action_ids: String,
    trades: Vec<StreamedTrade>,
    trade_ids: FxHashMap<String, u32>,
    groups: Vec<Group>,
    /// Group ids by module, pattern and category, each prefixed with its length.
    group_ids: FxHashMap<String, u32>,
    group_key: String,
}

impl Streamed {
    fn action(&self, span: (u32, u32)) -> &str {
        &self.action_ids[span.0 as usize..(span.0 + span.1) as usize]
    }

    fn push(
        &mut self,
        e: FoldEventRef<'_>,
        interner: &mut Interner,
        dim_list: &DimensionList,
        row: &mut [u32],
    ) -> Result<(), PrepareError> {
        let at = EventId {
            trade_key: e.trade_key,
            action: e.action_strand_id,
        };
        interner.fill(e.scope, at, dim_list, row)?;
        let action = self.push_action(e.action_strand_id)?;
        let trade = self.trade_id(&e, action)?;
        let group = self.group_id(&e);
        self.events.push(StreamedEvent {
            trade,
            group,
            action,
        });
        self.values.extend_from_slice(row);
        Ok(())
    }

    fn push_action(&mut self, action: &str) -> Result<(u32, u32), PrepareError> {
        let too_many = || PrepareError::TooMany("bytes of action ids");
        let start = u32::try_from(self.action_ids.len()).map_err(|_| too_many())?;
        let len = u32::try_from(action.len()).map_err(|_| too_many())?;
        start.checked_add(len).ok_or_else(too_many)?;
        self.action_ids.push_str(action);
        Ok((start, len))
    }

    fn trade_id(&mut self, e: &FoldEventRef<'_>, action: (u32, u32)) -> Result<u32, PrepareError> {
        if let Some(&id) = self.trade_ids.get(e.trade_key) {
            let first = self.trades[id as usize].first_action;
            if e.action_strand_id < self.action(first) {
                let t = &mut self.trades[id as usize];
                t.first_action = action;
                t.outcome = e.outcome;
            }
            return Ok(id);
        }
        let id = u32::try_from(self.trades.len())
            .ok()
            .filter(|&id| id < u32::MAX)
            .ok_or(PrepareError::TooMany("trades"))?;
        self.trade_ids.insert(e.trade_key.to_string(), id);
        self.trades.push(StreamedTrade {
            key: e.trade_key.to_string(),
            first_action: action,
            outcome: e.outcome,
        });
        Ok(id)
    }

    fn group_id(&mut self, e: &FoldEventRef<'_>) -> u32 {
        // Each part with its length first: names may hold any character, and a separator that
        // one of them contained would make two groups one key.
        self.group_key.clear();
        for part in [e.module, e.pattern_key, e.category.as_str()] {
            self.group_key.push_str(&part.len().to_string());
            self.group_key.push(':');
            self.group_key.push_str(part);
        }
        if let Some(&id) = self.group_ids.get(self.group_key.as_str()) {
            return id;
        }
        let id = self.groups.len() as u32;
        self.group_ids.insert(self.group_key.clone(), id);
        self.groups.push(Group::new(
            e.module.into(),
            e.pattern_key.into(),
            e.category,
        ));
        id
    }
}

impl Prepared {
    /// [`Prepared::build`] over the store's trade events, read in one pass without an owned
    /// event each (for a 100k-trade book those are hundreds of MB of short strings, and a sort
    /// of wide records). The calling thread reads the rows while another interns them, in
    /// batches: each is about half of the load.
    pub fn from_store(
        conn: &Connection,
        dim_list: &DimensionList,
        as_of: Timestamp,
        half_life_hours: f64,
    ) -> Result<Self, AggregateError> {
        Self::from_store_of_groups(conn, dim_list, as_of, half_life_hours, &|_, _, _| true)
    }

    /// [`Prepared::from_store`] of the (module, pattern, category) groups `keep` accepts: the
    /// other events are skipped as they are read. It equals [`Prepared::build`] over the kept
    /// events alone (tested); a kept group's observations and folds are those of the whole
    /// preparation, with trade and value ids renumbered (its trades keep their relative order,
    /// so its folds add in the same order).
    pub fn from_store_of_groups(
        conn: &Connection,
        dim_list: &DimensionList,
        as_of: Timestamp,
        half_life_hours: f64,
        keep: &dyn Fn(&str, &str, ActionCategory) -> bool,
    ) -> Result<Self, AggregateError> {
        let (full_tx, full_rx) = std::sync::mpsc::sync_channel::<EventBatch>(BATCHES_AHEAD);
        let (empty_tx, empty_rx) = std::sync::mpsc::channel::<EventBatch>();
        let (read, interned) = std::thread::scope(|scope| {
            let interning = scope.spawn(move || intern_batches(full_rx, empty_tx, dim_list));
            let mut batch = EventBatch::default();
            // Set once the interning thread has stopped (a bad scope: its result says which).
            // The rows are still read, so that a read error is the one reported, as before.
            let mut interning_stopped = false;
            let read = for_each_fold_event(conn, |e| {
                if interning_stopped || !keep(e.module, e.pattern_key, e.category) {
                    return Ok(());
                }
                batch.push(&e);
                if batch.len() == BATCH_EVENTS || batch.text.len() >= BATCH_TEXT_BYTES {
                    let empty = empty_rx.try_recv().unwrap_or_default();
                    interning_stopped = full_tx.send(std::mem::replace(&mut batch, empty)).is_err();
                }
                Ok(())
            });
            let _ = full_tx.send(batch);
            drop(full_tx);
            let interned = interning
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            (read, interned)
        });
        read?;
        let (streamed, interner) = interned?;
        Ok(canonical(
            streamed,
            interner,
            dim_list,
            as_of,
            half_life_hours,
        ))
    }
}

/// Events per batch handed from the reading thread to the interning one.
const BATCH_EVENTS: usize = 4096;
/// Bytes of text after which a batch is handed over however few its events.
const BATCH_TEXT_BYTES: usize = 16 << 20;
/// Batches the reader may be ahead by.
const BATCHES_AHEAD: usize = 4;

/// Intern every event of the batches received (see [`Streamed::push`]), sending each batch back
/// for reuse; stops at the first bad scope.
fn intern_batches(
    full: std::sync::mpsc::Receiver<EventBatch>,
    empty: std::sync::mpsc::Sender<EventBatch>,
    dim_list: &DimensionList,
) -> Result<(Streamed, Interner), PrepareError> {
    let mut interner = Interner::new(dim_list.len());
    let mut streamed = Streamed::default();
    let mut row = vec![0u32; dim_list.len()];
    for mut batch in full {
        for e in batch.events() {
            streamed.push(e, &mut interner, dim_list, &mut row)?;
        }
        batch.clear();
        let _ = empty.send(batch);
    }
    Ok((streamed, interner))
}

/// Events copied out of the rows read, their texts back to back.
#[derive(Default)]
struct EventBatch {
    text: String,
    events: Vec<BatchedEvent>,
}

/// One event of an [`EventBatch`]: where its texts end in the batch's text (trade key, action id,
/// module, pattern, scope, in that order, each starting where the previous one ends).
struct BatchedEvent {
    ends: [usize; 5],
    category: learnloop_model::ActionCategory,
    outcome: TradeOutcome,
}

impl EventBatch {
    fn len(&self) -> usize {
        self.events.len()
    }

    fn clear(&mut self) {
        self.text.clear();
        self.events.clear();
    }

    fn push(&mut self, e: &FoldEventRef<'_>) {
        let mut ends = [0usize; 5];
        for (end, part) in ends.iter_mut().zip([
            e.trade_key,
            e.action_strand_id,
            e.module,
            e.pattern_key,
            e.scope,
        ]) {
            self.text.push_str(part);
            *end = self.text.len();
        }
        self.events.push(BatchedEvent {
            ends,
            category: e.category,
            outcome: e.outcome,
        });
    }

    fn events(&self) -> impl Iterator<Item = FoldEventRef<'_>> {
        let mut start = 0usize;
        self.events.iter().map(move |b| {
            let mut parts = [""; 5];
            for (part, &end) in parts.iter_mut().zip(&b.ends) {
                *part = &self.text[start..end];
                start = end;
            }
            let [trade_key, action_strand_id, module, pattern_key, scope] = parts;
            FoldEventRef {
                trade_key,
                action_strand_id,
                module,
                pattern_key,
                category: b.category,
                scope,
                outcome: b.outcome,
            }
        })
    }
}

/// The streamed events in the canonical order, as [`Prepared::build`] lays them out.
fn canonical(
    s: Streamed,
    interner: Interner,
    dim_list: &DimensionList,
    as_of: Timestamp,
    half_life_hours: f64,
) -> Prepared {
    let dims = dim_list.len();
    let mut trade_order: Vec<u32> = (0..s.trades.len() as u32).collect();
    trade_order.sort_unstable_by(|&a, &b| {
        let (ta, tb) = (&s.trades[a as usize], &s.trades[b as usize]);
        (ta.outcome.exit_at, &ta.key).cmp(&(tb.outcome.exit_at, &tb.key))
    });
    let mut rank = vec![0u32; s.trades.len()];
    for (r, &t) in trade_order.iter().enumerate() {
        rank[t as usize] = r as u32;
    }
    let event_order = events_in_trade_order(&s, &rank);
    let mut renumber = Renumber::new(&interner);
    let mut groups = s.groups;
    let mut row = vec![0u32; dims];
    for &e in &event_order {
        let event = &s.events[e as usize];
        let read = &s.values[e as usize * dims..(e as usize + 1) * dims];
        for (d, (out, &id)) in row.iter_mut().zip(read).enumerate() {
            *out = renumber.id(d, id);
        }
        groups[event.group as usize].push(rank[event.trade as usize], &row, dims);
    }
    let mut trade_keys = Vec::with_capacity(s.trades.len());
    let mut trades = Vec::with_capacity(s.trades.len());
    for t in permuted(s.trades, trade_order.into_iter().map(|t| t as usize)) {
        let weight = decay_weight(as_of.hours_since(t.outcome.exit_at), half_life_hours);
        trades.push(FoldTrade::new(&t.outcome, weight));
        trade_keys.push(t.key);
    }
    Prepared {
        dims,
        trades,
        trade_keys,
        groups: in_key_order(groups),
        value_names: renumber.names,
        dim_names: dim_list.names().to_vec(),
    }
}

/// The events' indices by their trade's rank, then action id: a counting sort by rank (ranks are
/// 0..trades), then each trade's few events sorted by action id. A comparison sort of all of them
/// compared action id texts and was a fifth of a 100k-trade book's load.
fn events_in_trade_order(s: &Streamed, rank: &[u32]) -> Vec<u32> {
    let mut starts = vec![0usize; rank.len() + 1];
    for e in &s.events {
        starts[rank[e.trade as usize] as usize + 1] += 1;
    }
    for r in 1..starts.len() {
        starts[r] += starts[r - 1];
    }
    let mut next = starts.clone();
    let mut order = vec![0u32; s.events.len()];
    for (i, e) in s.events.iter().enumerate() {
        let slot = &mut next[rank[e.trade as usize] as usize];
        order[*slot] = i as u32;
        *slot += 1;
    }
    for run in starts.windows(2) {
        order[run[0]..run[1]].sort_unstable_by_key(|&e| s.action(s.events[e as usize].action));
    }
    order
}

/// Value ids in order of first appearance in the canonical order (the reading order's ids map
/// onto them as they are met), so that ids, and with them every walk's order, are those of
/// [`Prepared::build`].
struct Renumber<'a> {
    read_names: &'a [Vec<String>],
    /// Per dimension, the canonical id of each reading-order id (index id − 1; 0 = not met yet).
    ids: Vec<Vec<u32>>,
    names: Vec<Vec<String>>,
}

impl<'a> Renumber<'a> {
    fn new(interner: &'a Interner) -> Self {
        Self {
            read_names: &interner.names,
            ids: interner.names.iter().map(|n| vec![0; n.len()]).collect(),
            names: vec![Vec::new(); interner.names.len()],
        }
    }

    fn id(&mut self, dim: usize, read: u32) -> u32 {
        if read == 0 {
            return 0;
        }
        let slot = &mut self.ids[dim][read as usize - 1];
        if *slot == 0 {
            self.names[dim].push(self.read_names[dim][read as usize - 1].clone());
            *slot = self.names[dim].len() as u32;
        }
        *slot
    }
}
