//! `Overrides` (one loaded config version) and `OverridesHandle` (the config the PM serves,
//! hot-swapped). Loading parses and indexes a whole config, so it runs with the GIL released;
//! a lookup is shorter than a GIL hand-off between threads, so it keeps the GIL.

use crate::decision::{py_bool, py_option, AppliedAction, Decision};
use crate::scope::{type_name, ScopeItems};
use crate::ConfigError;
use learnloop_overrides as rt;
use pyo3::exceptions::{PyKeyError, PyTypeError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyMapping};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// One validated, indexed config version; immutable, safe to share between threads.
///
/// Loading raises `ConfigError` when the config is malformed, of an unknown schema version, or
/// absent; to fail open instead (keep serving the previous config, or none), load through an
/// `OverridesHandle`.
#[pyclass(frozen, module = "learnloop_overrides")]
pub struct Overrides(Arc<rt::Overrides>);

impl Overrides {
    fn loaded<E: std::fmt::Display + Send>(
        py: Python<'_>,
        load: impl Send + FnOnce() -> Result<rt::Overrides, E>,
    ) -> PyResult<Self> {
        py.detach(load)
            .map(|o| Self(Arc::new(o)))
            .map_err(|e| ConfigError::new_err(e.to_string()))
    }
}

#[pymethods]
impl Overrides {
    /// Parse, validate and index `config_data` JSON text (a `learning_configs.config_data`).
    #[staticmethod]
    fn from_json(py: Python<'_>, text: &str) -> PyResult<Self> {
        Self::loaded(py, || rt::Overrides::from_json(text))
    }

    /// Load `config_data` JSON from a file.
    #[staticmethod]
    fn from_file(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        Self::loaded(py, || rt::Overrides::from_file(path))
    }

    /// The active config of `module` in a learnloop SQLite store, opened read-only; the row's
    /// checksum, module and version are verified against its `config_data`.
    #[staticmethod]
    #[pyo3(signature = (path, module = "pm"))]
    fn from_sqlite(py: Python<'_>, path: PathBuf, module: &str) -> PyResult<Self> {
        Self::loaded(py, || rt::Overrides::from_sqlite_path(path, module))
    }

    /// The active config of `module` published in PostgreSQL by `learnloop config publish --to`
    /// (the `learning_configs` table, or `table`), verified like `from_sqlite`. `url` is
    /// `postgresql://USER:PASSWORD@HOST:PORT/DB?sslmode=require` (libpq's `sslmode` values; the
    /// password may come from `PGPASSWORD` instead). The password never appears in an error.
    #[staticmethod]
    #[pyo3(signature = (url, module = "pm", table = crate::pg::DEFAULT_TABLE))]
    fn from_postgres(py: Python<'_>, url: &str, module: &str, table: &str) -> PyResult<Self> {
        Self::loaded(py, || crate::pg::load(url, module, table))
    }

    #[getter]
    fn module(&self) -> &str {
        self.0.module()
    }

    #[getter]
    fn version(&self) -> i64 {
        self.0.version()
    }

    /// The as-of time (RFC 3339) of the run that produced this config.
    #[getter]
    fn as_of(&self) -> &str {
        &self.0.config().as_of
    }

    /// Checksum of the config text, as stored in `learning_configs.checksum`.
    #[getter]
    fn checksum(&self) -> &str {
        self.0.checksum()
    }

    /// Number of overrides.
    fn __len__(&self) -> usize {
        self.0.len()
    }

    /// The decision for an action of `pattern_key`/`category` with this `scope` (a mapping of
    /// dimension → str/int/float/bool/None, normalised like ingest). With `size_frac`, the
    /// decision also shows it before and after the size multiplier. Fails open: a bad category or
    /// scope value gives a neutral decision with `fallback_reason`.
    #[pyo3(signature = (pattern_key, category, scope, size_frac = None))]
    fn lookup(
        &self,
        pattern_key: &str,
        category: &str,
        scope: &Bound<'_, PyAny>,
        size_frac: Option<f64>,
    ) -> PyResult<Decision> {
        lookup(Some(&self.0), None, pattern_key, category, scope, size_frac)
    }

    /// Apply this config to the PM's action, a mapping with `pattern_key`, `action_category`,
    /// `size_frac`, and optionally `scope`, `decision_type` (default: the category; an
    /// `emergency_exit` is never resized), `a_value`, `e_value`.
    fn apply(&self, action: &Bound<'_, PyAny>) -> PyResult<AppliedAction> {
        apply(Some(&self.0), None, action)
    }

    fn __repr__(&self) -> String {
        format!(
            "Overrides(module={:?}, version={}, overrides={}, as_of={:?})",
            self.0.module(),
            self.0.version(),
            self.0.len(),
            self.0.config().as_of
        )
    }
}

/// What a reload did. True when it succeeded (`if handle.reload_sqlite(db): ...`).
#[pyclass(frozen, module = "learnloop_overrides", get_all)]
pub struct Reload {
    /// The version now served (`None` when nothing is served).
    version: Option<i64>,
    /// True when a new config was swapped in.
    changed: bool,
    /// Why the reload failed (the previous config is still served), else `None`.
    error: Option<String>,
}

#[pymethods]
impl Reload {
    #[getter]
    fn ok(&self) -> bool {
        self.error.is_none()
    }

    fn __bool__(&self) -> bool {
        self.error.is_none()
    }

    fn __repr__(&self) -> String {
        format!(
            "Reload(ok={}, version={}, changed={}, error={})",
            py_bool(self.error.is_none()),
            py_option(self.version),
            py_bool(self.changed),
            py_option(self.error.as_ref().map(|e| format!("{e:?}")))
        )
    }
}

/// The config the PM serves. `reload_*` swaps a new version in atomically while other threads
/// keep calling `lookup`/`apply` (each sees the old or the new version whole); a reload that fails
/// keeps the previous config and reports why. Never raises on a bad config: without any config,
/// lookups fall back with the reason the last load failed.
#[pyclass(frozen, module = "learnloop_overrides")]
pub struct OverridesHandle {
    handle: rt::OverridesHandle,
    last_error: Mutex<Option<String>>,
}

impl OverridesHandle {
    fn last_error(&self) -> Option<String> {
        self.last_error
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn record<E: std::fmt::Display>(&self, outcome: Result<rt::Reload, E>) -> Reload {
        let error = outcome.as_ref().err().map(ToString::to_string);
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error.clone();
        Reload {
            version: self.handle.version(),
            changed: outcome.is_ok_and(|r| r.changed),
            error,
        }
    }

    fn reload_with<E: std::fmt::Display + Send>(
        &self,
        py: Python<'_>,
        load: impl Send + FnOnce(&rt::OverridesHandle) -> Result<rt::Reload, E>,
    ) -> Reload {
        let outcome = py.detach(|| load(&self.handle));
        self.record(outcome)
    }
}

/// `rt::OverridesHandle::load_json`/`load_file` as a reload that always swaps.
fn swapped(version: Result<i64, rt::ConfigError>) -> Result<rt::Reload, rt::ConfigError> {
    version.map(|version| rt::Reload {
        version,
        changed: true,
    })
}

#[pymethods]
impl OverridesHandle {
    #[new]
    #[pyo3(signature = (overrides = None))]
    fn new(overrides: Option<&Overrides>) -> Self {
        let handle = rt::OverridesHandle::new();
        if let Some(o) = overrides {
            handle.install_arc(Arc::clone(&o.0));
        }
        Self {
            handle,
            last_error: Mutex::new(None),
        }
    }

    /// Load `config_data` JSON text and swap it in.
    fn reload_json(&self, py: Python<'_>, text: &str) -> Reload {
        self.reload_with(py, |h| swapped(h.load_json(text)))
    }

    /// Load `config_data` JSON from a file and swap it in.
    fn reload_file(&self, py: Python<'_>, path: PathBuf) -> Reload {
        self.reload_with(py, |h| swapped(h.load_file(path)))
    }

    /// Load the active config of `module` from a learnloop SQLite store, unless it is the one
    /// already served (same module, version and checksum: `changed` is then False). Cheap
    /// enough to poll.
    #[pyo3(signature = (path, module = "pm"))]
    fn reload_sqlite(&self, py: Python<'_>, path: PathBuf, module: &str) -> Reload {
        self.reload_with(py, |h| h.load_sqlite_path(path, module))
    }

    /// Load the active config of `module` from PostgreSQL (as `Overrides.from_postgres`), unless
    /// the active row's version and checksum are those already served: then only they are read
    /// (`changed` is False). One connection per call; poll every few seconds, not every lookup.
    #[pyo3(signature = (url, module = "pm", table = crate::pg::DEFAULT_TABLE))]
    fn reload_postgres(&self, py: Python<'_>, url: &str, module: &str, table: &str) -> Reload {
        self.reload_with(py, |h| crate::pg::reload(h, url, module, table))
    }

    /// Serve `overrides` from now on.
    fn install(&self, py: Python<'_>, overrides: &Overrides) {
        let config = Arc::clone(&overrides.0);
        // The previous config may be large: free it without the GIL.
        py.detach(|| drop(self.handle.install_arc(config)));
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Stop serving any config (lookups fall back, saying that no config is loaded rather than
    /// repeating an earlier reload's error).
    fn clear(&self, py: Python<'_>) {
        py.detach(|| drop(self.handle.clear()));
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// The config being served, to pin one version for a whole tick.
    fn snapshot(&self) -> Option<Overrides> {
        self.handle.snapshot().map(Overrides)
    }

    #[getter]
    fn version(&self) -> Option<i64> {
        self.handle.version()
    }

    /// Why the last reload failed, or `None` when it succeeded.
    #[getter(last_error)]
    fn get_last_error(&self) -> Option<String> {
        self.last_error()
    }

    /// As `Overrides.lookup`, through the config being served.
    #[pyo3(signature = (pattern_key, category, scope, size_frac = None))]
    fn lookup(
        &self,
        pattern_key: &str,
        category: &str,
        scope: &Bound<'_, PyAny>,
        size_frac: Option<f64>,
    ) -> PyResult<Decision> {
        let config = self.handle.snapshot();
        let why_none = config.is_none().then(|| self.last_error()).flatten();
        lookup(
            config.as_ref(),
            why_none,
            pattern_key,
            category,
            scope,
            size_frac,
        )
    }

    /// As `Overrides.apply`, through the config being served.
    fn apply(&self, action: &Bound<'_, PyAny>) -> PyResult<AppliedAction> {
        let config = self.handle.snapshot();
        let why_none = config.is_none().then(|| self.last_error()).flatten();
        apply(config.as_ref(), why_none, action)
    }

    fn __repr__(&self) -> String {
        format!(
            "OverridesHandle(version={}, last_error={})",
            py_option(self.handle.version()),
            py_option(self.last_error().map(|e| format!("{e:?}")))
        )
    }
}

/// The PM's action, borrowed from its Python mapping.
struct ActionFields<'py> {
    pattern_key: String,
    action_category: String,
    decision_type: Option<String>,
    scope: Bound<'py, PyAny>,
    size_frac: f64,
    a_value: Option<f64>,
    e_value: Option<f64>,
}

impl<'py> ActionFields<'py> {
    fn read(action: &Bound<'py, PyAny>) -> PyResult<Self> {
        let field = |key: &str| -> PyResult<Option<Bound<'py, PyAny>>> {
            let value = if let Ok(dict) = action.cast::<PyDict>() {
                dict.get_item(key)?
            } else if let Ok(mapping) = action.cast::<PyMapping>() {
                match mapping.get_item(key) {
                    Ok(v) => Some(v),
                    Err(e) if e.is_instance_of::<PyKeyError>(action.py()) => None,
                    Err(e) => return Err(e),
                }
            } else {
                return Err(PyTypeError::new_err(format!(
                    "action must be a mapping, got {}",
                    type_name(action)
                )));
            };
            Ok(value.filter(|v| !v.is_none()))
        };
        let required = |key: &str| -> PyResult<Bound<'py, PyAny>> {
            field(key)?.ok_or_else(|| PyKeyError::new_err(format!("action has no {key:?}")))
        };
        let optional_f64 = |key: &str| -> PyResult<Option<f64>> {
            field(key)?.map(|v| v.extract::<f64>()).transpose()
        };
        Ok(Self {
            pattern_key: required("pattern_key")?.extract()?,
            action_category: required("action_category")?.extract()?,
            decision_type: field("decision_type")?.map(|v| v.extract()).transpose()?,
            scope: field("scope")?.unwrap_or_else(|| action.py().None().into_bound(action.py())),
            size_frac: required("size_frac")?.extract()?,
            a_value: optional_f64("a_value")?,
            e_value: optional_f64("e_value")?,
        })
    }
}

/// The action without its scope: the scope is normalised from Python only when deciding.
struct ActionParts<'s> {
    pattern_key: &'s str,
    action_category: &'s str,
    decision_type: &'s str,
    size_frac: f64,
    a_value: Option<f64>,
    e_value: Option<f64>,
}

impl ActionParts<'_> {
    fn with_scope<'a>(&'a self, scope: &'a dyn rt::ScopeView) -> rt::ActionInput<'a> {
        rt::ActionInput {
            pattern_key: self.pattern_key,
            action_category: self.action_category,
            decision_type: self.decision_type,
            scope,
            size_frac: self.size_frac,
            a_value: self.a_value,
            e_value: self.e_value,
        }
    }
}

/// The CLI's `lookup`: apply with the category as decision type, no aggression values, and the
/// size fraction shown only when given.
fn lookup(
    config: Option<&Arc<rt::Overrides>>,
    why_none: Option<String>,
    pattern_key: &str,
    category: &str,
    scope: &Bound<'_, PyAny>,
    size_frac: Option<f64>,
) -> PyResult<Decision> {
    let items = ScopeItems::collect(scope)?;
    let parts = ActionParts {
        pattern_key,
        action_category: category,
        decision_type: category,
        size_frac: size_frac.unwrap_or(0.0),
        a_value: None,
        e_value: None,
    };
    let applied = decide(config, why_none, &items, &parts);
    Ok(Decision::new(applied, size_frac.is_some()))
}

fn apply(
    config: Option<&Arc<rt::Overrides>>,
    why_none: Option<String>,
    action: &Bound<'_, PyAny>,
) -> PyResult<AppliedAction> {
    let fields = ActionFields::read(action)?;
    let items = ScopeItems::collect(&fields.scope)?;
    let parts = ActionParts {
        pattern_key: &fields.pattern_key,
        action_category: &fields.action_category,
        decision_type: fields
            .decision_type
            .as_deref()
            .unwrap_or(&fields.action_category),
        size_frac: fields.size_frac,
        a_value: fields.a_value,
        e_value: fields.e_value,
    };
    Ok(AppliedAction::new(decide(config, why_none, &items, &parts)))
}

/// Apply `config` to the action over its normalised scope. Fails open on a scope that cannot be
/// normalised; without a config, gives the reason the last load failed (as `learnloop lookup`
/// does).
fn decide(
    config: Option<&Arc<rt::Overrides>>,
    why_none: Option<String>,
    items: &ScopeItems<'_>,
    parts: &ActionParts<'_>,
) -> rt::AppliedAction {
    let scope = match items.normalise() {
        Ok(scope) => scope,
        Err(reason) => {
            let empty: [(&str, &str); 0] = [];
            let mut applied = apply_to(None, &parts.with_scope(&empty));
            applied.decision.config_version = config.map(|c| c.version());
            applied.decision.fallback_reason = Some(reason);
            return applied;
        }
    };
    let mut applied = apply_to(config, &parts.with_scope(&scope));
    if let (None, Some(reason)) = (config, why_none) {
        applied.decision.fallback_reason = Some(reason);
    }
    applied
}

/// Typical match counts fit without the vector growing during the lookup.
const MATCHES_CAPACITY: usize = 8;

fn apply_to(
    config: Option<&Arc<rt::Overrides>>,
    action: &rt::ActionInput<'_>,
) -> rt::AppliedAction {
    let mut out = rt::AppliedAction::default();
    match config {
        Some(config) => {
            out.decision.matches.reserve(MATCHES_CAPACITY);
            config.apply_into(action, &mut out);
        }
        None => rt::OverridesHandle::new().apply_into(action, &mut out),
    }
    out
}

/// `(pattern_key, category, scope)` of a benchmark action.
type BenchAction<S> = (String, String, S);

/// Per-lookup latencies (ns, timer not subtracted) of the same lookups made from Rust, with the
/// scope as `(String, String)` pairs: the Python benchmark's "beside the Rust figure" row,
/// measured in the same process under the same machine load.
#[pyfunction]
pub(crate) fn _rust_lookup_latencies(
    py: Python<'_>,
    overrides: &Overrides,
    actions: Vec<BenchAction<std::collections::BTreeMap<String, String>>>,
    n: usize,
) -> Vec<u64> {
    let actions: Vec<BenchAction<Vec<(String, String)>>> = actions
        .into_iter()
        .map(|(p, c, s)| (p, c, s.into_iter().collect()))
        .collect();
    let config = Arc::clone(&overrides.0);
    if actions.is_empty() {
        return Vec::new();
    }
    py.detach(move || {
        let mut decision = rt::Decision::default();
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let (pattern, category, scope) = &actions[i % actions.len()];
            let t = std::time::Instant::now();
            config.lookup_into(pattern, category, scope, &mut decision);
            std::hint::black_box(&decision);
            out.push(t.elapsed().as_nanos() as u64);
        }
        out
    })
}
