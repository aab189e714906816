//! `content` parsed for validation without building a JSON tree of the parts no rule reads.
//!
//! Ingest parses every strand's content once, and most of it (controls, execution results, entry
//! context) is never read: building a `serde_json::Value` for it was a large share of ingest's
//! CPU. Here the top-level keys the rules read are kept as values; every other value is walked by
//! the same parser with the same checks (string escapes and surrogates, number ranges, nesting
//! depth, trailing text) but not stored, so a strand is accepted or refused exactly as when the
//! whole object was built (tested against that in `tests` below).

use crate::scope::{ParsedScope, Scope, ScopeError};
use serde::de::{self, Deserialize, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// Top-level keys of `content` read by `PmAction::from_content` / `PositionClose::from_content`.
const READ_KEYS: [&str; 10] = [
    "position_id",
    "trade_id",
    "ts",
    "decision_type",
    "size_frac",
    "pattern_key",
    "action_category",
    "scope",
    "trade_summary",
    "exit_reason",
];

/// Visitor methods that accept every JSON scalar (bool, number, string, null) as `$value`.
macro_rules! accept_scalars {
    ($value:expr) => {
        fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
            Ok($value)
        }
        fn visit_unit<E>(self) -> Result<Self::Value, E> {
            Ok($value)
        }
    };
}

/// `content` as parsed: an object reduced to [`READ_KEYS`] (a repeated key: the last one wins, as
/// in `serde_json::Map`), or some other JSON value.
// Parsed once per strand on the stack and consumed at once: boxing the object would add an
// allocation per strand to save stack bytes.
#[allow(clippy::large_enum_variant)]
pub(super) enum Content {
    Object(Fields),
    NotAnObject,
}

/// The [`READ_KEYS`] of a content object: `scope` read straight into a [`Scope`] (what
/// `Scope::from_json` of its value gives; `None` when absent), the others as values.
pub(super) struct Fields {
    pub map: ReadValues,
    pub scope: Option<Result<Scope, ScopeError>>,
}

/// The values of the [`READ_KEYS`] present (`scope` aside), in fixed slots: no key is allocated
/// and no map is built for each strand.
#[derive(Debug, Default)]
pub(super) struct ReadValues([Option<Value>; READ_KEYS.len()]);

/// A content object's fields by key: the whole object (`Map`) or its [`ReadValues`].
pub(super) trait ContentFields {
    /// The value of `key`, when present.
    fn get(&self, key: &str) -> Option<&Value>;
}

impl ContentFields for Map<String, Value> {
    fn get(&self, key: &str) -> Option<&Value> {
        Map::get(self, key)
    }
}

impl ContentFields for ReadValues {
    /// `None` too for a key not in [`READ_KEYS`]: the rules read only those.
    fn get(&self, key: &str) -> Option<&Value> {
        self.0[READ_KEYS.iter().position(|k| *k == key)?].as_ref()
    }
}

impl<'de> Deserialize<'de> for Content {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(ContentVisitor)
    }
}

struct ContentVisitor;

impl<'de> Visitor<'de> for ContentVisitor {
    type Value = Content;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Content, A::Error> {
        let mut kept = ReadValues::default();
        let mut scope = None;
        while let Some(key) = map.next_key_seed(ReadKey)? {
            match key {
                Some(i) if READ_KEYS[i] == "scope" => {
                    scope = Some(map.next_value::<ParsedScope>()?.0)
                }
                Some(i) => kept.0[i] = Some(map.next_value::<Value>()?),
                None => map.next_value::<Skip>().map(drop)?,
            }
        }
        Ok(Content::Object(Fields { map: kept, scope }))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Content, A::Error> {
        SkipVisitor.visit_seq(seq).map(|_| Content::NotAnObject)
    }

    accept_scalars!(Content::NotAnObject);
}

/// A key: `Some` of the index of the [`READ_KEYS`] entry it names, `None` for any other key (not
/// allocated).
struct ReadKey;

impl<'de> DeserializeSeed<'de> for ReadKey {
    type Value = Option<usize>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl Visitor<'_> for ReadKey {
    type Value = Option<usize>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(READ_KEYS.iter().position(|k| *k == key))
    }
}

/// Any JSON value, parsed (and so checked) like a `Value` but not kept.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(SkipVisitor)
    }
}

struct SkipVisitor;

impl<'de> Visitor<'de> for SkipVisitor {
    type Value = Skip;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_key::<Skip>()?.is_some() {
            map.next_value::<Skip>()?;
        }
        Ok(Skip)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }

    accept_scalars!(Skip);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    type Read = Option<(Map<String, Value>, Option<Result<Scope, ScopeError>>)>;

    /// What the rules saw before: the whole value, reduced to the keys they read, with the scope
    /// as `Scope::from_json` read it.
    fn via_value(text: &str) -> Result<Read, String> {
        match serde_json::from_str::<Value>(text) {
            Ok(Value::Object(o)) => {
                let scope = o.get("scope").map(Scope::from_json);
                let kept = o
                    .into_iter()
                    .filter(|(k, _)| READ_KEYS.contains(&k.as_str()) && k != "scope")
                    .collect();
                Ok(Some((kept, scope)))
            }
            Ok(_) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    fn via_content(text: &str) -> Result<Read, String> {
        match serde_json::from_str::<Content>(text) {
            Ok(Content::Object(f)) => {
                let kept = READ_KEYS
                    .iter()
                    .zip(f.map.0)
                    .filter_map(|(k, v)| Some((k.to_string(), v?)))
                    .collect();
                Ok(Some((kept, f.scope)))
            }
            Ok(Content::NotAnObject) => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    #[test]
    fn accepts_and_refuses_exactly_what_a_value_parse_does() {
        let deep = format!("{{\"x\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        let cases = [
            r#"{"position_id":"p1","ts":"2026-01-01T00:00:00Z","controls":{"a":[1,2,{"b":null}]}}"#,
            r#"{"scope":{"bucket":"mid"},"scope":{"bucket":"high"}}"#,
            r#"{"scope":{"bucket":[1]},"scope":null}"#,
            r#"{"scope":[1,{"a":2}]}"#,
            r#"{"scope":{"a":1e999}}"#,
            r#"{"po\u0073ition_id":"escaped key","other":"\ud83d\ude00"}"#,
            r#"{"other":"\ud800 lone surrogate"}"#,
            r#"{"other":1e999}"#,
            r#"{"size_frac":1e999}"#,
            r#"{"other":-0.0,"n":18446744073709551616}"#,
            r#"{"other":[1,2,}"#,
            r#"{"a":1} trailing"#,
            r#"{"a":NaN}"#,
            r#"[1,{"position_id":"p"}]"#,
            r#""text""#,
            "12",
            "null",
            "true",
            "",
            "{",
            &deep,
        ];
        for text in cases {
            assert_eq!(via_content(text), via_value(text), "{text}");
        }
    }

    /// The rules see the same fields through the reduced map as through the whole object.
    #[test]
    fn typed_strands_are_the_same_as_from_the_whole_content() {
        use crate::strand::{PmAction, PositionClose, RawStrand, TypedStrand};
        let action = r#"{"position_id":"p1","trade_id":"t1","ts":"2026-01-01T00:05:00Z","decision_type":"add","size_frac":0.16,"a_value":0.7,"pattern_key":"module=pm|pattern_key=uptrend.S1.add","action_category":"add","scope":{"macro_phase":"Chop","bucket_rank_position":1,"bucket_leader":true},"controls":{"signals":{"ts_score":0.7}},"execution_result":{"status":"filled"}}"#;
        let close = r#"{"position_id":"p1","trade_id":"t1","trade_summary":{"rr":-1.42,"entry_timestamp":"2026-01-01T00:05:00Z","exit_timestamp":"2026-01-01T02:02:36Z","hold_time_days":0.08,"outcome_class":"loss","time_to_s3":null,"rpnl_usd":-402.4,"total_pnl_usd":-405.3},"entry_context":{"chain":"ethereum"},"exit_reason":"stop_loss"}"#;
        for (kind, content) in [("pm_action", action), ("position_closed", close)] {
            let raw = RawStrand {
                id: "s1".into(),
                module: "pm".into(),
                kind: kind.into(),
                symbol: None,
                timeframe: None,
                position_id: None,
                trade_id: None,
                created_at: "2026-01-01T03:00:00Z".into(),
                content: content.into(),
                regime_context: None,
            };
            let whole = match serde_json::from_str::<Value>(content).unwrap() {
                Value::Object(o) => o,
                _ => unreachable!(),
            };
            let created_at = crate::time::Timestamp::parse(&raw.created_at).unwrap();
            let expected = if kind == "pm_action" {
                let scope = Scope::from_json(&whole["scope"]);
                TypedStrand::Action(
                    PmAction::from_content(&raw, created_at, &whole, scope).unwrap(),
                )
            } else {
                TypedStrand::Close(PositionClose::from_content(&raw, created_at, &whole).unwrap())
            };
            assert_eq!(raw.to_typed().unwrap(), expected);
        }
    }

    fn json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_string()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<f64>().prop_map(|x| format!("{x:e}")),
            "[a-z\\\\\"]{0,6}".prop_map(|s| format!("\"{s}\"")),
            prop_oneof![Just("\"\\ud800\""), Just("1e400"), Just("NaN"), Just(",")]
                .prop_map(str::to_string),
        ];
        leaf.prop_recursive(4, 32, 6, |inner| {
            let key = prop_oneof![
                proptest::sample::select(READ_KEYS.to_vec()).prop_map(str::to_string),
                "[a-z]{1,4}".prop_map(|s| s),
            ];
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec((key, inner), 0..6).prop_map(|kv| {
                    let pairs: Vec<String> =
                        kv.iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", pairs.join(","))
                }),
            ]
        })
    }

    proptest! {
        #[test]
        fn random_json_is_judged_like_a_value_parse(text in json_text()) {
            prop_assert_eq!(via_content(&text), via_value(&text));
        }
    }
}
