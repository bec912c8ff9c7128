//! Resolving a field reference (storage or attribute name, optional document
//! path) to a row position once per query, and reading it from rows.

use aura_core::{Error, ModelSchema, Result, Value};

static NULL: Value = Value::Null;

/// A resolved field: row position plus a document path into map values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldAccess {
    pub pos: usize,
    pub path: Option<Box<[String]>>,
}

pub(crate) fn no_field(schema: &ModelSchema, name: &str) -> Error {
    Error::query(format!("{} has no field '{name}'", schema.name))
        .with_context("model", schema.name.as_str())
        .with_context("field", name)
}

impl FieldAccess {
    /// Resolves `name` (storage name first, then attribute; a dotted name
    /// `doc.a.b` means field `doc` with path `a.b`) plus an explicit path.
    pub fn resolve(schema: &ModelSchema, name: &str, path: Option<&[String]>) -> Result<Self> {
        let (pos, mut segments) = match schema.field_index(name) {
            Some(pos) => (pos, Vec::new()),
            None => {
                let (head, tail) = name.split_once('.').ok_or_else(|| no_field(schema, name))?;
                let pos = schema
                    .field_index(head)
                    .ok_or_else(|| no_field(schema, name))?;
                (pos, tail.split('.').map(str::to_owned).collect())
            }
        };
        segments.extend(path.unwrap_or_default().iter().cloned());
        let path = (!segments.is_empty()).then(|| segments.into_boxed_slice());
        Ok(FieldAccess { pos, path })
    }

    /// The value in `row`; a missing key or a non-map along the path is null.
    pub fn get<'r>(&self, row: &'r [Value]) -> &'r Value {
        let mut value = row.get(self.pos).unwrap_or(&NULL);
        for key in self.path.iter().flatten() {
            value = value.map_get(key).unwrap_or(&NULL);
        }
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_core::{FieldDef, FieldKind};
    use serde_json::json;

    fn schema() -> ModelSchema {
        ModelSchema {
            name: "M".into(),
            primary_key: None,
            fields: vec![
                FieldDef::new("id", FieldKind::Int),
                FieldDef::new("meta", FieldKind::Dict),
            ],
            relationships: vec![],
        }
    }

    #[test]
    fn paths_descend_into_maps() {
        let doc = Value::from_json_untyped(&json!({"a": {"b": 3}, "s": "x"})).unwrap();
        let row = vec![Value::Int(1), doc];
        let path = ["a".to_owned(), "b".to_owned()];
        let access = FieldAccess::resolve(&schema(), "meta", Some(&path)).unwrap();
        assert_eq!(access.get(&row), &Value::Int(3));
        let dotted = FieldAccess::resolve(&schema(), "meta.a.b", None).unwrap();
        assert_eq!(dotted, access);
        let through_str = FieldAccess::resolve(&schema(), "meta.s.x", None).unwrap();
        assert_eq!(through_str.get(&row), &Value::Null);
        let missing = FieldAccess::resolve(&schema(), "meta.zz", None).unwrap();
        assert_eq!(missing.get(&row), &Value::Null);
    }

    #[test]
    fn unknown_field_is_a_query_error() {
        let err = FieldAccess::resolve(&schema(), "nope", None).unwrap_err();
        assert_eq!(err.message, "M has no field 'nope'");
        assert!(FieldAccess::resolve(&schema(), "nope.a", None).is_err());
    }
}
