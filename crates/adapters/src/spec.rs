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
#[derive(Debug, Clone)]
pub enum FieldText {
    One(String),
    FirstOf(Vec<String>),
    Full(FieldObject),
}

/// The form is chosen by the JSON value's first character, so that a mistake inside an object
/// (`{"bins": {"deciles": 3}}`) is reported as itself; serde's untagged enums only say that no
/// form matched.
impl<'de> Deserialize<'de> for FieldText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let raw = Box::<serde_json::value::RawValue>::deserialize(deserializer)?;
        let text = raw.get();
        let parsed = match text.as_bytes().first() {
            Some(b'"') => serde_json::from_str(text).map(FieldText::One),
            Some(b'[') => serde_json::from_str(text).map(FieldText::FirstOf),
            Some(b'{') => serde_json::from_str(text).map(FieldText::Full),
            _ => {
                return Err(D::Error::custom(format!(
                    "expected a template such as \"{{field}}\", a list of templates or an object, found {text}"
                )))
            }
        };
        parsed.map_err(|e| {
            // The position is within the field's own text; the caller adds the file's.
            let message = e.to_string();
            let message = message
                .rsplit_once(" at line ")
                .map_or(message.as_str(), |(m, _)| m);
            D::Error::custom(message)
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldObject {
    template: TemplateText,
    #[serde(default, deserialize_with = "unique_keys")]
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
    /// Fixed, increasing edges.
    Edges(Vec<f64>),
    /// This many quantile bins, learned from the first batch.
    Quantiles(usize),
}

/// An object whose keys must be distinct: serde's map keeps the last of repeated keys, and a
/// repeated scope dimension or mapped value is a mistake to refuse, not to resolve silently.
fn unique_keys<'de, D, V>(deserializer: D) -> Result<BTreeMap<String, V>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    struct Distinct<V>(std::marker::PhantomData<V>);
    impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Distinct<V> {
        type Value = BTreeMap<String, V>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("an object with distinct keys")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut map: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = BTreeMap::new();
            while let Some((key, value)) = map.next_entry::<String, V>()? {
                if out.contains_key(&key) {
                    return Err(serde::de::Error::custom(format!(
                        "key {key:?} is given twice"
                    )));
                }
                out.insert(key, value);
            }
            Ok(out)
        }
    }
    deserializer.deserialize_map(Distinct(std::marker::PhantomData))
}

fn unique_keys_opt<'de, D, V>(deserializer: D) -> Result<Option<BTreeMap<String, V>>, D::Error>
where
    D: serde::Deserializer<'de>,
    V: Deserialize<'de>,
{
    unique_keys(deserializer).map(Some)
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
        if field.scale.is_some() && field.bins.is_some() {
            // The runtime bins the number the PM passes with the frozen edges; edges in scaled
            // units would put a raw number in the wrong bin.
            return Err(AdapterError::spec(
                what,
                "scale and bins together: a binned value is cut as the record gives it (write the edges in its units)",
            ));
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

/// One record kind as written: the fields both kinds share, then each kind's own (a field of the
/// other kind is refused when the kind is checked).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct KindText {
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
    strict: bool,
    #[serde(default)]
    ignore: Vec<String>,
    // Decisions.
    #[serde(default)]
    pattern_key: Option<FieldText>,
    #[serde(default)]
    category: Option<FieldText>,
    #[serde(default)]
    decision_type: Option<FieldText>,
    #[serde(default)]
    size_frac: Option<FieldText>,
    #[serde(default, deserialize_with = "unique_keys_opt")]
    scope: Option<BTreeMap<String, FieldText>>,
    #[serde(default)]
    scope_object: Option<FieldText>,
    // Outcomes.
    #[serde(default)]
    entry_time: Option<FieldText>,
    #[serde(default)]
    r: Option<FieldText>,
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
}

impl KindText {
    /// Refuse the fields of the other kind: they would be silently ignored.
    fn refuse(&self, kind: &str, fields: &[(&str, bool)]) -> Result<(), AdapterError> {
        match fields.iter().find(|(_, set)| *set) {
            Some((name, _)) => Err(AdapterError::spec(
                &format!("{kind}.{name}"),
                format!("not a field of {kind} records"),
            )),
            None => Ok(()),
        }
    }

    fn common(&self, kind: &str) -> Result<CommonSpec, AdapterError> {
        let what = |name: &str| format!("{kind}.{name}");
        Ok(CommonSpec {
            when: self.when.clone(),
            id: Field::parse(&self.id, &what("id"))?,
            position_id: Field::parse(&self.position_id, &what("position_id"))?,
            trade_id: opt(&self.trade_id, &what("trade_id"))?,
            time: Field::parse(&self.time, &what("time"))?,
            created_at: opt(&self.created_at, &what("created_at"))?,
            symbol: opt(&self.symbol, &what("symbol"))?,
            timeframe: opt(&self.timeframe, &what("timeframe"))?,
            strict: self.strict,
            ignore: self.ignore.clone(),
        })
    }

    fn decision(&self) -> Result<DecisionSpec, AdapterError> {
        self.refuse(
            "decision",
            &[
                ("entry_time", self.entry_time.is_some()),
                ("r", self.r.is_some()),
                ("pnl_usd", self.pnl_usd.is_some()),
                ("hold_days", self.hold_days.is_some()),
                ("time_to_s3", self.time_to_s3.is_some()),
                ("outcome_class", self.outcome_class.is_some()),
                ("exit_reason", self.exit_reason.is_some()),
            ],
        )?;
        Ok(DecisionSpec {
            common: self.common("decision")?,
            pattern_key: required(&self.pattern_key, "decision.pattern_key")?,
            category: required(&self.category, "decision.category")?,
            decision_type: opt(&self.decision_type, "decision.decision_type")?,
            size_frac: opt(&self.size_frac, "decision.size_frac")?,
            scope: self
                .scope
                .iter()
                .flatten()
                .map(|(dim, t)| {
                    let field = Field::parse(t, &format!("decision.scope.{dim}"))?;
                    Ok((dim.clone(), field))
                })
                .collect::<Result<_, AdapterError>>()?,
            scope_object: opt(&self.scope_object, "decision.scope_object")?,
        })
    }

    fn outcome(&self) -> Result<OutcomeSpec, AdapterError> {
        self.refuse(
            "outcome",
            &[
                ("pattern_key", self.pattern_key.is_some()),
                ("category", self.category.is_some()),
                ("decision_type", self.decision_type.is_some()),
                ("size_frac", self.size_frac.is_some()),
                ("scope", self.scope.is_some()),
                ("scope_object", self.scope_object.is_some()),
            ],
        )?;
        Ok(OutcomeSpec {
            common: self.common("outcome")?,
            entry_time: opt(&self.entry_time, "outcome.entry_time")?,
            r: required(&self.r, "outcome.r")?,
            pnl_usd: opt(&self.pnl_usd, "outcome.pnl_usd")?,
            hold_days: opt(&self.hold_days, "outcome.hold_days")?,
            time_to_s3: opt(&self.time_to_s3, "outcome.time_to_s3")?,
            outcome_class: opt(&self.outcome_class, "outcome.outcome_class")?,
            exit_reason: opt(&self.exit_reason, "outcome.exit_reason")?,
        })
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct AdapterText {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    module: Option<FieldText>,
    decision: KindText,
    outcome: KindText,
}

/// What both record kinds carry: which records they are, ids, times, and strictness.
#[derive(Debug, Clone)]
pub struct CommonSpec {
    pub when: When,
    pub id: Field,
    pub position_id: Field,
    pub trade_id: Option<Field>,
    pub time: Field,
    pub created_at: Option<Field>,
    pub symbol: Option<Field>,
    pub timeframe: Option<Field>,
    /// Refuse records with fields neither read nor listed in `ignore`.
    pub strict: bool,
    pub ignore: Vec<String>,
}

impl CommonSpec {
    fn fields(&self) -> Vec<&Field> {
        let mut fields = vec![&self.id, &self.position_id, &self.time];
        fields.extend(
            [
                &self.trade_id,
                &self.created_at,
                &self.symbol,
                &self.timeframe,
            ]
            .into_iter()
            .flatten(),
        );
        fields
    }

    /// Every record path the kind reads or ignores (for strict field checks), given its own
    /// fields besides the common ones.
    pub(crate) fn known_paths(&self, own: &[&Field]) -> Vec<String> {
        let mut paths: Vec<String> = self
            .fields()
            .into_iter()
            .chain(own.iter().copied())
            .flat_map(|f| f.templates.iter().flat_map(|t| t.paths()))
            .collect();
        paths.push(self.when.field.clone());
        paths.extend(self.ignore.iter().cloned());
        paths.sort();
        paths.dedup();
        paths
    }
}

/// A decision record's fields (becomes a `pm_action` strand).
#[derive(Debug, Clone)]
pub struct DecisionSpec {
    pub common: CommonSpec,
    pub pattern_key: Field,
    pub category: Field,
    pub decision_type: Option<Field>,
    pub size_frac: Option<Field>,
    /// Dimension → field, by dimension name.
    pub scope: BTreeMap<String, Field>,
    /// An object whose entries are all categorical dimensions (the native strand's `scope`).
    pub scope_object: Option<Field>,
}

impl DecisionSpec {
    /// The fields besides the common ones.
    pub(crate) fn own_fields(&self) -> Vec<&Field> {
        let mut fields = vec![&self.pattern_key, &self.category];
        fields.extend(
            [&self.decision_type, &self.size_frac, &self.scope_object]
                .into_iter()
                .flatten(),
        );
        fields.extend(self.scope.values());
        fields
    }
}

/// An outcome record's fields (becomes a `position_closed` strand).
#[derive(Debug, Clone)]
pub struct OutcomeSpec {
    pub common: CommonSpec,
    pub entry_time: Option<Field>,
    pub r: Field,
    pub pnl_usd: Option<Field>,
    pub hold_days: Option<Field>,
    /// Days to the PM's S3 state (native strands only).
    pub time_to_s3: Option<Field>,
    pub outcome_class: Option<Field>,
    pub exit_reason: Option<Field>,
}

impl OutcomeSpec {
    /// The fields besides the common ones.
    pub(crate) fn own_fields(&self) -> Vec<&Field> {
        let mut fields = vec![&self.r];
        let optional = [
            &self.entry_time,
            &self.pnl_usd,
            &self.hold_days,
            &self.time_to_s3,
            &self.outcome_class,
            &self.exit_reason,
        ];
        fields.extend(optional.into_iter().flatten());
        fields
    }
}

/// A checked adapter.
#[derive(Debug, Clone)]
pub struct Adapter {
    /// The adapter's name (recorded with the bins it freezes).
    pub name: String,
    /// What the adapter reads, in words.
    pub description: Option<String>,
    /// The strands' module (default `pm`).
    pub module: Option<Field>,
    /// How a decision record becomes a `pm_action` strand.
    pub decision: DecisionSpec,
    /// How an outcome record becomes a `position_closed` strand.
    pub outcome: OutcomeSpec,
}

fn required(text: &Option<FieldText>, what: &str) -> Result<Field, AdapterError> {
    match text {
        Some(t) => Field::parse(t, what),
        None => Err(AdapterError::spec(what, "is required")),
    }
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
        let decision = raw.decision.decision()?;
        let outcome = raw.outcome.outcome()?;
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
