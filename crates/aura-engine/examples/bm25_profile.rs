//! Times top-10 BM25 queries through the engine API, without Python:
//! `bm25_profile CORPUS.txt QUERIES.txt [rounds]` (one document, or one
//! query, per line). Prints the time and CPU time per query, a checksum of
//! the returned ids (two builds can be compared on the same input) and the
//! five slowest queries (wall time). With `EVICT_MB=N` it prints instead
//! the mean time of a query run right after writing N MiB elsewhere, and
//! the fastest and the median (upper middle) round's mean: on a VM a
//! round's mean drifts less than single queries do. With `EVICT_PER_PASS=1`
//! too, the N MiB are written once before each pass over all the queries
//! (as a peer's pass evicts the index in the Python bench) instead of
//! before each query. `K=n` asks for the top n (10 by default). In the
//! `EVICT_MB` mode, `PERF_CTL`/`PERF_ACK` let `perf record` sample only the
//! timed queries (`perf_ctl`).

use std::sync::Arc;
use std::time::Instant;

use aura_engine::aura_core::ir::{Select, TextSearch};
use aura_engine::aura_core::{FieldDef, FieldKind, ModelSchema, Row, Value};
use aura_engine::{Engine, OnConflict};

mod common;
use common::cpu_seconds;

/// The file's non-blank lines.
fn lines(path: &str) -> Vec<String> {
    std::fs::read_to_string(path)
        .expect("read")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect()
}

fn query(text: &str) -> Select {
    let mut sel = Select::new("Doc");
    sel.text_search = Some(TextSearch {
        field: "body".into(),
        query: text.into(),
        operator: "or".into(),
        rank: "bm25".into(),
        k1: None,
        b: None,
    });
    sel.limit = Some(
        std::env::var("K")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(10),
    );
    sel
}

/// Per round, the mean time of a query run right after writing `mb` MiB
/// elsewhere (before each query, or before each pass over them all),
/// which evicts the index from the caches closer to the core than that
/// (as a caller's own work between two queries does).
fn cold_queries(
    e: &Engine,
    queries: &[String],
    rounds: usize,
    mb: usize,
    per_pass: bool,
) -> Vec<f64> {
    let mut other = vec![1u8; mb << 20];
    let mut evict = || {
        other
            .iter_mut()
            .step_by(64)
            .for_each(|b| *b = b.wrapping_add(1))
    };
    // The queries run in batches that each start from evicted caches.
    let batch = if per_pass { queries.len().max(1) } else { 1 };
    (0..rounds)
        .map(|_| {
            let mut total = 0.0;
            for queries in queries.chunks(batch) {
                evict();
                perf_ctl("enable");
                for q in queries {
                    let start = Instant::now();
                    std::hint::black_box(e.select(None, &query(q)).expect("select"));
                    total += start.elapsed().as_secs_f64();
                }
                perf_ctl("disable");
            }
            total / queries.len() as f64
        })
        .collect()
}

/// Tells `perf record --control=fifo:CTL,ACK -D -1` to start (`enable`)
/// or stop (`disable`) sampling, when `PERF_CTL` (and `PERF_ACK`) name
/// those fifos: only the timed queries of the `EVICT_MB` mode are then
/// sampled, not loading the corpus nor writing the eviction buffer.
fn perf_ctl(cmd: &str) {
    use std::io::{Read, Write};
    let Ok(ctl) = std::env::var("PERF_CTL") else {
        return;
    };
    let mut fifo = std::fs::OpenOptions::new()
        .write(true)
        .open(ctl)
        .expect("PERF_CTL");
    writeln!(fifo, "{cmd}").expect("PERF_CTL write");
    if let Ok(ack) = std::env::var("PERF_ACK") {
        let mut reply = [0u8; 5];
        std::fs::File::open(ack)
            .and_then(|mut f| f.read_exact(&mut reply))
            .expect("PERF_ACK");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let corpus = lines(&args[1]);
    let queries = lines(&args[2]);
    let rounds: usize = args.get(3).map_or(20, |r| r.parse().expect("rounds"));
    let e = Engine::new();
    let mut body = FieldDef::new("body", FieldKind::Str);
    body.full_text = true;
    e.create_table(Arc::new(ModelSchema {
        name: "Doc".into(),
        primary_key: Some("id".into()),
        fields: vec![FieldDef::new("id", FieldKind::Int), body],
        relationships: vec![],
    }))
    .expect("create");
    let rows: Vec<Row> = corpus
        .iter()
        .enumerate()
        .map(|(i, d)| Arc::from(vec![Value::Int(i as i64), Value::str(d)]))
        .collect();
    e.insert(None, "Doc", rows, OnConflict::Error)
        .expect("insert");
    if let Ok(mb) = std::env::var("EVICT_MB") {
        let mb = mb.parse().expect("EVICT_MB: megabytes");
        let per_pass = std::env::var("EVICT_PER_PASS").is_ok_and(|v| v == "1");
        let rounds = rounds.max(1);
        let mut per_round = cold_queries(&e, &queries, rounds, mb, per_pass);
        let mean = per_round.iter().sum::<f64>() / per_round.len() as f64;
        per_round.sort_by(f64::total_cmp);
        let before = if per_pass {
            "each pass over the queries"
        } else {
            "each query"
        };
        println!(
            "cold query {:.2}us (after writing {mb} MiB before {before}); \
             per round: fastest {:.2}us, median {:.2}us",
            mean * 1e6,
            per_round[0] * 1e6,
            per_round[per_round.len() / 2] * 1e6,
        );
        return;
    }
    let (start, cpu) = (Instant::now(), cpu_seconds());
    let mut checksum = 0i64;
    for _ in 0..rounds {
        for q in &queries {
            let out = e.select(None, &query(q)).expect("select");
            for (rank, r) in out.rows.iter().enumerate() {
                if let Value::Int(id) = r.row[0] {
                    checksum = checksum
                        .wrapping_mul(31)
                        .wrapping_add(id * (rank as i64 + 1));
                }
            }
        }
    }
    let n = (rounds * queries.len()) as f64;
    println!(
        "query {:.2}us (cpu {:.2}us)  checksum {checksum}",
        start.elapsed().as_secs_f64() / n * 1e6,
        (cpu_seconds() - cpu) / n * 1e6
    );
    // Wall time per query, slowest first.
    let mut slowest: Vec<(f64, &String)> = queries
        .iter()
        .map(|q| {
            let start = Instant::now();
            for _ in 0..rounds {
                e.select(None, &query(q)).expect("select");
            }
            (start.elapsed().as_secs_f64() / rounds as f64, q)
        })
        .collect();
    slowest.sort_by(|a, b| b.0.total_cmp(&a.0));
    for (seconds, q) in slowest.iter().take(5) {
        println!("{:8.1}us  {q}", seconds * 1e6);
    }
}
