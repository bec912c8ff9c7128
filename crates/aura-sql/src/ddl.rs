//! Schema statements (API.md §2.5): `CREATE TABLE IF NOT EXISTS` with the
//! column types of §2.3, `PRIMARY KEY`, `UNIQUE`, `NOT NULL`, and one index
//! per `index=True` field that is neither primary key nor unique.

use aura_core::{FieldDef, FieldKind, ModelSchema, Result};

use crate::codec::{storage, Storage};
use crate::dialect::Dialect;
use crate::Catalog;

/// Whether MySQL must use a bounded VARCHAR (key/index columns).
fn keyed(schema: &ModelSchema, field: &FieldDef) -> bool {
    field.unique || field.index || schema.pk_name() == field.storage
}

fn column_type(dialect: Dialect, kind: FieldKind, keyed: bool) -> &'static str {
    match (storage(kind), dialect) {
        (Storage::Integer, Dialect::Sqlite) => "INTEGER",
        (Storage::Integer, _) => "BIGINT",
        (Storage::Real, Dialect::Sqlite) => "REAL",
        (Storage::Real, Dialect::Postgres) => "DOUBLE PRECISION",
        (Storage::Real, Dialect::Mysql) => "DOUBLE",
        (Storage::Bool, Dialect::Sqlite) => "INTEGER",
        (Storage::Bool, Dialect::Postgres) => "BOOLEAN",
        (Storage::Bool, Dialect::Mysql) => "TINYINT(1)",
        // Binary collation: comparisons and LIKE stay case-sensitive (§16 row 30).
        (Storage::Text | Storage::Json | Storage::Scalar, Dialect::Mysql) if keyed => {
            "VARCHAR(255) COLLATE utf8mb4_bin"
        }
        (Storage::Text | Storage::Json | Storage::Scalar, Dialect::Mysql) => {
            "LONGTEXT COLLATE utf8mb4_bin"
        }
        // Byte-order collation: text sorts and compares as the memory
        // engine does, whatever the database's default locale.
        (Storage::Text | Storage::Json | Storage::Scalar, Dialect::Postgres) => {
            "TEXT COLLATE \"C\""
        }
        (Storage::Text | Storage::Json | Storage::Scalar, _) => "TEXT",
    }
}

/// A link column takes the type of its target's primary key.
pub(crate) fn field_type(
    dialect: Dialect,
    schema: &ModelSchema,
    field: &FieldDef,
    catalog: &Catalog,
) -> &'static str {
    let kind = match (&field.target, field.kind) {
        (Some(target), FieldKind::Link) => catalog
            .get(target)
            .and_then(|t| t.pk_index().map(|i| t.fields[i].kind))
            .unwrap_or(FieldKind::Any),
        _ => field.kind,
    };
    column_type(dialect, kind, keyed(schema, field))
}

/// `CREATE TABLE IF NOT EXISTS` plus its indexes, in execution order.
/// NOT NULL follows `nullable` alone: defaults are applied by the model
/// before a row is written, and the memory engine rejects nulls in
/// non-nullable fields whatever their default.
pub fn create_table(
    dialect: Dialect,
    schema: &ModelSchema,
    catalog: &Catalog,
) -> Result<Vec<String>> {
    let pk = schema.pk_index();
    let mut columns = Vec::with_capacity(schema.fields.len());
    for (pos, field) in schema.fields.iter().enumerate() {
        let mut column = format!(
            "{} {}",
            dialect.quote(&field.storage)?,
            field_type(dialect, schema, field, catalog)
        );
        if !field.nullable || pk == Some(pos) {
            column.push_str(" NOT NULL");
        }
        if pk == Some(pos) {
            column.push_str(" PRIMARY KEY");
        } else if field.unique {
            column.push_str(" UNIQUE");
        }
        columns.push(column);
    }
    let table = dialect.quote(&schema.name)?;
    let indexed = schema
        .fields
        .iter()
        .enumerate()
        .filter(|&(pos, field)| field.index && !field.unique && pk != Some(pos))
        .map(|(_, field)| field);
    if dialect == Dialect::Mysql {
        // MySQL has no CREATE INDEX IF NOT EXISTS: indexes are declared
        // in the table, so re-creating an existing schema is a no-op.
        for field in indexed {
            let name = dialect.quote(&format!("idx_{}_{}", schema.name, field.storage))?;
            columns.push(format!("INDEX {name} ({})", dialect.quote(&field.storage)?));
        }
        for field in crate::full_text_fields(schema) {
            columns.push(crate::search::mysql_full_text(schema, field)?);
        }
        return Ok(vec![format!(
            "CREATE TABLE IF NOT EXISTS {table} ({})",
            columns.join(", ")
        )]);
    }
    let mut statements = vec![format!(
        "CREATE TABLE IF NOT EXISTS {table} ({})",
        columns.join(", ")
    )];
    for field in indexed {
        let name = dialect.quote(&format!("idx_{}_{}", schema.name, field.storage))?;
        statements.push(format!(
            "CREATE INDEX IF NOT EXISTS {name} ON {table} ({})",
            dialect.quote(&field.storage)?
        ));
    }
    if dialect == Dialect::Postgres {
        for field in crate::full_text_fields(schema) {
            statements.extend(crate::create_full_text(dialect, schema, field)?);
        }
    }
    Ok(statements)
}

pub fn drop_table(dialect: Dialect, schema: &ModelSchema) -> Result<String> {
    Ok(format!(
        "DROP TABLE IF EXISTS {}",
        dialect.quote(&schema.name)?
    ))
}
