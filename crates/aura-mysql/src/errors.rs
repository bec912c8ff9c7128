//! MySQL/MariaDB errors -> the taxonomy of API.md §9. Messages are
//! rebuilt from error codes and the schema: the server's text for a
//! duplicate key or a rejected value quotes the value, so it is never
//! passed on; neither is the password.

use aura_core::{Error, ErrorCode};
use aura_sql::Catalog;
use mysql_async::{DriverError, IoError, ServerError};

/// The driver named in error context.
pub const DRIVER: &str = "mysql_async";

fn with_driver(err: Error, server: Option<&ServerError>) -> Error {
    let err = err.with_context("driver", DRIVER);
    match server {
        Some(db) => err
            .with_context("mysql_code", i64::from(db.code))
            .with_context("sqlstate", db.state.as_str()),
        None => err,
    }
}

/// The table a failed write names (`INSERT [IGNORE] INTO `t``, `UPDATE `t``,
/// `DELETE FROM `t``): the server's message names only the key or column.
fn written_table(sql: &str) -> Option<String> {
    let rest = [
        "INSERT IGNORE INTO ",
        "INSERT INTO ",
        "UPDATE ",
        "DELETE FROM ",
    ]
    .iter()
    .find_map(|prefix| sql.strip_prefix(prefix))?;
    let rest = rest.strip_prefix('`')?;
    let mut name = String::new();
    let mut chars = rest.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '`' {
            if chars.peek() == Some(&'`') {
                chars.next();
            } else {
                return Some(name);
            }
        }
        name.push(c);
    }
    None
}

/// The last `'...'`-quoted word of a message (a key or column name).
fn last_quoted(message: &str) -> Option<&str> {
    let end = message.rfind('\'')?;
    let start = message[..end].rfind('\'')?;
    Some(&message[start + 1..end])
}

/// The first `'...'`-quoted word of a message (the column of a not-null
/// error: "Column 'x' cannot be null", "Field 'x' doesn't have a default").
fn first_quoted(message: &str) -> Option<&str> {
    let (_, rest) = message.split_once('\'')?;
    rest.split_once('\'').map(|(word, _)| word)
}

fn duplicate(db: &ServerError, sql: &str, catalog: &Catalog) -> Error {
    let schema = written_table(sql).and_then(|t| catalog.get(&t).cloned());
    // MySQL 8 writes the key as `table.key`, MariaDB as `key`.
    let key = last_quoted(&db.message).map(|k| k.rsplit('.').next().unwrap_or(k));
    match (schema, key) {
        (Some(schema), Some("PRIMARY")) => Error::constraint(format!(
            "{} already has a row with this primary key",
            schema.name
        ))
        .with_context("model", schema.name.as_str()),
        (Some(schema), Some(key)) => match schema.fields.iter().find(|f| f.storage == key) {
            Some(field) => {
                Error::constraint(format!("{}.{} must be unique", schema.name, field.attr))
                    .with_context("model", schema.name.as_str())
                    .with_context("field", field.attr.as_str())
            }
            None => Error::constraint(format!("{} unique constraint violated", schema.name))
                .with_context("model", schema.name.as_str()),
        },
        _ => Error::constraint("MySQL unique constraint violated"),
    }
}

fn not_null(db: &ServerError, sql: &str, catalog: &Catalog) -> Error {
    let schema = written_table(sql).and_then(|t| catalog.get(&t).cloned());
    let column = first_quoted(&db.message);
    let field = schema
        .as_ref()
        .zip(column)
        .and_then(|(s, c)| s.fields.iter().find(|f| f.storage == c).map(|f| (s, f)));
    match field {
        Some((schema, field)) => {
            Error::constraint(format!("{}.{} cannot be null", schema.name, field.attr))
                .with_context("model", schema.name.as_str())
                .with_context("field", field.attr.as_str())
        }
        None => Error::constraint("MySQL not-null constraint violated"),
    }
}

fn server_error(db: &ServerError, sql: &str, catalog: &Catalog) -> Error {
    let err = match db.code {
        1062 | 1586 => duplicate(db, sql, catalog),
        1048 | 1364 => not_null(db, sql, catalog),
        1451 => {
            Error::constraint("MySQL foreign key constraint violated: the row is still referenced")
        }
        1452 => Error::constraint(
            "MySQL foreign key constraint violated: the referenced row does not exist",
        ),
        1213 => Error::conflict(
            "MySQL detected a deadlock and rolled the transaction back; restart the transaction",
        ),
        1020 => Error::conflict(
            "A row this transaction writes was changed by a transaction that committed \
             after its snapshot; restart the transaction",
        ),
        1205 => Error::conflict(
            "A row this request writes is locked by another open transaction \
             (lock wait timeout); restart the transaction",
        ),
        1969 | 3024 => Error::timeout("MySQL interrupted the statement (statement time limit)"),
        1045 | 1044 | 1698 => Error::new(
            ErrorCode::AuthenticationError,
            "MySQL rejected the credentials",
        ),
        1049 => Error::new(ErrorCode::ConnectionError, "MySQL database does not exist"),
        1146 => Error::schema(
            "A table does not exist; register its model with the client (or create it)",
        ),
        1927 | 1053 | 1152 | 1184 => Error::new(
            ErrorCode::ConnectionError,
            "the connection to MySQL was lost (the server ended the session)",
        ),
        1040 => Error::new(ErrorCode::ConnectionError, "MySQL has too many connections"),
        1295 => Error::query("MySQL cannot run this statement as a prepared statement"),
        _ if db.state.starts_with("22")
            || db.state.starts_with("HY") && is_value_error(db.code) =>
        {
            Error::query(format!("MySQL rejected a value (error {})", db.code))
        }
        _ if db.state.starts_with("23") => {
            Error::constraint(format!("MySQL constraint violated (error {})", db.code))
        }
        _ if db.state.starts_with("42") => Error::query(format!("MySQL error: {}", db.message)),
        _ => Error::new(
            ErrorCode::BackendError,
            format!("MySQL error {} (SQLSTATE {})", db.code, db.state),
        ),
    };
    with_driver(err, Some(db))
}

/// Value errors reported with the generic SQLSTATE HY000, whose text
/// quotes the value (incorrect value, out of range, too long, truncated).
fn is_value_error(code: u16) -> bool {
    matches!(code, 1264 | 1265 | 1292 | 1366 | 1367 | 1406 | 1411 | 3140)
}

fn io_error(err: &IoError) -> Error {
    let what = match err {
        IoError::Io(io) => io.kind().to_string(),
        other => format!("TLS: {other}"),
    };
    Error::new(
        ErrorCode::ConnectionError,
        format!("the connection to MySQL failed or was lost ({what})"),
    )
}

fn driver_error(err: &DriverError) -> Error {
    match err {
        DriverError::ConnectionClosed => Error::new(
            ErrorCode::ConnectionError,
            "the connection to MySQL was lost",
        ),
        DriverError::PoolDisconnected => Error::new(ErrorCode::ClientClosed, "Client is closed"),
        DriverError::NoClientSslFlagFromServer => Error::new(
            ErrorCode::ConnectionError,
            "the MySQL server does not offer TLS, which ssl-mode requires",
        ),
        DriverError::StmtParamsMismatch { required, supplied } => Error::query(format!(
            "the statement takes {required} parameter(s), {supplied} given"
        )),
        DriverError::StmtParamsNumberExceedsLimit { supplied } => Error::query(format!(
            "MySQL takes at most 65535 parameters per statement, {supplied} given"
        )),
        DriverError::UnknownAuthPlugin { .. }
        | DriverError::MysqlOldPasswordDisabled
        | DriverError::CleartextPluginDisabled => Error::new(
            ErrorCode::AuthenticationError,
            format!("MySQL authentication failed: {err}"),
        ),
        // The remaining variants name protocol states, never values
        // (FromValue/FromRow are not produced: rows are read as raw values).
        DriverError::FromValue { .. } | DriverError::FromRow { .. } => {
            Error::serialization("MySQL returned a value that cannot be read")
        }
        other => Error::new(
            ErrorCode::BackendError,
            format!("MySQL driver error: {other}"),
        ),
    }
}

/// Maps a mysql_async error; `sql` is the statement that failed (its text
/// holds placeholders, never values).
pub fn map(err: &mysql_async::Error, sql: &str, catalog: &Catalog) -> Error {
    match err {
        mysql_async::Error::Server(db) => server_error(db, sql, catalog),
        mysql_async::Error::Io(io) => with_driver(io_error(io), None),
        mysql_async::Error::Driver(driver) => with_driver(driver_error(driver), None),
        mysql_async::Error::Url(_) | mysql_async::Error::Other(_) => with_driver(
            Error::new(ErrorCode::BackendError, "MySQL driver error"),
            None,
        ),
    }
}

/// Maps an error raised while opening a connection: everything that is
/// not a credentials problem is a connection error.
pub fn connect(err: &mysql_async::Error) -> Error {
    let mapped = map(err, "", &Catalog::new());
    match mapped.code {
        ErrorCode::AuthenticationError | ErrorCode::ConnectionError | ErrorCode::ClientClosed => {
            mapped
        }
        _ => with_driver(
            Error::new(
                ErrorCode::ConnectionError,
                format!("cannot connect to MySQL: {}", mapped.message),
            ),
            None,
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server(code: u16, state: &str, message: &str) -> mysql_async::Error {
        mysql_async::Error::Server(ServerError {
            code,
            message: message.to_owned(),
            state: state.to_owned(),
        })
    }

    #[test]
    fn the_written_table_is_read_from_the_statement() {
        assert_eq!(
            written_table("INSERT INTO `a``b` (`x`) VALUES (?)").as_deref(),
            Some("a`b")
        );
        assert_eq!(written_table("UPDATE `T` SET").as_deref(), Some("T"));
        assert_eq!(written_table("SELECT 1"), None);
    }

    #[test]
    fn values_never_reach_messages() {
        let err = map(
            &server(
                1062,
                "23000",
                "Duplicate entry 'secret-value' for key 'PRIMARY'",
            ),
            "INSERT INTO `Unknown` (`id`) VALUES (?)",
            &Catalog::new(),
        );
        assert_eq!(err.code, ErrorCode::ConstraintViolation);
        assert_eq!(err.message, "MySQL unique constraint violated");
        let err = map(
            &server(
                1366,
                "22007",
                "Incorrect integer value: 'secret' for column `x`",
            ),
            "",
            &Catalog::new(),
        );
        assert_eq!(err.code, ErrorCode::QueryError);
        assert_eq!(err.message, "MySQL rejected a value (error 1366)");
        assert!(!format!("{:?}", err.context).contains("secret"));
    }

    #[test]
    fn conflicts_and_timeouts_by_code() {
        for code in [1213, 1205, 1020] {
            let err = map(&server(code, "40001", "x"), "", &Catalog::new());
            assert_eq!(err.code, ErrorCode::Conflict);
            let ctx = |k: &str| {
                err.context
                    .iter()
                    .find(|(n, _)| n == k)
                    .map(|(_, v)| v.clone())
            };
            assert_eq!(ctx("mysql_code"), Some(serde_json::json!(code)));
            assert_eq!(ctx("driver"), Some(serde_json::json!("mysql_async")));
        }
        for code in [1969, 3024] {
            let err = map(&server(code, "70100", "x"), "", &Catalog::new());
            assert_eq!(err.code, ErrorCode::Timeout);
        }
        let err = connect(&server(1045, "28000", "Access denied for user 'u'"));
        assert_eq!(err.code, ErrorCode::AuthenticationError);
        assert_eq!(err.message, "MySQL rejected the credentials");
    }
}
