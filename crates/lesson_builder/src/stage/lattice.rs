//! The lattice of a group's stored subsets: each subset's exact parents (the subset without one of
//! its dims) and children, by row index. Built from the scope texts once; a caller that runs the
//! stage again and again over growing groups (the replay) keeps it, and the next run only remaps
//! the indices and links the subsets that appeared since.

use super::LessonKey;
use learnloop_model::hash::StableHasher;
use learnloop_model::scope::{canonical_pairs_into, hashes_without_each, scope_pairs};
use learnloop_model::{ActionCategory, DimensionList, StatsRow};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// `Link::row` of a parent that is not among the group's stored subsets.
pub const NOT_STORED: u32 = u32::MAX;

/// `Link::dim` of a scope key that is not a configured dimension.
const UNKNOWN_DIM: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The dimension that tells parent and child apart.
    pub dim: u32,
    /// The other end's row within the group.
    pub row: u32,
}

/// A subset's identity, ordered as the stats rows are (the table's signed-integer key).
fn id_of(r: &StatsRow) -> (i64, i64) {
    (r.scope_mask as i64, r.scope_values_hash as i64)
}

#[derive(Debug, Clone, Default)]
pub struct Lattice {
    ids: Vec<(i64, i64)>,
    /// Compressed rows: the parents of row i are `parents[parent_start[i]..parent_start[i + 1]]`,
    /// in the order of the scope's pairs (by dimension name).
    parent_start: Vec<u32>,
    parents: Vec<Link>,
    /// Children of row i, ascending by row.
    child_start: Vec<u32>,
    children: Vec<Link>,
    /// Some subset has a parent that is not stored (only possible for unusual scopes).
    has_missing: bool,
    /// Each subset's lesson key, for a lattice kept between runs (empty otherwise).
    keys: Vec<LessonKey>,
}

impl Lattice {
    pub fn parents(&self, row: usize) -> &[Link] {
        &self.parents[self.parent_start[row] as usize..self.parent_start[row + 1] as usize]
    }

    pub fn children(&self, row: usize) -> &[Link] {
        &self.children[self.child_start[row] as usize..self.child_start[row + 1] as usize]
    }

    /// The subset's lesson key, if this lattice keeps them.
    pub fn key(&self, row: usize) -> Option<LessonKey> {
        self.keys.get(row).copied()
    }

    /// [`Lattice::build`], also keeping each subset's lesson key (for a lattice kept between runs).
    pub fn build_keyed(rows: &[StatsRow], dims: &DimensionList) -> Self {
        let mut lattice = Self::build(rows, dims);
        lattice.keys = keys_of(rows);
        lattice
    }

    /// The lattice of `rows` (one group), from their scope texts.
    pub fn build(rows: &[StatsRow], dims: &DimensionList) -> Self {
        let index: FxHashMap<(u64, u64), u32> = rows
            .iter()
            .enumerate()
            .map(|(i, r)| ((r.scope_mask, r.scope_values_hash), i as u32))
            .collect();
        let find = |mask: u64, hash: u64| index.get(&(mask, hash)).copied();
        let mut keys = ParentKeys::new(dims);
        let mut lattice = Self::default();
        lattice.parent_start.push(0);
        for r in rows {
            lattice.ids.push(id_of(r));
            lattice.link_parents(r, &mut keys, find);
        }
        lattice.link_children();
        lattice
    }

    /// The lattice of `rows`, which are this lattice's rows plus new subsets (the same group at a
    /// later step, sorted the same way). Old links are remapped; only new subsets' scopes are
    /// read. Anything else (a subset gone, rows out of order) is built from scratch.
    pub fn update(self, rows: &[StatsRow], dims: &DimensionList) -> Self {
        if self.ids.len() == rows.len() && self.ids.iter().zip(rows).all(|(&id, r)| id == id_of(r))
        {
            return self;
        }
        let keyed = !self.keys.is_empty();
        let rebuild = |rows: &[StatsRow]| {
            if keyed {
                Self::build_keyed(rows, dims)
            } else {
                Self::build(rows, dims)
            }
        };
        let Some(new_of_old) = self.merge_map(rows) else {
            return rebuild(rows);
        };
        if self.has_missing && new_of_old.len() < rows.len() {
            // A new subset may be the missing parent of an old one.
            return rebuild(rows);
        }
        let sorted_find = |mask: u64, hash: u64| {
            rows.binary_search_by_key(&(mask as i64, hash as i64), id_of)
                .ok()
                .map(|i| i as u32)
        };
        let mut keys = ParentKeys::new(dims);
        let mut lattice = Self::default();
        lattice.parent_start.push(0);
        let mut old = 0usize;
        let prefix = rows.first().map(group_prefix);
        for (i, r) in rows.iter().enumerate() {
            lattice.ids.push(id_of(r));
            if old < new_of_old.len() && new_of_old[old] as usize == i {
                if keyed {
                    lattice.keys.push(self.keys[old]);
                }
                let remapped = self.parents(old).iter().map(|l| Link {
                    dim: l.dim,
                    row: if l.row == NOT_STORED {
                        NOT_STORED
                    } else {
                        new_of_old[l.row as usize]
                    },
                });
                lattice.parents.extend(remapped);
                lattice.parent_start.push(lattice.parents.len() as u32);
                old += 1;
            } else {
                lattice.link_parents(r, &mut keys, sorted_find);
                if let (true, Some(prefix)) = (keyed, prefix) {
                    lattice
                        .keys
                        .push(LessonKey::in_group(prefix, &r.scope_values));
                }
            }
        }
        lattice.has_missing |= self.has_missing;
        lattice.link_children();
        lattice
    }

    /// Where each old row is among `rows`, if every old row is still there and both are sorted.
    fn merge_map(&self, rows: &[StatsRow]) -> Option<Vec<u32>> {
        let mut map = Vec::with_capacity(self.ids.len());
        let mut j = 0usize;
        for &id in &self.ids {
            while j < rows.len() && id_of(&rows[j]) < id {
                j += 1;
            }
            if j == rows.len() || id_of(&rows[j]) != id {
                return None;
            }
            map.push(j as u32);
            j += 1;
        }
        let sorted = rows.windows(2).all(|w| id_of(&w[0]) < id_of(&w[1]));
        sorted.then_some(map)
    }

    fn link_parents<'a>(
        &mut self,
        r: &'a StatsRow,
        keys: &mut ParentKeys<'_, 'a>,
        find: impl Fn(u64, u64) -> Option<u32>,
    ) {
        for &(dim, parent_hash) in keys.of(r.scope_mask, &r.scope_values) {
            let parent_mask = parent_mask_without(r.scope_mask, dim);
            let row = find(parent_mask, parent_hash).unwrap_or(NOT_STORED);
            self.has_missing |= row == NOT_STORED;
            self.parents.push(Link { dim, row });
        }
        self.parent_start.push(self.parents.len() as u32);
    }

    fn link_children(&mut self) {
        let n = self.ids.len();
        let mut counts = vec![0u32; n + 1];
        for l in self.parents.iter().filter(|l| l.row != NOT_STORED) {
            counts[l.row as usize + 1] += 1;
        }
        for i in 0..n {
            counts[i + 1] += counts[i];
        }
        let mut next = counts.clone();
        self.children = vec![Link { dim: 0, row: 0 }; counts[n] as usize];
        for child in 0..n {
            let links = self.parent_start[child] as usize..self.parent_start[child + 1] as usize;
            for l in &self.parents[links] {
                if l.row != NOT_STORED {
                    let at = &mut next[l.row as usize];
                    self.children[*at as usize] = Link {
                        dim: l.dim,
                        row: child as u32,
                    };
                    *at += 1;
                }
            }
        }
        self.child_start = counts;
    }
}

/// The mask of a subset without dimension `dim` (a scope key that is not a configured dimension
/// has no bit: the mask is unchanged).
fn parent_mask_without(mask: u64, dim: u32) -> u64 {
    if dim < 64 {
        mask & !(1u64 << dim)
    } else {
        mask
    }
}

fn group_prefix(first: &StatsRow) -> StableHasher {
    LessonKey::group_prefix(&first.module, &first.pattern_key, first.category)
}

fn keys_of(rows: &[StatsRow]) -> Vec<LessonKey> {
    let Some(prefix) = rows.first().map(group_prefix) else {
        return Vec::new();
    };
    rows.iter()
        .map(|r| LessonKey::in_group(prefix, &r.scope_values))
        .collect()
}

/// (dim, parent hash) for each pair of a subset's scope: the key of the parent without it.
/// Canonical scope text (the aggregator's) is read without allocating: its pairs are sorted by
/// dimension name, so the mask's dims in name order name them.
struct ParentKeys<'d, 'a> {
    dims: &'d DimensionList,
    name_order: Vec<u32>,
    pairs: Vec<(&'a str, &'a str)>,
    hashes: Vec<u64>,
    keys: Vec<(u32, u64)>,
}

impl<'d, 'a> ParentKeys<'d, 'a> {
    fn new(dims: &'d DimensionList) -> Self {
        let names = dims.names();
        let mut name_order: Vec<u32> = (0..names.len() as u32).collect();
        name_order.sort_by(|&a, &b| names[a as usize].cmp(&names[b as usize]));
        Self {
            dims,
            name_order,
            pairs: Vec::new(),
            hashes: Vec::new(),
            keys: Vec::new(),
        }
    }

    fn of(&mut self, mask: u64, scope_values: &'a str) -> &[(u32, u64)] {
        self.keys.clear();
        if canonical_pairs_into(scope_values, &mut self.pairs)
            && self.pairs.len() == mask.count_ones() as usize
        {
            hashes_without_each(&self.pairs, &mut self.hashes);
            let in_name_order = self
                .name_order
                .iter()
                .copied()
                .filter(|&d| mask & (1u64 << d) != 0);
            self.keys
                .extend(in_name_order.zip(self.hashes.iter().copied()));
        } else {
            let owned = scope_pairs(scope_values);
            let pairs: Vec<(&str, &str)> = owned
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            hashes_without_each(&pairs, &mut self.hashes);
            let dim_of = |name: &str| self.dims.index_of(name).map_or(UNKNOWN_DIM, |d| d as u32);
            self.keys.extend(
                pairs
                    .iter()
                    .map(|(k, _)| dim_of(k))
                    .zip(self.hashes.iter().copied()),
            );
        }
        &self.keys
    }
}

/// The lattices of the groups a caller runs the stage over again and again (the replay), kept
/// between runs so that each run only links the subsets that appeared since.
#[derive(Debug, Default)]
pub struct LatticeMemo {
    groups: FxHashMap<(Arc<str>, Arc<str>, ActionCategory), Lattice>,
}

impl LatticeMemo {
    pub(crate) fn take(&mut self, first: &StatsRow) -> Option<Lattice> {
        self.groups.remove(&(
            first.module.clone(),
            first.pattern_key.clone(),
            first.category,
        ))
    }

    pub(crate) fn keep(&mut self, first: &StatsRow, lattice: Lattice) {
        self.groups.insert(
            (
                first.module.clone(),
                first.pattern_key.clone(),
                first.category,
            ),
            lattice,
        );
    }

    /// Forget the groups not taken for this run (they have no rows any more).
    pub(crate) fn forget_rest(&mut self) {
        self.groups.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnloop_model::scope::{scope_values_hash, scope_values_json};
    use learnloop_model::Timestamp;

    fn dims() -> DimensionList {
        DimensionList::new(
            ["tf", "bucket", "A_mode", "phase"]
                .map(String::from)
                .to_vec(),
        )
        .unwrap()
    }

    /// A row for the subset of `scope` (dim index → value) chosen by `mask`.
    fn row(dims: &DimensionList, scope: &[&str; 4], mask: u64) -> StatsRow {
        let mut pairs: Vec<(&str, &str)> = (0..4)
            .filter(|d| mask & (1 << d) != 0)
            .map(|d| (dims.name(d), scope[d]))
            .collect();
        pairs.sort();
        StatsRow {
            module: "m".into(),
            pattern_key: "p".into(),
            category: ActionCategory::Add,
            scope_mask: mask,
            scope_values: scope_values_json(pairs.iter().copied()),
            scope_values_hash: scope_values_hash(pairs.iter().copied()),
            stats: Default::default(),
            as_of: Timestamp(0),
        }
    }

    /// Every subset of each scope, deduplicated and sorted like the stats table.
    fn rows_of(dims: &DimensionList, scopes: &[[&str; 4]]) -> Vec<StatsRow> {
        let mut rows: Vec<StatsRow> = scopes
            .iter()
            .flat_map(|s| (0..16u64).map(move |m| row(dims, s, m)))
            .collect();
        rows.sort_by_key(id_of);
        rows.dedup_by_key(|r| id_of(r));
        rows
    }

    /// Brute force: parent of `child` without `dim` is the row whose pairs are the child's minus one.
    fn expected_parents(dims: &DimensionList, rows: &[StatsRow], child: usize) -> Vec<Link> {
        let c = &rows[child];
        let pairs = scope_pairs(&c.scope_values);
        (0..pairs.len())
            .map(|j| {
                let dim = dims.index_of(&pairs[j].0).unwrap() as u32;
                let rest: Vec<(String, String)> = pairs
                    .iter()
                    .enumerate()
                    .filter(|&(i, _)| i != j)
                    .map(|(_, p)| p.clone())
                    .collect();
                let row = rows
                    .iter()
                    .position(|r| scope_pairs(&r.scope_values) == rest)
                    .map_or(NOT_STORED, |i| i as u32);
                Link { dim, row }
            })
            .collect()
    }

    fn assert_same(a: &Lattice, b: &Lattice, n: usize) {
        for i in 0..n {
            assert_eq!(a.parents(i), b.parents(i), "parents of row {i}");
            assert_eq!(a.children(i), b.children(i), "children of row {i}");
        }
    }

    #[test]
    fn parents_and_children_match_a_brute_force_search() {
        let dims = dims();
        let rows = rows_of(
            &dims,
            &[
                ["1h", "micro", "aggressive", "Euphoria"],
                ["4h", "micro", "patient", "Euphoria"],
            ],
        );
        let lattice = Lattice::build(&rows, &dims);
        for i in 0..rows.len() {
            assert_eq!(
                lattice.parents(i),
                expected_parents(&dims, &rows, i),
                "row {i}"
            );
            for l in lattice.parents(i) {
                let back = Link {
                    dim: l.dim,
                    row: i as u32,
                };
                assert!(lattice.children(l.row as usize).contains(&back));
            }
        }
        let child_links: usize = (0..rows.len()).map(|i| lattice.children(i).len()).sum();
        assert_eq!(child_links, lattice.parents.len());
    }

    #[test]
    fn updating_with_new_subsets_equals_building_from_scratch() {
        let dims = dims();
        let first = [["1h", "micro", "aggressive", "Euphoria"]];
        let both = [first[0], ["1h", "large", "aggressive", "Fear"]];
        let old_rows = rows_of(&dims, &first);
        let new_rows = rows_of(&dims, &both);
        assert!(new_rows.len() > old_rows.len());
        let updated = Lattice::build(&old_rows, &dims).update(&new_rows, &dims);
        assert_same(&updated, &Lattice::build(&new_rows, &dims), new_rows.len());
        // Unchanged rows keep the lattice as it is.
        let again = updated.clone().update(&new_rows, &dims);
        assert_same(&again, &updated, new_rows.len());
        // A kept lattice carries every subset's lesson key through the update.
        assert_eq!(updated.key(0), None);
        let keyed = Lattice::build_keyed(&old_rows, &dims).update(&new_rows, &dims);
        assert_same(&keyed, &updated, new_rows.len());
        for (i, r) in new_rows.iter().enumerate() {
            let expected = LessonKey::of(&r.module, &r.pattern_key, r.category, &r.scope_values);
            assert_eq!(keyed.key(i), Some(expected), "row {i}");
        }
    }

    #[test]
    fn a_vanished_subset_or_a_missing_parent_rebuilds() {
        let dims = dims();
        let full = rows_of(&dims, &[["1h", "micro", "aggressive", "Euphoria"]]);
        // Without its root, every single-dim subset misses a parent.
        let no_root: Vec<StatsRow> = full.iter().filter(|r| r.scope_mask != 0).cloned().collect();
        let partial = Lattice::build(&no_root, &dims);
        assert!(partial.has_missing);
        let updated = partial.update(&full, &dims);
        assert_same(&updated, &Lattice::build(&full, &dims), full.len());
        let shrunk = Lattice::build(&full, &dims).update(&no_root, &dims);
        assert_same(&shrunk, &Lattice::build(&no_root, &dims), no_root.len());
    }
}
