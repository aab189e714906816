//! A scope read straight from JSON text, without building a `serde_json::Value` of it first.
//!
//! Ingest reads every action's scope. Building it as a `Value` and then normalising that into a
//! [`Scope`] allocated each key and value twice and was a large share of validation's CPU.
//! [`ParsedScope`] normalises each value as the parser reads it and gives exactly what
//! [`Scope::from_json`] of the parsed value gives, errors included (tested against it below).

use super::{canonical_number, normalize_text, Scope, ScopeError};
use serde::de::value::{MapAccessDeserializer, SeqAccessDeserializer};
use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Number, Value};
use std::collections::BTreeMap;
use std::fmt;

/// [`Scope::from_json`] of a JSON value, deserialized from the value's text.
pub struct ParsedScope(pub Result<Scope, ScopeError>);

impl<'de> Deserialize<'de> for ParsedScope {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ScopeVisitor)
    }
}

/// One dimension's value: normalised (`None`: absent), or, for a value that is not categorical,
/// its JSON text.
type DimValue = Result<Option<String>, String>;

fn not_an_object(v: Value) -> ParsedScope {
    ParsedScope(Err(ScopeError::NotAnObject(v.to_string())))
}

struct ScopeVisitor;

impl<'de> Visitor<'de> for ScopeVisitor {
    type Value = ParsedScope;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParsedScope, A::Error> {
        // Keyed by the raw key, the last of a repeated key winning, and folded in key order: as
        // `serde_json::Map` holds the object that `Scope::from_json` walks.
        let mut dims: BTreeMap<String, DimValue> = BTreeMap::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value::<DimValueOf>()?.0;
            dims.insert(key, value);
        }
        Ok(ParsedScope(Scope::from_dim_values(dims)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<ParsedScope, A::Error> {
        Ok(not_an_object(Value::deserialize(
            SeqAccessDeserializer::new(seq),
        )?))
    }

    fn visit_unit<E>(self) -> Result<ParsedScope, E> {
        Ok(ParsedScope(Ok(Scope::default())))
    }

    fn visit_bool<E>(self, b: bool) -> Result<ParsedScope, E> {
        Ok(not_an_object(Value::Bool(b)))
    }

    fn visit_i64<E>(self, i: i64) -> Result<ParsedScope, E> {
        Ok(not_an_object(Value::from(i)))
    }

    fn visit_u64<E>(self, u: u64) -> Result<ParsedScope, E> {
        Ok(not_an_object(Value::from(u)))
    }

    fn visit_f64<E>(self, x: f64) -> Result<ParsedScope, E> {
        Ok(not_an_object(Value::from(x)))
    }

    fn visit_str<E>(self, s: &str) -> Result<ParsedScope, E> {
        Ok(not_an_object(Value::from(s)))
    }
}

/// A dimension's value, normalised as `normalize_value` does.
struct DimValueOf(DimValue);

impl<'de> Deserialize<'de> for DimValueOf {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DimValueVisitor)
    }
}

struct DimValueVisitor;

impl<'de> Visitor<'de> for DimValueVisitor {
    type Value = DimValueOf;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<DimValueOf, A::Error> {
        let v = Value::deserialize(MapAccessDeserializer::new(map))?;
        Ok(DimValueOf(Err(v.to_string())))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<DimValueOf, A::Error> {
        let v = Value::deserialize(SeqAccessDeserializer::new(seq))?;
        Ok(DimValueOf(Err(v.to_string())))
    }

    fn visit_unit<E>(self) -> Result<DimValueOf, E> {
        Ok(DimValueOf(Ok(None)))
    }

    fn visit_bool<E>(self, b: bool) -> Result<DimValueOf, E> {
        Ok(DimValueOf(Ok(Some(b.to_string()))))
    }

    fn visit_i64<E>(self, i: i64) -> Result<DimValueOf, E> {
        Ok(DimValueOf(Ok(Some(canonical_number(&Number::from(i))))))
    }

    fn visit_u64<E>(self, u: u64) -> Result<DimValueOf, E> {
        Ok(DimValueOf(Ok(Some(canonical_number(&Number::from(u))))))
    }

    fn visit_f64<E>(self, x: f64) -> Result<DimValueOf, E> {
        // A `Value` holds a non-finite float as null, which is absent.
        Ok(DimValueOf(Ok(
            Number::from_f64(x).map(|n| canonical_number(&n))
        )))
    }

    fn visit_str<E>(self, s: &str) -> Result<DimValueOf, E> {
        Ok(DimValueOf(Ok(normalize_text(s))))
    }
}

impl Scope {
    /// The scope of an object's dimensions in raw-key order, as [`Scope::from_json`] folds them:
    /// keys trimmed, blank keys skipped, absent values left out, the first non-categorical value
    /// an error.
    fn from_dim_values(dims: BTreeMap<String, DimValue>) -> Result<Self, ScopeError> {
        let mut map = BTreeMap::new();
        for (raw_key, value) in dims {
            let key = raw_key.trim();
            if key.is_empty() {
                continue;
            }
            match value {
                Err(value) => {
                    return Err(ScopeError::BadValue {
                        dim: key.to_string(),
                        value,
                    })
                }
                Ok(Some(value)) => {
                    let key = if key.len() == raw_key.len() {
                        raw_key
                    } else {
                        key.to_string()
                    };
                    map.insert(key, value);
                }
                Ok(None) => {}
            }
        }
        Ok(Self(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn via_value(text: &str) -> Result<Result<Scope, ScopeError>, String> {
        serde_json::from_str::<Value>(text)
            .map(|v| Scope::from_json(&v))
            .map_err(|e| e.to_string())
    }

    fn parsed(text: &str) -> Result<Result<Scope, ScopeError>, String> {
        serde_json::from_str::<ParsedScope>(text)
            .map(|p| p.0)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn reads_a_scope_as_from_json_does() {
        let cases = [
            r#"{"macro_phase":" Chop ","bucket_rank_position":2,"bucket_leader":false,"x":"unknown","y":null}"#,
            r#"{"a":"x"," a":"y"}"#,
            r#"{" a":"x","a":null}"#,
            r#"{"a":"x","a":"y"}"#,
            r#"{"a":[1,2],"b":{"c":1}}"#,
            r#"{"b":{"c":1},"a":[1]}"#,
            r#"{" ":[1],"a":2.0,"b":1e3,"c":-0.0,"d":0.50,"e":18446744073709551615}"#,
            r#"{"a":"\u0041\ud83d\ude00","\u0062":"UNKNOWN"}"#,
            r#"{"a":1e999}"#,
            r#"{"a":"\ud800"}"#,
            r#"{"a":[1,}"#,
            "null",
            "[1,2]",
            "\"text\"",
            "12",
            "-1.5",
            "true",
            "{}",
        ];
        for text in cases {
            assert_eq!(parsed(text), via_value(text), "{text}");
        }
    }

    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|x| format!("{x:e}")),
            "[ a-zA-Z]{0,6}".prop_map(|s| format!("\"{s}\"")),
            prop_oneof![
                Just("\"unknown\""),
                Just("\"\\ud800\""),
                Just("1e400"),
                Just("2.0"),
                Just(",")
            ]
            .prop_map(str::to_string),
        ];
        leaf.prop_recursive(3, 24, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[ ab]{0,3}", inner), 0..6).prop_map(|kv| {
                    let pairs: Vec<String> =
                        kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", pairs.join(","))
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn random_json_gives_the_scope_from_json_gives(text in json_text()) {
            prop_assert_eq!(parsed(&text), via_value(&text));
        }
    }
}
