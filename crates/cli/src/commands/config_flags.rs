//! `config flags`: the operators' switches of the active config (SPEC §6: learning off globally
//! or for listed regimes, buckets, patterns, categories), shown or changed without hand-editing
//! the JSON and its checksum. A change is a new version — the active one with other flags —
//! written and activated in one transaction; the nightly run keeps the served version's flags.

use crate::context::{open_existing_store, open_store_read_only, wall_clock_now};
use crate::output::{emit, kv};
use crate::Cli;
use anyhow::Context;
use clap::{Args, ValueEnum};
use learnloop_model::{ActionCategory, ConfigStatus, ConfigVersion};
use learnloop_overrides::{config_checksum, ConfigData, FeatureFlags};
use learnloop_store::configs;
use serde::Serialize;

/// On or off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Switch {
    On,
    Off,
}

/// What to change; nothing given shows the flags.
#[derive(Args, Debug, Default)]
pub struct FlagsArgs {
    /// Learning for every action of the module (off: every lookup serves neutral levers).
    #[arg(long, value_enum)]
    pub learning: Option<Switch>,
    /// Switch learning off for actions whose macro_phase is REGIME (repeatable).
    #[arg(long, value_name = "REGIME")]
    pub disable_regime: Vec<String>,
    /// Switch it back on for REGIME (repeatable).
    #[arg(long, value_name = "REGIME")]
    pub enable_regime: Vec<String>,
    /// Switch learning off for actions whose bucket is BUCKET (repeatable).
    #[arg(long, value_name = "BUCKET")]
    pub disable_bucket: Vec<String>,
    /// Switch it back on for BUCKET (repeatable).
    #[arg(long, value_name = "BUCKET")]
    pub enable_bucket: Vec<String>,
    /// Switch learning off for a pattern key, full or bare (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub disable_pattern: Vec<String>,
    /// Switch it back on for PATTERN (repeatable).
    #[arg(long, value_name = "PATTERN")]
    pub enable_pattern: Vec<String>,
    /// Switch learning off for a category: entry, add, trim or exit (repeatable).
    #[arg(long, value_name = "CATEGORY", value_parser = crate::values::parse_category)]
    pub disable_category: Vec<ActionCategory>,
    /// Switch it back on for CATEGORY (repeatable).
    #[arg(long, value_name = "CATEGORY", value_parser = crate::values::parse_category)]
    pub enable_category: Vec<ActionCategory>,
    /// Accept a regime, bucket or pattern to switch off that no stored action has (by default
    /// refused: a typo would switch nothing off).
    #[arg(long)]
    pub allow_unseen: bool,
}

/// A pattern key in its full form for `module` (`uptrend.S2.add` → `module=pm|pattern_key=…`),
/// so that the bare and the full spelling of one pattern are one switch.
fn full_pattern(key: &str, module: &str) -> String {
    let key = key.trim();
    if key.contains('|') {
        key.to_string()
    } else {
        format!("module={module}|pattern_key={key}")
    }
}

impl FlagsArgs {
    fn changes_nothing(&self) -> bool {
        self.learning.is_none()
            && [
                &self.disable_regime,
                &self.enable_regime,
                &self.disable_bucket,
                &self.enable_bucket,
                &self.disable_pattern,
                &self.enable_pattern,
            ]
            .iter()
            .all(|list| list.is_empty())
            && self.disable_category.is_empty()
            && self.enable_category.is_empty()
    }

    /// `flags` of `module`'s config with this command's changes (a value is compared ASCII
    /// case-insensitively, as the runtime compares it, and a pattern in either spelling;
    /// disabling comes after enabling, so naming both disables).
    pub fn applied_to(&self, flags: &FeatureFlags, module: &str) -> FeatureFlags {
        let mut out = flags.clone();
        if let Some(switch) = self.learning {
            out.learning_enabled = switch == Switch::On;
        }
        let categories = |list: &[ActionCategory]| -> Vec<String> {
            list.iter().map(|c| c.as_str().to_string()).collect()
        };
        let plain = |v: &str| v.trim().to_ascii_lowercase();
        let pattern = |v: &str| full_pattern(v, module).to_ascii_lowercase();
        switch_values(
            &mut out.disabled_regimes,
            &self.enable_regime,
            &self.disable_regime,
            plain,
        );
        switch_values(
            &mut out.disabled_buckets,
            &self.enable_bucket,
            &self.disable_bucket,
            plain,
        );
        switch_values(
            &mut out.disabled_patterns,
            &self.enable_pattern,
            &self.disable_pattern,
            pattern,
        );
        switch_values(
            &mut out.disabled_categories,
            &categories(&self.enable_category),
            &categories(&self.disable_category),
            plain,
        );
        out
    }

    /// The values to switch off that no stored action has, each with its option.
    fn unseen(
        &self,
        conn: &learnloop_store::Connection,
        module: &str,
    ) -> anyhow::Result<Vec<String>> {
        use learnloop_store::strands::{action_pattern_keys, action_scope_values};
        let mut unseen = Vec::new();
        for (option, asked, dim) in [
            (
                "--disable-regime",
                &self.disable_regime,
                learnloop_overrides::REGIME_DIM,
            ),
            (
                "--disable-bucket",
                &self.disable_bucket,
                learnloop_overrides::BUCKET_DIM,
            ),
        ] {
            if asked.is_empty() {
                continue;
            }
            let known = action_scope_values(conn, module, dim)?;
            unseen.extend(
                asked
                    .iter()
                    .filter(|a| !known.iter().any(|k| k.eq_ignore_ascii_case(a.trim())))
                    .map(|a| format!("{option} {a} (stored {dim} values: {})", known.join(", "))),
            );
        }
        if !self.disable_pattern.is_empty() {
            let known: Vec<String> = action_pattern_keys(conn, module)?
                .iter()
                .map(|k| full_pattern(k, module).to_ascii_lowercase())
                .collect();
            unseen.extend(
                self.disable_pattern
                    .iter()
                    .filter(|p| !known.contains(&full_pattern(p, module).to_ascii_lowercase()))
                    .map(|p| format!("--disable-pattern {p} (no stored action has this pattern)")),
            );
        }
        Ok(unseen)
    }
}

/// Takes `enable` off `list` and adds `disable` to it, values compared by their `same` form.
fn switch_values(
    list: &mut Vec<String>,
    enable: &[String],
    disable: &[String],
    same: impl Fn(&str) -> String,
) {
    list.retain(|v| !enable.iter().any(|e| same(e) == same(v)));
    for value in disable {
        let value = value.trim();
        if !value.is_empty() && !list.iter().any(|v| same(v) == same(value)) {
            list.push(value.to_string());
        }
    }
}

/// What `config flags` reports.
#[derive(Debug, Serialize)]
struct FlagsReport {
    module: String,
    /// The active version after the command.
    version: i64,
    /// The version it replaced, when the flags changed.
    previous_version: Option<i64>,
    changed: bool,
    feature_flags: FeatureFlags,
}

pub fn execute(cli: &Cli, module: &str, args: &FlagsArgs) -> anyhow::Result<()> {
    let report = if args.changes_nothing() {
        let conn = open_store_read_only(cli)?;
        let (active, data) = active_config(&conn, module)?;
        FlagsReport {
            module: module.to_string(),
            version: active.version,
            previous_version: None,
            changed: false,
            feature_flags: data.feature_flags,
        }
    } else {
        change(cli, module, args)?
    };
    emit(cli.json, &report, human)
}

fn active_config(
    conn: &learnloop_store::Connection,
    module: &str,
) -> anyhow::Result<(ConfigVersion, ConfigData)> {
    let active = configs::active_version(conn, module)?.with_context(|| {
        format!(
            "module {module:?} has no active config version: its flags are those of the version \
             you activate (see `learnloop config list`)"
        )
    })?;
    let data = ConfigData::parse(&active.config_data)
        .with_context(|| format!("reading {module} v{}", active.version))?;
    Ok((active, data))
}

/// Writes and activates the active version with the new flags, under the write lock, unless
/// they are the flags it already has.
fn change(cli: &Cli, module: &str, args: &FlagsArgs) -> anyhow::Result<FlagsReport> {
    let mut conn = open_existing_store(cli)?;
    let tx = conn.transaction()?;
    let (active, mut data) = active_config(&tx, module)?;
    if !args.allow_unseen {
        let unseen = args.unseen(&tx, module)?;
        if !unseen.is_empty() {
            return Err(crate::errors::usage(format!(
                "no stored action of this module has {}: a misspelt switch would switch nothing off (pass \
                 --allow-unseen to switch off a value before it occurs)",
                unseen.join("; ")
            )));
        }
    }
    let flags = args.applied_to(&data.feature_flags, module);
    if flags == data.feature_flags {
        return Ok(FlagsReport {
            module: module.to_string(),
            version: active.version,
            previous_version: None,
            changed: false,
            feature_flags: flags,
        });
    }
    let version = configs::next_version(&tx, module)?;
    data.version = version;
    data.feature_flags = flags;
    let config_data = data.to_json();
    let new = ConfigVersion {
        module: module.to_string(),
        version,
        status: ConfigStatus::Active,
        as_of: active.as_of,
        // Written by an operator, not by a run.
        run_id: None,
        created_at: Some(wall_clock_now()),
        checksum: config_checksum(&config_data),
        config_data,
    };
    super::config::check_loadable(&new)?;
    configs::insert_version(&tx, &new)?;
    tx.commit()?;
    tracing::info!(
        module,
        version,
        previous = active.version,
        "feature flags changed"
    );
    Ok(FlagsReport {
        module: module.to_string(),
        version,
        previous_version: Some(active.version),
        changed: true,
        feature_flags: data.feature_flags,
    })
}

fn human(r: &FlagsReport) -> String {
    let list = |l: &[String]| {
        if l.is_empty() {
            "none".to_string()
        } else {
            l.join(", ")
        }
    };
    let f = &r.feature_flags;
    let mut lines = vec![
        (
            "version",
            match r.previous_version {
                Some(p) => format!(
                    "v{} active (v{p} superseded: only the flags differ)",
                    r.version
                ),
                None if r.changed => format!("v{}", r.version),
                None => format!("v{} (unchanged)", r.version),
            },
        ),
        (
            "learning",
            if f.learning_enabled { "on" } else { "off" }.to_string(),
        ),
    ];
    lines.push(("off for regimes", list(&f.disabled_regimes)));
    lines.push(("off for buckets", list(&f.disabled_buckets)));
    lines.push(("off for patterns", list(&f.disabled_patterns)));
    lines.push(("off for categories", list(&f.disabled_categories)));
    format!("{} feature flags\n{}", r.module, kv(&lines))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_apply_case_insensitively_and_disabling_wins() {
        let before = FeatureFlags {
            disabled_regimes: vec!["Oh-Shit".into(), "Dip".into()],
            ..FeatureFlags::default()
        };
        let args = FlagsArgs {
            learning: Some(Switch::Off),
            enable_regime: vec!["oh-shit".into()],
            disable_regime: vec!["DIP".into(), "Chop".into()],
            disable_category: vec![ActionCategory::Add],
            enable_bucket: vec!["micro".into()],
            disable_bucket: vec!["micro".into()],
            ..FlagsArgs::default()
        };
        let after = args.applied_to(&before, "pm");
        assert!(!after.learning_enabled);
        assert_eq!(after.disabled_regimes, ["Dip", "Chop"]);
        assert_eq!(after.disabled_buckets, ["micro"]);
        assert_eq!(after.disabled_categories, ["add"]);
        assert!(!args.changes_nothing() && FlagsArgs::default().changes_nothing());
        assert_eq!(FlagsArgs::default().applied_to(&after, "pm"), after);
    }

    #[test]
    fn a_pattern_is_one_switch_in_either_spelling() {
        let full = "module=pm|pattern_key=uptrend.S3.add";
        let disable = |p: &str| FlagsArgs {
            disable_pattern: vec![p.into()],
            ..FlagsArgs::default()
        };
        let enable = |p: &str| FlagsArgs {
            enable_pattern: vec![p.into()],
            ..FlagsArgs::default()
        };
        for (off, on) in [("uptrend.S3.add", full), (full, "uptrend.S3.add")] {
            let flags = disable(off).applied_to(&FeatureFlags::default(), "pm");
            assert_eq!(disable(on).applied_to(&flags, "pm"), flags, "one entry");
            assert!(enable(on)
                .applied_to(&flags, "pm")
                .disabled_patterns
                .is_empty());
        }
    }
}
