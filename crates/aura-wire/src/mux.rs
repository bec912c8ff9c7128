//! What both multiplexing clients (AWP 1 in `client.rs`, the bundled
//! protocol in `bundled/client.rs`) share: the outbox that writes their
//! frames, the waiters of the requests in flight, the reader task, and how a
//! connection fails and closes. They differ in their frame codec and in how
//! an answer finds its waiter: in request order (AWP) or by id (bundled).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::time::Duration;

use aura_core::Error;
use parking_lot::Mutex;
use tokio::sync::oneshot;

use crate::client::{connection_error, WriteStream};
use crate::io::Outbox;

/// Where the answer to one request goes.
pub type Waiter<F> = oneshot::Sender<Result<F, Error>>;

/// The waiters of a connection's requests in flight.
pub trait Waiters: Default + Send + 'static {
    type Frame: Send + 'static;
    fn len(&self) -> usize;
    fn take_all(&mut self) -> Vec<Waiter<Self::Frame>>;
}

/// Answers come in request order, each checked against its request id.
impl<F: Send + 'static> Waiters for VecDeque<(u128, Waiter<F>)> {
    type Frame = F;

    fn len(&self) -> usize {
        VecDeque::len(self)
    }

    fn take_all(&mut self) -> Vec<Waiter<F>> {
        self.drain(..).map(|(_, waiter)| waiter).collect()
    }
}

/// Answers come in any order, found by request id.
impl<F: Send + 'static> Waiters for HashMap<u64, Waiter<F>> {
    type Frame = F;

    fn len(&self) -> usize {
        HashMap::len(self)
    }

    fn take_all(&mut self) -> Vec<Waiter<F>> {
        self.drain().map(|(_, waiter)| waiter).collect()
    }
}

/// What a connection's reader task, its writer and its callers share.
pub struct Link<P: Waiters> {
    pub pending: Mutex<P>,
    /// Closed when the connection fails, before its waiters are failed.
    outbox: OnceLock<Weak<Outbox<WriteStream>>>,
    closed: AtomicBool,
    /// Why the connection closed (the first cause wins).
    cause: Mutex<Option<Error>>,
    pub address: String,
}

impl<P: Waiters> Link<P> {
    /// Fails the connection: it is closed at once, its outbox drops what
    /// is not yet handed to the writer, then every waiter gets the error.
    pub fn fail_all(&self, err: Error) {
        self.closed.store(true, Ordering::SeqCst);
        let stored = self.cause.lock().get_or_insert(err).clone();
        if let Some(outbox) = self.outbox.get().and_then(Weak::upgrade) {
            outbox.close();
        }
        let waiters = self.pending.lock().take_all();
        for waiter in waiters {
            let _ = waiter.send(Err(stored.clone()));
        }
    }

    fn closed_error(&self) -> Error {
        self.cause.lock().clone().unwrap_or_else(|| {
            connection_error(format!("connection to {} is closed", self.address))
        })
    }
}

/// One multiplexed connection: requests are queued on its outbox and
/// answered through the waiters its reader task completes.
pub struct Mux<P: Waiters> {
    link: Arc<Link<P>>,
    outbox: Arc<Outbox<WriteStream>>,
    reader: tokio::task::JoinHandle<()>,
    timeout: Duration,
}

impl<P: Waiters> Mux<P> {
    /// Starts `reader` on the connection's link and an outbox on `write`;
    /// a failed write fails the connection and stops the reader. `timeout`
    /// bounds each write and each wait for an answer.
    pub fn start<R>(
        address: String,
        write: WriteStream,
        timeout: Duration,
        reader: impl FnOnce(Arc<Link<P>>) -> R,
    ) -> Self
    where
        R: Future<Output = ()> + Send + 'static,
    {
        let link = Arc::new(Link {
            pending: Mutex::new(P::default()),
            outbox: OnceLock::new(),
            closed: AtomicBool::new(false),
            cause: Mutex::new(None),
            address,
        });
        // A reader that fails before the outbox is attached below cannot
        // close it, but it has marked the link closed, which `send` checks.
        let reader = tokio::spawn(reader(link.clone()));
        let (failing, abort) = (link.clone(), reader.abort_handle());
        let outbox = Outbox::new(write, timeout, move |why| {
            let err = format!("sending to {} failed: {why}", failing.address);
            failing.fail_all(connection_error(err));
            abort.abort();
        });
        let _ = link.outbox.set(Arc::downgrade(&outbox));
        Mux {
            link,
            outbox,
            reader,
            timeout,
        }
    }

    pub fn is_closed(&self) -> bool {
        self.link.closed.load(Ordering::SeqCst)
    }

    /// Requests registered and not yet answered, deferred ones included
    /// (a pool's load measure).
    pub fn in_flight(&self) -> usize {
        self.link.pending.lock().len()
    }

    pub fn closed_error(&self) -> Error {
        self.link.closed_error()
    }

    /// Close now; pending requests fail with a connection error.
    pub async fn close(&self) {
        self.link.fail_all(connection_error(format!(
            "connection to {} closed",
            self.link.address
        )));
        self.outbox.shutdown().await;
        self.reader.abort();
    }

    /// Queues an encoded request frame; `register` records its waiter (under
    /// the outbox's lock, so waiters are registered in wire order).
    pub fn send(
        &self,
        frame: &[u8],
        register: impl FnOnce(&mut P, Waiter<P::Frame>),
    ) -> Result<oneshot::Receiver<Result<P::Frame, Error>>, Error> {
        if self.is_closed() {
            return Err(self.closed_error());
        }
        let (tx, rx) = oneshot::channel();
        self.outbox
            .send(frame, || register(&mut self.link.pending.lock(), tx))
            .ok_or_else(|| self.closed_error())?;
        Ok(rx)
    }

    /// The answer `rx` waits for. Past the timeout the connection is closed
    /// (it is never resynchronised) and the request fails at once: the
    /// stream is shut down in the background, after a write under way.
    pub async fn answer(
        &self,
        rx: oneshot::Receiver<Result<P::Frame, Error>>,
    ) -> Result<P::Frame, Error> {
        match tokio::time::timeout(self.timeout, rx).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(self.closed_error()),
            Err(_) => {
                let err = Error::timeout(format!(
                    "request to {} timed out after {:.3}s",
                    self.link.address,
                    self.timeout.as_secs_f64()
                ));
                self.link.fail_all(connection_error(format!(
                    "connection to {} closed",
                    self.link.address
                )));
                self.reader.abort();
                let outbox = self.outbox.clone();
                tokio::spawn(async move { outbox.shutdown().await });
                Err(err)
            }
        }
    }
}

impl<P: Waiters> Drop for Mux<P> {
    fn drop(&mut self) {
        self.reader.abort();
    }
}
