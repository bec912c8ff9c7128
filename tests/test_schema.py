"""Schema compilation and the deterministic schema document (API.md §2.3, §2.8).

This module uses ``from __future__ import annotations`` on purpose: every
annotation below is a string, resolved by the model metaclass (§16 row 32).
"""

from __future__ import annotations

import datetime as dt
import enum
import json
import uuid
from collections.abc import Iterator, Mapping
from decimal import Decimal
from typing import Any

import pytest

from aura import models
from aura.errors import AuraSchemaError
from aura.fields import Field
from aura.models import Model
from aura.schema import (
    SCHEMA_FORMAT_VERSION,
    FieldSchema,
    ModelSchema,
    RelationshipSchema,
    compile_models,
    schema_document,
    schema_json,
)
from aura.vectors import Vector


@pytest.fixture(autouse=True)
def isolated_registry() -> Iterator[None]:
    saved = dict(models._REGISTRY.items())
    models._REGISTRY.clear()
    yield
    models._REGISTRY.clear()
    models._REGISTRY.update(saved)


class Mood(enum.Enum):
    HAPPY = "happy"


def test_format_version() -> None:
    assert SCHEMA_FORMAT_VERSION == 1


def test_type_mapping_labels() -> None:  # §2.3, "Schema type label / container"
    class Local(enum.IntEnum):  # a function-local name, resolved from the frame
        ONE = 1

    class Custom:
        pass

    class Types(Model):
        i: int
        f: float
        s: str
        b: bool
        raw: bytes
        at: dt.datetime
        day: dt.date
        clock: dt.time
        uid: uuid.UUID
        price: Decimal
        mood: Mood
        local: Local
        doc: dict[str, int]
        mapping: Mapping[str, Any]
        nums: list[int]
        names: set[str]
        pair: tuple[int, ...]
        frozen: frozenset[str]
        bare_dict: dict  # type: ignore[type-arg]
        bare_list: list  # type: ignore[type-arg]
        emb: Vector[3]
        maybe: int | None
        either: int | str
        anything: Any
        custom: Custom

    labels = {f.name: (f.type, f.container) for f in Types.model_schema().fields}
    assert labels == {
        "i": ("int", "none"),
        "f": ("float", "none"),
        "s": ("str", "none"),
        "b": ("bool", "none"),
        "raw": ("bytes", "none"),
        "at": ("datetime", "none"),
        "day": ("date", "none"),
        "clock": ("time", "none"),
        "uid": ("UUID", "none"),
        "price": ("Decimal", "none"),
        "mood": ("Mood", "none"),
        "local": ("Local", "none"),
        "doc": ("document", "dict"),
        "mapping": ("document", "dict"),
        "nums": ("list", "list"),
        "names": ("list", "list"),
        "pair": ("list", "list"),
        "frozen": ("list", "list"),
        "bare_dict": ("dict", "none"),
        "bare_list": ("list", "none"),
        "emb": ("vector", "none"),
        "maybe": ("int", "none"),
        "either": ("any", "none"),
        "anything": ("any", "none"),
        "custom": ("Custom", "none"),
    }
    schema = Types.model_schema()
    assert schema.field("emb").vector_dim == 3  # type: ignore[union-attr]
    maybe = schema.field("maybe")
    assert maybe is not None and maybe.nullable and maybe.has_default


def test_model_schema_document_shape() -> None:  # §2.8
    class Author(Model):
        id: int = Field(primary_key=True)
        name: str = Field(full_text=True, description="display name")
        books: list[Book]

    class Book(Model):
        id: int
        title: str = Field(alias="TITLE", unique=True)
        pages: int = Field(default=0, index=True)
        emb: Vector[2] = Field(vector_index="hnsw")
        author: Author = Field(link=True, on_delete="restrict")
        editor: Author | None = None

    assert Author.model_schema().to_dict() == {
        "name": "Author",
        "primary_key": "id",
        "fields": [
            {
                "name": "id",
                "type": "int",
                "nullable": False,
                "primary_key": True,
                "unique": False,
                "index": False,
                "container": "none",
                "has_default": False,
            },
            {
                "name": "name",
                "type": "str",
                "nullable": False,
                "primary_key": False,
                "unique": False,
                "index": False,
                "container": "none",
                "has_default": False,
                "full_text": True,
                "description": "display name",
            },
        ],
        "relationships": [{"name": "books", "target": "Book", "kind": "collection"}],
    }
    book = Book.model_schema().to_dict()
    assert book["primary_key"] == "id"  # the implicit "id" key
    fields = {f["name"]: f for f in book["fields"]}
    assert list(fields) == ["id", "title", "pages", "emb"]
    assert fields["title"]["alias"] == "TITLE" and fields["title"]["unique"] is True
    assert fields["pages"] == {
        "name": "pages",
        "type": "int",
        "nullable": False,
        "primary_key": False,
        "unique": False,
        "index": True,
        "container": "none",
        "has_default": True,
    }
    assert fields["emb"]["vector_dim"] == 2 and fields["emb"]["vector_index"] == "hnsw"
    assert list(fields["emb"]) == [
        "name",
        "type",
        "nullable",
        "primary_key",
        "unique",
        "index",
        "container",
        "has_default",
        "vector_dim",
        "vector_index",
    ]
    assert book["relationships"] == [
        {"name": "author", "target": "Author", "kind": "link", "on_delete": "restrict"},
        {"name": "editor", "target": "Author", "kind": "link"},
    ]


def test_model_schema_helpers() -> None:
    class Item(Model):
        sku: str = Field(primary_key=True)
        name: str = Field(alias="NAME", index=True)
        code: str = Field(unique=True)
        note: str | None

    schema = Item.model_schema()
    assert isinstance(schema, ModelSchema)
    assert schema is Item.model_schema() is Item.__aura_schema__  # compiled once
    assert Item(sku="a", name="n", code="c").__aura_schema__ is schema
    assert schema.field_names == ("sku", "name", "code", "note")
    assert schema.indexes == ("sku", "name", "code")
    assert schema.field("name") is schema.field("NAME")
    assert schema.field("nope") is None
    assert schema.relationship("nope") is None
    assert schema.field("name").storage_name == "NAME"  # type: ignore[union-attr]


def test_no_primary_key() -> None:
    class Keyless(Model):
        name: str

    schema = Keyless.model_schema()
    assert schema.primary_key is None and schema.indexes == ()


def test_schema_objects_round_trip_through_dicts() -> None:
    class Author(Model):
        id: int
        books: list[Book]

    class Book(Model):
        id: int
        author: Author | None = Field(default=None, on_delete="set_null")
        emb: Vector[2] | None = Field(default=None, description="d")

    for model in (Author, Book):
        schema = model.model_schema()
        assert ModelSchema.from_dict(schema.to_dict()) == schema
    assert FieldSchema.from_dict({"name": "x", "type": "int"}) == FieldSchema("x", "int")
    assert RelationshipSchema("a", "B", "link").to_dict() == {
        "name": "a",
        "target": "B",
        "kind": "link",
    }


def test_schema_document_is_sorted_and_deterministic() -> None:
    class Zebra(Model):
        id: int

    class Apple(Model):
        id: int
        tags: list[str] = Field(default_factory=list)

    doc = schema_document([Zebra, Apple, Zebra])
    assert doc["format_version"] == 1
    assert [m["name"] for m in doc["models"]] == ["Apple", "Zebra"]
    assert schema_document([Apple, Zebra]) == doc
    text = schema_json([Zebra, Apple])
    assert text == json.dumps(doc, sort_keys=True, separators=(",", ":"))
    assert text == schema_json({"a": Apple, "z": Zebra})
    assert text.startswith('{"format_version":1,"models":[{"fields":[')
    assert " " not in text


def test_compile_models_inputs() -> None:
    class One(Model):
        id: int

    schema = One.model_schema()
    assert compile_models(One) == [schema]
    assert compile_models([schema, One]) == [schema]
    assert compile_models({"One": One}) == [schema]
    with pytest.raises(AuraSchemaError):
        compile_models([dict])
    with pytest.raises(AuraSchemaError):
        compile_models([Model])
    with pytest.raises(AuraSchemaError):
        compile_models("One")
    clash = ModelSchema("One", None)
    with pytest.raises(AuraSchemaError, match="Two different models are named 'One'"):
        compile_models([One, clash])


def test_inherited_fields_come_first() -> None:
    class Base(Model):
        id: int
        created: dt.datetime | None

    class Child(Base):
        name: str

    assert Child.model_schema().field_names == ("id", "created", "name")
    assert Child.model_schema().name == "Child"


def test_forward_reference_across_local_models() -> None:
    class Parent(Model):
        id: int
        kids: list[Kid]
        favourite: Kid | None = None

    assert not Parent._aura_is_ready  # "Kid" is not defined yet
    with pytest.raises(AuraSchemaError, match="name 'Kid' is not defined"):
        Parent.model_schema()

    class Kid(Model):
        id: int
        parent: Parent | None = None

    rels = Parent.model_schema().relationships
    assert [(r.name, r.target, r.kind) for r in rels] == [
        ("kids", "Kid", "collection"),
        ("favourite", "Kid", "link"),
    ]
