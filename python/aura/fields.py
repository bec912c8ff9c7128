"""Field declarations: ``Field(...)``, ``FieldInfo`` and the ``MISSING`` sentinel (API.md §2.2).

A ``FieldInfo`` starts as the options the user wrote; the model metaclass
copies it per class and fills in what the annotation says (``_apply``), so a
subclass never shares mutable field state with its parent.
"""

from __future__ import annotations

import copy
import datetime as dt
import enum
import uuid
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from aura.errors import AuraSchemaError
from aura.vectors import Vector

if TYPE_CHECKING:
    from aura._fieldtypes import TypeSpec

__all__ = ["MISSING", "Field", "FieldInfo"]

ON_DELETE_ACTIONS = ("cascade", "restrict", "set_null")
# Immutable values are shared; anything else is deep-copied per instance.
_UNCOPIED = (
    int, float, str, bytes, bool, type(None), tuple, frozenset,
    dt.date, dt.time, uuid.UUID, Decimal, enum.Enum, Vector,
)  # fmt: skip


class _MissingType:
    """Marks "no value given"; falsy so ``if info.default:`` reads naturally."""

    __slots__ = ()
    _instance: _MissingType | None = None

    def __new__(cls) -> _MissingType:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "MISSING"

    def __reduce__(self) -> str:
        return "MISSING"  # pickles (and copies) as the module-level singleton


MISSING: Any = _MissingType()


def copy_default(value: Any) -> Any:
    """A fresh copy of a mutable default (immutable values are shared)."""
    return value if isinstance(value, _UNCOPIED) else copy.deepcopy(value)


class FieldInfo:
    """Everything known about one model field: its options (§2.2) plus what the
    model metaclass derived from its annotation."""

    __slots__ = (
        "_declared_nullable",
        "alias",
        "annotation",
        "container",
        "default",
        "default_factory",
        "description",
        "full_text",
        "index",
        "is_model",
        "is_optional",
        "is_relationship",
        "is_vector",
        "kind",
        "link",
        "metadata",
        "model_type",
        "name",
        "nullable",
        "on_delete",
        "owner",
        "primary_key",
        "python_type",
        "relation",
        "spec",
        "type_label",
        "unique",
        "vector_dim",
        "vector_index",
        "via",
    )

    def __init__(
        self,
        *,
        primary_key: bool = False,
        unique: bool = False,
        index: bool = False,
        full_text: bool = False,
        nullable: bool = False,
        default: Any = MISSING,
        default_factory: Callable[[], Any] | None = None,
        alias: str | None = None,
        description: str | None = None,
        metadata: Mapping[str, Any] | None = None,
        link: bool = False,
        on_delete: str | None = None,
        vector_index: str | None = None,
    ) -> None:
        _check_options(default, default_factory, on_delete, alias, metadata)
        if primary_key and nullable:
            raise AuraSchemaError("A primary key cannot be nullable")
        self.primary_key = bool(primary_key)
        self.unique = bool(unique)
        self.index = bool(index)
        self.full_text = bool(full_text)
        self.nullable = self._declared_nullable = bool(nullable)
        self.default = default
        self.default_factory = default_factory
        self.alias = alias
        self.description = description
        self.metadata: dict[str, Any] = dict(metadata) if metadata else {}
        self.link = bool(link)
        self.on_delete = on_delete
        self.vector_index = vector_index
        self._unresolved("", None, MISSING)

    def _unresolved(self, name: str, owner: type | None, annotation: Any) -> None:
        """Reset the type-derived attributes (before or without resolution)."""
        self.name = name
        self.owner = owner
        self.annotation = annotation
        self.python_type: Any = annotation
        self.is_optional = False
        self.container = "none"
        self.is_vector = False
        self.vector_dim: int | None = None
        self.is_model = False
        self.model_type: type | None = None
        self.is_relationship = False
        self.relation: str | None = None
        self.via: str | None = None  # for a collection: the target's link pointing back
        self.kind = "any"
        self.type_label = "any"
        self.spec: TypeSpec | None = None

    def _apply(self, spec: TypeSpec) -> None:
        """Fill in the type-derived attributes from a resolved annotation."""
        self.spec = spec
        self.python_type = spec.python_type
        self.is_optional = spec.optional
        self.nullable = self._declared_nullable or spec.optional
        if self.nullable and self.default is MISSING and self.default_factory is None:
            self.default = None  # an omitted nullable field is None (§2.7)
        self.container = spec.container
        self.kind = spec.kind
        self.type_label = spec.label
        self.is_vector = spec.kind == "vector"
        self.vector_dim = spec.vector_dim
        self.model_type = spec.model
        self.is_model = spec.model is not None
        self.relation = spec.relation
        self.is_relationship = spec.relation is not None

    def _validate(self, model: str) -> None:
        """Option/type combinations that make no sense raise at class creation."""
        problem = _option_problem(self)
        if problem is not None:
            raise AuraSchemaError(
                f"{model}.{self.name}: {problem}", context={"model": model, "field": self.name}
            )

    @property
    def resolved(self) -> bool:
        return self.spec is not None

    @property
    def has_default(self) -> bool:
        return self.default is not MISSING or self.default_factory is not None

    @property
    def storage_name(self) -> str:
        return self.alias or self.name

    def build_default(self) -> Any:
        """A fresh default value (factory called, containers copied); MISSING if none."""
        if self.default_factory is not None:
            return self.default_factory()
        return copy_default(self.default)

    def is_required(self) -> bool:
        return not self.has_default and not self.nullable and not self.is_relationship

    def __repr__(self) -> str:
        parts = [f"name={self.name!r}", f"type={self.type_label!r}"]
        for flag in ("primary_key", "unique", "index", "full_text", "nullable", "link"):
            if getattr(self, flag):
                parts.append(f"{flag}=True")
        if self.has_default and self.default_factory is None:
            parts.append(f"default={self.default!r}")
        if self.alias:
            parts.append(f"alias={self.alias!r}")
        return f"FieldInfo({', '.join(parts)})"


def _check_options(
    default: Any,
    default_factory: Any,
    on_delete: Any,
    alias: Any,
    metadata: Any,
) -> None:
    if default is not MISSING and default_factory is not None:
        raise AuraSchemaError("Field() cannot set both default and default_factory")
    if default_factory is not None and not callable(default_factory):
        raise AuraSchemaError("default_factory must be a zero-argument callable")
    if on_delete is not None and on_delete not in ON_DELETE_ACTIONS:
        raise AuraSchemaError(
            f"on_delete must be one of 'cascade', 'restrict', 'set_null', got {on_delete!r}"
        )
    if alias is not None and (not isinstance(alias, str) or not alias):
        raise AuraSchemaError("alias must be a non-empty str")
    if metadata is not None and not isinstance(metadata, Mapping):
        raise AuraSchemaError("metadata must be a mapping")


def _option_problem(info: FieldInfo) -> str | None:
    kind = info.kind
    if info.link and info.relation != "link":
        return "link=True requires a model-typed annotation"
    if info.primary_key and info.nullable:
        return "a primary key cannot be nullable"
    if info.primary_key and kind in ("link", "collection", "vector", "list", "dict"):
        return f"a {info.type_label} field cannot be a primary key"
    if info.on_delete is not None and info.relation != "link":
        return "on_delete requires a to-one relationship (a model-typed annotation)"
    if info.vector_index is not None and kind != "vector":
        return "vector_index requires a Vector field"
    if info.full_text and kind != "str":
        return "full_text requires a str field"
    if info.relation == "collection" and (info.unique or info.index or info.alias):
        return "a to-many relationship is not stored; unique/index/alias do not apply"
    return None


def Field(
    *,
    primary_key: bool = False,
    unique: bool = False,
    index: bool = False,
    full_text: bool = False,
    nullable: bool = False,
    default: Any = MISSING,
    default_factory: Callable[[], Any] | None = None,
    alias: str | None = None,
    description: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    link: bool = False,
    on_delete: str | None = None,
    vector_index: str | None = None,
) -> Any:
    """Declare a model field's options; typed ``Any`` so ``x: int = Field()`` type-checks."""
    return FieldInfo(
        primary_key=primary_key,
        unique=unique,
        index=index,
        full_text=full_text,
        nullable=nullable,
        default=default,
        default_factory=default_factory,
        alias=alias,
        description=description,
        metadata=metadata,
        link=link,
        on_delete=on_delete,
        vector_index=vector_index,
    )
