//! The Query IR of API.md §10 as serde types. Field order is the JSON key
//! order; empty or unset keys are omitted on output, except `operation`,
//! `model`, `consistency` and the `filters` of filter-only requests.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value as Json};

use crate::error::{Error, Result};
use crate::tagged::{deserialize_tagged, Tagged};

/// One request; the JSON tag is `operation` (deserialized in `Tagged`).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "operation", rename_all = "snake_case")]
pub enum Request {
    Select(Select),
    Count(Filtered),
    Exists(Filtered),
    Insert(Insert),
    Update(Update),
    Delete(Filtered),
    Upsert(Upsert),
    Raw(Raw),
    Traverse(Traverse),
    SearchPage(Select),
    Aggregate(Select),
}

/// The `operation` tag; variant order is `Request`'s (error messages list it).
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Operation {
    Select,
    Count,
    Exists,
    Insert,
    Update,
    Delete,
    Upsert,
    Raw,
    Traverse,
    SearchPage,
    Aggregate,
}

impl Tagged for Request {
    type Tag = Operation;
    const TAG: &'static str = "operation";
    const EXPECTING: &'static str = "internally tagged enum Request";

    fn body<'de, D: Deserializer<'de>>(
        tag: Operation,
        body: D,
    ) -> std::result::Result<Self, D::Error> {
        Ok(match tag {
            Operation::Select => Request::Select(Select::deserialize(body)?),
            Operation::Count => Request::Count(Filtered::deserialize(body)?),
            Operation::Exists => Request::Exists(Filtered::deserialize(body)?),
            Operation::Insert => Request::Insert(Insert::deserialize(body)?),
            Operation::Update => Request::Update(Update::deserialize(body)?),
            Operation::Delete => Request::Delete(Filtered::deserialize(body)?),
            Operation::Upsert => Request::Upsert(Upsert::deserialize(body)?),
            Operation::Raw => Request::Raw(Raw::deserialize(body)?),
            Operation::Traverse => Request::Traverse(Traverse::deserialize(body)?),
            Operation::SearchPage => Request::SearchPage(Select::deserialize(body)?),
            Operation::Aggregate => Request::Aggregate(Select::deserialize(body)?),
        })
    }
}

impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserialize_tagged(deserializer)
    }
}

impl Request {
    /// Parses an IR document; malformed IR is a `query_error`.
    pub fn from_json(json: Json) -> Result<Request> {
        serde_json::from_value(json).map_err(ir_error)
    }

    pub fn from_json_str(text: &str) -> Result<Request> {
        serde_json::from_str(text).map_err(ir_error)
    }

    pub fn to_json(&self) -> Json {
        // Serializing these types cannot fail: every map key is a string.
        serde_json::to_value(self).unwrap_or(Json::Null)
    }

    pub fn operation(&self) -> &'static str {
        match self {
            Request::Select(_) => "select",
            Request::Count(_) => "count",
            Request::Exists(_) => "exists",
            Request::Insert(_) => "insert",
            Request::Update(_) => "update",
            Request::Delete(_) => "delete",
            Request::Upsert(_) => "upsert",
            Request::Raw(_) => "raw",
            Request::Traverse(_) => "traverse",
            Request::SearchPage(_) => "search_page",
            Request::Aggregate(_) => "aggregate",
        }
    }

    /// The error for a request a backend does not run: the capability error
    /// of API.md §8 for the derived operations that need one, otherwise a
    /// query error (operations such as insert have their own entry points).
    pub fn not_served(&self, backend: &str) -> Error {
        match self {
            Request::Traverse(_) => {
                Error::capability(backend, "graph_traversal", "graph traversal")
            }
            Request::Aggregate(_) => Error::capability(
                backend,
                "aggregations_and_facets",
                "aggregations and facets",
            ),
            Request::SearchPage(_) => {
                Error::capability(backend, "ranked_pagination", "ranked pagination")
            }
            other => Error::query(format!(
                "operation '{}' cannot run through execute()",
                other.operation()
            )),
        }
    }

    /// Target model (`None` for raw statements).
    pub fn model(&self) -> Option<&str> {
        match self {
            Request::Select(s) | Request::SearchPage(s) | Request::Aggregate(s) => Some(&s.model),
            Request::Count(f) | Request::Exists(f) | Request::Delete(f) => Some(&f.model),
            Request::Insert(i) => Some(&i.model),
            Request::Update(u) => Some(&u.model),
            Request::Upsert(u) => Some(&u.model),
            Request::Traverse(t) => Some(&t.model),
            Request::Raw(_) => None,
        }
    }
}

/// serde's "invalid type/value" messages quote the offending value; keep
/// only what was expected so no bound value reaches the message.
fn ir_error(e: serde_json::Error) -> Error {
    invalid_ir(e.to_string())
}

/// The error for an IR that does not deserialize. serde's "invalid type /
/// value" messages quote the offending value, so only the expectation is
/// kept: no bound value reaches an error message.
pub fn invalid_ir(text: String) -> Error {
    let detail = if text.starts_with("invalid type") || text.starts_with("invalid value") {
        match text.find(", expected ") {
            Some(at) => format!("invalid value{}", &text[at..]),
            None => "invalid value".to_owned(),
        }
    } else {
        text
    };
    Error::query(format!("Invalid query IR: {detail}"))
}

fn default_consistency() -> String {
    "strong".to_owned()
}

fn default_operator() -> String {
    "or".to_owned()
}

fn default_rank() -> String {
    "bm25".to_owned()
}

/// `select`, `search_page` and `aggregate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Select {
    pub model: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Expr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub projection: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<Include>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort: Vec<OrderTerm>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<VectorClause>,
    /// `{}` means "approximate with defaults", so only `None` is omitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector_ann: Option<Map<String, Json>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextClause>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_search: Option<TextSearch>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hybrid: Option<Hybrid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fusion: Option<Fusion>,
    #[serde(default = "default_consistency")]
    pub consistency: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_size: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor: Option<Json>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub facets: Vec<Facet>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub metrics: Vec<MetricRequest>,
    /// Addition beyond API.md §10 (aggregate only): the metrics per term.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group_by: Option<Facet>,
}

impl Select {
    /// An aggregate needs a facet, a metric or a `group_by` (API.md §4.2).
    pub fn check_aggregate(&self) -> Result<()> {
        if self.facets.is_empty() && self.metrics.is_empty() && self.group_by.is_none() {
            return Err(Error::query(
                "aggregate() requires at least one facet or metric (facet(), aggregate_count(), min(), max())",
            ));
        }
        Ok(())
    }

    /// A bare `select` of every row of `model`.
    pub fn new(model: &str) -> Self {
        Select {
            model: model.to_owned(),
            filters: Vec::new(),
            projection: Vec::new(),
            include: Vec::new(),
            sort: Vec::new(),
            limit: None,
            offset: None,
            vector: None,
            vector_ann: None,
            text: None,
            text_search: None,
            hybrid: None,
            fusion: None,
            consistency: default_consistency(),
            timeout_ms: None,
            page_size: None,
            cursor: None,
            facets: Vec::new(),
            metrics: Vec::new(),
            group_by: None,
        }
    }

    /// True when a ranked clause orders the result by score.
    pub fn is_ranked(&self) -> bool {
        self.vector.is_some()
            || self.text.is_some()
            || self.text_search.is_some()
            || self.hybrid.is_some()
    }
}

/// `count`, `exists` and `delete`: a model and its filters.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Filtered {
    pub model: String,
    #[serde(default)]
    pub filters: Vec<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_ms: Option<u64>,
}

impl Filtered {
    pub fn new(model: &str, filters: Vec<Expr>) -> Self {
        Filtered {
            model: model.to_owned(),
            filters,
            timeout_ms: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Insert {
    pub model: String,
    pub rows: Vec<Map<String, Json>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_conflict: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Update {
    pub model: String,
    #[serde(default)]
    pub filters: Vec<Expr>,
    pub set: Map<String, Json>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Upsert {
    pub model: String,
    pub key: Map<String, Json>,
    #[serde(default)]
    pub values: Map<String, Json>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Raw {
    pub statement: String,
    #[serde(default)]
    pub params: Json,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Traverse {
    pub model: String,
    #[serde(default)]
    pub start: Vec<Expr>,
    #[serde(default)]
    pub steps: Vec<String>,
    pub max_depth: u64,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub filters: Vec<Expr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Include {
    pub link: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sort: Vec<OrderTerm>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    #[default]
    Asc,
    Desc,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrderTerm {
    pub field: String,
    #[serde(default)]
    pub direction: Direction,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VectorClause {
    pub field: String,
    pub metric: String,
    pub query: Vec<f64>,
}

/// Legacy unranked text clause.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextClause {
    pub fields: Vec<String>,
    pub query: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TextSearch {
    pub field: String,
    pub query: String,
    #[serde(default = "default_operator")]
    pub operator: String,
    #[serde(default = "default_rank")]
    pub rank: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Weights {
    pub text: f64,
    pub vector: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Hybrid {
    pub text_field: String,
    pub text_query: String,
    pub vector_field: String,
    pub vector: Vec<f64>,
    pub top_k: u64,
    pub metric: String,
    pub weights: Weights,
    pub fusion: String,
    #[serde(default = "default_operator")]
    pub operator: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub k1: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub b: Option<f64>,
}

/// Legacy vector/text blend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fusion {
    pub alpha: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Facet {
    pub field: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricRequest {
    pub op: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
}

/// Buckets a facet (or groups a `group_by`) returns when the query gives no limit.
pub const DEFAULT_FACET_LIMIT: u64 = 10;

impl Facet {
    /// The bucket limit (API.md §4.3: default 10; 0 is refused).
    pub fn bucket_limit(&self) -> Result<usize> {
        match self.limit.unwrap_or(DEFAULT_FACET_LIMIT) {
            0 => Err(Error::query("facet limit must be a positive int")),
            n => Ok(usize::try_from(n).unwrap_or(usize::MAX)),
        }
    }
}

/// The metric operations of an aggregate (API.md §4.3 plus `sum`/`avg`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricOp {
    Count,
    Min,
    Max,
    Sum,
    Avg,
}

impl MetricRequest {
    /// The operation and, except for `count`, its (non-blank) field name.
    pub fn parse(&self) -> Result<(MetricOp, Option<&str>)> {
        let op = match self.op.as_str() {
            "count" => return Ok((MetricOp::Count, None)),
            "min" => MetricOp::Min,
            "max" => MetricOp::Max,
            "sum" => MetricOp::Sum,
            "avg" => MetricOp::Avg,
            _ => {
                return Err(
                    Error::query("metric op must be count, min, max, sum or avg")
                        .with_context("op", self.op.as_str()),
                )
            }
        };
        let field = self
            .field
            .as_deref()
            .filter(|f| !f.trim().is_empty())
            .ok_or_else(|| Error::query(format!("{}() requires a field name", self.op)))?;
        Ok((op, Some(field)))
    }
}

/// Expressions; the JSON tag is `kind` (deserialized in `Tagged`, through
/// the `*Args` structs below, which list the same keys per variant).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Expr {
    Field {
        model: String,
        /// Storage name (an attribute name is accepted too).
        field: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        path: Option<Vec<String>>,
    },
    Literal {
        value: Json,
    },
    Param {
        name: String,
    },
    Compare {
        op: CompareOp,
        left: Box<Expr>,
        right: Box<Expr>,
    },
    Bool {
        op: BoolOp,
        operands: Vec<Expr>,
    },
    Not {
        operand: Box<Expr>,
    },
    Distance {
        field: String,
        metric: String,
        query: Vec<f64>,
    },
}

/// The `kind` tag; variant order is `Expr`'s (error messages list it).
#[derive(Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum ExprKind {
    Field,
    Literal,
    Param,
    Compare,
    Bool,
    Not,
    Distance,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldArgs {
    model: String,
    field: String,
    #[serde(default)]
    path: Option<Vec<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LiteralArgs {
    #[serde(default)]
    value: Json,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamArgs {
    name: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CompareArgs {
    op: CompareOp,
    left: Box<Expr>,
    right: Box<Expr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct BoolArgs {
    op: BoolOp,
    operands: Vec<Expr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NotArgs {
    operand: Box<Expr>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DistanceArgs {
    field: String,
    metric: String,
    query: Vec<f64>,
}

impl Tagged for Expr {
    type Tag = ExprKind;
    const TAG: &'static str = "kind";
    const EXPECTING: &'static str = "internally tagged enum Expr";

    fn body<'de, D: Deserializer<'de>>(
        tag: ExprKind,
        body: D,
    ) -> std::result::Result<Self, D::Error> {
        Ok(match tag {
            ExprKind::Field => {
                let FieldArgs { model, field, path } = FieldArgs::deserialize(body)?;
                Expr::Field { model, field, path }
            }
            ExprKind::Literal => Expr::Literal {
                value: LiteralArgs::deserialize(body)?.value,
            },
            ExprKind::Param => Expr::Param {
                name: ParamArgs::deserialize(body)?.name,
            },
            ExprKind::Compare => {
                let CompareArgs { op, left, right } = CompareArgs::deserialize(body)?;
                Expr::Compare { op, left, right }
            }
            ExprKind::Bool => {
                let BoolArgs { op, operands } = BoolArgs::deserialize(body)?;
                Expr::Bool { op, operands }
            }
            ExprKind::Not => Expr::Not {
                operand: NotArgs::deserialize(body)?.operand,
            },
            ExprKind::Distance => {
                let DistanceArgs {
                    field,
                    metric,
                    query,
                } = DistanceArgs::deserialize(body)?;
                Expr::Distance {
                    field,
                    metric,
                    query,
                }
            }
        })
    }
}

impl<'de> Deserialize<'de> for Expr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserialize_tagged(deserializer)
    }
}

impl Expr {
    pub fn field(model: &str, field: &str) -> Expr {
        Expr::Field {
            model: model.to_owned(),
            field: field.to_owned(),
            path: None,
        }
    }

    pub fn literal(value: impl Into<Json>) -> Expr {
        Expr::Literal {
            value: value.into(),
        }
    }

    /// `left <op> right` with boxed operands.
    pub fn compare(op: CompareOp, left: Expr, right: Expr) -> Expr {
        Expr::Compare {
            op,
            left: Box::new(left),
            right: Box::new(right),
        }
    }

    pub fn and(operands: Vec<Expr>) -> Expr {
        Expr::Bool {
            op: BoolOp::And,
            operands,
        }
    }

    pub fn or(operands: Vec<Expr>) -> Expr {
        Expr::Bool {
            op: BoolOp::Or,
            operands,
        }
    }

    pub fn negate(operand: Expr) -> Expr {
        Expr::Not {
            operand: Box::new(operand),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    In,
    NotIn,
    Contains,
    Startswith,
    Endswith,
    Like,
    IsNull,
    IsNotNull,
    Exists,
}

impl CompareOp {
    pub fn as_str(self) -> &'static str {
        match self {
            CompareOp::Eq => "eq",
            CompareOp::Ne => "ne",
            CompareOp::Lt => "lt",
            CompareOp::Le => "le",
            CompareOp::Gt => "gt",
            CompareOp::Ge => "ge",
            CompareOp::In => "in",
            CompareOp::NotIn => "not_in",
            CompareOp::Contains => "contains",
            CompareOp::Startswith => "startswith",
            CompareOp::Endswith => "endswith",
            CompareOp::Like => "like",
            CompareOp::IsNull => "is_null",
            CompareOp::IsNotNull => "is_not_null",
            CompareOp::Exists => "exists",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BoolOp {
    And,
    Or,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    const EXAMPLE: &str = r#"{"operation":"select","model":"Doc","filters":[{"kind":"compare","op":"contains","left":{"kind":"field","model":"Doc","field":"title"},"right":{"kind":"literal","value":"R"}}],"projection":["title"],"sort":[{"field":"id","direction":"desc"}],"limit":2,"offset":1,"consistency":"strong","timeout_ms":50}"#;

    fn round_trip(text: &str) -> String {
        let req = Request::from_json_str(text).unwrap();
        serde_json::to_string(&req).unwrap()
    }

    #[test]
    fn spec_example_round_trips_byte_for_byte() {
        assert_eq!(round_trip(EXAMPLE), EXAMPLE);
        let Request::Select(sel) = Request::from_json_str(EXAMPLE).unwrap() else {
            panic!("expected a select");
        };
        assert_eq!(sel.limit, Some(2));
        assert_eq!(sel.sort[0].direction, Direction::Desc);
    }

    #[test]
    fn other_nodes_round_trip() {
        for text in [
            r#"{"operation":"count","model":"M","filters":[]}"#,
            r#"{"operation":"exists","model":"M","filters":[{"kind":"compare","op":"is_null","left":{"kind":"field","model":"M","field":"meta","path":["a","b"]},"right":{"kind":"literal","value":null}}]}"#,
            r#"{"operation":"delete","model":"M","filters":[{"kind":"not","operand":{"kind":"bool","op":"or","operands":[]}}]}"#,
            r#"{"operation":"insert","model":"M","rows":[{"id":1,"b":{"__bytes__":"AA=="}}],"on_conflict":"ignore"}"#,
            r#"{"operation":"update","model":"M","filters":[],"set":{"name":"x"}}"#,
            r#"{"operation":"upsert","model":"M","key":{"id":1},"values":{"n":2}}"#,
            r#"{"operation":"raw","statement":"SELECT * FROM M","params":{}}"#,
            r#"{"operation":"traverse","model":"M","start":[],"steps":["author"],"max_depth":5,"limit":3}"#,
            r#"{"operation":"select","model":"D","vector":{"field":"e","metric":"cosine","query":[1.0,0.0]},"vector_ann":{},"consistency":"strong"}"#,
            r#"{"operation":"search_page","model":"D","text_search":{"field":"body","query":"q","operator":"or","rank":"bm25","k1":0.0},"consistency":"strong","page_size":2,"cursor":"ab"}"#,
            r#"{"operation":"aggregate","model":"D","consistency":"strong","facets":[{"field":"cat"}],"metrics":[{"op":"count"},{"op":"min","field":"n"}]}"#,
            r#"{"operation":"aggregate","model":"D","consistency":"strong","metrics":[{"op":"sum","field":"n"}],"group_by":{"field":"cat","limit":3}}"#,
            r#"{"operation":"select","model":"D","include":[{"link":"author","limit":2,"sort":[{"field":"id","direction":"asc"}]}],"hybrid":{"text_field":"body","text_query":"v","vector_field":"e","vector":[1.0],"top_k":3,"metric":"cosine","weights":{"text":0.5,"vector":0.5},"fusion":"weighted_sum","operator":"or"},"fusion":{"alpha":0.5},"consistency":"eventual"}"#,
        ] {
            assert_eq!(round_trip(text), text);
        }
    }

    #[test]
    fn unknown_keys_and_ops_are_query_errors() {
        for text in [
            r#"{"operation":"select","model":"M","zzz":1}"#,
            r#"{"operation":"frobnicate","model":"M"}"#,
            r#"{"operation":"count","model":"M","filters":[{"kind":"compare","op":"ilike","left":{"kind":"literal","value":1},"right":{"kind":"literal","value":1}}]}"#,
            r#"{"operation":"count","model":"M","filters":[{"kind":"field","model":"M","field":"a","extra":1}]}"#,
            r#"{"operation":"select","model":"M","limit":-1}"#,
            r#"[]"#,
        ] {
            let err = Request::from_json_str(text).unwrap_err();
            assert_eq!(err.code, ErrorCode::QueryError, "{text}");
        }
    }

    #[test]
    fn param_and_distance_round_trip() {
        for text in [
            r#"{"operation":"count","model":"M","filters":[{"kind":"compare","op":"eq","left":{"kind":"field","model":"M","field":"a"},"right":{"kind":"param","name":"p"}}]}"#,
            r#"{"operation":"count","model":"M","filters":[{"kind":"compare","op":"lt","left":{"kind":"distance","field":"e","metric":"cosine","query":[1.0,0.5]},"right":{"kind":"literal","value":0.2}}]}"#,
        ] {
            assert_eq!(round_trip(text), text);
        }
    }

    #[test]
    fn tags_are_found_anywhere_in_the_map() {
        let reordered = r#"{"model":"Doc","filters":[{"left":{"field":"title","kind":"field","model":"Doc"},"op":"contains","right":{"value":"R","kind":"literal"},"kind":"compare"}],"projection":["title"],"sort":[{"field":"id","direction":"desc"}],"limit":2,"offset":1,"consistency":"strong","timeout_ms":50,"operation":"select"}"#;
        assert_eq!(
            Request::from_json_str(reordered).unwrap(),
            Request::from_json_str(EXAMPLE).unwrap()
        );
        assert_eq!(round_trip(reordered), EXAMPLE);
        let literal =
            r#"{"operation":"count","model":"M","filters":[{"value":null,"kind":"literal"}]}"#;
        assert_eq!(
            round_trip(literal),
            r#"{"operation":"count","model":"M","filters":[{"kind":"literal","value":null}]}"#
        );
    }

    #[test]
    fn malformed_tags_and_foreign_keys_are_query_errors() {
        for (text, expected) in [
            (r#"{"model":"M"}"#, "missing field `operation`"),
            (r#"{}"#, "missing field `operation`"),
            (
                r#"{"model":"M","operation":"count","operation":"count"}"#,
                "duplicate field `operation`",
            ),
            (
                r#"{"operation":"count","model":"M","filters":[{"kind":"field","model":"M","field":"a","op":"eq"}]}"#,
                "unknown field `op`, expected one of `model`, `field`, `path`",
            ),
            (
                r#"{"operation":"count","model":"M","filters":[{"model":"M","field":"a","kind":"field","op":"eq"}]}"#,
                "unknown field `op`, expected one of `model`, `field`, `path`",
            ),
            (
                r#"{"operation":"count","model":"M","filters":[{"kind":"frob"}]}"#,
                "unknown variant `frob`, expected one of `field`, `literal`, `param`, `compare`, `bool`, `not`, `distance`",
            ),
            (
                r#"{"operation":"count","model":"M","filters":[{"op":"eq"}]}"#,
                "missing field `kind`",
            ),
            (
                r#"{"operation":"count","model":"M","filters":[{"kind":"param"}]}"#,
                "missing field `name`",
            ),
            (
                r#"{"operation":"count","model":"M","filters":[{"kind":"not","operand":1}]}"#,
                "invalid value, expected internally tagged enum Expr",
            ),
        ] {
            let err = Request::from_json_str(text).unwrap_err();
            assert_eq!(err.code, ErrorCode::QueryError, "{text}");
            assert!(err.message.contains(expected), "{text}: {}", err.message);
        }
    }

    #[test]
    fn error_messages_do_not_echo_values() {
        let err = Request::from_json_str(r#"{"operation":"select","model":"M","limit":"s3cret"}"#)
            .unwrap_err();
        assert!(!err.message.contains("s3cret"), "{}", err.message);
    }

    #[test]
    fn defaults_fill_missing_keys() {
        let req = Request::from_json_str(r#"{"operation":"select","model":"M"}"#).unwrap();
        assert_eq!(req, Request::Select(Select::new("M")));
        assert_eq!(req.operation(), "select");
        assert_eq!(req.model(), Some("M"));
        assert_eq!(req.to_json()["consistency"], "strong");
    }
}
