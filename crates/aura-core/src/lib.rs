//! Shared building blocks of aura-connector's Rust core: typed values, model
//! schema, the Query IR (API.md §10), the error type with stable codes
//! (API.md §9) and capability records (API.md §8).

pub mod capabilities;
pub mod error;
pub mod ir;
pub mod schema;
mod tagged;
pub mod text;
pub mod value;

pub use capabilities::Capabilities;
pub use error::{Error, ErrorCode, Result};
pub use schema::{FieldDef, FieldKind, ModelSchema, OnDelete, RelationKind, RelationshipDef, Row};
pub use value::{Key, Value};
