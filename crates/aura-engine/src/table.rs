//! One table: rows in primary-key order plus its unique and secondary
//! indexes, all persistent maps so a clone is an O(1) snapshot.

use std::collections::HashSet;
use std::ops::Bound;
use std::sync::Arc;

use aura_core::{Error, FieldDef, FieldKind, Key, ModelSchema, Result, Row, Value};
use imbl::{OrdMap, OrdSet};

use crate::deadline::Deadline;
use crate::search::SearchState;

/// Row store: every table of one snapshot, by model name.
pub(crate) type Tables = imbl::HashMap<String, Table>;

/// The table of `model`, or the §9 "Unknown model" schema error.
pub(crate) fn lookup<'t>(tables: &'t Tables, model: &str) -> Result<&'t Table> {
    tables.get(model).ok_or_else(|| unknown_model(model))
}

pub(crate) fn lookup_mut<'t>(tables: &'t mut Tables, model: &str) -> Result<&'t mut Table> {
    tables.get_mut(model).ok_or_else(|| unknown_model(model))
}

pub(crate) fn unknown_model(model: &str) -> Error {
    Error::schema(format!("Unknown model '{model}'")).with_context("model", model)
}

/// Secondary-index entries sort by value, then by primary key; `Min`/`Max`
/// bracket all primary keys of one value for range scans.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum PkBound {
    Min,
    Pk(Key),
    Max,
}

/// value -> primary key for one `unique` field; nulls are not indexed.
#[derive(Debug, Clone)]
pub(crate) struct UniqueIndex {
    pub pos: usize,
    pub map: OrdMap<Key, Key>,
}

/// (value, primary key) pairs for one `index=True` field, nulls included.
#[derive(Debug, Clone)]
pub(crate) struct SecondaryIndex {
    pub pos: usize,
    pub set: OrdSet<(Key, PkBound)>,
}

impl SecondaryIndex {
    /// Primary keys of rows whose value equals `value`.
    pub fn lookup<'a>(&'a self, value: &Key) -> impl Iterator<Item = &'a Key> + 'a {
        let lo = (value.clone(), PkBound::Min);
        let hi = (value.clone(), PkBound::Max);
        self.set.range(lo..=hi).filter_map(|(_, pk)| match pk {
            PkBound::Pk(k) => Some(k),
            _ => None,
        })
    }

    /// Primary keys of rows whose value lies within the bounds.
    pub fn range<'a>(
        &'a self,
        lower: &Bound<Key>,
        upper: &Bound<Key>,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        let lo = match lower {
            Bound::Included(v) => Bound::Included((v.clone(), PkBound::Min)),
            Bound::Excluded(v) => Bound::Excluded((v.clone(), PkBound::Max)),
            Bound::Unbounded => Bound::Unbounded,
        };
        let hi = match upper {
            Bound::Included(v) => Bound::Included((v.clone(), PkBound::Max)),
            Bound::Excluded(v) => Bound::Excluded((v.clone(), PkBound::Min)),
            Bound::Unbounded => Bound::Unbounded,
        };
        self.set.range((lo, hi)).filter_map(|(_, pk)| match pk {
            PkBound::Pk(k) => Some(k),
            _ => None,
        })
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Table {
    pub schema: Arc<ModelSchema>,
    /// Position of the primary key (declared, else `id`).
    pub pk: Option<usize>,
    pub rows: OrdMap<Key, Row>,
    pub uniques: Vec<UniqueIndex>,
    pub indexes: Vec<SecondaryIndex>,
    /// Vector columns, HNSW graphs and BM25 indexes (see `search`).
    pub search: SearchState,
}

impl Table {
    pub fn new(schema: Arc<ModelSchema>) -> Self {
        let pk = schema.pk_index();
        let is_pk = |i: usize| Some(i) == pk;
        let uniques = (0..schema.fields.len())
            .filter(|&i| schema.fields[i].unique && !is_pk(i))
            .map(|pos| UniqueIndex {
                pos,
                map: OrdMap::new(),
            })
            .collect();
        let indexes = (0..schema.fields.len())
            .filter(|&i| schema.fields[i].index && !schema.fields[i].unique && !is_pk(i))
            .map(|pos| SecondaryIndex {
                pos,
                set: OrdSet::new(),
            })
            .collect();
        Table {
            search: SearchState::new(&schema),
            schema,
            pk,
            rows: OrdMap::new(),
            uniques,
            indexes,
        }
    }

    /// Primary-key value of a stored row.
    pub fn pk_of(&self, row: &[Value]) -> Key {
        Key(self
            .pk
            .and_then(|p| row.get(p))
            .cloned()
            .unwrap_or(Value::Null))
    }

    /// Row-local checks (arity, primary key, NOT NULL, vector dimension);
    /// returns the row's primary key.
    pub fn validate(&self, row: &[Value]) -> Result<Key> {
        let schema = &self.schema;
        if row.len() != schema.fields.len() {
            return Err(Error::validation(format!(
                "{} row has {} values, expected {}",
                schema.name,
                row.len(),
                schema.fields.len()
            )));
        }
        let pk = match self.pk.map(|p| &row[p]) {
            Some(v) if !v.is_null() => Key(v.clone()),
            _ => return Err(schema.missing_pk()),
        };
        for (field, value) in schema.fields.iter().zip(row) {
            check_value(schema, field, value)?;
        }
        Ok(pk)
    }

    /// The first unique field whose value is held by another row.
    pub fn unique_conflict(&self, row: &[Value], pk: &Key) -> Option<&FieldDef> {
        self.uniques.iter().find_map(|u| {
            let value = &row[u.pos];
            let taken = !value.is_null()
                && u.map
                    .get(&Key(value.clone()))
                    .is_some_and(|owner| owner != pk);
            taken.then(|| &self.schema.fields[u.pos])
        })
    }

    /// Stores a validated row whose primary key is free; unique fields are
    /// checked before anything changes.
    pub fn insert(&mut self, row: Row, pk: Key) -> Result<()> {
        if let Some(field) = self.unique_conflict(&row, &pk) {
            return Err(not_unique(&self.schema, field));
        }
        for u in &mut self.uniques {
            let value = &row[u.pos];
            if !value.is_null() {
                u.map.insert(Key(value.clone()), pk.clone());
            }
        }
        for ix in &mut self.indexes {
            ix.set
                .insert((Key(row[ix.pos].clone()), PkBound::Pk(pk.clone())));
        }
        self.search.insert(&row, &pk);
        self.rows.insert(pk, row);
        Ok(())
    }

    /// Removes a row and its index entries.
    pub fn remove(&mut self, pk: &Key) -> Option<Row> {
        let row = self.rows.remove(pk)?;
        for u in &mut self.uniques {
            let value = Key(row[u.pos].clone());
            if u.map.get(&value) == Some(pk) {
                u.map.remove(&value);
            }
        }
        for ix in &mut self.indexes {
            ix.set
                .remove(&(Key(row[ix.pos].clone()), PkBound::Pk(pk.clone())));
        }
        self.search.remove(pk, &row);
        Some(row)
    }

    /// Primary keys of rows whose field `pos` holds one of `values`, through
    /// an index when the field has one, else in one pass over the rows.
    pub fn pks_where_in(
        &self,
        pos: usize,
        values: &HashSet<Key>,
        deadline: &Deadline,
    ) -> Result<Vec<Key>> {
        if let Some(u) = self.uniques.iter().find(|u| u.pos == pos) {
            return Ok(values
                .iter()
                .filter_map(|v| u.map.get(v).cloned())
                .collect());
        }
        if let Some(ix) = self.indexes.iter().find(|ix| ix.pos == pos) {
            return Ok(values.iter().flat_map(|v| ix.lookup(v).cloned()).collect());
        }
        let mut pks = Vec::new();
        for (pk, row) in self.rows.iter() {
            deadline.step()?;
            if !row[pos].is_null() && values.contains(&Key(row[pos].clone())) {
                pks.push(pk.clone());
            }
        }
        Ok(pks)
    }
}

pub fn check_value(schema: &ModelSchema, field: &FieldDef, value: &Value) -> Result<()> {
    match value {
        Value::Null if !field.nullable => Err(Error::constraint(format!(
            "{}.{} cannot be null",
            schema.name, field.attr
        ))
        .with_context("model", schema.name.as_str())
        .with_context("field", field.attr.as_str())),
        Value::Vector(v) if field.kind == FieldKind::Vector => match field.vector_dim {
            Some(dim) if dim != v.len() => Err(Error::validation(format!(
                "Vector field '{}' expects dimension {dim}, got {}",
                field.attr,
                v.len()
            ))
            .with_context("expected", dim)
            .with_context("actual", v.len())),
            _ => Ok(()),
        },
        _ => Ok(()),
    }
}

pub fn duplicate_pk(schema: &ModelSchema) -> Error {
    Error::constraint(format!(
        "{} already has a row with this primary key",
        schema.name
    ))
    .with_context("model", schema.name.as_str())
}

pub fn not_unique(schema: &ModelSchema, field: &FieldDef) -> Error {
    Error::constraint(format!("{}.{} must be unique", schema.name, field.attr))
        .with_context("model", schema.name.as_str())
        .with_context("field", field.attr.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_core::FieldKind;

    fn schema() -> Arc<ModelSchema> {
        Arc::new(ModelSchema {
            name: "U".into(),
            primary_key: Some("id".into()),
            fields: vec![
                FieldDef::new("id", FieldKind::Int),
                FieldDef::new("email", FieldKind::Str).unique().nullable(),
                FieldDef::new("age", FieldKind::Int).indexed().nullable(),
            ],
            relationships: vec![],
        })
    }

    fn row(id: i64, email: Option<&str>, age: Option<i64>) -> Row {
        Arc::from(vec![
            Value::Int(id),
            email.map_or(Value::Null, Value::str),
            age.map_or(Value::Null, Value::Int),
        ])
    }

    fn put(t: &mut Table, r: Row) -> Result<()> {
        let pk = t.validate(&r)?;
        t.insert(r, pk)
    }

    #[test]
    fn indexes_follow_inserts_and_removes() {
        let mut t = Table::new(schema());
        put(&mut t, row(1, Some("a"), Some(30))).unwrap();
        put(&mut t, row(2, None, Some(30))).unwrap();
        put(&mut t, row(3, None, None)).unwrap();
        assert_eq!(t.uniques[0].map.len(), 1, "nulls are not unique-indexed");
        let thirty: Vec<_> = t.indexes[0].lookup(&Key(Value::Int(30))).cloned().collect();
        assert_eq!(thirty, vec![Key(Value::Int(1)), Key(Value::Int(2))]);
        let err = put(&mut t, row(4, Some("a"), None)).unwrap_err();
        assert_eq!(err.message, "U.email must be unique");
        assert!(
            t.rows.get(&Key(Value::Int(4))).is_none(),
            "nothing stored on failure"
        );
        t.remove(&Key(Value::Int(1)));
        assert!(t.uniques[0].map.is_empty());
        assert_eq!(t.indexes[0].lookup(&Key(Value::Int(30))).count(), 1);
        put(&mut t, row(4, Some("a"), None)).unwrap();
    }

    #[test]
    fn range_scans_bracket_values() {
        let mut t = Table::new(schema());
        for (id, age) in [(1, 10), (2, 20), (3, 20), (4, 30)] {
            put(&mut t, row(id, None, Some(age))).unwrap();
        }
        let ix = &t.indexes[0];
        let ids = |lo: Bound<Key>, hi: Bound<Key>| -> Vec<i64> {
            ix.range(&lo, &hi)
                .map(|k| match k.0 {
                    Value::Int(i) => i,
                    _ => -1,
                })
                .collect()
        };
        let v = |i: i64| Key(Value::Int(i));
        assert_eq!(ids(Bound::Excluded(v(10)), Bound::Unbounded), vec![2, 3, 4]);
        assert_eq!(
            ids(Bound::Included(v(20)), Bound::Excluded(v(30))),
            vec![2, 3]
        );
        assert_eq!(ids(Bound::Unbounded, Bound::Included(v(20))), vec![1, 2, 3]);
    }

    #[test]
    fn validation_errors() {
        let t = Table::new(schema());
        let short: Row = Arc::from(vec![Value::Int(1)]);
        assert_eq!(
            t.validate(&short).unwrap_err().code,
            aura_core::ErrorCode::ValidationError
        );
        let no_pk: Row = Arc::from(vec![Value::Null, Value::Null, Value::Null]);
        assert_eq!(
            t.validate(&no_pk).unwrap_err().message,
            "U insert is missing primary key 'id'"
        );
    }
}
