//! Ranked-page cursors (API.md §5.2): hex of the UTF-8 JSON
//! `{"s": last_score, "k": last_key, "f": fingerprint}`. The fingerprint is
//! FNV-1a-64 over the sorted-key compact JSON of the query's `model,
//! filters, vector, text, text_search, hybrid`, so a cursor only resumes
//! the query that issued it.

use aura_core::ir::Select;
use aura_core::{Error, Result, Value};
use serde_json::{json, Map, Value as Json};

use super::collect::After;

const FINGERPRINT_KEYS: [&str; 6] = [
    "model",
    "filters",
    "vector",
    "text",
    "text_search",
    "hybrid",
];

fn sorted(json: &Json) -> Json {
    match json {
        Json::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let out: Map<String, Json> = keys
                .into_iter()
                .map(|k| (k.clone(), sorted(&map[k])))
                .collect();
            Json::Object(out)
        }
        Json::Array(items) => Json::Array(items.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        hash ^= u64::from(*b);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash
}

/// The query's fingerprint as 16 hex digits.
pub(crate) fn fingerprint(q: &Select) -> String {
    let full = serde_json::to_value(q).unwrap_or(Json::Null);
    let mut picked = Map::new();
    for key in FINGERPRINT_KEYS {
        if let Some(v) = full.get(key) {
            picked.insert(key.to_owned(), v.clone());
        }
    }
    let text = sorted(&Json::Object(picked)).to_string();
    format!("{:016x}", fnv1a64(text.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if text.len() % 2 != 0 {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect()
}

pub(crate) fn encode(score: f64, key: &Value, fingerprint: &str) -> String {
    let body = json!({"s": score, "k": key.to_json(), "f": fingerprint});
    hex(body.to_string().as_bytes())
}

fn invalid() -> Error {
    Error::query("invalid cursor token")
}

/// The position a cursor resumes after; errors for a malformed cursor or
/// one issued by another query.
pub(crate) fn decode(token: &Json, fingerprint: &str) -> Result<After> {
    let text = token.as_str().ok_or_else(invalid)?;
    let bytes = unhex(text).ok_or_else(invalid)?;
    let body: Json = serde_json::from_slice(&bytes).map_err(|_| invalid())?;
    let score = body.get("s").and_then(Json::as_f64).ok_or_else(invalid)?;
    let key = body.get("k").ok_or_else(invalid)?;
    let issued_for = body.get("f").and_then(Json::as_str).ok_or_else(invalid)?;
    if issued_for != fingerprint {
        return Err(Error::query("cursor token does not belong to this query"));
    }
    let key = Value::from_json_untyped(key).map_err(|_| invalid())?;
    Ok(After { score, key })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_are_bound_to_their_query() {
        let q = Select::new("Doc");
        let fp = fingerprint(&q);
        assert_eq!(fp.len(), 16);
        let token = encode(0.5, &Value::Int(7), &fp);
        let after = decode(&Json::String(token.clone()), &fp).unwrap();
        assert_eq!(
            after,
            After {
                score: 0.5,
                key: Value::Int(7)
            }
        );
        let other = fingerprint(&Select::new("Other"));
        let err = decode(&Json::String(token), &other).unwrap_err();
        assert_eq!(err.message, "cursor token does not belong to this query");
        for bad in [json!("zz"), json!("abc"), json!(3), json!(hex(b"{}"))] {
            assert_eq!(
                decode(&bad, &fp).unwrap_err().message,
                "invalid cursor token"
            );
        }
    }

    #[test]
    fn fingerprint_ignores_paging_and_key_order() {
        let mut a = Select::new("Doc");
        a.limit = Some(3);
        a.page_size = Some(2);
        assert_eq!(fingerprint(&a), fingerprint(&Select::new("Doc")));
        assert_eq!(
            sorted(&json!({"b": 1, "a": {"d": 2, "c": 3}})).to_string(),
            r#"{"a":{"c":3,"d":2},"b":1}"#
        );
    }
}
