//! The one translation between the project's Query IR / model schema and
//! the JSON shapes AWP 1 carries (AWP1.md §3.5-3.9). Both directions live
//! here: the client turns IR into AWP payloads, the server turns AWP
//! payloads back into IR for the engine, and rows go through the same value
//! wrappers (`$timestamp`, `$bytes`, `$vector`) either way.

use std::collections::HashSet;
use std::sync::Arc;

use aura_core::ir::{
    BoolOp, CompareOp, Expr, Filtered, Include, OrderTerm, Select, Update, VectorClause,
};
use aura_core::schema::{FieldDef, FieldKind, ModelSchema, OnDelete};
use aura_core::value::{Value, BYTES_KEY};
use aura_core::{Error, ErrorCode};
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use serde_json::{json, Map, Value as Json};

/// AWP field kinds (`field_type.kind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WireKind {
    Uuid,
    String,
    Int,
    Float,
    Bool,
    Timestamp,
    Document,
    Bytes,
    Vector(usize),
}

impl WireKind {
    pub fn name(self) -> &'static str {
        match self {
            WireKind::Uuid => "uuid",
            WireKind::String => "string",
            WireKind::Int => "int",
            WireKind::Float => "float",
            WireKind::Bool => "bool",
            WireKind::Timestamp => "timestamp",
            WireKind::Document => "document",
            WireKind::Bytes => "bytes",
            WireKind::Vector(_) => "vector",
        }
    }

    fn to_json(self) -> Json {
        match self {
            WireKind::Vector(dim) => json!({"kind": "vector", "dim": dim}),
            other => json!({"kind": other.name()}),
        }
    }

    fn parse(field_type: &Json) -> Result<WireKind, Error> {
        let kind = field_type
            .get("kind")
            .and_then(Json::as_str)
            .ok_or_else(|| protocol("field_type needs a 'kind'"))?;
        Ok(match kind {
            "uuid" => WireKind::Uuid,
            "string" => WireKind::String,
            "int" => WireKind::Int,
            "float" => WireKind::Float,
            "bool" => WireKind::Bool,
            "timestamp" => WireKind::Timestamp,
            "document" => WireKind::Document,
            "bytes" => WireKind::Bytes,
            "vector" => {
                let dim = field_type
                    .get("dim")
                    .and_then(Json::as_u64)
                    .ok_or_else(|| protocol("vector field_type needs 'dim'"))?;
                WireKind::Vector(usize::try_from(dim).map_err(|_| protocol("dim too large"))?)
            }
            other => {
                return Err(protocol(&format!(
                    "unknown variant `{other}` of field kind"
                )))
            }
        })
    }

    /// The wire kind a model field is declared with (API.md §16 row 25).
    pub fn of_field(field: &FieldDef, link_kind: Option<FieldKind>) -> WireKind {
        match field.kind {
            FieldKind::Int => WireKind::Int,
            FieldKind::Float => WireKind::Float,
            FieldKind::Bool => WireKind::Bool,
            FieldKind::Str | FieldKind::Date | FieldKind::Time | FieldKind::Decimal => {
                WireKind::String
            }
            FieldKind::Uuid => WireKind::Uuid,
            FieldKind::DateTime => WireKind::Timestamp,
            FieldKind::Bytes => WireKind::Bytes,
            FieldKind::Vector => WireKind::Vector(field.vector_dim.unwrap_or(0)),
            FieldKind::Enum | FieldKind::List | FieldKind::Dict | FieldKind::Any => {
                WireKind::Document
            }
            FieldKind::Link => match link_kind {
                Some(kind) => WireKind::of_field(&FieldDef::new("", kind), None),
                None => WireKind::Document,
            },
        }
    }

    /// The engine kind the server stores a wire kind as.
    fn engine_kind(self) -> FieldKind {
        match self {
            WireKind::Uuid => FieldKind::Uuid,
            WireKind::String => FieldKind::Str,
            WireKind::Int | WireKind::Timestamp => FieldKind::Int,
            WireKind::Float => FieldKind::Float,
            WireKind::Bool => FieldKind::Bool,
            WireKind::Document => FieldKind::Any,
            WireKind::Bytes => FieldKind::Bytes,
            WireKind::Vector(_) => FieldKind::Vector,
        }
    }
}

fn protocol(detail: &str) -> Error {
    wire_error(
        "protocol",
        &format!("payload deserialization failed: {detail}"),
    )
}

fn invalid(detail: &str) -> Error {
    wire_error("invalid_request", &format!("invalid request: {detail}"))
}

/// A server-side error carrying its AWP wire code in the context under
/// `wire_code`; the server writes that code into the ERROR frame.
pub fn wire_error(code: &str, message: &str) -> Error {
    Error::new(ErrorCode::ServerError, message).with_context("wire_code", code)
}

// --------------------------------------------------------------------------- schema

/// A collection as the server holds it: the engine schema plus the wire
/// kind of each field (same positions) and the normalised AWP schema.
#[derive(Debug, Clone)]
pub struct Collection {
    pub schema: Arc<ModelSchema>,
    pub kinds: Vec<WireKind>,
    pub awp: Json,
    /// Relationship name → (target, to_many).
    pub relationships: Vec<(String, String, bool)>,
}

impl Collection {
    pub fn kind_of(&self, field: &str) -> Option<WireKind> {
        self.schema.field_index(field).map(|i| self.kinds[i])
    }
}

fn flag(obj: &Json, key: &str, default: bool) -> Result<bool, Error> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(default),
        Some(Json::Bool(b)) => Ok(*b),
        Some(_) => Err(protocol(&format!("'{key}' must be a bool"))),
    }
}

fn string<'a>(obj: &'a Json, key: &str) -> Result<&'a str, Error> {
    obj.get(key)
        .and_then(Json::as_str)
        .ok_or_else(|| protocol(&format!("missing field `{key}`")))
}

/// Parse a CollectionSchema (AWP1.md §3.5) into what the engine stores.
pub fn parse_collection(payload: &Json) -> Result<Collection, Error> {
    let name = string(payload, "name")?;
    if name.trim().is_empty() {
        return Err(wire_error(
            "schema_violation",
            "schema violation: collection name is blank",
        ));
    }
    let fields = payload
        .get("fields")
        .and_then(Json::as_array)
        .ok_or_else(|| protocol("missing field `fields`"))?;
    let mut defs = Vec::with_capacity(fields.len());
    let mut kinds = Vec::with_capacity(fields.len());
    let mut awp_fields = Vec::with_capacity(fields.len());
    let mut primary_key = None;
    for f in fields {
        let fname = string(f, "name")?;
        let kind = WireKind::parse(f.get("field_type").unwrap_or(&Json::Null))?;
        let pk = flag(f, "primary_key", false)?;
        let unique = flag(f, "unique", false)?;
        let nullable = flag(f, "nullable", true)?;
        let indexed = flag(f, "indexed", false)?;
        if pk {
            if primary_key.is_some() {
                return Err(wire_error(
                    "schema_violation",
                    "schema violation: at most one primary key per schema",
                ));
            }
            primary_key = Some(fname.to_owned());
        }
        let mut def = FieldDef::new(fname, kind.engine_kind());
        def.nullable = nullable && !pk;
        def.unique = unique;
        def.index = indexed;
        if let WireKind::Vector(dim) = kind {
            def.vector_dim = Some(dim);
        }
        defs.push(def);
        kinds.push(kind);
        awp_fields.push(json!({
            "name": fname, "field_type": kind.to_json(), "primary_key": pk,
            "unique": unique, "nullable": nullable, "indexed": indexed,
        }));
    }
    let Some(primary_key) = primary_key else {
        return Err(wire_error(
            "unsupported",
            "unsupported: collections without a primary key (this single-node release does not implement this)",
        ));
    };
    let mut relationships = Vec::new();
    let mut awp_rels = Vec::new();
    for rel in payload
        .get("relationships")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let rname = string(rel, "name")?;
        let target = string(rel, "target")?;
        let to_many = match rel.get("cardinality").and_then(Json::as_str) {
            Some("to_one") => false,
            Some("to_many") => true,
            _ => {
                return Err(protocol(
                    "relationship cardinality must be to_one or to_many",
                ))
            }
        };
        let on_delete = match rel.get("on_delete").and_then(Json::as_str) {
            None | Some("restrict") => OnDelete::Restrict,
            Some("set_null") => OnDelete::SetNull,
            // An extension of this server: the memory engine cascades.
            Some("cascade") => OnDelete::Cascade,
            Some(other) => {
                return Err(protocol(&format!("unknown variant `{other}` of on_delete")))
            }
        };
        if !to_many {
            // A to-one relationship names the field that holds the target's
            // key; without one, it is that field (AuraDB's form: the value
            // is the target's key as a string).
            let pos = match defs.iter().position(|d| d.storage == rname) {
                Some(pos) => pos,
                None => {
                    let mut def = FieldDef::new(rname, FieldKind::Link);
                    def.nullable = true;
                    defs.push(def);
                    kinds.push(WireKind::String);
                    defs.len() - 1
                }
            };
            defs[pos].target = Some(target.to_owned());
            defs[pos].on_delete = Some(on_delete);
            defs[pos].kind = FieldKind::Link;
        }
        relationships.push((rname.to_owned(), target.to_owned(), to_many));
        awp_rels.push(json!({
            "name": rname, "target": target,
            "cardinality": if to_many { "to_many" } else { "to_one" },
            "on_delete": on_delete.as_str(),
        }));
    }
    let indexes = payload.get("indexes").cloned().unwrap_or_else(|| json!([]));
    let schema = ModelSchema {
        name: name.to_owned(),
        primary_key: Some(primary_key),
        fields: defs,
        relationships: Vec::new(),
    };
    Ok(Collection {
        schema: Arc::new(schema),
        kinds,
        awp: json!({"name": name, "fields": awp_fields, "relationships": awp_rels, "indexes": indexes}),
        relationships,
    })
}

/// The CollectionSchema a model is created with (client side); `link_kind`
/// resolves a target model's key kind. A link to a string or UUID key is a
/// `to_one` relationship alone, its value the target's key: AuraDB stores
/// and resolves links that way and refuses a field of the same name. Any
/// other link (an integer key, or `unique`/`index` on the link) is a field
/// typed like the target's key plus a same-named relationship, which this
/// project's server accepts and AuraDB 1.5 refuses.
pub fn collection_schema(
    schema: &ModelSchema,
    link_kind: &dyn Fn(&str) -> Option<FieldKind>,
) -> Json {
    let pk = schema.pk_name();
    let mut fields = Vec::new();
    let mut relationships = Vec::new();
    let mut indexes = Vec::new();
    for f in &schema.fields {
        let target_kind = f.target.as_deref().and_then(link_kind);
        let kind = WireKind::of_field(f, target_kind);
        let is_pk = f.storage == pk;
        let key_link = f.target.is_some()
            && matches!(kind, WireKind::String | WireKind::Uuid)
            && !(is_pk || f.unique || f.index);
        let mut obj = Map::new();
        obj.insert("name".into(), json!(f.storage));
        obj.insert("field_type".into(), kind.to_json());
        if is_pk {
            obj.insert("primary_key".into(), json!(true));
        }
        if f.unique && !is_pk {
            obj.insert("unique".into(), json!(true));
        }
        obj.insert("nullable".into(), json!(f.nullable && !is_pk));
        if f.index {
            obj.insert("indexed".into(), json!(true));
        }
        if !key_link {
            fields.push(Json::Object(obj));
        }
        if let Some(target) = &f.target {
            // `cascade` is sent as is: a server without it rejects the
            // schema instead of silently downgrading it (API.md §16 row 12).
            let on_delete = f.on_delete.unwrap_or(OnDelete::Restrict).as_str();
            relationships.push(json!({
                "name": f.storage, "target": target, "cardinality": "to_one", "on_delete": on_delete,
            }));
        }
        if f.full_text {
            indexes.push(json!({"path": f.storage, "kind": "full_text"}));
        }
    }
    let mut out = Map::new();
    out.insert("name".into(), json!(schema.name));
    out.insert("fields".into(), Json::Array(fields));
    if !relationships.is_empty() {
        out.insert("relationships".into(), Json::Array(relationships));
    }
    if !indexes.is_empty() {
        out.insert("indexes".into(), Json::Array(indexes));
    }
    Json::Object(out)
}

// --------------------------------------------------------------------------- values

/// Record id of a keyed record: FNV-1a-128 over `collection \0 json(pk)`.
pub fn record_id(collection: &str, pk: &Json) -> String {
    let mut hash = RecordIdHash::new(collection);
    let _ = serde_json::to_writer(&mut hash, pk);
    String::from_utf8_lossy(&hash.hex()).into_owned()
}

/// The record id hash, fed the compact JSON of the key as it is written
/// (`io::Write`), so the key needs no buffer of its own.
pub struct RecordIdHash(u128);

impl RecordIdHash {
    const PRIME: u128 = 0x0000000001000000000000000000013b;

    pub fn new(collection: &str) -> Self {
        let mut hash = RecordIdHash(0x6c62272e07bb014262b821756295c58d);
        hash.feed(collection.as_bytes());
        hash.feed(&[0]);
        hash
    }

    fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 ^= u128::from(b);
            self.0 = self.0.wrapping_mul(Self::PRIME);
        }
    }

    /// The id: 32 lowercase hex digits.
    pub fn hex(&self) -> [u8; 32] {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0u8; 32];
        for (i, digit) in out.iter_mut().enumerate() {
            *digit = DIGITS[((self.0 >> (124 - 4 * i)) & 0xf) as usize];
        }
        out
    }
}

impl std::io::Write for RecordIdHash {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.feed(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Wire value → storage-form JSON (what `Value::from_json` reads).
pub fn unwrap_value(json: &Json) -> Result<Json, Error> {
    Ok(match json {
        Json::Object(obj) if obj.len() == 1 => {
            if let Some(v) = obj.get("$timestamp") {
                if !v.is_i64() {
                    return Err(protocol("$timestamp must be an integer"));
                }
                v.clone()
            } else if let Some(v) = obj.get("$vector") {
                v.clone()
            } else if let Some(v) = obj.get("$bytes") {
                let bytes = v
                    .as_array()
                    .ok_or_else(|| protocol("$bytes must be an array"))?
                    .iter()
                    .map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                    .collect::<Option<Vec<u8>>>()
                    .ok_or_else(|| protocol("$bytes items must be 0..255"))?;
                json!({ BYTES_KEY: BASE64.encode(bytes) })
            } else {
                let (k, v) = obj
                    .iter()
                    .next()
                    .map(|(k, v)| (k.clone(), v))
                    .unwrap_or_default();
                json!({ k: unwrap_value(v)? })
            }
        }
        Json::Object(obj) => {
            let mut out = Map::new();
            for (k, v) in obj {
                out.insert(k.clone(), unwrap_value(v)?);
            }
            Json::Object(out)
        }
        Json::Array(items) => {
            Json::Array(items.iter().map(unwrap_value).collect::<Result<_, _>>()?)
        }
        other => other.clone(),
    })
}

/// Engine value of a field → wire JSON (server side). Documents come out
/// with keys sorted.
pub fn wrap_value(value: &Value, kind: WireKind) -> Json {
    match (value, kind) {
        (Value::Null, _) => Json::Null,
        (Value::Int(ms), WireKind::Timestamp) => json!({"$timestamp": ms}),
        (Value::Bytes(b), _) => json!({"$bytes": b.iter().map(|x| *x as u64).collect::<Vec<_>>()}),
        (Value::Vector(v), _) => json!({"$vector": v.iter().copied().collect::<Vec<f64>>()}),
        (Value::List(items), _) => Json::Array(
            items
                .iter()
                .map(|v| wrap_value(v, WireKind::Document))
                .collect(),
        ),
        (Value::Map(entries), _) => {
            let mut sorted: Vec<&(Arc<str>, Value)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
            Json::Object(
                sorted
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), wrap_value(v, WireKind::Document)))
                    .collect(),
            )
        }
        (other, _) => other.to_json(),
    }
}

/// Storage-form JSON of a model field → wire JSON (client side).
pub fn to_wire(json: &Json, field: Option<&FieldDef>) -> Result<Json, Error> {
    let kind = field.map(|f| f.kind);
    Ok(match (json, kind) {
        (Json::Null, _) => Json::Null,
        (Json::String(s), Some(FieldKind::DateTime)) => json!({"$timestamp": iso_to_epoch_ms(s)?}),
        (Json::Array(items), Some(FieldKind::Vector)) => json!({"$vector": items}),
        (Json::Object(obj), _) if obj.len() == 1 && obj.contains_key(BYTES_KEY) => {
            let b64 = obj
                .get(BYTES_KEY)
                .and_then(Json::as_str)
                .unwrap_or_default();
            let bytes = BASE64
                .decode(b64)
                .map_err(|_| Error::serialization("invalid bytes value"))?;
            json!({"$bytes": bytes})
        }
        (Json::Object(obj), _) => {
            let mut out = Map::new();
            for (k, v) in obj {
                out.insert(k.clone(), to_wire(v, None)?);
            }
            Json::Object(out)
        }
        (Json::Array(items), _) => Json::Array(
            items
                .iter()
                .map(|v| to_wire(v, None))
                .collect::<Result<_, _>>()?,
        ),
        (other, _) => other.clone(),
    })
}

/// Wire JSON of a field → engine value for hydration (client side).
pub fn from_wire(json: &Json, field: &FieldDef) -> Result<Value, Error> {
    match (json, field.kind) {
        (Json::Object(obj), FieldKind::DateTime) if obj.contains_key("$timestamp") => {
            let ms = obj
                .get("$timestamp")
                .and_then(Json::as_i64)
                .ok_or_else(|| Error::new(ErrorCode::ProtocolError, "bad $timestamp value"))?;
            Ok(Value::str(&epoch_ms_to_iso(ms)))
        }
        // What `unwrap_value` would copy unchanged is read in place.
        (Json::Null | Json::Bool(_) | Json::Number(_) | Json::String(_), kind) => {
            Value::from_json(json, kind)
        }
        (Json::Object(obj), kind) if obj.len() == 1 && obj.contains_key("$vector") => {
            Value::from_json(&obj["$vector"], kind)
        }
        _ => {
            let storage =
                unwrap_value(json).map_err(|e| Error::new(ErrorCode::ProtocolError, e.message))?;
            Value::from_json(&storage, field.kind)
        }
    }
}

fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

/// `YYYY-MM-DD[THH:MM[:SS[.ffffff]]][Z|±HH:MM]` → epoch milliseconds.
/// Naive values are read as UTC.
pub fn iso_to_epoch_ms(text: &str) -> Result<i64, Error> {
    let bad = || Error::serialization("datetime is not an ISO-8601 value");
    let num = |s: &str| -> Result<i64, Error> {
        if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        s.parse::<i64>().map_err(|_| bad())
    };
    let (date, time) = match text.find(['T', ' ']) {
        Some(at) => (&text[..at], &text[at + 1..]),
        None => (text, ""),
    };
    let mut dp = date.splitn(3, '-');
    let (y, m, d) = (
        num(dp.next().unwrap_or(""))?,
        num(dp.next().unwrap_or(""))?,
        num(dp.next().unwrap_or(""))?,
    );
    let (clock, offset_min) = if let Some(stripped) = time.strip_suffix('Z') {
        (stripped, 0)
    } else if let Some(at) = time.rfind(['+', '-']) {
        let sign = if time.as_bytes()[at] == b'-' { -1 } else { 1 };
        let mut op = time[at + 1..].splitn(2, ':');
        let oh = num(op.next().unwrap_or(""))?;
        let om = op.next().map(num).transpose()?.unwrap_or(0);
        (&time[..at], sign * (oh * 60 + om))
    } else {
        (time, 0)
    };
    let mut parts = clock.splitn(3, ':');
    let h = parts
        .next()
        .filter(|s| !s.is_empty())
        .map(num)
        .transpose()?
        .unwrap_or(0);
    let mi = parts.next().map(num).transpose()?.unwrap_or(0);
    let (s, frac_ms) = match parts.next() {
        Some(sec) => match sec.split_once('.') {
            Some((whole, frac)) => {
                let digits: String = frac.chars().chain("000".chars()).take(3).collect();
                (num(whole)?, num(&digits)?)
            }
            None => (num(sec)?, 0),
        },
        None => (0, 0),
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 || mi > 59 || s > 60 {
        return Err(bad());
    }
    let days = days_from_civil(y, m, d);
    Ok(((days * 86_400 + h * 3600 + mi * 60 + s - offset_min * 60) * 1000) + frac_ms)
}

/// Epoch milliseconds → aware UTC ISO-8601 (`…+00:00`).
pub fn epoch_ms_to_iso(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let milli = ms.rem_euclid(1000);
    let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
    let rem = secs.rem_euclid(86_400);
    let (h, mi, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    if milli == 0 {
        format!("{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}+00:00")
    } else {
        format!(
            "{y:04}-{m:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{:06}+00:00",
            milli * 1000
        )
    }
}

// --------------------------------------------------------------------------- IR → AWP (client)

fn capability(what: &str, capability: &str) -> Error {
    Error::capability("auradb", capability, what)
}

fn field_name(expr: &Expr) -> Option<String> {
    match expr {
        Expr::Field { field, path, .. } => Some(match path {
            Some(p) if !p.is_empty() => format!("{field}.{}", p.join(".")),
            _ => field.clone(),
        }),
        _ => None,
    }
}

fn literal(expr: &Expr) -> Option<&Json> {
    match expr {
        Expr::Literal { value } => Some(value),
        _ => None,
    }
}

/// One IR predicate → an AWP Filter. The model's fields (found by storage
/// name) pick the value wrappers.
pub fn filter_to_wire(expr: &Expr, schema: &ModelSchema) -> Result<Json, Error> {
    match expr {
        Expr::Bool { op, operands } => {
            let filters = operands
                .iter()
                .map(|e| filter_to_wire(e, schema))
                .collect::<Result<Vec<_>, _>>()?;
            let tag = if *op == BoolOp::And { "and" } else { "or" };
            Ok(json!({"type": tag, "filters": filters}))
        }
        Expr::Not { operand } => {
            Ok(json!({"type": "not", "filter": filter_to_wire(operand, schema)?}))
        }
        Expr::Compare { op, left, right } => {
            let field = field_name(left)
                .ok_or_else(|| Error::query("AuraDB filters compare a field with a literal"))?;
            let def = schema.field(field.split('.').next().unwrap_or(&field));
            let def = def.filter(|_| !field.contains('.'));
            let value = || -> Result<Json, Error> {
                let v = literal(right)
                    .ok_or_else(|| Error::query("AuraDB filters compare a field with a literal"))?;
                match (op, v) {
                    (CompareOp::In | CompareOp::NotIn, Json::Array(items)) => Ok(Json::Array(
                        items
                            .iter()
                            .map(|i| to_wire(i, def))
                            .collect::<Result<_, _>>()?,
                    )),
                    _ => to_wire(v, def),
                }
            };
            let cmp = |wire_op: &str| -> Result<Json, Error> {
                Ok(json!({"type": "compare", "field": field, "op": wire_op, "value": value()?}))
            };
            if let Some(wire_op) = wire_op(*op) {
                return cmp(wire_op);
            }
            match op {
                CompareOp::NotIn => Ok(json!({"type": "not", "filter": cmp("in")?})),
                CompareOp::Contains => {
                    let sub = literal(right).cloned().unwrap_or(Json::Null);
                    if !sub.is_string() {
                        return Err(capability("list membership filters", "document_queries"));
                    }
                    Ok(json!({"type": "contains", "field": field, "substring": sub}))
                }
                CompareOp::IsNull => {
                    Ok(json!({"type": "not", "filter": {"type": "exists", "field": field}}))
                }
                CompareOp::IsNotNull | CompareOp::Exists => {
                    Ok(json!({"type": "exists", "field": field}))
                }
                CompareOp::Startswith | CompareOp::Endswith | CompareOp::Like => Err(capability(
                    &format!("the '{}' filter", op.as_str()),
                    "document_queries",
                )),
                // The comparisons `WIRE_OPS` names returned above.
                _ => Err(Error::query(
                    "expression cannot be used as an AuraDB filter",
                )),
            }
        }
        Expr::Literal {
            value: Json::Bool(true),
        } => Ok(json!({"type": "and", "filters": []})),
        _ => Err(Error::query(
            "expression cannot be used as an AuraDB filter",
        )),
    }
}

fn filters_to_wire(filters: &[Expr], schema: &ModelSchema) -> Result<Option<Json>, Error> {
    match filters {
        [] => Ok(None),
        [one] => filter_to_wire(one, schema).map(Some),
        many => filter_to_wire(&Expr::and(many.to_vec()), schema).map(Some),
    }
}

fn wire_metric(metric: &str) -> &str {
    match metric {
        "dot" => "dot_product",
        other => other,
    }
}

/// What the client may send: the capabilities the server advertised.
pub trait Advertised {
    fn has(&self, capability: &str) -> bool;
}

impl Advertised for HashSet<String> {
    fn has(&self, capability: &str) -> bool {
        self.contains(capability)
    }
}

/// A `select` IR → FindQuery (without the `query` tag).
pub fn find_query(
    q: &Select,
    schema: &ModelSchema,
    caps: &dyn Advertised,
) -> Result<Map<String, Json>, Error> {
    let mut out = Map::new();
    out.insert("collection".into(), json!(q.model));
    if let Some(filter) = filters_to_wire(&q.filters, schema)? {
        out.insert("filter".into(), filter);
    }
    if !q.sort.is_empty() {
        let order: Vec<Json> = q
            .sort
            .iter()
            .map(|t| json!({"field": t.field, "desc": t.direction == aura_core::ir::Direction::Desc}))
            .collect();
        out.insert("order_by".into(), Json::Array(order));
    }
    if let Some(limit) = q.limit {
        out.insert("limit".into(), json!(limit));
    }
    if let Some(offset) = q.offset {
        out.insert("offset".into(), json!(offset));
    }
    if !q.projection.is_empty() {
        let mut proj = q.projection.clone();
        // Rows are keyed by the primary key: always fetch it.
        if !proj.iter().any(|p| p == schema.pk_name()) {
            proj.push(schema.pk_name().to_owned());
        }
        out.insert("projection".into(), json!(proj));
    }
    if !q.include.is_empty() {
        for inc in &q.include {
            if inc.limit.is_some() || !inc.sort.is_empty() {
                return Err(capability("include limit/order_by", "relationships"));
            }
            let is_link = schema.field(&inc.link).is_some_and(|f| f.target.is_some());
            if !is_link {
                return Err(capability(
                    "including to-many relationships (AWP 1 has no reverse links)",
                    "relationships",
                ));
            }
        }
        let names: Vec<String> = q
            .include
            .iter()
            .map(|i| {
                schema
                    .field(&i.link)
                    .map_or(i.link.clone(), |f| f.storage.clone())
            })
            .collect();
        out.insert("includes".into(), json!(names));
    }
    if q.text.is_some() || q.fusion.is_some() {
        return Err(capability("legacy text/fusion clauses", "full_text_search"));
    }
    if q.is_ranked() && !q.sort.is_empty() {
        // AuraDB ignores order_by next to a ranked clause (AWP1.md §3.7);
        // dropping it silently would break API.md §16 row 18.
        return Err(capability(
            "order_by on ranked results (AWP 1 orders them by score only)",
            "ranked_order_by",
        ));
    }
    if let Some(v) = &q.vector {
        require(caps, "vector_exact_search", "vector search")?;
        check_dimension(schema, &v.field, v.query.len())?;
        // `k` is required on the wire; without a limit every scored row is
        // wanted, as on the memory engine.
        let k = q
            .limit
            .map_or(UNBOUNDED_K, |l| l.saturating_add(q.offset.unwrap_or(0)));
        out.insert(
            "vector".into(),
            json!({"field": v.field, "query": v.query, "k": k, "metric": wire_metric(&v.metric)}),
        );
        if let Some(ann) = &q.vector_ann {
            if !(caps.has("approximate_vector_search")
                || caps.has("approximate_vector_search_preview"))
            {
                return Err(capability(
                    "approximate vector search",
                    "approximate_vector_search",
                ));
            }
            out.insert("vector_ann".into(), Json::Object(ann.clone()));
        }
    } else if q.vector_ann.is_some() {
        return Err(Error::query("approximate search needs a vector clause"));
    }
    if let Some(t) = &q.text_search {
        require(caps, "full_text_bm25_ranking", "ranked full-text search")?;
        out.insert("text_search".into(), text_search_json(t));
    }
    if let Some(h) = &q.hybrid {
        require(caps, "hybrid_search", "hybrid search")?;
        check_dimension(schema, &h.vector_field, h.vector.len())?;
        let mut hy = json!({
            "text_field": h.text_field, "text_query": h.text_query, "vector_field": h.vector_field,
            "vector": h.vector, "top_k": h.top_k, "metric": wire_metric(&h.metric),
            "weights": {"text": h.weights.text, "vector": h.weights.vector},
            "fusion": h.fusion, "operator": h.operator,
        });
        if let Some(k1) = h.k1 {
            hy["k1"] = json!(k1);
        }
        if let Some(b) = h.b {
            hy["b"] = json!(b);
        }
        out.insert("hybrid".into(), hy);
    }
    if let Some(ms) = q.timeout_ms {
        require(caps, "query_timeouts", "query timeouts")?;
        out.insert("timeout_ms".into(), json!(ms));
    }
    Ok(out)
}

/// A query vector must match its field's `Vector[N]` (API.md §16 row 16):
/// refused before sending, with the memory engine's error.
fn check_dimension(schema: &ModelSchema, field: &str, got: usize) -> Result<(), Error> {
    match schema.field(field).and_then(|f| f.vector_dim) {
        Some(dim) if dim != got => Err(Error::validation(format!(
            "Query vector for {}.{field} expects dimension {dim}, got {got}",
            schema.name
        ))),
        _ => Ok(()),
    }
}

/// `k` sent for a vector clause without a limit: the server's default
/// `max_query_limit` (AWP1.md §1.1).
pub const UNBOUNDED_K: u64 = 1_000_000;

/// A `search_page` IR → QUERY payload (AWP1.md §3.7). The wire ignores the
/// find's limit/offset (only `k`/`top_k` bound the ranking), so an offset
/// is refused rather than dropped; the builder bounds pages by `limit`.
pub fn search_page_query(
    q: &Select,
    schema: &ModelSchema,
    caps: &dyn Advertised,
) -> Result<Json, Error> {
    if !(caps.has("ranked_pagination") || caps.has("ranked_search_cursor")) {
        return Err(capability("ranked pagination", "ranked_pagination"));
    }
    if q.offset.is_some_and(|o| o > 0) {
        return Err(capability(
            "offset on search pages (AWP 1 pages start at the first ranked row)",
            "ranked_pagination",
        ));
    }
    if q.vector.is_none() && q.text_search.is_none() && q.hybrid.is_none() {
        return Err(Error::query(
            "search_pages requires a ranked clause (search_text, search_vector, or search_hybrid)",
        ));
    }
    let page_size = q
        .page_size
        .filter(|n| *n > 0)
        .ok_or_else(|| Error::query("page_size must be a positive int"))?;
    let mut find = find_query(q, schema, caps)?;
    find.remove("limit");
    find.remove("offset");
    let mut out = Map::new();
    out.insert("query".into(), json!("search_page"));
    out.insert("find".into(), Json::Object(find));
    out.insert("page_size".into(), json!(page_size));
    match &q.cursor {
        None | Some(Json::Null) => {}
        Some(Json::String(c)) => {
            out.insert("cursor".into(), json!(c));
        }
        Some(_) => return Err(Error::query("a search page cursor is a string")),
    }
    Ok(Json::Object(out))
}

/// An `aggregate` IR → QUERY payload (AWP1.md §3.7 AggregateQuery). `sum`
/// has no wire form; `avg` and `group_by` need `group_by_aggregation`.
pub fn aggregate_query(
    q: &Select,
    schema: &ModelSchema,
    caps: &dyn Advertised,
) -> Result<Json, Error> {
    require(caps, "aggregations_and_facets", "aggregations and facets")?;
    if q.vector.is_some() || q.hybrid.is_some() || q.text.is_some() || q.fusion.is_some() {
        return Err(capability(
            "aggregations over vector or hybrid results (AWP 1 scopes them by text_search only)",
            "aggregations_and_facets",
        ));
    }
    let mut out = Map::new();
    out.insert("query".into(), json!("aggregate"));
    out.insert("collection".into(), json!(q.model));
    if let Some(filter) = filters_to_wire(&q.filters, schema)? {
        out.insert("filter".into(), filter);
    }
    if let Some(t) = &q.text_search {
        require(caps, "full_text_bm25_ranking", "ranked full-text search")?;
        out.insert("text_search".into(), text_search_json(t));
    }
    let facets: Vec<Json> = q
        .facets
        .iter()
        .map(|f| match f.limit {
            Some(limit) => json!({"field": f.field, "limit": limit}),
            None => json!({"field": f.field}),
        })
        .collect();
    out.insert("facets".into(), Json::Array(facets));
    let mut metrics = Vec::with_capacity(q.metrics.len());
    for m in &q.metrics {
        match m.op.as_str() {
            "count" | "min" | "max" => {}
            "avg" => require(caps, "group_by_aggregation", "the avg metric")?,
            other => {
                return Err(capability(
                    &format!("the {other} metric (AWP 1 has count, min, max and avg)"),
                    "aggregations_and_facets",
                ))
            }
        }
        metrics.push(match &m.field {
            Some(f) => json!({"op": m.op, "field": f}),
            None => json!({"op": m.op}),
        });
    }
    out.insert("metrics".into(), Json::Array(metrics));
    if let Some(g) = &q.group_by {
        require(caps, "group_by_aggregation", "group_by aggregations")?;
        out.insert("group_by".into(), json!(g.field));
        if let Some(limit) = g.limit {
            out.insert("group_limit".into(), json!(limit));
        }
    }
    if let Some(ms) = q.timeout_ms {
        require(caps, "query_timeouts", "query timeouts")?;
        out.insert("timeout_ms".into(), json!(ms));
    }
    Ok(Json::Object(out))
}

/// An AWP AggregateResult → the result dict the memory engine returns
/// (API.md §4.3 plus `group_by`/`groups`), values unwrapped.
pub fn aggregate_result_from_wire(body: &Json) -> Result<Json, Error> {
    let bad = || Error::new(ErrorCode::ProtocolError, "malformed aggregate result");
    let value = |v: Option<&Json>| -> Result<Json, Error> {
        unwrap_value(v.unwrap_or(&Json::Null)).map_err(|_| bad())
    };
    let metrics = |list: Option<&Json>| -> Result<Json, Error> {
        let mut out = Vec::new();
        for m in list.and_then(Json::as_array).into_iter().flatten() {
            let mut entry = json!({"op": m.get("op").cloned().ok_or_else(bad)?, "value": value(m.get("value"))?});
            if let Some(f) = m.get("field").filter(|f| !f.is_null()) {
                entry["field"] = f.clone();
            }
            out.push(entry);
        }
        Ok(Json::Array(out))
    };
    /// (value, count, metrics) of each bucket or group.
    type Bucket<'a> = (Json, Json, Option<&'a Json>);
    fn buckets<'a>(
        list: Option<&'a Json>,
        key: &str,
        value: &dyn Fn(Option<&Json>) -> Result<Json, Error>,
    ) -> Result<Vec<Bucket<'a>>, Error> {
        list.and_then(Json::as_array)
            .into_iter()
            .flatten()
            .map(|b| {
                let count = b
                    .get("count")
                    .cloned()
                    .ok_or_else(|| Error::new(ErrorCode::ProtocolError, "bucket without count"))?;
                Ok((value(b.get(key))?, count, b.get("metrics")))
            })
            .collect()
    }
    let mut facets = Vec::new();
    for f in body
        .get("facets")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let items: Vec<Json> = buckets(f.get("buckets"), "value", &value)?
            .into_iter()
            .map(|(v, c, _)| json!({"value": v, "count": c}))
            .collect();
        facets.push(json!({
            "field": f.get("field").cloned().ok_or_else(bad)?,
            "buckets": items,
            "used_index": f.get("used_index").and_then(Json::as_bool).unwrap_or(false),
        }));
    }
    let mut out = Map::new();
    for key in [
        "collection",
        "matched",
        "scanned",
        "filter_present",
        "search_scoped",
    ] {
        out.insert(key.into(), body.get(key).cloned().ok_or_else(bad)?);
    }
    out.insert("metrics".into(), metrics(body.get("metrics"))?);
    out.insert("facets".into(), Json::Array(facets));
    if let Some(g) = body.get("groups").filter(|g| g.is_object()) {
        let mut groups = Vec::new();
        for (v, c, m) in buckets(g.get("groups"), "key", &value)? {
            groups.push(json!({"value": v, "count": c, "metrics": metrics(m)?}));
        }
        out.insert("group_by".into(), g.get("field").cloned().ok_or_else(bad)?);
        out.insert("groups".into(), Json::Array(groups));
    }
    Ok(Json::Object(out))
}

fn text_search_json(t: &aura_core::ir::TextSearch) -> Json {
    let mut ts =
        json!({"field": t.field, "query": t.query, "operator": t.operator, "rank": t.rank});
    if let Some(k1) = t.k1 {
        ts["k1"] = json!(k1);
    }
    if let Some(b) = t.b {
        ts["b"] = json!(b);
    }
    ts
}

fn require(caps: &dyn Advertised, capability_name: &str, what: &str) -> Result<(), Error> {
    if caps.has(capability_name) {
        Ok(())
    } else {
        Err(capability(what, capability_name))
    }
}

/// `count` / `exists` IR → QUERY payload.
pub fn filtered_query(kind: &str, q: &Filtered, schema: &ModelSchema) -> Result<Json, Error> {
    let mut out = Map::new();
    out.insert("query".into(), json!(kind));
    out.insert("collection".into(), json!(q.model));
    if let Some(filter) = filters_to_wire(&q.filters, schema)? {
        out.insert("filter".into(), filter);
    }
    Ok(Json::Object(out))
}

/// `update` IR → MUTATE payload.
pub fn update_mutation(q: &Update, schema: &ModelSchema) -> Result<Json, Error> {
    let filter = filters_to_wire(&q.filters, schema)?.unwrap_or(Json::Null);
    let mut set = Map::new();
    for (k, v) in &q.set {
        let def = schema.field(k);
        let name = def.map_or(k.clone(), |f| f.storage.clone());
        set.insert(name, to_wire(v, def)?);
    }
    Ok(json!({"mutation": "update", "collection": q.model, "filter": filter, "set": set}))
}

/// `delete` IR → MUTATE payload.
pub fn delete_mutation(q: &Filtered, schema: &ModelSchema) -> Result<Json, Error> {
    let filter = filters_to_wire(&q.filters, schema)?.unwrap_or(Json::Null);
    Ok(json!({"mutation": "delete", "collection": q.model, "filter": filter}))
}

/// An engine row (model field order) → AWP `fields` object.
pub fn row_to_wire(row: &[Value], schema: &ModelSchema) -> Result<Map<String, Json>, Error> {
    let mut out = Map::new();
    for (f, v) in schema.fields.iter().zip(row.iter()) {
        out.insert(f.storage.clone(), to_wire(&v.to_json(), Some(f))?);
    }
    Ok(out)
}

/// AWP `fields` object → engine row in model field order (client side).
pub fn row_from_wire(
    fields: &Map<String, Json>,
    schema: &ModelSchema,
) -> Result<Vec<Value>, Error> {
    schema
        .fields
        .iter()
        .map(|f| match fields.get(&f.storage) {
            Some(v) => from_wire(v, f),
            None => Ok(Value::Null),
        })
        .collect()
}

// --------------------------------------------------------------------------- AWP → IR (server)

/// Server-side view of the collections, for resolving field kinds.
pub trait Catalog {
    fn collection(&self, name: &str) -> Option<Arc<Collection>>;
}

fn not_found_collection(name: &str) -> Error {
    wire_error("not_found", &format!("not found: collection {name}"))
}

/// AWP Filter → IR predicate over `coll`.
pub fn filter_from_wire(filter: &Json, coll: &Collection) -> Result<Expr, Error> {
    let model = coll.schema.name.as_str();
    let ty = filter
        .get("type")
        .and_then(Json::as_str)
        .ok_or_else(|| protocol("missing field `type`"))?;
    let field = |key: &str| -> Result<Expr, Error> { Ok(field_expr(model, string(filter, key)?)) };
    let sub = |key: &str| -> Result<Vec<Expr>, Error> {
        filter
            .get(key)
            .and_then(Json::as_array)
            .ok_or_else(|| protocol(&format!("missing field `{key}`")))?
            .iter()
            .map(|f| filter_from_wire(f, coll))
            .collect()
    };
    Ok(match ty {
        "and" => Expr::and(sub("filters")?),
        "or" => Expr::or(sub("filters")?),
        "not" => Expr::negate(filter_from_wire(
            filter
                .get("filter")
                .ok_or_else(|| protocol("missing field `filter`"))?,
            coll,
        )?),
        "compare" => compare_from_wire(
            model,
            string(filter, "op")?,
            filter.get("value").unwrap_or(&Json::Null),
            || string(filter, "field"),
        )?,
        "contains" => {
            let sub = filter.get("substring").cloned().unwrap_or(Json::Null);
            Expr::compare(CompareOp::Contains, field("field")?, Expr::literal(sub))
        }
        "exists" => Expr::compare(
            CompareOp::IsNotNull,
            field("field")?,
            Expr::literal(Json::Null),
        ),
        "contains_text" => {
            return Err(wire_error(
                "unsupported",
                "unsupported: contains_text (this single-node release does not implement this)",
            ))
        }
        other => return Err(protocol(&format!("unknown variant `{other}`"))),
    })
}

/// A filter's (possibly dotted) field name → IR field of `model`.
pub(crate) fn field_expr(model: &str, name: &str) -> Expr {
    let mut parts = name.split('.');
    let root = parts.next().unwrap_or(name).to_owned();
    let path: Vec<String> = parts.map(str::to_owned).collect();
    Expr::Field {
        model: model.to_owned(),
        field: root,
        path: if path.is_empty() { None } else { Some(path) },
    }
}

/// The comparisons an AWP `compare` filter names, with their wire names.
const WIRE_OPS: [(CompareOp, &str); 7] = [
    (CompareOp::Eq, "eq"),
    (CompareOp::Ne, "ne"),
    (CompareOp::Lt, "lt"),
    (CompareOp::Le, "lte"),
    (CompareOp::Gt, "gt"),
    (CompareOp::Ge, "gte"),
    (CompareOp::In, "in"),
];

/// The wire name of a comparison a `compare` filter carries as it is.
pub(crate) fn wire_op(op: CompareOp) -> Option<&'static str> {
    WIRE_OPS
        .iter()
        .find(|(o, _)| *o == op)
        .map(|(_, name)| *name)
}

/// A `compare` filter → IR, checked in the order the server always has:
/// op, value, then the field (read through `field` only then).
pub(crate) fn compare_from_wire<'a>(
    model: &str,
    op: &str,
    value: &Json,
    field: impl FnOnce() -> Result<&'a str, Error>,
) -> Result<Expr, Error> {
    let Some(&(op, _)) = WIRE_OPS.iter().find(|(_, name)| *name == op) else {
        return Err(protocol(&format!("unknown variant `{op}`")));
    };
    let value = unwrap_value(value)?;
    if op == CompareOp::In && !value.is_array() {
        return Err(invalid("'in' needs an array value"));
    }
    Ok(Expr::compare(
        op,
        field_expr(model, field()?),
        Expr::literal(value),
    ))
}

fn opt_filter(payload: &Json, coll: &Collection) -> Result<Vec<Expr>, Error> {
    match payload.get("filter") {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(f) => Ok(vec![filter_from_wire(f, coll)?]),
    }
}

fn opt_u64(payload: &Json, key: &str) -> Result<Option<u64>, Error> {
    match payload.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .map(Some)
            .ok_or_else(|| protocol(&format!("'{key}' must be a non-negative integer"))),
    }
}

/// FindQuery → IR select (server side).
pub fn select_from_wire(
    payload: &Json,
    catalog: &dyn Catalog,
) -> Result<(Select, Arc<Collection>), Error> {
    let name = string(payload, "collection")?;
    let coll = catalog
        .collection(name)
        .ok_or_else(|| not_found_collection(name))?;
    let mut q = Select::new(name);
    q.filters = opt_filter(payload, &coll)?;
    if let Some(order) = payload.get("order_by").and_then(Json::as_array) {
        for term in order {
            let desc = flag(term, "desc", false)?;
            q.sort.push(OrderTerm {
                field: string(term, "field")?.to_owned(),
                direction: if desc {
                    aura_core::ir::Direction::Desc
                } else {
                    aura_core::ir::Direction::Asc
                },
            });
        }
    }
    q.limit = opt_u64(payload, "limit")?;
    q.offset = opt_u64(payload, "offset")?;
    if let Some(p) = payload.get("projection").and_then(Json::as_array) {
        q.projection = p
            .iter()
            .filter_map(Json::as_str)
            .map(str::to_owned)
            .collect();
    }
    if let Some(inc) = payload.get("includes").and_then(Json::as_array) {
        for name in inc.iter().filter_map(Json::as_str) {
            let Some((_, _, to_many)) = coll.relationships.iter().find(|r| r.0 == name) else {
                return Err(invalid(&format!("unknown relationship {name}")));
            };
            if *to_many {
                return Err(wire_error(
                    "unsupported",
                    "unsupported: to_many includes (this single-node release does not implement this)",
                ));
            }
            q.include.push(Include {
                link: name.to_owned(),
                limit: None,
                sort: Vec::new(),
            });
        }
    }
    let ranked = ["vector", "text_search", "hybrid"]
        .iter()
        .filter(|k| payload.get(**k).is_some_and(|v| !v.is_null()))
        .count();
    if ranked > 1 {
        return Err(invalid("at most one of vector, text_search and hybrid"));
    }
    if let Some(v) = payload.get("vector").filter(|v| !v.is_null()) {
        let metric = wire_metric_name(string(v, "metric")?)?;
        let query = numbers(v, "query")?;
        let k = opt_u64(v, "k")?.ok_or_else(|| protocol("missing field `k`"))?;
        let field = string(v, "field")?.to_owned();
        if let Some(WireKind::Vector(dim)) = coll.kind_of(&field) {
            if dim != query.len() {
                return Err(invalid(&format!(
                    "vector dimension mismatch: expected {dim}, got {}",
                    query.len()
                )));
            }
        }
        q.vector = Some(VectorClause {
            field,
            metric: metric.to_owned(),
            query,
        });
        // The engine pages ranked results with limit/offset; k bounds them.
        let cap = k.saturating_sub(q.offset.unwrap_or(0));
        q.limit = Some(q.limit.map_or(cap, |l| l.min(cap)));
    }
    if let Some(ann) = payload.get("vector_ann").filter(|v| !v.is_null()) {
        if q.vector.is_none() {
            return Err(invalid("vector_ann needs a vector clause"));
        }
        let params = ann
            .as_object()
            .ok_or_else(|| protocol("vector_ann must be an object"))?;
        q.vector_ann = Some(params.clone());
    }
    if let Some(t) = payload.get("text_search").filter(|v| !v.is_null()) {
        q.text_search = Some(text_search_from_wire(t)?);
    }
    if let Some(h) = payload.get("hybrid").filter(|v| !v.is_null()) {
        let hybrid = hybrid_from_wire(h)?;
        if let Some(WireKind::Vector(dim)) = coll.kind_of(&hybrid.vector_field) {
            if dim != hybrid.vector.len() {
                return Err(invalid(&format!(
                    "vector dimension mismatch: expected {dim}, got {}",
                    hybrid.vector.len()
                )));
            }
        }
        q.hybrid = Some(hybrid);
    }
    q.timeout_ms = opt_u64(payload, "timeout_ms")?.filter(|ms| *ms > 0);
    Ok((q, coll))
}

fn opt_f64(obj: &Json, key: &str) -> Result<Option<f64>, Error> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| protocol(&format!("'{key}' must be a number"))),
    }
}

fn choice(obj: &Json, key: &str, default: &str, allowed: &[&str]) -> Result<String, Error> {
    match obj.get(key) {
        None | Some(Json::Null) => Ok(default.to_owned()),
        Some(Json::String(v)) if allowed.contains(&v.as_str()) => Ok(v.clone()),
        Some(other) => Err(protocol(&format!("unknown variant `{other}` of {key}"))),
    }
}

fn wire_metric_name(name: &str) -> Result<&'static str, Error> {
    match name {
        "cosine" => Ok("cosine"),
        "euclidean" | "l2" => Ok("euclidean"),
        "dot_product" | "dot" | "dotproduct" => Ok("dot"),
        other => Err(invalid(&format!("unknown metric {other}"))),
    }
}

fn numbers(obj: &Json, key: &str) -> Result<Vec<f64>, Error> {
    let raw = obj
        .get(key)
        .ok_or_else(|| protocol(&format!("missing field `{key}`")))?;
    let raw = raw.get("$vector").unwrap_or(raw);
    raw.as_array()
        .ok_or_else(|| protocol(&format!("'{key}' must be an array of numbers")))?
        .iter()
        .map(|x| {
            x.as_f64()
                .ok_or_else(|| protocol(&format!("'{key}' must be numbers")))
        })
        .collect()
}

/// TextSearch (AWP1.md §3.7) → IR clause (server side).
pub fn text_search_from_wire(t: &Json) -> Result<aura_core::ir::TextSearch, Error> {
    Ok(aura_core::ir::TextSearch {
        field: string(t, "field")?.to_owned(),
        query: string(t, "query")?.to_owned(),
        operator: choice(t, "operator", "or", &["or", "and"])?,
        rank: choice(t, "rank", "bm25", &["bm25", "term_frequency"])?,
        k1: opt_f64(t, "k1")?,
        b: opt_f64(t, "b")?,
    })
}

/// HybridSearch (AWP1.md §3.7) → IR clause (server side).
pub fn hybrid_from_wire(h: &Json) -> Result<aura_core::ir::Hybrid, Error> {
    let weights = match h.get("weights") {
        None | Some(Json::Null) => aura_core::ir::Weights {
            text: 0.5,
            vector: 0.5,
        },
        Some(w) => aura_core::ir::Weights {
            text: opt_f64(w, "text")?.ok_or_else(|| protocol("missing field `text`"))?,
            vector: opt_f64(w, "vector")?.ok_or_else(|| protocol("missing field `vector`"))?,
        },
    };
    Ok(aura_core::ir::Hybrid {
        text_field: string(h, "text_field")?.to_owned(),
        text_query: string(h, "text_query")?.to_owned(),
        vector_field: string(h, "vector_field")?.to_owned(),
        vector: numbers(h, "vector")?,
        top_k: opt_u64(h, "top_k")?.ok_or_else(|| protocol("missing field `top_k`"))?,
        metric: wire_metric_name(h.get("metric").and_then(Json::as_str).unwrap_or("cosine"))?
            .to_owned(),
        weights,
        fusion: choice(
            h,
            "fusion",
            "weighted_sum",
            &["weighted_sum", "reciprocal_rank_fusion"],
        )?,
        operator: choice(h, "operator", "or", &["or", "and"])?,
        k1: opt_f64(h, "k1")?,
        b: opt_f64(h, "b")?,
    })
}

/// AggregateQuery → IR aggregate (server side). `group_by` asks the engine
/// for every group (`all_groups`); the caller applies `group_limit`.
pub fn aggregate_from_wire(
    payload: &Json,
    catalog: &dyn Catalog,
    all_groups: u64,
) -> Result<(Select, Option<u64>), Error> {
    let name = string(payload, "collection")?;
    let coll = catalog
        .collection(name)
        .ok_or_else(|| not_found_collection(name))?;
    let mut q = Select::new(name);
    q.filters = opt_filter(payload, &coll)?;
    if let Some(t) = payload.get("text_search").filter(|v| !v.is_null()) {
        q.text_search = Some(text_search_from_wire(t)?);
    }
    for f in payload
        .get("facets")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        q.facets.push(aura_core::ir::Facet {
            field: string(f, "field")?.to_owned(),
            limit: opt_u64(f, "limit")?,
        });
    }
    for m in payload
        .get("metrics")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
    {
        let op = choice(m, "op", "", &["count", "min", "max", "avg"])?;
        if op.is_empty() {
            return Err(protocol("missing field `op`"));
        }
        let field = m.get("field").and_then(Json::as_str).map(str::to_owned);
        if op != "count" && field.is_none() {
            return Err(invalid(&format!("metric {op} needs a field")));
        }
        q.metrics.push(aura_core::ir::MetricRequest {
            op: op.clone(),
            field: if op == "count" { None } else { field },
        });
    }
    let group_limit = opt_u64(payload, "group_limit")?;
    match payload.get("group_by").filter(|v| !v.is_null()) {
        Some(g) => {
            let field = g
                .as_str()
                .ok_or_else(|| protocol("group_by must be a field name"))?;
            if group_limit == Some(0) {
                return Err(invalid("group_limit must be at least 1"));
            }
            q.group_by = Some(aura_core::ir::Facet {
                field: field.to_owned(),
                limit: Some(all_groups),
            });
        }
        None if group_limit.is_some() => return Err(invalid("group_limit needs group_by")),
        None => {}
    }
    if q.facets.is_empty() && q.metrics.is_empty() && q.group_by.is_none() {
        return Err(invalid(
            "aggregate needs at least one facet, metric or group_by",
        ));
    }
    q.timeout_ms = opt_u64(payload, "timeout_ms")?.filter(|ms| *ms > 0);
    Ok((q, group_limit))
}

/// The engine's aggregate dict → AWP AggregateResult (server side).
pub fn aggregate_result_to_wire(engine: &Json, group_limit: Option<u64>) -> Json {
    let mut out = Map::new();
    for key in [
        "collection",
        "matched",
        "scanned",
        "filter_present",
        "search_scoped",
        "metrics",
    ] {
        out.insert(key.into(), engine.get(key).cloned().unwrap_or(Json::Null));
    }
    let facets: Vec<Json> = engine
        .get("facets")
        .and_then(Json::as_array)
        .into_iter()
        .flatten()
        .map(|f| json!({"field": f["field"], "used_index": false, "buckets": f["buckets"]}))
        .collect();
    out.insert("facets".into(), Json::Array(facets));
    if let Some(groups) = engine.get("groups").and_then(Json::as_array) {
        let limit = usize::try_from(group_limit.unwrap_or(1000)).unwrap_or(usize::MAX);
        let kept: Vec<Json> = groups
            .iter()
            .take(limit)
            .map(|g| json!({"key": g["value"], "count": g["count"], "metrics": g["metrics"]}))
            .collect();
        out.insert(
            "groups".into(),
            json!({
                "field": engine.get("group_by").cloned().unwrap_or(Json::Null),
                "groups": kept,
                "group_count_total": groups.len(),
                "group_limit": limit,
            }),
        );
    }
    Json::Object(out)
}

/// `count` / `exists` → IR (server side).
pub fn filtered_from_wire(payload: &Json, catalog: &dyn Catalog) -> Result<Filtered, Error> {
    let name = string(payload, "collection")?;
    let coll = catalog
        .collection(name)
        .ok_or_else(|| not_found_collection(name))?;
    Ok(Filtered::new(name, opt_filter(payload, &coll)?))
}

/// One record's wire `fields` → an engine row of `coll` (server side).
pub fn record_from_wire(fields: &Json, coll: &Collection) -> Result<Vec<Value>, Error> {
    let obj = fields
        .as_object()
        .ok_or_else(|| protocol("record fields must be an object"))?;
    for key in obj.keys() {
        if coll.schema.field_index(key).is_none() && !coll.relationships.iter().any(|r| &r.0 == key)
        {
            return Err(wire_error(
                "schema_violation",
                &format!("schema violation: unknown field {key}"),
            ));
        }
    }
    coll.schema
        .fields
        .iter()
        .zip(coll.kinds.iter())
        .map(|(f, kind)| {
            let raw = obj.get(&f.storage).unwrap_or(&Json::Null);
            if raw.is_null() && f.storage == coll.schema.pk_name() {
                return Err(wire_error(
                    "schema_violation",
                    &format!(
                        "schema violation: primary key {} must be present",
                        f.storage
                    ),
                ));
            }
            let storage = unwrap_value(raw)?;
            if let (WireKind::Vector(dim), Json::Array(items)) = (kind, &storage) {
                if items.len() != *dim {
                    return Err(wire_error(
                        "schema_violation",
                        &format!(
                            "schema violation: field {} expects {dim} dimensions",
                            f.storage
                        ),
                    ));
                }
            }
            let engine_kind = if f.kind == FieldKind::Link {
                kind.engine_kind()
            } else {
                f.kind
            };
            Value::from_json(&storage, engine_kind).map_err(|_| {
                wire_error(
                    "schema_violation",
                    &format!(
                        "schema violation: field {} expects {}",
                        f.storage,
                        kind.name()
                    ),
                )
            })
        })
        .collect()
}

/// `set` of an update mutation → storage-form map (server side).
pub fn set_from_wire(set: &Json, coll: &Collection) -> Result<Map<String, Json>, Error> {
    let obj = set
        .as_object()
        .ok_or_else(|| protocol("missing field `set`"))?;
    let mut out = Map::new();
    for (k, v) in obj {
        if coll.schema.field_index(k).is_none() {
            return Err(wire_error(
                "schema_violation",
                &format!("schema violation: unknown field {k}"),
            ));
        }
        out.insert(k.clone(), unwrap_value(v)?);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn record_id_matches_spec_example() {
        assert_eq!(
            record_id("Doc", &json!(2)),
            "a35c27934683d94f7080e270d7e7451f"
        );
    }

    #[test]
    fn iso_round_trips_through_epoch_ms() {
        assert_eq!(iso_to_epoch_ms("1970-01-01T00:00:00").unwrap(), 0);
        assert_eq!(
            iso_to_epoch_ms("2024-06-04T00:00:00+00:00").unwrap(),
            1_717_459_200_000
        );
        assert_eq!(
            iso_to_epoch_ms("2024-06-04T02:00:00.250+02:00").unwrap(),
            1_717_459_200_250
        );
        assert_eq!(iso_to_epoch_ms("1969-12-31T23:59:59.999Z").unwrap(), -1);
        assert_eq!(
            epoch_ms_to_iso(1_717_459_200_250),
            "2024-06-04T00:00:00.250000+00:00"
        );
        assert_eq!(epoch_ms_to_iso(-1), "1969-12-31T23:59:59.999000+00:00");
        assert!(iso_to_epoch_ms("yesterday").is_err());
        assert!(iso_to_epoch_ms("2024-13-01").is_err());
    }

    #[test]
    fn wrappers_unwrap_to_storage_form() {
        assert_eq!(unwrap_value(&json!({"$timestamp": 5})).unwrap(), json!(5));
        assert_eq!(
            unwrap_value(&json!({"$bytes": [1, 2, 255]})).unwrap(),
            json!({"__bytes__": "AQL/"})
        );
        assert_eq!(
            unwrap_value(&json!({"$vector": [0.5]})).unwrap(),
            json!([0.5])
        );
        assert!(unwrap_value(&json!({"$bytes": [256]})).is_err());
        assert_eq!(
            wrap_value(&Value::Bytes(Arc::from(vec![1u8, 255])), WireKind::Bytes),
            json!({"$bytes": [1, 255]})
        );
        assert_eq!(
            wrap_value(&Value::Int(7), WireKind::Timestamp),
            json!({"$timestamp": 7})
        );
    }

    #[test]
    fn filters_translate_both_ways() {
        let mut schema = ModelSchema {
            name: "Doc".into(),
            primary_key: Some("id".into()),
            fields: vec![
                FieldDef::new("id", FieldKind::Int),
                FieldDef::new("status", FieldKind::Str),
            ],
            relationships: vec![],
        };
        let pred = Expr::compare(CompareOp::Le, Expr::field("Doc", "id"), Expr::literal(3));
        assert_eq!(
            filter_to_wire(&pred, &schema).unwrap(),
            json!({"type": "compare", "field": "id", "op": "lte", "value": 3})
        );
        let not_in = Expr::compare(
            CompareOp::NotIn,
            Expr::field("Doc", "id"),
            Expr::literal(json!([1])),
        );
        assert_eq!(
            filter_to_wire(&not_in, &schema).unwrap(),
            json!({"type": "not", "filter": {"type": "compare", "field": "id", "op": "in", "value": [1]}})
        );
        let like = Expr::compare(
            CompareOp::Like,
            Expr::field("Doc", "status"),
            Expr::literal("a%"),
        );
        let err = filter_to_wire(&like, &schema).unwrap_err();
        assert_eq!(err.code, ErrorCode::BackendCapabilityError);
        schema.fields[1].index = true;
        let awp = collection_schema(&schema, &|_| None);
        let coll = parse_collection(&awp).unwrap();
        assert!(coll.schema.fields[1].index);
        let back = filter_from_wire(
            &json!({"type": "compare", "field": "id", "op": "lte", "value": 3}),
            &coll,
        )
        .unwrap();
        assert_eq!(back, pred);
    }

    #[test]
    fn links_to_string_keys_are_relationships_alone() {
        let book = ModelSchema {
            name: "Book".into(),
            primary_key: Some("id".into()),
            fields: vec![
                FieldDef::new("id", FieldKind::Int),
                FieldDef::link("author", "Author", None),
                FieldDef::link("shelf", "Shelf", Some(OnDelete::SetNull)),
            ],
            relationships: vec![],
        };
        let key_kind = |target: &str| match target {
            "Author" => Some(FieldKind::Str),
            _ => Some(FieldKind::Int),
        };
        let awp = collection_schema(&book, &key_kind);
        let names: Vec<&str> = awp["fields"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["name"].as_str().unwrap())
            .collect();
        // AuraDB's form for the string key; the integer key keeps its field.
        assert_eq!(names, ["id", "shelf"]);
        assert_eq!(
            awp["relationships"],
            json!([
                {"name": "author", "target": "Author", "cardinality": "to_one", "on_delete": "restrict"},
                {"name": "shelf", "target": "Shelf", "cardinality": "to_one", "on_delete": "set_null"},
            ])
        );
        // The server stores the relationship alone as a nullable link field.
        let coll = parse_collection(&awp).unwrap();
        let author = coll.schema.field("author").unwrap();
        assert_eq!(
            (author.kind, author.target.as_deref(), author.nullable),
            (FieldKind::Link, Some("Author"), true)
        );
        assert_eq!(coll.kind_of("author"), Some(WireKind::String));
        assert_eq!(coll.schema.field("shelf").unwrap().kind, FieldKind::Link);
        assert_eq!(coll.awp["fields"].as_array().unwrap().len(), 2);
    }
}
