//! Times an HNSW build and single queries through the engine API, without
//! Python: `hnsw_profile DATA.f32 QUERIES.f32 TRUTH.i64 [dim [rounds]]` (raw
//! little-endian arrays; TRUTH holds ten exact ids per query).

use std::sync::Arc;
use std::time::Instant;

use aura_engine::aura_core::ir::{Select, VectorClause};
use aura_engine::aura_core::{FieldDef, FieldKind, ModelSchema, Row, Value};
use aura_engine::{Engine, OnConflict};
use serde_json::{json, Map};

mod common;
use common::cpu_seconds;

fn read_f32(path: &str) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("read");
    bytes
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

fn read_i64(path: &str) -> Vec<i64> {
    let bytes = std::fs::read(path).expect("read");
    bytes
        .chunks_exact(8)
        .map(|b| i64::from_le_bytes(b.try_into().expect("8 bytes")))
        .collect()
}

fn query(q: &[f32]) -> Select {
    let mut sel = Select::new("Vec");
    sel.vector = Some(VectorClause {
        field: "v".into(),
        metric: std::env::var("METRIC").unwrap_or_else(|_| "cosine".into()),
        query: q.iter().map(|x| f64::from(*x)).collect(),
    });
    sel.limit = Some(10);
    let mut opts = Map::new();
    opts.insert("m".into(), json!(16));
    opts.insert("ef_construction".into(), json!(200));
    opts.insert("ef_search".into(), json!(64));
    sel.vector_ann = Some(opts);
    sel
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dim: usize = args.get(4).map_or(128, |d| d.parse().expect("dim"));
    let data = read_f32(&args[1]);
    let queries = read_f32(&args[2]);
    let truth = read_i64(&args[3]);
    let e = Engine::new();
    e.create_table(Arc::new(ModelSchema {
        name: "Vec".into(),
        primary_key: Some("id".into()),
        fields: vec![
            FieldDef::new("id", FieldKind::Int),
            FieldDef::vector("v", dim),
        ],
        relationships: vec![],
    }))
    .expect("create");
    let rows: Vec<Row> = data
        .chunks_exact(dim)
        .enumerate()
        .map(|(i, v)| {
            let v: Vec<f64> = v.iter().map(|x| f64::from(*x)).collect();
            Arc::from(vec![Value::Int(i as i64), Value::Vector(Arc::from(v))])
        })
        .collect();
    e.insert(None, "Vec", rows, OnConflict::Error)
        .expect("insert");
    let qs: Vec<&[f32]> = queries.chunks_exact(dim).collect();
    let (start, cpu) = (Instant::now(), cpu_seconds());
    e.select(None, &query(qs[0])).expect("build");
    let build_cpu = cpu_seconds() - cpu;
    println!(
        "build {:.2}s (cpu {build_cpu:.2}s)",
        start.elapsed().as_secs_f64()
    );
    let rounds: usize = args.get(5).map_or(5, |r| r.parse().expect("rounds"));
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let mut found = 0usize;
    for _ in 0..rounds {
        for (qi, q) in qs.iter().enumerate() {
            let out = e.select(None, &query(q)).expect("select");
            let want = &truth[qi * 10..qi * 10 + 10];
            found += out
                .rows
                .iter()
                .filter(|r| matches!(r.row[0], Value::Int(id) if want.contains(&id)))
                .count();
        }
    }
    let queries = (rounds * qs.len()) as f64;
    let per = start.elapsed().as_secs_f64() / queries;
    let per_cpu = (cpu_seconds() - cpu) / queries;
    println!(
        "query {:.1}us (cpu {:.1}us)  recall@10 {:.4}",
        per * 1e6,
        per_cpu * 1e6,
        found as f64 / (rounds * qs.len() * 10) as f64
    );
}
