//! Conversions between Python objects, JSON (the IR) and engine values.
//!
//! The storage form is documented in docs/ARCHITECTURE.md; `py_to_value`
//! mirrors `aura._convert.to_storage` for the types Rust converts natively.

use std::sync::Arc;

use aura_core::value::Value;
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{
    PyBool, PyBytes, PyDict, PyFloat, PyFrozenSet, PyInt, PyList, PySet, PyString, PyTuple, PyType,
};
use serde_json::{Map, Number, Value as Json};

static SERIALIZATION_ERROR: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `AuraSerializationError(message)`; never carries the offending value.
pub fn serialization_error(py: Python<'_>, message: String) -> PyErr {
    let cls = SERIALIZATION_ERROR.get_or_try_init(py, || -> PyResult<Py<PyType>> {
        let module = py.import("aura.errors")?;
        Ok(module
            .getattr("AuraSerializationError")?
            .cast_into::<PyType>()?
            .unbind())
    });
    match cls {
        Ok(cls) => PyErr::from_type(cls.bind(py).clone(), message),
        Err(err) => err,
    }
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "object".to_owned())
}

/// Python object (JSON-able: the IR dict) -> serde_json value.
pub fn py_to_json(obj: &Bound<'_, PyAny>) -> PyResult<Json> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(Json::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Json::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        if let Ok(v) = i.extract::<i64>() {
            return Ok(Json::from(v));
        }
        if let Ok(v) = i.extract::<u64>() {
            return Ok(Json::from(v));
        }
        return Err(serialization_error(
            py,
            "integer out of 64-bit range".into(),
        ));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Number::from_f64(f.value())
            .map(Json::Number)
            .ok_or_else(|| serialization_error(py, "non-finite float cannot be encoded".into()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Json::String(s.to_str()?.to_owned()));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        let mut map = Map::with_capacity(d.len());
        for (k, v) in d.iter() {
            let key = k
                .cast::<PyString>()
                .map_err(|_| serialization_error(py, "object keys must be strings".into()))?;
            map.insert(key.to_str()?.to_owned(), py_to_json(&v)?);
        }
        return Ok(Json::Object(map));
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return l
            .iter()
            .map(|v| py_to_json(&v))
            .collect::<PyResult<_>>()
            .map(Json::Array);
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return t
            .iter()
            .map(|v| py_to_json(&v))
            .collect::<PyResult<_>>()
            .map(Json::Array);
    }
    Err(serialization_error(
        py,
        format!(
            "Cannot encode a value of type {} in a query",
            type_name(obj)
        ),
    ))
}

/// serde_json value -> Python object (dicts keep key order).
pub fn json_to_py<'py>(py: Python<'py>, value: &Json) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Json::Null => py.None().into_bound(py),
        Json::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Json::Number(n) => {
            if let Some(i) = n.as_i64() {
                i.into_pyobject(py)?.into_any()
            } else if let Some(u) = n.as_u64() {
                u.into_pyobject(py)?.into_any()
            } else {
                n.as_f64().unwrap_or(f64::NAN).into_pyobject(py)?.into_any()
            }
        }
        Json::String(s) => PyString::new(py, s).into_any(),
        Json::Array(items) => {
            let list = PyList::empty(py);
            for item in items {
                list.append(json_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Json::Object(map) => {
            let dict = PyDict::new(py);
            for (k, v) in map {
                dict.set_item(k, json_to_py(py, v)?)?;
            }
            dict.into_any()
        }
    })
}

/// Is `obj` an `aura.vectors.Vector`? (marked by the class attribute
/// `__aura_vector__`, so this module never imports the Python package).
pub fn is_vector(obj: &Bound<'_, PyAny>) -> bool {
    obj.get_type()
        .getattr(pyo3::intern!(obj.py(), "__aura_vector__"))
        .and_then(|v| v.is_truthy())
        .unwrap_or(false)
}

/// The components of a `Vector` instance, as the engine stores them.
pub fn vector_components(obj: &Bound<'_, PyAny>) -> PyResult<Arc<[f64]>> {
    // A hydrated vector never read still holds its native f64 values: the
    // engine row's own (shared again, they never change) or bytes, taken
    // as they are instead of decoded into floats first.
    let store = obj.getattr(pyo3::intern!(obj.py(), "_store"))?;
    if let Ok(shared) = store.cast::<crate::rows::NativeF64s>() {
        return Ok(Arc::clone(shared.get().items()));
    }
    if let Ok(bytes) = store.cast::<pyo3::types::PyBytes>() {
        return Ok(bytes
            .as_bytes()
            .chunks_exact(8)
            .map(|b| f64::from_ne_bytes(b.try_into().unwrap_or([0; 8])))
            .collect());
    }
    Ok(Arc::from(store.extract::<Vec<f64>>()?))
}

/// Python value (already in storage form, or a natively converted type)
/// -> engine value, without a field kind.
pub fn py_to_value(obj: &Bound<'_, PyAny>) -> PyResult<Value> {
    let py = obj.py();
    if obj.is_none() {
        return Ok(Value::Null);
    }
    if let Ok(b) = obj.cast::<PyBool>() {
        return Ok(Value::Bool(b.is_true()));
    }
    if let Ok(i) = obj.cast::<PyInt>() {
        return i
            .extract::<i64>()
            .map(Value::Int)
            .map_err(|_| serialization_error(py, "integer out of 64-bit range".into()));
    }
    if let Ok(f) = obj.cast::<PyFloat>() {
        return Ok(Value::Float(f.value()));
    }
    if let Ok(s) = obj.cast::<PyString>() {
        return Ok(Value::Str(Arc::from(s.to_str()?)));
    }
    if let Ok(b) = obj.cast::<PyBytes>() {
        return Ok(Value::Bytes(Arc::from(b.as_bytes())));
    }
    if let Ok(d) = obj.cast::<PyDict>() {
        return dict_to_value(d);
    }
    if let Ok(l) = obj.cast::<PyList>() {
        return seq_to_value(l.iter());
    }
    if let Ok(t) = obj.cast::<PyTuple>() {
        return seq_to_value(t.iter());
    }
    if obj.cast::<PySet>().is_ok() || obj.cast::<PyFrozenSet>().is_ok() {
        return seq_to_value(obj.try_iter()?.collect::<PyResult<Vec<_>>>()?.into_iter());
    }
    if is_vector(obj) {
        return Ok(Value::Vector(vector_components(obj)?));
    }
    Err(serialization_error(
        py,
        format!("Cannot store a value of type {}", type_name(obj)),
    ))
}

fn seq_to_value<'py>(items: impl Iterator<Item = Bound<'py, PyAny>>) -> PyResult<Value> {
    let values = items
        .map(|v| py_to_value(&v))
        .collect::<PyResult<Vec<_>>>()?;
    Ok(Value::List(Arc::from(values)))
}

fn dict_to_value(d: &Bound<'_, PyDict>) -> PyResult<Value> {
    // {"__bytes__": "<b64>"} is the storage form of bytes.
    if d.len() == 1 {
        if let Some(encoded) = d.get_item("__bytes__")? {
            if let Ok(text) = encoded.extract::<&str>() {
                use base64::Engine as _;
                if let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(text) {
                    return Ok(Value::Bytes(Arc::from(raw)));
                }
            }
        }
    }
    let mut entries = Vec::with_capacity(d.len());
    for (k, v) in d.iter() {
        let key = k
            .cast::<PyString>()
            .map_err(|_| PyTypeError::new_err("document keys must be strings"))?;
        entries.push((Arc::<str>::from(key.to_str()?), py_to_value(&v)?));
    }
    Ok(Value::Map(Arc::from(entries)))
}

/// Engine value -> plain Python object (storage form; bytes as `bytes`,
/// vectors as lists of floats).
pub fn value_to_py<'py>(py: Python<'py>, value: &Value) -> PyResult<Bound<'py, PyAny>> {
    Ok(match value {
        Value::Null => py.None().into_bound(py),
        Value::Bool(b) => PyBool::new(py, *b).to_owned().into_any(),
        Value::Int(i) => i.into_pyobject(py)?.into_any(),
        Value::Float(f) => f.into_pyobject(py)?.into_any(),
        Value::Str(s) => PyString::new(py, s).into_any(),
        Value::Bytes(b) => PyBytes::new(py, b).into_any(),
        Value::List(items) => {
            let list = PyList::empty(py);
            for item in items.iter() {
                list.append(value_to_py(py, item)?)?;
            }
            list.into_any()
        }
        Value::Map(entries) => {
            let dict = PyDict::new(py);
            for (k, v) in entries.iter() {
                dict.set_item(&**k, value_to_py(py, v)?)?;
            }
            dict.into_any()
        }
        Value::Vector(items) => PyList::new(py, items.iter())?.into_any(),
    })
}

/// A timeout given in seconds from Python (`connect_timeout_s`, ...): a
/// value that is not a positive finite number becomes 1 ms, never "no
/// timeout" and never a panic in `Duration::from_secs_f64`.
pub(crate) fn timeout_from_seconds(seconds: f64) -> std::time::Duration {
    std::time::Duration::from_secs_f64(if seconds.is_finite() && seconds > 0.0 {
        seconds
    } else {
        0.001
    })
}
