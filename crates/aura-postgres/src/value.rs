//! Values on the wire, in PostgreSQL's binary format: parameters bound to
//! whatever type the server (or the statement) gives them, and cells read
//! from any column type the codec knows.

use std::borrow::Cow;
use std::error::Error as StdError;

use aura_core::{Error, FieldKind, ModelSchema, Result, Row, Value};
use aura_sql::{decode, decode_untyped, SqlRef, SqlValue};
use bytes::{BufMut, BytesMut};
use tokio_postgres::types::{to_sql_checked, FromSql, IsNull, ToSql, Type};

type BoxError = Box<dyn StdError + Sync + Send>;

/// The statement's parameter types: what each `SqlValue` is declared as,
/// so one compiled statement binds exactly (NULL: left to the server).
pub fn param_types(params: &[SqlValue]) -> Vec<Type> {
    params
        .iter()
        .map(|p| match p {
            SqlValue::Null => Type::UNKNOWN,
            SqlValue::Bool(_) => Type::BOOL,
            SqlValue::Int(_) => Type::INT8,
            SqlValue::Float(_) => Type::FLOAT8,
            SqlValue::Text(_) => Type::TEXT,
        })
        .collect()
}

/// A bound parameter. It accepts every type and converts where the
/// conversion is exact; otherwise binding fails naming the types only
/// (never the value).
#[derive(Debug)]
pub struct Param<'a>(pub &'a SqlValue);

fn mismatch(what: &str, ty: &Type) -> BoxError {
    format!("cannot bind a {what} parameter to PostgreSQL type {ty}").into()
}

fn put_int(i: i64, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
    match *ty {
        Type::INT8 => out.put_i64(i),
        Type::INT4 => out.put_i32(i32::try_from(i).map_err(|_| mismatch("out-of-range int", ty))?),
        Type::INT2 => out.put_i16(i16::try_from(i).map_err(|_| mismatch("out-of-range int", ty))?),
        // Exact only below 2^53; larger integers would be rounded.
        Type::FLOAT8 if i.unsigned_abs() <= 1 << 53 => out.put_f64(i as f64),
        Type::BOOL if i == 0 || i == 1 => out.put_u8(i as u8),
        _ if is_text(ty) => out.put_slice(i.to_string().as_bytes()),
        _ => return Err(mismatch("int", ty)),
    }
    Ok(IsNull::No)
}

fn put_float(f: f64, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
    match *ty {
        Type::FLOAT8 => out.put_f64(f),
        Type::FLOAT4 => out.put_f32(f as f32),
        Type::INT8 | Type::INT4 | Type::INT2 if f.fract() == 0.0 && f.abs() < 9.0e18 => {
            return put_int(f as i64, ty, out)
        }
        _ => return Err(mismatch("float", ty)),
    }
    Ok(IsNull::No)
}

fn is_text(ty: &Type) -> bool {
    matches!(
        *ty,
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN | Type::JSON
    )
}

fn put_text(s: &str, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
    match *ty {
        _ if is_text(ty) => out.put_slice(s.as_bytes()),
        Type::JSONB => {
            out.put_u8(1);
            out.put_slice(s.as_bytes());
        }
        _ => return Err(mismatch("str", ty)),
    }
    Ok(IsNull::No)
}

impl ToSql for Param<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> std::result::Result<IsNull, BoxError> {
        match self.0 {
            SqlValue::Null => Ok(IsNull::Yes),
            SqlValue::Bool(b) => match *ty {
                Type::BOOL => {
                    out.put_u8(u8::from(*b));
                    Ok(IsNull::No)
                }
                _ => put_int(i64::from(*b), ty, out),
            },
            SqlValue::Int(i) => put_int(*i, ty, out),
            SqlValue::Float(f) => put_float(*f, ty, out),
            SqlValue::Text(s) => put_text(s, ty, out),
        }
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// A column value read in binary format.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(Cow<'a, str>),
    Bytes(&'a [u8]),
}

fn utf8(raw: &[u8]) -> std::result::Result<&str, BoxError> {
    std::str::from_utf8(raw).map_err(|_| "stored text is not UTF-8".into())
}

fn uuid_text(raw: &[u8]) -> std::result::Result<String, BoxError> {
    if raw.len() != 16 {
        return Err("malformed uuid".into());
    }
    let hex: String = raw.iter().map(|b| format!("{b:02x}")).collect();
    Ok(format!(
        "{}-{}-{}-{}-{}",
        &hex[0..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    ))
}

impl<'a> FromSql<'a> for Cell<'a> {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> std::result::Result<Self, BoxError> {
        Ok(match *ty {
            Type::BOOL => Cell::Bool(bool::from_sql(ty, raw)?),
            Type::INT2 => Cell::Int(i64::from(i16::from_sql(ty, raw)?)),
            Type::INT4 => Cell::Int(i64::from(i32::from_sql(ty, raw)?)),
            Type::INT8 => Cell::Int(i64::from_sql(ty, raw)?),
            Type::OID => Cell::Int(i64::from(u32::from_sql(ty, raw)?)),
            Type::FLOAT4 => Cell::Float(f64::from(f32::from_sql(ty, raw)?)),
            Type::FLOAT8 => Cell::Float(f64::from_sql(ty, raw)?),
            Type::BYTEA => Cell::Bytes(raw),
            Type::UUID => Cell::Text(Cow::Owned(uuid_text(raw)?)),
            Type::JSONB => match raw.split_first() {
                Some((1, text)) => Cell::Text(Cow::Borrowed(utf8(text)?)),
                _ => return Err("unsupported jsonb version".into()),
            },
            _ if is_text(ty) => Cell::Text(Cow::Borrowed(utf8(raw)?)),
            _ => {
                return Err(format!(
                    "PostgreSQL type {ty} is not decoded; cast the column to text in SQL (::text)"
                )
                .into())
            }
        })
    }

    fn from_sql_null(_: &Type) -> std::result::Result<Self, BoxError> {
        Ok(Cell::Null)
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

impl Cell<'_> {
    /// The value of a field of `kind` (booleans travel as integers).
    pub fn typed(&self, kind: FieldKind) -> Result<Value> {
        let raw = match self {
            Cell::Null => SqlRef::Null,
            Cell::Bool(b) => SqlRef::Int(i64::from(*b)),
            Cell::Int(i) => SqlRef::Int(*i),
            Cell::Float(f) => SqlRef::Float(*f),
            Cell::Text(s) => SqlRef::Text(s),
            Cell::Bytes(b) => SqlRef::Blob(b),
        };
        decode(kind, raw)
    }

    /// The value as it is (raw queries).
    pub fn untyped(&self) -> Value {
        match self {
            Cell::Bool(b) => Value::Bool(*b),
            Cell::Null => Value::Null,
            Cell::Int(i) => decode_untyped(SqlRef::Int(*i)),
            Cell::Float(f) => decode_untyped(SqlRef::Float(*f)),
            Cell::Text(s) => decode_untyped(SqlRef::Text(s)),
            Cell::Bytes(b) => decode_untyped(SqlRef::Blob(b)),
        }
    }
}

/// A cell, or a serialization error naming the column (never its value).
pub fn cell<'r>(row: &'r tokio_postgres::Row, i: usize) -> Result<Cell<'r>> {
    row.try_get::<_, Cell<'r>>(i).map_err(|err| {
        let name = row.columns().get(i).map_or("?", |c| c.name());
        let why = err.source().map(|s| s.to_string()).unwrap_or_default();
        Error::serialization(format!("cannot read column '{name}': {why}"))
            .with_context("driver", crate::DRIVER)
    })
}

/// A result row in the schema's field order.
pub fn read_row(schema: &ModelSchema, row: &tokio_postgres::Row) -> Result<Row> {
    let mut values = Vec::with_capacity(schema.fields.len());
    for (i, field) in schema.fields.iter().enumerate() {
        values.push(cell(row, i)?.typed(field.kind)?);
    }
    Ok(std::sync::Arc::from(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(value: SqlValue, ty: Type) -> std::result::Result<Vec<u8>, String> {
        let mut out = BytesMut::new();
        Param(&value)
            .to_sql(&ty, &mut out)
            .map(|_| out.to_vec())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn parameters_convert_only_exactly() {
        assert_eq!(
            bound(SqlValue::Int(7), Type::INT4).unwrap(),
            vec![0, 0, 0, 7]
        );
        assert_eq!(
            bound(SqlValue::Float(2.0), Type::INT8).unwrap(),
            2i64.to_be_bytes()
        );
        assert_eq!(
            bound(SqlValue::Float(2.5), Type::INT8).unwrap_err(),
            "cannot bind a float parameter to PostgreSQL type int8"
        );
        assert_eq!(
            bound(SqlValue::Int(1 << 40), Type::INT4).unwrap_err(),
            "cannot bind a out-of-range int parameter to PostgreSQL type int4"
        );
        assert_eq!(
            bound(SqlValue::Text("{}".into()), Type::JSONB).unwrap(),
            b"\x01{}"
        );
        assert_eq!(
            bound(SqlValue::Text("secret".into()), Type::INT8).unwrap_err(),
            "cannot bind a str parameter to PostgreSQL type int8"
        );
    }

    #[test]
    fn cells_decode_by_type() {
        let uuid = [
            0x12u8, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3, 4, 5, 6, 7, 8,
        ];
        assert_eq!(
            Cell::from_sql(&Type::UUID, &uuid).unwrap(),
            Cell::Text(Cow::Owned("12345678-9abc-def0-0102-030405060708".into()))
        );
        assert_eq!(Cell::from_sql(&Type::INT2, &[0, 5]).unwrap(), Cell::Int(5));
        assert_eq!(
            Cell::Bool(true).typed(FieldKind::Bool).unwrap(),
            Value::Bool(true)
        );
        assert_eq!(Cell::Bool(true).untyped(), Value::Bool(true));
        assert!(Cell::from_sql(&Type::NUMERIC, &[0, 0]).is_err());
    }
}
