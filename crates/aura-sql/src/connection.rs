//! What an asynchronous SQL driver (PostgreSQL, MySQL/MariaDB) provides so
//! that one executor, written once over this trait, runs every request on
//! it: selects with their includes, counts, writes with `on_delete`,
//! upserts, `raw()`. Drivers own pooling, type decoding and error mapping;
//! the executor owns the semantics.

use aura_core::{FieldKind, ModelSchema, Result, Row, Value};

use crate::{Dialect, SqlValue, Statement};

/// Column names and untyped values, as `raw()` returns them.
pub type RawRows = (Vec<String>, Vec<Vec<Value>>);

/// One leased connection. Futures are `Send` for concrete drivers, so the
/// executor's futures can run on a multi-threaded runtime.
#[allow(async_fn_in_trait)]
pub trait SqlConnection: Send {
    /// The dialect its statements are compiled for.
    const DIALECT: Dialect;

    /// Rows decoded against `schema`: one value per field, in field order
    /// (the column order every compiled select uses).
    async fn rows(&mut self, schema: &ModelSchema, stmt: &Statement) -> Result<Vec<Row>>;

    /// The first column of every row, decoded as `kind`.
    async fn column(&mut self, kind: FieldKind, stmt: &Statement) -> Result<Vec<Value>>;

    /// The single integer a `COUNT(*)` or `EXISTS` returns.
    async fn scalar(&mut self, stmt: &Statement) -> Result<i64>;

    /// Runs a statement; returns the changed-row count.
    async fn execute(&mut self, stmt: &Statement) -> Result<u64>;

    /// Runs parameterless SQL: transaction control, savepoints, DDL.
    async fn batch(&mut self, sql: &str) -> Result<()>;

    /// `raw()`: the dialect's own placeholders, values bound in order,
    /// results decoded without a schema.
    async fn raw(&mut self, sql: &str, params: &[SqlValue]) -> Result<RawRows>;
}
