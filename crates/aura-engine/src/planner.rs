//! Access-path selection: a top-level `eq`/`in`/range conjunct on the primary
//! key or an indexed field becomes point lookups or an index range instead of
//! a scan. Candidates always come back in primary-key order and the whole
//! predicate is re-applied to them, so a plan only has to be a superset.

use std::cmp::Ordering;
use std::collections::HashMap;
use std::ops::Bound;

use aura_core::{Key, Row, Value};
use serde_json::json;

use crate::filter::{Predicate, Test};
use crate::table::Table;

/// How a query reaches its rows; `describe` is what `explain` reports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessPath {
    /// Point lookups on the primary key.
    PrimaryKey {
        field: String,
        keys: usize,
    },
    /// An ordered range of the primary key.
    PrimaryKeyRange {
        field: String,
    },
    /// Point lookups through a unique index.
    UniqueIndex {
        field: String,
        keys: usize,
    },
    /// A secondary (or unique) index: `kind` is "eq", "in" or "range".
    Index {
        field: String,
        kind: &'static str,
    },
    FullScan,
}

impl AccessPath {
    pub fn describe(&self) -> serde_json::Value {
        match self {
            AccessPath::PrimaryKey { field, keys } => {
                json!({"access": "primary_key", "field": field, "lookups": keys})
            }
            AccessPath::PrimaryKeyRange { field } => {
                json!({"access": "primary_key_range", "field": field})
            }
            AccessPath::UniqueIndex { field, keys } => {
                json!({"access": "unique_index", "field": field, "lookups": keys})
            }
            AccessPath::Index { field, kind } => {
                json!({"access": "index", "field": field, "kind": kind})
            }
            AccessPath::FullScan => json!({"access": "full_scan"}),
        }
    }
}

/// A key range with both ends optional.
#[derive(Debug, Clone)]
pub(crate) struct KeyRange {
    lower: Bound<Key>,
    upper: Bound<Key>,
}

impl KeyRange {
    fn unbounded() -> Self {
        KeyRange {
            lower: Bound::Unbounded,
            upper: Bound::Unbounded,
        }
    }

    /// Narrows the range by one comparison; false if `test` is not a range.
    fn narrow(&mut self, test: &Test) -> bool {
        let (bound, is_lower) = match test {
            Test::Gt(v) => (Bound::Excluded(Key(v.clone())), true),
            Test::Ge(v) => (Bound::Included(Key(v.clone())), true),
            Test::Lt(v) => (Bound::Excluded(Key(v.clone())), false),
            Test::Le(v) => (Bound::Included(Key(v.clone())), false),
            _ => return false,
        };
        if is_lower {
            self.lower = tighter(
                std::mem::replace(&mut self.lower, Bound::Unbounded),
                bound,
                Ordering::Greater,
            );
        } else {
            self.upper = tighter(
                std::mem::replace(&mut self.upper, Bound::Unbounded),
                bound,
                Ordering::Less,
            );
        }
        true
    }

    /// Nulls never satisfy a comparison, and they sort first: skip them.
    fn skip_nulls(&mut self) {
        if matches!(self.lower, Bound::Unbounded) {
            self.lower = Bound::Excluded(Key(Value::Null));
        }
    }

    fn is_empty(&self) -> bool {
        match (&self.lower, &self.upper) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => {
                a >= b
            }
            _ => false,
        }
    }

    fn bounds(&self) -> (Bound<&Key>, Bound<&Key>) {
        (self.lower.as_ref(), self.upper.as_ref())
    }
}

/// The stricter of two bounds; `wins` is the ordering that makes `b` stricter.
fn tighter(a: Bound<Key>, b: Bound<Key>, wins: Ordering) -> Bound<Key> {
    let (av, bv) = match (&a, &b) {
        (Bound::Unbounded, _) => return b,
        (_, Bound::Unbounded) => return a,
        (Bound::Included(x) | Bound::Excluded(x), Bound::Included(y) | Bound::Excluded(y)) => {
            (x, y)
        }
    };
    match bv.cmp(av) {
        Ordering::Equal if matches!(b, Bound::Excluded(_)) => b,
        Ordering::Equal => a,
        o if o == wins => b,
        _ => a,
    }
}

/// A chosen access path with its bound keys.
#[derive(Debug, Clone)]
pub(crate) enum Plan {
    PkKeys(Vec<Key>),
    PkRange(KeyRange),
    UniqueKeys {
        slot: usize,
        keys: Vec<Key>,
    },
    UniqueRange {
        slot: usize,
        range: KeyRange,
    },
    IndexKeys {
        slot: usize,
        keys: Vec<Key>,
        kind: &'static str,
    },
    IndexRange {
        slot: usize,
        range: KeyRange,
    },
    Scan,
}

impl Plan {
    /// Lower is better: point lookups beat ranges beat scans.
    fn cost_rank(&self) -> u8 {
        match self {
            Plan::PkKeys(_) => 0,
            Plan::UniqueKeys { .. } => 1,
            Plan::IndexKeys { .. } => 2,
            Plan::PkRange(_) => 3,
            Plan::UniqueRange { .. } => 4,
            Plan::IndexRange { .. } => 5,
            Plan::Scan => 6,
        }
    }

    pub fn access_path(&self, table: &Table) -> AccessPath {
        let name = |pos: usize| table.schema.fields[pos].storage.clone();
        let pk_name = || {
            table
                .pk
                .map_or_else(|| table.schema.pk_name().to_owned(), name)
        };
        match self {
            Plan::PkKeys(keys) => AccessPath::PrimaryKey {
                field: pk_name(),
                keys: keys.len(),
            },
            Plan::PkRange(_) => AccessPath::PrimaryKeyRange { field: pk_name() },
            Plan::UniqueKeys { slot, keys } => AccessPath::UniqueIndex {
                field: name(table.uniques[*slot].pos),
                keys: keys.len(),
            },
            Plan::UniqueRange { slot, .. } => AccessPath::Index {
                field: name(table.uniques[*slot].pos),
                kind: "range",
            },
            Plan::IndexKeys { slot, kind, .. } => AccessPath::Index {
                field: name(table.indexes[*slot].pos),
                kind,
            },
            Plan::IndexRange { slot, .. } => AccessPath::Index {
                field: name(table.indexes[*slot].pos),
                kind: "range",
            },
            Plan::Scan => AccessPath::FullScan,
        }
    }
}

/// Values an `eq`/`in`/`is_null` test can look up, with the plan kind.
fn lookup_values(test: &Test) -> Option<(Vec<&Value>, &'static str)> {
    match test {
        Test::Eq(v) => Some((vec![v], "eq")),
        Test::In(set) => Some((set.values.iter().collect(), "in")),
        Test::IsNull => Some((vec![&Value::Null], "eq")),
        _ => None,
    }
}

fn sorted_keys<'v>(values: impl Iterator<Item = &'v Value>) -> Vec<Key> {
    let mut keys: Vec<Key> = values.cloned().map(Key).collect();
    keys.sort();
    keys.dedup();
    keys
}

/// Point-lookup plan for one conjunct on field `pos`.
fn keys_plan(table: &Table, pos: usize, test: &Test) -> Option<Plan> {
    let (values, kind) = lookup_values(test)?;
    if table.pk == Some(pos) {
        // A primary key is never null, so null lookups simply find nothing.
        return Some(Plan::PkKeys(sorted_keys(
            values.into_iter().filter(|v| !v.is_null()),
        )));
    }
    if let Some(slot) = table.uniques.iter().position(|u| u.pos == pos) {
        // Nulls are not in unique indexes: a null lookup must scan.
        if values.iter().all(|v| !v.is_null()) {
            let keys = sorted_keys(values.into_iter());
            return Some(Plan::UniqueKeys { slot, keys });
        }
        return None;
    }
    let slot = table.indexes.iter().position(|ix| ix.pos == pos)?;
    Some(Plan::IndexKeys {
        slot,
        keys: sorted_keys(values.into_iter()),
        kind,
    })
}

fn range_plan(table: &Table, pos: usize, mut range: KeyRange) -> Option<Plan> {
    range.skip_nulls();
    if table.pk == Some(pos) {
        return Some(Plan::PkRange(range));
    }
    if let Some(slot) = table.uniques.iter().position(|u| u.pos == pos) {
        return Some(Plan::UniqueRange { slot, range });
    }
    let slot = table.indexes.iter().position(|ix| ix.pos == pos)?;
    Some(Plan::IndexRange { slot, range })
}

fn is_rangeable(test: &Test) -> bool {
    match test {
        Test::Lt(v) | Test::Le(v) | Test::Gt(v) | Test::Ge(v) => match v {
            Value::Null => false,
            Value::Float(f) => !f.is_nan(),
            _ => true,
        },
        _ => false,
    }
}

/// Picks the cheapest access path the predicate's conjuncts allow.
pub(crate) fn plan(table: &Table, predicate: &Predicate) -> Plan {
    let mut best = Plan::Scan;
    let mut ranges: Vec<(usize, KeyRange)> = Vec::new();
    let mut range_slot: HashMap<usize, usize> = HashMap::new();
    for conjunct in predicate.conjuncts() {
        let Predicate::Test { field, test } = conjunct else {
            continue;
        };
        if field.path.is_some() {
            continue;
        }
        if let Some(candidate) = keys_plan(table, field.pos, test) {
            if candidate.cost_rank() < best.cost_rank() {
                best = candidate;
            }
        } else if is_rangeable(test) {
            let slot = *range_slot.entry(field.pos).or_insert_with(|| {
                ranges.push((field.pos, KeyRange::unbounded()));
                ranges.len() - 1
            });
            ranges[slot].1.narrow(test);
        }
    }
    for (pos, range) in ranges {
        if let Some(candidate) = range_plan(table, pos, range) {
            if candidate.cost_rank() < best.cost_rank() {
                best = candidate;
            }
        }
    }
    best
}

type RowIter<'t> = Box<dyn Iterator<Item = &'t Row> + 't>;

/// Rows reached by `plan`, in primary-key order (before filtering).
pub(crate) fn candidates(table: &Table, plan: Plan) -> RowIter<'_> {
    match plan {
        Plan::Scan => Box::new(table.rows.values()),
        Plan::PkKeys(keys) => Box::new(keys.into_iter().filter_map(move |k| table.rows.get(&k))),
        Plan::PkRange(range) if range.is_empty() => Box::new(std::iter::empty()),
        Plan::PkRange(range) => Box::new(
            table
                .rows
                .range::<_, Key>(range.bounds())
                .map(|(_, row)| row),
        ),
        Plan::UniqueKeys { slot, keys } => {
            let map = &table.uniques[slot].map;
            by_pk(
                table,
                keys.iter().filter_map(|k| map.get(k)).cloned().collect(),
            )
        }
        Plan::UniqueRange { range, .. } if range.is_empty() => Box::new(std::iter::empty()),
        Plan::UniqueRange { slot, range } => {
            let map = &table.uniques[slot].map;
            by_pk(
                table,
                map.range::<_, Key>(range.bounds())
                    .map(|(_, pk)| pk.clone())
                    .collect(),
            )
        }
        Plan::IndexKeys { slot, keys, .. } => {
            let ix = &table.indexes[slot];
            by_pk(
                table,
                keys.iter().flat_map(|k| ix.lookup(k)).cloned().collect(),
            )
        }
        Plan::IndexRange { range, .. } if range.is_empty() => Box::new(std::iter::empty()),
        Plan::IndexRange { slot, range } => {
            let ix = &table.indexes[slot];
            by_pk(
                table,
                ix.range(&range.lower, &range.upper).cloned().collect(),
            )
        }
    }
}

fn by_pk(table: &Table, mut pks: Vec<Key>) -> RowIter<'_> {
    pks.sort();
    pks.dedup();
    Box::new(pks.into_iter().filter_map(move |k| table.rows.get(&k)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn k(i: i64) -> Key {
        Key(Value::Int(i))
    }

    #[test]
    fn ranges_tighten_and_detect_emptiness() {
        let mut r = KeyRange::unbounded();
        r.narrow(&Test::Gt(Value::Int(1)));
        r.narrow(&Test::Ge(Value::Int(3)));
        r.narrow(&Test::Lt(Value::Int(10)));
        r.narrow(&Test::Le(Value::Int(10)));
        assert!(matches!(&r.lower, Bound::Included(x) if *x == k(3)));
        assert!(matches!(&r.upper, Bound::Excluded(x) if *x == k(10)));
        assert!(!r.is_empty());
        r.narrow(&Test::Lt(Value::Int(3)));
        assert!(r.is_empty());
        let mut same = KeyRange::unbounded();
        same.narrow(&Test::Ge(Value::Int(3)));
        same.narrow(&Test::Le(Value::Int(3)));
        assert!(!same.is_empty());
        same.narrow(&Test::Gt(Value::Int(3)));
        assert!(same.is_empty());
    }

    #[test]
    fn describe_shapes() {
        let p = AccessPath::PrimaryKey {
            field: "id".into(),
            keys: 1,
        };
        assert_eq!(
            serde_json::to_string(&p.describe()).ok().as_deref(),
            Some(r#"{"access":"primary_key","field":"id","lookups":1}"#)
        );
        assert_eq!(
            AccessPath::FullScan.describe(),
            json!({"access": "full_scan"})
        );
    }
}
