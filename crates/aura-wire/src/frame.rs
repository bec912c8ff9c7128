//! The AWP 1 frame codec (AWP1.md §2): a fixed 44-byte big-endian header,
//! the payload, and an optional CRC-32 trailer over the payload.
//!
//! Decoding follows the server's order (§2.4): the payload length is checked
//! against the limit *before* anything else (and before any allocation),
//! then — once the whole frame is present — magic, version, opcode, header
//! length, compression, header CRC and payload CRC, in that order.

use std::fmt;

/// ASCII `AURA`.
pub const MAGIC: [u8; 4] = *b"AURA";
/// The only protocol version.
pub const VERSION: u8 = 1;
/// Fixed header size, also the only valid `header_len`.
pub const HEADER_LEN: usize = 44;
/// Bytes covered by the header CRC (offsets 0..40).
pub const HEADER_CRC_SPAN: usize = 40;
/// Flag bit 0: a CRC-32 trailer follows the payload.
pub const FLAG_PAYLOAD_CHECKSUM: u16 = 0x0001;
/// Default `max_payload_bytes` (16 MiB) of AWP1.md §1.
pub const DEFAULT_MAX_PAYLOAD: usize = 16 * 1024 * 1024;

macro_rules! opcodes {
    ($($name:ident = $code:literal),+ $(,)?) => {
        /// Every opcode of AWP1.md §3.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Opcode {
            $($name = $code),+
        }

        impl Opcode {
            pub const ALL: &'static [Opcode] = &[$(Opcode::$name),+];

            pub fn from_u8(byte: u8) -> Option<Opcode> {
                match byte {
                    $($code => Some(Opcode::$name),)+
                    _ => None,
                }
            }
        }
    };
}

opcodes! {
    Hello = 0x01,
    Ping = 0x02,
    Health = 0x03,
    Auth = 0x04,
    SchemaCreate = 0x10,
    SchemaDrop = 0x11,
    SchemaGet = 0x12,
    SchemaList = 0x13,
    Query = 0x20,
    Mutate = 0x21,
    CursorFetch = 0x22,
    CursorClose = 0x23,
    Explain = 0x24,
    MigrationEstimate = 0x25,
    TxnBegin = 0x30,
    TxnCommit = 0x31,
    TxnRollback = 0x32,
    HelloAck = 0x81,
    Pong = 0x82,
    HealthResult = 0x83,
    AuthResult = 0x84,
    Ok = 0x90,
    QueryResult = 0x91,
    Error = 0xFF,
}

impl Opcode {
    pub fn as_u8(self) -> u8 {
        self as u8
    }

    /// Server-to-client opcodes (`0x81`..=`0xFF`).
    pub fn is_response(self) -> bool {
        self.as_u8() >= 0x81
    }
}

/// Why a frame was rejected. Each kind has the wire error code and message
/// the server sends in its fatal ERROR frame (AWP1.md §4.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    PayloadTooLarge { len: u64, max: u64 },
    BadMagic,
    BadVersion(u8),
    UnknownOpcode(u8),
    BadHeaderLen(u16),
    Compression(u8),
    HeaderChecksum,
    PayloadChecksum,
}

impl FrameError {
    /// Wire error code (AWP1.md §4.2).
    pub fn wire_code(&self) -> &'static str {
        match self {
            FrameError::PayloadTooLarge { .. } => "limit_exceeded",
            FrameError::BadMagic
            | FrameError::BadVersion(_)
            | FrameError::UnknownOpcode(_)
            | FrameError::BadHeaderLen(_) => "protocol",
            FrameError::Compression(_) => "unsupported",
            FrameError::HeaderChecksum | FrameError::PayloadChecksum => "corruption",
        }
    }

    /// The `retryable` key of the fatal ERROR payload (tri-state).
    pub fn wire_retryable(&self) -> Option<bool> {
        match self {
            FrameError::Compression(_) => Some(false),
            _ => None,
        }
    }

    /// Human message, `"<category>: <detail>"` like the server's.
    pub fn wire_message(&self) -> String {
        match self {
            FrameError::PayloadTooLarge { len, max } => {
                format!("limit exceeded: payload length {len} exceeds max {max}")
            }
            FrameError::BadMagic => "protocol error: bad magic bytes".to_owned(),
            FrameError::BadVersion(v) => format!("protocol error: unsupported protocol version {v}"),
            FrameError::UnknownOpcode(op) => format!("protocol error: unknown opcode: 0x{op:02x}"),
            FrameError::BadHeaderLen(n) => format!("protocol error: invalid header length {n}"),
            FrameError::Compression(c) => format!(
                "unsupported: compression mode {c} (this single-node release does not implement this)"
            ),
            FrameError::HeaderChecksum => "corruption detected: header checksum mismatch".to_owned(),
            FrameError::PayloadChecksum => {
                "corruption detected: payload checksum mismatch".to_owned()
            }
        }
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.wire_message())
    }
}

impl std::error::Error for FrameError {}

/// One decoded (or to-be-encoded) frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub opcode: Opcode,
    pub flags: u16,
    pub request_id: u128,
    pub txn_id: u64,
    pub payload: Vec<u8>,
}

impl Frame {
    /// A frame with the payload-checksum flag set (what both peers send).
    pub fn new(opcode: Opcode, request_id: u128, txn_id: u64, payload: Vec<u8>) -> Frame {
        Frame {
            opcode,
            flags: FLAG_PAYLOAD_CHECKSUM,
            request_id,
            txn_id,
            payload,
        }
    }

    pub fn has_checksum(&self) -> bool {
        self.flags & FLAG_PAYLOAD_CHECKSUM != 0
    }

    /// Encoded size in bytes.
    pub fn encoded_len(&self) -> usize {
        HEADER_LEN + self.payload.len() + if self.has_checksum() { 4 } else { 0 }
    }

    /// Append the encoded frame to `out`. Fails only when the payload does
    /// not fit the u32 length field.
    pub fn encode_into(&self, out: &mut Vec<u8>) -> Result<(), FrameError> {
        let len = u32::try_from(self.payload.len()).map_err(|_| FrameError::PayloadTooLarge {
            len: self.payload.len() as u64,
            max: u64::from(u32::MAX),
        })?;
        out.reserve(self.encoded_len());
        let start = out.len();
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.opcode.as_u8());
        out.extend_from_slice(&self.flags.to_be_bytes());
        out.extend_from_slice(&(HEADER_LEN as u16).to_be_bytes());
        out.push(0); // compression: none
        out.push(0); // reserved
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&self.request_id.to_be_bytes());
        out.extend_from_slice(&self.txn_id.to_be_bytes());
        let crc = crc32fast::hash(&out[start..start + HEADER_CRC_SPAN]);
        out.extend_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(&self.payload);
        if self.has_checksum() {
            out.extend_from_slice(&crc32fast::hash(&self.payload).to_be_bytes());
        }
        Ok(())
    }

    pub fn encode(&self) -> Result<Vec<u8>, FrameError> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out)?;
        Ok(out)
    }

    /// Decode one frame from the front of `buf`. `Ok(None)` means more bytes
    /// are needed; `Ok(Some((frame, consumed)))` on success.
    pub fn decode(buf: &[u8], max_payload: usize) -> Result<Option<(Frame, usize)>, FrameError> {
        let Some(header) = buf.get(..HEADER_LEN) else {
            return Ok(None);
        };
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(header);
        let rest_len = body_len(&head, max_payload)?;
        let total = HEADER_LEN + rest_len;
        let Some(rest) = buf.get(HEADER_LEN..total) else {
            return Ok(None);
        };
        Ok(Some((decode_parts(&head, rest)?, total)))
    }
}

fn be_u16(b: &[u8; HEADER_LEN], at: usize) -> u16 {
    u16::from_be_bytes([b[at], b[at + 1]])
}

fn be_u32(b: &[u8; HEADER_LEN], at: usize) -> u32 {
    u32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// Bytes that follow the header (payload + optional trailer). Checks the
/// payload length against `max_payload` and nothing else (§2.4), so a
/// reader can size its buffer safely before reading the rest.
pub fn body_len(header: &[u8; HEADER_LEN], max_payload: usize) -> Result<usize, FrameError> {
    let payload_len = be_u32(header, 12) as u64;
    if payload_len > max_payload as u64 {
        return Err(FrameError::PayloadTooLarge {
            len: payload_len,
            max: max_payload as u64,
        });
    }
    let trailer = if be_u16(header, 6) & FLAG_PAYLOAD_CHECKSUM != 0 {
        4
    } else {
        0
    };
    // payload_len <= max_payload: usize, so this cannot overflow.
    Ok(payload_len as usize + trailer)
}

/// Validate a complete frame, header plus the `body_len` bytes after it,
/// in the order of §2.4.
pub fn decode_parts(header: &[u8; HEADER_LEN], body: &[u8]) -> Result<Frame, FrameError> {
    let (frame, payload_len) = check_parts(header, body)?;
    Ok(Frame {
        payload: body[..payload_len].to_vec(),
        ..frame
    })
}

/// `decode_parts` of a body read into its own buffer: the payload keeps
/// that buffer (the trailer cut off) instead of being copied.
pub fn decode_owned(header: &[u8; HEADER_LEN], mut body: Vec<u8>) -> Result<Frame, FrameError> {
    let (frame, payload_len) = check_parts(header, &body)?;
    body.truncate(payload_len);
    Ok(Frame {
        payload: body,
        ..frame
    })
}

/// The checks of `decode_parts`; the frame without its payload, and the
/// payload's length in `body`.
fn check_parts(header: &[u8; HEADER_LEN], body: &[u8]) -> Result<(Frame, usize), FrameError> {
    if header[0..4] != MAGIC {
        return Err(FrameError::BadMagic);
    }
    let version = header[4];
    if version != VERSION {
        return Err(FrameError::BadVersion(version));
    }
    let opcode = Opcode::from_u8(header[5]).ok_or(FrameError::UnknownOpcode(header[5]))?;
    let header_len = be_u16(header, 8);
    if header_len as usize != HEADER_LEN {
        return Err(FrameError::BadHeaderLen(header_len));
    }
    if header[10] != 0 {
        return Err(FrameError::Compression(header[10]));
    }
    if be_u32(header, 40) != crc32fast::hash(&header[..HEADER_CRC_SPAN]) {
        return Err(FrameError::HeaderChecksum);
    }
    let flags = be_u16(header, 6);
    let payload_len = be_u32(header, 12) as usize;
    let (payload, trailer) = body.split_at(payload_len.min(body.len()));
    if flags & FLAG_PAYLOAD_CHECKSUM != 0 {
        let stored = <[u8; 4]>::try_from(trailer)
            .map(u32::from_be_bytes)
            .map_err(|_| FrameError::PayloadChecksum)?;
        if stored != crc32fast::hash(payload) {
            return Err(FrameError::PayloadChecksum);
        }
    }
    let mut request_id = [0u8; 16];
    request_id.copy_from_slice(&header[16..32]);
    let mut txn_id = [0u8; 8];
    txn_id.copy_from_slice(&header[32..40]);
    let frame = Frame {
        opcode,
        flags,
        request_id: u128::from_be_bytes(request_id),
        txn_id: u64::from_be_bytes(txn_id),
        payload: Vec::new(),
    };
    Ok((frame, payload.len()))
}

/// The JSON payload of an ERROR frame, keys in the server's order.
pub fn error_payload(code: &str, message: &str, retryable: Option<bool>) -> Vec<u8> {
    let mut obj = String::with_capacity(48 + message.len());
    obj.push_str("{\"code\":");
    obj.push_str(&json_string(code));
    obj.push_str(",\"message\":");
    obj.push_str(&json_string(message));
    if let Some(r) = retryable {
        obj.push_str(if r {
            ",\"retryable\":true"
        } else {
            ",\"retryable\":false"
        });
    }
    obj.push('}');
    obj.into_bytes()
}

/// The fatal ERROR frame (request id 0, txn 0) for a framing error.
pub fn fatal_error_frame(err: &FrameError) -> Frame {
    Frame::new(
        Opcode::Error,
        0,
        0,
        error_payload(err.wire_code(), &err.wire_message(), err.wire_retryable()),
    )
}

fn json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for ch in s.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_check_value() {
        assert_eq!(crc32fast::hash(b"123456789"), 0xCBF4_3926);
    }

    #[test]
    fn opcodes_round_trip_and_directions() {
        assert_eq!(Opcode::ALL.len(), 24);
        for op in Opcode::ALL {
            assert_eq!(Opcode::from_u8(op.as_u8()), Some(*op));
        }
        assert_eq!(Opcode::from_u8(0x77), None);
        assert!(Opcode::Error.is_response());
        assert!(Opcode::HelloAck.is_response());
        assert!(!Opcode::TxnRollback.is_response());
    }

    #[test]
    fn owned_and_borrowed_bodies_decode_alike() {
        let mut frames = Vec::new();
        for payload in [Vec::new(), b"{\"rows\":[]}".to_vec()] {
            let mut frame = Frame::new(Opcode::QueryResult, 9, 3, payload);
            frames.push(frame.encode().unwrap());
            frame.flags = 0;
            frames.push(frame.encode().unwrap());
        }
        for bytes in frames {
            for at in 0..bytes.len() {
                for flip in [0x00, 0x01, 0x80] {
                    let mut bytes = bytes.clone();
                    bytes[at] ^= flip;
                    let head: [u8; HEADER_LEN] = bytes[..HEADER_LEN].try_into().unwrap();
                    for cut in [bytes.len(), bytes.len() - 1] {
                        let body = &bytes[HEADER_LEN..cut.max(HEADER_LEN)];
                        assert_eq!(
                            decode_owned(&head, body.to_vec()),
                            decode_parts(&head, body)
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn error_payload_escapes() {
        assert_eq!(
            String::from_utf8(error_payload("x", "a\"b\\\n\u{1}", Some(true))).unwrap(),
            r#"{"code":"x","message":"a\"b\\\n\u0001","retryable":true}"#
        );
    }
}
