//! `learning_configs`: versioned `config_data` per module, with their lifecycle.
//!
//! Status moves `proposed` → `active` → `superseded` (another version was activated) or
//! `rolled_back` (taken back by [`rollback`]). At most one version per module is `active`; every
//! status change that touches two rows runs inside a savepoint, so it is atomic on its own and
//! also nests inside the caller's transaction: a reader sees the old or the new active version,
//! never both or neither.
//!
//! This module stores text; it does not parse `config_data` (that is the `overrides` crate's job,
//! and callers validate before activating).

use crate::{parsed_column, Result, StoreError};
use learnloop_model::{ConfigInfo, ConfigStatus, ConfigVersion, Timestamp};
use rusqlite::{params, Connection, OptionalExtension, Row};

/// Result of [`activate`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Activation {
    /// The module.
    pub module: String,
    /// The version now active.
    pub version: i64,
    /// The version that was active before and is now `superseded` (`None` if there was none, or
    /// if `version` was already active).
    pub superseded: Option<i64>,
    /// False when `version` was already the active one (nothing changed).
    pub changed: bool,
}

/// Result of [`rollback`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Rollback {
    /// The module.
    pub module: String,
    /// The version that was active and is now `rolled_back`.
    pub from: i64,
    /// The earlier version active again.
    pub to: i64,
}

/// Why a config version change was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigsError {
    #[error("module {module:?} has no config version {version}")]
    /// The version does not exist.
    NoSuchVersion {
        /// The module.
        module: String,
        /// The version asked for.
        version: i64,
    },
    #[error("module {module:?} has no active config to roll back")]
    /// Rollback with no active version.
    NoActive {
        /// The module.
        module: String,
    },
    #[error("module {module:?}: nothing to roll back to: no version before the active v{active} was ever active (a rollback re-activates the latest earlier version with status superseded)")]
    /// No earlier version was ever active.
    NothingToRollBackTo {
        /// The module.
        module: String,
        /// The active version.
        active: i64,
    },
    #[error("config {module} v{version} already exists")]
    /// Inserting a version that exists (versions are never overwritten).
    VersionExists {
        /// The module.
        module: String,
        /// The version.
        version: i64,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl From<rusqlite::Error> for ConfigsError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Store(StoreError::Sql(e))
    }
}

const COLUMNS: &str = "module, version, status, as_of, run_id, created_at, checksum, config_data";

fn version_from_row(r: &Row<'_>) -> rusqlite::Result<ConfigVersion> {
    Ok(ConfigVersion {
        module: r.get(0)?,
        version: r.get(1)?,
        status: parsed_column(r, 2)?,
        as_of: parsed_column(r, 3)?,
        run_id: r.get(4)?,
        created_at: Some(parsed_column(r, 5)?),
        checksum: r.get(6)?,
        config_data: r.get(7)?,
    })
}

/// Run `f` inside a savepoint: released on success, rolled back on error. Nests inside an open
/// transaction (or starts one when there is none).
fn atomically<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> std::result::Result<T, ConfigsError>,
) -> std::result::Result<T, ConfigsError> {
    conn.execute_batch("SAVEPOINT learning_configs_change")?;
    match f(conn) {
        Ok(v) => {
            conn.execute_batch("RELEASE learning_configs_change")?;
            Ok(v)
        }
        Err(e) => {
            // Best effort: the original error is the one worth reporting.
            let _ = conn.execute_batch(
                "ROLLBACK TO learning_configs_change; RELEASE learning_configs_change",
            );
            Err(e)
        }
    }
}

/// Write a new version. Refuses to overwrite an existing (module, version). A version inserted
/// as `active` supersedes the previous active one (atomically).
pub fn insert_version(
    conn: &Connection,
    v: &ConfigVersion,
) -> std::result::Result<(), ConfigsError> {
    atomically(conn, |conn| {
        if get_version(conn, &v.module, v.version)?.is_some() {
            return Err(ConfigsError::VersionExists {
                module: v.module.clone(),
                version: v.version,
            });
        }
        if v.status == ConfigStatus::Active {
            supersede_active(conn, &v.module, v.version)?;
        }
        conn.execute(
            &format!(
                "INSERT INTO learning_configs ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
            ),
            params![
                v.module,
                v.version,
                v.status.as_str(),
                v.as_of.to_rfc3339(),
                v.run_id,
                v.created_at.map(Timestamp::to_rfc3339_millis),
                v.checksum,
                v.config_data
            ],
        )?;
        Ok(())
    })
}

/// The number the next version of `module` gets: the highest existing one + 1 (1 for the first).
pub fn next_version(conn: &Connection, module: &str) -> Result<i64> {
    let max: Option<i64> = conn.query_row(
        "SELECT MAX(version) FROM learning_configs WHERE module = ?1",
        [module],
        |r| r.get(0),
    )?;
    Ok(max.unwrap_or(0) + 1)
}

/// The highest version of `module`, whatever its status.
pub fn latest_version(conn: &Connection, module: &str) -> Result<Option<ConfigVersion>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM learning_configs WHERE module = ?1 ORDER BY version DESC LIMIT 1"
            ),
            [module],
            version_from_row,
        )
        .optional()?)
}

/// The active version of `module` (the highest, should there ever be several).
pub fn active_version(conn: &Connection, module: &str) -> Result<Option<ConfigVersion>> {
    Ok(conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM learning_configs WHERE module = ?1 AND status = 'active'
                 ORDER BY version DESC LIMIT 1"
            ),
            [module],
            version_from_row,
        )
        .optional()?)
}

/// One version of `module`, with its `config_data`.
pub fn get_version(conn: &Connection, module: &str, version: i64) -> Result<Option<ConfigVersion>> {
    Ok(conn
        .query_row(
            &format!("SELECT {COLUMNS} FROM learning_configs WHERE module = ?1 AND version = ?2"),
            params![module, version],
            version_from_row,
        )
        .optional()?)
}

/// Every version of `module`, oldest first, without `config_data`.
pub fn list_versions(conn: &Connection, module: &str) -> Result<Vec<ConfigInfo>> {
    let mut stmt = conn.prepare(
        "SELECT module, version, status, as_of, run_id, created_at, checksum,
                CASE WHEN json_valid(config_data)
                     THEN COALESCE(json_array_length(config_data, '$.pattern_overrides'), 0)
                        + COALESCE(json_array_length(config_data, '$.pattern_strength_overrides'), 0)
                END,
                length(CAST(config_data AS BLOB))
           FROM learning_configs WHERE module = ?1 ORDER BY version",
    )?;
    let rows = stmt
        .query_map([module], |r| {
            Ok(ConfigInfo {
                module: r.get(0)?,
                version: r.get(1)?,
                status: parsed_column(r, 2)?,
                as_of: parsed_column(r, 3)?,
                run_id: r.get(4)?,
                created_at: parsed_column(r, 5)?,
                checksum: r.get(6)?,
                overrides: r.get(7)?,
                bytes: r.get(8)?,
            })
        })?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Every version of `module` with its `config_data`, oldest first.
pub fn all_versions(conn: &Connection, module: &str) -> Result<Vec<ConfigVersion>> {
    let mut stmt = conn.prepare(&format!(
        "SELECT {COLUMNS} FROM learning_configs WHERE module = ?1 ORDER BY version"
    ))?;
    let rows = stmt
        .query_map([module], version_from_row)?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(rows)
}

/// Modules that have at least one config version, sorted.
pub fn modules(conn: &Connection) -> Result<Vec<String>> {
    crate::text_rows(
        conn,
        "SELECT DISTINCT module FROM learning_configs ORDER BY module",
        [],
    )
}

/// Set one version's status. Setting `active` goes through [`activate`], so the previous active
/// version is superseded and there is never more than one.
pub fn set_status(
    conn: &Connection,
    module: &str,
    version: i64,
    status: ConfigStatus,
) -> std::result::Result<(), ConfigsError> {
    if status == ConfigStatus::Active {
        return activate(conn, module, version).map(|_| ());
    }
    let n = conn.execute(
        "UPDATE learning_configs SET status = ?3 WHERE module = ?1 AND version = ?2",
        params![module, version, status.as_str()],
    )?;
    if n == 0 {
        return Err(ConfigsError::NoSuchVersion {
            module: module.to_string(),
            version,
        });
    }
    Ok(())
}

/// Mark every active version of `module` other than `except` as superseded; the highest one
/// superseded is returned.
fn supersede_active(
    conn: &Connection,
    module: &str,
    except: i64,
) -> std::result::Result<Option<i64>, ConfigsError> {
    let previous: Option<i64> = conn.query_row(
        "SELECT MAX(version) FROM learning_configs WHERE module = ?1 AND status = 'active' AND version <> ?2",
        params![module, except],
        |r| r.get(0),
    )?;
    conn.execute(
        "UPDATE learning_configs SET status = 'superseded'
          WHERE module = ?1 AND status = 'active' AND version <> ?2",
        params![module, except],
    )?;
    Ok(previous)
}

/// Make `version` the active config of `module` (an explicit approval, or `--activate`); the
/// previously active version becomes `superseded`. Any status may be activated, including a
/// rolled-back one (the operator decides). Atomic.
pub fn activate(
    conn: &Connection,
    module: &str,
    version: i64,
) -> std::result::Result<Activation, ConfigsError> {
    atomically(conn, |conn| {
        let target =
            get_version(conn, module, version)?.ok_or_else(|| ConfigsError::NoSuchVersion {
                module: module.to_string(),
                version,
            })?;
        let superseded = supersede_active(conn, module, version)?;
        let changed = target.status != ConfigStatus::Active || superseded.is_some();
        conn.execute(
            "UPDATE learning_configs SET status = 'active' WHERE module = ?1 AND version = ?2",
            params![module, version],
        )?;
        Ok(Activation {
            module: module.to_string(),
            version,
            superseded,
            changed,
        })
    })
}

/// The version [`rollback`] would re-activate: the highest version below the active one whose
/// status is `superseded` (it was active before; proposed and rolled-back versions are skipped).
pub fn rollback_target(
    conn: &Connection,
    module: &str,
) -> std::result::Result<(ConfigVersion, ConfigVersion), ConfigsError> {
    let active = active_version(conn, module)?.ok_or_else(|| ConfigsError::NoActive {
        module: module.to_string(),
    })?;
    let target = conn
        .query_row(
            &format!(
                "SELECT {COLUMNS} FROM learning_configs
                  WHERE module = ?1 AND version < ?2 AND status = 'superseded'
                  ORDER BY version DESC LIMIT 1"
            ),
            params![module, active.version],
            version_from_row,
        )
        .optional()?
        .ok_or_else(|| ConfigsError::NothingToRollBackTo {
            module: module.to_string(),
            active: active.version,
        })?;
    Ok((active, target))
}

/// Take back the active version of `module`: it becomes `rolled_back` and the most recent
/// earlier version that was active before it (see [`rollback_target`]) is active again, with
/// its exact `config_data`. Atomic.
pub fn rollback(conn: &Connection, module: &str) -> std::result::Result<Rollback, ConfigsError> {
    atomically(conn, |conn| {
        let (active, target) = rollback_target(conn, module)?;
        conn.execute(
            "UPDATE learning_configs SET status = 'rolled_back' WHERE module = ?1 AND status = 'active'",
            params![module],
        )?;
        conn.execute(
            "UPDATE learning_configs SET status = 'active' WHERE module = ?1 AND version = ?2",
            params![module, target.version],
        )?;
        Ok(Rollback {
            module: module.to_string(),
            from: active.version,
            to: target.version,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ConfigStatus::{Active, Proposed, RolledBack, Superseded};

    fn row(version: i64, status: ConfigStatus) -> ConfigVersion {
        ConfigVersion {
            module: "pm".into(),
            version,
            status,
            as_of: Timestamp::parse("2026-01-01T00:00:00Z").unwrap(),
            run_id: None,
            created_at: Timestamp::parse("2026-01-02T00:00:00Z").ok(),
            checksum: format!("c{version}"),
            config_data: format!(r#"{{"version":{version},"pattern_overrides":[1,2]}}"#),
        }
    }

    fn statuses(conn: &Connection) -> Vec<(i64, ConfigStatus)> {
        list_versions(conn, "pm")
            .unwrap()
            .into_iter()
            .map(|i| (i.version, i.status))
            .collect()
    }

    #[test]
    fn versions_activate_supersede_and_roll_back() {
        let conn = crate::open_in_memory().unwrap();
        assert_eq!(next_version(&conn, "pm").unwrap(), 1);
        assert!(latest_version(&conn, "pm").unwrap().is_none());
        insert_version(&conn, &row(1, Active)).unwrap();
        insert_version(&conn, &row(2, Proposed)).unwrap();
        assert!(matches!(
            insert_version(&conn, &row(2, Proposed)),
            Err(ConfigsError::VersionExists { .. })
        ));
        assert_eq!(next_version(&conn, "pm").unwrap(), 3);
        assert_eq!(latest_version(&conn, "pm").unwrap().unwrap().version, 2);
        assert_eq!(active_version(&conn, "pm").unwrap().unwrap().version, 1);

        let a = activate(&conn, "pm", 2).unwrap();
        assert_eq!((a.superseded, a.changed), (Some(1), true));
        assert!(!activate(&conn, "pm", 2).unwrap().changed);
        insert_version(&conn, &row(3, Active)).unwrap();
        assert_eq!(
            statuses(&conn),
            [(1, Superseded), (2, Superseded), (3, Active)]
        );

        let r = rollback(&conn, "pm").unwrap();
        assert_eq!((r.from, r.to), (3, 2));
        let r = rollback(&conn, "pm").unwrap();
        assert_eq!((r.from, r.to), (2, 1));
        assert!(matches!(
            rollback(&conn, "pm"),
            Err(ConfigsError::NothingToRollBackTo { active: 1, .. })
        ));
        assert_eq!(
            statuses(&conn),
            [(1, Active), (2, RolledBack), (3, RolledBack)]
        );
        assert_eq!(list_versions(&conn, "pm").unwrap()[0].overrides, Some(2));
        assert_eq!(modules(&conn).unwrap(), ["pm"]);
        assert!(matches!(
            activate(&conn, "pm", 9),
            Err(ConfigsError::NoSuchVersion { version: 9, .. })
        ));
        set_status(&conn, "pm", 3, Active).unwrap();
        assert_eq!(active_version(&conn, "pm").unwrap().unwrap().version, 3);
        assert_eq!(
            get_version(&conn, "pm", 1).unwrap().unwrap().status,
            Superseded
        );
    }

    #[test]
    fn failed_change_leaves_rows_untouched() {
        let conn = crate::open_in_memory().unwrap();
        insert_version(&conn, &row(1, Active)).unwrap();
        assert!(matches!(
            rollback(&conn, "pm"),
            Err(ConfigsError::NothingToRollBackTo { .. })
        ));
        assert!(matches!(
            rollback(&conn, "other"),
            Err(ConfigsError::NoActive { .. })
        ));
        assert_eq!(statuses(&conn), [(1, Active)]);
    }
}
