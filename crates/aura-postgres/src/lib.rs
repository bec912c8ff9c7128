//! The PostgreSQL driver (ARCHITECTURE.md "The SQL layer"): a
//! deadpool-postgres pool of tokio-postgres connections (binary protocol,
//! prepared-statement cache, TLS through rustls with ring) running the
//! statements `aura-sql` compiles, through its shared executor.
//!
//! - `options`: connection options, `sslmode` and TLS set-up;
//! - `db`: the pool (`aura_sql::Pool`): leasing, expiry, discarding;
//! - `conn`: `SqlConnection` for one connection (typed statements, COPY);
//! - `value`: parameters and cells in the binary format;
//! - `errors`: PostgreSQL errors -> the error taxonomy (API.md §9).

mod conn;
mod db;
mod errors;
mod options;
mod value;

pub use db::{open, Database, PgPool};
pub use errors::DRIVER;
pub use options::{Options, SslMode};
