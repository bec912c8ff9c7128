//! `SqliteConnection`: the SQLite driver (crate aura-sqlite) seen from
//! Python. Each async method takes an asyncio future and its loop, queues
//! a job on the driver's threads and returns at once; the job's result
//! comes back through the event-loop bridge (`bridge::Pending`), and rows are hydrated
//! there, on the event-loop thread, by the one `Hydrator`.

use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use aura_core::error::Error;
use aura_core::ir::{Request, Select};
use aura_core::{ModelSchema, Row};
use aura_engine::ResultRow;
use aura_sql::{Dialect, OnConflict};

const SQLITE: Dialect = Dialect::Sqlite;
use aura_sqlite::{Database, Fetched, Job, Location, Options, RawRows, Session, Txn, TxnJob};
use parking_lot::{Mutex, RwLock};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};

use crate::bridge::Pending;
use crate::convert::{json_to_py, py_to_json, value_to_py};
use crate::errors::{to_py, IntoPyResult};
use crate::memory::parse_request;
use crate::plan::ModelPlan;
use crate::rows::{hydrate_rows, ranked_sql_results, sql_results, to_row, Hydrator};

type Plans = Arc<RwLock<HashMap<String, Py<ModelPlan>>>>;

/// What a finished job hands back to the event loop.
enum Outcome {
    Opened(Database),
    /// A cursor's rows, scores included for ranked selects.
    Cursor {
        model: String,
        mask: Option<Vec<bool>>,
        rows: Vec<ResultRow>,
    },
    /// Rows already hydrated chunk by chunk into `list`, plus the rest.
    Streamed {
        list: Py<PyList>,
        model: String,
        mask: Option<Vec<bool>>,
        rest: Vec<Fetched>,
    },
    /// A `search_text` select: rows with their scores; `offset` makes the
    /// 1-based ranks global (API.md §5.1).
    Ranked {
        model: String,
        mask: Option<Vec<bool>>,
        rows: Vec<(Fetched, f64)>,
        offset: u64,
    },
    /// A JSON-shaped answer (aggregate results, table descriptions).
    Json(serde_json::Value),
    Count(u64),
    Flag(bool),
    Stored {
        model: String,
        row: Option<Row>,
    },
    Raw(RawRows),
    Txn(Txn),
    Unit,
}

/// An asyncio future completed from a driver thread (through the bridge:
/// the thread never takes the GIL).
struct Completion {
    pending: Pending,
    plans: Plans,
}

impl Completion {
    /// `future` belongs to `event_loop` (both made by the Python caller).
    fn new(future: Py<PyAny>, event_loop: Py<PyAny>, plans: Plans) -> PyResult<Self> {
        Python::attach(|py| {
            Ok(Completion {
                pending: Pending::new(py, future, event_loop.bind(py))?,
                plans,
            })
        })
    }

    fn send(self, outcome: aura_core::Result<Outcome>) {
        let plans = self.plans;
        self.pending
            .settle(move |py| outcome.map_err(to_py).and_then(|o| convert(py, o, &plans)));
    }
}

fn hydrate<'py>(
    py: Python<'py>,
    plans: &Plans,
    model: &str,
    mask: Option<&[bool]>,
    rows: Vec<Fetched>,
) -> PyResult<Bound<'py, PyAny>> {
    hydrate_results(py, plans, model, mask, sql_results(rows))
}

fn hydrate_results<'py>(
    py: Python<'py>,
    plans: &Plans,
    model: &str,
    mask: Option<&[bool]>,
    rows: impl IntoIterator<Item = ResultRow>,
) -> PyResult<Bound<'py, PyAny>> {
    let plans = plans.read();
    let hydrator = Hydrator::new(py, &plans)?;
    let plan = hydrator.plan(model)?.get();
    Ok(hydrate_rows(&hydrator, plan, mask, rows)?.into_any())
}

fn convert<'py>(py: Python<'py>, outcome: Outcome, plans: &Plans) -> PyResult<Bound<'py, PyAny>> {
    Ok(match outcome {
        Outcome::Opened(db) => Bound::new(
            py,
            SqliteConnection {
                db: Mutex::new(Some(db)),
                plans: Plans::default(),
            },
        )?
        .into_any(),
        Outcome::Cursor { model, mask, rows } => Bound::new(
            py,
            SqliteCursor {
                state: Mutex::new(Some(CursorState {
                    model,
                    mask,
                    rows: rows.into(),
                })),
            },
        )?
        .into_any(),
        Outcome::Streamed {
            list,
            model,
            mask,
            rest,
        } => {
            let list = list.into_bound(py);
            if !rest.is_empty() {
                let tail = hydrate(py, plans, &model, mask.as_deref(), rest)?;
                list.call_method1(pyo3::intern!(py, "extend"), (tail,))?;
            }
            list.into_any()
        }
        Outcome::Ranked {
            model,
            mask,
            rows,
            offset,
        } => {
            let rows = ranked_sql_results(rows, offset);
            hydrate_results(py, plans, &model, mask.as_deref(), rows)?
        }
        Outcome::Json(value) => json_to_py(py, &value)?,
        Outcome::Count(n) => n.into_pyobject(py)?.into_any(),
        Outcome::Flag(b) => pyo3::types::PyBool::new(py, b).to_owned().into_any(),
        Outcome::Stored { model, row } => match row {
            Some(row) => {
                let plans = plans.read();
                Hydrator::new(py, &plans)?.simple(&model, &row)?
            }
            None => py.None().into_bound(py),
        },
        Outcome::Raw((names, rows)) => {
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
        Outcome::Txn(txn) => Bound::new(
            py,
            SqliteTxn {
                txn: Mutex::new(Some(txn)),
            },
        )?
        .into_any(),
        Outcome::Unit => py.None().into_bound(py),
    })
}

/// A live SQLite transaction (a leased connection).
#[pyclass(frozen, module = "aura._core")]
pub struct SqliteTxn {
    txn: Mutex<Option<Txn>>,
}

fn txn_gone() -> Error {
    Error::transaction("The SQLite transaction is no longer active")
}

#[pyclass(frozen, module = "aura._core")]
pub struct SqliteConnection {
    db: Mutex<Option<Database>>,
    plans: Plans,
}

/// Work for one job, run on a driver thread with the connection.
type Work = Box<dyn FnOnce(&mut Session) -> aura_core::Result<Outcome> + Send>;

impl SqliteConnection {
    fn completion(&self, future: Py<PyAny>, event_loop: Py<PyAny>) -> PyResult<Completion> {
        Completion::new(future, event_loop, self.plans.clone())
    }

    fn database(&self) -> aura_core::Result<Database> {
        self.db
            .lock()
            .clone()
            .ok_or_else(|| Error::new(aura_core::ErrorCode::ClientClosed, "Client is closed"))
    }

    /// Queues `work` on the transaction's connection, or on the pool.
    fn dispatch(&self, txn: Option<&SqliteTxn>, done: Completion, work: Work) {
        let job: Job = Box::new(move |session| done.send(session.and_then(work)));
        match txn {
            Some(txn) => match txn.txn.lock().as_ref() {
                Some(live) => {
                    if let Err(TxnJob::Work(job)) = live.send(TxnJob::Work(job)) {
                        job(Err(txn_gone()));
                    }
                }
                None => job(Err(txn_gone())),
            },
            None => match self.database() {
                Ok(db) => db.submit(job),
                Err(err) => job(Err(err)),
            },
        }
    }

    fn schemas(&self, names: &[String]) -> PyResult<Vec<Arc<ModelSchema>>> {
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

    fn schema_of(&self, model: &str) -> Option<Arc<ModelSchema>> {
        self.plans.read().get(model).map(|p| p.get().schema.clone())
    }

    fn plan(&self, py: Python<'_>, model: &str) -> PyResult<Py<ModelPlan>> {
        self.plans
            .read()
            .get(model)
            .map(|p| p.clone_ref(py))
            .ok_or_else(|| to_py(Error::schema(format!("Unknown model '{model}'"))))
    }
}

/// A select streamed in chunks: the driver thread decodes chunk k+1 while
/// the event loop hydrates chunk k.
fn streamed_select_work(
    py: Python<'_>,
    q: Select,
    schema: Option<Arc<ModelSchema>>,
    done: &Completion,
) -> Work {
    let list = PyList::empty(py).unbind();
    let appended = list.clone_ref(py);
    let stepper = done.pending.stepper();
    let plans = done.plans.clone();
    Box::new(move |s| {
        let mask = match &schema {
            Some(schema) => aura_sql::projection_mask(schema, &q.projection)?,
            None => None,
        };
        let appended = Arc::new(appended);
        let mut sink = |rows: Vec<Fetched>| {
            let (list, plans, model, mask) = (
                appended.clone(),
                plans.clone(),
                q.model.clone(),
                mask.clone(),
            );
            stepper.step(move |py| {
                let instances = hydrate(py, &plans, &model, mask.as_deref(), rows)?;
                list.bind(py)
                    .call_method1(pyo3::intern!(py, "extend"), (instances,))?;
                Ok(())
            });
        };
        let rest = aura_sqlite::select_chunked(s, &q, crate::rows::CHUNK_ROWS, &mut sink)?;
        Ok(Outcome::Streamed {
            list,
            model: q.model,
            mask,
            rest,
        })
    })
}

fn ranked_work(q: Select, schema: Option<Arc<ModelSchema>>) -> Work {
    Box::new(move |s| {
        let mask = match &schema {
            Some(schema) => aura_sql::projection_mask(schema, &q.projection)?,
            None => None,
        };
        let rows = aura_sqlite::select_ranked(s, &q)?;
        Ok(Outcome::Ranked {
            model: q.model,
            mask,
            rows,
            offset: q.offset.unwrap_or(0),
        })
    })
}

/// The live shape of `schemas`' tables as the dicts `diff_schema` reads:
/// `None` for a missing table, else columns (with whether the type is the
/// one the model's DDL gives), indexes and full-text columns.
fn describe_work(schemas: Vec<Arc<ModelSchema>>) -> Work {
    Box::new(move |s| {
        let names: Vec<String> = schemas.iter().map(|m| m.name.clone()).collect();
        let live = aura_sqlite::describe(s, &names)?;
        let mut catalog = s.catalog();
        for schema in &schemas {
            catalog.insert(schema.name.clone(), schema.clone());
        }
        let mut out = serde_json::Map::new();
        for (schema, table) in schemas.iter().zip(live) {
            let described = table.map_or(serde_json::Value::Null, |t| {
                t.describe(SQLITE, schema, &catalog)
            });
            out.insert(schema.name.clone(), described);
        }
        Ok(Outcome::Json(serde_json::Value::Object(out)))
    })
}

/// The rows of a cursor (`stream()`): a ranked select keeps its scores.
fn cursor_work(q: Select, schema: Option<Arc<ModelSchema>>) -> Work {
    Box::new(move |s| {
        let mask = match &schema {
            Some(schema) => aura_sql::projection_mask(schema, &q.projection)?,
            None => None,
        };
        let rows = if q.text_search.is_some() {
            ranked_sql_results(aura_sqlite::select_ranked(s, &q)?, q.offset.unwrap_or(0))
        } else {
            sql_results(aura_sqlite::select(s, &q)?).collect()
        };
        Ok(Outcome::Cursor {
            model: q.model,
            mask,
            rows,
        })
    })
}

#[pymethods]
impl SqliteConnection {
    /// Opens a pool (on a thread of its own: opening a file may block);
    /// the future resolves to the connection.
    #[staticmethod]
    #[pyo3(signature = (path, read_only, busy_timeout_s, pool, future, event_loop))]
    fn open(
        path: Option<PathBuf>,
        read_only: bool,
        busy_timeout_s: f64,
        pool: (usize, usize, f64, f64, f64),
        future: Py<PyAny>,
        event_loop: Py<PyAny>,
    ) -> PyResult<()> {
        let seconds = |s: f64| Duration::from_secs_f64(s.max(0.0));
        let (min_size, max_size, acquire, lifetime, idle) = pool;
        let options = Options {
            location: path.map_or(Location::Private, Location::File),
            read_only,
            busy_timeout: seconds(busy_timeout_s),
            min_size,
            max_size: max_size.max(1),
            acquire_timeout: seconds(acquire),
            max_lifetime: seconds(lifetime),
            idle_timeout: seconds(idle),
        };
        let done = Completion::new(future, event_loop, Plans::default())?;
        std::thread::Builder::new()
            .name("aura-sqlite-open".into())
            .spawn(move || done.send(Database::open(options).map(Outcome::Opened)))
            .map(drop)
            .map_err(|failure| {
                to_py(Error::new(
                    aura_core::ErrorCode::ConnectionError,
                    format!("cannot start a SQLite thread: {failure}"),
                ))
            })
    }

    /// The database file (a private temporary file for `:memory:`).
    #[getter]
    fn path(&self) -> PyResult<PathBuf> {
        Ok(self.database().py_err()?.path().to_owned())
    }

    fn register(&self, plan: Py<ModelPlan>) {
        let name = plan.get().schema.name.clone();
        self.plans.write().insert(name, plan);
    }

    fn create_schema(
        &self,
        names: Vec<String>,
        future: Py<PyAny>,
        event_loop: Py<PyAny>,
    ) -> PyResult<()> {
        let schemas = self.schemas(&names)?;
        let done = self.completion(future, event_loop)?;
        self.dispatch(
            None,
            done,
            Box::new(move |s| aura_sqlite::create_schema(s, schemas).map(|()| Outcome::Unit)),
        );
        Ok(())
    }

    /// The live shape of the named models' tables (see `describe_work`).
    fn describe(
        &self,
        names: Vec<String>,
        future: Py<PyAny>,
        event_loop: Py<PyAny>,
    ) -> PyResult<()> {
        let schemas = self.schemas(&names)?;
        let done = self.completion(future, event_loop)?;
        self.dispatch(None, done, describe_work(schemas));
        Ok(())
    }

    fn drop_schema(
        &self,
        names: Vec<String>,
        future: Py<PyAny>,
        event_loop: Py<PyAny>,
    ) -> PyResult<()> {
        let done = self.completion(future, event_loop)?;
        self.dispatch(
            None,
            done,
            Box::new(move |s| aura_sqlite::drop_schema(s, names).map(|()| Outcome::Unit)),
        );
        Ok(())
    }

    /// Runs a read or write IR (see the Executor protocol in ARCHITECTURE.md).
    #[pyo3(signature = (ir, txn, future, event_loop))]
    fn execute(
        &self,
        py: Python<'_>,
        ir: &Bound<'_, PyAny>,
        txn: Option<PyRef<'_, SqliteTxn>>,
        future: Py<PyAny>,
        event_loop: Py<PyAny>,
    ) -> PyResult<()> {
        let done = self.completion(future, event_loop)?;
        let work: Work = match parse_request(ir)? {
            Request::Select(q) if q.text_search.is_some() => {
                let schema = self.schema_of(&q.model);
                ranked_work(q, schema)
            }
            Request::Select(q) => {
                let schema = self.schema_of(&q.model);
                streamed_select_work(py, q, schema, &done)
            }
            Request::Aggregate(q) => {
                Box::new(move |s| aura_sqlite::aggregate(s, &q).map(Outcome::Json))
            }
            Request::Count(q) => Box::new(move |s| aura_sqlite::count(s, &q).map(Outcome::Count)),
            Request::Exists(q) => Box::new(move |s| aura_sqlite::exists(s, &q).map(Outcome::Flag)),
            Request::Update(q) => Box::new(move |s| aura_sqlite::update(s, &q).map(Outcome::Count)),
            Request::Delete(q) => Box::new(move |s| aura_sqlite::delete(s, &q).map(Outcome::Count)),
            other => return Err(to_py(other.not_served("sqlite"))),
        };
        self.dispatch(txn.as_deref(), done, work);
        Ok(())
    }

    /// Runs a select and holds its rows for batch-wise hydration.
    #[pyo3(signature = (ir, txn, future, event_loop))]
    fn cursor(
        &self,
        ir: &Bound<'_, PyAny>,
        txn: Option<PyRef<'_, SqliteTxn>>,
        future: Py<PyAny>,
        event_loop: Py<PyAny>,
    ) -> PyResult<()> {
        let Request::Select(q) = parse_request(ir)? else {
            return Err(to_py(Error::query("a cursor needs a select IR")));
        };
        let schema = self
            .plans
            .read()
            .get(&q.model)
            .map(|p| p.get().schema.clone());
        let done = self.completion(future, event_loop)?;
        self.dispatch(txn.as_deref(), done, cursor_work(q, schema));
        Ok(())
    }

    #[pyo3(signature = (model, instances, on_conflict, txn, future, event_loop))]
    #[allow(clippy::too_many_arguments)]
    fn insert(
        &self,
        py: Python<'_>,
        model: String,
        instances: &Bound<'_, PyList>,
        on_conflict: Option<&str>,
        txn: Option<PyRef<'_, SqliteTxn>>,
        future: Py<PyAny>,
        event_loop: Py<PyAny>,
    ) -> PyResult<()> {
        let plan = self.plan(py, &model)?;
        let mode = OnConflict::parse(on_conflict).py_err()?;
        let rows = crate::rows::to_rows(plan.get(), instances)?;
        let done = self.completion(future, event_loop)?;
        self.dispatch(
            txn.as_deref(),
            done,
            Box::new(move |s| aura_sqlite::insert(s, &model, rows, mode).map(Outcome::Count)),
        );
        Ok(())
    }

    /// Atomic upsert; resolves to the stored instance, or None when nothing
    /// matched and `instance` (the row to insert) is None.
    #[pyo3(signature = (ir, instance, txn, future, event_loop))]
    fn upsert(
        &self,
        py: Python<'_>,
        ir: &Bound<'_, PyAny>,
        instance: Option<&Bound<'_, PyAny>>,
        txn: Option<PyRef<'_, SqliteTxn>>,
        future: Py<PyAny>,
        event_loop: Py<PyAny>,
    ) -> PyResult<()> {
        let q = crate::memory::parse_upsert(ir)?;
        let plan = self.plan(py, &q.model)?;
        let row = instance.map(|obj| to_row(plan.get(), obj)).transpose()?;
        let done = self.completion(future, event_loop)?;
        self.dispatch(
            txn.as_deref(),
            done,
            Box::new(move |s| {
                let row = aura_sqlite::upsert(s, &q, row)?;
                Ok(Outcome::Stored {
                    model: q.model,
                    row,
                })
            }),
        );
        Ok(())
    }

    /// `raw()`: `:name` parameters from a dict (or `?` from a list),
    /// always bound; rows as dicts keyed by column name.
    #[pyo3(signature = (statement, params, txn, future, event_loop))]
    fn raw(
        &self,
        statement: String,
        params: Option<&Bound<'_, PyAny>>,
        txn: Option<PyRef<'_, SqliteTxn>>,
        future: Py<PyAny>,
        event_loop: Py<PyAny>,
    ) -> PyResult<()> {
        let params = match params {
            Some(p) => py_to_json(p)?,
            None => serde_json::Value::Null,
        };
        let done = self.completion(future, event_loop)?;
        self.dispatch(
            txn.as_deref(),
            done,
            Box::new(move |s| aura_sqlite::raw(s, &statement, &params).map(Outcome::Raw)),
        );
        Ok(())
    }

    /// The IR, the SQL it compiles to and SQLite's plan (synchronous: a
    /// schema-only statement on a connection of its own).
    fn explain<'py>(&self, py: Python<'py>, ir: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let request = parse_request(ir)?;
        let mut json = serde_json::to_value(&request)
            .map_err(|e| Error::query(format!("invalid query IR: {e}")))
            .py_err()?;
        if let (Request::Select(q), Some(obj)) = (&request, json.as_object_mut()) {
            let db = self.database().py_err()?;
            let (sql, plan) = py.detach(|| db.explain(q)).py_err()?;
            obj.insert("sql".to_owned(), sql.into());
            obj.insert("plan".to_owned(), plan.into());
        }
        json_to_py(py, &json)
    }

    /// Begins a transaction on a leased connection; resolves to `SqliteTxn`.
    fn begin(&self, future: Py<PyAny>, event_loop: Py<PyAny>) -> PyResult<()> {
        let done = self.completion(future, event_loop)?;
        match self.database() {
            Ok(db) => db.begin(Box::new(move |txn| done.send(txn.map(Outcome::Txn)))),
            Err(err) => done.send(Err(err)),
        }
        Ok(())
    }

    /// Commits (or rolls back) and returns the connection to the pool.
    fn end(
        &self,
        txn: &SqliteTxn,
        commit: bool,
        future: Py<PyAny>,
        event_loop: Py<PyAny>,
    ) -> PyResult<()> {
        let done = self.completion(future, event_loop)?;
        let Some(live) = txn.txn.lock().take() else {
            done.send(Err(txn_gone()));
            return Ok(());
        };
        let end = TxnJob::End {
            commit,
            done: Box::new(move |result| done.send(result.map(|()| Outcome::Unit))),
        };
        if let Err(TxnJob::End { done, .. }) = live.send(end) {
            done(Err(txn_gone()));
        }
        Ok(())
    }

    fn close(&self) {
        if let Some(db) = self.db.lock().take() {
            db.close();
        }
    }
}

struct CursorState {
    model: String,
    mask: Option<Vec<bool>>,
    rows: VecDeque<ResultRow>,
}

/// Rows of a select, hydrated one batch per `fetch`.
#[pyclass(frozen, module = "aura._core")]
pub struct SqliteCursor {
    state: Mutex<Option<CursorState>>,
}

#[pymethods]
impl SqliteCursor {
    fn fetch<'py>(
        &self,
        py: Python<'py>,
        conn: &SqliteConnection,
        batch_size: usize,
    ) -> PyResult<Bound<'py, PyAny>> {
        let mut guard = self.state.lock();
        let Some(state) = guard.as_mut() else {
            return Ok(PyList::empty(py).into_any());
        };
        let take = batch_size.min(state.rows.len());
        let batch: Vec<ResultRow> = state.rows.drain(..take).collect();
        let (model, mask) = (state.model.clone(), state.mask.clone());
        drop(guard);
        hydrate_results(py, &conn.plans, &model, mask.as_deref(), batch)
    }

    fn close(&self) {
        self.state.lock().take();
    }

    #[getter]
    fn is_open(&self) -> bool {
        self.state.lock().is_some()
    }
}
