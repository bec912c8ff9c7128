//! Model schema as Rust sees it: stored fields (row positions), their kinds
//! and constraints, and relationships (ARCHITECTURE.md "Model layout").

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::Error;
use crate::value::Value;

/// A stored row; positions follow `ModelSchema::fields`.
pub type Row = Arc<[Value]>;

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum $name {
            $(#[serde(rename = $text)] $variant),+
        }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                match s {
                    $($text => Ok($name::$variant),)+
                    _ => Err(Error::schema(format!(concat!("Unknown ", $what, " '{}'"), s))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// Field kinds as named in `Model._aura_plan()`.
    FieldKind, "field kind" {
        Int => "int",
        Float => "float",
        Str => "str",
        Bool => "bool",
        Bytes => "bytes",
        DateTime => "datetime",
        Date => "date",
        Time => "time",
        Uuid => "uuid",
        Decimal => "decimal",
        Enum => "enum",
        List => "list",
        Dict => "dict",
        Vector => "vector",
        Any => "any",
        Link => "link",
    }
);

named_enum!(
    /// What happens to referencing rows when their target row is deleted.
    OnDelete, "on_delete action" {
        Cascade => "cascade",
        Restrict => "restrict",
        SetNull => "set_null",
    }
);

named_enum!(
    RelationKind, "relationship kind" {
        Link => "link",
        Collection => "collection",
    }
);

/// One stored field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    pub attr: String,
    pub storage: String,
    pub kind: FieldKind,
    pub nullable: bool,
    pub unique: bool,
    pub index: bool,
    pub has_default: bool,
    pub full_text: bool,
    pub vector_dim: Option<usize>,
    /// Link target model (kind `link`).
    pub target: Option<String>,
    pub on_delete: Option<OnDelete>,
}

impl FieldDef {
    /// A plain non-nullable field without constraints.
    pub fn new(name: &str, kind: FieldKind) -> Self {
        FieldDef {
            attr: name.to_owned(),
            storage: name.to_owned(),
            kind,
            nullable: false,
            unique: false,
            index: false,
            has_default: false,
            full_text: false,
            vector_dim: None,
            target: None,
            on_delete: None,
        }
    }

    /// A to-one link field holding `target`'s primary key.
    pub fn link(name: &str, target: &str, on_delete: Option<OnDelete>) -> Self {
        FieldDef {
            target: Some(target.to_owned()),
            on_delete,
            nullable: true,
            ..FieldDef::new(name, FieldKind::Link)
        }
    }

    pub fn nullable(mut self) -> Self {
        self.nullable = true;
        self
    }

    pub fn unique(mut self) -> Self {
        self.unique = true;
        self
    }

    pub fn indexed(mut self) -> Self {
        self.index = true;
        self
    }

    pub fn vector(name: &str, dim: usize) -> Self {
        FieldDef {
            vector_dim: Some(dim),
            ..FieldDef::new(name, FieldKind::Vector)
        }
    }

    pub fn alias(mut self, storage: &str) -> Self {
        self.storage = storage.to_owned();
        self
    }
}

/// A relationship declared on a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RelationshipDef {
    pub attr: String,
    pub target: String,
    pub kind: RelationKind,
    /// For a collection: attr name of the target's link field pointing back.
    pub via: Option<String>,
}

/// A model's compiled schema.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelSchema {
    pub name: String,
    /// Storage name of the declared primary key.
    pub primary_key: Option<String>,
    pub fields: Vec<FieldDef>,
    pub relationships: Vec<RelationshipDef>,
}

impl ModelSchema {
    /// Position of a field by storage name first, then attribute name.
    pub fn field_index(&self, storage_or_attr: &str) -> Option<usize> {
        self.fields
            .iter()
            .position(|f| f.storage == storage_or_attr)
            .or_else(|| self.fields.iter().position(|f| f.attr == storage_or_attr))
    }

    pub fn field(&self, storage_or_attr: &str) -> Option<&FieldDef> {
        self.field_index(storage_or_attr).map(|i| &self.fields[i])
    }

    /// Name of the primary key: the declared one, else `id` (API.md §2.5).
    pub fn pk_name(&self) -> &str {
        self.primary_key.as_deref().unwrap_or("id")
    }

    /// The error of writing a row without its primary key (every backend's).
    pub fn missing_pk(&self) -> crate::Error {
        crate::Error::constraint(format!(
            "{} insert is missing primary key '{}'",
            self.name,
            self.pk_name()
        ))
        .with_context("model", self.name.as_str())
    }

    /// Position of the primary-key field, if the model has one.
    pub fn pk_index(&self) -> Option<usize> {
        self.field_index(self.pk_name())
    }

    pub fn relationship(&self, attr: &str) -> Option<&RelationshipDef> {
        self.relationships.iter().find(|r| r.attr == attr)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_parse_and_print() {
        for kind in FieldKind::ALL {
            assert_eq!(kind.as_str().parse::<FieldKind>().ok(), Some(*kind));
        }
        assert_eq!(FieldKind::ALL.len(), 16);
        assert!("text".parse::<FieldKind>().is_err());
        assert_eq!("set_null".parse::<OnDelete>().ok(), Some(OnDelete::SetNull));
        assert_eq!(
            serde_json::to_string(&FieldKind::DateTime).ok().as_deref(),
            Some("\"datetime\"")
        );
    }

    #[test]
    fn field_lookup_prefers_storage_names() {
        let schema = ModelSchema {
            name: "M".into(),
            primary_key: None,
            fields: vec![
                FieldDef::new("id", FieldKind::Int),
                FieldDef::new("name", FieldKind::Str).alias("title"),
                FieldDef::new("title", FieldKind::Str).alias("heading"),
            ],
            relationships: vec![],
        };
        assert_eq!(schema.field_index("title"), Some(1));
        assert_eq!(schema.field_index("name"), Some(1));
        assert_eq!(schema.field_index("heading"), Some(2));
        assert_eq!(schema.pk_index(), Some(0));
        assert_eq!(schema.pk_name(), "id");
    }
}
