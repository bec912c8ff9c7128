//! The bundled protocol's codec (API.md §14): the golden bytes of
//! conformance check 49, fail-closed decoding of every malformed input, a
//! property test of the decoder, and a client/server round trip.

use std::sync::Arc;

use aura_wire::bundled::client::{BundledConnection, BundledOptions};
use aura_wire::bundled::frame::{
    self, decode, DecodeError, Frame, Opcode, FLAG_COMPRESSED, HEADER_LEN,
};
use aura_wire::client::ClientOptions;
use aura_wire::server::ServerConfig;
use proptest::prelude::*;
use serde_json::json;

const GOLDEN_PING: &str = "41555241010302000000000b0000000000000000000000000000000161d970257b226e6f6e6365223a317daf53e026";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn ping() -> Frame {
    Frame::new(Opcode::Ping, 1, 0, frame::sorted_json(&json!({"nonce": 1})))
}

#[test]
fn check_49_ping_golden_bytes() {
    let bytes = ping().encode(false, true);
    assert_eq!(hex(&bytes), GOLDEN_PING);
    let (back, used) = decode(&bytes, 1 << 20).unwrap().unwrap();
    assert_eq!((back, used), (ping(), bytes.len()));
}

#[test]
fn flipping_any_header_byte_fails_closed() {
    let good = ping().encode(false, true);
    for at in 0..HEADER_LEN {
        let mut bad = good.clone();
        bad[at] ^= 0x01;
        let err = decode(&bad, 1 << 20).expect_err("a flipped header byte must be refused");
        let core = err.to_error();
        assert!(
            matches!(
                core.code,
                aura_core::ErrorCode::ProtocolError | aura_core::ErrorCode::ProtocolVersionError
            ),
            "byte {at}: {err}"
        );
    }
}

#[test]
fn each_malformed_input_has_its_error() {
    let good = ping().encode(false, true);
    let patch = |at: usize, value: u8| {
        let mut b = good.clone();
        b[at] = value;
        // Re-seal the header CRC so the targeted check is the one that fires.
        let crc = crc32fast::hash(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_be_bytes());
        b
    };
    let max = 1 << 20;
    let mut bad_magic = good.clone();
    bad_magic[0] = b'X';
    assert_eq!(decode(&bad_magic, max), Err(DecodeError::BadMagic));
    assert_eq!(decode(&patch(4, 2), max), Err(DecodeError::BadVersion(2)));
    assert_eq!(
        decode(&patch(4, 2), max).unwrap_err().to_error().code,
        aura_core::ErrorCode::ProtocolVersionError
    );
    let mut bad_crc = good.clone();
    bad_crc[31] ^= 0xff;
    assert_eq!(decode(&bad_crc, max), Err(DecodeError::HeaderChecksum));
    assert_eq!(
        decode(&patch(5, 99), max),
        Err(DecodeError::UnknownOpcode(99))
    );
    assert_eq!(
        decode(&patch(7, 7), max),
        Err(DecodeError::CompressionMarker {
            flags: 2,
            compression: 7
        })
    );
    // COMPRESSED flag without the zlib marker, and the marker without the flag.
    assert!(matches!(
        decode(&patch(6, 2 | FLAG_COMPRESSED), max),
        Err(DecodeError::CompressionMarker { .. })
    ));
    assert!(matches!(
        decode(&patch(7, 1), max),
        Err(DecodeError::CompressionMarker { .. })
    ));
    assert_eq!(
        decode(&good, 10),
        Err(DecodeError::Oversize { len: 11, max: 10 })
    );
    let mut bad_payload = good.clone();
    let last = bad_payload.len() - 1;
    bad_payload[last] ^= 1;
    assert_eq!(decode(&bad_payload, max), Err(DecodeError::PayloadChecksum));
    // A zlib-flagged frame whose body is not zlib (CRC valid over it).
    let mut not_zlib = Frame::new(Opcode::Ping, 1, 0, b"plain".to_vec()).encode(false, true);
    not_zlib[6] |= FLAG_COMPRESSED;
    not_zlib[7] = 1;
    let crc = crc32fast::hash(&not_zlib[..28]);
    not_zlib[28..32].copy_from_slice(&crc.to_be_bytes());
    assert_eq!(decode(&not_zlib, max), Err(DecodeError::BadZlib));
}

#[test]
fn zlib_round_trips_and_bombs_are_refused() {
    let payload = vec![b'a'; 100_000];
    let bytes = Frame::new(Opcode::Query, 9, 3, payload.clone()).encode(true, true);
    assert!(bytes.len() < 2_000);
    let (back, _) = decode(&bytes, 1 << 20).unwrap().unwrap();
    assert_eq!(
        (back.payload, back.txn_id, back.request_id),
        (payload, 3, 9)
    );
    // The compressed body is small, the inflated one exceeds the limit.
    assert!(matches!(
        decode(&bytes, 50_000),
        Err(DecodeError::Oversize { .. })
    ));
}

#[test]
fn truncated_input_asks_for_more() {
    let good = ping().encode(false, true);
    for cut in 0..good.len() {
        assert_eq!(decode(&good[..cut], 1 << 20), Ok(None), "cut at {cut}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn decoder_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes, 4096);
    }

    #[test]
    fn decoder_never_panics_on_valid_headers(
        op in 1u8..=20,
        flags in any::<u8>(),
        compression in 0u8..3,
        body in proptest::collection::vec(any::<u8>(), 0..128),
    ) {
        let mut b = vec![0u8; HEADER_LEN];
        b[..4].copy_from_slice(b"AURA");
        b[4] = 1;
        b[5] = op;
        b[6] = flags;
        b[7] = compression;
        b[8..12].copy_from_slice(&(body.len() as u32).to_be_bytes());
        let crc = crc32fast::hash(&b[..28]);
        b[28..32].copy_from_slice(&crc.to_be_bytes());
        b.extend_from_slice(&body);
        let _ = decode(&b, 4096);
    }

    #[test]
    fn encode_decode_round_trip(
        payload in proptest::collection::vec(any::<u8>(), 0..512),
        rid in any::<u64>(), txn in any::<u64>(), compress in any::<bool>(), checksum in any::<bool>(),
    ) {
        let f = Frame::new(Opcode::QueryResult, rid, txn, payload);
        let bytes = f.encode(compress, checksum);
        let (back, used) = decode(&bytes, 1 << 20).unwrap().unwrap();
        prop_assert_eq!(used, bytes.len());
        prop_assert_eq!(back, f);
    }
}

/// A bundled server on a free port, default settings, log discarded.
async fn serve_quietly() -> aura_wire::listener::Listener {
    let engine = Arc::new(aura_engine::Engine::new());
    let log: aura_wire::server::LogSink = Arc::new(|_: &str| {});
    aura_wire::bundled::server::serve("127.0.0.1:0", engine, ServerConfig::default(), log)
        .await
        .unwrap()
}

fn options(port: u16, token: Option<&str>) -> BundledOptions {
    BundledOptions {
        base: ClientOptions {
            host: "127.0.0.1".into(),
            port,
            tls: None,
            token: token.map(str::to_owned),
            connect_timeout: std::time::Duration::from_secs(5),
            request_timeout: std::time::Duration::from_secs(5),
            max_payload: 1 << 24,
            client_version: "test".into(),
        },
        compression: true,
        payload_checksum: true,
    }
}

#[tokio::test]
async fn client_and_server_multiplex_and_close_cursors_in_order() {
    let server = serve_quietly().await;
    let conn = BundledConnection::connect(&options(server.local_addr().port(), None))
        .await
        .unwrap();
    assert!(conn.features.contains("transactions"));
    let schema = json!({"name": "B", "primary_key": "id", "fields": [
        {"attr": "id", "storage": "id", "kind": "int", "nullable": false, "unique": false,
         "index": false, "has_default": false, "full_text": false, "vector_dim": null,
         "target": null, "on_delete": null}], "relationships": []});
    conn.request(Opcode::Schema, 0, &json!({"models": [schema]}))
        .await
        .unwrap();
    let rows: Vec<_> = (0..50).map(|i| json!([i])).collect();
    conn.request(
        Opcode::Mutation,
        0,
        &json!({"ir": {"operation": "insert", "model": "B", "rows": rows}}),
    )
    .await
    .unwrap();
    // Many requests in flight at once, answered by id.
    let reads = (0..32).map(|i| {
        let conn = conn.clone();
        async move {
            let ir = json!({"operation": "count", "model": "B", "filters": [
                {"kind": "compare", "op": "lt", "left": {"kind": "field", "model": "B", "field": "id"},
                 "right": {"kind": "literal", "value": i}}]});
            let reply = conn.request(Opcode::Query, 0, &json!({"ir": ir})).await.unwrap();
            aura_wire::bundled::client::json_of(&reply).unwrap()["count"].as_u64().unwrap()
        }
    });
    let counts = futures_join(reads).await;
    assert_eq!(counts, (0..32).collect::<Vec<u64>>());
    // A stream left early: CURSOR_CLOSE is queued and precedes the next request.
    let first = conn
        .request(
            Opcode::Query,
            0,
            &json!({"ir": {"operation": "select", "model": "B", "cursor": {"batch_size": 5}}}),
        )
        .await
        .unwrap();
    assert_eq!(first.opcode, Opcode::StreamData);
    let id = aura_wire::bundled::client::json_of(&first).unwrap()["metadata"]["cursor"]
        .as_u64()
        .unwrap();
    assert_eq!(server.open_cursors(), 1);
    conn.defer(Opcode::CursorClose, 0, &json!({"cursor": id}));
    conn.request(Opcode::Ping, 0, &json!({"nonce": 2}))
        .await
        .unwrap();
    assert_eq!(server.open_cursors(), 0);
    conn.close().await;
    server.shutdown().await;
}

async fn futures_join<F: std::future::Future<Output = u64> + Send + 'static>(
    futs: impl Iterator<Item = F>,
) -> Vec<u64> {
    let handles: Vec<_> = futs.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for h in handles {
        out.push(h.await.unwrap());
    }
    out
}

#[tokio::test]
async fn a_wrong_token_is_an_authentication_error_without_the_token() {
    let engine = Arc::new(aura_engine::Engine::new());
    let log: aura_wire::server::LogSink = Arc::new(|_: &str| {});
    let config = ServerConfig {
        token: Some(aura_wire::auth::TokenVerifier::new("right-token").unwrap()),
        ..ServerConfig::default()
    };
    let server = aura_wire::bundled::server::serve("127.0.0.1:0", engine, config, log)
        .await
        .unwrap();
    let port = server.local_addr().port();
    let err = match BundledConnection::connect(&options(port, Some("wrong-token"))).await {
        Err(e) => e,
        Ok(_) => panic!("a wrong token must be refused"),
    };
    assert_eq!(err.code, aura_core::ErrorCode::AuthenticationError);
    assert!(!format!("{err:?}").contains("wrong-token"));
    let ok = BundledConnection::connect(&options(port, Some("right-token")))
        .await
        .unwrap();
    let pong = ok
        .request(Opcode::Ping, 0, &json!({"nonce": 7}))
        .await
        .unwrap();
    assert_eq!(
        aura_wire::bundled::client::json_of(&pong).unwrap()["nonce"],
        7
    );
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_abandoned_while_it_is_written_leaves_the_connection_usable() {
    let server = serve_quietly().await;
    let mut opts = options(server.local_addr().port(), None);
    opts.compression = false; // the padding must stay large on the wire
    let conn = BundledConnection::connect(&opts).await.unwrap();
    let big = json!({"pad": "x".repeat(12 << 20)});
    let sender = conn.clone();
    let request = tokio::spawn(async move { sender.request(Opcode::Ping, 0, &big).await });
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    request.abort();
    assert!(
        request.await.is_err(),
        "the request was still being written"
    );
    let pong = conn
        .request(Opcode::Ping, 0, &serde_json::Value::Null)
        .await
        .unwrap();
    assert_eq!(pong.opcode, Opcode::Pong);
    server.shutdown().await;
}
