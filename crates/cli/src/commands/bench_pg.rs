//! `learnloop bench pg-ingest --pg-url URL`: a synthetic book COPYed into a scratch PostgreSQL
//! table, then read back three ways — the bare cursor read, `ingest --from` end to end into a
//! fresh store, and the same strands from JSON Lines for comparison — in strands per second.

use super::bench::{cpu_seconds, remove_db, BenchArgs};
use crate::context::wall_clock_now;
use crate::output::kv;
use anyhow::Context;
use learnloop_demo::{generate, DemoOptions};
use learnloop_linker::ingest_pg::{ingest_postgres, PgIngestOptions};
use learnloop_model::strand::RawStrand;
use learnloop_store::pg::{self, ReadFrom, TableName};
use serde::Serialize;
use std::time::Instant;

#[derive(Debug, Serialize)]
pub struct PgIngestBench {
    pub strands: u64,
    pub batch: usize,
    /// COPY into the scratch table, then VACUUM (ANALYZE) and, where allowed, CHECKPOINT.
    pub copy_in_s: f64,
    /// The cursor read alone (rows fetched and decoded, nothing stored).
    pub read_only_s: f64,
    pub read_only_per_s: f64,
    /// `ingest --from` end to end: read, validate, store, normalise, commit.
    pub ingest_s: f64,
    pub ingest_per_s: f64,
    /// Of `ingest_s`, the commit, on one thread after the read: a first load writes its pages
    /// into the database under a rollback journal (`store::load_transaction`), then the store
    /// returns to WAL mode.
    pub ingest_commit_s: f64,
    /// `learnloop ingest --from URL --table T` run as its own process into a new store: what a
    /// nightly job runs (start-up and a fresh heap and page cache included).
    pub command_s: f64,
    pub command_per_s: f64,
    /// The same strands from JSON Lines into a fresh store.
    pub jsonl_ingest_s: f64,
    pub jsonl_ingest_per_s: f64,
    /// CPU seconds (user + system) of this process in each phase: on a shared machine the wall
    /// times above include waiting for the CPU and the disk; these do not.
    pub read_only_cpu_s: Option<f64>,
    pub ingest_cpu_s: Option<f64>,
    pub jsonl_ingest_cpu_s: Option<f64>,
    /// CPU seconds of the thread that validates and stores (the rows are read on another):
    /// with a core of its own, `ingest --from` cannot go faster than this thread.
    pub ingest_store_thread_cpu_s: Option<f64>,
    /// CPU seconds of the server backend serving the cursor read (when the server is local).
    pub read_only_server_cpu_s: Option<f64>,
}

/// Wall and CPU seconds of `f`, for this process and optionally another.
fn timed<T>(
    other_pid: Option<&str>,
    f: impl FnOnce() -> anyhow::Result<T>,
) -> anyhow::Result<(T, f64, Option<f64>, Option<f64>)> {
    let (cpu0, other0) = (cpu_seconds("self"), other_pid.and_then(cpu_seconds));
    let t = Instant::now();
    let value = f()?;
    let wall = t.elapsed().as_secs_f64();
    let cpu = cpu_seconds("self").zip(cpu0).map(|(b, a)| b - a);
    let other = other_pid
        .and_then(cpu_seconds)
        .zip(other0)
        .map(|(b, a)| b - a);
    Ok((value, wall, cpu, other))
}

pub fn bench_pg_ingest(args: &BenchArgs) -> anyhow::Result<PgIngestBench> {
    let url = args
        .pg_url
        .as_deref()
        .context("bench pg-ingest needs --pg-url URL (or LEARNLOOP_BENCH_PG_URL): a server it may create a scratch table on")?;
    let target = super::pg::target(url)?;
    let mut client = pg::connect(&target)?;
    let opts = DemoOptions {
        seed: args.seed,
        mess: false,
        days: args.days.unwrap_or(super::bench::DEFAULT_DAYS),
        ..DemoOptions::default().with_cycles(args.trades.unwrap_or(super::bench::DEFAULT_TRADES))
    };
    let (lines, _) = generate(&opts);
    let raws: Vec<RawStrand> = lines
        .iter()
        .map(|l| RawStrand::from_json_line(l).map_err(|e| anyhow::anyhow!("demo line: {e}")))
        .collect::<anyhow::Result<_>>()?;
    let table = TableName::parse(&format!("learnloop_bench_strands_{}", std::process::id()))?;
    client.batch_execute(&format!("DROP TABLE IF EXISTS {}", table.quoted))?;
    pg::create_strands_table(&mut client, &table)?;
    let result = measure(args, url, &mut client, &target, &table, &lines, &raws);
    client.batch_execute(&format!("DROP TABLE IF EXISTS {}", table.quoted))?;
    result
}

fn measure(
    args: &BenchArgs,
    url: &str,
    client: &mut pg::Client,
    target: &pg::PgTarget,
    table: &TableName,
    lines: &[String],
    raws: &[RawStrand],
) -> anyhow::Result<PgIngestBench> {
    let batch = args
        .pg_batch
        .unwrap_or(PgIngestOptions::default().batch)
        .max(1);
    let t = Instant::now();
    pg::copy_strands_in(client, table, raws)?;
    // A desk's table is long settled; a freshly COPYed one is not: its first readers would set
    // the rows' hint bits (writing pages) and the server would be flushing the COPY's pages while
    // the reads are timed. VACUUM sets the bits; CHECKPOINT (superuser or pg_checkpoint) flushes.
    client.batch_execute(&format!("VACUUM (ANALYZE) {}", table.quoted))?;
    if let Err(e) = client.batch_execute("CHECKPOINT") {
        tracing::info!(error = %e, "no CHECKPOINT before timing (needs superuser or pg_checkpoint)");
    }
    let copy_in_s = t.elapsed().as_secs_f64();

    learnloop_sys::sync_file_systems();
    let backend: i32 = client.query_one("SELECT pg_backend_pid()", &[])?.get(0);
    let backend = backend.to_string();
    let (read, read_only_s, read_only_cpu_s, read_only_server_cpu_s) =
        timed(Some(&backend), || {
            Ok(pg::read_strands(
                client,
                table,
                &ReadFrom::Start,
                batch,
                |_| Ok::<_, pg::PgError>(()),
            )?)
        })?;

    let scratch =
        std::env::temp_dir().join(format!("learnloop-bench-pg-{}.db", std::process::id()));
    remove_db(&scratch);
    let mut conn = learnloop_store::open(&scratch)?;
    let options = PgIngestOptions {
        table: table.display.clone(),
        batch,
        ..PgIngestOptions::default()
    };
    learnloop_sys::sync_file_systems();
    let store_thread_before = cpu_seconds("thread-self");
    let mut ingest_commit_s = 0.0;
    let (report, ingest_s, ingest_cpu_s, _) = timed(None, || {
        let mut stream_end = None;
        let report = learnloop_store::load_transaction(&mut conn, |tx| {
            let report = ingest_postgres(
                tx,
                client,
                target,
                &options,
                &wall_clock_now().to_rfc3339_millis(),
                |_| {},
            )?;
            stream_end = Some(Instant::now());
            anyhow::Ok(report)
        })?;
        // The commit, and after a first load the switch back to WAL.
        ingest_commit_s = stream_end.map_or(0.0, |t| t.elapsed().as_secs_f64());
        Ok(report)
    })?;
    let ingest_store_thread_cpu_s = cpu_seconds("thread-self")
        .zip(store_thread_before)
        .map(|(b, a)| b - a);
    drop(conn);
    remove_db(&scratch);
    anyhow::ensure!(
        report.ingest.inserted == raws.len() as u64,
        "ingested {} of {} strands",
        report.ingest.inserted,
        raws.len()
    );

    learnloop_sys::sync_file_systems();
    let command_s = time_ingest_command(url, table, batch, &scratch)?;
    remove_db(&scratch);
    learnloop_sys::sync_file_systems();

    let mut conn = learnloop_store::open(&scratch)?;
    let ((), jsonl_ingest_s, jsonl_ingest_cpu_s, _) = timed(None, || {
        let lines = lines.iter().cloned().map(Ok);
        learnloop_store::load_transaction(&mut conn, |tx| {
            let now = wall_clock_now().to_rfc3339_millis();
            learnloop_linker::ingest_lines(tx, lines, "bench", &now).map(drop)
        })?;
        Ok(())
    })?;
    drop(conn);
    if args.keep_db.is_none() {
        remove_db(&scratch);
    }
    let n = raws.len() as f64;
    Ok(PgIngestBench {
        strands: read,
        batch,
        copy_in_s,
        read_only_s,
        read_only_per_s: n / read_only_s,
        ingest_s,
        ingest_per_s: n / ingest_s,
        ingest_commit_s,
        command_s,
        command_per_s: n / command_s,
        jsonl_ingest_s,
        jsonl_ingest_per_s: n / jsonl_ingest_s,
        read_only_cpu_s,
        ingest_cpu_s,
        jsonl_ingest_cpu_s,
        ingest_store_thread_cpu_s,
        read_only_server_cpu_s,
    })
}

/// Wall seconds of this binary's `ingest --from` into a new store at `db`, as a child process.
fn time_ingest_command(
    url: &str,
    table: &TableName,
    batch: usize,
    db: &std::path::Path,
) -> anyhow::Result<f64> {
    let exe = std::env::current_exe().context("finding this binary to run `ingest --from`")?;
    let t = Instant::now();
    let out = std::process::Command::new(exe)
        .arg("--db")
        .arg(db)
        .args(["ingest", "--from", url, "--table", &table.display])
        .args(["--batch", &batch.to_string()])
        .env_remove("LEARNLOOP_DB")
        .stdin(std::process::Stdio::null())
        .output()
        .context("running `learnloop ingest --from`")?;
    let wall = t.elapsed().as_secs_f64();
    anyhow::ensure!(
        out.status.success(),
        "`learnloop ingest --from` failed: {}",
        String::from_utf8_lossy(&out.stderr).trim()
    );
    Ok(wall)
}

pub fn human(b: &PgIngestBench) -> String {
    let n = b.strands as f64;
    let rate = |s: f64, r: f64, cpu: Option<f64>| {
        let cpu = cpu.map_or(String::new(), |c| {
            format!(
                "; learnloop CPU {c:.2} s = {:.0} strands per CPU-second",
                n / c
            )
        });
        format!("{s:.2} s ({r:.0} strands/s{cpu})")
    };
    let server = b
        .read_only_server_cpu_s
        .map_or("-".to_string(), |c| format!("{c:.2} s"));
    kv(&[
        ("strands", b.strands.to_string()),
        ("batch", b.batch.to_string()),
        ("COPY into PostgreSQL", format!("{:.2} s", b.copy_in_s)),
        (
            "cursor read only",
            rate(b.read_only_s, b.read_only_per_s, b.read_only_cpu_s),
        ),
        ("  server backend CPU", server),
        (
            "ingest --from, end to end",
            rate(b.ingest_s, b.ingest_per_s, b.ingest_cpu_s),
        ),
        (
            "  of which the commit",
            format!("{:.2} s", b.ingest_commit_s),
        ),
        (
            "  of which the storing thread",
            b.ingest_store_thread_cpu_s.map_or("-".to_string(), |c| {
                format!("CPU {c:.2} s = {:.0} strands per CPU-second", n / c)
            }),
        ),
        (
            "ingest --from as its own process",
            rate(b.command_s, b.command_per_s, None),
        ),
        (
            "same strands from JSONL",
            rate(b.jsonl_ingest_s, b.jsonl_ingest_per_s, b.jsonl_ingest_cpu_s),
        ),
    ])
}
