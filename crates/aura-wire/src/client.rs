//! An AWP 1 client connection: TCP or TLS chosen strictly by the scheme,
//! HELLO + token auth, and many requests in flight at once.
//!
//! The server answers strictly in request order (AWP1.md §1), so a FIFO of
//! pending requests correlates responses; each response's request id is
//! checked against the head of the queue. A frame is queued and its waiter
//! registered under one lock (the outbox's, in `mux::Mux`, shared with the
//! bundled client), so the queue order is the wire order. A framing error, an id mismatch, an
//! id-0 ERROR, EOF or a timeout closes the connection and fails every
//! pending request (never a resync).

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aura_core::{Error, ErrorCode};
use serde_json::{json, Value as Json};
use tokio::io::{AsyncRead, AsyncWrite, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

use crate::frame::{Frame, Opcode};
use crate::io::{read_frame, ReadError, READ_BUFFER};
use crate::mux::{Link, Mux, Waiter};
use crate::tls::{client_config, ClientTls};

/// Connection settings.
#[derive(Clone)]
pub struct ClientOptions {
    pub host: String,
    pub port: u16,
    pub tls: Option<ClientTls>,
    pub token: Option<String>,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Largest response payload accepted.
    pub max_payload: usize,
    pub client_version: String,
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("tls", &self.tls.is_some())
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish()
    }
}

impl ClientOptions {
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

pub(crate) trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// The writing half of a connection's stream.
pub(crate) type WriteStream = WriteHalf<Pin<Box<dyn Stream>>>;

/// Waiters in request order: the server answers in that order.
type InOrder = VecDeque<(u128, Waiter<Frame>)>;
type State = Link<InOrder>;

/// A decoded server answer (anything but ERROR).
#[derive(Debug, Clone)]
pub struct Reply {
    pub opcode: Opcode,
    pub txn_id: u64,
    pub request_id: u128,
    pub payload: Vec<u8>,
}

impl Reply {
    pub fn json(&self) -> Result<Json, Error> {
        serde_json::from_slice(&self.payload)
            .map_err(|_| protocol_error("response payload is not valid JSON"))
    }
}

/// One open AWP connection.
pub struct Connection {
    mux: Mux<InOrder>,
    next_id: AtomicU64,
    pub capabilities: HashSet<String>,
    pub server_version: String,
    pub auth_required: bool,
    requests: AtomicU64,
}

pub fn connection_error(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::ConnectionError, message)
}

pub fn protocol_error(message: impl Into<String>) -> Error {
    Error::new(ErrorCode::ProtocolError, message)
}

fn auth_error(message: &str) -> Error {
    Error::new(ErrorCode::AuthenticationError, message)
}

/// Map an ERROR payload to the core error: the wire code stays in the
/// context under `wire_code` (the Python mapping keys on it), with the
/// server's retryable tri-state and the request id.
pub fn server_error(payload: &[u8], request_id: u128) -> Error {
    let body: Json = serde_json::from_slice(payload).unwrap_or(Json::Null);
    let code = body
        .get("code")
        .and_then(Json::as_str)
        .unwrap_or("internal");
    let message = body
        .get("message")
        .and_then(Json::as_str)
        .unwrap_or("server error");
    let mut err = Error::new(ErrorCode::ServerError, message)
        .with_context("wire_code", code)
        .with_context("request_id", request_id.to_string());
    err.retryable = body.get("retryable").and_then(Json::as_bool);
    if let Some(nl) = body.get("not_leader").filter(|v| v.is_object()) {
        err = err.with_context("not_leader", nl.clone());
    }
    err
}

async fn reader_loop<R: AsyncRead + Unpin>(mut read: R, state: Arc<State>, max: usize) {
    loop {
        let frame = match read_frame(&mut read, max).await {
            Ok(Some(frame)) => frame,
            Ok(None) => {
                state.fail_all(connection_error(format!(
                    "connection to {} closed by the server",
                    state.address
                )));
                return;
            }
            Err(ReadError::Frame(e)) => {
                state.fail_all(protocol_error(format!(
                    "invalid frame from {}: {e}",
                    state.address
                )));
                return;
            }
            Err(ReadError::EarlyEof) => {
                state.fail_all(protocol_error(format!(
                    "truncated frame from {}: the stream ended inside the payload",
                    state.address
                )));
                return;
            }
            Err(ReadError::ShortHeader(bytes)) => {
                // 15 03 0x: a TLS alert record, the answer of a TLS listener.
                let err = if bytes.len() >= 2 && bytes[0] == 0x15 && bytes[1] == 0x03 {
                    connection_error(format!(
                        "{} answered with a TLS alert: it is a TLS listener (use auradbs://)",
                        state.address
                    ))
                } else {
                    protocol_error(format!(
                        "truncated frame from {}: the stream ended inside the header",
                        state.address
                    ))
                };
                state.fail_all(err);
                return;
            }
            Err(ReadError::Io(e)) => {
                state.fail_all(connection_error(format!(
                    "connection to {} lost: {e}",
                    state.address
                )));
                return;
            }
        };
        if frame.request_id == 0 && frame.opcode == Opcode::Error {
            // Fatal: the server is closing this connection (§4.3).
            let err = server_error(&frame.payload, 0);
            state.fail_all(connection_error(format!(
                "server at {} closed the connection: {}",
                state.address, err.message
            )));
            return;
        }
        let head = state.pending.lock().pop_front();
        match head {
            Some((id, waiter)) if id == frame.request_id => {
                let _ = waiter.send(Ok(frame));
            }
            Some((id, waiter)) => {
                let err = protocol_error(format!(
                    "response id {} does not match request {id}",
                    frame.request_id
                ));
                let _ = waiter.send(Err(err.clone()));
                state.fail_all(err);
                return;
            }
            None => {
                state.fail_all(protocol_error("unsolicited frame from the server"));
                return;
            }
        }
    }
}

/// The names a handshake answer lists under `key`, and its
/// `server_version`.
pub(crate) fn advertised(body: &Json, key: &str) -> (HashSet<String>, String) {
    let names = body
        .get(key)
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .filter_map(Json::as_str)
        .map(str::to_owned)
        .collect();
    let version = body.get("server_version").and_then(Json::as_str);
    (names, version.unwrap_or_default().to_owned())
}

pub(crate) async fn open_stream(opts: &ClientOptions) -> Result<Pin<Box<dyn Stream>>, Error> {
    let address = opts.address();
    let tcp = TcpStream::connect((opts.host.as_str(), opts.port))
        .await
        .map_err(|e| connection_error(format!("cannot connect to {address}: {e}")))?;
    let _ = tcp.set_nodelay(true);
    let Some(tls) = &opts.tls else {
        return Ok(Box::pin(tcp));
    };
    let config = client_config(tls)
        .map_err(|e| Error::new(ErrorCode::ConfigError, format!("TLS configuration: {e}")))?;
    let name = rustls::pki_types::ServerName::try_from(opts.host.clone())
        .map_err(|_| connection_error(format!("invalid TLS server name '{}'", opts.host)))?;
    let stream = tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| connection_error(format!("TLS handshake with {address} failed: {e}")))?;
    Ok(Box::pin(stream))
}

impl Connection {
    /// Connect, handshake (HELLO), authenticate. Bounded by the connect
    /// timeout as a whole.
    pub async fn connect(opts: &ClientOptions) -> Result<Arc<Connection>, Error> {
        let address = opts.address();
        match tokio::time::timeout(opts.connect_timeout, Self::connect_inner(opts)).await {
            Ok(result) => result,
            Err(_) => Err(Error::new(
                ErrorCode::ConnectionError,
                format!(
                    "connecting to {address} timed out after {:.3}s",
                    opts.connect_timeout.as_secs_f64()
                ),
            )),
        }
    }

    async fn connect_inner(opts: &ClientOptions) -> Result<Arc<Connection>, Error> {
        let stream = open_stream(opts).await?;
        let (read, write) = tokio::io::split(stream);
        let read = tokio::io::BufReader::with_capacity(READ_BUFFER, read);
        let max = opts.max_payload;
        let mux = Mux::start(opts.address(), write, opts.request_timeout, |link| {
            reader_loop(read, link, max)
        });
        let mut conn = Connection {
            mux,
            next_id: AtomicU64::new(1),
            capabilities: HashSet::new(),
            server_version: String::new(),
            auth_required: false,
            requests: AtomicU64::new(0),
        };
        let mut hello = json!({"client_version": opts.client_version, "protocol_version": 1});
        if let Some(token) = &opts.token {
            hello["auth_token"] = json!(token);
        }
        let reply = conn.request(Opcode::Hello, 0, &hello).await?;
        if reply.opcode != Opcode::HelloAck {
            return Err(protocol_error("HELLO was not answered with HELLO_ACK"));
        }
        let ack = reply.json()?;
        if ack.get("protocol_version").and_then(Json::as_u64) != Some(1) {
            return Err(Error::new(
                ErrorCode::ProtocolVersionError,
                "the server does not speak AWP version 1",
            ));
        }
        let caps = &ack["capabilities"];
        (conn.capabilities, conn.server_version) = advertised(caps, "capabilities");
        conn.auth_required = ack.get("auth_required").and_then(Json::as_bool) == Some(true);
        let authenticated = ack.get("authenticated").and_then(Json::as_bool) == Some(true);
        if !authenticated {
            let message = if opts.token.is_some() {
                "the server rejected the token"
            } else {
                "the server requires a token (auth=TokenAuth(...))"
            };
            let err = auth_error(message).with_context("wire_code", "invalid_credentials");
            conn.close().await;
            return Err(err.with_context("address", opts.address()));
        }
        Ok(Arc::new(conn))
    }

    pub fn is_closed(&self) -> bool {
        self.mux.is_closed()
    }

    /// Requests sent and not yet answered (a pool's load measure).
    pub fn in_flight(&self) -> usize {
        self.mux.in_flight()
    }

    pub fn requests_sent(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Close now; pending requests fail with a connection error.
    pub async fn close(&self) {
        self.mux.close().await;
    }

    /// Send one request with a JSON payload (`Json::Null` = empty) and wait
    /// for its answer. An ERROR answer becomes `Err`.
    pub async fn request(&self, opcode: Opcode, txn: u64, body: &Json) -> Result<Reply, Error> {
        let payload = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).map_err(|e| Error::serialization(e.to_string()))?
        };
        self.request_bytes(opcode, txn, payload).await
    }

    pub async fn request_bytes(
        &self,
        opcode: Opcode,
        txn: u64,
        payload: Vec<u8>,
    ) -> Result<Reply, Error> {
        let rx = self.send(opcode, txn, payload)?;
        let frame = self.mux.answer(rx).await?;
        if frame.opcode == Opcode::Error {
            return Err(server_error(&frame.payload, frame.request_id));
        }
        Ok(Reply {
            opcode: frame.opcode,
            txn_id: frame.txn_id,
            request_id: frame.request_id,
            payload: frame.payload,
        })
    }

    /// Send a request whose answer is not awaited (CURSOR_CLOSE of an
    /// abandoned stream). Callable from synchronous code (a cursor's
    /// `close()`, `__del__`): it is queued now, so it precedes on the wire
    /// every request sent after it (the server answers in order).
    pub fn defer(&self, opcode: Opcode, txn: u64, body: &Json) {
        if self.is_closed() {
            return; // the server drops cursors with the connection
        }
        let payload = serde_json::to_vec(body).unwrap_or_default();
        let _ = self.send(opcode, txn, payload); // the answer is dropped
    }

    /// Queue one request frame and register its waiter.
    fn send(
        &self,
        opcode: Opcode,
        txn: u64,
        payload: Vec<u8>,
    ) -> Result<oneshot::Receiver<Result<Frame, Error>>, Error> {
        // Checked first so a closed connection spends no id or encoding
        // (`Mux::send` refuses it too).
        if self.is_closed() {
            return Err(self.mux.closed_error());
        }
        // Ids need not rise along the wire: answers come in request order
        // and are matched against the waiters, registered in wire order.
        let id = u128::from(self.next_id.fetch_add(1, Ordering::Relaxed));
        let frame = Frame::new(opcode, id, txn, payload)
            .encode()
            .map_err(|e| Error::query(e.to_string()))?;
        let rx = self
            .mux
            .send(&frame, |pending, waiter| pending.push_back((id, waiter)))?;
        self.requests.fetch_add(1, Ordering::Relaxed);
        Ok(rx)
    }
}
