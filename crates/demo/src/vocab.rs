//! The closed vocabularies the generator draws from, and how often each value occurs.
//!
//! Values are stored as small indices (`u8`) in the simulation so that ~800k actions stay compact;
//! these tables turn them back into the text the PM writes.

use learnloop_model::dims::DEFAULT_DIMS;

pub const PHASES: [&str; 7] = [
    "Euphoria",
    "Good",
    "Recover",
    "Dip",
    "Double-Dip",
    "Oh-Shit",
    "Chop",
];
pub const EUPHORIA: u8 = 0;
pub const GOOD: u8 = 1;
pub const RECOVER: u8 = 2;
pub const DIP: u8 = 3;
pub const DOUBLE_DIP: u8 = 4;
pub const OH_SHIT: u8 = 5;
pub const CHOP: u8 = 6;
/// How often each phase is picked when a faster regime jumps away from its slower parent.
pub const PHASE_WEIGHTS: [f64; 7] = [0.15, 0.2, 0.15, 0.15, 0.08, 0.05, 0.22];

/// Pattern families; uptrend dominates because the PM is mostly a trend follower.
pub const PATTERN_FAMILIES: [&str; 4] = ["uptrend", "range", "breakout", "meanrev"];
pub const PATTERN_FAMILY_WEIGHTS: [f64; 4] = [0.45, 0.25, 0.18, 0.12];
pub const UPTREND: u8 = 0;
pub const RANGE: u8 = 1;
pub const BREAKOUT: u8 = 2;
pub const MEANREV: u8 = 3;
/// What each family means as an entry intent (`entry_context.intent`).
pub const FAMILY_INTENTS: [&str; 4] = ["trend_follow", "range_trade", "breakout", "mean_revert"];

pub const STATES: [&str; 3] = ["S1", "S2", "S3"];
/// State at entry: most trades are entered early in their pattern.
pub const ENTRY_STATE_WEIGHTS: [f64; 3] = [0.5, 0.35, 0.15];
pub const S1: u8 = 0;
pub const S2: u8 = 1;
pub const S3: u8 = 2;

pub const MARKET_FAMILIES: [&str; 5] = ["memes", "defi", "l1", "ai", "gaming"];
pub const MARKET_FAMILY_WEIGHTS: [f64; 5] = [0.35, 0.2, 0.2, 0.15, 0.1];

pub const CAP_BUCKETS: [&str; 6] = ["nano", "micro", "mid", "big", "large", "xl"];
pub const CAP_BUCKET_WEIGHTS: [f64; 6] = [0.15, 0.35, 0.2, 0.13, 0.1, 0.07];
pub const MICRO_CAP: u8 = 1;
pub const MID_CAP: u8 = 2;
/// Small caps move more: scale of the R noise per cap bucket (the mean is unaffected).
pub const CAP_BUCKET_NOISE_SCALE: [f64; 6] = [1.25, 1.1, 1.0, 0.9, 0.85, 0.8];
/// Typical entry price per cap bucket (the price only has to look plausible).
pub const CAP_BUCKET_PRICE: [f64; 6] = [0.00002, 0.0004, 0.02, 0.5, 8.0, 60.0];

pub const TIMEFRAMES: [&str; 4] = ["1m", "15m", "1h", "4h"];
pub const TIMEFRAME_WEIGHTS: [f64; 4] = [0.1, 0.25, 0.4, 0.25];
pub const FIFTEEN_MINUTES: u8 = 1;
pub const ONE_HOUR: u8 = 2;
pub const FOUR_HOURS: u8 = 3;
/// Median hold of a trade cycle in days per timeframe: slower charts hold longer.
pub const TIMEFRAME_MEDIAN_HOLD_DAYS: [f64; 4] = [0.25, 1.0, 3.0, 8.0];

pub const MODES: [&str; 3] = ["patient", "normal", "aggressive"];
pub const AGGRESSIVE: u8 = 2;

pub const BOOLS: [&str; 2] = ["true", "false"];
pub const RANKS: [&str; 4] = ["1", "2", "3", "4"];

pub const CHAINS: [&str; 4] = ["solana", "base", "ethereum", "bsc"];
pub const CURATORS: [&str; 4] = ["alpha_desk", "whale_watch", "degen_scout", "quant_screen"];
pub const VOL_BUCKETS: [&str; 3] = ["low", "mid", "high"];
pub const AGE_BUCKETS: [&str; 3] = ["fresh", "young", "mature"];
pub const CF_BUCKETS: [&str; 4] = ["none", "small", "medium", "large"];
pub const CF_BUCKET_WEIGHTS: [f64; 4] = [0.45, 0.3, 0.17, 0.08];

/// Positions of the default scope dimensions (bit order of `learnloop_model::dims::DEFAULT_DIMS`).
pub const DIM_MACRO: usize = 0;
pub const DIM_MESO: usize = 1;
pub const DIM_MICRO: usize = 2;
pub const DIM_LEADER: usize = 3;
pub const DIM_RANK: usize = 4;
pub const DIM_MARKET_FAMILY: usize = 5;
pub const DIM_BUCKET: usize = 6;
pub const DIM_TIMEFRAME: usize = 7;
pub const DIM_A_MODE: usize = 8;
pub const DIM_E_MODE: usize = 9;
pub const N_DIMS: usize = 10;

/// Name of a scope dimension as written into `content.scope`.
pub fn dim_name(dim: usize) -> &'static str {
    DEFAULT_DIMS[dim]
}

/// The values a dimension can take, indexed by the `u8` the simulation stores.
pub fn dim_values(dim: usize) -> &'static [&'static str] {
    match dim {
        DIM_MACRO | DIM_MESO | DIM_MICRO => &PHASES,
        DIM_LEADER => &BOOLS,
        DIM_RANK => &RANKS,
        DIM_MARKET_FAMILY => &MARKET_FAMILIES,
        DIM_BUCKET => &CAP_BUCKETS,
        DIM_TIMEFRAME => &TIMEFRAMES,
        _ => &MODES,
    }
}

/// How a dimension's value is spelled in JSON: producers write booleans and ranks unquoted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JsonShape {
    Text,
    Bare,
}

pub fn dim_shape(dim: usize) -> JsonShape {
    match dim {
        DIM_LEADER | DIM_RANK => JsonShape::Bare,
        _ => JsonShape::Text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_match_their_tables() {
        assert_eq!(PHASES.len(), PHASE_WEIGHTS.len());
        assert_eq!(dim_name(DIM_E_MODE), "E_mode");
        assert_eq!(dim_name(DIM_TIMEFRAME), "timeframe");
        for w in [
            &PHASE_WEIGHTS[..],
            &PATTERN_FAMILY_WEIGHTS,
            &ENTRY_STATE_WEIGHTS,
            &MARKET_FAMILY_WEIGHTS,
            &CAP_BUCKET_WEIGHTS,
            &TIMEFRAME_WEIGHTS,
            &CF_BUCKET_WEIGHTS,
        ] {
            assert!((w.iter().sum::<f64>() - 1.0).abs() < 1e-9);
        }
        assert_eq!(PHASES[EUPHORIA as usize], "Euphoria");
        assert_eq!(CAP_BUCKETS[MICRO_CAP as usize], "micro");
        assert_eq!(TIMEFRAMES[ONE_HOUR as usize], "1h");
        assert_eq!(MODES[AGGRESSIVE as usize], "aggressive");
        assert_eq!(PATTERN_FAMILIES[BREAKOUT as usize], "breakout");
    }
}
