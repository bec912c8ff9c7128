//! `ModelPlan`: a model class compiled once into what Rust needs to move rows
//! in and out of Python (field positions, interned attribute names, kinds and
//! the optional per-field load/dump callables).

use std::sync::Arc;

use aura_core::schema::{
    FieldDef, FieldKind, ModelSchema, OnDelete, RelationKind, RelationshipDef,
};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList, PyString, PyTuple, PyType};

/// One stored field as hydration and row conversion see it.
pub struct FieldPlan {
    pub attr: Py<PyString>,
    pub kind: FieldKind,
    pub load: Option<Py<PyAny>>,
    pub dump: Option<Py<PyAny>>,
}

/// One relationship: the attribute it is loaded into and its target model.
pub struct RelationPlan {
    pub attr: Py<PyString>,
    pub target: String,
}

#[pyclass(frozen, module = "aura._core")]
pub struct ModelPlan {
    pub cls: Py<PyType>,
    /// `(cls,)`, the arguments of `object.__new__` for every hydrated row
    /// (tuples are immutable, so one is shared instead of built per row).
    pub new_args: Py<PyTuple>,
    pub schema: Arc<ModelSchema>,
    pub fields: Vec<FieldPlan>,
    pub relations: Vec<RelationPlan>,
    pub pk_pos: Option<usize>,
    pub post_load: bool,
    /// The class's `tp_new` is `object`'s: rows.rs may call it directly,
    /// as `object.__new__(cls)` would (`uses_object_new`).
    pub object_new: bool,
    /// No name hydration stores is a data descriptor on the class: rows.rs
    /// may store through `object.__setattr__`, which then writes exactly
    /// the instance's own `__dict__` entry (`stores_plainly`).
    pub plain_attrs: bool,
}

fn item<'py, T: FromPyObjectOwned<'py>>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<T> {
    match d.get_item(key)? {
        Some(v) => v.extract().map_err(Into::into),
        None => Err(PyValueError::new_err(format!(
            "model plan field lacks '{key}'"
        ))),
    }
}

fn opt_item<'py, T: FromPyObjectOwned<'py>>(
    d: &Bound<'py, PyDict>,
    key: &str,
) -> PyResult<Option<T>> {
    match d.get_item(key)? {
        Some(v) if !v.is_none() => v.extract().map(Some).map_err(Into::into),
        _ => Ok(None),
    }
}

fn callable(d: &Bound<'_, PyDict>, key: &str) -> PyResult<Option<Py<PyAny>>> {
    Ok(d.get_item(key)?.filter(|v| !v.is_none()).map(Bound::unbind))
}

fn parse_on_delete(text: Option<String>) -> PyResult<Option<OnDelete>> {
    Ok(match text.as_deref() {
        None => None,
        Some("cascade") => Some(OnDelete::Cascade),
        Some("restrict") => Some(OnDelete::Restrict),
        Some("set_null") => Some(OnDelete::SetNull),
        Some(other) => {
            return Err(PyValueError::new_err(format!(
                "unknown on_delete '{other}'"
            )))
        }
    })
}

fn field_def(d: &Bound<'_, PyDict>) -> PyResult<FieldDef> {
    let kind: String = item(d, "kind")?;
    Ok(FieldDef {
        attr: item(d, "attr")?,
        storage: item(d, "storage")?,
        kind: kind
            .parse()
            .map_err(|_| PyValueError::new_err(format!("unknown field kind '{kind}'")))?,
        nullable: item(d, "nullable")?,
        unique: item(d, "unique")?,
        index: item(d, "index")?,
        has_default: item(d, "has_default")?,
        full_text: item(d, "full_text")?,
        vector_dim: opt_item(d, "vector_dim")?,
        target: opt_item(d, "target")?,
        on_delete: parse_on_delete(opt_item(d, "on_delete")?)?,
    })
}

fn relationship_def(d: &Bound<'_, PyDict>) -> PyResult<RelationshipDef> {
    let kind: String = item(d, "kind")?;
    Ok(RelationshipDef {
        attr: item(d, "attr")?,
        target: item(d, "target")?,
        kind: match kind.as_str() {
            "link" => RelationKind::Link,
            "collection" => RelationKind::Collection,
            other => {
                return Err(PyValueError::new_err(format!(
                    "unknown relationship '{other}'"
                )))
            }
        },
        via: opt_item(d, "via")?,
    })
}

/// Whether the class's `tp_new` is `object`'s own: no base (Python or
/// extension) builds its instances, so `object`'s `tp_new` may build them
/// directly, exactly as `object.__new__(cls)` would.
pub(crate) fn uses_object_new(cls: &Bound<'_, PyType>) -> bool {
    // SAFETY: both arguments are live type objects (`cls` is borrowed for
    // the call, `object` is static); `PyType_GetSlot` reads any heap
    // type's slots, and a static type's since Python 3.10 (this module
    // needs 3.11). Only the two slot addresses are compared.
    unsafe {
        let object = std::ptr::addr_of_mut!(pyo3::ffi::PyBaseObject_Type);
        let own = pyo3::ffi::PyType_GetSlot(cls.as_type_ptr(), pyo3::ffi::Py_tp_new);
        !own.is_null() && own == pyo3::ffi::PyType_GetSlot(object, pyo3::ffi::Py_tp_new)
    }
}

/// Whether `object.__setattr__(instance, name, v)` stores `v` as the
/// instance's own `__dict__[name]` for every one of `names`: none of them
/// is a data descriptor (a class attribute whose type defines `__set__` or
/// `__delete__`, looked up along the MRO without running any `__get__`),
/// which would otherwise take the store.
fn stores_plainly<'a>(
    cls: &Bound<'_, PyType>,
    names: impl IntoIterator<Item = &'a str>,
) -> PyResult<bool> {
    let py = cls.py();
    let mro = cls.getattr(pyo3::intern!(py, "__mro__"))?;
    let dicts: Vec<Bound<'_, PyAny>> = mro
        .try_iter()?
        .map(|base| base?.getattr(pyo3::intern!(py, "__dict__")))
        .collect::<PyResult<_>>()?;
    for name in names {
        for dict in &dicts {
            let Ok(attr) = dict.get_item(name) else {
                continue; // not in this class's namespace: look further
            };
            let kind = attr.get_type();
            if kind.hasattr(pyo3::intern!(py, "__set__"))?
                || kind.hasattr(pyo3::intern!(py, "__delete__"))?
            {
                return Ok(false);
            }
            break; // the first definition along the MRO is the one used
        }
    }
    Ok(true)
}

fn overrides_post_load(cls: &Bound<'_, PyType>) -> PyResult<bool> {
    let py = cls.py();
    let base = py.import("aura.models")?.getattr("AuraModel")?;
    let name = pyo3::intern!(py, "__aura_post_load__");
    Ok(!cls.getattr(name)?.is(&base.getattr(name)?))
}

#[pymethods]
impl ModelPlan {
    #[new]
    fn new(
        cls: &Bound<'_, PyType>,
        name: String,
        primary_key: Option<String>,
        fields: &Bound<'_, PyList>,
        relationships: &Bound<'_, PyList>,
    ) -> PyResult<Self> {
        let py = cls.py();
        let mut defs = Vec::with_capacity(fields.len());
        let mut plans = Vec::with_capacity(fields.len());
        for entry in fields.iter() {
            let d = entry.cast::<PyDict>()?;
            let def = field_def(d)?;
            plans.push(FieldPlan {
                attr: PyString::intern(py, &def.attr).unbind(),
                kind: def.kind,
                load: callable(d, "load")?,
                dump: callable(d, "dump")?,
            });
            defs.push(def);
        }
        let mut rels = Vec::with_capacity(relationships.len());
        let mut relations = Vec::with_capacity(relationships.len());
        for entry in relationships.iter() {
            let def = relationship_def(entry.cast::<PyDict>()?)?;
            relations.push(RelationPlan {
                attr: PyString::intern(py, &def.attr).unbind(),
                target: def.target.clone(),
            });
            rels.push(def);
        }
        let pk_pos = primary_key
            .as_deref()
            .and_then(|pk| defs.iter().position(|f| f.storage == pk));
        let names = defs.iter().map(|f| f.attr.as_str());
        let names = names.chain(rels.iter().map(|r| r.attr.as_str()));
        let plain_attrs = stores_plainly(cls, names.chain(crate::rows::ROW_ATTRS))?;
        let schema = ModelSchema {
            name,
            primary_key,
            fields: defs,
            relationships: rels,
        };
        Ok(ModelPlan {
            cls: cls.clone().unbind(),
            new_args: PyTuple::new(py, [cls])?.unbind(),
            schema: Arc::new(schema),
            fields: plans,
            relations,
            pk_pos,
            post_load: overrides_post_load(cls)?,
            object_new: uses_object_new(cls),
            plain_attrs,
        })
    }

    #[getter]
    fn name(&self) -> &str {
        &self.schema.name
    }
}

impl ModelPlan {
    /// Position of a relationship attribute in `relations`.
    pub fn relation(&self, attr: &str) -> Option<&RelationPlan> {
        self.schema
            .relationships
            .iter()
            .position(|r| r.attr == attr)
            .map(|i| &self.relations[i])
    }
}
