//! `SqlConnection` over one mysql_async connection: prepared statements
//! (binary protocol, cached per connection), deadlines enforced by the
//! server, multi-row inserts.

use aura_core::{Error, FieldKind, ModelSchema, Result, Row, Value};
use aura_sql::{
    Catalog, Chunker, Dialect, OnConflict, RawRows, SqlConnection, SqlValue, Statement,
};
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Params};

use crate::errors;
use crate::value::{cell_at, params, read_row};

/// MySQL's limit on the parameters of one statement.
const MAX_PARAMS: usize = 65_535;
/// Rows per multi-row `INSERT` (further bounded by `MAX_PARAMS`).
const ROWS_PER_INSERT: usize = 1_000;

pub struct MyConn<'a> {
    pub conn: &'a mut mysql_async::Conn,
    pub catalog: &'a Catalog,
    /// MariaDB (`SET STATEMENT max_statement_time`) rather than MySQL.
    pub mariadb: bool,
    /// The bound set by `set_deadline` for the rest of this request.
    pub deadline_ms: Option<u64>,
}

fn bound(values: &[SqlValue]) -> Params {
    if values.is_empty() {
        Params::Empty
    } else {
        Params::Positional(params(values))
    }
}

impl MyConn<'_> {
    /// `sql` under the current deadline: MariaDB bounds one statement with
    /// `SET STATEMENT max_statement_time=<seconds> FOR ...` (error 1969).
    fn timed(&self, sql: &str) -> String {
        match self.deadline_ms {
            // 0 would mean "no limit": the smallest real bound is 1 ms.
            Some(ms) => format!(
                "SET STATEMENT max_statement_time={:.3} FOR {sql}",
                ms.max(1) as f64 / 1000.0
            ),
            None => sql.to_owned(),
        }
    }

    /// DDL as this server needs it. The compiler's text columns use
    /// `utf8mb4_bin`, a PAD SPACE collation on MariaDB (`'a' = 'a '`); its
    /// NO PAD twin compares bytes exactly, as the memory engine does.
    fn collated<'s>(&self, sql: &'s str) -> std::borrow::Cow<'s, str> {
        if self.mariadb && sql.starts_with("CREATE TABLE") {
            return sql
                .replace(" COLLATE utf8mb4_bin", " COLLATE utf8mb4_nopad_bin")
                .into();
        }
        sql.into()
    }

    async fn query(&mut self, sql: &str, values: &[SqlValue]) -> Result<Vec<mysql_async::Row>> {
        let sql = self.timed(sql);
        let result = self.conn.exec_iter(sql.as_str(), bound(values)).await;
        let catalog = self.catalog;
        let fail = |e: mysql_async::Error| errors::map(&e, &sql, catalog);
        result
            .map_err(fail)?
            .collect_and_drop::<mysql_async::Row>()
            .await
            .map_err(fail)
    }

    /// Column names and rows, for `raw()`.
    async fn query_named(
        &mut self,
        sql: &str,
        values: &[SqlValue],
    ) -> Result<(Vec<String>, Vec<mysql_async::Row>)> {
        let sql = self.timed(sql);
        let catalog = self.catalog;
        let fail = |e: mysql_async::Error| errors::map(&e, &sql, catalog);
        let result = self
            .conn
            .exec_iter(sql.as_str(), bound(values))
            .await
            .map_err(fail)?;
        let names = result
            .columns()
            .map(|cols| cols.iter().map(|c| c.name_str().into_owned()).collect())
            .unwrap_or_default();
        let rows = result
            .collect_and_drop::<mysql_async::Row>()
            .await
            .map_err(fail)?;
        Ok((names, rows))
    }

    async fn run(&mut self, sql: &str, values: &[SqlValue]) -> Result<u64> {
        let sql = self.timed(sql);
        match self.conn.exec_drop(sql.as_str(), bound(values)).await {
            Ok(()) => Ok(self.conn.affected_rows()),
            Err(e) => Err(errors::map(&e, &sql, self.catalog)),
        }
    }

    /// Multi-row `INSERT`s (`on_conflict` error or ignore), chunked under
    /// MySQL's parameter limit.
    async fn insert_many(
        &mut self,
        schema: &ModelSchema,
        mode: OnConflict,
        rows: &[Row],
    ) -> Result<u64> {
        let single = aura_sql::insert(Dialect::Mysql, schema, mode)?;
        let Some((head, one)) = single.split_once(" VALUES ") else {
            return Err(Error::query("unexpected INSERT statement"));
        };
        let width = schema.fields.len().max(1);
        let per = ROWS_PER_INSERT.min(MAX_PARAMS / width).max(1);
        let mut written = 0;
        for chunk in rows.chunks(per) {
            let mut values = Vec::with_capacity(chunk.len() * width);
            for row in chunk {
                values.extend(aura_sql::encode_row(schema, row)?);
            }
            let tuples = vec![one; chunk.len()].join(", ");
            written += self
                .run(&format!("{head} VALUES {tuples}"), &values)
                .await?;
        }
        Ok(written)
    }
}

fn scalar_of(row: &mysql_async::Row, columns: &[Column]) -> Result<i64> {
    match cell_at(row, columns, 0)?.untyped() {
        Value::Int(i) => Ok(i),
        Value::Bool(b) => Ok(i64::from(b)),
        _ => Err(Error::serialization(
            "a scalar query returned a non-integer",
        )),
    }
}

impl SqlConnection for MyConn<'_> {
    const DIALECT: Dialect = Dialect::Mysql;
    const READ_SNAPSHOT: &'static str = "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY";

    async fn rows(&mut self, schema: &ModelSchema, stmt: &Statement) -> Result<Vec<Row>> {
        self.query(&stmt.sql, &stmt.params)
            .await?
            .iter()
            .map(|row| read_row(schema, row))
            .collect()
    }

    async fn rows_chunked(
        &mut self,
        schema: &ModelSchema,
        stmt: &Statement,
        chunk: usize,
        sink: &mut (dyn FnMut(Vec<Row>) + Send),
    ) -> Result<Vec<Row>> {
        let sql = self.timed(&stmt.sql);
        let catalog = self.catalog;
        let fail = |e: mysql_async::Error| errors::map(&e, &sql, catalog);
        let mut result = self
            .conn
            .exec_iter(sql.as_str(), bound(&stmt.params))
            .await
            .map_err(fail)?;
        let mut out = Chunker::new(chunk, sink);
        while let Some(row) = result.next().await.map_err(fail)? {
            out.push(read_row(schema, &row)?);
        }
        Ok(out.rest())
    }

    async fn column(&mut self, kind: FieldKind, stmt: &Statement) -> Result<Vec<Value>> {
        self.query(&stmt.sql, &stmt.params)
            .await?
            .iter()
            .map(|row| cell_at(row, row.columns_ref(), 0)?.typed(kind))
            .collect()
    }

    async fn table(&mut self, stmt: &Statement, kinds: &[FieldKind]) -> Result<Vec<Vec<Value>>> {
        self.query(&stmt.sql, &stmt.params)
            .await?
            .iter()
            .map(|row| {
                let columns = row.columns_ref();
                (0..columns.len())
                    .map(|i| {
                        let cell = cell_at(row, columns, i)?;
                        match kinds.get(i) {
                            Some(kind) => cell.typed(*kind),
                            None => Ok(cell.untyped()),
                        }
                    })
                    .collect()
            })
            .collect()
    }

    async fn scalar(&mut self, stmt: &Statement) -> Result<i64> {
        let rows = self.query(&stmt.sql, &stmt.params).await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::query("a scalar query returned no row"))?;
        scalar_of(row, row.columns_ref())
    }

    async fn execute(&mut self, stmt: &Statement) -> Result<u64> {
        self.run(&stmt.sql, &stmt.params).await
    }

    async fn batch(&mut self, sql: &str) -> Result<()> {
        let sql = self.collated(sql);
        self.conn
            .query_drop(sql.as_ref())
            .await
            .map_err(|e| errors::map(&e, &sql, self.catalog))
    }

    async fn raw(&mut self, sql: &str, values: &[SqlValue]) -> Result<RawRows> {
        let (names, rows) = self.query_named(sql, values).await?;
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let columns = row.columns_ref();
            let values = (0..names.len())
                .map(|i| cell_at(row, columns, i).map(|c| c.untyped()))
                .collect::<Result<Vec<_>>>()?;
            out.push(values);
        }
        Ok((names, out))
    }

    async fn set_deadline(&mut self, ms: Option<u64>) -> Result<()> {
        if ms.is_some() && !self.mariadb {
            // MySQL's max_execution_time bounds SELECTs only: refused
            // rather than half enforced.
            return Err(Error::capability(
                "mysql",
                "query_timeouts",
                "query timeouts on MySQL (MariaDB enforces them)",
            ));
        }
        self.deadline_ms = ms;
        Ok(())
    }

    async fn insert_rows(
        &mut self,
        schema: &ModelSchema,
        mode: OnConflict,
        rows: &[Row],
    ) -> Result<u64> {
        if mode != OnConflict::Replace {
            return self.insert_many(schema, mode, rows).await;
        }
        // ON DUPLICATE KEY UPDATE counts 2 for a replaced row: one per row.
        let sql = aura_sql::insert(Dialect::Mysql, schema, mode)?;
        let mut written = 0;
        for row in rows {
            let values = aura_sql::encode_row(schema, row)?;
            written += self.run(&sql, &values).await?.min(1);
        }
        Ok(written)
    }
}
