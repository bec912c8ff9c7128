//! The one mapping from `aura_core::Error` codes to the Python classes of
//! `aura.errors`. Every error that crosses the FFI goes through `to_py`.

use aura_core::error::Error;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::{PyDict, PyModule};

use crate::convert::json_to_py;

static ERRORS_MODULE: PyOnceLock<Py<PyModule>> = PyOnceLock::new();

/// The Python class name for a stable error code.
fn class_name(code: &str) -> &'static str {
    match code {
        "connection_error" => "AuraConnectionError",
        "client_closed" => "AuraClientClosedError",
        "timeout" | "query_timeout" | "transaction_timeout" => "AuraTimeoutError",
        "protocol_error" => "AuraProtocolError",
        "protocol_version_error" => "AuraProtocolVersionError",
        "query_error" => "AuraQueryError",
        "validation_error" => "AuraValidationError",
        "schema_error" => "AuraSchemaError",
        "authentication_error" => "AuraAuthenticationError",
        "authorization_error" => "AuraAuthorizationError",
        "server_error" => "AuraServerError",
        "not_leader" => "AuraNotLeaderError",
        "not_found" => "AuraNotFoundError",
        "constraint_violation" => "AuraConstraintError",
        "migration_error" => "AuraMigrationError",
        "serialization_error" => "AuraSerializationError",
        "transaction_error" => "AuraTransactionError",
        "retryable_transaction_error" => "AuraRetryableTransactionError",
        "non_retryable_transaction_error" => "AuraNonRetryableTransactionError",
        "backend_error" => "AuraBackendError",
        "backend_capability_error" => "AuraBackendCapabilityError",
        "dialect_error" => "AuraDialectError",
        "driver_not_installed" => "AuraDriverNotInstalledError",
        "relationship_not_loaded" => "RelationshipNotLoadedError",
        "conflict" => "TransactionConflictError",
        _ => "AuraError",
    }
}

/// The Python class for an AuraDB wire error code (API.md §9); unknown
/// codes are generic server errors.
fn wire_class_name(code: &str) -> &'static str {
    match code {
        "unauthenticated" | "invalid_credentials" => "AuraAuthenticationError",
        "not_found" => "AuraNotFoundError",
        "unique_violation" | "schema_violation" => "AuraConstraintError",
        "conflict" => "TransactionConflictError",
        "invalid_request" | "limit_exceeded" => "AuraQueryError",
        "query_timeout" | "transaction_timeout" => "AuraTimeoutError",
        "not_leader" => "AuraNotLeaderError",
        "protocol" => "AuraProtocolError",
        "unsupported" => "AuraBackendCapabilityError",
        _ => "AuraServerError",
    }
}

/// Context keys that carry wire metadata rather than user-facing context.
const WIRE_KEYS: [&str; 3] = ["wire_code", "request_id", "not_leader"];

fn build(py: Python<'_>, err: &Error) -> PyResult<PyErr> {
    let module = ERRORS_MODULE.get_or_try_init(py, || {
        PyModule::import(py, "aura.errors").map(|m| m.unbind())
    })?;
    let wire_code = err.context_value("wire_code").and_then(|v| v.as_str());
    let (class, code) = match wire_code {
        // A server error keeps its wire code; a client-side error whose
        // class is decided here (e.g. authentication) keeps its own class.
        Some(wire) if err.code == aura_core::ErrorCode::ServerError => {
            (wire_class_name(wire), wire)
        }
        Some(wire) => (class_name(err.code.as_str()), wire),
        None => (class_name(err.code.as_str()), err.code.as_str()),
    };
    let cls = module.bind(py).getattr(class)?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("code", code)?;
    kwargs.set_item("retryable", err.retryable)?;
    if let Some(id) = err
        .context_value("request_id")
        .and_then(|v| v.as_str())
        .and_then(|v| v.parse::<u128>().ok())
    {
        kwargs.set_item("request_id", id)?;
    }
    let context = PyDict::new(py);
    for (key, value) in &err.context {
        if wire_code.is_some() && WIRE_KEYS.contains(&key.as_str()) {
            continue;
        }
        context.set_item(key, json_to_py(py, value)?)?;
    }
    let instance = if class == "AuraNotLeaderError" {
        let payload = PyDict::new(py);
        if let Some(nl) = err.context_value("not_leader") {
            payload.set_item("not_leader", json_to_py(py, nl)?)?;
        }
        kwargs.set_item("payload", payload)?;
        cls.call_method(
            "from_server_payload",
            (err.message.as_str(),),
            Some(&kwargs),
        )?
    } else {
        if !context.is_empty() {
            kwargs.set_item("context", context)?;
        }
        cls.call((err.message.as_str(),), Some(&kwargs))?
    };
    Ok(PyErr::from_value(instance))
}

/// Convert a core error into the matching `aura.errors` exception.
pub fn to_py(err: Error) -> PyErr {
    Python::attach(|py| {
        build(py, &err).unwrap_or_else(|failure| {
            PyRuntimeError::new_err(format!(
                "[{}] {} (error mapping failed: {failure})",
                err.code.as_str(),
                err.message
            ))
        })
    })
}

/// `Result` adapter: `engine_call().py_err()?`.
pub trait IntoPyResult<T> {
    fn py_err(self) -> PyResult<T>;
}

impl<T> IntoPyResult<T> for Result<T, Error> {
    fn py_err(self) -> PyResult<T> {
        self.map_err(to_py)
    }
}

/// The capability error for a transaction id given to a backend that has
/// no transactions (MongoDB, Redis).
pub(crate) fn no_transactions(backend: &str, txn: Option<u64>) -> PyResult<()> {
    match txn {
        Some(_) => Err(to_py(Error::capability(
            backend,
            "transactions",
            "transactions",
        ))),
        None => Ok(()),
    }
}
