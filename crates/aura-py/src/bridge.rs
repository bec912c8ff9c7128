//! Awaitables for Rust futures: the one place where async Rust work meets
//! the asyncio event loop.
//!
//! A call creates an asyncio future on the running loop and spawns the Rust
//! future on the shared tokio runtime. When it finishes, the runtime thread
//! does not take the GIL (under load it would wait for the event loop to
//! release it): it pushes the outcome onto the loop's queue and, if the
//! queue was idle, writes one byte to a socket the loop watches. The loop
//! then settles every queued future in one callback, converting results
//! (hydrating rows, building exceptions) on its own thread.
//!
//! A future done before its task (cancelled, or failed by a step) aborts
//! the Rust task. Drivers with threads of their own (SQLite) settle
//! caller-made futures through the same queue with `Pending`.

use std::cell::RefCell;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use parking_lot::Mutex;
use pyo3::exceptions::PyRuntimeError;
use pyo3::prelude::*;
use pyo3::sync::PyOnceLock;
use pyo3::types::IntoPyDict;
use pyo3::IntoPyObjectExt;
use tokio::runtime::Runtime;
use tokio::task::AbortHandle;

use crate::errors::to_py;
use crate::metrics::Observer;

/// Why an awaitable failed; an `aura_core::Error` becomes its Python
/// exception only on the event loop.
pub enum Failure {
    Aura(aura_core::Error),
    Py(PyErr),
}

impl From<aura_core::Error> for Failure {
    fn from(err: aura_core::Error) -> Self {
        Failure::Aura(err)
    }
}

impl From<PyErr> for Failure {
    fn from(err: PyErr) -> Self {
        Failure::Py(err)
    }
}

impl Failure {
    fn into_py(self) -> PyErr {
        match self {
            Failure::Aura(err) => to_py(err),
            Failure::Py(err) => err,
        }
    }
}

/// What an awaitable's future returns.
pub type Outcome<T> = Result<T, Failure>;

type Settle = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send>;
type Step = Box<dyn for<'py> FnOnce(Python<'py>) -> PyResult<()> + Send>;

/// What a loop has to do for one future: settle it, or run a step first.
enum Entry {
    /// The future, its `Canceller` (if it has one) and what settles it.
    Settle(Arc<Py<PyAny>>, Option<Py<Canceller>>, Settle),
    Step(Arc<Py<PyAny>>, Step),
}

/// The runtime every driver's futures run on.
pub fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .thread_name("aura-io")
            .enable_all()
            .build()
            .unwrap_or_else(|err| panic!("cannot start the aura-io runtime: {err}"))
    })
}

/// Spawns `work` and returns an asyncio future settled with its result.
pub fn future_into_py<'py, F, T>(py: Python<'py>, work: F) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Outcome<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    spawn_settled(py, None, |_| work)
}

/// `future_into_py` for a request that `observer` records into
/// `client.metrics` when it completes (none: not recorded).
pub fn observed_future_into_py<'py, F, T>(
    py: Python<'py>,
    observer: Option<Arc<Observer>>,
    work: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Outcome<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    spawn_settled(py, observer, |_| work)
}

/// `future_into_py` for work that hands the loop part of its result
/// early: `make` gets a `Stepper` whose steps run on the loop, in order,
/// before the future settles.
pub fn stepped_future_into_py<'py, F, T>(
    py: Python<'py>,
    make: impl FnOnce(Stepper) -> F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Outcome<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    spawn_settled(py, None, make)
}

fn spawn_settled<'py, F, T>(
    py: Python<'py>,
    observer: Option<Arc<Observer>>,
    make: impl FnOnce(Stepper) -> F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Outcome<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    let waker = running_waker(py)?;
    let waker = waker.get();
    let future = waker
        .event_loop
        .bind(py)
        .call_method0(pyo3::intern!(py, "create_future"))?;
    let cancel = Py::new(
        py,
        Canceller {
            task: OnceLock::new(),
            observer: observer.clone(),
        },
    )?;
    let pending = Pending {
        future: Arc::new(future.clone().unbind()),
        canceller: Some(cancel.clone_ref(py)),
        queue: waker.queue.clone(),
    };
    let work = make(pending.stepper());
    let task = runtime().spawn(async move {
        let outcome = work.await;
        pending.settle(move |py| {
            let result = match outcome {
                Ok(value) => value.into_bound_py_any(py),
                Err(failure) => Err(failure.into_py()),
            };
            if let Some(observer) = observer {
                observer.record(py, result.as_ref().err());
            }
            result
        });
    });
    let _ = cancel.get().task.set(task.abort_handle());
    // The loop's own context: the callback reads no context variable, and
    // copying the caller's for each request would cost an allocation.
    let kwargs = [(pyo3::intern!(py, "context"), waker.context.bind(py))].into_py_dict(py)?;
    future.call_method(
        pyo3::intern!(py, "add_done_callback"),
        (cancel,),
        Some(&kwargs),
    )?;
    Ok(future)
}

/// An asyncio future settled later, from any thread, without the GIL:
/// how drivers with threads of their own (SQLite) deliver results.
pub struct Pending {
    future: Arc<Py<PyAny>>,
    canceller: Option<Py<Canceller>>,
    queue: Arc<Queue>,
}

impl Pending {
    /// `future` belongs to `event_loop` (made by the caller on that loop).
    pub fn new(py: Python<'_>, future: Py<PyAny>, event_loop: &Bound<'_, PyAny>) -> PyResult<Self> {
        Ok(Pending {
            future: Arc::new(future),
            canceller: None,
            queue: waker_for(py, event_loop)?.get().queue.clone(),
        })
    }

    /// Settles the future on its loop with what `settle` builds there.
    pub fn settle(
        self,
        settle: impl for<'py> FnOnce(Python<'py>) -> PyResult<Bound<'py, PyAny>> + Send + 'static,
    ) {
        self.queue
            .push(Entry::Settle(self.future, self.canceller, Box::new(settle)));
    }

    /// A handle that runs steps on the loop before the future settles.
    pub fn stepper(&self) -> Stepper {
        Stepper {
            future: self.future.clone(),
            queue: self.queue.clone(),
        }
    }
}

/// Runs work on the loop, in order, ahead of its `Pending`'s result (e.g.
/// hydrating one chunk of a streamed select while the next is read).
#[derive(Clone)]
pub struct Stepper {
    future: Arc<Py<PyAny>>,
    queue: Arc<Queue>,
}

impl Stepper {
    pub fn step(&self, step: impl for<'py> FnOnce(Python<'py>) -> PyResult<()> + Send + 'static) {
        self.queue
            .push(Entry::Step(self.future.clone(), Box::new(step)));
    }
}

/// `future_into_py` with a client-side bound: past `limit` the request
/// fails with the `timeout` error and its task is dropped.
pub fn future_into_py_within<'py, F, T>(
    py: Python<'py>,
    limit: Duration,
    work: F,
) -> PyResult<Bound<'py, PyAny>>
where
    F: Future<Output = Outcome<T>> + Send + 'static,
    T: for<'a> IntoPyObject<'a> + Send + 'static,
{
    future_into_py(py, async move {
        match tokio::time::timeout(limit, work).await {
            Ok(outcome) => outcome,
            Err(_) => Err(aura_core::Error::timeout(format!(
                "request exceeded the client's request timeout of {} ms",
                limit.as_millis()
            ))
            .with_context("timeout_ms", limit.as_millis() as u64)
            .into()),
        }
    })
}

/// Aborts the task once its asyncio future is done. A future settled by
/// its task is done only after the task's last step, so the abort is a
/// no-op then; a future done earlier was cancelled, or failed by a step
/// (a chunk that could not be hydrated), and its work is not wanted. An
/// observed request not recorded at settling is recorded now.
#[pyclass(frozen, module = "aura._core")]
struct Canceller {
    /// Set right after the task is spawned, before the loop can run this.
    task: OnceLock<AbortHandle>,
    observer: Option<Arc<Observer>>,
}

#[pymethods]
impl Canceller {
    fn __call__(&self, future: &Bound<'_, PyAny>) {
        if let Some(task) = self.task.get() {
            task.abort();
        }
        if let Some(observer) = &self.observer {
            observer.record(future.py(), None);
        }
    }
}

/// Finished futures waiting for their loop, and the socket that wakes it.
struct Queue {
    state: Mutex<QueueState>,
    wake: UnixStream,
}

#[derive(Default)]
struct QueueState {
    done: Vec<Entry>,
    /// A wake-up byte is in flight: the loop will drain before sleeping.
    notified: bool,
}

impl Queue {
    fn push(&self, entry: Entry) {
        let wake = {
            let mut state = self.state.lock();
            state.done.push(entry);
            !std::mem::replace(&mut state.notified, true)
        };
        if wake {
            // Non-blocking: at most one byte is ever unread, so the write
            // cannot find the buffer full; a closed loop has nobody to wake.
            let _ = (&self.wake).write(&[1]);
        }
    }

    fn take(&self) -> Vec<Entry> {
        let mut state = self.state.lock();
        state.notified = false;
        std::mem::take(&mut state.done)
    }
}

/// One event loop's end of the bridge: the reader it watches and the
/// queue the runtime fills.
#[pyclass(frozen, module = "aura._core")]
struct LoopWaker {
    event_loop: Py<PyAny>,
    queue: Arc<Queue>,
    reader: UnixStream,
    /// An empty `contextvars.Context` the loop runs done-callbacks in
    /// (one per loop: a context cannot be entered by two threads at once).
    context: Py<PyAny>,
}

#[pymethods]
impl LoopWaker {
    /// Registered with `loop.add_reader`: settles every finished future.
    fn drain(&self, py: Python<'_>) {
        let mut sink = [0u8; 64];
        while matches!((&self.reader).read(&mut sink), Ok(n) if n > 0) {}
        for entry in self.queue.take() {
            // One future that cannot be settled (its loop is shutting
            // down) must not strand the others.
            let _ = match entry {
                Entry::Settle(future, canceller, settle) => {
                    settle_one(py, future.bind(py), canceller, settle)
                }
                Entry::Step(future, step) => step_one(py, future.bind(py), step),
            };
        }
    }
}

fn settle_one(
    py: Python<'_>,
    future: &Bound<'_, PyAny>,
    canceller: Option<Py<Canceller>>,
    settle: Settle,
) -> PyResult<()> {
    let pending = match canceller {
        // The task is done: its canceller has nothing left to do, and taking
        // it off spares the loop one callback per request. A future already
        // done (cancelled) has handed its callbacks over: none is removed.
        Some(canceller) => {
            future
                .call_method1(pyo3::intern!(py, "remove_done_callback"), (canceller,))?
                .extract::<usize>()?
                > 0
        }
        None => !future
            .call_method0(pyo3::intern!(py, "done"))?
            .is_truthy()?,
    };
    // A cancelled await leaves a done future: drop the result.
    if !pending {
        return Ok(());
    }
    match settle(py) {
        Ok(value) => future.call_method1(pyo3::intern!(py, "set_result"), (value,))?,
        Err(err) => future.call_method1(pyo3::intern!(py, "set_exception"), (err.value(py),))?,
    };
    Ok(())
}

fn step_one(py: Python<'_>, future: &Bound<'_, PyAny>, step: Step) -> PyResult<()> {
    if future
        .call_method0(pyo3::intern!(py, "done"))?
        .is_truthy()?
    {
        return Ok(());
    }
    if let Err(err) = step(py) {
        future.call_method1(pyo3::intern!(py, "set_exception"), (err.value(py),))?;
    }
    Ok(())
}

thread_local! {
    /// The wakers of the loops this thread has run (usually one).
    static WAKERS: RefCell<Vec<Py<LoopWaker>>> = const { RefCell::new(Vec::new()) };
}

/// The running loop's waker.
fn running_waker(py: Python<'_>) -> PyResult<Py<LoopWaker>> {
    static GET_RUNNING_LOOP: PyOnceLock<Py<PyAny>> = PyOnceLock::new();
    let get_loop = GET_RUNNING_LOOP.get_or_try_init(py, || {
        Ok::<_, PyErr>(py.import("asyncio")?.getattr("get_running_loop")?.unbind())
    })?;
    waker_for(py, &get_loop.bind(py).call0()?)
}

/// The loop's waker, made and registered on first use.
fn waker_for(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Py<LoopWaker>> {
    let found = WAKERS.with_borrow(|wakers| {
        wakers
            .iter()
            .find(|w| w.get().event_loop.bind(py).is(event_loop))
            .map(|w| w.clone_ref(py))
    });
    if let Some(waker) = found {
        return Ok(waker);
    }
    let waker = new_waker(py, event_loop)?;
    WAKERS.with_borrow_mut(|wakers| {
        // Forget loops that have closed (their readers went with them).
        wakers.retain(|w| !is_closed(w.get().event_loop.bind(py)));
        wakers.push(waker.clone_ref(py));
    });
    Ok(waker)
}

fn is_closed(event_loop: &Bound<'_, PyAny>) -> bool {
    event_loop
        .call_method0("is_closed")
        .and_then(|c| c.is_truthy())
        .unwrap_or(true)
}

fn new_waker(py: Python<'_>, event_loop: &Bound<'_, PyAny>) -> PyResult<Py<LoopWaker>> {
    let io = |err: std::io::Error| PyRuntimeError::new_err(format!("event-loop bridge: {err}"));
    let (reader, wake) = UnixStream::pair().map_err(io)?;
    reader.set_nonblocking(true).map_err(io)?;
    wake.set_nonblocking(true).map_err(io)?;
    let fd = reader.as_raw_fd();
    let context = py.import("contextvars")?.getattr("Context")?.call0()?;
    let waker = Py::new(
        py,
        LoopWaker {
            event_loop: event_loop.clone().unbind(),
            queue: Arc::new(Queue {
                state: Mutex::new(QueueState::default()),
                wake,
            }),
            reader,
            context: context.unbind(),
        },
    )?;
    let drain = waker.bind(py).getattr("drain")?;
    event_loop.call_method1("add_reader", (fd, drain))?;
    Ok(waker)
}
