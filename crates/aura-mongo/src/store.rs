//! The driver calls: one `MongoStore` per client.
//!
//! MongoDB has no multi-document atomicity here (capability `transactions`
//! is off), so each call is atomic per document: `insert_many` writes the
//! rows before the first duplicate, upsert is one `findOneAndUpdate` with
//! `upsert: true`, and `on_delete` actions run as separate statements
//! (restrict checks first, then cascades and set-nulls, then the delete).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aura_core::error::{Error, ErrorCode, Result};
use aura_core::ir::{Filtered, Include, Select, Update, Upsert};
use aura_core::schema::{ModelSchema, OnDelete, RelationKind, Row};
use aura_core::value::Value;
use aura_engine::{Included, OnConflict, ResultRow};
use mongodb::bson::{doc, Bson, Document};
use mongodb::error::{ErrorKind, WriteFailure};
use mongodb::options::{ClientOptions, IndexOptions, ReturnDocument};
use mongodb::{Client, Collection, IndexModel};
use serde_json::{json, Value as Json};
use tokio::sync::Mutex;

use crate::convert::{doc_key, doc_to_row, field_value, row_to_doc, value_to_bson};
use crate::filter::{filter_doc, projection_doc, resolve, resolve_dotted, sort_doc};
use crate::BACKEND;

/// Connection settings; `uri` is a `mongodb://` URI the driver parses.
#[derive(Clone)]
pub struct MongoOptions {
    pub uri: String,
    pub database: String,
    pub connect_timeout: Duration,
}

const DUPLICATE_KEY: i32 = 11000;
const MAX_TIME_EXPIRED: i32 = 50;

fn unsupported(capability: &str, what: &str) -> Error {
    Error::capability(BACKEND, capability, what)
}

/// Name of the index behind a unique field.
pub fn unique_index_name(storage: &str) -> String {
    format!("aura_unique_{storage}")
}

/// Name of the index behind an `index=True` field.
pub fn index_name(storage: &str) -> String {
    format!("aura_index_{storage}")
}

fn duplicate(schema: &ModelSchema, server_message: &str) -> Error {
    // The server names the index ("... index: <name> dup key: {...}"); only
    // the name is read, the key values in the message are never kept.
    let index = server_message
        .split("index: ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("");
    if let Some(storage) = index.strip_prefix("aura_unique_") {
        if let Some(field) = schema.field(storage) {
            return aura_engine::not_unique(schema, field).with_context("driver", BACKEND);
        }
    }
    if index == "_id_" {
        return aura_engine::duplicate_pk(schema).with_context("driver", BACKEND);
    }
    if index.is_empty() {
        // A server that does not name the index: `insert` probes which one.
        return Error::constraint(format!("{} violates a unique index", schema.name))
            .with_context("model", schema.name.as_str())
            .with_context("driver", BACKEND)
            .with_context("index", "");
    }
    Error::constraint(format!("{} violates unique index '{index}'", schema.name))
        .with_context("model", schema.name.as_str())
        .with_context("driver", BACKEND)
}

/// A driver error in the taxonomy. Messages carry the operation and the
/// server's code name, never the server's text (it can quote values).
pub fn driver_error(op: &str, schema: Option<&ModelSchema>, e: &mongodb::error::Error) -> Error {
    let tag = |err: Error| {
        err.with_context("driver", BACKEND)
            .with_context("operation", op)
    };
    let server = |code: i32, name: &str| {
        let (kind, text) = match code {
            MAX_TIME_EXPIRED => (
                ErrorCode::Timeout,
                "query exceeded its time limit".to_owned(),
            ),
            13 | 18 => (
                ErrorCode::AuthenticationError,
                format!("{name} (code {code})"),
            ),
            _ => (
                ErrorCode::ServerError,
                format!("server error {name} (code {code})"),
            ),
        };
        tag(Error::new(kind, format!("MongoDB {op} failed: {text}"))
            .with_context("server_code", code))
    };
    match &*e.kind {
        ErrorKind::Write(WriteFailure::WriteError(w)) if w.code == DUPLICATE_KEY => match schema {
            Some(s) => duplicate(s, &w.message),
            None => tag(Error::constraint("MongoDB duplicate key")),
        },
        ErrorKind::Write(WriteFailure::WriteError(w)) => {
            server(w.code, w.code_name.as_deref().unwrap_or("WriteError"))
        }
        ErrorKind::InsertMany(many) => {
            let first = many.write_errors.as_ref().and_then(|w| w.first());
            match (first, schema) {
                (Some(w), Some(s)) if w.code == DUPLICATE_KEY => duplicate(s, &w.message),
                (Some(w), _) => server(w.code, w.code_name.as_deref().unwrap_or("WriteError")),
                (None, _) => tag(Error::server(format!(
                    "MongoDB {op} failed: write concern error"
                ))),
            }
        }
        ErrorKind::Command(c) if c.code == DUPLICATE_KEY => match schema {
            Some(s) => duplicate(s, &c.message),
            None => tag(Error::constraint("MongoDB duplicate key")),
        },
        ErrorKind::Command(c) => server(c.code, &c.code_name),
        ErrorKind::ServerSelection { .. }
        | ErrorKind::Io(_)
        | ErrorKind::ConnectionPoolCleared { .. }
        | ErrorKind::DnsResolve { .. } => tag(Error::new(
            ErrorCode::ConnectionError,
            format!("MongoDB {op} failed: server unreachable"),
        )
        .with_retryable(true)),
        ErrorKind::Authentication { .. } => tag(Error::new(
            ErrorCode::AuthenticationError,
            format!("MongoDB {op} failed: authentication failed"),
        )),
        ErrorKind::BsonSerialization(_)
        | ErrorKind::BsonDeserialization(_)
        | ErrorKind::Bson(_) => tag(Error::serialization(format!(
            "MongoDB {op} failed: a value cannot be encoded as BSON"
        ))),
        ErrorKind::InvalidArgument { .. } => tag(Error::query(format!(
            "MongoDB {op} failed: invalid argument"
        ))),
        ErrorKind::InvalidTlsConfig { .. } => tag(Error::new(
            ErrorCode::ConfigError,
            format!("MongoDB {op} failed: invalid TLS configuration"),
        )),
        ErrorKind::InvalidResponse { .. } => tag(Error::server(format!(
            "MongoDB {op} failed: invalid server response"
        ))),
        _ => tag(Error::server(format!("MongoDB {op} failed"))),
    }
}

/// The select clauses MongoDB does not serve here.
fn check_select(q: &Select) -> Result<()> {
    if q.vector.is_some() || q.vector_ann.is_some() {
        return Err(unsupported("vector_search", "vector search"));
    }
    if q.text_search.is_some() {
        return Err(unsupported("full_text_search", "ranked full-text search"));
    }
    if q.text.is_some() || q.fusion.is_some() {
        return Err(unsupported("full_text_search", "legacy text search"));
    }
    if q.hybrid.is_some() {
        return Err(unsupported("hybrid_search", "hybrid search"));
    }
    Ok(())
}

/// One client's MongoDB connection pool and registered models.
pub struct MongoStore {
    options: MongoOptions,
    client: Mutex<Option<Client>>,
    schemas: RwLock<HashMap<String, Arc<ModelSchema>>>,
}

impl MongoStore {
    pub fn new(options: MongoOptions) -> Self {
        MongoStore {
            options,
            client: Mutex::new(None),
            schemas: RwLock::new(HashMap::new()),
        }
    }

    pub fn database_name(&self) -> &str {
        &self.options.database
    }

    pub fn register(&self, schema: Arc<ModelSchema>) {
        if let Ok(mut map) = self.schemas.write() {
            map.insert(schema.name.clone(), schema);
        }
    }

    pub fn schema(&self, model: &str) -> Result<Arc<ModelSchema>> {
        self.schemas
            .read()
            .ok()
            .and_then(|m| m.get(model).cloned())
            .ok_or_else(|| Error::schema(format!("Unknown model '{model}'")))
    }

    async fn client(&self) -> Result<Client> {
        let mut slot = self.client.lock().await;
        if let Some(client) = slot.as_ref() {
            return Ok(client.clone());
        }
        let mut opts = ClientOptions::parse(&self.options.uri)
            .await
            .map_err(|e| driver_error("connect", None, &e))?;
        opts.connect_timeout = Some(self.options.connect_timeout);
        opts.server_selection_timeout = Some(self.options.connect_timeout);
        opts.app_name = Some(format!("aura-connector/{}", env!("CARGO_PKG_VERSION")));
        let client = Client::with_options(opts).map_err(|e| driver_error("connect", None, &e))?;
        *slot = Some(client.clone());
        Ok(client)
    }

    async fn coll(&self, model: &str) -> Result<Collection<Document>> {
        Ok(self
            .client()
            .await?
            .database(&self.options.database)
            .collection::<Document>(model))
    }

    /// Connect now: the first `ping` selects a server.
    pub async fn open(&self) -> Result<()> {
        self.ping().await.map(|_| ())
    }

    pub async fn close(&self) {
        if let Some(client) = self.client.lock().await.take() {
            client.shutdown().await;
        }
    }

    pub async fn ping(&self) -> Result<bool> {
        let client = self.client().await?;
        client
            .database(&self.options.database)
            .run_command(doc! {"ping": 1})
            .await
            .map_err(|e| driver_error("ping", None, &e))?;
        Ok(true)
    }

    /// The unique and secondary indexes a model declares.
    pub async fn create_indexes(&self, schema: &ModelSchema) -> Result<()> {
        let coll = self.coll(&schema.name).await?;
        for field in &schema.fields {
            if field.storage == schema.pk_name() || !(field.unique || field.index) {
                continue;
            }
            let name = if field.unique {
                unique_index_name(&field.storage)
            } else {
                index_name(&field.storage)
            };
            let options = IndexOptions::builder()
                .name(name)
                .unique(field.unique)
                .build();
            let index = IndexModel::builder()
                .keys(doc! {field.storage.as_str(): 1})
                .options(options)
                .build();
            coll.create_index(index)
                .await
                .map_err(|e| driver_error("createIndexes", Some(schema), &e))?;
        }
        Ok(())
    }

    pub async fn drop_collection(&self, model: &str) -> Result<()> {
        let coll = self.coll(model).await?;
        coll.drop()
            .await
            .map_err(|e| driver_error("drop", None, &e))
    }

    /// The find a select runs: filter, sort, projection, skip, limit, time.
    pub fn find_plan(&self, schema: &ModelSchema, q: &Select) -> Result<FindPlan> {
        check_select(q)?;
        Ok(FindPlan {
            filter: filter_doc(schema, &q.filters)?,
            sort: sort_doc(schema, &q.sort)?,
            projection: projection_doc(schema, &q.projection)?,
            skip: q.offset,
            limit: q.limit,
            max_time: q.timeout_ms.map(Duration::from_millis),
        })
    }

    async fn find_docs(
        &self,
        schema: &ModelSchema,
        plan: &FindPlan,
        batch: Option<u32>,
    ) -> Result<mongodb::Cursor<Document>> {
        let coll = self.coll(&schema.name).await?;
        // MongoDB reads limit 0 as "no limit": ask for nothing instead.
        let filter = if plan.limit == Some(0) {
            crate::filter::nothing()
        } else {
            plan.filter.clone()
        };
        let mut find = coll.find(filter).sort(plan.sort.clone());
        if let Some(p) = &plan.projection {
            find = find.projection(p.clone());
        }
        if let Some(skip) = plan.skip {
            find = find.skip(skip);
        }
        if let Some(limit) = plan.limit.filter(|l| *l > 0) {
            find = find.limit(i64::try_from(limit).unwrap_or(i64::MAX));
        }
        if let Some(t) = plan.max_time {
            find = find.max_time(t);
        }
        if let Some(b) = batch {
            find = find.batch_size(b);
        }
        find.await
            .map_err(|e| driver_error("find", Some(schema), &e))
    }

    async fn collect(
        schema: &ModelSchema,
        cursor: &mut mongodb::Cursor<Document>,
        max: usize,
    ) -> Result<Vec<Row>> {
        let mut rows = Vec::new();
        while rows.len() < max
            && cursor
                .advance()
                .await
                .map_err(|e| driver_error("getMore", Some(schema), &e))?
        {
            let doc = cursor
                .deserialize_current()
                .map_err(|e| driver_error("getMore", Some(schema), &e))?;
            rows.push(doc_to_row(schema, &doc));
        }
        Ok(rows)
    }

    /// A select with its includes.
    pub async fn select(&self, q: &Select) -> Result<Vec<ResultRow>> {
        let schema = self.schema(&q.model)?;
        let plan = self.find_plan(&schema, q)?;
        let mut cursor = self.find_docs(&schema, &plan, None).await?;
        let rows = Self::collect(&schema, &mut cursor, usize::MAX).await?;
        self.with_includes(&schema, &q.include, rows).await
    }

    /// Attach each include with one `$in` query per relationship.
    pub async fn with_includes(
        &self,
        schema: &ModelSchema,
        includes: &[Include],
        rows: Vec<Row>,
    ) -> Result<Vec<ResultRow>> {
        let mut out: Vec<ResultRow> = rows
            .into_iter()
            .map(|row| ResultRow {
                row,
                scores: None,
                includes: Vec::new(),
            })
            .collect();
        for include in includes {
            self.include(schema, include, &mut out).await?;
        }
        Ok(out)
    }

    async fn include(
        &self,
        schema: &ModelSchema,
        include: &Include,
        out: &mut [ResultRow],
    ) -> Result<()> {
        let link = include.link.as_str();
        if let Some((pos, field)) = schema
            .fields
            .iter()
            .enumerate()
            .find(|(_, f)| (f.attr == link || f.storage == link) && f.target.is_some())
        {
            let target = self.schema(field.target.as_deref().unwrap_or_default())?;
            let mut fks: Vec<Value> = Vec::new();
            for r in out.iter() {
                let fk = &r.row[pos];
                if !fk.is_null() && !fks.iter().any(|v| v.eq_loose(fk)) {
                    fks.push(fk.clone());
                }
            }
            let found = self.find_in(&target, "_id", &fks, &[]).await?;
            let tpk = target.pk_index().unwrap_or(0);
            for r in out.iter_mut() {
                let fk = &r.row[pos];
                let row = found
                    .iter()
                    .find(|t| !fk.is_null() && t[tpk].eq_loose(fk))
                    .cloned();
                r.includes.push(Included::One {
                    attr: field.attr.clone(),
                    row,
                });
            }
            return Ok(());
        }
        let rel = schema
            .relationship(link)
            .filter(|r| r.kind == RelationKind::Collection)
            .ok_or_else(|| {
                Error::query(format!(
                    "{} has no relationship '{link}' to include",
                    schema.name
                ))
            })?;
        let target = self.schema(&rel.target)?;
        let via = rel
            .via
            .as_deref()
            .and_then(|v| target.field_index(v))
            .ok_or_else(|| {
                Error::query(format!(
                    "{}.{link}: {} has no link back to {}",
                    schema.name, rel.target, schema.name
                ))
            })?;
        let pk = schema.pk_index().ok_or_else(|| schema.missing_pk())?;
        let pks: Vec<Value> = out.iter().map(|r| r.row[pk].clone()).collect();
        let via_key = doc_key(&target, &target.fields[via].storage).to_owned();
        let found = self.find_in(&target, &via_key, &pks, &include.sort).await?;
        let limit = include
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        for r in out.iter_mut() {
            let rows: Vec<Row> = found
                .iter()
                .filter(|t| t[via].eq_loose(&r.row[pk]))
                .take(limit)
                .cloned()
                .collect();
            r.includes.push(Included::Many {
                attr: rel.attr.clone(),
                rows,
            });
        }
        Ok(())
    }

    async fn find_in(
        &self,
        schema: &ModelSchema,
        key: &str,
        values: &[Value],
        sort: &[aura_core::ir::OrderTerm],
    ) -> Result<Vec<Row>> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        let list: Vec<Bson> = values.iter().map(value_to_bson).collect();
        let plan = FindPlan {
            filter: doc! {key: {"$in": list}},
            sort: sort_doc(schema, sort)?,
            projection: None,
            skip: None,
            limit: None,
            max_time: None,
        };
        let mut cursor = self.find_docs(schema, &plan, None).await?;
        Self::collect(schema, &mut cursor, usize::MAX).await
    }

    pub async fn count(&self, q: &Filtered) -> Result<u64> {
        let schema = self.schema(&q.model)?;
        let coll = self.coll(&schema.name).await?;
        let mut count = coll.count_documents(filter_doc(&schema, &q.filters)?);
        if let Some(ms) = q.timeout_ms {
            count = count.max_time(Duration::from_millis(ms));
        }
        count
            .await
            .map_err(|e| driver_error("count", Some(&schema), &e))
    }

    pub async fn exists(&self, q: &Filtered) -> Result<bool> {
        let schema = self.schema(&q.model)?;
        let coll = self.coll(&schema.name).await?;
        let mut count = coll
            .count_documents(filter_doc(&schema, &q.filters)?)
            .limit(1);
        if let Some(ms) = q.timeout_ms {
            count = count.max_time(Duration::from_millis(ms));
        }
        Ok(count
            .await
            .map_err(|e| driver_error("count", Some(&schema), &e))?
            > 0)
    }

    /// Insert rows; returns the number written. Without `on_conflict` the
    /// first duplicate stops the batch (rows before it stay written).
    pub async fn insert(
        &self,
        schema: &ModelSchema,
        rows: &[Row],
        mode: OnConflict,
    ) -> Result<u64> {
        let pk = schema.pk_index().ok_or_else(|| schema.missing_pk())?;
        let mut docs = Vec::with_capacity(rows.len());
        for row in rows {
            if row[pk].is_null() {
                return Err(schema.missing_pk());
            }
            for (field, value) in schema.fields.iter().zip(row.iter()) {
                aura_engine::check_value(schema, field, value)?;
            }
            docs.push(row_to_doc(schema, row));
        }
        if docs.is_empty() {
            return Ok(0);
        }
        let coll = self.coll(&schema.name).await?;
        match mode {
            OnConflict::Error if docs.len() == 1 => {
                let doc = docs.pop().unwrap_or_default();
                match coll.insert_one(doc).await {
                    Ok(_) => Ok(1),
                    Err(e) => Err(self.insert_error(schema, &e, &rows[0]).await),
                }
            }
            OnConflict::Error => {
                let n = docs.len() as u64;
                match coll.insert_many(docs).ordered(true).await {
                    Ok(_) => Ok(n),
                    Err(e) => {
                        let at = match &*e.kind {
                            ErrorKind::InsertMany(many) => many
                                .write_errors
                                .as_ref()
                                .and_then(|w| w.first())
                                .map_or(0, |w| w.index),
                            _ => 0,
                        };
                        let row = rows.get(at).unwrap_or(&rows[0]);
                        Err(self.insert_error(schema, &e, row).await)
                    }
                }
            }
            OnConflict::Ignore => {
                let n = docs.len() as u64;
                match coll.insert_many(docs).ordered(false).await {
                    Ok(_) => Ok(n),
                    Err(e) => match &*e.kind {
                        ErrorKind::InsertMany(many)
                            if many.write_concern_error.is_none()
                                && many
                                    .write_errors
                                    .as_ref()
                                    .is_some_and(|w| w.iter().all(|w| w.code == DUPLICATE_KEY)) =>
                        {
                            let skipped = many.write_errors.as_ref().map_or(0, Vec::len) as u64;
                            Ok(n.saturating_sub(skipped))
                        }
                        _ => Err(driver_error("insert", Some(schema), &e)),
                    },
                }
            }
            OnConflict::Replace => {
                for doc in docs {
                    let id = doc.get("_id").cloned().unwrap_or(Bson::Null);
                    coll.replace_one(doc! {"_id": {"$eq": id}}, doc)
                        .upsert(true)
                        .await
                        .map_err(|e| driver_error("replace", Some(schema), &e))?;
                }
                Ok(rows.len() as u64)
            }
        }
    }

    /// The error of a failed insert of `row`. When the server did not name
    /// the violated index, one count per unique index finds it.
    async fn insert_error(
        &self,
        schema: &ModelSchema,
        e: &mongodb::error::Error,
        row: &Row,
    ) -> Error {
        let err = driver_error("insert", Some(schema), e);
        if err.context_value("index") != Some(&json!("")) {
            return err;
        }
        let Ok(coll) = self.coll(&schema.name).await else {
            return err;
        };
        for (field, value) in schema.fields.iter().zip(row.iter()) {
            let key = doc_key(schema, &field.storage);
            if !(field.unique || key == "_id") || value.is_null() {
                continue;
            }
            let taken = coll
                .count_documents(doc! {key: {"$eq": value_to_bson(value)}})
                .limit(1)
                .await
                .is_ok_and(|n| n > 0);
            if taken {
                return if key == "_id" {
                    aura_engine::duplicate_pk(schema)
                } else {
                    aura_engine::not_unique(schema, field)
                }
                .with_context("driver", BACKEND);
            }
        }
        err
    }

    fn set_doc(schema: &ModelSchema, set: &serde_json::Map<String, Json>) -> Result<Document> {
        let mut out = Document::new();
        for (name, json) in set {
            let (key, value) = field_value(schema, name, json)?;
            if key == "_id" {
                return Err(Error::query(format!(
                    "MongoDB cannot change the primary key {}.{} in update(): _id is immutable; delete the row and insert it under the new key",
                    schema.name,
                    schema.pk_name()
                ))
                .with_context("driver", BACKEND));
            }
            out.insert(key, value_to_bson(&value));
        }
        Ok(out)
    }

    /// `update_many`; returns matched rows (§16 row 30).
    pub async fn update(&self, q: &Update) -> Result<u64> {
        let schema = self.schema(&q.model)?;
        let filters = &q.filters;
        let set = &q.set;
        let filter = filter_doc(&schema, filters)?;
        let set = Self::set_doc(&schema, set)?;
        let coll = self.coll(&schema.name).await?;
        if set.is_empty() {
            return coll
                .count_documents(filter)
                .await
                .map_err(|e| driver_error("count", Some(&schema), &e));
        }
        let result = coll
            .update_many(filter, doc! {"$set": set})
            .await
            .map_err(|e| driver_error("update", Some(&schema), &e))?;
        Ok(result.matched_count)
    }

    /// Models whose link fields point at `model` with an `on_delete` action.
    fn referrers(&self, model: &str) -> Vec<(Arc<ModelSchema>, usize, OnDelete)> {
        let Ok(schemas) = self.schemas.read() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let mut names: Vec<&String> = schemas.keys().collect();
        names.sort();
        for name in names {
            let s = &schemas[name];
            for (pos, f) in s.fields.iter().enumerate() {
                if let (Some(t), Some(action)) = (&f.target, f.on_delete) {
                    if t == model {
                        out.push((s.clone(), pos, action));
                    }
                }
            }
        }
        out
    }

    pub async fn delete(&self, q: &Filtered) -> Result<u64> {
        let schema = self.schema(&q.model)?;
        let filter = filter_doc(&schema, &q.filters)?;
        Box::pin(self.delete_where(&schema, filter)).await
    }

    async fn delete_where(&self, schema: &ModelSchema, filter: Document) -> Result<u64> {
        let coll = self.coll(&schema.name).await?;
        let refs = self.referrers(&schema.name);
        if refs.is_empty() {
            let result = coll
                .delete_many(filter)
                .await
                .map_err(|e| driver_error("delete", Some(schema), &e))?;
            return Ok(result.deleted_count);
        }
        let plan = FindPlan {
            filter,
            sort: doc! {"_id": 1},
            projection: Some(doc! {"_id": 1}),
            skip: None,
            limit: None,
            max_time: None,
        };
        let mut cursor = self.find_docs(schema, &plan, None).await?;
        let mut ids: Vec<Bson> = Vec::new();
        while cursor
            .advance()
            .await
            .map_err(|e| driver_error("getMore", Some(schema), &e))?
        {
            let doc = cursor
                .deserialize_current()
                .map_err(|e| driver_error("getMore", Some(schema), &e))?;
            ids.push(doc.get("_id").cloned().unwrap_or(Bson::Null));
        }
        if ids.is_empty() {
            return Ok(0);
        }
        for (rs, pos, action) in &refs {
            if *action == OnDelete::Restrict {
                let key = doc_key(rs, &rs.fields[*pos].storage);
                let rc = self.coll(&rs.name).await?;
                let n = rc
                    .count_documents(doc! {key: {"$in": ids.clone()}})
                    .limit(1)
                    .await
                    .map_err(|e| driver_error("count", Some(rs), &e))?;
                if n > 0 {
                    return Err(Error::constraint(format!(
                        "{} row is still referenced by {}.{}",
                        schema.name, rs.name, rs.fields[*pos].attr
                    ))
                    .with_context("model", schema.name.as_str())
                    .with_context(
                        "referenced_by",
                        format!("{}.{}", rs.name, rs.fields[*pos].attr),
                    )
                    .with_context("driver", BACKEND));
                }
            }
        }
        for (rs, pos, action) in &refs {
            let key = doc_key(rs, &rs.fields[*pos].storage).to_owned();
            let referencing = doc! {key.as_str(): {"$in": ids.clone()}};
            match action {
                OnDelete::Cascade => {
                    Box::pin(self.delete_where(rs, referencing)).await?;
                }
                OnDelete::SetNull => {
                    self.coll(&rs.name)
                        .await?
                        .update_many(referencing, doc! {"$set": {key.as_str(): Bson::Null}})
                        .await
                        .map_err(|e| driver_error("update", Some(rs), &e))?;
                }
                OnDelete::Restrict => {}
            }
        }
        let result = coll
            .delete_many(doc! {"_id": {"$in": ids}})
            .await
            .map_err(|e| driver_error("delete", Some(schema), &e))?;
        Ok(result.deleted_count)
    }

    /// Atomic upsert: one `findOneAndUpdate` matching every key field, with
    /// `$set: values` and `$setOnInsert: the rest of insert_row`, returning
    /// the stored document. Without an insert row nothing is inserted and
    /// `None` means nothing matched.
    pub async fn upsert(&self, q: &Upsert, insert_row: Option<Row>) -> Result<Option<Row>> {
        let schema = self.schema(&q.model)?;
        let mut filters = Vec::with_capacity(q.key.len());
        for (k, v) in &q.key {
            filters.push(aura_core::ir::Expr::compare(
                aura_core::ir::CompareOp::Eq,
                aura_core::ir::Expr::field(&schema.name, k),
                aura_core::ir::Expr::literal(v.clone()),
            ));
        }
        let filter = filter_doc(&schema, &filters)?;
        let mut values = q.values.clone();
        // The key itself is matched, not set.
        for k in q.key.keys() {
            values.remove(k);
        }
        let set = Self::set_doc(&schema, &values)?;
        let mut update = Document::new();
        if let Some(row) = &insert_row {
            for (field, value) in schema.fields.iter().zip(row.iter()) {
                aura_engine::check_value(&schema, field, value)?;
            }
            let mut on_insert = row_to_doc(&schema, row);
            for key in set.keys() {
                on_insert.remove(key);
            }
            for (k, _) in &q.key {
                if let Ok(path) = resolve(&schema, k, None) {
                    if path.path != "_id" {
                        on_insert.remove(&path.path);
                    }
                }
            }
            if !on_insert.is_empty() {
                update.insert("$setOnInsert", on_insert);
            }
        }
        if !set.is_empty() {
            update.insert("$set", set);
        }
        let coll = self.coll(&schema.name).await?;
        let stored = if update.is_empty() {
            coll.find_one(filter)
                .await
                .map_err(|e| driver_error("find", Some(&schema), &e))?
        } else {
            coll.find_one_and_update(filter, update)
                .upsert(insert_row.is_some())
                .return_document(ReturnDocument::After)
                .await
                .map_err(|e| driver_error("findAndModify", Some(&schema), &e))?
        };
        Ok(stored.map(|d| doc_to_row(&schema, &d)))
    }

    /// `aggregate()`: matched count, terms facets and min/max metrics, each
    /// one aggregation pipeline after the same `$match`.
    pub async fn aggregate(&self, q: &Select) -> Result<Json> {
        check_select(q)?;
        if !q.include.is_empty() || !q.sort.is_empty() {
            return Err(Error::query(
                "aggregate() takes filters, facets and metrics only",
            ));
        }
        let schema = self.schema(&q.model)?;
        let filter = filter_doc(&schema, &q.filters)?;
        let coll = self.coll(&schema.name).await?;
        let max_time = q.timeout_ms.map(Duration::from_millis);
        let mut count = coll.count_documents(filter.clone());
        if let Some(t) = max_time {
            count = count.max_time(t);
        }
        let matched = count
            .await
            .map_err(|e| driver_error("count", Some(&schema), &e))?;
        let mut metrics = Vec::new();
        for m in &q.metrics {
            match (m.op.as_str(), &m.field) {
                ("count", _) => metrics.push(json!({"op": "count", "value": matched})),
                (op @ ("min" | "max"), Some(field)) => {
                    let path = resolve_dotted(&schema, field)?.path;
                    let acc = format!("${op}");
                    let pipeline = vec![
                        doc! {"$match": filter.clone()},
                        doc! {"$match": {path.as_str(): {"$type": "number"}}},
                        doc! {"$group": {"_id": Bson::Null, "v": {acc: format!("${path}")}}},
                    ];
                    let docs = self.run_pipeline(&schema, pipeline, max_time).await?;
                    let value = docs
                        .first()
                        .and_then(|d| d.get("v"))
                        .map_or(Json::Null, |b| {
                            crate::convert::bson_to_value(b, aura_core::schema::FieldKind::Any)
                                .to_json()
                        });
                    metrics.push(json!({"op": op, "field": field, "value": value}));
                }
                (other, _) => {
                    return Err(Error::query(format!(
                        "Unsupported aggregate metric '{other}'"
                    )));
                }
            }
        }
        let mut facets = Vec::new();
        for f in &q.facets {
            let path = resolve_dotted(&schema, &f.field)?.path;
            let pipeline = vec![
                doc! {"$match": filter.clone()},
                doc! {"$group": {"_id": format!("${path}"), "count": {"$sum": 1}}},
            ];
            let docs = self.run_pipeline(&schema, pipeline, max_time).await?;
            let mut buckets: Vec<(Value, u64)> = docs
                .iter()
                .filter_map(|d| {
                    let value = crate::convert::bson_to_value(
                        d.get("_id")?,
                        aura_core::schema::FieldKind::Any,
                    );
                    let count = match d.get("count")? {
                        Bson::Int32(n) => u64::try_from(*n).ok()?,
                        Bson::Int64(n) => u64::try_from(*n).ok()?,
                        Bson::Double(n) => *n as u64,
                        _ => return None,
                    };
                    // Nulls, lists and dicts are not bucketed (§4.3).
                    match value {
                        Value::Null | Value::List(_) | Value::Map(_) | Value::Vector(_) => None,
                        v => Some((v, count)),
                    }
                })
                .collect();
            buckets.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp_total(&b.0)));
            let limit = f
                .limit
                .map_or(10, |l| usize::try_from(l).unwrap_or(usize::MAX));
            let buckets: Vec<Json> = buckets
                .into_iter()
                .take(limit)
                .map(|(v, c)| json!({"value": v.to_json(), "count": c}))
                .collect();
            facets.push(json!({"field": f.field, "buckets": buckets, "used_index": false}));
        }
        Ok(json!({
            "collection": schema.name,
            "matched": matched,
            "scanned": matched,
            "filter_present": !q.filters.is_empty(),
            "search_scoped": false,
            "metrics": metrics,
            "facets": facets,
        }))
    }

    async fn run_pipeline(
        &self,
        schema: &ModelSchema,
        pipeline: Vec<Document>,
        max_time: Option<Duration>,
    ) -> Result<Vec<Document>> {
        let coll = self.coll(&schema.name).await?;
        let mut agg = coll.aggregate(pipeline);
        if let Some(t) = max_time {
            agg = agg.max_time(t);
        }
        let mut cursor = agg
            .await
            .map_err(|e| driver_error("aggregate", Some(schema), &e))?;
        let mut out = Vec::new();
        while cursor
            .advance()
            .await
            .map_err(|e| driver_error("aggregate", Some(schema), &e))?
        {
            out.push(
                cursor
                    .deserialize_current()
                    .map_err(|e| driver_error("aggregate", Some(schema), &e))?,
            );
        }
        Ok(out)
    }

    /// A server cursor over a select (includes are refused: a stream holds
    /// one batch, and its includes would need one query per batch).
    pub async fn cursor(&self, q: &Select, batch_size: u32) -> Result<MongoCursor> {
        if !q.include.is_empty() {
            return Err(unsupported("relationships", "include() on a stream"));
        }
        let schema = self.schema(&q.model)?;
        let plan = self.find_plan(&schema, q)?;
        let cursor = self
            .find_docs(&schema, &plan, Some(batch_size.max(1)))
            .await?;
        Ok(MongoCursor {
            schema,
            cursor: Mutex::new(Some(cursor)),
        })
    }
}

/// What a select sends (also what `explain()` shows).
#[derive(Debug, Clone, PartialEq)]
pub struct FindPlan {
    pub filter: Document,
    pub sort: Document,
    pub projection: Option<Document>,
    pub skip: Option<u64>,
    pub limit: Option<u64>,
    pub max_time: Option<Duration>,
}

impl FindPlan {
    /// Relaxed extended JSON of the find command's parts.
    pub fn to_json(&self, collection: &str) -> Json {
        let mut out = serde_json::Map::new();
        out.insert("find".into(), json!(collection));
        out.insert("filter".into(), doc_json(&self.filter));
        out.insert("sort".into(), doc_json(&self.sort));
        if let Some(p) = &self.projection {
            out.insert("projection".into(), doc_json(p));
        }
        if let Some(s) = self.skip {
            out.insert("skip".into(), json!(s));
        }
        if let Some(l) = self.limit {
            out.insert("limit".into(), json!(l));
        }
        if let Some(t) = self.max_time {
            out.insert("maxTimeMS".into(), json!(t.as_millis() as u64));
        }
        Json::Object(out)
    }
}

/// A document as storage-form JSON (binary as `{"__bytes__": ...}`).
fn doc_json(doc: &Document) -> Json {
    crate::convert::bson_to_value(
        &Bson::Document(doc.clone()),
        aura_core::schema::FieldKind::Any,
    )
    .to_json()
}

/// An open server cursor; dropping it kills the cursor on the server.
pub struct MongoCursor {
    schema: Arc<ModelSchema>,
    cursor: Mutex<Option<mongodb::Cursor<Document>>>,
}

impl MongoCursor {
    pub fn schema(&self) -> &Arc<ModelSchema> {
        &self.schema
    }

    /// Up to `n` rows; empty when exhausted (the cursor is then released).
    pub async fn fetch(&self, n: usize) -> Result<Vec<Row>> {
        let mut slot = self.cursor.lock().await;
        let Some(cursor) = slot.as_mut() else {
            return Ok(Vec::new());
        };
        let rows = MongoStore::collect(&self.schema, cursor, n.max(1)).await?;
        if rows.is_empty() {
            slot.take();
        }
        Ok(rows)
    }

    /// Release now (the driver sends killCursors in the background).
    pub fn close(&self) {
        if let Ok(mut slot) = self.cursor.try_lock() {
            slot.take();
        }
    }

    pub fn is_open(&self) -> bool {
        self.cursor.try_lock().map_or(true, |s| s.is_some())
    }
}
