//! Reading and writing whole frames on an async byte stream.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::frame::{body_len, decode_owned, Frame, FrameError, HEADER_LEN};

/// Why no frame could be read.
#[derive(Debug)]
pub enum ReadError {
    /// The bytes were read but do not form a valid frame.
    Frame(FrameError),
    /// The peer closed the stream after a full header, inside the payload.
    EarlyEof,
    /// The peer closed the stream inside the header; the bytes it sent.
    ShortHeader(Vec<u8>),
    Io(std::io::Error),
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Frame(e) => write!(f, "{e}"),
            ReadError::EarlyEof => f.write_str("io error: early eof"),
            ReadError::ShortHeader(b) => write!(f, "stream ended after {} header bytes", b.len()),
            ReadError::Io(e) => write!(f, "io error: {e}"),
        }
    }
}

/// Read one frame. `Ok(None)` is a clean end of stream before any header
/// byte; an end inside the header is `ShortHeader` (the server closes
/// silently then, §4.3).
/// The payload length is checked against `max_payload` before the body
/// is allocated or read (§2.4).
pub async fn read_frame<R: AsyncRead + Unpin>(
    reader: &mut R,
    max_payload: usize,
) -> Result<Option<Frame>, ReadError> {
    let mut header = [0u8; HEADER_LEN];
    let mut filled = 0;
    while filled < HEADER_LEN {
        let n = reader
            .read(&mut header[filled..])
            .await
            .map_err(ReadError::Io)?;
        if n == 0 {
            if filled == 0 {
                return Ok(None);
            }
            return Err(ReadError::ShortHeader(header[..filled].to_vec()));
        }
        filled += n;
    }
    let len = body_len(&header, max_payload).map_err(ReadError::Frame)?;
    let mut body = vec![0u8; len];
    reader.read_exact(&mut body).await.map_err(|e| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            ReadError::EarlyEof
        } else {
            ReadError::Io(e)
        }
    })?;
    decode_owned(&header, body)
        .map(Some)
        .map_err(ReadError::Frame)
}

/// Read buffer of a connection: many pipelined frames per read call.
pub const READ_BUFFER: usize = 64 * 1024;

/// Encode and write one frame, then flush.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &Frame,
) -> std::io::Result<()> {
    queue_frame(writer, frame).await?;
    writer.flush().await
}

/// Encode and write one frame without flushing (a buffered writer sends it
/// with the next flush).
pub async fn queue_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &Frame,
) -> std::io::Result<()> {
    let bytes = frame
        .encode()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    writer.write_all(&bytes).await
}

/// True when `buffered` already holds a whole next frame, so reading it
/// will not wait for the peer.
pub fn holds_frame(buffered: &[u8], max_payload: usize) -> bool {
    let Some(header) = buffered.first_chunk::<HEADER_LEN>() else {
        return false;
    };
    body_len(header, max_payload).is_ok_and(|len| buffered.len() - HEADER_LEN >= len)
}

/// The write side of a multiplexed connection. A request appends its whole
/// encoded frame under a short lock and returns without waiting; one writer
/// task at a time sends everything queued, in one write. Frames queued
/// together (many requests in flight) leave in one system call, and a frame
/// once queued is written whole even if its request is cancelled: half a
/// frame on the wire would garble every request after it.
pub struct Outbox<W> {
    queue: parking_lot::Mutex<Queue>,
    half: tokio::sync::Mutex<W>,
    timeout: std::time::Duration,
    /// Marks the connection failed when a write fails or outlasts
    /// `timeout` (run in the writer task, so even when nobody waits).
    broken: Box<dyn Fn(String) + Send + Sync>,
    /// Writers start from any thread, a Python finaliser's included.
    runtime: tokio::runtime::Handle,
}

#[derive(Default)]
struct Queue {
    /// Encoded frames not yet handed to the writer, in wire order.
    bytes: Vec<u8>,
    writing: bool,
    /// Closed, or a write failed: nothing more is queued or written.
    closed: bool,
}

/// A writer's buffer above this size is not kept for the next write.
const KEEP_BUFFER: usize = 1 << 20;

impl<W: AsyncWrite + Unpin + Send + 'static> Outbox<W> {
    /// Must be called inside the runtime the writers will run on.
    pub fn new(
        half: W,
        timeout: std::time::Duration,
        broken: impl Fn(String) + Send + Sync + 'static,
    ) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Outbox {
            queue: parking_lot::Mutex::new(Queue::default()),
            half: tokio::sync::Mutex::new(half),
            timeout,
            broken: Box::new(broken),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Queues `frame` and runs `register` (which records its waiter) under
    /// the same lock, so waiters are registered in wire order; makes sure a
    /// writer will send it. `None` (nothing queued or registered) once the
    /// outbox is closed.
    pub fn send<R>(
        self: &std::sync::Arc<Self>,
        frame: &[u8],
        register: impl FnOnce() -> R,
    ) -> Option<R> {
        let (registered, start) = {
            let mut queue = self.queue.lock();
            if queue.closed {
                return None;
            }
            queue.bytes.extend_from_slice(frame);
            (register(), !std::mem::replace(&mut queue.writing, true))
        };
        // Spawned outside the lock: a task the runtime drops at once (it
        // is shutting down) fails the connection, which takes the lock.
        if start {
            let writer = Writer {
                outbox: self.clone(),
                running: true,
            };
            self.runtime.spawn(writer.drain());
        }
        Some(registered)
    }

    /// Stops queuing and drops what is not yet handed to the writer: a
    /// connection that failed must not send requests whose callers were
    /// told they failed.
    pub fn close(&self) {
        let mut queue = self.queue.lock();
        queue.closed = true;
        queue.bytes = Vec::new();
    }

    fn fail(&self, why: String) {
        (self.broken)(why);
        self.close();
    }

    /// Shuts the stream down once the write under way (if any) is done.
    pub async fn shutdown(&self) {
        self.close();
        let _ = self.half.lock().await.shutdown().await;
    }
}

/// The one writer task of an outbox. Dropped before it is done (its task
/// dropped unpolled by a runtime shutting down, or a panic in the stream)
/// it fails the connection: otherwise `writing` would stay set, no writer
/// would start again and every later request would wait for its timeout.
struct Writer<W: AsyncWrite + Unpin + Send + 'static> {
    outbox: std::sync::Arc<Outbox<W>>,
    running: bool,
}

impl<W: AsyncWrite + Unpin + Send + 'static> Writer<W> {
    /// Sends what is queued until nothing is: frames queued while a write
    /// is under way go out together in the next one.
    async fn drain(mut self) {
        // Requests submitted together (an event loop resuming many callers
        // at once) are ready to run: let them queue their frames first, so
        // one write carries them all (about half the system calls with 64
        // lookups in flight).
        tokio::task::yield_now().await;
        let outbox = self.outbox.clone();
        let mut half = outbox.half.lock().await;
        let mut spare = Vec::new();
        loop {
            let bytes = {
                let mut queue = outbox.queue.lock();
                if queue.bytes.is_empty() || queue.closed {
                    queue.writing = false;
                    self.running = false;
                    return;
                }
                std::mem::replace(&mut queue.bytes, spare)
            };
            let written = tokio::time::timeout(outbox.timeout, async {
                half.write_all(&bytes).await?;
                half.flush().await
            })
            .await;
            let why = match written {
                Ok(Ok(())) => {
                    spare = bytes;
                    spare.clear();
                    if spare.capacity() > KEEP_BUFFER {
                        spare = Vec::new();
                    }
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "write timed out".to_owned(),
            };
            self.running = false;
            drop(half);
            outbox.fail(why);
            return;
        }
    }
}

impl<W: AsyncWrite + Unpin + Send + 'static> Drop for Writer<W> {
    fn drop(&mut self) {
        if self.running {
            self.outbox.fail("the writer stopped".to_owned());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::frame::Opcode;

    #[test]
    fn holds_frame_only_when_a_whole_frame_is_buffered() {
        let frame = Frame::new(Opcode::Ping, 7, 0, b"{}".to_vec())
            .encode()
            .unwrap();
        assert!(!holds_frame(&[], 1024));
        assert!(!holds_frame(&frame[..HEADER_LEN - 1], 1024));
        assert!(!holds_frame(&frame[..frame.len() - 1], 1024));
        assert!(holds_frame(&frame, 1024));
        let two = [frame.clone(), frame.clone()].concat();
        assert!(holds_frame(&two, 1024));
        // A payload over the limit is never "held": reading it fails instead.
        assert!(!holds_frame(&frame, 1));
    }

    /// A stream whose writes fail, or panic.
    struct Broken {
        panics: bool,
    }

    impl AsyncWrite for Broken {
        fn poll_write(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            _: &[u8],
        ) -> std::task::Poll<std::io::Result<usize>> {
            assert!(!self.panics, "the stream broke");
            std::task::Poll::Ready(Err(std::io::ErrorKind::BrokenPipe.into()))
        }

        fn poll_flush(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }

        fn poll_shutdown(
            self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            std::task::Poll::Ready(Ok(()))
        }
    }

    const SECOND: std::time::Duration = std::time::Duration::from_secs(1);

    #[tokio::test]
    async fn queued_frames_arrive_whole_and_in_order() {
        let (near, mut far) = tokio::io::duplex(64);
        let outbox = Outbox::new(near, SECOND, |why| panic!("{why}"));
        let mut order = Vec::new();
        let frames: Vec<Vec<u8>> = (1..=50u8).map(|i| vec![i; usize::from(i) * 7]).collect();
        for (i, frame) in frames.iter().enumerate() {
            assert_eq!(outbox.send(frame, || order.push(i)), Some(()));
        }
        assert_eq!(order, (0..50).collect::<Vec<_>>());
        let mut got = vec![0u8; frames.iter().map(Vec::len).sum()];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(got, frames.concat());
    }

    #[tokio::test]
    async fn a_failed_write_fails_the_connection_and_refuses_more() {
        let (tx, rx) = std::sync::mpsc::channel();
        let outbox = Outbox::new(Broken { panics: false }, SECOND, move |why| {
            tx.send(why).unwrap()
        });
        assert_eq!(outbox.send(b"frame", || 1), Some(1));
        let why = tokio::task::spawn_blocking(move || rx.recv_timeout(SECOND))
            .await
            .unwrap()
            .unwrap();
        assert!(why.contains("broken pipe"), "{why}");
        assert_eq!(
            outbox.send(b"later", || 2),
            None,
            "nothing is queued any more"
        );
    }

    #[tokio::test]
    async fn closing_drops_what_is_not_yet_written() {
        let (near, mut far) = tokio::io::duplex(64);
        let outbox = Outbox::new(near, SECOND, |_| {});
        // Queued, but its writer has not run yet (it yields first).
        assert_eq!(outbox.send(b"dropped", || ()), Some(()));
        outbox.close();
        assert_eq!(outbox.send(b"refused", || ()), None);
        for _ in 0..10 {
            tokio::task::yield_now().await; // the writer runs, and stops
        }
        assert!(!outbox.queue.lock().writing, "the writer has finished");
        outbox.shutdown().await;
        let mut got = Vec::new();
        far.read_to_end(&mut got).await.unwrap();
        assert!(got.is_empty(), "{got:?}");
    }

    #[tokio::test]
    async fn a_writer_that_stops_early_fails_the_connection() {
        let (tx, rx) = std::sync::mpsc::channel();
        let outbox = Outbox::new(Broken { panics: true }, SECOND, move |why| {
            tx.send(why).unwrap()
        });
        assert_eq!(outbox.send(b"frame", || ()), Some(()));
        let why = tokio::task::spawn_blocking(move || rx.recv_timeout(SECOND))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(why, "the writer stopped");
        assert_eq!(outbox.send(b"later", || ()), None);
    }

    #[test]
    fn a_writer_dropped_unpolled_fails_the_connection() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let outbox = runtime.block_on(async {
            let (near, _far) = tokio::io::duplex(64);
            Outbox::new(near, SECOND, move |why| tx.send(why).unwrap())
        });
        drop(runtime);
        // The runtime is gone: the writer's task is dropped unpolled.
        assert_eq!(outbox.send(b"frame", || ()), Some(()));
        assert_eq!(rx.recv_timeout(SECOND).unwrap(), "the writer stopped");
        assert_eq!(outbox.send(b"later", || ()), None);
    }
}
