//! The pool and what runs on it: requests on a leased connection,
//! transactions on a connection of their own, the request timeout, and
//! connections left in an unknown state (a cancelled or timed-out
//! request) closed rather than reused.

use std::sync::{Arc, RwLock};

use aura_core::{Error, ErrorCode, ModelSchema, Result};
use aura_sql::{Catalog, Executor, Op, Outcome};
use deadpool_postgres::{
    HookError, Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
    TimeoutType,
};
use tokio_postgres_rustls::MakeRustlsConnect;

use crate::conn::PgConn;
use crate::errors::{self, DRIVER};
use crate::options::Options;

/// Starts a user transaction. PostgreSQL's REPEATABLE READ is snapshot
/// isolation: a write to a row another transaction changed since the
/// snapshot fails with 40001 (first committer wins). `SELECT 1` takes the
/// snapshot now, at `begin`, as API.md §6 says (PostgreSQL would take it
/// at the first statement). A write waiting on a row another open
/// transaction holds fails after `lock_timeout` (55P03, a `conflict`)
/// instead of waiting for that transaction to end.
const BEGIN_SNAPSHOT: &str = "BEGIN ISOLATION LEVEL REPEATABLE READ; \
     SET LOCAL lock_timeout = '100ms'; SELECT 1";

/// A leased connection that is returned to the pool only when known to be
/// idle; otherwise (a request cancelled midway, a transaction never
/// ended) it is closed, which makes the server roll back.
struct Leased {
    object: Option<Object>,
    idle: bool,
    /// A request is running on it (still set: it was cancelled midway).
    busy: bool,
}

impl Leased {
    fn new(object: Object) -> Self {
        Leased {
            object: Some(object),
            idle: true,
            busy: false,
        }
    }

    fn client(&self) -> Result<&Object> {
        self.object.as_ref().ok_or_else(txn_gone)
    }
}

impl Drop for Leased {
    fn drop(&mut self) {
        if let (Some(object), false) = (self.object.take(), self.idle) {
            drop(Object::take(object));
        }
    }
}

fn txn_gone() -> Error {
    Error::transaction("The PostgreSQL transaction is no longer active")
}

/// A user transaction: one connection, held until commit or rollback.
pub struct Txn {
    state: tokio::sync::Mutex<TxnState>,
}

enum TxnState {
    Live(Leased),
    /// Rolled back by a conflict: commit reports it again, rollback is a no-op.
    Conflicted(Error),
    Ended,
}

pub struct Database {
    pool: Pool,
    catalog: RwLock<Arc<Catalog>>,
    options: Options,
}

fn pool_error(err: PoolError, options: &Options) -> Error {
    match err {
        PoolError::Timeout(TimeoutType::Wait) => Error::timeout(format!(
            "no pooled PostgreSQL connection became free within {:.3} s (pool size {})",
            options.acquire_timeout.as_secs_f64(),
            options.pool_size
        )),
        PoolError::Timeout(_) => Error::new(
            ErrorCode::ConnectionError,
            format!(
                "cannot connect to PostgreSQL at {}:{} within {:.3} s",
                options.host,
                options.port,
                options.connect_timeout.as_secs_f64()
            ),
        ),
        PoolError::Backend(err) => errors::connect(&err),
        PoolError::Closed => Error::new(ErrorCode::ClientClosed, "Client is closed"),
        other => Error::new(
            ErrorCode::ConnectionError,
            format!("PostgreSQL pool error: {other}"),
        ),
    }
    .with_context("driver", DRIVER)
}

impl Database {
    /// Builds the pool and opens one connection, so a wrong address or
    /// bad credentials fail here.
    pub async fn open(options: Options) -> Result<Arc<Database>> {
        let tls = MakeRustlsConnect::new(options.tls()?);
        let manager = Manager::from_config(
            options.pg_config(),
            tls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let (lifetime, idle) = (options.max_lifetime, options.idle_timeout);
        let pool = Pool::builder(manager)
            .max_size(options.pool_size.max(1))
            .wait_timeout(Some(options.acquire_timeout))
            .create_timeout(Some(options.connect_timeout))
            .recycle_timeout(Some(options.connect_timeout))
            .runtime(Runtime::Tokio1)
            // Connections past max_lifetime or idle_timeout are closed
            // when next taken from the pool, and a fresh one is used.
            .pre_recycle(deadpool_postgres::Hook::sync_fn(move |_, metrics| {
                if metrics.age() > lifetime || metrics.last_used() > idle {
                    return Err(HookError::message("expired"));
                }
                Ok(())
            }))
            .build()
            .map_err(|e| {
                Error::new(ErrorCode::ConfigError, format!("PostgreSQL pool: {e}"))
                    .with_context("driver", DRIVER)
            })?;
        // Opened together, then all returned idle (at least one: a wrong
        // address or bad credentials fail here).
        let warm = (0..options.min_size.max(1)).map(|_| pool.get());
        let opened = futures_util::future::join_all(warm).await;
        for leased in opened {
            drop(leased.map_err(|e| pool_error(e, &options))?);
        }
        Ok(Arc::new(Database {
            pool,
            catalog: RwLock::new(Arc::new(Catalog::new())),
            options,
        }))
    }

    /// The registered schemas (a snapshot: registering copies on write).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    pub fn register(&self, schema: Arc<ModelSchema>) {
        let mut guard = self
            .catalog
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = (**guard).clone();
        next.insert(schema.name.clone(), schema);
        *guard = Arc::new(next);
    }

    pub fn forget(&self, names: &[String]) {
        let mut guard = self
            .catalog
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = (**guard).clone();
        for name in names {
            next.remove(name);
        }
        *guard = Arc::new(next);
    }

    /// Connections open and idle in the pool: `(open, idle, max)`.
    pub fn pool_status(&self) -> (usize, usize, usize) {
        let status = self.pool.status();
        (status.size, status.available, status.max_size)
    }

    pub fn close(&self) {
        self.pool.close();
    }

    async fn lease(&self) -> Result<Leased> {
        let object = self
            .pool
            .get()
            .await
            .map_err(|e| pool_error(e, &self.options))?;
        Ok(Leased::new(object))
    }

    /// Runs `op` on `leased` under the request timeout; a connection
    /// whose request did not finish is never reused.
    async fn run_on(&self, leased: &mut Leased, op: Op, in_txn: bool) -> Result<Outcome> {
        if leased.busy {
            // An earlier request was cancelled midway: its state is unknown.
            leased.object.take().map(Object::take);
            return Err(Error::transaction(
                "A cancelled request left the PostgreSQL transaction in an unknown state; \
                 it was rolled back",
            ));
        }
        let catalog = self.catalog();
        leased.idle = false;
        leased.busy = true;
        let timeout = self.options.request_timeout;
        let client = leased.client()?;
        let mut conn = PgConn {
            client,
            catalog: &catalog,
        };
        let mut exec = Executor::new(&mut conn, &catalog, in_txn);
        let result = tokio::time::timeout(timeout, exec.run(op)).await;
        leased.busy = false;
        match result {
            Ok(outcome) => {
                leased.idle = !in_txn;
                outcome
            }
            Err(_) => {
                leased.object.take().map(Object::take);
                Err(Error::timeout(format!(
                    "PostgreSQL request exceeded request_timeout_s ({:.3} s)",
                    timeout.as_secs_f64()
                ))
                .with_context("driver", DRIVER))
            }
        }
    }

    /// Runs one request, in `txn` when given. A conflict ends the
    /// transaction at once (rolled back, its connection returned): it must
    /// be restarted from scratch (API.md §6).
    pub async fn run(&self, op: Op, txn: Option<&Txn>) -> Result<Outcome> {
        let Some(txn) = txn else {
            let mut leased = self.lease().await?;
            return self.run_on(&mut leased, op, false).await;
        };
        let mut state = txn.state.lock().await;
        let leased = match &mut *state {
            TxnState::Live(leased) => leased,
            TxnState::Conflicted(err) => return Err(err.clone()),
            TxnState::Ended => return Err(txn_gone()),
        };
        let result = self.run_on(leased, op, true).await;
        if let Err(err) = &result {
            if err.code == ErrorCode::Conflict {
                if let TxnState::Live(leased) =
                    std::mem::replace(&mut *state, TxnState::Conflicted(err.clone()))
                {
                    self.finish(leased, "ROLLBACK").await.ok();
                }
            }
        }
        result
    }

    /// Begins a snapshot transaction on a connection of its own.
    pub async fn begin(&self) -> Result<Txn> {
        let mut leased = self.lease().await?;
        leased.idle = false;
        let client = leased.client()?;
        client
            .batch_execute(BEGIN_SNAPSHOT)
            .await
            .map_err(|e| errors::map(&e, &self.catalog()))?;
        Ok(Txn {
            state: tokio::sync::Mutex::new(TxnState::Live(leased)),
        })
    }

    /// Commits (or rolls back) and returns the connection to the pool.
    pub async fn end(&self, txn: &Txn, commit: bool) -> Result<()> {
        let state = std::mem::replace(&mut *txn.state.lock().await, TxnState::Ended);
        match (state, commit) {
            (TxnState::Live(leased), _) => {
                self.finish(leased, if commit { "COMMIT" } else { "ROLLBACK" })
                    .await
            }
            (TxnState::Conflicted(err), true) => Err(err),
            (TxnState::Conflicted(_), false) => Ok(()),
            (TxnState::Ended, _) => Err(txn_gone()),
        }
    }

    async fn finish(&self, mut leased: Leased, sql: &str) -> Result<()> {
        let client = leased.client()?;
        let done = client
            .batch_execute(sql)
            .await
            .map_err(|e| errors::map(&e, &self.catalog()));
        // Only a connection known to be outside a transaction is reused.
        leased.idle = done.is_ok();
        done
    }
}
