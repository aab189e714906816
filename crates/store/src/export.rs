//! Generic table export (CSV or JSON) and a canonical dump used to compare databases.

use crate::{schema, Result, StoreError};
use rusqlite::types::ValueRef;
use rusqlite::Connection;
use std::io::Write;

/// Output format of an export.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Comma-separated values with a header row.
    Csv,
    /// A JSON array of row objects.
    Json,
}

/// `Ok` when `table` is a table of the store; else the error lists the tables there are.
pub fn check_table(conn: &Connection, table: &str) -> Result<()> {
    let tables = schema::user_tables(conn)?;
    if tables.iter().any(|t| t == table) {
        Ok(())
    } else {
        Err(StoreError::UnknownTable(
            table.to_string(),
            tables.join(", "),
        ))
    }
}

fn columns(conn: &Connection, table: &str) -> Result<Vec<String>> {
    let stmt = conn.prepare(&format!("SELECT * FROM \"{table}\" LIMIT 0"))?;
    Ok(stmt
        .column_names()
        .into_iter()
        .map(str::to_string)
        .collect())
}

/// Every row of `table`, ordered by all its columns so that the output is deterministic.
pub fn write_table(
    conn: &Connection,
    table: &str,
    format: Format,
    out: &mut dyn Write,
) -> Result<u64> {
    check_table(conn, table)?;
    let cols = columns(conn, table)?;
    let order = (1..=cols.len())
        .map(|i| i.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let mut stmt = conn.prepare(&format!("SELECT * FROM \"{table}\" ORDER BY {order}"))?;
    let mut rows = stmt.query([])?;
    let io = StoreError::Io;
    let mut n = 0u64;
    match format {
        Format::Csv => writeln!(
            out,
            "{}",
            cols.iter()
                .map(|c| csv_field(c))
                .collect::<Vec<_>>()
                .join(",")
        )
        .map_err(io)?,
        Format::Json => write!(out, "[").map_err(io)?,
    }
    while let Some(row) = rows.next()? {
        match format {
            Format::Csv => {
                let fields = (0..cols.len())
                    .map(|i| Ok(csv_cell(row.get_ref(i)?)))
                    .collect::<rusqlite::Result<Vec<_>>>()?;
                writeln!(out, "{}", fields.join(",")).map_err(io)?;
            }
            Format::Json => {
                let mut obj = serde_json::Map::new();
                for (i, c) in cols.iter().enumerate() {
                    obj.insert(c.clone(), json_of(row.get_ref(i)?));
                }
                let sep = if n == 0 { "\n" } else { ",\n" };
                write!(out, "{sep}{}", serde_json::Value::Object(obj)).map_err(io)?;
            }
        }
        n += 1;
    }
    if format == Format::Json {
        writeln!(out, "\n]").map_err(io)?;
    }
    Ok(n)
}

fn text_of(v: ValueRef<'_>) -> String {
    match v {
        ValueRef::Null => String::new(),
        ValueRef::Integer(i) => i.to_string(),
        // `{:?}` is Rust's shortest round-trip form: byte-identical dumps mean bit-identical values.
        ValueRef::Real(f) => format!("{f:?}"),
        ValueRef::Text(t) => String::from_utf8_lossy(t).into_owned(),
        ValueRef::Blob(b) => b.iter().map(|x| format!("{x:02x}")).collect(),
    }
}

fn json_of(v: ValueRef<'_>) -> serde_json::Value {
    match v {
        ValueRef::Null => serde_json::Value::Null,
        ValueRef::Integer(i) => i.into(),
        ValueRef::Real(f) => {
            serde_json::Number::from_f64(f).map_or(serde_json::Value::Null, Into::into)
        }
        other => text_of(other).into(),
    }
}

/// A cell for a spreadsheet: text that a spreadsheet would run as a formula (starting with
/// `= + - @`, or a tab or carriage return) gets a leading `'` (OWASP's neutralisation); numbers
/// are written as they are, negative ones included.
fn csv_cell(v: ValueRef<'_>) -> String {
    let text = text_of(v);
    let is_formula =
        matches!(v, ValueRef::Text(_)) && text.starts_with(['=', '+', '-', '@', '\t', '\r']);
    if is_formula {
        csv_field(&format!("'{text}"))
    } else {
        csv_field(&text)
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// Canonical CSV dump of the given tables, for byte-for-byte comparisons of derived state.
pub fn dump_tables(conn: &Connection, tables: &[&str]) -> Result<String> {
    let mut buf = Vec::new();
    for t in tables {
        writeln!(buf, "== {t}").expect("writing to a Vec cannot fail");
        write_table(conn, t, Format::Csv, &mut buf)?;
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}
