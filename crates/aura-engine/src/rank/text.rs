//! Ranked full-text search (API.md §5.2): BM25 or term frequency over one
//! string field. Statistics use the filtered rows. Unfiltered queries on a
//! `full_text` field read the table's inverted index; any other query
//! tokenizes the matched rows. Both sum term contributions in one order
//! (`sum_order`: rarest term first), so they produce identical scores.

use std::cell::RefCell;
use std::sync::Arc;

use aura_core::{Error, ModelSchema, Result, Row, Value};
use serde_json::{json, Value as Json};

use crate::deadline::Deadline;
use crate::field_access::FieldAccess;
use crate::search::kernels::prefetch;
use crate::search::postings::Chunk;
use crate::search::text_index::{ImpactKey, Impacts, PostingList};
use crate::search::tokenize;
use crate::search::TextIndex;
use crate::table::Table;

use super::collect::{Collector, Hit};
use super::maxscore;

pub(crate) const DEFAULT_K1: f64 = 1.2;
pub(crate) const DEFAULT_B: f64 = 0.75;

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Ranking {
    Bm25 { k1: f64, b: f64 },
    TermFrequency,
}

/// The options of a `text_search` (or the text side of `hybrid`).
pub(crate) struct TextSpec<'a> {
    pub field: &'a str,
    pub query: &'a str,
    pub operator: &'a str,
    pub rank: &'a str,
    pub k1: Option<f64>,
    pub b: Option<f64>,
}

#[derive(Debug, Clone)]
pub(crate) struct TextQuery {
    field: FieldAccess,
    /// Distinct query tokens, in order of first appearance.
    terms: Vec<String>,
    /// How often each distinct term occurs in the query (term frequency).
    multiplicity: Vec<u64>,
    require_all: bool,
    ranking: Ranking,
}

fn bm25_params(k1: Option<f64>, b: Option<f64>) -> Result<(f64, f64)> {
    // Explicit zeros are honoured: only a missing value takes the default.
    let k1 = k1.unwrap_or(DEFAULT_K1);
    let b = b.unwrap_or(DEFAULT_B);
    if !(k1.is_finite() && k1 >= 0.0) {
        return Err(Error::query("k1 must be a non-negative number"));
    }
    if !(0.0..=1.0).contains(&b) {
        return Err(Error::query("b must be between 0 and 1"));
    }
    Ok((k1, b))
}

impl TextQuery {
    pub fn prepare(schema: &ModelSchema, spec: &TextSpec<'_>) -> Result<TextQuery> {
        let field = FieldAccess::resolve(schema, spec.field, None)?;
        if spec.query.trim().is_empty() {
            return Err(Error::query("search query must not be blank"));
        }
        let require_all = match spec.operator {
            "or" => false,
            "and" => true,
            _ => return Err(Error::query("operator must be 'or' or 'and'")),
        };
        let ranking = match spec.rank {
            "bm25" => {
                let (k1, b) = bm25_params(spec.k1, spec.b)?;
                Ranking::Bm25 { k1, b }
            }
            "term_frequency" => Ranking::TermFrequency,
            _ => return Err(Error::query("rank must be 'bm25' or 'term_frequency'")),
        };
        // Distinct terms in order of first appearance, with their counts.
        let mut terms: Vec<String> = Vec::new();
        let mut multiplicity: Vec<u64> = Vec::new();
        tokenize::each_token(spec.query, |token| {
            match terms.iter().position(|t| *t == token) {
                Some(i) => multiplicity[i] += 1,
                None => {
                    terms.push(token.into_owned());
                    multiplicity.push(1);
                }
            }
        });
        Ok(TextQuery {
            field,
            terms,
            multiplicity,
            require_all,
            ranking,
        })
    }

    /// The table's inverted index for this query's field, if it has one.
    pub fn index<'t>(&self, table: &'t Table) -> Option<&'t TextIndex> {
        match self.field.path {
            None => table.search.text(self.field.pos),
            Some(_) => None,
        }
    }

    fn admits(&self, matched_terms: usize) -> bool {
        matched_terms > 0 && (!self.require_all || matched_terms == self.terms.len())
    }
}

/// BM25 weight of one term in a row of `dl` tokens, evaluated exactly as
/// §5.2 writes it (same operations, same order): rows whose scores are
/// equal by the formula tie here too, so ties break by key as specified.
/// Both paths use it, so they agree to the bit.
#[derive(Debug, Clone, Copy)]
pub(super) struct TermWeight {
    idf: f64,
    norm: LengthNorm,
}

/// The row-length part of the BM25 denominator, shared by all the terms
/// of a query: a row's value can be computed once and reused per term.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct LengthNorm {
    pub avgdl: f64,
    pub k1: f64,
    pub b: f64,
}

impl LengthNorm {
    /// `k1 · (1 − b + b · dl / avgdl)`, the same operations as the formula.
    #[inline(always)]
    pub(super) fn of(&self, dl: f64) -> f64 {
        let LengthNorm { avgdl, k1, b } = *self;
        k1 * (1.0 - b + b * dl / avgdl)
    }
}

impl TermWeight {
    fn new(idf: f64, avgdl: f64, k1: f64, b: f64) -> Self {
        TermWeight {
            idf,
            norm: LengthNorm { avgdl, k1, b },
        }
    }

    #[inline(always)]
    fn of(&self, tf: f64, dl: f64) -> f64 {
        self.with_norm(tf, self.norm.of(dl))
    }

    /// True when the weight in every row is positive: the IDF is, and k1
    /// is small enough that no denominator (at most about k1 · 2³² for
    /// any row length) makes a weight round to zero. A pruned query needs
    /// it: a zero sum marks a row no posting has reached yet.
    pub(super) fn positive(&self) -> bool {
        const MAX_K1: f64 = 1e100;
        self.idf > 0.0 && self.norm.k1 <= MAX_K1
    }

    /// The weight in a row whose `LengthNorm` is `norm`; bit-identical to
    /// `of(tf, dl)` for `norm = LengthNorm::of(dl)`.
    #[inline(always)]
    pub(super) fn with_norm(&self, tf: f64, norm: f64) -> f64 {
        let k1 = self.norm.k1;
        self.idf * tf * (k1 + 1.0) / (tf + norm)
    }
}

fn idf(n: f64, df: f64) -> f64 {
    ((n - df + 0.5) / (df + 0.5) + 1.0).ln()
}

fn avgdl(total: f64, n: f64) -> f64 {
    if n == 0.0 {
        1.0
    } else {
        (total / n).max(1.0)
    }
}

/// The order in which a row's term weights are summed: by document
/// frequency, rarest first, ties in query order. Floating-point sums
/// depend on their order, so both paths use this one (and give the same
/// bits); it is the one that suits the index path best, whose most
/// frequent term, summed last, is read once where the others are read
/// twice (`maxscore::Plan::collect_all_scanned`).
fn sum_order<T>(terms: &[T], df: impl Fn(&T) -> u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..terms.len()).collect();
    order.sort_by_key(|i| df(&terms[*i])); // stable: ties keep query order
    order
}

/// A candidate row found by tokenizing it.
struct Doc<'t> {
    row: &'t Row,
    len: u32,
    tfs: Vec<u32>,
}

/// Scores `rows` by tokenizing each (the filtered path).
pub(crate) fn scan<'t>(
    tq: &TextQuery,
    rows: impl IntoIterator<Item = &'t Row>,
    deadline: &Deadline,
) -> Result<Vec<Hit<'t>>> {
    let mut n = 0u64;
    let mut total = 0u64;
    let mut df = vec![0u64; tq.terms.len()];
    let mut docs: Vec<Doc<'t>> = Vec::new();
    for row in rows {
        deadline.step()?;
        let Value::Str(text) = tq.field.get(row) else {
            continue;
        };
        // Each token counted against the query's terms (few): no token
        // is kept.
        let mut tfs = vec![0u32; tq.terms.len()];
        let mut len = 0u64;
        tokenize::each_token(text, |token| {
            len += 1;
            if let Some(i) = tq.terms.iter().position(|t| *t == token) {
                tfs[i] = tfs[i].saturating_add(1);
            }
        });
        n += 1;
        total += len;
        let present = tfs.iter().filter(|tf| **tf > 0).count();
        for (d, tf) in df.iter_mut().zip(&tfs) {
            *d += u64::from(*tf > 0);
        }
        if tq.admits(present) {
            let len = u32::try_from(len).unwrap_or(u32::MAX);
            docs.push(Doc { row, len, tfs });
        }
    }
    let (n, avg) = (n as f64, avgdl(total as f64, n as f64));
    // Each term's position and weight, in the order of the sum.
    let weights: Vec<(usize, TermWeight)> = match tq.ranking {
        Ranking::Bm25 { k1, b } => sum_order(&df, |d| *d)
            .into_iter()
            .map(|i| (i, TermWeight::new(idf(n, df[i] as f64), avg, k1, b)))
            .collect(),
        Ranking::TermFrequency => Vec::new(),
    };
    Ok(docs
        .into_iter()
        .map(|doc| {
            let score = match tq.ranking {
                Ranking::Bm25 { .. } => {
                    let mut s = 0.0;
                    for (i, w) in &weights {
                        let tf = doc.tfs[*i];
                        if tf > 0 {
                            s += w.of(f64::from(tf), f64::from(doc.len));
                        }
                    }
                    s
                }
                Ranking::TermFrequency => doc
                    .tfs
                    .iter()
                    .zip(&tq.multiplicity)
                    .map(|(tf, m)| u64::from(*tf) * m)
                    .sum::<u64>() as f64,
            };
            Hit::new(score, doc.row)
        })
        .collect())
}

/// Length norms by row length for one query (`reset` first), computed on
/// first use: rows share few distinct lengths, so most postings cost a
/// lookup instead of a division. A query whose lists all hold cached
/// weights never asks for one, so the table is cleared only on first use.
#[derive(Default)]
pub(super) struct NormCache {
    norm: LengthNorm,
    by_len: Vec<f64>,
    /// `by_len` holds another query's norms (or none yet).
    stale: bool,
}

impl NormCache {
    /// Lengths below this are cached (longer rows compute their norm).
    const CACHED: usize = 512;
    /// Marks an entry not computed yet (norms are never negative).
    const UNSET: f64 = -1.0;

    fn reset(&mut self, norm: LengthNorm) {
        self.norm = norm;
        self.stale = true;
    }

    #[inline]
    pub(super) fn get(&mut self, len: u32) -> f64 {
        let norm = self.norm;
        if self.stale {
            self.by_len.clear();
            self.by_len.resize(Self::CACHED, Self::UNSET);
            self.stale = false;
        }
        match self.by_len.get_mut(len as usize) {
            Some(v) if *v != Self::UNSET => *v,
            Some(v) => {
                *v = norm.of(f64::from(len));
                *v
            }
            None => norm.of(f64::from(len)),
        }
    }
}

/// Per-thread accumulators for the index path, reset after each query.
#[derive(Default)]
pub(super) struct Scratch {
    /// Running score by slot.
    pub sums: Vec<f64>,
    /// How many query terms each slot holds (counted by the exhaustive
    /// path only: pruned queries never need it).
    pub seen: Vec<u32>,
    /// The slots with a score, each once, in the order first reached.
    pub touched: Vec<u32>,
    pub norms: NormCache,
    /// One bit per slot, all clear between uses (`maxscore` orders its
    /// candidates with it).
    pub marks: Vec<u64>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
}

/// A query term present in the index: its postings and its weight.
pub(super) struct IndexTerm<'a> {
    pub list: &'a PostingList,
    pub weight: TermWeight,
    /// The list's cached posting weights for this query, when held.
    pub impacts: Option<Arc<Impacts>>,
}

impl IndexTerm<'_> {
    /// The weight of posting `at` of `chunk`, whose first posting is at
    /// position `start` (cached or computed: the same bits).
    #[inline]
    pub fn weight_in(
        &self,
        chunk: Chunk<'_>,
        start: usize,
        at: usize,
        norms: &mut NormCache,
    ) -> f64 {
        match &self.impacts {
            Some(impacts) => impacts.weights[start + at],
            None => self.of(chunk.tfs[at], chunk.lens[at], norms),
        }
    }

    /// The weight of the posting of row `slot`, if the list holds one.
    pub fn weight_of(&self, slot: u32, norms: &mut NormCache) -> Option<f64> {
        let (chunk, start, at) = self.list.locate(slot)?;
        Some(self.weight_in(chunk, start, at, norms))
    }

    #[inline(always)]
    fn of(&self, tf: u32, len: u32, norms: &mut NormCache) -> f64 {
        self.weight.with_norm(f64::from(tf), norms.get(len))
    }

    /// At least the weight of every posting: the largest cached weight, or
    /// the weight at the list's largest tf and shortest row.
    pub fn bound(&self, norms: &mut NormCache) -> f64 {
        match &self.impacts {
            Some(impacts) => impacts.max,
            None => {
                let norm = norms.get(self.list.min_len);
                self.weight.with_norm(f64::from(self.list.max_tf), norm)
            }
        }
    }

    /// The k-th best weight of the list (k ≥ 1), when its cached weights
    /// keep that many of their largest.
    pub fn kth_best(&self, k: usize) -> Option<f64> {
        let impacts = self.impacts.as_ref()?;
        impacts.top.get(k.checked_sub(1)?).copied()
    }

    /// Every posting's weight, from the cache or computed and cached.
    fn impacts(
        &self,
        key: ImpactKey,
        norms: &mut NormCache,
        deadline: &Deadline,
    ) -> Result<Arc<Impacts>> {
        if let Some(impacts) = &self.impacts {
            return Ok(Arc::clone(impacts));
        }
        self.list.impacts.get_or_compute(key, || {
            let mut weights = Vec::with_capacity(self.list.len());
            for (chunk, _) in self.list.chunks() {
                deadline.check()?;
                let postings = chunk.tfs.iter().zip(chunk.lens);
                weights.extend(postings.map(|(tf, len)| self.of(*tf, *len, norms)));
            }
            Ok(weights.into_boxed_slice())
        })
    }
}

/// The postings at the head of a list `from_index` prefetches (the
/// hardware prefetcher streams the rest once a scan reads them in order).
const HEAD: usize = 16;

/// Scores through the inverted index (unfiltered BM25 only). A bounded
/// `or` query skips rows that cannot reach the top k (`maxscore`); any
/// other scores every posting.
pub(crate) fn from_index<'t>(
    table: &'t Table,
    index: &TextIndex,
    tq: &TextQuery,
    deadline: &Deadline,
    out: &mut Collector<'t, '_>,
) -> Result<()> {
    let Ranking::Bm25 { k1, b } = tq.ranking else {
        return Err(Error::query("term_frequency ranking has no index path"));
    };
    let n = index.docs as f64;
    let avg = avgdl(index.total_len as f64, n);
    // One lookup per distinct term, in query order.
    let key = ImpactKey {
        docs: index.docs,
        total_len: index.total_len,
        k1: k1.to_bits(),
        b: b.to_bits(),
    };
    // The terms are looked up together, every list's own struct asked for
    // as soon as its entry is found, then each list's head and its cached
    // weights' struct, then the weights' heads, all before any list is
    // scanned, so those loads (each behind a pointer or two) overlap.
    let lists: Vec<&PostingList> = index
        .postings
        .get_all(&tq.terms, |list| prefetch(std::slice::from_ref(&**list)))
        .into_iter()
        .flatten()
        .map(|list| &**list)
        .collect();
    let lists: Vec<&PostingList> = sum_order(&lists, |list| list.len() as u64)
        .into_iter()
        .map(|i| lists[i])
        .collect();
    // In the order of the sum from here on.
    let terms: Vec<IndexTerm<'_>> = lists
        .into_iter()
        .map(|list| {
            let head = list.head();
            prefetch(&head[..head.len().min(HEAD)]);
            let impacts = list.impacts.get(key);
            if let Some(held) = &impacts {
                prefetch(std::slice::from_ref(&**held));
            }
            IndexTerm {
                list,
                weight: TermWeight::new(idf(n, list.len() as f64), avg, k1, b),
                impacts,
            }
        })
        .collect();
    for held in terms.iter().filter_map(|t| t.impacts.as_ref()) {
        prefetch(&held.weights[..held.weights.len().min(HEAD)]);
    }
    let slots = &table.search.slots;
    SCRATCH.with_borrow_mut(|s| {
        if s.sums.len() < slots.len() {
            s.sums.resize(slots.len(), 0.0);
            s.seen.resize(slots.len(), 0);
        }
        s.norms.reset(LengthNorm { avgdl: avg, k1, b });
        let plan = out
            .top_k()
            .filter(|_| !tq.require_all)
            .and_then(|k| maxscore::Plan::new(&terms, k, &mut s.norms));
        let counted = plan.is_none();
        let result = match plan {
            Some(plan) => match terms.split_last().filter(|_| plan.scans_all()) {
                Some((last, earlier)) => {
                    // The last term's weights are added as its rows are read.
                    let result = accumulate::<SUMS>(earlier.iter(), key, s, deadline)
                        .and_then(|()| last.impacts(key, &mut s.norms, deadline))
                        .and_then(|weights| {
                            let sums = &mut s.sums;
                            plan.collect_all_scanned(
                                &terms,
                                &weights.weights,
                                sums,
                                slots,
                                deadline,
                                out,
                            )
                        });
                    if result.is_err() {
                        // No row was recorded as touched: every sum written
                        // belongs to a posting of these lists.
                        for (chunk, _) in terms.iter().flat_map(|t| t.list.chunks()) {
                            chunk
                                .slots
                                .iter()
                                .for_each(|&slot| s.sums[slot as usize] = 0.0);
                        }
                    }
                    result
                }
                None => accumulate::<TOUCHED>(plan.scanned(&terms), key, s, deadline)
                    .and_then(|()| plan.collect(&terms, s, slots, deadline, out)),
            },
            None => accumulate::<COUNTED>(terms.iter(), key, s, deadline).map(|()| {
                for &slot in &s.touched {
                    let (score, seen) = (s.sums[slot as usize], s.seen[slot as usize]);
                    if tq.admits(seen as usize) && out.may_take(score) {
                        if let Some(row) = slots.row(slot as usize) {
                            out.push(Hit::new(score, row));
                        }
                    }
                }
            }),
        };
        // Also after an error (a timeout mid-scan): the next query starts
        // from zero sums and counts (only the exhaustive path counts).
        for &slot in &s.touched {
            s.sums[slot as usize] = 0.0;
            if counted {
                s.seen[slot as usize] = 0;
            }
        }
        s.touched.clear();
        result
    })
}

/// `accumulate` records only the sums (the caller knows the rows from
/// the lists themselves).
const SUMS: u8 = 0;
/// `accumulate` also lists each row once in `touched`, in the order first
/// reached; a row is new while its sum is zero, which takes every weight
/// to be positive (`TermWeight::positive`).
const TOUCHED: u8 = 1;
/// As `TOUCHED`, and counts how many terms each row holds (a row is new
/// while its count is zero).
const COUNTED: u8 = 2;

/// Every posting of `terms`, summed per row in the order given, recording
/// what `RECORD` says (`SUMS`, `TOUCHED` or `COUNTED`). The deadline is
/// checked once per chunk of a list (the clock is read once per chunk, not
/// per posting).
fn accumulate<'a, const RECORD: u8>(
    terms: impl Iterator<Item = &'a IndexTerm<'a>>,
    key: ImpactKey,
    s: &mut Scratch,
    deadline: &Deadline,
) -> Result<()> {
    for term in terms {
        let impacts = term.impacts(key, &mut s.norms, deadline)?;
        // No row has a score yet: every posting of this list (its slots
        // are distinct) starts a row, and its sum is its weight (0 + w).
        let first = s.touched.is_empty();
        for (chunk, start) in term.list.chunks() {
            deadline.check()?;
            let slots = chunk.slots;
            let weights = &impacts.weights[start..start + slots.len()];
            if RECORD == SUMS {
                let sums = &mut s.sums[..];
                for (&slot, &w) in slots.iter().zip(weights) {
                    sums[slot as usize] += w;
                }
                continue;
            }
            if first {
                s.touched.extend_from_slice(slots);
                for (&slot, &w) in slots.iter().zip(weights) {
                    s.sums[slot as usize] = w;
                    if RECORD == COUNTED {
                        s.seen[slot as usize] = 1;
                    }
                }
                continue;
            }
            // Every slot is written past the end of `touched`, which only
            // grows when the row is new: no branch on whether it is.
            let mut n = s.touched.len();
            s.touched.resize(n + slots.len(), 0);
            let (sums, seen, touched) = (&mut s.sums[..], &mut s.seen[..], &mut s.touched[..]);
            for (&slot, &w) in slots.iter().zip(weights) {
                let sum = &mut sums[slot as usize];
                let new = if RECORD == COUNTED {
                    let count = &mut seen[slot as usize];
                    *count = count.saturating_add(1);
                    *count == 1
                } else {
                    *sum == 0.0
                };
                touched[n] = slot;
                n += usize::from(new);
                *sum += w;
            }
            s.touched.truncate(n);
        }
    }
    Ok(())
}

pub(crate) fn describe(table: &Table, tq: &TextQuery, indexed: bool) -> Json {
    let ranking = match tq.ranking {
        Ranking::Bm25 { .. } => "bm25",
        Ranking::TermFrequency => "term_frequency",
    };
    match tq.index(table).filter(|_| indexed) {
        Some(index) => {
            let postings: usize = tq
                .terms
                .iter()
                .filter_map(|t| index.postings.get(t))
                .map(|p| p.len())
                .sum();
            json!({"mode": "inverted_index", "ranking": ranking, "terms": tq.terms.len(), "postings": postings, "corpus": index.docs})
        }
        None => json!({"mode": "token_scan", "ranking": ranking, "terms": tq.terms.len()}),
    }
}

/// True when the query can read the inverted index.
pub(crate) fn uses_index(table: &Table, tq: &TextQuery, unfiltered: bool) -> bool {
    unfiltered && matches!(tq.ranking, Ranking::Bm25 { .. }) && tq.index(table).is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_run_from_the_rarest_term_with_ties_in_query_order() {
        let df = [40u64, 3, 40, 0, 3];
        assert_eq!(sum_order(&df, |d| *d), vec![3, 1, 4, 0, 2]);
        assert!(sum_order(&[] as &[u64], |d| *d).is_empty());
    }

    /// The smallest weight a pruned plan can meet is still above zero, so
    /// a zero sum keeps meaning "not reached yet".
    #[test]
    fn weights_admitted_as_positive_never_round_to_zero() {
        // The worst case `positive()` admits: the lowest IDF (a term in
        // every row of a table as large as u32 row slots allow), k1 at its
        // bound, full length normalisation, avgdl 1 and the longest row.
        let n = 2f64.powi(32);
        let rarest = TermWeight::new(idf(n, n), 1.0, 1e100, 1.0);
        assert!(rarest.positive());
        assert!(rarest.of(1.0, f64::from(u32::MAX)) > 0.0);
        // Past the bound the denominator can overflow and the weight
        // round to zero: the plan is declined instead.
        let beyond = TermWeight::new(idf(n, n), 1.0, 1e308, 1.0);
        assert!(!beyond.positive());
        assert_eq!(beyond.of(1.0, f64::from(u32::MAX)), 0.0);
    }
}
