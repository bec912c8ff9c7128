//! Hierarchical navigable small-world graph (Malkov & Yashunin) over the
//! slots of one vector column. Deleted slots stay in the graph as waypoints
//! and are filtered out of results, so deletes never break navigation; an
//! update inserts a new slot. Levels come from a seeded generator, so builds
//! are reproducible.
//!
//! The graph is built with exact scores read from the column. Queries walk
//! it with navigation scores read from a half-float copy of each vector
//! that the graph keeps: a walk is bound by fetching vectors from memory at
//! random, and halves are half the bytes. The candidates a walk finds are
//! then ranked by their exact scores, so results carry the same scores as
//! an exact scan.

use std::cell::RefCell;
use std::cmp::{Ordering, Reverse};
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;

use aura_core::Row;

use super::chunked::Chunked;
pub use super::kernels::Metric;
use super::kernels::{self, to_f16, Folds};
use super::Slots;

/// Level of a slot that is not a node.
const NOT_NODE: u8 = u8::MAX;
const MAX_LEVEL: u8 = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HnswParams {
    pub metric: Metric,
    pub m: usize,
    pub ef_construction: usize,
}

impl HnswParams {
    pub const DEFAULT_M: usize = 16;
    pub const DEFAULT_EF_CONSTRUCTION: usize = 200;
    /// Breadth of the level-0 search when the query does not set one: high
    /// enough for recall@10 >= 0.95 on hard (uniform random) data.
    pub const DEFAULT_EF_SEARCH: usize = 128;
}

#[derive(Debug, Clone)]
pub(crate) struct Hnsw {
    params: HnswParams,
    m0: usize,
    levels: Chunked<u8>,
    /// Level-0 adjacency: `[count, neighbours...]`, stride `m0 + 1`.
    layer0: Chunked<u32>,
    /// Adjacency of levels 1.. for the few nodes that reach them.
    upper: Arc<HashMap<u32, Vec<Vec<u32>>>>,
    /// Per slot: its navigation record (`Navigation`).
    nav: Chunked<u16>,
    /// The centre navigation records are taken from, and the node count
    /// when it was computed.
    centre: Vec<f32>,
    centred_at: usize,
    entry: Option<(u32, u8)>,
    rng: u64,
    nodes: usize,
}

/// A scored slot ordered by score (then slot, for determinism).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Cand(f32, u32);

impl Eq for Cand {}

impl PartialOrd for Cand {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Cand {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        self.0
            .total_cmp(&other.0)
            .then_with(|| other.1.cmp(&self.1))
    }
}

/// Generation-stamped visited marks, reused across searches on a thread.
/// Sixteen bits keep the array small enough to stay in cache; the marks
/// are cleared once every 65,535 searches, when the generation wraps.
struct Visited {
    marks: Vec<u16>,
    generation: u16,
}

impl Visited {
    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.fill(0);
            self.generation = 1;
        }
    }

    /// True the first time `i` is seen since the last reset.
    #[inline]
    fn first_visit(&mut self, i: u32) -> bool {
        let mark = &mut self.marks[i as usize];
        let first = *mark != self.generation;
        *mark = self.generation;
        first
    }
}

/// Per-thread scratch reused by every level search: visited marks and both
/// heaps keep their capacity, so a search allocates nothing.
struct Scratch {
    visited: Visited,
    /// Nodes still to expand, best first.
    frontier: BinaryHeap<Cand>,
    /// The `ef` best nodes found, worst on top.
    best: BinaryHeap<Reverse<Cand>>,
    /// Neighbours of the node being expanded not visited before.
    fresh: Vec<u32>,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = const {
        RefCell::new(Scratch {
            visited: Visited { marks: Vec::new(), generation: 0 },
            frontier: BinaryHeap::new(),
            best: BinaryHeap::new(),
            fresh: Vec::new(),
        })
    };
}

/// How many candidates ahead of the one reranked `search` asks for.
const RERANK_AHEAD: usize = 8;

/// Bytes of a record `prefetch` asks for: a 128-d f32 vector whole.
const PREFETCH_BYTES: usize = 512;

/// Hints the cache to load (the start of) `record`: graph walks jump
/// between records at random, and fetching the next one overlaps with
/// scoring this one.
#[inline(always)]
fn prefetch<T>(record: &[T]) {
    let len = record
        .len()
        .min(PREFETCH_BYTES / std::mem::size_of::<T>().max(1));
    kernels::prefetch(&record[..len]);
}

/// The vectors a graph reads, and the kernels that score them.
#[derive(Clone, Copy)]
pub(crate) struct Vectors<'a> {
    data: &'a Chunked<f32>,
    norms: &'a Chunked<f32>,
    folds: Folds,
}

impl<'a> Vectors<'a> {
    pub fn new(data: &'a Chunked<f32>, norms: &'a Chunked<f32>) -> Self {
        Vectors {
            data,
            norms,
            folds: Folds::detect(),
        }
    }

    #[inline(always)]
    fn score_to(&self, metric: Metric, q: &[f32], q_norm: f32, slot: u32) -> f32 {
        let s = slot as usize;
        let (v, v_norm) = (self.data.get(s), self.norms.get(s)[0]);
        self.folds.score(metric, q, q_norm, v, v_norm)
    }

    /// Starts loading `slot`'s vector and norm into the cache.
    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        let s = slot as usize;
        prefetch(self.data.get(s));
        prefetch(self.norms.get(s));
    }
}

/// How one walk of the graph scores a slot against its query.
trait Scorer {
    fn score(&self, slot: u32) -> f32;
    /// Starts loading what `score` will read for `slot`.
    fn prefetch(&self, slot: u32);
}

/// Exact scores from the column's f32 records.
struct Exact<'a> {
    vecs: Vectors<'a>,
    metric: Metric,
    q: &'a [f32],
    q_norm: f32,
}

impl Scorer for Exact<'_> {
    #[inline(always)]
    fn score(&self, slot: u32) -> f32 {
        self.vecs.score_to(self.metric, self.q, self.q_norm, slot)
    }

    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        self.vecs.prefetch(slot);
    }
}

/// Words (u16) before the halves of a navigation record: three f32.
const NAV_HEADER: usize = 6;

/// Nodes from which the graph centres its navigation records.
const RECENTRE_FROM: usize = 64;

/// Navigation scores from the graph's half-float records: an increasing
/// function of the exact score up to the halves' rounding, for reading
/// half the bytes of the f32 record and its norm.
///
/// A record holds `d = v − c` (`c` the graph's centre, the mean of its
/// vectors, recomputed each time the graph has doubled) divided by
/// `s = max|dᵢ|`, as halves `h`, after three f32 `a`, `b`, `e`: the
/// navigation score is `a·(q·h) + b + e·(q·c)`.
/// Rounding moves each component by at most `s·2⁻¹²`, so centring keeps
/// the error to the spread of the vectors, not their distance from the
/// origin (vectors far from it all score close together).
struct Navigation<'a> {
    records: &'a Chunked<u16>,
    q: &'a [f32],
    /// `q·c`, once per query.
    q_centre: f32,
    folds: Folds,
}

impl Navigation<'_> {
    /// The record of `v` (norm `norm`) under `metric`, for centre `c`:
    /// `a·(q·h) + b + e·(q·c)` is, up to rounding, `q·v − q·c` (dot),
    /// `q·v / |v|` (cosine) or `2q·v − |v|² − (2q·c − |c|²)` (euclidean,
    /// `|q|² − |q − v|²` less a constant). For one query each is the exact
    /// score plus a constant, times a positive constant, or an increasing
    /// function of it.
    fn record(metric: Metric, v: &[f32], norm: f32, c: &[f32]) -> Vec<u16> {
        let d: Vec<f32> = v
            .iter()
            .enumerate()
            .map(|(i, x)| x - c.get(i).copied().unwrap_or(0.0))
            .collect();
        let s = d.iter().fold(0.0f32, |m, x| m.max(x.abs()));
        // A vector with a non-finite component has no usable score.
        let finite = s.is_finite() && norm.is_finite();
        // |v|² − |c|² = |d|² + 2c·d, at the scale of the spread.
        let spread = || {
            d.iter()
                .zip(c.iter().chain(std::iter::repeat(&0.0)))
                .map(|(x, c)| {
                    let x = f64::from(*x);
                    x * x + 2.0 * x * f64::from(*c)
                })
                .sum::<f64>() as f32
        };
        let (a, b, e) = match metric {
            _ if !finite => (0.0, 0.0, 0.0),
            Metric::Dot => (s, 0.0, 0.0),
            Metric::Cosine if norm > 0.0 => (s / norm, 0.0, 1.0 / norm),
            Metric::Cosine => (0.0, 0.0, 0.0),
            Metric::Euclidean => (2.0 * s, -spread(), 0.0),
        };
        let usable = finite && s > 0.0;
        let mut out = Vec::with_capacity(NAV_HEADER + v.len());
        for x in [a, b, e] {
            let bits = x.to_bits();
            out.extend([bits as u16, (bits >> 16) as u16]);
        }
        if usable {
            out.extend(d.iter().map(|x| to_f16((x / s).clamp(-1.0, 1.0))));
        } else {
            out.resize(NAV_HEADER + v.len(), 0);
        }
        out
    }
}

impl Scorer for Navigation<'_> {
    #[inline(always)]
    fn score(&self, slot: u32) -> f32 {
        let record = self.records.get(slot as usize);
        let (head, halves) = record.split_at(NAV_HEADER);
        let word = |i: usize| f32::from_bits(u32::from(head[i]) | (u32::from(head[i + 1]) << 16));
        word(0) * self.folds.dot_f16(self.q, halves) + word(2) + word(4) * self.q_centre
    }

    #[inline(always)]
    fn prefetch(&self, slot: u32) {
        prefetch(self.records.get(slot as usize));
    }
}

impl Hnsw {
    pub fn new(params: HnswParams) -> Self {
        let m = params.m.max(2);
        Hnsw {
            params: HnswParams { m, ..params },
            m0: 2 * m,
            levels: Chunked::new(1),
            layer0: Chunked::new(2 * m + 1),
            upper: Arc::new(HashMap::new()),
            nav: Chunked::new(0),
            centre: Vec::new(),
            centred_at: 0,
            entry: None,
            rng: 0x9E37_79B9_7F4A_7C15,
            nodes: 0,
        }
    }

    pub fn params(&self) -> HnswParams {
        self.params
    }

    /// Nodes in the graph (deleted rows included).
    pub fn nodes(&self) -> usize {
        self.nodes
    }

    fn random_level(&mut self) -> u8 {
        // xorshift64*: a fixed seed keeps builds reproducible.
        self.rng ^= self.rng >> 12;
        self.rng ^= self.rng << 25;
        self.rng ^= self.rng >> 27;
        let bits = self.rng.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 11;
        let uniform = (bits as f64 + 1.0) / ((1u64 << 53) as f64 + 1.0);
        let level = (-uniform.ln() / (self.params.m as f64).ln()).floor();
        (level as u8).min(MAX_LEVEL)
    }

    #[inline]
    fn neighbours(&self, node: u32, level: u8) -> &[u32] {
        if level == 0 {
            let rec = self.layer0.get(node as usize);
            &rec[1..1 + rec[0] as usize]
        } else {
            self.upper
                .get(&node)
                .and_then(|lists| lists.get(level as usize - 1))
                .map_or(&[], Vec::as_slice)
        }
    }

    fn set_neighbours(&mut self, node: u32, level: u8, list: &[u32]) {
        if level == 0 {
            let rec = self.layer0.get_mut(node as usize);
            let n = list.len().min(rec.len() - 1);
            rec[0] = n as u32;
            rec[1..1 + n].copy_from_slice(&list[..n]);
        } else if let Some(lists) = Arc::make_mut(&mut self.upper).get_mut(&node) {
            if let Some(slot) = lists.get_mut(level as usize - 1) {
                slot.clear();
                slot.extend_from_slice(list);
            }
        }
    }

    /// Appends `n` to `node`'s list at `level` (which has room for it).
    fn push_neighbour(&mut self, node: u32, level: u8, n: u32) {
        if level == 0 {
            let rec = self.layer0.get_mut(node as usize);
            let len = rec[0] as usize;
            if let Some(free) = rec.get_mut(1 + len) {
                *free = n;
                rec[0] += 1;
            }
        } else if let Some(list) = Arc::make_mut(&mut self.upper)
            .get_mut(&node)
            .and_then(|lists| lists.get_mut(level as usize - 1))
        {
            list.push(n);
        }
    }

    fn max_degree(&self, level: u8) -> usize {
        if level == 0 {
            self.m0
        } else {
            self.params.m
        }
    }

    /// Best-first search of one level: up to `ef` nodes into `out`, in no
    /// particular order.
    fn search_level(
        &self,
        scorer: &impl Scorer,
        entries: &[Cand],
        ef: usize,
        level: u8,
        out: &mut Vec<Cand>,
    ) {
        SCRATCH.with_borrow_mut(|scratch| {
            let Scratch {
                visited,
                frontier,
                best,
                fresh,
            } = scratch;
            visited.reset(self.levels.len());
            frontier.clear();
            best.clear();
            for e in entries {
                if visited.first_visit(e.1) {
                    frontier.push(*e);
                    best.push(Reverse(*e));
                }
            }
            while best.len() > ef {
                best.pop();
            }
            while let Some(c) = frontier.pop() {
                let worst = best.peek().map_or(f32::NEG_INFINITY, |w| w.0 .0);
                if c.0 < worst && best.len() >= ef {
                    break;
                }
                // The next node to expand is likely the one now on top:
                // fetch its list while this one's neighbours are scored.
                if let (Some(next), 0) = (frontier.peek(), level) {
                    prefetch(self.layer0.get(next.1 as usize));
                }
                // Request every unvisited neighbour's vector before scoring
                // the first, so their cache misses overlap.
                fresh.clear();
                for &n in self.neighbours(c.1, level) {
                    if visited.first_visit(n) {
                        scorer.prefetch(n);
                        fresh.push(n);
                    }
                }
                for &n in fresh.iter() {
                    let s = scorer.score(n);
                    if best.len() < ef {
                        frontier.push(Cand(s, n));
                        best.push(Reverse(Cand(s, n)));
                    } else if let Some(mut worst) = best.peek_mut().filter(|w| s > w.0 .0) {
                        // A full set replaces its worst in place: one sift
                        // down instead of a push and a pop.
                        frontier.push(Cand(s, n));
                        *worst = Reverse(Cand(s, n));
                    }
                }
            }
            out.clear();
            out.extend(best.drain().map(|r| r.0));
        })
    }

    /// The diversity heuristic: keep a candidate only if it is closer to the
    /// base than to every neighbour already kept.
    fn select(&self, vecs: Vectors<'_>, candidates: &[Cand], m: usize) -> Vec<u32> {
        let metric = self.params.metric;
        let mut kept: Vec<u32> = Vec::with_capacity(m);
        for c in candidates {
            if kept.len() >= m {
                break;
            }
            let cv = vecs.data.get(c.1 as usize);
            let cn = vecs.norms.get(c.1 as usize)[0];
            if kept.iter().all(|&r| vecs.score_to(metric, cv, cn, r) < c.0) {
                kept.push(c.1);
            }
        }
        kept
    }

    fn grow_to(&mut self, slot: usize) {
        while self.levels.len() <= slot {
            self.levels.push(&[NOT_NODE]);
            self.layer0.push(&[]);
            self.nav.push(&[]);
        }
    }

    /// Adds `slot` (whose vector is present in the column) to the graph.
    pub fn insert(&mut self, slot: usize, data: &Chunked<f32>, norms: &Chunked<f32>) {
        let vecs = Vectors::new(data, norms);
        let (q, q_norm) = (data.get(slot), norms.get(slot)[0]);
        if self.nav.len() == 0 {
            self.nav = Chunked::new(NAV_HEADER + q.len());
        }
        self.grow_to(slot);
        let record = Navigation::record(self.params.metric, q, q_norm, &self.centre);
        self.nav.get_mut(slot).copy_from_slice(&record);
        let node = slot as u32;
        let level = self.random_level();
        self.levels.get_mut(slot)[0] = level;
        if level > 0 {
            Arc::make_mut(&mut self.upper).insert(node, vec![Vec::new(); level as usize]);
        }
        self.nodes += 1;
        if self.nodes >= RECENTRE_FROM && self.nodes >= 2 * self.centred_at {
            self.recentre(data, norms);
        }
        let Some((entry, top)) = self.entry else {
            self.entry = Some((node, level));
            return;
        };
        let metric = self.params.metric;
        let exact = Exact {
            vecs,
            metric,
            q,
            q_norm,
        };
        let mut eps = vec![Cand(exact.score(entry), entry)];
        let mut found = Vec::new();
        for l in (level.saturating_add(1)..=top).rev() {
            self.search_level(&exact, &eps, 1, l, &mut found);
            std::mem::swap(&mut eps, &mut found);
        }
        let efc = self.params.ef_construction;
        for l in (0..=level.min(top)).rev() {
            self.search_level(&exact, &eps, efc, l, &mut found);
            // Best first, as `select` takes them. Slots are unique, so the
            // order is total.
            found.sort_unstable_by(|a, b| b.cmp(a));
            let chosen = self.select(vecs, &found, self.params.m);
            self.set_neighbours(node, l, &chosen);
            for &n in &chosen {
                self.link(vecs, n, node, l);
            }
            std::mem::swap(&mut eps, &mut found);
        }
        if level > top {
            self.entry = Some((node, level));
        }
    }

    /// Moves the centre to the mean of the graph's vectors and rewrites
    /// every navigation record. Records only steer walks (edges are chosen
    /// on exact scores), so the graph itself stays as it is. Run each time
    /// the graph has doubled: a centre taken from its first vectors would
    /// otherwise stay, however unlike them the later ones are.
    fn recentre(&mut self, data: &Chunked<f32>, norms: &Chunked<f32>) {
        let dim = self.nav.stride().saturating_sub(NAV_HEADER);
        let nodes: Vec<usize> = (0..self.levels.len())
            .filter(|&s| self.levels.get(s)[0] != NOT_NODE)
            .collect();
        let mut sum = vec![0.0f64; dim];
        let mut count = 0usize;
        for &s in &nodes {
            // A vector with a non-finite component would spoil the mean.
            if norms.get(s)[0].is_finite() {
                for (acc, x) in sum.iter_mut().zip(data.get(s)) {
                    *acc += f64::from(*x);
                }
                count += 1;
            }
        }
        if count == 0 {
            return;
        }
        self.centre = sum.iter().map(|x| (x / count as f64) as f32).collect();
        for s in nodes {
            let record = Navigation::record(
                self.params.metric,
                data.get(s),
                norms.get(s)[0],
                &self.centre,
            );
            self.nav.get_mut(s).copy_from_slice(&record);
        }
        self.centred_at = self.nodes;
    }

    /// Adds `to` to `from`'s list, pruning by the heuristic when full.
    fn link(&mut self, vecs: Vectors<'_>, from: u32, to: u32, level: u8) {
        let current = self.neighbours(from, level);
        let max = self.max_degree(level);
        if current.len() < max {
            self.push_neighbour(from, level, to);
            return;
        }
        let metric = self.params.metric;
        let (fv, fnorm) = (
            vecs.data.get(from as usize),
            vecs.norms.get(from as usize)[0],
        );
        let mut cands: Vec<Cand> = current
            .iter()
            .chain(std::iter::once(&to))
            .map(|&n| Cand(vecs.score_to(metric, fv, fnorm, n), n))
            .collect();
        cands.sort_by(|a, b| b.cmp(a));
        let kept = self.select(vecs, &cands, max);
        self.set_neighbours(from, level, &kept);
    }

    /// Up to `k` live rows nearest to `q` with their exact scores, best
    /// first; `ef` bounds the level-0 search breadth (at least `k`).
    pub fn search<'s>(
        &self,
        vecs: Vectors<'_>,
        slots: &'s Slots,
        q: &[f32],
        q_norm: f32,
        k: usize,
        ef: usize,
    ) -> Vec<(f32, &'s Row)> {
        let navigation = Navigation {
            records: &self.nav,
            q,
            q_centre: vecs.folds.dot(q, &self.centre),
            folds: vecs.folds,
        };
        let exact = Exact {
            vecs,
            metric: self.params.metric,
            q,
            q_norm,
        };
        // The walk read only the half-float records: each candidate's f32
        // vector is a fresh load from memory, asked for a few candidates
        // ahead of the one scored so the loads overlap.
        let found = self.walk(&navigation, ef.max(k));
        let mut ranked: Vec<Cand> =
            kernels::prefetched(&found, RERANK_AHEAD, |c| exact.prefetch(c.1))
                .map(|c| Cand(exact.score(c.1), c.1))
                .collect();
        ranked.sort_unstable_by_key(|c| Reverse(*c));
        // Rows only for what is returned (a deleted row's slot has none).
        ranked
            .into_iter()
            .filter_map(|c| Some((c.0, slots.row(c.1 as usize)?)))
            .take(k)
            .collect()
    }

    /// The `ef` best nodes `scorer` finds from the entry point down, in no
    /// particular order (`search` ranks them again).
    fn walk(&self, scorer: &impl Scorer, ef: usize) -> Vec<Cand> {
        let Some((entry, top)) = self.entry else {
            return Vec::new();
        };
        let mut eps = vec![Cand(scorer.score(entry), entry)];
        let mut found = Vec::new();
        for l in (1..=top).rev() {
            self.search_level(scorer, &eps, 1, l, &mut found);
            std::mem::swap(&mut eps, &mut found);
        }
        self.search_level(scorer, &eps, ef, 0, &mut found);
        found
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::kernels;

    fn vector(seed: u32, dim: usize, scale: f32) -> Vec<f32> {
        (0..dim)
            .map(|i| ((seed as f32 * 1.7 + i as f32 * 0.61).sin()) * scale)
            .collect()
    }

    fn norm64(x: &[f32]) -> f64 {
        x.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt()
    }

    fn dot64(a: &[f32], b: &[f32]) -> f64 {
        a.iter()
            .zip(b)
            .map(|(x, y)| f64::from(*x) * f64::from(*y))
            .sum()
    }

    /// What each metric's navigation score stands for, from exact maths:
    /// the exact score up to what is the same for every vector of a query.
    fn expected(metric: Metric, q: &[f32], v: &[f32], c: &[f32]) -> f64 {
        let (dot, qc, vn) = (dot64(q, v), dot64(q, c), norm64(v));
        match metric {
            Metric::Dot => dot - qc,
            Metric::Cosine if vn == 0.0 => 0.0,
            Metric::Cosine => dot / vn,
            Metric::Euclidean => 2.0 * dot - vn * vn - 2.0 * qc + norm64(c).powi(2),
        }
    }

    #[test]
    fn navigation_scores_follow_the_exact_ones() {
        let dim = 37;
        for metric in [Metric::Cosine, Metric::Dot, Metric::Euclidean] {
            for (scale, offset) in [
                (1e-3f32, 0.0),
                (1.0, 0.0),
                (250.0, 0.0),
                (1e5, 0.0),
                (1.0, 100.0),
            ] {
                let shifted = |seed| -> Vec<f32> {
                    vector(seed, dim, scale)
                        .iter()
                        .map(|x| x + offset)
                        .collect()
                };
                let q = shifted(99);
                let vs: Vec<Vec<f32>> = (0..40).map(shifted).chain([vec![0.0; dim]]).collect();
                for centred in [false, true] {
                    let c: Vec<f32> = if centred {
                        (0..dim)
                            .map(|i| vs.iter().map(|v| v[i]).sum::<f32>() / vs.len() as f32)
                            .collect()
                    } else {
                        Vec::new()
                    };
                    let mut records = Chunked::new(NAV_HEADER + dim);
                    for v in &vs {
                        records.push(&Navigation::record(metric, v, kernels::norm(v), &c));
                    }
                    let folds = Folds::detect();
                    let nav = Navigation {
                        records: &records,
                        q: &q,
                        q_centre: folds.dot(&q, &c),
                        folds,
                    };
                    let (qn, cn) = (norm64(&q), norm64(&c));
                    for (slot, v) in vs.iter().enumerate() {
                        let got = f64::from(nav.score(slot as u32));
                        let want = expected(metric, &q, v, &c);
                        // Each component of v - c is off by at most
                        // |v - c|·2^-12, so q·v by |q|·√dim·|v - c|·2^-12,
                        // times 1/|v| (cosine), 1 (dot) or 2 (euclidean);
                        // the f32 sums round their terms by about 1e-7.
                        let d: Vec<f32> = v
                            .iter()
                            .enumerate()
                            .map(|(i, x)| x - c.get(i).copied().unwrap_or(0.0))
                            .collect();
                        let vn = norm64(v);
                        let per_unit = match metric {
                            Metric::Cosine if vn == 0.0 => 0.0,
                            Metric::Cosine => 1.0 / vn,
                            Metric::Dot => 1.0,
                            Metric::Euclidean => 2.0,
                        };
                        let rounding = qn * (dim as f64).sqrt() * norm64(&d) * per_unit / 4096.0;
                        let sums = 1e-5 * (qn * (vn + cn) * per_unit.max(1.0) + vn * vn);
                        assert!(
                            (got - want).abs() <= rounding + sums + 1e-30,
                            "{metric:?} scale {scale} offset {offset} centred {centred} slot {slot}: {got} vs {want}"
                        );
                    }
                }
            }
        }
    }
}
