//! Reads: select (with `.include()` loaded one query per relationship
//! level), count, exists, raw statements and explain.

use aura_core::ir::{Filtered, Include, Select};
use aura_core::{Error, ModelSchema, Result, Value};
use aura_sql::exec::IncludeLevel;
use aura_sql::{Chunker, Dialect, Relation, SqlValue};
use serde_json::Value as Json;

use crate::session::{params, raw_ref, Session};

const SQLITE: Dialect = Dialect::Sqlite;
/// Keys per `IN (...)` list (SQLite allows 32766 parameters).
const KEYS_PER_QUERY: usize = 10_000;

/// Result rows are the shared executor's (one definition for every SQL driver).
pub use aura_sql::{Fetched, Loaded};

pub fn select(session: &mut Session, q: &Select) -> Result<Vec<Fetched>> {
    let schema = session.schema(&q.model)?;
    let stmt = aura_sql::select(SQLITE, &schema, q)?;
    session.with_deadline(q.timeout_ms, |s| {
        s.read(|s| {
            let rows = s.rows(&schema, &stmt)?;
            let mut fetched: Vec<Fetched> = rows
                .into_iter()
                .map(|row| Fetched {
                    row,
                    includes: Vec::with_capacity(q.include.len()),
                })
                .collect();
            load_includes(s, &schema, q, &mut fetched)?;
            Ok(fetched)
        })
    })
}

/// A select whose full chunks of `chunk` rows are handed to `sink` as they
/// are decoded, so the caller can convert one chunk while the next is read;
/// the rest (every row, for small results and selects with includes) is
/// returned.
pub fn select_chunked(
    session: &mut Session,
    q: &Select,
    chunk: usize,
    sink: &mut dyn FnMut(Vec<Fetched>),
) -> Result<Vec<Fetched>> {
    if !q.include.is_empty() {
        return select(session, q);
    }
    let schema = session.schema(&q.model)?;
    let stmt = aura_sql::select(SQLITE, &schema, q)?;
    session.with_deadline(q.timeout_ms, |s| {
        let mut prepared = s.conn.prepare_cached(&stmt.sql).map_err(|e| s.error(e))?;
        let mut rows = prepared
            .query(params(&stmt.params))
            .map_err(|e| s.error(e))?;
        let mut out = Chunker::new(chunk, &mut *sink);
        while let Some(row) = rows.next().map_err(|e| s.error(e))? {
            out.push(Fetched::plain(crate::session::read_row(&schema, row)?));
        }
        Ok(out.rest())
    })
}

/// Loads every `.include()` of `q` into `fetched`, one query per level.
pub(crate) fn load_includes(
    session: &Session,
    schema: &ModelSchema,
    q: &Select,
    fetched: &mut [Fetched],
) -> Result<()> {
    let relations = q
        .include
        .iter()
        .map(|inc| Relation::resolve(&session.shared.catalog.read(), schema, &inc.link))
        .collect::<Result<Vec<_>>>()?;
    for (relation, include) in relations.iter().zip(&q.include) {
        load(session, schema, relation, include, fetched)?;
    }
    Ok(())
}

/// Loads one include for every fetched row: a single query per level.
fn load(
    session: &Session,
    schema: &ModelSchema,
    relation: &Relation,
    include: &Include,
    fetched: &mut [Fetched],
) -> Result<()> {
    let target = session.schema(relation.target())?;
    let level = IncludeLevel::new(schema, &target, relation, include, fetched)?;
    let mut rows = Vec::new();
    for stmt in level.statements(SQLITE, KEYS_PER_QUERY)? {
        rows.extend(session.rows(level.target(), &stmt)?);
    }
    level.attach(fetched, rows);
    Ok(())
}

pub fn count(session: &mut Session, q: &Filtered) -> Result<u64> {
    let schema = session.schema(&q.model)?;
    let stmt = aura_sql::count(SQLITE, &schema, q)?;
    session.with_deadline(q.timeout_ms, |s| Ok(s.scalar(&stmt)?.max(0) as u64))
}

pub fn exists(session: &mut Session, q: &Filtered) -> Result<bool> {
    let schema = session.schema(&q.model)?;
    let stmt = aura_sql::exists(SQLITE, &schema, q)?;
    session.with_deadline(q.timeout_ms, |s| Ok(s.scalar(&stmt)? != 0))
}

/// Raw rows: column names and values as SQLite returns them.
pub type RawRows = (Vec<String>, Vec<Vec<Value>>);

fn json_param(value: &Json) -> SqlValue {
    match value {
        Json::Null => SqlValue::Null,
        Json::Bool(b) => SqlValue::Int(i64::from(*b)),
        Json::Number(n) => match n.as_i64() {
            Some(i) => SqlValue::Int(i),
            None => SqlValue::Float(n.as_f64().unwrap_or(f64::NAN)),
        },
        Json::String(s) => SqlValue::Text(s.clone()),
        other => SqlValue::Text(other.to_string()),
    }
}

/// Binds `:name` (also `@name`, `$name`) parameters from a dict, or `?`
/// parameters from a list, in place.
fn bind_raw(session: &Session, stmt: &mut rusqlite::Statement<'_>, params: &Json) -> Result<()> {
    match params {
        Json::Null => Ok(()),
        Json::Object(map) => {
            for (name, value) in map {
                let index = [":", "@", "$"]
                    .iter()
                    .find_map(|p| stmt.parameter_index(&format!("{p}{name}")).ok().flatten())
                    .ok_or_else(|| {
                        Error::query(format!(
                            "raw() parameter ':{name}' does not appear in the statement"
                        ))
                        .with_context("param", name.as_str())
                    })?;
                stmt.raw_bind_parameter(index, crate::session::OwnedParam(json_param(value)))
                    .map_err(|e| session.error(e))?;
            }
            Ok(())
        }
        Json::Array(items) => {
            for (i, value) in items.iter().enumerate() {
                stmt.raw_bind_parameter(i + 1, crate::session::OwnedParam(json_param(value)))
                    .map_err(|e| session.error(e))?;
            }
            Ok(())
        }
        _ => Err(Error::query("raw() params must be a dict or a list")),
    }
}

/// `raw()`: one statement, parameters always bound. A statement that
/// writes runs as a writer (atomically, under the writer lock).
pub fn raw(session: &mut Session, statement: &str, params: &Json) -> Result<RawRows> {
    let readonly = {
        let stmt = session
            .conn
            .prepare(statement)
            .map_err(|e| session.error(e))?;
        stmt.readonly()
    };
    let run = |s: &mut Session| -> Result<RawRows> {
        let mut stmt = s.conn.prepare(statement).map_err(|e| s.error(e))?;
        bind_raw(s, &mut stmt, params)?;
        let names: Vec<String> = stmt
            .column_names()
            .iter()
            .map(|n| (*n).to_owned())
            .collect();
        let mut rows = stmt.raw_query();
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| s.error(e))? {
            let mut values = Vec::with_capacity(names.len());
            for i in 0..names.len() {
                let raw = row.get_ref(i).map_err(|e| s.error(e))?;
                values.push(aura_sql::decode_untyped(raw_ref(raw)?));
            }
            out.push(values);
        }
        Ok((names, out))
    };
    if readonly {
        run(session)
    } else {
        session.write(run)
    }
}

/// The SQL a select compiles to and SQLite's query plan for it (the
/// `detail` column of `EXPLAIN QUERY PLAN`).
pub fn explain(session: &Session, q: &Select) -> Result<(String, Vec<String>)> {
    let schema = session.schema(&q.model)?;
    let stmt = match q.text_search {
        Some(_) => aura_sql::select_ranked(SQLITE, &schema, q)?,
        None => aura_sql::select(SQLITE, &schema, q)?,
    };
    let mut prepared = session
        .conn
        .prepare(&format!("EXPLAIN QUERY PLAN {}", stmt.sql))
        .map_err(|e| session.error(e))?;
    let details = prepared
        .query_map(params(&stmt.params), |row| row.get::<_, String>(3))
        .map_err(|e| session.error(e))?
        .collect::<rusqlite::Result<Vec<_>>>()
        .map_err(|e| session.error(e))?;
    Ok((stmt.sql, details))
}
