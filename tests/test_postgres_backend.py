"""The PostgreSQL backend's own behaviour (the shared semantics run in the
conformance tests through tests/_backends.py): the pool under load, error
mapping per SQLSTATE, timeouts, DSN options, explain, capabilities and
injection safety. Needs ``AURA_TEST_POSTGRES_DSN``; skipped (with the
reason) without it. Each test works in a schema of its own, dropped after."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

import aura
from _backends import postgres_base_dsn, postgres_schema_dsn
from aura import (
    AuraAuthenticationError,
    AuraCapabilityError,
    AuraConnectionError,
    AuraConstraintError,
    AuraDialectError,
    AuraError,
    AuraSchemaError,
    AuraTimeoutError,
    Field,
    Model,
    PoolConfig,
)


class PgNote(Model):
    id: int = Field(primary_key=True)
    text: str
    n: int | None = None


class PgOwner(Model):
    id: int = Field(primary_key=True)
    name: str = Field(unique=True)


class PgPet(Model):
    id: int = Field(primary_key=True)
    owner: PgOwner | None = Field(default=None, on_delete="cascade")


class PgHostile(Model):
    id: int = Field(primary_key=True)
    value: str = Field(alias='va"l; DROP TABLE "PgNote"; --')
    other: str = Field(alias="`x`")


class PgGuard(Model):
    id: int = Field(primary_key=True)
    stamp: str = Field(alias='\'); DELETE FROM "PgNote"; --', default="g")


MODELS = [PgNote, PgOwner, PgPet]


@pytest.fixture
async def dsn() -> AsyncIterator[str]:
    async with postgres_schema_dsn() as schema_dsn:
        yield schema_dsn


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[aura.Client]:
    async with aura.connect(dsn, models=MODELS) as client:
        yield client


def _with_netloc(dsn: str, netloc: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


# -- schemes, options, capabilities --------------------------------------------------------


@pytest.mark.parametrize("scheme", ["postgres", "postgresql", "postgresql+asyncpg"])
async def test_every_scheme_reaches_the_server(scheme: str) -> None:
    base = postgres_base_dsn()
    dsn = scheme + base[base.index("://") :]
    async with aura.connect(dsn) as client:
        assert client.backend.name == "postgres"
        assert await client.raw("SELECT 1 AS one") == [{"one": 1}]


async def test_unknown_dsn_options_and_sslmodes_are_rejected() -> None:
    base = postgres_base_dsn()
    sep = "&" if "?" in base else "?"
    with pytest.raises(AuraError) as info:
        await aura.connect(f"{base}{sep}pool_recycle=5")
    assert info.value.code == "config_error"
    assert info.value.message == (
        "Unsupported postgres DSN option(s): pool_recycle; "
        "supported: application_name, options, sslmode, sslrootcert"
    )
    with pytest.raises(AuraError) as mode:
        await aura.connect(f"{base}{sep}sslmode=verify-ca")
    assert mode.value.code == "config_error"
    assert mode.value.message == (
        "sslmode=verify-ca is not supported by the postgres backend; "
        "use disable, prefer, require or verify-full"
    )


async def test_application_name_is_forwarded(dsn: str) -> None:
    name = f"aura_app_{uuid.uuid4().hex[:8]}"
    async with aura.connect(f"{dsn}&application_name={name}") as client:
        rows = await client.raw("SELECT current_setting('application_name') AS app")
        assert rows == [{"app": name}]


async def test_sslmode_is_honoured(dsn: str) -> None:
    async with aura.connect(dsn) as probe:
        ssl = await probe.raw("SELECT current_setting('ssl') AS ssl")
    if ssl == [{"ssl": "off"}]:
        with pytest.raises(AuraConnectionError) as info:
            await aura.connect(f"{dsn}&sslmode=require")
        assert info.value.context["driver"] == "postgres"
        return
    query = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()"
    async with aura.connect(f"{dsn}&sslmode=require") as tls:
        assert await tls.raw(query) == [{"ssl": True}]
    async with aura.connect(f"{dsn}&sslmode=disable") as plain:
        assert await plain.raw(query) == [{"ssl": False}]
    # the server's certificate is not signed by a public CA: verify-full refuses it
    with pytest.raises(AuraConnectionError) as refused:
        await aura.connect(f"{dsn}&sslmode=verify-full")
    assert refused.value.context["driver"] == "postgres"


async def test_capabilities_are_honest(db: aura.Client) -> None:
    caps = db.capabilities()
    assert caps.transactions and caps.query_timeouts and caps.raw_queries and caps.explain
    assert not caps.vector_search and not caps.hybrid_search
    assert caps.full_text_search and caps.aggregations_and_facets
    # Ranked only on fields declared full_text=True (their index is built).
    with pytest.raises(AuraDialectError):
        await db.query(PgNote).search_text(PgNote.text, "x").all()
    with pytest.raises(AuraCapabilityError) as info:
        await db.query(PgNote).nearest(PgNote.text, [1.0], limit=1).all()
    assert info.value.context["capability"] == "vector_search"


async def test_explain_has_the_sql_and_the_plan(db: aura.Client) -> None:
    out = db.backend.explain(db.query(PgNote).where(PgNote.id == 3).explain())
    assert out["sql"] == 'SELECT "id", "text", "n" FROM "PgNote" WHERE "id" = $1 ORDER BY "id" ASC'
    assert out["plan"][0].startswith('Index Scan using "PgNote_pkey" on "PgNote"')
    assert out["model"] == "PgNote"


# -- the pool -------------------------------------------------------------------------------


async def test_64_tasks_on_a_pool_of_4(dsn: str) -> None:
    pool = PoolConfig(min_size=1, max_size=4, acquire_timeout_s=30.0)
    async with aura.connect(dsn, models=MODELS, pool=pool) as db:
        tx = await db.transaction().begin()
        await tx.insert(PgNote(id=-1, text="uncommitted"))

        async def task(i: int) -> tuple[int, int]:
            await db.insert(PgNote(id=i, text=f"t{i}", n=i))
            found = await db.query(PgNote).where(PgNote.id == i).one()
            hidden = await db.query(PgNote).where(PgNote.id == -1).count()
            return found.n or 0, hidden

        results = await asyncio.gather(*(task(i) for i in range(64)))
        assert results == [(i, 0) for i in range(64)]
        open_, idle, max_size = db.backend.pool_status()
        # one connection is the transaction's; every other one is back, idle
        assert max_size == 4 and 1 <= open_ <= 4 and idle == open_ - 1
        await tx.rollback()
        open_, idle, _ = db.backend.pool_status()
        assert idle == open_
        assert await db.query(PgNote).count() == 64


async def test_acquire_timeout_when_the_pool_is_held(dsn: str) -> None:
    pool = PoolConfig(min_size=1, max_size=1, acquire_timeout_s=0.2)
    async with aura.connect(dsn, models=MODELS, pool=pool) as db:
        tx = await db.transaction().begin()
        with pytest.raises(AuraTimeoutError) as info:
            await db.query(PgNote).count()
        assert info.value.message == (
            "no pooled PostgreSQL connection became free within 0.200 s (pool size 1)"
        )
        await tx.rollback()
        assert await db.query(PgNote).count() == 0


# -- errors ---------------------------------------------------------------------------------


async def test_unique_and_primary_key_violations(db: aura.Client) -> None:
    await db.insert(PgOwner(id=1, name="secret-name"))
    with pytest.raises(AuraConstraintError) as pk:
        await db.insert(PgOwner(id=1, name="other"))
    assert pk.value.message == "PgOwner already has a row with this primary key"
    assert pk.value.context == {"model": "PgOwner", "driver": "postgres", "sqlstate": "23505"}
    with pytest.raises(AuraConstraintError) as unique:
        await db.insert(PgOwner(id=2, name="secret-name"))
    assert unique.value.message == "PgOwner.name must be unique"
    assert "secret-name" not in str(unique.value)


async def test_not_null_fk_and_missing_table(db: aura.Client) -> None:
    with pytest.raises(AuraConstraintError) as not_null:
        await db.raw('INSERT INTO "PgNote" (id, text) VALUES ($1, $2)', [1, None])
    assert not_null.value.message == "PgNote.text cannot be null"
    assert not_null.value.context["sqlstate"] == "23502"
    await db.raw(
        'CREATE TABLE pg_fk_child (id int PRIMARY KEY, owner bigint REFERENCES "PgOwner"(id))'
    )
    with pytest.raises(AuraConstraintError) as fk:
        await db.raw("INSERT INTO pg_fk_child VALUES ($1, $2)", [1, 424242])
    assert fk.value.message == "PostgreSQL foreign key constraint violated"
    assert fk.value.context["sqlstate"] == "23503"
    assert "424242" not in str(fk.value)
    with pytest.raises(AuraSchemaError) as missing:
        await db.raw("SELECT * FROM no_such_table_here")
    assert missing.value.context == {"driver": "postgres", "sqlstate": "42P01"}


async def test_connection_refused() -> None:
    base = postgres_base_dsn()
    refused = _with_netloc(base, "postgres:hunter2@127.0.0.1:1")
    with pytest.raises(AuraConnectionError) as info:
        await aura.connect(refused, connect_timeout_s=5.0)
    assert info.value.context["driver"] == "postgres"
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value.context)


async def test_bad_credentials() -> None:
    base = postgres_base_dsn()
    host = urlsplit(base).netloc.rsplit("@", 1)[-1]
    bad = _with_netloc(base, f"aura_no_such_role:hunter2@{host}")
    with pytest.raises(AuraAuthenticationError) as info:
        await aura.connect(bad)
    assert info.value.message == "PostgreSQL rejected the credentials"
    assert info.value.context["driver"] == "postgres"
    assert info.value.context["sqlstate"] in ("28P01", "28000")
    assert "hunter2" not in str(info.value)


async def test_lost_connection(dsn: str) -> None:
    name = f"aura_lost_{uuid.uuid4().hex[:8]}"
    async with (
        aura.connect(f"{dsn}&application_name={name}", models=MODELS) as db,
        aura.connect(dsn) as admin,
    ):
        tx = await db.transaction().begin()
        killed = await admin.raw(
            "SELECT pg_terminate_backend(pid) AS k FROM pg_stat_activity "
            "WHERE application_name = $1",
            [name],
        )
        assert killed and all(row["k"] for row in killed)
        with pytest.raises(AuraConnectionError) as info:
            await tx.query(PgNote).count()
        # The server's FATAL 57P01 may arrive before the next request (then
        # the client sees the session end) or be noticed only as a closed
        # socket: both are the same lost connection.
        assert info.value.message.startswith("the connection to PostgreSQL was lost")
        assert info.value.context in (
            {"driver": "postgres", "sqlstate": "57P01"},
            {"driver": "postgres"},
        )


async def test_statement_timeout(db: aura.Client) -> None:
    await db.bulk_insert(PgNote, [PgNote(id=i, text=f"row {i} " * 8) for i in range(300_000)])
    slow = db.query(PgNote).where(PgNote.text.contains("no such text")).timeout(1)
    with pytest.raises(AuraTimeoutError) as info:
        await slow.count()
    assert info.value.message == "query exceeded its timeout of 1 ms"
    assert info.value.context == {"driver": "postgres", "timeout_ms": 1}
    # the connection and the session's default are intact afterwards
    assert await db.query(PgNote).where(PgNote.text.contains("no such text")).count() == 0


async def test_timeout_inside_a_transaction_keeps_it_usable(db: aura.Client) -> None:
    async with db.transaction() as tx:
        await tx.insert(PgNote(id=1, text="a"))
        assert await tx.query(PgNote).timeout(5000).count() == 1
        assert await tx.query(PgNote).count() == 1
    assert await db.query(PgNote).count() == 1


# -- semantics specific to the driver -------------------------------------------------------


async def test_bulk_insert_uses_copy_and_reports_conflicts(db: aura.Client) -> None:
    rows = [PgNote(id=i, text=f"n{i}", n=None if i % 3 else i) for i in range(1000)]
    assert await db.bulk_insert(PgNote, rows) == 1000
    got = await db.query(PgNote).order_by(PgNote.id).all()
    assert [(r.id, r.text, r.n) for r in got] == [(r.id, r.text, r.n) for r in rows]
    with pytest.raises(AuraConstraintError) as info:
        await db.bulk_insert(PgNote, [PgNote(id=2000 + i, text="x") for i in range(50)] + rows[:1])
    assert info.value.message == "PgNote already has a row with this primary key"
    assert await db.query(PgNote).count() == 1000  # nothing of the failed batch


async def test_cascade_and_include(db: aura.Client) -> None:
    await db.bulk_insert(PgOwner, [PgOwner(id=1, name="a"), PgOwner(id=2, name="b")])
    owners = await db.query(PgOwner).order_by(PgOwner.id).all()
    await db.bulk_insert(PgPet, [PgPet(id=i, owner=owners[i % 2]) for i in range(6)])
    pets = await db.query(PgPet).include("owner").order_by(PgPet.id).all()
    assert [(p.id, p.owner.name) for p in pets] == [
        (0, "a"),
        (1, "b"),
        (2, "a"),
        (3, "b"),
        (4, "a"),
        (5, "b"),
    ]
    assert await db.delete(PgOwner).where(PgOwner.id == 1).execute() == 1
    assert [p.id for p in await db.query(PgPet).order_by(PgPet.id).all()] == [1, 3, 5]


# -- injection ------------------------------------------------------------------------------

HOSTILE = [
    '\'; DROP TABLE "PgNote"; --',
    '"; DROP TABLE "PgNote"; --',
    "` OR 1=1; --",
    "%' OR '1'='1",
    '\\\'; DELETE FROM "PgNote"; --',
    '1); DROP TABLE "PgHostile"; --',
    "$1 $$ $tag$ ::text",
    "ünïcødé 💥 '\"`",
]


async def test_hostile_values_and_identifiers_stay_data(dsn: str) -> None:
    async with aura.connect(dsn, models=[PgNote, PgHostile, PgGuard]) as db:
        await db.insert(PgNote(id=1, text="survivor"))
        for i, value in enumerate(HOSTILE):
            await db.insert(PgHostile(id=i, value=value, other=value))
            await db.insert(PgGuard(id=i, stamp=value))
            assert [
                h.id for h in await db.query(PgHostile).where(PgHostile.value == value).all()
            ] == [i]
            assert await db.query(PgHostile).where(PgHostile.other.contains(value)).count() == 1
            assert await db.query(PgHostile).where(PgHostile.value.like(value)).count() >= 0
            await db.update(PgHostile).where(PgHostile.id == i).set(other=value + "!").execute()
            await db.upsert(PgGuard, key={"id": i}, values={"stamp": value})
            assert await db.raw('SELECT id FROM "PgNote" WHERE text = $1', [value]) == []
        rows = await db.query(PgHostile).order_by(PgHostile.id).all()
        assert [r.value for r in rows] == HOSTILE
        assert [r.other for r in rows] == [v + "!" for v in HOSTILE]
        assert [g.stamp for g in await db.query(PgGuard).order_by(PgGuard.id).all()] == HOSTILE
        tables = await db.raw(
            "SELECT table_name AS t FROM information_schema.tables "
            "WHERE table_schema = current_schema() ORDER BY table_name"
        )
        assert [t["t"] for t in tables] == ["PgGuard", "PgHostile", "PgNote"]
        assert [(n.id, n.text) for n in await db.query(PgNote).all()] == [(1, "survivor")]
