//! The Python result objects. Each wraps the Rust value and builds Python objects only for the
//! attributes actually read, so a lookup costs one object allocation.

use learnloop_overrides as rt;
use learnloop_overrides::{DecisionRecord, Lever, Levers, MatchRecord};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::collections::BTreeMap;

/// The runtime decision for one action, as `learnloop lookup --json` reports it.
///
/// `size_mult` and `levers` are the blended levers (neutral when nothing matched or the lookup
/// failed open); `matches` explains them; `fallback_reason` says why the action was left unchanged
/// (no usable config, learning switched off, bad input), else `None`. `to_dict()` equals the
/// `lookup --json` object; save it with the PM's decision to reproduce it later.
#[pyclass(frozen, module = "learnloop_overrides")]
pub struct Decision {
    applied: rt::AppliedAction,
    size_frac_given: bool,
}

impl Decision {
    pub(crate) fn new(applied: rt::AppliedAction, size_frac_given: bool) -> Self {
        Self {
            applied,
            size_frac_given,
        }
    }

    fn decision(&self) -> &rt::Decision {
        &self.applied.decision
    }

    fn record(&self) -> DecisionRecord {
        DecisionRecord::new(&self.applied, self.size_frac_given)
    }
}

#[pymethods]
impl Decision {
    /// Version of the config that decided; `None` when no config was loaded.
    #[getter]
    fn config_version(&self) -> Option<i64> {
        self.decision().config_version
    }

    /// The blended size multiplier (1.0 when no override carries one).
    #[getter]
    fn size_mult(&self) -> f64 {
        self.decision().size_mult
    }

    /// Every lever some matched override carries, blended and clamped to its bounds.
    #[getter]
    fn levers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        levers_dict(py, &self.decision().levers)
    }

    /// The size fraction given to `lookup` (`None` when none was given).
    #[getter]
    fn size_frac_before(&self) -> Option<f64> {
        self.size_frac_given
            .then_some(self.applied.size_frac_before)
    }

    /// `clamp(size_frac × size_mult, 0, 1)`; unchanged when the lookup fell back.
    #[getter]
    fn size_frac_after(&self) -> Option<f64> {
        self.size_frac_given.then_some(self.applied.size_frac_after)
    }

    /// The overrides that matched, most specific first, then by override id.
    #[getter]
    fn matches(&self) -> Vec<Match> {
        self.decision()
            .matches
            .iter()
            .map(|m| Match(m.clone()))
            .collect()
    }

    /// Why the action was left unchanged, or `None`.
    #[getter]
    fn fallback_reason(&self) -> Option<&str> {
        self.decision().fallback_reason.as_deref()
    }

    /// True when the lookup failed open or learning is switched off for this action.
    #[getter]
    fn fell_back(&self) -> bool {
        self.decision().fell_back()
    }

    /// One blended lever by name, or its neutral value when no match carries it.
    fn lever(&self, name: &str) -> PyResult<f64> {
        Ok(self.decision().lever(lever_named(name)?))
    }

    /// The `learnloop lookup --json` object as Python values.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        record_dict(py, &self.record())
    }

    /// The `learnloop lookup --json` object as compact JSON text.
    fn to_json(&self) -> PyResult<String> {
        serde_json::to_string(&self.record()).map_err(|e| PyValueError::new_err(e.to_string()))
    }

    fn __repr__(&self) -> String {
        let d = self.decision();
        format!(
            "Decision(config_version={}, size_mult={:?}, matches={}, fallback_reason={})",
            py_option(d.config_version),
            d.size_mult,
            d.matches.len(),
            py_option(d.fallback_reason.as_ref().map(|r| format!("{r:?}")))
        )
    }
}

/// One override that matched an action, with its blend weight
/// `confidence × (1 + dims)^alpha`.
#[pyclass(frozen, module = "learnloop_overrides")]
pub struct Match(rt::Match);

#[pymethods]
impl Match {
    #[getter]
    fn override_id(&self) -> &str {
        self.0.override_id()
    }

    /// The override's scope (dimension → value); empty at the pattern's root.
    #[getter]
    fn scope(&self) -> BTreeMap<String, String> {
        self.0.scope().clone()
    }

    #[getter]
    fn weight(&self) -> f64 {
        self.0.weight
    }

    /// The override's own levers, before blending.
    #[getter]
    fn levers<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        levers_dict(py, self.0.levers())
    }

    /// The lessons the override was built from.
    #[getter]
    fn lesson_keys(&self) -> Vec<String> {
        self.0.lesson_keys().to_vec()
    }

    /// The latent factor the override stands for, if it merged one.
    #[getter]
    fn factor_id(&self) -> Option<&str> {
        self.0.factor_id()
    }

    /// `(1 − q_value) · n_trades / (n_trades + 25)`, as the materializer wrote it.
    #[getter]
    fn confidence(&self) -> f64 {
        self.0.matched().confidence
    }

    #[getter]
    fn q_value(&self) -> f64 {
        self.0.matched().q_value
    }

    #[getter]
    fn n_trades(&self) -> u64 {
        self.0.matched().n_trades
    }

    /// This match as it appears in `Decision.to_dict()["matches"]`.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        match_dict(py, &MatchRecord::from(&self.0))
    }

    fn __repr__(&self) -> String {
        format!(
            "Match(override_id={:?}, weight={}, scope={:?})",
            self.0.override_id(),
            self.0.weight,
            self.0.scope()
        )
    }
}

/// An action after learning: the before/after values and the decision that explains them.
/// Emergency exits and failed lookups come back unchanged, with `decision.fallback_reason` set.
#[pyclass(frozen, module = "learnloop_overrides")]
pub struct AppliedAction(rt::AppliedAction);

impl AppliedAction {
    pub(crate) fn new(applied: rt::AppliedAction) -> Self {
        Self(applied)
    }
}

#[pymethods]
impl AppliedAction {
    #[getter]
    fn size_frac_before(&self) -> f64 {
        self.0.size_frac_before
    }

    /// `clamp(size_frac × size_mult, 0, 1)`.
    #[getter]
    fn size_frac_after(&self) -> f64 {
        self.0.size_frac_after
    }

    #[getter]
    fn a_value_before(&self) -> Option<f64> {
        self.0.a_value_before
    }

    /// `a_value × entry_aggression_mult`.
    #[getter]
    fn a_value_after(&self) -> Option<f64> {
        self.0.a_value_after
    }

    #[getter]
    fn e_value_before(&self) -> Option<f64> {
        self.0.e_value_before
    }

    /// `e_value × exit_aggression_mult`.
    #[getter]
    fn e_value_after(&self) -> Option<f64> {
        self.0.e_value_after
    }

    /// True when any value changed.
    #[getter]
    fn changed(&self) -> bool {
        self.0.changed()
    }

    #[getter]
    fn decision(&self) -> Decision {
        Decision::new(self.0.clone(), true)
    }

    /// The decision's `lookup --json` object plus the aggression values before and after.
    fn to_dict<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let dict = record_dict(py, &DecisionRecord::new(&self.0, true))?;
        dict.set_item("a_value_before", self.0.a_value_before)?;
        dict.set_item("a_value_after", self.0.a_value_after)?;
        dict.set_item("e_value_before", self.0.e_value_before)?;
        dict.set_item("e_value_after", self.0.e_value_after)?;
        Ok(dict)
    }

    fn __repr__(&self) -> String {
        format!(
            "AppliedAction(size_frac {:?} -> {:?}, changed={}, fallback_reason={})",
            self.0.size_frac_before,
            self.0.size_frac_after,
            py_bool(self.0.changed()),
            py_option(
                self.0
                    .decision
                    .fallback_reason
                    .as_ref()
                    .map(|r| format!("{r:?}"))
            )
        )
    }
}

pub(crate) fn lever_named(name: &str) -> PyResult<Lever> {
    Lever::from_name(name).ok_or_else(|| {
        let known: Vec<&str> = Lever::ALL.iter().map(|l| l.name()).collect();
        PyValueError::new_err(format!(
            "unknown lever {name:?}: expected one of {}",
            known.join(", ")
        ))
    })
}

/// The present levers, in the vocabulary's order (as the JSON lists them).
fn levers_dict<'py>(py: Python<'py>, levers: &Levers) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for (lever, value) in levers.iter() {
        dict.set_item(lever.name(), value)?;
    }
    Ok(dict)
}

fn match_dict<'py>(py: Python<'py>, m: &MatchRecord) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("scope", &m.scope)?;
    dict.set_item("weight", m.weight)?;
    dict.set_item("levers", levers_dict(py, &m.levers)?)?;
    dict.set_item("lesson_keys", &m.lesson_keys)?;
    dict.set_item("factor_id", m.factor_id.as_deref())?;
    Ok(dict)
}

fn record_dict<'py>(py: Python<'py>, r: &DecisionRecord) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    dict.set_item("config_version", r.config_version)?;
    dict.set_item("size_mult", r.size_mult)?;
    dict.set_item("levers", levers_dict(py, &r.levers)?)?;
    dict.set_item("size_frac_before", r.size_frac_before)?;
    dict.set_item("size_frac_after", r.size_frac_after)?;
    let matches = r
        .matches
        .iter()
        .map(|m| match_dict(py, m))
        .collect::<PyResult<Vec<_>>>()?;
    dict.set_item("matches", PyList::new(py, matches)?)?;
    dict.set_item("fallback_reason", r.fallback_reason.as_deref())?;
    Ok(dict)
}

/// `None` or the value, as Python prints it in a repr.
pub(crate) fn py_option<T: std::fmt::Display>(value: Option<T>) -> String {
    value.map_or_else(|| "None".to_string(), |v| v.to_string())
}

pub(crate) fn py_bool(value: bool) -> &'static str {
    if value {
        "True"
    } else {
        "False"
    }
}
