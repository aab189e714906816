//! The configured scope dimensions. Bit `i` of a scope mask is dimension `i` of this list.

use serde::{Deserialize, Serialize};

/// Most dimensions a 64-bit scope mask can hold.
pub const MAX_DIMS: usize = 64;

/// The dimensions the PM logs (SPEC §2), the default list.
pub const DEFAULT_DIMS: [&str; 10] = [
    "macro_phase",
    "meso_phase",
    "micro_phase",
    "bucket_leader",
    "bucket_rank_position",
    "market_family",
    "bucket",
    "timeframe",
    "A_mode",
    "E_mode",
];

/// A dimension list that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DimensionError {
    /// More than [`MAX_DIMS`] dimensions.
    #[error("{0} scope dimensions configured; at most {MAX_DIMS} fit a 64-bit mask")]
    TooMany(usize),
    /// A name listed twice.
    #[error("scope dimension {0:?} is listed twice")]
    Duplicate(String),
    /// An empty name, or one with `=`, `,` or surrounding blanks (they would break scope text).
    #[error("scope dimension names must be non-empty and must not contain '=' or ','; got {0:?}")]
    BadName(String),
}

/// The ordered list of scope dimensions: the index of a name is its bit in every mask.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<String>", into = "Vec<String>")]
pub struct DimensionList {
    names: Vec<String>,
}

impl Default for DimensionList {
    fn default() -> Self {
        Self::new(DEFAULT_DIMS.iter().map(|s| s.to_string()).collect())
            .expect("default dimensions are valid")
    }
}

impl DimensionList {
    /// Check and build a list (at most [`MAX_DIMS`] distinct, well-formed names).
    pub fn new(names: Vec<String>) -> Result<Self, DimensionError> {
        if names.len() > MAX_DIMS {
            return Err(DimensionError::TooMany(names.len()));
        }
        for (i, n) in names.iter().enumerate() {
            if n.trim().is_empty() || n.contains('=') || n.contains(',') || n.trim() != n {
                return Err(DimensionError::BadName(n.clone()));
            }
            if names[..i].contains(n) {
                return Err(DimensionError::Duplicate(n.clone()));
            }
        }
        Ok(Self { names })
    }

    /// Number of dimensions.
    pub fn len(&self) -> usize {
        self.names.len()
    }

    /// Whether the list is empty.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The names, in bit order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The name of bit `index` (panics when out of range, like indexing).
    pub fn name(&self, index: usize) -> &str {
        &self.names[index]
    }

    /// The bit of `name`, if it is a configured dimension.
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    /// Names of the dimensions whose bits are set in `mask`, in bit order.
    pub fn names_in_mask(&self, mask: u64) -> impl Iterator<Item = &str> + '_ {
        (0..self.names.len())
            .filter(move |i| mask & (1u64 << i) != 0)
            .map(|i| self.names[i].as_str())
    }
}

impl TryFrom<Vec<String>> for DimensionList {
    type Error = DimensionError;
    fn try_from(v: Vec<String>) -> Result<Self, Self::Error> {
        Self::new(v)
    }
}

impl From<DimensionList> for Vec<String> {
    fn from(d: DimensionList) -> Self {
        d.names
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_list_matches_the_spec_order() {
        let d = DimensionList::default();
        assert_eq!(d.len(), 10);
        assert_eq!(d.index_of("macro_phase"), Some(0));
        assert_eq!(d.index_of("E_mode"), Some(9));
        assert_eq!(
            d.names_in_mask(0b10_0000_0101).collect::<Vec<_>>(),
            ["macro_phase", "micro_phase", "E_mode"]
        );
    }

    #[test]
    fn rejects_more_than_64_and_duplicates() {
        let many: Vec<String> = (0..65).map(|i| format!("d{i}")).collect();
        assert_eq!(DimensionList::new(many), Err(DimensionError::TooMany(65)));
        let sixty_four: Vec<String> = (0..64).map(|i| format!("d{i}")).collect();
        assert!(DimensionList::new(sixty_four).is_ok());
        assert!(DimensionList::new(vec!["a".into(), "a".into()]).is_err());
        assert!(DimensionList::new(vec!["a=b".into()]).is_err());
    }
}
