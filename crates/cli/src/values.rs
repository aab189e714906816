//! Value parsers clap calls while it parses the command line, so that a malformed date, step,
//! category, scope or table name is reported like any other usage error (one message, exit 2)
//! before a store is opened or a file written.

use learnloop_model::time::{MS_PER_DAY, MS_PER_HOUR};
use learnloop_model::{ActionCategory, Scope, Timestamp};

/// The one date syntax of `--as-of`, `--from`, `--to` and `--start`: a day `YYYY-MM-DD`
/// (midnight UTC) or an RFC 3339 time such as `2026-03-01T14:00:00Z`.
pub fn parse_time(text: &str) -> Result<Timestamp, String> {
    let t = text.trim();
    let expected =
        "expected a date such as 2026-03-01 or an RFC 3339 time such as 2026-03-01T14:00:00Z";
    if t.len() == 10 && !t.contains('T') {
        return match chrono::NaiveDate::parse_from_str(t, "%Y-%m-%d") {
            Ok(day) => {
                let midnight = day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc();
                Ok(Timestamp::from_millis(midnight.timestamp_millis()))
            }
            Err(e) => Err(format!("{text:?} is not a date ({e}): {expected}")),
        };
    }
    Timestamp::parse(t).map_err(|e| format!("{text:?} is not a time ({}): {expected}", e.why))
}

/// `--step`: a positive number with `h`, `d` or `w` (`12h`, `1d`, `1w`; a bare number is days),
/// in milliseconds.
pub fn parse_step(text: &str) -> Result<i64, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let expected = "expected a positive number with h, d or w, such as 12h, 1d or 1w";
    let n: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a step: {expected}"))?;
    let unit_ms = match unit {
        "h" => MS_PER_HOUR,
        "d" | "" => MS_PER_DAY,
        "w" => 7 * MS_PER_DAY,
        _ => return Err(format!("{text:?}: unknown unit {unit:?}: {expected}")),
    };
    let ms = (n * unit_ms as f64).round();
    // Ten thousand years is no replay step; the bound also keeps the cast exact.
    if !(1.0..=3.2e14).contains(&ms) {
        return Err(format!("{text:?} is not a step: {expected}"));
    }
    Ok(ms as i64)
}

/// `--category`: entry, add, trim or exit (any case).
pub fn parse_category(text: &str) -> Result<ActionCategory, String> {
    text.parse::<ActionCategory>().map_err(|e| e.to_string())
}

/// `--scope` as a JSON object (`{"bucket":"micro","timeframe":"1h"}`) or as pairs
/// (`bucket=micro,timeframe=1h`); values are normalised like ingest.
pub fn parse_scope(text: &str) -> Result<Scope, String> {
    let scope = if text.trim_start().starts_with('{') {
        let value: serde_json::Value = serde_json::from_str(text)
            .map_err(|e| format!("{text:?} is not a JSON object: {e}"))?;
        if let Some(dim) = repeated_key(text) {
            return Err(format!("{text:?} gives dimension {dim:?} twice"));
        }
        Scope::from_json(&value)
    } else {
        Scope::from_pairs_text(text)
    };
    scope.map_err(|e| {
        format!("{e} (expected dim=value,dim=value or a JSON object of dimension to value)")
    })
}

/// The first key that a JSON object's text repeats at its top level (`serde_json::Value`
/// keeps the last silently).
fn repeated_key(text: &str) -> Option<String> {
    struct FirstRepeat(Option<String>);
    impl<'de> serde::de::Visitor<'de> for &mut FirstRepeat {
        type Value = ();
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a JSON object")
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
            let mut seen = std::collections::BTreeSet::new();
            while let Some(key) = map.next_key::<String>()? {
                map.next_value::<serde::de::IgnoredAny>()?;
                // Compared as `Scope::from_json` reads them: trimmed.
                let key = key.trim().to_string();
                if self.0.is_none() && !seen.insert(key.clone()) {
                    self.0 = Some(key);
                }
            }
            Ok(())
        }
    }
    let mut found = FirstRepeat(None);
    let mut de = serde_json::Deserializer::from_str(text);
    serde::Deserializer::deserialize_map(&mut de, &mut found).ok()?;
    found.0
}

/// `export TABLE`: one of the store's tables.
pub fn table_parser() -> clap::builder::PossibleValuesParser {
    clap::builder::PossibleValuesParser::new(learnloop_store::schema::TABLES)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_midnight_utc_and_equals_its_rfc3339_time() {
        let day = parse_time("2026-03-01").unwrap();
        assert_eq!(day, parse_time("2026-03-01T00:00:00Z").unwrap());
        assert_eq!(day, parse_time(" 2026-03-01T01:00:00+01:00 ").unwrap());
        assert_eq!(day.millis(), 1_772_323_200_000);
        for bad in [
            "2026-13-01",
            "2026-02-30",
            "01/03/2026",
            "yesterday",
            "",
            "2026-03-01T25:00Z",
        ] {
            let e = parse_time(bad).unwrap_err();
            assert!(e.contains("expected a date such as"), "{bad}: {e}");
        }
    }

    #[test]
    fn steps_in_hours_days_and_weeks() {
        assert_eq!(parse_step("12h"), Ok(12 * MS_PER_HOUR));
        assert_eq!(parse_step("1d"), Ok(MS_PER_DAY));
        assert_eq!(parse_step("2"), Ok(2 * MS_PER_DAY));
        assert_eq!(parse_step("1w"), Ok(7 * MS_PER_DAY));
        assert_eq!(parse_step("0.5d"), Ok(12 * MS_PER_HOUR));
        for bad in ["0d", "-1d", "1m", "d", "", "1e400d", "1..2d"] {
            assert!(parse_step(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn both_scope_syntaxes_give_the_same_scope() {
        let json = parse_scope(r#"{"timeframe":"1h","bucket":" micro "}"#).unwrap();
        let pairs = parse_scope("bucket=micro, timeframe=1h").unwrap();
        assert_eq!(json, pairs);
        assert_eq!(parse_scope("").unwrap(), parse_scope("{}").unwrap());
        assert!(parse_scope("{not json").is_err());
        assert!(parse_scope("bucket").is_err());
    }

    #[test]
    fn categories_in_any_case_and_a_misspelling_is_refused() {
        assert_eq!(parse_category("Add"), Ok(ActionCategory::Add));
        assert!(parse_category("adds")
            .unwrap_err()
            .contains("entry, add, trim, exit"));
    }
}
