//! `AwpServer`: a server of aura-wire serving a `MemoryEngine` over AWP 1
//! (`protocol="awp"`) or the bundled protocol (`protocol="bundled"`),
//! started and stopped from Python (`aura.server`, `aura serve`). Both share
//! the configuration (TLS, token, limits) and the log sink. It runs on the
//! shared tokio runtime (`bridge::runtime`).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use aura_core::error::{Error, ErrorCode};
use aura_engine::Engine;
use aura_wire::auth::TokenVerifier;
use aura_wire::listener::Listener;
use aura_wire::server::ServerConfig;
use parking_lot::Mutex;
use pyo3::prelude::*;

use crate::errors::to_py;
use crate::memory::MemoryEngine;

const KEPT_LOG_LINES: usize = 1000;

fn config_error(message: String) -> PyErr {
    to_py(Error::new(ErrorCode::ConfigError, message))
}

#[pyclass(frozen, module = "aura._core")]
pub struct AwpServer {
    server: Mutex<Option<Listener>>,
    protocol: &'static str,
    address: String,
    tls: bool,
    auth: bool,
    logs: Arc<Mutex<VecDeque<String>>>,
}

#[pymethods]
impl AwpServer {
    /// Bind and start serving now. `port=0` picks a free port.
    #[new]
    #[pyo3(signature = (engine=None, host="127.0.0.1".to_owned(), port=7171, *, token=None,
        tls_cert=None, tls_key=None, max_payload_bytes=16777216, page_size=100,
        cursor_timeout_s=300.0, transaction_timeout_s=300.0, max_query_time_ms=30000,
        max_query_limit=1000000, log_to_stderr=true, protocol="awp"))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        engine: Option<&MemoryEngine>,
        host: String,
        port: u16,
        token: Option<String>,
        tls_cert: Option<String>,
        tls_key: Option<String>,
        max_payload_bytes: usize,
        page_size: usize,
        cursor_timeout_s: f64,
        transaction_timeout_s: f64,
        max_query_time_ms: u64,
        max_query_limit: u64,
        log_to_stderr: bool,
        protocol: &str,
    ) -> PyResult<Self> {
        let protocol: &'static str = match protocol {
            "awp" => "awp",
            "bundled" => "bundled",
            other => {
                return Err(config_error(format!(
                    "protocol must be 'awp' or 'bundled', got '{other}'"
                )))
            }
        };
        let tls = match (tls_cert, tls_key) {
            (Some(cert), Some(key)) => {
                Some(aura_wire::tls::server_config(&cert, &key).map_err(config_error)?)
            }
            (None, None) => None,
            _ => {
                return Err(config_error(
                    "TLS needs both tls_cert and tls_key".to_owned(),
                ))
            }
        };
        let token = match token {
            Some(t) if t.is_empty() => return Err(config_error("the token is empty".to_owned())),
            Some(t) => Some(TokenVerifier::new(&t).map_err(config_error)?),
            None => None,
        };
        if page_size == 0 {
            return Err(config_error("page_size must be at least 1".to_owned()));
        }
        let seconds =
            |s: f64| Duration::from_secs_f64(if s.is_finite() && s > 0.0 { s } else { 0.0 });
        let config = ServerConfig {
            max_payload_bytes,
            page_size,
            cursor_timeout: seconds(cursor_timeout_s),
            transaction_timeout: seconds(transaction_timeout_s),
            max_query_time_ms,
            max_query_limit,
            tls: tls.clone(),
            token: token.clone(),
            ..ServerConfig::default()
        };
        let engine = engine.map_or_else(|| Arc::new(Engine::new()), |e| e.engine.clone());
        let logs = Arc::new(Mutex::new(VecDeque::new()));
        let sink_logs = logs.clone();
        let log = Arc::new(move |line: &str| {
            if log_to_stderr {
                eprintln!("{line}");
            }
            let mut kept = sink_logs.lock();
            if kept.len() == KEPT_LOG_LINES {
                kept.pop_front();
            }
            kept.push_back(line.to_owned());
        });
        let bind = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        let runtime = crate::bridge::runtime();
        let started = py.detach(|| -> std::io::Result<(Listener, String)> {
            let server = if protocol == "bundled" {
                runtime.block_on(aura_wire::bundled::server::serve(
                    &bind, engine, config, log,
                ))?
            } else {
                runtime.block_on(aura_wire::server::serve(&bind, engine, config, log))?
            };
            let addr = server.local_addr().to_string();
            Ok((server, addr))
        });
        let (server, address) = started.map_err(|e| {
            to_py(Error::new(
                ErrorCode::ConnectionError,
                format!("cannot listen on {bind}: {e}"),
            ))
        })?;
        Ok(AwpServer {
            server: Mutex::new(Some(server)),
            protocol,
            address,
            tls: tls.is_some(),
            auth: token.is_some(),
            logs,
        })
    }

    /// `host:port` actually bound.
    #[getter]
    fn address(&self) -> String {
        self.address.clone()
    }

    #[getter]
    fn port(&self) -> u16 {
        self.address
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .unwrap_or(0)
    }

    #[getter]
    fn is_running(&self) -> bool {
        self.server.lock().is_some()
    }

    #[getter]
    fn active_connections(&self) -> usize {
        self.server
            .lock()
            .as_ref()
            .map_or(0, Listener::active_connections)
    }

    /// Server cursors currently held (all connections).
    #[getter]
    fn open_cursors(&self) -> usize {
        self.server
            .lock()
            .as_ref()
            .map_or(0, Listener::open_cursors)
    }

    /// `"awp"` or `"bundled"`.
    #[getter]
    fn protocol(&self) -> &'static str {
        self.protocol
    }

    /// The connection log lines kept in memory (newest last).
    fn log_lines(&self) -> Vec<String> {
        self.logs.lock().iter().cloned().collect()
    }

    /// Graceful stop: no new connections; open ones finish their current
    /// request, roll back their transactions and close. Idempotent.
    fn close(&self, py: Python<'_>) {
        let server = self.server.lock().take();
        if let Some(server) = server {
            py.detach(|| crate::bridge::runtime().block_on(server.shutdown()));
        }
    }

    fn __repr__(&self) -> String {
        format!(
            "AwpServer(protocol='{}', address='{}', tls={}, auth={}, running={})",
            self.protocol,
            self.address,
            self.tls,
            if self.auth { "token" } else { "none" },
            self.is_running()
        )
    }
}
