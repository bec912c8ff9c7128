"""Compiled model schemas and the deterministic schema document (API.md §2.8)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aura.errors import AuraSchemaError
from aura.models import AuraModel, AuraModelMeta

__all__ = [
    "SCHEMA_FORMAT_VERSION",
    "FieldSchema",
    "ModelSchema",
    "RelationshipSchema",
    "compile_models",
    "schema_document",
    "schema_json",
]

SCHEMA_FORMAT_VERSION = 1

# Keys emitted only when set, in this order, after the always-present ones.
_OPTIONAL_FIELD_KEYS = ("full_text", "vector_dim", "vector_index", "description", "alias")


@dataclass(frozen=True, slots=True)
class FieldSchema:
    """One stored, non-relationship field."""

    name: str
    type: str
    nullable: bool = False
    primary_key: bool = False
    unique: bool = False
    index: bool = False
    container: str = "none"
    has_default: bool = False
    full_text: bool = False
    vector_dim: int | None = None
    vector_index: str | None = None
    description: str | None = None
    alias: str | None = None

    @property
    def storage_name(self) -> str:
        return self.alias or self.name

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "name": self.name,
            "type": self.type,
            "nullable": self.nullable,
            "primary_key": self.primary_key,
            "unique": self.unique,
            "index": self.index,
            "container": self.container,
            "has_default": self.has_default,
        }
        for key in _OPTIONAL_FIELD_KEYS:
            value = getattr(self, key)
            if value not in (None, False):
                out[key] = value
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FieldSchema:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True, slots=True)
class RelationshipSchema:
    """A to-one ``link`` or a to-many ``collection``."""

    name: str
    target: str
    kind: str
    on_delete: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "target": self.target, "kind": self.kind}
        if self.on_delete is not None:
            out["on_delete"] = self.on_delete
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RelationshipSchema:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True, slots=True)
class ModelSchema:
    """The compiled schema of one model: fields, relationships, primary key."""

    name: str
    primary_key: str | None
    fields: tuple[FieldSchema, ...] = ()
    relationships: tuple[RelationshipSchema, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "primary_key": self.primary_key,
            "fields": [f.to_dict() for f in self.fields],
            "relationships": [r.to_dict() for r in self.relationships],
        }

    def field(self, name: str) -> FieldSchema | None:
        """The field called ``name`` (attribute name or alias), or ``None``."""
        for candidate in self.fields:
            if name in (candidate.name, candidate.alias):
                return candidate
        return None

    def relationship(self, name: str) -> RelationshipSchema | None:
        return next((r for r in self.relationships if r.name == name), None)

    @property
    def field_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def indexes(self) -> tuple[str, ...]:
        """Fields with an index: ``index``, ``unique`` or the primary key."""
        return tuple(f.name for f in self.fields if f.index or f.unique or f.primary_key)

    @classmethod
    def from_model(cls, model: type[AuraModel]) -> ModelSchema:
        _ensure_model(model)
        schema = model.model_schema()  # compiled once, cached on the class
        assert isinstance(schema, ModelSchema)
        return schema

    @classmethod
    def _compile(cls, model: type[AuraModel]) -> ModelSchema:
        """Build from a finalized model (called once per class by the metaclass)."""
        pk = _pk_attr(model)
        fields, relationships = [], []
        for info in model.__aura_fields__.values():
            if info.relation is not None:
                target = info.model_type.__name__ if info.model_type is not None else "?"
                relationships.append(
                    RelationshipSchema(info.name, target, info.relation, info.on_delete)
                )
                continue
            fields.append(
                FieldSchema(
                    name=info.name,
                    type=info.type_label,
                    nullable=info.nullable,
                    primary_key=info.name == pk,
                    unique=info.unique,
                    index=info.index,
                    container=info.container,
                    has_default=info.has_default,
                    full_text=info.full_text,
                    vector_dim=info.vector_dim,
                    vector_index=info.vector_index,
                    description=info.description,
                    alias=info.alias,
                )
            )
        return cls(model.__name__, pk, tuple(fields), tuple(relationships))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelSchema:
        return cls(
            name=data["name"],
            primary_key=data.get("primary_key"),
            fields=tuple(FieldSchema.from_dict(f) for f in data.get("fields", ())),
            relationships=tuple(
                RelationshipSchema.from_dict(r) for r in data.get("relationships", ())
            ),
        )


def _pk_attr(model: type[AuraModel]) -> str | None:
    return model._aura_pk


def _ensure_model(model: Any) -> None:
    if not (isinstance(model, AuraModelMeta) and model is not AuraModel):
        raise AuraSchemaError(
            f"Expected an AuraModel subclass, got {model!r}", context={"type": type(model).__name__}
        )


def compile_models(models: Any) -> list[ModelSchema]:
    """Schemas of ``models`` (classes, ``ModelSchema`` objects or a ``{name: class}``
    mapping), de-duplicated and sorted by name."""
    if isinstance(models, Mapping):
        models = list(models.values())
    elif isinstance(models, (AuraModelMeta, ModelSchema)):
        models = [models]
    by_name: dict[str, ModelSchema] = {}
    for item in _iterable(models):
        schema = item if isinstance(item, ModelSchema) else ModelSchema.from_model(item)
        known = by_name.setdefault(schema.name, schema)
        if known != schema:
            raise AuraSchemaError(
                f"Two different models are named '{schema.name}'", context={"model": schema.name}
            )
    return [by_name[name] for name in sorted(by_name)]


def _iterable(models: Any) -> Iterable[Any]:
    if isinstance(models, (str, bytes)) or not isinstance(models, Iterable):
        raise AuraSchemaError(f"Expected model classes, got {type(models).__name__}")
    return models


def schema_document(models: Any) -> dict[str, Any]:
    """``{"format_version": 1, "models": [...]}`` with models sorted by name."""
    return {
        "format_version": SCHEMA_FORMAT_VERSION,
        "models": [schema.to_dict() for schema in compile_models(models)],
    }


def schema_json(models: Any) -> str:
    """The schema document as compact JSON with sorted keys (byte-stable)."""
    return json.dumps(schema_document(models), sort_keys=True, separators=(",", ":"))
