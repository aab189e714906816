//! `stats_scopes`: each distinct scope text stored once, keyed by (mask, hash) like the subsets.
//! The same scopes recur in every group and on every night (80,311 distinct texts under the
//! 499,598 rows of an exhaustive 8,000-trade store), so the rows hold only the key, and a writer
//! inserts just the texts the store has not seen (schema migration 11).
//!
//! Looking every row's key up costs the single writing thread ~10 % of an exhaustive aggregate
//! (docs/benchmarks.md), so the lookup is split off: [`StoredScopes::classify`] runs where a
//! group's rows are computed, and the writer only inserts the few texts it reports unseen.
//! Both read the rows through [`SubsetRows`], so that they see the same rows in the same order.

use crate::raw_insert::{RawInsert, Value};
use crate::stats::SubsetRows;
use crate::{u64_from_sql, u64_to_sql, Result, StoreError};
use rusqlite::Connection;
use rustc_hash::FxHashMap;
use std::ops::Range;
use std::sync::atomic::{AtomicU64, Ordering};

/// Scope keys, sorted, with where each mask's keys lie. Rows are read and written mask by mask,
/// so a key is found by a binary search in a short stretch that stays cached, not by a probe into
/// a table of every key: a cache miss per row, which cost the writing thread ~10 % of an
/// exhaustive aggregate and the lesson stage's read ~0.1 s (docs/benchmarks.md).
#[derive(Debug, Default)]
struct KeyIndex {
    /// Sorted as unsigned numbers.
    keys: Vec<(u64, u64)>,
    mask_ranges: FxHashMap<u64, Range<usize>>,
}

impl KeyIndex {
    /// `keys` must be sorted.
    fn new(keys: Vec<(u64, u64)>) -> Self {
        debug_assert!(keys.is_sorted());
        let mut mask_ranges = FxHashMap::default();
        let mut start = 0;
        for (i, pair) in keys.windows(2).enumerate() {
            if pair[0].0 != pair[1].0 {
                mask_ranges.insert(pair[0].0, start..i + 1);
                start = i + 1;
            }
        }
        if let Some(last) = keys.last() {
            mask_ranges.insert(last.0, start..keys.len());
        }
        Self { keys, mask_ranges }
    }

    fn finder(&self) -> KeyFinder<'_> {
        KeyFinder {
            index: self,
            mask: None,
            range: 0..0,
        }
    }
}

/// Finds keys in a [`KeyIndex`], keeping the last mask's stretch.
struct KeyFinder<'i> {
    index: &'i KeyIndex,
    mask: Option<u64>,
    range: Range<usize>,
}

impl KeyFinder<'_> {
    /// The key's position in the index.
    #[inline]
    fn find(&mut self, mask: u64, hash: u64) -> Option<usize> {
        if self.mask != Some(mask) {
            self.mask = Some(mask);
            self.range = self.index.mask_ranges.get(&mask).cloned().unwrap_or(0..0);
        }
        let stretch = &self.index.keys[self.range.clone()];
        let found = stretch.binary_search_by_key(&hash, |k| k.1).ok()?;
        Some(self.range.start + found)
    }
}

/// The keys of the scope texts a store holds, read once before rows are written.
#[derive(Debug)]
pub struct StoredScopes {
    index: KeyIndex,
    /// Unique to this load: a [`ScopeUse`] names the load it was classified against, since its
    /// positions mean nothing against another (a writer that took them would delete texts rows
    /// still use).
    id: u64,
}

/// The source of [`StoredScopes::id`].
static NEXT_LOAD_ID: AtomicU64 = AtomicU64::new(1);

/// What a group's rows need of `stats_scopes`: which rows have a scope the store held no text for
/// when loaded, and which stored texts the rows use. Its size follows the group's rows, not the
/// store's texts: groups wait in a queue ahead of the writer.
#[derive(Debug, Clone)]
pub struct ScopeUse {
    /// The [`StoredScopes`] it was classified against.
    load_id: u64,
    /// The number of rows classified.
    rows: usize,
    /// Indices (into the rows classified) of the scopes not stored.
    unseen: Vec<u32>,
    /// Positions of the stored keys the other rows have.
    used: Vec<u32>,
}

impl StoredScopes {
    /// The stored keys (read through the key's index: the texts themselves are not read).
    pub fn load(conn: &Connection) -> Result<Self> {
        let mut stmt = conn.prepare("SELECT scope_mask, scope_values_hash FROM stats_scopes")?;
        let mut rows = stmt.query([])?;
        let mut keys = Vec::new();
        while let Some(r) = rows.next()? {
            keys.push((u64_from_sql(r.get(0)?), u64_from_sql(r.get(1)?)));
        }
        keys.sort_unstable();
        Ok(Self {
            index: KeyIndex::new(keys),
            id: NEXT_LOAD_ID.fetch_add(1, Ordering::Relaxed),
        })
    }

    /// The number of stored texts.
    pub fn len(&self) -> usize {
        self.index.keys.len()
    }

    /// Whether the store holds no scope text.
    pub fn is_empty(&self) -> bool {
        self.index.keys.is_empty()
    }

    /// Classify the keys of a group's rows, which the writer is then handed.
    pub fn classify(&self, rows: &(impl SubsetRows + ?Sized)) -> ScopeUse {
        let mut use_ = ScopeUse {
            load_id: self.id,
            rows: rows.len(),
            unseen: Vec::new(),
            used: Vec::new(),
        };
        let mut finder = self.index.finder();
        for i in 0..rows.len() {
            let (mask, hash) = rows.key(i);
            match finder.find(mask, hash) {
                Some(p) => use_.used.push(p as u32),
                None => use_.unseen.push(i as u32),
            }
        }
        use_
    }
}

/// Every stored scope text by key, for a read of every row: one buffer, not a string each.
pub(crate) struct ScopeTexts {
    index: KeyIndex,
    /// Each key's text in `buffer`, by position in the index.
    spans: Vec<Range<usize>>,
    buffer: String,
}

impl ScopeTexts {
    pub(crate) fn load(conn: &Connection) -> Result<Self> {
        let mut stmt =
            conn.prepare("SELECT scope_mask, scope_values_hash, scope_values FROM stats_scopes")?;
        let mut rows = stmt.query([])?;
        let mut buffer = String::new();
        let mut entries = Vec::new();
        while let Some(r) = rows.next()? {
            let key = (u64_from_sql(r.get(0)?), u64_from_sql(r.get(1)?));
            let start = buffer.len();
            buffer.push_str(crate::text_column(r, 2)?);
            entries.push((key, start..buffer.len()));
        }
        entries.sort_unstable_by_key(|(key, _)| *key);
        let (keys, spans) = entries.into_iter().unzip();
        Ok(Self {
            index: KeyIndex::new(keys),
            spans,
            buffer,
        })
    }

    /// A lookup for rows read in key order.
    pub(crate) fn lookup(&self) -> ScopeTextLookup<'_> {
        ScopeTextLookup {
            texts: self,
            finder: self.index.finder(),
        }
    }
}

/// Finds the texts of [`ScopeTexts`].
pub(crate) struct ScopeTextLookup<'t> {
    texts: &'t ScopeTexts,
    finder: KeyFinder<'t>,
}

impl ScopeTextLookup<'_> {
    /// The text of scope (`mask`, `hash`); an error names a row without one.
    pub(crate) fn get(&mut self, mask: u64, hash: u64) -> Result<&str> {
        let position = self.finder.find(mask, hash).ok_or_else(|| {
            crate::StoreError::Corrupt(format!(
                "stats_subsets has a row of scope mask {mask}, hash {hash} that stats_scopes has no text for"
            ))
        })?;
        Ok(&self.texts.buffer[self.texts.spans[position].clone()])
    }
}

/// A writer's account of `stats_scopes`: the texts it inserted and the stored ones its rows use.
#[derive(Default)]
pub(crate) struct ScopeLedger<'c> {
    inserted: rustc_hash::FxHashSet<(u64, u64)>,
    /// One bit per stored key, by position: set when a row uses it.
    used: Vec<u64>,
    /// Prepared at the first text to insert: a first night inserts every scope (80,311 at 8,000
    /// trades, exhaustive), later ones a few.
    insert: Option<RawInsert<'c>>,
}

impl<'c> ScopeLedger<'c> {
    /// Record the use of a group's `rows`, classified against `stored`. Inserts the texts
    /// neither the store nor an earlier group of this writer had. A classification of other rows
    /// or against another load is an error, not a guess.
    pub(crate) fn record(
        &mut self,
        conn: &'c Connection,
        stored: &StoredScopes,
        rows: &(impl SubsetRows + ?Sized),
        use_: &ScopeUse,
    ) -> Result<()> {
        if use_.load_id != stored.id || use_.rows != rows.len() {
            return Err(StoreError::Misuse(format!(
                "a group of {} rows was handed with the scope classification of {} rows \
                 (load {}, the writer's {})",
                rows.len(),
                use_.rows,
                use_.load_id,
                stored.id
            )));
        }
        self.used.resize(stored.len().div_ceil(64), 0);
        for &p in &use_.used {
            self.used[p as usize / 64] |= 1 << (p % 64);
        }
        for &i in &use_.unseen {
            let (mask, hash) = rows.key(i as usize);
            let text = rows.scope_values(i as usize);
            if !self.inserted.insert((mask, hash)) {
                continue;
            }
            let insert = match &mut self.insert {
                Some(insert) => insert,
                empty => empty.insert(RawInsert::prepare(
                    conn,
                    "INSERT INTO stats_scopes (scope_mask, scope_values_hash, scope_dims, scope_values)
                     VALUES (?1, ?2, ?3, ?4)",
                )?),
            };
            insert.execute(|params| {
                params.push(Value::Integer(u64_to_sql(mask)))?;
                params.push(Value::Integer(u64_to_sql(hash)))?;
                params.push(Value::Integer(i64::from(mask.count_ones())))?;
                params.push(Value::Text(text))
            })?;
        }
        Ok(())
    }

    /// Delete the stored texts no recorded row uses: for a writer that replaced every row, so
    /// that the table holds exactly the scopes of the stored rows. Returns how many.
    pub(crate) fn delete_unused(&self, conn: &Connection, stored: &StoredScopes) -> Result<u64> {
        let mut delete = conn.prepare_cached(
            "DELETE FROM stats_scopes WHERE scope_mask = ?1 AND scope_values_hash = ?2",
        )?;
        let mut deleted = 0;
        for (p, (mask, hash)) in stored.index.keys.iter().enumerate() {
            let used = self
                .used
                .get(p / 64)
                .is_some_and(|w| w & (1 << (p % 64)) != 0);
            if !used {
                delete.execute([u64_to_sql(*mask), u64_to_sql(*hash)])?;
                deleted += 1;
            }
        }
        Ok(deleted)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnloop_model::stats::OutcomeStats;
    use std::collections::BTreeSet;

    /// Keys as a group's rows (the tests here look at keys; every text is the same, the
    /// statistics empty).
    struct KeyRows<'k> {
        keys: &'k [(u64, u64)],
        stats: OutcomeStats,
    }

    fn rows_of(keys: &[(u64, u64)]) -> KeyRows<'_> {
        KeyRows {
            keys,
            stats: OutcomeStats::default(),
        }
    }

    impl SubsetRows for KeyRows<'_> {
        fn len(&self) -> usize {
            self.keys.len()
        }
        fn key(&self, i: usize) -> (u64, u64) {
            self.keys[i]
        }
        fn stats(&self, _: usize) -> &OutcomeStats {
            &self.stats
        }
        fn scope_values(&self, _: usize) -> &str {
            r#"{"new":"text"}"#
        }
    }

    /// A small deterministic generator: keys drawn from few masks and hashes, so that they repeat
    /// and share masks as a group's rows do.
    fn draws(seed: u64, n: usize, hashes: u64) -> Vec<(u64, u64)> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                // High masks and hashes too: their order as signed numbers differs.
                let mask = [0, 1, 6, u64::MAX - 3][(x >> 60) as usize % 4];
                let hash = ((x >> 20) % hashes).wrapping_mul(0x2000_0000_0000_0001);
                (mask, hash)
            })
            .collect()
    }

    fn store_with(keys: &BTreeSet<(u64, u64)>) -> Connection {
        let conn = crate::open_in_memory().unwrap();
        for (mask, hash) in keys {
            conn.execute(
                "INSERT INTO stats_scopes VALUES (?1, ?2, ?3, ?4)",
                rusqlite::params![
                    u64_to_sql(*mask),
                    u64_to_sql(*hash),
                    mask.count_ones(),
                    format!("{mask}/{hash}")
                ],
            )
            .unwrap();
        }
        conn
    }

    #[test]
    fn classify_agrees_with_a_set_of_the_stored_keys() {
        // Few keys, and (the last seeds) hundreds, whose positions span several bitmap words.
        for seed in 0..44 {
            let (n_stored, hashes) = if seed < 40 { (12, 9) } else { (400, 200) };
            let stored: BTreeSet<(u64, u64)> = draws(seed, n_stored, hashes).into_iter().collect();
            let conn = store_with(&stored);
            let scopes = StoredScopes::load(&conn).unwrap();
            assert_eq!(scopes.len(), stored.len());
            let rows = draws(seed + 1_000, 3 * n_stored, hashes);
            let classified = scopes.classify(&rows_of(&rows));
            let unseen: Vec<u32> = (0u32..)
                .zip(&rows)
                .filter(|(_, k)| !stored.contains(k))
                .map(|(i, _)| i)
                .collect();
            assert_eq!(classified.unseen, unseen, "seed {seed}");
            // The used bits name exactly the stored keys some row has.
            let used: BTreeSet<(u64, u64)> = classified
                .used
                .iter()
                .map(|&p| scopes.index.keys[p as usize])
                .collect();
            let expected: BTreeSet<(u64, u64)> = rows
                .iter()
                .filter(|k| stored.contains(k))
                .copied()
                .collect();
            assert_eq!(used, expected, "seed {seed}");
            // Texts are found by key, whatever the order of the reads.
            let texts = ScopeTexts::load(&conn).unwrap();
            let mut lookup = texts.lookup();
            for (mask, hash) in rows.iter().rev() {
                let found = lookup.get(*mask, *hash).ok().map(str::to_string);
                let wanted = stored
                    .contains(&(*mask, *hash))
                    .then(|| format!("{mask}/{hash}"));
                assert_eq!(found, wanted, "seed {seed}");
            }
        }
    }

    #[test]
    fn a_ledger_deletes_exactly_the_stored_texts_no_recorded_row_uses() {
        let stored_keys: BTreeSet<(u64, u64)> = draws(7, 500, 300).into_iter().collect();
        assert!(
            stored_keys.len() > 130,
            "positions beyond the bitmap's first words"
        );
        let conn = store_with(&stored_keys);
        let stored = StoredScopes::load(&conn).unwrap();
        let mut ledger = ScopeLedger::default();
        let mut kept = BTreeSet::new();
        for seed in [11, 12, 13] {
            let rows: Vec<(u64, u64)> = draws(seed, 60, 400);
            let use_ = stored.classify(&rows_of(&rows));
            ledger
                .record(&conn, &stored, &rows_of(&rows), &use_)
                .unwrap();
            kept.extend(rows);
        }
        ledger.delete_unused(&conn, &stored).unwrap();
        let left: BTreeSet<(u64, u64)> = conn
            .prepare("SELECT scope_mask, scope_values_hash FROM stats_scopes")
            .unwrap()
            .query_map([], |r| {
                Ok((u64_from_sql(r.get(0)?), u64_from_sql(r.get(1)?)))
            })
            .unwrap()
            .map(|r| r.unwrap())
            .collect();
        assert_eq!(
            left, kept,
            "the rows' keys, stored before or inserted, and no other"
        );
    }

    #[test]
    fn a_classification_of_other_rows_or_another_load_is_refused() {
        let conn = store_with(&draws(3, 20, 9).into_iter().collect());
        let (stored, other) = (
            StoredScopes::load(&conn).unwrap(),
            StoredScopes::load(&conn).unwrap(),
        );
        let rows = draws(4, 10, 9);
        let mut ledger = ScopeLedger::default();
        let of_other = other.classify(&rows_of(&rows));
        let err = ledger
            .record(&conn, &stored, &rows_of(&rows), &of_other)
            .unwrap_err();
        assert!(matches!(err, StoreError::Misuse(_)), "{err}");
        let of_fewer = stored.classify(&rows_of(&rows[1..]));
        let err = ledger
            .record(&conn, &stored, &rows_of(&rows), &of_fewer)
            .unwrap_err();
        assert!(matches!(err, StoreError::Misuse(_)), "{err}");
    }
}
