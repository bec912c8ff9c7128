"""What the pooled SQL backends (PostgreSQL, MySQL/MariaDB) share, checked
on each server: the pool under load and its acquire timeout, deadlines in a
transaction, cascades and includes, and injection safety with hostile
values and identifiers. Each backend's own behaviour (DSN and TLS options,
error codes, explain) is in tests/test_postgres_backend.py and
tests/test_mysql_backend.py. Needs the DSN variables; skipped (with the
reason) without them. Each test works in a schema or database of its own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest

import aura
from _backends import mysql_database_dsn, postgres_schema_dsn
from aura import (
    AuraConstraintError,
    AuraTimeoutError,
    AuraValidationError,
    Field,
    Model,
    PoolConfig,
)


class SrvNote(Model):
    id: int = Field(primary_key=True)
    text: str
    n: int | None = None


class SrvOwner(Model):
    id: int = Field(primary_key=True)
    name: str = Field(unique=True)


class SrvPet(Model):
    id: int = Field(primary_key=True)
    owner: SrvOwner | None = Field(default=None, on_delete="cascade")


class SrvHostile(Model):
    id: int = Field(primary_key=True)
    value: str = Field(alias='va"l`; DROP TABLE "SrvNote"; DROP TABLE `SrvNote`; --')
    other: str = Field(alias='`x` "y"')


class SrvGuard(Model):
    id: int = Field(primary_key=True)
    stamp: str = Field(alias='\'); DELETE FROM "SrvNote"; DELETE FROM `SrvNote`; --', default="g")


MODELS = [SrvNote, SrvOwner, SrvPet]


@dataclass(frozen=True)
class Server:
    kind: str
    database: str
    placeholder: str
    quote: str
    current: str  # the SQL naming the current schema / database


SERVERS = {
    "postgresql": Server("postgresql", "PostgreSQL", "$1", '"', "current_schema()"),
    "mysql": Server("mysql", "MySQL", "?", "`", "DATABASE()"),
}


@pytest.fixture(params=list(SERVERS))
def server(request: pytest.FixtureRequest) -> Server:
    return SERVERS[request.param]


@pytest.fixture
async def dsn(server: Server) -> AsyncIterator[str]:
    fresh = postgres_schema_dsn if server.kind == "postgresql" else mysql_database_dsn
    async with fresh() as dsn:
        yield dsn


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[aura.Client]:
    async with aura.connect(dsn, models=MODELS) as client:
        yield client


async def test_64_tasks_on_a_pool_of_4(dsn: str) -> None:
    pool = PoolConfig(min_size=1, max_size=4, acquire_timeout_s=30.0)
    async with aura.connect(dsn, models=MODELS, pool=pool) as db:
        tx = await db.transaction().begin()
        await tx.insert(SrvNote(id=-1, text="uncommitted"))

        async def task(i: int) -> tuple[int, int]:
            await db.insert(SrvNote(id=i, text=f"t{i}", n=i))
            found = await db.query(SrvNote).where(SrvNote.id == i).one()
            hidden = await db.query(SrvNote).where(SrvNote.id == -1).count()
            return found.n or 0, hidden

        try:
            results = await asyncio.gather(*(task(i) for i in range(64)))
            assert results == [(i, 0) for i in range(64)]
            # one connection is the transaction's; every other one is back, idle
            open_, idle, max_size = await settled_pool(db, busy=1)
            assert max_size == 4 and 1 <= open_ <= 4 and idle == open_ - 1
        finally:
            await tx.rollback()
        open_, idle, _ = await settled_pool(db, busy=0)
        assert idle == open_
        assert await db.query(SrvNote).count() == 64


async def settled_pool(db: aura.Client, busy: int) -> tuple[int, int, int]:
    """`pool_status()` once only `busy` connections are out, or after 5 s.
    mysql_async hands a released connection back to its pool on a task of
    its own, so the idle count can lag the request that released it."""
    for _ in range(100):
        status = db.backend.pool_status()
        if status[0] - status[1] == busy:
            break
        await asyncio.sleep(0.05)
    return status


async def test_acquire_timeout_when_the_pool_is_held(server: Server, dsn: str) -> None:
    pool = PoolConfig(min_size=1, max_size=1, acquire_timeout_s=0.2)
    async with aura.connect(dsn, models=MODELS, pool=pool) as db:
        tx = await db.transaction().begin()
        with pytest.raises(AuraTimeoutError) as info:
            await db.query(SrvNote).count()
        assert info.value.message == (
            f"no pooled {server.database} connection became free within 0.200 s (pool size 1)"
        )
        await tx.rollback()
        assert await db.query(SrvNote).count() == 0


async def test_timeout_inside_a_transaction_keeps_it_usable(db: aura.Client) -> None:
    async with db.transaction() as tx:
        await tx.insert(SrvNote(id=1, text="a"))
        assert await tx.query(SrvNote).timeout(5000).count() == 1
        assert await tx.query(SrvNote).count() == 1
    assert await db.query(SrvNote).count() == 1


async def test_cascade_and_include(db: aura.Client) -> None:
    await db.bulk_insert(SrvOwner, [SrvOwner(id=1, name="a"), SrvOwner(id=2, name="b")])
    owners = await db.query(SrvOwner).order_by(SrvOwner.id).all()
    await db.bulk_insert(SrvPet, [SrvPet(id=i, owner=owners[i % 2]) for i in range(6)])
    pets = await db.query(SrvPet).include("owner").order_by(SrvPet.id).all()
    assert [(p.id, p.owner.name) for p in pets] == [
        (0, "a"),
        (1, "b"),
        (2, "a"),
        (3, "b"),
        (4, "a"),
        (5, "b"),
    ]
    assert await db.delete(SrvOwner).where(SrvOwner.id == 1).execute() == 1
    assert [p.id for p in await db.query(SrvPet).order_by(SrvPet.id).all()] == [1, 3, 5]


HOSTILE = [
    '\'; DROP TABLE "SrvNote"; --',
    "'; DROP TABLE `SrvNote`; --",
    '"; DROP TABLE "SrvNote"; --',
    "` OR 1=1; --",
    "%' OR '1'='1",
    "\\'; DELETE FROM `SrvNote`; --",
    '1); DROP TABLE "SrvHostile"; --',
    "$1 $$ $tag$ ::text ? ?? :1 %s",
    "ünïcødé 💥 '\"`",
    "trailing space ",
]


async def test_hostile_values_and_identifiers_stay_data(server: Server, dsn: str) -> None:
    q = server.quote
    async with aura.connect(dsn, models=[SrvNote, SrvHostile, SrvGuard]) as db:
        await db.insert(SrvNote(id=1, text="survivor"))
        for i, value in enumerate(HOSTILE):
            await db.insert(SrvHostile(id=i, value=value, other=value))
            await db.insert(SrvGuard(id=i, stamp=value))
            same = await db.query(SrvHostile).where(SrvHostile.value == value).all()
            assert [h.id for h in same] == [i]
            assert await db.query(SrvHostile).where(SrvHostile.other.contains(value)).count() == 1
            assert await db.query(SrvHostile).where(SrvHostile.value.like(value)).count() >= 0
            await db.update(SrvHostile).where(SrvHostile.id == i).set(other=value + "!").execute()
            await db.upsert(SrvGuard, key={"id": i}, values={"stamp": value})
            statement = f"SELECT id FROM {q}SrvNote{q} WHERE text = {server.placeholder}"
            assert await db.raw(statement, [value]) == []
        rows = await db.query(SrvHostile).order_by(SrvHostile.id).all()
        assert [r.value for r in rows] == HOSTILE
        assert [r.other for r in rows] == [v + "!" for v in HOSTILE]
        guards = await db.query(SrvGuard).order_by(SrvGuard.id).all()
        assert [g.stamp for g in guards] == HOSTILE
        tables = await db.raw(
            "SELECT table_name AS t FROM information_schema.tables "
            f"WHERE table_schema = {server.current} ORDER BY table_name"
        )
        assert [t["t"] for t in tables] == ["SrvGuard", "SrvHostile", "SrvNote"]
        assert [(n.id, n.text) for n in await db.query(SrvNote).all()] == [(1, "survivor")]


async def test_large_selects_stream_every_row_in_order(db: aura.Client) -> None:
    # 10,001 rows: two full chunks of 4,096 hydrated while the rest is read,
    # then the remainder; ordering, projection and filters survive chunking.
    n = 10_001
    await db.bulk_insert(SrvNote, [SrvNote(id=i, text=f"note {i}", n=i % 7) for i in range(n)])
    rows = await db.query(SrvNote).order_by(SrvNote.id.desc()).all()
    assert [r.id for r in rows] == list(range(n - 1, -1, -1))
    assert rows[0] == SrvNote(id=n - 1, text=f"note {n - 1}", n=(n - 1) % 7)
    sevens = await db.query(SrvNote).where(SrvNote.n == 3).order_by(SrvNote.id).all()
    assert [r.id for r in sevens] == [i for i in range(n) if i % 7 == 3]
    texts = await db.query(SrvNote).select(SrvNote.id, SrvNote.text).order_by(SrvNote.id).all()
    assert [(r.id, r.text) for r in texts] == [(i, f"note {i}") for i in range(n)]
    async with db.transaction() as tx:
        await tx.insert(SrvNote(id=n, text="inside"))
        seen = await tx.query(SrvNote).order_by(SrvNote.id).all()
    assert len(seen) == n + 1 and seen[-1].text == "inside"


async def test_large_inserts_are_written_while_converted_and_stay_atomic(db: aura.Client) -> None:
    # A request of more than 4,096 rows converts the rest chunk by chunk
    # while the first chunk is written (PostgreSQL: one COPY); a bad row in
    # a later chunk fails the request and nothing of it is kept.
    n = 9_000
    notes = [SrvNote(id=i, text=f"t{i}", n=i) for i in range(n)]
    assert await db.bulk_insert(SrvNote, notes, batch_size=n) == n
    assert await db.query(SrvNote).count() == n
    last = await db.query(SrvNote).where(SrvNote.id == n - 1).one()
    assert (last.text, last.n) == (f"t{n - 1}", n - 1)

    more = [SrvNote(id=n + i, text="x") for i in range(n)]
    more[7_000].n = "not a number"  # type: ignore[assignment]
    with pytest.raises(AuraValidationError) as info:
        await db.bulk_insert(SrvNote, more, batch_size=n)
    assert "SrvNote.n expects int" in info.value.message
    assert await db.query(SrvNote).count() == n

    duplicate = [SrvNote(id=n + i, text="y") for i in range(5_000)] + [SrvNote(id=0, text="dup")]
    with pytest.raises(AuraConstraintError):
        await db.bulk_insert(SrvNote, duplicate, batch_size=len(duplicate))
    assert await db.query(SrvNote).count() == n
