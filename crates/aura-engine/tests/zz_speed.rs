mod common;
use aura_engine::aura_core::ir::{Select, VectorClause};
use aura_engine::aura_core::{FieldDef, FieldKind, Row};
use aura_engine::Engine;
use common::*;
#[test]
#[ignore]
fn speed() {
    let e = Engine::new();
    e.create_table(schema("V", Some("id"), vec![field("id", FieldKind::Int), FieldDef::vector("v", 128)])).unwrap();
    let mut x = 1u64;
    let mut r = move || { x = x.wrapping_mul(6364136223846793005).wrapping_add(1); (x >> 40) as f64 / 16777216.0 - 0.5 };
    let rows: Vec<Row> = (0..10_000).map(|i| { let v: Vec<f64> = (0..128).map(|_| r()).collect(); row(vec![int(i), vector(&v)]) }).collect();
    insert_all(&e, "V", rows);
    let mut q = Select::new("V");
    q.vector = Some(VectorClause { field: "v".into(), metric: "cosine".into(), query: (0..128).map(|_| r()).collect() });
    q.limit = Some(10);
    let mut m = serde_json::Map::new();
    m.insert("ef_search".into(), serde_json::json!(64));
    q.vector_ann = Some(m);
    let t = std::time::Instant::now();
    e.select(None, &q).unwrap();
    eprintln!("build: {:?}", t.elapsed());
    let t = std::time::Instant::now();
    for _ in 0..2000 { e.select(None, &q).unwrap(); }
    eprintln!("ann select: {:?} per query", t.elapsed() / 2000);
}
