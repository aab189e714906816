//! `learnloop report` (SPEC §11.4): what the loop learned tonight, for a trader who has a minute.
//!
//! [`gather`] reads everything the page needs from the store (and, when given, a replay's output
//! directory) into [`ReportData`]; [`render_html`] and [`render_markdown`] turn it into one
//! self-contained HTML page (inline CSS and SVG, no network, no external assets) and a Markdown
//! twin for chat and e-mail. Nothing here decides anything: the figures are the stages'.
#![warn(missing_docs)]

mod data;
mod html;
mod line_chart;
mod markdown;
mod words;

pub use data::{
    gather, ConfigChange, Coverage, LessonView, ReplayFigures, ReportData, ReportError,
};
pub use html::render_html;
pub use markdown::render_markdown;

use std::path::Path;

/// Write `report.html` and `report.md` into `out_dir` (created if missing); returns their paths.
pub fn write_report(
    out_dir: &Path,
    data: &ReportData,
) -> Result<[std::path::PathBuf; 2], ReportError> {
    std::fs::create_dir_all(out_dir)?;
    let html = out_dir.join("report.html");
    let md = out_dir.join("report.md");
    std::fs::write(&html, render_html(data))?;
    std::fs::write(&md, render_markdown(data))?;
    Ok([html, md])
}
