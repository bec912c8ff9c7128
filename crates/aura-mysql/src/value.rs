//! Values on the wire: parameters as mysql_async values, and cells read
//! back by their column type (binary protocol: integers and doubles
//! arrive typed; DECIMAL, text and JSON arrive as bytes).

use aura_core::{Error, FieldKind, ModelSchema, Result, Row, Value};
use aura_sql::{decode, decode_untyped, SqlRef, SqlValue};
use mysql_async::consts::ColumnType;
use mysql_async::{Column, Value as MyValue};

/// The collation id of binary strings (BLOB, VARBINARY).
const BINARY_CHARSET: u16 = 63;

/// A bound parameter (booleans travel as integers, as they are stored).
pub fn param(value: &SqlValue) -> MyValue {
    match value {
        SqlValue::Null => MyValue::NULL,
        SqlValue::Bool(b) => MyValue::Int(i64::from(*b)),
        SqlValue::Int(i) => MyValue::Int(*i),
        SqlValue::Float(f) => MyValue::Double(*f),
        SqlValue::Text(s) => MyValue::Bytes(s.as_bytes().to_vec()),
    }
}

pub fn params(values: &[SqlValue]) -> Vec<MyValue> {
    values.iter().map(param).collect()
}

/// A cell as the codec reads it, or a serialization error naming the
/// column (never its value).
#[derive(Debug, Clone, PartialEq)]
pub enum Cell<'a> {
    Null,
    Int(i64),
    Float(f64),
    Text(&'a str),
    Owned(String),
    Bytes(&'a [u8]),
}

fn unreadable(column: &Column, why: &str) -> Error {
    Error::serialization(format!("cannot read column '{}': {why}", column.name_str()))
        .with_context("driver", crate::DRIVER)
}

/// A DECIMAL as the number it holds: an integer when it has no fraction
/// (SUM of integers), a float otherwise.
fn decimal(text: &str) -> Option<Cell<'static>> {
    let trimmed = match text.split_once('.') {
        Some((whole, frac)) if frac.bytes().all(|b| b == b'0') => whole,
        Some(_) => return text.parse().ok().map(Cell::Float),
        None => text,
    };
    trimmed
        .parse()
        .ok()
        .map(Cell::Int)
        .or_else(|| text.parse().ok().map(Cell::Float))
}

fn is_text(column: &Column) -> bool {
    column.character_set() != BINARY_CHARSET
        || matches!(column.column_type(), ColumnType::MYSQL_TYPE_JSON)
}

pub fn cell<'a>(value: &'a MyValue, column: &Column) -> Result<Cell<'a>> {
    Ok(match value {
        MyValue::NULL => Cell::Null,
        MyValue::Int(i) => Cell::Int(*i),
        MyValue::UInt(u) => match i64::try_from(*u) {
            Ok(i) => Cell::Int(i),
            Err(_) => Cell::Float(*u as f64),
        },
        MyValue::Float(f) => Cell::Float(f64::from(*f)),
        MyValue::Double(f) => Cell::Float(*f),
        MyValue::Bytes(raw) => {
            let ty = column.column_type();
            if matches!(
                ty,
                ColumnType::MYSQL_TYPE_NEWDECIMAL | ColumnType::MYSQL_TYPE_DECIMAL
            ) {
                let text =
                    std::str::from_utf8(raw).map_err(|_| unreadable(column, "bad decimal"))?;
                return decimal(text).ok_or_else(|| unreadable(column, "bad decimal"));
            }
            if is_text(column) {
                Cell::Text(
                    std::str::from_utf8(raw)
                        .map_err(|_| unreadable(column, "stored text is not UTF-8"))?,
                )
            } else {
                Cell::Bytes(raw)
            }
        }
        MyValue::Date(y, mo, d, h, mi, s, us) => Cell::Owned(
            if (*h, *mi, *s, *us) == (0, 0, 0, 0)
                && column.column_type() == ColumnType::MYSQL_TYPE_DATE
            {
                format!("{y:04}-{mo:02}-{d:02}")
            } else {
                format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{us:06}")
            },
        ),
        MyValue::Time(neg, d, h, mi, s, us) => {
            let sign = if *neg { "-" } else { "" };
            let hours = u32::from(*h) + d * 24;
            Cell::Owned(format!("{sign}{hours:02}:{mi:02}:{s:02}.{us:06}"))
        }
    })
}

impl Cell<'_> {
    fn raw(&self) -> SqlRef<'_> {
        match self {
            Cell::Null => SqlRef::Null,
            Cell::Int(i) => SqlRef::Int(*i),
            Cell::Float(f) => SqlRef::Float(*f),
            Cell::Text(s) => SqlRef::Text(s),
            Cell::Owned(s) => SqlRef::Text(s),
            Cell::Bytes(b) => SqlRef::Blob(b),
        }
    }

    /// The value of a field of `kind` (booleans are TINYINT(1)).
    pub fn typed(&self, kind: FieldKind) -> Result<Value> {
        decode(kind, self.raw())
    }

    /// The value as it is (raw queries).
    pub fn untyped(&self) -> Value {
        decode_untyped(self.raw())
    }
}

/// A result row in the schema's field order.
pub fn read_row(schema: &ModelSchema, row: &mysql_async::Row) -> Result<Row> {
    let columns = row.columns_ref();
    let mut values = Vec::with_capacity(schema.fields.len());
    for (i, field) in schema.fields.iter().enumerate() {
        values.push(cell_at(row, columns, i)?.typed(field.kind)?);
    }
    Ok(std::sync::Arc::from(values))
}

/// The cell of column `i` of `row`.
pub fn cell_at<'r>(row: &'r mysql_async::Row, columns: &[Column], i: usize) -> Result<Cell<'r>> {
    let (Some(value), Some(column)) = (row.as_ref(i), columns.get(i)) else {
        return Err(Error::serialization(format!(
            "a MySQL row has no column {i}"
        )));
    };
    cell(value, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_read_as_the_number_they_hold() {
        assert_eq!(decimal("42"), Some(Cell::Int(42)));
        assert_eq!(decimal("-7.000"), Some(Cell::Int(-7)));
        assert_eq!(decimal("2.5"), Some(Cell::Float(2.5)));
        assert_eq!(decimal("x"), None);
    }

    #[test]
    fn parameters_keep_their_type() {
        assert_eq!(param(&SqlValue::Bool(true)), MyValue::Int(1));
        assert_eq!(param(&SqlValue::Float(1.5)), MyValue::Double(1.5));
        assert_eq!(
            param(&SqlValue::Text("é".into())),
            MyValue::Bytes("é".as_bytes().to_vec())
        );
        assert_eq!(param(&SqlValue::Null), MyValue::NULL);
    }
}
