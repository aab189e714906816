//! The simulated trading book: positions, their trade cycles and the actions inside each cycle.
//!
//! Times are whole seconds after the period start. A position's cycles live in disjoint
//! segments of the period, so one cycle's actions never fall into another cycle's window.

use crate::effects::EffectRule;
use crate::random::Sampler;
use crate::regime::{RegimeTimeline, SECS_PER_DAY};
use crate::vocab::*;

/// Share of actions whose scope leaves a given dimension absent (null, "" or "unknown").
const ABSENT_DIM_RATE: f64 = 0.03;
/// Share of actions written without a trade_id (older PM builds did not stamp it).
const MISSING_TRADE_ID_RATE: f64 = 0.10;
/// Mean and scale of the R noise: Student-t(4) scaled so that its sd is about 1.2 R.
const NOISE_MEAN_R: f64 = 0.05;
const NOISE_SCALE_R: f64 = 0.85;
/// Rare moonshots and rugs, far beyond the ±10 R winsorization limit.
const EXTREME_TRADE_RATE: f64 = 0.003;

/// Scope value codes ≥ this mean "absent", each with its own spelling in the JSON.
pub const ABSENT_NULL: u8 = 250;
pub const ABSENT_EMPTY: u8 = 251;
pub const ABSENT_UNKNOWN: u8 = 252;
pub const ABSENT_UNKNOWN_UPPER: u8 = 253;

/// The JSON a producer writes for an absent value, by `ABSENT_*` code.
pub fn absent_json(code: u8) -> &'static str {
    match code {
        ABSENT_NULL => "null",
        ABSENT_EMPTY => "\"\"",
        ABSENT_UNKNOWN => "\"unknown\"",
        ABSENT_UNKNOWN_UPPER => "\"UNKNOWN\"",
        _ => "null",
    }
}

pub fn noise_mean_r() -> f64 {
    NOISE_MEAN_R
}

#[derive(Debug, Clone)]
pub struct Position {
    pub id: String,
    pub symbol: String,
    pub market_family: u8,
    pub cap_bucket: u8,
    pub timeframe: u8,
    pub chain: u8,
    pub curator: u8,
    pub age_bucket: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ActionKind {
    Entry,
    Add,
    Trim,
    Exit,
    EmergencyExit,
    /// Not a category of the data contract: only written as deliberately bad input.
    Hold,
}

impl ActionKind {
    pub fn decision_type(self) -> &'static str {
        match self {
            Self::Entry => "entry",
            Self::Add => "add",
            Self::Trim => "trim",
            Self::Exit => "exit",
            Self::EmergencyExit => "emergency_exit",
            Self::Hold => "hold",
        }
    }

    /// `action_category`, which is also the motif of the pattern key.
    pub fn category(self) -> &'static str {
        match self {
            Self::Entry => "entry",
            Self::Add => "add",
            Self::Trim => "trim",
            Self::Exit | Self::EmergencyExit => "exit",
            Self::Hold => "hold",
        }
    }
}

/// Which trade_id an action carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TradeIdTag {
    Own,
    Missing,
    /// The next cycle's id: a PM that bumped its trade counter too early (bad input).
    Next,
}

#[derive(Debug, Clone)]
pub struct Action {
    pub secs: i64,
    pub kind: ActionKind,
    pub state: u8,
    /// Value index per scope dimension, or one of the `ABSENT_*` codes.
    pub scope: [u8; N_DIMS],
    pub a_value: f32,
    pub e_value: f32,
    pub size_frac: f32,
    pub signal: f32,
    pub price: f64,
    pub slippage: f32,
    pub trade_id: TradeIdTag,
}

impl Action {
    pub fn dim_value(&self, dim: usize) -> Option<u8> {
        let v = self.scope[dim];
        (v < ABSENT_NULL).then_some(v)
    }
}

/// What is fixed for a whole trade cycle, shared by its actions.
#[derive(Debug, Clone, Copy)]
pub struct CycleTraits {
    pub family: u8,
    pub leader: u8,
    pub rank: u8,
}

#[derive(Debug, Clone)]
pub struct Cycle {
    pub position: usize,
    /// 1-based number of the cycle within its position (`<position_id>-t<number>`).
    pub number: u32,
    pub traits: CycleTraits,
    pub entry_secs: i64,
    pub exit_secs: i64,
    /// `created_at` of the close: the exit time or a minute later.
    pub close_secs: i64,
    pub closed: bool,
    pub actions: Vec<Action>,
    pub rr: f64,
    pub stop_frac: f64,
    pub risk_usd: f64,
    pub vol_bucket: u8,
    pub cf_entry: u8,
    pub cf_exit: u8,
    pub time_to_s3_days: Option<f64>,
    /// Sum of the planted effects this trade carries (kept for the ground truth).
    pub planted_r: f64,
}

pub struct Book {
    pub positions: Vec<Position>,
    /// Closed cycles first, in position order; open cycles (if any) after them.
    pub cycles: Vec<Cycle>,
    pub period_secs: i64,
}

impl Book {
    pub fn closed_cycles(&self) -> impl Iterator<Item = &Cycle> {
        self.cycles.iter().filter(|c| c.closed)
    }

    pub fn trade_id(&self, cycle: &Cycle) -> String {
        format!("{}-t{}", self.positions[cycle.position].id, cycle.number)
    }

    /// Positions ordered by the free time after their last close, most first (ties by index).
    pub fn positions_by_room(&self) -> Vec<(usize, i64)> {
        let mut last_close = vec![None::<i64>; self.positions.len()];
        for c in self.cycles.iter().filter(|c| c.closed) {
            let slot = &mut last_close[c.position];
            *slot = Some(slot.map_or(c.close_secs, |s| s.max(c.close_secs)));
        }
        let mut rooms: Vec<(usize, i64)> = last_close
            .iter()
            .enumerate()
            .filter_map(|(i, c)| c.map(|secs| (i, self.period_secs - secs)))
            .collect();
        rooms.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        rooms
    }
}

/// Lay out positions and their closed cycles; R of each trade carries the planted effects.
pub fn build_closed_book(
    sampler: &mut Sampler,
    regimes: &RegimeTimeline,
    rules: &[EffectRule],
    cycles: usize,
    positions: usize,
    period_secs: i64,
) -> Book {
    let n_positions = positions.clamp(1, cycles.max(1));
    let positions: Vec<Position> = (0..n_positions)
        .map(|i| draw_position(sampler, position_id(i)))
        .collect();
    let mut per_position = vec![0usize; n_positions];
    if cycles > 0 {
        // Every position trades at least once; the rest of the cycles land anywhere.
        for slot in per_position.iter_mut().take(cycles) {
            *slot = 1;
        }
        for _ in n_positions..cycles {
            per_position[sampler.index(n_positions)] += 1;
        }
    }
    let mut out = Vec::with_capacity(cycles);
    for (p, &n) in per_position.iter().enumerate() {
        let segments = split_period(sampler, n, period_secs);
        for (k, segment) in segments.into_iter().enumerate() {
            let cycle = closed_cycle(sampler, regimes, rules, &positions[p], p, k + 1, segment);
            out.push(cycle);
        }
    }
    Book {
        positions,
        cycles: out,
        period_secs,
    }
}

/// Give the `count` positions with the most free time at the end an extra cycle that has not
/// closed yet: an entry and a few adds up to the end of the period, no exit, no close.
pub fn add_open_cycles(
    book: &mut Book,
    sampler: &mut Sampler,
    regimes: &RegimeTimeline,
    count: usize,
) -> Vec<usize> {
    let mut hosts = Vec::new();
    let mut cycles_per_position = vec![0u32; book.positions.len()];
    for c in &book.cycles {
        cycles_per_position[c.position] += 1;
    }
    for (p, room) in book.positions_by_room() {
        if hosts.len() == count {
            break;
        }
        if room < 600 {
            break; // sorted by room: nobody further down has space either
        }
        let number = cycles_per_position[p] + 1;
        let from = book.period_secs - room;
        let entry = from + (room as f64 * sampler.uniform(0.1, 0.6)) as i64;
        let traits = draw_traits(sampler);
        let position = &book.positions[p];
        let n_adds = sampler.int_between(1, 4) as usize;
        let mut times: Vec<i64> = (0..n_adds)
            .map(|_| sampler.int_between(entry + 1, book.period_secs))
            .collect();
        times.sort_unstable();
        let mut state = sampler.weighted(&ENTRY_STATE_WEIGHTS) as u8;
        let mut actions = vec![draw_action(
            sampler,
            regimes,
            position,
            traits,
            entry,
            ActionKind::Entry,
            state,
        )];
        for t in times {
            state = progress_state(sampler, state, 0.2);
            actions.push(draw_action(
                sampler,
                regimes,
                position,
                traits,
                t,
                ActionKind::Add,
                state,
            ));
        }
        let entry_price = entry_price(sampler, position);
        for a in &mut actions {
            a.price = entry_price * (0.03 * sampler.normal()).exp();
        }
        book.cycles.push(Cycle {
            position: p,
            number,
            traits,
            entry_secs: entry,
            exit_secs: book.period_secs,
            close_secs: book.period_secs,
            closed: false,
            actions,
            rr: 0.0,
            stop_frac: 0.1,
            risk_usd: 0.0,
            vol_bucket: 1,
            cf_entry: 0,
            cf_exit: 0,
            time_to_s3_days: None,
            planted_r: 0.0,
        });
        hosts.push(book.cycles.len() - 1);
    }
    hosts
}

pub fn position_id(index: usize) -> String {
    format!("pos-{:05}", index + 1)
}

fn draw_position(sampler: &mut Sampler, id: String) -> Position {
    let letters = sampler.int_between(3, 5) as usize;
    let symbol: String = (0..letters)
        .map(|_| (b'A' + sampler.index(26) as u8) as char)
        .collect();
    let market_family = sampler.weighted(&MARKET_FAMILY_WEIGHTS) as u8;
    // Meme coins are mostly small caps; the other families follow the general distribution.
    let cap_bucket = if market_family == 0 && sampler.chance(0.5) {
        sampler.index(2) as u8
    } else {
        sampler.weighted(&CAP_BUCKET_WEIGHTS) as u8
    };
    Position {
        id,
        symbol,
        market_family,
        cap_bucket,
        timeframe: sampler.weighted(&TIMEFRAME_WEIGHTS) as u8,
        chain: sampler.index(CHAINS.len()) as u8,
        curator: sampler.index(CURATORS.len()) as u8,
        age_bucket: sampler.index(AGE_BUCKETS.len()) as u8,
    }
}

/// Split [0, period) into `n` disjoint segments of random length, each at least a little long.
fn split_period(sampler: &mut Sampler, n: usize, period_secs: i64) -> Vec<(i64, i64)> {
    if n == 0 {
        return Vec::new();
    }
    let min_len = (2 * 3_600).min(period_secs / (2 * n as i64)).max(1);
    let free = (period_secs - min_len * n as i64).max(0);
    let mut cuts: Vec<i64> = (1..n).map(|_| sampler.int_between(0, free)).collect();
    cuts.sort_unstable();
    let mut bounds = Vec::with_capacity(n + 1);
    bounds.push(0);
    for (k, cut) in cuts.into_iter().enumerate() {
        bounds.push(cut + (k as i64 + 1) * min_len);
    }
    bounds.push(period_secs);
    bounds.windows(2).map(|w| (w[0], w[1])).collect()
}

fn draw_traits(sampler: &mut Sampler) -> CycleTraits {
    let family = sampler.weighted(&PATTERN_FAMILY_WEIGHTS) as u8;
    let is_leader = sampler.chance(0.25);
    // The leader of a bucket is usually ranked first, but the two labels are not synonyms.
    let rank = if is_leader {
        if sampler.chance(0.9) {
            0
        } else {
            1
        }
    } else if sampler.chance(0.1) {
        0
    } else {
        sampler.int_between(1, 3) as u8
    };
    CycleTraits {
        family,
        leader: if is_leader { 0 } else { 1 },
        rank,
    }
}

/// Patterns mature during a trade: each later action may move one state up, never down.
fn progress_state(sampler: &mut Sampler, state: u8, p_up: f64) -> u8 {
    if state < S3 && sampler.chance(p_up) {
        state + 1
    } else {
        state
    }
}

fn mode_of(value: f32) -> u8 {
    if value < 0.35 {
        0
    } else if value < 0.7 {
        1
    } else {
        2
    }
}

/// One action with its scope as the PM would log it at `secs`.
pub fn draw_action(
    sampler: &mut Sampler,
    regimes: &RegimeTimeline,
    position: &Position,
    traits: CycleTraits,
    secs: i64,
    kind: ActionKind,
    state: u8,
) -> Action {
    let phases = regimes.at(secs, position.market_family as usize);
    let a_value = sampler.unit() as f32;
    let e_value = sampler.unit() as f32;
    let mut scope = [0u8; N_DIMS];
    scope[DIM_MACRO] = phases.macro_phase;
    scope[DIM_MESO] = phases.meso_phase;
    scope[DIM_MICRO] = phases.micro_phase;
    scope[DIM_LEADER] = traits.leader;
    scope[DIM_RANK] = traits.rank;
    scope[DIM_MARKET_FAMILY] = position.market_family;
    scope[DIM_BUCKET] = position.cap_bucket;
    scope[DIM_TIMEFRAME] = position.timeframe;
    scope[DIM_A_MODE] = mode_of(a_value);
    scope[DIM_E_MODE] = mode_of(e_value);
    for value in scope.iter_mut() {
        if sampler.chance(ABSENT_DIM_RATE) {
            *value = ABSENT_NULL + sampler.index(4) as u8;
        }
    }
    let size_frac = match kind {
        ActionKind::Entry => sampler.uniform(0.1, 0.3),
        ActionKind::Add | ActionKind::Hold => sampler.uniform(0.04, 0.18),
        ActionKind::Trim => sampler.uniform(0.2, 0.5),
        ActionKind::Exit | ActionKind::EmergencyExit => 1.0,
    };
    let slippage_scale = if position.cap_bucket <= MICRO_CAP {
        0.02
    } else {
        0.006
    };
    Action {
        secs,
        kind,
        state,
        scope,
        a_value,
        e_value,
        size_frac: size_frac as f32,
        signal: sampler.uniform(0.3, 1.0) as f32,
        price: 0.0,
        slippage: sampler.uniform(0.0, slippage_scale) as f32,
        trade_id: if sampler.chance(MISSING_TRADE_ID_RATE) {
            TradeIdTag::Missing
        } else {
            TradeIdTag::Own
        },
    }
}

fn entry_price(sampler: &mut Sampler, position: &Position) -> f64 {
    CAP_BUCKET_PRICE[position.cap_bucket as usize] * sampler.lognormal(1.0, 0.8)
}

pub fn closed_cycle(
    sampler: &mut Sampler,
    regimes: &RegimeTimeline,
    rules: &[EffectRule],
    position: &Position,
    position_index: usize,
    number: usize,
    (seg_start, seg_end): (i64, i64),
) -> Cycle {
    let traits = draw_traits(sampler);
    let len = seg_end - seg_start;
    // Margins keep the entry strictly after the previous close and the close before the next entry.
    let margin = (len / 10).min(300);
    let usable = (len - 2 * margin).max(0);
    let median_hold = TIMEFRAME_MEDIAN_HOLD_DAYS[position.timeframe as usize] * SECS_PER_DAY as f64;
    let hold = (sampler.lognormal(median_hold, 0.6) as i64).clamp(0, usable);
    let entry = seg_start + margin + (sampler.unit() * (usable - hold) as f64) as i64;
    let exit = entry + hold;
    let close = if margin >= 60 && sampler.chance(0.3) {
        exit + 60
    } else {
        exit
    };

    // 1 entry, 3–6 adds, 0–2 trims, 1 exit: about 7.3 actions per trade.
    let n_adds = sampler.int_between(3, 6) as usize;
    let n_trims = sampler.weighted(&[0.4, 0.4, 0.2]);
    let (lo, hi) = if hold >= 2 {
        (entry + 1, exit - 1)
    } else {
        (entry, exit)
    };
    let mut times: Vec<i64> = (0..n_adds + n_trims)
        .map(|_| sampler.int_between(lo, hi))
        .collect();
    times.sort_unstable();

    let mut state = sampler.weighted(&ENTRY_STATE_WEIGHTS) as u8;
    let mut actions = Vec::with_capacity(n_adds + n_trims + 2);
    actions.push(draw_action(
        sampler,
        regimes,
        position,
        traits,
        entry,
        ActionKind::Entry,
        state,
    ));
    for (i, t) in times.into_iter().enumerate() {
        let (kind, p_up) = if i < n_adds {
            (ActionKind::Add, 0.2)
        } else {
            (ActionKind::Trim, 0.4)
        };
        state = progress_state(sampler, state, p_up);
        actions.push(draw_action(
            sampler, regimes, position, traits, t, kind, state,
        ));
    }
    state = progress_state(sampler, state, 0.2);
    actions.push(draw_action(
        sampler,
        regimes,
        position,
        traits,
        exit,
        ActionKind::Exit,
        state,
    ));

    let mut cycle = Cycle {
        position: position_index,
        number: number as u32,
        traits,
        entry_secs: entry,
        exit_secs: exit,
        close_secs: close,
        closed: true,
        actions,
        rr: 0.0,
        stop_frac: sampler.uniform(0.06, 0.2),
        risk_usd: sampler.uniform(40.0, 400.0),
        vol_bucket: sampler.index(VOL_BUCKETS.len()) as u8,
        cf_entry: sampler.weighted(&CF_BUCKET_WEIGHTS) as u8,
        cf_exit: sampler.weighted(&CF_BUCKET_WEIGHTS) as u8,
        time_to_s3_days: None,
        planted_r: 0.0,
    };
    cycle.time_to_s3_days = cycle
        .actions
        .iter()
        .find(|a| a.state == S3)
        .map(|a| (a.secs - entry) as f64 / SECS_PER_DAY as f64);
    cycle.planted_r = rules
        .iter()
        .filter(|r| r.applies_to(&cycle))
        .map(|r| r.effect_r)
        .sum();
    let noise = if sampler.chance(EXTREME_TRADE_RATE) {
        if sampler.chance(0.7) {
            sampler.uniform(12.0, 35.0) // moonshot
        } else {
            -sampler.uniform(10.5, 14.0) // rug pull through the stop
        }
    } else {
        NOISE_MEAN_R
            + NOISE_SCALE_R
                * CAP_BUCKET_NOISE_SCALE[position.cap_bucket as usize]
                * sampler.student_t4()
    };
    cycle.rr = noise + cycle.planted_r;
    if cycle.rr < -0.8 && sampler.chance(0.25) {
        if let Some(last) = cycle.actions.last_mut() {
            last.kind = ActionKind::EmergencyExit;
        }
    }
    // Prices drift from the entry price toward where the R of the trade says they ended.
    let entry_price = entry_price(sampler, position);
    let drift = cycle.stop_frac * cycle.rr.clamp(-3.0, 5.0);
    for a in &mut cycle.actions {
        let progress = if hold > 0 {
            (a.secs - entry) as f64 / hold as f64
        } else {
            1.0
        };
        a.price = entry_price * (drift * progress + 0.02 * sampler.normal()).exp();
    }
    cycle
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::random::Stream;

    #[test]
    fn segments_tile_the_period_without_overlap() {
        let mut s = Sampler::new(5, Stream::Book);
        for n in [1usize, 2, 7, 400] {
            let segs = split_period(&mut s, n, 30 * SECS_PER_DAY);
            assert_eq!(segs.len(), n);
            assert_eq!(segs[0].0, 0);
            assert_eq!(segs[n - 1].1, 30 * SECS_PER_DAY);
            assert!(segs.windows(2).all(|w| w[0].1 == w[1].0));
            assert!(segs.iter().all(|(a, b)| b > a));
        }
    }

    #[test]
    fn cycles_of_a_position_follow_one_another() {
        let mut s = Sampler::new(9, Stream::Book);
        let mut rs = Sampler::new(9, Stream::Regimes);
        let period = 60 * SECS_PER_DAY;
        let regimes = RegimeTimeline::build(&mut rs, period, MARKET_FAMILIES.len());
        let book = build_closed_book(&mut s, &regimes, &[], 300, 20, period);
        assert_eq!(book.cycles.len(), 300);
        for p in 0..book.positions.len() {
            let mut cycles: Vec<&Cycle> = book.cycles.iter().filter(|c| c.position == p).collect();
            cycles.sort_by_key(|c| c.number);
            for c in &cycles {
                assert!(c
                    .actions
                    .iter()
                    .all(|a| a.secs >= c.entry_secs && a.secs <= c.exit_secs));
                assert!(c.close_secs >= c.exit_secs && c.close_secs <= period);
            }
            for w in cycles.windows(2) {
                assert!(w[1].entry_secs > w[0].close_secs, "cycles overlap");
            }
        }
    }
}
