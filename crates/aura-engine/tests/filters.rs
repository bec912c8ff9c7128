//! Filter operators, document paths, sorting and windows (API.md §4.1-4.2).

mod common;

use aura_engine::aura_core::ir::{CompareOp as Op, Expr, Select};
use aura_engine::aura_core::{ErrorCode, FieldKind, Value};
use aura_engine::Engine;
use common::*;
use serde_json::json;

fn dataset() -> Engine {
    let engine = Engine::new();
    engine.create_table(items_schema()).unwrap();
    let doc = |j: serde_json::Value| Value::from_json_untyped(&j).unwrap();
    let list = |items: &[&str]| Value::List(items.iter().map(|t| s(t)).collect());
    insert_all(
        &engine,
        "Item",
        vec![
            row(vec![
                int(1),
                s("apple"),
                Value::Float(1.0),
                list(&["a", "b"]),
                doc(json!({"a": {"b": 3}, "k": "x"})),
            ]),
            row(vec![
                int(2),
                s("banana"),
                Value::Float(2.5),
                list(&["b"]),
                doc(json!({"a": 1})),
            ]),
            row(vec![int(3), null(), null(), null(), null()]),
            row(vec![
                int(4),
                s("Apple pie"),
                Value::Float(10.0),
                list(&[]),
                doc(json!({"a": {"b": "3"}})),
            ]),
            row(vec![
                int(5),
                s("cherry_tart"),
                Value::Float(-1.0),
                list(&["c"]),
                doc(json!({})),
            ]),
        ],
    );
    engine
}

fn matching(engine: &Engine, filter: Expr) -> Vec<i64> {
    select_ids(engine, None, &query("Item", vec![filter]))
}

fn op(o: Op, field: &str, value: serde_json::Value) -> Expr {
    cmp(o, "Item", field, value)
}

#[test]
fn equality_is_python_like_and_null_aware() {
    let e = dataset();
    assert_eq!(matching(&e, op(Op::Eq, "name", json!("apple"))), vec![1]);
    assert_eq!(matching(&e, op(Op::Eq, "n", json!(1))), vec![1], "1 == 1.0");
    assert_eq!(matching(&e, op(Op::Eq, "name", json!(null))), vec![3]);
    assert_eq!(
        matching(&e, op(Op::Ne, "name", json!("apple"))),
        vec![2, 3, 4, 5],
        "!= matches nulls"
    );
    assert_eq!(
        matching(&e, op(Op::Ne, "name", json!(null))),
        vec![1, 2, 4, 5]
    );
}

#[test]
fn ranges_never_match_null() {
    let e = dataset();
    assert_eq!(matching(&e, op(Op::Lt, "n", json!(2.5))), vec![1, 5]);
    assert_eq!(matching(&e, op(Op::Le, "n", json!(2.5))), vec![1, 2, 5]);
    assert_eq!(matching(&e, op(Op::Gt, "n", json!(1))), vec![2, 4]);
    assert_eq!(matching(&e, op(Op::Ge, "n", json!(10))), vec![4]);
    assert_eq!(
        matching(&e, op(Op::Lt, "name", json!("b"))),
        vec![1, 4],
        "strings compare by code point"
    );
}

#[test]
fn membership() {
    let e = dataset();
    assert_eq!(
        matching(&e, op(Op::In, "name", json!(["apple", "banana"]))),
        vec![1, 2]
    );
    assert_eq!(
        matching(&e, op(Op::NotIn, "name", json!(["apple", "banana"]))),
        vec![3, 4, 5]
    );
    assert_eq!(
        matching(&e, op(Op::In, "name", json!([]))),
        Vec::<i64>::new()
    );
    assert_eq!(
        matching(&e, op(Op::NotIn, "name", json!([]))),
        vec![1, 2, 3, 4, 5]
    );
    assert_eq!(matching(&e, op(Op::In, "name", json!([null]))), vec![3]);
}

#[test]
fn string_operators_are_case_sensitive() {
    let e = dataset();
    assert_eq!(
        matching(&e, op(Op::Contains, "name", json!("pple"))),
        vec![1, 4]
    );
    assert_eq!(
        matching(&e, op(Op::Contains, "name", json!("APP"))),
        Vec::<i64>::new()
    );
    assert_eq!(
        matching(&e, op(Op::Startswith, "name", json!("Apple"))),
        vec![4]
    );
    assert_eq!(
        matching(&e, op(Op::Endswith, "name", json!("tart"))),
        vec![5]
    );
    assert_eq!(
        matching(&e, op(Op::Like, "name", json!("%pp%"))),
        vec![1, 4]
    );
    assert_eq!(matching(&e, op(Op::Like, "name", json!("_pple"))), vec![1]);
    assert_eq!(matching(&e, op(Op::Like, "name", json!("A%e"))), vec![4]);
    assert_eq!(matching(&e, op(Op::Like, "name", json!("a%"))), vec![1]);
    assert_eq!(
        matching(&e, op(Op::Like, "name", json!("cherry_tart"))),
        vec![5]
    );
    assert_eq!(
        matching(&e, op(Op::Like, "n", json!("%"))),
        Vec::<i64>::new(),
        "non-strings never match"
    );
}

#[test]
fn contains_on_lists_is_membership() {
    let e = dataset();
    assert_eq!(
        matching(&e, op(Op::Contains, "tags", json!("b"))),
        vec![1, 2]
    );
    assert_eq!(
        matching(&e, op(Op::Contains, "tags", json!("z"))),
        Vec::<i64>::new()
    );
}

#[test]
fn null_tests() {
    let e = dataset();
    assert_eq!(matching(&e, op(Op::IsNull, "name", json!(null))), vec![3]);
    assert_eq!(
        matching(&e, op(Op::IsNotNull, "name", json!(null))),
        vec![1, 2, 4, 5]
    );
    assert_eq!(
        matching(&e, op(Op::Exists, "tags", json!(null))),
        vec![1, 2, 4, 5]
    );
}

#[test]
fn document_paths() {
    let e = dataset();
    assert_eq!(
        matching(&e, path_cmp(Op::Eq, "Item", "meta", &["a", "b"], json!(3))),
        vec![1]
    );
    assert_eq!(
        matching(
            &e,
            path_cmp(Op::Eq, "Item", "meta", &["a", "b"], json!("3"))
        ),
        vec![4]
    );
    assert_eq!(
        matching(
            &e,
            path_cmp(Op::IsNull, "Item", "meta", &["a", "b"], json!(null))
        ),
        vec![2, 3, 5],
        "a non-dict along the path is null"
    );
    assert_eq!(
        matching(&e, op(Op::Eq, "meta.k", json!("x"))),
        vec![1],
        "dotted names are paths"
    );
}

#[test]
fn boolean_combinations() {
    let e = dataset();
    let apple = op(Op::Eq, "name", json!("apple"));
    let big = op(Op::Gt, "n", json!(5));
    assert_eq!(
        matching(&e, Expr::or(vec![apple.clone(), big.clone()])),
        vec![1, 4]
    );
    assert_eq!(
        matching(&e, Expr::and(vec![apple.clone(), big])),
        Vec::<i64>::new()
    );
    assert_eq!(matching(&e, Expr::negate(apple)), vec![2, 3, 4, 5]);
    let q = query(
        "Item",
        vec![op(Op::Gt, "n", json!(0)), op(Op::Lt, "n", json!(5))],
    );
    assert_eq!(
        select_ids(&e, None, &q),
        vec![1, 2],
        "top-level filters are AND-ed"
    );
}

#[test]
fn sorting_puts_nulls_first_ascending_and_last_descending() {
    let e = dataset();
    let sorted = |sort| Select {
        sort,
        ..Select::new("Item")
    };
    assert_eq!(
        select_ids(&e, None, &sorted(vec![asc("n")])),
        vec![3, 5, 1, 2, 4]
    );
    assert_eq!(
        select_ids(&e, None, &sorted(vec![desc("n")])),
        vec![4, 2, 1, 5, 3]
    );
    assert_eq!(
        select_ids(&e, None, &sorted(vec![desc("name")])),
        vec![5, 2, 1, 4, 3]
    );
    assert_eq!(
        select_ids(&e, None, &sorted(vec![desc("id")])),
        vec![5, 4, 3, 2, 1]
    );
}

#[test]
fn multi_key_sort_is_stable() {
    let e = Engine::new();
    e.create_table(schema(
        "P",
        Some("id"),
        vec![
            field("id", FieldKind::Int),
            field("a", FieldKind::Int),
            field("b", FieldKind::Str),
        ],
    ))
    .unwrap();
    let data = [
        (1, 2, "x"),
        (2, 1, "y"),
        (3, 2, "a"),
        (4, 1, "y"),
        (5, 2, "x"),
    ];
    insert_all(
        &e,
        "P",
        data.iter()
            .map(|(i, a, b)| row(vec![int(*i), int(*a), s(b)]))
            .collect(),
    );
    let q = Select {
        sort: vec![asc("a"), desc("b")],
        ..Select::new("P")
    };
    assert_eq!(select_ids(&e, None, &q), vec![2, 4, 1, 5, 3]);
}

#[test]
fn windows() {
    let e = dataset();
    let window = |sort, offset, limit| Select {
        sort,
        offset,
        limit,
        ..Select::new("Item")
    };
    assert_eq!(
        select_ids(&e, None, &window(vec![], Some(1), Some(2))),
        vec![2, 3]
    );
    assert_eq!(
        select_ids(&e, None, &window(vec![], Some(4), None)),
        vec![5]
    );
    assert_eq!(
        select_ids(&e, None, &window(vec![], None, Some(0))),
        Vec::<i64>::new()
    );
    assert_eq!(
        select_ids(&e, None, &window(vec![desc("n")], Some(1), Some(2))),
        vec![2, 1]
    );
    assert_eq!(
        select_ids(&e, None, &window(vec![desc("n")], Some(10), Some(2))),
        Vec::<i64>::new()
    );
}

#[test]
fn count_and_exists() {
    let e = dataset();
    assert_eq!(e.count(None, &filtered("Item", vec![])).unwrap(), 5);
    assert_eq!(
        e.count(
            None,
            &filtered("Item", vec![op(Op::IsNull, "n", json!(null))])
        )
        .unwrap(),
        1
    );
    assert!(e
        .exists(
            None,
            &filtered("Item", vec![op(Op::Eq, "name", json!("banana"))])
        )
        .unwrap());
    assert!(!e
        .exists(
            None,
            &filtered("Item", vec![op(Op::Eq, "name", json!("kiwi"))])
        )
        .unwrap());
}

#[test]
fn query_errors() {
    let e = dataset();
    let err = e.select(None, &Select::new("Nope")).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::SchemaError, "Unknown model 'Nope'")
    );
    let projected = Select {
        projection: vec!["name".into(), "zzz".into()],
        ..Select::new("Item")
    };
    let err = e.select(None, &projected).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::QueryError, "Item has no field 'zzz'")
    );
    let err = e
        .select(None, &query("Item", vec![op(Op::Eq, "id", json!("x"))]))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::ValidationError);
    let sorted = Select {
        sort: vec![asc("nope")],
        ..Select::new("Item")
    };
    assert_eq!(
        e.select(None, &sorted).unwrap_err().message,
        "Item has no field 'nope'"
    );
    let ok = Select {
        projection: vec!["name".into(), "meta.a".into()],
        ..Select::new("Item")
    };
    assert_eq!(
        e.select(None, &ok).unwrap().rows.len(),
        5,
        "projection returns full rows"
    );
}

#[test]
fn aliased_fields_answer_to_both_names() {
    let e = Engine::new();
    e.create_table(schema(
        "A",
        Some("id"),
        vec![
            field("id", FieldKind::Int),
            field("email", FieldKind::Str).alias("EM"),
        ],
    ))
    .unwrap();
    insert_all(
        &e,
        "A",
        vec![row(vec![int(1), s("x")]), row(vec![int(2), s("y")])],
    );
    assert_eq!(
        select_ids(&e, None, &query("A", vec![eq("A", "EM", json!("y"))])),
        vec![2]
    );
    assert_eq!(
        select_ids(&e, None, &query("A", vec![eq("A", "email", json!("y"))])),
        vec![2]
    );
}
