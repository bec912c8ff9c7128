//! Aggregations, ranked full-text search and schema introspection: the
//! statements `aura-sql` compiles for them, run on one snapshot.

use aura_core::ir::Select;
use aura_core::{ModelSchema, Result, Row, Value};
use aura_sql::{decode, decode_untyped, Dialect, LiveTable, Statement};
use serde_json::Value as Json;

use crate::read::{load_includes, Fetched};
use crate::session::{params, raw_ref, read_row, Session};

const SQLITE: Dialect = Dialect::Sqlite;

impl Session {
    /// Every row of `stmt`, each column decoded by `decode_column`.
    fn table(
        &self,
        stmt: &Statement,
        decode_column: impl Fn(usize, aura_sql::SqlRef<'_>) -> Result<Value>,
    ) -> Result<Vec<Vec<Value>>> {
        let mut prepared = self
            .conn
            .prepare_cached(&stmt.sql)
            .map_err(|e| self.error(e))?;
        let width = prepared.column_count();
        let mut rows = prepared
            .query(params(&stmt.params))
            .map_err(|e| self.error(e))?;
        let mut out = Vec::new();
        while let Some(row) = rows.next().map_err(|e| self.error(e))? {
            let mut values = Vec::with_capacity(width);
            for i in 0..width {
                let raw = row.get_ref(i).map_err(|e| self.error(e))?;
                values.push(decode_column(i, raw_ref(raw)?)?);
            }
            out.push(values);
        }
        Ok(out)
    }
}

/// The `AggregateResult` dict of an aggregate request (API.md §4.3).
pub fn aggregate(session: &mut Session, q: &Select) -> Result<Json> {
    let schema = session.schema(&q.model)?;
    let catalog = session.shared.catalog.read().clone();
    let plan = aura_sql::aggregate(SQLITE, &schema, &catalog, q)?;
    session.with_deadline(q.timeout_ms, |s| {
        s.read(|s| {
            let mut results = Vec::with_capacity(plan.statements.len());
            for part in &plan.statements {
                results.push(s.table(&part.statement, |i, raw| match part.kinds.get(i) {
                    Some(kind) => decode(*kind, raw),
                    None => Ok(decode_untyped(raw)),
                })?);
            }
            plan.assemble(results)
        })
    })
}

/// A `search_text` select: rows in score order with their scores.
pub fn select_ranked(session: &mut Session, q: &Select) -> Result<Vec<(Fetched, f64)>> {
    let schema = session.schema(&q.model)?;
    let stmt = aura_sql::select_ranked(SQLITE, &schema, q)?;
    session.with_deadline(q.timeout_ms, |s| {
        s.read(|s| {
            let (rows, scores) = ranked_rows(s, &schema, &stmt)?;
            let mut fetched: Vec<Fetched> = rows
                .into_iter()
                .map(|row| Fetched {
                    row,
                    includes: Vec::with_capacity(q.include.len()),
                })
                .collect();
            load_includes(s, &schema, q, &mut fetched)?;
            Ok(fetched.into_iter().zip(scores).collect())
        })
    })
}

fn untyped(_: usize, raw: aura_sql::SqlRef<'_>) -> Result<Value> {
    Ok(decode_untyped(raw))
}

fn ranked_rows(
    session: &Session,
    schema: &ModelSchema,
    stmt: &Statement,
) -> Result<(Vec<Row>, Vec<f64>)> {
    let mut prepared = session
        .conn
        .prepare_cached(&stmt.sql)
        .map_err(|e| session.error(e))?;
    let mut rows = prepared
        .query(params(&stmt.params))
        .map_err(|e| session.error(e))?;
    let score_at = schema.fields.len();
    let (mut out, mut scores) = (Vec::new(), Vec::new());
    while let Some(row) = rows.next().map_err(|e| session.error(e))? {
        out.push(read_row(schema, row)?);
        let score = row
            .get::<_, Option<f64>>(score_at)
            .map_err(|e| session.error(e))?;
        scores.push(score.unwrap_or(0.0));
    }
    Ok((out, scores))
}

/// The live shape of each named table (`None`: no such table).
pub fn describe(session: &mut Session, tables: &[String]) -> Result<Vec<Option<LiveTable>>> {
    session.read(|s| {
        tables
            .iter()
            .map(|table| {
                let q = aura_sql::introspect(SQLITE, table);
                let columns = s.table(&q.columns, untyped)?;
                let indexes = s.table(&q.indexes, untyped)?;
                let full_text = s.table(&q.full_text, untyped)?;
                Ok(LiveTable::read(
                    SQLITE, table, &columns, &indexes, &full_text,
                ))
            })
            .collect()
    })
}
