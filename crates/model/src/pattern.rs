//! Pattern keys: `module=pm|pattern_key=uptrend.S2.add` (family.state.motif).

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed pattern_key {0:?}: expected `module=<m>|pattern_key=<family>.<state>.<motif>` or `<family>.<state>.<motif>`")]
pub struct PatternKeyError(pub String);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatternParts<'a> {
    pub module: Option<&'a str>,
    pub family: &'a str,
    pub state: &'a str,
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

/// The pattern as people read it, without the `module=…|pattern_key=` wrapper
/// (`uptrend.S2.add`); a key that does not parse is shown as it is.
pub fn short_pattern_key(key: &str) -> String {
    match parse_pattern_key(key) {
        Ok(p) => format!("{}.{}.{}", p.family, p.state, p.motif),
        Err(_) => key.to_string(),
    }
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
