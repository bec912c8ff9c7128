//! Reads: select, count, exists, key lookups, and the one-query-per-level
//! loads behind `.include()`.

use aura_core::ir::{Direction, Filtered, OrderTerm, Select};
use aura_core::{Error, FieldKind, ModelSchema, RelationKind, Result};

use crate::codec::{storage, SqlValue, Storage};
use crate::dialect::{dialect_error, Dialect};
use crate::filter;
pub use crate::filter::{resolve_field, Resolved};
use crate::sql::{Sql, Statement};
use crate::Catalog;

pub(crate) fn to_i64(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// The column list of a row in field order; fields outside `mask` (a
/// projection) are read as NULL so every row has the schema's shape.
pub(crate) fn columns(sql: &mut Sql, schema: &ModelSchema, mask: Option<&[bool]>) -> Result<()> {
    let pk = schema.pk_index();
    for (pos, field) in schema.fields.iter().enumerate() {
        if pos > 0 {
            sql.push(", ");
        }
        let wanted = mask.is_none_or(|m| m.get(pos).copied().unwrap_or(false)) || pk == Some(pos);
        if wanted {
            sql.ident(&field.storage)?;
        } else {
            sql.push("NULL");
        }
    }
    Ok(())
}

/// Projection mask over the stored fields (validates every name).
pub fn projection_mask(schema: &ModelSchema, projection: &[String]) -> Result<Option<Vec<bool>>> {
    if projection.is_empty() {
        return Ok(None);
    }
    let mut mask = vec![false; schema.fields.len()];
    for name in projection {
        let resolved = resolve_field(schema, name, None)?;
        if let Some(pos) = schema.field_index(&resolved.field.storage) {
            mask[pos] = true;
        }
    }
    Ok(Some(mask))
}

/// `ORDER BY` terms, then the primary key: the memory engine's order
/// (a stable sort over primary-key order).
pub(crate) fn order_by(sql: &mut Sql, schema: &ModelSchema, terms: &[OrderTerm]) -> Result<()> {
    let mut first = true;
    let mut keyed = false;
    for term in terms {
        let resolved = resolve_field(schema, &term.field, None)?;
        if !resolved.path.is_empty() || storage(resolved.field.kind) == Storage::Json {
            return Err(dialect_error(
                sql.dialect,
                format!(
                    "{} cannot order by {}.{} (JSON-stored values have no SQL order)",
                    sql.dialect.backend(),
                    schema.name,
                    term.field
                ),
            ));
        }
        let desc = term.direction == Direction::Desc;
        sql.push(if first { " ORDER BY " } else { ", " });
        sql.ident(&resolved.field.storage)?;
        sql.push(if desc { " DESC" } else { " ASC" });
        sql.push(sql.dialect.nulls_order(desc));
        first = false;
        keyed |=
            schema.pk_index().map(|i| &schema.fields[i].storage) == Some(&resolved.field.storage);
    }
    if let (Some(pk), false) = (schema.pk_index(), keyed) {
        sql.push(if first { " ORDER BY " } else { ", " });
        sql.ident(&schema.fields[pk].storage)?.push(" ASC");
    }
    Ok(())
}

pub(crate) fn window(sql: &mut Sql, limit: Option<u64>, offset: Option<u64>) {
    match (limit, offset) {
        (None, None) => {}
        (Some(limit), offset) => {
            sql.push(" LIMIT ").bind(SqlValue::Int(to_i64(limit)));
            if let Some(offset) = offset {
                sql.push(" OFFSET ").bind(SqlValue::Int(to_i64(offset)));
            }
        }
        (None, Some(offset)) => {
            if let Some(all) = sql.dialect.no_limit() {
                sql.push(" LIMIT ").push(all);
            }
            sql.push(" OFFSET ").bind(SqlValue::Int(to_i64(offset)));
        }
    }
}

/// Clauses SQL does not run raise; none is ever dropped (API.md §16 row 6).
pub(crate) fn check_clauses(dialect: Dialect, q: &Select) -> Result<()> {
    let backend = dialect.backend();
    if q.hybrid.is_some() {
        return Err(Error::capability(backend, "hybrid_search", "hybrid search"));
    }
    if q.vector.is_some() || q.vector_ann.is_some() {
        return Err(Error::capability(backend, "vector_search", "vector search"));
    }
    if q.text_search.is_some() {
        return Err(Error::capability(
            backend,
            "full_text_search",
            "ranked full-text search",
        ));
    }
    if q.text.is_some() || q.fusion.is_some() {
        return Err(Error::capability(
            backend,
            "full_text_search",
            "legacy text search",
        ));
    }
    Ok(())
}

fn from_where(sql: &mut Sql, schema: &ModelSchema, filters: &[aura_core::ir::Expr]) -> Result<()> {
    sql.push(" FROM ").ident(&schema.name)?.push(" WHERE ");
    filter::compile(sql, schema, filters)
}

/// A select's rows in field order (projected fields as NULL).
pub fn select(dialect: Dialect, schema: &ModelSchema, q: &Select) -> Result<Statement> {
    check_clauses(dialect, q)?;
    let mask = projection_mask(schema, &q.projection)?;
    let mut sql = Sql::new(dialect);
    sql.push("SELECT ");
    columns(&mut sql, schema, mask.as_deref())?;
    from_where(&mut sql, schema, &q.filters)?;
    order_by(&mut sql, schema, &q.sort)?;
    window(&mut sql, q.limit, q.offset);
    Ok(sql.finish())
}

pub fn count(dialect: Dialect, schema: &ModelSchema, q: &Filtered) -> Result<Statement> {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT COUNT(*)");
    from_where(&mut sql, schema, &q.filters)?;
    Ok(sql.finish())
}

pub fn exists(dialect: Dialect, schema: &ModelSchema, q: &Filtered) -> Result<Statement> {
    let mut sql = Sql::new(dialect);
    sql.push("SELECT EXISTS (SELECT 1");
    from_where(&mut sql, schema, &q.filters)?;
    sql.push(")");
    Ok(sql.finish())
}

/// Primary keys of the rows matching `filters` (cascading deletes).
pub fn select_keys(
    dialect: Dialect,
    schema: &ModelSchema,
    filters: &[aura_core::ir::Expr],
) -> Result<Statement> {
    let pk = pk_storage(schema)?;
    let mut sql = Sql::new(dialect);
    sql.push("SELECT ").ident(pk)?;
    from_where(&mut sql, schema, filters)?;
    Ok(sql.finish())
}

pub(crate) fn pk_storage(schema: &ModelSchema) -> Result<&str> {
    schema
        .pk_index()
        .map(|i| schema.fields[i].storage.as_str())
        .ok_or_else(|| {
            Error::schema(format!(
                "{} has no primary key '{}'",
                schema.name,
                schema.pk_name()
            ))
        })
}

/// A relationship resolved for loading.
#[derive(Debug, Clone, PartialEq)]
pub enum Relation {
    /// To-one: field `fk` (position) of the parent holds the target's pk.
    Link {
        attr: String,
        fk: usize,
        target: String,
    },
    /// To-many: field `via` (position) of the target holds the parent's pk.
    Collection {
        attr: String,
        target: String,
        via: usize,
    },
}

impl Relation {
    pub fn attr(&self) -> &str {
        match self {
            Relation::Link { attr, .. } | Relation::Collection { attr, .. } => attr,
        }
    }

    pub fn target(&self) -> &str {
        match self {
            Relation::Link { target, .. } | Relation::Collection { target, .. } => target,
        }
    }

    /// Resolves an include name as the memory engine does: a declared
    /// relationship, else a link field.
    pub fn resolve(catalog: &Catalog, schema: &ModelSchema, name: &str) -> Result<Relation> {
        let missing = || {
            Error::query(format!(
                "{} has no relationship '{name}' to include",
                schema.name
            ))
            .with_context("model", schema.name.as_str())
            .with_context("relationship", name)
        };
        let relation = match schema.relationship(name) {
            Some(rel) if rel.kind == RelationKind::Link => Relation::Link {
                attr: rel.attr.clone(),
                fk: schema.field_index(&rel.attr).ok_or_else(missing)?,
                target: rel.target.clone(),
            },
            Some(rel) => {
                let target = lookup(catalog, &rel.target)?;
                let via = match rel.via.as_deref() {
                    Some(via) => target.field_index(via),
                    None => target.fields.iter().position(|f| {
                        f.kind == FieldKind::Link && f.target.as_deref() == Some(&schema.name)
                    }),
                }
                .ok_or_else(|| {
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
            None => {
                let fk = schema.field_index(name).ok_or_else(missing)?;
                let field = &schema.fields[fk];
                match (&field.target, field.kind) {
                    (Some(target), FieldKind::Link) => Relation::Link {
                        attr: field.attr.clone(),
                        fk,
                        target: target.clone(),
                    },
                    _ => return Err(missing()),
                }
            }
        };
        lookup(catalog, relation.target())?;
        Ok(relation)
    }
}

pub(crate) fn lookup<'c>(catalog: &'c Catalog, model: &str) -> Result<&'c ModelSchema> {
    catalog
        .get(model)
        .map(|s| &**s)
        .ok_or_else(|| Error::schema(format!("Unknown model '{model}'")))
}

/// One level of an include: the target rows whose `key` column is in a
/// set of values, in the include's order, at most `limit` per key.
#[derive(Debug, Clone)]
pub struct RelatedQuery<'a> {
    pub target: &'a ModelSchema,
    /// Position of the matched column in the target.
    pub key: usize,
    pub sort: &'a [OrderTerm],
    pub limit: Option<u64>,
}

/// The statement loading `keys` for one include level (the caller chunks
/// `keys` to the driver's parameter limit).
pub fn related(dialect: Dialect, q: &RelatedQuery<'_>, keys: Vec<SqlValue>) -> Result<Statement> {
    let key_col = &q.target.fields[q.key].storage;
    let mut sql = Sql::new(dialect);
    sql.push("SELECT ");
    columns(&mut sql, q.target, None)?;
    if let Some(limit) = q.limit {
        // Per-parent limit in SQL: number each key's rows in include order.
        sql.push(" FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY ")
            .ident(key_col)?;
        let mut order = Sql::new(dialect);
        order_by(&mut order, q.target, q.sort)?;
        let order = order.finish().sql;
        sql.push(&order).push(") AS ").ident("__aura_n")?;
        sql.push(" FROM ").ident(&q.target.name)?.push(" WHERE ");
        sql.ident(key_col)?.push(" IN ").bind_list(keys);
        sql.push(") AS ")
            .ident("__aura_t")?
            .push(" WHERE ")
            .ident("__aura_n")?;
        sql.push(" <= ").bind(SqlValue::Int(to_i64(limit)));
        sql.push(" ORDER BY ").ident("__aura_n")?;
        return Ok(sql.finish());
    }
    sql.push(" FROM ").ident(&q.target.name)?.push(" WHERE ");
    sql.ident(key_col)?.push(" IN ").bind_list(keys);
    order_by(&mut sql, q.target, q.sort)?;
    Ok(sql.finish())
}

#[cfg(test)]
mod tests;
