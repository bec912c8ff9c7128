//! Reading and writing whole frames on an async byte stream.

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::frame::{body_len, decode_parts, Frame, FrameError, HEADER_LEN};

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
    decode_parts(&header, &body)
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

/// What an `Outbox` holds between writes.
pub struct Queue {
    /// Encoded frames not yet handed to the writer, in wire order.
    pub bytes: Vec<u8>,
    /// The request id the next frame takes.
    pub next_id: u64,
    writing: bool,
    /// A write failed: the stream is unusable, nothing more is written.
    failed: bool,
}

impl<W: AsyncWrite + Unpin + Send + 'static> Outbox<W> {
    /// Must be called inside the runtime the writers will run on.
    pub fn new(
        half: W,
        timeout: std::time::Duration,
        broken: impl Fn(String) + Send + Sync + 'static,
    ) -> std::sync::Arc<Self> {
        std::sync::Arc::new(Outbox {
            queue: parking_lot::Mutex::new(Queue {
                bytes: Vec::new(),
                next_id: 1,
                writing: false,
                failed: false,
            }),
            half: tokio::sync::Mutex::new(half),
            timeout,
            broken: Box::new(broken),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Runs `fill` under the queue's lock (it appends whole frames and
    /// registers their waiters, so the wire order is the order of
    /// registration) and makes sure a writer will send what it queued.
    pub fn send<R>(self: &std::sync::Arc<Self>, fill: impl FnOnce(&mut Queue) -> R) -> R {
        let mut queue = self.queue.lock();
        let out = fill(&mut queue);
        if !queue.writing && !queue.failed && !queue.bytes.is_empty() {
            queue.writing = true;
            self.runtime.spawn(self.clone().drain());
        }
        out
    }

    /// Sends what is queued until nothing is: frames queued while a write
    /// is under way go out together in the next one.
    async fn drain(self: std::sync::Arc<Self>) {
        // Requests submitted together (an event loop resuming many callers
        // at once) are ready to run: let them queue their frames first, so
        // one write carries them all (about half the system calls with 64
        // lookups in flight).
        tokio::task::yield_now().await;
        let mut half = self.half.lock().await;
        let mut spare = Vec::new();
        loop {
            let bytes = {
                let mut queue = self.queue.lock();
                if queue.bytes.is_empty() {
                    queue.writing = false;
                    return;
                }
                std::mem::replace(&mut queue.bytes, spare)
            };
            let written = tokio::time::timeout(self.timeout, async {
                half.write_all(&bytes).await?;
                half.flush().await
            })
            .await;
            let why = match written {
                Ok(Ok(())) => {
                    spare = bytes;
                    spare.clear();
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(_) => "write timed out".to_owned(),
            };
            self.queue.lock().failed = true;
            (self.broken)(why);
            return;
        }
    }

    /// Shuts the stream down once the write under way (if any) is done.
    pub async fn shutdown(&self) {
        let _ = self.half.lock().await.shutdown().await;
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
}
