//! What a pooled async SQL driver shares with every other one: requests
//! on a leased connection under the request timeout, user transactions on
//! a connection of their own, conflicts that end a transaction, and
//! connections left in an unknown state (a cancelled or timed-out
//! request) closed rather than reused. A driver provides only its `Pool`:
//! leasing, discarding and a `SqlConnection` over a leased connection.
//!
//! `SqlDatabase` is the object-safe face of `Database<P>`, so bindings
//! hold any driver as `Arc<dyn SqlDatabase>`.

use std::any::Any;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use aura_core::{Error, ErrorCode, ModelSchema, Result};

use crate::{Catalog, Executor, Op, Outcome, SqlConnection};

/// `PoolConfig` and the client's timeouts, as every pooled driver applies
/// them (`max_size >= 1`, `min_size <= max_size`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PoolSettings {
    /// Connections opened at connect.
    pub min_size: usize,
    pub max_size: usize,
    /// How long a request waits for a free connection.
    pub acquire_timeout: Duration,
    pub connect_timeout: Duration,
    pub request_timeout: Duration,
    /// Connections older than this are replaced.
    pub max_lifetime: Duration,
    /// Connections idle longer than this are replaced.
    pub idle_timeout: Duration,
}

/// A driver's connection pool, as `Database` uses it.
pub trait Pool: Send + Sync + 'static {
    /// A leased connection: back to the pool when dropped.
    type Conn: Send + 'static;
    /// The executor's view of a leased connection.
    type Session<'a>: SqlConnection
    where
        Self: 'a;

    /// The driver named in errors' `context`.
    const DRIVER: &'static str;
    /// The database as messages name it ("PostgreSQL").
    const DATABASE: &'static str;
    /// Begins a user transaction with the snapshot semantics of API.md §6
    /// as closely as the database allows (its docs state the level).
    const BEGIN_SNAPSHOT: &'static str;

    /// A connection from the pool (acquire timeout and connect errors
    /// mapped to the taxonomy).
    fn lease(&self) -> impl Future<Output = Result<Self::Conn>> + Send;

    /// The executor's connection over `conn`; `catalog` names fields in
    /// constraint errors.
    fn session<'a>(&'a self, conn: &'a mut Self::Conn, catalog: &'a Catalog) -> Self::Session<'a>;

    /// Closes `conn` instead of returning it: its state is unknown (an
    /// open transaction, a statement cut off midway), and closing makes
    /// the server roll back.
    fn discard(&self, conn: Self::Conn);

    /// `(open, idle, max)` connections.
    fn status(&self) -> (usize, usize, usize);

    /// Refuses new leases and closes idle connections.
    fn close(&self);
}

/// A boxed `Send` future, for the object-safe `SqlDatabase`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A user transaction of some driver, opaque to its holder.
pub struct Txn(Box<dyn Any + Send + Sync>);

/// Any driver's database, object-safe.
pub trait SqlDatabase: Send + Sync {
    /// Runs one request, in `txn` when given.
    fn run<'a>(&'a self, op: Op, txn: Option<&'a Txn>) -> BoxFuture<'a, Result<Outcome>>;
    /// Begins a snapshot transaction on a connection of its own.
    fn begin(&self) -> BoxFuture<'_, Result<Txn>>;
    /// Commits (or rolls back) and returns the connection to the pool.
    fn end<'a>(&'a self, txn: &'a Txn, commit: bool) -> BoxFuture<'a, Result<()>>;
    /// Makes a model known to the statements (includes, cascades, errors).
    fn register(&self, schema: Arc<ModelSchema>);
    /// `(open, idle, max)` connections of the pool.
    fn pool_status(&self) -> (usize, usize, usize);
    fn close(&self);
}

/// A leased connection that goes back to the pool only when known to be
/// idle; otherwise it is discarded.
struct Leased<'p, P: Pool> {
    pool: &'p P,
    conn: Option<P::Conn>,
    idle: bool,
}

impl<P: Pool> Drop for Leased<'_, P> {
    fn drop(&mut self) {
        if let (Some(conn), false) = (self.conn.take(), self.idle) {
            self.pool.discard(conn);
        }
    }
}

/// The connection of a user transaction, held until commit or rollback
/// (owned, so the transaction outlives any borrow of the pool).
enum TxnState<C> {
    /// `None`: a request was cancelled or timed out midway and its
    /// connection closed, which rolled the transaction back.
    Live(Option<C>),
    /// Rolled back by a conflict: commit reports it again, rollback is a no-op.
    Conflicted(Error),
    Ended,
}

struct TxnOf<P: Pool> {
    /// The `Database` that began it (`Database::id`).
    owner: u64,
    pool: Arc<P>,
    state: tokio::sync::Mutex<TxnState<P::Conn>>,
}

impl<P: Pool> Drop for TxnOf<P> {
    /// A transaction dropped without commit or rollback: its connection is
    /// closed (the server rolls back), never returned to the pool open.
    fn drop(&mut self) {
        if let TxnState::Live(Some(conn)) = std::mem::replace(self.state.get_mut(), TxnState::Ended)
        {
            self.pool.discard(conn);
        }
    }
}

/// The requests of one driver on its pool.
pub struct Database<P: Pool> {
    id: u64,
    pool: Arc<P>,
    catalog: RwLock<Arc<Catalog>>,
    request_timeout: Duration,
}

/// Distinguishes databases, so a transaction is used only where it began.
static DATABASE_IDS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl<P: Pool> Database<P> {
    pub fn new(pool: P, request_timeout: Duration) -> Self {
        Database {
            id: DATABASE_IDS.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
            pool: Arc::new(pool),
            catalog: RwLock::new(Arc::new(Catalog::new())),
            request_timeout,
        }
    }

    pub fn pool(&self) -> &P {
        &self.pool
    }

    /// The registered schemas (a snapshot: registering copies on write).
    pub fn catalog(&self) -> Arc<Catalog> {
        self.catalog
            .read()
            .map(|c| c.clone())
            .unwrap_or_else(|poisoned| poisoned.into_inner().clone())
    }

    fn txn_gone() -> Error {
        Error::transaction(format!(
            "The {} transaction is no longer active",
            P::DATABASE
        ))
    }

    fn txn_lost() -> Error {
        Error::transaction(format!(
            "A cancelled or timed-out request left the {} transaction in an unknown \
             state; it was rolled back",
            P::DATABASE
        ))
    }

    fn lease_of(&self, conn: P::Conn) -> Leased<'_, P> {
        Leased {
            pool: &*self.pool,
            conn: Some(conn),
            idle: true,
        }
    }

    /// Runs `op` on `leased` under the request timeout; a connection
    /// whose request did not finish is never reused.
    async fn run_on(&self, leased: &mut Leased<'_, P>, op: Op, in_txn: bool) -> Result<Outcome> {
        let catalog = self.catalog();
        let conn = leased.conn.as_mut().ok_or_else(Self::txn_gone)?;
        leased.idle = false;
        let mut session = self.pool.session(conn, &catalog);
        let mut exec = Executor::new(&mut session, &catalog, in_txn);
        let result = tokio::time::timeout(self.request_timeout, exec.run(op)).await;
        drop(session);
        match result {
            Ok(outcome) => {
                leased.idle = !in_txn;
                outcome
            }
            Err(_) => {
                if let Some(conn) = leased.conn.take() {
                    self.pool.discard(conn);
                }
                Err(self.timed_out())
            }
        }
    }

    fn timed_out(&self) -> Error {
        Error::timeout(format!(
            "{} request exceeded request_timeout_s ({:.3} s)",
            P::DATABASE,
            self.request_timeout.as_secs_f64()
        ))
        .with_context("driver", P::DRIVER)
    }

    /// Transaction control (`BEGIN`, `COMMIT`, `ROLLBACK`) on `leased`
    /// under the request timeout; a connection that did not answer stays
    /// marked busy, so dropping `leased` closes it.
    async fn control(&self, leased: &mut Leased<'_, P>, sql: &str) -> Result<()> {
        let catalog = self.catalog();
        let conn = leased.conn.as_mut().ok_or_else(Self::txn_gone)?;
        let mut session = self.pool.session(conn, &catalog);
        match tokio::time::timeout(self.request_timeout, session.batch(sql)).await {
            Ok(done) => done,
            Err(_) => Err(self.timed_out()),
        }
    }

    /// Runs one request, in `txn` when given. A conflict ends the
    /// transaction at once (rolled back, its connection returned): it must
    /// be restarted from scratch (API.md §6).
    async fn run_in(&self, op: Op, txn: Option<&TxnOf<P>>) -> Result<Outcome> {
        let Some(txn) = txn else {
            let mut leased = self.lease_of(self.pool.lease().await?);
            return self.run_on(&mut leased, op, false).await;
        };
        let mut state = txn.state.lock().await;
        let slot = match &mut *state {
            TxnState::Live(None) => return Err(Self::txn_lost()),
            TxnState::Live(slot) => slot,
            TxnState::Conflicted(err) => return Err(err.clone()),
            TxnState::Ended => return Err(Self::txn_gone()),
        };
        // Taken out while the request runs: a cancelled request drops it
        // (closing the connection) and leaves `Live(None)` behind.
        let mut leased = Leased {
            pool: &*self.pool,
            conn: slot.take(),
            idle: false,
        };
        let result = self.run_on(&mut leased, op, true).await;
        // Back into the transaction (or gone, when it could not be kept).
        *slot = leased.conn.take();
        if let Err(err) = &result {
            if err.code == ErrorCode::Conflict {
                if let TxnState::Live(slot) =
                    std::mem::replace(&mut *state, TxnState::Conflicted(err.clone()))
                {
                    self.finish(slot, "ROLLBACK").await.ok();
                }
            }
        }
        result
    }

    async fn begin_txn(&self) -> Result<TxnOf<P>> {
        let mut leased = self.lease_of(self.pool.lease().await?);
        leased.idle = false;
        self.control(&mut leased, P::BEGIN_SNAPSHOT).await?;
        Ok(TxnOf {
            owner: self.id,
            pool: self.pool.clone(),
            state: tokio::sync::Mutex::new(TxnState::Live(leased.conn.take())),
        })
    }

    async fn end_txn(&self, txn: &TxnOf<P>, commit: bool) -> Result<()> {
        let state = std::mem::replace(&mut *txn.state.lock().await, TxnState::Ended);
        match (state, commit) {
            (TxnState::Live(None), false) => Ok(()),
            (TxnState::Live(None), true) => Err(Self::txn_lost()),
            (TxnState::Live(slot), _) => {
                self.finish(slot, if commit { "COMMIT" } else { "ROLLBACK" })
                    .await
            }
            (TxnState::Conflicted(err), true) => Err(err),
            (TxnState::Conflicted(_), false) => Ok(()),
            (TxnState::Ended, _) => Err(Self::txn_gone()),
        }
    }

    /// Ends a transaction's connection with `sql`; only a connection known
    /// to be outside a transaction goes back to the pool.
    async fn finish(&self, conn: Option<P::Conn>, sql: &str) -> Result<()> {
        let mut leased = Leased {
            pool: &*self.pool,
            conn,
            idle: false,
        };
        let done = self.control(&mut leased, sql).await;
        leased.idle = done.is_ok();
        done
    }

    fn txn_of<'t>(&self, txn: &'t Txn) -> Result<&'t TxnOf<P>> {
        txn.0
            .downcast_ref::<TxnOf<P>>()
            .filter(|t| t.owner == self.id)
            .ok_or_else(|| {
                Error::transaction(format!(
                    "The transaction does not belong to this {} client",
                    P::DATABASE
                ))
            })
    }
}

impl<P: Pool> SqlDatabase for Database<P> {
    fn run<'a>(&'a self, op: Op, txn: Option<&'a Txn>) -> BoxFuture<'a, Result<Outcome>> {
        Box::pin(async move {
            let txn = txn.map(|t| self.txn_of(t)).transpose()?;
            self.run_in(op, txn).await
        })
    }

    fn begin(&self) -> BoxFuture<'_, Result<Txn>> {
        Box::pin(async move { Ok(Txn(Box::new(self.begin_txn().await?))) })
    }

    fn end<'a>(&'a self, txn: &'a Txn, commit: bool) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move { self.end_txn(self.txn_of(txn)?, commit).await })
    }

    fn register(&self, schema: Arc<ModelSchema>) {
        let mut guard = self
            .catalog
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let mut next = (**guard).clone();
        next.insert(schema.name.clone(), schema);
        *guard = Arc::new(next);
    }

    fn pool_status(&self) -> (usize, usize, usize) {
        self.pool.status()
    }

    fn close(&self) {
        self.pool.close();
    }
}

#[cfg(test)]
mod tests;
