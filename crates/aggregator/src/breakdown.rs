//! Where the stored rows come from (SPEC §12 diagnostics, `bench aggregate --breakdown`): for each
//! subset size, how many of the subsets the enumeration keeps are the same trades as a simpler
//! subset, spread over too few time clusters, or so close to a parent that the rest of it is below
//! the minimum support — the screens of the lesson stage (SPEC §4.2–4.4), counted before any
//! statistic is tested, so that it is clear what each kind of pruning could save.

use crate::engine::{walk_group, Limits, Node, NodeSink};
use crate::prepare::{Group, Prepared};
use rustc_hash::FxHashMap;

/// What the breakdown needs beyond the book: the lesson stage's thresholds and each trade's time
/// cluster.
pub struct BreakdownRules<'a> {
    /// Per trade of the prepared book (its canonical order): its time cluster, any ids.
    pub trade_cluster: &'a [u32],
    /// A subset spread over fewer time clusters is not a hypothesis (SPEC §4.2).
    pub min_clusters: u32,
    /// Minimum support of a subset of each size (SPEC §4.3).
    pub min_support: &'a (dyn Fn(u32) -> u64 + Sync),
}

/// The kept subsets of one size, by kind. The kinds overlap; `testable` is none of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct SizeBreakdown {
    /// The subset size (number of dims).
    pub dims: u32,
    /// Kept subsets of this size.
    pub rows: u64,
    /// With the minimum support of their size (what the lesson stage evaluates).
    pub supported: u64,
    /// The same trade set as a simpler kept subset (fewer dims; one subset of each set is not
    /// counted): stored once, these rows go.
    pub duplicate: u64,
    /// The same trades as one of its own exact parents (a dimension constant within the parent).
    pub duplicate_of_parent: u64,
    /// Spread over fewer than `min_clusters` time clusters.
    pub few_clusters: u64,
    /// Below `min_clusters`, and so is the subset the walk refined it from (the breakdown walks
    /// adding dimensions in index order: the subset without its highest-index pair): a walk that
    /// stopped at too few clusters would not reach it.
    pub below_a_few_cluster_subset: u64,
    /// The rest of some exact parent has fewer trades than the subset's minimum support.
    pub thin_complement: u64,
    /// Supported and none of the kinds above: a hypothesis of the run.
    pub testable: u64,
}

/// The breakdown by size (index = dims) of every subset `limits` keeps.
pub fn breakdown(p: &Prepared, limits: Limits, rules: &BreakdownRules<'_>) -> Vec<SizeBreakdown> {
    let mut sizes: Vec<SizeBreakdown> = (0..=p.dims as u32)
        .map(|dims| SizeBreakdown {
            dims,
            ..SizeBreakdown::default()
        })
        .collect();
    let n_clusters = rules
        .trade_cluster
        .iter()
        .max()
        .map_or(0, |&c| c as usize + 1);
    // The dimensions' own order: "the subset the walk refined it from" is this walk's.
    let dimension_order: Vec<usize> = (0..p.dims).collect();
    for group in &p.groups {
        let root_clusters = {
            let mut sink = BreakdownSink::new(p, group, rules, n_clusters, 0);
            let all: Vec<u32> = (0..group.len() as u32).collect();
            sink.clusters_of(&all)
        };
        let (sinks, _) = walk_group(p, group, limits, &dimension_order, || {
            BreakdownSink::new(p, group, rules, n_clusters, root_clusters)
        });
        count_group(sinks, rules, &mut sizes);
    }
    sizes
}

/// One kept subset, reduced to what the breakdown needs.
struct Record {
    mask: u64,
    /// Order-free hash of its (dim, value) pairs: a parent's is this minus the removed pair's.
    key: u64,
    n_trades: u64,
    /// Order-free hash of its trade set.
    trades: (u64, u64),
    dims: u32,
    few_clusters: bool,
    below_few: bool,
    /// Its pairs: `pairs[start..start + dims]` of its sink.
    start: usize,
}

struct BreakdownSink<'a> {
    group: &'a Group,
    rules: &'a BreakdownRules<'a>,
    records: Vec<Record>,
    pairs: Vec<(u8, u32)>,
    /// Whether the last subset kept at each depth was below `min_clusters` (the walk is depth
    /// first, so the one at depth k − 1 is the parent of the next at depth k).
    few_at_depth: Vec<bool>,
    /// Per cluster: the last subset that counted it (a stamp, so nothing is cleared).
    seen: Vec<u32>,
    stamp: u32,
}

impl<'a> BreakdownSink<'a> {
    fn new(
        p: &Prepared,
        group: &'a Group,
        rules: &'a BreakdownRules<'a>,
        n_clusters: usize,
        root_clusters: u32,
    ) -> Self {
        let mut few_at_depth = vec![false; p.dims + 1];
        few_at_depth[0] = root_clusters < rules.min_clusters;
        Self {
            group,
            rules,
            records: Vec::new(),
            pairs: Vec::new(),
            few_at_depth,
            seen: vec![u32::MAX; n_clusters],
            stamp: 0,
        }
    }

    fn clusters_of(&mut self, obs: &[u32]) -> u32 {
        self.stamp += 1;
        let mut n = 0;
        for &o in obs {
            let c = self.rules.trade_cluster[self.group.trade[o as usize] as usize] as usize;
            if self.seen[c] != self.stamp {
                self.seen[c] = self.stamp;
                n += 1;
            }
        }
        n
    }
}

impl NodeSink for BreakdownSink<'_> {
    fn node(&mut self, node: Node<'_>) {
        let depth = node.path.len();
        let few = self.clusters_of(node.obs) < self.rules.min_clusters;
        let below_few = depth > 0 && few && self.few_at_depth[depth - 1];
        self.few_at_depth[depth] = few;
        let mut trades = (0u64, 0u64);
        let mut last = u32::MAX;
        for &o in node.obs {
            let t = self.group.trade[o as usize];
            if t != last {
                trades.0 = trades.0.wrapping_add(mix(u64::from(t) ^ TRADE_SEED_A));
                trades.1 = trades.1.wrapping_add(mix(u64::from(t) ^ TRADE_SEED_B));
                last = t;
            }
        }
        self.records.push(Record {
            mask: node.mask,
            key: node
                .path
                .iter()
                .fold(0u64, |k, &(d, v)| k.wrapping_add(pair_hash(d, v))),
            n_trades: node.stats.n_trades(),
            trades,
            dims: depth as u32,
            few_clusters: few,
            below_few,
            start: self.pairs.len(),
        });
        self.pairs.extend_from_slice(node.path);
    }
}

const TRADE_SEED_A: u64 = 0x9e37_79b9_7f4a_7c15;
const TRADE_SEED_B: u64 = 0xd1b5_4a32_d192_ed03;

/// SplitMix64's finaliser: a well-mixed 64-bit image of `x`.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn pair_hash(d: u8, v: u32) -> u64 {
    mix((u64::from(d) << 32) | u64::from(v))
}

/// Add one group's kept subsets to `sizes`.
fn count_group(
    sinks: Vec<BreakdownSink<'_>>,
    rules: &BreakdownRules<'_>,
    sizes: &mut [SizeBreakdown],
) {
    let all: Vec<(&Record, &[(u8, u32)])> = sinks
        .iter()
        .flat_map(|s| {
            s.records
                .iter()
                .map(move |r| (r, &s.pairs[r.start..r.start + r.dims as usize]))
        })
        .collect();
    let n_of: FxHashMap<(u64, u64), u64> = all
        .iter()
        .map(|(r, _)| ((r.mask, r.key), r.n_trades))
        .collect();
    // The subset kept for each trade set: the first of the fewest dims.
    let mut kept_for: FxHashMap<((u64, u64), u64), (u32, usize)> = FxHashMap::default();
    for (i, (r, _)) in all.iter().enumerate() {
        let e = kept_for
            .entry((r.trades, r.n_trades))
            .or_insert((r.dims, i));
        if r.dims < e.0 {
            *e = (r.dims, i);
        }
    }
    for (i, (r, pairs)) in all.iter().enumerate() {
        let size = &mut sizes[r.dims as usize];
        let min_support = (rules.min_support)(r.dims);
        let duplicate = kept_for[&(r.trades, r.n_trades)].1 != i;
        let mut thin = false;
        let mut of_parent = false;
        for &(d, v) in *pairs {
            let parent = (r.mask & !(1u64 << d), r.key.wrapping_sub(pair_hash(d, v)));
            if let Some(&n_parent) = n_of.get(&parent) {
                let rest = n_parent.saturating_sub(r.n_trades);
                thin |= rest < min_support;
                of_parent |= rest == 0;
            }
        }
        let supported = r.n_trades >= min_support;
        size.rows += 1;
        size.supported += u64::from(supported);
        size.duplicate += u64::from(duplicate);
        size.duplicate_of_parent += u64::from(of_parent);
        size.few_clusters += u64::from(r.few_clusters);
        size.below_a_few_cluster_subset += u64::from(r.below_few);
        size.thin_complement += u64::from(thin);
        size.testable += u64::from(supported && !duplicate && !r.few_clusters && !thin);
    }
}
