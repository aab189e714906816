//! Input files cut into records: a `.json` file holds one record or an array of them; anything
//! else is JSON Lines. Each record keeps where it came from and its text (for the quarantine).

use learnloop_model::strand::{parse_lenient_json, QuarantineReason};
use serde_json::Value;

/// One input record, where it came from, and its parsed value.
#[derive(Debug, Clone, PartialEq)]
pub struct InputRecord {
    /// `file:line` (JSON Lines), `file[i]` (an array), or `file` (one object).
    pub location: String,
    /// The record's text, kept for the quarantine.
    pub text: String,
    /// The parsed record (bare `NaN`/`Infinity`, as Python writes them, read as strings).
    pub value: Result<Value, QuarantineReason>,
}

/// Whether `path` is read as one JSON document (`.json`) rather than as JSON Lines.
pub fn is_json_document(path: &str) -> bool {
    path.to_ascii_lowercase().ends_with(".json")
}

/// The records of a `.json` document: its elements if it is an array, else the document itself.
pub fn records_of_document(source: &str, text: &str) -> Vec<InputRecord> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    match parse_lenient_json(text) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| InputRecord {
                location: format!("{source}[{i}]"),
                text: v.to_string(),
                value: Ok(v),
            })
            .collect(),
        value => vec![InputRecord {
            location: source.to_string(),
            text: text.trim().to_string(),
            value,
        }],
    }
}

/// The record on line `line_no` (1-based) of a JSON Lines file; `None` for a blank line.
pub fn record_of_line(source: &str, line_no: u64, line: &str) -> Option<InputRecord> {
    let text = line.trim();
    (!text.is_empty()).then(|| InputRecord {
        location: format!("{source}:{line_no}"),
        text: text.to_string(),
        value: parse_lenient_json(text),
    })
}

/// The records of a file's text, by its name: [`records_of_document`] for `.json`, else lines.
pub fn split_records(source: &str, text: &str) -> Vec<InputRecord> {
    if is_json_document(source) {
        return records_of_document(source, text);
    }
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| record_of_line(source, i as u64 + 1, line))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_arrays_objects_and_lines() {
        let arr = split_records("a.json", r#"[{"x":1},{"x":2}]"#);
        assert_eq!(arr.len(), 2);
        assert_eq!(arr[1].location, "a.json[1]");
        let one = split_records("b.JSON", "\u{feff}{\"x\": NaN}");
        assert_eq!(one[0].value.as_ref().unwrap()["x"], "NaN");
        let lines = split_records("c.jsonl", "{\"x\":1}\n\n{bad\n");
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].location, "c.jsonl:3");
        assert!(lines[1].value.is_err());
    }
}
