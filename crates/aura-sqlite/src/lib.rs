//! The SQLite driver (ARCHITECTURE.md "The SQL layer"): a pool of rusqlite
//! connections, each owned by a thread of its own, running the statements
//! `aura-sql` compiles. Nothing here blocks the caller: work is queued as
//! jobs and each job reports through the completion it carries.
//!
//! - `pool`: worker threads, the job queue, transaction leases and the
//!   in-process writer lock;
//! - `session`: one connection: set-up pragmas, binding, row decoding,
//!   atomic sections and deadlines;
//! - `read` / `write`: the executors for each IR operation;
//! - `search`: aggregations, ranked full-text search, schema introspection;
//! - `errors`: SQLite errors -> the error taxonomy (API.md §9).

mod errors;
mod pool;
mod read;
mod search;
mod session;
mod write;

pub use errors::DRIVER;
pub use pool::{Database, Job, Location, Options, Txn, TxnJob};
pub use read::{count, exists, explain, raw, select, select_chunked, Fetched, Loaded, RawRows};
pub use search::{aggregate, describe, select_ranked};
pub use session::Session;
pub use write::{create_schema, delete, drop_schema, insert, update, upsert};
