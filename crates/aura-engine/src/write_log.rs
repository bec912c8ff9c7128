//! The primary keys a write statement touched, per table: a transaction's
//! write set, and the keys whose commit timestamps conflict detection needs.

use std::collections::{BTreeSet, HashMap};

use aura_core::Key;

#[derive(Debug, Default, Clone)]
pub(crate) struct WriteLog {
    enabled: bool,
    keys: HashMap<String, BTreeSet<Key>>,
}

impl WriteLog {
    /// A log that records only when `enabled` (autocommit writes with no
    /// open transaction have nobody to conflict with).
    pub fn new(enabled: bool) -> Self {
        WriteLog {
            enabled,
            keys: HashMap::new(),
        }
    }

    pub fn record(&mut self, model: &str, key: &Key) {
        if !self.enabled {
            return;
        }
        match self.keys.get_mut(model) {
            Some(set) => {
                set.insert(key.clone());
            }
            None => {
                self.keys
                    .insert(model.to_owned(), BTreeSet::from([key.clone()]));
            }
        }
    }

    pub fn merge(&mut self, other: WriteLog) {
        for (model, keys) in other.keys {
            self.keys.entry(model).or_default().extend(keys);
        }
    }

    pub fn tables(&self) -> impl Iterator<Item = (&String, &BTreeSet<Key>)> {
        self.keys.iter()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
