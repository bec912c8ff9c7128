//! The MongoDB backend of aura-connector (API.md §2.5, §8).
//!
//! A document is one row keyed by its primary key (`_id` = pk value, shown
//! to the user under the pk's own name); the database is the DSN path (or
//! `aura`) and the collection is the model name. `convert` maps values to
//! BSON and back, `filter` compiles IR predicates into filter documents with
//! the memory engine's semantics, and `store` runs them on the official
//! driver. What MongoDB cannot serve here raises `AuraCapabilityError`.

pub mod convert;
pub mod filter;
pub mod store;

pub use store::{MongoCursor, MongoOptions, MongoStore};

/// The backend name errors carry in their context.
pub const BACKEND: &str = "mongodb";
