//! The one compiler from the Query IR to SQL (ARCHITECTURE.md "The SQL
//! layer"). It holds no driver: every statement it produces carries its
//! values as bound parameters; identifiers are quoted and validated.
//!
//! - `dialect`: quoting, placeholders and the few spellings that differ
//!   between SQLite, PostgreSQL and MySQL;
//! - `codec`: how a field kind is stored in a column (API.md §2.3) and the
//!   conversions both ways;
//! - `filter`: predicates with the cross-backend semantics of API.md §16
//!   row 30 (two-valued logic, nulls, case-sensitive LIKE);
//! - `query`, `write`, `ddl`: statements for reads, writes and schema;
//! - `aggregate`: metrics, facets and groups with the memory engine's answers;
//! - `search`: full-text index DDL and the ranked `search_text` select;
//! - `introspect`: reading a live table's shape back (`diff_schema`);
//! - `connection`: what an async driver provides to the shared executor;
//! - `exec`: that executor, every IR operation over a `SqlConnection`;
//! - `pool`: requests, transactions and timeouts on a driver's pool, the
//!   one `Database` every async driver shares (the only part with I/O:
//!   tokio's timer and mutex).

mod aggregate;
mod codec;
mod connection;
mod ddl;
mod dialect;
pub mod exec;
mod filter;
pub mod integrity;
mod introspect;
mod pool;
mod query;
mod search;
mod sql;
mod write;

use std::collections::HashMap;
use std::sync::Arc;

use aura_core::ModelSchema;

pub use aggregate::{aggregate, AggregatePlan, AggregateStatement};
pub use codec::{decode, decode_untyped, encode, storage, SqlRef, SqlValue, Storage};
pub use connection::{Chunker, RawRows, SqlConnection};
pub use ddl::{create_table, drop_table};
pub use dialect::{escape_like, like_pattern, Dialect, LIKE_ESCAPE};
pub use exec::{Chunks, Executor, Fetched, KeyedFeed, Loaded, Op, Outcome, RowFeed, RowSender};
pub use introspect::{
    column_type_matches, introspect, Introspection, LiveColumn, LiveIndex, LiveTable,
};
pub use pool::{BoxFuture, Database, Pool, PoolSettings, SqlDatabase, Txn};
pub use query::{
    count, exists, projection_mask, related, resolve_field, select, select_keys, RelatedQuery,
    Relation, Resolved,
};
pub use search::{
    create_full_text, drop_fts, fts_table, full_text_fields, populate_fts, select_ranked,
    SCORE_COLUMN,
};
pub use sql::Statement;
pub use write::{
    delete, delete_where_in, encode_row, exists_where_in, insert, keys_where_in, null_where_in,
    referenced_rekeys, update, upsert, OnConflict, UpsertPlan,
};

/// The schemas a statement may refer to (includes, links, cascades).
pub type Catalog = HashMap<String, Arc<ModelSchema>>;
