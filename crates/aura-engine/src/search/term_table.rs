//! The term dictionary of a text index: a hash table split into shards
//! that snapshots share, so a write copies only the parts it changes.
//!
//! A key's hash picks a group (its top bits), a shard in the group (the
//! next bits) and a start slot in the shard (its low bits). Groups and
//! shards are shared between clones and copied on write, so a write after
//! a snapshot copies the directory's group pointers, one group's shard
//! pointers (together about twice the square root of the shard count)
//! and the shards it changes.
//!
//! A query's terms are looked up together (`get_all`), in stages whose
//! memory loads overlap: every term's slot is asked for before any is
//! read, and every found entry's key and value before any key is compared.
//! Reaching a term costs one load from memory (its slot: the directory and
//! groups, 16 bytes per shard, are read by every query and stay cached),
//! where a persistent trie costs a chain of dependent ones, one per level.
//!
//! Each shard is an open-addressing table with linear probing, at most
//! half full; a removal rebuilds its shard, so probe runs never hold gaps
//! and need no tombstones. Entries keep their key's full hash: probing
//! compares hashes and reads a key only on a match. The hasher is seeded
//! per dictionary, so keys chosen to collide in one process do not
//! collide in another.

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

/// A power of two of shards.
type Group<V> = Arc<[Shard<V>]>;

pub(crate) struct TermTable<V, S = RandomState> {
    hasher: S,
    /// `2^group_bits` groups of `2^shard_bits` shards.
    groups: Arc<[Group<V>]>,
    group_bits: u32,
    shard_bits: u32,
    len: usize,
}

impl<V, S: Clone> Clone for TermTable<V, S> {
    fn clone(&self) -> Self {
        TermTable {
            hasher: self.hasher.clone(),
            groups: Arc::clone(&self.groups),
            group_bits: self.group_bits,
            shard_bits: self.shard_bits,
            len: self.len,
        }
    }
}

impl<V, S> fmt::Debug for TermTable<V, S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TermTable({} terms)", self.len)
    }
}

impl<V: Clone, S: Default + BuildHasher> Default for TermTable<V, S> {
    fn default() -> Self {
        TermTable::with_hasher(S::default())
    }
}

/// The slots a key of `hash` probes in a shard of `slots` slots, in order
/// (each slot once).
fn probe(hash: u64, slots: usize) -> impl Iterator<Item = usize> {
    let mask = slots.wrapping_sub(1);
    let start = hash as usize & mask;
    (0..slots).map(move |i| (start + i) & mask)
}

/// Where a hash's entries live: (group, shard in the group).
fn place(hash: u64, group_bits: u32, shard_bits: u32) -> (usize, usize) {
    let bits = group_bits + shard_bits;
    let top = hash.checked_shr(64 - bits).unwrap_or(0);
    let group = top.checked_shr(shard_bits).unwrap_or(0);
    let shard = top & ((1u64 << shard_bits) - 1);
    (group as usize, shard as usize)
}

impl<V: Clone> TermTable<V> {
    pub fn new() -> Self {
        Self::default()
    }
}

impl<V: Clone, S: BuildHasher> TermTable<V, S> {
    fn with_hasher(hasher: S) -> Self {
        TermTable {
            hasher,
            groups: Arc::from([Group::<V>::from([Shard::<V>::from([])])]),
            group_bits: 0,
            shard_bits: 0,
            len: 0,
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.len
    }

    fn hash(&self, key: &str) -> u64 {
        self.hasher.hash_one(key)
    }

    fn place(&self, hash: u64) -> (usize, usize) {
        place(hash, self.group_bits, self.shard_bits)
    }

    fn shard(&self, hash: u64) -> &Shard<V> {
        let (g, s) = self.place(hash);
        &self.groups[g][s]
    }

    /// Shard `s` of group `g`, the directory and the group copied first
    /// when a snapshot shares them.
    fn shard_mut(&mut self, g: usize, s: usize) -> &mut Shard<V> {
        &mut Arc::make_mut(&mut Arc::make_mut(&mut self.groups)[g])[s]
    }

    /// The slot of `key` (hashed to `hash`) in its shard, if present.
    fn find(&self, key: &str, hash: u64) -> Option<usize> {
        let shard = self.shard(hash);
        probe(hash, shard.len())
            .map_while(|at| shard[at].as_ref().map(|e| (at, e)))
            .find(|(_, e)| e.hash == hash && *e.key == *key)
            .map(|(at, _)| at)
    }

    pub fn get(&self, key: &str) -> Option<&V> {
        let hash = self.hash(key);
        let at = self.find(key, hash)?;
        self.shard(hash)[at].as_ref().map(|e| &e.value)
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
        let homes: Vec<(u64, &Shard<V>)> = keys
            .iter()
            .map(|key| {
                let hash = self.hash(key);
                let shard = self.shard(hash);
                let home = hash as usize & shard.len().wrapping_sub(1);
                if let Some(slot) = shard.get(home..=home) {
                    prefetch(slot);
                }
                (hash, shard)
            })
            .collect();
        // The first entry of each key's hash: almost always its own.
        let first: Vec<Option<&Entry<V>>> = homes
            .into_iter()
            .map(|(hash, shard)| {
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
            Some(at) => self.value_mut(hash, at),
            None => unreachable!("a key just inserted is found"),
        }
    }

    pub fn get_mut(&mut self, key: &str) -> Option<&mut V> {
        let hash = self.hash(key);
        let at = self.find(key, hash)?;
        Some(self.value_mut(hash, at))
    }

    pub fn remove(&mut self, key: &str) -> Option<V> {
        let hash = self.hash(key);
        let at = self.find(key, hash)?;
        let (g, s) = self.place(hash);
        let shard = self.shard_mut(g, s);
        let removed = shard[at].as_ref().map(|e| e.value.clone())?;
        let rest = shard.iter().enumerate().filter(|(i, _)| *i != at);
        *shard = build_shard(rest.filter_map(|(_, e)| e.clone()).collect());
        self.len -= 1;
        Some(removed)
    }

    /// The value in slot `at` of `hash`'s shard, copied first when a
    /// snapshot shares it.
    fn value_mut(&mut self, hash: u64, at: usize) -> &mut V {
        let (g, s) = self.place(hash);
        match &mut Arc::make_mut(self.shard_mut(g, s))[at] {
            Some(entry) => &mut entry.value,
            None => unreachable!("a found slot holds an entry"),
        }
    }

    /// Adds an entry for a key not present, keeping shards at most half
    /// full and averaging at most `SHARD_ENTRIES` entries.
    fn insert_new(&mut self, key: &str, hash: u64, value: V) {
        self.len += 1;
        if self.len > SHARD_ENTRIES << (self.group_bits + self.shard_bits) {
            self.split_shards();
        }
        let entry = Entry {
            hash,
            key: Arc::from(key),
            value,
        };
        let (g, s) = self.place(hash);
        let shard = self.shard_mut(g, s);
        let count = shard.iter().flatten().count();
        if 2 * (count + 1) > shard.len() {
            let mut entries: Vec<Entry<V>> = shard.iter().flatten().cloned().collect();
            entries.push(entry);
            *shard = build_shard(entries);
        } else {
            // At most half full: a free slot is always found.
            let shard = Arc::make_mut(shard);
            let free = probe(hash, shard.len()).find(|&at| shard[at].is_none());
            debug_assert!(free.is_some(), "a shard at most half full has room");
            if let Some(at) = free {
                shard[at] = Some(entry);
            }
        }
    }

    /// Doubles the shards (alternately the groups and the shards per
    /// group, so both stay near the square root of their product), moving
    /// every entry to its new shard.
    fn split_shards(&mut self) {
        let bits = self.group_bits + self.shard_bits + 1;
        let (group_bits, shard_bits) = (bits.div_ceil(2), bits / 2);
        let mut parts: Vec<Vec<Entry<V>>> = (0..1usize << bits).map(|_| Vec::new()).collect();
        let entries = self
            .groups
            .iter()
            .flat_map(|g| g.iter())
            .flat_map(|s| s.iter().flatten());
        for entry in entries {
            let (g, s) = place(entry.hash, group_bits, shard_bits);
            parts[(g << shard_bits) | s].push(entry.clone());
        }
        let mut shards = parts.into_iter().map(build_shard);
        self.groups = (0..1usize << group_bits)
            .map(|_| shards.by_ref().take(1 << shard_bits).collect())
            .collect();
        self.group_bits = group_bits;
        self.shard_bits = shard_bits;
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
    use std::hash::{BuildHasherDefault, Hasher};

    use proptest::prelude::*;

    use super::*;

    /// A hash with few distinct values (its top and low bits only), so
    /// keys share shards, probe runs and whole hashes.
    #[derive(Default)]
    struct Crowded(u64);

    impl Hasher for Crowded {
        fn write(&mut self, bytes: &[u8]) {
            for b in bytes {
                self.0 = self.0.wrapping_mul(31).wrapping_add(u64::from(*b));
            }
        }

        fn finish(&self) -> u64 {
            self.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) & 0xC000_0000_0000_0003
        }
    }

    type CrowdedTable = TermTable<u32, BuildHasherDefault<Crowded>>;

    impl<V: Clone, S: BuildHasher> TermTable<V, S> {
        /// Every entry in its own shard, reachable from its start slot
        /// without a gap, shards at most half full, `len` entries in all.
        fn check(&self) {
            let mut total = 0;
            for (g, group) in self.groups.iter().enumerate() {
                assert_eq!(group.len(), 1 << self.shard_bits);
                for (s, shard) in group.iter().enumerate() {
                    let used = shard.iter().flatten().count();
                    assert!(2 * used <= shard.len(), "at most half full");
                    total += used;
                    for (at, entry) in shard.iter().enumerate() {
                        let Some(e) = entry else { continue };
                        assert_eq!(self.place(e.hash), (g, s));
                        let run: Vec<usize> = probe(e.hash, shard.len())
                            .take_while(|&i| i != at)
                            .collect();
                        assert!(run.iter().all(|&i| shard[i].is_some()), "no gap");
                    }
                }
            }
            assert_eq!(self.groups.len(), 1 << self.group_bits);
            assert_eq!(total, self.len);
        }
    }

    fn values<S: BuildHasher>(table: &TermTable<u32, S>, keys: &[String]) -> Vec<Option<u32>> {
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
        assert_eq!(values(&table, &["a".into()]), vec![None]);
        for i in 0..5000u32 {
            *table.get_or_default(&format!("w{i}")) += i + 1;
        }
        table.check();
        assert_eq!(table.len(), 5000);
        assert!(SHARD_ENTRIES << (table.group_bits + table.shard_bits) >= 5000);
        let wanted: Vec<String> = ["w0", "w4999", "nope", "w17", "w17", ""]
            .map(String::from)
            .into();
        assert_eq!(
            values(&table, &wanted),
            vec![Some(1), Some(5000), None, Some(18), Some(18), None]
        );
        assert_eq!(table.remove("w17"), Some(18));
        assert_eq!(table.remove("w17"), None);
        assert_eq!(table.get("w17"), None);
        assert_eq!(table.get("w18"), Some(&19));
        assert_eq!(table.len(), 4999);
        *table.get_mut("w0").expect("present") = 7;
        assert_eq!(table.get("w0"), Some(&7));
        assert!(table.get_mut("w17").is_none());
        table.check();
    }

    #[test]
    fn emptied_and_filled_again() {
        let mut table: TermTable<u32> = TermTable::new();
        let keys: Vec<String> = (0..3000u32).map(|i| format!("k{i}")).collect();
        for (i, key) in (0u32..).zip(&keys) {
            *table.get_or_default(key) = i;
        }
        let full = table.clone();
        for key in &keys {
            assert!(table.remove(key).is_some());
        }
        table.check();
        assert_eq!(table.len(), 0);
        assert!(table
            .groups
            .iter()
            .flat_map(|g| g.iter())
            .all(|s| s.is_empty()));
        assert!(values(&table, &keys).iter().all(Option::is_none));
        for (i, key) in (0u32..3000).zip(&keys).rev() {
            *table.get_or_default(key) = i + 1;
        }
        table.check();
        let want: Vec<Option<u32>> = (1..=3000).map(Some).collect();
        assert_eq!(values(&table, &keys), want);
        let before: Vec<Option<u32>> = (0..3000).map(Some).collect();
        assert_eq!(
            values(&full, &keys),
            before,
            "the snapshot before the removals"
        );
    }

    #[test]
    fn a_clone_is_a_snapshot_across_splits() {
        let mut table: TermTable<u32> = TermTable::new();
        for i in 0..100u32 {
            *table.get_or_default(&i.to_string()) = i;
        }
        let snapshot = table.clone();
        *table.get_or_default("5") = 500;
        table.remove("6");
        for i in 100..5000u32 {
            *table.get_or_default(&i.to_string()) = i;
        }
        assert!(table.group_bits + table.shard_bits > snapshot.group_bits + snapshot.shard_bits);
        snapshot.check();
        let probes: Vec<String> = ["5", "6", "500", "99"].map(String::from).into();
        assert_eq!(
            values(&snapshot, &probes),
            vec![Some(5), Some(6), None, Some(99)]
        );
        assert_eq!(snapshot.len(), 100);
        assert_eq!(
            values(&table, &probes),
            vec![Some(500), None, Some(500), Some(99)]
        );
    }

    #[test]
    fn keys_with_one_hash_stay_apart() {
        // A constant hash: every key in one shard, one probe run, and
        // `get_all` meets other keys' entries before its own.
        #[derive(Default)]
        struct Same;
        impl Hasher for Same {
            fn write(&mut self, _: &[u8]) {}
            fn finish(&self) -> u64 {
                7
            }
        }
        let mut table: TermTable<u32, BuildHasherDefault<Same>> = TermTable::default();
        let keys: Vec<String> = (0..40u32).map(|i| format!("k{i}")).collect();
        for (i, key) in (0u32..).zip(&keys) {
            *table.get_or_default(key) = i;
        }
        table.check();
        let mut seen = 0;
        let got: Vec<Option<u32>> = table
            .get_all(&keys, |_| seen += 1)
            .into_iter()
            .map(|v| v.copied())
            .collect();
        assert_eq!(got, (0..40).map(Some).collect::<Vec<_>>());
        assert_eq!(seen, 40);
        assert_eq!(table.remove("k3"), Some(3));
        assert_eq!(table.get("k3"), None);
        assert_eq!(table.get("k39"), Some(&39));
        table.check();
    }

    #[derive(Debug, Clone)]
    enum Op {
        Add(String, u32),
        Remove(String),
        Snapshot,
    }

    fn op() -> impl Strategy<Value = Op> {
        // Few distinct keys, so adds, updates and removes meet, but enough
        // for several splits.
        let key = "[a-f]{0,3}";
        prop_oneof![
            4 => (key, any::<u32>()).prop_map(|(k, v)| Op::Add(k, v)),
            2 => key.prop_map(Op::Remove),
            1 => Just(Op::Snapshot),
        ]
    }

    /// Runs `ops` on `table` and a HashMap; checks both, and every
    /// snapshot, against each other after every step and at the end.
    fn agrees<S: BuildHasher + Clone>(mut table: TermTable<u32, S>, ops: Vec<Op>) {
        let mut model: HashMap<String, u32> = HashMap::new();
        let mut snapshots = Vec::new();
        let mut probes: Vec<String> = vec![String::new(), "zz".into()];
        for op in ops {
            match op {
                Op::Add(k, v) => {
                    *table.get_or_default(&k) = v;
                    probes.push(k.clone());
                    model.insert(k, v);
                }
                Op::Remove(k) => assert_eq!(table.remove(&k), model.remove(&k)),
                Op::Snapshot => snapshots.push((table.clone(), model.clone())),
            }
            table.check();
            assert_eq!(table.len(), model.len());
        }
        snapshots.push((table, model));
        for (table, model) in &snapshots {
            table.check();
            let want: Vec<Option<u32>> = probes.iter().map(|k| model.get(k).copied()).collect();
            assert_eq!(values(table, &probes), want);
            let one_by_one: Vec<Option<u32>> =
                probes.iter().map(|k| table.get(k).copied()).collect();
            assert_eq!(one_by_one, want);
        }
    }

    proptest! {
        /// The table and each snapshot taken of it agree with a HashMap
        /// updated the same way, with a seeded hash and a crowded one.
        #[test]
        fn agrees_with_a_hash_map(ops in prop::collection::vec(op(), 0..600)) {
            agrees(TermTable::<u32>::new(), ops.clone());
            agrees(CrowdedTable::default(), ops);
        }
    }
}
