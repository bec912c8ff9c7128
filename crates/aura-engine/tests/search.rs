//! Ranked search through the engine API: HNSW recall against exact search
//! (also after deletes and replacements), ranked pages, aggregations and
//! deadlines that interrupt ranking without touching the data.

mod common;

use aura_engine::aura_core::ir::CompareOp as Op;
use aura_engine::aura_core::ir::{Facet, MetricRequest, Select, TextSearch, VectorClause};
use aura_engine::aura_core::{ErrorCode, FieldDef, FieldKind, Row};
use aura_engine::Engine;
use common::*;
use serde_json::{json, Map};

const DIM: usize = 64;

/// Deterministic pseudo-random numbers in [-1, 1) (xorshift64*).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        bits as f64 / (1u64 << 52) as f64 - 1.0
    }

    fn vector(&mut self) -> Vec<f64> {
        (0..DIM).map(|_| self.next()).collect()
    }
}

fn vectors_table(n: usize, rng: &mut Rng) -> Engine {
    offset_vectors_table(n, rng, 0.0)
}

/// `n` random vectors, each component moved by `offset`.
fn offset_vectors_table(n: usize, rng: &mut Rng, offset: f64) -> Engine {
    let e = Engine::new();
    e.create_table(schema(
        "Vec",
        Some("id"),
        vec![field("id", FieldKind::Int), FieldDef::vector("v", DIM)],
    ))
    .unwrap();
    let rows: Vec<Row> = (0..n)
        .map(|i| {
            let v: Vec<f64> = rng.vector().iter().map(|x| x + offset).collect();
            row(vec![int(i as i64), vector(&v)])
        })
        .collect();
    insert_all(&e, "Vec", rows);
    e
}

fn nearest(q: Vec<f64>, approximate: bool) -> Select {
    nearest_by("cosine", q, approximate)
}

fn nearest_by(metric: &str, q: Vec<f64>, approximate: bool) -> Select {
    let mut sel = Select::new("Vec");
    sel.vector = Some(VectorClause {
        field: "v".into(),
        metric: metric.into(),
        query: q,
    });
    sel.limit = Some(10);
    if approximate {
        sel.vector_ann = Some(Map::new()); // default m, ef_construction, ef_search
    }
    sel
}

/// Mean recall@10 of approximate against exact search over `queries`.
fn recall(e: &Engine, queries: &[Vec<f64>]) -> f64 {
    recall_by(e, "cosine", queries)
}

fn recall_by(e: &Engine, metric: &str, queries: &[Vec<f64>]) -> f64 {
    let mut found = 0usize;
    for q in queries {
        let exact = select_ids(e, None, &nearest_by(metric, q.clone(), false));
        let approx = select_ids(e, None, &nearest_by(metric, q.clone(), true));
        found += approx.iter().filter(|id| exact.contains(id)).count();
    }
    found as f64 / (queries.len() * 10) as f64
}

/// Vectors far from the origin score close together (cosine near 1):
/// the walk's half-float navigation must still tell neighbours apart.
#[test]
fn hnsw_recall_at_10_holds_far_from_the_origin() {
    for metric in ["cosine", "dot", "euclidean"] {
        for offset in [10.0, 100.0] {
            let mut rng = Rng(0x9e37_79b9);
            let e = offset_vectors_table(3_000, &mut rng, offset);
            let queries: Vec<Vec<f64>> = (0..40)
                .map(|_| rng.vector().iter().map(|x| x + offset).collect())
                .collect();
            let found = recall_by(&e, metric, &queries);
            assert!(
                found >= 0.95,
                "{metric}, offset {offset}: recall@10 {found}"
            );
        }
    }
}

/// A graph built on an empty table centres its navigation on the vectors
/// that arrive later.
#[test]
fn hnsw_recall_holds_when_the_graph_is_built_before_the_data() {
    let offset = 100.0;
    let mut rng = Rng(0x5151_7777);
    let e = offset_vectors_table(0, &mut rng, offset);
    let probe: Vec<f64> = rng.vector();
    assert!(select_ids(&e, None, &nearest(probe, true)).is_empty());
    let rows: Vec<Row> = (0..3_000)
        .map(|i| {
            let v: Vec<f64> = rng.vector().iter().map(|x| x + offset).collect();
            row(vec![int(i), vector(&v)])
        })
        .collect();
    insert_all(&e, "Vec", rows);
    let queries: Vec<Vec<f64>> = (0..40)
        .map(|_| rng.vector().iter().map(|x| x + offset).collect())
        .collect();
    let found = recall(&e, &queries);
    assert!(found >= 0.95, "recall@10 {found}");
}

#[test]
fn hnsw_recall_at_10_holds_after_deletes_and_replacements() {
    let mut rng = Rng(0x1234_5678);
    let n = 10_000;
    let e = vectors_table(n, &mut rng);
    let queries: Vec<Vec<f64>> = (0..100).map(|_| rng.vector()).collect();
    let before = recall(&e, &queries);
    assert!(before >= 0.95, "recall@10 {before}");
    // Delete 20% of the rows and insert as many new ones.
    let doomed: Vec<serde_json::Value> = (0..n).step_by(5).map(|i| json!(i)).collect();
    let deleted = e
        .delete(
            None,
            &filtered("Vec", vec![cmp(Op::In, "Vec", "id", json!(doomed))]),
        )
        .unwrap();
    assert_eq!(deleted, 2_000);
    let fresh: Vec<Row> = (n..n + 2_000)
        .map(|i| row(vec![int(i as i64), vector(&rng.vector())]))
        .collect();
    insert_all(&e, "Vec", fresh);
    let after = recall(&e, &queries);
    assert!(after >= 0.95, "recall@10 after churn {after}");
    // Deleted rows never come back from the graph.
    for q in &queries[..10] {
        let ids = select_ids(&e, None, &nearest(q.clone(), true));
        assert!(
            ids.iter().all(|id| *id >= n as i64 || id % 5 != 0),
            "{ids:?}"
        );
    }
}

fn text_table(docs: &[&str]) -> Engine {
    let e = Engine::new();
    let mut body = field("body", FieldKind::Str);
    body.full_text = true;
    e.create_table(schema(
        "Txt",
        Some("id"),
        vec![
            field("id", FieldKind::Int),
            body,
            field("cat", FieldKind::Str).nullable(),
        ],
    ))
    .unwrap();
    let rows = docs
        .iter()
        .enumerate()
        .map(|(i, d)| {
            let cat = if i % 2 == 0 { s("even") } else { s("odd") };
            row(vec![int(i as i64 + 1), s(d), cat])
        })
        .collect();
    insert_all(&e, "Txt", rows);
    e
}

fn text_query(query: &str) -> Select {
    Select {
        text_search: Some(TextSearch {
            field: "body".into(),
            query: query.into(),
            operator: "or".into(),
            rank: "bm25".into(),
            k1: None,
            b: None,
        }),
        ..Select::new("Txt")
    }
}

#[test]
fn pages_continue_ranks_and_end_with_no_cursor() {
    let docs = ["a b", "a", "a a b", "b", "c", "a c", "a"];
    let e = text_table(&docs);
    let all = select_ids(&e, None, &text_query("a"));
    let mut q = text_query("a");
    q.page_size = Some(2);
    let mut seen = Vec::new();
    let mut ranks = Vec::new();
    loop {
        let (out, cursor) = e.search_page(None, &q).unwrap();
        seen.extend(ids(&out));
        ranks.extend(out.rows.iter().map(|r| r.scores.unwrap().rank));
        match cursor {
            Some(c) => q.cursor = Some(json!(c)),
            None => break,
        }
    }
    assert_eq!(seen, all);
    assert_eq!(ranks, (1..=all.len() as u64).collect::<Vec<_>>());
}

#[test]
fn aggregate_scoped_by_bm25_and_filters() {
    let e = text_table(&["red fox", "blue fox", "red hen", "green owl"]);
    let mut q = text_query("red fox");
    q.facets = vec![Facet {
        field: "cat".into(),
        limit: None,
    }];
    q.metrics = vec![
        MetricRequest {
            op: "count".into(),
            field: None,
        },
        MetricRequest {
            op: "max".into(),
            field: Some("id".into()),
        },
    ];
    let out = e.aggregate(None, &q).unwrap();
    assert_eq!(out["matched"], json!(3));
    assert_eq!(out["scanned"], json!(4));
    assert_eq!(out["search_scoped"], json!(true));
    assert_eq!(
        out["facets"][0]["buckets"],
        json!([{"value": "even", "count": 2}, {"value": "odd", "count": 1}])
    );
    assert_eq!(
        out["metrics"][1],
        json!({"op": "max", "value": 3, "field": "id"})
    );
    q.metrics[0].op = "median".into();
    assert_eq!(
        e.aggregate(None, &q).unwrap_err().code,
        ErrorCode::QueryError
    );
}

#[test]
fn a_deadline_stops_ranking_and_leaves_the_engine_intact() {
    let mut rng = Rng(99);
    let e = vectors_table(30_000, &mut rng);
    let mut slow = nearest(rng.vector(), false);
    slow.timeout_ms = Some(0);
    let txn = e.begin();
    let err = e.select(Some(txn), &slow).unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout);
    assert_eq!(e.select(None, &slow).unwrap_err().code, ErrorCode::Timeout);
    slow.timeout_ms = None;
    assert_eq!(select_ids(&e, Some(txn), &slow).len(), 10);
    e.commit(txn).unwrap();
    assert_eq!(e.row_count("Vec"), Some(30_000));
}

/// A row's tokens are counted whatever their case or separators: rows
/// that hold the same tokens score alike, on both paths.
#[test]
fn rows_with_the_same_tokens_in_another_case_score_alike() {
    let e = text_table(&[
        "bee bee ant",
        "BEE bee-ANT",
        "Bee,BEE ant!",
        "bee ant",
        "bée bee ant",
    ]);
    let indexed = text_query("BEE");
    let mut scanned = indexed.clone();
    scanned.filters = vec![cmp(Op::Ge, "Txt", "id", json!(0))];
    for q in [indexed, scanned] {
        let out = e.select(None, &q).unwrap();
        let score = |id: i64| {
            let at = ids(&out).iter().position(|x| *x == id).unwrap();
            out.rows[at].scores.unwrap().score
        };
        // Rows 1-3: tf 2 in three tokens; row 4: tf 1 in two; row 5
        // (non-ASCII) holds "bée", another token, and tf 1 in three.
        assert_eq!(score(2), score(1));
        assert_eq!(score(3), score(1));
        assert!(
            score(1) > score(4) && score(4) > score(5),
            "{:?}",
            ids(&out)
        );
    }
}

#[test]
fn inverted_index_and_token_scan_agree_to_the_bit() {
    let mut rng = Rng(5);
    // Mixed case, punctuation and non-ASCII rows: both paths tokenize
    // them alike (lowercased, split on what is not alphanumeric).
    let words = ["ant", "Bee", "CAT,", "dog!", "Éel", "fox-Fox", "gnu"];
    let docs: Vec<String> = (0..500)
        .map(|_| {
            let n = 1 + (rng.next().abs() * 9.0) as usize;
            (0..n)
                .map(|_| words[(rng.next().abs() * 6.99) as usize])
                .collect::<Vec<_>>()
                .join(" ")
        })
        .collect();
    let refs: Vec<&str> = docs.iter().map(String::as_str).collect();
    let e = text_table(&refs);
    for (query, k1, b) in [
        ("bee FOX", None, None),
        ("cat", Some(0.0), None),
        ("gnu éel ANT", Some(2.0), Some(0.0)),
        ("ÉEL dog", None, Some(1.0)),
    ] {
        let mut indexed = text_query(query);
        if let Some(ts) = indexed.text_search.as_mut() {
            ts.k1 = k1;
            ts.b = b;
        }
        // A filter every row passes forces the token-scan path.
        let mut scanned = indexed.clone();
        scanned.filters = vec![cmp(Op::Ge, "Txt", "id", json!(0))];
        let a = e.select(None, &indexed).unwrap();
        let b = e.select(None, &scanned).unwrap();
        assert!(!a.rows.is_empty());
        assert_eq!(ids(&a), ids(&b), "{query}");
        let bits = |o: &aura_engine::QueryOutput| -> Vec<u64> {
            o.rows
                .iter()
                .map(|r| r.scores.unwrap().score.to_bits())
                .collect()
        };
        assert_eq!(bits(&a), bits(&b), "{query}");
    }
}
