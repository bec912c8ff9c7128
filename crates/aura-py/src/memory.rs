//! The in-memory backend: `MemoryEngine` (one shared engine, what
//! `ReferenceServer` wraps) and `MemoryConnection` (one client's view of it,
//! with that client's model plans). Every call completes on the spot: the
//! engine is in process, so there is nothing to await.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aura_core::error::Error;
use aura_core::ir::{Request, Select};
use aura_engine::{Engine, OnConflict, QueryOutput, TxnId};
use parking_lot::RwLock;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::{json_to_py, py_to_json, value_to_py};
use crate::errors::IntoPyResult;
use crate::metrics::Metrics;
use crate::plan::ModelPlan;
use crate::rows::{to_row, GcPause, Hydrator};

#[pyclass(frozen, module = "aura._core")]
pub struct MemoryEngine {
    pub engine: Arc<Engine>,
}

#[pymethods]
impl MemoryEngine {
    #[new]
    fn new() -> Self {
        MemoryEngine {
            engine: Arc::new(Engine::new()),
        }
    }

    /// Names of the tables the engine holds.
    fn table_names(&self) -> Vec<String> {
        self.engine.table_names()
    }
}

/// `request`'s outcome, counted and timed into `metrics` (when given) by
/// `record`. Recording never replaces the request's own outcome (a write
/// may have committed): when the metrics are busy, it is skipped.
fn recorded<'py>(
    metrics: Option<&Bound<'py, Metrics>>,
    request: impl FnOnce() -> PyResult<Bound<'py, PyAny>>,
    record: impl FnOnce(&mut Metrics, Duration, Option<&PyErr>),
) -> PyResult<Bound<'py, PyAny>> {
    let Some(metrics) = metrics else {
        return request();
    };
    let started = Instant::now();
    let result = request();
    if let Ok(mut metrics) = metrics.try_borrow_mut() {
        record(&mut metrics, started.elapsed(), result.as_ref().err());
    }
    result
}

#[pyclass(frozen, module = "aura._core")]
pub struct MemoryConnection {
    engine: Arc<Engine>,
    plans: RwLock<HashMap<String, Py<ModelPlan>>>,
}

/// Deserialize the IR straight from the Python dict (no JSON detour).
pub fn parse_request(ir: &Bound<'_, PyAny>) -> PyResult<Request> {
    match crate::ir_fast::parse(ir) {
        Some(request) => Ok(request),
        None => parse_serde(ir),
    }
}

/// An upsert IR (`upsert()` of every backend).
pub fn parse_upsert(ir: &Bound<'_, PyAny>) -> PyResult<aura_core::ir::Upsert> {
    match parse_request(ir)? {
        Request::Upsert(q) => Ok(q),
        _ => Err(crate::errors::to_py(Error::query("expected an upsert IR"))),
    }
}

/// The general IR reader: every shape, and every error message.
pub(crate) fn parse_serde(ir: &Bound<'_, PyAny>) -> PyResult<Request> {
    crate::ir_de::from_py::<Request>(ir)
        .map_err(|e| aura_core::ir::invalid_ir(e.to_string()))
        .py_err()
}

/// The `on_conflict` keyword as the engine's mode (shared by every backend).
pub(crate) fn on_conflict_mode(mode: Option<&str>) -> PyResult<OnConflict> {
    match mode {
        None => Ok(OnConflict::Error),
        Some("ignore") => Ok(OnConflict::Ignore),
        Some("replace") => Ok(OnConflict::Replace),
        Some(other) => Err(crate::errors::to_py(Error::query(format!(
            "on_conflict must be None, 'ignore' or 'replace', got '{other}'"
        )))),
    }
}

/// Projection mask over the model's stored fields (None = every field).
pub(crate) fn projection_mask(plan: &ModelPlan, q: &Select) -> Option<Vec<bool>> {
    if q.projection.is_empty() {
        return None;
    }
    let mut mask = vec![false; plan.schema.fields.len()];
    for name in &q.projection {
        let root = name.split('.').next().unwrap_or(name);
        if let Some(pos) = plan.schema.field_index(root) {
            mask[pos] = true;
        }
    }
    Some(mask)
}

impl MemoryConnection {
    fn hydrate_select<'py>(
        &self,
        py: Python<'py>,
        q: &Select,
        out: QueryOutput,
    ) -> PyResult<Bound<'py, PyList>> {
        crate::rows::hydrate_results(py, &self.plans.read(), q, out.rows)
    }

    fn plan(&self, py: Python<'_>, model: &str) -> PyResult<Py<ModelPlan>> {
        self.plans
            .read()
            .get(model)
            .map(|p| p.clone_ref(py))
            .ok_or_else(|| crate::errors::to_py(Error::schema(format!("Unknown model '{model}'"))))
    }

    /// One select, run and hydrated.
    fn run_select<'py>(
        &self,
        py: Python<'py>,
        q: &Select,
        txn: Option<TxnId>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let out = py.detach(|| self.engine.select(txn, q)).py_err()?;
        Ok(self.hydrate_select(py, q, out)?.into_any())
    }

    /// One read or write IR, run and hydrated.
    fn run<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        txn: Option<TxnId>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = parse_request(ir)?;
        let engine = &self.engine;

        match request {
            Request::Select(q) => self.run_select(py, &q, txn),
            Request::Count(q) => {
                let n = py.detach(|| engine.count(txn, &q)).py_err()?;
                Ok(n.into_pyobject(py)?.into_any())
            }
            Request::Exists(q) => {
                let found = py.detach(|| engine.exists(txn, &q)).py_err()?;
                Ok(pyo3::types::PyBool::new(py, found).to_owned().into_any())
            }
            Request::Update(q) => {
                let n = py.detach(|| engine.update(txn, &q)).py_err()?;
                Ok(n.into_pyobject(py)?.into_any())
            }
            Request::Delete(q) => {
                let n = py.detach(|| engine.delete(txn, &q)).py_err()?;
                Ok(n.into_pyobject(py)?.into_any())
            }
            Request::Traverse(q) => {
                let (model, rows) = py.detach(|| engine.traverse(txn, &q)).py_err()?;
                let plans = self.plans.read();
                let hydrator = Hydrator::new(py, &plans)?;
                let _gc = GcPause::for_rows(py, rows.len());
                let items = rows
                    .iter()
                    .map(|row| hydrator.simple(&model, row))
                    .collect::<PyResult<Vec<_>>>()?;
                Ok(PyList::new(py, items)?.into_any())
            }
            Request::SearchPage(q) => {
                let (out, cursor) = py.detach(|| engine.search_page(txn, &q)).py_err()?;
                let rows = self.hydrate_select(py, &q, out)?;
                Ok((rows, cursor).into_pyobject(py)?.into_any())
            }
            Request::Aggregate(q) => {
                let result = py.detach(|| engine.aggregate(txn, &q)).py_err()?;
                json_to_py(py, &result)
            }
            other => Err(crate::errors::to_py(other.not_served("memory"))),
        }
    }
}

#[pymethods]
impl MemoryConnection {
    #[new]
    fn new(engine: &MemoryEngine) -> Self {
        MemoryConnection {
            engine: engine.engine.clone(),
            plans: RwLock::new(HashMap::new()),
        }
    }

    /// Register a model plan and create its table.
    fn register(&self, py: Python<'_>, plan: Py<ModelPlan>) -> PyResult<()> {
        let schema = plan.get().schema.clone();
        let name = schema.name.clone();
        py.detach(|| self.engine.create_table(schema)).py_err()?;
        self.plans.write().insert(name, plan);
        Ok(())
    }

    fn drop_table(&self, name: &str) -> PyResult<bool> {
        self.engine.drop_table(name).py_err()
    }

    #[pyo3(signature = (model, instances, on_conflict=None, txn=None))]
    fn insert(
        &self,
        py: Python<'_>,
        model: &str,
        instances: &Bound<'_, PyList>,
        on_conflict: Option<&str>,
        txn: Option<TxnId>,
    ) -> PyResult<u64> {
        let plan = self.plan(py, model)?;
        let mode = on_conflict_mode(on_conflict)?;
        let rows = crate::rows::to_rows(plan.get(), instances)?;
        py.detach(|| self.engine.insert(txn, model, rows, mode))
            .py_err()
    }

    /// Run a read or write IR; see the Executor protocol in ARCHITECTURE.md.
    /// With `metrics`, the request is counted and timed here, in the same
    /// call (the client's per-request recording, without a Python step).
    #[pyo3(signature = (ir, txn=None, metrics=None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        txn: Option<TxnId>,
        metrics: Option<&Bound<'py, Metrics>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        recorded(
            metrics,
            || self.run(py, ir, txn),
            |metrics, elapsed, error| {
                // An IR without a readable operation was refused by `run`.
                let _ = metrics.observe(ir, elapsed, error);
            },
        )
    }

    /// A read straight from the builder's `SelectQuery` node (`cap` lowers
    /// its limit, as `first()`/`one()` do): the select is read from the
    /// node when its shape allows (`ir_fast::select_node`), else from its
    /// IR. Counted and timed into `metrics` as `execute` does.
    #[pyo3(signature = (node, cap=None, txn=None, metrics=None))]
    fn select<'py>(
        &self,
        py: Python<'py>,
        node: &Bound<'py, PyAny>,
        cap: Option<u64>,
        txn: Option<TxnId>,
        metrics: Option<&Bound<'py, Metrics>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = || match crate::ir_fast::select_node(node, cap) {
            Some(q) => self.run_select(py, &q, txn),
            None => self.run(py, &crate::ir_fast::node_ir(node, cap)?, txn),
        };
        recorded(metrics, request, |metrics, elapsed, error| {
            metrics.record_request(py, "select", elapsed, error)
        })
    }

    /// Upsert: the engine matches on `key`; `instance` is the row to insert
    /// when nothing matches (None when the caller could not build one).
    #[pyo3(signature = (ir, instance=None, txn=None))]
    fn upsert<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        instance: Option<&Bound<'py, PyAny>>,
        txn: Option<TxnId>,
    ) -> PyResult<Option<Bound<'py, PyAny>>> {
        let q = crate::memory::parse_upsert(ir)?;
        let plan = self.plan(py, &q.model)?;
        let insert_row = instance.map(|obj| to_row(plan.get(), obj)).transpose()?;
        let stored = py
            .detach(|| self.engine.upsert(txn, &q, insert_row))
            .py_err()?;
        let plans = self.plans.read();
        let hydrator = Hydrator::new(py, &plans)?;
        stored
            .map(|row| hydrator.simple(&q.model, &row))
            .transpose()
    }

    /// `raw()`: rows as plain dicts keyed by storage name.
    #[pyo3(signature = (statement, params=None, txn=None))]
    fn raw<'py>(
        &self,
        py: Python<'py>,
        statement: &str,
        params: Option<&Bound<'py, PyAny>>,
        txn: Option<TxnId>,
    ) -> PyResult<Bound<'py, PyList>> {
        let params = match params {
            Some(p) => py_to_json(p)?,
            None => serde_json::Value::Null,
        };
        let (model, rows) = py
            .detach(|| self.engine.raw(txn, statement, &params))
            .py_err()?;
        let schema = self.engine.schema(&model).ok_or_else(|| {
            crate::errors::to_py(Error::schema(format!("Unknown model '{model}'")))
        })?;
        let list = PyList::empty(py);
        for row in &rows {
            let dict = PyDict::new(py);
            for (field, value) in schema.fields.iter().zip(row.iter()) {
                dict.set_item(&field.storage, value_to_py(py, value)?)?;
            }
            list.append(dict)?;
        }
        Ok(list)
    }

    /// The IR as the engine reads it, plus the chosen access path.
    fn explain<'py>(&self, py: Python<'py>, ir: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let request = parse_request(ir)?;
        let mut json = serde_json::to_value(&request)
            .map_err(|e| Error::query(format!("invalid query IR: {e}")))
            .py_err()?;
        let select = match &request {
            Request::Select(q) | Request::SearchPage(q) | Request::Aggregate(q) => Some(q),
            _ => None,
        };
        if let (Some(q), Some(obj)) = (select, json.as_object_mut()) {
            let path = self.engine.plan(q).py_err()?;
            let search = self.engine.plan_search(q).py_err()?;
            let mut plan = path.describe();
            if let (Some(search), Some(map)) = (search, plan.as_object_mut()) {
                map.insert("search".to_owned(), search);
            }
            obj.insert("plan".to_owned(), plan);
        }
        json_to_py(py, &json)
    }

    fn begin(&self) -> TxnId {
        self.engine.begin()
    }

    fn commit(&self, py: Python<'_>, txn: TxnId) -> PyResult<()> {
        py.detach(|| self.engine.commit(txn)).py_err()
    }

    fn rollback(&self, txn: TxnId) -> PyResult<()> {
        self.engine.rollback(txn).py_err()
    }

    /// Open a cursor over a select: the result set is fixed now (a snapshot
    /// of shared rows) and hydrated one batch at a time by `fetch`.
    #[pyo3(signature = (ir, txn=None))]
    fn cursor(
        &self,
        py: Python<'_>,
        ir: &Bound<'_, PyAny>,
        txn: Option<TxnId>,
    ) -> PyResult<MemoryCursor> {
        let Request::Select(q) = parse_request(ir)? else {
            return Err(crate::errors::to_py(Error::query(
                "a cursor needs a select IR",
            )));
        };
        let out = py.detach(|| self.engine.select(txn, &q)).py_err()?;
        Ok(MemoryCursor {
            owner: RwLock::new(Some(CursorState {
                query: q,
                rows: out.rows.into(),
                pos: 0,
            })),
        })
    }
}

struct CursorState {
    query: Select,
    rows: std::collections::VecDeque<aura_engine::ResultRow>,
    pos: usize,
}

/// A server-side cursor of the memory engine.
#[pyclass(frozen, module = "aura._core")]
pub struct MemoryCursor {
    owner: RwLock<Option<CursorState>>,
}

#[pymethods]
impl MemoryCursor {
    /// Hydrate up to `batch_size` rows; an empty list means exhausted.
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        conn: &MemoryConnection,
        batch_size: usize,
    ) -> PyResult<Bound<'py, PyList>> {
        let mut guard = self.owner.write();
        let Some(state) = guard.as_mut() else {
            return Ok(PyList::empty(py));
        };
        let take = batch_size.min(state.rows.len());
        let batch: Vec<_> = state.rows.drain(..take).collect();
        state.pos += take;
        let out = QueryOutput {
            rows: batch,
            access_path: aura_engine::AccessPath::FullScan,
        };
        conn.hydrate_select(py, &state.query, out)
    }

    /// Release the rows held by the cursor.
    fn close(&self) {
        self.owner.write().take();
    }

    #[getter]
    fn is_open(&self) -> bool {
        self.owner.read().is_some()
    }
}
