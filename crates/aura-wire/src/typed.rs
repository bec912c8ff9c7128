//! Typed (de)serialisation of the hottest AWP payloads: a plain `find`
//! request and the result pages both peers exchange. The generic path
//! (`awp.rs` over `serde_json::Value`) stays the reference: every typed
//! reader here accepts a subset of what it accepts and builds the same
//! result; anything else (unknown or duplicate keys, unexpected types,
//! malformed JSON) makes the typed reader give up, and the caller runs the
//! generic path, which produces the answer or error users always got. The
//! typed writers emit byte for byte what serialising the same payload
//! built as `serde_json` values gives (the client's find request: awp.rs;
//! the server's result rows: the reference writers in this file's tests).

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use aura_core::ir::{Expr, Select};
use aura_core::schema::{FieldDef, ModelSchema};
use aura_core::value::Value;
use aura_core::Error;
use aura_engine::ResultRow;
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::ser::{SerializeMap, SerializeSeq};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value as Json;

use crate::awp::{self, Catalog, Collection, WireKind};

// --------------------------------------------------------------------------- find request (server)

/// `T` read from a JSON object only. serde's derived struct readers also
/// take an array of the fields in order (defaults filling the rest, no
/// unknown-field check), which the generic path rejects.
struct Object<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Object<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Fields<T>(PhantomData<T>);

        impl<'de, T: Deserialize<'de>> Visitor<'de> for Fields<T> {
            type Value = T;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
            }
        }

        d.deserialize_map(Fields(PhantomData)).map(Object)
    }
}

/// A `find` QUERY with only the keys a plain lookup sends.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FindRequest<'a> {
    /// Read only to refuse every other kind.
    #[serde(rename = "query")]
    _kind: Find,
    #[serde(borrow)]
    collection: Cow<'a, str>,
    #[serde(default, borrow)]
    filter: Option<Object<FilterIn<'a>>>,
    #[serde(default)]
    limit: Option<u64>,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default)]
    timeout_ms: Option<u64>,
}

/// The one query kind read here, as a JSON string only (serde's derived
/// enums also take `{"find": null}`, which the generic path rejects): any
/// other value stops the read at that key (clients send it first), so a
/// count or a search costs no parse twice.
struct Find;

impl<'de> Deserialize<'de> for Find {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Kind;

        impl Visitor<'_> for Kind {
            type Value = Find;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("the string \"find\"")
            }

            fn visit_str<E: serde::de::Error>(self, kind: &str) -> Result<Find, E> {
                match kind {
                    "find" => Ok(Find),
                    other => Err(E::invalid_value(serde::de::Unexpected::Str(other), &self)),
                }
            }
        }

        d.deserialize_str(Kind)
    }
}

/// A `compare` filter, or `and`/`or` of them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FilterIn<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default, borrow)]
    field: Option<Cow<'a, str>>,
    #[serde(default, borrow)]
    op: Option<Cow<'a, str>>,
    /// Absent and `null` mean the same to the generic path.
    #[serde(default)]
    value: Option<Json>,
    #[serde(default, borrow)]
    filters: Option<Vec<Object<FilterIn<'a>>>>,
}

impl FilterIn<'_> {
    /// `None` when only the generic path can tell (it reports the error).
    fn to_expr(&self, coll: &Collection) -> Option<Expr> {
        let model = coll.schema.name.as_str();
        match (&*self.kind, &self.filters) {
            ("compare", None) => {
                let value = self.value.as_ref().unwrap_or(&Json::Null);
                let op = self.op.as_deref()?;
                let field = self.field.as_deref()?;
                awp::compare_from_wire(model, op, value, || Ok(field)).ok()
            }
            ("and" | "or", Some(subs)) if self.field.is_none() && self.op.is_none() => {
                if self.value.is_some() {
                    return None;
                }
                let exprs = subs
                    .iter()
                    .map(|f| f.0.to_expr(coll))
                    .collect::<Option<Vec<_>>>()?;
                Some(if self.kind == "and" {
                    Expr::and(exprs)
                } else {
                    Expr::or(exprs)
                })
            }
            _ => None,
        }
    }
}

/// A plain `find` payload → its IR select and collection, as
/// `awp::select_from_wire` would build them; `None` hands the payload to the
/// generic path (another query kind or key, or any error to report).
pub fn find_request(payload: &[u8], catalog: &dyn Catalog) -> Option<(Select, Arc<Collection>)> {
    let Object(req): Object<FindRequest> = serde_json::from_slice(payload).ok()?;
    let coll = catalog.collection(&req.collection)?;
    let mut q = Select::new(&req.collection);
    if let Some(Object(filter)) = &req.filter {
        q.filters = vec![filter.to_expr(&coll)?];
    }
    q.limit = req.limit;
    q.offset = req.offset;
    q.timeout_ms = req.timeout_ms.filter(|ms| *ms > 0);
    Some((q, coll))
}

// --------------------------------------------------------------------------- find request (client)

/// The QUERY payload of a plain select (`{"query":"find",…}` with a
/// filter of comparisons of fields with scalars, limit and offset), byte
/// for byte what serialising `awp::find_query`'s JSON gives; `None` for
/// anything else (the generic writer builds it, and reports its errors).
pub fn find_bytes(q: &Select, schema: &ModelSchema) -> Option<Vec<u8>> {
    let plain = q.sort.is_empty()
        && q.projection.is_empty()
        && q.include.is_empty()
        && q.text.is_none()
        && q.fusion.is_none()
        && q.vector.is_none()
        && q.vector_ann.is_none()
        && q.text_search.is_none()
        && q.hybrid.is_none()
        && q.timeout_ms.is_none();
    if !plain {
        return None;
    }
    let filter = match q.filters.as_slice() {
        [] => None,
        [one] => Some(FilterOut::of(one, schema)?),
        many => Some(FilterOut::Bool(
            "and",
            many.iter()
                .map(|e| FilterOut::of(e, schema))
                .collect::<Option<_>>()?,
        )),
    };
    let find = FindOut {
        collection: &q.model,
        filter,
        limit: q.limit,
        offset: q.offset,
    };
    serde_json::to_vec(&find).ok()
}

struct FindOut<'a> {
    collection: &'a str,
    filter: Option<FilterOut<'a>>,
    limit: Option<u64>,
    offset: Option<u64>,
}

impl Serialize for FindOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("query", "find")?;
        map.serialize_entry("collection", self.collection)?;
        if let Some(filter) = &self.filter {
            map.serialize_entry("filter", filter)?;
        }
        if let Some(limit) = self.limit {
            map.serialize_entry("limit", &limit)?;
        }
        if let Some(offset) = self.offset {
            map.serialize_entry("offset", &offset)?;
        }
        map.end()
    }
}

/// An AWP Filter as `awp::filter_to_wire` builds it, for the shapes whose
/// values go on the wire unchanged.
enum FilterOut<'a> {
    Compare {
        field: Cow<'a, str>,
        op: &'static str,
        value: &'a Json,
    },
    Bool(&'static str, Vec<FilterOut<'a>>),
}

impl<'a> FilterOut<'a> {
    fn of(expr: &'a Expr, schema: &ModelSchema) -> Option<Self> {
        use aura_core::ir::BoolOp;
        match expr {
            Expr::Bool { op, operands } => {
                let tag = if *op == BoolOp::And { "and" } else { "or" };
                let filters = operands
                    .iter()
                    .map(|e| FilterOut::of(e, schema))
                    .collect::<Option<_>>()?;
                Some(FilterOut::Bool(tag, filters))
            }
            Expr::Compare { op, left, right } => {
                let op = awp::wire_op(*op)?;
                let Expr::Field { field, path, .. } = &**left else {
                    return None;
                };
                let Expr::Literal { value } = &**right else {
                    return None;
                };
                let name: Cow<str> = match path {
                    Some(p) if !p.is_empty() => Cow::Owned(format!("{field}.{}", p.join("."))),
                    _ => Cow::Borrowed(field),
                };
                // The field whose kind picks the value's wrapper (none for a
                // dotted path), as `filter_to_wire` finds it.
                let root = name.split('.').next().unwrap_or(&name);
                let def = schema.field(root).filter(|_| !name.contains('.'));
                let unchanged = match (op, value) {
                    ("in", Json::Array(items)) => items.iter().all(|v| as_is(v, def)),
                    _ => as_is(value, def),
                };
                unchanged.then_some(FilterOut::Compare {
                    field: name,
                    op,
                    value,
                })
            }
            _ => None,
        }
    }
}

/// A literal `awp::to_wire` sends as it is: a scalar, unless a datetime
/// field turns its string into a `$timestamp`.
fn as_is(value: &Json, def: Option<&FieldDef>) -> bool {
    match value {
        Json::Null | Json::Bool(_) | Json::Number(_) => true,
        Json::String(_) => def.is_none_or(|f| f.kind != aura_core::schema::FieldKind::DateTime),
        Json::Array(_) | Json::Object(_) => false,
    }
}

impl Serialize for FilterOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        match self {
            FilterOut::Compare { field, op, value } => {
                map.serialize_entry("type", "compare")?;
                map.serialize_entry("field", field)?;
                map.serialize_entry("op", op)?;
                map.serialize_entry("value", value)?;
            }
            FilterOut::Bool(tag, filters) => {
                map.serialize_entry("type", tag)?;
                map.serialize_entry("filters", filters)?;
            }
        }
        map.end()
    }
}

// --------------------------------------------------------------------------- result page (server)

/// A QUERY_RESULT page: `{"rows":[Row…]}` and the cursor key, if any.
pub struct PageOut<'a> {
    pub rows: RowsOut<'a>,
    pub cursor_id: Option<u64>,
    pub next_cursor: Option<&'a str>,
}

impl PageOut<'_> {
    pub fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl Serialize for PageOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("rows", &self.rows)?;
        if let Some(id) = self.cursor_id {
            map.serialize_entry("cursor_id", &id)?;
        }
        if let Some(next) = self.next_cursor {
            map.serialize_entry("next_cursor", next)?;
        }
        map.end()
    }
}

/// Engine rows of one collection as AWP Rows `{id, fields, score…,
/// includes}`, written straight from the engine's values.
pub struct RowsOut<'a> {
    rows: &'a [ResultRow],
    coll: &'a Collection,
    /// Positions of the fields written, in the byte order of their names.
    order: Vec<usize>,
    /// Position of the primary key (its wire JSON keys the record id).
    pk: Option<usize>,
    /// The collections `coll`'s relationships name, as the catalog holds
    /// them, with their field order: found once per page, and only when a
    /// row has includes.
    targets: Vec<Target<'a>>,
}

/// A relationship's target collection, by the name the relationship
/// gives, and the order its fields are written.
struct Target<'a> {
    name: &'a str,
    coll: Arc<Collection>,
    order: Vec<usize>,
}

impl<'a> RowsOut<'a> {
    pub fn new(
        rows: &'a [ResultRow],
        coll: &'a Collection,
        projection: &[String],
        catalog: &'a dyn Catalog,
    ) -> Self {
        let fields = &coll.schema.fields;
        let pk_name = coll.schema.pk_name();
        let len = fields.len().min(coll.kinds.len());
        let mut targets: Vec<Target<'a>> = Vec::new();
        if rows.iter().any(|r| !r.includes.is_empty()) {
            for name in fields.iter().filter_map(|f| f.target.as_deref()) {
                if targets.iter().any(|t| t.name == name) {
                    continue;
                }
                if let Some(tc) = catalog.collection(name) {
                    let order = field_order(&tc, &[]);
                    targets.push(Target {
                        name,
                        coll: tc,
                        order,
                    });
                }
            }
        }
        RowsOut {
            rows,
            coll,
            order: field_order(coll, projection),
            pk: (0..len).rev().find(|&i| fields[i].storage == pk_name),
            targets,
        }
    }
}

/// Positions of the fields of `coll` a row writes (those of `projection`,
/// or all), in the byte order of their names. Sorted stably, and for a
/// name given twice only the last position is kept, at the first one's
/// place: what a JSON object built key by key keeps.
fn field_order(coll: &Collection, projection: &[String]) -> Vec<usize> {
    let fields = &coll.schema.fields;
    let len = fields.len().min(coll.kinds.len());
    let mut order: Vec<usize> = (0..len)
        .filter(|&i| projection.is_empty() || projection.contains(&fields[i].storage))
        .collect();
    order.sort_by(|&a, &b| {
        fields[a]
            .storage
            .as_bytes()
            .cmp(fields[b].storage.as_bytes())
    });
    let mut kept: Vec<usize> = Vec::with_capacity(order.len());
    for i in order {
        match kept.last_mut() {
            Some(last) if fields[*last].storage == fields[i].storage => *last = i,
            _ => kept.push(i),
        }
    }
    kept
}

impl Serialize for RowsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(self.rows.len()))?;
        for row in self.rows {
            seq.serialize_element(&RowOut { rows: self, row })?;
        }
        seq.end()
    }
}

struct RowOut<'a, 'b> {
    rows: &'a RowsOut<'b>,
    row: &'a ResultRow,
}

impl Serialize for RowOut<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let RowsOut { coll, order, .. } = self.rows;
        let values: &[Value] = &self.row.row;
        // The id hashes the key's wire JSON (`null` without a key).
        let mut hash = awp::RecordIdHash::new(&coll.schema.name);
        let pk = self
            .rows
            .pk
            .and_then(|i| values.get(i).map(|v| (v, coll.kinds[i])));
        let hashed = match pk {
            Some((v, kind)) => serde_json::to_writer(&mut hash, &ValueOut(v, kind)),
            None => serde_json::to_writer(&mut hash, &()),
        };
        hashed.map_err(serde::ser::Error::custom)?;
        let id = hash.hex();
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("id", std::str::from_utf8(&id).unwrap_or_default())?;
        map.serialize_entry(
            "fields",
            &FieldsOut {
                values,
                coll,
                order,
            },
        )?;
        if let Some(sc) = &self.row.scores {
            map.serialize_entry("score", &sc.score)?;
            if let Some(t) = sc.text_score {
                map.serialize_entry("text_score", &t)?;
            }
            if let Some(v) = sc.vector_score {
                map.serialize_entry("vector_score", &v)?;
            }
            map.serialize_entry("rank", &sc.rank)?;
        }
        if !self.row.includes.is_empty() {
            let includes = IncludesOut {
                includes: &self.row.includes,
                rows: self.rows,
            };
            map.serialize_entry("includes", &includes)?;
        }
        map.end()
    }
}

struct FieldsOut<'a> {
    values: &'a [Value],
    coll: &'a Collection,
    order: &'a [usize],
}

impl Serialize for FieldsOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for &i in self.order {
            if let Some(v) = self.values.get(i) {
                map.serialize_entry(
                    self.coll.schema.fields[i].storage.as_str(),
                    &ValueOut(v, self.coll.kinds[i]),
                )?;
            }
        }
        map.end()
    }
}

/// A row's loaded relationships as its AWP `includes` object: `{name:
/// [fields of the related row]}`, an empty list when none was found. A
/// name loaded twice is written once, at its first place, with its last
/// value (as a JSON object keeps a repeated key).
struct IncludesOut<'a, 'b> {
    includes: &'a [aura_engine::Included],
    rows: &'a RowsOut<'b>,
}

impl Serialize for IncludesOut<'_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (pos, first) in self.includes.iter().enumerate() {
            let attr = first.attr();
            if self.includes[..pos].iter().any(|i| i.attr() == attr) {
                continue;
            }
            let last = self.includes[pos..]
                .iter()
                .rev()
                .find(|i| i.attr() == attr)
                .unwrap_or(first);
            map.serialize_entry(attr, &IncludedOut(self, last))?;
        }
        map.end()
    }
}

struct IncludedOut<'a, 'b, 'c>(&'a IncludesOut<'b, 'c>, &'a aura_engine::Included);

impl Serialize for IncludedOut<'_, '_, '_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let IncludedOut(out, included) = self;
        let rows = out.rows;
        let target = rows
            .coll
            .schema
            .field(included.attr())
            .and_then(|f| f.target.as_deref())
            .and_then(|name| rows.targets.iter().find(|t| t.name == name));
        let mut seq = s.serialize_seq(None)?;
        if let (aura_engine::Included::One { row: Some(row), .. }, Some(t)) = (included, target) {
            seq.serialize_element(&FieldsOut {
                values: row,
                coll: &t.coll,
                order: &t.order,
            })?;
        }
        seq.end()
    }
}

/// An engine value as `awp::wrap_value` writes it.
struct ValueOut<'a>(&'a Value, WireKind);

impl Serialize for ValueOut<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match (self.0, self.1) {
            (Value::Null, _) => s.serialize_unit(),
            (Value::Int(ms), WireKind::Timestamp) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("$timestamp", ms)?;
                map.end()
            }
            (Value::Bytes(b), _) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("$bytes", &**b)?;
                map.end()
            }
            (Value::Vector(v), _) => {
                let mut map = s.serialize_map(Some(1))?;
                map.serialize_entry("$vector", &**v)?;
                map.end()
            }
            (Value::Bool(b), _) => s.serialize_bool(*b),
            (Value::Int(i), _) => s.serialize_i64(*i),
            (Value::Float(f), _) => s.serialize_f64(*f),
            (Value::Str(text), _) => s.serialize_str(text),
            // Documents: rare, and their keys are sorted there.
            (Value::List(_) | Value::Map(_), kind) => awp::wrap_value(self.0, kind).serialize(s),
        }
    }
}

// --------------------------------------------------------------------------- result page (client)

/// A QUERY_RESULT page read against the model it answers (client side).
pub struct PageIn {
    pub rows: Vec<RowIn>,
    pub cursor_id: Option<u64>,
    pub next_cursor: Option<String>,
    /// For each model field, its slot in `RowIn::slots` (fields of the
    /// same name share one, as they share one key of the JSON object).
    slot_of: Vec<usize>,
}

/// One row of a page: each field's wire JSON and the ranking keys.
pub struct RowIn {
    slots: Vec<Option<Json>>,
    pub score: Option<f64>,
    pub text_score: Option<f64>,
    pub vector_score: Option<f64>,
    pub rank: Option<u64>,
    /// As sent (the caller reads it only when it is an object).
    pub includes: Option<Json>,
}

impl PageIn {
    /// The row's engine values in model field order (`awp::row_from_wire`).
    pub fn values(&self, row: &RowIn, schema: &ModelSchema) -> Result<Vec<Value>, Error> {
        schema
            .fields
            .iter()
            .zip(&self.slot_of)
            .map(
                |(f, &slot)| match row.slots.get(slot).and_then(Option::as_ref) {
                    Some(v) => awp::from_wire(v, f),
                    None => Ok(Value::Null),
                },
            )
            .collect()
    }
}

/// Reads a page the way `awp::row_from_wire` and the generic page reader
/// see it; `None` when the generic path must read it (a shape it would
/// treat leniently or reject: its answer or error is the reference).
pub fn page_in(payload: &[u8], schema: &ModelSchema) -> Option<PageIn> {
    let fields = &schema.fields;
    let slot_of: Vec<usize> = (0..fields.len()).map(|i| first_of(fields, i)).collect();
    let mut names: Vec<(&str, usize)> = slot_of
        .iter()
        .enumerate()
        .filter(|(i, slot)| *i == **slot)
        .map(|(i, _)| (fields[i].storage.as_str(), i))
        .collect();
    names.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let seed = PageSeed {
        names: &names,
        slots: fields.len(),
    };
    let mut de = serde_json::Deserializer::from_slice(payload);
    let (rows, cursor_id, next_cursor) = seed.deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(PageIn {
        rows,
        cursor_id,
        next_cursor,
        slot_of,
    })
}

/// The first field named like field `i`.
fn first_of(fields: &[FieldDef], i: usize) -> usize {
    let name = &fields[i].storage;
    fields.iter().position(|f| &f.storage == name).unwrap_or(i)
}

fn duplicate<E: serde::de::Error>(key: &str) -> E {
    E::custom(format_args!("duplicate key `{key}`"))
}

/// Keys are read without copying them when they need no unescaping.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// A value read and dropped. Unlike `serde::de::IgnoredAny` (which
/// serde_json skips without checking its strings are UTF-8) it is parsed as
/// fully as a `serde_json::Value` would be, so it fails where that fails.
struct Skip;

impl<'de> Deserialize<'de> for Skip {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(Skip)
    }
}

impl<'de> Visitor<'de> for Skip {
    type Value = Skip;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("any value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_i64<E>(self, _: i64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_u64<E>(self, _: u64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_f64<E>(self, _: f64) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_str<E>(self, _: &str) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_unit<E>(self) -> Result<Skip, E> {
        Ok(Skip)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Skip, A::Error> {
        while seq.next_element::<Skip>()?.is_some() {}
        Ok(Skip)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Skip, A::Error> {
        while map.next_entry::<Key, Skip>()?.is_some() {}
        Ok(Skip)
    }
}

struct PageSeed<'a> {
    names: &'a [(&'a str, usize)],
    slots: usize,
}

type PageParts = (Vec<RowIn>, Option<u64>, Option<String>);

impl<'de> DeserializeSeed<'de> for PageSeed<'_> {
    type Value = PageParts;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<PageParts, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for PageSeed<'_> {
    type Value = PageParts;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a result page")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<PageParts, A::Error> {
        let (mut rows, mut cursor_id, mut next_cursor) = (None, None, None);
        while let Some(Key(key)) = map.next_key()? {
            match &*key {
                "rows" if rows.is_none() => rows = Some(map.next_value_seed(RowsSeed(&self))?),
                "cursor_id" if cursor_id.is_none() => {
                    cursor_id = Some(map.next_value::<Option<u64>>()?)
                }
                "next_cursor" if next_cursor.is_none() => {
                    next_cursor = Some(map.next_value::<Option<String>>()?)
                }
                "rows" | "cursor_id" | "next_cursor" => return Err(duplicate(&key)),
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        let rows = rows.ok_or_else(|| serde::de::Error::missing_field("rows"))?;
        Ok((rows, cursor_id.flatten(), next_cursor.flatten()))
    }
}

struct RowsSeed<'a, 'b>(&'a PageSeed<'b>);

impl<'de> DeserializeSeed<'de> for RowsSeed<'_, '_> {
    type Value = Vec<RowIn>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Vec<RowIn>, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for RowsSeed<'_, '_> {
    type Value = Vec<RowIn>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of rows")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<RowIn>, A::Error> {
        let mut rows = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1024));
        while let Some(row) = seq.next_element_seed(RowSeed(self.0))? {
            rows.push(row);
        }
        Ok(rows)
    }
}

struct RowSeed<'a, 'b>(&'a PageSeed<'b>);

impl<'de> DeserializeSeed<'de> for RowSeed<'_, '_> {
    type Value = RowIn;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RowIn, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RowSeed<'_, '_> {
    type Value = RowIn;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a row")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowIn, A::Error> {
        let mut slots = None;
        let (mut score, mut text_score, mut vector_score, mut rank, mut includes) =
            (None, None, None, None, None);
        let mut id = false;
        while let Some(Key(key)) = map.next_key()? {
            match &*key {
                "fields" if slots.is_none() => {
                    slots = Some(map.next_value_seed(FieldsSeed(self.0))?)
                }
                "score" if score.is_none() => score = Some(map.next_value::<Option<f64>>()?),
                "text_score" if text_score.is_none() => {
                    text_score = Some(map.next_value::<Option<f64>>()?)
                }
                "vector_score" if vector_score.is_none() => {
                    vector_score = Some(map.next_value::<Option<f64>>()?)
                }
                "rank" if rank.is_none() => rank = Some(map.next_value::<Option<u64>>()?),
                "includes" if includes.is_none() => includes = Some(map.next_value::<Json>()?),
                "id" if !id => {
                    id = true;
                    map.next_value::<Skip>()?;
                }
                "fields" | "score" | "text_score" | "vector_score" | "rank" | "includes" | "id" => {
                    return Err(duplicate(&key))
                }
                _ => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(RowIn {
            slots: slots.ok_or_else(|| serde::de::Error::missing_field("fields"))?,
            score: score.flatten(),
            text_score: text_score.flatten(),
            vector_score: vector_score.flatten(),
            rank: rank.flatten(),
            includes,
        })
    }
}

struct FieldsSeed<'a, 'b>(&'a PageSeed<'b>);

impl<'de> DeserializeSeed<'de> for FieldsSeed<'_, '_> {
    type Value = Vec<Option<Json>>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for FieldsSeed<'_, '_> {
    type Value = Vec<Option<Json>>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a row's fields")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut slots: Vec<Option<Json>> = vec![None; self.0.slots];
        while let Some(Key(key)) = map.next_key()? {
            let names = self.0.names;
            match names.binary_search_by(|(name, _)| (*name).cmp(&*key)) {
                // The last of duplicate keys wins, as in a JSON object.
                Ok(at) => slots[names[at].1] = Some(map.next_value()?),
                Err(_) => {
                    map.next_value::<Skip>()?;
                }
            }
        }
        Ok(slots)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aura_engine::{Included, Scores};
    use awp::{record_id, wrap_value};
    use serde_json::{json, Map};
    use std::collections::HashMap;

    struct Colls(HashMap<String, Arc<Collection>>);

    impl Catalog for Colls {
        fn collection(&self, name: &str) -> Option<Arc<Collection>> {
            self.0.get(name).cloned()
        }
    }

    fn catalog() -> Colls {
        let doc = json!({"name": "Doc", "fields": [
            {"name": "id", "field_type": {"kind": "int"}, "primary_key": true, "nullable": false},
            {"name": "status", "field_type": {"kind": "string"}},
            {"name": "at", "field_type": {"kind": "timestamp"}},
            {"name": "blob", "field_type": {"kind": "bytes"}},
            {"name": "emb", "field_type": {"kind": "vector", "dim": 2}},
            {"name": "meta", "field_type": {"kind": "document"}},
            {"name": "Score", "field_type": {"kind": "float"}},
            {"name": "ok", "field_type": {"kind": "bool"}},
            {"name": "owner", "field_type": {"kind": "string"}}],
            "relationships": [{"name": "owner", "target": "User", "cardinality": "to_one"}]});
        let user = json!({"name": "User", "fields": [
            {"name": "key", "field_type": {"kind": "string"}, "primary_key": true},
            {"name": "name", "field_type": {"kind": "string"}}]});
        // A schema this server accepts though it names a field twice.
        let twice = json!({"name": "Twice", "fields": [
            {"name": "b", "field_type": {"kind": "int"}},
            {"name": "a", "field_type": {"kind": "int"}, "primary_key": true},
            {"name": "b", "field_type": {"kind": "string"}}]});
        let mut map = HashMap::new();
        for schema in [doc, user, twice] {
            let coll = awp::parse_collection(&schema).unwrap();
            map.insert(coll.schema.name.clone(), Arc::new(coll));
        }
        Colls(map)
    }

    /// The reference writer: an engine row as an AWP Row `{id, fields}`,
    /// built as `serde_json` values.
    fn row_json(row: &[Value], coll: &Collection, projection: &[String]) -> Map<String, Json> {
        let mut fields: Vec<(&str, Json)> = Vec::with_capacity(row.len());
        let mut pk = Json::Null;
        for ((f, kind), v) in coll
            .schema
            .fields
            .iter()
            .zip(coll.kinds.iter())
            .zip(row.iter())
        {
            let wire = wrap_value(v, *kind);
            if f.storage == coll.schema.pk_name() {
                pk = wire.clone();
            }
            if projection.is_empty() || projection.iter().any(|p| p == &f.storage) {
                fields.push((f.storage.as_str(), wire));
            }
        }
        fields.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        let mut out = Map::new();
        out.insert("id".into(), json!(record_id(&coll.schema.name, &pk)));
        out.insert(
            "fields".into(),
            Json::Object(fields.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()),
        );
        out
    }

    /// The reference writer of a row's `includes` object.
    fn includes_json(
        includes: &[aura_engine::Included],
        coll: &Collection,
        catalog: &dyn Catalog,
    ) -> Json {
        let mut inc = Map::new();
        for included in includes {
            let target = coll
                .schema
                .field(included.attr())
                .and_then(|f| f.target.clone())
                .and_then(|t| catalog.collection(&t));
            let docs: Vec<Json> = match (included, &target) {
                (aura_engine::Included::One { row: Some(row), .. }, Some(tc)) => {
                    vec![Json::Object(
                        row_json(row, tc, &[])
                            .remove("fields")
                            .and_then(|f| f.as_object().cloned())
                            .unwrap_or_default(),
                    )]
                }
                _ => Vec::new(),
            };
            inc.insert(included.attr().to_owned(), Json::Array(docs));
        }
        Json::Object(inc)
    }

    /// The generic writer: rows as `serde_json::Value`, then serialised.
    fn generic_page(
        rows: &[ResultRow],
        coll: &Collection,
        projection: &[String],
        catalog: &dyn Catalog,
        cursor_id: Option<u64>,
    ) -> Vec<u8> {
        let rows: Vec<Json> = rows
            .iter()
            .map(|r| {
                let mut obj = row_json(&r.row, coll, projection);
                if let Some(s) = &r.scores {
                    obj.insert("score".into(), json!(s.score));
                    if let Some(t) = s.text_score {
                        obj.insert("text_score".into(), json!(t));
                    }
                    if let Some(v) = s.vector_score {
                        obj.insert("vector_score".into(), json!(v));
                    }
                    obj.insert("rank".into(), json!(s.rank));
                }
                if !r.includes.is_empty() {
                    obj.insert("includes".into(), includes_json(&r.includes, coll, catalog));
                }
                Json::Object(obj)
            })
            .collect();
        let mut page = serde_json::Map::new();
        page.insert("rows".into(), Json::Array(rows));
        if let Some(id) = cursor_id {
            page.insert("cursor_id".into(), json!(id));
        }
        serde_json::to_vec(&Json::Object(page)).unwrap()
    }

    fn doc_rows() -> Vec<ResultRow> {
        let meta = Value::Map(Arc::from(vec![
            (Arc::from("z"), Value::Int(1)),
            (
                Arc::from("a\"b"),
                Value::List(Arc::from(vec![Value::Float(0.1), Value::Null])),
            ),
        ]));
        let full = vec![
            Value::Int(7),
            Value::str("pub\u{e9}\n\"x\""),
            Value::Int(1_717_459_200_250),
            Value::Bytes(Arc::from(vec![0u8, 1, 255])),
            Value::Vector(Arc::from(vec![0.5, -1e-7])),
            meta,
            Value::Float(f64::NAN),
            Value::Bool(true),
            Value::str("u1"),
        ];
        let mut nulls = vec![Value::Null; 9];
        nulls[0] = Value::Int(-3);
        nulls[6] = Value::Float(1e300);
        let user = vec![Value::str("u1"), Value::str("Ann")];
        let mut third = vec![Value::Null; 9];
        third[0] = Value::Int(11);
        vec![
            ResultRow {
                row: full.into(),
                scores: None,
                includes: Vec::new(),
            },
            ResultRow {
                row: nulls.into(),
                scores: Some(Scores {
                    score: 0.25,
                    text_score: Some(f64::INFINITY),
                    vector_score: None,
                    rank: 3,
                }),
                includes: vec![
                    Included::One {
                        attr: "owner".into(),
                        row: Some(user.clone().into()),
                    },
                    Included::One {
                        attr: "owner".into(),
                        row: None,
                    },
                ],
            },
            // A name loaded twice keeps its first place and its last value;
            // a name that is no relationship gives an empty list.
            ResultRow {
                row: third.into(),
                scores: None,
                includes: vec![
                    Included::One {
                        attr: "owner".into(),
                        row: None,
                    },
                    Included::One {
                        attr: "ghost".into(),
                        row: Some(user.clone().into()),
                    },
                    Included::One {
                        attr: "owner".into(),
                        row: Some(user.into()),
                    },
                ],
            },
        ]
    }

    #[test]
    fn pages_are_written_as_the_generic_writer_writes_them() {
        let cat = catalog();
        let doc = cat.collection("Doc").unwrap();
        let rows = doc_rows();
        for projection in [vec![], vec!["status".to_owned(), "blob".to_owned()]] {
            for cursor_id in [None, Some(9)] {
                let typed = PageOut {
                    rows: RowsOut::new(&rows, &doc, &projection, &cat),
                    cursor_id,
                    next_cursor: None,
                }
                .to_vec();
                let generic = generic_page(&rows, &doc, &projection, &cat, cursor_id);
                assert_eq!(
                    String::from_utf8(typed).unwrap(),
                    String::from_utf8(generic).unwrap()
                );
            }
        }
        let twice = cat.collection("Twice").unwrap();
        let rows = vec![ResultRow {
            row: vec![Value::Int(1), Value::Int(2), Value::str("three")].into(),
            scores: None,
            includes: Vec::new(),
        }];
        let typed = PageOut {
            rows: RowsOut::new(&rows, &twice, &[], &cat),
            cursor_id: None,
            next_cursor: Some("ab\"c"),
        }
        .to_vec();
        let mut generic: Json =
            serde_json::from_slice(&generic_page(&rows, &twice, &[], &cat, None)).unwrap();
        generic["next_cursor"] = json!("ab\"c");
        assert_eq!(typed, serde_json::to_vec(&generic).unwrap());
        // An empty page.
        let typed = PageOut {
            rows: RowsOut::new(&[], &doc, &[], &cat),
            cursor_id: None,
            next_cursor: None,
        };
        assert_eq!(typed.to_vec(), b"{\"rows\":[]}");
    }

    /// Includes of every kind the server writes: to-many (written empty,
    /// as AWP 1 has no to-many includes), a target collection the catalog
    /// lacks, a target naming a field twice, and a plain one.
    #[test]
    fn includes_are_written_as_the_generic_writer_writes_them() {
        let mut cat = catalog();
        let post = json!({"name": "Post", "fields": [
            {"name": "id", "field_type": {"kind": "int"}, "primary_key": true}],
            "relationships": [
                {"name": "owner", "target": "User", "cardinality": "to_one"},
                {"name": "lost", "target": "Gone", "cardinality": "to_one"},
                {"name": "pair", "target": "Twice", "cardinality": "to_one"},
                {"name": "notes", "target": "User", "cardinality": "to_many"}]});
        let coll = Arc::new(awp::parse_collection(&post).unwrap());
        cat.0.insert("Post".into(), coll.clone());
        let width = coll.schema.fields.len();
        let user: Vec<Value> = vec![Value::str("u1"), Value::str("Ann")];
        let twice = vec![Value::Int(1), Value::Int(2), Value::str("three")];
        let mut row = vec![Value::str("u1"); width];
        row[0] = Value::Int(5);
        let rows = vec![ResultRow {
            row: row.into(),
            scores: None,
            includes: vec![
                Included::Many {
                    attr: "notes".into(),
                    rows: vec![user.clone().into()],
                },
                Included::One {
                    attr: "lost".into(),
                    row: Some(user.clone().into()),
                },
                Included::One {
                    attr: "pair".into(),
                    row: Some(twice.into()),
                },
                Included::One {
                    attr: "owner".into(),
                    row: Some(user.into()),
                },
            ],
        }];
        let typed = PageOut {
            rows: RowsOut::new(&rows, &coll, &[], &cat),
            cursor_id: None,
            next_cursor: None,
        }
        .to_vec();
        let generic = generic_page(&rows, &coll, &[], &cat, None);
        assert_eq!(
            String::from_utf8(typed).unwrap(),
            String::from_utf8(generic).unwrap()
        );
    }

    #[test]
    fn record_ids_keep_the_spec_example() {
        let cat = catalog();
        let doc = cat.collection("Doc").unwrap();
        let mut row = vec![Value::Null; 9];
        row[0] = Value::Int(2);
        let rows = vec![ResultRow {
            row: row.into(),
            scores: None,
            includes: Vec::new(),
        }];
        let page: Json = serde_json::from_slice(
            &PageOut {
                rows: RowsOut::new(&rows, &doc, &[], &cat),
                cursor_id: None,
                next_cursor: None,
            }
            .to_vec(),
        )
        .unwrap();
        assert_eq!(page["rows"][0]["id"], "a35c27934683d94f7080e270d7e7451f");
    }

    /// What the server builds from `payload`, typed and generically.
    fn both(payload: &[u8], cat: &Colls) -> (Option<Select>, Result<Select, String>) {
        let typed = find_request(payload, cat).map(|(q, _)| q);
        let generic = serde_json::from_slice::<Json>(payload)
            .map_err(|e| e.to_string())
            .and_then(|body| {
                if body.get("query") != Some(&json!("find")) {
                    return Err("not a find".to_owned());
                }
                awp::select_from_wire(&body, cat)
                    .map(|(q, _)| q)
                    .map_err(|e| e.message)
            });
        (typed, generic)
    }

    #[test]
    fn find_requests_read_typed_match_the_generic_reader() {
        let cat = catalog();
        let accepted = [
            r#"{"query":"find","collection":"Doc","filter":{"type":"compare","field":"id","op":"eq","value":3},"limit":2}"#,
            r#"{"query":"find","collection":"Doc","filter":{"type":"compare","field":"meta.a","op":"in","value":[1,{"$timestamp":5}]}}"#,
            r#"{"collection":"D\u006fc","query":"find","filter":{"type":"and","filters":[{"type":"compare","field":"status","op":"ne","value":"x\"y"},{"type":"or","filters":[]}]},"offset":1,"timeout_ms":0}"#,
            r#"{"query":"find","collection":"Doc","filter":null,"limit":null,"timeout_ms":5}"#,
            r#"{"query":"find","collection":"Doc","filter":{"type":"compare","field":"at","op":"lt"}}"#,
            r#" {"query":"find","collection":"Doc"} "#,
            r#"{"query":"fi\u006ed","collection":"Doc"}"#,
        ];
        for payload in accepted {
            let (typed, generic) = both(payload.as_bytes(), &cat);
            assert_eq!(typed.as_ref(), Some(&generic.unwrap()), "{payload}");
        }
        // Left to the generic path: it answers (or reports the error) as ever.
        let declined = [
            r#"{"query":"count","collection":"Doc"}"#,
            r#"{"collection":"Doc","filter":{"type":"compare","field":"id","op":"eq","value":3},"query":"count"}"#,
            r#"{"query":"Find","collection":"Doc"}"#,
            r#"{"query":{"find":null},"collection":"Doc"}"#,
            r#"{"query":["find"],"collection":"Doc"}"#,
            r#"{"query":null,"collection":"Doc"}"#,
            r#"{"collection":"Doc"}"#,
            r#"{"query":"find","collection":"Nope"}"#,
            r#"{"query":"find","collection":"Doc","limit":-1}"#,
            r#"{"query":"find","collection":"Doc","limit":1.0}"#,
            r#"{"query":"find","collection":"Doc","limit":1,"limit":2}"#,
            r#"{"query":"find","collection":"Doc","order_by":[{"field":"id"}]}"#,
            r#"{"query":"find","collection":"Doc","extra":1}"#,
            r#"{"query":"find","collection":"Doc","filter":{"type":"compare","field":"id","op":"zz","value":1}}"#,
            r#"{"query":"find","collection":"Doc","filter":{"type":"compare","field":"id","op":"in","value":1}}"#,
            r#"{"query":"find","collection":"Doc","filter":{"type":"compare","op":"eq","value":1}}"#,
            r#"{"query":"find","collection":"Doc","filter":{"type":"compare","field":"b","op":"eq","value":{"$bytes":[256]}}}"#,
            r#"{"query":"find","collection":"Doc","filter":{"type":"exists","field":"id"}}"#,
            r#"{"query":"find","collection":"Doc","filter":{"type":"and","filters":[{"type":"not","filter":{"type":"exists","field":"id"}}]}}"#,
            r#"{"query":"find","collection":"Doc","filter":{"type":"and","filters":[],"field":"x"}}"#,
            r#"{"query":"find","collection":"Doc"} x"#,
            // Arrays of the fields in order are not objects.
            r#"["find","Doc"]"#,
            r#"["find","Doc",null,5]"#,
            r#"{"query":"find","collection":"Doc","filter":["compare","id","eq",3]}"#,
            r#"{"query":"find","collection":"Doc","filter":{"type":"and","filters":[["compare","id","eq",3]]}}"#,
            r#"{"query":"find","collection":"Doc""#,
            "",
        ];
        for payload in declined {
            assert!(
                find_request(payload.as_bytes(), &cat).is_none(),
                "{payload}"
            );
        }
    }

    #[test]
    fn find_requests_survive_every_byte_mutation() {
        let cat = catalog();
        let payload = br#"{"query":"find","collection":"Doc","filter":{"type":"and","filters":[{"type":"compare","field":"id","op":"gte","value":-12.5e1}]},"limit":20,"offset":3}"#;
        let mut accepted = 0;
        for at in 0..payload.len() {
            for byte in [
                b'"', b'{', b'}', b'[', b'1', b'-', b'\\', b' ', b'x', b',', b':', 0xff,
            ] {
                let mut bytes = payload.to_vec();
                bytes[at] = byte;
                for cut in [bytes.len(), at + 1] {
                    let (typed, generic) = both(&bytes[..cut], &cat);
                    if let Some(q) = typed {
                        accepted += 1;
                        assert_eq!(Ok(q), generic, "{}", String::from_utf8_lossy(&bytes));
                    }
                }
            }
        }
        assert!(accepted > 0);
    }

    /// The generic reader: the page as `serde_json::Value`, each row's
    /// fields through `awp::row_from_wire`.
    type Generic = (
        Vec<(Vec<Value>, Option<f64>, Option<u64>, Option<Json>)>,
        Option<u64>,
    );

    fn generic_read(payload: &[u8], schema: &ModelSchema) -> Result<Generic, String> {
        let page: Json = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
        let rows = page
            .get("rows")
            .and_then(Json::as_array)
            .ok_or("result page without rows")?;
        let mut out = Vec::new();
        for row in rows {
            let fields = row
                .get("fields")
                .and_then(Json::as_object)
                .ok_or("row without fields")?;
            let values = awp::row_from_wire(fields, schema).map_err(|e| e.message)?;
            let includes = row.get("includes").filter(|i| i.is_object()).cloned();
            out.push((
                values,
                row.get("score").and_then(Json::as_f64),
                row.get("rank").and_then(Json::as_u64),
                includes,
            ));
        }
        Ok((out, page.get("cursor_id").and_then(Json::as_u64)))
    }

    fn typed_read(payload: &[u8], schema: &ModelSchema) -> Option<Result<Generic, String>> {
        let page = page_in(payload, schema)?;
        let mut out = Vec::new();
        for row in &page.rows {
            let values = match page.values(row, schema) {
                Ok(values) => values,
                Err(e) => return Some(Err(e.message)),
            };
            let includes = row.includes.clone().filter(|i| i.is_object());
            out.push((values, row.score, row.rank, includes));
        }
        Some(Ok((out, page.cursor_id)))
    }

    fn client_schema() -> ModelSchema {
        use aura_core::schema::FieldKind;
        let mut at = FieldDef::new("at", FieldKind::DateTime);
        at.nullable = true;
        ModelSchema {
            name: "Doc".into(),
            primary_key: Some("id".into()),
            fields: vec![
                FieldDef::new("id", FieldKind::Int),
                FieldDef::new("status", FieldKind::Str),
                at,
                FieldDef::new("blob", FieldKind::Bytes),
                FieldDef::new("emb", FieldKind::Vector),
                FieldDef::new("meta", FieldKind::Dict),
                FieldDef::new("Score", FieldKind::Float),
                FieldDef::new("ok", FieldKind::Bool),
                FieldDef::new("status", FieldKind::Str),
            ],
            relationships: vec![],
        }
    }

    #[test]
    fn pages_read_typed_match_the_generic_reader() {
        let cat = catalog();
        let doc = cat.collection("Doc").unwrap();
        let schema = client_schema();
        let server_page = PageOut {
            rows: RowsOut::new(&doc_rows(), &doc, &[], &cat),
            cursor_id: Some(4),
            next_cursor: None,
        }
        .to_vec();
        let pages = [
            server_page.clone(),
            br#"{"rows":[{"id":"x","fields":{"status":"a","status":"b","extra":[1,{"k":null}],"id":1},"rank":null,"score":2}],"other":{"rows":1}}"#.to_vec(),
            br#"{"rows":[],"cursor_id":null}"#.to_vec(),
            br#"{"rows":[{"fields":{"id":"not an int"}}]}"#.to_vec(),
            br#"{"rows":[{"fields":{"at":{"$timestamp":1.5}}}]}"#.to_vec(),
            br#"{"rows":[{"fields":{"st\u0061tus":"escaped \u00e9"}}]}"#.to_vec(),
        ];
        for page in &pages {
            let typed = typed_read(page, &schema).expect("read typed");
            assert_eq!(
                typed,
                generic_read(page, &schema),
                "{}",
                String::from_utf8_lossy(page)
            );
        }
        let declined = [
            r#"{"cursor_id":1}"#,
            r#"{"rows":{}}"#,
            r#"{"rows":[{"id":"x"}]}"#,
            r#"{"rows":[{"fields":[]}]}"#,
            r#"{"rows":[1]}"#,
            r#"{"rows":[],"rows":[]}"#,
            r#"{"rows":[{"fields":{},"fields":{}}]}"#,
            r#"{"rows":[{"fields":{},"score":"high"}]}"#,
            r#"{"rows":[{"fields":{},"rank":-1}]}"#,
            r#"{"rows":[],"cursor_id":"1"}"#,
            r#"{"rows":[]}]"#,
            "",
        ];
        for page in declined {
            assert!(page_in(page.as_bytes(), &schema).is_none(), "{page}");
        }
        // Any corruption: read typed only when the generic reader agrees.
        let mut typed_reads = 0;
        for at in 0..server_page.len() {
            for byte in [b'"', b'{', b'}', b'[', b']', b'1', b'\\', b',', b'n', 0xc3] {
                let mut bytes = server_page.clone();
                bytes[at] = byte;
                for cut in [bytes.len(), at] {
                    if let Some(typed) = typed_read(&bytes[..cut], &schema) {
                        typed_reads += 1;
                        assert_eq!(typed, generic_read(&bytes[..cut], &schema));
                    }
                }
            }
        }
        assert!(typed_reads > 0);
    }

    /// The generic writer's find payload, serialised.
    fn generic_find(q: &Select, schema: &ModelSchema) -> Result<Vec<u8>, String> {
        let caps: std::collections::HashSet<String> = ["query_timeouts", "vector_exact_search"]
            .iter()
            .map(|c| c.to_string())
            .collect();
        let mut out = serde_json::Map::new();
        out.insert("query".into(), json!("find"));
        out.append(&mut awp::find_query(q, schema, &caps).map_err(|e| e.message)?);
        Ok(serde_json::to_vec(&Json::Object(out)).unwrap())
    }

    #[test]
    fn find_payloads_written_typed_match_the_generic_writer() {
        use aura_core::ir::{CompareOp, OrderTerm};
        let schema = client_schema();
        let field = |name: &str| Expr::field("Doc", name);
        let cmp =
            |op, name: &str, value: Json| Expr::compare(op, field(name), Expr::literal(value));
        let mut dotted = field("meta");
        if let Expr::Field { path, .. } = &mut dotted {
            *path = Some(vec!["a".into(), "b".into()]);
        }
        let written = [
            vec![],
            vec![cmp(CompareOp::Eq, "id", json!(3))],
            vec![cmp(CompareOp::Le, "status", json!("x\"\u{e9}"))],
            vec![
                cmp(CompareOp::Gt, "Score", json!(0.1)),
                Expr::or(vec![
                    cmp(CompareOp::Ne, "ok", json!(null)),
                    cmp(CompareOp::In, "id", json!([1, 2.5, "3"])),
                ]),
            ],
            vec![Expr::compare(
                CompareOp::Eq,
                dotted.clone(),
                Expr::literal("2024-01-01"),
            )],
            vec![cmp(CompareOp::In, "id", json!(7))],
        ];
        for filters in written {
            for (limit, offset) in [(None, None), (Some(2), None), (Some(0), Some(u64::MAX))] {
                let mut q = Select::new("Doc");
                q.filters = filters.clone();
                q.limit = limit;
                q.offset = offset;
                let typed = find_bytes(&q, &schema).expect("written typed");
                assert_eq!(
                    String::from_utf8(typed).unwrap(),
                    String::from_utf8(generic_find(&q, &schema).unwrap()).unwrap()
                );
            }
        }
        // Values with wrappers, other operators and clauses: the generic writer's.
        let generic = [
            vec![cmp(CompareOp::Eq, "at", json!("2024-01-01T00:00:00"))],
            vec![cmp(CompareOp::In, "at", json!(["2024-01-01"]))],
            vec![cmp(CompareOp::Eq, "emb", json!([1.0, 2.0]))],
            vec![cmp(CompareOp::Eq, "meta", json!({"k": 1}))],
            vec![cmp(CompareOp::NotIn, "id", json!([1]))],
            vec![cmp(CompareOp::IsNull, "id", json!(null))],
            vec![cmp(CompareOp::Like, "status", json!("a%"))],
            vec![Expr::negate(cmp(CompareOp::Eq, "id", json!(1)))],
            vec![Expr::compare(CompareOp::Eq, field("id"), field("ok"))],
        ];
        for filters in generic {
            let mut q = Select::new("Doc");
            q.filters = filters;
            assert!(find_bytes(&q, &schema).is_none(), "{:?}", q.filters);
        }
        let mut sorted = Select::new("Doc");
        sorted.sort.push(OrderTerm {
            field: "id".into(),
            direction: aura_core::ir::Direction::Asc,
        });
        let mut projected = Select::new("Doc");
        projected.projection = vec!["status".into()];
        let mut timed = Select::new("Doc");
        timed.timeout_ms = Some(5);
        for q in [sorted, projected, timed] {
            assert!(find_bytes(&q, &schema).is_none());
            assert!(generic_find(&q, &schema).is_ok());
        }
    }
}
