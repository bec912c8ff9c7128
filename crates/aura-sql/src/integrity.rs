//! What every SQL write path checks the same way: the link fields that
//! reference a model (for `on_delete` actions and re-keying) and the
//! primary key's column, kind and encoded values.

use std::sync::Arc;

use aura_core::{Error, FieldKind, ModelSchema, OnDelete, Result, Value};

use crate::{encode, Catalog, SqlValue};

/// A link field of some registered model pointing at `model`.
pub struct Referrer {
    pub schema: Arc<ModelSchema>,
    pub column: String,
    pub attr: String,
    pub on_delete: Option<OnDelete>,
}

/// Referrers in a stable order (model name, then column), so cascades and
/// their errors are deterministic.
pub fn referrers(catalog: &Catalog, model: &str) -> Vec<Referrer> {
    let mut found: Vec<Referrer> = catalog
        .values()
        .flat_map(|schema| {
            schema
                .fields
                .iter()
                .filter(|f| f.kind == FieldKind::Link && f.target.as_deref() == Some(model))
                .map(|f| Referrer {
                    schema: schema.clone(),
                    column: f.storage.clone(),
                    attr: f.attr.clone(),
                    on_delete: f.on_delete,
                })
        })
        .collect();
    found.sort_by(|a, b| {
        a.schema
            .name
            .cmp(&b.schema.name)
            .then(a.column.cmp(&b.column))
    });
    found
}

/// The error of deleting or re-keying a row `by` still points at.
pub fn still_referenced(model: &str, by: &Referrer) -> Error {
    Error::constraint(format!(
        "{model} row is still referenced by {}.{}",
        by.schema.name, by.attr
    ))
    .with_context("model", model)
    .with_context("referenced_by", format!("{}.{}", by.schema.name, by.attr))
}

/// The kind of `schema`'s primary key.
pub fn pk_kind(schema: &ModelSchema) -> Result<FieldKind> {
    schema
        .pk_index()
        .map(|i| schema.fields[i].kind)
        .ok_or_else(|| Error::schema(format!("{} has no primary key", schema.name)))
}

/// The column of `schema`'s primary key.
pub fn pk_column(schema: &ModelSchema) -> Result<&str> {
    schema
        .pk_index()
        .map(|i| schema.fields[i].storage.as_str())
        .ok_or_else(|| Error::schema(format!("{} has no primary key", schema.name)))
}

/// Primary-key values as statement parameters.
pub fn encode_keys(kind: FieldKind, keys: &[Value]) -> Result<Vec<SqlValue>> {
    keys.iter().map(|k| encode(kind, k)).collect()
}
