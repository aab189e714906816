//! Realistic synthetic configs and actions for benchmarks, latency measurements and property
//! tests (no `rand` dependency: a SplitMix64 generator is enough and keeps runs reproducible).

use crate::levers::{Lever, Levers};
use crate::schema::{ConfigData, Override, ACTION_CATEGORIES};
use std::collections::{BTreeMap, BTreeSet, HashSet};

const PHASES: &[&str] = &[
    "Euphoria",
    "Good",
    "Recover",
    "Dip",
    "Double-Dip",
    "Oh-Shit",
    "Chop",
];

/// The default scope dimensions (SPEC §2) with small realistic vocabularies.
pub const DIMS: [(&str, &[&str]); 10] = [
    ("macro_phase", PHASES),
    ("meso_phase", PHASES),
    ("micro_phase", PHASES),
    ("bucket_leader", &["leader", "follower"]),
    (
        "bucket_rank_position",
        &["top", "upper", "middle", "lower", "bottom"],
    ),
    ("market_family", &["memecoin", "defi", "l1", "ai", "gaming"]),
    ("bucket", &["nano", "micro", "mid", "big", "large", "xl"]),
    ("timeframe", &["1m", "15m", "1h", "4h"]),
    ("A_mode", &["patient", "normal", "aggressive"]),
    ("E_mode", &["patient", "normal", "aggressive"]),
];

/// SplitMix64: tiny, fast, good enough for test data.
#[derive(Debug, Clone)]
pub struct SplitMix64(u64);

impl SplitMix64 {
    /// A generator whose stream is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 * n as f64) as usize % n
    }

    /// Uniform in `[lo, hi)`.
    pub fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform(0.0, 1.0) < p
    }

    /// One of `items`, uniformly (panics on an empty slice).
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Shape of a synthetic config.
#[derive(Debug, Clone, Copy)]
pub struct SyntheticSpec {
    /// The size of a synthetic config, for benchmarks.
    pub patterns: usize,
    /// Distinct pattern keys.
    pub overrides: usize,
    /// Scopes use 0..=max_dims dimensions.
    pub max_dims: usize,
    /// Seed of the generator: the same spec gives the same config.
    pub seed: u64,
}

impl Default for SyntheticSpec {
    /// The benchmark's realistic config: 10k overrides, 40 patterns × 4 categories, 0–4 dims.
    fn default() -> Self {
        Self {
            patterns: 40,
            overrides: 10_000,
            max_dims: 4,
            seed: 42,
        }
    }
}

/// `n` distinct, realistic pattern keys (`family.state.motif`).
pub fn pattern_names(n: usize) -> Vec<String> {
    const FAMILIES: [&str; 5] = ["uptrend", "downtrend", "range", "breakout", "reversal"];
    const MOTIFS: [&str; 4] = ["entry", "add", "trim", "exit"];
    (0..n)
        .map(|i| {
            let family = FAMILIES[i % FAMILIES.len()];
            let state = (i / FAMILIES.len()) % 4;
            let motif = MOTIFS[(i / (FAMILIES.len() * 4)) % MOTIFS.len()];
            // 80 distinct family.state.motif keys; beyond that, number them.
            let suffix = if i >= 80 {
                format!("{i}")
            } else {
                String::new()
            };
            format!("module=pm|pattern_key={family}.S{state}.{motif}{suffix}")
        })
        .collect()
}

/// A valid config with `spec.overrides` overrides at distinct scopes (fewer if the scope space
/// is exhausted). Small dimension counts are more common, as in real lesson sets.
pub fn synthetic_config(spec: SyntheticSpec) -> ConfigData {
    let mut rng = SplitMix64::new(spec.seed);
    let patterns = pattern_names(spec.patterns.max(1));
    let mut config = ConfigData::new("pm", 1, "2024-06-01T00:00:00Z");
    let mut seen = HashSet::new();
    let mut attempts = 0usize;
    while config.pattern_overrides.len() + config.pattern_strength_overrides.len() < spec.overrides
        && attempts < spec.overrides * 20
    {
        attempts += 1;
        let pattern = rng.pick(&patterns).clone();
        let category = *rng.pick(&ACTION_CATEGORIES);
        let k = sample_dims(&mut rng, spec.max_dims.min(DIMS.len()));
        let scope = random_scope(&mut rng, k);
        if !seen.insert((pattern.clone(), category, scope.clone())) {
            continue;
        }
        let id = format!("ov-{:05}", seen.len());
        let o = random_override(&mut rng, id, pattern, category, scope);
        if o.scope.is_empty() {
            config.pattern_strength_overrides.push(o);
        } else {
            config.pattern_overrides.push(o);
        }
    }
    config
}

fn sample_dims(rng: &mut SplitMix64, max_dims: usize) -> usize {
    // Roughly 5% / 25% / 35% / 25% / 10% for 0..=4 dims, truncated at max_dims.
    const CUMULATIVE: [f64; 5] = [0.05, 0.30, 0.65, 0.90, 1.0];
    let u = rng.uniform(0.0, 1.0);
    let k = CUMULATIVE.iter().position(|&c| u < c).unwrap_or(4);
    if max_dims > 4 {
        k + rng.below(max_dims - 3)
    } else {
        k.min(max_dims)
    }
}

fn random_scope(rng: &mut SplitMix64, k: usize) -> BTreeMap<String, String> {
    let mut dims = BTreeSet::new();
    while dims.len() < k {
        dims.insert(rng.below(DIMS.len()));
    }
    dims.into_iter()
        .map(|d| {
            let (name, vocab) = DIMS[d];
            (name.to_string(), rng.pick(vocab).to_string())
        })
        .collect()
}

fn random_override(
    rng: &mut SplitMix64,
    override_id: String,
    pattern_key: String,
    category: &str,
    scope: BTreeMap<String, String>,
) -> Override {
    let mut levers = Levers::new();
    let bounded = |rng: &mut SplitMix64, lever: Lever| {
        let (lo, hi) = lever.bounds();
        rng.uniform(lo, hi)
    };
    if rng.chance(0.9) {
        levers.set(Lever::SizeMult, bounded(rng, Lever::SizeMult));
    }
    if rng.chance(0.5) {
        let lever = if matches!(category, "entry" | "add") {
            Lever::EntryAggressionMult
        } else {
            Lever::ExitAggressionMult
        };
        levers.set(lever, bounded(rng, lever));
    }
    for lever in [
        Lever::Phase1FracMult,
        Lever::TrailMult,
        Lever::EntryDelayBars,
    ] {
        if rng.chance(0.1) {
            levers.set(lever, bounded(rng, lever));
        }
    }
    let q_value = rng.uniform(0.0, 0.1);
    let n_trades = 10 + rng.below(300) as u64;
    let factor_id = rng.chance(0.3).then(|| format!("f-{}", rng.below(1000)));
    Override {
        lesson_keys: vec![format!("lesson-{override_id}")],
        override_id,
        pattern_key,
        action_category: category.to_string(),
        scope,
        levers,
        confidence: crate::schema::confidence_from(q_value, n_trades),
        q_value,
        n_trades,
        edge: Some(rng.uniform(-1.0, 1.0)),
        half_life_hours: rng.chance(0.5).then(|| rng.uniform(24.0, 2000.0)),
        created_at: None,
        members: Vec::new(),
        factor_id,
    }
}

/// One synthetic PM action.
#[derive(Debug, Clone)]
pub struct SyntheticAction {
    /// The pattern looked up.
    pub pattern_key: String,
    /// The action category looked up.
    pub action_category: &'static str,
    /// The action's scope.
    pub scope: BTreeMap<String, String>,
}

/// Actions over the same patterns as [`synthetic_config`] (plus ~2% unknown patterns); each
/// dimension is present with probability `presence`.
pub fn synthetic_actions(
    patterns: usize,
    n: usize,
    presence: f64,
    seed: u64,
) -> Vec<SyntheticAction> {
    let mut rng = SplitMix64::new(seed);
    let names = pattern_names(patterns.max(1));
    (0..n)
        .map(|i| {
            let pattern_key = if rng.chance(0.02) {
                format!("module=pm|pattern_key=unseen.S0.{i}")
            } else {
                rng.pick(&names).clone()
            };
            let mut scope = BTreeMap::new();
            for (name, vocab) in DIMS {
                if rng.chance(presence) {
                    scope.insert(name.to_string(), rng.pick(vocab).to_string());
                }
            }
            SyntheticAction {
                pattern_key,
                action_category: ACTION_CATEGORIES[rng.below(ACTION_CATEGORIES.len())],
                scope,
            }
        })
        .collect()
}
