//! IR predicates -> MongoDB filter documents, with the memory engine's
//! semantics (API.md §4.1, §16 row 30).
//!
//! Safety: every literal sits under an operator (`{"f": {"$eq": v}}`, never
//! `{"f": v}`), so a user document such as `{"$gt": ""}` is compared as a
//! value and never read as an operator; regexes are built only from escaped
//! text; document-path segments that MongoDB would read as syntax (`.`,
//! leading `$`, NUL) are refused.

use aura_core::error::{Error, Result};
use aura_core::ir::{BoolOp, CompareOp, Direction, Expr, OrderTerm};
use aura_core::schema::{FieldKind, ModelSchema};
use aura_core::value::Value;
use mongodb::bson::{doc, Bson, Document};

use crate::convert::{doc_key, literal, value_to_bson};

/// A resolved field: its document path and its kind (`Any` below a path).
#[derive(Debug, Clone, PartialEq)]
pub struct FieldPath {
    pub path: String,
    pub kind: FieldKind,
}

fn check_segment(model: &str, segment: &str) -> Result<()> {
    if segment.is_empty()
        || segment.contains('.')
        || segment.starts_with('$')
        || segment.contains('\0')
    {
        return Err(Error::query(format!(
            "{model}: a document path segment that is empty, contains '.' or NUL, or starts with '$' cannot be expressed in MongoDB"
        ))
        .with_context("model", model)
        .with_context("driver", crate::BACKEND));
    }
    Ok(())
}

/// `field` (storage or attribute name) plus an optional document path.
pub fn resolve(schema: &ModelSchema, field: &str, path: Option<&[String]>) -> Result<FieldPath> {
    let def = schema.field(field).ok_or_else(|| {
        Error::query(format!("{} has no field '{field}'", schema.name))
            .with_context("model", schema.name.as_str())
            .with_context("field", field)
    })?;
    let mut out = doc_key(schema, &def.storage).to_owned();
    let mut kind = def.kind;
    for segment in path.unwrap_or_default() {
        check_segment(&schema.name, segment)?;
        out.push('.');
        out.push_str(segment);
        kind = FieldKind::Any;
    }
    Ok(FieldPath { path: out, kind })
}

/// A dotted field path as written in `sort` / `projection` (`meta.a.b`).
pub fn resolve_dotted(schema: &ModelSchema, dotted: &str) -> Result<FieldPath> {
    let mut parts = dotted.split('.');
    let root = parts.next().unwrap_or(dotted);
    let rest: Vec<String> = parts.map(str::to_owned).collect();
    resolve(schema, root, (!rest.is_empty()).then_some(rest.as_slice()))
}

/// Matches no document (every document has an `_id`).
pub fn nothing() -> Document {
    doc! {"_id": {"$exists": false}}
}

/// The implicit AND of a filter list.
pub fn filter_doc(schema: &ModelSchema, filters: &[Expr]) -> Result<Document> {
    let parts = filters
        .iter()
        .map(|e| expr(schema, e))
        .collect::<Result<Vec<_>>>()?;
    Ok(and(parts))
}

fn and(mut parts: Vec<Document>) -> Document {
    parts.retain(|d| !d.is_empty());
    match parts.len() {
        0 => Document::new(),
        1 => parts.pop().unwrap_or_default(),
        _ => doc! {"$and": parts},
    }
}

fn unbound(name: &str) -> Error {
    Error::query(format!("Parameter '{name}' is not bound")).with_context("param", name)
}

fn expr(schema: &ModelSchema, e: &Expr) -> Result<Document> {
    match e {
        Expr::Compare { op, left, right } => compare(schema, *op, left, right),
        Expr::Bool { op, operands } => {
            let parts = operands
                .iter()
                .map(|o| expr(schema, o))
                .collect::<Result<Vec<_>>>()?;
            Ok(match op {
                BoolOp::And => and(parts),
                BoolOp::Or if parts.is_empty() => nothing(),
                BoolOp::Or => doc! {"$or": parts},
            })
        }
        Expr::Not { operand } => Ok(doc! {"$nor": [expr(schema, operand)?]}),
        Expr::Param { name } => Err(unbound(name)),
        Expr::Field { .. } | Expr::Literal { .. } | Expr::Distance { .. } => Err(Error::query(
            "A filter must be a comparison, a boolean combination or a negation",
        )),
    }
}

fn flip(op: CompareOp) -> CompareOp {
    match op {
        CompareOp::Lt => CompareOp::Gt,
        CompareOp::Le => CompareOp::Ge,
        CompareOp::Gt => CompareOp::Lt,
        CompareOp::Ge => CompareOp::Le,
        other => other,
    }
}

fn invalid(schema: &ModelSchema, field: &str, op: CompareOp, expected: &str) -> Error {
    Error::validation(format!(
        "Invalid value for {}.{field} in '{}': expected {expected}",
        schema.name,
        op.as_str()
    ))
    .with_context("model", schema.name.as_str())
    .with_context("field", field)
}

/// `text` as a regex that matches it literally: ASCII punctuation is
/// backslash-escaped and control characters are written as `\xNN`, which
/// PCRE and every compatible engine read the same way.
pub fn escape_regex(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if c.is_ascii_control() {
            out.push_str(&format!("\\x{:02x}", u32::from(c)));
        } else if c.is_ascii_punctuation() || c == ' ' {
            out.push('\\');
            out.push(c);
        } else {
            out.push(c);
        }
    }
    out
}

/// End of input in PCRE and Python alike (`$` also matches before a final
/// newline in both).
const END: &str = "(?![\\s\\S])";

/// SQL LIKE (`%` any run, `_` one character) as an anchored regex.
pub fn like_regex(pattern: &str) -> String {
    let mut out = String::from("^");
    for c in pattern.chars() {
        match c {
            '%' => out.push_str("[\\s\\S]*"),
            '_' => out.push_str("[\\s\\S]"),
            other => out.push_str(&escape_regex(other.encode_utf8(&mut [0; 4]))),
        }
    }
    out.push_str(END);
    out
}

fn regex(path: &str, pattern: String) -> Document {
    // Restricted to strings: a regex would otherwise match list elements.
    doc! {path: {"$type": "string", "$regex": pattern}}
}

fn compare(schema: &ModelSchema, op: CompareOp, left: &Expr, right: &Expr) -> Result<Document> {
    let (op, left, right) = match (left, right) {
        (Expr::Literal { .. }, Expr::Field { .. }) => (flip(op), right, left),
        _ => (op, left, right),
    };
    let Expr::Field { field, path, .. } = left else {
        return Err(match left {
            Expr::Param { name } => unbound(name),
            _ => Error::query(format!("'{}' needs a field on one side", op.as_str())),
        });
    };
    let target = resolve(schema, field, path.as_deref())?;
    let json = match (op, right) {
        (CompareOp::IsNull | CompareOp::IsNotNull | CompareOp::Exists, _) => {
            &serde_json::Value::Null
        }
        (_, Expr::Literal { value }) => value,
        (_, Expr::Param { name }) => return Err(unbound(name)),
        _ => {
            return Err(Error::query(
                "Comparisons between two fields are not supported",
            ))
        }
    };
    let p = target.path.as_str();
    let bind = |json: &serde_json::Value| -> Result<Bson> {
        literal(json, target.kind)
            .map(|v| value_to_bson(&v))
            .map_err(|_| invalid(schema, field, op, target.kind.as_str()))
    };
    let listy = matches!(target.kind, FieldKind::List | FieldKind::Vector);
    Ok(match op {
        CompareOp::Eq if json.is_null() => doc! {p: {"$eq": Bson::Null}},
        // A list field never equals a scalar (MongoDB would test membership).
        CompareOp::Eq if listy && !json.is_array() => nothing(),
        CompareOp::Eq => doc! {p: {"$eq": bind(json)?}},
        CompareOp::Ne if json.is_null() => doc! {p: {"$ne": Bson::Null}},
        CompareOp::Ne if listy && !json.is_array() => Document::new(),
        // `$ne` also matches null and missing, as `!=` must (§16 row 30).
        CompareOp::Ne => doc! {p: {"$ne": bind(json)?}},
        CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge if json.is_null() => {
            nothing()
        }
        CompareOp::Lt => doc! {p: {"$lt": bind(json)?}},
        CompareOp::Le => doc! {p: {"$lte": bind(json)?}},
        CompareOp::Gt => doc! {p: {"$gt": bind(json)?}},
        CompareOp::Ge => doc! {p: {"$gte": bind(json)?}},
        CompareOp::In | CompareOp::NotIn => {
            let serde_json::Value::Array(items) = json else {
                return Err(Error::query(format!(
                    "'{}' on {}.{field} needs a list",
                    op.as_str(),
                    schema.name
                )));
            };
            let values = items.iter().map(bind).collect::<Result<Vec<_>>>()?;
            if op == CompareOp::In {
                doc! {p: {"$in": values}}
            } else {
                // `$nin` matches null and missing too.
                doc! {p: {"$nin": values}}
            }
        }
        CompareOp::Contains => contains(schema, field, &target, json)?,
        CompareOp::Startswith | CompareOp::Endswith | CompareOp::Like => {
            let text = json
                .as_str()
                .ok_or_else(|| invalid(schema, field, op, "a string"))?;
            let pattern = match op {
                CompareOp::Startswith => format!("^{}", escape_regex(text)),
                CompareOp::Endswith => format!("{}{END}", escape_regex(text)),
                _ => like_regex(text),
            };
            regex(p, pattern)
        }
        CompareOp::IsNull => doc! {p: {"$eq": Bson::Null}},
        CompareOp::IsNotNull | CompareOp::Exists => doc! {p: {"$ne": Bson::Null}},
    })
}

/// Substring for strings, membership for lists, key presence for dicts.
fn contains(
    schema: &ModelSchema,
    field: &str,
    target: &FieldPath,
    json: &serde_json::Value,
) -> Result<Document> {
    let p = target.path.as_str();
    let needle = Value::from_json_untyped(json)
        .map_err(|_| invalid(schema, field, CompareOp::Contains, "a value"))?;
    let substring = |s: &str| regex(p, escape_regex(s));
    let member = || doc! {p: {"$elemMatch": {"$eq": value_to_bson(&needle)}}};
    Ok(match target.kind {
        FieldKind::List | FieldKind::Vector => member(),
        FieldKind::Dict => match needle.as_str() {
            Some(key) if check_segment(&schema.name, key).is_ok() => {
                doc! {format!("{p}.{key}"): {"$exists": true}}
            }
            Some(_) => {
                return Err(Error::query(format!(
                    "{}.{field}: a key that contains '.' or NUL or starts with '$' cannot be tested in MongoDB",
                    schema.name
                )))
            }
            None => nothing(),
        },
        FieldKind::Any | FieldKind::Enum | FieldKind::Link => match needle.as_str() {
            Some(s) => doc! {"$or": [substring(s), member()]},
            None => member(),
        },
        _ => match needle.as_str() {
            Some(s) => substring(s),
            None => nothing(),
        },
    })
}

/// The sort document: the requested terms, then `_id` so ties keep the
/// primary-key order the memory engine uses.
pub fn sort_doc(schema: &ModelSchema, sort: &[OrderTerm]) -> Result<Document> {
    let mut out = Document::new();
    for term in sort {
        let path = resolve_dotted(schema, &term.field)?.path;
        let dir = if term.direction == Direction::Desc {
            -1
        } else {
            1
        };
        if !out.contains_key(&path) {
            out.insert(path, dir);
        }
    }
    if !out.contains_key("_id") {
        out.insert("_id", 1);
    }
    Ok(out)
}

/// The projection: the selected top-level fields (the primary key, `_id`,
/// always comes back).
pub fn projection_doc(schema: &ModelSchema, projection: &[String]) -> Result<Option<Document>> {
    if projection.is_empty() {
        return Ok(None);
    }
    let mut out = Document::new();
    for name in projection {
        let root = name.split('.').next().unwrap_or(name);
        let path = resolve(schema, root, None)?.path;
        out.insert(path, 1);
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_core::schema::FieldDef;
    use serde_json::json;

    fn schema() -> ModelSchema {
        ModelSchema {
            name: "B".into(),
            primary_key: Some("id".into()),
            fields: vec![
                FieldDef::new("id", FieldKind::Int),
                FieldDef::new("title", FieldKind::Str).alias("TITLE"),
                FieldDef::new("tags", FieldKind::List),
                FieldDef::new("meta", FieldKind::Dict),
                FieldDef::new("blob", FieldKind::Bytes).nullable(),
            ],
            relationships: vec![],
        }
    }

    fn cmp(op: CompareOp, field: &str, value: serde_json::Value) -> Expr {
        Expr::compare(op, Expr::field("B", field), Expr::literal(value))
    }

    fn compile(e: Expr) -> Document {
        filter_doc(&schema(), &[e]).unwrap()
    }

    #[test]
    fn comparisons_put_every_literal_under_an_operator() {
        assert_eq!(
            compile(cmp(CompareOp::Eq, "id", json!(3))),
            doc! {"_id": {"$eq": 3_i64}}
        );
        assert_eq!(
            compile(cmp(CompareOp::Eq, "meta", json!({"$gt": ""}))),
            doc! {"meta": {"$eq": {"$gt": ""}}}
        );
        assert_eq!(
            compile(cmp(CompareOp::Ne, "title", json!("x"))),
            doc! {"TITLE": {"$ne": "x"}}
        );
        assert_eq!(
            compile(cmp(CompareOp::Ge, "id", json!(2.5))),
            doc! {"_id": {"$gte": 2.5}}
        );
        assert_eq!(
            compile(Expr::compare(
                CompareOp::Lt,
                Expr::literal(json!(5)),
                Expr::field("B", "id")
            )),
            doc! {"_id": {"$gt": 5_i64}}
        );
        assert_eq!(compile(cmp(CompareOp::Lt, "id", json!(null))), nothing());
        assert_eq!(
            compile(cmp(CompareOp::NotIn, "id", json!([1, 2]))),
            doc! {"_id": {"$nin": [1_i64, 2_i64]}}
        );
        assert_eq!(
            compile(cmp(CompareOp::Eq, "blob", json!({"__bytes__": "AAE="}))),
            doc! {"blob": {"$eq": Bson::Binary(mongodb::bson::Binary {
            subtype: mongodb::bson::spec::BinarySubtype::Generic, bytes: vec![0, 1] })}}
        );
        assert_eq!(
            compile(cmp(CompareOp::IsNull, "blob", json!(null))),
            doc! {"blob": {"$eq": Bson::Null}}
        );
        assert_eq!(compile(cmp(CompareOp::Eq, "tags", json!("a"))), nothing());
    }

    #[test]
    fn text_operators_are_escaped_regexes() {
        assert_eq!(
            compile(cmp(CompareOp::Contains, "title", json!("a.b*(c)"))),
            doc! {"TITLE": {"$type": "string", "$regex": r"a\.b\*\(c\)"}}
        );
        assert_eq!(
            compile(cmp(CompareOp::Startswith, "title", json!("^M"))),
            doc! {"TITLE": {"$type": "string", "$regex": r"^\^M"}}
        );
        assert_eq!(
            compile(cmp(CompareOp::Endswith, "title", json!("s\n"))),
            doc! {"TITLE": {"$type": "string", "$regex": r"s\x0a(?![\s\S])"}}
        );
        assert_eq!(
            compile(cmp(CompareOp::Like, "title", json!("_t%.e"))),
            doc! {"TITLE": {"$type": "string", "$regex": r"^[\s\S]t[\s\S]*\.e(?![\s\S])"}}
        );
        assert_eq!(
            compile(cmp(CompareOp::Contains, "tags", json!("x"))),
            doc! {"tags": {"$elemMatch": {"$eq": "x"}}}
        );
        assert_eq!(
            compile(cmp(CompareOp::Contains, "meta", json!("k"))),
            doc! {"meta.k": {"$exists": true}}
        );
    }

    #[test]
    fn logic_paths_and_refusals() {
        let path = Expr::compare(
            CompareOp::Eq,
            Expr::Field {
                model: "B".into(),
                field: "meta".into(),
                path: Some(vec!["a".into(), "b".into()]),
            },
            Expr::literal(json!(3)),
        );
        assert_eq!(compile(path), doc! {"meta.a.b": {"$eq": 3_i64}});
        assert_eq!(
            compile(Expr::negate(Expr::or(vec![cmp(
                CompareOp::Eq,
                "id",
                json!(1)
            )]))),
            doc! {"$nor": [{"$or": [{"_id": {"$eq": 1_i64}}]}]}
        );
        assert_eq!(compile(Expr::or(vec![])), nothing());
        assert_eq!(compile(Expr::and(vec![])), Document::new());
        let hostile = Expr::compare(
            CompareOp::Eq,
            Expr::Field {
                model: "B".into(),
                field: "meta".into(),
                path: Some(vec!["$where".into()]),
            },
            Expr::literal(json!(1)),
        );
        let err = filter_doc(&schema(), &[hostile]).unwrap_err();
        assert_eq!(err.code, aura_core::ErrorCode::QueryError);
        let err = filter_doc(&schema(), &[cmp(CompareOp::Eq, "nope", json!(1))]).unwrap_err();
        assert_eq!(err.message, "B has no field 'nope'");
    }

    #[test]
    fn sort_and_projection() {
        let s = schema();
        let sort = sort_doc(
            &s,
            &[OrderTerm {
                field: "title".into(),
                direction: Direction::Desc,
            }],
        )
        .unwrap();
        assert_eq!(sort, doc! {"TITLE": -1, "_id": 1});
        assert_eq!(
            projection_doc(&s, &["title".into(), "meta.a".into()]).unwrap(),
            Some(doc! {"TITLE": 1, "meta": 1})
        );
    }
}
