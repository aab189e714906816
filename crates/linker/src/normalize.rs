//! Typed, normalised rows from `ad_strands`: whichever way strands arrived (`ingest`, or a producer
//! writing the table directly), each is validated exactly once, past a rowid watermark.

use crate::Result;
use learnloop_model::strand::{PmAction, PositionClose, QuarantineReason, RawStrand, TypedStrand};
use learnloop_store::strands::{self, ActionText, QuarantineEntry, StrandWriter};
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

/// A strand's validation, computed ahead of writing it (possibly on another thread than the
/// writer's): its typed row, with an action's text columns already rendered, or why it is
/// quarantined.
pub(crate) enum Validated {
    /// A valid action and its rendered text columns.
    Action(PmAction, ActionText),
    /// A valid close.
    Close(PositionClose),
    /// Why the strand cannot be used.
    Refused(QuarantineReason),
}

impl Validated {
    /// Validate `raw` ([`RawStrand::to_typed`]) and render what its row needs.
    pub(crate) fn of(raw: &RawStrand) -> Self {
        match raw.to_typed() {
            Ok(TypedStrand::Action(a)) => {
                let text = ActionText::of(&a);
                Self::Action(a, text)
            }
            Ok(TypedStrand::Close(c)) => Self::Close(c),
            Err(reason) => Self::Refused(reason),
        }
    }
}

/// Validate one stored strand and write its typed row, or quarantine it with `raw_text()` (only
/// rendered for a strand that fails).
pub(crate) fn normalize_one(
    writer: &mut StrandWriter<'_>,
    raw: &RawStrand,
    raw_text: impl FnOnce() -> String,
    ingested_at: &str,
    source: Option<&str>,
    report: &mut NormalizeReport,
) -> Result<()> {
    write_typed(
        writer,
        &raw.id,
        &Validated::of(raw),
        raw_text,
        ingested_at,
        source,
        report,
    )
}

/// Write a stored strand's validation result: its typed row, or the quarantine with `raw_text()`.
pub(crate) fn write_typed(
    writer: &mut StrandWriter<'_>,
    strand_id: &str,
    validated: &Validated,
    raw_text: impl FnOnce() -> String,
    ingested_at: &str,
    source: Option<&str>,
    report: &mut NormalizeReport,
) -> Result<()> {
    match validated {
        Validated::Action(a, text) => {
            writer.upsert_action(a, text)?;
            report.actions += 1;
        }
        Validated::Close(c) => {
            writer.upsert_close(c)?;
            report.closes += 1;
        }
        Validated::Refused(reason) => quarantine(
            writer.conn(),
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
    let mut writer = StrandWriter::new(conn)?;
    for (rowid, raw) in strands::raw_after(conn, after)? {
        normalize_one(
            &mut writer,
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
