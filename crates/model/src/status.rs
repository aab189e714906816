//! The closed sets of states the tables record: lesson status, config version status, run outcome,
//! link anomaly kind, a tested subset's verdict. The code passes these enums around; the text appears only where `store`
//! reads and writes a row (and the database refuses any other text with a `CHECK` constraint).

use std::fmt;

/// A stored text that is not one of the enum's values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {what} {text:?}: expected one of {expected}")]
pub struct UnknownStatus {
    /// What was being parsed (`lesson status`, …).
    pub what: &'static str,
    /// The text found.
    pub text: String,
    /// The admitted texts, comma-separated.
    pub expected: &'static str,
}

/// Declares a text enum: `ALL`, `as_str`, `Display`, `FromStr` (exact text) and serde as the text.
macro_rules! text_enum {
    (
        $(#[$meta:meta])*
        $name:ident, $what:literal {
            $( $(#[$vmeta:meta])* $variant:ident => $text:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $( $(#[$vmeta])* $variant ),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$( $name::$variant ),+];

            /// The text stored in the database.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$variant => $text ),+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                // `pad`, so that width and alignment apply as they do to the text.
                f.pad(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = UnknownStatus;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $( $text => Ok($name::$variant), )+
                    _ => Err(UnknownStatus {
                        what: $what,
                        text: s.to_string(),
                        expected: concat!($( $text, ", " ),+).trim_end_matches(", "),
                    }),
                }
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                text.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}

text_enum! {
    /// Where a lesson is in its lifecycle (SPEC §4.8).
    LessonStatus, "lesson status" {
        /// Passed the tests but not (yet) confirmed into the config.
        Candidate => "candidate",
        /// Materialized into the config.
        Active => "active",
        /// Was live, no longer holds (the reason is recorded beside it).
        Retired => "retired",
    }
}

impl LessonStatus {
    /// Candidate or active: still in play for the next run's lifecycle.
    pub fn is_live(self) -> bool {
        matches!(self, Self::Candidate | Self::Active)
    }
}

text_enum! {
    /// A `learning_configs` version's state; at most one version per module is active.
    ConfigStatus, "config status" {
        /// Written by a run without `--activate`: waits to be activated.
        Proposed => "proposed",
        /// What the PM reads.
        Active => "active",
        /// Was active, replaced by a newer activation.
        Superseded => "superseded",
        /// Was active (or newer than the target), undone by a rollback.
        RolledBack => "rolled_back",
    }
}

/// A version starts out proposed.
impl Default for ConfigStatus {
    fn default() -> Self {
        Self::Proposed
    }
}

text_enum! {
    /// How a recorded command ended (`learning_runs.status`).
    RunStatus, "run status" {
        /// Committed (a placebo run is recorded as ok and rolled back).
        Ok => "ok",
        /// `--strict` saw quarantined input: results kept, nothing activated.
        Rejected => "rejected",
        /// Rolled back after an error (recorded in a transaction of its own).
        Failed => "failed",
    }
}

text_enum! {
    /// What the lesson stage decided about one tested subset (`lesson_candidates.verdict`).
    CandidateVerdict, "candidate verdict" {
        /// Selected: an active lesson.
        Lesson => "lesson",
        /// Passed every test, but the per-pattern limit was filled by stronger lessons.
        Candidate => "candidate",
        /// Failed a test or a selection rule (the row's `reason` says which).
        Rejected => "rejected",
    }
}

text_enum! {
    /// Why the linker could not (or would not) attach a strand to a trade (`link_anomalies.kind`).
    /// Declared in the order of their texts, so that maps keyed by kind list them as before.
    AnomalyKind, "link anomaly kind" {
        /// A close whose cycle window holds no action.
        CloseWithoutActions => "close_without_actions",
        /// A second close of the same cycle (same trade_id, or the same exit time).
        DuplicateClose => "duplicate_close",
        /// An action stamped after the close of the trade whose trade_id it carries.
        LateAction => "late_action",
        /// A linked action without pattern_key/action_category (pre-v5): counted, not aggregated.
        LegacyAction => "legacy_action",
        /// An action after the position's last close: its cycle is still open and waits for a later run.
        OpenCycle => "open_cycle_action",
        /// An action whose trade_id disagrees with the close of the cycle that contains it.
        TradeIdMismatch => "trade_id_mismatch",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trips<T>(all: &[T])
    where
        T: Copy + PartialEq + fmt::Debug + fmt::Display + std::str::FromStr + serde::Serialize,
        <T as std::str::FromStr>::Err: fmt::Debug,
    {
        for &v in all {
            assert_eq!(v.to_string().parse::<T>().unwrap(), v);
            assert_eq!(format!("{v:<12}|"), format!("{:<12}|", v.to_string()));
            assert_eq!(
                serde_json::to_string(&v).unwrap(),
                format!("\"{v}\""),
                "serialized as its text"
            );
        }
    }

    #[test]
    fn every_value_round_trips_through_its_text() {
        round_trips(LessonStatus::ALL);
        round_trips(ConfigStatus::ALL);
        round_trips(RunStatus::ALL);
        round_trips(AnomalyKind::ALL);
        round_trips(CandidateVerdict::ALL);
    }

    #[test]
    fn unknown_text_is_refused_with_the_admitted_values() {
        let e = "Active".parse::<LessonStatus>().unwrap_err();
        assert_eq!(
            e.to_string(),
            "unknown lesson status \"Active\": expected one of candidate, active, retired"
        );
        assert!("".parse::<ConfigStatus>().is_err());
        let kind: AnomalyKind = serde_json::from_str("\"open_cycle_action\"").unwrap();
        assert_eq!(kind, AnomalyKind::OpenCycle);
        assert!(serde_json::from_str::<RunStatus>("\"done\"").is_err());
    }

    #[test]
    fn anomaly_kinds_order_as_their_texts() {
        let mut texts: Vec<_> = AnomalyKind::ALL.iter().map(|k| k.as_str()).collect();
        texts.sort_unstable();
        let ordered: Vec<_> = AnomalyKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(texts, ordered);
    }
}
