//! What a lookup returns: the blended levers and, for the PM's decision record, every override
//! that contributed and with what weight.

use crate::levers::{Lever, Levers};
use crate::schema::Override;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::sync::Arc;

/// One override that matched the action, with its blend weight.
///
/// Refers to the override inside the config's shared override list (one reference count for
/// all of them), so collecting matches never copies strings or allocates beyond the vector's
/// slot. Serializes as the override's fields plus `weight`: the whole record needed to
/// reproduce the decision.
#[derive(Debug, Clone)]
pub struct Match {
    source: Arc<[Override]>,
    pos: u32,
    /// Position in the config's canonical order (most specific first, then by id).
    rank: u32,
    /// Copy of the override's levers, so blending reads only the match itself.
    levers: Levers,
    /// `confidence × (1 + dims)^alpha`.
    pub weight: f64,
}

impl Match {
    pub(crate) fn new(
        source: &Arc<[Override]>,
        pos: u32,
        rank: u32,
        weight: f64,
        levers: Levers,
    ) -> Self {
        Self {
            source: Arc::clone(source),
            pos,
            rank,
            levers,
            weight,
        }
    }

    pub(crate) fn rank(&self) -> u32 {
        self.rank
    }

    /// The matched override, with every field of the config.
    pub fn matched(&self) -> &Override {
        &self.source[self.pos as usize]
    }
    /// The override's id.
    pub fn override_id(&self) -> &str {
        &self.matched().override_id
    }
    /// The override's scope.
    pub fn scope(&self) -> &std::collections::BTreeMap<String, String> {
        &self.matched().scope
    }
    /// The override's lever values.
    pub fn levers(&self) -> &Levers {
        &self.levers
    }
    /// The lessons behind the override.
    pub fn lesson_keys(&self) -> &[String] {
        &self.matched().lesson_keys
    }
    /// The override's latent factor, if any.
    pub fn factor_id(&self) -> Option<&str> {
        self.matched().factor_id.as_deref()
    }
}

impl PartialEq for Match {
    fn eq(&self, other: &Self) -> bool {
        let same_slot = Arc::ptr_eq(&self.source, &other.source) && self.pos == other.pos;
        self.weight == other.weight && (same_slot || self.matched() == other.matched())
    }
}

#[derive(Serialize)]
struct MatchRecordRef<'a> {
    #[serde(flatten)]
    matched: &'a Override,
    weight: f64,
}

#[derive(Deserialize)]
struct MatchRecord {
    #[serde(flatten)]
    matched: Override,
    weight: f64,
}

impl Serialize for Match {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        MatchRecordRef {
            matched: self.matched(),
            weight: self.weight,
        }
        .serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Match {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let record = MatchRecord::deserialize(deserializer)?;
        let levers = record.matched.levers;
        Ok(Match {
            source: Arc::from(vec![record.matched]),
            pos: 0,
            rank: 0,
            levers,
            weight: record.weight,
        })
    }
}

/// The runtime decision for one action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    /// Version of the config that decided; `None` when none was loaded.
    pub config_version: Option<i64>,
    /// The blended size multiplier (1 when no override carries one).
    pub size_mult: f64,
    /// Every lever some matched override carries, blended and clamped.
    pub levers: Levers,
    /// Most specific first, then by override id: a deterministic order.
    pub matches: Vec<Match>,
    /// Why the action was left unchanged (failed open, or learning switched off), else `None`.
    pub fallback_reason: Option<String>,
}

impl Default for Decision {
    fn default() -> Self {
        Self {
            config_version: None,
            size_mult: 1.0,
            levers: Levers::EMPTY,
            matches: Vec::new(),
            fallback_reason: None,
        }
    }
}

impl Decision {
    /// Back to neutral, keeping the matches' capacity for the next lookup.
    pub fn reset(&mut self) {
        self.config_version = None;
        self.size_mult = 1.0;
        self.levers = Levers::EMPTY;
        self.matches.clear();
        self.fallback_reason = None;
    }

    /// A blended lever, or its neutral value.
    pub fn lever(&self, lever: Lever) -> f64 {
        self.levers.get_or_neutral(lever)
    }

    /// True when the action was left unchanged for a stated reason.
    pub fn fell_back(&self) -> bool {
        self.fallback_reason.is_some()
    }

    pub(crate) fn fall_back(&mut self, reason: impl Into<String>) {
        self.size_mult = 1.0;
        self.levers = Levers::EMPTY;
        self.matches.clear();
        self.fallback_reason = Some(reason.into());
    }
}
