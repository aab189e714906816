//! Simplest-first selection of lessons within each (pattern, category) group.

use std::collections::{BTreeMap, BTreeSet};

/// A lesson candidate that passed every other test.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SelectionCandidate<'a> {
    /// The group the limit applies to, e.g. `pattern_key` + `action_category`.
    pub group: &'a str,
    /// Number of scope dimensions of the subset.
    pub dims: u32,
    /// |t| of the subset (the sign is ignored; NaN ranks last).
    pub abs_t: f64,
    pub key: &'a str,
}

/// Keep at most `max_per_group` candidates per group, simplest first: fewest dims, then largest
/// |t|, then smallest key (so the choice is deterministic). A key listed twice is selected once
/// and counts once. Returns the selected keys; the others are rejected for the reason "limit".
pub fn select_simplest<'a>(
    candidates: &[SelectionCandidate<'a>],
    max_per_group: usize,
) -> BTreeSet<&'a str> {
    let mut ordered: Vec<&SelectionCandidate<'a>> = candidates.iter().collect();
    ordered.sort_by(|a, b| {
        a.group
            .cmp(b.group)
            .then(a.dims.cmp(&b.dims))
            .then(rank(b.abs_t).total_cmp(&rank(a.abs_t)))
            .then(a.key.cmp(b.key))
    });
    let mut taken: BTreeMap<&str, usize> = BTreeMap::new();
    let mut selected = BTreeSet::new();
    for c in ordered {
        if selected.contains(c.key) {
            continue;
        }
        let count = taken.entry(c.group).or_default();
        if *count < max_per_group {
            *count += 1;
            selected.insert(c.key);
        }
    }
    selected
}

fn rank(abs_t: f64) -> f64 {
    if abs_t.is_nan() {
        f64::NEG_INFINITY
    } else {
        abs_t.abs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cand<'a>(group: &'a str, dims: u32, abs_t: f64, key: &'a str) -> SelectionCandidate<'a> {
        SelectionCandidate {
            group,
            dims,
            abs_t,
            key,
        }
    }

    #[test]
    fn fewest_dims_then_largest_t_then_key() {
        let cs = [
            cand("p", 2, 9.0, "p-2a"),
            cand("p", 1, 3.0, "p-1a"),
            cand("p", 1, 4.0, "p-1b"),
            cand("p", 0, 2.0, "p-root"),
            cand("p", 1, 4.0, "p-1c"),
            cand("q", 3, -5.0, "q-3"),
            cand("q", 3, f64::NAN, "q-nan"),
        ];
        let s = select_simplest(&cs, 3);
        // p: root (0 dims), then 1-dim with |t| 4 (two of them, tie by key: 1b before 1c).
        // q: both fit under the limit; NaN does not panic.
        let expected: BTreeSet<&str> = ["p-root", "p-1b", "p-1c", "q-3", "q-nan"].into();
        assert_eq!(s, expected);
        let one = select_simplest(&cs, 1);
        let expected: BTreeSet<&str> = ["p-root", "q-3"].into();
        assert_eq!(one, expected);
        assert!(select_simplest(&cs, 0).is_empty());
        assert!(select_simplest(&[], 3).is_empty());
    }

    #[test]
    fn duplicates_count_once_and_input_order_does_not_matter() {
        let cs = [
            cand("p", 1, 2.0, "a"),
            cand("p", 1, 2.0, "a"),
            cand("p", 1, 1.0, "b"),
        ];
        let expected: BTreeSet<&str> = ["a", "b"].into();
        assert_eq!(select_simplest(&cs, 2), expected);
        let mut rev = cs;
        rev.reverse();
        assert_eq!(select_simplest(&rev, 2), expected);
    }
}
