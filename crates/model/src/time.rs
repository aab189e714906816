//! Timestamps as UTC milliseconds. Rendered as canonical RFC 3339 text for people; tables that
//! need ordering also keep the integer milliseconds.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Milliseconds in an hour.
pub const MS_PER_HOUR: i64 = 3_600_000;
/// Milliseconds in a day.
pub const MS_PER_DAY: i64 = 24 * MS_PER_HOUR;

/// A point in time: milliseconds since 1970-01-01 UTC. Text (RFC 3339) only at the edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Timestamp(pub i64);

/// A time text that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unparsable timestamp {text:?}: expected RFC 3339 such as 2026-01-31T14:00:00Z ({why})")]
pub struct TimestampError {
    /// The text found.
    pub text: String,
    /// What the parser said.
    pub why: String,
}

impl Timestamp {
    /// Parse RFC 3339 (any offset, normalised to UTC; a space may stand for the `T`).
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

    /// The time `ms` milliseconds after the epoch.
    pub fn from_millis(ms: i64) -> Self {
        Self(ms)
    }

    /// Milliseconds since the epoch.
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

    /// Text with milliseconds always written (`2026-01-31T14:00:00.000Z`): the form of the
    /// wall-clock columns (`learning_runs.started_at`, a config version's `created_at`, …), kept
    /// byte-identical to what the binary has always written there.
    pub fn to_rfc3339_millis(self) -> String {
        let dt = DateTime::<Utc>::from_timestamp_millis(self.0).unwrap_or_default();
        dt.to_rfc3339_opts(SecondsFormat::Millis, true)
    }

    /// Whole days since 1970-01-01 (UTC), used to group trades by day.
    pub fn day_index(self) -> i64 {
        self.0.div_euclid(MS_PER_DAY)
    }

    /// Hours from `earlier` to this time (negative when `earlier` is later).
    pub fn hours_since(self, earlier: Timestamp) -> f64 {
        (self.0 - earlier.0) as f64 / MS_PER_HOUR as f64
    }

    /// This time moved by `hours` (rounded to the millisecond).
    pub fn plus_hours(self, hours: f64) -> Self {
        Self(self.0 + (hours * MS_PER_HOUR as f64).round() as i64)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, so that width and alignment apply as they do to the text.
        f.pad(&self.to_rfc3339())
    }
}

impl std::str::FromStr for Timestamp {
    type Err = TimestampError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Timestamp::parse(s)
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

/// Serde helpers for wall-clock fields, which serialize as [`Timestamp::to_rfc3339_millis`]
/// (`#[serde(serialize_with = "...")]`).
pub mod wall_clock {
    use super::Timestamp;

    /// A wall-clock time as its millisecond text.
    pub fn serialize<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&t.to_rfc3339_millis())
    }

    /// An optional wall-clock time as its millisecond text, or null.
    pub fn serialize_option<S: serde::Serializer>(
        t: &Option<Timestamp>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&t.to_rfc3339_millis()),
            None => s.serialize_none(),
        }
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

    #[test]
    fn wall_clock_text_always_carries_milliseconds() {
        let t = Timestamp::parse("2026-03-01T00:00:00Z").unwrap();
        assert_eq!(t.to_rfc3339_millis(), "2026-03-01T00:00:00.000Z");
        let m = Timestamp::parse("2026-03-01T00:00:00.250Z").unwrap();
        assert_eq!(m.to_rfc3339_millis(), "2026-03-01T00:00:00.250Z");
        // What the binary writes (chrono's millisecond text) parses back to the same text.
        let written = "2026-12-01T19:42:38.123Z";
        assert_eq!(
            Timestamp::parse(written).unwrap().to_rfc3339_millis(),
            written
        );
    }
}
