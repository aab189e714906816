//! `Overrides`: one validated, indexed config version — immutable, so a handle can share it
//! between threads and swap it whole.

use crate::bins::{BinnedScope, NumericBins};
use crate::blend::{blend_matches, sort_matches};
use crate::decision::{Decision, Match};
use crate::error::{ConfigError, ValidationIssues};
use crate::hash::config_checksum;
use crate::index::{Hit, Index, IndexStats};
use crate::levers::Lever;
use crate::schema::{
    category_index, specificity_weight, ConfigData, Override, ACTION_CATEGORIES, BUCKET_DIM,
    REGIME_DIM,
};
use crate::scope::ScopeView;
use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

/// One loaded, validated config with its lookup index: immutable, cheap to share between threads.
#[derive(Debug, Clone)]
pub struct Overrides {
    config: ConfigData,
    /// `config.overrides()` in order, shared with the decisions that cite them.
    overrides: Arc<[Override]>,
    /// Blend weight of each override, precomputed (no `powf` per lookup).
    weights: Box<[f64]>,
    /// Each override's place in the decision order: most specific first, then by id.
    ranks: Box<[u32]>,
    index: Index,
    checksum: String,
    /// `config.scope_bins`, built: raw numbers in a lookup's scope are binned with these.
    bins: Box<[(String, NumericBins)]>,
    /// Bare pattern key (`uptrend.S2.add`) → the full key of this config's module
    /// (`module=pm|pattern_key=uptrend.S2.add`), for callers that pass the short form.
    full_keys: HashMap<String, String>,
}

/// The bare pattern of a full key `module=MODULE|pattern_key=PATTERN` of `module`.
fn bare_pattern<'a>(full_key: &'a str, module: &str) -> Option<&'a str> {
    full_key
        .strip_prefix("module=")?
        .strip_prefix(module)?
        .strip_prefix("|pattern_key=")
        .filter(|bare| !bare.is_empty() && !bare.contains('|'))
}

impl Overrides {
    /// Validate and index a config.
    pub fn from_config(config: ConfigData) -> Result<Self, ConfigError> {
        let checksum = config_checksum(&config.to_json());
        Self::build(config, checksum)
    }

    /// Parse, validate and index `config_data` text.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let config = ConfigData::parse(text)?;
        Self::build(config, config_checksum(text))
    }

    /// Load and validate a `config_data` JSON file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_json(&text)
    }

    fn build(config: ConfigData, checksum: String) -> Result<Self, ConfigError> {
        config.validate()?;
        let overrides: Arc<[Override]> = config.overrides().cloned().collect();
        let alpha = config.specificity_alpha;
        let weights: Box<[f64]> = overrides
            .iter()
            .map(|o| specificity_weight(o.confidence, o.dims(), alpha))
            .collect();
        let mut order: Vec<usize> = (0..overrides.len()).collect();
        order.sort_by(|&a, &b| {
            let (a, b) = (&overrides[a], &overrides[b]);
            b.dims()
                .cmp(&a.dims())
                .then_with(|| a.override_id.cmp(&b.override_id))
        });
        let mut ranks = vec![0u32; overrides.len()].into_boxed_slice();
        for (rank, pos) in order.into_iter().enumerate() {
            ranks[pos] = rank as u32;
        }
        let index =
            Index::build(&overrides, &weights, &ranks).map_err(|issues| ConfigError::Invalid {
                issues: ValidationIssues(issues),
            })?;
        // A bare key that overrides are stored under as it is (a producer that logs both
        // forms) keeps meaning those overrides, as it does for the CLI.
        let stored: std::collections::HashSet<&str> =
            overrides.iter().map(|o| o.pattern_key.as_str()).collect();
        let full_keys = overrides
            .iter()
            .filter_map(|o| {
                let bare = bare_pattern(&o.pattern_key, &config.module)?;
                (!stored.contains(bare)).then(|| (bare.to_string(), o.pattern_key.clone()))
            })
            .collect();
        let bins = config
            .scope_bins
            .iter()
            .filter_map(|(dim, edges)| Some((dim.clone(), NumericBins::new(edges.clone()).ok()?)))
            .collect();
        Ok(Self {
            config,
            overrides,
            weights,
            ranks,
            index,
            checksum,
            bins,
            full_keys,
        })
    }

    /// The key the overrides are stored under: `pattern_key` itself, or for a bare pattern
    /// (`uptrend.S2.add`, as the CLI accepts it) the full key of this config's module.
    fn full_pattern_key<'a>(&'a self, pattern_key: &'a str) -> &'a str {
        if pattern_key.contains('|') {
            return pattern_key;
        }
        self.full_keys
            .get(pattern_key)
            .map_or(pattern_key, String::as_str)
    }

    /// The config as loaded.
    pub fn config(&self) -> &ConfigData {
        &self.config
    }

    /// Its module.
    pub fn module(&self) -> &str {
        &self.config.module
    }

    /// Its version.
    pub fn version(&self) -> i64 {
        self.config.version
    }

    /// FNV-1a checksum of the text this was loaded from (of the canonical text when built from
    /// a [`ConfigData`]).
    pub fn checksum(&self) -> &str {
        &self.checksum
    }

    /// Number of overrides (both lists).
    pub fn len(&self) -> usize {
        self.overrides.len()
    }

    /// Whether the config has no override.
    pub fn is_empty(&self) -> bool {
        self.overrides.is_empty()
    }

    /// Sizes of the lookup index.
    pub fn index_stats(&self) -> IndexStats {
        self.index.stats()
    }

    /// The decision for an action of `pattern_key` / `action_category` with `scope`.
    pub fn lookup<S: ScopeView + ?Sized>(
        &self,
        pattern_key: &str,
        action_category: &str,
        scope: &S,
    ) -> Decision {
        let mut out = Decision::default();
        self.lookup_into(pattern_key, action_category, scope, &mut out);
        out
    }

    /// As [`Overrides::lookup`], reusing `out`'s buffers: once `out.matches` has grown to the
    /// largest match count it allocates nothing (except a fallback reason's text).
    pub fn lookup_into<S: ScopeView + ?Sized>(
        &self,
        pattern_key: &str,
        action_category: &str,
        scope: &S,
        out: &mut Decision,
    ) {
        if self.bins.is_empty() {
            self.lookup_indexed(pattern_key, action_category, scope, out);
        } else {
            let binned = BinnedScope::new(scope, &self.bins);
            self.lookup_indexed(pattern_key, action_category, &binned, out);
        }
    }

    fn lookup_indexed<S: ScopeView + ?Sized>(
        &self,
        pattern_key: &str,
        action_category: &str,
        scope: &S,
        out: &mut Decision,
    ) {
        self.decide(
            pattern_key,
            action_category,
            scope,
            out,
            |pattern_key, category, on_match| {
                self.index
                    .for_each_match(pattern_key, category, scope, on_match)
            },
        );
    }

    /// Reference implementation: scans every override. Same result as [`Overrides::lookup`];
    /// kept public for tests and benchmarks.
    pub fn lookup_scan<S: ScopeView + ?Sized>(
        &self,
        pattern_key: &str,
        action_category: &str,
        scope: &S,
    ) -> Decision {
        let binned = BinnedScope::new(scope, &self.bins);
        let scope = &binned;
        let mut out = Decision::default();
        self.decide(
            pattern_key,
            action_category,
            scope,
            &mut out,
            |pattern_key, category, on_match| {
                for (pos, o) in self.overrides.iter().enumerate() {
                    let same_group = o.pattern_key == pattern_key
                        && category_index(&o.action_category) == Some(category);
                    if same_group
                        && o.scope
                            .iter()
                            .all(|(d, v)| scope.get(d) == Some(v.as_str()))
                    {
                        on_match(Hit {
                            pos: pos as u32,
                            rank: self.ranks[pos],
                            weight: self.weights[pos],
                            levers: o.levers,
                        });
                    }
                }
            },
        );
        out
    }

    fn decide<S: ScopeView + ?Sized>(
        &self,
        pattern_key: &str,
        action_category: &str,
        scope: &S,
        out: &mut Decision,
        find: impl FnOnce(&str, usize, &mut dyn FnMut(Hit)),
    ) {
        let pattern_key = self.full_pattern_key(pattern_key);
        out.reset();
        out.config_version = Some(self.config.version);
        let Some(category) = category_index(action_category) else {
            out.fall_back(format!(
                "unknown action category {action_category:?}: expected one of entry, add, trim, exit"
            ));
            return;
        };
        if let Some(reason) = self.disabled_reason(pattern_key, category, scope) {
            out.fall_back(reason);
            return;
        }
        let matches = &mut out.matches;
        find(pattern_key, category, &mut |hit| {
            matches.push(Match::new(
                &self.overrides,
                hit.pos,
                hit.rank,
                hit.weight,
                hit.levers,
            ));
        });
        sort_matches(&mut out.matches);
        out.levers = blend_matches(&out.matches);
        out.size_mult = out.levers.get_or_neutral(Lever::SizeMult);
    }

    /// Why the feature flags switch learning off for this action, if they do.
    fn disabled_reason<S: ScopeView + ?Sized>(
        &self,
        pattern_key: &str,
        category: usize,
        scope: &S,
    ) -> Option<String> {
        let flags = &self.config.feature_flags;
        let listed =
            |list: &[String], value: &str| list.iter().any(|x| x.eq_ignore_ascii_case(value));
        if !flags.learning_enabled {
            return Some("learning disabled by feature flag learning_enabled=false".into());
        }
        // A pattern may be listed full or bare; the bare form is only looked for when a list is
        // set (these are per-tick calls).
        if !flags.disabled_patterns.is_empty()
            && (listed(&flags.disabled_patterns, pattern_key)
                || bare_pattern(pattern_key, &self.config.module)
                    .is_some_and(|b| listed(&flags.disabled_patterns, b)))
        {
            return Some(format!("learning disabled for pattern {pattern_key:?}"));
        }
        let category_name = ACTION_CATEGORIES[category];
        if listed(&flags.disabled_categories, category_name) {
            return Some(format!("learning disabled for category {category_name}"));
        }
        // Only ask the scope when a list is set: these are per-tick calls.
        if !flags.disabled_regimes.is_empty() {
            if let Some(regime) = scope
                .get(REGIME_DIM)
                .filter(|r| listed(&flags.disabled_regimes, r))
            {
                return Some(format!(
                    "learning disabled for regime {REGIME_DIM}={regime}"
                ));
            }
        }
        if !flags.disabled_buckets.is_empty() {
            if let Some(bucket) = scope
                .get(BUCKET_DIM)
                .filter(|b| listed(&flags.disabled_buckets, b))
            {
                return Some(format!(
                    "learning disabled for bucket {BUCKET_DIM}={bucket}"
                ));
            }
        }
        None
    }
}
