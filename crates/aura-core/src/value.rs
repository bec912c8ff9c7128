//! Typed row values, their total order (sorting, index keys), Python-like
//! equality (filters) and the storage-form JSON conversions.

use std::cmp::Ordering;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::Arc;

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::Value as Json;

use crate::error::{Error, Result};
use crate::schema::FieldKind;

/// One stored value. `Map` keeps insertion order.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    #[default]
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(Arc<str>),
    Bytes(Arc<[u8]>),
    List(Arc<[Value]>),
    Map(Arc<[(Arc<str>, Value)]>),
    Vector(Arc<[f64]>),
}

/// The JSON key that marks bytes in storage form.
pub const BYTES_KEY: &str = "__bytes__";

/// Position of each value class in the total order.
fn class_rank(v: &Value) -> u8 {
    match v {
        Value::Null => 0,
        Value::Bool(_) | Value::Int(_) | Value::Float(_) => 1,
        Value::Str(_) => 2,
        Value::Bytes(_) => 3,
        Value::List(_) => 4,
        Value::Map(_) => 5,
        Value::Vector(_) => 6,
    }
}

/// A number viewed for comparison: bools are 0/1.
#[derive(Clone, Copy)]
enum Num {
    I(i64),
    F(f64),
}

fn as_num(v: &Value) -> Option<Num> {
    match v {
        Value::Bool(b) => Some(Num::I(i64::from(*b))),
        Value::Int(i) => Some(Num::I(*i)),
        Value::Float(f) => Some(Num::F(*f)),
        _ => None,
    }
}

/// Exact comparison of an integer with a non-NaN float (no lossy casts).
fn cmp_int_float(i: i64, f: f64) -> Ordering {
    // 2^63 is exactly representable; every i64 is below it.
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    if f >= TWO_63 {
        return Ordering::Less;
    }
    if f < -TWO_63 {
        return Ordering::Greater;
    }
    let whole = f.trunc();
    // In range, so the cast is exact.
    match i.cmp(&(whole as i64)) {
        Ordering::Equal => whole.partial_cmp(&f).unwrap_or(Ordering::Equal),
        other => other,
    }
}

/// Floats ordered numerically with every NaN last (and equal to each other).
fn cmp_float(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).unwrap_or(Ordering::Equal),
    }
}

fn cmp_num(a: Num, b: Num) -> Ordering {
    match (a, b) {
        (Num::I(x), Num::I(y)) => x.cmp(&y),
        (Num::F(x), Num::F(y)) => cmp_float(x, y),
        (Num::I(_), Num::F(y)) if y.is_nan() => Ordering::Less,
        (Num::I(x), Num::F(y)) => cmp_int_float(x, y),
        (Num::F(x), Num::I(_)) if x.is_nan() => Ordering::Greater,
        (Num::F(x), Num::I(y)) => cmp_int_float(y, x).reverse(),
    }
}

fn cmp_slices<T>(a: &[T], b: &[T], cmp: impl Fn(&T, &T) -> Ordering) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        match cmp(x, y) {
            Ordering::Equal => {}
            other => return other,
        }
    }
    a.len().cmp(&b.len())
}

/// Map entries sorted by key, so order-insensitive maps compare consistently.
fn sorted_entries(m: &[(Arc<str>, Value)]) -> Vec<&(Arc<str>, Value)> {
    let mut entries: Vec<_> = m.iter().collect();
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    entries
}

fn cmp_maps(a: &[(Arc<str>, Value)], b: &[(Arc<str>, Value)]) -> Ordering {
    let (a, b) = (sorted_entries(a), sorted_entries(b));
    cmp_slices(&a, &b, |x, y| {
        x.0.cmp(&y.0).then_with(|| x.1.cmp_total(&y.1))
    })
}

impl Value {
    /// Total order for sorting and index keys: Null < numbers < Str < Bytes
    /// < List < Map < Vector; numbers compare numerically, NaN last.
    pub fn cmp_total(&self, other: &Value) -> Ordering {
        let (ra, rb) = (class_rank(self), class_rank(other));
        if ra != rb {
            return ra.cmp(&rb);
        }
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => a.as_bytes().cmp(b.as_bytes()),
            (Value::Bytes(a), Value::Bytes(b)) => a.cmp(b),
            (Value::List(a), Value::List(b)) => cmp_slices(a, b, Value::cmp_total),
            (Value::Map(a), Value::Map(b)) => cmp_maps(a, b),
            (Value::Vector(a), Value::Vector(b)) => cmp_slices(a, b, |x, y| cmp_float(*x, *y)),
            _ => match (as_num(self), as_num(other)) {
                (Some(a), Some(b)) => cmp_num(a, b),
                _ => Ordering::Equal, // both Null
            },
        }
    }

    /// Python-like equality: `1 == 1.0 == True`, NaN unequal to itself,
    /// lists elementwise (a vector equals a list of the same numbers), maps by
    /// key set.
    pub fn eq_loose(&self, other: &Value) -> bool {
        match (self, other) {
            (Value::Null, Value::Null) => true,
            (Value::Str(a), Value::Str(b)) => a == b,
            (Value::Bytes(a), Value::Bytes(b)) => a == b,
            (Value::List(a), Value::List(b)) => eq_lists(a, b),
            (Value::Map(a), Value::Map(b)) => eq_maps(a, b),
            (Value::Vector(a), Value::Vector(b)) => {
                a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| x == y)
            }
            (Value::Vector(v), Value::List(l)) | (Value::List(l), Value::Vector(v)) => {
                eq_vector_list(v, l)
            }
            _ => match (as_num(self), as_num(other)) {
                (Some(a), Some(b)) => eq_num(a, b),
                _ => false,
            },
        }
    }

    /// Python-like ordering for `<`/`>` filters: `None` when the values are
    /// not comparable (null, NaN, different classes, maps).
    pub fn cmp_py(&self, other: &Value) -> Option<Ordering> {
        match (self, other) {
            (Value::Str(a), Value::Str(b)) => Some(a.as_bytes().cmp(b.as_bytes())),
            (Value::Bytes(a), Value::Bytes(b)) => Some(a.cmp(b)),
            (Value::List(a), Value::List(b)) => cmp_py_lists(a, b),
            (Value::Vector(a), Value::Vector(b)) => cmp_py_floats(a, b),
            _ => match (as_num(self), as_num(other)) {
                (Some(Num::F(f)), _) | (_, Some(Num::F(f))) if f.is_nan() => None,
                (Some(a), Some(b)) => Some(cmp_num(a, b)),
                _ => None,
            },
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Value::Str(s) => Some(s),
            _ => None,
        }
    }

    /// Name of the value class, for error messages (never the value itself).
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "bool",
            Value::Int(_) => "int",
            Value::Float(_) => "float",
            Value::Str(_) => "str",
            Value::Bytes(_) => "bytes",
            Value::List(_) => "list",
            Value::Map(_) => "dict",
            Value::Vector(_) => "vector",
        }
    }

    /// Value of `key` in a map; `None` for a missing key or a non-map.
    pub fn map_get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| &**k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    pub fn str(s: &str) -> Value {
        Value::Str(Arc::from(s))
    }
}

fn eq_num(a: Num, b: Num) -> bool {
    match (a, b) {
        (Num::F(x), _) | (_, Num::F(x)) if x.is_nan() => false,
        _ => cmp_num(a, b) == Ordering::Equal,
    }
}

fn eq_lists(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.eq_loose(y))
}

fn eq_vector_list(v: &[f64], l: &[Value]) -> bool {
    v.len() == l.len() && v.iter().zip(l).all(|(x, y)| Value::Float(*x).eq_loose(y))
}

fn eq_maps(a: &[(Arc<str>, Value)], b: &[(Arc<str>, Value)]) -> bool {
    a.len() == b.len()
        && a.iter().all(|(k, v)| {
            b.iter()
                .find(|(k2, _)| k2 == k)
                .is_some_and(|(_, v2)| v.eq_loose(v2))
        })
}

/// Python list ordering: the first unequal pair decides, then length.
fn cmp_py_lists(a: &[Value], b: &[Value]) -> Option<Ordering> {
    for (x, y) in a.iter().zip(b) {
        if !x.eq_loose(y) {
            return x.cmp_py(y);
        }
    }
    Some(a.len().cmp(&b.len()))
}

fn cmp_py_floats(a: &[f64], b: &[f64]) -> Option<Ordering> {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.partial_cmp(y);
        }
    }
    Some(a.len().cmp(&b.len()))
}

// ---------------------------------------------------------------------------
// Storage-form JSON conversions

fn invalid(kind: FieldKind) -> Error {
    Error::validation(format!("Expected a value of kind '{}'", kind.as_str()))
}

fn json_number(n: &serde_json::Number) -> Value {
    if let Some(i) = n.as_i64() {
        Value::Int(i)
    } else {
        // u64 beyond i64, or a float.
        Value::Float(n.as_f64().unwrap_or(f64::NAN))
    }
}

/// An integral float within i64 range as an exact integer.
fn integral(f: f64) -> Option<i64> {
    const TWO_63: f64 = 9_223_372_036_854_775_808.0;
    (f.fract() == 0.0 && (-TWO_63..TWO_63).contains(&f)).then_some(f as i64)
}

fn decode_bytes(b64: &str) -> Result<Value> {
    BASE64
        .decode(b64)
        .map(|b| Value::Bytes(Arc::from(b)))
        .map_err(|_| Error::validation("Invalid base64 in a bytes value"))
}

/// `{"__bytes__": "<base64>"}` (exactly that one key), if `obj` is one.
fn bytes_marker(obj: &serde_json::Map<String, Json>) -> Option<&str> {
    match (obj.len(), obj.get(BYTES_KEY)) {
        (1, Some(Json::String(s))) => Some(s),
        _ => None,
    }
}

fn map_from_json(obj: &serde_json::Map<String, Json>) -> Result<Value> {
    let entries = obj
        .iter()
        .map(|(k, v)| Ok((Arc::from(k.as_str()), Value::from_json_untyped(v)?)))
        .collect::<Result<Vec<_>>>()?;
    Ok(Value::Map(Arc::from(entries)))
}

fn list_from_json(items: &[Json]) -> Result<Value> {
    let values = items
        .iter()
        .map(Value::from_json_untyped)
        .collect::<Result<Vec<_>>>()?;
    Ok(Value::List(Arc::from(values)))
}

fn vector_from_json(json: &Json) -> Result<Value> {
    let Json::Array(items) = json else {
        return Err(invalid(FieldKind::Vector));
    };
    let comps = items
        .iter()
        .map(|c| match c {
            Json::Number(n) => n.as_f64().ok_or_else(|| invalid(FieldKind::Vector)),
            Json::Bool(b) => Ok(f64::from(u8::from(*b))),
            _ => Err(Error::validation("Vector components must be numeric")),
        })
        .collect::<Result<Vec<f64>>>()?;
    Ok(Value::Vector(Arc::from(comps)))
}

fn int_from_json(json: &Json) -> Result<Value> {
    match json {
        Json::Bool(b) => Ok(Value::Int(i64::from(*b))),
        Json::Number(n) => match json_number(n) {
            Value::Float(f) => integral(f)
                .map(Value::Int)
                .ok_or_else(|| invalid(FieldKind::Int)),
            v => Ok(v),
        },
        _ => Err(invalid(FieldKind::Int)),
    }
}

fn float_from_json(json: &Json) -> Result<Value> {
    match json {
        Json::Bool(b) => Ok(Value::Float(f64::from(u8::from(*b)))),
        Json::Number(n) => n
            .as_f64()
            .map(Value::Float)
            .ok_or_else(|| invalid(FieldKind::Float)),
        _ => Err(invalid(FieldKind::Float)),
    }
}

fn bool_from_json(json: &Json) -> Result<Value> {
    match json {
        Json::Bool(b) => Ok(Value::Bool(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(0) => Ok(Value::Bool(false)),
            Some(1) => Ok(Value::Bool(true)),
            _ => Err(invalid(FieldKind::Bool)),
        },
        _ => Err(invalid(FieldKind::Bool)),
    }
}

impl Value {
    /// Binds a storage-form JSON value to the typed value of a field kind.
    /// `null` is `Null` for every kind (nullability is checked elsewhere).
    pub fn from_json(json: &Json, kind: FieldKind) -> Result<Value> {
        if json.is_null() {
            return Ok(Value::Null);
        }
        match kind {
            FieldKind::Int => int_from_json(json),
            FieldKind::Float => float_from_json(json),
            FieldKind::Bool => bool_from_json(json),
            FieldKind::Str
            | FieldKind::DateTime
            | FieldKind::Date
            | FieldKind::Time
            | FieldKind::Uuid
            | FieldKind::Decimal => match json {
                Json::String(s) => Ok(Value::str(s)),
                _ => Err(invalid(kind)),
            },
            FieldKind::Bytes => match json {
                Json::Object(obj) => {
                    bytes_marker(obj).map_or_else(|| Err(invalid(kind)), decode_bytes)
                }
                _ => Err(invalid(kind)),
            },
            FieldKind::Vector => vector_from_json(json),
            FieldKind::List => match json {
                Json::Array(items) => list_from_json(items),
                _ => Err(invalid(kind)),
            },
            FieldKind::Dict => match json {
                Json::Object(obj) => map_from_json(obj),
                _ => Err(invalid(kind)),
            },
            FieldKind::Enum | FieldKind::Any | FieldKind::Link => Value::from_json_untyped(json),
        }
    }

    /// Converts JSON without a field kind: objects become maps, the bytes
    /// marker becomes bytes, arrays become lists.
    pub fn from_json_untyped(json: &Json) -> Result<Value> {
        Ok(match json {
            Json::Null => Value::Null,
            Json::Bool(b) => Value::Bool(*b),
            Json::Number(n) => json_number(n),
            Json::String(s) => Value::str(s),
            Json::Array(items) => return list_from_json(items),
            Json::Object(obj) => match bytes_marker(obj) {
                Some(b64) => return decode_bytes(b64),
                None => return map_from_json(obj),
            },
        })
    }

    /// Storage-form JSON: bytes as `{"__bytes__": b64}`, vectors as arrays,
    /// non-finite floats as `null` (JSON has no NaN).
    pub fn to_json(&self) -> Json {
        match self {
            Value::Null => Json::Null,
            Value::Bool(b) => Json::Bool(*b),
            Value::Int(i) => Json::from(*i),
            Value::Float(f) => float_json(*f),
            Value::Str(s) => Json::String(s.to_string()),
            Value::Bytes(b) => {
                let mut obj = serde_json::Map::new();
                obj.insert(BYTES_KEY.to_owned(), Json::String(BASE64.encode(b)));
                Json::Object(obj)
            }
            Value::List(items) => Json::Array(items.iter().map(Value::to_json).collect()),
            Value::Map(entries) => Json::Object(
                entries
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_json()))
                    .collect(),
            ),
            Value::Vector(comps) => Json::Array(comps.iter().map(|f| float_json(*f)).collect()),
        }
    }
}

fn float_json(f: f64) -> Json {
    serde_json::Number::from_f64(f).map_or(Json::Null, Json::Number)
}

// ---------------------------------------------------------------------------
// Keys

/// A value usable as a map key: equality, order and hash follow `cmp_total`,
/// so `Int(1)`, `Float(1.0)` and `Bool(true)` are the same key.
#[derive(Debug, Clone)]
pub struct Key(pub Value);

impl PartialEq for Key {
    fn eq(&self, other: &Self) -> bool {
        self.0.cmp_total(&other.0) == Ordering::Equal
    }
}

impl Eq for Key {}

impl PartialOrd for Key {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Key {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.cmp_total(&other.0)
    }
}

impl Hash for Key {
    fn hash<H: Hasher>(&self, state: &mut H) {
        hash_value(&self.0, state);
    }
}

impl From<Value> for Key {
    fn from(v: Value) -> Self {
        Key(v)
    }
}

/// Numbers that compare equal hash equally: integral floats hash as integers.
fn hash_float<H: Hasher>(f: f64, state: &mut H) {
    if f.is_nan() {
        state.write_u8(0xff);
    } else if let Some(i) = integral(f) {
        state.write_i64(i);
    } else {
        state.write_u64(f.to_bits());
    }
}

fn hash_value<H: Hasher>(v: &Value, state: &mut H) {
    state.write_u8(class_rank(v));
    match v {
        Value::Null => {}
        Value::Bool(b) => state.write_i64(i64::from(*b)),
        Value::Int(i) => state.write_i64(*i),
        Value::Float(f) => hash_float(*f, state),
        Value::Str(s) => s.hash(state),
        Value::Bytes(b) => b.hash(state),
        Value::List(items) => {
            state.write_usize(items.len());
            items.iter().for_each(|item| hash_value(item, state));
        }
        Value::Map(entries) => hash_map_entries(entries, state),
        Value::Vector(comps) => {
            state.write_usize(comps.len());
            comps.iter().for_each(|c| hash_float(*c, state));
        }
    }
}

/// Order-independent: maps equal by key set must hash equally.
fn hash_map_entries<H: Hasher>(entries: &[(Arc<str>, Value)], state: &mut H) {
    let combined = entries.iter().fold(0u64, |acc, (k, v)| {
        let mut h = DefaultHasher::new();
        k.hash(&mut h);
        hash_value(v, &mut h);
        acc.wrapping_add(h.finish())
    });
    state.write_usize(entries.len());
    state.write_u64(combined);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn hash_of(v: Value) -> u64 {
        let mut h = DefaultHasher::new();
        Key(v).hash(&mut h);
        h.finish()
    }

    fn map(entries: &[(&str, Value)]) -> Value {
        Value::Map(
            entries
                .iter()
                .map(|(k, v)| (Arc::from(*k), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn class_order() {
        let ordered = [
            Value::Null,
            Value::Bool(false),
            Value::Float(0.5),
            Value::Int(1),
            Value::Float(f64::NAN),
            Value::str("a"),
            Value::Bytes(Arc::from(&b"a"[..])),
            Value::List(Arc::from(vec![])),
            map(&[]),
            Value::Vector(Arc::from(vec![0.0])),
        ];
        for w in ordered.windows(2) {
            assert_eq!(
                w[0].cmp_total(&w[1]),
                Ordering::Less,
                "{:?} < {:?}",
                w[0],
                w[1]
            );
        }
    }

    #[test]
    fn numbers_compare_exactly() {
        assert_eq!(Value::Int(1).cmp_total(&Value::Float(1.0)), Ordering::Equal);
        assert_eq!(Value::Bool(true).cmp_total(&Value::Int(1)), Ordering::Equal);
        assert_eq!(
            Value::Int(2).cmp_total(&Value::Float(1.5)),
            Ordering::Greater
        );
        assert_eq!(
            Value::Int(-2).cmp_total(&Value::Float(-1.5)),
            Ordering::Less
        );
        let big = 9_007_199_254_740_993_i64; // 2^53 + 1, not a float
        assert_eq!(
            Value::Int(big).cmp_total(&Value::Float(9_007_199_254_740_992.0)),
            Ordering::Greater
        );
        assert_eq!(
            Value::Int(i64::MAX).cmp_total(&Value::Float(1e19)),
            Ordering::Less
        );
        assert_eq!(
            Value::Int(i64::MIN).cmp_total(&Value::Float(-1e19)),
            Ordering::Greater
        );
        assert_eq!(
            Value::Float(f64::NAN).cmp_total(&Value::Float(f64::INFINITY)),
            Ordering::Greater
        );
        assert_eq!(
            Value::Float(-0.0).cmp_total(&Value::Float(0.0)),
            Ordering::Equal
        );
    }

    #[test]
    fn loose_equality_is_python_like() {
        assert!(Value::Int(1).eq_loose(&Value::Float(1.0)));
        assert!(Value::Bool(true).eq_loose(&Value::Int(1)));
        assert!(!Value::Float(f64::NAN).eq_loose(&Value::Float(f64::NAN)));
        assert!(!Value::Int(1).eq_loose(&Value::str("1")));
        assert!(Value::Null.eq_loose(&Value::Null));
        let a = map(&[("x", Value::Int(1)), ("y", Value::Int(2))]);
        let b = map(&[("y", Value::Float(2.0)), ("x", Value::Int(1))]);
        assert!(a.eq_loose(&b));
        assert_eq!(Key(a.clone()), Key(b.clone()));
        assert_eq!(hash_of(a), hash_of(b));
        let v = Value::Vector(Arc::from(vec![1.0, 2.0]));
        let l = Value::List(Arc::from(vec![Value::Int(1), Value::Int(2)]));
        assert!(v.eq_loose(&l));
    }

    #[test]
    fn python_ordering_rejects_incomparable_values() {
        assert_eq!(Value::Int(1).cmp_py(&Value::str("a")), None);
        assert_eq!(Value::Null.cmp_py(&Value::Int(1)), None);
        assert_eq!(Value::Float(f64::NAN).cmp_py(&Value::Int(1)), None);
        assert_eq!(
            Value::Int(1).cmp_py(&Value::Float(1.5)),
            Some(Ordering::Less)
        );
        assert_eq!(
            Value::str("b").cmp_py(&Value::str("a")),
            Some(Ordering::Greater)
        );
    }

    #[test]
    fn equal_numbers_hash_equally() {
        assert_eq!(hash_of(Value::Int(1)), hash_of(Value::Float(1.0)));
        assert_eq!(hash_of(Value::Bool(true)), hash_of(Value::Int(1)));
        assert_eq!(hash_of(Value::Float(-0.0)), hash_of(Value::Int(0)));
        assert_ne!(hash_of(Value::Int(1)), hash_of(Value::str("1")));
    }

    #[test]
    fn typed_json_conversion() {
        assert_eq!(
            Value::from_json(&json!(3.0), FieldKind::Int),
            Ok(Value::Int(3))
        );
        assert_eq!(
            Value::from_json(&json!(3), FieldKind::Float),
            Ok(Value::Float(3.0))
        );
        assert_eq!(
            Value::from_json(&json!(null), FieldKind::Int),
            Ok(Value::Null)
        );
        let err = Value::from_json(&json!(3.5), FieldKind::Int).unwrap_err();
        assert_eq!(err.code, crate::ErrorCode::ValidationError);
        assert!(Value::from_json(&json!("x"), FieldKind::Int).is_err());
        assert_eq!(
            Value::from_json(&json!({"__bytes__": "AAE="}), FieldKind::Bytes),
            Ok(Value::Bytes(Arc::from(&[0u8, 1][..])))
        );
        assert!(Value::from_json(&json!({"__bytes__": "!!"}), FieldKind::Bytes).is_err());
        assert_eq!(
            Value::from_json(&json!([1, 0.5]), FieldKind::Vector),
            Ok(Value::Vector(Arc::from(vec![1.0, 0.5])))
        );
        assert!(Value::from_json(&json!(["a"]), FieldKind::Vector).is_err());
        assert_eq!(
            Value::from_json(&json!(7), FieldKind::Link),
            Ok(Value::Int(7))
        );
        assert_eq!(
            Value::from_json(&json!("2024-01-01"), FieldKind::Date),
            Ok(Value::str("2024-01-01"))
        );
        assert!(Value::from_json(&json!(1), FieldKind::Str).is_err());
    }

    #[test]
    fn untyped_json_round_trip_keeps_order() {
        let src =
            json!({"b": [1, 2.5, "x", null, true], "a": {"__bytes__": "AAE="}, "c": {"k": 1}});
        let v = Value::from_json_untyped(&src).unwrap();
        assert!(matches!(v.map_get("a"), Some(Value::Bytes(_))));
        assert_eq!(v.to_json(), src);
        assert_eq!(
            serde_json::to_string(&v.to_json()).unwrap(),
            serde_json::to_string(&src).unwrap()
        );
    }

    #[test]
    fn vector_to_json_is_an_array() {
        let v = Value::Vector(Arc::from(vec![1.0, 0.5]));
        assert_eq!(v.to_json(), json!([1.0, 0.5]));
        assert_eq!(Value::Float(f64::NAN).to_json(), json!(null));
    }
}
