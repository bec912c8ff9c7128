//! What a select hands back to the binding: rows (shared, never copied),
//! their scores and included relationships, and the access path taken.

use aura_core::{Row, Value};

use crate::planner::AccessPath;
use crate::search::kernels::prefetch;

#[derive(Debug, Clone, PartialEq)]
pub struct QueryOutput {
    pub rows: Vec<ResultRow>,
    pub access_path: AccessPath,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ResultRow {
    pub row: Row,
    /// Set for ranked queries only.
    pub scores: Option<Scores>,
    /// One entry per requested include, in request order.
    pub includes: Vec<Included>,
}

impl ResultRow {
    pub fn plain(row: Row) -> Self {
        ResultRow {
            row,
            scores: None,
            includes: Vec::new(),
        }
    }

    /// Asks the CPU for the row's first values and the first bytes of
    /// its strings (those `mask` keeps, when given), so that reading a
    /// batch of rows (each in its own place in memory) waits for their
    /// loads together rather than one by one.
    pub fn prefetch(&self, mask: Option<&[bool]>) {
        prefetch_head(&self.row);
        let kept = |pos: usize| mask.is_none_or(|m| m.get(pos).copied().unwrap_or(false));
        let strings = self
            .row
            .iter()
            .enumerate()
            .filter_map(|(pos, value)| match value {
                Value::Str(text) if kept(pos) => Some(text.as_bytes()),
                _ => None,
            });
        for bytes in strings.take(PREFETCH_STRINGS) {
            prefetch(&bytes[..bytes.len().min(STR_PREFETCH)]);
        }
    }
}

/// Asks for the first values of `row` (the line its reference count
/// shares with them, its key in the usual layout): what ranking reads
/// and returning it writes.
pub(crate) fn prefetch_head(row: &Row) {
    prefetch(&row[..row.len().min(HEAD_VALUES)]);
}

/// The values `prefetch_head` asks for (two 64-byte lines at most).
const HEAD_VALUES: usize = 4;
/// The bytes of a string value `ResultRow::prefetch` asks for; the
/// hardware prefetcher follows a longer one on its own.
const STR_PREFETCH: usize = 256;
/// The string values per row `ResultRow::prefetch` follows.
const PREFETCH_STRINGS: usize = 4;

/// Ranked-row scores (API.md §5.1): component scores only for hybrid rows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Scores {
    pub score: f64,
    pub text_score: Option<f64>,
    pub vector_score: Option<f64>,
    /// 1-based and global: offset + position + 1.
    pub rank: u64,
}

/// A loaded relationship of one result row.
#[derive(Debug, Clone, PartialEq)]
pub enum Included {
    /// To-one link; `None` when the link is null or its target is missing.
    One { attr: String, row: Option<Row> },
    /// To-many collection, ordered and limited as the include asked.
    Many { attr: String, rows: Vec<Row> },
}

impl Included {
    pub fn attr(&self) -> &str {
        match self {
            Included::One { attr, .. } | Included::Many { attr, .. } => attr,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// A prefetch is only a hint: it must accept any row and mask without
    /// panicking and leave the row as it was.
    #[test]
    fn prefetch_takes_any_row_and_mask() {
        let long = "é".repeat(300); // multi-byte, cut inside a character
        let rows: Vec<Row> = vec![
            Arc::from(Vec::<Value>::new()),
            Arc::from(vec![Value::Int(1), Value::str(""), Value::str(&long)]),
            Arc::from(
                (0..40)
                    .map(|i| Value::str(&format!("v{i}")))
                    .collect::<Vec<_>>(),
            ),
        ];
        for row in rows {
            let result = ResultRow::plain(row.clone());
            for mask in [None, Some(&[][..]), Some(&[true, false][..])] {
                result.prefetch(mask);
            }
            prefetch_head(&row);
            assert_eq!(result.row, row);
        }
    }
}
