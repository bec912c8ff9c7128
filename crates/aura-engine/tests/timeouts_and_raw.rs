//! Per-query deadlines and the raw statement.

mod common;

use aura_engine::aura_core::ir::{CompareOp as Op, Filtered, Select};
use aura_engine::aura_core::{ErrorCode, FieldKind};
use aura_engine::Engine;
use common::*;
use serde_json::json;

fn big() -> Engine {
    let e = Engine::new();
    e.create_table(schema(
        "T",
        Some("id"),
        vec![field("id", FieldKind::Int), field("text", FieldKind::Str)],
    ))
    .unwrap();
    let rows = (0..300_000)
        .map(|i| row(vec![int(i), s(&format!("row number {i} of many"))]))
        .collect();
    insert_all(&e, "T", rows);
    e
}

#[test]
fn expired_queries_fail_with_timeout_and_change_nothing() {
    let e = big();
    let slow = cmp(Op::Like, "T", "text", json!("%x%y%z%"));
    let q = Select {
        filters: vec![slow.clone()],
        timeout_ms: Some(1),
        ..Select::new("T")
    };
    let err = e.select(None, &q).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::Timeout, "query exceeded its timeout of 1 ms")
    );
    let sorted = Select {
        sort: vec![desc("text")],
        timeout_ms: Some(1),
        ..Select::new("T")
    };
    assert_eq!(
        e.select(None, &sorted).unwrap_err().code,
        ErrorCode::Timeout
    );
    let counted = Filtered {
        timeout_ms: Some(1),
        ..filtered("T", vec![slow.clone()])
    };
    assert_eq!(
        e.count(None, &counted).unwrap_err().code,
        ErrorCode::Timeout
    );
    let deleted = Filtered {
        timeout_ms: Some(1),
        ..filtered("T", vec![cmp(Op::Like, "T", "text", json!("%o%n%f%y"))])
    };
    assert_eq!(
        e.delete(None, &deleted).unwrap_err().code,
        ErrorCode::Timeout
    );
    assert_eq!(
        e.row_count("T"),
        Some(300_000),
        "no state change on timeout"
    );
    let everything = filtered("T", vec![cmp(Op::Like, "T", "text", json!("%o%n%f%y"))]);
    assert_eq!(
        e.count(None, &everything).unwrap(),
        300_000,
        "the timed-out delete matched every row"
    );
    let generous = Select {
        timeout_ms: Some(60_000),
        limit: Some(3),
        ..Select::new("T")
    };
    assert_eq!(select_ids(&e, None, &generous), vec![0, 1, 2]);
}

#[test]
fn raw_select_statements() {
    let e = Engine::new();
    e.create_table(schema(
        "User",
        Some("id"),
        vec![field("id", FieldKind::Int), field("email", FieldKind::Str)],
    ))
    .unwrap();
    insert_all(
        &e,
        "User",
        vec![
            row(vec![int(1), s("a@x")]),
            row(vec![int(2), s("1; DROP TABLE User")]),
        ],
    );
    let (model, rows) = e.raw(None, "select * from User", &json!({})).unwrap();
    assert_eq!((model.as_str(), row_ids(&rows)), ("User", vec![1, 2]));
    let (_, rows) = e
        .raw(
            None,
            "SELECT * FROM User WHERE email = $e",
            &json!({"e": "1; DROP TABLE User"}),
        )
        .unwrap();
    assert_eq!(
        row_ids(&rows),
        vec![2],
        "parameters are bound, never spliced"
    );
    let err = e
        .raw(None, "UPDATE User SET email = 1", &json!({}))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::QueryError);
    let err = e
        .raw(None, "SELECT * FROM User WHERE email = $e", &json!({}))
        .unwrap_err();
    assert_eq!(err.message, "Raw statement parameter '$e' is not bound");
    assert_eq!(
        e.raw(None, "SELECT * FROM Nope", &json!(null))
            .unwrap_err()
            .code,
        ErrorCode::SchemaError
    );
    assert_eq!(
        e.raw(None, "SELECT * FROM User WHERE zz = $e", &json!({"e": 1}))
            .unwrap_err()
            .message,
        "User has no field 'zz'"
    );
}
