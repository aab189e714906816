//! Field templates: `{strategy}.{entry_timing}` reads the record's `strategy` and `entry_timing`
//! (dotted paths reach into objects, a number indexes an array: `{models.0.conf}`). A template that
//! is a single placeholder gives the field's JSON value as it is; anything else renders text.

use learnloop_model::strand::{QuarantineCode, QuarantineReason};
use serde_json::Value;
use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Text(String),
    Field(Vec<String>),
}

/// A parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    parts: Vec<Part>,
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

impl Template {
    /// Parse `text`; `{` … `}` holds a non-empty dotted path, other text is literal.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find('{') {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 1..];
            let close = after
                .find('}')
                .ok_or_else(|| format!("template {text:?}: `{{` without a closing `}}`"))?;
            let path = &after[..close];
            let segments: Vec<String> = path.split('.').map(|s| s.trim().to_string()).collect();
            if segments.iter().any(String::is_empty) || path.contains('{') {
                return Err(format!(
                    "template {text:?}: {{{path}}} is not a field path (expected e.g. {{indicators.rsi_2}})"
                ));
            }
            parts.push(Part::Field(segments));
            rest = &after[close + 1..];
        }
        if rest.contains('}') {
            return Err(format!("template {text:?}: `}}` without an opening `{{`"));
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Self {
            source: text.to_string(),
            parts,
        })
    }

    /// The dotted paths this template reads.
    pub fn paths(&self) -> impl Iterator<Item = String> + '_ {
        self.parts.iter().filter_map(|p| match p {
            Part::Field(segments) => Some(segments.join(".")),
            Part::Text(_) => None,
        })
    }

    /// The template's value in `record`: `Ok(None)` when a field it reads is missing, null or
    /// blank text. A single placeholder gives the field's value; otherwise the parts are joined as
    /// text (strings trimmed, numbers as written, booleans as `true`/`false`).
    pub fn resolve(&self, record: &Value) -> Result<Option<Value>, QuarantineReason> {
        if let [Part::Field(path)] = self.parts.as_slice() {
            return Ok(lookup(record, path).filter(|v| present(v)).cloned());
        }
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(t) => out.push_str(t),
                Part::Field(path) => match lookup(record, path).filter(|v| present(v)) {
                    None => return Ok(None),
                    Some(Value::String(s)) => out.push_str(s.trim()),
                    Some(Value::Number(n)) => out.push_str(&n.to_string()),
                    Some(Value::Bool(b)) => out.push_str(if *b { "true" } else { "false" }),
                    Some(other) => {
                        return Err(QuarantineReason::new(
                            QuarantineCode::BadField,
                            format!(
                                "{} is {other}: expected text or a number inside {self}",
                                path.join(".")
                            ),
                        ))
                    }
                },
            }
        }
        Ok(Some(Value::String(out)))
    }
}

fn present(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::String(s) => !s.trim().is_empty(),
        _ => true,
    }
}

/// The value at a dotted path.
pub fn lookup<'a>(record: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter().try_fold(record, |v, segment| match v {
        Value::Object(o) => o.get(segment),
        Value::Array(a) => a.get(segment.parse::<usize>().ok()?),
        _ => None,
    })
}

/// Every leaf of `record` as a dotted path (objects are walked, anything else is a leaf; an empty
/// object is a leaf too).
pub fn leaf_paths(record: &Value) -> Vec<String> {
    fn walk(v: &Value, prefix: &str, out: &mut Vec<String>) {
        match v {
            Value::Object(o) if !o.is_empty() => {
                for (k, child) in o {
                    let path = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    walk(child, &path, out);
                }
            }
            _ => out.push(prefix.to_string()),
        }
    }
    let mut out = Vec::new();
    walk(record, "", &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_fields_and_keeps_single_values_whole() {
        let rec = json!({"strategy": " ibs_rsi ", "params": {"timing": "open"}, "n": 2,
                         "ind": {"rsi_2": 7.5}, "models": [{"conf": 0.9}], "blank": " "});
        let t = Template::parse("{strategy}.{params.timing}.v{n}").unwrap();
        assert_eq!(t.resolve(&rec).unwrap(), Some(json!("ibs_rsi.open.v2")));
        let single = Template::parse("{ind.rsi_2}").unwrap();
        assert_eq!(single.resolve(&rec).unwrap(), Some(json!(7.5)));
        let indexed = Template::parse("{models.0.conf}").unwrap();
        assert_eq!(indexed.resolve(&rec).unwrap(), Some(json!(0.9)));
        assert_eq!(
            Template::parse("{missing}.x")
                .unwrap()
                .resolve(&rec)
                .unwrap(),
            None
        );
        assert_eq!(
            Template::parse("{blank}").unwrap().resolve(&rec).unwrap(),
            None
        );
        assert_eq!(
            Template::parse("pm").unwrap().resolve(&rec).unwrap(),
            Some(json!("pm"))
        );
        assert!(Template::parse("{ind}.x").unwrap().resolve(&rec).is_err());
        assert_eq!(
            t.paths().collect::<Vec<_>>(),
            ["strategy", "params.timing", "n"]
        );
    }

    #[test]
    fn malformed_templates_are_refused() {
        for bad in ["{", "{}", "{a..b}", "a}", "{a{b}}"] {
            assert!(Template::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn leaf_paths_walk_objects_only() {
        let rec = json!({"a": {"b": 1, "c": {}}, "d": [1, 2]});
        assert_eq!(leaf_paths(&rec), ["a.b", "a.c", "d"]);
    }
}
