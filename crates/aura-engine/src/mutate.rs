//! Write statements. Each runs on a private clone of the tables (O(1) with
//! persistent maps) that replaces the original only on success, so every
//! statement is all-or-nothing.

use std::collections::HashSet;
use std::sync::Arc;

use aura_core::ir::{CompareOp, Expr, Filtered, Update, Upsert};
use aura_core::{Error, Key, ModelSchema, Result, Row, Value};
use serde_json::{Map, Value as Json};

use crate::deadline::Deadline;
use crate::field_access::no_field;
use crate::references;
use crate::select::{matching_rows, Matcher};
use crate::table::{duplicate_pk, lookup, lookup_mut, Tables};
use crate::write_log::WriteLog;

/// What an insert does with a row whose primary key already exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum OnConflict {
    #[default]
    Error,
    /// Skip rows clashing on the primary key or a unique field.
    Ignore,
    /// Overwrite the row with the same primary key.
    Replace,
}

impl OnConflict {
    /// The IR's `on_conflict`: absent, `"ignore"` or `"replace"`.
    pub fn parse(value: Option<&str>) -> Result<OnConflict> {
        match value {
            None => Ok(OnConflict::Error),
            Some("ignore") => Ok(OnConflict::Ignore),
            Some("replace") => Ok(OnConflict::Replace),
            Some(_) => Err(Error::query(
                "on_conflict must be None, 'ignore' or 'replace'",
            )),
        }
    }
}

pub(crate) fn insert(
    tables: &mut Tables,
    log: &mut WriteLog,
    model: &str,
    rows: Vec<Row>,
    on_conflict: OnConflict,
) -> Result<u64> {
    let table = lookup_mut(tables, model)?;
    let mut written = 0;
    for row in rows {
        let pk = table.validate(&row)?;
        if table.rows.contains_key(&pk) {
            match on_conflict {
                OnConflict::Error => return Err(duplicate_pk(&table.schema)),
                OnConflict::Ignore => continue,
                OnConflict::Replace => {
                    table.remove(&pk);
                }
            }
        }
        if on_conflict == OnConflict::Ignore && table.unique_conflict(&row, &pk).is_some() {
            continue;
        }
        table.insert(row, pk.clone())?;
        log.record(model, &pk);
        written += 1;
    }
    Ok(written)
}

/// `set` values bound to their fields' kinds.
type Assignments = Vec<(usize, Value)>;

fn compile_set(schema: &ModelSchema, set: &Map<String, Json>) -> Result<Assignments> {
    set.iter()
        .map(|(name, json)| {
            let pos = schema
                .field_index(name)
                .ok_or_else(|| no_field(schema, name))?;
            let field = &schema.fields[pos];
            let value = Value::from_json(json, field.kind).map_err(|_| {
                Error::validation(format!(
                    "Invalid value for {}.{}: expected {}",
                    schema.name,
                    field.attr,
                    field.kind.as_str()
                ))
                .with_context("field", field.attr.as_str())
            })?;
            Ok((pos, value))
        })
        .collect()
}

fn assigned(row: &Row, assignments: &Assignments) -> Row {
    let mut values = row.to_vec();
    for (pos, value) in assignments {
        values[*pos] = value.clone();
    }
    Arc::from(values)
}

/// Rewrites `matched` rows of `model`; returns their (possibly new) keys.
/// All old rows go first, so values may move between matched rows.
fn apply_update(
    tables: &mut Tables,
    log: &mut WriteLog,
    model: &str,
    matched: Vec<Row>,
    assignments: &Assignments,
) -> Result<Vec<Key>> {
    let table = lookup(tables, model)?;
    let old: Vec<(Key, Row)> = matched.into_iter().map(|r| (table.pk_of(&r), r)).collect();
    let new_rows: Vec<Row> = old.iter().map(|(_, r)| assigned(r, assignments)).collect();
    let rekeyed: HashSet<Key> = old
        .iter()
        .zip(&new_rows)
        .filter(|((pk, _), row)| *pk != table.pk_of(row))
        .map(|((pk, _), _)| pk.clone())
        .collect();
    references::check_unreferenced(tables, model, &rekeyed, &Deadline::none())?;
    let table = lookup_mut(tables, model)?;
    for (pk, _) in &old {
        table.remove(pk);
        log.record(model, pk);
    }
    let mut keys = Vec::with_capacity(new_rows.len());
    for row in new_rows {
        let pk = table.validate(&row)?;
        if table.rows.contains_key(&pk) {
            return Err(duplicate_pk(&table.schema));
        }
        table.insert(row, pk.clone())?;
        log.record(model, &pk);
        keys.push(pk);
    }
    Ok(keys)
}

/// Returns the number of matched rows.
pub(crate) fn update(tables: &mut Tables, log: &mut WriteLog, q: &Update) -> Result<u64> {
    let table = lookup(tables, &q.model)?;
    if q.set.is_empty() {
        return Err(Error::query(
            "update requires at least one set() assignment",
        ));
    }
    let assignments = compile_set(&table.schema, &q.set)?;
    let matched = matching_rows(tables, &q.model, &q.filters, &Deadline::none())?;
    let n = matched.len() as u64;
    if n > 0 {
        apply_update(tables, log, &q.model, matched, &assignments)?;
    }
    Ok(n)
}

/// Returns the number of matched rows (cascaded deletions not counted).
pub(crate) fn delete(tables: &mut Tables, log: &mut WriteLog, q: &Filtered) -> Result<u64> {
    let deadline = Deadline::new(q.timeout_ms);
    let table = lookup(tables, &q.model)?;
    let matched = Matcher::new(table, &q.filters)?.collect(&deadline)?;
    let pks: Vec<Key> = matched.into_iter().map(|row| table.pk_of(row)).collect();
    let n = pks.len() as u64;
    references::delete_cascading(tables, log, &q.model, pks, &deadline)?;
    Ok(n)
}

/// Updates rows matching every key field, or inserts `insert_row`.
pub(crate) fn upsert(
    tables: &mut Tables,
    log: &mut WriteLog,
    q: &Upsert,
    insert_row: Option<Row>,
) -> Result<Option<Row>> {
    if q.key.is_empty() {
        return Err(Error::query("upsert requires at least one key field"));
    }
    let table = lookup(tables, &q.model)?;
    let assignments = compile_set(&table.schema, &q.values)?;
    let filters: Vec<Expr> = q
        .key
        .iter()
        .map(|(name, value)| {
            Expr::compare(
                CompareOp::Eq,
                Expr::field(&q.model, name),
                Expr::literal(value.clone()),
            )
        })
        .collect();
    let matched = matching_rows(tables, &q.model, &filters, &Deadline::none())?;
    if matched.is_empty() {
        let Some(row) = insert_row else {
            return Ok(None);
        };
        insert(tables, log, &q.model, vec![row.clone()], OnConflict::Error)?;
        return Ok(Some(row));
    }
    if assignments.is_empty() {
        return Ok(matched.into_iter().next());
    }
    let keys = apply_update(tables, log, &q.model, matched, &assignments)?;
    let table = lookup(tables, &q.model)?;
    Ok(keys.first().and_then(|pk| table.rows.get(pk).cloned()))
}
