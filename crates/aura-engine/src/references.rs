//! Foreign keys between tables: `on_delete` actions when target rows are
//! deleted, and the guard against re-keying a referenced row.

use std::collections::{HashSet, VecDeque};
use std::sync::Arc;

use aura_core::{Error, FieldDef, FieldKind, Key, OnDelete, Result, Value};

use crate::deadline::Deadline;
use crate::table::{lookup, lookup_mut, Tables};
use crate::write_log::WriteLog;

/// A link field of some table pointing at a given model.
#[derive(Debug, Clone)]
pub(crate) struct Referrer {
    table: String,
    pos: usize,
    attr: String,
    on_delete: Option<OnDelete>,
}

/// Every link field targeting `model`, in a stable order.
fn referrers(tables: &Tables, model: &str) -> Vec<Referrer> {
    let mut found: Vec<Referrer> = tables
        .values()
        .flat_map(|t| {
            let targets_model =
                |f: &&FieldDef| f.kind == FieldKind::Link && f.target.as_deref() == Some(model);
            t.schema
                .fields
                .iter()
                .enumerate()
                .filter(move |(_, f)| targets_model(f))
                .map(|(pos, f)| Referrer {
                    table: t.schema.name.clone(),
                    pos,
                    attr: f.attr.clone(),
                    on_delete: f.on_delete,
                })
        })
        .collect();
    found.sort_by(|a, b| a.table.cmp(&b.table).then(a.pos.cmp(&b.pos)));
    found
}

fn still_referenced(model: &str, by: &Referrer) -> Error {
    Error::constraint(format!(
        "{model} row is still referenced by {}.{}",
        by.table, by.attr
    ))
    .with_context("model", model)
    .with_context("referenced_by", format!("{}.{}", by.table, by.attr))
}

fn referencing_pks(
    tables: &Tables,
    by: &Referrer,
    keys: &HashSet<Key>,
    deadline: &Deadline,
) -> Result<Vec<Key>> {
    lookup(tables, &by.table)?.pks_where_in(by.pos, keys, deadline)
}

/// Fails if any row references one of `keys` of `model`.
pub(crate) fn check_unreferenced(
    tables: &Tables,
    model: &str,
    keys: &HashSet<Key>,
    deadline: &Deadline,
) -> Result<()> {
    if keys.is_empty() {
        return Ok(());
    }
    for by in referrers(tables, model) {
        if !referencing_pks(tables, &by, keys, deadline)?.is_empty() {
            return Err(still_referenced(model, &by));
        }
    }
    Ok(())
}

/// Deletes `pks` of `model` and applies every `on_delete` action, level by
/// level. Restrict is checked last, against the rows that survive the whole
/// cascade (as SQL checks at statement end).
pub(crate) fn delete_cascading(
    tables: &mut Tables,
    log: &mut WriteLog,
    model: &str,
    pks: Vec<Key>,
    deadline: &Deadline,
) -> Result<()> {
    let mut queue = VecDeque::from([(model.to_owned(), pks)]);
    let mut restricted: Vec<(String, Referrer, HashSet<Key>)> = Vec::new();
    while let Some((name, keys)) = queue.pop_front() {
        let removed = remove_rows(tables, log, &name, keys)?;
        if removed.is_empty() {
            continue;
        }
        for by in referrers(tables, &name) {
            match by.on_delete {
                None => {}
                Some(OnDelete::Restrict) => restricted.push((name.clone(), by, removed.clone())),
                Some(OnDelete::Cascade) => {
                    let pks = referencing_pks(tables, &by, &removed, deadline)?;
                    queue.push_back((by.table.clone(), pks));
                }
                Some(OnDelete::SetNull) => set_null(tables, log, &by, &removed, deadline)?,
            }
        }
    }
    for (name, by, removed) in restricted {
        if !referencing_pks(tables, &by, &removed, deadline)?.is_empty() {
            return Err(still_referenced(&name, &by));
        }
    }
    Ok(())
}

fn remove_rows(
    tables: &mut Tables,
    log: &mut WriteLog,
    model: &str,
    keys: Vec<Key>,
) -> Result<HashSet<Key>> {
    let table = lookup_mut(tables, model)?;
    let mut removed = HashSet::with_capacity(keys.len());
    for key in keys {
        if table.remove(&key).is_some() {
            log.record(model, &key);
            removed.insert(key);
        }
    }
    Ok(removed)
}

fn set_null(
    tables: &mut Tables,
    log: &mut WriteLog,
    by: &Referrer,
    removed: &HashSet<Key>,
    deadline: &Deadline,
) -> Result<()> {
    let pks = referencing_pks(tables, by, removed, deadline)?;
    let table = lookup_mut(tables, &by.table)?;
    for pk in pks {
        let Some(row) = table.remove(&pk) else {
            continue;
        };
        let mut values = row.to_vec();
        values[by.pos] = Value::Null;
        let row: Arc<[Value]> = Arc::from(values);
        table.validate(&row)?;
        table.insert(row, pk.clone())?;
        log.record(&by.table, &pk);
    }
    Ok(())
}
