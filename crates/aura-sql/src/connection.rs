//! What an asynchronous SQL driver (PostgreSQL, MySQL/MariaDB) provides so
//! that one executor (`crate::exec`), written once over this trait, runs
//! every request on it: selects with their includes, counts, writes with
//! `on_delete`, upserts, `raw()`. Drivers own pooling, type decoding and
//! error mapping; the executor owns the semantics.

use std::future::Future;

use aura_core::{Error, FieldKind, ModelSchema, Result, Row, Value};

use crate::{Dialect, KeyedFeed, OnConflict, SqlValue, Statement};

/// Column names and untyped values, as `raw()` returns them.
pub type RawRows = (Vec<String>, Vec<Vec<Value>>);

/// One leased connection. Every future is declared `Send`, so the
/// executor's futures are `Send` for any driver, generic code included,
/// and run on a multi-threaded runtime (implementations write `async fn`).
pub trait SqlConnection: Send {
    /// The dialect its statements are compiled for.
    const DIALECT: Dialect;

    /// Starts the transaction that gives several reads one snapshot.
    const READ_SNAPSHOT: &'static str = "BEGIN";

    /// Rows decoded against `schema`: one value per field, in field order
    /// (the column order every compiled select uses).
    fn rows(
        &mut self,
        schema: &ModelSchema,
        stmt: &Statement,
    ) -> impl Future<Output = Result<Vec<Row>>> + Send;

    /// `rows`, handing each full chunk of `chunk` rows to `sink` as soon
    /// as it is decoded and returning the rest, so the caller converts one
    /// chunk while the next is read. This default, for drivers that cannot
    /// stream, returns every row at the end.
    fn rows_chunked(
        &mut self,
        schema: &ModelSchema,
        stmt: &Statement,
        chunk: usize,
        sink: &mut (dyn FnMut(Vec<Row>) + Send),
    ) -> impl Future<Output = Result<Vec<Row>>> + Send {
        let _ = (chunk, sink);
        self.rows(schema, stmt)
    }

    /// The first column of every row, decoded as `kind`.
    fn column(
        &mut self,
        kind: FieldKind,
        stmt: &Statement,
    ) -> impl Future<Output = Result<Vec<Value>>> + Send;

    /// Every row of `stmt`, column `i` decoded as `kinds[i]` and untyped
    /// past the end of `kinds` (aggregates, ranked selects).
    fn table(
        &mut self,
        stmt: &Statement,
        kinds: &[FieldKind],
    ) -> impl Future<Output = Result<Vec<Vec<Value>>>> + Send;

    /// The single integer a `COUNT(*)` or `EXISTS` returns.
    fn scalar(&mut self, stmt: &Statement) -> impl Future<Output = Result<i64>> + Send;

    /// Runs a statement; returns the changed-row count.
    fn execute(&mut self, stmt: &Statement) -> impl Future<Output = Result<u64>> + Send;

    /// Runs parameterless SQL: transaction control, savepoints, DDL.
    fn batch(&mut self, sql: &str) -> impl Future<Output = Result<()>> + Send;

    /// `raw()`: the dialect's own placeholders, values bound in order,
    /// results decoded without a schema.
    fn raw(
        &mut self,
        sql: &str,
        params: &[SqlValue],
    ) -> impl Future<Output = Result<RawRows>> + Send;

    /// Bounds every following statement of the current transaction to
    /// `ms` milliseconds (`None`: lifts the bound). The executor calls it
    /// only inside a transaction or savepoint. A driver that cannot
    /// enforce a deadline keeps this default, which refuses.
    fn set_deadline(&mut self, ms: Option<u64>) -> impl Future<Output = Result<()>> + Send {
        async move {
            match ms {
                None => Ok(()),
                Some(_) => Err(Error::capability(
                    Self::DIALECT.backend(),
                    "query_timeouts",
                    "query timeouts",
                )),
            }
        }
    }

    /// Inserts `rows` (already checked to carry their primary key) with
    /// one statement per row; drivers override it with a bulk path.
    /// Runs inside the executor's atomic section.
    fn insert_rows(
        &mut self,
        schema: &ModelSchema,
        mode: OnConflict,
        rows: &[Row],
    ) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let sql = crate::insert(Self::DIALECT, schema, mode)?;
            let mut written = 0;
            for row in rows {
                let stmt = Statement {
                    sql: sql.clone(),
                    params: crate::encode_row(schema, row)?,
                };
                written += self.execute(&stmt).await?;
            }
            Ok(written)
        }
    }

    /// Inserts every chunk of `feed` (see `insert_rows`). This default
    /// gathers them first; a driver that can write while the caller still
    /// converts the rest (PostgreSQL's `COPY`) overrides it.
    fn insert_fed(
        &mut self,
        schema: &ModelSchema,
        mode: OnConflict,
        feed: &mut KeyedFeed<'_>,
    ) -> impl Future<Output = Result<u64>> + Send {
        async move {
            let rows = feed.gather().await?;
            self.insert_rows(schema, mode, &rows).await
        }
    }

    /// The database's plan for `stmt`, one line per row of `EXPLAIN`.
    fn plan(&mut self, stmt: &Statement) -> impl Future<Output = Result<Vec<String>>> + Send {
        async move {
            let (_, rows) = self
                .raw(&format!("EXPLAIN {}", stmt.sql), &stmt.params)
                .await?;
            Ok(rows
                .iter()
                .map(|row| {
                    row.iter()
                        .map(|v| match v {
                            Value::Str(s) => s.to_string(),
                            other => other.to_json().to_string(),
                        })
                        .collect::<Vec<_>>()
                        .join(" | ")
                })
                .collect())
        }
    }
}

/// Gathers decoded rows into chunks of `size`, handing each full chunk to
/// `sink` as soon as it fills (the body of every `rows_chunked`).
pub struct Chunker<T, F: FnMut(Vec<T>)> {
    size: usize,
    batch: Vec<T>,
    sink: F,
}

impl<T, F: FnMut(Vec<T>)> Chunker<T, F> {
    pub fn new(size: usize, sink: F) -> Self {
        let size = size.max(1);
        Chunker {
            size,
            batch: Vec::with_capacity(size),
            sink,
        }
    }

    pub fn push(&mut self, item: T) {
        self.batch.push(item);
        if self.batch.len() >= self.size {
            let full = std::mem::replace(&mut self.batch, Vec::with_capacity(self.size));
            (self.sink)(full);
        }
    }

    /// The last, partial chunk.
    pub fn rest(self) -> Vec<T> {
        self.batch
    }
}

#[cfg(test)]
mod tests {
    use super::Chunker;

    fn chunked(size: usize, n: u32) -> (Vec<Vec<u32>>, Vec<u32>) {
        let mut full = Vec::new();
        let mut out = Chunker::new(size, |c| full.push(c));
        (0..n).for_each(|i| out.push(i));
        let rest = out.rest();
        (full, rest)
    }

    #[test]
    fn full_chunks_go_to_the_sink_and_the_rest_comes_back() {
        assert_eq!(chunked(2, 5), (vec![vec![0, 1], vec![2, 3]], vec![4]));
        // An exact multiple leaves no rest; size 0 means 1.
        assert_eq!(chunked(2, 4), (vec![vec![0, 1], vec![2, 3]], vec![]));
        assert_eq!(chunked(0, 2), (vec![vec![0], vec![1]], vec![]));
        assert_eq!(chunked(5, 3), (vec![], vec![0, 1, 2]));
    }
}
