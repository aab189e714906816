//! Synthetic DecisionPackets (another bot's decision log) with closed positions, for the
//! `decision_packets` adapter: one packet per order with ~12 indicators, 4 model confidences, risk
//! checks and size multipliers, and one closed-position record per order with its R multiple.
//!
//! The planted effect lives on a numeric range combined with a category: mean-reversion entries at
//! the open (`ibs_rsi.open.BUY`) with `rsi_2` below 10 in a `bull` regime pay +0.8 R. A placebo
//! plants nothing on the same draws. With mess on, bad records are added on top (a packet without
//! its order id, a close with a NaN R, a packet with a misspelt field), counted in the truth.

use crate::random::{Sampler, Stream};
use crate::regime::SECS_PER_DAY;
use crate::{DemoOptions, EffectPlan, PlantedEffect};
use learnloop_model::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io;
use std::path::Path;

/// The planted effect's size in R.
pub const PLANTED_EFFECT_R: f64 = 0.8;
/// Packets with `rsi_2` below this carry the effect; it is an edge of the shipped adapter's bins.
pub const PLANTED_RSI_BELOW: f64 = 10.0;
/// The bin label the adapter gives those packets.
pub const PLANTED_RSI_BIN: &str = "..10";
/// The module the shipped adapter writes the packets' strands under.
pub const PACKETS_MODULE: &str = "packets";

const STRATEGIES: [&str; 2] = ["ibs_rsi", "breakout"];
const TIMINGS: [&str; 2] = ["open", "close"];
const REGIMES: [&str; 3] = ["bull", "bear", "chop"];
const SECTORS: [&str; 5] = ["tech", "energy", "health", "financials", "industrials"];
const SYMBOLS: [&str; 10] = [
    "AAPL", "MSFT", "XOM", "CVX", "JNJ", "PFE", "JPM", "GS", "CAT", "GE",
];
const EXIT_REASONS: [&str; 4] = ["target", "stop", "time", "signal"];

/// What was generated and planted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PacketTruth {
    /// Decision packets generated.
    pub packets: usize,
    /// Positions closed.
    pub closed_positions: usize,
    /// The planted effects.
    pub effects: Vec<PlantedEffect>,
    /// Bad records added on top of the clean ones, by kind.
    pub bad_records: BTreeMap<String, usize>,
}

/// The generated records: packets grouped by day (one JSON array file per day) and the closes.
#[derive(Debug, Clone, PartialEq)]
pub struct PacketSet {
    /// Packets by day (`YYYY-MM-DD`), one JSON array file each.
    pub days: BTreeMap<String, Vec<Value>>,
    /// The closed-position records.
    pub closes: Vec<Value>,
    /// What was generated and planted.
    pub truth: PacketTruth,
}

/// The daily regime label of the bot's regime model: spells of 1 to 3 days, so most weeks see
/// several regimes. (With week-long spells a regime is confounded with its weeks, and the lesson
/// stage's within-week contrasts rightly cannot tell a regime effect from a week's shock.)
fn regime_spells(sampler: &mut Sampler, days: i64) -> Vec<&'static str> {
    let mut out = Vec::with_capacity(days as usize + 1);
    while (out.len() as i64) <= days {
        let regime = REGIMES[sampler.weighted(&[0.4, 0.3, 0.3])];
        let len = sampler.int_between(1, 3) as usize;
        out.extend(std::iter::repeat_n(regime, len));
    }
    out
}

fn round_to(x: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (x * scale).round() / scale
}

/// Generate `opts.cycles` packets and their closes (`opts.effects`: `Placebo` plants nothing,
/// anything else plants the one packet effect).
pub fn generate_packets(opts: &DemoOptions) -> PacketSet {
    let mut s = Sampler::new(opts.seed, Stream::Packets);
    let period = opts.period_secs();
    let spells = regime_spells(&mut s, period / SECS_PER_DAY);
    let planted = !matches!(opts.effects, EffectPlan::Placebo);
    let mut opens: Vec<i64> = (0..opts.cycles)
        .map(|_| s.int_between(0, (period - 11 * SECS_PER_DAY).max(1)))
        .collect();
    opens.sort_unstable();
    let start_ms = opts.start.millis();
    let at = |secs: i64| Timestamp::from_millis(start_ms + secs * 1000).to_rfc3339();
    let mut set = PacketSet {
        days: BTreeMap::new(),
        closes: Vec::new(),
        truth: PacketTruth {
            packets: opts.cycles,
            closed_positions: opts.cycles,
            effects: Vec::new(),
            bad_records: BTreeMap::new(),
        },
    };
    let mut matching = 0;
    for (i, &open) in opens.iter().enumerate() {
        let regime = spells[(open / SECS_PER_DAY) as usize];
        let strategy = STRATEGIES[s.index(STRATEGIES.len())];
        let timing = TIMINGS[s.index(TIMINGS.len())];
        let side = if s.chance(0.75) { "BUY" } else { "SELL" };
        // Mean reversion buys oversold names: its rsi_2 sits low; a breakout's anywhere.
        let rsi_2 = if strategy == "ibs_rsi" {
            s.uniform(0.0, 30.0)
        } else {
            s.uniform(0.0, 100.0)
        };
        let carries = planted
            && strategy == "ibs_rsi"
            && timing == "open"
            && side == "BUY"
            && regime == "bull"
            && rsi_2 < PLANTED_RSI_BELOW;
        matching += usize::from(carries);
        let r = 0.05 + 0.9 * s.normal() + if carries { PLANTED_EFFECT_R } else { 0.0 };
        let hold_secs = s.int_between(SECS_PER_DAY / 4, 10 * SECS_PER_DAY);
        let symbol = SYMBOLS[s.index(SYMBOLS.len())];
        let order_id = format!("ord-{i:06}");
        let packet = json!({
            "packet_id": format!("dp-{i:06}"),
            "order_id": order_id,
            "timestamp": at(open),
            "symbol": symbol,
            "decision": side,
            "strategy": strategy,
            "strategy_params": {"entry_timing": timing, "lookback": 2, "hold_max_days": 10},
            "regime": regime,
            "sector": SECTORS[s.index(SECTORS.len())],
            "indicators": {
                "rsi_2": round_to(rsi_2, 2),
                "ibs": round_to(s.unit(), 3),
                "atr_14": round_to(s.lognormal(2.0, 0.5), 3),
                "conviction_score": round_to(s.unit(), 3),
                "quality_score": round_to(s.unit(), 3),
                "sma_200_dist": round_to(s.normal() * 0.08, 4),
                "volume_ratio": round_to(s.lognormal(1.0, 0.3), 3),
                "vix": round_to(s.lognormal(18.0, 0.25), 2),
                "adx_14": round_to(s.uniform(10.0, 50.0), 2),
                "macd_hist": round_to(s.normal() * 0.5, 4),
                "bb_pct_b": round_to(s.uniform(-0.2, 1.2), 3),
                "gap_pct": round_to(s.normal() * 0.01, 4),
            },
            "ml": {
                "xgb_conf": round_to(s.uniform(0.4, 0.95), 3),
                "lstm_conf": round_to(s.uniform(0.4, 0.95), 3),
                "rf_conf": round_to(s.uniform(0.4, 0.95), 3),
                "meta_conf": round_to(s.uniform(0.4, 0.95), 3),
            },
            "risk_checks": {"max_position_ok": true, "sector_exposure_ok": true, "drawdown_ok": true, "liquidity_ok": true},
            "size_multipliers": {
                "kelly": round_to(s.uniform(0.5, 1.0), 3),
                "regime": if regime == "bull" { 1.0 } else { 0.8 },
                "vix": round_to(s.uniform(0.7, 1.0), 3),
                "confidence": round_to(s.uniform(0.8, 1.2), 3),
                "sector": 1.0,
            },
            "size_frac": round_to(s.uniform(0.02, 0.1), 4),
        });
        let day = at(open)[..10].to_string();
        set.days.entry(day).or_default().push(packet);
        set.closes.push(json!({
            "position_id": order_id,
            "symbol": symbol,
            "entry_time": at(open),
            "exit_time": at(open + hold_secs),
            "r_multiple": round_to(r, 4),
            "mae_pct": round_to(-s.uniform(0.0, 3.0), 3),
            "mfe_pct": round_to(s.uniform(0.0, 4.0), 3),
            "holding_minutes": hold_secs / 60,
            "exit_reason_norm": EXIT_REASONS[s.index(EXIT_REASONS.len())],
        }));
    }
    if planted {
        set.truth.effects.push(PlantedEffect {
            pattern_key: format!("module={PACKETS_MODULE}|pattern_key=ibs_rsi.open.BUY"),
            action_category: "entry".into(),
            scope: BTreeMap::from([
                ("regime".to_string(), "bull".to_string()),
                ("rsi_2".to_string(), PLANTED_RSI_BIN.to_string()),
            ]),
            effect_r: PLANTED_EFFECT_R,
            starts_at: None,
            stops_at: None,
            kind: Default::default(),
            matching_trades: matching,
            description: format!("rsi_2 below {PLANTED_RSI_BELOW} in a bull regime"),
            effect_id: None,
        });
    }
    if opts.mess {
        add_bad_records(&mut set, &at, period);
    }
    set
}

/// Bad records on top of the clean ones: each must be quarantined, nothing else lost.
fn add_bad_records(set: &mut PacketSet, at: &dyn Fn(i64) -> String, period: i64) {
    let Some(template) = set.days.values().next().and_then(|d| d.first()).cloned() else {
        return;
    };
    let mid = at(period / 2);
    let day = mid[..10].to_string();
    let mut missing_id = template.clone();
    missing_id["packet_id"] = json!("dp-bad-missing-order");
    missing_id["order_id"] = Value::Null;
    missing_id["timestamp"] = json!(mid);
    let mut misspelt = template.clone();
    misspelt["packet_id"] = json!("dp-bad-misspelt");
    misspelt["order_id"] = json!("ord-bad-misspelt");
    misspelt["timestamp"] = json!(mid);
    let rsi = misspelt["indicators"]["rsi_2"].take();
    if let Some(indicators) = misspelt["indicators"].as_object_mut() {
        indicators.remove("rsi_2");
        indicators.insert("rsi2".into(), rsi);
    }
    let packets = set.days.entry(day).or_default();
    packets.push(missing_id);
    packets.push(misspelt);
    set.closes.push(json!({
        "position_id": "ord-bad-nan-r", "symbol": "AAPL", "entry_time": at(period / 3),
        "exit_time": at(period / 3 + SECS_PER_DAY), "r_multiple": "NaN", "mae_pct": -1.0,
        "mfe_pct": 1.0, "holding_minutes": 1440, "exit_reason_norm": "stop",
    }));
    for kind in ["missing_order_id", "misspelt_field", "nan_r_multiple"] {
        set.truth.bad_records.insert(kind.to_string(), 1);
    }
}

/// Write `packets/YYYY-MM-DD.json` (one array per day), `closed_positions.jsonl` and
/// `truth.json` into `dir` (created if needed).
pub fn write_packets(opts: &DemoOptions, dir: &Path) -> io::Result<PacketTruth> {
    let set = generate_packets(opts);
    let packets_dir = dir.join("packets");
    std::fs::create_dir_all(&packets_dir)?;
    remove_stale_days(&packets_dir, &set)?;
    for (day, packets) in &set.days {
        let text = serde_json::to_string_pretty(packets).map_err(io::Error::other)?;
        std::fs::write(packets_dir.join(format!("{day}.json")), text + "\n")?;
    }
    let mut closes = String::new();
    for close in &set.closes {
        // A NaN R is written bare, as Python's json module writes it.
        let line = close
            .to_string()
            .replace("\"r_multiple\":\"NaN\"", "\"r_multiple\":NaN");
        closes.push_str(&line);
        closes.push('\n');
    }
    std::fs::write(dir.join("closed_positions.jsonl"), closes)?;
    let truth = serde_json::to_string_pretty(&set.truth).map_err(io::Error::other)?;
    std::fs::write(dir.join("truth.json"), truth + "\n")?;
    Ok(set.truth)
}

/// Day files an earlier demo wrote into `packets_dir` that this one does not: left there, an
/// ingest of the directory would mix two data sets (and move the as-of).
fn remove_stale_days(packets_dir: &Path, set: &PacketSet) -> io::Result<()> {
    for entry in std::fs::read_dir(packets_dir)? {
        let path = entry?.path();
        let Some(day) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".json"))
        else {
            continue;
        };
        let is_day = day.len() == 10
            && day.char_indices().all(|(i, c)| match i {
                4 | 7 => c == '-',
                _ => c.is_ascii_digit(),
            });
        if is_day && !set.days.contains_key(day) && path.is_file() {
            std::fs::remove_file(&path)?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_demo_into_the_same_directory_leaves_only_its_own_days() {
        let scratch = tempfile::tempdir().unwrap();
        let dir = scratch.path();
        let long = DemoOptions {
            cycles: 300,
            days: 40,
            ..DemoOptions::default()
        };
        write_packets(&long, dir).unwrap();
        std::fs::write(dir.join("packets").join("notes.json"), "{}").unwrap();
        let short = DemoOptions { days: 5, ..long };
        write_packets(&short, dir).unwrap();
        let mut names: Vec<String> = std::fs::read_dir(dir.join("packets"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        let mut expected: Vec<String> = generate_packets(&short)
            .days
            .keys()
            .map(|d| format!("{d}.json"))
            .collect();
        expected.push("notes.json".into()); // not a day file: a user's, left alone
        expected.sort();
        assert_eq!(names, expected);
    }

    #[test]
    fn same_options_same_packets_and_placebo_plants_nothing_on_the_same_draws() {
        let opts = DemoOptions {
            cycles: 400,
            ..DemoOptions::default()
        };
        let a = generate_packets(&opts);
        assert_eq!(a, generate_packets(&opts));
        assert_eq!(a.truth.effects.len(), 1);
        assert!(a.truth.effects[0].matching_trades > 0);
        let placebo = generate_packets(&DemoOptions {
            effects: EffectPlan::Placebo,
            ..opts
        });
        assert!(placebo.truth.effects.is_empty());
        assert_eq!(
            placebo.days, a.days,
            "the same packets, only the outcomes differ"
        );
        let packets: usize = a.days.values().map(Vec::len).sum();
        assert_eq!(packets, 400 + 2);
        assert_eq!(a.closes.len(), 400 + 1);
    }
}
