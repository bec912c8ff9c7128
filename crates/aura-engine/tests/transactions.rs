//! Snapshot transactions (API.md §6, §16 rows 1-3): read-your-writes,
//! isolation, first-committer-wins, and write-set-only commits.

mod common;

use std::sync::Arc;
use std::thread;

use aura_engine::aura_core::ir::{CompareOp as Op, Update};
use aura_engine::aura_core::{ErrorCode, FieldKind, Value};
use aura_engine::{Engine, OnConflict};
use common::*;
use serde_json::json;

fn counters(n: i64) -> Engine {
    let e = Engine::new();
    e.create_table(schema(
        "C",
        Some("id"),
        vec![
            field("id", FieldKind::Int),
            field("v", FieldKind::Int),
            field("tag", FieldKind::Str).unique().nullable(),
        ],
    ))
    .unwrap();
    insert_all(
        &e,
        "C",
        (1..=n).map(|i| row(vec![int(i), int(0), null()])).collect(),
    );
    e
}

fn set_v(id: i64, v: i64) -> Update {
    Update {
        model: "C".into(),
        filters: vec![eq("C", "id", json!(id))],
        set: json!({"v": v}).as_object().cloned().unwrap_or_default(),
    }
}

fn value_of(e: &Engine, txn: Option<u64>, id: i64) -> Option<i64> {
    let out = e
        .select(txn, &query("C", vec![eq("C", "id", json!(id))]))
        .unwrap();
    out.rows.first().map(|r| as_int(&r.row[1]))
}

fn count(e: &Engine, txn: Option<u64>) -> u64 {
    e.count(txn, &filtered("C", vec![])).unwrap()
}

#[test]
fn read_your_writes_and_isolation() {
    let e = counters(2);
    let t = e.begin();
    e.insert(
        Some(t),
        "C",
        vec![row(vec![int(3), int(0), null()])],
        OnConflict::Error,
    )
    .unwrap();
    e.update(Some(t), &set_v(1, 5)).unwrap();
    e.delete(Some(t), &filtered("C", vec![eq("C", "id", json!(2))]))
        .unwrap();
    assert_eq!(count(&e, Some(t)), 2);
    assert_eq!(value_of(&e, Some(t), 1), Some(5), "reads see own writes");
    assert_eq!(value_of(&e, Some(t), 2), None, "own deletes are invisible");
    assert_eq!(count(&e, None), 2, "others see nothing before commit");
    assert_eq!(value_of(&e, None, 1), Some(0));
    e.commit(t).unwrap();
    assert_eq!(count(&e, None), 2);
    assert_eq!(value_of(&e, None, 1), Some(5));
    assert_eq!(value_of(&e, None, 2), None);
    assert_eq!(value_of(&e, None, 3), Some(0));
}

#[test]
fn snapshot_reads_ignore_later_commits() {
    let e = counters(1);
    let t = e.begin();
    e.update(None, &set_v(1, 9)).unwrap();
    assert_eq!(value_of(&e, Some(t), 1), Some(0));
    assert_eq!(value_of(&e, None, 1), Some(9));
    e.commit(t).unwrap();
}

#[test]
fn rollback_discards() {
    let e = counters(1);
    let t = e.begin();
    e.update(Some(t), &set_v(1, 7)).unwrap();
    e.rollback(t).unwrap();
    assert_eq!(value_of(&e, None, 1), Some(0));
}

#[test]
fn first_committer_wins() {
    let e = counters(1);
    let (a, b) = (e.begin(), e.begin());
    e.update(Some(a), &set_v(1, 1)).unwrap();
    e.update(Some(b), &set_v(1, 2)).unwrap();
    e.commit(a).unwrap();
    let err = e.commit(b).unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    assert_eq!(err.retryable, Some(true));
    assert_eq!(
        err.message,
        "transaction conflict: C was modified by a concurrent transaction; retry it"
    );
    assert_eq!(value_of(&e, None, 1), Some(1), "first write persists");
    assert_eq!(
        e.commit(b).unwrap_err().code,
        ErrorCode::TransactionError,
        "the loser is gone"
    );
}

#[test]
fn autocommit_writes_conflict_with_open_transactions() {
    let e = counters(1);
    let t = e.begin();
    e.update(Some(t), &set_v(1, 1)).unwrap();
    e.update(None, &set_v(1, 2)).unwrap();
    assert_eq!(e.commit(t).unwrap_err().code, ErrorCode::Conflict);
    assert_eq!(value_of(&e, None, 1), Some(2));
}

#[test]
fn disjoint_writes_both_commit() {
    let e = counters(2);
    let (a, b) = (e.begin(), e.begin());
    e.update(Some(a), &set_v(1, 1)).unwrap();
    e.update(Some(b), &set_v(2, 2)).unwrap();
    e.commit(b).unwrap();
    e.commit(a).unwrap();
    assert_eq!(
        (value_of(&e, None, 1), value_of(&e, None, 2)),
        (Some(1), Some(2))
    );
}

#[test]
fn commit_applies_only_the_write_set() {
    let e = counters(1);
    let t = e.begin();
    e.update(Some(t), &set_v(1, 1)).unwrap();
    e.insert(
        None,
        "C",
        vec![row(vec![int(50), int(0), null()])],
        OnConflict::Error,
    )
    .unwrap();
    e.commit(t).unwrap();
    assert_eq!(
        value_of(&e, None, 50),
        Some(0),
        "a concurrent autocommit insert survives"
    );
    assert_eq!(value_of(&e, None, 1), Some(1));
}

#[test]
fn commit_rechecks_unique_constraints() {
    let e = counters(2);
    let t = e.begin();
    let tag = |id: i64, tag: &str| Update {
        model: "C".into(),
        filters: vec![eq("C", "id", json!(id))],
        set: json!({"tag": tag}).as_object().cloned().unwrap_or_default(),
    };
    e.update(Some(t), &tag(1, "x")).unwrap();
    e.update(None, &tag(2, "x")).unwrap();
    let err = e.commit(t).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::ConstraintViolation, "C.tag must be unique")
    );
    let out = e
        .select(None, &query("C", vec![eq("C", "tag", json!("x"))]))
        .unwrap();
    assert_eq!(ids(&out), vec![2], "nothing of the failed commit applied");
}

#[test]
fn constraint_errors_inside_a_transaction_keep_it_usable() {
    let e = counters(1);
    let t = e.begin();
    let dup = e
        .insert(
            Some(t),
            "C",
            vec![row(vec![int(1), int(0), null()])],
            OnConflict::Error,
        )
        .unwrap_err();
    assert_eq!(dup.code, ErrorCode::ConstraintViolation);
    e.update(Some(t), &set_v(1, 3)).unwrap();
    e.commit(t).unwrap();
    assert_eq!(value_of(&e, None, 1), Some(3));
}

#[test]
fn finished_or_unknown_transactions_are_rejected() {
    let e = counters(1);
    let t = e.begin();
    e.commit(t).unwrap();
    for err in [
        e.select(Some(t), &query("C", vec![])).unwrap_err(),
        e.update(Some(t), &set_v(1, 1)).unwrap_err(),
        e.commit(t).unwrap_err(),
        e.rollback(t).unwrap_err(),
        e.count(Some(999), &filtered("C", vec![])).unwrap_err(),
    ] {
        assert_eq!(err.code, ErrorCode::TransactionError);
    }
    assert_eq!(
        e.commit(t).unwrap_err().message,
        format!("transaction {t} is not active")
    );
    let r = e.begin();
    e.rollback(r).unwrap();
    assert!(!e.is_active(r));
    assert_eq!(
        e.insert(Some(r), "C", vec![], OnConflict::Error)
            .unwrap_err()
            .code,
        ErrorCode::TransactionError
    );
}

#[test]
fn tables_created_after_begin_are_usable_inside() {
    let e = counters(1);
    let t = e.begin();
    e.create_table(schema(
        "Late",
        Some("id"),
        vec![field("id", FieldKind::Int)],
    ))
    .unwrap();
    e.insert(Some(t), "Late", vec![row(vec![int(1)])], OnConflict::Error)
        .unwrap();
    e.commit(t).unwrap();
    assert_eq!(e.row_count("Late"), Some(1));
}

#[test]
fn dropped_tables_make_commits_conflict() {
    let e = counters(1);
    let t = e.begin();
    e.update(Some(t), &set_v(1, 1)).unwrap();
    e.drop_table("C").unwrap();
    assert_eq!(e.commit(t).unwrap_err().code, ErrorCode::Conflict);
}

#[test]
fn concurrent_read_modify_write_loses_no_increment() {
    const THREADS: i64 = 8;
    const PER_THREAD: i64 = 1_000;
    const ROWS: i64 = 4;
    let e = Arc::new(counters(ROWS));
    let handles: Vec<_> = (0..THREADS)
        .map(|t| {
            let e = Arc::clone(&e);
            thread::spawn(move || {
                let mut conflicts = 0u64;
                for i in 0..PER_THREAD {
                    let id = (t + i) % ROWS + 1;
                    loop {
                        let txn = e.begin();
                        let current = value_of(&e, Some(txn), id).unwrap_or(0);
                        e.update(Some(txn), &set_v(id, current + 1)).unwrap();
                        match e.commit(txn) {
                            Ok(()) => break,
                            Err(err) if err.code == ErrorCode::Conflict => conflicts += 1,
                            Err(err) => panic!("{err}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: u64 = handles.into_iter().map(|h| h.join().unwrap()).sum();
    let out = e.select(None, &query("C", vec![])).unwrap();
    let total: i64 = out.rows.iter().map(|r| as_int(&r.row[1])).sum();
    assert_eq!(total, THREADS * PER_THREAD, "{conflicts} conflicts retried");
    let filters = vec![cmp(Op::Gt, "C", "v", json!(0))];
    assert_eq!(e.count(None, &filtered("C", filters)).unwrap(), ROWS as u64);
    assert!(matches!(out.rows[0].row[1], Value::Int(_)));
}
