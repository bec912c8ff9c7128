//! The deadpool-postgres pool behind the shared `aura_sql::Database`
//! (which owns requests, transactions and timeouts): opening it, leasing
//! with PostgreSQL's errors, expiring old connections, discarding one
//! whose state is unknown.

use std::sync::Arc;

use aura_core::{Error, ErrorCode, Result};
use aura_sql::Catalog;
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

/// The deadpool-postgres pool, as the shared `aura_sql::Database` runs it.
pub struct PgPool {
    pool: Pool,
    options: Options,
}

/// PostgreSQL's requests and transactions (`aura_sql::Database`).
pub type Database = aura_sql::Database<PgPool>;

fn pool_error(err: PoolError, options: &Options) -> Error {
    match err {
        PoolError::Timeout(TimeoutType::Wait) => Error::timeout(format!(
            "no pooled PostgreSQL connection became free within {:.3} s (pool size {})",
            options.pool.acquire_timeout.as_secs_f64(),
            options.pool.max_size
        )),
        PoolError::Timeout(_) => Error::new(
            ErrorCode::ConnectionError,
            format!(
                "cannot connect to PostgreSQL at {}:{} within {:.3} s",
                options.host,
                options.port,
                options.pool.connect_timeout.as_secs_f64()
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

/// Builds the pool and opens one connection, so a wrong address or bad
/// credentials fail here.
pub async fn open(options: Options) -> Result<Arc<Database>> {
    let tls = MakeRustlsConnect::new(options.tls()?);
    let manager = Manager::from_config(
        options.pg_config(),
        tls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    let (lifetime, idle) = (options.pool.max_lifetime, options.pool.idle_timeout);
    let pool = Pool::builder(manager)
        .max_size(options.pool.max_size.max(1))
        .wait_timeout(Some(options.pool.acquire_timeout))
        .create_timeout(Some(options.pool.connect_timeout))
        .recycle_timeout(Some(options.pool.connect_timeout))
        .runtime(Runtime::Tokio1)
        // Connections past max_lifetime or idle_timeout are closed when
        // next taken from the pool, and a fresh one is used.
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
    let warm = (0..options.pool.min_size.max(1)).map(|_| pool.get());
    let opened = futures_util::future::join_all(warm).await;
    for leased in opened {
        drop(leased.map_err(|e| pool_error(e, &options))?);
    }
    let timeout = options.pool.request_timeout;
    Ok(Arc::new(Database::new(PgPool { pool, options }, timeout)))
}

impl aura_sql::Pool for PgPool {
    type Conn = Object;
    type Session<'a> = PgConn<'a>;

    const DRIVER: &'static str = DRIVER;
    const DATABASE: &'static str = "PostgreSQL";
    const BEGIN_SNAPSHOT: &'static str = BEGIN_SNAPSHOT;

    async fn lease(&self) -> Result<Object> {
        self.pool
            .get()
            .await
            .map_err(|e| pool_error(e, &self.options))
    }

    fn session<'a>(&'a self, conn: &'a mut Object, catalog: &'a Catalog) -> PgConn<'a> {
        PgConn {
            client: conn,
            catalog,
        }
    }

    fn discard(&self, conn: Object) {
        drop(Object::take(conn));
    }

    fn status(&self) -> (usize, usize, usize) {
        let status = self.pool.status();
        (status.size, status.available, status.max_size)
    }

    fn close(&self) {
        self.pool.close();
    }
}
