//! Filters are compiled once per query: field positions resolved and
//! literals bound to the field's kind, so evaluating a row allocates nothing.
//! Semantics follow API.md §4.1.

use std::cmp::Ordering;
use std::collections::HashSet;

use aura_core::ir::{BoolOp, CompareOp, Expr};
use aura_core::{Error, FieldKind, Key, ModelSchema, Result, Value};
use serde_json::Value as Json;

use crate::field_access::FieldAccess;
use crate::like::LikePattern;

/// In-lists longer than this are hashed.
const HASHED_IN_LIST: usize = 8;

/// A compiled predicate over one table's rows.
#[derive(Debug, Clone)]
pub(crate) enum Predicate {
    Const(bool),
    Test { field: FieldAccess, test: Test },
    And(Vec<Predicate>),
    Or(Vec<Predicate>),
    Not(Box<Predicate>),
}

#[derive(Debug, Clone)]
pub(crate) enum Test {
    Eq(Value),
    Ne(Value),
    Lt(Value),
    Le(Value),
    Gt(Value),
    Ge(Value),
    In(ValueSet),
    NotIn(ValueSet),
    Contains(Value),
    StartsWith(Box<str>),
    EndsWith(Box<str>),
    Like(LikePattern),
    IsNull,
    IsNotNull,
}

/// The right side of `in`/`not_in`.
#[derive(Debug, Clone)]
pub(crate) struct ValueSet {
    pub values: Vec<Value>,
    hashed: Option<HashSet<Key>>,
}

impl ValueSet {
    fn new(values: Vec<Value>) -> Self {
        let hashed =
            (values.len() > HASHED_IN_LIST).then(|| values.iter().cloned().map(Key).collect());
        ValueSet { values, hashed }
    }

    /// Python `value in values`.
    pub fn contains(&self, value: &Value) -> bool {
        match &self.hashed {
            Some(set) => set
                .get(&Key(value.clone()))
                .is_some_and(|k| k.0.eq_loose(value)),
            None => self.values.iter().any(|v| v.eq_loose(value)),
        }
    }
}

impl Predicate {
    pub fn matches(&self, row: &[Value]) -> bool {
        match self {
            Predicate::Const(b) => *b,
            Predicate::Test { field, test } => test.matches(field.get(row)),
            Predicate::And(ps) => ps.iter().all(|p| p.matches(row)),
            Predicate::Or(ps) => ps.iter().any(|p| p.matches(row)),
            Predicate::Not(p) => !p.matches(row),
        }
    }

    /// The conjuncts the planner may use for an access path.
    pub fn conjuncts(&self) -> &[Predicate] {
        match self {
            Predicate::And(ps) => ps,
            other => std::slice::from_ref(other),
        }
    }

    fn all(mut parts: Vec<Predicate>) -> Predicate {
        match parts.len() {
            0 => Predicate::Const(true),
            1 => parts.pop().unwrap_or(Predicate::Const(true)),
            _ => Predicate::And(parts),
        }
    }
}

fn ordered(value: &Value, bound: &Value, accept: fn(Ordering) -> bool) -> bool {
    value.cmp_py(bound).is_some_and(accept)
}

fn contains(haystack: &Value, needle: &Value) -> bool {
    match haystack {
        Value::Str(s) => needle.as_str().is_some_and(|n| s.contains(n)),
        Value::List(items) => items.iter().any(|item| item.eq_loose(needle)),
        Value::Vector(comps) => comps.iter().any(|c| Value::Float(*c).eq_loose(needle)),
        Value::Map(_) => needle
            .as_str()
            .is_some_and(|k| haystack.map_get(k).is_some()),
        _ => false,
    }
}

impl Test {
    pub fn matches(&self, value: &Value) -> bool {
        match self {
            Test::Eq(x) => value.eq_loose(x),
            Test::Ne(x) => !value.eq_loose(x),
            Test::Lt(x) => ordered(value, x, Ordering::is_lt),
            Test::Le(x) => ordered(value, x, Ordering::is_le),
            Test::Gt(x) => ordered(value, x, Ordering::is_gt),
            Test::Ge(x) => ordered(value, x, Ordering::is_ge),
            Test::In(set) => set.contains(value),
            Test::NotIn(set) => !set.contains(value),
            Test::Contains(x) => contains(value, x),
            Test::StartsWith(p) => value.as_str().is_some_and(|s| s.starts_with(&**p)),
            Test::EndsWith(p) => value.as_str().is_some_and(|s| s.ends_with(&**p)),
            Test::Like(p) => value.as_str().is_some_and(|s| p.is_match(s)),
            Test::IsNull => value.is_null(),
            Test::IsNotNull => !value.is_null(),
        }
    }
}

/// Compiles the implicit AND of a filter list against `schema`.
pub(crate) fn compile(schema: &ModelSchema, filters: &[Expr]) -> Result<Predicate> {
    let mut parts = Vec::with_capacity(filters.len());
    for expr in filters {
        flatten_and(compile_expr(schema, expr)?, &mut parts);
    }
    Ok(Predicate::all(parts))
}

fn flatten_and(p: Predicate, into: &mut Vec<Predicate>) {
    match p {
        Predicate::And(ps) => ps.into_iter().for_each(|q| flatten_and(q, into)),
        Predicate::Const(true) => {}
        other => into.push(other),
    }
}

fn compile_expr(schema: &ModelSchema, expr: &Expr) -> Result<Predicate> {
    match expr {
        Expr::Compare { op, left, right } => compile_compare(schema, *op, left, right),
        Expr::Bool { op, operands } => {
            let parts = operands
                .iter()
                .map(|e| compile_expr(schema, e))
                .collect::<Result<Vec<_>>>()?;
            Ok(match op {
                BoolOp::And => {
                    let mut flat = Vec::with_capacity(parts.len());
                    parts.into_iter().for_each(|p| flatten_and(p, &mut flat));
                    Predicate::all(flat)
                }
                BoolOp::Or if parts.is_empty() => Predicate::Const(false),
                BoolOp::Or => Predicate::Or(parts),
            })
        }
        Expr::Not { operand } => Ok(Predicate::Not(Box::new(compile_expr(schema, operand)?))),
        Expr::Param { name } => Err(unbound(name)),
        Expr::Field { .. } | Expr::Literal { .. } | Expr::Distance { .. } => Err(Error::query(
            "A filter must be a comparison, a boolean combination or a negation",
        )),
    }
}

fn unbound(name: &str) -> Error {
    Error::query(format!("Parameter '{name}' is not bound")).with_context("param", name)
}

/// The comparison with the field on the left (`5 < F` becomes `F > 5`).
fn orient<'e>(op: CompareOp, left: &'e Expr, right: &'e Expr) -> (CompareOp, &'e Expr, &'e Expr) {
    let flipped = match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::Le => CompareOp::Ge,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::Ge => CompareOp::Le,
        CompareOp::Eq | CompareOp::Ne => op,
        _ => return (op, left, right),
    };
    match (left, right) {
        (Expr::Literal { .. }, Expr::Field { .. }) => (flipped, right, left),
        _ => (op, left, right),
    }
}

fn compile_compare(
    schema: &ModelSchema,
    op: CompareOp,
    left: &Expr,
    right: &Expr,
) -> Result<Predicate> {
    let (op, left, right) = orient(op, left, right);
    let Expr::Field { field, path, .. } = left else {
        return Err(match left {
            Expr::Param { name } => unbound(name),
            _ => Error::query(format!("'{}' needs a field on one side", op.as_str())),
        });
    };
    let access = FieldAccess::resolve(schema, field, path.as_deref())?;
    let literal = match (op, right) {
        (CompareOp::IsNull | CompareOp::IsNotNull | CompareOp::Exists, _) => &Json::Null,
        (_, Expr::Literal { value }) => value,
        (_, Expr::Param { name }) => return Err(unbound(name)),
        _ => {
            return Err(Error::query(
                "Comparisons between two fields are not supported",
            ))
        }
    };
    let binder = Binder {
        schema,
        access: &access,
        op,
    };
    let test = binder.test(literal)?;
    Ok(Predicate::Test {
        field: access,
        test,
    })
}

/// Binds one comparison's literal to the compared field.
struct Binder<'a> {
    schema: &'a ModelSchema,
    access: &'a FieldAccess,
    op: CompareOp,
}

impl Binder<'_> {
    fn kind(&self) -> FieldKind {
        if self.access.path.is_some() {
            return FieldKind::Any;
        }
        self.schema.fields[self.access.pos].kind
    }

    fn attr(&self) -> &str {
        &self.schema.fields[self.access.pos].attr
    }

    fn invalid(&self, expected: &str) -> Error {
        Error::validation(format!(
            "Invalid value for {}.{} in '{}': expected {expected}",
            self.schema.name,
            self.attr(),
            self.op.as_str()
        ))
        .with_context("model", self.schema.name.as_str())
        .with_context("field", self.attr())
    }

    /// A literal bound to the field kind; numbers stay numbers for numeric
    /// kinds so `int_field < 2.5` compares rather than failing.
    fn value(&self, json: &Json) -> Result<Value> {
        let kind = self.kind();
        let numeric = matches!(kind, FieldKind::Int | FieldKind::Float | FieldKind::Bool);
        let bound = if numeric && json.is_number() {
            Value::from_json_untyped(json)
        } else {
            Value::from_json(json, kind)
        };
        bound.map_err(|_| self.invalid(kind.as_str()))
    }

    fn string(&self, json: &Json) -> Result<Box<str>> {
        json.as_str()
            .map(Box::from)
            .ok_or_else(|| self.invalid("a string"))
    }

    fn set(&self, json: &Json) -> Result<ValueSet> {
        let Json::Array(items) = json else {
            return Err(Error::query(format!(
                "'{}' on {}.{} needs a list",
                self.op.as_str(),
                self.schema.name,
                self.attr()
            )));
        };
        let values = items
            .iter()
            .map(|v| self.value(v))
            .collect::<Result<Vec<_>>>()?;
        Ok(ValueSet::new(values))
    }

    fn test(&self, json: &Json) -> Result<Test> {
        Ok(match self.op {
            CompareOp::Eq => Test::Eq(self.value(json)?),
            CompareOp::Ne => Test::Ne(self.value(json)?),
            CompareOp::Lt => Test::Lt(self.value(json)?),
            CompareOp::Le => Test::Le(self.value(json)?),
            CompareOp::Gt => Test::Gt(self.value(json)?),
            CompareOp::Ge => Test::Ge(self.value(json)?),
            CompareOp::In => Test::In(self.set(json)?),
            CompareOp::NotIn => Test::NotIn(self.set(json)?),
            // An element, not a value of the field's kind.
            CompareOp::Contains => {
                Test::Contains(Value::from_json_untyped(json).map_err(|_| self.invalid("a value"))?)
            }
            CompareOp::Startswith => Test::StartsWith(self.string(json)?),
            CompareOp::Endswith => Test::EndsWith(self.string(json)?),
            CompareOp::Like => Test::Like(LikePattern::new(&self.string(json)?)),
            CompareOp::IsNull => Test::IsNull,
            CompareOp::IsNotNull | CompareOp::Exists => Test::IsNotNull,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_core::FieldDef;
    use serde_json::json;

    fn schema() -> ModelSchema {
        ModelSchema {
            name: "M".into(),
            primary_key: Some("id".into()),
            fields: vec![
                FieldDef::new("id", FieldKind::Int),
                FieldDef::new("name", FieldKind::Str).nullable(),
                FieldDef::new("tags", FieldKind::List).nullable(),
                FieldDef::new("any", FieldKind::Any).nullable(),
            ],
            relationships: vec![],
        }
    }

    fn cmp(op: CompareOp, field: &str, value: Json) -> Expr {
        Expr::compare(op, Expr::field("M", field), Expr::literal(value))
    }

    fn eval(expr: Expr, row: &[Value]) -> bool {
        compile(&schema(), &[expr]).unwrap().matches(row)
    }

    fn row(name: Option<&str>, tags: &[&str], any: Value) -> Vec<Value> {
        vec![
            Value::Int(1),
            name.map_or(Value::Null, Value::str),
            Value::List(tags.iter().map(|t| Value::str(t)).collect()),
            any,
        ]
    }

    #[test]
    fn literal_on_the_left_is_flipped() {
        let r = row(None, &[], Value::Null);
        let expr = Expr::compare(CompareOp::Lt, Expr::literal(0), Expr::field("M", "id"));
        assert!(eval(expr, &r), "0 < id");
    }

    #[test]
    fn contains_is_substring_or_membership() {
        let r = row(Some("Refunds"), &["a", "b"], Value::Null);
        assert!(eval(cmp(CompareOp::Contains, "name", json!("fun")), &r));
        assert!(!eval(cmp(CompareOp::Contains, "name", json!("FUN")), &r));
        assert!(eval(cmp(CompareOp::Contains, "tags", json!("b")), &r));
        assert!(!eval(cmp(CompareOp::Contains, "tags", json!("c")), &r));
        let null = row(None, &[], Value::Null);
        assert!(!eval(cmp(CompareOp::Contains, "name", json!("x")), &null));
    }

    #[test]
    fn incomparable_types_never_match_ranges() {
        let r = row(None, &[], Value::str("x"));
        assert!(!eval(cmp(CompareOp::Gt, "any", json!(1)), &r));
        assert!(!eval(cmp(CompareOp::Lt, "any", json!(1)), &r));
        assert!(eval(cmp(CompareOp::Gt, "any", json!("a")), &r));
    }

    #[test]
    fn bad_literals_are_validation_errors() {
        let err = compile(&schema(), &[cmp(CompareOp::Eq, "id", json!("x"))]).unwrap_err();
        assert_eq!(err.code, aura_core::ErrorCode::ValidationError);
        assert!(!err.message.contains("\"x\""));
        let err = compile(&schema(), &[cmp(CompareOp::In, "id", json!(1))]).unwrap_err();
        assert_eq!(err.code, aura_core::ErrorCode::QueryError);
        let err = compile(&schema(), &[cmp(CompareOp::Eq, "zz", json!(1))]).unwrap_err();
        assert_eq!(err.message, "M has no field 'zz'");
        let param = Expr::compare(
            CompareOp::Eq,
            Expr::field("M", "id"),
            Expr::Param { name: "p".into() },
        );
        assert_eq!(
            compile(&schema(), &[param]).unwrap_err().message,
            "Parameter 'p' is not bound"
        );
    }

    #[test]
    fn large_in_lists_are_hashed() {
        let values: Vec<Json> = (0..100).map(|i| json!(i)).collect();
        let p = compile(&schema(), &[cmp(CompareOp::In, "id", Json::Array(values))]).unwrap();
        assert!(p.matches(&row(None, &[], Value::Null)));
        let p2 = compile(
            &schema(),
            &[cmp(
                CompareOp::In,
                "id",
                json!((2..100).collect::<Vec<_>>()),
            )],
        )
        .unwrap();
        assert!(!p2.matches(&row(None, &[], Value::Null)));
        assert!(
            p2.matches(&[Value::Float(50.0)]),
            "1.0-style numbers hash like ints"
        );
    }

    #[test]
    fn empty_boolean_groups() {
        let r = row(None, &[], Value::Null);
        assert!(eval(Expr::and(vec![]), &r));
        assert!(!eval(Expr::or(vec![]), &r));
        assert!(eval(Expr::negate(Expr::or(vec![])), &r));
    }
}
