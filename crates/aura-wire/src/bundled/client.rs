//! A multiplexed bundled-protocol client (API.md §14): many requests in
//! flight on one TCP or TLS connection, responses matched by request id
//! (not by order). Connection policy follows the AWP client: the mode comes
//! from the scheme only, a decoding error or EOF fails every pending
//! request and closes (no resync), a request timeout closes too.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use aura_core::{Error, ErrorCode};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::sync::oneshot;

use super::frame::{self, Frame, Opcode, HEADER_LEN};
use crate::client::{advertised, connection_error, open_stream, protocol_error, ClientOptions};
use crate::mux::{Link, Mux, Waiter};

/// Bundled-protocol settings on top of the shared connection options.
#[derive(Clone, Debug)]
pub struct BundledOptions {
    pub base: ClientOptions,
    /// zlib-compress request payloads (the server answers uncompressed).
    pub compression: bool,
    /// Append the payload CRC to every request frame.
    pub payload_checksum: bool,
}

/// Waiters by request id: the server may answer in any order.
type ById = HashMap<u64, Waiter<Frame>>;
type State = Link<ById>;

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
    mux: Mux<ById>,
    next_id: AtomicU64,
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
        let read = tokio::io::BufReader::with_capacity(crate::io::READ_BUFFER, read);
        let max = opts.base.max_payload;
        let timeout = opts.base.request_timeout;
        let mux = Mux::start(opts.base.address(), write, timeout, |link| {
            reader_loop(read, link, max)
        });
        let mut conn = BundledConnection {
            mux,
            next_id: AtomicU64::new(1),
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
        (conn.features, conn.server_version) = advertised(&json_of(&ack)?, "features");
        Ok(Arc::new(conn))
    }

    pub fn is_closed(&self) -> bool {
        self.mux.is_closed()
    }

    /// Requests sent and not yet answered (a pool's load measure).
    pub fn in_flight(&self) -> usize {
        self.mux.in_flight()
    }

    /// Close now; pending requests fail with a connection error.
    pub async fn close(&self) {
        self.mux.close().await;
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
        // Checked first so a closed connection spends no id or encoding
        // (`Mux::send` refuses it too).
        if self.is_closed() {
            return Err(self.mux.closed_error());
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
        self.mux.send(&frame, |pending, waiter| {
            pending.insert(id, waiter);
        })
    }

    /// Send one request and wait for its answer; ERROR becomes `Err`.
    pub async fn request(&self, opcode: Opcode, txn: u64, body: &Json) -> Result<Frame, Error> {
        let rx = self.send(opcode, txn, body)?;
        let frame = self.mux.answer(rx).await?;
        if frame.opcode == Opcode::Error {
            return Err(error_from_body(&frame.payload, frame.request_id));
        }
        Ok(frame)
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
