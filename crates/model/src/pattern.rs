//! Pattern keys: `module=pm|pattern_key=uptrend.S2.add` (family.state.motif).

use std::fmt;

/// A pattern key that does not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed pattern_key {0:?}: expected `module=<m>|pattern_key=<family>.<state>.<motif>` or `<family>.<state>.<motif>`")]
pub struct PatternKeyError(pub String);

/// The parts of a pattern key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternParts<'a> {
    /// The module, when the key is in its long form.
    pub module: Option<&'a str>,
    /// Pattern family (`uptrend`).
    pub family: &'a str,
    /// State (`S2`).
    pub state: &'a str,
    /// Motif (`add`).
    pub motif: &'a str,
}

/// Validate a pattern key and split it. The full key text stays the identifier everywhere.
pub fn parse_pattern_key(key: &str) -> Result<PatternParts<'_>, PatternKeyError> {
    let err = || PatternKeyError(key.to_string());
    let (module, body) = if key.contains('|') || key.starts_with("module=") {
        let mut module = None;
        let mut body = None;
        for part in key.split('|') {
            match part.split_once('=') {
                Some(("module", m)) if !m.is_empty() => module = Some(m),
                Some(("pattern_key", p)) => body = Some(p),
                _ => return Err(err()),
            }
        }
        (module, body.ok_or_else(err)?)
    } else {
        (None, key)
    };
    let mut parts = body.split('.');
    let (Some(family), Some(state), Some(motif)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(err());
    };
    if [family, state, motif].iter().any(|p| p.is_empty()) {
        return Err(err());
    }
    // Motifs may themselves contain dots (`add.v2`); only the first two separators are structural.
    let motif_start = family.len() + state.len() + 2;
    Ok(PatternParts {
        module,
        family,
        state,
        motif: &body[motif_start..],
    })
}

/// A pattern key, owned: built by producers (the demo) and by commands that take a short key,
/// parsed where its parts are needed. Its text form ([`fmt::Display`]) is the identifier stored
/// everywhere: `module=<m>|pattern_key=<family>.<state>.<motif>`, or the bare body without a
/// module.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PatternKey {
    module: Option<String>,
    family: String,
    state: String,
    motif: String,
}

impl PatternKey {
    /// A key of `module` (or a bare one) from its parts.
    pub fn new(module: Option<&str>, family: &str, state: &str, motif: &str) -> Self {
        Self {
            module: module.map(str::to_string),
            family: family.to_string(),
            state: state.to_string(),
            motif: motif.to_string(),
        }
    }

    /// Parse a full or bare key (see [`parse_pattern_key`]).
    pub fn parse(key: &str) -> Result<Self, PatternKeyError> {
        let p = parse_pattern_key(key)?;
        Ok(Self::new(p.module, p.family, p.state, p.motif))
    }

    /// The same pattern under `module` (the full form of a bare key).
    pub fn in_module(mut self, module: &str) -> Self {
        self.module = Some(module.to_string());
        self
    }

    /// The module, when the key names one.
    pub fn module(&self) -> Option<&str> {
        self.module.as_deref()
    }

    /// `family.state.motif`: the pattern as people read it.
    pub fn short(&self) -> String {
        format!("{}.{}.{}", self.family, self.state, self.motif)
    }
}

impl fmt::Display for PatternKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(module) = &self.module {
            write!(f, "module={module}|pattern_key=")?;
        }
        write!(f, "{}.{}.{}", self.family, self.state, self.motif)
    }
}

impl std::str::FromStr for PatternKey {
    type Err = PatternKeyError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The pattern as people read it, without the `module=…|pattern_key=` wrapper
/// (`uptrend.S2.add`); a key that does not parse is shown as it is.
pub fn short_pattern_key(key: &str) -> String {
    PatternKey::parse(key).map_or_else(|_| key.to_string(), |p| p.short())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_keys_drop_the_module_wrapper() {
        assert_eq!(
            short_pattern_key("module=pm|pattern_key=uptrend.S2.add"),
            "uptrend.S2.add"
        );
        assert_eq!(short_pattern_key("range.S1.entry.v2"), "range.S1.entry.v2");
        assert_eq!(short_pattern_key("not a key"), "not a key");
    }

    #[test]
    fn parses_full_and_bare_keys() {
        let p = parse_pattern_key("module=pm|pattern_key=uptrend.S2.add").unwrap();
        assert_eq!(
            (p.module, p.family, p.state, p.motif),
            (Some("pm"), "uptrend", "S2", "add")
        );
        let b = parse_pattern_key("range.S1.entry.v2").unwrap();
        assert_eq!((b.module, b.motif), (None, "entry.v2"));
    }

    #[test]
    fn built_keys_read_back_and_print_as_stored() {
        let full = PatternKey::new(Some("pm"), "uptrend", "S2", "add");
        assert_eq!(full.to_string(), "module=pm|pattern_key=uptrend.S2.add");
        assert_eq!(PatternKey::parse(&full.to_string()).unwrap(), full);
        let bare: PatternKey = "range.S1.entry.v2".parse().unwrap();
        assert_eq!(
            (bare.module(), bare.to_string().as_str()),
            (None, "range.S1.entry.v2")
        );
        let moved = bare.in_module("pm");
        assert_eq!(moved.to_string(), "module=pm|pattern_key=range.S1.entry.v2");
        assert_eq!(moved.short(), "range.S1.entry.v2");
        assert!("uptrend.S2".parse::<PatternKey>().is_err());
    }

    #[test]
    fn rejects_malformed_keys() {
        for bad in [
            "",
            "uptrend.S2",
            "module=pm|uptrend.S2.add",
            "a..b",
            "module=pm|pattern_key=x",
        ] {
            assert!(parse_pattern_key(bad).is_err(), "{bad}");
        }
    }
}
