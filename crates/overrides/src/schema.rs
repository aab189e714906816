//! The `config_data` JSON of a `learning_configs` row: what the materializer writes and the PM
//! reads. Versioned by `schema_version`; a reader refuses versions it does not know rather than
//! guessing. Within one schema version, new optional fields may be added (unknown fields are
//! ignored), so an older PM keeps loading configs from a newer materializer. What a typo must not
//! silently change is refused instead: unknown *lever* names (a misspelt lever would drop a
//! lesson), unknown feature flags (an operator's switch would be off), and an override without
//! `scope` (a misspelt `scope` would widen it to every action of its pattern). A new feature
//! flag therefore needs a new `schema_version`: a reader that cannot honour a switch must say so.
//!
//! ```
//! # use learnloop_overrides::{ConfigData, Lever};
//! let text = r#"{
//!   "schema_version": 1,
//!   "module": "pm",
//!   "version": 12,
//!   "as_of": "2024-06-01T00:00:00Z",
//!   "specificity_alpha": 1.5,
//!   "feature_flags": {
//!     "learning_enabled": true,
//!     "disabled_regimes": ["Oh-Shit"],
//!     "disabled_buckets": [],
//!     "disabled_patterns": [],
//!     "disabled_categories": []
//!   },
//!   "pattern_strength_overrides": [{
//!     "override_id": "pm|uptrend.S2.add|add|root",
//!     "pattern_key": "module=pm|pattern_key=uptrend.S2.add",
//!     "action_category": "add",
//!     "scope": {},
//!     "levers": {"size_mult": 1.08},
//!     "confidence": 0.61, "q_value": 0.01, "n_trades": 42,
//!     "edge": 0.16, "half_life_hours": 720.0, "created_at": "2024-05-01T00:00:00Z",
//!     "lesson_keys": ["lk-7f3a"], "factor_id": null, "members": []
//!   }],
//!   "pattern_overrides": [{
//!     "override_id": "pm|uptrend.S2.add|add|macro_phase=Good,bucket=mid",
//!     "pattern_key": "module=pm|pattern_key=uptrend.S2.add",
//!     "action_category": "add",
//!     "scope": {"bucket": "mid", "macro_phase": "Good"},
//!     "levers": {"size_mult": 1.2, "entry_aggression_mult": 1.05},
//!     "confidence": 0.55, "q_value": 0.03, "n_trades": 31,
//!     "lesson_keys": ["lk-91c2", "lk-91c3"], "factor_id": "f-1d2e",
//!     "members": ["lk-91c2", "lk-91c3"]
//!   }]
//! }"#;
//! let config = ConfigData::from_json(text).unwrap();
//! assert_eq!(config.pattern_overrides[0].levers.get(Lever::SizeMult), Some(1.2));
//! // Canonical text (what the checksum is computed over) parses back to the same config.
//! assert_eq!(ConfigData::from_json(&config.to_json()).unwrap(), config);
//! ```

use crate::error::{ConfigError, ValidationIssue, ValidationIssues};
use crate::levers::Levers;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

/// The schema version this build writes and reads.
pub const CURRENT_SCHEMA_VERSION: u32 = 1;

/// Default exponent of the specificity weight `(1 + dims)^alpha`.
pub const DEFAULT_SPECIFICITY_ALPHA: f64 = 1.5;

/// Pseudo-count of the confidence formula: 25 trades give half confidence.
pub const CONFIDENCE_PSEUDO_TRADES: f64 = 25.0;

/// The action categories of the data contract.
pub const ACTION_CATEGORIES: [&str; 4] = ["entry", "add", "trim", "exit"];

/// Confidence of a lesson: `(1 − q) · n / (n + 25)`, in [0, 1]. Written by the materializer,
/// used as the blend weight at run time. Out-of-range or non-finite q counts as no confidence.
pub fn confidence_from(q_value: f64, n_trades: u64) -> f64 {
    if !(0.0..=1.0).contains(&q_value) {
        return 0.0;
    }
    let n = n_trades as f64;
    (1.0 - q_value) * n / (n + CONFIDENCE_PSEUDO_TRADES)
}

/// Blend weight of an override: `confidence × (1 + dims)^alpha` — a more specific scope that
/// matches says more about this action than its parent does.
pub fn specificity_weight(confidence: f64, dims: usize, alpha: f64) -> f64 {
    confidence * (1.0 + dims as f64).powf(alpha)
}

/// The `config_data` the PM reads: a module's versioned overrides and switches (SPEC §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ConfigData {
    /// Version of this schema ([`CURRENT_SCHEMA_VERSION`] for this build).
    pub schema_version: u32,
    /// The PM module this config is for ("pm").
    pub module: String,
    /// The config version (the `learning_configs` row's).
    pub version: i64,
    /// RFC 3339 as-of time of the run that produced it (never wall clock).
    pub as_of: String,
    /// Scoped overrides.
    #[serde(default)]
    pub pattern_overrides: Vec<Override>,
    /// Overrides at a pattern's root (empty scope). Loaded exactly like `pattern_overrides`.
    #[serde(default)]
    pub pattern_strength_overrides: Vec<Override>,
    /// Operator switches (learning on/off, exclusions).
    #[serde(default)]
    pub feature_flags: FeatureFlags,
    /// Exponent of the specificity weight `(1 + dims)^alpha` in the blend.
    #[serde(default = "default_alpha")]
    pub specificity_alpha: f64,
    /// Edges of the numeric dimensions that adapters cut into bins (dimension → increasing
    /// edges), so a lookup may pass the raw number; see [`crate::NumericBins`]. Absent when no
    /// override uses a binned dimension.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub scope_bins: BTreeMap<String, Vec<f64>>,
}

fn default_alpha() -> f64 {
    DEFAULT_SPECIFICITY_ALPHA
}

/// One learned adjustment for actions of one pattern and category whose scope contains
/// `scope`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Override {
    /// Unique within the config; stable across versions for the same lesson/factor.
    pub override_id: String,
    /// The pattern the override applies to.
    pub pattern_key: String,
    /// entry | add | trim | exit.
    pub action_category: String,
    /// Dimension → value; empty at the pattern's root. Required, even when empty: a misspelt
    /// key must not turn a scoped override into one for every action of the pattern.
    pub scope: BTreeMap<String, String>,
    /// The lever values (bounded by [`crate::Lever::bounds`]).
    pub levers: Levers,
    /// Blend weight before specificity, in [0, 1]; see [`confidence_from`].
    pub confidence: f64,
    /// q-value of the lesson(s) behind the override.
    pub q_value: f64,
    /// Trades behind the override.
    pub n_trades: u64,
    /// Shrunk edge (R) the levers were derived from; audit only.
    #[serde(default)]
    pub edge: Option<f64>,
    /// Estimated half-life of the edge; audit only (decay is applied by the materializer).
    #[serde(default)]
    pub half_life_hours: Option<f64>,
    /// First activation of the underlying lesson (RFC 3339); audit only.
    #[serde(default)]
    pub created_at: Option<String>,
    /// The lessons this override was built from.
    #[serde(default)]
    pub lesson_keys: Vec<String>,
    /// The latent factor this override stands for, when it merged a factor.
    #[serde(default)]
    pub factor_id: Option<String>,
    /// Lesson keys of the factor's members, for audit.
    #[serde(default)]
    pub members: Vec<String>,
}

impl Override {
    /// Number of scope dimensions: the specificity.
    pub fn dims(&self) -> usize {
        self.scope.len()
    }
}

/// Switches the PM's operators flip without re-materializing. Comparisons are ASCII
/// case-insensitive so a hand-edited flag still works. Unknown keys are refused: a switch the
/// reader does not understand (a typo, or a flag of a newer version) must not be silently
/// ignored while the operator believes it is on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureFlags {
    /// Master switch: false serves neutral levers to every action.
    #[serde(default = "yes")]
    pub learning_enabled: bool,
    /// `macro_phase` values for which learning is off.
    #[serde(default)]
    pub disabled_regimes: Vec<String>,
    /// `bucket` values for which learning is off.
    #[serde(default)]
    pub disabled_buckets: Vec<String>,
    /// Pattern keys for which learning is off: a full key, or a bare one of the config's module
    /// (`uptrend.S2.add` for `module=pm|pattern_key=uptrend.S2.add`).
    #[serde(default)]
    pub disabled_patterns: Vec<String>,
    /// Action categories for which learning is off.
    #[serde(default)]
    pub disabled_categories: Vec<String>,
}

fn yes() -> bool {
    true
}

impl Default for FeatureFlags {
    fn default() -> Self {
        Self {
            learning_enabled: true,
            disabled_regimes: Vec::new(),
            disabled_buckets: Vec::new(),
            disabled_patterns: Vec::new(),
            disabled_categories: Vec::new(),
        }
    }
}

impl FeatureFlags {
    /// What these switches turn off, in words (`None` when learning is on everywhere), for the
    /// outputs that tell an operator what the PM applies.
    pub fn switched_off(&self) -> Option<String> {
        if !self.learning_enabled {
            return Some("learning switched off (feature flag learning_enabled=false)".into());
        }
        let parts: Vec<String> = [
            ("regimes", &self.disabled_regimes),
            ("buckets", &self.disabled_buckets),
            ("patterns", &self.disabled_patterns),
            ("categories", &self.disabled_categories),
        ]
        .into_iter()
        .filter(|(_, list)| !list.is_empty())
        .map(|(what, list)| format!("{what} {}", list.join(", ")))
        .collect();
        (!parts.is_empty()).then(|| format!("learning switched off for {}", parts.join("; ")))
    }
}

/// Scope dimension whose value `disabled_regimes` lists.
pub const REGIME_DIM: &str = "macro_phase";
/// Scope dimension whose value `disabled_buckets` lists.
pub const BUCKET_DIM: &str = "bucket";

impl ConfigData {
    /// An empty config of the current schema version.
    pub fn new(module: impl Into<String>, version: i64, as_of: impl Into<String>) -> Self {
        Self {
            schema_version: CURRENT_SCHEMA_VERSION,
            module: module.into(),
            version,
            as_of: as_of.into(),
            pattern_overrides: Vec::new(),
            pattern_strength_overrides: Vec::new(),
            feature_flags: FeatureFlags::default(),
            specificity_alpha: DEFAULT_SPECIFICITY_ALPHA,
            scope_bins: BTreeMap::new(),
        }
    }

    /// Parse without validating (the schema version is checked first, so a config from a newer
    /// materializer says so instead of failing on some field).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        #[derive(Deserialize)]
        struct VersionProbe {
            schema_version: Option<serde_json::Value>,
        }
        let probe: VersionProbe = serde_json::from_str(text)?;
        match probe.schema_version {
            None | Some(serde_json::Value::Null) => {
                return Err(ConfigError::MissingSchemaVersion {
                    supported: CURRENT_SCHEMA_VERSION,
                })
            }
            Some(v) if v.as_u64() != Some(u64::from(CURRENT_SCHEMA_VERSION)) => {
                return Err(ConfigError::UnsupportedSchemaVersion {
                    found: v.to_string(),
                    supported: CURRENT_SCHEMA_VERSION,
                })
            }
            Some(_) => {}
        }
        Ok(serde_json::from_str(text)?)
    }

    /// Parse and validate.
    pub fn from_json(text: &str) -> Result<Self, ConfigError> {
        let config = Self::parse(text)?;
        config.validate()?;
        Ok(config)
    }

    /// Canonical text (the materializer checksums exactly this).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("config data serialises")
    }

    /// Both override lists, scoped ones first.
    pub fn overrides(&self) -> impl Iterator<Item = &Override> {
        self.pattern_overrides
            .iter()
            .chain(&self.pattern_strength_overrides)
    }

    /// Every problem at once, each naming the override and field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let mut issues = Vec::new();
        let mut top = |field: &str, problem: String| {
            issues.push(ValidationIssue {
                override_id: None,
                field: field.to_string(),
                problem,
            })
        };
        if self.schema_version != CURRENT_SCHEMA_VERSION {
            return Err(ConfigError::UnsupportedSchemaVersion {
                found: self.schema_version.to_string(),
                supported: CURRENT_SCHEMA_VERSION,
            });
        }
        if self.module.trim().is_empty() {
            top("module", "must not be empty".into());
        }
        if self.version < 1 {
            top("version", format!("must be ≥ 1, got {}", self.version));
        }
        if !is_rfc3339(&self.as_of) {
            top(
                "as_of",
                format!("{:?} is not an RFC 3339 timestamp", self.as_of),
            );
        }
        if !(self.specificity_alpha.is_finite() && (0.0..=10.0).contains(&self.specificity_alpha)) {
            top(
                "specificity_alpha",
                format!("must lie in [0, 10], got {}", self.specificity_alpha),
            );
        }
        for (dim, edges) in &self.scope_bins {
            if let Err(problem) = crate::bins::check_edges(edges) {
                top(&format!("scope_bins.{dim}"), problem);
            }
        }
        for (i, c) in self.feature_flags.disabled_categories.iter().enumerate() {
            if category_index(c).is_none() {
                top(
                    &format!("feature_flags.disabled_categories[{i}]"),
                    format!("unknown action category {c:?}"),
                );
            }
        }

        let mut seen = HashSet::new();
        let lists = [
            ("pattern_overrides", &self.pattern_overrides),
            (
                "pattern_strength_overrides",
                &self.pattern_strength_overrides,
            ),
        ];
        for (list, overrides) in lists {
            for (i, o) in overrides.iter().enumerate() {
                let id = if o.override_id.trim().is_empty() {
                    issues.push(ValidationIssue {
                        override_id: None,
                        field: format!("{list}[{i}].override_id"),
                        problem: "must not be empty".into(),
                    });
                    format!("{list}[{i}]")
                } else {
                    if !seen.insert(o.override_id.as_str()) {
                        issues.push(issue(&o.override_id, "override_id", "duplicate id".into()));
                    }
                    o.override_id.clone()
                };
                validate_override(&id, o, &mut issues);
            }
        }
        if issues.is_empty() {
            Ok(())
        } else {
            Err(ConfigError::Invalid {
                issues: ValidationIssues(issues),
            })
        }
    }
}

fn issue(id: &str, field: &str, problem: String) -> ValidationIssue {
    ValidationIssue {
        override_id: Some(id.to_string()),
        field: field.to_string(),
        problem,
    }
}

fn validate_override(id: &str, o: &Override, issues: &mut Vec<ValidationIssue>) {
    if o.pattern_key.trim().is_empty() {
        issues.push(issue(id, "pattern_key", "must not be empty".into()));
    }
    if !ACTION_CATEGORIES.contains(&o.action_category.as_str()) {
        issues.push(issue(
            id,
            "action_category",
            format!(
                "unknown category {:?}: expected one of entry, add, trim, exit",
                o.action_category
            ),
        ));
    }
    for (dim, value) in &o.scope {
        if dim.trim().is_empty() || value.trim().is_empty() {
            issues.push(issue(
                id,
                "scope",
                format!("empty dimension or value in {dim:?}={value:?} (absent dimensions are left out)"),
            ));
        }
    }
    for (lever, value) in o.levers.iter() {
        if !lever.in_bounds(value) {
            let (lo, hi) = lever.bounds();
            issues.push(issue(
                id,
                &format!("levers.{lever}"),
                format!("{value} is outside [{lo}, {hi}]"),
            ));
        }
    }
    if !(o.confidence.is_finite() && (0.0..=1.0).contains(&o.confidence)) {
        issues.push(issue(
            id,
            "confidence",
            format!("must lie in [0, 1], got {}", o.confidence),
        ));
    }
    if !(o.q_value.is_finite() && (0.0..=1.0).contains(&o.q_value)) {
        issues.push(issue(
            id,
            "q_value",
            format!("must lie in [0, 1], got {}", o.q_value),
        ));
    }
    if let Some(edge) = o.edge {
        if !edge.is_finite() {
            issues.push(issue(id, "edge", format!("must be finite, got {edge}")));
        }
    }
    if let Some(h) = o.half_life_hours {
        if !(h.is_finite() && h > 0.0) {
            issues.push(issue(
                id,
                "half_life_hours",
                format!("must be a positive number of hours, got {h}"),
            ));
        }
    }
    if let Some(t) = &o.created_at {
        if !is_rfc3339(t) {
            issues.push(issue(
                id,
                "created_at",
                format!("{t:?} is not an RFC 3339 timestamp"),
            ));
        }
    }
}

/// Index of a category in [`ACTION_CATEGORIES`], ASCII case-insensitive, without allocating.
pub(crate) fn category_index(category: &str) -> Option<usize> {
    ACTION_CATEGORIES
        .iter()
        .position(|c| c.eq_ignore_ascii_case(category.trim()))
}

/// `YYYY-MM-DDTHH:MM:SS[.fraction](Z|±HH:MM)` with plausible field ranges. A syntactic check:
/// the runtime never computes with the time, it only refuses configs whose metadata is garbage.
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(r)?;
        if part.iter().all(u8::is_ascii_digit) {
            Some(part.iter().fold(0, |acc, d| acc * 10 + u32::from(d - b'0')))
        } else {
            None
        }
    };
    let date_time_ok = (|| {
        let (_year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
        let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
        let seps = b[4] == b'-'
            && b[7] == b'-'
            && matches!(b[10], b'T' | b't' | b' ')
            && b[13] == b':'
            && b[16] == b':';
        Some(
            seps && (1..=12).contains(&month)
                && (1..=31).contains(&day)
                && hour < 24
                && minute < 60
                && second <= 60,
        )
    })();
    if date_time_ok != Some(true) {
        return false;
    }
    let mut rest = &b[19..];
    if let Some(frac) = rest.strip_prefix(b".") {
        let n = frac.iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 {
            return false;
        }
        rest = &frac[n..];
    }
    match rest {
        [b'Z' | b'z'] => true,
        [b'+' | b'-', h1, h2, b':', m1, m2] => {
            [h1, h2, m1, m2].iter().all(|c| c.is_ascii_digit())
                && (h1 - b'0') * 10 + (h2 - b'0') < 24
                && (m1 - b'0') * 10 + (m2 - b'0') < 60
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn confidence_formula() {
        assert_eq!(confidence_from(0.0, 25), 0.5);
        assert!((confidence_from(0.1, 75) - 0.9 * 0.75).abs() < 1e-15);
        assert_eq!(confidence_from(0.5, 0), 0.0);
        assert_eq!(confidence_from(f64::NAN, 100), 0.0);
        assert_eq!(confidence_from(1.5, 100), 0.0);
    }

    #[test]
    fn rfc3339_check() {
        for ok in [
            "2024-05-01T00:00:00Z",
            "2024-05-01T23:59:59.123456Z",
            "2024-05-01T12:00:00+02:00",
            "2024-05-01 12:00:00-05:30",
        ] {
            assert!(is_rfc3339(ok), "{ok}");
        }
        for bad in [
            "",
            "2024-05-01",
            "2024-13-01T00:00:00Z",
            "2024-05-01T00:00:00",
            "2024-05-01T25:00:00Z",
            "2024-05-01T00:00:00.Z",
            "2024-05-01T00:00:00+2:00",
            "yesterday",
            "2024-05-01T00:00:00Zjunk",
        ] {
            assert!(!is_rfc3339(bad), "{bad}");
        }
    }

    #[test]
    fn category_parse_is_case_insensitive() {
        assert_eq!(category_index("Entry"), Some(0));
        assert_eq!(category_index("exit"), Some(3));
        assert_eq!(category_index("hold"), None);
    }
}
