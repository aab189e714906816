//! `adapter_bins`: the frozen bin edges of numeric scope dimensions (one row per dimension, written
//! once by the first ingest that needs it, never updated).

use crate::{Result, StoreError};
use rusqlite::{params, Connection};
use serde::Serialize;
use std::collections::BTreeMap;

/// One binned dimension as it was frozen.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FrozenBins {
    /// The numeric dimension.
    pub dim: String,
    /// The adapter that froze it.
    pub adapter: String,
    /// How the edges were chosen: `fixed` (the adapter's own) or `quantiles` (learned).
    pub method: String,
    /// The increasing bin edges.
    pub edges: Vec<f64>,
    /// Values the quantiles were learned from (0 for fixed edges).
    pub n_values: u64,
    /// Wall-clock time the bins were frozen.
    pub frozen_at: String,
}

/// Every frozen dimension, by name.
pub fn all(conn: &Connection) -> Result<BTreeMap<String, FrozenBins>> {
    let mut stmt = conn.prepare(
        "SELECT dim, adapter, method, edges, n_values, frozen_at FROM adapter_bins ORDER BY dim",
    )?;
    let rows = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, i64>(4)?,
            r.get::<_, String>(5)?,
        ))
    })?;
    let mut out = BTreeMap::new();
    for row in rows {
        let (dim, adapter, method, edges_text, n_values, frozen_at) = row?;
        let edges: Vec<f64> = serde_json::from_str(&edges_text).map_err(|e| {
            StoreError::Corrupt(format!("adapter_bins.edges of {dim:?} ({edges_text}): {e}"))
        })?;
        let bins = FrozenBins {
            dim: dim.clone(),
            adapter,
            method,
            edges,
            n_values: n_values.max(0) as u64,
            frozen_at,
        };
        out.insert(dim, bins);
    }
    Ok(out)
}

/// The frozen dimensions `module`'s actions were binned on (see [`record_binned_modules`]): the
/// edges its config carries for the runtime to bin raw numbers.
pub fn of_module(conn: &Connection, module: &str) -> Result<BTreeMap<String, FrozenBins>> {
    let dims = crate::text_rows(
        conn,
        "SELECT dim FROM adapter_bin_modules WHERE module = ?1 ORDER BY dim",
        [module],
    )?;
    let mut frozen = all(conn)?;
    frozen.retain(|dim, _| dims.contains(dim));
    Ok(frozen)
}

/// Record that the actions of `modules` were stored with `dims` cut into their frozen bins.
/// Idempotent.
pub fn record_binned_modules<'a>(
    conn: &Connection,
    dims: impl IntoIterator<Item = &'a str>,
    modules: &std::collections::BTreeSet<String>,
) -> Result<()> {
    let mut stmt =
        conn.prepare("INSERT OR IGNORE INTO adapter_bin_modules (dim, module) VALUES (?1, ?2)")?;
    for dim in dims {
        for module in modules {
            stmt.execute(params![dim, module])?;
        }
    }
    Ok(())
}

/// Freeze a dimension's edges. A dimension already frozen is an error (the caller checks first):
/// history was binned with the stored edges, and re-binning would change what its labels mean.
pub fn freeze(conn: &Connection, bins: &FrozenBins) -> Result<()> {
    let edges = serde_json::to_string(&bins.edges)
        .map_err(|e| StoreError::Corrupt(format!("edges of {:?}: {e}", bins.dim)))?;
    conn.execute(
        "INSERT INTO adapter_bins (dim, adapter, method, edges, n_values, frozen_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            bins.dim,
            bins.adapter,
            bins.method,
            edges,
            bins.n_values as i64,
            bins.frozen_at
        ],
    )?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frozen_edges_read_back_and_cannot_be_frozen_twice() {
        let conn = crate::open_in_memory().unwrap();
        let bins = FrozenBins {
            dim: "rsi_2".into(),
            adapter: "decision_packets".into(),
            method: "quantiles".into(),
            edges: vec![8.5, 21.25, 55.0],
            n_values: 1200,
            frozen_at: "2026-03-01T00:00:00Z".into(),
        };
        freeze(&conn, &bins).unwrap();
        assert_eq!(all(&conn).unwrap()["rsi_2"], bins);
        assert!(freeze(&conn, &bins).is_err());
    }

    #[test]
    fn a_module_sees_only_the_bins_its_own_actions_were_cut_into() {
        let conn = crate::open_in_memory().unwrap();
        let bins = |dim: &str| FrozenBins {
            dim: dim.into(),
            adapter: "packets".into(),
            method: "fixed".into(),
            edges: vec![10.0, 30.0],
            n_values: 0,
            frozen_at: "2026-03-01T00:00:00Z".into(),
        };
        freeze(&conn, &bins("x")).unwrap();
        freeze(&conn, &bins("rsi_2")).unwrap();
        let packets = std::collections::BTreeSet::from(["packets".to_string()]);
        record_binned_modules(&conn, ["x", "rsi_2"], &packets).unwrap();
        record_binned_modules(&conn, ["x"], &packets).unwrap();
        let of = |m: &str| of_module(&conn, m).unwrap().into_keys().collect::<Vec<_>>();
        assert_eq!(of("packets"), ["rsi_2", "x"]);
        assert!(
            of("other").is_empty(),
            "another bot's category x is not binned"
        );
    }
}
