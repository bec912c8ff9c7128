//! Deserialization of the IR's internally tagged enums (`Request` by
//! `operation`, `Expr` by `kind`) without buffering.
//!
//! serde's derived `#[serde(tag = ...)]` reads every map into an
//! intermediate tree before it can look at the tag, and does so again at
//! each nesting level. The IR always puts the tag first (builders emit it
//! first, and so does serialization), so the tag is read, then the rest of
//! the map goes straight into the variant's struct. A map whose first key
//! is not the tag is still accepted: it is collected into JSON, and the
//! variant is read from that.

use std::fmt;
use std::marker::PhantomData;

use serde::de::value::MapAccessDeserializer;
use serde::de::{self, DeserializeOwned, DeserializeSeed, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value as Json};

/// An enum stored as a map whose `TAG` key names the variant.
pub(crate) trait Tagged: Sized {
    /// The tag's values, as a unit-variant enum (its unknown-variant error
    /// lists the accepted names).
    type Tag: DeserializeOwned;
    const TAG: &'static str;
    const EXPECTING: &'static str;

    /// The variant `tag` read from the map's remaining keys.
    fn body<'de, D: Deserializer<'de>>(tag: Self::Tag, body: D) -> Result<Self, D::Error>;
}

pub(crate) fn deserialize_tagged<'de, T: Tagged, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<T, D::Error> {
    deserializer.deserialize_map(TaggedVisitor(PhantomData))
}

struct TaggedVisitor<T>(PhantomData<T>);

impl<'de, T: Tagged> Visitor<'de> for TaggedVisitor<T> {
    type Value = T;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(T::EXPECTING)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<T, A::Error> {
        match map.next_key_seed(KeySeed(T::TAG))? {
            None => Err(de::Error::missing_field(T::TAG)),
            Some(Key::Tag) => {
                let tag = map.next_value()?;
                T::body(tag, MapAccessDeserializer::new(map))
            }
            Some(Key::Other(first)) => buffered::<T, A>(first, map),
        }
    }
}

/// The slow path: the tag is not the first key.
fn buffered<'de, T: Tagged, A: MapAccess<'de>>(first: String, mut map: A) -> Result<T, A::Error> {
    let mut rest = Map::new();
    rest.insert(first, map.next_value()?);
    let mut tag: Option<Json> = None;
    while let Some(key) = map.next_key::<String>()? {
        let value: Json = map.next_value()?;
        if key == T::TAG {
            if tag.replace(value).is_some() {
                return Err(de::Error::duplicate_field(T::TAG));
            }
        } else if rest.insert(key.clone(), value).is_some() {
            return Err(de::Error::custom(format_args!("duplicate field `{key}`")));
        }
    }
    let tag = tag.ok_or_else(|| de::Error::missing_field(T::TAG))?;
    let tag = T::Tag::deserialize(tag).map_err(de::Error::custom)?;
    T::body(tag, Json::Object(rest)).map_err(de::Error::custom)
}

enum Key {
    Tag,
    Other(String),
}

/// Reads one map key, telling the tag apart without allocating for it.
struct KeySeed(&'static str);

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(if key == self.0 {
            Key::Tag
        } else {
            Key::Other(key.to_owned())
        })
    }
}
