//! Rows on the bundled protocol: a row is a JSON array of storage-form
//! values in the model's field order (both sides hold the same schema:
//! the client sent it). Ranked scores and loaded relationships travel in
//! the result's `metadata`, one entry per row.

use aura_core::schema::{ModelSchema, Row};
use aura_core::{Error, ErrorCode, Value};
use aura_engine::{Included, ResultRow, Scores};
use serde_json::{json, Map, Value as Json};

/// A stored row → positional storage-form JSON.
pub fn row_json(row: &Row) -> Json {
    Json::Array(row.iter().map(Value::to_json).collect())
}

fn protocol(message: String) -> Error {
    Error::new(ErrorCode::ProtocolError, message)
}

/// Positional JSON → a row of `schema` (each value bound to its kind).
pub fn row_from_json(json: &Json, schema: &ModelSchema) -> Result<Row, Error> {
    let items = json
        .as_array()
        .ok_or_else(|| protocol(format!("a {} row is not an array", schema.name)))?;
    if items.len() != schema.fields.len() {
        return Err(protocol(format!(
            "a {} row has {} values, the model has {} fields",
            schema.name,
            items.len(),
            schema.fields.len()
        )));
    }
    schema
        .fields
        .iter()
        .zip(items)
        .map(|(f, v)| Value::from_json(v, f.kind))
        .collect::<Result<Vec<_>, _>>()
        .map(Row::from)
}

/// Result rows → (`rows`, `metadata`): scores and includes only when the
/// query produced them.
pub fn result_rows_json(rows: &[ResultRow]) -> (Vec<Json>, Json) {
    let out: Vec<Json> = rows.iter().map(|r| row_json(&r.row)).collect();
    let mut metadata = Map::new();
    if rows.iter().any(|r| r.scores.is_some()) {
        let scores: Vec<Json> = rows
            .iter()
            .map(|r| match r.scores {
                Some(s) => json!({"score": s.score, "text_score": s.text_score, "vector_score": s.vector_score, "rank": s.rank}),
                None => Json::Null,
            })
            .collect();
        metadata.insert("scores".into(), Json::Array(scores));
    }
    if rows.iter().any(|r| !r.includes.is_empty()) {
        let includes: Vec<Json> = rows
            .iter()
            .map(|r| {
                Json::Array(
                    r.includes
                        .iter()
                        .map(|inc| match inc {
                            Included::One { attr, row } => {
                                json!({"attr": attr, "one": row.as_ref().map(row_json)})
                            }
                            Included::Many { attr, rows } => {
                                json!({"attr": attr, "many": rows.iter().map(row_json).collect::<Vec<_>>()})
                            }
                        })
                        .collect(),
                )
            })
            .collect();
        metadata.insert("includes".into(), Json::Array(includes));
    }
    (out, Json::Object(metadata))
}

/// `rows` + `metadata` → result rows of `schema`; `schema_of` resolves the
/// target model of an included relationship by attribute name.
pub fn result_rows_from_json(
    rows: &[Json],
    metadata: &Json,
    schema: &ModelSchema,
    target_of: &dyn Fn(&str) -> Result<std::sync::Arc<ModelSchema>, Error>,
) -> Result<Vec<ResultRow>, Error> {
    let scores = metadata.get("scores").and_then(Json::as_array);
    let includes = metadata.get("includes").and_then(Json::as_array);
    let mut out = Vec::with_capacity(rows.len());
    for (i, row) in rows.iter().enumerate() {
        let scores = scores
            .and_then(|s| s.get(i))
            .filter(|s| !s.is_null())
            .map(|s| Scores {
                score: s.get("score").and_then(Json::as_f64).unwrap_or(0.0),
                text_score: s.get("text_score").and_then(Json::as_f64),
                vector_score: s.get("vector_score").and_then(Json::as_f64),
                rank: s.get("rank").and_then(Json::as_u64).unwrap_or(0),
            });
        let mut loaded = Vec::new();
        for inc in includes
            .and_then(|l| l.get(i))
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
        {
            let attr = inc
                .get("attr")
                .and_then(Json::as_str)
                .ok_or_else(|| protocol("an include without 'attr'".to_owned()))?;
            let target = target_of(attr)?;
            if let Some(many) = inc.get("many").and_then(Json::as_array) {
                let rows = many
                    .iter()
                    .map(|r| row_from_json(r, &target))
                    .collect::<Result<Vec<_>, _>>()?;
                loaded.push(Included::Many {
                    attr: attr.to_owned(),
                    rows,
                });
            } else {
                let row = inc
                    .get("one")
                    .filter(|r| !r.is_null())
                    .map(|r| row_from_json(r, &target))
                    .transpose()?;
                loaded.push(Included::One {
                    attr: attr.to_owned(),
                    row,
                });
            }
        }
        out.push(ResultRow {
            row: row_from_json(row, schema)?,
            scores,
            includes: loaded,
        });
    }
    Ok(out)
}
