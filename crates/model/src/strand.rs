//! Strands as they arrive (`RawStrand`) and as the loop uses them (`TypedStrand`).
//! Parsing is pure: every failure is a `QuarantineReason` naming the field and what was expected.

use crate::category::ActionCategory;
use crate::pattern::parse_pattern_key;
use crate::scope::Scope;
use crate::time::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::fmt;

mod content;

/// Why a strand cannot be used. `code` groups them in `status`; `detail` names the row's problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantineReason {
    /// The group the reason belongs to (what `status` counts by).
    pub code: QuarantineCode,
    /// The row's own problem: the field and what was expected instead.
    pub detail: String,
}

/// The kinds of unusable input, stored as text in `quarantine.reason_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum QuarantineCode {
    /// The line or `content` is not valid JSON (or not a JSON object).
    MalformedJson,
    /// A required field is absent or blank.
    MissingField,
    /// A field has the wrong type or an unusable value.
    BadField,
    /// A time field is not RFC 3339.
    BadTimestamp,
    /// `kind` is neither `pm_action` nor `position_closed`.
    UnknownKind,
    /// `action_category` is not one of the loop's categories.
    UnknownCategory,
    /// `pattern_key` does not have the `module.family.state.category` shape.
    BadPatternKey,
    /// `scope` is not an object of dimension values the loop knows.
    BadScope,
    /// A close's R multiple is missing, NaN or infinite.
    RrNotFinite,
    /// An id seen before with different content (the first one is kept).
    DuplicateIdConflict,
    /// A second close of a cycle already closed.
    DuplicateClose,
    /// A well-formed value outside what any real strand carries (a size fraction of 3, an R of
    /// 1e300, a timestamp in year 9999, an id of a megabyte).
    OutOfRange,
    /// Bytes that are not text in the file's encoding (invalid UTF-8, an unpaired UTF-16 surrogate).
    BadEncoding,
}

impl QuarantineCode {
    /// The text stored in `quarantine.reason_code`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::MalformedJson => "malformed_json",
            Self::MissingField => "missing_field",
            Self::BadField => "bad_field",
            Self::BadTimestamp => "bad_timestamp",
            Self::UnknownKind => "unknown_kind",
            Self::UnknownCategory => "unknown_category",
            Self::BadPatternKey => "bad_pattern_key",
            Self::BadScope => "bad_scope",
            Self::RrNotFinite => "rr_not_finite",
            Self::DuplicateIdConflict => "duplicate_id_conflict",
            Self::DuplicateClose => "duplicate_close",
            Self::OutOfRange => "out_of_range",
            Self::BadEncoding => "bad_encoding",
        }
    }
}

impl QuarantineReason {
    /// A reason of kind `code` with the row's `detail`.
    pub fn new(code: QuarantineCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for QuarantineReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

/// A row of `ad_strands`, exactly as the producer wrote it (content kept as its JSON text).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawStrand {
    /// The strand's unique id (idempotence key of ingest).
    pub id: String,
    /// The producing module (`pm` when absent).
    pub module: String,
    /// `pm_action` or `position_closed` ([`KIND_ACTION`], [`KIND_CLOSE`]).
    pub kind: String,
    /// Instrument symbol, when the producer gives one.
    pub symbol: Option<String>,
    /// Bar timeframe (`1h`, `4h`, …), when given.
    pub timeframe: Option<String>,
    /// The position the strand belongs to.
    pub position_id: Option<String>,
    /// The trade cycle the strand belongs to, when the producer knows it.
    pub trade_id: Option<String>,
    /// When the producer wrote the strand (RFC 3339 text as received).
    pub created_at: String,
    /// The `content` object as the producer's exact JSON text.
    pub content: String,
    /// The `regime_context` object as JSON text, when given.
    pub regime_context: Option<String>,
}

/// `kind` of an executed action.
pub const KIND_ACTION: &str = "pm_action";
/// `kind` of a closed trade cycle.
pub const KIND_CLOSE: &str = "position_closed";

impl RawStrand {
    /// Parse one JSON Lines record. `content` and `regime_context` may be objects (kept as the
    /// producer's exact text) or JSON text in a string.
    pub fn from_json_line(line: &str) -> Result<Self, QuarantineReason> {
        // serde would read a top-level array into the struct by position: only objects are strands.
        if !line.trim_start().starts_with('{') {
            return Err(QuarantineReason::new(
                QuarantineCode::MalformedJson,
                "a strand line must be a JSON object ({...})",
            ));
        }
        match serde_json::from_str::<LineFields<'_>>(line) {
            Ok(fields) => fields.into_raw(),
            Err(strict_err) => {
                let rewritten = quote_non_finite_literals(line);
                match serde_json::from_str::<LineFields<'_>>(&rewritten) {
                    Ok(fields) if rewritten != line => fields.into_raw(),
                    _ => Err(QuarantineReason::new(
                        QuarantineCode::MalformedJson,
                        strict_err.to_string(),
                    )),
                }
            }
        }
    }

    /// The same strand, whatever the source's rendering: equal fields, except that `created_at`
    /// need only be the same instant and `content`/`regime_context` the same JSON value (a JSON
    /// Lines export and PostgreSQL's jsonb spell one strand differently).
    pub fn same_strand(&self, other: &RawStrand) -> bool {
        if self == other {
            return true;
        }
        let same_json = |a: &str, b: &str| {
            a == b
                || matches!(
                    (serde_json::from_str::<Value>(a), serde_json::from_str::<Value>(b)),
                    (Ok(x), Ok(y)) if x == y
                )
        };
        let same_instant = |a: &str, b: &str| {
            a == b || matches!((Timestamp::parse(a), Timestamp::parse(b)), (Ok(x), Ok(y)) if x == y)
        };
        self.id == other.id
            && self.module == other.module
            && self.kind == other.kind
            && self.symbol == other.symbol
            && self.timeframe == other.timeframe
            && self.position_id == other.position_id
            && self.trade_id == other.trade_id
            && same_instant(&self.created_at, &other.created_at)
            && same_json(&self.content, &other.content)
            && match (&self.regime_context, &other.regime_context) {
                (Some(a), Some(b)) => same_json(a, b),
                (a, b) => a == b,
            }
    }

    /// Validate and normalise into the typed form the loop uses.
    pub fn to_typed(&self) -> Result<TypedStrand, QuarantineReason> {
        let created_at = Timestamp::parse(&self.created_at).map_err(|e| {
            QuarantineReason::new(QuarantineCode::BadTimestamp, format!("created_at: {e}"))
        })?;
        check_plausible_time("created_at", created_at)?;
        // The parser's position is within the content's own text, not the input file's line.
        let in_content = |e: QuarantineReason| {
            QuarantineReason::new(e.code, format!("content is not valid JSON: {}", e.detail))
        };
        let content = match parse_lenient::<content::Content>(&self.content).map_err(in_content)? {
            content::Content::Object(fields) => fields,
            content::Content::NotAnObject => {
                return Err(QuarantineReason::new(
                    QuarantineCode::MalformedJson,
                    "content must be a JSON object",
                ))
            }
        };
        match self.kind.as_str() {
            KIND_ACTION => {
                let scope = content.scope.unwrap_or_else(|| Ok(Scope::default()));
                PmAction::from_content(self, created_at, &content.map, scope)
                    .map(TypedStrand::Action)
            }
            KIND_CLOSE => {
                PositionClose::from_content(self, created_at, &content.map).map(TypedStrand::Close)
            }
            other => Err(QuarantineReason::new(
                QuarantineCode::UnknownKind,
                format!("kind {other:?}: expected pm_action or position_closed"),
            )),
        }
    }
}

/// The top-level fields of a strand line; content stays unparsed until `to_typed`.
#[derive(Deserialize)]
struct LineFields<'a> {
    #[serde(default)]
    id: Value,
    #[serde(default)]
    module: Value,
    #[serde(default)]
    kind: Value,
    #[serde(default)]
    symbol: Value,
    #[serde(default)]
    timeframe: Value,
    #[serde(default)]
    position_id: Value,
    #[serde(default)]
    trade_id: Value,
    #[serde(default)]
    created_at: Value,
    #[serde(borrow, default)]
    content: Option<&'a serde_json::value::RawValue>,
    #[serde(borrow, default)]
    regime_context: Option<&'a serde_json::value::RawValue>,
}

impl LineFields<'_> {
    fn into_raw(self) -> Result<RawStrand, QuarantineReason> {
        let text = |v: Value| match v {
            Value::String(s) => Some(s),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        let embedded = |raw: Option<&serde_json::value::RawValue>| raw.map(|r| r.get().to_string());
        StrandColumns {
            id: text(self.id),
            module: text(self.module),
            kind: text(self.kind),
            symbol: text(self.symbol),
            timeframe: text(self.timeframe),
            position_id: text(self.position_id),
            trade_id: text(self.trade_id),
            created_at: text(self.created_at),
            content: embedded(self.content),
            regime_context: embedded(self.regime_context),
        }
        .into_raw()
    }
}

/// A strand's fields as a table row or a JSON line holds them (`None`: SQL NULL or absent), before
/// the normalisation every source shares: text trimmed, blank text absent, `module` defaulting to
/// "pm", and `content`/`regime_context` given as JSON text (an object, or JSON text inside a JSON
/// string, which is unwrapped; `null` is absent).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct StrandColumns {
    /// Strand id.
    pub id: Option<String>,
    /// Producing module.
    pub module: Option<String>,
    /// `pm_action` or `position_closed`.
    pub kind: Option<String>,
    /// Instrument symbol.
    pub symbol: Option<String>,
    /// Bar timeframe.
    pub timeframe: Option<String>,
    /// Position id.
    pub position_id: Option<String>,
    /// Trade-cycle id.
    pub trade_id: Option<String>,
    /// RFC 3339.
    pub created_at: Option<String>,
    /// The `content` object (JSON text).
    pub content: Option<String>,
    /// The `regime_context` object (JSON text).
    pub regime_context: Option<String>,
}

impl StrandColumns {
    /// The stored form, or why the row cannot be stored (a missing id, kind, created_at or content).
    pub fn into_raw(self) -> Result<RawStrand, QuarantineReason> {
        let raw = RawStrand {
            id: non_blank(self.id).ok_or_else(|| missing("id", "a non-empty strand id"))?,
            module: non_blank(self.module).unwrap_or_else(|| "pm".to_string()),
            kind: non_blank(self.kind)
                .ok_or_else(|| missing("kind", "pm_action or position_closed"))?,
            symbol: non_blank(self.symbol),
            timeframe: non_blank(self.timeframe),
            position_id: non_blank(self.position_id),
            trade_id: non_blank(self.trade_id),
            created_at: non_blank(self.created_at)
                .ok_or_else(|| missing("created_at", "an RFC 3339 UTC timestamp"))?,
            content: embedded_json(self.content)
                .ok_or_else(|| missing("content", "a JSON object"))?,
            regime_context: embedded_json(self.regime_context),
        };
        raw.check_text_lengths()?;
        Ok(raw)
    }

    /// The columns of a stored strand: what [`Self::into_raw`] was given, when it stored them
    /// unchanged ([`Self::stores_verbatim`]).
    pub fn from_raw(raw: &RawStrand) -> Self {
        Self {
            id: Some(raw.id.clone()),
            module: Some(raw.module.clone()),
            kind: Some(raw.kind.clone()),
            symbol: raw.symbol.clone(),
            timeframe: raw.timeframe.clone(),
            position_id: raw.position_id.clone(),
            trade_id: raw.trade_id.clone(),
            created_at: Some(raw.created_at.clone()),
            content: Some(raw.content.clone()),
            regime_context: raw.regime_context.clone(),
        }
    }

    /// Whether [`Self::into_raw`] accepts these columns and stores them unchanged, so that
    /// [`Self::from_raw`] of the stored strand gives them back: a reader then need not keep a copy
    /// of the row to show it as received (in the quarantine) should it be refused later. False for
    /// a row into_raw refuses, trims, completes (`module`) or unwraps (JSON text in a string).
    pub fn stores_verbatim(&self) -> bool {
        let exact = |text: &Option<String>| {
            text.as_deref().is_none_or(|t| {
                !t.is_empty() && t.trim().len() == t.len() && t.len() <= MAX_ID_BYTES
            })
        };
        let present = |text: &Option<String>| text.is_some() && exact(text);
        let json = |text: &Option<String>| {
            text.as_deref()
                .is_none_or(|t| !t.starts_with('"') && t != "null")
        };
        [&self.id, &self.module, &self.kind].into_iter().all(present)
            && [&self.symbol, &self.timeframe, &self.position_id, &self.trade_id]
                .into_iter()
                .all(exact)
            // created_at is not limited in length, only trimmed.
            && self
                .created_at
                .as_deref()
                .is_some_and(|t| !t.is_empty() && t.trim().len() == t.len())
            && self.content.is_some()
            && json(&self.content)
            && json(&self.regime_context)
    }
}

/// Longest identifier or label accepted (ids, position and trade ids, module, kind, symbol,
/// timeframe). Real ones are tens of bytes; a longer one is a producer bug, and as a primary key
/// it would bloat every index that carries it.
pub const MAX_ID_BYTES: usize = 256;

/// Timestamps before this (2000-01-01T00:00:00Z) are unset clocks or unit errors.
pub const EARLIEST_PLAUSIBLE_MS: i64 = 946_684_800_000;
/// Timestamps from this on (2100-01-01T00:00:00Z) are sentinels such as 9999-12-31 or unit errors.
pub const LATEST_PLAUSIBLE_MS: i64 = 4_102_444_800_000;

/// Largest |R multiple| accepted: R is P&L over the initial risk, and a trade that made or lost
/// ten thousand times its risk is a unit error (a price or a percentage), not a trade.
pub const MAX_ABS_RR: f64 = 1e4;
/// Largest |P&L| in USD accepted.
pub const MAX_ABS_PNL_USD: f64 = 1e12;
/// Longest duration in days accepted (`hold_time_days`, `time_to_s3`): a century.
pub const MAX_DAYS: f64 = 36_525.0;

impl RawStrand {
    fn check_text_lengths(&self) -> Result<(), QuarantineReason> {
        let fields = [
            ("id", Some(&self.id)),
            ("module", Some(&self.module)),
            ("kind", Some(&self.kind)),
            ("symbol", self.symbol.as_ref()),
            ("timeframe", self.timeframe.as_ref()),
            ("position_id", self.position_id.as_ref()),
            ("trade_id", self.trade_id.as_ref()),
        ];
        for (name, value) in fields {
            if let Some(v) = value.filter(|v| v.len() > MAX_ID_BYTES) {
                return Err(QuarantineReason::new(
                    QuarantineCode::OutOfRange,
                    format!(
                        "{name} is {} bytes long: expected at most {MAX_ID_BYTES}",
                        v.len()
                    ),
                ));
            }
        }
        Ok(())
    }
}

fn check_plausible_time(field: &str, t: Timestamp) -> Result<Timestamp, QuarantineReason> {
    if (EARLIEST_PLAUSIBLE_MS..LATEST_PLAUSIBLE_MS).contains(&t.millis()) {
        Ok(t)
    } else {
        Err(QuarantineReason::new(
            QuarantineCode::OutOfRange,
            format!("{field} {t} is outside 2000-01-01 .. 2100-01-01: expected a real event time"),
        ))
    }
}

fn check_range(
    field: &str,
    x: f64,
    range: std::ops::RangeInclusive<f64>,
) -> Result<f64, QuarantineReason> {
    if range.contains(&x) {
        Ok(x)
    } else {
        Err(QuarantineReason::new(
            QuarantineCode::OutOfRange,
            format!(
                "{field} is {}: expected a value in [{}, {}]",
                readable_number(x),
                range.start(),
                range.end()
            ),
        ))
    }
}

/// A number as a person reads it in a message: plain, but 1e300 in exponent form rather than
/// as its 301 digits.
fn readable_number(x: f64) -> String {
    if x != 0.0 && !(1e-6..1e15).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// Trimmed text, `None` when blank; reuses the allocation when there is nothing to trim.
fn non_blank(text: Option<String>) -> Option<String> {
    let text = text?;
    let trimmed = text.trim();
    if trimmed.is_empty() {
        None
    } else if trimmed.len() == text.len() {
        Some(text)
    } else {
        Some(trimmed.to_string())
    }
}

/// JSON text as stored: a JSON string holding JSON text is unwrapped, `null` is absent.
fn embedded_json(raw: Option<String>) -> Option<String> {
    let raw = raw?;
    match raw.as_bytes().first() {
        Some(b'"') => serde_json::from_str::<String>(&raw).ok(),
        Some(b'n') if raw == "null" => None,
        _ => Some(raw),
    }
}

/// A strand validated into what the loop uses.
#[derive(Debug, Clone, PartialEq)]
pub enum TypedStrand {
    /// An executed PM action (`pm_action`).
    Action(PmAction),
    /// A closed trade cycle (`position_closed`).
    Close(PositionClose),
}

/// An executed action, normalised. `pattern_key`/`category` are `None` for legacy actions that
/// predate the v5 fields: they count for coverage but cannot be aggregated.
#[derive(Debug, Clone, PartialEq)]
pub struct PmAction {
    /// Id of the `ad_strands` row it came from.
    pub strand_id: String,
    /// Producing module.
    pub module: String,
    /// The position acted on.
    pub position_id: String,
    /// The trade cycle, when the producer stamped it (the linker checks it against the close).
    pub trade_id: Option<String>,
    /// When the action was executed.
    pub ts: Timestamp,
    /// When the strand was written (the as-of cut uses it).
    pub created_at: Timestamp,
    /// The PM's decision type (`entry`, `add`, `trim`, …) as logged.
    pub decision_type: Option<String>,
    /// Fraction of the full size the action moved, when logged.
    pub size_frac: Option<f64>,
    /// The pattern the action followed (v5 strands).
    pub pattern_key: Option<String>,
    /// The action's category (v5 strands).
    pub category: Option<ActionCategory>,
    /// The action's context: dimension → value (normalised).
    pub scope: Scope,
}

impl PmAction {
    /// Whether the action carries the v5 fields the aggregation needs.
    pub fn is_v5(&self) -> bool {
        self.pattern_key.is_some() && self.category.is_some()
    }

    /// `c` holds only the top-level keys listed in `content::READ_KEYS`: a key read here must be
    /// listed there. `scope` is `Scope::from_json` of `content.scope` (read with the content).
    fn from_content(
        raw: &RawStrand,
        created_at: Timestamp,
        c: &impl content::ContentFields,
        scope: Result<Scope, crate::scope::ScopeError>,
    ) -> Result<Self, QuarantineReason> {
        let position_id = position_id(raw, c)?;
        let ts = match c.get("ts") {
            None | Some(Value::Null) => created_at,
            Some(v) => parse_ts_field("content.ts", v)?,
        };
        let pattern_key = match c.get("pattern_key") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => {
                parse_pattern_key(s.trim()).map_err(|e| {
                    QuarantineReason::new(QuarantineCode::BadPatternKey, e.to_string())
                })?;
                Some(s.trim().to_string())
            }
            Some(other) => {
                return Err(QuarantineReason::new(
                    QuarantineCode::BadPatternKey,
                    format!("content.pattern_key is {other}: expected a string"),
                ))
            }
        };
        let category = match c.get("action_category") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s.parse::<ActionCategory>().map_err(|e| {
                QuarantineReason::new(
                    QuarantineCode::UnknownCategory,
                    format!("content.action_category: {e}"),
                )
            })?),
            Some(other) => {
                return Err(QuarantineReason::new(
                    QuarantineCode::UnknownCategory,
                    format!(
                        "content.action_category is {other}: expected entry, add, trim or exit"
                    ),
                ))
            }
        };
        if pattern_key.is_some() != category.is_some() {
            let missing_one = if pattern_key.is_none() {
                "pattern_key"
            } else {
                "action_category"
            };
            return Err(missing(
                &format!("content.{missing_one}"),
                "pattern_key and action_category together (v5 actions carry both)",
            ));
        }
        let scope = scope.map_err(|e| {
            QuarantineReason::new(QuarantineCode::BadScope, format!("content.scope: {e}"))
        })?;
        Ok(Self {
            strand_id: raw.id.clone(),
            module: raw.module.clone(),
            position_id,
            trade_id: trade_id(raw, c),
            ts,
            created_at,
            decision_type: c
                .get("decision_type")
                .and_then(Value::as_str)
                .map(str::to_string),
            size_frac: optional_number(c, "size_frac", "content.size_frac")?
                .map(|x| check_range("content.size_frac", x, 0.0..=1.0))
                .transpose()?,
            pattern_key,
            category,
            scope,
        })
    }
}

/// A closed trade cycle of a position.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionClose {
    /// Id of the `ad_strands` row it came from.
    pub strand_id: String,
    /// Producing module.
    pub module: String,
    /// The position closed.
    pub position_id: String,
    /// The trade cycle, when stamped.
    pub trade_id: Option<String>,
    /// When the strand was written.
    pub created_at: Timestamp,
    /// When the cycle was entered, when reported.
    pub entry_at: Option<Timestamp>,
    /// When the cycle closed (its actions are those before this time).
    pub exit_at: Timestamp,
    /// Raw R multiple as reported (finite); statistics use the winsorized value.
    pub rr: f64,
    /// Profit or loss in US dollars, when reported.
    pub pnl_usd: Option<f64>,
    /// Holding time in days, when reported.
    pub hold_days: Option<f64>,
    /// Hours from entry to the S3 state, when reported.
    pub time_to_s3: Option<f64>,
    /// The producer's outcome label (win/loss/…), when given.
    pub outcome_class: Option<String>,
    /// Why the cycle was closed, when given.
    pub exit_reason: Option<String>,
}

impl PositionClose {
    /// `c` holds only the top-level keys listed in `content::READ_KEYS`: a key read here must be
    /// listed there.
    fn from_content(
        raw: &RawStrand,
        created_at: Timestamp,
        c: &impl content::ContentFields,
    ) -> Result<Self, QuarantineReason> {
        let position_id = position_id(raw, c)?;
        let summary = match c.get("trade_summary") {
            Some(Value::Object(o)) => o,
            _ => {
                return Err(missing(
                    "content.trade_summary",
                    "an object with rr and timestamps",
                ))
            }
        };
        let rr = match summary.get("rr") {
            None | Some(Value::Null) => {
                return Err(QuarantineReason::new(
                    QuarantineCode::RrNotFinite,
                    "content.trade_summary.rr is missing: expected a finite R multiple",
                ))
            }
            Some(v) => match number_value(v) {
                Some(x) if x.is_finite() => {
                    check_range("content.trade_summary.rr", x, -MAX_ABS_RR..=MAX_ABS_RR)?
                }
                _ => {
                    return Err(QuarantineReason::new(
                        QuarantineCode::RrNotFinite,
                        format!("content.trade_summary.rr is {v}: expected a finite R multiple"),
                    ))
                }
            },
        };
        let exit_at = match summary.get("exit_timestamp") {
            None | Some(Value::Null) => created_at,
            Some(v) => parse_ts_field("content.trade_summary.exit_timestamp", v)?,
        };
        let entry_at = match summary.get("entry_timestamp") {
            None | Some(Value::Null) => None,
            Some(v) => Some(parse_ts_field("content.trade_summary.entry_timestamp", v)?),
        };
        check_close_times(created_at, exit_at, entry_at)?;
        let pnl_usd = match optional_number(
            summary,
            "total_pnl_usd",
            "content.trade_summary.total_pnl_usd",
        )? {
            Some(p) => Some(p),
            None => optional_number(summary, "rpnl_usd", "content.trade_summary.rpnl_usd")?,
        }
        .map(|p| {
            check_range(
                "content.trade_summary pnl",
                p,
                -MAX_ABS_PNL_USD..=MAX_ABS_PNL_USD,
            )
        })
        .transpose()?;
        let days = |key: &str| -> Result<Option<f64>, QuarantineReason> {
            let field = format!("content.trade_summary.{key}");
            optional_number(summary, key, &field)?
                .map(|d| check_range(&field, d, 0.0..=MAX_DAYS))
                .transpose()
        };
        Ok(Self {
            strand_id: raw.id.clone(),
            module: raw.module.clone(),
            position_id,
            trade_id: trade_id(raw, c),
            created_at,
            entry_at,
            exit_at,
            rr,
            pnl_usd,
            hold_days: days("hold_time_days")?,
            time_to_s3: days("time_to_s3")?,
            outcome_class: summary
                .get("outcome_class")
                .and_then(Value::as_str)
                .map(str::to_string),
            exit_reason: c
                .get("exit_reason")
                .and_then(Value::as_str)
                .map(str::to_string),
        })
    }
}

fn missing(field: &str, expected: &str) -> QuarantineReason {
    QuarantineReason::new(
        QuarantineCode::MissingField,
        format!("{field} is missing: expected {expected}"),
    )
}

fn position_id(
    raw: &RawStrand,
    c: &impl content::ContentFields,
) -> Result<String, QuarantineReason> {
    let from_content = c.get("position_id").and_then(value_text);
    match (&raw.position_id, from_content) {
        (Some(a), Some(b)) if *a != b => Err(QuarantineReason::new(
            QuarantineCode::BadField,
            format!("position_id {a:?} of the strand disagrees with content.position_id {b:?}"),
        )),
        (Some(a), _) => Ok(a.clone()),
        (None, Some(b)) => Ok(b),
        (None, None) => Err(missing(
            "position_id",
            "the position's id on the strand or in content",
        )),
    }
}

fn trade_id(raw: &RawStrand, c: &impl content::ContentFields) -> Option<String> {
    c.get("trade_id")
        .and_then(value_text)
        .or_else(|| raw.trade_id.clone())
}

fn value_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Numbers, plus numeric text and the non-finite spellings producers write (`"NaN"`, `"Infinity"`).
pub fn number_value(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.trim() {
            "NaN" | "nan" => Some(f64::NAN),
            "Infinity" | "inf" | "+Infinity" => Some(f64::INFINITY),
            "-Infinity" | "-inf" => Some(f64::NEG_INFINITY),
            t => t.parse::<f64>().ok(),
        },
        _ => None,
    }
}

fn optional_number(
    c: &impl content::ContentFields,
    key: &str,
    field: &str,
) -> Result<Option<f64>, QuarantineReason> {
    match c.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match number_value(v) {
            Some(x) if x.is_finite() => Ok(Some(x)),
            _ => Err(QuarantineReason::new(
                QuarantineCode::BadField,
                format!("{field} is {v}: expected a finite number or null"),
            )),
        },
    }
}

/// A close's exit cannot be later than the close was recorded (beyond a day of clock skew), nor
/// its entry later than its exit: such a close would be linked to the wrong trade of its position
/// (actions are matched to the first exit after them) and would count as fresh evidence for years.
fn check_close_times(
    created_at: Timestamp,
    exit_at: Timestamp,
    entry_at: Option<Timestamp>,
) -> Result<(), QuarantineReason> {
    if exit_at.millis() - created_at.millis() > crate::time::MS_PER_DAY {
        return Err(QuarantineReason::new(
            QuarantineCode::BadTimestamp,
            format!(
                "content.trade_summary.exit_timestamp {} is more than a day after the close was recorded ({}): expected the time the position was closed",
                exit_at.to_rfc3339(),
                created_at.to_rfc3339()
            ),
        ));
    }
    if let Some(entry_at) = entry_at.filter(|e| *e > exit_at) {
        return Err(QuarantineReason::new(
            QuarantineCode::BadTimestamp,
            format!(
                "content.trade_summary.entry_timestamp {} is after the exit {}",
                entry_at.to_rfc3339(),
                exit_at.to_rfc3339()
            ),
        ));
    }
    Ok(())
}

fn parse_ts_field(field: &str, v: &Value) -> Result<Timestamp, QuarantineReason> {
    let text = v.as_str().unwrap_or_default();
    let t = Timestamp::parse(text).map_err(|e| {
        QuarantineReason::new(QuarantineCode::BadTimestamp, format!("{field}: {e}"))
    })?;
    check_plausible_time(field, t)
}

/// Strict JSON first; producers written in Python emit bare `NaN`/`Infinity`, which are rewritten
/// to strings (outside string literals) so that the row is judged on its values, not its dialect.
pub fn parse_lenient_json(text: &str) -> Result<Value, QuarantineReason> {
    parse_lenient(text)
}

/// [`parse_lenient_json`] into any type read from JSON.
fn parse_lenient<T: serde::de::DeserializeOwned>(text: &str) -> Result<T, QuarantineReason> {
    match serde_json::from_str::<T>(text) {
        Ok(v) => Ok(v),
        Err(strict_err) => {
            let rewritten = quote_non_finite_literals(text);
            if rewritten != text {
                if let Ok(v) = serde_json::from_str::<T>(&rewritten) {
                    return Ok(v);
                }
            }
            Err(QuarantineReason::new(
                QuarantineCode::MalformedJson,
                strict_err.to_string(),
            ))
        }
    }
}

fn quote_non_finite_literals(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(ch) = rest.chars().next() {
        if in_string {
            out.push(ch);
            if escaped {
                escaped = false;
            } else if ch == '\\' {
                escaped = true;
            } else if ch == '"' {
                in_string = false;
            }
            rest = &rest[ch.len_utf8()..];
            continue;
        }
        if ch == '"' {
            in_string = true;
            out.push(ch);
            rest = &rest[1..];
            continue;
        }
        let literal = ["-Infinity", "Infinity", "NaN"]
            .into_iter()
            .find(|lit| rest.starts_with(lit));
        match literal {
            Some(lit) => {
                out.push('"');
                out.push_str(lit);
                out.push('"');
                rest = &rest[lit.len()..];
            }
            None => {
                out.push(ch);
                rest = &rest[ch.len_utf8()..];
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_strand_spelled_two_ways_is_the_same_strand() {
        let line = r#"{"id":"s1","kind":"pm_action","created_at":"2026-01-02T03:04:05.000Z","content":{"b":1.50,"a":[1,2]},"regime_context":{"x":"y"}}"#;
        let from_file = RawStrand::from_json_line(line).unwrap();
        let from_table = StrandColumns {
            id: Some("s1".into()),
            kind: Some("pm_action".into()),
            created_at: Some("2026-01-02T03:04:05Z".into()),
            content: Some(r#"{"a": [1, 2], "b": 1.5}"#.into()),
            regime_context: Some(r#"{"x": "y"}"#.into()),
            ..StrandColumns::default()
        }
        .into_raw()
        .unwrap();
        assert_ne!(from_file, from_table);
        assert!(from_file.same_strand(&from_table));
        let changed = RawStrand {
            content: r#"{"a": [1, 2], "b": 2}"#.into(),
            ..from_table.clone()
        };
        assert!(!from_file.same_strand(&changed));
        let later = RawStrand {
            created_at: "2026-01-02T03:04:06Z".into(),
            ..from_table
        };
        assert!(!from_file.same_strand(&later));
    }
    use serde_json::json;

    fn line(kind: &str, content: Value) -> String {
        json!({"id": "s1", "module": "pm", "kind": kind, "position_id": "p1",
               "created_at": "2026-01-02T00:00:00Z", "content": content})
        .to_string()
    }

    #[test]
    fn parses_a_v5_action() {
        let raw = RawStrand::from_json_line(&line(
            "pm_action",
            json!({"ts": "2026-01-01T12:00:00Z", "decision_type": "add", "size_frac": 0.25,
                   "pattern_key": "module=pm|pattern_key=uptrend.S2.add", "action_category": "add",
                   "scope": {"macro_phase": "Good", "bucket": "unknown"}, "trade_id": "t1"}),
        ))
        .unwrap();
        let TypedStrand::Action(a) = raw.to_typed().unwrap() else {
            panic!()
        };
        assert_eq!(a.category, Some(ActionCategory::Add));
        assert_eq!(a.trade_id.as_deref(), Some("t1"));
        assert_eq!(a.scope.to_json(), r#"{"macro_phase":"Good"}"#);
        assert_eq!(a.ts.to_rfc3339(), "2026-01-01T12:00:00Z");
        assert!(a.is_v5());
    }

    #[test]
    fn legacy_action_without_v5_fields_is_valid() {
        let raw = RawStrand::from_json_line(&line("pm_action", json!({"decision_type": "entry"})))
            .unwrap();
        let TypedStrand::Action(a) = raw.to_typed().unwrap() else {
            panic!()
        };
        assert!(!a.is_v5());
    }

    #[test]
    fn quarantine_reasons_name_the_field() {
        let cases = [
            (
                line(
                    "pm_action",
                    json!({"pattern_key": "a.b.c", "action_category": "hold"}),
                ),
                QuarantineCode::UnknownCategory,
            ),
            (
                line(
                    "pm_action",
                    json!({"pattern_key": "ab", "action_category": "add"}),
                ),
                QuarantineCode::BadPatternKey,
            ),
            (
                line("pm_action", json!({"ts": "noon"})),
                QuarantineCode::BadTimestamp,
            ),
            (
                line("position_closed", json!({"trade_summary": {"rr": null}})),
                QuarantineCode::RrNotFinite,
            ),
            (
                line("position_closed", json!({"trade_summary": {"rr": "NaN"}})),
                QuarantineCode::RrNotFinite,
            ),
            (
                line("position_closed", json!({})),
                QuarantineCode::MissingField,
            ),
            (line("weird", json!({})), QuarantineCode::UnknownKind),
        ];
        for (text, code) in cases {
            let err = RawStrand::from_json_line(&text)
                .unwrap()
                .to_typed()
                .unwrap_err();
            assert_eq!(err.code, code, "{text}: {err}");
        }
        let no_pos = json!({"id": "x", "kind": "pm_action", "created_at": "2026-01-02T00:00:00Z", "content": {}});
        let err = RawStrand::from_json_line(&no_pos.to_string())
            .unwrap()
            .to_typed()
            .unwrap_err();
        assert!(err.detail.contains("position_id"), "{err}");
        assert_eq!(
            RawStrand::from_json_line("{nope").unwrap_err().code,
            QuarantineCode::MalformedJson
        );
        assert_eq!(
            RawStrand::from_json_line(r#"{"kind":"pm_action"}"#)
                .unwrap_err()
                .code,
            QuarantineCode::MissingField
        );
    }

    #[test]
    fn bare_nan_is_read_as_a_non_finite_rr() {
        let text = r#"{"id":"c","kind":"position_closed","position_id":"p","created_at":"2026-01-02T00:00:00Z","content":{"trade_summary":{"rr":NaN,"note":"NaN inside"}}}"#;
        let err = RawStrand::from_json_line(text)
            .unwrap()
            .to_typed()
            .unwrap_err();
        assert_eq!(err.code, QuarantineCode::RrNotFinite);
    }

    #[test]
    fn out_of_range_numbers_are_told_readably() {
        assert_eq!(readable_number(1e300), "1e300");
        assert_eq!(readable_number(-2.5e-9), "-2.5e-9");
        assert_eq!(readable_number(12.5), "12.5");
        assert_eq!(readable_number(0.0), "0");
        let err = check_range("content.trade_summary.rr", 1e300, -1e3..=1e3).unwrap_err();
        assert_eq!(
            err.detail,
            "content.trade_summary.rr is 1e300: expected a value in [-1000, 1000]"
        );
    }

    #[test]
    fn a_number_beyond_f64_is_quarantined_as_invalid_content() {
        let text = r#"{"id":"c","kind":"position_closed","position_id":"p","created_at":"2026-01-02T00:00:00Z","content":{"trade_summary":{"rr":1e999}}}"#;
        let err = RawStrand::from_json_line(text)
            .unwrap()
            .to_typed()
            .unwrap_err();
        assert_eq!(err.code, QuarantineCode::MalformedJson);
        assert!(
            err.detail
                .starts_with("content is not valid JSON: number out of range"),
            "{err}"
        );
    }

    #[test]
    fn parses_a_close_with_pnl_fallback() {
        let raw = RawStrand::from_json_line(&line(
            "position_closed",
            json!({"trade_summary": {"rr": 1.5, "rpnl_usd": 30.0, "exit_timestamp": "2026-01-01T23:00:00Z",
                   "hold_time_days": 2.0, "time_to_s3": null}, "exit_reason": "tp"}),
        ))
        .unwrap();
        let TypedStrand::Close(c) = raw.to_typed().unwrap() else {
            panic!()
        };
        assert_eq!(
            (c.rr, c.pnl_usd, c.hold_days, c.time_to_s3),
            (1.5, Some(30.0), Some(2.0), None)
        );
        assert_eq!(c.exit_at.to_rfc3339(), "2026-01-01T23:00:00Z");
    }

    #[test]
    fn a_top_level_array_is_not_a_strand() {
        let text = r#"["s1","pm","pm_action","BTC","1h","p1",null,"2026-01-02T00:00:00Z",{}]"#;
        let err = RawStrand::from_json_line(text).unwrap_err();
        assert_eq!(err.code, QuarantineCode::MalformedJson, "{err}");
        assert!(RawStrand::from_json_line(r#"  "a string""#).is_err());
    }

    #[test]
    fn implausible_times_are_quarantined_with_the_field() {
        let at = |created_at: &str, ts: &str| {
            let text = json!({"id": "s1", "kind": "pm_action", "position_id": "p1",
                "created_at": created_at, "content": {"ts": ts}})
            .to_string();
            RawStrand::from_json_line(&text).unwrap().to_typed()
        };
        assert!(at("2026-01-02T00:00:00Z", "2026-01-01T00:00:00Z").is_ok());
        for (created_at, ts, field) in [
            ("9999-12-31T23:59:59Z", "2026-01-01T00:00:00Z", "created_at"),
            ("1970-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "created_at"),
            ("2100-01-01T00:00:00Z", "2026-01-01T00:00:00Z", "created_at"),
            ("2026-01-02T00:00:00Z", "1999-12-31T23:59:59Z", "content.ts"),
        ] {
            let err = at(created_at, ts).unwrap_err();
            assert_eq!(err.code, QuarantineCode::OutOfRange, "{err}");
            assert!(err.detail.starts_with(field), "{err}");
        }
    }

    #[test]
    fn a_close_exiting_after_it_was_recorded_or_entering_after_its_exit_is_quarantined() {
        let close = |exit: &str, entry: &str| {
            let text = json!({"id": "c1", "kind": "position_closed", "position_id": "p1",
                "created_at": "2026-03-01T10:00:00Z",
                "content": {"trade_summary": {"rr": 1.0, "exit_timestamp": exit,
                                              "entry_timestamp": entry}}})
            .to_string();
            RawStrand::from_json_line(&text).unwrap().to_typed()
        };
        // Recorded a little before the exit it reports (clock skew within a day): kept.
        assert!(close("2026-03-01T12:00:00Z", "2026-02-27T00:00:00Z").is_ok());
        for (exit, entry, field) in [
            (
                "2099-12-31T00:00:00Z",
                "2026-02-27T00:00:00Z",
                "content.trade_summary.exit_timestamp",
            ),
            (
                "2026-03-01T09:00:00Z",
                "2026-03-01T09:30:00Z",
                "content.trade_summary.entry_timestamp",
            ),
        ] {
            let err = close(exit, entry).unwrap_err();
            assert_eq!(err.code, QuarantineCode::BadTimestamp, "{err}");
            assert!(err.detail.starts_with(field), "{err}");
        }
    }

    #[test]
    fn absurd_numbers_are_quarantined_and_numeric_strings_accepted() {
        let close = |summary: Value| {
            RawStrand::from_json_line(&line(
                "position_closed",
                json!({ "trade_summary": summary }),
            ))
            .unwrap()
            .to_typed()
        };
        let TypedStrand::Close(c) = close(json!({"rr": "1.25", "hold_time_days": "2"})).unwrap()
        else {
            panic!()
        };
        assert_eq!((c.rr, c.hold_days), (1.25, Some(2.0)));
        for summary in [
            json!({"rr": 1e300}),
            json!({"rr": -1e300}),
            json!({"rr": "1e5"}),
            json!({"rr": 1.0, "total_pnl_usd": 1e300}),
            json!({"rr": 1.0, "hold_time_days": -1.0}),
        ] {
            let err = close(summary.clone()).unwrap_err();
            assert_eq!(err.code, QuarantineCode::OutOfRange, "{summary}: {err}");
        }
        let action = |size: Value| {
            RawStrand::from_json_line(&line("pm_action", json!({ "size_frac": size })))
                .unwrap()
                .to_typed()
        };
        assert!(action(json!("0.5")).is_ok());
        assert!(action(json!(0.0)).is_ok() && action(json!(1.0)).is_ok());
        for size in [json!(-0.01), json!(1.5), json!(-1e300), json!("3")] {
            let err = action(size.clone()).unwrap_err();
            assert_eq!(err.code, QuarantineCode::OutOfRange, "{size}: {err}");
            assert!(err.detail.contains("content.size_frac"), "{err}");
        }
    }

    #[test]
    fn an_oversized_id_is_quarantined_before_it_is_stored() {
        let long = "x".repeat(1 << 20);
        for field in ["id", "position_id", "trade_id"] {
            let mut v = json!({"id": "s1", "kind": "pm_action", "position_id": "p1",
                "created_at": "2026-01-02T00:00:00Z", "content": {}});
            v[field] = json!(long);
            let err = RawStrand::from_json_line(&v.to_string()).unwrap_err();
            assert_eq!(err.code, QuarantineCode::OutOfRange, "{field}");
            assert!(err.detail.starts_with(field), "{err}");
            assert!(
                err.detail.len() < 200,
                "the reason does not echo the megabyte"
            );
        }
        let ok = "y".repeat(MAX_ID_BYTES);
        let v = json!({"id": ok, "kind": "pm_action", "position_id": "p1",
            "created_at": "2026-01-02T00:00:00Z", "content": {}});
        assert!(RawStrand::from_json_line(&v.to_string()).is_ok());
    }

    mod verbatim {
        use super::super::{StrandColumns, MAX_ID_BYTES};
        use proptest::prelude::*;

        /// Column text around every edge into_raw treats specially: blank, padded, JSON text in a
        /// string, `null`, too long.
        fn column() -> impl Strategy<Value = Option<String>> {
            let long = "x".repeat(MAX_ID_BYTES);
            prop::option::weighted(
                0.9,
                prop_oneof![
                    12 => "[a-z0-9]{1,6}",
                    1 => Just(String::new()),
                    1 => Just(" ".to_string()),
                    1 => Just("null".to_string()),
                    1 => Just(r#""{\"a\":1}""#.to_string()),
                    1 => Just(r#""not json"#.to_string()),
                    1 => Just(long.clone()),
                    1 => Just(format!("{long}y")),
                    2 => "[ a-z{}\"]{0,6}",
                ],
            )
        }

        proptest! {
            #![proptest_config(ProptestConfig::with_cases(2048))]
            #[test]
            fn stores_verbatim_says_whether_from_raw_gives_the_columns_back(
                id in column(), module in column(), kind in column(), symbol in column(),
                timeframe in column(), position_id in column(), trade_id in column(),
                created_at in column(), content in column(), regime_context in column(),
            ) {
                let columns = StrandColumns {
                    id, module, kind, symbol, timeframe, position_id, trade_id, created_at,
                    content, regime_context,
                };
                let round_trips = matches!(
                    columns.clone().into_raw(),
                    Ok(raw) if StrandColumns::from_raw(&raw) == columns
                );
                prop_assert_eq!(columns.stores_verbatim(), round_trips);
            }
        }
    }
}
