//! What a select hands back to the binding: rows (shared, never copied),
//! their scores and included relationships, and the access path taken.

use aura_core::Row;

use crate::planner::AccessPath;

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
}

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
