//! Exact top-k BM25 over the inverted index with MaxScore pruning, term at
//! a time: before scanning, a lower bound on the k-th best score (the
//! threshold) splits the query terms into non-essential ones, whose bounds
//! together stay below it, and essential ones. Only the essential terms'
//! postings are accumulated; a row found there is looked up in the other
//! lists only when its partial score plus their bounds can still reach
//! the threshold, and rows that cannot are never scored.
//!
//! Exactness rests on four facts:
//! - a term's bound is the largest of its cached posting weights when the
//!   list holds them for this query's statistics (exact), else its weight
//!   at the list's largest tf and shortest row. The exact BM25 weight never
//!   decreases with tf nor increases with the row length, and the computed
//!   one is within a few roundings of it, so no posting's computed weight
//!   exceeds that bound by more than a few ulps (with k1 = 0, `idf·tf/tf`
//!   does vary by an ulp with tf);
//! - a row is skipped only when a bound on its score stays *strictly* below
//!   the threshold after a relative slack far larger than those ulps plus
//!   the rounding of summing in another order; rows tied with the k-th
//!   score are pushed, so ties still break by key downstream;
//! - a row's computed score is at least its computed weight for any one
//!   term (rounded sums of non-negative values never decrease), so the
//!   k-th best weight of one term's list, over k distinct rows, is a valid
//!   starting threshold;
//! - a row that is kept gets its score summed in the terms' order (that
//!   of `text::sum_order`), exactly as the exhaustive path does (an absent
//!   term is skipped there and here alike). A row looked up in the lists
//!   left out is first scored in another order (its scanned sum, then the
//!   rest); that score differs from the exact one by far less than the
//!   slack, which bounds it on both sides, so only rows that cannot reach
//!   the k-th best score are dropped before being summed exactly.
//!
//! It also rests on every slot of a posting list holding a row of the same
//! snapshot (`SearchState` changes the slots and the lists together): the
//! seed and the running threshold count a posting's score before its row
//! is fetched, and only the rows that stay are.

use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

use aura_core::Result;

use crate::deadline::Deadline;
use crate::output::prefetch_head;
use crate::search::Slots;

use super::collect::{Collector, Hit};
use super::text::{IndexTerm, NormCache, Scratch};

/// Queries with more distinct terms take the exhaustive path: the slack
/// below covers the rounding of sums of up to this many terms.
const MAX_TERMS: usize = 4096;

/// Relative slack on score bounds. A computed weight is within about 16·ε
/// (ε = 2⁻⁵³) of the exact one, and sums of n non-negative terms in two
/// orders differ by at most about 2·n·ε relative: for n ≤ `MAX_TERMS` all
/// of it stays below 1e-11, far under this slack.
const SLACK: f64 = 1.0 + 1e-9;

/// Postings the starting threshold reads at most.
const SEED_POSTINGS: usize = 1024;

/// Rows checked between two deadline checks.
const CHECK_EVERY: usize = 4096;

/// True when a score bounded by `bound` cannot reach `threshold`.
#[inline]
fn cannot_reach(bound: f64, threshold: f64) -> bool {
    bound * SLACK < threshold
}

/// A score ordered totally (scores here are never NaN: bounds are finite).
#[derive(Clone, Copy, PartialEq)]
struct Score(f64);

impl Eq for Score {}

impl PartialOrd for Score {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Score {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// A lower bound on the query's k-th best score: the k-th best score held
/// so far, or the seed known before scanning, whichever is higher. Every
/// row of the true top k (and every row tied with its last) scores at least
/// this, so none of them is ever skipped.
struct Threshold {
    k: usize,
    best: BinaryHeap<Reverse<Score>>,
    seed: f64,
}

impl Threshold {
    fn kth_pushed(&self) -> f64 {
        match self.best.peek() {
            Some(Reverse(Score(s))) if self.best.len() >= self.k => *s,
            _ => f64::NEG_INFINITY,
        }
    }

    /// Scores strictly below this cannot enter the top k.
    fn value(&self) -> f64 {
        self.kth_pushed().max(self.seed)
    }

    fn offer(&mut self, score: f64) {
        if self.best.len() < self.k {
            self.best.push(Reverse(Score(score)));
        } else if score > self.kth_pushed() {
            self.best.pop();
            self.best.push(Reverse(Score(score)));
        }
    }
}

/// A starting threshold: k distinct rows score at least any term's k-th
/// best weight. Terms whose cached weights keep their k best give it
/// exactly; otherwise the strongest term's k-th best among its first
/// postings is taken. (The strongest term's seed never exceeds its bound,
/// so it stays essential; nor can any term whose k-th best is the seed.)
fn seed(terms: &[IndexTerm<'_>], strongest: usize, k: usize, norms: &mut NormCache) -> f64 {
    let cached = terms
        .iter()
        .filter_map(|t| t.kth_best(k))
        .fold(f64::NEG_INFINITY, f64::max);
    match terms[strongest].kth_best(k) {
        Some(_) => cached,
        None => cached.max(sampled_seed(&terms[strongest], k, norms)),
    }
}

/// The k-th best weight of `term` among its first postings (−∞ when they
/// are fewer than k): k distinct rows score at least this.
fn sampled_seed(term: &IndexTerm<'_>, k: usize, norms: &mut NormCache) -> f64 {
    let list = term.list;
    let n = list.len().min(SEED_POSTINGS);
    if n < k {
        return f64::NEG_INFINITY;
    }
    let mut weights: Vec<f64> = Vec::with_capacity(n);
    for (chunk, start) in list.chunks() {
        let take = chunk.len().min(n - weights.len());
        weights.extend((0..take).map(|at| term.weight_in(chunk, start, at, norms)));
        if weights.len() == n {
            break;
        }
    }
    let (_, kth, _) = weights.select_nth_unstable_by(k - 1, |a, b| b.total_cmp(a));
    *kth
}

/// A non-essential term is looked up per row instead of scanned only when
/// its list is this many times longer than the scanned lists together: a
/// sequential scan is far cheaper per posting than a lookup (a lookup's
/// loads depend on one another and its branches on the data), more so
/// when every list is scanned (only sums are kept). Chosen by time, not
/// instructions: on the Zipfian bench corpus, passes of its queries
/// alternated in one process (`bm25_profile`), 8 -> 5.3 µs per query
/// warm and 8.6 µs from evicted caches, 32 -> 4.8 and 8.0 µs (24 in
/// between; 48, 64 and 128 no faster from evicted caches and within
/// 0.1 µs warm), though 8 runs the fewest instructions.
const PROBE_RATIO: usize = 32;

/// A row that reached the threshold when it was scored.
struct Held {
    score: f64,
    slot: u32,
}

/// Which terms a bounded query scans, and what the others may add.
pub(super) struct Plan {
    /// Per query term: its postings are accumulated.
    scanned: Vec<bool>,
    /// The sum of the bounds of the terms not scanned (0 when none).
    rest: f64,
    threshold: Threshold,
}

/// Each term's score bound (`IndexTerm::bound`); None when one is not
/// finite (nothing could then be skipped safely).
fn bounds(terms: &[IndexTerm<'_>], norms: &mut NormCache) -> Option<Vec<f64>> {
    let bounds: Vec<f64> = terms.iter().map(|t| t.bound(norms)).collect();
    bounds.iter().all(|b| b.is_finite()).then_some(bounds)
}

/// The weakest terms whose bounds together cannot reach `threshold`.
fn non_essential(bounds: &[f64], threshold: f64) -> Vec<usize> {
    let mut by_bound: Vec<usize> = (0..bounds.len()).collect();
    by_bound.sort_by(|a, b| bounds[*a].total_cmp(&bounds[*b]));
    let mut sum = 0.0;
    by_bound
        .into_iter()
        .take_while(|i| {
            sum += bounds[*i];
            cannot_reach(sum, threshold)
        })
        .collect()
}

impl Plan {
    /// The plan of a top-`k` query; None when pruning cannot be exact (a
    /// bound is not finite, a weight could round to zero, or too many
    /// terms for the slack).
    pub fn new(terms: &[IndexTerm<'_>], k: usize, norms: &mut NormCache) -> Option<Plan> {
        if terms.len() > MAX_TERMS || !terms.iter().all(|t| t.weight.positive()) {
            return None;
        }
        let bounds = bounds(terms, norms)?;
        // The strongest term is never non-essential: the seed is some
        // term's weight, so it cannot exceed that term's bound, nor so the
        // strongest bound (see `seed`).
        let strongest = (0..terms.len()).max_by(|a, b| bounds[*a].total_cmp(&bounds[*b]))?;
        let seed = seed(terms, strongest, k, norms);
        let left_out = non_essential(&bounds, seed);
        let mut scanned = vec![true; terms.len()];
        left_out.iter().for_each(|i| scanned[*i] = false);
        let scan_len: usize = terms
            .iter()
            .zip(&scanned)
            .filter(|(_, s)| **s)
            .map(|(t, _)| t.list.len())
            .sum();
        // Short non-essential lists are scanned after all (leaving fewer
        // bounds out only lowers `rest`).
        let mut rest = 0.0;
        for i in left_out {
            if terms[i].list.len() <= PROBE_RATIO.saturating_mul(scan_len) {
                scanned[i] = true;
            } else {
                rest += bounds[i];
            }
        }
        Some(Plan {
            scanned,
            rest,
            threshold: Threshold {
                k,
                best: BinaryHeap::with_capacity(k.min(1024) + 1),
                seed,
            },
        })
    }

    /// True when every term's postings are accumulated: the caller then
    /// records only the sums, not which rows hold one, and finishes with
    /// `collect_all_scanned`.
    pub fn scans_all(&self) -> bool {
        self.scanned.iter().all(|s| *s)
    }

    /// The terms whose postings are accumulated, in the order of the sum.
    pub fn scanned<'p, 'a>(
        &'p self,
        terms: &'a [IndexTerm<'a>],
    ) -> impl Iterator<Item = &'a IndexTerm<'a>> + 'p
    where
        'a: 'p,
    {
        terms
            .iter()
            .zip(&self.scanned)
            .filter(|(_, s)| **s)
            .map(|(t, _)| t)
    }

    /// Pushes the rows that reach the final threshold, with their exact
    /// scores, when every term is scanned: `sums` holds the sums of every
    /// term but the last, in the order of the sum, and the last term's
    /// weights (`last_weights`, its list's cached weights) are added here, as the
    /// last step of each sum, so no pass stores them. The rows are those of
    /// the lists; each sum is reset as it is read, so none is left for the
    /// next query (after an error too the caller clears every posting's),
    /// and a row in several lists reads zero after its first (a real score
    /// is positive: every weight is, `TermWeight::positive`).
    pub fn collect_all_scanned<'t>(
        mut self,
        terms: &[IndexTerm<'_>],
        last_weights: &[f64],
        sums: &mut [f64],
        slots: &'t Slots,
        deadline: &Deadline,
        out: &mut Collector<'t, '_>,
    ) -> Result<()> {
        let mut held = self.held();
        let mut t = self.threshold.value();
        let Some((last, earlier)) = terms.split_last() else {
            return Ok(());
        };
        for (chunk, start) in last.list.chunks() {
            deadline.check()?;
            let weights = &last_weights[start..start + chunk.len()];
            t = self.hold_completed(chunk.slots, weights, sums, t, &mut held);
        }
        for term in earlier {
            for (chunk, _) in term.list.chunks() {
                deadline.check()?;
                t = self.hold_summed(chunk.slots, sums, t, &mut held);
            }
        }
        self.push_held(held, slots, out);
        Ok(())
    }

    /// `collect_all_scanned` over one chunk of the last list: each row's
    /// sum completed by its weight there, read and reset. Returns the
    /// threshold (`t` before). Not inlined: the loop keeps the threshold
    /// in a register.
    #[inline(never)]
    fn hold_completed(
        &mut self,
        slots: &[u32],
        weights: &[f64],
        sums: &mut [f64],
        mut t: f64,
        held: &mut Vec<Held>,
    ) -> f64 {
        for (&slot, &w) in slots.iter().zip(weights) {
            let score = std::mem::take(&mut sums[slot as usize]) + w;
            if score >= t {
                t = self.hold(score, slot, held);
            }
        }
        t
    }

    /// As `hold_completed` for one chunk of an earlier list, whose rows'
    /// sums are complete (a row read before reads zero here).
    #[inline(never)]
    fn hold_summed(
        &mut self,
        slots: &[u32],
        sums: &mut [f64],
        mut t: f64,
        held: &mut Vec<Held>,
    ) -> f64 {
        for &slot in slots {
            let score = std::mem::take(&mut sums[slot as usize]);
            if score >= t && score > 0.0 {
                t = self.hold(score, slot, held);
            }
        }
        t
    }

    /// Pushes the rows of `s.touched` that reach the final threshold, with
    /// their exact scores, when some terms were left out (`s.sums` holds
    /// the scanned terms' sums; the caller clears them). Rows are held
    /// back until the threshold is final, so the collector only sees the
    /// top k and the rows tied with the k-th.
    pub fn collect<'t>(
        mut self,
        terms: &[IndexTerm<'_>],
        s: &mut Scratch,
        slots: &'t Slots,
        deadline: &Deadline,
        out: &mut Collector<'t, '_>,
    ) -> Result<()> {
        let mut held = self.held();
        self.rescore(terms, s, deadline, &mut held)?;
        self.push_held(held, slots, out);
        Ok(())
    }

    fn held(&self) -> Vec<Held> {
        Vec::with_capacity(2 * self.threshold.best.capacity())
    }

    /// The held rows that reach the final threshold, to the collector.
    /// Only these rows are fetched, all of them asked for before the first
    /// is read (each lies in its own place in memory).
    fn push_held<'t>(&self, held: Vec<Held>, slots: &'t Slots, out: &mut Collector<'t, '_>) {
        let t = self.threshold.value();
        let mut hits: Vec<Hit<'t>> = Vec::with_capacity(held.len());
        for h in held.into_iter().filter(|h| h.score >= t) {
            let row = slots.row(h.slot as usize);
            debug_assert!(row.is_some(), "a posting's slot holds no row");
            if let Some(row) = row {
                prefetch_head(row);
                hits.push(Hit::new(h.score, row));
            }
        }
        hits.into_iter().for_each(|hit| out.push(hit));
    }

    /// Keeps a row that reaches the threshold; returns the new threshold.
    /// Every slot of a list holds a row (`SearchState` changes the index
    /// and the slots together), so the row is fetched only if it stays.
    fn hold(&mut self, score: f64, slot: u32, held: &mut Vec<Held>) -> f64 {
        held.push(Held { score, slot });
        self.threshold.offer(score);
        self.threshold.value()
    }

    /// Scores the touched rows that the bounds of the terms left out do
    /// not rule out, in two passes. First, in slot order, a row's scanned
    /// sum plus its weights in the lists left out (forward cursors read
    /// each list once) gives its score within rounding (another order of
    /// summation), and a lower bound on the k-th best score follows from
    /// those. Then only the rows that can still reach that bound are
    /// summed exactly, in the order of the sum, looking each term up.
    fn rescore(
        &mut self,
        terms: &[IndexTerm<'_>],
        s: &mut Scratch,
        deadline: &Deadline,
        held: &mut Vec<Held>,
    ) -> Result<()> {
        let seed = self.threshold.value();
        let rest = self.rest;
        let pending = candidates(s, |score| !cannot_reach(score + rest, seed));
        let mut left_out: Vec<TermCursor<'_>> = terms
            .iter()
            .zip(&self.scanned)
            .filter(|(_, scanned)| !**scanned)
            .map(|(term, _)| TermCursor {
                term,
                chunk: 0,
                at: 0,
                gallop: term.list.len() > STEP_GAP.saturating_mul(pending.len()),
            })
            .collect();
        // A row's near score is within a relative 1e-12 of its exact one,
        // so a near score divided by the slack is at most the exact one:
        // their k-th best is a lower bound on the exact k-th best.
        let mut bound = Threshold {
            k: self.threshold.k,
            best: BinaryHeap::with_capacity(self.threshold.best.capacity()),
            seed,
        };
        let mut shortlist: Vec<(f64, u32)> = Vec::new();
        let mut t = seed;
        for chunk in pending.chunks(CHECK_EVERY) {
            deadline.check()?;
            for &slot in chunk {
                let partial = s.sums[slot as usize];
                if cannot_reach(partial + rest, t) {
                    continue;
                }
                let mut near = partial;
                for cursor in left_out.iter_mut() {
                    if let Some(w) = cursor.weight(slot, &mut s.norms) {
                        near += w;
                    }
                }
                if !cannot_reach(near, t) {
                    shortlist.push((near, slot));
                    bound.offer(near / SLACK);
                    t = bound.value();
                }
            }
        }
        let mut t = seed;
        for (near, slot) in shortlist {
            if cannot_reach(near, bound.value()) {
                continue;
            }
            let score = exact_score(terms, slot, &mut s.norms);
            if score >= t {
                t = self.hold(score, slot, held);
            }
        }
        Ok(())
    }
}

/// A row's score summed in the terms' order, as the exhaustive path sums
/// it (each term looked up by binary search: few rows get here).
fn exact_score(terms: &[IndexTerm<'_>], slot: u32, norms: &mut NormCache) -> f64 {
    let mut score = 0.0;
    for term in terms {
        if let Some(w) = term.weight_of(slot, norms) {
            score += w;
        }
    }
    score
}

/// A cursor whose list holds more than this many postings per candidate
/// gallops; one with fewer steps (a short walk costs less than a search).
const STEP_GAP: usize = 16;

/// A forward cursor over one term's list for rows looked up in slot
/// order: it steps through a list about as long as the candidates are
/// many, and gallops through a longer one (chunks it passes over are
/// skipped by their first slot, unread).
struct TermCursor<'a> {
    term: &'a IndexTerm<'a>,
    /// The chunk looked in last, and the offset reached in it.
    chunk: usize,
    at: usize,
    gallop: bool,
}

impl TermCursor<'_> {
    /// The weight of the posting of row `slot`, if the list holds one
    /// (`slot` never below the one looked up before).
    #[inline]
    fn weight(&mut self, slot: u32, norms: &mut NormCache) -> Option<f64> {
        let list = self.term.list;
        let c = list.chunk_of(slot, self.chunk);
        if c != self.chunk {
            (self.chunk, self.at) = (c, 0);
        }
        let (chunk, start) = list.chunk(c)?;
        self.at = if self.gallop {
            seek(chunk.slots, self.at, slot)
        } else {
            step(chunk.slots, self.at, slot)
        };
        (chunk.slots.get(self.at) == Some(&slot))
            .then(|| self.term.weight_in(chunk, start, self.at, norms))
    }
}

/// The touched slots whose partial score `keep` accepts, ascending. When
/// they are many for the span of slots they cover, a bitmap orders them
/// (one pass over its words) instead of a sort.
fn candidates(s: &mut Scratch, keep: impl Fn(f64) -> bool) -> Vec<u32> {
    let sums = &s.sums;
    let mut out: Vec<u32> = Vec::with_capacity(s.touched.len());
    let (mut lo, mut hi) = (u32::MAX, 0);
    let mut ascending = true;
    for &slot in &s.touched {
        if keep(sums[slot as usize]) {
            out.push(slot);
            ascending &= slot > hi || out.len() == 1;
            lo = lo.min(slot);
            hi = hi.max(slot);
        }
    }
    // Rows reached by one list alone come in its (ascending) order.
    if out.is_empty() || ascending {
        return out;
    }
    let (lo, hi) = (lo as usize / 64, hi as usize / 64);
    if out.len() * 16 < hi - lo + 1 {
        out.sort_unstable();
        return out;
    }
    if s.marks.len() <= hi {
        s.marks.resize(hi + 1, 0);
    }
    for &slot in &out {
        s.marks[slot as usize / 64] |= 1 << (slot % 64);
    }
    out.clear();
    for (w, word) in s.marks[lo..=hi].iter_mut().enumerate() {
        let mut bits = std::mem::take(word);
        let base = ((lo + w) * 64) as u32;
        while bits != 0 {
            out.push(base + bits.trailing_zeros());
            bits &= bits - 1;
        }
    }
    out
}

/// The first position at or after `from` whose slot is at least `slot`,
/// one position at a time (the whole walk costs at most the list's length).
fn step(slots: &[u32], from: usize, slot: u32) -> usize {
    // Eight slots at a time (the list is ascending, so the count below
    // `slot` is the step), then one at a time near the end.
    let mut at = from;
    while let Some(chunk) = slots.get(at..at + 8) {
        let below = chunk.iter().filter(|s| **s < slot).count();
        at += below;
        if below < 8 {
            return at;
        }
    }
    while slots.get(at).is_some_and(|s| *s < slot) {
        at += 1;
    }
    at
}

/// The first position at or after `from` whose slot is at least `slot`
/// (galloping: a run of close targets costs little more than a walk).
fn seek(slots: &[u32], from: usize, slot: u32) -> usize {
    if slots.get(from).is_none_or(|s| *s >= slot) {
        return from;
    }
    let mut lo = from;
    let mut step = 1;
    while lo + step < slots.len() && slots[lo + step] < slot {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step + 1).min(slots.len());
    lo.min(hi) + slots[lo.min(hi)..hi].partition_point(|s| *s < slot)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `seek` and `step` from each of `froms` agree with a binary search.
    fn assert_finds(slots: &[u32], froms: impl Iterator<Item = usize>, targets: &[u32]) {
        for from in froms {
            for &target in targets {
                let want = from + slots[from..].partition_point(|s| *s < target);
                let at = format!("from {from} target {target}");
                assert_eq!(seek(slots, from, target), want, "seek {at}");
                assert_eq!(step(slots, from, target), want, "step {at}");
            }
        }
    }

    #[test]
    fn seek_finds_the_first_slot_not_below_the_target() {
        let slots = [2, 3, 5, 8, 13, 21, 34, 55, 89];
        let targets: Vec<u32> = (0..100).collect();
        assert_finds(&slots, 0..=slots.len(), &targets);
        // Longer lists: the step reads eight slots at a time.
        let long: Vec<u32> = (0..200).map(|i| i * 3 + i / 7).collect();
        let targets: Vec<u32> = (0..700).step_by(5).collect();
        let froms = [0, 1, 7, 8, 9, 100, 191, 192, 199, 200];
        assert_finds(&long, froms.into_iter(), &targets);
        assert_eq!(seek(&[], 0, 7), 0);
        assert_eq!(step(&[], 0, 7), 0);
    }

    #[test]
    fn candidates_come_sorted_and_leave_the_bitmap_clear() {
        // Dense (bitmap) and sparse (sort) candidate sets, touched in a
        // scrambled order, some rejected by their score.
        // Also touched in ascending order (rows reached by one list).
        for (count, spread, scramble) in [(500u32, 3u32, 7919), (5, 40_000, 3), (500, 3, 1)] {
            let mut s = Scratch {
                sums: vec![0.0; (count * spread) as usize + 64],
                touched: (0..count)
                    .map(|i| ((i * scramble) % count) * spread)
                    .collect(),
                ..Scratch::default()
            };
            let kept = |slot: u32| (slot / spread) % 3 != 0;
            for &slot in &s.touched {
                s.sums[slot as usize] = f64::from(u8::from(kept(slot)));
            }
            let got = candidates(&mut s, |score| score > 0.0);
            let mut want: Vec<u32> = s.touched.iter().copied().filter(|t| kept(*t)).collect();
            want.sort_unstable();
            assert!(want.len() >= count as usize / 2);
            assert_eq!(got, want, "{count} candidates, {spread} apart");
            assert!(s.marks.iter().all(|w| *w == 0));
        }
    }

    #[test]
    fn non_essential_terms_are_the_weakest_below_the_threshold() {
        assert_eq!(non_essential(&[3.0, 1.0, 2.0, 9.0], 6.5), vec![1, 2, 0]);
        assert_eq!(non_essential(&[3.0, 1.0, 2.0, 9.0], 6.0), vec![1, 2]);
        assert_eq!(
            non_essential(&[3.0, 1.0], f64::NEG_INFINITY),
            Vec::<usize>::new()
        );
    }
}
