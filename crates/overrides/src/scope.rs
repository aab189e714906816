//! How the PM hands an action's scope to a lookup without copying it: anything that can answer
//! "what is this dimension's value?" with a borrowed string. Absent dimensions answer `None`.
//! Values must already be normalised the way ingest normalises them (trimmed, canonical numbers,
//! no "unknown"), since overrides were learned from normalised scopes.

use crate::hash::str_eq;
use std::collections::{BTreeMap, HashMap};
use std::hash::BuildHasher;
use std::marker::PhantomData;

/// An action's scope as the lookup reads it: the value of a dimension, if present.
pub trait ScopeView {
    /// The value of `dim`, if the action has one.
    fn get(&self, dim: &str) -> Option<&str>;
}

impl<T: ScopeView + ?Sized> ScopeView for &T {
    fn get(&self, dim: &str) -> Option<&str> {
        (**self).get(dim)
    }
}

impl ScopeView for BTreeMap<String, String> {
    fn get(&self, dim: &str) -> Option<&str> {
        BTreeMap::get(self, dim).map(String::as_str)
    }
}

impl ScopeView for BTreeMap<&str, &str> {
    fn get(&self, dim: &str) -> Option<&str> {
        BTreeMap::get(self, dim).copied()
    }
}

impl<S: BuildHasher> ScopeView for HashMap<String, String, S> {
    fn get(&self, dim: &str) -> Option<&str> {
        HashMap::get(self, dim).map(String::as_str)
    }
}

impl<S: BuildHasher> ScopeView for HashMap<&str, &str, S> {
    fn get(&self, dim: &str) -> Option<&str> {
        HashMap::get(self, dim).copied()
    }
}

/// Pairs, first match wins. Cheapest to build on the PM's side for a handful of dims.
impl ScopeView for [(&str, &str)] {
    fn get(&self, dim: &str) -> Option<&str> {
        self.iter().find(|(d, _)| str_eq(d, dim)).map(|(_, v)| *v)
    }
}

impl ScopeView for [(String, String)] {
    fn get(&self, dim: &str) -> Option<&str> {
        self.iter()
            .find(|(d, _)| str_eq(d, dim))
            .map(|(_, v)| v.as_str())
    }
}

impl<const N: usize> ScopeView for [(&str, &str); N] {
    fn get(&self, dim: &str) -> Option<&str> {
        ScopeView::get(self.as_slice(), dim)
    }
}

impl ScopeView for Vec<(String, String)> {
    fn get(&self, dim: &str) -> Option<&str> {
        ScopeView::get(self.as_slice(), dim)
    }
}

impl ScopeView for Vec<(&str, &str)> {
    fn get(&self, dim: &str) -> Option<&str> {
        ScopeView::get(self.as_slice(), dim)
    }
}

/// Adapts a closure, for scope types this crate cannot know (e.g. the model crate's `Scope`):
/// `FnScope::new(|dim| scope.get(dim))`.
pub struct FnScope<'a, F> {
    f: F,
    _borrow: PhantomData<&'a str>,
}

impl<'a, F: Fn(&str) -> Option<&'a str>> FnScope<'a, F> {
    /// A scope answered by `f`.
    pub fn new(f: F) -> Self {
        Self {
            f,
            _borrow: PhantomData,
        }
    }
}

impl<'a, F: Fn(&str) -> Option<&'a str>> ScopeView for FnScope<'a, F> {
    fn get(&self, dim: &str) -> Option<&str> {
        (self.f)(dim)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn phase<S: ScopeView + ?Sized>(s: &S) -> Option<&str> {
        s.get("macro_phase")
    }

    #[test]
    fn every_view_answers_the_same() {
        let btree: BTreeMap<String, String> =
            [("macro_phase".to_string(), "Good".to_string())].into();
        let pairs = [("bucket", "mid"), ("macro_phase", "Good")];
        let hash: HashMap<String, String> = btree.clone().into_iter().collect();
        let closure = FnScope::new(|d: &str| btree.get(d).map(String::as_str));
        assert_eq!(phase(&btree), Some("Good"));
        assert_eq!(phase(&pairs), Some("Good"));
        assert_eq!(phase(&pairs[..]), Some("Good"));
        assert_eq!(phase(&hash), Some("Good"));
        assert_eq!(phase(&closure), Some("Good"));
        assert_eq!(ScopeView::get(&pairs, "timeframe"), None);
    }
}
