//! PostgreSQL source and sink (SPEC §11.2) against a real server: `.ci/run` starts a throwaway
//! cluster and exports LEARNLOOP_TEST_PG_URL. Without it (local development) each test says so
//! loudly and passes; under CI a missing server is a failure.

use learnloop_linker::ingest_pg::{ingest_postgres, PgIngestOptions, PgIngestReport};
use learnloop_model::strand::RawStrand;
use learnloop_model::{ConfigStatus, ConfigVersion, LoopConfig, Timestamp};
use learnloop_store::pg::{self, Client, PgTarget, TableName};
use learnloop_store::Connection;
use learnloop_tests::{dump, ingest, postgres_test_url, run, url_password, NOW};
use std::collections::BTreeSet;

fn connect(url: &str) -> (PgTarget, Client) {
    let target = PgTarget::parse(url).unwrap();
    let client = pg::connect(&target).unwrap();
    (target, client)
}

/// A table of this test's own (tests run in parallel against one database).
fn fresh_table(client: &mut Client, name: &str) -> TableName {
    let table = TableName::parse(&format!("{name}_{}", std::process::id())).unwrap();
    client
        .batch_execute(&format!("DROP TABLE IF EXISTS {}", table.quoted))
        .unwrap();
    table
}

/// Demo strands with the demo's injected mess, keeping the lines a PostgreSQL `ad_strands` can
/// hold (valid JSON content, a timestamp, one row per id), plus a row without `kind` that only a
/// table with a nullable column can hold. The same lines go to JSONL and to the table.
fn strands(cycles: usize, seed: u64) -> (Vec<String>, Vec<RawStrand>) {
    let opts = learnloop_demo::DemoOptions {
        seed,
        days: 60,
        ..learnloop_demo::DemoOptions::default().with_cycles(cycles)
    };
    let (lines, _) = learnloop_demo::generate(&opts);
    let mut seen = BTreeSet::new();
    let mut kept = Vec::new();
    let mut raws = Vec::new();
    let json_ok = |t: &str| serde_json::from_str::<serde_json::Value>(t).is_ok();
    for line in lines {
        let Ok(raw) = RawStrand::from_json_line(&line) else {
            continue;
        };
        let representable = json_ok(&raw.content)
            && raw.regime_context.as_deref().is_none_or(json_ok)
            && Timestamp::parse(&raw.created_at).is_ok()
            && seen.insert(raw.id.clone());
        if representable {
            kept.push(line);
            raws.push(raw);
        }
    }
    (kept, raws)
}

fn ingest_pg(
    conn: &mut Connection,
    client: &mut Client,
    target: &PgTarget,
    options: &PgIngestOptions,
) -> PgIngestReport {
    let tx = conn.transaction().unwrap();
    let report = ingest_postgres(&tx, client, target, options, NOW, |_| {}).unwrap();
    tx.commit().unwrap();
    report
}

fn options(table: &TableName, batch: usize) -> PgIngestOptions {
    PgIngestOptions {
        table: table.display.clone(),
        batch,
        ..PgIngestOptions::default()
    }
}

fn quarantine_by_reason(conn: &Connection) -> Vec<(String, i64)> {
    learnloop_store::strands::quarantine_counts(conn).unwrap()
}

const NO_KIND_ROW: &str = r#"{"id":"no-kind-1","kind":null,"created_at":"2026-01-20T00:00:00Z","content":{"position_id":"p-x"}}"#;

#[test]
fn strands_from_postgres_give_the_same_tables_as_the_same_strands_from_jsonl() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    let (target, mut client) = connect(&url);
    let table = fresh_table(&mut client, "same_as_jsonl");
    pg::create_strands_table(&mut client, &table).unwrap();
    let (mut lines, raws) = strands(400, 5);
    pg::copy_strands_in(&mut client, &table, &raws).unwrap();
    client
        .execute(
            &format!(
                "INSERT INTO {} (id, created_at, content) VALUES ('no-kind-1', '2026-01-20T00:00:00Z', '{{\"position_id\":\"p-x\"}}')",
                table.quoted
            ),
            &[],
        )
        .unwrap();
    lines.push(NO_KIND_ROW.to_string());

    let cfg = LoopConfig::default();
    let mut from_file = learnloop_store::open_in_memory().unwrap();
    let file_report = ingest(&mut from_file, &lines);
    run(&mut from_file, &cfg, None, false);

    let mut from_pg = learnloop_store::open_in_memory().unwrap();
    // Small batches: many round trips through the cursor.
    let pg_report = ingest_pg(&mut from_pg, &mut client, &target, &options(&table, 257));
    run(&mut from_pg, &cfg, None, false);

    assert_eq!(pg_report.ingest.lines as usize, lines.len());
    assert_eq!(pg_report.ingest.inserted, file_report.inserted);
    assert_eq!(pg_report.ingest.normalized, file_report.normalized);
    assert!(
        pg_report.ingest.normalized.quarantined_total() > 0,
        "the mess reached the table"
    );
    assert_eq!(
        quarantine_by_reason(&from_pg),
        quarantine_by_reason(&from_file)
    );
    let stats =
        |c: &Connection| learnloop_store::export::dump_tables(c, &["pattern_scope_stats"]).unwrap();
    assert!(
        stats(&from_pg).lines().count() > 10,
        "the run found statistics"
    );
    assert_eq!(
        stats(&from_pg),
        stats(&from_file),
        "pattern_scope_stats differ"
    );
    assert_eq!(dump(&from_pg), dump(&from_file), "derived tables differ");

    // A desk moving from JSONL exports to --from: the strands it already has are recognised
    // (jsonb spells the same content differently), not reported as id conflicts.
    let switch = ingest_pg(&mut from_file, &mut client, &target, &options(&table, 1000));
    assert_eq!(switch.ingest.inserted, 0);
    assert_eq!(switch.ingest.id_conflicts, 0);
    assert_eq!(switch.ingest.already_present, file_report.inserted);
}

#[test]
fn incremental_reads_take_only_new_rows_and_a_late_row_inside_the_look_back() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    let (target, mut client) = connect(&url);
    let table = fresh_table(&mut client, "incremental");
    pg::create_strands_table(&mut client, &table).unwrap();
    let (lines, mut raws) = strands(200, 9);
    raws.sort_by_key(|r| Timestamp::parse(&r.created_at).unwrap().millis());
    // Hold back the newest rows and one old row that will arrive late.
    let late = raws.remove(raws.len() / 2);
    let (first, second) = raws.split_at(raws.len() * 2 / 3);
    pg::copy_strands_in(&mut client, &table, first).unwrap();

    let mut conn = learnloop_store::open_in_memory().unwrap();
    let opts = options(&table, 1000);
    let r1 = ingest_pg(&mut conn, &mut client, &target, &opts);
    assert_eq!(
        (r1.read_from.as_str(), r1.ingest.inserted),
        ("start", first.len() as u64)
    );

    pg::copy_strands_in(&mut client, &table, second).unwrap();
    let r2 = ingest_pg(&mut conn, &mut client, &target, &opts);
    assert!(r2.read_from.starts_with("since "), "{}", r2.read_from);
    assert_eq!(r2.ingest.inserted, second.len() as u64);
    assert_eq!(r2.ingest.id_conflicts, 0);
    assert!(
        r2.ingest.already_present > 0,
        "the look-back window re-read stored rows"
    );

    let r3 = ingest_pg(&mut conn, &mut client, &target, &opts);
    assert_eq!(r3.ingest.inserted, 0, "a second call reads nothing new");
    assert_eq!(
        r3.ingest.normalized.quarantined_total(),
        0,
        "nothing counted twice"
    );
    assert_eq!(r3.watermark_after, r2.watermark_after);

    // A row committed now with a created_at older than the watermark: a strict keyset read
    // misses it, the look-back window (or a full read) does not.
    pg::copy_strands_in(&mut client, &table, std::slice::from_ref(&late)).unwrap();
    let strict = PgIngestOptions {
        lookback: None,
        ..opts.clone()
    };
    let r4 = ingest_pg(&mut conn, &mut client, &target, &strict);
    assert!(r4.read_from.starts_with("after "));
    assert_eq!(r4.ingest.inserted, 0);
    let lookback = PgIngestOptions {
        lookback: Some(chrono::Duration::days(60)),
        ..opts.clone()
    };
    let r5 = ingest_pg(&mut conn, &mut client, &target, &lookback);
    assert_eq!(r5.ingest.inserted, 1);
    let full = PgIngestOptions { full: true, ..opts };
    let r6 = ingest_pg(&mut conn, &mut client, &target, &full);
    assert_eq!((r6.read_from.as_str(), r6.ingest.inserted), ("start", 0));

    // Three reads and a late row end where one JSONL ingest of everything ends.
    let cfg = LoopConfig::default();
    run(&mut conn, &cfg, None, false);
    let mut whole = learnloop_store::open_in_memory().unwrap();
    ingest(&mut whole, &lines);
    run(&mut whole, &cfg, None, false);
    assert_eq!(dump(&conn), dump(&whole));
}

#[test]
fn bad_rows_are_quarantined_with_the_row_named_and_never_abort_the_read() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    let (target, mut client) = connect(&url);
    let table = fresh_table(&mut client, "bad_rows");
    pg::create_strands_table(&mut client, &table).unwrap();
    client
        .batch_execute(&format!(
            "INSERT INTO {t} (id, kind, created_at, content) VALUES
               ('ok-close', 'position_closed', '2026-02-01T10:00:00Z',
                '{{\"position_id\":\"p1\",\"trade_summary\":{{\"rr\":1.5,\"exit_timestamp\":\"2026-02-01T10:00:00Z\"}}}}'),
               ('no-kind', NULL, '2026-02-01T11:00:00Z', '{{\"position_id\":\"p1\"}}'),
               ('no-time', 'pm_action', NULL, '{{\"position_id\":\"p1\"}}'),
               ('array-content', 'pm_action', '2026-02-01T12:00:00Z', '[1, 2]'),
               ('bad-kind', 'weather', '2026-02-01T13:00:00Z', '{{\"position_id\":\"p1\"}}'),
               ('no-rr', 'position_closed', '2026-02-01T14:00:00Z', '{{\"position_id\":\"p2\",\"trade_summary\":{{}}}}'),
               ('future', 'position_closed', '2099-01-01T00:00:00Z',
                '{{\"position_id\":\"p3\",\"trade_summary\":{{\"rr\":0.5,\"exit_timestamp\":\"2099-01-01T00:00:00Z\"}}}}'),
               ('infinite', 'pm_action', 'infinity', '{{\"position_id\":\"p5\"}}'),
               ('year-290000', 'pm_action', '290000-01-01T00:00:00Z', '{{\"position_id\":\"p6\"}}')",
            t = table.quoted
        ))
        .unwrap();
    let mut conn = learnloop_store::open_in_memory().unwrap();
    // Timestamps PostgreSQL holds but the client cannot decode (infinity, year 290000) are bad
    // rows like the others: before, one of them failed every read of the table.
    let r = ingest_pg(&mut conn, &mut client, &target, &options(&table, 2));
    assert_eq!(r.ingest.lines, 9);
    assert_eq!(r.ingest.normalized.closes, 2);
    assert_eq!(
        r.ingest.normalized.quarantined_total(),
        7,
        "{:?}",
        r.ingest.normalized
    );
    let reasons: Vec<String> = quarantine_by_reason(&conn)
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    for code in [
        "missing_field",
        "malformed_json",
        "unknown_kind",
        "bad_timestamp",
    ] {
        assert!(
            reasons.iter().any(|c| c == code),
            "{code} not in {reasons:?}"
        );
    }
    let details: Vec<String> = conn
        .prepare("SELECT reason FROM quarantine ORDER BY reason")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        details
            .iter()
            .any(|d| d.contains("row id \"no-kind\"") && d.contains("kind is missing")),
        "{details:?}"
    );
    // The row without created_at is read every time (it sorts after the watermark) but
    // quarantined once.
    let again = ingest_pg(&mut conn, &mut client, &target, &options(&table, 2));
    assert_eq!(again.ingest.normalized.quarantined_total(), 0);
    assert!(again.quarantined_before >= 1);
    assert_eq!(
        quarantine_by_reason(&conn)
            .iter()
            .map(|(_, n)| n)
            .sum::<i64>(),
        7
    );

    // The row stamped 2099 was stored but did not move the watermark: later rows still come in.
    let watermark = again.watermark_after.clone().unwrap();
    assert!(watermark.contains("2026-02-01T14:00:00"), "{watermark}");
    client
        .batch_execute(&format!(
            "INSERT INTO {} (id, kind, created_at, content) VALUES ('next-day', 'position_closed',
               '2026-02-02T09:00:00Z', '{{\"position_id\":\"p4\",\"trade_summary\":{{\"rr\":-1,\"exit_timestamp\":\"2026-02-02T09:00:00Z\"}}}}')",
            table.quoted
        ))
        .unwrap();
    let next = ingest_pg(&mut conn, &mut client, &target, &options(&table, 2));
    assert_eq!(
        (next.ingest.inserted, next.ingest.normalized.closes),
        (1, 1)
    );
}

#[test]
fn a_connection_lost_mid_ingest_is_a_clear_error_and_writes_nothing_locally() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    let (target, mut client) = connect(&url);
    let table = fresh_table(&mut client, "lost");
    pg::create_strands_table(&mut client, &table).unwrap();
    let (_, raws) = strands(150, 3);
    pg::copy_strands_in(&mut client, &table, &raws).unwrap();
    let pid: i32 = client
        .query_one("SELECT pg_backend_pid()", &[])
        .unwrap()
        .get(0);
    let (_, mut admin) = connect(&url);

    let mut conn = learnloop_store::open_in_memory().unwrap();
    let tx = conn.transaction().unwrap();
    let mut batches = 0;
    let result = ingest_postgres(
        &tx,
        &mut client,
        &target,
        &options(&table, 100),
        NOW,
        |_| {
            batches += 1;
            if batches == 2 {
                // What a server shutdown does to each session: terminate its backend.
                admin
                    .execute("SELECT pg_terminate_backend($1)", &[&pid])
                    .unwrap();
            }
        },
    );
    let err = result.expect_err("the read cannot go on without its connection");
    let message = format!("{err}");
    assert!(
        message.contains(&format!("reading {}", table.display)),
        "{message}"
    );
    assert!(batches >= 2);
    drop(tx);
    let counts = learnloop_store::strands::counts(&conn).unwrap();
    assert_eq!((counts.strands, counts.actions, counts.closes), (0, 0, 0));
    let key = learnloop_linker::ingest_pg::watermark_key(&target, &table.display);
    assert_eq!(learnloop_store::meta::get(&conn, &key).unwrap(), None);

    // The next call, on a new connection, reads everything.
    let (_, mut client) = connect(&url);
    let r = ingest_pg(&mut conn, &mut client, &target, &options(&table, 100));
    assert_eq!(r.ingest.lines as usize, raws.len());
}

fn config(version: i64, marker: &str) -> ConfigVersion {
    let mut data = learnloop_overrides::ConfigData::new("pm", version, "2026-03-01T00:00:00Z");
    data.feature_flags.disabled_buckets.push(marker.to_string());
    let text = data.to_json();
    ConfigVersion {
        module: "pm".into(),
        version,
        status: ConfigStatus::Active,
        as_of: Timestamp::parse("2026-03-01T00:00:00Z").unwrap(),
        run_id: Some(format!("run-{version}")),
        created_at: Timestamp::parse("2026-03-01T01:00:00.000Z").ok(),
        checksum: learnloop_overrides::config_checksum(&text),
        config_data: text,
    }
}

#[test]
fn publishers_creating_one_table_at_once_take_turns_and_a_foreign_shape_is_an_error() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    let (_, mut client) = connect(&url);
    let table = fresh_table(&mut client, "configs_race");
    // Several publishers find the table missing at once; before they took turns, one of them
    // could fail in the catalog (a duplicate pg_type row).
    let outcomes: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let (url, table) = (&url, &table);
                s.spawn(move || {
                    let (_, mut c) = connect(url);
                    pg::publish_config(&mut c, table, &config(1, "a"))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let outcomes: Vec<_> = outcomes.into_iter().map(Result::unwrap).collect();
    assert_eq!(outcomes.iter().filter(|o| o.created_table).count(), 1);
    assert_eq!(outcomes.iter().filter(|o| o.changed).count(), 1);

    // A desk table whose status is an enum: an error naming the columns, not a panic.
    let foreign = fresh_table(&mut client, "configs_enum");
    let status_type = format!("{}_status", foreign.base);
    client
        .batch_execute(&format!(
            "DROP TYPE IF EXISTS \"{ty}\";
             CREATE TYPE \"{ty}\" AS ENUM ('active', 'superseded');
             CREATE TABLE {t} (module text, version bigint, status \"{ty}\", as_of timestamptz,
                               checksum text, config_data jsonb, updated_at timestamptz);
             INSERT INTO {t} VALUES ('pm', 1, 'superseded', now(), 'x', '{{}}', now());",
            ty = status_type,
            t = foreign.quoted
        ))
        .unwrap();
    let err = pg::publish_config(&mut client, &foreign, &config(1, "a"))
        .unwrap_err()
        .to_string();
    assert!(err.contains("must be text"), "{err}");
    client
        .batch_execute(&format!(
            "DROP TABLE {}; DROP TYPE \"{status_type}\"; DROP TABLE {}",
            foreign.quoted, table.quoted
        ))
        .unwrap();
}

#[test]
fn publish_round_trips_is_idempotent_and_readers_see_one_whole_active_row() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    let (_, mut client) = connect(&url);
    let table = fresh_table(&mut client, "configs");
    let (v1, v2) = (config(1, "a"), config(2, "b"));

    let first = pg::publish_config(&mut client, &table, &v1).unwrap();
    assert!(first.changed && first.created_table && first.superseded.is_empty());
    let read = pg::read_active_config(&mut client, &table, "pm")
        .unwrap()
        .unwrap();
    assert_eq!(read, v1, "the PM reads back exactly what was published");
    let row = learnloop_overrides::ConfigRow {
        module: read.module.clone(),
        version: read.version,
        status: read.status.to_string(),
        as_of: Some(read.as_of.to_rfc3339()),
        run_id: read.run_id.clone(),
        created_at: read.created_at.map(Timestamp::to_rfc3339_millis),
        checksum: Some(read.checksum.clone()),
        config_data: read.config_data.clone(),
    };
    learnloop_overrides::Overrides::from_row(&row)
        .expect("the published row loads, checksum verified");

    let updated_at = |c: &mut Client| -> String {
        c.query_one(
            &format!(
                "SELECT updated_at::text FROM {} WHERE version = 1",
                table.quoted
            ),
            &[],
        )
        .unwrap()
        .get(0)
    };
    let before = updated_at(&mut client);
    let again = pg::publish_config(&mut client, &table, &v1).unwrap();
    assert!(!again.changed && !again.created_table);
    assert_eq!(
        updated_at(&mut client),
        before,
        "publishing twice changes nothing"
    );

    let second = pg::publish_config(&mut client, &table, &v2).unwrap();
    assert_eq!((second.changed, second.superseded.clone()), (true, vec![1]));
    let back = pg::publish_config(&mut client, &table, &v1).unwrap();
    assert_eq!(
        back.superseded,
        vec![2],
        "a rollback published re-activates v1"
    );

    let forged = ConfigVersion {
        checksum: "0000000000000000".into(),
        ..config(2, "c")
    };
    let err = pg::publish_config(&mut client, &table, &forged).unwrap_err();
    assert!(err.to_string().contains("another store published"), "{err}");
    assert_eq!(
        pg::read_active_config(&mut client, &table, "pm")
            .unwrap()
            .unwrap()
            .version,
        1
    );

    // A reader polling while versions flip sees exactly one active row, whole, every time.
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let reads = std::sync::Arc::new(AtomicUsize::new(0));
    let (ready_tx, ready_rx) = std::sync::mpsc::channel();
    let reader = {
        let (url, stop, reads, quoted) = (
            url.clone(),
            stop.clone(),
            reads.clone(),
            table.quoted.clone(),
        );
        std::thread::spawn(move || {
            let (_, mut c) = connect(&url);
            let sql = format!("SELECT version, checksum, config_text FROM {quoted} WHERE module = 'pm' AND status = 'active'");
            ready_tx.send(()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                let rows = c.query(&sql, &[]).unwrap();
                assert_eq!(rows.len(), 1, "exactly one active row");
                let (checksum, text): (String, String) = (rows[0].get(1), rows[0].get(2));
                assert_eq!(learnloop_overrides::config_checksum(&text), checksum);
                reads.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    ready_rx.recv().unwrap();
    let mut flips = 0;
    while flips < 40 || (reads.load(Ordering::Relaxed) < 200 && flips < 5000) {
        let v = if flips % 2 == 0 { &v2 } else { &v1 };
        assert!(pg::publish_config(&mut client, &table, v).unwrap().changed);
        flips += 1;
    }
    stop.store(true, Ordering::Relaxed);
    reader
        .join()
        .expect("the reader saw one whole active row every time");
    assert!(
        reads.load(Ordering::Relaxed) >= 200,
        "the reader ran during the flips"
    );
}

#[test]
fn tls_is_used_when_the_url_asks_for_it() {
    let Some(url) = postgres_test_url() else {
        return;
    };
    if std::env::var_os("LEARNLOOP_TEST_PG_TLS").is_none() {
        eprintln!("*** SKIPPED: the test server has no TLS (LEARNLOOP_TEST_PG_TLS unset) ***");
        return;
    }
    let with_mode = |mode: &str| url.replace("sslmode=disable", &format!("sslmode={mode}"));
    let uses_ssl = |u: &str| -> bool {
        let (_, mut c) = connect(u);
        c.query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .unwrap()
        .get(0)
    };
    assert!(uses_ssl(&with_mode("require")));
    assert!(!uses_ssl(&with_mode("disable")));
    // The test server's certificate is self-signed: full verification must refuse it.
    let target = PgTarget::parse(&with_mode("verify-full")).unwrap();
    let Err(err) = pg::connect(&target) else {
        panic!("a self-signed certificate is not trusted")
    };
    assert!(!err.to_string().contains(&url_password(&url)), "{err}");
}
