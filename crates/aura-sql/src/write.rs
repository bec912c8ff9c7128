//! Writes: insert (with `on_conflict`), update, delete, atomic upsert, and
//! the key-set statements a driver runs for `on_delete` actions.

use aura_core::ir::{Expr, Filtered, Update, Upsert};
use aura_core::{Error, FieldDef, ModelSchema, Result, Value};
use serde_json::{Map, Value as Json};

use crate::codec::{encode, SqlValue};
use crate::dialect::Dialect;
use crate::filter::{self, resolve_field};
use crate::query::pk_storage;
use crate::sql::{Sql, Statement};

/// What an insert does when the primary key (or a unique value) exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnConflict {
    Error,
    Ignore,
    Replace,
}

impl OnConflict {
    pub fn parse(mode: Option<&str>) -> Result<OnConflict> {
        match mode {
            None => Ok(OnConflict::Error),
            Some("ignore") => Ok(OnConflict::Ignore),
            Some("replace") => Ok(OnConflict::Replace),
            Some(other) => Err(Error::query(format!(
                "on_conflict must be None, 'ignore' or 'replace', got '{other}'"
            ))),
        }
    }
}

fn column_list(sql: &mut Sql, fields: &[FieldDef]) -> Result<()> {
    sql.push("(");
    for (i, field) in fields.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.ident(&field.storage)?;
    }
    sql.push(")");
    Ok(())
}

/// Sets every non-key column from the conflicting insert's values.
fn set_excluded(sql: &mut Sql, schema: &ModelSchema, keys: &[&str]) -> Result<()> {
    let mut first = true;
    for field in &schema.fields {
        if keys.contains(&field.storage.as_str()) {
            continue;
        }
        sql.push(if first { " " } else { ", " });
        first = false;
        let col = sql.dialect.quote(&field.storage)?;
        match sql.dialect {
            Dialect::Mysql => sql.push(&format!("{col} = VALUES({col})")),
            _ => sql.push(&format!("{col} = excluded.{col}")),
        };
    }
    if first {
        // Nothing but keys: a no-op assignment keeps the statement valid.
        let col = sql
            .dialect
            .quote(keys.first().copied().unwrap_or_default())?;
        sql.push(&format!(" {col} = {col}"));
    }
    Ok(())
}

/// `INSERT` of one row in field order; the driver binds `encode_row` per row.
pub fn insert(dialect: Dialect, schema: &ModelSchema, mode: OnConflict) -> Result<String> {
    let mut sql = Sql::new(dialect);
    let ignore = mode == OnConflict::Ignore;
    sql.push(if ignore && dialect == Dialect::Mysql {
        "INSERT IGNORE INTO "
    } else {
        "INSERT INTO "
    });
    sql.ident(&schema.name)?.push(" ");
    column_list(&mut sql, &schema.fields)?;
    sql.push(" VALUES (");
    for i in 0..schema.fields.len() {
        if i > 0 {
            sql.push(", ");
        }
        sql.push(&dialect.placeholder(i + 1));
    }
    sql.push(")");
    match (mode, dialect) {
        (OnConflict::Error, _) | (OnConflict::Ignore, Dialect::Mysql) => {}
        (OnConflict::Ignore, _) => {
            sql.push(" ON CONFLICT DO NOTHING");
        }
        (OnConflict::Replace, Dialect::Mysql) => {
            sql.push(" ON DUPLICATE KEY UPDATE");
            set_excluded(&mut sql, schema, &[pk_storage(schema)?])?;
        }
        (OnConflict::Replace, _) => {
            let pk = pk_storage(schema)?;
            sql.push(" ON CONFLICT (")
                .ident(pk)?
                .push(") DO UPDATE SET");
            set_excluded(&mut sql, schema, &[pk])?;
        }
    }
    Ok(sql.finish().sql)
}

/// A row's parameters in field order.
pub fn encode_row(schema: &ModelSchema, row: &[Value]) -> Result<Vec<SqlValue>> {
    schema
        .fields
        .iter()
        .zip(row)
        .map(|(field, value)| encode(field.kind, value))
        .collect()
}

/// `set()` values bound to their fields, with the memory engine's checks.
fn assignments<'s>(
    schema: &'s ModelSchema,
    set: &Map<String, Json>,
) -> Result<Vec<(&'s FieldDef, SqlValue)>> {
    set.iter()
        .map(|(name, json)| {
            let field = schema.field(name).ok_or_else(|| {
                Error::query(format!("{} has no field '{name}'", schema.name))
                    .with_context("model", schema.name.as_str())
                    .with_context("field", name.as_str())
            })?;
            let value = Value::from_json(json, field.kind).map_err(|_| {
                Error::validation(format!(
                    "Invalid value for {}.{}: expected {}",
                    schema.name,
                    field.attr,
                    field.kind.as_str()
                ))
                .with_context("field", field.attr.as_str())
            })?;
            Ok((field, encode(field.kind, &value)?))
        })
        .collect()
}

fn set_clause(sql: &mut Sql, assigned: Vec<(&FieldDef, SqlValue)>) -> Result<()> {
    sql.push(" SET ");
    assign_list(sql, assigned)
}

/// `col = ?, ...` (after `SET`, or MySQL's `ON DUPLICATE KEY UPDATE`).
fn assign_list(sql: &mut Sql, assigned: Vec<(&FieldDef, SqlValue)>) -> Result<()> {
    for (i, (field, value)) in assigned.into_iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.ident(&field.storage)?.push(" = ").bind(value);
    }
    Ok(())
}

/// `UPDATE ... SET ... WHERE ...`; drivers report matched rows.
pub fn update(dialect: Dialect, schema: &ModelSchema, q: &Update) -> Result<Statement> {
    if q.set.is_empty() {
        return Err(Error::query(
            "update requires at least one set() assignment",
        ));
    }
    let assigned = assignments(schema, &q.set)?;
    let mut sql = Sql::new(dialect);
    sql.push("UPDATE ").ident(&schema.name)?;
    set_clause(&mut sql, assigned)?;
    sql.push(" WHERE ");
    filter::compile(&mut sql, schema, &q.filters)?;
    Ok(sql.finish())
}

/// For an update that assigns the primary key: does any row matching
/// `filters` get a new key while `referrer.column` still points at it?
/// (A referenced row is never re-keyed, as in the memory engine.)
pub fn referenced_rekeys(
    dialect: Dialect,
    schema: &ModelSchema,
    q: &Update,
    referrer: &ModelSchema,
    column: &str,
) -> Result<Option<Statement>> {
    let pk = pk_storage(schema)?;
    let Some(new_key) = q
        .set
        .iter()
        .find(|(name, _)| schema.field(name).map(|f| f.storage.as_str()) == Some(pk))
        .map(|(_, json)| json)
    else {
        return Ok(None);
    };
    let mut filters = q.filters.clone();
    filters.push(Expr::compare(
        aura_core::ir::CompareOp::Ne,
        Expr::field(&schema.name, pk),
        Expr::literal(new_key.clone()),
    ));
    let mut sql = Sql::new(dialect);
    sql.push("SELECT EXISTS (SELECT 1 FROM ")
        .ident(&referrer.name)?
        .push(" WHERE ")
        .ident(column)?
        .push(" IN (SELECT ")
        .ident(pk)?
        .push(" FROM ")
        .ident(&schema.name)?
        .push(" WHERE ");
    filter::compile(&mut sql, schema, &filters)?;
    sql.push("))");
    Ok(Some(sql.finish()))
}

pub fn delete(dialect: Dialect, schema: &ModelSchema, q: &Filtered) -> Result<Statement> {
    let mut sql = Sql::new(dialect);
    sql.push("DELETE FROM ")
        .ident(&schema.name)?
        .push(" WHERE ");
    filter::compile(&mut sql, schema, &q.filters)?;
    Ok(sql.finish())
}

fn where_in(sql: &mut Sql, column: &str, keys: Vec<SqlValue>) -> Result<()> {
    sql.push(" WHERE ")
        .ident(column)?
        .push(" IN ")
        .bind_list(keys);
    Ok(())
}

/// `DELETE FROM t WHERE column IN (keys)`.
pub fn delete_where_in(
    dialect: Dialect,
    table: &str,
    column: &str,
    keys: Vec<SqlValue>,
) -> Result<Statement> {
    let mut sql = Sql::new(dialect);
    sql.push("DELETE FROM ").ident(table)?;
    where_in(&mut sql, column, keys)?;
    Ok(sql.finish())
}

/// `UPDATE t SET column = NULL WHERE column IN (keys)` (`set_null`).
pub fn null_where_in(
    dialect: Dialect,
    table: &str,
    column: &str,
    keys: Vec<SqlValue>,
) -> Result<Statement> {
    let mut sql = Sql::new(dialect);
    sql.push("UPDATE ")
        .ident(table)?
        .push(" SET ")
        .ident(column)?
        .push(" = NULL");
    where_in(&mut sql, column, keys)?;
    Ok(sql.finish())
}

/// `SELECT pk FROM t WHERE column IN (keys)` (`cascade`).
pub fn keys_where_in(
    dialect: Dialect,
    schema: &ModelSchema,
    column: &str,
    keys: Vec<SqlValue>,
) -> Result<Statement> {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT ")
        .ident(pk_storage(schema)?)?
        .push(" FROM ")
        .ident(&schema.name)?;
    where_in(&mut sql, column, keys)?;
    Ok(sql.finish())
}

/// `SELECT EXISTS (... WHERE column IN (keys))` (`restrict`).
pub fn exists_where_in(
    dialect: Dialect,
    table: &str,
    column: &str,
    keys: Vec<SqlValue>,
) -> Result<Statement> {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT EXISTS (SELECT 1 FROM ").ident(table)?;
    where_in(&mut sql, column, keys)?;
    sql.push(")");
    Ok(sql.finish())
}

/// Upsert plans: one atomic `INSERT ... ON CONFLICT (key) DO UPDATE ...
/// RETURNING` when the key is the primary key or one unique field;
/// otherwise an `UPDATE ... RETURNING` that the driver follows with an
/// insert inside the same write transaction. MySQL has no `RETURNING`:
/// `WriteThenRead` writes (`INSERT ... ON DUPLICATE KEY UPDATE`, or an
/// `UPDATE` followed by `insert` when it matched nothing) and reads the
/// stored row back by its key, all in one atomic section.
#[derive(Debug, Clone, PartialEq)]
pub enum UpsertPlan {
    Atomic(Statement),
    UpdateThenInsert {
        update: Statement,
        insert: String,
    },
    WriteThenRead {
        write: Statement,
        insert: Option<String>,
        read: Statement,
    },
}

fn returning(sql: &mut Sql, schema: &ModelSchema) -> Result<()> {
    sql.push(" RETURNING ");
    for (i, field) in schema.fields.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.ident(&field.storage)?;
    }
    Ok(())
}

/// Key columns and their encoded values, validated like filters.
fn key_filters(schema: &ModelSchema, key: &Map<String, Json>) -> Result<Vec<Expr>> {
    if key.is_empty() {
        return Err(Error::query("upsert requires at least one key field"));
    }
    key.iter()
        .map(|(name, value)| {
            let resolved = resolve_field(schema, name, None)?;
            Ok(Expr::compare(
                aura_core::ir::CompareOp::Eq,
                Expr::field(&schema.name, &resolved.field.storage),
                Expr::literal(value.clone()),
            ))
        })
        .collect()
}

/// An upsert matching on every `key` field; `row` is the row to insert
/// when nothing matches (`None`: the caller could not build one).
pub fn upsert(
    dialect: Dialect,
    schema: &ModelSchema,
    q: &Upsert,
    row: Option<&[Value]>,
) -> Result<UpsertPlan> {
    let filters = key_filters(schema, &q.key)?;
    let assigned = assignments(schema, &q.values)?;
    let key_cols: Vec<&str> = q
        .key
        .keys()
        .filter_map(|name| schema.field(name).map(|f| f.storage.as_str()))
        .collect();
    let single_unique = match key_cols.as_slice() {
        [one] => schema
            .field(one)
            .is_some_and(|f| f.unique || Some(f.storage.as_str()) == pk_storage(schema).ok()),
        _ => false,
    };
    match row {
        Some(row) if single_unique && dialect != Dialect::Mysql => {
            let mut sql = Sql::new(dialect);
            sql.push("INSERT INTO ").ident(&schema.name)?.push(" ");
            column_list(&mut sql, &schema.fields)?;
            sql.push(" VALUES ").bind_list(encode_row(schema, row)?);
            sql.push(" ON CONFLICT (")
                .ident(key_cols[0])?
                .push(") DO UPDATE");
            if assigned.is_empty() {
                let col = dialect.quote(key_cols[0])?;
                sql.push(&format!(" SET {col} = excluded.{col}"));
            } else {
                set_clause(&mut sql, assigned)?;
            }
            returning(&mut sql, schema)?;
            Ok(UpsertPlan::Atomic(sql.finish()))
        }
        _ if dialect == Dialect::Mysql => {
            mysql_upsert(schema, &filters, assigned, &key_cols, row, single_unique)
        }
        _ => {
            let mut sql = Sql::new(dialect);
            sql.push("UPDATE ").ident(&schema.name)?;
            if assigned.is_empty() {
                let col = dialect.quote(key_cols.first().copied().unwrap_or_default())?;
                sql.push(&format!(" SET {col} = {col}"));
            } else {
                set_clause(&mut sql, assigned)?;
            }
            sql.push(" WHERE ");
            filter::compile(&mut sql, schema, &filters)?;
            returning(&mut sql, schema)?;
            Ok(UpsertPlan::UpdateThenInsert {
                update: sql.finish(),
                insert: insert(dialect, schema, OnConflict::Error)?,
            })
        }
    }
}

/// `SELECT` of the row an upsert matched, by its key fields (the first in
/// primary-key order when several match).
fn read_back(schema: &ModelSchema, filters: &[Expr]) -> Result<Statement> {
    let mut sql = Sql::new(Dialect::Mysql);
    sql.push("SELECT ");
    for (i, field) in schema.fields.iter().enumerate() {
        if i > 0 {
            sql.push(", ");
        }
        sql.ident(&field.storage)?;
    }
    sql.push(" FROM ").ident(&schema.name)?.push(" WHERE ");
    filter::compile(&mut sql, schema, filters)?;
    sql.push(" ORDER BY ")
        .ident(pk_storage(schema)?)?
        .push(" LIMIT 1");
    Ok(sql.finish())
}

/// MySQL's upsert: with a row and a single unique key, one
/// `INSERT ... ON DUPLICATE KEY UPDATE` (atomic on its own); otherwise an
/// `UPDATE` then, when it matched nothing, the insert. Either way the
/// stored row is read back by its key.
fn mysql_upsert(
    schema: &ModelSchema,
    filters: &[Expr],
    assigned: Vec<(&FieldDef, SqlValue)>,
    key_cols: &[&str],
    row: Option<&[Value]>,
    single_unique: bool,
) -> Result<UpsertPlan> {
    let dialect = Dialect::Mysql;
    let read = read_back(schema, filters)?;
    let key_col = dialect.quote(key_cols.first().copied().unwrap_or_default())?;
    let mut sql = Sql::new(dialect);
    match row {
        Some(row) if single_unique => {
            sql.push("INSERT INTO ").ident(&schema.name)?.push(" ");
            column_list(&mut sql, &schema.fields)?;
            sql.push(" VALUES ").bind_list(encode_row(schema, row)?);
            sql.push(" ON DUPLICATE KEY UPDATE ");
            if assigned.is_empty() {
                sql.push(&format!("{key_col} = {key_col}"));
            } else {
                assign_list(&mut sql, assigned)?;
            }
            Ok(UpsertPlan::WriteThenRead {
                write: sql.finish(),
                insert: None,
                read,
            })
        }
        _ => {
            sql.push("UPDATE ").ident(&schema.name)?;
            if assigned.is_empty() {
                sql.push(&format!(" SET {key_col} = {key_col}"));
            } else {
                set_clause(&mut sql, assigned)?;
            }
            sql.push(" WHERE ");
            filter::compile(&mut sql, schema, filters)?;
            Ok(UpsertPlan::WriteThenRead {
                write: sql.finish(),
                insert: row
                    .map(|_| insert(dialect, schema, OnConflict::Error))
                    .transpose()?,
                read,
            })
        }
    }
}
