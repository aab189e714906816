//! Latent factors: lessons whose supporting trades overlap heavily are one effect seen through
//! several scopes, so they are grouped (single linkage on Jaccard similarity) and given ids that
//! stay stable from run to run.

use learnloop_model::hash::StableHasher;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

/// One lesson as the factor clustering sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LessonTrades<'a> {
    /// The lesson.
    pub lesson_key: &'a str,
    /// |t| of the lesson: the member with the largest is the factor's representative.
    pub abs_t: f64,
    /// Ids of the trades supporting the lesson. Sorted and unique is fastest; anything else is
    /// sorted and deduplicated first.
    pub trades: &'a [u32],
}

/// A linking pair inside a factor: two lessons whose Jaccard similarity reached the threshold.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JaccardPair {
    /// The smaller lesson key of the pair.
    pub a: String,
    /// The larger lesson key.
    pub b: String,
    /// Their Jaccard similarity (shared trades over all trades of either).
    pub jaccard: f64,
    /// The two lessons belong to different (pattern, category) groups: a shared effect reported
    /// for audit only, which never merges the groups' overrides.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub across_groups: bool,
}

/// A latent factor: a connected group of lessons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Factor {
    /// Stable id, from the representative's key.
    pub factor_id: String,
    /// Lesson keys, sorted.
    pub members: Vec<String>,
    /// The member with the largest |t| (ties: the smallest key).
    pub representative: String,
    /// The pairs that link the members (Jaccard ≥ threshold), sorted by (a, b); pairs below the
    /// threshold are not listed, so a chain A–B–C shows A–B and B–C only.
    pub jaccard: Vec<JaccardPair>,
}

/// Jaccard similarity `|A ∩ B| / |A ∪ B|` of two sorted, duplicate-free id lists, by one merge
/// pass. Two empty sets have similarity 0 here: no shared trade, no shared effect.
pub fn jaccard_sorted(a: &[u32], b: &[u32]) -> f64 {
    let (mut i, mut j, mut inter) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                inter += 1;
                i += 1;
                j += 1;
            }
        }
    }
    jaccard_from_counts(inter, a.len(), b.len())
}

fn jaccard_from_counts(inter: usize, len_a: usize, len_b: usize) -> f64 {
    let union = len_a + len_b - inter;
    if union == 0 {
        0.0
    } else {
        inter as f64 / union as f64
    }
}

fn sorted_unique(trades: &[u32]) -> Cow<'_, [u32]> {
    if trades.windows(2).all(|w| w[0] < w[1]) {
        Cow::Borrowed(trades)
    } else {
        let mut v = trades.to_vec();
        v.sort_unstable();
        v.dedup();
        Cow::Owned(v)
    }
}

/// Group lessons into factors: the connected components of the graph whose edges join lessons
/// sharing at least one trade with Jaccard ≥ `threshold` (single linkage). Every lesson is in
/// exactly one factor; a lesson that overlaps nothing is a factor of one. Entries with the same
/// key are one lesson.
///
/// Intersections are counted through an inverted index (trade → lessons), so only pairs that
/// share a trade are ever compared: the cost is Σ over trades of (lessons holding it)², not
/// (lessons)² × trades.
///
/// Each factor gets the fresh id of its members ([`fresh_factor_id`]); call
/// [`assign_factor_ids`] to carry over the previous run's ids. Factors come sorted by their
/// first member, so the output depends only on the input set, never on hashing or timing.
pub fn cluster_by_jaccard(lessons: &[LessonTrades<'_>], threshold: f64) -> Vec<Factor> {
    let n = lessons.len();
    let trades: Vec<Cow<'_, [u32]>> = lessons.iter().map(|l| sorted_unique(l.trades)).collect();
    let mut sets = DisjointSets::new(n);
    let edges = linked_pairs(&trades, threshold);
    for &(i, j, _) in &edges {
        sets.union(i, j);
    }
    // The same key twice is the same lesson.
    let mut by_key: Vec<usize> = (0..n).collect();
    by_key.sort_by(|&a, &b| lessons[a].lesson_key.cmp(lessons[b].lesson_key));
    for w in by_key.windows(2) {
        if lessons[w[0]].lesson_key == lessons[w[1]].lesson_key {
            sets.union(w[0], w[1]);
        }
    }

    let mut components: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
    for i in 0..n {
        components.entry(sets.find(i)).or_default().push(i);
    }
    let mut edges_by_root: BTreeMap<usize, Vec<Edge>> = BTreeMap::new();
    for e in edges {
        edges_by_root.entry(sets.find(e.0)).or_default().push(e);
    }
    let mut factors: Vec<Factor> = components
        .into_iter()
        .map(|(root, idx)| {
            let edges = edges_by_root.remove(&root).unwrap_or_default();
            factor_of(lessons, &idx, edges)
        })
        .collect();
    factors.sort_by(|a, b| a.members.cmp(&b.members));
    factors
}

/// Two lessons (by index) and the Jaccard similarity of their trades.
type Edge = (usize, usize, f64);

/// Every pair of lessons whose trade sets reach `threshold` (i < j), found through an inverted
/// index of trade → lessons so that only pairs sharing a trade are compared.
fn linked_pairs(trades: &[Cow<'_, [u32]>], threshold: f64) -> Vec<Edge> {
    // Inverted index: (trade id, lesson index), sorted, so a trade's lessons are one range.
    let mut postings: Vec<(u32, usize)> = trades
        .iter()
        .enumerate()
        .flat_map(|(i, ts)| ts.iter().map(move |&t| (t, i)))
        .collect();
    postings.sort_unstable();
    let mut edges = Vec::new();
    let mut shared = vec![0usize; trades.len()];
    let mut touched: Vec<usize> = Vec::new();
    for (i, ts) in trades.iter().enumerate() {
        for &t in ts.iter() {
            let start = postings.partition_point(|&(pt, _)| pt < t);
            for &(pt, j) in &postings[start..] {
                if pt != t {
                    break;
                }
                if j > i {
                    if shared[j] == 0 {
                        touched.push(j);
                    }
                    shared[j] += 1;
                }
            }
        }
        touched.sort_unstable();
        for &j in &touched {
            let jac = jaccard_from_counts(shared[j], ts.len(), trades[j].len());
            if jac >= threshold {
                edges.push((i, j, jac));
            }
            shared[j] = 0;
        }
        touched.clear();
    }
    edges
}

/// The factor of one connected component `idx`: its distinct member keys, the member with the
/// largest |t| (ties: the smallest key), and its linking pairs sorted by (a, b).
fn factor_of(lessons: &[LessonTrades<'_>], idx: &[usize], edges: Vec<Edge>) -> Factor {
    let members: Vec<String> = idx
        .iter()
        .map(|&i| lessons[i].lesson_key)
        .collect::<BTreeSet<&str>>()
        .into_iter()
        .map(str::to_string)
        .collect();
    let representative = idx
        .iter()
        .map(|&i| &lessons[i])
        .max_by(|a, b| {
            rank_abs_t(a.abs_t)
                .total_cmp(&rank_abs_t(b.abs_t))
                .then_with(|| b.lesson_key.cmp(a.lesson_key))
        })
        .map(|l| l.lesson_key.to_string())
        .unwrap_or_default();
    let mut jaccard: Vec<JaccardPair> = edges
        .into_iter()
        .filter(|&(i, j, _)| lessons[i].lesson_key != lessons[j].lesson_key)
        .map(|(i, j, jac)| {
            let (a, b) = (lessons[i].lesson_key, lessons[j].lesson_key);
            let (a, b) = if a <= b { (a, b) } else { (b, a) };
            JaccardPair {
                a: a.to_string(),
                b: b.to_string(),
                jaccard: jac,
                across_groups: false,
            }
        })
        .collect();
    jaccard.sort_by(|x, y| (&x.a, &x.b).cmp(&(&y.a, &y.b)));
    jaccard.dedup_by(|x, y| x.a == y.a && x.b == y.b);
    Factor {
        factor_id: fresh_factor_id(&members),
        members,
        representative,
        jaccard,
    }
}

/// |t| for ranking: NaN ranks below every number.
fn rank_abs_t(abs_t: f64) -> f64 {
    if abs_t.is_nan() {
        f64::NEG_INFINITY
    } else {
        abs_t.abs()
    }
}

/// The id a factor gets from its members alone: `f-` and 16 hex digits of the stable FNV-1a hash
/// of the sorted member keys joined by 0x1F (the separator the scope hash uses).
pub fn fresh_factor_id(sorted_members: &[String]) -> String {
    fresh_factor_id_salted(sorted_members, 0)
}

fn fresh_factor_id_salted(sorted_members: &[String], salt: u32) -> String {
    let mut h = StableHasher::default();
    for (i, m) in sorted_members.iter().enumerate() {
        if i > 0 {
            h.write(&[0x1f]);
        }
        h.write(m.as_bytes());
    }
    if salt > 0 {
        // Only on a collision with an id already in use (see `assign_factor_ids`).
        h.write(&[0x1e]);
        h.write(&salt.to_le_bytes());
    }
    format!("f-{:016x}", h.finish())
}

/// Carry factor ids over from the previous run, `previous` being `(factor_id, member keys)`.
///
/// Every (new factor, previous factor) pair sharing at least one member is a candidate; candidates
/// are taken greedily by most shared members, then smallest union (the closer match), then
/// previous id, then the new factor's position; a pair is accepted when neither side is taken
/// yet. So a factor that gains or loses members keeps its id, each previous id is used at most
/// once, and when a factor splits, the part that keeps more of it (or, on a tie, the part whose
/// members sort first) keeps the id. Factors without a match keep their fresh id
/// ([`fresh_factor_id`]), re-salted in the unlikely case it equals an id of the previous run or
/// one already assigned.
pub fn assign_factor_ids(factors: &mut [Factor], previous: &[(String, Vec<String>)]) {
    let prev_members: Vec<BTreeSet<&str>> = previous
        .iter()
        .map(|(_, m)| m.iter().map(String::as_str).collect())
        .collect();
    let mut prev_by_member: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (p, members) in prev_members.iter().enumerate() {
        for &m in members {
            prev_by_member.entry(m).or_default().push(p);
        }
    }

    // (shared, union, previous index, new index)
    let mut candidates: Vec<(usize, usize, usize, usize)> = Vec::new();
    for (i, f) in factors.iter().enumerate() {
        let members: BTreeSet<&str> = f.members.iter().map(String::as_str).collect();
        let mut shared: BTreeMap<usize, usize> = BTreeMap::new();
        for m in &members {
            for &p in prev_by_member.get(m).map(Vec::as_slice).unwrap_or_default() {
                *shared.entry(p).or_default() += 1;
            }
        }
        for (p, s) in shared {
            let union = members.len() + prev_members[p].len() - s;
            candidates.push((s, union, p, i));
        }
    }
    candidates.sort_by(|a, b| {
        (Reverse(a.0), a.1, &previous[a.2].0, a.3).cmp(&(Reverse(b.0), b.1, &previous[b.2].0, b.3))
    });

    let mut new_id: Vec<Option<String>> = vec![None; factors.len()];
    let mut taken: BTreeSet<String> = BTreeSet::new();
    for (_, _, p, i) in candidates {
        let id = &previous[p].0;
        if new_id[i].is_none() && !taken.contains(id) {
            taken.insert(id.clone());
            new_id[i] = Some(id.clone());
        }
    }
    // Fresh ids must not collide with any id of the previous run (a dissolved factor's id keeps
    // meaning that factor in history) nor with one assigned now.
    taken.extend(previous.iter().map(|(id, _)| id.clone()));
    for (f, id) in factors.iter_mut().zip(new_id) {
        f.factor_id = match id {
            Some(id) => id,
            None => {
                let mut salt = 0;
                let mut id = fresh_factor_id(&f.members);
                while taken.contains(&id) {
                    salt += 1;
                    id = fresh_factor_id_salted(&f.members, salt);
                }
                taken.insert(id.clone());
                id
            }
        };
    }
}

/// Union–find with path halving and union by size.
struct DisjointSets {
    parent: Vec<usize>,
    size: Vec<usize>,
}

impl DisjointSets {
    fn new(n: usize) -> Self {
        Self {
            parent: (0..n).collect(),
            size: vec![1; n],
        }
    }

    fn find(&mut self, mut x: usize) -> usize {
        while self.parent[x] != x {
            self.parent[x] = self.parent[self.parent[x]];
            x = self.parent[x];
        }
        x
    }

    fn union(&mut self, a: usize, b: usize) {
        let (mut ra, mut rb) = (self.find(a), self.find(b));
        if ra == rb {
            return;
        }
        if self.size[ra] < self.size[rb] {
            std::mem::swap(&mut ra, &mut rb);
        }
        self.parent[rb] = ra;
        self.size[ra] += self.size[rb];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn lesson<'a>(key: &'a str, abs_t: f64, trades: &'a [u32]) -> LessonTrades<'a> {
        LessonTrades {
            lesson_key: key,
            abs_t,
            trades,
        }
    }

    fn keys(f: &Factor) -> Vec<&str> {
        f.members.iter().map(String::as_str).collect()
    }

    #[test]
    fn jaccard_by_hand() {
        // {1,2,3,4} vs {2,3,4,5}: ∩ = 3, ∪ = 5 → 0.6.
        assert_eq!(jaccard_sorted(&[1, 2, 3, 4], &[2, 3, 4, 5]), 0.6);
        assert_eq!(jaccard_sorted(&[1, 2], &[1, 2]), 1.0);
        assert_eq!(jaccard_sorted(&[1, 2], &[3]), 0.0);
        assert_eq!(jaccard_sorted(&[], &[]), 0.0);
        assert_eq!(jaccard_sorted(&[], &[1]), 0.0);
    }

    #[test]
    fn clusters_hand_made_sets() {
        // A = 1..=10, B = 1..=8 (J = 8/10 = 0.8), C = 3..=10 (J(A,C) = 0.8, J(B,C) = 6/10 = 0.6),
        // D = 20..=29 (disjoint), E = 20..=26 (J(D,E) = 7/10 = 0.7, exactly the threshold).
        let a: Vec<u32> = (1..=10).collect();
        let b: Vec<u32> = (1..=8).collect();
        let c: Vec<u32> = (3..=10).collect();
        let d: Vec<u32> = (20..=29).collect();
        let e: Vec<u32> = (20..=26).collect();
        let f = cluster_by_jaccard(
            &[
                lesson("c", 2.0, &c),
                lesson("a", 3.0, &a),
                lesson("e", 5.0, &e),
                lesson("b", 4.0, &b),
                lesson("d", 5.0, &d),
            ],
            0.7,
        );
        assert_eq!(f.len(), 2);
        assert_eq!(keys(&f[0]), ["a", "b", "c"]);
        assert_eq!(f[0].representative, "b");
        assert_eq!(
            f[0].jaccard,
            vec![
                JaccardPair {
                    a: "a".into(),
                    b: "b".into(),
                    jaccard: 0.8,
                    across_groups: false,
                },
                JaccardPair {
                    a: "a".into(),
                    b: "c".into(),
                    jaccard: 0.8,
                    across_groups: false,
                },
            ]
        );
        assert_eq!(keys(&f[1]), ["d", "e"]);
        // |t| tie between d and e: the smaller key represents.
        assert_eq!(f[1].representative, "d");
        assert_eq!(f[1].factor_id, fresh_factor_id(&["d".into(), "e".into()]));
        // A stricter threshold splits the chain; B and C stand alone.
        let strict = cluster_by_jaccard(&[lesson("a", 3.0, &a), lesson("b", 4.0, &b)], 0.81);
        assert_eq!(strict.len(), 2);
    }

    #[test]
    fn single_linkage_chains() {
        // A–B and B–C overlap enough, A–C does not: one factor through B.
        let a: Vec<u32> = (0..10).collect();
        let b: Vec<u32> = (2..12).collect(); // J(A,B) = 8/12 ≈ 0.667
        let c: Vec<u32> = (4..14).collect(); // J(B,C) = 8/12, J(A,C) = 6/14
        let f = cluster_by_jaccard(
            &[
                lesson("a", 1.0, &a),
                lesson("b", 1.0, &b),
                lesson("c", 1.0, &c),
            ],
            0.6,
        );
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].jaccard.len(), 2);
    }

    #[test]
    fn unsorted_duplicate_and_degenerate_inputs() {
        let f = cluster_by_jaccard(
            &[
                lesson("x", f64::NAN, &[5, 1, 1, 3]),
                lesson("y", 1.0, &[1, 3, 5]),
                lesson("z", 1.0, &[]),
                lesson("x", 0.5, &[9]),
            ],
            0.7,
        );
        assert_eq!(f.len(), 2);
        assert_eq!(keys(&f[0]), ["x", "y"]);
        assert_eq!(f[0].jaccard.len(), 1);
        assert_eq!(f[0].jaccard[0].jaccard, 1.0);
        assert_eq!(f[0].representative, "y");
        assert_eq!(keys(&f[1]), ["z"]);
        assert!(cluster_by_jaccard(&[], 0.7).is_empty());
        // NaN threshold links nothing; zero threshold links only sets that share a trade.
        assert_eq!(
            cluster_by_jaccard(&[lesson("a", 1.0, &[1]), lesson("b", 1.0, &[1])], f64::NAN).len(),
            2
        );
        assert_eq!(
            cluster_by_jaccard(&[lesson("a", 1.0, &[1]), lesson("b", 1.0, &[2])], 0.0).len(),
            2
        );
    }

    fn previous(factors: &[Factor]) -> Vec<(String, Vec<String>)> {
        factors
            .iter()
            .map(|f| (f.factor_id.clone(), f.members.clone()))
            .collect()
    }

    #[test]
    fn ids_survive_a_member_joining() {
        let a: Vec<u32> = (0..10).collect();
        let b: Vec<u32> = (0..9).collect();
        let c: Vec<u32> = (1..10).collect();
        let run1 = cluster_by_jaccard(&[lesson("a", 1.0, &a), lesson("b", 1.0, &b)], 0.7);
        assert_eq!(run1.len(), 1);
        let mut run2 = cluster_by_jaccard(
            &[
                lesson("a", 1.0, &a),
                lesson("b", 1.0, &b),
                lesson("c", 1.0, &c),
            ],
            0.7,
        );
        assert_ne!(run2[0].factor_id, run1[0].factor_id);
        assign_factor_ids(&mut run2, &previous(&run1));
        assert_eq!(run2[0].factor_id, run1[0].factor_id);
        assert_eq!(keys(&run2[0]), ["a", "b", "c"]);
        // Order of the previous list does not matter, and re-running is idempotent.
        let mut again = run2.clone();
        assign_factor_ids(&mut again, &previous(&run2));
        assert_eq!(again, run2);
    }

    #[test]
    fn a_split_keeps_the_id_on_the_larger_part() {
        let prev = vec![
            (
                "f-old".to_string(),
                vec!["a".into(), "b".into(), "c".into()],
            ),
            ("f-gone".to_string(), vec!["z".into()]),
        ];
        let mk = |members: &[&str]| Factor {
            factor_id: fresh_factor_id(&members.iter().map(|m| m.to_string()).collect::<Vec<_>>()),
            members: members.iter().map(|m| m.to_string()).collect(),
            representative: members[0].to_string(),
            jaccard: vec![],
        };
        // {a} shares 1, {b, c} shares 2 → {b, c} keeps f-old; {a} gets its fresh id.
        let mut now = vec![mk(&["a"]), mk(&["b", "c"])];
        assign_factor_ids(&mut now, &prev);
        assert_eq!(now[1].factor_id, "f-old");
        assert_eq!(now[0].factor_id, fresh_factor_id(&["a".into()]));
        // An even split: the tie goes to the smaller union, then to the part that sorts first.
        let prev = vec![(
            "f-old".to_string(),
            vec!["a".into(), "b".into(), "c".into(), "d".into()],
        )];
        let mut even = vec![mk(&["a", "b"]), mk(&["c", "d"])];
        assign_factor_ids(&mut even, &prev);
        assert_eq!(even[0].factor_id, "f-old");
        assert_ne!(even[1].factor_id, "f-old");
        // Two previous factors merging: the one sharing more members gives its id.
        let prev = vec![
            ("f-1".to_string(), vec!["a".into()]),
            ("f-2".to_string(), vec!["b".into(), "c".into()]),
        ];
        let mut merged = vec![mk(&["a", "b", "c"])];
        assign_factor_ids(&mut merged, &prev);
        assert_eq!(merged[0].factor_id, "f-2");
    }

    #[test]
    fn fresh_ids_avoid_previous_ids() {
        // A previous factor whose id happens to equal the fresh id of an unrelated new factor.
        let members = vec!["q".to_string()];
        let clash = fresh_factor_id(&members);
        let prev = vec![(clash.clone(), vec!["other".to_string()])];
        let mut now = vec![Factor {
            factor_id: clash.clone(),
            members,
            representative: "q".into(),
            jaccard: vec![],
        }];
        assign_factor_ids(&mut now, &prev);
        assert_ne!(now[0].factor_id, clash);
        assert!(now[0].factor_id.starts_with("f-") && now[0].factor_id.len() == 18);
    }

    proptest! {
        #[test]
        fn inverted_index_agrees_with_pairwise_merges(
            sets in prop::collection::vec(prop::collection::btree_set(0u32..30, 0..15), 0..12),
            threshold in 0.3f64..1.0,
        ) {
            let owned: Vec<(String, Vec<u32>)> = sets
                .iter()
                .enumerate()
                .map(|(i, s)| (format!("l{i:02}"), s.iter().copied().collect()))
                .collect();
            let lessons: Vec<LessonTrades<'_>> = owned
                .iter()
                .map(|(k, t)| lesson(k, t.len() as f64, t))
                .collect();
            let factors = cluster_by_jaccard(&lessons, threshold);
            // Every lesson exactly once.
            let mut all: Vec<&str> = factors.iter().flat_map(|f| f.members.iter().map(String::as_str)).collect();
            all.sort_unstable();
            prop_assert_eq!(all.len(), lessons.len());
            all.dedup();
            prop_assert_eq!(all.len(), lessons.len());
            // Two lessons linked by merge-Jaccard are in one factor.
            let factor_of = |k: &str| factors.iter().position(|f| f.members.iter().any(|m| m == k));
            for x in &lessons {
                for y in &lessons {
                    let j = jaccard_sorted(x.trades, y.trades);
                    if j >= threshold && j > 0.0 {
                        prop_assert_eq!(factor_of(x.lesson_key), factor_of(y.lesson_key));
                    }
                }
            }
            for f in &factors {
                for p in &f.jaccard {
                    let x = lessons.iter().find(|l| l.lesson_key == p.a).unwrap();
                    let y = lessons.iter().find(|l| l.lesson_key == p.b).unwrap();
                    prop_assert_eq!(p.jaccard, jaccard_sorted(x.trades, y.trades));
                }
            }
            // Input order does not matter.
            let mut reversed = lessons.clone();
            reversed.reverse();
            prop_assert_eq!(cluster_by_jaccard(&reversed, threshold), factors);
        }
    }
}
