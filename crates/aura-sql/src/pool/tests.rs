//! `Database` over a fake pool: which connections go back to the pool,
//! which are discarded, and how a transaction ends after a conflict, a
//! timeout or a cancelled request.

use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;

use aura_core::{Error, ErrorCode, FieldKind, ModelSchema, Result, Row, Value};
use serde_json::Value as Json;

use super::*;
use crate::{Dialect, RawRows, SqlValue, Statement};

/// Connections by number; every statement logged as `"<conn>: <sql>"`.
#[derive(Default)]
struct FakePool {
    log: Mutex<Vec<String>>,
    opened: Mutex<usize>,
    discarded: Mutex<Vec<usize>>,
    /// `COMMIT` never answers (a server that stopped responding).
    stuck_commit: Mutex<bool>,
}

struct FakeSession<'a> {
    pool: &'a FakePool,
    conn: usize,
}

impl FakeSession<'_> {
    /// `SLOW` never finishes; `CONFLICT` fails as a serialization failure.
    async fn run(&mut self, sql: &str) -> Result<()> {
        self.pool
            .log
            .lock()
            .unwrap()
            .push(format!("{}: {sql}", self.conn));
        match sql {
            "SLOW" => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
            "CONFLICT" => Err(Error::new(ErrorCode::Conflict, "scripted conflict")),
            "COMMIT" if *self.pool.stuck_commit.lock().unwrap() => {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

impl SqlConnection for FakeSession<'_> {
    const DIALECT: Dialect = Dialect::Postgres;

    async fn rows(&mut self, _: &ModelSchema, stmt: &Statement) -> Result<Vec<Row>> {
        self.run(&stmt.sql).await.map(|()| Vec::new())
    }

    async fn column(&mut self, _: FieldKind, stmt: &Statement) -> Result<Vec<Value>> {
        self.run(&stmt.sql).await.map(|()| Vec::new())
    }

    async fn table(&mut self, stmt: &Statement, _: &[FieldKind]) -> Result<Vec<Vec<Value>>> {
        self.run(&stmt.sql).await.map(|()| Vec::new())
    }

    async fn scalar(&mut self, stmt: &Statement) -> Result<i64> {
        self.run(&stmt.sql).await.map(|()| 0)
    }

    async fn execute(&mut self, stmt: &Statement) -> Result<u64> {
        self.run(&stmt.sql).await.map(|()| 0)
    }

    async fn batch(&mut self, sql: &str) -> Result<()> {
        self.run(sql).await
    }

    async fn raw(&mut self, sql: &str, _: &[SqlValue]) -> Result<RawRows> {
        self.run(sql).await.map(|()| (Vec::new(), Vec::new()))
    }
}

impl Pool for FakePool {
    type Conn = usize;
    type Session<'a> = FakeSession<'a>;

    const DRIVER: &'static str = "fake";
    const DATABASE: &'static str = "Fake";
    const BEGIN_SNAPSHOT: &'static str = "BEGIN SNAPSHOT";

    async fn lease(&self) -> Result<usize> {
        let mut opened = self.opened.lock().unwrap();
        *opened += 1;
        Ok(*opened)
    }

    fn session<'a>(&'a self, conn: &'a mut usize, _: &'a Catalog) -> FakeSession<'a> {
        FakeSession {
            pool: self,
            conn: *conn,
        }
    }

    fn discard(&self, conn: usize) {
        self.discarded.lock().unwrap().push(conn);
    }

    fn status(&self) -> (usize, usize, usize) {
        (0, 0, 0)
    }

    fn close(&self) {}
}

fn database() -> Database<FakePool> {
    Database::new(FakePool::default(), Duration::from_millis(50))
}

fn raw(sql: &str) -> Op {
    Op::Raw {
        statement: sql.to_owned(),
        params: Json::Null,
    }
}

fn log(db: &Database<FakePool>) -> Vec<String> {
    db.pool().log.lock().unwrap().clone()
}

fn discarded(db: &Database<FakePool>) -> Vec<usize> {
    db.pool().discarded.lock().unwrap().clone()
}

#[tokio::test(start_paused = true)]
async fn a_finished_request_returns_its_connection() {
    let db = database();
    db.run(raw("SELECT 1"), None).await.unwrap();
    assert_eq!(log(&db), ["1: SELECT 1"]);
    assert!(discarded(&db).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_request_discards_its_connection() {
    let db = database();
    let err = db.run(raw("SLOW"), None).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout);
    assert_eq!(
        err.message,
        "Fake request exceeded request_timeout_s (0.050 s)"
    );
    assert_eq!(discarded(&db), [1]);
}

#[tokio::test(start_paused = true)]
async fn a_transaction_keeps_one_connection_until_it_ends() {
    let db = database();
    let txn = db.begin().await.unwrap();
    db.run(raw("SELECT 1"), Some(&txn)).await.unwrap();
    db.end(&txn, true).await.unwrap();
    assert_eq!(
        log(&db),
        [
            "1: BEGIN SNAPSHOT",
            "1: SAVEPOINT aura_op",
            "1: SELECT 1",
            "1: RELEASE SAVEPOINT aura_op",
            "1: COMMIT"
        ]
    );
    assert!(discarded(&db).is_empty());
    let err = db.end(&txn, true).await.unwrap_err();
    assert_eq!(err.message, "The Fake transaction is no longer active");
}

#[tokio::test(start_paused = true)]
async fn a_conflict_rolls_the_transaction_back_at_once() {
    let db = database();
    let txn = db.begin().await.unwrap();
    let err = db.run(raw("CONFLICT"), Some(&txn)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    assert_eq!(log(&db).last().map(String::as_str), Some("1: ROLLBACK"));
    // Every later use reports the conflict; rollback is a no-op.
    let again = db.run(raw("SELECT 1"), Some(&txn)).await.unwrap_err();
    assert_eq!(again.code, ErrorCode::Conflict);
    assert_eq!(
        db.end(&txn, true).await.unwrap_err().code,
        ErrorCode::Conflict
    );
    let txn = db.begin().await.unwrap();
    db.run(raw("CONFLICT"), Some(&txn)).await.unwrap_err();
    db.end(&txn, false).await.unwrap();
    assert!(discarded(&db).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_request_ends_its_transaction() {
    let db = database();
    let txn = db.begin().await.unwrap();
    let run = db.run(raw("SLOW"), Some(&txn));
    // Polled until it waits on the statement, then dropped (cancelled).
    assert!(tokio::time::timeout(Duration::from_millis(1), run)
        .await
        .is_err());
    assert_eq!(discarded(&db), [1]);
    let err = db.run(raw("SELECT 1"), Some(&txn)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::TransactionError);
    assert!(err
        .message
        .starts_with("A cancelled or timed-out request left the Fake"));
    assert_eq!(
        db.end(&txn, true).await.unwrap_err().code,
        ErrorCode::TransactionError
    );
    db.end(&txn, false).await.unwrap_err();
}

#[tokio::test(start_paused = true)]
async fn a_transaction_of_another_database_is_refused() {
    let (one, other) = (database(), database());
    let txn = one.begin().await.unwrap();
    // Same driver, another client: its connection is not this one's.
    let err = other.run(raw("SELECT 1"), Some(&txn)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::TransactionError);
    let err = other.end(&txn, true).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::TransactionError);
    struct Stranger;
    let foreign = Txn(Box::new(Stranger));
    let err = other
        .run(raw("SELECT 1"), Some(&foreign))
        .await
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::TransactionError);
    one.end(&txn, false).await.unwrap();
    assert!(log(&other).is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_transaction_dropped_without_ending_closes_its_connection() {
    let db = database();
    let txn = db.begin().await.unwrap();
    db.run(raw("INSERT"), Some(&txn)).await.unwrap();
    drop(txn);
    // Closed, so the server rolls back; never back in the pool open.
    assert_eq!(discarded(&db), [1]);
    let ended = db.begin().await.unwrap();
    db.end(&ended, true).await.unwrap();
    drop(ended);
    assert_eq!(discarded(&db), [1]);
}

/// The boxed futures are `Send` for a generic pool.
#[test]
fn database_futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    let db = database();
    let run = db.run(raw("SELECT 1"), None);
    is_send(&run);
    let _: &dyn Future<Output = Result<Outcome>> = &run;
}

#[tokio::test(start_paused = true)]
async fn a_commit_that_never_answers_times_out_and_closes_the_connection() {
    let db = database();
    let txn = db.begin().await.unwrap();
    *db.pool().stuck_commit.lock().unwrap() = true;
    let err = db.end(&txn, true).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Timeout);
    assert_eq!(discarded(&db), [1]);
}
