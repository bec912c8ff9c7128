//! What the two multiplexed protocol clients (AWP 1 in `auradb.rs`, the
//! bundled protocol in `bundled.rs`) share: which connection a request
//! uses, and server cursors' client-side state.
//!
//! Connection policy: a pool of multiplexed connections (`Pool`): a
//! request goes to the least busy one, and another is opened only when
//! every open one has `BUSY` requests in flight (up to `max_size`); closed
//! or expired connections are replaced. A transaction is pinned to the
//! connection that began it (a lost one means the server rolled it back);
//! only idempotent reads outside a transaction are re-sent, once, on a
//! fresh connection. Writes never are.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aura_core::error::{Error, ErrorCode};
use aura_core::schema::ModelSchema;
use aura_wire::bundled::client::{BundledConnection, BundledOptions};
use aura_wire::client::{ClientOptions, Connection};
use aura_wire::tls::ClientTls;
use parking_lot::{Mutex, RwLock};
use pyo3::prelude::*;

use crate::convert::timeout_from_seconds;
use crate::plan::ModelPlan;
use crate::rows::SharedPlans;

/// A protocol client connection, as the router uses it.
pub trait Remote: Send + Sync + Sized + 'static {
    type Options: Send + Sync + 'static;

    fn connect(opts: &Self::Options) -> impl Future<Output = Result<Arc<Self>, Error>> + Send;
    fn is_closed(&self) -> bool;
    fn in_flight(&self) -> usize;
    fn close(&self) -> impl Future<Output = ()> + Send;
    /// `host:port`, for messages.
    fn address(opts: &Self::Options) -> String;
    /// What the server advertised at the handshake.
    fn advertised(&self) -> &HashSet<String>;
    fn server_version(&self) -> &str;
}

impl Remote for Connection {
    type Options = ClientOptions;

    fn connect(opts: &ClientOptions) -> impl Future<Output = Result<Arc<Self>, Error>> + Send {
        Connection::connect(opts)
    }

    fn is_closed(&self) -> bool {
        Connection::is_closed(self)
    }

    fn in_flight(&self) -> usize {
        Connection::in_flight(self)
    }

    fn close(&self) -> impl Future<Output = ()> + Send {
        Connection::close(self)
    }

    fn address(opts: &ClientOptions) -> String {
        opts.address()
    }

    fn advertised(&self) -> &HashSet<String> {
        &self.capabilities
    }

    fn server_version(&self) -> &str {
        &self.server_version
    }
}

impl Remote for BundledConnection {
    type Options = BundledOptions;

    fn connect(opts: &BundledOptions) -> impl Future<Output = Result<Arc<Self>, Error>> + Send {
        BundledConnection::connect(opts)
    }

    fn is_closed(&self) -> bool {
        BundledConnection::is_closed(self)
    }

    fn in_flight(&self) -> usize {
        BundledConnection::in_flight(self)
    }

    fn close(&self) -> impl Future<Output = ()> + Send {
        BundledConnection::close(self)
    }

    fn address(opts: &BundledOptions) -> String {
        opts.base.address()
    }

    fn advertised(&self) -> &HashSet<String> {
        &self.features
    }

    fn server_version(&self) -> &str {
        &self.server_version
    }
}

/// Options both protocol clients build from their Python arguments
/// (timeouts in seconds).
pub fn client_options(
    (host, port): (String, u16),
    tls: Option<ClientTls>,
    token: Option<String>,
    (connect_timeout_s, request_timeout_s): (f64, f64),
    max_payload: usize,
) -> ClientOptions {
    ClientOptions {
        host,
        port,
        tls,
        token,
        connect_timeout: timeout_from_seconds(connect_timeout_s),
        request_timeout: timeout_from_seconds(request_timeout_s),
        max_payload,
        client_version: format!("aura-connector/{}", env!("CARGO_PKG_VERSION")),
    }
}

/// `PoolConfig` as a multiplexing client applies it. `acquire_timeout`
/// has no part: a request never waits for a connection to be free.
#[derive(Debug, Clone, Copy)]
pub struct PoolPolicy {
    pub min_size: usize,
    pub max_size: usize,
    pub max_lifetime: Duration,
    pub idle_timeout: Duration,
}

impl PoolPolicy {
    /// From `(min_size, max_size, max_lifetime_s, idle_timeout_s)`.
    pub fn from_seconds((min_size, max_size, lifetime, idle): (usize, usize, f64, f64)) -> Self {
        PoolPolicy {
            min_size: min_size.min(max_size),
            max_size: max_size.max(1),
            max_lifetime: timeout_from_seconds(lifetime),
            idle_timeout: timeout_from_seconds(idle),
        }
    }
}

/// Requests in flight on every open connection before another is opened.
const BUSY: usize = 16;

struct Pooled<C> {
    conn: Arc<C>,
    opened: Instant,
    last_used: Instant,
}

impl<C: Remote> Pooled<C> {
    fn usable(&self, policy: &PoolPolicy) -> bool {
        !self.conn.is_closed()
            && self.opened.elapsed() < policy.max_lifetime
            && self.last_used.elapsed() < policy.idle_timeout
    }
}

/// The pooled connection with the fewest requests in flight; equal loads
/// go to the least recently used, so every pooled connection stays in use
/// (none idles out below `min_size`).
fn least_busy<C: Remote>(pool: &[Pooled<C>]) -> Option<usize> {
    pool.iter()
        .enumerate()
        .min_by_key(|(_, p)| (p.conn.in_flight(), p.last_used))
        .map(|(i, _)| i)
}

/// Clears the router's "a connection is being opened" flag when the
/// opening ends, also when its request is cancelled midway.
struct Growing<'a>(&'a AtomicBool);

impl Drop for Growing<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// The connections of one client and the models it hydrates.
pub struct Router<C: Remote> {
    pub opts: C::Options,
    pub plans: SharedPlans,
    policy: PoolPolicy,
    pool: tokio::sync::Mutex<Vec<Pooled<C>>>,
    open_count: AtomicUsize,
    /// A request is opening another connection (outside the pool lock).
    growing: AtomicBool,
    /// The connection each open transaction lives on.
    txns: Mutex<HashMap<u64, Arc<C>>>,
    /// Shared, not copied, by every request that reads it.
    advertised: RwLock<Arc<HashSet<String>>>,
    server_version: RwLock<String>,
}

impl<C: Remote> Router<C> {
    pub fn new(opts: C::Options, policy: PoolPolicy) -> Self {
        Router {
            opts,
            plans: SharedPlans::default(),
            policy,
            pool: tokio::sync::Mutex::new(Vec::new()),
            open_count: AtomicUsize::new(0),
            growing: AtomicBool::new(false),
            txns: Mutex::new(HashMap::new()),
            advertised: RwLock::new(Arc::default()),
            server_version: RwLock::new(String::new()),
        }
    }

    pub fn schema(&self, model: &str) -> Result<Arc<ModelSchema>, Error> {
        // A frozen plan is read without the GIL.
        self.plans
            .read()
            .get(model)
            .map(|p| p.get().schema.clone())
            .ok_or_else(|| Error::schema(format!("Unknown model '{model}'")))
    }

    /// The registered plan of `model`.
    pub fn plan(&self, py: Python<'_>, model: &str) -> PyResult<Py<ModelPlan>> {
        self.plans
            .read()
            .get(model)
            .map(|p| p.clone_ref(py))
            .ok_or_else(|| crate::errors::to_py(Error::schema(format!("Unknown model '{model}'"))))
    }

    pub fn register(&self, py: Python<'_>, plan: Py<ModelPlan>) {
        let name = plan.bind(py).get().schema.name.clone();
        self.plans.write().insert(name, plan);
    }

    /// What the server advertised (empty before the first connection).
    pub fn advertised(&self) -> Arc<HashSet<String>> {
        self.advertised.read().clone()
    }

    pub fn advertises(&self, name: &str) -> bool {
        self.advertised.read().contains(name)
    }

    /// Advertised names, sorted (for Python).
    pub fn advertised_sorted(&self) -> Vec<String> {
        let mut names: Vec<String> = self.advertised.read().iter().cloned().collect();
        names.sort();
        names
    }

    pub fn server_version(&self) -> String {
        self.server_version.read().clone()
    }

    async fn connect(&self) -> Result<Pooled<C>, Error> {
        let conn = C::connect(&self.opts).await?;
        *self.advertised.write() = Arc::new(conn.advertised().clone());
        *self.server_version.write() = conn.server_version().to_owned();
        let now = Instant::now();
        Ok(Pooled {
            conn,
            opened: now,
            last_used: now,
        })
    }

    /// Opens `min_size` connections (at least one: a wrong address or
    /// token fails here).
    pub async fn open(&self) -> Result<(), Error> {
        let mut pool = self.pool.lock().await;
        while pool.len() < self.policy.min_size.max(1) {
            pool.push(self.connect().await?);
        }
        self.open_count.store(pool.len(), Ordering::Relaxed);
        Ok(())
    }

    /// The least busy usable connection; a new one when every open one
    /// is busy and the pool is not full, or when none is usable. A new
    /// connection beside busy ones is opened outside the pool lock (one at
    /// a time), so other requests keep using the open ones meanwhile.
    pub async fn shared(&self) -> Result<Arc<C>, Error> {
        let mut pool = self.pool.lock().await;
        // Dropped here, closed when their in-flight requests finish.
        pool.retain(|p| p.usable(&self.policy));
        let least = least_busy(&pool).map(|i| (i, pool[i].conn.in_flight()));
        let full = pool.len() >= self.policy.max_size;
        match least {
            Some((i, load)) if load < BUSY || full || self.growing.load(Ordering::Acquire) => {
                return Ok(self.lease(&mut pool, i));
            }
            // Nothing open: every request waits for this connection.
            None => {
                pool.push(self.connect().await?);
                let last = pool.len() - 1;
                return Ok(self.lease(&mut pool, last));
            }
            Some(_) => self.growing.store(true, Ordering::Release),
        }
        drop(pool);
        // The flag stays set until the new connection is in the pool, so
        // no second opening starts on the count from before it.
        let _growing = Growing(&self.growing);
        let opened = self.connect().await;
        let mut pool = self.pool.lock().await;
        match opened {
            Ok(opened) if pool.len() < self.policy.max_size => {
                pool.push(opened);
                let last = pool.len() - 1;
                Ok(self.lease(&mut pool, last))
            }
            // Filled meanwhile (the extra one closes as it drops), or the
            // open connections are busy, not broken: use one of them.
            other => match (least_busy(&pool), other) {
                (Some(i), _) => Ok(self.lease(&mut pool, i)),
                (None, Ok(opened)) => {
                    pool.push(opened);
                    Ok(self.lease(&mut pool, 0))
                }
                (None, Err(err)) => Err(err),
            },
        }
    }

    fn lease(&self, pool: &mut [Pooled<C>], index: usize) -> Arc<C> {
        self.open_count.store(pool.len(), Ordering::Relaxed);
        let chosen = &mut pool[index];
        chosen.last_used = Instant::now();
        chosen.conn.clone()
    }

    /// `(open, max)` pooled connections (transactions' included: they are
    /// taken from the pool).
    pub fn pool_status(&self) -> (usize, usize) {
        (
            self.open_count.load(Ordering::Relaxed),
            self.policy.max_size,
        )
    }

    /// The connection a request with `txn` (0: none) must use.
    pub async fn conn_for(&self, txn: u64) -> Result<Arc<C>, Error> {
        if txn == 0 {
            return self.shared().await;
        }
        let conn = self.txns.lock().get(&txn).cloned().ok_or_else(|| {
            Error::transaction(format!("transaction {txn} is not active on this client"))
        })?;
        if conn.is_closed() {
            self.txns.lock().remove(&txn);
            return Err(self.txn_lost(
                txn,
                format!("connection to {} lost", C::address(&self.opts)),
            ));
        }
        Ok(conn)
    }

    fn txn_lost(&self, txn: u64, cause: String) -> Error {
        Error::new(
            ErrorCode::ConnectionError,
            format!("{cause}; the server rolled back transaction {txn}"),
        )
    }

    /// Runs `request` on the connection for `txn`. A connection lost
    /// inside a transaction ends it (the server rolled it back).
    pub async fn call<T, F, Fut>(&self, txn: u64, request: F) -> Result<T, Error>
    where
        F: FnOnce(Arc<C>) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let conn = self.conn_for(txn).await?;
        match request(conn).await {
            Err(e) if txn != 0 && e.code == ErrorCode::ConnectionError => {
                self.txns.lock().remove(&txn);
                Err(self.txn_lost(txn, e.message))
            }
            other => other,
        }
    }

    /// An idempotent read: re-sent once on a fresh connection when the
    /// connection was lost (never inside a transaction).
    pub async fn read<T, F, Fut>(&self, txn: u64, request: F) -> Result<T, Error>
    where
        F: Fn(Arc<C>) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        match self.call(txn, &request).await {
            Err(e) if txn == 0 && e.code == ErrorCode::ConnectionError => {
                request(self.shared().await?).await
            }
            other => other,
        }
    }

    /// Pins a begun transaction to its connection.
    pub fn pin(&self, txn: u64, conn: Arc<C>) {
        self.txns.lock().insert(txn, conn);
    }

    /// Ends a transaction with `request` (commit or rollback); it is
    /// unpinned whatever the outcome.
    pub async fn finish<T, F, Fut>(&self, txn: u64, request: F) -> Result<(), Error>
    where
        F: FnOnce(Arc<C>) -> Fut,
        Fut: Future<Output = Result<T, Error>>,
    {
        let result = self.call(txn, request).await;
        self.txns.lock().remove(&txn);
        result.map(drop)
    }

    /// Closes every connection (open transactions are rolled back by the
    /// server).
    pub async fn close(&self) {
        let pooled: Vec<_> = self.pool.lock().await.drain(..).collect();
        self.open_count.store(0, Ordering::Relaxed);
        for p in pooled {
            p.conn.close().await;
        }
        let pinned: Vec<_> = self.txns.lock().drain().map(|(_, c)| c).collect();
        for conn in pinned {
            conn.close().await;
        }
    }
}

/// A server cursor's client side: rows received but not yet handed out,
/// and the server's cursor id while it still holds rows.
pub struct CursorState<R> {
    buffer: VecDeque<R>,
    cursor_id: Option<u64>,
    open: bool,
}

impl<R> CursorState<R> {
    pub fn new(rows: impl IntoIterator<Item = R>, cursor_id: Option<u64>) -> Self {
        CursorState {
            buffer: rows.into_iter().collect(),
            cursor_id,
            open: true,
        }
    }

    /// `(cursor id, rows to ask for)` when a batch of `batch_size` needs
    /// more rows from the server.
    pub fn wanted(&self, batch_size: usize) -> Option<(u64, usize)> {
        (self.open && self.buffer.len() < batch_size)
            .then_some(self.cursor_id)
            .flatten()
            .map(|id| (id, batch_size - self.buffer.len()))
    }

    /// Rows a fetch received, and the cursor id the server now holds.
    pub fn received(&mut self, rows: impl IntoIterator<Item = R>, cursor_id: Option<u64>) {
        self.buffer.extend(rows);
        self.cursor_id = cursor_id;
    }

    /// The next batch (empty once closed or exhausted).
    pub fn take(&mut self, batch_size: usize) -> Vec<R> {
        let take = if self.open {
            batch_size.min(self.buffer.len())
        } else {
            0
        };
        self.buffer.drain(..take).collect()
    }

    /// Closes it; the server cursor id to release, if it still holds rows.
    pub fn close(&mut self) -> Option<u64> {
        self.open = false;
        self.buffer.clear();
        self.cursor_id.take()
    }

    pub fn is_open(&self) -> bool {
        self.open
    }

    pub fn cursor_id(&self) -> Option<u64> {
        self.cursor_id
    }
}
