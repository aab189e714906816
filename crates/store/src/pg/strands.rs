//! `ad_strands` read from PostgreSQL: one server-side cursor over a read-only snapshot, in
//! (created_at, id) order, fetched in batches past a watermark.

use super::{query_err, table_columns, Client, PgError, PgResult, TableName};
use chrono::{DateTime, SecondsFormat, Utc};
use learnloop_model::strand::{RawStrand, StrandColumns};
use postgres::types::ToSql;
use postgres::IsolationLevel;
use std::fmt::Write as _;

/// The last (created_at, id) read from a table: rows after it are new.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Watermark {
    /// `created_at` of the last row read.
    pub created_at: DateTime<Utc>,
    /// Its id (ties broken bytewise).
    pub id: String,
}

impl Watermark {
    /// JSON, as kept in the SQLite `meta` table.
    pub fn to_text(&self) -> String {
        serde_json::json!({
            "created_at": self.created_at.to_rfc3339_opts(SecondsFormat::Micros, true),
            "id": self.id,
        })
        .to_string()
    }

    /// Read the JSON kept in `meta` (`None` when unreadable).
    pub fn parse(text: &str) -> Option<Self> {
        let v: serde_json::Value = serde_json::from_str(text).ok()?;
        let created_at = DateTime::parse_from_rfc3339(v.get("created_at")?.as_str()?).ok()?;
        Some(Self {
            created_at: created_at.with_timezone(&Utc),
            id: v.get("id")?.as_str()?.to_string(),
        })
    }
}

/// Where a read starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadFrom {
    /// Every row of the table.
    Start,
    /// Rows strictly after the watermark in (created_at, id) order.
    After(Watermark),
    /// Rows with created_at at or after this time (a look-back window before the watermark).
    Since(DateTime<Utc>),
}

/// One fetched batch, in (created_at, id) order.
#[derive(Debug)]
pub struct StrandBatch {
    /// The rows, validated later like JSON lines.
    pub rows: Vec<StrandColumns>,
    /// The greatest (created_at, id) of the batch not later than the server's clock at the start
    /// of the read: a row stamped in the future (a producer's broken clock) is read and stored but
    /// cannot move the watermark past the rows still to come. Rows without created_at have none.
    pub last: Option<Watermark>,
}

const TEXT_COLUMNS: [&str; 7] = [
    "id",
    "module",
    "kind",
    "symbol",
    "timeframe",
    "position_id",
    "trade_id",
];
const JSON_COLUMNS: [&str; 2] = ["content", "regime_context"];
const REQUIRED: [&str; 4] = ["id", "kind", "created_at", "content"];

/// The SELECTs reading `table` from `from`, adapted to its column types: text and JSON columns are
/// read as text (so uuid ids or json/jsonb content both work), absent optional columns as NULL.
///
/// Each condition on `created_at` is one the `(created_at, (id COLLATE "C"))` index can serve as a
/// range, so the server streams the rows in index order as they are fetched instead of sorting
/// (and rendering) the whole window before the first fetch returns. Rows without `created_at`
/// sort last; past a watermark they are read by a second SELECT (`undated`) rather than by an
/// `OR created_at IS NULL` that would turn the range into a scan of the whole index.
struct ReadSql {
    /// The rows from `from`, in (created_at, id) order; `$1` (and `$2`) are the watermark's.
    dated: String,
    /// The rows without created_at, in id order, when `dated` leaves them out.
    undated: Option<String>,
}

fn read_sql(client: &mut Client, table: &TableName, from: &ReadFrom) -> PgResult<ReadSql> {
    let columns = table_columns(client, table)?.ok_or_else(|| PgError::Table {
        table: table.display.clone(),
        why: "does not exist, or this user cannot see it (it needs SELECT on the table)".into(),
    })?;
    if let Some(absent) = REQUIRED.iter().find(|c| !columns.contains_key(**c)) {
        return Err(PgError::Table {
            table: table.display.clone(),
            why: format!(
                "has no column {absent}: expected the ad_strands columns of SPEC §1 (id, module, kind, symbol, timeframe, position_id, trade_id, created_at, content, regime_context)"
            ),
        });
    }
    let created_at = match columns["created_at"].as_str() {
        "timestamp with time zone" => "\"created_at\"",
        "timestamp without time zone" => "(\"created_at\" AT TIME ZONE 'UTC')",
        other => {
            return Err(PgError::Table {
                table: table.display.clone(),
                why: format!(
                    "created_at is {other}: expected timestamptz (or timestamp, read as UTC)"
                ),
            })
        }
    };
    let mut select = String::from("SELECT ");
    for c in TEXT_COLUMNS.iter().chain(&JSON_COLUMNS) {
        if columns.contains_key(*c) {
            let _ = write!(select, "\"{c}\"::text, ");
        } else {
            select.push_str("NULL::text, ");
        }
    }
    // A timestamp the client cannot decode (±infinity, or past chrono's year 262142) comes as text
    // in an eleventh column instead, so that the row is quarantined like a bad `created_at` of a
    // JSON line rather than failing the whole read (and, sorting last, every later one).
    let readable = format!("isfinite({created_at}) AND {created_at} < '262000-01-01 00:00:00+00'");
    let _ = write!(
        select,
        "CASE WHEN {readable} THEN {created_at} END, \
         CASE WHEN NOT ({readable}) THEN {created_at}::text END FROM {} ",
        table.quoted
    );
    let id = "\"id\"::text COLLATE \"C\"";
    let order = format!("ORDER BY {created_at} NULLS LAST, {id}");
    let dated_where = match from {
        ReadFrom::Start => String::new(),
        ReadFrom::After(_) => format!("WHERE ({created_at}, {id}) > ($1, $2) "),
        ReadFrom::Since(_) => format!("WHERE {created_at} >= $1 "),
    };
    Ok(ReadSql {
        dated: format!("{select}{dated_where}{order}"),
        undated: (*from != ReadFrom::Start)
            .then(|| format!("{select}WHERE {created_at} IS NULL {order}")),
    })
}

/// The server-side cursor a read fetches from (one at a time, inside the read's transaction).
const CURSOR: &str = "learnloop_strands";

/// Read `table` from `from` in batches of `batch` rows, handing each batch to `each` before the
/// next is fetched. One read-only REPEATABLE READ transaction: the batches come from one snapshot,
/// so a row committed meanwhile is read whole by the next call or not at all. The rows are read
/// through a declared cursor, which the server plans to return its first rows fast (an index
/// scan) rather than to finish the whole read soonest (a sort). Returns the rows read.
pub fn read_strands<E: From<PgError>>(
    client: &mut Client,
    table: &TableName,
    from: &ReadFrom,
    batch: usize,
    mut each: impl FnMut(StrandBatch) -> Result<(), E>,
) -> Result<u64, E> {
    let sql = read_sql(client, table, from)?;
    let reading = || query_err(format!("reading {}", table.display));
    let mut tx = client
        .build_transaction()
        .isolation_level(IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .map_err(reading())?;
    let server_now: DateTime<Utc> = tx.query_one("SELECT now()", &[]).map_err(reading())?.get(0);
    let watermark: Vec<&(dyn ToSql + Sync)> = match from {
        ReadFrom::Start => vec![],
        ReadFrom::After(w) => vec![&w.created_at, &w.id],
        ReadFrom::Since(t) => vec![t],
    };
    let mut total = 0u64;
    let queries =
        std::iter::once((&sql.dated, watermark)).chain(sql.undated.as_ref().map(|u| (u, vec![])));
    for (query, params) in queries {
        tx.execute(
            &format!("DECLARE {CURSOR} NO SCROLL CURSOR FOR {query}"),
            &params,
        )
        .map_err(reading())?;
        let fetch = tx
            .prepare(&format!(
                "FETCH FORWARD {} FROM {CURSOR}",
                batch.clamp(1, i32::MAX as usize)
            ))
            .map_err(reading())?;
        loop {
            let rows = tx.query(&fetch, &[]).map_err(reading())?;
            if rows.is_empty() {
                break;
            }
            total += rows.len() as u64;
            each(decode_batch(&rows, server_now).map_err(reading())?)?;
        }
        tx.batch_execute(&format!("CLOSE {CURSOR}"))
            .map_err(reading())?;
    }
    tx.commit().map_err(reading())?;
    Ok(total)
}

/// The fetched rows as columns, with the batch's watermark (see [`StrandBatch::last`]).
fn decode_batch(
    rows: &[postgres::Row],
    server_now: DateTime<Utc>,
) -> Result<StrandBatch, postgres::Error> {
    let mut last = None;
    let columns = rows
        .iter()
        .map(|r| {
            let created_at: Option<DateTime<Utc>> = r.try_get(9)?;
            let undecodable: Option<String> = r.try_get(10)?;
            let id: Option<String> = r.try_get(0)?;
            if let (Some(created_at), Some(id)) = (created_at.filter(|t| *t <= server_now), &id) {
                last = Some(Watermark {
                    created_at,
                    id: id.clone(),
                });
            }
            Ok(StrandColumns {
                id,
                module: r.try_get(1)?,
                kind: r.try_get(2)?,
                symbol: r.try_get(3)?,
                timeframe: r.try_get(4)?,
                position_id: r.try_get(5)?,
                trade_id: r.try_get(6)?,
                content: r.try_get(7)?,
                regime_context: r.try_get(8)?,
                created_at: created_at
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true))
                    .or(undecodable),
            })
        })
        .collect::<Result<Vec<_>, postgres::Error>>()?;
    Ok(StrandBatch {
        rows: columns,
        last,
    })
}

/// Create `table` with the SPEC §1 columns (content and regime_context as jsonb, created_at as
/// timestamptz) and the (created_at, id) index the reads use, unless it exists. For tests,
/// benchmarks and new desks; an existing desk table is used as it is.
pub fn create_strands_table(client: &mut Client, table: &TableName) -> PgResult<()> {
    let sql = format!(
        "CREATE TABLE IF NOT EXISTS {t} (
             id text PRIMARY KEY,
             module text NOT NULL DEFAULT 'pm',
             kind text,
             symbol text,
             timeframe text,
             position_id text,
             trade_id text,
             created_at timestamptz,
             content jsonb,
             regime_context jsonb
         );
         CREATE INDEX IF NOT EXISTS \"{b}_created_at_id\" ON {t} (created_at, (id COLLATE \"C\"));",
        t = table.quoted,
        b = table.base
    );
    client
        .batch_execute(&sql)
        .map_err(query_err(format!("creating {}", table.display)))
}

/// Load strands into `table` with one COPY (tests and benchmarks).
pub fn copy_strands_in(
    client: &mut Client,
    table: &TableName,
    strands: &[RawStrand],
) -> PgResult<u64> {
    use std::io::Write;
    let copying = || query_err(format!("copying strands into {}", table.display));
    let mut writer = client
        .copy_in(&format!(
            "COPY {} (id, module, kind, symbol, timeframe, position_id, trade_id, created_at, content, regime_context) FROM STDIN",
            table.quoted
        ))
        .map_err(copying())?;
    let mut line = String::new();
    for s in strands {
        line.clear();
        let fields = [
            Some(s.id.as_str()),
            Some(s.module.as_str()),
            Some(s.kind.as_str()),
            s.symbol.as_deref(),
            s.timeframe.as_deref(),
            s.position_id.as_deref(),
            s.trade_id.as_deref(),
            Some(s.created_at.as_str()),
            Some(s.content.as_str()),
            s.regime_context.as_deref(),
        ];
        for (i, field) in fields.iter().enumerate() {
            if i > 0 {
                line.push('\t');
            }
            match field {
                None => line.push_str("\\N"),
                Some(text) => push_copy_escaped(&mut line, text),
            }
        }
        line.push('\n');
        writer
            .write_all(line.as_bytes())
            .map_err(|e| PgError::Table {
                table: table.display.clone(),
                why: format!("COPY write failed: {e}"),
            })?;
    }
    writer.finish().map_err(copying())
}

/// COPY text format: backslash, tab, newline and carriage return escaped.
fn push_copy_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watermark_round_trips_through_text() {
        let w = Watermark {
            created_at: DateTime::parse_from_rfc3339("2026-03-01T12:00:00.123456Z")
                .unwrap()
                .with_timezone(&Utc),
            id: "s-1".into(),
        };
        assert_eq!(Watermark::parse(&w.to_text()), Some(w));
        assert_eq!(Watermark::parse("garbage"), None);
    }

    #[test]
    fn copy_text_is_escaped() {
        let mut out = String::new();
        push_copy_escaped(&mut out, "a\tb\\c\nd");
        assert_eq!(out, "a\\tb\\\\c\\nd");
    }
}
