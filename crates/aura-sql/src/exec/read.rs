//! Reads: select (with `.include()` loaded one query per relationship
//! level), count, exists, `raw()` and explain.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use aura_core::ir::{Filtered, Include, Select};
use aura_core::{Error, FieldKind, Key, ModelSchema, Result, Row, Value};
use serde_json::Value as Json;

use super::{json_param, Chunks, Executor, Need, KEYS_PER_QUERY};
use crate::{encode, Dialect, RawRows, RelatedQuery, Relation, SqlConnection, SqlValue, Statement};

/// One result row and its loaded relationships (in include order).
#[derive(Debug, Clone, PartialEq)]
pub struct Fetched {
    pub row: Row,
    pub includes: Vec<Loaded>,
}

impl Fetched {
    /// A row without includes.
    pub fn plain(row: Row) -> Self {
        Fetched {
            row,
            includes: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Loaded {
    One { attr: String, row: Option<Row> },
    Many { attr: String, rows: Vec<Row> },
}

fn distinct(values: impl Iterator<Item = Value>) -> Vec<Value> {
    let mut seen = HashSet::new();
    values
        .filter(|v| !v.is_null() && seen.insert(Key(v.clone())))
        .collect()
}

fn no_pk(schema: &ModelSchema) -> Error {
    Error::schema(format!("{} has no primary key", schema.name))
}

/// One `.include()` level, the same on every SQL backend: the statements
/// that read the related rows of every fetched row at once, and how those
/// rows are hung on the fetched rows. Only running the statements differs
/// (async drivers, SQLite).
pub struct IncludeLevel<'a> {
    relation: &'a Relation,
    query: RelatedQuery<'a>,
    /// The fetched rows' key values the related rows match (distinct).
    keys: Vec<Value>,
    /// Position of that key in a fetched row (the link's field, or the pk).
    own: usize,
}

impl<'a> IncludeLevel<'a> {
    pub fn new(
        schema: &ModelSchema,
        target: &'a ModelSchema,
        relation: &'a Relation,
        include: &'a Include,
        fetched: &[Fetched],
    ) -> Result<Self> {
        let (query, own) = match relation {
            Relation::Link { fk, .. } => {
                let pk = target.pk_index().ok_or_else(|| no_pk(target))?;
                let query = RelatedQuery {
                    target,
                    key: pk,
                    sort: &[],
                    limit: None,
                };
                (query, *fk)
            }
            Relation::Collection { via, .. } => {
                let pk = schema.pk_index().ok_or_else(|| no_pk(schema))?;
                let query = RelatedQuery {
                    target,
                    key: *via,
                    sort: &include.sort,
                    limit: include.limit,
                };
                (query, pk)
            }
        };
        let keys = distinct(fetched.iter().map(|f| f.row[own].clone()));
        Ok(IncludeLevel {
            relation,
            query,
            keys,
            own,
        })
    }

    /// The model the statements read.
    pub fn target(&self) -> &'a ModelSchema {
        self.query.target
    }

    /// The related-rows statements, `per_query` keys in each.
    pub fn statements(&self, dialect: Dialect, per_query: usize) -> Result<Vec<Statement>> {
        let kind = self.query.target.fields[self.query.key].kind;
        self.keys
            .chunks(per_query.max(1))
            .map(|chunk| {
                let params = chunk
                    .iter()
                    .map(|v| encode(kind, v))
                    .collect::<Result<Vec<SqlValue>>>()?;
                crate::related(dialect, &self.query, params)
            })
            .collect()
    }

    /// Hangs the rows the statements returned on every fetched row.
    pub fn attach(&self, fetched: &mut [Fetched], rows: Vec<Row>) {
        let key = self.query.key;
        match self.relation {
            Relation::Link { attr, .. } => {
                let found: HashMap<Key, Row> = rows
                    .into_iter()
                    .map(|row| (Key(row[key].clone()), row))
                    .collect();
                for item in fetched.iter_mut() {
                    let fk = &item.row[self.own];
                    let row = (!fk.is_null())
                        .then(|| found.get(&Key(fk.clone())).cloned())
                        .flatten();
                    item.includes.push(Loaded::One {
                        attr: attr.clone(),
                        row,
                    });
                }
            }
            Relation::Collection { attr, .. } => {
                let mut groups: HashMap<Key, Vec<Row>> = HashMap::new();
                for row in rows {
                    groups.entry(Key(row[key].clone())).or_default().push(row);
                }
                for item in fetched.iter_mut() {
                    let rows = groups.get(&Key(item.row[self.own].clone())).cloned();
                    item.includes.push(Loaded::Many {
                        attr: attr.clone(),
                        rows: rows.unwrap_or_default(),
                    });
                }
            }
        }
    }
}

impl<C: SqlConnection> Executor<'_, C> {
    /// Rows and their includes; with includes, every level reads the
    /// same snapshot.
    pub async fn select(&mut self, q: &Select) -> Result<Vec<Fetched>> {
        Ok(self.read_rows(q, false).await?.0)
    }

    /// A plain select whose full chunks go to `chunks` as they are read;
    /// returns the rest.
    pub async fn select_streamed(&mut self, q: &Select, chunks: &Chunks) -> Result<Vec<Fetched>> {
        if !Chunks::fit(q) {
            return self.select(q).await;
        }
        let schema = self.schema(&q.model)?;
        let stmt = crate::select(C::DIALECT, &schema, q)?;
        let section = self.enter(Need::Single, q.timeout_ms).await?;
        let mut sink =
            |rows: Vec<Row>| (chunks.sink)(rows.into_iter().map(Fetched::plain).collect());
        let result = self
            .conn
            .rows_chunked(&schema, &stmt, chunks.size, &mut sink)
            .await
            .map(|rest| rest.into_iter().map(Fetched::plain).collect());
        self.leave(section, q.timeout_ms, result).await
    }

    /// A `search_text` select: rows in score order with their scores (and
    /// includes, read in the same snapshot).
    pub async fn select_ranked(&mut self, q: &Select) -> Result<Vec<(Fetched, f64)>> {
        let (fetched, scores) = self.read_rows(q, true).await?;
        Ok(fetched.into_iter().zip(scores).collect())
    }

    /// A plain or ranked select with its includes, and the scores (empty
    /// when not ranked).
    async fn read_rows(&mut self, q: &Select, ranked: bool) -> Result<(Vec<Fetched>, Vec<f64>)> {
        let schema = self.schema(&q.model)?;
        let stmt = if ranked {
            crate::select_ranked(C::DIALECT, &schema, q)?
        } else {
            crate::select(C::DIALECT, &schema, q)?
        };
        let relations = self.relations(&schema, q)?;
        let need = if relations.is_empty() {
            Need::Single
        } else {
            Need::Snapshot
        };
        let section = self.enter(need, q.timeout_ms).await?;
        let result = self.read_in(&schema, &stmt, &relations, q, ranked).await;
        self.leave(section, q.timeout_ms, result).await
    }

    async fn read_in(
        &mut self,
        schema: &ModelSchema,
        stmt: &crate::Statement,
        relations: &[Relation],
        q: &Select,
        ranked: bool,
    ) -> Result<(Vec<Fetched>, Vec<f64>)> {
        let (rows, scores) = if ranked {
            self.scored_rows(schema, stmt).await?
        } else {
            (self.conn.rows(schema, stmt).await?, Vec::new())
        };
        let fetched = self.with_includes(schema, rows, relations, q).await?;
        Ok((fetched, scores))
    }

    /// Rows of a ranked select; its score is the column after the fields.
    async fn scored_rows(
        &mut self,
        schema: &ModelSchema,
        stmt: &crate::Statement,
    ) -> Result<(Vec<Row>, Vec<f64>)> {
        let kinds: Vec<FieldKind> = schema.fields.iter().map(|f| f.kind).collect();
        let table = self.conn.table(stmt, &kinds).await?;
        let mut scores = Vec::with_capacity(table.len());
        let mut rows = Vec::with_capacity(table.len());
        for mut values in table {
            let score = match values.pop() {
                Some(Value::Float(f)) => f,
                Some(Value::Int(i)) => i as f64,
                Some(Value::Null) => 0.0,
                _ => return Err(Error::serialization("a ranked row has no score")),
            };
            scores.push(score);
            rows.push(Row::from(values));
        }
        Ok((rows, scores))
    }

    fn relations(&self, schema: &ModelSchema, q: &Select) -> Result<Vec<Relation>> {
        q.include
            .iter()
            .map(|inc| Relation::resolve(self.catalog, schema, &inc.link))
            .collect()
    }

    /// `aggregate()`: every statement of the plan in one snapshot, then
    /// the result dict (API.md §4.3).
    pub async fn aggregate(&mut self, q: &Select) -> Result<Json> {
        let schema = self.schema(&q.model)?;
        let plan = crate::aggregate(C::DIALECT, &schema, self.catalog, q)?;
        let section = self.enter(Need::Snapshot, q.timeout_ms).await?;
        let result = self.aggregate_in(&plan).await;
        self.leave(section, q.timeout_ms, result).await
    }

    async fn aggregate_in(&mut self, plan: &crate::AggregatePlan) -> Result<Json> {
        let mut results = Vec::with_capacity(plan.statements.len());
        for part in &plan.statements {
            results.push(self.conn.table(&part.statement, &part.kinds).await?);
        }
        plan.assemble(results)
    }

    /// `{model: description or null}` of the live tables of `schemas`
    /// (`LiveTable::describe`), read in one snapshot.
    pub async fn describe(&mut self, schemas: &[Arc<ModelSchema>]) -> Result<Json> {
        let section = self.enter(Need::Snapshot, None).await?;
        let result = self.describe_in(schemas).await;
        self.leave(section, None, result).await
    }

    async fn describe_in(&mut self, schemas: &[Arc<ModelSchema>]) -> Result<Json> {
        let mut out = serde_json::Map::new();
        for schema in schemas {
            let q = crate::introspect(C::DIALECT, &schema.name);
            let columns = self.conn.table(&q.columns, &[]).await?;
            let indexes = self.conn.table(&q.indexes, &[]).await?;
            let full_text = self.conn.table(&q.full_text, &[]).await?;
            let live =
                crate::LiveTable::read(C::DIALECT, &schema.name, &columns, &indexes, &full_text);
            let described =
                live.map_or(Json::Null, |t| t.describe(C::DIALECT, schema, self.catalog));
            out.insert(schema.name.clone(), described);
        }
        Ok(Json::Object(out))
    }

    /// Result rows with `relations` loaded, one query per level.
    async fn with_includes(
        &mut self,
        schema: &ModelSchema,
        rows: Vec<Row>,
        relations: &[Relation],
        q: &Select,
    ) -> Result<Vec<Fetched>> {
        let mut fetched: Vec<Fetched> = rows
            .into_iter()
            .map(|row| Fetched {
                row,
                includes: Vec::with_capacity(relations.len()),
            })
            .collect();
        for (relation, include) in relations.iter().zip(&q.include) {
            self.load(schema, relation, include, &mut fetched).await?;
        }
        Ok(fetched)
    }

    /// Loads one include for every fetched row: a single query per level.
    async fn load(
        &mut self,
        schema: &ModelSchema,
        relation: &Relation,
        include: &Include,
        fetched: &mut [Fetched],
    ) -> Result<()> {
        let target = self.schema(relation.target())?;
        let level = IncludeLevel::new(schema, &target, relation, include, fetched)?;
        let mut rows = Vec::new();
        for stmt in level.statements(C::DIALECT, KEYS_PER_QUERY)? {
            rows.extend(self.conn.rows(level.target(), &stmt).await?);
        }
        level.attach(fetched, rows);
        Ok(())
    }

    pub async fn count(&mut self, q: &Filtered) -> Result<u64> {
        let schema = self.schema(&q.model)?;
        let stmt = crate::count(C::DIALECT, &schema, q)?;
        let section = self.enter(Need::Single, q.timeout_ms).await?;
        let result = self.conn.scalar(&stmt).await;
        let n = self.leave(section, q.timeout_ms, result).await?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    pub async fn exists(&mut self, q: &Filtered) -> Result<bool> {
        let schema = self.schema(&q.model)?;
        let stmt = crate::exists(C::DIALECT, &schema, q)?;
        let section = self.enter(Need::Single, q.timeout_ms).await?;
        let result = self.conn.scalar(&stmt).await;
        Ok(self.leave(section, q.timeout_ms, result).await? != 0)
    }

    /// `raw()`: one statement in the dialect's own SQL; `params` is a list
    /// (bound in order) or a dict (bound in its order), never spliced.
    pub async fn raw(&mut self, statement: &str, params: &Json) -> Result<RawRows> {
        let bound: Vec<SqlValue> = match params {
            Json::Null => Vec::new(),
            Json::Array(items) => items.iter().map(json_param).collect(),
            Json::Object(map) => map.values().map(json_param).collect(),
            _ => return Err(Error::query("raw() params must be a dict or a list")),
        };
        let section = self.enter(Need::Single, None).await?;
        let result = self.conn.raw(statement, &bound).await;
        self.leave(section, None, result).await
    }

    /// The SQL a select compiles to and the database's plan for it.
    pub async fn explain(&mut self, q: &Select) -> Result<(String, Vec<String>)> {
        let schema = self.schema(&q.model)?;
        let stmt = match q.text_search {
            Some(_) => crate::select_ranked(C::DIALECT, &schema, q)?,
            None => crate::select(C::DIALECT, &schema, q)?,
        };
        let section = self.enter(Need::Single, None).await?;
        let result = self.conn.plan(&stmt).await;
        let plan = self.leave(section, None, result).await?;
        Ok((stmt.sql, plan))
    }
}
