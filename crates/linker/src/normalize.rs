//! Typed, normalised rows from `ad_strands`: whichever way strands arrived (`ingest`, or a producer
//! writing the table directly), each is validated exactly once, past a rowid watermark.

use crate::Result;
use learnloop_model::strand::{QuarantineReason, RawStrand, TypedStrand};
use learnloop_store::strands::{self, QuarantineEntry};
use learnloop_store::{meta, Connection};
use std::collections::BTreeMap;

/// `meta` key of the highest `ad_strands` rowid normalised so far.
pub const WATERMARK_KEY: &str = "normalized_rowid";

/// What normalising did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct NormalizeReport {
    /// Actions normalised.
    pub actions: u64,
    /// Closes normalised.
    pub closes: u64,
    /// Strands quarantined by this call, by reason code.
    pub quarantined: BTreeMap<String, u64>,
    /// Bad lines seen again (a re-ingest): already in `quarantine` with the same reason and raw
    /// text, so nothing new was quarantined; counted apart so that `--strict` and the report
    /// speak of this call's input only once.
    pub already_quarantined: u64,
}

impl NormalizeReport {
    /// Strands quarantined by this call, all reasons.
    pub fn quarantined_total(&self) -> u64 {
        self.quarantined.values().sum()
    }
}

/// Validate one stored strand and write its typed row, or quarantine it with `raw_text()` (only
/// rendered for a strand that fails).
pub(crate) fn normalize_one(
    conn: &Connection,
    raw: &RawStrand,
    raw_text: impl FnOnce() -> String,
    ingested_at: &str,
    source: Option<&str>,
    report: &mut NormalizeReport,
) -> Result<()> {
    write_typed(
        conn,
        &raw.id,
        &raw.to_typed(),
        raw_text,
        ingested_at,
        source,
        report,
    )
}

/// Write a stored strand's validation result (`typed`, from [`RawStrand::to_typed`], possibly
/// computed on another thread): its typed row, or the quarantine with `raw_text()`.
pub(crate) fn write_typed(
    conn: &Connection,
    strand_id: &str,
    typed: &std::result::Result<TypedStrand, QuarantineReason>,
    raw_text: impl FnOnce() -> String,
    ingested_at: &str,
    source: Option<&str>,
    report: &mut NormalizeReport,
) -> Result<()> {
    match typed {
        Ok(TypedStrand::Action(a)) => {
            strands::upsert_action(conn, a)?;
            report.actions += 1;
        }
        Ok(TypedStrand::Close(c)) => {
            strands::upsert_close(conn, c)?;
            report.closes += 1;
        }
        Err(reason) => quarantine(
            conn,
            strand_id,
            reason,
            &raw_text(),
            source,
            ingested_at,
            report,
        )?,
    }
    Ok(())
}

pub(crate) fn quarantine(
    conn: &Connection,
    strand_id: &str,
    reason: &QuarantineReason,
    raw_text: &str,
    source: Option<&str>,
    ingested_at: &str,
    report: &mut NormalizeReport,
) -> Result<()> {
    tracing::debug!(strand_id, %reason, "quarantined");
    let new = strands::quarantine(
        conn,
        &QuarantineEntry {
            strand_id,
            reason,
            raw: raw_text,
            source,
            ingested_at,
        },
    )?;
    if !new {
        report.already_quarantined += 1;
        return Ok(());
    }
    *report
        .quarantined
        .entry(reason.code.as_str().to_string())
        .or_default() += 1;
    Ok(())
}

/// Normalise every strand stored since the watermark and advance it.
pub fn normalize_new(conn: &Connection, ingested_at: &str) -> Result<NormalizeReport> {
    let after = meta::get_i64(conn, WATERMARK_KEY)?.unwrap_or(0);
    let mut report = NormalizeReport::default();
    let mut last = after;
    for (rowid, raw) in strands::raw_after(conn, after)? {
        normalize_one(
            conn,
            &raw,
            || serde_json::to_string(&raw).unwrap_or_default(),
            ingested_at,
            Some("ad_strands"),
            &mut report,
        )?;
        last = rowid;
    }
    meta::set(conn, WATERMARK_KEY, &last.to_string())?;
    Ok(report)
}
