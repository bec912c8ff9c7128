//! A statement under construction: SQL text and its bound parameters,
//! always appended together so placeholders and values stay in step.

use aura_core::Result;

use crate::codec::SqlValue;
use crate::dialect::Dialect;

/// A finished statement: text with placeholders, and their values in order.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub sql: String,
    pub params: Vec<SqlValue>,
}

pub(crate) struct Sql {
    pub dialect: Dialect,
    text: String,
    params: Vec<SqlValue>,
}

impl Sql {
    pub fn new(dialect: Dialect) -> Self {
        Sql {
            dialect,
            text: String::with_capacity(128),
            params: Vec::new(),
        }
    }

    pub fn push(&mut self, text: &str) -> &mut Self {
        self.text.push_str(text);
        self
    }

    /// A quoted identifier (rejects names SQL cannot quote).
    pub fn ident(&mut self, name: &str) -> Result<&mut Self> {
        let quoted = self.dialect.quote(name)?;
        self.text.push_str(&quoted);
        Ok(self)
    }

    /// A placeholder for `value`.
    pub fn bind(&mut self, value: SqlValue) -> &mut Self {
        self.params.push(value);
        let placeholder = self.dialect.placeholder(self.params.len());
        self.text.push_str(&placeholder);
        self
    }

    /// `(p1, p2, ...)` for a non-empty list of values.
    pub fn bind_list(&mut self, values: impl IntoIterator<Item = SqlValue>) -> &mut Self {
        self.push("(");
        for (i, value) in values.into_iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.bind(value);
        }
        self.push(")")
    }

    pub fn finish(self) -> Statement {
        Statement {
            sql: self.text,
            params: self.params,
        }
    }
}
