//! The tokenizer of API.md §5.2 lives in aura-core (`aura_core::text`):
//! the SQL backends build their full-text query terms with it too.

pub use aura_core::text::each_token;
