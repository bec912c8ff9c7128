//! The one executor of the asynchronous SQL drivers: every IR operation
//! run over a `SqlConnection`, with the semantics of the SQLite driver
//! (includes one query per level, `on_delete` actions, atomic upserts,
//! `raw()`, deadlines). Drivers provide statements' I/O; this module
//! decides which statements run, in which order, and atomically.
//!
//! - `read`: select (with includes), count, exists, raw, explain;
//! - `write`: schema, insert, update, delete with `on_delete`, upsert.

mod read;
mod write;

use std::sync::Arc;

use aura_core::ir::{Filtered, Select, Update, Upsert};
use aura_core::{Error, ErrorCode, ModelSchema, Result, Row};
use serde_json::Value as Json;

use crate::{Catalog, OnConflict, RawRows, SqlConnection, SqlValue};

pub use read::{Fetched, IncludeLevel, Loaded};
pub use write::KeyedFeed;

/// Where a streamed select hands its rows, a chunk at a time, as they are
/// decoded (`Op::Stream`).
#[derive(Clone)]
pub struct Chunks {
    /// Rows per chunk.
    pub size: usize,
    sink: Arc<dyn Fn(Vec<Fetched>) + Send + Sync>,
}

impl Chunks {
    /// True when `q` can stream: its rows are final as soon as they are
    /// read (no includes to load after them, no ranking to attach).
    pub fn fit(q: &Select) -> bool {
        q.include.is_empty() && q.text_search.is_none()
    }

    pub fn new(size: usize, sink: impl Fn(Vec<Fetched>) + Send + Sync + 'static) -> Self {
        Chunks {
            size: size.max(1),
            sink: Arc::new(sink),
        }
    }
}

/// The rest of an insert's rows, converted by the caller while the first
/// ones are written. Ends after `pending` rows; a feed whose sender goes
/// away sooner (its request was cancelled) fails, so the insert rolls back
/// rather than commit part of the rows.
pub struct RowFeed {
    rows: tokio::sync::mpsc::UnboundedReceiver<Result<Vec<Row>>>,
    pending: usize,
}

/// The caller's end of a `RowFeed`.
pub type RowSender = tokio::sync::mpsc::UnboundedSender<Result<Vec<Row>>>;

impl RowFeed {
    /// A feed that will carry `pending` rows.
    pub fn channel(pending: usize) -> (RowSender, RowFeed) {
        let (send, rows) = tokio::sync::mpsc::unbounded_channel();
        (send, RowFeed { rows, pending })
    }

    /// The next chunk, `None` once every row has arrived.
    pub async fn next(&mut self) -> Result<Option<Vec<Row>>> {
        if self.pending == 0 {
            return Ok(None);
        }
        match self.rows.recv().await {
            Some(Ok(rows)) => {
                self.pending = self.pending.saturating_sub(rows.len());
                Ok(Some(rows))
            }
            Some(Err(err)) => Err(err),
            None => Err(Error::new(
                ErrorCode::AuraError,
                "the insert was abandoned before all its rows were converted",
            )),
        }
    }
}

impl std::fmt::Debug for RowFeed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RowFeed")
            .field("pending", &self.pending)
            .finish()
    }
}

impl std::fmt::Debug for Chunks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Chunks").field("size", &self.size).finish()
    }
}

/// Keys per `IN (...)` list: far below every dialect's parameter limit.
pub(crate) const KEYS_PER_QUERY: usize = 10_000;

/// How much isolation a request needs around its statements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Need {
    /// One statement: autocommit is atomic on its own.
    Single,
    /// Several reads that must see one snapshot.
    Snapshot,
    /// Several writes that commit together or not at all.
    Atomic,
}

/// What `enter` opened, so `leave` closes the same thing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Section {
    None,
    Transaction,
    Savepoint,
}

/// Runs requests on one leased connection. `in_txn` says the connection
/// is inside a user transaction: each request then runs in a savepoint,
/// so a failed request leaves the transaction usable.
pub struct Executor<'a, C: SqlConnection> {
    conn: &'a mut C,
    catalog: &'a Catalog,
    in_txn: bool,
}

impl<'a, C: SqlConnection> Executor<'a, C> {
    pub fn new(conn: &'a mut C, catalog: &'a Catalog, in_txn: bool) -> Self {
        Executor {
            conn,
            catalog,
            in_txn,
        }
    }

    fn schema(&self, model: &str) -> Result<Arc<ModelSchema>> {
        self.catalog
            .get(model)
            .cloned()
            .ok_or_else(|| Error::schema(format!("Unknown model '{model}'")))
    }

    /// Opens what `need` and `timeout_ms` require, then sets the deadline.
    async fn enter(&mut self, need: Need, timeout_ms: Option<u64>) -> Result<Section> {
        let section = match (self.in_txn, need, timeout_ms) {
            (true, _, _) => Section::Savepoint,
            (false, Need::Single, None) => Section::None,
            _ => Section::Transaction,
        };
        match section {
            Section::None => return Ok(section),
            Section::Savepoint => self.conn.batch("SAVEPOINT aura_op").await?,
            Section::Transaction if need == Need::Snapshot => {
                self.conn.batch(C::READ_SNAPSHOT).await?
            }
            Section::Transaction => self.conn.batch("BEGIN").await?,
        }
        if timeout_ms.is_some() {
            if let Err(err) = self.conn.set_deadline(timeout_ms).await {
                self.abandon(section).await;
                return Err(err);
            }
        }
        Ok(section)
    }

    /// Undoes a section after a failure (its own failure is secondary).
    async fn abandon(&mut self, section: Section) {
        let sql = match section {
            Section::None => return,
            Section::Transaction => "ROLLBACK",
            Section::Savepoint => "ROLLBACK TO SAVEPOINT aura_op; RELEASE SAVEPOINT aura_op",
        };
        let _ = self.conn.batch(sql).await;
    }

    /// Closes the section: commits on success, rolls back on failure; a
    /// timeout is reported with the deadline that enforced it.
    async fn leave<T>(
        &mut self,
        section: Section,
        timeout_ms: Option<u64>,
        result: Result<T>,
    ) -> Result<T> {
        let result = match result {
            Ok(value) => self.commit(section, timeout_ms).await.map(|()| value),
            Err(err) => {
                self.abandon(section).await;
                Err(err)
            }
        };
        result.map_err(|err| match (err.code, timeout_ms) {
            (ErrorCode::Timeout, Some(ms)) => {
                Error::timeout(format!("query exceeded its timeout of {ms} ms"))
                    .with_context("driver", C::DIALECT.backend())
                    .with_context("timeout_ms", ms)
            }
            _ => err,
        })
    }

    async fn commit(&mut self, section: Section, timeout_ms: Option<u64>) -> Result<()> {
        match section {
            Section::None => Ok(()),
            Section::Transaction => {
                let done = self.conn.batch("COMMIT").await;
                if done.is_err() {
                    let _ = self.conn.batch("ROLLBACK").await;
                }
                done
            }
            Section::Savepoint => {
                if timeout_ms.is_some() {
                    // The bound outlives a released savepoint: lift it.
                    self.conn.set_deadline(None).await?;
                }
                self.conn.batch("RELEASE SAVEPOINT aura_op").await
            }
        }
    }
}

/// A `raw()` parameter from its JSON form.
pub(crate) fn json_param(value: &Json) -> SqlValue {
    match value {
        Json::Null => SqlValue::Null,
        Json::Bool(b) => SqlValue::Bool(*b),
        Json::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Int(i),
            None => SqlValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// Rows of a write's result, for callers that hydrate them.
pub type Stored = Option<Row>;

/// One request for a driver to run, as data: drivers lease a connection
/// and hand the request to `Executor::run`, so each operation is
/// dispatched in one place for every driver.
#[derive(Debug)]
pub enum Op {
    Select(Select),
    /// A select whose full chunks go to `Chunks` as they are read; the
    /// rest comes back as `Outcome::Rows`. A select that does not fit
    /// (`Chunks::fit`) is run as `Op::Select` would run it.
    Stream(Select, Chunks),
    Count(Filtered),
    Exists(Filtered),
    Update(Update),
    Delete(Filtered),
    Insert {
        model: String,
        rows: Vec<Row>,
        mode: OnConflict,
        /// More rows, still being converted when the insert starts.
        rest: Option<RowFeed>,
    },
    Upsert {
        query: Upsert,
        row: Option<Row>,
    },
    Raw {
        statement: String,
        params: Json,
    },
    Explain(Select),
    Aggregate(Select),
    /// The live tables of these models, for `diff_schema`.
    Describe(Vec<Arc<ModelSchema>>),
    CreateSchema(Vec<Arc<ModelSchema>>),
    DropSchema(Vec<Arc<ModelSchema>>),
}

/// What an `Op` produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Rows(Vec<Fetched>),
    /// A ranked (`search_text`) select: rows in score order, with scores.
    Ranked(Vec<(Fetched, f64)>),
    /// An aggregate's result dict.
    Json(Json),
    Count(u64),
    Flag(bool),
    Stored(Stored),
    Raw(RawRows),
    /// The compiled SQL and the database's plan.
    Explained(String, Vec<String>),
    Unit,
}

impl<C: SqlConnection> Executor<'_, C> {
    /// Runs one request.
    pub async fn run(&mut self, op: Op) -> Result<Outcome> {
        Ok(match op {
            Op::Select(q) | Op::Stream(q, _) if q.text_search.is_some() => {
                Outcome::Ranked(self.select_ranked(&q).await?)
            }
            Op::Select(q) => Outcome::Rows(self.select(&q).await?),
            Op::Stream(q, chunks) => Outcome::Rows(self.select_streamed(&q, &chunks).await?),
            Op::Aggregate(q) => Outcome::Json(self.aggregate(&q).await?),
            Op::Describe(schemas) => Outcome::Json(self.describe(&schemas).await?),
            Op::Count(q) => Outcome::Count(self.count(&q).await?),
            Op::Exists(q) => Outcome::Flag(self.exists(&q).await?),
            Op::Update(q) => Outcome::Count(self.update(&q).await?),
            Op::Delete(q) => Outcome::Count(self.delete(&q).await?),
            Op::Insert {
                model,
                rows,
                mode,
                rest: None,
            } => Outcome::Count(self.insert(&model, &rows, mode).await?),
            Op::Insert {
                model,
                rows,
                mode,
                rest: Some(mut rest),
            } => Outcome::Count(self.insert_fed(&model, rows, mode, &mut rest).await?),
            Op::Upsert { query, row } => Outcome::Stored(self.upsert(&query, row).await?),
            Op::Raw { statement, params } => Outcome::Raw(self.raw(&statement, &params).await?),
            Op::Explain(q) => {
                let (sql, plan) = self.explain(&q).await?;
                Outcome::Explained(sql, plan)
            }
            Op::CreateSchema(schemas) => {
                self.create_schema(&schemas).await?;
                Outcome::Unit
            }
            Op::DropSchema(schemas) => {
                self.drop_schema(&schemas).await?;
                Outcome::Unit
            }
        })
    }
}

#[cfg(test)]
mod tests;
