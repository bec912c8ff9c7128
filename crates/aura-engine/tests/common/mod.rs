//! Shared helpers for the engine's integration tests.
#![allow(dead_code)]

use std::sync::Arc;

use aura_engine::aura_core::ir::{CompareOp, Direction, Expr, Filtered, OrderTerm, Select};
use aura_engine::aura_core::{
    FieldDef, FieldKind, ModelSchema, RelationKind, RelationshipDef, Row, Value,
};
use aura_engine::{Engine, OnConflict, QueryOutput};
use serde_json::Value as Json;

pub fn int(i: i64) -> Value {
    Value::Int(i)
}

pub fn s(text: &str) -> Value {
    Value::str(text)
}

pub fn null() -> Value {
    Value::Null
}

pub fn vector(v: &[f64]) -> Value {
    Value::Vector(Arc::from(v))
}

pub fn row(values: Vec<Value>) -> Row {
    Arc::from(values)
}

pub fn schema(name: &str, pk: Option<&str>, fields: Vec<FieldDef>) -> Arc<ModelSchema> {
    Arc::new(ModelSchema {
        name: name.into(),
        primary_key: pk.map(str::to_owned),
        fields,
        relationships: vec![],
    })
}

pub fn with_relationships(
    schema: Arc<ModelSchema>,
    rels: &[(&str, &str, RelationKind, Option<&str>)],
) -> Arc<ModelSchema> {
    let mut s = (*schema).clone();
    s.relationships = rels
        .iter()
        .map(|(attr, target, kind, via)| RelationshipDef {
            attr: (*attr).into(),
            target: (*target).into(),
            kind: *kind,
            via: via.map(str::to_owned),
        })
        .collect();
    Arc::new(s)
}

pub fn field(name: &str, kind: FieldKind) -> FieldDef {
    FieldDef::new(name, kind)
}

pub fn cmp(op: CompareOp, model: &str, field: &str, value: Json) -> Expr {
    Expr::compare(op, Expr::field(model, field), Expr::literal(value))
}

pub fn path_cmp(op: CompareOp, model: &str, field: &str, path: &[&str], value: Json) -> Expr {
    let left = Expr::Field {
        model: model.into(),
        field: field.into(),
        path: Some(path.iter().map(|p| (*p).to_owned()).collect()),
    };
    Expr::compare(op, left, Expr::literal(value))
}

pub fn eq(model: &str, field: &str, value: Json) -> Expr {
    cmp(CompareOp::Eq, model, field, value)
}

pub fn query(model: &str, filters: Vec<Expr>) -> Select {
    Select {
        filters,
        ..Select::new(model)
    }
}

pub fn filtered(model: &str, filters: Vec<Expr>) -> Filtered {
    Filtered::new(model, filters)
}

pub fn asc(field: &str) -> OrderTerm {
    OrderTerm {
        field: field.into(),
        direction: Direction::Asc,
    }
}

pub fn desc(field: &str) -> OrderTerm {
    OrderTerm {
        field: field.into(),
        direction: Direction::Desc,
    }
}

/// The integer first column of each result row.
pub fn ids(out: &QueryOutput) -> Vec<i64> {
    out.rows.iter().map(|r| as_int(&r.row[0])).collect()
}

pub fn row_ids(rows: &[Row]) -> Vec<i64> {
    rows.iter().map(|r| as_int(&r[0])).collect()
}

pub fn as_int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        other => panic!("expected an int, got {other:?}"),
    }
}

pub fn select_ids(engine: &Engine, txn: Option<u64>, q: &Select) -> Vec<i64> {
    ids(&engine.select(txn, q).expect("select"))
}

pub fn insert_all(engine: &Engine, model: &str, rows: Vec<Row>) {
    engine
        .insert(None, model, rows, OnConflict::Error)
        .expect("insert");
}

/// `Item(id pk, name str?, n int?, tags list?, meta dict?, data bytes?)`
pub fn items_schema() -> Arc<ModelSchema> {
    schema(
        "Item",
        Some("id"),
        vec![
            field("id", FieldKind::Int),
            field("name", FieldKind::Str).nullable(),
            field("n", FieldKind::Float).nullable(),
            field("tags", FieldKind::List).nullable(),
            field("meta", FieldKind::Dict).nullable(),
        ],
    )
}
