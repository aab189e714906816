//! Market regimes over the period: a slow macro phase shared by the whole market, a faster meso
//! phase per market family and a still faster micro phase per market family.
//!
//! The macro phase walks a market cycle (Recover → Good → Euphoria → Chop → Dip → …) with random
//! stage lengths rather than a memoryless chain: every turn of the cycle passes through Euphoria,
//! so any period of a few months has euphoric days and an effect planted there has trades.

use crate::random::Sampler;
use crate::vocab::{
    CHOP, DIP, DOUBLE_DIP, EUPHORIA, GOOD, OH_SHIT, PHASES, PHASE_WEIGHTS, RECOVER,
};

pub const SECS_PER_DAY: i64 = 86_400;
const MESO_STEP_SECS: i64 = 6 * 3_600;
const MICRO_STEP_SECS: i64 = 3_600;
/// Chance per step that a meso/micro phase keeps its value.
const MESO_STAY: f64 = 0.75;
const MICRO_STAY: f64 = 0.5;
/// When a faster phase changes, how often it falls back in line with its slower parent.
const FOLLOW_PARENT: f64 = 0.4;

/// Phases at one instant, as indices into `PHASES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phases {
    pub macro_phase: u8,
    pub meso_phase: u8,
    pub micro_phase: u8,
}

pub struct RegimeTimeline {
    macro_by_day: Vec<u8>,
    /// `[market_family][step]`
    meso: Vec<Vec<u8>>,
    micro: Vec<Vec<u8>>,
}

/// One turn of the market cycle: recovery, a good market, euphoria, chop, a dip and sometimes
/// a second dip or a crash. Optional stages vary the rhythm without ever skipping euphoria.
fn market_cycle(sampler: &mut Sampler) -> Vec<u8> {
    let mut stages = vec![RECOVER, GOOD];
    if sampler.chance(0.3) {
        stages.push(CHOP);
    }
    stages.push(EUPHORIA);
    if sampler.chance(0.7) {
        stages.push(CHOP);
    }
    stages.push(DIP);
    if sampler.chance(0.4) {
        stages.push(DOUBLE_DIP);
    } else if sampler.chance(0.4) {
        stages.push(OH_SHIT);
    }
    stages
}

/// Mean length of a macro phase in days.
fn macro_mean_days(phase: u8) -> f64 {
    match phase {
        EUPHORIA => 13.0,
        GOOD => 11.0,
        RECOVER => 8.0,
        DIP => 7.0,
        DOUBLE_DIP => 5.0,
        OH_SHIT => 4.0,
        _ => 7.0,
    }
}

impl RegimeTimeline {
    /// Build phases covering `period_secs` (plus a day of slack) for `n_market_families` families.
    pub fn build(sampler: &mut Sampler, period_secs: i64, n_market_families: usize) -> Self {
        let days = (period_secs / SECS_PER_DAY + 2) as usize;
        let mut macro_by_day = Vec::with_capacity(days);
        let mut first_cycle = true;
        while macro_by_day.len() < days {
            let stages = market_cycle(sampler);
            // The period starts at a random point of the first cycle, not at its beginning.
            let skip = if first_cycle {
                sampler.index(stages.len())
            } else {
                0
            };
            for (i, &phase) in stages.iter().enumerate().skip(skip) {
                let mut length = macro_mean_days(phase) * sampler.uniform(0.6, 1.4);
                if first_cycle && i == skip {
                    length *= sampler.uniform(0.3, 1.0);
                }
                let length = (length.round() as usize).max(2);
                macro_by_day.resize(macro_by_day.len() + length, phase);
            }
            first_cycle = false;
        }
        macro_by_day.truncate(days);

        let meso_steps = (period_secs / MESO_STEP_SECS + 8) as usize;
        let micro_steps = (period_secs / MICRO_STEP_SECS + 48) as usize;
        let mut meso = Vec::with_capacity(n_market_families);
        let mut micro = Vec::with_capacity(n_market_families);
        for _ in 0..n_market_families {
            let meso_path = follow(sampler, meso_steps, MESO_STAY, |step| {
                macro_by_day[day_of(step as i64 * MESO_STEP_SECS, macro_by_day.len())]
            });
            let micro_path = follow(sampler, micro_steps, MICRO_STAY, |step| {
                let secs = step as i64 * MICRO_STEP_SECS;
                meso_path[((secs / MESO_STEP_SECS) as usize).min(meso_path.len() - 1)]
            });
            meso.push(meso_path);
            micro.push(micro_path);
        }
        Self {
            macro_by_day,
            meso,
            micro,
        }
    }

    /// Phases `secs` seconds after the period start for one market family (clamped to the period).
    pub fn at(&self, secs: i64, market_family: usize) -> Phases {
        let meso = &self.meso[market_family];
        let micro = &self.micro[market_family];
        Phases {
            macro_phase: self.macro_by_day[day_of(secs, self.macro_by_day.len())],
            meso_phase: meso[step_of(secs, MESO_STEP_SECS, meso.len())],
            micro_phase: micro[step_of(secs, MICRO_STEP_SECS, micro.len())],
        }
    }
}

fn day_of(secs: i64, len: usize) -> usize {
    step_of(secs, SECS_PER_DAY, len)
}

fn step_of(secs: i64, step: i64, len: usize) -> usize {
    ((secs.max(0) / step) as usize).min(len - 1)
}

/// A sticky chain that, whenever it moves, either rejoins its parent's phase or jumps at random.
fn follow(sampler: &mut Sampler, steps: usize, stay: f64, parent: impl Fn(usize) -> u8) -> Vec<u8> {
    let mut path = Vec::with_capacity(steps);
    let mut phase = parent(0);
    for step in 0..steps {
        if step > 0 && !sampler.chance(stay) {
            phase = if sampler.chance(FOLLOW_PARENT) {
                parent(step)
            } else {
                sampler.weighted(&PHASE_WEIGHTS) as u8
            };
        }
        path.push(phase);
    }
    debug_assert!(path.iter().all(|p| (*p as usize) < PHASES.len()));
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Stream;

    #[test]
    fn every_macro_phase_shows_up_and_euphoria_is_common() {
        let mut counts = [0usize; 7];
        for seed in 0..20 {
            let mut s = Sampler::new(seed, Stream::Regimes);
            let t = RegimeTimeline::build(&mut s, 180 * SECS_PER_DAY, 2);
            for day in 0..180 {
                counts[t.at(day * SECS_PER_DAY, 0).macro_phase as usize] += 1;
            }
        }
        assert!(counts.iter().all(|c| *c > 0), "{counts:?}");
        let euphoria_share = counts[EUPHORIA as usize] as f64 / (20.0 * 180.0);
        assert!((0.12..0.35).contains(&euphoria_share), "{euphoria_share}");
    }

    #[test]
    fn lookups_outside_the_period_are_clamped() {
        let mut s = Sampler::new(3, Stream::Regimes);
        let t = RegimeTimeline::build(&mut s, 10 * SECS_PER_DAY, 1);
        assert_eq!(t.at(-5, 0), t.at(0, 0));
        let _ = t.at(1_000 * SECS_PER_DAY, 0);
    }
}
