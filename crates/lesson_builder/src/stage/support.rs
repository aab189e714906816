//! The trades that support each active lesson, and the latent factors they form (SPEC §4.11):
//! lessons of one (pattern, category) whose supporting trade sets overlap with Jaccard ≥ threshold
//! are one effect. Lessons of different groups may share trades too (an entry and an add of one
//! trade); such overlaps are listed in the factors' `jaccard` pairs (`across_groups`) for audit,
//! and never merge factors, so the materializer never drops one group's override for another's.

use super::lifecycle::ActiveLesson;
use super::LessonError;
use crate::factors::{assign_factor_ids, cluster_by_jaccard, Factor, JaccardPair, LessonTrades};
use learnloop_model::scope::{canonical_pairs_into, parse_scope_map};
use learnloop_model::{ActionCategory, FactorRow, LoopConfig, Timestamp, TradeEvent};
use learnloop_store::lessons;
use learnloop_store::Connection;
use rustc_hash::FxHashMap;
use std::collections::BTreeMap;

/// Supporting trades of each lesson (sorted trade indices): the trades with an action of the
/// lesson's pattern and category whose scope contains the lesson's scope. Without `events` they
/// are streamed from the store in table order, borrowed from each row: a trade's index only has
/// to be the same in every lesson's set (the Jaccard overlaps), not follow the canonical order.
fn supporting_trades(
    conn: &Connection,
    events: Option<&[TradeEvent]>,
    active: &[ActiveLesson],
) -> Result<Vec<Vec<u32>>, LessonError> {
    let mut support = Supporting::new(active);
    match events {
        Some(events) => events.iter().for_each(|e| {
            support.visit(SupportEvent {
                trade_key: &e.trade_key,
                module: &e.module,
                pattern_key: &e.pattern_key,
                category: e.category,
                scope: &e.scope,
            })
        }),
        None => learnloop_store::events::for_each_fold_event(conn, |e| {
            support.visit(SupportEvent {
                trade_key: e.trade_key,
                module: e.module,
                pattern_key: e.pattern_key,
                category: e.category,
                scope: e.scope,
            });
            Ok(())
        })?,
    }
    Ok(support.finish())
}

/// What the supporting sets read of an event.
struct SupportEvent<'e> {
    trade_key: &'e str,
    module: &'e str,
    pattern_key: &'e str,
    category: ActionCategory,
    scope: &'e str,
}

/// The supporting trade sets of the active lessons, built from events visited in any order (a
/// trade's index is looked up once per run of its contiguous events).
struct Supporting<'a> {
    active: &'a [ActiveLesson],
    by_group: FxHashMap<(&'a str, &'a str, &'a str), Vec<usize>>,
    trade_index: FxHashMap<String, u32>,
    /// The trade of the previous event: a trade's events are contiguous in canonical order.
    last_trade: Option<(String, u32)>,
    sets: Vec<Vec<u32>>,
}

impl<'a> Supporting<'a> {
    fn new(active: &'a [ActiveLesson]) -> Self {
        let mut by_group: FxHashMap<(&str, &str, &str), Vec<usize>> = FxHashMap::default();
        for (i, l) in active.iter().enumerate() {
            let group = (
                l.module.as_str(),
                l.pattern_key.as_str(),
                l.category.as_str(),
            );
            by_group.entry(group).or_default().push(i);
        }
        Self {
            active,
            by_group,
            trade_index: FxHashMap::default(),
            last_trade: None,
            sets: vec![Vec::new(); active.len()],
        }
    }

    fn trade_of(&mut self, key: &str) -> u32 {
        if let Some((last, index)) = &self.last_trade {
            if last == key {
                return *index;
            }
        }
        let next = self.trade_index.len() as u32;
        let index = *self.trade_index.entry(key.to_string()).or_insert(next);
        self.last_trade = Some((key.to_string(), index));
        index
    }

    fn visit(&mut self, e: SupportEvent<'_>) {
        let trade = self.trade_of(e.trade_key);
        let group = (e.module, e.pattern_key, e.category.as_str());
        let Some(members) = self.by_group.get(&group) else {
            return;
        };
        // Canonical scope text is read without allocating; anything else goes through serde_json.
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        let owned: Option<BTreeMap<String, String>> = (!canonical_pairs_into(e.scope, &mut pairs))
            .then(|| parse_scope_map(e.scope).unwrap_or_default());
        let has = |k: &str, v: &str| match &owned {
            Some(scope) => scope.get(k).map(String::as_str) == Some(v),
            None => pairs.contains(&(k, v)),
        };
        for &i in members {
            let contained = self.active[i].pairs.iter().all(|(k, v)| has(k, v));
            if contained && self.sets[i].last() != Some(&trade) {
                self.sets[i].push(trade);
            }
        }
    }

    fn finish(mut self) -> Vec<Vec<u32>> {
        for s in &mut self.sets {
            s.sort_unstable();
            s.dedup();
        }
        self.sets
    }
}

/// Cluster the active lessons into factors, keep ids stable against the previous run, write the
/// factors table and each active lesson's factor id. Returns the number of factors.
pub fn assign_factors(
    conn: &Connection,
    events: Option<&[TradeEvent]>,
    cfg: &LoopConfig,
    as_of: Timestamp,
    active: &[ActiveLesson],
) -> Result<u64, LessonError> {
    let sets = supporting_trades(conn, events, active)?;
    let inputs: Vec<LessonTrades<'_>> = active
        .iter()
        .zip(&sets)
        .map(|(l, trades)| LessonTrades {
            lesson_key: &l.key,
            abs_t: l.abs_t,
            trades,
        })
        .collect();
    let mut factors = factors_within_groups(active, &inputs, cfg.lessons.factor_jaccard);
    let previous: Vec<(String, Vec<String>)> = lessons::factors(conn)?
        .into_iter()
        .map(|f| (f.factor_id, f.members))
        .collect();
    assign_factor_ids(&mut factors, &previous);
    factors.sort_by(|a, b| a.factor_id.cmp(&b.factor_id));
    let rows: Vec<FactorRow> = factors
        .iter()
        .map(|f| FactorRow {
            factor_id: f.factor_id.clone(),
            members: f.members.clone(),
            representative: f.representative.clone(),
            jaccard: serde_json::to_string(&f.jaccard).unwrap_or_else(|_| "[]".into()),
            updated_at: as_of,
        })
        .collect();
    lessons::replace_factors(conn, &rows)?;
    for f in &factors {
        for m in &f.members {
            lessons::set_lesson_factor(conn, m, Some(&f.factor_id))?;
        }
    }
    Ok(factors.len() as u64)
}

/// Factors clustered within each (module, pattern, category), with the overlaps across groups
/// added to the `jaccard` pairs of the factors they touch.
fn group_of(l: &ActiveLesson) -> (&str, &str, &str) {
    (
        l.module.as_str(),
        l.pattern_key.as_str(),
        l.category.as_str(),
    )
}

fn factors_within_groups(
    active: &[ActiveLesson],
    inputs: &[LessonTrades<'_>],
    threshold: f64,
) -> Vec<Factor> {
    let mut groups: BTreeMap<(&str, &str, &str), Vec<LessonTrades<'_>>> = BTreeMap::new();
    for (l, input) in active.iter().zip(inputs) {
        groups.entry(group_of(l)).or_default().push(*input);
    }
    let mut factors: Vec<Factor> = groups
        .values()
        .flat_map(|members| cluster_by_jaccard(members, threshold))
        .collect();
    factors.sort_by(|a, b| a.members.cmp(&b.members));

    let lesson_group: FxHashMap<&str, (&str, &str, &str)> = active
        .iter()
        .map(|l| (l.key.as_str(), group_of(l)))
        .collect();
    let across: Vec<JaccardPair> = cluster_by_jaccard(inputs, threshold)
        .into_iter()
        .flat_map(|f| f.jaccard)
        .filter(|p| lesson_group.get(p.a.as_str()) != lesson_group.get(p.b.as_str()))
        .map(|p| JaccardPair {
            across_groups: true,
            ..p
        })
        .collect();
    if !across.is_empty() {
        tracing::info!(
            pairs = across.len(),
            "lessons overlapping across (pattern, category) groups (reported, not merged)"
        );
    }
    for f in &mut factors {
        let member = |k: &str| f.members.binary_search_by(|m| m.as_str().cmp(k)).is_ok();
        let touching: Vec<JaccardPair> = across
            .iter()
            .filter(|p| member(&p.a) || member(&p.b))
            .cloned()
            .collect();
        f.jaccard.extend(touching);
        f.jaccard
            .sort_by(|x, y| (x.across_groups, &x.a, &x.b).cmp(&(y.across_groups, &y.a, &y.b)));
    }
    factors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lesson(key: &str, pattern: &str, abs_t: f64) -> ActiveLesson {
        ActiveLesson {
            key: key.into(),
            module: "pm".into(),
            pattern_key: pattern.into(),
            category: "add".into(),
            pairs: Vec::new(),
            abs_t,
        }
    }

    #[test]
    fn factors_never_span_groups_and_cross_group_overlaps_are_reported() {
        // a and b (pattern P) share 9 of 11 trades: one factor. c (pattern Q) has a's trades
        // exactly (Jaccard 1 with a, 9/11 with b), yet its own factor; both overlaps are listed
        // on both sides.
        let t_a: Vec<u32> = (0..10).collect();
        let t_b: Vec<u32> = (1..11).collect();
        let active = [
            lesson("a", "P", 3.0),
            lesson("b", "P", 5.0),
            lesson("c", "Q", 4.0),
        ];
        let inputs: Vec<LessonTrades<'_>> = active
            .iter()
            .zip([&t_a, &t_b, &t_a])
            .map(|(l, trades)| LessonTrades {
                lesson_key: &l.key,
                abs_t: l.abs_t,
                trades,
            })
            .collect();
        let factors = factors_within_groups(&active, &inputs, 0.7);
        let members: Vec<&[String]> = factors.iter().map(|f| f.members.as_slice()).collect();
        assert_eq!(
            members,
            [&["a".to_string(), "b".into()][..], &["c".to_string()][..]]
        );
        assert_eq!(factors[0].representative, "b");
        let across = |f: &Factor| -> Vec<(String, String)> {
            f.jaccard
                .iter()
                .filter(|p| p.across_groups)
                .map(|p| (p.a.clone(), p.b.clone()))
                .collect()
        };
        let both = [
            ("a".to_string(), "c".to_string()),
            ("b".to_string(), "c".to_string()),
        ];
        assert_eq!(across(&factors[0]), both);
        assert_eq!(across(&factors[1]), both);
        // Within P, the a–b pair is an ordinary link (9/11 ≥ 0.7).
        assert!(factors[0]
            .jaccard
            .iter()
            .any(|p| !p.across_groups && p.a == "a" && p.b == "b"));
    }
}
