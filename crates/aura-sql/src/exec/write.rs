//! Writes: schema, insert, update, delete (with `on_delete` actions) and
//! upsert. Each request that needs several statements runs atomically
//! (a transaction, or a savepoint inside a user transaction).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use aura_core::ir::{Filtered, Update, Upsert};
use aura_core::{FieldKind, Key, ModelSchema, OnDelete, Result, Row, Value};

use super::{Executor, Need, RowFeed, Stored, KEYS_PER_QUERY};
use crate::integrity::{encode_keys, pk_column, pk_kind, referrers, still_referenced, Referrer};
use crate::{OnConflict, SqlConnection, Statement, UpsertPlan};

impl<C: SqlConnection> Executor<'_, C> {
    /// Creates the tables and indexes of `schemas` (already in the catalog).
    pub async fn create_schema(&mut self, schemas: &[Arc<ModelSchema>]) -> Result<()> {
        let mut statements = Vec::new();
        for schema in schemas {
            statements.extend(crate::create_table(C::DIALECT, schema, self.catalog)?);
        }
        let section = self.enter(Need::Atomic, None).await?;
        let result = self.run_all(&statements).await;
        self.leave(section, None, result).await
    }

    /// Drops the tables of `schemas`, data included.
    pub async fn drop_schema(&mut self, schemas: &[Arc<ModelSchema>]) -> Result<()> {
        let statements = schemas
            .iter()
            .map(|s| crate::drop_table(C::DIALECT, s))
            .collect::<Result<Vec<_>>>()?;
        let section = self.enter(Need::Atomic, None).await?;
        let result = self.run_all(&statements).await;
        self.leave(section, None, result).await
    }

    async fn run_all(&mut self, statements: &[String]) -> Result<()> {
        for sql in statements {
            self.conn.batch(sql).await?;
        }
        Ok(())
    }

    /// Inserts `rows` atomically; returns rows written.
    pub async fn insert(&mut self, model: &str, rows: &[Row], mode: OnConflict) -> Result<u64> {
        let schema = self.schema(model)?;
        let pk = schema.pk_index().ok_or_else(|| schema.missing_pk())?;
        if rows.iter().any(|row| row[pk].is_null()) {
            return Err(schema.missing_pk());
        }
        if rows.is_empty() {
            return Ok(0);
        }
        let section = self.enter(Need::Atomic, None).await?;
        let result = self.conn.insert_rows(&schema, mode, rows).await;
        self.leave(section, None, result).await
    }

    /// `insert` of `rows` and then of every chunk `rest` brings, in one
    /// atomic section: the driver writes while the caller converts.
    pub async fn insert_fed(
        &mut self,
        model: &str,
        rows: Vec<Row>,
        mode: OnConflict,
        rest: &mut RowFeed,
    ) -> Result<u64> {
        let schema = self.schema(model)?;
        let pk = schema.pk_index().ok_or_else(|| schema.missing_pk())?;
        let mut feed = KeyedFeed {
            first: Some(rows),
            rest,
            pk,
            schema: &schema,
        };
        let section = self.enter(Need::Atomic, None).await?;
        let result = self.conn.insert_fed(&schema, mode, &mut feed).await;
        self.leave(section, None, result).await
    }

    /// `UPDATE`; returns matched rows. A referenced row is never re-keyed.
    pub async fn update(&mut self, q: &Update) -> Result<u64> {
        let schema = self.schema(&q.model)?;
        let stmt = crate::update(C::DIALECT, &schema, q)?;
        let mut checks = Vec::new();
        for referrer in referrers(self.catalog, &q.model) {
            let check = crate::referenced_rekeys(
                C::DIALECT,
                &schema,
                q,
                &referrer.schema,
                &referrer.column,
            )?;
            if let Some(check) = check {
                checks.push((check, referrer));
            }
        }
        let need = if checks.is_empty() {
            Need::Single
        } else {
            Need::Atomic
        };
        let section = self.enter(need, None).await?;
        let result = self.update_in(&q.model, &checks, &stmt).await;
        self.leave(section, None, result).await
    }

    async fn update_in(
        &mut self,
        model: &str,
        checks: &[(Statement, Referrer)],
        stmt: &Statement,
    ) -> Result<u64> {
        for (check, referrer) in checks {
            if self.conn.scalar(check).await? != 0 {
                return Err(still_referenced(model, referrer));
            }
        }
        self.conn.execute(stmt).await
    }

    /// `DELETE`; returns matched rows (cascaded rows not counted).
    /// `on_delete` actions run level by level, restrict checked last (as
    /// SQL checks at statement end), all atomically.
    pub async fn delete(&mut self, q: &Filtered) -> Result<u64> {
        let schema = self.schema(&q.model)?;
        let plain = referrers(self.catalog, &q.model)
            .iter()
            .all(|r| r.on_delete.is_none());
        if plain {
            let stmt = crate::delete(C::DIALECT, &schema, q)?;
            let section = self.enter(Need::Single, q.timeout_ms).await?;
            let result = self.conn.execute(&stmt).await;
            return self.leave(section, q.timeout_ms, result).await;
        }
        let select = crate::select_keys(C::DIALECT, &schema, &q.filters)?;
        let section = self.enter(Need::Atomic, q.timeout_ms).await?;
        let result = self.delete_in(schema, &select).await;
        self.leave(section, q.timeout_ms, result).await
    }

    async fn delete_in(&mut self, schema: Arc<ModelSchema>, select: &Statement) -> Result<u64> {
        let keys = self.conn.column(pk_kind(&schema)?, select).await?;
        let matched = keys.len() as u64;
        self.cascade(schema, keys).await?;
        Ok(matched)
    }

    async fn cascade(&mut self, root: Arc<ModelSchema>, keys: Vec<Value>) -> Result<()> {
        let mut queue = VecDeque::from([(root, keys)]);
        let mut restricted: Vec<(String, Referrer, Vec<Value>)> = Vec::new();
        while let Some((schema, keys)) = queue.pop_front() {
            let mut seen = HashSet::new();
            let keys: Vec<Value> = keys
                .into_iter()
                .filter(|k| seen.insert(Key(k.clone())))
                .collect();
            if keys.is_empty() {
                continue;
            }
            let kind = pk_kind(&schema)?;
            for chunk in keys.chunks(KEYS_PER_QUERY) {
                let stmt = crate::delete_where_in(
                    C::DIALECT,
                    &schema.name,
                    pk_column(&schema)?,
                    encode_keys(kind, chunk)?,
                )?;
                self.conn.execute(&stmt).await?;
            }
            for by in referrers(self.catalog, &schema.name) {
                match by.on_delete {
                    None => {}
                    Some(OnDelete::Restrict) => {
                        restricted.push((schema.name.clone(), by, keys.clone()));
                    }
                    Some(OnDelete::Cascade) => {
                        let children = self.children(&by, kind, &keys).await?;
                        queue.push_back((by.schema.clone(), children));
                    }
                    Some(OnDelete::SetNull) => {
                        for chunk in keys.chunks(KEYS_PER_QUERY) {
                            let stmt = crate::null_where_in(
                                C::DIALECT,
                                &by.schema.name,
                                &by.column,
                                encode_keys(kind, chunk)?,
                            )?;
                            self.conn.execute(&stmt).await?;
                        }
                    }
                }
            }
        }
        for (model, by, keys) in restricted {
            for chunk in keys.chunks(KEYS_PER_QUERY) {
                let stmt = crate::exists_where_in(
                    C::DIALECT,
                    &by.schema.name,
                    &by.column,
                    encode_keys(FieldKind::Link, chunk)?,
                )?;
                if self.conn.scalar(&stmt).await? != 0 {
                    return Err(still_referenced(&model, &by));
                }
            }
        }
        Ok(())
    }

    /// Primary keys of `by`'s rows pointing at `keys` (cascade).
    async fn children(
        &mut self,
        by: &Referrer,
        kind: FieldKind,
        keys: &[Value],
    ) -> Result<Vec<Value>> {
        let child_kind = pk_kind(&by.schema)?;
        let mut out = Vec::new();
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let stmt = crate::keys_where_in(
                C::DIALECT,
                &by.schema,
                &by.column,
                encode_keys(kind, chunk)?,
            )?;
            out.extend(self.conn.column(child_kind, &stmt).await?);
        }
        Ok(out)
    }

    /// Atomic upsert (API.md §16 row 36): matched on every key field. `row`
    /// is inserted when nothing matches; `None` back means nothing matched
    /// and no row could be built.
    pub async fn upsert(&mut self, q: &Upsert, row: Option<Row>) -> Result<Stored> {
        let schema = self.schema(&q.model)?;
        if let Some(row) = &row {
            if schema.pk_index().is_none_or(|i| row[i].is_null()) {
                return Err(schema.missing_pk());
            }
        }
        let plan = crate::upsert(C::DIALECT, &schema, q, row.as_deref())?;
        let need = match plan {
            UpsertPlan::Atomic(_) => Need::Single,
            UpsertPlan::UpdateThenInsert { .. } | UpsertPlan::WriteThenRead { .. } => Need::Atomic,
        };
        let section = self.enter(need, None).await?;
        let result = self.upsert_in(&schema, plan, row).await;
        self.leave(section, None, result).await
    }

    async fn upsert_in(
        &mut self,
        schema: &ModelSchema,
        plan: UpsertPlan,
        row: Option<Row>,
    ) -> Result<Stored> {
        match plan {
            UpsertPlan::Atomic(stmt) => Ok(self.conn.rows(schema, &stmt).await?.into_iter().next()),
            UpsertPlan::UpdateThenInsert { update, insert } => {
                if let Some(updated) = self.conn.rows(schema, &update).await?.into_iter().next() {
                    return Ok(Some(updated));
                }
                let Some(row) = row else {
                    return Ok(None);
                };
                let stmt = Statement {
                    sql: insert,
                    params: crate::encode_row(schema, &row)?,
                };
                self.conn.execute(&stmt).await?;
                Ok(Some(row))
            }
            UpsertPlan::WriteThenRead {
                write,
                insert,
                read,
            } => {
                let matched = self.conn.execute(&write).await?;
                if let (0, Some(insert), Some(row)) = (matched, insert, row) {
                    let stmt = Statement {
                        sql: insert,
                        params: crate::encode_row(schema, &row)?,
                    };
                    self.conn.execute(&stmt).await?;
                    return Ok(Some(row));
                }
                Ok(self.conn.rows(schema, &read).await?.into_iter().next())
            }
        }
    }
}

/// An insert's rows, chunk by chunk, each checked to carry its primary key.
pub struct KeyedFeed<'a> {
    first: Option<Vec<Row>>,
    rest: &'a mut RowFeed,
    pk: usize,
    schema: &'a ModelSchema,
}

impl KeyedFeed<'_> {
    /// The next chunk, `None` after the last.
    pub async fn next(&mut self) -> Result<Option<Vec<Row>>> {
        let chunk = match self.first.take() {
            Some(rows) => Some(rows),
            None => self.rest.next().await?,
        };
        if let Some(rows) = &chunk {
            if rows.iter().any(|row| row[self.pk].is_null()) {
                return Err(self.schema.missing_pk());
            }
        }
        Ok(chunk)
    }

    /// Every remaining row, in order.
    pub async fn gather(&mut self) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        while let Some(chunk) = self.next().await? {
            rows.extend(chunk);
        }
        Ok(rows)
    }
}
