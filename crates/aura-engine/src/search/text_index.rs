//! BM25 inverted index of one `full_text` string field: per term, the slots
//! holding it (ascending) with their term frequency and their row's token
//! count, plus the largest frequency and the shortest row of the list (the
//! inputs of the term's score bound for top-k pruning). Postings are shared
//! between snapshots and copied on write a chunk at a time (`postings`).
//!
//! A list also keeps the BM25 weight of each of its postings for the two
//! latest corpus statistics and parameters it was scanned with
//! (`Impacts`): a weight costs a division, a cached one a load. Any write
//! to the table changes the statistics, so the first scan after it
//! computes them again; read-mostly search pays for each list once.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;

use aura_core::{Result, Value};
use foldhash::fast::RandomState;
use parking_lot::Mutex;

pub(crate) use super::postings::PostingList;
use super::term_table::TermTable;
use super::tokenize;

/// What a list's posting weights depend on besides the list itself: the
/// corpus statistics (row count and total length give the IDF and the
/// average row length) and the BM25 parameters, as bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImpactKey {
    pub docs: u64,
    pub total_len: u64,
    pub k1: u64,
    pub b: u64,
}

/// The weight of every posting of one list, in list order, for one key.
#[derive(Debug)]
pub(crate) struct Impacts {
    key: ImpactKey,
    pub weights: Box<[f64]>,
    /// The largest of `weights`: the term's exact score bound.
    pub max: f64,
    /// The `TOP_WEIGHTS` largest of `weights` (fewer in a shorter list),
    /// in descending order: the k-th is the k-th best score of k distinct
    /// rows, a top-k query's starting threshold. Empty when a weight is
    /// not finite.
    pub top: Box<[f64]>,
}

/// How many of a list's largest weights `Impacts::top` keeps.
pub(crate) const TOP_WEIGHTS: usize = 64;

impl Impacts {
    pub fn new(key: ImpactKey, weights: Box<[f64]>) -> Self {
        // A weight that is not finite (an extreme k1) leaves the term
        // without a usable bound, as the uncached bound would: no pruning.
        if !weights.iter().all(|w| w.is_finite()) {
            return Impacts {
                key,
                weights,
                max: f64::INFINITY,
                top: Box::default(),
            };
        }
        let mut top = weights.to_vec();
        if top.len() > TOP_WEIGHTS {
            top.select_nth_unstable_by(TOP_WEIGHTS - 1, |a, b| b.total_cmp(a));
            top.truncate(TOP_WEIGHTS);
        }
        top.sort_unstable_by(|a, b| b.total_cmp(a));
        let max = top.first().copied().unwrap_or(f64::NEG_INFINITY);
        Impacts {
            key,
            weights,
            max,
            top: top.into_boxed_slice(),
        }
    }
}

/// A list's cached `Impacts`, for the two most recent keys: a long-lived
/// snapshot and the current state read the same unchanged lists with
/// different statistics, and must not evict each other's weights. A copy
/// starts empty: lists are copied only to be changed, and a change makes
/// the weights stale.
#[derive(Default)]
pub(crate) struct ImpactCache(Mutex<[Option<Arc<Impacts>>; 2]>);

impl Clone for ImpactCache {
    fn clone(&self) -> Self {
        ImpactCache::default()
    }
}

impl fmt::Debug for ImpactCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ImpactCache")
    }
}

impl ImpactCache {
    /// The cached weights for `key`, if held.
    pub fn get(&self, key: ImpactKey) -> Option<Arc<Impacts>> {
        self.0
            .lock()
            .iter()
            .flatten()
            .find(|i| i.key == key)
            .cloned()
    }

    /// The weights for `key`, computed by `compute` (and kept) unless held.
    /// Computed outside the lock, so no reader waits on another's work
    /// (two computing at once is wasted work, never a wrong answer).
    pub fn get_or_compute(
        &self,
        key: ImpactKey,
        compute: impl FnOnce() -> Result<Box<[f64]>>,
    ) -> Result<Arc<Impacts>> {
        if let Some(impacts) = self.get(key) {
            return Ok(impacts);
        }
        let fresh = Arc::new(Impacts::new(key, compute()?));
        let mut held = self.0.lock();
        if let Some(impacts) = held.iter().flatten().find(|i| i.key == key) {
            return Ok(Arc::clone(impacts));
        }
        held[1] = held[0].take();
        held[0] = Some(Arc::clone(&fresh));
        Ok(fresh)
    }

    pub(super) fn clear(&mut self) {
        *self.0.get_mut() = [None, None];
    }
}

pub type Postings = Arc<PostingList>;

#[derive(Debug, Clone)]
pub(crate) struct TextIndex {
    pub pos: usize,
    pub postings: TermTable<Postings>,
    /// Rows whose value is a string (`N`) and their total token count.
    pub docs: u64,
    pub total_len: u64,
}

/// The most terms `term_counts` makes room for before reading a row.
const MAX_PRESIZED_TERMS: usize = 1024;

/// A row's distinct terms with their counts, and its length in tokens.
/// Terms are borrowed from `text` where it already holds them in
/// lowercase. The map is per row: a fast seeded hash, sized for about one
/// term per eight bytes of a short row (a long one grows it as it goes).
fn term_counts(text: &str) -> (Vec<(Cow<'_, str>, u32)>, u32) {
    let capacity = (text.len() / 8).min(MAX_PRESIZED_TERMS);
    let mut counts: HashMap<Cow<'_, str>, u32, RandomState> =
        HashMap::with_capacity_and_hasher(capacity, RandomState::default());
    let mut len = 0usize;
    tokenize::each_token(text, |token| {
        len += 1;
        match counts.get_mut(&*token) {
            Some(n) => *n = n.saturating_add(1),
            None => {
                counts.insert(token, 1);
            }
        }
    });
    let len = u32::try_from(len).unwrap_or(u32::MAX - 1);
    (counts.into_iter().collect(), len)
}

impl TextIndex {
    pub fn new(pos: usize) -> Self {
        TextIndex {
            pos,
            postings: TermTable::new(),
            docs: 0,
            total_len: 0,
        }
    }

    /// Indexes the row stored in `slot` (slots only grow).
    pub fn push(&mut self, slot: u32, row: &[Value]) {
        let Some(Value::Str(text)) = row.get(self.pos) else {
            return;
        };
        let (counts, len) = term_counts(text);
        for (term, tf) in counts {
            let list = self.postings.get_or_default(&term);
            Arc::make_mut(list).push(slot, tf, len);
        }
        self.docs += 1;
        self.total_len += u64::from(len);
    }

    pub fn remove(&mut self, slot: u32, row: &[Value]) {
        let Some(Value::Str(text)) = row.get(self.pos) else {
            return;
        };
        let (counts, len) = term_counts(text);
        for (term, _) in counts {
            let Some(list) = self.postings.get_mut(&term) else {
                continue;
            };
            let list = Arc::make_mut(list);
            list.remove(slot);
            if list.is_empty() {
                self.postings.remove(&term);
            }
        }
        self.docs = self.docs.saturating_sub(1);
        self.total_len = self.total_len.saturating_sub(u64::from(len));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bounds(list: &PostingList) -> (u32, u32) {
        (list.max_tf, list.min_len)
    }

    #[test]
    fn impacts_keep_their_largest_weights_in_order() {
        let key = ImpactKey {
            docs: 1,
            total_len: 1,
            k1: 0,
            b: 0,
        };
        for len in [0usize, 1, 63, 64, 65, 500] {
            let weights: Vec<f64> = (0..len).map(|i| ((i * 37) % 101) as f64).collect();
            let impacts = Impacts::new(key, weights.clone().into_boxed_slice());
            let mut want = weights;
            want.sort_by(|a, b| b.total_cmp(a));
            want.truncate(TOP_WEIGHTS);
            assert_eq!(&*impacts.top, &want[..], "{len} weights");
            let max = want.first().copied().unwrap_or(f64::NEG_INFINITY);
            assert_eq!(impacts.max, max);
        }
        let impacts = Impacts::new(key, vec![1.0, f64::NAN, 3.0].into_boxed_slice());
        assert!(impacts.top.is_empty());
        assert_eq!(impacts.max, f64::INFINITY);
    }

    #[test]
    fn list_bounds_stay_exact_through_removals() {
        let mut list = PostingList::default();
        assert_eq!(bounds(&list), (0, u32::MAX));
        for (slot, tf, len) in [(0, 1, 9), (2, 4, 12), (5, 2, 3), (7, 4, 30)] {
            list.push(slot, tf, len);
        }
        assert_eq!(bounds(&list), (4, 3));
        list.remove(5);
        assert_eq!(bounds(&list), (4, 9), "the shortest row left");
        list.remove(2);
        assert_eq!(bounds(&list), (4, 9), "another row still has tf 4");
        list.remove(7);
        assert_eq!(bounds(&list), (1, 9));
        list.remove(6);
        assert_eq!(list.postings(), vec![(0, 1, 9)]);
        list.remove(0);
        assert_eq!(bounds(&list), (0, u32::MAX));
        assert!(list.is_empty());
    }

    fn key(docs: u64) -> ImpactKey {
        ImpactKey {
            docs,
            total_len: 10,
            k1: 1.2f64.to_bits(),
            b: 0.75f64.to_bits(),
        }
    }

    #[test]
    fn impact_cache_keeps_the_two_latest_keys_and_empties_on_change() {
        let mut list = PostingList::default();
        list.push(0, 1, 3);
        let computed = std::cell::Cell::new(0);
        let weights = |w: f64| {
            computed.set(computed.get() + 1);
            Ok(vec![w].into_boxed_slice())
        };
        let got = |list: &PostingList, k: u64, w: f64| {
            let impacts = list.impacts.get_or_compute(key(k), || weights(w));
            impacts.map(|i| i.weights[0]).ok()
        };
        assert_eq!(got(&list, 1, 1.0), Some(1.0));
        assert_eq!(got(&list, 2, 2.0), Some(2.0));
        assert_eq!(got(&list, 1, 9.0), Some(1.0), "kept, not recomputed");
        assert_eq!(computed.get(), 2);
        assert_eq!(got(&list, 3, 3.0), Some(3.0));
        assert!(list.impacts.get(key(1)).is_none(), "the oldest key went");
        assert!(list.impacts.get(key(2)).is_some());
        let copy = list.clone();
        assert!(copy.impacts.get(key(2)).is_none(), "a copy starts empty");
        list.push(5, 1, 3);
        assert!(list.impacts.get(key(2)).is_none(), "a change empties it");
        // A weight that is not finite leaves no usable bound.
        let odd = Impacts::new(key(1), vec![1.0, f64::NAN].into_boxed_slice());
        assert_eq!(odd.max, f64::INFINITY);
        assert_eq!(Impacts::new(key(1), vec![1.0, 2.5].into()).max, 2.5);
    }

    #[test]
    fn index_keeps_counts_lengths_and_slots() {
        let mut index = TextIndex::new(0);
        index.push(0, &[Value::str("a b a")]);
        index.push(1, &[Value::Null]);
        index.push(2, &[Value::str("b")]);
        let a = index.postings.get("a").cloned();
        let b = index.postings.get("b").cloned();
        let (Some(a), Some(b)) = (a, b) else {
            panic!("both terms are indexed");
        };
        assert_eq!(a.postings(), vec![(0, 2, 3)]);
        assert_eq!(b.postings(), vec![(0, 1, 3), (2, 1, 1)]);
        assert_eq!((index.docs, index.total_len), (2, 4));
        index.remove(0, &[Value::str("a b a")]);
        assert!(index.postings.get("a").is_none());
        assert_eq!(index.postings.get("b").map(|b| bounds(b)), Some((1, 1)));
        assert_eq!((index.docs, index.total_len), (1, 1));
    }
}
