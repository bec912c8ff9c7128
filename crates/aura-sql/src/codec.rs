//! How each field kind lives in a SQL column (API.md §2.3) and the
//! conversions between engine values and column values. Reading a column
//! back yields the same `Value` the memory engine holds, so one hydration
//! path serves every backend.

use std::sync::Arc;

use aura_core::{Error, FieldKind, Result, Value};
use serde_json::Value as Json;

/// The column representation of a field kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Storage {
    /// 64-bit integer.
    Integer,
    /// Double.
    Real,
    /// Text: strings and the ISO/canonical text of datetime, date, time,
    /// UUID and Decimal (their storage form, so text order is the same
    /// order the memory engine uses).
    Text,
    /// Boolean (INTEGER 0/1 on SQLite, BOOLEAN on PostgreSQL, TINYINT(1) on MySQL).
    Bool,
    /// The storage form as JSON text, decoded on read: bytes, lists,
    /// dicts, vectors, enums and untyped (`any`) values.
    Json,
    /// A link: the target's primary-key value, kept as the scalar it is.
    Scalar,
}

/// The column storage of a field kind.
pub fn storage(kind: FieldKind) -> Storage {
    match kind {
        FieldKind::Int => Storage::Integer,
        FieldKind::Float => Storage::Real,
        FieldKind::Str
        | FieldKind::DateTime
        | FieldKind::Date
        | FieldKind::Time
        | FieldKind::Uuid
        | FieldKind::Decimal => Storage::Text,
        FieldKind::Bool => Storage::Bool,
        FieldKind::Bytes
        | FieldKind::List
        | FieldKind::Dict
        | FieldKind::Vector
        | FieldKind::Enum
        | FieldKind::Any => Storage::Json,
        FieldKind::Link => Storage::Scalar,
    }
}

/// A parameter value handed to a driver.
#[derive(Debug, Clone, PartialEq)]
pub enum SqlValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

/// A column value as a driver reads it (borrowed from the driver's row).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum SqlRef<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(&'a str),
    Blob(&'a [u8]),
}

fn unstorable(what: &str, kind: FieldKind) -> Error {
    Error::serialization(format!(
        "a {what} value cannot be stored in a {} column",
        kind.as_str()
    ))
}

fn float(f: f64, kind: FieldKind) -> Result<SqlValue> {
    // SQL databases turn NaN into NULL; refuse rather than change the value.
    if f.is_nan() {
        return Err(unstorable("NaN", kind));
    }
    Ok(SqlValue::Float(f))
}

fn json_text(value: &Value) -> SqlValue {
    SqlValue::Text(value.to_json().to_string())
}

/// `value` (already checked against the field kind) as a column value.
pub fn encode(kind: FieldKind, value: &Value) -> Result<SqlValue> {
    if value.is_null() {
        return Ok(SqlValue::Null);
    }
    match (storage(kind), value) {
        (Storage::Json, v) => Ok(json_text(v)),
        (Storage::Bool, Value::Bool(b)) => Ok(SqlValue::Bool(*b)),
        (_, Value::Bool(b)) => Ok(SqlValue::Int(i64::from(*b))),
        (_, Value::Int(i)) => Ok(SqlValue::Int(*i)),
        (_, Value::Float(f)) => float(*f, kind),
        (Storage::Text | Storage::Scalar, Value::Str(s)) => Ok(SqlValue::Text(s.to_string())),
        (_, other) => Err(unstorable(other.type_name(), kind)),
    }
}

fn corrupt(kind: FieldKind, found: &str) -> Error {
    Error::serialization(format!(
        "stored value does not fit a {} field (found {found})",
        kind.as_str()
    ))
}

fn from_json_text(kind: FieldKind, text: &str) -> Result<Value> {
    let json: Json = serde_json::from_str(text).map_err(|_| corrupt(kind, "invalid JSON"))?;
    Value::from_json(&json, kind).map_err(|_| corrupt(kind, "JSON of another shape"))
}

/// A column value read back as the engine value of `kind`.
pub fn decode(kind: FieldKind, raw: SqlRef<'_>) -> Result<Value> {
    Ok(match (storage(kind), raw) {
        (_, SqlRef::Null) => Value::Null,
        (Storage::Json, SqlRef::Text(text)) => return from_json_text(kind, text),
        (Storage::Bool, SqlRef::Int(i)) => Value::Bool(i != 0),
        (Storage::Real, SqlRef::Int(i)) => Value::Float(i as f64),
        (Storage::Integer | Storage::Scalar, SqlRef::Int(i)) => Value::Int(i),
        (Storage::Real | Storage::Scalar, SqlRef::Float(f)) => Value::Float(f),
        (Storage::Text | Storage::Scalar, SqlRef::Text(s)) => Value::Str(Arc::from(s)),
        (_, SqlRef::Int(_)) => return Err(corrupt(kind, "an integer")),
        (_, SqlRef::Float(_)) => return Err(corrupt(kind, "a float")),
        (_, SqlRef::Text(_)) => return Err(corrupt(kind, "text")),
        (_, SqlRef::Blob(_)) => return Err(corrupt(kind, "a blob")),
    })
}

/// A column of unknown kind (raw queries, facets): the value as it is.
pub fn decode_untyped(raw: SqlRef<'_>) -> Value {
    match raw {
        SqlRef::Null => Value::Null,
        SqlRef::Int(i) => Value::Int(i),
        SqlRef::Float(f) => Value::Float(f),
        SqlRef::Text(s) => Value::Str(Arc::from(s)),
        SqlRef::Blob(b) => Value::Bytes(Arc::from(b)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(kind: FieldKind, value: Value) -> Value {
        let encoded = encode(kind, &value).unwrap();
        let raw = match &encoded {
            SqlValue::Null => SqlRef::Null,
            SqlValue::Bool(b) => SqlRef::Int(i64::from(*b)),
            SqlValue::Int(i) => SqlRef::Int(*i),
            SqlValue::Float(f) => SqlRef::Float(*f),
            SqlValue::Text(s) => SqlRef::Text(s),
        };
        decode(kind, raw).unwrap()
    }

    #[test]
    fn every_kind_round_trips() {
        let cases = [
            (FieldKind::Int, Value::Int(-7)),
            (FieldKind::Float, Value::Float(2.5)),
            (FieldKind::Float, Value::Float(f64::INFINITY)),
            (FieldKind::Str, Value::str("x'\"; DROP")),
            (FieldKind::Bool, Value::Bool(true)),
            (FieldKind::DateTime, Value::str("2024-05-01T12:30:00+00:00")),
            (FieldKind::Bytes, Value::Bytes(Arc::from(&b"\x00\xff"[..]))),
            (
                FieldKind::List,
                Value::List(Arc::from(vec![Value::str("a"), Value::Int(1)])),
            ),
            (
                FieldKind::Dict,
                Value::Map(Arc::from(vec![(Arc::from("k"), Value::Null)])),
            ),
            (FieldKind::Vector, Value::Vector(Arc::from(vec![1.0, 0.5]))),
            (FieldKind::Enum, Value::Int(3)),
            (FieldKind::Any, Value::str("3")),
            (FieldKind::Link, Value::str("pk")),
            (FieldKind::Link, Value::Int(9)),
            (FieldKind::Str, Value::Null),
        ];
        for (kind, value) in cases {
            assert_eq!(round_trip(kind, value.clone()), value, "{kind}");
        }
    }

    #[test]
    fn enum_and_any_keep_their_json_type() {
        assert_eq!(
            encode(FieldKind::Enum, &Value::str("3")).unwrap(),
            SqlValue::Text("\"3\"".into())
        );
        assert_eq!(
            encode(FieldKind::Enum, &Value::Int(3)).unwrap(),
            SqlValue::Text("3".into())
        );
    }

    #[test]
    fn nan_and_misfits_are_refused_without_values() {
        let err = encode(FieldKind::Float, &Value::Float(f64::NAN)).unwrap_err();
        assert_eq!(
            err.message,
            "a NaN value cannot be stored in a float column"
        );
        let err = encode(FieldKind::Int, &Value::str("secret")).unwrap_err();
        assert_eq!(err.message, "a str value cannot be stored in a int column");
        let err = decode(FieldKind::Dict, SqlRef::Text("{nope")).unwrap_err();
        assert_eq!(
            err.message,
            "stored value does not fit a dict field (found invalid JSON)"
        );
        assert!(decode(FieldKind::Int, SqlRef::Text("secret")).is_err());
    }
}
