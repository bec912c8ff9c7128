//! The planner picks point lookups and index ranges, and results through
//! every path equal a full scan's.

mod common;

use aura_engine::aura_core::ir::{CompareOp as Op, Expr, Select};
use aura_engine::aura_core::FieldKind;
use aura_engine::{AccessPath, Engine};
use common::*;
use serde_json::json;

/// `U(id pk, email unique, age index, city)` with 100 rows.
fn users() -> Engine {
    let e = Engine::new();
    e.create_table(schema(
        "U",
        Some("id"),
        vec![
            field("id", FieldKind::Int),
            field("email", FieldKind::Str).unique().nullable(),
            field("age", FieldKind::Int).indexed().nullable(),
            field("city", FieldKind::Str),
        ],
    ))
    .unwrap();
    let rows = (1..=100)
        .map(|i| {
            let email = if i % 10 == 0 {
                null()
            } else {
                s(&format!("u{i}@x"))
            };
            let age = if i % 7 == 0 { null() } else { int(i % 30) };
            row(vec![
                int(i),
                email,
                age,
                s(["paris", "oslo"][(i % 2) as usize]),
            ])
        })
        .collect();
    insert_all(&e, "U", rows);
    e
}

fn op(o: Op, field: &str, value: serde_json::Value) -> Expr {
    cmp(o, "U", field, value)
}

/// Runs the query, checks its path, and compares with a scan-only twin.
fn check(e: &Engine, filters: Vec<Expr>, expected: AccessPath) -> Vec<i64> {
    let q = query("U", filters.clone());
    let out = e.select(None, &q).unwrap();
    assert_eq!(out.access_path, expected, "{filters:?}");
    assert_eq!(e.plan(&q).unwrap(), expected);
    // Wrapping in `or` hides the conjuncts from the planner: a scan.
    let scanned = e
        .select(None, &query("U", vec![Expr::or(vec![Expr::and(filters)])]))
        .unwrap();
    assert_eq!(scanned.access_path, AccessPath::FullScan);
    assert_eq!(ids(&out), ids(&scanned));
    ids(&out)
}

fn path(field: &str, kind: &'static str) -> AccessPath {
    AccessPath::Index {
        field: field.into(),
        kind,
    }
}

#[test]
fn primary_key_lookups() {
    let e = users();
    let pk = |keys| AccessPath::PrimaryKey {
        field: "id".into(),
        keys,
    };
    assert_eq!(
        check(&e, vec![op(Op::Eq, "id", json!(42))], pk(1)),
        vec![42]
    );
    assert_eq!(
        check(&e, vec![op(Op::Eq, "id", json!(42.0))], pk(1)),
        vec![42]
    );
    assert_eq!(
        check(&e, vec![op(Op::In, "id", json!([9, 3, 9, 500]))], pk(3)),
        vec![3, 9],
        "lookups count distinct keys"
    );
    assert_eq!(
        check(
            &e,
            vec![
                op(Op::Eq, "id", json!(4)),
                op(Op::Eq, "city", json!("oslo"))
            ],
            pk(1)
        ),
        Vec::<i64>::new()
    );
    assert_eq!(
        check(&e, vec![op(Op::Eq, "id", json!(null))], pk(0)),
        Vec::<i64>::new()
    );
}

#[test]
fn primary_key_ranges() {
    let e = users();
    let range = AccessPath::PrimaryKeyRange { field: "id".into() };
    assert_eq!(
        check(&e, vec![op(Op::Gt, "id", json!(97))], range.clone()),
        vec![98, 99, 100]
    );
    assert_eq!(
        check(
            &e,
            vec![op(Op::Ge, "id", json!(10)), op(Op::Lt, "id", json!(13))],
            range.clone()
        ),
        vec![10, 11, 12]
    );
    assert_eq!(
        check(
            &e,
            vec![op(Op::Gt, "id", json!(10)), op(Op::Lt, "id", json!(5))],
            range
        ),
        Vec::<i64>::new()
    );
}

#[test]
fn unique_index_lookups() {
    let e = users();
    let unique = |keys| AccessPath::UniqueIndex {
        field: "email".into(),
        keys,
    };
    assert_eq!(
        check(&e, vec![op(Op::Eq, "email", json!("u5@x"))], unique(1)),
        vec![5]
    );
    assert_eq!(
        check(
            &e,
            vec![op(Op::In, "email", json!(["u7@x", "u2@x", "nope"]))],
            unique(3)
        ),
        vec![2, 7]
    );
    // Nulls are not in the unique index, so `== None` must scan.
    let nulls = check(
        &e,
        vec![op(Op::Eq, "email", json!(null))],
        AccessPath::FullScan,
    );
    assert_eq!(nulls, (1..=10).map(|i| i * 10).collect::<Vec<_>>());
    assert_eq!(
        check(
            &e,
            vec![op(Op::Ge, "email", json!("u98"))],
            path("email", "range")
        ),
        vec![9, 98, 99],
        "'@' sorts after '8'"
    );
}

#[test]
fn secondary_index_lookups_and_ranges() {
    let e = users();
    assert_eq!(
        check(&e, vec![op(Op::Eq, "age", json!(3))], path("age", "eq")),
        vec![3, 33, 93]
    );
    assert_eq!(
        check(
            &e,
            vec![op(Op::In, "age", json!([1, 2]))],
            path("age", "in")
        ),
        vec![1, 2, 31, 32, 61, 62, 92]
    );
    let nulls = check(
        &e,
        vec![op(Op::IsNull, "age", json!(null))],
        path("age", "eq"),
    );
    assert_eq!(nulls, (1..=14).map(|i| i * 7).collect::<Vec<_>>());
    let young = check(&e, vec![op(Op::Lt, "age", json!(2))], path("age", "range"));
    assert_eq!(young, vec![1, 30, 31, 60, 61, 90]);
    let band = check(
        &e,
        vec![op(Op::Gt, "age", json!(27)), op(Op::Le, "age", json!(29))],
        path("age", "range"),
    );
    assert_eq!(band, vec![29, 58, 59, 88, 89]);
}

#[test]
fn best_path_wins_and_scans_remain_for_the_rest() {
    let e = users();
    let pk = AccessPath::PrimaryKey {
        field: "id".into(),
        keys: 1,
    };
    assert_eq!(
        check(
            &e,
            vec![op(Op::Eq, "age", json!(3)), op(Op::Eq, "id", json!(33))],
            pk
        ),
        vec![33]
    );
    let unique = AccessPath::UniqueIndex {
        field: "email".into(),
        keys: 1,
    };
    assert_eq!(
        check(
            &e,
            vec![
                op(Op::Lt, "id", json!(50)),
                op(Op::Eq, "email", json!("u3@x"))
            ],
            unique
        ),
        vec![3]
    );
    assert_eq!(
        check(
            &e,
            vec![
                op(Op::Eq, "city", json!("oslo")),
                op(Op::Lt, "id", json!(5))
            ],
            AccessPath::PrimaryKeyRange { field: "id".into() }
        ),
        vec![1, 3]
    );
    assert_eq!(
        check(
            &e,
            vec![
                op(Op::Eq, "city", json!("paris")),
                op(Op::Gt, "id", json!(95))
            ],
            AccessPath::PrimaryKeyRange { field: "id".into() }
        ),
        vec![96, 98, 100]
    );
    let zero = check(
        &e,
        vec![
            op(Op::Ne, "id", json!(60)),
            op(Op::Eq, "city", json!("paris")),
            op(Op::Lt, "age", json!(1)),
        ],
        path("age", "range"),
    );
    assert_eq!(zero, vec![30, 90]);
    assert_eq!(
        e.plan(&query("U", vec![op(Op::Eq, "city", json!("oslo"))]))
            .unwrap(),
        AccessPath::FullScan
    );
}

#[test]
fn index_paths_keep_primary_key_order_and_windows() {
    let e = users();
    let q = Select {
        limit: Some(2),
        offset: Some(1),
        ..query("U", vec![op(Op::In, "age", json!([2, 1]))])
    };
    assert_eq!(select_ids(&e, None, &q), vec![2, 31]);
}

#[test]
fn indexes_follow_updates_and_deletes() {
    let e = users();
    let upd = aura_engine::aura_core::ir::Update {
        model: "U".into(),
        filters: vec![op(Op::Eq, "id", json!(3))],
        set: json!({"age": 29, "email": "new@x"})
            .as_object()
            .cloned()
            .unwrap(),
    };
    assert_eq!(e.update(None, &upd).unwrap(), 1);
    assert_eq!(
        check(&e, vec![op(Op::Eq, "age", json!(3))], path("age", "eq")),
        vec![33, 93]
    );
    assert!(check(&e, vec![op(Op::Eq, "age", json!(29))], path("age", "eq")).contains(&3));
    let unique = AccessPath::UniqueIndex {
        field: "email".into(),
        keys: 1,
    };
    assert_eq!(
        check(
            &e,
            vec![op(Op::Eq, "email", json!("new@x"))],
            unique.clone()
        ),
        vec![3]
    );
    assert_eq!(
        check(&e, vec![op(Op::Eq, "email", json!("u3@x"))], unique.clone()),
        Vec::<i64>::new()
    );
    e.delete(None, &filtered("U", vec![op(Op::Eq, "id", json!(3))]))
        .unwrap();
    assert_eq!(
        check(&e, vec![op(Op::Eq, "email", json!("new@x"))], unique),
        Vec::<i64>::new()
    );
}
