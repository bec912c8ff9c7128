//! Golden SQL of aggregates, ranked full-text search, full-text DDL and
//! introspection on every dialect: the text, and that values are bound.

use std::sync::Arc;

use aura_core::ir::{Request, Select};
use aura_core::{ErrorCode, FieldDef, FieldKind, ModelSchema, Value};
use aura_sql::{
    aggregate, create_full_text, introspect, select_ranked, Catalog, Dialect, LiveTable, SqlValue,
};
use serde_json::{json, Value as Json};

fn doc() -> ModelSchema {
    let mut body = FieldDef::new("body", FieldKind::Str).nullable();
    body.full_text = true;
    ModelSchema {
        name: "Doc".into(),
        primary_key: Some("id".into()),
        fields: vec![
            FieldDef::new("id", FieldKind::Int),
            FieldDef::new("kind", FieldKind::Str),
            FieldDef::new("score", FieldKind::Float).nullable(),
            body,
            FieldDef::new("tags", FieldKind::List),
            FieldDef::new("any", FieldKind::Any).nullable(),
            FieldDef::new("flag", FieldKind::Bool),
        ],
        relationships: vec![],
    }
}

fn catalog() -> Catalog {
    [("Doc".to_owned(), Arc::new(doc()))].into_iter().collect()
}

fn request(extra: Json) -> Select {
    let mut ir = json!({"operation": "aggregate", "model": "Doc",
        "filters": [{"kind": "compare", "op": "gt",
            "left": {"kind": "field", "model": "Doc", "field": "score"},
            "right": {"kind": "literal", "value": 1}}]});
    if let (Some(base), Some(more)) = (ir.as_object_mut(), extra.as_object()) {
        base.extend(more.clone());
    }
    match Request::from_json(ir).unwrap() {
        Request::Aggregate(q) => q,
        other => panic!("not an aggregate: {other:?}"),
    }
}

fn sqls(dialect: Dialect, q: &Select) -> Vec<String> {
    aggregate(dialect, &doc(), &catalog(), q)
        .unwrap()
        .statements
        .into_iter()
        .map(|s| s.statement.sql)
        .collect()
}

#[test]
fn metrics_facets_and_groups_per_dialect() {
    let q = request(json!({
        "facets": [{"field": "kind", "limit": 3}, {"field": "tags"}],
        "metrics": [{"op": "count"}, {"op": "sum", "field": "id"}, {"op": "avg", "field": "id"},
                    {"op": "min", "field": "kind"}, {"op": "max", "field": "flag"}],
        "group_by": {"field": "kind"}}));
    assert_eq!(
        sqls(Dialect::Sqlite, &q),
        [
            r#"SELECT COUNT(*), COUNT(*), SUM("id"), AVG("id"), NULL, NULL FROM "Doc" WHERE ("score" > ?)"#,
            r#"SELECT "kind", COUNT(*) FROM "Doc" WHERE ("score" > ?) AND "kind" IS NOT NULL GROUP BY "kind" ORDER BY COUNT(*) DESC, "kind" ASC LIMIT ?"#,
            r#"SELECT "kind", COUNT(*), COUNT(*), SUM("id"), AVG("id"), NULL, NULL FROM "Doc" WHERE ("score" > ?) AND "kind" IS NOT NULL GROUP BY "kind" ORDER BY COUNT(*) DESC, "kind" ASC LIMIT ?"#,
        ]
    );
    assert_eq!(
        sqls(Dialect::Postgres, &q),
        [
            r#"SELECT COUNT(*), COUNT(*), CAST(SUM("id") AS BIGINT), CAST(SUM("id") AS DOUBLE PRECISION) / NULLIF(COUNT("id"), 0), NULL, NULL FROM "Doc" WHERE ("score" > $1)"#,
            r#"SELECT "kind", COUNT(*) FROM "Doc" WHERE ("score" > $1) AND "kind" IS NOT NULL GROUP BY "kind" ORDER BY COUNT(*) DESC, "kind" COLLATE "C" ASC LIMIT $2"#,
            r#"SELECT "kind", COUNT(*), COUNT(*), CAST(SUM("id") AS BIGINT), CAST(SUM("id") AS DOUBLE PRECISION) / NULLIF(COUNT("id"), 0), NULL, NULL FROM "Doc" WHERE ("score" > $1) AND "kind" IS NOT NULL GROUP BY "kind" ORDER BY COUNT(*) DESC, "kind" COLLATE "C" ASC LIMIT $2"#,
        ]
    );
    assert_eq!(
        sqls(Dialect::Mysql, &q),
        [
            "SELECT COUNT(*), COUNT(*), CAST(SUM(`id`) AS SIGNED), (SUM(`id`) + 0e0) / NULLIF(COUNT(`id`), 0), NULL, NULL FROM `Doc` WHERE (`score` > ?)",
            "SELECT `kind`, COUNT(*) FROM `Doc` WHERE (`score` > ?) AND `kind` IS NOT NULL GROUP BY `kind` ORDER BY COUNT(*) DESC, `kind` ASC LIMIT ?",
            "SELECT `kind`, COUNT(*), COUNT(*), CAST(SUM(`id`) AS SIGNED), (SUM(`id`) + 0e0) / NULLIF(COUNT(`id`), 0), NULL, NULL FROM `Doc` WHERE (`score` > ?) AND `kind` IS NOT NULL GROUP BY `kind` ORDER BY COUNT(*) DESC, `kind` ASC LIMIT ?",
        ]
    );
    let plan = aggregate(Dialect::Postgres, &doc(), &catalog(), &q).unwrap();
    assert_eq!(
        plan.statements[1].statement.params,
        [SqlValue::Int(1), SqlValue::Int(3)]
    );
    assert_eq!(
        plan.statements[2].statement.params,
        [SqlValue::Int(1), SqlValue::Int(10)]
    );
}

#[test]
fn results_assemble_into_the_aggregate_dict() {
    let q = request(json!({
        "facets": [{"field": "kind"}, {"field": "tags"}],
        "metrics": [{"op": "count"}, {"op": "avg", "field": "id"}],
        "group_by": {"field": "kind", "limit": 1}}));
    let plan = aggregate(Dialect::Sqlite, &doc(), &catalog(), &q).unwrap();
    let s = |t: &str| Value::str(t);
    let out = plan
        .assemble(vec![
            vec![vec![Value::Int(3), Value::Int(3), Value::Float(2.0)]],
            vec![vec![s("a"), Value::Int(2)], vec![s("b"), Value::Int(1)]],
            vec![vec![
                s("a"),
                Value::Int(2),
                Value::Int(2),
                Value::Float(1.5),
            ]],
        ])
        .unwrap();
    assert_eq!(
        out,
        json!({
            "collection": "Doc", "matched": 3, "scanned": 3, "filter_present": true,
            "search_scoped": false,
            "metrics": [{"op": "count", "value": 3}, {"op": "avg", "value": 2.0, "field": "id"}],
            "facets": [
                {"field": "kind", "buckets": [{"value": "a", "count": 2}, {"value": "b", "count": 1}], "used_index": false},
                {"field": "tags", "buckets": [], "used_index": false},
            ],
            "group_by": "kind",
            "groups": [{"value": "a", "count": 2, "metrics": [
                {"op": "count", "value": 2}, {"op": "avg", "value": 1.5, "field": "id"}]}],
        })
    );
    assert!(plan.assemble(vec![]).is_err());
}

#[test]
fn aggregate_refusals() {
    let err =
        |extra: Json| aggregate(Dialect::Sqlite, &doc(), &catalog(), &request(extra)).unwrap_err();
    assert_eq!(err(json!({})).code, ErrorCode::QueryError);
    assert_eq!(
        err(json!({"facets": [{"field": "kind", "limit": 0}]})).message,
        "facet limit must be a positive int"
    );
    assert_eq!(
        err(json!({"metrics": [{"op": "median", "field": "id"}]})).message,
        "metric op must be count, min, max, sum or avg"
    );
    let any = err(json!({"facets": [{"field": "any"}]}));
    assert_eq!(any.code, ErrorCode::DialectError);
    assert_eq!(
        any.message,
        "sqlite cannot aggregate or facet the JSON-stored field 'any'"
    );
    let vector = err(json!({"metrics": [{"op": "count"}],
        "vector": {"field": "score", "query": [1.0], "metric": "cosine"}}));
    assert_eq!(vector.code, ErrorCode::BackendCapabilityError);
}

fn ranked(dialect: Dialect, text_search: Json, extra: Json) -> aura_sql::Statement {
    let mut ir = json!({"operation": "select", "model": "Doc", "text_search": text_search,
        "filters": [{"kind": "compare", "op": "eq",
            "left": {"kind": "field", "model": "Doc", "field": "kind"},
            "right": {"kind": "literal", "value": "x'; DROP TABLE Doc; --"}}]});
    if let (Some(base), Some(more)) = (ir.as_object_mut(), extra.as_object()) {
        base.extend(more.clone());
    }
    let Request::Select(q) = Request::from_json(ir).unwrap() else {
        panic!("not a select")
    };
    select_ranked(dialect, &doc(), &q).unwrap()
}

#[test]
fn ranked_select_per_dialect() {
    let ts = json!({"field": "body", "query": "Vector, index!", "operator": "and"});
    let extra = json!({"sort": [{"field": "kind", "direction": "desc"}], "limit": 5, "offset": 2});
    let sqlite = ranked(Dialect::Sqlite, ts.clone(), extra.clone());
    assert_eq!(
        sqlite.sql,
        r#"SELECT "id", "kind", "score", "body", "tags", "any", "flag", "__aura_hits"."__aura_score" AS "__aura_score" FROM "Doc" JOIN (SELECT rowid AS "__aura_rowid", -bm25("Doc__fts_body") AS "__aura_score" FROM "Doc__fts_body" WHERE "Doc__fts_body" MATCH ?) AS "__aura_hits" ON "Doc".rowid = "__aura_hits"."__aura_rowid" WHERE (TRUE) AND ("kind" = ?) ORDER BY "__aura_score" DESC, "kind" DESC, "id" ASC LIMIT ? OFFSET ?"#
    );
    assert_eq!(
        sqlite.params,
        [
            SqlValue::Text(r#""vector" AND "index""#.into()),
            SqlValue::Text("x'; DROP TABLE Doc; --".into()),
            SqlValue::Int(5),
            SqlValue::Int(2),
        ]
    );
    let pg = ranked(Dialect::Postgres, ts.clone(), json!({}));
    assert_eq!(
        pg.sql,
        r#"SELECT "id", "kind", "score", "body", "tags", "any", "flag", ts_rank_cd(to_tsvector('simple', coalesce("body", '')), to_tsquery('simple', $1)) AS "__aura_score" FROM "Doc" WHERE (to_tsvector('simple', coalesce("body", '')) @@ to_tsquery('simple', $2)) AND ("kind" = $3) ORDER BY "__aura_score" DESC, "id" ASC"#
    );
    assert_eq!(pg.params[0], SqlValue::Text("'vector' & 'index'".into()));
    let my = ranked(Dialect::Mysql, ts, json!({}));
    assert_eq!(
        my.sql,
        "SELECT `id`, `kind`, `score`, `body`, `tags`, `any`, `flag`, MATCH (`body`) AGAINST (? IN NATURAL LANGUAGE MODE) AS `__aura_score` FROM `Doc` WHERE (MATCH (`body`) AGAINST (? IN BOOLEAN MODE)) AND (`kind` = ?) ORDER BY `__aura_score` DESC, `id` ASC"
    );
    assert_eq!(
        my.params[..2],
        [
            SqlValue::Text("vector index".into()),
            SqlValue::Text("+vector +index".into())
        ]
    );
    let or = ranked(
        Dialect::Mysql,
        json!({"field": "body", "query": "a b a"}),
        json!({}),
    );
    assert_eq!(or.params[1], SqlValue::Text("a b".into()));
}

#[test]
fn ranked_select_refusals() {
    let fail = |dialect: Dialect, ts: Json| {
        let ir = json!({"operation": "select", "model": "Doc", "text_search": ts});
        let Request::Select(q) = Request::from_json(ir).unwrap() else {
            panic!("not a select")
        };
        select_ranked(dialect, &doc(), &q).unwrap_err()
    };
    let k1 = fail(
        Dialect::Sqlite,
        json!({"field": "body", "query": "a", "k1": 2.0}),
    );
    assert_eq!(k1.code, ErrorCode::BackendCapabilityError);
    let pg_b = fail(
        Dialect::Postgres,
        json!({"field": "body", "query": "a", "b": 0.75}),
    );
    assert_eq!(pg_b.code, ErrorCode::BackendCapabilityError);
    let tf = fail(
        Dialect::Mysql,
        json!({"field": "body", "query": "a", "rank": "term_frequency"}),
    );
    assert_eq!(tf.code, ErrorCode::BackendCapabilityError);
    let plain = fail(Dialect::Sqlite, json!({"field": "kind", "query": "a"}));
    assert_eq!(plain.code, ErrorCode::DialectError);
}

#[test]
fn full_text_ddl_per_dialect() {
    let schema = doc();
    let body = &schema.fields[3];
    let sqlite = create_full_text(Dialect::Sqlite, &schema, body).unwrap();
    assert_eq!(
        sqlite,
        [
            r#"CREATE VIRTUAL TABLE IF NOT EXISTS "Doc__fts_body" USING fts5("body", content="Doc", content_rowid='rowid', tokenize='unicode61 remove_diacritics 0')"#,
            r#"CREATE TRIGGER IF NOT EXISTS "Doc__fts_body_ai" AFTER INSERT ON "Doc" BEGIN INSERT INTO "Doc__fts_body"(rowid, "body") VALUES (new.rowid, new."body"); END"#,
            r#"CREATE TRIGGER IF NOT EXISTS "Doc__fts_body_ad" AFTER DELETE ON "Doc" BEGIN INSERT INTO "Doc__fts_body"("Doc__fts_body", rowid, "body") VALUES ('delete', old.rowid, old."body"); END"#,
            r#"CREATE TRIGGER IF NOT EXISTS "Doc__fts_body_au" AFTER UPDATE ON "Doc" BEGIN INSERT INTO "Doc__fts_body"("Doc__fts_body", rowid, "body") VALUES ('delete', old.rowid, old."body"); INSERT INTO "Doc__fts_body"(rowid, "body") VALUES (new.rowid, new."body"); END"#,
        ]
    );
    assert_eq!(
        create_full_text(Dialect::Postgres, &schema, body).unwrap(),
        [
            r#"CREATE INDEX IF NOT EXISTS "ftx_Doc_body" ON "Doc" USING GIN (to_tsvector('simple', coalesce("body", '')))"#
        ]
    );
    assert_eq!(
        create_full_text(Dialect::Mysql, &schema, body).unwrap(),
        ["ALTER TABLE `Doc` ADD FULLTEXT INDEX `ftx_Doc_body` (`body`)"]
    );
}

#[test]
fn introspection_binds_the_table_name() {
    for dialect in [Dialect::Sqlite, Dialect::Postgres, Dialect::Mysql] {
        let q = introspect(dialect, "Doc'; --");
        assert_eq!(q.columns.params, [SqlValue::Text("Doc'; --".into())]);
        assert_eq!(q.indexes.params, [SqlValue::Text("Doc'; --".into())]);
        assert!(!q.columns.sql.contains("Doc'"));
    }
    let my = introspect(Dialect::Mysql, "Doc");
    assert_eq!(
        my.columns.sql,
        "SELECT COLUMN_NAME, COLUMN_TYPE, IF(IS_NULLABLE = 'NO', 1, 0), IF(COLUMN_KEY = 'PRI', 1, 0) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ? ORDER BY ORDINAL_POSITION"
    );
    assert_eq!(my.full_text.params, [SqlValue::Text("ftx!_Doc!_%".into())]);
    let pg = introspect(Dialect::Postgres, "Doc");
    assert_eq!(
        pg.full_text.sql,
        "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() AND indexname LIKE $1 ESCAPE '!' ORDER BY indexname"
    );
    let s = |t: &str| Value::str(t);
    let live = LiveTable::read(
        Dialect::Postgres,
        "Doc",
        &[vec![s("id"), s("bigint"), Value::Int(1), Value::Int(1)]],
        &[
            vec![s("u_ab"), Value::Int(1), s("a")],
            vec![s("u_ab"), Value::Int(1), s("b")],
        ],
        &[vec![s("ftx_Doc_body")]],
    )
    .unwrap();
    assert_eq!(live.indexes[0].columns, ["a", "b"]);
    assert_eq!(live.full_text, ["body"]);
    assert!(LiveTable::read(Dialect::Sqlite, "Doc", &[], &[], &[]).is_none());
}

#[test]
fn tables_declare_their_full_text_indexes() {
    let mut schema = doc();
    schema.fields[1].index = true;
    let catalog = catalog();
    let mysql = aura_sql::create_table(Dialect::Mysql, &schema, &catalog).unwrap();
    assert_eq!(mysql.len(), 1, "one idempotent CREATE TABLE on MySQL");
    assert!(mysql[0].starts_with("CREATE TABLE IF NOT EXISTS `Doc` ("));
    assert!(mysql[0]
        .ends_with(", INDEX `idx_Doc_kind` (`kind`), FULLTEXT INDEX `ftx_Doc_body` (`body`))"));
    let pg = aura_sql::create_table(Dialect::Postgres, &schema, &catalog).unwrap();
    assert_eq!(
        pg[1..],
        [
            r#"CREATE INDEX IF NOT EXISTS "idx_Doc_kind" ON "Doc" ("kind")"#,
            r#"CREATE INDEX IF NOT EXISTS "ftx_Doc_body" ON "Doc" USING GIN (to_tsvector('simple', coalesce("body", '')))"#,
        ]
    );
    // SQLite's FTS5 tables are the driver's (external content + triggers).
    assert_eq!(
        aura_sql::create_table(Dialect::Sqlite, &schema, &catalog)
            .unwrap()
            .len(),
        2
    );
}

#[test]
fn live_column_types_match_what_the_tables_declare() {
    let schema = doc();
    let catalog = catalog();
    let (id, kind) = (&schema.fields[0], &schema.fields[1]);
    let matches = |dialect, field, live| {
        aura_sql::column_type_matches(dialect, &schema, &catalog, field, live)
    };
    assert!(matches(Dialect::Postgres, kind, "text"));
    assert!(matches(Dialect::Postgres, id, "bigint"));
    assert!(!matches(Dialect::Postgres, id, "integer"));
    assert!(matches(Dialect::Mysql, id, "bigint"));
    assert!(matches(Dialect::Mysql, id, "bigint(20)"));
    assert!(!matches(Dialect::Mysql, id, "bigint(x)"));
    assert!(matches(Dialect::Mysql, kind, "longtext"));
    assert!(!matches(Dialect::Mysql, kind, "varchar(255)"));
    assert!(matches(Dialect::Sqlite, id, "INTEGER"));
}
