//! PostgreSQL errors -> the taxonomy of API.md §9. Messages are rebuilt
//! from codes and the schema: the server's DETAIL (which quotes row
//! values) is never passed on, nor the text of data errors (class 22,
//! which may quote a bound value), nor the password.

use aura_core::{Error, ErrorCode};
use aura_sql::Catalog;
use tokio_postgres::error::{DbError, SqlState};

/// The driver named in error context.
pub const DRIVER: &str = "postgres";

fn with_driver(err: Error, sqlstate: Option<&str>) -> Error {
    let err = err.with_context("driver", DRIVER);
    match sqlstate {
        Some(code) => err.with_context("sqlstate", code),
        None => err,
    }
}

/// The model and field a constraint names (`<table>_pkey`,
/// `<table>_<column>_key`, or the reported column).
fn constrained(db: &DbError, catalog: &Catalog) -> Option<(String, Option<String>, bool)> {
    let schema = catalog.get(db.table()?)?;
    if let Some(column) = db.column() {
        let field = schema.field(column)?;
        return Some((schema.name.clone(), Some(field.attr.clone()), false));
    }
    let constraint = db.constraint()?;
    if constraint == format!("{}_pkey", schema.name) {
        return Some((schema.name.clone(), None, true));
    }
    let field = schema
        .fields
        .iter()
        .find(|f| constraint == format!("{}_{}_key", schema.name, f.storage));
    Some((schema.name.clone(), field.map(|f| f.attr.clone()), false))
}

fn constraint(db: &DbError, catalog: &Catalog) -> Error {
    let target = constrained(db, catalog);
    let code = db.code();
    if *code == SqlState::UNIQUE_VIOLATION {
        return match target {
            Some((model, _, true)) => {
                Error::constraint(format!("{model} already has a row with this primary key"))
                    .with_context("model", model)
            }
            Some((model, Some(attr), false)) => {
                Error::constraint(format!("{model}.{attr} must be unique"))
                    .with_context("model", model)
                    .with_context("field", attr)
            }
            Some((model, None, false)) => {
                Error::constraint(format!("{model} unique constraint violated"))
                    .with_context("model", model)
            }
            None => Error::constraint("PostgreSQL unique constraint violated"),
        };
    }
    if *code == SqlState::NOT_NULL_VIOLATION {
        return match target {
            Some((model, Some(attr), _)) => {
                Error::constraint(format!("{model}.{attr} cannot be null"))
                    .with_context("model", model)
                    .with_context("field", attr)
            }
            _ => Error::constraint("PostgreSQL not-null constraint violated"),
        };
    }
    if *code == SqlState::FOREIGN_KEY_VIOLATION {
        return Error::constraint("PostgreSQL foreign key constraint violated");
    }
    Error::constraint(format!(
        "PostgreSQL constraint violated (SQLSTATE {})",
        code.code()
    ))
}

fn server_error(db: &DbError, catalog: &Catalog) -> Error {
    let code = db.code();
    let state = code.code();
    let err = match state {
        _ if state.starts_with("23") => constraint(db, catalog),
        "40001" => Error::conflict(
            "PostgreSQL could not serialize the transaction (a concurrent write won); \
             restart the transaction",
        ),
        "40P01" => Error::conflict(
            "PostgreSQL detected a deadlock and aborted the transaction; restart it",
        ),
        "55P03" => Error::conflict(
            "A row this transaction writes is locked by another open transaction; \
             restart the transaction",
        ),
        "57014" => Error::timeout("PostgreSQL cancelled the statement (statement timeout)"),
        "28P01" | "28000" => Error::new(
            ErrorCode::AuthenticationError,
            "PostgreSQL rejected the credentials",
        ),
        "3D000" => Error::new(
            ErrorCode::ConnectionError,
            "PostgreSQL database does not exist",
        ),
        "42P01" => Error::schema(
            "A table does not exist; register its model with the client (or create it)",
        ),
        "25P02" => Error::transaction(
            "The PostgreSQL transaction was aborted by an earlier error; roll it back",
        ),
        "57P01" | "57P02" => Error::new(
            ErrorCode::ConnectionError,
            "the connection to PostgreSQL was lost (the server ended the session)",
        ),
        "57P03" => Error::new(
            ErrorCode::ConnectionError,
            "PostgreSQL is not accepting connections yet",
        ),
        _ if state.starts_with("22") => {
            Error::query(format!("PostgreSQL rejected a value (SQLSTATE {state})"))
        }
        _ if state.starts_with("42") => Error::query(format!("PostgreSQL error: {}", db.message())),
        _ => Error::new(
            ErrorCode::BackendError,
            format!("PostgreSQL error: {}", db.message()),
        ),
    };
    with_driver(err, Some(state))
}

/// Maps a tokio-postgres error.
pub fn map(err: &tokio_postgres::Error, catalog: &Catalog) -> Error {
    if let Some(db) = err.as_db_error() {
        return server_error(db, catalog);
    }
    if err.is_closed() {
        return with_driver(
            Error::new(
                ErrorCode::ConnectionError,
                "the connection to PostgreSQL was lost",
            ),
            None,
        );
    }
    // Client-side failures: I/O, TLS, parameter conversion. Their text
    // names types and causes, never parameter values.
    let cause = std::error::Error::source(err)
        .map(|s| s.to_string())
        .unwrap_or_else(|| err.to_string());
    let code = if is_connect(&cause) {
        ErrorCode::ConnectionError
    } else {
        ErrorCode::BackendError
    };
    with_driver(
        Error::new(code, format!("PostgreSQL driver error: {cause}")),
        None,
    )
}

fn is_connect(cause: &str) -> bool {
    [
        "refused",
        "reset",
        "broken pipe",
        "timed out",
        "tls",
        "certificate",
        "dns",
        "resolve",
    ]
    .iter()
    .any(|word| cause.to_lowercase().contains(word))
}

/// Maps an error raised while opening a connection: everything that is
/// not a credentials problem is a connection error.
pub fn connect(err: &tokio_postgres::Error) -> Error {
    let mapped = map(err, &Catalog::new());
    match mapped.code {
        ErrorCode::AuthenticationError | ErrorCode::ConnectionError => mapped,
        _ => Error::new(
            ErrorCode::ConnectionError,
            format!("cannot connect to PostgreSQL: {}", mapped.message),
        )
        .with_context("driver", DRIVER),
    }
}
