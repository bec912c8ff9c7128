//! The driver calls. Every write is atomic per key: insert is `SET NX`
//! (several rows: one `MSETNX`, all or nothing), update is a compare-and-set
//! script retried on a concurrent change, delete is `DEL`.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use aura_core::error::{Error, ErrorCode, Result};
use aura_core::ir::{Filtered, Select, Update, Upsert};
use aura_core::schema::{ModelSchema, Row};
use aura_core::value::Value;
use aura_engine::OnConflict;
use redis::aio::MultiplexedConnection;
use tokio::sync::Mutex;

use crate::codec::{decode_row, encode_row, value_from_json};
use crate::keys::{check_select, pk_set, row_key, scan_pattern, unsupported};
use crate::BACKEND;

/// Compare-and-set: replace KEYS[1] only if it still holds ARGV[1].
const CAS: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then \
                   redis.call('SET', KEYS[1], ARGV[2]) return 1 end return 0";
/// Attempts of one read-modify-write before giving up with `conflict`.
const CAS_ATTEMPTS: usize = 32;
const SCAN_COUNT: usize = 1000;

/// Where and how to connect; `prefix` is prepended to every key.
#[derive(Clone, Debug)]
pub struct RedisOptions {
    pub host: String,
    pub port: u16,
    pub db: i64,
    pub username: Option<String>,
    pub password: Option<String>,
    pub prefix: String,
    pub connect_timeout: Duration,
    pub response_timeout: Duration,
}

/// Maps a driver error into the taxonomy; the message names the operation
/// and the server's error code, never keys or values.
pub fn driver_error(op: &str, e: &redis::RedisError) -> Error {
    let (code, detail) =
        if e.is_connection_refusal() || e.is_io_error() || e.is_connection_dropped() {
            (ErrorCode::ConnectionError, "connection failed".to_owned())
        } else if e.is_timeout() {
            (ErrorCode::Timeout, "timed out".to_owned())
        } else if matches!(e.kind(), redis::ErrorKind::AuthenticationFailed)
            || e.code() == Some("NOAUTH")
            || e.code() == Some("WRONGPASS")
        {
            (
                ErrorCode::AuthenticationError,
                "authentication failed".to_owned(),
            )
        } else {
            let detail = match e.code() {
                Some(code) => format!("server error {code}"),
                None => format!("{:?} error", e.kind()),
            };
            (ErrorCode::ServerError, detail)
        };
    Error::new(code, format!("Redis {op} failed: {detail}"))
        .with_context("driver", BACKEND)
        .with_context("operation", op)
}

fn percent(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

impl RedisOptions {
    fn url(&self) -> String {
        let auth = match (&self.username, &self.password) {
            (None, None) => String::new(),
            (user, pass) => format!(
                "{}:{}@",
                percent(user.as_deref().unwrap_or("")),
                percent(pass.as_deref().unwrap_or(""))
            ),
        };
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        format!("redis://{auth}{host}:{}/{}", self.port, self.db)
    }
}

/// One client's Redis connection (multiplexed: concurrent requests are
/// pipelined on one socket).
pub struct RedisStore {
    options: RedisOptions,
    conn: Mutex<Option<MultiplexedConnection>>,
}

impl RedisStore {
    pub fn new(options: RedisOptions) -> Self {
        RedisStore {
            options,
            conn: Mutex::new(None),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.options.prefix
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.options.host, self.options.port)
    }

    /// The open connection (connecting on first use).
    pub async fn connection(&self) -> Result<MultiplexedConnection> {
        let mut slot = self.conn.lock().await;
        if let Some(conn) = slot.as_ref() {
            return Ok(conn.clone());
        }
        let client = redis::Client::open(self.options.url()).map_err(|e| {
            Error::new(ErrorCode::ConfigError, "Invalid Redis connection settings")
                .with_context("driver", BACKEND)
                .with_context("kind", format!("{:?}", e.kind()))
        })?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.options.connect_timeout))
            .set_response_timeout(Some(self.options.response_timeout));
        let conn = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .map_err(|e| driver_error("connect", &e).with_context("address", self.address()))?;
        *slot = Some(conn.clone());
        Ok(conn)
    }

    pub async fn close(&self) {
        self.conn.lock().await.take();
    }

    pub async fn ping(&self) -> Result<bool> {
        let mut conn = self.connection().await?;
        let pong: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(|e| driver_error("PING", &e))?;
        Ok(pong == "PONG")
    }

    fn key(&self, schema: &ModelSchema, pk: &Value) -> Result<String> {
        row_key(&self.options.prefix, schema, pk)
    }

    fn pk_of<'r>(schema: &ModelSchema, row: &'r Row) -> Result<&'r Value> {
        let pos = schema.pk_index().ok_or_else(|| schema.missing_pk())?;
        match row.get(pos) {
            Some(v) if !v.is_null() => Ok(v),
            _ => Err(schema.missing_pk()),
        }
    }

    /// Every row key of a model (SCAN; keys written while it runs may or
    /// may not be seen, as Redis documents for SCAN).
    async fn all_keys(&self, schema: &ModelSchema) -> Result<Vec<String>> {
        let mut conn = self.connection().await?;
        let pattern = scan_pattern(&self.options.prefix, &schema.name);
        let mut cursor: u64 = 0;
        let mut keys = Vec::new();
        loop {
            let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(SCAN_COUNT)
                .query_async(&mut conn)
                .await
                .map_err(|e| driver_error("SCAN", &e))?;
            keys.extend(batch);
            if next == 0 {
                break;
            }
            cursor = next;
        }
        keys.sort();
        keys.dedup();
        Ok(keys)
    }

    /// The keys a filter list addresses.
    async fn keys_for(
        &self,
        schema: &ModelSchema,
        filters: &[aura_core::ir::Expr],
    ) -> Result<Vec<String>> {
        match pk_set(schema, filters)? {
            Some(pks) => pks.iter().map(|pk| self.key(schema, pk)).collect(),
            None => self.all_keys(schema).await,
        }
    }

    async fn load(&self, schema: &ModelSchema, keys: &[String]) -> Result<Vec<Row>> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.connection().await?;
        let stored: Vec<Option<Vec<u8>>> = redis::cmd("MGET")
            .arg(keys)
            .query_async(&mut conn)
            .await
            .map_err(|e| driver_error("MGET", &e))?;
        stored
            .iter()
            .flatten()
            .map(|text| decode_row(schema, text))
            .collect()
    }

    /// A select: rows by key, in primary-key order, then offset/limit.
    pub async fn select(&self, schema: &ModelSchema, q: &Select) -> Result<Vec<Row>> {
        check_select(q)?;
        let keys = self.keys_for(schema, &q.filters).await?;
        let mut rows = self.load(schema, &keys).await?;
        if let Some(pos) = schema.pk_index() {
            rows.sort_by(|a, b| a[pos].cmp_total(&b[pos]));
        }
        let offset = usize::try_from(q.offset.unwrap_or(0)).unwrap_or(usize::MAX);
        let limit = q
            .limit
            .map_or(usize::MAX, |l| usize::try_from(l).unwrap_or(usize::MAX));
        Ok(rows.into_iter().skip(offset).take(limit).collect())
    }

    pub async fn count(&self, schema: &ModelSchema, q: &Filtered) -> Result<u64> {
        if q.timeout_ms.is_some() {
            return Err(unsupported("query_timeouts", "query timeouts"));
        }
        match pk_set(schema, &q.filters)? {
            None => Ok(self.all_keys(schema).await?.len() as u64),
            Some(pks) if pks.is_empty() => Ok(0),
            Some(pks) => {
                let keys = pks
                    .iter()
                    .map(|pk| self.key(schema, pk))
                    .collect::<Result<Vec<_>>>()?;
                let mut conn = self.connection().await?;
                let n: u64 = redis::cmd("EXISTS")
                    .arg(&keys)
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| driver_error("EXISTS", &e))?;
                Ok(n)
            }
        }
    }

    fn check_row(schema: &ModelSchema, row: &Row) -> Result<()> {
        for (field, value) in schema.fields.iter().zip(row.iter()) {
            aura_engine::check_value(schema, field, value)?;
        }
        Ok(())
    }

    /// Insert rows; returns the number written.
    pub async fn insert(
        &self,
        schema: &ModelSchema,
        rows: &[Row],
        mode: OnConflict,
    ) -> Result<u64> {
        let mut pairs = Vec::with_capacity(rows.len());
        for row in rows {
            Self::check_row(schema, row)?;
            let key = self.key(schema, Self::pk_of(schema, row)?)?;
            pairs.push((key, encode_row(schema, row)));
        }
        if pairs.is_empty() {
            return Ok(0);
        }
        let mut conn = self.connection().await?;
        match mode {
            OnConflict::Error => {
                let mut seen = HashSet::with_capacity(pairs.len());
                if !pairs.iter().all(|(k, _)| seen.insert(k.as_str())) {
                    return Err(aura_engine::duplicate_pk(schema));
                }
                let written: bool = if pairs.len() == 1 {
                    let reply: Option<String> = redis::cmd("SET")
                        .arg(&pairs[0].0)
                        .arg(&pairs[0].1)
                        .arg("NX")
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| driver_error("SET", &e))?;
                    reply.is_some()
                } else {
                    let mut cmd = redis::cmd("MSETNX");
                    for (k, v) in &pairs {
                        cmd.arg(k).arg(v);
                    }
                    let n: i64 = cmd
                        .query_async(&mut conn)
                        .await
                        .map_err(|e| driver_error("MSETNX", &e))?;
                    n == 1
                };
                if !written {
                    return Err(aura_engine::duplicate_pk(schema));
                }
                Ok(pairs.len() as u64)
            }
            OnConflict::Ignore => {
                let mut pipe = redis::pipe();
                for (k, v) in &pairs {
                    pipe.cmd("SET").arg(k).arg(v).arg("NX");
                }
                let replies: Vec<Option<String>> = pipe
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| driver_error("SET", &e))?;
                Ok(replies.iter().filter(|r| r.is_some()).count() as u64)
            }
            OnConflict::Replace => {
                let mut cmd = redis::cmd("MSET");
                for (k, v) in &pairs {
                    cmd.arg(k).arg(v);
                }
                let _: () = cmd
                    .query_async(&mut conn)
                    .await
                    .map_err(|e| driver_error("MSET", &e))?;
                Ok(pairs.len() as u64)
            }
        }
    }

    /// The new row after applying `set` (storage names → storage form).
    fn apply_set(
        schema: &ModelSchema,
        row: &Row,
        set: &serde_json::Map<String, serde_json::Value>,
    ) -> Result<Row> {
        let mut out = row.to_vec();
        for (name, json) in set {
            let pos = schema.field_index(name).ok_or_else(|| {
                Error::query(format!("{} has no field '{name}'", schema.name))
                    .with_context("field", name.as_str())
            })?;
            let field = &schema.fields[pos];
            let value = value_from_json(json, field.kind).map_err(|_| {
                Error::validation(format!(
                    "Invalid value for {}.{} in update: expected {}",
                    schema.name, field.attr, field.kind
                ))
                .with_context("field", field.attr.as_str())
            })?;
            if Some(pos) == schema.pk_index() && !value.eq_loose(&row[pos]) {
                return Err(Error::query(format!(
                    "Redis cannot change the primary key {}.{} in update(); delete the row and insert it under the new key",
                    schema.name, field.attr
                ))
                .with_context("driver", BACKEND));
            }
            aura_engine::check_value(schema, field, &value)?;
            out[pos] = value;
        }
        Ok(Arc::from(out))
    }

    /// Compare-and-set one key to `f(old row)`; `None` when the key is
    /// missing. Retried while another writer changes the row in between.
    async fn modify(
        &self,
        schema: &ModelSchema,
        key: &str,
        f: &(dyn Fn(&Row) -> Result<Row> + Sync),
    ) -> Result<Option<Row>> {
        let mut conn = self.connection().await?;
        for _ in 0..CAS_ATTEMPTS {
            let old: Option<Vec<u8>> = redis::cmd("GET")
                .arg(key)
                .query_async(&mut conn)
                .await
                .map_err(|e| driver_error("GET", &e))?;
            let Some(old) = old else {
                return Ok(None);
            };
            let row = f(&decode_row(schema, &old)?)?;
            let swapped: i64 = redis::cmd("EVAL")
                .arg(CAS)
                .arg(1)
                .arg(key)
                .arg(&old)
                .arg(encode_row(schema, &row))
                .query_async(&mut conn)
                .await
                .map_err(|e| driver_error("EVAL", &e))?;
            if swapped == 1 {
                return Ok(Some(row));
            }
        }
        Err(Error::conflict(format!(
            "{} row kept changing during update; retry",
            schema.name
        ))
        .with_context("driver", BACKEND))
    }

    /// Update rows by key; returns the number of rows matched.
    pub async fn update(&self, schema: &ModelSchema, q: &Update) -> Result<u64> {
        let keys = self.keys_for(schema, &q.filters).await?;
        let mut matched = 0;
        for key in keys {
            if self
                .modify(schema, &key, &|row| Self::apply_set(schema, row, &q.set))
                .await?
                .is_some()
            {
                matched += 1;
            }
        }
        Ok(matched)
    }

    /// Delete rows by key; returns the number deleted.
    pub async fn delete(&self, schema: &ModelSchema, q: &Filtered) -> Result<u64> {
        let keys = self.keys_for(schema, &q.filters).await?;
        self.delete_keys(&keys).await
    }

    async fn delete_keys(&self, keys: &[String]) -> Result<u64> {
        if keys.is_empty() {
            return Ok(0);
        }
        let mut conn = self.connection().await?;
        let mut deleted = 0;
        for chunk in keys.chunks(SCAN_COUNT) {
            let n: u64 = redis::cmd("DEL")
                .arg(chunk)
                .query_async(&mut conn)
                .await
                .map_err(|e| driver_error("DEL", &e))?;
            deleted += n;
        }
        Ok(deleted)
    }

    /// Every row of a model (schema drop).
    pub async fn drop_model(&self, schema: &ModelSchema) -> Result<u64> {
        let keys = self.all_keys(schema).await?;
        self.delete_keys(&keys).await
    }

    /// Upsert by primary key: update the row with `values` when it exists,
    /// else insert `insert_row` (SET NX; a concurrent insert turns this into
    /// the update path). `None` when nothing matched and no row was given.
    pub async fn upsert(
        &self,
        schema: &ModelSchema,
        q: &Upsert,
        insert_row: Option<Row>,
    ) -> Result<Option<Row>> {
        let pk = schema.pk_name();
        let key_is_pk = q.key.len() == 1
            && q.key
                .keys()
                .all(|k| schema.field(k).is_some_and(|f| f.storage == pk));
        if !key_is_pk {
            return Err(unsupported(
                "relational_filter",
                "upsert keys other than the primary key (key-value only)",
            ));
        }
        let pk_field = schema.field(pk).ok_or_else(|| schema.missing_pk())?;
        let pk_json = q.key.values().next().unwrap_or(&serde_json::Value::Null);
        let pk_value = Value::from_json(pk_json, pk_field.kind).map_err(|_| {
            Error::validation(format!(
                "Invalid value for {}.{} in upsert key: expected {}",
                schema.name, pk_field.attr, pk_field.kind
            ))
        })?;
        let key = self.key(schema, &pk_value)?;
        for _ in 0..CAS_ATTEMPTS {
            if let Some(row) = self
                .modify(schema, &key, &|row| Self::apply_set(schema, row, &q.values))
                .await?
            {
                return Ok(Some(row));
            }
            let Some(row) = insert_row.clone() else {
                return Ok(None);
            };
            match self
                .insert(schema, std::slice::from_ref(&row), OnConflict::Error)
                .await
            {
                Ok(_) => return Ok(Some(row)),
                Err(e) if e.code == ErrorCode::ConstraintViolation => continue,
                Err(e) => return Err(e),
            }
        }
        Err(Error::conflict(format!(
            "{} row kept changing during upsert; retry",
            schema.name
        ))
        .with_context("driver", BACKEND))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_percent_encode_credentials() {
        let opts = RedisOptions {
            host: "::1".into(),
            port: 6380,
            db: 3,
            username: Some("u@x".into()),
            password: Some("p:/w d".into()),
            prefix: String::new(),
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(1),
        };
        assert_eq!(opts.url(), "redis://u%40x:p%3A%2Fw%20d@[::1]:6380/3");
        let plain = RedisOptions {
            username: None,
            password: None,
            host: "h".into(),
            ..opts
        };
        assert_eq!(plain.url(), "redis://h:6380/3");
    }
}
