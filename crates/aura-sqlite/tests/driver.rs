//! The driver without Python: pool jobs, transactions on leased
//! connections, the writer lock, error mapping and private databases.

use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

use aura_core::ir::{CompareOp, Expr, Filtered, Select};
use aura_core::{ErrorCode, FieldDef, FieldKind, ModelSchema, Result, Row, Value};
use aura_sql::OnConflict;
use aura_sqlite::{Database, Location, Options, Session, Txn, TxnJob};

fn options(busy_ms: u64) -> Options {
    Options {
        location: Location::Private,
        read_only: false,
        busy_timeout: Duration::from_millis(busy_ms),
        min_size: 1,
        max_size: 4,
        acquire_timeout: Duration::from_secs(30),
        max_lifetime: Duration::from_secs(3600),
        idle_timeout: Duration::from_secs(300),
    }
}

fn item() -> Arc<ModelSchema> {
    Arc::new(ModelSchema {
        name: "DrvItem".into(),
        primary_key: Some("id".into()),
        fields: vec![
            FieldDef::new("id", FieldKind::Int),
            FieldDef::new("name", FieldKind::Str).unique(),
        ],
        relationships: vec![],
    })
}

fn row(id: i64, name: &str) -> Row {
    Arc::from(vec![Value::Int(id), Value::str(name)])
}

/// Runs `work` on a pooled connection and waits for its result.
fn run<T: Send + 'static>(
    db: &Database,
    work: impl FnOnce(&mut Session) -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = mpsc::channel();
    db.submit(Box::new(move |s| {
        let _ = tx.send(s.and_then(work));
    }));
    rx.recv().expect("job finished")
}

fn in_txn<T: Send + 'static>(
    txn: &Txn,
    work: impl FnOnce(&mut Session) -> Result<T> + Send + 'static,
) -> Result<T> {
    let (tx, rx) = mpsc::channel();
    let job = TxnJob::Work(Box::new(move |s| {
        let _ = tx.send(s.and_then(work));
    }));
    assert!(txn.send(job).is_ok());
    rx.recv().expect("job finished")
}

fn begin(db: &Database) -> Result<Txn> {
    let (tx, rx) = mpsc::channel();
    db.begin(Box::new(move |t| {
        let _ = tx.send(t);
    }));
    rx.recv().expect("begin finished")
}

fn end(txn: &Txn, commit: bool) -> Result<()> {
    let (tx, rx) = mpsc::channel();
    let done = Box::new(move |r| {
        let _ = tx.send(r);
    });
    assert!(txn.send(TxnJob::End { commit, done }).is_ok());
    rx.recv().expect("end finished")
}

fn count(db: &Database) -> u64 {
    run(db, |s| {
        aura_sqlite::count(s, &Filtered::new("DrvItem", vec![]))
    })
    .unwrap()
}

fn setup() -> Database {
    let db = Database::open(options(100)).unwrap();
    run(&db, |s| aura_sqlite::create_schema(s, vec![item()])).unwrap();
    db
}

#[test]
fn rows_round_trip_in_primary_key_order() {
    let db = setup();
    let rows = vec![row(3, "c"), row(1, "a"), row(2, "b")];
    let written = run(&db, move |s| {
        aura_sqlite::insert(s, "DrvItem", rows, OnConflict::Error)
    });
    assert_eq!(written.unwrap(), 3);
    let fetched = run(&db, |s| aura_sqlite::select(s, &Select::new("DrvItem"))).unwrap();
    let ids: Vec<Value> = fetched.iter().map(|f| f.row[0].clone()).collect();
    assert_eq!(ids, vec![Value::Int(1), Value::Int(2), Value::Int(3)]);
    assert_eq!(fetched[0].row[1], Value::str("a"));
}

#[test]
fn constraint_errors_name_fields_not_values() {
    let db = setup();
    run(&db, |s| {
        aura_sqlite::insert(s, "DrvItem", vec![row(1, "secret")], OnConflict::Error)
    })
    .unwrap();
    let err = run(&db, |s| {
        aura_sqlite::insert(s, "DrvItem", vec![row(2, "secret")], OnConflict::Error)
    })
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::ConstraintViolation);
    assert_eq!(err.message, "DrvItem.name must be unique");
    assert!(!format!("{err:?}").contains("secret"));
    let ignored = run(&db, |s| {
        aura_sqlite::insert(s, "DrvItem", vec![row(1, "x")], OnConflict::Ignore)
    });
    assert_eq!(ignored.unwrap(), 0);
    // the failed batch left nothing behind
    assert_eq!(count(&db), 1);
}

#[test]
fn transaction_writes_stay_invisible_until_commit() {
    let db = setup();
    let txn = begin(&db).unwrap();
    in_txn(&txn, |s| {
        aura_sqlite::insert(s, "DrvItem", vec![row(1, "a")], OnConflict::Error)
    })
    .unwrap();
    let inside = in_txn(&txn, |s| {
        aura_sqlite::count(s, &Filtered::new("DrvItem", vec![]))
    });
    assert_eq!(inside.unwrap(), 1);
    assert_eq!(count(&db), 0);
    end(&txn, true).unwrap();
    assert_eq!(count(&db), 1);
    let txn = begin(&db).unwrap();
    let filter = Expr::compare(
        CompareOp::Eq,
        Expr::field("DrvItem", "id"),
        Expr::literal(1),
    );
    in_txn(&txn, move |s| {
        aura_sqlite::delete(s, &Filtered::new("DrvItem", vec![filter]))
    })
    .unwrap();
    end(&txn, false).unwrap();
    assert_eq!(count(&db), 1);
}

#[test]
fn a_second_writer_gets_a_retryable_conflict() {
    let db = setup();
    let first = begin(&db).unwrap();
    let err = begin(&db).err().expect("the writer lock is held");
    assert_eq!(err.code, ErrorCode::Conflict);
    assert_eq!(err.retryable, Some(true));
    let outside = run(&db, |s| {
        aura_sqlite::insert(s, "DrvItem", vec![row(9, "z")], OnConflict::Error)
    });
    assert_eq!(outside.unwrap_err().code, ErrorCode::Conflict);
    end(&first, true).unwrap();
    assert!(begin(&db).is_ok());
}

#[test]
fn unknown_tables_are_schema_errors_and_close_removes_the_file() {
    let db = setup();
    let err = run(&db, |s| {
        aura_sqlite::raw(s, "SELECT * FROM Nope", &serde_json::Value::Null)
    })
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::SchemaError);
    assert_eq!(
        err.message,
        "Table 'Nope' does not exist; register its model with the client"
    );
    let path = db.path().to_owned();
    assert!(path.is_file());
    db.close();
    assert!(!path.exists());
    let after = run(&db, |s| {
        aura_sqlite::count(s, &Filtered::new("DrvItem", vec![]))
    });
    assert_eq!(after.unwrap_err().code, ErrorCode::ClientClosed);
}
