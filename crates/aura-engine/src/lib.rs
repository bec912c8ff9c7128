//! The in-memory aura engine (ARCHITECTURE.md "The in-memory engine").
//!
//! Tables are persistent maps, so a snapshot is an O(1) clone: reads run on
//! a clone taken under a short lock, transactions own a private clone, and
//! every write statement mutates a clone that replaces the original only on
//! success. The executor compiles each query once (field positions, bound
//! literals, access path) and then touches rows by reference.

mod aggregate;
mod deadline;
mod engine;
mod field_access;
mod filter;
mod include;
mod like;
mod mutate;
mod output;
mod planner;
mod rank;
mod raw;
mod references;
mod search;
mod select;
mod sort;
mod table;
mod traverse;
mod write_log;

pub use aura_core;
pub use engine::{Engine, TxnId};
pub use mutate::OnConflict;
pub use output::{Included, QueryOutput, ResultRow, Scores};
pub use planner::AccessPath;
pub use search::kernels::prefetched;
/// Constraint checks and their errors, shared with the database backends so a
/// violation reads the same everywhere.
pub use table::{check_value, duplicate_pk, not_unique};
