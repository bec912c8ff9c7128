"""Differential check: random filter / order / limit / offset / count /
exists queries over random data (nulls, unicode, hostile strings, numeric
boundaries) give identical answers on the memory engine (the reference,
API.md §16 row 30) and on SQLite, and the first ``PG_QUERIES`` of them on
PostgreSQL (when ``AURA_TEST_POSTGRES_DSN`` is set) and the first
``MYSQL_QUERIES`` on MariaDB (``AURA_TEST_MYSQL_DSN``). Seeded, so a failure
is reproducible; the failing query's IR is printed."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from typing import Any

import aura
from _backends import mysql_base_dsn, mysql_database_dsn, postgres_base_dsn, postgres_schema_dsn
from aura import Field, Model, and_, not_, or_

SEED = 20261127
ROWS = 90
QUERIES = 2400
PG_QUERIES = 400
MYSQL_QUERIES = 400

INTS = [None, 0, 1, -1, 2, 3, 7, 42, 100, -(2**63), 2**63 - 1]
FLOATS = [None, 0.0, -0.0, 0.5, -1.5, 2.0, 3.0, 1e308, -1e308, math.inf, -math.inf]
STRINGS = [
    None,
    "",
    " ",
    "a",
    "A",
    "ab",
    "aB",
    "abc",
    "b",
    "é",
    "E\u0301",
    "💥",
    "日本語",
    "'; DROP TABLE SqlDiff; --",
    '"q"',
    "%",
    "_",
    "a%b",
    "a_b",
    "!",
    "!!",
    "\\",
    "\\%",
    "MiXeD",
    "mixed",
    "zz top",
    "Ω≈ç√",
    "tab\there",
    "new\nline",
]
TAGS = ["x", "y", "Z", "%", "'", "", "é"]
PATTERNS = ["%", "_", "a%", "%b", "a_b", "%!%", "A%", "_%_", "%\\%", "é%", "%%", "a", "%a%", "__"]


class SqlDiff(Model):
    id: int = Field(primary_key=True)
    i: int | None = None
    f: float | None = None
    s: str | None = None
    b: bool | None = None
    tags: list[str] = Field(default_factory=list)


# MySQL's DOUBLE holds no infinity (docs/mysql.md): its rows use finite
# stand-ins, the same number of choices so the seeded data lines up.
FINITE_FLOATS = [1.5e300 if f == math.inf else -1.5e300 if f == -math.inf else f for f in FLOATS]


def make_rows(rng: random.Random, floats: list[Any] = FLOATS) -> list[SqlDiff]:
    return [
        SqlDiff(
            id=n,
            i=rng.choice(INTS),
            f=rng.choice(floats),
            s=rng.choice(STRINGS),
            b=rng.choice([None, True, False]),
            tags=rng.sample(TAGS, rng.randint(0, 3)),
        )
        for n in range(ROWS)
    ]


def _some(rng: random.Random, pool: list[Any]) -> list[Any]:
    return rng.sample(pool, rng.randint(0, 3))


def leaf(rng: random.Random) -> Any:
    field = rng.choice(["i", "f", "s", "b", "tags"])
    ref = getattr(SqlDiff, field)
    if field == "tags":
        return ref.contains(rng.choice([*TAGS, "nope"]))
    pool: list[Any] = {
        "i": [*INTS, 2.5, -0.5],
        "f": [*FLOATS, 1, -3],
        "s": STRINGS,
        "b": [None, True, False],
    }[field]
    value = rng.choice(pool)
    ops: list[Callable[[], Any]] = [
        lambda: ref == value,
        lambda: ref != value,
        lambda: ref.in_(_some(rng, pool)),
        lambda: ref.not_in(_some(rng, pool)),
        lambda: ref.is_null(),
        lambda: ref.is_not_null(),
    ]
    if value is not None:
        ops += [
            lambda: ref < value,
            lambda: ref <= value,
            lambda: ref > value,
            lambda: ref >= value,
        ]
    if field == "s":
        text = rng.choice([s for s in STRINGS if s is not None] + ["b", "%", "!", "\\"])
        ops += [
            lambda: ref.contains(text),
            lambda: ref.startswith(text),
            lambda: ref.endswith(text),
            lambda: ref.like(rng.choice(PATTERNS)),
        ]
    return rng.choice(ops)()


def predicate(rng: random.Random, depth: int = 0) -> Any:
    roll = rng.random()
    if depth >= 3 or roll < 0.45:
        return leaf(rng)
    if roll < 0.65:
        return not_(predicate(rng, depth + 1))
    parts = [predicate(rng, depth + 1) for _ in range(rng.randint(1, 3))]
    return and_(*parts) if roll < 0.83 else or_(*parts)


def build(client: aura.Client, rng: random.Random) -> tuple[str, Any]:
    q = client.query(SqlDiff)
    for _ in range(rng.choice([0, 1, 1, 2])):
        q = q.where(predicate(rng))
    kind = rng.choices(["all", "count", "exists"], weights=[70, 15, 15])[0]
    if kind != "all":
        return kind, q
    for _ in range(rng.randint(0, 2)):
        ref = getattr(SqlDiff, rng.choice(["i", "f", "s", "b", "id"]))
        q = q.order_by(ref.desc() if rng.random() < 0.5 else ref.asc())
    if rng.random() < 0.5:
        q = q.limit(rng.randint(0, 12))
    if rng.random() < 0.4:
        q = q.offset(rng.randint(0, 12))
    return kind, q


async def run(kind: str, q: Any) -> Any:
    if kind == "count":
        return await q.count()
    if kind == "exists":
        return await q.exists()
    return [row.id for row in await q.all()]


async def agree(memory: aura.Client, other: aura.Client, rng: random.Random, queries: int) -> None:
    """Runs ``queries`` random queries on both clients; asserts equal answers."""
    kinds = {"all": 0, "count": 0, "exists": 0}
    for n in range(queries):
        state = rng.getstate()
        kind, q_mem = build(memory, rng)
        rng.setstate(state)
        _, q_other = build(other, rng)
        expected = await run(kind, q_mem)
        got = await run(kind, q_other)
        assert got == expected, f"query {n} ({kind}) differs: {q_mem.explain()}"
        kinds[kind] += 1
    assert sum(kinds.values()) == queries and min(kinds.values()) > queries // 12
    # the stored rows read back identically too
    everything = await other.query(SqlDiff).all()
    assert [r.to_dict() for r in everything] == [
        r.to_dict() for r in await memory.query(SqlDiff).all()
    ]


async def test_memory_and_sqlite_agree_on_random_queries() -> None:
    rng = random.Random(SEED)
    rows = make_rows(rng)
    async with (
        aura.connect("memory://", models=[SqlDiff]) as memory,
        aura.connect("sqlite://", models=[SqlDiff]) as sqlite,
    ):
        assert await memory.bulk_insert(SqlDiff, rows) == ROWS
        assert await sqlite.bulk_insert(SqlDiff, rows) == ROWS
        await agree(memory, sqlite, rng, QUERIES)


async def test_memory_and_postgres_agree_on_random_queries() -> None:
    postgres_base_dsn()  # skips, with the reason, when no server is configured
    rng = random.Random(SEED)
    rows = make_rows(rng)
    async with (
        postgres_schema_dsn() as dsn,
        aura.connect("memory://", models=[SqlDiff]) as memory,
        aura.connect(dsn, models=[SqlDiff]) as postgres,
    ):
        assert await memory.bulk_insert(SqlDiff, rows) == ROWS
        assert await postgres.bulk_insert(SqlDiff, rows) == ROWS
        await agree(memory, postgres, rng, PG_QUERIES)


async def test_memory_and_mariadb_agree_on_random_queries() -> None:
    mysql_base_dsn()  # skips, with the reason, when no server is configured
    rng = random.Random(SEED)
    rows = make_rows(rng, FINITE_FLOATS)
    async with (
        mysql_database_dsn() as dsn,
        aura.connect("memory://", models=[SqlDiff]) as memory,
        aura.connect(dsn, models=[SqlDiff]) as mariadb,
    ):
        assert await memory.bulk_insert(SqlDiff, rows) == ROWS
        assert await mariadb.bulk_insert(SqlDiff, rows) == ROWS
        await agree(memory, mariadb, rng, MYSQL_QUERIES)
