//! The action categories of the data contract: what an action did to a position.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What an action did to a position. The closed set of the data contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ActionCategory {
    /// Opens a position.
    Entry,
    /// Adds to an open position.
    Add,
    /// Reduces a position without closing it.
    Trim,
    /// Closes the position.
    Exit,
}

impl ActionCategory {
    /// Every category, in the data contract's order.
    pub const ALL: [ActionCategory; 4] = [Self::Entry, Self::Add, Self::Trim, Self::Exit];

    /// The text of the data contract (`entry`, `add`, `trim`, `exit`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Entry => "entry",
            Self::Add => "add",
            Self::Trim => "trim",
            Self::Exit => "exit",
        }
    }

    /// Entries and adds grow a position; trims and exits shrink it.
    pub fn is_increase(self) -> bool {
        matches!(self, Self::Entry | Self::Add)
    }
}

impl fmt::Display for ActionCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Text that is not one of the four categories.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action category {0:?}: expected one of entry, add, trim, exit")]
pub struct UnknownCategory(pub String);

impl FromStr for ActionCategory {
    type Err = UnknownCategory;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "entry" => Ok(Self::Entry),
            "add" => Ok(Self::Add),
            "trim" => Ok(Self::Trim),
            "exit" => Ok(Self::Exit),
            _ => Err(UnknownCategory(s.to_string())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_case_insensitively_and_round_trips() {
        for c in ActionCategory::ALL {
            assert_eq!(c.as_str().parse::<ActionCategory>().unwrap(), c);
            assert_eq!(
                c.as_str().to_uppercase().parse::<ActionCategory>().unwrap(),
                c
            );
        }
        assert!("hold".parse::<ActionCategory>().is_err());
    }

    /// The runtime (`overrides`) validates configs against its own list of category names: the
    /// two lists must name the same categories in the same order.
    #[test]
    fn the_runtime_names_the_same_categories() {
        let ours: Vec<&str> = ActionCategory::ALL.iter().map(|c| c.as_str()).collect();
        assert_eq!(ours, learnloop_overrides::ACTION_CATEGORIES);
    }
}
