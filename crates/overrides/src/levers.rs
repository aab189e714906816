//! The one lever vocabulary shared by the lesson builder, the materializer and the runtime.
//!
//! A lever is a bounded adjustment of one PM knob. Multiplicative levers are neutral at 1;
//! `entry_delay_bars` is additive (a number of bars) and neutral at 0.

use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// One knob the learning loop may adjust. The order of [`Lever::ALL`] is the serialization order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Lever {
    /// Multiplies the action's size fraction.
    SizeMult,
    /// Multiplies the entry aggression (`a_value`).
    EntryAggressionMult,
    /// Multiplies the exit aggression (`e_value`).
    ExitAggressionMult,
    /// Multiplies the fraction taken in phase 1 of an entry.
    Phase1FracMult,
    /// Multiplies the trailing-stop distance.
    TrailMult,
    /// Bars to delay an entry by (additive, neutral at 0).
    EntryDelayBars,
}

impl Lever {
    /// Number of levers.
    pub const COUNT: usize = 6;
    /// Every lever, in serialization order.
    pub const ALL: [Lever; Self::COUNT] = [
        Self::SizeMult,
        Self::EntryAggressionMult,
        Self::ExitAggressionMult,
        Self::Phase1FracMult,
        Self::TrailMult,
        Self::EntryDelayBars,
    ];

    /// The lever's name in configs and JSON (`size_mult`, …).
    pub const fn name(self) -> &'static str {
        match self {
            Self::SizeMult => "size_mult",
            Self::EntryAggressionMult => "entry_aggression_mult",
            Self::ExitAggressionMult => "exit_aggression_mult",
            Self::Phase1FracMult => "phase1_frac_mult",
            Self::TrailMult => "trail_mult",
            Self::EntryDelayBars => "entry_delay_bars",
        }
    }

    /// Exact (case-sensitive) name, as written in configs.
    pub fn from_name(name: &str) -> Option<Lever> {
        Self::ALL.into_iter().find(|l| l.name() == name)
    }

    /// Position in [`Lever::ALL`]; the index into [`Levers`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// The value that leaves the PM's knob unchanged.
    pub const fn neutral(self) -> f64 {
        match self {
            Self::EntryDelayBars => 0.0,
            _ => 1.0,
        }
    }

    /// Inclusive `(low, high)` bounds every config value and every blended value lies in.
    pub const fn bounds(self) -> (f64, f64) {
        match self {
            Self::SizeMult => (0.7, 1.3),
            Self::EntryAggressionMult | Self::ExitAggressionMult => (0.8, 1.2),
            Self::Phase1FracMult => (0.5, 1.5),
            Self::TrailMult => (0.5, 2.0),
            Self::EntryDelayBars => (0.0, 6.0),
        }
    }

    /// Clamp into bounds; a non-finite value becomes neutral (never propagate NaN into sizing).
    pub fn clamp(self, value: f64) -> f64 {
        if !value.is_finite() {
            return self.neutral();
        }
        let (lo, hi) = self.bounds();
        value.clamp(lo, hi)
    }

    /// Whether `value` is finite and within the lever's bounds.
    pub fn in_bounds(self, value: f64) -> bool {
        let (lo, hi) = self.bounds();
        value.is_finite() && value >= lo && value <= hi
    }
}

impl fmt::Display for Lever {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A value per lever, absent where the lever is not set. Fixed-size and `Copy`, so blending
/// and copying never allocate. Serializes as a JSON object of the present levers only, in
/// [`Lever::ALL`] order, so the text is deterministic.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Levers([Option<f64>; Lever::COUNT]);

impl Levers {
    /// No lever set.
    pub const EMPTY: Levers = Levers([None; Lever::COUNT]);

    /// No lever set (same as [`Levers::EMPTY`]).
    pub fn new() -> Self {
        Self::EMPTY
    }

    /// The lever's value, if set.
    pub fn get(&self, lever: Lever) -> Option<f64> {
        self.0[lever.index()]
    }

    /// The value, or the lever's neutral value when absent.
    pub fn get_or_neutral(&self, lever: Lever) -> f64 {
        self.get(lever).unwrap_or(lever.neutral())
    }

    /// Set a lever.
    pub fn set(&mut self, lever: Lever, value: f64) {
        self.0[lever.index()] = Some(value);
    }

    /// Unset a lever.
    pub fn remove(&mut self, lever: Lever) {
        self.0[lever.index()] = None;
    }

    /// Builder form: `Levers::new().with(Lever::SizeMult, 1.1)`.
    pub fn with(mut self, lever: Lever, value: f64) -> Self {
        self.set(lever, value);
        self
    }

    /// Present levers in [`Lever::ALL`] order.
    pub fn iter(&self) -> impl Iterator<Item = (Lever, f64)> + '_ {
        Lever::ALL
            .into_iter()
            .filter_map(move |l| self.get(l).map(|v| (l, v)))
    }

    /// Number of levers set.
    pub fn len(&self) -> usize {
        self.0.iter().filter(|v| v.is_some()).count()
    }

    /// Whether no lever is set.
    pub fn is_empty(&self) -> bool {
        self.0.iter().all(Option::is_none)
    }

    /// Unset every lever.
    pub fn clear(&mut self) {
        *self = Self::EMPTY;
    }
}

impl FromIterator<(Lever, f64)> for Levers {
    fn from_iter<I: IntoIterator<Item = (Lever, f64)>>(iter: I) -> Self {
        let mut levers = Levers::EMPTY;
        for (l, v) in iter {
            levers.set(l, v);
        }
        levers
    }
}

impl Serialize for Levers {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.len()))?;
        for (lever, value) in self.iter() {
            map.serialize_entry(lever.name(), &value)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for Levers {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct LeversVisitor;

        impl<'de> Visitor<'de> for LeversVisitor {
            type Value = Levers;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of lever name → number")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Levers, A::Error> {
                let mut levers = Levers::EMPTY;
                while let Some(name) = map.next_key::<String>()? {
                    // A misspelt lever silently ignored would be a lesson silently lost.
                    let lever = Lever::from_name(&name).ok_or_else(|| {
                        let names: Vec<&str> = Lever::ALL.iter().map(|l| l.name()).collect();
                        serde::de::Error::custom(format!(
                            "unknown lever {name:?}: expected one of {}",
                            names.join(", ")
                        ))
                    })?;
                    if levers.get(lever).is_some() {
                        return Err(serde::de::Error::custom(format!(
                            "lever {name:?} given twice"
                        )));
                    }
                    // `null` means absent, like a missing key.
                    if let Some(value) = map.next_value::<Option<f64>>()? {
                        levers.set(lever, value);
                    }
                }
                Ok(levers)
            }
        }

        deserializer.deserialize_map(LeversVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_serde() {
        for l in Lever::ALL {
            assert_eq!(Lever::from_name(l.name()), Some(l));
            assert_eq!(
                serde_json::to_string(&l).unwrap(),
                format!("\"{}\"", l.name())
            );
            let (lo, hi) = l.bounds();
            assert!(lo <= l.neutral() && l.neutral() <= hi);
        }
        assert_eq!(Lever::from_name("SIZE_MULT"), None);
    }

    #[test]
    fn clamp_respects_bounds_and_neutralises_nan() {
        assert_eq!(Lever::SizeMult.clamp(2.0), 1.3);
        assert_eq!(Lever::SizeMult.clamp(0.1), 0.7);
        assert_eq!(Lever::TrailMult.clamp(f64::NAN), 1.0);
        assert_eq!(Lever::EntryDelayBars.clamp(-1.0), 0.0);
    }

    #[test]
    fn levers_serialize_present_only_in_enum_order() {
        let levers = Levers::new()
            .with(Lever::TrailMult, 1.5)
            .with(Lever::SizeMult, 1.1);
        let text = serde_json::to_string(&levers).unwrap();
        assert_eq!(text, r#"{"size_mult":1.1,"trail_mult":1.5}"#);
        let back: Levers = serde_json::from_str(&text).unwrap();
        assert_eq!(back, levers);
    }

    #[test]
    fn levers_reject_unknown_and_duplicate_names() {
        let err = serde_json::from_str::<Levers>(r#"{"size_mul":1.0}"#).unwrap_err();
        assert!(err.to_string().contains("unknown lever \"size_mul\""));
        assert!(serde_json::from_str::<Levers>(r#"{"size_mult":1.0,"size_mult":1.1}"#).is_err());
        let nulls: Levers = serde_json::from_str(r#"{"size_mult":null}"#).unwrap();
        assert!(nulls.is_empty());
    }
}
