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

    /// Asks the CPU for the row's values and the first bytes of its
    /// strings, so that reading a batch of rows (each in its own place in
    /// memory) waits for their loads together rather than one by one.
    pub fn prefetch(&self) {
        prefetch(&self.row[..]);
        for value in self.row.iter() {
            if let Value::Str(text) = value {
                let bytes = text.as_bytes();
                prefetch(&bytes[..bytes.len().min(STR_PREFETCH)]);
            }
        }
    }
}

/// The bytes of a string value `ResultRow::prefetch` asks for; the
/// hardware prefetcher follows a longer one on its own.
const STR_PREFETCH: usize = 256;

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
