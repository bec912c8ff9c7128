//! A serde `Deserializer` over a Python object, so the IR dict becomes an
//! `aura_core::ir::Request` without a JSON detour.
//!
//! It reads exactly the JSON data model (dict with str keys, list or tuple,
//! str, int, float, bool, None) by exact type checks: no attribute probing,
//! no exception raised and discarded on the way. Anything else is an error,
//! which the caller turns into a `query_error`.

use std::fmt;

use pyo3::prelude::*;
use pyo3::types::{PyBool, PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde::de::{self, DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

/// Why a Python object does not deserialize; only the message is kept.
#[derive(Debug)]
pub struct DeError(String);

impl fmt::Display for DeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for DeError {}

impl de::Error for DeError {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        DeError(msg.to_string())
    }
}

impl From<PyErr> for DeError {
    fn from(err: PyErr) -> Self {
        // The Python exception text (e.g. a surrogate in a str) names no
        // bound value beyond what the caller already passed in.
        Python::attach(|py| DeError(err.value(py).to_string()))
    }
}

/// Deserialize `T` from a JSON-shaped Python object.
pub fn from_py<'py, T: for<'de> Deserialize<'de>>(obj: &Bound<'py, PyAny>) -> Result<T, DeError> {
    T::deserialize(PyDeserializer(obj))
}

struct PyDeserializer<'a, 'py>(&'a Bound<'py, PyAny>);

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

fn visit_int<'de, V: Visitor<'de>>(
    int: &Bound<'_, PyInt>,
    visitor: V,
) -> Result<V::Value, DeError> {
    if let Ok(v) = int.extract::<i64>() {
        return visitor.visit_i64(v);
    }
    if let Ok(v) = int.extract::<u64>() {
        return visitor.visit_u64(v);
    }
    if let Ok(v) = int.extract::<i128>() {
        return visitor.visit_i128(v);
    }
    visitor.visit_u128(int.extract::<u128>()?)
}

impl<'de> de::Deserializer<'de> for PyDeserializer<'_, '_> {
    type Error = DeError;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        let obj = self.0;
        if obj.is_none() {
            return visitor.visit_unit();
        }
        if let Ok(s) = obj.cast::<PyString>() {
            return visitor.visit_str(&s.to_cow()?);
        }
        if let Ok(d) = obj.cast::<PyDict>() {
            return visitor.visit_map(DictAccess {
                iter: d.iter(),
                value: None,
            });
        }
        if let Ok(b) = obj.cast_exact::<PyBool>() {
            return visitor.visit_bool(b.is_true());
        }
        if let Ok(i) = obj.cast::<PyInt>() {
            return visit_int(i, visitor);
        }
        if let Ok(f) = obj.cast::<PyFloat>() {
            return visitor.visit_f64(f.value());
        }
        if let Ok(l) = obj.cast::<PyList>() {
            return visitor.visit_seq(SeqItems {
                items: l.iter().collect::<Vec<_>>().into_iter(),
            });
        }
        if let Ok(t) = obj.cast::<PyTuple>() {
            return visitor.visit_seq(SeqItems {
                items: t.iter().collect::<Vec<_>>().into_iter(),
            });
        }
        Err(DeError(format!("unsupported type {}", type_name(obj))))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, DeError> {
        if self.0.is_none() {
            visitor.visit_none()
        } else {
            visitor.visit_some(self)
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, DeError> {
        visitor.visit_newtype_struct(self)
    }

    /// Unit variants are plain strings (`"eq"`, `"desc"`).
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, DeError> {
        let Ok(s) = self.0.cast::<PyString>() else {
            return Err(DeError(format!(
                "invalid type: {}, expected a string",
                type_name(self.0)
            )));
        };
        visitor.visit_enum(de::value::StrDeserializer::new(&s.to_cow()?))
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf unit unit_struct seq tuple tuple_struct map struct
        identifier ignored_any
    }
}

/// Dict entries in insertion order.
struct DictAccess<'py> {
    iter: pyo3::types::iter::BoundDictIterator<'py>,
    value: Option<Bound<'py, PyAny>>,
}

impl<'de> MapAccess<'de> for DictAccess<'_> {
    type Error = DeError;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, DeError> {
        let Some((key, value)) = self.iter.next() else {
            return Ok(None);
        };
        self.value = Some(value);
        let key = key
            .cast::<PyString>()
            .map_err(|_| DeError("dict keys must be strings".to_owned()))?;
        seed.deserialize(de::value::StrDeserializer::<DeError>::new(&key.to_cow()?))
            .map(Some)
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, DeError> {
        match self.value.take() {
            Some(value) => seed.deserialize(PyDeserializer(&value)),
            None => Err(DeError("a dict value was read before its key".to_owned())),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.iter.len())
    }
}

/// List or tuple items (a snapshot, so the sequence may not change under us).
struct SeqItems<'py> {
    items: std::vec::IntoIter<Bound<'py, PyAny>>,
}

impl<'de> SeqAccess<'de> for SeqItems<'_> {
    type Error = DeError;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, DeError> {
        match self.items.next() {
            Some(item) => seed.deserialize(PyDeserializer(&item)).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}
