//! The one error type of the Rust core, carrying a stable code (API.md §9).
//!
//! Messages name models, fields and codes, never bound values or row data:
//! they reach logs and exception strings.

use std::fmt;

/// Stable error codes; `as_str` is what Python sees as `error.code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    AuraError,
    ConfigError,
    ConnectionError,
    ClientClosed,
    Timeout,
    ProtocolError,
    ProtocolVersionError,
    QueryError,
    ValidationError,
    SchemaError,
    AuthenticationError,
    AuthorizationError,
    ServerError,
    NotLeader,
    NotFound,
    ConstraintViolation,
    MigrationError,
    SerializationError,
    TransactionError,
    RetryableTransactionError,
    NonRetryableTransactionError,
    BackendError,
    BackendCapabilityError,
    DialectError,
    DriverNotInstalled,
    RelationshipNotLoaded,
    Conflict,
}

impl ErrorCode {
    /// Every code, in declaration order (for exhaustive mapping tables).
    pub const ALL: [ErrorCode; 27] = [
        ErrorCode::AuraError,
        ErrorCode::ConfigError,
        ErrorCode::ConnectionError,
        ErrorCode::ClientClosed,
        ErrorCode::Timeout,
        ErrorCode::ProtocolError,
        ErrorCode::ProtocolVersionError,
        ErrorCode::QueryError,
        ErrorCode::ValidationError,
        ErrorCode::SchemaError,
        ErrorCode::AuthenticationError,
        ErrorCode::AuthorizationError,
        ErrorCode::ServerError,
        ErrorCode::NotLeader,
        ErrorCode::NotFound,
        ErrorCode::ConstraintViolation,
        ErrorCode::MigrationError,
        ErrorCode::SerializationError,
        ErrorCode::TransactionError,
        ErrorCode::RetryableTransactionError,
        ErrorCode::NonRetryableTransactionError,
        ErrorCode::BackendError,
        ErrorCode::BackendCapabilityError,
        ErrorCode::DialectError,
        ErrorCode::DriverNotInstalled,
        ErrorCode::RelationshipNotLoaded,
        ErrorCode::Conflict,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::AuraError => "aura_error",
            ErrorCode::ConfigError => "config_error",
            ErrorCode::ConnectionError => "connection_error",
            ErrorCode::ClientClosed => "client_closed",
            ErrorCode::Timeout => "timeout",
            ErrorCode::ProtocolError => "protocol_error",
            ErrorCode::ProtocolVersionError => "protocol_version_error",
            ErrorCode::QueryError => "query_error",
            ErrorCode::ValidationError => "validation_error",
            ErrorCode::SchemaError => "schema_error",
            ErrorCode::AuthenticationError => "authentication_error",
            ErrorCode::AuthorizationError => "authorization_error",
            ErrorCode::ServerError => "server_error",
            ErrorCode::NotLeader => "not_leader",
            ErrorCode::NotFound => "not_found",
            ErrorCode::ConstraintViolation => "constraint_violation",
            ErrorCode::MigrationError => "migration_error",
            ErrorCode::SerializationError => "serialization_error",
            ErrorCode::TransactionError => "transaction_error",
            ErrorCode::RetryableTransactionError => "retryable_transaction_error",
            ErrorCode::NonRetryableTransactionError => "non_retryable_transaction_error",
            ErrorCode::BackendError => "backend_error",
            ErrorCode::BackendCapabilityError => "backend_capability_error",
            ErrorCode::DialectError => "dialect_error",
            ErrorCode::DriverNotInstalled => "driver_not_installed",
            ErrorCode::RelationshipNotLoaded => "relationship_not_loaded",
            ErrorCode::Conflict => "conflict",
        }
    }

    /// Inverse of `as_str`.
    pub fn parse(code: &str) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_str() == code)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An error with a stable code, an optional retryable override and safe context.
#[derive(Debug, Clone, PartialEq)]
pub struct Error {
    pub code: ErrorCode,
    pub message: String,
    /// `None` lets the Python class default decide (API.md §9).
    pub retryable: Option<bool>,
    pub context: Vec<(String, serde_json::Value)>,
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Error {
            code,
            message: message.into(),
            retryable: None,
            context: Vec::new(),
        }
    }

    pub fn query(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::QueryError, message)
    }

    pub fn validation(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::ValidationError, message)
    }

    pub fn schema(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::SchemaError, message)
    }

    pub fn constraint(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::ConstraintViolation, message)
    }

    pub fn transaction(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::TransactionError, message)
    }

    /// First-committer-wins conflict: always retryable.
    pub fn conflict(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Conflict, message).with_retryable(true)
    }

    pub fn timeout(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::Timeout, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::NotFound, message)
    }

    pub fn serialization(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::SerializationError, message)
    }

    pub fn server(message: impl Into<String>) -> Self {
        Error::new(ErrorCode::ServerError, message)
    }

    /// "Backend '<backend>' does not support <what>" with the §8 context.
    pub fn capability(backend: &str, capability: &str, what: &str) -> Self {
        Error::new(
            ErrorCode::BackendCapabilityError,
            format!("Backend '{backend}' does not support {what}"),
        )
        .with_context("backend", backend)
        .with_context("capability", capability)
    }

    pub fn with_context(
        mut self,
        key: impl Into<String>,
        value: impl Into<serde_json::Value>,
    ) -> Self {
        self.context.push((key.into(), value.into()));
        self
    }

    pub fn with_retryable(mut self, retryable: bool) -> Self {
        self.retryable = Some(retryable);
        self
    }

    /// Context value by key (first match).
    pub fn context_value(&self, key: &str) -> Option<&serde_json::Value> {
        self.context.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for code in ErrorCode::ALL {
            assert!(seen.insert(code.as_str()));
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(ErrorCode::parse("nope"), None);
    }

    #[test]
    fn conflict_is_retryable_and_displays_code() {
        let e = Error::conflict("transaction conflict");
        assert_eq!(e.retryable, Some(true));
        assert_eq!(e.to_string(), "[conflict] transaction conflict");
    }

    #[test]
    fn capability_error_carries_context() {
        let e = Error::capability("memory", "hybrid_search", "hybrid search");
        assert_eq!(e.code, ErrorCode::BackendCapabilityError);
        assert_eq!(e.message, "Backend 'memory' does not support hybrid search");
        assert_eq!(
            e.context_value("backend"),
            Some(&serde_json::json!("memory"))
        );
        assert_eq!(
            e.context_value("capability"),
            Some(&serde_json::json!("hybrid_search"))
        );
    }
}
