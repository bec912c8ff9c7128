//! The legacy `text(...)` clause and its `fusion(alpha)` blend with a vector
//! clause (API.md §5.2): substring counts over the listed fields, every row
//! kept (score 0 included).

use aura_core::ir::TextClause;
use aura_core::{Error, ModelSchema, Result, Value};

use crate::field_access::FieldAccess;

#[derive(Debug, Clone)]
pub(crate) struct LegacyText {
    fields: Vec<FieldAccess>,
    terms: Vec<String>,
}

impl LegacyText {
    pub fn prepare(schema: &ModelSchema, clause: &TextClause) -> Result<LegacyText> {
        if clause.fields.is_empty() {
            return Err(Error::query("text() requires at least one field"));
        }
        let fields = clause
            .fields
            .iter()
            .map(|f| FieldAccess::resolve(schema, f, None))
            .collect::<Result<Vec<_>>>()?;
        let terms: Vec<String> = clause
            .query
            .to_lowercase()
            .split_whitespace()
            .map(str::to_owned)
            .collect();
        if terms.is_empty() {
            return Err(Error::query("text() query must not be blank"));
        }
        Ok(LegacyText { fields, terms })
    }

    /// Occurrences of the terms in the joined, lowercased fields, per term.
    pub fn score(&self, row: &[Value]) -> f64 {
        let parts: Vec<&str> = self
            .fields
            .iter()
            .filter_map(|f| f.get(row).as_str())
            .collect();
        let haystack = parts.join(" ").to_lowercase();
        let hits: usize = self
            .terms
            .iter()
            .map(|t| haystack.matches(t.as_str()).count())
            .sum();
        hits as f64 / self.terms.len() as f64
    }
}

/// `alpha·vector + (1−alpha)·text`; a missing side leaves the other's raw score.
pub(crate) fn blend(alpha: f64, text: Option<f64>, vector: Option<f64>) -> Option<f64> {
    match (text, vector) {
        (Some(t), Some(v)) => Some(alpha * v + (1.0 - alpha) * t),
        (Some(s), None) | (None, Some(s)) => Some(s),
        (None, None) => None,
    }
}
