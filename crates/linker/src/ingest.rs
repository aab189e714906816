//! JSON Lines in: each line stored in `ad_strands` (idempotent by strand id) and normalised at once;
//! a line that cannot be used is quarantined with its line number and never stops the batch.

use crate::normalize::{self, normalize_one, write_typed, NormalizeReport, Validated};
use crate::{LinkerError, Result};
use learnloop_model::strand::{QuarantineCode, QuarantineReason, RawStrand};
use learnloop_store::strands::{self, InsertOutcome, StrandWriter};
use learnloop_store::{meta, Connection};

/// What an ingest did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct IngestReport {
    /// Lines read.
    pub lines: u64,
    /// Blank lines skipped.
    pub blank_lines: u64,
    /// New strands stored.
    pub inserted: u64,
    /// Lines whose strand id was already stored with identical fields (re-ingest).
    pub already_present: u64,
    /// Lines reusing a stored strand id with different fields (quarantined, the stored one wins).
    pub id_conflicts: u64,
    /// Strands stored directly in `ad_strands` by a producer and normalised by this call.
    pub caught_up_from_table: u64,
    /// What normalising the new strands did.
    pub normalized: NormalizeReport,
}

/// A line that is not text in its file's encoding. Readers hand it to [`ingest_lines`] as an
/// `io::Error` of kind `InvalidData` wrapping this value: the line is quarantined (its bytes kept,
/// the undecodable ones escaped as `\xNN`) and the rest of the file is ingested.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UndecodableLine {
    /// The line with every undecodable byte written as `\xNN` (or unit as `\uNNNN`).
    pub escaped: String,
    /// What was expected, e.g. "UTF-8".
    pub encoding: &'static str,
}

impl std::fmt::Display for UndecodableLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "the line is not valid {} text", self.encoding)
    }
}

impl std::error::Error for UndecodableLine {}

fn undecodable(e: &std::io::Error) -> Option<&UndecodableLine> {
    e.get_ref()?.downcast_ref::<UndecodableLine>()
}

/// Ingest lines from `source` (a path, or "-" for standard input).
pub fn ingest_lines<I>(
    conn: &Connection,
    lines: I,
    source: &str,
    ingested_at: &str,
) -> Result<IngestReport>
where
    I: IntoIterator<Item = std::io::Result<String>>,
{
    let mut report = begin_ingest(conn, ingested_at)?;
    with_typed_indexes_deferred(conn, || {
        ingest_each_line(conn, lines, source, ingested_at, &mut report)
    })?;
    finish_ingest(conn)?;
    tracing::info!(
        source,
        lines = report.lines,
        inserted = report.inserted,
        already_present = report.already_present,
        quarantined = report.normalized.quarantined_total(),
        "ingested"
    );
    Ok(report)
}

/// Run `load` with the typed tables' secondary indexes deferred when they start empty (a first,
/// bulk load), restored afterwards whatever `load` returned.
pub(crate) fn with_typed_indexes_deferred<T>(
    conn: &Connection,
    load: impl FnOnce() -> Result<T>,
) -> Result<T> {
    let deferred = strands::defer_typed_indexes(conn)?;
    let loaded = load();
    let restored = deferred.restore(conn);
    let value = loaded?;
    restored?;
    Ok(value)
}

fn ingest_each_line<I>(
    conn: &Connection,
    lines: I,
    source: &str,
    ingested_at: &str,
    report: &mut IngestReport,
) -> Result<()>
where
    I: IntoIterator<Item = std::io::Result<String>>,
{
    let mut writer = StrandWriter::new(conn)?;
    for (i, line) in lines.into_iter().enumerate() {
        let line_no = i as u64 + 1;
        let line = match line {
            Ok(line) => line,
            Err(e) => match undecodable(&e) {
                Some(bad) => {
                    report.lines += 1;
                    quarantine_undecodable(conn, bad, source, line_no, ingested_at, report)?;
                    continue;
                }
                None => {
                    return Err(LinkerError::Read {
                        line: line_no,
                        source: e,
                    })
                }
            },
        };
        report.lines += 1;
        let text = line.trim();
        if text.is_empty() {
            report.blank_lines += 1;
            continue;
        }
        ingest_line(&mut writer, text, source, line_no, ingested_at, report)?;
    }
    Ok(())
}

/// One input record already mapped to a strand by an adapter (`learnloop ingest --adapter`), or
/// the reason it could not be.
#[derive(Debug, Clone, PartialEq)]
pub struct AdaptedRecord {
    /// Where the record came from (`file:line`, `file[index]`): the quarantine's id when the
    /// record has no usable strand.
    pub location: String,
    /// The input record's text, kept in the quarantine if it is refused.
    pub text: String,
    /// The strand, or why the record is not one.
    pub strand: std::result::Result<RawStrand, QuarantineReason>,
}

/// Store adapted records exactly as strand lines are stored (idempotent by strand id, normalised
/// at once); a refused record or strand is quarantined with its location, and never stops the batch.
pub fn ingest_adapted<I>(
    conn: &Connection,
    records: I,
    source: &str,
    ingested_at: &str,
) -> Result<IngestReport>
where
    I: IntoIterator<Item = AdaptedRecord>,
{
    let mut report = begin_ingest(conn, ingested_at)?;
    with_typed_indexes_deferred(conn, || {
        let mut writer = StrandWriter::new(conn)?;
        records.into_iter().try_for_each(|record| {
            ingest_record(&mut writer, record, source, ingested_at, &mut report)
        })
    })?;
    finish_ingest(conn)?;
    tracing::info!(
        source,
        records = report.lines,
        inserted = report.inserted,
        quarantined = report.normalized.quarantined_total(),
        "ingested adapted records"
    );
    Ok(report)
}

fn ingest_record(
    writer: &mut StrandWriter<'_>,
    record: AdaptedRecord,
    source: &str,
    ingested_at: &str,
    report: &mut IngestReport,
) -> Result<()> {
    report.lines += 1;
    let location = record.location;
    let located = |r: QuarantineReason| QuarantineReason {
        detail: format!("{location}: {}", r.detail),
        ..r
    };
    match record.strand {
        Ok(raw) => {
            let text = record.text;
            store_strand(
                writer,
                &raw,
                None,
                || text,
                &Origin {
                    source,
                    ingested_at,
                },
                located,
                report,
            )
        }
        Err(reason) => normalize::quarantine(
            writer.conn(),
            &location,
            &located(reason),
            &record.text,
            Some(source),
            ingested_at,
            &mut report.normalized,
        ),
    }
}

/// Normalise what producers wrote directly into `ad_strands` first, so that the watermark set by
/// [`finish_ingest`] covers everything; the report starts with those counts.
pub(crate) fn begin_ingest(conn: &Connection, ingested_at: &str) -> Result<IngestReport> {
    let caught_up = normalize::normalize_new(conn, ingested_at)?;
    Ok(IngestReport {
        caught_up_from_table: caught_up.actions + caught_up.closes + caught_up.quarantined_total(),
        normalized: caught_up,
        ..IngestReport::default()
    })
}

/// Every strand stored by this ingest was normalised as it came: move the watermark past them.
pub(crate) fn finish_ingest(conn: &Connection) -> Result<()> {
    meta::set(
        conn,
        normalize::WATERMARK_KEY,
        &strands::max_rowid(conn)?.to_string(),
    )?;
    Ok(())
}

fn quarantine_undecodable(
    conn: &Connection,
    bad: &UndecodableLine,
    source: &str,
    line_no: u64,
    ingested_at: &str,
    report: &mut IngestReport,
) -> Result<()> {
    let reason = QuarantineReason::new(
        QuarantineCode::BadEncoding,
        format!("{source} line {line_no}: {bad}"),
    );
    normalize::quarantine(
        conn,
        &format!("{source}:{line_no}"),
        &reason,
        &bad.escaped,
        Some(source),
        ingested_at,
        &mut report.normalized,
    )
}

fn ingest_line(
    writer: &mut StrandWriter<'_>,
    text: &str,
    source: &str,
    line_no: u64,
    ingested_at: &str,
    report: &mut IngestReport,
) -> Result<()> {
    let located = |r: QuarantineReason| QuarantineReason {
        detail: format!("{source} line {line_no}: {}", r.detail),
        ..r
    };
    let raw = match RawStrand::from_json_line(text) {
        Ok(raw) => raw,
        Err(reason) => {
            let strand_id = format!("{source}:{line_no}");
            let reason = located(reason);
            return normalize::quarantine(
                writer.conn(),
                &strand_id,
                &reason,
                text,
                Some(source),
                ingested_at,
                &mut report.normalized,
            );
        }
    };
    store_strand(
        writer,
        &raw,
        None,
        || text.to_string(),
        &Origin {
            source,
            ingested_at,
        },
        located,
        report,
    )
}

/// Where a batch of strands comes from: its source (a file, a table) and when it was ingested.
pub(crate) struct Origin<'a> {
    /// The file or table the strands were read from (kept with quarantined input).
    pub source: &'a str,
    /// The ingest's wall-clock time (RFC 3339).
    pub ingested_at: &'a str,
}

/// Store one parsed strand (idempotent by id) and normalise it; a reused id with other fields is
/// quarantined, the stored strand kept. `validated` is [`Validated::of`] the strand when the
/// caller computed it already (on another thread), else it is computed here for a newly stored
/// strand only. `located` prefixes a reason with where the strand came from; `text()` renders the
/// input for the quarantine, only when it is needed.
pub(crate) fn store_strand(
    writer: &mut StrandWriter<'_>,
    raw: &RawStrand,
    validated: Option<&Validated>,
    text: impl FnOnce() -> String,
    origin: &Origin<'_>,
    located: impl Fn(QuarantineReason) -> QuarantineReason,
    report: &mut IngestReport,
) -> Result<()> {
    match writer.insert_raw(raw)? {
        InsertOutcome::Inserted => {
            report.inserted += 1;
            match validated {
                Some(validated) => write_typed(
                    writer,
                    &raw.id,
                    validated,
                    text,
                    origin.ingested_at,
                    Some(origin.source),
                    &mut report.normalized,
                ),
                None => normalize_one(
                    writer,
                    raw,
                    text,
                    origin.ingested_at,
                    Some(origin.source),
                    &mut report.normalized,
                ),
            }
        }
        InsertOutcome::AlreadyPresent => {
            report.already_present += 1;
            Ok(())
        }
        InsertOutcome::Conflict => {
            let reason = located(QuarantineReason::new(
                QuarantineCode::DuplicateIdConflict,
                format!("strand id {:?} is already stored with different fields; the stored strand is kept", raw.id),
            ));
            let seen_before = report.normalized.already_quarantined;
            normalize::quarantine(
                writer.conn(),
                &raw.id,
                &reason,
                &text(),
                Some(origin.source),
                origin.ingested_at,
                &mut report.normalized,
            )?;
            // A conflict read again (a file re-ingested, PostgreSQL's look-back window) was
            // counted when it was first quarantined.
            if report.normalized.already_quarantined == seen_before {
                report.id_conflicts += 1;
            }
            Ok(())
        }
    }
}
