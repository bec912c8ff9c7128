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

/// Encode and write one frame, then flush.
pub async fn write_frame<W: AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &Frame,
) -> std::io::Result<()> {
    let bytes = frame
        .encode()
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string()))?;
    writer.write_all(&bytes).await?;
    writer.flush().await
}
