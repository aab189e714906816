//! The stats rows the stage reads after its tests (verdicts, selection, lifecycle, candidate
//! rows): the subset's identity, scope and count/mean/spread of R. The replay hands its rows in
//! memory; the nightly stage streams the table and keeps only these figures of its tested rows
//! (a 100k-trade book tests ~3 M subsets: a whole `StatsRow` with its moments is ~300 bytes, these
//! ~130 with the scope text).

use learnloop_model::stats::RunningStats;
use learnloop_model::{ActionCategory, StatsRow, StatsView};
use std::sync::Arc;

/// What the stage reads of one stats row after its tests.
#[derive(Debug, Clone, Copy)]
pub struct RowRef<'a> {
    pub module: &'a str,
    pub pattern_key: &'a str,
    pub category: ActionCategory,
    pub scope_mask: u64,
    /// Sorted-key JSON of the subset's pairs.
    pub scope_values: &'a str,
    pub scope_values_hash: u64,
    /// Winsorized R, one observation per trade.
    pub r: RunningStats,
}

impl RowRef<'_> {
    /// Trades behind the row.
    pub fn n_trades(&self) -> u64 {
        self.r.n
    }
}

impl<'a> From<&'a StatsRow> for RowRef<'a> {
    fn from(r: &'a StatsRow) -> Self {
        Self {
            module: &r.module,
            pattern_key: &r.pattern_key,
            category: r.category,
            scope_mask: r.scope_mask,
            scope_values: &r.scope_values,
            scope_values_hash: r.scope_values_hash,
            r: r.stats.r,
        }
    }
}

/// Rows addressed by their index in the run's stats.
pub trait StageRows {
    /// Row `i`.
    fn row(&self, i: usize) -> RowRef<'_>;
    /// How many rows there are.
    fn len(&self) -> usize;
}

impl StageRows for StatsView<'_> {
    fn row(&self, i: usize) -> RowRef<'_> {
        RowRef::from(&self[i])
    }

    fn len(&self) -> usize {
        StatsView::len(self)
    }
}

/// The run's rows followed by the deep subsets the lesson stage computed itself
/// (`family::test_family`): index `base.len() + j` is `extra[j]`.
pub struct WithComputed<'a> {
    pub base: &'a dyn StageRows,
    pub extra: &'a [StatsRow],
}

impl StageRows for WithComputed<'_> {
    fn row(&self, i: usize) -> RowRef<'_> {
        match i.checked_sub(self.base.len()) {
            Some(j) => RowRef::from(&self.extra[j]),
            None => self.base.row(i),
        }
    }

    fn len(&self) -> usize {
        self.base.len() + self.extra.len()
    }
}

/// The nightly stage's tested rows (and their nearest parents), kept while it streams the stats:
/// a row's figures, its scope text in fixed-size chunks of one arena, its group's names once per
/// group. Neither the rows nor the text are ever moved once kept: a growing vector of several
/// hundred MB is copied when it doubles, and in a process whose heap an earlier stage left large
/// (the nightly run), both copies stay resident at the stage's peak.
#[derive(Debug)]
pub struct KeptRows {
    groups: Vec<(Arc<str>, Arc<str>, ActionCategory)>,
    rows: Vec<KeptRow>,
    /// The kept rows' scope texts, one after the other within a chunk of `chunk_bytes` bytes
    /// (a text longer than that has a chunk of its own).
    text: Vec<String>,
    chunk_bytes: usize,
}

impl Default for KeptRows {
    fn default() -> Self {
        Self::with_capacity(0)
    }
}

/// Bytes of scope text per chunk of [`KeptRows`]'s arena.
const TEXT_CHUNK: usize = 8 << 20;

#[derive(Debug, Clone, Copy)]
struct KeptRow {
    scope_mask: u64,
    scope_values_hash: u64,
    r: RunningStats,
    group: u32,
    /// The scope text: its chunk, start and length.
    text_chunk: u32,
    text_start: u32,
    text_len: u32,
}

impl KeptRows {
    /// Room for `rows` rows (the caller's bound on how many it will keep).
    pub fn with_capacity(rows: usize) -> Self {
        Self {
            groups: Vec::new(),
            rows: Vec::with_capacity(rows),
            text: Vec::new(),
            chunk_bytes: TEXT_CHUNK,
        }
    }

    /// Keep `r`; returns its index.
    pub fn push(&mut self, r: &StatsRow) -> usize {
        // A group's rows are contiguous in the stats' key order.
        let same_group = self
            .groups
            .last()
            .is_some_and(|(m, p, c)| *c == r.category && **p == *r.pattern_key && **m == *r.module);
        if !same_group {
            self.groups
                .push((r.module.clone(), r.pattern_key.clone(), r.category));
        }
        let (text_chunk, text_start) = self.text_room(r.scope_values.len());
        self.text[text_chunk].push_str(&r.scope_values);
        self.rows.push(KeptRow {
            scope_mask: r.scope_mask,
            scope_values_hash: r.scope_values_hash,
            r: r.stats.r,
            group: (self.groups.len() - 1) as u32,
            text_chunk: text_chunk as u32,
            text_start: text_start as u32,
            text_len: r.scope_values.len() as u32,
        });
        self.rows.len() - 1
    }

    /// The chunk (and the offset in it) where `len` more bytes of text go without growing it.
    fn text_room(&mut self, len: usize) -> (usize, usize) {
        match self.text.last() {
            Some(last) if last.capacity() - last.len() >= len => (self.text.len() - 1, last.len()),
            _ => {
                self.text
                    .push(String::with_capacity(len.max(self.chunk_bytes)));
                (self.text.len() - 1, 0)
            }
        }
    }

    /// Release the capacity left over.
    pub fn shrink_to_fit(&mut self) {
        self.rows.shrink_to_fit();
        if let Some(last) = self.text.last_mut() {
            last.shrink_to_fit();
        }
        self.groups.shrink_to_fit();
    }
}

impl StageRows for KeptRows {
    fn len(&self) -> usize {
        self.rows.len()
    }

    fn row(&self, i: usize) -> RowRef<'_> {
        let k = &self.rows[i];
        let start = k.text_start as usize;
        let scope_values = &self.text[k.text_chunk as usize][start..start + k.text_len as usize];
        let (module, pattern_key, category) = &self.groups[k.group as usize];
        RowRef {
            module,
            pattern_key,
            category: *category,
            scope_mask: k.scope_mask,
            scope_values,
            scope_values_hash: k.scope_values_hash,
            r: k.r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnloop_model::Timestamp;

    fn row(module: &Arc<str>, pattern: &Arc<str>, scope: &str, n: u64) -> StatsRow {
        let stats = learnloop_model::stats::OutcomeStats {
            r: RunningStats {
                n,
                mean: n as f64 / 10.0,
                m2: 2.0 * n as f64,
            },
            ..Default::default()
        };
        StatsRow {
            module: module.clone(),
            pattern_key: pattern.clone(),
            category: ActionCategory::Add,
            scope_mask: n,
            scope_values: scope.into(),
            scope_values_hash: n * 7,
            stats,
            as_of: Timestamp(0),
        }
    }

    #[test]
    fn kept_rows_read_back_as_the_rows_they_keep() {
        let (m, p, q): (Arc<str>, Arc<str>, Arc<str>) = ("dm".into(), "up.S3".into(), "dn".into());
        let rows = vec![
            row(&m, &p, "{}", 30),
            row(&m, &p, r#"{"bucket":"micro"}"#, 12),
            row(&m, &q, "{}", 40),
            row(&m, &q, "", 41),
            row(&m, &q, r#"{"a":"1","b":"2"}"#, 11),
            row(&m, &q, r#"{"long_dimension":"value"}"#, 10),
        ];
        // Chunks of 20 bytes: the third row's text starts a new chunk, the longer last one has
        // its own.
        let mut kept = KeptRows {
            chunk_bytes: 20,
            ..KeptRows::default()
        };
        for r in &rows {
            kept.push(r);
        }
        kept.shrink_to_fit();
        let view = StatsView::from(rows.as_slice());
        assert_eq!(kept.rows.len(), rows.len());
        assert_eq!(kept.groups.len(), 2);
        let chunks: Vec<&str> = kept.text.iter().map(String::as_str).collect();
        assert_eq!(
            chunks,
            [
                r#"{}{"bucket":"micro"}"#,
                r#"{}{"a":"1","b":"2"}"#,
                r#"{"long_dimension":"value"}"#
            ]
        );
        for i in 0..rows.len() {
            let (a, b) = (kept.row(i), view.row(i));
            assert_eq!(
                (a.module, a.pattern_key, a.category, a.scope_mask),
                (b.module, b.pattern_key, b.category, b.scope_mask)
            );
            assert_eq!(
                (a.scope_values, a.scope_values_hash, a.r),
                (b.scope_values, b.scope_values_hash, b.r)
            );
        }
    }
}
