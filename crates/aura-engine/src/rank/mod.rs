//! Ranked retrieval. Exact vector search lives in `vector`; BM25 text
//! ranking, hybrid fusion and approximate (HNSW) search plug in here as
//! sibling modules. Until they exist, their clauses are rejected with a
//! capability error: a ranked clause is never silently dropped (§16 row 6).

pub(crate) mod vector;

use aura_core::ir::Select;
use aura_core::{Error, Result};

/// Backend name used in capability errors.
const BACKEND: &str = "memory";

/// Rejects ranked clauses this build cannot execute.
pub(crate) fn check_supported(q: &Select) -> Result<()> {
    if q.hybrid.is_some() {
        return Err(Error::capability(BACKEND, "hybrid_search", "hybrid search"));
    }
    if q.text_search.is_some() || q.text.is_some() || q.fusion.is_some() {
        return Err(Error::capability(
            BACKEND,
            "full_text_search",
            "ranked full-text search",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_core::ir::{Fusion, Hybrid, TextSearch, Weights};
    use aura_core::ErrorCode;

    #[test]
    fn text_and_hybrid_clauses_are_capability_errors() {
        let mut q = Select::new("Doc");
        assert!(check_supported(&q).is_ok());
        q.text_search = Some(TextSearch {
            field: "body".into(),
            query: "v".into(),
            operator: "or".into(),
            rank: "bm25".into(),
            k1: None,
            b: None,
        });
        let err = check_supported(&q).unwrap_err();
        assert_eq!(err.code, ErrorCode::BackendCapabilityError);
        assert_eq!(
            err.message,
            "Backend 'memory' does not support ranked full-text search"
        );
        assert_eq!(
            err.context_value("capability"),
            Some(&"full_text_search".into())
        );
        q.text_search = None;
        q.fusion = Some(Fusion { alpha: 0.5 });
        assert_eq!(
            check_supported(&q).unwrap_err().code,
            ErrorCode::BackendCapabilityError
        );
        q.hybrid = Some(Hybrid {
            text_field: "body".into(),
            text_query: "v".into(),
            vector_field: "e".into(),
            vector: vec![1.0],
            top_k: 3,
            metric: "cosine".into(),
            weights: Weights {
                text: 0.5,
                vector: 0.5,
            },
            fusion: "weighted_sum".into(),
            operator: "or".into(),
            k1: None,
            b: None,
        });
        let err = check_supported(&q).unwrap_err();
        assert_eq!(
            err.message,
            "Backend 'memory' does not support hybrid search"
        );
        assert_eq!(
            err.context_value("capability"),
            Some(&"hybrid_search".into())
        );
    }
}
