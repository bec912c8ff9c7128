//! Bounded BM25 through the inverted index skips rows that cannot reach the
//! top k. These tests prove the pruned answer is exactly the exhaustive one
//! (same ids, same score bits, same order, ties broken by key) on random
//! Zipfian corpora with ties, k1/b variations, deletes and updates.

mod common;

use aura_engine::aura_core::ir::CompareOp as Op;
use aura_engine::aura_core::ir::{Select, TextSearch, Update};
use aura_engine::aura_core::{FieldKind, Row};
use aura_engine::{Engine, QueryOutput};
use common::*;
use proptest::prelude::*;
use serde_json::{json, Map};

/// Deterministic pseudo-random numbers in [0, 1) (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed | 1)
    }

    fn next(&mut self) -> f64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let bits = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        bits as f64 / (1u64 << 53) as f64
    }

    fn below(&mut self, n: usize) -> usize {
        ((self.next() * n as f64) as usize).min(n.saturating_sub(1))
    }

    /// A word of a Zipf-like vocabulary: low ranks are far more frequent.
    fn word(&mut self, vocab: usize) -> String {
        let u = self.next();
        format!("w{}", (u * u * u * vocab as f64) as usize)
    }

    fn text(&mut self, vocab: usize, max_len: usize) -> String {
        let n = self.below(max_len + 1);
        (0..n)
            .map(|_| self.word(vocab))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn corpus_table() -> Engine {
    let e = Engine::new();
    let mut body = field("body", FieldKind::Str);
    body.full_text = true;
    e.create_table(schema(
        "Doc",
        Some("id"),
        vec![field("id", FieldKind::Int), body],
    ))
    .unwrap();
    e
}

/// `n` documents; every fifth repeats an earlier one, so equal scores
/// (ties broken by key) are common.
fn load(e: &Engine, rng: &mut Rng, n: usize, vocab: usize, max_len: usize) {
    let mut texts: Vec<String> = Vec::with_capacity(n);
    for _ in 0..n {
        let text = match texts.len() {
            len if len > 0 && rng.below(5) == 0 => texts[rng.below(len)].clone(),
            _ => rng.text(vocab, max_len),
        };
        texts.push(text);
    }
    let rows: Vec<Row> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| row(vec![int(i as i64), s(t)]))
        .collect();
    insert_all(e, "Doc", rows);
}

/// Deletes about a sixth of the rows and rewrites the text of another
/// sixth (an update moves the row to a new slot).
fn churn(e: &Engine, rng: &mut Rng, n: usize, vocab: usize, max_len: usize) {
    let doomed = rng.below(6) as i64;
    for id in (doomed..n as i64).step_by(6) {
        let q = filtered("Doc", vec![cmp(Op::Eq, "Doc", "id", json!(id))]);
        assert_eq!(e.delete(None, &q).unwrap(), 1);
    }
    for id in ((doomed + 3) % 6..n as i64).step_by(6) {
        let mut set = Map::new();
        set.insert("body".into(), json!(rng.text(vocab, max_len)));
        let upd = Update {
            model: "Doc".into(),
            filters: vec![cmp(Op::Eq, "Doc", "id", json!(id))],
            set,
        };
        assert_eq!(e.update(None, &upd).unwrap(), 1);
    }
}

fn bm25(query: &str, k1: Option<f64>, b: Option<f64>) -> Select {
    Select {
        text_search: Some(TextSearch {
            field: "body".into(),
            query: query.into(),
            operator: "or".into(),
            rank: "bm25".into(),
            k1,
            b,
        }),
        ..Select::new("Doc")
    }
}

/// Ids and score bits in ranked order.
fn ranked(out: &QueryOutput) -> Vec<(i64, u64)> {
    out.rows
        .iter()
        .map(|r| (as_int(&r.row[0]), r.scores.unwrap().score.to_bits()))
        .collect()
}

/// The bounded query (pruned) against the unbounded one (every posting
/// scored) cut to the same window, and against the token scan.
fn assert_pruning_exact(e: &Engine, base: &Select, limit: u64, offset: u64) {
    let everything = ranked(&e.select(None, base).unwrap());
    let mut bounded = base.clone();
    bounded.limit = Some(limit);
    bounded.offset = Some(offset);
    let pruned = ranked(&e.select(None, &bounded).unwrap());
    let want: Vec<(i64, u64)> = everything
        .iter()
        .skip(offset as usize)
        .take(limit as usize)
        .copied()
        .collect();
    assert_eq!(pruned, want, "limit {limit} offset {offset}");
    // A filter every row passes forces the token scan.
    let mut scanned = bounded.clone();
    scanned.filters = vec![cmp(Op::Ge, "Doc", "id", json!(0))];
    assert_eq!(ranked(&e.select(None, &scanned).unwrap()), want);
    // The first ranked page (no cursor yet) is pruned the same way.
    let mut page = base.clone();
    page.page_size = Some(limit);
    page.offset = Some(offset);
    let (first, _) = e.search_page(None, &page).unwrap();
    assert_eq!(ranked(&first), want, "first page");
}

const K1S: [Option<f64>; 5] = [None, Some(0.0), Some(0.4), Some(1.2), Some(3.0)];
const BS: [Option<f64>; 4] = [None, Some(0.0), Some(0.5), Some(1.0)];

fn queries(rng: &mut Rng, vocab: usize, count: usize) -> Vec<String> {
    (0..count)
        .map(|_| {
            let n = 1 + rng.below(5);
            let mut q: Vec<String> = (0..n).map(|_| rng.word(vocab)).collect();
            if rng.below(4) == 0 {
                q.push("absent".into());
            }
            if rng.below(4) == 0 {
                q.push(q[0].clone());
            }
            q.join(" ")
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    #[test]
    fn pruned_top_k_equals_exhaustive(
        seed in any::<u64>(),
        n in 1usize..400,
        vocab in 2usize..60,
        max_len in 1usize..30,
        with_churn in any::<bool>(),
    ) {
        let mut rng = Rng::new(seed);
        let e = corpus_table();
        load(&e, &mut rng, n, vocab, max_len);
        if with_churn {
            churn(&e, &mut rng, n, vocab, max_len);
        }
        for query in queries(&mut rng, vocab, 6) {
            let base = bm25(&query, K1S[rng.below(K1S.len())], BS[rng.below(BS.len())]);
            for (limit, offset) in [(1, 0), (3, 0), (10, 0), (10, 5), (40, 0)] {
                assert_pruning_exact(&e, &base, limit, offset);
            }
        }
    }
}

/// A larger corpus where frequent terms are long lists next to rare ones,
/// so bounded queries leave long lists out of the scan and look rows up in
/// them instead.
#[test]
fn pruned_top_k_equals_exhaustive_on_a_large_zipfian_corpus() {
    let mut rng = Rng::new(0xB125);
    let (n, vocab, max_len) = (6_000, 2_000, 60);
    let e = corpus_table();
    load(&e, &mut rng, n, vocab, max_len);
    let mut qs = queries(&mut rng, vocab, 60);
    // A very frequent term next to rare ones.
    qs.extend(["w0 w1500", "w1 w900 w1700", "w0 w1 w2 w1999", "w3 w0"].map(String::from));
    let check = |e: &Engine, rng: &mut Rng| {
        for query in &qs {
            let base = bm25(query, K1S[rng.below(K1S.len())], BS[rng.below(BS.len())]);
            // k = 64 and 65 sit on either side of the cached top weights.
            for (limit, offset) in [(1, 0), (10, 0), (10, 20), (64, 0), (60, 5), (100, 0)] {
                assert_pruning_exact(e, &base, limit, offset);
            }
        }
    };
    check(&e, &mut rng);
    churn(&e, &mut rng, n, vocab, max_len);
    check(&e, &mut rng);
}

/// Rows tied with the k-th score all reach the collector: the window ends
/// on the lowest keys among equal scores.
#[test]
fn ties_at_the_kth_score_break_by_key() {
    let e = corpus_table();
    let mut rows = vec![row(vec![int(100), s("rare rare")])];
    rows.extend((0..50).map(|i| row(vec![int(i), s("common filler")])));
    rows.extend((50..60).map(|i| row(vec![int(i), s("rare filler")])));
    insert_all(&e, "Doc", rows);
    let mut q = bm25("rare common", None, None);
    q.limit = Some(3);
    let got: Vec<i64> = ranked(&e.select(None, &q).unwrap())
        .into_iter()
        .map(|(id, _)| id)
        .collect();
    assert_eq!(got, vec![100, 50, 51]);
    assert_pruning_exact(&e, &bm25("rare common", None, None), 3, 0);
    assert_pruning_exact(&e, &bm25("common", Some(0.0), None), 7, 2);
}

/// Lists keep their posting weights between queries for the statistics
/// they were computed with. A query after a write (new statistics), with
/// other k1/b, or in a snapshot taken before the write must not see stale
/// weights: each answer equals the token scan's, which keeps none.
#[test]
fn cached_weights_follow_writes_parameters_and_snapshots() {
    let mut rng = Rng::new(0x1A7);
    let (n, vocab, max_len) = (1_500, 300, 40);
    let e = corpus_table();
    load(&e, &mut rng, n, vocab, max_len);
    let qs = ["w0 w150", "w2 w40 w280", "w1", "w0 w1 w2 w3"];
    let check = |e: &Engine, k1: Option<f64>, b: Option<f64>| {
        for query in qs {
            // Twice: the second run reads what the first one cached.
            for _ in 0..2 {
                assert_pruning_exact(e, &bm25(query, k1, b), 10, 0);
            }
        }
    };
    check(&e, None, None);
    check(&e, Some(0.4), Some(1.0));
    let before = e.begin();
    let snapshot: Vec<Vec<(i64, u64)>> = qs
        .iter()
        .map(|q| {
            let mut sel = bm25(q, None, None);
            sel.limit = Some(10);
            ranked(&e.select(Some(before), &sel).unwrap())
        })
        .collect();
    // Writes that touch none of the query terms still change the row
    // count and the average length, so every weight.
    let rows: Vec<Row> = (0..40)
        .map(|i| row(vec![int(n as i64 + i), s("zz1 zz2 zz3")]))
        .collect();
    insert_all(&e, "Doc", rows);
    check(&e, None, None);
    for (query, want) in qs.iter().zip(&snapshot) {
        let mut sel = bm25(query, None, None);
        sel.limit = Some(10);
        // The snapshot's statistics are the old ones, and so its answer.
        assert_eq!(&ranked(&e.select(Some(before), &sel).unwrap()), want);
    }
    e.commit(before).unwrap();
    churn(&e, &mut rng, n, vocab, max_len);
    check(&e, None, None);
}

/// Frequent terms' lists span several chunks (a write copies only the
/// chunk it changes, the rest stay shared with earlier snapshots). Rounds
/// of one-row deletes (with a few inserts) thin the lists until chunks
/// merge and go; snapshots taken before each round answer bounded and
/// unbounded queries as they did, and the current state stays exact.
#[test]
fn snapshots_keep_their_postings_through_one_row_writes() {
    let mut rng = Rng::new(0xC40C);
    let (n, vocab, max_len) = (6_000, 400, 50);
    let e = corpus_table();
    load(&e, &mut rng, n, vocab, max_len);
    let qs = ["w0 w200", "w1 w2 w399", "w0", "w3 w0 w1", "w0 w1"];
    let windows = [(None, None), (Some(1), Some(0)), (Some(10), Some(30))];
    let answers = |e: &Engine, txn| -> Vec<Vec<(i64, u64)>> {
        let mut out = Vec::new();
        for (q, (limit, offset)) in qs.iter().flat_map(|q| windows.map(|w| (q, w))) {
            let mut sel = bm25(q, None, None);
            (sel.limit, sel.offset) = (limit, offset);
            out.push(ranked(&e.select(Some(txn), &sel).unwrap()));
        }
        out
    };
    let mut snapshots = Vec::new();
    let mut next = n as i64;
    // A quarter of the rows, then another, then all but one in eight.
    let doomed = [|id: i64| id % 4 == 0, |id| id % 4 == 1, |id| id % 8 != 0];
    for (round, doomed) in doomed.iter().enumerate() {
        let txn = e.begin();
        snapshots.push((txn, answers(&e, txn)));
        for id in (0..n as i64).filter(|id| doomed(*id)) {
            let q = filtered("Doc", vec![cmp(Op::Eq, "Doc", "id", json!(id))]);
            e.delete(None, &q).unwrap();
            if id % 97 == 0 {
                let text = rng.text(vocab, max_len);
                insert_all(&e, "Doc", vec![row(vec![int(next), s(&text)])]);
                next += 1;
            }
        }
        for query in qs {
            for (limit, offset) in [(1, 0), (10, 0), (10, 30)] {
                assert_pruning_exact(&e, &bm25(query, None, None), limit, offset);
            }
        }
        for (txn, want) in &snapshots {
            assert_eq!(&answers(&e, *txn), want, "a snapshot after round {round}");
        }
    }
    for (txn, _) in snapshots {
        e.commit(txn).unwrap();
    }
}

/// Rows 0-3 hold `short`, rows 4-9 `long_head` then 40 filler words (far
/// above the average length), rows 10-26 an unrelated word.
fn short_and_long_rows(short: &str, long_head: &str) -> Engine {
    let e = corpus_table();
    let long = format!("{long_head} {}", vec!["f"; 40].join(" "));
    let mut rows: Vec<Row> = (0..4).map(|i| row(vec![int(i), s(short)])).collect();
    rows.extend((4..10).map(|i| row(vec![int(i), s(&long)])));
    rows.extend((10..27).map(|i| row(vec![int(i), s("c")])));
    insert_all(&e, "Doc", rows);
    e
}

/// With an extreme k1 some weights overflow to NaN (∞/∞) while others stay
/// finite. NaN scores sort last in the exhaustive answer; a bound taken
/// from cached weights must not let pruning drop those rows on the second
/// (warm) run when the first (cold) one kept them.
#[test]
fn weights_that_are_not_finite_disable_pruning_warm_or_cold() {
    let e = short_and_long_rows("a", "a a");
    let q = bm25("a", Some(1e308), Some(1.0));
    for _ in 0..2 {
        assert_pruning_exact(&e, &q, 10, 0);
    }
    assert_eq!(ranked(&e.select(None, &q).unwrap()).len(), 10);
}

/// With an extreme k1 a row's weights can also round to zero (a finite
/// numerator over a denominator that overflowed). The pruned path marks
/// untouched rows by a zero sum, so such a query must not take it: every
/// matching row comes back once, as in the exhaustive answer.
#[test]
fn weights_that_round_to_zero_keep_every_row_once() {
    let e = short_and_long_rows("a g", "a g");
    let q = bm25("a g", Some(1e308), Some(1.0));
    for _ in 0..2 {
        assert_pruning_exact(&e, &q, 10, 0);
    }
    let mut bounded = q.clone();
    bounded.limit = Some(10);
    let got = ranked(&e.select(None, &bounded).unwrap());
    let zeros = got.iter().filter(|(_, bits)| f64::from_bits(*bits) == 0.0);
    assert_eq!(zeros.count(), 6, "the long rows score zero");
    let mut ids: Vec<i64> = got.iter().map(|(id, _)| *id).collect();
    ids.sort_unstable();
    assert_eq!(ids, (0..10).collect::<Vec<_>>());
}

/// A query that times out in the middle of scoring leaves the per-thread
/// accumulators clean: afterwards an unbounded query (which counts terms
/// per row) and a pruned top-k answer exactly as before. The timed-out
/// query is an unbounded one, a pruned top-k scanning every list, and a
/// pruned top-k that leaves a list out and looks rows up in it.
#[test]
fn a_timed_out_scan_leaves_the_next_query_exact() {
    let e = corpus_table();
    let rows: Vec<Row> = (0..300_000)
        .map(|i| {
            let text = format!("common words in every row w{} v{}", i % 7, i % 11);
            row(vec![int(i), s(&text)])
        })
        .collect();
    insert_all(&e, "Doc", rows);
    let top = |query: &str| Select {
        limit: Some(10),
        ..bm25(query, None, None)
    };
    let queries = [bm25("v5 w3", None, None), top("v5 w3 common")];
    let answer = |q: &Select| ranked(&e.select(None, q).unwrap());
    let before: Vec<Vec<(i64, u64)>> = queries.iter().map(answer).collect();
    let holding = (0..300_000).filter(|i| i % 7 == 3 || i % 11 == 5).count();
    assert_eq!(before[0].len(), holding);
    // Every row holds the five shared words (1.5M postings to scan): a
    // timeout while scanning them leaves rows half counted or summed.
    let timed = [
        bm25("w3 common words in every row", None, None),
        top("common words in every row"),
        top("v5 w3 common words in every row"),
    ];
    for query in timed {
        let query = Select {
            timeout_ms: Some(1),
            ..query
        };
        let mut timed_out = 0;
        for _ in 0..10 {
            if let Err(err) = e.select(None, &query) {
                assert_eq!(err.code, aura_engine::aura_core::ErrorCode::Timeout);
                timed_out += 1;
                let after: Vec<Vec<(i64, u64)>> = queries.iter().map(answer).collect();
                assert!(
                    after == before,
                    "a query after a timeout answered differently"
                );
            }
        }
        assert!(timed_out > 0, "no query timed out");
    }
}
