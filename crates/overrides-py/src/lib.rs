//! `learnloop_overrides._native`: PyO3 bindings of the `learnloop-overrides` runtime, so a Python
//! PM gets the same decision as `learnloop lookup --json` in microseconds. The Python package
//! (`python/learnloop_overrides`) re-exports these classes and adds the `compat` drop-in.

mod decision;
mod pg;
mod runtime;
mod scope;

use learnloop_overrides::synthetic;
use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use std::collections::BTreeMap;

create_exception!(
    learnloop_overrides,
    ConfigError,
    PyValueError,
    "A config could not be loaded (malformed, unknown schema version, checksum mismatch, no active version, unreadable store). Raised only by the `Overrides.from_*` constructors; an `OverridesHandle` keeps serving the previous config instead."
);

/// The Rust benchmark's synthetic config (`learnloop_overrides::synthetic`), as JSON text, so the
/// Python benchmark measures the very config the Rust figures were taken on.
#[pyfunction]
#[pyo3(signature = (overrides = 10_000, patterns = 40, max_dims = 4, seed = 42))]
fn _synthetic_config(overrides: usize, patterns: usize, max_dims: usize, seed: u64) -> String {
    synthetic::synthetic_config(synthetic::SyntheticSpec {
        patterns,
        overrides,
        max_dims,
        seed,
    })
    .to_json()
}

/// The Rust benchmark's synthetic actions: `(pattern_key, category, scope)` triples, each of the
/// 10 default dimensions present with probability `presence`.
#[pyfunction]
#[pyo3(signature = (n, presence = 1.0, patterns = 40, seed = 2024))]
fn _synthetic_actions(
    n: usize,
    presence: f64,
    patterns: usize,
    seed: u64,
) -> Vec<(String, &'static str, BTreeMap<String, String>)> {
    synthetic::synthetic_actions(patterns, n, presence, seed)
        .into_iter()
        .map(|a| (a.pattern_key, a.action_category, a.scope))
        .collect()
}

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<runtime::Overrides>()?;
    m.add_class::<runtime::OverridesHandle>()?;
    m.add_class::<runtime::Reload>()?;
    m.add_class::<decision::Decision>()?;
    m.add_class::<decision::Match>()?;
    m.add_class::<decision::AppliedAction>()?;
    m.add_function(wrap_pyfunction!(_synthetic_config, m)?)?;
    m.add_function(wrap_pyfunction!(_synthetic_actions, m)?)?;
    m.add_function(wrap_pyfunction!(runtime::_rust_lookup_latencies, m)?)?;
    m.add("ConfigError", m.py().get_type::<ConfigError>())?;
    m.add(
        "CONFIG_SCHEMA_VERSION",
        learnloop_overrides::CURRENT_SCHEMA_VERSION,
    )?;
    m.add(
        "LEVERS",
        learnloop_overrides::Lever::ALL
            .iter()
            .map(|l| l.name())
            .collect::<Vec<_>>(),
    )?;
    Ok(())
}
