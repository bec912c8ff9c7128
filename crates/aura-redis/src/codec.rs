//! The stored form of one row (format 1, documented in ARCHITECTURE.md).
//!
//! A row is a JSON object keyed by storage name, each value in the project's
//! storage form (API.md ARCHITECTURE "Storage form"): numbers, strings and
//! booleans as themselves, bytes as `{"__bytes__": "<base64>"}`, datetimes,
//! dates, times, UUIDs and decimals as their canonical strings, vectors and
//! lists as arrays, dicts as objects. JSON has no NaN or infinity, so a
//! non-finite float is `{"__float__": "nan" | "inf" | "-inf"}`. Reading binds
//! every value to its field's kind, so the round trip restores the type;
//! a field missing from the stored object reads as null.

use std::sync::Arc;

use aura_core::error::{Error, Result};
use aura_core::schema::{FieldKind, ModelSchema, Row};
use aura_core::value::Value;
use serde_json::{Map, Value as Json};

/// Marker key of a non-finite float.
pub const FLOAT_KEY: &str = "__float__";

fn float_json(f: f64) -> Json {
    match serde_json::Number::from_f64(f) {
        Some(n) => Json::Number(n),
        None => {
            let text = if f.is_nan() {
                "nan"
            } else if f > 0.0 {
                "inf"
            } else {
                "-inf"
            };
            let mut obj = Map::new();
            obj.insert(FLOAT_KEY.to_owned(), Json::String(text.to_owned()));
            Json::Object(obj)
        }
    }
}

/// Storage-form JSON of a value, with non-finite floats marked.
pub fn value_json(value: &Value) -> Json {
    match value {
        Value::Float(f) => float_json(*f),
        Value::List(items) => Json::Array(items.iter().map(value_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.to_string(), value_json(v)))
                .collect(),
        ),
        Value::Vector(comps) => Json::Array(comps.iter().map(|f| float_json(*f)).collect()),
        other => other.to_json(),
    }
}

fn marked_float(json: &Json) -> Option<f64> {
    let obj = json.as_object()?;
    if obj.len() != 1 {
        return None;
    }
    match obj.get(FLOAT_KEY)?.as_str()? {
        "nan" => Some(f64::NAN),
        "inf" => Some(f64::INFINITY),
        "-inf" => Some(f64::NEG_INFINITY),
        _ => None,
    }
}

/// A stored JSON value bound to a field kind.
pub fn value_from_json(json: &Json, kind: FieldKind) -> Result<Value> {
    if kind == FieldKind::Float {
        if let Some(f) = marked_float(json) {
            return Ok(Value::Float(f));
        }
    }
    Value::from_json(json, kind)
}

/// The stored string of a row.
pub fn encode_row(schema: &ModelSchema, row: &Row) -> String {
    let mut obj = Map::with_capacity(schema.fields.len());
    for (field, value) in schema.fields.iter().zip(row.iter()) {
        obj.insert(field.storage.clone(), value_json(value));
    }
    Json::Object(obj).to_string()
}

/// A row back from its stored string. The message of a failure names the
/// model and field, never the stored data.
pub fn decode_row(schema: &ModelSchema, text: &[u8]) -> Result<Row> {
    let corrupt = |what: &str| {
        Error::serialization(format!(
            "Stored {} row is not valid format-1 JSON ({what})",
            schema.name
        ))
        .with_context("model", schema.name.as_str())
        .with_context("driver", crate::BACKEND)
    };
    let json: Json = serde_json::from_slice(text).map_err(|_| corrupt("unparsable"))?;
    let Json::Object(obj) = json else {
        return Err(corrupt("not an object"));
    };
    let mut row = Vec::with_capacity(schema.fields.len());
    for field in &schema.fields {
        let value = match obj.get(&field.storage) {
            None => Value::Null,
            Some(json) => value_from_json(json, field.kind)
                .map_err(|_| corrupt(&format!("field '{}' is not a {}", field.attr, field.kind)))?,
        };
        row.push(value);
    }
    Ok(Arc::from(row))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_core::schema::FieldDef;

    fn schema() -> ModelSchema {
        ModelSchema {
            name: "R".into(),
            primary_key: Some("id".into()),
            fields: vec![
                FieldDef::new("id", FieldKind::Int),
                FieldDef::new("f", FieldKind::Float),
                FieldDef::new("b", FieldKind::Bytes).alias("B"),
                FieldDef::vector("v", 2),
                FieldDef::new("l", FieldKind::List).nullable(),
                FieldDef::new("d", FieldKind::Dict),
                FieldDef::new("s", FieldKind::Str),
            ],
            relationships: vec![],
        }
    }

    #[test]
    fn rows_round_trip_with_their_kinds() {
        let schema = schema();
        let row: Row = Arc::from(vec![
            Value::Int(-7),
            Value::Float(f64::NEG_INFINITY),
            Value::Bytes(Arc::from(&b"\x00\xff"[..])),
            Value::Vector(Arc::from(vec![0.5, -1.0])),
            Value::Null,
            Value::Map(Arc::from(vec![(Arc::from("k"), Value::Int(1))])),
            Value::str("x\"y"),
        ]);
        let text = encode_row(&schema, &row);
        assert_eq!(
            text,
            r#"{"id":-7,"f":{"__float__":"-inf"},"B":{"__bytes__":"AP8="},"v":[0.5,-1.0],"l":null,"d":{"k":1},"s":"x\"y"}"#
        );
        let back = decode_row(&schema, text.as_bytes()).unwrap();
        assert_eq!(back, row);
        let nan = decode_row(&schema, br#"{"id":1,"f":{"__float__":"nan"}}"#).unwrap();
        assert!(matches!(nan[1], Value::Float(f) if f.is_nan()));
        assert_eq!(nan[6], Value::Null);
    }

    #[test]
    fn corrupt_rows_name_the_field_not_the_data() {
        let schema = schema();
        let err = decode_row(&schema, br#"{"id":"s3cret"}"#).unwrap_err();
        assert_eq!(
            err.message,
            "Stored R row is not valid format-1 JSON (field 'id' is not a int)"
        );
        assert!(!err.to_string().contains("s3cret"));
        let err = decode_row(&schema, b"[1]").unwrap_err();
        assert!(err.message.ends_with("(not an object)"));
    }
}
