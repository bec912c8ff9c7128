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

/// Counts a request waiting for its connection's writer while it lives:
/// a router choosing the least busy connection must see requests already
/// routed to one, not only those written.
pub struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);

impl<'a> Waiting<'a> {
    pub fn enter(count: &'a std::sync::atomic::AtomicUsize) -> Self {
        count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Waiting(count)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Writes `bytes` whole on the writer `guard` holds, in a task of its own:
/// a caller that stops waiting (a cancelled request) never leaves part of a
/// frame on the wire, which would garble every request after it. `half`
/// picks the byte stream out of the guarded value. When the write fails or
/// outlasts `timeout`, the stream is unusable: `broken` (run in the task,
/// so even when nobody waits) marks the connection failed and gives the
/// error.
pub async fn write_detached<T, W, B>(
    mut guard: tokio::sync::OwnedMutexGuard<T>,
    half: fn(&mut T) -> &mut W,
    bytes: Vec<u8>,
    timeout: std::time::Duration,
    broken: B,
) -> Result<(), aura_core::Error>
where
    T: Send + 'static,
    W: AsyncWrite + Unpin + Send + 'static,
    B: FnOnce(String) -> aura_core::Error + Send + 'static,
{
    let task = tokio::spawn(async move {
        let w = half(&mut guard);
        let written = tokio::time::timeout(timeout, async {
            w.write_all(&bytes).await?;
            w.flush().await
        })
        .await;
        match written {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(broken(e.to_string())),
            Err(_) => Err(broken("write timed out".to_owned())),
        }
    });
    task.await.unwrap_or_else(|e| {
        Err(aura_core::Error::new(
            aura_core::ErrorCode::ConnectionError,
            format!("write task ended: {e}"),
        ))
    })
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
