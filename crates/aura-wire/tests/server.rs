//! The server over real sockets, driven with raw frames.

use std::sync::Arc;

use aura_engine::Engine;
use aura_wire::auth::TokenVerifier;
use aura_wire::frame::{Frame, Opcode};
use aura_wire::io::{read_frame, write_frame};
use aura_wire::listener::Listener;
use aura_wire::server::{LogSink, ServerConfig};
use parking_lot::Mutex;
use serde_json::{json, Value as Json};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

struct Peer {
    stream: TcpStream,
    next: u128,
}

impl Peer {
    async fn connect(server: &Listener) -> Peer {
        Peer {
            stream: TcpStream::connect(server.local_addr()).await.unwrap(),
            next: 1,
        }
    }

    async fn call(&mut self, op: Opcode, txn: u64, body: &Json) -> Frame {
        let payload = if body.is_null() {
            Vec::new()
        } else {
            serde_json::to_vec(body).unwrap()
        };
        let id = self.next;
        self.next += 1;
        write_frame(&mut self.stream, &Frame::new(op, id, txn, payload))
            .await
            .unwrap();
        let reply = read_frame(&mut self.stream, 1 << 24)
            .await
            .unwrap()
            .unwrap();
        assert_eq!(reply.request_id, id);
        reply
    }

    async fn json(&mut self, op: Opcode, txn: u64, body: &Json) -> (Opcode, u64, Json) {
        let f = self.call(op, txn, body).await;
        let payload = serde_json::from_slice(&f.payload).unwrap_or(Json::Null);
        (f.opcode, f.txn_id, payload)
    }
}

fn capture() -> (LogSink, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink_lines = lines.clone();
    (
        Arc::new(move |l: &str| sink_lines.lock().push(l.to_owned())),
        lines,
    )
}

async fn start(config: ServerConfig) -> (Listener, Arc<Mutex<Vec<String>>>) {
    let (log, lines) = capture();
    let server = aura_wire::server::serve("127.0.0.1:0", Arc::new(Engine::new()), config, log)
        .await
        .unwrap();
    (server, lines)
}

fn doc_schema() -> Json {
    json!({"name":"Doc","fields":[
        {"name":"id","field_type":{"kind":"int"},"primary_key":true,"nullable":false},
        {"name":"status","field_type":{"kind":"string"},"indexed":true},
        {"name":"at","field_type":{"kind":"timestamp"}},
        {"name":"blob","field_type":{"kind":"bytes"}},
        {"name":"emb","field_type":{"kind":"vector","dim":2}}]})
}

#[tokio::test]
async fn crud_cursor_and_transactions() {
    let (server, lines) = start(ServerConfig {
        page_size: 3,
        ..ServerConfig::default()
    })
    .await;
    let mut p = Peer::connect(&server).await;
    let (op, txn, ack) = p
        .json(
            Opcode::Hello,
            0,
            &json!({"client_version":"t","protocol_version":1}),
        )
        .await;
    assert_eq!((op, txn), (Opcode::HelloAck, 0));
    assert_eq!(ack["auth_required"], json!(false));
    assert_eq!(ack["authenticated"], json!(true));
    assert_eq!(ack["capabilities"]["protocol_version"], json!(1));
    let (op, _, ok) = p.json(Opcode::SchemaCreate, 0, &doc_schema()).await;
    assert_eq!((op, ok), (Opcode::Ok, json!({"ok": true})));
    let (_, _, got) = p.json(Opcode::SchemaGet, 0, &json!({"name":"Doc"})).await;
    assert_eq!(
        got["fields"][1],
        json!({"name":"status","field_type":{"kind":"string"},"primary_key":false,"unique":false,"nullable":true,"indexed":true})
    );

    let records: Vec<Json> = (1..=7)
        .map(|i| json!({"id": i, "status": if i % 2 == 0 {"draft"} else {"published"},
                         "at": {"$timestamp": 1717459200000i64 + i}, "blob": {"$bytes": [1, 2, 255]},
                         "emb": {"$vector": [i as f64, 0.0]}}))
        .collect();
    let (op, _, res) = p
        .json(
            Opcode::Mutate,
            0,
            &json!({"mutation":"bulk_insert","collection":"Doc","records":records}),
        )
        .await;
    assert_eq!(op, Opcode::Ok);
    assert_eq!(res["inserted"], json!(7));
    assert_eq!(res["ids"][1], json!("a35c27934683d94f7080e270d7e7451f"));

    // Duplicate key → unique_violation, connection stays usable.
    let (op, _, err) = p
        .json(
            Opcode::Mutate,
            0,
            &json!({"mutation":"insert","collection":"Doc","fields":{"id":1}}),
        )
        .await;
    assert_eq!(op, Opcode::Error);
    assert_eq!(
        (err["code"].clone(), err["retryable"].clone()),
        (json!("unique_violation"), json!(false))
    );

    // find pages through a cursor.
    let (op, _, page) = p
        .json(
            Opcode::Query,
            0,
            &json!({"query":"find","collection":"Doc","order_by":[{"field":"id"}]}),
        )
        .await;
    assert_eq!(op, Opcode::QueryResult);
    assert_eq!(page["rows"].as_array().unwrap().len(), 3);
    assert_eq!(
        page["rows"][0]["fields"],
        json!({"at":{"$timestamp":1717459200001i64},"blob":{"$bytes":[1,2,255]},"emb":{"$vector":[1.0,0.0]},"id":1,"status":"published"})
    );
    let cursor = page["cursor_id"].as_u64().unwrap();
    let (_, _, page2) = p
        .json(
            Opcode::CursorFetch,
            0,
            &json!({"cursor_id": cursor, "limit": 3}),
        )
        .await;
    assert_eq!(page2["cursor_id"], json!(cursor));
    let (_, _, page3) = p
        .json(
            Opcode::CursorFetch,
            0,
            &json!({"cursor_id": cursor, "limit": 30}),
        )
        .await;
    assert_eq!(page3["rows"].as_array().unwrap().len(), 1);
    assert!(page3.get("cursor_id").is_none());
    let (op, _, gone) = p
        .json(
            Opcode::CursorFetch,
            0,
            &json!({"cursor_id": cursor, "limit": 3}),
        )
        .await;
    assert_eq!(
        (op, gone),
        (
            Opcode::Error,
            json!({"code":"not_found","message":format!("not found: cursor {cursor}"),"retryable":false})
        )
    );

    // count answers with OK, not QUERY_RESULT.
    let (op, _, n) = p.json(Opcode::Query, 0, &json!({"query":"count","collection":"Doc","filter":{"type":"compare","field":"status","op":"eq","value":"draft"}})).await;
    assert_eq!((op, n), (Opcode::Ok, json!({"count": 3})));

    // Transactions: header txn id, snapshot reads, commit echo.
    let (op, txn, body) = p.json(Opcode::TxnBegin, 0, &Json::Null).await;
    assert_eq!(op, Opcode::Ok);
    assert_eq!(body, json!({"txn_id": txn}));
    let (_, echo, _) = p
        .json(
            Opcode::Mutate,
            txn,
            &json!({"mutation":"delete","collection":"Doc","filter":null}),
        )
        .await;
    assert_eq!(echo, txn);
    let (_, _, inside) = p
        .json(
            Opcode::Query,
            txn,
            &json!({"query":"count","collection":"Doc"}),
        )
        .await;
    let (_, _, outside) = p
        .json(
            Opcode::Query,
            0,
            &json!({"query":"count","collection":"Doc"}),
        )
        .await;
    assert_eq!((inside, outside), (json!({"count":0}), json!({"count":7})));
    let (op, echo, body) = p.json(Opcode::TxnRollback, txn, &Json::Null).await;
    assert_eq!((op, echo, body), (Opcode::Ok, txn, json!({"ok": true})));
    let (op, echo, body) = p.json(Opcode::TxnCommit, txn, &Json::Null).await;
    assert_eq!((op, echo), (Opcode::Error, txn));
    assert_eq!(
        body,
        json!({"code":"not_found","message":format!("not found: transaction {txn}"),"retryable":false})
    );

    // Response opcodes and bad JSON are request-level protocol errors.
    let (op, _, body) = p.json(Opcode::Ok, 0, &json!({})).await;
    assert_eq!(
        (op, body["code"].clone()),
        (Opcode::Error, json!("protocol"))
    );
    assert!(body.get("retryable").is_none());
    let raw = p.call(Opcode::Query, 0, &json!("nope")).await;
    assert_eq!(raw.opcode, Opcode::Error);
    let pong = p.call(Opcode::Ping, 0, &json!("x")).await;
    assert_eq!(
        (pong.opcode, pong.payload),
        (Opcode::Pong, b"\"x\"".to_vec())
    );

    drop(p);
    server.shutdown().await;
    let lines = lines.lock();
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("aura-serve connection peer=127.0.0.1:"),
        "{}",
        lines[0]
    );
    assert!(
        lines[0].ends_with("close=eof") || lines[0].ends_with("close=shutdown"),
        "{}",
        lines[0]
    );
    assert!(lines[0].contains("requests=19"), "{}", lines[0]);
}

#[tokio::test]
async fn auth_gates_and_token_never_logged() {
    let config = ServerConfig {
        token: Some(TokenVerifier::new("s3cret").unwrap()),
        ..ServerConfig::default()
    };
    let (server, lines) = start(config).await;
    let mut p = Peer::connect(&server).await;
    let (_, _, ack) = p
        .json(
            Opcode::Hello,
            0,
            &json!({"client_version":"t","protocol_version":1,"auth_token":"wrong"}),
        )
        .await;
    assert_eq!(
        (ack["auth_required"].clone(), ack["authenticated"].clone()),
        (json!(true), json!(false))
    );
    let reply = p
        .call(
            Opcode::Query,
            0,
            &json!({"query":"find","collection":"Doc","limit":10}),
        )
        .await;
    assert_eq!(
        String::from_utf8(reply.payload).unwrap(),
        r#"{"code":"unauthenticated","message":"unauthenticated: authentication required before this operation","retryable":false}"#
    );
    let (op, _, err) = p.json(Opcode::Auth, 0, &json!({"token":"nope"})).await;
    assert_eq!(
        (op, err),
        (
            Opcode::Error,
            json!({"code":"invalid_credentials","message":"invalid credentials","retryable":false})
        )
    );
    let (op, _, ok) = p.json(Opcode::Auth, 0, &json!({"token":"s3cret"})).await;
    assert_eq!(
        (op, ok),
        (Opcode::AuthResult, json!({"authenticated": true}))
    );
    let (op, _, _) = p.json(Opcode::SchemaList, 0, &Json::Null).await;
    assert_eq!(op, Opcode::Ok);
    drop(p);
    server.shutdown().await;
    let lines = lines.lock();
    assert!(lines
        .iter()
        .all(|l| !l.contains("s3cret") && !l.contains("nope")));
}

#[tokio::test]
async fn fatal_framing_errors_close_the_connection() {
    let (server, _) = start(ServerConfig {
        max_payload_bytes: 64,
        ..ServerConfig::default()
    })
    .await;
    // Header CRC mismatch → the exact 7.8 frame, then close.
    let mut p = Peer::connect(&server).await;
    let mut bytes = Frame::new(Opcode::Ping, 1, 0, Vec::new()).encode().unwrap();
    bytes[20] ^= 0xFF;
    p.stream.write_all(&bytes).await.unwrap();
    let fatal = read_frame(&mut p.stream, 1 << 20).await.unwrap().unwrap();
    assert_eq!(
        (fatal.opcode, fatal.request_id, fatal.txn_id),
        (Opcode::Error, 0, 0)
    );
    assert_eq!(
        String::from_utf8(fatal.payload).unwrap(),
        r#"{"code":"corruption","message":"corruption detected: header checksum mismatch"}"#
    );
    assert!(read_frame(&mut p.stream, 1 << 20).await.unwrap().is_none());
    // Oversized: refused from the header alone.
    let mut p = Peer::connect(&server).await;
    let bytes = Frame::new(Opcode::Ping, 1, 0, vec![0; 65])
        .encode()
        .unwrap();
    p.stream.write_all(&bytes[..44]).await.unwrap();
    let fatal = read_frame(&mut p.stream, 1 << 20).await.unwrap().unwrap();
    assert_eq!(
        String::from_utf8(fatal.payload).unwrap(),
        r#"{"code":"limit_exceeded","message":"limit exceeded: payload length 65 exceeds max 64"}"#
    );
    // EOF inside the payload → io early eof.
    let mut p = Peer::connect(&server).await;
    let bytes = Frame::new(Opcode::Ping, 1, 0, vec![0; 10])
        .encode()
        .unwrap();
    p.stream.write_all(&bytes[..50]).await.unwrap();
    p.stream.shutdown().await.unwrap();
    let fatal = read_frame(&mut p.stream, 1 << 20).await.unwrap().unwrap();
    assert_eq!(
        String::from_utf8(fatal.payload).unwrap(),
        r#"{"code":"io","message":"io error: early eof"}"#
    );
    server.shutdown().await;
}

#[tokio::test]
async fn disconnect_rolls_back_open_transactions() {
    let (server, _) = start(ServerConfig::default()).await;
    let mut a = Peer::connect(&server).await;
    a.json(Opcode::SchemaCreate, 0, &doc_schema()).await;
    let (_, txn, _) = a.json(Opcode::TxnBegin, 0, &Json::Null).await;
    a.json(
        Opcode::Mutate,
        txn,
        &json!({"mutation":"insert","collection":"Doc","fields":{"id":1}}),
    )
    .await;
    let mut b = Peer::connect(&server).await;
    // Another connection cannot use it.
    let (op, echo, err) = b.json(Opcode::TxnCommit, txn, &Json::Null).await;
    assert_eq!(
        (op, echo, err["code"].clone()),
        (Opcode::Error, txn, json!("not_found"))
    );
    drop(a);
    // Uncommitted writes are never visible, before or after the close.
    let (_, _, n) = b
        .json(
            Opcode::Query,
            0,
            &json!({"query":"count","collection":"Doc"}),
        )
        .await;
    assert_eq!(n, json!({"count": 0}));
    server.shutdown().await;
}

fn text_schema() -> Json {
    json!({"name":"Txt","fields":[
        {"name":"id","field_type":{"kind":"int"},"primary_key":true,"nullable":false},
        {"name":"cat","field_type":{"kind":"string"}},
        {"name":"n","field_type":{"kind":"int"}},
        {"name":"body","field_type":{"kind":"string"}},
        {"name":"emb","field_type":{"kind":"vector","dim":3}}],
        "indexes":[{"path":"body","kind":"full_text"}]})
}

async fn seed_text(peer: &mut Peer) {
    peer.json(Opcode::SchemaCreate, 0, &text_schema()).await;
    let records = json!([
        {"id":1,"cat":"a","n":1,"body":"vector index for refunds","emb":{"$vector":[1,0,0]}},
        {"id":2,"cat":"b","n":5,"body":"the vector database index index","emb":{"$vector":[0,1,0]}},
        {"id":3,"cat":"a","n":3,"body":"cooking recipes","emb":{"$vector":[0.7,0.7,0]}}]);
    let (op, _, _) = peer
        .json(
            Opcode::Mutate,
            0,
            &json!({"mutation":"bulk_insert","collection":"Txt","records":records}),
        )
        .await;
    assert_eq!(op, Opcode::Ok);
}

fn ids_and_ranks(page: &Json) -> Vec<(i64, u64)> {
    page["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["fields"]["id"].as_i64().unwrap(),
                r["rank"].as_u64().unwrap(),
            )
        })
        .collect()
}

#[tokio::test]
async fn ranked_text_hybrid_pages_and_aggregates() {
    let (server, _) = start(ServerConfig::default()).await;
    let mut peer = Peer::connect(&server).await;
    let (_, _, ack) = peer
        .json(
            Opcode::Hello,
            0,
            &json!({"client_version":"t","protocol_version":1}),
        )
        .await;
    let caps: Vec<&str> = ack["capabilities"]["capabilities"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Json::as_str)
        .collect();
    for cap in [
        "full_text_bm25_ranking",
        "hybrid_search",
        "aggregations_and_facets",
        "ranked_pagination",
        "group_by_aggregation",
    ] {
        assert!(caps.contains(&cap), "{cap}");
    }
    seed_text(&mut peer).await;
    // BM25 (API.md §15 check 24 on the same data).
    let (op, _, page) = peer
        .json(
            Opcode::Query,
            0,
            &json!({"query":"find","collection":"Txt",
            "text_search":{"field":"body","query":"vector index"}}),
        )
        .await;
    assert_eq!(op, Opcode::QueryResult);
    assert_eq!(ids_and_ranks(&page), vec![(2, 1), (1, 2)]);
    assert!((page["rows"][0]["score"].as_f64().unwrap() - 0.995433).abs() < 1e-6);
    // Hybrid: component scores on the rows (check 27).
    let (_, _, page) = peer
        .json(
            Opcode::Query,
            0,
            &json!({"query":"find","collection":"Txt",
            "hybrid":{"text_field":"body","text_query":"vector","vector_field":"emb",
                      "vector":[1,0,0],"top_k":10}}),
        )
        .await;
    assert_eq!(ids_and_ranks(&page), vec![(1, 1), (3, 2), (2, 3)]);
    assert_eq!(page["rows"][0]["vector_score"], json!(1.0));
    assert!(page["rows"][1].get("text_score").is_none());
    // Pages: ranks continue, the last page has no next_cursor.
    let find = json!({"collection":"Txt","vector":{"field":"emb","query":[1,0,0],"k":3,"metric":"cosine"}});
    let (_, _, first) = peer
        .json(
            Opcode::Query,
            0,
            &json!({"query":"search_page","find":find,"page_size":2}),
        )
        .await;
    assert_eq!(ids_and_ranks(&first), vec![(1, 1), (3, 2)]);
    let cursor = first["next_cursor"].clone();
    let (_, _, second) = peer
        .json(
            Opcode::Query,
            0,
            &json!({"query":"search_page","find":find,"page_size":2,"cursor":cursor}),
        )
        .await;
    assert_eq!(ids_and_ranks(&second), vec![(2, 3)]);
    assert!(second.get("next_cursor").is_none());
    let (op, _, err) = peer
        .json(
            Opcode::Query,
            0,
            &json!({"query":"search_page","find":find,"page_size":2,"cursor":"zz"}),
        )
        .await;
    assert_eq!(
        (op, err["code"].as_str()),
        (Opcode::Error, Some("invalid_request"))
    );
    // Aggregate: facets, metrics and groups in the AWP shape.
    let (op, _, agg) = peer
        .json(
            Opcode::Query,
            0,
            &json!({"query":"aggregate","collection":"Txt",
            "facets":[{"field":"cat"}],"metrics":[{"op":"count"},{"op":"avg","field":"n"}],
            "group_by":"cat","group_limit":1}),
        )
        .await;
    assert_eq!(op, Opcode::QueryResult);
    assert_eq!(agg["matched"], json!(3));
    assert_eq!(
        agg["facets"][0]["buckets"],
        json!([{"value":"a","count":2},{"value":"b","count":1}])
    );
    assert_eq!(
        agg["metrics"],
        json!([{"op":"count","value":3},{"op":"avg","field":"n","value":3.0}])
    );
    assert_eq!(agg["groups"]["group_count_total"], json!(2));
    assert_eq!(
        agg["groups"]["groups"],
        json!([{"key":"a","count":2,"metrics":[
        {"op":"count","value":2},{"op":"avg","field":"n","value":2.0}]}])
    );
    let (_, _, scoped) = peer
        .json(
            Opcode::Query,
            0,
            &json!({"query":"aggregate","collection":"Txt",
            "text_search":{"field":"body","query":"vector index"},"metrics":[{"op":"count"}]}),
        )
        .await;
    assert_eq!(
        (scoped["search_scoped"].clone(), scoped["matched"].clone()),
        (json!(true), json!(2))
    );
    server.shutdown().await;
}

/// Options of a client of `server` (plaintext, no token).
fn client_options(server: &Listener) -> aura_wire::client::ClientOptions {
    aura_wire::client::ClientOptions {
        host: "127.0.0.1".into(),
        port: server.local_addr().port(),
        tls: None,
        token: None,
        connect_timeout: std::time::Duration::from_secs(5),
        request_timeout: std::time::Duration::from_secs(5),
        max_payload: 1 << 24,
        client_version: "t".into(),
    }
}

#[tokio::test]
async fn a_deferred_cursor_close_precedes_the_next_request() {
    let (server, _) = start(ServerConfig {
        page_size: 2,
        ..ServerConfig::default()
    })
    .await;
    let opts = client_options(&server);
    let conn = aura_wire::client::Connection::connect(&opts).await.unwrap();
    conn.request(Opcode::SchemaCreate, 0, &text_schema())
        .await
        .unwrap();
    for id in 1..=5 {
        conn.request(
            Opcode::Mutate,
            0,
            &json!({"mutation":"insert","collection":"Txt","fields":{"id":id}}),
        )
        .await
        .unwrap();
    }
    let page = conn
        .request(
            Opcode::Query,
            0,
            &json!({"query":"find","collection":"Txt"}),
        )
        .await
        .unwrap()
        .json()
        .unwrap();
    let id = page["cursor_id"].as_u64().unwrap();
    assert_eq!(server.open_cursors(), 1);
    conn.defer(Opcode::CursorClose, 0, &json!({"cursor_id": id}));
    // The close is queued ahead of this request; the server answers in
    // order, so the cursor is gone when the PONG arrives.
    conn.request(Opcode::Ping, 0, &Json::Null).await.unwrap();
    assert_eq!(server.open_cursors(), 0);
    // With no request after it, the close is still sent.
    let page = conn
        .request(
            Opcode::Query,
            0,
            &json!({"query":"find","collection":"Txt"}),
        )
        .await
        .unwrap()
        .json()
        .unwrap();
    assert_eq!(server.open_cursors(), 1);
    conn.defer(
        Opcode::CursorClose,
        0,
        &json!({"cursor_id": page["cursor_id"]}),
    );
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    while server.open_cursors() != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the close never arrived"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    conn.close().await;
    server.shutdown().await;
}

#[tokio::test]
async fn a_request_abandoned_while_it_is_written_leaves_the_connection_usable() {
    let (server, _) = start(ServerConfig::default()).await;
    let opts = client_options(&server);
    let conn = Arc::new(aura_wire::client::Connection::connect(&opts).await.unwrap());
    // Far more than the socket buffers hold: the frame is still being
    // written (the server must read first) when its request is dropped.
    let big = json!({"query": "find", "collection": "Nope", "pad": "x".repeat(12 << 20)});
    let sender = conn.clone();
    let request = tokio::spawn(async move { sender.request(Opcode::Query, 0, &big).await });
    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    request.abort();
    assert!(
        request.await.is_err(),
        "the request was still being written"
    );
    // The abandoned frame was finished on the wire, so this one is read
    // whole and answered.
    let pong = conn.request(Opcode::Ping, 0, &Json::Null).await.unwrap();
    assert_eq!(pong.opcode, Opcode::Pong);
    server.shutdown().await;
}

/// One QUERY with `text` as its payload, as sent: its opcode and JSON.
async fn raw_query(peer: &mut Peer, text: &str) -> (Opcode, Json) {
    let id = peer.next;
    peer.next += 1;
    let frame = Frame::new(Opcode::Query, id, 0, text.as_bytes().to_vec());
    write_frame(&mut peer.stream, &frame).await.unwrap();
    let reply = read_frame(&mut peer.stream, 1 << 24)
        .await
        .unwrap()
        .unwrap();
    let body: Json = serde_json::from_slice(&reply.payload).unwrap();
    (reply.opcode, body)
}

/// A plain find is read typed; whatever that reader leaves to the generic
/// one (other keys, repeated keys, bad values, unknown names, a foreign
/// transaction) is answered as before, errors included.
#[tokio::test]
async fn finds_answer_alike_on_both_readers() {
    let (server, _) = start(ServerConfig::default()).await;
    let mut p = Peer::connect(&server).await;
    p.json(Opcode::SchemaCreate, 0, &doc_schema()).await;
    let records: Vec<Json> = (1..=3)
        .map(|i| json!({"id": i, "status": "s", "at": {"$timestamp": i}}))
        .collect();
    p.json(
        Opcode::Mutate,
        0,
        &json!({"mutation":"bulk_insert","collection":"Doc","records":records}),
    )
    .await;
    let typed = raw_query(
        &mut p,
        r#"{"query":"find","collection":"Doc","filter":{"type":"compare","field":"id","op":"gte","value":2},"limit":5}"#,
    )
    .await;
    let generic = raw_query(
        &mut p,
        r#"{"query":"find","collection":"Doc","filter":{"type":"compare","field":"id","op":"gte","value":2},"limit":5,"projection":null}"#,
    )
    .await;
    assert_eq!(typed.0, Opcode::QueryResult);
    assert_eq!(typed, generic);
    assert_eq!(typed.1["rows"].as_array().unwrap().len(), 2);
    assert_eq!(typed.1["rows"][0]["fields"]["at"], json!({"$timestamp": 2}));
    // Repeated keys: the last one counts (a JSON object's reading).
    let (_, twice) = raw_query(
        &mut p,
        r#"{"query":"find","collection":"Doc","limit":9,"limit":1}"#,
    )
    .await;
    assert_eq!(twice["rows"].as_array().unwrap().len(), 1);
    let errors = [
        (
            r#"{"query":"find","collection":"Nope"}"#,
            "not_found",
            "not found: collection Nope",
        ),
        (
            r#"{"query":"find","collection":"Doc","limit":-1}"#,
            "protocol",
            "payload deserialization failed: 'limit' must be a non-negative integer",
        ),
        (
            r#"{"query":"find","collection":"Doc","filter":{"type":"compare","field":"id","op":"zz","value":1}}"#,
            "protocol",
            "payload deserialization failed: unknown variant `zz`",
        ),
        (
            r#"{"query":"find","collection":"Doc","filter":{"type":"compare","field":"id","op":"in","value":1}}"#,
            "invalid_request",
            "invalid request: 'in' needs an array value",
        ),
        (
            r#"{"query":"find","collection":"Doc","limit":2000000}"#,
            "limit_exceeded",
            "limit exceeded: limit 2000000 exceeds max 1000000",
        ),
        (
            r#"{"query":"find","collection":"Doc""#,
            "protocol",
            "protocol error: payload deserialization failed: EOF while parsing an object at line 1 column 34",
        ),
    ];
    for (payload, code, message) in errors {
        let (op, body) = raw_query(&mut p, payload).await;
        assert_eq!(op, Opcode::Error, "{payload}");
        assert_eq!(body["code"], json!(code), "{payload}");
        assert_eq!(body["message"], json!(message), "{payload}");
    }
    // A transaction this connection does not hold.
    let body = br#"{"query":"find","collection":"Doc"}"#.to_vec();
    let id = p.next;
    write_frame(&mut p.stream, &Frame::new(Opcode::Query, id, 42, body))
        .await
        .unwrap();
    let reply = read_frame(&mut p.stream, 1 << 24).await.unwrap().unwrap();
    assert_eq!((reply.opcode, reply.txn_id), (Opcode::Error, 42));
    let body: Json = serde_json::from_slice(&reply.payload).unwrap();
    assert_eq!(body["message"], json!("not found: transaction 42"));
}
