//! The query builder's per-query steps, natively: each step of a fluent
//! query (`search_text(...)`, `limit(n)`, ...) copies a frozen node and
//! wraps it in a new builder, a dozen interpreter operations that cost
//! about as much as the engine's own work on a small search.
//!
//! Only the common, valid shape is taken here (a plain field name the model
//! has cached a reference for, a `str` query with a printable ASCII
//! character, so surely not blank, known options, the default BM25
//! parameters); anything else returns `None` and runs the
//! Python method, which stays the one definition of what is valid and of
//! every error. A test checks that both build equal nodes on random input.

use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyInt, PyString, PyTuple, PyType};

use crate::rows::new_object;

/// `aura.query.ast.TextRankedSearch`, looked up once.
static TEXT_RANKED_SEARCH: PyOnceLock<Py<PyType>> = PyOnceLock::new();

/// `builder._with(field=value)` (the Python `_py_step`): a builder of the
/// same class, model and executor over a copy of `builder`'s node with
/// `field` set to `value` (the caller has checked the value).
#[pyfunction]
pub fn builder_step<'py>(
    builder: &Bound<'py, PyAny>,
    field: &Bound<'py, PyString>,
    value: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    evolved(builder, &[(field, value)])
}

/// `QueryBuilder.search_text(field, query, operator=, rank=, k1=, b=,
/// limit=)` when every argument has the common, valid shape; else `None`.
#[pyfunction]
#[allow(clippy::too_many_arguments)] // the method's own parameters
pub fn builder_search_text<'py>(
    builder: &Bound<'py, PyAny>,
    field: &Bound<'py, PyAny>,
    query: &Bound<'py, PyAny>,
    operator: &Bound<'py, PyAny>,
    rank: &Bound<'py, PyAny>,
    k1: &Bound<'py, PyAny>,
    b: &Bound<'py, PyAny>,
    limit: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = builder.py();
    let known = |value: &Bound<'py, PyAny>, choices: [&str; 2]| {
        value
            .cast_exact::<PyString>()
            .ok()
            .and_then(|s| s.to_str().ok().filter(|s| choices.contains(s)))
            .is_some()
    };
    let plain_query = query
        .cast_exact::<PyString>()
        .ok()
        .and_then(|q| q.to_str().ok())
        .is_some_and(|q| q.bytes().any(|c| c.is_ascii_graphic()));
    let plain_limit = limit.is_none() || non_negative_int(limit);
    if !(plain_query
        && known(operator, ["or", "and"])
        && known(rank, ["bm25", "term_frequency"])
        && k1.is_none()
        && b.is_none()
        && plain_limit)
    {
        return Ok(None);
    }
    let model = builder.getattr(intern!(py, "_model"))?;
    let Some(path) = cached_field_path(&model, field)? else {
        return Ok(None);
    };
    let clause_class = TEXT_RANKED_SEARCH.import(py, "aura.query.ast", "TextRankedSearch")?;
    let clause = new_object(clause_class)?;
    let fields = PyDict::new(py);
    fields.set_item(intern!(py, "field"), path)?;
    fields.set_item(intern!(py, "query"), query)?;
    fields.set_item(intern!(py, "operator"), operator)?;
    fields.set_item(intern!(py, "rank"), rank)?;
    fields.set_item(intern!(py, "k1"), k1)?;
    fields.set_item(intern!(py, "b"), b)?;
    set_instance_dict(&clause, &fields)?;
    let text_search = (intern!(py, "text_search"), &clause);
    match limit.is_none() {
        true => evolved(builder, &[text_search]),
        false => evolved(builder, &[text_search, (intern!(py, "limit"), limit)]),
    }
    .map(Some)
}

/// An exact `int` at least 0 (not a `bool`, not a subclass).
fn non_negative_int(value: &Bound<'_, PyAny>) -> bool {
    value
        .cast_exact::<PyInt>()
        .is_ok_and(|n| n.extract::<u64>().is_ok())
}

/// The storage name of `model`'s field `name`, when `name` is a `str` the
/// model's reference cache (`_aura_field_refs`, what `resolve_field` reads
/// first) holds a reference without a document path for.
fn cached_field_path<'py>(
    model: &Bound<'py, PyAny>,
    name: &Bound<'py, PyAny>,
) -> PyResult<Option<Bound<'py, PyAny>>> {
    let py = model.py();
    if name.cast_exact::<PyString>().is_err() {
        return Ok(None);
    }
    let Ok(refs) = model.getattr(intern!(py, "_aura_field_refs")) else {
        return Ok(None);
    };
    let Some(reference) = refs
        .cast_exact::<PyDict>()
        .ok()
        .and_then(|r| r.get_item(name).ok().flatten())
    else {
        return Ok(None);
    };
    let path = reference.getattr(intern!(py, "path"))?;
    if !path.cast_exact::<PyTuple>().is_ok_and(|p| p.is_empty()) {
        return Ok(None);
    }
    let storage = reference.getattr(intern!(py, "storage"))?;
    Ok(storage.cast_exact::<PyString>().is_ok().then_some(storage))
}

/// A builder of `builder`'s class, model and executor over a copy of its
/// node with `changes` made (`evolve(node, **changes)`).
fn evolved<'py>(
    builder: &Bound<'py, PyAny>,
    changes: &[(&Bound<'py, PyString>, &Bound<'py, PyAny>)],
) -> PyResult<Bound<'py, PyAny>> {
    let py = builder.py();
    let node = builder.getattr(intern!(py, "_query"))?;
    let state = instance_dict(&node)?.copy()?;
    for (field, value) in changes {
        state.set_item(field, value)?;
    }
    let new_node = new_object(&node.get_type())?;
    set_instance_dict(&new_node, &state)?;
    let new = new_object(&builder.get_type())?;
    for slot in [intern!(py, "_model"), intern!(py, "_executor")] {
        generic_setattr(&new, slot, &builder.getattr(slot)?)?;
    }
    generic_setattr(&new, intern!(py, "_query"), &new_node)?;
    Ok(new)
}

/// The instance's own `__dict__` (created if absent).
fn instance_dict<'py>(obj: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyDict>> {
    // SAFETY: `obj` is a live object held for the call; the call returns a
    // new reference to its __dict__, or NULL with an exception set, which
    // `from_owned_ptr_or_err` turns into the error.
    let dict = unsafe {
        Bound::from_owned_ptr_or_err(
            obj.py(),
            pyo3::ffi::PyObject_GenericGetDict(obj.as_ptr(), std::ptr::null_mut()),
        )
    }?;
    Ok(dict.cast_into::<PyDict>()?)
}

/// `object.__setattr__(obj, "__dict__", dict)` for an instance of a plain
/// class (frozen dataclasses refuse `setattr`, not this): through the
/// class's `__dict__` descriptor, which also retires the inline attribute
/// values newer CPythons keep beside the dict.
fn set_instance_dict(obj: &Bound<'_, PyAny>, dict: &Bound<'_, PyDict>) -> PyResult<()> {
    generic_setattr(obj, intern!(obj.py(), "__dict__"), dict.as_any())
}

/// `object.__setattr__(obj, name, value)`: the builder's `__slots__`.
fn generic_setattr(
    obj: &Bound<'_, PyAny>,
    name: &Bound<'_, PyString>,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    // SAFETY: all three are live objects held for the call; the function
    // borrows them and returns 0, or -1 with an exception set.
    match unsafe { pyo3::ffi::PyObject_GenericSetAttr(obj.as_ptr(), name.as_ptr(), value.as_ptr()) }
    {
        0 => Ok(()),
        _ => Err(PyErr::fetch(obj.py())),
    }
}
