//! What both protocol servers (AWP 1 and the bundled protocol) share:
//! binding, one task per connection, TLS, graceful shutdown, the counts of
//! open connections and cursors, and one log line per connection that
//! carries no secret (peer, TLS, whether it authenticated, requests,
//! duration, why it closed). Each protocol brings its connection handler.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Where the one-line-per-connection log goes.
pub type LogSink = Arc<dyn Fn(&str) + Send + Sync>;

/// One connection's protocol handler.
pub(crate) trait Session: Send + 'static {
    /// Serves the connection until it closes; returns why it closed.
    fn run<S: AsyncRead + AsyncWrite + Unpin + Send>(
        &mut self,
        stream: S,
        stop: watch::Receiver<bool>,
    ) -> impl Future<Output = String> + Send;

    /// Rolls back and drops what the connection still holds.
    fn release(&mut self);

    /// Whether it authenticated, and how many requests it made.
    fn summary(&self) -> (bool, u64);
}

/// How a server accepts: its log label, TLS, log sink, and a handler per
/// connection.
pub(crate) struct Accept<F> {
    pub label: &'static str,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub log: LogSink,
    pub session: F,
}

/// A running server. Dropping it without `shutdown` stops it abruptly.
pub struct Listener {
    addr: SocketAddr,
    active: Arc<AtomicUsize>,
    open_cursors: Arc<AtomicUsize>,
    stop: watch::Sender<bool>,
    done: Option<tokio::task::JoinHandle<()>>,
}

impl Listener {
    /// Binds `addr` and serves on the current tokio runtime; the handlers
    /// count the cursors they hold in `open_cursors`.
    pub(crate) async fn start<C, F>(
        addr: &str,
        accept: Accept<F>,
        open_cursors: Arc<AtomicUsize>,
    ) -> std::io::Result<Listener>
    where
        C: Session,
        F: Fn() -> C + Send + Sync + 'static,
    {
        let listener = TcpListener::bind(addr).await?;
        let local = listener.local_addr()?;
        let active = Arc::new(AtomicUsize::new(0));
        let (stop, stopped) = watch::channel(false);
        let done = tokio::spawn(accept_loop(
            listener,
            Arc::new(accept),
            active.clone(),
            stopped,
        ));
        Ok(Listener {
            addr: local,
            active,
            open_cursors,
            stop,
            done: Some(done),
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Connections currently open.
    pub fn active_connections(&self) -> usize {
        self.active.load(Ordering::SeqCst)
    }

    /// Server cursors currently held (all connections).
    pub fn open_cursors(&self) -> usize {
        self.open_cursors.load(Ordering::SeqCst)
    }

    /// Stop accepting, let every connection finish its current request,
    /// roll back what they hold, and wait for them to close.
    pub async fn shutdown(mut self) {
        let _ = self.stop.send(true);
        if let Some(done) = self.done.take() {
            let _ = done.await;
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

async fn accept_loop<C, F>(
    listener: TcpListener,
    accept: Arc<Accept<F>>,
    active: Arc<AtomicUsize>,
    mut stopped: watch::Receiver<bool>,
) where
    C: Session,
    F: Fn() -> C + Send + Sync + 'static,
{
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = stopped.changed() => break,
            accepted = listener.accept() => {
                let Ok((stream, peer)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let connection = serve_stream(stream, peer, accept.clone(), active.clone(), stopped.clone());
                tasks.spawn(connection);
            }
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
        }
    }
    drop(listener);
    while tasks.join_next().await.is_some() {}
}

async fn serve_stream<C, F>(
    stream: TcpStream,
    peer: SocketAddr,
    accept: Arc<Accept<F>>,
    active: Arc<AtomicUsize>,
    stop: watch::Receiver<bool>,
) where
    C: Session,
    F: Fn() -> C + Send + Sync + 'static,
{
    active.fetch_add(1, Ordering::SeqCst);
    let started = Instant::now();
    let mut session = (accept.session)();
    let outcome = match accept.tls.clone() {
        Some(config) => match tokio_rustls::TlsAcceptor::from(config).accept(stream).await {
            Ok(tls) => session.run(tls, stop).await,
            Err(_) => "tls_handshake_failed".to_owned(),
        },
        None => session.run(stream, stop).await,
    };
    session.release();
    let (authenticated, requests) = session.summary();
    let line = format!(
        "{} connection peer={peer} tls={} authenticated={authenticated} requests={requests} duration_ms={} close={outcome}",
        accept.label,
        accept.tls.is_some(),
        started.elapsed().as_millis(),
    );
    (accept.log)(&line);
    active.fetch_sub(1, Ordering::SeqCst);
}
