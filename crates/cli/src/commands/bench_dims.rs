//! Synthetic categorical scope dimensions for `bench aggregate --dims N` (SPEC §12): later PM
//! generations log ~28 dims, so the bench book can carry the 10 standard ones plus extra ones.
//!
//! Extra dimension j (from 0) is named `x01`, `x02`, …, has 2 + j mod 4 values (2–5), and is
//! constant per position for even j (like a market family or a curator) and drawn per action for
//! odd j (like a volatility bucket at the time of the action). Values come from a stable hash of
//! the position or strand id, so a seed gives the same book every time.

use anyhow::Context;
use learnloop_model::hash::StableHasher;
use learnloop_model::DimensionList;
use serde_json::Value;

/// Names of `extra` synthetic dimensions.
pub fn extra_dim_names(extra: usize) -> Vec<String> {
    (1..=extra).map(|j| format!("x{j:02}")).collect()
}

/// The standard dimensions followed by `extra` synthetic ones.
pub fn with_extra_dims(dims: &DimensionList, extra: usize) -> anyhow::Result<DimensionList> {
    let mut names = dims.names().to_vec();
    names.extend(extra_dim_names(extra));
    DimensionList::new(names).context("--dims")
}

/// Add `extra` synthetic dimensions to the scope of every `pm_action` line.
pub fn add_extra_dims(lines: Vec<String>, extra: usize) -> anyhow::Result<Vec<String>> {
    if extra == 0 {
        return Ok(lines);
    }
    let names = extra_dim_names(extra);
    lines
        .into_iter()
        .enumerate()
        .map(|(i, line)| {
            let mut strand: Value = serde_json::from_str(&line)
                .with_context(|| format!("bench book line {} is not JSON", i + 1))?;
            if strand["kind"] == "pm_action" {
                let position = text(&strand["position_id"]);
                let action = text(&strand["id"]);
                if let Some(scope) = strand["content"]["scope"].as_object_mut() {
                    for (j, name) in names.iter().enumerate() {
                        let owner = if j % 2 == 0 { &position } else { &action };
                        scope.insert(name.clone(), Value::String(value_of(owner, j)));
                    }
                }
            }
            Ok(strand.to_string())
        })
        .collect()
}

fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

/// The value of extra dimension `j` for a position or action id.
fn value_of(owner: &str, j: usize) -> String {
    let mut h = StableHasher::default();
    h.write(owner.as_bytes());
    h.write(&(j as u64).to_le_bytes());
    let cardinality = 2 + (j % 4) as u64;
    // FNV-1a's low bits depend only on the low bits of the input bytes, so without mixing, dims
    // of one cardinality whose indices agree in their low bits (x01 and x05) were the same
    // dimension under two names.
    format!("v{}", mix(h.finish()) % cardinality)
}

/// SplitMix64's finaliser: every output bit depends on every input bit.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_dims_are_constant_per_position_or_drawn_per_action() {
        let line = |id: &str, pos: &str| {
            format!(
                r#"{{"id":"{id}","kind":"pm_action","position_id":"{pos}","content":{{"scope":{{"bucket":"micro"}}}}}}"#
            )
        };
        let close = r#"{"id":"c","kind":"position_closed","content":{}}"#.to_string();
        let lines = vec![line("a1", "p1"), line("a2", "p1"), close.clone()];
        let out = add_extra_dims(lines, 4).unwrap();
        let scope = |i: usize| -> serde_json::Map<String, Value> {
            let v: Value = serde_json::from_str(&out[i]).unwrap();
            v["content"]["scope"].as_object().unwrap().clone()
        };
        let (s1, s2) = (scope(0), scope(1));
        assert_eq!(s1.len(), 5);
        assert_eq!(s1["bucket"], "micro");
        // Even extra dims follow the position: both actions of p1 agree.
        assert_eq!(s1["x01"], s2["x01"]);
        assert_eq!(s1["x03"], s2["x03"]);
        // Values stay within each dimension's cardinality (2, 3, 4, 5).
        for (j, name) in extra_dim_names(4).iter().enumerate() {
            let v = s1[name].as_str().unwrap();
            let k: u64 = v[1..].parse().unwrap();
            assert!(k < 2 + j as u64 % 4, "{name}={v}");
        }
        let unchanged: Value = serde_json::from_str(&out[2]).unwrap();
        assert_eq!(unchanged, serde_json::from_str::<Value>(&close).unwrap());
    }

    #[test]
    fn dims_of_one_cardinality_are_independent() {
        // x01, x05 and x09 have 2 values each, x03 and x07 four: over many positions, two of
        // them agree about as often as independent draws do (1/2 and 1/4).
        let positions: Vec<String> = (0..4000).map(|p| format!("pos-{p}")).collect();
        let agree = |a: usize, b: usize| {
            let same = positions
                .iter()
                .filter(|p| value_of(p, a) == value_of(p, b))
                .count();
            same as f64 / positions.len() as f64
        };
        for (a, b, expected) in [(0, 4, 0.5), (4, 8, 0.5), (2, 6, 0.25), (0, 8, 0.5)] {
            let share = agree(a, b);
            assert!(
                (share - expected).abs() < 0.05,
                "x{:02}/x{:02}: {share}",
                a + 1,
                b + 1
            );
        }
    }
}
