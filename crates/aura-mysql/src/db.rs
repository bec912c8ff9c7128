//! The mysql_async pool behind the shared `aura_sql::Database` (which owns
//! requests, transactions and timeouts): opening it (TLS as `ssl-mode`
//! says), leasing under the acquire timeout, discarding a connection whose
//! state is unknown.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use aura_core::{Error, ErrorCode, Result};
use aura_sql::Catalog;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, DriverError};

use crate::conn::MyConn;
use crate::errors::{self, DRIVER};
use crate::options::{Options, SslMode};

/// Starts a user transaction. InnoDB's REPEATABLE READ reads one snapshot,
/// taken here at `begin` (WITH CONSISTENT SNAPSHOT) as API.md §6 says. A
/// write to a row another open transaction holds waits at most
/// `innodb_lock_wait_timeout` (1 s, set per connection) and then fails
/// with 1205, a retryable `conflict`; on MariaDB a write to a row changed
/// and committed since the snapshot fails with 1020 (`innodb_snapshot_
/// isolation`, set per connection), so the first committer wins.
const BEGIN_SNAPSHOT: &str = "SET TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
     START TRANSACTION WITH CONSISTENT SNAPSHOT";

/// The mysql_async pool, as the shared `aura_sql::Database` runs it.
pub struct MyPool {
    pool: mysql_async::Pool,
    options: Options,
    mariadb: bool,
    /// The runtime the pool was opened on: closing a connection is async,
    /// and a transaction may be dropped on a thread outside any runtime.
    runtime: Option<tokio::runtime::Handle>,
}

/// MySQL's requests and transactions (`aura_sql::Database`).
pub type Database = aura_sql::Database<MyPool>;

fn connect_timed_out(options: &Options) -> Error {
    Error::new(
        ErrorCode::ConnectionError,
        format!(
            "cannot connect to MySQL at {}:{} within {:.3} s",
            options.host,
            options.port,
            options.pool.connect_timeout.as_secs_f64()
        ),
    )
    .with_context("driver", DRIVER)
}

/// Why a first connection failed: the driver's error, or no answer in time.
enum Failure {
    Driver(mysql_async::Error),
    TimedOut,
}

impl Failure {
    fn into_error(self, options: &Options) -> Error {
        match self {
            Failure::Driver(err) => errors::connect(&err),
            Failure::TimedOut => connect_timed_out(options),
        }
    }

    fn server_lacks_tls(&self) -> bool {
        matches!(
            self,
            Failure::Driver(mysql_async::Error::Driver(
                DriverError::NoClientSslFlagFromServer
            ))
        )
    }
}

/// A pool whose first `min_size` connections are open (so a wrong
/// address or bad credentials fail here), and whether it is MariaDB.
async fn warm(
    options: &Options,
    tls: bool,
) -> std::result::Result<(mysql_async::Pool, bool), Failure> {
    let opts = options.opts(tls).map_err(|_| Failure::TimedOut)?;
    let pool = mysql_async::Pool::new(opts);
    let mut opened: Vec<Conn> = Vec::new();
    for _ in 0..options.pool.min_size.max(1) {
        let conn = tokio::time::timeout(options.pool.connect_timeout, pool.get_conn())
            .await
            .map_err(|_| Failure::TimedOut)?
            .map_err(Failure::Driver)?;
        opened.push(conn);
    }
    let version: Option<String> = match opened.first_mut() {
        Some(conn) => conn
            .query_first("SELECT @@version")
            .await
            .map_err(Failure::Driver)?,
        None => None,
    };
    drop(opened);
    let mariadb = version.is_some_and(|v| v.to_ascii_lowercase().contains("mariadb"));
    Ok((pool, mariadb))
}

/// Builds the pool and opens its first connections. `ssl-mode=PREFERRED`
/// uses TLS when the server offers it and plain TCP otherwise.
pub async fn open(options: Options) -> Result<Arc<Database>> {
    if options.wants_tls() {
        options.ssl()?;
    }
    let (pool, mariadb) = match warm(&options, options.wants_tls()).await {
        Err(failure) if options.ssl_mode == SslMode::Preferred && failure.server_lacks_tls() => {
            warm(&options, false).await
        }
        other => other,
    }
    .map_err(|f| f.into_error(&options))?;
    let timeout = options.pool.request_timeout;
    Ok(Arc::new(Database::new(
        MyPool {
            pool,
            options,
            mariadb,
            runtime: tokio::runtime::Handle::try_current().ok(),
        },
        timeout,
    )))
}

impl MyPool {
    /// Runs `work` on the current runtime, else on the one the pool was
    /// opened on (discarding is synchronous; closing is not).
    fn spawn(&self, work: impl std::future::Future<Output = ()> + Send + 'static) {
        let current = tokio::runtime::Handle::try_current().ok();
        if let Some(runtime) = current.as_ref().or(self.runtime.as_ref()) {
            runtime.spawn(work);
        }
    }

    fn max(&self) -> usize {
        self.options.pool.max_size.max(1)
    }

    /// A timed-out lease: every connection busy, or a new one not
    /// established in time.
    fn lease_timed_out(&self) -> Error {
        let in_use = self
            .pool
            .metrics()
            .connections_in_use
            .load(Ordering::Relaxed);
        if in_use >= self.max() {
            return Error::timeout(format!(
                "no pooled MySQL connection became free within {:.3} s (pool size {})",
                self.options.pool.acquire_timeout.as_secs_f64(),
                self.max()
            ))
            .with_context("driver", DRIVER);
        }
        connect_timed_out(&self.options)
    }
}

impl aura_sql::Pool for MyPool {
    type Conn = Conn;
    type Session<'a> = MyConn<'a>;

    const DRIVER: &'static str = DRIVER;
    const DATABASE: &'static str = "MySQL";
    const BEGIN_SNAPSHOT: &'static str = BEGIN_SNAPSHOT;

    async fn lease(&self) -> Result<Conn> {
        let wait = self
            .options
            .pool
            .acquire_timeout
            .max(Duration::from_millis(1));
        match tokio::time::timeout(wait, self.pool.get_conn()).await {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(err)) => Err(errors::connect(&err)),
            Err(_) => Err(self.lease_timed_out()),
        }
    }

    fn session<'a>(&'a self, conn: &'a mut Conn, catalog: &'a Catalog) -> MyConn<'a> {
        MyConn {
            conn,
            catalog,
            mariadb: self.mariadb,
            deadline_ms: None,
        }
    }

    fn discard(&self, conn: Conn) {
        // Closing makes the server roll back whatever was open; the pool
        // then counts the connection as gone.
        self.spawn(async move {
            let _ = conn.disconnect().await;
        });
    }

    fn status(&self) -> (usize, usize, usize) {
        let metrics = self.pool.metrics();
        (
            metrics.connection_count.load(Ordering::Relaxed),
            metrics.connections_in_pool.load(Ordering::Relaxed),
            self.max(),
        )
    }

    fn close(&self) {
        let pool = self.pool.clone();
        self.spawn(async move {
            let _ = pool.disconnect().await;
        });
    }
}
