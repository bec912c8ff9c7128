"""diff_schema on PostgreSQL and MySQL/MariaDB: the live tables (read from
the database's catalog) against the declared models, as on SQLite
(tests/test_sqlite_search.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

import aura
from _backends import connect_backend
from aura import Field, Model


class DiffShape(Model):
    id: int = Field(primary_key=True)
    name: str = Field(index=True)
    email: str = Field(unique=True)
    n: int | None = None
    body: str = Field(default="", full_text=True)


class DiffOther(Model):
    key: str = Field(primary_key=True)
    flag: bool = False


@pytest.fixture(params=["postgresql", "mysql"])
async def db(request: pytest.FixtureRequest) -> AsyncIterator[aura.Client]:
    async with connect_backend(request.param, [DiffShape]) as client:
        yield client


def changes(plan: object) -> list[tuple[str, str, str, bool]]:
    return [(c.kind, c.model, c.target, c.destructive) for c in plan.changes]  # type: ignore[attr-defined]


def quoted(db: aura.Client, name: str) -> str:
    return f"`{name}`" if db.backend.name == "mysql" else f'"{name}"'


async def test_matching_tables_diff_empty_and_a_missing_one_is_added(db: aura.Client) -> None:
    assert (await db.backend.diff_schema([DiffShape])).is_empty
    plan = await db.backend.diff_schema([DiffShape, DiffOther])
    assert changes(plan) == [("add_model", "DiffOther", "", False)]


async def test_the_live_table_is_read(db: aura.Client) -> None:
    table, q = quoted(db, "DiffShape"), lambda name: quoted(db, name)
    await db.raw(f"ALTER TABLE {table} DROP COLUMN {q('n')}")
    await db.raw(f"ALTER TABLE {table} ADD COLUMN {q('legacy')} TEXT")
    if db.backend.name == "mysql":
        await db.raw(f"DROP INDEX {q('idx_DiffShape_name')} ON {table}")
        await db.raw(f"DROP INDEX {q('ftx_DiffShape_body')} ON {table}")
    else:
        await db.raw(f"DROP INDEX {q('idx_DiffShape_name')}")
        await db.raw(f"DROP INDEX {q('ftx_DiffShape_body')}")
    plan = await db.backend.diff_schema([DiffShape])
    assert changes(plan) == [
        ("add_field", "DiffShape", "n", False),
        ("alter_field", "DiffShape", "body", False),
        ("drop_field", "DiffShape", "legacy", True),
        ("add_index", "DiffShape", "name", False),
    ]


async def test_type_and_nullability_changes(db: aura.Client) -> None:
    table, q = quoted(db, "DiffShape"), lambda name: quoted(db, name)
    await db.raw(f"DROP TABLE {table}")
    # The types the tables are created with, but for `n`.
    keyed, text = ("VARCHAR(255)", "LONGTEXT") if db.backend.name == "mysql" else ("TEXT", "TEXT")
    await db.raw(
        f"CREATE TABLE {table} ({q('id')} BIGINT NOT NULL PRIMARY KEY, {q('name')} {keyed}, "
        f"{q('email')} {keyed} NOT NULL UNIQUE, {q('n')} {text}, {q('body')} {text} NOT NULL)"
    )
    plan = await db.backend.diff_schema([DiffShape])
    assert [(c.kind, c.target, c.destructive, c.detail) for c in plan.changes] == [
        ("alter_field", "body", False, "full_text: false -> true"),
        ("alter_field", "n", True, f'type: "sql {text.lower()}" -> "int"'),
        ("alter_field", "name", True, "nullable: true -> false"),
        ("add_index", "name", False, "add index on name"),
    ]
