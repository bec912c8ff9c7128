//! `SqlConnection` for one pooled tokio-postgres client: statements are
//! prepared once per connection (typed by their parameters) and run in
//! the binary protocol; inserts of many rows go through binary `COPY`.

use std::pin::{pin, Pin};

use aura_core::{Error, FieldKind, ModelSchema, Result, Row, Value};
use aura_sql::{
    Catalog, Chunker, Dialect, KeyedFeed, OnConflict, RawRows, SqlConnection, SqlValue, Statement,
};
use deadpool_postgres::ClientWrapper;
use futures_util::future::try_join_all;
use futures_util::TryStreamExt;
use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::ToSql;

use crate::errors;
use crate::value::{cell, param_types, read_row, Param};

/// Prepared statements kept per connection before the cache is reset
/// (distinct `IN (...)` lengths each prepare a statement).
const STATEMENT_CACHE_LIMIT: usize = 512;
/// Rows from which an insert (without `on_conflict`) uses `COPY`.
const COPY_FROM_ROWS: usize = 32;
/// Inserts sent before their results are awaited (pipelined).
const PIPELINE_DEPTH: usize = 256;

pub struct PgConn<'a> {
    pub client: &'a ClientWrapper,
    pub catalog: &'a Catalog,
}

fn params(values: &[SqlValue]) -> Vec<Param<'_>> {
    values.iter().map(Param).collect()
}

fn refs<'p>(params: &'p [Param<'p>]) -> Vec<&'p (dyn ToSql + Sync)> {
    params.iter().map(|p| p as &(dyn ToSql + Sync)).collect()
}

impl PgConn<'_> {
    fn error(&self, err: tokio_postgres::Error) -> Error {
        errors::map(&err, self.catalog)
    }

    async fn prepare(&self, stmt: &Statement) -> Result<tokio_postgres::Statement> {
        if self.client.statement_cache.size() > STATEMENT_CACHE_LIMIT {
            self.client.statement_cache.clear();
        }
        self.client
            .prepare_typed_cached(&stmt.sql, &param_types(&stmt.params))
            .await
            .map_err(|e| self.error(e))
    }

    async fn query(&self, stmt: &Statement) -> Result<Vec<tokio_postgres::Row>> {
        let prepared = self.prepare(stmt).await?;
        let bound = params(&stmt.params);
        self.client
            .query(&prepared, &refs(&bound))
            .await
            .map_err(|e| self.error(e))
    }

    /// Binary `COPY ... FROM STDIN` of `rows` and then of every chunk of
    /// `more` as it arrives, column types from the prepared insert. An
    /// error drops the sink unfinished, which aborts the whole `COPY`.
    async fn copy_in(
        &self,
        schema: &ModelSchema,
        rows: &[Row],
        mut more: Option<&mut KeyedFeed<'_>>,
    ) -> Result<u64> {
        let insert = aura_sql::insert(Dialect::Postgres, schema, OnConflict::Error)?;
        let types = self
            .client
            .prepare_cached(&insert)
            .await
            .map_err(|e| self.error(e))?
            .params()
            .to_vec();
        let table = Dialect::Postgres.quote(&schema.name)?;
        let columns = schema
            .fields
            .iter()
            .map(|f| Dialect::Postgres.quote(&f.storage))
            .collect::<Result<Vec<_>>>()?
            .join(", ");
        let sink = self
            .client
            .copy_in(&format!(
                "COPY {table} ({columns}) FROM STDIN (FORMAT binary)"
            ))
            .await
            .map_err(|e| self.error(e))?;
        let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
        self.copy_rows(writer.as_mut(), schema, rows).await?;
        while let Some(feed) = more.as_deref_mut() {
            match feed.next().await? {
                Some(chunk) => self.copy_rows(writer.as_mut(), schema, &chunk).await?,
                None => break,
            }
        }
        writer.finish().await.map_err(|e| self.error(e))
    }

    async fn copy_rows(
        &self,
        mut writer: Pin<&mut BinaryCopyInWriter>,
        schema: &ModelSchema,
        rows: &[Row],
    ) -> Result<()> {
        for row in rows {
            let values = aura_sql::encode_row(schema, row)?;
            let bound = params(&values);
            writer
                .as_mut()
                .write(&refs(&bound))
                .await
                .map_err(|e| self.error(e))?;
        }
        Ok(())
    }

    /// One prepared insert per row, pipelined.
    async fn insert_each(
        &self,
        schema: &ModelSchema,
        mode: OnConflict,
        rows: &[Row],
    ) -> Result<u64> {
        let sql = aura_sql::insert(Dialect::Postgres, schema, mode)?;
        let prepared = self
            .client
            .prepare_cached(&sql)
            .await
            .map_err(|e| self.error(e))?;
        let encoded = rows
            .iter()
            .map(|row| aura_sql::encode_row(schema, row))
            .collect::<Result<Vec<_>>>()?;
        let mut written = 0;
        for batch in encoded.chunks(PIPELINE_DEPTH) {
            let bound: Vec<Vec<Param<'_>>> = batch.iter().map(|v| params(v)).collect();
            let runs = bound.iter().map(|b| {
                let prepared = &prepared;
                async move { self.client.execute(prepared, &refs(b)).await }
            });
            let counts = try_join_all(runs).await.map_err(|e| self.error(e))?;
            written += counts.iter().sum::<u64>();
        }
        Ok(written)
    }
}

impl SqlConnection for PgConn<'_> {
    const DIALECT: Dialect = Dialect::Postgres;
    const READ_SNAPSHOT: &'static str = "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";

    async fn rows(&mut self, schema: &ModelSchema, stmt: &Statement) -> Result<Vec<Row>> {
        self.query(stmt)
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
        let prepared = self.prepare(stmt).await?;
        let bound = params(&stmt.params);
        let mut stream = pin!(self
            .client
            .query_raw(&prepared, refs(&bound))
            .await
            .map_err(|e| self.error(e))?);
        let mut out = Chunker::new(chunk, sink);
        while let Some(row) = stream.try_next().await.map_err(|e| self.error(e))? {
            out.push(read_row(schema, &row)?);
        }
        Ok(out.rest())
    }

    async fn column(&mut self, kind: FieldKind, stmt: &Statement) -> Result<Vec<Value>> {
        self.query(stmt)
            .await?
            .iter()
            .map(|row| cell(row, 0)?.typed(kind))
            .collect()
    }

    async fn table(&mut self, stmt: &Statement, kinds: &[FieldKind]) -> Result<Vec<Vec<Value>>> {
        self.query(stmt)
            .await?
            .iter()
            .map(|row| {
                (0..row.len())
                    .map(|i| {
                        let cell = cell(row, i)?;
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
        let rows = self.query(stmt).await?;
        let row = rows
            .first()
            .ok_or_else(|| Error::query("a scalar query returned no row"))?;
        match cell(row, 0)?.untyped() {
            Value::Int(i) => Ok(i),
            Value::Bool(b) => Ok(i64::from(b)),
            _ => Err(Error::serialization(
                "a scalar query returned a non-integer",
            )),
        }
    }

    async fn execute(&mut self, stmt: &Statement) -> Result<u64> {
        let prepared = self.prepare(stmt).await?;
        let bound = params(&stmt.params);
        self.client
            .execute(&prepared, &refs(&bound))
            .await
            .map_err(|e| self.error(e))
    }

    async fn batch(&mut self, sql: &str) -> Result<()> {
        self.client
            .batch_execute(sql)
            .await
            .map_err(|e| self.error(e))
    }

    async fn raw(&mut self, sql: &str, values: &[SqlValue]) -> Result<RawRows> {
        let prepared = self
            .client
            .prepare_cached(sql)
            .await
            .map_err(|e| self.error(e))?;
        if prepared.params().len() != values.len() {
            return Err(Error::query(format!(
                "raw() statement takes {} parameter(s), {} given",
                prepared.params().len(),
                values.len()
            )));
        }
        let bound = params(values);
        let rows = self
            .client
            .query(&prepared, &refs(&bound))
            .await
            .map_err(|e| self.error(e))?;
        let names: Vec<String> = prepared
            .columns()
            .iter()
            .map(|c| c.name().to_owned())
            .collect();
        let mut out = Vec::with_capacity(rows.len());
        for row in &rows {
            let values = (0..names.len())
                .map(|i| cell(row, i).map(|c| c.untyped()))
                .collect::<Result<Vec<_>>>()?;
            out.push(values);
        }
        Ok((names, out))
    }

    async fn set_deadline(&mut self, ms: Option<u64>) -> Result<()> {
        let sql = match ms {
            // 0 would mean "no limit": the smallest real bound is 1 ms.
            Some(ms) => format!("SET LOCAL statement_timeout = {}", ms.max(1)),
            None => "SET LOCAL statement_timeout TO DEFAULT".to_owned(),
        };
        self.batch(&sql).await
    }

    async fn insert_rows(
        &mut self,
        schema: &ModelSchema,
        mode: OnConflict,
        rows: &[Row],
    ) -> Result<u64> {
        if mode == OnConflict::Error && rows.len() >= COPY_FROM_ROWS {
            return self.copy_in(schema, rows, None).await;
        }
        self.insert_each(schema, mode, rows).await
    }

    /// A fed insert is large: `COPY` writes each chunk as it arrives.
    async fn insert_fed(
        &mut self,
        schema: &ModelSchema,
        mode: OnConflict,
        feed: &mut KeyedFeed<'_>,
    ) -> Result<u64> {
        if mode != OnConflict::Error {
            let rows = feed.gather().await?;
            return self.insert_each(schema, mode, &rows).await;
        }
        self.copy_in(schema, &[], Some(feed)).await
    }

    async fn plan(&mut self, stmt: &Statement) -> Result<Vec<String>> {
        let explain = Statement {
            sql: format!("EXPLAIN {}", stmt.sql),
            params: stmt.params.clone(),
        };
        self.query(&explain)
            .await?
            .iter()
            .map(|row| match cell(row, 0)?.untyped() {
                Value::Str(line) => Ok(line.to_string()),
                _ => Err(Error::serialization("EXPLAIN returned a non-text line")),
            })
            .collect()
    }
}
