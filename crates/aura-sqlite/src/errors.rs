//! SQLite errors -> the taxonomy of API.md §9. Messages name models, fields
//! and codes only: SQLite never echoes bound values, and constraint
//! messages are rebuilt from the schema rather than passed through.

use aura_core::{Error, ErrorCode};
use rusqlite::ffi;

use aura_sql::Catalog;

/// The driver named in error context.
pub const DRIVER: &str = "sqlite (rusqlite, bundled)";

fn with_driver(err: Error, extended: Option<i32>) -> Error {
    let err = err.with_context("driver", DRIVER);
    match extended {
        Some(code) => err.with_context("sqlite_code", code),
        None => err,
    }
}

/// The first `Table.column` of a constraint message, as model and field.
fn constrained(message: &str, catalog: &Catalog) -> Option<(String, String, bool)> {
    let (_, columns) = message.split_once(": ")?;
    let first = columns.split(", ").next()?;
    let (table, column) = first.split_once('.')?;
    let schema = catalog.get(table)?;
    let field = schema.field(column)?;
    let is_pk = schema.pk_name() == field.storage;
    Some((schema.name.clone(), field.attr.clone(), is_pk))
}

fn constraint(extended: i32, message: &str, catalog: &Catalog) -> Error {
    let target = constrained(message, catalog);
    let err = match (extended, target) {
        (ffi::SQLITE_CONSTRAINT_NOTNULL, Some((model, attr, _))) => {
            Error::constraint(format!("{model}.{attr} cannot be null"))
                .with_context("model", model)
                .with_context("field", attr)
        }
        (ffi::SQLITE_CONSTRAINT_PRIMARYKEY, Some((model, _, _)))
        | (ffi::SQLITE_CONSTRAINT_UNIQUE, Some((model, _, true))) => {
            Error::constraint(format!("{model} already has a row with this primary key"))
                .with_context("model", model)
        }
        (ffi::SQLITE_CONSTRAINT_UNIQUE, Some((model, attr, false))) => {
            Error::constraint(format!("{model}.{attr} must be unique"))
                .with_context("model", model)
                .with_context("field", attr)
        }
        _ => Error::constraint("SQLite constraint violated"),
    };
    with_driver(err, Some(extended))
}

/// Maps a rusqlite error; `timeout_ms` names the deadline an interrupt enforced.
pub fn map(err: rusqlite::Error, catalog: &Catalog, timeout_ms: Option<u64>) -> Error {
    let rusqlite::Error::SqliteFailure(failure, message) = &err else {
        return with_driver(
            Error::new(
                ErrorCode::BackendError,
                format!("SQLite driver error: {}", kind(&err)),
            ),
            None,
        );
    };
    let message = message.as_deref().unwrap_or("");
    let extended = failure.extended_code;
    let mapped = match failure.code {
        rusqlite::ErrorCode::ConstraintViolation => return constraint(extended, message, catalog),
        rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => Error::conflict(
            "SQLite database is busy: another writer held the lock past busy_timeout; retry the operation",
        ),
        rusqlite::ErrorCode::OperationInterrupted => Error::timeout(format!(
            "query exceeded its timeout of {} ms",
            timeout_ms.unwrap_or(0)
        )),
        rusqlite::ErrorCode::ReadOnly => Error::new(
            ErrorCode::BackendError,
            "SQLite database is read-only (opened with mode=ro)",
        ),
        _ => match message.strip_prefix("no such table: ") {
            Some(table) => Error::schema(format!(
                "Table '{table}' does not exist; register its model with the client"
            ))
            .with_context("model", table),
            None => Error::new(ErrorCode::BackendError, format!("SQLite error: {message}")),
        },
    };
    with_driver(mapped, Some(extended))
}

/// A value-free description of a non-SQLite driver error.
fn kind(err: &rusqlite::Error) -> &'static str {
    match err {
        rusqlite::Error::InvalidParameterName(_) => "unknown parameter name",
        rusqlite::Error::InvalidParameterCount(..) => "wrong number of parameters",
        rusqlite::Error::MultipleStatement => "more than one statement",
        rusqlite::Error::InvalidColumnType(..) => "unexpected column type",
        rusqlite::Error::ExecuteReturnedResults => "statement returned rows",
        rusqlite::Error::Utf8Error(..) => "invalid UTF-8 text",
        _ => "unexpected failure",
    }
}
