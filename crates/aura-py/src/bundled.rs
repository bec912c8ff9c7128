//! The bundled-protocol backend (`aura://`, `aura+tcp://`, `auras://`):
//! the aura-wire bundled client behind awaitables. Requests carry the IR
//! as it is (no translation); result rows are positional storage-form
//! values hydrated by the same `Hydrator` as every other backend.
//!
//! Which connection a request uses (and which requests are re-sent) is
//! `remote::Router`'s policy, shared with AWP 1.

use std::sync::Arc;

use aura_core::error::{Error, ErrorCode};
use aura_core::ir::{Request, Select};
use aura_core::schema::{ModelSchema, RelationKind};
use aura_engine::ResultRow;
use aura_wire::bundled::client::{json_of, BundledConnection as Conn, BundledOptions};
use aura_wire::bundled::frame::{Frame, Opcode};
use aura_wire::bundled::rows::{result_rows_from_json, row_from_json, row_json};
use aura_wire::tls::ClientTls;
use parking_lot::Mutex;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use serde_json::{json, Value as Json};

use crate::bridge::future_into_py;
use crate::convert::{json_to_py, py_to_json, value_to_py};
use crate::errors::to_py;
use crate::memory::parse_request;
use crate::plan::ModelPlan;
use crate::remote::{client_options, CursorState, PoolPolicy, Router};
use crate::rows::{hydrated, stored_instance, to_row, Deferred, Hydrator};

type Inner = Router<Conn>;

fn err(e: Error) -> PyErr {
    to_py(e)
}

fn protocol(message: &str) -> Error {
    Error::new(ErrorCode::ProtocolError, message)
}

impl Router<Conn> {
    /// The target schema of relationship `attr` of `schema` (link or collection).
    fn target_of(&self, schema: &ModelSchema, attr: &str) -> Result<Arc<ModelSchema>, Error> {
        let target = schema
            .fields
            .iter()
            .find(|f| f.attr == attr)
            .and_then(|f| f.target.clone())
            .or_else(|| {
                schema
                    .relationships
                    .iter()
                    .find(|r| r.attr == attr && r.kind == RelationKind::Collection)
                    .map(|r| r.target.clone())
            })
            .ok_or_else(|| protocol("an include names an unknown relationship"))?;
        self.schema(&target)
    }

    /// A request on the connection for `txn`.
    async fn send(&self, op: Opcode, txn: u64, body: &Json) -> Result<Frame, Error> {
        self.call(txn, |conn| async move { conn.request(op, txn, body).await })
            .await
    }

    /// An idempotent query (re-sent once on a lost connection), its body.
    async fn query(&self, txn: u64, body: &Json) -> Result<Json, Error> {
        self.read(txn, |conn| async move {
            json_of(&conn.request(Opcode::Query, txn, body).await?)
        })
        .await
    }

    fn decode(&self, body: &Json, schema: &ModelSchema) -> Result<Vec<ResultRow>, Error> {
        let rows = body
            .get("rows")
            .and_then(Json::as_array)
            .ok_or_else(|| protocol("result without rows"))?;
        let metadata = body.get("metadata").cloned().unwrap_or(Json::Null);
        result_rows_from_json(rows, &metadata, schema, &|attr| {
            self.target_of(schema, attr)
        })
    }
}

/// One client's bundled-protocol connection(s).
#[pyclass(frozen, module = "aura._core")]
pub struct BundledConnection {
    inner: Arc<Inner>,
}

#[pymethods]
impl BundledConnection {
    /// Build (no I/O); `open()` connects.
    #[new]
    #[pyo3(signature = (host, port, *, tls=false, ca_cert_path=None, verify_hostname=true,
        client_cert_path=None, client_key_path=None, token=None, connect_timeout_s=10.0,
        request_timeout_s=30.0, max_payload_bytes=67108864, pool=(1, 16, 1800.0, 300.0), compression=false,
        payload_checksum=true))]
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
        compression: bool,
        payload_checksum: bool,
    ) -> Self {
        let base = client_options(
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
        BundledConnection {
            inner: Arc::new(Router::new(
                BundledOptions {
                    base,
                    compression,
                    payload_checksum,
                },
                PoolPolicy::from_seconds(pool),
            )),
        }
    }

    fn __repr__(&self) -> String {
        let o = &self.inner.opts.base;
        format!(
            "BundledConnection(address='{}', tls={}, token={})",
            o.address(),
            o.tls.is_some(),
            if o.token.is_some() { "***" } else { "None" }
        )
    }

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

    /// Feature names the server acknowledged (empty before `open`).
    #[getter]
    fn server_features(&self) -> Vec<String> {
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
            let conn = inner.shared().await?;
            let reply = conn.request(Opcode::Ping, 0, &json!({"nonce": 1})).await?;
            Ok(reply.opcode == Opcode::Pong)
        })
    }

    fn create_schema<'py>(
        &self,
        py: Python<'py>,
        models: Vec<String>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        let schemas = models
            .iter()
            .map(|m| {
                inner
                    .schema(m)
                    .map(|s| serde_json::to_value(s.as_ref()).unwrap_or(Json::Null))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(err)?;
        future_into_py(py, async move {
            inner
                .send(Opcode::Schema, 0, &json!({"models": schemas}))
                .await?;
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
            inner
                .send(Opcode::Schema, 0, &json!({"drop": models}))
                .await?;
            Ok(())
        })
    }

    fn server_schema<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            let reply = inner.send(Opcode::Schema, 0, &json!({})).await?;
            let body = json_of(&reply)?;
            let models = body.get("models").cloned().unwrap_or_else(|| json!([]));
            Ok(Deferred::new(move |py| json_to_py(py, &models)))
        })
    }

    /// Run any read or update/delete IR.
    #[pyo3(signature = (ir, txn=None))]
    fn execute<'py>(
        &self,
        py: Python<'py>,
        ir: &Bound<'py, PyAny>,
        txn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let request = parse_request(ir)?;
        let inner = self.inner.clone();
        let txn = txn.unwrap_or(0);
        let body = json!({"ir": request.to_json()});
        match request {
            Request::Update(_) | Request::Delete(_) => future_into_py(py, async move {
                let reply = inner.send(Opcode::Mutation, txn, &body).await?;
                let out = json_of(&reply)?;
                Ok(out.get("affected").and_then(Json::as_u64).unwrap_or(0))
            }),
            Request::Select(q) | Request::SearchPage(q) | Request::Aggregate(q) => {
                let kind = ir.get_item("operation")?.extract::<String>()?;
                let schema = inner.schema(&q.model).map_err(err)?;
                future_into_py(py, async move {
                    let out = inner.query(txn, &body).await?;
                    if kind == "aggregate" {
                        let agg = out
                            .pointer("/metadata/aggregate")
                            .cloned()
                            .unwrap_or(Json::Null);
                        return Ok(Deferred::new(move |py| json_to_py(py, &agg)));
                    }
                    let rows = hydrated(inner.plans.clone(), q, inner.decode(&out, &schema)?);
                    if kind != "search_page" {
                        return Ok(rows);
                    }
                    let cursor = out
                        .pointer("/metadata/cursor")
                        .and_then(Json::as_str)
                        .map(str::to_owned);
                    Ok(Deferred::new(move |py| {
                        (rows, cursor).into_pyobject(py).map(Bound::into_any)
                    }))
                })
            }
            Request::Count(_) | Request::Exists(_) => {
                let exists = matches!(request, Request::Exists(_));
                future_into_py(py, async move {
                    let out = inner.query(txn, &body).await?;
                    let n = out.get("count").and_then(Json::as_u64).unwrap_or(0);
                    Ok(Deferred::new(move |py| {
                        if exists {
                            Ok(pyo3::types::PyBool::new(py, n > 0).to_owned().into_any())
                        } else {
                            Ok(n.into_pyobject(py)?.into_any())
                        }
                    }))
                })
            }
            Request::Traverse(_) => future_into_py(py, async move {
                let out = inner.query(txn, &body).await?;
                let model = out
                    .pointer("/metadata/model")
                    .and_then(Json::as_str)
                    .unwrap_or_default()
                    .to_owned();
                let schema = inner.schema(&model)?;
                let rows = out
                    .get("rows")
                    .and_then(Json::as_array)
                    .into_iter()
                    .flatten()
                    .map(|r| row_from_json(r, &schema))
                    .collect::<Result<Vec<_>, _>>()?;
                let plans = inner.plans.clone();
                Ok(Deferred::new(move |py| {
                    let plans = plans.read();
                    let hydrator = Hydrator::new(py, &plans)?;
                    let items = rows
                        .iter()
                        .map(|r| hydrator.simple(&model, r))
                        .collect::<PyResult<Vec<_>>>()?;
                    Ok(PyList::new(py, items)?.into_any())
                }))
            }),
            other => Err(err(other.not_served("auradb"))),
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
        let inner = self.inner.clone();
        let plan = inner.plan(py, &model)?;
        let rows = instances
            .iter()
            .map(|obj| to_row(plan.get(), &obj).map(|r| row_json(&r)))
            .collect::<PyResult<Vec<_>>>()?;
        let body = json!({"ir": {"operation": "insert", "model": model, "rows": rows, "on_conflict": on_conflict}});
        let txn = txn.unwrap_or(0);
        future_into_py(py, async move {
            let reply = inner.send(Opcode::Mutation, txn, &body).await?;
            let out = json_of(&reply)?;
            Ok(out.get("affected").and_then(Json::as_u64).unwrap_or(0))
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
        let request = parse_request(ir)?;
        let Request::Upsert(q) = &request else {
            return Err(err(Error::query("expected an upsert IR")));
        };
        let inner = self.inner.clone();
        let model = q.model.clone();
        let plan = inner.plan(py, &model)?;
        let row = instance.map(|obj| to_row(plan.get(), obj)).transpose()?;
        let body = json!({"ir": request.to_json(), "row": row.as_ref().map(row_json)});
        let txn = txn.unwrap_or(0);
        future_into_py(py, async move {
            let reply = inner.send(Opcode::Mutation, txn, &body).await?;
            let out = json_of(&reply)?;
            let schema = inner.schema(&model)?;
            let stored = out
                .get("returning")
                .and_then(Json::as_array)
                .and_then(|r| r.first())
                .map(|r| row_from_json(r, &schema))
                .transpose()?;
            Ok(stored_instance(inner.plans.clone(), model, stored))
        })
    }

    #[pyo3(signature = (statement, params=None, txn=None))]
    fn raw<'py>(
        &self,
        py: Python<'py>,
        statement: String,
        params: Option<&Bound<'py, PyAny>>,
        txn: Option<u64>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let params = params.map(py_to_json).transpose()?.unwrap_or(Json::Null);
        let inner = self.inner.clone();
        let body = json!({"ir": {"operation": "raw", "statement": statement, "params": params}});
        let txn = txn.unwrap_or(0);
        future_into_py(py, async move {
            // raw() may write: sent once, never re-sent on a new connection.
            let out = json_of(&inner.send(Opcode::Query, txn, &body).await?)?;
            let model = out
                .pointer("/metadata/model")
                .and_then(Json::as_str)
                .unwrap_or_default();
            let schema = inner.schema(model)?;
            let rows = out
                .get("rows")
                .and_then(Json::as_array)
                .into_iter()
                .flatten()
                .map(|r| row_from_json(r, &schema))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Deferred::new(move |py| {
                let list = PyList::empty(py);
                for row in &rows {
                    let dict = PyDict::new(py);
                    for (field, value) in schema.fields.iter().zip(row.iter()) {
                        dict.set_item(&field.storage, value_to_py(py, value)?)?;
                    }
                    list.append(dict)?;
                }
                Ok(list.into_any())
            }))
        })
    }

    /// What would be sent (no I/O): the IR plus the request opcode.
    fn explain<'py>(&self, py: Python<'py>, ir: &Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let request = parse_request(ir)?;
        let mut json = request.to_json();
        let opcode = match request {
            Request::Update(_) | Request::Delete(_) | Request::Upsert(_) | Request::Insert(_) => {
                "MUTATION"
            }
            _ => "QUERY",
        };
        if let Some(obj) = json.as_object_mut() {
            obj.insert("request".to_owned(), json!({"opcode": opcode}));
        }
        json_to_py(py, &json)
    }

    /// Open a server cursor over a stream IR (`cursor: {batch_size}`).
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
        let mut ir_json = Request::Select(q.clone()).to_json();
        if q.cursor.is_none() {
            ir_json["cursor"] = json!({"batch_size": 1000});
        }
        let body = json!({"ir": ir_json});
        future_into_py(py, async move {
            let conn = inner.conn_for(txn).await?;
            let reply = conn.request(Opcode::Query, txn, &body).await?;
            let out = json_of(&reply)?;
            let rows = inner.decode(&out, &schema)?;
            let cursor_id = out.pointer("/metadata/cursor").and_then(Json::as_u64);
            Ok(BundledCursor {
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
            let reply = conn
                .request(
                    Opcode::BeginTx,
                    0,
                    &json!({"action": "begin", "isolation": "snapshot"}),
                )
                .await?;
            let id = json_of(&reply)?
                .get("transaction_id")
                .and_then(Json::as_u64)
                .filter(|id| *id != 0)
                .ok_or_else(|| err(protocol("TX_ACK without a transaction id")))?;
            inner.pin(id, conn);
            Ok(id)
        })
    }

    fn commit<'py>(&self, py: Python<'py>, txn: u64) -> PyResult<Bound<'py, PyAny>> {
        self.finish(py, txn, Opcode::CommitTx, "commit")
    }

    fn rollback<'py>(&self, py: Python<'py>, txn: u64) -> PyResult<Bound<'py, PyAny>> {
        self.finish(py, txn, Opcode::RollbackTx, "rollback")
    }
}

impl BundledConnection {
    fn finish<'py>(
        &self,
        py: Python<'py>,
        txn: u64,
        op: Opcode,
        action: &'static str,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.inner.clone();
        future_into_py(py, async move {
            let body = json!({"action": action});
            inner
                .finish(
                    txn,
                    |conn| async move { conn.request(op, txn, &body).await },
                )
                .await?;
            Ok(())
        })
    }
}

/// A server cursor pinned to its connection.
#[pyclass(frozen, module = "aura._core")]
pub struct BundledCursor {
    state: Arc<Mutex<CursorState<ResultRow>>>,
    conn: Arc<Conn>,
    inner: Arc<Inner>,
    query: Select,
    schema: Arc<ModelSchema>,
    txn: u64,
}

#[pymethods]
impl BundledCursor {
    /// Up to `batch_size` hydrated rows; an empty list means exhausted.
    fn fetch<'py>(&self, py: Python<'py>, batch_size: usize) -> PyResult<Bound<'py, PyAny>> {
        let (state, conn, inner) = (self.state.clone(), self.conn.clone(), self.inner.clone());
        let (query, schema, txn) = (self.query.clone(), self.schema.clone(), self.txn);
        let batch_size = batch_size.max(1);
        future_into_py(py, async move {
            let wanted = state.lock().wanted(batch_size);
            if let Some((id, n)) = wanted {
                let reply = conn
                    .request(
                        Opcode::CursorFetch,
                        txn,
                        &json!({"cursor": id, "batch_size": n}),
                    )
                    .await?;
                let out = json_of(&reply)?;
                let rows = inner.decode(&out, &schema)?;
                let next = out.pointer("/metadata/cursor").and_then(Json::as_u64);
                state.lock().received(rows, next);
            }
            let batch = state.lock().take(batch_size);
            Ok(hydrated(inner.plans.clone(), query, batch))
        })
    }

    /// Release now; CURSOR_CLOSE is queued ahead of the connection's next
    /// request, its answer not awaited. Idempotent.
    fn close(&self) {
        let id = self.state.lock().close();
        if let Some(id) = id {
            self.conn
                .defer(Opcode::CursorClose, self.txn, &json!({"cursor": id}));
        }
    }

    #[getter]
    fn is_open(&self) -> bool {
        self.state.lock().is_open()
    }

    #[getter]
    fn server_cursor_id(&self) -> Option<u64> {
        self.state.lock().cursor_id()
    }
}

/// Encode one bundled-protocol frame (API.md §14), e.g. for conformance
/// check 49: `bundled_encode_frame(3, 1, 0, b'{"nonce":1}')`.
#[pyfunction]
#[pyo3(signature = (opcode, request_id, txn_id, payload, *, compress=false, checksum=true))]
pub fn bundled_encode_frame(
    opcode: u8,
    request_id: u64,
    txn_id: u64,
    payload: Vec<u8>,
    compress: bool,
    checksum: bool,
) -> PyResult<Vec<u8>> {
    let op = Opcode::from_u8(opcode)
        .ok_or_else(|| err(Error::query(format!("unknown bundled opcode {opcode}"))))?;
    Ok(Frame::new(op, request_id, txn_id, payload).encode(compress, checksum))
}

/// Decode one whole frame: `(opcode, request_id, txn_id, payload)`.
/// Malformed bytes raise `AuraProtocolError` (`AuraProtocolVersionError`
/// for a bad version); incomplete bytes too.
#[pyfunction]
#[pyo3(signature = (data, max_payload_bytes=67108864))]
pub fn bundled_decode_frame(
    data: Vec<u8>,
    max_payload_bytes: usize,
) -> PyResult<(u8, u64, u64, Vec<u8>)> {
    match aura_wire::bundled::frame::decode(&data, max_payload_bytes) {
        Ok(Some((frame, used))) if used == data.len() => Ok((
            frame.opcode.as_u8(),
            frame.request_id,
            frame.txn_id,
            frame.payload,
        )),
        Ok(_) => Err(err(protocol(
            "not exactly one whole bundled-protocol frame",
        ))),
        Err(e) => Err(err(e.to_error())),
    }
}
