"""The MongoDB backend against a MongoDB-wire server (the local nx-27017, or
AURA_TEST_MONGODB_DSN): the stored document shape, filters with the memory
engine's semantics, hostile values, aggregations, timeouts, explain, and
the capability errors of API.md §8."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from typing import Any

import pytest

import aura
from _backends import connect_backend, unique_mongodb_dsn
from aura import (
    AuraCapabilityError,
    AuraConstraintError,
    AuraError,
    AuraQueryError,
    Field,
    Model,
    Vector,
)
from aura.backends import mongodb
from aura.backends.registry import client_config_for


class MongoTeam(Model):
    id: int = Field(primary_key=True)
    name: str = Field(unique=True)


class MongoPlayer(Model):
    id: str = Field(primary_key=True)
    name: str
    cat: str | None = None
    score: float | None = None
    team: MongoTeam | None = Field(default=None, on_delete="set_null")
    meta: dict[str, Any] = Field(default_factory=dict)
    tags: list[str] = Field(default_factory=list)
    blob: bytes | None = None
    emb: Vector[2] | None = None


@pytest.fixture
async def db() -> AsyncIterator[aura.Client]:
    async with connect_backend("mongodb", [MongoTeam, MongoPlayer]) as client:
        yield client


@pytest.fixture
async def players(db: aura.Client) -> aura.Client:
    red, blue = MongoTeam(id=1, name="red"), MongoTeam(id=2, name="blue")
    await db.bulk_insert(MongoTeam, [red, blue])
    await db.bulk_insert(
        MongoPlayer,
        [
            MongoPlayer(
                id="a", name="Ann", cat="x", score=3.0, team=red, tags=["k"], meta={"lvl": 1}
            ),
            MongoPlayer(id="b", name="bob", cat="y", score=1.5, team=red, meta={"lvl": 2}),
            MongoPlayer(id="c", name="Cy.*", cat="x", score=None, team=blue),
            MongoPlayer(id="d", name="Dee\n", cat=None, score=7, blob=b"\x00\x01", emb=[1, 0]),
            MongoPlayer(id="e", name="Eve", cat="x", score=-1.0, meta={"lvl": "high"}),
        ],
    )
    return db


async def ids(query: Any) -> list[str]:
    return [row.id for row in await query.all()]


async def test_memory_semantics_of_filters(players: aura.Client) -> None:
    q = players.query(MongoPlayer)
    # != and not_in match null/missing (§16 row 30)
    assert await ids(q.where(MongoPlayer.cat != "x")) == ["b", "d"]
    assert await ids(q.where(MongoPlayer.cat.not_in(["x"]))) == ["b", "d"]
    assert await ids(q.where(MongoPlayer.score > 1)) == ["a", "b", "d"]
    assert await ids(q.where(MongoPlayer.score <= 1.5)) == ["b", "e"]
    # case-sensitive text operators on escaped regexes
    assert await ids(q.where(MongoPlayer.name.contains("B"))) == []
    assert await ids(q.where(MongoPlayer.name.contains(".*"))) == ["c"]
    assert await ids(q.where(MongoPlayer.name.startswith("C"))) == ["c"]
    assert await ids(q.where(MongoPlayer.name.endswith("e"))) == ["e"]
    assert await ids(q.where(MongoPlayer.name.endswith("e\n"))) == ["d"]
    assert await ids(q.where(MongoPlayer.name.like("%e%"))) == ["d", "e"]
    assert await ids(q.where(MongoPlayer.name.like("b_b"))) == ["b"]
    assert await ids(q.where(MongoPlayer.tags.contains("k"))) == ["a"]
    assert await ids(q.where(MongoPlayer.meta.contains("lvl"))) == ["a", "b", "e"]
    assert await ids(q.where(MongoPlayer.meta["lvl"] == 2)) == ["b"]
    assert await ids(q.where(MongoPlayer.meta["lvl"].is_null())) == ["c", "d"]
    assert await ids(q.where(MongoPlayer.team == 1).order_by(MongoPlayer.score.desc())) == [
        "a",
        "b",
    ]
    # nulls sort first ascending, last descending
    assert await ids(q.order_by(MongoPlayer.score)) == ["c", "e", "b", "a", "d"]
    assert await ids(q.order_by(MongoPlayer.score.desc())) == ["d", "a", "b", "e", "c"]
    assert await ids(q.where(MongoPlayer.id.in_(["e", "zz", "a"])).limit(0)) == []


async def test_bytes_equality_filter(players: aura.Client) -> None:
    if not os.environ.get("AURA_TEST_MONGODB_DSN"):
        pytest.skip(
            "mongodb: the local nx-27017 server does not match BSON binary values with $eq "
            "(set AURA_TEST_MONGODB_DSN to run this against MongoDB)"
        )
    q = players.query(MongoPlayer)
    assert await ids(q.where(MongoPlayer.blob == b"\x00\x01")) == ["d"]


async def test_documents_are_keyed_by_primary_key(players: aura.Client) -> None:
    row = await players.query(MongoPlayer).where(MongoPlayer.id == "d").one()
    assert row.to_dict()["id"] == "d" and "_id" not in row.to_dict()
    assert row.emb == [1.0, 0.0] and row.blob == b"\x00\x01" and row.score == 7.0
    explain = players.backend.explain(
        players.query(MongoPlayer).where(MongoPlayer.id == "d").select(MongoPlayer.name).explain()
    )
    assert explain["mongodb"] == {
        "find": "MongoPlayer",
        "filter": {"_id": {"$eq": "d"}},
        "sort": {"_id": 1},
        "projection": {"name": 1},
    }


@pytest.mark.parametrize(
    "hostile",
    [
        "'; db.dropDatabase(); '",
        ".*",
        "^a|b$",
        "(a+)+$",
        "\\",
        "x\x00y",
    ],
)
async def test_hostile_values_are_values(players: aura.Client, hostile: Any) -> None:
    q = players.query(MongoPlayer)
    assert await ids(q.where(MongoPlayer.name == hostile)) == []
    assert await ids(q.where(MongoPlayer.name.contains(hostile))) == (
        ["c"] if hostile == ".*" else []
    )
    assert await ids(q.where(MongoPlayer.name.startswith(hostile))) == []
    assert await ids(q.where(MongoPlayer.name.like(hostile))) == []
    assert await ids(q.where(MongoPlayer.name.not_in([hostile]))) == ["a", "b", "c", "d", "e"]
    assert await players.query(MongoPlayer).count() == 5


@pytest.mark.parametrize("hostile", [{"$gt": ""}, {"$where": "sleep(1000)"}, {"$ne": None}])
async def test_operator_shaped_documents_are_values(players: aura.Client, hostile: Any) -> None:
    # Stored as a value, read back as a value (every server).
    assert (
        await players.update(MongoPlayer).where(MongoPlayer.id == "d").set(meta=hostile).execute()
        == 1
    )
    assert (await players.MongoPlayer.find(id="d")).meta == hostile
    if not os.environ.get("AURA_TEST_MONGODB_DSN"):
        # The filter is {"meta": {"$eq": <document>}}: the server must not read it as
        # an operator. nx-27017 refuses such a filter instead of comparing it.
        with pytest.raises(aura.AuraServerError):
            await players.query(MongoPlayer).where(MongoPlayer.meta == hostile).all()
        pytest.skip(
            "mongodb: the local nx-27017 server rejects $eq with an operator-shaped document "
            "(MongoDB compares it as a value; set AURA_TEST_MONGODB_DSN to run this)"
        )
    q = players.query(MongoPlayer)
    assert await ids(q.where(MongoPlayer.meta == hostile)) == ["d"]
    assert await ids(q.where(MongoPlayer.meta != hostile)) == ["a", "b", "c", "e"]


async def test_hostile_document_paths_are_refused(players: aura.Client) -> None:
    for segment in ("$where", "a.b", ""):
        with pytest.raises(AuraQueryError) as info:
            await players.query(MongoPlayer).where(MongoPlayer.meta[segment] == 1).all()
        assert "cannot be expressed in MongoDB" in info.value.message


async def test_hostile_primary_keys(db: aura.Client) -> None:
    for key in ("$gt", "a.b", '{"$ne": null}'):
        await db.insert(MongoPlayer(id=key, name="h"))
    assert await ids(db.query(MongoPlayer).where(MongoPlayer.id == "$gt")) == ["$gt"]
    assert await db.delete(MongoPlayer).where(MongoPlayer.id == "a.b").execute() == 1
    assert await db.query(MongoPlayer).count() == 2


async def test_unique_index_and_on_delete_set_null(players: aura.Client) -> None:
    with pytest.raises(AuraConstraintError) as info:
        await players.insert(MongoTeam(id=3, name="red"))
    assert info.value.message == "MongoTeam.name must be unique"
    assert "red" not in str(info.value)
    assert await players.delete(MongoTeam).where(MongoTeam.id == 1).execute() == 1
    rows = await players.query(MongoPlayer).where(MongoPlayer.id.in_(["a", "b"])).all()
    assert [r.to_dict()["team"] for r in rows] == [None, None]


async def test_include_is_one_in_query_per_level(players: aura.Client) -> None:
    rows = await players.query(MongoPlayer).include("team").order_by(MongoPlayer.id).all()
    assert [(r.id, r.team.name if r.team else None) for r in rows] == [
        ("a", "red"),
        ("b", "red"),
        ("c", "blue"),
        ("d", None),
        ("e", None),
    ]


async def test_aggregations_and_facets(players: aura.Client) -> None:
    result = await (
        players.query(MongoPlayer)
        .facet("cat")
        .aggregate_count()
        .min("score")
        .max("score")
        .aggregate()
    )
    assert (result.collection, result.matched, result.filter_present) == ("MongoPlayer", 5, False)
    assert [(b.value, b.count) for b in result.facet("cat").buckets] == [("x", 3), ("y", 1)]
    assert result.metric("count") == 5
    assert (result.metric("min", "score"), result.metric("max", "score")) == (-1.0, 7)
    scoped = (
        await players.query(MongoPlayer)
        .where(MongoPlayer.cat == "x")
        .facet("cat", limit=1)
        .aggregate()
    )
    assert scoped.matched == 3 and scoped.filter_present is True
    assert [(b.value, b.count) for b in scoped.facet("cat").buckets] == [("x", 3)]


async def test_timeout_is_max_time_ms(players: aura.Client) -> None:
    q = players.query(MongoPlayer).where(MongoPlayer.cat == "x").timeout(5000)
    assert players.backend.explain(q.explain())["mongodb"]["maxTimeMS"] == 5000
    assert await ids(q) == ["a", "c", "e"]
    assert await q.count() == 3


async def test_stream_uses_a_server_cursor(players: aura.Client) -> None:
    got = [
        r.id async for r in players.query(MongoPlayer).order_by(MongoPlayer.id).stream(batch_size=2)
    ]
    assert got == ["a", "b", "c", "d", "e"]


@pytest.mark.parametrize(
    ("build", "capability"),
    [
        (lambda c: c.query(MongoPlayer).search_vector("emb", [1, 0]).all(), "vector_search"),
        (lambda c: c.query(MongoPlayer).search_text("name", "ann").all(), "full_text_search"),
        (lambda c: c.query(MongoPlayer).text("name", query="ann").all(), "full_text_search"),
        (
            lambda c: c.query(MongoPlayer).search_hybrid("name", "a", "emb", [1, 0]).all(),
            "hybrid_search",
        ),
        (lambda c: c.raw("db.x.find()"), "raw_queries"),
        (
            lambda c: c.traverse(MongoPlayer).start(MongoPlayer.id == "a").out("team").all(),
            "graph_traversal",
        ),
    ],
)
async def test_capability_errors(players: aura.Client, build: Any, capability: str) -> None:
    with pytest.raises(AuraCapabilityError) as info:
        await build(players)
    assert info.value.context == {"backend": "mongodb", "capability": capability}
    with pytest.raises(AuraCapabilityError) as tx:
        players.transaction()
    assert tx.value.context == {"backend": "mongodb", "capability": "transactions"}


async def test_metrics_count_queries_and_errors(players: aura.Client) -> None:
    players.metrics.reset()
    await players.query(MongoPlayer).all()
    await players.query(MongoPlayer).count()
    with pytest.raises(AuraConstraintError):
        await players.insert(MongoPlayer(id="a", name="dup"))
    assert players.metrics.query_count == {"select": 1, "count": 1, "insert": 1}
    assert players.metrics.error_count == {"constraint_violation": 1}


async def test_database_from_dsn_path_or_aura() -> None:
    dsn = unique_mongodb_dsn()
    async with aura.connect(dsn, models=[MongoTeam]) as client:
        assert client.backend.database == dsn.rsplit("/", 1)[1]  # type: ignore[attr-defined]
        await client.backend.drop_schema([MongoTeam])
    backend = mongodb.from_config(client_config_for("mongodb+motor://h:1"))
    assert backend.database == "aura"


def test_uri_carries_credentials_options_and_tls() -> None:
    config = client_config_for(
        "mongodb://us%40er:p%3Ass@db.example:27018/app?replicaSet=rs0",
        {"tls": aura.TLSConfig(enabled=True, ca_cert_path="/ca.pem")},
    )
    assert mongodb.mongodb_uri(config) == (
        "mongodb://us%40er:p%3Ass@db.example:27018/?replicaSet=rs0&tls=true"
        "&tlsCAFile=%2Fca.pem&maxPoolSize=16&minPoolSize=1"
    )
    with pytest.raises(AuraError) as info:
        mongodb.mongodb_uri(client_config_for("mongodb://h", {"auth": aura.TokenAuth("t")}))
    assert info.value.code == "config_error"


async def test_driver_left_out_of_the_build(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mongodb, "AVAILABLE", False)
    with pytest.raises(aura.AuraDriverNotInstalledError) as info:
        await aura.connect("mongodb://127.0.0.1:1/x")
    assert info.value.message == (
        "The 'motor.motor_asyncio' driver is required for the mongodb backend but is not "
        "installed. Install with: pip install aura-connector[mongodb]"
    )
    assert info.value.context == {
        "driver": "motor.motor_asyncio",
        "extra": "mongodb",
        "backend": "mongodb",
    }


async def test_unreachable_server_is_a_connection_error() -> None:
    with pytest.raises(aura.AuraConnectionError) as info:
        await aura.connect("mongodb://127.0.0.1:1/x", connect_timeout_s=0.5)
    assert info.value.context == {"driver": "mongodb", "operation": "ping"}
    assert info.value.retryable is True


async def test_a_silent_server_is_bounded_by_the_request_timeout() -> None:
    """A peer that accepts and never answers: the request fails with
    `timeout` once request_timeout_s passes (connect_timeout_s is longer)."""
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        with pytest.raises(aura.AuraTimeoutError) as info:
            await aura.connect(
                f"mongodb://127.0.0.1:{port}/x", connect_timeout_s=30, request_timeout_s=0.3
            )
    assert info.value.code == "timeout"
    assert info.value.context["timeout_ms"] == 300
