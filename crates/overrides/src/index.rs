//! The lookup index.
//!
//! Overrides are grouped by (pattern_key, category). Within a group, each override's scope is a
//! set of (dimension, value) pairs; its *mask* says which of the group's dimensions it uses.
//! An override matches an action iff the action's scope *projected on the override's mask*
//! equals the override's scope. So a lookup needs, per distinct mask of the group, one probe of
//! a hash table keyed by the hash of the action's projected values. The cost is the number of
//! masks probed, never the number of overrides.
//!
//! Most masks cannot match a given action, and probing them all is what costs (a realistic
//! group has ~50 masks). A bitmap prunes them first: for each (dimension, value) seen in the
//! group, the set of masks that either lack the dimension or have an override with that value
//! there. A mask can match only if it is in the set of every dimension's action value (a
//! dimension the action lacks, or a value no override uses, selects "masks lacking it"). The
//! AND of ≤ 64 such bitsets leaves a handful of candidate masks, which are then probed exactly
//! (on the benchmark config: ~5.2 probes for ~4.8 matches per lookup, out of ~50 masks).
//!
//! Hot-path rules: no allocation, no string building. Each action value is hashed once per
//! lookup (seeded by its dimension) and resolved, by string comparison, to the id of the equal
//! value among the group's values; a mask's key is the sum of its dimensions' value hashes,
//! so it needs no ordering or buffer. A hash hit is confirmed by comparing value ids, which
//! stand for compared strings, so collisions cost time, never correctness.

use crate::error::ValidationIssue;
use crate::hash::{hash_str, mix64, str_eq};
use crate::levers::{Lever, Levers};
use crate::schema::{category_index, Override, ACTION_CATEGORIES};
use crate::scope::ScopeView;
use std::collections::{BTreeMap, BTreeSet};

/// Most distinct scope dimensions the overrides of one (pattern, category) may use: masks are
/// `u64`, and the per-lookup scratch lives on the stack.
pub const MAX_GROUP_DIMS: usize = 64;

const GROUP_SEED: u64 = 0x243f_6a88_85a3_08d3;
const DIM_SEED: u64 = 0x1319_8a2e_0370_7344;
const MASK_SEED: u64 = 0xa409_3822_299f_31d0;
const NO_VALUE: u32 = u32::MAX;

/// Open-addressing multimap from a non-zero `u64` hash to `u32` ids, linear probing, load ≤ ½.
/// Equal keys (duplicate scopes, or true collisions) sit in one probe run and are all visited.
/// Key and id share a slot, so a probe touches one cache line.
#[derive(Debug, Clone)]
struct HashRun {
    slots: Box<[(u64, u32)]>,
    slot_mask: usize,
}

/// Zero marks an empty slot, so a key that hashes to zero is moved.
#[inline]
fn nonzero(key: u64) -> u64 {
    if key == 0 {
        MASK_SEED
    } else {
        key
    }
}

impl HashRun {
    fn build(items: &[(u64, u32)]) -> Self {
        let len = (items.len() * 2).next_power_of_two().max(4);
        let mut slots = vec![(0u64, 0u32); len].into_boxed_slice();
        let slot_mask = len - 1;
        for &(key, id) in items {
            let key = nonzero(key);
            let mut i = key as usize & slot_mask;
            while slots[i].0 != 0 {
                i = (i + 1) & slot_mask;
            }
            slots[i] = (key, id);
        }
        Self { slots, slot_mask }
    }

    fn bytes(&self) -> usize {
        std::mem::size_of_val(&*self.slots)
    }

    #[inline]
    fn for_each(&self, key: u64, mut f: impl FnMut(u32)) {
        let key = nonzero(key);
        let mut i = key as usize & self.slot_mask;
        loop {
            let (k, id) = self.slots[i];
            if k == 0 {
                return;
            }
            if k == key {
                f(id);
            }
            i = (i + 1) & self.slot_mask;
        }
    }
}

/// Many short strings in one allocation, so reading them touches few cache lines.
#[derive(Debug, Clone)]
struct Strings {
    text: Box<str>,
    ends: Box<[u32]>,
}

impl Strings {
    fn build<'a>(items: impl IntoIterator<Item = &'a str>) -> Self {
        let mut text = String::new();
        let mut ends = Vec::new();
        for s in items {
            text.push_str(s);
            ends.push(text.len() as u32);
        }
        Self {
            text: text.into_boxed_str(),
            ends: ends.into_boxed_slice(),
        }
    }

    #[inline]
    fn get(&self, i: usize) -> &str {
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        &self.text[start..self.ends[i] as usize]
    }

    fn len(&self) -> usize {
        self.ends.len()
    }

    fn bytes(&self) -> usize {
        self.text.len() + std::mem::size_of_val(&*self.ends)
    }
}

/// One override as the index sees it. Carries what blending needs (weight, rank, levers), so
/// a lookup never reads the override itself; kept small (levers live in a packed side array)
/// so a whole index stays cache-resident.
#[derive(Debug, Clone)]
struct Entry {
    mask: u64,
    weight: f64,
    /// Start of its value ids in `Group::entry_values`, one per set bit of `mask`, bit order.
    values_start: u32,
    /// Position of the override in `Overrides::overrides`.
    override_pos: u32,
    rank: u32,
    /// Start of its present lever values in `Group::lever_values`, in `Lever::ALL` order.
    levers_start: u32,
    /// Bit `l` set = lever `Lever::ALL[l]` present.
    lever_bits: u8,
}

/// What a lookup reports per matching override.
pub(crate) struct Hit {
    pub pos: u32,
    pub rank: u32,
    pub weight: f64,
    pub levers: Levers,
}

#[derive(Debug, Clone)]
struct MaskProbe {
    mask: u64,
    seed: u64,
}

#[derive(Debug, Clone)]
struct Group {
    pattern_key: Box<str>,
    category: usize,
    /// The dimensions this group's overrides use, sorted; bit i of a mask = dimension i.
    dims: Strings,
    dim_seeds: Box<[u64]>,
    /// Distinct masks present, most dimensions first (so matches come out nearly sorted).
    masks: Box<[MaskProbe]>,
    /// Bitset words per row of `rows`: one bit per entry of `masks`.
    words: usize,
    /// The bits of the last word that stand for a mask.
    last_word_bits: u64,
    /// Bitset rows. Row `i < dims`: the masks lacking dimension i. Row `dims + v`: the masks
    /// lacking `value_dims[v]` or with an override whose value there is value `v`.
    rows: Box<[u64]>,
    /// Every (dimension, value) the group's overrides use, numbered by (dimension, value):
    /// dimension i's values are ids `dim_values[i]..dim_values[i + 1]`. Few values per
    /// dimension is the norm, so they are found by a sequential scan of their hashes (one or
    /// two cache lines); a dimension with many values uses `value_table` instead.
    dim_values: Box<[u32]>,
    value_hashes: Box<[u64]>,
    value_table: HashRun,
    value_strs: Strings,
    entries: Box<[Entry]>,
    entry_values: Box<[u32]>,
    lever_values: Box<[f64]>,
    /// Projected-scope key → entry.
    table: HashRun,
}

/// Sizes, for diagnostics and benchmarks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize)]
pub struct IndexStats {
    /// Overrides indexed.
    pub overrides: usize,
    /// (pattern, category) groups.
    pub groups: usize,
    /// Distinct scope masks over all groups.
    pub masks: usize,
    /// Most masks in one group (the probes a lookup may make).
    pub max_masks_per_group: usize,
    /// Most dimensions in one group's masks.
    pub max_dims_per_group: usize,
    /// Heap bytes of the index proper (not counting the overrides it points to).
    pub index_bytes: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Index {
    groups: Box<[Group]>,
    group_table: HashRun,
}

#[inline]
fn group_key(pattern_key: &str, category: usize) -> u64 {
    hash_str(GROUP_SEED ^ category as u64, pattern_key)
}

#[inline]
fn mask_seed(mask: u64) -> u64 {
    mix64(mask ^ MASK_SEED)
}

#[inline]
fn value_hash(dim_seed: u64, value: &str) -> u64 {
    hash_str(dim_seed, value)
}

/// Key of a projected scope: the mask's seed plus its dimensions' value hashes. Order-free, so
/// no sorting or buffer; the terms are already well mixed, so their sum is too.
#[inline]
fn projected_key(seed: u64, mask: u64, dim_hashes: &[u64; MAX_GROUP_DIMS]) -> u64 {
    let mut h = seed;
    let mut bits = mask;
    while bits != 0 {
        h = h.wrapping_add(dim_hashes[bits.trailing_zeros() as usize]);
        bits &= bits - 1;
    }
    h
}

impl Index {
    /// `overrides` must be validated (known categories). Fails only when a group uses more
    /// than [`MAX_GROUP_DIMS`] dimensions.
    pub(crate) fn build(
        overrides: &[Override],
        weights: &[f64],
        ranks: &[u32],
    ) -> Result<Self, Vec<ValidationIssue>> {
        let mut by_group: BTreeMap<(&str, usize), Vec<u32>> = BTreeMap::new();
        for (pos, o) in overrides.iter().enumerate() {
            let category = category_index(&o.action_category).unwrap_or(0);
            by_group
                .entry((o.pattern_key.as_str(), category))
                .or_default()
                .push(pos as u32);
        }

        let mut issues = Vec::new();
        let mut groups = Vec::with_capacity(by_group.len());
        for ((pattern_key, category), members) in by_group {
            let dims: BTreeSet<&str> = members
                .iter()
                .flat_map(|&p| overrides[p as usize].scope.keys().map(String::as_str))
                .collect();
            if dims.len() > MAX_GROUP_DIMS {
                issues.push(ValidationIssue {
                    override_id: None,
                    field: format!("pattern {pattern_key:?} / {}", ACTION_CATEGORIES[category]),
                    problem: format!(
                        "its overrides use {} distinct scope dimensions, at most {MAX_GROUP_DIMS} are supported",
                        dims.len()
                    ),
                });
                continue;
            }
            let members = GroupMembers {
                pattern_key,
                category,
                dims: dims.into_iter().collect(),
                positions: &members,
            };
            let group = Group::build(&members, overrides, |pos| (weights[pos], ranks[pos]));
            groups.push(group);
        }
        if !issues.is_empty() {
            return Err(issues);
        }

        let keyed: Vec<(u64, u32)> = groups
            .iter()
            .enumerate()
            .map(|(i, g)| (group_key(&g.pattern_key, g.category), i as u32))
            .collect();
        Ok(Self {
            group_table: HashRun::build(&keyed),
            groups: groups.into_boxed_slice(),
        })
    }

    pub(crate) fn stats(&self) -> IndexStats {
        IndexStats {
            overrides: self.groups.iter().map(|g| g.entries.len()).sum(),
            groups: self.groups.len(),
            masks: self.groups.iter().map(|g| g.masks.len()).sum(),
            max_masks_per_group: self.groups.iter().map(|g| g.masks.len()).max().unwrap_or(0),
            max_dims_per_group: self.groups.iter().map(|g| g.dims.len()).max().unwrap_or(0),
            index_bytes: std::mem::size_of_val(&*self.groups)
                + self.group_table.bytes()
                + self.groups.iter().map(Group::bytes).sum::<usize>(),
        }
    }

    fn group(&self, pattern_key: &str, category: usize) -> Option<&Group> {
        let mut found = None;
        self.group_table
            .for_each(group_key(pattern_key, category), |id| {
                let g = &self.groups[id as usize];
                if g.category == category && str_eq(&g.pattern_key, pattern_key) {
                    found = Some(g);
                }
            });
        found
    }

    /// Calls `on_match` for every override of (pattern, category) whose scope is
    /// a subset of the action's scope. Order: most specific masks first, otherwise unspecified.
    #[inline]
    pub(crate) fn for_each_match<S: ScopeView + ?Sized>(
        &self,
        pattern_key: &str,
        category: usize,
        scope: &S,
        mut on_match: impl FnMut(Hit),
    ) {
        let Some(group) = self.group(pattern_key, category) else {
            return;
        };
        let dims = group.dims.len();
        // Per dimension: the id of the action's value among the group's values (if any
        // override uses it), its hash, and the bitset row it selects.
        let mut value_ids = [NO_VALUE; MAX_GROUP_DIMS];
        let mut hashes = [0u64; MAX_GROUP_DIMS];
        let mut rows = [0u32; MAX_GROUP_DIMS];
        for i in 0..dims {
            rows[i] = i as u32; // "absent" until the value is found
            let Some(v) = scope.get(group.dims.get(i)) else {
                continue;
            };
            let h = value_hash(group.dim_seeds[i], v);
            if let Some(id) = group.find_value(i, h, v) {
                value_ids[i] = id;
                rows[i] = (dims + id as usize) as u32;
            }
            // A value no override uses at this dimension selects what absence selects.
            hashes[i] = h;
        }
        for word in 0..group.words {
            let mut candidates = if word + 1 == group.words {
                group.last_word_bits
            } else {
                !0
            };
            for &row in &rows[..dims] {
                candidates &= group.rows[row as usize * group.words + word];
                if candidates == 0 {
                    break;
                }
            }
            while candidates != 0 {
                let probe = &group.masks[word * 64 + candidates.trailing_zeros() as usize];
                candidates &= candidates - 1;
                let key = projected_key(probe.seed, probe.mask, &hashes);
                group.table.for_each(key, |id| {
                    let entry = &group.entries[id as usize];
                    if entry.mask == probe.mask && group.entry_matches(entry, &value_ids) {
                        on_match(Hit {
                            pos: entry.override_pos,
                            rank: entry.rank,
                            weight: entry.weight,
                            levers: group.levers_of(entry),
                        });
                    }
                });
            }
        }
    }
}

impl Group {
    fn bytes(&self) -> usize {
        use std::mem::size_of_val;
        self.pattern_key.len()
            + self.dims.bytes()
            + size_of_val(&*self.dim_seeds)
            + size_of_val(&*self.masks)
            + size_of_val(&*self.rows)
            + size_of_val(&*self.dim_values)
            + size_of_val(&*self.value_hashes)
            + self.value_table.bytes()
            + self.value_strs.bytes()
            + size_of_val(&*self.entries)
            + size_of_val(&*self.entry_values)
            + size_of_val(&*self.lever_values)
            + self.table.bytes()
    }
}

/// Above this many values, a dimension's values are found through the hash table.
const SCAN_VALUES_MAX: usize = 16;

impl Group {
    /// Id of value `v` (hash `h`) of dimension `dim`, if some override of the group uses it.
    #[inline]
    fn find_value(&self, dim: usize, h: u64, v: &str) -> Option<u32> {
        let (start, end) = (
            self.dim_values[dim] as usize,
            self.dim_values[dim + 1] as usize,
        );
        if end - start <= SCAN_VALUES_MAX {
            for (k, &x) in self.value_hashes[start..end].iter().enumerate() {
                if x == h && str_eq(self.value_strs.get(start + k), v) {
                    return Some((start + k) as u32);
                }
            }
            return None;
        }
        let mut found = None;
        self.value_table.for_each(h, |id| {
            let id = id as usize;
            if (start..end).contains(&id) && str_eq(self.value_strs.get(id), v) {
                found = Some(id as u32);
            }
        });
        found
    }

    #[inline]
    fn levers_of(&self, entry: &Entry) -> Levers {
        let mut levers = Levers::EMPTY;
        let mut at = entry.levers_start as usize;
        for lever in Lever::ALL {
            if entry.lever_bits & (1 << lever.index()) != 0 {
                levers.set(lever, self.lever_values[at]);
                at += 1;
            }
        }
        levers
    }

    /// Exact check behind a hash hit: the action has the entry's value id at each of its dims.
    #[inline]
    fn entry_matches(&self, entry: &Entry, value_ids: &[u32; MAX_GROUP_DIMS]) -> bool {
        let start = entry.values_start as usize;
        let expected = &self.entry_values[start..start + entry.mask.count_ones() as usize];
        let mut bits = entry.mask;
        for &vid in expected {
            if value_ids[bits.trailing_zeros() as usize] != vid {
                return false;
            }
            bits &= bits - 1;
        }
        true
    }

    fn build(
        group: &GroupMembers<'_>,
        overrides: &[Override],
        weight_and_rank: impl Fn(usize) -> (f64, u32),
    ) -> Self {
        let dims = &group.dims;
        let dim_seeds: Vec<u64> = dims.iter().map(|d| hash_str(DIM_SEED, d)).collect();
        let values = GroupValues::number(group, overrides);
        let tables = EntryTables::build(group, overrides, &values, &dim_seeds, weight_and_rank);
        let masks: Vec<MaskProbe> = tables
            .masks
            .iter()
            .map(|&(_, mask)| MaskProbe {
                mask,
                seed: mask_seed(mask),
            })
            .collect();
        let words = masks.len().div_ceil(64).max(1);
        let rows = candidate_rows(dims.len(), &values, &masks, &tables);
        let value_hashes: Vec<u64> = values
            .list
            .iter()
            .map(|&(dim, value)| value_hash(dim_seeds[dim], value))
            .collect();
        // Only dimensions with many values are looked up through the table.
        let dim_values = &values.dim_starts;
        let value_keys: Vec<(u64, u32)> = values
            .list
            .iter()
            .enumerate()
            .filter(|&(_, &(dim, _))| {
                (dim_values[dim + 1] - dim_values[dim]) as usize > SCAN_VALUES_MAX
            })
            .map(|(id, _)| (value_hashes[id], id as u32))
            .collect();
        Self {
            pattern_key: group.pattern_key.into(),
            category: group.category,
            dims: Strings::build(dims.iter().copied()),
            dim_seeds: dim_seeds.into_boxed_slice(),
            last_word_bits: match masks.len() % 64 {
                0 => !0,
                r => (1u64 << r) - 1,
            },
            masks: masks.into_boxed_slice(),
            words,
            rows: rows.into_boxed_slice(),
            dim_values: values.dim_starts.into_boxed_slice(),
            value_hashes: value_hashes.into_boxed_slice(),
            value_table: HashRun::build(&value_keys),
            value_strs: Strings::build(values.list.iter().map(|&(_, v)| v)),
            entries: tables.entries.into_boxed_slice(),
            entry_values: tables.entry_values.into_boxed_slice(),
            lever_values: tables.lever_values.into_boxed_slice(),
            table: HashRun::build(&tables.keyed),
        }
    }
}

/// The overrides of one (pattern, category) group, before indexing.
struct GroupMembers<'a> {
    pattern_key: &'a str,
    category: usize,
    /// The dimensions the members use, sorted: the index of a dimension is its bit.
    dims: Vec<&'a str>,
    /// Positions of the members in the config's overrides.
    positions: &'a [u32],
}

impl GroupMembers<'_> {
    fn bit_of(&self, dim: &str) -> usize {
        self.dims
            .binary_search(&dim)
            .expect("dim collected from the members")
    }
}

/// The distinct (dimension, value) pairs of a group, numbered in (dimension, value) order so
/// that each dimension's values are contiguous.
struct GroupValues<'a> {
    /// (dimension bit, value) by id.
    list: Vec<(usize, &'a str)>,
    ids: BTreeMap<(usize, &'a str), u32>,
    /// Dimension i's value ids are `dim_starts[i]..dim_starts[i + 1]`.
    dim_starts: Vec<u32>,
}

impl<'a> GroupValues<'a> {
    fn number(group: &GroupMembers<'_>, overrides: &'a [Override]) -> Self {
        let distinct: BTreeSet<(usize, &str)> = group
            .positions
            .iter()
            .flat_map(|&pos| overrides[pos as usize].scope.iter())
            .map(|(dim, value)| (group.bit_of(dim), value.as_str()))
            .collect();
        let list: Vec<(usize, &str)> = distinct.into_iter().collect();
        let ids = list
            .iter()
            .enumerate()
            .map(|(id, &key)| (key, id as u32))
            .collect();
        let mut dim_starts = vec![0u32; group.dims.len() + 1];
        for &(dim, _) in &list {
            dim_starts[dim + 1] += 1;
        }
        for i in 0..group.dims.len() {
            dim_starts[i + 1] += dim_starts[i];
        }
        Self {
            list,
            ids,
            dim_starts,
        }
    }
}

/// A group's entries with their packed value ids and levers, the projected-scope keys, and the
/// distinct masks (most dimensions first).
struct EntryTables {
    entries: Vec<Entry>,
    entry_values: Vec<u32>,
    lever_values: Vec<f64>,
    keyed: Vec<(u64, u32)>,
    masks: BTreeSet<(std::cmp::Reverse<u32>, u64)>,
}

impl EntryTables {
    fn build(
        group: &GroupMembers<'_>,
        overrides: &[Override],
        values: &GroupValues<'_>,
        dim_seeds: &[u64],
        weight_and_rank: impl Fn(usize) -> (f64, u32),
    ) -> Self {
        let members = group.positions;
        let mut t = Self {
            entries: Vec::with_capacity(members.len()),
            entry_values: Vec::new(),
            lever_values: Vec::new(),
            keyed: Vec::with_capacity(members.len()),
            masks: BTreeSet::new(),
        };
        let mut hashes = [0u64; MAX_GROUP_DIMS];
        for &pos in members {
            let o = &overrides[pos as usize];
            let values_start = t.entry_values.len() as u32;
            let mut mask = 0u64;
            // BTreeMap order = sorted dims = bit order, so values are pushed in bit order.
            for (dim, value) in &o.scope {
                let bit = group.bit_of(dim);
                mask |= 1 << bit;
                hashes[bit] = value_hash(dim_seeds[bit], value);
                t.entry_values.push(values.ids[&(bit, value.as_str())]);
            }
            t.masks.insert((std::cmp::Reverse(mask.count_ones()), mask));
            t.keyed.push((
                projected_key(mask_seed(mask), mask, &hashes),
                t.entries.len() as u32,
            ));
            let (weight, rank) = weight_and_rank(pos as usize);
            let levers_start = t.lever_values.len() as u32;
            let mut lever_bits = 0u8;
            for (lever, value) in o.levers.iter() {
                lever_bits |= 1 << lever.index();
                t.lever_values.push(value);
            }
            t.entries.push(Entry {
                mask,
                weight,
                values_start,
                override_pos: pos,
                rank,
                levers_start,
                lever_bits,
            });
        }
        t
    }
}

/// The candidate bitsets: row `i < dims` holds the masks lacking dimension i; row `dims + v`
/// the masks lacking value v's dimension or with an entry whose value there is v.
fn candidate_rows(
    dims: usize,
    values: &GroupValues<'_>,
    masks: &[MaskProbe],
    tables: &EntryTables,
) -> Vec<u64> {
    let slot_of_mask: BTreeMap<u64, usize> =
        masks.iter().enumerate().map(|(i, m)| (m.mask, i)).collect();
    let words = masks.len().div_ceil(64).max(1);
    let mut rows = vec![0u64; (dims + values.list.len()) * words];
    let mut set = |row: usize, slot: usize| rows[row * words + slot / 64] |= 1 << (slot % 64);
    let mut ids_by_dim = vec![Vec::new(); dims];
    for (id, &(dim, _)) in values.list.iter().enumerate() {
        ids_by_dim[dim].push(id);
    }
    for (slot, m) in masks.iter().enumerate() {
        for (i, ids) in ids_by_dim.iter().enumerate() {
            if m.mask & (1 << i) == 0 {
                // A mask lacking dim i stays a candidate whatever the action has there.
                set(i, slot);
                for &id in ids {
                    set(dims + id, slot);
                }
            }
        }
    }
    for e in &tables.entries {
        let start = e.values_start as usize;
        for &id in &tables.entry_values[start..start + e.mask.count_ones() as usize] {
            set(dims + id as usize, slot_of_mask[&e.mask]);
        }
    }
    rows
}
