//! Dense, interned form of the trade events: trades in canonical order, per-dimension value ids,
//! and observations grouped by (module, pattern, category) with identical (trade, scope) merged.

use learnloop_model::scope::{for_each_canonical_pair, parse_scope_map};
use learnloop_model::stats::{decay_weight, FoldTrade, TradeOutcome};
use learnloop_model::{ActionCategory, DimensionList, Timestamp, TradeEvent};
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;
use std::sync::Arc;

/// Trade events that cannot be prepared for aggregation.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// A stored scope that is not a JSON object of strings.
    #[error("trade_events row (trade {trade_key}, action {action}) has a scope that is not a JSON object of strings: {why}")]
    BadScope {
        /// The trade.
        trade_key: String,
        /// The action's strand id.
        action: String,
        /// The parse error.
        why: String,
    },
    /// More distinct values of something than 32-bit ids hold.
    #[error("more than 4 billion distinct {0}: not supported")]
    TooMany(&'static str),
}

/// One (module, pattern, category) and its observations.
pub struct Group {
    /// Shared with every stats row of the group.
    pub module: Arc<str>,
    /// Shared with every stats row of the group.
    pub pattern_key: Arc<str>,
    /// The action category.
    pub category: ActionCategory,
    /// Per observation: trade index (ascending = canonical trade order).
    pub trade: Vec<u32>,
    /// Per observation: how many actions of the trade had exactly this scope.
    pub n_actions: Vec<u32>,
    /// Observation-major value ids, `dims` per observation; 0 = dimension absent.
    pub values: Vec<u32>,
}

/// Trade events turned into dense arrays: trades by index, groups of observations, value ids.
pub struct Prepared {
    /// Number of scope dimensions.
    pub dims: usize,
    /// Each trade's outcome with its decay weight at the as-of time, as the fold reads it, in
    /// canonical trade order.
    pub trades: Vec<FoldTrade>,
    /// Each trade's key, same order.
    pub trade_keys: Vec<String>,
    /// The (module, pattern, category) groups.
    pub groups: Vec<Group>,
    /// value_names[d][id - 1] is the text of value id `id` of dimension d.
    pub value_names: Vec<Vec<String>>,
    /// The dimension names, in bit order.
    pub dim_names: Vec<String>,
}

impl Prepared {
    /// The trade events prepared (each observation counts its trade's actions with that scope).
    pub fn event_count(&self) -> u64 {
        let group_events = |g: &Group| g.n_actions.iter().map(|&n| u64::from(n)).sum::<u64>();
        self.groups.iter().map(group_events).sum()
    }

    /// `events` must be in canonical order (exit time, trade key, action), as the store returns them.
    pub fn build(
        events: &[TradeEvent],
        dim_list: &DimensionList,
        as_of: Timestamp,
        half_life_hours: f64,
    ) -> Result<Self, PrepareError> {
        let dims = dim_list.len();
        let mut trades = Vec::new();
        let mut trade_keys: Vec<String> = Vec::new();
        let mut interner = Interner::new(dims);
        let mut group_index: BTreeMap<(&str, &str, ActionCategory), usize> = BTreeMap::new();
        let mut groups: Vec<Group> = Vec::new();
        // Last observation per (group, trade) scope, to merge identical scopes of one trade.
        let mut row = vec![0u32; dims];
        for e in events {
            if trade_keys.last().map(String::as_str) != Some(e.trade_key.as_str()) {
                if trades.len() >= u32::MAX as usize {
                    return Err(PrepareError::TooMany("trades"));
                }
                trade_keys.push(e.trade_key.clone());
                let outcome = TradeOutcome {
                    r: e.rr_winsorized,
                    pnl_usd: e.pnl_usd,
                    hold_days: e.hold_days,
                    time_to_s3: e.time_to_s3,
                    exit_at: e.exit_at,
                };
                let weight = decay_weight(as_of.hours_since(e.exit_at), half_life_hours);
                trades.push(FoldTrade::new(&outcome, weight));
            }
            let trade = (trades.len() - 1) as u32;
            let at = EventId {
                trade_key: &e.trade_key,
                action: &e.action_strand_id,
            };
            interner.fill(&e.scope, at, dim_list, &mut row)?;
            let gi = *group_index
                .entry((e.module.as_str(), e.pattern_key.as_str(), e.category))
                .or_insert_with(|| {
                    let (module, pattern) = (e.module.as_str(), e.pattern_key.as_str());
                    groups.push(Group::new(module.into(), pattern.into(), e.category));
                    groups.len() - 1
                });
            groups[gi].push(trade, &row, dims);
        }
        let groups = in_key_order(groups);
        Ok(Self {
            dims,
            trades,
            trade_keys,
            groups,
            value_names: interner.names,
            dim_names: dim_list.names().to_vec(),
        })
    }
}

/// Groups in the table's key order (category compared as stored text), so rows reach the
/// clustered primary key as appends.
pub(crate) fn in_key_order(groups: Vec<Group>) -> Vec<Group> {
    let mut order: Vec<usize> = (0..groups.len()).collect();
    order.sort_by(|&a, &b| {
        let (ga, gb) = (&groups[a], &groups[b]);
        (&ga.module, &ga.pattern_key, ga.category.as_str()).cmp(&(
            &gb.module,
            &gb.pattern_key,
            gb.category.as_str(),
        ))
    });
    permuted(groups, order)
}

/// `items` in `order` (a permutation of their indices), each moved once.
pub(crate) fn permuted<T>(items: Vec<T>, order: impl IntoIterator<Item = usize>) -> Vec<T> {
    let mut slots: Vec<Option<T>> = items.into_iter().map(Some).collect();
    order.into_iter().filter_map(|i| slots[i].take()).collect()
}

/// Value ids per dimension, from 1 in order of first appearance.
pub(crate) struct Interner {
    pub(crate) ids: Vec<FxHashMap<String, u32>>,
    pub(crate) names: Vec<Vec<String>>,
}

/// Where a scope comes from, for the error that names it.
pub(crate) struct EventId<'a> {
    pub(crate) trade_key: &'a str,
    pub(crate) action: &'a str,
}

impl Interner {
    pub(crate) fn new(dims: usize) -> Self {
        Self {
            ids: vec![FxHashMap::default(); dims],
            names: vec![Vec::new(); dims],
        }
    }

    /// The value id of each dimension of `scope` (0 = absent) into `row`.
    pub(crate) fn fill(
        &mut self,
        scope: &str,
        at: EventId<'_>,
        dim_list: &DimensionList,
        row: &mut [u32],
    ) -> Result<(), PrepareError> {
        row.iter_mut().for_each(|v| *v = 0);
        // Canonical scope text is read without allocating; anything else goes through serde_json
        // (values interned before a flaw was found only leave an unused id).
        let canonical = for_each_canonical_pair(scope, |k, v| {
            if let Some(d) = dim_list.index_of(k) {
                row[d] = self.id(d, v);
            }
        });
        if !canonical {
            row.iter_mut().for_each(|v| *v = 0);
            let scope = parse_scope_map(scope).map_err(|err| PrepareError::BadScope {
                trade_key: at.trade_key.to_string(),
                action: at.action.to_string(),
                why: err.to_string(),
            })?;
            for (k, v) in &scope {
                if let Some(d) = dim_list.index_of(k) {
                    row[d] = self.id(d, v);
                }
            }
        }
        Ok(())
    }

    fn id(&mut self, dim: usize, value: &str) -> u32 {
        if let Some(&id) = self.ids[dim].get(value) {
            return id;
        }
        let id = self.ids[dim].len() as u32 + 1;
        self.ids[dim].insert(value.to_string(), id);
        self.names[dim].push(value.to_string());
        id
    }
}

pub(crate) const FINGERPRINT_SEED: u64 = 0xcbf2_9ce4_8422_2325;

/// Fold one event into a group's fingerprint: a hash of everything the group's rows depend on
/// except the as-of time (its events' trades, outcomes and scopes, in order). It only lives in
/// memory between replay steps, so a fast word-at-a-time hash does; lengths are hashed too, so
/// that no two different events read as the same bytes.
pub(crate) fn fold_event(fingerprint: u64, e: &TradeEvent) -> u64 {
    use std::hash::Hasher;
    let mut h = rustc_hash::FxHasher::default();
    h.write_u64(fingerprint);
    for text in [&e.trade_key, &e.scope] {
        h.write_usize(text.len());
        h.write(text.as_bytes());
    }
    for v in [Some(e.rr_winsorized), e.pnl_usd, e.hold_days, e.time_to_s3] {
        h.write_u64(v.map_or(u64::MAX, f64::to_bits));
    }
    h.write_i64(e.exit_at.millis());
    h.finish()
}

impl Group {
    pub(crate) fn new(module: Arc<str>, pattern_key: Arc<str>, category: ActionCategory) -> Self {
        Self {
            module,
            pattern_key,
            category,
            trade: Vec::new(),
            n_actions: Vec::new(),
            values: Vec::new(),
        }
    }

    pub(crate) fn push(&mut self, trade: u32, row: &[u32], dims: usize) {
        // A trade's actions arrive together, so an identical scope of the same trade can only be
        // among this trade's observations at the end of the group.
        let mut i = self.trade.len();
        while i > 0 && self.trade[i - 1] == trade {
            i -= 1;
            if &self.values[i * dims..(i + 1) * dims] == row {
                self.n_actions[i] += 1;
                return;
            }
        }
        self.trade.push(trade);
        self.n_actions.push(1);
        self.values.extend_from_slice(row);
    }

    /// Observations (distinct scopes of a trade's actions).
    pub fn len(&self) -> usize {
        self.trade.len()
    }

    /// No observations.
    pub fn is_empty(&self) -> bool {
        self.trade.is_empty()
    }
}
