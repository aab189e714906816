//! Hot reload. The handle holds the current config as an `Arc<Overrides>` behind a lock that
//! is held only to clone or replace the `Arc` — never during a lookup — so readers see either
//! the old or the new version whole, and a swap waits for no lookup.

use crate::apply::{apply_into, ActionInput, AppliedAction};
use crate::decision::Decision;
use crate::error::ConfigError;
use crate::scope::ScopeView;
use crate::snapshot::Overrides;
use std::path::Path;
use std::sync::{Arc, RwLock};

/// Shared, swappable access to the current config. Cheap to clone (all clones see the same
/// config); `Send + Sync`.
#[derive(Clone, Default)]
pub struct OverridesHandle {
    current: Arc<RwLock<Option<Arc<Overrides>>>>,
}

impl std::fmt::Debug for OverridesHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let snapshot = self.snapshot();
        f.debug_struct("OverridesHandle")
            .field("module", &snapshot.as_ref().map(|s| s.module().to_string()))
            .field("version", &snapshot.as_ref().map(|s| s.version()))
            .finish()
    }
}

/// Outcome of a reload from the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reload {
    /// The version now served.
    pub version: i64,
    /// False when the active row was the config already being served (nothing rebuilt).
    pub changed: bool,
}

impl OverridesHandle {
    /// A handle with no config: every lookup falls back, saying so.
    pub fn new() -> Self {
        Self::default()
    }

    /// A handle serving `overrides` from the start.
    pub fn with(overrides: Overrides) -> Self {
        let handle = Self::new();
        handle.install(overrides);
        handle
    }

    /// The config being served, to pin one version for a whole tick.
    pub fn snapshot(&self) -> Option<Arc<Overrides>> {
        // A poisoned lock only means a writer panicked between two whole states; the value
        // inside is still one whole config.
        let guard = self.current.read().unwrap_or_else(|e| e.into_inner());
        guard.clone()
    }

    /// The version being served, if any.
    pub fn version(&self) -> Option<i64> {
        self.snapshot().map(|s| s.version())
    }

    /// Serve `overrides` from now on; returns the previous config.
    pub fn install(&self, overrides: Overrides) -> Option<Arc<Overrides>> {
        self.install_arc(Arc::new(overrides))
    }

    /// As [`OverridesHandle::install`], for a config already shared (e.g. by another handle).
    pub fn install_arc(&self, overrides: Arc<Overrides>) -> Option<Arc<Overrides>> {
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        // Returned, not dropped here: freeing a large config must not happen under the lock.
        guard.replace(overrides)
    }

    /// Stop serving any config (lookups fall back).
    pub fn clear(&self) -> Option<Arc<Overrides>> {
        let mut guard = self.current.write().unwrap_or_else(|e| e.into_inner());
        guard.take()
    }

    /// Parse, validate and index `text`, then swap it in. On error the previous config stays.
    /// Building happens outside the lock, so lookups never wait for it.
    pub fn load_json(&self, text: &str) -> Result<i64, ConfigError> {
        let overrides = Overrides::from_json(text)?;
        let version = overrides.version();
        self.install(overrides);
        Ok(version)
    }

    /// Load a config file and swap it in; on error the previous config keeps being served.
    pub fn load_file(&self, path: impl AsRef<Path>) -> Result<i64, ConfigError> {
        let overrides = Overrides::from_file(path)?;
        let version = overrides.version();
        self.install(overrides);
        Ok(version)
    }

    /// Load the active `learning_configs` row of `module`, unless it is the config already
    /// served (same module, version and checksum). Suitable for polling.
    #[cfg(feature = "sqlite")]
    pub fn load_sqlite(
        &self,
        conn: &rusqlite::Connection,
        module: &str,
    ) -> Result<Reload, ConfigError> {
        self.load_row(&crate::sqlite::read_active_row(conn, module)?)
    }

    /// Swap in the config of a `learning_configs` row read from any store (verified as
    /// [`Overrides::from_row`] does), unless it is the config already served.
    #[cfg(feature = "sqlite")]
    pub fn load_row(&self, row: &crate::sqlite::ConfigRow) -> Result<Reload, ConfigError> {
        let checksum = crate::hash::config_checksum(&row.config_data);
        if self.is_serving(&row.module, row.version, &checksum) {
            return Ok(Reload {
                version: row.version,
                changed: false,
            });
        }
        let overrides = Overrides::from_row(row)?;
        let version = overrides.version();
        self.install(overrides);
        Ok(Reload {
            version,
            changed: true,
        })
    }

    /// True when the config served is `module` v`version` whose text has this checksum: a poll
    /// that finds the same (module, version, checksum) active need not fetch or rebuild it.
    pub fn is_serving(&self, module: &str, version: i64, checksum: &str) -> bool {
        self.snapshot().is_some_and(|current| {
            current.module() == module
                && current.version() == version
                && current.checksum().eq_ignore_ascii_case(checksum.trim())
        })
    }

    /// [`OverridesHandle::load_sqlite`] from a database file, opened read-only (a mistyped path
    /// is an error, never a new empty store).
    #[cfg(feature = "sqlite")]
    pub fn load_sqlite_path(
        &self,
        path: impl AsRef<Path>,
        module: &str,
    ) -> Result<Reload, ConfigError> {
        self.load_sqlite(&crate::sqlite::open_read_only(path)?, module)
    }

    /// Look up through the current config. Without one, a neutral decision with the reason.
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

    /// [`Self::lookup`] into a caller-owned decision (no allocation once warm).
    pub fn lookup_into<S: ScopeView + ?Sized>(
        &self,
        pattern_key: &str,
        action_category: &str,
        scope: &S,
        out: &mut Decision,
    ) {
        match self.snapshot() {
            Some(config) => config.lookup_into(pattern_key, action_category, scope, out),
            None => {
                out.reset();
                out.fall_back("no learning config loaded");
            }
        }
    }

    /// Apply the current config to `action`; fails open.
    pub fn apply(&self, action: &ActionInput<'_>) -> AppliedAction {
        let mut out = AppliedAction::default();
        self.apply_into(action, &mut out);
        out
    }

    /// [`Self::apply`] into a caller-owned result (no allocation once warm).
    pub fn apply_into(&self, action: &ActionInput<'_>, out: &mut AppliedAction) {
        let snapshot = self.snapshot();
        apply_into(snapshot.as_deref(), action, out);
    }
}
