//! Values <-> BSON. Storage-form values keep their JSON shape: datetimes,
//! dates, UUIDs and decimals are the same ISO/canonical strings the memory
//! engine stores (so they order the same way), bytes are BSON binary,
//! ints are int64, vectors arrays of doubles.

use std::sync::Arc;

use aura_core::error::{Error, Result};
use aura_core::schema::{FieldKind, ModelSchema, Row};
use aura_core::value::Value;
use mongodb::bson::spec::BinarySubtype;
use mongodb::bson::{Binary, Bson, Document};

/// The document key of a field: `_id` for the primary key.
pub fn doc_key<'s>(schema: &ModelSchema, storage: &'s str) -> &'s str {
    if storage == schema.pk_name() {
        "_id"
    } else {
        storage
    }
}

pub fn value_to_bson(value: &Value) -> Bson {
    match value {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Int(i) => Bson::Int64(*i),
        Value::Float(f) => Bson::Double(*f),
        Value::Str(s) => Bson::String(s.to_string()),
        Value::Bytes(b) => Bson::Binary(Binary {
            subtype: BinarySubtype::Generic,
            bytes: b.to_vec(),
        }),
        Value::List(items) => Bson::Array(items.iter().map(value_to_bson).collect()),
        Value::Map(entries) => {
            let mut doc = Document::new();
            for (k, v) in entries.iter() {
                doc.insert(k.to_string(), value_to_bson(v));
            }
            Bson::Document(doc)
        }
        Value::Vector(comps) => Bson::Array(comps.iter().map(|f| Bson::Double(*f)).collect()),
    }
}

/// A stored BSON value read back as the value of a field kind.
pub fn bson_to_value(bson: &Bson, kind: FieldKind) -> Value {
    match (kind, bson) {
        (_, Bson::Null | Bson::Undefined) => Value::Null,
        (FieldKind::Float, Bson::Int32(i)) => Value::Float(f64::from(*i)),
        (FieldKind::Float, Bson::Int64(i)) => Value::Float(*i as f64),
        (FieldKind::Vector, Bson::Array(items)) => {
            let comps: Option<Vec<f64>> = items
                .iter()
                .map(|b| match b {
                    Bson::Double(f) => Some(*f),
                    Bson::Int32(i) => Some(f64::from(*i)),
                    Bson::Int64(i) => Some(*i as f64),
                    _ => None,
                })
                .collect();
            match comps {
                Some(comps) => Value::Vector(Arc::from(comps)),
                None => bson_untyped(bson),
            }
        }
        _ => bson_untyped(bson),
    }
}

fn bson_untyped(bson: &Bson) -> Value {
    match bson {
        Bson::Null | Bson::Undefined => Value::Null,
        Bson::Boolean(b) => Value::Bool(*b),
        Bson::Int32(i) => Value::Int(i64::from(*i)),
        Bson::Int64(i) => Value::Int(*i),
        Bson::Double(f) => Value::Float(*f),
        Bson::String(s) => Value::str(s),
        Bson::Binary(b) => Value::Bytes(Arc::from(b.bytes.as_slice())),
        Bson::Array(items) => Value::List(items.iter().map(bson_untyped).collect()),
        Bson::Document(doc) => Value::Map(
            doc.iter()
                .map(|(k, v)| (Arc::from(k.as_str()), bson_untyped(v)))
                .collect(),
        ),
        Bson::ObjectId(id) => Value::str(&id.to_hex()),
        // Types this project never writes (dates, decimals, timestamps...):
        // their relaxed extended-JSON text.
        other => Value::str(&other.to_string()),
    }
}

/// A row as a document: `_id` holds the primary key.
pub fn row_to_doc(schema: &ModelSchema, row: &Row) -> Document {
    let mut doc = Document::new();
    for (field, value) in schema.fields.iter().zip(row.iter()) {
        doc.insert(doc_key(schema, &field.storage), value_to_bson(value));
    }
    doc
}

/// A document back as a row in schema order; `_id` fills the primary key,
/// a missing field is null.
pub fn doc_to_row(schema: &ModelSchema, doc: &Document) -> Row {
    let row: Vec<Value> = schema
        .fields
        .iter()
        .map(|field| {
            doc.get(doc_key(schema, &field.storage))
                .map_or(Value::Null, |b| bson_to_value(b, field.kind))
        })
        .collect();
    Arc::from(row)
}

/// A storage-form JSON literal bound to a field kind (numbers stay numbers
/// for numeric kinds, as in the memory engine's binder).
pub fn literal(json: &serde_json::Value, kind: FieldKind) -> Result<Value> {
    let numeric = matches!(kind, FieldKind::Int | FieldKind::Float | FieldKind::Bool);
    if numeric && json.is_number() {
        return Value::from_json_untyped(json);
    }
    Value::from_json(json, kind)
}

/// A `set()` / upsert value of a field, validated against its kind.
pub fn field_value(
    schema: &ModelSchema,
    storage: &str,
    json: &serde_json::Value,
) -> Result<(String, Value)> {
    let field = schema.field(storage).ok_or_else(|| {
        Error::query(format!("{} has no field '{storage}'", schema.name))
            .with_context("field", storage)
    })?;
    let value = literal(json, field.kind).map_err(|_| {
        Error::validation(format!(
            "Invalid value for {}.{}: expected {}",
            schema.name, field.attr, field.kind
        ))
        .with_context("field", field.attr.as_str())
    })?;
    let value = match (field.kind, value) {
        (FieldKind::Float, Value::Int(i)) => Value::Float(i as f64),
        (_, v) => v,
    };
    aura_engine::check_value(schema, field, &value)?;
    Ok((doc_key(schema, &field.storage).to_owned(), value))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_core::schema::FieldDef;

    #[test]
    fn rows_round_trip_through_documents() {
        let schema = ModelSchema {
            name: "M".into(),
            primary_key: Some("key".into()),
            fields: vec![
                FieldDef::new("key", FieldKind::Str),
                FieldDef::new("n", FieldKind::Float),
                FieldDef::new("b", FieldKind::Bytes).alias("B"),
                FieldDef::vector("v", 2),
                FieldDef::new("d", FieldKind::Dict).nullable(),
            ],
            relationships: vec![],
        };
        let row: Row = Arc::from(vec![
            Value::str("k1"),
            Value::Float(2.0),
            Value::Bytes(Arc::from(&b"\x00\x01"[..])),
            Value::Vector(Arc::from(vec![1.0, 0.5])),
            Value::Map(Arc::from(vec![(
                Arc::from("a"),
                Value::List(Arc::from(vec![Value::Int(1)])),
            )])),
        ]);
        let doc = row_to_doc(&schema, &row);
        assert_eq!(
            doc.keys().map(String::as_str).collect::<Vec<_>>(),
            ["_id", "n", "B", "v", "d"]
        );
        assert_eq!(doc.get("_id"), Some(&Bson::String("k1".into())));
        assert_eq!(doc_to_row(&schema, &doc), row);
        let mut sparse = Document::new();
        sparse.insert("_id", "k2");
        sparse.insert("n", 3_i32);
        let back = doc_to_row(&schema, &sparse);
        assert_eq!(back[1], Value::Float(3.0));
        assert_eq!(back[4], Value::Null);
    }
}
