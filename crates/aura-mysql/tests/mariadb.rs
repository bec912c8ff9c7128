//! Against a real MariaDB/MySQL server named by `AURA_TEST_MYSQL_DSN`
//! (`mysql://user[:password]@host:port/db`); each test works in a database
//! of its own, dropped afterwards. Skipped, saying why, when it is unset.

use std::sync::Arc;
use std::time::Duration;

use aura_core::{ErrorCode, Value};
use aura_mysql::{open, Options, SslMode};
use aura_sql::{Op, Outcome, SqlDatabase};

fn base() -> Option<Options> {
    let Ok(dsn) = std::env::var("AURA_TEST_MYSQL_DSN") else {
        eprintln!(
            "skipped: AURA_TEST_MYSQL_DSN is not set (e.g. mysql://root@127.0.0.1:3306/test)"
        );
        return None;
    };
    let rest = dsn.split_once("://").map_or(dsn.as_str(), |(_, r)| r);
    let (auth, rest) = rest.rsplit_once('@').unwrap_or(("root", rest));
    let (user, password) = match auth.split_once(':') {
        Some((u, p)) => (u.to_owned(), Some(p.to_owned())),
        None => (auth.to_owned(), None),
    };
    let (addr, db) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = addr.split_once(':').unwrap_or((addr, "3306"));
    Some(Options {
        host: host.to_owned(),
        port: port.parse().expect("port"),
        user,
        password,
        dbname: Some(db.to_owned()).filter(|d| !d.is_empty()),
        ssl_mode: SslMode::Preferred,
        ca_file: None,
        pool: aura_sql::PoolSettings {
            min_size: 1,
            max_size: 4,
            acquire_timeout: Duration::from_secs(10),
            connect_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            max_lifetime: Duration::from_secs(600),
            idle_timeout: Duration::from_secs(600),
        },
    })
}

fn raw(sql: &str, params: serde_json::Value) -> Op {
    Op::Raw {
        statement: sql.to_owned(),
        params,
    }
}

async fn rows(db: &Arc<aura_mysql::Database>, sql: &str) -> Vec<Vec<Value>> {
    match db.run(raw(sql, serde_json::json!([])), None).await.unwrap() {
        Outcome::Raw((_, rows)) => rows,
        other => panic!("unexpected {other:?}"),
    }
}

/// A database of its own (`aura_rt_<name>`), created fresh.
async fn fresh(name: &str) -> Option<(Arc<aura_mysql::Database>, Arc<aura_mysql::Database>)> {
    let options = base()?;
    let admin = open(options.clone()).await.expect("admin connection");
    let db_name = format!("aura_rt_{name}");
    for sql in [
        format!("DROP DATABASE IF EXISTS `{db_name}`"),
        format!("CREATE DATABASE `{db_name}`"),
    ] {
        admin
            .run(raw(&sql, serde_json::json!([])), None)
            .await
            .unwrap();
    }
    let db = open(Options {
        dbname: Some(db_name),
        ..options
    })
    .await
    .expect("test database");
    Some((admin, db))
}

async fn drop_db(admin: &Arc<aura_mysql::Database>, name: &str) {
    let sql = format!("DROP DATABASE IF EXISTS `aura_rt_{name}`");
    admin
        .run(raw(&sql, serde_json::json!([])), None)
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn raw_values_round_trip_typed() {
    let Some((admin, db)) = fresh("values").await else {
        return;
    };
    rows(
        &db,
        "CREATE TABLE t (id BIGINT PRIMARY KEY, f DOUBLE, s LONGTEXT)",
    )
    .await;
    let insert = raw(
        "INSERT INTO t VALUES (?, ?, ?)",
        serde_json::json!([1, 2.5, "ünï 'x'"]),
    );
    db.run(insert, None).await.unwrap();
    assert_eq!(
        rows(&db, "SELECT id, f, s, SUM(id) AS total FROM t GROUP BY id").await,
        vec![vec![
            Value::Int(1),
            Value::Float(2.5),
            Value::Str("ünï 'x'".into()),
            Value::Int(1)
        ]]
    );
    drop_db(&admin, "values").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_map_to_the_taxonomy() {
    let Some((admin, db)) = fresh("errors").await else {
        return;
    };
    rows(&db, "CREATE TABLE t (id BIGINT PRIMARY KEY)").await;
    db.run(
        raw("INSERT INTO t VALUES (?)", serde_json::json!([7])),
        None,
    )
    .await
    .unwrap();
    let dup = db
        .run(
            raw("INSERT INTO t VALUES (?)", serde_json::json!([7])),
            None,
        )
        .await
        .unwrap_err();
    assert_eq!(dup.code, ErrorCode::ConstraintViolation);
    assert_eq!(dup.message, "MySQL unique constraint violated");
    let missing = db
        .run(raw("SELECT * FROM nope", serde_json::json!([])), None)
        .await
        .unwrap_err();
    assert_eq!(missing.code, ErrorCode::SchemaError);
    let params = db
        .run(raw("SELECT ?", serde_json::json!([])), None)
        .await
        .unwrap_err();
    assert_eq!(params.code, ErrorCode::QueryError);
    assert_eq!(
        params.message,
        "the statement takes 1 parameter(s), 0 given"
    );
    drop_db(&admin, "errors").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_see_their_snapshot_and_conflict() {
    let Some((admin, db)) = fresh("txn").await else {
        return;
    };
    rows(&db, "CREATE TABLE c (id BIGINT PRIMARY KEY, v BIGINT)").await;
    rows(&db, "INSERT INTO c VALUES (1, 0)").await;
    let first = db.begin().await.unwrap();
    let second = db.begin().await.unwrap();
    let bump = |v: i64| raw("UPDATE c SET v = ? WHERE id = 1", serde_json::json!([v]));
    db.run(bump(1), Some(&first)).await.unwrap();
    db.end(&first, true).await.unwrap();
    // `second`'s snapshot predates the commit: its write must not win.
    let err = db.run(bump(2), Some(&second)).await.unwrap_err();
    assert_eq!(err.code, ErrorCode::Conflict);
    assert_eq!(
        db.end(&second, true).await.unwrap_err().code,
        ErrorCode::Conflict
    );
    assert_eq!(
        rows(&db, "SELECT v FROM c").await,
        vec![vec![Value::Int(1)]]
    );
    // Returned connections reach the pool's idle list through its
    // recycler task, so only the bounds are fixed here.
    let (open_, idle, max) = db.pool_status();
    assert!(max == 4 && open_ <= max && idle <= open_);
    drop_db(&admin, "txn").await;
}
