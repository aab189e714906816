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

/// The sample book with position ids whose byte order is not their numeric or case order
/// (`p-10` < `p-9`, `P…` < `p…`, `ß…` last), some positions' actions dropped and other positions'
/// closes dropped.
fn reshuffled_sample_lines() -> Vec<String> {
    let sample = include_str!("../../../../data/sample_strands.jsonl");
    let mut lines = Vec::new();
    for line in sample.lines() {
        let Ok(mut strand) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        let Some(n) = strand["position_id"]
            .as_str()
            .and_then(|p| p.strip_prefix("pos-"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let is_action = strand["kind"] == "pm_action";
        if (is_action && n % 7 == 0) || (!is_action && n % 11 == 0) {
            continue;
        }
        let id = match n % 3 {
            0 => format!("p-{n}"),
            1 => format!("P{n}"),
            _ => format!("ß{n}"),
        };
        strand["position_id"] = id.clone().into();
        strand["content"]["position_id"] = id.into();
        lines.push(strand.to_string());
    }
    lines
}

#[test]
fn the_streamed_merge_links_as_grouping_every_position_in_memory_does() {
    let conn = learnloop_store::open_in_memory().unwrap();
    let lines = reshuffled_sample_lines();
    crate::ingest_lines(
        &conn,
        lines.into_iter().map(Ok),
        "t",
        "2026-01-01T00:00:00Z",
    )
    .unwrap();
    crate::normalize_new(&conn, "2026-01-01T00:00:00Z").unwrap();
    let as_of = Timestamp::parse("2026-04-01T00:00:00Z").unwrap();

    // The reference: every strand read at once, grouped by position in a BTreeMap (byte order of
    // the ids), each group linked on its own.
    strands::set_dirty_positions(&conn, &strands::all_positions(&conn).unwrap()).unwrap();
    let mut actions = Vec::new();
    strands::for_each_action_of_dirty_positions(&conn, as_of, |a| -> Result<()> {
        actions.push(a);
        Ok(())
    })
    .unwrap();
    let closes = strands::closes_of_dirty_positions(&conn, as_of).unwrap();
    let mut groups: BTreeMap<&str, (Vec<&PmAction>, Vec<&PositionClose>)> = BTreeMap::new();
    for a in &actions {
        groups.entry(&a.position_id).or_default().0.push(a);
    }
    for c in &closes {
        groups.entry(&c.position_id).or_default().1.push(c);
    }
    let only_actions = groups.values().filter(|(_, c)| c.is_empty()).count();
    let only_closes = groups.values().filter(|(a, _)| a.is_empty()).count();
    assert!(
        only_actions > 10 && only_closes > 10,
        "{only_actions} {only_closes}"
    );
    let mut expected = PositionLinks::default();
    for (a, c) in groups.values() {
        let links = link_position(a, c);
        expected.trades.extend(links.trades);
        expected.events.extend(links.events);
        expected.anomalies.extend(links.anomalies);
    }

    let options = LinkOptions {
        rebuild: true,
        keep_events: true,
    };
    let report = link(&conn, as_of, options).unwrap();
    assert_eq!(report.positions_relinked as usize, groups.len());
    assert_eq!(
        report.events, expected.events,
        "the same events, in the same order"
    );
    assert_eq!(report.trades_linked_total as usize, expected.trades.len());
    let mut anomalies: BTreeMap<AnomalyKind, i64> = BTreeMap::new();
    for a in &expected.anomalies {
        *anomalies.entry(a.kind).or_default() += 1;
    }
    assert_eq!(report.anomalies, anomalies);
    assert!(anomalies.len() >= 2, "{anomalies:?}");
    // The stored rows themselves: trades in the order written, anomalies as a set.
    let texts = |sql: &str| -> Vec<String> {
        let mut stmt = conn.prepare(sql).unwrap();
        let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
        rows.map(|row| row.unwrap()).collect()
    };
    assert_eq!(
        texts("SELECT trade_key || '/' || position_id FROM linked_trades ORDER BY rowid"),
        expected
            .trades
            .iter()
            .map(|t| format!("{}/{}", t.trade_key, t.position_id))
            .collect::<Vec<_>>()
    );
    let mut stored_anomalies =
        texts("SELECT kind || '/' || strand_id || '/' || position_id FROM link_anomalies");
    let mut expected_anomalies: Vec<String> = expected
        .anomalies
        .iter()
        .map(|a| format!("{}/{}/{}", a.kind.as_str(), a.strand_id, a.position_id))
        .collect();
    stored_anomalies.sort();
    expected_anomalies.sort();
    assert_eq!(stored_anomalies, expected_anomalies);
}
