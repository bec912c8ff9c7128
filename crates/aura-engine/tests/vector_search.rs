//! Exact vector search on API.md §15 dataset D.
// The expected scores are the spec's 6-decimal numbers, not math constants.
#![allow(clippy::approx_constant)]

mod common;

use aura_engine::aura_core::ir::{CompareOp as Op, Select, TextSearch, VectorClause};
use aura_engine::aura_core::{ErrorCode, FieldDef, FieldKind};
use aura_engine::{Engine, QueryOutput};
use common::*;
use serde_json::json;

fn dataset_d() -> Engine {
    let e = Engine::new();
    e.create_table(schema(
        "Doc",
        Some("id"),
        vec![
            field("id", FieldKind::Int),
            field("title", FieldKind::Str),
            field("body", FieldKind::Str),
            FieldDef::vector("embedding", 3),
        ],
    ))
    .unwrap();
    insert_all(
        &e,
        "Doc",
        vec![
            row(vec![
                int(1),
                s("Refunds"),
                s("vector index for refunds"),
                vector(&[1.0, 0.0, 0.0]),
            ]),
            row(vec![
                int(2),
                s("Apple"),
                s("the vector database index index"),
                vector(&[0.0, 1.0, 0.0]),
            ]),
            row(vec![
                int(3),
                s("Banana"),
                s("cooking recipes"),
                vector(&[0.7, 0.7, 0.0]),
            ]),
        ],
    );
    e
}

fn nearest(metric: &str, q: Vec<f64>) -> Select {
    Select {
        vector: Some(VectorClause {
            field: "embedding".into(),
            metric: metric.into(),
            query: q,
        }),
        limit: Some(3),
        ..Select::new("Doc")
    }
}

fn scores(out: &QueryOutput) -> Vec<f64> {
    out.rows
        .iter()
        .map(|r| (r.scores.expect("scored").score * 1e6).round() / 1e6)
        .collect()
}

#[test]
fn cosine() {
    let out = dataset_d()
        .select(None, &nearest("cosine", vec![1.0, 0.0, 0.0]))
        .unwrap();
    assert_eq!(ids(&out), vec![1, 3, 2]);
    assert_eq!(scores(&out), vec![1.0, 0.707107, 0.0]);
    let ranks: Vec<u64> = out.rows.iter().map(|r| r.scores.unwrap().rank).collect();
    assert_eq!(ranks, vec![1, 2, 3]);
    assert!(out.rows.iter().all(|r| {
        let s = r.scores.unwrap();
        s.text_score.is_none() && s.vector_score.is_none()
    }));
}

#[test]
fn euclidean() {
    let out = dataset_d()
        .select(None, &nearest("euclidean", vec![1.0, 0.0, 0.0]))
        .unwrap();
    assert_eq!(ids(&out), vec![1, 3, 2]);
    assert_eq!(scores(&out), vec![-0.0, -0.761577, -1.414214]);
    assert!(
        out.rows[0].scores.unwrap().score.is_sign_negative(),
        "exact match is -0.0"
    );
}

#[test]
fn dot() {
    let out = dataset_d()
        .select(None, &nearest("dot", vec![1.0, 0.0, 0.0]))
        .unwrap();
    assert_eq!(ids(&out), vec![1, 3, 2]);
    assert_eq!(scores(&out), vec![1.0, 0.7, 0.0]);
}

#[test]
fn ties_break_by_sort_then_primary_key_and_ranks_are_global() {
    let e = dataset_d();
    // [0,0,1] is orthogonal to every row: all score 0.
    let tied = nearest("cosine", vec![0.0, 0.0, 1.0]);
    assert_eq!(select_ids(&e, None, &tied), vec![1, 2, 3]);
    let sorted = Select {
        sort: vec![desc("title")],
        ..tied.clone()
    };
    assert_eq!(
        select_ids(&e, None, &sorted),
        vec![1, 3, 2],
        "explicit sort breaks score ties"
    );
    let page = Select {
        offset: Some(1),
        limit: Some(1),
        ..nearest("cosine", vec![1.0, 0.0, 0.0])
    };
    let out = e.select(None, &page).unwrap();
    assert_eq!(ids(&out), vec![3]);
    assert_eq!(out.rows[0].scores.unwrap().rank, 2);
}

#[test]
fn filters_run_before_scoring_and_unscored_rows_drop_out() {
    let e = dataset_d();
    let filtered = Select {
        filters: vec![cmp(Op::Ne, "Doc", "id", json!(1))],
        ..nearest("cosine", vec![1.0, 0.0, 0.0])
    };
    assert_eq!(select_ids(&e, None, &filtered), vec![3, 2]);
    let e2 = Engine::new();
    e2.create_table(schema(
        "V",
        Some("id"),
        vec![
            field("id", FieldKind::Int),
            FieldDef::vector("embedding", 3).nullable(),
        ],
    ))
    .unwrap();
    insert_all(
        &e2,
        "V",
        vec![
            row(vec![int(1), null()]),
            row(vec![int(2), vector(&[1.0, 1.0, 0.0])]),
        ],
    );
    let q = Select {
        model: "V".into(),
        ..nearest("dot", vec![1.0, 0.0, 0.0])
    };
    assert_eq!(select_ids(&e2, None, &q), vec![2]);
}

#[test]
fn clause_errors() {
    let e = dataset_d();
    let err = e
        .select(None, &nearest("l2", vec![1.0, 0.0, 0.0]))
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::QueryError, "Unsupported vector metric 'l2'")
    );
    let err = e
        .select(None, &nearest("cosine", vec![1.0, 0.0]))
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            ErrorCode::ValidationError,
            "Query vector for Doc.embedding expects dimension 3, got 2"
        )
    );
    let mut not_vector = nearest("cosine", vec![1.0]);
    not_vector.vector.as_mut().unwrap().field = "title".into();
    assert_eq!(
        e.select(None, &not_vector).unwrap_err().message,
        "Doc.title is not a vector field"
    );
    let text = Select {
        text_search: Some(TextSearch {
            field: "body".into(),
            query: "vector index".into(),
            operator: "or".into(),
            rank: "bm25".into(),
            k1: None,
            b: None,
        }),
        ..Select::new("Doc")
    };
    // Ranked text now runs (check 24 of §15).
    let out = e.select(None, &text).unwrap();
    assert_eq!(ids(&out), vec![2, 1]);
    let scores: Vec<f64> = out.rows.iter().map(|r| r.scores.unwrap().score).collect();
    assert!((scores[0] - 0.995433).abs() < 5e-7 && (scores[1] - 0.906302).abs() < 5e-7);
}

#[test]
fn approximate_search_on_a_tiny_graph_is_exact() {
    let mut q = nearest("cosine", vec![1.0, 0.0, 0.0]);
    q.vector_ann = Some(serde_json::Map::new());
    assert_eq!(select_ids(&dataset_d(), None, &q), vec![1, 3, 2]);
}
