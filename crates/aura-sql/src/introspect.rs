//! Reading a live table's shape back (`diff_schema`): one statement for
//! the columns, one for the indexes and one for the full-text indexes,
//! each with the table name bound as a parameter, and the normalised
//! `LiveTable` their rows make.
//!
//! Row shapes (every dialect):
//! - columns: `(name, type, not_null 0/1, primary_key 0/1)` in table order;
//! - indexes: `(index name, unique 0/1, column name)` per indexed column,
//!   primary-key indexes left out;
//! - full text: one `(name)` per full-text index: SQLite FTS5 tables
//!   `<Model>__fts_<field>`, PostgreSQL/MySQL indexes `ftx_<Model>_<field>`.

use aura_core::{FieldDef, ModelSchema, Value};
use serde_json::{json, Value as Json};

use crate::codec::SqlValue;
use crate::ddl::field_type;
use crate::dialect::{escape_like, Dialect, LIKE_ESCAPE};
use crate::sql::{Sql, Statement};
use crate::Catalog;

/// The statements reading one table's shape.
#[derive(Debug, Clone, PartialEq)]
pub struct Introspection {
    pub columns: Statement,
    pub indexes: Statement,
    pub full_text: Statement,
}

fn one(dialect: Dialect, text: &str, value: String, tail: &str) -> Statement {
    let mut sql = Sql::new(dialect);
    sql.push(text).bind(SqlValue::Text(value)).push(tail);
    sql.finish()
}

/// The prefix full-text index names of `table` start with.
fn full_text_prefix(dialect: Dialect, table: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("{table}__fts_"),
        Dialect::Postgres | Dialect::Mysql => format!("ftx_{table}_"),
    }
}

/// The introspection statements for `table`.
pub fn introspect(dialect: Dialect, table: &str) -> Introspection {
    let pattern = format!("{}%", escape_like(&full_text_prefix(dialect, table)));
    let escape = format!(" ESCAPE '{LIKE_ESCAPE}'");
    match dialect {
        Dialect::Sqlite => Introspection {
            columns: one(
                dialect,
                "SELECT name, type, \"notnull\", pk > 0 FROM pragma_table_info(",
                table.to_owned(),
                ") ORDER BY cid",
            ),
            indexes: one(
                dialect,
                "SELECT il.name, il.\"unique\", ii.name FROM pragma_index_list(",
                table.to_owned(),
                ") AS il JOIN pragma_index_info(il.name) AS ii \
                 WHERE il.origin <> 'pk' ORDER BY il.name, ii.seqno",
            ),
            full_text: one(
                dialect,
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE ",
                pattern,
                &format!("{escape} ORDER BY name"),
            ),
        },
        Dialect::Postgres => Introspection {
            columns: one(
                dialect,
                "SELECT c.column_name, c.data_type, CASE WHEN c.is_nullable = 'NO' THEN 1 ELSE 0 END, \
                 CASE WHEN EXISTS (SELECT 1 FROM pg_index x JOIN pg_attribute a \
                 ON a.attrelid = x.indrelid AND a.attnum = ANY(x.indkey) \
                 WHERE x.indisprimary AND x.indrelid = to_regclass(quote_ident(c.table_name)) \
                 AND a.attname = c.column_name) THEN 1 ELSE 0 END \
                 FROM information_schema.columns c \
                 WHERE c.table_schema = current_schema() AND c.table_name = ",
                table.to_owned(),
                " ORDER BY c.ordinal_position",
            ),
            indexes: one(
                dialect,
                "SELECT i.relname, CASE WHEN x.indisunique THEN 1 ELSE 0 END, a.attname \
                 FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid \
                 JOIN pg_class i ON i.oid = x.indexrelid \
                 JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = ANY(x.indkey) \
                 WHERE NOT x.indisprimary AND t.relnamespace = current_schema()::regnamespace \
                 AND t.relname = ",
                table.to_owned(),
                " ORDER BY i.relname, a.attnum",
            ),
            full_text: one(
                dialect,
                "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema() \
                 AND indexname LIKE ",
                pattern,
                &format!("{escape} ORDER BY indexname"),
            ),
        },
        Dialect::Mysql => Introspection {
            columns: one(
                dialect,
                "SELECT COLUMN_NAME, COLUMN_TYPE, IF(IS_NULLABLE = 'NO', 1, 0), \
                 IF(COLUMN_KEY = 'PRI', 1, 0) FROM information_schema.COLUMNS \
                 WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = ",
                table.to_owned(),
                " ORDER BY ORDINAL_POSITION",
            ),
            indexes: one(
                dialect,
                "SELECT INDEX_NAME, IF(NON_UNIQUE = 0, 1, 0), COLUMN_NAME \
                 FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() \
                 AND INDEX_NAME <> 'PRIMARY' AND INDEX_TYPE <> 'FULLTEXT' AND TABLE_NAME = ",
                table.to_owned(),
                " ORDER BY INDEX_NAME, SEQ_IN_INDEX",
            ),
            full_text: one(
                dialect,
                "SELECT DISTINCT INDEX_NAME FROM information_schema.STATISTICS \
                 WHERE TABLE_SCHEMA = DATABASE() AND INDEX_TYPE = 'FULLTEXT' AND INDEX_NAME LIKE ",
                pattern,
                &format!("{escape} ORDER BY INDEX_NAME"),
            ),
        },
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveColumn {
    pub name: String,
    pub sql_type: String,
    pub not_null: bool,
    pub primary_key: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct LiveIndex {
    pub name: String,
    pub unique: bool,
    pub columns: Vec<String>,
}

/// A table as the database holds it (`None` from `LiveTable::read` when
/// the table does not exist).
#[derive(Debug, Clone, PartialEq)]
pub struct LiveTable {
    pub columns: Vec<LiveColumn>,
    pub indexes: Vec<LiveIndex>,
    /// Columns with a full-text index.
    pub full_text: Vec<String>,
}

fn text(v: Option<&Value>) -> String {
    match v {
        Some(Value::Str(s)) => s.to_string(),
        Some(Value::Bytes(b)) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    }
}

fn flag(v: Option<&Value>) -> bool {
    match v {
        Some(Value::Int(i)) => *i != 0,
        Some(Value::Bool(b)) => *b,
        _ => false,
    }
}

impl LiveTable {
    /// Normalises the rows of the three introspection statements
    /// (decoded untyped) of `table`.
    pub fn read(
        dialect: Dialect,
        table: &str,
        columns: &[Vec<Value>],
        indexes: &[Vec<Value>],
        full_text: &[Vec<Value>],
    ) -> Option<LiveTable> {
        if columns.is_empty() {
            return None;
        }
        let columns = columns
            .iter()
            .map(|r| LiveColumn {
                name: text(r.first()),
                sql_type: text(r.get(1)),
                not_null: flag(r.get(2)),
                primary_key: flag(r.get(3)),
            })
            .collect();
        let mut merged: Vec<LiveIndex> = Vec::new();
        for r in indexes {
            let name = text(r.first());
            match merged.last_mut() {
                Some(last) if last.name == name => last.columns.push(text(r.get(2))),
                _ => merged.push(LiveIndex {
                    name,
                    unique: flag(r.get(1)),
                    columns: vec![text(r.get(2))],
                }),
            }
        }
        let prefix = full_text_prefix(dialect, table);
        let full_text = full_text
            .iter()
            .filter_map(|r| text(r.first()).strip_prefix(&prefix).map(str::to_owned))
            .collect();
        Some(LiveTable {
            columns,
            indexes: merged,
            full_text,
        })
    }
}

impl LiveTable {
    /// The description `diff_schema` reads (Python `sql_schema`): columns
    /// with whether their type is the one `schema` declares, indexes and
    /// full-text columns.
    pub fn describe(&self, dialect: Dialect, schema: &ModelSchema, catalog: &Catalog) -> Json {
        let columns: Vec<Json> = self
            .columns
            .iter()
            .map(|c| {
                let matches = schema
                    .fields
                    .iter()
                    .find(|f| f.storage == c.name)
                    .is_some_and(|f| column_type_matches(dialect, schema, catalog, f, &c.sql_type));
                json!({
                    "name": c.name,
                    "type": c.sql_type,
                    "not_null": c.not_null,
                    "primary_key": c.primary_key,
                    "type_matches": matches,
                })
            })
            .collect();
        let indexes: Vec<Json> = self
            .indexes
            .iter()
            .map(|i| json!({"name": i.name, "unique": i.unique, "columns": i.columns}))
            .collect();
        json!({"columns": columns, "indexes": indexes, "full_text": self.full_text})
    }
}

/// Whether a live column type is the one `create_table` gives `field`
/// (case-insensitive; MySQL reports `bigint` for `BIGINT`, `tinyint(1)`...).
pub fn column_type_matches(
    dialect: Dialect,
    schema: &ModelSchema,
    catalog: &Catalog,
    field: &FieldDef,
    live_type: &str,
) -> bool {
    let expected = field_type(dialect, schema, field, catalog).to_ascii_lowercase();
    let live = live_type.to_ascii_lowercase();
    // information_schema reports neither the collation nor (MySQL 8) an
    // integer's display width, which MariaDB adds: `bigint(20)`.
    let declared = expected.split(" collate ").next().unwrap_or_default();
    match dialect {
        Dialect::Sqlite => live == expected,
        Dialect::Postgres => live == declared,
        Dialect::Mysql => match live.strip_prefix("bigint(") {
            Some(rest) => declared == "bigint" && rest.trim_end_matches(')').parse::<u32>().is_ok(),
            None => live == declared,
        },
    }
}
