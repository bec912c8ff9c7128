//! The executor against a scripted connection: which statements run, in
//! which order, and how sections open and close.

use std::collections::VecDeque;
use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};

use aura_core::ir::{CompareOp, Expr, Filtered, Select};
use aura_core::{Error, ErrorCode, FieldDef, FieldKind, ModelSchema, OnDelete, Result, Row, Value};
use serde_json::json;

use super::*;
use crate::{Dialect, Statement};

/// Answers from a script; records every statement's SQL.
#[derive(Default)]
struct Scripted {
    log: Vec<String>,
    columns: VecDeque<Vec<Value>>,
    scalars: VecDeque<i64>,
    /// The statement (by prefix) that fails with a constraint error.
    fail_on: Option<&'static str>,
    /// What a select returns.
    rows: Vec<Row>,
}

impl Scripted {
    fn record(&mut self, sql: &str) -> Result<()> {
        self.log.push(sql.to_owned());
        match self.fail_on {
            Some(prefix) if sql.starts_with(prefix) => Err(Error::constraint("scripted failure")),
            _ => Ok(()),
        }
    }
}

impl SqlConnection for Scripted {
    const DIALECT: Dialect = Dialect::Postgres;

    async fn rows(&mut self, _: &ModelSchema, stmt: &Statement) -> Result<Vec<Row>> {
        self.record(&stmt.sql)?;
        Ok(self.rows.clone())
    }

    async fn rows_chunked(
        &mut self,
        _: &ModelSchema,
        stmt: &Statement,
        chunk: usize,
        sink: &mut (dyn FnMut(Vec<Row>) + Send),
    ) -> Result<Vec<Row>> {
        self.record(&stmt.sql)?;
        let mut out = crate::Chunker::new(chunk, sink);
        self.rows.iter().for_each(|row| out.push(row.clone()));
        Ok(out.rest())
    }

    async fn column(&mut self, _: FieldKind, stmt: &Statement) -> Result<Vec<Value>> {
        self.record(&stmt.sql)?;
        Ok(self.columns.pop_front().unwrap_or_default())
    }

    async fn table(&mut self, stmt: &Statement, _: &[FieldKind]) -> Result<Vec<Vec<Value>>> {
        self.record(&stmt.sql)?;
        Ok(Vec::new())
    }

    async fn scalar(&mut self, stmt: &Statement) -> Result<i64> {
        self.record(&stmt.sql)?;
        Ok(self.scalars.pop_front().unwrap_or(0))
    }

    async fn execute(&mut self, stmt: &Statement) -> Result<u64> {
        self.record(&stmt.sql)?;
        Ok(1)
    }

    async fn batch(&mut self, sql: &str) -> Result<()> {
        self.record(sql)
    }

    async fn raw(&mut self, sql: &str, _: &[SqlValue]) -> Result<RawRows> {
        self.record(sql)?;
        Ok((Vec::new(), Vec::new()))
    }
}

/// The scripted connection never waits, so one poll finishes a request.
fn finish<T>(future: impl Future<Output = T>) -> T {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(value) => value,
        Poll::Pending => panic!("the scripted connection never waits"),
    }
}

fn catalog() -> Catalog {
    let owner = ModelSchema {
        name: "Owner".into(),
        primary_key: Some("id".into()),
        fields: vec![FieldDef::new("id", FieldKind::Int)],
        relationships: vec![],
    };
    let pet = ModelSchema {
        name: "Pet".into(),
        primary_key: Some("id".into()),
        fields: vec![
            FieldDef::new("id", FieldKind::Int),
            FieldDef::link("owner", "Owner", Some(OnDelete::Cascade)),
        ],
        relationships: vec![],
    };
    [owner, pet]
        .into_iter()
        .map(|s| (s.name.clone(), Arc::new(s)))
        .collect()
}

fn owner_is(id: i64) -> Filtered {
    Filtered::new(
        "Owner",
        vec![Expr::compare(
            CompareOp::Eq,
            Expr::field("Owner", "id"),
            Expr::literal(json!(id)),
        )],
    )
}

#[test]
fn a_cascading_delete_runs_in_one_transaction() {
    let catalog = catalog();
    let mut conn = Scripted {
        columns: VecDeque::from([vec![Value::Int(1)], vec![Value::Int(7), Value::Int(8)]]),
        ..Default::default()
    };
    let n = finish(Executor::new(&mut conn, &catalog, false).delete(&owner_is(1))).unwrap();
    assert_eq!(n, 1);
    assert_eq!(
        conn.log,
        [
            "BEGIN",
            "SELECT \"id\" FROM \"Owner\" WHERE \"id\" = $1",
            "DELETE FROM \"Owner\" WHERE \"id\" IN ($1)",
            "SELECT \"id\" FROM \"Pet\" WHERE \"owner\" IN ($1)",
            "DELETE FROM \"Pet\" WHERE \"id\" IN ($1, $2)",
            "COMMIT",
        ]
    );
}

#[test]
fn a_failed_write_rolls_back_and_keeps_its_error() {
    let catalog = catalog();
    let mut conn = Scripted {
        fail_on: Some("DELETE FROM \"Pet\""),
        ..Scripted::default()
    };
    conn.columns = VecDeque::from([vec![Value::Int(1)], vec![Value::Int(7)]]);
    let err = finish(Executor::new(&mut conn, &catalog, false).delete(&owner_is(1))).unwrap_err();
    assert_eq!(
        (err.code, err.message.as_str()),
        (ErrorCode::ConstraintViolation, "scripted failure")
    );
    assert_eq!(conn.log.last().map(String::as_str), Some("ROLLBACK"));
}

#[test]
fn inside_a_transaction_each_request_is_a_savepoint() {
    let catalog = catalog();
    let mut conn = Scripted::default();
    let n = finish(Executor::new(&mut conn, &catalog, true).count(&Filtered::new("Pet", vec![])))
        .unwrap();
    assert_eq!(n, 0);
    assert_eq!(
        conn.log,
        [
            "SAVEPOINT aura_op",
            "SELECT COUNT(*) FROM \"Pet\" WHERE TRUE",
            "RELEASE SAVEPOINT aura_op"
        ]
    );
    conn.log.clear();
    conn.fail_on = Some("SELECT");
    let failed =
        finish(Executor::new(&mut conn, &catalog, true).count(&Filtered::new("Pet", vec![])));
    assert!(failed.is_err());
    assert_eq!(
        conn.log.last().map(String::as_str),
        Some("ROLLBACK TO SAVEPOINT aura_op; RELEASE SAVEPOINT aura_op")
    );
}

#[test]
fn a_deadline_the_driver_cannot_enforce_is_refused() {
    let catalog = catalog();
    let mut conn = Scripted::default();
    let mut q = Select::new("Pet");
    q.timeout_ms = Some(5);
    let err = finish(Executor::new(&mut conn, &catalog, false).select(&q)).unwrap_err();
    assert_eq!(err.code, ErrorCode::BackendCapabilityError);
    assert_eq!(conn.log, ["BEGIN", "ROLLBACK"]);
}

#[test]
fn raw_binds_dict_values_in_order() {
    assert_eq!(json_param(&json!(true)), SqlValue::Bool(true));
    assert_eq!(json_param(&json!(2.5)), SqlValue::Float(2.5));
    assert_eq!(json_param(&json!([1])), SqlValue::Text("[1]".into()));
    let catalog = catalog();
    let mut conn = Scripted::default();
    let params = json!({"b": 1, "a": "x"});
    finish(Executor::new(&mut conn, &catalog, false).raw("SELECT $1, $2", &params)).unwrap();
    assert_eq!(conn.log, ["SELECT $1, $2"]);
}

fn ids(rows: &[Fetched]) -> Vec<i64> {
    rows.iter()
        .map(|f| match f.row[0] {
            Value::Int(i) => i,
            _ => -1,
        })
        .collect()
}

#[test]
fn a_streamed_select_hands_over_full_chunks_and_returns_the_rest() {
    let catalog = catalog();
    let mut conn = Scripted {
        rows: (1..=5).map(|i| Row::from(vec![Value::Int(i)])).collect(),
        ..Scripted::default()
    };
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let chunks = {
        let seen = seen.clone();
        Chunks::new(2, move |rows| seen.lock().unwrap().push(ids(&rows)))
    };
    let rest = finish(
        Executor::new(&mut conn, &catalog, false).select_streamed(&Select::new("Owner"), &chunks),
    )
    .unwrap();
    assert_eq!(*seen.lock().unwrap(), [vec![1, 2], vec![3, 4]]);
    assert_eq!(ids(&rest), [5]);
    assert_eq!(
        conn.log,
        ["SELECT \"id\" FROM \"Owner\" WHERE TRUE ORDER BY \"id\" ASC"]
    );
}

#[test]
fn a_streamed_select_with_includes_is_read_whole() {
    let catalog = catalog();
    let mut conn = Scripted::default();
    let mut q = Select::new("Pet");
    q.include
        .push(serde_json::from_value(json!({"link": "owner"})).unwrap());
    let chunks = Chunks::new(1, |_| panic!("no chunk before the includes are loaded"));
    let rest = finish(Executor::new(&mut conn, &catalog, false).select_streamed(&q, &chunks));
    assert_eq!(rest.unwrap(), []);
    assert_eq!(conn.log.first().map(String::as_str), Some("BEGIN"));
}

fn owner_rows(ids: std::ops::Range<i64>) -> Vec<Row> {
    ids.map(|i| Row::from(vec![Value::Int(i)])).collect()
}

/// Inserts Owner 1, then whatever `feed` sends for `pending` more rows;
/// returns the result and the statements run.
fn fed_insert(pending: usize, feed: impl FnOnce(&RowSender)) -> (Result<u64>, Vec<String>) {
    let catalog = catalog();
    let mut conn = Scripted::default();
    let (send, mut rest) = RowFeed::channel(pending);
    feed(&send);
    drop(send);
    let result = finish(Executor::new(&mut conn, &catalog, false).insert_fed(
        "Owner",
        owner_rows(1..2),
        OnConflict::Error,
        &mut rest,
    ));
    (result, conn.log)
}

#[test]
fn a_fed_insert_writes_every_chunk_in_one_transaction() {
    let (n, log) = fed_insert(3, |send| {
        send.send(Ok(owner_rows(2..4))).unwrap();
        send.send(Ok(owner_rows(4..5))).unwrap();
    });
    assert_eq!(n.unwrap(), 4);
    assert_eq!(log.first().map(String::as_str), Some("BEGIN"));
    assert_eq!(log.len(), 6, "BEGIN, four inserts, COMMIT: {log:?}");
    assert_eq!(log.last().map(String::as_str), Some("COMMIT"));
}

#[test]
fn an_abandoned_feed_rolls_the_insert_back() {
    // Two rows never come: the request was cancelled.
    let (result, log) = fed_insert(3, |send| send.send(Ok(owner_rows(2..3))).unwrap());
    let err = result.unwrap_err();
    assert!(err.message.contains("abandoned"), "{err:?}");
    assert_eq!(log, ["BEGIN", "ROLLBACK"]);
}

#[test]
fn a_fed_chunk_without_its_key_is_refused() {
    let (result, log) = fed_insert(1, |send| {
        send.send(Ok(vec![Row::from(vec![Value::Null])])).unwrap()
    });
    assert_eq!(result.unwrap_err().code, ErrorCode::ConstraintViolation);
    assert_eq!(log, ["BEGIN", "ROLLBACK"]);
}
