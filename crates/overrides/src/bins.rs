//! Numeric scope dimensions cut into bins. Adapters (`learnloop ingest --adapter`) store the bin
//! *label* of a numeric field as the dimension's value; the config carries each binned dimension's
//! edges (`scope_bins`), so the PM may hand the raw number to a lookup and get the same label.
//!
//! Edges `e0 < e1 < … < ek` make k + 1 half-open bins: `..e0`, `e0..e1`, …, `ek..` (`a..b` holds
//! `a ≤ x < b`). Labels are built here only, so ingest and lookup can never disagree.
//!
//! ```
//! # use learnloop_overrides::NumericBins;
//! let bins = NumericBins::new(vec![10.0, 30.0, 70.0]).unwrap();
//! assert_eq!(bins.label_of(5.0), Some("..10"));
//! assert_eq!(bins.label_of(10.0), Some("10..30"));
//! assert_eq!(bins.label_of(99.5), Some("70.."));
//! assert_eq!(bins.label_of(f64::NAN), None);
//! ```

use crate::hash::str_eq;
use crate::scope::ScopeView;
use std::fmt::Write;

/// Most edges a binned dimension may have: a bin is a category, and hundreds of them would only
/// split the trades too thin to learn anything.
pub const MAX_BIN_EDGES: usize = 63;

/// The edges of one binned dimension, with their labels precomputed (no allocation per lookup).
#[derive(Debug, Clone, PartialEq)]
pub struct NumericBins {
    edges: Vec<f64>,
    labels: Vec<String>,
}

impl NumericBins {
    /// Bins for `edges`, which must be finite and strictly increasing (1 to [`MAX_BIN_EDGES`]).
    pub fn new(edges: Vec<f64>) -> Result<Self, String> {
        check_edges(&edges)?;
        let mut labels = Vec::with_capacity(edges.len() + 1);
        labels.push(format!("..{}", edge_text(edges[0])));
        for pair in edges.windows(2) {
            labels.push(format!("{}..{}", edge_text(pair[0]), edge_text(pair[1])));
        }
        labels.push(format!("{}..", edge_text(edges[edges.len() - 1])));
        Ok(Self { edges, labels })
    }

    /// The bin edges, increasing.
    pub fn edges(&self) -> &[f64] {
        &self.edges
    }

    /// Every label, lowest bin first.
    pub fn labels(&self) -> &[String] {
        &self.labels
    }

    /// The label of the bin holding `x`; `None` for NaN or ±∞ (no bin: the dimension is absent).
    pub fn label_of(&self, x: f64) -> Option<&str> {
        if !x.is_finite() {
            return None;
        }
        let bin = self.edges.partition_point(|&e| e <= x);
        Some(&self.labels[bin])
    }

    /// The label for a scope value: a number is binned, anything else (already a label, or text)
    /// is returned as it is.
    pub fn label_of_text<'a>(&'a self, value: &'a str) -> Option<&'a str> {
        match value.trim().parse::<f64>() {
            Ok(x) => self.label_of(x),
            Err(_) => Some(value),
        }
    }
}

/// Why `edges` cannot bin a dimension, if they cannot.
pub fn check_edges(edges: &[f64]) -> Result<(), String> {
    if edges.is_empty() || edges.len() > MAX_BIN_EDGES {
        return Err(format!(
            "{} edges: expected 1 to {MAX_BIN_EDGES}",
            edges.len()
        ));
    }
    if let Some(bad) = edges.iter().find(|e| !e.is_finite()) {
        return Err(format!("edge {bad} is not a finite number"));
    }
    if let Some(pair) = edges.windows(2).find(|p| p[0] >= p[1]) {
        return Err(format!(
            "edges must increase strictly, got {} then {}",
            pair[0], pair[1]
        ));
    }
    Ok(())
}

/// An edge as a label shows it: integers without a fraction, others in the shortest form that
/// reads back to the same number (`-0` is `0`).
pub fn edge_text(edge: f64) -> String {
    let mut out = String::new();
    if edge == 0.0 {
        out.push('0');
    } else if edge.fract() == 0.0 && edge.abs() < 9.0e15 {
        let _ = write!(out, "{}", edge as i64);
    } else {
        let _ = write!(out, "{edge}");
    }
    out
}

/// A scope whose binned dimensions answer with their bin label when the PM passed a number.
pub(crate) struct BinnedScope<'a, S: ?Sized> {
    scope: &'a S,
    bins: &'a [(String, NumericBins)],
}

impl<'a, S: ScopeView + ?Sized> BinnedScope<'a, S> {
    pub(crate) fn new(scope: &'a S, bins: &'a [(String, NumericBins)]) -> Self {
        Self { scope, bins }
    }
}

impl<S: ScopeView + ?Sized> ScopeView for BinnedScope<'_, S> {
    fn get(&self, dim: &str) -> Option<&str> {
        let value = self.scope.get(dim)?;
        match self.bins.iter().find(|(binned, _)| str_eq(binned, dim)) {
            Some((_, bins)) => bins.label_of_text(value),
            None => Some(value),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_number_falls_in_exactly_the_bin_its_label_names() {
        let bins = NumericBins::new(vec![-1.5, 0.0, 2.0, 1e6]).unwrap();
        assert_eq!(
            bins.labels(),
            ["..-1.5", "-1.5..0", "0..2", "2..1000000", "1000000.."]
        );
        let cases = [
            (-1e9, "..-1.5"),
            (-1.5, "-1.5..0"),
            (-0.0, "0..2"),
            (1.999, "0..2"),
            (2.0, "2..1000000"),
            (1e6, "1000000.."),
        ];
        for (x, label) in cases {
            assert_eq!(bins.label_of(x), Some(label), "{x}");
        }
        assert_eq!(bins.label_of(f64::INFINITY), None);
        assert_eq!(bins.label_of_text(" 2.5 "), Some("2..1000000"));
        assert_eq!(bins.label_of_text("0..2"), Some("0..2"));
        assert_eq!(bins.label_of_text("NaN"), None);
    }

    #[test]
    fn a_lookup_bins_raw_numbers_with_the_configs_edges() {
        let config = r#"{"schema_version": 1, "module": "packets", "version": 1,
          "as_of": "2026-06-01T00:00:00Z", "scope_bins": {"rsi_2": [10, 30]},
          "pattern_overrides": [{"override_id": "o1", "pattern_key": "a.b.c",
            "action_category": "entry", "scope": {"regime": "bull", "rsi_2": "..10"},
            "levers": {"size_mult": 1.3}, "confidence": 0.5, "q_value": 0.01, "n_trades": 40}]}"#;
        let overrides = crate::Overrides::from_json(config).unwrap();
        let size = |rsi: &str| {
            let scope = [("regime", "bull"), ("rsi_2", rsi)];
            let indexed = overrides.lookup("a.b.c", "entry", &scope);
            let scanned = overrides.lookup_scan("a.b.c", "entry", &scope);
            assert_eq!(indexed.size_mult, scanned.size_mult, "{rsi}");
            indexed.size_mult
        };
        assert_eq!(size("4.2"), 1.3);
        assert_eq!(size("..10"), 1.3);
        assert_eq!(size("10"), 1.0);
        assert_eq!(size("NaN"), 1.0);
        let bad = config.replace("[10, 30]", "[30, 10]");
        assert!(crate::Overrides::from_json(&bad)
            .unwrap_err()
            .to_string()
            .contains("scope_bins.rsi_2"));
    }

    #[test]
    fn bad_edges_are_refused_with_the_reason() {
        assert!(NumericBins::new(vec![]).is_err());
        assert!(NumericBins::new(vec![1.0, 1.0])
            .unwrap_err()
            .contains("increase"));
        assert!(NumericBins::new(vec![f64::NAN])
            .unwrap_err()
            .contains("finite"));
        assert!(NumericBins::new(vec![0.0; MAX_BIN_EDGES + 1]).is_err());
    }
}
