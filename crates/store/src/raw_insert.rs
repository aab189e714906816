//! The stats writer's multi-row INSERT (and its scope-text INSERT), bound through SQLite's C API.
//! rusqlite binds a text as `SQLITE_TRANSIENT` (SQLite copies it into memory of its own, freed at
//! the next bind) and goes through its `ToSql` conversion for every value; an exhaustive nightly
//! write binds ~8 M values, and a first night ~80k scope texts. Here a text is bound
//! `SQLITE_STATIC` (SQLite reads it in place), which is sound
//! because the only way to step the statement, [`RawInsert::execute`], binds every parameter of
//! the row it steps from memory borrowed for the whole call (see its SAFETY note).

use crate::Result;
use rusqlite::{ffi, Connection};
use std::os::raw::c_int;

/// A prepared INSERT whose parameters are bound and stepped in one call.
pub(crate) struct RawInsert<'c> {
    stmt: *mut ffi::sqlite3_stmt,
    conn: &'c Connection,
    parameters: c_int,
}

/// One parameter value, as [`RawInsert::execute`] binds it.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Value<'t> {
    Null,
    Integer(i64),
    Real(f64),
    Text(&'t str),
}

impl<'c> RawInsert<'c> {
    /// Prepare `sql` (kept prepared for many executions).
    pub(crate) fn prepare(conn: &'c Connection, sql: &str) -> Result<Self> {
        let mut stmt = std::ptr::null_mut();
        let len = c_int::try_from(sql.len()).map_err(|_| too_big())?;
        // SAFETY: the connection handle is valid while `conn` is borrowed (for 'c, which the
        // statement cannot outlive); the SQL pointer and length describe a live `str`; `stmt` is
        // an out-pointer SQLite writes once.
        let rc = unsafe {
            ffi::sqlite3_prepare_v3(
                conn.handle(),
                sql.as_ptr().cast(),
                len,
                ffi::SQLITE_PREPARE_PERSISTENT,
                &mut stmt,
                std::ptr::null_mut(),
            )
        };
        if rc != ffi::SQLITE_OK {
            return Err(error(conn, rc));
        }
        if stmt.is_null() {
            // Only whitespace or comments: nothing to run.
            return Err(rusqlite::Error::SqliteFailure(
                ffi::Error::new(ffi::SQLITE_MISUSE),
                Some("no statement in the SQL".into()),
            )
            .into());
        }
        // SAFETY: `stmt` was just prepared successfully.
        let parameters = unsafe { ffi::sqlite3_bind_parameter_count(stmt) };
        Ok(Self {
            stmt,
            conn,
            parameters,
        })
    }

    /// Bind every parameter with `bind` (in order, through [`Params::push`]), then run the
    /// statement to its end. Binding fewer values than the statement has parameters is an error
    /// (and steps nothing).
    pub(crate) fn execute<'t>(
        &mut self,
        bind: impl FnOnce(&mut Params<'_, 'c, 't>) -> Result<()>,
    ) -> Result<()> {
        let mut params = Params {
            insert: self,
            bound: 0,
            texts: std::marker::PhantomData,
        };
        bind(&mut params)?;
        let bound = params.bound;
        if bound != self.parameters {
            return Err(rusqlite::Error::InvalidParameterCount(
                bound as usize,
                self.parameters as usize,
            )
            .into());
        }
        // SAFETY: `stmt` is a live prepared statement of this connection, used by this thread
        // only (`&mut self`). Every parameter was bound just above, and each text bound
        // `SQLITE_STATIC` is borrowed for 't, which outlives this call, so every text SQLite
        // reads during the step is alive. After the reset SQLite keeps the pointers but reads
        // them only when the statement is stepped again (or its SQL expanded, which nothing here
        // asks for, nor `sqlite3_stmt_explain`), and it is stepped only here, after every parameter
        // is bound anew.
        let step = unsafe { ffi::sqlite3_step(self.stmt) };
        // SAFETY: as above. After a failed step the reset returns the same error; the step's is
        // the one reported.
        let reset = unsafe { ffi::sqlite3_reset(self.stmt) };
        match (step, reset) {
            (ffi::SQLITE_DONE, ffi::SQLITE_OK) => Ok(()),
            (ffi::SQLITE_DONE, rc) | (rc, _) => Err(error(self.conn, rc)),
        }
    }
}

/// The parameters of one [`RawInsert::execute`], bound in order; texts borrowed for 't.
pub(crate) struct Params<'s, 'c, 't> {
    insert: &'s mut RawInsert<'c>,
    bound: c_int,
    texts: std::marker::PhantomData<&'t str>,
}

impl<'t> Params<'_, '_, 't> {
    /// Bind the next parameter.
    #[inline]
    pub(crate) fn push(&mut self, value: Value<'t>) -> Result<()> {
        let i = self.bound + 1;
        let stmt = self.insert.stmt;
        // SAFETY: `stmt` is live; an index past the parameter count is refused by SQLite
        // (SQLITE_RANGE). A text is bound `SQLITE_STATIC`; see `execute` for why it outlives
        // every read.
        let rc = unsafe {
            match value {
                Value::Null => ffi::sqlite3_bind_null(stmt, i),
                Value::Integer(v) => ffi::sqlite3_bind_int64(stmt, i, v),
                Value::Real(v) => ffi::sqlite3_bind_double(stmt, i, v),
                Value::Text(t) => ffi::sqlite3_bind_text64(
                    stmt,
                    i,
                    // An empty `str` may point anywhere (even dangle): give SQLite a real one.
                    if t.is_empty() {
                        c"".as_ptr()
                    } else {
                        t.as_ptr().cast()
                    },
                    t.len() as u64,
                    ffi::SQLITE_STATIC(),
                    ffi::SQLITE_UTF8 as u8,
                ),
            }
        };
        if rc == ffi::SQLITE_OK {
            self.bound = i;
            Ok(())
        } else {
            Err(error(self.insert.conn, rc))
        }
    }
}

impl Drop for RawInsert<'_> {
    fn drop(&mut self) {
        // SAFETY: `stmt` is live and finalized exactly once, here.
        unsafe {
            ffi::sqlite3_finalize(self.stmt);
        }
    }
}

/// SQLite's error for `rc`, with the connection's message.
fn error(conn: &Connection, rc: c_int) -> crate::StoreError {
    // SAFETY: the handle is valid while `conn` is borrowed; `sqlite3_errmsg` returns a string
    // SQLite owns until the next call on the connection, copied out at once.
    let message = unsafe {
        let text = ffi::sqlite3_errmsg(conn.handle());
        (!text.is_null()).then(|| {
            std::ffi::CStr::from_ptr(text)
                .to_string_lossy()
                .into_owned()
        })
    };
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), message).into()
}

fn too_big() -> crate::StoreError {
    rusqlite::Error::SqliteFailure(ffi::Error::new(ffi::SQLITE_TOOBIG), None).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> Connection {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE t (k INTEGER PRIMARY KEY, x REAL, s TEXT, n INTEGER NOT NULL)",
        )
        .unwrap();
        conn
    }

    fn rows(conn: &Connection) -> Vec<(i64, Option<f64>, Option<String>, i64)> {
        let mut stmt = conn.prepare("SELECT k, x, s, n FROM t ORDER BY k").unwrap();
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap()
    }

    #[test]
    fn rows_round_trip_through_many_executions_with_texts_that_do_not_outlive_them() {
        let conn = table();
        let mut insert = RawInsert::prepare(
            &conn,
            "INSERT INTO t VALUES (?1, ?2, ?3, ?4), (?5, ?6, ?7, ?8)",
        )
        .unwrap();
        for round in 0..3i64 {
            // Texts made and dropped per execution: SQLite must have copied what it stored.
            let texts = [format!("é{round}\u{1F600}"), String::new()];
            insert
                .execute(|p| {
                    p.push(Value::Integer(2 * round))?;
                    p.push(Value::Real(0.5 + round as f64))?;
                    p.push(Value::Text(&texts[0]))?;
                    p.push(Value::Integer(-round))?;
                    p.push(Value::Integer(2 * round + 1))?;
                    p.push(Value::Null)?;
                    p.push(Value::Text(&texts[1]))?;
                    p.push(Value::Integer(i64::MIN))
                })
                .unwrap();
        }
        let got = rows(&conn);
        assert_eq!(got.len(), 6);
        assert_eq!(got[2], (2, Some(1.5), Some("é1\u{1F600}".into()), -1));
        assert_eq!(got[5], (5, None, Some(String::new()), i64::MIN));
    }

    #[test]
    fn too_few_values_step_nothing_and_errors_carry_sqlite_codes() {
        let conn = table();
        let mut insert =
            RawInsert::prepare(&conn, "INSERT INTO t VALUES (?1, ?2, ?3, ?4)").unwrap();
        let short = insert.execute(|p| p.push(Value::Integer(1)));
        assert!(matches!(
            short,
            Err(crate::StoreError::Sql(
                rusqlite::Error::InvalidParameterCount(1, 4)
            ))
        ));
        assert!(rows(&conn).is_empty());
        let too_many = insert.execute(|p| {
            for v in 0..5 {
                p.push(Value::Integer(v))?;
            }
            Ok(())
        });
        assert!(too_many.is_err(), "a fifth value has no parameter");
        // NOT NULL violated: the step's constraint error, with SQLite's message.
        let null = insert.execute(|p| {
            for v in [Value::Integer(7), Value::Null, Value::Null, Value::Null] {
                p.push(v)?;
            }
            Ok(())
        });
        match null {
            Err(crate::StoreError::Sql(rusqlite::Error::SqliteFailure(e, Some(message)))) => {
                assert_eq!(e.code, rusqlite::ErrorCode::ConstraintViolation);
                assert!(message.contains("t.n"), "{message}");
            }
            other => panic!("expected a constraint violation, got {other:?}"),
        }
        // The statement is usable again after the failure.
        insert
            .execute(|p| {
                for v in [
                    Value::Integer(7),
                    Value::Null,
                    Value::Null,
                    Value::Integer(1),
                ] {
                    p.push(v)?;
                }
                Ok(())
            })
            .unwrap();
        assert_eq!(rows(&conn), vec![(7, None, None, 1)]);
        assert!(RawInsert::prepare(&conn, "INSERT INTO nowhere VALUES (?1)").is_err());
        assert!(RawInsert::prepare(&conn, "  -- nothing").is_err());
    }
}
