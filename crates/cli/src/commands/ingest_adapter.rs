//! `ingest --adapter ADAPTER.json PATH…`: other bots' decision and outcome records, mapped to
//! strands by an adapter (crates/adapters, docs/adapters.md). The whole call is one transaction:
//! bins learned from this batch are frozen together with the strands binned by them.

use super::Outcome;
use crate::context::{load_config, open_store, wall_clock_now};
use crate::errors::usage;
use crate::lines::DecodedLines;
use crate::output::{emit, kv};
use crate::Cli;
use anyhow::Context;
use learnloop_adapters::{bin_set, is_json_document, record_of_line, records_of_document};
use learnloop_adapters::{Adapter, BinsText, InputRecord, NewBins};
use learnloop_linker::{ingest_adapted, AdaptedRecord, IngestReport, UndecodableLine};
use learnloop_model::strand::{QuarantineCode, QuarantineReason, KIND_ACTION};
use learnloop_store::adapter_bins::{self, FrozenBins};
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet};
use std::io::BufReader;
use std::path::{Path, PathBuf};

/// A file's name and what ingesting it did.
type FileReport = (String, IngestReport);

#[derive(Debug, Serialize)]
struct AdapterIngestReport {
    adapter: String,
    /// Bins frozen by this call (dimensions seen for the first time).
    frozen_bins: Vec<FrozenBins>,
    /// Adapter dimensions missing from the configured dimension list (not aggregated).
    dims_not_configured: Vec<String>,
    files: Vec<FileReport>,
}

pub fn execute(
    cli: &Cli,
    adapter_path: &Path,
    paths: &[PathBuf],
    strict: bool,
) -> anyhow::Result<Outcome> {
    let text = std::fs::read_to_string(adapter_path)
        .with_context(|| format!("reading adapter {}", adapter_path.display()))?;
    let adapter =
        Adapter::from_json(&text).map_err(|e| usage(format!("{}: {e}", adapter_path.display())))?;
    let configured = load_config(cli)?.dims;
    let dims_not_configured: Vec<String> = adapter
        .dims()
        .filter(|d| configured.index_of(d).is_none())
        .map(str::to_string)
        .collect();
    if !dims_not_configured.is_empty() {
        tracing::warn!(dims = ?dims_not_configured, "adapter dimensions missing from the configured `dims` are stored but not aggregated (see --config)");
    }
    let files = input_files(paths)?;
    let inputs = files
        .iter()
        .map(|f| Ok((f.display().to_string(), read_records(f)?)))
        .collect::<anyhow::Result<Vec<_>>>()?;

    let mut conn = open_store(cli)?;
    let (frozen_bins, reports) =
        learnloop_store::load_transaction(&mut conn, |tx| store_records(tx, &adapter, inputs))?;

    let quarantined: u64 = reports
        .iter()
        .map(|(_, r)| r.normalized.quarantined_total())
        .sum();
    let report = AdapterIngestReport {
        adapter: adapter.name.clone(),
        frozen_bins,
        dims_not_configured,
        files: reports,
    };
    emit(cli.json, &report, human)?;
    Ok(super::ingest::strict_outcome(cli, strict, quarantined))
}

/// Freeze the bins this batch learns and store its records with them, in the caller's
/// transaction: the frozen bins and the reports per file.
fn store_records(
    tx: &learnloop_store::Transaction,
    adapter: &Adapter,
    inputs: Vec<(String, Vec<InputRecord>)>,
) -> anyhow::Result<(Vec<FrozenBins>, Vec<FileReport>)> {
    let now = wall_clock_now().to_rfc3339_millis();
    let stored = adapter_bins::all(tx)?;
    refuse_changed_method(adapter, &stored)?;
    let mut edges: BTreeMap<String, Vec<f64>> =
        stored.into_iter().map(|(dim, b)| (dim, b.edges)).collect();
    let values = inputs
        .iter()
        .flat_map(|(_, records)| records.iter().filter_map(|r| r.value.as_ref().ok()));
    let new_bins = adapter
        .bins_to_freeze(&edges, values)
        .map_err(|e| usage(e.to_string()))?;
    let mut frozen_bins = Vec::new();
    for NewBins {
        dim,
        method,
        edges: new_edges,
        n_values,
    } in new_bins
    {
        let row = FrozenBins {
            dim: dim.clone(),
            adapter: adapter.name.clone(),
            method: method.to_string(),
            edges: new_edges.clone(),
            n_values,
            frozen_at: now.clone(),
        };
        adapter_bins::freeze(tx, &row)?;
        edges.insert(dim, new_edges);
        frozen_bins.push(row);
    }
    let bins = bin_set(&edges)?;
    let mut reports = Vec::new();
    let mut binned_modules = BTreeSet::new();
    for (source, records) in inputs {
        let adapted = records.into_iter().map(|r| {
            let strand = r.value.and_then(|v| adapter.to_strand(&v, &bins));
            if let Ok(s) = &strand {
                if s.kind == KIND_ACTION && !binned_modules.contains(&s.module) {
                    binned_modules.insert(s.module.clone());
                }
            }
            AdaptedRecord {
                strand,
                location: r.location,
                text: r.text,
            }
        });
        let report = ingest_adapted(tx, adapted, &source, &now)
            .with_context(|| format!("ingesting {source} with adapter {}", adapter.name))?;
        reports.push((source, report));
    }
    let binned_dims = adapter.binned_dims().map(|(dim, _)| dim);
    adapter_bins::record_binned_modules(tx, binned_dims, &binned_modules)?;
    Ok((frozen_bins, reports))
}

fn human(r: &AdapterIngestReport) -> String {
    let total = total_report(r.files.iter().map(|(_, report)| report));
    let mut out = format!(
        "ingested {} file(s) with adapter {}\n",
        r.files.len(),
        r.adapter
    );
    out.push_str(&super::ingest::human_ingest(&total));
    for (source, report) in &r.files {
        let quarantined = report.normalized.quarantined_total();
        if quarantined > 0 {
            out.push_str(&kv(&[(
                "quarantined in",
                format!("{source}: {quarantined}"),
            )]));
        }
    }
    let mut lines = Vec::new();
    for b in &r.frozen_bins {
        let how = match b.method.as_str() {
            "quantiles" => format!("quantiles of {} values", b.n_values),
            _ => "fixed edges".to_string(),
        };
        let edges: Vec<String> = b
            .edges
            .iter()
            .map(|e| learnloop_overrides::edge_text(*e))
            .collect();
        lines.push((
            "froze bins",
            format!("{} ({how}): {}", b.dim, edges.join(" | ")),
        ));
    }
    if !r.dims_not_configured.is_empty() {
        lines.push((
            "not in config dims",
            format!(
                "{} (stored, not aggregated; add them to `dims` in --config)",
                r.dims_not_configured.join(", ")
            ),
        ));
    }
    out.push_str(&kv(&lines));
    out
}

/// The reports of several files as one (counts added).
fn total_report<'a>(reports: impl Iterator<Item = &'a IngestReport>) -> IngestReport {
    let mut total = IngestReport::default();
    for r in reports {
        total.lines += r.lines;
        total.blank_lines += r.blank_lines;
        total.inserted += r.inserted;
        total.already_present += r.already_present;
        total.id_conflicts += r.id_conflicts;
        total.caught_up_from_table += r.caught_up_from_table;
        total.normalized.actions += r.normalized.actions;
        total.normalized.closes += r.normalized.closes;
        total.normalized.already_quarantined += r.normalized.already_quarantined;
        for (code, n) in &r.normalized.quarantined {
            *total
                .normalized
                .quarantined
                .entry(code.clone())
                .or_default() += n;
        }
    }
    total
}

/// A dimension frozen with fixed edges that the adapter now wants cut into quantiles, or the
/// reverse, would be re-binned: refused like changed edges (a changed number of quantiles cannot
/// be told from the stored edges, which merge tied quantiles, and keeps the stored ones).
fn refuse_changed_method(
    adapter: &Adapter,
    stored: &BTreeMap<String, FrozenBins>,
) -> anyhow::Result<()> {
    for (dim, declared) in adapter.binned_dims() {
        let Some(frozen) = stored.get(dim) else {
            continue;
        };
        let declared_method = match declared {
            BinsText::Edges(_) => "fixed",
            BinsText::Quantiles(_) => "quantiles",
        };
        if declared_method != frozen.method {
            return Err(usage(format!(
                "bins of {dim} were frozen as {} edges {:?} ({}), the adapter now declares {declared_method} bins: stored labels would change meaning; name a new dimension for new bins",
                frozen.method, frozen.edges, frozen.frozen_at
            )));
        }
    }
    Ok(())
}

/// The files named, with directories walked recursively (their `.json`, `.jsonl` and `.ndjson`
/// files, any case, in path order); `-` is standard input read as JSON Lines.
fn input_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            let mut found = Vec::new();
            walk(path, &mut found).with_context(|| format!("listing {}", path.display()))?;
            found.sort();
            out.extend(found);
        } else {
            out.push(path.clone());
        }
    }
    Ok(out)
}

/// A symlinked directory is not walked (a link back to an ancestor would loop forever); a
/// symlinked file is read.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            walk(&path, out)?;
        } else if path.is_file()
            && path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                ["json", "jsonl", "ndjson"].contains(&e.to_ascii_lowercase().as_str())
            })
        {
            out.push(path);
        }
    }
    Ok(())
}

/// A file's records. A `.json` file is one document; any other file (and `-`) is read line by
/// line, an undecodable line quarantined on its own.
fn read_records(path: &Path) -> anyhow::Result<Vec<InputRecord>> {
    let source = super::ingest::record_source(path);
    if is_json_document(&source) {
        let bytes = std::fs::read(path).with_context(|| format!("reading {source}"))?;
        return Ok(match String::from_utf8(bytes) {
            Ok(text) => records_of_document(&source, &text),
            Err(e) => vec![InputRecord {
                location: source.clone(),
                text: String::from_utf8_lossy(e.as_bytes()).into_owned(),
                value: Err(QuarantineReason::new(
                    QuarantineCode::BadEncoding,
                    "the file is not valid UTF-8 text",
                )),
            }],
        });
    }
    let reader: Box<dyn std::io::Read> = if path == Path::new("-") {
        Box::new(std::io::stdin().lock())
    } else {
        Box::new(std::fs::File::open(path).with_context(|| format!("opening {source}"))?)
    };
    let mut records = Vec::new();
    for (i, line) in DecodedLines::new(BufReader::with_capacity(1 << 20, reader)).enumerate() {
        let line_no = i as u64 + 1;
        match line {
            Ok(text) => records.extend(record_of_line(&source, line_no, &text)),
            Err(e) => match e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<UndecodableLine>())
            {
                Some(bad) => records.push(InputRecord {
                    location: format!("{source}:{line_no}"),
                    text: bad.escaped.clone(),
                    value: Err(QuarantineReason::new(
                        QuarantineCode::BadEncoding,
                        bad.to_string(),
                    )),
                }),
                None => return Err(e).with_context(|| format!("reading {source} line {line_no}")),
            },
        }
    }
    Ok(records)
}
