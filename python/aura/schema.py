"""Compiled model schemas and the deterministic schema document (API.md §2.8)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from aura.errors import AuraMigrationError, AuraSchemaError
from aura.models import AuraModel, AuraModelMeta

__all__ = [
    "SCHEMA_FORMAT_VERSION",
    "FieldSchema",
    "ModelSchema",
    "RelationshipSchema",
    "compile_models",
    "schema_document",
    "schema_json",
    "Change",
    "LockImpactEstimate",
    "MigrationPlan",
    "diff_schemas",
    "generate_migration",
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


# --------------------------------------------------------------------------- migrations
#
# A migration plan is computed locally from two schema documents (API.md §11).
# Every change carries a one-line undo step (``rollback``); the inverse of a
# change is derived from its kind, so ``rollback_plan()`` needs no schemas.

CHANGE_KINDS = (
    "add_model",
    "drop_model",
    "add_field",
    "alter_field",
    "drop_field",
    "add_index",
    "drop_index",
    "add_relationship",
    "alter_relationship",
    "drop_relationship",
)
_KIND_ORDER = {kind: position for position, kind in enumerate(CHANGE_KINDS)}
_INVERSE_KIND = {
    "add_model": "drop_model",
    "drop_model": "add_model",
    "add_field": "drop_field",
    "drop_field": "add_field",
    "alter_field": "alter_field",
    "add_index": "drop_index",
    "drop_index": "add_index",
    "add_relationship": "drop_relationship",
    "drop_relationship": "add_relationship",
    "alter_relationship": "alter_relationship",
}
IMPACT_ESTIMATE_STATUSES = ("local_only", "server_estimated", "unavailable")
NOT_NULL_WITHOUT_DEFAULT = " (NOT NULL without default)"
# Field attributes whose change rewrites or reinterprets stored values.
_DESTRUCTIVE_ATTRS = frozenset({"type", "container", "vector_dim", "storage_name"})
_INDEX_FLAGS = (("primary_key", "primary key"), ("unique", "unique index"), ("index", "index"))


@dataclass(frozen=True, slots=True)
class Change:
    """One schema change: ``target`` is a field, index or relationship name
    (empty for model-level changes); ``rollback`` describes the undo step."""

    kind: str
    model: str
    target: str
    detail: str
    destructive: bool
    rollback: str

    def __post_init__(self) -> None:
        if self.kind not in _KIND_ORDER:
            raise AuraMigrationError(
                f"Unknown change kind '{self.kind}'", context={"kind": str(self.kind)}
            )

    @property
    def label(self) -> str:
        """``Model.target`` (or just ``Model`` for model-level changes)."""
        return f"{self.model}.{self.target}" if self.target else self.model

    def sort_key(self) -> tuple[str, int, str]:
        return (self.model, _KIND_ORDER[self.kind], self.target)

    def inverse(self) -> Change:
        """The change that undoes this one."""
        kind = _INVERSE_KIND[self.kind]
        return Change(
            kind=kind,
            model=self.model,
            target=self.target,
            detail=self.rollback,
            destructive=_inverse_destructive(self, kind),
            rollback=self.detail,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "model": self.model,
            "target": self.target,
            "detail": self.detail,
            "destructive": self.destructive,
            "rollback": self.rollback,
        }


def _inverse_destructive(change: Change, kind: str) -> bool:
    if kind in ("drop_model", "drop_field", "drop_index", "drop_relationship"):
        return True
    if kind == "add_field":  # §11: only a NOT NULL field without default is destructive
        return change.rollback.endswith(NOT_NULL_WITHOUT_DEFAULT)
    if kind == "alter_field":
        transitions = _read_transitions(change.rollback)
        # A detail we did not write cannot be judged: assume the worst.
        return transitions is None or _alter_destructive(transitions)
    # Re-targeting a relationship is destructive both ways; on_delete alone is not.
    return kind == "alter_relationship" and change.destructive


def _alter_destructive(transitions: list[tuple[str, Any, Any]]) -> bool:
    """Changing the type, dimension or storage name, or adding NOT NULL."""
    return any(
        key in _DESTRUCTIVE_ATTRS or (key == "nullable" and new is False)
        for key, _, new in transitions
    )


_TRANSITION_KEY = re.compile(r"(\w+): ")
_ARROW, _SEPARATOR = " -> ", "; "


def _read_transitions(detail: str) -> list[tuple[str, Any, Any]] | None:
    """Parse an alter_field detail (``key: old -> new; ...``, JSON values)."""
    decoder = json.JSONDecoder()
    transitions, position = [], 0
    try:
        while position < len(detail):
            match = _TRANSITION_KEY.match(detail, position)
            if match is None:
                return None
            old, position = decoder.raw_decode(detail, match.end())
            if not detail.startswith(_ARROW, position):
                return None
            new, position = decoder.raw_decode(detail, position + len(_ARROW))
            transitions.append((match.group(1), old, new))
            if detail.startswith(_SEPARATOR, position):
                position += len(_SEPARATOR)
    except json.JSONDecodeError:
        return None
    return transitions or None


@dataclass(frozen=True, slots=True)
class LockImpactEstimate:
    """A server's estimate of the locks a migration would take."""

    lock_level: str
    blocking: bool
    estimated_duration_ms: int | None = None
    affected_rows: int | None = None
    source: str = "server"
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "lock_level": self.lock_level,
            "blocking": self.blocking,
            "estimated_duration_ms": self.estimated_duration_ms,
            "affected_rows": self.affected_rows,
            "source": self.source,
            "detail": self.detail,
        }

    def describe(self) -> str:
        parts = [f"lock level {self.lock_level}", "blocking" if self.blocking else "non-blocking"]
        if self.estimated_duration_ms is not None:
            parts.append(f"~{self.estimated_duration_ms} ms")
        if self.affected_rows is not None:
            parts.append(f"{self.affected_rows} rows")
        if self.detail:
            parts.append(self.detail)
        return f"{', '.join(parts)} (source: {self.source})"


@dataclass(frozen=True, slots=True)
class MigrationPlan:
    """An ordered list of schema changes and what is known about their impact."""

    changes: tuple[Change, ...] = ()
    from_version: int = SCHEMA_FORMAT_VERSION
    to_version: int = SCHEMA_FORMAT_VERSION
    impact_estimate_status: str = "local_only"
    lock_impact_estimate: LockImpactEstimate | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "changes", tuple(self.changes))
        if not all(isinstance(change, Change) for change in self.changes):
            raise AuraMigrationError("MigrationPlan.changes must hold Change objects")
        _check_estimate(self.impact_estimate_status, self.lock_impact_estimate)

    @property
    def is_empty(self) -> bool:
        return not self.changes

    @property
    def is_destructive(self) -> bool:
        return any(change.destructive for change in self.changes)

    @property
    def destructive_changes(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.destructive)

    @property
    def requires_live_cluster_estimate(self) -> bool:
        return not self.is_empty and self.impact_estimate_status != "server_estimated"

    def require_safe(self) -> None:
        """Raise ``AuraMigrationError`` naming every destructive change."""
        labels = list(dict.fromkeys(change.label for change in self.destructive_changes))
        if labels:
            raise AuraMigrationError(
                f"Migration has destructive changes: {', '.join(labels)}",
                context={"changes": labels},
            )

    def rollback_plan(self) -> MigrationPlan:
        """The inverse changes in reverse order (data dropped is not restored)."""
        return MigrationPlan(
            changes=tuple(change.inverse() for change in reversed(self.changes)),
            from_version=self.to_version,
            to_version=self.from_version,
        )

    def with_server_estimate(self, estimate: LockImpactEstimate) -> MigrationPlan:
        if not isinstance(estimate, LockImpactEstimate):
            raise AuraMigrationError(
                f"Expected a LockImpactEstimate, got {type(estimate).__name__}"
            )
        return replace(
            self, impact_estimate_status="server_estimated", lock_impact_estimate=estimate
        )

    def mark_estimate_unavailable(self) -> MigrationPlan:
        return replace(self, impact_estimate_status="unavailable", lock_impact_estimate=None)

    def to_dict(self) -> dict[str, Any]:
        estimate = self.lock_impact_estimate
        return {
            "from_version": self.from_version,
            "to_version": self.to_version,
            "is_destructive": self.is_destructive,
            "impact_estimate_status": self.impact_estimate_status,
            "lock_impact_estimate": None if estimate is None else estimate.to_dict(),
            "changes": [change.to_dict() for change in self.changes],
        }

    def format(self) -> str:
        """Human-readable plan, beginning ``# Aura migration``."""
        lines = ["# Aura migration", ""]
        if self.is_empty:
            return "\n".join([*lines, "No schema changes detected.", ""])
        lines.append(
            f"Schema format {self.from_version} -> {self.to_version}; "
            f"{len(self.changes)} change(s), {len(self.destructive_changes)} destructive."
        )
        lines.append(f"Impact estimate: {self._estimate_text()}")
        model = None
        for change in self.changes:
            if change.model != model:
                model = change.model
                lines += ["", f"## {model}", ""]
            lines += _format_change(change)
        return "\n".join([*lines, ""])

    def _estimate_text(self) -> str:
        if self.lock_impact_estimate is not None:
            return self.lock_impact_estimate.describe()
        if self.impact_estimate_status == "unavailable":
            return "unavailable"
        return "local only (no live cluster estimate)"


def _format_change(change: Change) -> list[str]:
    flag = " [DESTRUCTIVE]" if change.destructive else ""
    head = f"- {change.kind} {change.label}{flag}: {change.detail}"
    return [head, f"  rollback: {change.rollback}"]


def _check_estimate(status: str, estimate: LockImpactEstimate | None) -> None:
    if status not in IMPACT_ESTIMATE_STATUSES:
        raise AuraMigrationError(
            f"Unknown impact estimate status '{status}'; "
            f"expected one of {', '.join(IMPACT_ESTIMATE_STATUSES)}",
            context={"status": str(status)},
        )
    if estimate is not None and not isinstance(estimate, LockImpactEstimate):
        raise AuraMigrationError(f"Expected a LockImpactEstimate, got {type(estimate).__name__}")
    if (estimate is not None) != (status == "server_estimated"):
        raise AuraMigrationError(
            "A lock impact estimate requires impact_estimate_status 'server_estimated' "
            "(and that status requires an estimate)",
            context={"status": status},
        )


# ---- reading schema documents


def _read_document(document: Any, side: str) -> tuple[int, dict[str, ModelSchema]]:
    """``(format_version, {name: schema})`` of a schema document or model-dict list."""
    version: Any = SCHEMA_FORMAT_VERSION
    entries = document
    if isinstance(document, Mapping):
        version = document.get("format_version", SCHEMA_FORMAT_VERSION)
        entries = document.get("models")
    if version != SCHEMA_FORMAT_VERSION or isinstance(version, bool):
        raise AuraMigrationError(
            f"Unsupported schema format_version {version!r} in the {side} schema",
            context={"side": side},
        )
    if not isinstance(entries, list):
        raise AuraMigrationError(
            f"The {side} schema must be a schema document or a list of model dicts, "
            f"got {type(document).__name__}",
            context={"side": side},
        )
    return SCHEMA_FORMAT_VERSION, _read_models(entries, side)


def _read_models(entries: list[Any], side: str) -> dict[str, ModelSchema]:
    models: dict[str, ModelSchema] = {}
    for entry in entries:
        schema = _read_model(entry, side)
        if schema.name in models:
            raise AuraMigrationError(
                f"Model '{schema.name}' appears twice in the {side} schema",
                context={"side": side, "model": schema.name},
            )
        models[schema.name] = schema
    return models


def _read_model(entry: Any, side: str) -> ModelSchema:
    if isinstance(entry, ModelSchema):
        return entry
    name = entry.get("name") if isinstance(entry, Mapping) else None
    if not isinstance(name, str) or not name:
        raise AuraMigrationError(
            f"Every model in the {side} schema needs a 'name'", context={"side": side}
        )
    try:
        schema = ModelSchema.from_dict(entry)
    except (TypeError, KeyError, AttributeError) as exc:
        raise AuraMigrationError(
            f"Malformed model '{name}' in the {side} schema: {exc}",
            context={"side": side, "model": name},
        ) from None
    texts = [text for f in schema.fields for text in (f.name, f.type)]
    texts += [text for r in schema.relationships for text in (r.name, r.target, r.kind)]
    if not all(isinstance(text, str) for text in texts):
        raise AuraMigrationError(
            f"Malformed model '{name}' in the {side} schema: names and types must be strings",
            context={"side": side, "model": name},
        )
    return schema


# ---- diffing


def diff_schemas(old: Any, new: Any) -> MigrationPlan:
    """The changes that turn schema ``old`` into ``new`` (schema documents or
    lists of model dicts)."""
    from_version, old_models = _read_document(old, "old")
    to_version, new_models = _read_document(new, "new")
    changes: list[Change] = []
    for name in sorted(old_models.keys() | new_models.keys()):
        changes += _diff_model(name, old_models.get(name), new_models.get(name))
    changes.sort(key=Change.sort_key)  # stable: same-target changes keep their order
    return MigrationPlan(tuple(changes), from_version, to_version)


def generate_migration(old_models: Any, new_models: Any) -> MigrationPlan:
    """``diff_schemas`` of two sets of model classes (or ``ModelSchema`` objects)."""
    return diff_schemas(schema_document(old_models), schema_document(new_models))


def _diff_model(name: str, old: ModelSchema | None, new: ModelSchema | None) -> list[Change]:
    if old is None and new is not None:
        detail = f"create model {name} ({_shape(new)})"
        return [Change("add_model", name, "", detail, False, f"drop model {name}")]
    if new is None and old is not None:
        detail = f"drop model {name} and all its rows"
        return [
            Change("drop_model", name, "", detail, True, f"create model {name} ({_shape(old)})")
        ]
    assert old is not None and new is not None
    return [*_diff_fields(old, new), *_diff_relationships(old, new)]


def _shape(schema: ModelSchema) -> str:
    return f"{len(schema.fields)} field(s), {len(schema.relationships)} relationship(s)"


def _diff_fields(old: ModelSchema, new: ModelSchema) -> list[Change]:
    old_fields = {f.name: f for f in old.fields}
    new_fields = {f.name: f for f in new.fields}
    changes: list[Change] = []
    for name in [*old_fields, *(n for n in new_fields if n not in old_fields)]:
        before, after = old_fields.get(name), new_fields.get(name)
        if before is None:
            changes.append(_add_field(new.name, after))  # type: ignore[arg-type]
        elif after is None:
            changes.append(_add_field(old.name, before).inverse())
        else:
            changes += _alter_field(new.name, before, after)
        changes += _diff_indexes(new.name, name, before, after)
    return changes


def _field_text(schema: FieldSchema) -> str:
    text = f"{schema.name}: {schema.type}"
    if schema.vector_dim is not None:
        text += f"[{schema.vector_dim}]"
    return text + (" | None" if schema.nullable else "")


def _add_field(model: str, schema: FieldSchema) -> Change:
    destructive = not schema.nullable and not schema.has_default
    detail = f"add field {_field_text(schema)}"
    if destructive:
        detail += NOT_NULL_WITHOUT_DEFAULT
    rollback = f"drop field {_field_text(schema)}"
    return Change("add_field", model, schema.name, detail, destructive, rollback)


def _field_attrs(schema: FieldSchema) -> dict[str, Any]:
    """The compared attributes, in report order (index flags are diffed apart)."""
    return {
        "type": schema.type,
        "container": schema.container,
        "vector_dim": schema.vector_dim,
        "nullable": schema.nullable,
        "storage_name": schema.storage_name,
        "has_default": schema.has_default,
        "full_text": schema.full_text,
        "vector_index": schema.vector_index,
        "description": schema.description,
    }


def _alter_field(model: str, old: FieldSchema, new: FieldSchema) -> list[Change]:
    before, after = _field_attrs(old), _field_attrs(new)
    forward = [(key, before[key], after[key]) for key in before if before[key] != after[key]]
    if not forward:
        return []
    backward = [(key, new_value, old_value) for key, old_value, new_value in forward]
    return [
        Change(
            "alter_field",
            model,
            new.name,
            _transitions_text(forward),
            _alter_destructive(forward),
            _transitions_text(backward),
        )
    ]


def _transitions_text(transitions: list[tuple[str, Any, Any]]) -> str:
    return _SEPARATOR.join(
        f"{key}: {json.dumps(old)}{_ARROW}{json.dumps(new)}" for key, old, new in transitions
    )


def _index_flags(schema: FieldSchema | None) -> list[tuple[str, str]]:
    if schema is None:
        return []
    return [(flag, label) for flag, label in _INDEX_FLAGS if getattr(schema, flag)]


def _diff_indexes(
    model: str, name: str, old: FieldSchema | None, new: FieldSchema | None
) -> list[Change]:
    before, after = _index_flags(old), _index_flags(new)
    changes = [
        Change("drop_index", model, name, f"drop {label} on {name}", True, f"add {label} on {name}")
        for flag, label in before
        if (flag, label) not in after
    ]
    changes += [
        Change("add_index", model, name, f"add {label} on {name}", False, f"drop {label} on {name}")
        for flag, label in after
        if (flag, label) not in before
    ]
    return changes


def _relationship_text(schema: RelationshipSchema) -> str:
    text = f"{schema.name}: {schema.kind} -> {schema.target}"
    return text if schema.on_delete is None else f"{text} (on_delete {schema.on_delete})"


def _diff_relationships(old: ModelSchema, new: ModelSchema) -> list[Change]:
    old_rels = {r.name: r for r in old.relationships}
    new_rels = {r.name: r for r in new.relationships}
    changes: list[Change] = []
    for name in [*old_rels, *(n for n in new_rels if n not in old_rels)]:
        before, after = old_rels.get(name), new_rels.get(name)
        if before is None:
            changes.append(_add_relationship(new.name, after))  # type: ignore[arg-type]
        elif after is None:
            changes.append(_add_relationship(old.name, before).inverse())
        elif before != after:
            changes.append(_alter_relationship(new.name, before, after))
    return changes


def _add_relationship(model: str, schema: RelationshipSchema) -> Change:
    return Change(
        "add_relationship",
        model,
        schema.name,
        f"add relationship {_relationship_text(schema)}",
        False,
        f"drop relationship {_relationship_text(schema)}",
    )


def _alter_relationship(model: str, old: RelationshipSchema, new: RelationshipSchema) -> Change:
    # Re-targeting or changing the kind orphans stored foreign keys.
    destructive = (old.target, old.kind) != (new.target, new.kind)
    return Change(
        "alter_relationship",
        model,
        new.name,
        f"{_relationship_text(old)} => {_relationship_text(new)}",
        destructive,
        f"{_relationship_text(new)} => {_relationship_text(old)}",
    )
