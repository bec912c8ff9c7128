//! Hybrid search (API.md §5.2): BM25 candidates and vector candidates of
//! the filtered rows, fused by weighted sum of min–max normalised scores or
//! by reciprocal rank fusion (k = 60).

use std::collections::HashMap;

use aura_core::ir::{Hybrid, VectorClause};
use aura_core::{Error, Key, ModelSchema, Result, Row};

use crate::deadline::Deadline;

use super::collect::{by_score_desc, Hit};
use super::text::{self, TextQuery, TextSpec};
use super::vector::VectorQuery;

/// The RRF constant; the API offers no parameter for it.
const RRF_K: f64 = 60.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fusion {
    WeightedSum,
    Rrf,
}

#[derive(Debug, Clone)]
pub(crate) struct HybridQuery {
    pub text: TextQuery,
    pub vector: VectorQuery,
    w_text: f64,
    w_vector: f64,
    fusion: Fusion,
}

impl HybridQuery {
    pub fn prepare(schema: &ModelSchema, h: &Hybrid) -> Result<HybridQuery> {
        let fusion = match h.fusion.as_str() {
            "weighted_sum" => Fusion::WeightedSum,
            "reciprocal_rank_fusion" => Fusion::Rrf,
            _ => {
                return Err(Error::query(
                    "fusion must be 'weighted_sum' or 'reciprocal_rank_fusion'",
                ))
            }
        };
        let (wt, wv) = (h.weights.text, h.weights.vector);
        if !(wt.is_finite() && wv.is_finite()) || wt < 0.0 || wv < 0.0 || wt + wv == 0.0 {
            return Err(Error::query(
                "hybrid weights must be non-negative and not both zero",
            ));
        }
        if h.top_k == 0 {
            return Err(Error::query("top_k must be a positive int"));
        }
        let text = TextQuery::prepare(
            schema,
            &TextSpec {
                field: &h.text_field,
                query: &h.text_query,
                operator: &h.operator,
                rank: "bm25",
                k1: h.k1,
                b: h.b,
            },
        )?;
        let vector = VectorQuery::prepare(
            schema,
            &VectorClause {
                field: h.vector_field.clone(),
                metric: h.metric.clone(),
                query: h.vector.clone(),
            },
        )?;
        Ok(HybridQuery {
            text,
            vector,
            w_text: wt,
            w_vector: wv,
            fusion,
        })
    }

    pub fn fusion_name(&self) -> &'static str {
        match self.fusion {
            Fusion::WeightedSum => "weighted_sum",
            Fusion::Rrf => "reciprocal_rank_fusion",
        }
    }

    /// Fused hits over `rows` (the filtered rows), unordered.
    pub fn fuse<'t>(
        &self,
        rows: &[&'t Row],
        pk: usize,
        deadline: &Deadline,
    ) -> Result<Vec<Hit<'t>>> {
        let text_hits = text::scan(&self.text, rows.iter().copied(), deadline)?;
        let mut buf = Vec::new();
        let mut vector_hits = Vec::new();
        for row in rows {
            deadline.step()?;
            if let Some(s) = self.vector.score(row, &mut buf) {
                vector_hits.push(Hit::new(s, row));
            }
        }
        let text_side = self.side(text_hits, pk);
        let vector_side = self.side(vector_hits, pk);
        let mut merged: HashMap<Key, Hit<'t>> = HashMap::new();
        for (hit, fused) in text_side {
            let entry = merged
                .entry(Key(hit.row[pk].clone()))
                .or_insert(Hit::new(0.0, hit.row));
            entry.text = Some(hit.score);
            entry.score += self.contribution(self.w_text, fused);
        }
        for (hit, fused) in vector_side {
            let entry = merged
                .entry(Key(hit.row[pk].clone()))
                .or_insert(Hit::new(0.0, hit.row));
            entry.vector = Some(hit.score);
            entry.score += self.contribution(self.w_vector, fused);
        }
        deadline.check()?;
        Ok(merged.into_values().collect())
    }

    /// A side's weighted share: `w·normalised` or `w/(k + rank)`.
    fn contribution(&self, weight: f64, value: f64) -> f64 {
        match self.fusion {
            Fusion::WeightedSum => weight * value,
            Fusion::Rrf => weight / value,
        }
    }

    /// Each hit with its side's fusion value: the normalised score, or
    /// `k + rank` for RRF.
    fn side<'t>(&self, mut hits: Vec<Hit<'t>>, pk: usize) -> Vec<(Hit<'t>, f64)> {
        match self.fusion {
            Fusion::WeightedSum => {
                let lo = hits.iter().map(|h| h.score).fold(f64::INFINITY, f64::min);
                let hi = hits
                    .iter()
                    .map(|h| h.score)
                    .fold(f64::NEG_INFINITY, f64::max);
                let span = hi - lo;
                hits.into_iter()
                    .map(|h| {
                        let norm = if span < 1e-12 {
                            1.0
                        } else {
                            (h.score - lo) / span
                        };
                        (h, norm)
                    })
                    .collect()
            }
            Fusion::Rrf => {
                hits.sort_by(|a, b| {
                    by_score_desc(a.score, b.score).then_with(|| a.row[pk].cmp_total(&b.row[pk]))
                });
                hits.into_iter()
                    .enumerate()
                    .map(|(i, h)| (h, RRF_K + (i + 1) as f64))
                    .collect()
            }
        }
    }
}
