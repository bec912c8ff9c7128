//! A growable array of fixed-stride records kept in shared chunks. Cloning
//! copies one pointer per chunk; a write copies only the chunk it touches
//! when a snapshot still shares it, so snapshots stay cheap while scans read
//! contiguous memory.

use std::sync::Arc;

/// Records per chunk.
pub const CHUNK: usize = 1024;

#[derive(Debug, Clone)]
pub struct Chunked<T> {
    stride: usize,
    len: usize,
    /// Slices rather than `Vec`s: the length sits next to the pointer, so
    /// reaching a record takes one less dependent load.
    chunks: Vec<Arc<[T]>>,
}

impl<T: Clone + Default> Chunked<T> {
    pub fn new(stride: usize) -> Self {
        Chunked {
            stride,
            len: 0,
            chunks: Vec::new(),
        }
    }

    /// Values per record.
    pub fn stride(&self) -> usize {
        self.stride
    }

    /// Number of records.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Record `slot` (`slot < len`).
    #[inline]
    pub fn get(&self, slot: usize) -> &[T] {
        let at = (slot % CHUNK) * self.stride;
        &self.chunks[slot / CHUNK][at..at + self.stride]
    }

    /// Record `slot` for writing; copies its chunk if a snapshot shares it.
    pub fn get_mut(&mut self, slot: usize) -> &mut [T] {
        let at = (slot % CHUNK) * self.stride;
        let chunk = Arc::make_mut(&mut self.chunks[slot / CHUNK]);
        &mut chunk[at..at + self.stride]
    }

    /// Appends a record (`values` padded or cut to the stride); returns its slot.
    pub fn push(&mut self, values: &[T]) -> usize {
        let slot = self.len;
        if slot % CHUNK == 0 {
            self.chunks
                .push(Arc::from(vec![T::default(); CHUNK * self.stride]));
        }
        let record = self.get_mut(slot);
        for (dst, src) in record.iter_mut().zip(values) {
            *dst = src.clone();
        }
        self.len += 1;
        slot
    }

    /// Contiguous runs of records: `(first slot, records)` per chunk.
    pub fn runs(&self) -> impl Iterator<Item = (usize, &[T])> + '_ {
        self.chunks.iter().enumerate().map(move |(i, chunk)| {
            let first = i * CHUNK;
            let n = self.len.saturating_sub(first).min(CHUNK);
            (first, &chunk[..n * self.stride])
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn push_get_and_copy_on_write() {
        let mut a: Chunked<u32> = Chunked::new(2);
        for i in 0..(CHUNK as u32 + 5) {
            assert_eq!(a.push(&[i, i * 2]), i as usize);
        }
        let snapshot = a.clone();
        a.get_mut(3)[1] = 99;
        assert_eq!(a.get(3), &[3, 99]);
        assert_eq!(snapshot.get(3), &[3, 6], "the snapshot keeps its copy");
        let runs: Vec<(usize, usize)> = a.runs().map(|(s, r)| (s, r.len())).collect();
        assert_eq!(runs, vec![(0, CHUNK * 2), (CHUNK, 10)]);
    }
}
