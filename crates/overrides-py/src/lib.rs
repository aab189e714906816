//! `learnloop_overrides._native`: PyO3 bindings of the `learnloop-overrides` runtime, so a Python
//! PM gets the same decision as `learnloop lookup --json` in microseconds. The Python package
//! (`python/learnloop_overrides`) re-exports these classes and adds the `compat` drop-in.

mod decision;
mod runtime;
mod scope;

use pyo3::create_exception;
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

create_exception!(
    learnloop_overrides,
    ConfigError,
    PyValueError,
    "A config could not be loaded (malformed, unknown schema version, checksum mismatch, no active version, unreadable store). Raised only by the `Overrides.from_*` constructors; an `OverridesHandle` keeps serving the previous config instead."
);

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add_class::<runtime::Overrides>()?;
    m.add_class::<runtime::OverridesHandle>()?;
    m.add_class::<runtime::Reload>()?;
    m.add_class::<decision::Decision>()?;
    m.add_class::<decision::Match>()?;
    m.add_class::<decision::AppliedAction>()?;
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
