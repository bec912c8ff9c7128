//! The MongoDB backend (`mongodb://`, `mongodb+motor://`): `aura_mongo`
//! behind awaitables (bridge.rs, tokio). Rows are hydrated by the
//! shared `rows::hydrate_results`, as for every backend.

use std::sync::Arc;
use std::time::Duration;

use aura_core::error::Error;
use aura_core::ir::{Request, Select};
use aura_mongo::{MongoOptions, MongoStore};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::bridge::future_into_py_within;
use crate::convert::json_to_py;
use crate::convert::timeout_from_seconds;
use crate::errors::{no_transactions, to_py};
use crate::memory::{on_conflict_mode, parse_request};
use crate::plan::ModelPlan;
use crate::rows::{hydrated, stored_instance, SharedPlans};
use crate::rows::{to_row, Deferred};

const BACKEND: &str = aura_mongo::BACKEND;

struct Inner {
    store: MongoStore,
    plans: SharedPlans,
    /// Client-side bound on each request (`ClientConfig.request_timeout_s`).
    request_timeout: Duration,
}

/// One client's MongoDB connection pool.
#[pyclass(frozen, module = "aura._core")]
pub struct MongoConnection {
    inner: Arc<Inner>,
}

#[pymethods]
impl MongoConnection {
    /// Build (no I/O); `uri` is a `mongodb://` URI, `database` the database.
    #[new]
    #[pyo3(signature = (uri, database, *, connect_timeout_s=10.0, request_timeout_s=30.0))]
    fn new(uri: String, database: String, connect_timeout_s: f64, request_timeout_s: f64) -> Self {
        let connect_timeout = timeout_from_seconds(connect_timeout_s);
        MongoConnection {
            inner: Arc::new(Inner {
                store: MongoStore::new(MongoOptions {
                    uri,
                    database,
                    connect_timeout,
                }),
                plans: SharedPlans::default(),
                request_timeout: timeout_from_seconds(request_timeout_s),
            }),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "MongoConnection(database='{}')",
            self.inner.store.database_name()
        )
    }

    fn register(&self, plan: Py<ModelPlan>) {
        let schema = plan.get().schema.clone();
        let name = schema.name.clone();
        self.inner.store.register(schema);
        self.inner.plans.write().insert(name, plan);
    }

    fn open<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py_within(py, inner.request_timeout, async move {
            Ok(inner.store.open().await?)
        })
    }

    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py_within(py, inner.request_timeout, async move {
            inner.store.close().await;
            Ok(())
        })
    }

    fn ping<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py_within(py, inner.request_timeout, async move {
            Ok(inner.store.ping().await?)
        })
    }

    /// Create the declared unique and secondary indexes of each model.
    fn create_schema<'py>(
        &self,
        py: Python<'py>,
        models: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py_within(py, inner.request_timeout, async move {
            for name in models {
                let schema = inner.store.schema(&name)?;
                inner.store.create_indexes(&schema).await?;
            }
            Ok(())
        })
    }

    fn drop_schema<'py>(
        &self,
        py: Python<'py>,
        models: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py_within(py, inner.request_timeout, async move {
            for name in models {
                inner.store.drop_collection(&name).await?;
            }
            Ok(())
        })
    }

    /// Run a select/count/exists/update/delete/aggregate IR.
    #[pyo3(signature = (ir, txn=None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        txn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        no_transactions(BACKEND, txn)?;
        let request = parse_request(ir)?;
        let inner = self.inner.clone();
        match request {
            Request::Select(q) => future_into_py_within(py, inner.request_timeout, async move {
                let rows = inner.store.select(&q).await?;
                Ok(hydrated(inner.plans.clone(), q, rows))
            }),
            Request::Count(q) => future_into_py_within(py, inner.request_timeout, async move {
                Ok(inner.store.count(&q).await?)
            }),
            Request::Exists(q) => future_into_py_within(py, inner.request_timeout, async move {
                Ok(inner.store.exists(&q).await?)
            }),
            Request::Update(q) => future_into_py_within(py, inner.request_timeout, async move {
                Ok(inner.store.update(&q).await?)
            }),
            Request::Delete(q) => future_into_py_within(py, inner.request_timeout, async move {
                Ok(inner.store.delete(&q).await?)
            }),
            Request::Aggregate(q) => future_into_py_within(py, inner.request_timeout, async move {
                let json = inner.store.aggregate(&q).await?;
                Ok(Deferred::new(move |py| json_to_py(py, &json)))
            }),
            other => Err(to_py(other.not_served(BACKEND))),
        }
    }

    #[pyo3(signature = (model, instances, on_conflict=None, txn=None))]
    fn insert<'py>(
        &self,
        py: Python<'py>,
        model: String,
        instances: &Bound<'py, PyList>,
        on_conflict: Option<String>,
        txn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        no_transactions(BACKEND, txn)?;
        let mode = on_conflict_mode(on_conflict.as_deref())?;
        let inner = self.inner.clone();
        let plan = self.plan(py, &model)?;
        let rows = crate::rows::to_rows(plan.get(), instances)?;
        let schema = plan.get().schema.clone();
        future_into_py_within(py, inner.request_timeout, async move {
            Ok(inner.store.insert(&schema, &rows, mode).await?)
        })
    }

    /// Atomic upsert; returns the stored instance (None when nothing
    /// matched and no instance to insert was given).
    #[pyo3(signature = (ir, instance=None, txn=None))]
    fn upsert<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        instance: Option<&Bound<'py, PyAny>>,
        txn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        no_transactions(BACKEND, txn)?;
        let q = crate::memory::parse_upsert(ir)?;
        let plan = self.plan(py, &q.model)?;
        let row = instance.map(|obj| to_row(plan.get(), obj)).transpose()?;
        let inner = self.inner.clone();
        future_into_py_within(py, inner.request_timeout, async move {
            let stored = inner.store.upsert(&q, row).await?;
            Ok(stored_instance(inner.plans.clone(), q.model, stored))
        })
    }

    /// The IR plus the find command it becomes (no I/O).
    fn explain<'py>(&self, py: Python<'py>, ir: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let request = parse_request(ir)?;
        let mut json = request.to_json();
        if let Request::Select(q) = &request {
            let schema = self.inner.store.schema(&q.model).map_err(to_py)?;
            let plan = self.inner.store.find_plan(&schema, q).map_err(to_py)?;
            if let Some(obj) = json.as_object_mut() {
                obj.insert("mongodb".to_owned(), plan.to_json(&q.model));
            }
        }
        json_to_py(py, &json)
    }

    /// Open a server cursor over a select.
    #[pyo3(signature = (ir, batch_size, txn=None))]
    fn cursor<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        batch_size: u32,
        txn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        no_transactions(BACKEND, txn)?;
        let Request::Select(q) = parse_request(ir)? else {
            return Err(to_py(Error::query("a cursor needs a select IR")));
        };
        let inner = self.inner.clone();
        future_into_py_within(py, inner.request_timeout, async move {
            let cursor = inner.store.cursor(&q, batch_size).await?;
            Ok(MongoCursor {
                cursor: Arc::new(cursor),
                inner,
                query: q,
            })
        })
    }
}

impl MongoConnection {
    fn plan(&self, py: Python<'_>, model: &str) -> PyResult<Py<ModelPlan>> {
        self.inner
            .plans
            .read()
            .get(model)
            .map(|p| p.clone_ref(py))
            .ok_or_else(|| to_py(Error::schema(format!("Unknown model '{model}'"))))
    }
}

/// A MongoDB server cursor; `close()` (or exhaustion) kills it.
#[pyclass(frozen, module = "aura._core")]
pub struct MongoCursor {
    cursor: Arc<aura_mongo::MongoCursor>,
    inner: Arc<Inner>,
    query: Select,
}

#[pymethods]
impl MongoCursor {
    /// Up to `batch_size` hydrated rows; an empty list means exhausted.
    fn fetch<'py>(&self, py: Python<'py>, batch_size: usize) -> PyResult<Bound<'py, PyAny>> {
        let cursor = self.cursor.clone();
        let inner = self.inner.clone();
        let query = self.query.clone();
        future_into_py_within(py, inner.request_timeout, async move {
            let rows = cursor.fetch(batch_size).await?;
            let rows = rows
                .into_iter()
                .map(|row| aura_engine::ResultRow {
                    row,
                    scores: None,
                    includes: Vec::new(),
                })
                .collect();
            Ok(hydrated(inner.plans.clone(), query, rows))
        })
    }

    fn close(&self) {
        self.cursor.close();
    }

    #[getter]
    fn is_open(&self) -> bool {
        self.cursor.is_open()
    }
}
