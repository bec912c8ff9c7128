"""The Redis backend against a real server (AURA_TEST_REDIS_DSN): the stored
format, key-value reads and writes, and the capability errors for what a
key-value store cannot answer (API.md §2.5, §8, §16 rows 36 and 38)."""

from __future__ import annotations

import asyncio
import datetime as dt
import enum
import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import pytest

import aura
from _backends import connect_backend, redis_base_dsn, unique_redis_dsn
from aura import (
    AuraCapabilityError,
    AuraConstraintError,
    AuraError,
    AuraNotFoundError,
    AuraQueryError,
    Field,
    Model,
    Vector,
)


class RdsColor(enum.Enum):
    RED = "red"
    BLUE = "blue"


class RdsUser(Model):
    id: int = Field(primary_key=True)
    name: str
    score: float = 0.0


class RdsEverything(Model):
    key: str = Field(primary_key=True)
    n: int
    x: float
    s: str
    ok: bool
    blob: bytes
    at: dt.datetime
    day: dt.date
    uid: uuid.UUID
    price: Decimal
    color: RdsColor
    tags: list[str]
    meta: dict[str, Any]
    emb: Vector[3]
    bare: list
    note: str | None = None


class RdsNoKey(Model):
    name: str


async def resp(dsn: str, prefix_key: str, *args: str) -> Any:
    """One raw RESP command on its own socket (to read what is stored)."""
    url = urlsplit(dsn)
    reader, writer = await asyncio.open_connection(url.hostname or "127.0.0.1", url.port or 6379)
    db = (url.path or "/0").lstrip("/") or "0"
    parts = ["SELECT", db]
    payload = f"*{len(parts)}\r\n" + "".join(f"${len(p.encode())}\r\n{p}\r\n" for p in parts)
    cmd = [*args[:1], prefix_key, *args[1:]]
    payload += f"*{len(cmd)}\r\n" + "".join(f"${len(c.encode())}\r\n{c}\r\n" for c in cmd)
    writer.write(payload.encode())
    await writer.drain()
    assert await reader.readline() == b"+OK\r\n"
    head = await reader.readline()
    writer.close()
    if head.startswith(b"$-1"):
        return None
    if head.startswith(b"$"):
        size = int(head[1:])
        data = await reader.readexactly(size + 2)
        return data[:-2].decode()
    return head.decode().strip()


@pytest.fixture
async def db() -> AsyncIterator[aura.Client]:
    async with connect_backend("redis", [RdsUser, RdsEverything]) as client:
        yield client


def everything(key: str = "k1") -> RdsEverything:
    return RdsEverything(
        key=key,
        n=-(2**62),
        x=0.1,
        s='quote " and \\ and ünïcode',
        ok=True,
        blob=b"\x00\xff\x10",
        at=dt.datetime(2024, 5, 1, 12, 30, 15, 123456, tzinfo=dt.UTC),
        day=dt.date(2024, 2, 29),
        uid=uuid.UUID("12345678-1234-5678-1234-567812345678"),
        price=Decimal("10.250"),
        color=RdsColor.BLUE,
        tags=["a", "b"],
        meta={"nested": {"list": [1, 2.5, None, "x"]}, "flag": False},
        emb=[1.0, 0.5, -2.0],
        bare=[1, "two", {"three": 3}],
    )


async def test_every_field_type_round_trips(db: aura.Client) -> None:
    row = everything()
    await db.insert(row)
    back = await db.query(RdsEverything).where(RdsEverything.key == "k1").one()
    assert back == row
    assert back.to_dict() == row.to_dict()
    assert type(back.at) is dt.datetime and back.at.tzinfo is not None
    assert type(back.uid) is uuid.UUID and back.price == Decimal("10.250")
    assert back.color is RdsColor.BLUE and back.blob == b"\x00\xff\x10"
    assert isinstance(back.emb, Vector) and list(back.emb) == [1.0, 0.5, -2.0]
    assert back.note is None and back.n == -(2**62) and back.x == 0.1


async def test_stored_format_is_one_json_string_at_model_pk(db: aura.Client) -> None:
    await db.insert(RdsUser(id=7, name="ann", score=1.5))
    prefix = db.backend.key_prefix  # type: ignore[attr-defined]
    stored = await resp(redis_base_dsn(), f"{prefix}RdsUser:7", "GET")
    assert json.loads(stored) == {"id": 7, "name": "ann", "score": 1.5}
    await db.insert(everything("k2"))
    raw = json.loads(await resp(redis_base_dsn(), f"{prefix}RdsEverything:k2", "GET"))
    assert raw["blob"] == {"__bytes__": "AP8Q"}
    assert raw["at"] == "2024-05-01T12:30:15.123456+00:00"
    assert raw["price"] == "10.250" and raw["color"] == "blue" and raw["emb"] == [1.0, 0.5, -2.0]


async def test_db_index_comes_from_the_dsn_path() -> None:
    base = redis_base_dsn()
    url = urlsplit(base)
    other = base.replace(url.path or "/0", "/5") if url.path else base.rstrip("/") + "/5"
    sep = "&" if "?" in other else "?"
    dsn = f"{other}{sep}key_prefix=aura-test-db5-{uuid.uuid4().hex[:8]}:"
    async with aura.connect(dsn, models=[RdsUser]) as client:
        try:
            await client.insert(RdsUser(id=1, name="five"))
            prefix = client.backend.key_prefix  # type: ignore[attr-defined]
            five = base.replace(url.path or "/0", "/5") if url.path else base + "/5"
            assert await resp(five, f"{prefix}RdsUser:1", "EXISTS") == ":1"
            assert await resp(base, f"{prefix}RdsUser:1", "EXISTS") == ":0"
        finally:
            await client.backend.drop_schema([RdsUser])


async def test_insert_is_set_nx_and_on_conflict_is_honoured(db: aura.Client) -> None:  # §16 row 36
    await db.insert(RdsUser(id=1, name="a"))
    with pytest.raises(AuraConstraintError) as info:
        await db.insert(RdsUser(id=1, name="b"))
    assert info.value.code == "constraint_violation"
    assert info.value.message == "RdsUser already has a row with this primary key"
    assert (
        await db.bulk_insert(
            RdsUser, [RdsUser(id=1, name="c"), RdsUser(id=2, name="d")], on_conflict="ignore"
        )
        == 1
    )
    assert (await db.RdsUser.find(id=1)).name == "a"
    await db.insert(RdsUser(id=1, name="e"), on_conflict="replace")
    assert (await db.RdsUser.find(id=1)).name == "e"
    # A batch is all or nothing (MSETNX): id 3 is not written next to the duplicate.
    with pytest.raises(AuraConstraintError):
        await db.bulk_insert(RdsUser, [RdsUser(id=3, name="f"), RdsUser(id=2, name="g")])
    assert await db.query(RdsUser).where(RdsUser.id == 3).first() is None
    with pytest.raises(AuraConstraintError):
        await db.bulk_insert(RdsUser, [RdsUser(id=8, name="h"), RdsUser(id=8, name="i")])
    assert await db.query(RdsUser).count() == 2


async def test_reads_updates_and_deletes_by_key(db: aura.Client) -> None:
    await db.bulk_insert(RdsUser, [RdsUser(id=i, name=f"u{i}") for i in (3, 1, 2)])
    assert [u.id for u in await db.query(RdsUser).all()] == [1, 2, 3]
    assert [u.id for u in await db.query(RdsUser).where(RdsUser.id.in_([3, 9, 1])).all()] == [1, 3]
    assert await db.query(RdsUser).where(RdsUser.id.in_([])).all() == []
    assert [u.id for u in await db.query(RdsUser).limit(1).offset(1).all()] == [2]
    assert await db.query(RdsUser).where(RdsUser.id.in_([1, 2, 9])).count() == 2
    assert await db.query(RdsUser).where(RdsUser.id == 9).exists() is False
    with pytest.raises(AuraNotFoundError):
        await db.RdsUser.find(id=9)
    assert await db.update(RdsUser).where(RdsUser.id.in_([1, 2, 9])).set(score=2.5).execute() == 2
    assert [u.score for u in await db.query(RdsUser).all()] == [2.5, 2.5, 0.0]
    with pytest.raises(AuraQueryError) as info:
        await db.update(RdsUser).where(RdsUser.id == 1).set(id=10).execute()
    assert info.value.message.startswith("Redis cannot change the primary key RdsUser.id")
    assert await db.delete(RdsUser).where(RdsUser.id == 2).execute() == 1
    assert await db.delete(RdsUser).where(RdsUser.id == 2).execute() == 0
    assert await db.delete(RdsUser).execute() == 2
    assert await db.query(RdsUser).count() == 0


async def test_upsert_by_primary_key(db: aura.Client) -> None:
    first = await db.upsert(RdsUser, key={RdsUser.id: 4}, values={"name": "new"})
    assert (first.id, first.name, first.score) == (4, "new", 0.0)
    second = await db.upsert(RdsUser, key={"id": 4}, values={RdsUser.score: 9.0})
    assert (second.name, second.score) == ("new", 9.0)
    with pytest.raises(AuraCapabilityError) as info:
        await db.upsert(RdsUser, key={"name": "new"}, values={"score": 1.0})
    assert info.value.context == {"backend": "redis", "capability": "relational_filter"}


async def test_concurrent_updates_lose_nothing(db: aura.Client) -> None:
    await db.insert(RdsUser(id=1, name="a", score=0.0))
    names = [f"n{i}" for i in range(20)]
    await asyncio.gather(
        *(db.update(RdsUser).where(RdsUser.id == 1).set(name=n).execute() for n in names)
    )
    assert (await db.RdsUser.find(id=1)).name in names


@pytest.mark.parametrize(
    ("build", "capability"),
    [
        (lambda c: c.query(RdsUser).where(RdsUser.name == "a").all(), "relational_filter"),
        (lambda c: c.query(RdsUser).where(RdsUser.id > 1).all(), "relational_filter"),
        (
            lambda c: c.query(RdsUser).where((RdsUser.id == 1) | (RdsUser.id == 2)).all(),
            "relational_filter",
        ),
        (lambda c: c.query(RdsUser).where(RdsUser.id != 1).count(), "relational_filter"),
        (lambda c: c.delete(RdsUser).where(RdsUser.name == "a").execute(), "relational_filter"),
        (
            lambda c: c.update(RdsUser).where(RdsUser.score < 1).set(name="x").execute(),
            "relational_filter",
        ),
        (lambda c: c.query(RdsUser).order_by(RdsUser.id).all(), "ordering"),
        (lambda c: c.query(RdsUser).select(RdsUser.name).all(), "projection"),
        (lambda c: c.query(RdsUser).timeout(50).all(), "query_timeouts"),
        (lambda c: c.query(RdsUser).aggregate_count().aggregate(), "aggregations_and_facets"),
        (lambda c: c.raw("GET x"), "raw_queries"),
        (lambda c: c.traverse(RdsUser).start(RdsUser.id == 1).all(), "graph_traversal"),
    ],
)
async def test_what_a_key_value_store_cannot_answer(
    db: aura.Client, build: Any, capability: str
) -> None:  # §16 row 38
    with pytest.raises(AuraCapabilityError) as info:
        await build(db)
    assert info.value.context == {"backend": "redis", "capability": capability}
    assert info.value.message.startswith("Backend 'redis' does not support ")


async def test_transactions_streams_and_explain_are_refused(db: aura.Client) -> None:
    with pytest.raises(AuraCapabilityError) as tx:
        db.transaction()
    assert tx.value.context == {"backend": "redis", "capability": "transactions"}
    with pytest.raises(AuraCapabilityError) as stream:
        async for _ in db.query(RdsUser).stream():
            pass
    assert stream.value.context == {"backend": "redis", "capability": "server_side_cursors"}
    with pytest.raises(AuraCapabilityError):
        db.backend.explain(db.query(RdsUser).explain())


async def test_a_primary_key_is_mandatory() -> None:
    with pytest.raises(AuraQueryError) as info:
        async with aura.connect(unique_redis_dsn(), models=[RdsNoKey]):
            pass
    assert info.value.message == (
        "Redis stores rows by primary key: RdsNoKey declares none (Field(primary_key=True))"
    )
    assert info.value.context == {"model": "RdsNoKey", "driver": "redis"}


@pytest.mark.parametrize(
    "hostile",
    ["*", "a:b", "k\r\nFLUSHALL\r\n", "' OR 1=1 --", '{"$gt": ""}', "ünï\x00code", "[a-z]?"],
)
async def test_hostile_keys_are_just_keys(db: aura.Client, hostile: str) -> None:
    await db.insert(RdsEverything(**{**everything().to_dict(), "key": hostile}))  # type: ignore[arg-type]
    await db.insert(everything("plain"))
    got = await db.query(RdsEverything).where(RdsEverything.key == hostile).all()
    assert [r.key for r in got] == [hostile]
    assert await db.query(RdsEverything).count() == 2
    assert await db.delete(RdsEverything).where(RdsEverything.key == hostile).execute() == 1
    assert [r.key for r in await db.query(RdsEverything).all()] == ["plain"]


async def test_metrics_count_queries_and_errors(db: aura.Client) -> None:
    db.metrics.reset()
    await db.insert(RdsUser(id=1, name="a"))
    await db.query(RdsUser).where(RdsUser.id == 1).all()
    with pytest.raises(AuraConstraintError):
        await db.insert(RdsUser(id=1, name="b"))
    with pytest.raises(AuraCapabilityError):
        await db.query(RdsUser).order_by(RdsUser.id).all()
    assert db.metrics.query_count == {"insert": 2, "select": 2}
    assert db.metrics.error_count == {
        "constraint_violation": 1,
        "backend_capability_error": 1,
    }
    assert db.metrics.errors_total == 2


async def test_unknown_dsn_options_and_tls_are_rejected() -> None:
    with pytest.raises(AuraError) as info:
        await aura.connect("redis://127.0.0.1:6379/0?ssl_cert_reqs=none")
    assert info.value.code == "config_error"
    assert info.value.message == (
        "Unsupported Redis DSN option(s): ssl_cert_reqs; supported: key_prefix"
    )
    with pytest.raises(AuraError) as tls:
        await aura.connect("redis://127.0.0.1:6379/0", tls=aura.TLSConfig(enabled=True))
    assert tls.value.code == "config_error"


async def test_unreachable_server_is_a_connection_error() -> None:
    port = 1  # nothing listens on tcp/1 on loopback
    with pytest.raises(aura.AuraConnectionError) as info:
        await aura.connect(f"redis://127.0.0.1:{port}/0", connect_timeout_s=2.0)
    assert info.value.context["driver"] == "redis"
    assert info.value.retryable is True


async def test_redis_asyncio_scheme_is_the_same_backend() -> None:
    dsn = unique_redis_dsn().replace("redis://", "redis+asyncio://", 1)
    async with aura.connect(dsn, models=[RdsUser]) as client:
        try:
            assert client.backend.name == "redis"
            await client.insert(RdsUser(id=1, name="a"))
            assert (await client.RdsUser.find(id=1)).name == "a"
        finally:
            await client.backend.drop_schema([RdsUser])


async def test_driver_left_out_of_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    from aura.backends import redis as redis_backend

    monkeypatch.setattr(redis_backend, "AVAILABLE", False)
    with pytest.raises(aura.AuraDriverNotInstalledError) as info:
        await aura.connect("redis://127.0.0.1:1/0")
    assert str(info.value) == (
        "[driver_not_installed] The 'redis.asyncio' driver is required for the redis backend "
        "but is not installed. Install with: pip install aura-connector[redis]"
    )
