//! The Redis backend (`redis://`, `redis+asyncio://`): `aura_redis` behind
//! awaitables (bridge.rs, tokio), hydrated by the shared
//! `rows::hydrate_results`.

use std::sync::Arc;

use aura_core::error::Error;
use aura_core::ir::Request;
use aura_core::schema::ModelSchema;
use aura_redis::store::RedisOptions;
use aura_redis::RedisStore;
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::bridge::future_into_py;
use crate::convert::timeout_from_seconds;
use crate::errors::{no_transactions, to_py};
use crate::memory::{on_conflict_mode, parse_request};
use crate::plan::ModelPlan;
use crate::rows::{hydrate_results, to_row, Deferred};
use crate::rows::{stored_instance, SharedPlans};

const BACKEND: &str = aura_redis::BACKEND;

struct Inner {
    store: RedisStore,
    plans: SharedPlans,
}

/// One client's Redis connection (multiplexed).
#[pyclass(frozen, module = "aura._core")]
pub struct RedisConnection {
    inner: Arc<Inner>,
}

impl RedisConnection {
    fn plan(&self, py: Python<'_>, model: &str) -> PyResult<Py<ModelPlan>> {
        self.inner
            .plans
            .read()
            .get(model)
            .map(|p| p.clone_ref(py))
            .ok_or_else(|| to_py(Error::schema(format!("Unknown model '{model}'"))))
    }

    fn schema(&self, py: Python<'_>, model: &str) -> PyResult<Arc<ModelSchema>> {
        Ok(self.plan(py, model)?.get().schema.clone())
    }
}

#[pymethods]
impl RedisConnection {
    /// Build (no I/O); `prefix` is prepended to every key.
    #[new]
    #[pyo3(signature = (host, port, db, *, username=None, password=None, prefix=String::new(),
        connect_timeout_s=10.0, request_timeout_s=30.0))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        host: String,
        port: u16,
        db: i64,
        username: Option<String>,
        password: Option<String>,
        prefix: String,
        connect_timeout_s: f64,
        request_timeout_s: f64,
    ) -> Self {
        RedisConnection {
            inner: Arc::new(Inner {
                store: RedisStore::new(RedisOptions {
                    host,
                    port,
                    db,
                    username,
                    password,
                    prefix,
                    connect_timeout: timeout_from_seconds(connect_timeout_s),
                    response_timeout: timeout_from_seconds(request_timeout_s),
                }),
                plans: SharedPlans::default(),
            }),
        }
    }

    fn __repr__(&self) -> String {
        format!("RedisConnection(address='{}')", self.inner.store.address())
    }

    #[getter]
    fn prefix(&self) -> String {
        self.inner.store.prefix().to_owned()
    }

    /// Register a model: it needs a primary key that can form a key.
    fn register(&self, plan: Py<ModelPlan>) -> PyResult<()> {
        let schema = plan.get().schema.clone();
        aura_redis::keys::check_model(&schema).map_err(to_py)?;
        self.inner.plans.write().insert(schema.name.clone(), plan);
        Ok(())
    }

    fn open<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            inner.store.connection().await?;
            Ok(())
        })
    }

    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            inner.store.close().await;
            Ok(())
        })
    }

    fn ping<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move { Ok(inner.store.ping().await?) })
    }

    /// Delete every row of each model.
    fn drop_models<'py>(
        &self,
        py: Python<'py>,
        models: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let schemas = models
            .iter()
            .map(|m| self.schema(py, m))
            .collect::<PyResult<Vec<_>>>()?;
        let inner = self.inner.clone();
        future_into_py(py, async move {
            let mut n = 0;
            for schema in schemas {
                n += inner.store.drop_model(&schema).await?;
            }
            Ok(n)
        })
    }

    /// Run a select/count/exists/update/delete IR by primary key.
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
        let schema = self.schema(py, request.model().unwrap_or_default())?;
        match request {
            Request::Select(q) => future_into_py(py, async move {
                let rows = inner.store.select(&schema, &q).await?;
                let rows = rows
                    .into_iter()
                    .map(|row| aura_engine::ResultRow {
                        row,
                        scores: None,
                        includes: Vec::new(),
                    })
                    .collect();
                Ok(Deferred::new(move |py| {
                    Ok(hydrate_results(py, &inner.plans.read(), &q, rows)?.into_any())
                }))
            }),
            Request::Count(q) => {
                future_into_py(py, async move { Ok(inner.store.count(&schema, &q).await?) })
            }
            Request::Exists(q) => {
                future_into_py(
                    py,
                    async move { Ok(inner.store.count(&schema, &q).await? > 0) },
                )
            }
            Request::Update(q) => {
                future_into_py(
                    py,
                    async move { Ok(inner.store.update(&schema, &q).await?) },
                )
            }
            Request::Delete(q) => {
                future_into_py(
                    py,
                    async move { Ok(inner.store.delete(&schema, &q).await?) },
                )
            }
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
        let plan = self.plan(py, &model)?;
        let rows = crate::rows::to_rows(plan.get(), instances)?;
        let schema = plan.get().schema.clone();
        let inner = self.inner.clone();
        future_into_py(py, async move {
            Ok(inner.store.insert(&schema, &rows, mode).await?)
        })
    }

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
        let schema = plan.get().schema.clone();
        let inner = self.inner.clone();
        future_into_py(py, async move {
            let stored = inner.store.upsert(&schema, &q, row).await?;
            Ok(stored_instance(inner.plans.clone(), q.model, stored))
        })
    }
}
