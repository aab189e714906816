//! One input record → one strand (`pm_action` for a decision, `position_closed` for an outcome),
//! or the reason it does not fit, naming the adapter field and the record's path. The strand then
//! goes through the same validation as a native strand line.

use crate::bins::BinSet;
use crate::spec::{Adapter, DecisionSpec, Field, OutcomeSpec, When};
use crate::template::{leaf_paths, lookup};
use learnloop_model::strand::{QuarantineCode, QuarantineReason, RawStrand, StrandColumns};
use learnloop_model::strand::{KIND_ACTION, KIND_CLOSE};
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

/// A number, or numeric text (`"NaN"` included: the caller decides what a non-finite one means).
pub(crate) fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.trim() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" | "+Infinity" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            t => t.parse().ok(),
        },
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
        if self.decision.when.matches(record) {
            let mut known = self.decision.referenced_paths();
            known.extend(self.module_paths());
            self.check_fields(record, &known, self.decision.strict, "decision")?;
            self.decision_strand(record, bins)
        } else if self.outcome.when.matches(record) {
            let mut known = self.outcome.referenced_paths();
            known.extend(self.module_paths());
            self.check_fields(record, &known, self.outcome.strict, "outcome")?;
            self.outcome_strand(record)
        } else {
            Err(reason(
                QuarantineCode::UnknownKind,
                format!(
                    "the record is neither a decision ({}) nor an outcome ({}) of adapter {}",
                    self.decision.when.describe(),
                    self.outcome.when.describe(),
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
        known: &[String],
        strict: bool,
        kind: &str,
    ) -> Result<(), QuarantineReason> {
        if !strict {
            return Ok(());
        }
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
        self.decision.when.matches(record)
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
        let module = self.module(record)?;
        let id = d.id.required_text(record, "decision.id")?;
        let position_id = d
            .position_id
            .required_text(record, "decision.position_id")?;
        let time = d.time.required(record, "decision.time")?;
        let created_at = match optional_value(&d.created_at, record, "decision.created_at")? {
            Some(v) => Some(v),
            None => time.clone(),
        };
        let pattern_key = match d.pattern_key.required(record, "decision.pattern_key")? {
            Some(v) => {
                let key = text_of(&v).unwrap_or_default();
                if key.starts_with("module=") || key.contains('|') {
                    Some(Value::String(key))
                } else {
                    Some(Value::String(format!("module={module}|pattern_key={key}")))
                }
            }
            None => None,
        };
        let mut content = Map::new();
        content.insert("position_id".into(), Value::String(position_id.clone()));
        let trade_id = optional_text(&d.trade_id, record, "decision.trade_id")?;
        put(
            &mut content,
            "trade_id",
            trade_id.clone().map(Value::String),
        );
        put(&mut content, "ts", time);
        put(
            &mut content,
            "decision_type",
            optional_value(&d.decision_type, record, "decision.decision_type")?,
        );
        put(
            &mut content,
            "size_frac",
            optional_value(&d.size_frac, record, "decision.size_frac")?,
        );
        put(&mut content, "pattern_key", pattern_key);
        put(
            &mut content,
            "action_category",
            d.category.required(record, "decision.category")?,
        );
        content.insert("scope".into(), Value::Object(self.scope(record, bins)?));
        content.insert("adapter".into(), Value::String(self.name.clone()));
        self.strand(
            record,
            KIND_ACTION,
            id,
            module,
            position_id,
            trade_id,
            created_at,
            content,
            &d.symbol,
            &d.timeframe,
        )
    }

    fn scope(&self, record: &Value, bins: &BinSet) -> Result<Map<String, Value>, QuarantineReason> {
        let d = &self.decision;
        let mut scope = Map::new();
        if let Some(object) = optional_value(&d.scope_object, record, "decision.scope_object")? {
            match object {
                Value::Object(o) => scope.extend(o),
                other => return Err(reason(
                    QuarantineCode::BadScope,
                    format!(
                        "decision.scope_object is {other}: expected an object of dimension → value"
                    ),
                )),
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
        let module = self.module(record)?;
        let id = o.id.required_text(record, "outcome.id")?;
        let position_id = o.position_id.required_text(record, "outcome.position_id")?;
        let time = o.time.required(record, "outcome.time")?;
        let created_at = match optional_value(&o.created_at, record, "outcome.created_at")? {
            Some(v) => Some(v),
            None => time.clone(),
        };
        let r = o.r.value(record, "outcome.r")?.ok_or_else(|| {
            reason(
                QuarantineCode::RrNotFinite,
                format!(
                    "outcome.r ({}) is missing: expected a finite R multiple",
                    o.r.source()
                ),
            )
        })?;
        if !number(&r).is_some_and(f64::is_finite) {
            return Err(reason(
                QuarantineCode::RrNotFinite,
                format!(
                    "outcome.r ({}) is {r}: expected a finite R multiple",
                    o.r.source()
                ),
            ));
        }
        let mut summary = Map::new();
        summary.insert("rr".into(), r);
        put(&mut summary, "exit_timestamp", time);
        put(
            &mut summary,
            "entry_timestamp",
            optional_value(&o.entry_time, record, "outcome.entry_time")?,
        );
        put(
            &mut summary,
            "total_pnl_usd",
            optional_value(&o.pnl_usd, record, "outcome.pnl_usd")?,
        );
        put(
            &mut summary,
            "hold_time_days",
            optional_value(&o.hold_days, record, "outcome.hold_days")?,
        );
        put(
            &mut summary,
            "time_to_s3",
            optional_value(&o.time_to_s3, record, "outcome.time_to_s3")?,
        );
        put(
            &mut summary,
            "outcome_class",
            optional_value(&o.outcome_class, record, "outcome.outcome_class")?,
        );
        let mut content = Map::new();
        content.insert("position_id".into(), Value::String(position_id.clone()));
        let trade_id = optional_text(&o.trade_id, record, "outcome.trade_id")?;
        put(
            &mut content,
            "trade_id",
            trade_id.clone().map(Value::String),
        );
        content.insert("trade_summary".into(), Value::Object(summary));
        put(
            &mut content,
            "exit_reason",
            optional_value(&o.exit_reason, record, "outcome.exit_reason")?,
        );
        content.insert("adapter".into(), Value::String(self.name.clone()));
        self.strand(
            record,
            KIND_CLOSE,
            id,
            module,
            position_id,
            trade_id,
            created_at,
            content,
            &o.symbol,
            &o.timeframe,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn strand(
        &self,
        record: &Value,
        kind: &str,
        id: String,
        module: String,
        position_id: String,
        trade_id: Option<String>,
        created_at: Option<Value>,
        content: Map<String, Value>,
        symbol: &Option<Field>,
        timeframe: &Option<Field>,
    ) -> Result<RawStrand, QuarantineReason> {
        StrandColumns {
            id: Some(id),
            module: Some(module),
            kind: Some(kind.to_string()),
            symbol: optional_text(symbol, record, "symbol")?,
            timeframe: optional_text(timeframe, record, "timeframe")?,
            position_id: Some(position_id),
            trade_id,
            created_at: created_at.as_ref().and_then(text_of),
            content: Some(Value::Object(content).to_string()),
            regime_context: None,
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

impl DecisionSpec {
    /// Every record path the decision reads (for strict field checks).
    pub fn referenced_paths(&self) -> Vec<String> {
        let mut fields: Vec<&Field> = vec![
            &self.id,
            &self.position_id,
            &self.time,
            &self.pattern_key,
            &self.category,
        ];
        fields.extend(
            [
                &self.trade_id,
                &self.created_at,
                &self.symbol,
                &self.timeframe,
                &self.decision_type,
                &self.size_frac,
                &self.scope_object,
            ]
            .into_iter()
            .flatten(),
        );
        fields.extend(self.scope.values());
        paths_of(&fields, &self.when, &self.ignore)
    }
}

impl OutcomeSpec {
    /// Every record path the outcome reads (for strict field checks).
    pub fn referenced_paths(&self) -> Vec<String> {
        let mut fields: Vec<&Field> = vec![&self.id, &self.position_id, &self.time, &self.r];
        fields.extend(
            [
                &self.trade_id,
                &self.created_at,
                &self.symbol,
                &self.timeframe,
                &self.entry_time,
                &self.pnl_usd,
                &self.hold_days,
                &self.time_to_s3,
                &self.outcome_class,
                &self.exit_reason,
            ]
            .into_iter()
            .flatten(),
        );
        paths_of(&fields, &self.when, &self.ignore)
    }
}

fn paths_of(fields: &[&Field], when: &When, ignore: &[String]) -> Vec<String> {
    let mut paths: Vec<String> = fields
        .iter()
        .flat_map(|f| f.templates.iter().flat_map(|t| t.paths()))
        .collect();
    paths.push(when.field.clone());
    paths.extend(ignore.iter().cloned());
    paths.sort();
    paths.dedup();
    paths
}
