//! The one raw statement the memory engine understands (API.md §3.3):
//! `SELECT * FROM <Model> [WHERE <field> = $<param>]`, keywords in any case,
//! parameters always bound, never spliced.

use aura_core::ir::{CompareOp, Expr};
use aura_core::{Error, Result, Row};
use serde_json::Value as Json;

use crate::deadline::Deadline;
use crate::select::matching_rows;
use crate::table::Tables;

const SUPPORTED: &str =
    "The memory engine accepts only SELECT * FROM <Model> [WHERE <field> = $<param>]";

/// A parsed raw statement.
#[derive(Debug, PartialEq)]
struct RawSelect<'s> {
    model: &'s str,
    condition: Option<(&'s str, &'s str)>,
}

fn tokens(statement: &str) -> Vec<&str> {
    let trimmed = statement.trim().trim_end_matches(';');
    trimmed
        .split_whitespace()
        .flat_map(|word| split_equals(word))
        .collect()
}

/// `a=$b` -> `a`, `=`, `$b` (the only operator the grammar has).
fn split_equals(word: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let mut rest = word;
    while let Some(at) = rest.find('=') {
        parts.extend([&rest[..at], "="].into_iter().filter(|p| !p.is_empty()));
        rest = &rest[at + 1..];
    }
    if !rest.is_empty() {
        parts.push(rest);
    }
    parts
}

fn parse(statement: &str) -> Result<RawSelect<'_>> {
    let t = tokens(statement);
    let keyword = |i: usize, word: &str| t.get(i).is_some_and(|w| w.eq_ignore_ascii_case(word));
    if !(keyword(0, "select") && t.get(1) == Some(&"*") && keyword(2, "from")) {
        return Err(Error::query(SUPPORTED));
    }
    let model = t.get(3).copied().ok_or_else(|| Error::query(SUPPORTED))?;
    match t.len() {
        4 => Ok(RawSelect {
            model,
            condition: None,
        }),
        8 if keyword(4, "where") && t[6] == "=" && t[7].len() > 1 && t[7].starts_with('$') => {
            Ok(RawSelect {
                model,
                condition: Some((t[5], &t[7][1..])),
            })
        }
        _ => Err(Error::query(SUPPORTED)),
    }
}

/// A parameter by name (object params) or 1-based position (list params).
fn param<'p>(params: &'p Json, name: &str) -> Result<&'p Json> {
    let found = match params {
        Json::Object(map) => map.get(name),
        Json::Array(items) => name
            .parse::<usize>()
            .ok()
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| items.get(i)),
        _ => None,
    };
    found.ok_or_else(|| Error::query(format!("Raw statement parameter '${name}' is not bound")))
}

pub(crate) fn raw(tables: &Tables, statement: &str, params: &Json) -> Result<(String, Vec<Row>)> {
    let parsed = parse(statement)?;
    let filters = match parsed.condition {
        None => Vec::new(),
        Some((field, name)) => vec![Expr::compare(
            CompareOp::Eq,
            Expr::field(parsed.model, field),
            Expr::literal(param(params, name)?.clone()),
        )],
    };
    let rows = matching_rows(tables, parsed.model, &filters, &Deadline::none())?;
    Ok((parsed.model.to_owned(), rows))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn grammar() {
        assert_eq!(
            parse("select * from User").unwrap(),
            RawSelect {
                model: "User",
                condition: None
            }
        );
        assert_eq!(
            parse("  SELECT * FROM User WHERE email=$e; ").unwrap(),
            RawSelect {
                model: "User",
                condition: Some(("email", "e"))
            }
        );
        assert_eq!(
            parse("SELECT * FROM User WHERE email = $e")
                .unwrap()
                .condition,
            Some(("email", "e"))
        );
        for bad in [
            "DELETE FROM User",
            "SELECT id FROM User",
            "SELECT * FROM",
            "SELECT * FROM User WHERE a = 1",
            "SELECT * FROM User WHERE a > $p",
            "SELECT * FROM User; DROP TABLE User",
            "SELECT * FROM User WHERE a = $",
        ] {
            assert_eq!(parse(bad).unwrap_err().message, SUPPORTED, "{bad}");
        }
    }

    #[test]
    fn params_by_name_or_position() {
        assert_eq!(param(&json!({"e": 1}), "e").unwrap(), &json!(1));
        assert_eq!(param(&json!(["a", "b"]), "2").unwrap(), &json!("b"));
        assert!(param(&json!(["a"]), "0").is_err());
        let err = param(&json!({}), "e").unwrap_err();
        assert_eq!(err.message, "Raw statement parameter '$e' is not bound");
    }
}
