//! The golden vectors of AWP1.md §7, byte for byte: every frame is encoded
//! from its fields and compared with the dump, and the dump decodes back to
//! the same fields.

use aura_wire::frame::{
    decode_parts, fatal_error_frame, Frame, FrameError, Opcode, DEFAULT_MAX_PAYLOAD, HEADER_LEN,
};

/// Parse a hex dump in the spec's layout: offset, up to 16 bytes, comment.
fn dump(text: &str) -> Vec<u8> {
    let mut out = Vec::new();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let mut parts = line.split_whitespace();
        let _offset = parts.next();
        for tok in parts.take(16) {
            if tok.len() != 2 || !tok.chars().all(|c| c.is_ascii_hexdigit()) {
                break;
            }
            out.push(u8::from_str_radix(tok, 16).unwrap());
        }
    }
    out
}

fn check(expected: &[u8], frame: &Frame) {
    let encoded = frame.encode().unwrap();
    assert_eq!(hex(&encoded), hex(expected));
    let (decoded, used) = Frame::decode(expected, DEFAULT_MAX_PAYLOAD)
        .unwrap()
        .unwrap();
    assert_eq!(used, expected.len());
    assert_eq!(&decoded, frame);
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

const HELLO: &str = r#"{"client_version":"aura-rs/0.1.0","protocol_version":1}"#;

#[test]
fn v7_1_hello_without_token() {
    let bytes = dump(
        "0000  41 55 52 41 01 01 00 01 00 2c 00 00 00 00 00 37  AURA
         0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01  request_id = 1
         0020  00 00 00 00 00 00 00 00 7a be 1d e1 7b 22 63 6c  txn_id
         0030  69 65 6e 74 5f 76 65 72 73 69 6f 6e 22 3a 22 61
         0040  75 72 61 2d 72 73 2f 30 2e 31 2e 30 22 2c 22 70
         0050  72 6f 74 6f 63 6f 6c 5f 76 65 72 73 69 6f 6e 22
         0060  3a 31 7d 59 a9 75 2c                             ...payload",
    );
    assert_eq!(bytes.len(), 103);
    check(&bytes, &Frame::new(Opcode::Hello, 1, 0, HELLO.into()));
}

#[test]
fn v7_2_hello_with_token() {
    let bytes = dump(
        "0000  41 55 52 41 01 01 00 01 00 2c 00 00 00 00 00 4d  AURA
         0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01  request_id = 1
         0020  00 00 00 00 00 00 00 00 95 c7 5a 40 7b 22 63 6c  txn_id
         0030  69 65 6e 74 5f 76 65 72 73 69 6f 6e 22 3a 22 61
         0040  75 72 61 2d 72 73 2f 30 2e 31 2e 30 22 2c 22 70
         0050  72 6f 74 6f 63 6f 6c 5f 76 65 72 73 69 6f 6e 22
         0060  3a 31 2c 22 61 75 74 68 5f 74 6f 6b 65 6e 22 3a
         0070  22 73 33 63 72 65 74 22 7d c4 a9 69 06           ...payload",
    );
    assert_eq!(bytes.len(), 125);
    let payload =
        r#"{"client_version":"aura-rs/0.1.0","protocol_version":1,"auth_token":"s3cret"}"#;
    check(&bytes, &Frame::new(Opcode::Hello, 1, 0, payload.into()));
}

#[test]
fn v7_3_ping_and_pong() {
    let ping = dump(
        "0000  41 55 52 41 01 02 00 01 00 2c 00 00 00 00 00 00  AURA
         0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02  request_id = 2
         0020  00 00 00 00 00 00 00 00 ee 89 8a 27 00 00 00 00  txn_id",
    );
    let pong = dump(
        "0000  41 55 52 41 01 82 00 01 00 2c 00 00 00 00 00 00  AURA
         0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 02  request_id = 2
         0020  00 00 00 00 00 00 00 00 fc c8 a2 bc 00 00 00 00  txn_id",
    );
    assert_eq!((ping.len(), pong.len()), (48, 48));
    check(&ping, &Frame::new(Opcode::Ping, 2, 0, Vec::new()));
    check(&pong, &Frame::new(Opcode::Pong, 2, 0, Vec::new()));
}

#[test]
fn v7_4_query_find() {
    let bytes = dump(
        "0000  41 55 52 41 01 20 00 01 00 2c 00 00 00 00 00 79  AURA
         0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 03  request_id = 3
         0020  00 00 00 00 00 00 00 00 f8 df ce d1 7b 22 71 75  txn_id
         0030  65 72 79 22 3a 22 66 69 6e 64 22 2c 22 63 6f 6c
         0040  6c 65 63 74 69 6f 6e 22 3a 22 44 6f 63 22 2c 22
         0050  66 69 6c 74 65 72 22 3a 7b 22 74 79 70 65 22 3a
         0060  22 63 6f 6d 70 61 72 65 22 2c 22 66 69 65 6c 64
         0070  22 3a 22 73 74 61 74 75 73 22 2c 22 6f 70 22 3a
         0080  22 65 71 22 2c 22 76 61 6c 75 65 22 3a 22 70 75
         0090  62 6c 69 73 68 65 64 22 7d 2c 22 6c 69 6d 69 74
         00a0  22 3a 31 30 7d d3 fa 15 03                       ...payload",
    );
    assert_eq!(bytes.len(), 169);
    let payload = r#"{"query":"find","collection":"Doc","filter":{"type":"compare","field":"status","op":"eq","value":"published"},"limit":10}"#;
    check(&bytes, &Frame::new(Opcode::Query, 3, 0, payload.into()));
}

#[test]
fn v7_5_transaction_begin_commit() {
    let begin = dump(
        "0000  41 55 52 41 01 30 00 01 00 2c 00 00 00 00 00 00  AURA
         0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 04  request_id = 4
         0020  00 00 00 00 00 00 00 00 09 d0 16 a1 00 00 00 00  txn_id",
    );
    let begun = dump(
        "0000  41 55 52 41 01 90 00 01 00 2c 00 00 00 00 00 0c  AURA
         0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 04  request_id = 4
         0020  00 00 00 00 00 00 00 07 cd b7 fa 43 7b 22 74 78  txn_id = 7
         0030  6e 5f 69 64 22 3a 37 7d 8a e5 9f 22              ...payload",
    );
    let commit = dump(
        "0000  41 55 52 41 01 31 00 01 00 2c 00 00 00 00 00 00  AURA
         0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 05  request_id = 5
         0020  00 00 00 00 00 00 00 07 4f 51 80 89 00 00 00 00  txn_id = 7",
    );
    let committed = dump(
        "0000  41 55 52 41 01 90 00 01 00 2c 00 00 00 00 00 0b  AURA
         0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 05  request_id = 5
         0020  00 00 00 00 00 00 00 07 14 9c 12 a8 7b 22 6f 6b  txn_id = 7
         0030  22 3a 74 72 75 65 7d a7 d4 5f 90                 ...payload",
    );
    check(&begin, &Frame::new(Opcode::TxnBegin, 4, 0, Vec::new()));
    check(
        &begun,
        &Frame::new(Opcode::Ok, 4, 7, br#"{"txn_id":7}"#.to_vec()),
    );
    check(&commit, &Frame::new(Opcode::TxnCommit, 5, 7, Vec::new()));
    check(
        &committed,
        &Frame::new(Opcode::Ok, 5, 7, br#"{"ok":true}"#.to_vec()),
    );
}

#[test]
fn v7_6_error_not_found() {
    let bytes = dump(
        "0000  41 55 52 41 01 ff 00 01 00 2c 00 00 00 00 00 4c  AURA
         0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 06  request_id = 6
         0020  00 00 00 00 00 00 00 63 a0 d3 bf 38 7b 22 63 6f  txn_id = 99
         0030  64 65 22 3a 22 6e 6f 74 5f 66 6f 75 6e 64 22 2c
         0040  22 6d 65 73 73 61 67 65 22 3a 22 6e 6f 74 20 66
         0050  6f 75 6e 64 3a 20 74 72 61 6e 73 61 63 74 69 6f
         0060  6e 20 39 39 22 2c 22 72 65 74 72 79 61 62 6c 65
         0070  22 3a 66 61 6c 73 65 7d c6 6c fb 75              ...payload",
    );
    let payload =
        aura_wire::frame::error_payload("not_found", "not found: transaction 99", Some(false));
    assert_eq!(payload.len(), 76);
    check(&bytes, &Frame::new(Opcode::Error, 6, 99, payload));
}

#[test]
fn v7_7_error_unauthenticated() {
    let bytes = dump(
        "0000  41 55 52 41 01 ff 00 01 00 2c 00 00 00 00 00 77  AURA
         0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 03  request_id = 3
         0020  00 00 00 00 00 00 00 00 cf 20 86 c3 7b 22 63 6f  txn_id = 0
         0030  64 65 22 3a 22 75 6e 61 75 74 68 65 6e 74 69 63
         0040  61 74 65 64 22 2c 22 6d 65 73 73 61 67 65 22 3a
         0050  22 75 6e 61 75 74 68 65 6e 74 69 63 61 74 65 64
         0060  3a 20 61 75 74 68 65 6e 74 69 63 61 74 69 6f 6e
         0070  20 72 65 71 75 69 72 65 64 20 62 65 66 6f 72 65
         0080  20 74 68 69 73 20 6f 70 65 72 61 74 69 6f 6e 22
         0090  2c 22 72 65 74 72 79 61 62 6c 65 22 3a 66 61 6c
         00a0  73 65 7d dd 02 2f 62                             ...payload",
    );
    let payload = aura_wire::frame::error_payload(
        "unauthenticated",
        "unauthenticated: authentication required before this operation",
        Some(false),
    );
    check(&bytes, &Frame::new(Opcode::Error, 3, 0, payload));
}

#[test]
fn v7_8_fatal_header_checksum() {
    let bytes = dump(
        "0000  41 55 52 41 01 ff 00 01 00 2c 00 00 00 00 00 4f  AURA
         0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  request_id = 0
         0020  00 00 00 00 00 00 00 00 32 9f 40 03 7b 22 63 6f  txn_id = 0
         0030  64 65 22 3a 22 63 6f 72 72 75 70 74 69 6f 6e 22
         0040  2c 22 6d 65 73 73 61 67 65 22 3a 22 63 6f 72 72
         0050  75 70 74 69 6f 6e 20 64 65 74 65 63 74 65 64 3a
         0060  20 68 65 61 64 65 72 20 63 68 65 63 6b 73 75 6d
         0070  20 6d 69 73 6d 61 74 63 68 22 7d 9c b9 5c a7     ...payload",
    );
    check(&bytes, &fatal_error_frame(&FrameError::HeaderChecksum));
}

/// The 27 capability names of AWP1.md §5.1, in table order.
pub const CAPS: [&str; 27] = [
    "persistent_storage",
    "transactions",
    "secondary_indexes",
    "document_fields",
    "vector_exact_search",
    "relationships",
    "server_cursors",
    "explain",
    "migration_estimate",
    "observability",
    "authentication",
    "tls",
    "persisted_indexes",
    "document_path_indexes",
    "full_text_search",
    "full_text_bm25_ranking",
    "hybrid_search",
    "aggregations_and_facets",
    "query_timeouts",
    "ranked_pagination",
    "approximate_vector_search_preview",
    "group_by_aggregation",
    "query_profile",
    "ranked_search_cursor",
    "approximate_vector_search",
    "query_analyzers",
    "search_snippets",
];

#[test]
fn v7_9_hello_ack_header_and_payload_crc() {
    let names: Vec<String> = CAPS.iter().map(|c| format!("\"{c}\"")).collect();
    let payload = format!(
        r#"{{"protocol_version":1,"capabilities":{{"server_version":"1.5.1","protocol_version":1,"capabilities":[{}]}},"auth_required":false,"authenticated":true}}"#,
        names.join(",")
    );
    assert_eq!(payload.len(), 673);
    let frame = Frame::new(Opcode::HelloAck, 1, 0, payload.into_bytes());
    let encoded = frame.encode().unwrap();
    assert_eq!(encoded.len(), 721);
    let head = dump(
        "0000  41 55 52 41 01 81 00 01 00 2c 00 00 00 00 02 a1  AURA
         0010  00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 01  request_id = 1
         0020  00 00 00 00 00 00 00 00 e3 53 04 6e 7b 22 70 72  txn_id = 0",
    );
    assert_eq!(hex(&encoded[..48]), hex(&head));
    assert_eq!(hex(&encoded[717..]), "39673fee");
}

/// §4.3: each malformed header is rejected with the documented code and
/// message, checked in the §2.4 order.
#[test]
fn malformed_headers_map_to_fatal_codes() {
    let good = Frame::new(Opcode::Ping, 9, 0, b"hi".to_vec())
        .encode()
        .unwrap();
    let decode = |bytes: &[u8]| {
        let mut head = [0u8; HEADER_LEN];
        head.copy_from_slice(&bytes[..HEADER_LEN]);
        decode_parts(&head, &bytes[HEADER_LEN..]).unwrap_err()
    };
    let cases: [(usize, u8, &str, &str); 7] = [
        (0, b'X', "protocol", "protocol error: bad magic bytes"),
        (
            4,
            2,
            "protocol",
            "protocol error: unsupported protocol version 2",
        ),
        (
            4,
            0,
            "protocol",
            "protocol error: unsupported protocol version 0",
        ),
        (5, 0x77, "protocol", "protocol error: unknown opcode: 0x77"),
        (
            9,
            48,
            "protocol",
            "protocol error: invalid header length 48",
        ),
        (
            10,
            1,
            "unsupported",
            "unsupported: compression mode 1 (this single-node release does not implement this)",
        ),
        (
            20,
            0xAA,
            "corruption",
            "corruption detected: header checksum mismatch",
        ),
    ];
    for (at, value, code, message) in cases {
        let mut bytes = good.clone();
        bytes[at] = value;
        let err = decode(&bytes);
        assert_eq!(
            (err.wire_code(), err.wire_message().as_str()),
            (code, message)
        );
    }
    // Magic is checked before the CRC even though the CRC no longer matches.
    let mut two = good.clone();
    two[0] = b'X';
    two[10] = 1;
    assert_eq!(decode(&two), FrameError::BadMagic);
    // Payload CRC.
    let mut bad = good.clone();
    let last = bad.len() - 1;
    bad[last] ^= 1;
    assert_eq!(decode(&bad), FrameError::PayloadChecksum);
    assert_eq!(
        String::from_utf8(fatal_error_frame(&FrameError::PayloadChecksum).payload).unwrap(),
        r#"{"code":"corruption","message":"corruption detected: payload checksum mismatch"}"#
    );
    // Reserved byte and unknown flag bits are accepted.
    let mut lax = Frame::new(Opcode::Ping, 1, 0, Vec::new());
    lax.flags = 0x8001;
    let mut bytes = lax.encode().unwrap();
    bytes[11] = 7;
    let crc = crc32fast::hash(&bytes[..40]).to_be_bytes();
    bytes[40..44].copy_from_slice(&crc);
    let decoded = decode_parts(bytes[..44].try_into().unwrap(), &bytes[44..]).unwrap();
    assert_eq!(decoded.flags, 0x8001);
}

#[test]
fn payload_limit_is_checked_first_and_inclusive() {
    let frame = Frame::new(Opcode::Ping, 1, 0, vec![0; 64]);
    let mut bytes = frame.encode().unwrap();
    assert!(Frame::decode(&bytes, 64).unwrap().is_some());
    let err = Frame::decode(&bytes, 63).unwrap_err();
    assert_eq!(err, FrameError::PayloadTooLarge { len: 64, max: 63 });
    // Length is checked before the magic.
    bytes[0] = b'Z';
    assert_eq!(
        Frame::decode(&bytes, 63).unwrap_err().wire_message(),
        "limit exceeded: payload length 64 exceeds max 63"
    );
    let huge = {
        let mut h = Frame::new(Opcode::Query, 1, 0, Vec::new())
            .encode()
            .unwrap();
        h[12..16].copy_from_slice(&16_777_217u32.to_be_bytes());
        h
    };
    assert_eq!(
        Frame::decode(&huge, DEFAULT_MAX_PAYLOAD)
            .unwrap_err()
            .wire_message(),
        "limit exceeded: payload length 16777217 exceeds max 16777216"
    );
}

#[test]
fn unchecksummed_frames_and_partial_input() {
    let mut frame = Frame::new(Opcode::Query, 5, 3, b"{}".to_vec());
    frame.flags = 0;
    let bytes = frame.encode().unwrap();
    assert_eq!(bytes.len(), 46);
    for cut in 0..bytes.len() {
        assert_eq!(Frame::decode(&bytes[..cut], 1024).unwrap(), None);
    }
    let (decoded, used) = Frame::decode(&bytes, 1024).unwrap().unwrap();
    assert_eq!((decoded, used), (frame, 46));
}
