"""The stored schema of a SQL table, as ``diff_schema`` compares it.

A SQL database keeps columns, their types and nullability, the primary key,
unique and plain indexes and the full-text indexes; it does not keep Python
types, relationships, vector settings or descriptions. ``live_schema``
rebuilds the model schema the live table stands for: what the table shows
is taken from the table, the rest from the declared model, so the plan of
``generate_migration`` lists only differences the database really has.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from aura.schema import FieldSchema, MigrationPlan, ModelSchema, generate_migration

__all__ = ["live_schema", "plan_against"]


def _single_column(indexes: list[Mapping[str, Any]], *, unique: bool) -> set[str]:
    return {
        index["columns"][0]
        for index in indexes
        if len(index["columns"]) == 1 and bool(index["unique"]) is unique
    }


def _live_field(
    declared: FieldSchema,
    column: Mapping[str, Any],
    unique: set[str],
    indexed: set[str],
    full_text: set[str],
) -> FieldSchema:
    name = declared.storage_name
    primary_key = bool(column["primary_key"])
    # The DDL makes one index per field: PRIMARY KEY, else UNIQUE, else an
    # index. A declared flag the stronger index already covers stays as declared.
    is_unique = declared.unique if primary_key else name in unique
    is_index = declared.index if (primary_key or is_unique) else name in indexed
    return replace(
        declared,
        type=declared.type if column["type_matches"] else f"sql {column['type'] or 'untyped'}",
        nullable=not column["not_null"] or (declared.nullable and primary_key),
        primary_key=primary_key,
        unique=is_unique,
        index=is_index,
        full_text=name in full_text,
    )


def live_schema(declared: ModelSchema, table: Mapping[str, Any]) -> ModelSchema:
    """The schema ``table`` (a description from the driver: ``columns``,
    ``indexes``, ``full_text``) stands for, given the ``declared`` model."""
    indexes = list(table["indexes"])
    unique = _single_column(indexes, unique=True)
    indexed = _single_column(indexes, unique=False)
    full_text = set(table["full_text"])
    by_storage = {f.storage_name: f for f in declared.fields}
    fields: list[FieldSchema] = []
    primary_key: str | None = None
    for column in table["columns"]:
        name = column["name"]
        known = by_storage.get(name)
        if known is None:
            # A column the model does not declare: diffed as a field to drop.
            known = FieldSchema(name=name, type=f"sql {column['type'] or 'untyped'}")
        field = _live_field(known, column, unique, indexed, full_text)
        fields.append(field)
        if field.primary_key:
            primary_key = field.name
    return replace(
        declared,
        primary_key=primary_key,
        fields=tuple(fields),
    )


def plan_against(target: list[ModelSchema], live: Mapping[str, Any]) -> MigrationPlan:
    """The plan bringing the described live tables (``{model: description
    or None}``) to ``target``: a model without a table shows up as
    ``add_model``; tables of models not in ``target`` are left out."""
    current = [
        live_schema(schema, live[schema.name])
        for schema in target
        if live.get(schema.name) is not None
    ]
    return generate_migration(current, target)
