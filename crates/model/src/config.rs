//! One typed configuration for every stage. Defaults are the specification's; a JSON file and
//! command-line flags override them, and the effective configuration is echoed in each run's record.

use crate::dims::DimensionList;
use serde::{Deserialize, Serialize};

/// The loop's settings, stage by stage (JSON: `--config FILE`; `learnloop show-config` prints them).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoopConfig {
    /// Scope dimensions; bit i of a mask is dimension i.
    pub dims: DimensionList,
    /// What the aggregate stage stores.
    pub aggregate: AggregateConfig,
    /// The lesson stage's tests and lifecycle.
    pub lessons: LessonConfig,
    /// How lessons become a config.
    pub materialize: MaterializeConfig,
}

/// Settings of the aggregate stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AggregateConfig {
    /// Largest number of dimensions in an aggregated subset. `None` (the default, SPEC §12):
    /// no depth limit, the enumeration stops where no refinement can be tested by the lesson
    /// stage; set, the exhaustive enumeration of every subset up to this size with at least
    /// `store_min_trades` trades (the reference the pruned path is compared with).
    pub k_max: Option<u32>,
    /// Also keep every subset with at least this many trades (for analysts), besides the subsets
    /// the lesson stage tests and their parents. With `k_max` set: the only store threshold
    /// (`None` there means the smallest minimum support of the lesson stage).
    pub store_min_trades: Option<u64>,
    /// Half-life of the time-decayed statistics, in hours.
    pub stats_half_life_hours: f64,
}

impl Default for AggregateConfig {
    fn default() -> Self {
        Self {
            k_max: None,
            store_min_trades: None,
            stats_half_life_hours: 90.0 * 24.0,
        }
    }
}

/// Settings of the lesson stage (SPEC §4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LessonConfig {
    /// Benjamini–Hochberg false discovery rate.
    pub fdr: f64,
    /// A subset must beat each parent by this much R, in the direction of its edge.
    pub incremental_min: f64,
    /// Minimum trades by subset size: entry k applies to k-dim subsets; the last entry to all larger.
    pub min_support: Vec<u64>,
    /// Most active lessons per (pattern, category): the strongest by evidence are kept.
    pub max_lessons_per_pattern: usize,
    /// Lessons whose trade sets overlap at least this much (Jaccard) share a latent factor.
    pub factor_jaccard: f64,
    /// Seed of the placebo shuffle.
    pub placebo_seed: u64,
    /// Length of a time cluster in days, counted from a Monday (7 = the ISO week of a trade's
    /// entry): trades of one cluster share the market, and standard errors are robust to it.
    pub cluster_days: u32,
    /// A subset spread over fewer time clusters cannot become a lesson; a contrast is taken within
    /// clusters when at least this many clusters hold both sides.
    pub min_clusters: u32,
    /// Self-sufficiency (SPEC §4.6): a refinement whose own test has at most this p (before the
    /// run's multiple-testing correction) and the same direction counts as a significant, more
    /// specific subset. A generalization whose effect is gone without its trades is that
    /// refinement in disguise, whether or not the refinement itself becomes a lesson.
    pub self_sufficiency_p: f64,
    /// Independent filtering of the first family (docs/statistics.md): leave out the two-dim
    /// subsets whose weakest contrast has the fewest effective trades when that gives the family
    /// more discoveries (the threshold is one of the statistic's 5 % quantiles, chosen per run;
    /// at least as many two-dim subsets as one-dim ones stay).
    pub independent_filtering: bool,
    /// Children families (docs/statistics.md): a discovery rejected as the disguise of a
    /// refinement that is no lesson opens the family of its children (a BH family of its own, at
    /// half of `fdr`), and a refinement explains a subset away only when the family of
    /// that subset's own children discovers it, at `explainer_fdr`. Off: any refinement at
    /// `self_sufficiency_p` explains, and nothing below an explained discovery is tested again.
    pub children_families: bool,
    /// The level at which the family of a subset's children must discover a refinement (or a
    /// child on the way to it) for the refinement to explain the subset away. It only ever
    /// rejects, never teaches, so it may be more lenient than `fdr`.
    pub explainer_fdr: f64,
    /// Shared scopes (docs/statistics.md): a two-dim scope tested in several groups of a module
    /// is also one hypothesis across them (Simes over its groups' p-values, one BH family at
    /// `fdr` over the run's such scopes); under each such discovery its groups form a BH family
    /// at `fdr`, so that an interaction found in many patterns is found in each. Off: every
    /// subset is tested only in the run's first family.
    pub shared_scopes: bool,
    /// Half-life clamps, in hours.
    pub half_life_min_hours: f64,
    /// Upper clamp of a fitted half-life, in hours.
    pub half_life_max_hours: f64,
    /// Points of one sign needed before a half-life is fitted.
    pub half_life_min_points: usize,
    /// One-sided level of the slope test a declining edge must pass to get a fitted half-life.
    pub half_life_alpha: f64,
    /// Fresh trades re-confirm an active lesson when their mean, against the lesson's reference
    /// level, shows at least this share of its edge (in the edge's direction).
    pub confirm_share: f64,
    /// An active lesson is retired after failing its tests on this many consecutive runs.
    pub retire_after_failures: u32,
}

impl Default for LessonConfig {
    fn default() -> Self {
        Self {
            fdr: 0.10,
            incremental_min: 0.1,
            min_support: vec![10, 10, 10, 20, 20, 30, 30, 50],
            max_lessons_per_pattern: 3,
            factor_jaccard: 0.7,
            placebo_seed: 42,
            cluster_days: 7,
            min_clusters: 6,
            self_sufficiency_p: 0.01,
            independent_filtering: true,
            children_families: true,
            explainer_fdr: 0.1,
            shared_scopes: true,
            half_life_min_hours: 1.0,
            half_life_max_hours: 8760.0,
            half_life_min_points: 5,
            half_life_alpha: 0.05,
            confirm_share: 0.5,
            retire_after_failures: 2,
        }
    }
}

/// Subsets of this many dims and more are hypotheses of the lesson stage only under a parent that
/// is a discovery of the run (SPEC §4.5, §12; docs/statistics.md): the lesson stage computes them
/// from the trades under its discoveries, so the aggregate stage stores none by default.
pub const FIRST_HIERARCHICAL_DIMS: u32 = 3;

impl LessonConfig {
    /// Minimum trades a subset of `dims` dimensions needs to be tested.
    pub fn min_support_for(&self, dims: u32) -> u64 {
        let i = (dims as usize).min(self.min_support.len().saturating_sub(1));
        self.min_support.get(i).copied().unwrap_or(1)
    }

    /// The smallest minimum support over all sizes.
    pub fn smallest_min_support(&self) -> u64 {
        self.min_support.iter().copied().min().unwrap_or(1)
    }
}

/// Settings of the materialize stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaterializeConfig {
    /// size_mult = clamp(1 + gain · shrunk_edge).
    pub gain: f64,
    /// Largest move of any lever from the previous active version.
    pub max_step: f64,
    /// Decay half-life of lessons without an estimated one, in hours.
    pub default_half_life_hours: f64,
    /// Overrides whose levers all lie within this of neutral are dropped.
    pub neutral_epsilon: f64,
    /// Specificity exponent of the runtime blend weight (1 + dims)^alpha.
    pub specificity_alpha: f64,
}

impl Default for MaterializeConfig {
    fn default() -> Self {
        Self {
            gain: 0.5,
            max_step: 0.10,
            default_half_life_hours: 30.0 * 24.0,
            neutral_epsilon: 0.005,
            specificity_alpha: 1.5,
        }
    }
}

/// Largest specificity exponent the overrides runtime accepts in a config (its schema check).
pub const SPECIFICITY_ALPHA_MAX: f64 = 10.0;

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The JSON does not parse into the configuration (unknown keys included).
    #[error("configuration is not valid JSON for learnloop: {0}")]
    Parse(#[from] serde_json::Error),
    /// A value outside its admitted range.
    #[error("configuration value {field} = {value} is out of range: {expected}")]
    OutOfRange {
        /// The field (dotted path).
        field: &'static str,
        /// The value found.
        value: String,
        /// What the field admits.
        expected: &'static str,
    },
}

impl LoopConfig {
    /// Parse and validate a JSON configuration (missing keys take the defaults).
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let cfg: Self = serde_json::from_str(text)?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The store threshold with `k_max` set: `aggregate.store_min_trades`, else the smallest minimum support.
    pub fn store_min_trades(&self) -> u64 {
        self.aggregate
            .store_min_trades
            .unwrap_or_else(|| self.lessons.smallest_min_support())
            .max(1)
    }

    /// The fewest trades a stored subset of `dims` dimensions has (SPEC §3, §12): with `k_max`
    /// set, `store_min_trades` at every size; otherwise the smallest minimum support of this size
    /// or any larger one (the lesson stage's tests and their parents), or `store_min_trades` when
    /// an analyst set it lower.
    pub fn stored_min_trades(&self, dims: u32) -> u64 {
        if self.aggregate.k_max.is_some() {
            return self.store_min_trades();
        }
        let largest = self.lessons.min_support.len().max(1) as u32 - 1;
        let by_support = (dims..=largest.max(dims))
            .map(|k| self.lessons.min_support_for(k))
            .min()
            .unwrap_or(1);
        let analyst = self.aggregate.store_min_trades.unwrap_or(u64::MAX);
        by_support.min(analyst).max(1)
    }

    /// Check every value against its range (the first offending one is reported).
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.aggregate.validate()?;
        self.lessons.validate()?;
        self.materialize.validate()
    }
}

/// `Ok` when `ok`, else the out-of-range error of `field`.
fn check(
    ok: bool,
    field: &'static str,
    value: impl ToString,
    expected: &'static str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError::OutOfRange {
            field,
            value: value.to_string(),
            expected,
        })
    }
}

impl AggregateConfig {
    /// Check the aggregate settings' ranges.
    fn validate(&self) -> Result<(), ConfigError> {
        let a = self;
        check(
            a.k_max.is_none_or(|k| k <= 64),
            "aggregate.k_max",
            format!("{:?}", a.k_max),
            "0..=64 or null",
        )?;
        check(
            a.stats_half_life_hours.is_finite() && a.stats_half_life_hours > 0.0,
            "aggregate.stats_half_life_hours",
            a.stats_half_life_hours,
            "a positive number of hours",
        )?;
        Ok(())
    }
}

impl LessonConfig {
    /// Check the lesson settings' ranges.
    fn validate(&self) -> Result<(), ConfigError> {
        let l = self;
        check(
            l.fdr > 0.0 && l.fdr < 1.0,
            "lessons.fdr",
            l.fdr,
            "strictly between 0 and 1",
        )?;
        check(
            l.incremental_min.is_finite() && l.incremental_min >= 0.0,
            "lessons.incremental_min",
            l.incremental_min,
            "a finite number >= 0",
        )?;
        check(
            !l.min_support.is_empty() && l.min_support.iter().all(|&s| s >= 2),
            "lessons.min_support",
            format!("{:?}", l.min_support),
            "a non-empty list of trade counts >= 2",
        )?;
        check(
            (0.0..=1.0).contains(&l.factor_jaccard),
            "lessons.factor_jaccard",
            l.factor_jaccard,
            "0..=1",
        )?;
        check(
            l.cluster_days >= 1,
            "lessons.cluster_days",
            l.cluster_days,
            ">= 1",
        )?;
        check(
            l.min_clusters >= 2,
            "lessons.min_clusters",
            l.min_clusters,
            ">= 2",
        )?;
        check(
            l.explainer_fdr > 0.0 && l.explainer_fdr < 1.0,
            "lessons.explainer_fdr",
            l.explainer_fdr,
            "0 < q < 1",
        )?;
        check(
            l.self_sufficiency_p > 0.0 && l.self_sufficiency_p < 1.0,
            "lessons.self_sufficiency_p",
            l.self_sufficiency_p,
            "0 < p < 1",
        )?;
        check(
            l.half_life_min_hours > 0.0
                && l.half_life_min_hours <= l.half_life_max_hours
                && l.half_life_max_hours.is_finite(),
            "lessons.half_life_min_hours",
            l.half_life_min_hours,
            "> 0 and <= half_life_max_hours (finite)",
        )?;
        check(
            l.half_life_min_points >= 2,
            "lessons.half_life_min_points",
            l.half_life_min_points,
            ">= 2",
        )?;
        check(
            l.half_life_alpha > 0.0 && l.half_life_alpha < 1.0,
            "lessons.half_life_alpha",
            l.half_life_alpha,
            "strictly between 0 and 1",
        )?;
        check(
            (0.0..=1.0).contains(&l.confirm_share),
            "lessons.confirm_share",
            l.confirm_share,
            "0..=1",
        )?;
        check(
            l.retire_after_failures >= 1,
            "lessons.retire_after_failures",
            l.retire_after_failures,
            ">= 1",
        )?;
        Ok(())
    }
}

impl MaterializeConfig {
    /// Check the materialize settings' ranges.
    fn validate(&self) -> Result<(), ConfigError> {
        let m = self;
        check(
            m.gain.is_finite(),
            "materialize.gain",
            m.gain,
            "a finite number",
        )?;
        check(
            m.max_step.is_finite() && m.max_step > 0.0,
            "materialize.max_step",
            m.max_step,
            "a finite number > 0",
        )?;
        check(
            m.default_half_life_hours.is_finite() && m.default_half_life_hours > 0.0,
            "materialize.default_half_life_hours",
            m.default_half_life_hours,
            "a finite number of hours > 0",
        )?;
        check(
            m.neutral_epsilon.is_finite() && m.neutral_epsilon >= 0.0,
            "materialize.neutral_epsilon",
            m.neutral_epsilon,
            "a finite number >= 0",
        )?;
        // The runtime refuses a config outside this range, so a run must not find out only
        // after all its work, at materialize.
        check(
            (0.0..=SPECIFICITY_ALPHA_MAX).contains(&m.specificity_alpha),
            "materialize.specificity_alpha",
            m.specificity_alpha,
            "0..=10 (the range the overrides runtime accepts)",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_follow_the_spec() {
        let c = LoopConfig::default();
        assert_eq!(c.aggregate.k_max, None);
        assert_eq!(c.store_min_trades(), 10);
        assert_eq!(
            (0..10)
                .map(|k| c.lessons.min_support_for(k))
                .collect::<Vec<_>>(),
            [10, 10, 10, 20, 20, 30, 30, 50, 50, 50]
        );
        assert!(c.validate().is_ok());
    }

    #[test]
    fn partial_json_overrides_and_unknown_keys_fail() {
        let c = LoopConfig::from_json(
            r#"{"lessons": {"fdr": 0.05}, "aggregate": {"store_min_trades": 1}}"#,
        )
        .unwrap();
        assert_eq!(c.lessons.fdr, 0.05);
        assert_eq!(c.lessons.max_lessons_per_pattern, 3);
        assert_eq!(c.store_min_trades(), 1);
        assert!(LoopConfig::from_json(r#"{"lessons": {"fdrr": 0.05}}"#).is_err());
        assert!(LoopConfig::from_json(r#"{"lessons": {"fdr": 1.5}}"#).is_err());
    }

    #[test]
    fn every_runtime_bound_is_checked_at_load() {
        let ok = r#"{"materialize": {"specificity_alpha": 10}}"#;
        assert!(LoopConfig::from_json(ok).is_ok());
        for bad in [
            r#"{"materialize": {"specificity_alpha": 10.5}}"#,
            r#"{"materialize": {"specificity_alpha": -0.1}}"#,
            r#"{"materialize": {"max_step": 1e400}}"#,
            r#"{"lessons": {"half_life_max_hours": 1e400}}"#,
        ] {
            let err = LoopConfig::from_json(bad).err();
            assert!(err.is_some(), "{bad} accepted");
        }
    }

    #[test]
    fn stored_min_trades_follows_the_minimum_support_by_size_unless_k_max_or_an_analyst_says_otherwise(
    ) {
        let mut c = LoopConfig::default();
        c.lessons.min_support = vec![10, 10, 10, 20, 20, 30, 30, 50];
        assert_eq!(c.stored_min_trades(0), 10);
        assert_eq!(c.stored_min_trades(3), 20);
        assert_eq!(c.stored_min_trades(7), 50);
        assert_eq!(c.stored_min_trades(20), 50);
        // A decreasing list: a 1-dim subset is stored when a larger size would test it.
        c.lessons.min_support = vec![10, 30, 20];
        assert_eq!(c.stored_min_trades(1), 20);
        c.aggregate.store_min_trades = Some(5);
        assert_eq!(c.stored_min_trades(2), 5);
        c.aggregate.k_max = Some(3);
        assert_eq!(c.stored_min_trades(2), 5);
        c.aggregate.store_min_trades = None;
        assert_eq!(c.stored_min_trades(2), c.store_min_trades());
    }
}
