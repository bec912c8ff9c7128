//! The AuraDB native backend (`auradb://`, `auradbs://`): the aura-wire
//! client behind awaitables (bridge.rs, tokio). The IR becomes
//! AWP payloads in `aura_wire::awp` (the one translation); result rows are
//! hydrated by the same `Hydrator` as the memory backend.
//!
//! Which connection a request uses (and which requests are re-sent) is
//! `remote::Router`'s policy, shared with the bundled protocol.

use std::sync::Arc;

use aura_core::error::Error;
use aura_core::ir::{CompareOp, Expr, Filtered, Request, Select};
use aura_core::schema::{FieldKind, ModelSchema, Row};
use aura_engine::Included;
use aura_wire::awp;
use aura_wire::client::{Connection, Reply};
use aura_wire::frame::Opcode;
use aura_wire::tls::ClientTls;
use aura_wire::typed;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::PyList;
use serde_json::{json, Map, Value as Json};

use crate::bridge::{future_into_py, observed_future_into_py};
use crate::convert::json_to_py;
use crate::errors::to_py;
use crate::memory::parse_request;
use crate::metrics::{Metrics, Observer};
use crate::plan::ModelPlan;
use crate::remote::{client_options, CursorState, PoolPolicy, Router};
use crate::rows::to_row;
use crate::rows::{hydrated, hydrated_first, Deferred};

type Inner = Router<Connection>;

fn err(e: Error) -> PyErr {
    to_py(e)
}

impl Router<Connection> {
    /// A request on the connection for `txn`.
    async fn send(&self, op: Opcode, txn: u64, body: &Json) -> Result<Reply, Error> {
        self.call(txn, |conn| async move { conn.request(op, txn, body).await })
            .await
    }

    /// An idempotent request (re-sent once on a lost connection).
    async fn send_read(&self, op: Opcode, txn: u64, body: &Json) -> Result<Reply, Error> {
        self.read(txn, |conn| async move { conn.request(op, txn, body).await })
            .await
    }

    fn find_payload(&self, q: &Select, schema: &ModelSchema) -> Result<Json, Error> {
        let mut find = awp::find_query(q, schema, &*self.advertised())?;
        let mut out = Map::new();
        out.insert("query".into(), json!("find"));
        out.append(&mut find);
        Ok(Json::Object(out))
    }

    /// `find_payload` as the bytes sent, written directly when the select
    /// is a plain lookup.
    fn find_bytes(&self, q: &Select, schema: &ModelSchema) -> Result<Vec<u8>, Error> {
        if let Some(bytes) = typed::find_bytes(q, schema) {
            return Ok(bytes);
        }
        let payload = self.find_payload(q, schema)?;
        serde_json::to_vec(&payload).map_err(|e| Error::serialization(e.to_string()))
    }
}

/// The rows of a result page, taken out of it.
fn wire_rows(page: &mut Json) -> Result<Vec<Json>, Error> {
    page.get_mut("rows")
        .and_then(Json::as_array_mut)
        .map(std::mem::take)
        .ok_or_else(|| aura_wire::client::protocol_error("result page without rows"))
}

/// Decode wire rows into engine rows (+ scores and includes) of `schema`.
fn decode_rows(
    rows: &[Json],
    schema: &ModelSchema,
    inner: &Inner,
) -> Result<Vec<aura_engine::ResultRow>, Error> {
    let mut out = Vec::with_capacity(rows.len());
    for row in rows {
        let fields = row
            .get("fields")
            .and_then(Json::as_object)
            .ok_or_else(|| aura_wire::client::protocol_error("row without fields"))?;
        let values: Row = awp::row_from_wire(fields, schema)?.into();
        let scores = row.get("score").and_then(Json::as_f64).map(|score| {
            scores_of(
                score,
                row.get("text_score").and_then(Json::as_f64),
                row.get("vector_score").and_then(Json::as_f64),
                row.get("rank").and_then(Json::as_u64),
            )
        });
        let includes = row.get("includes").and_then(Json::as_object);
        out.push(result_row(values, scores, includes, schema, inner)?);
    }
    Ok(out)
}

/// A row's ranking fields as the engine's scores (rank 0 when absent).
fn scores_of(
    score: f64,
    text_score: Option<f64>,
    vector_score: Option<f64>,
    rank: Option<u64>,
) -> aura_engine::Scores {
    aura_engine::Scores {
        score,
        text_score,
        vector_score,
        rank: rank.unwrap_or(0),
    }
}

/// One decoded result row, its `includes` object read into relationships.
fn result_row(
    row: Row,
    scores: Option<aura_engine::Scores>,
    includes: Option<&Map<String, Json>>,
    schema: &ModelSchema,
    inner: &Inner,
) -> Result<aura_engine::ResultRow, Error> {
    let includes = match includes {
        Some(inc) => decode_includes(inc, schema, inner)?,
        None => Vec::new(),
    };
    Ok(aura_engine::ResultRow {
        row,
        scores,
        includes,
    })
}

/// A row's `includes` object → its loaded relationships.
fn decode_includes(
    inc: &Map<String, Json>,
    schema: &ModelSchema,
    inner: &Inner,
) -> Result<Vec<Included>, Error> {
    let mut includes = Vec::new();
    for (name, docs) in inc {
        let Some(field) = schema.field(name) else {
            continue;
        };
        let Some(target) = field.target.as_deref() else {
            continue;
        };
        let target_schema = inner.schema(target)?;
        let first = docs
            .as_array()
            .and_then(|d| d.first())
            .and_then(Json::as_object);
        let row = first
            .map(|obj| awp::row_from_wire(obj, &target_schema).map(Row::from))
            .transpose()?;
        includes.push(Included::One {
            attr: field.attr.clone(),
            row,
        });
    }
    Ok(includes)
}

/// A find's result page: its rows decoded, and the cursor holding the
/// rest. Read typed when it can be; the generic reader has the last word
/// on anything else (and reports what is wrong).
fn read_page(
    reply: &Reply,
    schema: &ModelSchema,
    inner: &Inner,
) -> Result<(Vec<aura_engine::ResultRow>, Option<u64>), Error> {
    let Some(page) = typed::page_in(&reply.payload, schema) else {
        let mut page = reply.json()?;
        let rows = decode_rows(&wire_rows(&mut page)?, schema, inner)?;
        return Ok((rows, page.get("cursor_id").and_then(Json::as_u64)));
    };
    let mut out = Vec::with_capacity(page.rows.len());
    for row in &page.rows {
        let values: Row = page.values(row, schema)?.into();
        let scores = row
            .score
            .map(|score| scores_of(score, row.text_score, row.vector_score, row.rank));
        let includes = row.includes.as_ref().and_then(Json::as_object);
        out.push(result_row(values, scores, includes, schema, inner)?);
    }
    Ok((out, page.cursor_id))
}

fn count_of(reply: &Reply, key: &str) -> Result<Json, Error> {
    let body = reply.json()?;
    body.get(key)
        .cloned()
        .ok_or_else(|| aura_wire::client::protocol_error(format!("reply without '{key}'")))
}

/// One client's AuraDB connection(s).
#[pyclass(frozen, module = "aura._core")]
pub struct AuraDbConnection {
    inner: Arc<Inner>,
}

#[pymethods]
impl AuraDbConnection {
    /// Build (no I/O). `open()` connects.
    #[new]
    #[pyo3(signature = (host, port, *, tls=false, ca_cert_path=None, verify_hostname=true,
        client_cert_path=None, client_key_path=None, token=None, connect_timeout_s=10.0,
        request_timeout_s=30.0, max_payload_bytes=67108864, pool=(1, 16, 1800.0, 300.0)))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        host: String,
        port: u16,
        tls: bool,
        ca_cert_path: Option<String>,
        verify_hostname: bool,
        client_cert_path: Option<String>,
        client_key_path: Option<String>,
        token: Option<String>,
        connect_timeout_s: f64,
        request_timeout_s: f64,
        max_payload_bytes: usize,
        pool: (usize, usize, f64, f64),
    ) -> Self {
        let opts = client_options(
            (host, port),
            tls.then_some(ClientTls {
                ca_cert_path,
                verify_hostname,
                client_cert_path,
                client_key_path,
            }),
            token,
            (connect_timeout_s, request_timeout_s),
            max_payload_bytes,
        );
        AuraDbConnection {
            inner: Arc::new(Router::new(opts, PoolPolicy::from_seconds(pool))),
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "AuraDbConnection(address='{}', tls={}, token={})",
            self.inner.opts.address(),
            self.inner.opts.tls.is_some(),
            if self.inner.opts.token.is_some() {
                "***"
            } else {
                "None"
            }
        )
    }

    /// Connect and handshake now.
    fn open<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            inner.open().await?;
            Ok(())
        })
    }

    /// `(open, max)` pooled connections.
    fn pool_status(&self) -> (usize, usize) {
        self.inner.pool_status()
    }

    fn close<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            inner.close().await;
            Ok(())
        })
    }

    /// Capability names the server advertised (empty before `open`).
    #[getter]
    fn server_capabilities(&self) -> Vec<String> {
        self.inner.advertised_sorted()
    }

    #[getter]
    fn server_version(&self) -> String {
        self.inner.server_version()
    }

    fn register(&self, plan: Py<ModelPlan>, py: Python<'_>) {
        self.inner.register(py, plan);
    }

    fn ping<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            let reply = inner.send_read(Opcode::Ping, 0, &Json::Null).await?;
            Ok(reply.opcode == Opcode::Pong)
        })
    }

    /// SCHEMA_CREATE for each registered model named.
    fn create_schema<'py>(
        &self,
        py: Python<'py>,
        models: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        let mut payloads = Vec::with_capacity(models.len());
        {
            let plans = inner.plans.read();
            let pk_kind = |target: &str| -> Option<FieldKind> {
                let plan = plans.get(target)?.bind(py).get();
                plan.schema.field(plan.schema.pk_name()).map(|f| f.kind)
            };
            for name in &models {
                let schema = inner.schema(name).map_err(err)?;
                payloads.push(awp::collection_schema(&schema, &pk_kind));
            }
        }
        future_into_py(py, async move {
            for payload in payloads {
                inner.send(Opcode::SchemaCreate, 0, &payload).await?;
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
        future_into_py(py, async move {
            for name in models {
                match inner
                    .send(Opcode::SchemaDrop, 0, &json!({"name": name}))
                    .await
                {
                    Err(e) if e.context_value("wire_code") == Some(&json!("not_found")) => {}
                    other => {
                        other?;
                    }
                }
            }
            Ok(())
        })
    }

    /// SCHEMA_LIST: the server's collection schemas.
    fn server_schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            let reply = inner.send_read(Opcode::SchemaList, 0, &Json::Null).await?;
            let body = reply.json()?;
            Ok(Deferred::new(move |py| json_to_py(py, &body)))
        })
    }

    /// Run a select/count/exists/update/delete IR. Only the IR is read
    /// here, on the event loop; its AWP payload is built on the runtime.
    /// With `metrics`, the request is counted and timed when it completes
    /// (the client's per-request recording, without a Python coroutine).
    #[pyo3(signature = (ir, txn=None, metrics=None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        txn: Option<u64>,
        metrics: Option<&Bound<'py, Metrics>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let observer = metrics
            .map(|m| Observer::new(m, ir).map(Arc::new))
            .transpose()?;
        let started = self.start(py, ir, txn.unwrap_or(0), observer.clone());
        if let (Err(e), Some(observer)) = (&started, observer) {
            observer.record(py, Some(e));
        }
        started
    }

    /// Insert instances: one `insert` or an atomic `bulk_insert`;
    /// `on_conflict="ignore"` inserts row by row and skips duplicates,
    /// `"replace"` upserts row by row.
    #[pyo3(signature = (model, instances, on_conflict=None, txn=None))]
    fn insert<'py>(
        &self,
        py: Python<'py>,
        model: String,
        instances: &Bound<'py, PyList>,
        on_conflict: Option<String>,
        txn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        let txn = txn.unwrap_or(0);
        let plan = inner.plan(py, &model)?;
        let schema = plan.get().schema.clone();
        let mut records = Vec::with_capacity(instances.len());
        for obj in instances.iter() {
            let row = to_row(plan.get(), &obj)?;
            records.push(Json::Object(awp::row_to_wire(&row, &schema).map_err(err)?));
        }
        match on_conflict.as_deref() {
            None | Some("ignore") | Some("replace") => {}
            Some(other) => {
                return Err(err(Error::query(format!(
                    "on_conflict must be None, 'ignore' or 'replace', got '{other}'"
                ))))
            }
        }
        future_into_py(py, async move {
            let n = insert_records(&inner, &model, records, on_conflict.as_deref(), txn).await?;
            Ok(n)
        })
    }

    /// Match on all key fields → update with values; else insert
    /// `instance`. Returns the stored row.
    #[pyo3(signature = (ir, instance=None, txn=None))]
    fn upsert<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        instance: Option<&Bound<'py, PyAny>>,
        txn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let q = crate::memory::parse_upsert(ir)?;
        let inner = self.inner.clone();
        let txn = txn.unwrap_or(0);
        let plan = inner.plan(py, &q.model)?;
        let schema = plan.get().schema.clone();
        let record = instance
            .map(|obj| to_row(plan.get(), obj))
            .transpose()?
            .map(|row| awp::row_to_wire(&row, &schema))
            .transpose()
            .map_err(err)?;
        let key_filters: Vec<Expr> = q
            .key
            .iter()
            .map(|(k, v)| {
                Expr::compare(
                    CompareOp::Eq,
                    Expr::field(&q.model, k),
                    Expr::literal(v.clone()),
                )
            })
            .collect();
        let mut select = Select::new(&q.model);
        select.filters = key_filters.clone();
        select.limit = Some(1);
        let find = inner.find_bytes(&select, &schema).map_err(err)?;
        let update = awp::update_mutation(
            &aura_core::ir::Update {
                model: q.model.clone(),
                filters: key_filters,
                set: q.values.clone(),
            },
            &schema,
        )
        .map_err(err)?;
        future_into_py(py, async move {
            let existing = fetch_all(&inner, &find, txn, &schema).await?;
            if existing.is_empty() {
                let Some(record) = record else {
                    return Ok(hydrated_first(inner.plans.clone(), select, Vec::new()));
                };
                inner
                    .send(
                        Opcode::Mutate,
                        txn,
                        &json!({"mutation": "insert", "collection": q.model, "fields": record}),
                    )
                    .await?;
            } else if !q.values.is_empty() {
                inner.send(Opcode::Mutate, txn, &update).await?;
            }
            let stored = fetch_all(&inner, &find, txn, &schema).await?;
            Ok(hydrated_first(inner.plans.clone(), select, stored))
        })
    }

    /// What would be sent for this IR (no I/O): the IR plus the AWP payload.
    fn explain<'py>(&self, py: Python<'py>, ir: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let request = parse_request(ir)?;
        let mut json = request.to_json();
        let model = request.model().unwrap_or_default().to_owned();
        let schema = self.inner.schema(&model).map_err(err)?;
        let awp = match &request {
            Request::Select(q) => self.inner.find_payload(q, &schema).map_err(err)?,
            Request::Count(q) => awp::filtered_query("count", q, &schema).map_err(err)?,
            Request::Exists(q) => awp::filtered_query("exists", q, &schema).map_err(err)?,
            Request::SearchPage(q) => {
                awp::search_page_query(q, &schema, &*self.inner.advertised()).map_err(err)?
            }
            Request::Aggregate(q) => {
                awp::aggregate_query(q, &schema, &*self.inner.advertised()).map_err(err)?
            }
            Request::Update(q) => awp::update_mutation(q, &schema).map_err(err)?,
            Request::Delete(q) => awp::delete_mutation(q, &schema).map_err(err)?,
            _ => Json::Null,
        };
        if let Some(obj) = json.as_object_mut() {
            obj.insert("awp".to_owned(), awp);
        }
        json_to_py(py, &json)
    }

    /// Open a server cursor over a select.
    #[pyo3(signature = (ir, txn=None))]
    fn cursor<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        txn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let Request::Select(q) = parse_request(ir)? else {
            return Err(err(Error::query("a cursor needs a select IR")));
        };
        let inner = self.inner.clone();
        let txn = txn.unwrap_or(0);
        let schema = inner.schema(&q.model).map_err(err)?;
        let payload = inner.find_payload(&q, &schema).map_err(err)?;
        future_into_py(py, async move {
            let conn = inner.conn_for(txn).await?;
            let reply = conn.request(Opcode::Query, txn, &payload).await?;
            let mut page = reply.json()?;
            let rows = wire_rows(&mut page)?;
            let cursor_id = page.get("cursor_id").and_then(Json::as_u64);
            Ok(AuraDbCursor {
                state: Arc::new(Mutex::new(CursorState::new(rows, cursor_id))),
                conn,
                inner,
                query: q,
                schema,
                txn,
            })
        })
    }

    fn begin<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            let conn = inner.shared().await?;
            let reply = conn.request(Opcode::TxnBegin, 0, &Json::Null).await?;
            let id = reply.txn_id;
            if id == 0 {
                return Err(
                    aura_wire::client::protocol_error("TXN_BEGIN returned transaction 0").into(),
                );
            }
            inner.pin(id, conn);
            Ok(id)
        })
    }

    fn commit<'py>(&self, py: Python<'py>, txn: u64) -> PyResult<Bound<'py, PyAny>> {
        self.finish(py, txn, Opcode::TxnCommit)
    }

    fn rollback<'py>(&self, py: Python<'py>, txn: u64) -> PyResult<Bound<'py, PyAny>> {
        self.finish(py, txn, Opcode::TxnRollback)
    }
}

impl AuraDbConnection {
    /// `execute` after its metrics set-up.
    fn start<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        txn: u64,
        observer: Option<Arc<Observer>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = parse_request(ir)?;
        let inner = self.inner.clone();
        let model = request.model().unwrap_or_default().to_owned();
        let schema = inner.schema(&model).map_err(err)?;
        match request {
            Request::Select(q) => observed_future_into_py(py, observer, async move {
                let payload = inner.find_bytes(&q, &schema)?;
                let rows = fetch_all(&inner, &payload, txn, &schema).await?;
                Ok(hydrated(inner.plans.clone(), q, rows))
            }),
            Request::Count(q) => counted(py, inner, "count", q, schema, txn, observer),
            Request::Exists(q) => counted(py, inner, "exists", q, schema, txn, observer),
            Request::Update(q) => observed_future_into_py(py, observer, async move {
                let payload = awp::update_mutation(&q, &schema)?;
                let reply = inner.send(Opcode::Mutate, txn, &payload).await?;
                let n = count_of(&reply, "updated")?;
                Ok(n.as_u64().unwrap_or(0))
            }),
            Request::Delete(q) => observed_future_into_py(py, observer, async move {
                let payload = awp::delete_mutation(&q, &schema)?;
                let reply = inner.send(Opcode::Mutate, txn, &payload).await?;
                let n = count_of(&reply, "deleted")?;
                Ok(n.as_u64().unwrap_or(0))
            }),
            Request::SearchPage(q) => observed_future_into_py(py, observer, async move {
                let payload = awp::search_page_query(&q, &schema, &*inner.advertised())?;
                let reply = inner.send_read(Opcode::Query, txn, &payload).await?;
                let mut page = reply.json()?;
                let rows = decode_rows(&wire_rows(&mut page)?, &schema, &inner)?;
                let cursor = page
                    .get("next_cursor")
                    .and_then(Json::as_str)
                    .map(str::to_owned);
                let rows = hydrated(inner.plans.clone(), q, rows);
                Ok(Deferred::new(move |py| {
                    (rows, cursor).into_pyobject(py).map(Bound::into_any)
                }))
            }),
            Request::Aggregate(q) => observed_future_into_py(py, observer, async move {
                let payload = awp::aggregate_query(&q, &schema, &*inner.advertised())?;
                let reply = inner.send_read(Opcode::Query, txn, &payload).await?;
                let result = awp::aggregate_result_from_wire(&reply.json()?)?;
                Ok(Deferred::new(move |py| json_to_py(py, &result)))
            }),
            other => Err(err(other.not_served("auradb"))),
        }
    }

    fn finish<'py>(&self, py: Python<'py>, txn: u64, op: Opcode) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            inner
                .finish(txn, |conn| async move {
                    conn.request(op, txn, &Json::Null).await
                })
                .await?;
            Ok(())
        })
    }
}

/// A `count` or `exists` query: its value, converted on the loop.
fn counted<'py>(
    py: Python<'py>,
    inner: Arc<Inner>,
    kind: &'static str,
    q: Filtered,
    schema: Arc<ModelSchema>,
    txn: u64,
    observer: Option<Arc<Observer>>,
) -> PyResult<Bound<'py, PyAny>> {
    if q.timeout_ms.is_some() && !inner.advertises("query_timeouts") {
        return Err(err(Error::capability(
            "auradb",
            "query_timeouts",
            "query timeouts",
        )));
    }
    observed_future_into_py(py, observer, async move {
        let payload = awp::filtered_query(kind, &q, &schema)?;
        let reply = inner.send_read(Opcode::Query, txn, &payload).await?;
        let value = count_of(&reply, kind)?;
        Ok(Deferred::new(move |py| json_to_py(py, &value)))
    })
}

/// A find, following its cursor to the end (a plain `.all()`); re-run
/// once on a fresh connection when the connection was lost.
async fn fetch_all(
    inner: &Inner,
    payload: &[u8],
    txn: u64,
    schema: &ModelSchema,
) -> Result<Vec<aura_engine::ResultRow>, Error> {
    inner
        .read(txn, |conn| async move {
            let reply = conn
                .request_bytes(Opcode::Query, txn, payload.to_vec())
                .await?;
            collect_pages(inner, &conn, reply, txn, schema).await
        })
        .await
}

async fn collect_pages(
    inner: &Inner,
    conn: &Connection,
    reply: Reply,
    txn: u64,
    schema: &ModelSchema,
) -> Result<Vec<aura_engine::ResultRow>, Error> {
    let (mut rows, mut cursor) = read_page(&reply, schema, inner)?;
    while let Some(id) = cursor {
        let next = conn
            .request(
                Opcode::CursorFetch,
                txn,
                &json!({"cursor_id": id, "limit": 1000}),
            )
            .await?;
        let (more, rest) = read_page(&next, schema, inner)?;
        rows.extend(more);
        cursor = rest;
    }
    Ok(rows)
}

fn is_unique_violation(e: &Error) -> bool {
    e.context_value("wire_code") == Some(&json!("unique_violation"))
}

async fn insert_records(
    inner: &Inner,
    model: &str,
    records: Vec<Json>,
    on_conflict: Option<&str>,
    txn: u64,
) -> Result<u64, Error> {
    match on_conflict {
        None if records.len() == 1 => {
            let record = records.into_iter().next().unwrap_or(Json::Null);
            let body = json!({"mutation": "insert", "collection": model, "fields": record});
            let reply = inner.send(Opcode::Mutate, txn, &body).await?;
            Ok(count_of(&reply, "inserted")?.as_u64().unwrap_or(0))
        }
        None => {
            let body = json!({"mutation": "bulk_insert", "collection": model, "records": records});
            let reply = inner.send(Opcode::Mutate, txn, &body).await?;
            Ok(count_of(&reply, "inserted")?.as_u64().unwrap_or(0))
        }
        Some(mode) => {
            let tag = if mode == "replace" {
                "upsert"
            } else {
                "insert"
            };
            let mut written = 0;
            for record in records {
                let body = json!({"mutation": tag, "collection": model, "fields": record});
                match inner.send(Opcode::Mutate, txn, &body).await {
                    Ok(_) => written += 1,
                    Err(e) if mode == "ignore" && is_unique_violation(&e) => {}
                    Err(e) => return Err(e),
                }
            }
            Ok(written)
        }
    }
}

/// A server cursor pinned to its connection; `close()` sends CURSOR_CLOSE
/// when the server still holds it.
#[pyclass(frozen, module = "aura._core")]
pub struct AuraDbCursor {
    state: Arc<Mutex<CursorState<Json>>>,
    conn: Arc<Connection>,
    inner: Arc<Inner>,
    query: Select,
    schema: Arc<ModelSchema>,
    txn: u64,
}

#[pymethods]
impl AuraDbCursor {
    /// Up to `batch_size` hydrated rows; an empty list means exhausted.
    fn fetch<'py>(&self, py: Python<'py>, batch_size: usize) -> PyResult<Bound<'py, PyAny>> {
        let state = self.state.clone();
        let conn = self.conn.clone();
        let inner = self.inner.clone();
        let query = self.query.clone();
        let schema = self.schema.clone();
        let txn = self.txn;
        let batch_size = batch_size.max(1);
        future_into_py(py, async move {
            let wanted = state.lock().wanted(batch_size);
            if let Some((id, want)) = wanted {
                let reply = conn
                    .request(
                        Opcode::CursorFetch,
                        txn,
                        &json!({"cursor_id": id, "limit": want}),
                    )
                    .await?;
                let mut page = reply.json()?;
                let rows = wire_rows(&mut page)?;
                let next = page.get("cursor_id").and_then(Json::as_u64);
                state.lock().received(rows, next);
            }
            let batch = state.lock().take(batch_size);
            let rows = decode_rows(&batch, &schema, &inner)?;
            Ok(hydrated(inner.plans.clone(), query, rows))
        })
    }

    /// Release now. When the server still holds rows, CURSOR_CLOSE is
    /// queued on the cursor's connection without waiting for its answer:
    /// it goes out before any later request on that connection (so the
    /// server, answering in order, has freed the cursor before it answers
    /// that request). Idempotent; safe from `__del__`.
    fn close(&self) {
        let id = self.state.lock().close();
        if let Some(id) = id {
            self.conn
                .defer(Opcode::CursorClose, self.txn, &json!({"cursor_id": id}));
        }
    }

    #[getter]
    fn is_open(&self) -> bool {
        self.state.lock().is_open()
    }

    /// The server cursor id while the server holds rows for it.
    #[getter]
    fn server_cursor_id(&self) -> Option<u64> {
        self.state.lock().cursor_id()
    }
}
