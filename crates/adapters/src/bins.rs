//! Bins of numeric dimensions: fixed edges from the adapter, or quantile edges learned once from
//! the first batch that carries the dimension and frozen (the store keeps them; the CLI hands them
//! back on every later ingest). New data never re-bins history: frozen edges are only ever read.

use crate::spec::{Adapter, BinsText};
use crate::AdapterError;
use learnloop_model::strand::number_value;
use learnloop_overrides::{check_edges, NumericBins};
use serde_json::Value;
use std::collections::BTreeMap;

/// The bins in force, by dimension.
pub type BinSet = BTreeMap<String, NumericBins>;

/// Fewest values a quantile bin is learned from, on average: fewer would freeze noise for good.
pub const MIN_VALUES_PER_QUANTILE_BIN: usize = 25;

/// Significant digits quantile edges are rounded to, so labels stay readable (`12.35..30.1`).
pub const EDGE_SIGNIFICANT_DIGITS: i32 = 4;

/// Edges to freeze for a dimension not frozen yet.
#[derive(Debug, Clone, PartialEq)]
pub struct NewBins {
    /// The dimension.
    pub dim: String,
    /// `fixed` or `quantiles`.
    pub method: &'static str,
    /// The increasing edges.
    pub edges: Vec<f64>,
    /// Values the quantiles were learned from (0 for fixed edges).
    pub n_values: u64,
}

impl Adapter {
    /// The edges to freeze now: every binned dimension of the adapter missing from `frozen`
    /// (fixed edges as declared; quantiles from the decision records of `records`). A dimension
    /// already frozen with other fixed edges than the adapter declares is refused: its stored
    /// labels would change meaning.
    pub fn bins_to_freeze<'a>(
        &self,
        frozen: &BTreeMap<String, Vec<f64>>,
        records: impl Iterator<Item = &'a Value> + Clone,
    ) -> Result<Vec<NewBins>, AdapterError> {
        let mut out = Vec::new();
        for (dim, bins) in self.binned_dims() {
            match (bins, frozen.get(dim)) {
                (BinsText::Edges(edges), Some(stored)) if edges != stored => {
                    return Err(AdapterError::EdgesChanged {
                        dim: dim.to_string(),
                        stored: stored.clone(),
                        declared: edges.clone(),
                    })
                }
                (_, Some(_)) => {}
                (BinsText::Edges(edges), None) => out.push(NewBins {
                    dim: dim.to_string(),
                    method: "fixed",
                    edges: edges.clone(),
                    n_values: 0,
                }),
                // Outcomes alone need no bins: the quantiles wait for the first decisions.
                (BinsText::Quantiles(_), None) if !records.clone().any(|r| self.is_decision(r)) => {
                }
                (BinsText::Quantiles(k), None) => {
                    let values = self.decision_values(dim, records.clone());
                    let edges = quantile_edges(&values, *k).map_err(|why| {
                        AdapterError::CannotLearnBins {
                            dim: dim.to_string(),
                            why,
                        }
                    })?;
                    out.push(NewBins {
                        dim: dim.to_string(),
                        method: "quantiles",
                        edges,
                        n_values: values.len() as u64,
                    });
                }
            }
        }
        Ok(out)
    }

    /// The finite numbers `dim` takes in the decision records among `records`.
    fn decision_values<'a>(&self, dim: &str, records: impl Iterator<Item = &'a Value>) -> Vec<f64> {
        let field = &self.decision.scope[dim];
        records
            .filter(|r| self.is_decision(r))
            .filter_map(|r| {
                field
                    .templates
                    .iter()
                    .find_map(|t| t.resolve(r).ok().flatten())
            })
            .filter_map(|v| number_value(&v))
            .map(|x| x * field.scale.unwrap_or(1.0))
            .filter(|x| x.is_finite())
            .collect()
    }
}

/// `k`-quantile edges of `values` (linear interpolation between order statistics, type 7), rounded
/// to `EDGE_SIGNIFICANT_DIGITS` and deduplicated (ties in discrete data merge bins).
pub fn quantile_edges(values: &[f64], k: usize) -> Result<Vec<f64>, String> {
    let needed = k * MIN_VALUES_PER_QUANTILE_BIN;
    if values.len() < needed {
        return Err(format!(
            "{} finite values, {k} quantile bins need at least {needed}: ingest more records in the first batch, or declare fixed edges",
            values.len()
        ));
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let n = sorted.len();
    let mut edges: Vec<f64> = (1..k)
        .map(|i| {
            let h = (n - 1) as f64 * i as f64 / k as f64;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(n - 1);
            round_significant(sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]))
        })
        .collect();
    edges.dedup();
    // An edge at the minimum would leave its lower bin empty.
    edges.retain(|&e| e > sorted[0]);
    check_edges(&edges).map_err(|e| format!("the values are too concentrated to cut: {e}"))?;
    Ok(edges)
}

fn round_significant(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    let magnitude = x.abs().log10().floor() as i32;
    let decimals = EDGE_SIGNIFICANT_DIGITS - 1 - magnitude;
    // Scale by an exact power of ten: 1e-5 is not one, and 1221 / 1e-5 prints as
    // 122099999.99999999 (a bin label must read as the number it is).
    if decimals >= 0 {
        let scale = 10f64.powi(decimals);
        (x * scale).round() / scale
    } else {
        let scale = 10f64.powi(-decimals);
        (x / scale).round() * scale
    }
}

/// Build the bins in force from frozen edges.
pub fn bin_set(frozen: &BTreeMap<String, Vec<f64>>) -> Result<BinSet, AdapterError> {
    frozen
        .iter()
        .map(|(dim, edges)| {
            NumericBins::new(edges.clone())
                .map(|b| (dim.clone(), b))
                .map_err(|why| AdapterError::CannotLearnBins {
                    dim: dim.clone(),
                    why: format!("stored edges are unusable: {why}"),
                })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_edges_round_to_numbers_that_print_as_themselves() {
        for (x, rounded) in [
            (122_099_987.0, 122_100_000.0),
            (0.123_456, 0.1235),
            (-98_765.4, -98_770.0),
        ] {
            let r = round_significant(x);
            assert_eq!(r, rounded);
            assert_eq!(
                learnloop_overrides::edge_text(r),
                learnloop_overrides::edge_text(rounded)
            );
            assert!(!learnloop_overrides::edge_text(r).contains("9999"), "{r}");
        }
    }

    #[test]
    fn quartiles_of_one_to_hundred() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(quantile_edges(&values, 4).unwrap(), [25.75, 50.5, 75.25]);
    }

    #[test]
    fn ties_merge_and_too_few_values_are_refused() {
        let mut values = vec![0.0; 50];
        values.extend([1.0; 50]);
        assert_eq!(quantile_edges(&values, 4).unwrap(), [0.5, 1.0]);
        assert!(quantile_edges(&[1.0; 100], 4).is_err());
        assert!(quantile_edges(&[1.0, 2.0], 2)
            .unwrap_err()
            .contains("at least 50"));
    }

    #[test]
    fn rounding_keeps_four_significant_digits() {
        assert_eq!(round_significant(12.3456), 12.35);
        assert_eq!(round_significant(-0.00123456), -0.001235);
        assert_eq!(round_significant(98765.0), 98770.0);
    }
}
