//! Helpers shared by the end-to-end tests beside this file.

use learnloop_model::{LoopConfig, Timestamp};
use learnloop_pipeline::{run_stages, RunOptions, Stage, StagesReport};
use learnloop_store::Connection;

pub use learnloop_store::schema::DERIVED_TABLES;

pub const NOW: &str = "2026-01-01T00:00:00Z";

/// [`NOW`] as the wall-clock time the stages are handed.
pub fn now() -> learnloop_model::Timestamp {
    learnloop_model::Timestamp::parse(NOW).expect("NOW is RFC 3339")
}

pub fn ingest(conn: &mut Connection, lines: &[String]) -> learnloop_linker::IngestReport {
    let tx = conn.transaction().unwrap();
    let report =
        learnloop_linker::ingest_lines(&tx, lines.iter().cloned().map(Ok), "test", NOW).unwrap();
    tx.commit().unwrap();
    report
}

pub fn run(
    conn: &mut Connection,
    cfg: &LoopConfig,
    as_of: Option<Timestamp>,
    rebuild: bool,
) -> StagesReport {
    let options = RunOptions {
        as_of,
        rebuild,
        placebo: None,
        activate: true,
        run_id: None,
    };
    run_with(conn, cfg, &options)
}

pub fn run_with(conn: &mut Connection, cfg: &LoopConfig, options: &RunOptions) -> StagesReport {
    let tx = conn.transaction().unwrap();
    let report = run_stages(&tx, cfg, options, &Stage::ALL, now()).unwrap();
    tx.commit().unwrap();
    report
}

/// `stages` in a transaction that is rolled back whatever they return: what a placebo, or a run
/// that must be refused, does to a store that stays as it was.
pub fn run_rolled_back(
    conn: &mut Connection,
    cfg: &LoopConfig,
    options: &RunOptions,
    stages: &[Stage],
) -> Result<StagesReport, learnloop_pipeline::PipelineError> {
    let tx = conn.transaction().unwrap();
    run_stages(&tx, cfg, options, stages, now())
}

/// The rows `sql` gives, each as its cells' debug forms joined by `|`, in the query's order.
pub fn query_rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        Ok((0..n)
            .map(|i| format!("{:?}", r.get_ref(i).unwrap()))
            .collect::<Vec<_>>()
            .join("|"))
    })
    .unwrap()
    .collect::<Result<Vec<_>, _>>()
    .unwrap()
}

pub fn dump(conn: &Connection) -> String {
    learnloop_store::export::dump_tables(conn, DERIVED_TABLES).unwrap()
}

/// Link and aggregation output only: what must not depend on how the input was batched.
/// (Lessons legitimately remember their history: runs at two as-of times add two points.)
pub fn dump_stats(conn: &Connection) -> String {
    learnloop_store::export::dump_tables(conn, &DERIVED_TABLES[..6]).unwrap()
}

pub fn demo_lines(cycles: usize, seed: u64) -> (Vec<String>, learnloop_demo::GroundTruth) {
    demo_lines_over(cycles, seed, 90)
}

pub fn demo_lines_over(
    cycles: usize,
    seed: u64,
    days: u32,
) -> (Vec<String>, learnloop_demo::GroundTruth) {
    let opts = learnloop_demo::DemoOptions {
        seed,
        days,
        ..learnloop_demo::DemoOptions::default().with_cycles(cycles)
    };
    learnloop_demo::generate(&opts)
}

/// The PostgreSQL server the tests may use (LEARNLOOP_TEST_PG_URL, exported by `.ci/run` from
/// `.ci/pg.sh`). `None` with a loud message in local development; under CI its absence fails.
pub fn postgres_test_url() -> Option<String> {
    match std::env::var("LEARNLOOP_TEST_PG_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must provide a PostgreSQL server (LEARNLOOP_TEST_PG_URL, started by .ci/run)"
            );
            eprintln!("\n*** SKIPPED: LEARNLOOP_TEST_PG_URL is not set; PostgreSQL tests need a server (see .ci/pg.sh) ***\n");
            None
        }
    }
}

/// The password inside a `postgresql://user:password@…` URL, to check it never leaks.
pub fn url_password(url: &str) -> String {
    let userinfo = url
        .split("://")
        .nth(1)
        .unwrap_or("")
        .split('@')
        .next()
        .unwrap_or("");
    userinfo.split(':').nth(1).unwrap_or("").to_string()
}
