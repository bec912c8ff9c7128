use std::sync::Arc;

use aura_core::ir::{CompareOp, Expr, Include, Request, Select};
use aura_core::{
    ErrorCode, FieldDef, FieldKind, ModelSchema, OnDelete, RelationKind, RelationshipDef,
};
use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::{create_table, insert, upsert, OnConflict, UpsertPlan};

fn book() -> ModelSchema {
    ModelSchema {
        name: "Book".into(),
        primary_key: Some("id".into()),
        fields: vec![
            FieldDef::new("id", FieldKind::Int),
            FieldDef::new("title", FieldKind::Str).alias("TITLE"),
            FieldDef::new("pages", FieldKind::Int).indexed(),
            FieldDef::link("author", "Author", Some(OnDelete::Cascade)),
            FieldDef::new("tags", FieldKind::List),
            FieldDef::new("meta", FieldKind::Dict),
            FieldDef::new("flag", FieldKind::Bool).nullable(),
        ],
        relationships: vec![],
    }
}

fn author() -> ModelSchema {
    ModelSchema {
        name: "Author".into(),
        primary_key: Some("id".into()),
        fields: vec![
            FieldDef::new("id", FieldKind::Int),
            FieldDef::new("email", FieldKind::Str).unique(),
        ],
        relationships: vec![RelationshipDef {
            attr: "books".into(),
            target: "Book".into(),
            kind: RelationKind::Collection,
            via: None,
        }],
    }
}

fn catalog() -> crate::Catalog {
    [("Book", book()), ("Author", author())]
        .into_iter()
        .map(|(n, s)| (n.to_owned(), Arc::new(s)))
        .collect()
}

fn cmp(op: CompareOp, field: &str, value: serde_json::Value) -> Expr {
    Expr::compare(op, Expr::field("Book", field), Expr::literal(value))
}

fn where_sql(dialect: Dialect, filters: Vec<Expr>) -> Statement {
    let mut q = Select::new("Book");
    q.filters = filters;
    let stmt = select(dialect, &book(), &q).unwrap();
    let at = stmt.sql.find(" WHERE ").unwrap() + 7;
    let end = stmt.sql.find(" ORDER BY ").unwrap();
    Statement {
        sql: stmt.sql[at..end].to_owned(),
        params: stmt.params,
    }
}

fn sqlite(filters: Vec<Expr>) -> (String, Vec<SqlValue>) {
    let s = where_sql(Dialect::Sqlite, filters);
    (s.sql, s.params)
}

#[test]
fn full_select_shape() {
    let req = Request::from_json(json!({
        "operation": "select", "model": "Book",
        "filters": [{"kind": "compare", "op": "ge", "left": {"kind": "field", "model": "Book", "field": "pages"}, "right": {"kind": "literal", "value": 300}}],
        "projection": ["TITLE"], "sort": [{"field": "pages", "direction": "desc"}],
        "limit": 2, "offset": 1, "consistency": "strong"
    }))
    .unwrap();
    let Request::Select(q) = req else { panic!() };
    let stmt = select(Dialect::Sqlite, &book(), &q).unwrap();
    assert_eq!(
        stmt.sql,
        "SELECT \"id\", \"TITLE\", NULL, NULL, NULL, NULL, NULL FROM \"Book\" WHERE \"pages\" >= ? \
         ORDER BY \"pages\" DESC, \"id\" ASC LIMIT ? OFFSET ?"
    );
    assert_eq!(
        stmt.params,
        vec![SqlValue::Int(300), SqlValue::Int(2), SqlValue::Int(1)]
    );
    let pg = select(Dialect::Postgres, &book(), &q).unwrap();
    assert_eq!(
        pg.sql,
        "SELECT \"id\", \"TITLE\", NULL, NULL, NULL, NULL, NULL FROM \"Book\" WHERE \"pages\" >= $1 \
         ORDER BY \"pages\" DESC NULLS LAST, \"id\" ASC LIMIT $2 OFFSET $3"
    );
    let my = select(Dialect::Mysql, &book(), &Select::new("Book")).unwrap();
    assert_eq!(
        my.sql,
        "SELECT `id`, `TITLE`, `pages`, `author`, `tags`, `meta`, `flag` FROM `Book` WHERE TRUE ORDER BY `id` ASC"
    );
}

#[test]
fn offset_without_limit() {
    let mut q = Select::new("Book");
    q.offset = Some(3);
    let sql = |d| select(d, &book(), &q).unwrap().sql;
    assert!(sql(Dialect::Sqlite).ends_with("ORDER BY \"id\" ASC LIMIT -1 OFFSET ?"));
    assert!(sql(Dialect::Postgres).ends_with("ORDER BY \"id\" ASC OFFSET $1"));
    assert!(sql(Dialect::Mysql).ends_with("LIMIT 18446744073709551615 OFFSET ?"));
}

#[test]
fn equality_and_nulls() {
    assert_eq!(
        sqlite(vec![cmp(CompareOp::Eq, "pages", json!(3))]),
        ("\"pages\" = ?".into(), vec![SqlValue::Int(3)])
    );
    assert_eq!(
        sqlite(vec![cmp(CompareOp::Ne, "author", json!(1))]),
        (
            "(\"author\" <> ? OR \"author\" IS NULL)".into(),
            vec![SqlValue::Int(1)]
        )
    );
    assert_eq!(
        sqlite(vec![cmp(CompareOp::Eq, "author", json!(null))]).0,
        "\"author\" IS NULL"
    );
    assert_eq!(
        sqlite(vec![cmp(CompareOp::Ne, "author", json!(null))]).0,
        "\"author\" IS NOT NULL"
    );
    assert_eq!(
        sqlite(vec![cmp(CompareOp::Lt, "pages", json!(null))]).0,
        "FALSE"
    );
    // literal on the left is flipped
    let flipped = Expr::compare(
        CompareOp::Lt,
        Expr::literal(5),
        Expr::field("Book", "pages"),
    );
    assert_eq!(sqlite(vec![flipped]).0, "\"pages\" > ?");
    assert_eq!(
        sqlite(vec![cmp(CompareOp::Eq, "flag", json!(true))]).1,
        vec![SqlValue::Bool(true)]
    );
}

#[test]
fn negations_are_pushed_down_two_valued() {
    let not_lt = Expr::negate(cmp(CompareOp::Lt, "pages", json!(300)));
    assert_eq!(sqlite(vec![not_lt]).0, "NOT COALESCE(\"pages\" < ?, FALSE)");
    let not_eq = Expr::negate(cmp(CompareOp::Eq, "pages", json!(1)));
    assert_eq!(
        sqlite(vec![not_eq]).0,
        "(\"pages\" <> ? OR \"pages\" IS NULL)"
    );
    let not_and = Expr::negate(Expr::and(vec![
        cmp(CompareOp::IsNull, "author", json!(null)),
        cmp(CompareOp::Ne, "pages", json!(2)),
    ]));
    assert_eq!(
        sqlite(vec![not_and]).0,
        "(\"author\" IS NOT NULL OR \"pages\" = ?)"
    );
    assert_eq!(sqlite(vec![Expr::or(vec![])]).0, "FALSE");
    assert_eq!(sqlite(vec![Expr::negate(Expr::or(vec![]))]).0, "TRUE");
    assert_eq!(sqlite(vec![]).0, "TRUE");
}

#[test]
fn membership_with_and_without_nulls() {
    let (sql, params) = sqlite(vec![cmp(CompareOp::In, "pages", json!([4, 2]))]);
    assert_eq!((sql.as_str(), params.len()), ("\"pages\" IN (?, ?)", 2));
    assert_eq!(
        sqlite(vec![cmp(CompareOp::In, "pages", json!([]))]).0,
        "FALSE"
    );
    assert_eq!(
        sqlite(vec![cmp(CompareOp::NotIn, "pages", json!([]))]).0,
        "TRUE"
    );
    assert_eq!(
        sqlite(vec![cmp(CompareOp::NotIn, "author", json!([1]))]).0,
        "(\"author\" NOT IN (?) OR \"author\" IS NULL)"
    );
    assert_eq!(
        sqlite(vec![cmp(CompareOp::NotIn, "author", json!([1, null]))]).0,
        "(\"author\" NOT IN (?) AND \"author\" IS NOT NULL)"
    );
    assert_eq!(
        sqlite(vec![cmp(CompareOp::In, "author", json!([null, 1]))]).0,
        "(\"author\" IN (?) OR \"author\" IS NULL)"
    );
    let err = where_sql_err(vec![cmp(CompareOp::In, "pages", json!(1))]);
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::QueryError, "'in' on Book.pages needs a list")
    );
}

fn where_sql_err(filters: Vec<Expr>) -> aura_core::Error {
    let mut q = Select::new("Book");
    q.filters = filters;
    select(Dialect::Sqlite, &book(), &q).unwrap_err()
}

#[test]
fn string_patterns_escape_and_stay_case_sensitive() {
    let (sql, params) = sqlite(vec![cmp(CompareOp::Contains, "TITLE", json!("50%_!"))]);
    assert_eq!(sql, "\"TITLE\" LIKE ? ESCAPE '!'");
    assert_eq!(params, vec![SqlValue::Text("%50!%!_!!%".into())]);
    let (_, params) = sqlite(vec![cmp(CompareOp::Startswith, "title", json!("M"))]);
    assert_eq!(params, vec![SqlValue::Text("M%".into())]);
    let (_, params) = sqlite(vec![cmp(CompareOp::Endswith, "title", json!("%"))]);
    assert_eq!(params, vec![SqlValue::Text("%!%".into())]);
    let (_, params) = sqlite(vec![cmp(CompareOp::Like, "title", json!("_to!ne%"))]);
    assert_eq!(params, vec![SqlValue::Text("_to!!ne%".into())]);
    assert_eq!(
        sqlite(vec![cmp(CompareOp::Like, "pages", json!("1%"))]).0,
        "FALSE"
    );
    let err = where_sql_err(vec![cmp(CompareOp::Startswith, "title", json!(1))]);
    assert_eq!(
        err.message,
        "Invalid value for Book.title in 'startswith': expected a string"
    );
    let my = where_sql(
        Dialect::Mysql,
        vec![cmp(CompareOp::Like, "title", json!("a"))],
    );
    assert_eq!(my.sql, "`TITLE` LIKE ? ESCAPE '!'");
}

#[test]
fn list_membership_and_dict_keys() {
    let (sql, params) = sqlite(vec![cmp(CompareOp::Contains, "tags", json!("death"))]);
    assert_eq!(
        sql,
        "EXISTS (SELECT 1 FROM json_each(\"tags\") WHERE json_each.value = ?)"
    );
    assert_eq!(params, vec![SqlValue::Text("death".into())]);
    let (sql, _) = sqlite(vec![cmp(CompareOp::Contains, "meta", json!("k"))]);
    assert_eq!(
        sql,
        "EXISTS (SELECT 1 FROM json_each(\"meta\") WHERE json_each.key = ?)"
    );
    let pg = where_sql(
        Dialect::Postgres,
        vec![cmp(CompareOp::Contains, "tags", json!("x"))],
    );
    assert_eq!(
        (pg.sql.as_str(), pg.params),
        (
            "\"tags\"::jsonb @> $1::jsonb",
            vec![SqlValue::Text("[\"x\"]".into())]
        )
    );
    let err = where_sql_err(vec![cmp(CompareOp::Lt, "tags", json!(["a"]))]);
    assert_eq!(err.code, ErrorCode::DialectError);
}

#[test]
fn document_paths_bind_the_path() {
    let path = Expr::compare(
        CompareOp::Eq,
        Expr::Field {
            model: "Book".into(),
            field: "meta".into(),
            path: Some(vec!["a".into(), "b".into()]),
        },
        Expr::literal(3),
    );
    let (sql, params) = sqlite(vec![path.clone()]);
    assert_eq!(sql, "json_extract(\"meta\", ?) = ?");
    assert_eq!(
        params,
        vec![SqlValue::Text("$.\"a\".\"b\"".into()), SqlValue::Int(3)]
    );
    let mut q = Select::new("Book");
    q.filters = vec![path];
    let err = select(Dialect::Postgres, &book(), &q).unwrap_err();
    assert_eq!(err.code, ErrorCode::DialectError);
}

#[test]
fn validation_matches_the_memory_engine() {
    let err = where_sql_err(vec![cmp(CompareOp::Eq, "pages", json!("x"))]);
    assert_eq!(
        (err.code, err.message.as_str()),
        (
            ErrorCode::ValidationError,
            "Invalid value for Book.pages in 'eq': expected int"
        )
    );
    let err = where_sql_err(vec![cmp(CompareOp::Eq, "zz", json!(1))]);
    assert_eq!(err.message, "Book has no field 'zz'");
    let param = Expr::compare(
        CompareOp::Eq,
        Expr::field("Book", "id"),
        Expr::Param { name: "p".into() },
    );
    assert_eq!(
        where_sql_err(vec![param]).message,
        "Parameter 'p' is not bound"
    );
}

#[test]
fn ranked_clauses_are_capability_errors() {
    let req = Request::from_json(json!({"operation": "select", "model": "Book",
        "text_search": {"field": "title", "query": "q"}}))
    .unwrap();
    let Request::Select(q) = req else { panic!() };
    let err = select(Dialect::Sqlite, &book(), &q).unwrap_err();
    assert_eq!(err.code, ErrorCode::BackendCapabilityError);
    assert_eq!(
        err.message,
        "Backend 'sqlite' does not support ranked full-text search"
    );
}

#[test]
fn include_levels() {
    let cat = catalog();
    let rel = Relation::resolve(&cat, &author(), "books").unwrap();
    assert_eq!(
        rel,
        Relation::Collection {
            attr: "books".into(),
            target: "Book".into(),
            via: 3
        }
    );
    let target = &cat["Book"];
    let sort = [aura_core::ir::OrderTerm {
        field: "pages".into(),
        direction: aura_core::ir::Direction::Desc,
    }];
    let q = RelatedQuery {
        target,
        key: 3,
        sort: &sort,
        limit: Some(1),
    };
    let stmt = related(
        Dialect::Sqlite,
        &q,
        vec![SqlValue::Int(1), SqlValue::Int(2)],
    )
    .unwrap();
    assert_eq!(
        stmt.sql,
        "SELECT \"id\", \"TITLE\", \"pages\", \"author\", \"tags\", \"meta\", \"flag\" FROM (SELECT *, \
         ROW_NUMBER() OVER (PARTITION BY \"author\" ORDER BY \"pages\" DESC, \"id\" ASC) AS \"__aura_n\" \
         FROM \"Book\" WHERE \"author\" IN (?, ?)) AS \"__aura_t\" WHERE \"__aura_n\" <= ? ORDER BY \"__aura_n\""
    );
    let err = Relation::resolve(&cat, &author(), "nope").unwrap_err();
    assert_eq!(err.message, "Author has no relationship 'nope' to include");
    assert_eq!(
        Relation::resolve(&cat, &book(), "author").unwrap().target(),
        "Author"
    );
    let _ = Include {
        link: "x".into(),
        limit: None,
        sort: vec![],
    };
}

#[test]
fn inserts_and_upserts() {
    let sql = insert(Dialect::Sqlite, &author(), OnConflict::Ignore).unwrap();
    assert_eq!(
        sql,
        "INSERT INTO \"Author\" (\"id\", \"email\") VALUES (?, ?) ON CONFLICT DO NOTHING"
    );
    let sql = insert(Dialect::Sqlite, &author(), OnConflict::Replace).unwrap();
    assert_eq!(sql, "INSERT INTO \"Author\" (\"id\", \"email\") VALUES (?, ?) ON CONFLICT (\"id\") DO UPDATE SET \"email\" = excluded.\"email\"");
    let sql = insert(Dialect::Mysql, &author(), OnConflict::Replace).unwrap();
    assert_eq!(sql, "INSERT INTO `Author` (`id`, `email`) VALUES (?, ?) ON DUPLICATE KEY UPDATE `email` = VALUES(`email`)");
    assert_eq!(
        insert(Dialect::Postgres, &author(), OnConflict::Error).unwrap(),
        "INSERT INTO \"Author\" (\"id\", \"email\") VALUES ($1, $2)"
    );
    let req = Request::from_json(json!({"operation": "upsert", "model": "Author", "key": {"email": "a@x"}, "values": {"id": 5}})).unwrap();
    let Request::Upsert(q) = req else { panic!() };
    let row = [aura_core::Value::Int(5), aura_core::Value::str("a@x")];
    let UpsertPlan::Atomic(stmt) = upsert(Dialect::Sqlite, &author(), &q, Some(&row)).unwrap()
    else {
        panic!()
    };
    assert_eq!(stmt.sql, "INSERT INTO \"Author\" (\"id\", \"email\") VALUES (?, ?) ON CONFLICT (\"email\") DO UPDATE SET \"id\" = ? RETURNING \"id\", \"email\"");
    assert_eq!(
        stmt.params,
        vec![
            SqlValue::Int(5),
            SqlValue::Text("a@x".into()),
            SqlValue::Int(5)
        ]
    );
}

#[test]
fn ddl() {
    let cat = catalog();
    let stmts = create_table(Dialect::Sqlite, &book(), &cat).unwrap();
    assert_eq!(stmts, vec![
        "CREATE TABLE IF NOT EXISTS \"Book\" (\"id\" INTEGER NOT NULL PRIMARY KEY, \"TITLE\" TEXT NOT NULL, \
         \"pages\" INTEGER NOT NULL, \"author\" INTEGER, \"tags\" TEXT NOT NULL, \"meta\" TEXT NOT NULL, \"flag\" INTEGER)".to_owned(),
        "CREATE INDEX IF NOT EXISTS \"idx_Book_pages\" ON \"Book\" (\"pages\")".to_owned(),
    ]);
    let my = create_table(Dialect::Mysql, &author(), &cat).unwrap();
    assert_eq!(my[0], "CREATE TABLE IF NOT EXISTS `Author` (`id` BIGINT NOT NULL PRIMARY KEY, `email` VARCHAR(255) COLLATE utf8mb4_bin NOT NULL UNIQUE)");
    let mut hostile = author();
    hostile.name = "x\"; DROP TABLE y; --".into();
    let stmts = create_table(Dialect::Sqlite, &hostile, &cat).unwrap();
    assert!(stmts[0].starts_with("CREATE TABLE IF NOT EXISTS \"x\"\"; DROP TABLE y; --\" ("));
    hostile.name = "a\0b".into();
    assert_eq!(
        create_table(Dialect::Sqlite, &hostile, &cat)
            .unwrap_err()
            .code,
        ErrorCode::DialectError
    );
}

fn arb_op() -> impl Strategy<Value = CompareOp> {
    prop_oneof![
        Just(CompareOp::Eq),
        Just(CompareOp::Ne),
        Just(CompareOp::Lt),
        Just(CompareOp::Ge),
        Just(CompareOp::Contains),
        Just(CompareOp::Startswith),
        Just(CompareOp::Endswith),
        Just(CompareOp::Like),
        Just(CompareOp::In),
        Just(CompareOp::NotIn),
    ]
}

proptest! {
    /// No user value ever becomes query text: a marked string shows up only
    /// among the parameters, on every dialect.
    #[test]
    fn values_never_reach_the_sql_text(op in arb_op(), tail in ".{0,20}", negate in any::<bool>()) {
        let value = format!("ZQX{tail}");
        let literal = if matches!(op, CompareOp::In | CompareOp::NotIn) { json!([value]) } else { json!(value) };
        let mut expr = cmp(op, "title", literal);
        if negate { expr = Expr::negate(expr); }
        for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
            let stmt = where_sql(dialect, vec![expr.clone()]);
            prop_assert!(!stmt.sql.contains("ZQX"));
            let bound = stmt.params.iter().any(|p| matches!(p, SqlValue::Text(t) if t.contains("ZQX")));
            prop_assert!(bound);
        }
    }
}
