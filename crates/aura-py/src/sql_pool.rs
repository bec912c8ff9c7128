//! `SqlPoolConnection`: the pooled SQL drivers (PostgreSQL in crate
//! aura-postgres, MySQL/MariaDB in aura-mysql) seen from Python, one class
//! for all of them. Every request becomes an `aura_sql::Op` run by the
//! shared `aura_sql::Database` on the driver's pool; results come back as
//! awaitables (crate::bridge) whose rows are hydrated through `Deferred`,
//! on the event-loop thread. A driver adds only its constructor function
//! (`postgres_connection`, ...) and an arm of `Connect`.

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use aura_core::error::Error;
use aura_core::ir::{Request, Select};
use aura_engine::ResultRow;
use aura_sql::{Chunks, Fetched, OnConflict, Op, Outcome, PoolSettings, RowFeed, SqlDatabase, Txn};
use parking_lot::{Mutex, RwLock};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::convert::timeout_from_seconds;
use crate::convert::{json_to_py, py_to_json, value_to_py};
use crate::errors::{to_py, IntoPyResult};
use crate::memory::parse_request;
use crate::plan::ModelPlan;
use crate::rows::{
    hydrate_results, ranked_sql_results, sql_results, to_row, Deferred, Hydrator, CHUNK_ROWS,
};

type Plans = Arc<RwLock<HashMap<String, Py<ModelPlan>>>>;

/// An executor answer of the wrong shape for its request (a bug).
fn unexpected(request: &str) -> Error {
    Error::new(
        aura_core::ErrorCode::AuraError,
        format!("internal error: {request} got an answer of another kind"),
    )
}

fn closed() -> Error {
    Error::new(aura_core::ErrorCode::ClientClosed, "Client is closed")
}

/// A live transaction (its own pooled connection).
#[pyclass(frozen, module = "aura._core")]
pub struct SqlPoolTxn {
    txn: Arc<Txn>,
}

/// How to open a driver's pool (options checked when built).
#[derive(Clone)]
enum Connect {
    #[cfg(feature = "postgres")]
    Postgres(aura_postgres::Options),
    #[cfg(feature = "mysql")]
    Mysql(aura_mysql::Options),
}

impl Connect {
    fn backend(&self) -> &'static str {
        match self {
            #[cfg(feature = "postgres")]
            Connect::Postgres(_) => "postgres",
            #[cfg(feature = "mysql")]
            Connect::Mysql(_) => "mysql",
        }
    }

    /// Where and as whom, for `repr` (never the password).
    fn describe(&self) -> String {
        let (host, port, user) = match self {
            #[cfg(feature = "postgres")]
            Connect::Postgres(o) => (&o.host, o.port, &o.user),
            #[cfg(feature = "mysql")]
            Connect::Mysql(o) => (&o.host, o.port, &o.user),
        };
        format!("address='{host}:{port}', user='{user}'")
    }

    async fn open(self) -> aura_core::Result<Arc<dyn SqlDatabase>> {
        Ok(match self {
            #[cfg(feature = "postgres")]
            Connect::Postgres(options) => aura_postgres::open(options).await?,
            #[cfg(feature = "mysql")]
            Connect::Mysql(options) => aura_mysql::open(options).await?,
        })
    }
}

#[pyclass(frozen, module = "aura._core")]
pub struct SqlPoolConnection {
    connect: Connect,
    backend: &'static str,
    address: String,
    db: Mutex<Option<Arc<dyn SqlDatabase>>>,
    plans: Plans,
}

/// How an `Outcome` becomes a Python value (on the event-loop thread).
enum Shape {
    Rows(Select),
    Cursor(Select),
    Stored(String),
    Plain,
}

/// Runs `op` on the pool (or in `txn`) and resolves to its Python value.
fn awaitable<'py>(
    py: Python<'py>,
    db: Arc<dyn SqlDatabase>,
    plans: Plans,
    op: Op,
    txn: Option<Arc<Txn>>,
    shape: Shape,
) -> PyResult<Bound<'py, PyAny>> {
    let run = async move { db.run(op, txn.as_deref()).await };
    resolve(py, run, move |py, outcome| {
        convert(py, &plans, outcome, shape)
    })
}

/// A plain select streamed in chunks: the runtime decodes chunk k+1 while
/// the event loop hydrates chunk k into the result list.
fn streamed<'py>(
    py: Python<'py>,
    db: Arc<dyn SqlDatabase>,
    plans: Plans,
    q: Select,
    txn: Option<Arc<Txn>>,
) -> PyResult<Bound<'py, PyAny>> {
    let list = Arc::new(PyList::empty(py).unbind());
    let q = Arc::new(q);
    crate::bridge::stepped_future_into_py(py, move |stepper| {
        let chunks = {
            let (list, plans, q) = (list.clone(), plans.clone(), q.clone());
            Chunks::new(CHUNK_ROWS, move |rows| {
                let (list, plans, q) = (list.clone(), plans.clone(), q.clone());
                stepper.step(move |py| extend_hydrated(py, &list, &plans, &q, rows));
            })
        };
        let op = Op::Stream(Select::clone(&q), chunks);
        async move {
            let Outcome::Rows(rest) = db.run(op, txn.as_deref()).await? else {
                return Err(unexpected("a streamed select").into());
            };
            Ok(Deferred::new(move |py| {
                extend_hydrated(py, &list, &plans, &q, rest)?;
                Ok(list.bind(py).clone().into_any())
            }))
        }
    })
}

/// A large insert whose rows are converted a chunk at a time on the loop
/// while the driver already writes the first ones (PostgreSQL streams them
/// into one `COPY`). The list is copied at the call; a chunk that fails to
/// convert fails the request and leaves the rest of the feed unsent, which
/// rolls the whole insert back.
fn fed_insert<'py>(
    py: Python<'py>,
    db: Arc<dyn SqlDatabase>,
    plan: Py<ModelPlan>,
    model: String,
    instances: &Bound<'py, PyList>,
    mode: OnConflict,
    txn: Option<Arc<Txn>>,
) -> PyResult<Bound<'py, PyAny>> {
    let total = instances.len();
    let first = crate::rows::to_rows(plan.get(), &instances.get_slice(0, CHUNK_ROWS))?;
    let later = instances.get_slice(CHUNK_ROWS, total).unbind();
    let (send, rest) = RowFeed::channel(total - CHUNK_ROWS);
    crate::bridge::stepped_future_into_py(py, move |stepper| {
        for start in (0..total - CHUNK_ROWS).step_by(CHUNK_ROWS) {
            let (later, plan, send) = (later.clone_ref(py), plan.clone_ref(py), send.clone());
            stepper.step(move |py| {
                let chunk = later.bind(py).get_slice(start, start + CHUNK_ROWS);
                let rows = crate::rows::to_rows(plan.get(), &chunk)?;
                // A closed feed means the insert already failed.
                let _ = send.send(Ok(rows));
                Ok(())
            });
        }
        let op = Op::Insert {
            model,
            rows: first,
            mode,
            rest: Some(rest),
        };
        async move {
            match db.run(op, txn.as_deref()).await? {
                Outcome::Count(written) => Ok(written),
                _ => Err(unexpected("an insert").into()),
            }
        }
    })
}

/// Appends `rows`, hydrated, to `list`.
fn extend_hydrated(
    py: Python<'_>,
    list: &Py<PyList>,
    plans: &Plans,
    q: &Select,
    rows: Vec<Fetched>,
) -> PyResult<()> {
    if !rows.is_empty() {
        let part = hydrate_results(py, &plans.read(), q, sql_results(rows).collect())?;
        list.bind(py)
            .call_method1(pyo3::intern!(py, "extend"), (part,))?;
    }
    Ok(())
}

/// The one bridge from a Rust future to an asyncio awaitable.
fn resolve<'py, T: Send + 'static>(
    py: Python<'py>,
    work: impl Future<Output = aura_core::Result<T>> + Send + 'static,
    build: impl for<'a> FnOnce(Python<'a>, T) -> PyResult<Bound<'a, PyAny>> + Send + 'static,
) -> PyResult<Bound<'py, PyAny>> {
    crate::bridge::future_into_py(py, async move {
        let value = work.await?;
        Ok(Deferred::new(move |py| build(py, value)))
    })
}

fn convert<'py>(
    py: Python<'py>,
    plans: &Plans,
    outcome: Outcome,
    shape: Shape,
) -> PyResult<Bound<'py, PyAny>> {
    let rows = |q: &Select, outcome| match outcome {
        Outcome::Rows(rows) => sql_results(rows).collect(),
        Outcome::Ranked(rows) => ranked_sql_results(rows, q.offset.unwrap_or(0)),
        _ => Vec::new(),
    };
    Ok(match (outcome, shape) {
        (outcome @ (Outcome::Rows(_) | Outcome::Ranked(_)), Shape::Rows(q)) => {
            let rows = rows(&q, outcome);
            hydrate_results(py, &plans.read(), &q, rows)?.into_any()
        }
        (outcome @ (Outcome::Rows(_) | Outcome::Ranked(_)), Shape::Cursor(q)) => {
            let rows = rows(&q, outcome);
            Bound::new(
                py,
                SqlPoolCursor {
                    state: Mutex::new(Some((q, rows.into()))),
                    plans: plans.clone(),
                },
            )?
            .into_any()
        }
        (Outcome::Json(value), _) => json_to_py(py, &value)?,
        (Outcome::Stored(Some(row)), Shape::Stored(model)) => {
            let plans = plans.read();
            Hydrator::new(py, &plans)?.simple(&model, &row)?
        }
        (Outcome::Count(n), _) => n.into_pyobject(py)?.into_any(),
        (Outcome::Flag(b), _) => pyo3::types::PyBool::new(py, b).to_owned().into_any(),
        (Outcome::Raw((names, rows)), _) => {
            let list = PyList::empty(py);
            for row in &rows {
                let dict = PyDict::new(py);
                for (name, value) in names.iter().zip(row) {
                    dict.set_item(name, value_to_py(py, value)?)?;
                }
                list.append(dict)?;
            }
            list.into_any()
        }
        _ => py.None().into_bound(py),
    })
}

impl SqlPoolConnection {
    fn new(connect: Connect) -> Self {
        SqlPoolConnection {
            backend: connect.backend(),
            address: connect.describe(),
            connect,
            db: Mutex::new(None),
            plans: Plans::default(),
        }
    }

    fn database(&self) -> PyResult<Arc<dyn SqlDatabase>> {
        self.db.lock().clone().ok_or_else(|| to_py(closed()))
    }

    fn plan(&self, py: Python<'_>, model: &str) -> PyResult<Py<ModelPlan>> {
        self.plans
            .read()
            .get(model)
            .map(|p| p.clone_ref(py))
            .ok_or_else(|| to_py(Error::schema(format!("Unknown model '{model}'"))))
    }

    fn schemas(&self, names: &[String]) -> PyResult<Vec<Arc<aura_core::ModelSchema>>> {
        let plans = self.plans.read();
        names
            .iter()
            .map(|n| {
                plans
                    .get(n)
                    .map(|p| p.get().schema.clone())
                    .ok_or_else(|| to_py(Error::schema(format!("Unknown model '{n}'"))))
            })
            .collect()
    }

    fn submit<'py>(
        &self,
        py: Python<'py>,
        op: Op,
        txn: Option<&SqlPoolTxn>,
        shape: Shape,
    ) -> PyResult<Bound<'py, PyAny>> {
        let db = self.database()?;
        let txn = txn.map(|t| t.txn.clone());
        awaitable(py, db, self.plans.clone(), op, txn, shape)
    }
}

#[pymethods]
impl SqlPoolConnection {
    fn __repr__(&self) -> String {
        format!(
            "SqlPoolConnection(backend='{}', {})",
            self.backend, self.address
        )
    }

    /// The backend name (`postgres`, `mysql`).
    #[getter]
    fn backend(&self) -> &'static str {
        self.backend
    }

    fn open<'py>(slf: Py<Self>, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let connect = slf.get().connect.clone();
        resolve(py, connect.open(), move |py, db| {
            let conn = slf.get();
            for plan in conn.plans.read().values() {
                db.register(plan.get().schema.clone());
            }
            *conn.db.lock() = Some(db);
            Ok(py.None().into_bound(py))
        })
    }

    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        if let Some(db) = self.db.lock().take() {
            db.close();
        }
        resolve(py, async { Ok(()) }, |py, ()| Ok(py.None().into_bound(py)))
    }

    fn ping<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let db = self.database()?;
        let op = Op::Raw {
            statement: "SELECT 1".to_owned(),
            params: serde_json::Value::Null,
        };
        resolve(py, async move { db.run(op, None).await }, |py, _| {
            Ok(pyo3::types::PyBool::new(py, true).to_owned().into_any())
        })
    }

    /// `(open, idle, max)` connections of the pool.
    fn pool_status(&self) -> PyResult<(usize, usize, usize)> {
        Ok(self.database()?.pool_status())
    }

    /// Registers a model (with the pool too, once open).
    fn register(&self, plan: Py<ModelPlan>) {
        let schema = plan.get().schema.clone();
        if let Some(db) = self.db.lock().as_ref() {
            db.register(schema.clone());
        }
        self.plans.write().insert(schema.name.clone(), plan);
    }

    fn create_schema<'py>(
        &self,
        py: Python<'py>,
        names: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let schemas = self.schemas(&names)?;
        self.submit(py, Op::CreateSchema(schemas), None, Shape::Plain)
    }

    /// `{model: live table description or None}` (`diff_schema`).
    fn describe<'py>(&self, py: Python<'py>, names: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        let schemas = self.schemas(&names)?;
        self.submit(py, Op::Describe(schemas), None, Shape::Plain)
    }

    fn drop_schema<'py>(&self, py: Python<'py>, names: Vec<String>) -> PyResult<Bound<'py, PyAny>> {
        let schemas = self.schemas(&names)?;
        self.submit(py, Op::DropSchema(schemas), None, Shape::Plain)
    }

    /// Runs a select/count/exists/update/delete IR.
    #[pyo3(signature = (ir, txn=None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        txn: Option<PyRef<'py, SqlPoolTxn>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let (op, shape) = match parse_request(ir)? {
            Request::Select(q) if Chunks::fit(&q) => {
                let txn = txn.map(|t| t.txn.clone());
                return streamed(py, self.database()?, self.plans.clone(), q, txn);
            }
            Request::Select(q) => (Op::Select(q.clone()), Shape::Rows(q)),
            Request::Count(q) => (Op::Count(q), Shape::Plain),
            Request::Exists(q) => (Op::Exists(q), Shape::Plain),
            Request::Update(q) => (Op::Update(q), Shape::Plain),
            Request::Delete(q) => (Op::Delete(q), Shape::Plain),
            Request::Aggregate(q) => (Op::Aggregate(q), Shape::Plain),
            other => return Err(to_py(other.not_served(self.backend))),
        };
        self.submit(py, op, txn.as_deref(), shape)
    }

    /// Runs a select and holds its rows for batch-wise hydration.
    #[pyo3(signature = (ir, txn=None))]
    fn cursor<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        txn: Option<PyRef<'py, SqlPoolTxn>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Request::Select(q) = parse_request(ir)? else {
            return Err(to_py(Error::query("a cursor needs a select IR")));
        };
        self.submit(py, Op::Select(q.clone()), txn.as_deref(), Shape::Cursor(q))
    }

    #[pyo3(signature = (model, instances, on_conflict=None, txn=None))]
    fn insert<'py>(
        &self,
        py: Python<'py>,
        model: String,
        instances: &Bound<'py, PyList>,
        on_conflict: Option<&str>,
        txn: Option<PyRef<'py, SqlPoolTxn>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let plan = self.plan(py, &model)?;
        let mode = OnConflict::parse(on_conflict).py_err()?;
        if instances.len() > CHUNK_ROWS {
            let txn = txn.map(|t| t.txn.clone());
            return fed_insert(py, self.database()?, plan, model, instances, mode, txn);
        }
        let rows = crate::rows::to_rows(plan.get(), instances)?;
        let op = Op::Insert {
            model,
            rows,
            mode,
            rest: None,
        };
        self.submit(py, op, txn.as_deref(), Shape::Plain)
    }

    /// Atomic upsert; resolves to the stored instance, or None when nothing
    /// matched and `instance` (the row to insert) is None.
    #[pyo3(signature = (ir, instance=None, txn=None))]
    fn upsert<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        instance: Option<&Bound<'py, PyAny>>,
        txn: Option<PyRef<'py, SqlPoolTxn>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let query = crate::memory::parse_upsert(ir)?;
        let plan = self.plan(py, &query.model)?;
        let row = instance.map(|obj| to_row(plan.get(), obj)).transpose()?;
        let model = query.model.clone();
        let op = Op::Upsert { query, row };
        self.submit(py, op, txn.as_deref(), Shape::Stored(model))
    }

    /// `raw()`: the dialect's placeholders (`$1..$n`, `?`); `params` a
    /// list, or a dict bound in its order. Rows as dicts keyed by column name.
    #[pyo3(signature = (statement, params=None, txn=None))]
    fn raw<'py>(
        &self,
        py: Python<'py>,
        statement: String,
        params: Option<&Bound<'py, PyAny>>,
        txn: Option<PyRef<'py, SqlPoolTxn>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = match params {
            Some(p) => py_to_json(p)?,
            None => serde_json::Value::Null,
        };
        let op = Op::Raw { statement, params };
        self.submit(py, op, txn.as_deref(), Shape::Plain)
    }

    /// The IR, the SQL it compiles to and the database's `EXPLAIN` lines.
    /// Synchronous by contract: it waits for the server without the GIL.
    fn explain<'py>(&self, py: Python<'py>, ir: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let request = parse_request(ir)?;
        let mut json = serde_json::to_value(&request)
            .map_err(|e| Error::query(format!("invalid query IR: {e}")))
            .py_err()?;
        if let (Request::Select(q), Some(obj)) = (&request, json.as_object_mut()) {
            let db = self.database()?;
            let op = Op::Explain(q.clone());
            let runtime = crate::bridge::runtime();
            let outcome = py.detach(|| runtime.block_on(db.run(op, None))).py_err()?;
            if let Outcome::Explained(sql, plan) = outcome {
                obj.insert("sql".to_owned(), sql.into());
                obj.insert("plan".to_owned(), plan.into());
            }
        }
        json_to_py(py, &json)
    }

    /// Begins a snapshot transaction on a connection of its own; resolves
    /// to a `SqlPoolTxn`.
    fn begin<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let db = self.database()?;
        resolve(py, async move { db.begin().await }, |py, txn| {
            Ok(Bound::new(py, SqlPoolTxn { txn: Arc::new(txn) })?.into_any())
        })
    }

    /// Commits (or rolls back) and returns the connection to the pool.
    fn end<'py>(
        &self,
        py: Python<'py>,
        txn: PyRef<'py, SqlPoolTxn>,
        commit: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let db = self.database()?;
        let txn = txn.txn.clone();
        resolve(py, async move { db.end(&txn, commit).await }, |py, ()| {
            Ok(py.None().into_bound(py))
        })
    }
}

type CursorState = (Select, VecDeque<ResultRow>);

/// Rows of a select, hydrated one batch per `fetch`.
#[pyclass(frozen, module = "aura._core")]
pub struct SqlPoolCursor {
    state: Mutex<Option<CursorState>>,
    plans: Plans,
}

#[pymethods]
impl SqlPoolCursor {
    fn fetch<'py>(&self, py: Python<'py>, batch_size: usize) -> PyResult<Bound<'py, PyAny>> {
        let mut guard = self.state.lock();
        let Some((q, rows)) = guard.as_mut() else {
            return Ok(PyList::empty(py).into_any());
        };
        let take = batch_size.min(rows.len());
        let batch: Vec<ResultRow> = rows.drain(..take).collect();
        let q = q.clone();
        drop(guard);
        Ok(hydrate_results(py, &self.plans.read(), &q, batch)?.into_any())
    }

    fn close(&self) {
        self.state.lock().take();
    }
}

/// `(min_size, max_size, acquire_timeout_s, max_lifetime_s,
/// idle_timeout_s)` and the timeouts, as every pooled driver takes them.
fn pool_settings(
    (min_size, max_size, acquire, lifetime, idle): (usize, usize, f64, f64, f64),
    connect_timeout_s: f64,
    request_timeout_s: f64,
) -> PoolSettings {
    PoolSettings {
        min_size: min_size.min(max_size),
        max_size: max_size.max(1),
        acquire_timeout: timeout_from_seconds(acquire),
        connect_timeout: timeout_from_seconds(connect_timeout_s),
        request_timeout: timeout_from_seconds(request_timeout_s),
        max_lifetime: timeout_from_seconds(lifetime),
        idle_timeout: timeout_from_seconds(idle),
    }
}

/// A PostgreSQL connection (no I/O until `open`): `ssl` is `(sslmode, CA
/// file)`, `pool` is `(min_size, max_size, acquire_timeout_s,
/// max_lifetime_s, idle_timeout_s)`.
#[cfg(feature = "postgres")]
#[pyfunction]
#[pyo3(signature = (host, port, user, *, password=None, dbname=None, application_name=None,
        server_options=None, ssl=("prefer".to_owned(), None), pool=(1, 16, 5.0, 1800.0, 300.0),
        connect_timeout_s=10.0, request_timeout_s=30.0))]
#[allow(clippy::too_many_arguments)]
pub fn postgres_connection(
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    dbname: Option<String>,
    application_name: Option<String>,
    server_options: Option<String>,
    ssl: (String, Option<PathBuf>),
    pool: (usize, usize, f64, f64, f64),
    connect_timeout_s: f64,
    request_timeout_s: f64,
) -> PyResult<SqlPoolConnection> {
    let options = aura_postgres::Options {
        host,
        port,
        user,
        password,
        dbname,
        application_name,
        server_options,
        ssl_mode: aura_postgres::SslMode::parse(&ssl.0).py_err()?,
        ca_file: ssl.1,
        pool: pool_settings(pool, connect_timeout_s, request_timeout_s),
    };
    // TLS files are read now, so a bad sslrootcert fails at connect time.
    options.tls().py_err()?;
    Ok(SqlPoolConnection::new(Connect::Postgres(options)))
}

/// A MySQL/MariaDB connection (no I/O until `open`): `ssl` is `(ssl-mode,
/// CA file)`, `pool` as for `postgres_connection`; `charset` must be
/// utf8mb4 (the codec's text encoding) when given.
#[cfg(feature = "mysql")]
#[pyfunction]
#[pyo3(signature = (host, port, user, *, password=None, dbname=None, charset=None,
        ssl=("PREFERRED".to_owned(), None), pool=(1, 16, 5.0, 1800.0, 300.0),
        connect_timeout_s=10.0, request_timeout_s=30.0))]
#[allow(clippy::too_many_arguments)]
pub fn mysql_connection(
    host: String,
    port: u16,
    user: String,
    password: Option<String>,
    dbname: Option<String>,
    charset: Option<String>,
    ssl: (String, Option<PathBuf>),
    pool: (usize, usize, f64, f64, f64),
    connect_timeout_s: f64,
    request_timeout_s: f64,
) -> PyResult<SqlPoolConnection> {
    if let Some(charset) = &charset {
        aura_mysql::check_charset(charset).py_err()?;
    }
    let options = aura_mysql::Options {
        host,
        port,
        user,
        password,
        dbname,
        ssl_mode: aura_mysql::SslMode::parse(&ssl.0).py_err()?,
        ca_file: ssl.1,
        pool: pool_settings(pool, connect_timeout_s, request_timeout_s),
    };
    // TLS files are read now, so a bad ssl-ca fails at connect time.
    if options.wants_tls() {
        options.ssl().py_err()?;
    }
    Ok(SqlPoolConnection::new(Connect::Mysql(options)))
}
