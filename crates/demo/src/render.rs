//! Strands as JSON Lines, written by hand: at ~800k lines a `serde_json::Value` tree per line
//! would dominate the run time. Every string the generator writes is still escaped properly.

use crate::book::{
    absent_json, Action, ActionKind, Book, Cycle, Position, TradeIdTag, ABSENT_NULL,
};
use crate::regime::{RegimeTimeline, SECS_PER_DAY};
use crate::vocab::*;
use learnloop_model::Timestamp;
use std::fmt::Write;

/// A JSON object being written into a string; keys are added in call order.
pub struct JsonObject<'a> {
    out: &'a mut String,
    empty: bool,
}

impl<'a> JsonObject<'a> {
    pub fn open(out: &'a mut String) -> Self {
        out.push('{');
        Self { out, empty: true }
    }

    fn key(&mut self, key: &str) {
        if !self.empty {
            self.out.push(',');
        }
        self.empty = false;
        push_json_string(self.out, key);
        self.out.push(':');
    }

    pub fn text(&mut self, key: &str, value: &str) -> &mut Self {
        self.key(key);
        push_json_string(self.out, value);
        self
    }

    /// The key is left out entirely when there is no value.
    pub fn optional_text(&mut self, key: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.text(key, v);
        }
        self
    }

    /// A number with a fixed number of decimals; non-finite values become null (valid JSON).
    pub fn number(&mut self, key: &str, value: f64, decimals: usize) -> &mut Self {
        self.key(key);
        push_fixed(self.out, value, decimals);
        self
    }

    pub fn optional_number(&mut self, key: &str, value: Option<f64>, decimals: usize) -> &mut Self {
        match value {
            Some(v) => self.number(key, v, decimals),
            None => self.raw(key, "null"),
        }
    }

    /// Verbatim JSON (or deliberately non-JSON, such as a bare `NaN`).
    pub fn raw(&mut self, key: &str, raw: &str) -> &mut Self {
        self.key(key);
        self.out.push_str(raw);
        self
    }

    pub fn object(&mut self, key: &str) -> JsonObject<'_> {
        self.key(key);
        JsonObject::open(self.out)
    }

    pub fn close(self) {
        self.out.push('}');
    }
}

pub fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    push_escaped(out, s);
    out.push('"');
}

fn push_escaped(out: &mut String, s: &str) {
    // Generated text is plain ASCII identifiers: copy it whole unless something needs escaping.
    if s.bytes().all(|b| b >= 0x20 && b != b'"' && b != b'\\') {
        out.push_str(s);
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
}

/// `value` with exactly `decimals` decimals, like `{:.decimals$}` but through integer
/// arithmetic, which is several times faster than float formatting and gives the same text
/// (half-way cases may round differently, which does not matter for generated data).
fn push_fixed(out: &mut String, value: f64, decimals: usize) {
    if !value.is_finite() {
        out.push_str("null");
        return;
    }
    let scale = 10f64.powi(decimals as i32);
    let scaled = (value.abs() * scale).round();
    if decimals > 15 || scaled >= 9.0e15 {
        let _ = write!(out, "{value:.decimals$}");
        return;
    }
    let scaled = scaled as u64;
    let unit = 10u64.pow(decimals as u32);
    if value < 0.0 && scaled != 0 {
        out.push('-');
    }
    let _ = write!(out, "{}", scaled / unit);
    if decimals > 0 {
        let _ = write!(out, ".{:0width$}", scaled % unit, width = decimals);
    }
}

/// Decimals that keep about six significant digits, so nano-cap prices do not print as 0.00.
fn price_decimals(price: f64) -> usize {
    if price > 0.0 && price.is_finite() {
        (5 - price.log10().floor() as i64).clamp(2, 14) as usize
    } else {
        2
    }
}

/// One action line, possibly altered for bad input.
pub struct ActionLine<'a> {
    pub id: &'a str,
    pub cycle: &'a Cycle,
    pub action: &'a Action,
}

/// One close line, possibly altered for bad input.
pub struct CloseLine<'a> {
    pub id: &'a str,
    pub cycle: &'a Cycle,
    pub with_position_id: bool,
    pub created_secs: i64,
    /// Written verbatim instead of the R value (e.g. a bare `NaN`).
    pub rr_literal: Option<&'a str>,
}

pub struct Renderer<'a> {
    pub book: &'a Book,
    regimes: &'a RegimeTimeline,
    start_ms: i64,
}

impl<'a> Renderer<'a> {
    pub fn new(book: &'a Book, regimes: &'a RegimeTimeline, start_ms: i64) -> Self {
        Self {
            book,
            regimes,
            start_ms,
        }
    }

    pub fn timestamp(&self, secs: i64) -> String {
        Timestamp::from_millis(self.millis(secs)).to_rfc3339()
    }

    pub fn millis(&self, secs: i64) -> i64 {
        self.start_ms + secs * 1000
    }

    pub fn action_id(&self, cycle: &Cycle, index: usize) -> String {
        format!(
            "{}-t{}-a{}",
            self.book.positions[cycle.position].id,
            cycle.number,
            index + 1
        )
    }

    pub fn close_id(&self, cycle: &Cycle) -> String {
        format!(
            "{}-t{}-close",
            self.book.positions[cycle.position].id, cycle.number
        )
    }

    pub fn clean_action(&self, out: &mut String, cycle: &Cycle, index: usize) {
        let id = self.action_id(cycle, index);
        self.action(
            out,
            &ActionLine {
                id: &id,
                cycle,
                action: &cycle.actions[index],
            },
        );
    }

    pub fn clean_close(&self, out: &mut String, cycle: &Cycle) {
        let id = self.close_id(cycle);
        self.close(
            out,
            &CloseLine {
                id: &id,
                cycle,
                with_position_id: true,
                created_secs: cycle.close_secs,
                rr_literal: None,
            },
        );
    }

    pub fn action(&self, out: &mut String, line: &ActionLine) {
        let position = &self.book.positions[line.cycle.position];
        let a = line.action;
        let trade_id = match a.trade_id {
            TradeIdTag::Own => Some(self.book.trade_id(line.cycle)),
            TradeIdTag::Missing => None,
            TradeIdTag::Next => Some(format!("{}-t{}", position.id, line.cycle.number + 1)),
        };
        let ts = self.timestamp(a.secs);
        let mut strand = JsonObject::open(out);
        self.header(&mut strand, line.id, "pm_action", position);
        strand
            .optional_text("trade_id", trade_id.as_deref())
            .text("created_at", &ts);
        let mut content = strand.object("content");
        content
            .text("position_id", &position.id)
            .optional_text("trade_id", trade_id.as_deref())
            .text("ts", &ts)
            .text("decision_type", a.kind.decision_type())
            .number("size_frac", a.size_frac as f64, 4)
            .number("a_value", a.a_value as f64, 3)
            .number("e_value", a.e_value as f64, 3)
            .text(
                "pattern_key",
                &crate::effects::pattern_key(line.cycle.traits.family, a.state, a.kind),
            )
            .text("action_category", a.kind.category());
        write_scope(&mut content, a);
        let mut controls = content.object("controls");
        let mut signals = controls.object("signals");
        signals
            .number("ts_score", a.signal as f64, 3)
            .number("a_raw", a.a_value as f64 * 0.9 + 0.05, 3)
            .number("e_raw", a.e_value as f64 * 0.9 + 0.05, 3);
        signals.close();
        let mut knobs = controls.object("applied_knobs");
        knobs
            .raw("size_mult", "1.0")
            .raw("entry_aggression_mult", "1.0")
            .raw("exit_aggression_mult", "1.0");
        knobs.close();
        controls.close();
        let mut execution = content.object("execution_result");
        execution
            .text("status", "filled")
            .number("price", a.price, price_decimals(a.price))
            .number("slippage", a.slippage as f64, 4);
        execution.close();
        content.close();
        self.regime_context(&mut strand, a.secs, position);
        strand.close();
    }

    pub fn close(&self, out: &mut String, line: &CloseLine) {
        let c = line.cycle;
        let position = &self.book.positions[c.position];
        let trade_id = self.book.trade_id(c);
        let mut strand = JsonObject::open(out);
        if line.with_position_id {
            self.header(&mut strand, line.id, "position_closed", position);
        } else {
            self.header_without_position(&mut strand, line.id, "position_closed", position);
        }
        strand
            .text("trade_id", &trade_id)
            .text("created_at", &self.timestamp(line.created_secs));
        let mut content = strand.object("content");
        if line.with_position_id {
            content.text("position_id", &position.id);
        }
        content.text("trade_id", &trade_id);
        let mut summary = content.object("trade_summary");
        match line.rr_literal {
            Some(literal) => summary.raw("rr", literal),
            None => summary.number("rr", c.rr, 4),
        };
        let adverse = (-c.rr).clamp(0.0, 1.2);
        let fees = c.risk_usd * 0.01;
        summary
            .number("return", c.stop_frac * c.rr, 5)
            .number("max_drawdown", -c.stop_frac * (0.15 + 0.85 * adverse), 5)
            .number("max_gain", c.stop_frac * (0.2 + 1.15 * c.rr.max(0.0)), 5)
            .text("entry_timestamp", &self.timestamp(c.entry_secs))
            .text("exit_timestamp", &self.timestamp(c.exit_secs))
            .number(
                "hold_time_days",
                (c.exit_secs - c.entry_secs) as f64 / SECS_PER_DAY as f64,
                4,
            )
            .text("outcome_class", outcome_class(c.rr))
            .optional_number("time_to_s3", c.time_to_s3_days, 4)
            .text(
                "cf_entry_improvement_bucket",
                CF_BUCKETS[c.cf_entry as usize],
            )
            .text("cf_exit_improvement_bucket", CF_BUCKETS[c.cf_exit as usize])
            .number("rpnl_usd", c.rr * c.risk_usd, 2)
            .number("total_pnl_usd", c.rr * c.risk_usd - fees, 2);
        summary.close();
        let mut context = content.object("entry_context");
        context
            .text("curator", CURATORS[position.curator as usize])
            .text("chain", CHAINS[position.chain as usize])
            .text("mcap_bucket", CAP_BUCKETS[position.cap_bucket as usize])
            .text("vol_bucket", VOL_BUCKETS[c.vol_bucket as usize])
            .text("age_bucket", AGE_BUCKETS[position.age_bucket as usize])
            .text("intent", FAMILY_INTENTS[c.traits.family as usize]);
        context.close();
        content.text("exit_reason", exit_reason(c));
        content.close();
        self.regime_context(&mut strand, line.created_secs, position);
        strand.close();
    }

    fn header(&self, strand: &mut JsonObject, id: &str, kind: &str, position: &Position) {
        self.header_without_position(strand, id, kind, position);
        strand.text("position_id", &position.id);
    }

    fn header_without_position(
        &self,
        strand: &mut JsonObject,
        id: &str,
        kind: &str,
        position: &Position,
    ) {
        strand
            .text("id", id)
            .text("module", "pm")
            .text("kind", kind)
            .text("symbol", &position.symbol)
            .text("timeframe", TIMEFRAMES[position.timeframe as usize]);
    }

    fn regime_context(&self, strand: &mut JsonObject, secs: i64, position: &Position) {
        let phases = self.regimes.at(secs, position.market_family as usize);
        let mut regime = strand.object("regime_context");
        regime
            .text("macro_phase", PHASES[phases.macro_phase as usize])
            .text("meso_phase", PHASES[phases.meso_phase as usize])
            .text("micro_phase", PHASES[phases.micro_phase as usize]);
        regime.close();
    }
}

/// `content.scope` over the ten default dimensions; absent values keep the producer's spelling.
fn write_scope(content: &mut JsonObject, a: &Action) {
    let mut scope = content.object("scope");
    for dim in 0..N_DIMS {
        let name = dim_name(dim);
        match a.scope[dim] {
            code if code >= ABSENT_NULL => scope.raw(name, absent_json(code)),
            v => {
                let value = dim_values(dim)[v as usize];
                match dim_shape(dim) {
                    JsonShape::Bare => scope.raw(name, value),
                    JsonShape::Text => scope.text(name, value),
                }
            }
        };
    }
    scope.close();
}

fn outcome_class(rr: f64) -> &'static str {
    if rr >= 3.0 {
        "big_win"
    } else if rr > 0.25 {
        "win"
    } else if rr >= -0.25 {
        "breakeven"
    } else if rr > -1.5 {
        "loss"
    } else {
        "big_loss"
    }
}

fn exit_reason(c: &Cycle) -> &'static str {
    let emergency = c
        .actions
        .last()
        .is_some_and(|a| a.kind == ActionKind::EmergencyExit);
    if emergency {
        "emergency_exit"
    } else if c.rr >= 1.5 {
        "take_profit"
    } else if c.rr > 0.0 {
        "trailing_stop"
    } else if c.rr <= -0.8 {
        "stop_loss"
    } else {
        "signal_exit"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_nest_and_escape() {
        let mut out = String::new();
        let mut o = JsonObject::open(&mut out);
        o.text("a", "x\"y\\z\n").number("n", 1.23456, 2);
        let mut inner = o.object("in");
        inner.raw("b", "true").optional_text("skip", None);
        inner.close();
        o.number("nan", f64::NAN, 2)
            .optional_number("none", None, 1);
        o.close();
        assert_eq!(
            out,
            r#"{"a":"x\"y\\z\u000a","n":1.23,"in":{"b":true},"nan":null,"none":null}"#
        );
        let parsed: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(parsed["a"], "x\"y\\z\n");
    }

    #[test]
    fn fixed_decimals_match_float_formatting() {
        for (v, d) in [
            (1.23456, 2),
            (-0.00001, 4),
            (-2.5, 1),
            (0.000730597, 9),
            (123.0, 0),
            (-7.99999, 3),
            (1e300, 2),
        ] {
            let mut out = String::new();
            push_fixed(&mut out, v, d);
            let expected = format!("{v:.d$}").replace("-0.0000", "0.0000");
            assert_eq!(out, expected, "{v} {d}");
        }
        let mut out = String::new();
        push_fixed(&mut out, f64::INFINITY, 2);
        assert_eq!(out, "null");
    }

    #[test]
    fn prices_keep_significant_digits() {
        assert_eq!(price_decimals(0.0000123), 10);
        assert_eq!(price_decimals(12.5), 4);
        assert_eq!(price_decimals(123456.0), 2);
        assert_eq!(price_decimals(0.0), 2);
    }
}
