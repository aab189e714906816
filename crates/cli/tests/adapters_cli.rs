//! `ingest --adapter`: the native strands through the strands adapter give the native statistics;
//! DecisionPackets through the shipped adapter become lessons on the planted bins (and a placebo of
//! the same packets on none); bad packets are quarantined and nothing else lost; bins stay frozen.

mod common;

use common::{learnloop, scratch, stderr, stdout_json, table};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(path)
}

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "failed ({:?}): {}",
        out.status.code(),
        stderr(out)
    );
}

fn arg(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// Rows of a table sorted by their JSON text (row order is not part of the comparison).
fn sorted_rows(db: &Path, name: &str) -> Vec<String> {
    let mut rows: Vec<String> = table(db, name).iter().map(Value::to_string).collect();
    rows.sort();
    rows
}

fn quarantine_codes(db: &Path) -> BTreeMap<String, usize> {
    let mut codes = BTreeMap::new();
    for row in table(db, "quarantine") {
        *codes
            .entry(row["reason_code"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    codes
}

#[test]
fn the_strands_adapter_gives_the_native_statistics() {
    let dir = scratch("adapter-strands");
    let data = repo("data/sample_strands.jsonl");
    let native = dir.join("native.db");
    let adapted = dir.join("adapted.db");
    ok(&learnloop(&native, &["ingest", arg(&data)]));
    let out = learnloop(
        &adapted,
        &[
            "ingest",
            "--adapter",
            arg(&repo("adapters/strands.json")),
            arg(&data),
        ],
    );
    ok(&out);
    for db in [&native, &adapted] {
        ok(&learnloop(db, &["link"]));
        ok(&learnloop(db, &["aggregate"]));
    }
    let stats = sorted_rows(&native, "pattern_scope_stats");
    assert!(stats.len() > 100, "the sample aggregates into many subsets");
    assert_eq!(stats, sorted_rows(&adapted, "pattern_scope_stats"));
    assert_eq!(
        table(&native, "trade_events").len(),
        table(&adapted, "trade_events").len()
    );
    assert_eq!(quarantine_codes(&native), quarantine_codes(&adapted));
}

/// `demo --format decision-packets` into `out` with `args` on top.
fn demo_packets(out: &Path, args: &[&str]) {
    let mut all = vec!["demo", "--format", "decision-packets", "--out", arg(out)];
    all.extend_from_slice(args);
    ok(&learnloop(&out.with_extension("unused.db"), &all));
}

/// `ingest --adapter ADAPTER PATH…` with `--json`: its report.
fn adapter_ingest(db: &Path, adapter: &Path, paths: &[&Path]) -> Value {
    let mut args = vec!["--json", "ingest", "--adapter", arg(adapter)];
    args.extend(paths.iter().map(|p| arg(p)));
    stdout_json(&learnloop(db, &args))
}

struct Packets {
    dir: common::Scratch,
    db: PathBuf,
}

/// `demo_packets` output in `data` ingested into `db` through the shipped adapter: its report.
fn ingest_packets(db: &Path, config: &Path, data: &Path) -> Value {
    stdout_json(&learnloop(
        db,
        &[
            "--json",
            "--config",
            arg(config),
            "ingest",
            "--adapter",
            arg(&repo("adapters/decision_packets.json")),
            arg(&data.join("packets")),
            arg(&data.join("closed_positions.jsonl")),
        ],
    ))
}

/// Demo packets ingested through the shipped adapter and run once.
fn packets_run(test: &str, effects: &str) -> (Packets, Value) {
    let dir = scratch(test);
    let data = dir.join("packets");
    let db = dir.join("t.db");
    let config = repo("adapters/decision_packets.config.json");
    demo_packets(&data, &["--effects", effects, "--cycles", "5000"]);
    let ingest = ingest_packets(&db, &config, &data);
    ok(&learnloop(
        &db,
        &["--config", arg(&config), "run", "--activate"],
    ));
    (Packets { dir, db }, ingest)
}

fn active_lessons(db: &Path) -> Vec<(String, BTreeMap<String, String>, f64)> {
    table(db, "learning_lessons")
        .into_iter()
        .filter(|l| l["status"] == "active")
        .map(|l| {
            let scope: BTreeMap<String, String> =
                serde_json::from_str(l["scope_values"].as_str().unwrap()).unwrap();
            (
                l["pattern_key"].as_str().unwrap().to_string(),
                scope,
                l["shrunk_edge"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn a_planted_numeric_range_becomes_a_lesson_on_its_bins_and_a_placebo_on_none() {
    let (run, ingest) = packets_run("adapter-packets", "demo");
    let truth: Value =
        serde_json::from_str(&std::fs::read_to_string(run.dir.join("packets/truth.json")).unwrap())
            .unwrap();
    let effect = &truth["effects"][0];
    let planted: BTreeMap<String, String> =
        serde_json::from_value(effect["scope"].clone()).unwrap();

    // Nothing lost: every clean packet and close stored, exactly the three bad records quarantined.
    let files = ingest["files"].as_array().unwrap();
    let total = |key: &str| {
        files
            .iter()
            .map(|f| f[1]["normalized"][key].as_u64().unwrap())
            .sum::<u64>()
    };
    assert_eq!((total("actions"), total("closes")), (5000, 5000));
    let codes = quarantine_codes(&run.db);
    let expected: BTreeMap<String, usize> =
        [("bad_field", 1), ("missing_field", 1), ("rr_not_finite", 1)]
            .map(|(c, n)| (c.to_string(), n))
            .into();
    assert_eq!(codes, expected, "{:#?}", table(&run.db, "quarantine"));
    let frozen = ingest["frozen_bins"].as_array().unwrap();
    assert_eq!(
        frozen.len(),
        7,
        "every binned dimension frozen on first use"
    );

    let active = active_lessons(&run.db);
    let found = active.iter().find(|(pattern, scope, edge)| {
        *pattern == effect["pattern_key"]
            && planted.iter().all(|(k, v)| scope.get(k) == Some(v))
            && *edge > 0.0
    });
    assert!(
        found.is_some(),
        "planted {planted:?} not among the active lessons {active:#?}"
    );
    let wrong_bin = active
        .iter()
        .find(|(_, scope, _)| scope.get("rsi_2").is_some_and(|b| b != "..10"));
    assert!(
        wrong_bin.is_none(),
        "a lesson on another rsi_2 bin: {wrong_bin:?}"
    );

    // The PM looks up with the raw number; the config bins it with the frozen edges.
    let lookup = |rsi: &str| {
        let scope = format!(r#"{{"regime":"bull","rsi_2":{rsi}}}"#);
        stdout_json(&learnloop(
            &run.db,
            &[
                "--json",
                "lookup",
                "--module",
                "packets",
                "--pattern",
                "ibs_rsi.open.BUY",
                "--category",
                "entry",
                "--scope",
                &scope,
            ],
        ))["size_mult"]
            .as_f64()
            .unwrap()
    };
    assert!(lookup("4.2") > 1.0, "raw rsi_2 4.2 falls in ..10");
    assert_eq!(
        lookup("4.2"),
        lookup("\"..10\""),
        "a raw number and its bin label decide alike"
    );
    assert_eq!(lookup("55"), 1.0);
    // Without --module the short key is pm's, which the store does not have: the message says
    // whose it is.
    let no_module = learnloop(
        &run.db,
        &[
            "lookup",
            "--pattern",
            "ibs_rsi.open.BUY",
            "--category",
            "entry",
        ],
    );
    assert_eq!(no_module.status.code(), Some(2));
    let text = String::from_utf8_lossy(&no_module.stderr);
    assert!(text.contains("pass --module packets"), "{text}");

    // `demo check` reads the packets' truth file as it reads the strands' one.
    let check = stdout_json(&learnloop(
        &run.db,
        &[
            "--json",
            "--config",
            arg(&repo("adapters/decision_packets.config.json")),
            "demo",
            "check",
            "--truth",
            arg(&run.dir.join("packets/truth.json")),
        ],
    ));
    assert_eq!(
        (check["planted"].as_u64(), check["found"].as_u64()),
        (Some(1), Some(1)),
        "{check:#}"
    );

    let (placebo, _) = packets_run("adapter-packets-placebo", "placebo");
    let placebo_active = active_lessons(&placebo.db);
    assert!(
        placebo_active.len() <= 1,
        "placebo found {placebo_active:#?}"
    );
    assert!(!placebo_active
        .iter()
        .any(|(_, s, _)| s.get("rsi_2").map(String::as_str) == Some("..10")));
}

#[test]
fn bins_stay_frozen_and_changed_edges_are_refused() {
    let dir = scratch("adapter-frozen");
    let db = dir.join("t.db");
    let data = dir.join("packets");
    demo_packets(&data, &["--cycles", "400", "--clean"]);
    let adapter = repo("adapters/decision_packets.json");
    let first = adapter_ingest(
        &db,
        &adapter,
        &[&data.join("packets"), &data.join("closed_positions.jsonl")],
    );
    let edges_before = table(&db, "adapter_bins");
    assert_eq!(first["frozen_bins"].as_array().unwrap().len(), 7);

    // Later packets from another distribution are binned with the frozen edges, not re-binned.
    let later = dir.join("later");
    let later_start = [
        "--cycles",
        "400",
        "--clean",
        "--seed",
        "99",
        "--start",
        "2026-09-01T00:00:00Z",
    ];
    demo_packets(&later, &later_start);
    let second = adapter_ingest(&db, &adapter, &[&later.join("packets")]);
    assert!(second["frozen_bins"].as_array().unwrap().is_empty());
    assert_eq!(table(&db, "adapter_bins"), edges_before);

    // The shipped adapter with rsi_2's bins declared otherwise, on the later packets: refused
    // (exit 2) and nothing written; its stderr.
    let refused = |bins: &str| {
        let text = std::fs::read_to_string(&adapter)
            .unwrap()
            .replace("{\"edges\": [10, 30, 70, 90]}", bins);
        let changed = dir.join("changed.json");
        std::fs::write(&changed, text).unwrap();
        let out = learnloop(
            &db,
            &[
                "ingest",
                "--adapter",
                arg(&changed),
                arg(&later.join("packets")),
            ],
        );
        assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
        assert_eq!(table(&db, "adapter_bins"), edges_before);
        stderr(&out)
    };
    // Other fixed edges would re-label history.
    assert!(refused("{\"edges\": [20, 50, 80]}").contains("rsi_2"));
    // Fixed edges turned into quantiles would re-bin it as well (it was ignored silently).
    let err = refused("{\"quantiles\": 4}");
    assert!(err.contains("rsi_2") && err.contains("quantiles"), "{err}");
    assert_eq!(table(&db, "adapter_bins"), edges_before);
}

/// `bench aggregate --breakdown --book-db` counts, on an adapter's store, the subsets a run then
/// stores (per size, and those with their size's support), and leaves the store as it was.
#[test]
fn the_breakdown_of_a_stored_book_counts_what_the_run_stores() {
    let dir = scratch("adapter-breakdown");
    let data = dir.join("packets");
    let db = dir.join("t.db");
    let config = repo("adapters/decision_packets.config.json");
    demo_packets(&data, &["--cycles", "1500", "--clean"]);
    ingest_packets(&db, &config, &data);
    let counted = stdout_json(&learnloop(
        &db,
        &[
            "--json",
            "--config",
            arg(&config),
            "bench",
            "aggregate",
            "--breakdown",
            "--book-db",
            arg(&db),
        ],
    ));
    assert!(
        table(&db, "trade_events").is_empty(),
        "the link was rolled back"
    );
    assert_eq!(counted["trades"], 1500);
    assert_eq!(counted["dims"], 9);

    ok(&learnloop(&db, &["--config", arg(&config), "run"]));
    let min_support = [10u64, 10, 10, 20, 20, 30, 30, 50]; // the default lessons.min_support
    let mut stored: BTreeMap<u64, (u64, u64)> = BTreeMap::new();
    for row in table(&db, "pattern_scope_stats") {
        let dims = row["scope_dims"].as_u64().unwrap();
        let support = min_support[(dims as usize).min(min_support.len() - 1)];
        let entry = stored.entry(dims).or_default();
        entry.0 += 1;
        entry.1 += u64::from(row["n_trades"].as_u64().unwrap() >= support);
    }
    let by_size: BTreeMap<u64, (u64, u64)> = counted["sizes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let n = |k: &str| s[k].as_u64().unwrap();
            (n("dims"), (n("rows"), n("supported")))
        })
        .collect();
    assert!(by_size.len() >= 3, "subsets of several sizes: {by_size:?}");
    // Deeper rows are the lesson stage's: the deep subsets it tested under its discoveries.
    let enumerated = by_size.keys().max().copied().unwrap_or(0);
    let deep_rows: u64 = stored
        .range(enumerated + 1..)
        .map(|(_, (rows, _))| rows)
        .sum();
    let deep_tested = table(&db, "lesson_candidates")
        .iter()
        .filter(|c| c["scope_dims"].as_u64().unwrap() > enumerated)
        .count() as u64;
    assert!(
        deep_rows <= deep_tested,
        "{deep_rows} deep rows, {deep_tested} tested"
    );
    stored.retain(|&dims, _| dims <= enumerated);
    assert_eq!(by_size, stored);

    let mixed = learnloop(
        &db,
        &[
            "bench",
            "aggregate",
            "--breakdown",
            "--book-db",
            arg(&db),
            "--trades",
            "10",
        ],
    );
    assert_eq!(mixed.status.code(), Some(2), "{}", stderr(&mixed));

    // A mistyped store is a usage error, not a new empty store counted as nothing.
    let missing = dir.join("no-such.db");
    let typo = learnloop(
        &db,
        &[
            "bench",
            "aggregate",
            "--breakdown",
            "--book-db",
            arg(&missing),
        ],
    );
    assert_eq!(typo.status.code(), Some(2), "{}", stderr(&typo));
    assert!(stderr(&typo).contains("no-such.db"), "{}", stderr(&typo));
    assert!(!missing.exists());
}

/// Another bot's module with a *categorical* dimension of the same name as a binned one: its
/// config carries no bin edges for it, so the runtime looks up its own category values (before,
/// the frozen edges of every module were attached, and `x = 1` was turned into `..10`).
#[test]
fn frozen_bins_belong_to_the_modules_whose_actions_were_binned() {
    let dir = scratch("adapter-bins-modules");
    let db = dir.join("t.db");
    let adapter = |module: &str, x: &str| {
        serde_json::json!({
            "name": module, "module": module,
            "decision": {
                "when": {"field": "id"}, "id": "{id}", "position_id": "{pos}",
                "time": "{t}", "pattern_key": "s.o.{d}",
                "category": {"template": "{d}", "map": {"BUY": "entry"}},
                "scope": {"x": serde_json::from_str::<Value>(x).unwrap()}
            },
            "outcome": {
                "when": {"field": "exit"}, "id": "close-{pos}", "position_id": "{pos}",
                "time": "{exit}", "r": "{r}"
            }
        })
        .to_string()
    };
    let write_book = |module: &str, adapter_text: String, trades: u32| {
        let (mut lines, mut seed) = (String::new(), u64::from(trades) + module.len() as u64);
        for i in 0..trades {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let x = 1 + (seed >> 33) % 8;
            let noise = ((seed >> 20) % 1000) as f64 / 1000.0 - 0.5;
            let r = if x == 1 { 1.5 + noise } else { -0.2 + noise };
            let day = i * 140 / trades;
            let date = format!("2026-{:02}-{:02}", 1 + day / 28, 1 + day % 28);
            let (entry, exit) = (format!("{date}T00:00:00Z"), format!("{date}T06:00:00Z"));
            lines.push_str(&format!(
                "{{\"id\":\"{module}-{i}\",\"pos\":\"{module}-p{i}\",\"t\":\"{entry}\",\"d\":\"BUY\",\"x\":{x}}}\n\
                 {{\"pos\":\"{module}-p{i}\",\"exit\":\"{exit}\",\"r\":{r}}}\n"
            ));
        }
        let (a, d) = (
            dir.join(format!("{module}.json")),
            dir.join(format!("{module}.jsonl")),
        );
        std::fs::write(&a, adapter_text).unwrap();
        std::fs::write(&d, lines).unwrap();
        (a, d)
    };
    let (binned, binned_data) = write_book(
        "mini",
        adapter(
            "mini",
            r#"{"template": "{x}", "bins": {"edges": [10, 30, 70, 90]}}"#,
        ),
        40,
    );
    let (plain, plain_data) = write_book("other", adapter("other", r#""{x}""#), 800);
    let config = dir.join("config.json");
    std::fs::write(&config, r#"{"dims": ["x"]}"#).unwrap();
    let cfg = ["--config", arg(&config)];
    for (a, d) in [(&binned, &binned_data), (&plain, &plain_data)] {
        ok(&learnloop(
            &db,
            &[&cfg[..], &["ingest", "--adapter", arg(a), arg(d)]].concat(),
        ));
    }
    ok(&learnloop(
        &db,
        &[&cfg[..], &["run", "--activate"]].concat(),
    ));
    let active = active_lessons(&db);
    assert!(
        active
            .iter()
            .any(|(_, scope, _)| scope.get("x").map(String::as_str) == Some("1")),
        "the planted category x = 1 of module other is a lesson: {active:?}"
    );
    let lookup = stdout_json(&learnloop(
        &db,
        &[
            "--json",
            "lookup",
            "--module",
            "other",
            "--pattern",
            "s.o.BUY",
            "--category",
            "entry",
            "--scope",
            r#"{"x": 1}"#,
        ],
    ));
    assert!(lookup["size_mult"].as_f64().unwrap() > 1.0, "{lookup}");
    assert_eq!(
        sorted_rows(&db, "adapter_bin_modules"),
        [r#"{"dim":"x","module":"mini"}"#]
    );
}

/// Outcomes may arrive before their decisions (no quantiles to learn yet), and a directory with a
/// symlink back to an ancestor is walked once (before: refused, and walked ~40 times).
#[test]
fn outcomes_first_and_a_symlink_loop_ingest_each_record_once() {
    let dir = scratch("adapter-outcomes-first");
    let db = dir.join("t.db");
    let data = dir.join("packets");
    demo_packets(&data, &["--cycles", "120", "--clean"]);
    let adapter = repo("adapters/decision_packets.json");
    let closes = adapter_ingest(&db, &adapter, &[&data.join("closed_positions.jsonl")]);
    let fixed = closes["frozen_bins"].as_array().unwrap();
    assert!(fixed.iter().all(|b| b["method"] == "fixed"), "{closes}");
    #[cfg(unix)]
    std::os::unix::fs::symlink("..", data.join("packets").join("loop")).unwrap();
    let decisions = adapter_ingest(&db, &adapter, &[&data.join("packets")]);
    let learned = decisions["frozen_bins"].as_array().unwrap();
    assert_eq!(fixed.len() + learned.len(), 7);
    assert!(
        learned.iter().all(|b| b["method"] == "quantiles"),
        "{decisions}"
    );
    let files = decisions["files"].as_array().unwrap();
    let packet_files = std::fs::read_dir(data.join("packets"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .path()
                .extension()
                .is_some_and(|x| x == "json")
        })
        .count();
    assert_eq!(files.len(), packet_files, "each packet file once");
    assert!(
        quarantine_codes(&db).is_empty(),
        "{:?}",
        quarantine_codes(&db)
    );
}
