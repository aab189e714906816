//! Action scopes: dimension → categorical value, normalised once at ingest.

use crate::dims::DimensionList;
use crate::hash::StableHasher;
use serde_json::Value;
use std::collections::BTreeMap;

mod parse;
pub(crate) use parse::ParsedScope;

/// A scope that cannot be normalised.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    /// The scope is not a JSON object.
    #[error("scope must be a JSON object of dimension → value, got {0}")]
    NotAnObject(String),
    /// A dimension's value is an object, an array or otherwise not categorical.
    #[error("scope dimension {dim:?} has a non-categorical value {value}: expected a string, number or boolean")]
    BadValue {
        /// The dimension.
        dim: String,
        /// The value found, as JSON.
        value: String,
    },
    /// Scope text (`dim=value,…`) that does not parse.
    #[error("scope text {0:?} is malformed: expected dim=value pairs separated by commas")]
    BadText(String),
    /// A dimension given twice: which value is meant cannot be guessed.
    #[error("scope dimension {0:?} is given twice")]
    RepeatedDim(String),
}

/// Normalise one scope value. `Ok(None)` means *absent*: null, empty, or any case of "unknown".
pub fn normalize_value(dim: &str, v: &Value) -> Result<Option<String>, ScopeError> {
    match v {
        Value::Null => Ok(None),
        Value::Bool(b) => Ok(Some(b.to_string())),
        Value::Number(n) => Ok(Some(canonical_number(n))),
        Value::String(s) => Ok(normalize_text(s)),
        other => Err(ScopeError::BadValue {
            dim: dim.to_string(),
            value: other.to_string(),
        }),
    }
}

fn normalize_text(s: &str) -> Option<String> {
    let t = s.trim();
    if t.is_empty() || t.eq_ignore_ascii_case("unknown") {
        None
    } else {
        Some(t.to_string())
    }
}

/// Integers render without a fraction (`2.0` → `2`); other floats in Rust's shortest
/// round-trip form, so `0.50` and `0.5` are one value.
fn canonical_number(n: &serde_json::Number) -> String {
    if let Some(i) = n.as_i64() {
        return i.to_string();
    }
    if let Some(u) = n.as_u64() {
        return u.to_string();
    }
    let f = n.as_f64().unwrap_or(f64::NAN);
    if f.fract() == 0.0 && f.abs() < 9.0e15 {
        format!("{}", f as i64)
    } else {
        format!("{f}")
    }
}

/// A normalised scope: only present dimensions, keys sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Scope(BTreeMap<String, String>);

impl Scope {
    /// Normalise a JSON object of dimension → value (absent values dropped).
    pub fn from_json(v: &Value) -> Result<Self, ScopeError> {
        let obj = match v {
            Value::Object(o) => o,
            Value::Null => return Ok(Self::default()),
            other => return Err(ScopeError::NotAnObject(other.to_string())),
        };
        let mut map = BTreeMap::new();
        for (k, v) in obj {
            let key = k.trim();
            if key.is_empty() {
                continue;
            }
            if let Some(val) = normalize_value(key, v)? {
                map.insert(key.to_string(), val);
            }
        }
        Ok(Self(map))
    }

    /// [`Scope::from_json`] of an object whose values are all strings, given as its pairs (e.g. the
    /// stored canonical text read with [`canonical_pairs`], without building a JSON tree).
    pub fn from_string_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let mut map = BTreeMap::new();
        for (k, v) in pairs {
            let key = k.trim();
            if key.is_empty() {
                continue;
            }
            if let Some(val) = normalize_text(v) {
                map.insert(key.to_string(), val);
            }
        }
        Self(map)
    }

    /// Parse `dim=value,dim=value` (the command-line form), normalising like ingest does.
    pub fn from_pairs_text(text: &str) -> Result<Self, ScopeError> {
        let mut map = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for part in text.split(',').filter(|p| !p.trim().is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| ScopeError::BadText(text.to_string()))?;
            let k = k.trim();
            if k.is_empty() {
                return Err(ScopeError::BadText(text.to_string()));
            }
            if !seen.insert(k) {
                return Err(ScopeError::RepeatedDim(k.to_string()));
            }
            if let Some(v) = normalize_text(v) {
                map.insert(k.to_string(), v);
            }
        }
        Ok(Self(map))
    }

    /// The value of `dim`, if present.
    pub fn get(&self, dim: &str) -> Option<&str> {
        self.0.get(dim).map(String::as_str)
    }

    /// The `(dim, value)` pairs, sorted by dimension.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Number of present dimensions.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether no dimension is present.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Set `dim` to `value`.
    pub fn insert(&mut self, dim: &str, value: &str) {
        self.0.insert(dim.to_string(), value.to_string());
    }

    /// Canonical JSON text: sorted keys, string values.
    pub fn to_json(&self) -> String {
        serde_json::to_string(&self.0).expect("string map serialises")
    }

    /// Restrict to the configured dimensions; returns the presence mask and the key.
    pub fn key_for(&self, dims: &DimensionList) -> ScopeKey {
        let mut mask = 0u64;
        let mut values = Vec::new();
        for (k, v) in &self.0 {
            if let Some(i) = dims.index_of(k) {
                mask |= 1 << i;
                values.push((k.clone(), v.clone()));
            }
        }
        ScopeKey { mask, values }
    }
}

/// A scope subset: the mask of its dimensions and its `dim=value` pairs sorted by dim name.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScopeKey {
    /// Bit `i` set when dimension `i` of the list is in the subset.
    pub mask: u64,
    /// The subset's `(dim, value)` pairs, sorted by dimension name.
    pub values: Vec<(String, String)>,
}

impl ScopeKey {
    /// The empty subset (the whole pattern/category).
    pub fn root() -> Self {
        Self::default()
    }

    /// Build from pairs in any order; the mask comes from the dimension list.
    pub fn from_pairs(
        dims: &DimensionList,
        pairs: impl IntoIterator<Item = (String, String)>,
    ) -> Self {
        let mut values: Vec<(String, String)> = pairs.into_iter().collect();
        values.sort();
        let mask = values
            .iter()
            .filter_map(|(k, _)| dims.index_of(k))
            .fold(0u64, |m, i| m | (1 << i));
        Self { mask, values }
    }

    /// Number of dimensions in the subset.
    pub fn dims(&self) -> u32 {
        self.mask.count_ones()
    }

    /// The stable hash of the pairs (`scope_values_hash`), stored beside the mask.
    pub fn hash(&self) -> u64 {
        scope_values_hash(self.values.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }

    /// The pairs as sorted-key JSON (the stored `scope_values`).
    pub fn values_json(&self) -> String {
        scope_values_json(self.values.iter().map(|(k, v)| (k.as_str(), v.as_str())))
    }
}

/// The stable 64-bit hash of sorted `dim=value` pairs (FNV-1a over `dim=value` joined by 0x1F).
/// Callers must pass the pairs sorted by dimension name.
pub fn scope_values_hash<'a>(sorted_pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> u64 {
    let mut h = StableHasher::default();
    for (i, (k, v)) in sorted_pairs.into_iter().enumerate() {
        hash_pair(&mut h, i == 0, k, v);
    }
    h.finish()
}

/// JSON object text with sorted keys and string values. Callers pass pairs sorted by name.
pub fn scope_values_json<'a>(sorted_pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    push_scope_values_json(&mut out, sorted_pairs);
    out
}

/// [`scope_values_json`] appended to `out`: a caller rendering millions of keys reuses one buffer
/// and copies each result once, at its exact size, instead of growing a new string each time.
pub fn push_scope_values_json<'a>(
    out: &mut String,
    sorted_pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
) {
    out.push('{');
    for (i, (k, v)) in sorted_pairs.into_iter().enumerate() {
        push_json_pair(out, i == 0, k, v);
    }
    out.push('}');
}

/// The canonical key ([`push_scope_values_json`], [`scope_values_hash`]) of a list of pairs that
/// grows and shrinks at its end, pairs pushed in name order: a depth-first walk over subsets in
/// name order extends its parent's key by one pair, so each key costs one pair's rendering and
/// hashing instead of all of its pairs'.
#[derive(Debug, Clone)]
pub struct ScopeKeyPath {
    /// `{` and the pairs so far, without the closing brace.
    text: String,
    /// Per number of pairs (from 0), the text's length and the hash state after them.
    levels: Vec<(usize, StableHasher)>,
}

impl Default for ScopeKeyPath {
    fn default() -> Self {
        Self {
            text: "{".to_string(),
            levels: vec![(1, StableHasher::default())],
        }
    }
}

impl ScopeKeyPath {
    /// The number of pairs.
    pub fn len(&self) -> usize {
        self.levels.len() - 1
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keep the first `pairs` pairs.
    pub fn truncate(&mut self, pairs: usize) {
        self.levels.truncate(pairs + 1);
        let (len, _) = self.levels[self.levels.len() - 1];
        self.text.truncate(len);
    }

    /// Append a pair; its dimension's name must sort after those already in.
    pub fn push(&mut self, dim: &str, value: &str) {
        let (_, mut h) = self.levels[self.levels.len() - 1];
        let first = self.is_empty();
        push_json_pair(&mut self.text, first, dim, value);
        hash_pair(&mut h, first, dim, value);
        self.levels.push((self.text.len(), h));
    }

    /// Append the pairs' JSON text ([`push_scope_values_json`]) to `out`.
    pub fn push_json_to(&self, out: &mut String) {
        out.push_str(&self.text);
        out.push('}');
    }

    /// The pairs' [`scope_values_hash`].
    pub fn hash(&self) -> u64 {
        self.levels[self.levels.len() - 1].1.finish()
    }
}

fn push_json_string(out: &mut String, s: &str) {
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push('"');
        out.push_str(s);
        out.push('"');
    } else {
        out.push_str(&serde_json::to_string(s).expect("string serialises"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn normalises_absent_values_numbers_and_whitespace() {
        let s = Scope::from_json(&json!({
            "macro_phase": " Good ", "meso_phase": null, "micro_phase": "", "bucket": "UNKNOWN",
            "bucket_rank_position": 2.0, "x": 0.50, "bucket_leader": true
        }))
        .unwrap();
        assert_eq!(
            s.to_json(),
            r#"{"bucket_leader":"true","bucket_rank_position":"2","macro_phase":"Good","x":"0.5"}"#
        );
        assert!(Scope::from_json(&json!({"a": [1]})).is_err());
        assert!(Scope::from_json(&json!([1])).is_err());
    }

    #[test]
    fn key_uses_configured_dims_only_and_hash_is_order_free() {
        let dims = DimensionList::default();
        let s = Scope::from_json(&json!({"timeframe": "1h", "chain": "sol", "macro_phase": "Dip"}))
            .unwrap();
        let k = s.key_for(&dims);
        assert_eq!(k.mask, (1 << 0) | (1 << 7));
        assert_eq!(k.values_json(), r#"{"macro_phase":"Dip","timeframe":"1h"}"#);
        let k2 = ScopeKey::from_pairs(
            &dims,
            [
                ("timeframe".into(), "1h".into()),
                ("macro_phase".into(), "Dip".into()),
            ],
        );
        assert_eq!(k, k2);
        assert_eq!(k.hash(), k2.hash());
        assert_ne!(k.hash(), ScopeKey::root().hash());
        // Pinned so that a change of the hash (which would orphan stored rows) fails loudly.
        assert_eq!(
            scope_values_hash([("macro_phase", "Dip"), ("timeframe", "1h")]),
            crate::hash::stable_hash(b"macro_phase=Dip\x1ftimeframe=1h")
        );
    }

    #[test]
    fn json_text_escapes_when_needed() {
        assert_eq!(scope_values_json([("a", "x\"y")]), r#"{"a":"x\"y"}"#);
        assert_eq!(scope_values_json([]), "{}");
    }

    #[test]
    fn parses_cli_pairs() {
        let s = Scope::from_pairs_text("macro_phase=Good, timeframe=1h,bucket=unknown").unwrap();
        assert_eq!(s.to_json(), r#"{"macro_phase":"Good","timeframe":"1h"}"#);
        assert!(Scope::from_pairs_text("macro_phase").is_err());
    }
}

/// The `dim → value` map of stored scope JSON (an object of strings). The one parser of stored
/// scope text: the stages, the replay, the report and the CLI all read scopes through it (or
/// through [`scope_pairs`] / [`with_scope_pairs`], which avoid allocating for canonical text).
pub fn parse_scope_map(json: &str) -> Result<BTreeMap<String, String>, serde_json::Error> {
    serde_json::from_str(json)
}

/// The pairs of each exact parent of a subset (its pairs without one of them, in order), borrowed.
pub fn parents_of_pairs(pairs: &[(String, String)]) -> impl Iterator<Item = Vec<(&str, &str)>> {
    (0..pairs.len()).map(move |skip| {
        pairs
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != skip)
            .map(|(_, (d, v))| (d.as_str(), v.as_str()))
            .collect()
    })
}

/// The sorted `dim = value` pairs of stored scope JSON; none for text that is not a scope object.
pub fn scope_pairs(json: &str) -> Vec<(String, String)> {
    parse_scope_map(json)
        .map(|m| m.into_iter().collect())
        .unwrap_or_default()
}

/// `f` of a scope text's sorted pairs: read in place when canonical, else through serde_json.
pub fn with_scope_pairs<R>(json: &str, f: impl FnOnce(&[(&str, &str)]) -> R) -> R {
    match canonical_pairs(json) {
        Some(pairs) => f(&pairs),
        None => {
            let owned = scope_pairs(json);
            let pairs: Vec<(&str, &str)> = owned
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            f(&pairs)
        }
    }
}

/// Borrowed `dim=value` pairs of canonical scope JSON (as `scope_values_json` writes it), without
/// allocating per pair. `None` when the text uses escapes or is not in that form: parse it with
/// serde_json instead.
pub fn canonical_pairs(json: &str) -> Option<Vec<(&str, &str)>> {
    let mut out = Vec::new();
    canonical_pairs_into(json, &mut out).then_some(out)
}

/// [`canonical_pairs`] into a reused buffer (cleared first); false when the text is not canonical.
pub fn canonical_pairs_into<'a>(json: &'a str, out: &mut Vec<(&'a str, &'a str)>) -> bool {
    out.clear();
    let ok = for_each_canonical_pair(json, |k, v| out.push((k, v)));
    if !ok {
        out.clear();
    }
    ok
}

/// Call `f` with each pair of canonical scope text, in order, without allocating; false (after
/// calling `f` for the pairs before the flaw) when the text is not canonical.
pub fn for_each_canonical_pair<'a>(json: &'a str, mut f: impl FnMut(&'a str, &'a str)) -> bool {
    // One pass over the bytes: the quotes, colons and commas are ASCII, so every index where
    // one is found is a char boundary.
    let b = json.as_bytes();
    let Some(end) = b.len().checked_sub(1) else {
        return false;
    };
    if end == 0 || b[0] != b'{' || b[end] != b'}' {
        return false;
    }
    // The next quoted string starting at `i` (which must be a quote): (text, index after it).
    let quoted = |i: usize| -> Option<(&'a str, usize)> {
        if i >= end || b[i] != b'"' {
            return None;
        }
        let start = i + 1;
        let mut j = start;
        while j < end && b[j] != b'"' {
            if b[j] == b'\\' {
                return None;
            }
            j += 1;
        }
        (j < end).then(|| (&json[start..j], j + 1))
    };
    let mut i = 1;
    while i < end {
        let Some((key, after_key)) = quoted(i) else {
            return false;
        };
        if after_key >= end || b[after_key] != b':' {
            return false;
        }
        let Some((value, after_value)) = quoted(after_key + 1) else {
            return false;
        };
        f(key, value);
        i = after_value;
        if i < end {
            if b[i] != b',' || i + 1 == end {
                return false;
            }
            i += 1;
        }
    }
    true
}

/// The [`scope_values_hash`] of the sorted pairs without each pair in turn (the keys of the exact
/// parents): `out[j]` leaves out pair j. The hashing of the common prefix is shared.
pub fn hashes_without_each(sorted_pairs: &[(&str, &str)], out: &mut Vec<u64>) {
    out.clear();
    let mut prefix = StableHasher::default();
    for j in 0..sorted_pairs.len() {
        let mut h = prefix;
        let mut first = j == 0;
        for &(k, v) in &sorted_pairs[j + 1..] {
            hash_pair(&mut h, first, k, v);
            first = false;
        }
        out.push(h.finish());
        let (k, v) = sorted_pairs[j];
        hash_pair(&mut prefix, j == 0, k, v);
    }
}

/// One pair of [`scope_values_hash`]: `dim=value`, after a 0x1F unless it is the first.
fn hash_pair(h: &mut StableHasher, first: bool, k: &str, v: &str) {
    if !first {
        h.write(&[0x1f]);
    }
    h.write(k.as_bytes());
    h.write(b"=");
    h.write(v.as_bytes());
}

/// One pair of [`push_scope_values_json`]: `"dim":"value"`, after a comma unless it is the first.
fn push_json_pair(out: &mut String, first: bool, k: &str, v: &str) {
    if !first {
        out.push(',');
    }
    push_json_string(out, k);
    out.push(':');
    push_json_string(out, v);
}

#[cfg(test)]
mod canonical_tests {
    use super::*;

    proptest::proptest! {
        /// Any sequence of pushes (in name order) and truncations renders and hashes each state
        /// as the whole-key functions do.
        #[test]
        fn key_path_matches_the_whole_key(
            steps in proptest::collection::vec((0usize..4, "[a-c\\\\\"é \t\u{1}]{0,3}"), 1..40)
        ) {
            let mut path = ScopeKeyPath::default();
            let mut pairs: Vec<(String, String)> = Vec::new();
            for (i, (keep, value)) in steps.into_iter().enumerate() {
                let keep = keep.min(pairs.len());
                pairs.truncate(keep);
                path.truncate(keep);
                let dim = format!("d{:03}", i);
                path.push(&dim, &value);
                pairs.push((dim, value));
                let borrowed = || pairs.iter().map(|(k, v)| (k.as_str(), v.as_str()));
                let mut text = String::new();
                path.push_json_to(&mut text);
                proptest::prop_assert_eq!(text, scope_values_json(borrowed()));
                proptest::prop_assert_eq!(path.hash(), scope_values_hash(borrowed()));
                proptest::prop_assert_eq!(path.len(), pairs.len());
            }
            path.truncate(0);
            let mut text = String::new();
            path.push_json_to(&mut text);
            proptest::prop_assert_eq!(text, "{}");
            proptest::prop_assert_eq!(path.hash(), scope_values_hash([]));
        }
    }

    #[test]
    fn borrowed_pairs_round_trip_the_canonical_form() {
        let pairs = [("A_mode", "patient"), ("bucket", "micro cap")];
        let json = scope_values_json(pairs);
        assert_eq!(canonical_pairs(&json).unwrap(), pairs);
        assert_eq!(canonical_pairs("{}").unwrap(), Vec::<(&str, &str)>::new());
        assert!(canonical_pairs(r#"{"a":"x\"y"}"#).is_none());
        assert!(canonical_pairs(r#"{"a":1}"#).is_none());
        for bad in [
            "",
            "{",
            "}",
            r#"{"a":"x",}"#,
            r#"{"a""x"}"#,
            r#"{"a":"x""#,
            r#"{"a":"x"} "#,
            r#"{"a":"x","#,
            r#"{"a:"x"}"#,
            r#"{"a":"x"x}"#,
        ] {
            assert!(canonical_pairs(bad).is_none(), "{bad}");
        }
        assert_eq!(
            canonical_pairs(r#"{"a":"","b":"é:,{}"}"#).unwrap(),
            [("a", ""), ("b", "é:,{}")]
        );
    }

    #[test]
    fn hashes_without_each_pair_match_hashing_the_parent() {
        let pairs = [
            ("A_mode", "patient"),
            ("bucket", "micro"),
            ("tf", "1h"),
            ("z", "q"),
        ];
        for n in 0..=pairs.len() {
            let mut out = Vec::new();
            hashes_without_each(&pairs[..n], &mut out);
            let expected: Vec<u64> = (0..n)
                .map(|j| {
                    scope_values_hash(
                        pairs[..n]
                            .iter()
                            .enumerate()
                            .filter(|&(i, _)| i != j)
                            .map(|(_, &p)| p),
                    )
                })
                .collect();
            assert_eq!(out, expected, "{n} pairs");
        }
    }
}
