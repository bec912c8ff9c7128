//! The connection pool: each connection lives on a thread of its own and
//! takes jobs from one queue. A transaction leases a connection (and the
//! in-process writer lock) until it ends. Pool sizes and timeouts follow
//! `PoolConfig` (API.md §3.2).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use aura_core::{Error, ErrorCode, Result};
use aura_sql::Catalog;
use parking_lot::{Condvar, Mutex, RwLock};

use crate::session::Session;

/// Where the database lives.
#[derive(Debug, Clone, PartialEq)]
pub enum Location {
    File(PathBuf),
    /// A private database for this pool: a temporary file removed on close,
    /// so every pooled connection (and each transaction) shares it with
    /// SQLite's ordinary file locking and WAL snapshots.
    Private,
}

#[derive(Debug, Clone)]
pub struct Options {
    pub location: Location,
    pub read_only: bool,
    /// How long a writer waits for the write lock before a retryable conflict.
    pub busy_timeout: Duration,
    pub min_size: usize,
    pub max_size: usize,
    /// How long a job may wait in the queue for a free connection.
    pub acquire_timeout: Duration,
    pub max_lifetime: Duration,
    pub idle_timeout: Duration,
}

/// A unit of work for a pooled connection; `Err` when none could be had.
pub type Job = Box<dyn FnOnce(Result<&mut Session>) + Send>;

/// Work sent to a leased (transaction) connection.
pub enum TxnJob {
    Work(Job),
    End {
        commit: bool,
        done: Box<dyn FnOnce(Result<()>) + Send>,
    },
}

struct Queued {
    job: Job,
    since: Instant,
}

struct QueueState {
    jobs: VecDeque<Queued>,
    idle: usize,
    total: usize,
    closed: bool,
}

pub(crate) struct Shared {
    pub options: Options,
    pub path: PathBuf,
    pub catalog: RwLock<Catalog>,
    queue: Mutex<QueueState>,
    ready: Condvar,
    pub writer: WriterLock,
}

impl Shared {
    /// Removes a private database's files (open connections keep working
    /// on POSIX; elsewhere the final drop retries).
    fn remove_private_files(&self) {
        if self.options.location == Location::Private {
            for suffix in ["", "-wal", "-shm", "-journal"] {
                let mut path = self.path.clone().into_os_string();
                path.push(suffix);
                // Best effort: the files may not exist.
                let _ = std::fs::remove_file(path);
            }
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.remove_private_files();
    }
}

/// The in-process single-writer lock. SQLite allows one writer at a time;
/// queueing writers here wakes the next one the moment the lock is freed,
/// instead of SQLite's sleeping busy handler. Other processes are still
/// covered by SQLite's own locking and busy_timeout.
pub(crate) struct WriterLock {
    held: Mutex<bool>,
    freed: Condvar,
}

pub(crate) struct WriterGuard {
    shared: Arc<Shared>,
}

impl Drop for WriterGuard {
    fn drop(&mut self) {
        *self.shared.writer.held.lock() = false;
        self.shared.writer.freed.notify_one();
    }
}

pub(crate) fn busy() -> Error {
    Error::conflict(
        "SQLite database is busy: another writer held the lock past busy_timeout; retry the operation",
    )
    .with_context("driver", crate::errors::DRIVER)
}

impl WriterLock {
    fn new() -> Self {
        WriterLock {
            held: Mutex::new(false),
            freed: Condvar::new(),
        }
    }
}

/// Takes the writer lock, waiting at most busy_timeout.
pub(crate) fn acquire_writer(shared: &Arc<Shared>) -> Result<WriterGuard> {
    let deadline = Instant::now() + shared.options.busy_timeout;
    let mut held = shared.writer.held.lock();
    while *held {
        if shared
            .writer
            .freed
            .wait_until(&mut held, deadline)
            .timed_out()
            && *held
        {
            return Err(busy());
        }
    }
    *held = true;
    Ok(WriterGuard {
        shared: shared.clone(),
    })
}

fn closed() -> Error {
    Error::new(ErrorCode::ClientClosed, "Client is closed")
}

static PRIVATE_DBS: AtomicU64 = AtomicU64::new(0);
static WORKERS: AtomicU64 = AtomicU64::new(0);

fn private_path() -> PathBuf {
    let n = PRIVATE_DBS.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    std::env::temp_dir().join(format!("aura-sqlite-{}-{n}-{nanos}.db", std::process::id()))
}

/// A pool over one SQLite database. Cloning shares the pool.
#[derive(Clone)]
pub struct Database {
    shared: Arc<Shared>,
    /// A connection of its own for `explain` (schema reads only), so a
    /// synchronous explain never waits behind queued jobs.
    planner: Arc<Mutex<Option<Session>>>,
}

impl Database {
    /// Opens `min_size` connections (at least one, so a bad path fails
    /// here) and starts their threads. Blocking: call it off the event loop.
    pub fn open(options: Options) -> Result<Database> {
        let path = match &options.location {
            Location::File(path) => path.clone(),
            Location::Private => private_path(),
        };
        let shared = Arc::new(Shared {
            path,
            catalog: RwLock::new(Catalog::new()),
            queue: Mutex::new(QueueState {
                jobs: VecDeque::new(),
                idle: 0,
                total: 0,
                closed: false,
            }),
            ready: Condvar::new(),
            writer: WriterLock::new(),
            options,
        });
        let first = shared.options.min_size.max(1);
        for _ in 0..first {
            let session = Session::open(&shared)?;
            shared.queue.lock().total += 1;
            spawn(shared.clone(), Some(session));
        }
        Ok(Database {
            shared,
            planner: Arc::default(),
        })
    }

    /// The SQL of a select and SQLite's plan for it (blocking, brief).
    pub fn explain(&self, q: &aura_core::ir::Select) -> Result<(String, Vec<String>)> {
        let mut planner = self.planner.lock();
        if planner.is_none() {
            *planner = Some(Session::open(&self.shared)?);
        }
        match planner.as_ref() {
            Some(session) => crate::read::explain(session, q),
            None => Err(closed()),
        }
    }

    pub fn path(&self) -> &std::path::Path {
        &self.shared.path
    }

    pub fn catalog(&self) -> &RwLock<Catalog> {
        &self.shared.catalog
    }

    /// Queues a job; a thread is added when none is idle and the pool is
    /// below `max_size`.
    pub fn submit(&self, job: Job) {
        let mut queue = self.shared.queue.lock();
        if queue.closed {
            drop(queue);
            job(Err(closed()));
            return;
        }
        queue.jobs.push_back(Queued {
            job,
            since: Instant::now(),
        });
        let grow = queue.idle == 0 && queue.total < self.shared.options.max_size;
        if grow {
            queue.total += 1;
        }
        drop(queue);
        if grow {
            spawn(self.shared.clone(), None);
        }
        self.shared.ready.notify_one();
    }

    /// Begins a transaction (`BEGIN IMMEDIATE` under the writer lock) on a
    /// connection leased until commit or rollback; `done` gets its handle.
    pub fn begin(&self, done: Box<dyn FnOnce(Result<Txn>) + Send>) {
        self.submit(Box::new(move |session| match session {
            Ok(session) => session.lease(done),
            Err(err) => done(Err(err)),
        }));
    }

    /// Stops taking jobs; idle threads exit, queued jobs fail with
    /// `client_closed`. Leased connections finish their transaction first.
    pub fn close(&self) {
        self.planner.lock().take();
        let pending: Vec<Queued> = {
            let mut queue = self.shared.queue.lock();
            queue.closed = true;
            queue.jobs.drain(..).collect()
        };
        self.shared.ready.notify_all();
        for queued in pending {
            (queued.job)(Err(closed()));
        }
        self.shared.remove_private_files();
    }
}

/// A live transaction: jobs sent here run on its leased connection.
pub struct Txn {
    pub(crate) sender: mpsc::Sender<TxnJob>,
}

impl Txn {
    /// Sends work to the transaction's connection; `false` if it is gone.
    pub fn send(&self, job: TxnJob) -> std::result::Result<(), TxnJob> {
        self.sender.send(job).map_err(|e| e.0)
    }
}

/// Starts a connection thread; the caller has counted it in `total`
/// (and may hold the queue lock, so this never takes it on success).
fn spawn(shared: Arc<Shared>, session: Option<Session>) {
    let name = format!("aura-sqlite-{}", WORKERS.fetch_add(1, Ordering::Relaxed));
    let worker = shared.clone();
    let started = thread::Builder::new()
        .name(name)
        .spawn(move || run_worker(worker, session));
    if started.is_err() {
        // No thread: the job stays queued for the threads that exist.
        shared.queue.lock().total -= 1;
    }
}

fn run_worker(shared: Arc<Shared>, session: Option<Session>) {
    let opened = Instant::now();
    let mut session = match session.map_or_else(|| Session::open(&shared), Ok) {
        Ok(session) => session,
        Err(err) => {
            // Report the failure to one waiting job, then leave.
            shared.queue.lock().total -= 1;
            if let Some(queued) = next_job(&shared, true) {
                (queued.job)(Err(err));
            }
            return;
        }
    };
    while let Some(queued) = next_job(&shared, false) {
        if queued.since.elapsed() > shared.options.acquire_timeout {
            (queued.job)(Err(Error::timeout(
                "no SQLite connection became free within the pool's acquire_timeout",
            )));
        } else {
            (queued.job)(Ok(&mut session));
        }
        if opened.elapsed() > shared.options.max_lifetime {
            break;
        }
    }
    let mut queue = shared.queue.lock();
    if !queue.closed && !queue.jobs.is_empty() {
        // Retiring with work queued: a fresh connection takes this place.
        drop(queue);
        spawn(shared, None);
    } else {
        queue.total -= 1;
    }
}

/// The next job; `None` when the pool closes or this thread idled past
/// `idle_timeout` while the pool holds more than `min_size` threads.
fn next_job(shared: &Shared, once: bool) -> Option<Queued> {
    let mut queue = shared.queue.lock();
    loop {
        if let Some(job) = queue.jobs.pop_front() {
            return Some(job);
        }
        if queue.closed || once {
            return None;
        }
        queue.idle += 1;
        let timed_out = shared
            .ready
            .wait_for(&mut queue, shared.options.idle_timeout)
            .timed_out();
        queue.idle -= 1;
        if timed_out && queue.jobs.is_empty() && queue.total > shared.options.min_size.max(1) {
            return None;
        }
    }
}
