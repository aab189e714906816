//! One `pattern_scope_stats` row per (module, pattern, category, scope subset), and rows held
//! in several contiguous parts (the replay keeps one per group, updated in place
//! from step to step) and addressed as one sequence, so that nothing is copied to hand them on.

use crate::{ActionCategory, OutcomeStats, Timestamp};
use std::ops::Index;
use std::sync::Arc;

/// The statistics of one scope subset (`pattern_scope_stats`). Module and pattern are shared by
/// every row of a group: rows hold one reference-counted copy per group, not a string each (the
/// replay and the lesson stage hold millions of rows).
#[derive(Debug, Clone, PartialEq)]
pub struct StatsRow {
    /// Producing module.
    pub module: Arc<str>,
    /// The pattern.
    pub pattern_key: Arc<str>,
    /// The action category.
    pub category: ActionCategory,
    /// Bit mask of the subset's dimensions.
    pub scope_mask: u64,
    /// Sorted-key JSON object of the subset's `dim: value` pairs.
    pub scope_values: String,
    /// Stable hash of `scope_values`.
    pub scope_values_hash: u64,
    /// The subset's statistics, one observation per trade.
    pub stats: OutcomeStats,
    /// As-of time of the run that computed them.
    pub as_of: Timestamp,
}

/// Stats rows in several parts, addressed as one sequence.
#[derive(Debug, Clone, Default)]
pub struct StatsView<'a> {
    parts: Vec<&'a [StatsRow]>,
    /// Index of the first row of each part.
    starts: Vec<usize>,
    len: usize,
}

impl<'a> StatsView<'a> {
    /// Rows in the order of `parts`, then of each part (empty parts are skipped).
    pub fn new(parts: impl IntoIterator<Item = &'a [StatsRow]>) -> Self {
        let mut view = Self::default();
        for part in parts.into_iter().filter(|p| !p.is_empty()) {
            view.starts.push(view.len);
            view.len += part.len();
            view.parts.push(part);
        }
        view
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Each part with the index of its first row.
    pub fn parts(&self) -> impl Iterator<Item = (usize, &'a [StatsRow])> + '_ {
        self.starts.iter().copied().zip(self.parts.iter().copied())
    }

    /// The rows in sequence order.
    pub fn iter(&self) -> impl Iterator<Item = &'a StatsRow> + '_ {
        self.parts.iter().flat_map(|p| p.iter())
    }

    /// The rows copied into one vector.
    pub fn to_vec(&self) -> Vec<StatsRow> {
        self.iter().cloned().collect()
    }
}

impl<'a> From<&'a [StatsRow]> for StatsView<'a> {
    fn from(rows: &'a [StatsRow]) -> Self {
        Self::new([rows])
    }
}

impl Index<usize> for StatsView<'_> {
    type Output = StatsRow;

    fn index(&self, i: usize) -> &StatsRow {
        assert!(i < self.len, "row {i} of a view of {} rows", self.len);
        let part = self.starts.partition_point(|&s| s <= i) - 1;
        &self.parts[part][i - self.starts[part]]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(mask: u64) -> StatsRow {
        StatsRow {
            module: "m".into(),
            pattern_key: "p".into(),
            category: ActionCategory::Entry,
            scope_mask: mask,
            scope_values: "{}".into(),
            scope_values_hash: mask,
            stats: Default::default(),
            as_of: Timestamp(0),
        }
    }

    #[test]
    fn indexes_across_parts_like_the_concatenation() {
        let a: Vec<StatsRow> = (0..3).map(row).collect();
        let b: Vec<StatsRow> = Vec::new();
        let c: Vec<StatsRow> = (3..8).map(row).collect();
        let view = StatsView::new([a.as_slice(), b.as_slice(), c.as_slice()]);
        assert_eq!(view.len(), 8);
        for i in 0..8 {
            assert_eq!(view[i].scope_mask, i as u64);
        }
        let offsets: Vec<usize> = view.parts().map(|(o, _)| o).collect();
        assert_eq!(offsets, [0, 3]);
        assert_eq!(view.iter().count(), 8);
        assert_eq!(view.to_vec().len(), 8);
    }

    #[test]
    #[should_panic(expected = "row 2 of a view of 2 rows")]
    fn out_of_range_is_named() {
        let a: Vec<StatsRow> = (0..2).map(row).collect();
        let _ = &StatsView::from(a.as_slice())[2];
    }
}
