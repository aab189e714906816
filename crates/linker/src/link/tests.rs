use super::*;
use learnloop_model::{ActionCategory, Scope};

fn ts(h: i64) -> Timestamp {
    Timestamp(1_767_225_600_000 + h * 3_600_000)
}

fn action(id: &str, h: i64, trade_id: Option<&str>) -> PmAction {
    PmAction {
        strand_id: id.into(),
        module: "pm".into(),
        position_id: "p".into(),
        trade_id: trade_id.map(str::to_string),
        ts: ts(h),
        created_at: ts(h),
        decision_type: Some("add".into()),
        size_frac: Some(0.1),
        pattern_key: Some("module=pm|pattern_key=uptrend.S2.add".into()),
        category: Some(ActionCategory::Add),
        scope: Scope::from_pairs_text("macro_phase=Good").unwrap(),
    }
}

fn close(id: &str, h: i64, trade_id: Option<&str>, rr: f64) -> PositionClose {
    PositionClose {
        strand_id: id.into(),
        module: "pm".into(),
        position_id: "p".into(),
        trade_id: trade_id.map(str::to_string),
        created_at: ts(h),
        entry_at: None,
        exit_at: ts(h),
        rr,
        pnl_usd: None,
        hold_days: None,
        time_to_s3: None,
        outcome_class: None,
        exit_reason: None,
    }
}

fn run(actions: &[PmAction], closes: &[PositionClose]) -> PositionLinks {
    link_position(
        &actions.iter().collect::<Vec<_>>(),
        &closes.iter().collect::<Vec<_>>(),
    )
}

fn kinds(l: &PositionLinks) -> Vec<(AnomalyKind, &str)> {
    l.anomalies
        .iter()
        .map(|a| (a.kind, a.strand_id.as_str()))
        .collect()
}

fn linked(l: &PositionLinks) -> Vec<(&str, &str)> {
    l.events
        .iter()
        .map(|e| (e.action_strand_id.as_str(), e.trade_key.as_str()))
        .collect()
}

#[test]
fn actions_go_to_the_cycle_window_that_contains_them() {
    let actions = [
        action("a1", 1, None),
        action("a2", 5, None),
        action("a3", 10, None),
        action("a4", 12, None),
    ];
    let closes = [close("c1", 5, None, 1.0), close("c2", 12, None, 20.0)];
    let l = run(&actions, &closes);
    // a2 is stamped exactly at the first close: windows are (prev, close], so it belongs to c1.
    assert_eq!(
        linked(&l),
        [("a1", "c1"), ("a2", "c1"), ("a3", "c2"), ("a4", "c2")]
    );
    assert!(l.anomalies.is_empty());
    assert_eq!(l.trades.len(), 2);
    assert_eq!(l.trades[1].cycle_start, Some(ts(5)));
    assert_eq!(l.trades[1].rr_winsorized, 10.0);
    assert_eq!(l.trades[1].rr, 20.0);
}

#[test]
fn disagreeing_trade_ids_are_reported_not_guessed() {
    let actions = [action("a1", 1, Some("t1")), action("a2", 2, Some("t9"))];
    let closes = [close("c1", 5, Some("t1"), 1.0)];
    let l = run(&actions, &closes);
    assert_eq!(linked(&l), [("a1", "c1")]);
    assert_eq!(kinds(&l), [(AnomalyKind::TradeIdMismatch, "a2")]);
}

#[test]
fn an_action_stamped_after_its_trades_close_is_late() {
    let actions = [
        action("a1", 1, Some("t1")),
        action("a2", 7, Some("t1")),
        action("a3", 8, Some("t2")),
    ];
    let closes = [
        close("c1", 5, Some("t1"), 1.0),
        close("c2", 9, Some("t2"), -1.0),
    ];
    let l = run(&actions, &closes);
    assert_eq!(linked(&l), [("a1", "c1"), ("a3", "c2")]);
    assert_eq!(kinds(&l), [(AnomalyKind::LateAction, "a2")]);
    // Late after the position's last close too.
    let l = run(
        &[action("a1", 1, Some("t1")), action("a9", 20, Some("t1"))],
        &[close("c1", 5, Some("t1"), 1.0)],
    );
    assert_eq!(kinds(&l), [(AnomalyKind::LateAction, "a9")]);
}

#[test]
fn closes_without_actions_open_cycles_and_duplicates_are_counted() {
    let actions = [action("a1", 1, None), action("a2", 30, None)];
    let closes = [
        close("c1", 5, Some("t1"), 1.0),
        close("c1-dup", 6, Some("t1"), 1.0),
        close("c2", 10, Some("t2"), 2.0),
    ];
    let l = run(&actions, &closes);
    assert_eq!(linked(&l), [("a1", "c1")]);
    let mut k = kinds(&l);
    k.sort();
    assert_eq!(
        k,
        [
            (AnomalyKind::CloseWithoutActions, "c2"),
            (AnomalyKind::DuplicateClose, "c1-dup"),
            (AnomalyKind::OpenCycle, "a2"),
        ]
    );
    assert_eq!(l.trades.len(), 1);
}

#[test]
fn a_resent_close_with_an_earlier_exit_does_not_displace_the_original() {
    // The original close of t1 (exit at hour 8, written at hour 8) and a copy re-sent at hour 20
    // claiming an exit at hour 3: the copy sorts first by exit, but the first written is kept.
    let mut resent = close("c1-resent", 3, Some("t1"), -4.0);
    resent.created_at = ts(20);
    let closes = [resent, close("c1", 8, Some("t1"), 1.0)];
    let l = run(&[action("a1", 1, None), action("a2", 5, None)], &closes);
    assert_eq!(linked(&l), [("a1", "c1"), ("a2", "c1")]);
    assert_eq!(kinds(&l), [(AnomalyKind::DuplicateClose, "c1-resent")]);
    assert_eq!(l.trades.len(), 1);
    assert_eq!(l.trades[0].rr, 1.0);
}

#[test]
fn legacy_actions_link_but_produce_no_events() {
    let mut legacy = action("a2", 2, None);
    legacy.pattern_key = None;
    legacy.category = None;
    let l = run(
        &[action("a1", 1, None), legacy],
        &[close("c1", 5, None, 1.0)],
    );
    assert_eq!(linked(&l), [("a1", "c1")]);
    assert_eq!(kinds(&l), [(AnomalyKind::LegacyAction, "a2")]);
    assert_eq!((l.trades[0].n_actions, l.trades[0].n_v5_actions), (2, 1));
}
