//! The native helpers of API.md §13 (`aura._native` falls back to pure
//! Python when they are disabled; results are byte-identical).

use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyBytes, PyFloat, PyInt, PyList, PyTuple};

use crate::rows::validation_error_with;

#[pyfunction]
pub fn native_crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

fn check_dimension(py: Python<'_>, dimension: &Bound<'_, PyAny>) -> PyResult<usize> {
    let ok = dimension.cast::<PyInt>().is_ok() && dimension.cast::<PyBool>().is_err();
    match ok.then(|| dimension.extract::<i64>().ok()).flatten() {
        Some(d) if d > 0 => Ok(d as usize),
        _ => Err(validation_error_with(
            py,
            format!(
                "Vector dimension must be a positive int, got {}",
                dimension.repr()?
            ),
            &[],
        )),
    }
}

fn component(py: Python<'_>, item: &Bound<'_, PyAny>) -> PyResult<f64> {
    let numeric = item.cast::<PyFloat>().is_ok() || item.cast::<PyInt>().is_ok();
    let value = if numeric {
        item.extract::<f64>().ok()
    } else {
        None
    };
    let Some(value) = value else {
        let name = item.get_type().name()?.to_string();
        return Err(validation_error_with(
            py,
            format!("Vector components must be numeric, got {name}"),
            &[],
        ));
    };
    if !value.is_finite() {
        return Err(validation_error_with(
            py,
            "Vector components must be finite numbers".into(),
            &[],
        ));
    }
    if value.abs() > f32::MAX as f64 {
        return Err(validation_error_with(
            py,
            "Vector components must be within float32 range".into(),
            &[],
        ));
    }
    Ok(value)
}

fn validated(values: &Bound<'_, PyAny>, dimension: &Bound<'_, PyAny>) -> PyResult<Vec<f64>> {
    let py = values.py();
    let dim = check_dimension(py, dimension)?;
    let items = values
        .try_iter()?
        .map(|item| component(py, &item?))
        .collect::<PyResult<Vec<f64>>>()?;
    if items.len() != dim {
        return Err(validation_error_with(
            py,
            format!("Vector expected dimension {dim}, got {}", items.len()),
            &[("expected", dim), ("actual", items.len())],
        ));
    }
    Ok(items)
}

#[pyfunction]
pub fn native_validate_vector(
    values: &Bound<'_, PyAny>,
    dimension: &Bound<'_, PyAny>,
) -> PyResult<Vec<f64>> {
    validated(values, dimension)
}

/// `values` (a list or tuple) as a tuple of the same float objects when
/// every item is a finite `float`; a `ValueError` otherwise, so the caller
/// takes its general path (ints, numpy scalars, the documented errors). A
/// query vector then crosses into Rust without a float being re-created.
#[pyfunction]
pub fn native_finite_floats<'py>(values: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyTuple>> {
    let finite = |item: &Bound<'py, PyAny>| {
        item.cast_exact::<PyFloat>()
            .is_ok_and(|f| f.value().is_finite())
    };
    if let Ok(tuple) = values.cast_exact::<PyTuple>() {
        // Borrowed items: no reference count taken per component.
        if tuple.iter_borrowed().all(|item| finite(&item)) {
            return Ok(tuple.clone());
        }
    } else if let Ok(list) = values.cast_exact::<PyList>() {
        // Checked in the tuple copy that is returned, through borrowed
        // items (a list that fails pays for the copy before the fallback).
        let tuple = list.to_tuple();
        if tuple.iter_borrowed().all(|item| finite(&item)) {
            return Ok(tuple);
        }
    }
    Err(PyValueError::new_err(
        "not a list or tuple of finite floats",
    ))
}

#[pyfunction]
pub fn native_pack_f32_vector<'py>(
    values: &Bound<'py, PyAny>,
    dimension: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyBytes>> {
    let items = validated(values, dimension)?;
    let mut out = Vec::with_capacity(items.len() * 4);
    for v in items {
        out.extend_from_slice(&(v as f32).to_le_bytes());
    }
    Ok(PyBytes::new(values.py(), &out))
}

#[pyfunction]
pub fn native_unpack_f32_vector(
    py: Python<'_>,
    data: &[u8],
    dimension: &Bound<'_, PyAny>,
) -> PyResult<Vec<f64>> {
    let dim = check_dimension(py, dimension)?;
    if data.len() != dim * 4 {
        return Err(validation_error_with(
            py,
            format!(
                "Packed vector expected {} bytes, got {}",
                dim * 4,
                data.len()
            ),
            &[("expected", dim * 4), ("actual", data.len())],
        ));
    }
    Ok(data
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]) as f64)
        .collect())
}

#[pyfunction]
pub fn backend_name() -> &'static str {
    "aura_native"
}
