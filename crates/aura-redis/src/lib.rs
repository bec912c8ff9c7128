//! The Redis backend of aura-connector: key-value only (API.md §2.5, §8).
//!
//! One row is one JSON string at `<prefix><Model>:<pk>` (`codec`); reads,
//! updates and deletes address rows by primary key only (`keys`), and the
//! driver calls live in `store`. Whatever Redis cannot answer by key
//! (other filters, ordering, projection, includes, transactions, raw
//! statements, cursors) is an `AuraCapabilityError`, never emulated.

pub mod codec;
pub mod keys;
pub mod store;

pub use store::RedisStore;

/// The backend name errors carry in their context.
pub const BACKEND: &str = "redis";
