//! One input record → one strand (`pm_action` for a decision, `position_closed` for an outcome),
//! or the reason it does not fit, naming the adapter field and the record's path. The strand then
//! goes through the same validation as a native strand line.

use crate::bins::BinSet;
use crate::spec::{Adapter, CommonSpec, Field, When};
use crate::template::{leaf_paths, lookup};
use learnloop_model::strand::{number_value as number, KIND_ACTION, KIND_CLOSE};
use learnloop_model::strand::{QuarantineCode, QuarantineReason, RawStrand, StrandColumns};
use serde_json::{Map, Value};

fn reason(code: QuarantineCode, detail: String) -> QuarantineReason {
    QuarantineReason::new(code, detail)
}

impl Field {
    /// The field's value: the first template that resolves, scaled and mapped.
    fn value(&self, record: &Value, what: &str) -> Result<Option<Value>, QuarantineReason> {
        let mut found = None;
        for template in &self.templates {
            if let Some(v) = template.resolve(record)? {
                found = Some(v);
                break;
            }
        }
        let Some(mut value) = found else {
            return Ok(None);
        };
        if let Some(scale) = self.scale {
            let x = number(&value).ok_or_else(|| {
                reason(
                    QuarantineCode::BadField,
                    format!("{what} ({}) is {value}: expected a number", self.source()),
                )
            })?;
            value = serde_json::Number::from_f64(x * scale)
                .map(Value::Number)
                .unwrap_or_else(|| Value::String(format!("{}", x * scale)));
        }
        if !self.map.is_empty() {
            let text = text_of(&value).unwrap_or_default();
            let mapped = self.map.get(&text).or_else(|| {
                self.map
                    .iter()
                    .find(|(k, _)| k.eq_ignore_ascii_case(&text))
                    .map(|(_, v)| v)
            });
            value = match mapped {
                Some(m) => Value::String(m.clone()),
                None => {
                    let known: Vec<&str> = self.map.keys().map(String::as_str).collect();
                    return Err(reason(
                        QuarantineCode::BadField,
                        format!(
                            "{what} ({}) is {value}: expected one of {}",
                            self.source(),
                            known.join(", ")
                        ),
                    ));
                }
            };
        }
        Ok(Some(value))
    }

    fn required(&self, record: &Value, what: &str) -> Result<Option<Value>, QuarantineReason> {
        match self.value(record, what)? {
            None if !self.optional => Err(reason(
                QuarantineCode::MissingField,
                format!(
                    "{what} ({}) is missing: the adapter requires it",
                    self.source()
                ),
            )),
            v => Ok(v),
        }
    }

    fn required_text(&self, record: &Value, what: &str) -> Result<String, QuarantineReason> {
        let v = self.required(record, what)?.unwrap_or(Value::Null);
        text_of(&v).ok_or_else(|| {
            reason(
                QuarantineCode::BadField,
                format!(
                    "{what} ({}) is {v}: expected text or a number",
                    self.source()
                ),
            )
        })
    }

    fn source(&self) -> String {
        let parts: Vec<String> = self.templates.iter().map(|t| t.to_string()).collect();
        parts.join(" | ")
    }
}

fn optional_value(
    field: &Option<Field>,
    record: &Value,
    what: &str,
) -> Result<Option<Value>, QuarantineReason> {
    match field {
        Some(f) => f.value(record, what),
        None => Ok(None),
    }
}

fn optional_text(
    field: &Option<Field>,
    record: &Value,
    what: &str,
) -> Result<Option<String>, QuarantineReason> {
    Ok(optional_value(field, record, what)?
        .as_ref()
        .and_then(text_of))
}

fn text_of(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

impl When {
    fn matches(&self, record: &Value) -> bool {
        let path: Vec<String> = self.field.split('.').map(str::to_string).collect();
        match (lookup(record, &path), &self.equals) {
            (None | Some(Value::Null), _) => false,
            (Some(_), None) => true,
            (Some(v), Some(expected)) => v == expected,
        }
    }

    fn describe(&self) -> String {
        match &self.equals {
            Some(v) => format!("{} = {v}", self.field),
            None => format!("{} present", self.field),
        }
    }
}

/// Insert `key: value` when the value is present.
fn put(content: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(v) = value {
        content.insert(key.to_string(), v);
    }
}

impl Adapter {
    /// Map one record. `bins` holds the frozen edges of every binned dimension of the adapter.
    pub fn to_strand(&self, record: &Value, bins: &BinSet) -> Result<RawStrand, QuarantineReason> {
        if !record.is_object() {
            return Err(reason(
                QuarantineCode::MalformedJson,
                format!("a record must be a JSON object, got {}", kind_of(record)),
            ));
        }
        if self.is_decision(record) {
            let (common, own) = (&self.decision.common, self.decision.own_fields());
            self.check_fields(record, common, &own, "decision")?;
            self.decision_strand(record, bins)
        } else if self.outcome.common.when.matches(record) {
            let (common, own) = (&self.outcome.common, self.outcome.own_fields());
            self.check_fields(record, common, &own, "outcome")?;
            self.outcome_strand(record)
        } else {
            Err(reason(
                QuarantineCode::UnknownKind,
                format!(
                    "the record is neither a decision ({}) nor an outcome ({}) of adapter {}",
                    self.decision.common.when.describe(),
                    self.outcome.common.when.describe(),
                    self.name
                ),
            ))
        }
    }

    /// A strict kind refuses fields it does not know: a misspelt indicator would otherwise drop a
    /// dimension silently.
    fn check_fields(
        &self,
        record: &Value,
        common: &CommonSpec,
        own: &[&Field],
        kind: &str,
    ) -> Result<(), QuarantineReason> {
        if !common.strict {
            return Ok(());
        }
        let mut known = common.known_paths(own);
        known.extend(self.module_paths());
        let covers = |k: &String, p: &str| {
            p == k
                || p.strip_prefix(k.as_str())
                    .is_some_and(|rest| rest.starts_with('.'))
                || k.strip_prefix(p).is_some_and(|rest| rest.starts_with('.'))
        };
        for path in leaf_paths(record) {
            if !known.iter().any(|k| covers(k, &path)) {
                return Err(reason(
                    QuarantineCode::BadField,
                    format!(
                        "unknown field {path} in a {kind} record: adapter {} neither maps nor ignores it",
                        self.name
                    ),
                ));
            }
        }
        Ok(())
    }

    fn module(&self, record: &Value) -> Result<String, QuarantineReason> {
        Ok(optional_text(&self.module, record, "module")?.unwrap_or_else(|| "pm".into()))
    }

    /// Whether `record` is one of the adapter's decisions.
    pub fn is_decision(&self, record: &Value) -> bool {
        self.decision.common.when.matches(record)
    }

    fn module_paths(&self) -> Vec<String> {
        self.module
            .iter()
            .flat_map(|f| f.templates.iter().flat_map(|t| t.paths()))
            .collect()
    }

    fn decision_strand(
        &self,
        record: &Value,
        bins: &BinSet,
    ) -> Result<RawStrand, QuarantineReason> {
        let d = &self.decision;
        let mut strand = self.identity(record, &d.common, "decision")?;
        let pattern_key = d
            .pattern_key
            .required(record, "decision.pattern_key")?
            .map(|v| {
                let key = text_of(&v).unwrap_or_default();
                if key.starts_with("module=") || key.contains('|') {
                    Value::String(key)
                } else {
                    Value::String(format!("module={}|pattern_key={key}", strand.module))
                }
            });
        let c = &mut strand.content;
        put(c, "ts", strand.time.clone());
        let decision_type = optional_value(&d.decision_type, record, "decision.decision_type")?;
        put(c, "decision_type", decision_type);
        put(
            c,
            "size_frac",
            optional_value(&d.size_frac, record, "decision.size_frac")?,
        );
        put(c, "pattern_key", pattern_key);
        let category = d.category.required(record, "decision.category")?;
        put(c, "action_category", category);
        c.insert("scope".into(), Value::Object(self.scope(record, bins)?));
        strand.into_raw(KIND_ACTION)
    }

    fn scope(&self, record: &Value, bins: &BinSet) -> Result<Map<String, Value>, QuarantineReason> {
        let d = &self.decision;
        let mut scope = Map::new();
        if let Some(object) = optional_value(&d.scope_object, record, "decision.scope_object")? {
            match object {
                Value::Object(o) => scope.extend(o),
                other => {
                    return Err(reason(
                        QuarantineCode::BadScope,
                        format!(
                        "decision.scope_object is {other}: expected an object of dimension → value"
                    ),
                    ))
                }
            }
        }
        for (dim, field) in &d.scope {
            let what = format!("decision.scope.{dim}");
            let Some(value) = field.value(record, &what)? else {
                continue;
            };
            if field.bins.is_none() {
                scope.insert(dim.clone(), value);
                continue;
            }
            let x = number(&value).ok_or_else(|| {
                reason(
                    QuarantineCode::BadScope,
                    format!(
                        "{what} ({}) is {value}: expected a number to bin",
                        field.source()
                    ),
                )
            })?;
            let edges = bins.get(dim).ok_or_else(|| {
                reason(
                    QuarantineCode::BadScope,
                    format!(
                        "{what}: no frozen bins (a bug: bins are frozen before records are mapped)"
                    ),
                )
            })?;
            // NaN or ±∞ (an indicator not yet warmed up): no bin, the dimension is absent.
            if let Some(label) = edges.label_of(x) {
                scope.insert(dim.clone(), Value::String(label.to_string()));
            }
        }
        Ok(scope)
    }

    fn outcome_strand(&self, record: &Value) -> Result<RawStrand, QuarantineReason> {
        let o = &self.outcome;
        let mut strand = self.identity(record, &o.common, "outcome")?;
        let r = o.r.value(record, "outcome.r")?.unwrap_or(Value::Null);
        if !number(&r).is_some_and(f64::is_finite) {
            let r_text = if r.is_null() {
                "missing".to_string()
            } else {
                r.to_string()
            };
            return Err(reason(
                QuarantineCode::RrNotFinite,
                format!(
                    "outcome.r ({}) is {r_text}: expected a finite R multiple",
                    o.r.source()
                ),
            ));
        }
        let mut summary = Map::new();
        summary.insert("rr".into(), r);
        put(&mut summary, "exit_timestamp", strand.time.clone());
        let optional = [
            ("entry_timestamp", &o.entry_time, "outcome.entry_time"),
            ("total_pnl_usd", &o.pnl_usd, "outcome.pnl_usd"),
            ("hold_time_days", &o.hold_days, "outcome.hold_days"),
            ("time_to_s3", &o.time_to_s3, "outcome.time_to_s3"),
            ("outcome_class", &o.outcome_class, "outcome.outcome_class"),
        ];
        for (key, field, what) in optional {
            put(&mut summary, key, optional_value(field, record, what)?);
        }
        let c = &mut strand.content;
        c.insert("trade_summary".into(), Value::Object(summary));
        put(
            c,
            "exit_reason",
            optional_value(&o.exit_reason, record, "outcome.exit_reason")?,
        );
        strand.into_raw(KIND_CLOSE)
    }

    /// What every strand carries, read with a kind's common fields; `content` starts with the
    /// position and trade ids and the adapter's name.
    fn identity(
        &self,
        record: &Value,
        common: &CommonSpec,
        kind: &str,
    ) -> Result<Identity, QuarantineReason> {
        let what = |name: &str| format!("{kind}.{name}");
        let position_id = common
            .position_id
            .required_text(record, &what("position_id"))?;
        let trade_id = optional_text(&common.trade_id, record, &what("trade_id"))?;
        let time = common.time.required(record, &what("time"))?;
        let created_at = match optional_value(&common.created_at, record, &what("created_at"))? {
            Some(v) => Some(v),
            None => time.clone(),
        };
        let mut content = Map::new();
        content.insert("position_id".into(), Value::String(position_id.clone()));
        put(
            &mut content,
            "trade_id",
            trade_id.clone().map(Value::String),
        );
        content.insert("adapter".into(), Value::String(self.name.clone()));
        Ok(Identity {
            columns: StrandColumns {
                id: Some(common.id.required_text(record, &what("id"))?),
                module: None,
                kind: None,
                symbol: optional_text(&common.symbol, record, &what("symbol"))?,
                timeframe: optional_text(&common.timeframe, record, &what("timeframe"))?,
                position_id: Some(position_id),
                trade_id,
                created_at: created_at.as_ref().and_then(text_of),
                content: None,
                regime_context: None,
            },
            module: self.module(record)?,
            time,
            content,
        })
    }
}

/// A strand being built: its columns, module, event time and content so far.
struct Identity {
    columns: StrandColumns,
    module: String,
    time: Option<Value>,
    content: Map<String, Value>,
}

impl Identity {
    fn into_raw(self, kind: &str) -> Result<RawStrand, QuarantineReason> {
        StrandColumns {
            module: Some(self.module),
            kind: Some(kind.to_string()),
            content: Some(Value::Object(self.content).to_string()),
            ..self.columns
        }
        .into_raw()
    }
}

fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}
