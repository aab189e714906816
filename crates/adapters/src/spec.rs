//! The adapter file: which records are decisions and which are outcomes, and where each strand
//! field comes from. Parsed once and checked whole (every template, map and bin), so a bad
//! adapter is refused before any record is read.

use crate::template::Template;
use crate::AdapterError;
use learnloop_model::{ActionCategory, DimensionList};
use learnloop_overrides::check_edges;
use serde::Deserialize;
use std::collections::BTreeMap;

/// Largest number of quantile bins a dimension may ask for.
pub const MAX_QUANTILE_BINS: usize = 20;

/// Where one field comes from, as written in the adapter: a template, a list of templates (the
/// first that resolves wins), or an object with a mapping of values, a scale or bins.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum FieldText {
    One(String),
    FirstOf(Vec<String>),
    Full(FieldObject),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldObject {
    template: TemplateText,
    #[serde(default)]
    map: BTreeMap<String, String>,
    #[serde(default)]
    scale: Option<f64>,
    #[serde(default)]
    bins: Option<BinsText>,
    #[serde(default)]
    optional: bool,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum TemplateText {
    One(String),
    FirstOf(Vec<String>),
}

/// How a numeric dimension is cut: the adapter's own edges, or `k` quantiles learned from the
/// first ingest that sees the dimension and frozen in the store.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum BinsText {
    Edges(Vec<f64>),
    Quantiles(usize),
}

/// A field, checked.
#[derive(Debug, Clone)]
pub struct Field {
    pub templates: Vec<Template>,
    /// Value → replacement (e.g. BUY → entry); a value not listed is refused. Empty: no mapping.
    pub map: BTreeMap<String, String>,
    /// Numbers are multiplied by this (e.g. minutes → days).
    pub scale: Option<f64>,
    pub bins: Option<BinsText>,
    /// A required field may be declared optional (strands without v5 fields, say).
    pub optional: bool,
}

impl Field {
    fn parse(text: &FieldText, what: &str) -> Result<Self, AdapterError> {
        let (templates, object) = match text {
            FieldText::One(t) => (vec![t.clone()], None),
            FieldText::FirstOf(ts) => (ts.clone(), None),
            FieldText::Full(o) => match &o.template {
                TemplateText::One(t) => (vec![t.clone()], Some(o)),
                TemplateText::FirstOf(ts) => (ts.clone(), Some(o)),
            },
        };
        if templates.is_empty() {
            return Err(AdapterError::spec(what, "an empty list of templates"));
        }
        let templates = templates
            .iter()
            .map(|t| Template::parse(t).map_err(|e| AdapterError::spec(what, e)))
            .collect::<Result<Vec<_>, _>>()?;
        let field = Field {
            templates,
            map: object.map(|o| o.map.clone()).unwrap_or_default(),
            scale: object.and_then(|o| o.scale),
            bins: object.and_then(|o| o.bins.clone()),
            optional: object.is_some_and(|o| o.optional),
        };
        if let Some(scale) = field.scale {
            if !(scale.is_finite() && scale != 0.0) {
                return Err(AdapterError::spec(
                    what,
                    format!("scale {scale} must be a finite non-zero number"),
                ));
            }
        }
        match &field.bins {
            Some(BinsText::Edges(edges)) => {
                check_edges(edges).map_err(|e| AdapterError::spec(what, format!("bins: {e}")))?
            }
            Some(BinsText::Quantiles(k)) if !(2..=MAX_QUANTILE_BINS).contains(k) => {
                return Err(AdapterError::spec(
                    what,
                    format!("bins: {k} quantiles: expected 2 to {MAX_QUANTILE_BINS}"),
                ))
            }
            _ => {}
        }
        Ok(field)
    }
}

/// Which records a kind takes: those where `field` is present (and equals `equals`, if given).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct When {
    pub field: String,
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionText {
    when: When,
    id: FieldText,
    position_id: FieldText,
    #[serde(default)]
    trade_id: Option<FieldText>,
    time: FieldText,
    #[serde(default)]
    created_at: Option<FieldText>,
    #[serde(default)]
    symbol: Option<FieldText>,
    #[serde(default)]
    timeframe: Option<FieldText>,
    pattern_key: FieldText,
    category: FieldText,
    #[serde(default)]
    decision_type: Option<FieldText>,
    #[serde(default)]
    size_frac: Option<FieldText>,
    #[serde(default)]
    scope: BTreeMap<String, FieldText>,
    #[serde(default)]
    scope_object: Option<FieldText>,
    #[serde(default)]
    strict: bool,
    #[serde(default)]
    ignore: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct OutcomeText {
    when: When,
    id: FieldText,
    position_id: FieldText,
    #[serde(default)]
    trade_id: Option<FieldText>,
    time: FieldText,
    #[serde(default)]
    created_at: Option<FieldText>,
    #[serde(default)]
    symbol: Option<FieldText>,
    #[serde(default)]
    timeframe: Option<FieldText>,
    #[serde(default)]
    entry_time: Option<FieldText>,
    r: FieldText,
    #[serde(default)]
    pnl_usd: Option<FieldText>,
    #[serde(default)]
    hold_days: Option<FieldText>,
    #[serde(default)]
    time_to_s3: Option<FieldText>,
    #[serde(default)]
    outcome_class: Option<FieldText>,
    #[serde(default)]
    exit_reason: Option<FieldText>,
    #[serde(default)]
    strict: bool,
    #[serde(default)]
    ignore: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdapterText {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    module: Option<FieldText>,
    decision: DecisionText,
    outcome: OutcomeText,
}

/// A decision record's fields (becomes a `pm_action` strand).
#[derive(Debug, Clone)]
pub struct DecisionSpec {
    pub when: When,
    pub id: Field,
    pub position_id: Field,
    pub trade_id: Option<Field>,
    pub time: Field,
    pub created_at: Option<Field>,
    pub symbol: Option<Field>,
    pub timeframe: Option<Field>,
    pub pattern_key: Field,
    pub category: Field,
    pub decision_type: Option<Field>,
    pub size_frac: Option<Field>,
    /// Dimension → field, by dimension name.
    pub scope: BTreeMap<String, Field>,
    /// An object whose entries are all categorical dimensions (the native strand's `scope`).
    pub scope_object: Option<Field>,
    pub strict: bool,
    pub ignore: Vec<String>,
}

/// An outcome record's fields (becomes a `position_closed` strand).
#[derive(Debug, Clone)]
pub struct OutcomeSpec {
    pub when: When,
    pub id: Field,
    pub position_id: Field,
    pub trade_id: Option<Field>,
    pub time: Field,
    pub created_at: Option<Field>,
    pub symbol: Option<Field>,
    pub timeframe: Option<Field>,
    pub entry_time: Option<Field>,
    pub r: Field,
    pub pnl_usd: Option<Field>,
    pub hold_days: Option<Field>,
    /// Days to the PM's S3 state (native strands only).
    pub time_to_s3: Option<Field>,
    pub outcome_class: Option<Field>,
    pub exit_reason: Option<Field>,
    pub strict: bool,
    pub ignore: Vec<String>,
}

/// A checked adapter.
#[derive(Debug, Clone)]
pub struct Adapter {
    pub name: String,
    pub description: Option<String>,
    /// The strands' module (default `pm`).
    pub module: Option<Field>,
    pub decision: DecisionSpec,
    pub outcome: OutcomeSpec,
}

fn opt(text: &Option<FieldText>, what: &str) -> Result<Option<Field>, AdapterError> {
    text.as_ref().map(|t| Field::parse(t, what)).transpose()
}

impl Adapter {
    /// Parse and check an adapter file's text.
    pub fn from_json(text: &str) -> Result<Self, AdapterError> {
        let raw: AdapterText =
            serde_json::from_str(text).map_err(|e| AdapterError::spec("adapter", e.to_string()))?;
        if raw.name.trim().is_empty() || raw.name.len() > 64 {
            return Err(AdapterError::spec(
                "name",
                "a non-empty name of at most 64 bytes",
            ));
        }
        let d = &raw.decision;
        let decision = DecisionSpec {
            when: d.when.clone(),
            id: Field::parse(&d.id, "decision.id")?,
            position_id: Field::parse(&d.position_id, "decision.position_id")?,
            trade_id: opt(&d.trade_id, "decision.trade_id")?,
            time: Field::parse(&d.time, "decision.time")?,
            created_at: opt(&d.created_at, "decision.created_at")?,
            symbol: opt(&d.symbol, "decision.symbol")?,
            timeframe: opt(&d.timeframe, "decision.timeframe")?,
            pattern_key: Field::parse(&d.pattern_key, "decision.pattern_key")?,
            category: Field::parse(&d.category, "decision.category")?,
            decision_type: opt(&d.decision_type, "decision.decision_type")?,
            size_frac: opt(&d.size_frac, "decision.size_frac")?,
            scope: d
                .scope
                .iter()
                .map(|(dim, t)| {
                    Ok((
                        dim.clone(),
                        Field::parse(t, &format!("decision.scope.{dim}"))?,
                    ))
                })
                .collect::<Result<_, AdapterError>>()?,
            scope_object: opt(&d.scope_object, "decision.scope_object")?,
            strict: d.strict,
            ignore: d.ignore.clone(),
        };
        let o = &raw.outcome;
        let outcome = OutcomeSpec {
            when: o.when.clone(),
            id: Field::parse(&o.id, "outcome.id")?,
            position_id: Field::parse(&o.position_id, "outcome.position_id")?,
            trade_id: opt(&o.trade_id, "outcome.trade_id")?,
            time: Field::parse(&o.time, "outcome.time")?,
            created_at: opt(&o.created_at, "outcome.created_at")?,
            symbol: opt(&o.symbol, "outcome.symbol")?,
            timeframe: opt(&o.timeframe, "outcome.timeframe")?,
            entry_time: opt(&o.entry_time, "outcome.entry_time")?,
            r: Field::parse(&o.r, "outcome.r")?,
            pnl_usd: opt(&o.pnl_usd, "outcome.pnl_usd")?,
            hold_days: opt(&o.hold_days, "outcome.hold_days")?,
            time_to_s3: opt(&o.time_to_s3, "outcome.time_to_s3")?,
            outcome_class: opt(&o.outcome_class, "outcome.outcome_class")?,
            exit_reason: opt(&o.exit_reason, "outcome.exit_reason")?,
            strict: o.strict,
            ignore: o.ignore.clone(),
        };
        let adapter = Adapter {
            name: raw.name.trim().to_string(),
            description: raw.description,
            module: opt(&raw.module, "module")?,
            decision,
            outcome,
        };
        adapter.check()?;
        Ok(adapter)
    }

    fn check(&self) -> Result<(), AdapterError> {
        DimensionList::new(self.decision.scope.keys().cloned().collect())
            .map_err(|e| AdapterError::spec("decision.scope", e.to_string()))?;
        for (dim, field) in &self.decision.scope {
            if !field.map.is_empty() && field.bins.is_some() {
                return Err(AdapterError::spec(
                    &format!("decision.scope.{dim}"),
                    "either map or bins, not both",
                ));
            }
        }
        for target in self.decision.category.map.values() {
            target
                .parse::<ActionCategory>()
                .map_err(|e| AdapterError::spec("decision.category.map", e.to_string()))?;
        }
        let binned_elsewhere = [
            ("decision.category", &self.decision.category),
            ("decision.pattern_key", &self.decision.pattern_key),
            ("outcome.r", &self.outcome.r),
        ];
        for (what, field) in binned_elsewhere {
            if field.bins.is_some() {
                return Err(AdapterError::spec(
                    what,
                    "bins belong to scope dimensions only",
                ));
            }
        }
        Ok(())
    }

    /// The scope dimensions this adapter declares, by name.
    pub fn dims(&self) -> impl Iterator<Item = &str> {
        self.decision.scope.keys().map(String::as_str)
    }

    /// The binned dimensions and how each is cut.
    pub fn binned_dims(&self) -> impl Iterator<Item = (&str, &BinsText)> {
        self.decision
            .scope
            .iter()
            .filter_map(|(dim, f)| Some((dim.as_str(), f.bins.as_ref()?)))
    }
}
