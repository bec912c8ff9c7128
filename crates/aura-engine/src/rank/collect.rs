//! Ranked order and bounded collection of scored rows: score descending,
//! then the query's `order_by` (tie-breaker, §16 row 18), then primary key.
//! The collector keeps at most about twice the rows it must return, so a
//! top-k over a large table never holds every scored row.

use std::cmp::Ordering;

use aura_core::{Result, Row, Value};

use crate::deadline::Deadline;
use crate::sort::{compare_rows, sort_prefix, SortKey};

/// One scored row; component scores are set for hybrid rows only.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Hit<'t> {
    pub score: f64,
    pub text: Option<f64>,
    pub vector: Option<f64>,
    pub row: &'t Row,
}

impl<'t> Hit<'t> {
    pub fn new(score: f64, row: &'t Row) -> Self {
        Hit {
            score,
            text: None,
            vector: None,
            row,
        }
    }
}

/// Higher scores first; NaN last.
pub(crate) fn by_score_desc(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (false, false) => b.partial_cmp(&a).unwrap_or(Ordering::Equal),
        (a_nan, b_nan) => a_nan.cmp(&b_nan),
    }
}

/// The ranked order of one query.
#[derive(Clone, Copy)]
pub(crate) struct RankOrder<'q> {
    pub keys: &'q [SortKey],
    pub pk: usize,
}

impl RankOrder<'_> {
    pub fn key<'r>(&self, row: &'r [Value]) -> &'r Value {
        &row[self.pk]
    }

    pub fn cmp(&self, a: &Hit<'_>, b: &Hit<'_>) -> Ordering {
        by_score_desc(a.score, b.score)
            .then_with(|| compare_rows(self.keys, a.row, b.row))
            .then_with(|| self.key(a.row).cmp_total(self.key(b.row)))
    }
}

/// A keyset position: rows strictly after `(−score, key)` follow it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct After {
    pub score: f64,
    pub key: Value,
}

impl After {
    fn precedes(&self, order: &RankOrder<'_>, hit: &Hit<'_>) -> bool {
        by_score_desc(hit.score, self.score)
            .then_with(|| order.key(hit.row).cmp_total(&self.key))
            .is_gt()
    }
}

pub(crate) struct Collector<'t, 'q> {
    order: RankOrder<'q>,
    keep: Option<usize>,
    after: Option<&'q After>,
    /// Hits at or before `after` (they precede the page: global ranks).
    pub skipped: u64,
    hits: Vec<Hit<'t>>,
    /// Hits scoring below this cannot enter the kept prefix.
    floor: Option<f64>,
}

impl<'t, 'q> Collector<'t, 'q> {
    pub fn new(order: RankOrder<'q>, keep: Option<usize>, after: Option<&'q After>) -> Self {
        Collector {
            order,
            keep,
            after,
            skipped: 0,
            // Bounded windows never grow past twice the kept rows; a huge
            // limit must not reserve memory up front.
            hits: Vec::with_capacity(keep.map_or(0, |k| 2 * k.clamp(64, 2048))),
            floor: None,
        }
    }

    pub fn keep(&self) -> Option<usize> {
        self.keep
    }

    /// How many best hits a scorer that skips rows must still push: the
    /// kept rows, unless a keyset position needs every hit before it
    /// counted (`skipped`) or nothing is kept at all.
    pub fn top_k(&self) -> Option<usize> {
        self.keep.filter(|k| *k > 0 && self.after.is_none())
    }

    /// False when a hit with this score cannot enter the kept rows (lets
    /// callers skip fetching its row).
    #[inline]
    pub fn may_take(&self, score: f64) -> bool {
        !self.floor.is_some_and(|f| score < f)
    }

    #[inline]
    pub fn push(&mut self, hit: Hit<'t>) {
        if self.floor.is_some_and(|f| hit.score < f) {
            return;
        }
        if let Some(after) = self.after {
            if !after.precedes(&self.order, &hit) {
                self.skipped += 1;
                return;
            }
        }
        self.hits.push(hit);
        if let Some(k) = self.keep {
            if k > 0 && self.hits.len() >= 2 * k.max(64) {
                self.compact(k);
            }
        }
    }

    /// Keeps the best `k` and raises the floor to the worst kept score.
    fn compact(&mut self, k: usize) {
        let order = self.order;
        self.hits
            .select_nth_unstable_by(k - 1, |a, b| order.cmp(a, b));
        self.hits.truncate(k);
        let worst = self
            .hits
            .iter()
            .map(|h| h.score)
            .fold(f64::INFINITY, f64::min);
        if !worst.is_nan() {
            self.floor = Some(worst);
        }
    }

    /// The kept hits in ranked order.
    pub fn finish(mut self, deadline: &Deadline) -> Result<(Vec<Hit<'t>>, u64)> {
        let order = self.order;
        sort_prefix(&mut self.hits, self.keep, deadline, |a, b| order.cmp(a, b))?;
        Ok((self.hits, self.skipped))
    }
}
