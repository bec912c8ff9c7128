//! Exact vector search (API.md §5.2). Scores are computed in f32 (components
//! cast to f32, f32 accumulation) and reported as f64, the normative
//! precision of the memory engine.

use aura_core::ir::{Select, VectorClause};
use aura_core::{Error, FieldKind, ModelSchema, Result, Value};
use serde_json::{json, Value as Json};

use crate::deadline::Deadline;
use crate::search::hnsw::{HnswParams, Vectors};
use crate::search::kernels::{self, Metric};
use crate::search::VectorColumn;
use crate::select::Matcher;
use crate::table::Table;

use super::collect::{Collector, Hit};

pub(crate) fn parse_metric(name: &str) -> Result<Metric> {
    match name {
        "cosine" => Ok(Metric::Cosine),
        "dot" => Ok(Metric::Dot),
        "euclidean" => Ok(Metric::Euclidean),
        _ => Err(Error::query(format!("Unsupported vector metric '{name}'"))
            .with_context("metric", name)),
    }
}

/// A validated vector clause, ready to score rows.
#[derive(Debug, Clone)]
pub(crate) struct VectorQuery {
    pub pos: usize,
    pub metric: Metric,
    query: Vec<f32>,
    norm: f32,
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
        let metric = parse_metric(&clause.metric)?;
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
        let norm = kernels::norm(&query);
        Ok(VectorQuery {
            pos,
            metric,
            query,
            norm,
        })
    }

    /// The score of an f32 record and its norm.
    #[inline]
    fn score_record(&self, v: &[f32], v_norm: f32) -> f64 {
        f64::from(kernels::score(
            self.metric,
            &self.query,
            self.norm,
            v,
            v_norm,
        ))
    }

    /// The row's score; `None` when it has no vector of the query's length.
    /// `buf` is scratch space reused across rows.
    pub fn score(&self, row: &[Value], buf: &mut Vec<f32>) -> Option<f64> {
        let Some(Value::Vector(v)) = row.get(self.pos) else {
            return None;
        };
        if v.len() != self.query.len() {
            return None;
        }
        buf.clear();
        buf.extend(v.iter().map(|x| *x as f32));
        Some(self.score_record(buf, kernels::norm(buf)))
    }
}

/// How a vector query reaches its rows (reported by `explain`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum VectorPath {
    /// Every row of the contiguous column.
    ColumnScan,
    /// The rows the filters matched, scored one by one.
    FilteredScan,
    Hnsw {
        ef: usize,
    },
}

/// The validated `vector_ann` options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct AnnOptions {
    pub m: usize,
    pub ef_construction: usize,
    pub ef_search: usize,
}

pub(crate) fn ann_options(q: &Select) -> Result<Option<AnnOptions>> {
    let Some(map) = &q.vector_ann else {
        return Ok(None);
    };
    let mut opts = AnnOptions {
        m: HnswParams::DEFAULT_M,
        ef_construction: HnswParams::DEFAULT_EF_CONSTRUCTION,
        ef_search: HnswParams::DEFAULT_EF_SEARCH,
    };
    for (name, value) in map {
        let n = value
            .as_u64()
            .filter(|n| *n > 0)
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| {
                Error::query(format!(
                    "approximate option '{name}' must be a positive int"
                ))
            })?;
        match name.as_str() {
            "m" => opts.m = n.min(256),
            "ef_construction" => opts.ef_construction = n,
            "ef_search" => opts.ef_search = n,
            _ => {
                return Err(Error::query(
                    "approximate accepts only m, ef_construction and ef_search",
                )
                .with_context("option", name.as_str()))
            }
        }
    }
    Ok(Some(opts))
}

/// The graph parameters an approximate query needs built, if it can use
/// one: an unfiltered query over a stored column.
pub(crate) fn ann_build(table: &Table, q: &Select) -> Result<Option<(usize, HnswParams)>> {
    let (Some(clause), Some(opts)) = (&q.vector, ann_options(q)?) else {
        return Ok(None);
    };
    if !q.filters.is_empty() {
        return Ok(None);
    }
    let vq = VectorQuery::prepare(&table.schema, clause)?;
    let params = HnswParams {
        metric: vq.metric,
        m: opts.m,
        ef_construction: opts.ef_construction,
    };
    Ok(table.search.vector(vq.pos).map(|_| (vq.pos, params)))
}

pub(crate) fn choose_path(
    table: &Table,
    vq: &VectorQuery,
    matcher: &Matcher<'_>,
    ann: Option<AnnOptions>,
) -> VectorPath {
    let column = table.search.vector(vq.pos);
    if !matcher.is_everything() || column.is_none() {
        return VectorPath::FilteredScan;
    }
    match (ann, column.and_then(|c| c.ann(vq.metric))) {
        (Some(opts), Some(_)) => VectorPath::Hnsw { ef: opts.ef_search },
        _ => VectorPath::ColumnScan,
    }
}

pub(crate) fn describe(table: &Table, vq: &VectorQuery, path: VectorPath) -> Json {
    let column = table.search.vector(vq.pos);
    let live = table.rows.len();
    match (path, column) {
        (VectorPath::Hnsw { ef }, Some(col)) => {
            let nodes = col.ann(vq.metric).map_or(0, |g| g.nodes());
            json!({"mode": "hnsw", "metric": vq.metric.name(), "graph_nodes": nodes, "ef_search": ef, "rows": live})
        }
        (VectorPath::ColumnScan, Some(col)) => json!({
            "mode": "exact_scan", "metric": vq.metric.name(), "candidates": live,
            "bytes_scanned": live * col.dim * 4,
        }),
        _ => json!({"mode": "exact_scan_filtered", "metric": vq.metric.name()}),
    }
}

/// Scores rows into `out` along `path`.
pub(crate) fn collect<'t>(
    table: &'t Table,
    vq: &VectorQuery,
    matcher: Matcher<'t>,
    path: VectorPath,
    out: &mut Collector<'t, '_>,
    deadline: &Deadline,
) -> Result<()> {
    let column = table.search.vector(vq.pos);
    match (path, column) {
        (VectorPath::ColumnScan, Some(col)) => scan_column(table, col, vq, out, deadline),
        (VectorPath::Hnsw { ef }, Some(col)) => {
            ann_search(table, col, vq, ef, out);
            deadline.check()
        }
        _ => {
            let mut buf = Vec::new();
            matcher.each(deadline, |row| {
                if let Some(score) = vq.score(row, &mut buf) {
                    out.push(Hit::new(score, row));
                }
                true
            })
        }
    }
}

fn scan_column<'t>(
    table: &'t Table,
    col: &VectorColumn,
    vq: &VectorQuery,
    out: &mut Collector<'t, '_>,
    deadline: &Deadline,
) -> Result<()> {
    let slots = &table.search.slots;
    let mut scores = Vec::with_capacity(crate::search::chunked::CHUNK);
    for ((first, records), (_, norms)) in col.data.runs().zip(col.norms.runs()) {
        deadline.check()?;
        kernels::score_run(vq.metric, &vq.query, vq.norm, records, norms, &mut scores);
        for (i, (score, norm)) in scores.iter().zip(norms).enumerate() {
            let score = f64::from(*score);
            // Rows below the kept window's floor are skipped before their
            // row is even looked up.
            if *norm == crate::search::ABSENT || !out.may_take(score) {
                continue;
            }
            if let Some(row) = slots.row(first + i) {
                out.push(Hit::new(score, row));
            }
        }
    }
    Ok(())
}

fn ann_search<'t>(
    table: &'t Table,
    col: &VectorColumn,
    vq: &VectorQuery,
    ef: usize,
    out: &mut Collector<'t, '_>,
) {
    let Some(graph) = col.ann(vq.metric) else {
        return;
    };
    let slots = &table.search.slots;
    let vecs = Vectors::new(&col.data, &col.norms);
    let k = out.keep().unwrap_or(slots.live());
    // Deleted rows stay in the graph as waypoints: widen the search so the
    // candidate list still holds about `ef` live rows.
    let ef = ef.saturating_mul(graph.nodes()) / slots.live().max(1);
    // The graph ranks what it finds by exact scores, the ones a scan gives.
    for (score, row) in graph.search(vecs, slots, &vq.query, vq.norm, k, ef) {
        out.push(Hit::new(f64::from(score), row));
    }
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

    trait ScoreOf {
        fn score_of(&self, row: &[Value]) -> Option<f64>;
    }

    impl ScoreOf for VectorQuery {
        fn score_of(&self, row: &[Value]) -> Option<f64> {
            self.score(row, &mut Vec::new())
        }
    }

    #[test]
    #[allow(clippy::approx_constant)] // the spec's rounded score
    fn metrics_match_the_spec() {
        let cos = query("cosine", vec![1.0, 0.0, 0.0]).unwrap();
        assert_eq!(cos.score_of(&row(&[1.0, 0.0, 0.0])), Some(1.0));
        let s = cos.score_of(&row(&[0.7, 0.7, 0.0])).unwrap();
        assert!((s - 0.707107).abs() < 5e-7, "{s}");
        assert_eq!(
            cos.score_of(&row(&[0.0, 0.0, 0.0])),
            Some(0.0),
            "zero norm scores 0"
        );
        let euc = query("euclidean", vec![1.0, 0.0, 0.0]).unwrap();
        let exact = euc.score_of(&row(&[1.0, 0.0, 0.0])).unwrap();
        assert!(
            exact == 0.0 && exact.is_sign_negative(),
            "exact match scores -0.0"
        );
        let dot = query("dot", vec![1.0, 0.0, 0.0]).unwrap();
        assert_eq!(
            dot.score_of(&row(&[0.7, 0.7, 0.0])),
            Some(f64::from(0.7f32))
        );
        assert_eq!(
            dot.score_of(&row(&[1.0, 0.0])),
            None,
            "other lengths are not scored"
        );
        assert_eq!(dot.score_of(&[Value::Int(1), Value::Null]), None);
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
