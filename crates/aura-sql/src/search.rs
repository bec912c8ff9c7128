//! Ranked full-text search (`search_text`) for fields declared
//! `full_text=True`: the index DDL and the ranked select of each dialect.
//!
//! - SQLite: one FTS5 external-content table per field (`<Model>__fts_<field>`,
//!   tokenizer `unicode61 remove_diacritics 0`), kept current by triggers;
//!   score = `-bm25()` (FTS5 returns lower-is-better).
//! - PostgreSQL: a GIN index on `to_tsvector('simple', coalesce(field, ''))`;
//!   score = `ts_rank_cd` of that expression against a `to_tsquery`.
//! - MySQL/MariaDB: a `FULLTEXT` index; candidates by `MATCH ... AGAINST` in
//!   boolean mode (so `operator="and"` can require every term), score by
//!   `MATCH ... AGAINST` in natural language mode.
//!
//! Query terms are the distinct tokens of API.md §5.2 (`aura_core::text`),
//! always bound as one parameter in each dialect's query syntax. How the
//! scores differ from the memory engine's BM25: docs/sql-search.md.

use aura_core::ir::{Select, TextSearch};
use aura_core::text::{distinct, tokens};
use aura_core::{Error, FieldDef, FieldKind, ModelSchema, Result};

use crate::codec::SqlValue;
use crate::dialect::{dialect_error, Dialect};
use crate::filter;
use crate::query::{check_clauses, columns, order_by, pk_storage, projection_mask, window};
use crate::sql::{Sql, Statement};

/// BM25 parameters FTS5's `bm25()` uses (it has no way to change them).
const FTS5_K1: f64 = 1.2;
const FTS5_B: f64 = 0.75;

/// Alias of the score column a ranked select appends after the fields.
pub const SCORE_COLUMN: &str = "__aura_score";

/// The FTS5 table indexing `field` of `schema` (SQLite).
pub fn fts_table(schema: &ModelSchema, field: &FieldDef) -> String {
    format!("{}__fts_{}", schema.name, field.storage)
}

/// Fields with a full-text index.
pub fn full_text_fields(schema: &ModelSchema) -> impl Iterator<Item = &FieldDef> {
    schema.fields.iter().filter(|f| f.full_text)
}

fn index_name(schema: &ModelSchema, field: &FieldDef) -> String {
    format!("ftx_{}_{}", schema.name, field.storage)
}

/// The statements creating the full-text index of one field, in order.
/// SQLite: the FTS5 table and its triggers; `populate` (below) fills a
/// table that did not exist before. PostgreSQL/MySQL: the index.
pub fn create_full_text(
    dialect: Dialect,
    schema: &ModelSchema,
    field: &FieldDef,
) -> Result<Vec<String>> {
    let table = dialect.quote(&schema.name)?;
    let column = dialect.quote(&field.storage)?;
    Ok(match dialect {
        Dialect::Sqlite => sqlite_fts(schema, field, &table, &column)?,
        Dialect::Postgres => vec![format!(
            "CREATE INDEX IF NOT EXISTS {} ON {table} USING GIN ({})",
            dialect.quote(&index_name(schema, field))?,
            pg_vector(&column)
        )],
        Dialect::Mysql => vec![format!(
            "ALTER TABLE {table} ADD {}",
            mysql_full_text(schema, field)?
        )],
    })
}

/// MySQL: the FULLTEXT index of a field as a table element (`CREATE
/// TABLE` declares it, so re-creating the table is a no-op).
pub(crate) fn mysql_full_text(schema: &ModelSchema, field: &FieldDef) -> Result<String> {
    Ok(format!(
        "FULLTEXT INDEX {} ({})",
        Dialect::Mysql.quote(&index_name(schema, field))?,
        Dialect::Mysql.quote(&field.storage)?
    ))
}

fn sqlite_fts(
    schema: &ModelSchema,
    field: &FieldDef,
    table: &str,
    column: &str,
) -> Result<Vec<String>> {
    let name = fts_table(schema, field);
    let fts = Dialect::Sqlite.quote(&name)?;
    let trigger = |suffix: &str| Dialect::Sqlite.quote(&format!("{name}_{suffix}"));
    // Every row is a document (a null is an empty one): an external-content
    // FTS5 table must index exactly the rows of its content table, or its
    // deletes and integrity checks go wrong.
    let add = |row: &str| {
        format!("INSERT INTO {fts}(rowid, {column}) VALUES ({row}.rowid, {row}.{column});")
    };
    let remove = |row: &str| {
        format!(
            "INSERT INTO {fts}({fts}, rowid, {column}) VALUES ('delete', {row}.rowid, {row}.{column});"
        )
    };
    Ok(vec![
        format!(
            "CREATE VIRTUAL TABLE IF NOT EXISTS {fts} USING fts5({column}, content={table}, \
             content_rowid='rowid', tokenize='unicode61 remove_diacritics 0')"
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {} AFTER INSERT ON {table} BEGIN {} END",
            trigger("ai")?,
            add("new")
        ),
        format!(
            "CREATE TRIGGER IF NOT EXISTS {} AFTER DELETE ON {table} BEGIN {} END",
            trigger("ad")?,
            remove("old")
        ),
        // Any column: an update of an INTEGER PRIMARY KEY moves the rowid.
        format!(
            "CREATE TRIGGER IF NOT EXISTS {} AFTER UPDATE ON {table} BEGIN {} {} END",
            trigger("au")?,
            remove("old"),
            add("new")
        ),
    ])
}

/// SQLite: fills a newly created FTS5 table from the rows already stored.
pub fn populate_fts(schema: &ModelSchema, field: &FieldDef) -> Result<String> {
    let fts = Dialect::Sqlite.quote(&fts_table(schema, field))?;
    Ok(format!("INSERT INTO {fts}({fts}) VALUES ('rebuild')"))
}

/// SQLite: drops the FTS5 table of a field (its triggers go with the table).
pub fn drop_fts(schema: &ModelSchema, field: &FieldDef) -> Result<String> {
    Ok(format!(
        "DROP TABLE IF EXISTS {}",
        Dialect::Sqlite.quote(&fts_table(schema, field))?
    ))
}

fn pg_vector(column: &str) -> String {
    format!("to_tsvector('simple', coalesce({column}, ''))")
}

/// A `search_text` clause checked against what the dialect can rank.
struct Spec<'a> {
    field: &'a FieldDef,
    terms: Vec<String>,
    all: bool,
}

fn unsupported(dialect: Dialect, what: &str) -> Error {
    Error::capability(dialect.backend(), "full_text_search", what)
}

fn spec<'s>(dialect: Dialect, schema: &'s ModelSchema, ts: &TextSearch) -> Result<Spec<'s>> {
    let field = filter::resolve_field(schema, &ts.field, None)?;
    if !field.path.is_empty() || !field.field.full_text || field.field.kind != FieldKind::Str {
        return Err(dialect_error(
            dialect,
            format!(
                "{} ranks full-text search only on str fields declared full_text=True ({}.{} is not)",
                dialect.backend(),
                schema.name,
                ts.field
            ),
        ));
    }
    if ts.rank != "bm25" {
        return Err(unsupported(dialect, "term_frequency ranking"));
    }
    let all = match ts.operator.as_str() {
        "or" => false,
        "and" => true,
        _ => return Err(Error::query("search_text operator must be 'or' or 'and'")),
    };
    check_parameters(dialect, ts)?;
    Ok(Spec {
        field: field.field,
        terms: distinct(&tokens(&ts.query)),
        all,
    })
}

/// BM25 `k1`/`b`: FTS5 runs the defaults only; PostgreSQL and MySQL do not
/// rank by BM25 at all, so any explicit value is refused (never ignored).
fn check_parameters(dialect: Dialect, ts: &TextSearch) -> Result<()> {
    let fixed = match dialect {
        Dialect::Sqlite => ts.k1.is_none_or(|k| k == FTS5_K1) && ts.b.is_none_or(|b| b == FTS5_B),
        Dialect::Postgres | Dialect::Mysql => ts.k1.is_none() && ts.b.is_none(),
    };
    if fixed {
        Ok(())
    } else {
        Err(unsupported(dialect, "BM25 parameters k1/b"))
    }
}

/// The query text in the dialect's full-text syntax (terms are runs of
/// alphanumerics, quoted anyway).
fn match_query(dialect: Dialect, terms: &[String], all: bool, boolean: bool) -> String {
    match dialect {
        Dialect::Sqlite => {
            let quoted: Vec<String> = terms
                .iter()
                .map(|t| format!("\"{}\"", t.replace('"', "\"\"")))
                .collect();
            quoted.join(if all { " AND " } else { " OR " })
        }
        Dialect::Postgres => {
            let quoted: Vec<String> = terms
                .iter()
                .map(|t| format!("'{}'", t.replace('\\', "\\\\").replace('\'', "''")))
                .collect();
            quoted.join(if all { " & " } else { " | " })
        }
        Dialect::Mysql if boolean && all => terms
            .iter()
            .map(|t| format!("+{t}"))
            .collect::<Vec<_>>()
            .join(" "),
        Dialect::Mysql => terms.join(" "),
    }
}

/// The predicate "row is a candidate of the search" (any or every term).
fn push_candidate(sql: &mut Sql, schema: &ModelSchema, spec: &Spec<'_>) -> Result<()> {
    if spec.terms.is_empty() {
        // A query without a single token matches nothing (as in memory).
        sql.push("1 = 0");
        return Ok(());
    }
    let dialect = sql.dialect;
    let column = dialect.quote(&spec.field.storage)?;
    let query = SqlValue::Text(match_query(dialect, &spec.terms, spec.all, true));
    match dialect {
        Dialect::Sqlite => {
            let fts = dialect.quote(&fts_table(schema, spec.field))?;
            sql.ident(&schema.name)?
                .push(".rowid IN (SELECT rowid FROM ")
                .push(&fts)
                .push(" WHERE ")
                .push(&fts)
                .push(" MATCH ")
                .bind(query)
                .push(")");
        }
        Dialect::Postgres => {
            sql.push(&pg_vector(&column))
                .push(" @@ to_tsquery('simple', ")
                .bind(query)
                .push(")");
        }
        Dialect::Mysql => {
            sql.push("MATCH (")
                .push(&column)
                .push(") AGAINST (")
                .bind(query)
                .push(" IN BOOLEAN MODE)");
        }
    }
    Ok(())
}

/// Appends `AND <candidate predicate>` for a search-scoped aggregate.
pub(crate) fn and_candidate(sql: &mut Sql, schema: &ModelSchema, ts: &TextSearch) -> Result<()> {
    let spec = spec(sql.dialect, schema, ts)?;
    sql.push(" AND (");
    push_candidate(sql, schema, &spec)?;
    sql.push(")");
    Ok(())
}

/// The ranked select of a `search_text` query: the row's fields in order
/// (projected-out fields as NULL), then the score (higher is better).
/// Order: score desc, the query's `order_by`, then the primary key.
pub fn select_ranked(dialect: Dialect, schema: &ModelSchema, q: &Select) -> Result<Statement> {
    let ts = q.text_search.as_ref().ok_or_else(|| {
        Error::query("a ranked select needs a search_text clause").with_context("model", &*q.model)
    })?;
    let mut plain = q.clone();
    plain.text_search = None;
    check_clauses(dialect, &plain)?;
    let spec = spec(dialect, schema, ts)?;
    pk_storage(schema)?;
    let mask = projection_mask(schema, &q.projection)?;
    let mut sql = Sql::new(dialect);
    sql.push("SELECT ");
    columns(&mut sql, schema, mask.as_deref())?;
    sql.push(", ");
    push_score(&mut sql, schema, &spec)?;
    sql.push(" WHERE (");
    if dialect == Dialect::Sqlite && !spec.terms.is_empty() {
        // The join with the FTS5 hits already keeps only candidates.
        sql.push("TRUE");
    } else {
        push_candidate(&mut sql, schema, &spec)?;
    }
    sql.push(") AND (");
    filter::compile(&mut sql, schema, &q.filters)?;
    sql.push(")");
    sql.push(" ORDER BY ").ident(SCORE_COLUMN)?.push(" DESC");
    let mut rest = Sql::new(dialect);
    order_by(&mut rest, schema, &q.sort)?;
    let rest = rest.finish().sql;
    sql.push(&rest.replacen(" ORDER BY ", ", ", 1));
    window(&mut sql, q.limit, q.offset);
    Ok(sql.finish())
}

/// `<score> AS __aura_score FROM <table> ...` (SQLite joins the FTS5 hits).
fn push_score(sql: &mut Sql, schema: &ModelSchema, spec: &Spec<'_>) -> Result<()> {
    let dialect = sql.dialect;
    let column = dialect.quote(&spec.field.storage)?;
    let score = dialect.quote(SCORE_COLUMN)?;
    match dialect {
        Dialect::Sqlite => {
            if spec.terms.is_empty() {
                sql.push("0.0 AS ").push(&score).push(" FROM ");
                sql.ident(&schema.name)?;
                return Ok(());
            }
            let fts = dialect.quote(&fts_table(schema, spec.field))?;
            let hits = dialect.quote("__aura_hits")?;
            let rowid = dialect.quote("__aura_rowid")?;
            sql.push(&hits)
                .push(".")
                .push(&score)
                .push(" AS ")
                .push(&score);
            sql.push(" FROM ")
                .ident(&schema.name)?
                .push(" JOIN (SELECT rowid AS ");
            sql.push(&rowid)
                .push(", -bm25(")
                .push(&fts)
                .push(") AS ")
                .push(&score);
            sql.push(" FROM ")
                .push(&fts)
                .push(" WHERE ")
                .push(&fts)
                .push(" MATCH ");
            let query = match_query(dialect, &spec.terms, spec.all, false);
            sql.bind(SqlValue::Text(query)).push(") AS ").push(&hits);
            sql.push(" ON ").ident(&schema.name)?.push(".rowid = ");
            sql.push(&hits).push(".").push(&rowid);
        }
        Dialect::Postgres => {
            let query = match_query(dialect, &spec.terms, spec.all, false);
            sql.push("ts_rank_cd(").push(&pg_vector(&column));
            sql.push(", to_tsquery('simple', ")
                .bind(SqlValue::Text(query));
            sql.push(")) AS ")
                .push(&score)
                .push(" FROM ")
                .ident(&schema.name)?;
        }
        Dialect::Mysql => {
            let query = match_query(dialect, &spec.terms, spec.all, false);
            sql.push("MATCH (").push(&column).push(") AGAINST (");
            sql.bind(SqlValue::Text(query))
                .push(" IN NATURAL LANGUAGE MODE) AS ");
            sql.push(&score).push(" FROM ").ident(&schema.name)?;
        }
    }
    Ok(())
}
