//! Stage 4: active lessons → a new version of `learning_configs` (SPEC §5).
//!
//! Per module:
//! 1. **decay by staleness of evidence** every lever of every active lesson toward neutral:
//!    `lever_eff = neutral + (lever − neutral) · 0.5^(age / half_life)`, with `age` = as-of −
//!    the lesson's `confirmed_at` (the last run whose fresh trades re-confirmed it; `created_at`
//!    for a row that has none; clamped at 0), not its first activation: a lesson that fresh
//!    trades keep confirming does not fade, one whose effect stopped fades until §4.8 retires it.
//!    `half_life` is the lesson's fitted half-life (only a significantly declining edge has one),
//!    else `materialize.default_half_life_hours`;
//! 2. **merge by latent factor within a (pattern, category)**: one override per factor and group
//!    (`override_id` = the factor id, or the lesson key for a lesson without one; a factor id
//!    met in a second group — only possible in rows written before factors were per group — is
//!    split, the later group's override taking its representative's lesson key), so no group
//!    ever loses its override to another group's lesson. The override sits at the scope, pattern
//!    and category of its representative (largest |t|, ties by lesson key). Each lever is the confidence-weighted mean
//!    over the members that carry it ([`weighted_mean_levers`], the runtime's own blend: members
//!    without a lever do not dilute it), clamped to the lever's bounds. A member's confidence is
//!    [`confidence_from`]`(q_value, n_trades)`. The override's `confidence`, `q_value`, `n_trades`,
//!    `edge` (shrunk), `half_life_hours` (as estimated) and `created_at` are the
//!    **representative's**, so that `confidence == confidence_from(q_value, n_trades)` holds for
//!    every override and the runtime weight is that of the lesson that defines the scope. All
//!    members are listed in `lesson_keys` and `members` (representative first, then by key);
//! 3. **rate limit**: each lever moves at most `materialize.max_step` from its value in the
//!    *base* config for the same `override_id` (a lever or override absent from the base counts
//!    as neutral, so a new override starts at most `max_step` from neutral). The base is the
//!    config the PM was serving before this as-of time: the active version, unless that version
//!    was itself produced at this as-of time or later (a re-run, or a backfill), in which case the
//!    most recent earlier version that was active (`active`/`superseded`) with an earlier as-of.
//!    Re-running a night therefore gives the same config instead of stepping again. An override
//!    of the base that no longer has an active lesson is simply absent (its lessons lost their
//!    support: the PM goes back to its own behaviour at once);
//! 4. lever values are rounded to [`LEVER_DECIMALS`] decimals (stable, readable text), and
//!    overrides whose levers all lie within `materialize.neutral_epsilon` of neutral — after the
//!    rate limit, so a fading override steps down rather than vanishing from far away — are
//!    dropped;
//! 5. overrides with an empty scope go to `pattern_strength_overrides`, the others to
//!    `pattern_overrides`, each list sorted by `override_id`; the config carries the as-of time,
//!    default feature flags and `materialize.specificity_alpha`.
//!
//! **Versioning.** The text is canonical ([`ConfigData::to_json`]), so the same inputs give the
//! same bytes. If the config built with the latest version's number is byte-identical to the
//! latest version's `config_data`, no version is written (`unchanged`); with `activate`, a
//! latest version that is still `proposed` is activated (a `superseded` or `rolled_back` one is
//! left alone: an operator chose that). Otherwise version `max + 1` is inserted, `proposed`, or
//! `active` with `activate` (the previous active one becomes `superseded`). Everything happens
//! on the caller's connection, so inside the caller's transaction. The output is loaded with the
//! runtime's own loader before it is written: what is stored, the PM can serve.
#![warn(missing_docs)]

use learnloop_model::config::MaterializeConfig;
use learnloop_model::scope::parse_scope_map;
use learnloop_model::{ConfigStatus, ConfigVersion, LessonRow, LoopConfig, Timestamp};
use learnloop_overrides::{
    confidence_from, config_checksum, weighted_mean_levers, ConfigData, ConfigError, FeatureFlags,
    Lever, Levers, Override, Overrides,
};
use learnloop_store::configs::{self, ConfigsError};
use learnloop_store::{Connection, StoreError};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Lever values in a config are rounded to this many decimals.
pub const LEVER_DECIMALS: i32 = 6;

/// Differences below this are floating-point noise, not a rate limit or a lever.
const TOLERANCE: f64 = 1e-12;

/// How a materialize run records and activates what it builds.
#[derive(Debug, Clone)]
pub struct MaterializeOptions {
    /// Activate the new version (or a still-proposed identical latest version).
    pub activate: bool,
    /// The `learning_runs` id recorded on the new version.
    pub run_id: Option<String>,
    /// Wall-clock time recorded as the row's `created_at` (given by the binary: the stage never
    /// reads the clock).
    pub created_at: Timestamp,
}

/// What a materialize run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct MaterializeReport {
    /// The run's as-of time.
    pub as_of: String,
    /// One entry per module with active lessons or existing config versions, sorted by module.
    pub modules: Vec<ModuleReport>,
}

impl MaterializeReport {
    /// The report of `module`, if the run handled it.
    pub fn module(&self, module: &str) -> Option<&ModuleReport> {
        self.modules.iter().find(|m| m.module == module)
    }
}

/// What a materialize run did for one module.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ModuleReport {
    /// The module.
    pub module: String,
    /// The version written by this run; `None` when the config was unchanged.
    pub version: Option<i64>,
    /// The version holding this run's config: the new one, or the identical latest one.
    pub config_version: i64,
    /// Status of `config_version` after this run.
    pub status: ConfigStatus,
    /// True when no version was written because the latest one is identical.
    pub unchanged: bool,
    /// True when this run made `config_version` the active version.
    pub activated: bool,
    /// The previously active version this run superseded.
    pub superseded: Option<i64>,
    /// The version the rate limit was measured from (`None`: from neutral).
    pub rate_limit_base: Option<i64>,
    /// Active lessons read.
    pub lessons: usize,
    /// Latent factors they form (one candidate override each).
    pub factors: usize,
    /// Overrides written (`pattern_overrides` + `pattern_strength_overrides`).
    pub overrides: usize,
    /// Of those, scoped overrides.
    pub pattern_overrides: usize,
    /// Of those, overrides at a pattern's root (empty scope).
    pub pattern_strength_overrides: usize,
    /// Overrides dropped because every lever was within `neutral_epsilon` of neutral.
    pub dropped_neutral: usize,
    /// Levers held back by `max_step`.
    pub rate_limited: usize,
    /// Checksum of the config's text (`config_checksum`).
    pub checksum: String,
}

/// Why a materialize run failed (nothing is written then).
#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    /// Reading lessons or configs failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Inserting or activating the version failed.
    #[error(transparent)]
    Configs(#[from] ConfigsError),
    /// A lesson's stored scope is not a JSON object of strings.
    #[error("lesson {lesson_key}: scope_values {text:?} is not a JSON object of dimension → string: {source}")]
    Scope {
        /// The lesson.
        lesson_key: String,
        /// Its `scope_values` text.
        text: String,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// The version the rate limit is measured from does not load.
    #[error("config {module} v{version} (the rate-limit base) cannot be read: {source}; roll back or activate a readable version")]
    BaseConfig {
        /// Its module.
        module: String,
        /// Its version.
        version: i64,
        /// Why it does not load.
        #[source]
        source: ConfigError,
    },
    /// The built config fails the runtime's own validation (a bug of this stage).
    #[error("the materialized config for module {module} is invalid (a bug): {source}")]
    Invalid {
        /// Its module.
        module: String,
        /// What the validation found.
        #[source]
        source: ConfigError,
    },
}

/// Decay one lever toward its neutral value: `neutral + (value − neutral)·0.5^(age/half_life)`.
/// A negative age counts as 0; a non-positive or non-finite half-life means no decay.
pub fn decay_lever(lever: Lever, value: f64, age_hours: f64, half_life_hours: f64) -> f64 {
    let neutral = lever.neutral();
    if !(half_life_hours.is_finite() && half_life_hours > 0.0) {
        return value;
    }
    neutral + (value - neutral) * 0.5f64.powf(age_hours.max(0.0) / half_life_hours)
}

fn round_lever(v: f64) -> f64 {
    let scale = 10f64.powi(LEVER_DECIMALS);
    let r = (v * scale).round() / scale;
    if r.is_finite() {
        r
    } else {
        v
    }
}

/// Counts of one build.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BuildStats {
    /// Active lessons read.
    pub lessons: usize,
    /// Latent factors they form.
    pub factors: usize,
    /// Overrides dropped as near-neutral.
    pub dropped_neutral: usize,
    /// Levers held back by the rate limit.
    pub rate_limited: usize,
}

/// A built config, not yet stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Built {
    /// The config, ready to serialize.
    pub config: ConfigData,
    /// What the build counted.
    pub stats: BuildStats,
}

struct Member<'a> {
    lesson: &'a LessonRow,
    /// Decayed and clamped.
    levers: Levers,
    confidence: f64,
    abs_t: f64,
}

/// The config a build is for: module, version number and the run's as-of time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigTarget<'a> {
    /// The module (`pm`).
    pub module: &'a str,
    /// The version number the config will carry.
    pub version: i64,
    /// The run's as-of time: lessons decay by their age at it.
    pub as_of: Timestamp,
}

/// The pure part of the stage: `lessons` (the module's active lessons) → the config for
/// `target`, rate-limited against `base` (the config the PM was serving, if any). See the crate
/// documentation for each step.
pub fn build_config(
    target: ConfigTarget<'_>,
    lessons: &[LessonRow],
    base: Option<&ConfigData>,
    cfg: &LoopConfig,
) -> Result<Built, MaterializeError> {
    let m = &cfg.materialize;
    let factors = members_by_factor(lessons, target.as_of, m);
    let mut stats = BuildStats {
        lessons: lessons.len(),
        factors: factors.len(),
        ..BuildStats::default()
    };
    let base_levers: HashMap<&str, &Levers> = base
        .map(|b| {
            b.overrides()
                .map(|o| (o.override_id.as_str(), &o.levers))
                .collect()
        })
        .unwrap_or_default();

    let mut config = ConfigData::new(target.module, target.version, target.as_of.to_rfc3339());
    // The operators' switches outlive the nightly run: a new version keeps the served one's.
    config.feature_flags = base.map(|b| b.feature_flags.clone()).unwrap_or_default();
    config.specificity_alpha = m.specificity_alpha;
    let mut used_ids: BTreeSet<&str> = BTreeSet::new();
    for ((_, _, factor_id), mut members) in factors {
        members.sort_by(|a, b| a.lesson.lesson_key.cmp(&b.lesson.lesson_key));
        let rep = representative_index(&members);
        let factor_id = if used_ids.insert(factor_id) {
            factor_id
        } else {
            members[rep].lesson.lesson_key.as_str()
        };
        let merged = weighted_mean_levers(members.iter().map(|m| (m.confidence, &m.levers)));
        let previous = base_levers.get(factor_id).copied();
        let levers = rate_limited(&merged, previous, m, &mut stats);
        let neutral = levers
            .iter()
            .all(|(lever, v)| (v - lever.neutral()).abs() <= m.neutral_epsilon + TOLERANCE);
        if neutral {
            stats.dropped_neutral += 1;
            continue;
        }
        let o = factor_override(factor_id, &members, rep, levers)?;
        if o.scope.is_empty() {
            config.pattern_strength_overrides.push(o);
        } else {
            config.pattern_overrides.push(o);
        }
    }
    config
        .pattern_strength_overrides
        .sort_by(|a, b| a.override_id.cmp(&b.override_id));
    config
        .pattern_overrides
        .sort_by(|a, b| a.override_id.cmp(&b.override_id));
    Ok(Built { config, stats })
}

/// (pattern, category, factor) of a member group: a lesson without a factor is its own.
type FactorGroup<'a> = (&'a str, &'a str, &'a str);

/// Each lesson with its levers decayed to `as_of` and clamped, grouped by (pattern, category,
/// factor).
fn members_by_factor<'a>(
    lessons: &'a [LessonRow],
    as_of: Timestamp,
    m: &MaterializeConfig,
) -> BTreeMap<FactorGroup<'a>, Vec<Member<'a>>> {
    let mut factors: BTreeMap<FactorGroup<'a>, Vec<Member<'a>>> = BTreeMap::new();
    for lesson in lessons {
        let factor = lesson
            .latent_factor_id
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .unwrap_or(&lesson.lesson_key);
        let group = (
            lesson.pattern_key.as_str(),
            lesson.category.as_str(),
            factor,
        );
        factors
            .entry(group)
            .or_default()
            .push(decayed_member(lesson, as_of, m));
    }
    factors
}

/// A lesson's levers decayed by its age since `confirmed_at` (else `created_at`) and clamped,
/// with its blend confidence.
fn decayed_member<'a>(
    lesson: &'a LessonRow,
    as_of: Timestamp,
    m: &MaterializeConfig,
) -> Member<'a> {
    let half_life = lesson
        .half_life_hours
        .filter(|h| h.is_finite() && *h > 0.0)
        .unwrap_or(m.default_half_life_hours);
    let age = match lesson.confirmed_at.or(lesson.created_at) {
        Some(confirmed) => as_of.hours_since(confirmed),
        None => {
            tracing::warn!(lesson = %lesson.lesson_key, "active lesson without confirmed_at or created_at: not decayed");
            0.0
        }
    };
    let levers: Levers = lesson
        .levers
        .iter()
        .map(|(lever, v)| {
            (
                lever,
                lever.clamp(decay_lever(lever, lever.clamp(v), age, half_life)),
            )
        })
        .collect();
    Member {
        lesson,
        levers,
        confidence: confidence_from(lesson.q_value.unwrap_or(1.0), lesson.n_trades),
        abs_t: lesson
            .t_stat
            .filter(|t| t.is_finite())
            .map_or(0.0, f64::abs),
    }
}

/// The member with the largest |t| (the first of equals, members sorted by lesson key).
fn representative_index(members: &[Member<'_>]) -> usize {
    let mut rep = 0;
    for (i, member) in members.iter().enumerate() {
        if member.abs_t > members[rep].abs_t {
            rep = i;
        }
    }
    rep
}

/// `merged` moved at most `max_step` from the `previous` levers (neutral when none), rounded
/// unless rounding would cross the limit, and clamped to the lever's bounds.
fn rate_limited(
    merged: &Levers,
    previous: Option<&Levers>,
    m: &MaterializeConfig,
    stats: &mut BuildStats,
) -> Levers {
    let mut levers = Levers::EMPTY;
    for (lever, target) in merged.iter() {
        let from = previous.map_or(lever.neutral(), |p| p.get_or_neutral(lever));
        let (lo, hi) = (from - m.max_step, from + m.max_step);
        let limited = target.clamp(lo, hi);
        if (limited - target).abs() > TOLERANCE {
            stats.rate_limited += 1;
        }
        let mut value = round_lever(limited);
        if value < lo || value > hi {
            value = limited;
        }
        levers.set(lever, lever.clamp(value));
    }
    levers
}

/// The override of one factor: the representative's scope and figures, every member's key.
fn factor_override(
    factor_id: &str,
    members: &[Member<'_>],
    rep: usize,
    levers: Levers,
) -> Result<Override, MaterializeError> {
    let representative = members[rep].lesson;
    let scope = parse_scope_map(&representative.scope_values).map_err(|source| {
        MaterializeError::Scope {
            lesson_key: representative.lesson_key.clone(),
            text: representative.scope_values.clone(),
            source,
        }
    })?;
    let mut keys: Vec<String> = vec![representative.lesson_key.clone()];
    keys.extend(
        members
            .iter()
            .map(|m| &m.lesson.lesson_key)
            .filter(|k| **k != representative.lesson_key)
            .cloned(),
    );
    Ok(Override {
        override_id: factor_id.to_string(),
        pattern_key: representative.pattern_key.clone(),
        action_category: representative.category.as_str().to_string(),
        scope,
        levers,
        confidence: members[rep].confidence,
        q_value: representative.q_value.unwrap_or(1.0),
        n_trades: representative.n_trades,
        edge: Some(representative.shrunk_edge).filter(|e| e.is_finite()),
        half_life_hours: representative.half_life_hours,
        created_at: representative.created_at.map(Timestamp::to_rfc3339),
        lesson_keys: keys.clone(),
        factor_id: representative.latent_factor_id.clone(),
        members: keys,
    })
}

/// The config the rate limit is measured from; see the crate documentation.
fn rate_limit_base(
    conn: &Connection,
    module: &str,
    as_of: Timestamp,
) -> Result<Option<ConfigVersion>, MaterializeError> {
    if let Some(active) = configs::active_version(conn, module)? {
        if active.as_of < as_of {
            return Ok(Some(active));
        }
    }
    let mut best: Option<ConfigVersion> = None;
    for v in configs::all_versions(conn, module)? {
        let was_active = matches!(v.status, ConfigStatus::Active | ConfigStatus::Superseded);
        if was_active && v.as_of < as_of && !matches!(&best, Some(b) if v.as_of < b.as_of) {
            best = Some(v);
        }
    }
    Ok(best)
}

/// Run the stage for every module with active lessons or config versions, on the caller's
/// connection (inside its transaction).
pub fn materialize(
    conn: &Connection,
    cfg: &LoopConfig,
    as_of: Timestamp,
    opts: &MaterializeOptions,
) -> Result<MaterializeReport, MaterializeError> {
    let lessons = learnloop_store::lessons::active_lessons(conn)?;
    let mut by_module: BTreeMap<String, Vec<LessonRow>> = BTreeMap::new();
    for lesson in lessons {
        by_module
            .entry(lesson.module.clone())
            .or_default()
            .push(lesson);
    }
    let modules: BTreeSet<String> = by_module
        .keys()
        .cloned()
        .chain(configs::modules(conn)?)
        .collect();
    let mut report = MaterializeReport {
        as_of: as_of.to_rfc3339(),
        modules: Vec::with_capacity(modules.len()),
    };
    let run = ModuleRun {
        conn,
        cfg,
        as_of,
        opts,
    };
    for module in modules {
        let lessons = by_module.remove(&module).unwrap_or_default();
        report.modules.push(run.module(&module, &lessons)?);
    }
    Ok(report)
}

/// The frozen edges of every binned dimension an override uses, so the PM may look up with the
/// raw numbers (the stored scopes hold bin labels).
fn attach_scope_bins(conn: &Connection, config: &mut ConfigData) -> Result<(), MaterializeError> {
    let frozen = learnloop_store::adapter_bins::of_module(conn, &config.module)?;
    if frozen.is_empty() {
        return Ok(());
    }
    let used: BTreeSet<&str> = config
        .overrides()
        .flat_map(|o| o.scope.keys().map(String::as_str))
        .collect();
    config.scope_bins = frozen
        .into_iter()
        .filter(|(dim, _)| used.contains(dim.as_str()))
        .map(|(dim, bins)| (dim, bins.edges))
        .collect();
    Ok(())
}

/// What the stage does for every module: the store, the settings, the as-of time, the options.
struct ModuleRun<'a> {
    conn: &'a Connection,
    cfg: &'a LoopConfig,
    as_of: Timestamp,
    opts: &'a MaterializeOptions,
}

impl ModuleRun<'_> {
    /// Build `module`'s config from its active `lessons` and store it as a new version, unless
    /// it equals the latest version (which is then activated if asked and still proposed).
    fn module(
        &self,
        module: &str,
        lessons: &[LessonRow],
    ) -> Result<ModuleReport, MaterializeError> {
        let (base_row, base) = self.base(module)?;
        let latest = configs::latest_version(self.conn, module)?;
        let next = configs::next_version(self.conn, module)?;
        let target = ConfigTarget {
            module,
            version: next,
            as_of: self.as_of,
        };
        let Built { mut config, stats } = build_config(target, lessons, base.as_ref(), self.cfg)?;
        if let Some(flags) = self.served_flags(module)? {
            config.feature_flags = flags;
        }
        attach_scope_bins(self.conn, &mut config)?;
        let mut report = ModuleReport {
            module: module.to_string(),
            rate_limit_base: base_row.as_ref().map(|r| r.version),
            lessons: stats.lessons,
            factors: stats.factors,
            pattern_overrides: config.pattern_overrides.len(),
            pattern_strength_overrides: config.pattern_strength_overrides.len(),
            overrides: config.pattern_overrides.len() + config.pattern_strength_overrides.len(),
            dropped_neutral: stats.dropped_neutral,
            rate_limited: stats.rate_limited,
            ..ModuleReport::default()
        };
        if let Some(latest) = &latest {
            config.version = latest.version;
            if config.to_json() == latest.config_data {
                self.keep_latest(latest, &mut report)?;
                return Ok(report);
            }
        }
        config.version = next;
        self.write_version(&config, &mut report)?;
        Ok(report)
    }

    /// The feature flags of the version the PM serves now. They win over the rate-limit base's:
    /// a re-run of a night measures its steps from an earlier version, but an operator's
    /// `config flags` since then must hold.
    fn served_flags(&self, module: &str) -> Result<Option<FeatureFlags>, MaterializeError> {
        let Some(active) = configs::active_version(self.conn, module)? else {
            return Ok(None);
        };
        match ConfigData::parse(&active.config_data) {
            Ok(data) => Ok(Some(data.feature_flags)),
            Err(e) => {
                tracing::warn!(
                    module,
                    version = active.version,
                    "active config unreadable ({e}): its feature flags are not carried over"
                );
                Ok(None)
            }
        }
    }

    /// The config the rate limit is measured from, as stored and as parsed.
    fn base(
        &self,
        module: &str,
    ) -> Result<(Option<ConfigVersion>, Option<ConfigData>), MaterializeError> {
        let base_row = rate_limit_base(self.conn, module, self.as_of)?;
        let base = base_row
            .as_ref()
            .map(|row| {
                ConfigData::parse(&row.config_data).map_err(|source| MaterializeError::BaseConfig {
                    module: module.to_string(),
                    version: row.version,
                    source,
                })
            })
            .transpose()?;
        Ok((base_row, base))
    }

    /// The built config equals `latest`: write nothing, activate it if asked and still proposed.
    fn keep_latest(
        &self,
        latest: &ConfigVersion,
        report: &mut ModuleReport,
    ) -> Result<(), MaterializeError> {
        report.unchanged = true;
        report.config_version = latest.version;
        report.checksum = latest.checksum.clone();
        report.status = latest.status;
        if self.opts.activate && latest.status == ConfigStatus::Proposed {
            let activation = configs::activate(self.conn, &latest.module, latest.version)?;
            report.activated = true;
            report.superseded = activation.superseded;
            report.status = ConfigStatus::Active;
        }
        tracing::info!(module = %latest.module, version = latest.version, status = %report.status, "config unchanged");
        Ok(())
    }

    /// Store `config` as a new version (checked loadable by the runtime first), active if asked.
    fn write_version(
        &self,
        config: &ConfigData,
        report: &mut ModuleReport,
    ) -> Result<(), MaterializeError> {
        let module = config.module.as_str();
        let text = config.to_json();
        // What is stored must be what the PM can load.
        Overrides::from_json(&text).map_err(|source| MaterializeError::Invalid {
            module: module.to_string(),
            source,
        })?;
        let checksum = config_checksum(&text);
        let previous_active = configs::active_version(self.conn, module)?.map(|v| v.version);
        let status = if self.opts.activate {
            ConfigStatus::Active
        } else {
            ConfigStatus::Proposed
        };
        configs::insert_version(
            self.conn,
            &ConfigVersion {
                module: module.to_string(),
                version: config.version,
                status,
                as_of: self.as_of,
                run_id: self.opts.run_id.clone(),
                created_at: Some(self.opts.created_at),
                checksum: checksum.clone(),
                config_data: text,
            },
        )?;
        report.version = Some(config.version);
        report.config_version = config.version;
        report.status = status;
        report.checksum = checksum;
        if self.opts.activate {
            report.activated = true;
            report.superseded = previous_active;
        }
        tracing::info!(
            module,
            version = config.version,
            status = %status,
            overrides = report.overrides,
            rate_limited = report.rate_limited,
            dropped_neutral = report.dropped_neutral,
            "config version written"
        );
        Ok(())
    }
}

#[cfg(test)]
mod tests;
