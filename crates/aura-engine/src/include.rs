//! Relationships: resolving a name to a link or a collection, and loading
//! them for a whole result in batched passes (never one scan per row).

use std::collections::{HashMap, HashSet};

use aura_core::ir::Include;
use aura_core::{Error, FieldKind, Key, ModelSchema, RelationKind, Result, Row, Value};

use crate::deadline::Deadline;
use crate::output::{Included, ResultRow};
use crate::sort::{self, SortKey};
use crate::table::{lookup, Table, Tables};

/// A relationship resolved against the schemas of one snapshot.
#[derive(Debug, Clone)]
pub(crate) enum Relation {
    /// To-one: field `fk` of this model holds the target's primary key.
    Link {
        attr: String,
        fk: usize,
        target: String,
    },
    /// To-many: field `via` of the target holds this model's primary key.
    Collection {
        attr: String,
        target: String,
        via: usize,
    },
}

impl Relation {
    pub fn target(&self) -> &str {
        match self {
            Relation::Link { target, .. } | Relation::Collection { target, .. } => target,
        }
    }
}

fn no_relationship(schema: &ModelSchema, name: &str, purpose: &str) -> Error {
    Error::query(format!(
        "{} has no relationship '{name}' {purpose}",
        schema.name
    ))
    .with_context("model", schema.name.as_str())
    .with_context("relationship", name)
}

/// Resolves `name`: a declared relationship, else a link field (by attr or
/// storage name). `purpose` completes the error message ("to include").
pub(crate) fn resolve(
    tables: &Tables,
    schema: &ModelSchema,
    name: &str,
    purpose: &str,
) -> Result<Relation> {
    let relation = match schema.relationship(name) {
        Some(rel) if rel.kind == RelationKind::Link => {
            let fk = schema
                .field_index(&rel.attr)
                .ok_or_else(|| no_relationship(schema, name, purpose))?;
            Relation::Link {
                attr: rel.attr.clone(),
                fk,
                target: rel.target.clone(),
            }
        }
        Some(rel) => {
            let target = lookup(tables, &rel.target)?;
            let via =
                back_link(&target.schema, &schema.name, rel.via.as_deref()).ok_or_else(|| {
                    Error::query(format!(
                        "{} has no link back to {} for '{name}'",
                        rel.target, schema.name
                    ))
                })?;
            Relation::Collection {
                attr: rel.attr.clone(),
                target: rel.target.clone(),
                via,
            }
        }
        None => link_field(schema, name).ok_or_else(|| no_relationship(schema, name, purpose))?,
    };
    lookup(tables, relation.target())?;
    Ok(relation)
}

fn link_field(schema: &ModelSchema, name: &str) -> Option<Relation> {
    let fk = schema.field_index(name)?;
    let field = &schema.fields[fk];
    let target = field
        .target
        .clone()
        .filter(|_| field.kind == FieldKind::Link)?;
    Some(Relation::Link {
        attr: field.attr.clone(),
        fk,
        target,
    })
}

/// The target's link field pointing back at `model`: the named one, else
/// the first link to `model` (API.md §2.6).
fn back_link(target: &ModelSchema, model: &str, via: Option<&str>) -> Option<usize> {
    match via {
        Some(name) => target.field_index(name),
        None => target
            .fields
            .iter()
            .position(|f| f.kind == FieldKind::Link && f.target.as_deref() == Some(model)),
    }
}

/// An include request, resolved and compiled.
pub(crate) struct IncludeSpec {
    relation: Relation,
    limit: Option<usize>,
    order: Vec<SortKey>,
}

pub(crate) fn resolve_all(
    tables: &Tables,
    table: &Table,
    includes: &[Include],
) -> Result<Vec<IncludeSpec>> {
    includes
        .iter()
        .map(|inc| {
            let relation = resolve(tables, &table.schema, &inc.link, "to include")?;
            let target = lookup(tables, relation.target())?;
            Ok(IncludeSpec {
                order: sort::compile(&target.schema, &inc.sort)?,
                limit: inc.limit.map(|l| usize::try_from(l).unwrap_or(usize::MAX)),
                relation,
            })
        })
        .collect()
}

/// Loads every include for every row of a result.
pub(crate) fn attach(
    tables: &Tables,
    table: &Table,
    specs: &[IncludeSpec],
    rows: &mut [ResultRow],
    deadline: &Deadline,
) -> Result<()> {
    for spec in specs {
        let target = lookup(tables, spec.relation.target())?;
        match &spec.relation {
            Relation::Link { attr, fk, .. } => attach_links(target, attr, *fk, rows),
            Relation::Collection { attr, via, .. } => {
                let parents: Vec<&Row> = rows.iter().map(|r| &r.row).collect();
                let mut groups = children_by_parent(table, target, *via, &parents, deadline)?;
                for (i, r) in rows.iter_mut().enumerate() {
                    let mut children = groups.remove(&i).unwrap_or_default();
                    if !spec.order.is_empty() {
                        children.sort_by(|a, b| sort::compare_rows(&spec.order, a, b));
                    }
                    children.truncate(spec.limit.unwrap_or(usize::MAX));
                    r.includes.push(Included::Many {
                        attr: attr.clone(),
                        rows: children,
                    });
                }
            }
        }
    }
    Ok(())
}

/// One point lookup per distinct foreign key.
fn attach_links(target: &Table, attr: &str, fk: usize, rows: &mut [ResultRow]) {
    let mut found: HashMap<Key, Option<Row>> = HashMap::new();
    for r in rows.iter_mut() {
        let row = match &r.row[fk] {
            Value::Null => None,
            value => found
                .entry(Key(value.clone()))
                .or_insert_with_key(|k| target.rows.get(k).cloned())
                .clone(),
        };
        r.includes.push(Included::One {
            attr: attr.to_owned(),
            row,
        });
    }
}

/// Children of each parent (by position in `parents`), in target primary-key
/// order: one index lookup per parent or one pass over the target.
pub(crate) fn children_by_parent(
    parent: &Table,
    target: &Table,
    via: usize,
    parents: &[&Row],
    deadline: &Deadline,
) -> Result<HashMap<usize, Vec<Row>>> {
    let mut positions: HashMap<Key, Vec<usize>> = HashMap::new();
    for (i, row) in parents.iter().enumerate() {
        let pk = parent.pk_of(row);
        if !pk.0.is_null() {
            positions.entry(pk).or_default().push(i);
        }
    }
    let keys: HashSet<Key> = positions.keys().cloned().collect();
    let mut pks = target.pks_where_in(via, &keys, deadline)?;
    pks.sort();
    let mut groups: HashMap<usize, Vec<Row>> = HashMap::new();
    for pk in pks {
        let Some(child) = target.rows.get(&pk) else {
            continue;
        };
        for &i in positions
            .get(&Key(child[via].clone()))
            .into_iter()
            .flatten()
        {
            groups.entry(i).or_default().push(child.clone());
        }
    }
    Ok(groups)
}
