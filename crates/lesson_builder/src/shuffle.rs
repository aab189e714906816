//! The placebo transform (SPEC §4.12): each trade's R replaced by that of another trade of the same
//! time cluster (a seeded permutation), so scope no longer predicts outcome while cluster-level
//! shocks remain.

use learnloop_model::TradeEvent;
use learnloop_stats::{placebo_shuffle, time_cluster};

/// `events` are in canonical order (exit time, trade key, action), so each trade's events are
/// contiguous and trades come in a reproducible order. A trade's cluster is that of its entry
/// (its exit when the entry is unknown), periods of `cluster_days` days as the tests use.
pub fn shuffle_r_within_clusters(events: &mut [TradeEvent], seed: u64, cluster_days: u32) {
    let mut trades: Vec<(usize, usize)> = Vec::new(); // (first event, one past last)
    let mut start = 0;
    while start < events.len() {
        let mut end = start + 1;
        while end < events.len() && events[end].trade_key == events[start].trade_key {
            end += 1;
        }
        trades.push((start, end));
        start = end;
    }
    // Shuffle trade indices (exact in f64) within days, then read the permutation back.
    let mut slots: Vec<(i64, f64)> = trades
        .iter()
        .enumerate()
        .map(|(i, &(first, _))| {
            let e = &events[first];
            let at = e.entry_at.unwrap_or(e.exit_at).millis();
            (time_cluster(at, cluster_days), i as f64)
        })
        .collect();
    placebo_shuffle(&mut slots, seed);
    let outcomes: Vec<(f64, f64)> = trades
        .iter()
        .map(|&(first, _)| (events[first].rr, events[first].rr_winsorized))
        .collect();
    for (i, &(first, end)) in trades.iter().enumerate() {
        let (rr, rr_w) = outcomes[slots[i].1 as usize];
        for e in &mut events[first..end] {
            e.rr = rr;
            e.rr_winsorized = rr_w;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use learnloop_model::{ActionCategory, Timestamp};

    fn event(trade: &str, day: i64, rr: f64) -> TradeEvent {
        TradeEvent {
            trade_key: trade.into(),
            position_id: "p".into(),
            trade_id: None,
            action_strand_id: format!("{trade}-a"),
            module: "pm".into(),
            pattern_key: "a.b.c".into(),
            category: ActionCategory::Add,
            scope: "{}".into(),
            rr,
            rr_winsorized: rr,
            pnl_usd: None,
            hold_days: None,
            time_to_s3: None,
            entry_at: None,
            exit_at: Timestamp(day * 86_400_000 + 1),
            action_at: Timestamp(0),
        }
    }

    #[test]
    fn permutes_r_within_each_cluster_and_keeps_trades_whole() {
        let mut events: Vec<TradeEvent> = (0..40)
            .flat_map(|i| {
                let e = event(&format!("t{i:02}"), i / 10, i as f64);
                [e.clone(), e]
            })
            .collect();
        shuffle_r_within_clusters(&mut events, 9, 1);
        for pair in events.chunks(2) {
            assert_eq!(
                pair[0].rr, pair[1].rr,
                "both actions of a trade share one outcome"
            );
        }
        for day in 0..4 {
            let mut rs: Vec<f64> = events
                .iter()
                .step_by(2)
                .filter(|e| e.exit_at.day_index() == day)
                .map(|e| e.rr)
                .collect();
            rs.sort_by(f64::total_cmp);
            let expected: Vec<f64> = (day * 10..day * 10 + 10).map(|i| i as f64).collect();
            assert_eq!(rs, expected, "day {day} keeps its own outcomes");
        }
        let moved = events
            .iter()
            .step_by(2)
            .enumerate()
            .filter(|(i, e)| e.rr != *i as f64)
            .count();
        assert!(moved > 20);
    }
}
