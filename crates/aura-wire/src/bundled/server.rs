//! A bundled-protocol server (API.md §14) over the in-memory engine: what
//! `aura serve --bundled-port` runs. Bodies carry the Query IR itself, so
//! the server parses `{ir}` and hands it to the engine; rows travel as
//! positional arrays of storage-form values (the model's field order).
//!
//! Connections are accepted as the AWP server's are (`crate::listener`:
//! TLS or plaintext per listener, one log line per connection without
//! secrets, graceful shutdown that finishes the request in hand, rolls
//! back and closes); this module adds token auth (the handshake's
//! `authorization: Bearer <token>` header, checked against the salted
//! hash) and the payload limit. A frame that fails to decode gets
//! one ERROR (request id 0) and the connection is closed.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use aura_core::ir::{Request, Select};
use aura_core::schema::ModelSchema;
use aura_core::{Error, ErrorCode};
use aura_engine::{Engine, OnConflict, ResultRow, TxnId};
use serde_json::{json, Map, Value as Json};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::watch;

use super::frame::{self, Frame, Opcode, FLAG_END_OF_STREAM, FLAG_MORE_FRAMES, HEADER_LEN};
use super::rows::{result_rows_json, row_from_json, row_json};
use crate::listener::{Accept, Listener, LogSink, Session};
use crate::server::ServerConfig;

/// Features a handshake acknowledges: what this server executes.
pub const FEATURES: &[&str] = &[
    "transactions",
    "schema_create",
    "schema_migrations",
    "json_fields",
    "relationships",
    "graph_traversal",
    "vector_search",
    "hybrid_search",
    "full_text_search",
    "raw_queries",
    "explain",
    "server_side_cursors",
    "native_protocol",
    "document_queries",
    "aggregations_and_facets",
    "ranked_pagination",
    "query_timeouts",
    "approximate_vector_search",
];

struct Shared {
    engine: Arc<Engine>,
    config: ServerConfig,
    open_cursors: Arc<AtomicUsize>,
    next_cursor: AtomicU64,
}

/// Serves `engine` over the bundled protocol on `addr` (on the current
/// tokio runtime).
pub async fn serve(
    addr: &str,
    engine: Arc<Engine>,
    config: ServerConfig,
    log: LogSink,
) -> std::io::Result<Listener> {
    let open_cursors = Arc::new(AtomicUsize::new(0));
    let tls = config.tls.clone();
    let shared = Arc::new(Shared {
        engine,
        config,
        open_cursors: open_cursors.clone(),
        next_cursor: AtomicU64::new(1),
    });
    let accept = Accept {
        label: "aura-serve bundled",
        tls,
        log,
        session: move || Conn::new(shared.clone()),
    };
    Listener::start(addr, accept, open_cursors).await
}

struct Cursor {
    model: String,
    rows: VecDeque<ResultRow>,
    last_used: Instant,
}

struct Conn {
    shared: Arc<Shared>,
    authenticated: bool,
    requests: u64,
    txns: HashMap<TxnId, Instant>,
    cursors: HashMap<u64, Cursor>,
}

/// One reply: opcode, flags (stream bits) and body.
type Reply = (Opcode, u8, Json);

fn error_body(err: &Error) -> Json {
    let context: Map<String, Json> = err
        .context
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    json!({
        "code": err.code.as_str(),
        "message": err.message,
        "retryable": err.retryable.unwrap_or(matches!(err.code, ErrorCode::Conflict | ErrorCode::Timeout | ErrorCode::RetryableTransactionError)),
        "context": context,
    })
}

impl Session for Conn {
    async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        stream: S,
        mut stop: watch::Receiver<bool>,
    ) -> String {
        let (reader, mut writer) = tokio::io::split(stream);
        let mut reader = tokio::io::BufReader::with_capacity(crate::io::READ_BUFFER, reader);
        let max = self.shared.config.max_payload_bytes;
        loop {
            let mut head = [0u8; HEADER_LEN];
            let read = tokio::select! {
                _ = stop.changed() => return "shutdown".to_owned(),
                read = reader.read_exact(&mut head) => read,
            };
            if read.is_err() {
                return "eof".to_owned();
            }
            let frame = match frame::parse_header(&head, max) {
                Ok(header) => {
                    let mut body = vec![0u8; header.body_len()];
                    if reader.read_exact(&mut body).await.is_err() {
                        return "early_eof".to_owned();
                    }
                    frame::decode_body(&header, &body, max)
                }
                Err(e) => Err(e),
            };
            let frame = match frame {
                Ok(frame) => frame,
                Err(e) => {
                    let body = error_body(&e.to_error());
                    let out = Frame::new(Opcode::Error, 0, 0, frame::sorted_json(&body));
                    let _ = writer.write_all(&out.encode(false, true)).await;
                    return "fatal_protocol_error".to_owned();
                }
            };
            self.requests += 1;
            let (opcode, flags, body) = match self.handle(&frame) {
                Ok(reply) => reply,
                Err(err) => (Opcode::Error, 0, error_body(&err)),
            };
            let mut reply = Frame::new(
                opcode,
                frame.request_id,
                frame.txn_id,
                frame::sorted_json(&body),
            );
            reply.flags = flags;
            if writer.write_all(&reply.encode(false, true)).await.is_err() {
                return "io_error".to_owned();
            }
        }
    }

    fn release(&mut self) {
        for (txn, _) in self.txns.drain() {
            let _ = self.shared.engine.rollback(txn);
        }
        self.drop_cursors();
    }

    fn summary(&self) -> (bool, u64) {
        (self.authenticated, self.requests)
    }
}

impl Conn {
    fn new(shared: Arc<Shared>) -> Conn {
        let authenticated = shared.config.token.is_none();
        Conn {
            shared,
            authenticated,
            requests: 0,
            txns: HashMap::new(),
            cursors: HashMap::new(),
        }
    }

    fn drop_cursors(&mut self) {
        let n = self.cursors.len();
        self.cursors.clear();
        self.shared.open_cursors.fetch_sub(n, Ordering::SeqCst);
    }

    fn parse(frame: &Frame) -> Result<Json, Error> {
        serde_json::from_slice(&frame.payload).map_err(|_| {
            Error::new(
                ErrorCode::ProtocolError,
                "request body is not a JSON object",
            )
        })
    }

    fn txn(&self, id: u64) -> Result<Option<TxnId>, Error> {
        match id {
            0 => Ok(None),
            id if self.txns.contains_key(&id) => Ok(Some(id)),
            id => Err(Error::transaction(format!(
                "transaction {id} is not active on this connection"
            ))),
        }
    }

    fn handle(&mut self, frame: &Frame) -> Result<Reply, Error> {
        let body = if frame.payload.is_empty() {
            json!({})
        } else {
            Self::parse(frame)?
        };
        match frame.opcode {
            Opcode::Handshake => return Ok(self.handshake(&body)),
            Opcode::Ping => {
                let ver = &self.shared.config.server_version;
                return Ok((
                    Opcode::Pong,
                    0,
                    json!({"nonce": body.get("nonce").cloned().unwrap_or(Json::Null), "server_version": ver}),
                ));
            }
            _ if !self.authenticated => {
                return Err(Error::new(
                    ErrorCode::AuthenticationError,
                    "authentication required before this operation",
                ));
            }
            _ => {}
        }
        let timeout = self.shared.config.cursor_timeout;
        let before = self.cursors.len();
        self.cursors.retain(|_, c| c.last_used.elapsed() < timeout);
        self.shared
            .open_cursors
            .fetch_sub(before - self.cursors.len(), Ordering::SeqCst);
        let txn = self.txn(frame.txn_id);
        match frame.opcode {
            Opcode::Schema => self.schema(&body),
            Opcode::Query => self.query(&body, txn?),
            Opcode::Mutation => self.mutation(&body, txn?),
            Opcode::BeginTx => {
                let id = self.shared.engine.begin();
                self.txns.insert(id, Instant::now());
                Ok((
                    Opcode::TxAck,
                    0,
                    json!({"transaction_id": id, "status": "active"}),
                ))
            }
            Opcode::CommitTx | Opcode::RollbackTx => {
                let id =
                    txn?.ok_or_else(|| Error::transaction("no transaction id in the header"))?;
                self.txns.remove(&id);
                let status = if frame.opcode == Opcode::CommitTx {
                    self.shared.engine.commit(id)?;
                    "committed"
                } else {
                    self.shared.engine.rollback(id)?;
                    "rolled_back"
                };
                Ok((
                    Opcode::TxAck,
                    0,
                    json!({"transaction_id": id, "status": status}),
                ))
            }
            Opcode::CursorFetch => {
                let id = body.get("cursor").and_then(Json::as_u64).unwrap_or(0);
                let batch = body
                    .get("batch_size")
                    .and_then(Json::as_u64)
                    .unwrap_or(1000)
                    .max(1);
                self.fetch(id, batch)
            }
            Opcode::CursorClose => {
                let id = body.get("cursor").and_then(Json::as_u64).unwrap_or(0);
                if self.cursors.remove(&id).is_some() {
                    self.shared.open_cursors.fetch_sub(1, Ordering::SeqCst);
                }
                Ok((
                    Opcode::CursorAck,
                    0,
                    json!({"cursor": id, "status": "closed"}),
                ))
            }
            other => Err(Error::new(
                ErrorCode::ProtocolError,
                format!("opcode {} is not a request", other.as_u8()),
            )),
        }
    }

    fn handshake(&mut self, body: &Json) -> Reply {
        if let Some(verifier) = &self.shared.config.token {
            let presented = body
                .pointer("/auth/authorization")
                .and_then(Json::as_str)
                .and_then(|h| h.strip_prefix("Bearer "));
            if presented.is_some_and(|t| verifier.verify(t)) {
                self.authenticated = true;
            }
        }
        if !self.authenticated {
            let err = Error::new(
                ErrorCode::AuthenticationError,
                "the server rejected the credentials",
            );
            return (Opcode::Error, 0, error_body(&err));
        }
        (
            Opcode::HandshakeAck,
            0,
            json!({
                "server_version": self.shared.config.server_version,
                "features": FEATURES,
                "compression": "none",
            }),
        )
    }

    fn schema(&mut self, body: &Json) -> Result<Reply, Error> {
        let engine = &self.shared.engine;
        for model in body
            .get("models")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let schema: ModelSchema = serde_json::from_value(model.clone())
                .map_err(|e| Error::schema(format!("invalid model schema: {e}")))?;
            engine.create_table(Arc::new(schema))?;
        }
        for name in body
            .get("drop")
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            if let Some(name) = name.as_str() {
                engine.drop_table(name)?;
            }
        }
        let models: Vec<Json> = engine
            .table_names()
            .iter()
            .filter_map(|n| engine.schema(n))
            .map(|s| serde_json::to_value(s.as_ref()).unwrap_or(Json::Null))
            .collect();
        Ok((Opcode::SchemaResult, 0, json!({"models": models})))
    }

    fn query(&mut self, body: &Json, t: Option<TxnId>) -> Result<Reply, Error> {
        let ir = body
            .get("ir")
            .cloned()
            .ok_or_else(|| Error::new(ErrorCode::ProtocolError, "query body needs 'ir'"))?;
        let engine = self.shared.engine.clone();
        let request = Request::from_json(ir)?;
        let deadline = |q: &mut Select| {
            let server = self.shared.config.max_query_time_ms;
            q.timeout_ms = match (q.timeout_ms, server) {
                (Some(c), 0) => Some(c),
                (Some(c), s) => Some(c.min(s)),
                (None, 0) => None,
                (None, s) => Some(s),
            };
        };
        match request {
            Request::Select(mut q) => {
                let stream = q.cursor.take();
                deadline(&mut q);
                let out = engine.select(t, &q)?;
                match stream.and_then(|c| c.get("batch_size").and_then(Json::as_u64)) {
                    Some(batch) => self.open_cursor(&q.model, out.rows, batch),
                    None => Ok((Opcode::QueryResult, 0, result(&engine, &q.model, &out.rows))),
                }
            }
            Request::SearchPage(mut q) => {
                deadline(&mut q);
                let (out, next) = engine.search_page(t, &q)?;
                let mut body = result(&engine, &q.model, &out.rows);
                body["metadata"]["cursor"] = json!(next);
                Ok((Opcode::QueryResult, 0, body))
            }
            Request::Aggregate(mut q) => {
                deadline(&mut q);
                let agg = engine.aggregate(t, &q)?;
                Ok((
                    Opcode::QueryResult,
                    0,
                    json!({"rows": [], "metadata": {"aggregate": agg}}),
                ))
            }
            Request::Count(q) => {
                let n = engine.count(t, &q)?;
                Ok((
                    Opcode::QueryResult,
                    0,
                    json!({"rows": [], "metadata": {}, "count": n}),
                ))
            }
            Request::Exists(q) => {
                let found = engine.exists(t, &q)?;
                Ok((
                    Opcode::QueryResult,
                    0,
                    json!({"rows": [], "metadata": {"exists": found}, "count": u64::from(found)}),
                ))
            }
            Request::Traverse(q) => {
                let (model, rows) = engine.traverse(t, &q)?;
                let rows: Vec<Json> = rows.iter().map(row_json).collect();
                Ok((
                    Opcode::QueryResult,
                    0,
                    json!({"rows": rows, "metadata": {"model": model}}),
                ))
            }
            Request::Raw(q) => {
                let (model, rows) = engine.raw(t, &q.statement, &q.params)?;
                let rows: Vec<Json> = rows.iter().map(row_json).collect();
                Ok((
                    Opcode::QueryResult,
                    0,
                    json!({"rows": rows, "metadata": {"model": model}}),
                ))
            }
            other => Err(other.not_served("auradb")),
        }
    }

    fn open_cursor(
        &mut self,
        model: &str,
        rows: Vec<ResultRow>,
        batch: u64,
    ) -> Result<Reply, Error> {
        let id = self.shared.next_cursor.fetch_add(1, Ordering::SeqCst);
        self.cursors.insert(
            id,
            Cursor {
                model: model.to_owned(),
                rows: rows.into(),
                last_used: Instant::now(),
            },
        );
        self.shared.open_cursors.fetch_add(1, Ordering::SeqCst);
        self.fetch(id, batch)
    }

    fn fetch(&mut self, id: u64, batch: u64) -> Result<Reply, Error> {
        let engine = self.shared.engine.clone();
        let cursor = self
            .cursors
            .get_mut(&id)
            .ok_or_else(|| Error::not_found(format!("cursor {id} is not open")))?;
        cursor.last_used = Instant::now();
        let take = usize::try_from(batch)
            .unwrap_or(usize::MAX)
            .min(cursor.rows.len());
        let page: Vec<ResultRow> = cursor.rows.drain(..take).collect();
        let mut body = result(&engine, &cursor.model, &page);
        if cursor.rows.is_empty() {
            self.cursors.remove(&id);
            self.shared.open_cursors.fetch_sub(1, Ordering::SeqCst);
            body["metadata"]["cursor"] = Json::Null;
            Ok((Opcode::StreamEnd, FLAG_END_OF_STREAM, body))
        } else {
            body["metadata"]["cursor"] = json!(id);
            Ok((Opcode::StreamData, FLAG_MORE_FRAMES, body))
        }
    }

    fn mutation(&mut self, body: &Json, t: Option<TxnId>) -> Result<Reply, Error> {
        let ir = body
            .get("ir")
            .cloned()
            .ok_or_else(|| Error::new(ErrorCode::ProtocolError, "mutation body needs 'ir'"))?;
        let engine = &self.shared.engine;
        let op = ir
            .get("operation")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned();
        if op == "insert" {
            return self.insert(&ir, t);
        }
        match Request::from_json(ir)? {
            Request::Update(q) => Ok(affected(engine.update(t, &q)?, Vec::new())),
            Request::Delete(q) => Ok(affected(engine.delete(t, &q)?, Vec::new())),
            Request::Upsert(q) => {
                let schema = engine
                    .schema(&q.model)
                    .ok_or_else(|| Error::schema(format!("Unknown model '{}'", q.model)))?;
                let row = body
                    .get("row")
                    .filter(|r| !r.is_null())
                    .map(|r| row_from_json(r, &schema))
                    .transpose()?;
                let stored = engine.upsert(t, &q, row)?;
                let returning: Vec<Json> = stored.iter().map(row_json).collect();
                Ok(affected(returning.len() as u64, returning))
            }
            other => Err(other.not_served("auradb")),
        }
    }

    /// `{"operation":"insert","model","rows":[[...]],"on_conflict"}`: rows
    /// are positional like query results.
    fn insert(&mut self, ir: &Json, t: Option<TxnId>) -> Result<Reply, Error> {
        let engine = &self.shared.engine;
        let model = ir
            .get("model")
            .and_then(Json::as_str)
            .ok_or_else(|| Error::query("insert needs a model"))?;
        let schema = engine
            .schema(model)
            .ok_or_else(|| Error::schema(format!("Unknown model '{model}'")))?;
        let rows = ir
            .get("rows")
            .and_then(Json::as_array)
            .ok_or_else(|| Error::query("insert needs rows"))?
            .iter()
            .map(|r| row_from_json(r, &schema))
            .collect::<Result<Vec<_>, _>>()?;
        let mode = match ir.get("on_conflict").and_then(Json::as_str) {
            None => OnConflict::Error,
            Some("ignore") => OnConflict::Ignore,
            Some("replace") => OnConflict::Replace,
            Some(other) => {
                return Err(Error::query(format!(
                    "on_conflict must be None, 'ignore' or 'replace', got '{other}'"
                )))
            }
        };
        let n = engine.insert(t, model, rows, mode)?;
        Ok(affected(n, Vec::new()))
    }
}

fn affected(n: u64, returning: Vec<Json>) -> Reply {
    (
        Opcode::MutationResult,
        0,
        json!({"affected": n, "returning": returning}),
    )
}

fn result(_engine: &Engine, _model: &str, rows: &[ResultRow]) -> Json {
    let (rows, metadata) = result_rows_json(rows);
    json!({"rows": rows, "metadata": metadata})
}
