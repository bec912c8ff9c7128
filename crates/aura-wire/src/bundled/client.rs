//! A multiplexed bundled-protocol client (API.md §14): many requests in
//! flight on one TCP or TLS connection, responses matched by request id
//! (not by order). Connection policy follows the AWP client: the mode comes
//! from the scheme only, a decoding error or EOF fails every pending
//! request and closes (no resync), a request timeout closes too.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use aura_core::{Error, ErrorCode};
use parking_lot::Mutex;
use serde_json::{json, Value as Json};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::oneshot;

use super::frame::{self, Frame, Opcode, HEADER_LEN};
use crate::client::{connection_error, open_stream, protocol_error, ClientOptions, WriteStream};
use crate::io::Outbox;

/// Bundled-protocol settings on top of the shared connection options.
#[derive(Clone, Debug)]
pub struct BundledOptions {
    pub base: ClientOptions,
    /// zlib-compress request payloads (the server answers uncompressed).
    pub compression: bool,
    /// Append the payload CRC to every request frame.
    pub payload_checksum: bool,
}

type Waiter = oneshot::Sender<Result<Frame, Error>>;

struct State {
    pending: Mutex<HashMap<u64, Waiter>>,
    /// Closed when the connection fails, before its waiters are failed.
    outbox: OnceLock<Weak<Outbox<WriteStream>>>,
    closed: AtomicBool,
    cause: Mutex<Option<Error>>,
    address: String,
}

impl State {
    fn fail_all(&self, err: Error) {
        self.closed.store(true, Ordering::SeqCst);
        let stored = {
            let mut cause = self.cause.lock();
            cause.get_or_insert(err).clone()
        };
        if let Some(outbox) = self.outbox.get().and_then(Weak::upgrade) {
            outbox.close();
        }
        let drained: Vec<Waiter> = self.pending.lock().drain().map(|(_, w)| w).collect();
        for waiter in drained {
            let _ = waiter.send(Err(stored.clone()));
        }
    }
}

/// An ERROR body → the core error (API.md §14: the code names the class;
/// an unknown code is a server error). Retryable and context are kept.
pub fn error_from_body(payload: &[u8], request_id: u64) -> Error {
    let body: Json = serde_json::from_slice(payload).unwrap_or(Json::Null);
    let code = body
        .get("code")
        .and_then(Json::as_str)
        .and_then(ErrorCode::parse)
        .unwrap_or(ErrorCode::ServerError);
    let message = body
        .get("message")
        .and_then(Json::as_str)
        .unwrap_or("server error");
    let mut err = Error::new(code, message);
    err.retryable = body.get("retryable").and_then(Json::as_bool);
    for (k, v) in body
        .get("context")
        .and_then(Json::as_object)
        .into_iter()
        .flatten()
    {
        err = err.with_context(k.clone(), v.clone());
    }
    if request_id != 0 {
        err = err.with_context("request_id", request_id.to_string());
    }
    err
}

async fn reader_loop<R: AsyncRead + Unpin>(mut read: R, state: Arc<State>, max: usize) {
    loop {
        let mut head = [0u8; HEADER_LEN];
        if let Err(e) = read.read_exact(&mut head).await {
            let message = if e.kind() == std::io::ErrorKind::UnexpectedEof {
                format!("connection to {} closed by the server", state.address)
            } else {
                format!("connection to {} lost: {e}", state.address)
            };
            state.fail_all(connection_error(message));
            return;
        }
        let decoded = match frame::parse_header(&head, max) {
            Ok(header) => {
                let mut body = vec![0u8; header.body_len()];
                if read.read_exact(&mut body).await.is_err() {
                    state.fail_all(protocol_error(format!(
                        "truncated frame from {}: the stream ended inside the payload",
                        state.address
                    )));
                    return;
                }
                frame::decode_body(&header, &body, max)
            }
            Err(e) => Err(e),
        };
        let frame = match decoded {
            Ok(frame) => frame,
            Err(e) => {
                state.fail_all(e.to_error());
                return;
            }
        };
        if frame.request_id == 0 && frame.opcode == Opcode::Error {
            let err = error_from_body(&frame.payload, 0);
            state.fail_all(connection_error(format!(
                "server at {} closed the connection: {}",
                state.address, err.message
            )));
            return;
        }
        let waiter = state.pending.lock().remove(&frame.request_id);
        match waiter {
            Some(w) => {
                let _ = w.send(Ok(frame));
            }
            None => {
                state.fail_all(protocol_error(format!(
                    "response to unknown request {} from {}",
                    frame.request_id, state.address
                )));
                return;
            }
        }
    }
}

/// One open bundled-protocol connection.
pub struct BundledConnection {
    outbox: Arc<Outbox<WriteStream>>,
    next_id: AtomicU64,
    state: Arc<State>,
    reader: tokio::task::JoinHandle<()>,
    opts: BundledOptions,
    pub features: HashSet<String>,
    pub server_version: String,
}

impl BundledConnection {
    /// Connect and handshake, bounded by the connect timeout.
    pub async fn connect(opts: &BundledOptions) -> Result<Arc<BundledConnection>, Error> {
        let address = opts.base.address();
        match tokio::time::timeout(opts.base.connect_timeout, Self::connect_inner(opts)).await {
            Ok(result) => result,
            Err(_) => Err(connection_error(format!(
                "connecting to {address} timed out after {:.3}s",
                opts.base.connect_timeout.as_secs_f64()
            ))),
        }
    }

    async fn connect_inner(opts: &BundledOptions) -> Result<Arc<BundledConnection>, Error> {
        let stream = open_stream(&opts.base).await?;
        let (read, write) = tokio::io::split(stream);
        let state = Arc::new(State {
            pending: Mutex::new(HashMap::new()),
            outbox: OnceLock::new(),
            closed: AtomicBool::new(false),
            cause: Mutex::new(None),
            address: opts.base.address(),
        });
        let read = tokio::io::BufReader::with_capacity(crate::io::READ_BUFFER, read);
        let reader = tokio::spawn(reader_loop(read, state.clone(), opts.base.max_payload));
        let (failing, abort) = (state.clone(), reader.abort_handle());
        let outbox = Outbox::new(write, opts.base.request_timeout, move |why| {
            let err = format!("sending to {} failed: {why}", failing.address);
            failing.fail_all(connection_error(err));
            abort.abort();
        });
        let _ = state.outbox.set(Arc::downgrade(&outbox));
        let mut conn = BundledConnection {
            outbox,
            next_id: AtomicU64::new(1),
            state,
            reader,
            opts: opts.clone(),
            features: HashSet::new(),
            server_version: String::new(),
        };
        let auth = match &opts.base.token {
            Some(token) => json!({"authorization": format!("Bearer {token}")}),
            None => json!({}),
        };
        let hello =
            json!({"client_version": opts.base.client_version, "features": [], "auth": auth});
        let ack = match conn.request(Opcode::Handshake, 0, &hello).await {
            Ok(ack) => ack,
            Err(e) => {
                conn.close().await;
                return Err(e.with_context("address", opts.base.address()));
            }
        };
        if ack.opcode != Opcode::HandshakeAck {
            return Err(protocol_error(
                "HANDSHAKE was not answered with HANDSHAKE_ACK",
            ));
        }
        let body = json_of(&ack)?;
        conn.features = body
            .get("features")
            .and_then(Json::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(Json::as_str)
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        conn.server_version = body
            .get("server_version")
            .and_then(Json::as_str)
            .unwrap_or_default()
            .to_owned();
        Ok(Arc::new(conn))
    }

    pub fn is_closed(&self) -> bool {
        self.state.closed.load(Ordering::SeqCst)
    }

    /// Requests sent and not yet answered (a pool's load measure).
    pub fn in_flight(&self) -> usize {
        self.state.pending.lock().len()
    }

    pub async fn close(&self) {
        self.state.fail_all(connection_error(format!(
            "connection to {} closed",
            self.state.address
        )));
        self.outbox.shutdown().await;
        self.reader.abort();
    }

    fn closed_error(&self) -> Error {
        self.state.cause.lock().clone().unwrap_or_else(|| {
            connection_error(format!("connection to {} is closed", self.state.address))
        })
    }

    /// Send a request whose answer is not awaited (CURSOR_CLOSE from a
    /// synchronous close); it precedes every request sent after it.
    pub fn defer(&self, opcode: Opcode, txn: u64, body: &Json) {
        if !self.is_closed() {
            let _ = self.send(opcode, txn, body); // the answer is dropped
        }
    }

    fn encode(&self, opcode: Opcode, id: u64, txn: u64, body: &Json) -> Vec<u8> {
        let payload = if body.is_null() {
            Vec::new()
        } else {
            frame::sorted_json(body)
        };
        Frame::new(opcode, id, txn, payload)
            .encode(self.opts.compression, self.opts.payload_checksum)
    }

    /// Queue one request frame and register its waiter.
    fn send(
        &self,
        opcode: Opcode,
        txn: u64,
        body: &Json,
    ) -> Result<oneshot::Receiver<Result<Frame, Error>>, Error> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        // Encoded (and compressed) before the outbox's lock is taken.
        let frame = self.encode(opcode, id, txn, body);
        if frame.len() > HEADER_LEN + self.opts.base.max_payload + 4 {
            return Err(Error::query(format!(
                "request payload exceeds max_payload_bytes ({})",
                self.opts.base.max_payload
            )));
        }
        let (tx, rx) = oneshot::channel();
        self.outbox
            .send(&frame, || self.state.pending.lock().insert(id, tx))
            .ok_or_else(|| self.closed_error())?;
        Ok(rx)
    }

    /// Send one request and wait for its answer; ERROR becomes `Err`.
    pub async fn request(&self, opcode: Opcode, txn: u64, body: &Json) -> Result<Frame, Error> {
        let rx = self.send(opcode, txn, body)?;
        let timeout = self.opts.base.request_timeout;
        let frame = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(result)) => result?,
            Ok(Err(_)) => return Err(self.closed_error()),
            Err(_) => {
                let err = Error::timeout(format!(
                    "request to {} timed out after {:.3}s",
                    self.state.address,
                    timeout.as_secs_f64()
                ));
                self.close().await;
                return Err(err);
            }
        };
        if frame.opcode == Opcode::Error {
            return Err(error_from_body(&frame.payload, frame.request_id));
        }
        Ok(frame)
    }
}

impl Drop for BundledConnection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// The JSON body of a reply.
pub fn json_of(frame: &Frame) -> Result<Json, Error> {
    if frame.payload.is_empty() {
        return Ok(json!({}));
    }
    serde_json::from_slice(&frame.payload)
        .map_err(|_| protocol_error("reply body is not valid JSON"))
}
