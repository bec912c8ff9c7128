//! The MySQL/MariaDB driver (ARCHITECTURE.md "The SQL layer"): a
//! mysql_async pool (binary protocol, prepared-statement cache, TLS through
//! rustls with ring) running the statements `aura-sql` compiles for
//! `Dialect::Mysql`, through its shared executor.
//!
//! - `options`: connection options, `ssl-mode` and TLS set-up;
//! - `db`: the pool (`aura_sql::Pool`): leasing, discarding, status;
//! - `conn`: `SqlConnection` for one connection (deadlines, bulk inserts);
//! - `value`: parameters and cells;
//! - `errors`: MySQL/MariaDB errors -> the error taxonomy (API.md §9).

mod conn;
mod db;
mod errors;
mod options;
mod value;

pub use db::{open, Database, MyPool};
pub use errors::DRIVER;
pub use options::{check_charset, Options, SslMode};
