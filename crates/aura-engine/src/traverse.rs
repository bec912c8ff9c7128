//! Graph traversal (API.md §4.4): a start set, then one hop per step along
//! a to-one link or a to-many collection, de-duplicated by primary key.

use std::collections::HashSet;

use aura_core::ir::Traverse;
use aura_core::{Error, Key, Result, Row, Value};

use crate::deadline::Deadline;
use crate::filter;
use crate::include::{self, Relation};
use crate::select::matching_rows;
use crate::table::{lookup, Table, Tables};

pub(crate) fn traverse(tables: &Tables, q: &Traverse) -> Result<(String, Vec<Row>)> {
    if q.steps.len() as u64 > q.max_depth {
        return Err(Error::query("traversal exceeds max_depth")
            .with_context("max_depth", q.max_depth)
            .with_context("steps", q.steps.len()));
    }
    let deadline = Deadline::none();
    let mut table = lookup(tables, &q.model)?;
    let mut current = matching_rows(tables, &q.model, &q.start, &deadline)?;
    for step in &q.steps {
        let relation = include::resolve(tables, &table.schema, step, "to traverse")?;
        let target = lookup(tables, relation.target())?;
        current = distinct(target, hop(table, target, &relation, &current, &deadline)?);
        table = target;
    }
    let predicate = filter::compile(&table.schema, &q.filters)?;
    current.retain(|row| predicate.matches(row));
    if let Some(limit) = q.limit {
        current.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    }
    Ok((table.schema.name.clone(), current))
}

/// Rows reached from `rows` along `relation`, in source order.
fn hop(
    table: &Table,
    target: &Table,
    relation: &Relation,
    rows: &[Row],
    deadline: &Deadline,
) -> Result<Vec<Row>> {
    match relation {
        Relation::Link { fk, .. } => Ok(rows
            .iter()
            .filter(|row| !row[*fk].is_null())
            .filter_map(|row| target.rows.get(&Key(row[*fk].clone())).cloned())
            .collect()),
        Relation::Collection { via, .. } => {
            let parents: Vec<&Row> = rows.iter().collect();
            let mut groups = include::children_by_parent(table, target, *via, &parents, deadline)?;
            Ok((0..rows.len())
                .flat_map(|i| groups.remove(&i).unwrap_or_default())
                .collect())
        }
    }
}

/// First occurrence of each primary key, order kept.
fn distinct(table: &Table, rows: Vec<Row>) -> Vec<Row> {
    let mut seen: HashSet<Key> = HashSet::with_capacity(rows.len());
    rows.into_iter()
        .filter(|row| {
            let pk = table.pk_of(row);
            matches!(pk.0, Value::Null) || seen.insert(pk)
        })
        .collect()
}
