//! The term dictionary of a text index: a hash table split into shards
//! that snapshots share, so a write copies only the shards it changes.
//!
//! A query's terms are looked up together (`get_all`), in stages whose
//! memory loads overlap: every term's slot is asked for before any is
//! read, and every found entry's key and value before any key is compared.
//! Reaching a term costs one load from memory (its slot; the shard array
//! is small and stays cached), where a persistent trie costs a chain of
//! dependent ones, one per level.
//!
//! Each shard is an open-addressing table with linear probing, at most
//! half full. Entries keep their key's full hash: probing compares hashes
//! and reads a key only on a match. The hasher is seeded per dictionary,
//! so keys chosen to collide in one process do not collide in another.

use std::fmt;
use std::hash::BuildHasher;
use std::sync::Arc;

use foldhash::fast::RandomState;

use super::kernels::prefetch;

/// How many entries a shard holds on average before the shards double.
const SHARD_ENTRIES: usize = 16;

/// The smallest shard capacity (slots) once a shard holds anything.
const MIN_SLOTS: usize = 4;

struct Entry<V> {
    hash: u64,
    key: Arc<str>,
    value: V,
}

// Copying a shard copies its entries: the key and value are shared.
impl<V: Clone> Clone for Entry<V> {
    fn clone(&self) -> Self {
        Entry {
            hash: self.hash,
            key: Arc::clone(&self.key),
            value: self.value.clone(),
        }
    }
}

/// A shard's slots (a power of two of them, or none).
type Shard<V> = Arc<[Option<Entry<V>>]>;

pub(crate) struct TermTable<V> {
    hasher: RandomState,
    /// A power of two of shards; a key's shard is its hash's top bits.
    shards: Arc<[Shard<V>]>,
    len: usize,
}

impl<V> Clone for TermTable<V> {
    fn clone(&self) -> Self {
        TermTable {
            hasher: self.hasher.clone(),
            shards: Arc::clone(&self.shards),
            len: self.len,
        }
    }
}

impl<V> fmt::Debug for TermTable<V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TermTable({} terms)", self.len)
    }
}

impl<V: Clone> Default for TermTable<V> {
    fn default() -> Self {
        TermTable {
            hasher: RandomState::default(),
            shards: Arc::from([Shard::<V>::from([])]),
            len: 0,
        }
    }
}

/// The slots a key of `hash` probes in a shard of `slots` slots, in order
/// (each slot once; the low bits pick the start, the high ones the shard).
fn probe(hash: u64, slots: usize) -> impl Iterator<Item = usize> {
    let mask = slots.wrapping_sub(1);
    let start = hash as usize & mask;
    (0..slots).map(move |i| (start + i) & mask)
}

impl<V: Clone> TermTable<V> {
    pub fn new() -> Self {
        Self::default()
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    fn shard_of(&self, hash: u64) -> usize {
        // A power of two: the top log2(n) bits (none when n is 1).
        let bits = self.shards.len().trailing_zeros();
        match bits {
            0 => 0,
            _ => (hash >> (64 - bits)) as usize,
        }
    }

    /// The entry of `key` (hashed to `hash`) and its slot, if present.
    fn find(&self, key: &str, hash: u64) -> Option<(usize, usize)> {
        let s = self.shard_of(hash);
        let shard = &self.shards[s];
        for at in probe(hash, shard.len()) {
            match &shard[at] {
                None => return None,
                Some(e) if e.hash == hash && *e.key == *key => return Some((s, at)),
                Some(_) => {}
            }
        }
        None
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        let (s, at) = self.find(key, self.hash(key))?;
        self.shards[s][at].as_ref().map(|e| &e.value)
    }

    /// The value of each of `keys`, in order, looked up together so that
    /// their loads overlap; `found` sees each value as soon as its entry
    /// is located, before its key is compared (to ask for what the value
    /// points to), and may see a value whose key then does not match.
    pub fn get_all<'t>(
        &'t self,
        keys: &[String],
        mut found: impl FnMut(&'t V),
    ) -> Vec<Option<&'t V>> {
        let homes: Vec<(u64, &Shard<V>, usize)> = keys
            .iter()
            .map(|key| {
                let hash = self.hash(key);
                let shard = &self.shards[self.shard_of(hash)];
                let home = hash as usize & shard.len().wrapping_sub(1);
                if let Some(slot) = shard.get(home..=home) {
                    prefetch(slot);
                }
                (hash, shard, home)
            })
            .collect();
        // The first entry of each key's hash: almost always its own.
        let first: Vec<Option<&Entry<V>>> = homes
            .iter()
            .map(|&(hash, shard, _)| {
                let entry = probe(hash, shard.len())
                    .map_while(|at| shard[at].as_ref())
                    .find(|e| e.hash == hash)?;
                prefetch(entry.key.as_bytes());
                found(&entry.value);
                Some(entry)
            })
            .collect();
        keys.iter()
            .zip(first)
            .map(|(key, entry)| match entry {
                Some(e) if *e.key == **key => Some(&e.value),
                Some(_) => self.get(key),
                None => None,
            })
            .collect()
    }

    /// The value of `key`, inserting `V::default()` when absent.
    pub fn get_or_default(&mut self, key: &str) -> &mut V
    where
        V: Default,
    {
        let hash = self.hash(key);
        if self.find(key, hash).is_none() {
            self.insert_new(key, hash, V::default());
        }
        match self.find(key, hash) {
            Some((s, at)) => self.value_mut(s, at),
            None => unreachable!("a key just inserted is found"),
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let (s, at) = self.find(key, self.hash(key))?;
        Some(self.value_mut(s, at))
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let hash = self.hash(key);
        let (s, _) = self.find(key, hash)?;
        let shards = Arc::make_mut(&mut self.shards);
        let mut entries: Vec<Entry<V>> = shards[s].iter().flatten().cloned().collect();
        let gone = entries
            .iter()
            .position(|e| e.hash == hash && *e.key == *key)?;
        let removed = entries.swap_remove(gone).value;
        shards[s] = build_shard(entries);
        self.len -= 1;
        Some(removed)
    }

    /// The value in slot `at` of shard `s`, the shard copied first when a
    /// snapshot shares it.
    fn value_mut(&mut self, s: usize, at: usize) -> &mut V {
        let shards = Arc::make_mut(&mut self.shards);
        match &mut Arc::make_mut(&mut shards[s])[at] {
            Some(entry) => &mut entry.value,
            None => unreachable!("a found slot holds an entry"),
        }
    }

    /// Adds an entry for a key not present, keeping shards at most half
    /// full and averaging at most `SHARD_ENTRIES` entries.
    fn insert_new(&mut self, key: &str, hash: u64, value: V) {
        self.len += 1;
        if self.len > self.shards.len() * SHARD_ENTRIES {
            self.split_shards();
        }
        let s = self.shard_of(hash);
        let entry = Entry {
            hash,
            key: Arc::from(key),
            value,
        };
        let shards = Arc::make_mut(&mut self.shards);
        let count = shards[s].iter().flatten().count();
        if 2 * (count + 1) > shards[s].len() {
            let mut entries: Vec<Entry<V>> = shards[s].iter().flatten().cloned().collect();
            entries.push(entry);
            shards[s] = build_shard(entries);
        } else {
            let shard = Arc::make_mut(&mut shards[s]);
            if let Some(at) = probe(hash, shard.len()).find(|&at| shard[at].is_none()) {
                shard[at] = Some(entry);
            }
        }
    }

    /// Doubles the shards, moving every entry to its new shard.
    fn split_shards(&mut self) {
        let n = self.shards.len() * 2;
        let mut parts: Vec<Vec<Entry<V>>> = (0..n).map(|_| Vec::new()).collect();
        let bits = n.trailing_zeros();
        for entry in self.shards.iter().flat_map(|s| s.iter().flatten()) {
            parts[(entry.hash >> (64 - bits)) as usize].push(entry.clone());
        }
        self.shards = parts.into_iter().map(build_shard).collect();
    }
}

/// A shard holding `entries`, at most half full.
fn build_shard<V>(entries: Vec<Entry<V>>) -> Shard<V> {
    if entries.is_empty() {
        return Arc::from([]);
    }
    let slots = (2 * entries.len()).next_power_of_two().max(MIN_SLOTS);
    let mut shard: Vec<Option<Entry<V>>> = (0..slots).map(|_| None).collect();
    for entry in entries {
        let free = probe(entry.hash, slots).find(|&at| shard[at].is_none());
        if let Some(at) = free {
            shard[at] = Some(entry);
        }
    }
    shard.into()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn keys(table: &TermTable<u32>, keys: &[String]) -> Vec<Option<u32>> {
        table
            .get_all(keys, |_| {})
            .into_iter()
            .map(|v| v.copied())
            .collect()
    }

    #[test]
    fn finds_inserts_and_removes_across_shard_splits() {
        let mut table: TermTable<u32> = TermTable::new();
        assert_eq!(table.get("a"), None);
        assert_eq!(keys(&table, &["a".into()]), vec![None]);
        for i in 0..5000u32 {
            *table.get_or_default(&format!("w{i}")) += i + 1;
        }
        assert_eq!(table.len(), 5000);
        assert!(table.shards.len() >= 5000 / SHARD_ENTRIES);
        for shard in table.shards.iter() {
            let used = shard.iter().flatten().count();
            assert!(2 * used <= shard.len(), "at most half full");
        }
        let wanted: Vec<String> = ["w0", "w4999", "nope", "w17", "w17"]
            .map(String::from)
            .into();
        assert_eq!(
            keys(&table, &wanted),
            vec![Some(1), Some(5000), None, Some(18), Some(18)]
        );
        assert_eq!(table.remove("w17"), Some(18));
        assert_eq!(table.remove("w17"), None);
        assert_eq!(table.get("w17"), None);
        assert_eq!(table.get("w18"), Some(&19));
        assert_eq!(table.len(), 4999);
        *table.get_mut("w0").expect("present") = 7;
        assert_eq!(table.get("w0"), Some(&7));
        assert!(table.get_mut("w17").is_none());
    }

    #[test]
    fn a_clone_is_a_snapshot() {
        let mut table: TermTable<u32> = TermTable::new();
        for i in 0..100u32 {
            *table.get_or_default(&i.to_string()) = i;
        }
        let snapshot = table.clone();
        *table.get_or_default("5") = 500;
        table.remove("6");
        for i in 100..1000u32 {
            *table.get_or_default(&i.to_string()) = i;
        }
        assert_eq!(snapshot.get("5"), Some(&5));
        assert_eq!(snapshot.get("6"), Some(&6));
        assert_eq!(snapshot.get("500"), None);
        assert_eq!(snapshot.len(), 100);
        assert_eq!(
            (table.get("5"), table.get("6"), table.get("500")),
            (Some(&500), None, Some(&500))
        );
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(String, u32),
        Remove(String),
        Snapshot,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few distinct keys, so adds, updates and removes meet.
        let key = "[a-d]{0,3}";
        prop_oneof![
            4 => (key, any::<u32>()).prop_map(|(k, v)| Op::Add(k, v)),
            2 => key.prop_map(Op::Remove),
            1 => Just(Op::Snapshot),
        ]
    }

    proptest! {
        /// The table and each snapshot taken of it agree with a HashMap
        /// updated the same way.
        #[test]
        fn agrees_with_a_hash_map(ops in prop::collection::vec(op(), 0..400)) {
            let mut table: TermTable<u32> = TermTable::new();
            let mut model: HashMap<String, u32> = HashMap::new();
            let mut snapshots = Vec::new();
            for op in ops {
                match op {
                    Op::Add(k, v) => {
                        *table.get_or_default(&k) = v;
                        model.insert(k, v);
                    }
                    Op::Remove(k) => prop_assert_eq!(table.remove(&k), model.remove(&k)),
                    Op::Snapshot => snapshots.push((table.clone(), model.clone())),
                }
            }
            snapshots.push((table, model));
            let probes: Vec<String> = (0..40u32)
                .map(|i| ["", "a", "b", "c", "d"][(i % 5) as usize].repeat(1 + (i / 5) as usize % 3))
                .chain(std::iter::once(String::new()))
                .collect();
            for (table, model) in &snapshots {
                prop_assert_eq!(table.len(), model.len());
                let want: Vec<Option<u32>> = probes.iter().map(|k| model.get(k).copied()).collect();
                prop_assert_eq!(keys(table, &probes), want.clone());
                let one_by_one: Vec<Option<u32>> = probes.iter().map(|k| table.get(k).copied()).collect();
                prop_assert_eq!(one_by_one, want);
            }
        }
    }
}
