//! Timestamps as UTC milliseconds. Rendered as canonical RFC 3339 text for people; tables that
//! need ordering also keep the integer milliseconds.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

pub const MS_PER_HOUR: i64 = 3_600_000;
pub const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Timestamp(pub i64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unparsable timestamp {text:?}: expected RFC 3339 such as 2026-01-31T14:00:00Z ({why})")]
pub struct TimestampError {
    pub text: String,
    pub why: String,
}

impl Timestamp {
    pub fn parse(text: &str) -> Result<Self, TimestampError> {
        let trimmed = text.trim();
        let parsed = DateTime::parse_from_rfc3339(trimmed)
            .or_else(|_| DateTime::parse_from_rfc3339(&trimmed.replacen(' ', "T", 1)));
        match parsed {
            Ok(dt) => Ok(Self(dt.with_timezone(&Utc).timestamp_millis())),
            Err(e) => Err(TimestampError {
                text: text.to_string(),
                why: e.to_string(),
            }),
        }
    }

    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    pub fn millis(self) -> i64 {
        self.0
    }

    /// Canonical text: seconds precision unless the value carries milliseconds.
    pub fn to_rfc3339(self) -> String {
        let dt = DateTime::<Utc>::from_timestamp_millis(self.0).unwrap_or_default();
        let fmt = if self.0.rem_euclid(1000) == 0 {
            SecondsFormat::Secs
        } else {
            SecondsFormat::Millis
        };
        dt.to_rfc3339_opts(fmt, true)
    }

    /// Whole days since 1970-01-01 (UTC), used to group trades by day.
    pub fn day_index(self) -> i64 {
        self.0.div_euclid(MS_PER_DAY)
    }

    pub fn hours_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / MS_PER_HOUR as f64
    }

    pub fn plus_hours(self, hours: f64) -> Self {
        Self(self.0 + (hours * MS_PER_HOUR as f64).round() as i64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339())
    }
}

impl From<Timestamp> for String {
    fn from(t: Timestamp) -> Self {
        t.to_rfc3339()
    }
}

impl TryFrom<String> for Timestamp {
    type Error = TimestampError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Timestamp::parse(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_offsets_to_utc_and_renders_canonically() {
        let t = Timestamp::parse("2026-03-01T02:00:00+02:00").unwrap();
        assert_eq!(t.to_rfc3339(), "2026-03-01T00:00:00Z");
        let m = Timestamp::parse("2026-03-01T00:00:00.250Z").unwrap();
        assert_eq!(m.to_rfc3339(), "2026-03-01T00:00:00.250Z");
        assert_eq!(m.millis() - t.millis(), 250);
        assert!(Timestamp::parse("yesterday").is_err());
    }
}
