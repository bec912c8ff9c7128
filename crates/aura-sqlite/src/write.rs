//! Writes: schema, insert, update, delete (with `on_delete` actions) and
//! upsert. Each runs atomically as a writer (`Session::write`).

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use aura_core::ir::{Filtered, Update, Upsert};
use aura_core::{Error, FieldKind, Key, ModelSchema, OnDelete, Result, Row, Value};
use aura_sql::integrity::{encode_keys, pk_column, pk_kind, referrers, still_referenced, Referrer};
use aura_sql::{Catalog, Dialect, OnConflict, UpsertPlan};

use crate::session::{params, Session};

const SQLITE: Dialect = Dialect::Sqlite;
const KEYS_PER_QUERY: usize = 10_000;

/// Registers the schemas and creates their tables and indexes.
pub fn create_schema(session: &mut Session, schemas: Vec<Arc<ModelSchema>>) -> Result<()> {
    {
        let mut catalog = session.shared.catalog.write();
        for schema in &schemas {
            catalog.insert(schema.name.clone(), schema.clone());
        }
    }
    let catalog = session.shared.catalog.read().clone();
    session.write(|s| {
        for schema in &schemas {
            for sql in aura_sql::create_table(SQLITE, schema, &catalog)? {
                s.conn.execute_batch(&sql).map_err(|e| s.error(e))?;
            }
            create_full_text(s, schema)?;
        }
        Ok(())
    })
}

/// The FTS5 tables and triggers of the `full_text=True` fields; a table
/// created now is filled from the rows already stored.
fn create_full_text(session: &Session, schema: &ModelSchema) -> Result<()> {
    for field in aura_sql::full_text_fields(schema) {
        let name = aura_sql::fts_table(schema, field);
        let existed = session
            .conn
            .query_row(
                "SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1)",
                [&name],
                |row| row.get::<_, bool>(0),
            )
            .map_err(|e| session.error(e))?;
        for sql in aura_sql::create_full_text(SQLITE, schema, field)? {
            session
                .conn
                .execute_batch(&sql)
                .map_err(|e| session.error(e))?;
        }
        if !existed {
            let fill = aura_sql::populate_fts(schema, field)?;
            session
                .conn
                .execute_batch(&fill)
                .map_err(|e| session.error(e))?;
        }
    }
    Ok(())
}

/// Drops the tables (data included) and forgets the schemas.
pub fn drop_schema(session: &mut Session, names: Vec<String>) -> Result<()> {
    let schemas: Vec<Arc<ModelSchema>> = names
        .iter()
        .filter_map(|n| session.shared.catalog.read().get(n).cloned())
        .collect();
    session.write(|s| {
        for schema in &schemas {
            let sql = aura_sql::drop_table(SQLITE, schema)?;
            s.conn.execute_batch(&sql).map_err(|e| s.error(e))?;
            for field in aura_sql::full_text_fields(schema) {
                let sql = aura_sql::drop_fts(schema, field)?;
                s.conn.execute_batch(&sql).map_err(|e| s.error(e))?;
            }
        }
        Ok(())
    })?;
    let mut catalog = session.shared.catalog.write();
    for name in &names {
        catalog.remove(name);
    }
    Ok(())
}

/// Inserts `rows` in one write transaction; returns rows written.
pub fn insert(session: &mut Session, model: &str, rows: Vec<Row>, mode: OnConflict) -> Result<u64> {
    let schema = session.schema(model)?;
    let sql = aura_sql::insert(SQLITE, &schema, mode)?;
    let pk = schema.pk_index();
    session.write(|s| {
        let mut stmt = s.conn.prepare_cached(&sql).map_err(|e| s.error(e))?;
        let mut written = 0u64;
        for row in &rows {
            if pk.is_some_and(|i| row[i].is_null()) || pk.is_none() {
                return Err(schema.missing_pk());
            }
            let values = aura_sql::encode_row(&schema, row)?;
            written += stmt.execute(params(&values)).map_err(|e| s.error(e))? as u64;
        }
        Ok(written)
    })
}

/// `UPDATE`; returns matched rows. A referenced row is never re-keyed.
pub fn update(session: &mut Session, q: &Update) -> Result<u64> {
    let schema = session.schema(&q.model)?;
    let stmt = aura_sql::update(SQLITE, &schema, q)?;
    let catalog = session.shared.catalog.read().clone();
    let by = referrers(&catalog, &q.model);
    session.write(|s| {
        for referrer in &by {
            let check = aura_sql::referenced_rekeys(
                SQLITE,
                &schema,
                q,
                &referrer.schema,
                &referrer.column,
            )?;
            if let Some(check) = check {
                if s.scalar(&check)? != 0 {
                    return Err(still_referenced(&q.model, referrer));
                }
            }
        }
        s.execute(&stmt)
    })
}

/// `DELETE`; returns matched rows (cascaded rows not counted). `on_delete`
/// actions run level by level, restrict checked last (as SQL checks at
/// statement end), all in one write transaction.
pub fn delete(session: &mut Session, q: &Filtered) -> Result<u64> {
    let schema = session.schema(&q.model)?;
    let catalog = session.shared.catalog.read().clone();
    if referrers(&catalog, &q.model)
        .iter()
        .all(|r| r.on_delete.is_none())
    {
        let stmt = aura_sql::delete(SQLITE, &schema, q)?;
        return session.with_deadline(q.timeout_ms, |s| s.write(|s| s.execute(&stmt)));
    }
    let select = aura_sql::select_keys(SQLITE, &schema, &q.filters)?;
    session.with_deadline(q.timeout_ms, |s| {
        s.write(|s| {
            let pk_kind = pk_kind(&schema)?;
            let keys = s.column(pk_kind, &select)?;
            let matched = keys.len() as u64;
            cascade(s, &catalog, schema.clone(), keys)?;
            Ok(matched)
        })
    })
}

fn cascade(
    s: &mut Session,
    catalog: &Catalog,
    root: Arc<ModelSchema>,
    keys: Vec<Value>,
) -> Result<()> {
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
            let stmt = aura_sql::delete_where_in(
                SQLITE,
                &schema.name,
                pk_column(&schema)?,
                encode_keys(kind, chunk)?,
            )?;
            s.execute(&stmt)?;
        }
        for by in referrers(catalog, &schema.name) {
            for chunk in keys.chunks(KEYS_PER_QUERY) {
                let bound = encode_keys(kind, chunk)?;
                match by.on_delete {
                    None => {}
                    Some(OnDelete::Restrict) => {}
                    Some(OnDelete::Cascade) => {
                        let stmt = aura_sql::keys_where_in(SQLITE, &by.schema, &by.column, bound)?;
                        let children = s.column(pk_kind(&by.schema)?, &stmt)?;
                        queue.push_back((by.schema.clone(), children));
                    }
                    Some(OnDelete::SetNull) => {
                        let stmt =
                            aura_sql::null_where_in(SQLITE, &by.schema.name, &by.column, bound)?;
                        s.execute(&stmt)?;
                    }
                }
            }
            if by.on_delete == Some(OnDelete::Restrict) {
                restricted.push((schema.name.clone(), by, keys.clone()));
            }
        }
    }
    for (model, by, keys) in restricted {
        let kind = FieldKind::Link;
        for chunk in keys.chunks(KEYS_PER_QUERY) {
            let stmt = aura_sql::exists_where_in(
                SQLITE,
                &by.schema.name,
                &by.column,
                encode_keys(kind, chunk)?,
            )?;
            if s.scalar(&stmt)? != 0 {
                return Err(still_referenced(&model, &by));
            }
        }
    }
    Ok(())
}

/// Atomic upsert (API.md §16 row 36): matched on every key field. `row`
/// is inserted when nothing matches; `None` back means nothing matched
/// and no row could be built.
pub fn upsert(session: &mut Session, q: &Upsert, row: Option<Row>) -> Result<Option<Row>> {
    let schema = session.schema(&q.model)?;
    if let Some(row) = &row {
        if schema.pk_index().is_some_and(|i| row[i].is_null()) {
            return Err(schema.missing_pk());
        }
    }
    let plan = aura_sql::upsert(SQLITE, &schema, q, row.as_deref())?;
    session.write(|s| match plan {
        UpsertPlan::Atomic(stmt) => Ok(s.rows(&schema, &stmt)?.into_iter().next()),
        UpsertPlan::UpdateThenInsert { update, insert } => {
            if let Some(updated) = s.rows(&schema, &update)?.into_iter().next() {
                return Ok(Some(updated));
            }
            let Some(row) = row else {
                return Ok(None);
            };
            let values = aura_sql::encode_row(&schema, &row)?;
            let mut stmt = s.conn.prepare_cached(&insert).map_err(|e| s.error(e))?;
            stmt.execute(params(&values)).map_err(|e| s.error(e))?;
            Ok(Some(row))
        }
        UpsertPlan::WriteThenRead { .. } => Err(Error::new(
            aura_core::ErrorCode::DialectError,
            "a MySQL upsert plan cannot run on SQLite",
        )),
    })
}
