//! Keys and what Redis can answer by key.
//!
//! A row lives at `<prefix><Model>:<pk>`; the pk is written as its decimal
//! (int) or its text (strings, UUIDs, dates...), so keys are never parsed
//! back. Filters are accepted only when they name a set of primary keys:
//! a top-level AND of `pk == v` and `pk in [...]` (their intersection).

use std::collections::BTreeMap;

use aura_core::error::{Error, Result};
use aura_core::ir::{BoolOp, CompareOp, Expr, Select};
use aura_core::schema::{FieldKind, ModelSchema};
use aura_core::value::Value;

use crate::BACKEND;

/// The capability error of a clause Redis does not serve.
pub fn unsupported(capability: &str, what: &str) -> Error {
    Error::capability(BACKEND, capability, what)
}

/// Checks that a model can be stored: a declared primary key of a kind that
/// makes a key, and no constraint Redis could not enforce.
pub fn check_model(schema: &ModelSchema) -> Result<()> {
    let Some(pk) = schema.primary_key.as_deref() else {
        return Err(Error::query(format!(
            "Redis stores rows by primary key: {} declares none (Field(primary_key=True))",
            schema.name
        ))
        .with_context("model", schema.name.as_str())
        .with_context("driver", BACKEND));
    };
    let pk_field = schema
        .field(pk)
        .ok_or_else(|| Error::schema(format!("{} has no field '{pk}'", schema.name)))?;
    let keyable = matches!(
        pk_field.kind,
        FieldKind::Int
            | FieldKind::Str
            | FieldKind::Uuid
            | FieldKind::Decimal
            | FieldKind::DateTime
            | FieldKind::Date
            | FieldKind::Time
            | FieldKind::Enum
    );
    if !keyable {
        return Err(Error::query(format!(
            "Redis keys need an int or string primary key; {}.{} is {}",
            schema.name, pk_field.attr, pk_field.kind
        ))
        .with_context("model", schema.name.as_str())
        .with_context("driver", BACKEND));
    }
    for field in &schema.fields {
        if field.unique && field.storage != pk {
            return Err(unsupported(
                "unique_constraints",
                &format!(
                    "unique fields other than the primary key ({}.{})",
                    schema.name, field.attr
                ),
            ));
        }
        if field.on_delete.is_some() {
            return Err(unsupported(
                "relationships",
                &format!("on_delete actions ({}.{})", schema.name, field.attr),
            ));
        }
    }
    Ok(())
}

/// The text of a primary-key value inside a key.
pub fn pk_text(schema: &ModelSchema, pk: &Value) -> Result<String> {
    match pk {
        Value::Int(i) => Ok(i.to_string()),
        Value::Str(s) => Ok(s.to_string()),
        Value::Null => Err(schema.missing_pk()),
        other => Err(Error::serialization(format!(
            "{} primary key of type {} cannot form a Redis key",
            schema.name,
            other.type_name()
        ))
        .with_context("model", schema.name.as_str())
        .with_context("driver", BACKEND)),
    }
}

/// `<prefix><Model>:<pk>`.
pub fn row_key(prefix: &str, schema: &ModelSchema, pk: &Value) -> Result<String> {
    Ok(format!("{prefix}{}:{}", schema.name, pk_text(schema, pk)?))
}

/// A SCAN pattern matching every row key of a model: the literal part is
/// glob-escaped, so a prefix or model name is never a pattern.
pub fn scan_pattern(prefix: &str, model: &str) -> String {
    let mut out = String::with_capacity(prefix.len() + model.len() + 3);
    for c in prefix
        .chars()
        .chain(model.chars())
        .chain(std::iter::once(':'))
    {
        if matches!(c, '*' | '?' | '[' | ']' | '\\' | '^') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('*');
    out
}

/// The primary keys the filters name, or `None` for "every row" (no
/// filter). Duplicates are removed; keys come out in value order, which is
/// the order rows are returned in (as the memory engine's pk order).
pub fn pk_set(schema: &ModelSchema, filters: &[Expr]) -> Result<Option<Vec<Value>>> {
    let mut flat = Vec::new();
    for expr in filters {
        flatten(expr, &mut flat)?;
    }
    if flat.is_empty() {
        return Ok(None);
    }
    let mut set: Option<Vec<Value>> = None;
    for expr in flat {
        let values = key_values(schema, expr)?;
        set = Some(match set {
            None => values,
            Some(prev) => prev
                .into_iter()
                .filter(|v| values.iter().any(|w| w.eq_loose(v)))
                .collect(),
        });
    }
    let mut unique: BTreeMap<String, Value> = BTreeMap::new();
    for value in set.unwrap_or_default() {
        let text = pk_text(schema, &value)?;
        unique.entry(text).or_insert(value);
    }
    let mut values: Vec<Value> = unique.into_values().collect();
    values.sort_by(|a, b| a.cmp_total(b));
    Ok(Some(values))
}

fn relational() -> Error {
    unsupported(
        "relational_filter",
        "filters other than primary-key equality or membership (key-value only)",
    )
}

fn flatten<'e>(expr: &'e Expr, out: &mut Vec<&'e Expr>) -> Result<()> {
    match expr {
        Expr::Bool {
            op: BoolOp::And,
            operands,
        } => operands.iter().try_for_each(|e| flatten(e, out)),
        Expr::Compare { .. } => {
            out.push(expr);
            Ok(())
        }
        Expr::Param { name } => Err(Error::query(format!("Parameter '{name}' is not bound"))),
        _ => Err(relational()),
    }
}

/// The key values of one `pk == v` / `pk in [...]`. A literal of another
/// type than the key names no row.
fn key_values(schema: &ModelSchema, expr: &Expr) -> Result<Vec<Value>> {
    let Expr::Compare { op, left, right } = expr else {
        return Err(relational());
    };
    let (Expr::Field { field, path, .. }, Expr::Literal { value }) = (&**left, &**right) else {
        if let Expr::Literal { .. } = &**left {
            if let (CompareOp::Eq, Expr::Field { .. }) = (op, &**right) {
                return key_values(
                    schema,
                    &Expr::compare(CompareOp::Eq, (**right).clone(), (**left).clone()),
                );
            }
        }
        return Err(relational());
    };
    let pk = schema.pk_name();
    let is_pk = path.as_ref().is_none_or(Vec::is_empty)
        && schema.field(field).is_some_and(|f| f.storage == pk);
    if !is_pk {
        return Err(relational());
    }
    let kind = schema.field(pk).map_or(FieldKind::Any, |f| f.kind);
    let bind = |json: &serde_json::Value| -> Option<Value> {
        match Value::from_json(json, kind) {
            Ok(Value::Null) | Err(_) => None,
            Ok(v @ (Value::Int(_) | Value::Str(_))) => Some(v),
            Ok(_) => None,
        }
    };
    match op {
        CompareOp::Eq => Ok(bind(value).into_iter().collect()),
        CompareOp::In => match value {
            serde_json::Value::Array(items) => Ok(items.iter().filter_map(bind).collect()),
            _ => Err(Error::query(format!(
                "'in' on {}.{pk} needs a list",
                schema.name
            ))),
        },
        _ => Err(relational()),
    }
}

/// The clauses of a select Redis cannot serve, as capability errors.
pub fn check_select(q: &Select) -> Result<()> {
    if !q.sort.is_empty() {
        return Err(unsupported("ordering", "order_by (key-value only)"));
    }
    if !q.projection.is_empty() {
        return Err(unsupported("projection", "projections (key-value only)"));
    }
    if !q.include.is_empty() {
        return Err(unsupported("relationships", "include (key-value only)"));
    }
    if q.timeout_ms.is_some() {
        return Err(unsupported("query_timeouts", "query timeouts"));
    }
    if q.vector.is_some() || q.vector_ann.is_some() {
        return Err(unsupported("vector_search", "vector search"));
    }
    if q.text.is_some() || q.text_search.is_some() || q.fusion.is_some() {
        return Err(unsupported("full_text_search", "text search"));
    }
    if q.hybrid.is_some() {
        return Err(unsupported("hybrid_search", "hybrid search"));
    }
    if !q.facets.is_empty() || !q.metrics.is_empty() {
        return Err(unsupported(
            "aggregations_and_facets",
            "aggregations and facets",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_core::schema::FieldDef;
    use serde_json::json;

    fn schema() -> ModelSchema {
        ModelSchema {
            name: "K".into(),
            primary_key: Some("id".into()),
            fields: vec![
                FieldDef::new("id", FieldKind::Int),
                FieldDef::new("name", FieldKind::Str),
            ],
            relationships: vec![],
        }
    }

    fn cmp(op: CompareOp, field: &str, value: serde_json::Value) -> Expr {
        Expr::compare(op, Expr::field("K", field), Expr::literal(value))
    }

    #[test]
    fn key_filters_name_a_sorted_set_of_keys() {
        let s = schema();
        assert_eq!(pk_set(&s, &[]).unwrap(), None);
        let one = pk_set(&s, &[cmp(CompareOp::Eq, "id", json!(3))]).unwrap();
        assert_eq!(one, Some(vec![Value::Int(3)]));
        let many = pk_set(&s, &[cmp(CompareOp::In, "id", json!([9, 2, 2, "x", null]))]).unwrap();
        assert_eq!(many, Some(vec![Value::Int(2), Value::Int(9)]));
        let both = pk_set(
            &s,
            &[
                cmp(CompareOp::In, "id", json!([1, 2])),
                Expr::and(vec![cmp(CompareOp::Eq, "id", json!(2))]),
            ],
        )
        .unwrap();
        assert_eq!(both, Some(vec![Value::Int(2)]));
        assert_eq!(
            pk_set(&s, &[cmp(CompareOp::In, "id", json!([]))]).unwrap(),
            Some(vec![])
        );
    }

    #[test]
    fn other_filters_are_relational_capability_errors() {
        let s = schema();
        for filter in [
            cmp(CompareOp::Eq, "name", json!("a")),
            cmp(CompareOp::Gt, "id", json!(1)),
            cmp(CompareOp::NotIn, "id", json!([1])),
            Expr::or(vec![cmp(CompareOp::Eq, "id", json!(1))]),
            Expr::negate(cmp(CompareOp::Eq, "id", json!(1))),
        ] {
            let err = pk_set(&s, &[filter]).unwrap_err();
            assert_eq!(
                err.message,
                "Backend 'redis' does not support filters other than primary-key equality or membership (key-value only)"
            );
            assert_eq!(
                err.context_value("capability"),
                Some(&json!("relational_filter"))
            );
        }
    }

    #[test]
    fn keys_and_patterns() {
        let s = schema();
        assert_eq!(row_key("t:", &s, &Value::Int(5)).unwrap(), "t:K:5");
        assert_eq!(row_key("", &s, &Value::str("a*b")).unwrap(), "K:a*b");
        assert_eq!(scan_pattern("p[1]*", "K"), r"p\[1\]\*K:*");
        assert!(row_key("", &s, &Value::Null).is_err());
    }

    #[test]
    fn models_without_a_key_or_with_unique_fields_are_refused() {
        let mut s = schema();
        s.primary_key = None;
        let err = check_model(&s).unwrap_err();
        assert_eq!(err.code, aura_core::ErrorCode::QueryError);
        let mut s = schema();
        s.fields[1].unique = true;
        let err = check_model(&s).unwrap_err();
        assert_eq!(
            err.context_value("capability"),
            Some(&json!("unique_constraints"))
        );
        assert!(check_model(&schema()).is_ok());
    }
}
