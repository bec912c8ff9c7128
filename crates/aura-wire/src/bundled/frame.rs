//! The bundled protocol's frame codec (API.md §14): a 32-byte big-endian
//! header, the payload (optionally zlib-compressed), and an optional CRC-32
//! trailer over the payload bytes as sent.
//!
//! Decoding fails closed, checking in this order: magic, version, header
//! CRC, opcode, compression marker, payload length against the limit (all
//! before the payload is read or allocated), then the payload CRC and the
//! zlib stream (inflated into at most `max_payload` bytes).

use std::fmt;
use std::io::Read;

use aura_core::{Error, ErrorCode};

/// ASCII `AURA`.
pub const MAGIC: [u8; 4] = *b"AURA";
/// The only version of the bundled protocol.
pub const VERSION: u8 = 1;
/// Fixed header size.
pub const HEADER_LEN: usize = 32;
/// Bytes covered by the header CRC (offsets 0..28).
const HEADER_CRC_SPAN: usize = 28;

/// Flag bits (byte 6).
pub const FLAG_COMPRESSED: u8 = 1;
pub const FLAG_PAYLOAD_CHECKSUM: u8 = 2;
pub const FLAG_END_OF_STREAM: u8 = 4;
pub const FLAG_MORE_FRAMES: u8 = 8;

/// Compression markers (byte 7).
pub const COMPRESSION_NONE: u8 = 0;
pub const COMPRESSION_ZLIB: u8 = 1;

/// The client's default `max_payload_bytes` (API.md §3.2).
pub const DEFAULT_MAX_PAYLOAD: usize = 64 * 1024 * 1024;

macro_rules! opcodes {
    ($($name:ident = $code:literal),+ $(,)?) => {
        /// The opcodes of API.md §14.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[repr(u8)]
        pub enum Opcode {
            $($name = $code),+
        }

        impl Opcode {
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
    Handshake = 1,
    HandshakeAck = 2,
    Ping = 3,
    Pong = 4,
    Query = 5,
    QueryResult = 6,
    Mutation = 7,
    MutationResult = 8,
    Schema = 9,
    SchemaResult = 10,
    Error = 11,
    StreamData = 12,
    StreamEnd = 13,
    BeginTx = 14,
    CommitTx = 15,
    RollbackTx = 16,
    TxAck = 17,
    CursorFetch = 18,
    CursorClose = 19,
    CursorAck = 20,
}

impl Opcode {
    pub fn as_u8(self) -> u8 {
        self as u8
    }
}

/// Why bytes are not a valid frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DecodeError {
    BadMagic,
    BadVersion(u8),
    HeaderChecksum,
    UnknownOpcode(u8),
    /// Unknown compression byte, or a COMPRESSED flag that disagrees with it.
    CompressionMarker {
        flags: u8,
        compression: u8,
    },
    Oversize {
        len: u64,
        max: u64,
    },
    PayloadChecksum,
    BadZlib,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::BadMagic => f.write_str("bad magic bytes"),
            DecodeError::BadVersion(v) => write!(f, "unsupported protocol version {v}"),
            DecodeError::HeaderChecksum => f.write_str("header checksum mismatch"),
            DecodeError::UnknownOpcode(op) => write!(f, "unknown opcode {op}"),
            DecodeError::CompressionMarker { flags, compression } => write!(
                f,
                "invalid compression marker {compression} (flags 0x{flags:02x})"
            ),
            DecodeError::Oversize { len, max } => {
                write!(f, "payload length {len} exceeds max {max}")
            }
            DecodeError::PayloadChecksum => f.write_str("payload checksum mismatch"),
            DecodeError::BadZlib => f.write_str("invalid zlib payload"),
        }
    }
}

impl DecodeError {
    /// The core error: a bad version is `protocol_version_error`, the rest
    /// `protocol_error` (API.md §14).
    pub fn to_error(&self) -> Error {
        let code = match self {
            DecodeError::BadVersion(_) => ErrorCode::ProtocolVersionError,
            _ => ErrorCode::ProtocolError,
        };
        Error::new(code, format!("invalid bundled-protocol frame: {self}"))
    }
}

/// One frame; `payload` is always the uncompressed body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub opcode: Opcode,
    /// END_OF_STREAM / MORE_FRAMES bits (COMPRESSED and PAYLOAD_CHECKSUM
    /// are chosen at encoding).
    pub flags: u8,
    pub txn_id: u64,
    pub request_id: u64,
    pub payload: Vec<u8>,
}

impl Frame {
    pub fn new(opcode: Opcode, request_id: u64, txn_id: u64, payload: Vec<u8>) -> Frame {
        Frame {
            opcode,
            flags: 0,
            txn_id,
            request_id,
            payload,
        }
    }

    /// Encode deterministically. `compress` zlib-compresses the payload
    /// (level 6); `checksum` appends the payload CRC.
    pub fn encode(&self, compress: bool, checksum: bool) -> Vec<u8> {
        let body = if compress {
            zlib(&self.payload)
        } else {
            self.payload.clone()
        };
        let mut flags = self.flags & (FLAG_END_OF_STREAM | FLAG_MORE_FRAMES);
        if compress {
            flags |= FLAG_COMPRESSED;
        }
        if checksum {
            flags |= FLAG_PAYLOAD_CHECKSUM;
        }
        let mut out = Vec::with_capacity(HEADER_LEN + body.len() + 4);
        out.extend_from_slice(&MAGIC);
        out.push(VERSION);
        out.push(self.opcode.as_u8());
        out.push(flags);
        out.push(if compress {
            COMPRESSION_ZLIB
        } else {
            COMPRESSION_NONE
        });
        // A body over u32::MAX cannot be framed; callers bound payloads far
        // below (max_payload_bytes), so saturating here never truncates a
        // frame that the peer would accept.
        out.extend_from_slice(&u32::try_from(body.len()).unwrap_or(u32::MAX).to_be_bytes());
        out.extend_from_slice(&self.txn_id.to_be_bytes());
        out.extend_from_slice(&self.request_id.to_be_bytes());
        let crc = crc32fast::hash(&out[..HEADER_CRC_SPAN]);
        out.extend_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(&body);
        if checksum {
            out.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
        }
        out
    }
}

fn zlib(data: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::new(6));
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(data);
    enc.finish().unwrap_or_default()
}

/// A validated header: what follows it on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub opcode: Opcode,
    pub flags: u8,
    pub payload_len: usize,
    pub txn_id: u64,
    pub request_id: u64,
}

impl Header {
    /// Bytes after the header: payload plus the CRC trailer if flagged.
    pub fn body_len(&self) -> usize {
        self.payload_len
            + if self.flags & FLAG_PAYLOAD_CHECKSUM != 0 {
                4
            } else {
                0
            }
    }
}

fn be_u64(bytes: &[u8]) -> u64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&bytes[..8]);
    u64::from_be_bytes(b)
}

/// Validate a header before reading (or allocating) its payload.
pub fn parse_header(h: &[u8; HEADER_LEN], max_payload: usize) -> Result<Header, DecodeError> {
    if h[0..4] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    if h[4] != VERSION {
        return Err(DecodeError::BadVersion(h[4]));
    }
    let crc = u32::from_be_bytes([h[28], h[29], h[30], h[31]]);
    if crc != crc32fast::hash(&h[..HEADER_CRC_SPAN]) {
        return Err(DecodeError::HeaderChecksum);
    }
    let opcode = Opcode::from_u8(h[5]).ok_or(DecodeError::UnknownOpcode(h[5]))?;
    let (flags, compression) = (h[6], h[7]);
    let compressed = flags & FLAG_COMPRESSED != 0;
    let marker_ok = match compression {
        COMPRESSION_NONE => !compressed,
        COMPRESSION_ZLIB => compressed,
        _ => false,
    };
    if !marker_ok {
        return Err(DecodeError::CompressionMarker { flags, compression });
    }
    let len = u32::from_be_bytes([h[8], h[9], h[10], h[11]]);
    if u64::from(len) > max_payload as u64 {
        return Err(DecodeError::Oversize {
            len: u64::from(len),
            max: max_payload as u64,
        });
    }
    Ok(Header {
        opcode,
        flags,
        payload_len: len as usize,
        txn_id: be_u64(&h[12..20]),
        request_id: be_u64(&h[20..28]),
    })
}

/// The frame a validated header and its `body_len()` bytes make.
pub fn decode_body(header: &Header, body: &[u8], max_payload: usize) -> Result<Frame, DecodeError> {
    let payload = &body[..header.payload_len.min(body.len())];
    if header.flags & FLAG_PAYLOAD_CHECKSUM != 0 {
        let trailer = body
            .get(header.payload_len..header.payload_len + 4)
            .ok_or(DecodeError::PayloadChecksum)?;
        let want = u32::from_be_bytes([trailer[0], trailer[1], trailer[2], trailer[3]]);
        if want != crc32fast::hash(payload) {
            return Err(DecodeError::PayloadChecksum);
        }
    }
    let payload = if header.flags & FLAG_COMPRESSED != 0 {
        inflate(payload, max_payload)?
    } else {
        payload.to_vec()
    };
    Ok(Frame {
        opcode: header.opcode,
        flags: header.flags & (FLAG_END_OF_STREAM | FLAG_MORE_FRAMES),
        txn_id: header.txn_id,
        request_id: header.request_id,
        payload,
    })
}

/// Inflate at most `max` bytes: a zlib bomb is refused, not expanded.
fn inflate(data: &[u8], max: usize) -> Result<Vec<u8>, DecodeError> {
    let mut out = Vec::new();
    let limit = (max as u64).saturating_add(1);
    flate2::read::ZlibDecoder::new(data)
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|_| DecodeError::BadZlib)?;
    if out.len() > max {
        return Err(DecodeError::Oversize {
            len: out.len() as u64,
            max: max as u64,
        });
    }
    Ok(out)
}

/// Decode one whole frame from the front of `bytes`; returns it and the
/// number of bytes it used. Too few bytes is `Ok(None)`.
pub fn decode(bytes: &[u8], max_payload: usize) -> Result<Option<(Frame, usize)>, DecodeError> {
    let Some(head) = bytes.get(..HEADER_LEN) else {
        return Ok(None);
    };
    let mut h = [0u8; HEADER_LEN];
    h.copy_from_slice(head);
    let header = parse_header(&h, max_payload)?;
    let end = HEADER_LEN + header.body_len();
    let Some(body) = bytes.get(HEADER_LEN..end) else {
        return Ok(None);
    };
    Ok(Some((decode_body(&header, body, max_payload)?, end)))
}

/// Compact JSON with every object's keys sorted (the bodies of §14).
pub fn sorted_json(value: &serde_json::Value) -> Vec<u8> {
    serde_json::to_vec(&sort_keys(value)).unwrap_or_default()
}

fn sort_keys(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value as Json;
    match value {
        Json::Object(obj) => {
            let mut keys: Vec<&String> = obj.keys().collect();
            keys.sort();
            Json::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sort_keys(&obj[k])))
                    .collect(),
            )
        }
        Json::Array(items) => Json::Array(items.iter().map(sort_keys).collect()),
        other => other.clone(),
    }
}
