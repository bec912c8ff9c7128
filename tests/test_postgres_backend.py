"""The PostgreSQL backend's own behaviour (the shared semantics run in the
conformance tests through tests/_backends.py, and what the pooled SQL
backends share in tests/test_sql_servers.py): error mapping per SQLSTATE,
timeouts, DSN options, explain, capabilities, COPY. Needs
``AURA_TEST_POSTGRES_DSN``; skipped (with the reason) without it. Each test
works in a schema of its own, dropped after."""

from __future__ import annotations

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
