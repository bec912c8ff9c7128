//! Includes (batched link and collection loading) and graph traversal.

mod common;

use aura_engine::aura_core::ir::{CompareOp as Op, Include, Select, Traverse};
use aura_engine::aura_core::{ErrorCode, FieldDef, FieldKind, RelationKind, Row};
use aura_engine::{Engine, Included};
use common::*;
use serde_json::json;

/// Author(id, name) with `books`; Book(id, title, author -> Author, pages).
fn library() -> Engine {
    let e = Engine::new();
    let author = schema(
        "Author",
        Some("id"),
        vec![field("id", FieldKind::Int), field("name", FieldKind::Str)],
    );
    e.create_table(with_relationships(
        author,
        &[("books", "Book", RelationKind::Collection, Some("author"))],
    ))
    .unwrap();
    let book = schema(
        "Book",
        Some("id"),
        vec![
            field("id", FieldKind::Int),
            field("title", FieldKind::Str),
            FieldDef::link("author", "Author", None).alias("author_id"),
            field("pages", FieldKind::Int),
        ],
    );
    e.create_table(with_relationships(
        book,
        &[("author", "Author", RelationKind::Link, None)],
    ))
    .unwrap();
    insert_all(
        &e,
        "Author",
        vec![
            row(vec![int(1), s("Le Guin")]),
            row(vec![int(2), s("Herbert")]),
            row(vec![int(3), s("Nobody")]),
        ],
    );
    insert_all(
        &e,
        "Book",
        vec![
            row(vec![int(10), s("Earthsea"), int(1), int(200)]),
            row(vec![int(11), s("Dune"), int(2), int(600)]),
            row(vec![int(12), s("Lathe"), int(1), int(180)]),
            row(vec![int(13), s("Orphan"), null(), int(50)]),
            row(vec![int(14), s("Dispossessed"), int(1), int(380)]),
            row(vec![int(15), s("Ghost"), int(99), int(10)]),
        ],
    );
    e
}

fn include(
    link: &str,
    limit: Option<u64>,
    sort: Vec<aura_engine::aura_core::ir::OrderTerm>,
) -> Include {
    Include {
        link: link.into(),
        limit,
        sort,
    }
}

fn with_includes(model: &str, includes: Vec<Include>) -> Select {
    Select {
        include: includes,
        ..Select::new(model)
    }
}

fn one(inc: &Included) -> Option<i64> {
    match inc {
        Included::One { row, .. } => row.as_ref().map(|r| as_int(&r[0])),
        other => panic!("expected a link, got {other:?}"),
    }
}

fn many(inc: &Included) -> Vec<i64> {
    match inc {
        Included::Many { rows, .. } => row_ids(rows),
        other => panic!("expected a collection, got {other:?}"),
    }
}

#[test]
fn link_includes_resolve_each_foreign_key() {
    let e = library();
    let out = e
        .select(
            None,
            &with_includes("Book", vec![include("author", None, vec![])]),
        )
        .unwrap();
    let authors: Vec<Option<i64>> = out.rows.iter().map(|r| one(&r.includes[0])).collect();
    assert_eq!(
        authors,
        vec![Some(1), Some(2), Some(1), None, Some(1), None]
    );
    assert!(out.rows.iter().all(|r| r.includes[0].attr() == "author"));
    // The link field answers to its storage name too.
    let by_storage = e
        .select(
            None,
            &with_includes("Book", vec![include("author_id", None, vec![])]),
        )
        .unwrap();
    assert_eq!(one(&by_storage.rows[1].includes[0]), Some(2));
}

#[test]
fn collection_includes_sort_and_limit_per_parent() {
    let e = library();
    let out = e
        .select(
            None,
            &with_includes("Author", vec![include("books", None, vec![])]),
        )
        .unwrap();
    let books: Vec<Vec<i64>> = out.rows.iter().map(|r| many(&r.includes[0])).collect();
    assert_eq!(books, vec![vec![10, 12, 14], vec![11], vec![]]);
    let longest = with_includes(
        "Author",
        vec![include("books", Some(2), vec![desc("pages")])],
    );
    let out = e.select(None, &longest).unwrap();
    let books: Vec<Vec<i64>> = out.rows.iter().map(|r| many(&r.includes[0])).collect();
    assert_eq!(books, vec![vec![14, 10], vec![11], vec![]]);
}

#[test]
fn includes_follow_filters_windows_and_request_order() {
    let e = library();
    let q = Select {
        filters: vec![cmp(Op::Gt, "Book", "pages", json!(100))],
        sort: vec![desc("pages")],
        limit: Some(2),
        include: vec![
            include("author", None, vec![]),
            include("author", Some(1), vec![]),
        ],
        ..Select::new("Book")
    };
    let out = e.select(None, &q).unwrap();
    assert_eq!(ids(&out), vec![11, 14]);
    assert_eq!(out.rows[0].includes.len(), 2);
    assert_eq!(one(&out.rows[1].includes[1]), Some(1));
}

#[test]
fn collection_without_via_uses_the_first_back_link() {
    let e = library();
    let author = (*e.schema("Author").unwrap()).clone();
    let rels = [("books", "Book", RelationKind::Collection, None)];
    let e2 = Engine::new();
    e2.create_table(with_relationships(std::sync::Arc::new(author), &rels))
        .unwrap();
    e2.create_table(e.schema("Book").unwrap()).unwrap();
    insert_all(&e2, "Author", vec![row(vec![int(1), s("x")])]);
    insert_all(&e2, "Book", vec![row(vec![int(5), s("t"), int(1), int(1)])]);
    let out = e2
        .select(
            None,
            &with_includes("Author", vec![include("books", None, vec![])]),
        )
        .unwrap();
    assert_eq!(many(&out.rows[0].includes[0]), vec![5]);
}

#[test]
fn unknown_includes_are_query_errors() {
    let e = library();
    let err = e
        .select(
            None,
            &with_includes("Author", vec![include("zzz", None, vec![])]),
        )
        .unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            ErrorCode::QueryError,
            "Author has no relationship 'zzz' to include"
        )
    );
    let err = e
        .select(
            None,
            &with_includes("Book", vec![include("title", None, vec![])]),
        )
        .unwrap_err();
    assert_eq!(err.message, "Book has no relationship 'title' to include");
    let err = e
        .select(
            None,
            &with_includes("Author", vec![include("books", None, vec![asc("nope")])]),
        )
        .unwrap_err();
    assert_eq!(err.message, "Book has no field 'nope'");
}

fn traverse(model: &str, start: Vec<aura_engine::aura_core::ir::Expr>, steps: &[&str]) -> Traverse {
    Traverse {
        model: model.into(),
        start,
        steps: steps.iter().map(|s| (*s).to_owned()).collect(),
        max_depth: 5,
        filters: vec![],
        limit: None,
    }
}

fn hop_ids(e: &Engine, q: &Traverse) -> (String, Vec<i64>) {
    let (model, rows): (String, Vec<Row>) = e.traverse(None, q).unwrap();
    (model, row_ids(&rows))
}

#[test]
fn traversal_follows_links_and_collections() {
    let e = library();
    let q = traverse("Author", vec![eq("Author", "id", json!(1))], &["books"]);
    assert_eq!(hop_ids(&e, &q), ("Book".into(), vec![10, 12, 14]));
    let back = traverse("Book", vec![], &["author"]);
    assert_eq!(
        hop_ids(&e, &back),
        ("Author".into(), vec![1, 2]),
        "deduplicated, first-seen order"
    );
    let round = traverse(
        "Book",
        vec![eq("Book", "id", json!(11))],
        &["author", "books"],
    );
    assert_eq!(hop_ids(&e, &round), ("Book".into(), vec![11]));
    let everything = traverse("Author", vec![], &["books", "author", "books"]);
    assert_eq!(hop_ids(&e, &everything).1, vec![10, 12, 14, 11]);
    assert_eq!(
        hop_ids(&e, &traverse("Author", vec![], &[])).1,
        vec![1, 2, 3]
    );
}

#[test]
fn traversal_filters_and_limit_apply_last() {
    let e = library();
    let q = Traverse {
        filters: vec![cmp(Op::Gt, "Book", "pages", json!(190))],
        limit: Some(1),
        ..traverse("Author", vec![], &["books"])
    };
    assert_eq!(hop_ids(&e, &q).1, vec![10]);
}

#[test]
fn traversal_errors() {
    let e = library();
    let deep = Traverse {
        max_depth: 1,
        ..traverse("Author", vec![], &["books", "author"])
    };
    let err = e.traverse(None, &deep).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::QueryError, "traversal exceeds max_depth")
    );
    let err = e
        .traverse(None, &traverse("Author", vec![], &["friends"]))
        .unwrap_err();
    assert_eq!(
        err.message,
        "Author has no relationship 'friends' to traverse"
    );
    let err = e
        .traverse(None, &traverse("Nope", vec![], &[]))
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::SchemaError);
}
