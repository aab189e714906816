//! A Python scope mapping as a [`ScopeView`], normalised exactly as `learnloop` normalises a
//! scope at ingest and in `lookup --scope JSON` (model's `Scope::from_json`): keys trimmed (empty
//! ones dropped); `None`, `""` and any case of `"unknown"` mean absent; strings trimmed; booleans
//! `true`/`false`; integers in decimal; floats with an integral value without a fraction
//! (`2.0` → `2`), others in the shortest round-trip form (`0.50` → `0.5`).
//!
//! String keys and values are borrowed from the Python objects, so a scope of strings costs no
//! allocation beyond the pair vectors.

use learnloop_overrides::ScopeView;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyMapping, PyString};
use std::borrow::Cow;

/// The scope's `(key, value)` objects, kept alive while the normalised pairs borrow from them.
pub(crate) struct ScopeItems<'py>(Vec<(Bound<'py, PyAny>, Bound<'py, PyAny>)>);

impl<'py> ScopeItems<'py> {
    /// The items of a dict, any other `Mapping`, or `None` (an empty scope). Anything else is a
    /// programmer error: `TypeError`.
    pub(crate) fn collect(scope: &Bound<'py, PyAny>) -> PyResult<Self> {
        if let Ok(dict) = scope.cast::<PyDict>() {
            return Ok(Self(dict.iter().collect()));
        }
        if scope.is_none() {
            return Ok(Self(Vec::new()));
        }
        let Ok(mapping) = scope.cast::<PyMapping>() else {
            return Err(PyTypeError::new_err(format!(
                "scope must be a mapping of dimension -> value, got {}",
                type_name(scope)
            )));
        };
        let items = mapping.items()?;
        let mut out = Vec::with_capacity(items.len());
        for item in items.iter() {
            out.push(item.extract::<(Bound<'py, PyAny>, Bound<'py, PyAny>)>()?);
        }
        Ok(Self(out))
    }

    /// The normalised scope, or why it cannot be one (a message naming the dimension).
    pub(crate) fn normalise(&self) -> Result<PyScope<'_>, String> {
        let mut pairs = Vec::with_capacity(self.0.len());
        for (key, value) in &self.0 {
            let Some(key) = key.cast::<PyString>().ok().and_then(|k| k.to_str().ok()) else {
                return Err(format!(
                    "scope keys must be str, got {} ({})",
                    type_name(key),
                    repr(key)
                ));
            };
            let key = trim(key);
            if key.is_empty() {
                continue;
            }
            if let Some(value) = normalise_value(key, value)? {
                pairs.push((key, value));
            }
        }
        Ok(PyScope { pairs })
    }
}

/// A normalised scope: present dimensions only.
pub(crate) struct PyScope<'a> {
    pairs: Vec<(&'a str, Cow<'a, str>)>,
}

impl ScopeView for PyScope<'_> {
    fn get(&self, dim: &str) -> Option<&str> {
        // Length and first byte rule out most keys without a call to memcmp.
        let first = dim.as_bytes().first();
        self.pairs
            .iter()
            .find(|(d, _)| d.len() == dim.len() && d.as_bytes().first() == first && *d == dim)
            .map(|(_, v)| v.as_ref())
    }
}

/// `str::trim`, skipping its char-by-char scan in the usual case: both ends printable ASCII.
fn trim(text: &str) -> &str {
    match (text.as_bytes().first(), text.as_bytes().last()) {
        (Some(a), Some(z)) if a.is_ascii_graphic() && z.is_ascii_graphic() => text,
        _ => text.trim(),
    }
}

/// One value: `Ok(None)` means absent.
fn normalise_value<'a>(
    dim: &str,
    value: &'a Bound<'_, PyAny>,
) -> Result<Option<Cow<'a, str>>, String> {
    if value.is_none() {
        return Ok(None);
    }
    if let Ok(text) = value.cast::<PyString>() {
        let text = text
            .to_str()
            .map_err(|e| format!("scope dimension {dim:?}: {e}"))?;
        let text = trim(text);
        let absent = text.is_empty() || text.eq_ignore_ascii_case("unknown");
        return Ok((!absent).then_some(Cow::Borrowed(text)));
    }
    if value.is_instance_of::<PyBool>() {
        return Ok(Some(Cow::Borrowed(if value.is_truthy().unwrap_or(false) {
            "true"
        } else {
            "false"
        })));
    }
    let number = if value.is_instance_of::<PyInt>() {
        integer_text(value)
    } else if value.is_instance_of::<PyFloat>() {
        value.extract::<f64>().ok().and_then(float_text)
    } else {
        // NumPy scalars and other numbers: integers through `__index__`, reals through
        // `__float__`.
        value
            .extract::<i64>()
            .ok()
            .map(|i| i.to_string())
            .or_else(|| value.extract::<f64>().ok().and_then(float_text))
    };
    number.map(|n| Some(Cow::Owned(n))).ok_or_else(|| {
        format!(
            "scope dimension {dim:?} has a non-categorical value {}: expected a string, number or boolean",
            repr(value)
        )
    })
}

/// As JSON text would give it: an integer beyond 64 bits reads as the nearest float.
fn integer_text(value: &Bound<'_, PyAny>) -> Option<String> {
    if let Ok(i) = value.extract::<i64>() {
        return Some(i.to_string());
    }
    if let Ok(u) = value.extract::<u64>() {
        return Some(u.to_string());
    }
    value.extract::<f64>().ok().and_then(float_text)
}

/// The canonical text of a float; `None` for NaN and infinities (not valid JSON either).
fn float_text(f: f64) -> Option<String> {
    if !f.is_finite() {
        return None;
    }
    Some(if f.fract() == 0.0 && f.abs() < 9.0e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    })
}

pub(crate) fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_string())
}

fn repr(obj: &Bound<'_, PyAny>) -> String {
    obj.repr()
        .map(|r| r.to_string())
        .unwrap_or_else(|_| "<unprintable>".to_string())
}
