//! A lesson's levers, in the runtime's vocabulary, from its shrunk edge (before decay).

use learnloop_model::{ActionCategory, LoopConfig};
use learnloop_overrides::{Lever, Levers};

/// `size_mult = 1 + gain·edge`; entries and adds also lean their entry aggression the same way
/// at half the gain; trims and exits lean exit aggression the other way (a scope whose trims were
/// followed by poor outcomes calls for exiting more aggressively). Each clamped to its bounds.
pub fn lesson_levers(category: ActionCategory, shrunk_edge: f64, cfg: &LoopConfig) -> Levers {
    let gain = cfg.materialize.gain;
    let mut levers = Levers::EMPTY;
    levers.set(
        Lever::SizeMult,
        Lever::SizeMult.clamp(1.0 + gain * shrunk_edge),
    );
    if category.is_increase() {
        let v = Lever::EntryAggressionMult.clamp(1.0 + 0.5 * gain * shrunk_edge);
        levers.set(Lever::EntryAggressionMult, v);
    } else {
        let v = Lever::ExitAggressionMult.clamp(1.0 - 0.5 * gain * shrunk_edge);
        levers.set(Lever::ExitAggressionMult, v);
    }
    levers
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levers_follow_the_edge_within_bounds() {
        let cfg = LoopConfig::default();
        let l = lesson_levers(ActionCategory::Add, 0.4, &cfg);
        assert_eq!(l.get(Lever::SizeMult), Some(1.2));
        assert_eq!(l.get(Lever::EntryAggressionMult), Some(1.1));
        assert_eq!(l.get(Lever::ExitAggressionMult), None);
        let big = lesson_levers(ActionCategory::Trim, -3.0, &cfg);
        assert_eq!(big.get(Lever::SizeMult), Some(0.7));
        assert_eq!(big.get(Lever::ExitAggressionMult), Some(1.2));
    }
}
