"""The MySQL/MariaDB backend's own behaviour (the shared semantics run in the
conformance tests through tests/_backends.py, and what the pooled SQL
backends share in tests/test_sql_servers.py): error mapping per error code,
timeouts, DSN and TLS options, explain, capabilities, upserts. Needs
``AURA_TEST_MYSQL_DSN``; skipped (with the reason) without it. Each test
works in a database of its own, dropped after."""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import pytest

import aura
from _backends import mysql_base_dsn, mysql_database_dsn
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


class MyNote(Model):
    id: int = Field(primary_key=True)
    text: str
    n: int | None = None


class MyOwner(Model):
    id: int = Field(primary_key=True)
    name: str = Field(unique=True)


class MyPet(Model):
    id: int = Field(primary_key=True)
    owner: MyOwner | None = Field(default=None, on_delete="cascade")


MODELS = [MyNote, MyOwner, MyPet]


@pytest.fixture
async def dsn() -> AsyncIterator[str]:
    async with mysql_database_dsn() as database_dsn:
        yield database_dsn


@pytest.fixture
async def db(dsn: str) -> AsyncIterator[aura.Client]:
    async with aura.connect(dsn, models=MODELS) as client:
        yield client


def _with_netloc(dsn: str, netloc: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _option(dsn: str, option: str) -> str:
    return f"{dsn}{'&' if '?' in dsn else '?'}{option}"


# -- schemes, options, capabilities --------------------------------------------------------


@pytest.mark.parametrize("scheme", ["mysql", "mariadb", "mysql+aiomysql", "mariadb+aiomysql"])
async def test_every_scheme_reaches_the_server(scheme: str) -> None:
    base = mysql_base_dsn()
    dsn = scheme + base[base.index("://") :]
    async with aura.connect(dsn) as client:
        assert client.backend.name == "mysql"
        assert await client.raw("SELECT 1 AS one") == [{"one": 1}]


async def test_unknown_dsn_options_and_bad_values_are_rejected() -> None:
    base = mysql_base_dsn()
    with pytest.raises(AuraError) as info:
        await aura.connect(_option(base, "pool_recycle=5"))
    assert info.value.code == "config_error"
    assert info.value.message == (
        "Unsupported mysql DSN option(s): pool_recycle; "
        "supported: charset, ssl-ca, ssl-mode, ssl_ca, ssl_mode"
    )
    with pytest.raises(AuraError) as mode:
        await aura.connect(_option(base, "ssl-mode=sometimes"))
    assert mode.value.code == "config_error"
    assert mode.value.message == (
        "ssl-mode must be one of DISABLED, PREFERRED, REQUIRED, VERIFY_CA, VERIFY_IDENTITY"
    )
    with pytest.raises(AuraError) as charset:
        await aura.connect(_option(base, "charset=latin1"))
    assert charset.value.message == (
        "charset=latin1 is not supported by the mysql backend; text is stored as utf8mb4"
    )
    with pytest.raises(AuraError) as ca:
        await aura.connect(_option(base, "ssl-mode=VERIFY_CA"))
    assert ca.value.message == "ssl-mode=VERIFY_CA needs ssl-ca (the CA certificate file)"
    with pytest.raises(AuraError) as missing:
        await aura.connect(_option(base, "ssl_mode=VERIFY_CA&ssl_ca=/nonexistent/ca.pem"))
    assert missing.value.message == (
        "ssl-ca '/nonexistent/ca.pem' is not a readable PEM certificate file"
    )


async def test_charset_utf8mb4_is_accepted(dsn: str) -> None:
    async with aura.connect(_option(dsn, "charset=utf8mb4"), models=[MyNote]) as db:
        await db.insert(MyNote(id=1, text="ünïcødé 💥"))
        assert (await db.MyNote.find(id=1)).text == "ünïcødé 💥"


async def test_ssl_mode_is_honoured(dsn: str) -> None:
    async with aura.connect(dsn) as probe:
        have_ssl = await probe.raw("SHOW VARIABLES LIKE 'have_ssl'")
    if have_ssl != [{"Variable_name": "have_ssl", "Value": "YES"}]:
        # No TLS on this server: PREFERRED falls back to plain TCP, REQUIRED refuses.
        async with aura.connect(_option(dsn, "ssl-mode=PREFERRED")) as plain:
            cipher = await plain.raw("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            assert cipher == [{"Variable_name": "Ssl_cipher", "Value": ""}]
        for mode in ("REQUIRED", "VERIFY_IDENTITY"):
            with pytest.raises(AuraConnectionError) as info:
                await aura.connect(_option(dsn, f"ssl-mode={mode}"))
            assert info.value.message == (
                "the MySQL server does not offer TLS, which ssl-mode requires"
            )
            assert info.value.context == {"driver": "mysql_async"}
        return
    async with aura.connect(_option(dsn, "ssl-mode=REQUIRED")) as tls:
        cipher = await tls.raw("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        assert cipher[0]["Value"] != ""
    async with aura.connect(_option(dsn, "ssl-mode=DISABLED")) as plain:
        cipher = await plain.raw("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        assert cipher == [{"Variable_name": "Ssl_cipher", "Value": ""}]


async def test_capabilities_are_honest(db: aura.Client) -> None:
    caps = db.capabilities()
    assert caps.transactions and caps.query_timeouts and caps.raw_queries and caps.explain
    assert not caps.vector_search and not caps.hybrid_search
    assert caps.full_text_search and caps.aggregations_and_facets
    # Ranked only on fields declared full_text=True (their index is built).
    with pytest.raises(AuraDialectError):
        await db.query(MyNote).search_text(MyNote.text, "x").all()
    with pytest.raises(AuraCapabilityError) as info:
        await db.query(MyNote).nearest(MyNote.text, [1.0], limit=1).all()
    assert info.value.context["capability"] == "vector_search"


async def test_explain_has_the_sql_and_the_plan(db: aura.Client) -> None:
    out = db.backend.explain(db.query(MyNote).where(MyNote.id == 3).explain())
    assert out["sql"] == "SELECT `id`, `text`, `n` FROM `MyNote` WHERE `id` = ? ORDER BY `id` ASC"
    assert out["plan"] == [
        "1 | SIMPLE | null | null | null | null | null | null | null | "
        "Impossible WHERE noticed after reading const tables"
    ]
    assert out["model"] == "MyNote"


# -- errors ---------------------------------------------------------------------------------


async def test_unique_and_primary_key_violations(db: aura.Client) -> None:
    await db.insert(MyOwner(id=1, name="secret-name"))
    with pytest.raises(AuraConstraintError) as pk:
        await db.insert(MyOwner(id=1, name="other"))
    assert pk.value.message == "MyOwner already has a row with this primary key"
    assert pk.value.context == {
        "model": "MyOwner",
        "driver": "mysql_async",
        "mysql_code": 1062,
        "sqlstate": "23000",
    }
    with pytest.raises(AuraConstraintError) as unique:
        await db.insert(MyOwner(id=2, name="secret-name"))
    assert unique.value.message == "MyOwner.name must be unique"
    assert "secret-name" not in str(unique.value) and "secret-name" not in repr(
        unique.value.context
    )


async def test_not_null_fk_and_missing_table(db: aura.Client) -> None:
    with pytest.raises(AuraConstraintError) as not_null:
        await db.raw("INSERT INTO `MyNote` (id, text) VALUES (?, ?)", [1, None])
    assert not_null.value.message == "MyNote.text cannot be null"
    assert not_null.value.context["mysql_code"] == 1048
    with pytest.raises(AuraConstraintError) as no_default:
        await db.raw("INSERT INTO `MyNote` (id) VALUES (?)", [2])
    assert no_default.value.message == "MyNote.text cannot be null"
    assert no_default.value.context["mysql_code"] == 1364
    await db.raw(
        "CREATE TABLE my_fk_child (id int PRIMARY KEY, owner bigint, "
        "FOREIGN KEY (owner) REFERENCES `MyOwner`(id))"
    )
    with pytest.raises(AuraConstraintError) as fk:
        await db.raw("INSERT INTO my_fk_child VALUES (?, ?)", [1, 424242])
    assert fk.value.message == (
        "MySQL foreign key constraint violated: the referenced row does not exist"
    )
    assert fk.value.context["mysql_code"] == 1452
    assert "424242" not in str(fk.value)
    await db.insert(MyOwner(id=7, name="seven"))
    await db.raw("INSERT INTO my_fk_child VALUES (?, ?)", [2, 7])
    with pytest.raises(AuraConstraintError) as parent:
        await db.raw("DELETE FROM `MyOwner` WHERE id = ?", [7])
    assert parent.value.message == (
        "MySQL foreign key constraint violated: the row is still referenced"
    )
    assert parent.value.context["mysql_code"] == 1451
    with pytest.raises(AuraSchemaError) as missing:
        await db.raw("SELECT * FROM no_such_table_here")
    assert missing.value.context == {
        "driver": "mysql_async",
        "mysql_code": 1146,
        "sqlstate": "42S02",
    }


async def test_rejected_values_are_not_quoted(db: aura.Client) -> None:
    with pytest.raises(AuraError) as info:
        await db.raw("INSERT INTO `MyNote` (id, text, n) VALUES (?, ?, ?)", [1, "t", "secret-x"])
    assert info.value.code == "query_error"
    assert info.value.message == "MySQL rejected a value (error 1366)"
    assert "secret-x" not in str(info.value) and "secret-x" not in repr(info.value.context)


async def test_connection_refused() -> None:
    base = mysql_base_dsn()
    refused = _with_netloc(base, "root:hunter2@127.0.0.1:1")
    with pytest.raises(AuraConnectionError) as info:
        await aura.connect(refused, connect_timeout_s=5.0)
    assert info.value.message == ("the connection to MySQL failed or was lost (connection refused)")
    assert info.value.context == {"driver": "mysql_async"}
    assert "hunter2" not in str(info.value) and "hunter2" not in repr(info.value.context)


async def test_bad_credentials() -> None:
    base = mysql_base_dsn()
    host = urlsplit(base).netloc.rsplit("@", 1)[-1]
    bad = _with_netloc(base, f"aura_no_such_user:hunter2@{host}")
    with pytest.raises(AuraAuthenticationError) as info:
        await aura.connect(bad)
    assert info.value.message == "MySQL rejected the credentials"
    assert info.value.context == {"driver": "mysql_async", "mysql_code": 1045, "sqlstate": "28000"}
    assert "hunter2" not in str(info.value)


async def test_lost_connection(dsn: str) -> None:
    async with aura.connect(dsn, models=MODELS) as db, aura.connect(mysql_base_dsn()) as admin:
        database = urlsplit(dsn).path.lstrip("/")
        tx = await db.transaction().begin()
        ids = await admin.raw(
            "SELECT id FROM information_schema.processlist WHERE db = ? AND id <> CONNECTION_ID()",
            [database],
        )
        assert ids
        for row in ids:
            await admin.raw(f"KILL {int(row['id'])}")
        with pytest.raises(AuraConnectionError) as info:
            await tx.query(MyNote).count()
        assert info.value.message.startswith("the connection to MySQL")
        assert info.value.context["driver"] == "mysql_async"


async def test_statement_timeout(db: aura.Client) -> None:
    await db.bulk_insert(MyNote, [MyNote(id=i, text=f"row {i} " * 8) for i in range(100_000)])
    slow = db.query(MyNote).where(MyNote.text.contains("no such text")).timeout(1)
    with pytest.raises(AuraTimeoutError) as info:
        await slow.count()
    assert info.value.message == "query exceeded its timeout of 1 ms"
    assert info.value.context == {"driver": "mysql", "timeout_ms": 1}
    # the connection and the session's default are intact afterwards
    assert await db.query(MyNote).where(MyNote.text.contains("no such text")).count() == 0


async def test_write_blocked_by_a_transaction_is_a_conflict(db: aura.Client) -> None:
    await db.insert(MyNote(id=1, text="a"))
    tx = await db.transaction().begin()
    await tx.update(MyNote).where(MyNote.id == 1).set(text="tx").execute()
    with pytest.raises(AuraError) as info:
        await db.update(MyNote).where(MyNote.id == 1).set(text="outside").execute()
    assert info.value.code == "conflict"
    assert info.value.context["mysql_code"] == 1205
    await tx.commit()
    assert (await db.MyNote.find(id=1)).text == "tx"


# -- semantics specific to the driver -------------------------------------------------------


async def test_bulk_insert_is_atomic_and_reports_conflicts(db: aura.Client) -> None:
    rows = [MyNote(id=i, text=f"n{i}", n=None if i % 3 else i) for i in range(3000)]
    assert await db.bulk_insert(MyNote, rows) == 3000
    got = await db.query(MyNote).order_by(MyNote.id).all()
    assert [(r.id, r.text, r.n) for r in got] == [(r.id, r.text, r.n) for r in rows]
    with pytest.raises(AuraConstraintError) as info:
        await db.bulk_insert(MyNote, [MyNote(id=5000 + i, text="x") for i in range(50)] + rows[:1])
    assert info.value.message == "MyNote already has a row with this primary key"
    assert await db.query(MyNote).count() == 3000  # nothing of the failed batch


async def test_upsert_updates_and_returns_the_stored_row(db: aura.Client) -> None:
    await db.insert(MyOwner(id=1, name="a"))
    second = await db.upsert(MyOwner, key={"id": 1}, values={"name": "b"})
    assert (second.id, second.name) == (1, "b")
    assert [(o.id, o.name) for o in await db.query(MyOwner).all()] == [(1, "b")]


class MyIndexed(Model):
    id: int = Field(primary_key=True)
    tag: str = Field(index=True)
    body: str = Field(default="", full_text=True)


async def test_reopening_a_database_keeps_its_tables_and_indexes() -> None:
    """Schemas are created on open: a second open of the same database
    finds its indexes (MySQL has no CREATE INDEX IF NOT EXISTS)."""
    async with mysql_database_dsn() as dsn:
        async with aura.connect(dsn, models=[MyIndexed]) as db:
            await db.insert(MyIndexed(id=1, tag="t", body="hello world"))
        async with aura.connect(dsn, models=[MyIndexed]) as db:
            rows = await db.search(MyIndexed).search_text("body", "hello").all()
            assert [r.id for r in rows] == [1]
            indexes = await db.raw("SHOW INDEX FROM `MyIndexed`")
            assert sorted({r["Key_name"] for r in indexes}) == [
                "PRIMARY",
                "ftx_MyIndexed_body",
                "idx_MyIndexed_tag",
            ]
