//! Ranked retrieval (API.md §5): exact and HNSW vector search (`vector`),
//! BM25 and term-frequency text search (`text`), hybrid fusion (`hybrid`),
//! the legacy text/fusion clauses (`legacy`), bounded top-k collection
//! (`collect`) and keyset cursors for ranked pages (`cursor`).

pub(crate) mod collect;
pub(crate) mod cursor;
pub(crate) mod hybrid;
pub(crate) mod legacy;
mod maxscore;
pub(crate) mod text;
pub(crate) mod vector;

use aura_core::ir::Select;
use aura_core::{Error, Result};
use serde_json::{json, Value as Json};

use crate::deadline::Deadline;
use crate::select::Matcher;
use crate::table::Table;

use collect::{Collector, Hit};
use hybrid::HybridQuery;
use legacy::LegacyText;
use text::{TextQuery, TextSpec};
use vector::{VectorPath, VectorQuery};

/// A validated ranked clause and the path it will take.
pub(crate) enum Ranker {
    Vector(VectorQuery, VectorPath),
    Text {
        query: TextQuery,
        indexed: bool,
    },
    Hybrid(HybridQuery),
    Legacy {
        text: Option<LegacyText>,
        vector: Option<VectorQuery>,
        alpha: f64,
    },
}

fn combination_error() -> Error {
    Error::query(
        "search_text, search_hybrid and vector/text clauses cannot be combined; use search_hybrid",
    )
}

/// Validates the ranked clauses of `q` (before any row is read).
pub(crate) fn prepare(table: &Table, q: &Select, matcher: &Matcher<'_>) -> Result<Option<Ranker>> {
    let schema = &table.schema;
    if let Some(h) = &q.hybrid {
        if q.vector.is_some() || q.text.is_some() || q.text_search.is_some() {
            return Err(combination_error());
        }
        return Ok(Some(Ranker::Hybrid(HybridQuery::prepare(schema, h)?)));
    }
    if let Some(ts) = &q.text_search {
        if q.vector.is_some() || q.text.is_some() {
            return Err(combination_error());
        }
        let query = TextQuery::prepare(
            schema,
            &TextSpec {
                field: &ts.field,
                query: &ts.query,
                operator: &ts.operator,
                rank: &ts.rank,
                k1: ts.k1,
                b: ts.b,
            },
        )?;
        let indexed = text::uses_index(table, &query, matcher.is_everything());
        return Ok(Some(Ranker::Text { query, indexed }));
    }
    let vector = q
        .vector
        .as_ref()
        .map(|c| VectorQuery::prepare(schema, c))
        .transpose()?;
    if q.text.is_none() && q.fusion.is_none() {
        let ann = vector::ann_options(q)?;
        return Ok(vector.map(|vq| {
            let path = vector::choose_path(table, &vq, matcher, ann);
            Ranker::Vector(vq, path)
        }));
    }
    let text = q
        .text
        .as_ref()
        .map(|c| LegacyText::prepare(schema, c))
        .transpose()?;
    if text.is_none() && vector.is_none() {
        return Err(Error::query(
            "fusion() requires a vector (similar_to/nearest) or text() clause",
        ));
    }
    let alpha = match &q.fusion {
        Some(f) if (0.0..=1.0).contains(&f.alpha) => f.alpha,
        Some(_) => return Err(Error::query("fusion alpha must be between 0 and 1")),
        None => 1.0,
    };
    Ok(Some(Ranker::Legacy {
        text,
        vector,
        alpha,
    }))
}

impl Ranker {
    /// The same ranking without approximation: pages walk the exact order
    /// (a graph's top-k says nothing about the rows after a cursor).
    pub fn exact(self) -> Ranker {
        match self {
            Ranker::Vector(vq, VectorPath::Hnsw { .. }) => {
                Ranker::Vector(vq, VectorPath::ColumnScan)
            }
            other => other,
        }
    }

    /// The window bound the clause itself imposes (hybrid `top_k`).
    pub fn limit(&self, q: &Select) -> Option<u64> {
        match (self, &q.hybrid) {
            (Ranker::Hybrid(_), Some(h)) => Some(q.limit.map_or(h.top_k, |l| l.min(h.top_k))),
            _ => q.limit,
        }
    }

    /// Scores the rows `matcher` reaches into `out`.
    pub fn collect<'t>(
        &self,
        table: &'t Table,
        matcher: Matcher<'t>,
        out: &mut Collector<'t, '_>,
        deadline: &Deadline,
    ) -> Result<()> {
        let pk = table.pk.unwrap_or(0);
        match self {
            Ranker::Vector(vq, path) => vector::collect(table, vq, matcher, *path, out, deadline),
            Ranker::Text { query, indexed } => match query.index(table).filter(|_| *indexed) {
                Some(index) => text::from_index(table, index, query, deadline, out),
                None => {
                    let rows = matcher.collect(deadline)?;
                    text::scan(query, rows, deadline)?
                        .into_iter()
                        .for_each(|h| out.push(h));
                    Ok(())
                }
            },
            Ranker::Hybrid(hq) => {
                let rows = matcher.collect(deadline)?;
                hq.fuse(&rows, pk, deadline)?
                    .into_iter()
                    .for_each(|h| out.push(h));
                Ok(())
            }
            Ranker::Legacy {
                text,
                vector,
                alpha,
            } => {
                let mut buf = Vec::new();
                matcher.each(deadline, |row| {
                    let t = text.as_ref().map(|t| t.score(row));
                    let v = vector.as_ref().and_then(|v| v.score(row, &mut buf));
                    if let Some(score) = legacy::blend(*alpha, t, v) {
                        out.push(Hit::new(score, row));
                    }
                    true
                })
            }
        }
    }

    /// What `explain` reports about the ranked access path.
    pub fn describe(&self, table: &Table) -> Json {
        match self {
            Ranker::Vector(vq, path) => vector::describe(table, vq, *path),
            Ranker::Text { query, indexed } => text::describe(table, query, *indexed),
            Ranker::Hybrid(hq) => json!({
                "mode": "hybrid",
                "fusion": hq.fusion_name(),
                "text": text::describe(table, &hq.text, false),
                "vector": {"mode": "exact_scan_filtered", "metric": hq.vector.metric.name()},
            }),
            Ranker::Legacy { .. } => json!({"mode": "legacy_text_scan"}),
        }
    }
}

/// BM25 candidates of a `text_search` over the filtered rows (aggregations).
pub(crate) fn text_candidates<'t>(
    table: &'t Table,
    q: &Select,
    rows: Vec<&'t aura_core::Row>,
    deadline: &Deadline,
) -> Result<Option<Vec<Hit<'t>>>> {
    let Some(ts) = &q.text_search else {
        return Ok(None);
    };
    let query = TextQuery::prepare(
        &table.schema,
        &TextSpec {
            field: &ts.field,
            query: &ts.query,
            operator: &ts.operator,
            rank: &ts.rank,
            k1: ts.k1,
            b: ts.b,
        },
    )?;
    text::scan(&query, rows, deadline).map(Some)
}
