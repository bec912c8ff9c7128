//! One term's posting list, held in chunks so that a write copies a
//! bounded amount of it. Snapshots share lists, so the first write to a
//! list after a snapshot copies what it changes: a whole list would make
//! a one-row insert cost in proportion to the corpus (its frequent terms'
//! lists). Here a push copies the tail (at most `CHUNK` postings) and a
//! removal one sealed chunk plus the chunk table (a pointer and two
//! integers per `CHUNK` postings).
//!
//! Slots only grow (a new or updated row takes a new slot), so every push
//! lands in the tail; a full tail is sealed into a shared chunk. Scans read
//! the chunks in order, each a set of contiguous arrays, and positions
//! count postings across chunks in that order (cached weights are indexed
//! by them).

use std::ops::Range;
use std::sync::Arc;

use super::text_index::ImpactCache;

/// Postings a chunk holds at most (eight in this crate's unit tests, so
/// that their small lists span many chunks).
#[cfg(not(test))]
pub(crate) const CHUNK: usize = 1024;
#[cfg(test)]
pub(crate) const CHUNK: usize = 8;

/// A run of postings, ascending by slot, as parallel arrays: cursors that
/// only seek read `slots`, and scoring reads `tfs` and `lens` at the same
/// position. A row keeps its slot and length for life, so the length
/// stored here never goes stale.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Chunk<'a> {
    pub slots: &'a [u32],
    pub tfs: &'a [u32],
    pub lens: &'a [u32],
}

impl Chunk<'_> {
    pub fn len(&self) -> usize {
        self.slots.len()
    }
}

/// A sealed chunk's postings: its slots, then their tfs, then their row
/// lengths, in one allocation with its reference count (reaching a chunk
/// is one load).
type Packed = Arc<[u32]>;

/// A sealed chunk, its first slot (seeks skip chunks by it, unread) and
/// the position of its first posting in the list.
#[derive(Debug, Clone)]
struct Sealed {
    postings: Packed,
    first: u32,
    start: u32,
}

impl Sealed {
    fn view(&self) -> Chunk<'_> {
        view(&self.postings)
    }
}

/// `chunk`'s postings but those in `skip`, packed.
fn pack(chunk: Chunk<'_>, skip: Range<usize>) -> Packed {
    let mut packed = Vec::with_capacity(3 * (chunk.len() - skip.len()));
    for part in [chunk.slots, chunk.tfs, chunk.lens] {
        packed.extend_from_slice(&part[..skip.start]);
        packed.extend_from_slice(&part[skip.end..]);
    }
    packed.into()
}

/// Two chunks' postings, `a`'s first, packed as one.
fn join(a: Chunk<'_>, b: Chunk<'_>) -> Packed {
    let mut packed = Vec::with_capacity(3 * (a.len() + b.len()));
    for (first, then) in [(a.slots, b.slots), (a.tfs, b.tfs), (a.lens, b.lens)] {
        packed.extend_from_slice(first);
        packed.extend_from_slice(then);
    }
    packed.into()
}

/// A packed chunk's three arrays.
fn view(sealed: &[u32]) -> Chunk<'_> {
    let n = sealed.len() / 3;
    let (slots, rest) = sealed.split_at(n);
    let (tfs, lens) = rest.split_at(n);
    Chunk { slots, tfs, lens }
}

/// The newest postings, growing in place.
#[derive(Debug, Clone, Default)]
struct Tail {
    slots: Vec<u32>,
    tfs: Vec<u32>,
    lens: Vec<u32>,
}

impl Tail {
    fn view(&self) -> Chunk<'_> {
        Chunk {
            slots: &self.slots,
            tfs: &self.tfs,
            lens: &self.lens,
        }
    }

    fn len(&self) -> usize {
        self.slots.len()
    }
}

/// A term's postings: sealed chunks shared between snapshots, then the
/// tail, which is copied with the list.
#[derive(Debug, Clone)]
pub(crate) struct PostingList {
    /// Never empty, in slot order.
    sealed: Vec<Sealed>,
    tail: Tail,
    len: usize,
    /// At least every posting's tf (exact after each insert and delete).
    pub max_tf: u32,
    /// At most every posting's row length (exact after each insert and
    /// delete).
    pub min_len: u32,
    pub impacts: ImpactCache,
}

impl Default for PostingList {
    fn default() -> Self {
        PostingList {
            sealed: Vec::new(),
            tail: Tail::default(),
            len: 0,
            max_tf: 0,
            min_len: u32::MAX,
            impacts: ImpactCache::default(),
        }
    }
}

/// Positions are below `len`, which counts slots (u32) of one table.
fn position(at: usize) -> u32 {
    u32::try_from(at).unwrap_or(u32::MAX)
}

impl PostingList {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The chunks in slot order (the tail last, possibly empty), each
    /// with the position of its first posting.
    pub fn chunks(&self) -> impl Iterator<Item = (Chunk<'_>, usize)> + Clone {
        let sealed = self.sealed.iter().map(|c| (c.view(), c.start as usize));
        sealed.chain(std::iter::once((self.tail.view(), self.tail_start())))
    }

    /// Chunk `c` of `chunks` and the position of its first posting.
    #[inline]
    pub fn chunk(&self, c: usize) -> Option<(Chunk<'_>, usize)> {
        match self.sealed.get(c) {
            Some(chunk) => Some((chunk.view(), chunk.start as usize)),
            None => (c == self.sealed.len()).then(|| (self.tail.view(), self.tail_start())),
        }
    }

    /// The first chunk's slots (what a scan reads first).
    pub fn head(&self) -> &[u32] {
        self.chunks().next().map_or(&[], |(c, _)| c.slots)
    }

    fn tail_start(&self) -> usize {
        self.len - self.tail.len()
    }

    /// The first slot of chunk `c`, when it exists and holds postings.
    #[inline]
    fn first_of(&self, c: usize) -> Option<u32> {
        match self.sealed.get(c) {
            Some(chunk) => Some(chunk.first),
            None => self
                .tail
                .slots
                .first()
                .copied()
                .filter(|_| c == self.sealed.len()),
        }
    }

    /// The chunk (index into `chunks`) that holds `slot` if any does: the
    /// last from chunk `from` on whose first slot is at most `slot`
    /// (`from` itself when there is none).
    #[inline]
    pub fn chunk_of(&self, slot: u32, from: usize) -> usize {
        // Lookups in slot order mostly stay in the chunk of the one before.
        if self.first_of(from + 1).is_none_or(|first| first > slot) {
            return from;
        }
        if self
            .first_of(self.sealed.len())
            .is_some_and(|first| first <= slot)
        {
            return self.sealed.len();
        }
        let later = self.sealed.get(from + 1..).unwrap_or_default();
        from + later.partition_point(|c| c.first <= slot)
    }

    /// The chunk holding `slot`, the position of its first posting and
    /// `slot`'s offset in it, if the list holds `slot`.
    pub fn locate(&self, slot: u32) -> Option<(Chunk<'_>, usize, usize)> {
        self.locate_in(slot)
            .map(|(_, chunk, start, at)| (chunk, start, at))
    }

    /// `locate`, with the chunk's index in `chunks`.
    fn locate_in(&self, slot: u32) -> Option<(usize, Chunk<'_>, usize, usize)> {
        let c = self.chunk_of(slot, 0);
        let (chunk, start) = self.chunk(c)?;
        let at = chunk.slots.binary_search(&slot).ok()?;
        Some((c, chunk, start, at))
    }

    pub(super) fn push(&mut self, slot: u32, tf: u32, len: u32) {
        self.impacts.clear();
        if self.tail.len() >= CHUNK {
            let full = std::mem::take(&mut self.tail);
            self.sealed.push(Sealed {
                first: full.slots[0],
                start: position(self.len - full.len()),
                postings: pack(full.view(), 0..0),
            });
        }
        self.tail.slots.push(slot);
        self.tail.tfs.push(tf);
        self.tail.lens.push(len);
        self.len += 1;
        self.max_tf = self.max_tf.max(tf);
        self.min_len = self.min_len.min(len);
    }

    pub(super) fn remove(&mut self, slot: u32) {
        let Some((c, chunk, _, at)) = self.locate_in(slot) else {
            return;
        };
        let (tf, len) = (chunk.tfs[at], chunk.lens[at]);
        let kept = (c < self.sealed.len()).then(|| pack(chunk, at..at + 1));
        self.impacts.clear();
        match kept {
            Some(kept) => {
                self.sealed[c].postings = kept;
                self.sealed[c + 1..].iter_mut().for_each(|c| c.start -= 1);
                self.settle(c);
            }
            None => {
                self.tail.slots.remove(at);
                self.tail.tfs.remove(at);
                self.tail.lens.remove(at);
            }
        }
        self.len -= 1;
        if tf == self.max_tf || len == self.min_len {
            let (mut max_tf, mut min_len) = (0, u32::MAX);
            for (chunk, _) in self.chunks() {
                max_tf = chunk.tfs.iter().copied().fold(max_tf, u32::max);
                min_len = chunk.lens.iter().copied().fold(min_len, u32::min);
            }
            (self.max_tf, self.min_len) = (max_tf, min_len);
        }
    }

    /// After a removal from sealed chunk `c`: an emptied chunk goes, and
    /// one that fell below a quarter full joins a sealed neighbour when
    /// both fit in one chunk (so removals never leave a list of tiny
    /// chunks).
    fn settle(&mut self, c: usize) {
        let len = self.sealed[c].view().len();
        if len == 0 {
            self.sealed.remove(c);
            return;
        }
        self.sealed[c].first = self.sealed[c].view().slots[0];
        if len >= CHUNK / 4 {
            return;
        }
        let fits = |n: &Sealed| len + n.view().len() <= CHUNK;
        if self.sealed.get(c + 1).is_some_and(fits) {
            self.merge_next(c);
        } else if c > 0 && fits(&self.sealed[c - 1]) {
            self.merge_next(c - 1);
        }
    }

    /// Chunk `c + 1` appended to chunk `c`.
    fn merge_next(&mut self, c: usize) {
        let next = self.sealed.remove(c + 1);
        self.sealed[c].postings = join(self.sealed[c].view(), next.view());
    }
}

#[cfg(test)]
impl PostingList {
    /// The position of `slot`, if the list holds it.
    pub fn find(&self, slot: u32) -> Option<usize> {
        self.locate(slot).map(|(_, start, at)| start + at)
    }

    /// Every posting as (slot, tf, row length), in order.
    pub fn postings(&self) -> Vec<(u32, u32, u32)> {
        self.chunks()
            .flat_map(|(c, _)| (0..c.len()).map(move |i| (c.slots[i], c.tfs[i], c.lens[i])))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// `list` holds exactly `want`, and every way of reading it agrees:
    /// chunk table, positions, lookups by slot, bounds.
    fn check(list: &PostingList, want: &[(u32, u32, u32)]) {
        assert_eq!(list.postings(), want);
        assert_eq!(list.len(), want.len());
        assert!(list
            .sealed
            .iter()
            .all(|c| c.postings.len() % 3 == 0 && (1..=CHUNK).contains(&c.view().len())));
        assert!(list.tail.len() <= CHUNK);
        let mut start = 0;
        for chunk in &list.sealed {
            assert_eq!(chunk.first, chunk.view().slots[0]);
            assert_eq!(chunk.start as usize, start);
            start += chunk.view().len();
        }
        for (at, &(slot, tf, len)) in want.iter().enumerate() {
            assert_eq!(list.find(slot), Some(at));
            let (chunk, _, offset) = list.locate(slot).unwrap();
            assert_eq!((chunk.tfs[offset], chunk.lens[offset]), (tf, len));
        }
        let max_tf = want.iter().map(|p| p.1).max().unwrap_or(0);
        let min_len = want.iter().map(|p| p.2).min().unwrap_or(u32::MAX);
        assert_eq!((list.max_tf, list.min_len), (max_tf, min_len));
    }

    /// What a forward search for each target finds, chunk by chunk as the
    /// cursor of `maxscore` reads it, against the plain list.
    fn check_forward(list: &PostingList, want: &[(u32, u32, u32)], targets: &[u32]) {
        let mut from = 0;
        for &target in targets {
            from = list.chunk_of(target, from);
            let held = list.chunk(from).and_then(|(chunk, start)| {
                let at = chunk.slots.binary_search(&target).ok()?;
                Some(start + at)
            });
            assert_eq!(held, want.iter().position(|p| p.0 == target), "{target}");
        }
    }

    #[test]
    fn pushes_seal_full_chunks_and_removals_copy_one() {
        let mut list = PostingList::default();
        let mut want = Vec::new();
        for slot in 0..(3 * CHUNK as u32 + 5) {
            list.push(2 * slot, 1 + slot % 3, 10 + slot % 7);
            want.push((2 * slot, 1 + slot % 3, 10 + slot % 7));
        }
        assert_eq!(list.sealed.len(), 3);
        check(&list, &want);
        // A snapshot shares every sealed chunk; a removal copies only the
        // chunk it changes.
        let snapshot = list.clone();
        list.remove(2 * (CHUNK as u32 + 3));
        want.retain(|p| p.0 != 2 * (CHUNK as u32 + 3));
        check(&list, &want);
        let shared: Vec<bool> = (0..3)
            .map(|c| Arc::ptr_eq(&list.sealed[c].postings, &snapshot.sealed[c].postings))
            .collect();
        assert_eq!(shared, [true, false, true]);
        assert_eq!(snapshot.len(), want.len() + 1, "the snapshot is unchanged");
        // Absent slots: between postings, below and past them all.
        list.remove(1);
        list.remove(u32::MAX);
        check(&list, &want);
        assert_eq!(list.find(1), None);
        assert_eq!(list.find(u32::MAX), None);
    }

    #[test]
    fn emptied_chunks_go_and_shrunk_ones_merge() {
        let mut list = PostingList::default();
        let mut want: Vec<(u32, u32, u32)> = Vec::new();
        for slot in 0..(4 * CHUNK as u32) {
            list.push(slot, 1, 5);
            want.push((slot, 1, 5));
        }
        // Empty the second chunk: it goes.
        for slot in CHUNK as u32..2 * CHUNK as u32 {
            list.remove(slot);
        }
        want.retain(|p| !(CHUNK as u32..2 * CHUNK as u32).contains(&p.0));
        check(&list, &want);
        assert_eq!(list.sealed.len(), 2);
        // Shrink the first below a quarter: it joins the next.
        for slot in 0..(CHUNK as u32 * 7 / 8) {
            list.remove(slot);
        }
        want.retain(|p| p.0 >= CHUNK as u32 * 7 / 8);
        check(&list, &want);
        assert_eq!(list.sealed.len(), 2, "the next chunk is full: no merge");
        let mut list = PostingList::default();
        for slot in 0..(3 * CHUNK as u32) {
            list.push(slot, 1, 5);
        }
        for slot in (0..(3 * CHUNK as u32)).filter(|s| s % 8 != 0) {
            list.remove(slot);
        }
        let want: Vec<(u32, u32, u32)> = (0..(3 * CHUNK as u32))
            .filter(|s| s % 8 == 0)
            .map(|s| (s, 1, 5))
            .collect();
        check(&list, &want);
        assert_eq!(list.sealed.len(), 1, "eighth-full chunks merged");
    }

    proptest! {
        #[test]
        fn a_list_holds_what_was_pushed_and_not_removed(
            grown in 0usize..5000,
            ops in proptest::collection::vec((any::<u16>(), 1u32..5, 1u32..50, 0u8..4), 0..5000),
            removals in 0u8..5,
            targets in proptest::collection::vec(0u32..20_000, 0..200),
            snapshot_at in 0usize..5000,
        ) {
            let mut list = PostingList::default();
            let mut want: Vec<(u32, u32, u32)> = Vec::new();
            let mut next = 0u32;
            let mut push = |list: &mut PostingList, want: &mut Vec<_>, tf, len, gap| {
                list.push(next, tf, len);
                want.push((next, tf, len));
                next += 1 + gap;
            };
            for i in 0..grown {
                push(&mut list, &mut want, 1 + i as u32 % 3, 9, i as u32 % 2);
            }
            // Then pushes and removals, `removals` in four of them a removal
            // (four or more: removals only, down to an empty list).
            let mut snapshot = None;
            for (i, (pick, tf, len, op)) in ops.into_iter().enumerate() {
                if i == snapshot_at {
                    // Shares its chunks with the list, as a reader's view does.
                    snapshot = Some((list.clone(), want.clone()));
                }
                if op < removals && !want.is_empty() {
                    let (slot, _, _) = want.remove(usize::from(pick) % want.len());
                    list.remove(slot);
                } else if op >= removals {
                    push(&mut list, &mut want, tf, len, u32::from(pick % 3));
                }
            }
            check(&list, &want);
            if let Some((list, want)) = snapshot {
                check(&list, &want);
            }
            let mut targets = targets;
            targets.sort_unstable();
            check_forward(&list, &want, &targets);
        }
    }
}
