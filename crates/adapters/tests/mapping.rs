//! The shipped DecisionPacket adapter on hand-written records: what each field becomes, and the
//! reason each bad record is refused.

use learnloop_adapters::{bin_set, Adapter, AdapterError};
use learnloop_model::strand::{QuarantineCode, TypedStrand};
use serde_json::{json, Value};
use std::collections::BTreeMap;

fn adapter() -> Adapter {
    Adapter::from_json(include_str!("../../../adapters/decision_packets.json")).unwrap()
}

fn packet() -> Value {
    json!({
        "packet_id": "dp-1", "order_id": "ord-1", "timestamp": "2026-03-02T14:30:00Z",
        "symbol": "AAPL", "decision": "BUY", "strategy": "ibs_rsi",
        "strategy_params": {"entry_timing": "open", "lookback": 2},
        "regime": "bull", "sector": "tech",
        "indicators": {"rsi_2": 7.5, "ibs": 0.5, "atr_14": "NaN", "conviction_score": 0.9,
                       "quality_score": 0.1, "vix": 19.99, "adx_14": 20.0},
        "ml": {"meta_conf": 0.7, "xgb_conf": 0.6},
        "risk_checks": {"drawdown_ok": true}, "size_multipliers": {"kelly": 0.8},
        "size_frac": 0.05
    })
}

fn close() -> Value {
    json!({"position_id": "ord-1", "symbol": "AAPL", "entry_time": "2026-03-02T14:30:00Z",
           "exit_time": "2026-03-04T14:30:00Z", "r_multiple": 1.25, "mae_pct": -1.0,
           "mfe_pct": 2.0, "holding_minutes": 2880, "exit_reason_norm": "target"})
}

/// Frozen edges as the store would hand them back (fixed ones as declared, quantiles made up).
fn frozen() -> BTreeMap<String, Vec<f64>> {
    let mut edges = BTreeMap::from([
        ("rsi_2".to_string(), vec![10.0, 30.0, 70.0, 90.0]),
        ("ibs".to_string(), vec![0.2, 0.5, 0.8]),
        ("vix".to_string(), vec![15.0, 20.0, 30.0]),
    ]);
    for dim in ["atr_14", "conviction_score", "quality_score", "meta_conf"] {
        edges.insert(dim.to_string(), vec![0.33, 0.66]);
    }
    edges
}

#[test]
fn a_packet_becomes_a_binned_entry_and_its_close_a_trade() {
    let a = adapter();
    let bins = bin_set(&frozen()).unwrap();
    let raw = a.to_strand(&packet(), &bins).unwrap();
    assert_eq!(
        (raw.id.as_str(), raw.module.as_str(), raw.kind.as_str()),
        ("dp-1", "packets", "pm_action")
    );
    let TypedStrand::Action(action) = raw.to_typed().unwrap() else {
        panic!("an action")
    };
    assert_eq!(
        action.pattern_key.as_deref(),
        Some("module=packets|pattern_key=ibs_rsi.open.BUY")
    );
    assert_eq!(action.category.unwrap().as_str(), "entry");
    assert_eq!(action.position_id, "ord-1");
    assert_eq!(
        action.scope.to_json(),
        r#"{"conviction_score":"0.66..","ibs":"0.5..0.8","meta_conf":"0.66..","quality_score":"..0.33","regime":"bull","rsi_2":"..10","sector":"tech","vix":"15..20"}"#,
        "NaN atr_14 is absent; 0.5 sits in 0.5..0.8 (a..b holds a <= x < b)"
    );

    let raw = a.to_strand(&close(), &bins).unwrap();
    let TypedStrand::Close(c) = raw.to_typed().unwrap() else {
        panic!("a close")
    };
    assert_eq!(
        (raw.id.as_str(), c.position_id.as_str(), c.rr),
        ("close-ord-1", "ord-1", 1.25)
    );
    assert_eq!(c.hold_days, Some(2.0));
    assert_eq!(c.exit_reason.as_deref(), Some("target"));
}

#[test]
fn bad_records_are_refused_with_the_field_and_reason() {
    let a = adapter();
    let bins = bin_set(&frozen()).unwrap();
    let refuse = |record: Value| a.to_strand(&record, &bins).unwrap_err();

    let mut no_order = packet();
    no_order["order_id"] = Value::Null;
    let r = refuse(no_order);
    assert_eq!(r.code, QuarantineCode::MissingField);
    assert!(r.detail.contains("{order_id}"), "{r}");

    let mut misspelt = packet();
    misspelt["indicators"]["rsi2"] = json!(3.0);
    let r = refuse(misspelt);
    assert_eq!(r.code, QuarantineCode::BadField);
    assert!(r.detail.contains("indicators.rsi2"), "{r}");

    let mut hold = packet();
    hold["decision"] = json!("HOLD");
    assert_eq!(refuse(hold).code, QuarantineCode::BadField);

    let mut text_rsi = packet();
    text_rsi["indicators"]["rsi_2"] = json!("oversold");
    assert_eq!(refuse(text_rsi).code, QuarantineCode::BadScope);

    for r_value in [json!("NaN"), json!("Infinity"), Value::Null] {
        let mut bad = close();
        bad["r_multiple"] = r_value;
        assert_eq!(refuse(bad).code, QuarantineCode::RrNotFinite);
    }
    assert_eq!(
        refuse(json!({"hello": 1})).code,
        QuarantineCode::UnknownKind
    );
    assert_eq!(refuse(json!([1, 2])).code, QuarantineCode::MalformedJson);
}

#[test]
fn quantiles_are_learned_from_decisions_and_fixed_edges_cannot_change() {
    let a = adapter();
    let records: Vec<Value> = (0..300)
        .map(|i| {
            let mut p = packet();
            for (group, dim) in [
                ("indicators", "atr_14"),
                ("indicators", "conviction_score"),
                ("indicators", "quality_score"),
                ("ml", "meta_conf"),
            ] {
                p[group][dim] = json!(f64::from(i));
            }
            p
        })
        .chain(std::iter::once(close()))
        .collect();
    let new = a.bins_to_freeze(&BTreeMap::new(), records.iter()).unwrap();
    let atr = new.iter().find(|b| b.dim == "atr_14").unwrap();
    assert_eq!(
        (atr.method, atr.edges.as_slice(), atr.n_values),
        ("quantiles", &[99.67, 199.3][..], 300)
    );

    let mut stored = frozen();
    assert!(
        a.bins_to_freeze(&stored, records.iter())
            .unwrap()
            .is_empty(),
        "nothing left to freeze"
    );
    stored.insert("rsi_2".into(), vec![20.0, 50.0]);
    assert!(matches!(
        a.bins_to_freeze(&stored, records.iter()),
        Err(AdapterError::EdgesChanged { .. })
    ));
    let too_few = a
        .bins_to_freeze(&BTreeMap::new(), records[..10].iter())
        .unwrap_err();
    assert!(
        too_few.to_string().contains("10 finite values"),
        "{too_few}"
    );
}

#[test]
fn malformed_adapters_are_refused_whole() {
    let base: Value =
        serde_json::from_str(include_str!("../../../adapters/decision_packets.json")).unwrap();
    let broken = |path: &[&str], value: Value| {
        let mut a = base.clone();
        let mut slot = &mut a;
        for key in path {
            slot = &mut slot[*key];
        }
        *slot = value;
        Adapter::from_json(&a.to_string()).unwrap_err().to_string()
    };
    assert!(
        broken(&["decision", "pattern_key"], json!("{strategy")).contains("decision.pattern_key")
    );
    assert!(broken(&["decision", "category", "map", "BUY"], json!("hold")).contains("category"));
    assert!(broken(
        &["decision", "scope", "rsi_2", "bins"],
        json!({"edges": [30, 10]})
    )
    .contains("increase"));
    assert!(broken(&["decision", "scope", "a=b"], json!("{x}")).contains("decision.scope"));
    assert!(broken(&["decision", "colour"], json!("{x}")).contains("unknown field"));
    assert!(
        broken(&["decision", "scope", "rsi_2", "scale"], json!(0.01)).contains("scale and bins")
    );
    // A mistake inside a field's object is named, not "did not match any variant".
    let deciles = broken(
        &["decision", "scope", "rsi_2", "bins"],
        json!({"deciles": 3}),
    );
    assert!(deciles.contains("unknown variant `deciles`"), "{deciles}");
    let fraction = broken(
        &["decision", "scope", "rsi_2", "bins"],
        json!({"quantiles": 2.5}),
    );
    assert!(fraction.contains("2.5"), "{fraction}");
    let number = broken(&["decision", "id"], json!(7));
    assert!(number.contains("expected a template"), "{number}");

    // A key given twice is refused (serde's maps would keep the last one silently): a repeated
    // scope dimension, and a repeated value in a category map.
    let text = include_str!("../../../adapters/decision_packets.json");
    let twice_dim = text.replacen(
        "\"scope\": {",
        "\"scope\": {\n      \"regime\": \"{sector}\",",
        1,
    );
    assert_ne!(twice_dim, text);
    let err = Adapter::from_json(&twice_dim).unwrap_err().to_string();
    assert!(err.contains("\"regime\" is given twice"), "{err}");
    let twice_value = text.replacen(
        "\"BUY\": \"entry\"",
        "\"BUY\": \"entry\", \"BUY\": \"exit\"",
        1,
    );
    assert_ne!(twice_value, text);
    assert!(Adapter::from_json(&twice_value).is_err());
}
