//! `Request::not_served`: the one error a backend gives for a request it
//! does not run through `execute`.

use aura_core::ir::Request;
use aura_core::ErrorCode;
use serde_json::json;

fn request(value: serde_json::Value) -> Request {
    Request::from_json(value).expect("valid IR")
}

#[test]
fn derived_operations_name_their_capability() {
    let traverse = request(json!({
        "operation": "traverse", "model": "M", "start": [], "steps": ["a"], "max_depth": 5
    }));
    let err = traverse.not_served("redis");
    assert_eq!(err.code, ErrorCode::BackendCapabilityError);
    assert_eq!(
        err.message,
        "Backend 'redis' does not support graph traversal"
    );
    assert_eq!(
        err.context,
        vec![
            ("backend".to_owned(), json!("redis")),
            ("capability".to_owned(), json!("graph_traversal"))
        ]
    );
    let aggregate = request(json!({"operation": "aggregate", "model": "M"}));
    assert_eq!(
        aggregate.not_served("sqlite").message,
        "Backend 'sqlite' does not support aggregations and facets"
    );
    let page = request(json!({"operation": "search_page", "model": "M", "page_size": 2}));
    assert_eq!(
        page.not_served("auradb").message,
        "Backend 'auradb' does not support ranked pagination"
    );
}

#[test]
fn other_operations_are_query_errors() {
    let insert = request(json!({"operation": "insert", "model": "M", "rows": []}));
    let err = insert.not_served("memory");
    assert_eq!(err.code, ErrorCode::QueryError);
    assert_eq!(
        err.message,
        "operation 'insert' cannot run through execute()"
    );
}
