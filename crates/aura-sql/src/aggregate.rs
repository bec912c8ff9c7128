//! Aggregations and facets (API.md §4.3, plus `sum`/`avg`/`group_by` of
//! ARCHITECTURE.md) compiled to SQL with the memory engine's answers:
//!
//! - metrics look at numbers only: `min`/`max`/`sum`/`avg` of a bool,
//!   text or container field are `null` (SQL `NULL`), never a text min;
//! - `avg` is a float; `sum` of an int field is an int (an i64 overflow is
//!   an error in SQL, where the memory engine falls back to a float);
//! - facet buckets and groups skip nulls and are ordered by count
//!   descending, then value ascending in code-point order (PostgreSQL
//!   compares text with `COLLATE "C"`), at most `limit` (default 10);
//! - the matched set is the filtered rows, or the full-text candidates when
//!   the query has a `search_text` clause (`search_scoped`, `scanned` = the
//!   filtered rows).
//!
//! `aggregate` returns the statements to run and `AggregatePlan::assemble`
//! builds the `AggregateResult` dict from their rows.

use aura_core::ir::{MetricOp, Select};
use aura_core::{Error, FieldDef, FieldKind, ModelSchema, Result, Value};
use serde_json::{json, Map, Value as Json};

use crate::codec::{storage, SqlValue, Storage};
use crate::dialect::{dialect_error, Dialect};
use crate::filter::{self, resolve_field};
use crate::query::{check_clauses, to_i64};
use crate::search;
use crate::sql::{Sql, Statement};
use crate::Catalog;

/// One statement of an aggregate and how to decode each of its columns.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregateStatement {
    pub statement: Statement,
    /// Field kind per result column (`aura_sql::decode`).
    pub kinds: Vec<FieldKind>,
}

/// The statements of one aggregate, in order: the totals row (matched
/// count, then every metric), the filtered count when search-scoped, one
/// statement per facet that can have buckets, then the groups.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatePlan {
    pub statements: Vec<AggregateStatement>,
    model: String,
    filter_present: bool,
    search_scoped: bool,
    /// `(op, field)` as the request spelled them.
    metrics: Vec<(String, Option<String>)>,
    /// Facet field and whether it has a statement (list/dict/vector
    /// fields have no buckets at all).
    facets: Vec<(String, bool)>,
    group_by: Option<String>,
}

/// What a metric reads: a SQL expression, or a constant `NULL` when the
/// field can hold no number.
enum Metric {
    Expr(String, FieldKind),
    Null,
}

/// The numeric kind behind a field (a link: its target's primary key), or
/// `None` when no value of it is a number.
fn numeric_kind(
    dialect: Dialect,
    catalog: &Catalog,
    field: &FieldDef,
) -> Result<Option<FieldKind>> {
    match value_kind(dialect, catalog, field)? {
        Some(FieldKind::Int) => Ok(Some(FieldKind::Int)),
        Some(FieldKind::Float) => Ok(Some(FieldKind::Float)),
        _ => Ok(None),
    }
}

/// The kind of the values a column holds (a link: its target's primary
/// key kind); `None` for containers, which never form a bucket or a
/// number. JSON-stored scalars (bytes, enums, `any`) have no SQL order.
fn value_kind(dialect: Dialect, catalog: &Catalog, field: &FieldDef) -> Result<Option<FieldKind>> {
    match field.kind {
        FieldKind::List | FieldKind::Dict | FieldKind::Vector => Ok(None),
        FieldKind::Link => {
            let target = field
                .target
                .as_ref()
                .and_then(|t| catalog.get(t))
                .and_then(|t| t.pk_index().map(|i| t.fields[i].kind));
            match target {
                Some(kind) => Ok(Some(kind)),
                None => Err(dialect_error(
                    dialect,
                    format!(
                        "{} cannot aggregate link field '{}' (unknown target)",
                        dialect.backend(),
                        field.attr
                    ),
                )),
            }
        }
        kind if storage(kind) == Storage::Json => Err(dialect_error(
            dialect,
            format!(
                "{} cannot aggregate or facet the JSON-stored field '{}'",
                dialect.backend(),
                field.attr
            ),
        )),
        kind => Ok(Some(kind)),
    }
}

fn plain_field<'s>(dialect: Dialect, schema: &'s ModelSchema, name: &str) -> Result<&'s FieldDef> {
    let resolved = resolve_field(schema, name, None)?;
    if !resolved.path.is_empty() {
        return Err(dialect_error(
            dialect,
            format!(
                "{} cannot aggregate document paths ({}.{name})",
                dialect.backend(),
                schema.name
            ),
        ));
    }
    Ok(resolved.field)
}

fn metric(
    dialect: Dialect,
    schema: &ModelSchema,
    catalog: &Catalog,
    op: MetricOp,
    name: Option<&str>,
) -> Result<Metric> {
    let Some(name) = name.filter(|_| op != MetricOp::Count) else {
        return Ok(Metric::Expr("COUNT(*)".into(), FieldKind::Int));
    };
    let field = plain_field(dialect, schema, name)?;
    let Some(kind) = numeric_kind(dialect, catalog, field)? else {
        return Ok(Metric::Null);
    };
    let col = dialect.quote(&field.storage)?;
    Ok(match (op, kind, dialect) {
        (MetricOp::Min, ..) => Metric::Expr(format!("MIN({col})"), kind),
        (MetricOp::Max, ..) => Metric::Expr(format!("MAX({col})"), kind),
        (MetricOp::Sum, FieldKind::Int, Dialect::Postgres) => {
            Metric::Expr(format!("CAST(SUM({col}) AS BIGINT)"), kind)
        }
        (MetricOp::Sum, FieldKind::Int, Dialect::Mysql) => {
            Metric::Expr(format!("CAST(SUM({col}) AS SIGNED)"), kind)
        }
        (MetricOp::Sum, ..) => Metric::Expr(format!("SUM({col})"), kind),
        (MetricOp::Avg, _, Dialect::Sqlite) => {
            Metric::Expr(format!("AVG({col})"), FieldKind::Float)
        }
        // PostgreSQL's AVG of integers is NUMERIC rounded to 16 digits, and
        // MySQL's is DECIMAL with 4: dividing the (exact) sum as a DOUBLE
        // rounds once, as the memory engine does.
        (MetricOp::Avg, _, Dialect::Postgres) => Metric::Expr(
            format!("CAST(SUM({col}) AS DOUBLE PRECISION) / NULLIF(COUNT({col}), 0)"),
            FieldKind::Float,
        ),
        (MetricOp::Avg, _, Dialect::Mysql) => Metric::Expr(
            format!("(SUM({col}) + 0e0) / NULLIF(COUNT({col}), 0)"),
            FieldKind::Float,
        ),
        (MetricOp::Count, ..) => Metric::Expr("COUNT(*)".into(), FieldKind::Int),
    })
}

fn push_metrics(sql: &mut Sql, metrics: &[Metric], kinds: &mut Vec<FieldKind>) {
    for m in metrics {
        sql.push(", ");
        match m {
            Metric::Expr(text, kind) => {
                sql.push(text);
                kinds.push(*kind);
            }
            Metric::Null => {
                sql.push("NULL");
                kinds.push(FieldKind::Any);
            }
        }
    }
}

/// ` FROM t WHERE (filters)` and, search-scoped, the candidate predicate.
fn from_matched(sql: &mut Sql, schema: &ModelSchema, q: &Select, scoped: bool) -> Result<()> {
    sql.push(" FROM ").ident(&schema.name)?.push(" WHERE (");
    filter::compile(sql, schema, &q.filters)?;
    sql.push(")");
    if let (true, Some(ts)) = (scoped, &q.text_search) {
        search::and_candidate(sql, schema, ts)?;
    }
    Ok(())
}

/// `SELECT col, COUNT(*)[, metrics] ... GROUP BY col ORDER BY COUNT(*)
/// DESC, col ASC LIMIT n` over the matched rows.
fn buckets(
    dialect: Dialect,
    schema: &ModelSchema,
    q: &Select,
    field: &FieldDef,
    value_kind: FieldKind,
    metrics: &[Metric],
    limit: usize,
) -> Result<AggregateStatement> {
    let col = dialect.quote(&field.storage)?;
    let mut kinds = vec![field.kind, FieldKind::Int];
    let mut sql = Sql::new(dialect);
    sql.push("SELECT ").push(&col).push(", COUNT(*)");
    push_metrics(&mut sql, metrics, &mut kinds);
    from_matched(&mut sql, schema, q, q.text_search.is_some())?;
    sql.push(" AND ")
        .push(&col)
        .push(" IS NOT NULL GROUP BY ")
        .push(&col);
    sql.push(" ORDER BY COUNT(*) DESC, ").push(&col);
    if dialect == Dialect::Postgres && storage(value_kind) == Storage::Text {
        sql.push(" COLLATE \"C\"");
    }
    sql.push(" ASC LIMIT ")
        .bind(SqlValue::Int(to_i64(limit as u64)));
    Ok(AggregateStatement {
        statement: sql.finish(),
        kinds,
    })
}

/// Compiles an aggregate request (see the module docs for its semantics).
pub fn aggregate(
    dialect: Dialect,
    schema: &ModelSchema,
    catalog: &Catalog,
    q: &Select,
) -> Result<AggregatePlan> {
    q.check_aggregate()?;
    let mut plain = q.clone();
    plain.text_search = None;
    check_clauses(dialect, &plain)?;
    let scoped = q.text_search.is_some();
    let metrics = q
        .metrics
        .iter()
        .map(|m| {
            let (op, field) = m.parse()?;
            metric(dialect, schema, catalog, op, field)
        })
        .collect::<Result<Vec<_>>>()?;
    let mut statements = Vec::new();

    let mut totals = Sql::new(dialect);
    let mut kinds = vec![FieldKind::Int];
    totals.push("SELECT COUNT(*)");
    push_metrics(&mut totals, &metrics, &mut kinds);
    from_matched(&mut totals, schema, q, scoped)?;
    statements.push(AggregateStatement {
        statement: totals.finish(),
        kinds,
    });
    if scoped {
        let mut scanned = Sql::new(dialect);
        scanned.push("SELECT COUNT(*)");
        from_matched(&mut scanned, schema, q, false)?;
        statements.push(AggregateStatement {
            statement: scanned.finish(),
            kinds: vec![FieldKind::Int],
        });
    }

    let mut facets = Vec::with_capacity(q.facets.len());
    for f in &q.facets {
        let limit = f.bucket_limit()?;
        let field = plain_field(dialect, schema, &f.field)?;
        let has_buckets = match value_kind(dialect, catalog, field)? {
            Some(kind) => {
                statements.push(buckets(dialect, schema, q, field, kind, &[], limit)?);
                true
            }
            None => false,
        };
        facets.push((f.field.clone(), has_buckets));
    }
    let group_by = match &q.group_by {
        Some(g) => {
            let limit = g.bucket_limit()?;
            let field = plain_field(dialect, schema, &g.field)?;
            if let Some(kind) = value_kind(dialect, catalog, field)? {
                statements.push(buckets(dialect, schema, q, field, kind, &metrics, limit)?);
            }
            Some(g.field.clone())
        }
        None => None,
    };
    Ok(AggregatePlan {
        statements,
        model: q.model.clone(),
        filter_present: !q.filters.is_empty(),
        search_scoped: scoped,
        metrics: q
            .metrics
            .iter()
            .map(|m| (m.op.clone(), m.field.clone()))
            .collect(),
        facets,
        group_by,
    })
}

fn count_of(value: Option<&Value>) -> Json {
    match value {
        Some(Value::Int(n)) => json!(n),
        _ => json!(0),
    }
}

fn bad_shape() -> Error {
    Error::serialization("an aggregate statement returned an unexpected row shape")
}

impl AggregatePlan {
    fn metric_entries(&self, values: &[Value]) -> Vec<Json> {
        self.metrics
            .iter()
            .zip(values)
            .map(|((op, field), value)| {
                let mut entry = json!({"op": op, "value": value.to_json()});
                if let Some(f) = field {
                    entry["field"] = json!(f);
                }
                entry
            })
            .collect()
    }

    /// The `AggregateResult` dict from the decoded rows of every statement
    /// (one `Vec` of rows per statement, in plan order).
    pub fn assemble(&self, results: Vec<Vec<Vec<Value>>>) -> Result<Json> {
        if results.len() != self.statements.len() {
            return Err(bad_shape());
        }
        let mut results = results.into_iter();
        let totals = results.next().and_then(|rows| rows.into_iter().next());
        let totals = totals.ok_or_else(bad_shape)?;
        let matched = count_of(totals.first());
        let scanned = if self.search_scoped {
            let row = results.next().and_then(|rows| rows.into_iter().next());
            count_of(row.ok_or_else(bad_shape)?.first())
        } else {
            matched.clone()
        };
        let mut out = Map::new();
        out.insert("collection".into(), json!(self.model));
        out.insert("matched".into(), matched);
        out.insert("scanned".into(), scanned);
        out.insert("filter_present".into(), json!(self.filter_present));
        out.insert("search_scoped".into(), json!(self.search_scoped));
        let metrics = self.metric_entries(totals.get(1..).unwrap_or_default());
        out.insert("metrics".into(), Json::Array(metrics));
        let mut facets = Vec::with_capacity(self.facets.len());
        for (field, has_buckets) in &self.facets {
            let rows = if *has_buckets {
                results.next().ok_or_else(bad_shape)?
            } else {
                Vec::new()
            };
            let buckets: Vec<Json> = rows
                .iter()
                .map(|r| json!({"value": r.first().map_or(Json::Null, Value::to_json), "count": count_of(r.get(1))}))
                .collect();
            facets.push(json!({"field": field, "buckets": buckets, "used_index": false}));
        }
        out.insert("facets".into(), Json::Array(facets));
        if let Some(field) = &self.group_by {
            let rows = results.next().unwrap_or_default();
            let groups: Vec<Json> = rows
                .iter()
                .map(|r| {
                    json!({
                        "value": r.first().map_or(Json::Null, Value::to_json),
                        "count": count_of(r.get(1)),
                        "metrics": self.metric_entries(r.get(2..).unwrap_or_default()),
                    })
                })
                .collect();
            out.insert("group_by".into(), json!(field));
            out.insert("groups".into(), Json::Array(groups));
        }
        Ok(Json::Object(out))
    }
}
