//! The statistics of the deep subsets the lesson stage tested (SPEC §12: `pattern_scope_stats`
//! keeps the subsets that were tested and their parents). The enumeration stores subsets down to
//! its depth (two dims by default); the lesson stage computes deeper ones itself, under its
//! discoveries, and records them in `lesson_candidates`. This pass folds those subsets, and their
//! parents below the stored depth, from the trade events exactly as the enumeration folds a
//! subset, and adds them to the table.

use crate::engine::{fold_observations, Limits, SubsetRow};
use crate::prepare::{Group, Prepared};
use crate::stage::{group_key, prepare_groups, subset_keys, AggregateOptions};
use crate::AggregateError;
use learnloop_model::scope::{parents_of_pairs, scope_pairs, scope_values_hash, scope_values_json};
use learnloop_model::stats::OutcomeStats;
use learnloop_model::{ActionCategory, LoopConfig, Timestamp};
use learnloop_store::scopes::StoredScopes;
use learnloop_store::stats::StatsWriter;
use learnloop_store::Connection;
use rustc_hash::FxHashSet;
use std::collections::{BTreeMap, BTreeSet};

/// A subset as `dim = value` pairs, sorted by dimension name.
type Pairs = Vec<(String, String)>;

/// Per (module, pattern, category): the subsets to fold.
type WantedSubsets = BTreeMap<(String, String, ActionCategory), BTreeSet<Pairs>>;

/// Replace the stored rows deeper than the enumeration's depth by the deep subsets the last
/// lesson run tested, the active deep lessons, and their parents of that size or more. Returns
/// the rows written; nothing to do when the enumeration stores every depth (`store_min_trades`).
pub fn store_tested_deep_subsets(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    options: &AggregateOptions,
) -> Result<u64, AggregateError> {
    // Like the aggregate stage, it reads every stored row (the delete) and every event once.
    learnloop_store::with_page_cache_mib(conn, learnloop_store::ONE_PASS_PAGE_CACHE_MIB, || {
        // The depth the stored rows were enumerated to (a `lessons` run alone may be given another
        // configuration than the aggregate that stored them: an analyst's deep rows stay).
        let depth = match learnloop_store::stats::enumerated_depth(conn)? {
            Some(depth) => depth,
            None => Limits::from_config(cfg).k_max,
        };
        if depth as usize >= cfg.dims.len() {
            return Ok(0);
        }
        let stored = StoredScopes::load(conn)?;
        let mut writer = StatsWriter::replace_deeper_than(conn, depth, as_of, &stored)?;
        let wanted = wanted_subsets(conn, depth)?;
        if wanted.is_empty() {
            return Ok(0);
        }
        // Only the groups with deep subsets are prepared: the others' events are skipped as read.
        let wanted_groups: FxHashSet<(&str, &str, ActionCategory)> = wanted
            .keys()
            .map(|(module, pattern, category)| (module.as_str(), pattern.as_str(), *category))
            .collect();
        let keep = |module: &str, pattern: &str, category: ActionCategory| {
            wanted_groups.contains(&(module, pattern, category))
        };
        let (prepared, _) = prepare_groups(conn, cfg, as_of, options, &keep)?;
        for group in &prepared.groups {
            let id = (
                group.module.to_string(),
                group.pattern_key.to_string(),
                group.category,
            );
            let Some(subsets) = wanted.get(&id) else {
                continue;
            };
            let rows = fold_subsets(&prepared, group, subsets);
            let keys = subset_keys(rows.iter().map(SubsetRow::as_ref));
            let scopes = stored.classify(keys.as_slice());
            writer.add_to_group(group_key(group), keys.as_slice(), &scopes)?;
        }
        Ok(writer.finish()?)
    })
}

/// Per group, the tested subsets and active lessons deeper than `depth`, and their parents deeper
/// than `depth`.
fn wanted_subsets(conn: &Connection, depth: u32) -> Result<WantedSubsets, AggregateError> {
    let mut wanted = WantedSubsets::new();
    // Active lessons too: one kept by hysteresis in a run that did not test it still has its
    // figures in the table (the report's weeks, `explain`).
    let active = learnloop_store::lessons::active_lessons(conn)?
        .into_iter()
        .map(|l| (l.module, l.pattern_key, l.category, l.scope_values));
    let tested = learnloop_store::lessons::candidate_scopes_deeper_than(conn, depth)?;
    for (module, pattern_key, category, scope) in tested.into_iter().chain(active) {
        let pairs = scope_pairs(&scope);
        if pairs.len() <= depth as usize {
            continue;
        }
        let subsets = wanted.entry((module, pattern_key, category)).or_default();
        if pairs.len() > depth as usize + 1 {
            for parent in parents_of_pairs(&pairs) {
                let owned = parent
                    .into_iter()
                    .map(|(d, v)| (d.to_string(), v.to_string()));
                subsets.insert(owned.collect());
            }
        }
        subsets.insert(pairs);
    }
    Ok(wanted)
}

/// Each subset's row, in the table's key order; a subset with a dimension or value the group does
/// not have is skipped.
fn fold_subsets(p: &Prepared, group: &Group, subsets: &BTreeSet<Pairs>) -> Vec<SubsetRow> {
    let mut rows = Vec::new();
    for pairs in subsets {
        let Some(wanted) = value_ids(p, pairs) else {
            continue;
        };
        let obs: Vec<u32> = (0..group.trade.len() as u32)
            .filter(|&o| {
                let values = &group.values[o as usize * p.dims..(o as usize + 1) * p.dims];
                wanted.iter().all(|&(d, id)| values[d] == id)
            })
            .collect();
        if obs.is_empty() {
            continue;
        }
        let mut stats = OutcomeStats::default();
        fold_observations(p, group, &obs, &mut stats);
        let borrowed = || pairs.iter().map(|(d, v)| (d.as_str(), v.as_str()));
        let mask = wanted.iter().map(|&(d, _)| 1u64 << d).sum();
        rows.push(SubsetRow {
            mask,
            scope_values: scope_values_json(borrowed()),
            scope_values_hash: scope_values_hash(borrowed()),
            stats,
        });
    }
    rows.sort_by_key(|r| (r.mask as i64, r.scope_values_hash as i64));
    rows
}

/// Each pair as (dimension index, value id), if the book has them.
fn value_ids(p: &Prepared, pairs: &Pairs) -> Option<Vec<(usize, u32)>> {
    pairs
        .iter()
        .map(|(dim, value)| {
            let d = p.dim_names.iter().position(|n| n == dim)?;
            let id = p.value_names[d].iter().position(|v| v == value)?;
            Some((d, id as u32 + 1))
        })
        .collect()
}
