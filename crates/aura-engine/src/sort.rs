//! Ordering of result rows: stable multi-key sorts over `cmp_total` (nulls
//! first ascending, last descending), with partial selection when only the
//! first rows of the order are needed.

use std::cmp::Ordering;

use aura_core::ir::{Direction, OrderTerm};
use aura_core::{ModelSchema, Result, Value};

use crate::deadline::Deadline;
use crate::field_access::FieldAccess;

#[derive(Debug, Clone)]
pub(crate) struct SortKey {
    field: FieldAccess,
    desc: bool,
}

/// Resolves order terms against `schema` (unknown field -> query_error).
pub(crate) fn compile(schema: &ModelSchema, terms: &[OrderTerm]) -> Result<Vec<SortKey>> {
    terms
        .iter()
        .map(|t| {
            Ok(SortKey {
                field: FieldAccess::resolve(schema, &t.field, None)?,
                desc: t.direction == Direction::Desc,
            })
        })
        .collect()
}

/// Compares two rows by the sort keys only.
pub(crate) fn compare_rows(keys: &[SortKey], a: &[Value], b: &[Value]) -> Ordering {
    for key in keys {
        let o = key.field.get(a).cmp_total(key.field.get(b));
        let o = if key.desc { o.reverse() } else { o };
        if o != Ordering::Equal {
            return o;
        }
    }
    Ordering::Equal
}

/// Sorts `items` by `cmp` and keeps the first `keep` of them (all when
/// `None`). `cmp` must be a total order (callers tie-break on position or
/// primary key), so partial selection gives the same prefix as a full sort.
pub(crate) fn sort_prefix<T>(
    items: &mut Vec<T>,
    keep: Option<usize>,
    deadline: &Deadline,
    cmp: impl Fn(&T, &T) -> Ordering,
) -> Result<()> {
    match keep {
        Some(0) => items.clear(),
        // Selecting pays off when the kept prefix is small against the input.
        Some(k) if k < items.len() / 2 => {
            items.select_nth_unstable_by(k - 1, &cmp);
            items.truncate(k);
            deadline.check()?;
            items.sort_unstable_by(&cmp);
        }
        _ if deadline.is_set() => merge_sort(items, deadline, &cmp)?,
        _ => items.sort_by(&cmp),
    }
    if let Some(k) = keep {
        items.truncate(k);
    }
    deadline.check()
}

/// Sorted runs, then pairwise merges, polling the deadline as it goes: a
/// comparator cannot abort `sort_by`, and std sorts may panic on a
/// comparator that changes its answers midway.
fn merge_sort<T>(
    items: &mut Vec<T>,
    deadline: &Deadline,
    cmp: &impl Fn(&T, &T) -> Ordering,
) -> Result<()> {
    const RUN: usize = 8192;
    for run in items.chunks_mut(RUN) {
        run.sort_by(cmp);
        deadline.check()?;
    }
    let mut width = RUN;
    while width < items.len() {
        let mut merged = Vec::with_capacity(items.len());
        let mut rest = std::mem::take(items).into_iter();
        loop {
            let left: Vec<T> = rest.by_ref().take(width).collect();
            if left.is_empty() {
                break;
            }
            let right: Vec<T> = rest.by_ref().take(width).collect();
            merge_into(&mut merged, left, right, deadline, cmp)?;
        }
        *items = merged;
        width *= 2;
    }
    Ok(())
}

/// Stable merge: on ties the left run goes first.
fn merge_into<T>(
    out: &mut Vec<T>,
    left: Vec<T>,
    right: Vec<T>,
    deadline: &Deadline,
    cmp: &impl Fn(&T, &T) -> Ordering,
) -> Result<()> {
    let mut left = left.into_iter().peekable();
    let mut right = right.into_iter().peekable();
    loop {
        deadline.step()?;
        let take_left = match (left.peek(), right.peek()) {
            (Some(l), Some(r)) => cmp(l, r) != Ordering::Greater,
            (Some(_), None) => true,
            (None, Some(_)) => false,
            (None, None) => return Ok(()),
        };
        out.extend(if take_left { left.next() } else { right.next() });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_core::{FieldDef, FieldKind};

    fn schema() -> ModelSchema {
        ModelSchema {
            name: "M".into(),
            primary_key: None,
            fields: vec![
                FieldDef::new("id", FieldKind::Int),
                FieldDef::new("n", FieldKind::Int).nullable(),
            ],
            relationships: vec![],
        }
    }

    fn term(field: &str, direction: Direction) -> OrderTerm {
        OrderTerm {
            field: field.into(),
            direction,
        }
    }

    fn sorted(direction: Direction, keep: Option<usize>) -> Vec<i64> {
        let keys = compile(&schema(), &[term("n", direction)]).unwrap();
        let data = [
            (1, Some(2)),
            (2, None),
            (3, Some(1)),
            (4, Some(2)),
            (5, None),
        ];
        let mut rows: Vec<(usize, Vec<Value>)> = data
            .iter()
            .enumerate()
            .map(|(i, (id, n))| (i, vec![Value::Int(*id), n.map_or(Value::Null, Value::Int)]))
            .collect();
        let d = Deadline::none();
        sort_prefix(&mut rows, keep, &d, |a, b| {
            compare_rows(&keys, &a.1, &b.1).then(a.0.cmp(&b.0))
        })
        .unwrap();
        rows.iter()
            .map(|(_, r)| match r[0] {
                Value::Int(i) => i,
                _ => 0,
            })
            .collect()
    }

    #[test]
    fn nulls_first_ascending_last_descending_and_stable() {
        assert_eq!(sorted(Direction::Asc, None), vec![2, 5, 3, 1, 4]);
        assert_eq!(sorted(Direction::Desc, None), vec![1, 4, 3, 2, 5]);
    }

    #[test]
    fn partial_selection_matches_full_sort() {
        for k in 0..=5 {
            let full = sorted(Direction::Desc, None);
            assert_eq!(sorted(Direction::Desc, Some(k)), full[..k].to_vec());
        }
    }

    #[test]
    fn merge_sort_with_deadline_is_stable() {
        let d = Deadline::new(Some(60_000));
        let mut items: Vec<(u32, usize)> =
            (0..50_000).map(|i| ((i * 7919 % 13) as u32, i)).collect();
        let mut expected = items.clone();
        expected.sort_by_key(|x| x.0);
        sort_prefix(&mut items, None, &d, |a, b| a.0.cmp(&b.0)).unwrap();
        assert_eq!(items, expected);
    }

    #[test]
    fn expired_deadline_fails_the_sort() {
        let d = Deadline::new(Some(0));
        let mut items: Vec<u32> = (0..100_000).rev().collect();
        let err = sort_prefix(&mut items, None, &d, u32::cmp).unwrap_err();
        assert_eq!(err.code, aura_core::ErrorCode::Timeout);
    }

    #[test]
    fn unknown_sort_field() {
        let err = compile(&schema(), &[term("zz", Direction::Asc)]).unwrap_err();
        assert_eq!(err.message, "M has no field 'zz'");
    }
}
