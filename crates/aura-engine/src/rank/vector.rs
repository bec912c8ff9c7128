//! Exact vector search (API.md §5.2). Scores are computed in f32 (components
//! cast to f32, f32 accumulation) and reported as f64, the normative
//! precision of the memory engine.

use std::cmp::Ordering;

use aura_core::ir::VectorClause;
use aura_core::{Error, FieldKind, ModelSchema, Result, Row, Value};

use crate::deadline::Deadline;
use crate::output::{ResultRow, Scores};
use crate::select::Window;
use crate::sort::{compare_rows, sort_prefix, SortKey};
use crate::table::Table;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Metric {
    Cosine,
    Dot,
    Euclidean,
}

impl Metric {
    pub fn parse(name: &str) -> Result<Metric> {
        match name {
            "cosine" => Ok(Metric::Cosine),
            "dot" => Ok(Metric::Dot),
            "euclidean" => Ok(Metric::Euclidean),
            _ => Err(Error::query(format!("Unsupported vector metric '{name}'"))
                .with_context("metric", name)),
        }
    }
}

/// A validated vector clause, ready to score rows.
#[derive(Debug, Clone)]
pub(crate) struct VectorQuery {
    pos: usize,
    metric: Metric,
    query: Vec<f32>,
    norm: f32,
}

fn dot(q: &[f32], v: &[f64]) -> f32 {
    q.iter().zip(v).map(|(a, b)| a * (*b as f32)).sum()
}

fn norm(v: impl Iterator<Item = f32>) -> f32 {
    v.map(|x| x * x).sum::<f32>().sqrt()
}

impl VectorQuery {
    /// Checks field, metric and dimension before any row is read.
    pub fn prepare(schema: &ModelSchema, clause: &VectorClause) -> Result<VectorQuery> {
        let pos = schema
            .field_index(&clause.field)
            .ok_or_else(|| crate::field_access::no_field(schema, &clause.field))?;
        let field = &schema.fields[pos];
        if field.kind != FieldKind::Vector {
            return Err(Error::query(format!(
                "{}.{} is not a vector field",
                schema.name, field.attr
            )));
        }
        let metric = Metric::parse(&clause.metric)?;
        if let Some(dim) = field.vector_dim.filter(|d| *d != clause.query.len()) {
            return Err(Error::validation(format!(
                "Query vector for {}.{} expects dimension {dim}, got {}",
                schema.name,
                field.attr,
                clause.query.len()
            ))
            .with_context("expected", dim)
            .with_context("actual", clause.query.len()));
        }
        let query: Vec<f32> = clause.query.iter().map(|x| *x as f32).collect();
        let norm = norm(query.iter().copied());
        Ok(VectorQuery {
            pos,
            metric,
            query,
            norm,
        })
    }

    /// The row's score; `None` when it has no vector of the query's length.
    pub fn score(&self, row: &[Value]) -> Option<f64> {
        let Some(Value::Vector(v)) = row.get(self.pos) else {
            return None;
        };
        if v.len() != self.query.len() {
            return None;
        }
        let q = &self.query;
        let score = match self.metric {
            Metric::Dot => dot(q, v),
            Metric::Cosine => {
                let denom = self.norm * norm(v.iter().map(|x| *x as f32));
                if denom == 0.0 {
                    0.0
                } else {
                    dot(q, v) / denom
                }
            }
            Metric::Euclidean => -norm(q.iter().zip(v.iter()).map(|(a, b)| a - *b as f32)),
        };
        Some(f64::from(score))
    }
}

/// Higher scores first; NaN (overflowing vectors) last.
fn by_score_desc(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
        (a_nan, b_nan) => a_nan.cmp(&b_nan),
    }
}

/// Scores the filtered rows and returns the requested window in ranked
/// order: score desc, then the explicit sort, then primary key asc.
pub(crate) fn search(
    table: &Table,
    vq: &VectorQuery,
    rows: Vec<&Row>,
    order: &[SortKey],
    window: Window,
    deadline: &Deadline,
) -> Result<Vec<ResultRow>> {
    let mut scored = Vec::with_capacity(rows.len());
    for row in rows {
        deadline.step()?;
        if let Some(score) = vq.score(row) {
            scored.push((score, row));
        }
    }
    let pk = table.pk.unwrap_or(0);
    sort_prefix(&mut scored, window.keep(), deadline, |a, b| {
        by_score_desc(a.0, b.0)
            .then_with(|| compare_rows(order, a.1, b.1))
            .then_with(|| a.1[pk].cmp_total(&b.1[pk]))
    })?;
    let ranked = scored.into_iter().enumerate().skip(window.offset);
    Ok(ranked
        .map(|(i, (score, row))| ResultRow {
            row: row.clone(),
            scores: Some(Scores {
                score,
                text_score: None,
                vector_score: None,
                rank: i as u64 + 1,
            }),
            includes: Vec::new(),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_core::FieldDef;
    use std::sync::Arc;

    fn schema() -> ModelSchema {
        ModelSchema {
            name: "Doc".into(),
            primary_key: Some("id".into()),
            fields: vec![
                FieldDef::new("id", FieldKind::Int),
                FieldDef::vector("embedding", 3),
            ],
            relationships: vec![],
        }
    }

    fn query(metric: &str, q: Vec<f64>) -> Result<VectorQuery> {
        VectorQuery::prepare(
            &schema(),
            &VectorClause {
                field: "embedding".into(),
                metric: metric.into(),
                query: q,
            },
        )
    }

    fn row(v: &[f64]) -> Vec<Value> {
        vec![Value::Int(1), Value::Vector(Arc::from(v))]
    }

    #[test]
    #[allow(clippy::approx_constant)] // the spec's rounded score
    fn metrics_match_the_spec() {
        let cos = query("cosine", vec![1.0, 0.0, 0.0]).unwrap();
        assert_eq!(cos.score(&row(&[1.0, 0.0, 0.0])), Some(1.0));
        let s = cos.score(&row(&[0.7, 0.7, 0.0])).unwrap();
        assert!((s - 0.707107).abs() < 5e-7, "{s}");
        assert_eq!(
            cos.score(&row(&[0.0, 0.0, 0.0])),
            Some(0.0),
            "zero norm scores 0"
        );
        let euc = query("euclidean", vec![1.0, 0.0, 0.0]).unwrap();
        let exact = euc.score(&row(&[1.0, 0.0, 0.0])).unwrap();
        assert!(
            exact == 0.0 && exact.is_sign_negative(),
            "exact match scores -0.0"
        );
        let dot = query("dot", vec![1.0, 0.0, 0.0]).unwrap();
        assert_eq!(dot.score(&row(&[0.7, 0.7, 0.0])), Some(f64::from(0.7f32)));
        assert_eq!(
            dot.score(&row(&[1.0, 0.0])),
            None,
            "other lengths are not scored"
        );
        assert_eq!(dot.score(&[Value::Int(1), Value::Null]), None);
    }

    #[test]
    fn clause_validation() {
        let err = query("l2", vec![1.0, 0.0, 0.0]).unwrap_err();
        assert_eq!(err.message, "Unsupported vector metric 'l2'");
        assert_eq!(err.code, aura_core::ErrorCode::QueryError);
        let err = query("cosine", vec![1.0]).unwrap_err();
        assert_eq!(
            err.message,
            "Query vector for Doc.embedding expects dimension 3, got 1"
        );
        assert_eq!(err.code, aura_core::ErrorCode::ValidationError);
    }
}
