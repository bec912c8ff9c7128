//! Aggregations and facets (API.md §4.3): metrics and terms facets over the
//! matched set — the filtered rows, or the BM25 candidates when the query
//! has a `text_search` clause (`search_scoped`). Additions beyond the spec:
//! `sum` and `avg` follow the rules of `min`/`max` (numbers only, bools
//! ignored, `None` when no value), and `group_by` computes the metrics per
//! term of one field, groups ordered and limited like facet buckets.

use std::collections::HashMap;

use aura_core::ir::{MetricOp, MetricRequest, Select};
use aura_core::{Key, Result, Row, Value};
use serde_json::{json, Map, Value as Json};

use crate::deadline::Deadline;
use crate::field_access::FieldAccess;
use crate::rank;
use crate::select::Matcher;
use crate::table::{lookup, Tables};

enum Op {
    Count,
    Min(FieldAccess),
    Max(FieldAccess),
    Sum(FieldAccess),
    Avg(FieldAccess),
}

fn compile_metric(schema: &aura_core::ModelSchema, m: &MetricRequest) -> Result<Op> {
    let (op, name) = m.parse()?;
    let field = || FieldAccess::resolve(schema, name.unwrap_or_default(), None);
    Ok(match op {
        MetricOp::Count => Op::Count,
        MetricOp::Min => Op::Min(field()?),
        MetricOp::Max => Op::Max(field()?),
        MetricOp::Sum => Op::Sum(field()?),
        MetricOp::Avg => Op::Avg(field()?),
    })
}

/// Numeric values only: bools and everything else are ignored.
fn number(v: &Value) -> Option<&Value> {
    matches!(v, Value::Int(_) | Value::Float(_)).then_some(v)
}

fn as_f64(v: &Value) -> f64 {
    match v {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        _ => 0.0,
    }
}

fn extreme(rows: &[&Row], field: &FieldAccess, want_max: bool) -> Json {
    let mut best: Option<&Value> = None;
    for row in rows {
        if let Some(v) = number(field.get(row)) {
            let better = best.is_none_or(|b| {
                let o = v.cmp_total(b);
                if want_max {
                    o.is_gt()
                } else {
                    o.is_lt()
                }
            });
            if better {
                best = Some(v);
            }
        }
    }
    best.map_or(Json::Null, Value::to_json)
}

/// Sum of the numbers: an int while every value is an int and it fits.
fn sum(rows: &[&Row], field: &FieldAccess) -> (Json, usize) {
    let mut int_sum: Option<i64> = Some(0);
    let mut float_sum = 0.0;
    let mut n = 0;
    for row in rows {
        let Some(v) = number(field.get(row)) else {
            continue;
        };
        n += 1;
        float_sum += as_f64(v);
        int_sum = match (int_sum, v) {
            (Some(acc), Value::Int(i)) => acc.checked_add(*i),
            _ => None,
        };
    }
    let total = match (n, int_sum) {
        (0, _) => Json::Null,
        (_, Some(i)) => json!(i),
        (_, None) => json!(float_sum),
    };
    (total, n)
}

fn metric_value(op: &Op, rows: &[&Row]) -> Json {
    match op {
        Op::Count => json!(rows.len()),
        Op::Min(f) => extreme(rows, f, false),
        Op::Max(f) => extreme(rows, f, true),
        Op::Sum(f) => sum(rows, f).0,
        Op::Avg(f) => {
            let (total, n) = sum(rows, f);
            match total.as_f64() {
                Some(t) if n > 0 => json!(t / n as f64),
                _ => Json::Null,
            }
        }
    }
}

/// Rows per term: count desc, then value (numbers before strings); nulls,
/// lists, maps and vectors are skipped.
fn terms<'r>(
    rows: &[&'r Row],
    field: &FieldAccess,
    limit: usize,
    deadline: &Deadline,
) -> Result<Vec<(Key, Vec<&'r Row>)>> {
    let mut groups: HashMap<Key, Vec<&'r Row>> = HashMap::new();
    for row in rows {
        deadline.step()?;
        let v = field.get(row);
        if matches!(
            v,
            Value::Null | Value::List(_) | Value::Map(_) | Value::Vector(_)
        ) {
            continue;
        }
        groups.entry(Key(v.clone())).or_default().push(row);
    }
    let mut buckets: Vec<(Key, Vec<&Row>)> = groups.into_iter().collect();
    buckets.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
    buckets.truncate(limit);
    Ok(buckets)
}

fn facet(rows: &[&Row], field: &FieldAccess, limit: usize, deadline: &Deadline) -> Result<Json> {
    let buckets = terms(rows, field, limit, deadline)?;
    Ok(Json::Array(
        buckets
            .into_iter()
            .map(|(k, rows)| json!({"value": k.0.to_json(), "count": rows.len()}))
            .collect(),
    ))
}

fn metric_results(q: &Select, ops: &[Op], rows: &[&Row]) -> Vec<Json> {
    q.metrics
        .iter()
        .zip(ops)
        .map(|(m, op)| {
            let mut entry = json!({"op": m.op, "value": metric_value(op, rows)});
            if let Some(f) = &m.field {
                entry["field"] = json!(f);
            }
            entry
        })
        .collect()
}

fn groups(
    q: &Select,
    ops: &[Op],
    rows: &[&Row],
    field: &FieldAccess,
    limit: usize,
    deadline: &Deadline,
) -> Result<Json> {
    let buckets = terms(rows, field, limit, deadline)?;
    Ok(Json::Array(
        buckets
            .into_iter()
            .map(|(k, members)| {
                json!({
                    "value": k.0.to_json(),
                    "count": members.len(),
                    "metrics": metric_results(q, ops, &members),
                })
            })
            .collect(),
    ))
}

/// The `AggregateResult` dict of §4.3.
pub(crate) fn aggregate(tables: &Tables, q: &Select) -> Result<Json> {
    let table = lookup(tables, &q.model)?;
    let schema = &table.schema;
    q.check_aggregate()?;
    let ops = q
        .metrics
        .iter()
        .map(|m| compile_metric(schema, m))
        .collect::<Result<Vec<_>>>()?;
    let facets = q
        .facets
        .iter()
        .map(|f| {
            Ok((
                f,
                FieldAccess::resolve(schema, &f.field, None)?,
                f.bucket_limit()?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    let group_by = q
        .group_by
        .as_ref()
        .map(|g| {
            Ok((
                FieldAccess::resolve(schema, &g.field, None)?,
                g.bucket_limit()?,
            ))
        })
        .transpose()?;
    let deadline = Deadline::new(q.timeout_ms);
    let filtered = Matcher::new(table, &q.filters)?.collect(&deadline)?;
    let scanned = filtered.len();
    let scoped = rank::text_candidates(table, q, filtered.clone(), &deadline)?;
    let search_scoped = scoped.is_some();
    let matched: Vec<&Row> = match scoped {
        Some(hits) => hits.into_iter().map(|h| h.row).collect(),
        None => filtered,
    };
    let mut out = Map::new();
    out.insert("collection".into(), json!(q.model));
    out.insert("matched".into(), json!(matched.len()));
    out.insert("scanned".into(), json!(scanned));
    out.insert("filter_present".into(), json!(!q.filters.is_empty()));
    out.insert("search_scoped".into(), json!(search_scoped));
    out.insert(
        "metrics".into(),
        Json::Array(metric_results(q, &ops, &matched)),
    );
    let mut facet_out = Vec::with_capacity(facets.len());
    for (f, access, limit) in &facets {
        let buckets = facet(&matched, access, *limit, &deadline)?;
        facet_out.push(json!({"field": f.field, "buckets": buckets, "used_index": false}));
    }
    out.insert("facets".into(), Json::Array(facet_out));
    if let (Some((access, limit)), Some(g)) = (&group_by, &q.group_by) {
        let grouped = groups(q, &ops, &matched, access, *limit, &deadline)?;
        out.insert("group_by".into(), json!(g.field));
        out.insert("groups".into(), grouped);
    }
    deadline.check()?;
    Ok(Json::Object(out))
}
