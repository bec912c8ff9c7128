//! One pooled connection: opening it with the pragmas the semantics need,
//! binding parameters, decoding rows, atomic sections and deadlines.

use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use aura_core::{Error, ModelSchema, Result, Row, Value};
use aura_sql::{decode, SqlRef, SqlValue, Statement};
use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};

use crate::errors;
use crate::pool::{acquire_writer, Location, Shared, Txn, TxnJob};

pub struct Session {
    pub(crate) conn: Connection,
    pub(crate) shared: Arc<Shared>,
    /// Set while leased to a transaction (writes use savepoints then).
    in_txn: bool,
    /// Deadline of the running statement (`.timeout(ms)`), polled by the
    /// progress handler.
    deadline: Arc<parking_lot::Mutex<Option<Instant>>>,
}

/// A parameter as rusqlite binds it (borrowed, no copy).
struct Param<'a>(&'a SqlValue);

impl ToSql for Param<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(borrowed(self.0))
    }
}

fn borrowed(value: &SqlValue) -> ToSqlOutput<'_> {
    ToSqlOutput::Borrowed(match value {
        SqlValue::Null => ValueRef::Null,
        SqlValue::Bool(b) => ValueRef::Integer(i64::from(*b)),
        SqlValue::Int(i) => ValueRef::Integer(*i),
        SqlValue::Float(f) => ValueRef::Real(*f),
        SqlValue::Text(s) => ValueRef::Text(s.as_bytes()),
    })
}

pub(crate) fn params(values: &[SqlValue]) -> impl rusqlite::Params + '_ {
    rusqlite::params_from_iter(values.iter().map(Param))
}

pub(crate) fn raw_ref(value: ValueRef<'_>) -> Result<SqlRef<'_>> {
    Ok(match value {
        ValueRef::Null => SqlRef::Null,
        ValueRef::Integer(i) => SqlRef::Int(i),
        ValueRef::Real(f) => SqlRef::Float(f),
        ValueRef::Text(t) => SqlRef::Text(
            std::str::from_utf8(t).map_err(|_| Error::serialization("stored text is not UTF-8"))?,
        ),
        ValueRef::Blob(b) => SqlRef::Blob(b),
    })
}

/// A result row in the schema's field order.
pub(crate) fn read_row(schema: &ModelSchema, row: &rusqlite::Row<'_>) -> Result<Row> {
    let mut values = Vec::with_capacity(schema.fields.len());
    for (i, field) in schema.fields.iter().enumerate() {
        let raw = row
            .get_ref(i)
            .map_err(|e| errors::map(e, &Default::default(), None))?;
        values.push(decode(field.kind, raw_ref(raw)?)?);
    }
    Ok(Arc::from(values))
}

impl Session {
    pub(crate) fn open(shared: &Arc<Shared>) -> Result<Session> {
        let options = &shared.options;
        let flags = if options.read_only {
            OpenFlags::SQLITE_OPEN_READ_ONLY
        } else {
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE
        } | OpenFlags::SQLITE_OPEN_NO_MUTEX
            | OpenFlags::SQLITE_OPEN_URI;
        let catalog = Default::default();
        let fail = |e| errors::map(e, &catalog, None);
        let conn = Connection::open_with_flags(&shared.path, flags).map_err(|e| {
            Error::new(
                aura_core::ErrorCode::ConnectionError,
                format!("cannot open SQLite database: {}", fail(e).message),
            )
            .with_context("driver", errors::DRIVER)
        })?;
        conn.busy_timeout(options.busy_timeout).map_err(fail)?;
        conn.set_prepared_statement_cache_capacity(128);
        // LIKE is case-sensitive everywhere (API.md §16 row 30).
        let mut setup = String::from("PRAGMA case_sensitive_like = ON;");
        if !options.read_only {
            // WAL: readers see the last commit and never block the writer.
            setup.push_str("PRAGMA journal_mode = WAL;");
            setup.push_str(match options.location {
                // A private database dies with the pool: durability is moot.
                Location::Private => "PRAGMA synchronous = OFF;",
                Location::File(_) => "PRAGMA synchronous = NORMAL;",
            });
        }
        conn.execute_batch(&setup).map_err(fail)?;
        let deadline: Arc<parking_lot::Mutex<Option<Instant>>> = Arc::default();
        let polled = deadline.clone();
        conn.progress_handler(
            1000,
            Some(move || polled.lock().is_some_and(|at| Instant::now() >= at)),
        );
        Ok(Session {
            conn,
            shared: shared.clone(),
            in_txn: false,
            deadline,
        })
    }

    pub fn error(&self, err: rusqlite::Error) -> Error {
        errors::map(err, &self.shared.catalog.read(), None)
    }

    /// A copy of the registered schemas.
    pub fn catalog(&self) -> aura_sql::Catalog {
        self.shared.catalog.read().clone()
    }

    pub(crate) fn schema(&self, model: &str) -> Result<Arc<ModelSchema>> {
        self.shared
            .catalog
            .read()
            .get(model)
            .cloned()
            .ok_or_else(|| Error::schema(format!("Unknown model '{model}'")))
    }

    /// Runs `work` under `.timeout(ms)`: SQLite's progress handler
    /// interrupts the statement once the deadline passes.
    pub(crate) fn with_deadline<T>(
        &mut self,
        timeout_ms: Option<u64>,
        work: impl FnOnce(&mut Session) -> Result<T>,
    ) -> Result<T> {
        let Some(ms) = timeout_ms else {
            return work(self);
        };
        *self.deadline.lock() = Some(Instant::now() + Duration::from_millis(ms));
        let result = work(self);
        *self.deadline.lock() = None;
        result.map_err(|err| match err.code {
            aura_core::ErrorCode::Timeout => {
                Error::timeout(format!("query exceeded its timeout of {ms} ms"))
                    .with_context("driver", errors::DRIVER)
                    .with_context("timeout_ms", ms)
            }
            _ => err,
        })
    }

    /// Executes a statement; returns the changed-row count.
    pub(crate) fn execute(&self, stmt: &Statement) -> Result<u64> {
        let mut prepared = self
            .conn
            .prepare_cached(&stmt.sql)
            .map_err(|e| self.error(e))?;
        let n = prepared
            .execute(params(&stmt.params))
            .map_err(|e| self.error(e))?;
        Ok(n as u64)
    }

    /// Rows of a statement decoded against `schema`.
    pub(crate) fn rows(&self, schema: &ModelSchema, stmt: &Statement) -> Result<Vec<Row>> {
        let mut prepared = self
            .conn
            .prepare_cached(&stmt.sql)
            .map_err(|e| self.error(e))?;
        let mut rows = prepared
            .query(params(&stmt.params))
            .map_err(|e| self.error(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.error(e))? {
            out.push(read_row(schema, row)?);
        }
        Ok(out)
    }

    /// The single integer a `SELECT COUNT(*)`/`EXISTS` returns.
    pub(crate) fn scalar(&self, stmt: &Statement) -> Result<i64> {
        let mut prepared = self
            .conn
            .prepare_cached(&stmt.sql)
            .map_err(|e| self.error(e))?;
        prepared
            .query_row(params(&stmt.params), |row| row.get::<_, i64>(0))
            .map_err(|e| self.error(e))
    }

    /// First column of every row, decoded as `kind`.
    pub(crate) fn column(
        &self,
        kind: aura_core::FieldKind,
        stmt: &Statement,
    ) -> Result<Vec<Value>> {
        let mut prepared = self
            .conn
            .prepare_cached(&stmt.sql)
            .map_err(|e| self.error(e))?;
        let mut rows = prepared
            .query(params(&stmt.params))
            .map_err(|e| self.error(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.error(e))? {
            let raw = row.get_ref(0).map_err(|e| self.error(e))?;
            out.push(decode(kind, raw_ref(raw)?)?);
        }
        Ok(out)
    }

    fn batch(&self, sql: &str) -> Result<()> {
        self.conn.execute_batch(sql).map_err(|e| self.error(e))
    }

    /// Runs `work` atomically as a writer: inside a transaction as a
    /// savepoint; otherwise in its own `BEGIN IMMEDIATE` under the writer lock.
    pub(crate) fn write<T>(&mut self, work: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
        if self.in_txn {
            self.batch("SAVEPOINT aura_write")?;
            let result = work(self);
            let end = match result {
                Ok(_) => "RELEASE aura_write",
                Err(_) => "ROLLBACK TO aura_write; RELEASE aura_write",
            };
            self.batch(end)?;
            return result;
        }
        let _writer = acquire_writer(&self.shared)?;
        self.batch("BEGIN IMMEDIATE")?;
        let result = work(self);
        match &result {
            Ok(_) => {
                if let Err(err) = self.batch("COMMIT") {
                    let _ = self.batch("ROLLBACK");
                    return Err(err);
                }
            }
            Err(_) => self.batch("ROLLBACK")?,
        }
        result
    }

    /// Runs several reads on one snapshot (a deferred read transaction),
    /// unless already inside a transaction.
    pub(crate) fn read<T>(&mut self, work: impl FnOnce(&mut Session) -> Result<T>) -> Result<T> {
        if self.in_txn || !self.conn.is_autocommit() {
            return work(self);
        }
        self.batch("BEGIN")?;
        let result = work(self);
        let _ = self.batch("COMMIT");
        result
    }

    /// Serves a transaction on this connection until it ends: `BEGIN
    /// IMMEDIATE` under the writer lock, then jobs from the returned handle.
    pub(crate) fn lease(&mut self, done: Box<dyn FnOnce(Result<Txn>) + Send>) {
        let writer = match acquire_writer(&self.shared) {
            Ok(guard) => guard,
            Err(err) => return done(Err(err)),
        };
        if let Err(err) = self.batch("BEGIN IMMEDIATE") {
            return done(Err(err));
        }
        let (sender, receiver) = mpsc::channel();
        self.in_txn = true;
        done(Ok(Txn { sender }));
        loop {
            match receiver.recv() {
                Ok(TxnJob::Work(job)) => job(Ok(self)),
                Ok(TxnJob::End { commit, done }) => {
                    let result = if commit {
                        self.batch("COMMIT").inspect_err(|_| {
                            let _ = self.batch("ROLLBACK");
                        })
                    } else {
                        self.batch("ROLLBACK")
                    };
                    self.in_txn = false;
                    drop(writer);
                    done(result);
                    return;
                }
                // The handle was dropped without commit: roll back.
                Err(_) => {
                    let _ = self.batch("ROLLBACK");
                    self.in_txn = false;
                    return;
                }
            }
        }
    }
}

/// An owned parameter (raw statements bind one at a time).
pub(crate) struct OwnedParam(pub SqlValue);

impl ToSql for OwnedParam {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(borrowed(&self.0))
    }
}
