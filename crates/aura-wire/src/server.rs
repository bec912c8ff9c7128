//! An AWP 1 server over the in-memory engine (what `aura serve` runs).
//!
//! One tokio task per connection; requests on a connection are handled
//! strictly in order, one response each (AWP1.md §1). Transactions and
//! cursors belong to their connection and are dropped with it. Shutdown is
//! graceful: the listener stops, every connection finishes the request it
//! is handling, rolls back what it still holds and closes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aura_core::ir::Select;
use aura_core::{Error, ErrorCode, Value};
use aura_engine::{Engine, OnConflict, ResultRow, TxnId};
use parking_lot::RwLock;
use serde_json::{json, Value as Json};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, BufReader, BufWriter};
use tokio::sync::watch;

use crate::auth::TokenVerifier;
use crate::awp::{self, Catalog, Collection};
use crate::frame::{fatal_error_frame, Frame, Opcode, DEFAULT_MAX_PAYLOAD};
use crate::io::{holds_frame, queue_frame, read_frame, write_frame, ReadError, READ_BUFFER};
use crate::listener::{Accept, Session};
pub use crate::listener::{Listener, LogSink};
use crate::typed;

/// Capabilities this server advertises (a subset of AWP1.md §5.1: only
/// what it really serves).
pub const CAPABILITIES: &[&str] = &[
    "transactions",
    "secondary_indexes",
    "document_fields",
    "vector_exact_search",
    "relationships",
    "server_cursors",
    "explain",
    "observability",
    "authentication",
    "tls",
    "full_text_bm25_ranking",
    "hybrid_search",
    "aggregations_and_facets",
    "query_timeouts",
    "ranked_pagination",
    "approximate_vector_search_preview",
    "group_by_aggregation",
];

/// Server settings; defaults are AWP1.md §1.1's.
#[derive(Clone)]
pub struct ServerConfig {
    pub max_payload_bytes: usize,
    pub page_size: usize,
    pub cursor_timeout: Duration,
    pub transaction_timeout: Duration,
    /// 0 = no server deadline.
    pub max_query_time_ms: u64,
    pub max_query_limit: u64,
    pub max_vector_dimension: usize,
    pub token: Option<TokenVerifier>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub server_version: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            max_payload_bytes: DEFAULT_MAX_PAYLOAD,
            page_size: 100,
            cursor_timeout: Duration::from_secs(300),
            transaction_timeout: Duration::from_secs(300),
            max_query_time_ms: 30_000,
            max_query_limit: 1_000_000,
            max_vector_dimension: 4096,
            token: None,
            tls: None,
            server_version: env!("CARGO_PKG_VERSION").to_owned(),
        }
    }
}

struct Shared {
    engine: Arc<Engine>,
    config: ServerConfig,
    collections: RwLock<HashMap<String, Arc<Collection>>>,
    next_cursor: AtomicU64,
    open_cursors: Arc<AtomicUsize>,
    timeouts_total: AtomicU64,
}

impl Catalog for Shared {
    fn collection(&self, name: &str) -> Option<Arc<Collection>> {
        self.collections.read().get(name).cloned()
    }
}

/// Serves `engine` over AWP 1 on `addr` (on the current tokio runtime).
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
        collections: RwLock::new(HashMap::new()),
        next_cursor: AtomicU64::new(1),
        open_cursors: open_cursors.clone(),
        timeouts_total: AtomicU64::new(0),
    });
    let accept = Accept {
        label: "aura-serve",
        tls,
        log,
        session: move || Conn::new(shared.clone()),
    };
    Listener::start(addr, accept, open_cursors).await
}

/// Counts open cursors server-wide while it lives.
struct CursorGuard(Arc<AtomicUsize>);

impl CursorGuard {
    fn new(count: &Arc<AtomicUsize>) -> CursorGuard {
        count.fetch_add(1, Ordering::SeqCst);
        CursorGuard(count.clone())
    }
}

impl Drop for CursorGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

struct CursorState {
    _guard: CursorGuard,
    rows: std::collections::VecDeque<ResultRow>,
    coll: Arc<Collection>,
    projection: Vec<String>,
    last_used: Instant,
}

struct Conn {
    shared: Arc<Shared>,
    authenticated: bool,
    requests: u64,
    txns: HashMap<TxnId, Instant>,
    timed_out: Vec<TxnId>,
    cursors: HashMap<u64, CursorState>,
}

/// A request's answer: opcode, response txn id, payload.
type Reply = (Opcode, u64, Vec<u8>);

fn json_bytes(value: &Json) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}

fn wire(code: &str, message: &str) -> Error {
    awp::wire_error(code, message)
}

/// The wire code and retryable flag of an error (AWP1.md §4.2).
fn wire_code_of(err: &Error) -> (String, Option<bool>) {
    if let Some(code) = err.context_value("wire_code").and_then(Json::as_str) {
        let retryable = match code {
            "invalid_request"
            | "schema_violation"
            | "unique_violation"
            | "not_found"
            | "unsupported"
            | "unauthenticated"
            | "invalid_credentials" => Some(false),
            "conflict" | "transaction_timeout" | "not_leader" => Some(true),
            _ => None,
        };
        return (code.to_owned(), retryable);
    }
    let code = match err.code {
        ErrorCode::Conflict => "conflict",
        ErrorCode::ConstraintViolation if err.context_value("referenced_by").is_some() => {
            "conflict"
        }
        ErrorCode::ConstraintViolation
            if err.message.contains("cannot be null")
                || err.message.contains("missing primary key") =>
        {
            "schema_violation"
        }
        ErrorCode::ConstraintViolation => "unique_violation",
        ErrorCode::ValidationError | ErrorCode::SerializationError => "schema_violation",
        ErrorCode::NotFound => "not_found",
        ErrorCode::Timeout => "query_timeout",
        ErrorCode::QueryError => "invalid_request",
        ErrorCode::SchemaError if err.message.starts_with("Unknown model") => "not_found",
        ErrorCode::SchemaError => "schema_violation",
        ErrorCode::BackendCapabilityError => "unsupported",
        _ => "internal",
    };
    let retryable = match code {
        "conflict" => Some(true),
        "query_timeout" | "internal" => None,
        _ => Some(false),
    };
    (code.to_owned(), retryable)
}

fn error_reply(err: &Error, txn: u64) -> Reply {
    let (code, retryable) = wire_code_of(err);
    let message = if err.context_value("wire_code").is_some() {
        err.message.clone()
    } else {
        let category = match code.as_str() {
            "conflict" => "transaction conflict",
            "unique_violation" => "unique constraint violation",
            "schema_violation" => "schema violation",
            "not_found" => "not found",
            "query_timeout" => "query timed out",
            "invalid_request" => "invalid request",
            "unsupported" => "unsupported",
            _ => "internal error",
        };
        format!("{category}: {}", err.message)
    };
    (
        Opcode::Error,
        txn,
        crate::frame::error_payload(&code, &message, retryable),
    )
}

impl Session for Conn {
    /// Roll back every transaction this connection still holds.
    fn release(&mut self) {
        for (txn, _) in self.txns.drain() {
            let _ = self.shared.engine.rollback(txn);
        }
        self.cursors.clear();
    }

    async fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        stream: S,
        mut stop: watch::Receiver<bool>,
    ) -> String {
        let (reader, writer) = tokio::io::split(stream);
        let mut reader = BufReader::with_capacity(READ_BUFFER, reader);
        let mut writer = BufWriter::new(writer);
        let max = self.shared.config.max_payload_bytes;
        loop {
            let frame = tokio::select! {
                _ = stop.changed() => {
                    let _ = writer.flush().await;
                    return "shutdown".to_owned();
                }
                read = read_frame(&mut reader, max) => read,
            };
            let frame = match frame {
                Ok(Some(frame)) => frame,
                Ok(None) => return "eof".to_owned(),
                Err(ReadError::Frame(err)) => {
                    let _ = write_frame(&mut writer, &fatal_error_frame(&err)).await;
                    return format!("fatal_{}", err.wire_code());
                }
                Err(ReadError::EarlyEof) => {
                    let payload = crate::frame::error_payload("io", "io error: early eof", None);
                    let _ =
                        write_frame(&mut writer, &Frame::new(Opcode::Error, 0, 0, payload)).await;
                    return "early_eof".to_owned();
                }
                Err(ReadError::ShortHeader(_)) => return "eof_in_header".to_owned(),
                Err(ReadError::Io(_)) => return "io_error".to_owned(),
            };
            self.requests += 1;
            let (opcode, txn, payload) = self.handle(&frame);
            let reply = Frame::new(opcode, frame.request_id, txn, payload);
            // Replies to pipelined requests go out together: flush only
            // when the next request is not already here in full.
            let sent = match holds_frame(reader.buffer(), max) {
                true => queue_frame(&mut writer, &reply).await,
                false => write_frame(&mut writer, &reply).await,
            };
            if sent.is_err() {
                return "io_error".to_owned();
            }
        }
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
            timed_out: Vec::new(),
            cursors: HashMap::new(),
        }
    }

    fn handle(&mut self, frame: &Frame) -> Reply {
        let txn = frame.txn_id;
        if frame.opcode.is_response() {
            let err = wire(
                "protocol",
                &format!(
                    "protocol error: opcode 0x{:02x} is not a request",
                    frame.opcode.as_u8()
                ),
            );
            return error_reply(&err, txn);
        }
        let gated = !matches!(
            frame.opcode,
            Opcode::Hello | Opcode::Auth | Opcode::Ping | Opcode::Health
        );
        if gated && !self.authenticated {
            let err = wire(
                "unauthenticated",
                "unauthenticated: authentication required before this operation",
            );
            return error_reply(&err, txn);
        }
        let reaped_cursor_deadline = self.shared.config.cursor_timeout;
        self.cursors
            .retain(|_, c| c.last_used.elapsed() < reaped_cursor_deadline);
        match self.dispatch(frame) {
            Ok(reply) => reply,
            Err(err) => {
                let echo = match frame.opcode {
                    Opcode::Hello
                    | Opcode::Auth
                    | Opcode::Health
                    | Opcode::SchemaGet
                    | Opcode::SchemaList
                    | Opcode::Explain
                    | Opcode::MigrationEstimate => 0,
                    _ => txn,
                };
                error_reply(&err, echo)
            }
        }
    }

    fn parse(frame: &Frame) -> Result<Json, Error> {
        if frame.payload.is_empty() {
            return Err(wire("protocol", "protocol error: payload deserialization failed: EOF while parsing a value at line 1 column 0"));
        }
        serde_json::from_slice(&frame.payload).map_err(|e| {
            wire(
                "protocol",
                &format!("protocol error: payload deserialization failed: {e}"),
            )
        })
    }

    fn ok(value: &Json, txn: u64) -> Result<Reply, Error> {
        Ok((Opcode::Ok, txn, json_bytes(value)))
    }

    /// The transaction a request names: `None` for 0, an error for an id
    /// this connection does not hold.
    fn txn(&mut self, id: u64) -> Result<Option<TxnId>, Error> {
        if id == 0 {
            return Ok(None);
        }
        if let Some(pos) = self.timed_out.iter().position(|t| *t == id) {
            self.timed_out.remove(pos);
            return Err(wire(
                "transaction_timeout",
                &format!("transaction timed out: transaction {id}"),
            ));
        }
        let timeout = self.shared.config.transaction_timeout;
        match self.txns.get_mut(&id) {
            Some(last) if !timeout.is_zero() && last.elapsed() >= timeout => {
                self.txns.remove(&id);
                let _ = self.shared.engine.rollback(id);
                self.shared.timeouts_total.fetch_add(1, Ordering::Relaxed);
                Err(wire(
                    "transaction_timeout",
                    &format!("transaction timed out: transaction {id}"),
                ))
            }
            Some(last) => {
                *last = Instant::now();
                Ok(Some(id))
            }
            None => Err(wire("not_found", &format!("not found: transaction {id}"))),
        }
    }

    fn dispatch(&mut self, frame: &Frame) -> Result<Reply, Error> {
        let txn = frame.txn_id;
        let shared = self.shared.clone();
        let engine = &shared.engine;
        match frame.opcode {
            Opcode::Ping => Ok((Opcode::Pong, txn, frame.payload.clone())),
            Opcode::Hello => self.hello(frame),
            Opcode::Auth => {
                let body = Self::parse(frame)?;
                let token = body
                    .get("token")
                    .and_then(Json::as_str)
                    .ok_or_else(|| wire("protocol", "protocol error: payload deserialization failed: missing field `token`"))?;
                match &shared.config.token {
                    Some(verifier) if !verifier.verify(token) => {
                        Err(wire("invalid_credentials", "invalid credentials"))
                    }
                    _ => {
                        self.authenticated = true;
                        Ok((Opcode::AuthResult, 0, json_bytes(&json!({"authenticated": true}))))
                    }
                }
            }
            Opcode::Health => {
                let health = json!({
                    "status": "healthy",
                    "ready": true,
                    "version": shared.config.server_version,
                    "collections": shared.collections.read().len(),
                    "mvcc": {
                        "active_transactions": self.txns.len(),
                        "timed_out_transactions": 0,
                        "retained_versions": 0,
                        "transaction_timeouts_total": shared.timeouts_total.load(Ordering::Relaxed),
                        "transaction_timeout_secs": shared.config.transaction_timeout.as_secs(),
                        "gc_enabled": true,
                    },
                });
                Ok((Opcode::HealthResult, 0, json_bytes(&health)))
            }
            Opcode::SchemaCreate => {
                let body = Self::parse(frame)?;
                let coll = awp::parse_collection(&body)?;
                for kind in &coll.kinds {
                    if let awp::WireKind::Vector(dim) = kind {
                        if *dim > shared.config.max_vector_dimension {
                            return Err(wire(
                                "limit_exceeded",
                                &format!(
                                    "limit exceeded: vector dimension {dim} exceeds max {}",
                                    shared.config.max_vector_dimension
                                ),
                            ));
                        }
                    }
                }
                engine.create_table(coll.schema.clone()).map_err(|e| {
                    wire("unsupported", &format!("unsupported: replacing a schema that holds records ({})", e.message))
                })?;
                let name = coll.schema.name.clone();
                shared.collections.write().insert(name, Arc::new(coll));
                Self::ok(&json!({"ok": true}), txn)
            }
            Opcode::SchemaDrop => {
                let body = Self::parse(frame)?;
                let name = body.get("name").and_then(Json::as_str).unwrap_or_default();
                if shared.collections.write().remove(name).is_none() {
                    return Err(wire("not_found", &format!("not found: collection {name}")));
                }
                engine.drop_table(name)?;
                Self::ok(&json!({"ok": true}), txn)
            }
            Opcode::SchemaGet => {
                let body = Self::parse(frame)?;
                let name = body.get("name").and_then(Json::as_str).unwrap_or_default();
                let coll = shared
                    .collection(name)
                    .ok_or_else(|| wire("not_found", &format!("not found: collection {name}")))?;
                Self::ok(&coll.awp, 0)
            }
            Opcode::SchemaList => {
                let mut all: Vec<(String, Json)> = shared
                    .collections
                    .read()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.awp.clone()))
                    .collect();
                all.sort_by(|a, b| a.0.cmp(&b.0));
                Self::ok(&Json::Array(all.into_iter().map(|(_, v)| v).collect()), 0)
            }
            Opcode::Query => {
                // A plain find skips the generic JSON tree; anything else,
                // errors included, takes the generic path.
                if let Some((q, coll)) = typed::find_request(&frame.payload, shared.as_ref()) {
                    let t = self.txn(txn)?;
                    let q = self.bound(q)?;
                    return self.find(q, coll, t, txn);
                }
                let body = Self::parse(frame)?;
                let t = self.txn(txn)?;
                self.query(&body, t, txn)
            }
            Opcode::Mutate => {
                let body = Self::parse(frame)?;
                let t = self.txn(txn)?;
                self.mutate(&body, t, txn)
            }
            Opcode::CursorFetch => {
                let body = Self::parse(frame)?;
                self.txn(txn)?;
                let id = body
                    .get("cursor_id")
                    .and_then(Json::as_u64)
                    .ok_or_else(|| wire("protocol", "protocol error: payload deserialization failed: missing field `cursor_id`"))?;
                let limit = body.get("limit").and_then(Json::as_u64).unwrap_or(1).max(1);
                self.check_limit("limit", limit)?;
                let cursor = self
                    .cursors
                    .get_mut(&id)
                    .ok_or_else(|| wire("not_found", &format!("not found: cursor {id}")))?;
                cursor.last_used = Instant::now();
                let take = (limit as usize).min(cursor.rows.len());
                let batch: Vec<ResultRow> = cursor.rows.drain(..take).collect();
                let page = typed::PageOut {
                    rows: typed::RowsOut::new(&batch, &cursor.coll, &cursor.projection, shared.as_ref()),
                    cursor_id: (!cursor.rows.is_empty()).then_some(id),
                    next_cursor: None,
                }
                .to_vec();
                if cursor.rows.is_empty() {
                    self.cursors.remove(&id);
                }
                Ok((Opcode::QueryResult, txn, page))
            }
            Opcode::CursorClose => {
                let body = Self::parse(frame)?;
                if let Some(id) = body.get("cursor_id").and_then(Json::as_u64) {
                    self.cursors.remove(&id);
                }
                Self::ok(&json!({"ok": true}), txn)
            }
            Opcode::Explain => {
                let body = Self::parse(frame)?;
                let t = self.txn(txn)?;
                self.explain(&body, t)
            }
            Opcode::MigrationEstimate => Err(wire(
                "unsupported",
                "unsupported: migration_estimate (this single-node release does not implement this)",
            )),
            Opcode::TxnBegin => {
                let id = engine.begin();
                self.txns.insert(id, Instant::now());
                Ok((Opcode::Ok, id, json_bytes(&json!({"txn_id": id}))))
            }
            Opcode::TxnCommit => {
                let id = self.txn(txn)?.ok_or_else(|| wire("not_found", "not found: transaction 0"))?;
                self.txns.remove(&id);
                engine.commit(id)?;
                Self::ok(&json!({"ok": true}), txn)
            }
            Opcode::TxnRollback => {
                let id = self.txn(txn)?.ok_or_else(|| wire("not_found", "not found: transaction 0"))?;
                self.txns.remove(&id);
                engine.rollback(id)?;
                Self::ok(&json!({"ok": true}), txn)
            }
            _ => Err(wire("protocol", "protocol error: unexpected opcode")),
        }
    }

    fn hello(&mut self, frame: &Frame) -> Result<Reply, Error> {
        let body = Self::parse(frame)?;
        let version = body
            .get("protocol_version")
            .and_then(Json::as_u64)
            .ok_or_else(|| wire("protocol", "protocol error: payload deserialization failed: missing field `protocol_version`"))?;
        if version > 255 {
            return Err(wire(
                "protocol",
                "protocol error: payload deserialization failed: protocol_version out of range",
            ));
        }
        let config = &self.shared.config;
        if let (Some(verifier), Some(token)) =
            (&config.token, body.get("auth_token").and_then(Json::as_str))
        {
            if verifier.verify(token) {
                self.authenticated = true;
            }
        }
        let ack = json!({
            "protocol_version": version.min(1),
            "capabilities": {
                "server_version": config.server_version,
                "protocol_version": 1,
                "capabilities": CAPABILITIES,
            },
            "auth_required": config.token.is_some(),
            "authenticated": self.authenticated,
        });
        Ok((Opcode::HelloAck, 0, json_bytes(&ack)))
    }

    fn check_limit(&self, what: &str, value: u64) -> Result<(), Error> {
        let max = self.shared.config.max_query_limit;
        if value > max {
            return Err(wire(
                "limit_exceeded",
                &format!("limit exceeded: {what} {value} exceeds max {max}"),
            ));
        }
        Ok(())
    }

    fn bounded_select(&self, body: &Json) -> Result<(Select, Arc<Collection>), Error> {
        let (q, coll) = awp::select_from_wire(body, self.shared.as_ref())?;
        Ok((self.bound(q)?, coll))
    }

    /// The server's limits on a select: `limit`/`offset` checked, the
    /// deadline set.
    fn bound(&self, mut q: Select) -> Result<Select, Error> {
        if let Some(l) = q.limit {
            self.check_limit("limit", l)?;
        }
        if let Some(o) = q.offset {
            self.check_limit("offset", o)?;
        }
        q.timeout_ms = self.deadline(q.timeout_ms);
        Ok(q)
    }

    /// The query deadline: the server's, lowered by the client's (§1.1).
    fn deadline(&self, client: Option<u64>) -> Option<u64> {
        match (client, self.shared.config.max_query_time_ms) {
            (Some(c), 0) => Some(c),
            (Some(c), s) => Some(c.min(s)),
            (None, 0) => None,
            (None, s) => Some(s),
        }
    }

    /// `search_page`: one ranked page and the opaque next cursor (§3.7).
    /// The find's limit/offset are ignored; `k`/`top_k` bound the ranking.
    fn search_page(&mut self, body: &Json, t: Option<TxnId>, txn: u64) -> Result<Reply, Error> {
        let shared = self.shared.clone();
        let mut find = body
            .get("find")
            .filter(|f| f.is_object())
            .cloned()
            .ok_or_else(|| {
                wire(
                    "protocol",
                    "protocol error: payload deserialization failed: missing field `find`",
                )
            })?;
        if let Some(obj) = find.as_object_mut() {
            obj.remove("limit");
            obj.remove("offset");
        }
        let page_size = body
            .get("page_size")
            .and_then(Json::as_u64)
            .ok_or_else(|| {
                wire(
                    "protocol",
                    "protocol error: payload deserialization failed: missing field `page_size`",
                )
            })?;
        if page_size == 0 {
            return Err(wire(
                "invalid_request",
                "invalid request: page_size must be at least 1",
            ));
        }
        self.check_limit("page_size", page_size)?;
        let (mut q, coll) = self.bounded_select(&find)?;
        if !(q.vector.is_some() || q.text_search.is_some() || q.hybrid.is_some()) {
            return Err(wire(
                "invalid_request",
                "invalid request: search_page needs exactly one ranked clause",
            ));
        }
        q.page_size = Some(page_size);
        q.cursor = match body.get("cursor") {
            None | Some(Json::Null) => None,
            Some(Json::String(c)) => Some(json!(c)),
            Some(_) => {
                return Err(wire(
                    "invalid_request",
                    "invalid request: invalid cursor token",
                ))
            }
        };
        let (out, next) = shared.engine.search_page(t, &q)?;
        let page = typed::PageOut {
            rows: typed::RowsOut::new(&out.rows, &coll, &q.projection, shared.as_ref()),
            cursor_id: None,
            next_cursor: next.as_deref(),
        };
        Ok((Opcode::QueryResult, txn, page.to_vec()))
    }

    /// `find`: the first page, the rest held in a new cursor (§3.8).
    fn find(
        &mut self,
        q: Select,
        coll: Arc<Collection>,
        t: Option<TxnId>,
        txn: u64,
    ) -> Result<Reply, Error> {
        let shared = self.shared.clone();
        let out = shared.engine.select(t, &q)?;
        let mut rows: std::collections::VecDeque<ResultRow> = out.rows.into();
        let first: Vec<ResultRow> = rows
            .drain(..shared.config.page_size.min(rows.len()))
            .collect();
        let mut cursor_id = None;
        if !rows.is_empty() {
            let id = shared.next_cursor.fetch_add(1, Ordering::SeqCst);
            self.cursors.insert(
                id,
                CursorState {
                    _guard: CursorGuard::new(&shared.open_cursors),
                    rows,
                    coll: coll.clone(),
                    projection: q.projection.clone(),
                    last_used: Instant::now(),
                },
            );
            cursor_id = Some(id);
        }
        let page = typed::PageOut {
            rows: typed::RowsOut::new(&first, &coll, &q.projection, shared.as_ref()),
            cursor_id,
            next_cursor: None,
        };
        Ok((Opcode::QueryResult, txn, page.to_vec()))
    }

    fn query(&mut self, body: &Json, t: Option<TxnId>, txn: u64) -> Result<Reply, Error> {
        let shared = self.shared.clone();
        let kind = body.get("query").and_then(Json::as_str).ok_or_else(|| {
            wire(
                "protocol",
                "protocol error: payload deserialization failed: missing field `query`",
            )
        })?;
        match kind {
            "find" => {
                let (q, coll) = self.bounded_select(body)?;
                self.find(q, coll, t, txn)
            }
            "count" => {
                let q = awp::filtered_from_wire(body, shared.as_ref())?;
                let n = shared.engine.count(t, &q)?;
                Self::ok(&json!({"count": n}), txn)
            }
            "exists" => {
                let q = awp::filtered_from_wire(body, shared.as_ref())?;
                let found = shared.engine.exists(t, &q)?;
                Self::ok(&json!({"exists": found}), txn)
            }
            "aggregate" => {
                let all = shared.config.max_query_limit;
                let (mut q, group_limit) = awp::aggregate_from_wire(body, shared.as_ref(), all)?;
                q.timeout_ms = self.deadline(q.timeout_ms);
                let result = shared.engine.aggregate(t, &q)?;
                let wire = awp::aggregate_result_to_wire(&result, group_limit);
                Ok((Opcode::QueryResult, txn, json_bytes(&wire)))
            }
            "search_page" => self.search_page(body, t, txn),
            other => Err(wire(
                "protocol",
                &format!(
                    "protocol error: payload deserialization failed: unknown variant `{other}`"
                ),
            )),
        }
    }

    fn mutate(&mut self, body: &Json, t: Option<TxnId>, txn: u64) -> Result<Reply, Error> {
        let shared = self.shared.clone();
        let engine = &shared.engine;
        let kind = body.get("mutation").and_then(Json::as_str).ok_or_else(|| {
            wire(
                "protocol",
                "protocol error: payload deserialization failed: missing field `mutation`",
            )
        })?;
        let name = body
            .get("collection")
            .and_then(Json::as_str)
            .ok_or_else(|| {
                wire(
                    "protocol",
                    "protocol error: payload deserialization failed: missing field `collection`",
                )
            })?;
        let coll = shared
            .collection(name)
            .ok_or_else(|| wire("not_found", &format!("not found: collection {name}")))?;
        let pk_pos = coll.schema.pk_index().unwrap_or(0);
        let id_of = |row: &[Value]| {
            let pk = row
                .get(pk_pos)
                .map(|v| awp::wrap_value(v, coll.kinds[pk_pos]))
                .unwrap_or(Json::Null);
            awp::record_id(name, &pk)
        };
        let result = |inserted: u64, updated: u64, deleted: u64, ids: Vec<String>| json!({"inserted": inserted, "updated": updated, "deleted": deleted, "ids": ids});
        match kind {
            "insert" | "upsert" => {
                let fields = body.get("fields").ok_or_else(|| {
                    wire(
                        "protocol",
                        "protocol error: payload deserialization failed: missing field `fields`",
                    )
                })?;
                let row = awp::record_from_wire(fields, &coll)?;
                let id = id_of(&row);
                if kind == "insert" {
                    engine.insert(t, name, vec![row.into()], OnConflict::Error)?;
                    return Self::ok(&result(1, 0, 0, vec![id]), txn);
                }
                let pk = awp::wrap_value(&row[pk_pos], coll.kinds[pk_pos]);
                let exists_q = aura_core::ir::Filtered::new(
                    name,
                    vec![awp::filter_from_wire(
                        &json!({"type": "compare", "field": coll.schema.pk_name(), "op": "eq", "value": pk}),
                        &coll,
                    )?],
                );
                let existed = engine.exists(t, &exists_q)?;
                engine.insert(t, name, vec![row.into()], OnConflict::Replace)?;
                let (ins, upd) = if existed { (0, 1) } else { (1, 0) };
                Self::ok(&result(ins, upd, 0, vec![id]), txn)
            }
            "bulk_insert" => {
                let records = body
                    .get("records")
                    .and_then(Json::as_array)
                    .ok_or_else(|| wire("protocol", "protocol error: payload deserialization failed: missing field `records`"))?;
                let rows = records
                    .iter()
                    .map(|r| awp::record_from_wire(r, &coll))
                    .collect::<Result<Vec<_>, _>>()?;
                let ids: Vec<String> = rows.iter().map(|r| id_of(r)).collect();
                let n = engine.insert(
                    t,
                    name,
                    rows.into_iter().map(Into::into).collect(),
                    OnConflict::Error,
                )?;
                Self::ok(&result(n, 0, 0, ids), txn)
            }
            "update" => {
                let filters = match body.get("filter") {
                    None | Some(Json::Null) => Vec::new(),
                    Some(f) => vec![awp::filter_from_wire(f, &coll)?],
                };
                let set = awp::set_from_wire(body.get("set").unwrap_or(&Json::Null), &coll)?;
                let q = aura_core::ir::Update {
                    model: name.to_owned(),
                    filters,
                    set,
                };
                let n = engine.update(t, &q)?;
                Self::ok(&result(0, n, 0, Vec::new()), txn)
            }
            "delete" => {
                let filters = match body.get("filter") {
                    None | Some(Json::Null) => Vec::new(),
                    Some(f) => vec![awp::filter_from_wire(f, &coll)?],
                };
                let n = engine.delete(t, &aura_core::ir::Filtered::new(name, filters))?;
                Self::ok(&result(0, 0, n, Vec::new()), txn)
            }
            other => Err(wire(
                "protocol",
                &format!(
                    "protocol error: payload deserialization failed: unknown variant `{other}`"
                ),
            )),
        }
    }

    fn explain(&mut self, body: &Json, t: Option<TxnId>) -> Result<Reply, Error> {
        let shared = self.shared.clone();
        let (q, coll) = self.bounded_select(body)?;
        let path = shared.engine.plan(&q)?;
        let described = path.describe();
        let access = described
            .get("access")
            .and_then(Json::as_str)
            .unwrap_or("full_scan");
        let (strategy, used_index) = if q.hybrid.is_some() {
            ("hybrid", Json::Null)
        } else if q.text_search.is_some() {
            ("full_text_bm25", Json::Null)
        } else if q.vector.is_some() {
            ("vector_exact_scan", Json::Null)
        } else if access == "full_scan" {
            ("full_scan", Json::Null)
        } else {
            (
                "index_lookup",
                described.get("field").cloned().unwrap_or(Json::Null),
            )
        };
        let total = shared.engine.row_count(&coll.schema.name).unwrap_or(0);
        let mut plan = json!({
            "collection": coll.schema.name,
            "strategy": strategy,
            "used_index": used_index,
            "estimated_candidates": total,
            "filter_present": !q.filters.is_empty(),
            "vector": body.get("vector").cloned().unwrap_or(Json::Null),
            "text_search": body.get("text_search").cloned().unwrap_or(Json::Null),
            "hybrid": body.get("hybrid").cloned().unwrap_or(Json::Null),
            "order_by": body.get("order_by").cloned().unwrap_or_else(|| json!([])),
            "includes": body.get("includes").cloned().unwrap_or_else(|| json!([])),
            "warnings": [],
            "estimated_rows": total,
            "estimated_cost": total,
            "plan_tree": {"node": access},
        });
        if body.get("analyze").and_then(Json::as_bool) == Some(true) {
            let started = Instant::now();
            let out = shared.engine.select(t, &q)?;
            plan["analysis"] = json!({
                "scanned_rows": total,
                "matched_rows": out.rows.len(),
                "returned_rows": out.rows.len(),
                "execution_micros": started.elapsed().as_micros() as u64,
                "planning_micros": 0,
                "estimated_rows": total,
                "stale_stats": false,
                "timeout_checked": q.timeout_ms.is_some(),
            });
        }
        Ok((Opcode::Ok, 0, json_bytes(&plan)))
    }
}
