//! The most frequent requests (a select, count or exists with plain
//! filters and a window, and top-k text and vector searches) read straight
//! from the IR dict, without serde's per-key visitor machinery: on a point
//! lookup that machinery costs more than the engine's work, and a vector
//! query's 128 floats cost more through it than the rest of the request.
//!
//! Keys are interned Python strings, so each lookup hashes nothing.
//!
//! Anything outside those shapes, and anything malformed, returns `None`
//! and goes through the serde reader (`ir_de`), which stays the one
//! definition of what is valid and of every error message. A test checks
//! that both readers agree on every shape the builders produce.

use aura_core::ir::{BoolOp, CompareOp, Expr, Filtered, Request, Select, TextSearch, VectorClause};
use pyo3::intern;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyFloat, PyInt, PyList, PyString, PyTuple};
use serde_json::{Map, Value as Json};

/// The request, when `ir` is one of the shapes read here.
pub fn parse(ir: &Bound<'_, PyAny>) -> Option<Request> {
    let dict = ir.cast_exact::<PyDict>().ok()?;
    let operation = dict.get_item(intern!(dict.py(), "operation")).ok()??;
    match borrowed(&operation)? {
        "select" => select(dict).map(Request::Select),
        "count" => filtered(dict).map(Request::Count),
        "exists" => filtered(dict).map(Request::Exists),
        _ => None,
    }
}

fn select(dict: &Bound<'_, PyDict>) -> Option<Select> {
    let mut q = Select::new(&text(&dict.get_item(intern!(dict.py(), "model")).ok()??)?);
    let mut seen = 2; // operation, model
    if let Some(filters) = dict.get_item(intern!(dict.py(), "filters")).ok()? {
        q.filters = exprs(&filters)?;
        seen += 1;
    }
    if let Some(limit) = dict.get_item(intern!(dict.py(), "limit")).ok()? {
        q.limit = Some(count(&limit)?);
        seen += 1;
    }
    if let Some(offset) = dict.get_item(intern!(dict.py(), "offset")).ok()? {
        q.offset = Some(count(&offset)?);
        seen += 1;
    }
    if let Some(consistency) = dict.get_item(intern!(dict.py(), "consistency")).ok()? {
        q.consistency = text(&consistency)?;
        seen += 1;
    }
    if let Some(timeout) = dict.get_item(intern!(dict.py(), "timeout_ms")).ok()? {
        q.timeout_ms = Some(count(&timeout)?);
        seen += 1;
    }
    seen += search_clauses(dict, &mut q)?;
    // Any other key (hybrid, includes, sorts, pages, ...) is serde's to read.
    (dict.len() == seen).then_some(q)
}

/// The projection and the top-k search clauses of a select (the keys every
/// ranked query sends); returns how many keys it read.
fn search_clauses(dict: &Bound<'_, PyDict>, q: &mut Select) -> Option<usize> {
    let py = dict.py();
    let mut seen = 0;
    if let Some(projection) = dict.get_item(intern!(py, "projection")).ok()? {
        let list = projection.cast_exact::<PyList>().ok()?;
        q.projection = list.iter().map(|f| text(&f)).collect::<Option<_>>()?;
        seen += 1;
    }
    if let Some(vector) = dict.get_item(intern!(py, "vector")).ok()? {
        q.vector = Some(vector_clause(&vector)?);
        seen += 1;
    }
    if let Some(ann) = dict.get_item(intern!(py, "vector_ann")).ok()? {
        q.vector_ann = Some(int_options(&ann)?);
        seen += 1;
    }
    if let Some(search) = dict.get_item(intern!(py, "text_search")).ok()? {
        q.text_search = Some(text_search(&search)?);
        seen += 1;
    }
    Some(seen)
}

/// `{field, metric, query}` with a list of floats (ints and other numbers
/// are serde's to convert).
fn vector_clause(obj: &Bound<'_, PyAny>) -> Option<VectorClause> {
    let dict = obj.cast_exact::<PyDict>().ok()?;
    let query = dict.get_item(intern!(dict.py(), "query")).ok()??;
    let items = query.cast_exact::<PyList>().ok()?.iter();
    vector_fields(dict, items.map(|x| finite_float(&x)))
}

/// The clause from its `field` and `metric` and its `query` components
/// (each None unless a finite float), when `dict` holds only those three
/// keys.
fn vector_fields(
    dict: &Bound<'_, PyDict>,
    query: impl Iterator<Item = Option<f64>>,
) -> Option<VectorClause> {
    let py = dict.py();
    let item = |key| dict.get_item(key).ok().flatten();
    let query = query.collect::<Option<Vec<f64>>>()?;
    let clause = VectorClause {
        field: text(&item(intern!(py, "field"))?)?,
        metric: text(&item(intern!(py, "metric"))?)?,
        query,
    };
    (dict.len() == 3).then_some(clause)
}

/// A dict of str to int (the approximate-search options).
fn int_options(obj: &Bound<'_, PyAny>) -> Option<Map<String, Json>> {
    let dict = obj.cast_exact::<PyDict>().ok()?;
    dict.iter()
        .map(|(k, v)| {
            let v = v.cast_exact::<PyInt>().ok()?.extract::<i64>().ok()?;
            Some((text(&k)?, Json::from(v)))
        })
        .collect()
}

/// A finite float, or an int as serde converts it (bool is not a number
/// here).
fn number(obj: &Bound<'_, PyAny>) -> Option<f64> {
    match obj.cast_exact::<PyFloat>() {
        Ok(float) => finite(float.value()),
        Err(_) => Some(obj.cast_exact::<PyInt>().ok()?.extract::<i64>().ok()? as f64),
    }
}

/// A finite float (exactly a `float`: ints and other numbers are serde's
/// to convert).
fn finite_float(obj: &Bound<'_, PyAny>) -> Option<f64> {
    finite(obj.cast_exact::<PyFloat>().ok()?.value())
}

/// NaN and infinities are serde's to judge: depending on the key order it
/// reads them as floats or, through JSON values, as null.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// `{field, query, operator, rank, k1?, b?}`.
fn text_search(obj: &Bound<'_, PyAny>) -> Option<TextSearch> {
    let dict = obj.cast_exact::<PyDict>().ok()?;
    let search = text_search_fields(dict)?;
    let keys = 4 + usize::from(search.k1.is_some()) + usize::from(search.b.is_some());
    (dict.len() == keys).then_some(search)
}

/// The `text_search` fields of `dict`; a `k1` or `b` absent or None is
/// not given (serde reads None so too).
fn text_search_fields(dict: &Bound<'_, PyDict>) -> Option<TextSearch> {
    let py = dict.py();
    let item = |key| dict.get_item(key).ok().flatten();
    let param = |key| match item(key) {
        None => Some(None),
        Some(v) => optional(&v, number),
    };
    Some(TextSearch {
        field: text(&item(intern!(py, "field"))?)?,
        query: text(&item(intern!(py, "query"))?)?,
        operator: text(&item(intern!(py, "operator"))?)?,
        rank: text(&item(intern!(py, "rank"))?)?,
        k1: param(intern!(py, "k1"))?,
        b: param(intern!(py, "b"))?,
    })
}

/// How many fields a `SelectQuery` node holds (`aura/query/ast.py`): a
/// node with others is not one this reader knows (it declines them all,
/// which `test_ir_fast.py` catches).
const SELECT_NODE_FIELDS: usize = 18;

/// The select that `node.capped_ir(cap)` (or `node.to_ir()` without a cap)
/// would send, read from the builder's `SelectQuery` node itself, when it
/// holds no filters, includes, sort, legacy or hybrid clause: no IR dict is
/// built or read. `None` sends the node through its IR, as before.
pub fn select_node(node: &Bound<'_, PyAny>, cap: Option<u64>) -> Option<Select> {
    let py = node.py();
    let dict = node_fields(node)?;
    if dict.len() != SELECT_NODE_FIELDS {
        return None;
    }
    let item = |key| dict.get_item(key).ok().flatten();
    let empty =
        |key| item(key).is_some_and(|v| v.cast_exact::<PyTuple>().is_ok_and(|t| t.is_empty()));
    let none = |key| item(key).is_some_and(|v| v.is_none());
    let known_shape = empty(intern!(py, "filters"))
        && empty(intern!(py, "includes"))
        && empty(intern!(py, "order_by"))
        && none(intern!(py, "text"))
        && none(intern!(py, "hybrid"))
        && none(intern!(py, "fusion_alpha"));
    if !known_shape {
        return None;
    }
    let mut q = Select::new(&text(&item(intern!(py, "model"))?)?);
    let projection = item(intern!(py, "projection"))?;
    q.projection = projection
        .cast_exact::<PyTuple>()
        .ok()?
        .iter()
        .map(|f| text(&f))
        .collect::<Option<_>>()?;
    q.limit = optional(&item(intern!(py, "limit"))?, count)?;
    if let Some(cap) = cap {
        q.limit = Some(q.limit.map_or(cap, |l| l.min(cap)));
    }
    q.offset = optional(&item(intern!(py, "offset"))?, count)?;
    q.timeout_ms = optional(&item(intern!(py, "timeout_ms"))?, count)?;
    q.consistency = text(&item(intern!(py, "consistency"))?)?;
    q.vector = optional(&item(intern!(py, "vector"))?, vector_node)?;
    q.vector_ann = optional(&item(intern!(py, "vector_ann"))?, ann_pairs)?;
    q.text_search = optional(&item(intern!(py, "text_search"))?, text_search_node)?;
    Some(q)
}

/// `None` when the field holds None, `read(value)` otherwise (`None`
/// overall when that fails).
fn optional<T>(
    value: &Bound<'_, PyAny>,
    read: impl FnOnce(&Bound<'_, PyAny>) -> Option<T>,
) -> Option<Option<T>> {
    match value.is_none() {
        true => Some(None),
        false => read(value).map(Some),
    }
}

/// A node's field dict (frozen dataclass nodes keep their fields there).
fn node_fields<'py>(node: &Bound<'py, PyAny>) -> Option<Bound<'py, PyDict>> {
    let fields = node.getattr(intern!(node.py(), "__dict__")).ok()?;
    fields.cast_into_exact::<PyDict>().ok()
}

/// A `VectorSearch` node: `field`, `query` (a tuple of finite floats),
/// `metric`.
fn vector_node(node: &Bound<'_, PyAny>) -> Option<VectorClause> {
    let dict = node_fields(node)?;
    let query = dict.get_item(intern!(dict.py(), "query")).ok()??;
    // Borrowed items: no reference count taken per component.
    let items = query.cast_exact::<PyTuple>().ok()?.iter_borrowed();
    vector_fields(&dict, items.map(|x| finite_float(&x)))
}

/// `vector_ann` as the node keeps it: a tuple of `(name, int)` pairs.
fn ann_pairs(obj: &Bound<'_, PyAny>) -> Option<Map<String, Json>> {
    obj.cast_exact::<PyTuple>()
        .ok()?
        .iter()
        .map(|pair| {
            let pair = pair.cast_into_exact::<PyTuple>().ok()?;
            if pair.len() != 2 {
                return None;
            }
            let value = pair.get_item(1).ok()?;
            let value = value.cast_exact::<PyInt>().ok()?.extract::<i64>().ok()?;
            Some((text(&pair.get_item(0).ok()?)?, Json::from(value)))
        })
        .collect()
}

/// A `TextRankedSearch` node: the `text_search` clause, whose `k1` and
/// `b` are None when not given (the IR leaves them out).
fn text_search_node(node: &Bound<'_, PyAny>) -> Option<TextSearch> {
    let dict = node_fields(node)?;
    text_search_fields(&dict).filter(|_| dict.len() == 6)
}

fn filtered(dict: &Bound<'_, PyDict>) -> Option<Filtered> {
    let model = text(&dict.get_item(intern!(dict.py(), "model")).ok()??)?;
    let mut seen = 2;
    let filters = match dict.get_item(intern!(dict.py(), "filters")).ok()? {
        Some(filters) => {
            seen += 1;
            exprs(&filters)?
        }
        None => Vec::new(),
    };
    let mut q = Filtered::new(&model, filters);
    if let Some(timeout) = dict.get_item(intern!(dict.py(), "timeout_ms")).ok()? {
        q.timeout_ms = Some(count(&timeout)?);
        seen += 1;
    }
    (dict.len() == seen).then_some(q)
}

fn exprs(list: &Bound<'_, PyAny>) -> Option<Vec<Expr>> {
    let list = list.cast_exact::<PyList>().ok()?;
    list.iter().map(|item| expr(&item)).collect()
}

/// One expression dict; its keys must be exactly the variant's.
fn expr<'py>(obj: &Bound<'py, PyAny>) -> Option<Expr> {
    let dict = obj.cast_exact::<PyDict>().ok()?;
    let item = |key: &Bound<'py, PyString>| dict.get_item(key).ok().flatten();
    let py = dict.py();
    let kind = item(intern!(py, "kind"))?;
    let (expr, keys) = match borrowed(&kind)? {
        "field" => (
            Expr::Field {
                model: text(&item(intern!(py, "model"))?)?,
                field: text(&item(intern!(py, "field"))?)?,
                path: None,
            },
            3,
        ),
        "literal" => (
            Expr::Literal {
                value: crate::ir_de::from_py(&item(intern!(py, "value"))?).ok()?,
            },
            2,
        ),
        "compare" => (
            Expr::Compare {
                op: compare_op(borrowed(&item(intern!(py, "op"))?)?)?,
                left: Box::new(expr(&item(intern!(py, "left"))?)?),
                right: Box::new(expr(&item(intern!(py, "right"))?)?),
            },
            4,
        ),
        "bool" => (
            Expr::Bool {
                op: match borrowed(&item(intern!(py, "op"))?)? {
                    "and" => BoolOp::And,
                    "or" => BoolOp::Or,
                    _ => return None,
                },
                operands: exprs(&item(intern!(py, "operands"))?)?,
            },
            3,
        ),
        "not" => (
            Expr::Not {
                operand: Box::new(expr(&item(intern!(py, "operand"))?)?),
            },
            2,
        ),
        _ => return None,
    };
    (dict.len() == keys).then_some(expr)
}

fn compare_op(op: &str) -> Option<CompareOp> {
    Some(match op {
        "eq" => CompareOp::Eq,
        "ne" => CompareOp::Ne,
        "lt" => CompareOp::Lt,
        "le" => CompareOp::Le,
        "gt" => CompareOp::Gt,
        "ge" => CompareOp::Ge,
        "in" => CompareOp::In,
        "not_in" => CompareOp::NotIn,
        "contains" => CompareOp::Contains,
        "startswith" => CompareOp::Startswith,
        "endswith" => CompareOp::Endswith,
        "like" => CompareOp::Like,
        "is_null" => CompareOp::IsNull,
        "is_not_null" => CompareOp::IsNotNull,
        "exists" => CompareOp::Exists,
        _ => return None,
    })
}

fn text(obj: &Bound<'_, PyAny>) -> Option<String> {
    borrowed(obj).map(str::to_owned)
}

/// A str's UTF-8 (cached by CPython), without copying it.
fn borrowed<'a>(obj: &'a Bound<'_, PyAny>) -> Option<&'a str> {
    obj.cast_exact::<PyString>().ok()?.to_str().ok()
}

/// A non-negative int (bool is not an int here, as in `ir_de`).
fn count(obj: &Bound<'_, PyAny>) -> Option<u64> {
    obj.cast_exact::<PyInt>().ok()?.extract::<u64>().ok()
}

/// The node reader's select and the one read from the node's IR, as IR
/// JSON (the node reader's `None` when it declines), for the test that
/// keeps them in agreement.
#[pyfunction]
#[pyo3(signature = (node, cap=None))]
pub fn node_parse_paths(
    py: Python<'_>,
    node: &Bound<'_, PyAny>,
    cap: Option<u64>,
) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let fast = match select_node(node, cap) {
        Some(q) => crate::convert::json_to_py(py, &Request::Select(q).to_json())?.unbind(),
        None => py.None(),
    };
    let slow = crate::memory::parse_serde(&node_ir(node, cap)?)?;
    Ok((
        fast,
        crate::convert::json_to_py(py, &slow.to_json())?.unbind(),
    ))
}

/// The IR a select node sends: `capped_ir(cap)`, or `to_ir()`.
pub fn node_ir<'py>(node: &Bound<'py, PyAny>, cap: Option<u64>) -> PyResult<Bound<'py, PyAny>> {
    match cap {
        Some(cap) => node.call_method1(intern!(node.py(), "capped_ir"), (cap,)),
        None => node.call_method0(intern!(node.py(), "to_ir")),
    }
}

/// Both readers' results as IR JSON (the fast one `None` when it declines),
/// for the test that keeps them in agreement.
#[pyfunction]
pub fn ir_parse_paths(py: Python<'_>, ir: &Bound<'_, PyAny>) -> PyResult<(Py<PyAny>, Py<PyAny>)> {
    let fast = match parse(ir) {
        Some(request) => crate::convert::json_to_py(py, &request.to_json())?.unbind(),
        None => py.None(),
    };
    let slow = crate::memory::parse_serde(ir)?;
    Ok((
        fast,
        crate::convert::json_to_py(py, &slow.to_json())?.unbind(),
    ))
}
