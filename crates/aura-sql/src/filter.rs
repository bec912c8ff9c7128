//! Filters: IR predicates -> a SQL boolean expression with the memory
//! engine's semantics (API.md §4.1, §16 row 30).
//!
//! SQL comparisons are three-valued (NULL), the memory engine's two-valued.
//! Negations are therefore pushed down to the comparisons (De Morgan), and
//! each comparison is emitted in a positive or a negated form whose truth
//! is exactly the memory engine's: a positive form may yield NULL only
//! where the engine says false, which AND/OR/WHERE treat alike; a negated
//! form never yields NULL.

use aura_core::ir::{BoolOp, CompareOp, Expr};
use aura_core::{Error, FieldDef, FieldKind, ModelSchema, Result, Value};
use serde_json::Value as Json;

use crate::codec::{encode, storage, SqlValue, Storage};
use crate::dialect::{dialect_error, escape_like, like_pattern, Dialect, LIKE_ESCAPE};
use crate::sql::Sql;

/// A field reference resolved against a schema: the field and an optional
/// document path into it.
#[derive(Debug, Clone)]
pub struct Resolved<'s> {
    pub field: &'s FieldDef,
    pub path: Vec<String>,
}

fn no_field(schema: &ModelSchema, name: &str) -> Error {
    Error::query(format!("{} has no field '{name}'", schema.name))
        .with_context("model", schema.name.as_str())
        .with_context("field", name)
}

/// Resolves a field name as the memory engine does: storage name, then
/// attribute name, then `field.key.key` as a document path.
pub fn resolve_field<'s>(
    schema: &'s ModelSchema,
    name: &str,
    path: Option<&[String]>,
) -> Result<Resolved<'s>> {
    let (field, mut segments) = match schema.field(name) {
        Some(field) => (field, Vec::new()),
        None => {
            let (head, tail) = name.split_once('.').ok_or_else(|| no_field(schema, name))?;
            let field = schema.field(head).ok_or_else(|| no_field(schema, name))?;
            (field, tail.split('.').map(str::to_owned).collect())
        }
    };
    segments.extend(path.unwrap_or_default().iter().cloned());
    Ok(Resolved {
        field,
        path: segments,
    })
}

/// Compiles the implicit AND of `filters` into `sql` (`TRUE` when empty).
pub(crate) fn compile(sql: &mut Sql, schema: &ModelSchema, filters: &[Expr]) -> Result<()> {
    let compiler = Compiler { schema };
    match filters {
        [] => {
            sql.push("TRUE");
            Ok(())
        }
        [one] => compiler.expr(sql, one, false),
        many => compiler.group(sql, many, " AND "),
    }
}

struct Compiler<'s> {
    schema: &'s ModelSchema,
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

/// The comparison a negation turns `op` into, when that is exact.
fn complement(op: CompareOp) -> Option<CompareOp> {
    Some(match op {
        CompareOp::Eq => CompareOp::Ne,
        CompareOp::Ne => CompareOp::Eq,
        CompareOp::In => CompareOp::NotIn,
        CompareOp::NotIn => CompareOp::In,
        CompareOp::IsNull => CompareOp::IsNotNull,
        CompareOp::IsNotNull | CompareOp::Exists => CompareOp::IsNull,
        _ => return None,
    })
}

impl Compiler<'_> {
    fn group(&self, sql: &mut Sql, parts: &[Expr], joiner: &str) -> Result<()> {
        sql.push("(");
        for (i, part) in parts.iter().enumerate() {
            if i > 0 {
                sql.push(joiner);
            }
            self.expr(sql, part, false)?;
        }
        sql.push(")");
        Ok(())
    }

    fn expr(&self, sql: &mut Sql, expr: &Expr, negated: bool) -> Result<()> {
        match expr {
            Expr::Compare { op, left, right } => self.compare(sql, *op, left, right, negated),
            Expr::Bool { op, operands } => self.boolean(sql, *op, operands, negated),
            Expr::Not { operand } => self.expr(sql, operand, !negated),
            Expr::Param { name } => Err(unbound(name)),
            Expr::Field { .. } | Expr::Literal { .. } | Expr::Distance { .. } => Err(Error::query(
                "A filter must be a comparison, a boolean combination or a negation",
            )),
        }
    }

    fn boolean(&self, sql: &mut Sql, op: BoolOp, operands: &[Expr], negated: bool) -> Result<()> {
        // De Morgan: NOT (a AND b) = NOT a OR NOT b.
        let conjunction = (op == BoolOp::And) != negated;
        if operands.is_empty() {
            sql.push(if conjunction { "TRUE" } else { "FALSE" });
            return Ok(());
        }
        sql.push("(");
        for (i, operand) in operands.iter().enumerate() {
            if i > 0 {
                sql.push(if conjunction { " AND " } else { " OR " });
            }
            self.expr(sql, operand, negated)?;
        }
        sql.push(")");
        Ok(())
    }

    fn compare(
        &self,
        sql: &mut Sql,
        op: CompareOp,
        left: &Expr,
        right: &Expr,
        negated: bool,
    ) -> Result<()> {
        let (op, left, right) = orient(op, left, right);
        let Expr::Field { field, path, .. } = left else {
            return Err(match left {
                Expr::Param { name } => unbound(name),
                _ => Error::query(format!("'{}' needs a field on one side", op.as_str())),
            });
        };
        let target = resolve_field(self.schema, field, path.as_deref())?;
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
        let leaf = Leaf {
            schema: self.schema,
            target,
            op,
        };
        match (negated, complement(op)) {
            (false, _) => leaf.positive(sql, op, literal),
            (true, Some(opposite)) => leaf.positive(sql, opposite, literal),
            (true, None) => {
                // Exact complement of a form that may be NULL.
                sql.push("NOT COALESCE(");
                leaf.positive(sql, op, literal)?;
                sql.push(", FALSE)");
                Ok(())
            }
        }
    }
}

/// One comparison on one resolved field.
struct Leaf<'s> {
    schema: &'s ModelSchema,
    target: Resolved<'s>,
    /// The operator as written (for error messages).
    op: CompareOp,
}

impl Leaf<'_> {
    fn kind(&self) -> FieldKind {
        if self.target.path.is_empty() {
            self.target.field.kind
        } else {
            FieldKind::Any
        }
    }

    /// How the compared value is stored; `None` for a document path.
    fn storage(&self) -> Option<Storage> {
        self.target.path.is_empty().then(|| storage(self.kind()))
    }

    fn invalid(&self, expected: &str) -> Error {
        let attr = self.target.field.attr.as_str();
        Error::validation(format!(
            "Invalid value for {}.{attr} in '{}': expected {expected}",
            self.schema.name,
            self.op.as_str()
        ))
        .with_context("model", self.schema.name.as_str())
        .with_context("field", attr)
    }

    fn unsupported(&self, dialect: Dialect, what: &str) -> Error {
        dialect_error(
            dialect,
            format!(
                "{} cannot run '{}' on {}.{} ({what})",
                dialect.backend(),
                self.op.as_str(),
                self.schema.name,
                self.target.field.attr
            ),
        )
    }

    /// The literal bound to the field kind, as the memory engine binds it:
    /// numbers stay numbers for numeric kinds, else the kind decides.
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

    /// The parameter for a bound literal.
    fn param(&self, value: &Value) -> Result<SqlValue> {
        if self.target.path.is_empty() {
            return encode(self.kind(), value);
        }
        // What SQLite's json_extract returns for a JSON value.
        Ok(match value {
            Value::Bool(b) => SqlValue::Int(i64::from(*b)),
            Value::List(_) | Value::Map(_) | Value::Bytes(_) | Value::Vector(_) => {
                SqlValue::Text(value.to_json().to_string())
            }
            other => encode(FieldKind::Link, other)?,
        })
    }

    /// Writes the compared column (or the document path into it).
    fn column(&self, sql: &mut Sql) -> Result<()> {
        if self.target.path.is_empty() {
            sql.ident(&self.target.field.storage)?;
            return Ok(());
        }
        if sql.dialect != Dialect::Sqlite {
            return Err(self.unsupported(sql.dialect, "document paths need SQLite's json_extract"));
        }
        let mut json_path = String::from("$");
        for key in &self.target.path {
            if key.contains('"') || key.contains('\0') {
                return Err(self.unsupported(sql.dialect, "a path key contains a quote or NUL"));
            }
            json_path.push_str(".\"");
            json_path.push_str(key);
            json_path.push('"');
        }
        sql.push("json_extract(");
        sql.ident(&self.target.field.storage)?;
        sql.push(", ");
        sql.bind(SqlValue::Text(json_path));
        sql.push(")");
        Ok(())
    }

    fn positive(&self, sql: &mut Sql, op: CompareOp, literal: &Json) -> Result<()> {
        match op {
            CompareOp::Eq | CompareOp::Ne => self.equality(sql, op == CompareOp::Ne, literal),
            CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge => {
                self.ordering(sql, op, literal)
            }
            CompareOp::In | CompareOp::NotIn => {
                self.membership(sql, op == CompareOp::NotIn, literal)
            }
            CompareOp::Contains => self.contains(sql, literal),
            CompareOp::Startswith | CompareOp::Endswith | CompareOp::Like => {
                self.pattern(sql, op, literal)
            }
            CompareOp::IsNull => self.null_test(sql, "IS NULL"),
            CompareOp::IsNotNull | CompareOp::Exists => self.null_test(sql, "IS NOT NULL"),
        }
    }

    fn null_test(&self, sql: &mut Sql, test: &str) -> Result<()> {
        self.column(sql)?;
        sql.push(" ").push(test);
        Ok(())
    }

    /// `=` / `!=`; `!=` matches nulls, `== None` is `IS NULL`.
    fn equality(&self, sql: &mut Sql, not_equal: bool, literal: &Json) -> Result<()> {
        let value = self.value(literal)?;
        if value.is_null() {
            return self.null_test(sql, if not_equal { "IS NOT NULL" } else { "IS NULL" });
        }
        let param = self.param(&value)?;
        if !not_equal {
            self.column(sql)?;
            sql.push(" = ").bind(param);
            return Ok(());
        }
        sql.push("(");
        self.column(sql)?;
        sql.push(" <> ").bind(param).push(" OR ");
        self.column(sql)?;
        sql.push(" IS NULL)");
        Ok(())
    }

    fn ordering(&self, sql: &mut Sql, op: CompareOp, literal: &Json) -> Result<()> {
        if self.storage() == Some(Storage::Json) {
            return Err(self.unsupported(sql.dialect, "JSON-stored values have no SQL order"));
        }
        let value = self.value(literal)?;
        if value.is_null() {
            // A null bound never compares (memory engine: not comparable).
            sql.push("FALSE");
            return Ok(());
        }
        let symbol = match op {
            CompareOp::Lt => " < ",
            CompareOp::Le => " <= ",
            CompareOp::Gt => " > ",
            _ => " >= ",
        };
        let param = self.param(&value)?;
        self.column(sql)?;
        sql.push(symbol).bind(param);
        Ok(())
    }

    /// `in` / `not_in`; a null in the list matches null fields, and
    /// `not_in` matches nulls unless the list holds one.
    fn membership(&self, sql: &mut Sql, negate: bool, literal: &Json) -> Result<()> {
        let Json::Array(items) = literal else {
            return Err(Error::query(format!(
                "'{}' on {}.{} needs a list",
                self.op.as_str(),
                self.schema.name,
                self.target.field.attr
            )));
        };
        let values = items
            .iter()
            .map(|v| self.value(v))
            .collect::<Result<Vec<_>>>()?;
        let has_null = values.iter().any(Value::is_null);
        let params = values
            .iter()
            .filter(|v| !v.is_null())
            .map(|v| self.param(v))
            .collect::<Result<Vec<_>>>()?;
        match (negate, params.is_empty(), has_null) {
            (false, true, false) => sql.push("FALSE"),
            (true, true, false) => sql.push("TRUE"),
            (false, true, true) => return self.null_test(sql, "IS NULL"),
            (true, true, true) => return self.null_test(sql, "IS NOT NULL"),
            (_, false, _) => {
                let (keyword, null_test, joiner) = match (negate, has_null) {
                    (false, _) => (" IN ", "IS NULL", " OR "),
                    (true, false) => (" NOT IN ", "IS NULL", " OR "),
                    (true, true) => (" NOT IN ", "IS NOT NULL", " AND "),
                };
                let with_null = negate || has_null;
                if with_null {
                    sql.push("(");
                }
                self.column(sql)?;
                sql.push(keyword).bind_list(params);
                if with_null {
                    sql.push(joiner);
                    self.column(sql)?;
                    sql.push(" ").push(null_test).push(")");
                }
                sql
            }
        };
        Ok(())
    }

    fn like(&self, sql: &mut Sql, pattern: String) -> Result<()> {
        self.column(sql)?;
        sql.push(" LIKE ")
            .bind(SqlValue::Text(pattern))
            .push(" ESCAPE '")
            .push(LIKE_ESCAPE.encode_utf8(&mut [0; 4]))
            .push("'");
        Ok(())
    }

    /// Substring for strings, membership for lists and vectors, key
    /// presence for dicts (the memory engine's `contains`).
    fn contains(&self, sql: &mut Sql, literal: &Json) -> Result<()> {
        let needle = Value::from_json_untyped(literal).map_err(|_| self.invalid("a value"))?;
        match (self.storage(), self.kind()) {
            (Some(Storage::Text), _) => match needle.as_str() {
                Some(text) => self.like(sql, format!("%{}%", escape_like(text))),
                None => {
                    sql.push("FALSE");
                    Ok(())
                }
            },
            (Some(Storage::Json), FieldKind::List | FieldKind::Vector) => {
                self.element(sql, &needle)
            }
            (Some(Storage::Json), FieldKind::Dict) => match needle.as_str() {
                Some(key) => self.has_key(sql, key),
                None => {
                    sql.push("FALSE");
                    Ok(())
                }
            },
            (Some(Storage::Integer | Storage::Real | Storage::Bool), _) => {
                sql.push("FALSE");
                Ok(())
            }
            _ => Err(self.unsupported(sql.dialect, "the stored type is not known to SQL")),
        }
    }

    /// List membership of a scalar element.
    fn element(&self, sql: &mut Sql, needle: &Value) -> Result<()> {
        let param = match needle {
            Value::Null => SqlValue::Null,
            Value::Bool(_) | Value::Int(_) | Value::Float(_) | Value::Str(_) => {
                self.param_scalar(needle)?
            }
            _ => return Err(self.unsupported(sql.dialect, "the element is not a scalar")),
        };
        match sql.dialect {
            Dialect::Sqlite => {
                sql.push("EXISTS (SELECT 1 FROM json_each(");
                self.column(sql)?;
                if param == SqlValue::Null {
                    sql.push(") WHERE json_each.type = 'null')");
                } else {
                    sql.push(") WHERE json_each.value = ").bind(param).push(")");
                }
            }
            Dialect::Postgres => {
                self.column(sql)?;
                let array = serde_json::Value::Array(vec![needle.to_json()]).to_string();
                sql.push("::jsonb @> ")
                    .bind(SqlValue::Text(array))
                    .push("::jsonb");
            }
            Dialect::Mysql => {
                sql.push("JSON_CONTAINS(");
                self.column(sql)?;
                sql.push(", ")
                    .bind(SqlValue::Text(needle.to_json().to_string()))
                    .push(")");
            }
        }
        Ok(())
    }

    fn param_scalar(&self, value: &Value) -> Result<SqlValue> {
        Ok(match value {
            Value::Bool(b) => SqlValue::Int(i64::from(*b)),
            other => encode(FieldKind::Link, other)?,
        })
    }

    fn has_key(&self, sql: &mut Sql, key: &str) -> Result<()> {
        match sql.dialect {
            Dialect::Sqlite => {
                sql.push("EXISTS (SELECT 1 FROM json_each(");
                self.column(sql)?;
                sql.push(") WHERE json_each.key = ")
                    .bind(SqlValue::Text(key.to_owned()))
                    .push(")");
            }
            Dialect::Postgres => {
                sql.push("jsonb_exists(");
                self.column(sql)?;
                sql.push("::jsonb, ")
                    .bind(SqlValue::Text(key.to_owned()))
                    .push(")");
            }
            Dialect::Mysql => {
                if key.contains('"') {
                    return Err(self.unsupported(sql.dialect, "the key contains a quote"));
                }
                sql.push("JSON_CONTAINS_PATH(");
                self.column(sql)?;
                sql.push(", 'one', ")
                    .bind(SqlValue::Text(format!("$.\"{key}\"")))
                    .push(")");
            }
        }
        Ok(())
    }

    /// `startswith` / `endswith` / `like`: case-sensitive, on strings only.
    fn pattern(&self, sql: &mut Sql, op: CompareOp, literal: &Json) -> Result<()> {
        let text = literal.as_str().ok_or_else(|| self.invalid("a string"))?;
        match self.storage() {
            Some(Storage::Text) => {}
            Some(Storage::Integer | Storage::Real | Storage::Bool) => {
                sql.push("FALSE");
                return Ok(());
            }
            _ => return Err(self.unsupported(sql.dialect, "the stored type is not known to SQL")),
        }
        let pattern = match op {
            CompareOp::Startswith => format!("{}%", escape_like(text)),
            CompareOp::Endswith => format!("%{}", escape_like(text)),
            _ => like_pattern(text),
        };
        self.like(sql, pattern)
    }
}
