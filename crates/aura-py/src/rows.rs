//! Rows in and out of Python: model instance -> engine row (`to_row`) and
//! engine row -> model instance (`Hydrator`). Both run once per row with no
//! Python-level loop: attribute names are interned and kinds precompiled in
//! `ModelPlan`.

use std::collections::HashMap;
use std::sync::Arc;

use aura_core::schema::{FieldKind, Row};
use aura_core::value::Value;
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyFloat, PyList, PyString, PyTuple, PyType};

use crate::convert::{is_vector, py_to_value, serialization_error, value_to_py, vector_components};
use aura_engine::{Included, ResultRow};

use crate::plan::ModelPlan;

static OBJECT_NEW: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
static VECTOR_CLASS: PyOnceLock<VectorClass> = PyOnceLock::new();
static VALIDATION_ERROR: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// `AuraValidationError(message, context=...)`.
pub fn validation_error_with(py: Python<'_>, message: String, context: &[(&str, usize)]) -> PyErr {
    let build = || -> PyResult<Bound<'_, PyAny>> {
        let cls = VALIDATION_ERROR.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
            Ok(py
                .import("aura.errors")?
                .getattr("AuraValidationError")?
                .unbind())
        })?;
        let kwargs = PyDict::new(py);
        if !context.is_empty() {
            let ctx = PyDict::new(py);
            for (k, v) in context {
                ctx.set_item(k, v)?;
            }
            kwargs.set_item("context", ctx)?;
        }
        cls.bind(py).call((message,), Some(&kwargs))
    };
    match build() {
        Ok(instance) => PyErr::from_value(instance),
        Err(err) => err,
    }
}

fn validation_error(py: Python<'_>, message: String) -> PyErr {
    validation_error_with(py, message, &[])
}

/// Check that a converted value fits the field's kind (the model validates
/// on construction, but attributes can be reassigned afterwards).
fn fit_kind(
    model: &str,
    attr: &Bound<'_, PyString>,
    kind: FieldKind,
    value: Value,
) -> PyResult<Value> {
    let ok = match (kind, &value) {
        (_, Value::Null) => true,
        (FieldKind::Float, Value::Int(i)) => return Ok(Value::Float(*i as f64)),
        (FieldKind::Vector, Value::List(items)) => {
            let comps: Option<Vec<f64>> = items
                .iter()
                .map(|v| match v {
                    Value::Int(i) => Some(*i as f64),
                    Value::Float(f) => Some(*f),
                    _ => None,
                })
                .collect();
            if let Some(comps) = comps {
                return Ok(Value::Vector(Arc::from(comps)));
            }
            false
        }
        (FieldKind::Int, Value::Int(_))
        | (FieldKind::Float, Value::Float(_))
        | (FieldKind::Bool, Value::Bool(_))
        | (FieldKind::Bytes, Value::Bytes(_))
        | (FieldKind::Vector, Value::Vector(_))
        | (FieldKind::List, Value::List(_))
        | (FieldKind::Dict, Value::Map(_)) => true,
        (
            FieldKind::Str
            | FieldKind::DateTime
            | FieldKind::Date
            | FieldKind::Time
            | FieldKind::Uuid
            | FieldKind::Decimal,
            Value::Str(_),
        ) => true,
        (FieldKind::Enum | FieldKind::Any | FieldKind::Link, _) => true,
        _ => false,
    };
    if ok {
        return Ok(value);
    }
    let py = attr.py();
    let attr = attr.to_cow()?;
    Err(validation_error(
        py,
        format!(
            "{model}.{attr} expects {}, got {}",
            kind.as_str(),
            value.type_name()
        ),
    ))
}

/// The primary-key value a link attribute refers to.
fn link_value(
    dict: &Bound<'_, PyDict>,
    links: Option<&Bound<'_, PyDict>>,
    attr: &Bound<'_, PyString>,
) -> PyResult<Value> {
    if let Some(related) = dict.get_item(attr)? {
        if related.is_none() {
            return Ok(Value::Null);
        }
        let pk = related.call_method0(intern!(attr.py(), "primary_key_value"))?;
        return key_value(&pk);
    }
    match links.map(|l| l.get_item(attr)).transpose()?.flatten() {
        Some(fk) => key_value(&fk),
        None => Ok(Value::Null),
    }
}

static TO_STORAGE: PyOnceLock<Py<PyAny>> = PyOnceLock::new();

/// A key as stored: natively when Rust converts its type, else (UUID,
/// datetime, Decimal keys) through `aura._convert.to_storage`, as the
/// target's own key field is.
fn key_value(key: &Bound<'_, PyAny>) -> PyResult<Value> {
    if let Ok(value) = py_to_value(key) {
        return Ok(value);
    }
    let py = key.py();
    let to_storage = TO_STORAGE.get_or_try_init(py, || -> PyResult<Py<PyAny>> {
        Ok(py.import("aura._convert")?.getattr("to_storage")?.unbind())
    })?;
    py_to_value(&to_storage.bind(py).call1((key,))?)
}

/// Model instance -> engine row in the plan's field order.
/// `to_row` of every instance of a list (`insert()` of every backend).
pub fn to_rows(plan: &ModelPlan, instances: &Bound<'_, PyList>) -> PyResult<Vec<Row>> {
    instances.iter().map(|obj| to_row(plan, &obj)).collect()
}

pub fn to_row(plan: &ModelPlan, obj: &Bound<'_, PyAny>) -> PyResult<Row> {
    let py = obj.py();
    if !obj.is_instance(plan.cls.bind(py))? {
        return Err(serialization_error(
            py,
            format!("expected a {} instance", plan.schema.name),
        ));
    }
    let dict = obj
        .getattr(intern!(py, "__dict__"))?
        .cast_into::<PyDict>()?;
    let links = dict
        .get_item(intern!(py, LINKS_ATTR))?
        .and_then(|l| l.cast_into::<PyDict>().ok());
    let mut row = Vec::with_capacity(plan.fields.len());
    for field in &plan.fields {
        let attr = field.attr.bind(py);
        let value = if field.kind == FieldKind::Link {
            link_value(&dict, links.as_ref(), attr)?
        } else {
            match dict.get_item(attr)? {
                None => Value::Null,
                Some(v) if v.is_none() => Value::Null,
                Some(v) => {
                    let v = match &field.dump {
                        Some(dump) => dump.bind(py).call1((v,))?,
                        None => v,
                    };
                    // Only vector fields need the Vector probe up front (it
                    // is a failing attribute lookup on every other type);
                    // py_to_value still recognises a Vector anywhere else.
                    let value = if field.kind == FieldKind::Vector && is_vector(&v) {
                        Value::Vector(vector_components(&v)?)
                    } else {
                        py_to_value(&v)?
                    };
                    fit_kind(&plan.schema.name, attr, field.kind, value)?
                }
            }
        };
        row.push(value);
    }
    Ok(Arc::from(row))
}

/// Rows per chunk of a streamed select: the driver decodes chunk k+1
/// while the event loop hydrates chunk k.
pub const CHUNK_ROWS: usize = 4096;

/// Below this many rows a batch is too small for the collector pause or the
/// off-thread free to matter: it allocates fewer objects than the cyclic
/// collector's young generation holds (700 by default).
const LARGE_BATCH_ROWS: usize = 1000;

/// Pauses CPython's cyclic garbage collector while one large batch of
/// instances is built, and restores its previous state when dropped (also
/// on error). Every instance and its `__dict__` are GC-tracked, so without
/// the pause the collector runs every few hundred rows and, as the batch
/// survives, repeatedly traverses everything allocated so far; none of it
/// can be garbage yet. Collection simply resumes afterwards.
pub struct GcPause<'py> {
    _py: Python<'py>,
    resume: bool,
}

impl<'py> GcPause<'py> {
    pub fn for_rows(py: Python<'py>, rows: usize) -> Self {
        let resume = rows >= LARGE_BATCH_ROWS
            // SAFETY: `PyGC_Disable` only clears the current interpreter's
            // "collector enabled" flag and returns the previous value; it
            // needs an attached thread state, which `py` proves.
            && unsafe { pyo3::ffi::PyGC_Disable() } != 0;
        GcPause { _py: py, resume }
    }
}

impl Drop for GcPause<'_> {
    fn drop(&mut self) {
        if self.resume {
            // SAFETY: as in `for_rows`; the guard holds `Python<'py>`, so it
            // is dropped while the thread is still attached.
            unsafe { pyo3::ffi::PyGC_Enable() };
        }
    }
}

/// The attribute holding a row's link values (foreign keys by link name).
const LINKS_ATTR: &str = "__aura_links__";
const SCORE_ATTR: &str = "__score__";
const TEXT_SCORE_ATTR: &str = "__text_score__";
const VECTOR_SCORE_ATTR: &str = "__vector_score__";
const RANK_ATTR: &str = "__rank__";

/// Every name hydration stores on an instance besides its fields and
/// relationships (`ModelPlan::plain_attrs` checks them).
pub(crate) const ROW_ATTRS: [&str; 5] = [
    LINKS_ATTR,
    SCORE_ATTR,
    TEXT_SCORE_ATTR,
    VECTOR_SCORE_ATTR,
    RANK_ATTR,
];

/// Scores attached to a ranked result row.
pub struct RowScores {
    pub score: f64,
    pub text_score: Option<f64>,
    pub vector_score: Option<f64>,
    pub rank: u64,
}

/// Where a hydrated instance's attributes go: its own `__dict__` entries,
/// stored through `object.__setattr__` when the plan allows it (CPython
/// then keeps them in the instance's inline values and builds no dict
/// object unless `__dict__` is read), else into the dict itself.
pub struct Attrs<'py> {
    obj: Bound<'py, PyAny>,
    dict: Option<Bound<'py, PyDict>>,
}

impl<'py> Attrs<'py> {
    fn of(obj: &Bound<'py, PyAny>, plan: &ModelPlan) -> PyResult<Self> {
        let dict = match plan.plain_attrs {
            true => None,
            // Models define a Python __setattr__, and a class attribute
            // may be a data descriptor for one of the names: fill the
            // instance's own __dict__ in place instead.
            // SAFETY: `obj` is a live object we hold a reference to; the
            // call returns a new reference to its __dict__ (created if
            // absent), or NULL with an exception set, which
            // `from_owned_ptr_or_err` turns into the error.
            false => Some(
                unsafe {
                    Bound::from_owned_ptr_or_err(
                        obj.py(),
                        pyo3::ffi::PyObject_GenericGetDict(obj.as_ptr(), std::ptr::null_mut()),
                    )
                }?
                .cast_into::<PyDict>()?,
            ),
        };
        Ok(Attrs {
            obj: obj.clone(),
            dict,
        })
    }

    pub fn set(&self, name: &Bound<'py, PyString>, value: &Bound<'py, PyAny>) -> PyResult<()> {
        match &self.dict {
            Some(dict) => dict.set_item(name, value),
            // SAFETY: all three are live objects held for the call;
            // `PyObject_GenericSetAttr` (object.__setattr__) borrows them
            // and returns 0, or -1 with an exception set. The plan proved
            // no data descriptor takes `name` (`ModelPlan::plain_attrs`).
            None => match unsafe {
                pyo3::ffi::PyObject_GenericSetAttr(self.obj.as_ptr(), name.as_ptr(), value.as_ptr())
            } {
                0 => Ok(()),
                _ => Err(PyErr::fetch(self.obj.py())),
            },
        }
    }
}

/// Builds model instances from engine rows for one query.
pub struct Hydrator<'a, 'py> {
    py: Python<'py>,
    plans: &'a HashMap<String, Py<ModelPlan>>,
    object_new: Bound<'py, PyAny>,
    object_tp_new: Option<pyo3::ffi::newfunc>,
}

/// `object`'s `tp_new` slot.
fn object_tp_new() -> Option<pyo3::ffi::newfunc> {
    // SAFETY: `PyBaseObject_Type` is the static `object` type, alive for
    // the interpreter's life; `PyType_GetSlot` may read a static type's
    // slots since Python 3.10 (this module needs 3.11). The slot is either
    // NULL or `object`'s `newfunc`; `Option<fn>` has NULL as `None`, so
    // the transmute is exact in both cases.
    unsafe {
        let slot = pyo3::ffi::PyType_GetSlot(
            std::ptr::addr_of_mut!(pyo3::ffi::PyBaseObject_Type),
            pyo3::ffi::Py_tp_new,
        );
        std::mem::transmute::<*mut std::ffi::c_void, Option<pyo3::ffi::newfunc>>(slot)
    }
}

/// `object.__new__(cls)`: through `object`'s `tp_new` slot when `cls`
/// builds its instances with it, else by calling `object.__new__`.
pub(crate) fn new_object<'py>(cls: &Bound<'py, PyType>) -> PyResult<Bound<'py, PyAny>> {
    match object_tp_new().filter(|_| crate::plan::uses_object_new(cls)) {
        Some(tp_new) => object_new_of(tp_new, cls.as_any()),
        None => {
            let py = cls.py();
            let object = py.get_type::<pyo3::types::PyAny>();
            object.getattr(intern!(py, "__new__"))?.call1((cls,))
        }
    }
}

/// `object.__new__(cls)` through `object`'s `tp_new` slot.
fn object_new_of<'py>(
    tp_new: pyo3::ffi::newfunc,
    cls: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let empty = PyTuple::empty(cls.py());
    // SAFETY: `tp_new` is `object`'s tp_new slot (see `object_tp_new`),
    // called as `object.__new__(cls)` calls it: callers pass a class (a
    // live type object they hold) whose own `tp_new` is this very slot
    // (`ModelPlan::object_new`, `VectorClass::object_new`, `new_object`'s
    // `uses_object_new`): no base builds its instances, and
    // `object.__new__(cls)` would make this same call,
    // with an empty args tuple and no kwargs. It returns a new reference,
    // or NULL with an exception set, which `from_owned_ptr_or_err` turns
    // into the error.
    unsafe {
        Bound::from_owned_ptr_or_err(
            cls.py(),
            tp_new(
                cls.as_ptr().cast::<pyo3::ffi::PyTypeObject>(),
                empty.as_ptr(),
                std::ptr::null_mut(),
            ),
        )
    }
}

/// A hydrated vector's components, shared with the engine's row: a
/// read-only buffer of native-endian f64 bytes (`Vector` decodes it on
/// first read, as it would a `bytes`).
#[pyclass(frozen, module = "aura._core")]
pub struct NativeF64s(Arc<[f64]>);

impl NativeF64s {
    pub fn items(&self) -> &Arc<[f64]> {
        &self.0
    }
}

#[pymethods]
impl NativeF64s {
    /// SAFETY (the caller's, CPython's): `view` is a buffer struct to fill.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: std::os::raw::c_int,
    ) -> PyResult<()> {
        let items: &[f64] = &slf.get().0;
        let Ok(len) = pyo3::ffi::Py_ssize_t::try_from(std::mem::size_of_val(items)) else {
            // SAFETY: `view` is the struct to fill; on failure its `obj`
            // must be NULL (the C API's contract).
            unsafe { (*view).obj = std::ptr::null_mut() };
            return Err(pyo3::exceptions::PyOverflowError::new_err(
                "vector too large",
            ));
        };
        // SAFETY: `view` is the struct CPython asks this object to fill;
        // the buffer is the `Arc`'s memory, which never changes (the class
        // is frozen and the `Arc` is never mutated) and lives as long as
        // this object, which the view holds a reference to (FillInfo sets
        // `view.obj`). It is offered read-only: FillInfo refuses a
        // writable request, returning -1 with BufferError set (and `obj`
        // NULL). f64 has no padding, so every byte is initialised. The
        // memory is the engine row's own: a consumer that wrote through
        // a read-only view would break the buffer protocol's contract,
        // as it would with `bytes`.
        let filled = unsafe {
            pyo3::ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                items.as_ptr().cast_mut().cast(),
                len,
                1,
                flags,
            )
        };
        match filled {
            0 => Ok(()),
            _ => Err(PyErr::fetch(slf.py())),
        }
    }
}

/// `aura.vectors.Vector`, looked up once.
struct VectorClass {
    cls: Py<PyAny>,
    /// The class's `tp_new` is `object`'s (it defines no `__new__`).
    object_new: bool,
    /// `Vector._from_native_f64`, for when it is not.
    from_native: Py<PyAny>,
}

impl VectorClass {
    fn load(py: Python<'_>) -> PyResult<VectorClass> {
        let cls = py.import("aura.vectors")?.getattr("Vector")?;
        Ok(VectorClass {
            object_new: crate::plan::uses_object_new(cls.cast::<PyType>()?),
            from_native: cls.getattr("_from_native_f64")?.unbind(),
            cls: cls.unbind(),
        })
    }
}

impl<'a, 'py> Hydrator<'a, 'py> {
    pub fn new(py: Python<'py>, plans: &'a HashMap<String, Py<ModelPlan>>) -> PyResult<Self> {
        let object_new = OBJECT_NEW
            .get_or_try_init(py, || -> PyResult<Py<PyAny>> {
                Ok(py
                    .import("builtins")?
                    .getattr("object")?
                    .getattr("__new__")?
                    .unbind())
            })?
            .bind(py)
            .clone();
        Ok(Hydrator {
            py,
            plans,
            object_new,
            object_tp_new: object_tp_new(),
        })
    }

    /// `object.__new__(cls)` for the plan's class, without the method-call
    /// wrapper when `object`'s own `tp_new` is at hand.
    fn new_instance(&self, plan: &ModelPlan) -> PyResult<Bound<'py, PyAny>> {
        let args = plan.new_args.bind(self.py);
        match self.object_tp_new.filter(|_| plan.object_new) {
            Some(tp_new) => object_new_of(tp_new, &args.get_item(0)?),
            None => self.object_new.call1(args),
        }
    }

    /// A `Vector` over a row's components, shared with the engine's row
    /// (`NativeF64s`: no copy, and nothing read, until the vector is), as
    /// `Vector._from_native_f64` builds it, without a Python call when
    /// `object`'s `tp_new` builds vectors.
    fn vector(&self, items: &Arc<[f64]>) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        let class = VECTOR_CLASS.get_or_try_init(py, || VectorClass::load(py))?;
        let store = Bound::new(py, NativeF64s(Arc::clone(items)))?;
        match self.object_tp_new.filter(|_| class.object_new) {
            Some(tp_new) => {
                let vector = object_new_of(tp_new, class.cls.bind(py))?;
                vector.setattr(intern!(py, "_store"), store)?;
                Ok(vector)
            }
            None => class.from_native.bind(py).call1((store,)),
        }
    }

    pub fn plan(&self, model: &str) -> PyResult<&'a Py<ModelPlan>> {
        self.plans.get(model).ok_or_else(|| {
            crate::errors::to_py(aura_core::error::Error::schema(format!(
                "Unknown model '{model}'"
            )))
        })
    }

    fn field_value(
        &self,
        field: &crate::plan::FieldPlan,
        value: &Value,
    ) -> PyResult<Bound<'py, PyAny>> {
        let py = self.py;
        if matches!(value, Value::Null) {
            return Ok(py.None().into_bound(py));
        }
        if let (FieldKind::Vector, Value::Vector(items)) = (field.kind, value) {
            // One buffer shared with the row rather than a float object
            // per component: the Vector decodes it only if it is read.
            return self.vector(items);
        }
        let raw = value_to_py(py, value)?;
        match &field.load {
            Some(load) => load.bind(py).call1((raw,)),
            None => Ok(raw),
        }
    }

    /// One instance; `mask` limits the fields set (projection), pk always set.
    pub fn instance(
        &self,
        plan: &ModelPlan,
        row: &Row,
        mask: Option<&[bool]>,
    ) -> PyResult<(Bound<'py, PyAny>, Attrs<'py>)> {
        let py = self.py;
        let obj = self.new_instance(plan)?;
        let attrs = Attrs::of(&obj, plan)?;
        let mut links: Option<Bound<'py, PyDict>> = None;
        for (pos, (field, value)) in plan.fields.iter().zip(row.iter()).enumerate() {
            if let Some(mask) = mask {
                if !mask.get(pos).copied().unwrap_or(false) && plan.pk_pos != Some(pos) {
                    continue;
                }
            }
            let attr = field.attr.bind(py);
            if field.kind == FieldKind::Link {
                let fk = value_to_py(py, value)?;
                links
                    .get_or_insert_with(|| PyDict::new(py))
                    .set_item(attr, fk)?;
            } else {
                attrs.set(attr, &self.field_value(field, value)?)?;
            }
        }
        if let Some(links) = links {
            attrs.set(intern!(py, LINKS_ATTR), &links)?;
        }
        Ok((obj, attrs))
    }

    /// Attach scores as instance attributes (`row.__score__` etc.).
    pub fn set_scores(&self, attrs: &Attrs<'py>, scores: &RowScores) -> PyResult<()> {
        let py = self.py;
        let score = PyFloat::new(py, scores.score).into_any();
        // A one-sided search's own score is its total: the same float
        // object serves both (floats are immutable).
        let optional = |part: Option<f64>| match part {
            Some(part) if part.to_bits() == scores.score.to_bits() => score.clone(),
            Some(part) => PyFloat::new(py, part).into_any(),
            None => py.None().into_bound(py),
        };
        attrs.set(intern!(py, SCORE_ATTR), &score)?;
        attrs.set(intern!(py, TEXT_SCORE_ATTR), &optional(scores.text_score))?;
        attrs.set(
            intern!(py, VECTOR_SCORE_ATTR),
            &optional(scores.vector_score),
        )?;
        attrs.set(
            intern!(py, RANK_ATTR),
            scores.rank.into_pyobject(py)?.as_any(),
        )?;
        Ok(())
    }

    /// Run the post-load hook once the instance is complete.
    pub fn finish(&self, plan: &ModelPlan, obj: &Bound<'py, PyAny>) -> PyResult<()> {
        if plan.post_load {
            obj.call_method0(intern!(self.py, "__aura_post_load__"))?;
        }
        Ok(())
    }

    /// A plain instance of `model` (included rows, traversal results).
    pub fn simple(&self, model: &str, row: &Row) -> PyResult<Bound<'py, PyAny>> {
        let plan = self.plan(model)?.get();
        let (obj, _) = self.instance(plan, row, None)?;
        self.finish(plan, &obj)?;
        Ok(obj)
    }
}

/// A select's result rows as a list of model instances: projection mask,
/// scores and includes attached, post-load hook run. Every backend hydrates
/// through this one function.
pub fn hydrate_results<'py>(
    py: Python<'py>,
    plans: &HashMap<String, Py<ModelPlan>>,
    q: &aura_core::ir::Select,
    rows: Vec<ResultRow>,
) -> PyResult<Bound<'py, PyList>> {
    let hydrator = Hydrator::new(py, plans)?;
    let plan = hydrator.plan(&q.model)?.get();
    let mask = crate::memory::projection_mask(plan, q);
    hydrate_rows(&hydrator, plan, mask.as_deref(), rows)
}

/// The loop behind `hydrate_results`, for callers that already hold a
/// hydrator and mask (a cursor hydrating one chunk at a time).
pub fn hydrate_rows<'py>(
    hydrator: &Hydrator<'_, 'py>,
    plan: &ModelPlan,
    mask: Option<&[bool]>,
    rows: impl IntoIterator<Item = ResultRow>,
) -> PyResult<Bound<'py, PyList>> {
    let py = hydrator.py;
    let rows: Vec<ResultRow> = rows.into_iter().collect();
    let _gc = GcPause::for_rows(py, rows.len());
    let mut items = Vec::with_capacity(rows.len());
    // Rows lie apart in memory: ask for a few ahead of the one hydrated.
    for result in aura_engine::prefetched(&rows, PREFETCH_ROWS, |row| row.prefetch(mask)) {
        let (obj, attrs) = hydrator.instance(plan, &result.row, mask)?;
        if let Some(s) = &result.scores {
            hydrator.set_scores(
                &attrs,
                &RowScores {
                    score: s.score,
                    text_score: s.text_score,
                    vector_score: s.vector_score,
                    rank: s.rank,
                },
            )?;
        }
        for included in &result.includes {
            attach_include(hydrator, plan, &attrs, included)?;
        }
        hydrator.finish(plan, &obj)?;
        items.push(obj);
    }
    release(rows);
    PyList::new(py, items)
}

/// How many rows ahead of the one hydrated `hydrate_rows` prefetches.
const PREFETCH_ROWS: usize = 4;

/// Frees a large batch of decoded rows off the event-loop thread. Rows
/// decoded on a driver thread come from that thread's malloc arena, and
/// glibc frees them under the arena's lock, which the driver takes for
/// every row it decodes next: freeing them here would make the loop wait
/// on the driver.
fn release(rows: Vec<ResultRow>) {
    if rows.len() >= LARGE_BATCH_ROWS {
        crate::bridge::runtime().spawn_blocking(move || drop(rows));
    }
}

type DeferredFn = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send>;

/// A result built when it is handed to Python: an awaitable's value is
/// converted on the event-loop thread when the bridge settles its future
/// (bridge.rs), never on a runtime thread.
pub struct Deferred(DeferredFn);

/// Registered model plans by name, shared with the tasks that hydrate.
pub type SharedPlans = Arc<parking_lot::RwLock<HashMap<String, Py<ModelPlan>>>>;

/// A select's result rows, hydrated (with includes and scores) when
/// handed to Python.
pub fn hydrated(plans: SharedPlans, q: aura_core::ir::Select, rows: Vec<ResultRow>) -> Deferred {
    Deferred::new(move |py| Ok(hydrate_results(py, &plans.read(), &q, rows)?.into_any()))
}

/// The first row of a select, or None, hydrated when handed to Python.
pub fn hydrated_first(
    plans: SharedPlans,
    q: aura_core::ir::Select,
    rows: Vec<ResultRow>,
) -> Deferred {
    Deferred::new(move |py| {
        let list = hydrate_results(py, &plans.read(), &q, rows)?;
        match list.len() {
            0 => Ok(py.None().into_bound(py)),
            _ => list.get_item(0),
        }
    })
}

/// The instance an upsert stored (None when nothing was), hydrated when
/// handed to Python.
pub fn stored_instance(plans: SharedPlans, model: String, row: Option<Row>) -> Deferred {
    Deferred::new(move |py| match row {
        Some(row) => Hydrator::new(py, &plans.read())?.simple(&model, &row),
        None => Ok(py.None().into_bound(py)),
    })
}

impl Deferred {
    pub fn new(
        build: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send + 'static,
    ) -> Self {
        Deferred(Box::new(build))
    }
}

impl<'py> IntoPyObject<'py> for Deferred {
    type Target = PyAny;
    type Output = Bound<'py, PyAny>;
    type Error = PyErr;

    fn into_pyobject(self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        (self.0)(py)
    }
}

pub(crate) fn attach_include<'py>(
    hydrator: &Hydrator<'_, 'py>,
    plan: &ModelPlan,
    attrs: &Attrs<'py>,
    included: &Included,
) -> PyResult<()> {
    let py = hydrator.py;
    let (attr, value) = match included {
        Included::One { attr, row } => {
            let target = target_of(plan, attr)?;
            let value = match row {
                Some(row) => hydrator.simple(&target, row)?,
                None => py.None().into_bound(py),
            };
            (attr, value)
        }
        Included::Many { attr, rows } => {
            let target = target_of(plan, attr)?;
            let list = PyList::empty(py);
            for row in rows {
                list.append(hydrator.simple(&target, row)?)?;
            }
            (attr, list.into_any())
        }
    };
    attrs.set(&PyString::new(py, attr), &value)
}

fn target_of(plan: &ModelPlan, attr: &str) -> PyResult<String> {
    if let Some(rel) = plan.relation(attr) {
        return Ok(rel.target.clone());
    }
    plan.schema
        .fields
        .iter()
        .find(|f| f.attr == attr || f.storage == attr)
        .and_then(|f| f.target.clone())
        .ok_or_else(|| {
            crate::errors::to_py(aura_core::error::Error::query(format!(
                "{} has no relationship '{attr}' to include",
                plan.schema.name
            )))
        })
}

/// Rows of the SQL drivers (`aura_sql::Fetched`) as engine result rows,
/// for `hydrate_results`.
pub fn sql_results(rows: Vec<aura_sql::Fetched>) -> impl Iterator<Item = ResultRow> {
    rows.into_iter().map(|f| ResultRow {
        row: f.row,
        scores: None,
        includes: f
            .includes
            .into_iter()
            .map(|loaded| match loaded {
                aura_sql::Loaded::One { attr, row } => Included::One { attr, row },
                aura_sql::Loaded::Many { attr, rows } => Included::Many { attr, rows },
            })
            .collect(),
    })
}

/// Ranked SQL rows: `__score__` and the global 1-based `__rank__` after
/// `offset` (text search has no component scores).
pub fn ranked_sql_results(rows: Vec<(aura_sql::Fetched, f64)>, offset: u64) -> Vec<ResultRow> {
    let (fetched, scores): (Vec<aura_sql::Fetched>, Vec<f64>) = rows.into_iter().unzip();
    sql_results(fetched)
        .zip(scores)
        .zip(1..)
        .map(|((mut row, score), position)| {
            row.scores = Some(aura_engine::Scores {
                score,
                text_score: None,
                vector_score: None,
                rank: offset + position,
            });
            row
        })
        .collect()
}
