//! Primary-key, unique, NOT NULL and foreign-key rules (API.md §2.5, §16
//! rows 11-12), with exact codes and messages, all-or-nothing statements.

mod common;

use aura_engine::aura_core::ir::{CompareOp as Op, Update, Upsert};
use aura_engine::aura_core::{ErrorCode, FieldDef, FieldKind, OnDelete, Value};
use aura_engine::{Engine, OnConflict};
use common::*;
use serde_json::json;

fn users() -> Engine {
    let e = Engine::new();
    e.create_table(schema(
        "U",
        Some("id"),
        vec![
            field("id", FieldKind::Int),
            field("email", FieldKind::Str).unique().nullable(),
            field("name", FieldKind::Str),
        ],
    ))
    .unwrap();
    e
}

fn user(id: i64, email: Option<&str>, name: &str) -> aura_engine::aura_core::Row {
    row(vec![int(id), email.map_or(Value::Null, s), s(name)])
}

fn all_ids(e: &Engine, model: &str) -> Vec<i64> {
    select_ids(e, None, &query(model, vec![]))
}

fn update(
    model: &str,
    filters: Vec<aura_engine::aura_core::ir::Expr>,
    set: serde_json::Value,
) -> Update {
    Update {
        model: model.into(),
        filters,
        set: set.as_object().cloned().unwrap_or_default(),
    }
}

#[track_caller]
fn assert_err<T: std::fmt::Debug>(
    result: aura_engine::aura_core::Result<T>,
    code: ErrorCode,
    message: &str,
) {
    let err = result.unwrap_err();
    assert_eq!((err.code, err.message.as_str()), (code, message));
}

#[test]
fn primary_key_required() {
    let e = users();
    let no_pk = row(vec![null(), null(), s("a")]);
    assert_err(
        e.insert(None, "U", vec![no_pk], OnConflict::Error),
        ErrorCode::ConstraintViolation,
        "U insert is missing primary key 'id'",
    );
    let keyless = Engine::new();
    keyless
        .create_table(schema("K", None, vec![field("name", FieldKind::Str)]))
        .unwrap();
    assert_err(
        keyless.insert(None, "K", vec![row(vec![s("a")])], OnConflict::Error),
        ErrorCode::ConstraintViolation,
        "K insert is missing primary key 'id'",
    );
    let coded = Engine::new();
    coded
        .create_table(schema(
            "C",
            Some("code"),
            vec![field("code", FieldKind::Str)],
        ))
        .unwrap();
    assert_err(
        coded.insert(None, "C", vec![row(vec![null()])], OnConflict::Error),
        ErrorCode::ConstraintViolation,
        "C insert is missing primary key 'code'",
    );
    let implicit = Engine::new();
    implicit
        .create_table(schema("I", None, vec![field("id", FieldKind::Int)]))
        .unwrap();
    assert_eq!(
        implicit
            .insert(None, "I", vec![row(vec![int(1)])], OnConflict::Error)
            .unwrap(),
        1,
        "no declared key: `id`"
    );
}

#[test]
fn duplicate_primary_keys_and_on_conflict() {
    let e = users();
    e.insert(None, "U", vec![user(1, None, "a")], OnConflict::Error)
        .unwrap();
    let batch = vec![user(2, None, "b"), user(1, None, "dup"), user(3, None, "c")];
    assert_err(
        e.insert(None, "U", batch.clone(), OnConflict::Error),
        ErrorCode::ConstraintViolation,
        "U already has a row with this primary key",
    );
    assert_eq!(all_ids(&e, "U"), vec![1], "all-or-nothing");
    assert_eq!(
        e.insert(None, "U", batch.clone(), OnConflict::Ignore)
            .unwrap(),
        2
    );
    assert_eq!(all_ids(&e, "U"), vec![1, 2, 3]);
    let name_of = |id| {
        e.select(None, &query("U", vec![eq("U", "id", json!(id))]))
            .unwrap()
            .rows[0]
            .row[2]
            .clone()
    };
    assert_eq!(name_of(1), s("a"));
    assert_eq!(
        e.insert(
            None,
            "U",
            vec![user(1, None, "replaced")],
            OnConflict::Replace
        )
        .unwrap(),
        1
    );
    assert_eq!(name_of(1), s("replaced"));
    assert_eq!(
        OnConflict::parse(Some("ignore")).unwrap(),
        OnConflict::Ignore
    );
    assert_eq!(OnConflict::parse(None).unwrap(), OnConflict::Error);
    assert_eq!(
        OnConflict::parse(Some("upsert")).unwrap_err().code,
        ErrorCode::QueryError
    );
}

#[test]
fn unique_fields() {
    let e = users();
    e.insert(
        None,
        "U",
        vec![
            user(1, Some("a@x"), "a"),
            user(2, None, "b"),
            user(3, None, "c"),
        ],
        OnConflict::Error,
    )
    .unwrap();
    assert_err(
        e.insert(
            None,
            "U",
            vec![user(4, Some("a@x"), "d")],
            OnConflict::Error,
        ),
        ErrorCode::ConstraintViolation,
        "U.email must be unique",
    );
    assert_eq!(
        e.insert(
            None,
            "U",
            vec![user(4, Some("a@x"), "d")],
            OnConflict::Ignore
        )
        .unwrap(),
        0
    );
    assert_err(
        e.insert(
            None,
            "U",
            vec![user(5, Some("n@x"), "e"), user(6, Some("n@x"), "f")],
            OnConflict::Error,
        ),
        ErrorCode::ConstraintViolation,
        "U.email must be unique",
    );
    assert_eq!(all_ids(&e, "U"), vec![1, 2, 3]);
    assert_err(
        e.update(
            None,
            &update("U", vec![eq("U", "id", json!(2))], json!({"email": "a@x"})),
        ),
        ErrorCode::ConstraintViolation,
        "U.email must be unique",
    );
    assert_eq!(
        e.update(
            None,
            &update("U", vec![eq("U", "id", json!(1))], json!({"email": "a@x"}))
        )
        .unwrap(),
        1,
        "own value is no conflict"
    );
}

#[test]
fn not_null_and_shape() {
    let e = users();
    assert_err(
        e.insert(
            None,
            "U",
            vec![user(1, None, "a"), row(vec![int(2), null(), null()])],
            OnConflict::Error,
        ),
        ErrorCode::ConstraintViolation,
        "U.name cannot be null",
    );
    assert_eq!(all_ids(&e, "U"), Vec::<i64>::new());
    let short = e
        .insert(None, "U", vec![row(vec![int(1)])], OnConflict::Error)
        .unwrap_err();
    assert_eq!(short.code, ErrorCode::ValidationError);
    e.insert(None, "U", vec![user(1, None, "a")], OnConflict::Error)
        .unwrap();
    assert_err(
        e.update(None, &update("U", vec![], json!({"name": null}))),
        ErrorCode::ConstraintViolation,
        "U.name cannot be null",
    );
    let v = Engine::new();
    v.create_table(schema(
        "V",
        Some("id"),
        vec![field("id", FieldKind::Int), FieldDef::vector("e", 3)],
    ))
    .unwrap();
    let bad = v
        .insert(
            None,
            "V",
            vec![row(vec![int(1), vector(&[1.0])])],
            OnConflict::Error,
        )
        .unwrap_err();
    assert_eq!(
        (bad.code, bad.message.as_str()),
        (
            ErrorCode::ValidationError,
            "Vector field 'e' expects dimension 3, got 1"
        )
    );
}

#[test]
fn update_semantics() {
    let e = users();
    e.insert(
        None,
        "U",
        vec![user(1, None, "a"), user(2, None, "b"), user(3, None, "b")],
        OnConflict::Error,
    )
    .unwrap();
    assert_eq!(
        e.update(
            None,
            &update("U", vec![eq("U", "name", json!("b"))], json!({"name": "b"}))
        )
        .unwrap(),
        2,
        "matched, not changed"
    );
    assert_err(
        e.update(None, &update("U", vec![], json!({}))),
        ErrorCode::QueryError,
        "update requires at least one set() assignment",
    );
    assert_err(
        e.update(None, &update("U", vec![], json!({"zz": 1}))),
        ErrorCode::QueryError,
        "U has no field 'zz'",
    );
    let typed = e
        .update(None, &update("U", vec![], json!({"name": 5})))
        .unwrap_err();
    assert_eq!(typed.code, ErrorCode::ValidationError);
    assert!(!typed.message.contains('5'), "no bound values in messages");
    assert_eq!(
        e.update(
            None,
            &update("U", vec![eq("U", "id", json!(404))], json!({"name": "z"}))
        )
        .unwrap(),
        0
    );
}

#[test]
fn primary_key_updates_rekey_rows() {
    let e = users();
    e.insert(
        None,
        "U",
        vec![user(1, Some("a@x"), "a"), user(2, None, "b")],
        OnConflict::Error,
    )
    .unwrap();
    assert_eq!(
        e.update(
            None,
            &update("U", vec![eq("U", "id", json!(1))], json!({"id": 10}))
        )
        .unwrap(),
        1
    );
    assert_eq!(all_ids(&e, "U"), vec![2, 10]);
    assert_eq!(
        select_ids(&e, None, &query("U", vec![eq("U", "id", json!(10))])),
        vec![10]
    );
    assert_eq!(
        select_ids(&e, None, &query("U", vec![eq("U", "id", json!(1))])),
        Vec::<i64>::new()
    );
    assert_eq!(
        select_ids(&e, None, &query("U", vec![eq("U", "email", json!("a@x"))])),
        vec![10],
        "unique index follows"
    );
    assert_err(
        e.update(
            None,
            &update("U", vec![eq("U", "id", json!(2))], json!({"id": 10})),
        ),
        ErrorCode::ConstraintViolation,
        "U already has a row with this primary key",
    );
    assert_eq!(all_ids(&e, "U"), vec![2, 10]);
    assert_err(
        e.update(None, &update("U", vec![], json!({"id": 7}))),
        ErrorCode::ConstraintViolation,
        "U already has a row with this primary key",
    );
    assert_err(
        e.update(None, &update("U", vec![], json!({"id": null}))),
        ErrorCode::ConstraintViolation,
        "U insert is missing primary key 'id'",
    );
}

/// Author <- Book(author, on_delete) <- Review(book, cascade)
fn library(on_delete: Option<OnDelete>) -> Engine {
    let e = Engine::new();
    e.create_table(schema(
        "Author",
        Some("id"),
        vec![field("id", FieldKind::Int), field("name", FieldKind::Str)],
    ))
    .unwrap();
    e.create_table(schema(
        "Book",
        Some("id"),
        vec![
            field("id", FieldKind::Int),
            FieldDef::link("author", "Author", on_delete),
        ],
    ))
    .unwrap();
    e.create_table(schema(
        "Review",
        Some("id"),
        vec![
            field("id", FieldKind::Int),
            FieldDef::link("book", "Book", Some(OnDelete::Cascade)),
        ],
    ))
    .unwrap();
    insert_all(
        &e,
        "Author",
        vec![row(vec![int(1), s("a")]), row(vec![int(2), s("b")])],
    );
    insert_all(
        &e,
        "Book",
        vec![
            row(vec![int(10), int(1)]),
            row(vec![int(11), int(1)]),
            row(vec![int(12), int(2)]),
            row(vec![int(13), null()]),
        ],
    );
    insert_all(
        &e,
        "Review",
        vec![row(vec![int(100), int(10)]), row(vec![int(101), int(12)])],
    );
    e
}

fn delete_author(e: &Engine, id: i64) -> aura_engine::aura_core::Result<u64> {
    e.delete(
        None,
        &filtered("Author", vec![eq("Author", "id", json!(id))]),
    )
}

#[test]
fn on_delete_restrict() {
    let e = library(Some(OnDelete::Restrict));
    assert_err(
        delete_author(&e, 1),
        ErrorCode::ConstraintViolation,
        "Author row is still referenced by Book.author",
    );
    assert_eq!(all_ids(&e, "Author"), vec![1, 2]);
    e.delete(
        None,
        &filtered("Book", vec![eq("Book", "author", json!(1))]),
    )
    .unwrap();
    assert_eq!(
        all_ids(&e, "Review"),
        vec![101],
        "review of book 10 cascaded"
    );
    assert_eq!(delete_author(&e, 1).unwrap(), 1);
}

#[test]
fn on_delete_cascade_is_recursive() {
    let e = library(Some(OnDelete::Cascade));
    assert_eq!(
        delete_author(&e, 1).unwrap(),
        1,
        "cascaded rows are not counted"
    );
    assert_eq!(all_ids(&e, "Author"), vec![2]);
    assert_eq!(all_ids(&e, "Book"), vec![12, 13]);
    assert_eq!(all_ids(&e, "Review"), vec![101]);
}

#[test]
fn on_delete_set_null() {
    let e = library(Some(OnDelete::SetNull));
    delete_author(&e, 1).unwrap();
    let out = e.select(None, &query("Book", vec![])).unwrap();
    let fks: Vec<Value> = out.rows.iter().map(|r| r.row[1].clone()).collect();
    assert_eq!(fks, vec![null(), null(), int(2), null()]);
    assert_eq!(all_ids(&e, "Review"), vec![100, 101]);
}

#[test]
fn no_on_delete_leaves_references_dangling() {
    let e = library(None);
    delete_author(&e, 1).unwrap();
    assert_eq!(all_ids(&e, "Book"), vec![10, 11, 12, 13]);
}

#[test]
fn referenced_primary_keys_cannot_change() {
    let e = library(Some(OnDelete::Cascade));
    assert_err(
        e.update(
            None,
            &update(
                "Author",
                vec![eq("Author", "id", json!(1))],
                json!({"id": 5}),
            ),
        ),
        ErrorCode::ConstraintViolation,
        "Author row is still referenced by Book.author",
    );
    assert_eq!(
        e.update(
            None,
            &update(
                "Author",
                vec![eq("Author", "id", json!(2))],
                json!({"name": "z"})
            )
        )
        .unwrap(),
        1
    );
    e.create_table(schema(
        "Lonely",
        Some("id"),
        vec![field("id", FieldKind::Int)],
    ))
    .unwrap();
    insert_all(&e, "Lonely", vec![row(vec![int(1)])]);
    assert_eq!(
        e.update(None, &update("Lonely", vec![], json!({"id": 2})))
            .unwrap(),
        1
    );
}

#[test]
fn upsert_updates_or_inserts() {
    let e = users();
    insert_all(&e, "U", vec![user(1, Some("a@x"), "a")]);
    let q = |email: &str, name: &str| Upsert {
        model: "U".into(),
        key: json!({"email": email}).as_object().cloned().unwrap(),
        values: json!({"name": name}).as_object().cloned().unwrap(),
    };
    let stored = e
        .upsert(
            None,
            &q("a@x", "renamed"),
            Some(user(9, Some("a@x"), "renamed")),
        )
        .unwrap()
        .unwrap();
    assert_eq!(stored[0], int(1));
    assert_eq!(stored[2], s("renamed"));
    let inserted = e
        .upsert(None, &q("b@x", "bee"), Some(user(2, Some("b@x"), "bee")))
        .unwrap()
        .unwrap();
    assert_eq!(inserted[0], int(2));
    assert_eq!(all_ids(&e, "U"), vec![1, 2]);
    assert_eq!(e.upsert(None, &q("c@x", "sea"), None).unwrap(), None);
    let bad = Upsert {
        key: Default::default(),
        ..q("a@x", "x")
    };
    assert_eq!(
        e.upsert(None, &bad, None).unwrap_err().code,
        ErrorCode::QueryError
    );
    let keyed_on_missing_field = Upsert {
        key: json!({"zz": 1}).as_object().cloned().unwrap(),
        ..q("a@x", "x")
    };
    assert_err(
        e.upsert(None, &keyed_on_missing_field, None),
        ErrorCode::QueryError,
        "U has no field 'zz'",
    );
}

#[test]
fn schema_lifecycle() {
    let e = users();
    let same = e.schema("U").unwrap();
    e.create_table(same.clone()).unwrap();
    insert_all(&e, "U", vec![user(1, None, "a")]);
    let other = schema("U", Some("id"), vec![field("id", FieldKind::Int)]);
    assert_eq!(
        e.create_table(other.clone()).unwrap_err().code,
        ErrorCode::SchemaError
    );
    assert_eq!(e.table_names(), vec!["U".to_owned()]);
    assert!(e.drop_table("U").unwrap());
    assert!(!e.drop_table("U").unwrap());
    e.create_table(other).unwrap();
    assert_eq!(e.schema("U").unwrap().fields.len(), 1);
    let dup = schema(
        "D",
        Some("id"),
        vec![field("id", FieldKind::Int), field("id", FieldKind::Str)],
    );
    assert_eq!(
        e.create_table(dup).unwrap_err().code,
        ErrorCode::SchemaError
    );
    let bad_pk = schema("B", Some("nope"), vec![field("id", FieldKind::Int)]);
    assert_eq!(
        e.create_table(bad_pk).unwrap_err().code,
        ErrorCode::SchemaError
    );
    let err = e
        .count(
            None,
            &filtered("Gone", vec![cmp(Op::Eq, "Gone", "id", json!(1))]),
        )
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::SchemaError, "Unknown model 'Gone'")
    );
}
