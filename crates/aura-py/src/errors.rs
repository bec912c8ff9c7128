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

fn build(py: Python<'_>, err: &Error) -> PyResult<PyErr> {
    let module = ERRORS_MODULE.get_or_try_init(py, || {
        PyModule::import(py, "aura.errors").map(|m| m.unbind())
    })?;
    let cls = module.bind(py).getattr(class_name(err.code.as_str()))?;
    let kwargs = PyDict::new(py);
    kwargs.set_item("code", err.code.as_str())?;
    kwargs.set_item("retryable", err.retryable)?;
    if !err.context.is_empty() {
        let context = PyDict::new(py);
        for (key, value) in &err.context {
            context.set_item(key, json_to_py(py, value)?)?;
        }
        kwargs.set_item("context", context)?;
    }
    let instance = cls.call((err.message.as_str(),), Some(&kwargs))?;
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
