//! `config list | show [V] | diff A B | activate V | rollback | flags | publish`: the versions of
//! `learning_configs` and their lifecycle.

use super::Outcome;
use crate::context::{load_config, open_existing_store, open_store_read_only};
use crate::output::{emit, kv, scope_text};
use crate::Cli;
use anyhow::Context;
use clap::{Args, Subcommand};
use learnloop_model::pattern::short_pattern_key;
use learnloop_model::time::wall_clock;
use learnloop_model::{ConfigInfo, ConfigStatus, ConfigVersion, Timestamp};
use learnloop_overrides::{
    config_checksum, ConfigData, ConfigRow, Lever, Levers, Override, Overrides,
};
use learnloop_store::configs;
use learnloop_store::Connection;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Args, Debug)]
pub struct ConfigArgs {
    /// PM module whose config versions to show or change.
    #[arg(long, global = true, default_value = "pm")]
    pub module: String,
    #[command(subcommand)]
    pub action: ConfigAction,
}

#[derive(Subcommand, Debug)]
pub enum ConfigAction {
    /// Every version: status, as-of, number of overrides, checksum.
    List,
    /// A version: status, as-of, checksum and its overrides, strongest first (`--json`: with the
    /// full config_data). Default: the active version, else the latest.
    Show {
        /// Version number.
        version: Option<i64>,
    },
    /// What changed from version A to version B: overrides added, removed, changed, lever deltas.
    Diff { a: i64, b: i64 },
    /// Approve version V: it becomes active, the active one superseded (checked loadable first).
    Activate { version: i64 },
    /// Take back the active version (→ rolled_back) and re-activate the one active before it.
    Rollback,
    /// The active version's feature flags; with a change (e.g. `--learning off`,
    /// `--disable-regime Oh-Shit`), a new version with those flags is written and activated.
    Flags(super::config_flags::FlagsArgs),
    /// Alias of `learnloop show-config`, kept for scripts written against it.
    #[command(hide = true)]
    Defaults,
    /// Write the active version into the PostgreSQL table the PM reads (one transaction,
    /// idempotent; the table is created when absent).
    Publish {
        /// postgresql://USER:PASSWORD@HOST:PORT/DB?sslmode=require (password and sslmode optional; or the password in PGPASSWORD).
        #[arg(long, value_name = "URL")]
        to: String,
        #[arg(long, default_value = "learning_configs")]
        table: String,
    },
}

/// `learnloop show-config`: the effective loop configuration (defaults merged with --config),
/// as the JSON a `--config` file takes.
pub fn show_effective(cli: &Cli) -> anyhow::Result<()> {
    let cfg = load_config(cli)?;
    crate::output::print_stdout(&format!("{}\n", serde_json::to_string_pretty(&cfg)?))?;
    Ok(())
}

pub fn execute(cli: &Cli, args: &ConfigArgs) -> anyhow::Result<Outcome> {
    let module = args.module.as_str();
    match &args.action {
        ConfigAction::Defaults => show_effective(cli)?,
        ConfigAction::List => list(cli, module)?,
        ConfigAction::Show { version } => show(cli, module, *version)?,
        ConfigAction::Diff { a, b } => diff(cli, module, *a, *b)?,
        ConfigAction::Activate { version } => activate(cli, module, *version)?,
        ConfigAction::Rollback => rollback(cli, module)?,
        ConfigAction::Flags(flags) => super::config_flags::execute(cli, module, flags)?,
        ConfigAction::Publish { to, table } => super::pg::execute_publish(cli, module, to, table)?,
    }
    Ok(Outcome::Ok)
}

/// A version named on the command line; one that does not exist is bad usage (exit 2), as an
/// unknown lesson key is for `lessons show`.
fn version(conn: &Connection, module: &str, version: i64) -> anyhow::Result<ConfigVersion> {
    configs::get_version(conn, module, version)?.ok_or_else(|| {
        crate::errors::usage(format!(
            "module {module:?} has no config version {version} (see `learnloop config list`)"
        ))
    })
}

/// Refuse to activate what the PM could not load: checksum, schema, bounds, module/version.
pub(crate) fn check_loadable(v: &ConfigVersion) -> anyhow::Result<()> {
    let row = ConfigRow {
        module: v.module.clone(),
        version: v.version,
        status: v.status.as_str().to_string(),
        as_of: Some(v.as_of.to_rfc3339()),
        run_id: v.run_id.clone(),
        created_at: v.created_at.map(Timestamp::to_rfc3339_millis),
        checksum: Some(v.checksum.clone()),
        config_data: v.config_data.clone(),
    };
    Overrides::from_row(&row)
        .map(|_| ())
        .with_context(|| format!("config {} v{} cannot be served", v.module, v.version))
}

#[derive(Debug, Serialize)]
struct Listing {
    module: String,
    active: Option<i64>,
    versions: Vec<ConfigInfo>,
}

fn list(cli: &Cli, module: &str) -> anyhow::Result<()> {
    let conn = open_store_read_only(cli)?;
    let versions = configs::list_versions(&conn, module)?;
    let listing = Listing {
        module: module.to_string(),
        active: versions
            .iter()
            .rev()
            .find(|v| v.status == ConfigStatus::Active)
            .map(|v| v.version),
        versions,
    };
    emit(cli.json, &listing, |l| {
        let mut out = format!(
            "config versions of {} (active: {})\n",
            l.module,
            l.active.map_or("none".to_string(), |v| format!("v{v}"))
        );
        if l.versions.is_empty() {
            out.push_str("  none yet: run `learnloop materialize` (or `run`)\n");
            return out;
        }
        out.push_str(&format!(
            "  {:>7}  {:<11}  {:<24}  {:>9}  {:<16}  {}\n",
            "version", "status", "as_of", "overrides", "checksum", "created_at"
        ));
        for v in &l.versions {
            out.push_str(&format!(
                "  {:>7}  {:<11}  {:<24}  {:>9}  {:<16}  {}\n",
                v.version,
                v.status,
                v.as_of,
                v.overrides.map_or("?".to_string(), |n| n.to_string()),
                v.checksum,
                v.created_at.to_rfc3339_millis()
            ));
        }
        out
    })
}

#[derive(Debug, Serialize)]
struct Shown {
    module: String,
    version: i64,
    status: ConfigStatus,
    as_of: Timestamp,
    run_id: Option<String>,
    #[serde(serialize_with = "wall_clock::serialize_option")]
    created_at: Option<Timestamp>,
    checksum: String,
    /// Whether `checksum` matches the stored text.
    checksum_ok: bool,
    config_data: serde_json::Value,
}

fn show(cli: &Cli, module: &str, v: Option<i64>) -> anyhow::Result<()> {
    let conn = open_store_read_only(cli)?;
    let row = match v {
        Some(v) => version(&conn, module, v)?,
        None => configs::active_version(&conn, module)?
            .or(configs::latest_version(&conn, module)?)
            .with_context(|| format!("module {module:?} has no config versions yet"))?,
    };
    let checksum_ok = config_checksum(&row.config_data) == row.checksum;
    if !checksum_ok {
        tracing::warn!(
            module,
            version = row.version,
            "stored checksum does not match config_data"
        );
    }
    let data: serde_json::Value = match serde_json::from_str(&row.config_data) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(
                module,
                version = row.version,
                "config_data is not JSON: {e}"
            );
            serde_json::Value::String(row.config_data.clone())
        }
    };
    let shown = Shown {
        module: row.module,
        version: row.version,
        status: row.status,
        as_of: row.as_of,
        run_id: row.run_id,
        created_at: row.created_at,
        checksum: row.checksum,
        checksum_ok,
        config_data: data,
    };
    emit(cli.json, &shown, human_show)
}

/// The version's figures, then one line per override, strongest size change first; the full
/// config_data is `--json`'s.
fn human_show(s: &Shown) -> String {
    let mut out = format!("{} v{}\n", s.module, s.version);
    out.push_str(&kv(&[
        ("status", s.status.to_string()),
        ("as of", s.as_of.to_rfc3339()),
        (
            "created",
            s.created_at
                .map_or_else(|| "-".into(), Timestamp::to_rfc3339_millis),
        ),
        ("run", s.run_id.clone().unwrap_or_else(|| "-".into())),
        (
            "checksum",
            format!(
                "{} ({})",
                s.checksum,
                if s.checksum_ok {
                    "ok"
                } else {
                    "MISMATCH: the PM will refuse this version"
                }
            ),
        ),
    ]));
    let data = serde_json::from_value::<ConfigData>(s.config_data.clone());
    let Ok(data) = data else {
        out.push_str("  config_data cannot be read as a config (see --json)\n");
        return out;
    };
    let mut overrides: Vec<&Override> = data.overrides().collect();
    overrides.sort_by(|a, b| {
        size_change(b)
            .total_cmp(&size_change(a))
            .then_with(|| a.override_id.cmp(&b.override_id))
    });
    out.push_str(&kv(&[("overrides", overrides.len().to_string())]));
    if !overrides.is_empty() {
        out.push_str(&format!(
            "  {:<22} {:<6} {:>6} {:>9} {:>6}  {:<32}  {}\n",
            "pattern", "cat", "size ×", "q", "trades", "scope", "other levers"
        ));
    }
    for o in overrides {
        let others: Vec<String> = o
            .levers
            .iter()
            .filter(|(l, _)| *l != Lever::SizeMult)
            .map(|(l, v)| format!("{l}={v:.3}"))
            .collect();
        out.push_str(&format!(
            "  {:<22} {:<6} {:>6} {:>9} {:>6}  {:<32}  {}\n",
            short_pattern_key(&o.pattern_key),
            o.action_category,
            o.levers
                .get(Lever::SizeMult)
                .map_or("-".to_string(), |m| format!("{m:.3}")),
            format!("{:.2e}", o.q_value),
            o.n_trades,
            scope_text(&o.scope),
            others.join(" ")
        ));
    }
    out
}

/// How far an override moves the size: |size_mult − 1| (0 without a size lever).
fn size_change(o: &Override) -> f64 {
    o.levers
        .get(Lever::SizeMult)
        .map_or(0.0, |m| (m - 1.0).abs())
}

#[derive(Debug, Serialize)]
struct OverrideSummary {
    override_id: String,
    pattern_key: String,
    action_category: String,
    scope: BTreeMap<String, String>,
    levers: Levers,
}

impl From<&Override> for OverrideSummary {
    fn from(o: &Override) -> Self {
        Self {
            override_id: o.override_id.clone(),
            pattern_key: o.pattern_key.clone(),
            action_category: o.action_category.clone(),
            scope: o.scope.clone(),
            levers: o.levers,
        }
    }
}

#[derive(Debug, Serialize)]
struct LeverDelta {
    lever: Lever,
    /// `None`: absent (neutral) in that version.
    a: Option<f64>,
    b: Option<f64>,
    /// b − a, absent counting as neutral.
    delta: f64,
}

#[derive(Debug, Serialize)]
struct ChangedOverride {
    #[serde(flatten)]
    summary: OverrideSummary,
    /// Levers whose value differs (b's override is summarised).
    lever_deltas: Vec<LeverDelta>,
    /// Other fields that differ (scope, confidence, lesson_keys, …).
    other_changes: Vec<&'static str>,
}

#[derive(Debug, Serialize)]
struct Diff {
    module: String,
    a: i64,
    b: i64,
    as_of: (String, String),
    added: Vec<OverrideSummary>,
    removed: Vec<OverrideSummary>,
    changed: Vec<ChangedOverride>,
    unchanged: usize,
    /// Config-level fields that differ (feature_flags, specificity_alpha).
    settings_changed: Vec<&'static str>,
}

fn parse_for_diff(v: &ConfigVersion) -> anyhow::Result<ConfigData> {
    ConfigData::parse(&v.config_data)
        .with_context(|| format!("config {} v{} cannot be read", v.module, v.version))
}

fn diff_configs(module: &str, a: &ConfigData, b: &ConfigData) -> Diff {
    let index = |c: &ConfigData| -> BTreeMap<String, Override> {
        c.overrides()
            .map(|o| (o.override_id.clone(), o.clone()))
            .collect()
    };
    let (ia, ib) = (index(a), index(b));
    let mut diff = Diff {
        module: module.to_string(),
        a: a.version,
        b: b.version,
        as_of: (a.as_of.clone(), b.as_of.clone()),
        added: ib
            .iter()
            .filter(|(id, _)| !ia.contains_key(*id))
            .map(|(_, o)| o.into())
            .collect(),
        removed: ia
            .iter()
            .filter(|(id, _)| !ib.contains_key(*id))
            .map(|(_, o)| o.into())
            .collect(),
        changed: Vec::new(),
        unchanged: 0,
        settings_changed: Vec::new(),
    };
    for (id, oa) in &ia {
        let Some(ob) = ib.get(id) else { continue };
        let lever_deltas: Vec<LeverDelta> = Lever::ALL
            .into_iter()
            .filter(|&l| oa.levers.get(l) != ob.levers.get(l))
            .map(|l| LeverDelta {
                lever: l,
                a: oa.levers.get(l),
                b: ob.levers.get(l),
                delta: ob.levers.get_or_neutral(l) - oa.levers.get_or_neutral(l),
            })
            .collect();
        let mut other_changes = Vec::new();
        let fields: [(&'static str, bool); 12] = [
            ("pattern_key", oa.pattern_key != ob.pattern_key),
            ("action_category", oa.action_category != ob.action_category),
            ("scope", oa.scope != ob.scope),
            ("confidence", oa.confidence != ob.confidence),
            ("q_value", oa.q_value != ob.q_value),
            ("n_trades", oa.n_trades != ob.n_trades),
            ("edge", oa.edge != ob.edge),
            ("half_life_hours", oa.half_life_hours != ob.half_life_hours),
            ("created_at", oa.created_at != ob.created_at),
            ("lesson_keys", oa.lesson_keys != ob.lesson_keys),
            ("factor_id", oa.factor_id != ob.factor_id),
            ("members", oa.members != ob.members),
        ];
        for (name, differs) in fields {
            if differs {
                other_changes.push(name);
            }
        }
        if lever_deltas.is_empty() && other_changes.is_empty() {
            diff.unchanged += 1;
        } else {
            diff.changed.push(ChangedOverride {
                summary: ob.into(),
                lever_deltas,
                other_changes,
            });
        }
    }
    if a.feature_flags != b.feature_flags {
        diff.settings_changed.push("feature_flags");
    }
    if a.specificity_alpha != b.specificity_alpha {
        diff.settings_changed.push("specificity_alpha");
    }
    diff
}

fn levers_text(levers: &Levers) -> String {
    let parts: Vec<String> = levers.iter().map(|(l, v)| format!("{l}={v}")).collect();
    parts.join(" ")
}

fn opt_text(v: Option<f64>) -> String {
    v.map_or("-".to_string(), |v| v.to_string())
}

fn human_diff(d: &Diff) -> String {
    let mut out = format!(
        "{} v{} → v{} (as of {} → {}): {} added, {} removed, {} changed, {} unchanged\n",
        d.module,
        d.a,
        d.b,
        d.as_of.0,
        d.as_of.1,
        d.added.len(),
        d.removed.len(),
        d.changed.len(),
        d.unchanged
    );
    let head = |o: &OverrideSummary| {
        format!(
            "{}  {} {} {}",
            o.override_id,
            o.pattern_key,
            o.action_category,
            scope_text(&o.scope)
        )
    };
    for o in &d.added {
        out.push_str(&format!("+ {}  {}\n", head(o), levers_text(&o.levers)));
    }
    for o in &d.removed {
        out.push_str(&format!("- {}  {}\n", head(o), levers_text(&o.levers)));
    }
    for c in &d.changed {
        out.push_str(&format!("~ {}\n", head(&c.summary)));
        for l in &c.lever_deltas {
            out.push_str(&format!(
                "    {}: {} → {} ({:+.6})\n",
                l.lever,
                opt_text(l.a),
                opt_text(l.b),
                l.delta
            ));
        }
        if !c.other_changes.is_empty() {
            out.push_str(&format!(
                "    also changed: {}\n",
                c.other_changes.join(", ")
            ));
        }
    }
    if !d.settings_changed.is_empty() {
        out.push_str(&format!(
            "settings changed: {}\n",
            d.settings_changed.join(", ")
        ));
    }
    out
}

fn diff(cli: &Cli, module: &str, a: i64, b: i64) -> anyhow::Result<()> {
    let conn = open_store_read_only(cli)?;
    let ca = parse_for_diff(&version(&conn, module, a)?)?;
    let cb = parse_for_diff(&version(&conn, module, b)?)?;
    emit(cli.json, &diff_configs(module, &ca, &cb), human_diff)
}

fn activate(cli: &Cli, module: &str, v: i64) -> anyhow::Result<()> {
    let mut conn = open_existing_store(cli)?;
    // Checked under the write lock, so the version activated is the version checked.
    let tx = conn.transaction()?;
    let target = version(&tx, module, v)?;
    check_loadable(&target)?;
    let active = configs::active_version(&tx, module)?;
    let activation = configs::activate(&tx, module, v)?;
    tx.commit()?;
    tracing::info!(module, version = v, superseded = ?activation.superseded, "config activated");
    if let Some(active) = active.filter(|a| flags_of(a) != flags_of(&target)) {
        // A proposal written before an operator's `config flags` carries the flags of its day.
        tracing::warn!(
            module,
            "v{v} has other feature flags than v{} had: they changed with this activation \
             (see `learnloop config flags`)",
            active.version
        );
    }
    emit(cli.json, &activation, |a| {
        if !a.changed {
            return format!("{} v{} was already active\n", a.module, a.version);
        }
        let mut lines = vec![(ConfigStatus::Active.as_str(), format!("v{}", a.version))];
        if let Some(s) = a.superseded {
            lines.push((ConfigStatus::Superseded.as_str(), format!("v{s}")));
        }
        format!("{}\n{}", a.module, kv(&lines))
    })
}

fn flags_of(v: &ConfigVersion) -> Option<learnloop_overrides::FeatureFlags> {
    ConfigData::parse(&v.config_data)
        .ok()
        .map(|d| d.feature_flags)
}

fn rollback(cli: &Cli, module: &str) -> anyhow::Result<()> {
    let mut conn = open_existing_store(cli)?;
    let tx = conn.transaction()?;
    let (_, target) = configs::rollback_target(&tx, module)?;
    check_loadable(&target)?;
    let rollback = configs::rollback(&tx, module)?;
    tx.commit()?;
    tracing::info!(
        module,
        from = rollback.from,
        to = rollback.to,
        "config rolled back"
    );
    emit(cli.json, &rollback, |r| {
        format!(
            "{}\n{}",
            r.module,
            kv(&[
                ("rolled back", format!("v{}", r.from)),
                (ConfigStatus::Active.as_str(), format!("v{}", r.to)),
            ])
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(version: i64, overrides: Vec<Override>) -> ConfigData {
        let mut c = ConfigData::new("pm", version, "2026-03-01T00:00:00Z");
        c.pattern_overrides = overrides;
        c
    }

    fn ov(id: &str, size: f64) -> Override {
        Override {
            override_id: id.into(),
            pattern_key: "p".into(),
            action_category: "add".into(),
            scope: BTreeMap::from([("bucket".into(), "mid".into())]),
            levers: Levers::new().with(Lever::SizeMult, size),
            confidence: 0.5,
            q_value: 0.01,
            n_trades: 30,
            edge: None,
            half_life_hours: None,
            created_at: None,
            lesson_keys: vec![id.into()],
            factor_id: None,
            members: vec![],
        }
    }

    #[test]
    fn diff_reports_added_removed_changed_and_lever_deltas() {
        let mut changed = ov("b", 1.2);
        changed.levers.set(Lever::EntryAggressionMult, 1.1);
        changed.confidence = 0.6;
        let d = diff_configs(
            "pm",
            &cfg(1, vec![ov("a", 1.1), ov("b", 1.1), ov("c", 0.9)]),
            &cfg(2, vec![ov("a", 1.1), changed, ov("d", 1.05)]),
        );
        assert_eq!(d.added.len(), 1);
        assert_eq!(d.added[0].override_id, "d");
        assert_eq!(d.removed[0].override_id, "c");
        assert_eq!(d.unchanged, 1);
        let c = &d.changed[0];
        assert_eq!(c.summary.override_id, "b");
        assert_eq!(c.lever_deltas.len(), 2);
        assert!((c.lever_deltas[0].delta - 0.1).abs() < 1e-12);
        assert_eq!(c.lever_deltas[1].a, None);
        assert_eq!(c.other_changes, ["confidence"]);
        let text = human_diff(&d);
        assert!(text.contains("+ d") && text.contains("- c") && text.contains("~ b"));
    }
}
